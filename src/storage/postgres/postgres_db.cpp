#include "storage/postgres/postgres_db.hpp"

#include "kit/offload.hpp"
#include "storage/migrations.hpp"
#include "storage/sql_tx.hpp"
#include "storage/transactions.hpp"

namespace billing {

PostgresDb::PostgresDb(std::string url, std::size_t connections)
    : Db(DbBackend::postgresql), url_(std::move(url)), pool_(connections) {
  idle_.put(std::make_unique<PostgresConnection>(url_));  // fail fast on a bad URL
}

PostgresDb::~PostgresDb() {
  pool_.join();
  group_writers_.join();
}

void PostgresDb::migrate() {
  auto connection = take_connection();
  apply_migrations(*connection, postgres_migrations());
  idle_.put(std::move(connection));
}

std::unique_ptr<PostgresConnection> PostgresDb::take_connection() {
  auto connection = idle_.take();
  if (!connection) return std::make_unique<PostgresConnection>(url_);
  if (connection->broken()) connection->reconnect();  // the server came back
  return connection;
}

void PostgresDb::run_unit(Unit unit, const Work& work) {
  for (bool retried = false;; retried = true) {
    auto connection = take_connection();
    try {
      if (unit == Unit::read) {
        SqlTx tx(*connection, false);
        work(tx);
        connection->settle();  // nothing queued goes back to the pool
      } else {
        run_write_unit(*connection, work,
                       [this](std::span<const EntityRef> owners) { plans_committed(owners); });
      }
      idle_.put(std::move(connection));
      return;
    } catch (...) {
      if (!connection->broken()) {
        idle_.put(std::move(connection));
        throw;
      }
      // An idle connection only learns that the server restarted when it is used. A read is
      // safe to run again on a fresh one; a write is not (its COMMIT may have happened).
      if (unit == Unit::write || retried) throw;
    }
  }
}

PostgresConnection& PostgresDb::group_writer_connection(std::size_t lane) {
  auto& connection = group_connections_[lane];
  if (!connection)
    connection = take_connection();
  else if (connection->broken())
    connection->reconnect();
  return *connection;
}

boost::asio::awaitable<void> PostgresDb::execute(Unit unit, Work work, std::size_t affinity,
                                                 PrepareWork prepare) {
  if (unit == Unit::grouped_write) {
    co_await grouped_.run(work, affinity, prepare);
    co_return;
  }
  co_await offload(pool_.get_executor(), [&] { run_unit(unit, work); });
}

}  // namespace billing
