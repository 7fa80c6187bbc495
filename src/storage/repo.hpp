#pragma once
// What the domain may ask of the database, inside one read or one write unit (see db.hpp).
// Both backends implement it and pass the same test suite (storage/repo_test.cpp).
#include <optional>
#include <string_view>
#include <vector>

#include "plans/types.hpp"

namespace billing {

class Repo {
 public:
  virtual ~Repo() = default;

  virtual void ping() = 0;  // a real round trip; throws when the database is unreachable

  // In a write unit this also locks the entity until commit, so that concurrent changes to
  // the same plan queue up instead of overwriting each other.
  virtual bool entity_exists(const EntityRef& entity) = 0;
  virtual void create_entity(const EntityRef& entity, TimePoint now) = 0;  // no-op if present
  virtual void create_assistant(std::string_view id, std::string_view hospital_id,
                                TimePoint now) = 0;  // records the latest hospital_id
  virtual std::optional<std::string> assistant_hospital(std::string_view id) = 0;

  virtual std::optional<Plan> find_plan(const EntityRef& owner) = 0;
  virtual void save_plan(const Plan& plan) = 0;  // insert, or update the row with plan.id
  virtual void append_history(const PlanChange& change) = 0;
  virtual std::vector<PlanChange> history(const EntityRef& owner) = 0;  // oldest first
};

}  // namespace billing
