#include "storage/postgres/statements.hpp"

#include <deque>
#include <string>

#include <fmt/format.h>

namespace billing {

namespace {

// Timestamps travel as ISO 8601 text in both directions, the same spelling SQLite stores.
std::string utc(std::string_view column) {
  return fmt::format("to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", column);
}

// Statements are kept as C strings for the life of the program (sql::Statements holds pointers).
const char* kept(std::string text) {
  static std::deque<std::string> texts;
  return texts.emplace_back(std::move(text)).c_str();
}

const char* find_plan_by(std::string_view owner_column) {
  return kept(fmt::format(
      "SELECT id, plan_type, status, max_agents, selected_services, stripe_customer_id, "
      "stripe_subscription_id, {}, {} FROM plans WHERE {} = $1",
      utc("created_at"), utc("updated_at"), owner_column));
}

const char* history_by(std::string_view owner_column) {
  return kept(fmt::format(
      "SELECT plan_id, changed_by, {}, from_plan_type, to_plan_type, from_status, to_status, "
      "from_services, to_services, reason FROM plan_update_history WHERE {} = $1 ORDER BY id",
      utc("changed_at"), owner_column));
}

}  // namespace

const sql::Statements& postgres_statements() {
  static const sql::Statements statements{
      .begin_write = "BEGIN",
      .ping = "SELECT 1",
      .entity_exists = {"SELECT 1 FROM hospitals WHERE id = $1",
                        "SELECT 1 FROM individuals WHERE id = $1"},
      .lock_entity = {"SELECT 1 FROM hospitals WHERE id = $1 FOR UPDATE",
                      "SELECT 1 FROM individuals WHERE id = $1 FOR UPDATE"},
      .create_entity =
          {"INSERT INTO hospitals (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
           "INSERT INTO individuals (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING"},
      .create_assistant =
          "INSERT INTO assistants (id, hospital_id, created_at) VALUES ($1, $2, $3) "
          "ON CONFLICT (id) DO UPDATE SET hospital_id = excluded.hospital_id",
      .assistant_hospital = "SELECT hospital_id FROM assistants WHERE id = $1",
      .find_plan = {find_plan_by("hospital_id"), find_plan_by("individual_id")},
      .save_plan =
          "INSERT INTO plans (id, hospital_id, individual_id, plan_type, status, max_agents, "
          "selected_services, stripe_customer_id, stripe_subscription_id, created_at, updated_at) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO UPDATE SET "
          "plan_type = excluded.plan_type, status = excluded.status, "
          "max_agents = excluded.max_agents, selected_services = excluded.selected_services, "
          "stripe_customer_id = excluded.stripe_customer_id, "
          "stripe_subscription_id = excluded.stripe_subscription_id, "
          "updated_at = excluded.updated_at",
      .append_history =
          "INSERT INTO plan_update_history (plan_id, hospital_id, individual_id, changed_by, "
          "changed_at, from_plan_type, to_plan_type, from_status, to_status, from_services, "
          "to_services, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
      .history = {history_by("hospital_id"), history_by("individual_id")},
      // Replicas starting together apply migrations one at a time.
      .begin_migration = "BEGIN; SELECT pg_advisory_xact_lock(7424726)",
      .create_migrations_table =
          "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
          "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
      .applied_migrations = "SELECT 1 FROM schema_migrations WHERE version = $1",
      .record_migration = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
  };
  return statements;
}

}  // namespace billing
