#include "services/selection.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "entities/ownership.hpp"
#include "kit/api_error.hpp"
#include "plans/history.hpp"
#include "plans/repo.hpp"
#include "services/repo.hpp"

namespace billing {
namespace {

bool contains(std::span<const ServiceType> list, ServiceType s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

std::string optional_services_text(const PlanOffer& offer) {
  std::string names;
  for (ServiceType s : offer.services) {
    if (contains(offer.default_services, s)) continue;
    if (!names.empty()) names += " or ";
    names += name_of(s);
  }
  return names;
}

}  // namespace

std::vector<ServiceType> resolve_services(const PlanOffer& offer,
                                          std::span<const ServiceType> requested) {
  for (ServiceType s : requested)
    if (!contains(offer.services, s))
      throw ApiError(400, fmt::format("Service '{}' is not available on the {} plan", name_of(s),
                                      name_of(offer.plan_type)));
  std::vector<ServiceType> selected;
  int optional = 0;
  for (ServiceType s : offer.services) {
    const bool is_default = contains(offer.default_services, s);
    if (!is_default && !contains(requested, s)) continue;
    selected.push_back(s);
    if (!is_default) ++optional;
  }
  if (offer.max_optional_services && optional > *offer.max_optional_services) {
    const int limit = *offer.max_optional_services;
    throw ApiError(400, limit == 1
                            ? fmt::format("The {} plan allows only one optional service ({})",
                                          name_of(offer.plan_type), optional_services_text(offer))
                            : fmt::format("The {} plan allows at most {} optional services",
                                          name_of(offer.plan_type), limit));
  }
  return selected;
}

Plan select_services(Tx& tx, const Catalog& catalog, const Identity& caller,
                     const ServiceSelection& selection, TimePoint now) {
  const EntityRef hospital{EntityKind::hospital, selection.hospital_id};
  require_own(caller, hospital);
  if (!tx.get<EntityRepo>().entity_exists(hospital)) throw ApiError(404, "Hospital not found");
  auto& plans = tx.get<PlanRepo>();
  auto plan = plans.find_plan(hospital);
  if (!plan) throw ApiError(404, "Hospital plan not found");
  if (plan->status != PlanStatus::active)
    throw ApiError(409, fmt::format("Hospital plan is {}; services can only be selected on an "
                                    "active plan",
                                    name_of(plan->status)));
  const PlanOffer* offer = catalog.find(EntityKind::hospital, plan->plan_type);
  if (!offer)
    throw ApiError(409, fmt::format("The {} plan is no longer offered", name_of(plan->plan_type)));

  auto services = resolve_services(*offer, selection.services);
  // The same services in another order (a plan's defaults are stored in the catalog's default
  // order, a selection in its service order) are no change: no history row.
  if (std::is_permutation(services.begin(), services.end(), plan->selected_services.begin(),
                          plan->selected_services.end()))
    return *plan;
  Plan before = *plan;
  plan->selected_services = std::move(services);
  plan->updated_at = now;
  tx.get<ServiceRepo>().save_services(*plan);
  plans.append_history(plan_change(&before, *plan, caller.subject, now, "services selected"));
  return *plan;
}

}  // namespace billing
