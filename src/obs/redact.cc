#include "obs/redact.h"

#include <algorithm>
#include <cstdint>

namespace ym::obs {
namespace {

constexpr std::string_view kRedactedJson = "\"[redacted]\"";

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsLower(std::string_view key, std::string_view lowered) {
  if (key.size() != lowered.size()) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (Lower(key[i]) != lowered[i]) return false;
  }
  return true;
}

bool ContainsLower(std::string_view text, std::string_view lowered) {
  if (lowered.size() > text.size()) return false;
  for (std::size_t i = 0; i + lowered.size() <= text.size(); ++i) {
    if (Lower(text[i]) != lowered[0]) continue;
    if (EqualsLower(text.substr(i, lowered.size()), lowered)) return true;
  }
  return false;
}

// A scanner over JSON text that copies it and replaces the values of listed members. It works
// on the text itself (payloads are validated JSON, kept as sent), so everything not replaced
// keeps its exact bytes: numbers of any size, escapes, Unicode. Any surprise (which stored text
// never has) fails the scan, and the caller then hides the text whole.
class Scanner {
 public:
  Scanner(std::string_view in, const std::vector<std::string>& fields, std::string& out)
      : in_(in), fields_(fields), out_(out) {}

  // Scans the document; `member` non-empty: only inside the top-level object's `member`.
  bool Run(std::string_view member) {
    std::size_t p = Ws(0);
    if (member.empty()) {
      if (!Value(p, /*active=*/true, 0)) return false;
    } else {
      if (!Object(p, false, 0, member)) return false;
    }
    if (Ws(pos_) != in_.size()) return false;
    return true;
  }

  bool changed() const { return changed_; }
  // Writes the text after the last replacement.
  void Finish() { out_.append(in_.substr(copied_)); }

 private:
  static constexpr int kMaxDepth = 1000;

  std::size_t Ws(std::size_t p) const {
    while (p < in_.size() &&
           (in_[p] == ' ' || in_[p] == '\t' || in_[p] == '\n' || in_[p] == '\r')) {
      ++p;
    }
    return p;
  }

  // Sets pos_ past the value starting at p.
  bool Value(std::size_t p, bool active, int depth) {
    if (p >= in_.size() || depth > kMaxDepth) return false;
    const char c = in_[p];
    if (c == '{') return Object(p, active, depth + 1, {});
    if (c == '[') return Array(p, active, depth + 1);
    if (c == '"') {
      std::string_view unused;
      return String(p, &unused, nullptr);
    }
    // A number or a literal: up to the next delimiter.
    std::size_t e = p;
    while (e < in_.size() && in_[e] != ',' && in_[e] != ']' && in_[e] != '}' && in_[e] != ' ' &&
           in_[e] != '\t' && in_[e] != '\n' && in_[e] != '\r') {
      ++e;
    }
    if (e == p) return false;
    pos_ = e;
    return true;
  }

  // A string at p: pos_ past its closing quote; `raw` its content; `decoded` (when given) set
  // only if it had escapes.
  bool String(std::size_t p, std::string_view* raw, std::string* decoded) {
    std::size_t i = p + 1;
    bool escaped = false;
    while (i < in_.size() && in_[i] != '"') {
      if (in_[i] == '\\') {
        escaped = true;
        i += 2;
      } else {
        ++i;
      }
    }
    if (i >= in_.size()) return false;
    *raw = in_.substr(p + 1, i - p - 1);
    pos_ = i + 1;
    if (escaped && decoded != nullptr) return Unescape(*raw, decoded);
    return true;
  }

  static bool Unescape(std::string_view s, std::string* out) {
    out->clear();
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '\\') {
        out->push_back(s[i]);
        continue;
      }
      if (++i >= s.size()) return false;
      switch (s[i]) {
        case 'n':
          out->push_back('\n');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'u': {
          auto hex4 = [&s](std::size_t at, std::uint32_t* v) {
            if (at + 4 > s.size()) return false;
            *v = 0;
            for (std::size_t k = at; k < at + 4; ++k) {
              const char h = s[k];
              *v <<= 4;
              if (h >= '0' && h <= '9')
                *v |= static_cast<std::uint32_t>(h - '0');
              else if (h >= 'a' && h <= 'f')
                *v |= static_cast<std::uint32_t>(h - 'a' + 10);
              else if (h >= 'A' && h <= 'F')
                *v |= static_cast<std::uint32_t>(h - 'A' + 10);
              else
                return false;
            }
            return true;
          };
          std::uint32_t cp = 0;
          if (!hex4(i + 1, &cp)) return false;
          i += 4;
          if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < s.size() && s[i + 1] == '\\' &&
              s[i + 2] == 'u') {
            std::uint32_t lo = 0;
            if (hex4(i + 3, &lo) && lo >= 0xdc00 && lo < 0xe000) {
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
              i += 6;
            }
          }
          // UTF-8.
          if (cp < 0x80) {
            out->push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
            out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          } else if (cp < 0x10000) {
            out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
            out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          } else {
            out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
            out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
            out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          }
          break;
        }
        default:  // \" \\ \/
          out->push_back(s[i]);
      }
    }
    return true;
  }

  bool Listed(std::string_view key) const {
    for (const auto& f : fields_) {
      if (EqualsLower(key, f)) return true;
    }
    return false;
  }

  // An object at p. `active`: its members' keys are checked. `member` (top level only): the one
  // member whose value is scanned, actively.
  bool Object(std::size_t p, bool active, int depth, std::string_view member) {
    if (p >= in_.size() || in_[p] != '{' || depth > kMaxDepth) return false;
    p = Ws(p + 1);
    if (p < in_.size() && in_[p] == '}') {
      pos_ = p + 1;
      return true;
    }
    std::string decoded;
    for (;;) {
      if (p >= in_.size() || in_[p] != '"') return false;
      decoded.clear();
      std::string_view raw;
      if (!String(p, &raw, &decoded)) return false;
      const std::string_view key = decoded.empty() ? raw : std::string_view(decoded);
      p = Ws(pos_);
      if (p >= in_.size() || in_[p] != ':') return false;
      p = Ws(p + 1);
      const std::size_t value_start = p;
      const bool redact = active && Listed(key);
      const bool scan = member.empty() ? active : key == member;
      if (!Value(p, scan && !redact, depth)) return false;
      if (redact) {
        out_.append(in_.substr(copied_, value_start - copied_));
        out_.append(kRedactedJson);
        copied_ = pos_;
        changed_ = true;
      }
      p = Ws(pos_);
      if (p >= in_.size()) return false;
      if (in_[p] == '}') {
        pos_ = p + 1;
        return true;
      }
      if (in_[p] != ',') return false;
      p = Ws(p + 1);
    }
  }

  bool Array(std::size_t p, bool active, int depth) {
    p = Ws(p + 1);
    if (p < in_.size() && in_[p] == ']') {
      pos_ = p + 1;
      return true;
    }
    for (;;) {
      if (!Value(p, active, depth)) return false;
      p = Ws(pos_);
      if (p >= in_.size()) return false;
      if (in_[p] == ']') {
        pos_ = p + 1;
        return true;
      }
      if (in_[p] != ',') return false;
      p = Ws(p + 1);
    }
  }

  std::string_view in_;
  const std::vector<std::string>& fields_;
  std::string& out_;
  std::size_t pos_ = 0;
  std::size_t copied_ = 0;  // in_ before this is in out_ (or replaced)
  bool changed_ = false;
};

std::unique_ptr<const Redactor>& Global() {
  static std::unique_ptr<const Redactor> r = std::make_unique<Redactor>();
  return r;
}

}  // namespace

Redactor::Redactor(const std::vector<std::string>& fields) {
  for (const auto& f : fields) {
    if (f.empty()) continue;
    std::string l;
    for (char c : f) l.push_back(Lower(c));
    if (std::find(fields_.begin(), fields_.end(), l) == fields_.end()) fields_.push_back(l);
  }
}

bool Redactor::MayMatch(std::string_view json) const {
  if (json.find('\\') != std::string_view::npos) return true;
  for (const auto& f : fields_) {
    if (ContainsLower(json, f)) return true;
  }
  return false;
}

std::string_view Redactor::Rewrite(std::string_view json, std::string_view member,
                                   std::string& scratch) const {
  scratch.clear();
  Scanner scanner(json, fields_, scratch);
  if (!scanner.Run(member)) {
    scratch.assign(kRedactedJson);
    return scratch;
  }
  if (!scanner.changed()) return json;
  scanner.Finish();
  return scratch;
}

std::string_view Redactor::Apply(std::string_view json, std::string& scratch) const {
  if (fields_.empty() || json.empty() || !MayMatch(json)) return json;
  return Rewrite(json, {}, scratch);
}

std::string_view Redactor::ApplyUnder(std::string_view json, std::string_view member,
                                      std::string& scratch) const {
  if (fields_.empty() || json.empty() || !MayMatch(json)) return json;
  return Rewrite(json, member, scratch);
}

std::string Redactor::Apply(std::string_view json) const {
  std::string scratch;
  return std::string(Apply(json, scratch));
}

bool Redactor::HidesKeyPath(std::string_view key_text) const {
  constexpr std::string_view kPrefix = "payload.";
  if (fields_.empty() || !key_text.starts_with(kPrefix)) return false;
  std::string_view rest = key_text.substr(kPrefix.size());
  while (!rest.empty()) {
    const std::size_t dot = rest.find('.');
    const std::string_view segment = rest.substr(0, dot);
    for (const auto& f : fields_) {
      if (EqualsLower(segment, f)) return true;
    }
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
  }
  return false;
}

const Redactor& PayloadRedactor() { return *Global(); }

void SetPayloadRedactor(std::vector<std::string> fields) {
  Global() = std::make_unique<Redactor>(fields);
}

}  // namespace ym::obs
