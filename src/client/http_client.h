// HttpClient: a small synchronous HTTP/1.1 client for one Yardmaster server.
//
// What: sends one request at a time to the server named by a base URL (`http://host:port`) and
// returns the status, headers that matter and the body. The TCP connection is kept alive and
// reused for the next request; when the server has closed a reused idle connection the request
// is sent again once on a fresh connection (see Send()). Every connect and every request has a
// deadline, so no call blocks forever.
//
// Ownership: an HttpClient owns its socket and I/O context; it is movable, not copyable.
// Nothing returned refers back into the client.
//
// Threads: one client per thread. A client is not safe for concurrent use; benchmarks and
// worker pools create one client per thread, each with its own connection. The one exception
// is Interrupt(), which another thread may call while Send() runs.
//
// Errors: Send() returns a non-OK Status only when no HTTP response arrived (bad URL, DNS,
// connect refused, timeout, reset): such errors are `unavailable`. Any HTTP response, 4xx and
// 5xx included, is a successful Result; ApiClient maps error bodies to Status.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/build_info.h"
#include "common/status.h"

namespace ym::client {

// A parsed base URL: `http://HOST:PORT` or `https://HOST:PORT` (optionally with a trailing `/`).
// The server has no path prefix, so anything else is a configuration mistake that we prefer to
// report rather than guess around. HOST may be a name, an IPv4 address or a bracketed IPv6
// address (`http://[::1]:7433`).
struct BaseUrl {
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 0;
  bool tls = false;  // https://

  // "host:port", with brackets around IPv6 hosts; used for the Host header and messages.
  std::string Authority() const;
};

// Parses a base URL; `invalid_request` with a message that names the problem otherwise.
Result<BaseUrl> ParseBaseUrl(std::string_view url);

enum class HttpMethod { kGet, kPost, kPut, kPatch, kDelete };

struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string body;
  // Seconds from a `Retry-After: N` header (sent with 429 and some 503 replies).
  std::optional<std::int64_t> retry_after_s;
};

struct HttpClientOptions {
  // Deadline for resolving the host and establishing a TCP connection.
  std::chrono::milliseconds connect_timeout{5'000};
  // Deadline for writing one request and reading its whole response. Callers that long-poll add
  // their wait on top (Send()'s `extra_timeout`), so this only has to cover server work.
  std::chrono::milliseconds request_timeout{30'000};
  // Responses larger than this fail with `resource_exhausted` instead of exhausting memory; a
  // full page of 1000 jobs with large payloads needs room, hence the generous default.
  std::uint64_t max_response_bytes = 256ull << 20;
  // The C++ SDK's; the CLI sends yardmaster-cli/<version> instead, so a server's access log
  // tells the two apart.
  std::string user_agent = "yardmaster-cpp/" + std::string(kVersion);
  // Extra headers sent with every request (e.g. the Authorization of an alert webhook). Names
  // and values are sent as given: the caller checks them (Host, Content-Type and the framing
  // headers are set by the client and should not be repeated here).
  std::vector<std::pair<std::string, std::string>> headers;
  // https:// only: a PEM file of the CAs the server's certificate must chain to. Empty: the
  // file named by $YM_CA_FILE when set, else the system's trusted CAs. The server's name (or
  // IP address) is always checked against its certificate.
  std::string ca_file;
  // https:// only, for servers that require client certificates (mTLS): the client's PEM
  // certificate and its unencrypted key. Empty: $YM_CLIENT_CERT_FILE and $YM_CLIENT_KEY_FILE
  // when set, else none. Both or neither.
  std::string client_cert_file;
  std::string client_key_file;
  // An API token (docs/security.md, "Tokens"), sent as `Authorization: Bearer <token>` with every
  // request. Taken from, in this order: `token`, the file `token_file` (its first line), then
  // $YM_TOKEN, then the file named by $YM_TOKEN_FILE; none of them: no header. The token never
  // appears in an error message.
  std::string token;
  std::string token_file;
};

// The token HttpClientOptions would send (see there): "" when none is configured; an error for
// an unreadable file or a value that cannot be a header (empty file, spaces, control bytes).
Result<std::string> ResolveToken(const std::string& token, const std::string& token_file);

class HttpClient {
 public:
  HttpClient(BaseUrl base, HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Parses `url` and builds a client; the connection is opened lazily by the first Send().
  static Result<HttpClient> Create(std::string_view url, HttpClientOptions options = {});

  // Sends `method target` (target is the path plus query, e.g. "/v1/jobs?limit=10"). A non-empty
  // body is sent as application/json. `extra_timeout` extends the request deadline, for
  // long-polls whose server-side wait is known to the caller.
  //
  // Retry rule: if the request was sent on a reused keep-alive connection and the connection
  // failed before any byte of the response arrived, the request is sent once more on a new
  // connection. That is the race where the server closes an idle connection just as we reuse
  // it, and the server has not processed the request. A live peer that crashes in the middle
  // of a request looks the same, so a non-idempotent request may in rare cases run twice: the
  // broker's at-least-once contract already allows that, and idempotency keys coalesce it.
  Result<HttpResponse> Send(HttpMethod method, std::string_view target, std::string_view body = {},
                            std::chrono::milliseconds extra_timeout = {});

  // GET `target` and hand a successful (2xx) reply's body to `sink` piece by piece as it
  // arrives (a chunked body is never held whole: GET /v1/namespaces/{ns}/export); the returned
  // response then has an empty body. Any other reply's body is returned whole as by Send(). A
  // sink that returns false stops the download (the connection is closed; the result is an
  // error). `request_timeout` bounds each wait for more bytes, not the whole download. Not
  // retried.
  Result<HttpResponse> Download(std::string_view target,
                                const std::function<bool(std::string_view)>& sink);

  // Closes the connection, if any; the next Send() reconnects.
  void Close();

  // Makes a Send() in progress on another thread return promptly with `unavailable`
  // ("interrupted"), and every later Send() fail the same way at once: for a worker that stops
  // while a long-poll is in flight. The connection is closed, so the server sees the hang-up.
  // Thread-safe; the client must outlive the call.
  void Interrupt();
  bool interrupted() const;

  const BaseUrl& base_url() const;
  // How many TCP connections this client has opened; tests and benchmarks use it to check that
  // keep-alive really reuses connections.
  std::uint64_t connections_opened() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ym::client
