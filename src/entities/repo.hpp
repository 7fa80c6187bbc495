#pragma once
// What the entities domain asks of storage, inside a unit of work (core/db.hpp).
#include <optional>
#include <string>
#include <string_view>

#include "core/entity.hpp"
#include "kit/clock.hpp"

namespace billing {

class EntityRepo {
 public:
  virtual ~EntityRepo() = default;

  // In a write unit this also locks the entity until commit, so that concurrent changes to
  // the same plan queue up instead of overwriting each other: whoever changes a plan holds its
  // owner's lock before reading it.
  virtual bool entity_exists(const EntityRef& entity) = 0;
  // The same lock, without waiting for the answer: a backend may send it ahead of the unit's
  // next statement.
  virtual void hold_entity(const EntityRef& entity) = 0;
  virtual void create_entity(const EntityRef& entity, TimePoint now) = 0;  // no-op if present
  virtual void create_assistant(std::string_view id, std::string_view hospital_id,
                                TimePoint now) = 0;  // records the latest hospital_id
  virtual std::optional<std::string> assistant_hospital(std::string_view id) = 0;
};

}  // namespace billing
