#include "storage/sqlite/connection.hpp"

#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <sqlite3.h>

#include "core/db.hpp"
#include "storage/sqlite/page_cache.hpp"
#include "storage/sqlite/wal_write_batching.hpp"

namespace billing {
namespace {

class StatementRow final : public sql::Row {
 public:
  explicit StatementRow(sqlite3_stmt* s) : s_(s) {}
  bool is_null(int column) const override { return sqlite3_column_type(s_, column) == SQLITE_NULL; }
  std::string_view text(int column) const override {
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(s_, column));
    return {data ? data : "", static_cast<std::size_t>(sqlite3_column_bytes(s_, column))};
  }
  std::int64_t integer(int column) const override { return sqlite3_column_int64(s_, column); }

 private:
  sqlite3_stmt* s_;
};

// Leaves the statement ready for its next use, whatever happened to this one.
struct ResetOnExit {
  sqlite3_stmt* s;
  ~ResetOnExit() {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
};

// Before the process opens its first connection: SQLite's memory statistics off (they take a
// global mutex on every allocation, which threads reading side by side then contend for), file
// names that are not URIs, and the page cache that skips needless walks
// (storage/sqlite/page_cache.hpp).
bool configure_sqlite() {
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  // A database path is a file name, never a URI whose parameters (psow=0, ...) change how
  // SQLite writes its files (Debian's SQLite reads URIs by default).
  sqlite3_config(SQLITE_CONFIG_URI, 0);
  install_sqlite_page_cache();
  return true;
}

}  // namespace

SqliteConnection::SqliteConnection(const std::string& path, Mode mode) {
  [[maybe_unused]] static const bool configured = configure_sqlite();
  const int flags =
      mode == Mode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  // The writer hands each commit's WAL frames to the file system in one call (see configure()
  // for the settings that VFS needs); readers write no WAL.
  const char* vfs = mode == Mode::read_only ? nullptr : wal_write_batching_vfs();
  if (sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, vfs) != SQLITE_OK) {
    const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error(fmt::format("cannot open SQLite database {}: {}", path, message));
  }
  // SQLite opens a file it may not write read-only without a word; every write would fail.
  if (mode != Mode::read_only && sqlite3_db_readonly(db_, "main") == 1) {
    close();
    throw std::runtime_error(fmt::format(
        "cannot write SQLite database {}: the file or its directory is read-only to this user",
        path));
  }
  try {
    configure(mode);
  } catch (...) {
    close();
    throw;
  }
}

void SqliteConnection::configure(Mode mode) {
  if (mode == Mode::read_only) {
    exec("PRAGMA busy_timeout = 1000; PRAGMA query_only = 1");
    return;
  }
  // WAL lets readers run beside the one writer without waiting; FULL makes a commit durable
  // before we answer 200. 1 KiB pages (a new database's; one made with SQLite's default 4 KiB
  // keeps them): a webhook event changes a row or an index entry on several pages at random, and
  // a commit writes each page it changed whole, so smaller pages halve what bench/webhooks.sh
  // writes (118 -> 57 MB) and its p99 (12-14 -> 5-7 ms) at the same events/s, with GET
  // /billing/plan as fast. A 16 MiB page cache (SQLite's default is 2 MiB) keeps the indexes
  // those events touch at random in memory (all of bench/webhooks.sh's database). Temporary
  // b-trees (sorts, RETURNING's rows) stay in memory: as files, when the writer's batch
  // statements still read their rows from JSON in order, they added 16% to what it wrote.
  // The WAL write batching VFS needs the WAL synced at every commit (FULL) and no frames written
  // before the commit (cache_spill off: a transaction larger than the cache lets it grow rather
  // than write frames early), so that every frame it holds is written by the commit's sync;
  // nothing here changes either later.
  exec(
      "PRAGMA busy_timeout = 5000; PRAGMA page_size = 1024; PRAGMA journal_mode = WAL; "
      "PRAGMA synchronous = FULL; PRAGMA cache_spill = OFF; PRAGMA foreign_keys = ON; "
      "PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY");
  // A checkpoint every 32 MiB of WAL rather than SQLite's 1,000 pages: the same plan and index
  // pages change again and again under a stream of webhook events, and a rarer checkpoint copies
  // each of them into the database once instead of many times.
  constexpr std::int64_t kCheckpointBytes = 32 << 20;
  std::int64_t page_size = 4096;
  run("PRAGMA page_size", {}, [&](const sql::Row& row) { page_size = row.integer(0); });
  exec(fmt::format("PRAGMA wal_autocheckpoint = {}", kCheckpointBytes / page_size));
}

SqliteConnection::~SqliteConnection() {
  close();
}

void SqliteConnection::close() {
  for (auto& [sql, statement] : statements_) sqlite3_finalize(statement);
  sqlite3_close(db_);
}

void SqliteConnection::fail(const char* what) const {
  const int code = sqlite3_extended_errcode(db_);
  std::string text = fmt::format("sqlite {}: {} (code {})", what, sqlite3_errmsg(db_), code);
  if (code == SQLITE_IOERR_NOMEM) throw std::runtime_error(text);  // memory, not storage
  switch (code & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      throw StorageFault(text);
    default:
      throw std::runtime_error(text);
  }
}

void SqliteConnection::exec(std::string_view script) {
  const std::string text(script);
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) fail("exec");
}

sqlite3_stmt* SqliteConnection::prepared(const char* statement) {
  auto found = statements_.find(statement);
  if (found != statements_.end()) return found->second;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, statement, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
    fail("prepare");
  statements_.emplace(statement, s);
  return s;
}

std::int64_t SqliteConnection::run(const sql::Query& query,
                                   std::initializer_list<sql::Param> params,
                                   sql::RowVisitor on_row) {
  sqlite3_stmt* s = prepared(query.text(sql::Dialect::sqlite));
  ResetOnExit reset{s};
  int index = 1;
  for (const sql::Param& p : params) {
    int rc = SQLITE_OK;
    if (const auto* text = std::get_if<std::string_view>(&p))
      rc = sqlite3_bind_text(s, index, text->data(), static_cast<int>(text->size()), SQLITE_STATIC);
    else if (const auto* number = std::get_if<std::int64_t>(&p))
      rc = sqlite3_bind_int64(s, index, *number);
    else
      rc = sqlite3_bind_null(s, index);
    if (rc != SQLITE_OK) fail("bind");
    ++index;
  }
  std::int64_t rows = 0;
  for (;;) {
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) fail("step");
    ++rows;
    if (on_row) on_row(StatementRow(s));
  }
  return sqlite3_stmt_readonly(s) ? rows : rows + sqlite3_changes(db_);
}

}  // namespace billing
