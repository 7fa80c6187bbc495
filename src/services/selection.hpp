#pragma once
// Which services a hospital may switch on within its plan.
#include <span>
#include <string>
#include <vector>

#include "core/db.hpp"
#include "core/identity.hpp"
#include "plans/catalog.hpp"

namespace billing {

// The services a selection turns on: the request plus the plan's defaults, in catalog order.
// 400 for a service the plan does not offer, or more optional services than the plan allows.
std::vector<ServiceType> resolve_services(const PlanOffer& offer,
                                          std::span<const ServiceType> requested);

struct ServiceSelection {
  std::string hospital_id;
  std::vector<ServiceType> services;
};

// POST /billing/services/select, inside one write unit.
Plan select_services(Tx& tx, const Catalog& catalog, const Identity& caller,
                     const ServiceSelection& selection, TimePoint now);

}  // namespace billing
