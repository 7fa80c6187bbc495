#include "storage/sqlite/wal_write_batching.hpp"

#include <atomic>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include <sqlite3.h>

namespace billing {
namespace {

// Up to this many bytes wait in memory; a larger commit is written in several calls. Below
// 128 KiB: the unix VFS writes at most 128 KiB - 1 bytes a call (it masks the length to 17 bits).
constexpr std::size_t kMostPending = 120 << 10;

std::atomic<std::uint64_t> writes_asked{0};
std::atomic<std::uint64_t> writes_made{0};

sqlite3_vfs* underlying = nullptr;

// A WAL file: our methods in front, the underlying VFS's file right after it.
struct WalFile {
  sqlite3_file base;
  sqlite3_file* real;
  std::string* pending;  // bytes not written yet, for the file from pending_at on
  sqlite3_int64 pending_at;
};

WalFile& wal(sqlite3_file* file) {
  return *reinterpret_cast<WalFile*>(file);
}
sqlite3_file* real(sqlite3_file* file) {
  return wal(file).real;
}

int flush(sqlite3_file* file) {
  WalFile& f = wal(file);
  if (f.pending->empty()) return SQLITE_OK;
  const int rc = f.real->pMethods->xWrite(f.real, f.pending->data(),
                                          static_cast<int>(f.pending->size()), f.pending_at);
  writes_made.fetch_add(1, std::memory_order_relaxed);
  f.pending->clear();
  return rc;
}

int wal_write(sqlite3_file* file, const void* data, int size, sqlite3_int64 offset) {
  writes_asked.fetch_add(1, std::memory_order_relaxed);
  WalFile& f = wal(file);
  const auto bytes = static_cast<std::size_t>(size);
  const bool follows = offset == f.pending_at + static_cast<sqlite3_int64>(f.pending->size());
  try {  // no exception may cross SQLite's C frames
    if (!f.pending->empty() && follows && f.pending->size() + bytes <= kMostPending) {
      f.pending->append(static_cast<const char*>(data), bytes);
      return SQLITE_OK;
    }
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    if (bytes > kMostPending) {
      writes_made.fetch_add(1, std::memory_order_relaxed);
      return f.real->pMethods->xWrite(f.real, data, size, offset);
    }
    f.pending->assign(static_cast<const char*>(data), bytes);
    f.pending_at = offset;
    return SQLITE_OK;
  } catch (const std::bad_alloc&) {
    return SQLITE_IOERR_NOMEM;
  }
}

int wal_close(sqlite3_file* file) {
  const int flushed = flush(file);
  const int rc = real(file)->pMethods->xClose(real(file));
  delete wal(file).pending;
  return flushed != SQLITE_OK ? flushed : rc;
}

// The underlying file's method `Method`, as it is.
template <auto Method, class Result, class... Args>
Result forwarded(sqlite3_file* file, Args... args) {
  return (real(file)->pMethods->*Method)(real(file), args...);
}
// The same once the pending bytes are written: for everything that reads, sizes, syncs or
// controls the file.
template <auto Method, class... Args>
int flushed(sqlite3_file* file, Args... args) {
  const int rc = flush(file);
  return rc != SQLITE_OK ? rc : forwarded<Method, int>(file, args...);
}

using M = sqlite3_io_methods;
constexpr M kWalMethods = {
    3,
    wal_close,
    flushed<&M::xRead>,
    wal_write,
    flushed<&M::xTruncate>,
    flushed<&M::xSync>,
    flushed<&M::xFileSize>,
    forwarded<&M::xLock>,
    forwarded<&M::xUnlock>,
    forwarded<&M::xCheckReservedLock>,
    flushed<&M::xFileControl>,
    forwarded<&M::xSectorSize>,
    forwarded<&M::xDeviceCharacteristics>,
    forwarded<&M::xShmMap>,
    forwarded<&M::xShmLock>,
    forwarded<&M::xShmBarrier>,
    forwarded<&M::xShmUnmap>,
    flushed<&M::xFetch>,
    forwarded<&M::xUnfetch>,
};

// A WAL file gets our methods in front of the underlying one; any other file is the underlying
// VFS's own, opened where SQLite put it, with no step in between.
int open_file(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  if (!(flags & SQLITE_OPEN_WAL))
    return underlying->xOpen(underlying, name, file, flags, out_flags);
  WalFile& f = wal(file);
  f.base.pMethods = nullptr;  // SQLite calls xClose only if xOpen set methods
  f.real = reinterpret_cast<sqlite3_file*>(&f + 1);
  const int rc = underlying->xOpen(underlying, name, f.real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (f.real->pMethods) f.real->pMethods->xClose(f.real);
    return rc;
  }
  if (f.real->pMethods->iVersion < 3) {  // every VFS SQLite ships with has version 3
    f.real->pMethods->xClose(f.real);
    return SQLITE_CANTOPEN;
  }
  f.pending = new (std::nothrow) std::string;
  if (!f.pending) {
    f.real->pMethods->xClose(f.real);
    return SQLITE_IOERR_NOMEM;
  }
  f.pending_at = 0;
  f.base.pMethods = &kWalMethods;
  return SQLITE_OK;
}

sqlite3_vfs* make_vfs() {
  underlying = sqlite3_vfs_find(nullptr);
  if (!underlying) throw std::runtime_error("SQLite has no default VFS");
  static sqlite3_vfs vfs;
  // The underlying VFS's methods and app data, so that they run as they would for it.
  std::memcpy(&vfs, underlying, sizeof(vfs));
  vfs.pNext = nullptr;
  vfs.zName = "billing-wal-write-batching";
  vfs.szOsFile = static_cast<int>(sizeof(WalFile)) + underlying->szOsFile;
  vfs.xOpen = open_file;
  if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK)
    throw std::runtime_error("cannot register SQLite's WAL write batching VFS");
  return &vfs;
}

}  // namespace

const char* wal_write_batching_vfs() {
  static const sqlite3_vfs* vfs = make_vfs();
  return vfs->zName;
}

WalWriteCounts wal_write_counts() {
  return {writes_asked.load(std::memory_order_relaxed),
          writes_made.load(std::memory_order_relaxed)};
}

}  // namespace billing
