// Redactor: hides the values of listed JSON object members in payloads and results before they
// are logged or shown to anyone but the worker running the job (docs/operations.md,
// "Payload redaction").
//
// A member is redacted when its key equals a listed name, ignoring ASCII case, at any depth of
// the document (inside nested objects and arrays too); its value, whatever its type, becomes the
// string "[redacted]". Keys are compared after JSON unescaping, so `"pass\u0077ord"` is
// `password`. Everything else keeps its exact bytes (the text is scanned, not parsed and
// re-serialized: numbers of any size, escapes and Unicode are untouched). A text with no listed
// member comes back unchanged; a text that is not JSON (nothing stored is) comes back as
// "[redacted]" whole.
//
// Cost: nothing when no field is listed; otherwise a case-insensitive scan for the names, and a
// parse and rewrite only when one occurs (or the text has an escape that could hide one).
//
// Threads: a Redactor is immutable. The process-wide one (PayloadRedactor) is set once at start
// by server_main, before any thread that renders or logs payloads is started.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ym::obs {

inline constexpr std::string_view kRedacted = "[redacted]";

class Redactor {
 public:
  Redactor() = default;
  // Field names as configured (empty names are ignored; duplicates are harmless).
  explicit Redactor(const std::vector<std::string>& fields);

  bool empty() const { return fields_.empty(); }
  const std::vector<std::string>& fields() const { return fields_; }

  // `json` with every listed member's value replaced. Returns `json` itself when nothing is to
  // be replaced, else a view of `scratch`, which it overwrites.
  std::string_view Apply(std::string_view json, std::string& scratch) const;
  // The same, but only inside the value of the top-level object's member `member` (a schedule's
  // job template: its "payload", not its queue or kind).
  std::string_view ApplyUnder(std::string_view json, std::string_view member,
                              std::string& scratch) const;
  // Convenience for tests and logs.
  std::string Apply(std::string_view json) const;
  // True when a limit key path ("payload.account.api_key", flow::LimitSpec::KeyText) goes
  // through a listed member: the limit's key values are then payload values to hide.
  bool HidesKeyPath(std::string_view key_text) const;

 private:
  bool MayMatch(std::string_view json) const;
  std::string_view Rewrite(std::string_view json, std::string_view member,
                           std::string& scratch) const;

  std::vector<std::string> fields_;  // lower-cased
};

// The server's redactor for payloads and results; empty until SetPayloadRedactor.
const Redactor& PayloadRedactor();
void SetPayloadRedactor(std::vector<std::string> fields);

}  // namespace ym::obs
