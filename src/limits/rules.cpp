#include "limits/rules.hpp"

namespace billing {

std::optional<LimitedOwner> limited_owner(const Identity& caller) {
  switch (caller.role) {
    case Role::admin:
      return std::nullopt;
    case Role::hospital:
      return LimitedOwner{EntityKind::hospital, caller.entity_id};
    case Role::individual:
      return LimitedOwner{EntityKind::individual, caller.entity_id};
    case Role::assistant:
      return LimitedOwner{EntityKind::hospital, caller.hospital_id};
  }
  return std::nullopt;
}

OwnerLimit limit_for(const Catalog& catalog, EntityKind kind, const std::optional<Plan>& plan) {
  if (plan && plan->status == PlanStatus::active)
    if (const PlanOffer* offer = catalog.find(kind, plan->plan_type))
      return {offer->rate_limit_per_minute, plan->plan_type};
  int lowest = 0;
  for (const PlanOffer& offer : catalog.offers())
    if (offer.role == kind && (lowest == 0 || offer.rate_limit_per_minute < lowest))
      lowest = offer.rate_limit_per_minute;
  return {lowest, std::nullopt};
}

}  // namespace billing
