#include "storage/entity_store.hpp"

#include "kit/time.hpp"
#include "storage/codec.hpp"

namespace billing {

namespace {

constexpr sql::Query kExists[] = {"SELECT 1 FROM hospitals WHERE id = ?",
                                  "SELECT 1 FROM individuals WHERE id = ?"};
// A SQLite write unit holds the database's one write lock from its BEGIN IMMEDIATE, so only
// PostgreSQL needs a row lock to queue concurrent changes to one entity.
constexpr sql::Query kExistsAndLock[] = {
    {"SELECT 1 FROM hospitals WHERE id = ?", "SELECT 1 FROM hospitals WHERE id = ? FOR UPDATE"},
    {"SELECT 1 FROM individuals WHERE id = ?",
     "SELECT 1 FROM individuals WHERE id = ? FOR UPDATE"}};

}  // namespace

bool SqlEntityRepo::entity_exists(const EntityRef& entity) {
  return db_.run(for_kind(write_unit_ ? kExistsAndLock : kExists, entity.kind), {entity.id}) > 0;
}

void hold_entity_row(sql::Connection& connection, const EntityRef& entity) {
  if (connection.dialect() == sql::Dialect::postgres)
    connection.run_later(for_kind(kExistsAndLock, entity.kind), {entity.id});
}

void SqlEntityRepo::hold_entity(const EntityRef& entity) {
  if (write_unit_) hold_entity_row(db_, entity);
}

void SqlEntityRepo::create_entity(const EntityRef& entity, TimePoint now) {
  static constexpr sql::Query kCreate[] = {
      "INSERT INTO hospitals (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
      "INSERT INTO individuals (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING"};
  db_.run_later(for_kind(kCreate, entity.kind), {entity.id, iso8601_micros(now)});
}

void SqlEntityRepo::create_assistant(std::string_view id, std::string_view hospital_id,
                                     TimePoint now) {
  static constexpr sql::Query kCreate =
      "INSERT INTO assistants (id, hospital_id, created_at) VALUES (?, ?, ?) "
      "ON CONFLICT (id) DO UPDATE SET hospital_id = excluded.hospital_id";
  db_.run(kCreate, {id, hospital_id, iso8601_micros(now)});
}

std::optional<std::string> SqlEntityRepo::assistant_hospital(std::string_view id) {
  static constexpr sql::Query kFind = "SELECT hospital_id FROM assistants WHERE id = ?";
  std::optional<std::string> hospital;
  db_.run(kFind, {id}, [&](const sql::Row& row) { hospital = row.text(0); });
  return hospital;
}

}  // namespace billing
