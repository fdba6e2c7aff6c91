// obs/logging.h: the JSON-lines log format's escaping, and the setup's refusal of bad values.
// (The server's JSON log output as a whole is checked against the real binary in
// tests/integration/test_server_process.py.)
#include "obs/logging.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <random>
#include <string>

namespace ym::obs {
namespace {

TEST(JsonEscapeTest, EscapesQuotesBackslashesAndEveryControlCharacter) {
  EXPECT_EQ(JsonEscape("plain text"), "plain text");
  EXPECT_EQ(JsonEscape("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(JsonEscape("C:\\dir"), "C:\\\\dir");
  EXPECT_EQ(JsonEscape("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(JsonEscape(std::string("\x01\x1f\x00", 3)), "\\u0001\\u001f\\u0000");
  // Bytes from 0x20 up, UTF-8 included, pass unchanged.
  EXPECT_EQ(JsonEscape("caf\xc3\xa9 ~\x7f"), "caf\xc3\xa9 ~\x7f");
}

// Whatever a log message holds (a path, a client's value), the escaped text inside quotes is
// one valid JSON string that reads back as the message.
TEST(JsonEscapeTest, AnyAsciiMessageReadsBackExactly) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> byte(0, 0x7f);
  std::uniform_int_distribution<int> len(0, 40);
  for (int i = 0; i < 2000; ++i) {
    std::string msg;
    for (int n = len(rng); n > 0; --n) msg += static_cast<char>(byte(rng));
    const std::string literal = "\"" + JsonEscape(msg) + "\"";
    rapidjson::Document d;
    d.Parse(literal.data(), literal.size());
    ASSERT_FALSE(d.HasParseError()) << literal;
    ASSERT_TRUE(d.IsString());
    EXPECT_EQ(std::string(d.GetString(), d.GetStringLength()), msg);
  }
}

TEST(SetupLoggingTest, RefusesUnknownLevelsAndFormats) {
  Status s = SetupLogging("loud", "text");
  EXPECT_EQ(s.code(), Code::kInvalidRequest);
  EXPECT_NE(s.message().find("log level"), std::string::npos) << s.message();
  s = SetupLogging("info", "xml");
  EXPECT_EQ(s.code(), Code::kInvalidRequest);
  EXPECT_NE(s.message().find("log format"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ym::obs
