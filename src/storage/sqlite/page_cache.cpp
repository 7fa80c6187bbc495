#include "storage/sqlite/page_cache.hpp"

#include <algorithm>
#include <atomic>
#include <new>

#include <sqlite3.h>

namespace billing {
namespace {

// SQLite's PENDING_BYTE: the lock-byte page is the page that holds it.
constexpr unsigned kLockBytePosition = 0x40000000;

sqlite3_pcache_methods2 inner{};
std::atomic<std::uint64_t> parkings{0};
std::atomic<std::uint64_t> truncations{0};
std::atomic<std::uint64_t> skipped{0};

struct Cache {
  sqlite3_pcache* inner;
  unsigned parked_key;   // the lock-byte page's number
  unsigned parked = 0;   // pages at parked_key now
  unsigned max_key = 0;  // no page but the parked ones has a larger key
};

Cache& cache(sqlite3_pcache* p) {
  return *reinterpret_cast<Cache*>(p);
}

int init(void*) {
  return inner.xInit(inner.pArg);
}
void shutdown(void*) {
  inner.xShutdown(inner.pArg);
}

sqlite3_pcache* create(int page_size, int extra_size, int purgeable) {
  auto* c = new (std::nothrow) Cache{
      .inner = nullptr, .parked_key = kLockBytePosition / static_cast<unsigned>(page_size) + 1};
  if (!c) return nullptr;
  c->inner = inner.xCreate(page_size, extra_size, purgeable);
  if (!c->inner) {
    delete c;
    return nullptr;
  }
  return reinterpret_cast<sqlite3_pcache*>(c);
}

void destroy(sqlite3_pcache* p) {
  inner.xDestroy(cache(p).inner);
  delete &cache(p);
}

sqlite3_pcache_page* fetch(sqlite3_pcache* p, unsigned key, int create_flag) {
  Cache& c = cache(p);
  sqlite3_pcache_page* page = inner.xFetch(c.inner, key, create_flag);
  // Only pages that exist raise the bound (SQLite looks for a page at the parked key, finding
  // none, before it parks one there). One fetched at the parked key, the lock-byte page itself,
  // counts as a real page: nothing is skipped until a truncation drops it.
  if (page) c.max_key = std::max(c.max_key, key);
  return page;
}

void rekey(sqlite3_pcache* p, sqlite3_pcache_page* page, unsigned old_key, unsigned new_key) {
  Cache& c = cache(p);
  inner.xRekey(c.inner, page, old_key, new_key);
  if (new_key == c.parked_key) {
    ++c.parked;
    parkings.fetch_add(1, std::memory_order_relaxed);
  } else {
    c.max_key = std::max(c.max_key, new_key);
  }
  if (old_key == c.parked_key && c.parked > 0) --c.parked;
}

void truncate(sqlite3_pcache* p, unsigned limit) {
  Cache& c = cache(p);
  truncations.fetch_add(1, std::memory_order_relaxed);
  if (c.parked == 0 && c.max_key < limit) {  // no page has a key of `limit` or more
    skipped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  inner.xTruncate(c.inner, limit);
  if (limit > 0) c.max_key = std::min(c.max_key, limit - 1);
  if (c.parked_key >= limit) c.parked = 0;
}

void cache_size(sqlite3_pcache* p, int size) {
  inner.xCachesize(cache(p).inner, size);
}
int page_count(sqlite3_pcache* p) {
  return inner.xPagecount(cache(p).inner);
}
void unpin(sqlite3_pcache* p, sqlite3_pcache_page* page, int discard) {
  inner.xUnpin(cache(p).inner, page, discard);
}
void shrink(sqlite3_pcache* p) {
  inner.xShrink(cache(p).inner);
}

}  // namespace

bool install_sqlite_page_cache() {
  // Once: asked again, SQLite would hand back this wrapper as the cache to wrap.
  if (inner.xFetch) return false;
  if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &inner) != SQLITE_OK) return false;
  static sqlite3_pcache_methods2 methods{inner.iVersion, nullptr,    init,  shutdown, create,
                                         cache_size,     page_count, fetch, unpin,    rekey,
                                         truncate,       destroy,    shrink};
  return sqlite3_config(SQLITE_CONFIG_PCACHE2, &methods) == SQLITE_OK;
}

PageCacheCounts page_cache_counts() {
  return {parkings.load(std::memory_order_relaxed), truncations.load(std::memory_order_relaxed),
          skipped.load(std::memory_order_relaxed)};
}

}  // namespace billing
