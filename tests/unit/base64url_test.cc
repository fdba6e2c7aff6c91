// Base64url without padding (common/base64url.h): the RFC 4648 test vectors, the one-spelling
// rule of the decoder, and a round trip of every byte value.
#include "common/base64url.h"

#include <gtest/gtest.h>

#include <string>

namespace ym {
namespace {

TEST(Base64Url, EncodesTheRfc4648VectorsWithoutPadding) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  // The url-safe alphabet: 62 and 63 are '-' and '_', not '+' and '/'.
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
}

TEST(Base64Url, DecodesOnlyTheOneSpellingOfEachByteString) {
  std::string out;
  ASSERT_TRUE(Base64UrlDecode("Zm9vYmE", &out));
  EXPECT_EQ(out, "fooba");
  ASSERT_TRUE(Base64UrlDecode("", &out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(Base64UrlDecode("Zh", &out)) << "unused low bits set: another spelling of \"f\"";
  EXPECT_FALSE(Base64UrlDecode("Z", &out)) << "one character carries no whole byte";
  EXPECT_FALSE(Base64UrlDecode("Zg==", &out)) << "padding";
  EXPECT_FALSE(Base64UrlDecode("Zm+v", &out)) << "the standard alphabet's '+'";
  EXPECT_FALSE(Base64UrlDecode("Zm9v\n", &out));
  EXPECT_EQ(Base64UrlValue('A'), 0);
  EXPECT_EQ(Base64UrlValue('_'), 63);
  EXPECT_EQ(Base64UrlValue('='), -1);
}

TEST(Base64Url, EveryByteValueRoundTripsAtEveryLength) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  for (std::size_t n = 0; n <= all.size(); n += 1) {
    const std::string in = all.substr(all.size() - n);
    std::string out;
    ASSERT_TRUE(Base64UrlDecode(Base64UrlEncode(in), &out)) << n;
    ASSERT_EQ(out, in) << n;
  }
}

}  // namespace
}  // namespace ym
