#include "client/http_client.h"

#include <openssl/crypto.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <utility>

namespace ym::client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

bool IsHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

bool IsIpv6Char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
         c == '.';
}

http::verb ToVerb(HttpMethod m) {
  switch (m) {
    case HttpMethod::kGet:
      return http::verb::get;
    case HttpMethod::kPost:
      return http::verb::post;
    case HttpMethod::kPut:
      return http::verb::put;
    case HttpMethod::kPatch:
      return http::verb::patch;
    case HttpMethod::kDelete:
      return http::verb::delete_;
  }
  return http::verb::get;
}

// Errors that mean "the peer closed or reset the connection": on a reused idle connection they
// are the benign keep-alive race, not a server failure.
bool IsDroppedConnection(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted || ec == asio::error::not_connected ||
         ec == asio::ssl::error::stream_truncated;
}

}  // namespace

std::string BaseUrl::Authority() const {
  std::string out;
  if (host.find(':') != std::string::npos) {
    out = "[" + host + "]";
  } else {
    out = host;
  }
  out += ':';
  out += std::to_string(port);
  return out;
}

Result<BaseUrl> ParseBaseUrl(std::string_view url) {
  const std::string shown(url);
  const bool tls = url.substr(0, 8) == "https://";
  const std::string_view scheme = tls ? "https://" : "http://";
  if (url.substr(0, scheme.size()) != scheme) {
    return InvalidRequest("server URL '" + shown + "' must look like http://HOST:PORT");
  }
  std::string_view rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    return InvalidRequest("server URL '" + shown +
                          "' must be http://HOST:PORT without path, query or credentials");
  }
  BaseUrl out;
  out.tls = tls;
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    const std::size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return InvalidRequest("server URL '" + shown + "': unterminated [IPv6] host");
    }
    const std::string_view host = rest.substr(1, close - 1);
    for (char c : host) {
      if (!IsIpv6Char(c)) {
        return InvalidRequest("server URL '" + shown + "': bad IPv6 address");
      }
    }
    out.host = std::string(host);
    const std::string_view after = rest.substr(close + 1);
    if (after.empty() || after.front() != ':') {
      return InvalidRequest("server URL '" + shown + "' needs a port: http://HOST:PORT");
    }
    port_text = after.substr(1);
  } else {
    const std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return InvalidRequest("server URL '" + shown + "' needs a port: http://HOST:PORT");
    }
    const std::string_view host = rest.substr(0, colon);
    for (char c : host) {
      if (!IsHostNameChar(c)) {
        return InvalidRequest("server URL '" + shown + "': bad host name (IPv6 needs [brackets])");
      }
    }
    out.host = std::string(host);
    port_text = rest.substr(colon + 1);
  }
  if (out.host.empty()) {
    return InvalidRequest("server URL '" + shown + "' has an empty host");
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port == 0 || port > 65535) {
    return InvalidRequest("server URL '" + shown + "': port must be a number in 1..65535");
  }
  out.port = static_cast<std::uint16_t>(port);
  return out;
}

namespace {

// A token as read from a file: its first line, without trailing whitespace.
Result<std::string> ReadTokenFile(const std::string& path, std::string_view origin) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) {
    return InvalidRequest("cannot read the token file " + path + " (" + std::string(origin) +
                          "): " + std::strerror(errno));
  }
  std::string text;
  char buf[512];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < 8192) text.append(buf, n);
  std::fclose(f);
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ' || text.back() == '\t')) {
    text.pop_back();
  }
  if (text.empty()) {
    return InvalidRequest("the token file " + path + " (" + std::string(origin) + ") is empty");
  }
  return text;
}

}  // namespace

Result<std::string> ResolveToken(const std::string& token, const std::string& token_file) {
  std::string value;
  std::string_view origin;
  if (!token.empty()) {
    value = token;
    origin = "--token";
  } else if (!token_file.empty()) {
    auto r = ReadTokenFile(token_file, "--token-file");
    if (!r.ok()) return r.status();
    value = std::move(r).value();
    origin = "--token-file";
  } else if (const char* env = std::getenv("YM_TOKEN"); env != nullptr && *env != '\0') {
    value = env;
    origin = "$YM_TOKEN";
  } else if (const char* file = std::getenv("YM_TOKEN_FILE"); file != nullptr && *file != '\0') {
    auto r = ReadTokenFile(file, "$YM_TOKEN_FILE");
    if (!r.ok()) return r.status();
    value = std::move(r).value();
    origin = "$YM_TOKEN_FILE";
  } else {
    return std::string();
  }
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return InvalidRequest("the API token from " + std::string(origin) +
                            " holds a space or a control character; it cannot be sent");
    }
  }
  return value;
}

class HttpClient::Impl {
 public:
  Impl(BaseUrl base, HttpClientOptions options)
      : base_(std::move(base)), options_(std::move(options)), stream_(ioc_) {}
  ~Impl() { OPENSSL_cleanse(authorization_.data(), authorization_.size()); }

  using TlsStream = asio::ssl::stream<beast::tcp_stream&>;

  Result<HttpResponse> Send(HttpMethod method, std::string_view target, std::string_view body,
                            std::chrono::milliseconds extra_timeout) {
    http::request<http::string_body> req{ToVerb(method), target, 11};
    req.set(http::field::host, base_.Authority());
    req.set(http::field::user_agent, options_.user_agent);
    req.set(http::field::accept, "application/json");
    for (const auto& [name, value] : options_.headers) req.set(name, value);
    if (!token_resolved_) {
      auto token = ResolveToken(options_.token, options_.token_file);
      if (!token.ok()) return token.status();
      authorization_ = token->empty() ? std::string() : "Bearer " + *token;
      token_resolved_ = true;
    }
    if (!authorization_.empty()) req.set(http::field::authorization, authorization_);
    // Every write names its JSON type, even without a body: the server refuses a POST, PUT,
    // PATCH or DELETE without it (a browser cannot send it cross-origin, docs/security.md).
    if (!body.empty() || method != HttpMethod::kGet) {
      req.set(http::field::content_type, "application/json");
    }
    if (!body.empty()) req.body() = std::string(body);
    req.keep_alive(true);
    req.prepare_payload();
    if (base_.tls && !tls_ctx_) {
      Status s = MakeTlsContext();
      if (!s.ok()) return s;
    }

    // At most two attempts: the second only after a reused connection turned out dead.
    for (int attempt = 0;; ++attempt) {
      if (interrupted()) return InterruptedStatus();
      if (connected_ && !IdleConnectionAlive()) CloseSocket();
      const bool reused = connected_;
      if (!connected_) {
        Status s = Connect();
        if (!s.ok()) return s;
      }
      bool got_bytes = false;
      HttpResponse out;
      const beast::error_code ec =
          Exchange(req, options_.request_timeout + extra_timeout, &out, &got_bytes);
      if (!ec) return out;
      CloseSocket();
      if (interrupted()) return InterruptedStatus();
      if (reused && attempt == 0 && !got_bytes && IsDroppedConnection(ec)) continue;
      if (ec == beast::error::timeout) {
        return Unavailable("request to " + base_.Authority() + " timed out after " +
                           std::to_string((options_.request_timeout + extra_timeout).count()) +
                           " ms");
      }
      if (ec == http::error::body_limit) {
        return Status(Code::kResourceExhausted,
                      "response from " + base_.Authority() + " is larger than " +
                          std::to_string(options_.max_response_bytes) + " bytes");
      }
      return Unavailable("request to " + base_.Authority() + " failed: " + ec.message());
    }
  }

  Result<HttpResponse> Download(std::string_view target,
                                const std::function<bool(std::string_view)>& sink) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, base_.Authority());
    req.set(http::field::user_agent, options_.user_agent);
    req.set(http::field::accept, "application/x-ndjson, application/json");
    for (const auto& [name, value] : options_.headers) req.set(name, value);
    req.keep_alive(true);
    req.prepare_payload();
    if (base_.tls && !tls_ctx_) YM_RETURN_IF_ERROR(MakeTlsContext());
    if (interrupted()) return InterruptedStatus();
    if (connected_ && !IdleConnectionAlive()) CloseSocket();
    if (!connected_) YM_RETURN_IF_ERROR(Connect());
    beast::error_code ec;
    stream_.expires_after(options_.request_timeout);
    OnStream([&](auto& s) {
      http::async_write(s, req, [&](const beast::error_code& e, std::size_t) { ec = e; });
    });
    Run();
    auto fail = [&](std::string_view what) -> Status {
      CloseSocket();
      if (ec == beast::error::timeout) {
        return Unavailable("download from " + base_.Authority() + " stalled for " +
                           std::to_string(options_.request_timeout.count()) + " ms");
      }
      return Unavailable("download from " + base_.Authority() + " failed: " + std::string(what));
    };
    if (ec) return fail(ec.message());
    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.max_response_bytes);
    bool ok_status = false;
    bool sink_stopped = false;
    // A 2xx body goes to the sink as it arrives; another reply's body is kept (it is an error
    // object, bounded by max_response_bytes).
    auto on_body = [&](std::uint64_t, std::string_view body, beast::error_code& e) -> std::size_t {
      if (!ok_status) {
        parser.get().body().append(body);
        return body.size();
      }
      if (!sink(body)) {
        sink_stopped = true;
        e = asio::error::operation_aborted;
        return 0;
      }
      return body.size();
    };
    parser.on_chunk_body(on_body);
    stream_.expires_after(options_.request_timeout);
    OnStream([&](auto& s) {
      http::async_read_header(s, buffer_, parser,
                              [&](const beast::error_code& e, std::size_t) { ec = e; });
    });
    Run();
    if (ec) return fail(ec.message());
    const int status = static_cast<int>(parser.get().result_int());
    ok_status = status / 100 == 2;
    // A chunked 2xx body has no overall bound: each chunk goes to the sink.
    if (ok_status && parser.chunked()) parser.body_limit(boost::none);
    while (!parser.is_done()) {
      stream_.expires_after(options_.request_timeout);
      OnStream([&](auto& s) {
        http::async_read_some(s, buffer_, parser,
                              [&](const beast::error_code& e, std::size_t) { ec = e; });
      });
      Run();
      if (sink_stopped) {
        CloseSocket();
        return Unavailable("download from " + base_.Authority() + " stopped by its writer");
      }
      if (ec) return fail(ec.message());
    }
    HttpResponse out;
    out.status = status;
    out.content_type = std::string(parser.get()[http::field::content_type]);
    if (ok_status && !parser.chunked()) {
      // A plain 2xx body (not expected from the export route, but valid HTTP).
      if (!sink(parser.get().body())) {
        CloseSocket();
        return Unavailable("download from " + base_.Authority() + " stopped by its writer");
      }
    } else if (!ok_status) {
      out.body = std::move(parser.get().body());
    }
    if (!parser.get().keep_alive()) CloseSocket();
    return out;
  }

  void CloseSocket() {
    tls_.reset();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    buffer_.consume(buffer_.size());
    connected_ = false;
  }

  const BaseUrl& base() const { return base_; }
  std::uint64_t connections_opened() const { return connections_opened_; }

  // Called from another thread. The flag is checked outside Run() before every operation is
  // started and after every Run(); the cancel is posted, so it executes on the sending thread
  // inside its next Run(), i.e. after any operation started before the flag was seen. Between
  // the two, no operation can start unobserved.
  void Interrupt() {
    interrupted_.store(true, std::memory_order_release);
    asio::post(ioc_, [this] {
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
    });
  }
  bool interrupted() const { return interrupted_.load(std::memory_order_acquire); }

 private:
  // Runs the queued asynchronous operations to completion on the calling thread. The async
  // form exists only so that beast::tcp_stream can enforce deadlines; the API stays synchronous.
  void Run() {
    ioc_.restart();
    ioc_.run();
  }

  Status Connect() {
    if (endpoints_.empty()) {
      tcp::resolver resolver(ioc_);
      asio::steady_timer timer(ioc_);
      beast::error_code resolve_ec;
      bool timed_out = false;
      resolver.async_resolve(base_.host, std::to_string(base_.port),
                             [&](const beast::error_code& ec, tcp::resolver::results_type r) {
                               resolve_ec = ec;
                               if (!ec) endpoints_ = std::move(r);
                               timer.cancel();
                             });
      timer.expires_after(options_.connect_timeout);
      timer.async_wait([&](const beast::error_code& ec) {
        if (!ec) {
          timed_out = true;
          resolver.cancel();
        }
      });
      Run();
      if (timed_out) return Unavailable("resolving " + base_.host + " timed out");
      if (resolve_ec) {
        return Unavailable("cannot resolve " + base_.host + ": " + resolve_ec.message());
      }
    }
    beast::error_code connect_ec;
    stream_.expires_after(options_.connect_timeout);
    stream_.async_connect(
        endpoints_, [&](const beast::error_code& ec, const tcp::endpoint&) { connect_ec = ec; });
    Run();
    if (connect_ec) {
      CloseSocket();
      // Resolve again next time: the name may now point elsewhere.
      endpoints_ = {};
      if (connect_ec == beast::error::timeout) {
        return Unavailable("cannot connect to " + base_.Authority() + ": timed out after " +
                           std::to_string(options_.connect_timeout.count()) + " ms");
      }
      return Unavailable("cannot connect to " + base_.Authority() + ": " + connect_ec.message());
    }
    // Requests are small and strictly request/response: Nagle would only add latency.
    beast::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
    if (base_.tls) {
      Status s = Handshake();
      if (!s.ok()) {
        CloseSocket();
        return s;
      }
    }
    connected_ = true;
    ++connections_opened_;
    return Status::Ok();
  }

  // A zero-cost check before reusing a keep-alive connection: if the server already closed it
  // (idle timeout, restart), a peek sees EOF and we reconnect without sending anything. Stray
  // bytes from the server mean the stream is out of sync, which is just as unusable.
  bool IdleConnectionAlive() {
    if (buffer_.size() != 0) return false;
    auto& sock = stream_.socket();
    beast::error_code ec;
    sock.non_blocking(true, ec);
    if (ec) return false;
    char byte = 0;
    sock.receive(asio::buffer(&byte, 1), tcp::socket::message_peek, ec);
    beast::error_code ignored;
    sock.non_blocking(false, ignored);
    return ec == asio::error::would_block;
  }

  // The trust store for https://: options_.ca_file, else $YM_CA_FILE, else the system's.
  Status MakeTlsContext() {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    std::string ca_file = options_.ca_file;
    if (ca_file.empty()) {
      if (const char* env = std::getenv("YM_CA_FILE"); env != nullptr) ca_file = env;
    }
    beast::error_code ec;
    if (ca_file.empty()) {
      ctx->set_default_verify_paths(ec);
    } else if (std::FILE* f = std::fopen(ca_file.c_str(), "r"); f == nullptr) {
      return InvalidRequest("cannot read the CA file " + ca_file + ": " + std::strerror(errno));
    } else {
      std::fclose(f);
      ctx->load_verify_file(ca_file, ec);
      if (ec) return InvalidRequest("the CA file " + ca_file + " holds no PEM certificate");
    }
    if (ec) {
      return InvalidRequest("cannot load the CA file " +
                            (ca_file.empty() ? std::string("(system default)") : ca_file) + ": " +
                            ec.message());
    }
    ctx->set_verify_mode(asio::ssl::verify_peer);
    std::string cert = options_.client_cert_file;
    std::string key = options_.client_key_file;
    if (cert.empty() && key.empty()) {
      if (const char* env = std::getenv("YM_CLIENT_CERT_FILE"); env != nullptr) cert = env;
      if (const char* env = std::getenv("YM_CLIENT_KEY_FILE"); env != nullptr) key = env;
    }
    if (cert.empty() != key.empty()) {
      return InvalidRequest(
          "a client certificate needs both its certificate file and its key "
          "file");
    }
    if (!cert.empty()) {
      for (const std::string* path : {&cert, &key}) {
        std::FILE* f = std::fopen(path->c_str(), "r");
        if (f == nullptr) {
          return InvalidRequest("cannot read the client certificate file " + *path + ": " +
                                std::strerror(errno));
        }
        std::fclose(f);
      }
      ctx->use_certificate_chain_file(cert, ec);
      if (ec)
        return InvalidRequest("the client certificate file " + cert + " holds no PEM certificate");
      ctx->use_private_key_file(key, asio::ssl::context::pem, ec);
      if (ec) {
        return InvalidRequest("the client key file " + key +
                              " holds no usable key for the certificate " + cert);
      }
    }
    tls_ctx_ = std::move(ctx);
    return Status::Ok();
  }

  Status Handshake() {
    tls_.emplace(stream_, *tls_ctx_);
    SSL* ssl = tls_->native_handle();
    beast::error_code addr_ec;
    asio::ip::make_address(base_.host, addr_ec);
    if (addr_ec) {
      // A name: sent as SNI and checked against the certificate's DNS names.
      SSL_set_tlsext_host_name(ssl, base_.host.c_str());
      SSL_set1_host(ssl, base_.host.c_str());
    } else {
      // An address: checked against the certificate's IP addresses.
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), base_.host.c_str());
    }
    beast::error_code ec;
    stream_.expires_after(options_.connect_timeout);
    tls_->async_handshake(asio::ssl::stream_base::client,
                          [&](const beast::error_code& e) { ec = e; });
    Run();
    if (!ec) return Status::Ok();
    std::string why = ec.message();
    if (const long v = SSL_get_verify_result(ssl); v != X509_V_OK) {
      why = X509_verify_cert_error_string(v);
    }
    if (ec == beast::error::timeout) why = "timed out";
    return Unavailable("TLS handshake with " + base_.Authority() + " failed: " + why);
  }

  template <class Op>
  void OnStream(Op&& op) {
    if (tls_) {
      op(*tls_);
    } else {
      op(stream_);
    }
  }

  beast::error_code Exchange(http::request<http::string_body>& req,
                             std::chrono::milliseconds timeout, HttpResponse* out,
                             bool* got_bytes) {
    beast::error_code ec;
    stream_.expires_after(timeout);
    OnStream([&](auto& s) {
      http::async_write(s, req, [&](const beast::error_code& e, std::size_t) { ec = e; });
    });
    Run();
    if (ec) return ec;
    if (interrupted()) return asio::error::operation_aborted;

    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.max_response_bytes);
    OnStream([&](auto& s) {
      http::async_read(s, buffer_, parser,
                       [&](const beast::error_code& e, std::size_t) { ec = e; });
    });
    Run();
    *got_bytes = parser.got_some();
    if (ec) return ec;

    http::response<http::string_body> res = parser.release();
    out->status = static_cast<int>(res.result_int());
    out->content_type = std::string(res[http::field::content_type]);
    const std::string_view retry_after = res[http::field::retry_after];
    std::int64_t seconds = 0;
    const auto [end, conv] =
        std::from_chars(retry_after.data(), retry_after.data() + retry_after.size(), seconds);
    if (!retry_after.empty() && conv == std::errc() &&
        end == retry_after.data() + retry_after.size()) {
      out->retry_after_s = seconds;
    }
    const bool keep_alive = res.keep_alive();
    out->body = std::move(res.body());
    if (!keep_alive) CloseSocket();
    return {};
  }

  Status InterruptedStatus() const {
    return Unavailable("request to " + base_.Authority() + " interrupted");
  }

  BaseUrl base_;
  HttpClientOptions options_;
  std::atomic<bool> interrupted_{false};
  asio::io_context ioc_;
  beast::tcp_stream stream_;
  // https:// only: the trust store (made on first use) and the TLS layer of the current
  // connection over stream_ (reset with it).
  std::unique_ptr<asio::ssl::context> tls_ctx_;
  // "Bearer <token>" once resolved (ResolveToken, on the first Send); empty: none.
  bool token_resolved_ = false;
  std::string authorization_;
  std::optional<TlsStream> tls_;
  beast::flat_buffer buffer_;
  tcp::resolver::results_type endpoints_;
  bool connected_ = false;
  std::uint64_t connections_opened_ = 0;
};

HttpClient::HttpClient(BaseUrl base, HttpClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(base), std::move(options))) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Result<HttpClient> HttpClient::Create(std::string_view url, HttpClientOptions options) {
  Result<BaseUrl> base = ParseBaseUrl(url);
  if (!base.ok()) return base.status();
  return HttpClient(std::move(*base), std::move(options));
}

Result<HttpResponse> HttpClient::Download(std::string_view target,
                                          const std::function<bool(std::string_view)>& sink) {
  try {
    return impl_->Download(target, sink);
  } catch (const std::exception& e) {
    impl_->CloseSocket();
    return Unavailable(std::string("download failed: ") + e.what());
  }
}

Result<HttpResponse> HttpClient::Send(HttpMethod method, std::string_view target,
                                      std::string_view body,
                                      std::chrono::milliseconds extra_timeout) {
  // Beast and Asio report some failures (allocation, malformed header values) by throwing;
  // they stop here so that callers see only Status values.
  try {
    return impl_->Send(method, target, body, extra_timeout);
  } catch (const std::exception& e) {
    impl_->CloseSocket();
    return Internal(std::string("HTTP client: ") + e.what());
  }
}

void HttpClient::Close() { impl_->CloseSocket(); }
void HttpClient::Interrupt() { impl_->Interrupt(); }
bool HttpClient::interrupted() const { return impl_->interrupted(); }
const BaseUrl& HttpClient::base_url() const { return impl_->base(); }
std::uint64_t HttpClient::connections_opened() const { return impl_->connections_opened(); }

}  // namespace ym::client
