#pragma once
#include "core/db.hpp"
#include "http/route.hpp"
#include "kit/clock.hpp"
#include "plans/catalog.hpp"
#include "plans/metrics.hpp"
#include "plans/subscription_changes.hpp"

namespace billing {

// GET /billing/plan, GET /billing/plan/current, POST /billing/plan/select.
void add_plan_routes(Router& router, Db& db, const Catalog& catalog, const Clock& clock,
                     SubscriptionChanges& subscriptions, PlanMetrics& metrics);

// The entity a read is about, and its plan, in one read: the `entity_id` query parameter (with an
// optional `role`) if given, else the caller's own (an assistant's hospital; none for an admin).
// Only admins may name another entity (403); 404 when an admin names an unknown one.
struct QueriedPlan {
  std::optional<EntityRef> entity;
  std::optional<Plan> plan;
};
// `call` must outlive the awaitable: handlers await it at once.
boost::asio::awaitable<QueriedPlan> queried_plan(Db& db, const Call& call);

}  // namespace billing
