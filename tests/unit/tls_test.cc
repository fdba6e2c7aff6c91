// net::MakeServerTlsContext (net/tls.h): the errors of each file, and the protocol floor and
// verification mode of a context built from a good pair. Certificates are made in process with
// OpenSSL (self-signed P-256), written to temporary files.

#include "net/tls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace ym::net {
namespace {

using ::testing::HasSubstr;

// A self-signed certificate and its key, as PEM text.
struct Pair {
  std::string cert;
  std::string key;
};

std::string ToPem(bool is_cert, void* obj) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (is_cert) {
    PEM_write_bio_X509(bio, static_cast<X509*>(obj));
  } else {
    PEM_write_bio_PrivateKey(bio, static_cast<EVP_PKEY*>(obj), nullptr, nullptr, 0, nullptr,
                             nullptr);
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

Pair MakePair(const char* cn) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_sign(cert, key, EVP_sha256());
  Pair p{ToPem(true, cert), ToPem(false, key)};
  X509_free(cert);
  EVP_PKEY_free(key);
  return p;
}

class TlsContextTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    char path[] = "/tmp/ym-tls-XXXXXX";
    const int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    ::close(fd);
    std::ofstream(path) << text;
    files_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (const auto& f : files_) std::remove(f.c_str());
  }
  std::string Error(const TlsFiles& files) {
    auto r = MakeServerTlsContext(files);
    EXPECT_FALSE(r.ok());
    return r.ok() ? "" : r.status().message();
  }
  std::vector<std::string> files_;
};

TEST_F(TlsContextTest, AGoodPairBuildsATls12PlusContext) {
  const Pair a = MakePair("server-a");
  auto r = MakeServerTlsContext({Write(a.cert), Write(a.key), ""});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(r->subject, HasSubstr("CN=server-a"));
  EXPECT_FALSE(r->not_after.empty());
  SSL_CTX* ctx = r->ctx->native_handle();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
  EXPECT_NE(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION, 0u);
  EXPECT_NE(SSL_CTX_get_options(ctx) & SSL_OP_NO_COMPRESSION, 0u);
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_NONE);
  // Every TLS 1.2 suite offered is ECDHE with an AEAD cipher.
  SSL* ssl = SSL_new(ctx);
  STACK_OF(SSL_CIPHER)* ciphers = SSL_get_ciphers(ssl);
  ASSERT_NE(ciphers, nullptr);
  int tls12_suites = 0;
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
    if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any) continue;  // a TLS 1.3 suite
    EXPECT_EQ(SSL_CIPHER_get_kx_nid(c), NID_kx_ecdhe) << SSL_CIPHER_get_name(c);
    EXPECT_TRUE(SSL_CIPHER_is_aead(c)) << SSL_CIPHER_get_name(c);
    ++tls12_suites;
  }
  EXPECT_GE(tls12_suites, 2);  // the ECDSA ones at least (RSA ones need an RSA key)
  SSL_free(ssl);

  // With a client CA: a client certificate is required.
  auto m = MakeServerTlsContext({Write(a.cert), Write(a.key), Write(a.cert)});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(SSL_CTX_get_verify_mode(m->ctx->native_handle()),
            SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
}

TEST_F(TlsContextTest, EachBadFileIsAClearError) {
  const Pair a = MakePair("a");
  const Pair b = MakePair("b");
  const std::string cert = Write(a.cert);
  const std::string key = Write(a.key);
  EXPECT_THAT(Error({cert, "", ""}), HasSubstr("tls_cert_file is set but tls_key_file is not"));
  EXPECT_THAT(Error({"", key, ""}), HasSubstr("tls_key_file is set but tls_cert_file is not"));
  EXPECT_THAT(Error({"", "", cert}), HasSubstr("tls_client_ca_file needs tls_cert_file"));
  EXPECT_THAT(Error({"/nonexistent/c.pem", key, ""}),
              HasSubstr("tls_cert_file: cannot read /nonexistent/c.pem: No such file"));
  EXPECT_THAT(Error({cert, "/nonexistent/k.pem", ""}),
              HasSubstr("tls_key_file: cannot read /nonexistent/k.pem"));
  EXPECT_THAT(Error({key, key, ""}), HasSubstr("holds no PEM certificate"));
  EXPECT_THAT(Error({cert, Write("not a key\n"), ""}),
              HasSubstr("holds no usable PEM private key"));
  EXPECT_THAT(Error({cert, Write(b.key), ""}),
              HasSubstr("does not match the certificate in " + cert));
  EXPECT_THAT(Error({cert, key, "/nonexistent/ca.pem"}),
              HasSubstr("tls_client_ca_file: cannot read /nonexistent/ca.pem"));
  EXPECT_THAT(Error({cert, key, Write("garbage\n")}), HasSubstr("tls_client_ca_file: "));
}

}  // namespace
}  // namespace ym::net
