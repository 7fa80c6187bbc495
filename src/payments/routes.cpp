#include "payments/routes.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "entities/ownership.hpp"
#include "http/errors.hpp"
#include "http/json_body.hpp"
#include "kit/api_error.hpp"
#include "kit/cached_check.hpp"
#include "payments/provider_errors.hpp"
#include "payments/repo.hpp"
#include "plans/repo.hpp"
#include "plans/selection.hpp"

namespace billing {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

constexpr RoleSet kOwners{Role::hospital, Role::individual};
constexpr RoleSet kOwnersAndAdmins{Role::admin, Role::hospital, Role::individual};
// A subscription, a customer's invoices: another's billing, as the specification words it
// whoever asks (an assistant, or an owner whose billing it is not).
constexpr Policy kOwnBillingRead = Policy::read(kOwnersAndAdmins).denying_with("Unauthorized");
constexpr Policy kOwnBillingWrite = Policy::write(kOwnersAndAdmins).denying_with("Unauthorized");
// How long GET /stripe/health answers with the outcome of its last check of the provider.
constexpr auto kHealthFreshFor = std::chrono::seconds(5);

ApiError price_not_found(const PricedPlan& p) {
  return ApiError(400, fmt::format("Price mapping not found for ({}, {}, {})", name_of(p.role),
                                   name_of(p.plan_type), name_of(p.cycle)));
}

json::object metadata_json(const Metadata& metadata) {
  json::object out;
  for (const auto& [key, value] : metadata) out[key] = value;
  return out;
}

json::object subscription_json(const Subscription& s) {
  return {{"id", s.id},
          {"status", s.status},
          {"customer", s.customer},
          {"current_period_start", s.current_period_start},
          {"current_period_end", s.current_period_end},
          {"cancel_at_period_end", s.cancel_at_period_end},
          {"metadata", metadata_json(s.metadata)}};
}

json::value optional_json(std::optional<Cents> amount) {
  return amount ? json::value(*amount) : json::value(nullptr);
}

json::object invoice_json(const Invoice& i) {
  return {{"id", i.id},
          {"amount_due", i.amount_due},
          {"amount_paid", i.amount_paid},
          {"total", optional_json(i.total)},
          {"starting_balance", optional_json(i.starting_balance)},
          {"ending_balance", optional_json(i.ending_balance)},
          {"currency", i.currency},
          {"status", i.status},
          {"created", i.created}};
}

json::object customer_json(const Customer& c) {
  const auto optional = [](const std::optional<std::string>& s) {
    return s ? json::value(*s) : json::value(nullptr);
  };
  return {{"id", c.id},
          {"email", optional(c.email)},
          {"name", optional(c.name)},
          {"created", c.created},
          {"metadata", metadata_json(c.metadata)}};
}

template <class T, class ToJson>
Response page_response(const Page<T>& page, ToJson to_json) {
  json::array data;
  for (const auto& item : page.data) data.push_back(to_json(item));
  return json_response(
      json::object{{"object", "list"}, {"data", std::move(data)}, {"has_more", page.has_more}});
}

// What a provider answers for an id that names none of its objects.
using NoSuch = ApiError (*)(std::string_view id);

// Stripe's ids (and the local provider's) are letters, digits, '_' and '-'. Any other names no
// object: said so here, as the provider would, rather than sent to one that may refuse it as a
// malformed request of ours (a 502).
std::string provider_id(std::string id, NoSuch no_such) {
  const auto allowed = [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; };
  if (!std::all_of(id.begin(), id.end(), allowed)) throw no_such(id);
  return id;
}

// Stripe's pagination parameters: limit 1-100 (default 10), starting_after an id of the list's.
PageRequest page_request(const Request& request, NoSuch no_such) {
  PageRequest page;
  if (auto limit = request.query_param("limit")) {
    const auto end = limit->data() + limit->size();
    const auto [ptr, ec] = std::from_chars(limit->data(), end, page.limit);
    if (ec != std::errc() || ptr != end || page.limit < 1 || page.limit > 100)
      throw query_error("limit", "int_parsing", "An integer from 1 to 100");
  }
  if (auto after = query_id(request, "starting_after"))
    page.starting_after = provider_id(std::move(*after), no_such);
  return page;
}

// The caller's plan (hospital or individual; an assistant's is its hospital's).
asio::awaitable<std::optional<Plan>> own_plan(Db& db, const Identity& caller) {
  const auto entity = own_entity(caller);
  if (!entity) co_return std::nullopt;
  co_return co_await db.read([&](Tx& tx) { return tx.get<PlanRepo>().find_plan(*entity); });
}

// Whether the caller's plan follows the subscription or customer `id`, or one of the caller's
// payments names it.
asio::awaitable<bool> own_payments_name(Db& db, const Identity& caller,
                                        PaymentRepo::PaidThrough through, std::string_view id) {
  const auto entity = own_entity(caller);
  if (!entity) co_return false;
  const bool named = co_await db.read([&](Tx& tx) {
    if (const auto plan = tx.get<PlanRepo>().find_plan(*entity)) {
      const auto& followed = through == PaymentRepo::PaidThrough::subscription
                                 ? plan->stripe_subscription_id
                                 : plan->stripe_customer_id;
      if (followed == id) return true;
    }
    return tx.get<PaymentRepo>().paid_through(*entity, through, id);
  });
  co_return named;
}

// A user reaches their plan's customer, and any their payments name (a checkout's that paid for a
// subscription the plan does not follow: its payer must see its invoices); an admin reaches all.
// Decided from our own records, before any call to the provider, as for subscriptions below.
asio::awaitable<void> require_own_customer(Db& db, const Identity& caller, std::string_view id) {
  if (caller.role == Role::admin) co_return;
  const bool own = co_await own_payments_name(db, caller, PaymentRepo::PaidThrough::customer, id);
  if (!own) throw ApiError(403, "Unauthorized");
}

// The checkout `caller` asks for in `body`, for a plan `current` (if any) that no subscription
// pays for yet.
CheckoutRequest checkout_request(std::string_view raw_body, const Identity& caller,
                                 const std::optional<Plan>& current, const PriceMap& prices,
                                 const CheckoutUrls& urls) {
  JsonBody body(raw_body);
  const auto plan_type = body.required_enum<PlanType>("plan_type");
  const auto cycle = body.required_enum<BillingCycle>("billing_cycle");
  body.finish();
  const auto entity = own_entity(caller);
  if (!entity) throw ApiError(403, "Unauthorized");
  const PricedPlan priced{entity->kind, plan_type, cycle};
  const auto price = prices.price_for(priced);
  if (!price) throw price_not_found(priced);
  if (current && suspended_by_its_subscription(*current)) throw settle_subscription_first();
  if (current && current->stripe_subscription_id && current->status == PlanStatus::active)
    throw ApiError(409,
                   "An active subscription pays for this plan: change it with "
                   "POST /billing/plan/select");
  return CheckoutRequest{
      .entity = *entity,
      .plan_type = plan_type,
      .cycle = cycle,
      .price_id = std::string(*price),
      .customer_id = current ? current->stripe_customer_id : std::nullopt,
      .success_url = urls.success_url,
      .cancel_url = urls.cancel_url,
  };
}

asio::awaitable<Response> post_checkout(Db& db, PaymentProvider& provider, const PriceMap& prices,
                                        const CheckoutUrls& urls, const Call& call) {
  const auto current = co_await own_plan(db, call.caller());
  auto request = checkout_request(call.request.body, call.caller(), current, prices, urls);
  const auto url = co_await provider.create_checkout_session(std::move(request));
  co_return json_response(json::object{{"checkout_url", url}});
}

asio::awaitable<Response> post_portal_link(Db& db, PaymentProvider& provider,
                                           const CheckoutUrls& urls, const Call& call) {
  const auto plan = co_await own_plan(db, call.caller());
  if (!plan || !plan->stripe_customer_id)
    throw ApiError(404, "No billing account yet: complete a checkout first");
  const auto url =
      co_await provider.create_portal_session(*plan->stripe_customer_id, urls.success_url);
  co_return json_response(json::object{{"portal_url", url}});
}

// A user reaches the subscription that pays for their plan, and any their payments name (a
// second checkout paid for while the first already paid for the plan, which stays with the
// first: its payer must be able to see and cancel it); an admin reaches all. Decided from our own
// records, before any call to the provider: any other id is 403, whether it exists or not.
asio::awaitable<void> require_own_subscription(Db& db, const Identity& caller,
                                               std::string_view id) {
  if (caller.role == Role::admin) co_return;
  const bool own =
      co_await own_payments_name(db, caller, PaymentRepo::PaidThrough::subscription, id);
  if (!own) throw ApiError(403, "Unauthorized");
}

asio::awaitable<Response> get_subscription(Db& db, PaymentProvider& provider, const Call& call) {
  auto id = path_id(call.request, "sub_id");
  co_await require_own_subscription(db, call.caller(), id);
  id = provider_id(std::move(id), provider_errors::no_such_subscription);  // an admin's
  co_return json_response(subscription_json(co_await provider.get_subscription(std::move(id))));
}

asio::awaitable<Response> post_cancel(Db& db, PaymentProvider& provider, const Call& call) {
  JsonBody body(call.request.body);
  auto id = body.required_string("subscription_id");
  body.finish();
  co_await require_own_subscription(db, call.caller(), id);
  id = provider_id(std::move(id), provider_errors::no_such_subscription);
  const auto subscription = co_await provider.cancel_at_period_end(std::move(id));
  co_return json_response(json::object{{"status", subscription.status},
                                       {"cancel_at_period_end", subscription.cancel_at_period_end},
                                       {"current_period_end", subscription.current_period_end}});
}

asio::awaitable<Response> get_invoices(Db& db, PaymentProvider& provider, const Call& call) {
  auto id = path_id(call.request, "customer_id");
  const auto page = page_request(call.request, provider_errors::no_such_invoice);
  co_await require_own_customer(db, call.caller(), id);
  id = provider_id(std::move(id), provider_errors::no_such_customer);
  const auto invoices = co_await provider.list_invoices(std::move(id), page);
  co_return page_response(invoices, invoice_json);
}

asio::awaitable<Response> get_customers(PaymentProvider& provider, const Call& call) {
  co_return page_response(co_await provider.list_customers(
                              page_request(call.request, provider_errors::no_such_customer)),
                          customer_json);
}

asio::awaitable<Response> get_subscriptions(PaymentProvider& provider, const Call& call) {
  co_return page_response(co_await provider.list_subscriptions(
                              page_request(call.request, provider_errors::no_such_subscription)),
                          subscription_json);
}

asio::awaitable<Response> get_health(CachedCheck& provider_health) {
  co_await provider_health.run();
  co_return json_response(json::object{{"status", "healthy"}, {"service", "stripe"}});
}

asio::awaitable<Response> post_webhook(WebhookReceiver& webhooks, const Call& call) {
  const auto status =
      co_await webhooks.receive(call.request.header("Stripe-Signature"), call.request.body);
  co_return json_response(json::object{{"received", true}, {"result", name_of(status)}});
}

}  // namespace

asio::awaitable<void> ProviderSubscriptionChanges::change_plan(Plan plan, SubscriptionPrice price) {
  const PricedPlan priced{plan.owner.kind, price.plan_type, price.cycle};
  const auto price_id = prices_.price_for(priced);
  if (!price_id) throw price_not_found(priced);
  co_await provider_.change_price(*plan.stripe_subscription_id, std::string(*price_id),
                                  price.plan_type, price.cycle);
}

void add_payment_routes(Router& router, Db& db, PaymentProvider& provider, const PriceMap& prices,
                        WebhookReceiver& webhooks, CheckoutUrls urls) {
  auto shared_urls = std::make_shared<const CheckoutUrls>(std::move(urls));
  router.add({Method::post, "/stripe/checkout", Policy::write(kOwners),
              [&db, &provider, &prices, shared_urls](const Call& call) {
                return post_checkout(db, provider, prices, *shared_urls, call);
              }});
  router.add({Method::post, "/stripe/portal-link", Policy::write(kOwners),
              [&db, &provider, shared_urls](const Call& call) {
                return post_portal_link(db, provider, *shared_urls, call);
              }});
  router.add({Method::get, "/stripe/subscription/{sub_id}", kOwnBillingRead,
              [&db, &provider](const Call& call) { return get_subscription(db, provider, call); }});
  router.add({Method::post, "/stripe/subscription/cancel", kOwnBillingWrite,
              [&db, &provider](const Call& call) { return post_cancel(db, provider, call); }});
  router.add({Method::get, "/stripe/customer/{customer_id}/invoices", kOwnBillingRead,
              [&db, &provider](const Call& call) { return get_invoices(db, provider, call); }});
  router.add({Method::get, "/stripe/admin/customers", Policy::read({Role::admin}),
              [&provider](const Call& call) { return get_customers(provider, call); }});
  router.add({Method::get, "/stripe/admin/subscriptions", Policy::read({Role::admin}),
              [&provider](const Call& call) { return get_subscriptions(provider, call); }});
  // Stripe signs the raw body: no token, no CSRF; a body up to 1 MiB (Stripe's own limit is
  // lower, but an invoice with many lines comes close to 64 KiB).
  router.add({Method::post, "/stripe/webhook", Policy::open().with_body_limit(kLargeBodyLimit),
              [&webhooks](const Call& call) { return post_webhook(webhooks, call); }});
  // Open to anyone, while each check is a call to Stripe that shares the key's rate limit and the
  // provider's threads with checkouts and cancellations: one at most every few seconds.
  auto provider_health = std::make_shared<CachedCheck>(
      [&provider] { return provider.check_health(); }, kHealthFreshFor,
      std::make_exception_ptr(provider_errors::unavailable()));
  router.add({Method::get, "/stripe/health", Policy::open(),
              [provider_health](const Call&) { return get_health(*provider_health); }});
}

}  // namespace billing
