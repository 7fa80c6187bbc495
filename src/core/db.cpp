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
      const std::lock_guard lock(storage_fault_mutex_);
      storage_fault_ =
          StorageFaultSeen{fault.what(), std::chrono::steady_clock::now(), ++storage_faults_seen_};
    }
    finished(unit, DbOutcome::error, started);
    throw;
  } catch (...) {
    finished(unit, DbOutcome::error, started);
    throw;
  }
  finished(unit, DbOutcome::ok, started);
}

std::optional<Db::StorageFaultSeen> Db::storage_fault() const {
  const std::lock_guard lock(storage_fault_mutex_);
  return storage_fault_;
}

void Db::clear_storage_fault(std::uint64_t number) {
  const std::lock_guard lock(storage_fault_mutex_);
  if (storage_fault_ && storage_fault_->number == number) storage_fault_.reset();
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
