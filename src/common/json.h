// json: a strict, validating JSON reader that keeps every value's exact text.
//
// Why not RapidJSON's DOM for reading: it converts numbers to doubles (so
// 12345678901234567890123 comes back as 1.2345678901234568e22 and 1e400 is refused), it stops at
// the first NUL when given a length, and it decodes a lone low surrogate ("\udc00") into bytes
// that are not UTF-8. Payloads are the user's data (docs/api.md, "Payloads are passed through
// exactly"), so the server and the C++ client read JSON with this parser instead and keep
// payloads and ack results as validated raw text. RapidJSON's Writer is still used for output.
//
// What Parse accepts: exactly one JSON value (RFC 8259) surrounded by optional whitespace (and an
// optional leading UTF-8 byte-order mark); strings must be valid UTF-8 and every \u escape must
// decode to a Unicode scalar value (surrogates only as a high-low pair). Anything else, including
// any byte after the value (a NUL too), is kInvalidJson with the offset. Containers nested deeper
// than `max_depth` are kValidation (the parser recurses once per level, so this also bounds its
// stack).
//
// What it keeps: the input minus insignificant whitespace ("minified text"). Value::Raw() is a
// value's slice of it: numbers keep their spelling (`1E2`, `-0.0`, 40 digits), strings keep their
// escapes as sent (`"\u00e9"` stays six characters). Value::GetString() is the decoded string.
//
// Ownership and threads: a Document owns its text and nodes; Values are cheap handles valid while
// their Document lives and is not moved-from. A Document is immutable after Parse and may be read
// from any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ym::json {

enum class Type : std::uint8_t { kNull, kFalse, kTrue, kNumber, kString, kArray, kObject };

class Document;

class Value {
 public:
  Type type() const;
  bool IsNull() const { return type() == Type::kNull; }
  bool IsBool() const { return type() == Type::kTrue || type() == Type::kFalse; }
  bool GetBool() const { return type() == Type::kTrue; }
  bool IsNumber() const { return type() == Type::kNumber; }
  bool IsString() const { return type() == Type::kString; }
  bool IsArray() const { return type() == Type::kArray; }
  bool IsObject() const { return type() == Type::kObject; }

  // The value's JSON text without insignificant whitespace.
  std::string_view Raw() const;
  // Strings: the decoded text (valid UTF-8; may contain NUL from "\u0000"). Empty otherwise.
  std::string_view GetString() const;
  // Numbers: the value when it is an integer written without fraction or exponent that fits.
  std::optional<std::int64_t> AsInt64() const;
  std::optional<std::uint64_t> AsUint64() const;
  // Numbers: the nearest double when finite (1e400 has none).
  std::optional<double> AsDouble() const;

  // Arrays: elements; objects: members. 0 for scalars.
  std::size_t Size() const;
  bool Empty() const { return Size() == 0; }

  struct Member;
  // Iterates the elements of an array or the members of an object (empty for scalars).
  class Iterator;
  Iterator begin() const;
  Iterator end() const;

 private:
  friend class Document;
  friend class Iterator;
  Value(const Document* doc, std::uint32_t node) : doc_(doc), node_(node) {}
  const Document* doc_;
  std::uint32_t node_;
};

struct Value::Member {
  Value name;  // a string
  Value value;
};

class Value::Iterator {
 public:
  // For arrays `name` is the element itself as well as `value`; use `value`.
  Member operator*() const;
  Iterator& operator++();
  bool operator==(const Iterator& o) const { return node_ == o.node_; }
  bool operator!=(const Iterator& o) const { return node_ != o.node_; }

 private:
  friend class Value;
  Iterator(const Document* doc, std::uint32_t node, bool object)
      : doc_(doc), node_(node), object_(object) {}
  const Document* doc_;
  std::uint32_t node_;
  bool object_;
};

struct ParseOptions {
  int max_depth = 128;
};

class Document {
 public:
  // kInvalidJson for text that is not one well-formed JSON value, kValidation past max_depth.
  static Result<Document> Parse(std::string_view text, const ParseOptions& options = {});

  Value root() const { return Value(this, 0); }
  // The whole document without insignificant whitespace.
  std::string_view text() const { return text_; }

 private:
  friend class Value;
  friend class Parser;
  struct Node {
    Type type = Type::kNull;
    bool escaped = false;     // strings: the decoded text is in `decoded_`
    std::uint32_t begin = 0;  // [begin, end) in text_; strings include their quotes
    std::uint32_t end = 0;
    std::uint32_t next = 0;       // the node after this one's subtree
    std::uint32_t count = 0;      // containers: elements or members
    std::uint32_t str_begin = 0;  // escaped strings: [str_begin, str_end) in decoded_
    std::uint32_t str_end = 0;
  };
  std::string text_;
  std::string decoded_;
  std::vector<Node> nodes_;
};

// True when `text` is valid UTF-8 (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view text);

}  // namespace ym::json
