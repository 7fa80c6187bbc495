#include "payments/charge_completion.hpp"

#include <exception>

#include "kit/log.hpp"
#include "payments/repo.hpp"

namespace billing {

boost::asio::awaitable<void> ChargeCompletion::complete(std::string invoice_id,
                                                        std::string charge_id) {
  try {
    const auto details = co_await provider_.charge_details(charge_id);
    if (!details) co_return;
    const bool saved = co_await db_.transact(
        [&](Tx& tx) { return tx.get<PaymentRepo>().complete_payment(invoice_id, *details); });
    log_event(spdlog::level::info, saved ? "payment fee recorded" : "payment fee known already", "",
              {{"invoice_id", invoice_id}, {"charge_id", charge_id}});
  } catch (const std::exception& e) {
    log_event(spdlog::level::warn, "payment fee not recorded", "",
              {{"invoice_id", invoice_id}, {"charge_id", charge_id}, {"error", e.what()}});
  }
}

}  // namespace billing
