// TLS for the HTTP listener (docs/security.md, "TLS"): builds the OpenSSL server context that
// HttpServer hands to each new connection, and names the outcome of a handshake for the metrics.
//
// Policy: TLS 1.2 and 1.3 only; for 1.2 only ECDHE key exchange with AEAD ciphers (AES-GCM,
// ChaCha20-Poly1305), for 1.3 OpenSSL's defaults (all AEAD); no compression, no renegotiation,
// the server's cipher order. No stateless session tickets: a TLS 1.2 ticket is sealed with a key
// that would live as long as the context, and whoever read that key could decrypt every session
// resumed with it (no forward secrecy); resumption uses the context's own session cache
// instead (bounded, entries live kSessionLifetime), which a reload discards with the context.
// With client_ca_file, a client must present a certificate that chains to one of its CAs, or
// the handshake fails (mTLS).
//
// Refused when loading (start or reload): a key file that every user may read or write, a
// certificate that has expired, a key that does not match the certificate, a CA file with no
// certificate. A certificate not yet valid, or expiring within kExpiryWarning, is loaded with a
// warning (TlsContext::warnings).
//
// A context is immutable once built: a reload (SIGHUP) builds a new one (certificate, key and
// client CAs together) for new connections, and connections already open keep the one they
// started with (each holds a shared_ptr).
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace ym::net {

struct TlsFiles {
  std::string cert_file;       // PEM: the server certificate, then any intermediates
  std::string key_file;        // PEM: its private key (unencrypted)
  std::string client_ca_file;  // PEM: CAs a client certificate must chain to; empty: no mTLS

  bool enabled() const { return !cert_file.empty(); }
};

inline constexpr std::chrono::seconds kSessionLifetime{3600};
inline constexpr long kSessionCacheSize = 4096;
inline constexpr std::chrono::hours kExpiryWarning{24 * 14};

struct TlsContext {
  std::shared_ptr<boost::asio::ssl::context> ctx;
  // For the log line and the metrics: the certificate's subject and when it expires.
  std::string subject;
  std::string not_after;
  std::int64_t not_after_unix = 0;  // seconds since the Unix epoch
  std::size_t client_cas = 0;       // certificates read from client_ca_file
  std::vector<std::string> warnings;
};

// Reads the files and builds the context; `now` decides expiry. kInvalidRequest with a message
// that names the file and what is wrong with it: one of cert/key without the other, a file that
// cannot be read, a file that holds no certificate or key, a key file readable by every user,
// an expired certificate, a key that does not match the certificate.
Result<TlsContext> MakeServerTlsContext(
    const TlsFiles& files,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// The outcome of a server-side handshake, the label of ym_tls_handshakes_total{result}.
enum class TlsHandshakeResult {
  kOk,
  kTimeout,            // not finished within handshake_timeout
  kClientCertificate,  // mTLS: no client certificate, or one that does not verify
  kClientAlert,        // the client aborted with an alert (e.g. it does not trust ours)
  kProtocol,           // no common version or suite, not TLS at all, a malformed message
  kClosed,             // the client closed or reset the connection mid-handshake
};
inline constexpr std::size_t kTlsHandshakeResults = 6;  // HttpStats::kTlsResults
const char* TlsHandshakeResultName(TlsHandshakeResult r);
TlsHandshakeResult ClassifyTlsHandshake(const boost::system::error_code& ec);

}  // namespace ym::net
