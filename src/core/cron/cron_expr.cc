#include "core/cron/cron_expr.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <limits>

namespace ym::cron {

namespace {

using std::chrono::seconds;

constexpr std::string_view kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                            "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::string_view kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct FieldDef {
  const char* what;  // for errors
  int min;
  int max;
  const std::string_view* names;  // names[i] stands for min + i
  std::size_t name_count;
  bool question;  // `?` allowed (same as `*`)
};

constexpr FieldDef kSecond{"second", 0, 59, nullptr, 0, false};
constexpr FieldDef kMinute{"minute", 0, 59, nullptr, 0, false};
constexpr FieldDef kHour{"hour", 0, 23, nullptr, 0, false};
constexpr FieldDef kDom{"day of month", 1, 31, nullptr, 0, true};
constexpr FieldDef kMonth{"month", 1, 12, kMonthNames, 12, false};
// 0..7: 7 is Sunday again (folded into 0 after parsing).
constexpr FieldDef kDow{"day of week", 0, 7, kDayNames, 7, true};

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

bool ParseNumber(std::string_view s, std::int64_t* out) {
  if (s.empty() || s.size() > 12) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

class FieldParser {
 public:
  FieldParser(const FieldDef& def, int position, std::string_view field)
      : def_(def),
        prefix_(std::string(field) + ": field " + std::to_string(position) + " (" + def.what +
                ")") {}

  // Sets bits min..max of `bits` (indexed by value); `*any`: the field was `*` or `?`.
  template <std::size_t N>
  Status Parse(std::string_view text, std::bitset<N>* bits, bool* any) {
    *any = text == "*" || (def_.question && text == "?");
    for (std::string_view item : Split(text, ',')) {
      if (item.empty()) return Error("an empty list item in \"" + std::string(text) + "\"");
      int lo = def_.min, hi = def_.max, step = 1;
      const std::size_t slash = item.find('/');
      std::string_view base = item.substr(0, slash);
      if (slash != std::string_view::npos) {
        std::int64_t s = 0;
        const std::string_view st = item.substr(slash + 1);
        if (!ParseNumber(st, &s)) return Error("step \"" + std::string(st) + "\" is not a number");
        if (s < 1 || s > def_.max - def_.min + 1) {
          return Error("step " + std::to_string(s) + " is out of range 1-" +
                       std::to_string(def_.max - def_.min + 1));
        }
        step = static_cast<int>(s);
      }
      if (base == "*" || (def_.question && base == "?")) {
        // the whole range
      } else {
        const std::size_t dash = base.find('-');
        auto a = Value(base.substr(0, dash));
        if (!a.ok()) return a.status();
        lo = *a;
        if (dash != std::string_view::npos) {
          auto b = Value(base.substr(dash + 1));
          if (!b.ok()) return b.status();
          hi = *b;
          if (lo > hi) {
            return Error("range " + std::string(base) + " goes backwards (write " +
                         std::string(base.substr(dash + 1)) + "-" +
                         std::string(base.substr(0, dash)) + " or a list)");
          }
        } else if (slash == std::string_view::npos) {
          hi = lo;  // a single value; "a/n" runs from a to the maximum
        }
      }
      for (int v = lo; v <= hi; v += step) bits->set(static_cast<std::size_t>(v));
    }
    return Status::Ok();
  }

 private:
  Result<int> Value(std::string_view s) {
    if (s.empty()) return Error("a value is missing");
    const std::string up = Upper(s);
    for (std::size_t i = 0; i < def_.name_count; ++i) {
      if (up == def_.names[i]) return def_.min == 0 ? static_cast<int>(i) : static_cast<int>(i) + 1;
    }
    for (std::string_view unsupported : {"L", "W", "#", "LW"}) {
      if (up.find(unsupported) != std::string::npos && !ParseNumberOk(s)) {
        return Error("\"" + std::string(s) +
                     "\" is not supported (Quartz's L, W and # are not part of this syntax)");
      }
    }
    std::int64_t v = 0;
    if (!ParseNumber(s, &v)) {
      return Error("\"" + std::string(s) + "\" is not a number" +
                   (def_.name_count ? " or a name" : ""));
    }
    if (v < def_.min || v > def_.max) {
      return Error(std::to_string(v) + " is out of range " + std::to_string(def_.min) + "-" +
                   std::to_string(def_.max));
    }
    return static_cast<int>(v);
  }
  static bool ParseNumberOk(std::string_view s) {
    std::int64_t v = 0;
    return ParseNumber(s, &v);
  }
  Status Error(const std::string& what) const { return Validation(prefix_ + ": " + what); }

  const FieldDef& def_;
  std::string prefix_;
};

// "90s", "1h30m", "2d": the sum, in ms; kValidation naming `field`.
Result<std::int64_t> ParseInterval(std::string_view text, std::string_view field) {
  const std::string bad = std::string(field) + ": \"every " + std::string(text) +
                          "\" is not an interval (e.g. every 90s, every 15m, every 1h30m)";
  if (text.empty()) return Validation(bad);
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    std::int64_t n = 0;
    if (j == i || j == text.size() || !ParseNumber(text.substr(i, j - i), &n)) {
      return Validation(bad);
    }
    std::int64_t unit = 0;
    switch (text[j]) {
      case 's':
        unit = 1000;
        break;
      case 'm':
        unit = 60'000;
        break;
      case 'h':
        unit = 3'600'000;
        break;
      case 'd':
        unit = 86'400'000;
        break;
      default:
        return Validation(bad);
    }
    if (n > CronExpr::kMaxIntervalMs / unit) {
      return Validation(std::string(field) + ": an interval must be 1s..366d, got \"every " +
                        std::string(text) + "\"");
    }
    total += n * unit;
    if (total > CronExpr::kMaxIntervalMs) break;
    i = j + 1;
  }
  if (total < 1000 || total > CronExpr::kMaxIntervalMs) {
    return Validation(std::string(field) + ": an interval must be 1s..366d, got \"every " +
                      std::string(text) + "\"");
  }
  return total;
}

// Days in `month` of a leap year (the most it can have).
int MaxDays(int month) {
  static constexpr int kDays[] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return kDays[month];
}

// Floor division of ms into whole seconds (also for times before 1970).
std::int64_t FloorSeconds(std::int64_t ms) { return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000); }

const date::local_seconds kLastLocal =
    date::local_days{date::year{9999} / 12 / 31} + seconds{86'399};

template <std::size_t N>
std::optional<int> NextSet(const std::bitset<N>& bits, int from) {
  for (int v = from; v < static_cast<int>(N); ++v) {
    if (bits[static_cast<std::size_t>(v)]) return v;
  }
  return std::nullopt;
}

}  // namespace

Result<CronExpr> CronExpr::Parse(std::string_view input, std::string_view field) {
  const std::string_view text = Trim(input);
  CronExpr e;
  e.text_ = std::string(text);
  if (text.empty()) {
    return Validation(std::string(field) +
                      ": empty; a cron expression (\"*/5 * * * *\"), a macro (@daily) or an "
                      "interval (every 90s)");
  }
  std::string_view expr = text;
  if (text.substr(0, 6) == "every " || text.substr(0, 7) == "@every ") {
    auto ms = ParseInterval(Trim(text.substr(text.find(' ') + 1)), field);
    if (!ms.ok()) return ms.status();
    e.interval_ms_ = *ms;
    return e;
  }
  if (text.front() == '@') {
    const std::string macro = Upper(text);
    if (macro == "@YEARLY" || macro == "@ANNUALLY") {
      expr = "0 0 1 1 *";
    } else if (macro == "@MONTHLY") {
      expr = "0 0 1 * *";
    } else if (macro == "@WEEKLY") {
      expr = "0 0 * * 0";
    } else if (macro == "@DAILY" || macro == "@MIDNIGHT") {
      expr = "0 0 * * *";
    } else if (macro == "@HOURLY") {
      expr = "0 * * * *";
    } else {
      return Validation(std::string(field) + ": unknown macro \"" + std::string(text) +
                        "\" (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, "
                        "@every <interval>)");
    }
  }
  std::vector<std::string_view> parts;
  for (std::size_t i = 0; i < expr.size();) {
    while (i < expr.size() && std::isspace(static_cast<unsigned char>(expr[i]))) ++i;
    std::size_t j = i;
    while (j < expr.size() && !std::isspace(static_cast<unsigned char>(expr[j]))) ++j;
    if (j > i) parts.push_back(expr.substr(i, j - i));
    i = j;
  }
  if (parts.size() != 5 && parts.size() != 6) {
    return Validation(std::string(field) + ": expected 5 fields (minute hour day-of-month month " +
                      "day-of-week) or 6 (second first), got " + std::to_string(parts.size()));
  }
  const std::size_t off = parts.size() - 5;  // 1 with a seconds field
  bool any = false;
  if (off == 1) {
    YM_RETURN_IF_ERROR(FieldParser(kSecond, 1, field).Parse(parts[0], &e.seconds_, &any));
  } else {
    e.seconds_.set(0);
  }
  const int pos = static_cast<int>(off) + 1;
  YM_RETURN_IF_ERROR(FieldParser(kMinute, pos, field).Parse(parts[off], &e.minutes_, &any));
  YM_RETURN_IF_ERROR(FieldParser(kHour, pos + 1, field).Parse(parts[off + 1], &e.hours_, &any));
  YM_RETURN_IF_ERROR(FieldParser(kDom, pos + 2, field).Parse(parts[off + 2], &e.dom_, &e.dom_any_));
  YM_RETURN_IF_ERROR(FieldParser(kMonth, pos + 3, field).Parse(parts[off + 3], &e.months_, &any));
  std::bitset<8> dow;
  YM_RETURN_IF_ERROR(FieldParser(kDow, pos + 4, field).Parse(parts[off + 4], &dow, &e.dow_any_));
  for (std::size_t d = 0; d < 7; ++d) e.dow_[d] = dow[d];
  if (dow[7]) e.dow_.set(0);  // 7 is Sunday
  // A day-of-month that no selected month has, with no weekday to fall back on, never fires.
  if (!e.dom_any_ && e.dow_any_) {
    bool possible = false;
    for (int m = 1; m <= 12 && !possible; ++m) {
      if (!e.months_[static_cast<std::size_t>(m)]) continue;
      for (int d = 1; d <= MaxDays(m) && !possible; ++d)
        possible = e.dom_[static_cast<std::size_t>(d)];
    }
    if (!possible) {
      return Validation(std::string(field) + ": \"" + std::string(text) +
                        "\" never fires: no selected month has the selected days");
    }
  }
  return e;
}

bool CronExpr::DayMatches(const date::year_month_day& ymd, date::weekday wd) const {
  const bool dom = dom_[static_cast<unsigned>(ymd.day())];
  const bool dow = dow_[wd.c_encoding()];
  if (dom_any_) return dow;  // all dom bits are set when dom_any_
  if (dow_any_) return dom;
  return dom || dow;  // both restricted: either (Vixie cron)
}

std::optional<date::local_seconds> CronExpr::NextLocal(date::local_seconds t) const {
  // Each round either returns or moves t forward to the next candidate month, day, hour or
  // minute boundary; Parse refused expressions that can never match, so a match comes within
  // 8 years (Feb 29 across a century) and the bound is only a guard.
  for (int round = 0; round < 100'000; ++round) {
    if (t > kLastLocal) return std::nullopt;
    const date::local_days day = date::floor<date::days>(t);
    const date::year_month_day ymd{day};
    if (!months_[static_cast<unsigned>(ymd.month())]) {
      const date::year_month next = ymd.year() / ymd.month() + date::months{1};
      t = date::local_days{next / 1};
      continue;
    }
    if (!DayMatches(ymd, date::weekday{day})) {
      t = day + date::days{1};
      continue;
    }
    const auto tod = (t - day).count();
    const int h = static_cast<int>(tod / 3600), m = static_cast<int>(tod / 60 % 60),
              s = static_cast<int>(tod % 60);
    const auto hh = NextSet(hours_, h);
    if (!hh) {
      t = day + date::days{1};
      continue;
    }
    if (*hh > h) {
      t = day + std::chrono::hours{*hh};
      continue;
    }
    const auto mm = NextSet(minutes_, m);
    if (!mm) {
      t = day + std::chrono::hours{h + 1};
      continue;
    }
    if (*mm > m) {
      t = day + std::chrono::hours{h} + std::chrono::minutes{*mm};
      continue;
    }
    const auto ss = NextSet(seconds_, s);
    if (!ss) {
      t = day + std::chrono::hours{h} + std::chrono::minutes{m + 1};
      continue;
    }
    return day + std::chrono::hours{h} + std::chrono::minutes{m} + seconds{*ss};
  }
  return std::nullopt;
}

std::optional<std::int64_t> CronExpr::Next(const date::time_zone& tz, std::int64_t after_ms,
                                           std::int64_t anchor_ms) const {
  static constexpr std::int64_t kLastMs = 253'402'300'799'000;  // 9999-12-31T23:59:59Z
  if (interval_ms_ > 0) {
    std::int64_t at;
    if (after_ms < anchor_ms) {
      at = anchor_ms + interval_ms_;
    } else {
      const std::int64_t k = (after_ms - anchor_ms) / interval_ms_ + 1;
      if (k > (kLastMs - anchor_ms) / interval_ms_) return std::nullopt;
      at = anchor_ms + k * interval_ms_;
    }
    if (at > kLastMs) return std::nullopt;
    return at;
  }
  const std::int64_t after_s = FloorSeconds(after_ms);
  // Fire instants are whole seconds > after_ms, i.e. >= after_s + 1. Local times are tried in
  // increasing order from just after after_s's own local time; their instants never decrease
  // (a fold maps to its first occurrence, a gap to its end), so the first instant past after_s
  // is the answer. Candidates at or before it occur only in a fold's second pass or at a gap
  // already passed: both are skipped as a range.
  date::local_seconds l = tz.to_local(date::sys_seconds{seconds{after_s}}) + seconds{1};
  for (int round = 0; round < 64; ++round) {
    const auto c = NextLocal(l);
    if (!c) return std::nullopt;
    const date::local_info info = tz.get_info(*c);
    std::int64_t at = 0;
    switch (info.result) {
      case date::local_info::unique:
      case date::local_info::ambiguous:  // `first` is the offset of the earlier occurrence
        at = (*c - info.first.offset).time_since_epoch().count();
        break;
      case date::local_info::nonexistent:  // `second` begins where the gap ends
        at = info.second.begin.time_since_epoch().count();
        break;
    }
    if (at > after_s) {
      if (at * 1000 > kLastMs) return std::nullopt;
      return at * 1000;
    }
    switch (info.result) {
      case date::local_info::ambiguous:  // skip the rest of the fold: it fired in its first pass
        l = date::local_seconds{info.first.end.time_since_epoch() + info.first.offset};
        break;
      case date::local_info::nonexistent:  // the gap's instant has passed
        l = date::local_seconds{info.second.begin.time_since_epoch() + info.second.offset};
        break;
      case date::local_info::unique:
        l = *c + seconds{1};
        break;
    }
  }
  return std::nullopt;
}

std::vector<std::int64_t> CronExpr::NextN(const date::time_zone& tz, std::int64_t after_ms,
                                          std::size_t n, std::int64_t anchor_ms) const {
  std::vector<std::int64_t> out;
  out.reserve(n);
  std::int64_t t = after_ms;
  while (out.size() < n) {
    const auto next = Next(tz, t, anchor_ms);
    if (!next) break;
    out.push_back(*next);
    t = *next;
  }
  return out;
}

}  // namespace ym::cron
