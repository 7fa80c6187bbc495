#pragma once
// The outcome of a check that is costly or rate-limited (a call to another service), reused for a
// while: anyone may ask often, the checked service is asked at most once per period.
#include <chrono>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>

#include <boost/asio/awaitable.hpp>

namespace billing {

class CachedCheck {
 public:
  using Check = std::function<boost::asio::awaitable<void>()>;
  using Now = std::function<std::chrono::steady_clock::time_point()>;

  // `unknown` (not null) is thrown to who asks while a check runs and no outcome is recent.
  CachedCheck(Check check, std::chrono::steady_clock::duration fresh_for,
              std::exception_ptr unknown, Now now = std::chrono::steady_clock::now)
      : check_(std::move(check)),
        fresh_for_(fresh_for),
        unknown_(std::move(unknown)),
        now_(std::move(now)) {}

  // Returns, or throws what the check threw: the last outcome while it is younger than
  // `fresh_for`, else a new check's. One check runs at a time: who asks meanwhile gets the last
  // outcome if it is younger than twice `fresh_for`, else `unknown`. Safe from any thread.
  boost::asio::awaitable<void> run();

 private:
  struct Outcome {
    std::chrono::steady_clock::time_point at;
    std::exception_ptr error;  // null: passed
  };

  Check check_;
  std::chrono::steady_clock::duration fresh_for_;
  std::exception_ptr unknown_;
  Now now_;
  std::mutex mutex_;
  std::optional<Outcome> last_;
  bool checking_ = false;
};

}  // namespace billing
