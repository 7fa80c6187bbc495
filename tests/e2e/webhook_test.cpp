// POST /stripe/webhook through HTTP on every backend: Stripe's own library signs (Debian's
// python3-stripe), the service verifies on the raw bytes; each event is applied once, also when
// fifty copies arrive at the same moment.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/url.hpp>

#include "entities/repo.hpp"
#include "kit/run_blocking.hpp"
#include "payments/events.hpp"
#include "payments/repo.hpp"
#include "payments/webhook_signature.hpp"
#include "plans/repo.hpp"
#include "storage/postgres/connection.hpp"
#include "storage/sqlite/connection.hpp"
#include "tests/e2e/client.hpp"
#include "tests/stripe/fake_stripe.hpp"

namespace billing::e2e {
namespace {

namespace json = boost::json;
using stripe_test::invoice_paid_by;
using ::testing::HasSubstr;

constexpr std::string_view kSecret = "whsec_e2e_webhooks_0123456789";

class E2eWebhooks : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<BillingServer> server =
      BillingServer::for_backend(GetParam(), {{"STRIPE_WEBHOOK_SECRET", std::string(kSecret)}});
  HttpClient client{server->port()};
  const std::string hospital = unique_id("hosp");
  const std::string customer = unique_id("cus");
  const std::string subscription = unique_id("sub");

  std::string event(std::string_view type, json::object object) const {
    return stripe_event(type, std::move(object));
  }
  std::string checkout_completed() const {
    return stripe_checkout_completed(hospital, customer, subscription);
  }
  std::string invoice_paid() const {
    return event("invoice.payment_succeeded",
                 {{"id", unique_id("in")},
                  {"customer", customer},
                  {"subscription", subscription},
                  {"amount_paid", 99900},
                  {"currency", "usd"},
                  {"subscription_details",
                   {{"metadata", {{"role", "hospital"}, {"role_entity_id", hospital}}}}}});
  }

  std::string signature(const std::string& payload, std::int64_t t,
                        std::string_view secret = kSecret) {
    return stripe_signature(payload, secret, t);
  }

  HttpResponse deliver(const std::string& payload, const std::string& signature) {
    Headers headers{{"Content-Type", "application/json"}};
    if (!signature.empty()) headers.emplace_back("Stripe-Signature", signature);
    return client.post("/stripe/webhook", payload, headers);
  }

  std::optional<Plan> plan() {
    auto db = open_server_db(*server);
    return run_blocking(db->read([&](Tx& tx) {
      return tx.get<PlanRepo>().find_plan({EntityKind::hospital, hospital});
    }));
  }
};

TEST_P(E2eWebhooks, AppliesAnEventStripeSigned) {
  const auto payload = checkout_completed();
  const auto response = deliver(payload, signature(payload, unix_now()));
  ASSERT_EQ(response.status, 200) << response.body;
  const auto p = plan();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, PlanStatus::active);
  EXPECT_EQ(p->plan_type, PlanType::pro);
  EXPECT_EQ(p->stripe_customer_id, customer);
  EXPECT_EQ(p->stripe_subscription_id, subscription);
}

TEST_P(E2eWebhooks, RefusesWhatStripeDidNotSign) {
  const auto payload = checkout_completed();
  const auto now = unix_now();
  const auto good = signature(payload, now);
  std::string tampered = payload;
  tampered.replace(tampered.find("pro"), 3, "zzz");
  const std::vector<std::pair<std::string, HttpResponse>> refusals{
      {"tampered body", deliver(tampered, good)},
      {"wrong secret", deliver(payload, signature(payload, now, "whsec_other"))},
      {"old timestamp", deliver(payload, signature(payload, now - 301))},
      {"missing header", deliver(payload, "")},
      {"garbage header", deliver(payload, "t=abc,v1=zz")},
  };
  for (const auto& [what, response] : refusals) {
    SCOPED_TRACE(what);
    EXPECT_EQ(response.status, 400);
    EXPECT_EQ(response.detail_text(), "Invalid webhook signature");
  }
  EXPECT_EQ(plan(), std::nullopt);

  // Several v1s (Stripe sends one per secret while a secret rolls): any one may match.
  const auto v1 = good.substr(good.find(",v1=") + 4);
  const auto several =
      "t=" + std::to_string(now) + ",v1=" + std::string(64, '0') + ",v1=" + v1 + ",v0=ignored";
  EXPECT_EQ(deliver(payload, several).status, 200);
  EXPECT_EQ(plan()->status, PlanStatus::active);

  // Signed ahead of this clock (it runs behind Stripe's): taken, as Stripe's libraries take it.
  const auto ahead = event("customer.created", {{"id", "cus_ahead"}});
  EXPECT_EQ(deliver(ahead, signature(ahead, now + 400)).status, 200);
}

TEST_P(E2eWebhooks, AnswersBadPayloadsAndOtherTypesClearly) {
  const std::string not_json = "{\"id\": ";
  auto response = deliver(not_json, signature(not_json, unix_now()));
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.detail_text(), "Invalid webhook payload");

  const auto other = event("customer.created", {{"id", "cus_x"}});
  response = deliver(other, signature(other, unix_now()));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.json().at("result").as_string(), "ignored");

  std::string huge = other;
  huge.insert(huge.size() - 1, ",\"pad\":\"" + std::string(1024 * 1024, 'x') + "\"");
  EXPECT_EQ(deliver(huge, "t=1,v1=00").status, 413);
}

TEST_P(E2eWebhooks, FiftyCopiesAtOnceAreAppliedOnce) {
  const auto checkout = checkout_completed();
  ASSERT_EQ(deliver(checkout, signature(checkout, unix_now())).status, 200);
  const auto paid = invoice_paid();
  const auto signature = WebhookSignature(kSecret).sign(paid, SystemClock().now());
  std::vector<int> statuses(50);
  std::vector<std::thread> senders;
  for (std::size_t i = 0; i < statuses.size(); ++i)
    senders.emplace_back([&, i] {
      HttpClient own(server->port());
      statuses[i] = own.post("/stripe/webhook", paid, {{"Stripe-Signature", signature}}).status;
    });
  for (auto& t : senders) t.join();
  for (int status : statuses) EXPECT_EQ(status, 200);

  auto db = open_server_db(*server);
  const auto event_id = std::string(json::parse(paid).at("id").as_string());
  const auto [payments, audit] = run_blocking(db->read([&](Tx& tx) {
    auto& repo = tx.get<PaymentRepo>();
    return std::pair(repo.payments({EntityKind::hospital, hospital}), repo.audit_entries(event_id));
  }));
  ASSERT_EQ(payments.size(), 1u);
  EXPECT_EQ(payments[0].amount, 99900);
  ASSERT_EQ(audit.size(), 50u);
  EXPECT_EQ(std::count_if(audit.begin(), audit.end(),
                          [](const AuditEntry& a) { return a.status == AuditStatus::ok; }),
            1);
  // The local provider (this server's) keeps no fees to ask for: none is.
  EXPECT_THAT(server->log(), Not(HasSubstr("payment fee")));
}

// SIGKILL while batches are in flight, a restart, every event delivered again: each is applied
// exactly once, and nothing is half-written (a payment without its audit row, say).
TEST_P(E2eWebhooks, KilledMidBatchThenRedeliveredAppliesEachOnce) {
  const auto checkout = checkout_completed();
  ASSERT_EQ(deliver(checkout, signature(checkout, unix_now())).status, 200);
  std::vector<std::string> events(600);
  for (auto& e : events) e = invoice_paid();
  const WebhookSignature signer(kSecret);
  const auto send_all = [&](unsigned short port, std::atomic<int>& answered) {
    std::vector<std::thread> senders;
    for (int s = 0; s < 8; ++s)
      senders.emplace_back([&events, &signer, &answered, s, port] {
        HttpClient own(port);
        for (std::size_t i = s; i < events.size(); i += 8) {
          try {
            const auto r =
                own.post("/stripe/webhook", events[i],
                         {{"Stripe-Signature", signer.sign(events[i], SystemClock().now())}});
            if (r.status == 200) ++answered;
          } catch (const std::exception&) {
            return;  // the server is gone
          }
        }
      });
    return senders;
  };
  std::atomic<int> before_kill = 0;
  auto senders = send_all(server->port(), before_kill);
  ASSERT_TRUE(eventually([&] { return before_kill >= 100; }, std::chrono::seconds(30)));
  server->signal(SIGKILL);
  for (auto& t : senders) t.join();
  // Usually a few hundred are still unanswered here; if a fast server answered them all before
  // the signal landed, the checks below still hold, they just cover less.

  BillingServer restarted({.database_url = server->database_url(),
                           .env = {{"STRIPE_WEBHOOK_SECRET", std::string(kSecret)}}});
  std::atomic<int> after_restart = 0;
  senders = send_all(restarted.port(), after_restart);
  for (auto& t : senders) t.join();
  EXPECT_EQ(after_restart.load(), static_cast<int>(events.size()));

  auto db = open_server_db(restarted);
  run_blocking(db->read([&](Tx& tx) {
    auto& repo = tx.get<PaymentRepo>();
    EXPECT_EQ(repo.payments({EntityKind::hospital, hospital}).size(), events.size());
    for (const auto& e : events) {
      const auto id = std::string(json::parse(e).at("id").as_string());
      // Applied once: one audit row that is not a duplicate's. It is `ok`, or `stale` when the
      // events' `created` crossed a second and a newer one was applied first (the payment is
      // recorded either way).
      const auto audit = repo.audit_entries(id);
      EXPECT_EQ(std::count_if(audit.begin(), audit.end(),
                              [](const AuditEntry& a) {
                                return a.status == AuditStatus::ok ||
                                       a.status == AuditStatus::stale;
                              }),
                1)
          << id;
      EXPECT_EQ(std::count_if(audit.begin(), audit.end(),
                              [](const AuditEntry& a) {
                                return a.status != AuditStatus::ok &&
                                       a.status != AuditStatus::stale &&
                                       a.status != AuditStatus::duplicate;
                              }),
                0)
          << id;
      EXPECT_EQ(repo.inbox_record(id)->status, InboxStatus::processed);
    }
    return 0;
  }));
}

// A server on a database of its own: on PostgreSQL one created in the test cluster for it
// and dropped afterwards (a trigger on the shared one would hold other tests' writes, and an event
// failed there would be theirs to replay). `run_sql` runs a script on it, as an operator would.
class ServerOnItsOwnDatabase {
 public:
  ServerOnItsOwnDatabase(const std::string& backend, Env env)
      : database_(backend == "postgres" ? "billing_own_" + unique_hex() : ""),
        created_(create(database_)),
        server_({.database_url = created_, .env = std::move(env)}) {}
  ~ServerOnItsOwnDatabase() {
    if (database_.empty()) return;
    server_.signal(SIGKILL);  // its connections first
    server_.wait_exit(std::chrono::seconds(5));
    try {
      PostgresConnection(shared_url())
          .exec("DROP DATABASE IF EXISTS " + database_ + " WITH (FORCE)");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "database " << database_ << " not dropped: " << e.what();
    }
  }
  BillingServer& server() { return server_; }
  void run_sql(const std::string& script) const {
    constexpr std::string_view kSqlite = "sqlite://";
    const std::string& url = server_.database_url();
    if (url.starts_with(kSqlite))
      SqliteConnection(url.substr(kSqlite.size()), SqliteConnection::Mode::read_write).exec(script);
    else
      PostgresConnection(url).exec(script);
  }
  // The database refuses every new plan, as a failing disk or constraint would; then takes them.
  void refuse_new_plans() const {
    run_sql(database_.empty() ? "CREATE TRIGGER refuse BEFORE INSERT ON plans "
                                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                              : "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
                                "BEGIN RAISE EXCEPTION 'injected failure'; END $$; "
                                "CREATE TRIGGER refuse BEFORE INSERT ON plans FOR EACH ROW "
                                "EXECUTE FUNCTION refuse()");
  }
  void take_new_plans() const {
    run_sql(database_.empty() ? "DROP TRIGGER refuse" : "DROP TRIGGER refuse ON plans");
  }

 private:
  static std::string shared_url() {
    const char* url = std::getenv("BILLING_TEST_POSTGRES_URL");
    return url ? url : "";
  }
  static std::string unique_hex() {
    std::string id = unique_id("");
    std::erase_if(id, [](char c) { return !std::isxdigit(static_cast<unsigned char>(c)); });
    return id;
  }
  // The URL of `database`, made in the shared cluster; "" (SQLite: the server's own file) if none.
  static std::string create(const std::string& database) {
    if (database.empty()) return "";
    PostgresConnection(shared_url()).exec("CREATE DATABASE " + database);
    boost::urls::url url(shared_url());
    url.set_path("/" + database);
    return std::string(url.buffer());
  }

  std::string database_;
  std::string created_;
  BillingServer server_;
};

// A real failure, the database refusing the event's write: 500 with the fixed text, and nothing
// of the event kept but its failure (the inbox row failed, with the error; a failed audit row).
// Stripe's retry, once the database takes the write, applies it once.
TEST_P(E2eWebhooks, AnEventTheDatabaseRefusesAnswers500AndLeavesNothingBehind) {
  ServerOnItsOwnDatabase own(GetParam(), {{"STRIPE_WEBHOOK_SECRET", std::string(kSecret)}});
  HttpClient own_client(own.server().port());
  const auto send = [&](const std::string& payload) {
    return own_client.post("/stripe/webhook", payload,
                           {{"Stripe-Signature", signature(payload, unix_now())}});
  };
  own.refuse_new_plans();
  const auto payload = checkout_completed();
  const auto id = parse_event(payload).id;
  auto response = send(payload);
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.detail_text(), "Webhook processing failed");
  EXPECT_THAT(response.body, Not(HasSubstr("injected")));
  const auto db = open_server_db(own.server());
  const EntityRef owner{EntityKind::hospital, hospital};
  const auto inbox = [&] {
    return run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().inbox_record(id); }));
  };
  const auto audits = [&] {
    return run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().audit_entries(id); }));
  };
  auto record = inbox();
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->status, InboxStatus::failed);
  EXPECT_THAT(record->last_error.value_or(""), HasSubstr("injected failure"));
  ASSERT_EQ(audits().size(), 1u);
  EXPECT_EQ(audits()[0].status, AuditStatus::failed);
  run_blocking(db->read([&](Tx& tx) {
    EXPECT_FALSE(tx.get<EntityRepo>().entity_exists(owner));  // not even the hospital's row
    EXPECT_EQ(tx.get<PlanRepo>().find_plan(owner), std::nullopt);
    EXPECT_TRUE(tx.get<PlanRepo>().history(owner).empty());
    EXPECT_TRUE(tx.get<PaymentRepo>().payments(owner).empty());
    return 0;
  }));

  own.take_new_plans();
  response = send(payload);  // Stripe's retry
  EXPECT_EQ(response.status, 200) << response.body;
  const auto plan =
      run_blocking(db->read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(owner); }));
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->status, PlanStatus::active);
  record = inbox();
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->status, InboxStatus::processed);
  const auto rows = audits();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].status, AuditStatus::failed);
  EXPECT_EQ(rows[1].status, AuditStatus::ok);
}

// A local payment whose events the webhook refuses is paid all the same (its page says so, as
// Stripe's does whatever the webhook answers); the service sends the events again, as Stripe
// retries, and the plan follows once the database takes them.
TEST_P(E2eWebhooks, ALocalPaymentsRefusedEventsAreSentAgain) {
  ServerOnItsOwnDatabase own(GetParam(), {});
  HttpClient own_client(own.server().port());
  const std::string token = sign_token(hospital_user(hospital));
  auto headers = bearer(token);
  headers.emplace_back("X-CSRF-Token", fetch_csrf_token(own_client, token));
  headers.emplace_back("Content-Type", "application/json");
  auto response = own_client.post("/stripe/checkout",
                                  R"({"plan_type":"lite","billing_cycle":"monthly"})", headers);
  ASSERT_EQ(response.status, 200) << response.body;
  const std::string url(response.json().at("checkout_url").as_string());
  own.refuse_new_plans();
  response = own_client.post(url.substr(url.find("/local-pay/")),
                             "number=4242424242424242&exp=12%2F30&cvc=123",
                             {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(response.status, 200) << response.body;
  EXPECT_THAT(response.body, HasSubstr("Payment succeeded"));
  EXPECT_TRUE(own.server().wait_for_log("local provider event not delivered yet: sent again later",
                                        std::chrono::seconds(5)))
      << own.server().log();
  const auto db = open_server_db(own.server());
  const auto plan = [&] {
    return run_blocking(db->read([&](Tx& tx) {
      return tx.get<PlanRepo>().find_plan({EntityKind::hospital, hospital});
    }));
  };
  EXPECT_EQ(plan(), std::nullopt);

  own.take_new_plans();
  // The first retry comes 10 s after the refusal.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  while (!plan() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto paid = plan();
  ASSERT_TRUE(paid.has_value()) << own.server().log();
  EXPECT_EQ(paid->status, PlanStatus::active);
  EXPECT_EQ(paid->plan_type, PlanType::lite);
}

// An event whose processing failed stays in the inbox as failed; `billing replay-events` applies
// it as Stripe's redelivery would, once, while the service runs.
TEST_P(E2eWebhooks, ReplayAppliesAFailedEventOnce) {
  const auto payload = checkout_completed();
  const StripeEvent failed = parse_event(payload);
  const auto db = open_server_db(*server);
  run_blocking(db->transact([&](Tx& tx) {
    tx.get<PaymentRepo>().record_event_failure(failed.inbox(), "the database went away",
                                               TimePoint(std::chrono::seconds(unix_now())));
  }));
  const Env env{{"JWT_SECRET_KEY", std::string(kJwtSecret)},
                {"CSRF_SECRET_KEY", std::string(kCsrfSecret)},
                {"STRIPE_WEBHOOK_SECRET", std::string(kSecret)},
                {"PAYMENTS_PROVIDER", "local"},
                {"DATABASE_URL", server->database_url()}};

  auto result = run_billing({"replay-events"}, env);
  EXPECT_EQ(result.code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("replayed 1 failed webhook events: 1 applied, 0 failed"));
  const auto plan = run_blocking(db->read([&](Tx& tx) {
    return tx.get<PlanRepo>().find_plan({EntityKind::hospital, hospital});
  }));
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->status, PlanStatus::active);
  EXPECT_EQ(plan->stripe_subscription_id, subscription);
  const auto record =
      run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().inbox_record(failed.id); }));
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->status, InboxStatus::processed);
  EXPECT_EQ(record->attempts, 2);

  result = run_billing({"replay-events"}, env);  // nothing left to replay
  EXPECT_EQ(result.code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("replayed 0 failed webhook events"));
  // Stripe's own redelivery afterwards changes nothing.
  const auto t = unix_now();
  EXPECT_EQ(
      client.post("/stripe/webhook", payload, {{"Stripe-Signature", signature(payload, t)}}).status,
      200);
  const auto audits = run_blocking(
      db->read([&](Tx& tx) { return tx.get<PaymentRepo>().audit_entries(failed.id); }));
  ASSERT_EQ(audits.size(), 2u);
  EXPECT_EQ(audits[0].status, AuditStatus::ok);
  EXPECT_EQ(audits[1].status, AuditStatus::duplicate);
}

// An event id that comes again is a duplicate whatever it holds: one that comes back with
// another invoice records no payment (Stripe never does this; a replayed id must not pay).
TEST_P(E2eWebhooks, AnEventIdThatComesAgainWithAnotherInvoiceRecordsNoPayment) {
  const auto first = invoice_paid();
  auto again = json::parse(invoice_paid()).as_object();
  again["id"] = parse_event(first).id;
  const auto second = json::serialize(again);
  for (const auto* payload : {&first, &second}) {
    const auto response = deliver(*payload, signature(*payload, unix_now()));
    EXPECT_EQ(response.status, 200) << response.body;
  }
  const auto db = open_server_db(*server);
  const auto paid = run_blocking(db->read([&](Tx& tx) {
    return tx.get<PaymentRepo>().payments({EntityKind::hospital, hospital});
  }));
  ASSERT_EQ(paid.size(), 1u);
  EXPECT_EQ(paid[0].invoice_id, parse_event(first).object.at("id").as_string());
  const auto audits = run_blocking(
      db->read([&](Tx& tx) { return tx.get<PaymentRepo>().audit_entries(parse_event(first).id); }));
  ASSERT_EQ(audits.size(), 2u);
  EXPECT_EQ(audits[1].status, AuditStatus::duplicate);
}

// A customer the hospital's payments name is the hospital's to reach, as such a subscription is,
// though its plan follows none (this invoice came before any checkout): the provider is asked
// (and knows no such customer here), where anyone else gets 403.
TEST_P(E2eWebhooks, ACustomerThePaymentsNameIsTheirs) {
  const auto paid = invoice_paid();
  ASSERT_EQ(deliver(paid, signature(paid, unix_now())).status, 200);
  const auto target = "/stripe/customer/" + customer + "/invoices";
  auto response = client.get(target, bearer(sign_token(hospital_user(hospital))));
  EXPECT_EQ(response.status, 404) << response.body;
  EXPECT_EQ(response.detail_text(), "No such customer: " + customer);
  response = client.get("/stripe/subscription/" + subscription,
                        bearer(sign_token(hospital_user(hospital))));
  EXPECT_EQ(response.status, 404) << response.body;
  for (const auto& path : {target, "/stripe/subscription/" + subscription}) {
    response = client.get(path, bearer(sign_token(hospital_user(unique_id("hosp")))));
    EXPECT_EQ(response.status, 403) << path << ": " << response.body;
  }
}

// A paid invoice as Stripe sends it, naming its charge only, and its signature header.
struct PaidInvoice {
  std::string payload;
  Headers headers;
};
PaidInvoice paid_invoice(const std::string& invoice, const std::string& charge, Cents amount,
                         const std::string& hospital) {
  auto payload =
      stripe_event("invoice.payment_succeeded",
                   {{"id", invoice},
                    {"customer", unique_id("cus")},
                    {"subscription", unique_id("sub")},
                    {"charge", charge},
                    {"amount_paid", amount},
                    {"currency", "usd"},
                    {"subscription_details",
                     {{"metadata", {{"role", "hospital"}, {"role_entity_id", hospital}}}}}});
  Headers headers{{"Stripe-Signature", stripe_signature(payload, kSecret, unix_now())}};
  return {std::move(payload), std::move(headers)};
}

// Whether the owner has exactly one payment, with this fee and net recorded.
bool has_one_payment_with_fee(Db& db, const EntityRef& owner, Cents fee, Cents net) {
  const auto saved =
      run_blocking(db.read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(owner); }));
  return saved.size() == 1 && saved[0].fee_amount == fee && saved[0].net_amount == net;
}

// Posts `payload` to the webhook, signed now with kSecret: the status.
int post_signed(HttpClient& client, const std::string& payload) {
  return client
      .post("/stripe/webhook", payload,
            {{"Stripe-Signature", stripe_signature(payload, kSecret, unix_now())}})
      .status;
}

// With Stripe as the provider a paid invoice names its charge only: the fee, net and card are
// asked of Stripe after the event's answer and saved on the payment.
TEST(E2eStripeCharges, APaidInvoicesFeeAndCardComeFromStripeAfterTheAnswer) {
  stripe_test::FakeStripe stripe;
  const auto invoice = unique_id("in");
  stripe.queue({200, invoice_paid_by(invoice, R"({"id":"ch_e2e","object":"charge","amount":99900,
    "balance_transaction":{"id":"txn_e2e","object":"balance_transaction","fee":2927,"net":96973},
    "payment_method_details":{"type":"card","card":{"brand":"mastercard","last4":"4444",
      "exp_month":3,"exp_year":2031}}})")});
  auto server =
      BillingServer::for_backend("sqlite", stripe_provider_env(stripe.base_url(), kSecret));
  HttpClient client(server->port());
  const EntityRef owner{EntityKind::hospital, unique_id("hosp")};
  const auto paid = paid_invoice(invoice, "ch_e2e", 99900, owner.id);
  const auto response = client.post("/stripe/webhook", paid.payload, paid.headers);
  ASSERT_EQ(response.status, 200) << response.body;

  const auto db = open_server_db(*server);
  const auto payments = [&] {
    return run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(owner); }));
  };
  ASSERT_TRUE(eventually(
      [&] {
        const auto saved = payments();
        return saved.size() == 1 && saved[0].fee_amount.has_value();
      },
      10s))
      << server->log();
  const auto saved = payments().at(0);
  EXPECT_EQ(saved.invoice_id, invoice);
  EXPECT_EQ(saved.charge_id, "ch_e2e");
  EXPECT_EQ(saved.amount, 99900);
  EXPECT_EQ(saved.fee_amount, 2927);
  EXPECT_EQ(saved.net_amount, 96973);
  ASSERT_TRUE(saved.payment_method.has_value());
  EXPECT_EQ(json::parse(*saved.payment_method),
            json::parse(R"({"type":"card","card":{"brand":"mastercard","last4":"4444",
              "exp_month":3,"exp_year":2031}})"));
  const auto requests = stripe.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target,
            "/v1/invoices/" + invoice + "?expand%5B%5D=charge.balance_transaction");
}

// What an invoice event says already is not asked for: nothing paid (credit covered it) is a fee
// of 0, and an expanded charge brings its fee. Stripe is asked about neither.
TEST(E2eStripeCharges, AnInvoiceWithItsFeeOrWithNothingPaidAsksStripeNothing) {
  stripe_test::FakeStripe stripe;
  auto server =
      BillingServer::for_backend("sqlite", stripe_provider_env(stripe.base_url(), kSecret));
  HttpClient client(server->port());
  const EntityRef owner{EntityKind::hospital, unique_id("hosp")};
  const auto invoice = [&](Cents paid, json::value charge) {
    return stripe_event("invoice.payment_succeeded",
                        {{"id", unique_id("in")},
                         {"customer", unique_id("cus")},
                         {"subscription", unique_id("sub")},
                         {"charge", std::move(charge)},
                         {"amount_paid", paid},
                         {"currency", "usd"},
                         {"subscription_details",
                          {{"metadata", {{"role", "hospital"}, {"role_entity_id", owner.id}}}}}});
  };
  ASSERT_EQ(post_signed(client, invoice(0, nullptr)), 200);
  ASSERT_EQ(post_signed(client, invoice(49900, json::parse(R"({"id":"ch_in_event",
    "balance_transaction":{"fee":1477,"net":48423}})"))),
            200);
  const auto db = open_server_db(*server);
  const auto saved =
      run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(owner); }));
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[0].fee_amount, 0);
  EXPECT_EQ(saved[1].fee_amount, 1477);
  EXPECT_EQ(saved[1].net_amount, 48423);
  // A paid invoice naming its charge, sent last, is asked for: once its request is seen, none
  // came before it.
  const auto asked_id = unique_id("in");
  const auto asked = paid_invoice(asked_id, "ch_asked", 49900, owner.id);
  ASSERT_EQ(client.post("/stripe/webhook", asked.payload, asked.headers).status, 200);
  ASSERT_TRUE(eventually([&] { return !stripe.requests().empty(); }, 10s));
  const auto requests = stripe.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_THAT(requests[0].target, HasSubstr("/v1/invoices/" + asked_id + "?"));
}

// A webhook endpoint made at API version 2025-03-31 or later sends invoices that name no charge:
// the invoice, read at the pinned version, names it, and the payment gets the charge, its fee,
// net and card all the same.
TEST(E2eStripeCharges, AnInvoiceThatNamesNoChargeHasItsFeeAndChargeToo) {
  stripe_test::FakeStripe stripe;
  const auto invoice = unique_id("in");
  stripe.queue({200, invoice_paid_by(invoice, R"({"id":"ch_unnamed","object":"charge",
    "amount":49900,"balance_transaction":{"id":"txn_u","object":"balance_transaction",
      "fee":1477,"net":48423}})")});
  auto server =
      BillingServer::for_backend("sqlite", stripe_provider_env(stripe.base_url(), kSecret));
  HttpClient client(server->port());
  const EntityRef owner{EntityKind::hospital, unique_id("hosp")};
  const auto payload =
      stripe_event("invoice.payment_succeeded",
                   {{"id", invoice},
                    {"customer", unique_id("cus")},
                    {"amount_paid", 49900},
                    {"currency", "usd"},
                    {"parent",
                     {{"type", "subscription_details"},
                      {"subscription_details",
                       {{"subscription", unique_id("sub")},
                        {"metadata", {{"role", "hospital"}, {"role_entity_id", owner.id}}}}}}}});
  ASSERT_EQ(post_signed(client, payload), 200);
  const auto db = open_server_db(*server);
  ASSERT_TRUE(eventually([&] { return has_one_payment_with_fee(*db, owner, 1477, 48423); }, 10s))
      << server->log();
  const auto saved =
      run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(owner); }));
  EXPECT_EQ(saved.at(0).charge_id, "ch_unnamed");
  EXPECT_EQ(saved.at(0).payment_intent_id, "pi_for_" + invoice);  // nor a payment intent
  const auto requests = stripe.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target,
            "/v1/invoices/" + invoice + "?expand%5B%5D=charge.balance_transaction");
}

// Stripe does not promise order: a paid invoice older than the plan's last event leaves the plan
// as it is, yet its payment is recorded and its fee, net and card asked for as any other's.
TEST(E2eStripeCharges, AnInvoicePaidBeforeThePlansLastEventHasItsFeeToo) {
  stripe_test::FakeStripe stripe;
  const auto invoice = unique_id("in");
  stripe.queue({200, invoice_paid_by(invoice, R"({"id":"ch_old","object":"charge","amount":49900,
    "balance_transaction":{"id":"txn_old","object":"balance_transaction","fee":1477,
      "net":48423}})")});
  auto server =
      BillingServer::for_backend("sqlite", stripe_provider_env(stripe.base_url(), kSecret));
  HttpClient client(server->port());
  const EntityRef owner{EntityKind::hospital, unique_id("hosp")};
  const auto subscription = unique_id("sub");
  const auto checkout = stripe_checkout_completed(owner.id, unique_id("cus"), subscription);
  ASSERT_EQ(post_signed(client, checkout), 200);
  auto event = json::parse(paid_invoice(invoice, "ch_old", 49900, owner.id).payload);
  event.at("created") = unix_now() - 60;
  event.at("data").at("object").at("subscription") = subscription;
  const auto payload = json::serialize(event);
  ASSERT_EQ(post_signed(client, payload), 200);

  const auto db = open_server_db(*server);
  const auto audits = run_blocking(db->read(
      [&](Tx& tx) { return tx.get<PaymentRepo>().audit_entries(event.at("id").as_string()); }));
  ASSERT_EQ(audits.size(), 1u);
  EXPECT_EQ(audits[0].status, AuditStatus::stale);
  EXPECT_TRUE(eventually([&] { return has_one_payment_with_fee(*db, owner, 1477, 48423); }, 10s))
      << server->log();
}

// Stripe down when the fee is asked for: the service asks again a second later (the client's own
// two retries spent first), and the fee is recorded then.
TEST(E2eStripeCharges, AFeeStripeCouldNotGiveIsAskedForAgain) {
  stripe_test::FakeStripe stripe;
  for (int i = 0; i < 3; ++i)
    stripe.queue({500, stripe_test::stripe_error("api_error", "", "Stripe is having a moment")});
  const auto invoice = unique_id("in");
  stripe.queue({200, invoice_paid_by(invoice, R"({"id":"ch_late","object":"charge","amount":49900,
    "balance_transaction":{"id":"txn_late","object":"balance_transaction","fee":1477,
      "net":48423}})")});
  auto server =
      BillingServer::for_backend("sqlite", stripe_provider_env(stripe.base_url(), kSecret));
  HttpClient client(server->port());
  const EntityRef owner{EntityKind::hospital, unique_id("hosp")};
  const auto paid = paid_invoice(invoice, "ch_late", 49900, owner.id);
  ASSERT_EQ(client.post("/stripe/webhook", paid.payload, paid.headers).status, 200);
  const auto db = open_server_db(*server);
  ASSERT_TRUE(eventually([&] { return has_one_payment_with_fee(*db, owner, 1477, 48423); }, 15s))
      << server->log();
  EXPECT_EQ(stripe.requests().size(), 4u);
  EXPECT_THAT(server->log(), HasSubstr("payment fee not recorded yet"));
}

// SIGTERM while a fee waits for its next attempt: the wait ends, the service stops at once, and
// the fee is left to `billing complete-fees`.
TEST(E2eStripeCharges, SigtermDoesNotWaitForAFeesNextAttempt) {
  stripe_test::FakeStripe stripe;
  for (int i = 0; i < 12; ++i)
    stripe.queue({500, stripe_test::stripe_error("api_error", "", "Stripe is having a moment")});
  auto server =
      BillingServer::for_backend("sqlite", stripe_provider_env(stripe.base_url(), kSecret));
  HttpClient client(server->port());
  const auto paid = paid_invoice(unique_id("in"), "ch_down", 49900, unique_id("hosp"));
  ASSERT_EQ(client.post("/stripe/webhook", paid.payload, paid.headers).status, 200);
  // The first wait is 1 s; by the second attempt's failure the next wait is 10 s.
  ASSERT_TRUE(server->wait_for_log("\"attempt\":\"2\"", 15s)) << server->log();
  server->signal(SIGTERM);
  const auto code = server->wait_exit(5s);
  ASSERT_TRUE(code.has_value()) << "still running 5 s after SIGTERM\n" << server->log();
  EXPECT_EQ(*code, 0);
  EXPECT_THAT(server->log(), HasSubstr("stopping: left to billing complete-fees"));
}

// What Stripe says when it fails reaches the client only as the fixed, reviewed texts, and the
// log never holds the key.
TEST(E2eStripeFailures, AreAnsweredWithFixedTextsAndTheKeyIsNeverLogged) {
  constexpr std::string_view kStripesWords = "Stripe's own words, req_8hFk2: for the log";
  stripe_test::FakeStripe stripe;
  auto env = stripe_provider_env(stripe.base_url(), kSecret);
  env.emplace_back("PRICE_HOSP_PRO_MONTHLY", "price_hp_m");
  auto server = BillingServer::for_backend("sqlite", std::move(env));
  HttpClient client(server->port());
  const auto hospital_token = sign_token(hospital_user(unique_id("hosp")));
  const auto admin_token = sign_token(admin_user());
  auto writing = bearer(hospital_token);
  writing.emplace_back("X-CSRF-Token", fetch_csrf_token(client, hospital_token));
  writing.emplace_back("Content-Type", "application/json");
  const auto checkout = [&] {
    return client.post("/stripe/checkout", R"({"plan_type":"pro","billing_cycle":"monthly"})",
                       writing);
  };
  const auto stripe_error = [&](std::string_view type, std::string_view code,
                                std::string_view decline_code = {}) {
    return stripe_test::stripe_error(type, code, kStripesWords, decline_code);
  };
  std::vector<HttpResponse> answers;
  const auto expect = [&](const HttpResponse& response, int status, std::string_view detail) {
    EXPECT_EQ(response.status, status) << response.body;
    EXPECT_EQ(response.detail_text(), detail);
    answers.push_back(response);
  };

  // Down: every attempt (the first and its 2 retries) answered 503.
  for (int i = 0; i < 3; ++i) stripe.queue({503, stripe_error("api_error", "")});
  expect(checkout(), 503, "Stripe service unavailable");
  // The key refused.
  stripe.queue({401, stripe_error("invalid_request_error", "")});
  expect(client.get("/stripe/subscription/sub_1", bearer(admin_token)), 503,
         "Stripe authentication failed");
  // The health check, Stripe down.
  for (int i = 0; i < 3; ++i) stripe.queue({500, "<html>upstream error</html>"});
  expect(client.get("/stripe/health"), 503, "Stripe service unavailable");
  // A card Stripe declines (answering the checkout's first call, which makes its customer).
  stripe.queue({402, stripe_error("card_error", "card_declined", "generic_decline")});
  expect(checkout(), 402, "Your card was declined");
  // A request Stripe refuses.
  stripe.queue({400, stripe_error("invalid_request_error", "parameter_unknown")});
  expect(checkout(), 502, "Stripe rejected the request");

  for (const auto& answer : answers) {
    EXPECT_EQ(answer.body.find("req_8hFk2"), std::string::npos) << answer.body;
    EXPECT_EQ(answer.body.find("sk_test_123"), std::string::npos) << answer.body;
  }
  const auto log = server->log();
  EXPECT_THAT(log, HasSubstr("req_8hFk2"));  // Stripe's words are for the operator
  EXPECT_EQ(log.find("sk_test_123"), std::string::npos);
}

// `billing complete-fees` asks Stripe, once each, for the payments still without their fee.
TEST(E2eStripeCharges, CompleteFeesAsksForEachPaymentStillWithoutItsFee) {
  stripe_test::FakeStripe stripe;
  stripe.queue({200, invoice_paid_by("in_known", R"({"id":"ch_known","object":"charge",
    "amount":49900,"balance_transaction":{"id":"txn_k","object":"balance_transaction","fee":1477,
      "net":48423}})")});
  const stripe_test::Reply no_such_invoice{
      404, stripe_test::stripe_error("invalid_request_error", "resource_missing",
                                     "No such invoice: 'in_gone'", "", "id")};
  stripe.queue(no_such_invoice);
  stripe.queue({200, R"({"id":"in_outside","object":"invoice","amount_paid":49900,"charge":null,
    "paid_out_of_band":true})"});
  auto server =
      BillingServer::for_backend("sqlite", stripe_provider_env(stripe.base_url(), kSecret));
  const auto db = open_server_db(*server);
  const EntityRef owner{EntityKind::hospital, unique_id("hosp")};
  const auto payment = [&](std::string invoice, std::string charge, std::optional<Cents> fee) {
    return Payment{.invoice_id = std::move(invoice),
                   .charge_id = std::move(charge),
                   .entity = owner,
                   .amount = 49900,
                   .currency = "usd",
                   .net_amount = fee ? std::optional<Cents>(49900 - *fee) : std::nullopt,
                   .fee_amount = fee,
                   .created_at = TimePoint(std::chrono::seconds(unix_now()))};
  };
  run_blocking(db->transact([&](Tx& tx) {
    auto& payments = tx.get<PaymentRepo>();
    payments.record_payment(payment("in_known", "ch_known", std::nullopt));
    payments.record_payment(payment("in_gone", "ch_gone", std::nullopt));  // Stripe knows none
    payments.record_payment(payment("in_done", "ch_done", 1477));          // not asked
    auto outside = payment("in_outside", "", std::nullopt);
    outside.charge_id.reset();  // an event that named no charge
    payments.record_payment(outside);
  }));
  auto env = stripe_provider_env(stripe.base_url(), kSecret);
  env.emplace_back("JWT_SECRET_KEY", std::string(kJwtSecret));
  env.emplace_back("CSRF_SECRET_KEY", std::string(kCsrfSecret));
  env.emplace_back("DATABASE_URL", server->database_url());

  auto result = run_billing({"complete-fees"}, env);
  EXPECT_EQ(result.code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("payments without their fee: 3 (2 completed, 1 failed)"));
  const auto saved =
      run_blocking(db->read([&](Tx& tx) { return tx.get<PaymentRepo>().payments(owner); }));
  ASSERT_EQ(saved.size(), 4u);
  EXPECT_EQ(saved[0].fee_amount, 1477);
  EXPECT_EQ(saved[0].net_amount, 48423);
  EXPECT_EQ(saved[1].fee_amount, std::nullopt);
  EXPECT_EQ(saved[3].charge_id, std::nullopt);  // nothing Stripe took: no fee, all of it net
  EXPECT_EQ(saved[3].fee_amount, 0);
  EXPECT_EQ(saved[3].net_amount, 49900);
  const auto requests = stripe.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].target, "/v1/invoices/in_known?expand%5B%5D=charge.balance_transaction");
  EXPECT_EQ(requests[1].target, "/v1/invoices/in_gone?expand%5B%5D=charge.balance_transaction");
  EXPECT_EQ(requests[2].target, "/v1/invoices/in_outside?expand%5B%5D=charge.balance_transaction");

  stripe.queue(no_such_invoice);
  result = run_billing({"complete-fees", "--limit", "1"}, env);  // the one still missing
  EXPECT_EQ(result.code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("payments without their fee: 1 (0 completed, 1 failed)"));
  ASSERT_EQ(stripe.requests().size(), 4u);
  EXPECT_EQ(stripe.requests()[3].target,
            "/v1/invoices/in_gone?expand%5B%5D=charge.balance_transaction");
}

INSTANTIATE_TEST_SUITE_P(E2e, E2eWebhooks, ::testing::ValuesIn(backends()),
                         [](const auto& test) { return test.param; });

}  // namespace
}  // namespace billing::e2e
