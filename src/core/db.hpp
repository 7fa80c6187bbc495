#pragma once
// The database as the domains see it: units of work, awaited, never stalling the I/O thread.
// `read` may run on the caller's thread (a SQLite WAL read) or elsewhere; `transact` runs `fn`
// inside BEGIN/COMMIT and rolls back if it throws. Inside a unit, `Tx::get<R>()` reaches any
// repository a domain declares (entities/repo.hpp, plans/repo.hpp, ...), all in the same
// transaction; storage/ implements every one of them for both backends.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>

#include <boost/asio/awaitable.hpp>

#include "kit/metrics.hpp"

#include "core/entity.hpp"

namespace billing {

class Tx {
 public:
  virtual ~Tx() = default;

  // The repository R of this unit. Storage's one transaction class implements every domain's
  // repository, and its test suite reaches each through here, so a miss is a programming error.
  // The cross-cast is found once per class of unit and thread, then reused: a dynamic_cast to a
  // sibling base costs a few hundred nanoseconds, a measurable share of a cached read.
  template <class R>
  R& get() {
    thread_local const std::type_info* cached_class = nullptr;
    thread_local std::ptrdiff_t cached_offset = 0;
    const std::type_info& unit_class = typeid(*this);
    if (cached_class != &unit_class) {
      auto* repo = dynamic_cast<R*>(this);
      if (!repo)
        throw std::logic_error("storage/ does not implement a repository a domain asked for");
      cached_offset = reinterpret_cast<char*>(repo) - reinterpret_cast<char*>(this);
      cached_class = &unit_class;
    }
    return *reinterpret_cast<R*>(reinterpret_cast<char*>(this) + cached_offset);
  }
};

// Told, after each commit, of the owners whose plan the committed units saved: on the writer's
// thread, before those units' callers resume. A cache keyed by plan (the rate limits') drops its
// entries here; dropped any earlier, a concurrent reader could load the old plan back into it.
class PlanCommits {
 public:
  virtual ~PlanCommits() = default;
  virtual void plans_committed(std::span<const EntityRef> owners) noexcept = 0;
};

// What a backend throws for a write the storage itself refused: its disk is full, an I/O error,
// a database (or server) that takes no writes. The health check reports it until writes work
// again (Db::storage_fault).
struct StorageFault : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class DbBackend { sqlite, postgresql };
enum class DbUnit { read, write, grouped_write };
// refused: the unit threw an ApiError (a rule said no); error: anything else (the database).
enum class DbOutcome { ok, refused, error };
template <>
struct EnumNames<DbBackend> {
  static constexpr std::array<std::string_view, 2> names{"sqlite", "postgresql"};
};
template <>
struct EnumNames<DbUnit> {
  static constexpr std::array<std::string_view, 3> names{"read", "write", "grouped_write"};
};
template <>
struct EnumNames<DbOutcome> {
  static constexpr std::array<std::string_view, 3> names{"ok", "refused", "error"};
};

class Db {
 public:
  explicit Db(DbBackend backend) : backend_(backend) {}
  virtual ~Db() = default;

  // Set before the first unit runs, and dropped after the last; one watcher.
  void watch_plans(PlanCommits& watcher) { plan_watcher_ = &watcher; }
  void unwatch_plans() { plan_watcher_ = nullptr; }

  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Tx&>> read(F fn) {
    return run<F>(Unit::read, std::move(fn));
  }
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Tx&>> transact(F fn) {
    return run<F>(Unit::write, std::move(fn));
  }
  // A write unit that shares one commit with every grouped unit waiting at that moment (group
  // commit: many small durable writes for the price of one fsync). A unit that throws undoes
  // only its own changes and only its caller sees the exception: the group then runs again, each
  // unit in a savepoint of its own, so `fn` may run twice and must change nothing but the
  // database; nor may it swallow what its Tx throws (PostgreSQL would end the batch's
  // transaction with a COMMIT that rolls back). Returns once the shared commit is durable; if that
  // commit fails, every unit of the group throws. Batches form by themselves under load and hold
  // one unit when idle. Units of equal `affinity` (say, a hash of the entity they change) always
  // share a writer; a backend may run several writers (PostgreSQL does), so units that touch the
  // same rows should share an affinity, or their writers may wait on each other's row locks.
  // A batch runs its units in ascending affinity: row locks keyed as the affinity are then taken
  // in one order by every writer and replica, which therefore cannot deadlock on those rows.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Tx&>> transact_grouped(F fn,
                                                                         std::size_t affinity) {
    return run<F>(Unit::grouped_write, std::move(fn), affinity);
  }
  // The same, with `prepare`, which sends ahead what `fn` will need (locks, reads, claims that a
  // repository queues for the unit's next round trip) and runs before it, in its transaction: a
  // batch runs the `prepare` of its units before the first unit's `fn`, so that all their
  // answers come back in one round trip rather than one per unit. It returns whether `fn` will
  // take no lock it did not send ahead: one that will (found only as it runs) is where the
  // batch stops sending ahead, so that no later unit's lock comes before it (the batch's lock
  // order). Like `fn`, it may run twice, and may see, but must not depend on, what the other
  // units queued.
  template <class F, class Prepare>
  boost::asio::awaitable<std::invoke_result_t<F&, Tx&>> transact_grouped(F fn, std::size_t affinity,
                                                                         Prepare prepare) {
    return run<F>(Unit::grouped_write, std::move(fn), affinity, std::move(prepare));
  }

  // Applies pending numbered migrations. Blocking: for start-up and `billing migrate` only.
  virtual void migrate() = 0;
  // For the health check: throws when the storage is no longer what was opened (SQLite: its file
  // or write-ahead log was removed or replaced, so that writes would go to a file no restart
  // finds).
  virtual void check_storage() const {}

  // The last write the storage refused (a StorageFault), until cleared. Only a write that is
  // known to have written clears it (the health check's probe): a unit that succeeds may have
  // read only, and so have needed no space.
  struct StorageFaultSeen {
    std::string text;
    std::chrono::steady_clock::time_point at;
    std::uint64_t number = 0;  // 1 for the first seen, and so on
  };
  std::optional<StorageFaultSeen> storage_fault() const;
  // Forgets the fault numbered so, unless a newer one was seen since.
  void clear_storage_fault(std::uint64_t number);

  DbBackend backend() const { return backend_; }
  // Units by outcome, their time, and how many run now (against the pool's size: its use).
  void write_metrics(MetricsText& out) const;
  std::uint64_t units(DbUnit unit, DbOutcome outcome) const {
    return units_.value(backend_, unit, outcome);
  }

 protected:
  using Unit = DbUnit;
  using Work = std::function<void(Tx&)>;
  using PrepareWork = std::function<bool(Tx&)>;
  // `affinity` and `prepare` (which may be empty) matter to grouped writes only.
  virtual boost::asio::awaitable<void> execute(Unit unit, Work work, std::size_t affinity,
                                               PrepareWork prepare) = 0;
  // For backends, after a commit.
  void plans_committed(std::span<const EntityRef> owners) const {
    if (plan_watcher_ && !owners.empty()) plan_watcher_->plans_committed(owners);
  }

 private:
  PlanCommits* plan_watcher_ = nullptr;

  template <class F, class Prepare = std::nullptr_t>
  boost::asio::awaitable<std::invoke_result_t<F&, Tx&>> run(Unit unit, F fn,
                                                            std::size_t affinity = 0,
                                                            Prepare prepare = nullptr) {
    using Result = std::invoke_result_t<F&, Tx&>;
    PrepareWork prepare_work;
    if constexpr (!std::is_null_pointer_v<Prepare>)
      prepare_work = [&prepare](Tx& tx) { return prepare(tx); };
    if constexpr (std::is_void_v<Result>) {
      co_await measured(
          unit, [&fn](Tx& tx) { fn(tx); }, affinity, std::move(prepare_work));
    } else {
      std::optional<Result> result;
      co_await measured(
          unit, [&fn, &result](Tx& tx) { result.emplace(fn(tx)); }, affinity,
          std::move(prepare_work));
      co_return std::move(*result);
    }
  }
  // `execute`, counted and timed.
  boost::asio::awaitable<void> measured(Unit unit, Work work, std::size_t affinity,
                                        PrepareWork prepare);
  void finished(Unit unit, DbOutcome outcome, std::chrono::steady_clock::time_point started);

  mutable std::mutex storage_fault_mutex_;
  std::optional<StorageFaultSeen> storage_fault_;
  std::uint64_t storage_faults_seen_ = 0;

  const DbBackend backend_;
  CounterFamily<DbBackend, DbUnit, DbOutcome> units_{
      "billing_db_units_total",
      "Units of work run, by backend, kind and outcome",
      {"backend", "unit", "outcome"}};
  HistogramFamily<DbBackend, DbUnit> durations_{
      "billing_db_unit_duration_seconds",
      "Time a unit of work takes, waiting for a connection or the writer included",
      {"backend", "unit"}};
  GaugeFamily<DbBackend> in_flight_{"billing_db_units_in_flight",
                                    "Units of work running or waiting for a connection now",
                                    {"backend"}};
};

}  // namespace billing
