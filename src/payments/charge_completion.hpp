#pragma once
// A payment's fee, net and card, filled in after its event committed when the provider's event
// named only the charge (Stripe's invoice events do; the balance transaction is another object).
// It runs apart from the webhook's answer and is retried (payments/provider_retries.hpp); what
// is still missing after that is left to `billing complete-fees`.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "core/db.hpp"
#include "kit/stoppable_waits.hpp"
#include "payments/provider.hpp"
#include "payments/provider_retries.hpp"

namespace billing {

// Why the provider's charge cannot be the payment's: another charge than its event named, or a
// fee and net that do not make up its amount (an invoice paid in parts, say). Such a fee is left
// unknown, for a look by hand, rather than recorded against an amount it is not of.
std::optional<std::string_view> charge_disagreement(const ChargeToComplete& payment,
                                                    const ChargeDetails& charge);

class ChargeCompletion {
 public:
  ChargeCompletion(Db& db, PaymentProvider& provider,
                   RetryDelays retry_delays = default_retry_delays())
      : db_(db), provider_(provider), retry_delays_(std::move(retry_delays)) {}

  // Asks the provider what charge paid the invoice and saves it, its fee, net and card, on the
  // invoice's payment (`charge_id`, the one the event named, if any, is for the logs), again
  // after each retry wait while the provider or the database fails (not when the provider's
  // error is a 4xx as the service maps them: no such charge, say). Never throws: it runs
  // detached.
  boost::asio::awaitable<void> complete(std::string invoice_id,
                                        std::optional<std::string> charge_id);
  // Ends the waits between retries, now and from now on (SIGTERM, or the end of a one-off
  // command). What is still missing is left to `billing complete-fees`.
  void stop() { waits_.stop(); }

  struct Report {
    std::size_t completed = 0;  // saved, or found saved meanwhile
    std::size_t failed = 0;     // still missing (the provider failed, or has no details)
  };
  // One attempt for each of up to `limit` payments whose fee is missing, the earliest first
  // (`billing complete-fees`).
  boost::asio::awaitable<Report> complete_missing(std::size_t limit);

 private:
  // One attempt: why the fee is not recorded (the provider has no details to give, or they
  // disagree with the payment), nothing once it is; throws what the provider or the database
  // threw.
  boost::asio::awaitable<std::optional<std::string_view>> complete_once(
      const ChargeToComplete& charge);

  Db& db_;
  PaymentProvider& provider_;
  RetryDelays retry_delays_;
  StoppableWaits waits_;
};

}  // namespace billing
