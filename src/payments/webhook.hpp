#pragma once
// POST /stripe/webhook's work, also called in-process by the local provider: verify the
// signature on the raw bytes, parse, apply the event in a grouped unit of work (group commit),
// and on a failure record it in the inbox and answer 500 so that Stripe retries.
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "core/db.hpp"
#include "payments/events.hpp"
#include "payments/webhook_signature.hpp"

namespace billing {

class WebhookReceiver {
 public:
  WebhookReceiver(Db& db, EventRules rules, std::string_view secret, const Clock& clock)
      : db_(db), rules_(rules), signature_(secret), clock_(clock) {}

  // 400 "Invalid webhook signature" (nothing parsed), 400 "Invalid webhook payload", or 500
  // "Webhook processing failed" (nothing of the event kept but the failure in the inbox).
  // `signature` and `payload` must stay alive until the returned awaitable completes.
  boost::asio::awaitable<AuditStatus> receive(std::string_view signature, std::string_view payload);

 private:
  Db& db_;
  EventRules rules_;
  WebhookSignature signature_;
  const Clock& clock_;
};

}  // namespace billing
