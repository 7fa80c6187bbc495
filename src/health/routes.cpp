#include "health/routes.hpp"

#include <chrono>
#include <memory>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "health/repo.hpp"
#include "http/errors.hpp"
#include "kit/cached_check.hpp"
#include "kit/time.hpp"

namespace billing {
namespace {

// After a write the storage refused (a full disk, say), health answers 503 for this long, and
// then until a write of its own goes through: a one-row write may fit where the service's do not
// (in a page's free space, or in the write-ahead log reused), and without the hold health would
// turn 200 between the writes that still fail. A probe that fails is such a write too: probes
// come every 5 s while the storage refuses them.
constexpr auto kStorageFaultHold = std::chrono::seconds(5);
// The write of one row that tells when writes work again: at most one a second, whoever asks,
// as the route is open to all.
constexpr auto kWriteProbeFreshness = std::chrono::seconds(1);
// A probe's outcome is reused for up to twice its freshness (kit/cached_check.hpp): never
// one from before the fault it is to clear.
static_assert(kStorageFaultHold > 2 * kWriteProbeFreshness);

std::shared_ptr<CachedCheck> write_probe(Db& db) {
  return std::make_shared<CachedCheck>(
      [&db]() -> boost::asio::awaitable<void> {
        co_await db.transact([](Tx& tx) { tx.get<HealthRepo>().probe_write(); });
      },
      kWriteProbeFreshness,
      std::make_exception_ptr(std::runtime_error("a write to the database is being tried")));
}

// Throws while writes fail, as far as the service knows.
boost::asio::awaitable<void> require_writes(Db& db, CachedCheck& write_probe) {
  const auto fault = db.storage_fault();
  if (!fault) co_return;
  if (std::chrono::steady_clock::now() - fault->at < kStorageFaultHold)
    throw std::runtime_error("a write failed moments ago: " + fault->text);
  co_await write_probe.run();
  db.clear_storage_fault(fault->number);
  // Another write failed while the probe ran: that one says more.
  if (const auto newer = db.storage_fault())
    throw std::runtime_error("a write failed moments ago: " + newer->text);
}

boost::asio::awaitable<Response> get_health(Db& db, CachedCheck& write_probe, const Clock& clock) {
  try {
    co_await db.read([](Tx& tx) { tx.get<HealthRepo>().ping(); });
    co_await require_writes(db, write_probe);
    db.check_storage();
  } catch (const std::exception& error) {
    spdlog::warn("health check: database unavailable: {}", error.what());
    co_return detail_response(503, "Service unavailable");
  }
  co_return json_response(R"({"status":"healthy","timestamp":")" + iso8601(clock.now()) + "\"}");
}

}  // namespace

void add_health_routes(Router& router, Db& db, const Clock& clock) {
  router.add({Method::get, "/billing/health", Policy::open(),
              [&db, &clock, probe = write_probe(db)](const Call&) {
                return get_health(db, *probe, clock);
              }});
}

}  // namespace billing
