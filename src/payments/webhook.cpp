#include "payments/webhook.hpp"

#include <spdlog/spdlog.h>

#include "kit/api_error.hpp"
#include "payments/repo.hpp"

namespace billing {

boost::asio::awaitable<AuditStatus> WebhookReceiver::receive(std::string_view signature,
                                                             std::string_view payload) {
  if (!signature_.verify(signature, payload, clock_.now()))
    throw ApiError(400, "Invalid webhook signature");
  const StripeEvent event = parse_event(payload);
  std::string failure;
  try {
    co_return co_await db_.transact_grouped(
        [&](Tx& tx) { return apply_event(tx, rules_, event, clock_.now()); },
        event_affinity(event));
  } catch (const std::exception& e) {
    failure = e.what();
  }
  spdlog::error("webhook event {} ({}) failed: {}", event.id, event.type, failure);
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
    spdlog::error("webhook event {}: recording the failure failed too: {}", event.id, e.what());
  }
  throw ApiError(500, "Webhook processing failed");
}

}  // namespace billing
