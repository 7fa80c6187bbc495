#include "payments/local/cards.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <iterator>
#include <optional>

#include "kit/api_error.hpp"
#include "payments/provider_errors.hpp"

namespace billing::local {
namespace {

std::optional<int> whole_number(std::string_view text) {
  int value = 0;
  const auto end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

ApiError card_expired() {
  return ApiError(402, "Your card has expired");
}

// A card is good through the last day of its expiry month.
bool expired(int exp_month, int exp_year, TimePoint now) {
  const std::chrono::year_month_day today{std::chrono::floor<std::chrono::days>(now)};
  const int year = static_cast<int>(today.year());
  const int month = static_cast<int>(static_cast<unsigned>(today.month()));
  return exp_year < year || (exp_year == year && exp_month < month);
}

std::string without_spaces(std::string_view text) {
  std::string out;
  std::copy_if(text.begin(), text.end(), std::back_inserter(out), [](char c) { return c != ' '; });
  return out;
}

}  // namespace

Card read_card(std::string_view number, std::string_view expiry, TimePoint now) {
  const std::string digits = without_spaces(number);
  const auto known = std::find_if(kTestCards.begin(), kTestCards.end(),
                                  [&](const TestCardInfo& info) { return info.number == digits; });
  if (known == kTestCards.end()) throw ApiError(400, "Unknown test card");

  const std::chrono::year_month_day today{std::chrono::floor<std::chrono::days>(now)};
  const int this_year = static_cast<int>(today.year());
  Card card{.kind = known->card, .last4 = digits.substr(digits.size() - 4)};
  const std::string date = without_spaces(expiry);
  if (date.empty()) {
    card.exp_month = 12;
    card.exp_year = this_year + 5;
    return card;
  }
  const auto slash = date.find('/');
  const std::string_view month_text = std::string_view(date).substr(0, slash);
  const std::string_view year_text =
      slash == std::string::npos ? std::string_view() : std::string_view(date).substr(slash + 1);
  const auto month = whole_number(month_text);
  const auto year = whole_number(year_text);
  if (!month || !year || *month < 1 || *month > 12 ||
      (year_text.size() != 2 && year_text.size() != 4))
    throw ApiError(400, "The expiry date should be MM/YY");
  card.exp_month = *month;
  card.exp_year = year_text.size() == 2 ? 2000 + *year : *year;
  if (expired(card.exp_month, card.exp_year, now)) throw card_expired();
  return card;
}

ChargeResult charge_result(const Card& card, Charging when, TimePoint now) {
  if (expired(card.exp_month, card.exp_year, now)) return ChargeResult::expired;
  switch (card.kind) {
    case TestCard::succeeds:
      return ChargeResult::paid;
    case TestCard::declined:
      return ChargeResult::declined;
    case TestCard::insufficient_funds:
      return ChargeResult::insufficient_funds;
    case TestCard::requires_authentication:
      // Authenticated once, the card is set up for the payments that follow with it on file.
      return when == Charging::on_file ? ChargeResult::paid : ChargeResult::needs_authentication;
    case TestCard::declines_after_attaching:
      // Stripe's 0341 attaches and then declines every charge; here its checkout payment goes
      // through (a demo convenience), so that a subscription exists whose renewals fail.
      return when == Charging::at_checkout ? ChargeResult::paid : ChargeResult::declined;
  }
  return ChargeResult::declined;
}

std::optional<ApiError> refusal_of(ChargeResult result) {
  switch (result) {
    case ChargeResult::paid:
      return std::nullopt;
    case ChargeResult::declined:
      return provider_errors::card_declined();
    case ChargeResult::insufficient_funds:
      return provider_errors::insufficient_funds();
    case ChargeResult::needs_authentication:
      return provider_errors::authentication_required();
    case ChargeResult::expired:
      return card_expired();
  }
  return std::nullopt;
}

void require_paid(ChargeResult result) {
  if (auto refusal = refusal_of(result)) throw std::move(*refusal);
}

}  // namespace billing::local
