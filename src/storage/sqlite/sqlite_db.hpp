#pragma once
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "core/db.hpp"
#include "storage/group_commit.hpp"
#include "storage/idle_connections.hpp"
#include "storage/sqlite/connection.hpp"

namespace billing {

// SQLite in WAL mode. Reads run on the calling thread with a read-only connection of their
// own (a WAL reader never waits for the writer); writes queue for the one writer thread.
class SqliteDb final : public Db {
 public:
  explicit SqliteDb(std::string path);
  ~SqliteDb() override;

  void migrate() override;

 protected:
  boost::asio::awaitable<void> execute(Unit unit, Work work, std::size_t affinity,
                                       PrepareWork prepare) override;

 private:
  std::string path_;
  SqliteConnection writer_connection_;
  boost::asio::thread_pool writer_{1};
  GroupCommit grouped_{writer_, 1,
                       [this](std::size_t) -> sql::Connection& { return writer_connection_; },
                       [this](std::span<const EntityRef> owners) { plans_committed(owners); }};
  IdleConnections<SqliteConnection> idle_readers_;
};

}  // namespace billing
