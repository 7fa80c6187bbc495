#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "core/db.hpp"
#include "storage/group_commit.hpp"
#include "storage/idle_connections.hpp"
#include "storage/sqlite/connection.hpp"

namespace billing {

// What names a file whatever its path: a file removed, or replaced by another, has another.
struct FileIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  bool operator==(const FileIdentity&) const = default;
};
// The identity of the file at `path`; nullopt if there is none.
std::optional<FileIdentity> file_identity(const std::string& path);

// SQLite in WAL mode. Reads run on the calling thread with a read-only connection of their
// own (a WAL reader never waits for the writer); writes queue for the one writer thread.
class SqliteDb final : public Db {
 public:
  explicit SqliteDb(std::string path);
  ~SqliteDb() override;

  void migrate() override;
  void check_storage() const override;

 protected:
  boost::asio::awaitable<void> execute(Unit unit, Work work, std::size_t affinity,
                                       PrepareWork prepare) override;

 private:
  // The writer, once the files it opened are found still at their paths (else a StorageFault).
  sql::Connection& checked_writer();

  std::string path_;
  SqliteConnection writer_connection_;
  std::optional<FileIdentity> file_ = file_identity(path_);  // of the file the writer opened
  // The write-ahead log holds the commits not yet checkpointed: removed, they are lost at the
  // next start. It exists once a connection has read or written: its identity is taken when
  // migrate() has run (before the service serves), and not checked without it.
  std::string wal_path_ = path_ + "-wal";
  std::optional<FileIdentity> wal_file_;
  boost::asio::thread_pool writer_{1};
  GroupCommit grouped_{writer_, 1,
                       [this](std::size_t) -> sql::Connection& { return checked_writer(); },
                       [this](std::span<const EntityRef> owners) { plans_committed(owners); }};
  IdleConnections<SqliteConnection> idle_readers_;
};

}  // namespace billing
