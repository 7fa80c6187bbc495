#include "payments/webhook.hpp"

#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include "kit/api_error.hpp"
#include "kit/log.hpp"
#include "payments/event_members.hpp"
#include "payments/repo.hpp"

namespace billing {

boost::asio::awaitable<AuditStatus> WebhookReceiver::receive(std::string_view signature,
                                                             std::string_view payload) {
  const auto received = std::chrono::steady_clock::now();
  if (!signature_.verify(signature, payload, clock_.now())) {
    bad_signatures_.add();
    throw ApiError(400, "Invalid webhook signature");
  }
  co_return co_await apply(payload, received);
}

boost::asio::awaitable<AuditStatus> WebhookReceiver::replay(std::string_view payload) {
  co_return co_await apply(payload, std::chrono::steady_clock::now());
}

boost::asio::awaitable<AuditStatus> WebhookReceiver::apply(
    std::string_view payload, std::chrono::steady_clock::time_point received) {
  const StripeEvent event = parse_event(payload);
  const auto type = parse_enum<WebhookType>(event.type).value_or(WebhookType::other);
  if (!event.api_version.empty() && event.api_version != api_version_) {
    other_api_versions_.add();
    log_event(
        spdlog::level::warn, "webhook event of another Stripe API version", "",
        {{"event_id", event.id}, {"api_version", event.api_version}, {"expected", api_version_}});
  }
  const auto done = [&](AuditStatus outcome) {
    events_.add(type, outcome);
    latency_.observe(std::chrono::steady_clock::now() - received, type);
  };
  std::string failure;
  std::optional<AuditStatus> outcome;
  try {
    outcome = co_await apply_grouped(db_, rules_, event, clock_.now());
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (outcome) {
    done(*outcome);
    log_event(spdlog::level::info, "webhook event applied", "",
              {{"event_id", event.id}, {"type", event.type}, {"outcome", name_of(*outcome)}});
    // Whenever the event recorded its payment: also when the plan had moved on (stale).
    const bool recorded = outcome == AuditStatus::ok || outcome == AuditStatus::stale;
    // The specification's "logs failure for follow-up": a line to act on, beside the audit row
    // (which says what became of the plan). Each failed attempt at the invoice has its own.
    if (outcome == AuditStatus::ok && type == WebhookType::invoice_payment_failed)
      log_event(spdlog::level::info, "payment failed: to follow up", "",
                {{"event_id", event.id},
                 {"invoice_id", event_members::text(event.object, "id").value_or("")},
                 {"customer_id", event_members::text(event.object, "customer").value_or("")}});
    if (completion_ && recorded && type == WebhookType::invoice_payment_succeeded)
      co_await complete_charge_later(event);
    // A tie, or an older event that showed something new, recorded a check to settle (if none
    // was recorded, the settle finds none and asks the provider nothing).
    if (checks_ && recorded &&
        (type == WebhookType::customer_subscription_updated ||
         type == WebhookType::customer_subscription_deleted))
      co_await check_subscription_later(event);
    co_return *outcome;
  }
  done(AuditStatus::failed);
  log_event(spdlog::level::err, "webhook event failed", "",
            {{"event_id", event.id}, {"type", event.type}, {"error", failure}});
  try {
    co_await db_.transact([&](Tx& tx) {
      auto& payments = tx.get<PaymentRepo>();
      payments.record_event_failure(event.inbox(), failure, clock_.now());
      payments.append_audit(AuditEntry{.event_id = event.id,
                                       .event_type = event.type,
                                       .payload = audit_payload(event),
                                       .status = AuditStatus::failed,
                                       .note = "processing failed; Stripe will retry",
                                       .created_at = clock_.now()});
    });
  } catch (const std::exception& e) {
    log_event(spdlog::level::err, "webhook event failure not recorded", "",
              {{"event_id", event.id}, {"error", e.what()}});
  }
  throw ApiError(500, "Webhook processing failed");
}

boost::asio::awaitable<void> WebhookReceiver::complete_charge_later(const StripeEvent& event) {
  const auto invoice = event_members::text(event.object, "id");
  if (!invoice) co_return;
  // An expanded charge came with its fee (the local provider's); no charge and nothing paid is a
  // fee of 0, recorded with the payment. Stripe names the charge, or (from API version
  // 2025-03-31 on) not even that.
  std::optional<std::string> charge_id;
  if (const auto* charge = event.object.if_contains("charge"); charge && !charge->is_null()) {
    if (!charge->is_string()) co_return;
    charge_id = std::string(charge->get_string());
  } else if (event_members::integer(event.object, "amount_paid").value_or(0) <= 0) {
    co_return;
  }
  boost::asio::co_spawn(co_await boost::asio::this_coro::executor,
                        completion_->complete(std::string(*invoice), charge_id),
                        boost::asio::detached);
}

boost::asio::awaitable<void> WebhookReceiver::check_subscription_later(const StripeEvent& event) {
  const auto* subscription = event.object.if_contains("id");
  if (!subscription || !subscription->is_string()) co_return;
  boost::asio::co_spawn(co_await boost::asio::this_coro::executor,
                        checks_->settle(std::string(subscription->get_string())),
                        boost::asio::detached);
}

void WebhookReceiver::write_metrics(MetricsText& out) const {
  events_.write(out);
  latency_.write(out);
  bad_signatures_.write(out);
  other_api_versions_.write(out);
}

}  // namespace billing
