// Structured logging for the server, on top of spdlog (stderr, as text or one JSON object per
// line).
//
// A log line has a level, a component, a message and fields:
//
//   YM_LOG(info, kHttp).Str("queue", q).Int("count", n).Msg("released {} leases", n);
//
// With `log_format = json` it is one object per line, the fields as members after `msg`:
//   {"ts":"2026-01-05T10:00:00.123Z","level":"info","msg":"released 3 leases","component":"http",
//    "queue":"emails","count":3}
// With `log_format = text` the fields follow the message as logfmt `key=value` pairs (a value
// with a space, a quote, `=` or a control character, or an empty one, is quoted and escaped):
//   2026-01-05T10:00:00.123Z info released 3 leases component=http queue=emails count=3
//
// Cost: YM_LOG checks the component's level first (one relaxed atomic load); when the line is
// disabled nothing after the macro is evaluated — no argument, no formatting, no allocation.
//
// Levels: one per component (SetComponentLevel, or LogOptions::component_levels); a component
// without its own level uses the global one. Field keys must be string literals (they are kept
// as views until the line is written) made of [a-z0-9_]; values are copied.
//
// Request scope: a ScopedLogFields on the stack adds its fields (e.g. request_id) to every line
// written on that thread while it lives, including lines written with spdlog's free functions.
//
// Threads: SetupLogging before starting threads; SetComponentLevel at any time (levels are
// atomics); YM_LOG from any thread. spdlog's default logger is thread-safe and formats each line
// on the calling thread, under its sink's lock: the fields reach the formatter through
// thread-locals, so the logger must stay synchronous (an async logger would lose them).
#pragma once

#include <fmt/format.h>
#include <spdlog/common.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ym::obs {

// The parts of the server that log. Names (ComponentName) are what the config's
// `log_levels` names and what the `component` field carries.
enum class Component : std::uint8_t {
  kServer,  // start-up, configuration, signals, shutdown
  kHttp,    // the listener, connections, request handling
  kAccess,  // the access log: one line per request (access_log = on)
  kBroker,  // the engine runtime: core thread, commits
  kStore,   // the store: failures, probes, recovery
  kJob,     // job events (enqueue, lease, ack, fail ...): payloads are redacted here
  kCron,    // schedules
  kAlerts,  // alert rules and their delivery
};
inline constexpr std::size_t kComponentCount = 8;

std::string_view ComponentName(Component c);
std::optional<Component> ComponentFromName(std::string_view name);
// "server, http, access, ..." for error messages and docs.
std::string ComponentNames();

struct LogOptions {
  std::string level = "info";   // trace|debug|info|warn|error|critical|off
  std::string format = "text";  // text|json
  // component name -> level, overriding `level` for that component.
  std::map<std::string, std::string> component_levels;
};

// Installs the default logger writing to `sink` (stderr when null). Errors (kInvalidRequest)
// name the bad level, format or component; nothing is changed then.
Status SetupLogging(const LogOptions& options, spdlog::sink_ptr sink = nullptr);
Status SetupLogging(const std::string& level, const std::string& format);

// Parses `trace|debug|info|warn|error|critical|off`.
std::optional<spdlog::level::level_enum> ParseLevel(std::string_view level);

// Parses "http=debug,store=warn" (spaces around items allowed, empty allowed) into a map,
// checking every component and level; errors name the bad item.
Result<std::map<std::string, std::string>> ParseComponentLevels(std::string_view text);

void SetComponentLevel(Component c, spdlog::level::level_enum level);
spdlog::level::level_enum ComponentLevel(Component c);

namespace detail {
// Per-component threshold; relaxed loads: a level change may take effect a few lines late on
// another thread, which is harmless, and no other data is published through it.
extern std::array<std::atomic<int>, kComponentCount> component_levels;
}  // namespace detail

inline bool LogEnabled(Component c, spdlog::level::level_enum level) {
  return static_cast<int>(level) >=
         detail::component_levels[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
}

// One field: a key (a string literal) and its value, already rendered (strings kept raw; the
// writer escapes them for the format in use).
struct LogField {
  enum class Type : std::uint8_t { kString, kNumber, kBool };
  std::string_view key;
  Type type = Type::kString;
  std::uint32_t begin = 0;  // value bytes in the owner's buffer
  std::uint32_t end = 0;
};

// The fields of one line or one scope: values live in an inline buffer (no allocation for
// typical lines).
class LogFields {
 public:
  LogFields() = default;
  LogFields(const LogFields&) = delete;
  LogFields& operator=(const LogFields&) = delete;

  void AddString(std::string_view key, std::string_view value);
  void AddNumber(std::string_view key, std::string_view rendered);
  void AddBool(std::string_view key, bool value);

  bool Has(std::string_view key) const;
  std::size_t size() const { return count_; }
  const LogField& field(std::size_t i) const { return fields_[i]; }
  std::string_view value(const LogField& f) const {
    return std::string_view(buf_.data() + f.begin, f.end - f.begin);
  }

  static constexpr std::size_t kMaxFields = 24;  // more are dropped (a programming error)

 private:
  void Add(std::string_view key, LogField::Type type, std::string_view value);

  std::array<LogField, kMaxFields> fields_{};
  std::size_t count_ = 0;
  fmt::basic_memory_buffer<char, 256> buf_;
};

struct LogDone {};

// One line, built by YM_LOG and written by Msg() (or, without Msg, by the destructor with an
// empty message). Not for direct use: YM_LOG checks the level first.
class LogLine {
 public:
  LogLine(Component component, spdlog::level::level_enum level)
      : component_(component), level_(level) {}
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& Str(std::string_view key, std::string_view value) {
    fields_.AddString(key, value);
    return *this;
  }
  LogLine& Int(std::string_view key, std::int64_t value);
  LogLine& Uint(std::string_view key, std::uint64_t value);
  // Non-finite values are written as strings ("nan", "inf").
  LogLine& Double(std::string_view key, double value);
  LogLine& Bool(std::string_view key, bool value) {
    fields_.AddBool(key, value);
    return *this;
  }
  // A duration in milliseconds with microsecond precision, as `duration_ms`.
  LogLine& DurationUs(std::uint64_t micros);

  template <typename... Args>
  LogDone Msg(fmt::format_string<Args...> format, Args&&... args) {
    fmt::memory_buffer msg;
    fmt::format_to(std::back_inserter(msg), format, std::forward<Args>(args)...);
    Write(std::string_view(msg.data(), msg.size()));
    return {};
  }

 private:
  void Write(std::string_view msg);

  Component component_;
  spdlog::level::level_enum level_;
  bool written_ = false;
  LogFields fields_;
};

// Turns YM_LOG's chain into a void expression (so the macro is one expression, safe in an
// unbraced if/else).
struct LogVoidify {
  void operator&(const LogDone&) const {}
  void operator&(const LogLine&) const {}
};

// Adds fields to every line written on this thread while it lives (nested scopes stack; an
// inner key hides an outer one). Must be destroyed on the thread that created it.
class ScopedLogFields {
 public:
  ScopedLogFields();
  ~ScopedLogFields();
  ScopedLogFields(const ScopedLogFields&) = delete;
  ScopedLogFields& operator=(const ScopedLogFields&) = delete;

  ScopedLogFields& Str(std::string_view key, std::string_view value) {
    fields_.AddString(key, value);
    return *this;
  }

  const LogFields& fields() const { return fields_; }
  const ScopedLogFields* outer() const { return outer_; }

 private:
  LogFields fields_;
  const ScopedLogFields* outer_;
};

// Escapes `s` for use inside a JSON string literal.
std::string JsonEscape(std::string_view s);
// Appends `s` as a logfmt value: as is when it needs no quoting, else quoted and escaped.
void AppendLogfmtValue(std::string_view s, fmt::memory_buffer& out);

}  // namespace ym::obs

// The one way to log: `YM_LOG(info, kHttp).Str("queue", q).Msg("...")`. `lvl` is one of
// spdlog's (trace, debug, info, warn, err, critical); `comp` an obs::Component name. It is one
// expression: when the level is off, nothing to the right of the macro is evaluated.
#define YM_LOG(lvl, comp)                                                  \
  !::ym::obs::LogEnabled(::ym::obs::Component::comp, ::spdlog::level::lvl) \
      ? (void)0                                                            \
      : ::ym::obs::LogVoidify() &                                          \
            ::ym::obs::LogLine(::ym::obs::Component::comp, ::spdlog::level::lvl)
