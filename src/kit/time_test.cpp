#include "kit/time.hpp"

#include <gtest/gtest.h>

namespace billing {
namespace {

TEST(Time, WritesAndReadsIso8601Utc) {
  const auto t = from_unix_micros(1'764'064'800'123'456);  // 2025-11-25T10:00:00.123456Z
  EXPECT_EQ(iso8601(t), "2025-11-25T10:00:00Z");
  EXPECT_EQ(iso8601_micros(t), "2025-11-25T10:00:00.123456Z");
  EXPECT_EQ(parse_iso8601("2025-11-25T10:00:00.123456Z"), t);
  EXPECT_EQ(parse_iso8601("2025-11-25T10:00:00Z"), from_unix_micros(1'764'064'800'000'000));
  EXPECT_EQ(to_unix_micros(t), 1'764'064'800'123'456);
}

TEST(Time, RejectsOtherText) {
  for (const char* text : {"", "2025-11-25", "2025-11-25 10:00:00Z", "2025-11-25T10:00:00",
                           "2025-11-25T10:00:00.12Z", "20x5-11-25T10:00:00Z"})
    EXPECT_FALSE(parse_iso8601(text)) << text;
}

}  // namespace
}  // namespace billing
