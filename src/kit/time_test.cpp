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

TEST(Time, AddsCalendarMonthsKeepingTheDayOrTheMonthsLast) {
  const auto after = [](std::string_view from, int months) {
    return iso8601(add_months(*parse_iso8601(from), months));
  };
  EXPECT_EQ(after("2023-11-14T22:13:20Z", 1), "2023-12-14T22:13:20Z");  // 30 days
  EXPECT_EQ(after("2023-11-14T22:13:20Z", 2), "2024-01-14T22:13:20Z");  // 61
  EXPECT_EQ(after("2024-01-31T09:00:00Z", 1), "2024-02-29T09:00:00Z");  // a leap year's last
  EXPECT_EQ(after("2023-01-31T09:00:00Z", 1), "2023-02-28T09:00:00Z");
  EXPECT_EQ(after("2024-01-31T09:00:00Z", 2), "2024-03-31T09:00:00Z");  // from the first day kept
  EXPECT_EQ(after("2024-03-31T09:00:00Z", 1), "2024-04-30T09:00:00Z");
  EXPECT_EQ(after("2024-12-15T00:00:00Z", 1), "2025-01-15T00:00:00Z");  // across the year
  EXPECT_EQ(after("2024-02-29T12:00:00Z", 12), "2025-02-28T12:00:00Z");
  EXPECT_EQ(after("2024-02-29T12:00:00Z", 48), "2028-02-29T12:00:00Z");
  EXPECT_EQ(after("2024-05-31T23:59:59Z", 0), "2024-05-31T23:59:59Z");
  EXPECT_EQ(after("2024-03-31T09:00:00Z", -1), "2024-02-29T09:00:00Z");  // back, clamped too
  EXPECT_EQ(after("1969-12-31T23:59:59Z", 2), "1970-02-28T23:59:59Z");   // before the epoch
  // Fractions of a second stay.
  const auto t = from_unix_micros(1'700'000'000'123'456);
  EXPECT_EQ(to_unix_micros(add_months(t, 1)) - to_unix_micros(t), 30LL * 86'400'000'000 + 0);
}

}  // namespace
}  // namespace billing
