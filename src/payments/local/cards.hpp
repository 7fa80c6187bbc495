#pragma once
// Stripe's test card numbers that the local provider understands, and what charging each does.
// Only these numbers are accepted: the local provider is for trying the paid flow, and a real
// card number typed into it by mistake is refused rather than kept.
#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "kit/api_error.hpp"
#include "kit/clock.hpp"

namespace billing::local {

enum class TestCard {
  succeeds,
  declined,
  insufficient_funds,
  requires_authentication,
  declines_after_attaching,
};

struct TestCardInfo {
  std::string_view number;
  TestCard card;
  std::string_view behaviour;  // for the list on the pages
};

inline constexpr std::array<TestCardInfo, 5> kTestCards{{
    {"4242424242424242", TestCard::succeeds, "succeeds"},
    {"4000000000000002", TestCard::declined, "is declined"},
    {"4000000000009995", TestCard::insufficient_funds, "is declined for insufficient funds"},
    {"4000000000003220", TestCard::requires_authentication, "asks for authentication first"},
    {"4000000000000341", TestCard::declines_after_attaching,
     "pays the first invoice, then every renewal fails"},
}};

// A card as entered: which test card, and what the events show of it (never the whole number,
// never the CVC).
struct Card {
  TestCard kind = TestCard::succeeds;
  std::string last4;
  int exp_month = 0;
  int exp_year = 0;
  friend bool operator==(const Card&, const Card&) = default;
};

// `number` may contain spaces; `expiry` is MM/YY or MM/YYYY, or empty for a date five years on
// (test cards take any future date). Throws ApiError: 400 "Unknown test card", 400 for an
// unreadable expiry, 402 "Your card has expired".
Card read_card(std::string_view number, std::string_view expiry, TimePoint now);

enum class Charging {
  at_checkout,  // the first payment, the customer present
  in_portal,    // an invoice paid in the portal with a card entered there, the customer present
  on_file,      // renewals: the card on file, the customer away
};
enum class ChargeResult { paid, declined, insufficient_funds, needs_authentication, expired };

// What charging `card` at `now` does: a card on file that has run out since it was entered fails
// (Stripe's expired_card) whatever its number.
ChargeResult charge_result(const Card& card, Charging when, TimePoint now);

// The ApiError (402) a failed charge shows the customer; none for `paid`.
std::optional<ApiError> refusal_of(ChargeResult result);
// Throws refusal_of(result), if any.
void require_paid(ChargeResult result);

}  // namespace billing::local
