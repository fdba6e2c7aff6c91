// WebGuard: what a browser may make the server do (docs/security.md). Pure: no I/O, no state
// besides its options; HttpServer asks it about every request before the Api sees it.
//
// Three rules, in this order:
//   1. Host (DNS rebinding). A request that is not authenticated is answered only when its Host
//      names this server: a loopback name (localhost, 127.0.0.0/8, ::1; any port; ASCII case
//      ignored; one trailing dot ignored), a name of `allowed_hosts`, or, when the server was
//      started with --insecure on a non-loopback address, any IP address literal (a rebinding
//      attack always carries the attacker's DNS name, never an address). `allowed_hosts = "*"`
//      turns the rule off. An HTTP/1.0 request without Host passes (browsers always send one;
//      HTTP/1.1 without Host is already a 400 of the framing checks). Refused: 403.
//   2. Origin (cross-origin requests). A request with an Origin header is answered only when the
//      origin is in `cors_allowed_origins`, except GET and HEAD of /livez, /readyz, /healthz and
//      /metrics, which carry no job data. Refused: 403. For an allowed origin, a CORS preflight
//      (OPTIONS with Access-Control-Request-Method) is answered 204 here, and every other
//      response gets Access-Control-Allow-Origin and Vary: Origin.
//   3. Content type (no "simple" cross-origin writes). POST, PUT, PATCH and DELETE need
//      `Content-Type: application/json`, with or without a body, unless authenticated: a browser
//      cannot send that type cross-origin without a preflight. Refused: 415.
//
// An authenticated request (a valid bearer token, net/authenticator.h; the transport sets
// WebRequest::authenticated) skips rules 1 and 3: a token, not the Host or the content type,
// then says who is asking, and a browser cannot attach one to a cross-origin request without
// script access to it. Rule 2 stays.
#pragma once

#include <boost/beast/http/verb.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ym::net {

// True for "localhost" and IP literals in 127.0.0.0/8 or ::1 (also ::ffff:127.x.y.z); `host`
// without brackets or port, ASCII case ignored, one trailing dot ignored.
bool IsLoopbackName(std::string_view host);
// True when `host` (without brackets) is an IPv4 or IPv6 address literal.
bool IsIpLiteral(std::string_view host);
// The host of a Host header value ("name", "name:port", "[v6]", "[v6]:port"), lower-cased,
// without brackets, port and one trailing dot; nullopt when malformed.
std::optional<std::string> HostOfAuthority(std::string_view authority);

// Validate and normalize one config entry, for clear errors at start.
// allowed_hosts: a host name or IP address without port ("*" alone: any host).
Result<std::string> NormalizeAllowedHost(std::string_view entry);
// cors_allowed_origins: scheme://host[:port] as a browser sends it (http or https; no path),
// lower-cased, a default port (80, 443) dropped.
Result<std::string> NormalizeOrigin(std::string_view entry);

struct WebRequest {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string_view target;  // path and query
  unsigned version = 11;    // 10 for HTTP/1.0
  std::optional<std::string_view> host;
  std::optional<std::string_view> origin;
  std::string_view content_type;
  std::optional<std::string_view> preflight_method;  // Access-Control-Request-Method
  // A valid API token came with the request (the transport checked it).
  bool authenticated = false;
};

// Whether the request proves who sent it: a valid API token (WebRequest::authenticated).
bool RequestIsAuthenticated(const WebRequest& request);

struct WebGuardOptions {
  std::vector<std::string> allowed_hosts;         // normalized; "*": any
  std::vector<std::string> cors_allowed_origins;  // normalized
  bool accept_ip_literal_hosts = false;           // --insecure on a non-loopback address
};

struct WebVerdict {
  enum class Kind { kPass, kRefuse, kPreflight };
  Kind kind = Kind::kPass;
  Status error;  // kRefuse: the error to answer with
  // Headers for the response (kPass: CORS headers for an allowed origin; kPreflight: the
  // preflight answer's headers).
  std::vector<std::pair<std::string, std::string>> headers;
};

class WebGuard {
 public:
  explicit WebGuard(WebGuardOptions options);
  WebVerdict Check(const WebRequest& request) const;

 private:
  bool HostAllowed(std::string_view host) const;
  WebGuardOptions options_;
};

}  // namespace ym::net
