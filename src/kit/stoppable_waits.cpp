#include "kit/stoppable_waits.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace billing {

boost::asio::awaitable<bool> StoppableWaits::wait(std::chrono::milliseconds delay) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, delay);
  {
    std::lock_guard lock(mutex_);
    if (stopped_) co_return false;
    waiting_.insert(&timer);
  }
  boost::system::error_code ended_early;
  co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ended_early));
  std::lock_guard lock(mutex_);
  waiting_.erase(&timer);
  co_return !ended_early && !stopped_;
}

void StoppableWaits::stop() {
  std::lock_guard lock(mutex_);
  stopped_ = true;
  // Each timer is cancelled on its own event loop, if it still waits by then (the loop that
  // would resume its coroutine and destroy it runs this too, one handler at a time).
  for (auto* timer : waiting_)
    boost::asio::post(timer->get_executor(), [this, timer] {
      std::lock_guard again(mutex_);
      if (waiting_.contains(timer)) timer->cancel();
    });
}

bool StoppableWaits::stopped() {
  std::lock_guard lock(mutex_);
  return stopped_;
}

}  // namespace billing
