#include "storage/group_commit.hpp"

#include <algorithm>

#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "storage/sql_tx.hpp"

namespace billing {

namespace asio = boost::asio;

GroupCommit::GroupCommit(boost::asio::thread_pool& writers, std::size_t lanes,
                         std::function<sql::Connection&(std::size_t lane)> connection,
                         std::function<void(std::span<const EntityRef>)> committed)
    : writers_(writers),
      connection_(std::move(connection)),
      committed_(std::move(committed)),
      lane_count_(lanes),
      lanes_(std::make_unique<Lane[]>(lanes)) {}

asio::awaitable<void> GroupCommit::run(FunctionRef<void(Tx&)> work, std::size_t affinity,
                                       const std::function<bool(Tx&)>& prepare) {
  const std::size_t lane = affinity % lane_count_;
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr)>(
      [&](auto handler) {
        auto caller = asio::make_work_guard(asio::get_associated_executor(handler));
        // std::function needs a copyable callable; the handler is move-only.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        const FunctionRef<bool(Tx&)> prepare_ref =
            prepare ? FunctionRef<bool(Tx&)>(prepare) : FunctionRef<bool(Tx&)>();
        enqueue(lane, Unit{work, prepare_ref, affinity,
                           [shared, caller](std::exception_ptr error) mutable {
                             asio::post(caller.get_executor(),
                                        [shared, error] { std::move (*shared)(error); });
                             caller.reset();
                           }});
      },
      asio::use_awaitable);
}

void GroupCommit::enqueue(std::size_t lane, Unit unit) {
  Lane& l = lanes_[lane];
  bool post_batch = false;
  {
    std::lock_guard lock(l.mutex);
    l.waiting.push_back(std::move(unit));
    post_batch = !std::exchange(l.batch_posted, true);
  }
  if (post_batch) asio::post(writers_, [this, lane] { run_next_batch(lane); });
}

void GroupCommit::run_next_batch(std::size_t lane) {
  Lane& l = lanes_[lane];
  std::vector<Unit> batch;
  {
    std::lock_guard lock(l.mutex);
    batch.swap(l.waiting);
  }
  std::stable_sort(batch.begin(), batch.end(),
                   [](const Unit& a, const Unit& b) { return a.affinity < b.affinity; });
  commit_batch(lane, batch);
  for (auto& unit : batch) unit.done(unit.error);
  // Units that queued meanwhile form the next batch, posted behind any plain write units that
  // queued too, so a stream of events never starves them.
  std::lock_guard lock(l.mutex);
  if (l.waiting.empty())
    l.batch_posted = false;
  else
    asio::post(writers_, [this, lane] { run_next_batch(lane); });
}

namespace {

constexpr sql::Query kBegin{"BEGIN IMMEDIATE", "BEGIN"};
constexpr sql::Query kCommit = "COMMIT";

}  // namespace

void GroupCommit::commit_batch(std::size_t lane, std::vector<Unit>& batch) {
  sql::Connection* open = nullptr;
  std::vector<EntityRef> saved_owners;  // of the units kept
  try {
    sql::Connection& connection = connection_(lane);
    open = &connection;
    // Units rarely fail: the batch first runs as one plain transaction; if a unit throws, it
    // runs again with a savepoint for each unit, so that the one that threw is undone alone.
    if (run_together(connection, batch, saved_owners)) {
      committed_(saved_owners);
      return;
    }
    // Rolled back: one unit's error is its own, and a broken connection's is everyone's.
    if (batch.size() == 1 || connection.broken()) return;
    saved_owners.clear();
    run_in_savepoints(connection, batch, saved_owners);
    connection.exec("COMMIT");
    committed_(saved_owners);
  } catch (...) {
    const auto error = std::current_exception();
    try {
      if (open) open->exec("ROLLBACK");
    } catch (...) {
      // The connection is broken; the original error says more.
    }
    for (auto& unit : batch) unit.error = error;
  }
}

void GroupCommit::run_unit(sql::Connection& connection, Unit& unit,
                           std::vector<EntityRef>& saved_owners, SqlBatch* batch, bool prepared) {
  SqlTx tx(connection, true, batch);
  if (unit.prepare && !prepared) unit.prepare(tx);
  unit.work(tx);
  saved_owners.insert(saved_owners.end(), tx.saved_owners().begin(), tx.saved_owners().end());
}

std::size_t GroupCommit::prepare_ahead(sql::Connection& connection, std::vector<Unit>& batch,
                                       std::size_t from, SqlBatch& writes, const Unit*& running) {
  for (std::size_t i = from; i < batch.size(); ++i) {
    running = &batch[i];
    if (!batch[i].prepare) continue;
    SqlTx tx(connection, true, &writes);
    if (!batch[i].prepare(tx)) return i + 1;
  }
  return batch.size();
}

bool GroupCommit::run_together(sql::Connection& connection, std::vector<Unit>& batch,
                               std::vector<EntityRef>& saved_owners) {
  const Unit* running = nullptr;
  // The units leave their plan changes, history and audit rows in `writes` (a later unit reads
  // the plans back from there), which then go out at the batch's end (on PostgreSQL as a few
  // statements for the whole batch), with the COMMIT. What a unit queues itself
  // (Connection::run_later) goes out with the next unit's first read. The units' prepares run ahead
  // of their work, so that what they queue (their locks, reads, claims and payments) goes out with
  // the first unit's first read, in one round trip; up to a unit that will lock more as it works,
  // whose later units are prepared only once it has. Outside the try: a read still queued when a
  // unit throws writes its rows here while the failed batch settles.
  SqlBatch writes;
  try {
    connection.run_later(kBegin, {});
    for (std::size_t i = 0, prepared = 0; i < batch.size(); ++i) {
      if (i == prepared) prepared = prepare_ahead(connection, batch, i, writes, running);
      running = &batch[i];
      run_unit(connection, batch[i], saved_owners, &writes, true);
    }
    running = nullptr;
    writes.write(connection);
    connection.run_later(kCommit, {});
    connection.settle();
    return true;
  } catch (...) {
    // A statement that fails here may be any unit's: the rerun in savepoints will tell, unless
    // the connection is gone.
    const bool everyones = !running || connection.broken();
    for (auto& unit : batch)
      unit.error = everyones || &unit == running ? std::current_exception() : nullptr;
  }
  sql::settle_failed_unit(connection);
  try {
    connection.exec("ROLLBACK");
  } catch (...) {
    // No transaction left to roll back (a failed COMMIT ends it), or the connection is broken,
    // which the next BEGIN will say.
  }
  return false;
}

void GroupCommit::run_in_savepoints(sql::Connection& connection, std::vector<Unit>& batch,
                                    std::vector<EntityRef>& saved_owners) {
  static constexpr sql::Query kSavepoint = "SAVEPOINT grouped_unit";
  static constexpr sql::Query kRelease = "RELEASE SAVEPOINT grouped_unit";
  static constexpr sql::Query kRollbackTo = "ROLLBACK TO SAVEPOINT grouped_unit";
  // BEGIN and each savepoint go out with the unit's first statement, and the release with its
  // last ones (Connection::run_later): a unit costs only the round trips its reads need.
  connection.run_later(kBegin, {});
  for (auto& unit : batch) {
    unit.error = nullptr;
    connection.run_later(kSavepoint, {});
    const std::size_t owners_before = saved_owners.size();
    try {
      run_unit(connection, unit, saved_owners, nullptr, false);
      connection.run_later(kRelease, {});
      connection.settle();
    } catch (...) {
      unit.error = std::current_exception();
      // Its plans were not saved.
      saved_owners.erase(saved_owners.begin() + static_cast<std::ptrdiff_t>(owners_before),
                         saved_owners.end());
      // Whatever failed, the release did not run: the savepoint is there to go back to.
      sql::settle_failed_unit(connection);
      connection.run(kRollbackTo, {});
      connection.run(kRelease, {});
    }
  }
}

}  // namespace billing
