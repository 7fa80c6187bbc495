#pragma once
// Waits between a background task's retries that stop() ends at once, now and from then on
// (SIGTERM, or the end of a one-off command): a pending wait would keep its event loop, and the
// process, alive for minutes.
#include <chrono>
#include <mutex>
#include <set>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace billing {

class StoppableWaits {
 public:
  // Waits `delay` on the caller's event loop: true if it ran out, false if stop() came first
  // (or before).
  boost::asio::awaitable<bool> wait(std::chrono::milliseconds delay);
  void stop();
  bool stopped();

 private:
  std::mutex mutex_;  // over the two below
  bool stopped_ = false;
  std::set<boost::asio::steady_timer*> waiting_;
};

}  // namespace billing
