#include "core/trace_context.h"

#include <string>
#include <vector>

namespace ym {
namespace {

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsLcAlpha(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
// The characters a key may hold after its first (simple-key and tenant/system ids alike).
bool IsKeyChar(char c) {
  return IsLcAlpha(c) || IsDigit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}
// nblk-chr: printable ASCII but ',' and '='.
bool IsValueChar(char c) { return c >= 0x21 && c <= 0x7e && c != ',' && c != '='; }
bool IsOws(char c) { return c == ' ' || c == '\t'; }

Status Bad(Code code, std::string_view where, std::string_view why) {
  std::string m(where);
  m += ": ";
  m += why;
  return Status(code, std::move(m));
}

// True when `hex` (already checked to be lowercase hex) is all zeros: an invalid id.
bool AllZero(std::string_view hex) { return hex.find_first_not_of('0') == std::string_view::npos; }

Status CheckTraceparentAs(std::string_view t, std::string_view where, Code code) {
  const auto bad = [&](std::string_view why) { return Bad(code, where, why); };
  if (t.size() >= 2 && IsLowerHex(t[0]) && IsLowerHex(t[1]) && t.substr(0, 2) != "00") {
    return bad("only version 00 (\"00-<32 hex>-<16 hex>-<2 hex>\") is accepted, got version \"" +
               std::string(t.substr(0, 2)) + "\"");
  }
  if (t.size() != kTraceparentBytes || t[2] != '-' || t[35] != '-' || t[52] != '-') {
    return bad("must be \"00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>\" (55 bytes)");
  }
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (i == 2 || i == 35 || i == 52) continue;
    if (!IsLowerHex(t[i])) {
      return bad("holds \"" + std::string(1, t[i]) + "\" at byte " + std::to_string(i) +
                 ": only lowercase hex digits and the three dashes are allowed");
    }
  }
  if (AllZero(t.substr(3, 32))) return bad("the trace id is all zeros (invalid)");
  if (AllZero(t.substr(36, 16))) return bad("the parent id is all zeros (invalid)");
  return Status::Ok();
}

// Checks a tracestate key: a simple key or tenant@system.
bool ValidKey(std::string_view k) {
  const std::size_t at = k.find('@');
  if (at == std::string_view::npos) {
    if (k.empty() || k.size() > 256 || !IsLcAlpha(k[0])) return false;
    for (char c : k.substr(1)) {
      if (!IsKeyChar(c)) return false;
    }
    return true;
  }
  std::string_view tenant = k.substr(0, at);
  std::string_view system = k.substr(at + 1);
  if (tenant.empty() || tenant.size() > 241 || !(IsLcAlpha(tenant[0]) || IsDigit(tenant[0]))) {
    return false;
  }
  if (system.empty() || system.size() > 14 || !IsLcAlpha(system[0])) return false;
  for (char c : tenant.substr(1)) {
    if (!IsKeyChar(c)) return false;
  }
  for (char c : system.substr(1)) {
    if (!IsKeyChar(c)) return false;
  }
  return true;
}

// value = 0*255(chr) nblk-chr, chr = SP / nblk-chr.
bool ValidValue(std::string_view v) {
  if (v.empty() || v.size() > 256 || v.back() == ' ') return false;
  for (char c : v) {
    if (c != ' ' && !IsValueChar(c)) return false;
  }
  return true;
}

Result<std::string> NormalizeTracestateAs(std::string_view text, std::string_view where,
                                          Code code) {
  const auto bad = [&](std::string_view why) { return Bad(code, where, why); };
  // Bounds the work before splitting: a normalized list is never longer than its input minus
  // whitespace, and an input longer than a few times the bound is refused outright.
  if (text.size() > 4 * kMaxTracestateBytes) {
    return bad("is longer than " + std::to_string(kMaxTracestateBytes) + " bytes");
  }
  std::string out;
  std::vector<std::string_view> keys;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view m = text.substr(pos, comma - pos);
    pos = comma + 1;
    while (!m.empty() && IsOws(m.front())) m.remove_prefix(1);
    while (!m.empty() && IsOws(m.back())) m.remove_suffix(1);
    if (m.empty()) continue;  // empty members are allowed and dropped
    const std::size_t eq = m.find('=');
    if (eq == std::string_view::npos) {
      return bad("member \"" + std::string(m.substr(0, 64)) + "\" is not key=value");
    }
    std::string_view key = m.substr(0, eq);
    std::string_view value = m.substr(eq + 1);
    if (!ValidKey(key)) {
      return bad("member key \"" + std::string(key.substr(0, 64)) +
                 "\" is not a valid key (lowercase letter first; a-z 0-9 _ - * / and one "
                 "optional tenant@system)");
    }
    if (!ValidValue(value)) {
      return bad("the value of \"" + std::string(key) +
                 "\" is not valid (1..256 printable ASCII characters without ',' or '=', "
                 "not ending in a space)");
    }
    for (std::string_view k : keys) {
      if (k == key) return bad("key \"" + std::string(key) + "\" appears twice");
    }
    keys.push_back(key);
    if (keys.size() > kMaxTracestateMembers) {
      return bad("has more than " + std::to_string(kMaxTracestateMembers) + " members");
    }
    if (!out.empty()) out += ',';
    out += m;
  }
  if (out.size() > kMaxTracestateBytes) {
    return bad("is longer than " + std::to_string(kMaxTracestateBytes) + " bytes");
  }
  return out;
}

}  // namespace

Status CheckTraceparent(std::string_view text, std::string_view where) {
  return CheckTraceparentAs(text, where, Code::kInvalidRequest);
}

Result<std::string> NormalizeTracestate(std::string_view text, std::string_view where) {
  return NormalizeTracestateAs(text, where, Code::kInvalidRequest);
}

Result<TraceContext> ParseTraceContext(std::optional<std::string_view> traceparent,
                                       std::optional<std::string_view> tracestate, Code code,
                                       std::string_view traceparent_name,
                                       std::string_view tracestate_name) {
  TraceContext tc;
  if (!traceparent) {
    if (tracestate) {
      return Bad(code, tracestate_name,
                 std::string("is given without ") + std::string(traceparent_name));
    }
    return tc;
  }
  YM_RETURN_IF_ERROR(CheckTraceparentAs(*traceparent, traceparent_name, code));
  tc.traceparent = std::string(*traceparent);
  if (tracestate) {
    auto st = NormalizeTracestateAs(*tracestate, tracestate_name, code);
    if (!st.ok()) return st.status();
    tc.tracestate = std::move(*st);
  }
  return tc;
}

std::string_view TraceIdOf(std::string_view traceparent) {
  if (traceparent.size() < 35) return {};
  return traceparent.substr(3, 32);
}

}  // namespace ym
