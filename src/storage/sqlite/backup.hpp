#pragma once
#include <cstdint>
#include <string>

namespace billing {

struct SqliteBackupResult {
  std::int64_t pages = 0;
  std::int64_t bytes = 0;
};

// Copies the SQLite database at `source` (which a running service may be writing) to
// `destination` as one consistent snapshot: the copy holds every transaction committed before it
// started. It is written to a temporary file beside `destination`, synced, then renamed over it,
// so `destination` is only ever absent, the previous file or the whole backup. Throws
// std::runtime_error with a message naming the file at fault.
SqliteBackupResult backup_sqlite(const std::string& source, const std::string& destination);

}  // namespace billing
