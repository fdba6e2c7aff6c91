#include "core/cron/missed_runs.h"

#include <algorithm>
#include <deque>
#include <limits>

namespace ym::cron {

namespace {

// The last `n` windows in (lo, now] (oldest first), and whether any window in (lo, now] comes
// before them. The look-back span quadruples from a second until it holds n windows or reaches
// lo, so the windows enumerated are about 4n plus a few dozen evaluations of the expression,
// whatever the length of (lo, now].
struct Recent {
  std::vector<std::int64_t> last;
  bool more_before = false;
};

Recent CollectRecent(const ScheduleTiming& t, std::int64_t lo, std::int64_t now, std::size_t n) {
  Recent r;
  if (now <= lo || n == 0) return r;
  std::int64_t span = 1000;
  while (true) {
    const std::int64_t from = now - lo <= span ? lo : now - span;
    std::deque<std::int64_t> ring;
    std::uint64_t total = 0;
    for (auto w = t.Next(from); w && *w <= now; w = t.Next(*w)) {
      ring.push_back(*w);
      if (ring.size() > n) ring.pop_front();
      ++total;
    }
    if (total >= n || from == lo) {
      r.last.assign(ring.begin(), ring.end());
      r.more_before = total > n;
      if (!r.more_before && from > lo) {
        const auto first = t.Next(lo);
        r.more_before = first && *first <= from;
      }
      return r;
    }
    span = span > std::numeric_limits<std::int64_t>::max() / 4
               ? std::numeric_limits<std::int64_t>::max()
               : span * 4;
  }
}

// True when a window lies in (after, upto].
bool AnyIn(const ScheduleTiming& t, std::int64_t after, std::int64_t upto) {
  if (upto <= after) return false;
  const auto w = t.Next(after);
  return w && *w <= upto;
}

}  // namespace

std::string_view MissedPolicyName(MissedPolicy p) {
  switch (p) {
    case MissedPolicy::kCatchUp:
      return "catch_up";
    case MissedPolicy::kLatestOnly:
      return "latest_only";
    case MissedPolicy::kSkip:
      return "skip";
  }
  return "latest_only";
}

Result<MissedPolicy> ParseMissedPolicy(std::string_view text, std::string_view field) {
  for (MissedPolicy p : {MissedPolicy::kCatchUp, MissedPolicy::kLatestOnly, MissedPolicy::kSkip}) {
    if (text == MissedPolicyName(p)) return p;
  }
  return Validation(std::string(field) + ": \"" + std::string(text.substr(0, 64)) +
                    "\" is not a missed-run policy (catch_up, latest_only, skip)");
}

Status MissedRunConfig::Validate(std::string_view field) const {
  const std::string f(field);
  if (max_count < 1 || max_count > kMaxCount) {
    return Validation(f + ".max_count must be 1.." + std::to_string(kMaxCount));
  }
  if (max_age_ms < 1000 || max_age_ms > kMaxAgeMs) {
    return Validation(f + ".max_age_ms must be 1000.." + std::to_string(kMaxAgeMs));
  }
  if (grace_ms < 0 || grace_ms > max_age_ms) {
    return Validation(f + ".grace_ms must be 0..max_age_ms (" + std::to_string(max_age_ms) + ")");
  }
  return Status::Ok();
}

std::optional<std::int64_t> ScheduleTiming::Next(std::int64_t after_ms) const {
  std::int64_t from = after_ms;
  if (start_ms && from < *start_ms) from = *start_ms - 1;  // the first window at or after start
  const auto w = expr->Next(*zone, from, anchor_ms);
  if (!w || (end_ms && *w > *end_ms)) return std::nullopt;
  return w;
}

DuePlan PlanDue(const ScheduleTiming& timing, std::int64_t cursor_ms, std::int64_t now_ms,
                const MissedRunConfig& config) {
  DuePlan plan;
  plan.cursor_ms = cursor_ms;
  const Recent latest = CollectRecent(timing, cursor_ms, now_ms, 1);
  if (latest.last.empty()) return plan;  // nothing due
  const std::int64_t last = latest.last.back();
  plan.cursor_ms = last;
  switch (config.policy) {
    case MissedPolicy::kSkip:
      if (now_ms - last <= config.grace_ms) {
        if (latest.more_before) plan.skipped.push_back({cursor_ms, last, "missed"});
        plan.emit.push_back(last);
      } else {
        plan.skipped.push_back({cursor_ms, last + 1, "missed"});
      }
      break;
    case MissedPolicy::kLatestOnly:
      if (now_ms - last <= config.max_age_ms) {
        if (latest.more_before) plan.skipped.push_back({cursor_ms, last, "superseded"});
        plan.emit.push_back(last);
      } else {
        if (latest.more_before) plan.skipped.push_back({cursor_ms, last, "superseded"});
        plan.skipped.push_back({last - 1, last + 1, "too_old"});
      }
      break;
    case MissedPolicy::kCatchUp: {
      // Windows no older than max_age: (now - max_age - 1, now].
      const std::int64_t young_after = std::max(cursor_ms, now_ms - config.max_age_ms - 1);
      if (AnyIn(timing, cursor_ms, young_after)) {
        plan.skipped.push_back({cursor_ms, young_after + 1, "too_old"});
      }
      const Recent recent = CollectRecent(timing, young_after, now_ms, config.max_count);
      if (recent.more_before && !recent.last.empty()) {
        plan.skipped.push_back({young_after, recent.last.front(), "over_count"});
      }
      plan.emit = recent.last;
      break;
    }
  }
  return plan;
}

}  // namespace ym::cron
