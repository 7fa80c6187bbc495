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

std::unique_ptr<Db> open_db(const std::string& backend, const std::string& sqlite_path) {
  if (backend == "sqlite") return std::make_unique<SqliteDb>(sqlite_path);
  return std::make_unique<PostgresDb>(std::getenv("BILLING_TEST_POSTGRES_URL"), 4);
}

}  // namespace

std::unique_ptr<Db> open_test_db(const std::string& backend) {
  auto db = open_db(backend, make_temp_dir() + "/billing.db");
  db->migrate();
  return db;
}

std::pair<std::unique_ptr<Db>, std::unique_ptr<Db>> open_test_db_twice(const std::string& backend) {
  const auto sqlite_path = make_temp_dir() + "/billing.db";
  auto first = open_db(backend, sqlite_path);
  first->migrate();
  return {std::move(first), open_db(backend, sqlite_path)};
}

std::string unique_id(const std::string& prefix) {
  return prefix + "-" + random_hex(6);
}

}  // namespace billing::testing
