#include "http/route_metrics.hpp"

#include <algorithm>
#include <span>

namespace billing {
namespace {

constexpr std::size_t kShards = 8;             // threads beyond this share shards
constexpr std::size_t kStatusesPerRoute = 16;  // the last, status 0, counts any further ones

std::atomic<std::uint64_t> next_metrics_id{1};

}  // namespace

struct RouteMetrics::Shard {
  struct StatusSlot {
    std::atomic<int> status{0};  // 0: free
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> latency_ns{0};
  };
  struct PerRoute {
    std::array<StatusSlot, kStatusesPerRoute> statuses;
    std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> buckets{};
  };
  explicit Shard(std::size_t route_count) : routes(route_count) {}
  std::vector<PerRoute> routes;
};

RouteMetrics::RouteMetrics(const Router& router) : id_(next_metrics_id++) {
  const auto all = router.routes();
  routes_.resize(all.size() + 1);
  for (const Route* route : all)
    routes_[route->index] = {route->pattern, method_name(route->method)};
  routes_.back() = {"", "OTHER"};
  for (std::size_t i = 0; i < kShards; ++i)
    shards_.push_back(std::make_unique<Shard>(routes_.size()));
}

RouteMetrics::~RouteMetrics() = default;

void RouteMetrics::after(const Call& call, Response& response) {
  record(call.route, response.status, std::chrono::steady_clock::now() - call.started);
}

void RouteMetrics::record(const Route* route, int status, std::chrono::nanoseconds latency) {
  // Keyed by an id, not the address: another instance may later live at this one's address.
  thread_local std::uint64_t owner = 0;
  thread_local Shard* shard = nullptr;
  if (owner != id_) {
    owner = id_;
    shard = shards_[next_shard_++ % kShards].get();
  }
  auto& per_route = shard->routes[route ? route->index : routes_.size() - 1];

  auto* slot = &per_route.statuses.back();  // never claimed: any status beyond the others
  for (auto& s : std::span(per_route.statuses).first(kStatusesPerRoute - 1)) {
    int seen = s.status.load(std::memory_order_relaxed);
    if (seen == 0 && s.status.compare_exchange_strong(seen, status)) seen = status;
    if (seen == status) {
      slot = &s;
      break;
    }
  }
  slot->requests.fetch_add(1, std::memory_order_relaxed);
  slot->latency_ns.fetch_add(static_cast<std::uint64_t>(latency.count()),
                             std::memory_order_relaxed);
  per_route.buckets[latency_bucket(latency)].fetch_add(1, std::memory_order_relaxed);
}

RouteMetrics::Snapshot RouteMetrics::snapshot() const {
  Snapshot out;
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    Latency latency{routes_[r].first, routes_[r].second};
    std::vector<Count> counts;
    for (const auto& shard : shards_) {
      const auto& per_route = shard->routes[r];
      for (std::size_t b = 0; b < latency.buckets.size(); ++b)
        latency.buckets[b] += per_route.buckets[b].load(std::memory_order_relaxed);
      for (const auto& slot : per_route.statuses) {
        const auto requests = slot.requests.load(std::memory_order_relaxed);
        if (requests == 0) continue;
        const int status = slot.status.load(std::memory_order_relaxed);
        const double seconds = static_cast<double>(slot.latency_ns.load()) / 1e9;
        auto same = std::find_if(counts.begin(), counts.end(),
                                 [&](const Count& c) { return c.status == status; });
        if (same == counts.end())
          counts.push_back({routes_[r].first, routes_[r].second, status, requests, seconds});
        else {
          same->requests += requests;
          same->latency_seconds += seconds;
        }
        latency.requests += requests;
        latency.sum_seconds += seconds;
      }
    }
    std::sort(counts.begin(), counts.end(),
              [](const Count& a, const Count& b) { return a.status < b.status; });
    out.counts.insert(out.counts.end(), counts.begin(), counts.end());
    if (latency.requests > 0) out.latencies.push_back(std::move(latency));
  }
  return out;
}

void RouteMetrics::write(MetricsText& out) const {
  const auto snap = snapshot();
  // A route pattern is a bounded label value; a path that matched none would not be.
  const auto route_label = [](const std::string& route) {
    return route.empty() ? std::string_view("unmatched") : std::string_view(route);
  };
  out.family("billing_http_requests_total", "counter",
             "HTTP requests answered, by route pattern, method and status (other: a status "
             "beyond the 15 a route keeps apart)");
  for (const Count& count : snap.counts) {
    const auto status = count.status == 0 ? std::string("other") : std::to_string(count.status);
    const Label labels[] = {
        {"route", route_label(count.route)}, {"method", count.method}, {"status", status}};
    out.sample("billing_http_requests_total", labels, count.requests);
  }
  out.family("billing_http_request_duration_seconds", "histogram",
             "Time from the request's headers to its response, by route pattern and method");
  for (const Latency& latency : snap.latencies) {
    const Label labels[] = {{"route", route_label(latency.route)}, {"method", latency.method}};
    out.histogram("billing_http_request_duration_seconds", labels, latency.buckets,
                  latency.sum_seconds);
  }
}

}  // namespace billing
