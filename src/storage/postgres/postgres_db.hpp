#pragma once
#include <memory>
#include <string>

#include <boost/asio/thread_pool.hpp>

#include "core/db.hpp"
#include "storage/group_commit.hpp"
#include "storage/idle_connections.hpp"
#include "storage/postgres/connection.hpp"

namespace billing {

// PostgreSQL through libpq. Every unit runs on a small pool of database threads, one
// connection each, so a slow query never holds up the threads that serve sockets.
class PostgresDb final : public Db {
 public:
  PostgresDb(std::string url, std::size_t connections);
  ~PostgresDb() override;

  void migrate() override;

 protected:
  boost::asio::awaitable<void> execute(Unit unit, Work work, std::size_t affinity,
                                       PrepareWork prepare) override;

 private:
  std::unique_ptr<PostgresConnection> take_connection();
  void run_unit(Unit unit, const Work& work);
  PostgresConnection& group_writer_connection(std::size_t lane);  // on a group writer

  std::string url_;
  IdleConnections<PostgresConnection> idle_;
  boost::asio::thread_pool pool_;
  // Grouped units (group commit) have writer lanes of their own, each with a thread and a
  // connection: one lane's round trips and commit overlap with the other's work. Two, not four,
  // since a batch sends its units' first statements together: fewer, larger batches then cost
  // the server less per event (bench/webhooks.sh: 1.16-1.27x the events/s of four lanes).
  static constexpr std::size_t kGroupLanes = 2;
  boost::asio::thread_pool group_writers_{kGroupLanes};
  std::unique_ptr<PostgresConnection> group_connections_[kGroupLanes];
  GroupCommit grouped_{
      group_writers_, kGroupLanes,
      [this](std::size_t lane) -> sql::Connection& { return group_writer_connection(lane); },
      [this](std::span<const EntityRef> owners) { plans_committed(owners); }};
};

}  // namespace billing
