// A payment's fee completed after its event: retried while the provider fails with a 5xx, not
// after a 4xx, given up after the last wait, and ended early by stop().
#include "payments/charge_completion.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <stdexcept>
#include <thread>

#include "kit/api_error.hpp"
#include "kit/run_blocking.hpp"
#include "payments/repo.hpp"
#include "tests/support/scripted_provider.hpp"
#include "tests/support/test_db.hpp"

namespace billing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

using testing::ScriptedProvider;

const ScriptedProvider::ChargeAnswer kUnavailable = []() -> std::optional<ChargeDetails> {
  throw ApiError(503, "Stripe service unavailable");
};
const ScriptedProvider::ChargeAnswer kNoSuchInvoice = []() -> std::optional<ChargeDetails> {
  throw ApiError(404, "No such invoice: in_1");
};
const ScriptedProvider::ChargeAnswer kDetails = []() -> std::optional<ChargeDetails> {
  return ChargeDetails{.fee = 1477, .net = 48423};
};
const ScriptedProvider::ChargeAnswer kNoDetails = []() -> std::optional<ChargeDetails> {
  return std::nullopt;
};

class ChargeCompletionTest : public ::testing::Test {
 protected:
  std::unique_ptr<Db> db = testing::open_test_db("sqlite");
  const EntityRef owner{EntityKind::hospital, "h1"};

  ChargeCompletionTest() {
    run_blocking(db->transact([&](Tx& tx) {
      tx.get<PaymentRepo>().record_payment(Payment{.invoice_id = "in_1",
                                                   .charge_id = "ch_1",
                                                   .entity = owner,
                                                   .amount = 49900,
                                                   .currency = "usd",
                                                   .created_at = TimePoint(1'700'000'000s)});
    }));
  }
  std::optional<Cents> fee() {
    return run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(owner); }))
        .at(0)
        .fee_amount;
  }
};

const RetryDelays kShortWaits{1ms, 1ms, 1ms, 1ms};

TEST_F(ChargeCompletionTest, AProviderThatFailsIsAskedAgainUntilItAnswers) {
  ScriptedProvider provider({kUnavailable, kUnavailable, kDetails});
  ChargeCompletion completion(*db, provider, kShortWaits);
  run_blocking(completion.complete("in_1", "ch_1"));
  EXPECT_EQ(provider.calls, 3);
  EXPECT_EQ(fee(), 1477);
}

TEST_F(ChargeCompletionTest, GivesUpAfterTheLastWait) {
  ScriptedProvider provider({kUnavailable});
  ChargeCompletion completion(*db, provider, kShortWaits);
  run_blocking(completion.complete("in_1", "ch_1"));
  EXPECT_EQ(provider.calls, 5);  // the first attempt and one after each wait
  EXPECT_EQ(fee(), std::nullopt);
}

TEST_F(ChargeCompletionTest, AnInvoiceTheProviderDoesNotKnowIsNotAskedAgain) {
  ScriptedProvider provider({kNoSuchInvoice, kDetails});
  ChargeCompletion completion(*db, provider, kShortWaits);
  run_blocking(completion.complete("in_1", "ch_1"));
  EXPECT_EQ(provider.calls, 1);
  EXPECT_EQ(fee(), std::nullopt);
}

// A wait of an hour would keep the event loop, and the process, alive: stop() ends it.
TEST_F(ChargeCompletionTest, StopEndsAWaitAndNoneStartsAfterIt) {
  ScriptedProvider provider({kUnavailable, kDetails});
  ChargeCompletion completion(*db, provider, {1h});
  asio::io_context ioc;
  asio::co_spawn(ioc, completion.complete("in_1", "ch_1"), asio::detached);
  std::thread loop([&] { ioc.run(); });
  while (provider.calls == 0) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(20ms);  // into the wait
  const auto stopped_at = std::chrono::steady_clock::now();
  completion.stop();
  loop.join();  // the loop has nothing left to wait for
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, 5s);
  EXPECT_EQ(provider.calls, 1);
  EXPECT_EQ(fee(), std::nullopt);

  run_blocking(completion.complete("in_1", "ch_1"));  // after stop(): one attempt, no wait
  EXPECT_EQ(provider.calls, 2);
  EXPECT_EQ(fee(), 1477);
}

TEST_F(ChargeCompletionTest, CompleteMissingCountsAProviderWithoutDetailsAsFailed) {
  ScriptedProvider provider({kNoDetails});
  ChargeCompletion completion(*db, provider, kShortWaits);
  const auto report = run_blocking(completion.complete_missing(10));
  EXPECT_EQ(report.completed, 0u);
  EXPECT_EQ(report.failed, 1u);

  ScriptedProvider stripe({kDetails});
  ChargeCompletion with_stripe(*db, stripe, kShortWaits);
  const auto done = run_blocking(with_stripe.complete_missing(10));
  EXPECT_EQ(done.completed, 1u);
  EXPECT_EQ(fee(), 1477);
  EXPECT_EQ(run_blocking(with_stripe.complete_missing(10)).completed, 0u);  // none left
}

// A charge that cannot be the payment's: its fee is left unknown, for a look by hand, and the
// provider is not asked again (its answer would be the same).
TEST_F(ChargeCompletionTest, AChargeThatDisagreesWithThePaymentLeavesItsFeeUnknown) {
  const ChargeToComplete payment{"in_1", "ch_1", 49900};
  const std::pair<ChargeDetails, const char*> disagreeing[] = {
      {{.charge_id = "ch_other", .fee = 1477, .net = 48423}, "another charge"},
      {{.charge_id = "ch_1", .fee = 900, .net = -400}, "fee above a part charge's amount"},
      {{.fee = 1477, .net = 100}, "fee and net short of the amount"},
      {{.fee = -1, .net = 49901}, "a negative fee"},
      {{.fee = 49901, .net = -1}, "a fee above the amount"}};
  for (const auto& [charge, what] : disagreeing) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(charge_disagreement(payment, charge));
    ScriptedProvider provider({[charge] { return std::optional(charge); }});
    ChargeCompletion completion(*db, provider, kShortWaits);
    run_blocking(completion.complete("in_1", "ch_1"));
    EXPECT_EQ(provider.calls, 1);
    EXPECT_EQ(fee(), std::nullopt);
    EXPECT_EQ(run_blocking(completion.complete_missing(10)).failed, 1u);
  }
  // Agreeing: the same charge or none named, a fee of 0 (paid outside the provider), the whole.
  for (const ChargeDetails& charge :
       {ChargeDetails{.charge_id = "ch_1", .fee = 1477, .net = 48423},
        ChargeDetails{.fee = 0, .net = 49900}, ChargeDetails{.fee = 49900, .net = 0}})
    EXPECT_EQ(charge_disagreement(payment, charge), std::nullopt);
  EXPECT_EQ(
      charge_disagreement({"in_2", std::nullopt, 100}, {.charge_id = "ch_2", .fee = 33, .net = 67}),
      std::nullopt);
}

}  // namespace
}  // namespace billing
