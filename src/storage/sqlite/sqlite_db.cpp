#include "storage/sqlite/sqlite_db.hpp"

#include "kit/offload.hpp"
#include "storage/migrations.hpp"
#include "storage/sql_tx.hpp"
#include "storage/transactions.hpp"

namespace billing {

SqliteDb::SqliteDb(std::string path)
    : Db(DbBackend::sqlite),
      path_(std::move(path)),
      writer_connection_(path_, SqliteConnection::Mode::read_write) {}

SqliteDb::~SqliteDb() {
  writer_.join();
}

void SqliteDb::migrate() {
  apply_migrations(writer_connection_, sqlite_migrations());
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
    run_write_unit(writer_connection_, work,
                   [this](std::span<const EntityRef> owners) { plans_committed(owners); });
  });
}

}  // namespace billing
