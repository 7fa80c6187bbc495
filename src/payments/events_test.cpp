// The five events on every backend, applied as the webhook applies them (grouped units): what
// each does to the plan, payments, the audit trail and the inbox, once, and in any order.
#include "payments/events.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <limits>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "entities/repo.hpp"
#include "kit/api_error.hpp"
#include "kit/crypto.hpp"
#include "kit/run_blocking.hpp"
#include "payments/repo.hpp"
#include "payments/subscription_checks.hpp"
#include "payments/webhook.hpp"
#include "plans/repo.hpp"
#include "plans/selection.hpp"
#include "tests/support/scripted_provider.hpp"
#include "tests/support/test_db.hpp"

namespace billing {
namespace {

namespace json = boost::json;
using testing::unique_id;
using namespace std::chrono_literals;

const Catalog& catalog() {
  static const Catalog c = Catalog::load(BILLING_SOURCE_DIR "/config/plans.json");
  return c;
}

class Events : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<Db> db = testing::open_test_db(GetParam());
  const PriceMap prices = PriceMap::local();
  const EventRules rules{catalog(), prices};
  const TimePoint now = std::chrono::system_clock::now();
  const EntityRef hospital{EntityKind::hospital, unique_id("hosp")};
  const std::string customer = unique_id("cus");
  std::string subscription = unique_id("sub");  // of the events made next
  std::int64_t clock = 1'700'000'000;           // Stripe's `created` of the next event
  std::vector<std::string> payloads;            // kept alive: events point into them

  json::object metadata(std::string_view plan = "lite", std::string_view cycle = "monthly") const {
    return {
        {"role", "hospital"}, {"role_entity_id", hospital.id}, {"plan", plan}, {"cycle", cycle}};
  }

  StripeEvent event(std::string_view type, json::object object, std::int64_t created = 0) {
    payloads.push_back(json::serialize(json::object{{"id", unique_id("evt")},
                                                    {"object", "event"},
                                                    {"type", type},
                                                    {"created", created ? created : ++clock},
                                                    {"data", {{"object", std::move(object)}}}}));
    return parse_event(payloads.back());
  }
  StripeEvent checkout_completed(std::string_view plan = "lite", std::string_view session = "",
                                 std::string_view first_invoice = "") {
    json::object object{{"id", session.empty() ? unique_id("cs") : std::string(session)},
                        {"object", "checkout.session"},
                        {"payment_status", "paid"},
                        {"customer", customer},
                        {"subscription", subscription},
                        {"metadata", metadata(plan)}};
    if (!first_invoice.empty()) object["invoice"] = first_invoice;
    return event("checkout.session.completed", std::move(object));
  }
  StripeEvent invoice(std::string_view type, std::string invoice_id, std::int64_t created = 0) {
    return event(type, invoice_object(type, std::move(invoice_id)), created);
  }
  json::object invoice_object(std::string_view type, std::string invoice_id) const {
    const bool paid = type == "invoice.payment_succeeded";
    return {{"id", invoice_id},
            {"object", "invoice"},
            {"customer", customer},
            {"subscription", subscription},
            {"amount_paid", paid ? 49900 : 0},
            {"currency", "usd"},
            {"payment_intent", "pi_1"},
            {"charge",
             {{"id", "ch_1"},
              {"balance_transaction", {{"fee", 1477}, {"net", 48423}}},
              {"payment_method_details",
               {{"type", "card"}, {"card", {{"brand", "visa"}, {"last4", "4242"}}}}}}},
            {"subscription_details", {{"metadata", metadata()}}},
            {"lines",
             {{"data", json::array{{{"price", {{"id", "price_local_hospital_lite_monthly"}}}}}}}},
            {"status_transitions", {{"paid_at", paid ? json::value(clock) : nullptr}}}};
  }
  json::object subscription_object(std::string_view status, std::string_view price) const {
    return {{"id", subscription},
            {"object", "subscription"},
            {"customer", customer},
            {"status", status},
            {"cancel_at_period_end", false},
            {"items", {{"data", json::array{{{"id", "si_1"}, {"price", {{"id", price}}}}}}}},
            {"metadata", metadata()}};
  }
  StripeEvent subscription_event(std::string_view type, std::string_view status,
                                 std::string_view price, std::int64_t created = 0) {
    return event(type, subscription_object(status, price), created);
  }
  // The subscription's collection paused (Stripe's pause_collection) or resumed; still active.
  StripeEvent collection(bool paused,
                         std::string_view price = "price_local_hospital_lite_monthly") {
    auto object = subscription_object("active", price);
    object["pause_collection"] =
        paused ? json::value{{"behavior", "mark_uncollectible"}} : json::value(nullptr);
    return event("customer.subscription.updated", std::move(object));
  }

  // An event of a subscription made before checkouts carried metadata: it names no owner.
  StripeEvent legacy_subscription_event(std::string_view type, std::string_view id,
                                        std::string_view status, std::int64_t created = 0) {
    return event(
        type, {{"id", id}, {"object", "subscription"}, {"customer", customer}, {"status", status}},
        created);
  }

  // A plan paid by one subscription, and another one paid for it (two checkouts): their ids.
  std::pair<std::string, std::string> plan_and_another_subscription() {
    apply(checkout_completed());
    const auto own = subscription;
    subscription = unique_id("sub");
    EXPECT_EQ(apply(checkout_completed("pro")), AuditStatus::ignored);
    return {own, subscription};
  }

  // The hospital's own choice of pro, billed yearly: pending on a plan a subscription pays for.
  void choose_pro_yearly() {
    const Identity owner{.subject = "user-1", .role = Role::hospital, .entity_id = hospital.id};
    run_blocking(db->transact([&](Tx& tx) {
      select_plan(
          tx, catalog(), owner,
          {.plan_type = PlanType::pro, .id = hospital.id, .billing_cycle = BillingCycle::yearly},
          now);
    }));
  }

  AuditStatus apply(const StripeEvent& e) {
    return run_blocking(apply_grouped(*db, rules, e, now));
  }
  // Applies the events as the webhook does, in one commit batch, queued in this order: the
  // outcome of each, none for one that threw.
  std::vector<std::optional<AuditStatus>> apply_in_one_batch(
      std::vector<const StripeEvent*> events) {
    std::vector<std::optional<AuditStatus>> outcomes(events.size());
    testing::run_in_one_batch(
        *db, events.size(),
        [&](std::size_t i, Tx& tx) {
          outcomes[i].reset();
          outcomes[i] = apply_event(tx, rules, *events[i], now);
        },
        [&](std::size_t i) { return event_affinity(*events[i]); },
        [&](std::size_t i, Tx& tx) { return prepare_event(tx, rules, *events[i], now); });
    return outcomes;
  }
  std::optional<Plan> plan() {
    return run_blocking(db->read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); }));
  }
  std::vector<Payment> payments() {
    return run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(hospital); }));
  }
  std::vector<AuditEntry> audit(const StripeEvent& e) {
    return run_blocking(
        db->read([&](Tx& tx) { return tx.get<PaymentRepo>().audit_entries(e.id); }));
  }
  std::vector<PlanChange> history() {
    return run_blocking(db->read([&](Tx& tx) { return tx.get<PlanRepo>().history(hospital); }));
  }

  // Runs `theirs` (a change in a write unit) through a second handle on the database (another
  // replica) and, while that unit has not committed, `mine` (a change through this one), which
  // must wait for the commit (checked for 200 ms) before it can end.
  template <class Theirs, class Mine>
  void beside_another_replica(std::unique_ptr<Db> replica, Theirs theirs, Mine mine) {
    std::promise<void> entered, release;
    auto released = release.get_future();
    auto their_unit = std::async(std::launch::async, [&] {
      run_blocking(replica->transact([&](Tx& tx) {
        theirs(tx);
        entered.set_value();
        released.wait();
      }));
    });
    std::future<void> my_unit;
    {
      // However this block ends, their unit is let go first: its future waits for it.
      struct Release {
        std::promise<void>& release;
        ~Release() { release.set_value(); }
      } const release_on_exit{release};
      auto entered_future = entered.get_future();
      while (entered_future.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready)
        if (their_unit.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
          their_unit.get();  // rethrows what ended it
          FAIL() << "the other replica's unit ended before it entered";
        }
      my_unit = std::async(std::launch::async, std::move(mine));
      EXPECT_EQ(my_unit.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
    }
    their_unit.get();
    my_unit.get();
  }
  // For beside_another_replica: applies `e` as the webhook does, expecting it to apply.
  auto applying(const StripeEvent& e) {
    return [this, &e](Tx& tx) {
      prepare_event(tx, rules, e, now);
      EXPECT_EQ(apply_event(tx, rules, e, now), AuditStatus::ok);
    };
  }
};

TEST_P(Events, CheckoutCompletedActivatesThePlanWithDefaultServices) {
  const auto e = checkout_completed();
  EXPECT_EQ(apply(e), AuditStatus::ok);
  const auto p = plan();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, PlanStatus::active);
  EXPECT_EQ(p->plan_type, PlanType::lite);
  EXPECT_EQ(p->billing_cycle, BillingCycle::monthly);
  EXPECT_EQ(p->stripe_customer_id, customer);
  EXPECT_EQ(p->stripe_subscription_id, subscription);
  EXPECT_EQ(p->selected_services,
            catalog().find(EntityKind::hospital, PlanType::lite)->default_services);
  EXPECT_EQ(p->last_event_created, e.created);
  ASSERT_EQ(history().size(), 1u);
  EXPECT_EQ(history()[0].changed_by, "stripe");
  EXPECT_EQ(history()[0].reason, "checkout.session.completed " + e.id);
  const auto rows = audit(e);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].status, AuditStatus::ok);
  EXPECT_EQ(rows[0].event_type, "checkout.session.completed");
}

// A checkout that buys no plan (one the catalog lacks, or unpaid) is audited and leaves no
// hospital behind: the entity's row is made only for a plan.
TEST_P(Events, ACheckoutThatBuysNoPlanCreatesNoEntity) {
  const auto exists = [&] {
    return run_blocking(
        db->read([&](Tx& tx) { return tx.get<EntityRepo>().entity_exists(hospital); }));
  };
  EXPECT_EQ(apply(checkout_completed("platinum")), AuditStatus::ignored);
  auto unpaid = checkout_completed();
  unpaid.object["payment_status"] = "unpaid";
  EXPECT_EQ(apply(unpaid), AuditStatus::ignored);
  EXPECT_FALSE(exists());
  EXPECT_FALSE(plan());
  EXPECT_EQ(apply(checkout_completed()), AuditStatus::ok);
  EXPECT_TRUE(exists());
}

TEST_P(Events, AnEventIsAppliedOnceAndItsRepeatAudited) {
  EXPECT_EQ(apply(checkout_completed()), AuditStatus::ok);
  const auto paid = invoice("invoice.payment_succeeded", unique_id("in"));
  EXPECT_EQ(apply(paid), AuditStatus::ok);
  EXPECT_EQ(apply(paid), AuditStatus::duplicate);
  ASSERT_EQ(payments().size(), 1u);
  const auto rows = audit(paid);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].status, AuditStatus::duplicate);
  const auto inbox =
      run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().inbox_record(paid.id); }));
  const auto stored_now = std::chrono::floor<std::chrono::microseconds>(now);  // as kept
  EXPECT_EQ(inbox, (InboxRecord{.status = InboxStatus::processed,
                                .attempts = 1,
                                .type = "invoice.payment_succeeded",
                                .created = paid.created,
                                .received_at = stored_now,
                                .processed_at = stored_now}));
}

TEST_P(Events, APaymentIsRecordedWithTheSpecificationsFields) {
  apply(checkout_completed());
  const auto invoice_id = unique_id("in");
  apply(invoice("invoice.payment_succeeded", invoice_id));
  const auto rows = payments();
  ASSERT_EQ(rows.size(), 1u);
  const Payment& p = rows[0];
  EXPECT_EQ(p.invoice_id, invoice_id);
  EXPECT_EQ(p.customer_id, customer);
  EXPECT_EQ(p.subscription_id, subscription);
  EXPECT_EQ(p.payment_intent_id, "pi_1");
  EXPECT_EQ(p.charge_id, "ch_1");
  EXPECT_EQ(p.entity, hospital);
  EXPECT_EQ(p.plan_type, PlanType::lite);
  EXPECT_EQ(p.cycle, BillingCycle::monthly);
  EXPECT_EQ(p.amount, 49900);
  EXPECT_EQ(p.currency, "usd");
  EXPECT_EQ(p.fee_amount, 1477);
  EXPECT_EQ(p.net_amount, 48423);
  ASSERT_TRUE(p.payment_method);
  EXPECT_EQ(json::parse(*p.payment_method),
            json::parse(R"({"type":"card","card":{"brand":"visa","last4":"4242"}})"));
  EXPECT_TRUE(p.paid_at);
}

// A webhook endpoint made at Stripe API version 2025-03-31 or later gets invoices in that
// version's shape: the subscription and its metadata under `parent.subscription_details`, a line's
// price under `pricing.price_details`, a line's proration flag on its parent. Read as the pinned
// version's: a failed payment suspends, a paid one records its payment and reactivates.
TEST_P(Events, InvoicesInTheShapeOfNewerApiVersionsAreRead) {
  apply(checkout_completed());
  const auto newer_invoice = [&](std::string_view type, Cents paid) {
    return event(
        type,
        {{"id", unique_id("in")},
         {"object", "invoice"},
         {"customer", customer},
         {"subscription", nullptr},
         {"amount_paid", paid},
         {"currency", "usd"},
         {"parent",
          {{"type", "subscription_details"},
           {"subscription_details", {{"subscription", subscription}, {"metadata", metadata()}}}}},
         {"lines",
          {{"data",
            json::array{{{"amount", paid},
                         {"pricing",
                          {{"type", "price_details"},
                           {"price_details", {{"price", "price_local_hospital_pro_monthly"}}}}},
                         {"parent",
                          {{"type", "subscription_item_details"},
                           {"subscription_item_details",
                            {{"proration", false}, {"subscription", subscription}}}}}}}}}}});
  };
  EXPECT_EQ(apply(newer_invoice("invoice.payment_failed", 0)), AuditStatus::ok);
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  EXPECT_EQ(apply(newer_invoice("invoice.payment_succeeded", 99900)), AuditStatus::ok);
  EXPECT_EQ(plan()->status, PlanStatus::active);
  const auto rows = payments();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].subscription_id, subscription);
  EXPECT_EQ(rows[0].amount, 99900);
  EXPECT_EQ(rows[0].plan_type, PlanType::pro);
}

// A payment is labelled with the plan of the price its subscription's period is billed at, not
// with a proration's, which Stripe may list first: the credit for the rest of a lite period on
// the invoice that bills the next period on pro.
TEST_P(Events, APaymentIsLabelledWithThePeriodsPriceNotAProrations) {
  apply(checkout_completed());
  const auto line = [](std::string_view type, bool proration, Cents amount,
                       std::string_view price) {
    return json::object{
        {"type", type}, {"proration", proration}, {"amount", amount}, {"price", {{"id", price}}}};
  };
  apply(event(
      "invoice.payment_succeeded",
      {{"id", unique_id("in")},
       {"object", "invoice"},
       {"customer", customer},
       {"subscription", subscription},
       {"amount_paid", 125000},
       {"currency", "usd"},
       {"subscription_details", {{"metadata", metadata()}}},
       {"lines",
        {{"data",
          json::array{line("invoiceitem", true, -24950, "price_local_hospital_lite_monthly"),
                      line("invoiceitem", true, 49950, "price_local_hospital_pro_monthly"),
                      line("subscription", false, 99900, "price_local_hospital_pro_monthly")}}}}}));
  const auto rows = payments();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].plan_type, PlanType::pro);
  EXPECT_EQ(rows[0].cycle, BillingCycle::monthly);
}

// Two checkouts opened before either was paid, then both paid: the plan stays with the
// subscription that paid for it first. The second's payments are recorded all the same, and its
// failures leave the plan alone.
TEST_P(Events, ASecondSubscriptionLeavesTheActivePlanWithTheFirst) {
  apply(checkout_completed());
  const auto first = subscription;
  subscription = unique_id("sub");
  const auto second = checkout_completed("pro");
  EXPECT_EQ(apply(second), AuditStatus::ignored);
  EXPECT_EQ(audit(second).at(0).note,
            "a second subscription, " + subscription + ", for an active plan " + first +
                " pays for");  // for an admin to find it, and to refund it
  EXPECT_EQ(plan()->stripe_subscription_id, first);
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  apply(invoice("invoice.payment_succeeded", unique_id("in")));
  EXPECT_EQ(payments().size(), 1u);
  apply(invoice("invoice.payment_failed", unique_id("in")));
  EXPECT_EQ(plan()->status, PlanStatus::active);
}

// The second subscription is kept as an extra one: when the plan's own ends (its payer cancelled
// the first rather than the second), the plan goes on with it, at its price's plan, rather than
// ending while it is still charged. Its own changes and end are followed meanwhile.
TEST_P(Events, ThePlanGoesOnWithAnExtraSubscriptionWhenItsOwnEnds) {
  apply(checkout_completed());
  const auto first = subscription;
  subscription = unique_id("sub");
  const auto second = subscription;
  EXPECT_EQ(apply(checkout_completed("pro")), AuditStatus::ignored);
  // Moved to yearly pro while extra: followed.
  EXPECT_EQ(apply(subscription_event("customer.subscription.updated", "active",
                                     "price_local_hospital_pro_yearly")),
            AuditStatus::ok);
  EXPECT_EQ(plan()->plan_type, PlanType::lite);

  subscription = first;
  const auto ended = subscription_event("customer.subscription.deleted", "canceled",
                                        "price_local_hospital_lite_monthly");
  EXPECT_EQ(apply(ended), AuditStatus::ok);
  EXPECT_EQ(audit(ended).at(0).note, "the plan goes on with the subscription " + second);
  auto p = plan();
  EXPECT_EQ(p->status, PlanStatus::active);
  EXPECT_EQ(p->stripe_subscription_id, second);
  EXPECT_EQ(p->plan_type, PlanType::pro);
  EXPECT_EQ(p->billing_cycle, BillingCycle::yearly);
  EXPECT_EQ(p->max_agents, catalog().find(EntityKind::hospital, PlanType::pro)->max_agents);
  EXPECT_EQ(history().back().from_plan_type, PlanType::lite);
  EXPECT_EQ(history().back().to_plan_type, PlanType::pro);

  // The first's later events change nothing (it has ended); the second's end ends the plan.
  EXPECT_EQ(apply(subscription_event("customer.subscription.updated", "active",
                                     "price_local_hospital_lite_monthly")),
            AuditStatus::stale);
  subscription = second;
  EXPECT_EQ(apply(subscription_event("customer.subscription.deleted", "canceled",
                                     "price_local_hospital_pro_yearly")),
            AuditStatus::ok);
  EXPECT_EQ(plan()->status, PlanStatus::cancelled);
}

// A choice the subscription was to be priced at goes with it: nothing will apply it any more.
TEST_P(Events, APlansEndDropsTheChoiceItsSubscriptionWasToBePricedAt) {
  apply(checkout_completed());
  choose_pro_yearly();
  ASSERT_EQ(plan()->pending_plan_type, PlanType::pro);
  ASSERT_EQ(plan()->pending_billing_cycle, BillingCycle::yearly);
  EXPECT_EQ(apply(subscription_event("customer.subscription.deleted", "canceled",
                                     "price_local_hospital_lite_monthly")),
            AuditStatus::ok);
  EXPECT_EQ(plan()->status, PlanStatus::cancelled);
  EXPECT_EQ(plan()->pending_plan_type, std::nullopt);
  EXPECT_EQ(plan()->pending_billing_cycle, std::nullopt);
}

// The provider confirming the cycle chosen makes it the plan's; one confirming an older choice
// (the type alone) leaves the newer cycle pending.
TEST_P(Events, TheProviderConfirmsACycleChosen) {
  apply(checkout_completed());  // lite monthly
  choose_pro_yearly();
  EXPECT_EQ(apply(subscription_event("customer.subscription.updated", "active",
                                     "price_local_hospital_pro_monthly")),
            AuditStatus::ok);
  EXPECT_EQ(plan()->plan_type, PlanType::pro);
  EXPECT_EQ(plan()->billing_cycle, BillingCycle::monthly);
  EXPECT_EQ(plan()->pending_plan_type, std::nullopt);
  EXPECT_EQ(plan()->pending_billing_cycle, BillingCycle::yearly);
  EXPECT_EQ(apply(subscription_event("customer.subscription.updated", "active",
                                     "price_local_hospital_pro_yearly")),
            AuditStatus::ok);
  EXPECT_EQ(plan()->billing_cycle, BillingCycle::yearly);
  EXPECT_EQ(plan()->pending_billing_cycle, std::nullopt);
  EXPECT_EQ(plan()->status, PlanStatus::active);
}

// An extra subscription that ends first is forgotten: the plan's own end then ends the plan.
TEST_P(Events, AnExtraSubscriptionThatEndedIsNotGoneOnWith) {
  apply(checkout_completed());
  const auto first = subscription;
  subscription = unique_id("sub");
  apply(checkout_completed("pro"));
  const auto extra_ended = subscription_event("customer.subscription.updated", "canceled",
                                              "price_local_hospital_pro_monthly");
  EXPECT_EQ(apply(extra_ended), AuditStatus::ok);
  EXPECT_EQ(audit(extra_ended).at(0).note, "another subscription of the owner has ended");
  subscription = first;
  EXPECT_EQ(apply(subscription_event("customer.subscription.updated", "canceled",
                                     "price_local_hospital_lite_monthly")),
            AuditStatus::ok);
  EXPECT_EQ(plan()->status, PlanStatus::cancelled);
  EXPECT_EQ(plan()->stripe_subscription_id, first);
}

// Stripe does not promise order. A second subscription's checkout that arrives after the plan's
// own subscription was deleted (its `created` older) still gives the plan that subscription; one
// whose deletion came first is never taken up; and a subscription the plan goes on with keeps
// its own events' time, so that its deletion, older than the first's, still ends the plan.
TEST_P(Events, AnotherSubscriptionsEventsCountInAnyOrder) {
  apply(checkout_completed());
  const auto first = subscription;
  const std::int64_t t = clock + 100;
  subscription = unique_id("sub");
  const auto late_checkout = checkout_completed("pro");  // made now, applied after
  const auto second = subscription;
  subscription = first;
  apply(subscription_event("customer.subscription.deleted", "canceled",
                           "price_local_hospital_lite_monthly", t + 10));
  EXPECT_EQ(plan()->status, PlanStatus::cancelled);
  EXPECT_EQ(apply(late_checkout), AuditStatus::ok);
  EXPECT_EQ(plan()->status, PlanStatus::active);
  EXPECT_EQ(plan()->stripe_subscription_id, second);
  EXPECT_EQ(plan()->plan_type, PlanType::pro);

  // A third, deleted before its checkout's completion arrives: never taken up.
  subscription = unique_id("sub");
  apply(subscription_event("customer.subscription.deleted", "canceled",
                           "price_local_hospital_lite_monthly", t + 20));
  const auto dead = checkout_completed();
  EXPECT_EQ(apply(dead), AuditStatus::ignored);
  EXPECT_EQ(audit(dead).at(0).note, "the subscription has ended");
  EXPECT_EQ(plan()->stripe_subscription_id, second);
}

TEST_P(Events, ThePlanGoesOnWithAnotherSubscriptionAtItsOwnEventsTime) {
  apply(checkout_completed());
  const auto first = subscription;
  subscription = unique_id("sub");
  const auto second = subscription;
  apply(checkout_completed("pro"));  // kept as another
  const std::int64_t t = clock + 100;
  // The second is deleted at t, the first at t + 10; the first's deletion arrives first.
  const auto second_deleted = subscription_event("customer.subscription.deleted", "canceled",
                                                 "price_local_hospital_pro_monthly", t);
  subscription = first;
  apply(subscription_event("customer.subscription.deleted", "canceled",
                           "price_local_hospital_lite_monthly", t + 10));
  EXPECT_EQ(plan()->stripe_subscription_id, second);
  EXPECT_EQ(plan()->status, PlanStatus::active);
  EXPECT_EQ(apply(second_deleted), AuditStatus::ok);
  EXPECT_EQ(plan()->status, PlanStatus::cancelled);
}

// A checkout opened before the plan was suspended and paid since: the plan moves to it, and the
// suspended subscription is kept as another, which its payer may still pay for; if so, the plan
// goes on with it when the new one ends.
TEST_P(Events, ASuspendedPlansSubscriptionIsKeptWhenACheckoutReplacesIt) {
  apply(checkout_completed());
  const auto first = subscription;
  subscription = unique_id("sub");
  const auto replacing = checkout_completed("pro");  // opened while active, paid later
  const auto second = subscription;
  subscription = first;
  apply(invoice("invoice.payment_failed", unique_id("in")));
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  EXPECT_EQ(apply(replacing), AuditStatus::ok);
  EXPECT_EQ(plan()->stripe_subscription_id, second);
  EXPECT_EQ(plan()->status, PlanStatus::active);
  // The first is paid after all, then the second ends: the plan goes on with the first.
  apply(subscription_event("customer.subscription.updated", "active",
                           "price_local_hospital_lite_monthly"));
  subscription = second;
  apply(subscription_event("customer.subscription.deleted", "canceled",
                           "price_local_hospital_pro_monthly"));
  EXPECT_EQ(plan()->stripe_subscription_id, first);
  EXPECT_EQ(plan()->status, PlanStatus::active);
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
}

// An invoice that credits covered is paid with nothing charged: its payment is 0, with no fee.
// An invoice without metadata of another of the owner's subscriptions, paid by another customer
// (a second checkout that made its own): recorded for the owner that subscription is known for.
TEST_P(Events, AnotherSubscriptionsInvoiceWithoutMetadataIsRecordedForItsOwner) {
  apply(checkout_completed());
  const auto other = unique_id("sub");
  const auto other_customer = unique_id("cus");
  EXPECT_EQ(apply(event("checkout.session.completed", {{"id", unique_id("cs")},
                                                       {"object", "checkout.session"},
                                                       {"payment_status", "paid"},
                                                       {"customer", other_customer},
                                                       {"subscription", other},
                                                       {"metadata", metadata("pro")}})),
            AuditStatus::ignored);
  const auto paid = event("invoice.payment_succeeded", {{"id", unique_id("in")},
                                                        {"object", "invoice"},
                                                        {"customer", other_customer},
                                                        {"subscription", other},
                                                        {"amount_paid", 99900},
                                                        {"currency", "usd"}});
  EXPECT_EQ(apply(paid), AuditStatus::ok);
  const auto rows = payments();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].subscription_id, other);
  EXPECT_EQ(rows[0].customer_id, other_customer);
  EXPECT_EQ(rows[0].amount, 99900);
}

TEST_P(Events, AnInvoicePaidByCreditsIsAPaymentOfZeroWithNoFee) {
  apply(checkout_completed());
  auto object = json::parse(invoice("invoice.payment_succeeded", unique_id("in")).payload)
                    .at("data")
                    .at("object")
                    .as_object();
  object["amount_paid"] = 0;
  object["charge"] = nullptr;
  object["payment_intent"] = nullptr;
  EXPECT_EQ(apply(event("invoice.payment_succeeded", std::move(object))), AuditStatus::ok);
  const auto paid = payments();
  ASSERT_EQ(paid.size(), 1u);
  EXPECT_EQ(paid[0].amount, 0);
  EXPECT_EQ(paid[0].fee_amount, 0);
  EXPECT_EQ(paid[0].net_amount, 0);
  EXPECT_EQ(paid[0].charge_id, std::nullopt);
}

// From a third review. A subscription a checkout replaced keeps its own events' time, so its
// later deletion still counts; a checkout for the plan's subscription after its deletion (same
// second) changes nothing; what another subscription's newer events said beats its checkout;
// and an event for a subscription no one knows, without metadata, is ignored, not a crash.
TEST_P(Events, WhatIsKnownOfAnotherSubscriptionIsItsOwn) {
  apply(checkout_completed());
  const auto first = subscription;
  subscription = unique_id("sub");
  const auto replacing = checkout_completed("pro");
  const auto second = subscription;
  subscription = first;
  apply(invoice("invoice.payment_failed", unique_id("in")));  // suspended
  const auto first_deleted = subscription_event("customer.subscription.deleted", "canceled",
                                                "price_local_hospital_lite_monthly");
  const std::int64_t t = clock;
  subscription = second;
  EXPECT_EQ(apply(event("checkout.session.completed",
                        json::parse(replacing.payload).at("data").at("object").as_object(), t + 5)),
            AuditStatus::ok);  // the replacing checkout, made after the first's deletion
  EXPECT_EQ(plan()->stripe_subscription_id, second);
  EXPECT_EQ(apply(first_deleted), AuditStatus::ok);  // older than that checkout, yet its own
  subscription = second;
  apply(subscription_event("customer.subscription.deleted", "canceled",
                           "price_local_hospital_pro_monthly", t + 10));
  EXPECT_EQ(plan()->status, PlanStatus::cancelled);  // not suspended on the dead first

  // Its checkout again, in the same second as its deletion: nothing.
  EXPECT_EQ(
      apply(event("checkout.session.completed",
                  json::parse(replacing.payload).at("data").at("object").as_object(), t + 10)),
      AuditStatus::stale);
  EXPECT_EQ(plan()->status, PlanStatus::cancelled);

  // A third whose price moved to pro yearly and whose payment failed before its checkout (lite
  // monthly) arrived: the plan follows what it said last.
  subscription = unique_id("sub");
  apply(subscription_event("customer.subscription.updated", "past_due",
                           "price_local_hospital_pro_yearly", t + 30));
  apply(event("checkout.session.completed",
              {{"id", unique_id("cs")},
               {"object", "checkout.session"},
               {"payment_status", "paid"},
               {"customer", customer},
               {"subscription", subscription},
               {"metadata", metadata("lite")}},
              t + 20));
  auto p = plan();
  EXPECT_EQ(p->stripe_subscription_id, subscription);
  EXPECT_EQ(p->plan_type, PlanType::pro);
  EXPECT_EQ(p->billing_cycle, BillingCycle::yearly);
  EXPECT_EQ(p->status, PlanStatus::suspended);

  const auto nameless =
      event("customer.subscription.updated",
            {{"id", unique_id("sub")}, {"object", "subscription"}, {"status", "active"}});
  EXPECT_EQ(apply(nameless), AuditStatus::ignored);
}

TEST_P(Events, APaidInvoiceBeforeTheCheckoutIsRecordedAndActivatesNothing) {
  apply(invoice("invoice.payment_succeeded", unique_id("in")));
  EXPECT_EQ(payments().size(), 1u);
  EXPECT_EQ(plan(), std::nullopt);
  apply(checkout_completed());
  EXPECT_EQ(plan()->status, PlanStatus::active);
}

// The payment of a checkout's first invoice names the session, whichever event comes first;
// later invoices' payments name none.
TEST_P(Events, ACheckoutsFirstPaymentNamesItsSessionInEitherOrder) {
  const auto first = unique_id("in");
  apply(checkout_completed("lite", "cs_first", first));
  apply(invoice("invoice.payment_succeeded", first));
  apply(invoice("invoice.payment_succeeded", unique_id("in")));
  auto recorded = payments();
  ASSERT_EQ(recorded.size(), 2u);
  EXPECT_EQ(recorded[0].checkout_session_id, "cs_first");
  EXPECT_EQ(recorded[1].checkout_session_id, std::nullopt);

  subscription = unique_id("sub");  // a second checkout, its invoice's event first
  const auto second = unique_id("in");
  apply(invoice("invoice.payment_succeeded", second));
  apply(checkout_completed("pro", "cs_second", second));
  recorded = payments();
  ASSERT_EQ(recorded.size(), 3u);
  EXPECT_EQ(recorded[2].invoice_id, second);
  EXPECT_EQ(recorded[2].checkout_session_id, "cs_second");
}

// A paused subscription's plan is suspended until the subscription is resumed: an invoice paid
// meanwhile (one marked uncollectible, paid by hand) does not reactivate it.
TEST_P(Events, AnInvoicePaidWhileCollectionIsPausedLeavesThePlanSuspended) {
  apply(checkout_completed());
  apply(collection(true));
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  EXPECT_EQ(apply(invoice("invoice.payment_succeeded", unique_id("in"))), AuditStatus::ok);
  EXPECT_EQ(payments().size(), 1u);
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  apply(collection(false));
  EXPECT_EQ(plan()->status, PlanStatus::active);

  // Paused, resumed, then paid, the payment delivered before the resumption: the resumption
  // still applies (the held-back payment did not move the plan's event time past it).
  apply(collection(true));
  const auto resumed = collection(false);
  EXPECT_EQ(apply(invoice("invoice.payment_succeeded", unique_id("in"))), AuditStatus::ok);
  EXPECT_EQ(apply(resumed), AuditStatus::ok);
  EXPECT_EQ(plan()->status, PlanStatus::active);

  // Stripe's own `paused` status (a trial ended without a payment method) holds it as well.
  apply(subscription_event("customer.subscription.updated", "paused",
                           "price_local_hospital_lite_monthly"));
  apply(invoice("invoice.payment_succeeded", unique_id("in")));
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
}

// Another subscription of the owner paused: the plan that goes on with it is suspended, until
// it is resumed, whatever it pays meanwhile.
TEST_P(Events, APlanGoesOnWithAPausedOtherSubscriptionSuspended) {
  const auto [first, second] = plan_and_another_subscription();
  apply(collection(true, "price_local_hospital_pro_monthly"));
  subscription = first;
  apply(subscription_event("customer.subscription.deleted", "canceled",
                           "price_local_hospital_lite_monthly"));
  EXPECT_EQ(plan()->stripe_subscription_id, second);
  EXPECT_EQ(plan()->plan_type, PlanType::pro);
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  subscription = second;
  apply(invoice("invoice.payment_succeeded", unique_id("in")));
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  apply(collection(false, "price_local_hospital_pro_monthly"));
  EXPECT_EQ(plan()->status, PlanStatus::active);
}

// A signed invoice whose amount paid cannot be one (not whole cents, below zero, more than
// Stripe's 12 digits, absent), or whose currency is no ISO 4217 code, records no payment and
// reactivates nothing: it is audited as ignored, with why.
TEST_P(Events, AnInvoiceWithAnImpossibleAmountRecordsNoPayment) {
  apply(checkout_completed());
  apply(invoice("invoice.payment_failed", unique_id("in")));
  const std::string_view amount = "amount_paid", currency = "currency";
  const std::pair<std::string_view, json::value> cases[] = {
      {amount, "4990"},    {amount, 1e30},    {amount, -500},
      {amount, 49.9},      {amount, nullptr}, {amount, 1'000'000'000'000},
      {currency, nullptr}, {currency, "US"},  {currency, "USD"},
      {currency, "usdt"},  {currency, 840}};
  for (const auto& [key, value] : cases) {
    SCOPED_TRACE(std::string(key) + " " + json::serialize(value));
    auto paid = invoice_object("invoice.payment_succeeded", unique_id("in"));
    paid[key] = value;
    const auto e = event("invoice.payment_succeeded", std::move(paid));
    EXPECT_EQ(apply(e), AuditStatus::ignored);
    EXPECT_EQ(audit(e).at(0).note, "invoice without a valid " + std::string(key));
  }
  EXPECT_TRUE(payments().empty());
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  // The largest amount Stripe takes is one.
  auto largest = invoice_object("invoice.payment_succeeded", unique_id("in"));
  largest["amount_paid"] = 999'999'999'999;
  EXPECT_EQ(apply(event("invoice.payment_succeeded", std::move(largest))), AuditStatus::ok);
  ASSERT_EQ(payments().size(), 1u);
  EXPECT_EQ(payments()[0].amount, 999'999'999'999);
}

// A signed event whose metadata names another entity than the one its subscription or customer
// is known for (metadata forged, or edited at the provider) is not taken: no payment is recorded
// for that entity, and no plan of its follows the subscription (which would show it another's
// subscription and invoices).
TEST_P(Events, MetadataNamingAnotherEntityThanTheSubscriptionsIsNotTaken) {
  apply(checkout_completed());  // the hospital's plan follows the subscription and customer
  const EntityRef other{EntityKind::hospital, unique_id("h")};
  run_blocking(db->transact([&](Tx& tx) { tx.get<EntityRepo>().create_entity(other, now); }));
  const json::object named_other{
      {"role", "hospital"}, {"role_entity_id", other.id}, {"plan", "lite"}, {"cycle", "monthly"}};
  const auto paid_for_other = [&] {
    auto object = invoice_object("invoice.payment_succeeded", unique_id("in"));
    object["subscription_details"] = {{"metadata", named_other}};
    return event("invoice.payment_succeeded", std::move(object));
  };
  const auto checkout_for_other = [&] {
    auto object = checkout_completed().object;
    object["id"] = unique_id("cs");
    object["metadata"] = named_other;
    return event("checkout.session.completed", std::move(object));
  };
  // The subscription's own events naming the other: it is not recorded as the other's, which
  // would then see and cancel it, and have its plan go on with it when its own ends.
  const auto subscription_for_other = [&](std::string_view type, std::string_view status) {
    auto object = subscription_object(status, "price_local_hospital_pro_monthly");
    object["metadata"] = named_other;
    return event(type, std::move(object));
  };
  const auto others = [&] {
    return run_blocking(db->read([&](Tx& tx) {
      return std::tuple(tx.get<PaymentRepo>().payments(other), tx.get<PlanRepo>().find_plan(other),
                        tx.get<PlanRepo>().find_other_subscription(subscription));
    }));
  };
  const auto paid = paid_for_other();
  EXPECT_EQ(apply(paid), AuditStatus::ignored);
  EXPECT_EQ(audit(paid).at(0).note, "the subscription or customer is another entity's");
  EXPECT_EQ(apply(checkout_for_other()), AuditStatus::ignored);
  for (const auto* type : {"customer.subscription.updated", "customer.subscription.deleted"}) {
    const auto named = subscription_for_other(type, "active");
    EXPECT_EQ(apply(named), AuditStatus::ignored) << type;
    EXPECT_EQ(audit(named).at(0).note, "the subscription or customer is another entity's");
    EXPECT_EQ(std::get<2>(others()), std::nullopt) << type;
  }
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  EXPECT_EQ(plan()->status, PlanStatus::active);
  // Another subscription of the same customer: the customer says whose it is.
  subscription = unique_id("sub");
  EXPECT_EQ(apply(paid_for_other()), AuditStatus::ignored);
  EXPECT_EQ(apply(checkout_for_other()), AuditStatus::ignored);
  EXPECT_EQ(apply(subscription_for_other("customer.subscription.updated", "active")),
            AuditStatus::ignored);
  const auto [payments_of_other, plan_of_other, known_as_others] = others();
  EXPECT_TRUE(payments_of_other.empty());
  EXPECT_EQ(plan_of_other, std::nullopt);
  EXPECT_EQ(known_as_others, std::nullopt);
  // Named for its owner, such an invoice is taken.
  EXPECT_EQ(apply(invoice("invoice.payment_succeeded", unique_id("in"))), AuditStatus::ok);
  EXPECT_EQ(payments().size(), 1u);
}

// A paid_at before 1970, or after the latest an event may be dated, is no time Stripe sends
// (the largest overflowed a TimePoint into 1969): the payment is dated by the event.
TEST_P(Events, APaidAtBefore1970OrPast2200IsTheEventsTime) {
  apply(checkout_completed());
  for (const std::int64_t paid_at :
       {std::int64_t{-86400}, kLatestCreated + 1, std::numeric_limits<std::int64_t>::max()}) {
    SCOPED_TRACE(paid_at);
    const auto invoice = unique_id("in");
    auto paid = invoice_object("invoice.payment_succeeded", invoice);
    paid["status_transitions"] = {{"paid_at", paid_at}};
    const auto e = event("invoice.payment_succeeded", std::move(paid));
    EXPECT_EQ(apply(e), AuditStatus::ok);
    const auto rows = payments();
    const auto recorded = std::find_if(rows.begin(), rows.end(),
                                       [&](const Payment& p) { return p.invoice_id == invoice; });
    ASSERT_NE(recorded, rows.end());
    EXPECT_EQ(recorded->paid_at, TimePoint(std::chrono::seconds(e.created)));
  }
}

TEST_P(Events, AFailedPaymentSuspendsAndTheNextPaymentReactivates) {
  apply(checkout_completed());
  const auto failed = invoice("invoice.payment_failed", unique_id("in"));
  apply(failed);
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  // The audit row says what became of the plan, for whoever follows the failure up.
  EXPECT_EQ(audit(failed).at(0).note, "payment failed: plan suspended until the invoice is paid");
  const auto again = invoice("invoice.payment_failed", unique_id("in"));  // Stripe's next attempt
  EXPECT_EQ(apply(again), AuditStatus::ok);
  EXPECT_EQ(audit(again).at(0).note, "payment failed: plan left suspended");
  apply(invoice("invoice.payment_succeeded", unique_id("in")));
  EXPECT_EQ(plan()->status, PlanStatus::active);
  const auto changes = history();
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[1].to_status, PlanStatus::suspended);
  EXPECT_EQ(changes[2].to_status, PlanStatus::active);
}

// An invoice's failed attempt and its payment in one second (paid at once on a retry), the
// failure delivered last: the plan stays active. Another invoice's failure of that second still
// suspends it.
TEST_P(Events, AFailureTiedWithTheSameInvoicesPaymentLeavesThePlanActive) {
  apply(checkout_completed());
  const auto second = ++clock;
  EXPECT_EQ(apply(invoice("invoice.payment_succeeded", "in_retried", second)), AuditStatus::ok);
  EXPECT_EQ(apply(invoice("invoice.payment_failed", "in_retried", second)), AuditStatus::stale);
  EXPECT_EQ(plan()->status, PlanStatus::active);
  EXPECT_EQ(apply(invoice("invoice.payment_failed", unique_id("in"), second)), AuditStatus::ok);
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
}

TEST_P(Events, AnOlderEventArrivingLateDoesNotMoveThePlanBack) {
  apply(checkout_completed());
  const auto failed_early = invoice("invoice.payment_failed", unique_id("in"), clock + 1);
  const auto paid_later = invoice("invoice.payment_succeeded", unique_id("in"), clock + 2);
  EXPECT_EQ(apply(paid_later), AuditStatus::ok);
  EXPECT_EQ(apply(failed_early), AuditStatus::stale);
  EXPECT_EQ(plan()->status, PlanStatus::active);
  EXPECT_EQ(payments().size(), 1u);
}

// Events queued at the same moment (they usually share one commit batch): the newer still wins
// whatever the order they are taken in, and the copy queued beside the original is applied once.
TEST_P(Events, OutOfOrderEventsInsideOneBatch) {
  apply(checkout_completed());
  const auto failed_early = invoice("invoice.payment_failed", unique_id("in"), clock + 1);
  const auto paid_later = invoice("invoice.payment_succeeded", unique_id("in"), clock + 2);
  EXPECT_THAT(apply_in_one_batch({&paid_later, &failed_early, &paid_later}),
              ::testing::ElementsAre(AuditStatus::ok, AuditStatus::stale, AuditStatus::duplicate));
  EXPECT_EQ(plan()->status, PlanStatus::active);
  EXPECT_EQ(payments().size(), 1u);
}

// An event that fails inside a batch rolls back alone, to nothing of it: the others of its batch
// are committed, and it is applied when it comes again.
TEST_P(Events, AnEventThatFailsInsideABatchLeavesTheOthersCommitted) {
  auto [own, run_sql] = testing::open_test_db_with_sql(GetParam());
  db = std::move(own);
  apply(checkout_completed());
  const auto refused_invoice = unique_id("in");
  const auto trigger = "refuse_" + random_hex(6);
  if (GetParam() == "sqlite")
    run_sql(
        fmt::format("CREATE TRIGGER {0} BEFORE INSERT ON payments WHEN "
                    "NEW.stripe_invoice_id = '{1}' BEGIN SELECT RAISE(ABORT, 'injected'); END",
                    trigger, refused_invoice));
  else
    run_sql(
        fmt::format("CREATE FUNCTION {0}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION 'injected'; END $$; CREATE TRIGGER {0} BEFORE INSERT ON "
                    "payments FOR EACH ROW WHEN (NEW.stripe_invoice_id = '{1}') EXECUTE "
                    "FUNCTION {0}()",
                    trigger, refused_invoice));
  const auto before = invoice("invoice.payment_succeeded", unique_id("in"));
  const auto refused = invoice("invoice.payment_succeeded", refused_invoice);
  const auto after = invoice("invoice.payment_succeeded", unique_id("in"));
  EXPECT_THAT(apply_in_one_batch({&before, &refused, &after}),
              ::testing::ElementsAre(AuditStatus::ok, std::nullopt, AuditStatus::ok));
  EXPECT_EQ(payments().size(), 2u);
  EXPECT_TRUE(audit(refused).empty());
  EXPECT_EQ(run_blocking(
                db->read([&](Tx& tx) { return tx.get<PaymentRepo>().inbox_record(refused.id); })),
            std::nullopt);
  EXPECT_EQ(audit(after).size(), 1u);

  run_sql(GetParam() == "sqlite"
              ? "DROP TRIGGER " + trigger
              : fmt::format("DROP TRIGGER {0} ON payments; DROP FUNCTION {0}()", trigger));
  // Older than `after`, which the plan took: stale for the plan, its payment recorded.
  EXPECT_EQ(apply(refused), AuditStatus::stale);
  EXPECT_EQ(payments().size(), 3u);
}

// A copy of a processed event id that names another invoice, in one batch with that invoice's
// own event and ahead of it: the copy records nothing, and the invoice's own event its payment
// (the copy's insert, sent ahead, took the row; withdrawn, the other records it itself).
TEST_P(Events, ACopyWithAnotherInvoiceLeavesThatInvoicesOwnPaymentInOneBatch) {
  apply(checkout_completed());
  const auto first = invoice("invoice.payment_succeeded", unique_id("in"));
  EXPECT_EQ(apply(first), AuditStatus::ok);
  const auto other_invoice = unique_id("in");
  auto copy = invoice("invoice.payment_succeeded", other_invoice);
  copy.id = first.id;
  const auto own = invoice("invoice.payment_succeeded", other_invoice);
  EXPECT_THAT(apply_in_one_batch({&copy, &own}),
              ::testing::ElementsAre(AuditStatus::duplicate, AuditStatus::ok));
  std::vector<std::string> invoices;
  for (const auto& p : payments()) invoices.push_back(p.invoice_id.value_or(""));
  EXPECT_THAT(invoices, ::testing::UnorderedElementsAre(
                            std::string(first.object.at("id").as_string()), other_invoice));
  ASSERT_FALSE(audit(own).empty());
  EXPECT_EQ(audit(own).back().status, AuditStatus::ok);
}

// Read before the other replica's commit, the plan would still be active: the paid invoice would
// change only its event time and leave it suspended, with the newer event's time.
TEST_P(Events, AnEventWaitsForAnotherReplicasChangeToItsPlanAndBuildsOnIt) {
  auto [first, replica] = testing::open_test_db_twice(GetParam());
  db = std::move(first);
  apply(checkout_completed());
  const auto failed = invoice("invoice.payment_failed", unique_id("in"));
  const auto paid = invoice("invoice.payment_succeeded", unique_id("in"));
  beside_another_replica(std::move(replica), applying(failed),
                         [&] { EXPECT_EQ(apply(paid), AuditStatus::ok); });
  EXPECT_EQ(plan()->status, PlanStatus::active);
  EXPECT_EQ(plan()->last_event_created, paid.created);
  ASSERT_EQ(history().size(), 3u);
  EXPECT_EQ(history()[2].to_status, PlanStatus::active);
}

// prepare_event says whether it locked ahead every owner the event's effects will lock: yes when
// metadata names the owner, or when the type changes no plan; no for an event whose owner is
// found as it applies (a batch then prepares no later unit before it has applied).
TEST_P(Events, PreparingSaysWhetherTheOwnerIsLockedAhead) {
  apply(checkout_completed());
  const auto without_metadata = event("invoice.payment_failed", {{"id", unique_id("in")},
                                                                 {"object", "invoice"},
                                                                 {"customer", customer},
                                                                 {"subscription", subscription}});
  const auto other = event("customer.created", {{"id", customer}, {"object", "customer"}});
  const auto with_metadata = invoice("invoice.payment_succeeded", unique_id("in"));
  std::vector<bool> ahead;
  for (const StripeEvent* e : {&without_metadata, &other, &with_metadata})
    ahead.push_back(run_blocking(db->transact([&](Tx& tx) {
      const bool locked_ahead = prepare_event(tx, rules, *e, now);
      apply_event(tx, rules, *e, now);
      return locked_ahead;
    })));
  EXPECT_THAT(ahead, ::testing::ElementsAre(false, true, true));
}

// An invoice of a subscription made before checkouts carried metadata finds its plan by the
// subscription, and waits in the same way.
TEST_P(Events, AnEventWithoutMetadataAlsoWaitsForAnotherReplicasChange) {
  auto [first, replica] = testing::open_test_db_twice(GetParam());
  db = std::move(first);
  apply(checkout_completed());
  apply(invoice("invoice.payment_failed", unique_id("in")));  // suspended: `paid` reactivates
  const auto paid = invoice("invoice.payment_succeeded", unique_id("in"));
  const auto failed = event("invoice.payment_failed", {{"id", unique_id("in")},
                                                       {"object", "invoice"},
                                                       {"customer", customer},
                                                       {"subscription", subscription},
                                                       {"amount_paid", 0},
                                                       {"currency", "usd"}});
  beside_another_replica(std::move(replica), applying(paid),
                         [&] { EXPECT_EQ(apply(failed), AuditStatus::ok); });
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  EXPECT_EQ(plan()->last_event_created, failed.created);
}

// The same for another of the owner's subscriptions. Its deletion, without metadata, comes while
// another replica ends the plan's own subscription and so goes on with this one: read without the
// owner's lock, it would still be another's and be kept as ended, leaving the plan going on with a
// subscription that has ended; read under the lock, it is the plan's, and ends the plan.
TEST_P(Events, AnotherSubscriptionsEventWithoutMetadataWaitsForItsOwner) {
  auto [first, replica] = testing::open_test_db_twice(GetParam());
  db = std::move(first);
  const auto [own, other] = plan_and_another_subscription();
  const auto other_deleted =
      legacy_subscription_event("customer.subscription.deleted", other, "canceled");
  subscription = own;
  const auto own_deleted =
      subscription_event("customer.subscription.deleted", "canceled",
                         "price_local_hospital_lite_monthly", other_deleted.created - 1);
  beside_another_replica(std::move(replica), applying(own_deleted),
                         [&] { EXPECT_EQ(apply(other_deleted), AuditStatus::ok); });
  EXPECT_EQ(plan()->stripe_subscription_id, other);
  EXPECT_EQ(plan()->status, PlanStatus::cancelled);
}

// Two events without metadata about another of the owner's subscriptions, on two replicas: its
// deletion, then an older update. The update waits for the owner, then finds the deletion and is
// stale; read without the lock, it would have written the subscription back as active over its
// deletion, and the plan would have gone on with it when its own ended.
TEST_P(Events, AnOlderEventOfAnotherSubscriptionWithoutMetadataLeavesItsDeletion) {
  auto [first, replica] = testing::open_test_db_twice(GetParam());
  db = std::move(first);
  const auto [own, other] = plan_and_another_subscription();
  const std::int64_t t = clock + 100;
  const auto updated =
      legacy_subscription_event("customer.subscription.updated", other, "active", t);
  const auto deleted =
      legacy_subscription_event("customer.subscription.deleted", other, "canceled", t + 5);
  beside_another_replica(
      std::move(replica),
      [&](Tx& tx) {
        applying(deleted)(tx);
        // Sends the queued write before the commit, as the next unit's read in a batch does.
        tx.get<PlanRepo>().find_other_subscription(other);
      },
      [&] { EXPECT_EQ(apply(updated), AuditStatus::stale); });
  subscription = own;
  EXPECT_EQ(apply(subscription_event("customer.subscription.deleted", "canceled",
                                     "price_local_hospital_lite_monthly", t + 10)),
            AuditStatus::ok);
  EXPECT_EQ(plan()->status, PlanStatus::cancelled);
  EXPECT_EQ(plan()->stripe_subscription_id, own);
}

// A request and a webhook take the same lock first, so neither overwrites the other. The owner
// chooses pro while a failed payment suspends the lite plan: the choice is made on the suspended
// plan (which waits for its unpaid invoice, so the choice is refused), not on the active plan it
// would otherwise have read (recording pro as pending) and written back whole, undoing the
// suspension.
TEST_P(Events, APlanChoiceWaitsForAWebhooksChangeAndKeepsIt) {
  auto [first, replica] = testing::open_test_db_twice(GetParam());
  db = std::move(first);
  apply(checkout_completed());
  const Identity owner{.subject = "user-1", .role = Role::hospital, .entity_id = hospital.id};
  const auto failed = invoice("invoice.payment_failed", unique_id("in"));
  int refused = 0;
  beside_another_replica(std::move(replica), applying(failed), [&] {
    try {
      run_blocking(db->transact([&](Tx& tx) {
        select_plan(tx, catalog(), owner, {.plan_type = PlanType::pro, .id = hospital.id}, now);
      }));
    } catch (const ApiError& error) {
      refused = error.status;
    }
  });
  EXPECT_EQ(refused, 409);
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  EXPECT_EQ(plan()->pending_plan_type, std::nullopt);
  ASSERT_EQ(history().size(), 2u);
  EXPECT_EQ(history()[1].to_status, PlanStatus::suspended);
}

// The first checkout of an owner whose row and plan another replica is creating: its lock finds
// no row and its early read no plan, so it reads the plan again once it holds the row (else it
// would add a second plan for the owner, which the database refuses).
TEST_P(Events, AFirstCheckoutBuildsOnAPlanAnotherReplicaIsCreating) {
  auto [first, replica] = testing::open_test_db_twice(GetParam());
  db = std::move(first);
  const Identity owner{.subject = "user-1", .role = Role::hospital, .entity_id = hospital.id};
  const auto checkout = checkout_completed();
  beside_another_replica(
      std::move(replica),
      [&](Tx& tx) {
        tx.get<EntityRepo>().create_entity(hospital, now);
        select_plan(tx, catalog(), owner, {.plan_type = PlanType::pro, .id = hospital.id}, now);
      },
      [&] { EXPECT_EQ(apply(checkout), AuditStatus::ok); });
  EXPECT_EQ(plan()->status, PlanStatus::active);
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  EXPECT_EQ(plan()->stripe_subscription_id, subscription);
  ASSERT_EQ(history().size(), 2u);
  EXPECT_EQ(history()[1].from_plan_type, PlanType::pro);
}

// One writer, and one place in a batch's lock order, for every event about the plan: by the
// metadata each event's effects read (an invoice's own metadata is not theirs).
TEST_P(Events, EventsAboutOnePlanShareTheirAffinity) {
  auto paid = invoice("invoice.payment_succeeded", unique_id("in"));
  paid.object["metadata"] = {{"role", "hospital"}, {"role_entity_id", "another-hospital"}};
  const auto affinity = event_affinity(checkout_completed());
  EXPECT_EQ(event_affinity(paid), affinity);
  EXPECT_EQ(event_affinity(invoice("invoice.payment_failed", unique_id("in"))), affinity);
  EXPECT_EQ(event_affinity(subscription_event("customer.subscription.updated", "active",
                                              "price_local_hospital_pro_monthly")),
            affinity);
}

TEST_P(Events, AStaleUpdateAfterTheDeletionChangesNothing) {
  apply(checkout_completed());
  const auto updated = subscription_event("customer.subscription.updated", "active",
                                          "price_local_hospital_pro_monthly");
  const auto deleted = subscription_event("customer.subscription.deleted", "canceled",
                                          "price_local_hospital_lite_monthly");
  EXPECT_EQ(apply(deleted), AuditStatus::ok);
  EXPECT_EQ(plan()->status, PlanStatus::cancelled);
  EXPECT_EQ(apply(updated), AuditStatus::stale);
  EXPECT_EQ(plan()->status, PlanStatus::cancelled);
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
}

TEST_P(Events, ASubscriptionUpdateFollowsThePriceAndStatus) {
  apply(checkout_completed());
  apply(subscription_event("customer.subscription.updated", "active",
                           "price_local_hospital_pro_yearly"));
  auto p = plan();
  EXPECT_EQ(p->plan_type, PlanType::pro);
  EXPECT_EQ(p->billing_cycle, BillingCycle::yearly);
  EXPECT_EQ(p->max_agents, catalog().find(EntityKind::hospital, PlanType::pro)->max_agents);
  EXPECT_EQ(p->status, PlanStatus::active);
  apply(subscription_event("customer.subscription.updated", "past_due",
                           "price_local_hospital_pro_yearly"));
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  apply(subscription_event("customer.subscription.updated", "active",
                           "price_local_hospital_pro_yearly"));
  EXPECT_EQ(plan()->status, PlanStatus::active);
}

TEST_P(Events, OtherTypesAreAuditedAndIgnoredAndOtherSubscriptionsLeaveThePlanAlone) {
  const auto other = event("customer.created", {{"id", "cus_x"}});
  EXPECT_EQ(apply(other), AuditStatus::ignored);
  const auto first = subscription;
  subscription = unique_id("sub");
  // No plan for this hospital yet: what the event says of its subscription is kept, no more.
  const auto stranger = subscription_event("customer.subscription.deleted", "canceled", "price_x");
  EXPECT_EQ(apply(stranger), AuditStatus::ok);
  EXPECT_EQ(audit(stranger).at(0).note, "another subscription of the owner has ended");
  EXPECT_FALSE(plan());
  subscription = first;
  // Its metadata names a hospital with a plan, which it leaves alone; its repeat is a duplicate.
  apply(checkout_completed());
  const auto created = subscription_event("customer.subscription.created", "active", "price_x");
  EXPECT_EQ(apply(created), AuditStatus::ignored);
  EXPECT_EQ(apply(created), AuditStatus::duplicate);
  const auto entries = audit(created);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].note, "event type not handled");
  EXPECT_EQ(entries[1].note, "already processed");
  EXPECT_EQ(audit(other).size(), 1u);
  EXPECT_EQ(history().size(), 1u);
}

// Any field of the five events' objects holding a value of another JSON type: the event is
// applied or ignored, never an error, which would answer 500 and have Stripe deliver it again and
// again (Stripe's shapes change with its API versions; the local provider builds them by hand).
TEST_P(Events, AFieldOfAnotherTypeIsNoError) {
  apply(checkout_completed());  // a plan for the events to change
  const json::value others[] = {42, "x", nullptr, json::array{}, json::object{}};
  std::vector<std::string> errors;
  std::size_t tried = 0;
  for (const auto& original :
       {checkout_completed("pro"), invoice("invoice.payment_succeeded", unique_id("in")),
        invoice("invoice.payment_failed", unique_id("in")),
        subscription_event("customer.subscription.updated", "active", "price_x"),
        subscription_event("customer.subscription.deleted", "canceled", "price_x")}) {
    const json::value whole = json::parse(original.payload);
    // Every value inside the event's object, by its path of keys and indexes.
    std::vector<std::vector<json::string>> paths;
    const auto walk = [&](const auto& self, const json::value& v,
                          std::vector<json::string> path) -> void {
      if (!path.empty()) paths.push_back(path);
      if (const auto* o = v.if_object())
        for (const auto& [key, child] : *o) {
          auto deeper = path;
          deeper.emplace_back(key);
          self(self, child, deeper);
        }
      if (const auto* a = v.if_array())
        for (std::size_t i = 0; i < a->size(); ++i) {
          auto deeper = path;
          deeper.emplace_back(std::to_string(i));
          self(self, (*a)[i], deeper);
        }
    };
    walk(walk, whole.at("data").at("object"), {});
    for (const auto& path : paths)
      for (const auto& other : others) {
        json::value changed = whole;
        changed.as_object()["id"] = unique_id("evt");
        json::value* at = &changed.as_object()["data"].as_object()["object"];
        for (const auto& step : path)
          at = at->is_object() ? &at->as_object()[step]
                               : &at->as_array()[std::stoul(std::string(step))];
        *at = other;
        payloads.push_back(json::serialize(changed));
        ++tried;
        try {
          apply(parse_event(payloads.back()));
        } catch (const std::exception& e) {
          std::string where = original.type;
          for (const auto& step : path) where.append(".").append(step);
          errors.push_back(where + " = " + json::serialize(other) + ": " + e.what());
        }
      }
  }
  EXPECT_GE(tried, 500u);  // each of the 102 values inside the five objects, five ways
  EXPECT_THAT(errors, ::testing::IsEmpty());
}

TEST_P(Events, AFailingEventLeavesNothingBehind) {
  const auto e = checkout_completed();
  EXPECT_THROW(run_blocking(db->transact_grouped(
                   [&](Tx& tx) {
                     prepare_event(tx, rules, e, now);
                     apply_event(tx, rules, e, now);
                     throw std::runtime_error("the database went away");
                   },
                   0)),
               std::runtime_error);
  EXPECT_EQ(plan(), std::nullopt);
  EXPECT_TRUE(audit(e).empty());
  EXPECT_EQ(apply(e), AuditStatus::ok);  // Stripe's retry applies it
}

// Same-second updates that disagree: the events cannot say which is newer, so the provider's
// state settles it (payments/subscription_checks.hpp).
class SubscriptionCheckEvents : public Events {
 protected:
  static constexpr std::string_view kLite = "price_local_hospital_lite_monthly";
  static constexpr std::string_view kPro = "price_local_hospital_pro_monthly";
  ManualClock wall{now};

  // The subscription as the provider tells it.
  Subscription state(std::string_view price, std::string status = "active") const {
    return Subscription{.id = subscription,
                        .status = std::move(status),
                        .customer = customer,
                        .item_id = "si_1",
                        .price_id = std::string(price),
                        .metadata = {{"role", "hospital"},
                                     {"role_entity_id", hospital.id},
                                     {"plan", "lite"},
                                     {"cycle", "monthly"}}};
  }
  static testing::ScriptedProvider::SubscriptionAnswer answer(Subscription s) {
    return [s] { return s; };
  }
  std::optional<SubscriptionCheck> pending() {
    return run_blocking(
        db->read([&](Tx& tx) { return tx.get<PaymentRepo>().subscription_check(subscription); }));
  }
  // A lite plan, then lite -> pro -> lite in one second, delivered reversed: the plan is left
  // on pro, the older price, and asks for a check of that second.
  std::int64_t tied_updates_delivered_reversed() {
    apply(checkout_completed());
    const auto second = ++clock;
    const auto to_pro = subscription_event("customer.subscription.updated", "active", kPro, second);
    const auto to_lite =
        subscription_event("customer.subscription.updated", "active", kLite, second);
    EXPECT_EQ(apply(to_lite), AuditStatus::ok);
    EXPECT_EQ(pending(), std::nullopt);  // it agreed with the plan
    EXPECT_EQ(apply(to_pro), AuditStatus::ok);
    EXPECT_EQ(plan()->plan_type, PlanType::pro);
    EXPECT_TRUE(pending() && pending()->event_created == second);
    return second;
  }
};

TEST_P(SubscriptionCheckEvents, TiedUpdatesThatDisagreeAreSettledByTheProvidersState) {
  tied_updates_delivered_reversed();
  testing::ScriptedProvider provider({answer(state(kLite))});
  SubscriptionChecks checks(*db, provider, rules, wall, {1ms});
  run_blocking(checks.settle(subscription));
  EXPECT_EQ(provider.calls, 1);
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  EXPECT_EQ(plan()->status, PlanStatus::active);
  EXPECT_EQ(pending(), std::nullopt);
  EXPECT_EQ(history().back().to_plan_type, PlanType::lite);
  EXPECT_THAT(history().back().reason,
              ::testing::StartsWith("customer.subscription.updated evt_state_"));

  run_blocking(checks.settle(subscription));  // nothing pending: the provider is not asked
  EXPECT_EQ(provider.calls, 1);
}

// Two renewals unpaid, then the older one paid: the newer is unpaid still, and the subscription
// past due. Reactivated by the payment, the plan is suspended again by the provider's state.
TEST_P(SubscriptionCheckEvents, AnOlderInvoicePaidWhileANewerIsUnpaidLeavesThePlanSuspended) {
  apply(checkout_completed());
  const auto older = unique_id("in");
  apply(invoice("invoice.payment_failed", older, ++clock));
  apply(invoice("invoice.payment_failed", unique_id("in"), ++clock));
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  EXPECT_EQ(pending(), std::nullopt);
  EXPECT_EQ(apply(invoice("invoice.payment_succeeded", older, ++clock)), AuditStatus::ok);
  EXPECT_EQ(payments().size(), 1u);
  ASSERT_TRUE(pending());

  testing::ScriptedProvider provider({answer(state(kLite, "past_due"))});
  SubscriptionChecks checks(*db, provider, rules, wall, {1ms});
  run_blocking(checks.settle(subscription));
  EXPECT_EQ(provider.calls, 1);
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  EXPECT_EQ(pending(), std::nullopt);
}

// The plan's only unpaid invoice paid: the provider confirms the plan active.
TEST_P(SubscriptionCheckEvents, TheLastUnpaidInvoicePaidIsConfirmedActive) {
  apply(checkout_completed());
  const auto unpaid = unique_id("in");
  apply(invoice("invoice.payment_failed", unpaid, ++clock));
  apply(invoice("invoice.payment_succeeded", unpaid, ++clock));
  EXPECT_EQ(plan()->status, PlanStatus::active);
  testing::ScriptedProvider provider({answer(state(kLite))});
  SubscriptionChecks checks(*db, provider, rules, wall, {1ms});
  run_blocking(checks.settle(subscription));
  EXPECT_EQ(plan()->status, PlanStatus::active);
  EXPECT_EQ(pending(), std::nullopt);
}

TEST_P(SubscriptionCheckEvents, UpdatesThatAgreeOrFollowEachOtherAskNothing) {
  apply(checkout_completed());
  const auto second = ++clock;
  apply(subscription_event("customer.subscription.updated", "active", kPro, second));
  apply(subscription_event("customer.subscription.updated", "active", kPro, second));
  apply(subscription_event("customer.subscription.updated", "active", kLite, ++clock));
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  EXPECT_EQ(pending(), std::nullopt);
}

// Events applied before the provider is asked are older than its answer, an invoice's too
// (which moves the plan's event time but not its price): the answer is applied over them.
TEST_P(SubscriptionCheckEvents, TheProvidersAnswerIsNewerThanTheEventsBeforeIt) {
  tied_updates_delivered_reversed();
  EXPECT_EQ(apply(invoice("invoice.payment_succeeded", unique_id("in"), ++clock)), AuditStatus::ok);
  testing::ScriptedProvider provider({answer(state(kLite))});
  SubscriptionChecks checks(*db, provider, rules, wall, {1ms});
  run_blocking(checks.settle(subscription));
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  EXPECT_EQ(plan()->last_event_created, clock);
  EXPECT_EQ(pending(), std::nullopt);
}

// An event, or another tie, while the provider is asked: its answer may be older, so it changes
// nothing, and the provider is asked again.
TEST_P(SubscriptionCheckEvents, AnEventWhileTheProviderIsAskedHasItAskedAgain) {
  tied_updates_delivered_reversed();
  const auto newer =
      subscription_event("customer.subscription.updated", "past_due", kPro, clock + 1);
  testing::ScriptedProvider provider({[&] {
                                        // The event lands while the provider answers.
                                        EXPECT_EQ(apply(newer), AuditStatus::ok);
                                        return state(kLite);
                                      },
                                      answer(state(kPro, "past_due"))});
  SubscriptionChecks checks(*db, provider, rules, wall, {1ms});
  run_blocking(checks.settle(subscription));
  EXPECT_EQ(provider.calls, 2);
  EXPECT_EQ(plan()->plan_type, PlanType::pro);
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  EXPECT_EQ(pending(), std::nullopt);
}

// The same with an event of the plan's own second, which leaves its event time as it was: a
// failed payment, after which the answer read before it (active) would be wrong.
TEST_P(SubscriptionCheckEvents, AnEventOfTheSameSecondWhileTheProviderIsAskedHasItAskedAgain) {
  const auto second = tied_updates_delivered_reversed();
  const auto failed = invoice("invoice.payment_failed", unique_id("in"), second);
  testing::ScriptedProvider provider({[&] {
                                        EXPECT_EQ(apply(failed), AuditStatus::ok);
                                        return state(kLite);
                                      },
                                      answer(state(kLite, "past_due"))});
  SubscriptionChecks checks(*db, provider, rules, wall, {1ms});
  run_blocking(checks.settle(subscription));
  EXPECT_EQ(provider.calls, 2);
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
  EXPECT_EQ(pending(), std::nullopt);
}

TEST_P(SubscriptionCheckEvents, AnotherTieWhileTheProviderIsAskedHasItAskedAgain) {
  const auto second = tied_updates_delivered_reversed();
  const auto again = subscription_event("customer.subscription.updated", "active", kLite, second);
  const auto token = pending()->token;
  testing::ScriptedProvider provider({[&] {
                                        EXPECT_EQ(apply(again), AuditStatus::ok);
                                        EXPECT_NE(pending()->token, token);
                                        return state(kPro);
                                      },
                                      answer(state(kLite))});
  SubscriptionChecks checks(*db, provider, rules, wall, {1ms});
  run_blocking(checks.settle(subscription));
  EXPECT_EQ(provider.calls, 2);
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  EXPECT_EQ(pending(), std::nullopt);
}

TEST_P(SubscriptionCheckEvents, AProviderThatFailsIsAskedAgain) {
  tied_updates_delivered_reversed();
  const testing::ScriptedProvider::SubscriptionAnswer unavailable = []() -> Subscription {
    throw ApiError(503, "Stripe service unavailable");
  };
  {
    testing::ScriptedProvider provider({unavailable});
    SubscriptionChecks checks(*db, provider, rules, wall, {1ms, 1ms});
    run_blocking(checks.settle(subscription));
    EXPECT_EQ(provider.calls, 3);  // given up after the last wait: left for the next start
    EXPECT_TRUE(pending());
  }
  {
    testing::ScriptedProvider provider({unavailable, answer(state(kLite))});
    SubscriptionChecks checks(*db, provider, rules, wall, {1ms, 1ms});
    run_blocking(checks.settle(subscription));
    EXPECT_EQ(provider.calls, 2);
    EXPECT_EQ(plan()->plan_type, PlanType::lite);
  }
}

// A subscription the provider does not know is another account's (a wrong key, another local
// provider's account on the database), and an answer about another subscription is no answer:
// the check is kept, and nothing changes.
TEST_P(SubscriptionCheckEvents, NoAnswerAboutTheSubscriptionKeepsItsCheck) {
  const auto second = tied_updates_delivered_reversed();
  auto someone_elses = state(kLite);
  someone_elses.id = unique_id("sub");
  testing::ScriptedProvider provider(
      {[]() -> Subscription { throw ApiError(404, "No such subscription: sub_1"); },
       answer(someone_elses)});
  for (int attempt = 0; attempt < 2; ++attempt) {
    SubscriptionChecks checks(*db, provider, rules, wall, {1ms, 1ms});
    run_blocking(checks.settle(subscription));
  }
  EXPECT_EQ(provider.calls, 4);  // a 404 is not asked again; a wrong answer is, after each wait
  ASSERT_TRUE(pending());
  EXPECT_EQ(plan()->plan_type, PlanType::pro);
  EXPECT_EQ(plan()->last_event_created, second);
  // The database may be shared: the check is not left for other tests' sweeps.
  const auto left = *pending();
  run_blocking(
      db->transact([&](Tx& tx) { return tx.get<PaymentRepo>().take_subscription_check(left); }));
}

// The webhook settles a tie it recorded by itself, once the event is answered.
TEST_P(SubscriptionCheckEvents, TheWebhookSettlesTheTieItRecorded) {
  apply(checkout_completed());
  const auto second = ++clock;
  testing::ScriptedProvider provider({answer(state(kLite))});
  SubscriptionChecks checks(*db, provider, rules, wall, {1ms});
  WebhookReceiver receiver(*db, rules, "whsec_test", wall, "2023-10-16");
  receiver.check_subscriptions_with(checks);
  const WebhookSignature signer("whsec_test");
  for (auto price : {kLite, kPro}) {
    const auto e = subscription_event("customer.subscription.updated", "active", price, second);
    EXPECT_EQ(run_blocking(receiver.receive(signer.sign(e.payload, wall.now()), e.payload)),
              AuditStatus::ok);
  }
  EXPECT_EQ(provider.calls, 1);  // after the second only: the first agreed with the plan
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  EXPECT_EQ(pending(), std::nullopt);
}

// And an older deletion it recorded a check for: the provider is asked once it is answered, not
// at the next sweep.
TEST_P(SubscriptionCheckEvents, TheWebhookSettlesTheCheckAStaleDeletionRecorded) {
  apply(checkout_completed());
  const auto deleted_at = ++clock;
  apply(invoice("invoice.payment_succeeded", unique_id("in"), ++clock));
  testing::ScriptedProvider provider({answer(state(kLite, "canceled"))});
  SubscriptionChecks checks(*db, provider, rules, wall, {1ms});
  WebhookReceiver receiver(*db, rules, "whsec_test", wall, "2023-10-16");
  receiver.check_subscriptions_with(checks);
  const auto e = subscription_event("customer.subscription.deleted", "canceled", kLite, deleted_at);
  EXPECT_EQ(run_blocking(receiver.receive(
                WebhookSignature("whsec_test").sign(e.payload, wall.now()), e.payload)),
            AuditStatus::stale);
  EXPECT_EQ(provider.calls, 1);
  EXPECT_EQ(plan()->status, PlanStatus::cancelled);
  EXPECT_EQ(pending(), std::nullopt);
}

// A settle started while another of the same subscription is under way (a new tie's webhook)
// does not ask the provider beside it: it returns at once, and the one under way goes once more,
// even after a failure it would not retry (here a 404, as for another account's subscription).
TEST_P(SubscriptionCheckEvents, ASecondSettleLeavesItToTheOneUnderWayWhichGoesOnceMore) {
  const auto second = tied_updates_delivered_reversed();
  std::promise<void> asked, release;
  auto released = release.get_future().share();
  testing::ScriptedProvider provider({[&]() -> Subscription {
                                        asked.set_value();
                                        released.wait();  // the provider takes its time
                                        throw ApiError(404, "No such subscription");
                                      },
                                      answer(state(kLite))});
  SubscriptionChecks checks(*db, provider, rules, wall, {1ms});
  std::thread first([&] { run_blocking(checks.settle(subscription)); });
  asked.get_future().wait();
  // Another tie while it asks, and its webhook's settle: back at once, the provider not asked.
  EXPECT_EQ(apply(subscription_event("customer.subscription.updated", "active", kLite, second)),
            AuditStatus::ok);
  run_blocking(checks.settle(subscription));
  EXPECT_EQ(provider.calls, 1);
  release.set_value();
  first.join();
  EXPECT_EQ(provider.calls, 2);
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  EXPECT_EQ(pending(), std::nullopt);
}

// A check of a subscription the plan does not follow (known as another of its owner's) is
// settled on what is known of that one, dated its newest event at least.
TEST_P(SubscriptionCheckEvents, AnotherSubscriptionsCheckIsSettledOnWhatIsKnownOfIt) {
  const auto [own, other] = plan_and_another_subscription();
  run_blocking(db->transact([&](Tx& tx) {
    tx.get<PaymentRepo>().request_subscription_check(other, 1'600'000'000);  // an old tie
    return 0;
  }));
  subscription = other;
  testing::ScriptedProvider provider({answer(state(kPro, "canceled"))});
  SubscriptionChecks checks(*db, provider, rules, wall, {1ms});
  run_blocking(checks.settle(other));
  EXPECT_EQ(pending(), std::nullopt);
  const auto known = run_blocking(
      db->read([&](Tx& tx) { return tx.get<PlanRepo>().find_other_subscription(other); }));
  ASSERT_TRUE(known);
  EXPECT_EQ(known->status, "canceled");
  EXPECT_EQ(plan()->stripe_subscription_id, own);
  EXPECT_EQ(plan()->status, PlanStatus::active);
}

// What retries, a restart or an outage left is settled by the sweep, which runs until stopped.
TEST_P(SubscriptionCheckEvents, TheSweepSettlesWhatWasLeftUntilStopped) {
  tied_updates_delivered_reversed();
  std::atomic<bool> answered = false;
  testing::ScriptedProvider provider({[&] {
    answered = true;
    return state(kLite, "past_due");
  }});
  SubscriptionChecks checks(*db, provider, rules, wall, {}, 10ms);
  std::thread sweeper([&] { run_blocking(checks.sweep()); });
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while ((!answered || pending()) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  checks.stop();
  sweeper.join();  // the sweep's wait ends
  // On a shared database the sweep also meets other tests' checks: its answer, about this
  // test's subscription, settles none of them.
  EXPECT_EQ(pending(), std::nullopt);
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  EXPECT_EQ(plan()->status, PlanStatus::suspended);
}

// A price change delivered after the next invoice's event is older than the plan's last event:
// it cannot move the plan, yet it is news. The provider is asked, and its state is applied.
TEST_P(SubscriptionCheckEvents, AStaleUpdateThatShowsTheSubscriptionOtherwiseAsksTheProvider) {
  apply(checkout_completed());
  const auto changed_at = ++clock;
  EXPECT_EQ(apply(invoice("invoice.payment_succeeded", unique_id("in"), ++clock)), AuditStatus::ok);
  EXPECT_EQ(apply(subscription_event("customer.subscription.updated", "active", kPro, changed_at)),
            AuditStatus::stale);
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  ASSERT_TRUE(pending().has_value());
  EXPECT_EQ(pending()->event_created, changed_at);

  testing::ScriptedProvider provider({answer(state(kPro))});
  SubscriptionChecks checks(*db, provider, rules, wall, {1ms});
  run_blocking(checks.settle(subscription));
  EXPECT_EQ(provider.calls, 1);
  EXPECT_EQ(plan()->plan_type, PlanType::pro);
  EXPECT_EQ(pending(), std::nullopt);
}

// One that shows the subscription as the plan follows it is only old: nothing to ask.
TEST_P(SubscriptionCheckEvents, AStaleUpdateThatShowsNothingNewAsksNothing) {
  apply(checkout_completed());
  const auto old = ++clock;
  apply(invoice("invoice.payment_succeeded", unique_id("in"), ++clock));
  EXPECT_EQ(apply(subscription_event("customer.subscription.updated", "active", kLite, old)),
            AuditStatus::stale);
  EXPECT_EQ(pending(), std::nullopt);
}

// A deletion delivered after a later invoice's event (the last invoice Stripe sends after it)
// would leave the plan active for good: the provider is asked, and the plan ends.
TEST_P(SubscriptionCheckEvents, AStaleDeletionAsksTheProviderAndEndsThePlan) {
  apply(checkout_completed());
  const auto deleted_at = ++clock;
  apply(invoice("invoice.payment_succeeded", unique_id("in"), ++clock));
  EXPECT_EQ(
      apply(subscription_event("customer.subscription.deleted", "canceled", kLite, deleted_at)),
      AuditStatus::stale);
  EXPECT_EQ(plan()->status, PlanStatus::active);
  ASSERT_TRUE(pending().has_value());

  testing::ScriptedProvider provider({answer(state(kLite, "canceled"))});
  SubscriptionChecks checks(*db, provider, rules, wall, {1ms});
  run_blocking(checks.settle(subscription));
  EXPECT_EQ(plan()->status, PlanStatus::cancelled);
  EXPECT_EQ(pending(), std::nullopt);
}

// Another role's price (an individual's on a hospital's subscription) changes nothing of the
// plan, its cycle neither.
TEST_P(SubscriptionCheckEvents, AnotherRolesPriceChangesNothing) {
  apply(checkout_completed());
  apply(subscription_event("customer.subscription.updated", "active",
                           "price_local_individual_pro_yearly", ++clock));
  EXPECT_EQ(plan()->plan_type, PlanType::lite);
  EXPECT_EQ(plan()->billing_cycle, BillingCycle::monthly);
}

// One price for both roles' lite monthly offers: each plan reads it as its own role's offer.
TEST_P(Events, APriceBothRolesShareIsReadAsTheOwnersRoles) {
  // Individual lite monthly charges by hospital lite monthly's price.
  const std::array<std::string, 8> shared{"price_hl_m", "price_hl_y", "price_hp_m", "price_hp_y",
                                          "price_hl_m", "price_il_y", "price_ip_m", "price_ip_y"};
  const PriceMap prices_shared(shared);
  const EventRules rules_shared{catalog(), prices_shared};
  const EntityRef individual{EntityKind::individual, unique_id("ind")};
  auto individuals = [&](json::object object) {
    object["metadata"] = json::object{{"role", "individual"},
                                      {"role_entity_id", individual.id},
                                      {"plan", "pro"},
                                      {"cycle", "yearly"}};
    return object;
  };
  auto applied = [&](const StripeEvent& e) {
    return run_blocking(apply_grouped(*db, rules_shared, e, now));
  };
  ASSERT_EQ(applied(event("checkout.session.completed", individuals(checkout_completed().object))),
            AuditStatus::ok);
  ASSERT_EQ(applied(event("customer.subscription.updated",
                          individuals(subscription_object("active", "price_hl_m")))),
            AuditStatus::ok);
  const auto plan =
      run_blocking(db->read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(individual); }));
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->plan_type, PlanType::lite);
  EXPECT_EQ(plan->billing_cycle, BillingCycle::monthly);
}

INSTANTIATE_TEST_SUITE_P(Backends, SubscriptionCheckEvents,
                         ::testing::ValuesIn(testing::test_backends()), testing::backend_name);

INSTANTIATE_TEST_SUITE_P(Backends, Events, ::testing::ValuesIn(testing::test_backends()),
                         testing::backend_name);

TEST(ParseEvent, RefusesWhatIsNotAnEvent) {
  for (const char* bad :
       {"", "[]", "not json", R"({"id":"evt_1","type":"x","created":1})",
        R"({"id":"evt_1","type":"x","data":{"object":{}}})",
        R"({"id":1,"type":"x","created":1,"data":{"object":{}}})",
        R"({"id":"evt_1","type":"x","created":0,"data":{"object":{}}})",
        R"({"id":"evt_1","type":"x","created":-5,"data":{"object":{}}})",
        // After 2200 (which no TimePoint holds from 2262 on, and no Stripe event is).
        R"({"id":"evt_1","type":"x","created":7258118401,"data":{"object":{}}})",
        R"({"id":"evt_1","type":"x","created":9223372036854775807,"data":{"object":{}}})",
        R"({"id":"evt_1","type":"x","created":1,"data":{"object":[]}})",
        // U+0000 in a string, which PostgreSQL cannot store: never Stripe's.
        R"({"id":"evt_1","type":"x","created":1,"data":{"object":{"a":"\u0000"}}})",
        R"({"id":"evt_1","type":"x","created":1,"data":{"object":{"a":"\\\u0000"}}})"}) {
    SCOPED_TRACE(bad);
    try {
      parse_event(bad);
      ADD_FAILURE() << "accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_EQ(e.detail.as_string(), "Invalid webhook payload");
    }
  }
  // A backslash and then the text u0000 is no U+0000.
  EXPECT_EQ(
      parse_event(R"({"id":"evt_1","type":"x","created":1,"data":{"object":{"a":"\\u0000"}}})")
          .object.at("a")
          .as_string(),
      "\\u0000");
  EXPECT_EQ(
      parse_event(R"({"id":"evt_1","type":"x","created":7258118400,"data":{"object":{}}})").created,
      kLatestCreated);
  const auto e = parse_event(R"({"id":"evt_1","type":"x","created":7,"data":{"object":{"a":1}}})");
  EXPECT_EQ(e.id, "evt_1");
  EXPECT_EQ(e.created, 7);
  EXPECT_EQ(e.object.at("a").as_int64(), 1);
}

}  // namespace
}  // namespace billing
