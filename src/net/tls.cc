#include "net/tls.h"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ym::net {

namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2 suites: ECDHE (forward secrecy) with an AEAD cipher only. TLS 1.3 suites are
// OpenSSL's defaults, all of which are AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Session resumption with client certificates needs a context id (OpenSSL refuses to resume
// without one when peers are verified).
constexpr unsigned char kSessionIdContext[] = "yardmaster";

Result<std::string> ReadWhole(const std::string& key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return InvalidRequest(
        fmt::format("{}: cannot read {}: {}", key, path, std::strerror(errno ? errno : EIO)));
  }
  std::ostringstream os;
  os << in.rdbuf();
  if (in.bad()) return InvalidRequest(fmt::format("{}: cannot read {}", key, path));
  return os.str();
}

int NoPassword(char*, int, int, void*) { return 0; }

std::string OpenSslError() {
  unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(e);
  return reason != nullptr ? reason : fmt::format("error {:#x}", e);
}

std::string Asn1TimeText(const ASN1_TIME* t) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "";
  ASN1_TIME_print(bio, t);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, n > 0 ? static_cast<std::size_t>(n) : 0);
  BIO_free(bio);
  return out;
}

std::string SubjectText(X509* cert) {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

}  // namespace

Result<TlsContext> MakeServerTlsContext(const TlsFiles& files) {
  if (files.cert_file.empty() != files.key_file.empty()) {
    return InvalidRequest(
        files.cert_file.empty()
            ? "tls_key_file is set but tls_cert_file is not: give both or neither"
            : "tls_cert_file is set but tls_key_file is not: give both or neither");
  }
  if (files.cert_file.empty()) {
    return InvalidRequest(files.client_ca_file.empty()
                              ? "TLS is not configured (no tls_cert_file)"
                              : "tls_client_ca_file needs tls_cert_file and tls_key_file");
  }
  ERR_clear_error();
  auto cert_pem = ReadWhole("tls_cert_file", files.cert_file);
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = ReadWhole("tls_key_file", files.key_file);
  if (!key_pem.ok()) return key_pem.status();

  TlsContext out;
  out.ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ssl::context& ctx = *out.ctx;
  SSL_CTX* native = ctx.native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    return Internal("TLS: cannot set the minimum protocol version: " + OpenSslError());
  }
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                  ssl::context::single_dh_use);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return Internal("TLS: cannot set the cipher list: " + OpenSslError());
  }
  SSL_CTX_set_session_id_context(native, kSessionIdContext, sizeof kSessionIdContext - 1);

  // The certificate: parsed once here for a clear error and for the log line.
  {
    BIO* bio = BIO_new_mem_buf(cert_pem->data(), static_cast<int>(cert_pem->size()));
    X509* cert = bio != nullptr ? PEM_read_bio_X509(bio, nullptr, nullptr, nullptr) : nullptr;
    if (bio != nullptr) BIO_free(bio);
    if (cert == nullptr) {
      ERR_clear_error();
      return InvalidRequest(
          fmt::format("tls_cert_file: {} holds no PEM certificate", files.cert_file));
    }
    out.subject = SubjectText(cert);
    out.not_after = Asn1TimeText(X509_get0_notAfter(cert));
    X509_free(cert);
  }
  boost::system::error_code ec;
  ctx.use_certificate_chain(boost::asio::buffer(*cert_pem), ec);
  if (ec) {
    ERR_clear_error();
    return InvalidRequest(fmt::format("tls_cert_file: {}: {}", files.cert_file, ec.message()));
  }
  // The key: parsed first (an encrypted one fails here, without prompting), then matched
  // against the certificate.
  {
    BIO* bio = BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size()));
    EVP_PKEY* key =
        bio != nullptr ? PEM_read_bio_PrivateKey(bio, nullptr, NoPassword, nullptr) : nullptr;
    if (bio != nullptr) BIO_free(bio);
    if (key == nullptr) {
      const std::string why = OpenSslError();
      return InvalidRequest(fmt::format(
          "tls_key_file: {} holds no usable PEM private key ({}; an encrypted key is not "
          "supported)",
          files.key_file, why));
    }
    const int used = SSL_CTX_use_PrivateKey(native, key);
    EVP_PKEY_free(key);
    if (used != 1) {
      ERR_clear_error();
      return InvalidRequest(
          fmt::format("tls_key_file: the key in {} does not match the certificate in {}",
                      files.key_file, files.cert_file));
    }
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return InvalidRequest(
        fmt::format("tls_key_file: the key in {} does not match the certificate in {}",
                    files.key_file, files.cert_file));
  }

  if (!files.client_ca_file.empty()) {
    if (auto ca = ReadWhole("tls_client_ca_file", files.client_ca_file); !ca.ok()) {
      return ca.status();
    }
    if (SSL_CTX_load_verify_locations(native, files.client_ca_file.c_str(), nullptr) != 1) {
      return InvalidRequest(
          fmt::format("tls_client_ca_file: {} holds no usable PEM certificate: {}",
                      files.client_ca_file, OpenSslError()));
    }
    // The CA names sent to clients in the CertificateRequest, so they pick the right certificate.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca_file.c_str());
    if (names == nullptr) {
      ERR_clear_error();
      return InvalidRequest(
          fmt::format("tls_client_ca_file: {} holds no PEM certificate", files.client_ca_file));
    }
    SSL_CTX_set_client_CA_list(native, names);
    ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  } else {
    ctx.set_verify_mode(ssl::verify_none);
  }
  return out;
}

}  // namespace ym::net
