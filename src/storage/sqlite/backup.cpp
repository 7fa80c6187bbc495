#include "storage/sqlite/backup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>
#include <sqlite3.h>

namespace billing {
namespace {

namespace fs = std::filesystem;

struct Database {
  sqlite3* db = nullptr;
  ~Database() { sqlite3_close(db); }
};

[[noreturn]] void sqlite_failed(std::string_view what, const std::string& path, sqlite3* db) {
  throw std::runtime_error(
      fmt::format("{} {}: {}", what, path, db ? sqlite3_errmsg(db) : "out of memory"));
}

[[noreturn]] void system_failed(std::string_view what, const std::string& path) {
  throw std::system_error(errno, std::generic_category(), fmt::format("{} {}", what, path));
}

void open(Database& database, const std::string& path, int flags, const char* pragmas) {
  if (sqlite3_open_v2(path.c_str(), &database.db, flags, nullptr) != SQLITE_OK ||
      sqlite3_exec(database.db, pragmas, nullptr, nullptr, nullptr) != SQLITE_OK)
    sqlite_failed("cannot open", path, database.db);
}

std::string directory_of(const std::string& file) {
  const auto directory = fs::path(file).parent_path();
  return directory.empty() ? "." : directory.string();
}

void sync(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) system_failed("cannot open", path);
  const int rc = fsync(fd);
  ::close(fd);
  if (rc != 0) system_failed("cannot sync", path);
}

// The temporary file the backup is written to: removed unless it became the backup.
class PartialFile {
 public:
  explicit PartialFile(const std::string& destination) : path_(destination + ".partial-XXXXXX") {
    const int fd = mkstemp(path_.data());  // mode 0600: a backup holds what the database holds
    if (fd < 0) {
      if (errno == ENOENT)
        throw std::runtime_error(
            fmt::format("cannot write the backup to {}: the directory {} does not exist",
                        destination, directory_of(destination)));
      system_failed("cannot create", path_);
    }
    ::close(fd);
  }
  ~PartialFile() {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;

  const std::string& path() const { return path_; }
  void rename_to(const std::string& destination) {
    if (std::rename(path_.c_str(), destination.c_str()) != 0)
      system_failed("cannot rename the backup to", destination);
    path_.clear();
  }

 private:
  std::string path_;
};

// Whether `destination` is the database or a file SQLite keeps beside it (its write-ahead log,
// shared memory, rollback journal), existing or not: a backup renamed over the live log loses
// what the log holds, and one left where the log goes would be replayed into the database.
bool a_database_file(const std::string& source, const std::string& destination) {
  std::error_code ec;
  const auto target = fs::weakly_canonical(destination, ec);
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string file = source + suffix;
    std::error_code file_ec;
    if (fs::equivalent(file, destination, file_ec)) return true;
    const auto canonical = fs::weakly_canonical(file, file_ec);
    if (!ec && !file_ec && canonical == target) return true;
  }
  return false;
}

}  // namespace

SqliteBackupResult backup_sqlite(const std::string& source, const std::string& destination) {
  std::error_code ec;
  if (!fs::is_regular_file(source, ec))
    throw std::runtime_error(fmt::format("no SQLite database at {}", source));
  if (a_database_file(source, destination))
    throw std::runtime_error(
        fmt::format("cannot back up {0} onto itself or the files beside it ({0}-wal, {0}-shm, "
                    "{0}-journal): name another file with --to",
                    source));
  PartialFile partial(destination);
  SqliteBackupResult result;
  {
    // Read-write without create, so that a database whose -wal and -shm files are gone (the
    // service stopped) still opens; query_only keeps this connection from writing anyway.
    Database from;
    open(from, source, SQLITE_OPEN_READWRITE, "PRAGMA busy_timeout = 5000; PRAGMA query_only = 1");
    // No journal, no sync per page: until it is complete the copy is only a temporary file,
    // synced once below.
    Database to;
    open(to, partial.path(), SQLITE_OPEN_READWRITE,
         "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF");
    sqlite3_backup* backup = sqlite3_backup_init(to.db, "main", from.db, "main");
    if (!backup) sqlite_failed("cannot start the backup into", partial.path(), to.db);
    // All pages in one step, so in one read transaction: one snapshot, holding every commit made
    // before it began. In WAL mode that reader and the service's writer never wait for each
    // other. Several smaller steps would each take a new snapshot, and the backup would start
    // over whenever the service committed in between: under steady writes it might never end.
    const int rc = sqlite3_backup_step(backup, -1);
    result.pages = sqlite3_backup_pagecount(backup);
    sqlite3_backup_finish(backup);
    if (rc != SQLITE_DONE)
      throw std::runtime_error(fmt::format("backup of {} failed: {}", source, sqlite3_errstr(rc)));
  }
  sync(partial.path(), O_RDONLY);
  result.bytes = static_cast<std::int64_t>(fs::file_size(partial.path()));
  partial.rename_to(destination);
  // The rename itself is durable only once the directory is.
  sync(directory_of(destination), O_RDONLY | O_DIRECTORY);
  return result;
}

}  // namespace billing
