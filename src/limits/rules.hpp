#pragma once
// Whose requests count against which plan limit: the rules, as plain functions.
#include <optional>
#include <string_view>

#include "core/entity.hpp"
#include "core/identity.hpp"
#include "plans/catalog.hpp"
#include "plans/types.hpp"

namespace billing {

// The bucket a caller's requests go to: its hospital or individual. An assistant counts against
// its hospital; admins are not limited (none).
struct LimitedOwner {
  EntityKind kind;
  std::string_view id;  // into the caller's identity
};
std::optional<LimitedOwner> limited_owner(const Identity& caller);

// Requests a minute an owner may make: its active plan's rate_limit_per_minute, else (no plan,
// or one not active) the lowest of its role's plans; 0 (not limited) for a role the catalog
// offers nothing.
struct OwnerLimit {
  int per_minute = 0;
  std::optional<PlanType> plan;  // the active plan the limit comes from; none: the role's floor
};
OwnerLimit limit_for(const Catalog& catalog, EntityKind kind, const std::optional<Plan>& plan);

}  // namespace billing
