#include "storage/sqlite/sqlite_db.hpp"

#include <sys/stat.h>

#include <stdexcept>

#include "kit/offload.hpp"
#include "storage/migrations.hpp"
#include "storage/sql_tx.hpp"
#include "storage/transactions.hpp"

namespace billing {

SqliteDb::SqliteDb(std::string path)
    : Db(DbBackend::sqlite),
      path_(std::move(path)),
      writer_connection_(path_, SqliteConnection::Mode::read_write) {}

std::optional<FileIdentity> file_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileIdentity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

namespace {

void require_same_file(const std::string& path, const std::optional<FileIdentity>& opened) {
  if (file_identity(path) != opened)
    throw StorageFault("the SQLite file " + path +
                       " was removed or replaced while the service ran: its writes would be lost "
                       "at the next start; restart the service on the right file");
}

}  // namespace

void SqliteDb::check_storage() const {
  // Two stats: cheap beside a commit's sync, and never on a read's path.
  require_same_file(path_, file_);
  if (wal_file_) require_same_file(wal_path_, wal_file_);
}

sql::Connection& SqliteDb::checked_writer() {
  check_storage();
  return writer_connection_;
}

SqliteDb::~SqliteDb() {
  writer_.join();
}

void SqliteDb::migrate() {
  apply_migrations(writer_connection_, sqlite_migrations());
  wal_file_ = file_identity(wal_path_);
}

boost::asio::awaitable<void> SqliteDb::execute(Unit unit, Work work, std::size_t affinity,
                                               PrepareWork prepare) {
  if (unit == Unit::read) {
    auto reader = idle_readers_.take();
    if (!reader)
      reader = std::make_unique<SqliteConnection>(path_, SqliteConnection::Mode::read_only);
    SqlTx tx(*reader, false);
    try {
      work(tx);
    } catch (...) {
      idle_readers_.put(
          std::move(reader));  // its statements are reset: still good for the next read
      throw;
    }
    idle_readers_.put(std::move(reader));
    co_return;
  }
  if (unit == Unit::grouped_write) {
    co_await grouped_.run(work, affinity, prepare);
    co_return;
  }
  co_await offload(writer_.get_executor(), [&] {
    run_write_unit(checked_writer(), work,
                   [this](std::span<const EntityRef> owners) { plans_committed(owners); });
  });
}

}  // namespace billing
