#include "tests/support/test_db.hpp"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "kit/crypto.hpp"
#include "storage/postgres/postgres_db.hpp"
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

std::pair<std::unique_ptr<Db>, std::unique_ptr<Db>> open_test_db_twice(const std::string& backend) {
  const auto location = new_location(backend);
  auto first = open_db(backend, location);
  first->migrate();
  return {std::move(first), open_db(backend, location)};
}

std::string unique_id(const std::string& prefix) {
  return prefix + "-" + random_hex(6);
}

}  // namespace billing::testing
