#pragma once
// The plans' numbers and log lines: selections, and the plan rate limit's refusals (recorded by
// the limiter, src/limits/).
#include <array>
#include <optional>
#include <string_view>

#include "core/identity.hpp"
#include "core/plan_kinds.hpp"
#include "http/route.hpp"
#include "kit/metrics.hpp"
#include "plans/types.hpp"

namespace billing {

// What a saved selection did: made the plan active at once (an admin's), left it awaiting
// payment (an owner's first choice), or recorded it as pending beside an active plan.
enum class SelectionEffect { active, awaiting_payment, pending };
template <>
struct EnumNames<SelectionEffect> {
  static constexpr std::array<std::string_view, 3> names{"active", "awaiting_payment", "pending"};
};

class PlanMetrics {
 public:
  // POST /billing/plan/select saved `plan` for `chosen`: counted, and logged.
  void selected(const Call& call, PlanType chosen, const Plan& plan);
  void write(MetricsText& out) const;

 private:
  CounterFamily<EntityKind, PlanType, SelectionEffect> selections_{
      "billing_plan_selections_total",
      "Plan selections saved, by kind of owner, plan type chosen and effect",
      {"role", "plan", "effect"}};
};

// The plan rate limit's side of /metrics and the log; the limiter calls these.
class RateLimitMetrics {
 public:
  // `call` refused 429: counted by the caller's role and plan type (nothing: no active plan),
  // and logged with the request id, the caller and the limit per minute.
  void rejected(const Call& call, std::optional<PlanType> plan, int limit_per_minute);
  // Whether the counters are Redis's (true) or this process's own (false: no REDIS_URL, or
  // Redis unreachable and the limiter fell back).
  void set_redis_up(bool up) { redis_up_.set(up ? 1 : 0); }
  void write(MetricsText& out) const;

  std::uint64_t rejections(Role role, std::optional<PlanType> plan) const {
    return rejections_.value(role, plan);
  }

 private:
  CounterFamily<Role, std::optional<PlanType>> rejections_{
      "billing_rate_limit_rejections_total",
      "Requests refused 429 by the plan rate limit, by role and plan type (none: no active plan)",
      {"role", "plan"}};
  GaugeFamily<> redis_up_{"billing_rate_limit_redis_up",
                          "1 while rate-limit counters are shared in Redis, 0 while they are "
                          "this process's own (no REDIS_URL, or Redis unreachable)",
                          {}};
};

}  // namespace billing
