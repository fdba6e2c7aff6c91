// libFuzzer target for HTTP framing and headers as the server reads them: the bytes of one
// connection go through Boost.Beast's request parser configured exactly as the server's
// connection does (net/http_server.cc: header_limit = max_header_bytes, body_limit =
// max_request_bytes, defaults of HttpServerOptions), request after request as a keep-alive
// connection would, and every parsed request is routed (net/router.h).
//
// Properties: the parser consumes bytes without crashing; a parsed request never exceeds the
// limits; a declared Content-Length equals the body delivered; a request that is routed to a
// job id carries a non-zero id; a failure to route carries a documented error code.
#include <algorithm>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "net/http_server.h"
#include "net/router.h"
#include "net/web_guard.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ym::net::HttpServerOptions defaults;
  // Small limits keep the search in reach of the fuzzer; the server's defaults are scaled down
  // by the same factor for body and headers.
  const std::size_t body_limit = std::min<std::size_t>(defaults.max_request_bytes, 1 << 16);
  const std::size_t header_limit = std::min<std::size_t>(defaults.max_header_bytes, 1 << 12);
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (int requests = 0; requests < 8 && !rest.empty(); ++requests) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(body_limit);
    parser.header_limit(static_cast<std::uint32_t>(header_limit));
    parser.eager(true);
    boost::beast::error_code ec;
    std::size_t used = 0;
    // Feed in two pieces, as a socket read split anywhere would.
    std::size_t split = rest.size() / 2;
    used += parser.put(boost::asio::buffer(rest.data(), split), ec);
    if (ec == http::error::need_more) ec = {};
    if (!ec && !parser.is_done()) {
      used += parser.put(boost::asio::buffer(rest.data() + used, rest.size() - used), ec);
    }
    if (!ec && !parser.is_done()) {
      parser.put_eof(ec);
    }
    YM_FUZZ_CHECK(used <= rest.size());
    if (ec || !parser.is_done()) return 0;  // the server answers 400/413 and closes
    const auto& req = parser.get();
    YM_FUZZ_CHECK(req.body().size() <= body_limit);
    if (req.has_content_length() && !parser.chunked()) {
      // Beast accepts a list of identical values ("5, 5", RFC 9112 section 6.3); each must be
      // a plain decimal equal to the body delivered.
      std::string_view cl = req[http::field::content_length];
      while (!cl.empty()) {
        std::size_t comma = cl.find(',');
        std::string_view one = cl.substr(0, comma);
        while (!one.empty() && (one.front() == ' ' || one.front() == '\t')) one.remove_prefix(1);
        while (!one.empty() && (one.back() == ' ' || one.back() == '\t')) one.remove_suffix(1);
        std::uint64_t declared = 0;
        auto [p, err] = std::from_chars(one.data(), one.data() + one.size(), declared);
        YM_FUZZ_CHECK(err == std::errc() && p == one.data() + one.size());
        YM_FUZZ_CHECK(declared == req.body().size());
        if (comma == std::string_view::npos) break;
        cl.remove_prefix(comma + 1);
      }
    }
    ym::net::RouteInput in;
    in.method = req.method();
    in.target = req.target();
    in.content_type = req[http::field::content_type];
    in.body_size = req.body().size();
    in.max_request_bytes = body_limit;
    ym::net::RouteOutcome routed = ym::net::RouteRequest(in);
    if (routed.status.ok()) {
      YM_FUZZ_CHECK(routed.match.id != ym::net::RouteId::kUnmatched);
    } else {
      YM_FUZZ_CHECK(!routed.status.message().empty());
    }
    // The Host, Origin and content-type checks the server runs before routing
    // (net/web_guard.h). A request they pass that carries a Host names a loopback host or the
    // allowed one, and one with an Origin carries the allowed origin or reads a health path.
    static const ym::net::WebGuard guard([] {
      ym::net::WebGuardOptions o;
      o.allowed_hosts = {"jobs.internal"};
      o.cors_allowed_origins = {"https://dash.example"};
      return o;
    }());
    ym::net::WebRequest web;
    web.method = req.method();
    web.target = req.target();
    web.version = req.version();
    if (auto it = req.find(http::field::host); it != req.end()) web.host = it->value();
    if (auto it = req.find(http::field::origin); it != req.end()) web.origin = it->value();
    web.content_type = req[http::field::content_type];
    if (auto it = req.find(http::field::access_control_request_method); it != req.end()) {
      web.preflight_method = it->value();
    }
    const ym::net::WebVerdict verdict = guard.Check(web);
    if (verdict.kind == ym::net::WebVerdict::Kind::kRefuse) {
      YM_FUZZ_CHECK(!verdict.error.ok());
    } else if (web.host) {
      auto host = ym::net::HostOfAuthority(*web.host);
      YM_FUZZ_CHECK(host && (ym::net::IsLoopbackName(*host) || *host == "jobs.internal"));
    }
    if (used == 0) return 0;
    rest.remove_prefix(used);
    if (!req.keep_alive()) return 0;
  }
  return 0;
}
