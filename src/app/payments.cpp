#include "app/payments.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "kit/api_error.hpp"
#include "kit/crypto.hpp"
#include "payments/local/local_provider.hpp"
#include "payments/local/objects.hpp"
#include "payments/repo.hpp"
#include "stripe/stripe_provider.hpp"

namespace billing {
namespace {

PriceMap price_map(const Config& config) {
  return config.payments == PaymentsProvider::stripe ? PriceMap(config.stripe.prices)
                                                     : PriceMap::local();
}

// The local provider signs its own events: without a configured secret, one for this run.
std::string webhook_secret(const Config& config) {
  if (!config.stripe.webhook_secret.empty() || config.payments == PaymentsProvider::stripe)
    return config.stripe.webhook_secret;
  return "whsec_local_" + random_hex(24);
}

}  // namespace

Payments::Payments(const Config& config, Db& db, const Catalog& catalog, const Clock& clock,
                   std::string base_url)
    : db_(db),
      webhook_secret_(webhook_secret(config)),
      prices_(price_map(config)),
      webhooks_(db, EventRules{catalog, prices_}, webhook_secret_, clock,
                config.payments == PaymentsProvider::stripe ? config.stripe.api_version
                                                            : std::string(local::kApiVersion)),
      provider_([&]() -> std::unique_ptr<PaymentProvider> {
        if (config.payments == PaymentsProvider::stripe)
          return std::make_unique<StripeProvider>(
              StripeOptions{
                  .api_base = config.stripe.api_base,
                  .secret_key = config.stripe.secret_key,
                  .api_version = config.stripe.api_version,
              },
              stripe_metrics_);
        auto local = std::make_unique<LocalProvider>(
            catalog, prices_, clock, db, config.local_payments_account, webhook_secret_, base_url,
            [this](std::string signature, std::string payload) {
              return deliver(std::move(signature), std::move(payload));
            });
        local_ = local.get();
        return local;
      }()),
      charge_completion_(db, *provider_),
      subscription_checks_(db, *provider_, EventRules{catalog, prices_}, clock),
      subscription_changes_(*provider_, prices_),
      urls_{config.stripe.success_url, config.stripe.cancel_url} {
  // The local provider's invoice events carry their charge's fee and card: nothing to complete.
  if (!local_) webhooks_.complete_charges_with(charge_completion_);
  webhooks_.check_subscriptions_with(subscription_checks_);
}

Payments::~Payments() {
  stop();  // then the sweeper, the last member, is joined first
}

void Payments::start_sweeping() {
  sweeper_ = std::jthread([this] {
    boost::asio::io_context sweeps;
    boost::asio::co_spawn(sweeps, subscription_checks_.sweep(), boost::asio::detached);
    if (local_) boost::asio::co_spawn(sweeps, local_->redeliver(), boost::asio::detached);
    sweeps.run();
  });
}

void Payments::stop() {
  charge_completion_.stop();
  subscription_checks_.stop();
  if (local_) local_->stop();
}

boost::asio::awaitable<void> Payments::deliver(std::string signature, std::string payload) {
  co_await webhooks_.receive(signature, payload);
}

boost::asio::awaitable<void> Payments::resume() {
  if (local_) co_await local_->resume();
}

boost::asio::awaitable<Payments::ReplayReport> Payments::replay_failed_events(std::size_t limit) {
  const auto events =
      co_await db_.read([&](Tx& tx) { return tx.get<PaymentRepo>().failed_events(limit); });
  ReplayReport report;
  for (const auto& event : events) {
    try {
      co_await webhooks_.replay(event.payload);
      ++report.applied;
    } catch (const ApiError&) {  // logged and recorded by the receiver
      ++report.failed;
    }
  }
  co_return report;
}

void Payments::add_routes(Router& router, Db& db) {
  add_payment_routes(router, db, *provider_, prices_, webhooks_, urls_);
  if (local_) add_local_payment_routes(router, *local_);
}

}  // namespace billing
