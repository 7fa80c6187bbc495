#include "limits/rules.hpp"

#include <gtest/gtest.h>

namespace billing {
namespace {

Catalog shipped() {
  return Catalog::load(BILLING_SOURCE_DIR "/config/plans.json");
}

Plan plan_of(EntityKind kind, PlanType type, PlanStatus status) {
  Plan p;
  p.owner = {kind, "x"};
  p.plan_type = type;
  p.status = status;
  return p;
}

TEST(RateLimitRules, EachOwnerCountsForItselfAndAssistantsForTheirHospital) {
  // The owner's id points into the identity: each lives as long as its check.
  const Identity admin{"u", Role::admin, "", ""}, hospital_user{"u", Role::hospital, "h1", ""},
      individual_user{"u", Role::individual, "i1", ""},
      assistant_user{"u", Role::assistant, "a1", "h1"};
  EXPECT_FALSE(limited_owner(admin));
  const auto hospital = limited_owner(hospital_user);
  ASSERT_TRUE(hospital);
  EXPECT_EQ(hospital->kind, EntityKind::hospital);
  EXPECT_EQ(hospital->id, "h1");
  const auto individual = limited_owner(individual_user);
  ASSERT_TRUE(individual);
  EXPECT_EQ(individual->kind, EntityKind::individual);
  EXPECT_EQ(individual->id, "i1");
  const auto assistant = limited_owner(assistant_user);
  ASSERT_TRUE(assistant);
  EXPECT_EQ(assistant->kind, EntityKind::hospital);
  EXPECT_EQ(assistant->id, "h1");
}

TEST(RateLimitRules, AnActivePlanGivesItsLimitAnythingElseTheRolesLowest) {
  const auto catalog = shipped();
  using enum PlanStatus;
  const auto h = EntityKind::hospital, i = EntityKind::individual;
  EXPECT_EQ(limit_for(catalog, h, plan_of(h, PlanType::pro, active)).per_minute, 300);
  EXPECT_EQ(limit_for(catalog, h, plan_of(h, PlanType::pro, active)).plan, PlanType::pro);
  EXPECT_EQ(limit_for(catalog, h, plan_of(h, PlanType::lite, active)).per_minute, 60);
  EXPECT_EQ(limit_for(catalog, i, plan_of(i, PlanType::pro, active)).per_minute, 120);
  for (auto status : {inactive, suspended, cancelled, expired}) {
    const auto limit = limit_for(catalog, h, plan_of(h, PlanType::pro, status));
    EXPECT_EQ(limit.per_minute, 60);
    EXPECT_EQ(limit.plan, std::nullopt);
  }
  EXPECT_EQ(limit_for(catalog, h, std::nullopt).per_minute, 60);
  EXPECT_EQ(limit_for(catalog, i, std::nullopt).per_minute, 30);
}

}  // namespace
}  // namespace billing
