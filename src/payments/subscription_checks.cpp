#include "payments/subscription_checks.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include <boost/json/serialize.hpp>

#include "entities/repo.hpp"
#include "kit/crypto.hpp"
#include "kit/log.hpp"
#include "payments/repo.hpp"
#include "plans/repo.hpp"

namespace billing {
namespace {

namespace json = boost::json;

// Ties are rare (two disagreeing events in one second): a sweep that finds more leaves the rest
// to the next one.
constexpr std::size_t kSweptAtOnce = 100;

// The subscription as a customer.subscription.updated event of the tied second: the fields its
// effect reads, in Stripe's shape.
std::string state_event(const Subscription& subscription, std::int64_t created) {
  json::object metadata;
  for (const auto& [key, value] : subscription.metadata) metadata[key] = value;
  json::object object{
      {"id", subscription.id},
      {"object", "subscription"},
      {"customer", subscription.customer},
      {"status", subscription.status},
      {"cancel_at_period_end", subscription.cancel_at_period_end},
      // Only whether it is set counts (not its behavior).
      {"pause_collection", subscription.collection_paused ? json::value(json::object{}) : nullptr},
      {"items",
       {{"data",
         json::array{{{"id", subscription.item_id}, {"price", {{"id", subscription.price_id}}}}}}}},
      {"metadata", std::move(metadata)}};
  return json::serialize(json::object{{"id", "evt_state_" + random_hex(12)},
                                      {"object", "event"},
                                      {"type", "customer.subscription.updated"},
                                      {"created", created},
                                      {"data", {{"object", std::move(object)}}}});
}

void log_check(spdlog::level::level_enum level, std::string_view message,
               const SubscriptionCheck& check, std::string_view key, std::string_view value) {
  log_event(level, message, "",
            {{"subscription_id", check.subscription_id},
             {"event_created", std::to_string(check.event_created)},
             {key, value}});
}

// Thrown inside the settling unit to undo it: what the provider said may be older than what
// changed while it was asked, so it is asked again.
class ChangedWhileAsked : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Thrown inside the settling unit to undo it: the check was settled meanwhile, elsewhere.
class SettledElsewhere : public std::exception {};

// What follows the subscription: the plan, or what is known of it as another subscription.
struct Followers {
  std::optional<Plan> plan;
  std::optional<OtherSubscription> other;
  friend bool operator==(const Followers&, const Followers&) = default;

  // Stripe's `created` of the newest event either took.
  std::int64_t last_event() const {
    return std::max(plan ? plan->last_event_created.value_or(0) : 0,
                    other ? other->last_event_created : 0);
  }
  const EntityRef* owner() const { return plan ? &plan->owner : other ? &other->owner : nullptr; }
};

Followers followers(Tx& tx, std::string_view subscription_id) {
  auto& plans = tx.get<PlanRepo>();
  return {plans.find_plan_by_subscription(subscription_id),
          plans.find_other_subscription(subscription_id)};
}

// The same, read again under the owner's lock (taken here unless `owner_held`).
Followers locked_followers(Tx& tx, std::string_view subscription_id, bool owner_held) {
  if (!owner_held)
    if (const auto found = followers(tx, subscription_id); found.owner())
      tx.get<EntityRepo>().entity_exists(*found.owner());
  return followers(tx, subscription_id);
}

}  // namespace

boost::asio::awaitable<void> SubscriptionChecks::settle_once(const SubscriptionCheck& check) {
  const auto before =
      co_await db_.read([&](Tx& tx) { return followers(tx, check.subscription_id); });
  const std::int64_t as_of = std::max(check.event_created, before.last_event());
  // A subscription the provider does not know (404) is another account's (a wrong key, another
  // local provider's account on the same database): the check is kept, and logged at each sweep.
  const Subscription subscription = co_await provider_.get_subscription(check.subscription_id);
  // Stripe's client refuses such an answer itself; this holds for any provider.
  if (subscription.id != check.subscription_id)
    throw std::runtime_error("the payment provider answered for another subscription");
  const std::string payload = state_event(subscription, as_of);
  StripeEvent event = parse_event(payload);
  event.from_provider = true;
  const auto now = clock_.now();
  AuditStatus outcome{};
  try {
    outcome = co_await db_.transact([&](Tx& tx) {
      // The owner's lock first, as for any event, then the check's row.
      const auto now_following =
          locked_followers(tx, check.subscription_id, prepare_event(tx, rules_, event, now));
      auto& payments = tx.get<PaymentRepo>();
      if (!payments.take_subscription_check(check)) {
        if (payments.subscription_check(check.subscription_id))
          throw ChangedWhileAsked("another tie was recorded while the provider was asked");
        throw SettledElsewhere();
      }
      if (now_following != before)
        throw ChangedWhileAsked("the plan changed while the provider was asked");
      return apply_event(tx, rules_, event, now);
    });
  } catch (const SettledElsewhere&) {
    co_return log_check(spdlog::level::info, "subscription check settled", check, "outcome",
                        "settled elsewhere");
  }
  log_check(spdlog::level::info, "subscription check settled", check, "outcome", name_of(outcome));
}

bool SubscriptionChecks::begin_settling(const std::string& subscription_id, bool again) {
  std::lock_guard lock(mutex_);
  const auto [at, added] = settling_.try_emplace(subscription_id, false);
  if (!added && again) at->second = true;  // its settle goes once more when it is done
  return added;
}

bool SubscriptionChecks::end_settling(const std::string& subscription_id, bool unwinding) {
  std::lock_guard lock(mutex_);
  const auto at = settling_.find(subscription_id);
  if (at->second && !unwinding && !waits_.stopped()) {
    at->second = false;
    return false;
  }
  settling_.erase(at);
  return true;
}

// Ends the subscription's settling however the settle ends: a settle that threw must not leave
// it marked for good.
struct SubscriptionChecks::Settling {
  SubscriptionChecks& checks;
  const std::string& id;
  bool ended = false;
  bool go_once_more() { return !(ended = checks.end_settling(id, false)); }
  ~Settling() {
    if (!ended) checks.end_settling(id, true);
  }
};

boost::asio::awaitable<void> SubscriptionChecks::settle_if_pending(
    const std::string& subscription_id) {
  const auto pending = co_await db_.read(
      [&](Tx& tx) { return tx.get<PaymentRepo>().subscription_check(subscription_id); });
  if (pending) co_await settle_once(*pending);
}

boost::asio::awaitable<void> SubscriptionChecks::settle(std::string subscription_id) {
  if (!begin_settling(subscription_id, true)) co_return;  // the settle under way goes once more
  Settling settling{*this, subscription_id};
  do {
    co_await retry_provider_work(
        waits_, retry_delays_, [&] { return settle_if_pending(subscription_id); },
        [&](const RetryFailure& f) {
          const SubscriptionCheck check{subscription_id};
          if (f.stopped)
            return log_check(spdlog::level::warn, "subscription check not settled", check, "error",
                             "stopping: left to the next sweep");
          log_check(spdlog::level::warn,
                    f.final ? "subscription check not settled: left to the next sweep"
                            : "subscription check not settled yet",
                    check, "error", f.error);
        });
  } while (settling.go_once_more());
}

boost::asio::awaitable<std::size_t> SubscriptionChecks::settle_pending(std::size_t limit) {
  // Each sweep goes on after the last check the one before saw, so that checks which never
  // settle (another account's) cannot keep the sweeps from newer ones.
  const auto checks = co_await db_.read(
      [&](Tx& tx) { return tx.get<PaymentRepo>().subscription_checks(limit, swept_up_to_); });
  swept_up_to_ = checks.size() < limit ? std::nullopt : std::optional(checks.back());
  std::size_t attempted = 0;
  for (const auto& check : checks) {
    if (waits_.stopped()) break;
    // One under way here is left to its settle (which a sweep does not ask to go once more).
    if (!begin_settling(check.subscription_id, false)) continue;
    Settling settling{*this, check.subscription_id};
    ++attempted;
    do {
      try {
        co_await settle_if_pending(check.subscription_id);
      } catch (const std::exception& e) {
        log_check(spdlog::level::warn, "subscription check not settled", check, "error",
                  provider_failure(e));
      }
    } while (settling.go_once_more());
  }
  co_return attempted;
}

boost::asio::awaitable<void> SubscriptionChecks::sweep() {
  do {
    try {
      co_await settle_pending(kSweptAtOnce);
    } catch (const std::exception& e) {  // the database: the next sweep tries again
      log_event(spdlog::level::warn, "subscription checks not swept", "", {{"error", e.what()}});
    }
  } while (co_await waits_.wait(sweep_interval_));
}

}  // namespace billing
