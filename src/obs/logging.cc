#include "obs/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <memory>

namespace ym::obs {

namespace detail {
constexpr int kInfo = static_cast<int>(spdlog::level::info);
static_assert(kComponentCount == 8, "one initial level per component");
std::array<std::atomic<int>, kComponentCount> component_levels = {kInfo, kInfo, kInfo, kInfo,
                                                                  kInfo, kInfo, kInfo, kInfo};
}  // namespace detail

namespace {

constexpr std::array<std::string_view, kComponentCount> kComponentNames = {
    "server", "http", "access", "broker", "store", "job", "cron", "alerts"};

// The line being written on this thread (set by LogLine::Write around the logger call; spdlog
// formats synchronously on the calling thread) and the innermost request scope.
struct CurrentLine {
  Component component = Component::kServer;
  const LogFields* fields = nullptr;
};
thread_local CurrentLine tl_line;
thread_local const ScopedLogFields* tl_scope = nullptr;

// Appends `s` escaped for a JSON string literal: runs of plain bytes are copied whole.
template <typename Buffer>
void AppendEscaped(std::string_view s, Buffer& dest) {
  auto put = [&dest](std::string_view t) { dest.append(t.data(), t.data() + t.size()); };
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    dest.append(s.data() + run, s.data() + i);
    run = i + 1;
    switch (c) {
      case '"':
        put("\\\"");
        break;
      case '\\':
        put("\\\\");
        break;
      case '\n':
        put("\\n");
        break;
      case '\r':
        put("\\r");
        break;
      case '\t':
        put("\\t");
        break;
      default: {
        const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        dest.append(u, u + 6);
      }
    }
  }
  dest.append(s.data() + run, s.data() + s.size());
}

template <typename Buffer>
void AppendLogfmt(std::string_view s, Buffer& out) {
  bool quote = s.empty();
  for (unsigned char c : s) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) {
      quote = true;
      break;
    }
  }
  if (!quote) {
    out.append(s.data(), s.data() + s.size());
    return;
  }
  out.push_back('"');
  AppendEscaped(s, out);
  out.push_back('"');
}

void AppendJsonString(std::string_view s, spdlog::memory_buf_t& dest) {
  dest.push_back('"');
  AppendEscaped(s, dest);
  dest.push_back('"');
}

void Append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

// Writes the line's component and fields, then those of the request scopes (inner first), each
// key once: `,"k":v` for JSON, ` k=v` for text.
template <bool kJson>
void AppendFields(spdlog::memory_buf_t& dest) {
  std::array<std::string_view, 2 * LogFields::kMaxFields + 1> seen;
  std::size_t n_seen = 0;
  auto emit = [&](std::string_view key, LogField::Type type, std::string_view value) {
    if (std::find(seen.begin(), seen.begin() + n_seen, key) != seen.begin() + n_seen) return;
    if (n_seen < seen.size()) seen[n_seen++] = key;
    if constexpr (kJson) {
      Append(dest, ",\"");
      Append(dest, key);
      Append(dest, "\":");
      if (type == LogField::Type::kString) {
        AppendJsonString(value, dest);
      } else {
        Append(dest, value);
      }
    } else {
      dest.push_back(' ');
      Append(dest, key);
      dest.push_back('=');
      if (type == LogField::Type::kString) {
        AppendLogfmt(value, dest);
      } else {
        Append(dest, value);
      }
    }
  };
  if (tl_line.fields != nullptr) {
    emit("component", LogField::Type::kString, ComponentName(tl_line.component));
    const LogFields& f = *tl_line.fields;
    for (std::size_t i = 0; i < f.size(); ++i)
      emit(f.field(i).key, f.field(i).type, f.value(f.field(i)));
  }
  for (const ScopedLogFields* s = tl_scope; s != nullptr; s = s->outer()) {
    const LogFields& f = s->fields();
    for (std::size_t i = 0; i < f.size(); ++i)
      emit(f.field(i).key, f.field(i).type, f.value(f.field(i)));
  }
}

// %j: the message, escaped for a JSON string, so that `log_format = json` lines always parse
// whatever a message contains.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    AppendEscaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

// %F: the fields, as JSON members or logfmt pairs.
template <bool kJson>
class FieldsFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    AppendFields<kJson>(dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<FieldsFlag<kJson>>();
  }
};

}  // namespace

std::string_view ComponentName(Component c) { return kComponentNames[static_cast<std::size_t>(c)]; }

std::optional<Component> ComponentFromName(std::string_view name) {
  for (std::size_t i = 0; i < kComponentCount; ++i) {
    if (kComponentNames[i] == name) return static_cast<Component>(i);
  }
  return std::nullopt;
}

std::string ComponentNames() {
  std::string out;
  for (auto n : kComponentNames) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::optional<spdlog::level::level_enum> ParseLevel(std::string_view level) {
  static constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 7> kLevels = {
      {{"trace", spdlog::level::trace},
       {"debug", spdlog::level::debug},
       {"info", spdlog::level::info},
       {"warn", spdlog::level::warn},
       {"error", spdlog::level::err},
       {"critical", spdlog::level::critical},
       {"off", spdlog::level::off}}};
  for (const auto& [name, lvl] : kLevels) {
    if (name == level) return lvl;
  }
  return std::nullopt;
}

Result<std::map<std::string, std::string>> ParseComponentLevels(std::string_view text) {
  std::map<std::string, std::string> out;
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return InvalidRequest("\"" + std::string(item) + "\" must be COMPONENT=LEVEL");
    }
    const std::string component(trim(item.substr(0, eq)));
    const std::string level(trim(item.substr(eq + 1)));
    if (!ComponentFromName(component)) {
      return InvalidRequest("unknown log component \"" + component +
                            "\" (components: " + ComponentNames() + ")");
    }
    if (!ParseLevel(level)) {
      return InvalidRequest("log level of " + component + " must be trace, debug, info, warn, " +
                            "error, critical or off (got \"" + level + "\")");
    }
    if (!out.emplace(component, level).second) {
      return InvalidRequest("log component " + component + " is given twice");
    }
  }
  return out;
}

void SetComponentLevel(Component c, spdlog::level::level_enum level) {
  detail::component_levels[static_cast<std::size_t>(c)].store(static_cast<int>(level),
                                                              std::memory_order_relaxed);
  // The logger must let the component's lines through (its level is an atomic too).
  if (auto* logger = spdlog::default_logger_raw(); logger != nullptr && level < logger->level()) {
    logger->set_level(level);
  }
}

spdlog::level::level_enum ComponentLevel(Component c) {
  return static_cast<spdlog::level::level_enum>(
      detail::component_levels[static_cast<std::size_t>(c)].load(std::memory_order_relaxed));
}

void LogFields::Add(std::string_view key, LogField::Type type, std::string_view value) {
  if (count_ == kMaxFields) return;
  LogField& f = fields_[count_++];
  f.key = key;
  f.type = type;
  f.begin = static_cast<std::uint32_t>(buf_.size());
  buf_.append(value.data(), value.data() + value.size());
  f.end = static_cast<std::uint32_t>(buf_.size());
}

void LogFields::AddString(std::string_view key, std::string_view value) {
  Add(key, LogField::Type::kString, value);
}

void LogFields::AddNumber(std::string_view key, std::string_view rendered) {
  Add(key, LogField::Type::kNumber, rendered);
}

void LogFields::AddBool(std::string_view key, bool value) {
  Add(key, LogField::Type::kBool, value ? "true" : "false");
}

bool LogFields::Has(std::string_view key) const {
  for (std::size_t i = 0; i < count_; ++i) {
    if (fields_[i].key == key) return true;
  }
  return false;
}

LogLine::~LogLine() {
  if (!written_) Write({});
}

LogLine& LogLine::Int(std::string_view key, std::int64_t value) {
  fmt::format_int f(value);
  fields_.AddNumber(key, std::string_view(f.data(), f.size()));
  return *this;
}

LogLine& LogLine::Uint(std::string_view key, std::uint64_t value) {
  fmt::format_int f(value);
  fields_.AddNumber(key, std::string_view(f.data(), f.size()));
  return *this;
}

LogLine& LogLine::Double(std::string_view key, double value) {
  fmt::memory_buffer b;
  fmt::format_to(std::back_inserter(b), "{}", value);
  const std::string_view text(b.data(), b.size());
  if (std::isfinite(value)) {
    fields_.AddNumber(key, text);
  } else {
    fields_.AddString(key, text);
  }
  return *this;
}

LogLine& LogLine::DurationUs(std::uint64_t micros) {
  fmt::memory_buffer b;
  fmt::format_to(std::back_inserter(b), "{}.{:03}", micros / 1000, micros % 1000);
  fields_.AddNumber("duration_ms", std::string_view(b.data(), b.size()));
  return *this;
}

void LogLine::Write(std::string_view msg) {
  written_ = true;
  const CurrentLine saved = tl_line;
  tl_line = {component_, &fields_};
  spdlog::default_logger_raw()->log(level_, spdlog::string_view_t(msg.data(), msg.size()));
  tl_line = saved;
}

ScopedLogFields::ScopedLogFields() : outer_(tl_scope) { tl_scope = this; }

ScopedLogFields::~ScopedLogFields() { tl_scope = outer_; }

std::string JsonEscape(std::string_view s) {
  fmt::memory_buffer b;
  AppendEscaped(s, b);
  return std::string(b.data(), b.size());
}

void AppendLogfmtValue(std::string_view s, fmt::memory_buffer& out) { AppendLogfmt(s, out); }

Status SetupLogging(const LogOptions& options, spdlog::sink_ptr sink) {
  auto lvl = ParseLevel(options.level);
  if (!lvl) {
    return InvalidRequest("log level must be trace, debug, info, warn, error, critical or off");
  }
  std::array<spdlog::level::level_enum, kComponentCount> levels;
  levels.fill(*lvl);
  for (const auto& [name, level] : options.component_levels) {
    auto c = ComponentFromName(name);
    if (!c) {
      return InvalidRequest("unknown log component \"" + name +
                            "\" (components: " + ComponentNames() + ")");
    }
    auto l = ParseLevel(level);
    if (!l) {
      return InvalidRequest("log level of " + name +
                            " must be trace, debug, info, warn, error, critical or off");
    }
    levels[static_cast<std::size_t>(*c)] = *l;
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  if (options.format == "json") {
    formatter->add_flag<JsonMessageFlag>('j').add_flag<FieldsFlag<true>>('F').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%j"%F})");
  } else if (options.format == "text") {
    formatter->add_flag<FieldsFlag<false>>('F').set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v%F");
  } else {
    return InvalidRequest("log format must be text or json");
  }
  if (sink == nullptr) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("yardmaster", std::move(sink));
  logger->set_formatter(std::move(formatter));
  // The components filter their own lines (YM_LOG); the logger lets through the lowest of
  // their levels, which is also what a bare spdlog call gets.
  logger->set_level(*std::min_element(levels.begin(), levels.end()));
  logger->flush_on(spdlog::level::info);
  for (std::size_t i = 0; i < kComponentCount; ++i) {
    SetComponentLevel(static_cast<Component>(i), levels[i]);
  }
  spdlog::set_default_logger(std::move(logger));
  return Status::Ok();
}

Status SetupLogging(const std::string& level, const std::string& format) {
  LogOptions o;
  o.level = level;
  o.format = format;
  return SetupLogging(o);
}

}  // namespace ym::obs
