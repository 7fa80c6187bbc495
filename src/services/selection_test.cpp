#include "services/selection.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kit/api_error.hpp"

namespace billing {
namespace {

using ::testing::ElementsAre;
using S = ServiceType;

class ResolveServices : public ::testing::Test {
 protected:
  Catalog catalog = Catalog::load(BILLING_SOURCE_DIR "/config/plans.json");
  const PlanOffer& lite = *catalog.find(EntityKind::hospital, PlanType::lite);
  const PlanOffer& pro = *catalog.find(EntityKind::hospital, PlanType::pro);

  static std::string error_of(const PlanOffer& offer, std::vector<S> requested) {
    try {
      resolve_services(offer, requested);
      return "accepted";
    } catch (const ApiError& e) {
      return std::to_string(e.status) + " " + std::string(e.detail.as_string());
    }
  }
};

TEST_F(ResolveServices, DefaultsAreAlwaysIncludedInCatalogOrder) {
  EXPECT_THAT(resolve_services(lite, std::vector<S>{}),
              ElementsAre(S::privacy, S::human_escalation, S::checklist));
  EXPECT_THAT(resolve_services(lite, std::vector<S>{S::medication, S::privacy}),
              ElementsAre(S::privacy, S::human_escalation, S::checklist, S::medication));
  EXPECT_THAT(resolve_services(lite, std::vector<S>{S::nutrition, S::nutrition}),
              ElementsAre(S::privacy, S::human_escalation, S::checklist, S::nutrition));
}

TEST_F(ResolveServices, LiteAllowsOneOptionalService) {
  EXPECT_EQ(error_of(lite, {S::medication, S::nutrition}),
            "400 The lite plan allows only one optional service (medication or nutrition)");
}

TEST_F(ResolveServices, RefusesServicesThePlanDoesNotOffer) {
  EXPECT_EQ(error_of(lite, {S::summary}),
            "400 Service 'summary' is not available on the lite plan");
  EXPECT_EQ(error_of(lite, {S::primary, S::medication}),
            "400 Service 'primary' is not available on the lite plan");
}

TEST_F(ResolveServices, ProHasNoLimit) {
  EXPECT_EQ(resolve_services(pro, std::vector<S>{S::checkpoint, S::primary, S::medication,
                                                 S::nutrition, S::summary})
                .size(),
            8u);
}

}  // namespace
}  // namespace billing
