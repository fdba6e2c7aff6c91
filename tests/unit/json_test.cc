// Unit tests of common/json.h: the strict reader that keeps every value's exact text.
#include "common/json.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ym::json {
namespace {

Document MustParse(std::string_view text) {
  auto doc = Document::Parse(text);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString() << " for " << text;
  return doc.ok() ? std::move(doc).value() : Document();
}

TEST(Json, KeepsTheTextMinusWhitespace) {
  auto doc =
      Document::Parse(" {\"a\" : [1, -2.50e+3 ,\"x y\\n\"], \"b\":{}, \"c\":[] , \"d\":null}\n");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->text(), R"({"a":[1,-2.50e+3,"x y\n"],"b":{},"c":[],"d":null})");
  Value root = doc->root();
  ASSERT_TRUE(root.IsObject());
  EXPECT_EQ(root.Size(), 4u);
  std::vector<std::string> names, raws;
  for (const auto& m : root) {
    names.emplace_back(m.name.GetString());
    raws.emplace_back(m.value.Raw());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(raws, (std::vector<std::string>{R"([1,-2.50e+3,"x y\n"])", "{}", "[]", "null"}));
  Value a = (*root.begin()).value;
  std::vector<std::string> items;
  for (const auto& e : a) items.emplace_back(e.value.Raw());
  EXPECT_EQ(items, (std::vector<std::string>{"1", "-2.50e+3", R"("x y\n")"}));
}

TEST(Json, NumbersKeepTheirSpelling) {
  for (std::string n : {"0", "-0", "1E2", "1e-2", "12345678901234567890123",
                        "799999999999999999999999999999999999999990", "1e400", "-1e-400", "0.10"}) {
    Document d = MustParse("[" + n + "]");
    EXPECT_EQ((*d.root().begin()).value.Raw(), n);
  }
  Document d = MustParse(R"([9223372036854775807, 9223372036854775808, 1.0, 1e3, 1e400, 1.5])");
  std::vector<Value> v;
  for (const auto& e : d.root()) v.push_back(e.value);
  EXPECT_EQ(v[0].AsInt64(), 9223372036854775807LL);
  EXPECT_FALSE(v[1].AsInt64());
  EXPECT_EQ(v[1].AsUint64(), 9223372036854775808ULL);
  EXPECT_FALSE(v[2].AsInt64());  // integer fields take no fraction or exponent
  EXPECT_FALSE(v[3].AsInt64());
  EXPECT_FALSE(v[4].AsDouble());  // beyond the double range
  EXPECT_EQ(v[5].AsDouble(), 1.5);
}

TEST(Json, StringsDecodeAndValidate) {
  Document d = MustParse(R"(["plain", "a\u00e9\ud83d\ude00\/\"\\\b\f\n\r\t", "\u0000"])");
  std::vector<Value> v;
  for (const auto& e : d.root()) v.push_back(e.value);
  EXPECT_EQ(v[0].GetString(), "plain");
  EXPECT_EQ(v[1].GetString(), "a\xc3\xa9\xf0\x9f\x98\x80/\"\\\b\f\n\r\t");
  EXPECT_EQ(v[1].Raw(), R"("a\u00e9\ud83d\ude00\/\"\\\b\f\n\r\t")");
  EXPECT_EQ(v[2].GetString(), std::string("\0", 1));
  EXPECT_TRUE(IsValidUtf8(v[1].GetString()));
}

TEST(Json, RefusesWhatIsNotOneWellFormedValue) {
  const std::vector<std::string> bad = {
      "",
      " ",
      "{",
      "}",
      "[1,]",
      "{\"a\":1,}",
      "{\"a\" 1}",
      "{1:2}",
      "[01]",
      "[1.]",
      "[.5]",
      "[1e]",
      "[+1]",
      "[-]",
      "[NaN]",
      "[Infinity]",
      "[tru]",
      "[nul]",
      "\"abc",
      "\"\\x\"",
      "\"\\u12\"",
      "\"a\tb\"",
      "\"\\udc00\"",
      "\"\\ud800\"",
      "\"\\ud800\\ud800\"",
      "\"\xff\"",
      "\"\xc0\x80\"",
      "\"\xed\xa0\x80\"",
      "\"\xf4\x90\x80\x80\"",
      "\"\xe2\x82\"",
      std::string("{}\0", 3),
      std::string("{}\0{}", 5),
      "{} {}",
      "[1] x",
      "'a'",
      "[1 2]",
  };
  for (const auto& text : bad) {
    auto doc = Document::Parse(text);
    EXPECT_FALSE(doc.ok()) << "accepted: " << text;
    if (!doc.ok()) {
      EXPECT_EQ(doc.status().code(), Code::kInvalidJson) << text;
    }
  }
}

TEST(Json, DepthIsBounded) {
  ParseOptions o;
  o.max_depth = 3;
  EXPECT_TRUE(Document::Parse("[[[1]]]", o).ok());
  auto deep = Document::Parse("[[[[1]]]]", o);
  EXPECT_EQ(deep.status().code(), Code::kValidation);
  // The default bound protects the stack whatever the input.
  std::string very_deep(100000, '[');
  EXPECT_EQ(Document::Parse(very_deep).status().code(), Code::kValidation);
}

TEST(Json, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));
  EXPECT_FALSE(IsValidUtf8("\xed\xb0\x80"));  // an encoded low surrogate
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));  // overlong
}

}  // namespace
}  // namespace ym::json
