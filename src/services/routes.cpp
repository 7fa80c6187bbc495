#include "services/routes.hpp"

#include <algorithm>

#include <boost/json/array.hpp>

#include "http/errors.hpp"
#include "http/json_body.hpp"
#include "plans/routes.hpp"
#include "plans/views.hpp"
#include "services/selection.hpp"

namespace billing {
namespace {

namespace asio = boost::asio;

bool contains(const std::vector<ServiceType>& list, ServiceType s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

asio::awaitable<Response> get_services(Db& db, const Catalog& catalog, const Call& call) {
  const auto [entity, plan] = co_await queried_plan(db, call);
  const PlanOffer* offer = plan ? catalog.find(plan->owner.kind, plan->plan_type) : nullptr;
  // Only an active plan's services can be used: one awaiting payment, suspended or cancelled
  // lists its offer and selection, none of them available (as the rate limits treat it).
  const bool usable = plan && plan->status == PlanStatus::active;

  std::vector<ServiceType> listed;
  if (entity) {
    listed = catalog.services_for(entity->kind);
  } else {
    for (const auto& info : catalog.services()) listed.push_back(info.id);
  }
  boost::json::array services;
  for (ServiceType s : listed) {
    const auto& info = catalog.service(s);
    services.push_back(boost::json::object{
        {"id", name_of(s)},
        {"name", info.name},
        {"description", info.description},
        {"is_default", offer && contains(offer->default_services, s)},
        {"is_selected", plan && contains(plan->selected_services, s)},
        {"is_available", entity ? usable && offer && contains(offer->services, s) : true},
    });
  }
  boost::json::object out{{"services", std::move(services)}};
  out["plan_type"] = plan ? boost::json::value(name_of(plan->plan_type)) : nullptr;
  out["status"] = plan ? boost::json::value(name_of(plan->status)) : nullptr;
  out["max_optional_services"] = offer && offer->max_optional_services
                                     ? boost::json::value(*offer->max_optional_services)
                                     : nullptr;
  co_return json_response(out);
}

asio::awaitable<Response> post_services_select(Db& db, const Catalog& catalog, const Clock& clock,
                                               ServiceMetrics& metrics, const Call& call) {
  JsonBody body(call.request.body);
  ServiceSelection selection{
      .hospital_id = body.required_string("hospital_id"),
      .services = body.required_enum_list<ServiceType>("services"),
  };
  body.finish();
  const auto plan = co_await db.transact(
      [&](Tx& tx) { return select_services(tx, catalog, call.caller(), selection, clock.now()); });
  metrics.selected(call, plan);
  co_return json_response(plan_json(plan, catalog));
}

}  // namespace

void add_service_routes(Router& router, Db& db, const Catalog& catalog, const Clock& clock,
                        ServiceMetrics& metrics) {
  router.add({Method::get, "/billing/services", Policy::read(RoleSet::all()),
              [&db, &catalog](const Call& call) { return get_services(db, catalog, call); }});
  router.add({Method::post, "/billing/services/select",
              Policy::write({Role::admin, Role::hospital})
                  .denying_with("Only hospital administrators can select services"),
              [&db, &catalog, &clock, &metrics](const Call& call) {
                return post_services_select(db, catalog, clock, metrics, call);
              }});
}

}  // namespace billing
