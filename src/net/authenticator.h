// Authenticator: what the HTTP server asks about every request when API tokens are on
// (docs/security.md, "Authentication"). Transport-free: it sees the Authorization header, the
// path and the peer's address, and answers with the principal or with the refusal to send.
//
// Exempt from authentication: GET/HEAD of /livez, /readyz and /healthz (orchestrator probes;
// they carry no job data). /metrics is not exempt: a Prometheus sends its token with
// `authorization.credentials_file`.
//
// Refusals: a missing, malformed, unknown, expired or revoked token is one 401 with
// `WWW-Authenticate: Bearer` and one message for all (no oracle), never echoing the header. An
// address with too many failures (net/auth_throttle.h) gets 429 with Retry-After before its
// token is looked at (counted at once). A 401 is counted (ym_auth_failures_total, the throttle)
// and logged as a warning with the address and the reason, never the token, only when the
// transport really sends it (OnRefused): a CORS preflight, which carries no token and is
// answered by the web guard, is not a failure.
//
// Threads: any io thread; the book is safe for concurrent lookups, the throttle is behind a
// mutex taken once per request (uncontended unless requests race).
#pragma once

#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "net/auth_throttle.h"
#include "net/http_stats.h"
#include "net/principal.h"
#include "net/token_book.h"

namespace ym::net {

// True for the probe paths that need no token (path without query).
bool IsAuthExempt(boost::beast::http::verb method, std::string_view target);

// The message of every 401: it does not say which check failed.
inline constexpr std::string_view kUnauthenticatedMessage =
    "a valid API token is required: send `Authorization: Bearer <token>`";

class Authenticator {
 public:
  Authenticator(const TokenBook& book, const Clock& clock, AuthThrottleOptions throttle,
                HttpStats* stats);

  struct Decision {
    // Set when the request may go on (an exempt path leaves it anonymous and unauthenticated).
    std::optional<Principal> principal;
    // Otherwise: the refusal (401 or 429) and its extra headers.
    Status error;
    std::vector<std::pair<std::string, std::string>> headers;
    AuthFailure failure = AuthFailure::kNone;
  };

  // `authorization`: the header's value, nullopt when absent; `header_count`: how many
  // Authorization headers the request had (more than one is malformed).
  // No side effect for a 401 (see OnRefused); a 429 is counted here.
  Decision Check(boost::beast::http::verb method, std::string_view target,
                 std::optional<std::string_view> authorization, std::size_t header_count,
                 std::string_view address);
  // The transport sends the 401 of `decision`: count it toward the throttle and the metric, and
  // log it.
  void OnRefused(const Decision& decision, std::string_view address, std::string_view request_id);

 private:
  static Decision Refusal(AuthFailure failure);

  const TokenBook& book_;
  const Clock& clock_;
  HttpStats* stats_;
  std::mutex mu_;
  AuthThrottle throttle_;  // GUARDED_BY(mu_)
};

}  // namespace ym::net
