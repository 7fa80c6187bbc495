#pragma once
// A SQLite VFS that hands a WAL's writes to the file system in one call per commit. SQLite writes
// each WAL frame with two calls (its 24-byte header, then the page), so a commit of 60 pages of
// 1 KiB costs 120 system calls; this VFS gathers a WAL's sequential writes in memory and writes
// them at once before anything else touches the file: the sync that makes the commit durable, a
// read, a truncate, a size query, a file control, a close. The database file and the
// shared-memory index are the underlying VFS's, untouched.
//
// Only for connections that write WAL frames only at commit (cache_spill = OFF) and sync the WAL
// at every commit (synchronous = FULL), on a file system that SQLite need not pad commits for
// (power-safe overwrite, the unix VFS's default; no URI may turn it off): every frame held is
// then written by the commit's sync, and SQLite shows a commit to other connections only after
// that sync. Frames written before the commit (a spill) could otherwise outlive a rollback in
// memory, or fail to be written after SQLite took them as written.
#include <cstdint>

namespace billing {

// The VFS's name for sqlite3_open_v2, registered on first use (thread-safe).
const char* wal_write_batching_vfs();

// Counts since the process started, for tests: writes SQLite asked for on WAL files, and writes
// this VFS made of them.
struct WalWriteCounts {
  std::uint64_t asked = 0;
  std::uint64_t made = 0;
};
WalWriteCounts wal_write_counts();

}  // namespace billing
