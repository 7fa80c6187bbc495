#include "storage/sqlite/sqlite_db.hpp"

#include "kit/offload.hpp"
#include "storage/migrations.hpp"
#include "storage/sql_repo.hpp"
#include "storage/sqlite/statements.hpp"

namespace billing {

SqliteDb::SqliteDb(std::string path)
    : path_(std::move(path)), writer_connection_(path_, SqliteConnection::Mode::read_write) {}

SqliteDb::~SqliteDb() {
  writer_.join();
  for (auto& slot : idle_readers_) delete slot.exchange(nullptr);
}

void SqliteDb::migrate() {
  apply_migrations(writer_connection_, sqlite_statements(), sqlite_migrations());
}

std::unique_ptr<SqliteConnection> SqliteDb::take_reader() {
  for (auto& slot : idle_readers_)
    if (auto* reader = slot.exchange(nullptr, std::memory_order_acquire))
      return std::unique_ptr<SqliteConnection>(reader);
  return std::make_unique<SqliteConnection>(path_, SqliteConnection::Mode::read_only);
}

void SqliteDb::return_reader(std::unique_ptr<SqliteConnection> reader) {
  for (auto& slot : idle_readers_) {
    SqliteConnection* empty = nullptr;
    if (slot.compare_exchange_strong(empty, reader.get(), std::memory_order_release)) {
      reader.release();
      return;
    }
  }  // every slot full: more readers than ever run at once; this one closes
}

boost::asio::awaitable<void> SqliteDb::execute(Unit unit, Work work) {
  if (unit == Unit::read) {
    auto reader = take_reader();
    SqlRepo repo(*reader, sqlite_statements(), false);
    try {
      work(repo);
    } catch (...) {
      return_reader(std::move(reader));  // its statements are reset: still good for the next read
      throw;
    }
    return_reader(std::move(reader));
    co_return;
  }
  co_await offload(writer_.get_executor(),
                   [&] { run_write_unit(writer_connection_, sqlite_statements(), work); });
}

}  // namespace billing
