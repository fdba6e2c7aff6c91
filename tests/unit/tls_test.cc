// net::MakeServerTlsContext (net/tls.h): the errors of each file, and the protocol floor and
// verification mode of a context built from a good pair; then real handshakes between that
// context and an OpenSSL client over an in-memory BIO pair (resumption without tickets,
// renegotiation refused, no compression, the handshake results of the metrics). Certificates
// are made in process with OpenSSL (self-signed P-256), written to temporary files.

#include "net/tls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
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

Pair MakePair(const char* cn, long valid_seconds = 3600) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), valid_seconds);
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

TEST_F(TlsContextTest, AKeyFileEveryUserCanReadIsRefused) {
  const Pair a = MakePair("a");
  const std::string cert = Write(a.cert);
  const std::string key = Write(a.key);
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  EXPECT_THAT(Error({cert, key, ""}),
              HasSubstr("tls_key_file: " + key +
                        " is readable or writable by every user (mode 0644): restrict it"));
  ASSERT_EQ(::chmod(key.c_str(), 0602), 0);
  EXPECT_THAT(Error({cert, key, ""}), HasSubstr("(mode 0602)"));
  // Owner and group only: accepted (a key shared with a group, e.g. Debian's ssl-cert).
  ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
  EXPECT_TRUE(MakeServerTlsContext({cert, key, ""}).ok());
  // The certificate itself may be public.
  ASSERT_EQ(::chmod(cert.c_str(), 0644), 0);
  EXPECT_TRUE(MakeServerTlsContext({cert, key, ""}).ok());
}

TEST_F(TlsContextTest, AnExpiredCertificateIsRefusedAndOneCloseToExpiryWarned) {
  const Pair a = MakePair("a");  // valid from now for an hour
  const TlsFiles files{Write(a.cert), Write(a.key), ""};
  const auto now = std::chrono::system_clock::now();
  auto r = MakeServerTlsContext(files, now);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
  EXPECT_NEAR(static_cast<double>(r->not_after_unix), static_cast<double>(now_s.count() + 3600), 5);
  ASSERT_EQ(r->warnings.size(), 1u);  // an hour left: under kExpiryWarning
  EXPECT_THAT(r->warnings[0], HasSubstr("expires on"));

  auto late = MakeServerTlsContext(files, now + std::chrono::hours(2));
  ASSERT_FALSE(late.ok());
  EXPECT_THAT(late.status().message(),
              HasSubstr("tls_cert_file: the certificate in " + files.cert_file));
  EXPECT_THAT(late.status().message(), HasSubstr("expired on"));

  auto early = MakeServerTlsContext(files, now - std::chrono::hours(1));
  ASSERT_TRUE(early.ok());
  EXPECT_THAT(early->warnings[0], HasSubstr("is not valid before"));

  const Pair year = MakePair("year", 365L * 24 * 3600);
  auto quiet = MakeServerTlsContext({Write(year.cert), Write(year.key), ""}, now);
  ASSERT_TRUE(quiet.ok());
  EXPECT_TRUE(quiet->warnings.empty());
}

TEST_F(TlsContextTest, TheClientCaFileIsReadWhole) {
  const Pair a = MakePair("a");
  const Pair b = MakePair("b");
  const std::string cert = Write(a.cert);
  const std::string key = Write(a.key);
  auto r = MakeServerTlsContext({cert, key, Write(a.cert + b.cert)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->client_cas, 2u);
  EXPECT_EQ(sk_X509_NAME_num(SSL_CTX_get_client_CA_list(r->ctx->native_handle())), 2);
  // A damaged second certificate is an error, not a silently shorter list.
  std::string damaged = b.cert;
  damaged[damaged.size() / 2] = damaged[damaged.size() / 2] == 'A' ? 'B' : 'A';
  damaged.insert(damaged.size() / 2, "!!");
  EXPECT_THAT(Error({cert, key, Write(a.cert + damaged)}),
              HasSubstr("certificate 2 cannot be parsed"));
  EXPECT_THAT(Error({cert, key, Write("no pem here\n")}), HasSubstr("holds no PEM certificate"));
}

// A client and a server SSL joined by an in-memory BIO pair.
class Handshake {
 public:
  Handshake(SSL_CTX* client_ctx, SSL_CTX* server_ctx) {
    client_ = SSL_new(client_ctx);
    server_ = SSL_new(server_ctx);
    BIO* c = nullptr;
    BIO* s = nullptr;
    BIO_new_bio_pair(&c, 0, &s, 0);
    SSL_set_bio(client_, c, c);
    SSL_set_bio(server_, s, s);
    SSL_set_connect_state(client_);
    SSL_set_accept_state(server_);
  }
  ~Handshake() {
    // A clean close (close_notify), so that OpenSSL keeps the session in the server's cache.
    SSL_shutdown(client_);
    SSL_shutdown(server_);
    ERR_clear_error();
    SSL_free(client_);
    SSL_free(server_);
  }
  SSL* client() { return client_; }
  SSL* server() { return server_; }

  // Steps both sides until both finished `op` or one failed; true when both succeeded. The
  // server's error, as Asio reports it, in server_error.
  template <class Op>
  bool Run(Op op) {
    bool client_done = false;
    bool server_done = false;
    bool failed = false;
    for (int i = 0; i < 100 && !(client_done && server_done); ++i) {
      if (!client_done) {
        ERR_clear_error();
        const int rc = op(client_);
        if (rc == 1) {
          client_done = true;
        } else if (const int e = SSL_get_error(client_, rc);
                   e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          client_done = failed = true;
        }
      }
      if (!server_done) {
        ERR_clear_error();
        const int rc = op(server_);
        if (rc == 1) {
          server_done = true;
        } else if (const int e = SSL_get_error(server_, rc);
                   e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          server_done = failed = true;
          // As Asio reports it: the first error of the queue.
          server_error = boost::system::error_code(static_cast<int>(ERR_get_error()),
                                                   boost::asio::error::get_ssl_category());
        }
      }
    }
    ERR_clear_error();
    return client_done && server_done && !failed;
  }
  bool Run() {
    return Run([](SSL* s) { return SSL_do_handshake(s); });
  }

  // The client reads what the server sent after the handshake (TLS 1.3 session tickets).
  void Settle() {
    char buf[16];
    const char ping[] = "x";
    SSL_write(server_, ping, 1);
    SSL_read(client_, buf, sizeof buf);
    ERR_clear_error();
  }

  boost::system::error_code server_error;

 private:
  SSL* client_;
  SSL* server_;
};

SSL_CTX* ClientCtx(int max_version) {
  SSL_CTX* c = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_max_proto_version(c, max_version);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT);
  return c;
}

TEST_F(TlsContextTest, ResumptionUsesTheServerCacheAndNoTicketAndEndsAtAReload) {
  const Pair a = MakePair("a");
  const TlsFiles files{Write(a.cert), Write(a.key), ""};
  auto r = MakeServerTlsContext(files);
  ASSERT_TRUE(r.ok());
  SSL_CTX* server = r->ctx->native_handle();
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version);
    SSL_CTX* client = ClientCtx(version);
    SSL_SESSION* session = nullptr;
    {
      Handshake h(client, server);
      ASSERT_TRUE(h.Run());
      EXPECT_EQ(SSL_version(h.client()), version);
      EXPECT_EQ(SSL_get_current_compression(h.server()), nullptr);
      h.Settle();
      session = SSL_get1_session(h.client());
      ASSERT_NE(session, nullptr);
      if (version == TLS1_2_VERSION) {
        // No stateless ticket (sealed with a long-lived key): a session id for the cache.
        EXPECT_FALSE(SSL_SESSION_has_ticket(session));
      }
      EXPECT_EQ(SSL_SESSION_get_timeout(SSL_get_session(h.server())), kSessionLifetime.count());
    }
    {
      Handshake h(client, server);
      SSL_set_session(h.client(), session);
      ASSERT_TRUE(h.Run());
      EXPECT_TRUE(SSL_session_reused(h.client()));
    }
    {
      // After a reload (a new context) the old session is not resumed: full handshake.
      auto reloaded = MakeServerTlsContext(files);
      ASSERT_TRUE(reloaded.ok());
      Handshake h(client, reloaded->ctx->native_handle());
      SSL_set_session(h.client(), session);
      ASSERT_TRUE(h.Run());
      EXPECT_FALSE(SSL_session_reused(h.client()));
    }
    SSL_SESSION_free(session);
    SSL_CTX_free(client);
  }
}

// The client asks for a TLS 1.2 renegotiation after the handshake; true when it completed.
bool Renegotiate(Handshake& h) {
  if (SSL_renegotiate(h.client()) != 1) return false;
  char buf[16];
  for (int i = 0; i < 100; ++i) {
    ERR_clear_error();
    const int rc = SSL_do_handshake(h.client());
    if (rc == 1 && !SSL_renegotiate_pending(h.client())) return true;
    if (rc != 1) {
      const int e = SSL_get_error(h.client(), rc);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return false;
    }
    SSL_read(h.server(), buf, sizeof buf);  // the server handles the new ClientHello in a read
  }
  ERR_clear_error();
  return false;
}

TEST_F(TlsContextTest, ClientRenegotiationIsRefused) {
  const Pair a = MakePair("a");
  auto r = MakeServerTlsContext({Write(a.cert), Write(a.key), ""});
  ASSERT_TRUE(r.ok());
  SSL_CTX* client = ClientCtx(TLS1_2_VERSION);
  {
    Handshake h(client, r->ctx->native_handle());
    ASSERT_TRUE(h.Run());
    EXPECT_FALSE(Renegotiate(h));
  }
  // Control: the same exchange with renegotiation allowed on that connection renegotiates, so
  // the refusal above is the context's doing.
  {
    Handshake h(client, r->ctx->native_handle());
    SSL_clear_options(h.server(), SSL_OP_NO_RENEGOTIATION);
    SSL_set_options(h.server(), SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    ASSERT_TRUE(h.Run());
    EXPECT_TRUE(Renegotiate(h));
  }
  SSL_CTX_free(client);
}

TEST_F(TlsContextTest, HandshakeFailuresAreClassifiedForTheMetrics) {
  const Pair server_pair = MakePair("server");
  const Pair client_pair = MakePair("client");
  const Pair stranger = MakePair("stranger");
  const std::string cert = Write(server_pair.cert);
  const std::string key = Write(server_pair.key);
  auto mtls = MakeServerTlsContext({cert, key, Write(client_pair.cert)});
  ASSERT_TRUE(mtls.ok());
  auto plain = MakeServerTlsContext({cert, key, ""});
  ASSERT_TRUE(plain.ok());
  const auto with_cert = [this](const Pair& p, int version) {
    SSL_CTX* c = ClientCtx(version);
    SSL_CTX_use_certificate_chain_file(c, Write(p.cert).c_str());
    SSL_CTX_use_PrivateKey_file(c, Write(p.key).c_str(), SSL_FILETYPE_PEM);
    return c;
  };
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version);
    SSL_CTX* none = ClientCtx(version);
    SSL_CTX* right = with_cert(client_pair, version);
    SSL_CTX* wrong = with_cert(stranger, version);
    {
      Handshake h(right, mtls->ctx->native_handle());
      EXPECT_TRUE(h.Run());
      EXPECT_EQ(ClassifyTlsHandshake(h.server_error), TlsHandshakeResult::kOk);
    }
    for (SSL_CTX* c : {none, wrong}) {
      Handshake h(c, mtls->ctx->native_handle());
      EXPECT_FALSE(h.Run());
      EXPECT_EQ(ClassifyTlsHandshake(h.server_error), TlsHandshakeResult::kClientCertificate)
          << h.server_error.message();
    }
    // A client that does not trust the server's certificate aborts with an alert.
    SSL_CTX* distrust = ClientCtx(version);
    SSL_CTX_set_verify(distrust, SSL_VERIFY_PEER, nullptr);
    {
      Handshake h(distrust, plain->ctx->native_handle());
      EXPECT_FALSE(h.Run());
      EXPECT_EQ(ClassifyTlsHandshake(h.server_error), TlsHandshakeResult::kClientAlert)
          << h.server_error.message();
    }
    for (SSL_CTX* c : {none, right, wrong, distrust}) SSL_CTX_free(c);
  }
  // A TLS 1.1 client: no common version.
  SSL_CTX* old = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(old, TLS1_1_VERSION);
  SSL_CTX_set_max_proto_version(old, TLS1_1_VERSION);
  SSL_CTX_set_security_level(old, 0);
  {
    Handshake h(old, plain->ctx->native_handle());
    EXPECT_FALSE(h.Run());
    EXPECT_EQ(ClassifyTlsHandshake(h.server_error), TlsHandshakeResult::kProtocol)
        << h.server_error.message();
  }
  SSL_CTX_free(old);
  EXPECT_EQ(ClassifyTlsHandshake(boost::beast::error::timeout), TlsHandshakeResult::kTimeout);
  EXPECT_EQ(ClassifyTlsHandshake(boost::asio::error::eof), TlsHandshakeResult::kClosed);
  EXPECT_EQ(ClassifyTlsHandshake(boost::asio::ssl::error::stream_truncated),
            TlsHandshakeResult::kClosed);
  EXPECT_STREQ(TlsHandshakeResultName(TlsHandshakeResult::kClientCertificate),
               "client_certificate");
}

}  // namespace
}  // namespace ym::net
