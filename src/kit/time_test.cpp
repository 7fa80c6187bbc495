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

TEST(Time, AppendsMicrosAcrossSecondsAndBeforeTheEpoch) {
  const auto at = [](std::int64_t micros) {
    std::string out = "x";
    append_iso8601_micros(out, from_unix_micros(micros));
    return out;
  };
  // The text of a second is cached per thread: each call must still get its own second.
  EXPECT_EQ(at(1'800'000'000'000'001), "x2027-01-15T08:00:00.000001Z");
  EXPECT_EQ(at(1'800'000'000'999'999), "x2027-01-15T08:00:00.999999Z");
  EXPECT_EQ(at(1'800'000'001'000'000), "x2027-01-15T08:00:01.000000Z");
  EXPECT_EQ(at(1'800'000'000'500'000), "x2027-01-15T08:00:00.500000Z");
  EXPECT_EQ(at(-1), "x1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(iso8601_micros(from_unix_micros(0)), "1970-01-01T00:00:00.000000Z");
}

}  // namespace
}  // namespace billing
