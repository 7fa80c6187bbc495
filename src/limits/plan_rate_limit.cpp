#include "limits/plan_rate_limit.hpp"

#include <algorithm>

#include "http/errors.hpp"
#include "plans/repo.hpp"

namespace billing {
namespace {

std::string whole_seconds(Micros micros) {
  return std::to_string((micros + 999'999) / 1'000'000);
}

}  // namespace

PlanRateLimit::PlanRateLimit(Db& db, const Catalog& catalog, bool enabled,
                             SharedRateCounters* shared, RateLimitMetrics& metrics)
    : db_(db), catalog_(catalog), enabled_(enabled), shared_(shared), metrics_(metrics) {
  if (enabled_) db_.watch_plans(*this);
}

PlanRateLimit::~PlanRateLimit() {
  if (enabled_) db_.unwatch_plans();
}

PlanRateLimit::Stripe& PlanRateLimit::stripe(EntityKind kind, std::string_view id) const {
  return stripes_[static_cast<std::size_t>(kind)][std::hash<std::string_view>{}(id) % kStripes];
}

std::optional<OwnerLimit> PlanRateLimit::cached(const LimitedOwner& owner,
                                                std::chrono::steady_clock::time_point now) const {
  Stripe& s = stripe(owner.kind, owner.id);
  std::lock_guard lock(s.mutex);
  const auto found = s.limits.find(owner.id);
  if (found == s.limits.end() || now - found->second.loaded > kMaxAge) return std::nullopt;
  return found->second.limit;
}

boost::asio::awaitable<OwnerLimit> PlanRateLimit::load(LimitedOwner owner) {
  Stripe& s = stripe(owner.kind, owner.id);
  std::uint64_t generation;
  {
    std::lock_guard lock(s.mutex);
    generation = s.generation;
  }
  const EntityRef ref{owner.kind, std::string(owner.id)};
  const auto plan = co_await db_.read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(ref); });
  const OwnerLimit limit = limit_for(catalog_, owner.kind, plan);
  std::lock_guard lock(s.mutex);
  if (s.generation == generation)
    s.limits.insert_or_assign(ref.id, CachedLimit{limit, std::chrono::steady_clock::now()});
  co_return limit;
}

bool PlanRateLimit::ready(const Call& call) const {
  if (!enabled_ || !call.identity) return true;
  const auto owner = limited_owner(*call.identity);
  if (!owner) return true;
  if (shared_ && shared_->reachable()) return false;
  return cached(*owner, call.started).has_value();
}

boost::asio::awaitable<void> PlanRateLimit::prepare(Call& call) {
  const auto owner = *limited_owner(*call.identity);
  auto limit = cached(owner, call.started);
  if (!limit) limit = co_await load(owner);
  if (limit->per_minute <= 0) co_return;
  if (shared_ && shared_->reachable())
    call.rate =
        co_await shared_->take(owner.kind, std::string(owner.id), limit->per_minute, kPeriod);
  // Counted here, with the limit just read: the cache may have dropped it again meanwhile (a
  // plan of the same stripe committed), and the call must not pass uncounted.
  if (!call.rate) call.rate = take_locally(owner, limit->per_minute, call.started);
}

RateDecision PlanRateLimit::take_locally(const LimitedOwner& owner, int per_minute,
                                         std::chrono::steady_clock::time_point now) {
  // The time the request came in stands for now: no clock read of its own.
  const Micros micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  return buckets_[static_cast<std::size_t>(owner.kind)].take(owner.id, per_minute, kPeriod, micros);
}

std::optional<Response> PlanRateLimit::before(Call& call) {
  if (!enabled_ || !call.identity) return std::nullopt;
  const auto owner = limited_owner(*call.identity);
  if (!owner) return std::nullopt;
  std::optional<OwnerLimit> limit;
  if (!call.rate) {
    // The usual path: the limit cached, the bucket here. With no limit cached the call was not
    // prepared: a response the server made itself (Pipeline::finish) counts nothing.
    limit = cached(*owner, call.started);
    if (!limit || limit->per_minute <= 0) return std::nullopt;
    call.rate = take_locally(*owner, limit->per_minute, call.started);
  }
  if (call.rate->allowed) return std::nullopt;
  if (!limit) limit = cached(*owner, call.started);  // the plan, for the rejection's label
  metrics_.rejected(call, limit ? limit->plan : std::nullopt, call.rate->limit);
  auto response = detail_response(429, "Rate limit exceeded");
  response.with_header("Retry-After", whole_seconds(std::max<Micros>(call.rate->retry_after, 1)));
  return response;
}

void PlanRateLimit::after(const Call& call, Response& response) const {
  if (!call.rate) return;
  response.with_header("X-RateLimit-Limit", std::to_string(call.rate->limit));
  response.with_header("X-RateLimit-Remaining", std::to_string(call.rate->remaining));
  response.with_header("X-RateLimit-Reset", whole_seconds(call.rate->full_after));
}

void PlanRateLimit::drop(const EntityRef& owner) {
  Stripe& s = stripe(owner.kind, owner.id);
  std::lock_guard lock(s.mutex);
  s.limits.erase(owner.id);
  ++s.generation;
}

void PlanRateLimit::drop_all() {
  for (auto& kind : stripes_)
    for (Stripe& s : kind) {
      std::lock_guard lock(s.mutex);
      s.limits.clear();
      ++s.generation;
    }
}

void PlanRateLimit::plans_committed(std::span<const EntityRef> owners) noexcept {
  for (const EntityRef& owner : owners) {
    drop(owner);
    if (shared_) shared_->announce_plan_change(owner);
  }
}

void PlanRateLimit::plan_changed_elsewhere(const EntityRef& owner) {
  drop(owner);
}

void PlanRateLimit::plans_may_have_changed_elsewhere() {
  drop_all();
}

void PlanRateLimit::shared_counters_reachable(bool reachable) {
  metrics_.set_redis_up(reachable);
  drop_all();  // announcements of plan changes may have been lost meanwhile
}

}  // namespace billing
