#include "cli/format.h"

#include <algorithm>
#include <ctime>
#include <iomanip>
#include <ostream>
#include <sstream>

namespace ym::cli {

Table::Table(std::vector<std::string> headers, std::vector<bool> right_aligned)
    : headers_(std::move(headers)), right_aligned_(std::move(right_aligned)) {
  right_aligned_.resize(headers_.size(), false);
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

void Table::Print(std::ostream& out) const {
  std::vector<std::size_t> width(headers_.size());
  for (std::size_t c = 0; c < headers_.size(); ++c) width[c] = headers_[c].size();
  for (const auto& row : rows_) {
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      const std::size_t pad = width[c] - row[c].size();
      if (right_aligned_[c]) line.append(pad, ' ');
      line += row[c];
      // No trailing blanks after the last column: they only confuse diffs and copy-paste.
      if (!right_aligned_[c] && c + 1 < row.size()) line.append(pad, ' ');
      if (c + 1 < row.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  };
  print_row(headers_);
  for (const auto& row : rows_) print_row(row);
}

void PrintFields(std::ostream& out,
                 const std::vector<std::pair<std::string, std::string>>& fields) {
  std::size_t width = 0;
  for (const auto& [key, value] : fields) width = std::max(width, key.size());
  for (const auto& [key, value] : fields) {
    out << key << ':' << std::string(width - key.size() + 2, ' ') << value << '\n';
  }
}

std::string FormatTime(std::int64_t epoch_ms) {
  if (epoch_ms == 0) return "-";
  std::int64_t secs = epoch_ms / 1000;
  std::int64_t frac = epoch_ms % 1000;
  if (frac < 0) {
    frac += 1000;
    secs -= 1;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::ostringstream s;
  s << std::put_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (frac != 0) s << '.' << std::setw(3) << std::setfill('0') << frac;
  s << 'Z';
  return s.str();
}

std::string FormatDuration(std::int64_t ms) {
  std::ostringstream s;
  if (ms < 0) {
    s << '-';
    ms = -ms;
  }
  if (ms < 1000) {
    s << ms << "ms";
  } else if (ms < 60'000) {
    s << std::fixed << std::setprecision(1) << static_cast<double>(ms) / 1000.0 << 's';
  } else if (ms < 3'600'000) {
    s << ms / 60'000 << 'm' << std::setw(2) << std::setfill('0') << (ms / 1000) % 60 << 's';
  } else if (ms < 86'400'000) {
    s << ms / 3'600'000 << 'h' << std::setw(2) << std::setfill('0') << (ms / 60'000) % 60 << 'm';
  } else {
    s << ms / 86'400'000 << 'd' << std::setw(2) << std::setfill('0') << (ms / 3'600'000) % 24
      << 'h';
  }
  return s.str();
}

std::string Clip(std::string_view s, std::size_t max) {
  std::string out;
  out.reserve(std::min(s.size(), max));
  for (char c : s) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  if (out.size() > max && max > 3) {
    out.resize(max - 3);
    out += "...";
  }
  return out;
}

}  // namespace ym::cli
