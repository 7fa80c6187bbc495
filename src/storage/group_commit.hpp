#pragma once
// Group commit for Db::transact_grouped: units queue from any thread; the one writer takes every
// unit waiting at that moment, runs each in a savepoint of its own inside one transaction,
// commits once, then resumes each unit's caller on its own executor.
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "core/db.hpp"
#include "kit/function_ref.hpp"
#include "storage/sql.hpp"

namespace billing {

class GroupCommit {
 public:
  // `writer` is the one thread that owns the connection `connection()` returns (called there,
  // once per batch, so a backend can reconnect a broken one).
  GroupCommit(boost::asio::thread_pool& writer, std::function<sql::Connection&()> connection)
      : writer_(writer), connection_(std::move(connection)) {}

  // Runs `work` in the next batch; returns after that batch commits, rethrowing what `work`
  // threw, or what the commit threw.
  boost::asio::awaitable<void> run(FunctionRef<void(Tx&)> work);

 private:
  struct Unit {
    FunctionRef<void(Tx&)> work;
    std::function<void(std::exception_ptr)> done;  // resumes the caller on its executor
    std::exception_ptr error;
  };

  void enqueue(Unit unit);
  void run_next_batch();                        // on the writer
  void commit_batch(std::vector<Unit>& batch);  // sets each unit's error

  boost::asio::thread_pool& writer_;
  std::function<sql::Connection&()> connection_;
  std::mutex mutex_;
  std::vector<Unit> waiting_;
  bool batch_posted_ = false;
};

}  // namespace billing
