#include "plans/selection.hpp"

#include <functional>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "entities/repo.hpp"
#include "kit/api_error.hpp"
#include "kit/run_blocking.hpp"
#include "plans/repo.hpp"
#include "services/selection.hpp"
#include "tests/support/test_db.hpp"

namespace billing {
namespace {

using testing::unique_id;

class PlanRules : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<Db> db = testing::open_test_db(GetParam());
  Catalog catalog = Catalog::load(BILLING_SOURCE_DIR "/config/plans.json");
  ManualClock clock{std::chrono::system_clock::from_time_t(1'800'000'000)};
  const Identity admin{"admin-user", Role::admin, "", ""};
  const std::string hospital_id = unique_id("hosp");
  const Identity hospital{"hospital-user", Role::hospital, hospital_id, ""};

  void SetUp() override {
    run_blocking(db->transact([&](Tx& tx) {
      tx.get<EntityRepo>().create_entity({EntityKind::hospital, hospital_id}, clock.now());
    }));
  }

  PlanChoice choose(const Identity& caller, PlanSelection selection) {
    return run_blocking(db->transact(
        [&](Tx& tx) { return select_plan(tx, catalog, caller, selection, clock.now()); }));
  }
  Plan select(const Identity& caller, PlanSelection selection) {
    return choose(caller, std::move(selection)).plan;
  }
  Plan services(const Identity& caller, std::vector<ServiceType> chosen) {
    return run_blocking(db->transact([&](Tx& tx) {
      return select_services(tx, catalog, caller, {hospital_id, chosen}, clock.now());
    }));
  }
  std::vector<PlanChange> history() {
    return run_blocking(db->read([&](Tx& tx) {
      return tx.get<PlanRepo>().history({EntityKind::hospital, hospital_id});
    }));
  }
  template <class F>
  static std::string error_of(F&& f) {
    try {
      f();
      return "ok";
    } catch (const ApiError& e) {
      return std::to_string(e.status) + " " + std::string(e.detail.as_string());
    }
  }
};

TEST_P(PlanRules, AdminSelectionIsActiveAtOnce) {
  const auto plan = select(admin, {PlanType::pro, hospital_id, std::nullopt});
  EXPECT_EQ(plan.status, PlanStatus::active);
  EXPECT_EQ(plan.max_agents, 50);
  EXPECT_EQ(plan.selected_services,
            catalog.find(EntityKind::hospital, PlanType::pro)->default_services);
  const auto rows = history();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].changed_by, "admin-user");
  EXPECT_EQ(rows[0].from_plan_type, std::nullopt);
  EXPECT_EQ(rows[0].to_status, PlanStatus::active);
}

TEST_P(PlanRules, OwnSelectionAwaitsPaymentAndRepeatsAreNotRecorded) {
  EXPECT_EQ(select(hospital, {PlanType::lite, hospital_id, std::nullopt}).status,
            PlanStatus::inactive);
  select(hospital, {PlanType::lite, hospital_id, std::nullopt});
  EXPECT_EQ(history().size(), 1u);
  clock.advance(std::chrono::minutes(1));
  const auto active = select(admin, {PlanType::lite, hospital_id, EntityKind::hospital});
  EXPECT_EQ(active.status, PlanStatus::active);
  EXPECT_EQ(active.updated_at, clock.now());
  const auto rows = history();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].from_status, PlanStatus::inactive);
  EXPECT_EQ(rows[1].to_status, PlanStatus::active);
}

TEST_P(PlanRules, ReselectingTheActivePlanChangesNothing) {
  select(admin, {PlanType::lite, hospital_id, std::nullopt});
  EXPECT_EQ(select(hospital, {PlanType::lite, hospital_id, std::nullopt}).status,
            PlanStatus::active);
  EXPECT_EQ(history().size(), 1u);
}

// Today's bug: a hospital on an active lite plan that chose pro was left with an inactive pro
// plan and no service. The active plan stays; pro waits until it is paid for.
TEST_P(PlanRules, ChoosingAnotherPlanNeverTakesTheActiveOneAway) {
  select(admin, {PlanType::lite, hospital_id, std::nullopt});
  const auto chosen = select(hospital, {PlanType::pro, hospital_id, std::nullopt});
  EXPECT_EQ(chosen.status, PlanStatus::active);
  EXPECT_EQ(chosen.plan_type, PlanType::lite);
  EXPECT_EQ(chosen.pending_plan_type, PlanType::pro);
  EXPECT_FALSE(chosen.selected_services.empty());
  EXPECT_EQ(history().size(), 1u);  // nothing of type, status or services moved
  // Choosing the active plan again withdraws the pending choice.
  EXPECT_EQ(select(hospital, {PlanType::lite, hospital_id, std::nullopt}).pending_plan_type,
            std::nullopt);
}

// With a subscription paying for the active plan, the provider is asked to price it as chosen,
// also back at the plan's own type when the choice is withdrawn (the first change may have gone
// through already, and its confirmation would otherwise move the plan to the withdrawn type), and
// again after that (the call that withdrew may have failed).
TEST_P(PlanRules, TheSubscriptionIsPricedAsTheLastChoiceSays) {
  EXPECT_EQ(choose(hospital, {PlanType::pro, hospital_id, std::nullopt}).subscription_price,
            std::nullopt);  // nothing paid yet: checkout pays for the choice
  auto paid = select(admin, {PlanType::lite, hospital_id, std::nullopt});
  paid.stripe_subscription_id = "sub_1";
  run_blocking(db->transact([&](Tx& tx) { tx.get<PlanRepo>().save_plan(paid); }));
  const auto price_after = [&](PlanType chosen) -> std::optional<PlanType> {
    const auto price = choose(hospital, {chosen, hospital_id, std::nullopt}).subscription_price;
    if (!price) return std::nullopt;
    EXPECT_EQ(price->cycle, BillingCycle::monthly);  // the plan's (an admin's plan names none)
    return price->plan_type;
  };
  EXPECT_EQ(price_after(PlanType::pro), PlanType::pro);
  EXPECT_EQ(price_after(PlanType::pro), PlanType::pro);    // again: the last call may have failed
  EXPECT_EQ(price_after(PlanType::lite), PlanType::lite);  // withdrawn
  EXPECT_EQ(price_after(PlanType::lite), PlanType::lite);
}

// An admin's choice is a manual contract, which no subscription pays for: refused while one pays
// (active, or suspended while its invoice is retried), since the subscription's next event
// would undo it and its owner would go on paying for their own choice. Once the subscription has
// ended (cancelled), an admin's or the owner's choice lets go of it: the owner's checkout and
// later choices are then not taken for a subscription that still pays.
TEST_P(PlanRules, NoChoiceIsTakenForASubscriptionThatPaysOrHasEnded) {
  auto paid = select(admin, {PlanType::lite, hospital_id, std::nullopt});
  paid.stripe_subscription_id = "sub_1";
  const auto store = [&](PlanStatus status) {
    paid.status = status;
    run_blocking(db->transact([&](Tx& tx) { tx.get<PlanRepo>().save_plan(paid); }));
  };
  for (const auto status : {PlanStatus::active, PlanStatus::suspended}) {
    store(status);
    EXPECT_EQ(error_of([&] {
                select(admin, {PlanType::pro, hospital_id, std::nullopt});
              }),
              "409 A subscription pays for this plan: its owner changes it with POST "
              "/billing/plan/select, or it ends first (POST /stripe/subscription/cancel)");
  }
  store(PlanStatus::cancelled);
  const auto contract = choose(admin, {PlanType::pro, hospital_id, std::nullopt});
  EXPECT_EQ(contract.plan.status, PlanStatus::active);
  EXPECT_EQ(contract.plan.stripe_subscription_id, std::nullopt);
  // The owner's choice on it waits for a checkout, and asks no provider.
  const auto pending = choose(hospital, {PlanType::lite, hospital_id, std::nullopt});
  EXPECT_EQ(pending.plan.pending_plan_type, PlanType::lite);
  EXPECT_EQ(pending.subscription_price, std::nullopt);

  store(PlanStatus::cancelled);
  const auto owners = select(hospital, {PlanType::pro, hospital_id, std::nullopt});
  EXPECT_EQ(owners.status, PlanStatus::inactive);
  EXPECT_EQ(owners.stripe_subscription_id, std::nullopt);
}

// Suspended for a failed renewal, the plan waits for its unpaid invoice, which the provider keeps
// retrying and whose payment reactivates it. An owner's choice would have left it inactive, and
// that payment would then have paid for a plan with no service. Without a subscription, a
// suspended plan is chosen anew as ever.
TEST_P(PlanRules, ASuspendedPlanWaitsForItsUnpaidInvoice) {
  auto suspended = select(admin, {PlanType::lite, hospital_id, std::nullopt});
  suspended.status = PlanStatus::suspended;
  suspended.stripe_subscription_id = "sub_1";
  run_blocking(db->transact([&](Tx& tx) { tx.get<PlanRepo>().save_plan(suspended); }));
  const auto history_before = history().size();
  for (const auto type : {PlanType::pro, PlanType::lite})
    EXPECT_EQ(error_of([&] {
                select(hospital, {type, hospital_id, std::nullopt});
              }),
              "409 The plan is suspended until its subscription is paid or resumed: settle it in "
              "the billing portal (POST /stripe/portal-link) first");
  const auto kept = run_blocking(db->read([&](Tx& tx) {
    return tx.get<PlanRepo>().find_plan({EntityKind::hospital, hospital_id});
  }));
  ASSERT_TRUE(kept);
  EXPECT_EQ(*kept, suspended);
  EXPECT_EQ(history().size(), history_before);

  auto without_subscription = suspended;
  without_subscription.stripe_subscription_id.reset();
  run_blocking(db->transact([&](Tx& tx) { tx.get<PlanRepo>().save_plan(without_subscription); }));
  EXPECT_EQ(select(hospital, {PlanType::pro, hospital_id, std::nullopt}).status,
            PlanStatus::inactive);
}

// A provider that records the prices asked for; the first call lets `meanwhile` run before it
// lands, as another request that overtakes it would.
class RecordingSubscriptions final : public SubscriptionChanges {
 public:
  std::vector<SubscriptionPrice> prices;
  std::function<boost::asio::awaitable<void>()> meanwhile;

  boost::asio::awaitable<void> change_plan(Plan, SubscriptionPrice price) override {
    if (auto overtaking = std::exchange(meanwhile, nullptr)) co_await overtaking();
    prices.push_back(price);
  }
};

// Pro, then lite again at once: lite's call overtakes pro's, yet the subscription ends at lite.
TEST_P(PlanRules, TwoChoicesThatReachTheProviderInTheOtherOrderEndAtTheNewest) {
  auto paid = select(admin, {PlanType::lite, hospital_id, std::nullopt});
  paid.stripe_subscription_id = "sub_1";
  run_blocking(db->transact([&](Tx& tx) { tx.get<PlanRepo>().save_plan(paid); }));
  RecordingSubscriptions provider;
  const auto pro = choose(hospital, {PlanType::pro, hospital_id, std::nullopt});
  provider.meanwhile = [&]() -> boost::asio::awaitable<void> {
    const auto lite = co_await db->transact([&](Tx& tx) {
      return select_plan(tx, catalog, hospital, {PlanType::lite, hospital_id, std::nullopt},
                         clock.now());
    });
    co_await price_subscription(*db, provider, lite);
  };
  run_blocking(price_subscription(*db, provider, pro));
  constexpr SubscriptionPrice kLite{PlanType::lite, BillingCycle::monthly};
  constexpr SubscriptionPrice kPro{PlanType::pro, BillingCycle::monthly};
  EXPECT_EQ(provider.prices, (std::vector<SubscriptionPrice>{kLite, kPro, kLite}));
  // Without a subscription paying for an active plan, nobody is asked.
  auto ended = *run_blocking(db->read([&](Tx& tx) {
    return tx.get<PlanRepo>().find_plan({EntityKind::hospital, hospital_id});
  }));
  ended.status = PlanStatus::cancelled;
  run_blocking(db->transact([&](Tx& tx) { tx.get<PlanRepo>().save_plan(ended); }));
  RecordingSubscriptions unused;
  run_blocking(price_subscription(*db, unused, choose(admin, {PlanType::pro, hospital_id, {}})));
  EXPECT_TRUE(unused.prices.empty());
}

// A provider that refuses every change, as a declined card or an outage does.
class RefusingSubscriptions final : public SubscriptionChanges {
 public:
  boost::asio::awaitable<void> change_plan(Plan, SubscriptionPrice) override {
    throw ApiError(402, "Your card was declined");
    co_return;
  }
};

// The owner is told the choice failed: it is not left pending, which nothing would ever apply.
// A refused withdrawal takes nothing back: the choice priced before it stays with the provider,
// whose event applies it.
TEST_P(PlanRules, AChoiceTheProviderRefusesIsNotLeftPending) {
  auto paid = select(admin, {PlanType::lite, hospital_id, std::nullopt});
  paid.stripe_subscription_id = "sub_1";
  run_blocking(db->transact([&](Tx& tx) { tx.get<PlanRepo>().save_plan(paid); }));
  const auto stored = [&] {
    return run_blocking(db->read([&](Tx& tx) {
      return tx.get<PlanRepo>().find_plan({EntityKind::hospital, hospital_id});
    }));
  };
  const auto pending = [&] { return stored()->pending_plan_type; };
  RefusingSubscriptions refusing;
  const auto refused = [&](PlanType type) {
    return error_of([&] {
      run_blocking(price_subscription(*db, refusing, choose(hospital, {type, hospital_id, {}})));
    });
  };
  const auto before = stored();
  clock.advance(std::chrono::minutes(1));
  EXPECT_EQ(refused(PlanType::pro), "402 Your card was declined");
  EXPECT_EQ(stored(), before);  // as it was, its updated_at too

  // Two choices, both refused (an outage), the second a withdrawal: nothing is left pending.
  const auto pro = choose(hospital, {PlanType::pro, hospital_id, {}});
  const auto lite = choose(hospital, {PlanType::lite, hospital_id, {}});
  for (const auto& choice : {pro, lite})
    EXPECT_EQ(error_of([&] { run_blocking(price_subscription(*db, refusing, choice)); }),
              "402 Your card was declined");
  EXPECT_EQ(pending(), std::nullopt);

  RecordingSubscriptions accepting;
  run_blocking(
      price_subscription(*db, accepting, choose(hospital, {PlanType::pro, hospital_id, {}})));
  EXPECT_EQ(pending(), PlanType::pro);
  EXPECT_EQ(refused(PlanType::lite), "402 Your card was declined");  // withdrawing it
  EXPECT_EQ(pending(), std::nullopt);
  EXPECT_EQ(accepting.prices,
            (std::vector<SubscriptionPrice>{{PlanType::pro, BillingCycle::monthly}}));
}

// A cycle is chosen as a type is: pending on a plan a subscription pays for until the provider
// confirms it, withdrawn by choosing the plan as it is, taken back when the provider refuses it;
// on a plan no subscription pays for, the plan's cycle at once.
TEST_P(PlanRules, ACycleIsChosenAsAPlanTypeIs) {
  auto paid = select(admin, {PlanType::lite, hospital_id, std::nullopt});
  paid.stripe_subscription_id = "sub_1";
  paid.billing_cycle = BillingCycle::monthly;
  run_blocking(db->transact([&](Tx& tx) { tx.get<PlanRepo>().save_plan(paid); }));
  RecordingSubscriptions provider;
  const auto price = [&](PlanType type, std::optional<BillingCycle> cycle) {
    const auto choice = choose(hospital, {type, hospital_id, std::nullopt, cycle});
    run_blocking(price_subscription(*db, provider, choice));
    return choice.plan;
  };
  const auto yearly = price(PlanType::lite, BillingCycle::yearly);
  EXPECT_EQ(yearly.status, PlanStatus::active);
  EXPECT_EQ(yearly.billing_cycle, BillingCycle::monthly);
  EXPECT_EQ(yearly.pending_billing_cycle, BillingCycle::yearly);
  EXPECT_EQ(yearly.pending_plan_type, std::nullopt);
  const auto pro_yearly = price(PlanType::pro, BillingCycle::yearly);
  EXPECT_EQ(pro_yearly.pending_plan_type, PlanType::pro);
  EXPECT_EQ(pro_yearly.pending_billing_cycle, BillingCycle::yearly);
  // Naming no cycle keeps the one chosen (it may have been charged already); naming the plan's
  // own withdraws it.
  const auto type_withdrawn = price(PlanType::lite, std::nullopt);
  EXPECT_EQ(type_withdrawn.pending_plan_type, std::nullopt);
  EXPECT_EQ(type_withdrawn.pending_billing_cycle, BillingCycle::yearly);
  const auto as_it_is = price(PlanType::lite, BillingCycle::monthly);
  EXPECT_EQ(as_it_is.pending_plan_type, std::nullopt);
  EXPECT_EQ(as_it_is.pending_billing_cycle, std::nullopt);
  EXPECT_EQ(price(PlanType::lite, std::nullopt), as_it_is);
  EXPECT_EQ(provider.prices, (std::vector<SubscriptionPrice>{
                                 {PlanType::lite, BillingCycle::yearly},
                                 {PlanType::pro, BillingCycle::yearly},
                                 {PlanType::lite, BillingCycle::yearly},
                                 {PlanType::lite, BillingCycle::monthly},
                                 {PlanType::lite, BillingCycle::monthly},
                             }));

  RefusingSubscriptions refusing;
  EXPECT_EQ(
      error_of([&] {
        run_blocking(price_subscription(
            *db, refusing,
            choose(hospital, {PlanType::lite, hospital_id, std::nullopt, BillingCycle::yearly})));
      }),
      "402 Your card was declined");
  const auto plan = run_blocking(db->read([&](Tx& tx) {
    return tx.get<PlanRepo>().find_plan({EntityKind::hospital, hospital_id});
  }));
  EXPECT_EQ(plan->pending_billing_cycle, std::nullopt);

  // Once no subscription pays for it, the plan takes the cycle chosen; the checkout says its own.
  // The cycle alone is no row of history, which records types, statuses and services.
  auto ended = *plan;
  ended.status = PlanStatus::cancelled;
  run_blocking(db->transact([&](Tx& tx) { tx.get<PlanRepo>().save_plan(ended); }));
  const auto chosen =
      select(hospital, {PlanType::pro, hospital_id, std::nullopt, BillingCycle::yearly});
  EXPECT_EQ(chosen.status, PlanStatus::inactive);
  EXPECT_EQ(chosen.billing_cycle, BillingCycle::yearly);
  EXPECT_EQ(chosen.pending_billing_cycle, std::nullopt);
  const auto rows = history().size();
  EXPECT_EQ(select(hospital, {PlanType::pro, hospital_id, std::nullopt, BillingCycle::monthly})
                .billing_cycle,
            BillingCycle::monthly);
  EXPECT_EQ(history().size(), rows);
}

TEST_P(PlanRules, RefusesPlansTheCatalogDoesNotOfferAndOtherPeoplesEntities) {
  EXPECT_EQ(error_of([&] {
              select(hospital, {PlanType::hobby, hospital_id, std::nullopt});
            }),
            "400 Invalid plan type");
  EXPECT_EQ(error_of([&] {
              select(admin, {PlanType::basic, hospital_id, std::nullopt});
            }),
            "400 Invalid plan type");
  EXPECT_EQ(error_of([&] {
              select(hospital, {PlanType::lite, "someone-else", std::nullopt});
            }),
            "403 Not allowed to manage this hospital");
  EXPECT_EQ(error_of([&] {
              select(hospital, {PlanType::lite, hospital_id, EntityKind::individual});
            }),
            "403 Not allowed to manage this individual");
  EXPECT_EQ(error_of([&] {
              select(admin, {PlanType::lite, "nobody", EntityKind::hospital});
            }),
            "404 Hospital not found");
  EXPECT_EQ(error_of([&] {
              select(admin, {PlanType::lite, "nobody", EntityKind::individual});
            }),
            "404 Individual not found");
  EXPECT_EQ(error_of([&] {
              select(admin, {PlanType::lite, "nobody", std::nullopt});
            }),
            "404 Entity not found");
  EXPECT_TRUE(history().empty());
}

TEST_P(PlanRules, ServicesNeedAnActivePlan) {
  EXPECT_EQ(error_of([&] { services(hospital, {ServiceType::medication}); }),
            "404 Hospital plan not found");
  select(hospital, {PlanType::lite, hospital_id, std::nullopt});
  EXPECT_EQ(error_of([&] { services(hospital, {ServiceType::medication}); }),
            "409 Hospital plan is inactive; services can only be selected on an active plan");
  select(admin, {PlanType::lite, hospital_id, std::nullopt});
  const auto plan = services(hospital, {ServiceType::medication});
  EXPECT_EQ(plan.selected_services.back(), ServiceType::medication);
  services(hospital, {ServiceType::medication});  // no change, no row
  EXPECT_EQ(history().size(), 3u);
  EXPECT_EQ(error_of([&] {
              services(hospital, {ServiceType::medication, ServiceType::nutrition});
            }),
            "400 The lite plan allows only one optional service (medication or nutrition)");
}

TEST_P(PlanRules, ChangingPlanTypeResetsServicesToTheNewDefaults) {
  select(admin, {PlanType::pro, hospital_id, std::nullopt});
  services(admin, {ServiceType::summary, ServiceType::nutrition});
  const auto lite = select(admin, {PlanType::lite, hospital_id, std::nullopt});
  EXPECT_EQ(lite.selected_services,
            catalog.find(EntityKind::hospital, PlanType::lite)->default_services);
  EXPECT_EQ(lite.max_agents, 5);
}

INSTANTIATE_TEST_SUITE_P(Backends, PlanRules, ::testing::ValuesIn(testing::test_backends()),
                         testing::backend_name);

}  // namespace
}  // namespace billing
