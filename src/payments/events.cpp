#include "payments/events.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include "entities/repo.hpp"
#include "kit/api_error.hpp"
#include "kit/crypto.hpp"
#include "kit/json.hpp"
#include "kit/text.hpp"
#include "payments/event_members.hpp"
#include "payments/repo.hpp"
#include "plans/history.hpp"
#include "plans/repo.hpp"
#include "services/selection.hpp"

namespace billing {
namespace {

namespace json = boost::json;

// Who changed a plan, in plan_update_history, when an event did.
constexpr std::string_view kChangedBy = "stripe";

using event_members::child;
using event_members::integer;
using event_members::text;

std::optional<std::string> owned(std::optional<std::string_view> s) {
  if (s) return std::string(*s);
  return std::nullopt;
}

// The hospital or individual that metadata role / role_entity_id names.
std::optional<EntityRef> metadata_entity(const json::object* metadata) {
  if (!metadata) return std::nullopt;
  const auto role = text(*metadata, "role");
  const auto id = text(*metadata, "role_entity_id");
  if (!role || !id || !plausible_id(*id)) return std::nullopt;
  const auto kind = parse_enum<EntityKind>(*role);
  if (!kind) return std::nullopt;
  return EntityRef{*kind, std::string(*id)};
}

// The plan type and cycle a metadata names (`plan`, `cycle`: this service's checkouts set them),
// each if it is one.
struct MetadataPlan {
  std::optional<PlanType> plan_type;
  std::optional<BillingCycle> cycle;
};
MetadataPlan metadata_plan(const json::object& metadata) {
  return {parse_enum<PlanType>(text(metadata, "plan").value_or("")),
          parse_enum<BillingCycle>(text(metadata, "cycle").value_or(""))};
}

// Invoices are read in both of Stripe's shapes: the one of the API version this service pins
// (2023-10-16) and the one events have when the webhook endpoint was made at 2025-03-31 or later,
// where the subscription and its metadata moved under `parent.subscription_details` and a line's
// price under `pricing.price_details`.

// Where an invoice names its subscription and that subscription's metadata.
const json::object* subscription_details(const json::object& invoice) {
  if (const auto* parent = child(invoice, "parent"))
    if (const auto* details = child(*parent, "subscription_details")) return details;
  return child(invoice, "subscription_details");
}

// An invoice's subscription's metadata (Stripe copies the subscription's there).
const json::object* invoice_metadata(const json::object& invoice) {
  const auto* details = subscription_details(invoice);
  return details ? child(*details, "metadata") : nullptr;
}

// The subscription an invoice bills, if any.
std::optional<std::string_view> invoice_subscription(const json::object& invoice) {
  if (auto id = text(invoice, "subscription")) return id;
  const auto* details = subscription_details(invoice);
  return details ? text(*details, "subscription") : std::nullopt;
}

// The objects of a list (a subscription's `items`, an invoice's `lines`).
const json::array* list_data(const json::object& o, std::string_view list_key) {
  const auto* list = child(o, list_key);
  const auto* data = list ? list->if_contains("data") : nullptr;
  return data && data->is_array() ? &data->get_array() : nullptr;
}

// The price of a subscription's first item.
std::optional<std::string_view> item_price(const json::object& subscription) {
  const auto* items = list_data(subscription, "items");
  if (!items || items->empty() || !items->front().is_object()) return std::nullopt;
  const auto* price = child(items->front().get_object(), "price");
  return price ? text(*price, "id") : std::nullopt;
}

// The price an invoice bills at: its line for the subscription's period, not a proration (which
// Stripe may list first, at the old price); on an invoice of prorations alone, the first charge.
std::optional<std::string_view> invoice_price(const json::object& invoice) {
  const auto* lines = list_data(invoice, "lines");
  if (!lines) return std::nullopt;
  std::optional<std::string_view> first_charge;
  for (const auto& value : *lines) {
    if (!value.is_object()) continue;
    const auto& line = value.get_object();
    std::optional<std::string_view> price;
    if (const auto* p = child(line, "price"))
      price = text(*p, "id");
    else if (const auto* pricing = child(line, "pricing"))
      if (const auto* details = child(*pricing, "price_details")) price = text(*details, "price");
    if (!price) continue;
    // The proration flag: on the line (2023-10-16), or on its parent's details (2025-03-31).
    const auto* parent = child(line, "parent");
    const auto* item_details = parent ? child(*parent, "subscription_item_details") : nullptr;
    const bool subscription_line =
        text(line, "type") == std::optional<std::string_view>("subscription") ||
        text(parent ? *parent : line, "type") ==
            std::optional<std::string_view>("subscription_item_details");
    const auto* proration = line.if_contains("proration");
    if (item_details) proration = item_details->if_contains("proration");
    const bool prorated = proration && proration->is_bool() && proration->get_bool();
    if (subscription_line && !prorated) return price;
    if (!first_charge && integer(line, "amount").value_or(0) > 0) first_charge = price;
  }
  return first_charge;
}

struct Outcome {
  AuditStatus status = AuditStatus::ok;
  std::string note;
};

Outcome ignored(std::string note) {
  return {AuditStatus::ignored, std::move(note)};
}

// Stripe's subscription statuses after which it charges no more.
bool ended(std::string_view status) {
  return status == "canceled" || status == "incomplete_expired";
}

// What a subscription's Stripe status (or its collection paused) makes of its plan; none for a
// status that changes nothing (incomplete: its first payment is still being made).
std::optional<PlanStatus> plan_status_of(std::string_view status, bool paused) {
  if (ended(status)) return PlanStatus::cancelled;
  if (status == "past_due" || status == "unpaid" || status == "paused" || paused)
    return PlanStatus::suspended;
  if (status == "active" || status == "trialing") return PlanStatus::active;
  return std::nullopt;
}

// Applies one event to plans and payments; the inbox and the audit row are the caller's.
class EventEffects {
 public:
  EventEffects(Tx& tx, const EventRules& rules, const StripeEvent& event, TimePoint now)
      : tx_(tx), rules_(rules), event_(event), object_(event.object), now_(now) {}

  // What an event of this type does; none for the types that are only audited.
  using Effect = Outcome (EventEffects::*)();
  static Effect effect_of(std::string_view type) {
    static constexpr std::pair<std::string_view, Effect> kEffects[] = {
        {"checkout.session.completed", &EventEffects::checkout_completed},
        {"invoice.payment_succeeded", &EventEffects::invoice_paid},
        {"invoice.payment_failed", &EventEffects::invoice_failed},
        {"customer.subscription.updated", &EventEffects::subscription_updated},
        {"customer.subscription.deleted", &EventEffects::subscription_deleted}};
    for (const auto& [name, effect] : kEffects)
      if (name == type) return effect;
    return nullptr;
  }

  Outcome apply(Effect effect) { return (this->*effect)(); }

  // Whether the event may need its owner's row created: a first checkout, one that bought a
  // plan (an ignored one leaves no row behind).
  static bool creates_owner(Effect effect, const EventRules& rules, const StripeEvent& event,
                            const EntityRef& owner) {
    return effect == &EventEffects::checkout_completed &&
           !checkout_refusal(rules, owner, event.object);
  }

  // For prepare_event: sends ahead the payment a paid invoice records, if its metadata names
  // the entity (the one invoice_paid then records).
  void queue_payment(Effect effect) {
    if (auto entity = queued_payment_owner(effect))
      tx_.get<PaymentRepo>().queue_payment(payment_of(*entity));
  }
  // For apply_event, when the event turns out a duplicate: what queue_payment sent ahead is not
  // this delivery's to record (and only what it sent: another unit's is that unit's).
  void withdraw_payment(Effect effect) {
    if (queued_payment_owner(effect)) tx_.get<PaymentRepo>().withdraw_queued_payment(*invoice_id());
  }

 private:
  PlanRepo& plans() { return tx_.get<PlanRepo>(); }

  std::string reason() const { return event_.type + " " + event_.id; }

  bool stale(const Plan& plan) const {
    return plan.last_event_created && event_.created < *plan.last_event_created;
  }
  // Dated the second of the newest event the plan took: the two cannot be ordered by date.
  bool ties(const Plan& plan) const { return plan.last_event_created == event_.created; }

  // The entity whose payment queue_payment sends ahead for this event, if it does.
  std::optional<EntityRef> queued_payment_owner(Effect effect) const {
    if (effect != &EventEffects::invoice_paid || why_no_payment()) return {};
    return metadata_entity(invoice_metadata(object_));
  }

  // For a subscription event that shows the subscription otherwise than the plan follows it,
  // yet cannot say it is newer: one of the same second as the plan's last event (a tie), or an
  // older one, which cannot move the plan back but may be news no later event brought (a price
  // change or a deletion delivered after the next invoice's event). The provider's present state
  // settles it (payments/subscription_checks.hpp).
  void ask_the_provider_later(std::string_view subscription_id) {
    if (!event_.from_provider)
      tx_.get<PaymentRepo>().request_subscription_check(subscription_id, event_.created);
  }

  // Saves `after` (the newest event recorded: this one, or `event_time`) and a history row if its
  // type, status or services moved.
  void save(const std::optional<Plan>& before, Plan after,
            std::optional<std::int64_t> event_time = std::nullopt) {
    after.last_event_created = event_time.value_or(event_.created);
    if (before && after == *before) return;
    after.updated_at = now_;
    if (before)
      plans().update_plan(*before, after);
    else
      plans().save_plan(after);
    if (!before || before->plan_type != after.plan_type || before->status != after.status ||
        before->selected_services != after.selected_services)
      plans().append_history(
          plan_change(before ? &*before : nullptr, after, kChangedBy, now_, reason()));
  }

  // The plan an event about a subscription concerns: the entity its metadata names, or the plan
  // that holds the subscription (events of subscriptions made before metadata carried it). Found
  // so, the owner is locked first, also when the subscription is another of its owner's: what is
  // known of that one then changes only under the lock the plan's own events take.
  std::optional<Plan> subscription_plan(std::optional<std::string_view> subscription,
                                        const json::object* metadata) {
    if (auto entity = metadata_entity(metadata)) {
      auto plan = plans().find_plan(*entity);
      if (plan && (!subscription || plan->stripe_subscription_id == *subscription)) return plan;
      return std::nullopt;
    }
    const auto owner = subscription_owner(subscription);
    if (!owner) return std::nullopt;
    auto plan = plans().find_plan(*owner);
    if (plan && plan->stripe_subscription_id == *subscription) return plan;
    return std::nullopt;
  }

  // Whether the subscription or the customer is known as another entity's than `entity`, the
  // one an event's metadata names for them: such an event (signed, yet naming the wrong entity)
  // is not taken, or it would record a payment for an entity that does not make it, and show
  // that entity the subscription and invoices of another. Read only when the entity's plan does
  // not follow the subscription already (a first invoice, a first checkout, an event of another
  // subscription).
  bool belongs_to_another(const EntityRef& entity, std::optional<std::string_view> subscription,
                          std::optional<std::string_view> customer) {
    const auto other = [&](const EntityRef& owner) { return !(owner == entity); };
    if (subscription && plausible_id(*subscription)) {
      if (const auto plan = plans().find_plan_by_subscription(*subscription))
        if (other(plan->owner)) return true;
      if (const auto known = plans().find_other_subscription(*subscription))
        if (other(known->owner)) return true;
    }
    if (customer && plausible_id(*customer))
      if (const auto plan = plans().find_plan_by_customer(*customer))
        if (other(plan->owner)) return true;
    return false;
  }

  // The owner, locked, of the plan that holds `subscription` or of whom it is another
  // subscription, if either is known.
  std::optional<EntityRef> subscription_owner(std::optional<std::string_view> subscription) {
    if (!subscription || !plausible_id(*subscription)) return std::nullopt;
    if (auto plan = plans().find_plan_by_subscription(*subscription))
      return lock_owner(plan->owner);
    if (auto other = plans().find_other_subscription(*subscription))
      return lock_owner(other->owner);
    return std::nullopt;
  }

  // Locks the owner of a plan found by its subscription or customer, so that the plan read next
  // is as the last change to commit left it.
  const EntityRef& lock_owner(const EntityRef& owner) {
    tx_.get<EntityRepo>().entity_exists(owner);
    return owner;
  }

  // Why a completed checkout session buys `entity` no plan, if it buys one.
  static std::optional<std::string> checkout_refusal(const EventRules& rules,
                                                     const EntityRef& entity,
                                                     const json::object& session) {
    const auto* metadata = child(session, "metadata");
    if (!metadata) return "no metadata";
    const auto [plan_type, cycle] = metadata_plan(*metadata);
    if (!plan_type || !cycle || !rules.catalog.find(entity.kind, *plan_type))
      return "metadata names no plan of the catalog";
    const auto payment_status = text(session, "payment_status").value_or("");
    if (payment_status != "paid" && payment_status != "no_payment_required")
      return "checkout not paid";
    const auto customer = text(session, "customer");
    const auto subscription = text(session, "subscription");
    if (!customer || !subscription || !plausible_id(*customer) || !plausible_id(*subscription))
      return "no customer or subscription";
    return std::nullopt;
  }

  Outcome checkout_completed() {
    const auto* metadata = child(object_, "metadata");
    const auto entity = metadata_entity(metadata);
    if (!entity) return ignored("no role and role_entity_id in metadata");
    if (auto refusal = checkout_refusal(rules_, *entity, object_)) return ignored(*refusal);
    const auto [plan_type, cycle] = metadata_plan(*metadata);
    const auto customer = text(object_, "customer");
    const auto subscription = text(object_, "subscription");
    // Its first invoice's payment names the session, whether the plan takes it up or not.
    const auto session = text(object_, "id");
    const auto first_invoice = text(object_, "invoice");
    if (session && first_invoice && plausible_id(*session) && plausible_id(*first_invoice))
      tx_.get<PaymentRepo>().link_checkout(*session, *first_invoice);

    // prepare_event created the entity's row if it was new, and holds it.
    const auto before = plans().find_plan(*entity);
    const bool follows = before && before->stripe_subscription_id == *subscription;
    if (!follows && belongs_to_another(*entity, subscription, customer))
      return ignored("the subscription or customer is another entity's");
    if (follows && before->status == PlanStatus::cancelled)
      return {AuditStatus::stale, "the subscription was deleted"};
    if (follows && stale(*before)) return {AuditStatus::stale, "older than the plan's last event"};
    // Another subscription than the plan's: what is known of it decides, not the plan's events.
    const auto known = follows ? std::nullopt : plans().find_other_subscription(*subscription);
    if (known && ended(known->status)) return ignored("the subscription has ended");
    // Its own newer events (a price change, a failed payment) say more than its checkout.
    const bool known_newer = known && known->last_event_created > event_.created;
    const PlanType bought = known_newer ? known->plan_type : *plan_type;
    const BillingCycle billed = known_newer ? known->cycle : *cycle;
    const PlanOffer* offer = rules_.catalog.find(entity->kind, bought);
    if (!offer) return ignored("metadata names no plan of the catalog");
    // Two checkouts opened before either was paid, then both paid: the plan stays with the
    // subscription that pays for it already, and its payer can see and cancel the other one
    // (the payments it records name it: its invoices are recorded all the same). The other is
    // kept, for the plan to go on with when the first ends: its payer, still charged for it,
    // would otherwise be left without a plan.
    if (!follows && before && before->status == PlanStatus::active &&
        before->stripe_subscription_id) {
      OtherSubscription other;
      if (known)
        other = *known;
      else
        other.status = "active";
      other.id = std::string(*subscription);
      other.owner = *entity;
      other.plan_type = bought;
      other.cycle = billed;
      other.created = known ? known->created : event_.created;
      other.last_event_created = std::max(other.last_event_created, event_.created);
      plans().save_other_subscription(other);
      return ignored(fmt::format("a second subscription, {}, for an active plan {} pays for",
                                 *subscription, *before->stripe_subscription_id));
    }
    // A checkout opened before the plan was suspended, paid since: the plan moves to it, and the
    // suspended subscription, which may still be paid, is kept as another.
    if (!follows && before && before->status == PlanStatus::suspended &&
        before->stripe_subscription_id)
      keep_as_other(*before, before->collection_paused ? "paused" : "past_due",
                    before->last_event_created.value_or(0));
    if (known) plans().drop_other_subscription(known->id);
    Plan after = before
                     ? *before
                     : Plan{.id = "plan_" + random_hex(12), .owner = *entity, .created_at = now_};
    const bool keeps_services = before && before->plan_type == bought &&
                                before->status == PlanStatus::active &&
                                !before->selected_services.empty();
    after.plan_type = bought;
    const auto known_status = known_newer ? plan_status_of(known->status, false) : std::nullopt;
    after.status = known_status.value_or(PlanStatus::active);
    after.max_agents = offer->max_agents;
    if (!keeps_services) after.selected_services = offer->default_services;
    after.billing_cycle = billed;
    after.stripe_customer_id = std::string(*customer);
    after.stripe_subscription_id = std::string(*subscription);
    after.pending_plan_type.reset();
    after.pending_billing_cycle.reset();
    after.cancel_at_period_end = false;
    after.collection_paused = known_newer && known->status == "paused";
    save(before, std::move(after),
         std::max(event_.created, known ? known->last_event_created : event_.created));
    return {};
  }

  // Records the subscription `plan` follows, about to stop following it, as another of its
  // owner's, with `status` and `last`, the time of its newest event.
  void keep_as_other(const Plan& plan, std::string_view status, std::int64_t last) {
    plans().save_other_subscription({.id = *plan.stripe_subscription_id,
                                     .owner = plan.owner,
                                     .status = std::string(status),
                                     .plan_type = plan.plan_type,
                                     .cycle = plan.billing_cycle.value_or(BillingCycle::monthly),
                                     .created = last,
                                     .last_event_created = last});
  }

  // What the invoice says was paid: whole cents, none below zero nor of more than Stripe's 12
  // digits (a payment is not recorded from an amount that cannot be one).
  std::optional<Cents> amount_paid() const {
    const auto amount = integer(object_, "amount_paid");
    return amount && *amount >= 0 && *amount <= 999'999'999'999 ? amount : std::nullopt;
  }
  // Its ISO 4217 code, in Stripe's lower case.
  std::optional<std::string_view> currency() const {
    const auto code = text(object_, "currency");
    const auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
    return code && code->size() == 3 && std::all_of(code->begin(), code->end(), lower)
               ? code
               : std::nullopt;
  }
  // Why a paid invoice records no payment, if it does not: it lacks what a payment is made of.
  std::optional<std::string_view> why_no_payment() const {
    if (!invoice_id()) return "invoice without an id";
    if (!amount_paid()) return "invoice without a valid amount_paid";
    if (!currency()) return "invoice without a valid currency";
    return std::nullopt;
  }

  std::optional<std::string_view> invoice_id() const {
    const auto id = text(object_, "id");
    return id && plausible_id(*id) ? id : std::nullopt;
  }

  // The entity an invoice is for: its subscription's metadata, else the plan holding the
  // subscription, the owner of another subscription it is, or the plan holding the customer (a
  // paid invoice may arrive before the checkout completion).
  std::optional<EntityRef> invoice_entity() {
    if (auto entity = metadata_entity(invoice_metadata(object_))) return entity;
    if (auto owner = subscription_owner(invoice_subscription(object_))) return owner;
    if (auto customer = text(object_, "customer"); customer && plausible_id(*customer))
      if (auto plan = plans().find_plan_by_customer(*customer)) return lock_owner(plan->owner);
    return std::nullopt;
  }

  Payment payment_of(const EntityRef& entity) const {
    Payment p{
        .customer_id = owned(text(object_, "customer")),
        .subscription_id = owned(invoice_subscription(object_)),
        .invoice_id = owned(text(object_, "id")),
        .payment_intent_id = owned(text(object_, "payment_intent")),
        .entity = entity,
        .amount = amount_paid().value_or(0),
        .currency = std::string(currency().value_or("")),
        .created_at = now_,
    };
    if (const auto* metadata = invoice_metadata(object_)) {
      const auto named = metadata_plan(*metadata);
      p.plan_type = named.plan_type;
      p.cycle = named.cycle;
    }
    if (auto price = invoice_price(object_))
      if (auto priced = rules_.prices.plan_for(entity.kind, *price)) {
        p.plan_type = priced->plan_type;
        p.cycle = priced->cycle;
      }
    // Stripe sends `charge` as an id; the local provider expands it, with its fee and card.
    if (auto charge_id = text(object_, "charge")) p.charge_id = std::string(*charge_id);
    if (const auto* charge = child(object_, "charge")) {
      p.charge_id = owned(text(*charge, "id"));
      if (const auto* balance = child(*charge, "balance_transaction")) {
        p.fee_amount = integer(*balance, "fee");
        p.net_amount = integer(*balance, "net");
      }
      if (const auto* method = child(*charge, "payment_method_details"))
        p.payment_method = to_json(*method);
    }
    // An invoice that credits covered was paid with no charge: nothing was taken, no fee.
    if (p.amount == 0 && !p.charge_id) {
      p.fee_amount = 0;
      p.net_amount = 0;
    }
    const auto* transitions = child(object_, "status_transitions");
    const auto paid_at = transitions ? integer(*transitions, "paid_at") : std::nullopt;
    // Stripe's time, if one (after 1970, before the latest an event may have), else the event's.
    p.paid_at = TimePoint(
        std::chrono::seconds(paid_at > 0 && paid_at <= kLatestCreated ? *paid_at : event_.created));
    return p;
  }

  Outcome invoice_paid() {
    if (const auto why = why_no_payment()) return ignored(std::string(*why));
    const auto entity = invoice_entity();
    if (!entity) return ignored("no entity for the invoice");
    const auto subscription = invoice_subscription(object_);
    auto before = plans().find_plan(*entity);
    const bool follows = before && subscription && before->stripe_subscription_id == *subscription;
    if (!follows && belongs_to_another(*entity, subscription, text(object_, "customer"))) {
      withdraw_payment(&EventEffects::invoice_paid);  // what queue_payment sent ahead
      return ignored("the subscription or customer is another entity's");
    }
    // Recorded whatever follows: queue_payment sent it ahead on these same conditions.
    const bool recorded = tx_.get<PaymentRepo>().record_payment(payment_of(*entity));
    Outcome outcome{AuditStatus::ok, recorded ? "payment recorded" : "payment already recorded"};
    if (!follows) return outcome;  // the checkout completion, when it comes, activates the plan
    if (stale(*before)) return {AuditStatus::stale, outcome.note + "; plan left as it is"};
    // A paused subscription's plan waits for its resumption: the payment changes nothing of it,
    // not even its event time, which a resumption sent before the payment must still pass.
    if (before->collection_paused)
      return {outcome.status, outcome.note + "; the plan waits for the subscription's resumption"};
    Plan after = *before;
    if (after.status == PlanStatus::suspended) {
      after.status = PlanStatus::active;
      // Another invoice, newer, may still be unpaid (its payment failed after this one's): the
      // subscription is then past due still, as Stripe's status follows the latest invoice. The
      // provider's present state settles it at the next sweep (within 5 minutes;
      // subscription_checks): a settle at once after each payment would cost every paid invoice's
      // webhook a read.
      ask_the_provider_later(*subscription);
    }
    save(before, std::move(after));
    return outcome;
  }

  Outcome invoice_failed() {
    const auto subscription = invoice_subscription(object_);
    auto before = subscription_plan(subscription, invoice_metadata(object_));
    if (!before || !subscription) return ignored("no plan holds the subscription");
    if (stale(*before)) return {AuditStatus::stale, "older than the plan's last event"};
    // A failed attempt and the invoice's payment in one second (paid at once on a retry): the
    // payment came after, whatever the order they arrive in.
    const auto invoice = invoice_id();
    if (ties(*before) && invoice && tx_.get<PaymentRepo>().payment_recorded(*invoice))
      return {AuditStatus::stale, "the invoice is paid"};
    const PlanStatus was = before->status;
    Plan after = *before;
    if (was == PlanStatus::active) after.status = PlanStatus::suspended;
    save(before, std::move(after));
    if (was != PlanStatus::active)
      return {AuditStatus::ok, "payment failed: plan left " + std::string(name_of(was))};
    return {AuditStatus::ok, "payment failed: plan suspended until the invoice is paid"};
  }

  // The plan type and services after a price change, keeping the services the new plan offers.
  void follow_price(Plan& plan, const PricedPlan& priced) {
    if (priced.role != plan.owner.kind) return;  // another role's price: nothing of it
    plan.billing_cycle = priced.cycle;
    if (plan.pending_billing_cycle == priced.cycle) plan.pending_billing_cycle.reset();
    if (priced.plan_type == plan.plan_type) return;
    const PlanOffer* offer = rules_.catalog.find(plan.owner.kind, priced.plan_type);
    if (!offer) return;
    std::vector<ServiceType> kept;
    for (ServiceType s : plan.selected_services)
      if (std::find(offer->services.begin(), offer->services.end(), s) != offer->services.end())
        kept.push_back(s);
    try {
      plan.selected_services = resolve_services(*offer, kept);
    } catch (const ApiError&) {  // more optional services than the new plan allows
      plan.selected_services = offer->default_services;
    }
    plan.plan_type = priced.plan_type;
    plan.max_agents = offer->max_agents;
    if (plan.pending_plan_type == priced.plan_type) plan.pending_plan_type.reset();
  }

  // An event about a subscription the plan does not follow (status: what it says of it): kept as
  // what is known of that subscription, newest event first, if it names its owner and plan.
  Outcome other_subscription_event(std::optional<std::string_view> id, std::string_view status) {
    if (!id || !plausible_id(*id)) return ignored("no plan holds the subscription");
    const auto* metadata = child(object_, "metadata");
    const auto owner = metadata_entity(metadata);
    // Metadata edited to name another entity than the one the subscription or its customer is
    // known as (the lock held is the named one's): taken, it would hand that entity another's
    // subscription, to see, to cancel, and to go on with when its own ends.
    if (owner && belongs_to_another(*owner, id, text(object_, "customer")))
      return ignored("the subscription or customer is another entity's");
    auto other = plans().find_other_subscription(*id);
    if (other && ended(other->status)) return {AuditStatus::stale, "the subscription has ended"};
    if (other && event_.created < other->last_event_created)
      return {AuditStatus::stale, "older than the subscription's last event"};
    if (!other) {
      // Told of first by this event (its checkout's completion may come later).
      if (!owner) return ignored("no plan holds the subscription");
      const auto [plan_type, cycle] = metadata_plan(*metadata);
      if (!plan_type || !cycle) return ignored("no plan holds the subscription");
      other = OtherSubscription{.id = std::string(*id),
                                .owner = *owner,
                                .plan_type = *plan_type,
                                .cycle = *cycle,
                                .created = event_.created};
    }
    if (auto price = item_price(object_))
      if (auto priced = rules_.prices.plan_for(other->owner.kind, *price)) {
        other->plan_type = priced->plan_type;
        other->cycle = priced->cycle;
      }
    other->status = std::string(status);
    other->last_event_created = event_.created;
    plans().save_other_subscription(*other);
    return {AuditStatus::ok, ended(status) ? "another subscription of the owner has ended"
                                           : "another subscription of the owner, for when the "
                                             "plan's own ends"};
  }

  // The plan's subscription has ended: the plan goes on with the owner's newest other
  // subscription that has not ended, if any (from what that one's events said: `event_time`),
  // else it is cancelled. The ended one is kept as such, so that no late event brings it back.
  Outcome end_subscription(Plan& after, std::optional<std::int64_t>& event_time) {
    keep_as_other(after, "canceled",
                  std::max(after.last_event_created.value_or(0), event_.created));
    after.status = PlanStatus::cancelled;
    after.cancel_at_period_end = false;
    after.collection_paused = false;
    // A choice the ended subscription was to be priced at.
    after.pending_plan_type.reset();
    after.pending_billing_cycle.reset();
    for (const auto& other : plans().other_subscriptions(after.owner)) {
      // One that has ended, or whose first payment is still being made (incomplete), is not.
      const auto status = plan_status_of(other.status, false);
      if (!status || *status == PlanStatus::cancelled) continue;
      plans().drop_other_subscription(other.id);
      after.stripe_subscription_id = other.id;
      after.status = *status;
      after.collection_paused = other.status == "paused";
      follow_price(after, {after.owner.kind, other.plan_type, other.cycle});
      event_time = other.last_event_created;
      return {AuditStatus::ok, "the plan goes on with the subscription " + other.id};
    }
    return {};
  }

  Outcome subscription_updated() {
    const auto id = text(object_, "id");
    const auto status = text(object_, "status").value_or("");
    // Its collection paused, or Stripe's own `paused` status (a trial ended unpaid): either holds
    // the plan suspended until the subscription is resumed.
    const bool paused = status == "paused" || (object_.contains("pause_collection") &&
                                               !object_.at("pause_collection").is_null());
    auto before = subscription_plan(id, child(object_, "metadata"));
    // Another subscription's pause is kept as that `paused` status.
    if (!before || !id)
      return other_subscription_event(id, paused && !ended(status) ? "paused" : status);
    if (before->status == PlanStatus::cancelled)
      return {AuditStatus::stale, "the subscription was deleted"};
    Plan after = *before;
    if (auto price = item_price(object_))
      if (auto priced = rules_.prices.plan_for(after.owner.kind, *price))
        follow_price(after, *priced);
    if (auto* v = object_.if_contains("cancel_at_period_end"); v && v->is_bool())
      after.cancel_at_period_end = v->get_bool();
    after.collection_paused = paused;
    const bool ends = ended(status);
    if (!ends)
      if (auto plan_status = plan_status_of(status, paused)) after.status = *plan_status;
    if (stale(*before)) {
      if (ends || after != *before) ask_the_provider_later(*id);
      return {AuditStatus::stale, "older than the plan's last event"};
    }
    Outcome outcome;
    std::optional<std::int64_t> event_time;
    if (ends) outcome = end_subscription(after, event_time);
    // Another event of this second set the plan otherwise: which is newer, only the provider
    // knows.
    if (ties(*before) && after != *before) ask_the_provider_later(*id);
    save(before, std::move(after), event_time);
    return outcome;
  }

  Outcome subscription_deleted() {
    const auto id = text(object_, "id");
    auto before = subscription_plan(id, child(object_, "metadata"));
    if (!before || !id) return other_subscription_event(id, "canceled");
    if (stale(*before)) {
      if (before->status != PlanStatus::cancelled) ask_the_provider_later(*id);
      return {AuditStatus::stale, "older than the plan's last event"};
    }
    Plan after = *before;
    std::optional<std::int64_t> event_time;
    const auto outcome = end_subscription(after, event_time);
    save(before, std::move(after), event_time);
    return outcome;
  }

  Tx& tx_;
  const EventRules& rules_;
  const StripeEvent& event_;
  const json::object& object_;
  TimePoint now_;
};

}  // namespace

namespace {

// Whether a JSON text has a string holding U+0000 (`\u0000`, its only way to): no Stripe event
// does, and PostgreSQL's text and jsonb cannot store one.
bool holds_nul(std::string_view json_text) {
  for (auto at = json_text.find("u0000"); at != std::string_view::npos;
       at = json_text.find("u0000", at + 1)) {
    std::size_t backslashes = 0;
    while (backslashes < at && json_text[at - 1 - backslashes] == '\\') ++backslashes;
    if (backslashes % 2 == 1) return true;  // an escape, not an escaped backslash and text
  }
  return false;
}

}  // namespace

StripeEvent parse_event(std::string_view payload) {
  const auto invalid = [] { return ApiError(400, "Invalid webhook payload"); };
  if (holds_nul(payload)) throw invalid();
  boost::system::error_code ec;
  auto value = json::parse(payload, ec);
  if (ec || !value.is_object()) throw invalid();
  auto& event = value.get_object();
  const auto id = text(event, "id");
  const auto type = text(event, "type");
  const auto created = integer(event, "created");
  auto* data = event.if_contains("data");
  if (!id || !type || !created || *created <= 0 || *created > kLatestCreated ||
      !plausible_id(*id) || !plausible_id(*type) || !data || !data->is_object())
    throw invalid();
  auto* object = data->get_object().if_contains("object");
  if (!object || !object->is_object()) throw invalid();
  return StripeEvent{.id = std::string(*id),
                     .type = std::string(*type),
                     .created = *created,
                     .api_version = std::string(text(event, "api_version").value_or("")),
                     .object = std::move(object->get_object()),
                     .payload = payload};
}

namespace {

// The entity named by the metadata the event's effects read: an invoice event's subscription's,
// or the object's own (a checkout session's, a subscription's).
std::optional<EntityRef> metadata_owner(const StripeEvent& event) {
  const auto& o = event.object;
  if (event.type.starts_with("invoice.")) return metadata_entity(invoice_metadata(o));
  return metadata_entity(child(o, "metadata"));
}

}  // namespace

std::size_t event_affinity(const StripeEvent& event) {
  if (auto owner = metadata_owner(event)) return std::hash<std::string>{}(owner->id);
  const auto& o = event.object;
  const bool is_subscription = text(o, "object") == std::optional<std::string_view>("subscription");
  for (auto key : {is_subscription ? text(o, "id") : invoice_subscription(o), text(o, "customer")})
    if (key) return std::hash<std::string_view>{}(*key);
  return std::hash<std::string>{}(event.id);
}

std::string audit_payload(const StripeEvent& event) {
  return to_json(json::object{{"id", event.id},
                              {"type", event.type},
                              {"created", event.created},
                              {"object",
                               {{"id", text(event.object, "id").value_or("")},
                                {"object", text(event.object, "object").value_or("")}}}});
}

bool prepare_event(Tx& tx, const EventRules& rules, const StripeEvent& event, TimePoint now) {
  const auto effect = EventEffects::effect_of(event.type);
  // Changes to one entity's plan queue up on the entity's row, whoever makes them (another
  // writer, another replica, a request); the plan the event most likely changes is read once
  // the lock is held.
  const auto owner = effect ? metadata_owner(event) : std::nullopt;
  if (owner) {
    // A new owner's row is created first: its lock then comes before the claim as for every
    // event, or two deliveries of one checkout on two replicas could deadlock (one claims,
    // then locks; the other locks the row the first created, then claims).
    if (EventEffects::creates_owner(effect, rules, event, *owner))
      tx.get<EntityRepo>().create_entity(*owner, now);
    tx.get<EntityRepo>().hold_entity(*owner);
    tx.get<PlanRepo>().expect_plan(*owner);
  }
  tx.get<PaymentRepo>().queue_claim(event.inbox(), now);
  if (effect) EventEffects(tx, rules, event, now).queue_payment(effect);
  return !effect || owner;  // else the effects look for the owner, and lock it, as they run
}

AuditStatus apply_event(Tx& tx, const EventRules& rules, const StripeEvent& event, TimePoint now) {
  auto& payments = tx.get<PaymentRepo>();
  const auto audit = [&](Outcome outcome) {
    payments.append_audit(AuditEntry{.event_id = event.id,
                                     .event_type = event.type,
                                     .payload = audit_payload(event),
                                     .status = outcome.status,
                                     .note = std::move(outcome.note),
                                     .created_at = now});
    return outcome.status;
  };
  const auto effect = EventEffects::effect_of(event.type);
  if (!payments.claim_event(event.inbox(), now)) {
    if (effect) EventEffects(tx, rules, event, now).withdraw_payment(effect);
    return audit({AuditStatus::duplicate, "already processed"});
  }
  if (!effect) return audit(ignored("event type not handled"));
  return audit(EventEffects(tx, rules, event, now).apply(effect));
}

boost::asio::awaitable<AuditStatus> apply_grouped(Db& db, const EventRules& rules,
                                                  const StripeEvent& event, TimePoint now) {
  co_return co_await db.transact_grouped(
      [&](Tx& tx) { return apply_event(tx, rules, event, now); }, event_affinity(event),
      [&](Tx& tx) { return prepare_event(tx, rules, event, now); });
}

}  // namespace billing
