#include "net/web_guard.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace ym::net {
namespace {

namespace http = boost::beast::http;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view StripDot(std::string_view host) {
  if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);
  return host;
}

bool ValidPort(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  return ec == std::errc() && p == port.data() + port.size() && v <= 65535;
}

// A DNS name or an IPv4 literal: letters, digits, '-', '.', '_' (some internal names use it).
bool ValidName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

// Splits "host[:port]" / "[v6][:port]" into a host without brackets and the port text.
std::optional<std::pair<std::string, std::string_view>> SplitAuthority(std::string_view a) {
  std::string_view host;
  std::string_view port;
  if (!a.empty() && a.front() == '[') {
    const std::size_t close = a.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = a.substr(1, close - 1);
    std::string_view rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (!ValidPort(port)) return std::nullopt;
    }
    if (!IsIpLiteral(host) || host.find(':') == std::string_view::npos) return std::nullopt;
    return std::make_pair(Lower(host), port);
  }
  const std::size_t colon = a.find(':');
  host = a.substr(0, colon);
  if (colon != std::string_view::npos) {
    port = a.substr(colon + 1);
    if (!ValidPort(port)) return std::nullopt;
  }
  host = StripDot(host);
  if (!ValidName(host)) return std::nullopt;
  return std::make_pair(Lower(host), port);
}

bool PathIs(std::string_view target, std::string_view path) {
  return target.substr(0, target.find('?')) == path;
}

}  // namespace

bool IsIpLiteral(std::string_view host) {
  if (host.empty() || host.size() > 64) return false;
  const std::string text(host);
  std::array<unsigned char, 16> buf{};
  return ::inet_pton(AF_INET, text.c_str(), buf.data()) == 1 ||
         ::inet_pton(AF_INET6, text.c_str(), buf.data()) == 1;
}

bool IsLoopbackName(std::string_view host) {
  const std::string h = Lower(StripDot(host));
  if (h == "localhost") return true;
  std::array<unsigned char, 16> buf{};
  if (::inet_pton(AF_INET, h.c_str(), buf.data()) == 1) return buf[0] == 127;
  if (::inet_pton(AF_INET6, h.c_str(), buf.data()) == 1) {
    static constexpr std::array<unsigned char, 16> kLoop = {0, 0, 0, 0, 0, 0, 0, 0,
                                                            0, 0, 0, 0, 0, 0, 0, 1};
    if (buf == kLoop) return true;
    // ::ffff:127.x.y.z, an IPv4-mapped loopback address.
    static constexpr std::array<unsigned char, 12> kMapped = {0, 0, 0, 0, 0,    0,
                                                              0, 0, 0, 0, 0xff, 0xff};
    return std::equal(kMapped.begin(), kMapped.end(), buf.begin()) && buf[12] == 127;
  }
  return false;
}

std::optional<std::string> HostOfAuthority(std::string_view authority) {
  auto split = SplitAuthority(authority);
  if (!split) return std::nullopt;
  return std::move(split->first);
}

Result<std::string> NormalizeAllowedHost(std::string_view entry) {
  if (entry == "*") return std::string("*");
  std::string_view host = entry;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (!IsIpLiteral(host)) {
      return InvalidRequest("\"" + std::string(entry) + "\" is not a host name or IP address");
    }
    return Lower(host);
  }
  if (IsIpLiteral(host)) return Lower(host);
  if (host.find("://") != std::string_view::npos || host.find('/') != std::string_view::npos) {
    return InvalidRequest("\"" + std::string(entry) +
                          "\" must be a host name without scheme or path (e.g. jobs.internal)");
  }
  if (host.find(':') != std::string_view::npos) {
    return InvalidRequest("\"" + std::string(entry) +
                          "\" must be a host name without port (any port is accepted)");
  }
  host = StripDot(host);
  if (!ValidName(host)) {
    return InvalidRequest("\"" + std::string(entry) + "\" is not a host name or IP address");
  }
  return Lower(host);
}

Result<std::string> NormalizeOrigin(std::string_view entry) {
  auto bad = [&](std::string_view why) {
    return InvalidRequest("\"" + std::string(entry) + "\" is not an origin (" + std::string(why) +
                          "; e.g. https://dash.example.com or http://localhost:3000)");
  };
  const std::size_t sep = entry.find("://");
  if (sep == std::string_view::npos) return bad("no scheme://");
  const std::string scheme = Lower(entry.substr(0, sep));
  if (scheme != "http" && scheme != "https") return bad("the scheme must be http or https");
  std::string_view rest = entry.substr(sep + 3);
  if (rest.find_first_of("/?#") != std::string_view::npos) return bad("an origin has no path");
  if (rest.find('@') != std::string_view::npos) return bad("an origin has no user");
  auto split = SplitAuthority(rest);
  if (!split || split->first.empty()) return bad("bad host or port");
  std::string host = split->first;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  // SplitAuthority drops a trailing dot; an Origin keeps it, so keep the name as written.
  if (!rest.empty() && rest.front() != '[') {
    const std::string_view written = rest.substr(0, rest.find(':'));
    host = Lower(written);
  }
  std::string out = scheme + "://" + host;
  const std::string_view port = split->second;
  const bool default_port =
      (scheme == "http" && port == "80") || (scheme == "https" && port == "443");
  if (!port.empty() && !default_port) out += ":" + std::string(port);
  return out;
}

bool RequestIsAuthenticated(const WebRequest& request) { return request.authenticated; }

WebGuard::WebGuard(WebGuardOptions options) : options_(std::move(options)) {}

bool WebGuard::HostAllowed(std::string_view host) const {
  if (IsLoopbackName(host)) return true;
  if (options_.accept_ip_literal_hosts && IsIpLiteral(host)) return true;
  for (const std::string& allowed : options_.allowed_hosts) {
    if (allowed == "*" || allowed == host) return true;
  }
  return false;
}

WebVerdict WebGuard::Check(const WebRequest& request) const {
  WebVerdict v;
  const bool authenticated = RequestIsAuthenticated(request);

  // 1. Host.
  if (!authenticated && (request.host || request.version >= 11)) {
    std::optional<std::string> host;
    if (request.host) host = HostOfAuthority(*request.host);
    if (!host || !HostAllowed(*host)) {
      v.kind = WebVerdict::Kind::kRefuse;
      v.error = Status(Code::kPermissionDenied,
                       "this server answers only requests addressed to its own host names; the "
                       "Host header is not one of them (a loopback name or allowed_hosts, "
                       "docs/security.md)");
      return v;
    }
  }

  // 2. Origin.
  if (request.origin) {
    const std::string origin = Lower(*request.origin);
    const bool allowed =
        std::find(options_.cors_allowed_origins.begin(), options_.cors_allowed_origins.end(),
                  origin) != options_.cors_allowed_origins.end();
    if (!allowed) {
      const bool read = request.method == http::verb::get || request.method == http::verb::head;
      const bool open_path =
          PathIs(request.target, "/livez") || PathIs(request.target, "/readyz") ||
          PathIs(request.target, "/healthz") || PathIs(request.target, "/metrics");
      if (read && open_path) return v;
      v.kind = WebVerdict::Kind::kRefuse;
      v.error = Status(Code::kPermissionDenied,
                       "cross-origin requests are refused unless their Origin is in "
                       "cors_allowed_origins (docs/security.md)");
      return v;
    }
    // The response differs by Origin: caches must not share it across origins.
    v.headers.emplace_back("Vary", "Origin");
    v.headers.emplace_back("Access-Control-Allow-Origin", std::string(*request.origin));
    if (request.method == http::verb::options && request.preflight_method) {
      v.kind = WebVerdict::Kind::kPreflight;
      v.headers.emplace_back("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE");
      v.headers.emplace_back("Access-Control-Allow-Headers",
                             "Authorization, Content-Type, X-Request-Id");
      v.headers.emplace_back("Access-Control-Max-Age", "600");
      return v;
    }
    v.headers.emplace_back("Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
  }

  // 3. Content type of writes.
  const bool write = request.method == http::verb::post || request.method == http::verb::put ||
                     request.method == http::verb::patch || request.method == http::verb::delete_;
  if (write && !authenticated) {
    std::string_view media = request.content_type.substr(0, request.content_type.find(';'));
    while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) {
      media.remove_prefix(1);
    }
    while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
    if (Lower(media) != "application/json") {
      v.kind = WebVerdict::Kind::kRefuse;
      v.error = Status(Code::kUnsupportedMediaType,
                       "POST, PUT, PATCH and DELETE need \"Content-Type: application/json\", "
                       "even without a body (docs/security.md)");
      return v;
    }
  }
  return v;
}

}  // namespace ym::net
