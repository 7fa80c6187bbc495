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
  boost::asio::awaitable<void> execute(Unit unit, Work work) override;

 private:
  std::unique_ptr<PostgresConnection> take_connection();
  void run_unit(Unit unit, const Work& work);
  PostgresConnection& group_writer_connection();  // on group_writer_

  std::string url_;
  IdleConnections<PostgresConnection> idle_;
  boost::asio::thread_pool pool_;
  // Grouped units have one writer thread and connection of their own (group commit).
  boost::asio::thread_pool group_writer_{1};
  std::unique_ptr<PostgresConnection> group_connection_;
  GroupCommit grouped_{group_writer_,
                       [this]() -> sql::Connection& { return group_writer_connection(); }};
};

}  // namespace billing
