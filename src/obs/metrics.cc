#include "obs/metrics.h"

#include <charconv>
#include <cmath>

namespace ym::obs {

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// The shortest text that reads back as the same double (std::to_chars), so large values such as
// epoch seconds keep their precision; integers print without a fraction or exponent.
void AppendNumber(std::string& o, double value) {
  char buf[64];
  if (std::isnan(value)) {
    o += "NaN";
    return;
  }
  if (std::isinf(value)) {
    o += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  std::to_chars_result r = std::fabs(value) < 1e15 && value == std::floor(value)
                               ? std::to_chars(buf, buf + sizeof buf, static_cast<long long>(value))
                               : std::to_chars(buf, buf + sizeof buf, value);
  o.append(buf, r.ptr);
}

}  // namespace

void SampleSink::Line(std::string_view suffix, double value, const Labels& labels, const char* le) {
  std::string& o = *out_;
  o += *name_;
  o += suffix;
  if (!labels.empty() || le != nullptr) {
    o += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) o += ',';
      first = false;
      o += k;
      o += "=\"";
      o += EscapeLabelValue(v);
      o += '"';
    }
    if (le != nullptr) {
      if (!first) o += ',';
      o += "le=\"";
      o += le;
      o += '"';
    }
    o += '}';
  }
  o += ' ';
  AppendNumber(o, value);
  o += '\n';
}

void SampleSink::Add(double value, const Labels& labels) { Line("", value, labels, nullptr); }

void SampleSink::AddHistogram(const Histogram::Snapshot& h, double scale, const Labels& labels) {
  // A scale below 1 (1e-6: microseconds to seconds) divides by its inverse instead: 25000 /
  // 1e6 is the double nearest 0.025 and prints as "0.025", where 25000 * 1e-6 prints as
  // "0.024999999999999998", an `le` no query would write.
  const double inverse = scale < 1 ? std::round(1 / scale) : 0;
  auto scaled = [&](std::uint64_t v) {
    return inverse > 0 ? static_cast<double>(v) / inverse : static_cast<double>(v) * scale;
  };
  for (std::size_t i = 0; i < h.bounds.size(); ++i) {
    // Fixed notation ("0.0001", not "1e-04"), as Prometheus client libraries print bounds.
    char buf[64];
    const std::to_chars_result r =
        std::to_chars(buf, buf + sizeof buf, scaled(h.bounds[i]), std::chars_format::fixed);
    const std::string le(buf, r.ptr);
    Line("_bucket", static_cast<double>(h.cumulative[i]), labels, le.c_str());
  }
  Line("_bucket", static_cast<double>(h.cumulative.back()), labels, "+Inf");
  Line("_sum", scaled(h.sum), labels, nullptr);
  Line("_count", static_cast<double>(h.count), labels, nullptr);
}

void Registry::Register(std::string name, std::string help, MetricType type,
                        std::function<void(SampleSink&)> probe) {
  families_.push_back(Family{std::move(name), std::move(help), type, std::move(probe)});
}

std::string Registry::Render() const {
  std::string out;
  out.reserve(families_.size() * 128);
  for (const auto& f : families_) {
    out += "# HELP " + f.name + " " + f.help + "\n";
    out += "# TYPE " + f.name +
           (f.type == MetricType::kCounter ? " counter\n"
            : f.type == MetricType::kGauge ? " gauge\n"
                                           : " histogram\n");
    SampleSink sink(&out, &f.name);
    f.probe(sink);
  }
  return out;
}

}  // namespace ym::obs
