#include "app/dev.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include "entities/repo.hpp"
#include "kit/crypto.hpp"
#include "kit/json.hpp"
#include "kit/run_blocking.hpp"
#include "plans/repo.hpp"
#include "plans/selection.hpp"

namespace billing {

void apply_dev_secrets(Config& config) {
  const auto db_path = config.sqlite_path().value_or("billing.db");
  const auto file = std::filesystem::absolute(db_path).parent_path() / "billing-dev-secrets.json";
  boost::json::object secrets;
  if (std::ifstream in(file); in) {
    std::stringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    auto parsed = boost::json::parse(text.str(), ec);
    if (!ec && parsed.is_object()) secrets = std::move(parsed.get_object());
  }
  bool changed = false;
  constexpr std::pair<const char*, const char*> kSecrets[] = {
      {"jwt_secret", ""}, {"csrf_secret", ""}, {"webhook_secret", "whsec_"}};
  for (const auto& [key, prefix] : kSecrets) {
    if (const auto* v = secrets.if_contains(key); v && v->is_string() && !v->get_string().empty())
      continue;
    secrets[key] = prefix + random_hex(32);
    changed = true;
  }
  if (changed) {
    std::ofstream out(file, std::ios::trunc);
    out << to_json(secrets) << "\n";
    if (!out) throw ConfigError("cannot write " + file.string());
    ::chmod(file.c_str(), S_IRUSR | S_IWUSR);
  }
  if (config.jwt_secret.empty()) config.jwt_secret = secrets["jwt_secret"].as_string().c_str();
  if (config.csrf_secret.empty()) config.csrf_secret = secrets["csrf_secret"].as_string().c_str();
  // Kept, and printed, so that events made up by hand can be signed for the local webhook.
  if (config.payments == PaymentsProvider::local && config.stripe.webhook_secret.empty())
    config.stripe.webhook_secret = secrets["webhook_secret"].as_string().c_str();
}

void seed_demo_entities(Db& db, const Catalog& catalog, const Clock& clock) {
  const Identity seeder{.subject = "billing-dev-seed", .role = Role::admin};
  run_blocking(db.transact([&](Tx& tx) {
    const auto now = clock.now();
    auto& entities = tx.get<EntityRepo>();
    for (const char* id : {"demo-hospital-1", "demo-hospital-2"})
      entities.create_entity({EntityKind::hospital, id}, now);
    for (const char* id : {"demo-individual-1", "demo-individual-2"})
      entities.create_entity({EntityKind::individual, id}, now);
    entities.create_assistant("demo-assistant-1", "demo-hospital-1", now);
    if (!tx.get<PlanRepo>().find_plan({EntityKind::hospital, "demo-hospital-1"}))
      select_plan(tx, catalog, seeder, {PlanType::lite, "demo-hospital-1", EntityKind::hospital},
                  now);
  }));
}

namespace {

// How to pay with the provider in use: the local one's pages, clock and signing secret (never a
// Stripe endpoint's, which is the user's own), or Stripe's own pages.
std::string payment_steps(const Config& config, const std::string& base) {
  constexpr std::string_view kCheckout =
      R"text(  CSRF=$(curl -s -H "Authorization: Bearer $INDIVIDUAL" {base}/csrf-token | sed 's/.*"csrf_token":"\([^"]*\)".*/\1/')
  curl -s -w '\n' -X POST -H "Authorization: Bearer $INDIVIDUAL" -H "X-CSRF-Token: $CSRF" \
       -H 'Content-Type: application/json' \
       -d '{{"plan_type":"pro","billing_cycle":"monthly"}}' {base}/stripe/checkout
)text";
  constexpr std::string_view kPortal =
      R"text(  curl -s -w '\n' -X POST -H "Authorization: Bearer $INDIVIDUAL" -H "X-CSRF-Token: $CSRF" {base}/stripe/portal-link
)text";
  constexpr std::string_view kYearly =
      R"text(  CSRF=$(curl -s -H "Authorization: Bearer $INDIVIDUAL" {base}/csrf-token | sed 's/.*"csrf_token":"\([^"]*\)".*/\1/')
  curl -s -w '\n' -X POST -H "Authorization: Bearer $INDIVIDUAL" -H "X-CSRF-Token: $CSRF" \
       -H 'Content-Type: application/json' \
       -d '{{"plan_type":"pro","id":"demo-individual-1","billing_cycle":"yearly"}}' {base}/billing/plan/select
)text";
  const auto checkout = fmt::format(fmt::runtime(kCheckout), fmt::arg("base", base));
  const auto portal = fmt::format(fmt::runtime(kPortal), fmt::arg("base", base));
  if (config.payments != PaymentsProvider::local)
    return "Pay for a plan on Stripe's checkout page (open the checkout_url), then manage it on "
           "Stripe's portal:\n" +
           checkout + portal + "\n";
  return fmt::format(
      R"text(Pay for a plan (local payments: open the checkout_url in a browser, card 4242 4242 4242 4242):
{checkout}Its invoices, a new card, or cancel, on the portal (a link valid for an hour):
{portal}A month later, as admin (the monthly renewal; card 4000 0000 0000 0341, set in the portal,
makes it fail and suspends the plan until it is paid there):
  CSRF=$(curl -s -H "Authorization: Bearer $ADMIN" {base}/csrf-token | sed 's/.*"csrf_token":"\([^"]*\)".*/\1/')
  curl -s -w '\n' -X POST -H "Authorization: Bearer $ADMIN" -H "X-CSRF-Token: $CSRF" \
       -H 'Content-Type: application/json' -d '{{"days":31}}' {base}/stripe/local/clock/advance
Then yearly instead (a year charged at once, less the unused rest of the month; renewals then
come a year on):
{yearly}
Events of your own for {base}/stripe/webhook are signed with (Stripe-Signature:
t=<unix seconds now>,v1=<hex HMAC-SHA256 of "<t>.<body>">):
  export WEBHOOK_SECRET={secret}
Their "created" is compared with the plan's last event, which the local clock dates: after an
advance, date them after the clock's "now", or they are older and change nothing ("stale").

)text",
      fmt::arg("base", base), fmt::arg("checkout", checkout), fmt::arg("portal", portal),
      fmt::arg("yearly", fmt::format(fmt::runtime(kYearly), fmt::arg("base", base))),
      fmt::arg("secret", config.stripe.webhook_secret));
}

}  // namespace

void print_quick_start(const Config& config, const JwtCodec& jwt, const Clock& clock,
                       unsigned short port) {
  const auto expires = clock.now() + std::chrono::hours(24);
  const auto admin = jwt.sign({"dev-admin", Role::admin, "", ""}, expires);
  const auto hospital =
      jwt.sign({"dev-hospital-user", Role::hospital, "demo-hospital-1", ""}, expires);
  const auto individual =
      jwt.sign({"dev-individual-user", Role::individual, "demo-individual-1", ""}, expires);
  const auto assistant = jwt.sign(
      {"dev-assistant-user", Role::assistant, "demo-assistant-1", "demo-hospital-1"}, expires);
  const auto base = config.url_for_clients(port);
  std::cout << fmt::format(
                   R"text(
billing is running on {base} ({db}, {payments} payments). Tokens, valid for 24 hours:

  export ADMIN={admin}
  export HOSPITAL={hospital}
  export INDIVIDUAL={individual}
  export ASSISTANT={assistant}

Try:
  curl -s -w '\n' {base}/billing/health
  curl -s -w '\n' -H "Authorization: Bearer $HOSPITAL" {base}/billing/plan
  curl -s -w '\n' -H "Authorization: Bearer $HOSPITAL" {base}/billing/services
  CSRF=$(curl -s -H "Authorization: Bearer $HOSPITAL" {base}/csrf-token | sed 's/.*"csrf_token":"\([^"]*\)".*/\1/')
  curl -s -w '\n' -X POST -H "Authorization: Bearer $HOSPITAL" -H "X-CSRF-Token: $CSRF" \
       -H 'Content-Type: application/json' \
       -d '{{"hospital_id":"demo-hospital-1","services":["medication"]}}' {base}/billing/services/select
  curl -s -w '\n' -H "Authorization: Bearer $ADMIN" "{base}/billing/plan/current?entity_id=demo-hospital-1"

{payment_steps}Stop with Ctrl-C.
)text",
                   fmt::arg("base", base), fmt::arg("db", config.database_shown()),
                   fmt::arg("payments",
                            config.payments == PaymentsProvider::local ? "local" : "Stripe"),
                   fmt::arg("admin", admin), fmt::arg("hospital", hospital),
                   fmt::arg("individual", individual), fmt::arg("assistant", assistant),
                   fmt::arg("payment_steps", payment_steps(config, base)))
            << std::flush;
}

}  // namespace billing
