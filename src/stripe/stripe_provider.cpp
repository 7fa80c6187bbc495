#include "stripe/stripe_provider.hpp"

#include <chrono>
#include <exception>
#include <initializer_list>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include "http/curl_client.hpp"
#include "kit/crypto.hpp"
#include "kit/offload.hpp"
#include "payments/provider_errors.hpp"
#include "stripe/objects.hpp"

namespace billing {

namespace asio = boost::asio;
namespace json = boost::json;
using stripe::path_segment;

namespace {

constexpr std::size_t kLoggedBodyLimit = 2000;
// How many generations of an idempotency key one call walks past (StripeProvider::send).
constexpr int kMaxKeyGenerations = 16;

std::string_view error_field(const json::value& body, std::string_view key) {
  const auto* object = body.if_object();
  const auto* error = object ? object->if_contains("error") : nullptr;
  const auto* field = error && error->is_object() ? error->get_object().if_contains(key) : nullptr;
  return field && field->is_string() ? std::string_view(field->get_string()) : std::string_view();
}

// A list request's page; Stripe's answer when starting_after names no such object is `missing`.
template <class Request>
void add_page(Request& request, const PageRequest& page, ApiError (*missing)(std::string_view)) {
  request.params.add("limit", std::to_string(page.limit));
  if (!page.starting_after) return;
  request.params.add("starting_after", *page.starting_after);
  request.named.push_back({"starting_after", *page.starting_after, missing});
}

// A call about one subscription: an answer about another is not Stripe's.
auto the_subscription(std::string id) {
  return [id = std::move(id)](const json::value& answer) {
    auto subscription = stripe::read_subscription(answer);
    if (subscription.id != id)
      throw std::runtime_error("Stripe answered about another subscription");
    return subscription;
  };
}

}  // namespace

StripeProvider::StripeProvider(StripeOptions options, StripeMetrics& metrics)
    : options_(std::move(options)), metrics_(metrics), pool_(options_.pool_threads) {
  curl_global_init_once();
}

template <class Read>
auto StripeProvider::call(Request request, Read read)
    -> asio::awaitable<decltype(read(std::declval<const json::value&>()))> {
  // Counted however the call ends, also when its coroutine is dropped half-way.
  struct Record {
    StripeMetrics& metrics;
    StripeEndpoint endpoint;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    StripeCallOutcome outcome = StripeCallOutcome::unavailable;
    ~Record() {
      metrics.calls.add(endpoint, outcome);
      metrics.latency.observe(std::chrono::steady_clock::now() - started, endpoint);
    }
  } record{metrics_, request.endpoint};
  const auto answer = co_await send(request, record.outcome);
  try {
    auto result = read(answer);
    record.outcome = StripeCallOutcome::ok;
    co_return result;
  } catch (const std::exception& error) {
    // An answer that is not what was asked for is Stripe's outage as far as the caller can tell.
    spdlog::warn("stripe: unreadable answer from {}: {}", name_of(request.endpoint), error.what());
  }
  throw provider_errors::unavailable();
}

asio::awaitable<std::string> StripeProvider::create_checkout_session(CheckoutRequest checkout) {
  // A checkout without a customer would make its own, and two of an entity's open at once (two
  // tabs) would then pay as two customers: the second subscription missing from the payer's
  // portal, where they could otherwise cancel it.
  if (!checkout.customer_id) checkout.customer_id = co_await create_customer(checkout.entity);
  Request request{.endpoint = StripeEndpoint::create_checkout_session,
                  .post = true,
                  .path = "/v1/checkout/sessions"};
  auto& params = request.params;
  // Cards only: a checkout completes paid, or not at all. A delayed method (a bank debit) would
  // complete unpaid and be paid days later (checkout.session.async_payment_succeeded), which
  // the plan's activation does not wait for.
  params.add("mode", "subscription")
      .add("payment_method_types[0]", "card")
      .add("line_items[0][price]", checkout.price_id)
      .add("line_items[0][quantity]", "1")
      .add("success_url", checkout.success_url)
      .add("cancel_url", checkout.cancel_url)
      .add("client_reference_id", checkout.entity.id);
  if (checkout.customer_id) {
    params.add("customer", *checkout.customer_id);
    request.named.push_back({"customer", *checkout.customer_id, provider_errors::no_such_customer});
  }
  // On the session (for checkout.session.completed) and on the subscription it creates (for
  // every later customer.subscription.* event).
  for (const std::string prefix : {"metadata", "subscription_data[metadata]"}) {
    params.add(prefix + "[role]", name_of(checkout.entity.kind))
        .add(prefix + "[role_entity_id]", checkout.entity.id)
        .add(prefix + "[plan]", name_of(checkout.plan_type))
        .add(prefix + "[cycle]", name_of(checkout.cycle));
  }
  co_return co_await call(std::move(request), stripe::read_session_url);
}

asio::awaitable<std::string> StripeProvider::create_customer(const EntityRef& entity) {
  Request request{
      .endpoint = StripeEndpoint::create_customer, .post = true, .path = "/v1/customers"};
  const auto role = name_of(entity.kind);
  request.params.add("metadata[role]", role).add("metadata[role_entity_id]", entity.id);
  // One key per entity: Stripe answers every request with that key in the next 24 hours with the
  // first one's customer. Hashed, so that no entity id can reach a header.
  request.idempotency_key =
      "customer-" + hex_encode(as_chars(sha256(std::string(role) + '\n' + entity.id)));
  co_return co_await call(std::move(request), [](const json::value& customer) {
    return stripe::read_customer(customer).id;
  });
}

asio::awaitable<std::string> StripeProvider::create_portal_session(std::string customer_id,
                                                                   std::string return_url) {
  Request request{.endpoint = StripeEndpoint::create_portal_session,
                  .post = true,
                  .path = "/v1/billing_portal/sessions"};
  request.params.add("customer", customer_id).add("return_url", return_url);
  request.named.push_back({"customer", customer_id, provider_errors::no_such_customer});
  co_return co_await call(std::move(request), stripe::read_session_url);
}

asio::awaitable<Subscription> StripeProvider::get_subscription(std::string id) {
  Request request{.endpoint = StripeEndpoint::retrieve_subscription,
                  .path = "/v1/subscriptions/" + path_segment(id)};
  request.named.push_back({"", id, provider_errors::no_such_subscription});
  co_return co_await call(std::move(request), the_subscription(std::move(id)));
}

asio::awaitable<Subscription> StripeProvider::cancel_at_period_end(std::string id) {
  Request request{.endpoint = StripeEndpoint::update_subscription,
                  .post = true,
                  .path = "/v1/subscriptions/" + path_segment(id)};
  request.params.add("cancel_at_period_end", "true");
  request.named.push_back({"", id, provider_errors::no_such_subscription});
  try {
    co_return co_await call(std::move(request), the_subscription(id));
  } catch (const ApiError& error) {
    if (error.status != provider_errors::rejected().status) throw;
  }
  // Stripe refuses any change to a canceled subscription as a generic invalid request: only
  // the subscription itself tells that apart from a request of ours it refused. Asked after
  // the refusal rather than before, the usual cancel is one call, and one canceled in between
  // is still said plainly.
  if ((co_await get_subscription(std::move(id))).status == "canceled")
    throw provider_errors::subscription_canceled();
  throw provider_errors::rejected();
}

asio::awaitable<Subscription> StripeProvider::change_price(std::string id, std::string price_id,
                                                           PlanType plan_type, BillingCycle cycle) {
  // Stripe replaces an item named by its id; without the id it would add a second one.
  const auto current = co_await get_subscription(id);
  if (current.price_id == price_id) co_return current;  // priced so already: nothing to prorate
  if (current.item_id.empty()) {
    spdlog::warn("stripe: subscription {} has no item to move to another price", id);
    throw provider_errors::rejected();
  }
  Request request{.endpoint = StripeEndpoint::update_subscription,
                  .post = true,
                  .path = "/v1/subscriptions/" + path_segment(id)};
  request.params.add("items[0][id]", current.item_id)
      .add("items[0][price]", price_id)
      // Invoiced at once, so that no plan is had before it is paid for (a dearer plan prorated
      // onto the next invoice could be used for a period, then left unpaid); a card that fails
      // refuses the change (402), as the local provider does, rather than leave the
      // subscription past_due. A cheaper price leaves a credit for the next invoice.
      .add("proration_behavior", "always_invoice")
      .add("payment_behavior", "error_if_incomplete")
      .add("metadata[plan]", name_of(plan_type))
      .add("metadata[cycle]", name_of(cycle));
  request.named.push_back({"", id, provider_errors::no_such_subscription});
  co_return co_await call(std::move(request), the_subscription(std::move(id)));
}

asio::awaitable<Page<Invoice>> StripeProvider::list_invoices(std::string customer_id,
                                                             PageRequest page) {
  Request request{.endpoint = StripeEndpoint::list_invoices, .path = "/v1/invoices"};
  request.params.add("customer", customer_id);
  add_page(request, page, provider_errors::no_such_invoice);
  request.named.push_back({"customer", customer_id, provider_errors::no_such_customer});
  co_return co_await call(std::move(request), [](const json::value& list) {
    return stripe::read_page(list, stripe::read_invoice);
  });
}

asio::awaitable<Page<Customer>> StripeProvider::list_customers(PageRequest page) {
  Request request{.endpoint = StripeEndpoint::list_customers, .path = "/v1/customers"};
  add_page(request, page, provider_errors::no_such_customer);
  co_return co_await call(std::move(request), [](const json::value& list) {
    return stripe::read_page(list, stripe::read_customer);
  });
}

asio::awaitable<Page<Subscription>> StripeProvider::list_subscriptions(PageRequest page) {
  Request request{.endpoint = StripeEndpoint::list_subscriptions, .path = "/v1/subscriptions"};
  request.params.add("status", "all");  // Stripe's default leaves out canceled ones
  add_page(request, page, provider_errors::no_such_subscription);
  co_return co_await call(std::move(request), [](const json::value& list) {
    return stripe::read_page(list, stripe::read_subscription);
  });
}

// Read at 2023-10-16 whatever STRIPE_API_VERSION says: from 2025-03-31 on an invoice names no
// charge (nor do the events of endpoints made at those versions), at 2023-10-16 it does. One call
// serves invoice events of either.
asio::awaitable<std::optional<ChargeDetails>> StripeProvider::invoice_charge(
    std::string invoice_id) {
  Request request{.endpoint = StripeEndpoint::retrieve_invoice,
                  .path = "/v1/invoices/" + path_segment(invoice_id),
                  .api_version = "2023-10-16"};
  request.params.add("expand[]", "charge.balance_transaction");
  request.named.push_back({"", invoice_id, provider_errors::no_such_invoice});
  co_return co_await call(std::move(request), stripe::read_invoice_charge);
}

asio::awaitable<void> StripeProvider::check_health() {
  // named: GCC 12 frees a temporary here twice
  Request request{.endpoint = StripeEndpoint::retrieve_account, .path = "/v1/account"};
  // Healthy, or one of the health check's two answers: Stripe refusing the check itself (a key
  // without access to the account, say) is Stripe not usable, not a request of ours gone wrong.
  bool usable = true;
  try {
    co_await call(std::move(request), [](const json::value&) { return true; });
  } catch (const ApiError& error) {
    if (error.status == 503) throw;
    usable = false;
  }
  if (!usable) throw provider_errors::unavailable();
}

asio::awaitable<json::value> StripeProvider::send(const Request& request,
                                                  StripeCallOutcome& outcome) {
  const std::string_view method = request.post ? "POST" : "GET";
  HttpExchange exchange;
  exchange.post = request.post;
  exchange.url = options_.api_base + request.path;
  if (request.post)
    exchange.body = request.params.encoded();
  else if (!request.params.empty())
    exchange.url += "?" + request.params.encoded();
  exchange.headers = {
      "Authorization: Bearer " + options_.secret_key,
      "Stripe-Version: " +
          std::string(request.api_version.empty() ? options_.api_version : request.api_version)};
  // Stripe answers a retried POST with the first attempt's result instead of acting twice,
  // failures included: a 5xx it kept for a key (Idempotent-Replayed) comes back for a day. The
  // call then goes on at once under the key's next generation, the same for every caller of a
  // key made from what it is for (two tabs' checkouts still make one customer). A replay is
  // Stripe's stored answer, not a try: it costs no attempt, so that later calls walk past every
  // generation a failure was kept for (up to kMaxKeyGenerations).
  int generation = 0;
  const auto idempotency_key = [&] {
    if (request.idempotency_key.empty()) return random_hex(16);
    if (generation == 0) return request.idempotency_key;
    return request.idempotency_key + "-" + std::to_string(generation);
  };
  if (request.post) {
    exchange.headers.push_back("Idempotency-Key: " + idempotency_key());
    exchange.response_headers = {"Idempotent-Replayed"};
  }
  exchange.connect_timeout = options_.connect_timeout;
  exchange.total_timeout = options_.total_timeout;

  const int attempts = options_.retries + 1;
  for (int attempt = 1;;) {
    const auto answer =
        co_await offload(pool_.get_executor(), [&] { return perform_blocking(exchange); });
    if (answer.transport_error) {
      spdlog::warn("stripe: {} {} (attempt {}/{}): {}", method, request.path, attempt, attempts,
                   redacted(*answer.transport_error));
    } else {
      boost::system::error_code parse_error;
      json::value body = json::parse(answer.body, parse_error);
      if (answer.status >= 200 && answer.status < 300) {
        if (!parse_error) co_return body;
        spdlog::warn("stripe: {} {}: HTTP {} with a body that is not JSON", method, request.path,
                     answer.status);
        throw provider_errors::unavailable();
      }
      spdlog::warn("stripe: {} {} (attempt {}/{}): HTTP {}: {}", method, request.path, attempt,
                   attempts, answer.status, redacted(answer.body.substr(0, kLoggedBodyLimit)));
      const bool transient = answer.status == 409 || answer.status == 429 || answer.status >= 500;
      if (!transient) {
        auto [why, error] = failure(request, answer.status, body);
        outcome = why;
        throw std::move(error);
      }
      if (answer.status >= 500 && request.post && answer.header_values.at(0) == "true" &&
          generation < kMaxKeyGenerations) {
        ++generation;
        exchange.headers.back() = "Idempotency-Key: " + idempotency_key();
        continue;  // the same attempt
      }
    }
    if (attempt >= attempts) throw provider_errors::unavailable();
    asio::steady_timer pause(co_await asio::this_coro::executor,
                             options_.backoff_base * (1 << (attempt - 1)));
    co_await pause.async_wait(asio::use_awaitable);
    ++attempt;
    metrics_.retries.add(request.endpoint);
  }
}

StripeProvider::Failure StripeProvider::failure(const Request& request, long status,
                                                const json::value& body) const {
  using enum StripeCallOutcome;
  if (status == 401) return {authentication_failed, provider_errors::authentication_failed()};
  const auto code = error_field(body, "code");
  if (status == 402 || error_field(body, "type") == "card_error") {
    const auto decline_code = error_field(body, "decline_code");
    const auto is = [&](std::string_view reason) {
      return code == reason || decline_code == reason;
    };
    if (is("insufficient_funds")) return {card_error, provider_errors::insufficient_funds()};
    if (is("authentication_required"))
      return {card_error, provider_errors::authentication_required()};
    return {card_error, provider_errors::card_declined()};
  }
  if (code == "resource_missing") {
    // The object in the path is missing when Stripe says 404; one passed as a parameter is
    // named by the error's `param`.
    const auto param = error_field(body, "param");
    for (const auto& named : request.named)
      if (named.param.empty() ? status == 404 : named.param == param)
        return {not_found, named.missing(named.id)};
  }
  return {rejected, provider_errors::rejected()};
}

std::string StripeProvider::redacted(std::string text) const {
  const auto& key = options_.secret_key;
  if (key.empty()) return text;
  constexpr std::string_view kMask = "[secret key]";
  for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at + kMask.size()))
    text.replace(at, key.size(), kMask);
  return text;
}

}  // namespace billing
