#pragma once
// The metrics hook: requests counted, and their latencies summed and bucketed, per route and
// status, in memory (`GET /metrics` prints them). Each serving thread
// counts into a shard of its own, so the request path takes no lock and shares no cache line.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http/route.hpp"
#include "kit/metrics.hpp"

namespace billing {

class RouteMetrics {
 public:
  static constexpr auto& kBuckets = kLatencyBuckets;

  explicit RouteMetrics(const Router& router);  // after every route is added
  ~RouteMetrics();
  RouteMetrics(const RouteMetrics&) = delete;
  RouteMetrics& operator=(const RouteMetrics&) = delete;

  void after(const Call& call, Response& response);
  void record(const Route* route, int status, std::chrono::nanoseconds latency);

  struct Count {
    std::string route;  // the pattern; "" for requests that matched no route
    std::string_view method;
    int status = 0;  // 0: statuses beyond the 15 a route has room for
    std::uint64_t requests = 0;
    double latency_seconds = 0;  // summed
  };
  struct Latency {
    std::string route;
    std::string_view method;
    LatencyBucketCounts buckets{};
    std::uint64_t requests = 0;
    double sum_seconds = 0;
  };
  struct Snapshot {
    std::vector<Count> counts;       // non-zero ones, by route then status
    std::vector<Latency> latencies;  // routes with requests
  };
  Snapshot snapshot() const;
  // billing_http_requests_total and billing_http_request_duration_seconds.
  void write(MetricsText& out) const;

 private:
  struct Shard;
  const std::uint64_t id_;  // tells this instance's thread-local shard from another's
  std::vector<std::pair<std::string, std::string_view>> routes_;  // by index; last: no route
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<std::size_t> next_shard_{0};
};

}  // namespace billing
