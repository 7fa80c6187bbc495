#pragma once
// Which provider price charges for which (role, plan, cycle), both ways: the eight PRICE_*
// settings for Stripe, generated ids for the local provider.
#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "core/entity.hpp"
#include "core/plan_kinds.hpp"
#include "payments/provider.hpp"

namespace billing {

struct PricedPlan {
  EntityKind role;
  PlanType plan_type;
  BillingCycle cycle;
  friend bool operator==(const PricedPlan&, const PricedPlan&) = default;
};

class PriceMap {
 public:
  // The four offers of each role, in this order (hospital first; lite, pro; monthly, yearly),
  // as PRICE_HOSP_LITE_MONTHLY ... PRICE_IND_PRO_YEARLY list them. An empty id is unmapped.
  static constexpr std::array<PricedPlan, 8> kOrder{{
      {EntityKind::hospital, PlanType::lite, BillingCycle::monthly},
      {EntityKind::hospital, PlanType::lite, BillingCycle::yearly},
      {EntityKind::hospital, PlanType::pro, BillingCycle::monthly},
      {EntityKind::hospital, PlanType::pro, BillingCycle::yearly},
      {EntityKind::individual, PlanType::lite, BillingCycle::monthly},
      {EntityKind::individual, PlanType::lite, BillingCycle::yearly},
      {EntityKind::individual, PlanType::pro, BillingCycle::monthly},
      {EntityKind::individual, PlanType::pro, BillingCycle::yearly},
  }};

  explicit PriceMap(std::array<std::string, 8> price_ids) : ids_(std::move(price_ids)) {}
  // price_local_hospital_lite_monthly, ...: what the local provider charges by.
  static PriceMap local() {
    std::array<std::string, 8> ids;
    for (std::size_t i = 0; i < kOrder.size(); ++i)
      ids[i] = std::string("price_local_") + std::string(name_of(kOrder[i].role)) + "_" +
               std::string(name_of(kOrder[i].plan_type)) + "_" +
               std::string(name_of(kOrder[i].cycle));
    return PriceMap(std::move(ids));
  }

  // Throws nothing: no price is std::nullopt (the caller answers "Price mapping not found").
  std::optional<std::string_view> price_for(const PricedPlan& plan) const {
    for (std::size_t i = 0; i < kOrder.size(); ++i)
      if (kOrder[i] == plan && !ids_[i].empty()) return ids_[i];
    return std::nullopt;
  }
  // The role's offer that `price_id` charges for. One price may serve both roles (an operator
  // whose hospitals and individuals pay the same), never two offers of one role: Config refuses
  // that, as a price would then not say which plan was bought.
  std::optional<PricedPlan> plan_for(EntityKind role, std::string_view price_id) const {
    for (std::size_t i = 0; i < kOrder.size(); ++i)
      if (kOrder[i].role == role && !price_id.empty() && ids_[i] == price_id) return kOrder[i];
    return std::nullopt;
  }
  // Where no role is known (the local provider's own prices, one per offer): the one offer
  // `price_id` charges for, none if it serves both roles.
  std::optional<PricedPlan> plan_for(std::string_view price_id) const {
    const auto hospital = plan_for(EntityKind::hospital, price_id);
    const auto individual = plan_for(EntityKind::individual, price_id);
    if (hospital && individual) return std::nullopt;
    return hospital ? hospital : individual;
  }

 private:
  std::array<std::string, 8> ids_;
};

}  // namespace billing
