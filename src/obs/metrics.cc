#include "obs/metrics.h"

#include <cmath>
#include <cstdio>

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

void SampleSink::Add(double value, const Labels& labels) {
  std::string& o = *out_;
  o += *name_;
  if (!labels.empty()) {
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
    o += '}';
  }
  o += ' ';
  char buf[64];
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", value);
  } else {
    std::snprintf(buf, sizeof buf, "%.9g", value);
  }
  o += buf;
  o += '\n';
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
    out += "# TYPE " + f.name + (f.type == MetricType::kCounter ? " counter\n" : " gauge\n");
    SampleSink sink(&out, &f.name);
    f.probe(sink);
  }
  return out;
}

}  // namespace ym::obs
