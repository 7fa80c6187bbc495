#include "storage/transactions.hpp"

#include <optional>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "kit/log.hpp"
#include "storage/sql_tx.hpp"

namespace billing {
namespace {

// Runs `work` between `begin` and COMMIT; rolls back and rethrows if it throws.
template <class F>
void in_transaction(sql::Connection& connection, const sql::Query& begin, F&& work) {
  connection.exec(begin.text(connection.dialect()));
  try {
    work();
    connection.exec("COMMIT");
  } catch (...) {
    sql::settle_failed_unit(connection);
    try {
      connection.exec("ROLLBACK");
    } catch (...) {
      // The connection is broken; the original error says more.
    }
    throw;
  }
}

}  // namespace

void run_write_unit(sql::Connection& connection, FunctionRef<void(Tx&)> work,
                    PlansCommitted committed) {
  // SQLite takes the database's one write lock up front, which also queues concurrent changes
  // to one entity (see SqlEntityRepo::entity_exists).
  static constexpr sql::Query kBegin{"BEGIN IMMEDIATE", "BEGIN"};
  SqlTx tx(connection, true);
  in_transaction(connection, kBegin, [&] { work(tx); });
  committed(tx.saved_owners());
}

void apply_migrations(sql::Connection& connection, const std::vector<Migration>& migrations) {
  static constexpr sql::Query kBegin{"BEGIN IMMEDIATE",
                                     "BEGIN; SELECT pg_advisory_xact_lock(7424726)"};
  static constexpr sql::Query kCreateTable{
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
      "name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT "
      "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
      "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"};
  static constexpr sql::Query kApplied = "SELECT name FROM schema_migrations WHERE version = ?";
  static constexpr sql::Query kRecord =
      "INSERT INTO schema_migrations (version, name) VALUES (?, ?)";
  for (const Migration& m : migrations) {
    in_transaction(connection, kBegin, [&] {
      connection.exec(kCreateTable.text(connection.dialect()));
      std::optional<std::string> applied;
      connection.run(kApplied, {std::int64_t{m.version}},
                     [&](const sql::Row& row) { applied = std::string(row.text(0)); });
      // A number applied under another name is another migration: skipping this one would
      // leave the schema without it (a number is never reused; one unused is left unused).
      if (applied && *applied != m.name)
        throw std::runtime_error(fmt::format(
            "schema migration {} was applied to this database as {}, and this build's is {}: "
            "the database was migrated by a build this one does not descend from",
            m.version, *applied, m.name));
      if (applied) return;
      connection.exec(m.sql);
      connection.run(kRecord, {std::int64_t{m.version}, m.name});
    });
  }
  // A newer build migrated it (a rolling upgrade, or a rollback): this one serves on, as its
  // schema's additions leave this build's statements working, but says so.
  static constexpr sql::Query kNewer =
      "SELECT version, name FROM schema_migrations WHERE version > ? ORDER BY version";
  if (migrations.empty()) return;
  std::string newer;
  connection.run(kNewer, {std::int64_t{migrations.back().version}}, [&](const sql::Row& row) {
    newer += fmt::format("{}{} {}", newer.empty() ? "" : ", ", row.integer(0), row.text(1));
  });
  if (!newer.empty())
    log_event(spdlog::level::warn, "the database was migrated by a newer build", "",
              {{"unknown_migrations", newer},
               {"known_up_to", std::to_string(migrations.back().version)}});
}

}  // namespace billing
