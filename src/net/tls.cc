#include "net/tls.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>

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

// The whole file, and its mode bits in *mode when asked.
Result<std::string> ReadWhole(const std::string& key, const std::string& path,
                              mode_t* mode = nullptr) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return InvalidRequest(fmt::format("{}: cannot read {}: {}", key, path, std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return InvalidRequest(fmt::format("{}: cannot read {}: {}", key, path, std::strerror(e)));
  }
  if (mode != nullptr) *mode = st.st_mode;
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return InvalidRequest(fmt::format("{}: cannot read {}: {}", key, path, std::strerror(e)));
    }
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > (16u << 20)) {
      ::close(fd);
      return InvalidRequest(fmt::format("{}: {} is over 16 MiB: not a PEM file", key, path));
    }
  }
  ::close(fd);
  return out;
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

// notAfter as seconds since the epoch (0 if it cannot be read).
std::int64_t Asn1TimeUnix(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::string SubjectText(X509* cert) {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
  return buf;
}

}  // namespace

Result<TlsContext> MakeServerTlsContext(const TlsFiles& files,
                                        std::chrono::system_clock::time_point now) {
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
  mode_t key_mode = 0;
  auto key_pem = ReadWhole("tls_key_file", files.key_file, &key_mode);
  if (!key_pem.ok()) return key_pem.status();
  // A private key any local user can read is a key that has leaked (group access is allowed:
  // Debian's ssl-cert group, a secret mounted 0640).
  if ((key_mode & (S_IROTH | S_IWOTH)) != 0) {
    return InvalidRequest(fmt::format(
        "tls_key_file: {} is readable or writable by every user (mode {:04o}): restrict it, "
        "e.g. chmod 600 {} (or 640 with a group the server is in)",
        files.key_file, key_mode & 07777, files.key_file));
  }
  std::string ca_pem;
  if (!files.client_ca_file.empty()) {
    auto ca = ReadWhole("tls_client_ca_file", files.client_ca_file);
    if (!ca.ok()) return ca.status();
    ca_pem = std::move(ca).value();
  }

  TlsContext out;
  out.ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ssl::context& ctx = *out.ctx;
  SSL_CTX* native = ctx.native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    return Internal("TLS: cannot set the minimum protocol version: " + OpenSslError());
  }
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                  ssl::context::single_dh_use);
  SSL_CTX_set_options(native,
                      SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return Internal("TLS: cannot set the cipher list: " + OpenSslError());
  }
  SSL_CTX_set_session_id_context(native, kSessionIdContext, sizeof kSessionIdContext - 1);
  // Resumption from the context's cache only (SSL_OP_NO_TICKET above; in TLS 1.3 the ticket is
  // then just the cache key): bounded, and gone with the context at a reload.
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(native, kSessionCacheSize);
  SSL_CTX_set_timeout(native, static_cast<long>(kSessionLifetime.count()));
  SSL_CTX_set_num_tickets(native, 1);

  // The certificate: parsed once here for a clear error, its validity and the log line.
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
    out.not_after_unix = Asn1TimeUnix(X509_get0_notAfter(cert));
    const std::time_t now_t = std::chrono::system_clock::to_time_t(now);
    std::time_t now_copy = now_t;
    const bool expired = X509_cmp_time(X509_get0_notAfter(cert), &now_copy) < 0;
    now_copy = now_t;
    const bool not_yet = X509_cmp_time(X509_get0_notBefore(cert), &now_copy) > 0;
    const std::string not_before = Asn1TimeText(X509_get0_notBefore(cert));
    X509_free(cert);
    // A server never offers a certificate it knows every verifying client refuses.
    if (expired) {
      return InvalidRequest(fmt::format("tls_cert_file: the certificate in {} ({}) expired on {}",
                                        files.cert_file, out.subject, out.not_after));
    }
    if (not_yet) {
      out.warnings.push_back(fmt::format(
          "the certificate in {} is not valid before {}: clients refuse it until then (check "
          "this host's clock)",
          files.cert_file, not_before));
    }
    const auto left = std::chrono::seconds(out.not_after_unix - static_cast<std::int64_t>(now_t));
    if (left < kExpiryWarning) {
      out.warnings.push_back(
          fmt::format("the certificate in {} expires on {}, in {} hours", files.cert_file,
                      out.not_after, std::chrono::duration_cast<std::chrono::hours>(left).count()));
    }
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
    // Parsed from the bytes read above (one read: a file replaced meanwhile cannot mix two
    // versions): each certificate is trusted for client verification, and its name is sent in
    // the CertificateRequest so that clients pick the right certificate.
    BIO* bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
    if (bio == nullptr) return Internal("TLS: out of memory reading tls_client_ca_file");
    X509_STORE* store = SSL_CTX_get_cert_store(native);
    std::size_t n = 0;
    for (;;) {
      X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
      if (ca == nullptr) break;
      const bool added =
          X509_STORE_add_cert(store, ca) == 1 && SSL_CTX_add_client_CA(native, ca) == 1;
      X509_free(ca);
      if (!added) {
        BIO_free(bio);
        return InvalidRequest(
            fmt::format("tls_client_ca_file: {}: certificate {} cannot be used: {}",
                        files.client_ca_file, n + 1, OpenSslError()));
      }
      ++n;
    }
    BIO_free(bio);
    // The loop ends at the end of the text (no further PEM block) or at a block it cannot parse.
    const unsigned long e = ERR_peek_last_error();
    const bool at_end =
        e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
    if (!at_end) {
      return InvalidRequest(
          fmt::format("tls_client_ca_file: {}: certificate {} cannot be parsed: {}",
                      files.client_ca_file, n + 1, OpenSslError()));
    }
    ERR_clear_error();
    if (n == 0) {
      return InvalidRequest(
          fmt::format("tls_client_ca_file: {} holds no PEM certificate", files.client_ca_file));
    }
    out.client_cas = n;
    ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  } else {
    ctx.set_verify_mode(ssl::verify_none);
  }
  return out;
}

const char* TlsHandshakeResultName(TlsHandshakeResult r) {
  switch (r) {
    case TlsHandshakeResult::kOk:
      return "ok";
    case TlsHandshakeResult::kTimeout:
      return "timeout";
    case TlsHandshakeResult::kClientCertificate:
      return "client_certificate";
    case TlsHandshakeResult::kClientAlert:
      return "client_alert";
    case TlsHandshakeResult::kProtocol:
      return "protocol";
    case TlsHandshakeResult::kClosed:
      return "closed";
  }
  return "protocol";
}

TlsHandshakeResult ClassifyTlsHandshake(const boost::system::error_code& ec) {
  namespace asio = boost::asio;
  if (!ec) return TlsHandshakeResult::kOk;
  if (ec == boost::beast::error::timeout) return TlsHandshakeResult::kTimeout;
  if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
    return TlsHandshakeResult::kClosed;
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    const auto code = static_cast<unsigned long>(ec.value());
    const int reason = ERR_GET_REASON(code);
    if (ERR_GET_LIB(code) == ERR_LIB_SSL) {
      if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) return TlsHandshakeResult::kClosed;
      if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
          reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        return TlsHandshakeResult::kClientCertificate;
      }
      // An alert received from the peer: its reason is the alert number plus this offset.
      if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
        return TlsHandshakeResult::kClientAlert;
      }
    }
  }
  return TlsHandshakeResult::kProtocol;
}

}  // namespace ym::net
