// The Redis buckets against a real redis-server: the Lua script answers as kit/rate_limit.hpp's
// take_token does, announcements reach the other replicas, and Redis going away is reported.
#include "storage/redis/rate_counters.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "kit/run_blocking.hpp"
#include "tests/e2e/private_redis.hpp"

namespace billing {
namespace {

using e2e::PrivateRedis;
using namespace std::chrono_literals;

constexpr Micros kMinute = 60'000'000;

struct Recorder : SharedRateNews {
  std::mutex mutex;
  std::vector<EntityRef> changed;
  std::vector<bool> reachable;
  int all_changed = 0;
  void plan_changed_elsewhere(const EntityRef& owner) override {
    std::lock_guard lock(mutex);
    changed.push_back(owner);
  }
  void plans_may_have_changed_elsewhere() override {
    std::lock_guard lock(mutex);
    ++all_changed;
  }
  void shared_counters_reachable(bool up) override {
    std::lock_guard lock(mutex);
    reachable.push_back(up);
  }
  std::size_t changes() {
    std::lock_guard lock(mutex);
    return changed.size();
  }
};

std::optional<RateDecision> take(RedisRateCounters& counters, const std::string& owner, int limit) {
  return run_blocking(counters.take(EntityKind::hospital, owner, limit, kMinute));
}

TEST(RedisAddress, ReadsRedisAndUnixUrls) {
  const auto tcp = parse_redis_url("redis://:s3cret@cache.internal:6380/2");
  EXPECT_EQ(tcp.host, "cache.internal");
  EXPECT_EQ(tcp.port, 6380);
  EXPECT_EQ(tcp.password, "s3cret");
  EXPECT_EQ(tcp.db, 2);
  EXPECT_EQ(parse_redis_url("redis://localhost").port, 6379);
  EXPECT_EQ(parse_redis_url("unix:///run/redis/redis.sock").socket_path, "/run/redis/redis.sock");
  for (const char* bad : {"http://x", "redis://", "redis://h:0", "redis://h:70000", "redis://h/x",
                          "unix://", "not a url"})
    EXPECT_THROW(parse_redis_url(bad), std::invalid_argument) << bad;
}

TEST(RedisRateCounters, AnswersAsTheLocalBucketsDo) {
  PrivateRedis redis;
  Recorder news;
  RedisRateCounters counters(parse_redis_url(redis.url()));
  counters.start(news);
  ASSERT_TRUE(counters.reachable());
  for (int i = 0; i < 5; ++i) {
    const auto d = take(counters, "h1", 5);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->allowed);
    EXPECT_EQ(d->limit, 5);
    EXPECT_EQ(d->remaining, 4 - i);
    // Redis' clock moves between calls: within a second of (i + 1) intervals of 12 s.
    EXPECT_LE(d->full_after, (i + 1) * 12'000'000);
    EXPECT_GT(d->full_after, (i + 1) * 12'000'000 - 1'000'000);
  }
  const auto refused = take(counters, "h1", 5);
  ASSERT_TRUE(refused);
  EXPECT_FALSE(refused->allowed);
  EXPECT_EQ(refused->remaining, 0);
  EXPECT_GT(refused->retry_after, 11'000'000);
  EXPECT_LE(refused->retry_after, 12'000'000);
  EXPECT_TRUE(take(counters, "h2", 5)->allowed);     // another owner, another bucket
  EXPECT_EQ(take(counters, "h1", 6)->remaining, 5);  // another limit starts full
}

TEST(RedisRateCounters, AnnouncesPlanChangesToEveryReplica) {
  PrivateRedis redis;
  Recorder first_news, second_news;
  RedisRateCounters first(parse_redis_url(redis.url())), second(parse_redis_url(redis.url()));
  first.start(first_news);
  second.start(second_news);
  first.announce_plan_change({EntityKind::individual, "ind:with:colons"});
  ASSERT_TRUE(e2e::eventually([&] { return second_news.changes() == 1; }, 5s));
  std::lock_guard lock(second_news.mutex);
  EXPECT_EQ(second_news.changed[0], (EntityRef{EntityKind::individual, "ind:with:colons"}));
}

TEST(RedisRateCounters, SaysWhenRedisGoesAwayAndComesBack) {
  PrivateRedis redis;
  Recorder news;
  RedisRateCounters counters(parse_redis_url(redis.url()));
  counters.start(news);
  redis.stop();
  ASSERT_TRUE(e2e::eventually([&] { return !counters.reachable(); }, 5s));
  EXPECT_EQ(take(counters, "h1", 5), std::nullopt);  // at once: the caller counts locally
  redis.start();
  ASSERT_TRUE(e2e::eventually([&] { return counters.reachable(); }, 5s));
  EXPECT_TRUE(take(counters, "h1", 5)->allowed);
  // Back, it tells every replica (itself included) to read all limits again.
  EXPECT_TRUE(e2e::eventually(
      [&] {
        std::lock_guard lock(news.mutex);
        return news.all_changed == 1;
      },
      5s));
  std::lock_guard lock(news.mutex);
  EXPECT_EQ(news.reachable, (std::vector<bool>{true, false, true}));
}

TEST(RedisRateCounters, AnErrorReplyCostsOneRequestNotTheConnection) {
  PrivateRedis redis;
  Recorder news;
  RedisRateCounters counters(parse_redis_url(redis.url()));
  counters.start(news);
  EXPECT_TRUE(take(counters, "h1", 5)->allowed);
  redis.cli({"SCRIPT", "FLUSH"});
  EXPECT_EQ(take(counters, "h1", 5), std::nullopt);  // NOSCRIPT: counted locally, script loaded
  const auto again = take(counters, "h1", 5);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->remaining, 3);
  EXPECT_TRUE(counters.reachable());
  std::lock_guard lock(news.mutex);
  EXPECT_EQ(news.reachable, (std::vector<bool>{true}));  // never reported away
}

TEST(RedisRateCounters, StartsWhileRedisIsAway) {
  e2e::TempDir dir;
  Recorder news;
  RedisRateCounters counters(parse_redis_url("unix://" + dir.path() + "/nobody.sock"));
  counters.start(news);
  EXPECT_FALSE(counters.reachable());
  EXPECT_EQ(take(counters, "h1", 5), std::nullopt);
  counters.announce_plan_change({EntityKind::hospital, "h1"});  // dropped, no error
  std::lock_guard lock(news.mutex);
  EXPECT_EQ(news.reachable, (std::vector<bool>{false}));
}

}  // namespace
}  // namespace billing
