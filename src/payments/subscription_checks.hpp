#pragma once
// A subscription's state read from the payment provider and applied to its plan, when two of its
// customer.subscription.updated events carried the same `created` second and disagreed: nothing
// in the events orders them, so the plan may have taken the older one last (a quick lite -> pro
// -> lite, delivered reversed). The event records the tie in its own commit
// (subscription_checks); this settles it after the commit, apart from the webhook's answer,
// retried (payments/provider_retries.hpp). What a restart or a long outage leaves is settled at
// the next start.
#include <cstddef>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "core/db.hpp"
#include "kit/clock.hpp"
#include "kit/stoppable_waits.hpp"
#include "payments/events.hpp"
#include "payments/provider.hpp"
#include "payments/provider_retries.hpp"

namespace billing {

class SubscriptionChecks {
 public:
  SubscriptionChecks(Db& db, PaymentProvider& provider, EventRules rules, const Clock& clock,
                     RetryDelays retry_delays = default_retry_delays())
      : db_(db),
        provider_(provider),
        rules_(rules),
        clock_(clock),
        retry_delays_(std::move(retry_delays)) {}

  // Settles the subscription's check, if one is pending: applies the provider's state as an
  // event of the tied second (newer events still win). Never throws: it runs detached.
  boost::asio::awaitable<void> settle(std::string subscription_id);
  // One attempt for each of up to `limit` pending checks, the earliest first; how many were
  // settled.
  boost::asio::awaitable<std::size_t> settle_pending(std::size_t limit);
  // Ends the waits between retries, now and from now on; what is left is settled at the next
  // start.
  void stop() { waits_.stop(); }

 private:
  boost::asio::awaitable<void> settle_once(const SubscriptionCheck& check);

  Db& db_;
  PaymentProvider& provider_;
  EventRules rules_;
  const Clock& clock_;
  RetryDelays retry_delays_;
  StoppableWaits waits_;
};

}  // namespace billing
