#pragma once
// Databases for tests: SQLite in a fresh temporary directory, and PostgreSQL at
// BILLING_TEST_POSTGRES_URL when it is set (scripts/test.sh starts one and sets it).
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/db.hpp"

namespace billing::testing {

// "sqlite", plus "postgres" when BILLING_TEST_POSTGRES_URL is set. Fails the run if
// BILLING_REQUIRE_POSTGRES=1 and it is not.
std::vector<std::string> test_backends();

// A migrated database of that backend. PostgreSQL databases are shared, so tests use unique ids.
std::unique_ptr<Db> open_test_db(const std::string& backend);

// Runs a script on the database `open_test_db_with_sql` made, beside the Db's own connections
// (a trigger a test injects, say).
using RunSql = std::function<void(const std::string& script)>;
std::pair<std::unique_ptr<Db>, RunSql> open_test_db_with_sql(const std::string& backend);

// Runs `count` grouped units of `db` on one writer, all queued while another unit holds it, so
// that they share one commit batch: unit i runs work(i, tx), queued i-th with affinity(i) (0 by
// default) and prepare(i, tx) as its prepare, if given. Only the writer of affinity(0) is held:
// every affinity(i) must map to it (be equal, or a multiple of every lane count, such as 720720).
// Returns how many threw.
int run_in_one_batch(Db& db, std::size_t count, std::function<void(std::size_t, Tx&)> work,
                     std::function<std::size_t(std::size_t)> affinity = {},
                     std::function<bool(std::size_t, Tx&)> prepare = {});

// Two handles on one migrated database, as two replicas of the service have.
std::pair<std::unique_ptr<Db>, std::unique_ptr<Db>> open_test_db_twice(const std::string& backend);

// Names the test variants after their backend: Backends/Storage.Pings/sqlite.
inline std::string backend_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

// An id no other test uses: prefix + random suffix.
std::string unique_id(const std::string& prefix);

// A new empty directory under the system's temporary directory.
std::string make_temp_dir();

}  // namespace billing::testing
