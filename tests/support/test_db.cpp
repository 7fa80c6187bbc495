#include "tests/support/test_db.hpp"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <future>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <stdexcept>

#include "kit/crypto.hpp"
#include "kit/run_blocking.hpp"
#include "storage/postgres/connection.hpp"
#include "storage/postgres/postgres_db.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/sqlite_db.hpp"

namespace billing::testing {

std::vector<std::string> test_backends() {
  std::vector<std::string> backends{"sqlite"};
  if (std::getenv("BILLING_TEST_POSTGRES_URL"))
    backends.push_back("postgres");
  else if (const char* required = std::getenv("BILLING_REQUIRE_POSTGRES");
           required && *required == '1')
    throw std::runtime_error("BILLING_REQUIRE_POSTGRES=1 but BILLING_TEST_POSTGRES_URL is not set");
  return backends;
}

std::string make_temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("billing-test-" + random_hex(8));
  std::filesystem::create_directories(dir);
  return dir.string();
}

namespace {

// A SQLite database in a new temporary directory, or the PostgreSQL test database.
std::string new_location(const std::string& backend) {
  if (backend == "sqlite") return make_temp_dir() + "/billing.db";
  return std::getenv("BILLING_TEST_POSTGRES_URL");
}

std::unique_ptr<Db> open_db(const std::string& backend, const std::string& location) {
  if (backend == "sqlite") return std::make_unique<SqliteDb>(location);
  return std::make_unique<PostgresDb>(location, 4);
}

}  // namespace

std::unique_ptr<Db> open_test_db(const std::string& backend) {
  auto db = open_db(backend, new_location(backend));
  db->migrate();
  return db;
}

std::pair<std::unique_ptr<Db>, RunSql> open_test_db_with_sql(const std::string& backend) {
  const auto location = new_location(backend);
  auto db = open_db(backend, location);
  db->migrate();
  RunSql run_sql = [backend, location](const std::string& script) {
    if (backend == "sqlite")
      SqliteConnection(location, SqliteConnection::Mode::read_write).exec(script);
    else
      PostgresConnection(location).exec(script);
  };
  return {std::move(db), std::move(run_sql)};
}

std::pair<std::unique_ptr<Db>, std::unique_ptr<Db>> open_test_db_twice(const std::string& backend) {
  const auto location = new_location(backend);
  auto first = open_db(backend, location);
  first->migrate();
  return {std::move(first), open_db(backend, location)};
}

int run_in_one_batch(Db& db, std::size_t count, std::function<void(std::size_t, Tx&)> work,
                     std::function<std::size_t(std::size_t)> affinity,
                     std::function<bool(std::size_t, Tx&)> prepare) {
  const auto affinity_of = [&](std::size_t i) { return affinity ? affinity(i) : 0; };
  // A holder unit takes the writer and keeps it until every unit is queued behind it, so that
  // none joins the holder's batch and all share the next one.
  std::promise<void> all_queued;
  std::atomic<bool> holding = false;
  std::exception_ptr holder_failed;
  std::thread holder([&, released = all_queued.get_future()] {
    try {
      run_blocking(db.transact_grouped(
          [&](Tx&) {
            holding = true;
            released.wait();
          },
          affinity_of(0)));
    } catch (...) {
      holder_failed = std::current_exception();
    }
    holding = true;  // also when it failed before it ran
  });
  while (!holding) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  boost::asio::io_context ioc;
  int failed = 0;
  for (std::size_t i = 0; i < count; ++i)
    boost::asio::co_spawn(
        ioc,
        [&, i]() -> boost::asio::awaitable<void> {
          try {
            if (prepare)
              co_await db.transact_grouped([&](Tx& tx) { work(i, tx); }, affinity_of(i),
                                           [&](Tx& tx) { return prepare(i, tx); });
            else
              co_await db.transact_grouped([&](Tx& tx) { work(i, tx); }, affinity_of(i));
          } catch (const std::exception&) {
            ++failed;
          }
        },
        boost::asio::detached);
  ioc.poll();  // each unit runs until it waits in the writer's queue
  all_queued.set_value();
  ioc.run();
  holder.join();
  if (holder_failed) std::rethrow_exception(holder_failed);
  return failed;
}

std::string unique_id(const std::string& prefix) {
  return prefix + "-" + random_hex(6);
}

}  // namespace billing::testing
