#include "payments/local/ledger.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <type_traits>

#include "kit/crypto.hpp"
#include "kit/time.hpp"
#include "payments/local/objects.hpp"
#include "payments/provider_errors.hpp"

namespace billing::local {
namespace {

namespace json = boost::json;

constexpr std::int64_t kDay = 24 * 60 * 60;
constexpr std::int64_t kWeek = 7 * kDay;
// What an invoice of `total` charges: nothing for a credit, nor below Stripe's smallest charge
// in US dollars (50 cents); invoice_for carries such a total to the next invoice.
Cents charged_for(Cents total) {
  constexpr Cents kSmallestCharge = 50;
  return total < kSmallestCharge ? 0 : total;
}

std::int64_t unix_seconds(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

TimePoint time_at(std::int64_t unix_seconds) {
  return TimePoint(std::chrono::seconds(unix_seconds));
}

// The first end of a period after `t`: periods end whole calendar months (or years) after the
// subscription's anchor, as Stripe's do, so one begun on January 31 renews on February 29 (or
// 28), then on March 31.
std::int64_t period_end_after(std::int64_t anchor, BillingCycle cycle, std::int64_t t) {
  const int months = cycle == BillingCycle::monthly ? 1 : 12;
  // No month is longer than 31 days: a count of periods not past `t`, then counted on to `t`.
  std::int64_t periods = std::max<std::int64_t>((t - anchor) / (31 * kDay * months), 0) + 1;
  const auto end = [&] {
    return unix_seconds(add_months(time_at(anchor), static_cast<int>(periods * months)));
  };
  while (end() <= t) ++periods;
  return end();
}

std::string new_id(std::string_view prefix) {
  return std::string(prefix) + random_hex(12);
}

ApiError no_such_checkout_session(std::string_view id) {
  return ApiError(404, std::string("No such checkout session: ").append(id));
}
ApiError no_such_portal_session(std::string_view id) {
  return ApiError(404, std::string("No such portal session: ").append(id));
}

// The session `id` while it can be paid at `now`, from a const or a mutable table.
template <class Sessions>
auto& payable(Sessions& sessions, std::string_view id, std::int64_t now) {
  auto& session = sessions.at(id, no_such_checkout_session);
  if (session.state == SessionState::complete)
    throw ApiError(409, "This checkout is already complete");
  if (session.state == SessionState::expired || now >= expires_at(session))
    throw ApiError(410, "This checkout has expired: start a new one");
  return session;
}

// The portal `id` while it can be used at `now`, from a const or a mutable table.
template <class Portals>
auto& usable(Portals& portals, std::string_view id, std::int64_t now) {
  auto& portal = portals.at(id, no_such_portal_session);
  if (now >= expires_at(portal))
    throw ApiError(410, "This portal link has expired: open a new one from the service");
  return portal;
}

Metadata customer_metadata(const EntityRef& entity) {
  return {{"role", std::string(name_of(entity.kind))}, {"role_entity_id", entity.id}};
}

void set_metadata(Metadata& metadata, std::string_view key, std::string_view value) {
  const auto entry = std::find_if(metadata.begin(), metadata.end(),
                                  [&](const auto& pair) { return pair.first == key; });
  if (entry != metadata.end())
    entry->second = value;
  else
    metadata.emplace_back(key, value);
}

// Stripe's list order (newest first), cut at `request`: up to `limit` of the rows `keep` admits,
// after the one starting_after names (which must be one of them, else missing(id)).
template <class Row, class Keep, class Convert>
auto newest_first(const Table<Row>& table, const PageRequest& request,
                  ApiError (*missing)(std::string_view), Keep keep, Convert convert) {
  if (request.limit < 1 || request.limit > 100) throw provider_errors::rejected();
  const auto& rows = table.rows();
  auto row = rows.rbegin();
  if (request.starting_after) {
    row = std::find_if(rows.rbegin(), rows.rend(), [&](const Row& r) {
      return id_of(r) == *request.starting_after && keep(r);
    });
    if (row == rows.rend()) throw missing(*request.starting_after);
    ++row;
  }
  Page<std::decay_t<decltype(convert(*row))>> page;
  for (; row != rows.rend(); ++row) {
    if (!keep(*row)) continue;
    if (page.data.size() == static_cast<std::size_t>(request.limit)) {
      page.has_more = true;
      break;
    }
    page.data.push_back(convert(*row));
  }
  return page;
}

const auto kEvery = [](const auto&) { return true; };

// Stripe's name for why an invoice was made.
std::string_view billing_reason(InvoicePurpose purpose) {
  switch (purpose) {
    case InvoicePurpose::checkout:
      return "subscription_create";
    case InvoicePurpose::renewal:
      return "subscription_cycle";
    case InvoicePurpose::interval_change:
    case InvoicePurpose::price_change:
      break;
  }
  return kProrationsOnly;
}

// Records an attempt to charge `card` for `invoice`; a paid one settles it.
void record_charge(InvoiceRecord& invoice, const Card& card, bool paid, std::int64_t now) {
  // An invoice that credits covered is paid as it is, with no charge (as Stripe's is).
  if (invoice.invoice.amount_due > 0) {
    invoice.charge = Charge{
        .id = new_id("ch_"), .amount = invoice.invoice.amount_due, .paid = paid, .card = card};
    ++invoice.attempt_count;
  }
  invoice.next_payment_attempt.reset();
  if (!paid) return;
  invoice.invoice.status = "paid";
  invoice.invoice.amount_paid = invoice.invoice.amount_due;
  invoice.paid_at = now;
}

// Stripe's automatic retries of an unpaid subscription invoice, here 3, 5 and 7 days after it was
// made; after the last, the subscription stays past_due until the invoice is paid in the portal.
constexpr std::array<std::int64_t, 3> kRetryDays{3, 5, 7};

std::optional<std::int64_t> next_payment_attempt(const InvoiceRecord& invoice) {
  if (invoice.attempt_count < 1) return std::nullopt;
  const auto retries = static_cast<std::size_t>(invoice.attempt_count - 1);  // after the first
  if (retries >= kRetryDays.size()) return std::nullopt;
  return invoice.invoice.created + kRetryDays[retries] * 24 * 60 * 60;
}

}  // namespace

Ledger::Ledger(const Catalog& catalog, PriceMap prices)
    : catalog_(&catalog), prices_(std::move(prices)) {}

PricedPlan Ledger::plan_of(std::string_view price_id) const {
  const auto plan = prices_.plan_for(price_id);
  if (!plan) throw provider_errors::rejected();
  return *plan;
}

const PlanOffer& Ledger::offer_for(const PricedPlan& plan) const {
  const PlanOffer* offer = catalog_->find(plan.role, plan.plan_type);
  if (!offer) throw provider_errors::rejected();
  return *offer;
}

std::optional<Cents> Ledger::price_amount(std::string_view price_id) const {
  const auto plan = prices_.plan_for(price_id);
  const PlanOffer* offer = plan ? catalog_->find(plan->role, plan->plan_type) : nullptr;
  if (!offer) return std::nullopt;
  return plan->cycle == BillingCycle::monthly ? offer->price_monthly_cents
                                              : offer->price_yearly_cents;
}

void Ledger::require_offered_prices() const {
  for (const Subscription& subscription : subscriptions_.rows())
    if (subscription.status != "canceled" && !price_amount(subscription.price_id))
      throw std::runtime_error("subscription " + subscription.id + " is priced " +
                               subscription.price_id +
                               ", of a plan the catalog (PLANS_CONFIG) does not offer: put the "
                               "plan back in the catalog to renew it");
}

Cents Ledger::amount_of(std::string_view price_id) const {
  if (const auto amount = price_amount(price_id)) return *amount;
  throw provider_errors::rejected();
}

const CheckoutSession& Ledger::open_checkout(CheckoutRequest request, TimePoint now) {
  const PricedPlan plan = plan_of(request.price_id);
  if (plan != PricedPlan{request.entity.kind, request.plan_type, request.cycle})
    throw provider_errors::rejected();
  const Cents amount = amount_of(request.price_id);
  const std::int64_t at = unix_seconds(now);
  // Each would be saved and compared forever: those never paid go a week after they expired, as
  // portal links do; and past a few open at once for an entity (two tabs are fine), the same
  // checkout asked for again is the newest such one, so that no entity can pile them up.
  constexpr std::size_t kOpenPerEntity = 5;
  sessions_.erase_if([at](const CheckoutSession& s) {
    return s.state == SessionState::expired && at >= expires_at(s) + kWeek;
  });
  std::size_t open = 0;
  const CheckoutSession* same = nullptr;
  for (auto it = sessions_.rows().rbegin(); it != sessions_.rows().rend(); ++it)
    if (it->state == SessionState::open && at < expires_at(*it) &&
        it->request.entity == request.entity) {
      ++open;
      if (!same && it->request == request) same = &*it;
    }
  if (same && open >= kOpenPerEntity) return *same;
  return sessions_.add(CheckoutSession{.id = new_id("cs_"),
                                       .request = std::move(request),
                                       .plan_name = offer_for(plan).name,
                                       .amount = amount,
                                       .created = at});
}

const CheckoutSession& Ledger::payable_session(std::string_view id, TimePoint now) const {
  return payable(sessions_, id, unix_seconds(now));
}

WithEvents<CheckoutSession> Ledger::pay_checkout(std::string_view id, const Card& card,
                                                 TimePoint now) {
  CheckoutSession& session = payable(sessions_, id, unix_seconds(now));
  session.state = SessionState::open;  // a new card replaces one awaiting authentication
  session.card_to_confirm.reset();
  session.due_to_confirm.reset();
  const ChargeResult result = charge_result(card, Charging::at_checkout, now);
  if (result == ChargeResult::needs_authentication) {
    session.state = SessionState::awaiting_authentication;
    session.card_to_confirm = card;
    session.due_to_confirm = due_at_checkout(session);
    return {session, {}};
  }
  // Refused, the card awaiting authentication is replaced all the same.
  if (auto refusal = refusal_of(result)) return {session, {}, std::move(refusal)};
  return complete_checkout(session, card, unix_seconds(now));
}

WithEvents<CheckoutSession> Ledger::confirm_checkout(std::string_view id, TimePoint now) {
  CheckoutSession& session = payable(sessions_, id, unix_seconds(now));
  if (session.state != SessionState::awaiting_authentication)
    throw ApiError(409, "This checkout awaits no authentication");
  // The bank was asked about that amount: another payment may have taken the account's credit
  // since (a checkout in another tab), and a different amount needs its own confirmation.
  if (session.due_to_confirm && *session.due_to_confirm != due_at_checkout(session))
    throw ApiError(409, "The amount due has changed since you confirmed it: enter your card again");
  const Card card = *session.card_to_confirm;
  return complete_checkout(session, card, unix_seconds(now));
}

WithEvents<CheckoutSession> Ledger::complete_checkout(CheckoutSession& session, const Card& card,
                                                      std::int64_t now) {
  CheckoutRequest& request = session.request;
  const CustomerRecord& customer = checkout_customer(request, card, now);
  const Subscription& subscription = subscriptions_.add(Subscription{
      .id = new_id("sub_"),
      .status = "active",
      .customer = customer.customer.id,
      .item_id = new_id("si_"),
      .price_id = request.price_id,
      .current_period_start = now,
      .current_period_end = period_end_after(now, request.cycle, now),
      .billing_cycle_anchor = now,
      .metadata = checkout_metadata(request),
  });
  InvoiceRecord& invoice = invoice_for(subscription, InvoicePurpose::checkout, now);
  record_charge(invoice, card, true, now);
  session.state = SessionState::complete;
  session.card_to_confirm.reset();
  session.due_to_confirm.reset();
  request.customer_id = customer.customer.id;
  session.subscription_id = subscription.id;
  session.amount_paid = invoice.invoice.amount_paid;
  return {session,
          {make_event("checkout.session.completed",
                      checkout_session_object(session, invoice.invoice.id), now),
           make_event("customer.subscription.created", subscription_object(subscription), now),
           make_event("invoice.payment_succeeded", invoice_json(invoice), now)}};
}

// The request's customer, else the entity's (two checkouts paid from two tabs before the
// first's completion reached the plan), else a new one; the card entered becomes the card on file.
CustomerRecord& Ledger::checkout_customer(const CheckoutRequest& request, const Card& card,
                                          std::int64_t now) {
  if (const auto known = paying_customer(request)) {
    CustomerRecord& customer = *customers_.find(*known);
    customer.card = card;
    return customer;
  }
  const std::string id = request.customer_id ? *request.customer_id : new_id("cus_");
  // A given id this ledger does not know (the plans in the database name customers made under
  // another LOCAL_PAYMENTS_ACCOUNT, say) is taken over as a new customer.
  return customers_.add(CustomerRecord{
      .customer = {.id = id, .created = now, .metadata = customer_metadata(request.entity)},
      .card = card,
  });
}

// Customers are made only by checkout_customer, with exactly this metadata: the entity's newest.
std::optional<std::string> Ledger::paying_customer(const CheckoutRequest& request) const {
  if (request.customer_id) {
    if (customers_.find(*request.customer_id)) return request.customer_id;
    return std::nullopt;
  }
  const Metadata names = customer_metadata(request.entity);
  const auto& rows = customers_.rows();
  const auto found = std::find_if(rows.rbegin(), rows.rend(), [&](const CustomerRecord& r) {
    return r.customer.metadata == names;
  });
  if (found == rows.rend()) return std::nullopt;
  return found->customer.id;
}

bool Ledger::customers_balance(const InvoiceItem& item, std::string_view customer) const {
  const Subscription* of = subscriptions_.find(item.subscription);
  return !item.invoice && item.price_id.empty() && of && of->customer == customer;
}

Cents Ledger::due_at_checkout(const CheckoutSession& session) const {
  // The price as invoice_for takes it, now (the session's is as it was when it opened).
  Cents total = price_amount(session.request.price_id).value_or(session.amount);
  if (const auto customer = paying_customer(session.request))
    for (const InvoiceItem& item : invoice_items_.rows())
      if (customers_balance(item, *customer)) total += item.amount;
  return charged_for(total);
}

InvoiceRecord& Ledger::invoice_for(const Subscription& subscription, InvoicePurpose purpose,
                                   std::int64_t now) {
  std::string id = new_id("in_");
  const bool bills_period = purpose != InvoicePurpose::price_change;
  Cents total = bills_period ? amount_of(subscription.price_id) : 0;
  Cents starting_balance = 0;
  for (InvoiceItem& item : invoice_items_.rows()) {
    if (!invoiced_next(item, subscription)) continue;
    item.invoice = id;
    total += item.amount;
    if (item.price_id.empty()) starting_balance += item.amount;
  }
  // Credits beyond the invoice, and an amount below the smallest charge, go to the next one,
  // which Stripe keeps as the customer's balance: this invoice is paid with no charge.
  const Cents amount_due = charged_for(total);
  if (amount_due != total)
    invoice_items_.add(InvoiceItem{.id = new_id("ii_"),
                                   .subscription = subscription.id,
                                   .amount = total,
                                   .period_start = now,
                                   .period_end = now});
  return invoices_.add(InvoiceRecord{
      .invoice = {.id = std::move(id),
                  .customer = subscription.customer,
                  .subscription = subscription.id,
                  .amount_due = amount_due,
                  .total = total - starting_balance,
                  .starting_balance = starting_balance,
                  .ending_balance = total - amount_due,
                  .currency = "usd",
                  .status = "open",
                  .created = now},
      .billing_reason = std::string(billing_reason(purpose)),
      .starts_period = purpose == InvoicePurpose::interval_change,
      .price_id = subscription.price_id,
      .period_start = subscription.current_period_start,
      .period_end = subscription.current_period_end,
      .metadata = subscription.metadata,
      .payment_intent = new_id("pi_"),
  });
}

bool Ledger::invoiced_next(const InvoiceItem& item, const Subscription& subscription) const {
  // Its own items, and the customer's balance.
  return !item.invoice &&
         (item.subscription == subscription.id || customers_balance(item, subscription.customer));
}

Cents Ledger::rest_of_period(const Subscription& subscription, std::string_view price_id,
                             std::int64_t now) const {
  const std::int64_t period = subscription.current_period_end - subscription.current_period_start;
  const std::int64_t left =
      std::clamp<std::int64_t>(subscription.current_period_end - now, 0, period);
  // To the second, rounded half up.
  return period > 0 ? (amount_of(price_id) * left + period / 2) / period : 0;
}

void Ledger::prorate(const Subscription& subscription, std::string_view new_price_id,
                     std::int64_t now, Proration lines) {
  if (subscription.current_period_end <= now) return;
  const auto rest_of_period = [&](std::string_view price_id) {
    return this->rest_of_period(subscription, price_id, now);
  };
  // The charge first: an invoice of prorations alone then names the new price first.
  for (const auto& [price_id, sign] :
       {std::pair<std::string_view, Cents>{new_price_id, 1}, {subscription.price_id, -1}}) {
    if (sign > 0 && lines == Proration::credit) continue;
    invoice_items_.add(InvoiceItem{.id = new_id("ii_"),
                                   .subscription = subscription.id,
                                   .price_id = std::string(price_id),
                                   .amount = sign * rest_of_period(price_id),
                                   .period_start = now,
                                   .period_end = subscription.current_period_end});
  }
}

Ledger::Billed Ledger::billed(const InvoiceRecord& record) const {
  Billed out{.invoice = record.invoice};
  Cents items_total = 0;
  for (const InvoiceItem& item : invoice_items_.rows())
    if (item.invoice == record.invoice.id) {
      out.items.push_back(item);
      items_total += item.amount;
    }
  // The price as the map says now; if the map no longer knows it (a PRICE_* changed across a
  // restart), what the invoice charged less its items: an invoice paid must still be sent.
  if (record.billing_reason != kProrationsOnly || record.starts_period)
    out.period_amount =
        price_amount(record.price_id).value_or(record.invoice.amount_due - items_total);
  // Kept as the invoice was made (a voided one has let its items go); an invoice saved before
  // they were kept works them out from its items. The lines add up to the total; with the
  // customer's balance before it, that is what is due now, and what is not (a credit left, less
  // than the smallest charge) their balance after.
  if (record.invoice.total) return out;
  Cents total = out.period_amount.value_or(0);
  Cents starting_balance = 0;
  for (const InvoiceItem& item : out.items)
    (item.price_id.empty() ? starting_balance : total) += item.amount;
  out.invoice.total = total;
  out.invoice.starting_balance = starting_balance;
  out.invoice.ending_balance = total + starting_balance - record.invoice.amount_due;
  return out;
}

json::object Ledger::invoice_json(const InvoiceRecord& record) const {
  const Billed billed = this->billed(record);
  return invoice_object(record, billed.invoice, billed.period_amount, billed.items);
}

const PortalSession& Ledger::open_portal(std::string_view customer_id, std::string return_url,
                                         TimePoint now) {
  customers_.at(customer_id, provider_errors::no_such_customer);
  // Those expired a week ago go (each would be saved and compared forever); a link expired since
  // less still says so rather than "no such session".
  portals_.erase_if(
      [at = unix_seconds(now)](const PortalSession& p) { return at >= expires_at(p) + kWeek; });
  return portals_.add(PortalSession{.id = new_id("bps_"),
                                    .customer = std::string(customer_id),
                                    .return_url = std::move(return_url),
                                    .created = unix_seconds(now)});
}

PortalView Ledger::portal(std::string_view id, TimePoint now) const {
  const PortalSession& portal = usable(portals_, id, unix_seconds(now));
  PortalView view{.id = portal.id,
                  .return_url = portal.return_url,
                  .card = customers_.at(portal.customer, provider_errors::no_such_customer).card};
  for (auto s = subscriptions_.rows().rbegin(); s != subscriptions_.rows().rend(); ++s)
    if (s->customer == portal.customer) view.subscriptions.push_back(*s);
  for (auto i = invoices_.rows().rbegin(); i != invoices_.rows().rend(); ++i)
    if (i->invoice.customer == portal.customer) view.invoices.push_back(billed(*i).invoice);
  for (const InvoiceItem& item : invoice_items_.rows())
    if (customers_balance(item, portal.customer)) view.balance += item.amount;
  return view;
}

InvoiceRecord& Ledger::open_invoice(const PortalSession& portal, std::string_view invoice_id) {
  InvoiceRecord& invoice = invoices_.at(invoice_id, provider_errors::no_such_invoice);
  if (invoice.invoice.customer != portal.customer)
    throw provider_errors::no_such_invoice(invoice_id);
  if (invoice.invoice.status == "void")
    throw ApiError(409, "This invoice was voided: its subscription has ended");
  if (invoice.invoice.status != "open") throw ApiError(409, "This invoice is already paid");
  return invoice;
}

WithEvents<std::optional<PaymentToConfirm>> Ledger::pay_invoice(std::string_view portal_id,
                                                                std::string_view invoice_id,
                                                                const Card& card, TimePoint now) {
  PortalSession& portal = usable(portals_, portal_id, unix_seconds(now));
  InvoiceRecord& invoice = open_invoice(portal, invoice_id);
  portal.payment_to_confirm.reset();  // a new card replaces one awaiting authentication
  const ChargeResult result = charge_result(card, Charging::in_portal, now);
  if (result == ChargeResult::needs_authentication) {
    portal.payment_to_confirm =
        PaymentToConfirm{invoice.invoice.id, invoice.invoice.amount_due, card};
    return {portal.payment_to_confirm, {}};
  }
  // Refused, the payment awaiting authentication is replaced all the same.
  if (auto refusal = refusal_of(result)) return {std::nullopt, {}, std::move(refusal)};
  return {std::nullopt, settle_invoice(portal, invoice, card, now)};
}

Events Ledger::confirm_invoice_payment(std::string_view portal_id, std::string_view invoice_id,
                                       TimePoint now) {
  PortalSession& portal = usable(portals_, portal_id, unix_seconds(now));
  if (!portal.payment_to_confirm) throw ApiError(409, "This portal awaits no authentication");
  if (portal.payment_to_confirm->invoice_id != invoice_id)
    throw ApiError(409,
                   "This is not the payment awaiting confirmation: confirm the one asked last");
  const PaymentToConfirm payment = *portal.payment_to_confirm;
  InvoiceRecord& invoice = open_invoice(portal, payment.invoice_id);  // 409 if paid meanwhile
  portal.payment_to_confirm.reset();
  return settle_invoice(portal, invoice, payment.card, now);
}

Events Ledger::settle_invoice(const PortalSession& portal, InvoiceRecord& invoice, const Card& card,
                              TimePoint now) {
  const std::int64_t at = unix_seconds(now);
  record_charge(invoice, card, true, at);
  // The card that paid becomes the card on file: the portal's way to replace a failing one.
  customers_.at(portal.customer, provider_errors::no_such_customer).card = card;
  Events events{make_event("invoice.payment_succeeded", invoice_json(invoice), at)};
  if (invoice.invoice.subscription)
    if (Subscription* subscription = subscriptions_.find(*invoice.invoice.subscription))
      reactivate(*subscription, at, events);
  return events;
}

void Ledger::update_card(std::string_view portal_id, const Card& card, TimePoint now) {
  const PortalSession& portal = usable(portals_, portal_id, unix_seconds(now));
  // Saving a card checks it without charging it: only a card declined outright is refused.
  if (card.kind == TestCard::declined) throw provider_errors::card_declined();
  customers_.at(portal.customer, provider_errors::no_such_customer).card = card;
}

WithEvents<Subscription> Ledger::cancel_from_portal(std::string_view portal_id,
                                                    std::string_view subscription_id,
                                                    TimePoint now) {
  const PortalSession& portal = usable(portals_, portal_id, unix_seconds(now));
  if (subscription(subscription_id).customer != portal.customer)
    throw provider_errors::no_such_subscription(subscription_id);
  return cancel_at_period_end(subscription_id, now);
}

const Subscription& Ledger::subscription(std::string_view id) const {
  return subscriptions_.at(id, provider_errors::no_such_subscription);
}

WithEvents<Subscription> Ledger::cancel_at_period_end(std::string_view id, TimePoint now) {
  Subscription& subscription = subscriptions_.at(id, provider_errors::no_such_subscription);
  if (subscription.status == "canceled") throw provider_errors::subscription_canceled();
  if (subscription.cancel_at_period_end) return {subscription, {}};
  subscription.cancel_at_period_end = true;
  return {subscription,
          {make_event("customer.subscription.updated", subscription_object(subscription),
                      unix_seconds(now), {{"cancel_at_period_end", false}})}};
}

WithEvents<Subscription> Ledger::change_price(std::string_view id, std::string_view price_id,
                                              PlanType plan_type, BillingCycle cycle,
                                              TimePoint now) {
  Subscription& subscription = subscriptions_.at(id, provider_errors::no_such_subscription);
  if (subscription.status == "canceled") throw provider_errors::rejected();
  plan_of(price_id);                                                 // a price the map knows
  if (subscription.price_id == price_id) return {subscription, {}};  // as Stripe's does
  const std::int64_t at = unix_seconds(now);
  const BillingCycle new_cycle = plan_of(price_id).cycle;
  const bool new_interval = new_cycle != plan_of(subscription.price_id).cycle;
  // Charged at once (Stripe's proration_behavior always_invoice), so that no plan is had before
  // it is paid for: the rest of the period at the new price, or with a change of interval a new
  // period, less the unused rest at the old one. A card that would fail refuses the change, which
  // then changes nothing (Stripe's payment_behavior error_if_incomplete); nor does a price change
  // while an invoice is unpaid. A cheaper price leaves a credit for the next invoice.
  if (subscription.status != "active") throw provider_errors::subscription_unpaid();
  const bool in_period = subscription.current_period_end > at;
  Cents due = (new_interval ? amount_of(price_id) : rest_of_period(subscription, price_id, at)) -
              rest_of_period(subscription, subscription.price_id, at);
  for (const InvoiceItem& item : invoice_items_.rows())
    if (invoiced_next(item, subscription)) due += item.amount;
  const Card& card = customers_.at(subscription.customer, provider_errors::no_such_customer).card;
  if (charged_for(due) > 0) require_paid(charge_result(card, Charging::on_file, now));

  json::object previous{{"items", items_object(subscription)},
                        {"metadata", metadata_object(subscription.metadata)}};
  prorate(subscription, price_id, at, new_interval ? Proration::credit : Proration::both);
  subscription.price_id = price_id;
  set_metadata(subscription.metadata, "plan", name_of(plan_type));
  set_metadata(subscription.metadata, "cycle", name_of(cycle));
  if (new_interval) {  // a period starts now, as Stripe's does
    previous["current_period_start"] = subscription.current_period_start;
    previous["current_period_end"] = subscription.current_period_end;
    subscription.billing_cycle_anchor = subscription.current_period_start = at;
    subscription.current_period_end = period_end_after(at, new_cycle, at);
  }
  WithEvents<RenewalReport> charged;
  if (new_interval || in_period)
    charge(subscription,
           invoice_for(
               subscription,
               new_interval ? InvoicePurpose::interval_change : InvoicePurpose::price_change, at),
           at, charged);
  charged.events.insert(charged.events.begin(),
                        make_event("customer.subscription.updated",
                                   subscription_object(subscription), at, std::move(previous)));
  return {subscription, std::move(charged.events)};
}

Page<Invoice> Ledger::invoices(std::string_view customer_id, const PageRequest& page) const {
  customers_.at(customer_id, provider_errors::no_such_customer);
  return newest_first(
      invoices_, page, provider_errors::no_such_invoice,
      [&](const InvoiceRecord& r) { return r.invoice.customer == customer_id; },
      [this](const InvoiceRecord& r) { return billed(r).invoice; });
}

Page<Customer> Ledger::customers(const PageRequest& page) const {
  return newest_first(customers_, page, provider_errors::no_such_customer, kEvery,
                      [](const CustomerRecord& r) { return r.customer; });
}

Page<Subscription> Ledger::subscriptions(const PageRequest& page) const {
  return newest_first(subscriptions_, page, provider_errors::no_such_subscription, kEvery,
                      [](const Subscription& s) { return s; });
}

WithEvents<RenewalReport> Ledger::renew_due(TimePoint now) {
  const std::int64_t at = unix_seconds(now);
  WithEvents<RenewalReport> out{.value = {.now = now}};
  for (CheckoutSession& session : sessions_.rows())
    if ((session.state == SessionState::open ||
         session.state == SessionState::awaiting_authentication) &&
        expires_at(session) <= at) {
      session.state = SessionState::expired;
      session.card_to_confirm.reset();
      ++out.value.expired_checkouts;
      out.events.push_back(make_event("checkout.session.expired", checkout_session_object(session),
                                      expires_at(session)));
    }
  for (Subscription& subscription : subscriptions_.rows()) {
    // What falls due first goes first: a retry before the period's end can make it a renewal.
    while (subscription.status != "canceled") {
      InvoiceRecord* unpaid = invoice_to_retry(subscription);
      if (unpaid && *unpaid->next_payment_attempt <= at &&
          *unpaid->next_payment_attempt <= subscription.current_period_end) {
        retry(subscription, *unpaid, at, out);
      } else if (subscription.current_period_end > at) {
        break;
      } else if (subscription.cancel_at_period_end) {
        end(subscription, at, out);
      } else if (subscription.status == "past_due") {
        skip_period(subscription, at, out);
      } else {
        renew(subscription, at, out);
      }
    }
  }
  return out;
}

InvoiceRecord* Ledger::invoice_to_retry(const Subscription& subscription) {
  for (InvoiceRecord& record : invoices_.rows())
    if (record.invoice.subscription == subscription.id && record.invoice.status == "open" &&
        record.next_payment_attempt)
      return &record;
  return nullptr;
}

// The card on file, tried again for an unpaid invoice (one replaced in the portal pays here): paid,
// it reactivates the subscription, as a payment in the portal does.
void Ledger::retry(Subscription& subscription, InvoiceRecord& invoice, std::int64_t now,
                   WithEvents<RenewalReport>& out) {
  ++out.value.retried;
  if (!charge(subscription, invoice, now, out)) return;
  ++out.value.recovered;
  reactivate(subscription, now, out.events);
}

// A past_due subscription whose unpaid invoice was paid is active again.
void Ledger::reactivate(Subscription& subscription, std::int64_t now, Events& events) {
  if (subscription.status != "past_due") return;
  subscription.status = "active";
  events.push_back(make_event("customer.subscription.updated", subscription_object(subscription),
                              now, {{"status", "past_due"}}));
}

// An invoice it left unpaid was for a period its plan spent suspended, without service: voided,
// not payable for nothing once the subscription is gone. The customer's balance it took in (a
// credit or a debit carried) is theirs again, for their next invoice. Prorations are invoiced
// when the price changes; those a ledger stored before that still owes (on a voided invoice too:
// time served before the failure) are collected in a last invoice, as Stripe's are at the end.
void Ledger::end(Subscription& subscription, std::int64_t now, WithEvents<RenewalReport>& out) {
  subscription.status = "canceled";
  ++out.value.cancelled;
  for (InvoiceRecord& record : invoices_.rows())
    if (record.invoice.subscription == subscription.id && record.invoice.status == "open") {
      record.invoice.status = "void";
      record.next_payment_attempt.reset();
      out.events.push_back(make_event("invoice.voided", invoice_json(record), now));
      for (InvoiceItem& item : invoice_items_.rows())
        if (item.invoice == record.invoice.id) item.invoice.reset();
    }
  out.events.push_back(
      make_event("customer.subscription.deleted", subscription_object(subscription), now));
  // After the deletion (Stripe does not promise an order): its payment is then recorded against
  // the cancelled plan, which it does not reactivate on the way.
  const bool owes_prorations = std::any_of(
      invoice_items_.rows().begin(), invoice_items_.rows().end(), [&](const InvoiceItem& i) {
        return i.subscription == subscription.id && !i.invoice && !i.price_id.empty();
      });
  if (owes_prorations)
    charge(subscription, invoice_for(subscription, InvoicePurpose::price_change, now), now, out);
}

// Charges the card on file for `invoice` (nothing to charge: paid as it is), and says how it went.
bool Ledger::charge(const Subscription& subscription, InvoiceRecord& invoice, std::int64_t now,
                    WithEvents<RenewalReport>& out) {
  const Card& card = customers_.at(subscription.customer, provider_errors::no_such_customer).card;
  const bool paid = invoice.invoice.amount_due == 0 ||
                    charge_result(card, Charging::on_file, time_at(now)) == ChargeResult::paid;
  record_charge(invoice, card, paid, now);
  // An ended subscription's last invoice is not tried again: nothing it pays for goes on.
  if (!paid && subscription.status != "canceled")
    invoice.next_payment_attempt = next_payment_attempt(invoice);
  out.events.push_back(make_event(paid ? "invoice.payment_succeeded" : "invoice.payment_failed",
                                  invoice_json(invoice), now));
  return paid;
}

// Moves the subscription on to its next period, and says what the period was.
json::object Ledger::next_period(Subscription& subscription) const {
  json::object previous{{"current_period_start", subscription.current_period_start},
                        {"current_period_end", subscription.current_period_end}};
  // Saved before anchors were kept: its periods count on from the one ending.
  if (subscription.billing_cycle_anchor == 0)
    subscription.billing_cycle_anchor = subscription.current_period_end;
  subscription.current_period_start = subscription.current_period_end;
  subscription.current_period_end =
      period_end_after(subscription.billing_cycle_anchor, plan_of(subscription.price_id).cycle,
                       subscription.current_period_start);
  return previous;
}

// A period that begins while the subscription is past_due is not invoiced: its plan is suspended,
// without service, until the open invoice is paid, and paying it late does not charge for the
// periods that passed meanwhile (Stripe would invoice each and retry; here they are let go).
void Ledger::skip_period(Subscription& subscription, std::int64_t now,
                         WithEvents<RenewalReport>& out) {
  json::object previous = next_period(subscription);
  out.events.push_back(make_event("customer.subscription.updated",
                                  subscription_object(subscription), now, std::move(previous)));
}

// Invoices the next period and charges the card on file for it. The period moves on either way
// (as Stripe's does); an unpaid invoice leaves the subscription past_due.
void Ledger::renew(Subscription& subscription, std::int64_t now, WithEvents<RenewalReport>& out) {
  json::object previous = next_period(subscription);
  if (charge(subscription, invoice_for(subscription, InvoicePurpose::renewal, now), now, out)) {
    ++out.value.renewed;
  } else {
    ++out.value.failed;
    previous["status"] = subscription.status;
    subscription.status = "past_due";
  }
  out.events.push_back(make_event("customer.subscription.updated",
                                  subscription_object(subscription), now, std::move(previous)));
}

}  // namespace billing::local
