#pragma once
// The JSON shapes of plans and offers, as the API answers them.
#include <boost/json/object.hpp>

#include "plans/catalog.hpp"

namespace billing {

boost::json::object offer_json(const PlanOffer& offer);
// A hospital's or individual's plan, with what its catalog entry grants.
boost::json::object plan_json(const Plan& plan, const Catalog& catalog);

}  // namespace billing
