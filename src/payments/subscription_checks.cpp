#include "payments/subscription_checks.hpp"

#include <optional>

#include <boost/json/serialize.hpp>

#include "kit/crypto.hpp"
#include "kit/log.hpp"
#include "payments/repo.hpp"

namespace billing {
namespace {

namespace json = boost::json;

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

}  // namespace

boost::asio::awaitable<void> SubscriptionChecks::settle_once(const SubscriptionCheck& check) {
  std::optional<Subscription> subscription;
  try {
    subscription = co_await provider_.get_subscription(check.subscription_id);
  } catch (const ApiError& e) {
    if (e.status != 404) throw;
  }
  if (!subscription) {  // the provider knows no such subscription: nothing to settle
    co_await db_.transact([&](Tx& tx) { tx.get<PaymentRepo>().drop_subscription_check(check); });
    co_return log_check(spdlog::level::warn, "subscription check dropped", check, "error",
                        "the payment provider has no such subscription");
  }
  const std::string payload = state_event(*subscription, check.event_created);
  StripeEvent event = parse_event(payload);
  event.from_provider = true;
  const auto now = clock_.now();
  const AuditStatus outcome = co_await db_.transact([&](Tx& tx) {
    prepare_event(tx, rules_, event, now);
    const auto status = apply_event(tx, rules_, event, now);
    tx.get<PaymentRepo>().drop_subscription_check(check);
    return status;
  });
  log_check(spdlog::level::info, "subscription check settled", check, "outcome", name_of(outcome));
}

boost::asio::awaitable<void> SubscriptionChecks::settle(std::string subscription_id) {
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
                           "stopping: left to the next start");
        log_check(spdlog::level::warn,
                  f.final ? "subscription check not settled" : "subscription check not settled yet",
                  check, "error", f.error);
      });
}

boost::asio::awaitable<std::size_t> SubscriptionChecks::settle_pending(std::size_t limit) {
  const auto checks =
      co_await db_.read([&](Tx& tx) { return tx.get<PaymentRepo>().subscription_checks(limit); });
  std::size_t settled = 0;
  for (const auto& check : checks) {
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

}  // namespace billing
