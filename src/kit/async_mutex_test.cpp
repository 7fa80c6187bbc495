#include "kit/async_mutex.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace billing {
namespace {

namespace asio = boost::asio;

asio::awaitable<void> pause(std::chrono::milliseconds how_long) {
  asio::steady_timer timer(co_await asio::this_coro::executor, how_long);
  co_await timer.async_wait(asio::use_awaitable);
}

// Held across a co_await, it admits one holder at a time, in the order they asked.
TEST(AsyncMutex, TakesTurnsInTheOrderAsked) {
  asio::io_context io;
  AsyncMutex mutex;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i)
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          AsyncMutex::Turn turn = co_await mutex.lock();
          order.push_back(i);
          co_await pause(std::chrono::milliseconds(2));
        },
        asio::detached);
  io.run();
  EXPECT_THAT(order, testing::ElementsAre(0, 1, 2, 3, 4));
}

// Asked for from two threads at once, it still has one holder at a time; a turn given back
// early (release()) lets the next in at once.
TEST(AsyncMutex, OneHolderAtATimeAcrossThreads) {
  asio::io_context io;
  AsyncMutex mutex;
  std::atomic<int> inside = 0;
  std::atomic<int> overlaps = 0;
  std::atomic<int> done = 0;
  for (int i = 0; i < 40; ++i)
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          AsyncMutex::Turn turn = co_await mutex.lock();
          if (++inside > 1) ++overlaps;
          co_await pause(std::chrono::milliseconds(i % 2));
          --inside;
          if (i % 3 == 0) turn.release();
          ++done;
        },
        asio::detached);
  std::thread other([&] { io.run(); });
  io.run();
  other.join();
  EXPECT_EQ(done, 40);
  EXPECT_EQ(overlaps, 0);
}

}  // namespace
}  // namespace billing
