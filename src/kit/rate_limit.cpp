#include "kit/rate_limit.hpp"

#include <algorithm>
#include <functional>

namespace billing {

RateDecision take_token(Micros& full_at, Micros now, int limit, Micros period) {
  const Micros interval = period / limit;  // one token comes back every interval
  const Micros tat = std::max(full_at, now);
  const Micros next = tat + interval;
  const Micros allowed_from = next - period;
  RateDecision d{.limit = limit};
  if (now < allowed_from) {
    d.allowed = false;
    d.full_after = tat - now;
    d.retry_after = allowed_from - now;
    return d;
  }
  full_at = next;
  d.remaining = static_cast<int>((period - (next - now)) / interval);
  d.full_after = next - now;
  return d;
}

RateDecision LocalRateCounters::take(std::string_view key, int limit, Micros period, Micros now) {
  Stripe& stripe = stripes_[std::hash<std::string_view>{}(key) % kStripes];
  std::lock_guard lock(stripe.mutex);
  auto found = stripe.buckets.find(key);
  if (found == stripe.buckets.end()) {
    if (stripe.buckets.size() >= stripe.sweep_at) {
      std::erase_if(stripe.buckets,
                    [now](const auto& entry) { return entry.second.full_at <= now; });
      stripe.sweep_at = std::max<std::size_t>(1024, stripe.buckets.size() * 2);
    }
    found = stripe.buckets.emplace(key, Bucket{}).first;
  }
  Bucket& bucket = found->second;
  if (bucket.limit != limit) bucket = {0, limit};
  return take_token(bucket.full_at, now, limit, period);
}

}  // namespace billing
