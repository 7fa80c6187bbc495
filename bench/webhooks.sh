#!/usr/bin/env bash
# Webhook ingestion benchmark (the payments issue): POST /stripe/webhook on a Release build of the
# working tree, on SQLite and on PostgreSQL, against a bare group-commit loop on SQLite
# (bench/group_commit_baseline.cpp) on the same disk in the same run. See bench/README.md.
#
#   bash bench/webhooks.sh                  # 3,000 hospitals, two rounds, both backends
#   ENTITIES=10000 bash bench/webhooks.sh   # more hospitals (events = 2 x ENTITIES + 10%)
#   ROUNDS=3 bash bench/webhooks.sh         # three measured runs of each target (best one counts)
#   BACKENDS=sqlite bash bench/webhooks.sh  # only SQLite (and the baseline); or BACKENDS=postgres
#   KEEP_TMP=1 bash bench/webhooks.sh       # keep the temp dir (databases, logs, events, wrk output)
#   PERF=1 bash bench/webhooks.sh           # perf record -g on billing during each measured run;
#                                           # prints the top of perf report (slows billing down);
#                                           # PERF_CALLGRAPH=dwarf for full stacks (KEEP_TMP=1),
#                                           # PERF_ALL=1 for the whole machine (PostgreSQL too)
#   PG_STATEMENTS=1 bash bench/webhooks.sh  # pg_stat_statements on PostgreSQL: its top statements
#                                           # by total time in each measured run
#   BILLING_EXTRA_ENV='GLIBC_TUNABLES=...'  # more NAME=value words for billing's env (experiments)
#   BENCH_BEFORE=HEAD bash bench/webhooks.sh  # also a Release build of that git revision ("before",
#                                           # built as bench/load.sh builds its baseline), run in
#                                           # every round beside the working tree's: a change's
#                                           # effect, read as a same-run ratio
#
# Per round and target, on a fresh database:
#   1. billing serve --host 127.0.0.1 --port 0 (env -i: JWT_SECRET_KEY, CSRF_SECRET_KEY,
#      STRIPE_WEBHOOK_SECRET, DATABASE_URL, LOG_LEVEL=warn, PLANS_CONFIG); idle VmRSS read from
#      /proc/<pid>/status once it listens.
#   2. Not measured: one checkout.session.completed per hospital (lite, monthly), sent with the
#      same wrk script; every answer must be 200, and every hospital must then have a plan.
#   3. Measured: a paid (invoice.payment_succeeded) and a failed (invoice.payment_failed) invoice
#      per hospital with distinct `created` values, 10% of them delivered twice (same id, same
#      bytes), shuffled, over 32 connections (wrk -t2 -c32, bench/webhooks.lua). Every event is
#      signed beforehand by bench/webhook_events.py (Debian's /usr/bin/python3, hmac), right
#      before the run that sends it (billing accepts signatures up to 300 s old).
#   4. The tables are checked (sqlite3 / psql); VmHWM is billing's peak RSS over its life (the
#      checkout pre-run included).
#   The baseline gets the same measured events (generated with the same seed: the same bodies,
#   signed afresh) on its own SQLite file, its plans table seeded with one active plan per hospital.
#
# Timing: events/s = deliveries (duplicates included) / seconds, where seconds runs from the first
# request wrk hands out to the last answer it receives, measured in the wrk script with LuaJIT's
# ffi clock_gettime(CLOCK_MONOTONIC) (wrk's own Requests/sec divides by its whole -d and is
# meaningless here). As a cross-check the script also prints, for billing, the span of the
# measured events in webhook_events (min received_at to max processed_at: ISO 8601 text in
# SQLite, timestamptz in PostgreSQL; billing writes both when it claims the event inside the
# batch, so this span leaves out the first request's parsing and the last batch's commit).
# p50/p99 are wrk's latency statistics (done(): latency:percentile(50/99)), per request from its
# write to its answer. wrk "corrects" its latencies for coordinated omission with an interval of
# runtime / (requests / connections), adding synthetic samples to every latency above twice that
# interval; wrk is therefore ended (SIGINT) only once all answers are in AND at least
# 0.1 s x requests / connections have passed, so that only latencies above ~200 ms could be
# touched (every figure that matters here is far below).
#
# Goals (the issue): >= 10,000 events/s on each backend, p99 < 20 ms, billing on SQLite no slower
# than the bare loop (events/s ratio >= 1), billing's idle RSS < 50 MB and peak < 200 MB.
# A target is scored by its best run (the highest events/s, with that run's latencies); RSS goals
# hold for every billing run. The machine is shared: read the load average printed with the table.
# Exit status: 0 goals met and tables right, 3 a goal missed or a table check failed, 1 the setup
# failed (build, start, a pre-run answer other than 200, a measured run with missing answers).
# Everything listens on 127.0.0.1 only.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$REPO/build-release-webhooks"
ENTITIES="${ENTITIES:-3000}"
ROUNDS="${ROUNDS:-2}"
BACKENDS="${BACKENDS:-sqlite postgres}"
SEED="${SEED:-20240611}"
WRK_THREADS=2
CONNECTIONS=32
DUP_FRACTION=0.10
GOAL_EVENTS_PER_S=10000
GOAL_P99_MS=20
GOAL_VS_BASELINE=1.0
GOAL_IDLE_RSS_MB=50
GOAL_PEAK_RSS_MB=200
PYTHON=/usr/bin/python3
LUA="$REPO/bench/webhooks.lua"
GENERATOR="$REPO/bench/webhook_events.py"

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'webhooks.sh: %s\n' "$*" >&2; exit 1; }

for tool in cmake ninja wrk sqlite3 curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
[[ -x "$PYTHON" ]] || die "$PYTHON is missing (Debian's python3)"
[[ "$ENTITIES" =~ ^[1-9][0-9]*$ ]] && ((ENTITIES >= 10)) || die "ENTITIES must be a whole number >= 10 (got '$ENTITIES')"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a whole number (got '$ROUNDS')"
USE_SQLITE=0 USE_POSTGRES=0
for b in $BACKENDS; do
  case "$b" in
    sqlite) USE_SQLITE=1 ;;
    postgres) USE_POSTGRES=1 ;;
    *) die "BACKENDS: unknown backend '$b' (sqlite, postgres)" ;;
  esac
done
((USE_SQLITE + USE_POSTGRES > 0)) || die "BACKENDS names no backend"
if ((USE_POSTGRES)); then
  command -v psql >/dev/null || die "psql is not installed"
  ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || die "PostgreSQL server binaries are not installed"
fi
if [[ "${PERF:-0}" == 1 ]]; then command -v perf >/dev/null || die "PERF=1 needs perf"; fi

# --- temp dir and clean-up --------------------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/billing-webhooks.XXXXXX")"
chmod 711 "$TMP"  # the PostgreSQL server runs as postgres and lives in $TMP/pg
SERVER_PID=""
WRK_PID=""
PERF_PID=""
PG_STARTED=0

stop() {  # pid: TERM, then KILL after 10 s
  local pid="$1" i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  [[ -n "$PERF_PID" ]] && { kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true; }
  [[ -n "$WRK_PID" ]] && stop "$WRK_PID"
  [[ -n "$SERVER_PID" ]] && stop "$SERVER_PID"
  ((PG_STARTED)) && bash "$REPO/scripts/postgres.sh" stop "$TMP/pg" || true
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then
    say "kept $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build ------------------------------------------------------------------------------------
say "Release build in $BUILD"
cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBILLING_WERROR=ON >"$TMP/cmake.log" 2>&1 ||
  { tail -n 30 "$TMP/cmake.log" >&2; die "cmake failed"; }
ninja -C "$BUILD" -j2 billing bench_group_commit_baseline >"$TMP/build.log" 2>&1 ||
  { tail -n 40 "$TMP/build.log" >&2; die "the build failed (someone's half-finished file? retry in a minute)"; }
BASELINE="$BUILD/bench_group_commit_baseline"
VARIANTS=(billing)  # builds of billing to measure: the working tree's, and "before" if asked for
declare -A BIN=([billing]="$BUILD/billing") PLANS=([billing]="$REPO/config/plans.json")
if [[ -n "${BENCH_BEFORE:-}" ]]; then
  # commit_of, describe, build_revision (sets REV_BIN, REV_PLANS), prune_revisions.
  source "$REPO/bench/revisions.sh"
  build_revision "$BENCH_BEFORE"
  prune_revisions
  VARIANTS+=(before)
  BIN[before]="$REV_BIN" PLANS[before]="$REV_PLANS"
  BEFORE_DESC="$BENCH_BEFORE = $(describe "$(commit_of "$BENCH_BEFORE")")"
fi

random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
JWT_SECRET="$(random_hex)"
CSRF_SECRET="$(random_hex)"
WEBHOOK_SECRET="whsec_bench_$(random_hex)"
export STRIPE_WEBHOOK_SECRET="$WEBHOOK_SECRET"  # for the generator and the baseline only

# --- PostgreSQL -------------------------------------------------------------------------------
PG_URL=""
if ((USE_POSTGRES)); then
  say "starting a throw-away PostgreSQL in $TMP/pg"
  PG_STARTED=1
  [[ "${PG_STATEMENTS:-0}" == 1 ]] && export POSTGRES_OPTIONS="-c shared_preload_libraries=pg_stat_statements"
  PG_URL="$(bash "$REPO/scripts/postgres.sh" start "$TMP/pg")" || die "scripts/postgres.sh start failed"
  say "PostgreSQL at $PG_URL (synchronous_commit $(psql "$PG_URL" -qAt -c 'SHOW synchronous_commit'), fsync $(psql "$PG_URL" -qAt -c 'SHOW fsync'))"
fi
pg_url_for() { echo "${PG_URL%/*}/$1"; }  # the same server, another database
pg_cpu_ticks() {  # utime + stime of the PostgreSQL server's processes (postmaster and children)
  local master total=0 p t
  master="$(head -n1 "$TMP/pg/data/postmaster.pid" 2>/dev/null)" || { echo 0; return; }
  for p in "$master" $(ps -o pid= --ppid "$master" 2>/dev/null); do
    t="$(cpu_ticks "$p")"
    [[ -n "$t" ]] && total=$((total + t))
  done
  echo "$total"
}

# --- processes --------------------------------------------------------------------------------
rss_kb() {  # pid field (VmRSS or VmHWM) -> kB
  awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || true
}
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }  # utime + stime
HZ="$(getconf CLK_TCK)"
# PostgreSQL's WAL so far, cluster-wide (one target runs at a time): bytes and full-page images.
pg_wal() { psql "$PG_URL" -qAt -F ' ' -c "SELECT wal_bytes, wal_fpi FROM pg_stat_wal" 2>/dev/null || echo "0 0"; }
write_bytes() { awk '$1 == "write_bytes:" {print $2}' "/proc/$1/io" 2>/dev/null || echo 0; }  # to storage

# Starts a server (billing or the baseline) in the background, stdout/stderr to files named by
# label; waits for its "listening on http://127.0.0.1:PORT" line. Sets SERVER_PID and SERVER_URL.
start_server() {  # label command...
  local label="$1" out="$TMP/$1.stdout" err="$TMP/$1.stderr" i port=""
  shift
  : >"$out"
  : >"$err"
  "$@" >"$out" 2>"$err" &
  SERVER_PID=$!
  for ((i = 0; i < 300; i++)); do
    port="$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$out" | head -n1)" || true
    [[ -n "$port" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$out" "$err" >&2; die "$label exited at start"; }
    sleep 0.1
  done
  [[ -n "$port" ]] || { cat "$out" "$err" >&2; die "$label did not start listening within 30 s"; }
  SERVER_URL="http://127.0.0.1:$port"
  say "$label listening at $SERVER_URL (pid $SERVER_PID)"
}
stop_server() {
  stop "$SERVER_PID"
  SERVER_PID=""
}
start_billing() {  # label database_url variant
  start_server "$1" env -i PATH="$PATH" HOME="${HOME:-/}" \
    JWT_SECRET_KEY="$JWT_SECRET" CSRF_SECRET_KEY="$CSRF_SECRET" \
    STRIPE_WEBHOOK_SECRET="$WEBHOOK_SECRET" DATABASE_URL="$2" LOG_LEVEL=warn \
    PLANS_CONFIG="${PLANS[$3]}" ${BILLING_EXTRA_ENV:-} \
    "${BIN[$3]}" serve --host 127.0.0.1 --port 0
}

# --- one wrk run ------------------------------------------------------------------------------
# Sends every line of FILE once (bench/webhooks.lua). With a floor, waits at least that long
# before ending wrk (see the header: wrk's latency correction). Sets W_* from the WEBHOOKS line
# and SAMPLED_RSS_KB (the highest VmRSS seen while it ran).
run_wrk() {  # label url file floor_seconds server_pid
  local label="$1" url="$2" file="$3" floor="$4" pid="$5" lines cap done_dir out i start now
  lines="$(wc -l <"$file")"
  cap=$((floor + 60 + lines / 50))
  done_dir="$TMP/done-$label"
  out="$TMP/wrk-$label.txt"
  mkdir -p "$done_dir"
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${cap}s" --timeout 30s --latency -s "$LUA" "$url" \
    -- "$file" "$WRK_THREADS" "$done_dir" >"$out" 2>&1 &
  WRK_PID=$!
  start="$(date +%s.%N)"
  SAMPLED_RSS_KB=0
  local ticks_before pg_before=0
  ticks_before="$(cpu_ticks "$pid")"
  local written_before
  written_before="$(write_bytes "$pid")"
  ((PG_STARTED)) && pg_before="$(pg_cpu_ticks)"
  local wal_before=(0 0)
  ((PG_STARTED)) && read -r -a wal_before < <(pg_wal)
  local all_done=0 sent_int=0 rss
  while kill -0 "$WRK_PID" 2>/dev/null; do
    rss="$(rss_kb "$pid" VmRSS)"
    [[ -n "$rss" ]] && ((rss > SAMPLED_RSS_KB)) && SAMPLED_RSS_KB=$rss
    if ((!all_done)); then
      all_done=1
      for ((i = 0; i < WRK_THREADS; i++)); do [[ -f "$done_dir/done-$i" ]] || all_done=0; done
    fi
    now="$(date +%s.%N)"
    if ((all_done)) && awk -v a="$now" -v b="$start" -v f="$floor" 'BEGIN {exit !(a - b >= f)}'; then
      # wrk takes SIGINT as "stop now" (its handler is installed once its threads run: repeat).
      if ((sent_int % 10 == 0)); then kill -INT "$WRK_PID" 2>/dev/null || true; fi
      sent_int=$((sent_int + 1))
    fi
    sleep 0.1
  done
  wait "$WRK_PID" || { cat "$out" >&2; WRK_PID=""; die "$label: wrk failed"; }
  WRK_PID=""
  W_CPU_S="$(awk -v t=$(($(cpu_ticks "$pid") - ticks_before)) -v hz="$HZ" 'BEGIN {printf "%.2f", t / hz}')"
  W_DISK_MB="$(awk -v b=$(($(write_bytes "$pid") - written_before)) 'BEGIN {printf "%.1f", b / 1048576}')"
  W_PG_CPU_S=0
  ((PG_STARTED)) && W_PG_CPU_S="$(awk -v t=$(($(pg_cpu_ticks) - pg_before)) -v hz="$HZ" 'BEGIN {printf "%.2f", t / hz}')"
  W_PG_WAL_MB=0 W_PG_FPI=0
  if ((PG_STARTED)); then
    local wal_after=(0 0)
    read -r -a wal_after < <(pg_wal)
    W_PG_WAL_MB="$(awk -v b="$((wal_after[0] - wal_before[0]))" 'BEGIN {printf "%.1f", b / 1048576}')"
    W_PG_FPI=$((wal_after[1] - wal_before[1]))
  fi
  local line
  line="$(grep '^WEBHOOKS ' "$out" | tail -n1)" || true
  [[ -n "$line" ]] || { cat "$out" >&2; die "$label: no WEBHOOKS line in wrk's output"; }
  wfield() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  W_EXPECTED="$(wfield expected)" W_ANSWERED="$(wfield answered)" W_NON200="$(wfield non200)"
  W_SECONDS="$(wfield seconds)" W_P50_US="$(wfield p50_us)" W_P99_US="$(wfield p99_us)"
  W_MAX_US="$(wfield max_us)"
  W_SOCKET="connect $(wfield connect), read $(wfield read), write $(wfield write), timeout $(wfield timeout)"
  W_FIRST_ERROR="${line#* first_error=}"
  ((W_EXPECTED == lines)) || die "$label: wrk loaded $W_EXPECTED of $lines deliveries"
  if ((W_ANSWERED != W_EXPECTED)); then
    cat "$out" >&2
    die "$label: $W_ANSWERED of $W_EXPECTED deliveries answered (socket errors: $W_SOCKET)"
  fi
}

# --- table checks -----------------------------------------------------------------------------
CHECK_FAILURES=()
CHECK_LINES=()
check() {  # label description expected actual
  if [[ "$3" == "$4" ]]; then
    CHECK_LINES+=("ok    $1: $2 = $4")
  else
    CHECK_LINES+=("FAIL  $1: $2 = $4, expected $3")
    CHECK_FAILURES+=("$1: $2 = $4, expected $3")
  fi
}
# A query on a target's database: sqlite:<file> or postgres:<url>.
q() {  # db sql
  case "$1" in
    sqlite:*) sqlite3 -batch -noheader "${1#sqlite:}" "$2" ;;
    postgres:*) psql "${1#postgres:}" -qAt -v ON_ERROR_STOP=1 -c "$2" ;;
  esac
}

check_billing_tables() {  # label db meta ids payments_before
  local label="$1" db="$2" meta="$3" ids="$4" before="$5" v
  local entities unique duplicates deliveries active suspended
  entities="$(meta_field "$meta" entities)" unique="$(meta_field "$meta" unique)"
  duplicates="$(meta_field "$meta" duplicates)" deliveries="$(meta_field "$meta" deliveries)"
  active="$(meta_field "$meta" expect_active)" suspended="$(meta_field "$meta" expect_suspended)"
  v="$(q "$db" "SELECT count(*) FROM payments")"
  check "$label" "payments added by the measured run" "$entities" "$((v - before))"
  check "$label" "distinct invoices in payments" "$entities" \
    "$(q "$db" "SELECT count(DISTINCT stripe_invoice_id) FROM payments WHERE stripe_invoice_id LIKE 'in_bench_paid_%'")"
  q "$db" "SELECT event_id FROM webhook_events WHERE event_type LIKE 'invoice.%' AND status = 'processed'" |
    LC_ALL=C sort >"$TMP/$label.recorded-ids"
  if cmp -s "$TMP/$label.recorded-ids" <(LC_ALL=C sort "$ids"); then
    check "$label" "measured event ids recorded once, processed (webhook_events)" "$unique" "$unique"
  else
    check "$label" "measured event ids recorded once, processed (webhook_events)" "$unique (the generated ids)" \
      "$(wc -l <"$TMP/$label.recorded-ids") rows, differing"
  fi
  check "$label" "measured events in webhook_events, any status" "$unique" \
    "$(q "$db" "SELECT count(*) FROM webhook_events WHERE event_type LIKE 'invoice.%'")"
  check "$label" "stripe_audit rows of the measured run (one per delivery)" "$deliveries" \
    "$(q "$db" "SELECT count(*) FROM stripe_audit WHERE event_type LIKE 'invoice.%'")"
  check "$label" "stripe_audit rows with status duplicate" "$duplicates" \
    "$(q "$db" "SELECT count(*) FROM stripe_audit WHERE event_type LIKE 'invoice.%' AND status = 'duplicate'")"
  check "$label" "plans neither active nor suspended" 0 \
    "$(q "$db" "SELECT count(*) FROM plans WHERE status NOT IN ('active', 'suspended')")"
  check "$label" "plans" "$entities" "$(q "$db" "SELECT count(*) FROM plans")"
  check "$label" "active plans (the paid invoice is the newer)" "$active" \
    "$(q "$db" "SELECT count(*) FROM plans WHERE status = 'active'")"
  check "$label" "suspended plans (the failed invoice is the newer)" "$suspended" \
    "$(q "$db" "SELECT count(*) FROM plans WHERE status = 'suspended'")"
  AUDIT_NOTE="$(q "$db" "SELECT status || ' ' || count(*) FROM stripe_audit WHERE event_type LIKE 'invoice.%' GROUP BY status ORDER BY status" | paste -sd, -)"
}
check_baseline_tables() {  # label db meta ids
  local label="$1" db="$2" meta="$3" ids="$4"
  check "$label" "payments" "$(meta_field "$meta" entities)" "$(q "$db" "SELECT count(*) FROM payments")"
  q "$db" "SELECT event_id FROM inbox" | LC_ALL=C sort >"$TMP/$label.recorded-ids"
  if cmp -s "$TMP/$label.recorded-ids" <(LC_ALL=C sort "$ids"); then
    check "$label" "inbox: measured event ids, once each" "$(meta_field "$meta" unique)" "$(meta_field "$meta" unique)"
  else
    check "$label" "inbox: measured event ids, once each" "$(meta_field "$meta" unique)" \
      "$(wc -l <"$TMP/$label.recorded-ids") rows, differing"
  fi
  check "$label" "active plans (the paid invoice is the newer)" "$(meta_field "$meta" expect_active)" \
    "$(q "$db" "SELECT count(*) FROM plans WHERE status = 'active'")"
  check "$label" "suspended plans (the failed invoice is the newer)" "$(meta_field "$meta" expect_suspended)" \
    "$(q "$db" "SELECT count(*) FROM plans WHERE status = 'suspended'")"
}
meta_field() { sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p" "$1"; }

db_span() {  # db table -> seconds from the first received_at to the last processed_at (measured events)
  case "$1" in
    sqlite:*)
      if [[ "$2" == inbox ]]; then
        q "$1" "SELECT printf('%.3f', (julianday(max(received_at)) - julianday(min(received_at))) * 86400) FROM inbox"
      else
        q "$1" "SELECT printf('%.3f', (julianday(max(processed_at)) - julianday(min(received_at))) * 86400) FROM webhook_events WHERE event_type LIKE 'invoice.%'"
      fi ;;
    postgres:*)
      q "$1" "SELECT round(extract(epoch FROM max(processed_at) - min(received_at))::numeric, 3) FROM webhook_events WHERE event_type LIKE 'invoice.%'" ;;
  esac
}

# --- the runs ---------------------------------------------------------------------------------
generate() {  # kind out
  "$PYTHON" "$GENERATOR" "$1" "$ENTITIES" "$SEED" "$2" "$DUP_FRACTION" ||
    die "bench/webhook_events.py $1 failed"
}
# The latency floor (header): 0.1 s per request per connection.
floor_for() { awk -v n="$(wc -l <"$1")" -v c="$CONNECTIONS" 'BEGIN {f = 0.1 * n / c; if (f < 5) f = 5; printf "%d", f + 0.999}'; }

RUN_TARGET=() RUN_ROUND=() RUN_EVENTS=() RUN_DUPS=() RUN_SECONDS=() RUN_RATE=() RUN_P50=() RUN_P99=()
RUN_IDLE=() RUN_PEAK=() RUN_DBSPAN=() RUN_NOTE=() RUN_CPU=() RUN_PGCPU=() RUN_DISK=()
record_run() {  # target round meta idle_kb peak_kb dbspan note
  local events dups
  events="$(meta_field "$3" deliveries)" dups="$(meta_field "$3" duplicates)"
  RUN_TARGET+=("$1") RUN_ROUND+=("$2") RUN_EVENTS+=("$events") RUN_DUPS+=("$dups")
  RUN_SECONDS+=("$(awk -v s="$W_SECONDS" 'BEGIN {printf "%.3f", s}')")
  RUN_RATE+=("$(awk -v n="$events" -v s="$W_SECONDS" 'BEGIN {printf "%.0f", n / s}')")
  RUN_P50+=("$(awk -v u="$W_P50_US" 'BEGIN {printf "%.2f", u / 1000}')")
  RUN_P99+=("$(awk -v u="$W_P99_US" 'BEGIN {printf "%.2f", u / 1000}')")
  RUN_IDLE+=("$4") RUN_PEAK+=("$5") RUN_DBSPAN+=("$6") RUN_NOTE+=("$7")
  RUN_CPU+=("$(awk -v c="$W_CPU_S" -v s="$W_SECONDS" 'BEGIN {printf "%.2f", c / s}')")
  if [[ "$1" == *-postgres ]]; then  # billing-postgres, before-postgres: PostgreSQL's WAL
    RUN_DISK+=("$W_PG_WAL_MB")
    RUN_PGCPU+=("$(awk -v c="$W_PG_CPU_S" -v s="$W_SECONDS" 'BEGIN {printf "%.2f", c / s}')")
  else
    RUN_DISK+=("$W_DISK_MB")
    RUN_PGCPU+=(-)
  fi
  say "$1 round $2: $events deliveries in ${RUN_SECONDS[-1]} s = ${RUN_RATE[-1]} events/s, p50 ${RUN_P50[-1]} ms, p99 ${RUN_P99[-1]} ms, non-200: $W_NON200"
}

PERF_REPORTS=()
perf_start() {  # label pid
  [[ "${PERF:-0}" == 1 ]] || return 0
  local what=(-p "$2")
  [[ "${PERF_ALL:-0}" == 1 ]] && what=(-a)  # the whole machine: PostgreSQL and wrk too
  perf record --call-graph "${PERF_CALLGRAPH:-fp}" -o "$TMP/perf-$1.data" "${what[@]}" >"$TMP/perf-$1.log" 2>&1 &
  PERF_PID=$!
  sleep 0.5
}
perf_stop() {  # label
  [[ -n "$PERF_PID" ]] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  PERF_PID=""
  {  # per thread, then the top symbols (self cost, no call graph: see KEEP_TMP=1 for the data)
    perf report --stdio --no-children -g none -s comm,pid -i "$TMP/perf-$1.data" 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 12
    echo
    perf report --stdio --no-children -g none -s comm,dso,sym -i "$TMP/perf-$1.data" 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 70
  } | cut -c1-160 >"$TMP/perf-$1.txt" || true
  PERF_REPORTS+=("$1")
}

PG_STATEMENT_REPORTS=()
pg_statements() {  # label db: the measured run's statements, the costliest first
  q "$2" "SELECT lpad(calls::text, 7) || lpad(round(total_exec_time)::text, 8) || ' ms' ||
      lpad(round((total_exec_time / greatest(calls, 1) * 1000)::numeric)::text, 7) || ' us  ' ||
      left(regexp_replace(query, '\s+', ' ', 'g'), 110)
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    ORDER BY total_exec_time DESC LIMIT 20" >"$TMP/pgstat-$1.txt"
  PG_STATEMENT_REPORTS+=("$1")
}

run_billing() {  # backend round [variant: billing (the working tree) or before]
  local backend="$1" round="$2" variant="${3:-billing}" url db idle before peak non200
  local label="$variant-$1-r$2"
  if [[ "$backend" == sqlite ]]; then
    mkdir -p "$TMP/$label"
    url="sqlite:///$TMP/$label/billing.db"
    db="sqlite:$TMP/$label/billing.db"
  else
    local name="webhooks_${variant}_r$round"
    psql "$PG_URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE $name" >/dev/null || die "CREATE DATABASE $name failed"
    url="$(pg_url_for "$name")"
    db="postgres:$url"
  fi
  start_billing "$label" "$url" "$variant"
  sleep 0.5
  idle="$(rss_kb "$SERVER_PID" VmRSS)"

  say "$label: checkout.session.completed for $ENTITIES hospitals (not measured)"
  generate checkout "$TMP/$label.checkout.tsv"
  run_wrk "$label-checkout" "$SERVER_URL" "$TMP/$label.checkout.tsv" 0 "$SERVER_PID"
  ((W_NON200 == 0)) || die "$label: $W_NON200 checkout deliveries answered other than 200 (first: $W_FIRST_ERROR)"
  local plans
  plans="$(q "$db" "SELECT count(*) FROM plans WHERE status = 'active'")"
  ((plans == ENTITIES)) || die "$label: $plans active plans after the checkouts, expected $ENTITIES"
  before="$(q "$db" "SELECT count(*) FROM payments")"

  say "$label: measured run"
  generate measured "$TMP/$label.measured.tsv"
  [[ "$backend" == postgres && "${PG_STATEMENTS:-0}" == 1 ]] && q "$db" 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()' >/dev/null
  perf_start "$label" "$SERVER_PID"
  run_wrk "$label" "$SERVER_URL" "$TMP/$label.measured.tsv" "$(floor_for "$TMP/$label.measured.tsv")" "$SERVER_PID"
  perf_stop "$label"
  [[ "$backend" == postgres && "${PG_STATEMENTS:-0}" == 1 ]] && pg_statements "$label" "$db"
  non200=$W_NON200
  peak="$(rss_kb "$SERVER_PID" VmHWM)"
  stop_server
  ((non200 == 0)) || CHECK_FAILURES+=("$label: $non200 measured deliveries answered other than 200 (first: $W_FIRST_ERROR)")
  check "$label" "measured deliveries answered 200" "$W_EXPECTED" "$((W_EXPECTED - non200))"
  check_billing_tables "$label" "$db" "$TMP/$label.measured.tsv.json" "$TMP/$label.measured.tsv.ids" "$before"
  record_run "$variant-$backend" "$round" "$TMP/$label.measured.tsv.json" "$idle" "$peak" "$(db_span "$db" webhook_events)" \
    "audit: $AUDIT_NOTE$([[ "$backend" == postgres ]] && echo "; WAL full-page images $W_PG_FPI")"
}

run_baseline() {  # round
  local round="$1" label="baseline-r$1" db non200 note
  mkdir -p "$TMP/$label"
  db="sqlite:$TMP/$label/baseline.db"
  start_server "$label" "$BASELINE" --db "$TMP/$label/baseline.db" --host 127.0.0.1 --port 0
  sqlite3 -batch "$TMP/$label/baseline.db" "PRAGMA busy_timeout = 5000;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ENTITIES)
    INSERT INTO plans (entity_id, status, last_event_created, updated_at)
    SELECT printf('hosp-bench-%05d', i), 'active', 1700000000, strftime('%Y-%m-%dT%H:%M:%fZ') FROM n" >/dev/null ||
    die "$label: seeding its plans failed"
  sleep 0.5
  generate measured "$TMP/$label.measured.tsv"
  run_wrk "$label" "$SERVER_URL" "$TMP/$label.measured.tsv" "$(floor_for "$TMP/$label.measured.tsv")" "$SERVER_PID"
  non200=$W_NON200
  local peak
  peak="$(rss_kb "$SERVER_PID" VmHWM)"
  stop_server
  note="$(grep -o 'baseline: .*' "$TMP/$label.stderr" | tail -n1)" || true
  check "$label" "measured deliveries answered 200" "$W_EXPECTED" "$((W_EXPECTED - non200))"
  check_baseline_tables "$label" "$db" "$TMP/$label.measured.tsv.json" "$TMP/$label.measured.tsv.ids"
  record_run baseline-sqlite "$round" "$TMP/$label.measured.tsv.json" - "$peak" "$(db_span "$db" inbox)" "${note#baseline: }"
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
run_variants() {  # backend round: each build of billing, their order alternating by round
  local v order=("${VARIANTS[@]}")
  ((${2} % 2)) || order=($(printf '%s\n' "${VARIANTS[@]}" | tac))
  for v in "${order[@]}"; do run_billing "$1" "$2" "$v"; done
}
for ((round = 1; round <= ROUNDS; round++)); do
  if ((USE_SQLITE)); then  # billing and the loop back to back, their order alternating
    if ((round % 2)); then run_variants sqlite "$round"; run_baseline "$round"
    else run_baseline "$round"; run_variants sqlite "$round"; fi
  fi
  ((USE_POSTGRES)) && run_variants postgres "$round"
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- report -----------------------------------------------------------------------------------
best() {  # target -> index of its run with the highest events/s
  local i bi=-1
  for i in "${!RUN_TARGET[@]}"; do
    [[ "${RUN_TARGET[$i]}" == "$1" ]] || continue
    if ((bi < 0)) || ((RUN_RATE[i] > RUN_RATE[bi])); then bi=$i; fi
  done
  echo "$bi"
}
kb_mb() { if [[ "$1" == - || -z "$1" ]]; then echo -; else mb "$1"; fi; }
BASE_BEST=-1
((USE_SQLITE)) && BASE_BEST="$(best baseline-sqlite)"
vs_baseline() {  # index -> billing/baseline events/s (SQLite only)
  if [[ "${RUN_TARGET[$1]}" == billing-sqlite ]] && ((BASE_BEST >= 0)); then
    awk -v a="${RUN_RATE[$1]}" -v b="${RUN_RATE[$BASE_BEST]}" 'BEGIN {printf "%.3f", a / b}'
  else
    echo -
  fi
}

echo
echo "POST /stripe/webhook: $ENTITIES hospitals; measured: paid + failed invoice each, $(awk -v f="$DUP_FRACTION" 'BEGIN {printf "%d%%", f * 100}') delivered twice, shuffled;"
echo "wrk -t$WRK_THREADS -c$CONNECTIONS (bench/webhooks.lua, each delivery sent once); Release build of the working tree on $(git -C "$REPO" rev-parse --short HEAD)$([[ -n "$(git -C "$REPO" status --porcelain 2>/dev/null)" ]] && echo ' + uncommitted changes')"
echo "$(nproc) cores; load average before: $LOAD_BEFORE, after: $LOAD_AFTER; temp dir on $(findmnt -no FSTYPE,SOURCE -T "$TMP" 2>/dev/null | tr -s ' ' || echo '?')"
echo "seconds: first request to last answer (wrk script, CLOCK_MONOTONIC); db span: first received_at to last processed_at in the database"
echo "cpu: the server's user+system CPU time during the run / seconds, in cores (of $(nproc), shared with wrk and PostgreSQL); pg cpu: the PostgreSQL server's"
echo "disk MB: SQLite: what the server wrote to storage during the run (/proc/<pid>/io write_bytes); PostgreSQL: the WAL it wrote (pg_stat_wal), its full-page images counted in the note"
echo "billing/baseline: events/s of billing on SQLite over the best baseline run; RSS: billing's VmRSS idle after start, VmHWM at the end of its run (baseline: its VmHWM)"
echo
printf '%-16s %5s %7s %5s %8s %9s %8s %8s %9s %9s %9s %8s %5s %6s %7s  %s\n' target round events dups seconds 'events/s' 'p50 ms' 'p99 ms' 'vs base' 'idle MB' 'peak MB' 'db span' cpu 'pg cpu' 'disk MB' note
for i in "${!RUN_TARGET[@]}"; do
  printf '%-16s %5s %7s %5s %8s %9s %8s %8s %9s %9s %9s %8s %5s %6s %7s  %s\n' "${RUN_TARGET[$i]}" "${RUN_ROUND[$i]}" \
    "${RUN_EVENTS[$i]}" "${RUN_DUPS[$i]}" "${RUN_SECONDS[$i]}" "${RUN_RATE[$i]}" "${RUN_P50[$i]}" "${RUN_P99[$i]}" \
    "$(vs_baseline "$i")" "$(kb_mb "${RUN_IDLE[$i]}")" "$(kb_mb "${RUN_PEAK[$i]}")" "${RUN_DBSPAN[$i]}" "${RUN_CPU[$i]}" "${RUN_PGCPU[$i]}" "${RUN_DISK[$i]}" "${RUN_NOTE[$i]}"
done
echo
echo "Best run of each target (highest events/s, with that run's latencies):"
printf '%-16s %7s %5s %8s %9s %8s %8s %9s %9s %9s\n' target events dups seconds 'events/s' 'p50 ms' 'p99 ms' 'vs base' 'idle MB' 'peak MB'
TARGETS=()
((USE_SQLITE)) && TARGETS+=(billing-sqlite baseline-sqlite)
((USE_POSTGRES)) && TARGETS+=(billing-postgres)
if [[ -n "${BEFORE_DESC:-}" ]]; then
  ((USE_SQLITE)) && TARGETS+=(before-sqlite)
  ((USE_POSTGRES)) && TARGETS+=(before-postgres)
fi
for t in "${TARGETS[@]}"; do
  i="$(best "$t")"
  printf '%-16s %7s %5s %8s %9s %8s %8s %9s %9s %9s\n' "$t" "${RUN_EVENTS[$i]}" "${RUN_DUPS[$i]}" "${RUN_SECONDS[$i]}" \
    "${RUN_RATE[$i]}" "${RUN_P50[$i]}" "${RUN_P99[$i]}" "$(vs_baseline "$i")" "$(kb_mb "${RUN_IDLE[$i]}")" "$(kb_mb "${RUN_PEAK[$i]}")"
done
echo

echo "Table checks:"
printf '  %s\n' "${CHECK_LINES[@]}"
echo

GOALS_MISSED=0
goal() {  # description figure ok(1/0) goal-text
  local verdict=PASS
  if [[ "$3" != 1 ]]; then verdict=FAIL; GOALS_MISSED=1; fi
  printf '%-40s %-14s %s (goal %s)\n' "$1" "$2" "$verdict" "$4"
}
echo "Goals:"
for t in billing-sqlite billing-postgres; do
  [[ " ${TARGETS[*]} " == *" $t "* ]] || continue
  i="$(best "$t")"
  goal "$t events/s" "${RUN_RATE[$i]}" "$(awk -v r="${RUN_RATE[$i]}" -v g="$GOAL_EVENTS_PER_S" 'BEGIN {print (r >= g) ? 1 : 0}')" ">= $GOAL_EVENTS_PER_S"
  goal "$t p99" "${RUN_P99[$i]} ms" "$(awk -v p="${RUN_P99[$i]}" -v g="$GOAL_P99_MS" 'BEGIN {print (p < g) ? 1 : 0}')" "< $GOAL_P99_MS ms"
  idle_max=0 peak_max=0
  for j in "${!RUN_TARGET[@]}"; do
    [[ "${RUN_TARGET[$j]}" == "$t" ]] || continue
    ((RUN_IDLE[j] > idle_max)) && idle_max=${RUN_IDLE[j]}
    ((RUN_PEAK[j] > peak_max)) && peak_max=${RUN_PEAK[j]}
  done
  goal "$t idle RSS (every run)" "$(mb "$idle_max") MB" "$(awk -v k="$idle_max" -v g="$GOAL_IDLE_RSS_MB" 'BEGIN {print (k / 1024 < g) ? 1 : 0}')" "< $GOAL_IDLE_RSS_MB MB"
  goal "$t peak RSS (every run)" "$(mb "$peak_max") MB" "$(awk -v k="$peak_max" -v g="$GOAL_PEAK_RSS_MB" 'BEGIN {print (k / 1024 < g) ? 1 : 0}')" "< $GOAL_PEAK_RSS_MB MB"
done
if ((USE_SQLITE)); then
  i="$(best billing-sqlite)"
  r="$(vs_baseline "$i")"
  goal "billing-sqlite / baseline events/s" "$r" "$(awk -v r="$r" -v g="$GOAL_VS_BASELINE" 'BEGIN {print (r >= g) ? 1 : 0}')" ">= $GOAL_VS_BASELINE"
fi

if [[ -n "${BEFORE_DESC:-}" ]]; then
  echo
  echo "before: $BEFORE_DESC (information: best run against best run, same rounds)"
  for b in sqlite postgres; do
    [[ " ${TARGETS[*]} " == *" before-$b "* ]] || continue
    i="$(best "billing-$b")" j="$(best "before-$b")"
    printf '%-40s %s\n' "billing-$b / before-$b events/s" \
      "$(awk -v a="${RUN_RATE[$i]}" -v b="${RUN_RATE[$j]}" 'BEGIN {printf "%.3f", a / b}')"
  done
fi

for r in "${PERF_REPORTS[@]}"; do
  echo
  echo "--- perf report --stdio --no-children, $r: CPU samples per thread, then per symbol"
  cat "$TMP/perf-$r.txt"
done

for r in "${PG_STATEMENT_REPORTS[@]}"; do
  echo
  echo "--- pg_stat_statements, $r: calls, total and mean execution time, statement"
  cat "$TMP/pgstat-$r.txt"
done

# billing's stderr: its access log (one JSON line per request, whatever LOG_LEVEL) and the rest.
access_lines="$(cat "$TMP"/billing-*.stderr 2>/dev/null | grep -c '"request_id":' || true)"
warnings="$(cat "$TMP"/billing-*.stderr 2>/dev/null | grep -v '"request_id":' | grep -v '^$' | tail -n 10 || true)"
echo
echo "billing's stderr: ${access_lines:-0} access log lines in all; other lines (LOG_LEVEL=warn, last 10): ${warnings:-none}"

status=0
if ((${#CHECK_FAILURES[@]})); then
  echo
  echo "TABLE CHECKS FAILED:"
  printf '  %s\n' "${CHECK_FAILURES[@]}"
  status=3
fi
((GOALS_MISSED)) && status=3
exit "$status"
