#include "plans/views.hpp"

#include <boost/json/array.hpp>

#include "core/money.hpp"
#include "kit/json.hpp"
#include "kit/time.hpp"

namespace billing {
namespace {

boost::json::array names(const std::vector<ServiceType>& services) {
  boost::json::array out;
  out.reserve(services.size());
  for (ServiceType s : services) out.emplace_back(name_of(s));
  return out;
}

}  // namespace

boost::json::object offer_json(const PlanOffer& offer) {
  boost::json::array features;
  for (const auto& f : offer.features) features.emplace_back(f);
  return {
      {"plan_type", name_of(offer.plan_type)},
      {"role", name_of(offer.role)},
      {"name", offer.name},
      {"description", offer.description},
      {"price_monthly", money_json(offer.price_monthly_cents)},
      {"price_yearly", money_json(offer.price_yearly_cents)},
      {"max_agents", offer.max_agents},
      {"features", std::move(features)},
      {"model_tier", offer.model_tier},
      {"rate_limit_per_minute", offer.rate_limit_per_minute},
      {"available_services", names(offer.services)},
      {"default_services", names(offer.default_services)},
      {"max_optional_services", offer.max_optional_services
                                    ? boost::json::value(*offer.max_optional_services)
                                    : boost::json::value(nullptr)},
      {"is_recommended", offer.is_recommended},
  };
}

boost::json::object plan_json(const Plan& plan, const Catalog& catalog) {
  const PlanOffer* offer = catalog.find(plan.owner.kind, plan.plan_type);
  boost::json::object out{
      {"id", plan.id},
      {plan.owner.kind == EntityKind::hospital ? "hospital_id" : "individual_id", plan.owner.id},
      {"plan_type", name_of(plan.plan_type)},
      {"status", name_of(plan.status)},
      {"max_agents", plan.max_agents},
      {"available_services", offer ? names(offer->services) : boost::json::array{}},
      {"selected_services", names(plan.selected_services)},
      {"model_tier", offer ? boost::json::value(offer->model_tier) : boost::json::value(nullptr)},
      {"rate_limit_per_minute",
       offer ? boost::json::value(offer->rate_limit_per_minute) : boost::json::value(nullptr)},
      {"stripe_customer_id", plan.stripe_customer_id ? boost::json::value(*plan.stripe_customer_id)
                                                     : boost::json::value(nullptr)},
      {"stripe_subscription_id", plan.stripe_subscription_id
                                     ? boost::json::value(*plan.stripe_subscription_id)
                                     : boost::json::value(nullptr)},
      {"billing_cycle", plan.billing_cycle ? boost::json::value(name_of(*plan.billing_cycle))
                                           : boost::json::value(nullptr)},
      {"pending_plan_type", plan.pending_plan_type
                                ? boost::json::value(name_of(*plan.pending_plan_type))
                                : boost::json::value(nullptr)},
      {"pending_billing_cycle", plan.pending_billing_cycle
                                    ? boost::json::value(name_of(*plan.pending_billing_cycle))
                                    : boost::json::value(nullptr)},
      {"cancel_at_period_end", plan.cancel_at_period_end},
      {"created_at", iso8601(plan.created_at)},
      {"updated_at", iso8601(plan.updated_at)},
  };
  return out;
}

}  // namespace billing
