// The storage test suite: the same tests against every backend (SQLite, and PostgreSQL when
// scripts/test.sh provides one). Every repository is reached as the domains reach it, through
// Tx::get inside a unit, so a repository the backends' Tx lacks fails here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <random>
#include <thread>

#include "entities/repo.hpp"
#include "health/repo.hpp"
#include "kit/run_blocking.hpp"
#include "kit/time.hpp"
#include "payments/local/repo.hpp"
#include "payments/repo.hpp"
#include "plans/repo.hpp"
#include "services/repo.hpp"
#include "tests/support/test_db.hpp"

namespace billing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::unique_id;

class Storage : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<Db> db = testing::open_test_db(GetParam());
  const TimePoint now = from_unix_micros(1'800'000'000'123'456);

  template <class F>
  auto write(F fn) {
    return run_blocking(db->transact(std::move(fn)));
  }
  template <class F>
  auto read(F fn) {
    return run_blocking(db->read(std::move(fn)));
  }

  EntityRef new_hospital() {
    EntityRef h{EntityKind::hospital, unique_id("hosp")};
    write([&](Tx& tx) { tx.get<EntityRepo>().create_entity(h, now); });
    return h;
  }

  // A multiple of every lane count up to 16: units of such affinities share the lane of 0.
  static constexpr std::size_t kLaneOfZero = 720720;

  // A payment of `owner` for `invoice`.
  Payment payment_for(const EntityRef& owner, const std::string& invoice) const {
    return Payment{.invoice_id = invoice,
                   .entity = owner,
                   .amount = 2900,
                   .currency = "usd",
                   .created_at = now};
  }

  // A history row for a change to `after`.
  PlanChange change_to(const Plan& after, std::string reason) const {
    return PlanChange{.plan_id = after.id,
                      .owner = after.owner,
                      .changed_by = "test",
                      .changed_at = now,
                      .to_plan_type = after.plan_type,
                      .to_status = after.status,
                      .reason = std::move(reason)};
  }

  Plan sample_plan(const EntityRef& owner) {
    return Plan{.id = unique_id("plan"),
                .owner = owner,
                .plan_type = PlanType::lite,
                .status = PlanStatus::active,
                .max_agents = 5,
                .selected_services = {ServiceType::privacy, ServiceType::checklist},
                .stripe_customer_id = std::nullopt,
                .stripe_subscription_id = unique_id("sub"),
                .created_at = now,
                .updated_at = now};
  }
};

TEST_P(Storage, PingsAndMigratesIdempotently) {
  read([](Tx& tx) { tx.get<HealthRepo>().ping(); });
  db->migrate();
  db->migrate();
}

TEST_P(Storage, CreatesEntitiesOnce) {
  const EntityRef individual{EntityKind::individual, unique_id("ind")};
  EXPECT_FALSE(read([&](Tx& tx) { return tx.get<EntityRepo>().entity_exists(individual); }));
  write([&](Tx& tx) {
    tx.get<EntityRepo>().create_entity(individual, now);
    tx.get<EntityRepo>().create_entity(individual, now);
  });
  EXPECT_TRUE(read([&](Tx& tx) { return tx.get<EntityRepo>().entity_exists(individual); }));
  EXPECT_FALSE(read([&](Tx& tx) {
    return tx.get<EntityRepo>().entity_exists({EntityKind::hospital, individual.id});
  }));
}

TEST_P(Storage, RecordsAnAssistantsLatestHospital) {
  const auto id = unique_id("asst");
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<EntityRepo>().assistant_hospital(id); }),
            std::nullopt);
  write([&](Tx& tx) { tx.get<EntityRepo>().create_assistant(id, "h1", now); });
  write([&](Tx& tx) { tx.get<EntityRepo>().create_assistant(id, "h2", now); });
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<EntityRepo>().assistant_hospital(id); }), "h2");
}

TEST_P(Storage, SavesAndFindsPlans) {
  const auto hospital = new_hospital();
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); }), std::nullopt);
  auto plan = sample_plan(hospital);
  write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(plan); });
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); }), plan);

  plan.plan_type = PlanType::pro;
  plan.status = PlanStatus::suspended;
  plan.selected_services = {};
  plan.stripe_customer_id = "cus_1";
  plan.stripe_subscription_id = std::nullopt;
  plan.updated_at = now + std::chrono::microseconds(1);
  write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(plan); });
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); }), plan);

  const EntityRef individual{EntityKind::individual, unique_id("ind")};
  write([&](Tx& tx) { tx.get<EntityRepo>().create_entity(individual, now); });
  auto own = sample_plan(individual);
  write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(own); });
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(individual); }), own);
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); }), plan);
}

TEST_P(Storage, OnePlanPerEntity) {
  const auto hospital = new_hospital();
  write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(sample_plan(hospital)); });
  EXPECT_ANY_THROW(write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(sample_plan(hospital)); }));
}

TEST_P(Storage, RollsBackAFailedUnitWhole) {
  const EntityRef hospital{EntityKind::hospital, unique_id("hosp")};
  EXPECT_THROW(write([&](Tx& tx) {
                 tx.get<EntityRepo>().create_entity(hospital, now);
                 throw std::runtime_error("fails after the first write");
               }),
               std::runtime_error);
  EXPECT_FALSE(read([&](Tx& tx) { return tx.get<EntityRepo>().entity_exists(hospital); }));
  // A plan whose owner row is missing breaks a foreign key: the unit fails, nothing stays.
  const EntityRef ghost{EntityKind::hospital, unique_id("ghost")};
  EXPECT_ANY_THROW(write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(sample_plan(ghost)); }));
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(ghost); }), std::nullopt);
}

TEST_P(Storage, RollsBackAUnitAcrossRepositoriesWhole) {
  const EntityRef hospital{EntityKind::hospital, unique_id("hosp")};
  const auto plan = sample_plan(hospital);
  EXPECT_THROW(write([&](Tx& tx) {
                 tx.get<EntityRepo>().create_entity(hospital, now);
                 tx.get<PlanRepo>().save_plan(plan);
                 tx.get<ServiceRepo>().save_services(plan);
                 throw std::runtime_error("fails after writes through three repositories");
               }),
               std::runtime_error);
  EXPECT_FALSE(read([&](Tx& tx) { return tx.get<EntityRepo>().entity_exists(hospital); }));
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); }), std::nullopt);
  // The same unit without the failure commits all of it; the plan's foreign key sees the
  // hospital created earlier in the unit.
  write([&](Tx& tx) {
    tx.get<EntityRepo>().create_entity(hospital, now);
    tx.get<PlanRepo>().save_plan(plan);
  });
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); }), plan);
}

TEST_P(Storage, SavesServicesAndTheirTimeOnly) {
  const auto hospital = new_hospital();
  const auto stored = sample_plan(hospital);
  write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(stored); });

  auto changed = stored;
  changed.selected_services = {ServiceType::summary, ServiceType::medication};
  changed.updated_at = now + std::chrono::seconds(1);
  // Not the services' to change: these stay as stored.
  changed.plan_type = PlanType::pro;
  changed.status = PlanStatus::cancelled;
  changed.max_agents = 50;
  changed.stripe_customer_id = "cus_other";
  changed.stripe_subscription_id = std::nullopt;
  changed.created_at = now - std::chrono::hours(1);
  write([&](Tx& tx) { tx.get<ServiceRepo>().save_services(changed); });
  auto expected = stored;
  expected.selected_services = changed.selected_services;
  expected.updated_at = changed.updated_at;
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); }), expected);

  changed.selected_services = {};
  write([&](Tx& tx) { tx.get<ServiceRepo>().save_services(changed); });
  expected.selected_services = {};
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); }), expected);

  // There is no row to change for a plan never saved.
  EXPECT_THROW(write([&](Tx& tx) { tx.get<ServiceRepo>().save_services(sample_plan(hospital)); }),
               std::logic_error);
}

TEST_P(Storage, AppendsHistoryInOrder) {
  const auto hospital = new_hospital();
  const PlanChange created{.plan_id = "plan_1",
                           .owner = hospital,
                           .changed_by = "admin-1",
                           .changed_at = now,
                           .to_plan_type = PlanType::lite,
                           .to_status = PlanStatus::active,
                           .to_services = {ServiceType::privacy},
                           .reason = "created"};
  PlanChange upgraded = created;
  upgraded.from_plan_type = PlanType::lite;
  upgraded.from_status = PlanStatus::active;
  upgraded.from_services = {ServiceType::privacy};
  upgraded.to_plan_type = PlanType::pro;
  upgraded.to_services = {ServiceType::privacy, ServiceType::summary};
  upgraded.reason = "upgraded";
  write([&](Tx& tx) {
    tx.get<PlanRepo>().append_history(created);
    tx.get<PlanRepo>().append_history(upgraded);
  });
  EXPECT_THAT(read([&](Tx& tx) { return tx.get<PlanRepo>().history(hospital); }),
              ElementsAre(created, upgraded));
  EXPECT_TRUE(read([&](Tx& tx) {
                return tx.get<PlanRepo>().history({EntityKind::individual, hospital.id});
              }).empty());
}

TEST_P(Storage, SavesAPlansSubscriptionFieldsAndFindsItByThem) {
  const auto hospital = new_hospital();
  auto plan = sample_plan(hospital);
  plan.stripe_customer_id = unique_id("cus");
  plan.billing_cycle = BillingCycle::yearly;
  plan.pending_plan_type = PlanType::pro;
  plan.cancel_at_period_end = true;
  plan.last_event_created = 1'700'000'123;
  write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(plan); });
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); }), plan);
  EXPECT_EQ(read([&](Tx& tx) {
              return tx.get<PlanRepo>().find_plan_by_subscription(*plan.stripe_subscription_id);
            }),
            plan);
  EXPECT_EQ(read([&](Tx& tx) {
              return tx.get<PlanRepo>().find_plan_by_customer(*plan.stripe_customer_id);
            }),
            plan);
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan_by_subscription("sub_none"); }),
            std::nullopt);
}

TEST_P(Storage, KeepsWhatIsKnownOfAnOwnersOtherSubscriptionsNewestFirst) {
  const EntityRef hospital{EntityKind::hospital, unique_id("hosp")};
  const OtherSubscription older{.id = unique_id("sub"),
                                .owner = hospital,
                                .status = "active",
                                .plan_type = PlanType::lite,
                                .cycle = BillingCycle::monthly,
                                .created = 1'700'000'000,
                                .last_event_created = 1'700'000'000};
  auto newer = older;
  newer.id = unique_id("sub");
  newer.created = older.created + 5;
  newer.last_event_created = newer.created;
  write([&](Tx& tx) {
    tx.get<PlanRepo>().save_other_subscription(newer);
    tx.get<PlanRepo>().save_other_subscription(older);
  });
  const auto owners = [&](const EntityRef& owner) {
    return read([&](Tx& tx) { return tx.get<PlanRepo>().other_subscriptions(owner); });
  };
  EXPECT_THAT(owners(hospital), ElementsAre(newer, older));
  EXPECT_THAT(owners({EntityKind::individual, hospital.id}), IsEmpty());
  // Saved again: all but `created` move.
  auto moved = newer;
  moved.status = "canceled";
  moved.plan_type = PlanType::pro;
  moved.cycle = BillingCycle::yearly;
  moved.last_event_created = newer.created + 9;
  moved.created = 1;
  write([&](Tx& tx) { tx.get<PlanRepo>().save_other_subscription(moved); });
  moved.created = newer.created;
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_other_subscription(newer.id); }),
            moved);
  write([&](Tx& tx) { tx.get<PlanRepo>().drop_other_subscription(newer.id); });
  EXPECT_THAT(owners(hospital), ElementsAre(older));
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_other_subscription(newer.id); }),
            std::nullopt);
}

TEST_P(Storage, ClaimsAnEventOnceAndRetriesAFailedOne) {
  const auto id = unique_id("evt");
  const InboxEvent event{id, "invoice.paid", 1'700'000'000, R"({"id":"x"})"};
  // Other tests share a PostgreSQL database: only this test's event is looked for.
  const auto failed_here = [&] {
    std::vector<std::string> payloads;
    for (auto& e : read([&](Tx& tx) { return tx.get<PaymentRepo>().failed_events(1'000'000); }))
      if (e.id == id) payloads.push_back(e.payload);
    return payloads;
  };
  write([&](Tx& tx) { tx.get<PaymentRepo>().record_event_failure(event, "boom", now); });
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PaymentRepo>().inbox_record(id); }),
            (InboxRecord{.status = InboxStatus::failed,
                         .attempts = 1,
                         .last_error = "boom",
                         .type = "invoice.paid",
                         .created = 1'700'000'000,
                         .received_at = now}));
  EXPECT_THAT(failed_here(), ElementsAre(R"({"id":"x"})"));
  const auto later = now + std::chrono::seconds(30);
  EXPECT_TRUE(write([&](Tx& tx) { return tx.get<PaymentRepo>().claim_event(event, later); }));
  EXPECT_THAT(failed_here(), ::testing::IsEmpty());
  EXPECT_FALSE(write([&](Tx& tx) { return tx.get<PaymentRepo>().claim_event(event, later); }));
  write([&](Tx& tx) { tx.get<PaymentRepo>().record_event_failure(event, "late", later); });
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PaymentRepo>().inbox_record(id); }),
            (InboxRecord{.status = InboxStatus::processed,
                         .attempts = 2,
                         .type = "invoice.paid",
                         .created = 1'700'000'000,
                         .received_at = now,
                         .processed_at = later}));
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PaymentRepo>().inbox_record("evt_none"); }),
            std::nullopt);
}

TEST_P(Storage, AuditsAndRecordsEachInvoiceOnce) {
  const auto event_id = unique_id("evt");
  const AuditEntry entry{.event_id = event_id,
                         .event_type = "invoice.payment_succeeded",
                         .payload = R"({"id": "evt"})",
                         .status = AuditStatus::duplicate,
                         .note = "already processed",
                         .created_at = now};
  write([&](Tx& tx) { tx.get<PaymentRepo>().append_audit(entry); });
  EXPECT_THAT(read([&](Tx& tx) { return tx.get<PaymentRepo>().audit_entries(event_id); }),
              ElementsAre(entry));

  const EntityRef hospital{EntityKind::hospital, unique_id("hosp")};
  const Payment payment{.customer_id = "cus_1",
                        .subscription_id = "sub_1",
                        .invoice_id = unique_id("in"),
                        .payment_intent_id = "pi_1",
                        .charge_id = "ch_1",
                        .entity = hospital,
                        .plan_type = PlanType::lite,
                        .cycle = BillingCycle::monthly,
                        .amount = 49900,
                        .currency = "usd",
                        .net_amount = 48423,
                        .fee_amount = 1477,
                        .payment_method = R"({"type": "card"})",
                        .paid_at = now,
                        .created_at = now};
  EXPECT_TRUE(write([&](Tx& tx) { return tx.get<PaymentRepo>().record_payment(payment); }));
  EXPECT_FALSE(write([&](Tx& tx) { return tx.get<PaymentRepo>().record_payment(payment); }));
  EXPECT_THAT(read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(hospital); }),
              ElementsAre(payment));
  using enum PaymentRepo::PaidThrough;
  const auto paid_through = [&](const EntityRef& entity, PaymentRepo::PaidThrough through,
                                std::string_view id) {
    return read([&](Tx& tx) { return tx.get<PaymentRepo>().paid_through(entity, through, id); });
  };
  EXPECT_TRUE(paid_through(hospital, subscription, "sub_1"));
  EXPECT_FALSE(paid_through(hospital, subscription, "sub_2"));
  EXPECT_FALSE(paid_through({EntityKind::individual, hospital.id}, subscription, "sub_1"));
  EXPECT_FALSE(paid_through({EntityKind::hospital, unique_id("hosp")}, subscription, "sub_1"));
  EXPECT_TRUE(paid_through(hospital, customer, "cus_1"));
  EXPECT_FALSE(paid_through(hospital, customer, "sub_1"));
  EXPECT_FALSE(paid_through({EntityKind::individual, hospital.id}, customer, "cus_1"));
}

// Stripe's invoice events name the charge only: its fee, net and card are filled in once, later.
// A subscription check keeps its latest tie, with a new token at each; it is taken only as read.
TEST_P(Storage, KeepsASubscriptionsLatestCheckUntilItIsTakenAsRead) {
  const auto subscription = unique_id("sub");
  const auto request = [&](std::int64_t second) {
    write([&](Tx& tx) {
      tx.get<PaymentRepo>().request_subscription_check(subscription, second);
      return 0;
    });
  };
  const auto check = [&] {
    return read([&](Tx& tx) { return tx.get<PaymentRepo>().subscription_check(subscription); });
  };
  const auto take = [&](const SubscriptionCheck& as_read) {
    return write([&](Tx& tx) { return tx.get<PaymentRepo>().take_subscription_check(as_read); });
  };
  EXPECT_EQ(check(), std::nullopt);
  request(1'700'000'005);
  const auto first = check();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->event_created, 1'700'000'005);
  request(1'700'000'003);
  const auto second = check();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->event_created, 1'700'000'005);
  EXPECT_NE(second->token, first->token);
  // The test database may be shared: other tests' checks are in the list too.
  EXPECT_THAT(read([&](Tx& tx) { return tx.get<PaymentRepo>().subscription_checks(1'000'000); }),
              ::testing::Contains(*second));
  EXPECT_FALSE(take(*first));  // read before the second tie
  EXPECT_EQ(check(), second);
  EXPECT_TRUE(take(*second));
  EXPECT_EQ(check(), std::nullopt);
  // Asked again after it was taken: an answer read before is still not taken for it.
  request(1'700'000'005);
  EXPECT_FALSE(take(*second));
  EXPECT_FALSE(take(*first));
  ASSERT_TRUE(check());
  EXPECT_TRUE(take(*check()));  // the database may be shared: nothing is left for the next run
}

// Checks are read in pages, each after the last one of the page before.
TEST_P(Storage, ListsSubscriptionChecksAfterAGivenOne) {
  const auto tie = 1'700'000'000 + static_cast<std::int64_t>(std::random_device{}() % 1'000'000);
  std::vector<std::string> ids{unique_id("sub"), unique_id("sub"), unique_id("sub")};
  std::sort(ids.begin(), ids.end());
  write([&](Tx& tx) {
    for (const auto& id : ids) tx.get<PaymentRepo>().request_subscription_check(id, tie);
    tx.get<PaymentRepo>().request_subscription_check(ids[0] + "-later", tie + 1);
    return 0;
  });
  const auto page = [&](std::size_t limit, const std::optional<SubscriptionCheck>& after) {
    std::vector<std::string> out;
    for (const auto& c :
         read([&](Tx& tx) { return tx.get<PaymentRepo>().subscription_checks(limit, after); }))
      out.push_back(c.subscription_id);
    return out;
  };
  const SubscriptionCheck before_them{"", tie - 1};
  // Other tests' checks may sit between, on a shared database: only the order is checked.
  const auto first = page(1'000'000, before_them);
  const auto at = [&](const std::string& id) {
    return std::find(first.begin(), first.end(), id) - first.begin();
  };
  EXPECT_LT(at(ids[0]), at(ids[1]));
  EXPECT_LT(at(ids[1]), at(ids[2]));
  EXPECT_LT(at(ids[2]), at(ids[0] + "-later"));
  EXPECT_LT(at(ids[0] + "-later"), static_cast<std::ptrdiff_t>(first.size()));
  const auto after_second = page(1'000'000, SubscriptionCheck{ids[1], tie});
  EXPECT_EQ(std::find(after_second.begin(), after_second.end(), ids[1]), after_second.end());
  EXPECT_NE(std::find(after_second.begin(), after_second.end(), ids[2]), after_second.end());
  EXPECT_EQ(page(1, before_them).size(), 1u);
  write([&](Tx& tx) {
    for (auto id : {ids[0], ids[1], ids[2], ids[0] + "-later"})
      tx.get<PaymentRepo>().take_subscription_check(*tx.get<PaymentRepo>().subscription_check(id));
    return 0;
  });
}

TEST_P(Storage, CompletesAPaymentsFeeOnce) {
  const EntityRef hospital{EntityKind::hospital, unique_id("hosp")};
  Payment payment{.invoice_id = unique_id("in"),
                  .charge_id = "ch_1",
                  .entity = hospital,
                  .amount = 49900,
                  .currency = "usd",
                  .paid_at = now,
                  .created_at = now};
  EXPECT_TRUE(write([&](Tx& tx) { return tx.get<PaymentRepo>().record_payment(payment); }));
  const auto complete = [&](const ChargeDetails& details) {
    return write([&](Tx& tx) {
      return tx.get<PaymentRepo>().complete_payment(*payment.invoice_id, details);
    });
  };
  const auto without_fee = [&] {
    // The test database may be shared: other tests' payments are in the list too.
    return read([&](Tx& tx) { return tx.get<PaymentRepo>().payments_without_fee(1'000'000); });
  };
  const ChargeToComplete charge{*payment.invoice_id, "ch_1", 49900};
  EXPECT_EQ(
      read([&](Tx& tx) { return tx.get<PaymentRepo>().payment_without_fee(*payment.invoice_id); }),
      charge);
  EXPECT_THAT(without_fee(), ::testing::Contains(charge));
  const std::string card = R"({"type":"card","card":{"brand":"visa","last4":"4242"}})";
  // The provider's charge id never replaces the one the event named.
  EXPECT_TRUE(
      complete({.charge_id = "ch_other", .fee = 1477, .net = 48423, .payment_method = card}));
  EXPECT_THAT(without_fee(), ::testing::Not(::testing::Contains(charge)));
  EXPECT_EQ(
      read([&](Tx& tx) { return tx.get<PaymentRepo>().payment_without_fee(*payment.invoice_id); }),
      std::nullopt);
  EXPECT_FALSE(complete({.fee = 1, .net = 2, .payment_method = "{}"}));  // known already
  EXPECT_FALSE(write([&](Tx& tx) {
    return tx.get<PaymentRepo>().complete_payment("in_nobody", {.fee = 1, .net = 2});
  }));
  auto saved = read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(hospital); });
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_EQ(saved[0].charge_id, "ch_1");
  EXPECT_EQ(saved[0].fee_amount, 1477);
  EXPECT_EQ(saved[0].net_amount, 48423);
  ASSERT_TRUE(saved[0].payment_method.has_value());
  EXPECT_EQ(boost::json::parse(*saved[0].payment_method), boost::json::parse(card));

  // An invoice event that named no charge (Stripe's from API version 2025-03-31 on): the payment
  // is listed by its invoice alone, and takes the charge the provider names.
  Payment unnamed = payment;
  unnamed.invoice_id = unique_id("in");
  unnamed.charge_id.reset();
  unnamed.paid_at = unnamed.created_at = now + std::chrono::seconds(1);
  EXPECT_TRUE(write([&](Tx& tx) { return tx.get<PaymentRepo>().record_payment(unnamed); }));
  const ChargeToComplete by_invoice{*unnamed.invoice_id, std::nullopt, 49900};
  EXPECT_THAT(without_fee(), ::testing::Contains(by_invoice));
  EXPECT_TRUE(write([&](Tx& tx) {
    return tx.get<PaymentRepo>().complete_payment(*unnamed.invoice_id,
                                                  {.charge_id = "ch_2", .fee = 1477, .net = 48423});
  }));
  EXPECT_THAT(without_fee(), ::testing::Not(::testing::Contains(by_invoice)));
  saved = read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(hospital); });
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[1].invoice_id, unnamed.invoice_id);
  EXPECT_EQ(saved[1].charge_id, "ch_2");
  EXPECT_EQ(saved[1].fee_amount, 1477);
}

// The local provider's objects: kept per account in the order first saved; a save replaces an
// object only with a higher version, so two saves finishing out of order leave the later one.
TEST_P(Storage, KeepsTheLocalProvidersObjectsPerAccountAndVersion) {
  const std::string account = unique_id("acct");
  const std::string other = unique_id("acct");
  const auto save = [&](const std::string& acct, const LocalObject& object) {
    write([&](Tx& tx) { tx.get<LocalProviderRepo>().save_local_object(acct, object); });
  };
  const auto objects = [&](const std::string& acct) {
    return read([&](Tx& tx) { return tx.get<LocalProviderRepo>().local_objects(acct); });
  };
  const LocalObject customer{.kind = "customer", .id = "cus_1", .version = 1, .data = "{}"};
  const LocalObject subscription{
      .kind = "subscription", .id = "sub_1", .version = 1, .data = R"({"status":"active"})"};
  const LocalObject same_id_other_kind{.kind = "invoice", .id = "cus_1", .version = 1, .data = "1"};
  save(account, customer);
  save(account, subscription);
  save(account, same_id_other_kind);
  save(other, {.kind = "customer", .id = "cus_1", .version = 9, .data = "theirs"});
  EXPECT_THAT(objects(account), ElementsAre(customer, subscription, same_id_other_kind));

  LocalObject renewed = subscription;
  renewed.version = 3;
  renewed.data = R"({"status":"past_due"})";
  save(account, renewed);
  LocalObject older = subscription;
  older.version = 2;
  older.data = R"({"status":"canceled"})";
  save(account, older);  // finished after the newer save: ignored
  EXPECT_THAT(objects(account), ElementsAre(customer, renewed, same_id_other_kind));

  write([&](Tx& tx) {
    tx.get<LocalProviderRepo>().delete_local_object(account, "customer", "cus_1");
  });
  EXPECT_THAT(objects(account), ElementsAre(renewed, same_id_other_kind));
  EXPECT_THAT(
      objects(other),
      ElementsAre(LocalObject{.kind = "customer", .id = "cus_1", .version = 9, .data = "theirs"}));
  EXPECT_THAT(objects(unique_id("acct")), ::testing::IsEmpty());
}

// Grouped units share commits; one that throws leaves the others committed and alone fails.
TEST_P(Storage, GroupedUnitsCommitTogetherAndFailAlone) {
  constexpr int kUnits = 40;
  std::vector<EntityRef> entities;
  for (int i = 0; i < kUnits; ++i) entities.push_back({EntityKind::hospital, unique_id("grp")});
  boost::asio::io_context ioc;
  int committed = 0, failed = 0;
  for (int i = 0; i < kUnits; ++i)
    boost::asio::co_spawn(
        ioc,
        [&, i]() -> boost::asio::awaitable<void> {
          try {
            co_await db->transact_grouped(
                [&](Tx& tx) {
                  tx.get<EntityRepo>().create_entity(entities[i], now);
                  if (i % 7 == 3) throw std::runtime_error("this unit fails");
                },
                i);
            ++committed;
          } catch (const std::runtime_error&) {
            ++failed;
          }
        },
        boost::asio::detached);
  ioc.run();
  EXPECT_EQ(failed, 6);
  EXPECT_EQ(committed, kUnits - 6);
  for (int i = 0; i < kUnits; ++i)
    EXPECT_EQ(read([&](Tx& tx) { return tx.get<EntityRepo>().entity_exists(entities[i]); }),
              i % 7 != 3);
}

// Units of one commit batch: each sees what the ones before it changed, by owner, subscription
// and customer, and the plan, its history and the audit rows end as if they had run one by one.
TEST_P(Storage, UnitsOfOneBatchSeeWhatTheEarlierOnesChanged) {
  const auto hospital = new_hospital();
  auto plan = sample_plan(hospital);
  plan.stripe_customer_id = unique_id("cus");
  plan.max_agents = 0;
  write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(plan); });
  constexpr std::size_t kUnits = 12;
  // The subscription unit i finds the plan by: even units move it, odd ones flip the status.
  std::vector<std::string> subscriptions{*plan.stripe_subscription_id};
  for (std::size_t i = 0; i < kUnits; ++i)
    subscriptions.push_back(i % 2 == 0 ? unique_id("sub") : subscriptions.back());
  const auto event_id = unique_id("evt");
  std::vector<int> runs(kUnits);
  const int failed = testing::run_in_one_batch(*db, kUnits, [&](std::size_t i, Tx& tx) {
    ++runs[i];
    auto& plans = tx.get<PlanRepo>();
    const auto before = plans.find_plan_by_subscription(subscriptions[i]);
    if (!before || before != plans.find_plan(hospital) ||
        before != plans.find_plan_by_customer(*plan.stripe_customer_id))
      throw std::runtime_error("the unit did not see the plan as the one before left it");
    if (i > 0 && subscriptions[i] != subscriptions[0]) {
      EXPECT_EQ(plans.find_plan_by_subscription(subscriptions[0]), std::nullopt);
    }
    Plan after = *before;
    ++after.max_agents;
    after.stripe_subscription_id = subscriptions[i + 1];
    if (i % 2 == 1)
      after.status =
          before->status == PlanStatus::active ? PlanStatus::suspended : PlanStatus::active;
    plans.update_plan(*before, after);
    plans.append_history(change_to(after, std::to_string(i)));
    tx.get<PaymentRepo>().append_audit(
        AuditEntry{.event_id = event_id,
                   .event_type = "test",
                   .payload = "{\"unit\": " + std::to_string(i) + "}",
                   .note = std::to_string(i),
                   .created_at = now});
  });
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(runs, std::vector<int>(kUnits, 1));
  const auto saved = read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); });
  ASSERT_TRUE(saved.has_value());
  EXPECT_EQ(saved->max_agents, static_cast<int>(kUnits));
  EXPECT_EQ(saved->stripe_subscription_id, subscriptions.back());
  EXPECT_EQ(saved->status, PlanStatus::active);  // flipped an even number of times
  std::vector<std::string> history_reasons, audit_notes, in_order;
  for (const auto& change : read([&](Tx& tx) { return tx.get<PlanRepo>().history(hospital); }))
    history_reasons.push_back(change.reason);
  for (const auto& entry :
       read([&](Tx& tx) { return tx.get<PaymentRepo>().audit_entries(event_id); }))
    audit_notes.push_back(entry.note);
  for (std::size_t i = 0; i < kUnits; ++i) in_order.push_back(std::to_string(i));
  EXPECT_EQ(history_reasons, in_order);
  EXPECT_EQ(audit_notes, in_order);
}

// So every writer and replica takes the row locks keyed as the affinity in one order.
TEST_P(Storage, ABatchRunsItsUnitsInAscendingAffinityThenInTheirOrder) {
  const std::size_t affinities[] = {3, 1, 2, 1, 0};
  std::vector<std::size_t> order;
  EXPECT_EQ(testing::run_in_one_batch(
                *db, 5, [&](std::size_t i, Tx&) { order.push_back(i); },
                [&](std::size_t i) { return affinities[i] * kLaneOfZero; }),
            0);
  EXPECT_THAT(order, ::testing::ElementsAre(4, 1, 3, 2, 0));
}

// In one commit batch, a plan an earlier unit created is found by the later ones, with the event
// times they moved, and everything ends in the database.
TEST_P(Storage, UnitsOfOneBatchFindAPlanAnEarlierOneCreated) {
  const auto hospital = new_hospital();
  auto plan = sample_plan(hospital);
  plan.stripe_customer_id = unique_id("cus");
  std::vector<int> runs(3);
  const int failed = testing::run_in_one_batch(*db, 3, [&](std::size_t i, Tx& tx) {
    ++runs[i];
    auto& plans = tx.get<PlanRepo>();
    if (i == 0) return plans.save_plan(plan);
    const auto before =
        i == 1 ? plans.find_plan(hospital) : plans.find_plan_by_customer(*plan.stripe_customer_id);
    if (!before || before->last_event_created != (i == 1 ? std::nullopt : std::optional(1)))
      throw std::runtime_error("the unit did not see the plan as the one before left it");
    Plan after = *before;
    after.last_event_created = static_cast<std::int64_t>(i);
    plans.update_plan(*before, after);
    plans.append_history(change_to(after, std::to_string(i)));
  });
  EXPECT_EQ(failed, 0);
  EXPECT_THAT(runs, ElementsAre(1, 1, 1));  // none threw: each saw what the one before left
  auto expected = plan;
  expected.last_event_created = 2;
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); }), expected);
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().history(hospital); }).size(), 2u);
}

// In one commit batch, a plan a unit expects is read with its next statement, as the database
// holds it, or as an earlier unit of the batch left it; an owner without a plan has none until
// a unit creates one.
TEST_P(Storage, APlanExpectedInABatchIsReadAsTheBatchLeftIt) {
  const auto hospital = new_hospital(), planless = new_hospital();
  const auto plan = sample_plan(hospital), created = sample_plan(planless);
  write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(plan); });
  constexpr std::size_t kUnits = 4;
  std::vector<std::optional<Plan>> found(kUnits);
  std::vector<int> runs(kUnits);
  const int failed = testing::run_in_one_batch(*db, kUnits, [&](std::size_t i, Tx& tx) {
    ++runs[i];
    auto& plans = tx.get<PlanRepo>();
    const auto owner = i % 2 == 0 ? hospital : planless;
    plans.expect_plan(owner);
    tx.get<PaymentRepo>().claim_event({unique_id("evt"), "test", 1, "{}"}, now);
    found[i] = plans.find_plan(owner);
    if (i == 0) {
      Plan after = *found[i];
      after.status = PlanStatus::suspended;
      plans.update_plan(*found[i], after);
    }
    if (i == 1) plans.save_plan(created);
  });
  EXPECT_EQ(failed, 0);
  EXPECT_THAT(runs, ElementsAre(1, 1, 1, 1));  // one batch, none rerun
  EXPECT_EQ(found[0], plan);
  EXPECT_EQ(found[1], std::nullopt);
  ASSERT_TRUE(found[2].has_value());
  EXPECT_EQ(found[2]->status, PlanStatus::suspended);
  EXPECT_EQ(found[3], created);
}

// A change a unit left to its batch's end that the database refuses there fails that unit alone:
// the batch runs again, each unit in a savepoint of its own.
TEST_P(Storage, AWriteRefusedAtTheBatchsEndFailsOnlyItsUnit) {
  constexpr std::size_t kUnits = 4, kRefused = 2;
  std::vector<Plan> plans;
  for (std::size_t i = 0; i < kUnits; ++i) {
    plans.push_back(sample_plan(new_hospital()));
    write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(plans.back()); });
  }
  std::vector<int> runs(kUnits);
  const int failed = testing::run_in_one_batch(*db, kUnits, [&](std::size_t i, Tx& tx) {
    ++runs[i];
    auto& repo = tx.get<PlanRepo>();
    const auto before = *repo.find_plan(plans[i].owner);
    Plan after = before;
    after.max_agents = i == kRefused ? -1 : 7;  // CHECK (max_agents >= 0)
    after.status = PlanStatus::suspended;
    repo.update_plan(before, after);
  });
  EXPECT_EQ(failed, 1);
  EXPECT_THAT(runs, ElementsAre(2, 2, 2, 2));
  for (std::size_t i = 0; i < kUnits; ++i) {
    const auto saved = read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(plans[i].owner); });
    EXPECT_EQ(saved->max_agents, i == kRefused ? 5 : 7) << i;
    EXPECT_EQ(saved->status, i == kRefused ? PlanStatus::active : PlanStatus::suspended) << i;
  }
}

// In one commit batch, an event delivered three times is applied by one unit, one processed
// before by none, and an invoice is recorded once whether it comes twice or was recorded before.
TEST_P(Storage, ABatchClaimsEachEventAndRecordsEachInvoiceOnce) {
  const auto hospital = new_hospital();
  const auto fresh = unique_id("evt"), single = unique_id("evt"), processed = unique_id("evt");
  const auto new_invoice = unique_id("in"), old_invoice = unique_id("in");
  write([&](Tx& tx) {
    tx.get<PaymentRepo>().claim_event({processed, "invoice.paid", 1, "{}"}, now);
    tx.get<PaymentRepo>().record_payment(payment_for(hospital, old_invoice));
  });
  const std::vector<std::string> events{fresh, fresh, single, processed, fresh};
  const std::vector<std::string> invoices{new_invoice, old_invoice, new_invoice, new_invoice,
                                          old_invoice};
  std::vector<int> claimed(events.size()), recorded(events.size());
  const int failed = testing::run_in_one_batch(*db, events.size(), [&](std::size_t i, Tx& tx) {
    auto& payments = tx.get<PaymentRepo>();
    claimed[i] = payments.claim_event({events[i], "invoice.paid", 2, "{}"}, now);
    recorded[i] = payments.record_payment(payment_for(hospital, invoices[i]));
  });
  EXPECT_EQ(failed, 0);
  EXPECT_THAT(claimed, ElementsAre(1, 0, 1, 0, 0));  // the units run in order
  EXPECT_THAT(recorded, ElementsAre(1, 0, 0, 0, 0));
  std::vector<std::string> paid;
  for (const auto& p : read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(hospital); }))
    paid.push_back(*p.invoice_id);
  EXPECT_THAT(paid, ElementsAre(old_invoice, new_invoice));
  for (const auto& id : {fresh, single})
    EXPECT_EQ(read([&](Tx& tx) { return tx.get<PaymentRepo>().inbox_record(id); })->attempts, 1);
}

// In one commit batch, the units' prepares run ahead of the first unit's work, up to one that
// says its unit will lock more as it works (the next are prepared after that unit's work), and
// the claims queued there answer the units' claim_event in the order they were queued: of two
// units that queued one event, the first claims it. A unit that queued no claim claims as usual.
TEST_P(Storage, ABatchPreparesItsUnitsAheadUpToOneThatWillLockMore) {
  const auto twice = unique_id("evt"), once = unique_id("evt"), unqueued = unique_id("evt");
  const std::vector<std::string> events{twice, once, twice, unqueued};
  std::vector<std::string> steps;
  std::vector<int> claimed(events.size());
  const int failed = testing::run_in_one_batch(
      *db, events.size(),
      [&](std::size_t i, Tx& tx) {
        steps.push_back("work " + std::to_string(i));
        claimed[i] = tx.get<PaymentRepo>().claim_event({events[i], "test", 1, "{}"}, now);
      },
      {},
      [&](std::size_t i, Tx& tx) {
        steps.push_back("prepare " + std::to_string(i));
        if (events[i] != unqueued)
          tx.get<PaymentRepo>().queue_claim({events[i], "test", 1, "{}"}, now);
        return i != 1;
      });
  EXPECT_EQ(failed, 0);
  EXPECT_THAT(steps, ElementsAre("prepare 0", "prepare 1", "work 0", "work 1", "prepare 2",
                                 "prepare 3", "work 2", "work 3"));
  EXPECT_THAT(claimed, ElementsAre(1, 1, 0, 1));
  for (const auto& id : {twice, once, unqueued}) {
    const auto record = read([&](Tx& tx) { return tx.get<PaymentRepo>().inbox_record(id); });
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->attempts, 1);
  }
}

// In one commit batch, payments queued ahead are recorded once, and record_payment answers from
// the queue in its order: of two units that queued one invoice, the first records it, and one
// recorded before is not recorded again. A payment queued by a unit that never records it (its
// event a duplicate) is recorded all the same.
TEST_P(Storage, ABatchRecordsQueuedPaymentsOnceAndAnswersFromThem) {
  const auto hospital = new_hospital();
  const auto fresh = unique_id("in"), old = unique_id("in"), unanswered = unique_id("in");
  write([&](Tx& tx) { tx.get<PaymentRepo>().record_payment(payment_for(hospital, old)); });
  const std::vector<std::string> invoices{fresh, old, fresh, unanswered};
  std::vector<int> recorded(invoices.size(), -1);
  const int failed = testing::run_in_one_batch(
      *db, invoices.size(),
      [&](std::size_t i, Tx& tx) {
        if (invoices[i] != unanswered)
          recorded[i] = tx.get<PaymentRepo>().record_payment(payment_for(hospital, invoices[i]));
      },
      {},
      [&](std::size_t i, Tx& tx) {
        tx.get<PaymentRepo>().queue_payment(payment_for(hospital, invoices[i]));
        return true;
      });
  EXPECT_EQ(failed, 0);
  EXPECT_THAT(recorded, ElementsAre(1, 0, 0, -1));
  std::vector<std::string> paid;
  for (const auto& p : read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(hospital); }))
    paid.push_back(*p.invoice_id);
  EXPECT_THAT(paid, ElementsAre(old, fresh, unanswered));
}

// When a unit throws, its batch runs again unit by unit, each unit's prepare right before its
// work, in its savepoint; the claims the failed run queued are gone with it.
TEST_P(Storage, AfterAUnitThrowsEachUnitIsPreparedAgainBeforeItWorks) {
  constexpr std::size_t kUnits = 3, kThrows = 1;
  std::vector<std::string> events;
  for (std::size_t i = 0; i < kUnits; ++i) events.push_back(unique_id("evt"));
  std::vector<std::string> steps;
  std::vector<int> claimed(kUnits);
  const int failed = testing::run_in_one_batch(
      *db, kUnits,
      [&](std::size_t i, Tx& tx) {
        steps.push_back("work " + std::to_string(i));
        claimed[i] = tx.get<PaymentRepo>().claim_event({events[i], "test", 1, "{}"}, now);
        if (i == kThrows) throw std::runtime_error("this unit fails");
      },
      {},
      [&](std::size_t i, Tx& tx) {
        steps.push_back("prepare " + std::to_string(i));
        tx.get<PaymentRepo>().queue_claim({events[i], "test", 1, "{}"}, now);
        return true;
      });
  EXPECT_EQ(failed, 1);
  EXPECT_THAT(steps,
              ElementsAre("prepare 0", "prepare 1", "prepare 2", "work 0", "work 1", "prepare 0",
                          "work 0", "prepare 1", "work 1", "prepare 2", "work 2"));
  EXPECT_THAT(claimed, ElementsAre(1, 1, 1));
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PaymentRepo>().inbox_record(events[kThrows]); }),
            std::nullopt);
  for (std::size_t i : {0u, 2u}) {
    const auto record = read([&](Tx& tx) { return tx.get<PaymentRepo>().inbox_record(events[i]); });
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->attempts, 1);
  }
}

// A unit that throws in a commit batch leaves nothing; the others' changes are applied once.
TEST_P(Storage, AUnitThatThrowsInABatchLeavesTheOthersAppliedOnce) {
  const auto hospital = new_hospital();
  auto plan = sample_plan(hospital);
  plan.max_agents = 0;
  write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(plan); });
  constexpr std::size_t kUnits = 8, kThrows = 3;
  std::vector<std::string> events;
  for (std::size_t i = 0; i < kUnits; ++i) events.push_back(unique_id("evt"));
  std::vector<int> runs(kUnits);
  const int failed = testing::run_in_one_batch(*db, kUnits, [&](std::size_t i, Tx& tx) {
    ++runs[i];
    auto& plans = tx.get<PlanRepo>();
    if (!tx.get<PaymentRepo>().claim_event({events[i], "test", 1, "{}"}, now))
      throw std::logic_error("claimed twice");
    const auto before = *plans.find_plan(hospital);
    Plan after = before;
    ++after.max_agents;
    plans.update_plan(before, after);
    plans.append_history(change_to(after, std::to_string(i)));
    if (i == kThrows) throw std::runtime_error("this unit fails");
  });
  EXPECT_EQ(failed, 1);
  // One batch: it ran up to the unit that threw, then again, each unit in a savepoint.
  EXPECT_THAT(runs, ElementsAre(2, 2, 2, 2, 1, 1, 1, 1));
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); })->max_agents,
            static_cast<int>(kUnits - 1));
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().history(hospital); }).size(), kUnits - 1);
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PaymentRepo>().inbox_record(events[kThrows]); }),
            std::nullopt);
}

// The same event claimed by many grouped units at once, as concurrent deliveries do (in writer
// lanes of their own, as on two replicas): one wins.
TEST_P(Storage, OneOfManyConcurrentClaimsWins) {
  const auto id = unique_id("evt");
  const InboxEvent event{id, "invoice.paid", 1'700'000'000, "{}"};
  boost::asio::io_context ioc;
  int claims = 0;
  for (std::size_t i = 0; i < 50; ++i)
    boost::asio::co_spawn(
        ioc,
        [&, i]() -> boost::asio::awaitable<void> {
          claims += co_await db->transact_grouped(
              [&](Tx& tx) { return tx.get<PaymentRepo>().claim_event(event, now); }, i);
        },
        boost::asio::detached);
  ioc.run();
  EXPECT_EQ(claims, 1);
}

// Many concurrent read-modify-write units on one plan: none may be lost.
TEST_P(Storage, ConcurrentChangesToOnePlanAreNotLost) {
  const auto hospital = new_hospital();
  auto plan = sample_plan(hospital);
  plan.max_agents = 0;
  write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(plan); });

  constexpr int kWriters = 24;
  boost::asio::io_context ioc;
  int finished = 0;
  for (int i = 0; i < kWriters; ++i)
    boost::asio::co_spawn(
        ioc,
        [&]() -> boost::asio::awaitable<void> {
          co_await db->transact([&](Tx& tx) {
            tx.get<EntityRepo>().entity_exists(
                hospital);  // takes the owner's lock, as the domain does
            auto current = *tx.get<PlanRepo>().find_plan(hospital);
            ++current.max_agents;
            tx.get<PlanRepo>().save_plan(current);
          });
          ++finished;
        },
        boost::asio::detached);
  ioc.run();
  EXPECT_EQ(finished, kWriters);
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); })->max_agents,
            kWriters);
}

// Two grouped units on two writer lanes (concurrent transactions on PostgreSQL) add an agent to
// one plan, each holding the owner and expecting its plan in its prepare, as prepare_event does:
// the second reads the plan only once the first has committed, and as the first left it. Without
// the lock the second would read the plan while the first holds it unsaved (the first waits up to
// 300 ms for that); were the plan read in the lock's statement, under the snapshot taken before
// the lock was granted (PostgreSQL's READ COMMITTED), it would read the plan as it was before the
// first committed. Either way one agent would be lost. SQLite's one writer runs them in turn.
TEST_P(Storage, APlanExpectedUnderItsOwnersLockIsReadAsTheHolderCommittedIt) {
  const auto hospital = new_hospital();
  auto plan = sample_plan(hospital);
  plan.max_agents = 0;
  write([&](Tx& tx) { tx.get<PlanRepo>().save_plan(plan); });

  std::promise<void> first_read, second_read;
  const auto add_agent = [&](std::size_t affinity, std::promise<void>& has_read,
                             const std::function<void()>& then) {
    run_blocking(db->transact_grouped(
        [&](Tx& tx) {
          auto& plans = tx.get<PlanRepo>();
          const auto before = *plans.find_plan(hospital);
          has_read.set_value();
          then();
          auto after = before;
          ++after.max_agents;
          plans.update_plan(before, after);
        },
        affinity,
        [&](Tx& tx) {
          tx.get<EntityRepo>().hold_entity(hospital);
          tx.get<PlanRepo>().expect_plan(hospital);
          return true;
        }));
  };
  std::thread first([&, second_has_read = second_read.get_future()] {
    add_agent(0, first_read, [&] { second_has_read.wait_for(std::chrono::milliseconds(300)); });
  });
  first_read.get_future().wait();
  add_agent(1, second_read, [] {});
  first.join();
  EXPECT_EQ(read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(hospital); })->max_agents, 2);
}

INSTANTIATE_TEST_SUITE_P(Backends, Storage, ::testing::ValuesIn(testing::test_backends()),
                         testing::backend_name);

}  // namespace
}  // namespace billing
