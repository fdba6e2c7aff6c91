#include "obs/alerts/rule.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>

namespace ym::alerts {
namespace {

constexpr std::int64_t kMaxDurationMs = 7LL * 24 * 3600 * 1000;

std::vector<std::string_view> Tokens(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    const std::size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

// A finite, non-negative decimal number, the whole token.
std::optional<double> Number(std::string_view t) {
  if (t.empty() || t.size() > 32) return std::nullopt;
  for (char c : t) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') return std::nullopt;
  }
  const std::string s(t);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string Quoted(std::string_view t) { return "\"" + std::string(t) + "\""; }

}  // namespace

std::string_view ConditionName(ConditionKind kind) {
  switch (kind) {
    case ConditionKind::kLagSeconds:
      return "lag_seconds";
    case ConditionKind::kOldestReadyAge:
      return "oldest_ready_age";
    case ConditionKind::kFailureRatio:
      return "failure_ratio";
    case ConditionKind::kDeadGrowth:
      return "dead_growth";
    case ConditionKind::kNoPollers:
      return "no_pollers";
  }
  return "?";
}

Result<std::int64_t> ParseDurationMs(std::string_view text) {
  std::string_view num = text;
  double unit = 1000;
  auto ends_with = [&](std::string_view suffix) {
    return num.size() > suffix.size() && num.substr(num.size() - suffix.size()) == suffix;
  };
  if (ends_with("ms")) {
    num.remove_suffix(2);
    unit = 1;
  } else if (ends_with("s")) {
    num.remove_suffix(1);
  } else if (ends_with("m")) {
    num.remove_suffix(1);
    unit = 60'000;
  } else if (ends_with("h")) {
    num.remove_suffix(1);
    unit = 3'600'000;
  }
  const std::optional<double> v = Number(num);
  if (!v) {
    return InvalidRequest("bad duration " + Quoted(text) +
                          ": a number with a unit (ms, s, m, h), e.g. 30s or 5m");
  }
  const double ms = *v * unit;
  if (ms > static_cast<double>(kMaxDurationMs)) {
    return InvalidRequest("duration " + Quoted(text) + " is longer than 7 days");
  }
  return static_cast<std::int64_t>(std::llround(ms));
}

Result<Condition> ParseCondition(std::string_view text) {
  const std::vector<std::string_view> t = Tokens(text);
  if (t.empty()) return InvalidRequest("empty; e.g. \"lag_seconds > 30 for 1m\"");
  Condition c;
  c.text = std::string(text);
  const std::string_view name = t[0];
  if (name == "lag_seconds") {
    c.kind = ConditionKind::kLagSeconds;
  } else if (name == "oldest_ready_age") {
    c.kind = ConditionKind::kOldestReadyAge;
  } else if (name == "failure_ratio") {
    c.kind = ConditionKind::kFailureRatio;
  } else if (name == "dead_growth") {
    c.kind = ConditionKind::kDeadGrowth;
  } else if (name == "no_pollers") {
    c.kind = ConditionKind::kNoPollers;
  } else {
    return InvalidRequest("unknown measure " + Quoted(name) +
                          "; one of lag_seconds, oldest_ready_age, failure_ratio, dead_growth, "
                          "no_pollers");
  }
  std::size_t i = 1;
  if (c.kind == ConditionKind::kNoPollers) {
    if (t.size() != 3 || t[1] != "for") {
      return InvalidRequest("no_pollers takes one duration: \"no_pollers for 2m\"");
    }
    auto d = ParseDurationMs(t[2]);
    if (!d.ok()) return d.status();
    if (*d < 1000) return InvalidRequest("no_pollers: the duration must be at least 1s");
    c.threshold = static_cast<double>(*d) / 1000.0;
    c.inclusive = true;
    return c;
  }
  if (i >= t.size() || (t[i] != ">" && t[i] != ">=")) {
    return InvalidRequest("expected > or >= after " + std::string(name));
  }
  c.inclusive = t[i] == ">=";
  ++i;
  if (i >= t.size()) return InvalidRequest("expected a threshold after " + std::string(t[i - 1]));
  const std::string_view threshold = t[i++];
  switch (c.kind) {
    case ConditionKind::kLagSeconds: {
      auto v = Number(threshold);
      if (!v) return InvalidRequest("threshold " + Quoted(threshold) + ": must be seconds >= 0");
      c.threshold = *v;
      break;
    }
    case ConditionKind::kOldestReadyAge: {
      auto d = ParseDurationMs(threshold);
      if (!d.ok()) return InvalidRequest("threshold: " + d.status().message());
      c.threshold = static_cast<double>(*d) / 1000.0;
      break;
    }
    case ConditionKind::kFailureRatio: {
      auto v = Number(threshold);
      if (!v || *v > 1) {
        return InvalidRequest("threshold " + Quoted(threshold) + ": must be a ratio in 0..1");
      }
      if (*v == 1 && !c.inclusive) {
        return InvalidRequest("threshold: failure_ratio > 1 can never hold");
      }
      c.threshold = *v;
      break;
    }
    case ConditionKind::kDeadGrowth: {
      std::uint64_t n = 0;
      const auto [end, ec] =
          std::from_chars(threshold.data(), threshold.data() + threshold.size(), n);
      if (ec != std::errc() || end != threshold.data() + threshold.size() || n > 1'000'000'000) {
        return InvalidRequest("threshold " + Quoted(threshold) + ": must be a whole count");
      }
      if (n == 0 && c.inclusive) {
        return InvalidRequest("threshold: dead_growth >= 0 always holds; use >= 1");
      }
      c.threshold = static_cast<double>(n);
      break;
    }
    case ConditionKind::kNoPollers:
      break;
  }
  const bool windowed =
      c.kind == ConditionKind::kFailureRatio || c.kind == ConditionKind::kDeadGrowth;
  bool has_window = false, has_min = false, has_for = false;
  while (i < t.size()) {
    const std::string_view word = t[i++];
    if (i >= t.size()) return InvalidRequest("expected a value after " + Quoted(word));
    const std::string_view arg = t[i++];
    if (word == "over" && windowed && !has_window) {
      auto d = ParseDurationMs(arg);
      if (!d.ok()) return InvalidRequest("over: " + d.status().message());
      if (*d < 1000) return InvalidRequest("over: the window must be at least 1s");
      c.window_ms = *d;
      has_window = true;
    } else if (word == "min" && c.kind == ConditionKind::kFailureRatio && !has_min) {
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), n);
      if (ec != std::errc() || end != arg.data() + arg.size() || n < 1 || n > 1'000'000'000) {
        return InvalidRequest("min " + Quoted(arg) + ": must be a whole count >= 1");
      }
      c.min_count = n;
      has_min = true;
    } else if (word == "for" && !has_for) {
      auto d = ParseDurationMs(arg);
      if (!d.ok()) return InvalidRequest("for: " + d.status().message());
      c.for_ms = *d;
      has_for = true;
    } else {
      std::string allowed = windowed ? "over, " : "";
      if (c.kind == ConditionKind::kFailureRatio) allowed += "min, ";
      allowed += "for";
      return InvalidRequest("unexpected " + Quoted(word) + " (each at most once: " + allowed + ")");
    }
  }
  if (windowed && !has_window) {
    return InvalidRequest(std::string(name) + " needs a window: \"" + std::string(name) + " " +
                          (c.inclusive ? ">=" : ">") + " " + std::string(threshold) + " over 5m\"");
  }
  return c;
}

Result<WebhookUrl> ParseWebhookUrl(std::string_view url) {
  const std::string shown = Quoted(url);
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, 8) == "https://") {
    return InvalidRequest(shown +
                          ": https is not supported (the built-in HTTP client has no TLS); "
                          "use http:// or a TLS-terminating proxy");
  }
  if (url.substr(0, kScheme.size()) != kScheme) {
    return InvalidRequest(shown + ": must start with http://");
  }
  WebhookUrl out;
  out.url = std::string(url);
  std::string_view rest = url.substr(kScheme.size());
  const std::size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!out.target.empty() && out.target[0] == '?') out.target = "/" + out.target;
  if (out.target.find('#') != std::string::npos) {
    return InvalidRequest(shown + ": a fragment (#...) is never sent; remove it");
  }
  for (char ch : out.target) {
    if (static_cast<unsigned char>(ch) <= 0x20 || static_cast<unsigned char>(ch) >= 0x7f) {
      return InvalidRequest(shown + ": the path must not hold spaces or control characters");
    }
  }
  if (authority.find('@') != std::string_view::npos) {
    return InvalidRequest(shown + ": credentials in the URL are not supported; use headers");
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidRequest(shown + ": unterminated [IPv6]");
    out.host = std::string(authority.substr(1, close - 1));
    for (char ch : out.host) {
      if (!std::isxdigit(static_cast<unsigned char>(ch)) && ch != ':' && ch != '.') {
        return InvalidRequest(shown + ": bad IPv6 address");
      }
    }
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidRequest(shown + ": bad host");
      port_text = after.substr(1);
      if (port_text.empty()) return InvalidRequest(shown + ": empty port");
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return InvalidRequest(shown + ": empty port");
    }
    for (char ch : out.host) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '.' && ch != '_') {
        return InvalidRequest(shown + ": bad host name");
      }
    }
  }
  if (out.host.empty()) return InvalidRequest(shown + ": empty host");
  if (!port_text.empty()) {
    unsigned port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return InvalidRequest(shown + ": port must be a number in 1..65535");
    }
    out.port = static_cast<std::uint16_t>(port);
  }
  return out;
}

std::string CheckHeader(std::string_view name, std::string_view value) {
  if (name.empty()) return "empty header name";
  for (char ch : name) {
    const bool token = std::isalnum(static_cast<unsigned char>(ch)) ||
                       std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
    if (!token) return "header name \"" + std::string(name) + "\" is not an HTTP token";
  }
  std::string lower;
  for (char ch : name)
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
  for (std::string_view reserved :
       {"host", "content-length", "content-type", "transfer-encoding", "connection"}) {
    if (lower == reserved) {
      return "header \"" + std::string(name) + "\" is set by the broker and cannot be configured";
    }
  }
  for (char ch : value) {
    if ((static_cast<unsigned char>(ch) < 0x20 && ch != '\t') || ch == 0x7f) {
      return "header \"" + std::string(name) + "\": the value holds a control character";
    }
  }
  return "";
}

}  // namespace ym::alerts
