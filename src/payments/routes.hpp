#pragma once
// The /stripe/ endpoints: checkout, portal, subscriptions, invoices, the admin lists, the webhook
// and the provider's health.
#include <string>

#include "core/db.hpp"
#include "http/route.hpp"
#include "payments/price_map.hpp"
#include "payments/provider.hpp"
#include "payments/webhook.hpp"
#include "plans/subscription_changes.hpp"

namespace billing {

struct CheckoutUrls {
  std::string success_url;  // also where the portal returns to
  std::string cancel_url;
};

void add_payment_routes(Router& router, Db& db, PaymentProvider& provider, const PriceMap& prices,
                        WebhookReceiver& webhooks, CheckoutUrls urls);

// Plan changes of paying owners go to the provider as a price change of their subscription.
class ProviderSubscriptionChanges final : public SubscriptionChanges {
 public:
  ProviderSubscriptionChanges(PaymentProvider& provider, const PriceMap& prices)
      : provider_(provider), prices_(prices) {}
  boost::asio::awaitable<void> change_plan(Plan plan, SubscriptionPrice price) override;

 private:
  PaymentProvider& provider_;
  const PriceMap& prices_;
};

}  // namespace billing
