#include "payments/local/pages.hpp"

#include <chrono>
#include <cstdint>

#include <fmt/format.h>

#include "kit/time.hpp"

namespace billing::local {
namespace {

constexpr std::string_view kStyle =
    "body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;"
    "color:#1a1a1a}.note{background:#fff4d6;padding:.5rem .75rem;border-radius:4px}"
    "label{display:block;margin:.5rem 0}input{margin-left:.5rem}table{border-collapse:collapse}"
    "td,th{padding:.25rem .75rem;text-align:left;border-bottom:1px solid #ddd}"
    "form.inline{display:inline}";

std::string page(std::string_view title, std::string_view body) {
  return fmt::format(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>{0}</title><style>{1}</style></head><body>"
      "<p class=\"note\">Local test payments: no real card is charged.</p>"
      "<h1>{0}</h1>\n{2}</body></html>\n",
      html_escape(title), kStyle, body);
}

std::string link_html(const Link& link) {
  if (link.href.empty()) return {};
  return fmt::format("<p><a href=\"{}\">{}</a></p>\n", html_escape(link.href),
                     html_escape(link.text));
}

std::string date(std::int64_t unix_seconds) {
  return iso8601(TimePoint(std::chrono::seconds(unix_seconds))).substr(0, 10);
}

std::string_view metadata_value(const Metadata& metadata, std::string_view key) {
  for (const auto& [k, v] : metadata)
    if (k == key) return v;
  return {};
}

std::string_view per(BillingCycle cycle) {
  return cycle == BillingCycle::monthly ? "month" : "year";
}

// Card number, expiry and CVC fields: the CVC is asked for as a real form would, never kept.
constexpr std::string_view kCardFields =
    "<label>Card number <input name=\"number\" inputmode=\"numeric\" autocomplete=\"cc-number\" "
    "required></label>\n"
    "<label>Expiry <input name=\"exp\" placeholder=\"MM/YY\" autocomplete=\"cc-exp\"></label>\n"
    "<label>CVC <input name=\"cvc\" inputmode=\"numeric\" autocomplete=\"cc-csc\" "
    "maxlength=\"4\"></label>\n";

std::string test_cards() {
  std::string out = "<h2>Test cards</h2>\n<p>Any future expiry (or none) and any CVC.</p>\n<ul>\n";
  for (const auto& card : kTestCards)
    out += fmt::format("<li><code>{} {} {} {}</code> {}</li>\n", card.number.substr(0, 4),
                       card.number.substr(4, 4), card.number.substr(8, 4),
                       card.number.substr(12, 4), html_escape(card.behaviour));
  return out + "</ul>\n";
}

std::string what_is_bought(const CheckoutSession& session) {
  const CheckoutRequest& request = session.request;
  return fmt::format("<p>{}, billed {}, for {} <strong>{}</strong>.</p>\n",
                     html_escape(session.plan_name), name_of(request.cycle),
                     name_of(request.entity.kind), html_escape(request.entity.id));
}

// The customer's balance, which their next invoice takes: a credit, or what a charge too small
// to make left owed.
std::string balance_html(Cents balance) {
  if (balance < 0)
    return fmt::format("<p>Credit on your account: {}, taken off your next invoices.</p>\n",
                       dollars(-balance));
  if (balance > 0)
    return fmt::format("<p>Owed on your account: {}, added to your next invoice.</p>\n",
                       dollars(balance));
  return "";
}

std::string checkout_path(const CheckoutSession& session) {
  return "/local-pay/checkout/" + html_escape(session.id);
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string dollars(Cents cents) {
  // A credit is written -$29.00, as Stripe writes it. Unsigned, so that every amount's
  // magnitude fits (INT64_MIN's too).
  const auto magnitude = cents < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(cents)
                                   : static_cast<std::uint64_t>(cents);
  std::string whole = std::to_string(magnitude / 100);
  for (auto at = static_cast<std::ptrdiff_t>(whole.size()) - 3; at > 0; at -= 3)
    whole.insert(static_cast<std::size_t>(at), 1, ',');
  return fmt::format("{}${}.{:02}", cents < 0 ? "-" : "", whole, magnitude % 100);
}

std::string checkout_page(const CheckoutSession& session, Cents due) {
  std::string body = what_is_bought(session);
  body += fmt::format("<p><strong>{} per {}</strong></p>\n", dollars(session.amount),
                      per(session.request.cycle));
  if (due != session.amount)
    body +=
        fmt::format("<p>Due now: {}, the balance of your account taken in.</p>\n", dollars(due));
  body += fmt::format(
      "<form method=\"post\" action=\"{}\">\n{}<button type=\"submit\">Pay {}"
      "</button>\n</form>\n",
      checkout_path(session), kCardFields, dollars(due));
  body += link_html({session.request.cancel_url, "Cancel and go back"});
  body += test_cards();
  return page("Checkout", body);
}

// The bank's question and the button that answers it, posting to `path`/confirm (with `fields`,
// hidden inputs).
std::string confirm_form(Cents amount, std::string_view last4, std::string_view path,
                         std::string_view fields = {}) {
  return fmt::format(
      "<p>Your bank asks you to confirm this payment of {} with the card ending {}.</p>\n"
      "<form method=\"post\" action=\"{}/confirm\">{}<button type=\"submit\">Confirm payment"
      "</button></form>\n",
      dollars(amount), html_escape(last4), path, fields);
}

std::string authentication_page(const CheckoutSession& session) {
  const std::string path = checkout_path(session);
  std::string body = what_is_bought(session);
  body += confirm_form(session.due_to_confirm.value_or(session.amount),
                       session.card_to_confirm->last4, path);
  body += link_html({path, "Use another card"});
  return page("Authentication required", body);
}

std::string authentication_page(std::string_view portal_id, const PaymentToConfirm& payment) {
  const std::string path = "/local-pay/portal/" + html_escape(portal_id);
  const std::string invoice = html_escape(payment.invoice_id);
  std::string body = "<p>Invoice " + invoice + "</p>\n";
  body += confirm_form(payment.amount, payment.card.last4, path,
                       "<input type=\"hidden\" name=\"invoice\" value=\"" + invoice + "\">");
  body += link_html({path, "Back to billing"});
  return page("Authentication required", body);
}

std::string checkout_paid_page(const CheckoutSession& session) {
  std::string body = what_is_bought(session);
  const Cents paid = session.amount_paid.value_or(session.amount);
  if (paid == session.amount)
    body += fmt::format("<p>{} paid. The subscription is active.</p>\n", dollars(paid));
  else  // the account's balance went into the first invoice
    body += fmt::format(
        "<p>{} paid: {} {} The subscription is active.</p>\n", dollars(paid),
        dollars(session.amount),
        paid < session.amount ? "less the credit on your account." : "and what your account owed.");
  body += link_html({session.request.success_url, "Continue"});
  return page("Payment succeeded", body);
}

std::string portal_page(const PortalView& portal) {
  const std::string path = "/local-pay/portal/" + html_escape(portal.id);
  std::string body =
      "<h2>Subscriptions</h2>\n<table>\n<tr><th>Subscription</th><th>Plan</th>"
      "<th>Status</th><th>Current period</th><th></th></tr>\n";
  for (const Subscription& s : portal.subscriptions) {
    const bool cancellable = s.status != "canceled" && !s.cancel_at_period_end;
    body += fmt::format(
        "<tr><td>{}</td><td>{} {}</td><td>{}{}</td><td>{} to {}</td><td>", html_escape(s.id),
        html_escape(metadata_value(s.metadata, "plan")),
        html_escape(metadata_value(s.metadata, "cycle")), html_escape(s.status),
        s.cancel_at_period_end && s.status != "canceled" ? ", ends at the period's end" : "",
        date(s.current_period_start), date(s.current_period_end));
    if (cancellable)
      body += fmt::format(
          "<form class=\"inline\" method=\"post\" action=\"{}/cancel\">"
          "<input type=\"hidden\" name=\"subscription\" value=\"{}\">"
          "<button type=\"submit\">Cancel at the period's end</button></form>",
          path, html_escape(s.id));
    body += "</td></tr>\n";
  }
  body +=
      "</table>\n<h2>Invoices</h2>\n<table>\n<tr><th>Invoice</th><th>Total</th>"
      "<th>Amount due</th><th>Status</th><th>Date</th><th></th></tr>\n";
  for (const Invoice& i : portal.invoices) {
    body += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>",
                        html_escape(i.id), dollars(i.total.value_or(i.amount_due)),
                        dollars(i.amount_due), html_escape(i.status), date(i.created));
    if (i.status == "open")
      body += fmt::format(
          "<form class=\"inline\" method=\"post\" action=\"{}/pay\">"
          "<input type=\"hidden\" name=\"invoice\" value=\"{}\">"
          "<input name=\"number\" placeholder=\"Card number\" required> "
          "<input name=\"exp\" placeholder=\"MM/YY\"> <button type=\"submit\">Pay</button></form>",
          path, html_escape(i.id));
    body += "</td></tr>\n";
  }
  body += fmt::format(
      "</table>\n{}<h2>Card on file</h2>\n<p>Visa ending {}, expires {:02}/{}. Renewals, and the "
      "retries of an unpaid invoice, charge it; a card that pays an invoice here replaces it.</p>\n"
      "<form method=\"post\" action=\"{}/card\">\n{}<button type=\"submit\">Update card</button>\n"
      "</form>\n",
      balance_html(portal.balance), html_escape(portal.card.last4), portal.card.exp_month,
      portal.card.exp_year, path, kCardFields);
  body += link_html({portal.return_url, "Return to the service"});
  body += test_cards();
  return page("Billing", body);
}

std::string message_page(std::string_view title, std::string_view message, Link link) {
  std::string body;
  if (!message.empty()) body = "<p>" + html_escape(message) + "</p>\n";
  body += link_html(link);
  return page(title, body);
}

}  // namespace billing::local
