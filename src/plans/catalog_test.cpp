#include "plans/catalog.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace billing {
namespace {

std::string shipped_text() {
  std::ifstream in(BILLING_SOURCE_DIR "/config/plans.json");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Catalog, ShippedCatalogIsTheContractTable) {
  const auto catalog = Catalog::load(BILLING_SOURCE_DIR "/config/plans.json");
  struct Expected {
    EntityKind role;
    PlanType type;
    std::int64_t monthly, yearly;
    int agents, rate;
    const char* tier;
  };
  const Expected table[] = {
      {EntityKind::hospital, PlanType::lite, 49900, 479040, 5, 60, "basic"},
      {EntityKind::hospital, PlanType::pro, 99900, 959040, 50, 300, "premium"},
      {EntityKind::individual, PlanType::lite, 4900, 47040, 1, 30, "basic"},
      {EntityKind::individual, PlanType::pro, 9900, 95040, 2, 120, "advanced"},
  };
  for (const auto& e : table) {
    const auto* offer = catalog.find(e.role, e.type);
    ASSERT_NE(offer, nullptr);
    EXPECT_EQ(offer->price_monthly_cents, e.monthly);
    EXPECT_EQ(offer->price_yearly_cents, e.yearly);
    EXPECT_EQ(offer->max_agents, e.agents);
    EXPECT_EQ(offer->rate_limit_per_minute, e.rate);
    EXPECT_EQ(offer->model_tier, e.tier);
  }
  EXPECT_EQ(catalog.find(EntityKind::hospital, PlanType::hobby), nullptr);
  EXPECT_EQ(catalog.find(EntityKind::individual, PlanType::basic), nullptr);
  const auto* lite = catalog.find(EntityKind::hospital, PlanType::lite);
  EXPECT_THAT(lite->default_services,
              ::testing::ElementsAre(ServiceType::privacy, ServiceType::human_escalation,
                                     ServiceType::checklist));
  EXPECT_EQ(lite->max_optional_services, 1);
  EXPECT_EQ(catalog.find(EntityKind::hospital, PlanType::pro)->services.size(), 8u);
  EXPECT_THAT(catalog.services_for(EntityKind::individual),
              ::testing::ElementsAre(ServiceType::primary));
}

TEST(Catalog, YearlyPriceIsTwelveMonthsLessTwentyPercentInWholeCents) {
  EXPECT_EQ(yearly_price_cents(49900), 479040);
  EXPECT_EQ(yearly_price_cents(100), 960);
  EXPECT_EQ(yearly_price_cents(4999), std::nullopt);  // 47990.4 cents
}

// Each mutation of the shipped catalog must be refused, with a reason that names the problem.
TEST(Catalog, RefusesBrokenFilesWithTheReason) {
  namespace json = boost::json;
  const auto shipped = json::parse(shipped_text());
  using Mutation = void (*)(json::object&);
  const std::pair<Mutation, const char*> cases[] = {
      {[](json::object& c) { c.erase("plans"); }, "missing \"plans\""},
      {[](json::object& c) { c["plans"] = json::array{}; }, "offers no plan"},
      {[](json::object& c) { c["plans"].as_array()[0].as_object()["plan_type"] = "gold"; }, "gold"},
      {[](json::object& c) { c["plans"].as_array()[0].as_object()["role"] = "admin"; }, "admin"},
      {[](json::object& c) { c["plans"].as_array()[0].as_object()["price_monthly_cents"] = 499.0; },
       "price_monthly_cents"},
      {[](json::object& c) { c["plans"].as_array()[0].as_object()["price_monthly_cents"] = -1; },
       "price_monthly_cents"},
      {[](json::object& c) { c["plans"].as_array()[0].as_object()["price_monthly_cents"] = 4999; },
       "price_yearly_cents"},
      {[](json::object& c) {
         c["plans"].as_array()[0].as_object()["price_monthly_cents"] = 4611686018427387904;
       },
       "price_yearly_cents"},  // monthly x 12 x 0.8 overflows
      {[](json::object& c) {
         c["plans"].as_array()[0].as_object()["price_monthly_cents"] = 100'000'000;
       },
       "at most 99999999 cents"},
      {[](json::object& c) {
         c["plans"].as_array()[0].as_object()["price_yearly_cents"] = 100'000'000;
       },
       "at most 99999999 cents"},
      {[](json::object& c) { c["plans"].as_array()[0].as_object()["max_agents"] = 0; },
       "max_agents"},
      {[](json::object& c) {
         c["plans"].as_array()[0].as_object()["services"] = json::array{"privacy", "xray"};
       },
       "xray"},
      {[](json::object& c) {
         c["plans"].as_array()[0].as_object()["default_services"] = json::array{"summary"};
       },
       "default service summary"},
      {[](json::object& c) { c["plans"].as_array()[1].as_object()["plan_type"] = "lite"; },
       "a second hospital lite plan"},
      {[](json::object& c) { c["plans"].as_array()[0].as_object()["max_optional_services"] = -2; },
       "max_optional_services"},
      {[](json::object& c) { c["services"].as_array().pop_back(); }, "no description for service"},
  };
  for (const auto& [mutate, reason] : cases) {
    auto copy = shipped;
    mutate(copy.as_object());
    try {
      Catalog::parse(json::serialize(copy));
      ADD_FAILURE() << "accepted a catalog that should fail with: " << reason;
    } catch (const CatalogError& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr(reason));
    }
  }
  EXPECT_THROW(Catalog::parse("{"), CatalogError);
  EXPECT_THROW(Catalog::parse("[]"), CatalogError);
  EXPECT_THROW(Catalog::load("/nonexistent/plans.json"), CatalogError);
}

}  // namespace
}  // namespace billing
