#include "payments/charge_completion.hpp"

#include <exception>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "kit/api_error.hpp"
#include "kit/log.hpp"
#include "payments/repo.hpp"

namespace billing {
namespace {

// What a failed attempt says in the log: a provider's ApiError carries its status only (its
// public text is fixed), anything else its message.
std::string failure_of(const std::exception& e) {
  if (const auto* api = dynamic_cast<const ApiError*>(&e))
    return "provider answered " + std::to_string(api->status);
  return e.what();
}

// `attempt` is the automatic attempt's number, none for a one-off.
void log_fee_failure(std::string_view message, const ChargeToComplete& charge,
                     std::string_view error, std::string_view attempt = {}) {
  if (attempt.empty())
    return log_event(
        spdlog::level::warn, message, "",
        {{"invoice_id", charge.invoice_id}, {"charge_id", charge.charge_id}, {"error", error}});
  log_event(spdlog::level::warn, message, "",
            {{"invoice_id", charge.invoice_id},
             {"charge_id", charge.charge_id},
             {"error", error},
             {"attempt", attempt}});
}

}  // namespace

boost::asio::awaitable<bool> ChargeCompletion::complete_once(const ChargeToComplete& charge) {
  const auto details = co_await provider_.charge_details(charge.charge_id);
  if (!details) co_return false;
  const bool saved = co_await db_.transact(
      [&](Tx& tx) { return tx.get<PaymentRepo>().complete_payment(charge.invoice_id, *details); });
  log_event(spdlog::level::info, saved ? "payment fee recorded" : "payment fee known already", "",
            {{"invoice_id", charge.invoice_id}, {"charge_id", charge.charge_id}});
  co_return true;
}

boost::asio::awaitable<bool> ChargeCompletion::wait(std::chrono::milliseconds delay) {
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

void ChargeCompletion::stop() {
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

boost::asio::awaitable<void> ChargeCompletion::complete(std::string invoice_id,
                                                        std::string charge_id) {
  const ChargeToComplete charge{std::move(invoice_id), std::move(charge_id)};
  for (std::size_t attempt = 0;; ++attempt) {
    std::string failure;
    bool worth_retrying = true;
    try {
      co_await complete_once(charge);
      co_return;
    } catch (const ApiError& e) {
      failure = failure_of(e);
      worth_retrying = e.status >= 500;
    } catch (const std::exception& e) {
      failure = failure_of(e);
    }
    const bool last = !worth_retrying || attempt == retry_delays_.size();
    log_fee_failure(last ? "payment fee not recorded" : "payment fee not recorded yet", charge,
                    failure, std::to_string(attempt + 1));
    if (last) co_return;
    if (!co_await wait(retry_delays_[attempt])) {
      log_fee_failure("payment fee not recorded", charge,
                      "stopping: left to billing complete-fees");
      co_return;
    }
  }
}

boost::asio::awaitable<ChargeCompletion::Report> ChargeCompletion::complete_missing(
    std::size_t limit) {
  const auto missing =
      co_await db_.read([&](Tx& tx) { return tx.get<PaymentRepo>().payments_without_fee(limit); });
  Report report;
  for (const auto& charge : missing) {
    try {
      if (co_await complete_once(charge)) {
        ++report.completed;
        continue;
      }
      ++report.failed;
      log_fee_failure("payment fee not recorded", charge,
                      "the payment provider gives no charge details (not Stripe?)");
    } catch (const std::exception& e) {
      ++report.failed;
      log_fee_failure("payment fee not recorded", charge, failure_of(e));
    }
  }
  co_return report;
}

}  // namespace billing
