#include "tests/stripe/fake_stripe.hpp"

#include <string_view>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse.hpp>

namespace billing::stripe_test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace urls = boost::urls;
using tcp = asio::ip::tcp;

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Reply json_reply(int status, const json::value& body) {
  return {status, json::serialize(body)};
}

Reply not_found(std::string_view what, std::string_view id) {
  return {404, stripe_error("invalid_request_error", "resource_missing",
                            std::string("No such ").append(what).append(": '").append(id) + "'", {},
                            "id")};
}

}  // namespace

std::string RecordedRequest::header(const std::string& lower_case_name) const {
  const auto found = headers.find(lower_case_name);
  return found == headers.end() ? "" : found->second;
}

std::string stripe_error(std::string_view type, std::string_view code, std::string_view message,
                         std::string_view decline_code, std::string_view param) {
  json::object error{{"type", type}, {"code", code}, {"message", message}};
  if (!decline_code.empty()) error["decline_code"] = decline_code;
  if (!param.empty()) error["param"] = param;
  return json::serialize(json::object{{"error", std::move(error)}});
}

std::string invoice_paid_by(std::string_view invoice_id, std::string_view charge) {
  return json::serialize(json::object{{"id", invoice_id},
                                      {"object", "invoice"},
                                      {"payment_intent", "pi_for_" + std::string(invoice_id)},
                                      {"charge", json::parse(charge)}});
}

json::object subscription_object(std::string_view id, std::string_view item_id,
                                 std::string_view price_id) {
  return {
      {"id", id},
      {"object", "subscription"},
      {"status", "active"},
      {"customer", "cus_fake"},
      {"current_period_start", 1700000000},
      {"current_period_end", 1702592000},
      {"cancel_at_period_end", false},
      {"metadata", json::object{{"role", "hospital"}, {"plan", "lite"}}},
      {"items",
       json::object{{"object", "list"},
                    {"data", json::array{json::object{
                                 {"id", item_id}, {"price", json::object{{"id", price_id}}}}}}}}};
}

FakeStripe::FakeStripe() {
  tcp::acceptor acceptor(ioc_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  port_ = acceptor.local_endpoint().port();
  asio::co_spawn(ioc_, accept(std::move(acceptor)), asio::detached);
  thread_ = std::thread([this] { ioc_.run(); });
}

asio::awaitable<void> FakeStripe::accept(tcp::acceptor listening) {
  for (;;) {
    auto socket = co_await listening.async_accept(asio::use_awaitable);
    {
      std::lock_guard lock(mutex_);
      ++connections_;
    }
    asio::co_spawn(listening.get_executor(), serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> FakeStripe::serve(tcp::socket socket) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> request;
    co_await http::async_read(socket, buffer, request, asio::use_awaitable);
    RecordedRequest recorded{
        std::string(request.method_string()), std::string(request.target()), request.body(), {}};
    for (const auto& field : request)
      recorded.headers[lower(field.name_string())] = std::string(field.value());
    Reply reply;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(recorded);
      reply = answer(recorded);
    }
    if (reply.stall) {
      // Reads until the client hangs up, which ends this connection with an error.
      http::request<http::string_body> never_answered;
      co_await http::async_read(socket, buffer, never_answered, asio::use_awaitable);
      co_return;
    }
    http::response<http::string_body> response{static_cast<http::status>(reply.status),
                                               request.version()};
    response.set(http::field::content_type, "application/json");
    for (const auto& [name, value] : reply.headers) response.set(name, value);
    response.body() = std::move(reply.body);
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
    co_await http::async_write(socket, response, asio::use_awaitable);
    if (!response.keep_alive()) co_return;
  }
}

FakeStripe::~FakeStripe() {
  ioc_.stop();
  thread_.join();
}

std::string FakeStripe::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void FakeStripe::queue(Reply reply) {
  std::lock_guard lock(mutex_);
  queued_.push_back(std::move(reply));
}

void FakeStripe::add_subscription(json::object subscription) {
  std::lock_guard lock(mutex_);
  const std::string id(subscription.at("id").as_string());
  subscriptions_[id] = std::move(subscription);
}

std::vector<RecordedRequest> FakeStripe::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

int FakeStripe::connections() const {
  std::lock_guard lock(mutex_);
  return connections_;
}

Reply FakeStripe::answer(const RecordedRequest& request) {
  const auto key = request.header("idempotency-key");
  if (const auto kept = kept_by_key_.find(key); !key.empty() && kept != kept_by_key_.end()) {
    Reply replayed = kept->second;
    replayed.headers.emplace_back("Idempotent-Replayed", "true");
    return replayed;
  }
  if (!queued_.empty()) {
    Reply next = std::move(queued_.front());
    queued_.pop_front();
    if (next.kept_for_key && !key.empty()) kept_by_key_[key] = next;
    return next;
  }
  const auto target = urls::parse_origin_form(request.target);
  if (!target) return {400, stripe_error("invalid_request_error", "", "bad target")};
  std::vector<std::string> segments(target->segments().begin(), target->segments().end());
  if (segments.size() == 3 && segments[0] == "v1" && segments[1] == "subscriptions")
    return subscription_reply(request, segments[2]);
  if (request.method == "POST" && target->path() == "/v1/customers") {
    // As Stripe keeps idempotency keys: a key used before gets the first answer again.
    const auto [known, made] = customers_by_key_.try_emplace(
        request.header("idempotency-key"), "cus_fake" + std::to_string(customers_by_key_.size()));
    return json_reply(
        200, json::object{{"id", known->second}, {"object", "customer"}, {"created", 1700000000}});
  }
  if (request.method == "POST" && target->path() == "/v1/checkout/sessions")
    return json_reply(200, json::object{{"id", "cs_fake"},
                                        {"object", "checkout.session"},
                                        {"url", "https://checkout.stripe.test/c/cs_fake"}});
  return {404, stripe_error("invalid_request_error", "", "Unrecognized request URL")};
}

Reply FakeStripe::subscription_reply(const RecordedRequest& request, const std::string& id) {
  const auto found = subscriptions_.find(id);
  if (found == subscriptions_.end()) return not_found("subscription", id);
  auto& subscription = found->second;
  if (request.method == "POST") {
    // Stripe's answer, with no code to tell it apart from any other refusal.
    if (subscription["status"] == "canceled")
      return {400, stripe_error("invalid_request_error", "",
                                "A canceled subscription can only update its "
                                "cancellation_details and metadata.")};
    for (const auto& param : urls::params_view(request.body)) {
      const std::string_view key = param.key;
      if (key == "cancel_at_period_end") {
        subscription["cancel_at_period_end"] = param.value == "true";
      } else if (key == "items[0][price]") {
        auto& item = subscription["items"].as_object()["data"].as_array()[0].as_object();
        item["price"] = json::object{{"id", param.value}};
      } else if (key.starts_with("metadata[") && key.ends_with("]")) {
        const auto name = key.substr(9, key.size() - 10);
        subscription["metadata"].as_object()[name] = param.value;
      }
    }
  }
  return json_reply(200, subscription);
}

}  // namespace billing::stripe_test
