#include "obs/alerts/evaluator.h"

#include <algorithm>
#include <unordered_map>

namespace ym::alerts {
namespace {

bool Windowed(ConditionKind k) {
  return k == ConditionKind::kFailureRatio || k == ConditionKind::kDeadGrowth;
}

// A count that restarted (went down) contributes its new value; otherwise the difference.
std::uint64_t Grown(std::uint64_t before, std::uint64_t now) {
  return now >= before ? now - before : now;
}

}  // namespace

std::string_view AlertStateName(AlertState s) {
  switch (s) {
    case AlertState::kInactive:
      return "inactive";
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
  }
  return "?";
}

std::string AlertEvent::DedupeKey() const {
  return rule + "/" + queue + "/" + std::to_string(started_at_ms) + "/" +
         (firing ? "firing" : "resolved");
}

AlertEvaluator::AlertEvaluator(std::vector<AlertRule> rules, const Clock& clock, Options options)
    : rules_(std::move(rules)), clock_(clock), options_(options) {
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const Condition& c = rules_[i].condition;
    if (Windowed(c.kind)) {
      any_windowed_ = true;
      longest_window_ms_ = std::max(longest_window_ms_, c.window_ms);
    }
    if (!rules_[i].queue.empty()) instances_[{i, rules_[i].queue}];
  }
  history_step_ms_ = std::max<std::int64_t>(1000, longest_window_ms_ / 256);
}

void AlertEvaluator::Track(const QueueSample& s, std::int64_t mono, std::int64_t wall) {
  auto [it, fresh] = queues_.try_emplace(s.queue);
  QueueTrack& t = it->second;
  if (fresh) {
    // The counts start at 0 when core starts holding the queue (at the server's start, or when
    // the queue was created since the last sample): all of them are new, as of now.
    t.first_seen_wall = wall;
    t.current = Point{mono, s.succeeded, s.failed, s.dead};
    if (any_windowed_) t.history.push_back(Point{mono, 0, 0, 0});
  } else {
    t.current.succeeded += Grown(t.last.succeeded, s.succeeded);
    t.current.failed += Grown(t.last.failed, s.failed);
    t.current.dead += Grown(t.last.dead, s.dead);
    t.current.mono = mono;
  }
  t.last = s;
  t.last_seen_mono = mono;
}

AlertEvaluator::Point AlertEvaluator::WindowBase(const QueueTrack& t, std::int64_t window_ms,
                                                 std::int64_t mono) const {
  // The newest point at or before the window's start; the oldest kept when none is that old
  // (the queue was first seen within the window: counted from then).
  const std::int64_t start = mono - window_ms;
  const Point* base = nullptr;
  for (const Point& p : t.history) {
    if (p.mono > start) break;
    base = &p;
  }
  if (base == nullptr) return t.history.empty() ? t.current : t.history.front();
  return *base;
}

std::pair<double, bool> AlertEvaluator::Measure(const AlertRule& r, const std::string& queue,
                                                const QueueSample* sample, std::int64_t mono,
                                                std::int64_t wall) const {
  const Condition& c = r.condition;
  const auto track = queues_.find(queue);
  switch (c.kind) {
    case ConditionKind::kLagSeconds:
    case ConditionKind::kOldestReadyAge: {
      const double v =
          sample != nullptr && sample->ready > 0 ? sample->oldest_ready_age_ms / 1000.0 : 0.0;
      return {v, c.Exceeds(v)};
    }
    case ConditionKind::kFailureRatio: {
      if (track == queues_.end()) return {0.0, false};
      const Point base = WindowBase(track->second, c.window_ms, mono);
      const Point& now = track->second.current;
      const double failed = static_cast<double>(now.failed - base.failed);
      const double ended = failed + static_cast<double>(now.succeeded - base.succeeded);
      const double v = ended > 0 ? failed / ended : 0.0;
      return {v, ended >= static_cast<double>(c.min_count) && c.Exceeds(v)};
    }
    case ConditionKind::kDeadGrowth: {
      if (track == queues_.end()) return {0.0, false};
      const Point base = WindowBase(track->second, c.window_ms, mono);
      const double v = static_cast<double>(track->second.current.dead - base.dead);
      return {v, c.Exceeds(v)};
    }
    case ConditionKind::kNoPollers: {
      if (sample == nullptr || track == queues_.end()) return {0.0, false};
      std::int64_t last = std::max(sample->last_poll_ms, track->second.first_seen_wall);
      if (sample->waiting_workers > 0) last = wall;
      const double v = static_cast<double>(std::max<std::int64_t>(wall - last, 0)) / 1000.0;
      return {v, sample->ready > 0 && c.Exceeds(v)};
    }
  }
  return {0.0, false};
}

void AlertEvaluator::Step(std::size_t ri, const std::string& queue, Instance& inst, double value,
                          bool holds, std::int64_t mono, std::int64_t wall,
                          std::vector<AlertEvent>& out) {
  const AlertRule& rule = rules_[ri];
  inst.value = value;
  auto emit = [&](bool firing) {
    AlertEvent e;
    e.rule = rule.name;
    e.queue = queue;
    e.firing = firing;
    e.value = value;
    e.threshold = rule.condition.threshold;
    e.started_at_ms = inst.started_at;
    e.ends_at_ms = firing ? 0 : wall;
    e.at_ms = wall;
    inst.last_event = e;
    out.push_back(std::move(e));
  };
  switch (inst.state) {
    case AlertState::kInactive:
      if (!holds) return;
      inst.state = AlertState::kPending;
      inst.since_wall = wall;
      inst.since_mono = mono;
      inst.started_at = wall;
      [[fallthrough]];
    case AlertState::kPending:
      if (!holds) {
        inst.state = AlertState::kInactive;
        inst.since_wall = wall;
        inst.since_mono = mono;
        return;
      }
      if (mono - inst.since_mono >= rule.condition.for_ms) {
        inst.state = AlertState::kFiring;
        inst.since_wall = wall;
        inst.since_mono = mono;
        emit(true);
      }
      return;
    case AlertState::kFiring:
      if (holds) return;
      inst.state = AlertState::kInactive;
      inst.since_wall = wall;
      inst.since_mono = mono;
      emit(false);
      return;
  }
}

std::vector<AlertEvent> AlertEvaluator::Evaluate(const std::vector<QueueSample>& samples) {
  const std::int64_t mono = clock_.MonoMs();
  const std::int64_t wall = clock_.NowMs();
  std::unordered_map<std::string_view, const QueueSample*> by_name;
  by_name.reserve(samples.size());
  bool any_all_queues = false;
  for (const AlertRule& r : rules_) any_all_queues = any_all_queues || r.queue.empty();
  for (const QueueSample& s : samples) {
    by_name[s.queue] = &s;
    // Only queues some rule looks at are tracked.
    bool wanted = any_all_queues;
    for (std::size_t i = 0; !wanted && i < rules_.size(); ++i) wanted = rules_[i].queue == s.queue;
    if (wanted) Track(s, mono, wall);
  }
  // Thin the histories, and forget queues unseen for longer than any window (their counts
  // restart from the next sample as a fresh queue's).
  for (auto it = queues_.begin(); it != queues_.end();) {
    QueueTrack& t = it->second;
    if (t.last_seen_mono != mono) {
      if (mono - t.last_seen_mono > std::max<std::int64_t>(longest_window_ms_, 60'000) * 2) {
        it = queues_.erase(it);
        continue;
      }
      t.current.mono = mono;  // nothing new counted: the counts carry on unchanged
    }
    if (any_windowed_) {
      if (t.history.empty() || mono - t.history.back().mono >= history_step_ms_) {
        t.history.push_back(t.current);
      }
      // Keep one point at or before the longest window's start, none older.
      while (t.history.size() >= 2 && t.history[1].mono <= mono - longest_window_ms_) {
        t.history.pop_front();
      }
    }
    ++it;
  }

  std::vector<AlertEvent> out;
  for (std::size_t ri = 0; ri < rules_.size(); ++ri) {
    const AlertRule& rule = rules_[ri];
    if (!rule.queue.empty()) {
      auto s = by_name.find(rule.queue);
      const QueueSample* sample = s == by_name.end() ? nullptr : s->second;
      auto [value, holds] = Measure(rule, rule.queue, sample, mono, wall);
      Step(ri, rule.queue, instances_[{ri, rule.queue}], value, holds, mono, wall, out);
      continue;
    }
    // Every queue: the instances that exist (their queue may have gone), then the sampled
    // queues where the condition holds and no instance exists yet.
    for (auto it = instances_.lower_bound({ri, std::string()});
         it != instances_.end() && it->first.first == ri;) {
      const std::string& queue = it->first.second;
      auto s = by_name.find(queue);
      const QueueSample* sample = s == by_name.end() ? nullptr : s->second;
      auto [value, holds] = Measure(rule, queue, sample, mono, wall);
      Step(ri, queue, it->second, value, holds, mono, wall, out);
      if (it->second.state == AlertState::kInactive && !it->second.last_event) {
        it = instances_.erase(it);
      } else {
        ++it;
      }
    }
    for (const QueueSample& s : samples) {
      if (s.queue.rfind(kReservedQueuePrefix, 0) == 0) continue;
      if (instances_.count({ri, s.queue}) != 0) continue;
      auto [value, holds] = Measure(rule, s.queue, &s, mono, wall);
      if (!holds) continue;
      if (instances_.size() >= options_.max_instances) {
        ++dropped_instances_;
        continue;
      }
      Step(ri, s.queue, instances_[{ri, s.queue}], value, holds, mono, wall, out);
    }
  }
  return out;
}

void AlertEvaluator::Restore(const AlertEvent& last) {
  for (std::size_t ri = 0; ri < rules_.size(); ++ri) {
    const AlertRule& rule = rules_[ri];
    if (rule.name != last.rule) continue;
    if (!rule.queue.empty() && rule.queue != last.queue) return;
    auto it = instances_.find({ri, last.queue});
    if (it == instances_.end()) {
      if (instances_.size() >= options_.max_instances) {
        ++dropped_instances_;
        return;
      }
      it = instances_.try_emplace({ri, last.queue}).first;
    }
    Instance& inst = it->second;
    if (inst.last_event && inst.last_event->at_ms > last.at_ms) return;
    inst.last_event = last;
    if (last.firing) {
      inst.state = AlertState::kFiring;
      inst.started_at = last.started_at_ms;
      inst.since_wall = last.at_ms;
      inst.since_mono = clock_.MonoMs();
    } else {
      inst.state = AlertState::kInactive;
      inst.since_wall = last.at_ms;
      inst.since_mono = clock_.MonoMs();
    }
    return;
  }
}

std::vector<AlertStatus> AlertEvaluator::Statuses() const {
  std::vector<AlertStatus> out;
  out.reserve(instances_.size());
  for (const auto& [key, inst] : instances_) {
    AlertStatus s;
    s.rule = rules_[key.first].name;
    s.queue = key.second;
    s.state = inst.state;
    s.since_ms = inst.since_wall;
    s.value = inst.value;
    s.last_event = inst.last_event;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace ym::alerts
