#pragma once
// Group commit for Db::transact_grouped: units queue from any thread into the lane their affinity
// picks; the lane's writer takes every unit waiting there at that moment, runs them inside one
// transaction (again, each in a savepoint of its own, if one throws), commits once, then resumes
// each unit's caller on its own executor. SQLite has one lane (one writer); PostgreSQL several,
// each on its own connection, so that the round trips of one batch overlap with another's.
// A batch runs its units in ascending affinity (in arrival order where equal). Units that lock
// a row keyed as their affinity (webhook events: their owner's) then lock such rows in one order
// in every lane and every replica, and two batches cannot deadlock on them.
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "core/db.hpp"
#include "kit/function_ref.hpp"
#include "storage/sql.hpp"

namespace billing {

struct SqlBatch;

class GroupCommit {
 public:
  // Batches run on `writers` (at least one thread per lane, or one thread for all when they share
  // one connection); `connection(lane)` is the lane's connection, asked for once per batch on the
  // thread that runs it, so a backend can reconnect a broken one.
  // After each commit, on the writer, `committed` gets the owners whose plan the batch saved.
  GroupCommit(boost::asio::thread_pool& writers, std::size_t lanes,
              std::function<sql::Connection&(std::size_t lane)> connection,
              std::function<void(std::span<const EntityRef>)> committed);

  // Runs `work` in the next batch of the lane `affinity` picks, after `prepare` if not empty (in
  // a batch of several, after every unit's `prepare`: Db::transact_grouped); returns after that
  // batch commits, rethrowing what `work` or `prepare` threw, or what the commit threw.
  boost::asio::awaitable<void> run(FunctionRef<void(Tx&)> work, std::size_t affinity,
                                   const std::function<bool(Tx&)>& prepare);

 private:
  struct Unit {
    FunctionRef<void(Tx&)> work;
    FunctionRef<bool(Tx&)> prepare;  // may be empty
    std::size_t affinity;
    std::function<void(std::exception_ptr)> done;  // resumes the caller on its executor
    std::exception_ptr error;
  };

  struct Lane {
    std::mutex mutex;
    std::vector<Unit> waiting;
    bool batch_posted = false;  // a batch of this lane is queued or running: one at a time
  };

  void enqueue(std::size_t lane, Unit unit);
  void run_next_batch(std::size_t lane);                          // on a writer
  void commit_batch(std::size_t lane, std::vector<Unit>& batch);  // sets each unit's error
  // Runs the unit's work (after its prepare, unless `prepared`), adding the owners whose plan it
  // saved; with `batch`, leaving there what it writes for the batch's end.
  static void run_unit(sql::Connection& connection, Unit& unit,
                       std::vector<EntityRef>& saved_owners, SqlBatch* batch, bool prepared);
  // Runs the prepares of batch[from], batch[from + 1], ... up to and including the first that
  // will lock more as its unit works (returns false), with `running` on the one that runs;
  // returns the index after the last one prepared.
  static std::size_t prepare_ahead(sql::Connection& connection, std::vector<Unit>& batch,
                                   std::size_t from, SqlBatch& writes, const Unit*& running);
  // The batch as one transaction, committed; false, rolled back, if anything threw (the unit
  // that threw has its error).
  static bool run_together(sql::Connection& connection, std::vector<Unit>& batch,
                           std::vector<EntityRef>& saved_owners);
  // The batch as one transaction, each unit in a savepoint of its own: a unit that throws is
  // undone alone and has its error. Not committed.
  static void run_in_savepoints(sql::Connection& connection, std::vector<Unit>& batch,
                                std::vector<EntityRef>& saved_owners);

  boost::asio::thread_pool& writers_;
  std::function<sql::Connection&(std::size_t lane)> connection_;
  std::function<void(std::span<const EntityRef>)> committed_;
  std::size_t lane_count_;
  std::unique_ptr<Lane[]> lanes_;
};

}  // namespace billing
