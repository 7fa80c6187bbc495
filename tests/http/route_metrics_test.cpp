// Route metrics on their own: counts per route and status, latency buckets and sums, recorded
// from several threads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <latch>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http/route_metrics.hpp"

namespace billing::http_test {
namespace {

using namespace std::chrono_literals;
using Buckets = std::array<std::uint64_t, billing::RouteMetrics::kBuckets.size() + 1>;

Router two_routes() {
  Router router;
  const Handler none = [](const Call&) -> boost::asio::awaitable<Response> {
    co_return Response{};
  };
  router.add({Method::get, "/first", Policy::open(), none});
  router.add({Method::post, "/second/{id}", Policy::open(), none});
  return router;
}

struct CountKey {
  std::string route;
  std::string method;
  int status;
  std::uint64_t requests;
  bool operator==(const CountKey&) const = default;
};
void PrintTo(const CountKey& c, std::ostream* os) {
  *os << "{" << c.route << " " << c.method << " " << c.status << ": " << c.requests << "}";
}

std::vector<CountKey> counts(const billing::RouteMetrics::Snapshot& snapshot) {
  std::vector<CountKey> out;
  for (const auto& c : snapshot.counts)
    out.push_back({c.route, std::string(c.method), c.status, c.requests});
  return out;
}

// Runs `work` on a thread of its own. A thread remembers its shard by the address of the
// RouteMetrics it last counted for, so a test that counts on the main thread could count into
// the freed shards of an earlier test's metrics made at the same address (see the last test).
template <class F>
void on_fresh_thread(F&& work) {
  std::thread(std::forward<F>(work)).join();
}

// Named after the class it tests: billing::RouteMetrics is the metrics.
class RouteMetrics : public testing::Test {
 protected:
  const Router router_ = two_routes();
  const Route* first_ = router_.routes()[0];
  const Route* second_ = router_.routes()[1];
};

TEST_F(RouteMetrics, CountsAndBucketsFromTwoThreadsAreExact) {
  billing::RouteMetrics metrics(router_);
  std::latch start(2);
  std::thread a([&] {
    start.arrive_and_wait();
    for (int i = 0; i < 3000; ++i) metrics.record(first_, 200, 100us);
    for (int i = 0; i < 500; ++i) metrics.record(first_, 404, 2ms);
    for (int i = 0; i < 1000; ++i) metrics.record(second_, 201, 1ms);
  });
  std::thread b([&] {
    start.arrive_and_wait();
    for (int i = 0; i < 2000; ++i) metrics.record(first_, 200, 2s);
    for (int i = 0; i < 300; ++i) metrics.record(second_, 500, 30ms);
    for (int i = 0; i < 70; ++i) metrics.record(nullptr, 404, 100us);
    for (int i = 0; i < 1000; ++i) metrics.record(second_, 201, 1ms);
  });
  a.join();
  b.join();

  const auto snapshot = metrics.snapshot();
  EXPECT_THAT(counts(snapshot), testing::ElementsAre(CountKey{"/first", "GET", 200, 5000},
                                                     CountKey{"/first", "GET", 404, 500},
                                                     CountKey{"/second/{id}", "POST", 201, 2000},
                                                     CountKey{"/second/{id}", "POST", 500, 300},
                                                     CountKey{"", "OTHER", 404, 70}));
  EXPECT_NEAR(snapshot.counts[0].latency_seconds, 3000 * 0.0001 + 2000 * 2.0, 1e-9);
  EXPECT_NEAR(snapshot.counts[1].latency_seconds, 500 * 0.002, 1e-9);
  EXPECT_NEAR(snapshot.counts[2].latency_seconds, 2000 * 0.001, 1e-9);
  EXPECT_NEAR(snapshot.counts[3].latency_seconds, 300 * 0.03, 1e-9);
  EXPECT_NEAR(snapshot.counts[4].latency_seconds, 70 * 0.0001, 1e-9);

  ASSERT_EQ(snapshot.latencies.size(), 3u);
  const auto& first = snapshot.latencies[0];
  EXPECT_EQ(first.route, "/first");
  EXPECT_EQ(first.method, "GET");
  EXPECT_EQ(first.requests, 5500u);
  EXPECT_NEAR(first.sum_seconds, 3000 * 0.0001 + 2000 * 2.0 + 500 * 0.002, 1e-9);
  // Buckets (not cumulative): <=0.5 ms, <=1 ms, <=2.5 ms, ..., <=1 s, and above.
  EXPECT_EQ(first.buckets, (Buckets{3000, 0, 500, 0, 0, 0, 0, 0, 0, 0, 0, 2000}));
  const auto& second = snapshot.latencies[1];
  EXPECT_EQ(second.route, "/second/{id}");
  EXPECT_EQ(second.requests, 2300u);
  EXPECT_EQ(second.buckets, (Buckets{0, 2000, 0, 0, 0, 0, 300, 0, 0, 0, 0, 0}));
  const auto& none = snapshot.latencies[2];
  EXPECT_EQ(none.route, "");
  EXPECT_EQ(none.method, "OTHER");
  EXPECT_EQ(none.requests, 70u);
  EXPECT_EQ(none.buckets, (Buckets{70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST_F(RouteMetrics, BucketBoundsAreInclusive) {
  billing::RouteMetrics metrics(router_);
  on_fresh_thread([&] {
    metrics.record(first_, 200, 500us);  // le 0.0005
    metrics.record(first_, 200, 501us);  // le 0.001
    metrics.record(first_, 200, 1s);     // le 1
    metrics.record(first_, 200, 1s + 1ns);
    metrics.record(first_, 200, 0ns);
  });
  const auto snapshot = metrics.snapshot();
  ASSERT_EQ(snapshot.latencies.size(), 1u);
  EXPECT_EQ(snapshot.latencies[0].buckets, (Buckets{2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1}));
}

TEST_F(RouteMetrics, NothingRecordedIsAnEmptySnapshot) {
  const billing::RouteMetrics metrics(router_);
  const auto snapshot = metrics.snapshot();
  EXPECT_TRUE(snapshot.counts.empty());
  EXPECT_TRUE(snapshot.latencies.empty());
}

TEST_F(RouteMetrics, AfterRecordsTheCallsRouteAndStatus) {
  billing::RouteMetrics metrics(router_);
  Request request{.method = Method::post, .path = "/second/7"};
  Call call{request, second_};
  call.started = std::chrono::steady_clock::now() - 3ms;
  Response response{.status = 409};
  Call lost{request};
  Response not_found{.status = 404};
  on_fresh_thread([&] {
    metrics.after(call, response);
    metrics.after(lost, not_found);
  });
  const auto snapshot = metrics.snapshot();
  EXPECT_THAT(counts(snapshot), testing::ElementsAre(CountKey{"/second/{id}", "POST", 409, 1},
                                                     CountKey{"", "OTHER", 404, 1}));
  EXPECT_GE(snapshot.counts[0].latency_seconds, 0.003);
  EXPECT_TRUE(response.headers.empty());
}

// Counts twice in a RouteMetrics made where a destroyed one had counted on this thread, then
// exits: 0 if both were counted, 1 if not.
[[noreturn]] void count_where_an_old_instance_was(const Router& router, const Route* route) {
  std::optional<billing::RouteMetrics> metrics;
  metrics.emplace(router);
  metrics->record(route, 200, 1ms);
  metrics.reset();
  // Take the freed blocks back (zeroed), so that nothing counted into them can land in the new
  // instance's shards by chance.
  std::vector<std::unique_ptr<std::array<std::byte, 24>>> taken;
  for (int i = 0; i < 256; ++i) taken.push_back(std::make_unique<std::array<std::byte, 24>>());
  metrics.emplace(router);  // the same address
  metrics->record(route, 200, 1ms);
  metrics->record(route, 200, 1ms);
  const std::vector<CountKey> expected{{"/first", "GET", 200, 2}};
  std::_Exit(counts(metrics->snapshot()) == expected ? 0 : 1);
}

// A thread remembers which shard it counts into by the address of the RouteMetrics it last
// counted for; a new RouteMetrics made where a destroyed one was must not inherit that memory
// (its shards are freed). Run in a child process (a death test): counting into freed memory may
// crash, and must not corrupt the test runner.
TEST_F(RouteMetrics, ANewInstanceWhereAnOldOneWasCountsItsOwnRequests) {
  EXPECT_EXIT(count_where_an_old_instance_was(router_, first_), testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace billing::http_test
