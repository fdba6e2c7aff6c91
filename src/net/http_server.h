// HttpServer: the HTTP/1.1 listener of docs/api.md (Boost.Beast over Asio).
//
// Shape: one io_context run by `io_threads` threads; each connection is served on its own strand,
// one request at a time in arrival order, so pipelined requests are answered in order. A request
// is read in full (header and body limits enforced), handed to net::Api, and the connection
// waits — with no thread blocked — until the Api replies, possibly from a Broker thread; the
// reply is posted back onto the connection's strand and written. Keep-alive by default.
//
// Limits: a body over max_request_bytes gets 413 payload_too_large (the connection is then
// closed, since the rest of the body is not read); a header block over max_header_bytes or a
// malformed request gets 400 invalid_request and a close; a connection with no complete request
// for idle_timeout is closed; a response that cannot be written within write_timeout is dropped.
//
// Framing (RFC 9112 §6): a Transfer-Encoding other than exactly `chunked`, Transfer-Encoding
// together with Content-Length, more than one Content-Length, and a missing or repeated Host in
// HTTP/1.1 are 400 and close the connection before any body byte is read: a request that a proxy
// in front may frame differently is never run (request smuggling).
//
// Memory: every reply is built whole, so its size is what is capped: list pages stop at
// max_reply_bytes, and the reply bytes waiting on slow readers are capped server-wide by
// max_queued_reply_bytes (past it, a large reply becomes 503 + Retry-After); a connection keeps
// no reply after it was written. Request bodies over 64 KiB reserve their size from
// max_reading_request_bytes before they are read (past it: 503 and close). Connections are capped
// in total and per client address (see the options), and a descriptor is kept in reserve so that
// running out of descriptors never leaves pending connections spinning in accept.
//
// Request ids and the access log (net/request_log.h): each request gets its id when its headers
// are read (the client's X-Request-Id when valid, else a generated one); it is handed to the Api
// in ApiRequest::request_id, set on the thread's log scope while the Api handles the request,
// sent back in X-Request-Id on every response, and written in the request's access line.
//
// Leases: if the response carrying leased jobs cannot be written (the long-polling client went
// away), the jobs are handed back with Broker::Release so they are ready again at once. A write
// that succeeds only means the bytes reached the kernel; a client that vanishes after that is
// covered by lease expiry.
//
// Lifecycle (STYLE.md rule 5): construct, Start() (binds and starts the I/O threads), Stop().
// Stop() stops accepting, closes idle connections at once, lets requests in flight finish (their
// responses carry `Connection: close`) until shutdown_timeout, then closes whatever is left and
// joins the I/O threads. While stopping, /readyz answers 503. Stop() is idempotent, is called by
// the destructor, and must not be called from an I/O thread. A stopped server cannot be
// restarted. Start it after the Broker has started, and stop it before stopping the Broker.
//
// TLS: with options.tls set, every connection first completes a TLS handshake (bounded by
// handshake_timeout; the idle, write, header and body limits then apply unchanged), on a
// session that is the same code over a TLS stream (Session<Stream>). ReloadTls swaps the
// context for new connections.
//
// Threads: Start/Stop/ReloadTls/local_port/stats may be called from any non-I/O thread. The Broker
// must outlive the server.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "net/http_stats.h"
#include "net/tls.h"
#include "net/web_guard.h"
#include "server/broker.h"

namespace ym::net {

namespace detail {
class HttpServerImpl;
}  // namespace detail

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7433;  // 0 picks a free port; see local_port()
  int io_threads = 2;
  std::size_t max_request_bytes = 16 << 20;        // request body
  std::size_t max_header_bytes = 16 << 10;         // request line and headers
  std::size_t max_payload_bytes = 1 << 20;         // one payload or ack result, as kept
  std::chrono::milliseconds idle_timeout{60'000};  // waiting for and reading one request
  std::chrono::milliseconds write_timeout{30'000};
  std::chrono::milliseconds shutdown_timeout{10'000};
  // A list page stops before the job that would take its body past this (docs/api.md).
  std::size_t max_reply_bytes = 8 << 20;
  // Server-wide budget of reply bytes handed to connections and not yet written. A reply over
  // kSmallReplyBytes that would take the total past it is answered 503 + Retry-After instead,
  // so clients that never read cannot make the server hold more than this.
  std::size_t max_queued_reply_bytes = 64 << 20;
  // Server-wide budget of request bodies being read: a body over 64 KiB reserves its
  // Content-Length (a chunked one max_request_bytes) before it is read; past the budget the
  // request is answered 503 + Retry-After and the connection closed.
  std::size_t max_reading_request_bytes = 256 << 20;
  // Open connections in total and per client IP address. Past either cap a new connection gets
  // a 503 with `Connection: close` at once. The total is also kept reserved_fds below the
  // process's file-descriptor limit, so that the store, logs and accept itself always have one.
  std::size_t max_connections = 10'000;
  std::size_t max_connections_per_client = 1'000;
  std::size_t reserved_fds = 64;
  // Renders /metrics (Prometheus text); when empty, /metrics serves an empty body.
  std::function<std::string()> metrics_renderer;
  // Renders GET /v1/alerts (net/api.h ApiOptions::alerts_renderer).
  std::function<std::string()> alerts_renderer;
  // Renders GET /v1/audit/checkpoint (net/api.h ApiOptions::audit_checkpoint_renderer).
  std::function<std::string()> audit_checkpoint_renderer;
  // Host, Origin and content-type checks applied to every request before the Api sees it
  // (net/web_guard.h, docs/security.md).
  WebGuardOptions web;
  // TLS (net/tls.h, docs/security.md): when tls.cert_file is set the listener speaks only TLS.
  // A connection that has not finished its handshake within handshake_timeout is closed.
  TlsFiles tls;
  std::chrono::milliseconds handshake_timeout{10'000};
};

class HttpServer {
 public:
  HttpServer(Broker& broker, HttpServerOptions options);
  ~HttpServer();  // calls Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port and starts serving. kIoError when the address cannot be resolved or bound;
  // kInternal when called twice.
  Status Start();
  void Stop();

  // TLS only: reads the certificate, key and client CA files again into a new context, used by
  // the connections accepted from now on; connections already open keep theirs. On error (a
  // missing file, a key that does not match, an expired certificate, a bad CA file) the
  // context in use is kept, whole, and the error returned. Counted in
  // stats().tls_reloads / tls_reload_failures. kInvalidState when TLS is off or the server is
  // not started.
  Status ReloadTls();

  // The bound port (the chosen one when options.port was 0); 0 before Start().
  std::uint16_t local_port() const;
  // Access counters; valid for the life of the server.
  const HttpStats& stats() const;

 private:
  std::unique_ptr<detail::HttpServerImpl> impl_;
};

}  // namespace ym::net
