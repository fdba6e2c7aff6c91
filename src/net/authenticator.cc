#include "net/authenticator.h"

#include <string>

#include "net/auth_token.h"
#include "obs/logging.h"

namespace ym::net {

namespace http = boost::beast::http;

bool IsAuthExempt(http::verb method, std::string_view target) {
  if (method != http::verb::get && method != http::verb::head) return false;
  std::string_view path = target.substr(0, target.find('?'));
  return path == "/livez" || path == "/readyz" || path == "/healthz";
}

Authenticator::Authenticator(const TokenBook& book, const Clock& clock,
                             AuthThrottleOptions throttle, HttpStats* stats)
    : book_(book), clock_(clock), stats_(stats), throttle_(throttle) {}

Authenticator::Decision Authenticator::Check(http::verb method, std::string_view target,
                                             std::optional<std::string_view> authorization,
                                             std::size_t header_count, std::string_view address) {
  Decision d;
  if (IsAuthExempt(method, target)) {
    d.principal.emplace();
    return d;
  }
  std::int64_t blocked_ms = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_ms = throttle_.BlockedForMs(address, clock_.MonoMs());
  }
  if (blocked_ms > 0) {
    if (stats_ != nullptr) stats_->auth_throttled.fetch_add(1, std::memory_order_relaxed);
    d.error = Status(Code::kResourceExhausted,
                     "too many failed authentication attempts from this address; retry later")
                  .WithRetryAfter(blocked_ms);
    return d;
  }
  if (!authorization || header_count == 0) return Refusal(AuthFailure::kMissing);
  std::optional<std::string_view> secret;
  if (header_count == 1) secret = ParseBearer(*authorization);
  if (!secret) return Refusal(AuthFailure::kMalformed);
  TokenBook::Outcome o = book_.Authenticate(*secret, clock_.NowMs());
  if (o.failure != AuthFailure::kNone) return Refusal(o.failure);
  d.principal = std::move(o.principal);
  return d;
}

Authenticator::Decision Authenticator::Refusal(AuthFailure failure) {
  Decision d;
  d.failure = failure;
  d.error = Status(Code::kUnauthenticated, std::string(kUnauthenticatedMessage));
  d.headers.emplace_back("WWW-Authenticate", "Bearer");
  return d;
}

void Authenticator::OnRefused(const Decision& decision, std::string_view address,
                              std::string_view request_id) {
  const AuthFailure failure = decision.failure;
  if (failure == AuthFailure::kNone) return;  // a 429: counted by Check
  bool blocked = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    blocked = throttle_.RecordFailure(address, clock_.MonoMs());
  }
  if (stats_ != nullptr) {
    stats_->auth_failures[static_cast<std::size_t>(failure)].fetch_add(1,
                                                                       std::memory_order_relaxed);
  }
  YM_LOG(warn, kHttp)
      .Str("remote", address)
      .Str("reason", AuthFailureName(failure))
      .Str("request_id", request_id)
      .Msg("http: authentication failed from {} ({}){}", address, AuthFailureName(failure),
           blocked ? "; address throttled" : "");
}

}  // namespace ym::net
