// Human-readable output for the CLI: aligned tables, key/value blocks, times and durations.
//
// Plain values and free functions; no shared state. Output is for people: scripts use --json.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ym::cli {

// Columns are padded to their widest cell and separated by two spaces; columns marked
// right-aligned (counts, numbers) line up on their last digit.
class Table {
 public:
  explicit Table(std::vector<std::string> headers, std::vector<bool> right_aligned = {});

  // Missing trailing cells print as empty; extra cells are a programming error and ignored.
  void AddRow(std::vector<std::string> cells);
  void Print(std::ostream& out) const;
  std::size_t rows() const { return rows_.size(); }

 private:
  std::vector<std::string> headers_;
  std::vector<bool> right_aligned_;
  std::vector<std::vector<std::string>> rows_;
};

// "key:  value" lines with the values aligned.
void PrintFields(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& fields);

// Epoch milliseconds as UTC RFC 3339 ("2024-05-01T12:00:00.250Z"; no fraction when whole); "-"
// for 0, which the API uses for "never".
std::string FormatTime(std::int64_t epoch_ms);

// A short duration: "950ms", "12.3s", "4m05s", "2h03m", "3d04h".
std::string FormatDuration(std::int64_t ms);

// Cuts `s` to at most `max` characters (ending in "...") and replaces newlines with spaces, so
// one cell stays on one line.
std::string Clip(std::string_view s, std::size_t max);

// The merged `{"items":[...],"next_cursor":null}` of several pages, built from each item's own
// JSON so that --json --all prints the server's objects unchanged.
// Any item type with a `json` member (jobs, queues, limits, schedules).
template <class Item>
void PrintMergedPages(const std::vector<Item>& items, std::ostream& out) {
  out << "{\"items\":[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out << ',';
    out << items[i].json;
  }
  out << "],\"next_cursor\":null}\n";
}

}  // namespace ym::cli
