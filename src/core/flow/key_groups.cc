#include "core/flow/key_groups.h"

#include <algorithm>

#include "core/flow/sat_math.h"

namespace ym::flow {

std::string_view SingletonModeName(SingletonMode mode) {
  switch (mode) {
    case SingletonMode::kRefuse:
      return "refuse";
    case SingletonMode::kSkip:
      return "skip";
    case SingletonMode::kOff:
      break;
  }
  return "";
}

Result<SingletonMode> ParseSingletonMode(std::string_view text) {
  if (text == "refuse") return SingletonMode::kRefuse;
  if (text == "skip") return SingletonMode::kSkip;
  return Validation("field \"singleton\": must be \"refuse\" or \"skip\"");
}

Status DebounceConfig::Validate() const {
  if (delay_ms < 0 || delay_ms > kMaxMs) {
    return Validation("field \"debounce.delay_ms\": must be an integer 0.." +
                      std::to_string(kMaxMs));
  }
  if (max_wait_ms && (*max_wait_ms < delay_ms || *max_wait_ms > kMaxMs)) {
    return Validation("field \"debounce.max_wait_ms\": must be an integer between delay_ms and " +
                      std::to_string(kMaxMs));
  }
  return Status::Ok();
}

Status SingletonConflict(JobId holder, std::string_view holder_state, std::string_view limit,
                         std::string_view key) {
  return Status(Code::kSingletonConflict, "job " + FormatJobId(holder) + " (" +
                                              std::string(holder_state) + ") holds key \"" +
                                              std::string(key) + "\" of singleton limit \"" +
                                              std::string(limit) + "\"; nothing was enqueued");
}

std::optional<JobId> SingletonHolder(const Status& status) {
  if (status.code() != Code::kSingletonConflict) return std::nullopt;
  std::string_view m = status.message();
  if (m.substr(0, 4) != "job ") return std::nullopt;
  m.remove_prefix(4);
  return ParseJobId(m.substr(0, m.find(' ')));
}

std::string SupersededReason(JobId by) { return "superseded_by:" + FormatJobId(by); }

std::optional<JobId> SupersededBy(std::string_view reason) {
  constexpr std::string_view kPrefix = "superseded_by:";
  if (reason.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  return ParseJobId(reason.substr(kPrefix.size()));
}

KeyDecision KeyGroups::Decide(const std::vector<KeyGate>& gates, std::int64_t now,
                              std::int64_t own_run_at_ms) const {
  KeyDecision d;
  // A refusal anywhere beats a skip anywhere: an error is what the producer must see.
  for (SingletonMode mode : {SingletonMode::kRefuse, SingletonMode::kSkip}) {
    for (std::size_t i = 0; i < gates.size(); ++i) {
      if (gates[i].singleton != mode) continue;
      auto it = groups_.find(GroupKey{gates[i].limit, gates[i].key});
      if (it == groups_.end() || it->second.live.empty()) continue;
      d.verdict = mode == SingletonMode::kRefuse ? KeyDecision::Verdict::kRefuse
                                                 : KeyDecision::Verdict::kSkip;
      d.holder = *it->second.live.begin();
      d.gate = i;
      return d;
    }
  }
  const std::int64_t own = own_run_at_ms;
  d.run_at_ms = own;
  d.deadlines.assign(gates.size(), 0);
  std::int64_t run = kNoDeadline;
  bool debounced = false;
  for (std::size_t i = 0; i < gates.size(); ++i) {
    if (!gates[i].debounce) continue;
    const DebounceConfig& c = *gates[i].debounce;
    debounced = true;
    std::int64_t deadline;
    auto it = groups_.find(GroupKey{gates[i].limit, gates[i].key});
    if (it != groups_.end() && it->second.waiting != 0) {
      deadline = it->second.deadline;
      d.superseded.push_back(it->second.waiting);
    } else {
      deadline = c.max_wait_ms ? SatAdd(now, *c.max_wait_ms) : kNoDeadline;
    }
    // A producer's own later time moves the deadline with it, so that the waiting job's run_at
    // never exceeds its group's deadline (what recovery relies on, see the header).
    deadline = std::max(deadline, own);
    d.deadlines[i] = deadline;
    run = std::min(run, std::max(own, std::min(SatAdd(now, c.delay_ms), deadline)));
  }
  if (debounced) d.run_at_ms = run;
  std::sort(d.superseded.begin(), d.superseded.end());
  d.superseded.erase(std::unique(d.superseded.begin(), d.superseded.end()), d.superseded.end());
  return d;
}

KeyGroups::Group& KeyGroups::At(const KeyGate& g) { return groups_[GroupKey{g.limit, g.key}]; }

void KeyGroups::Link(JobId id, const GroupKey& key) {
  auto& v = jobs_[id];
  if (std::find(v.begin(), v.end(), key) == v.end()) v.push_back(key);
}

void KeyGroups::Unlink(JobId id, const GroupKey& key) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  auto& v = it->second;
  v.erase(std::remove(v.begin(), v.end(), key), v.end());
  if (v.empty()) jobs_.erase(it);
}

void KeyGroups::DropIfEmpty(std::map<GroupKey, Group>::iterator it) {
  if (it->second.live.empty() && it->second.waiting == 0) groups_.erase(it);
}

void KeyGroups::Join(const std::vector<KeyGate>& gates, JobId id, const KeyDecision& d) {
  for (std::size_t i = 0; i < gates.size(); ++i) {
    const KeyGate& g = gates[i];
    if (g.singleton != SingletonMode::kOff) {
      At(g).live.insert(id);
    } else if (g.debounce) {
      Group& grp = At(g);
      if (grp.waiting != 0 && grp.waiting != id) Unlink(grp.waiting, GroupKey{g.limit, g.key});
      grp.waiting = id;
      grp.deadline = i < d.deadlines.size() ? d.deadlines[i] : d.run_at_ms;
    } else {
      continue;
    }
    Link(id, GroupKey{g.limit, g.key});
  }
}

void KeyGroups::Started(JobId id) {
  auto j = jobs_.find(id);
  if (j == jobs_.end()) return;
  std::vector<GroupKey> keep;
  for (const GroupKey& key : j->second) {
    auto it = groups_.find(key);
    if (it == groups_.end()) continue;
    if (it->second.waiting == id) {
      it->second.waiting = 0;
      DropIfEmpty(it);
    } else {
      keep.push_back(key);  // a singleton group: still live
    }
  }
  if (keep.empty()) {
    jobs_.erase(j);
  } else {
    j->second = std::move(keep);
  }
}

void KeyGroups::Ended(JobId id) {
  auto j = jobs_.find(id);
  if (j == jobs_.end()) return;
  for (const GroupKey& key : j->second) {
    auto it = groups_.find(key);
    if (it == groups_.end()) continue;
    it->second.live.erase(id);
    if (it->second.waiting == id) it->second.waiting = 0;
    DropIfEmpty(it);
  }
  jobs_.erase(j);
}

std::optional<JobId> KeyGroups::Rejoin(const std::vector<KeyGate>& gates, JobId id,
                                       std::int64_t now) {
  for (const KeyGate& g : gates) {
    if (!g.debounce) continue;
    auto it = groups_.find(GroupKey{g.limit, g.key});
    if (it != groups_.end() && it->second.waiting != 0 && it->second.waiting != id) {
      return it->second.waiting;
    }
  }
  for (const KeyGate& g : gates) {
    if (!g.debounce) continue;
    Group& grp = At(g);
    grp.waiting = id;
    grp.deadline = now;
    Link(id, GroupKey{g.limit, g.key});
  }
  return std::nullopt;
}

void KeyGroups::BeginRebuild() {
  kept_.clear();
  for (const auto& [key, grp] : groups_) {
    if (grp.waiting != 0) kept_.emplace(key, std::make_pair(grp.waiting, grp.deadline));
  }
  groups_.clear();
  jobs_.clear();
}

std::vector<JobId> KeyGroups::Restore(const std::vector<KeyGate>& gates, JobId id, bool not_started,
                                      std::int64_t run_at_ms) {
  std::vector<JobId> displaced;
  for (const KeyGate& g : gates) {
    const GroupKey key{g.limit, g.key};
    if (g.singleton != SingletonMode::kOff) {
      At(g).live.insert(id);
    } else if (g.debounce && not_started) {
      Group& grp = At(g);
      // The newest not-started job waits; an older one is left to run as it is (a limit added
      // over several waiting jobs revokes nothing).
      if (grp.waiting > id) continue;
      if (grp.waiting != 0 && grp.waiting != id) {
        Unlink(grp.waiting, key);
        if (!IsWaiting(grp.waiting)) displaced.push_back(grp.waiting);
      }
      grp.waiting = id;
      auto k = kept_.find(key);
      grp.deadline = k != kept_.end() && k->second.first == id ? k->second.second : run_at_ms;
    } else {
      continue;
    }
    Link(id, key);
  }
  return displaced;
}

bool KeyGroups::IsWaiting(JobId id) const {
  auto j = jobs_.find(id);
  if (j == jobs_.end()) return false;
  for (const GroupKey& key : j->second) {
    auto it = groups_.find(key);
    if (it != groups_.end() && it->second.waiting == id) return true;
  }
  return false;
}

std::optional<std::pair<JobId, std::int64_t>> KeyGroups::WaitingIn(std::uint32_t limit,
                                                                   const std::string& key) const {
  auto it = groups_.find(GroupKey{limit, key});
  if (it == groups_.end() || it->second.waiting == 0) return std::nullopt;
  return std::make_pair(it->second.waiting, it->second.deadline);
}

std::vector<JobId> KeyGroups::LiveIn(std::uint32_t limit, const std::string& key) const {
  auto it = groups_.find(GroupKey{limit, key});
  if (it == groups_.end()) return {};
  return {it->second.live.begin(), it->second.live.end()};
}

}  // namespace ym::flow
