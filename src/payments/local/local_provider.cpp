#include "payments/local/local_provider.hpp"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <type_traits>

#include <fmt/format.h>

#include "kit/api_error.hpp"
#include "kit/log.hpp"

namespace billing {
namespace {

namespace asio = boost::asio;

// Stored objects the ledger does not keep: the provider's clock and its undelivered events.
constexpr std::string_view kClock = "clock";
constexpr std::string_view kClockId = "offset";
constexpr std::string_view kEvent = "event";

}  // namespace

LocalProvider::LocalProvider(const Catalog& catalog, PriceMap prices, const Clock& clock, Db& db,
                             std::string account, std::string webhook_secret, std::string base_url,
                             DeliverEvent deliver, RedeliveryWaits redelivery)
    : clock_(clock),
      db_(db),
      account_(std::move(account)),
      signature_(webhook_secret),
      base_url_(std::move(base_url)),
      deliver_(std::move(deliver)),
      redelivery_(redelivery),
      ledger_(catalog, std::move(prices)) {}

TimePoint LocalProvider::now_locked() const {
  return clock_.now() + offset_;
}

TimePoint LocalProvider::now() const {
  std::lock_guard lock(mutex_);
  return now_locked();
}

template <class Change>
auto LocalProvider::locked(Change change) {
  std::lock_guard lock(mutex_);
  return change(ledger_, now_locked());
}

std::chrono::seconds LocalProvider::change_offset_locked(TimePoint service_now,
                                                         std::chrono::seconds advance) const {
  std::chrono::seconds offset = offset_ + advance;
  const auto second = std::chrono::floor<std::chrono::seconds>(service_now + offset);
  if (second <= last_events_at_) offset += last_events_at_ + std::chrono::seconds(1) - second;
  return offset;
}

template <class Change>
LocalProvider::Draft<LocalProvider::ChangeValue<Change>> LocalProvider::drafted(
    Change fn, std::chrono::seconds advance) {
  std::lock_guard lock(mutex_);
  const TimePoint service_now = clock_.now();
  Unsaved unsaved{.ledger = ledger_, .offset = change_offset_locked(service_now, advance)};
  const TimePoint now = service_now + unsaved.offset;
  auto result = fn(unsaved.ledger, now);
  const auto draft = [&](auto value, local::Events events,
                         std::optional<ApiError> refusal = std::nullopt) {
    if (!events.empty()) unsaved.events_at = std::chrono::floor<std::chrono::seconds>(now);
    for (auto& event : events)
      unsaved.events.push_back({.id = std::move(event.id), .payload = std::move(event.payload)});
    list_unsaved_locked(unsaved);
    return Draft<ChangeValue<Change>>{std::move(value), std::move(refusal), std::move(unsaved)};
  };
  if constexpr (std::is_same_v<decltype(result), local::Events>)
    return draft(std::monostate{}, std::move(result));
  else if constexpr (requires { result.events; })
    return draft(std::move(result.value), std::move(result.events), std::move(result.refusal));
  else
    return draft(std::move(result), {});
}

template <class Change>
asio::awaitable<LocalProvider::ChangeValue<Change>> LocalProvider::change(
    Change fn, std::chrono::seconds advance) {
  AsyncMutex::Turn turn = co_await changes_.lock();
  if (reload_needed_) co_await reload();
  auto draft = drafted(std::move(fn), advance);
  co_await save(draft.unsaved);
  auto due = publish(std::move(draft.unsaved));
  turn.release();
  co_await deliver(std::move(due));
  if (draft.refusal) throw std::move(*draft.refusal);
  co_return std::move(draft.value);
}

void LocalProvider::list_unsaved_locked(Unsaved& unsaved) {
  // ledger_ is what was saved last (or read back): only what the change made differ is written.
  unsaved.ledger.changes_from(ledger_, unsaved.objects, unsaved.removed);
  if (unsaved.offset != offset_)
    unsaved.objects.push_back({.kind = std::string(kClock),
                               .id = std::string(kClockId),
                               .data = std::to_string(unsaved.offset.count())});
  for (const auto& event : unsaved.events)
    unsaved.objects.push_back({.kind = std::string(kEvent), .id = event.id, .data = event.payload});
  ++version_;
  for (auto& object : unsaved.objects) object.version = version_;
}

asio::awaitable<void> LocalProvider::save(const Unsaved& change) {
  try {
    co_await db_.transact([&](Tx& tx) {
      auto& repo = tx.get<LocalProviderRepo>();
      for (const auto& object : change.objects) repo.save_local_object(account_, object);
      for (const auto& [kind, id] : change.removed) repo.delete_local_object(account_, kind, id);
    });
  } catch (...) {
    // Most likely not saved, and so not published; but a commit that failed late (a connection
    // lost in COMMIT) may have been: the next change reads the database again first.
    reload_needed_ = true;
    throw;
  }
}

std::vector<LocalProvider::PendingEvent> LocalProvider::publish(Unsaved change) {
  // In one hold of the mutex: readers see the change whole, and redeliver() cannot take its
  // events from this call.
  std::lock_guard lock(mutex_);
  ledger_ = std::move(change.ledger);
  offset_ = change.offset;
  if (change.events_at) last_events_at_ = *change.events_at;
  for (auto& event : change.events) pending_.push_back(std::move(event));
  return take_locked(std::nullopt);
}

asio::awaitable<void> LocalProvider::reload() {
  {
    std::lock_guard lock(mutex_);
    delivered_while_reloading_.emplace();
  }
  std::vector<LocalObject> objects;
  try {
    objects = co_await read_objects();
  } catch (...) {
    std::lock_guard lock(mutex_);
    delivered_while_reloading_.reset();
    throw;
  }
  std::lock_guard lock(mutex_);
  const auto delivered = std::move(*delivered_while_reloading_);
  delivered_while_reloading_.reset();
  load_locked(objects, delivered);
  reload_needed_ = false;
}

asio::awaitable<std::vector<LocalObject>> LocalProvider::read_objects() {
  co_return co_await db_.read(
      [&](Tx& tx) { return tx.get<LocalProviderRepo>().local_objects(account_); });
}

void LocalProvider::load_locked(const std::vector<LocalObject>& objects,
                                const std::set<std::string, std::less<>>& delivered) {
  local::Ledger ledger = ledger_.emptied();
  std::chrono::seconds offset{0};
  std::deque<PendingEvent> pending;
  for (const auto& object : objects) {
    try {
      if (object.kind == kClock) {
        offset = std::chrono::seconds(std::stoll(object.data));
      } else if (object.kind == kEvent) {
        // One accepted since the objects were read is gone; one a deliver() is sending keeps its
        // state (that call drops it once accepted).
        if (delivered.contains(object.id)) continue;
        const auto known = std::ranges::find(pending_, object.id, &PendingEvent::id);
        pending.push_back(known != pending_.end()
                              ? *known
                              : PendingEvent{.id = object.id, .payload = object.data});
      } else {
        ledger.restore(object);
      }
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format(
          "the local provider's saved {} {} (LOCAL_PAYMENTS_ACCOUNT {}) cannot be read: {}",
          object.kind, object.id, account_, e.what()));
    }
    version_ = std::max(version_, object.version);
  }
  ledger_ = std::move(ledger);
  offset_ = offset;
  pending_ = std::move(pending);
  // The last change may have been made in this very second, before a restart.
  last_events_at_ =
      std::max(last_events_at_, std::chrono::floor<std::chrono::seconds>(now_locked()));
}

void LocalProvider::log_undelivered(const Refusal& refusal) {
  std::string reason = "unknown";
  try {
    std::rethrow_exception(refusal.error);
  } catch (const ApiError& e) {
    reason = "the webhook answered " + std::to_string(e.status);
  } catch (const std::exception& e) {
    reason = e.what();
  } catch (...) {
  }
  log_event(spdlog::level::warn, "local provider event not delivered yet: sent again later", "",
            {{"event_id", refusal.event_id}, {"error", reason}});
}

asio::awaitable<void> LocalProvider::redeliver(std::chrono::milliseconds tick) {
  while (co_await waits_.wait(tick)) {
    try {
      // After a failed save, without waiting for the next change: a commit that failed late may
      // have made it, and its events are then in the database only.
      AsyncMutex::Turn turn = co_await changes_.lock();
      if (reload_needed_) co_await reload();
    } catch (const std::exception& e) {
      log_event(spdlog::level::warn, "local provider objects not read again", "",
                {{"error", e.what()}});
    }
    auto due = take(clock_.now());
    if (due.empty()) continue;
    try {
      co_await deliver(std::move(due));
    } catch (const std::exception& e) {
      log_event(spdlog::level::warn, "local provider events not delivered", "",
                {{"error", e.what()}});
    }
  }
}

std::vector<LocalProvider::PendingEvent> LocalProvider::take_locked(
    std::optional<TimePoint> due_by) {
  std::vector<PendingEvent> events;
  for (auto& event : pending_)
    if (!event.in_flight && (!due_by || event.retry_at <= *due_by)) {
      event.in_flight = true;
      events.push_back(event);
    }
  return events;
}

std::vector<LocalProvider::PendingEvent> LocalProvider::take(std::optional<TimePoint> due_by) {
  std::lock_guard lock(mutex_);
  return take_locked(due_by);
}

asio::awaitable<void> LocalProvider::deliver(std::vector<PendingEvent> events) {
  std::vector<std::string> delivered;
  std::vector<Refusal> refusals;
  for (auto& event : events) {
    try {
      // The webhook checks `t` against the service's clock, which advance() does not move.
      co_await deliver_(signature_.sign(event.payload, clock_.now()), event.payload);
      delivered.push_back(std::move(event.id));
    } catch (...) {
      refusals.push_back({std::move(event.id), std::current_exception()});
    }
  }
  {
    std::lock_guard lock(mutex_);
    for (const auto& id : delivered) {
      std::erase_if(pending_, [&](const PendingEvent& e) { return e.id == id; });
      if (delivered_while_reloading_) delivered_while_reloading_->insert(id);
    }
    const auto now = clock_.now();
    for (const auto& refusal : refusals)
      for (auto& event : pending_)
        if (event.id == refusal.event_id) {
          event.in_flight = false;
          // Stripe's retries wait longer each time, too.
          const auto wait = redelivery_.first * (std::int64_t{1} << std::min(event.refusals, 20));
          event.retry_at = now + std::min<std::chrono::milliseconds>(wait, redelivery_.longest);
          ++event.refusals;
        }
  }
  for (const auto& refusal : refusals) log_undelivered(refusal);
  if (delivered.empty()) co_return;
  try {
    co_await db_.transact([&](Tx& tx) {
      auto& repo = tx.get<LocalProviderRepo>();
      for (const auto& id : delivered) repo.delete_local_object(account_, kEvent, id);
    });
  } catch (const std::exception& e) {
    // They went out: the next start sends them again, and the webhook applies each id once.
    log_event(spdlog::level::warn, "local provider delivered events not forgotten", "",
              {{"events", std::to_string(delivered.size())}, {"error", e.what()}});
  }
}

asio::awaitable<void> LocalProvider::resume() {
  const auto objects = co_await read_objects();
  {
    std::lock_guard lock(mutex_);
    load_locked(objects, {});
    try {
      ledger_.require_offered_prices();
    } catch (const std::exception& e) {
      throw std::runtime_error(
          fmt::format("the local provider (LOCAL_PAYMENTS_ACCOUNT {}): {}", account_, e.what()));
    }
  }
  co_await deliver(take(std::nullopt));
}

asio::awaitable<std::string> LocalProvider::create_checkout_session(CheckoutRequest request) {
  auto id = co_await change([&](local::Ledger& ledger, TimePoint now) {
    return ledger.open_checkout(std::move(request), now).id;
  });
  co_return base_url_ + "/local-pay/checkout/" + id;
}

asio::awaitable<std::string> LocalProvider::create_portal_session(std::string customer_id,
                                                                  std::string return_url) {
  auto id = co_await change([&](local::Ledger& ledger, TimePoint now) {
    return ledger.open_portal(customer_id, std::move(return_url), now).id;
  });
  co_return base_url_ + "/local-pay/portal/" + id;
}

asio::awaitable<Subscription> LocalProvider::get_subscription(std::string id) {
  co_return locked([&](local::Ledger& ledger, TimePoint) { return ledger.subscription(id); });
}

asio::awaitable<Subscription> LocalProvider::cancel_at_period_end(std::string id) {
  co_return co_await change(
      [&](local::Ledger& ledger, TimePoint now) { return ledger.cancel_at_period_end(id, now); });
}

asio::awaitable<Subscription> LocalProvider::change_price(std::string id, std::string price_id,
                                                          PlanType plan_type, BillingCycle cycle) {
  co_return co_await change([&](local::Ledger& ledger, TimePoint now) {
    return ledger.change_price(id, price_id, plan_type, cycle, now);
  });
}

asio::awaitable<Page<Invoice>> LocalProvider::list_invoices(std::string customer_id,
                                                            PageRequest page) {
  co_return locked(
      [&](local::Ledger& ledger, TimePoint) { return ledger.invoices(customer_id, page); });
}

asio::awaitable<Page<Customer>> LocalProvider::list_customers(PageRequest page) {
  co_return locked([&](local::Ledger& ledger, TimePoint) { return ledger.customers(page); });
}

asio::awaitable<Page<Subscription>> LocalProvider::list_subscriptions(PageRequest page) {
  co_return locked([&](local::Ledger& ledger, TimePoint) { return ledger.subscriptions(page); });
}

asio::awaitable<std::optional<ChargeDetails>> LocalProvider::invoice_charge(std::string) {
  co_return std::nullopt;  // its invoice events carry the charge expanded, fee and card included
}

asio::awaitable<void> LocalProvider::check_health() {
  co_return;  // nothing to reach: it runs inside the service
}

asio::awaitable<RenewalReport> LocalProvider::advance(std::chrono::seconds by) {
  if (by < std::chrono::seconds::zero())
    throw std::invalid_argument("the provider's clock only moves forward");
  co_return co_await change(
      [&](local::Ledger& ledger, TimePoint now) { return ledger.renew_due(now); }, by);
}

LocalProvider::PayableCheckout LocalProvider::payable_checkout(std::string_view id) const {
  std::lock_guard lock(mutex_);
  const local::CheckoutSession& session = ledger_.payable_session(id, now_locked());
  return {session, ledger_.due_at_checkout(session)};
}

asio::awaitable<local::CheckoutSession> LocalProvider::pay_checkout(std::string session_id,
                                                                    local::Card card) {
  co_return co_await change([&](local::Ledger& ledger, TimePoint now) {
    return ledger.pay_checkout(session_id, card, now);
  });
}

asio::awaitable<local::CheckoutSession> LocalProvider::confirm_checkout(std::string session_id) {
  co_return co_await change([&](local::Ledger& ledger, TimePoint now) {
    return ledger.confirm_checkout(session_id, now);
  });
}

local::PortalView LocalProvider::portal(std::string_view id) const {
  std::lock_guard lock(mutex_);
  return ledger_.portal(id, now_locked());
}

asio::awaitable<std::optional<local::PaymentToConfirm>> LocalProvider::pay_invoice(
    std::string portal_id, std::string invoice_id, local::Card card) {
  co_return co_await change([&](local::Ledger& ledger, TimePoint now) {
    return ledger.pay_invoice(portal_id, invoice_id, card, now);
  });
}

asio::awaitable<void> LocalProvider::confirm_invoice_payment(std::string portal_id,
                                                             std::string invoice_id) {
  co_await change([&](local::Ledger& ledger, TimePoint now) {
    return ledger.confirm_invoice_payment(portal_id, invoice_id, now);
  });
}

asio::awaitable<void> LocalProvider::update_card(std::string portal_id, local::Card card) {
  co_await change([&](local::Ledger& ledger, TimePoint now) {
    ledger.update_card(portal_id, card, now);
    return local::Events{};
  });
}

asio::awaitable<Subscription> LocalProvider::cancel_from_portal(std::string portal_id,
                                                                std::string subscription_id) {
  co_return co_await change([&](local::Ledger& ledger, TimePoint now) {
    return ledger.cancel_from_portal(portal_id, subscription_id, now);
  });
}

}  // namespace billing
