#include "kit/rate_limit.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace billing {
namespace {

constexpr Micros kMinute = 60'000'000;
constexpr Micros kStart = 1'000'000'000;

TEST(RateLimit, AFullBucketTakesTheLimitAtOnceThenOnePerInterval) {
  Micros full_at = 0;
  for (int i = 0; i < 60; ++i) {
    const auto d = take_token(full_at, kStart, 60, kMinute);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.limit, 60);
    EXPECT_EQ(d.remaining, 59 - i);
    EXPECT_EQ(d.full_after, (i + 1) * 1'000'000);
  }
  auto refused = take_token(full_at, kStart, 60, kMinute);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.retry_after, 1'000'000);  // one token back a second later
  EXPECT_EQ(refused.full_after, kMinute);
  EXPECT_FALSE(take_token(full_at, kStart + 999'999, 60, kMinute).allowed);

  const auto next = take_token(full_at, kStart + 1'000'000, 60, kMinute);
  EXPECT_TRUE(next.allowed);
  EXPECT_EQ(next.remaining, 0);
  EXPECT_FALSE(take_token(full_at, kStart + 1'000'000, 60, kMinute).allowed);
}

TEST(RateLimit, NoMinuteBoundaryLetsTwiceTheLimitThrough) {
  // A fixed window would take 60 at 0:59.9 and 60 more at 1:00.0; the bucket takes 60 then
  // one a second.
  Micros full_at = 0;
  int allowed = 0;
  for (Micros t = kStart; t < kStart + 2'000'000; t += 10'000)
    allowed += take_token(full_at, t, 60, kMinute).allowed;
  EXPECT_EQ(allowed, 61);  // the burst, then one at +1 s (the next would be at +2 s)
}

TEST(RateLimit, AnIdleBucketRefillsToTheLimitAndNoFurther) {
  Micros full_at = 0;
  for (int i = 0; i < 30; ++i) take_token(full_at, kStart, 30, kMinute);
  EXPECT_FALSE(take_token(full_at, kStart, 30, kMinute).allowed);
  const auto later = take_token(full_at, kStart + 10 * kMinute, 30, kMinute);
  EXPECT_TRUE(later.allowed);
  EXPECT_EQ(later.remaining, 29);
}

TEST(RateLimit, LocalCountersKeepOneBucketPerKey) {
  LocalRateCounters counters;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(counters.take("a", 3, kMinute, kStart).allowed);
  EXPECT_FALSE(counters.take("a", 3, kMinute, kStart).allowed);
  EXPECT_TRUE(counters.take("b", 3, kMinute, kStart).allowed);
  EXPECT_EQ(counters.take("b", 3, kMinute, kStart).remaining, 1);
}

TEST(RateLimit, ABucketAskedWithAnotherLimitStartsFull) {
  LocalRateCounters counters;
  for (int i = 0; i < 3; ++i) counters.take("a", 3, kMinute, kStart);
  EXPECT_FALSE(counters.take("a", 3, kMinute, kStart).allowed);
  EXPECT_EQ(counters.take("a", 5, kMinute, kStart).remaining, 4);
}

TEST(RateLimit, LocalCountersForgetFullBucketsOnlyWhenTheyAreFull) {
  LocalRateCounters counters;
  const Micros later = kStart + kMinute;
  for (int i = 0; i < 3; ++i) counters.take("busy", 3, kMinute, later);
  // Many other keys came and went earlier, and more come now: the sweeps drop the full ones,
  // never a bucket in use.
  for (int i = 0; i < 20'000; ++i) counters.take(fmt::format("k{}", i), 3, kMinute, kStart + i);
  for (int i = 0; i < 20'000; ++i) counters.take(fmt::format("n{}", i), 3, kMinute, later);
  EXPECT_FALSE(counters.take("busy", 3, kMinute, later).allowed);
}

}  // namespace
}  // namespace billing
