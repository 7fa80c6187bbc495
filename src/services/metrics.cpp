#include "services/metrics.hpp"

#include <string>

#include "kit/log.hpp"

namespace billing {

void ServiceMetrics::selected(const Call& call, const Plan& plan) {
  selections_.add(plan.plan_type);
  std::string services;
  for (ServiceType s : plan.selected_services) {
    if (!services.empty()) services += ',';
    services += name_of(s);
  }
  log_event(spdlog::level::info, "services selected", call.request_id,
            {{"entity", plan.owner.id},
             {"plan", name_of(plan.plan_type)},
             {"services", services},
             {"by", name_of(call.caller().role)}});
}

}  // namespace billing
