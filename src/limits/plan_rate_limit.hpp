#pragma once
// The plan rate limit, a step of the middleware chain after access control: each hospital or
// individual gets its plan's requests a minute, shared by all its users and routes (assistants
// count against their hospital). Over it: 429 with Retry-After; every limited response carries
// X-RateLimit-Limit, -Remaining and -Reset (seconds until the bucket is full again).
//
// The limit of each owner is cached, read from the database on a miss, and dropped when a unit
// that saved the owner's plan commits (Db::watch_plans), here or, through the shared store, on
// another replica: a plan change takes effect on the next request. Buckets live in this process,
// or in the shared store when there is one (REDIS_URL); while it is unreachable, here.
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>

#include "core/db.hpp"
#include "http/route.hpp"
#include "kit/rate_limit.hpp"
#include "limits/rules.hpp"
#include "limits/shared_counters.hpp"
#include "plans/catalog.hpp"
#include "plans/metrics.hpp"

namespace billing {

class PlanRateLimit final : public PlanCommits, public SharedRateNews {
 public:
  // `shared`: the replicas' common buckets, or null for this process only. Not `enabled`: every
  // call passes, without headers.
  PlanRateLimit(Db& db, const Catalog& catalog, bool enabled, SharedRateCounters* shared,
                RateLimitMetrics& metrics);
  ~PlanRateLimit() override;
  PlanRateLimit(const PlanRateLimit&) = delete;
  PlanRateLimit& operator=(const PlanRateLimit&) = delete;

  // The chain step: ready when the caller is not limited, or its limit is known and its bucket
  // is in this process (no coroutine on the usual path).
  bool ready(const Call& call) const;
  boost::asio::awaitable<void> prepare(Call& call);
  std::optional<Response> before(Call& call);
  void after(const Call& call, Response& response) const;

  void plans_committed(std::span<const EntityRef> owners) noexcept override;
  void plan_changed_elsewhere(const EntityRef& owner) override;
  void plans_may_have_changed_elsewhere() override;
  void shared_counters_reachable(bool reachable) override;

  static constexpr Micros kPeriod = 60'000'000;  // a minute

 private:
  struct CachedLimit {
    OwnerLimit limit;
    std::chrono::steady_clock::time_point loaded;
  };
  struct Hash : std::hash<std::string_view> {
    using is_transparent = void;
  };
  // Limits of one kind of owner, striped by id. `generation` moves on each drop, so that a read
  // that began before a drop does not put the old limit back.
  struct Stripe {
    std::mutex mutex;
    std::unordered_map<std::string, CachedLimit, Hash, std::equal_to<>> limits;
    std::uint64_t generation = 0;
  };
  static constexpr std::size_t kStripes = 16;
  using Stripes = std::array<Stripe, kStripes>;

  Stripe& stripe(EntityKind kind, std::string_view id) const;
  std::optional<OwnerLimit> cached(const LimitedOwner& owner,
                                   std::chrono::steady_clock::time_point now) const;
  RateDecision take_locally(const LimitedOwner& owner, int per_minute,
                            std::chrono::steady_clock::time_point now);
  boost::asio::awaitable<OwnerLimit> load(LimitedOwner owner);
  void drop(const EntityRef& owner);
  void drop_all();

  Db& db_;
  const Catalog& catalog_;
  const bool enabled_;
  SharedRateCounters* shared_;
  RateLimitMetrics& metrics_;
  // A change this process cannot hear of (another replica's while the shared store was away, or
  // one without a shared store at all; a commit whose outcome was lost) applies after this long
  // at the latest.
  static constexpr std::chrono::seconds kMaxAge{30};
  mutable std::array<Stripes, 2> stripes_;  // by EntityKind
  std::array<LocalRateCounters, 2> buckets_;
};

}  // namespace billing
