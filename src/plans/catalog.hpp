#pragma once
// The plan catalog (config/plans.json, or PLANS_CONFIG): what each role can buy, for how much,
// and which services come with it. Validated once at start; a broken file stops the start.
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/money.hpp"
#include "plans/types.hpp"

namespace billing {

struct ServiceInfo {
  ServiceType id;
  std::string name;
  std::string description;
};

struct PlanOffer {
  EntityKind role;
  PlanType plan_type;
  std::string name;
  std::string description;
  Cents price_monthly_cents;
  Cents price_yearly_cents;  // monthly x 12 x 0.8 unless the file says otherwise
  int max_agents;
  std::string model_tier;
  int rate_limit_per_minute;
  std::vector<std::string> features;
  bool is_recommended;
  std::vector<ServiceType> services;          // offered, in catalog order
  std::vector<ServiceType> default_services;  // always part of a selection
  std::optional<int> max_optional_services;   // none: no limit
};

struct CatalogError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Catalog {
 public:
  static Catalog parse(std::string_view json);  // throws CatalogError naming the bad entry
  static Catalog load(const std::string& path);

  const PlanOffer* find(EntityKind role, PlanType plan_type) const;
  std::span<const PlanOffer> offers() const { return offers_; }
  const std::vector<ServiceInfo>& services() const { return services_; }
  const ServiceInfo& service(ServiceType id) const;  // every ServiceType has an entry
  // Services offered by any plan of `role`, in catalog order.
  std::vector<ServiceType> services_for(EntityKind role) const;

 private:
  std::vector<ServiceInfo> services_;
  std::vector<PlanOffer> offers_;
};

// 12 months at 20% off, in whole cents, or nothing if that is not a whole number of cents.
std::optional<Cents> yearly_price_cents(Cents monthly_cents);

}  // namespace billing
