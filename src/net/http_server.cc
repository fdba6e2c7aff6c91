#include "net/http_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "net/api.h"
#include "net/authenticator.h"
#include "net/request_log.h"
#include "obs/logging.h"

namespace ym::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view kRequestIdHeader = "X-Request-Id";

// Replies up to this size are never refused for the queued-bytes budget: error bodies, acks,
// heartbeats and health checks stay cheap to answer whatever slow readers hold.
constexpr std::size_t kSmallReplyBytes = 64 << 10;

// Sent on a connection refused at accept, before it is closed. No request was read, so it
// carries a generated request id, like every response.
std::string BusyResponse() {
  static constexpr std::string_view kBody =
      R"({"error":{"code":"unavailable","message":"too many connections; retry later"}})";
  return fmt::format(
      "HTTP/1.1 503 Service Unavailable\r\nServer: yardmaster\r\n"
      "Content-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
      "X-Request-Id: {}\r\nContent-Length: {}\r\n\r\n{}",
      NewRequestId(), kBody.size(), kBody);
}

// Best effort: a refused client learns why when its socket buffer has room (it always has, the
// connection is new); then the connection is closed. A TLS client could not read a plain
// answer (it expects a handshake), so on a TLS listener the connection is only closed.
void RefuseConnection(int fd, bool tls) {
  if (!tls) {
    const std::string response = BusyResponse();
    [[maybe_unused]] ssize_t n =
        ::send(fd, response.data(), response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  ::shutdown(fd, SHUT_RDWR);
}

// Lets Broker callbacks, which may run after the server stopped (or, if the owner forgot to stop
// the Broker first, after it was destroyed), post onto the io_context only while it exists.
struct ReplyGate {
  std::mutex mu;
  bool open = true;  // GUARDED_BY(mu)
};

// How long a clean close after a lease reply is watched for the reset that shows the reply was
// not read (see Session::CheckUnreadReply): a round trip, with room for a loaded machine.
constexpr auto kUnreadReplyGrace = std::chrono::milliseconds(200);

// How long a TLS connection being closed after its last reply waits for the client's
// close_notify (most clients just close the socket, which ends the wait at once).
constexpr auto kTlsShutdownLimit = std::chrono::milliseconds(2'000);

// A request refused from its header while its body is still coming (Admit) is answered at once;
// then, before the close, what the client still sends is read and dropped (never kept) for at
// most this long, so that a client that writes its whole body before reading the answer gets the
// answer rather than a reset. Bounded as well by max_request_bytes.
constexpr auto kLingerLimit = std::chrono::milliseconds(2'000);
constexpr std::size_t kLingerChunk = 16 << 10;

// What HttpServerImpl keeps of a connection, whatever its stream type (plain or TLS).
class SessionBase {
 public:
  SessionBase(asio::any_io_executor strand, std::string client)
      : strand_(std::move(strand)), client_(std::move(client)) {}
  virtual ~SessionBase() = default;
  const asio::any_io_executor& strand() const { return strand_; }
  const std::string& client() const { return client_; }
  virtual void Start() = 0;
  virtual void BeginShutdown() = 0;
  virtual void ForceClose() = 0;

 protected:
  const asio::any_io_executor strand_;
  const std::string client_;  // the peer's address, for max_connections_per_client
};

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

}  // namespace

namespace detail {

// Internal to this file: members are public so that Session, the one other class here, can
// reach the server's shared parts; the GUARDED_BY notes say which need mu_.

class HttpServerImpl {
 public:
  HttpServerImpl(Broker& broker, HttpServerOptions options)
      : broker_(broker),
        options_(std::move(options)),
        gate_(std::make_shared<ReplyGate>()),
        accept_strand_(asio::make_strand(ioc_)),
        acceptor_(accept_strand_),
        accept_retry_(accept_strand_),
        api_(broker, MakeApiOptions()),
        web_(options_.web) {
    if (options_.tokens != nullptr) {
      auth_ = std::make_unique<Authenticator>(
          *options_.tokens, options_.clock != nullptr ? *options_.clock : system_clock_,
          options_.auth_throttle, &stats_);
    }
  }

  Status Start();
  void Stop();

  // Called by sessions (on their strands).
  void Remove(SessionBase* s);
  // The context for the next TLS connection (null when TLS is off).
  std::shared_ptr<asio::ssl::context> CurrentTls();
  Status ReloadTls();
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  Broker& broker_;
  const HttpServerOptions options_;
  HttpStats stats_;
  // Written under mu_ and read lock-free by /readyz and sessions: a flag, no data hangs on it.
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint16_t> port_{0};
  std::shared_ptr<ReplyGate> gate_;
  // Declared before everything that holds sockets or timers so that it is destroyed last.
  asio::io_context ioc_;
  asio::strand<asio::io_context::executor_type> accept_strand_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_;
  Api api_;
  const WebGuard web_;
  SystemClock system_clock_;
  std::unique_ptr<Authenticator> auth_;  // null: auth off

  ApiOptions MakeApiOptions();
  void DoAccept();
  void OnAccept(beast::error_code ec, tcp::socket socket);
  // Out of descriptors: accept one pending connection on the reserve descriptor and close it,
  // so the listener's backlog drains instead of the accept loop spinning on EMFILE.
  bool AcceptOnReserve();
  void LogAcceptError(const beast::error_code& ec);

  // On the accept strand only.
  int reserve_fd_ = -1;
  std::chrono::steady_clock::time_point last_accept_log_{};
  std::uint64_t accept_errors_unlogged_ = 0;
  // Set by Start: max_connections, lowered to fit the descriptor limit.
  std::size_t max_connections_ = 0;

  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;  // GUARDED_BY(mu_)
  bool stopped_ = false;  // GUARDED_BY(mu_)
  // Owning references: a session lives until it closes and removes itself (or Stop clears it),
  // so Broker callbacks only need weak references and never extend a session past its server.
  std::unordered_map<SessionBase*, std::shared_ptr<SessionBase>> sessions_;  // GUARDED_BY(mu_)
  // The TLS context new connections get; replaced by ReloadTls. Each connection keeps a
  // reference to the one it started with.
  std::mutex tls_mu_;
  std::shared_ptr<asio::ssl::context> tls_;  // GUARDED_BY(tls_mu_)
  // Open connections per client address, for max_connections_per_client.
  std::unordered_map<std::string, std::size_t> per_client_;  // GUARDED_BY(mu_)
};

}  // namespace detail

namespace {

using detail::HttpServerImpl;

// One connection, over a plain TCP stream or a TLS one (the same code: the TLS session only
// adds the handshake before the first read). Every member function runs on the connection's
// strand.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  // `tls` is the context of a TLS session (null for a plain one); the session keeps it alive.
  Session(HttpServerImpl& server, tcp::socket socket, std::string client,
          std::shared_ptr<asio::ssl::context> tls)
      : SessionBase(socket.get_executor(), std::move(client)),
        server_(server),
        tls_(std::move(tls)),
        stream_(MakeStream(std::move(socket), tls_.get())) {}

  ~Session() override {
    UnqueueReply();
    UnreserveRequest();
  }

  void Start() override {
    if (phase_ == Phase::kClosed) return;
    if constexpr (kTls) {
      // The handshake has its own deadline; phase_ stays kNew, so Stop() closes it at once.
      tcp().expires_after(server_.options_.handshake_timeout);
      stream_.async_handshake(
          asio::ssl::stream_base::server,
          [self = this->shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); });
    } else {
      DoRead();
    }
  }

  // Stop(): close if idle between requests; otherwise finish the current request, then close.
  void BeginShutdown() override {
    if (phase_ == Phase::kClosed) return;
    bool idle = phase_ == Phase::kNew ||
                (phase_ == Phase::kReading && buffer_.size() == 0 && !parser_->got_some());
    if (idle || lingering_) Close();
  }

  void ForceClose() override {
    if (phase_ != Phase::kClosed) Close();
  }

 private:
  enum class Phase { kNew, kReading, kHandling, kWriting, kClosed };

  static Stream MakeStream(tcp::socket socket, asio::ssl::context* tls) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *tls);
    } else {
      return Stream(std::move(socket));
    }
  }

  // The TCP layer: timeouts and the socket itself.
  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }

  void OnHandshake(beast::error_code ec) {
    if (phase_ == Phase::kClosed) return;
    const TlsHandshakeResult result = ClassifyTlsHandshake(ec);
    server_.stats_.tls_handshakes[static_cast<std::size_t>(result)].fetch_add(
        1, std::memory_order_relaxed);
    if (ec) {
      // A scanner, a plain-HTTP client, a client that does not trust the certificate or (mTLS)
      // has none: nothing was read, so there is nothing to answer. Counted by result in
      // ym_tls_handshakes_total; logged at debug only (a scanner must not flood the log).
      YM_LOG(debug, kHttp)
          .Str("peer", client_)
          .Str("result", TlsHandshakeResultName(result))
          .Str("error", ec.message())
          .Msg("http: TLS handshake with {} failed ({}): {}", client_,
               TlsHandshakeResultName(result), ec.message());
      return Close();
    }
    DoRead();
  }

  void DoRead() {
    phase_ = Phase::kReading;
    request_id_.clear();
    web_headers_.clear();
    method_ = http::verb::unknown;
    request_bytes_ = 0;
    principal_.reset();
    refusal_.reset();
    parser_.emplace();
    parser_->body_limit(server_.options_.max_request_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(server_.options_.max_header_bytes));
    tcp().expires_after(server_.options_.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              self->OnHeader(ec);
                            });
  }

  void OnHeader(beast::error_code ec) {
    if (phase_ == Phase::kClosed) return;
    request_start_ = std::chrono::steady_clock::now();
    if (ec) return OnReadError(ec);
    method_ = parser_->get().method();
    request_id_ = RequestIdFor(parser_->get()[kRequestIdHeader]);
    unread_leases_.clear();  // the client speaks again: it read the previous reply
    if (Status framing = CheckFraming(parser_->get()); !framing.ok()) {
      server_.stats_.bad_framing.fetch_add(1, std::memory_order_relaxed);
      return RespondAndClose(framing);
    }
    if (!Admit()) return;
    if (parser_->is_done()) return OnRead({});
    // Bodies are read whole: reserve their size from the server-wide budget first, so that many
    // clients sending (or trickling) large bodies at once cannot take the memory they would need.
    // A chunked body's size is unknown until read: it reserves the most it may grow to.
    const std::size_t body_bytes = parser_->content_length()
                                       ? static_cast<std::size_t>(*parser_->content_length())
                                       : server_.options_.max_request_bytes;
    if (body_bytes > kSmallReplyBytes && body_bytes <= server_.options_.max_request_bytes &&
        !ReserveRequest(body_bytes)) {
      server_.stats_.refused_requests.fetch_add(1, std::memory_order_relaxed);
      Status busy =
          Unavailable("the server is reading too many large request bodies at once; retry later");
      close_after_ = true;
      keep_alive_ = false;
      counted_in_flight_ = false;
      ApiResponse r = ErrorResponse(busy);
      r.headers.emplace_back("Retry-After", "1");
      return Write(std::move(r));
    }
    // Clients such as curl send `Expect: 100-continue` before a large body and wait for it.
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      continue_.emplace(http::status::continue_, 11);
      http::async_write(stream_, *continue_,
                        [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                          if (self->phase_ == Phase::kClosed) return;
                          if (ec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  // Host, Origin and content type (net/web_guard.h) and the API token (net/authenticator.h),
  // decided from the header alone, before any of the body is read or buffered: a refused request
  // never reaches the Api, and (auth on) a client without a valid token cannot make the server
  // read a body. Returns false when the request was answered here: every refusal of a request
  // without a valid token, and any refusal or CORS preflight without a body. If a body is still
  // unread, the connection closes after that answer: the unread bytes would otherwise be parsed
  // as the next request.
  bool Admit() {
    const auto& req = parser_->get();
    auto sv = [](beast::string_view v) { return std::string_view(v.data(), v.size()); };
    WebRequest web_req;
    web_req.method = req.method();
    web_req.target = sv(req.target());
    web_req.version = req.version();
    if (auto it = req.find(http::field::host); it != req.end()) web_req.host = sv(it->value());
    if (auto it = req.find(http::field::origin); it != req.end()) {
      web_req.origin = sv(it->value());
    }
    web_req.content_type = sv(req[http::field::content_type]);
    if (auto it = req.find(http::field::access_control_request_method); it != req.end()) {
      web_req.preflight_method = sv(it->value());
    }
    // The token is checked first, so that an authenticated request skips the Host and
    // content-type rules; a refusal is sent after the web guard's own (a preflight carries no
    // token and is answered by the guard).
    std::optional<Authenticator::Decision> auth;
    if (server_.auth_) {
      std::optional<std::string_view> authorization;
      std::size_t authorization_count = 0;
      for (auto [it, end] = req.equal_range(http::field::authorization); it != end; ++it) {
        if (!authorization) authorization = sv(it->value());
        ++authorization_count;
      }
      auth = server_.auth_->Check(req.method(), web_req.target, authorization, authorization_count,
                                  client_);
      web_req.authenticated = auth->principal && auth->principal->authenticated;
    }
    WebVerdict verdict = server_.web_.Check(web_req);
    web_headers_ = std::move(verdict.headers);
    const bool unauthenticated = auth && !auth->principal;
    if (verdict.kind == WebVerdict::Kind::kPass && !unauthenticated) {
      if (auth) principal_ = std::move(auth->principal);
      return true;
    }
    ApiResponse answer;
    if (verdict.kind == WebVerdict::Kind::kRefuse) {
      answer = ErrorResponse(verdict.error);
    } else if (verdict.kind == WebVerdict::Kind::kPreflight) {
      answer.status = 204;
      answer.content_type.clear();
    } else {
      server_.auth_->OnRefused(*auth, client_, request_id_);
      answer = ErrorResponse(auth->error);
      for (auto& h : auth->headers) answer.headers.push_back(std::move(h));
    }
    if (!unauthenticated && !parser_->is_done()) {
      // Refused by the web guard alone (auth off, or a valid token): the client may send
      // bodies anyway, so its body is read (and dropped) as before and the connection kept.
      refusal_ = std::move(answer);
      return true;
    }
    phase_ = Phase::kHandling;
    tcp().expires_never();
    keep_alive_ = req.keep_alive();
    if (!parser_->is_done()) {
      close_after_ = true;
      linger_ = true;
    }
    counted_in_flight_ = true;
    server_.stats_.in_flight.fetch_add(1, std::memory_order_relaxed);
    Write(std::move(answer));
    return false;
  }

  // RFC 9112 §6.1-6.3 and §3.2: refuse every request whose framing a proxy in front of us could
  // read differently, before reading its body, and close the connection after the answer.
  static Status CheckFraming(const http::request<http::string_body>& req) {
    auto count = [&req](http::field f) {
      auto range = req.equal_range(f);
      return std::distance(range.first, range.second);
    };
    const auto te = count(http::field::transfer_encoding);
    if (te > 0) {
      std::string_view value = req[http::field::transfer_encoding];
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
      }
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.remove_suffix(1);
      }
      if (te > 1 || !beast::iequals(value, "chunked")) {
        return InvalidRequest(
            "Transfer-Encoding must be exactly \"chunked\" (no other coding is supported)");
      }
      if (count(http::field::content_length) > 0) {
        return InvalidRequest("Transfer-Encoding and Content-Length must not both be sent");
      }
      if (req.version() < 11) return InvalidRequest("Transfer-Encoding needs HTTP/1.1");
    }
    if (count(http::field::content_length) > 1) {
      return InvalidRequest("Content-Length must be sent at most once");
    }
    if (req.version() >= 11) {
      const auto host = count(http::field::host);
      if (host == 0) return InvalidRequest("an HTTP/1.1 request needs a Host header");
      if (host > 1) return InvalidRequest("the Host header must be sent once");
    }
    return Status::Ok();
  }

  void ReadBody() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return RespondAndClose(Status(Code::kPayloadTooLarge,
                                    fmt::format("the request body is over the limit of {} bytes",
                                                server_.options_.max_request_bytes)));
    }
    if (ec == http::error::header_limit) {
      return RespondAndClose(
          InvalidRequest(fmt::format("the request headers are over the limit of {} bytes",
                                     server_.options_.max_header_bytes)));
    }
    if (!unread_leases_.empty() && buffer_.size() == 0 && !parser_->got_some() &&
        (ec == asio::error::connection_reset || ec == http::error::end_of_stream ||
         ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)) {
      return CheckUnreadReply(ec);
    }
    // Any other parse error: answer once, then close, since the byte stream can no longer be
    // trusted to frame the next request. A clean close, a timeout or a reset just closes.
    if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return RespondAndClose(
          InvalidRequest(fmt::format("malformed HTTP request: {}", ec.message())));
    }
    Close();
  }

  // The client closed after a reply that carried leases, before sending again: did it read that
  // reply? A socket closed with unread data answers with a reset, not a clean close. When the
  // client closed first and the reply crossed its close on the way, the clean close arrives
  // first and the reset the reply met follows: it is left as the socket's pending error, at
  // once or within a round trip, so a clean close is looked at again a little later.
  void CheckUnreadReply(beast::error_code ec) {
    const bool reset = ec == asio::error::connection_reset;
    if (reset || PendingReset()) {
      Close();
      ReleaseLeases(server_, std::move(unread_leases_), unread_request_id_);
      return;
    }
    unread_check_.emplace(strand_);
    unread_check_->expires_after(kUnreadReplyGrace);
    unread_check_->async_wait([self = this->shared_from_this()](beast::error_code wait_ec) {
      if (wait_ec || self->phase_ == Phase::kClosed) return;
      const bool unread = self->PendingReset();
      self->Close();
      if (unread) {
        ReleaseLeases(self->server_, std::move(self->unread_leases_), self->unread_request_id_);
      }
    });
  }

  bool PendingReset() {
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(tcp().socket().native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      return false;
    }
    return err == EPIPE || err == ECONNRESET;
  }

  void RespondAndClose(const Status& status) {
    close_after_ = true;
    keep_alive_ = false;
    counted_in_flight_ = false;
    Write(ErrorResponse(status));
  }

  void OnRead(beast::error_code ec) {
    if (phase_ == Phase::kClosed) return;
    if (ec) return OnReadError(ec);
    phase_ = Phase::kHandling;
    // A long-poll lease may legitimately keep the connection silent for wait_ms; the Api, not a
    // socket timer, bounds how long a request takes.
    tcp().expires_never();
    http::request<http::string_body> req = parser_->release();
    keep_alive_ = req.keep_alive();
    counted_in_flight_ = true;
    server_.stats_.in_flight.fetch_add(1, std::memory_order_relaxed);
    server_.stats_.request_bytes.fetch_add(req.body().size(), std::memory_order_relaxed);
    request_bytes_ = req.body().size();
    if (refusal_) {
      UnreserveRequest();
      ApiResponse answer = std::move(*refusal_);
      refusal_.reset();
      return Write(std::move(answer));
    }

    ApiRequest api_req;
    api_req.method = req.method();
    api_req.target = std::string(req.target());
    api_req.content_type = std::string(req[http::field::content_type]);
    for (auto [it, end] = req.equal_range("traceparent"); it != end; ++it) {
      api_req.traceparent.emplace_back(it->value());
    }
    for (auto [it, end] = req.equal_range("tracestate"); it != end; ++it) {
      api_req.tracestate.emplace_back(it->value());
    }
    api_req.body = std::move(req.body());
    api_req.request_id = request_id_;
    api_req.remote_address = client_;
    if (principal_) api_req.principal = std::move(*principal_);
    principal_.reset();
    bool long_poll = api_req.method == http::verb::post &&
                     (std::string_view(api_req.target).starts_with("/v1/leases") ||
                      std::string_view(api_req.target).starts_with("/v1/cancels:watch"));
    {
      // Lines logged while the request is handled on this thread carry its id.
      obs::ScopedLogFields scope;
      scope.Str("request_id", request_id_);
      server_.api_.Handle(std::move(api_req), MakeResponder());
    }
    // The body was parsed (and dropped) inside Handle: what a handler keeps is bounded by the
    // codec's limits and counted elsewhere.
    UnreserveRequest();
    if (long_poll && phase_ == Phase::kHandling) WatchForHangup();
  }

  // A lease may wait up to 30 s for jobs. If the client hangs up meanwhile, close at once, so
  // that the leases of the eventual reply are released rather than written into a dead socket
  // (which the kernel would often accept without error).
  void WatchForHangup() {
    tcp().socket().async_wait(tcp::socket::wait_read,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec || self->phase_ != Phase::kHandling) return;
                                if (self->PeerHungUp()) self->Close();
                              });
  }

  // True when the peer has closed its side (or the connection failed). A pipelined request
  // waiting to be read is not a hang-up: it is read after the current reply.
  bool PeerHungUp() {
    char c;
    ssize_t n = ::recv(tcp().socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

  // The reply may come from a Broker thread: hop back onto this connection's strand. The session
  // is held weakly so that a reply for a connection that was closed meanwhile can still give its
  // leases back.
  Responder MakeResponder() {
    std::weak_ptr<Session> weak = this->shared_from_this();
    // What the access line needs if the connection is gone when the reply comes.
    AccessEntry lost;
    lost.method = method_;
    lost.request_bytes = request_bytes_;
    lost.delivered = false;
    return [gate = server_.gate_, strand = strand_, weak, server = &server_, start = request_start_,
            lost, request_id = request_id_, peer = client_](ApiResponse r) {
      std::lock_guard<std::mutex> lock(gate->mu);
      if (!gate->open) return;
      asio::post(strand, [weak, server, start, lost, request_id, peer, r = std::move(r)]() mutable {
        if (auto self = weak.lock()) return self->Write(std::move(r));
        server->stats_.in_flight.fetch_sub(1, std::memory_order_relaxed);
        const std::uint64_t us = MicrosSince(start);
        server->stats_.CountRequest(r.route, r.status, us);
        lost.route = r.route;
        lost.status = r.status;
        lost.duration_us = us;
        lost.request_id = request_id;
        lost.peer = peer;
        LogAccess(lost);
        ReleaseLeases(*server, std::move(r.leases), request_id);
      });
    };
  }

  static void ReleaseLeases(HttpServerImpl& server,
                            std::vector<std::pair<JobId, std::uint64_t>> leases,
                            std::string_view request_id) {
    if (leases.empty()) return;
    server.stats_.released_leases.fetch_add(leases.size(), std::memory_order_relaxed);
    YM_LOG(info, kHttp)
        .Uint("count", leases.size())
        .Str("request_id", request_id)
        .Msg("http: releasing {} undelivered lease(s)", leases.size());
    server.broker_.Release(std::move(leases));
  }

  void Write(ApiResponse r) {
    // A lease reply to a client that hung up after WatchForHangup last looked would be written
    // into a socket the kernel still accepts data for: look once more, and give the leases back.
    if (phase_ != Phase::kClosed && !r.leases.empty() && PeerHungUp()) Close();
    if (phase_ == Phase::kClosed) {
      // Force-closed while the Broker worked: nothing to write to.
      Finish(r.route, r.status, 0, /*delivered=*/false);
      ReleaseLeases(server_, std::move(r.leases), request_id_);
      return;
    }
    phase_ = Phase::kWriting;
    if (r.stream && r.status == 200) return WriteStreamHead(std::move(r));
    if (r.body.size() > kSmallReplyBytes && !QueueReply(r.body.size())) {
      // The budget for bytes waiting on slow readers is spent: refuse this large reply rather
      // than hold it. Its leases go back at once, as for an undelivered reply.
      server_.stats_.refused_replies.fetch_add(1, std::memory_order_relaxed);
      ReleaseLeases(server_, std::move(r.leases), request_id_);
      RouteId route = r.route;
      r = ErrorResponse(Unavailable("the server is holding too many unsent reply bytes for slow "
                                    "readers; retry later"),
                        route);
      r.headers.emplace_back("Retry-After", "1");
    }
    res_ = {};
    res_.version(11);
    res_.result(r.status);
    res_.set(http::field::server, "yardmaster");
    if (!r.content_type.empty()) res_.set(http::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers) res_.set(name, value);
    for (auto& [name, value] : web_headers_) res_.set(name, value);
    // Every response names its request, errors included (net/request_log.h); a request that
    // failed before its headers were read gets a new id.
    if (request_id_.empty()) request_id_ = NewRequestId();
    res_.set(kRequestIdHeader, request_id_);
    res_.keep_alive(keep_alive_ && !close_after_ && !server_.stopping());
    res_.body() = std::move(r.body);
    res_.prepare_payload();
    // A 204 (the CORS preflight answer) has no body and must not declare one (RFC 9110 8.6).
    if (r.status == 204) res_.erase(http::field::content_length);
    route_ = r.route;
    leases_ = std::move(r.leases);
    tcp().expires_after(server_.options_.write_timeout);
    http::async_write(stream_, res_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        self->OnWrite(ec);
                      });
  }

  void OnWrite(beast::error_code ec) {
    Finish(route_, res_.result_int(), res_.body().size(), !ec);
    server_.stats_.response_bytes.fetch_add(res_.body().size(), std::memory_order_relaxed);
    UnqueueReply();
    const bool keep_alive = res_.keep_alive();
    // An idle keep-alive connection must not hold its last reply (up to max_reply_bytes).
    res_ = {};
    if (ec) {
      if (phase_ != Phase::kClosed) Close();
      ReleaseLeases(server_, std::move(leases_), request_id_);
      return;
    }
    // Written is not yet read: a client that closes its socket with the reply unread (it hung up,
    // or died, just as the reply went out) makes its kernel answer with a reset instead of a
    // clean close. Until the next request arrives, a reset gives these leases back.
    unread_leases_ = std::move(leases_);
    leases_.clear();
    if (!unread_leases_.empty()) unread_request_id_ = request_id_;
    if (phase_ == Phase::kClosed) return;
    // Stop() may have found this connection mid-write, when it was not idle: close it now.
    if (!keep_alive || server_.stopping()) return CloseAfterReply();
    DoRead();
  }

  // --- A streamed reply (ApiResponse::stream, net/api.h): the head with chunked transfer
  // encoding, then one chunk per piece, each written before the next piece is asked for, then
  // the last (empty) chunk. A failed or timed-out write, or a piece that is an error, ends the
  // connection without the last chunk, and the stream is dropped: no further page is read.
  void WriteStreamHead(ApiResponse r) {
    stream_head_.emplace();
    stream_head_->version(11);
    stream_head_->result(r.status);
    stream_head_->set(http::field::server, "yardmaster");
    if (!r.content_type.empty()) stream_head_->set(http::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers) stream_head_->set(name, value);
    for (auto& [name, value] : web_headers_) stream_head_->set(name, value);
    if (request_id_.empty()) request_id_ = NewRequestId();
    stream_head_->set(kRequestIdHeader, request_id_);
    stream_head_->keep_alive(keep_alive_ && !close_after_ && !server_.stopping());
    stream_head_->chunked(true);
    stream_sr_.emplace(*stream_head_);
    body_stream_ = std::move(r.stream);
    route_ = r.route;
    stream_bytes_ = 0;
    stream_last_ = false;
    stream_ended_ = false;
    tcp().expires_after(server_.options_.write_timeout);
    http::async_write_header(stream_, *stream_sr_,
                             [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                               self->OnStreamWritten(ec);
                             });
  }

  void OnStreamWritten(beast::error_code ec) {
    if (ec || phase_ == Phase::kClosed) return EndStream(false);
    if (stream_ended_) return EndStream(true);  // the last chunk is out
    if (stream_last_) {
      stream_ended_ = true;
      tcp().expires_after(server_.options_.write_timeout);
      return asio::async_write(stream_, http::make_chunk_last(),
                               [self = this->shared_from_this()](beast::error_code e, std::size_t) {
                                 self->OnStreamWritten(e);
                               });
    }
    AskNextPiece();
  }

  void AskNextPiece() {
    // The producer may take a while (a store read); no write is pending meanwhile.
    tcp().expires_never();
    std::weak_ptr<Session> weak = this->shared_from_this();
    body_stream_->Next(
        [gate = server_.gate_, strand = strand_, weak](Result<StreamPiece> piece) mutable {
          std::lock_guard<std::mutex> lock(gate->mu);
          if (!gate->open) return;
          asio::post(strand, [weak, piece = std::move(piece)]() mutable {
            if (auto self = weak.lock()) self->OnPiece(std::move(piece));
          });
        });
  }

  void OnPiece(Result<StreamPiece> piece) {
    if (phase_ == Phase::kClosed) return EndStream(false);
    if (!piece.ok()) {
      YM_LOG(warn, kHttp)
          .Str("request_id", request_id_)
          .Str("error", piece.status().message())
          .Msg("http: streamed reply failed midway: {}", piece.status().message());
      return EndStream(false);
    }
    stream_last_ = piece->last;
    stream_chunk_ = std::move(piece->bytes);
    if (stream_chunk_.empty()) return OnStreamWritten({});
    stream_bytes_ += stream_chunk_.size();
    tcp().expires_after(server_.options_.write_timeout);
    asio::async_write(stream_, http::make_chunk(asio::buffer(stream_chunk_)),
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        self->OnStreamWritten(ec);
                      });
  }

  void EndStream(bool delivered) {
    Finish(route_, 200, stream_bytes_, delivered);
    server_.stats_.response_bytes.fetch_add(stream_bytes_, std::memory_order_relaxed);
    const bool keep_alive = stream_head_ && stream_head_->keep_alive();
    body_stream_.reset();
    stream_sr_.reset();
    stream_head_.reset();
    stream_chunk_ = std::string();
    if (!delivered) {
      if (phase_ != Phase::kClosed) Close();
      return;
    }
    if (phase_ == Phase::kClosed) return;
    if (!keep_alive || server_.stopping()) return CloseAfterReply();
    DoRead();
  }

  // Takes `bytes` from the server-wide budget of queued reply bytes; false when it is spent.
  bool QueueReply(std::size_t bytes) {
    auto& queued = server_.stats_.queued_reply_bytes;
    const auto n = static_cast<std::int64_t>(bytes);
    const auto before = queued.fetch_add(n, std::memory_order_relaxed);
    if (static_cast<std::size_t>(before + n) > server_.options_.max_queued_reply_bytes) {
      queued.fetch_sub(n, std::memory_order_relaxed);
      return false;
    }
    queued_bytes_ = bytes;
    return true;
  }

  bool ReserveRequest(std::size_t bytes) {
    auto& reserved = server_.stats_.reserved_request_bytes;
    const auto n = static_cast<std::int64_t>(bytes);
    const auto before = reserved.fetch_add(n, std::memory_order_relaxed);
    if (static_cast<std::size_t>(before + n) > server_.options_.max_reading_request_bytes) {
      reserved.fetch_sub(n, std::memory_order_relaxed);
      return false;
    }
    reserved_request_bytes_ = bytes;
    return true;
  }

  void UnreserveRequest() {
    if (reserved_request_bytes_ == 0) return;
    server_.stats_.reserved_request_bytes.fetch_sub(
        static_cast<std::int64_t>(reserved_request_bytes_), std::memory_order_relaxed);
    reserved_request_bytes_ = 0;
  }

  void UnqueueReply() {
    if (queued_bytes_ == 0) return;
    server_.stats_.queued_reply_bytes.fetch_sub(static_cast<std::int64_t>(queued_bytes_),
                                                std::memory_order_relaxed);
    queued_bytes_ = 0;
  }

  static std::uint64_t MicrosSince(std::chrono::steady_clock::time_point start) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    return us > 0 ? static_cast<std::uint64_t>(us) : 0;
  }

  void Finish(RouteId route, unsigned status, std::size_t response_bytes, bool delivered) {
    const std::uint64_t us = MicrosSince(request_start_);
    server_.stats_.CountRequest(route, status, us);
    if (obs::LogEnabled(obs::Component::kAccess, spdlog::level::info)) {
      AccessEntry e;
      e.method = method_;
      e.route = route;
      e.status = status;
      e.duration_us = us;
      e.request_bytes = request_bytes_;
      e.response_bytes = response_bytes;
      e.request_id = request_id_;
      e.peer = client_;
      e.delivered = delivered;
      LogAccess(e);
    }
    if (counted_in_flight_) {
      server_.stats_.in_flight.fetch_sub(1, std::memory_order_relaxed);
      counted_in_flight_ = false;
    }
  }

  // The end of a connection whose last reply was written: over TLS the close_notify alert is
  // sent first (bounded by write_timeout), so that a client can tell the end from a truncation;
  // then, or at once over plain TCP, the socket is closed.
  void CloseAfterReply() {
    if (linger_) return Linger();
    if constexpr (kTls) {
      tcp().expires_after(std::min(server_.options_.write_timeout, kTlsShutdownLimit));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {
        if (self->phase_ != Phase::kClosed) self->Close();
      });
    } else {
      Close();
    }
  }

  // After the answer to a request refused before its body (see kLingerLimit): no more is
  // written (plain TCP: the write side is shut down, so the client sees the end at once), what
  // arrives is dropped in small reads until the client closes, the limit passes, or
  // max_request_bytes were dropped; then the connection is closed.
  void Linger() {
    linger_ = false;
    lingering_ = true;
    if constexpr (!kTls) {
      beast::error_code ignored;
      tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    if (server_.stopping()) return Close();
    linger_chunk_.resize(kLingerChunk);
    tcp().expires_after(kLingerLimit);
    DropSome();
  }

  void DropSome() {
    stream_.async_read_some(asio::buffer(linger_chunk_), [self = this->shared_from_this()](
                                                             beast::error_code ec, std::size_t n) {
      if (self->phase_ == Phase::kClosed) return;
      self->dropped_ += n;
      if (ec || self->dropped_ >= self->server_.options_.max_request_bytes) {
        return self->Close();
      }
      self->DropSome();
    });
  }

  void Close() {
    phase_ = Phase::kClosed;
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().socket().close(ignored);
    server_.Remove(this);
  }

  HttpServerImpl& server_;
  // Declared before stream_, which refers to it, so that it outlives it.
  const std::shared_ptr<asio::ssl::context> tls_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  http::response<http::string_body> res_;
  std::vector<std::pair<JobId, std::uint64_t>> leases_;  // carried by res_
  // A streamed reply in progress (WriteStreamHead): its head and serializer, the producer, the
  // chunk being written, bytes written so far; stream_last_: the producer said this chunk is
  // the last; stream_ended_: the final empty chunk is being written.
  std::optional<http::response<http::empty_body>> stream_head_;
  std::optional<http::response_serializer<http::empty_body>> stream_sr_;
  std::shared_ptr<BodyStream> body_stream_;
  std::string stream_chunk_;
  std::size_t stream_bytes_ = 0;
  bool stream_last_ = false;
  bool stream_ended_ = false;
  // Leases of the last reply written, until the client sends again (see OnWrite).
  std::vector<std::pair<JobId, std::uint64_t>> unread_leases_;
  std::optional<asio::steady_timer> unread_check_;  // see CheckUnreadReply
  RouteId route_ = RouteId::kUnmatched;
  // The request being served (one at a time per connection) for its response header and log
  // lines; the id of the last reply that carried leases, for the line that releases them.
  std::string request_id_;
  std::string unread_request_id_;
  // CORS headers for the current request's response (WebGuard), empty for most requests.
  std::vector<std::pair<std::string, std::string>> web_headers_;
  // Who sent the current request, when API tokens are on (set by Admit from its header).
  std::optional<Principal> principal_;
  // The web guard's answer to the current request when it is sent after its body (see Admit).
  std::optional<ApiResponse> refusal_;
  http::verb method_ = http::verb::unknown;
  std::uint64_t request_bytes_ = 0;
  std::size_t queued_bytes_ = 0;            // this connection's share of queued_reply_bytes
  std::size_t reserved_request_bytes_ = 0;  // its share of reserved_request_bytes
  Phase phase_ = Phase::kNew;
  bool keep_alive_ = false;
  bool close_after_ = false;
  // linger_: close through Linger after this reply; lingering_: Linger is dropping input.
  bool linger_ = false;
  bool lingering_ = false;
  std::vector<char> linger_chunk_;
  std::size_t dropped_ = 0;
  bool counted_in_flight_ = false;
  // When the current request's header was read (ym_http_request_duration_seconds).
  std::chrono::steady_clock::time_point request_start_ = std::chrono::steady_clock::now();
};

}  // namespace

namespace detail {

static_assert(kTlsHandshakeResults == HttpStats::kTlsResults);

void LogTlsLoaded(const TlsContext& tls, std::string_view what) {
  YM_LOG(info, kHttp)
      .Str("subject", tls.subject)
      .Str("not_after", tls.not_after)
      .Uint("client_cas", tls.client_cas)
      .Msg("TLS certificate {}: {} (valid until {}){}", what, tls.subject, tls.not_after,
           tls.client_cas > 0 ? fmt::format("; {} client CA certificate(s)", tls.client_cas)
                              : std::string());
  for (const std::string& w : tls.warnings) YM_LOG(warn, kHttp).Msg("TLS: {}", w);
}

ApiOptions HttpServerImpl::MakeApiOptions() {
  ApiOptions o;
  o.codec.max_payload_bytes = options_.max_payload_bytes;
  o.max_request_bytes = options_.max_request_bytes;
  o.max_reply_bytes = options_.max_reply_bytes;
  o.metrics_renderer = options_.metrics_renderer;
  o.alerts_renderer = options_.alerts_renderer;
  o.tokens = options_.token_admin;
  o.audit_checkpoint_renderer = options_.audit_checkpoint_renderer;
  o.server_stopping = &stopping_;
  o.post = [this, gate = gate_](std::function<void()> task) {
    std::lock_guard<std::mutex> lock(gate->mu);
    if (gate->open) asio::post(ioc_, std::move(task));
  };
  return o;
}

Status HttpServerImpl::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return Internal("the HTTP server was already started");
    started_ = true;
  }
  std::optional<TlsContext> loaded;
  if (options_.tls.enabled()) {
    auto tls = MakeServerTlsContext(options_.tls);
    if (!tls.ok()) return tls.status();
    loaded = std::move(tls).value();
    stats_.tls_cert_not_after.store(loaded->not_after_unix, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(tls_mu_);
    tls_ = loaded->ctx;
  }
  beast::error_code ec;
  tcp::resolver resolver(ioc_);
  auto results = resolver.resolve(options_.host, std::to_string(options_.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return IoError(
        fmt::format("cannot resolve {}: {}", options_.host, ec ? ec.message() : "no address"));
  }
  tcp::endpoint endpoint = results.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    acceptor_.close(ignored);
    return IoError(
        fmt::format("cannot listen on {}:{}: {}", options_.host, options_.port, ec.message()));
  }
  port_.store(acceptor_.local_endpoint().port(), std::memory_order_relaxed);
  // The bound address is the server's first log line (tools and tests read the port from it);
  // server_main logs the rest of the start-up summary after it.
  const bool v6 = endpoint.address().is_v6();
  YM_LOG(info, kHttp)
      .Str("address", endpoint.address().to_string())
      .Uint("port", port_.load())
      .Str("scheme", options_.tls.enabled() ? "https" : "http")
      .Msg("listening on {}://{}{}{}:{}", options_.tls.enabled() ? "https" : "http", v6 ? "[" : "",
           endpoint.address().to_string(), v6 ? "]" : "", port_.load());
  if (loaded) LogTlsLoaded(*loaded, "loaded");

  // Connections must leave descriptors for the store, the logs and accept itself.
  max_connections_ = std::max<std::size_t>(1, options_.max_connections);
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
    const auto limit = static_cast<std::size_t>(nofile.rlim_cur);
    const std::size_t usable = limit > options_.reserved_fds ? limit - options_.reserved_fds : 1;
    if (usable < max_connections_) {
      YM_LOG(warn, kHttp)
          .Msg(
              "http: max_connections lowered from {} to {} to fit the file-descriptor limit {} "
              "(raise it with `ulimit -n` or LimitNOFILE)",
              max_connections_, usable, limit);
      max_connections_ = usable;
    }
  }
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

  work_.emplace(ioc_.get_executor());
  asio::post(accept_strand_, [this] { DoAccept(); });
  int n = std::max(1, options_.io_threads);
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this] {
      // Handlers do not throw by design; should one, log it and keep the thread serving.
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          YM_LOG(err, kHttp).Msg("http: I/O handler threw: {}", e.what());
        }
      }
    });
  }
  return Status::Ok();
}

std::shared_ptr<asio::ssl::context> HttpServerImpl::CurrentTls() {
  std::lock_guard<std::mutex> lock(tls_mu_);
  return tls_;
}

Status HttpServerImpl::ReloadTls() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stopped_) return InvalidState("the HTTP server is not running");
  }
  if (!options_.tls.enabled()) return InvalidState("TLS is not configured");
  auto tls = MakeServerTlsContext(options_.tls);
  if (!tls.ok()) {
    stats_.tls_reload_failures.fetch_add(1, std::memory_order_relaxed);
    return tls.status();
  }
  {
    std::lock_guard<std::mutex> lock(tls_mu_);
    tls_ = std::move(tls->ctx);
  }
  stats_.tls_cert_not_after.store(tls->not_after_unix, std::memory_order_relaxed);
  stats_.tls_reloads.fetch_add(1, std::memory_order_relaxed);
  // Logged last: whoever reads the line finds the new context and the metrics in place.
  LogTlsLoaded(*tls, "reloaded");
  return Status::Ok();
}

void HttpServerImpl::DoAccept() {
  acceptor_.async_accept(
      asio::make_strand(ioc_),
      asio::bind_executor(accept_strand_, [this](beast::error_code ec, tcp::socket socket) {
        OnAccept(ec, std::move(socket));
      }));
}

void HttpServerImpl::LogAcceptError(const beast::error_code& ec) {
  // At most one line per 10 s: a flood must not turn into a log flood.
  const auto now = std::chrono::steady_clock::now();
  if (last_accept_log_ != std::chrono::steady_clock::time_point{} &&
      now - last_accept_log_ < std::chrono::seconds(10)) {
    ++accept_errors_unlogged_;
    return;
  }
  YM_LOG(warn, kHttp)
      .Str("error", ec.message())
      .Uint("unreported", accept_errors_unlogged_)
      .Msg("http: accept failed: {} ({} more since the last report)", ec.message(),
           accept_errors_unlogged_);
  last_accept_log_ = now;
  accept_errors_unlogged_ = 0;
}

bool HttpServerImpl::AcceptOnReserve() {
  if (reserve_fd_ < 0) return false;
  ::close(reserve_fd_);
  reserve_fd_ = -1;
  int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd >= 0) {
    RefuseConnection(fd, options_.tls.enabled());
    ::close(fd);
    stats_.rejected_no_fd.fetch_add(1, std::memory_order_relaxed);
  }
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd >= 0 && reserve_fd_ >= 0;
}

void HttpServerImpl::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (!acceptor_.is_open() || ec == asio::error::operation_aborted) return;
  if (ec) {
    LogAcceptError(ec);
    const bool no_fds = ec == asio::error::no_descriptors || ec.value() == ENFILE;
    if (no_fds && AcceptOnReserve()) {
      // One pending connection was taken off the backlog and refused: that is progress.
      asio::post(accept_strand_, [this] { DoAccept(); });
      return;
    }
    // Back off instead of spinning on the error.
    accept_retry_.expires_after(std::chrono::milliseconds(100));
    accept_retry_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor_.is_open()) DoAccept();
    });
    return;
  }
  beast::error_code ignored;
  std::string client;
  auto peer = socket.remote_endpoint(ignored);
  if (!ignored) client = peer.address().to_string();
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::atomic<std::uint64_t>* rejected = nullptr;
    if (sessions_.size() >= max_connections_) {
      rejected = &stats_.rejected_total_cap;
    } else if (auto it = per_client_.find(client);
               it != per_client_.end() && it->second >= options_.max_connections_per_client) {
      rejected = &stats_.rejected_client_cap;
    }
    if (rejected != nullptr) {
      rejected->fetch_add(1, std::memory_order_relaxed);
      RefuseConnection(socket.native_handle(), options_.tls.enabled());
      socket.close(ignored);
      // Accepting again at once is right: the check is cheap and the backlog must drain.
      asio::post(accept_strand_, [this] { DoAccept(); });
      return;
    }
  }
  // Responses are small and written whole: never hold them back for Nagle.
  socket.set_option(tcp::no_delay(true), ignored);
  stats_.accepted_connections.fetch_add(1, std::memory_order_relaxed);
  std::shared_ptr<SessionBase> session;
  if (auto tls = CurrentTls()) {
    session = std::make_shared<Session<TlsStream>>(*this, std::move(socket), client, tls);
  } else {
    session = std::make_shared<Session<PlainStream>>(*this, std::move(socket), client, nullptr);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_.load(std::memory_order_relaxed)) {
      sessions_.emplace(session.get(), session);
      ++per_client_[session->client()];
      stats_.open_connections.fetch_add(1, std::memory_order_relaxed);
      asio::post(session->strand(), [session] { session->Start(); });
    }
  }
  DoAccept();
}

void HttpServerImpl::Remove(SessionBase* s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (sessions_.erase(s) > 0) {
    stats_.open_connections.fetch_sub(1, std::memory_order_relaxed);
    auto it = per_client_.find(s->client());
    if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
  }
  cv_.notify_all();
}

void HttpServerImpl::Stop() {
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stopped_) return;
    stopped_ = true;
    stopping_.store(true, std::memory_order_relaxed);
    for (auto& [ptr, s] : sessions_) live.push_back(s);
  }
  asio::post(accept_strand_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  });
  for (auto& s : live) asio::post(s->strand(), [s] { s->BeginShutdown(); });
  live.clear();

  auto deadline = std::chrono::steady_clock::now() + options_.shutdown_timeout;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, deadline, [this] { return sessions_.empty(); });
    for (auto& [ptr, s] : sessions_) live.push_back(s);
  }
  if (!live.empty()) {
    YM_LOG(warn, kHttp)
        .Uint("count", live.size())
        .Msg("http: closing {} connection(s) still busy at the shutdown deadline", live.size());
    for (auto& s : live) asio::post(s->strand(), [s] { s->ForceClose(); });
    live.clear();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(1), [this] { return sessions_.empty(); });
  }
  {
    std::lock_guard<std::mutex> lock(gate_->mu);
    gate_->open = false;
  }
  work_.reset();
  ioc_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  // The close posted above may not have run: ioc_.stop() can win the race when the sessions end
  // quickly. No thread runs the io_context now, so close the listener here; when Stop returns,
  // a new connection is refused, not left in the kernel's backlog.
  {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.open_connections.fetch_sub(static_cast<std::int64_t>(sessions_.size()),
                                    std::memory_order_relaxed);
  sessions_.clear();
  per_client_.clear();
  if (reserve_fd_ >= 0) {
    ::close(reserve_fd_);
    reserve_fd_ = -1;
  }
}

}  // namespace detail

HttpServer::HttpServer(Broker& broker, HttpServerOptions options)
    : impl_(std::make_unique<detail::HttpServerImpl>(broker, std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() { return impl_->Start(); }

Status HttpServer::ReloadTls() { return impl_->ReloadTls(); }

void HttpServer::Stop() { impl_->Stop(); }

std::uint16_t HttpServer::local_port() const {
  return impl_->port_.load(std::memory_order_relaxed);
}

const HttpStats& HttpServer::stats() const { return impl_->stats_; }

}  // namespace ym::net
