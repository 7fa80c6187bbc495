#include "plans/metrics.hpp"

#include <string>

#include "kit/log.hpp"

namespace billing {

void PlanMetrics::selected(const Call& call, PlanType chosen, const Plan& plan) {
  const bool pending = plan.pending_plan_type || plan.pending_billing_cycle;
  const auto cycle = plan.pending_billing_cycle ? plan.pending_billing_cycle : plan.billing_cycle;
  const auto effect = pending                             ? SelectionEffect::pending
                      : plan.status == PlanStatus::active ? SelectionEffect::active
                                                          : SelectionEffect::awaiting_payment;
  selections_.add(plan.owner.kind, chosen, effect);
  log_event(spdlog::level::info, "plan selected", call.request_id,
            {{"entity", plan.owner.id},
             {"role", name_of(plan.owner.kind)},
             {"plan", name_of(chosen)},
             {"effect", name_of(effect)},
             {"status", name_of(plan.status)},
             {"cycle", cycle ? name_of(*cycle) : "none"},
             {"by", name_of(call.caller().role)}});
}

void PlanMetrics::write(MetricsText& out) const {
  selections_.write(out);
}

void RateLimitMetrics::rejected(const Call& call, std::optional<PlanType> plan,
                                int limit_per_minute) {
  const Identity& caller = call.caller();
  rejections_.add(caller.role, plan);
  const auto limit = std::to_string(limit_per_minute);
  log_event(spdlog::level::warn, "rate limit exceeded", call.request_id,
            {{"role", name_of(caller.role)},
             {"entity", caller.entity_id},
             {"plan", plan ? name_of(*plan) : "none"},
             {"limit_per_minute", limit},
             {"route", call.route ? std::string_view(call.route->pattern) : ""}});
}

void RateLimitMetrics::write(MetricsText& out) const {
  rejections_.write(out);
  redis_up_.write(out);
}

}  // namespace billing
