#pragma once
#include "entities/repo.hpp"
#include "storage/sql.hpp"

namespace billing {

// In a write unit, locks the entity's row until commit, sent along with the connection's next
// statement (PostgreSQL; a SQLite write unit holds the whole database already).
void hold_entity_row(sql::Connection& connection, const EntityRef& entity);

// EntityRepo over either SQL backend.
class SqlEntityRepo : public EntityRepo {
 public:
  SqlEntityRepo(sql::Connection& connection, bool write_unit)
      : db_(connection), write_unit_(write_unit) {}

  bool entity_exists(const EntityRef& entity) override;
  void hold_entity(const EntityRef& entity) override;
  void create_entity(const EntityRef& entity, TimePoint now) override;
  void create_assistant(std::string_view id, std::string_view hospital_id, TimePoint now) override;
  std::optional<std::string> assistant_hospital(std::string_view id) override;

 private:
  sql::Connection& db_;
  bool write_unit_;
};

}  // namespace billing
