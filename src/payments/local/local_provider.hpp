#pragma once
// The local payment provider: a stand-in for Stripe inside the service, so that the whole paid
// flow (checkout, renewals, failed payments, the portal) works without a Stripe account. It is
// the default without a Stripe key and what `billing serve --dev` uses. Its checkout and portal
// are HTML pages served by the service (payments/local/routes.cpp); its events are signed like
// Stripe's and go through the service's own webhook path. Its objects are kept in the database
// (payments/local/repo.hpp), every change saved before the call that made it returns, and an
// event is kept until the service has accepted it: a restart forgets nothing and delivers what
// was left undelivered.
#include <chrono>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "core/db.hpp"
#include "http/route.hpp"
#include "kit/async_mutex.hpp"
#include "kit/clock.hpp"
#include "kit/stoppable_waits.hpp"
#include "payments/local/ledger.hpp"
#include "payments/price_map.hpp"
#include "payments/provider.hpp"
#include "payments/webhook_signature.hpp"
#include "plans/catalog.hpp"

namespace billing {

namespace local {
// What a change of the ledger returns, less its events (std::monostate when only events).
template <class R>
struct ChangeValueOf {
  using type = R;
};
template <class T>
struct ChangeValueOf<WithEvents<T>> {
  using type = T;
};
template <>
struct ChangeValueOf<Events> {
  using type = std::monostate;
};
}  // namespace local

using RenewalReport = local::RenewalReport;

// How long an event the service refused waits to be sent again, on the service's clock: `first`
// after its first refusal, twice as long after each further one, never more than `longest`.
struct RedeliveryWaits {
  std::chrono::milliseconds first = std::chrono::seconds(10);
  std::chrono::milliseconds longest = std::chrono::minutes(10);
};

class LocalProvider final : public PaymentProvider {
 public:
  // Delivers one signed event through the service's webhook path (the code behind POST
  // /stripe/webhook). Throws if the service did not accept it (the webhook answered non-2xx).
  using DeliverEvent = std::function<boost::asio::awaitable<void>(std::string stripe_signature,
                                                                  std::string payload)>;

  // `base_url` is where the service is reached (e.g. "http://127.0.0.1:8000"): the checkout and
  // portal URLs point there.
  // Its objects are kept in `db` under `account` (LOCAL_PAYMENTS_ACCOUNT).
  LocalProvider(const Catalog& catalog, PriceMap prices, const Clock& clock, Db& db,
                std::string account, std::string webhook_secret, std::string base_url,
                DeliverEvent deliver, RedeliveryWaits redelivery = {});

  // Loads the objects saved before (once, at start-up, before any other call), then delivers
  // the events that were left undelivered; one the service refuses is logged and kept. Throws
  // if an object cannot be read, or a live subscription's plan is no longer in the catalog.
  boost::asio::awaitable<void> resume();
  // As Stripe retries a delivery the service refused: every `tick`, sends again each refused
  // event whose wait (RedeliveryWaits) is over, until stop(); until the service takes it, however
  // long that takes. After a failed save, it first reads every object again (as the next change
  // would). Never throws.
  boost::asio::awaitable<void> redeliver(std::chrono::milliseconds tick = std::chrono::seconds(1));
  // Ends redeliver(), now and from now on.
  void stop() { waits_.stop(); }

  boost::asio::awaitable<std::string> create_checkout_session(CheckoutRequest request) override;
  boost::asio::awaitable<std::string> create_portal_session(std::string customer_id,
                                                            std::string return_url) override;
  boost::asio::awaitable<Subscription> get_subscription(std::string id) override;
  boost::asio::awaitable<Subscription> cancel_at_period_end(std::string id) override;
  boost::asio::awaitable<Subscription> change_price(std::string id, std::string price_id,
                                                    PlanType plan_type,
                                                    BillingCycle cycle) override;
  boost::asio::awaitable<Page<Invoice>> list_invoices(std::string customer_id,
                                                      PageRequest page) override;
  boost::asio::awaitable<Page<Customer>> list_customers(PageRequest page) override;
  boost::asio::awaitable<Page<Subscription>> list_subscriptions(PageRequest page) override;
  boost::asio::awaitable<std::optional<ChargeDetails>> invoice_charge(
      std::string invoice_id) override;
  boost::asio::awaitable<void> check_health() override;

  // The provider's clock: the service's, plus everything advance() added. Objects and events are
  // dated by it; signatures by the service's clock, which the webhook checks them against.
  TimePoint now() const;
  // Moves the provider's clock forward by `by` (not negative), then expires the checkouts left
  // unpaid for a day and ends, renews or fails each subscription whose period is over, delivering
  // the events of each.
  boost::asio::awaitable<RenewalReport> advance(std::chrono::seconds by);

  // What the pages do (payments/local/routes.cpp); failures are ApiErrors for the page to show.
  struct PayableCheckout {
    local::CheckoutSession session;
    Cents due = 0;  // what paying it charges now (Ledger::due_at_checkout)
  };
  PayableCheckout payable_checkout(std::string_view id) const;
  boost::asio::awaitable<local::CheckoutSession> pay_checkout(std::string session_id,
                                                              local::Card card);
  boost::asio::awaitable<local::CheckoutSession> confirm_checkout(std::string session_id);
  local::PortalView portal(std::string_view id) const;
  // The payment awaiting the card's authentication, if it asks for one (nothing paid yet).
  boost::asio::awaitable<std::optional<local::PaymentToConfirm>> pay_invoice(std::string portal_id,
                                                                             std::string invoice_id,
                                                                             local::Card card);
  boost::asio::awaitable<void> confirm_invoice_payment(std::string portal_id,
                                                       std::string invoice_id);
  boost::asio::awaitable<void> update_card(std::string portal_id, local::Card card);
  boost::asio::awaitable<Subscription> cancel_from_portal(std::string portal_id,
                                                          std::string subscription_id);

 private:
  struct PendingEvent {
    std::string id;
    std::string payload;
    bool in_flight = false;  // a deliver() is sending it
    int refusals = 0;        // by the service, so far
    TimePoint retry_at{};    // after a refusal: when redeliver() sends it again
  };
  struct Refusal {
    std::string event_id;
    std::exception_ptr error;
  };
  // A change made on a copy of the ledger, seen by no one until saved: the ledger and clock
  // after it, the second of its events (if it made any) and the events, then what differs from
  // what was saved last: the objects to save (each with a new version), and the kind and id of
  // each to delete.
  struct Unsaved {
    local::Ledger ledger;
    std::chrono::seconds offset{0};
    std::optional<std::chrono::sys_seconds> events_at;
    std::vector<PendingEvent> events;
    std::vector<LocalObject> objects;
    std::vector<std::pair<std::string, std::string>> removed;
  };
  // What `Change` returns, less its events.
  template <class Change>
  using ChangeValue =
      typename local::ChangeValueOf<std::invoke_result_t<Change&, local::Ledger&, TimePoint>>::type;
  // A change's value, the refusal to throw once it is saved, and the change.
  template <class T>
  struct Draft {
    T value;
    std::optional<ApiError> refusal;
    Unsaved unsaved;
  };

  TimePoint now_locked() const;
  // Runs change(ledger, provider now) under the mutex; being no coroutine, it cannot hold the
  // mutex across a co_await.
  template <class Change>
  auto locked(Change change);
  // A change's clock offset: the provider's moved by `advance`, and on by a second more (for
  // good) if the last change that made events was made in that same second (whether this one
  // makes any is known only once it is made). Stripe's `created` counts whole seconds and the
  // webhook orders a plan's events by it; so dated, each change's events are newer than the last
  // change's, whatever order their deliveries (which overlap when two changes are made at once)
  // arrive in.
  std::chrono::seconds change_offset_locked(TimePoint service_now,
                                            std::chrono::seconds advance) const;
  // Makes a change and saves it, one change at a time (changes_, held until it is saved): runs
  // change(ledger, now) on a copy of the ledger, at the clock moved by `advance`, saves what
  // differs, then publishes it (readers see the change only once it is saved) and delivers the
  // pending events. Returns what the change returned, less its events. A change that throws, or
  // whose save fails, changes nothing: what its caller was told failed does not happen later.
  // An event the service refuses is logged and stays pending for redeliver(): the change is
  // made, as a call to Stripe's API succeeds whatever its webhook answers (a page says "paid"
  // once paid).
  template <class Change>
  boost::asio::awaitable<ChangeValue<Change>> change(
      Change change, std::chrono::seconds advance = std::chrono::seconds(0));
  // The change on a copy, under the mutex, with what it leaves to save (list_unsaved_locked).
  template <class Change>
  Draft<ChangeValue<Change>> drafted(Change change, std::chrono::seconds advance);
  // Under the mutex: fills the change's objects and removed ones.
  void list_unsaved_locked(Unsaved& change);
  // Saves the change's objects in one transaction. If that fails, the next change first reads
  // every object again (reload()): a commit that failed late may have been made.
  boost::asio::awaitable<void> save(const Unsaved& change);
  // Makes the saved change the provider's, and takes every pending event to deliver.
  std::vector<PendingEvent> publish(Unsaved change);
  // Replaces what the provider holds by what the database holds (under the turn).
  boost::asio::awaitable<void> reload();
  boost::asio::awaitable<std::vector<LocalObject>> read_objects();
  // Under the mutex: makes `objects` (as saved) the provider's ledger, clock and pending events,
  // less the events `delivered` since they were read. Throws std::runtime_error naming an object
  // it cannot read.
  void load_locked(const std::vector<LocalObject>& objects,
                   const std::set<std::string, std::less<>>& delivered);
  // Under the mutex: the saved pending events no deliver() is sending (of those, the ones due to
  // be sent again by `due_by`, if given), marked as being sent.
  std::vector<PendingEvent> take_locked(std::optional<TimePoint> due_by);
  std::vector<PendingEvent> take(std::optional<TimePoint> due_by);  // the same, taking the mutex
  // Signs each of `events` (taken by take_locked) at the service's now and delivers them one
  // after the other, oldest first; each accepted one is then dropped from the pending ones and
  // the database. One the service refuses is logged and stays pending, to be sent again once
  // its wait is over, and does not hold back the others (the webhook orders events by their
  // `created`).
  boost::asio::awaitable<void> deliver(std::vector<PendingEvent> events);
  // An event the service refused: it stays pending, tried again by redeliver(), with the next
  // change, or at the next start.
  static void log_undelivered(const Refusal& refusal);

  const Clock& clock_;
  Db& db_;
  std::string account_;
  WebhookSignature signature_;
  std::string base_url_;
  DeliverEvent deliver_;
  RedeliveryWaits redelivery_;
  StoppableWaits waits_;        // redeliver()'s
  AsyncMutex changes_;          // held by a change until it is saved
  bool reload_needed_ = false;  // under changes_: after a failed save
  mutable std::mutex mutex_;    // never held across a co_await
  std::chrono::seconds offset_{0};
  std::chrono::sys_seconds last_events_at_{};  // the second of the last change that made events
  local::Ledger ledger_;                       // as saved last (or read back)
  std::deque<PendingEvent> pending_;           // accepted by no webhook yet, oldest first
  // While reload() reads the objects: the events accepted meanwhile, which it may still read.
  std::optional<std::set<std::string, std::less<>>> delivered_while_reloading_;
  std::int64_t version_ = 0;  // of the latest change
};

// The checkout and portal pages (Policy::open(): their unguessable ids are the capability) and
// the admin's POST /stripe/local/clock/advance.
void add_local_payment_routes(Router& router, LocalProvider& provider);

}  // namespace billing
