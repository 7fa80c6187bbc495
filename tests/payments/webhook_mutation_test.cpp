// Signed events of every shape, as no Stripe would send but a bug or a leaked secret might: the
// five event types and another, each member removed or replaced by a value of another type, an
// extreme number or a long string, a few at a time. Each is answered 200 (applied, ignored, or
// stale) or a clear 400, never a 500, a crash or undefined behaviour (CI runs this under ASan and
// UBSan); the plan read back afterwards is one the service can serve.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "kit/api_error.hpp"
#include "kit/clock.hpp"
#include "kit/run_blocking.hpp"
#include "payments/price_map.hpp"
#include "payments/webhook.hpp"
#include "payments/webhook_signature.hpp"
#include "plans/catalog.hpp"
#include "plans/repo.hpp"
#include "tests/support/json_mutations.hpp"
#include "tests/support/test_db.hpp"

namespace billing {
namespace {

namespace json = boost::json;
using testing::unique_id;

constexpr std::string_view kSecret = "whsec_mutations";
constexpr int kEventsPerShape = 150;

const Catalog& catalog() {
  static const Catalog c = Catalog::load(BILLING_SOURCE_DIR "/config/plans.json");
  return c;
}

class WebhookMutations : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<Db> db = testing::open_test_db(GetParam());
  const PriceMap prices = PriceMap::local();
  ManualClock clock{TimePoint(std::chrono::seconds(1'700'000'000))};
  WebhookReceiver receiver{*db, EventRules{catalog(), prices}, kSecret, clock, "2023-10-16"};
  const WebhookSignature signer{kSecret};
  const std::string hospital = unique_id("hosp");
  const std::string customer = unique_id("cus");
  const std::string subscription = unique_id("sub");
  std::int64_t created = 1'700'000'000;

  json::value event(std::string_view type, json::object object) {
    return json::object{{"id", unique_id("evt")},
                        {"object", "event"},
                        {"type", type},
                        {"created", ++created},
                        {"data", {{"object", std::move(object)}}}};
  }
  json::object metadata() const {
    return {
        {"role", "hospital"}, {"role_entity_id", hospital}, {"plan", "lite"}, {"cycle", "monthly"}};
  }
  // One valid event of each shape the service reads, and one of a type it only audits.
  std::vector<json::value> shapes() {
    const json::object invoice{
        {"id", unique_id("in")},
        {"object", "invoice"},
        {"customer", customer},
        {"subscription", subscription},
        {"amount_paid", 49900},
        {"currency", "usd"},
        {"charge",
         {{"id", "ch_1"},
          {"balance_transaction", {{"fee", 1477}, {"net", 48423}}},
          {"payment_method_details", {{"type", "card"}, {"card", {{"brand", "visa"}}}}}}},
        {"subscription_details", {{"metadata", metadata()}}},
        {"parent",
         {{"subscription_details", {{"subscription", subscription}, {"metadata", metadata()}}}}},
        {"lines",
         {{"data", json::array{{{"amount", 49900},
                                {"proration", false},
                                {"price", {{"id", "price_local_hospital_lite_monthly"}}}}}}}},
        {"status_transitions", {{"paid_at", created}}}};
    const json::object subscription_object{
        {"id", subscription},
        {"object", "subscription"},
        {"customer", customer},
        {"status", "active"},
        {"cancel_at_period_end", false},
        {"pause_collection", {{"behavior", "mark_uncollectible"}}},
        {"items",
         {{"data", json::array{{{"id", "si_1"},
                                {"price", {{"id", "price_local_hospital_pro_monthly"}}}}}}}},
        {"metadata", metadata()}};
    return {event("checkout.session.completed", {{"id", unique_id("cs")},
                                                 {"object", "checkout.session"},
                                                 {"payment_status", "paid"},
                                                 {"customer", customer},
                                                 {"subscription", subscription},
                                                 {"invoice", unique_id("in")},
                                                 {"metadata", metadata()}}),
            event("invoice.payment_succeeded", invoice),
            event("invoice.payment_failed", invoice),
            event("customer.subscription.updated", subscription_object),
            event("customer.subscription.deleted", subscription_object),
            event("customer.updated", {{"id", customer}, {"object", "customer"}})};
  }
  // The status the webhook answers `payload` with, signed now.
  int deliver(const std::string& payload) {
    try {
      run_blocking(receiver.receive(signer.sign(payload, clock.now()), payload));
      return 200;
    } catch (const ApiError& e) {
      return e.status;
    }
  }
};

TEST_P(WebhookMutations, AnyShapeIsAnsweredWithoutAFailure) {
  std::mt19937_64 random(20261127);
  const std::string token = unique_id("m");
  int answered = 0;
  for (int round = 0; round < kEventsPerShape; ++round) {
    for (auto& shape : shapes()) {
      const int mutations = 1 + static_cast<int>(random() % 3);
      for (int i = 0; i < mutations; ++i) testing::mutate(shape, random, token);
      const std::string payload = json::serialize(shape);
      const int status = deliver(payload);
      EXPECT_TRUE(status == 200 || status == 400) << status << " for " << payload.substr(0, 2000);
      answered += status == 200;
    }
    // The valid events in between move the plan on, so later mutations meet every state.
    if (round % 10 == 0) {
      for (auto& shape : shapes()) EXPECT_EQ(deliver(json::serialize(shape)), 200);
    }
  }
  EXPECT_GT(answered, kEventsPerShape);  // most mutations still parse as events
  // Whatever happened to it, the plan reads back.
  EXPECT_NO_THROW(run_blocking(db->read([&](Tx& tx) {
    return tx.get<PlanRepo>().find_plan({EntityKind::hospital, hospital});
  })));
}

INSTANTIATE_TEST_SUITE_P(Backends, WebhookMutations, ::testing::ValuesIn(testing::test_backends()),
                         testing::backend_name);

}  // namespace
}  // namespace billing
