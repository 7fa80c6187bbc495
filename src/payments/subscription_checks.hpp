#pragma once
// A subscription's state read from the payment provider and applied to its plan, when two of its
// customer.subscription.updated events carried the same `created` second and disagreed: nothing
// in the events orders them, so the plan may have taken the older one last (a quick lite -> pro
// -> lite, delivered reversed). The event records the tie in its own commit
// (subscription_checks); this settles it after the commit, apart from the webhook's answer,
// retried (payments/provider_retries.hpp), and a sweep settles what retries and restarts left.
//
// The provider's answer is newer than every event the plan took before it was asked, so it is
// applied as an event dated the newest of them (it wins the tie), in a unit that also takes the
// check, under the owner's lock. If the plan changed or another tie came while the provider was
// asked, the unit changes nothing and the provider is asked again.
#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
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
                     RetryDelays retry_delays = default_retry_delays(),
                     std::chrono::milliseconds sweep_interval = std::chrono::minutes(5))
      : db_(db),
        provider_(provider),
        rules_(rules),
        clock_(clock),
        retry_delays_(std::move(retry_delays)),
        sweep_interval_(sweep_interval) {}

  // Settles the subscription's check, if one is pending (once more if a tie comes meanwhile; a
  // settle of it under way here goes once more instead). Never throws: it runs detached.
  boost::asio::awaitable<void> settle(std::string subscription_id);
  // One attempt for each of up to `limit` pending checks, the earliest first, until stop(), but
  // for those a settle() here works on already; how many were attempted.
  boost::asio::awaitable<std::size_t> settle_pending(std::size_t limit);
  // settle_pending now and after every sweep interval, until stop(). Never throws.
  boost::asio::awaitable<void> sweep();
  // Ends the waits between retries and sweeps, now and from now on.
  void stop() { waits_.stop(); }

 private:
  // One attempt; throws what the provider or the database threw, or that an event or a tie came
  // while the provider was asked.
  boost::asio::awaitable<void> settle_once(const SubscriptionCheck& check);
  boost::asio::awaitable<void> settle_if_pending(const std::string& subscription_id);
  // Marks the subscription as settled here; false if it is already, whose settle is then asked to
  // go once more if `again` (a tie may have come after its last read).
  bool begin_settling(const std::string& subscription_id, bool again);
  // True when done: false (and still marked) if it was asked to go once more meanwhile and is
  // not `unwinding` (an exception).
  bool end_settling(const std::string& subscription_id, bool unwinding);
  struct Settling;

  Db& db_;
  PaymentProvider& provider_;
  EventRules rules_;
  const Clock& clock_;
  RetryDelays retry_delays_;
  std::chrono::milliseconds sweep_interval_;
  StoppableWaits waits_;
  std::mutex mutex_;  // over settling_
  // Subscriptions settled here now, each with whether it is to go once more.
  std::map<std::string, bool> settling_;
  std::optional<SubscriptionCheck> swept_up_to_;  // the last check the last sweep read, if full
};

}  // namespace billing
