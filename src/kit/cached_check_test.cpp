// A check's outcome reused while fresh, errors included, and not asked for again while a check
// is on its way.
#include "kit/cached_check.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
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
                     5s, std::make_exception_ptr(std::runtime_error("unknown")),
                     [this] { return now; }};

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

// Who asks while a check is on its way gets the last outcome if it is recent (younger than twice
// fresh_for), else `unknown`: a second check never starts.
TEST(CachedCheck, OneCheckRunsAtATime) {
  asio::io_context ioc;
  asio::steady_timer answer(ioc, std::chrono::steady_clock::time_point::max());
  std::chrono::steady_clock::time_point now{};
  int checks = 0;
  CachedCheck cached(
      [&]() -> asio::awaitable<void> {
        ++checks;
        boost::system::error_code cancelled;
        co_await answer.async_wait(asio::redirect_error(asio::use_awaitable, cancelled));
      },
      5s, std::make_exception_ptr(std::runtime_error("unknown")), [&] { return now; });
  std::vector<std::string> outcomes;
  const auto ask = [&](std::string who) {
    asio::co_spawn(
        ioc,
        [&, who]() -> asio::awaitable<void> {
          try {
            co_await cached.run();
            outcomes.push_back(who + ": passed");
          } catch (const std::exception& e) {
            outcomes.push_back(who + ": " + e.what());
          }
        },
        asio::detached);
  };
  const auto check_while = [&](std::string checker, std::string meanwhile) {
    ioc.restart();  // the last poll ran out of work
    ask(checker);
    ask(meanwhile);
    ioc.poll();
    answer.cancel();  // the check passes
    ioc.poll();
  };
  check_while("first", "before any outcome");
  now += 7s;
  check_while("second", "after a recent pass");
  now += 1h;
  check_while("third", "after an old pass");
  EXPECT_EQ(outcomes, (std::vector<std::string>{"before any outcome: unknown", "first: passed",
                                                "after a recent pass: passed", "second: passed",
                                                "after an old pass: unknown", "third: passed"}));
  EXPECT_EQ(checks, 3);
}

}  // namespace
}  // namespace billing
