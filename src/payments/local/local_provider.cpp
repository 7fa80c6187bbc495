#include "payments/local/local_provider.hpp"

#include <algorithm>
#include <exception>
#include <set>
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

TimePoint LocalProvider::change_time_locked(std::chrono::seconds advance) {
  offset_ += advance;
  const auto second = std::chrono::floor<std::chrono::seconds>(now_locked());
  if (second <= last_events_at_) offset_ += last_events_at_ + std::chrono::seconds(1) - second;
  return now_locked();
}

template <class Change>
LocalProvider::Made<LocalProvider::ChangeValue<Change>> LocalProvider::changing(
    Change fn, std::chrono::seconds advance) {
  std::lock_guard lock(mutex_);
  local::Ledger ledger_before = ledger_;
  const std::chrono::seconds offset_before = offset_;
  try {
    const TimePoint now = change_time_locked(advance);
    auto result = fn(ledger_, now);
    const auto made = [&](auto value, local::Events events,
                          std::optional<ApiError> refusal = std::nullopt) {
      if (!events.empty()) last_events_at_ = std::chrono::floor<std::chrono::seconds>(now);
      Made<ChangeValue<Change>> out{std::move(value), unsaved_locked(std::move(events)),
                                    std::move(refusal)};
      out.unsaved.ledger_before.emplace(std::move(ledger_before));
      out.unsaved.offset_before = offset_before;
      return out;
    };
    if constexpr (std::is_same_v<decltype(result), local::Events>)
      return made(std::monostate{}, std::move(result));
    else if constexpr (requires { result.events; })
      return made(std::move(result.value), std::move(result.events), std::move(result.refusal));
    else
      return made(std::move(result), {});
  } catch (...) {
    // A change that throws halfway (a renewal of many subscriptions, say) changes nothing.
    ledger_ = std::move(ledger_before);
    offset_ = offset_before;
    throw;
  }
}

template <class Change>
asio::awaitable<LocalProvider::ChangeValue<Change>> LocalProvider::change(
    Change fn, std::chrono::seconds advance) {
  AsyncMutex::Turn turn = co_await changes_.lock();
  auto made = changing(std::move(fn), advance);
  co_await save(made.unsaved);
  turn.release();
  co_await deliver(take_saved(made.unsaved));
  if (made.refusal) throw std::move(*made.refusal);
  co_return std::move(made.value);
}

LocalProvider::Unsaved LocalProvider::unsaved_locked(local::Events events) {
  Unsaved unsaved;
  for (auto& event : events) {
    unsaved.events.push_back(event.id);
    pending_.push_back({std::move(event.id), std::move(event.payload)});
  }
  auto objects = ledger_.objects();
  objects.push_back({.kind = std::string(kClock),
                     .id = std::string(kClockId),
                     .data = std::to_string(offset_.count())});
  for (const auto& event : pending_)
    objects.push_back({.kind = std::string(kEvent), .id = event.id, .data = event.payload});
  ++version_;
  std::set<std::pair<std::string_view, std::string_view>> present;
  for (const auto& object : objects) present.emplace(object.kind, object.id);
  // What the ledger dropped (expired portal sessions); events go once delivered (deliver()).
  for (auto it = saved_.begin(); it != saved_.end();) {
    if (it->first.first == kEvent || present.contains(it->first)) {
      ++it;
      continue;
    }
    unsaved.removed.push_back(it->first);
    it = saved_.erase(it);
  }
  for (auto& object : objects) {
    auto& saved = saved_[{object.kind, object.id}];
    if (saved == object.data) continue;
    saved = object.data;
    object.version = version_;
    unsaved.objects.push_back(std::move(object));
  }
  return unsaved;
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

asio::awaitable<void> LocalProvider::save(Unsaved& change) {
  try {
    co_await db_.transact([&](Tx& tx) {
      auto& repo = tx.get<LocalProviderRepo>();
      for (const auto& object : change.objects) repo.save_local_object(account_, object);
      for (const auto& [kind, id] : change.removed) repo.delete_local_object(account_, kind, id);
    });
  } catch (...) {
    // Not saved: undone, and the next change saves every object again.
    std::lock_guard lock(mutex_);
    ledger_ = std::move(*change.ledger_before);
    offset_ = change.offset_before;
    std::erase_if(pending_, [&](const PendingEvent& event) {
      return std::ranges::find(change.events, event.id) != change.events.end();
    });
    saved_.clear();
    throw;
  }
}

std::vector<LocalProvider::PendingEvent> LocalProvider::take_saved(const Unsaved& change) {
  // In the same hold of the mutex: redeliver() cannot take the change's events from its call.
  std::lock_guard lock(mutex_);
  for (const auto& object : change.objects)
    if (object.kind == kEvent)
      for (auto& event : pending_)
        if (event.id == object.id) event.saved = true;
  return take_locked(std::nullopt);
}

asio::awaitable<void> LocalProvider::redeliver(std::chrono::milliseconds tick) {
  while (co_await waits_.wait(tick)) {
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
    if (event.saved && !event.in_flight && (!due_by || event.retry_at <= *due_by)) {
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
      saved_.erase({std::string(kEvent), id});
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
  const auto objects = co_await db_.read(
      [&](Tx& tx) { return tx.get<LocalProviderRepo>().local_objects(account_); });
  {
    std::lock_guard lock(mutex_);
    for (const auto& object : objects) {
      try {
        if (object.kind == kClock) {
          offset_ = std::chrono::seconds(std::stoll(object.data));
          // The last change may have been made in this very second, before the restart.
          last_events_at_ = std::chrono::floor<std::chrono::seconds>(now_locked());
        } else if (object.kind == kEvent)
          pending_.push_back({.id = object.id, .payload = object.data, .saved = true});
        else
          ledger_.restore(object);
      } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format(
            "the local provider's saved {} {} (LOCAL_PAYMENTS_ACCOUNT {}) cannot be read: {}",
            object.kind, object.id, account_, e.what()));
      }
      saved_[{object.kind, object.id}] = object.data;
      version_ = std::max(version_, object.version);
    }
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
