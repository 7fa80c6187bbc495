#include "payments/charge_completion.hpp"

#include <exception>
#include <vector>

#include "kit/log.hpp"
#include "payments/repo.hpp"

namespace billing {
namespace {

// `attempt` is the automatic attempt's number, none for a one-off.
void log_fee_failure(std::string_view message, const ChargeToComplete& charge,
                     std::string_view error, std::string_view attempt = {}) {
  std::vector<LogField> fields{{"invoice_id", charge.invoice_id}};
  if (charge.charge_id) fields.push_back({"charge_id", *charge.charge_id});
  fields.push_back({"error", error});
  if (!attempt.empty()) fields.push_back({"attempt", attempt});
  log_event(spdlog::level::warn, message, "", fields);
}

// Stripe's invoice paid with no charge and not marked paid outside it (from a cash balance, say):
// no fee is guessed at.
constexpr std::string_view kNoCharge =
    "the payment provider names no charge for the invoice: a look by hand";

}  // namespace

std::optional<std::string_view> charge_disagreement(const ChargeToComplete& payment,
                                                    const ChargeDetails& charge) {
  if (payment.charge_id && charge.charge_id && *payment.charge_id != *charge.charge_id)
    return "the payment provider names another charge than the invoice's event: a look by hand";
  if (charge.fee < 0 || charge.fee > payment.amount || charge.net != payment.amount - charge.fee)
    return "the payment provider's fee and net do not make up the payment's amount: a look by "
           "hand";
  return std::nullopt;
}

boost::asio::awaitable<std::optional<std::string_view>> ChargeCompletion::complete_once(
    const ChargeToComplete& charge) {
  const auto details = co_await provider_.invoice_charge(charge.invoice_id);
  if (!details) co_return kNoCharge;
  std::optional<std::string_view> disagreement;
  // False when the fee is known already (another replica's completion may come between the read
  // and the update) or the charge disagrees.
  const bool saved = co_await db_.transact([&](Tx& tx) {
    auto& payments = tx.get<PaymentRepo>();
    const auto payment = payments.payment_without_fee(charge.invoice_id);
    if (!payment) return false;
    disagreement = charge_disagreement(*payment, *details);
    return !disagreement && payments.complete_payment(charge.invoice_id, *details);
  });
  if (disagreement) co_return disagreement;
  // The fee, which is 0 when it was paid outside the provider (no charge).
  log_event(spdlog::level::info, saved ? "payment fee recorded" : "payment fee known already", "",
            {{"invoice_id", charge.invoice_id}, {"fee", std::to_string(details->fee)}});
  co_return std::nullopt;
}

boost::asio::awaitable<void> ChargeCompletion::complete(std::string invoice_id,
                                                        std::optional<std::string> charge_id) {
  const ChargeToComplete charge{std::move(invoice_id), std::move(charge_id)};
  co_await retry_provider_work(
      waits_, retry_delays_,
      [&]() -> boost::asio::awaitable<void> {
        if (const auto why = co_await complete_once(charge))
          log_fee_failure("payment fee not recorded", charge, *why);
      },
      [&](const RetryFailure& f) {
        if (f.stopped)
          return log_fee_failure("payment fee not recorded", charge,
                                 "stopping: left to billing complete-fees");
        log_fee_failure(f.final ? "payment fee not recorded" : "payment fee not recorded yet",
                        charge, f.error, std::to_string(f.attempt));
      });
}

boost::asio::awaitable<ChargeCompletion::Report> ChargeCompletion::complete_missing(
    std::size_t limit) {
  const auto missing =
      co_await db_.read([&](Tx& tx) { return tx.get<PaymentRepo>().payments_without_fee(limit); });
  Report report;
  for (const auto& charge : missing) {
    try {
      const auto why = co_await complete_once(charge);
      if (!why) {
        ++report.completed;
        continue;
      }
      ++report.failed;
      log_fee_failure("payment fee not recorded", charge, *why);
    } catch (const std::exception& e) {
      ++report.failed;
      log_fee_failure("payment fee not recorded", charge, provider_failure(e));
    }
  }
  co_return report;
}

}  // namespace billing
