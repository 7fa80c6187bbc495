#!/usr/bin/env bash
# What PostgreSQL itself can do with the webhook writer's statements, shaped four ways, on
# billing's own schema: how far batching the SQL across a commit batch's events could take the
# PostgreSQL backend (the payments issue asks 10,000 events/s of it). No billing process runs:
# pgbench plays the writer lanes, which costs far less CPU than billing does, so these figures
# are ceilings, compared with each other in the same run.
#
#   bash bench/postgres_batching.sh               # batches of 13 events, 4 clients, 10 s a run
#   BATCH=26 DURATION=20 ROUNDS=3 bash bench/postgres_batching.sh
#
# Every transaction is one commit batch of BATCH events on random plans of 3,000 (half paid
# invoices, half failed ones), each with an inbox row (1.4 kB payload), a plan read and status
# update, a history row and an audit row, and a payment for the paid half:
#   per-event    each event's statements one after another (billing before 91506e5)
#   writes-last  each event's claim and plan read, then every write as one statement per kind
#                (billing since 91506e5 does this, its payment insert still per event)
#   set-based    one statement per kind for the whole batch, reads included
# plus appends-last (history and audit rows last, the rest per event) for scale.
# events/s = transactions/s x BATCH; ratio against per-event in the same round.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$REPO/build-release-webhooks"
BATCH="${BATCH:-13}"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-2}"
CLIENTS=4  # billing's PostgreSQL writer lanes

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'postgres_batching.sh: %s\n' "$*" >&2; exit 1; }
for tool in cmake ninja pgbench psql; do command -v "$tool" >/dev/null || die "needs $tool"; done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/billing-pg-batching.XXXXXX")"
chmod 711 "$TMP"  # the PostgreSQL server runs as postgres and lives in $TMP/pg
PG_STARTED=0
cleanup() {
  ((PG_STARTED)) && bash "$REPO/scripts/postgres.sh" stop "$TMP/pg" || true
  rm -rf "$TMP"
}
trap cleanup EXIT

say "Release build of billing (for its migrations) in $BUILD"
cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBILLING_WERROR=ON >"$TMP/cmake.log" 2>&1 ||
  { tail -n 30 "$TMP/cmake.log" >&2; die "cmake failed"; }
ninja -C "$BUILD" -j2 billing >"$TMP/build.log" 2>&1 || { tail -n 40 "$TMP/build.log" >&2; die "the build failed"; }

PG_STARTED=1
URL="$(bash "$REPO/scripts/postgres.sh" start "$TMP/pg")" || die "scripts/postgres.sh start failed"
DATABASE_URL="$URL" JWT_SECRET_KEY=bench CSRF_SECRET_KEY=bench "$BUILD/billing" migrate >"$TMP/migrate.log" 2>&1 ||
  { cat "$TMP/migrate.log" >&2; die "migrate failed"; }
psql "$URL" -q -v ON_ERROR_STOP=1 -c "
  INSERT INTO hospitals SELECT 'h' || g, NULL, now() FROM generate_series(1, 3000) g;
  INSERT INTO plans (id, hospital_id, plan_type, status, max_agents, selected_services,
                     stripe_customer_id, stripe_subscription_id, billing_cycle, created_at, updated_at)
    SELECT 'plan_' || g, 'h' || g, 'lite', 'active', 5, 'privacy,checklist', 'cus_' || g, 'sub_' || g,
           'monthly', now(), now() FROM generate_series(1, 3000) g;
  ANALYZE;" >/dev/null

# The four transaction scripts, for pgbench.
BATCH="$BATCH" OUT="$TMP" /usr/bin/python3 - <<'EOF'
import os
n, out = int(os.environ["BATCH"]), os.environ["OUT"]
hs = [f"'h' || :h{i}::text" for i in range(n)]
every = "ARRAY[" + ", ".join(hs) + "]"
paid = "ARRAY[" + ", ".join(h for i, h in enumerate(hs) if i % 2 == 0) + "]"
head = "".join(f"\\set h{i} random(1, 3000)\n" for i in range(n)) + "BEGIN;\n"
cols = ("id, hospital_id, individual_id, plan_type, status, max_agents, selected_services, "
        "stripe_customer_id, stripe_subscription_id, billing_cycle, pending_plan_type, "
        "cancel_at_period_end, last_event_created, created_at, updated_at")
upsert = (" ON CONFLICT (event_id) DO UPDATE SET status = 'processed', attempts = "
          "webhook_events.attempts + 1, last_error = NULL, processed_at = excluded.processed_at "
          "WHERE webhook_events.status <> 'processed' RETURNING attempts;")
inbox_row = ("'evt_' || gen_random_uuid(), 'invoice.payment_succeeded', 1700000000, "
             "repeat('x', 1400), 'processed', 1, now(), now()")
inbox_cols = ("INSERT INTO webhook_events (event_id, event_type, created, payload, status, "
              "attempts, received_at, processed_at) ")
pay_cols = ("INSERT INTO payments (stripe_customer_id, stripe_subscription_id, stripe_invoice_id, "
            "stripe_payment_intent_id, stripe_charge_id, role, role_entity_id, plan_type, cycle, "
            "amount, currency, paid_at, created_at) ")
pay_row = lambda h: (f"'cus_x', 'sub_x', 'in_' || gen_random_uuid(), 'pi_x', 'ch_x', 'hospital', "
                     f"{h}, 'lite', 'monthly', 2900, 'usd', now(), now()")
flip = ("status = CASE WHEN status = 'active' THEN 'suspended' ELSE 'active' END, "
        "last_event_created = 1700000000, updated_at = now()")
hist_cols = ("INSERT INTO plan_update_history (plan_id, hospital_id, individual_id, changed_by, "
             "changed_at, from_plan_type, to_plan_type, from_status, to_status, from_services, "
             "to_services, reason) ")
hist_row = lambda h: (f"'plan_x', {h}, NULL, 'stripe', now(), 'lite', 'lite', 'active', "
                      f"'suspended', 'privacy', 'privacy', 'invoice.payment_failed evt_x'")
audit_cols = "INSERT INTO stripe_audit (event_id, event_type, payload, status, note, created_at) "
audit_row = ("'evt_x', 'invoice.payment_succeeded', '{\"id\": \"evt_x\", \"type\": "
             "\"invoice.payment_succeeded\"}', 'ok', 'payment recorded', now()")
def per_event(i, h, appends=True, writes=True):
    s = inbox_cols + f"VALUES ({inbox_row})" + upsert + "\n"
    if writes and i % 2 == 0:
        s += pay_cols + f"VALUES ({pay_row(h)}) ON CONFLICT (stripe_invoice_id) DO NOTHING;\n"
    s += f"SELECT {cols} FROM plans WHERE hospital_id = {h};\n"
    if writes:
        s += f"UPDATE plans SET {flip} WHERE hospital_id = {h};\n"
    if appends:
        s += hist_cols + f"VALUES ({hist_row(h)});\n" + audit_cols + f"VALUES ({audit_row});\n"
    return s
pays = pay_cols + f"SELECT {pay_row('h')} FROM unnest({paid}) h ON CONFLICT (stripe_invoice_id) DO NOTHING;\n"
update = (f"UPDATE plans SET {flip} FROM (SELECT DISTINCT h FROM unnest({every}) h) v "
          "WHERE plans.hospital_id = v.h;\n")
appends = (hist_cols + f"SELECT {hist_row('h')} FROM unnest({every}) h;\n" + audit_cols +
           f"SELECT {audit_row} FROM generate_series(1, {n});\n")
scripts = {
    "per-event": "".join(per_event(i, h) for i, h in enumerate(hs)),
    "appends-last": "".join(per_event(i, h, appends=False) for i, h in enumerate(hs)) + appends,
    "writes-last": "".join(per_event(i, h, appends=False, writes=False) for i, h in enumerate(hs))
                   + pays + update + appends,
    "set-based": inbox_cols + f"SELECT {inbox_row} FROM generate_series(1, {n})" + upsert + "\n"
                 + f"SELECT {cols} FROM plans WHERE hospital_id = ANY({every});\n"
                 + pays + update + appends,
}
for name, body in scripts.items():
    with open(f"{out}/{name}.sql", "w") as f:
        f.write(head + body + "COMMIT;\n")
EOF

SHAPES=(per-event appends-last writes-last set-based)
declare -A RESULT
for ((round = 1; round <= ROUNDS; round++)); do
  for shape in "${SHAPES[@]}"; do
    say "round $round: $shape"
    tps="$(pgbench -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -f "$TMP/$shape.sql" "$URL" 2>"$TMP/pgbench.err" |
      sed -n 's/^tps = \([0-9.]*\) .*/\1/p')"
    [[ -n "$tps" ]] || { cat "$TMP/pgbench.err" >&2; die "pgbench failed on $shape"; }
    RESULT[$shape,$round]="$(awk -v t="$tps" -v n="$BATCH" 'BEGIN { printf "%.0f", t * n }')"
  done
done

printf '\nPostgreSQL alone, %s events a transaction, %s clients, %s s a run (events/s; ratio to per-event in the same round)\n' \
  "$BATCH" "$CLIENTS" "$DURATION"
printf '%-14s' shape
for ((round = 1; round <= ROUNDS; round++)); do printf '%18s' "round $round"; done
printf '\n'
for shape in "${SHAPES[@]}"; do
  printf '%-14s' "$shape"
  for ((round = 1; round <= ROUNDS; round++)); do
    printf '%11s (%4s)' "${RESULT[$shape,$round]}" \
      "$(awk -v a="${RESULT[$shape,$round]}" -v b="${RESULT[per-event,$round]}" 'BEGIN { printf "%.2f", a / b }')"
  done
  printf '\n'
done
