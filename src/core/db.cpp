#include "core/db.hpp"

#include "kit/api_error.hpp"

namespace billing {

boost::asio::awaitable<void> Db::measured(Unit unit, Work work, std::size_t affinity,
                                          PrepareWork prepare) {
  const auto started = std::chrono::steady_clock::now();
  in_flight_.add(1, backend_);
  try {
    co_await execute(unit, std::move(work), affinity, std::move(prepare));
  } catch (const ApiError&) {
    finished(unit, DbOutcome::refused, started);
    throw;
  } catch (const StorageFault& fault) {
    if (unit != Unit::read) {
      const std::lock_guard lock(write_fault_mutex_);
      write_fault_ = fault.what();
      writes_failing_.store(true, std::memory_order_relaxed);
    }
    finished(unit, DbOutcome::error, started);
    throw;
  } catch (...) {
    finished(unit, DbOutcome::error, started);
    throw;
  }
  // Read first: the flag's cache line stays shared while all is well.
  if (unit != Unit::read && writes_failing_.load(std::memory_order_relaxed))
    writes_failing_.store(false, std::memory_order_relaxed);
  finished(unit, DbOutcome::ok, started);
}

void Db::check_storage() const {
  if (writes_failing()) {
    const std::lock_guard lock(write_fault_mutex_);
    throw std::runtime_error("the last write failed: " + write_fault_);
  }
  check_opened_storage();
}

void Db::finished(Unit unit, DbOutcome outcome, std::chrono::steady_clock::time_point started) {
  in_flight_.add(-1, backend_);
  units_.add(backend_, unit, outcome);
  durations_.observe(std::chrono::steady_clock::now() - started, backend_, unit);
}

void Db::write_metrics(MetricsText& out) const {
  units_.write(out);
  durations_.write(out);
  in_flight_.write(out);
}

}  // namespace billing
