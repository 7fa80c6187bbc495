#pragma once
// The metrics hook: requests counted, and their latencies summed and bucketed, per route and
// status, in memory (`/metrics` prints them with the operations issue). Each serving thread
// counts into a shard of its own, so the request path takes no lock and shares no cache line.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http/route.hpp"

namespace billing {

class RouteMetrics {
 public:
  // Latency bucket upper bounds, in seconds (Prometheus' `le`); a last bucket takes the rest.
  static constexpr std::array<double, 11> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                   0.05,   0.1,   0.25,   0.5,   1.0};

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
    std::array<std::uint64_t, kBuckets.size() + 1> buckets{};  // not cumulative; last: above all
    std::uint64_t requests = 0;
    double sum_seconds = 0;
  };
  struct Snapshot {
    std::vector<Count> counts;       // non-zero ones, by route then status
    std::vector<Latency> latencies;  // routes with requests
  };
  Snapshot snapshot() const;

 private:
  struct Shard;
  const std::uint64_t id_;  // tells this instance's thread-local shard from another's
  std::vector<std::pair<std::string, std::string_view>> routes_;  // by index; last: no route
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<std::size_t> next_shard_{0};
};

}  // namespace billing
