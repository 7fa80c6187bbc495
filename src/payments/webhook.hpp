#pragma once
// POST /stripe/webhook's work, also called in-process by the local provider: verify the
// signature on the raw bytes, parse, apply the event in a grouped unit of work (group commit),
// and on a failure record it in the inbox and answer 500 so that Stripe retries. Each event is
// counted by type and outcome, timed, and logged.
#include <array>
#include <chrono>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "core/db.hpp"
#include "kit/metrics.hpp"
#include "payments/charge_completion.hpp"
#include "payments/events.hpp"
#include "payments/subscription_checks.hpp"
#include "payments/webhook_signature.hpp"

namespace billing {

// The event types the service acts on, and the rest (`other`): a label with a fixed set of values.
enum class WebhookType {
  checkout_session_completed,
  invoice_payment_succeeded,
  invoice_payment_failed,
  customer_subscription_updated,
  customer_subscription_deleted,
  other
};
template <>
struct EnumNames<WebhookType> {
  static constexpr std::array<std::string_view, 6> names{
      "checkout.session.completed",    "invoice.payment_succeeded",     "invoice.payment_failed",
      "customer.subscription.updated", "customer.subscription.deleted", "other"};
};

class WebhookReceiver {
 public:
  // `api_version`: the Stripe API version events should be rendered at (the endpoint's); one
  // rendered at another is applied all the same, and logged and counted for the operator.
  WebhookReceiver(Db& db, EventRules rules, std::string_view secret, const Clock& clock,
                  std::string api_version)
      : db_(db),
        rules_(rules),
        signature_(secret),
        clock_(clock),
        api_version_(std::move(api_version)) {}

  // 400 "Invalid webhook signature" (nothing parsed), 400 "Invalid webhook payload", or 500
  // "Webhook processing failed" (nothing of the event kept but the failure in the inbox).
  // `signature` and `payload` must stay alive until the returned awaitable completes.
  boost::asio::awaitable<AuditStatus> receive(std::string_view signature, std::string_view payload);
  // An event from the inbox that failed before (verified when it arrived), applied again as
  // a redelivery would be: the same answers, but no signature to check.
  boost::asio::awaitable<AuditStatus> replay(std::string_view payload);

  // After a paid invoice that names its charge only, `completion` fills in the payment's fee,
  // net and card (for a provider whose events do that: Stripe). Set before the first event.
  void complete_charges_with(ChargeCompletion& completion) { completion_ = &completion; }
  // After a customer.subscription.updated event, `checks` settles the subscription's check if
  // the event left one (a tie). Set before the first event.
  void check_subscriptions_with(SubscriptionChecks& checks) { checks_ = &checks; }

  void write_metrics(MetricsText& out) const;
  std::uint64_t events(WebhookType type, AuditStatus outcome) const {
    return events_.value(type, outcome);
  }

 private:
  boost::asio::awaitable<AuditStatus> apply(std::string_view payload,
                                            std::chrono::steady_clock::time_point received);
  // Starts the completion of the paid invoice's payment, detached from this event's answer.
  boost::asio::awaitable<void> complete_charge_later(const StripeEvent& event);
  // Starts the settling of the subscription's check, if any, detached from this event's answer.
  boost::asio::awaitable<void> check_subscription_later(const StripeEvent& event);

  Db& db_;
  EventRules rules_;
  WebhookSignature signature_;
  const Clock& clock_;
  std::string api_version_;
  ChargeCompletion* completion_ = nullptr;
  SubscriptionChecks* checks_ = nullptr;
  CounterFamily<WebhookType, AuditStatus> events_{
      "billing_webhook_events_total",
      "Signed webhook events received, by type and outcome (failed: answered 500, Stripe retries)",
      {"type", "outcome"}};
  HistogramFamily<WebhookType> latency_{
      "billing_webhook_processing_seconds",
      "From a signed webhook event's receipt to its effects committed (or its failure), by type",
      {"type"}};
  CounterFamily<> bad_signatures_{"billing_webhook_signature_failures_total",
                                  "Webhook requests refused 400 for their Stripe-Signature",
                                  {}};
  CounterFamily<> other_api_versions_{
      "billing_webhook_other_api_version_events_total",
      "Signed webhook events rendered at another Stripe API version than the service pins (make "
      "the webhook endpoint at that version: such invoices name no charge, so no fee is recorded)",
      {}};
};

}  // namespace billing
