#pragma once
// One commit batch of grouped units (storage/group_commit.cpp), read ahead and written behind.
// What bounds a batch is its statements and, on PostgreSQL, their round trips (a few hundred
// microseconds each on a quiet two-core machine, a fraction of that when busy), not its rows; so
// the batch does per table what its units would have done per row:
// - read ahead, before any unit runs: it claims every event its units expect (one upsert), and
//   reads every plan and payment they expect (one query each);
// - written behind, once they are done: their payments, plan changes (each plan once, in its
//   last state), history rows and audit rows, one statement per table, before the commit.
// The units see the batch's state: a later unit reads what an earlier one changed, though the
// database does not hold it yet. What a unit did not announce it reads from the database as usual.
//
// Expected events are kept as the views they are: the units' callers await the batch, so what
// they point into outlives it.
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kit/function_ref.hpp"
#include "payments/types.hpp"
#include "plans/types.hpp"
#include "storage/sql.hpp"

namespace billing {

// `values` as a list of keys, as a statement of the batch takes one: a JSON array for SQLite
// (`IN (SELECT value FROM json_each(?))`), an array literal for PostgreSQL (`= ANY(?::text[])`).
std::string key_list(sql::Dialect dialect, const std::vector<std::string>& values);

class CommitBatch {
 public:
  enum class PlanKey { hospital, individual, subscription, customer };

  // What the units will ask for, told before read_ahead.
  void expect_event(const InboxEvent& event, TimePoint now);
  void expect_payment(std::string_view invoice_id);
  void expect_plan(PlanKey key, std::string_view value);
  void read_ahead(sql::Connection& db);

  // Whether this unit is the one to apply the event (PaymentRepo::claim_event), if the batch
  // claimed it; nullopt if it was not expected.
  std::optional<bool> claim_event(std::string_view event_id);
  // Whether the payment is new (PaymentRepo::record_payment), if the batch read its invoice;
  // nullopt if it was not expected.
  std::optional<bool> record_payment(const Payment& payment);
  void append_audit(const AuditEntry& entry);
  void append_history(const PlanChange& change);

  // The batch's latest state of the first cached plan that `matches`, if any.
  const Plan* cached_plan(FunctionRef<bool(const Plan&)> matches) const;
  // Whether the plans with this key were read ahead: if none is cached, there is none.
  bool plans_read(PlanKey key, std::string_view value) const;
  bool holds_plan(std::string_view plan_id) const;
  // A plan as the database holds it (just read, or just inserted).
  void remember_plan(const Plan& stored);
  // A cached plan's new state, written when the batch ends; false if the plan is not cached.
  bool change_plan(const Plan& after);

  // Everything left to write, before the batch's COMMIT (queued with Connection::run_later).
  void write(sql::Connection& db);

 private:
  struct CachedPlan {
    Plan stored;
    Plan current;
  };
  struct Expected {
    std::vector<std::string> values;
    bool read = false;
  };

  void write_plans(sql::Connection& db);

  struct ExpectedEvent {
    InboxEvent event;
    TimePoint now;
  };
  std::vector<ExpectedEvent> expected_events_;
  std::vector<std::string> claimed_events_;  // claimed by the batch, not yet handed to a unit
  Expected expected_invoices_;
  std::vector<std::string> recorded_invoices_;  // in the database, or added by the batch
  std::array<Expected, 4> expected_plans_;      // by PlanKey
  std::vector<CachedPlan> plans_;
  std::string payment_rows_;
  std::string audit_rows_;
  std::string history_rows_;
};

}  // namespace billing
