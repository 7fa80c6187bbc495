#pragma once
// The services' numbers and log lines: selections saved.
#include "core/plan_kinds.hpp"
#include "http/route.hpp"
#include "kit/metrics.hpp"
#include "plans/types.hpp"

namespace billing {

class ServiceMetrics {
 public:
  // POST /billing/services/select saved `plan`'s services: counted, and logged.
  void selected(const Call& call, const Plan& plan);
  void write(MetricsText& out) const { selections_.write(out); }

 private:
  CounterFamily<PlanType> selections_{
      "billing_service_selections_total", "Service selections saved, by plan type", {"plan"}};
};

}  // namespace billing
