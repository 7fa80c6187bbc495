#pragma once
// The local provider's checkout and portal as plain server-rendered HTML (no script). Every value
// put into a page goes through html_escape.
#include <string>
#include <string_view>

#include "core/money.hpp"
#include "payments/local/records.hpp"

namespace billing::local {

std::string html_escape(std::string_view text);
std::string dollars(Cents cents);  // 49900 -> "$499.00", 479040 -> "$4,790.40", -2900 -> "-$29.00"

struct Link {
  std::string_view href;  // empty: no link
  std::string_view text;
};

// `due`: what paying now charges, the account's balance taken in (see Ledger::due_at_checkout).
std::string checkout_page(const CheckoutSession& session, Cents due);
// The confirm step of a card that asks for authentication: at checkout, and in the portal
// (`portal_id`'s).
std::string authentication_page(const CheckoutSession& session);
std::string authentication_page(std::string_view portal_id, const PaymentToConfirm& payment);
std::string checkout_paid_page(const CheckoutSession& session);
std::string portal_page(const PortalView& portal);
// A page that says one thing: a result, or why something failed.
std::string message_page(std::string_view title, std::string_view message, Link link = {});

}  // namespace billing::local
