// The driver contract both backends keep (storage/sql.hpp), above all for statements run later:
// they have run once the next answer comes, a failure among them surfaces once and leaves the
// connection usable, and a unit that fails goes back to its savepoint, as group commit does.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "storage/postgres/connection.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/page_cache.hpp"
#include "storage/sqlite/sqlite_db.hpp"
#include "storage/sqlite/wal_write_batching.hpp"
#include "tests/support/test_db.hpp"

namespace billing {
namespace {

// A temporary table: each connection has its own, also on a shared PostgreSQL database.
constexpr sql::Query kInsert = "INSERT INTO probe (id, n) VALUES (?, ?)";
constexpr sql::Query kCount = "SELECT COUNT(*) FROM probe";
constexpr sql::Query kValue = "SELECT n FROM probe WHERE id = ?";
constexpr sql::Query kInsertElsewhere = "INSERT INTO probe_later (id) VALUES (?)";
constexpr sql::Query kSavepoint = "SAVEPOINT unit";
constexpr sql::Query kRollbackTo = "ROLLBACK TO SAVEPOINT unit";
constexpr sql::Query kRelease = "RELEASE SAVEPOINT unit";

class Connections : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite")
      connection = std::make_unique<SqliteConnection>(testing::make_temp_dir() + "/probe.db",
                                                      SqliteConnection::Mode::read_write);
    else
      connection = std::make_unique<PostgresConnection>(std::getenv("BILLING_TEST_POSTGRES_URL"));
    connection->exec(
        "CREATE TEMP TABLE probe (id INTEGER PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0))");
  }

  std::int64_t count() {
    std::int64_t n = -1;
    connection->run(kCount, {}, [&](const sql::Row& row) { n = row.integer(0); });
    return n;
  }
  // Queues an insert; n < 0 breaks the table's CHECK.
  void insert_later(std::int64_t id, std::int64_t n) { connection->run_later(kInsert, {id, n}); }

  std::unique_ptr<sql::Connection> connection;
};

TEST_P(Connections, StatementsRunLaterHaveRunWhenTheNextAnswerComes) {
  insert_later(1, 10);
  insert_later(2, 20);
  EXPECT_EQ(count(), 2);  // the count travels with them and sees both
  insert_later(3, 30);
  connection->settle();
  insert_later(4, 40);
  connection->exec("DELETE FROM probe WHERE id = 4");  // runs after the insert
  EXPECT_EQ(count(), 3);
  insert_later(5, 50);
  std::int64_t value = 0;
  EXPECT_EQ(connection->run(kValue, {std::int64_t{5}},
                            [&](const sql::Row& row) { value = row.integer(0); }),
            1);
  EXPECT_EQ(value, 50);  // the rows of the statement whose answer was asked for
  connection->settle();  // nothing queued: nothing to do
}

// Reads run later give their rows once the next answer has come, each to its own visitor, in
// order with what was queued around them; a failing one surfaces as a failure of the statement
// run later does.
TEST_P(Connections, ReadsRunLaterGiveTheirRowsWithTheNextAnswer) {
  insert_later(1, 10);
  std::vector<std::int64_t> seen;
  const auto keep = [&](const sql::Row& row) { seen.push_back(row.integer(0)); };
  connection->read_later(kValue, {std::int64_t{1}}, keep);  // sees the insert before it
  connection->read_later(kValue, {std::int64_t{2}}, keep);  // no row
  insert_later(2, 20);
  connection->read_later(kCount, {}, keep);
  EXPECT_EQ(connection->run(kValue, {std::int64_t{2}}, keep), 1);
  EXPECT_EQ(seen, (std::vector<std::int64_t>{10, 2, 20}));

  seen.clear();
  connection->read_later(kValue, {std::int64_t{1}}, keep);
  connection->settle();
  EXPECT_EQ(seen, (std::vector<std::int64_t>{10}));

  seen.clear();
  EXPECT_THROW(
      {
        connection->read_later("SELECT n FROM no_such_table", {}, keep);  // SQLite: here
        connection->settle();
      },
      std::runtime_error);
  EXPECT_TRUE(seen.empty());
  EXPECT_EQ(count(), 2);  // the connection goes on
}

TEST_P(Connections, AFailureSurfacesOnceAndTheConnectionGoesOn) {
  EXPECT_THROW(
      {
        insert_later(1, -1);
        insert_later(2, 20);  // after a failure, not run
        connection->settle();
      },
      std::runtime_error);
  EXPECT_NO_THROW(connection->settle());
  EXPECT_EQ(count(), 0);
  insert_later(3, 30);
  EXPECT_EQ(count(), 1);
}

// A visitor that throws (a value that does not decode, say) fails that statement only.
TEST_P(Connections, ARowVisitorThatThrowsLeavesTheConnectionSound) {
  const auto throwing = [](const sql::Row&) {
    throw std::runtime_error("a row that does not read");
  };
  for (std::int64_t round = 0; round < 3; ++round) {
    insert_later(round, 1);
    EXPECT_THROW(connection->run(kCount, {}, throwing), std::runtime_error);
  }
  insert_later(10, 1);
  connection->settle();
  EXPECT_EQ(count(), 4);
}

// Group commit's pattern: a unit in a savepoint, its last statements queued with the release.
TEST_P(Connections, AUnitThatFailsGoesBackToItsSavepointAlone) {
  connection->exec("BEGIN");
  insert_later(1, 10);
  connection->settle();
  const auto unit = [&](std::int64_t id, std::int64_t n) {
    connection->run_later(kSavepoint, {});
    try {
      insert_later(id, 0);
      insert_later(id + 100, n);
      connection->run_later(kRelease, {});
      connection->settle();
      return true;
    } catch (const std::runtime_error&) {
      sql::settle_failed_unit(*connection);
      connection->run(kRollbackTo, {});
      connection->run(kRelease, {});
      return false;
    }
  };
  EXPECT_TRUE(unit(2, 5));
  EXPECT_FALSE(unit(3, -5));
  EXPECT_TRUE(unit(4, 5));
  connection->exec("COMMIT");
  EXPECT_EQ(count(), 5);  // 1, 2, 102, 4, 104
  std::int64_t found = 0;
  EXPECT_EQ(connection->run(kValue, {std::int64_t{3}}, [&](const sql::Row&) { ++found; }), 0);
  EXPECT_EQ(found, 0);
}

// A statement is prepared on first use; one whose preparation failed, or was skipped after an
// earlier failure, is prepared again next time.
TEST_P(Connections, AStatementNotPreparedIsPreparedAgain) {
  EXPECT_THROW(
      {
        connection->run_later(kInsertElsewhere, {std::int64_t{1}});  // no such table yet
        connection->settle();
      },
      std::runtime_error);
  connection->exec("CREATE TEMP TABLE probe_later (id INTEGER PRIMARY KEY)");
  connection->run_later(kInsertElsewhere, {std::int64_t{1}});
  connection->settle();

  EXPECT_THROW(
      {
        insert_later(7, -1);
        // First use of this text, queued behind the failure.
        connection->run_later(kValue, {std::int64_t{7}});
        connection->settle();
      },
      std::runtime_error);
  insert_later(7, 70);
  std::int64_t value = 0;
  connection->run(kValue, {std::int64_t{7}}, [&](const sql::Row& row) { value = row.integer(0); });
  EXPECT_EQ(value, 70);
}

// A commit answers once it is durable, whatever the server's or the URL's settings say.
TEST_P(Connections, CommitsAreDurableWhateverTheSettingsSay) {
  const auto setting = [](sql::Connection& c, const char* query) {
    std::string value;
    c.run(query, {}, [&](const sql::Row& row) { value = row.text(0); });
    return value;
  };
  if (GetParam() == "sqlite") {
    EXPECT_EQ(setting(*connection, "PRAGMA synchronous"), "2");  // FULL
    return;
  }
  std::string url = std::getenv("BILLING_TEST_POSTGRES_URL");
  url += url.find('?') == std::string::npos ? '?' : '&';
  PostgresConnection off(url + "options=-c%20synchronous_commit%3Doff");
  EXPECT_EQ(setting(off, "SHOW synchronous_commit"), "on");
  off.reconnect();
  EXPECT_EQ(setting(off, "SHOW synchronous_commit"), "on");
  // A stronger setting (a synchronous replica's) stays.
  PostgresConnection stronger(url + "options=-c%20synchronous_commit%3Dremote_apply");
  EXPECT_EQ(setting(stronger, "SHOW synchronous_commit"), "remote_apply");
}

INSTANTIATE_TEST_SUITE_P(Backends, Connections, ::testing::ValuesIn(testing::test_backends()),
                         testing::backend_name);

std::int64_t single_integer(sql::Connection& connection, const char* name) {
  std::int64_t value = -1;
  connection.run(name, {}, [&](const sql::Row& row) { value = row.integer(0); });
  return value;
}

// A new database gets 1 KiB pages; one made with 4 KiB pages keeps them. Either checkpoints
// every 32 MiB of WAL.
TEST(SqliteConnection, PagesOfANewDatabaseAre1KiBAndCheckpointsCome32MiBApart) {
  const auto dir = testing::make_temp_dir();
  SqliteConnection fresh(dir + "/new.db", SqliteConnection::Mode::read_write);
  EXPECT_EQ(single_integer(fresh, "PRAGMA page_size"), 1024);
  EXPECT_EQ(single_integer(fresh, "PRAGMA wal_autocheckpoint"), 32768);

  sqlite3* older = nullptr;
  ASSERT_EQ(sqlite3_open(std::string(dir + "/older.db").c_str(), &older), SQLITE_OK);
  EXPECT_EQ(
      sqlite3_exec(older, "PRAGMA page_size = 4096; CREATE TABLE t (x)", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(older);
  SqliteConnection kept(dir + "/older.db", SqliteConnection::Mode::read_write);
  EXPECT_EQ(single_integer(kept, "PRAGMA page_size"), 4096);
  EXPECT_EQ(single_integer(kept, "PRAGMA wal_autocheckpoint"), 8192);
}

// The writer's VFS gathers a commit's WAL frames (two writes each) into one write, made before
// the commit's sync: a reader sees every commit at once, and a connection without that VFS finds
// everything in its place.
TEST(SqliteConnection, AWriterHandsEachCommitsWalToTheFileSystemInOneWrite) {
  const auto path = testing::make_temp_dir() + "/batched.db";
  constexpr int kCommits = 20;
  {
    SqliteConnection writer(path, SqliteConnection::Mode::read_write);
    // What the VFS needs: frames written only at commit, and synced there.
    EXPECT_EQ(single_integer(writer, "PRAGMA cache_spill"), 0);
    EXPECT_EQ(single_integer(writer, "PRAGMA synchronous"), 2);  // FULL
    writer.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
    SqliteConnection reader(path, SqliteConnection::Mode::read_only);
    const auto before = wal_write_counts();
    for (int commit = 1; commit <= kCommits; ++commit) {
      writer.exec(
          "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30) "
          "INSERT INTO t (body) SELECT hex(randomblob(250)) FROM n; COMMIT");
      EXPECT_EQ(single_integer(reader, "SELECT count(*) FROM t"), 30 * commit);
    }
    const auto after = wal_write_counts();
    EXPECT_EQ(after.made - before.made, kCommits);
    EXPECT_GT(after.asked - before.asked, 40u * kCommits);  // a header and a page a frame
    // A commit larger than one write may be (128 KiB - 1 in the unix VFS) goes in several.
    writer.exec(
        "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
        "INSERT INTO t (body) SELECT hex(randomblob(250)) FROM n; COMMIT");
    EXPECT_EQ(single_integer(reader, "SELECT count(*) FROM t"), 30 * kCommits + 2000);
    EXPECT_GT(wal_write_counts().made - after.made, 1u);
  }
  sqlite3* plain = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &plain), SQLITE_OK);
  const auto single = [&](const char* sql) {
    std::string value;
    sqlite3_exec(
        plain, sql,
        [](void* out, int, char** values, char**) {
          *static_cast<std::string*>(out) = values[0] ? values[0] : "";
          return 0;
        },
        &value, nullptr);
    return value;
  };
  EXPECT_EQ(single("SELECT count(*) FROM t"), std::to_string(30 * kCommits + 2000));
  EXPECT_EQ(single("PRAGMA integrity_check"), "ok");
  sqlite3_close(plain);
}

// Random keys split index pages out of order, which parks pages at the lock-byte page's number;
// the commits after that skip the walk of the cache, and everything reads back whole.
TEST(SqliteConnection, ACommitAfterPagesWereParkedSkipsTheWalkOfTheCache) {
  const auto path = testing::make_temp_dir() + "/parked.db";
  SqliteConnection writer(path, SqliteConnection::Mode::read_write);
  writer.exec(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL); CREATE INDEX t_k ON t (k)");
  const auto before = page_cache_counts();
  for (int commit = 0; commit < 50; ++commit) {
    writer.exec(
        "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) "
        "INSERT INTO t (k) SELECT hex(randomblob(16)) FROM n; "
        "DELETE FROM t WHERE id % 7 = 0; COMMIT");
  }
  const auto after = page_cache_counts();
  EXPECT_GT(after.parkings - before.parkings, 0u);
  EXPECT_GT(after.skipped - before.skipped, 0u);
  EXPECT_FALSE(install_sqlite_page_cache());  // once only

  // Truncations that must drop pages still do: growth rolled back (whole, or to a savepoint),
  // and another writer's commits, after which this one's cache starts again.
  const auto grow = [](const char* rows) {
    return std::string(
               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ") +
           rows + ") INSERT INTO t (k) SELECT hex(randomblob(16)) FROM n";
  };
  const auto rows = [&](sql::Connection& c) { return single_integer(c, "SELECT count(*) FROM t"); };
  const auto whole = [&](sql::Connection& c) {
    std::int64_t ok = 0;
    c.run("PRAGMA integrity_check", {},
          [&](const sql::Row& row) { ok += row.text(0) == "ok" ? 1 : 0; });
    return ok == 1 && rows(c) == single_integer(c,
                                                "SELECT count(*) FROM t INDEXED BY t_k "
                                                "WHERE k > ''");
  };
  const auto kept = rows(writer);
  writer.exec("BEGIN; " + grow("3000") + "; ROLLBACK");
  writer.exec("BEGIN; " + grow("3000") + "; COMMIT");
  EXPECT_EQ(rows(writer), kept + 3000);
  writer.exec("BEGIN; " + grow("100") + "; SAVEPOINT s; " + grow("3000") +
              "; ROLLBACK TO s; RELEASE s; COMMIT");
  EXPECT_EQ(rows(writer), kept + 3100);
  SqliteConnection other(path, SqliteConnection::Mode::read_write);
  for (int turn = 0; turn < 5; ++turn) {
    other.exec("BEGIN; " + grow("500") + "; DELETE FROM t WHERE id % 11 = 0; COMMIT");
    writer.exec("BEGIN; " + grow("500") + "; COMMIT");
    EXPECT_EQ(rows(writer), rows(other));
  }
  EXPECT_TRUE(whole(writer));
  EXPECT_TRUE(whole(other));
  SqliteConnection reader(path, SqliteConnection::Mode::read_only);
  EXPECT_TRUE(whole(reader));
}

// A write the storage refuses is a StorageFault, which health reports (core/db.hpp); a statement's
// own error (a constraint) is not.
TEST(SqliteConnection, AWriteTheStorageRefusesIsAStorageFault) {
  const std::string path = testing::make_temp_dir() + "/billing.db";
  SqliteConnection writer(path, SqliteConnection::Mode::read_write);
  writer.exec("CREATE TABLE t (id INTEGER PRIMARY KEY)");
  writer.exec("INSERT INTO t VALUES (1)");
  try {
    writer.exec("INSERT INTO t VALUES (1)");
    ADD_FAILURE() << "a duplicate key was taken";
  } catch (const StorageFault&) {
    ADD_FAILURE() << "a constraint taken for the storage's refusal";
  } catch (const std::runtime_error&) {  // the constraint's
  }
  SqliteConnection reader(path, SqliteConnection::Mode::read_only);
  EXPECT_THROW(reader.exec("INSERT INTO t VALUES (2)"), StorageFault);  // SQLITE_READONLY
}

// A migration number recorded under another name is another migration (a number reused): the
// database is refused rather than left without this build's migration of that number.
TEST(Migrations, ANumberAppliedUnderAnotherNameIsRefused) {
  const std::string path = testing::make_temp_dir() + "/billing.db";
  SqliteDb(path).migrate();
  SqliteConnection(path, SqliteConnection::Mode::read_write)
      .exec("UPDATE schema_migrations SET name = '006_something_else.sql' WHERE version = 6");
  try {
    SqliteDb(path).migrate();
    FAIL() << "migrated a database whose migration 6 is another";
  } catch (const std::runtime_error& error) {
    EXPECT_THAT(error.what(), ::testing::HasSubstr("schema migration 6 was applied to this "
                                                   "database as 006_something_else.sql"));
  }
}

}  // namespace
}  // namespace billing
