// The ledger's objects as JSON, for the local provider to keep them across restarts
// (payments/local/repo.hpp). Boost.JSON converts the described structs member by member; the
// static_asserts below stop a member added to a record without being described here.
#include <stdexcept>

#include <boost/describe/class.hpp>
#include <boost/describe/enum.hpp>
#include <boost/describe/members.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <boost/mp11/algorithm.hpp>
#include <boost/pfr/core.hpp>

#include "payments/local/ledger.hpp"

namespace billing {

// The enums that have wire names (kit/enums.hpp), as those names.
template <class E>
requires requires {
  EnumNames<E>::names;
}
void tag_invoke(const boost::json::value_from_tag&, boost::json::value& out, E value) {
  out = name_of(value);
}
template <class E>
requires requires {
  EnumNames<E>::names;
}
E tag_invoke(const boost::json::value_to_tag<E>&, const boost::json::value& in) {
  if (const auto value = parse_enum<E>(in.as_string())) return *value;
  throw std::runtime_error("a stored local provider object names an unknown enum value");
}

BOOST_DESCRIBE_STRUCT(EntityRef, (), (kind, id))
BOOST_DESCRIBE_STRUCT(CheckoutRequest, (),
                      (entity, plan_type, cycle, price_id, customer_id, success_url, cancel_url))
BOOST_DESCRIBE_STRUCT(Subscription, (),
                      (id, status, customer, item_id, price_id, current_period_start,
                       current_period_end, billing_cycle_anchor, cancel_at_period_end,
                       collection_paused, metadata))
BOOST_DESCRIBE_STRUCT(Invoice, (),
                      (id, customer, subscription, amount_due, amount_paid, total, starting_balance,
                       ending_balance, currency, status, created))
BOOST_DESCRIBE_STRUCT(Customer, (), (id, email, name, created, metadata))

}  // namespace billing

namespace billing::local {

BOOST_DESCRIBE_ENUM(TestCard, succeeds, declined, insufficient_funds, requires_authentication,
                    declines_after_attaching)
BOOST_DESCRIBE_ENUM(SessionState, open, awaiting_authentication, complete, expired)
BOOST_DESCRIBE_STRUCT(Card, (), (kind, last4, exp_month, exp_year))
BOOST_DESCRIBE_STRUCT(CheckoutSession, (),
                      (id, request, plan_name, amount, created, state, card_to_confirm,
                       due_to_confirm, subscription_id, amount_paid))
BOOST_DESCRIBE_STRUCT(Charge, (), (id, amount, paid, card))
BOOST_DESCRIBE_STRUCT(InvoiceRecord, (),
                      (invoice, billing_reason, starts_period, price_id, period_start, period_end,
                       metadata, payment_intent, charge, paid_at, attempt_count,
                       next_payment_attempt))
BOOST_DESCRIBE_STRUCT(InvoiceItem, (),
                      (id, subscription, price_id, amount, period_start, period_end, invoice))
BOOST_DESCRIBE_STRUCT(CustomerRecord, (), (customer, card))
BOOST_DESCRIBE_STRUCT(PaymentToConfirm, (), (invoice_id, amount, card))
BOOST_DESCRIBE_STRUCT(PortalSession, (), (id, customer, return_url, payment_to_confirm, created))

// A member not described would be left out of the saved JSON without a word.
template <class T>
constexpr bool every_member_described =
    boost::pfr::tuple_size_v<T> ==
    boost::mp11::mp_size<boost::describe::describe_members<T, boost::describe::mod_public>>::value;
static_assert(every_member_described<EntityRef> && every_member_described<CheckoutRequest> &&
              every_member_described<Subscription> && every_member_described<Invoice> &&
              every_member_described<Customer> && every_member_described<Card> &&
              every_member_described<CheckoutSession> && every_member_described<Charge> &&
              every_member_described<InvoiceRecord> && every_member_described<InvoiceItem> &&
              every_member_described<CustomerRecord> && every_member_described<PortalSession> &&
              every_member_described<PaymentToConfirm>);

namespace {

namespace json = boost::json;

template <class Row>
LocalObject object_of(std::string_view kind, const Row& row) {
  return {
      .kind = std::string(kind), .id = id_of(row), .data = json::serialize(json::value_from(row))};
}

template <class Row>
void add_objects(std::vector<LocalObject>& out, std::string_view kind, const Table<Row>& table) {
  for (const Row& row : table.rows()) out.push_back(object_of(kind, row));
}

template <class Row>
void add_changes(std::vector<LocalObject>& changed,
                 std::vector<std::pair<std::string, std::string>>& removed, std::string_view kind,
                 const Table<Row>& table, const Table<Row>& before) {
  for (const Row& row : table.rows()) {
    const Row* old = before.find(id_of(row));
    if (!old || !(*old == row)) changed.push_back(object_of(kind, row));
  }
  for (const Row& row : before.rows())
    if (!table.find(id_of(row))) removed.emplace_back(std::string(kind), id_of(row));
}

// A member added since the object was saved takes its default, in nested objects too.
void fill_defaults(json::object& saved, const json::object& defaults) {
  for (const auto& [key, value] : defaults) {
    auto* present = saved.if_contains(key);
    if (!present)
      saved.emplace(key, value);
    else if (present->is_object() && value.is_object())
      fill_defaults(present->get_object(), value.get_object());
  }
}

template <class Row>
void restore_into(Table<Row>& table, json::value data) {
  const json::value defaults = json::value_from(Row{});
  fill_defaults(data.as_object(), defaults.as_object());
  table.add(json::value_to<Row>(data));
}

}  // namespace

std::vector<LocalObject> Ledger::objects() const {
  std::vector<LocalObject> out;
  add_objects(out, kind::checkout_session, sessions_);
  add_objects(out, kind::customer, customers_);
  add_objects(out, kind::subscription, subscriptions_);
  add_objects(out, kind::invoice, invoices_);
  add_objects(out, kind::invoice_item, invoice_items_);
  add_objects(out, kind::portal_session, portals_);
  return out;
}

void Ledger::changes_from(const Ledger& before, std::vector<LocalObject>& changed,
                          std::vector<std::pair<std::string, std::string>>& removed) const {
  add_changes(changed, removed, kind::checkout_session, sessions_, before.sessions_);
  add_changes(changed, removed, kind::customer, customers_, before.customers_);
  add_changes(changed, removed, kind::subscription, subscriptions_, before.subscriptions_);
  add_changes(changed, removed, kind::invoice, invoices_, before.invoices_);
  add_changes(changed, removed, kind::invoice_item, invoice_items_, before.invoice_items_);
  add_changes(changed, removed, kind::portal_session, portals_, before.portals_);
}

void Ledger::restore(const LocalObject& object) {
  json::value data = json::parse(object.data);
  if (object.kind == kind::checkout_session)
    restore_into(sessions_, std::move(data));
  else if (object.kind == kind::customer)
    restore_into(customers_, std::move(data));
  else if (object.kind == kind::subscription)
    restore_into(subscriptions_, std::move(data));
  else if (object.kind == kind::invoice)
    restore_into(invoices_, std::move(data));
  else if (object.kind == kind::invoice_item)
    restore_into(invoice_items_, std::move(data));
  else if (object.kind == kind::portal_session)
    restore_into(portals_, std::move(data));
  else
    throw std::runtime_error("the ledger keeps no stored local provider object of kind " +
                             object.kind);
}

}  // namespace billing::local
