#include "plans/routes.hpp"

#include <boost/json/array.hpp>

#include "entities/ownership.hpp"
#include "http/errors.hpp"
#include "http/json_body.hpp"
#include "kit/api_error.hpp"
#include "kit/json.hpp"
#include "plans/repo.hpp"
#include "plans/selection.hpp"
#include "plans/views.hpp"

namespace billing {
namespace {

namespace asio = boost::asio;

// The offers part of GET /billing/plan never changes while the service runs: render it once.
struct OffersText {
  std::string hospital, individual, all;

  explicit OffersText(const Catalog& catalog) {
    boost::json::array h, i, a;
    for (const auto& offer : catalog.offers()) {
      auto json = offer_json(offer);
      (offer.role == EntityKind::hospital ? h : i).push_back(json);
      a.push_back(std::move(json));
    }
    hospital = to_json(h);
    individual = to_json(i);
    all = to_json(a);
  }
  const std::string& for_kind(std::optional<EntityKind> kind) const {
    if (!kind) return all;
    return *kind == EntityKind::hospital ? hospital : individual;
  }
};

std::optional<EntityKind> role_query(const Request& request) {
  const auto text = request.query_param("role");
  if (!text) return std::nullopt;
  if (auto kind = parse_enum<EntityKind>(*text)) return kind;
  throw query_error("role", "enum", "Input should be " + quoted_choices<EntityKind>());
}

asio::awaitable<Response> get_plans(Db& db, const Catalog& catalog, const OffersText& offers,
                                    const Call& call) {
  const auto [entity, plan] = co_await queried_plan(db, call);

  std::string body;
  const auto& offers_text = offers.for_kind(entity ? std::optional(entity->kind) : std::nullopt);
  body.reserve(offers_text.size() + 640);
  body += R"({"plans":)";
  body += offers_text;
  body += R"(,"user_role":")";
  body += name_of(call.caller().role);
  body += R"(","current_plan":)";
  if (plan) {
    body += '"';
    body += name_of(plan->plan_type);
    body += R"(","current_plan_details":)";
    append_json(body, plan_json(*plan, catalog));
  } else {
    body += R"(null,"current_plan_details":null)";
  }
  body += '}';
  co_return json_response(std::move(body));
}

asio::awaitable<Response> get_current_plan(Db& db, const Catalog& catalog, const Call& call) {
  if (call.caller().role == Role::admin && !call.request.query_param("entity_id"))
    throw query_error("entity_id", "missing", "Field required");
  const auto [entity, plan] = co_await queried_plan(db, call);
  if (!plan)
    throw ApiError(404, entity->kind == EntityKind::hospital ? "Hospital plan not found"
                                                             : "Individual plan not found");
  co_return json_response(plan_json(*plan, catalog));
}

asio::awaitable<Response> post_plan_select(Db& db, const Catalog& catalog, const Clock& clock,
                                           SubscriptionChanges& subscriptions, PlanMetrics& metrics,
                                           const Call& call) {
  JsonBody body(call.request.body);
  PlanSelection selection{
      .plan_type = body.required_enum<PlanType>("plan_type"),
      .id = body.required_string("id"),
      .role = body.optional_enum<EntityKind>("role"),
      .billing_cycle = body.optional_enum<BillingCycle>("billing_cycle"),
  };
  body.finish();
  auto choice = co_await db.transact(
      [&](Tx& tx) { return select_plan(tx, catalog, call.caller(), selection, clock.now()); });
  auto response = json_response(plan_json(choice.plan, catalog));
  const Plan chosen = choice.plan;
  co_await price_subscription(db, subscriptions, std::move(choice));  // a refusal is no selection
  metrics.selected(call, selection.plan_type, chosen);
  co_return response;
}

}  // namespace

asio::awaitable<QueriedPlan> queried_plan(Db& db, const Call& call) {
  const auto id = query_id(call.request, "entity_id");
  const Identity& caller = call.caller();
  if (!id && caller.role == Role::admin) co_return QueriedPlan{};
  const auto role = id ? role_query(call.request) : std::nullopt;
  co_return co_await db.read([&](Tx& tx) {
    const EntityRef entity =
        id ? resolve_entity(tx.get<EntityRepo>(), caller, *id, role) : *own_entity(caller);
    return QueriedPlan{entity, tx.get<PlanRepo>().find_plan(entity)};
  });
}

void add_plan_routes(Router& router, Db& db, const Catalog& catalog, const Clock& clock,
                     SubscriptionChanges& subscriptions, PlanMetrics& metrics) {
  constexpr RoleSet kOwners{Role::admin, Role::hospital, Role::individual};
  auto offers = std::make_shared<const OffersText>(catalog);
  router.add({Method::get, "/billing/plan", Policy::read(kOwners),
              [&db, &catalog, offers](const Call& call) {
                return get_plans(db, catalog, *offers, call);
              }});
  router.add({Method::get, "/billing/plan/current", Policy::read(kOwners),
              [&db, &catalog](const Call& call) { return get_current_plan(db, catalog, call); }});
  router.add({Method::post, "/billing/plan/select", Policy::write(kOwners),
              [&db, &catalog, &clock, &subscriptions, &metrics](const Call& call) {
                return post_plan_select(db, catalog, clock, subscriptions, metrics, call);
              }});
}

}  // namespace billing
