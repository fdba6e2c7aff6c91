#include "core/bulk.h"

#include <algorithm>
#include <string>

namespace ym {

std::string_view BulkActionName(BulkAction action) {
  switch (action) {
    case BulkAction::kCancel:
      return "cancel";
    case BulkAction::kReplay:
      return "replay";
    case BulkAction::kDelete:
      return "delete";
  }
  return "?";
}

std::string_view BulkDoneName(BulkAction action) {
  switch (action) {
    case BulkAction::kCancel:
      return "cancelled";
    case BulkAction::kReplay:
      return "replayed";
    case BulkAction::kDelete:
      return "deleted";
  }
  return "?";
}

std::vector<JobState> BulkStates(BulkAction action) {
  switch (action) {
    case BulkAction::kCancel:
      return {JobState::kScheduled, JobState::kReady, JobState::kActive};
    case BulkAction::kReplay:
      return {JobState::kDead, JobState::kCancelled};
    case BulkAction::kDelete:
      return {JobState::kSucceeded, JobState::kDead, JobState::kCancelled};
  }
  return {};
}

bool BulkAppliesTo(BulkAction action, JobState state) {
  const std::vector<JobState> states = BulkStates(action);
  return std::find(states.begin(), states.end(), state) != states.end();
}

Result<JobFilter> NarrowBulkFilter(BulkAction action, JobFilter filter) {
  filter.Normalize();
  const std::vector<JobState> applicable = BulkStates(action);
  std::string names;
  for (JobState s : applicable) {
    if (!names.empty()) names += s == applicable.back() ? " and " : ", ";
    names += StateName(s);
  }
  for (JobState s : filter.states) {
    if (!BulkAppliesTo(action, s)) {
      return Validation("field \"state\": " + std::string(BulkActionName(action)) + " applies to " +
                        names + " jobs, not " + std::string(StateName(s)));
    }
  }
  if (action == BulkAction::kCancel && (filter.finished_after_ms || filter.finished_before_ms)) {
    return Validation(std::string("field \"") +
                      (filter.finished_after_ms ? "finished_after" : "finished_before") +
                      "\": cancel applies to live jobs, which have not finished");
  }
  if (filter.states.empty()) filter.states = applicable;
  filter.Normalize();
  return filter;
}

}  // namespace ym
