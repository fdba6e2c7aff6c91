#include "core/job.h"

#include <charconv>

namespace ym {

std::string_view StateName(JobState s) {
  switch (s) {
    case JobState::kScheduled:
      return "scheduled";
    case JobState::kReady:
      return "ready";
    case JobState::kActive:
      return "active";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kDead:
      return "dead";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::optional<JobState> ParseState(std::string_view name) {
  for (int i = 0; i <= 5; ++i) {
    auto s = static_cast<JobState>(i);
    if (StateName(s) == name) return s;
  }
  return std::nullopt;
}

std::string FormatToken(std::uint64_t token) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[i] = kHex[token & 0xf];
    token >>= 4;
  }
  return out;
}

std::optional<std::uint64_t> ParseToken(std::string_view text) {
  if (text.size() != 16) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 16);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

std::string FormatJobId(JobId id) { return std::to_string(id); }

std::optional<JobId> ParseJobId(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  JobId v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 10);
  if (ec != std::errc() || p != text.data() + text.size() || v == 0) return std::nullopt;
  return v;
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace ym
