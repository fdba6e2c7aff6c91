#include "common/json.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <string>

namespace ym::json {
namespace {

// Length of the UTF-8 sequence that starts at text[i], or 0 when it is not valid (RFC 3629
// table 3-7: the second byte's range depends on the first byte, which rules out overlong forms,
// UTF-16 surrogates and code points above U+10FFFF).
std::size_t Utf8SequenceLength(std::string_view text, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const std::size_t left = text.size() - i;
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  auto cont = [&](std::size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return k < left && b(k) >= lo && b(k) <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

void AppendUtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

// Recursive descent over the input, writing the minified text and the node tape as it goes.
// Nodes are in document order; a container's children follow it and its `next` skips them.
class Parser {
 public:
  Parser(std::string_view in, int max_depth, Document& doc)
      : in_(in), max_depth_(max_depth), doc_(doc) {}

  Status Run() {
    if (in_.size() >= std::numeric_limits<std::uint32_t>::max()) {
      return Validation("JSON text over 4 GiB");
    }
    doc_.text_.reserve(in_.size());
    // RFC 8259 §8.1: a parser may ignore a byte-order mark.
    if (in_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
    SkipWs();
    if (pos_ >= in_.size()) return Fail("expected a JSON value");
    if (!ParseValue(0)) return status_;
    SkipWs();
    if (pos_ != in_.size()) return Fail("unexpected bytes after the JSON value");
    return Status::Ok();
  }

 private:
  Status Fail(std::string_view what) {
    status_ =
        InvalidJson("malformed JSON at offset " + std::to_string(pos_) + ": " + std::string(what));
    return status_;
  }
  bool FailB(std::string_view what) {
    (void)Fail(what);
    return false;
  }

  void SkipWs() {
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  std::uint32_t OutPos() const { return static_cast<std::uint32_t>(doc_.text_.size()); }

  std::uint32_t NewNode(Type t) {
    Document::Node n;
    n.type = t;
    n.begin = OutPos();
    doc_.nodes_.push_back(n);
    return static_cast<std::uint32_t>(doc_.nodes_.size() - 1);
  }

  void Close(std::uint32_t node) {
    auto& n = doc_.nodes_[node];
    n.end = OutPos();
    n.next = static_cast<std::uint32_t>(doc_.nodes_.size());
  }

  bool ParseValue(int depth) {
    if (pos_ >= in_.size()) return FailB("unexpected end of input, expected a value");
    switch (in_[pos_]) {
      case '{':
        return ParseContainer(depth, /*object=*/true);
      case '[':
        return ParseContainer(depth, /*object=*/false);
      case '"':
        return ParseString();
      case 't':
        return ParseLiteral("true", Type::kTrue);
      case 'f':
        return ParseLiteral("false", Type::kFalse);
      case 'n':
        return ParseLiteral("null", Type::kNull);
      default:
        if (in_[pos_] == '-' || IsDigit(in_[pos_])) return ParseNumber();
        return FailB("expected a value");
    }
  }

  bool ParseLiteral(std::string_view word, Type t) {
    if (in_.substr(pos_, word.size()) != word) return FailB("invalid literal");
    std::uint32_t node = NewNode(t);
    doc_.text_.append(word);
    pos_ += word.size();
    Close(node);
    return true;
  }

  bool ParseNumber() {
    const std::size_t start = pos_;
    if (in_[pos_] == '-') ++pos_;
    if (pos_ >= in_.size() || !IsDigit(in_[pos_])) return FailB("a number needs digits");
    if (in_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
    }
    if (pos_ < in_.size() && in_[pos_] == '.') {
      ++pos_;
      if (pos_ >= in_.size() || !IsDigit(in_[pos_])) return FailB("a fraction needs digits");
      while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
    }
    if (pos_ < in_.size() && (in_[pos_] == 'e' || in_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < in_.size() && (in_[pos_] == '+' || in_[pos_] == '-')) ++pos_;
      if (pos_ >= in_.size() || !IsDigit(in_[pos_])) return FailB("an exponent needs digits");
      while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
    }
    std::uint32_t node = NewNode(Type::kNumber);
    doc_.text_.append(in_.substr(start, pos_ - start));
    Close(node);
    return true;
  }

  // Four hex digits at pos_ (after "\u"), or -1.
  int ReadHex4() {
    if (in_.size() - pos_ < 4) return -1;
    int v = 0;
    for (int k = 0; k < 4; ++k) {
      int h = Hex(in_[pos_ + k]);
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    pos_ += 4;
    return v;
  }

  bool ParseString() {
    std::uint32_t node = NewNode(Type::kString);
    const std::size_t start = pos_;
    ++pos_;  // opening quote
    bool escaped = false;
    std::string& dec = doc_.decoded_;
    const std::size_t dec_start = dec.size();
    // Copies the unescaped run [run, pos_) into the decoded text once an escape was seen.
    std::size_t run = pos_;
    auto flush = [&] {
      if (escaped) dec.append(in_.substr(run, pos_ - run));
    };
    for (;;) {
      if (pos_ >= in_.size()) return FailB("unterminated string");
      const unsigned char c = static_cast<unsigned char>(in_[pos_]);
      if (c == '"') break;
      if (c < 0x20) return FailB("control character in a string (escape it)");
      if (c >= 0x80) {
        std::size_t len = Utf8SequenceLength(in_, pos_);
        if (len == 0) return FailB("invalid UTF-8 in a string");
        pos_ += len;
        continue;
      }
      if (c != '\\') {
        ++pos_;
        continue;
      }
      // An escape: from here on the decoded text differs from the raw text.
      if (!escaped) {
        dec.append(in_.substr(start + 1, pos_ - start - 1));
        escaped = true;
      } else {
        flush();
      }
      const std::size_t esc_at = pos_;
      ++pos_;
      if (pos_ >= in_.size()) return FailB("unterminated escape");
      const char e = in_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          dec.push_back(e);
          break;
        case 'b':
          dec.push_back('\b');
          break;
        case 'f':
          dec.push_back('\f');
          break;
        case 'n':
          dec.push_back('\n');
          break;
        case 'r':
          dec.push_back('\r');
          break;
        case 't':
          dec.push_back('\t');
          break;
        case 'u': {
          int u = ReadHex4();
          if (u < 0) return FailB("\\u needs four hex digits");
          std::uint32_t cp = static_cast<std::uint32_t>(u);
          if (cp >= 0xDC00 && cp <= 0xDFFF) {
            pos_ = esc_at;
            return FailB("lone low surrogate in a \\u escape (not a Unicode character)");
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            int lo = -1;
            if (in_.size() - pos_ >= 2 && in_[pos_] == '\\' && in_[pos_ + 1] == 'u') {
              pos_ += 2;
              lo = ReadHex4();
            }
            if (lo < 0xDC00 || lo > 0xDFFF) {
              pos_ = esc_at;
              return FailB("lone high surrogate in a \\u escape (not a Unicode character)");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (static_cast<std::uint32_t>(lo) - 0xDC00);
          }
          AppendUtf8(dec, cp);
          break;
        }
        default:
          pos_ = esc_at;
          return FailB("invalid escape in a string");
      }
      run = pos_;
    }
    flush();
    ++pos_;  // closing quote
    doc_.text_.append(in_.substr(start, pos_ - start));
    auto& n = doc_.nodes_[node];
    if (escaped) {
      n.escaped = true;
      n.str_begin = static_cast<std::uint32_t>(dec_start);
      n.str_end = static_cast<std::uint32_t>(dec.size());
    }
    Close(node);
    return true;
  }

  bool ParseContainer(int depth, bool object) {
    if (depth + 1 > max_depth_) {
      status_ = Validation("JSON nested deeper than " + std::to_string(max_depth_) + " levels");
      return false;
    }
    std::uint32_t node = NewNode(object ? Type::kObject : Type::kArray);
    doc_.text_.push_back(in_[pos_++]);
    const char close = object ? '}' : ']';
    std::uint32_t count = 0;
    SkipWs();
    if (pos_ < in_.size() && in_[pos_] == close) {
      ++pos_;
    } else {
      for (;;) {
        SkipWs();
        if (object) {
          if (pos_ >= in_.size() || in_[pos_] != '"') return FailB("expected a member name");
          if (!ParseString()) return false;
          SkipWs();
          if (pos_ >= in_.size() || in_[pos_] != ':') return FailB("expected ':'");
          doc_.text_.push_back(':');
          ++pos_;
          SkipWs();
        }
        if (!ParseValue(depth + 1)) return false;
        ++count;
        SkipWs();
        if (pos_ >= in_.size()) return FailB("unexpected end of input in a container");
        if (in_[pos_] == ',') {
          doc_.text_.push_back(',');
          ++pos_;
          continue;
        }
        if (in_[pos_] == close) {
          ++pos_;
          break;
        }
        return FailB(object ? "expected ',' or '}'" : "expected ',' or ']'");
      }
    }
    doc_.text_.push_back(close);
    doc_.nodes_[node].count = count;
    Close(node);
    return true;
  }

  std::string_view in_;
  std::size_t pos_ = 0;
  const int max_depth_;
  Document& doc_;
  Status status_;
};

Result<Document> Document::Parse(std::string_view text, const ParseOptions& options) {
  Document doc;
  Parser parser(text, options.max_depth, doc);
  Status s = parser.Run();
  if (!s.ok()) return s;
  return doc;
}

Type Value::type() const { return doc_->nodes_[node_].type; }

std::string_view Value::Raw() const {
  const auto& n = doc_->nodes_[node_];
  return std::string_view(doc_->text_).substr(n.begin, n.end - n.begin);
}

std::string_view Value::GetString() const {
  const auto& n = doc_->nodes_[node_];
  if (n.type != Type::kString) return {};
  if (n.escaped) {
    return std::string_view(doc_->decoded_).substr(n.str_begin, n.str_end - n.str_begin);
  }
  return std::string_view(doc_->text_).substr(n.begin + 1, n.end - n.begin - 2);
}

std::optional<std::int64_t> Value::AsInt64() const {
  if (!IsNumber()) return std::nullopt;
  std::string_view raw = Raw();
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
  if (ec != std::errc() || p != raw.data() + raw.size()) return std::nullopt;
  return v;
}

std::optional<std::uint64_t> Value::AsUint64() const {
  if (!IsNumber()) return std::nullopt;
  std::string_view raw = Raw();
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
  if (ec != std::errc() || p != raw.data() + raw.size()) return std::nullopt;
  return v;
}

std::optional<double> Value::AsDouble() const {
  if (!IsNumber()) return std::nullopt;
  std::string_view raw = Raw();
  double v = 0;
  auto [p, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
  if (ec != std::errc() || p != raw.data() + raw.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::size_t Value::Size() const {
  const auto& n = doc_->nodes_[node_];
  return n.type == Type::kArray || n.type == Type::kObject ? n.count : 0;
}

Value::Iterator Value::begin() const {
  const auto& n = doc_->nodes_[node_];
  if (n.type != Type::kArray && n.type != Type::kObject) return end();
  return Iterator(doc_, node_ + 1, n.type == Type::kObject);
}

Value::Iterator Value::end() const { return Iterator(doc_, doc_->nodes_[node_].next, IsObject()); }

Value::Member Value::Iterator::operator*() const {
  if (object_) return Member{Value(doc_, node_), Value(doc_, node_ + 1)};
  return Member{Value(doc_, node_), Value(doc_, node_)};
}

Value::Iterator& Value::Iterator::operator++() {
  // An object member is a name node followed by the value's subtree.
  std::uint32_t value = object_ ? node_ + 1 : node_;
  node_ = doc_->nodes_[value].next;
  return *this;
}

bool IsValidUtf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    std::size_t len = Utf8SequenceLength(text, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

}  // namespace ym::json
