#include "payments/subscription_checks.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include <boost/json/serialize.hpp>

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

std::int64_t last_event_of(const std::optional<Plan>& plan) {
  return plan ? plan->last_event_created.value_or(0) : 0;
}

}  // namespace

boost::asio::awaitable<void> SubscriptionChecks::settle_once(const SubscriptionCheck& check) {
  const auto plan_before = co_await db_.read(
      [&](Tx& tx) { return tx.get<PlanRepo>().find_plan_by_subscription(check.subscription_id); });
  const std::int64_t as_of = std::max(check.event_created, last_event_of(plan_before));
  std::optional<Subscription> subscription;
  try {
    subscription = co_await provider_.get_subscription(check.subscription_id);
  } catch (const ApiError& e) {
    if (e.status != 404) throw;  // else the provider knows no such subscription: nothing to apply
  }
  const std::string payload = subscription ? state_event(*subscription, as_of) : std::string();
  std::optional<StripeEvent> event;
  if (subscription) {
    event = parse_event(payload);
    event->from_provider = true;
  }
  const auto now = clock_.now();
  std::optional<AuditStatus> outcome;
  try {
    outcome = co_await db_.transact([&](Tx& tx) -> std::optional<AuditStatus> {
      if (event) prepare_event(tx, rules_, *event, now);  // the owner's lock first, as any event
      auto& payments = tx.get<PaymentRepo>();
      if (!payments.take_subscription_check(check)) {
        if (payments.subscription_check(check.subscription_id))
          throw ChangedWhileAsked("another tie was recorded while the provider was asked");
        throw SettledElsewhere();
      }
      if (!event) return std::nullopt;
      if (last_event_of(tx.get<PlanRepo>().find_plan_by_subscription(check.subscription_id)) >
          as_of)
        throw ChangedWhileAsked("an event was applied while the provider was asked");
      return apply_event(tx, rules_, *event, now);
    });
  } catch (const SettledElsewhere&) {
    co_return log_check(spdlog::level::info, "subscription check settled", check, "outcome",
                        "settled elsewhere");
  }
  if (!outcome)
    co_return log_check(spdlog::level::warn, "subscription check dropped", check, "error",
                        "the payment provider has no such subscription");
  log_check(spdlog::level::info, "subscription check settled", check, "outcome", name_of(*outcome));
}

boost::asio::awaitable<void> SubscriptionChecks::settle(std::string subscription_id) {
  {
    std::lock_guard lock(mutex_);
    if (!settling_.insert(subscription_id).second) co_return;  // that settle will see this tie
  }
  struct Settled {  // however this ends
    SubscriptionChecks& checks;
    const std::string& id;
    ~Settled() {
      std::lock_guard lock(checks.mutex_);
      checks.settling_.erase(id);
    }
  } const settled{*this, subscription_id};
  std::optional<SubscriptionCheck> pending;
  const auto settle_if_pending = [&]() -> boost::asio::awaitable<void> {
    pending = co_await db_.read(
        [&](Tx& tx) { return tx.get<PaymentRepo>().subscription_check(subscription_id); });
    if (pending) co_await settle_once(*pending);
  };
  co_await retry_provider_work(
      waits_, retry_delays_, settle_if_pending, [&](const RetryFailure& f) {
        const SubscriptionCheck check = pending.value_or(SubscriptionCheck{subscription_id, 0});
        if (f.stopped)
          return log_check(spdlog::level::warn, "subscription check not settled", check, "error",
                           "stopping: left to the next sweep");
        log_check(spdlog::level::warn,
                  f.final ? "subscription check not settled: left to the next sweep"
                          : "subscription check not settled yet",
                  check, "error", f.error);
      });
}

boost::asio::awaitable<std::size_t> SubscriptionChecks::settle_pending(std::size_t limit) {
  const auto checks =
      co_await db_.read([&](Tx& tx) { return tx.get<PaymentRepo>().subscription_checks(limit); });
  std::size_t settled = 0;
  for (const auto& check : checks) {
    if (waits_.stopped()) break;
    try {
      co_await settle_once(check);
      ++settled;
    } catch (const std::exception& e) {
      log_check(spdlog::level::warn, "subscription check not settled", check, "error",
                provider_failure(e));
    }
  }
  co_return settled;
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
