#pragma once
// A stateful stand-in for Stripe's API in the test process, on a free loopback port: it records
// every request, answers from replies the test queued, and otherwise keeps subscriptions the way
// Stripe would (GET and POST /v1/subscriptions/{id}, 404 resource_missing for unknown ids) and
// makes customers (POST /v1/customers, one per idempotency key).
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/object.hpp>

namespace billing::stripe_test {

struct RecordedRequest {
  std::string method;
  std::string target;  // as sent: path and query, percent-encoded
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case

  std::string header(const std::string& lower_case_name) const;  // "" if absent
};

struct Reply {
  int status = 200;
  std::string body;
  // Never answer: the connection stays open, silent, until the client gives up.
  bool stall = false;
  // Kept, as Stripe keeps a result once its work began, for the request's idempotency key: later
  // requests with that key get it again, with Idempotent-Replayed: true.
  bool kept_for_key = false;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Stripe's error object: {"error":{"type":..,"code":..,"message":..}} (and decline_code, param
// when given).
std::string stripe_error(std::string_view type, std::string_view code, std::string_view message,
                         std::string_view decline_code = {}, std::string_view param = {});

// An invoice as Stripe answers it with `charge.balance_transaction` expanded; `charge` is that
// charge as JSON, or "null". Its payment intent is "pi_for_" and the invoice's id.
std::string invoice_paid_by(std::string_view invoice_id, std::string_view charge);

// A subscription object as Stripe sends it, with one item.
boost::json::object subscription_object(std::string_view id, std::string_view item_id,
                                        std::string_view price_id);

class FakeStripe {
 public:
  FakeStripe();  // listening when it returns
  ~FakeStripe();
  FakeStripe(const FakeStripe&) = delete;
  FakeStripe& operator=(const FakeStripe&) = delete;

  std::string base_url() const;  // http://127.0.0.1:PORT

  // The next requests get these replies, one each, in order; then the stateful answers resume.
  void queue(Reply reply);
  void add_subscription(boost::json::object subscription);  // stored under its "id"
  std::vector<RecordedRequest> requests() const;
  int connections() const;  // accepted so far

 private:
  // Member functions rather than lambdas: a coroutine lambda's captures die with the lambda.
  boost::asio::awaitable<void> accept(boost::asio::ip::tcp::acceptor listening);
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
  Reply answer(const RecordedRequest& request);  // called with mutex_ held
  Reply subscription_reply(const RecordedRequest& request, const std::string& id);

  boost::asio::io_context ioc_;
  unsigned short port_ = 0;
  mutable std::mutex mutex_;
  std::deque<Reply> queued_;
  std::map<std::string, boost::json::object> subscriptions_;
  std::map<std::string, std::string> customers_by_key_;  // idempotency key -> customer id
  std::map<std::string, Reply> kept_by_key_;             // Reply::kept_for_key
  std::vector<RecordedRequest> requests_;
  int connections_ = 0;
  std::thread thread_;
};

}  // namespace billing::stripe_test
