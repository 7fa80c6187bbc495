#pragma once
// Rate limiting by GCRA, the generic cell rate algorithm: a token bucket of `limit` tokens that
// refills evenly over `period`, kept as one number per key, the time at which the bucket would
// be full again if nothing more came ("theoretical arrival time"). A full bucket takes `limit`
// requests at once, then one every period/limit: unlike a fixed window there is no boundary at
// which twice the limit gets through together. The same steps run in Redis (redis/), so both
// stores answer alike.
#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace billing {

using Micros = std::int64_t;

struct RateDecision {
  bool allowed = true;
  int limit = 0;
  int remaining = 0;       // further requests allowed right now
  Micros full_after = 0;   // until the bucket is full again
  Micros retry_after = 0;  // when refused: until one request is allowed
};

// One request against the bucket whose state is `full_at` (0: never used), at `now`; updates
// `full_at` when the request is allowed. `limit` > 0, `period` >= `limit` microseconds.
RateDecision take_token(Micros& full_at, Micros now, int limit, Micros period);

// Buckets in this process, keyed by name, on a monotonic clock; thread-safe, a lock per stripe.
// A bucket asked for with another limit than before starts full: a new plan's limit applies
// from its first request, whatever the old one had used.
class LocalRateCounters {
 public:
  // `now`: microseconds on std::chrono::steady_clock, never going back for a key.
  RateDecision take(std::string_view key, int limit, Micros period, Micros now);

 private:
  struct Hash : std::hash<std::string_view> {
    using is_transparent = void;
  };
  struct Bucket {
    Micros full_at = 0;
    int limit = 0;
  };
  struct Stripe {
    std::mutex mutex;
    std::unordered_map<std::string, Bucket, Hash, std::equal_to<>> buckets;
    std::size_t sweep_at = 1024;  // size at which full buckets (equal to absent ones) go
  };
  static constexpr std::size_t kStripes = 16;
  std::array<Stripe, kStripes> stripes_;
};

}  // namespace billing
