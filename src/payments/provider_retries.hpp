#pragma once
// Work that asks the payment provider apart from any request (a payment's fee, a subscription's
// state), so that neither the provider's retries nor its rate limit slow a webhook down: tried
// again after each of a few waits over some minutes while the provider or the database fails,
// not after a 4xx as the service maps the provider's errors (no such object), and cut short by
// StoppableWaits::stop().
#include <chrono>
#include <cstddef>
#include <exception>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "kit/api_error.hpp"
#include "kit/stoppable_waits.hpp"

namespace billing {

using RetryDelays = std::vector<std::chrono::milliseconds>;

// After a failure, the provider is asked again after each of these waits in turn.
inline RetryDelays default_retry_delays() {
  return {std::chrono::seconds(1), std::chrono::seconds(10), std::chrono::minutes(1),
          std::chrono::minutes(5)};
}

// What a failed attempt says in the log: a provider's ApiError carries its status only (its
// public text is fixed), anything else its message.
std::string provider_failure(const std::exception& e);

struct RetryFailure {
  std::string error;
  std::size_t attempt = 1;  // the failed attempt's number
  bool final = false;       // no attempt follows
  bool stopped = false;     // stop() ended the wait before the next one
};

// Runs `attempt()` (an awaitable) until it returns, again after each wait of `delays` in turn
// while it fails with something worth retrying; `on_failure(RetryFailure)` hears of each failure.
template <class Attempt, class OnFailure>
boost::asio::awaitable<void> retry_provider_work(StoppableWaits& waits, const RetryDelays& delays,
                                                 Attempt attempt, OnFailure on_failure) {
  for (std::size_t n = 0;; ++n) {
    RetryFailure failure{.attempt = n + 1};
    bool worth_retrying = true;
    try {
      co_await attempt();
      co_return;
    } catch (const ApiError& e) {
      failure.error = provider_failure(e);
      worth_retrying = e.status >= 500;
    } catch (const std::exception& e) {
      failure.error = provider_failure(e);
    }
    failure.final = !worth_retrying || n == delays.size();
    on_failure(failure);
    if (failure.final) co_return;
    if (!co_await waits.wait(delays[n])) {
      on_failure(
          RetryFailure{.error = "stopping", .attempt = n + 1, .final = true, .stopped = true});
      co_return;
    }
  }
}

}  // namespace billing
