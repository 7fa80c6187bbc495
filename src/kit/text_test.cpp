#include "kit/text.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

namespace billing {
namespace {

TEST(ValidUtf8, TakesWellFormedText) {
  for (const std::string& text : std::initializer_list<std::string>{
           "", "sub_1N3x", "caf\xc3\xa9", "\xe2\x82\xac", "\xef\xbf\xbf", "\xf0\x9f\x98\x80",
           "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", std::string("a\0b", 3)})
    EXPECT_TRUE(valid_utf8(text)) << text;
}

TEST(ValidUtf8, RefusesWhatRfc3629Forbids) {
  for (const std::string& text : std::initializer_list<std::string>{
           "\xff",              // never a byte of UTF-8
           "\x80",              // a continuation byte alone
           "\xc3",              // cut short
           "\xe2\x82",          // cut short
           "\xc0\xaf",          // overlong '/'
           "\xc1\xbf",          // overlong
           "\xe0\x9f\xbf",      // overlong
           "\xf0\x8f\xbf\xbf",  // overlong
           "\xed\xa0\x80",      // a surrogate (U+D800)
           "\xf4\x90\x80\x80",  // above U+10FFFF
           "\xf5\x80\x80\x80",  // above U+10FFFF
           "a\xc3(b",           // a bad continuation
       })
    EXPECT_FALSE(valid_utf8(text)) << text;
}

TEST(PlausibleId, IsOneTo128BytesOfUtf8WithoutControlCharacters) {
  EXPECT_TRUE(plausible_id("sub_1"));
  EXPECT_TRUE(plausible_id(std::string(128, 'a')));
  EXPECT_TRUE(plausible_id("h\xc3\xb4pital"));
  EXPECT_FALSE(plausible_id(""));
  EXPECT_FALSE(plausible_id(std::string(129, 'a')));
  EXPECT_FALSE(plausible_id("a\nb"));
  EXPECT_FALSE(plausible_id("\xff"));
}

TEST(HttpUrl, PutsAnIpv6AddressInBrackets) {
  EXPECT_EQ(http_url("127.0.0.1", 8000), "http://127.0.0.1:8000");
  EXPECT_EQ(http_url("localhost", 80), "http://localhost:80");
  EXPECT_EQ(http_url("::1", 34989), "http://[::1]:34989");
  EXPECT_EQ(http_url("fe80::1", 8000), "http://[fe80::1]:8000");
}

}  // namespace
}  // namespace billing
