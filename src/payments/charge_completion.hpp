#pragma once
// A payment's fee, net and card, filled in after its event committed when the provider's event
// named only the charge (Stripe's invoice events do; the balance transaction is another object).
// It runs apart from the webhook's answer, so neither Stripe's retries nor its rate limit slow
// the webhook down; a failure is logged and leaves the payment without them.
#include <string>

#include <boost/asio/awaitable.hpp>

#include "core/db.hpp"
#include "payments/provider.hpp"

namespace billing {

class ChargeCompletion {
 public:
  ChargeCompletion(Db& db, PaymentProvider& provider) : db_(db), provider_(provider) {}

  // Asks the provider about `charge_id` and saves what it says on the invoice's payment. Never
  // throws: it runs detached.
  boost::asio::awaitable<void> complete(std::string invoice_id, std::string charge_id);

 private:
  Db& db_;
  PaymentProvider& provider_;
};

}  // namespace billing
