#include "storage/group_commit.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "storage/sql_tx.hpp"

namespace billing {

namespace asio = boost::asio;

asio::awaitable<void> GroupCommit::run(FunctionRef<void(Tx&)> work) {
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr)>(
      [&](auto handler) {
        auto caller = asio::make_work_guard(asio::get_associated_executor(handler));
        // std::function needs a copyable callable; the handler is move-only.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        enqueue(Unit{work, [shared, caller](std::exception_ptr error) mutable {
                       asio::post(caller.get_executor(),
                                  [shared, error] { std::move (*shared)(error); });
                       caller.reset();
                     }});
      },
      asio::use_awaitable);
}

void GroupCommit::enqueue(Unit unit) {
  bool post_batch = false;
  {
    std::lock_guard lock(mutex_);
    waiting_.push_back(std::move(unit));
    post_batch = !std::exchange(batch_posted_, true);
  }
  if (post_batch) asio::post(writer_, [this] { run_next_batch(); });
}

void GroupCommit::run_next_batch() {
  std::vector<Unit> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(waiting_);
  }
  commit_batch(batch);
  for (auto& unit : batch) unit.done(unit.error);
  // Units that queued meanwhile form the next batch, posted behind any plain write units that
  // queued too, so a stream of events never starves them.
  std::lock_guard lock(mutex_);
  if (waiting_.empty())
    batch_posted_ = false;
  else
    asio::post(writer_, [this] { run_next_batch(); });
}

void GroupCommit::commit_batch(std::vector<Unit>& batch) {
  static constexpr sql::Query kBegin{"BEGIN IMMEDIATE", "BEGIN"};
  static constexpr sql::Query kSavepoint = "SAVEPOINT grouped_unit";
  static constexpr sql::Query kRelease = "RELEASE SAVEPOINT grouped_unit";
  static constexpr sql::Query kRollbackTo = "ROLLBACK TO SAVEPOINT grouped_unit";
  sql::Connection* open = nullptr;
  try {
    sql::Connection& connection = connection_();
    open = &connection;
    connection.exec(kBegin.text(connection.dialect()));
    for (auto& unit : batch) {
      connection.run(kSavepoint, {});
      try {
        SqlTx tx(connection, true);
        unit.work(tx);
      } catch (...) {
        unit.error = std::current_exception();
        connection.run(kRollbackTo, {});
      }
      connection.run(kRelease, {});
    }
    connection.exec("COMMIT");
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

}  // namespace billing
