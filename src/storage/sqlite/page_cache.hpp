#pragma once
// SQLite's own page cache, with one needless walk taken out. When a b-tree split reorders its new
// pages, SQLite parks a page for a moment at the lock-byte page's number (1,048,577 for 1 KiB
// pages), far above any real page; the cache remembers that number as its largest key, and at
// the end of the transaction SQLite's truncation of the cache to the database's size then walks
// the whole hash table, one slot per cached page (7-8% of billing's time under a stream of
// webhooks). This wrapper counts the pages parked there and skips a truncation that provably has
// nothing to drop; everything else is SQLite's default cache.
#include <cstdint>

namespace billing {

// Installs the wrapper for every SQLite connection the process opens later; true if it did.
// Must run before SQLite initializes (before the first connection), once; false otherwise.
bool install_sqlite_page_cache();

// Counts since the process started, for tests: pages parked at the lock-byte page's number,
// truncations asked for, and truncations skipped.
struct PageCacheCounts {
  std::uint64_t parkings = 0;
  std::uint64_t truncations = 0;
  std::uint64_t skipped = 0;
};
PageCacheCounts page_cache_counts();

}  // namespace billing
