// A check's outcome reused while fresh, errors included, and not asked for again while a check
// is on its way.
#include "kit/cached_check.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <stdexcept>

#include "kit/run_blocking.hpp"

namespace billing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

class CachedCheckTest : public ::testing::Test {
 protected:
  std::chrono::steady_clock::time_point now{};
  int checks = 0;
  bool failing = false;
  CachedCheck cached{[this]() -> asio::awaitable<void> {
                       ++checks;
                       if (failing) throw std::runtime_error("unreachable");
                       co_return;
                     },
                     5s, [this] { return now; }};

  // The outcome of one run: empty if it passed, else what it threw.
  std::string outcome() {
    try {
      run_blocking(cached.run());
      return "";
    } catch (const std::exception& e) {
      return e.what();
    }
  }
};

TEST_F(CachedCheckTest, AnOutcomeIsReusedWhileFreshThenCheckedAgain) {
  failing = true;
  EXPECT_EQ(outcome(), "unreachable");
  failing = false;
  now += 4s;
  EXPECT_EQ(outcome(), "unreachable");  // the failure, reused
  EXPECT_EQ(checks, 1);
  now += 1s;
  EXPECT_EQ(outcome(), "");
  EXPECT_EQ(checks, 2);
  failing = true;
  now += 4s;
  EXPECT_EQ(outcome(), "");  // the pass, reused
  EXPECT_EQ(checks, 2);
}

// Who asks while a check is on its way gets the last outcome at once, however old.
TEST(CachedCheck, OneCheckRunsAtATime) {
  asio::io_context ioc;
  asio::steady_timer slow_answer(ioc, std::chrono::steady_clock::time_point::max());
  std::chrono::steady_clock::time_point now{};
  int checks = 0;
  CachedCheck cached(
      [&]() -> asio::awaitable<void> {
        if (++checks == 2) co_await slow_answer.async_wait(asio::use_awaitable);
      },
      5s, [&] { return now; });
  std::vector<std::string> finished;
  const auto ask = [&](std::string who) {
    asio::co_spawn(
        ioc,
        [&, who]() -> asio::awaitable<void> {
          try {
            co_await cached.run();
          } catch (const boost::system::system_error&) {
            // the slow check's timer, cancelled: a failed check
          }
          finished.push_back(who);
        },
        asio::detached);
  };
  ask("first");
  ioc.run_one();
  now += 1h;
  ask("slow");
  ask("meanwhile");
  ioc.poll();
  EXPECT_EQ(finished, (std::vector<std::string>{"first", "meanwhile"}));
  slow_answer.cancel();
  ioc.run();
  EXPECT_EQ(finished, (std::vector<std::string>{"first", "meanwhile", "slow"}));
  EXPECT_EQ(checks, 2);
}

}  // namespace
}  // namespace billing
