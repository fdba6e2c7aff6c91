// TLS for the HTTP listener (docs/security.md, "TLS"): builds the OpenSSL server context that
// HttpServer hands to each new connection.
//
// Policy: TLS 1.2 and 1.3 only; for 1.2 only ECDHE key exchange with AEAD ciphers (AES-GCM,
// ChaCha20-Poly1305), for 1.3 OpenSSL's defaults (all AEAD); no compression, no renegotiation,
// the server's cipher order. With client_ca_file, a client must present a certificate that
// chains to one of its CAs, or the handshake fails (mTLS).
//
// A context is immutable once built: a reload (SIGHUP) builds a new one for new connections,
// and connections already open keep the one they started with (each holds a shared_ptr).
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "common/status.h"

namespace ym::net {

struct TlsFiles {
  std::string cert_file;       // PEM: the server certificate, then any intermediates
  std::string key_file;        // PEM: its private key (unencrypted)
  std::string client_ca_file;  // PEM: CAs a client certificate must chain to; empty: no mTLS

  bool enabled() const { return !cert_file.empty(); }
};

struct TlsContext {
  std::shared_ptr<boost::asio::ssl::context> ctx;
  // For the log line: the certificate's subject and when it expires.
  std::string subject;
  std::string not_after;
};

// Reads the files and builds the context. kInvalidRequest with a message that names the file
// and what is wrong with it: one of cert/key without the other, a file that cannot be read, a
// file that holds no certificate or key, a key that does not match the certificate.
Result<TlsContext> MakeServerTlsContext(const TlsFiles& files);

}  // namespace ym::net
