#include "storage/sqlite/statements.hpp"

namespace billing {

// A SQLite write unit takes the database's one write lock up front (BEGIN IMMEDIATE), so
// entity_exists needs no row lock to serialize concurrent changes.
const sql::Statements& sqlite_statements() {
  static const sql::Statements statements{
      .begin_write = "BEGIN IMMEDIATE",
      .ping = "SELECT 1",
      .entity_exists = {"SELECT 1 FROM hospitals WHERE id = ?",
                        "SELECT 1 FROM individuals WHERE id = ?"},
      .lock_entity = {"SELECT 1 FROM hospitals WHERE id = ?",
                      "SELECT 1 FROM individuals WHERE id = ?"},
      .create_entity =
          {"INSERT INTO hospitals (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
           "INSERT INTO individuals (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING"},
      .create_assistant =
          "INSERT INTO assistants (id, hospital_id, created_at) VALUES (?, ?, ?) "
          "ON CONFLICT (id) DO UPDATE SET hospital_id = excluded.hospital_id",
      .assistant_hospital = "SELECT hospital_id FROM assistants WHERE id = ?",
      .find_plan = {"SELECT id, plan_type, status, max_agents, selected_services, "
                    "stripe_customer_id, stripe_subscription_id, created_at, updated_at "
                    "FROM plans WHERE hospital_id = ?",
                    "SELECT id, plan_type, status, max_agents, selected_services, "
                    "stripe_customer_id, stripe_subscription_id, created_at, updated_at "
                    "FROM plans WHERE individual_id = ?"},
      .save_plan =
          "INSERT INTO plans (id, hospital_id, individual_id, plan_type, status, max_agents, "
          "selected_services, stripe_customer_id, stripe_subscription_id, created_at, updated_at) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
          "plan_type = excluded.plan_type, status = excluded.status, "
          "max_agents = excluded.max_agents, selected_services = excluded.selected_services, "
          "stripe_customer_id = excluded.stripe_customer_id, "
          "stripe_subscription_id = excluded.stripe_subscription_id, "
          "updated_at = excluded.updated_at",
      .append_history =
          "INSERT INTO plan_update_history (plan_id, hospital_id, individual_id, changed_by, "
          "changed_at, from_plan_type, to_plan_type, from_status, to_status, from_services, "
          "to_services, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      .history = {"SELECT plan_id, changed_by, changed_at, from_plan_type, to_plan_type, "
                  "from_status, to_status, from_services, to_services, reason "
                  "FROM plan_update_history WHERE hospital_id = ? ORDER BY id",
                  "SELECT plan_id, changed_by, changed_at, from_plan_type, to_plan_type, "
                  "from_status, to_status, from_services, to_services, reason "
                  "FROM plan_update_history WHERE individual_id = ? ORDER BY id"},
      .begin_migration = "BEGIN IMMEDIATE",
      .create_migrations_table =
          "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
          "name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT "
          "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
      .applied_migrations = "SELECT 1 FROM schema_migrations WHERE version = ?",
      .record_migration = "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
  };
  return statements;
}

}  // namespace billing
