#pragma once
#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "storage/db.hpp"
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
  boost::asio::awaitable<void> execute(Unit unit, Work work) override;

 private:
  std::unique_ptr<SqliteConnection> take_reader();
  void return_reader(std::unique_ptr<SqliteConnection> reader);

  std::string path_;
  SqliteConnection writer_connection_;
  boost::asio::thread_pool writer_{1};
  // Idle read connections, taken and put back without a lock: a slot holds one or nothing.
  std::array<std::atomic<SqliteConnection*>, 16> idle_readers_{};
};

}  // namespace billing
