// The local provider's pages and its admin clock. The pages answer HTML, their failures too (a
// browser shows them); the clock answers JSON like every other /stripe/ route.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/encoding_opts.hpp>
#include <boost/url/parse_query.hpp>

#include "http/errors.hpp"
#include "http/json_body.hpp"
#include "kit/api_error.hpp"
#include "kit/time.hpp"
#include "payments/local/local_provider.hpp"
#include "payments/local/pages.hpp"

namespace billing {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using local::Link;
using std::chrono::days;
using std::chrono::seconds;

constexpr seconds kMaxAdvance = days(400);
struct AdvanceUnit {
  std::string_view field;
  seconds length;
};
constexpr AdvanceUnit kAdvanceUnits[] = {{"days", days(1)}, {"seconds", seconds(1)}};

// The session's id in the address is the page's only credential, as on Stripe's hosted pages:
// kept out of caches, out of the Referer its links send, and out of other sites' frames.
Response html(int status, std::string body) {
  Response page{.status = status, .content_type = ContentType::html, .body = std::move(body)};
  page.with_header("Cache-Control", "no-store")
      .with_header("Referrer-Policy", "no-referrer")
      .with_header("Content-Security-Policy", "frame-ancestors 'none'")
      .with_header("X-Frame-Options", "DENY");
  return page;
}

// An application/x-www-form-urlencoded body, as browsers send forms: decoded by Boost.URL, with
// '+' as a space.
class FormFields {
 public:
  explicit FormFields(std::string_view body) {
    // Boost.URL 1.81 reads past the end of a view that is not NUL-terminated (http/request.cpp).
    const std::string terminated(body);
    const auto params = boost::urls::parse_query(terminated);
    if (!params) throw ApiError(400, "The form could not be read");
    const boost::urls::encoding_opts plus_is_space(true);
    for (auto param : *params)
      fields_.emplace_back(param.key.decode(plus_is_space), param.value.decode(plus_is_space));
  }
  // The field's value; "" when the form has none.
  std::string_view operator[](std::string_view name) const {
    for (const auto& [key, value] : fields_)
      if (key == name) return value;
    return {};
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

local::Card entered_card(const FormFields& form, const LocalProvider& provider) {
  return local::read_card(form["number"], form["exp"], provider.now());
}

// The page a failure links back to (escaped there). Not checked as an id: a malformed one is
// the handler's to refuse, inside as_page, so that the refusal is a page too.
std::string checkout_path(const Call& call) {
  return "/local-pay/checkout/" + call.request.path_param("session_id");
}
std::string portal_path(const Call& call) {
  return "/local-pay/portal/" + call.request.path_param("portal_id");
}

// A failure as a page with the error's status and text; when the customer can try another card
// (400, 402) or the form again (409: the checkout or invoice moved on meanwhile), with a link
// back to the form.
asio::awaitable<Response> as_page(asio::awaitable<Response> page, std::string form_path) {
  std::optional<Response> failure;
  try {
    co_return co_await std::move(page);
  } catch (const ApiError& error) {
    const bool retry = error.status == 400 || error.status == 402 || error.status == 409;
    const auto title = error.detail.is_string() ? std::string_view(error.detail.get_string())
                                                : std::string_view("The request failed");
    failure = html(error.status,
                   local::message_page(title, "", retry ? Link{form_path, "Try again"} : Link{}));
  }
  co_return std::move(*failure);
}

asio::awaitable<Response> get_checkout(LocalProvider& provider, const Call& call) {
  const auto checkout = provider.payable_checkout(path_id(call.request, "session_id"));
  co_return html(200, local::checkout_page(checkout.session, checkout.due));
}

asio::awaitable<Response> post_checkout(LocalProvider& provider, const Call& call) {
  auto card = entered_card(FormFields(call.request.body), provider);
  const auto session =
      co_await provider.pay_checkout(path_id(call.request, "session_id"), std::move(card));
  co_return html(200, session.state == local::SessionState::complete
                          ? local::checkout_paid_page(session)
                          : local::authentication_page(session));
}

asio::awaitable<Response> post_confirm(LocalProvider& provider, const Call& call) {
  const auto session = co_await provider.confirm_checkout(path_id(call.request, "session_id"));
  co_return html(200, local::checkout_paid_page(session));
}

asio::awaitable<Response> get_portal(LocalProvider& provider, const Call& call) {
  co_return html(200, local::portal_page(provider.portal(path_id(call.request, "portal_id"))));
}

asio::awaitable<Response> post_portal_pay(LocalProvider& provider, const Call& call) {
  const FormFields form(call.request.body);
  const std::string invoice(form["invoice"]);
  const std::string portal_id = path_id(call.request, "portal_id");
  const auto to_confirm =
      co_await provider.pay_invoice(portal_id, invoice, entered_card(form, provider));
  if (to_confirm) co_return html(200, local::authentication_page(portal_id, *to_confirm));
  co_return html(200, local::message_page("Payment succeeded", "Invoice " + invoice + " is paid.",
                                          {portal_path(call), "Back to billing"}));
}

asio::awaitable<Response> post_portal_confirm(LocalProvider& provider, const Call& call) {
  const FormFields form(call.request.body);
  co_await provider.confirm_invoice_payment(path_id(call.request, "portal_id"),
                                            std::string(form["invoice"]));
  co_return html(200, local::message_page("Payment succeeded", "The invoice is paid.",
                                          {portal_path(call), "Back to billing"}));
}

asio::awaitable<Response> post_portal_card(LocalProvider& provider, const Call& call) {
  const auto card = entered_card(FormFields(call.request.body), provider);
  co_await provider.update_card(path_id(call.request, "portal_id"), card);
  co_return html(200, local::message_page(
                          "Card saved", "Renewals will charge the card ending " + card.last4 + ".",
                          {portal_path(call), "Back to billing"}));
}

asio::awaitable<Response> post_portal_cancel(LocalProvider& provider, const Call& call) {
  const FormFields form(call.request.body);
  const auto subscription = co_await provider.cancel_from_portal(path_id(call.request, "portal_id"),
                                                                 std::string(form["subscription"]));
  const auto end = iso8601(TimePoint(seconds(subscription.current_period_end))).substr(0, 10);
  co_return html(200, local::message_page("Subscription cancelled",
                                          "It stays active until " + end + ", then ends.",
                                          {portal_path(call), "Back to billing"}));
}

ApiError advance_error(json::array loc, std::string_view type, std::string msg) {
  return ApiError(422, json::array{json::object{
                           {"type", type}, {"loc", std::move(loc)}, {"msg", std::move(msg)}}});
}

// {"days": N} and/or {"seconds": N}: together more than nothing and at most 400 days. JsonBody
// answers a body that is no JSON object; it has no integer fields, so they are read here, and
// their errors take its shape.
seconds requested_advance(std::string_view raw) {
  JsonBody(raw).finish();
  const json::object body = json::parse(raw).as_object();
  seconds total{0};
  bool given = false;
  for (const auto& [field, unit] : kAdvanceUnits) {
    const json::value* value = body.if_contains(field);
    if (!value) continue;
    given = true;
    if (!value->is_int64())
      throw advance_error({"body", field}, "int_type", "Input should be a valid integer");
    const std::int64_t count = value->get_int64();
    if (count < 0)
      throw advance_error({"body", field}, "greater_than_equal",
                          "Input should be greater than or equal to 0");
    if (count > kMaxAdvance / unit)
      throw advance_error(
          {"body", field}, "less_than_equal",
          "Input should be less than or equal to " + std::to_string(kMaxAdvance / unit));
    total += count * unit;
  }
  if (!given) throw advance_error({"body", "days"}, "missing", "Field required: days or seconds");
  if (total <= seconds::zero() || total > kMaxAdvance)
    throw advance_error({"body"}, "value_error",
                        "The clock moves by more than 0 seconds and at most 400 days");
  return total;
}

asio::awaitable<Response> post_clock_advance(LocalProvider& provider, const Call& call) {
  const auto report = co_await provider.advance(requested_advance(call.request.body));
  co_return json_response(json::object{{"now", iso8601(report.now)},
                                       {"renewed", report.renewed},
                                       {"failed", report.failed},
                                       {"cancelled", report.cancelled},
                                       {"expired_checkouts", report.expired_checkouts},
                                       {"retried", report.retried},
                                       {"recovered", report.recovered}});
}

}  // namespace

void add_local_payment_routes(Router& router, LocalProvider& provider) {
  router.add({Method::get, "/local-pay/checkout/{session_id}", Policy::open(),
              [&provider](const Call& call) {
                return as_page(get_checkout(provider, call), checkout_path(call));
              }});
  router.add({Method::post, "/local-pay/checkout/{session_id}", Policy::open(),
              [&provider](const Call& call) {
                return as_page(post_checkout(provider, call), checkout_path(call));
              }});
  router.add({Method::post, "/local-pay/checkout/{session_id}/confirm", Policy::open(),
              [&provider](const Call& call) {
                return as_page(post_confirm(provider, call), checkout_path(call));
              }});
  router.add(
      {Method::get, "/local-pay/portal/{portal_id}", Policy::open(), [&provider](const Call& call) {
         return as_page(get_portal(provider, call), portal_path(call));
       }});
  router.add({Method::post, "/local-pay/portal/{portal_id}/pay", Policy::open(),
              [&provider](const Call& call) {
                return as_page(post_portal_pay(provider, call), portal_path(call));
              }});
  router.add({Method::post, "/local-pay/portal/{portal_id}/confirm", Policy::open(),
              [&provider](const Call& call) {
                return as_page(post_portal_confirm(provider, call), portal_path(call));
              }});
  router.add({Method::post, "/local-pay/portal/{portal_id}/card", Policy::open(),
              [&provider](const Call& call) {
                return as_page(post_portal_card(provider, call), portal_path(call));
              }});
  router.add({Method::post, "/local-pay/portal/{portal_id}/cancel", Policy::open(),
              [&provider](const Call& call) {
                return as_page(post_portal_cancel(provider, call), portal_path(call));
              }});
  router.add({Method::post, "/stripe/local/clock/advance", Policy::write({Role::admin}),
              [&provider](const Call& call) { return post_clock_advance(provider, call); }});
}

}  // namespace billing
