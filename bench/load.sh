#!/usr/bin/env bash
# Load benchmark: GET /billing/plan on a Release build of billing *before* a change (a git
# revision, the baseline) and *after* it (the working tree), with nginx serving the same bytes
# from a file beside them, on the same machine in the same run. See bench/README.md.
#
#   bash bench/load.sh                        # baseline HEAD vs the working tree, 10 s per wrk run
#   BENCH_BASELINE=main~3 bash bench/load.sh  # another baseline revision
#   DURATION=5 bash bench/load.sh             # shorter runs
#   ROUNDS=3 bash bench/load.sh               # three runs of each target instead of two
#   KEEP_TMP=1 bash bench/load.sh             # keep the temp dir (logs, nginx.conf, wrk outputs)
#   BENCH_DATABASE_URL=postgresql://... bash bench/load.sh   # billing on PostgreSQL
#     (a throw-away server: scripts/postgres.sh start DIR prints such a URL; each build gets
#     its own database created there and dropped at the end)
#
# Each round runs nginx, baseline, new (odd rounds) or nginx, new, baseline (even rounds), one
# server loaded at a time; a billing build runs only during its own run. Each target is scored by
# its best run (the run with the highest requests/s; that run's p99 goes with it). Each build
# runs on a copy of its own catalog whose plan rate limits are far above the load (the default
# 60 a minute for lite would answer nearly every request 429).
# Goals: new req/s >= 0.95 x baseline req/s, and new p99 < nginx p99.
# Exit status: 0 goals met, 3 a goal missed, 1 the setup failed (build, start, errors in wrk).
# Everything listens on 127.0.0.1 only.
#
# LIMITS=1: the operations figures instead, on the working tree's build only: the same load with
# plan rate limits off (RATE_LIMITS=off), on in the process, and on in Redis (a redis-server the
# script starts in the temp dir, on a Unix socket), with limits far above the load (a catalog
# copy at 60,000,000 a minute), then the in-process run again while /metrics is scraped ten times
# a second. Goals: in-process >= 0.95 x off, Redis >= 0.75 x off.
#
# Not in the README, for testing this script while the working tree does not build:
# BENCH_NEW_REV=<rev> builds the "new" side from that revision (like the baseline) instead.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$REPO/build-release"                  # the working tree's Release build, as before
BASE_ROOT="$REPO/build-release-baseline"     # one Release build per revision: $BASE_ROOT/<sha>
BASE_KEEP=3                                  # revisions kept there (the most recently used)
BASELINE_REV="${BENCH_BASELINE:-HEAD}"
NEW_REV="${BENCH_NEW_REV:-}"
LIMITS="${LIMITS:-0}"
GOAL_LOCAL_LIMITS=0.95  # LIMITS=1: in-process limits req/s >= this x no limits
GOAL_REDIS_LIMITS=0.75  # LIMITS=1: Redis limits req/s >= this x no limits
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-2}"
WRK_THREADS=2
WRK_CONNECTIONS=64
HOSPITAL=bench-hospital-1
GOAL_VS_BASELINE=0.95   # new req/s >= this x baseline req/s
INFO_VS_NGINX=0.60      # the former goal for billing/nginx, printed for information

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'load.sh: %s\n' "$*" >&2; exit 1; }

for tool in git tar cmake ninja wrk nginx curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a whole number of seconds (got '$DURATION')"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a whole number (got '$ROUNDS')"
NGINX="$(command -v nginx)"
if [[ -n "${BENCH_DATABASE_URL:-}" ]]; then
  command -v psql >/dev/null || die "psql is not installed (needed to create a database per build)"
fi

# --- temp dir and clean-up --------------------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/billing-load.XXXXXX")"
BILLING_PID=""
NGINX_PID=""
REDIS_STARTED=""
PG_DATABASES=()

stop() {  # pid: TERM, then KILL after 10 s
  local pid="$1" i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$? db
  trap - EXIT INT TERM
  [[ -n "$BILLING_PID" ]] && stop "$BILLING_PID"
  [[ -n "$NGINX_PID" ]] && stop "$NGINX_PID"
  [[ -n "$REDIS_STARTED" ]] && redis-cli -s "$TMP/redis.sock" shutdown nosave >/dev/null 2>&1
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then
    say "kept $TMP"
    ((${#PG_DATABASES[@]} == 0)) || say "kept the PostgreSQL databases ${PG_DATABASES[*]}"
  else
    rm -rf "$TMP"
    for db in "${PG_DATABASES[@]}"; do
      psql "$BENCH_DATABASE_URL" -qAt -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
        >/dev/null 2>&1 || say "could not drop the PostgreSQL database $db"
    done
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- builds -----------------------------------------------------------------------------------
# Targets: "baseline" and "new". For each: the binary, its plan catalog, a description.
declare -A BIN PLANS DESC

# commit_of, describe, build_revision (sets REV_BIN, REV_PLANS), prune_revisions.
source "$REPO/bench/revisions.sh"

if [[ -n "$NEW_REV" ]]; then
  build_revision "$NEW_REV"
  BIN[new]="$REV_BIN" PLANS[new]="$REV_PLANS"
  DESC[new]="$NEW_REV = $(describe "$(commit_of "$NEW_REV")") (BENCH_NEW_REV)"
else
  say "working tree: Release build in $BUILD"
  cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBILLING_WERROR=ON >/dev/null ||
    die "cmake failed for the working tree"
  ninja -C "$BUILD" billing || die "the build of the working tree failed"
  BIN[new]="$BUILD/billing" PLANS[new]="$REPO/config/plans.json"
  DESC[new]="working tree on $(describe HEAD)"
  [[ -n "$(git -C "$REPO" status --porcelain)" ]] && DESC[new]+=" + uncommitted changes"
fi
# A copy of catalog $1 at $2 whose plan rate limits (60 a minute for lite) are far above the load:
# every request is served, and limits that are on still do their work.
unlimited_catalog() {
  python3 - "$1" "$2" <<'PY' || die "could not write the bench catalog"
import json, sys
catalog = json.load(open(sys.argv[1]))
for plan in catalog["plans"]:
    plan["rate_limit_per_minute"] = 60000000
json.dump(catalog, open(sys.argv[2], "w"))
PY
}
# LIMITS=1: four targets of new's binary, told apart by their environment.
declare -A EXTRA_ENV
if [[ "$LIMITS" == 1 ]]; then
  command -v redis-server >/dev/null || die "redis-server is not installed"
  TARGETS=(unlimited local redis metrics)
  unlimited_catalog "${PLANS[new]}" "$TMP/plans-unlimited.json"
  for target in "${TARGETS[@]}"; do
    BIN[$target]="${BIN[new]}" PLANS[$target]="$TMP/plans-unlimited.json" DESC[$target]="${DESC[new]}"
  done
  EXTRA_ENV[unlimited]="RATE_LIMITS=off"
  EXTRA_ENV[redis]="REDIS_URL=unix://$TMP/redis.sock"
  redis-server --daemonize yes --port 0 --unixsocket "$TMP/redis.sock" --unixsocketperm 700 \
    --dir "$TMP" --save '' --appendonly no --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log" ||
    die "redis-server did not start"
  REDIS_STARTED=1
else
  TARGETS=(baseline new)
  build_revision "$BASELINE_REV"
  BIN[baseline]="$REV_BIN" PLANS[baseline]="$REV_PLANS"
  DESC[baseline]="$BASELINE_REV = $(describe "$(commit_of "$BASELINE_REV")")"
  prune_revisions
  for target in "${TARGETS[@]}"; do
    unlimited_catalog "${PLANS[$target]}" "$TMP/plans-$target.json"
    PLANS[$target]="$TMP/plans-$target.json"
  done
fi

# --- billing ----------------------------------------------------------------------------------
random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
JWT_SECRET="$(random_hex)"
CSRF_SECRET="$(random_hex)"

# Each build gets its own fresh database, seeded identically.
declare -A DB_URL
pg_url_for() {  # database name -> BENCH_DATABASE_URL naming that database instead of its own
  local url="$BENCH_DATABASE_URL" query="" rest
  if [[ "$url" == *\?* ]]; then query="?${url#*\?}"; url="${url%%\?*}"; fi
  rest="${url#*://}"
  if [[ "$rest" == */* ]]; then url="${url%"${rest#*/}"}"; else url="$url/"; fi
  echo "$url$1$query"
}
for target in "${TARGETS[@]}"; do
  if [[ "$LIMITS" == 1 && "$target" != "${TARGETS[0]}" ]]; then
    DB_URL[$target]="${DB_URL[${TARGETS[0]}]}"  # one binary: one database, seeded once
    continue
  fi
  if [[ -n "${BENCH_DATABASE_URL:-}" ]]; then
    db="billing_bench_${target}_$$_$RANDOM"
    psql "$BENCH_DATABASE_URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null ||
      die "could not create the PostgreSQL database $db with BENCH_DATABASE_URL"
    PG_DATABASES+=("$db")
    DB_URL[$target]="$(pg_url_for "$db")"
  else
    mkdir -p "$TMP/db-$target"
    DB_URL[$target]="sqlite:///$TMP/db-$target/billing.db"
  fi
done
[[ "$LIMITS" == 1 ]] && DB_URL[new]="${DB_URL[${TARGETS[0]}]}"  # for `mint new`

# billing runs with only the variables it needs, so that a PORT, HOST, STRIPE_* or PLANS_CONFIG
# in the caller's environment cannot change what is measured. LOG_LEVEL is the default (info), as
# an operator would run it, and stderr goes to a file: whatever the build logs per request is
# paid for in the figures. (`env` execs billing, so $! of a background `env -i ... billing
# serve &` is billing's own pid.)
billing_env() {  # target
  BILLING_ENV=(
    PATH="$PATH" HOME="${HOME:-/}"
    JWT_SECRET_KEY="$JWT_SECRET" CSRF_SECRET_KEY="$CSRF_SECRET"
    DATABASE_URL="${DB_URL[$1]}" LOG_LEVEL="${BENCH_LOG_LEVEL:-info}" HTTP_THREADS=2
    DATABASE_POOL_SIZE="${BENCH_DATABASE_POOL_SIZE:-4}"
    PLANS_CONFIG="${PLANS[$1]}"
  )
  [[ -n "${EXTRA_ENV[$1]:-}" ]] && BILLING_ENV+=("${EXTRA_ENV[$1]}")
  return 0
}
mint() {  # target role entity -> a token made by that target's binary
  billing_env "$1"
  env -i "${BILLING_ENV[@]}" "${BIN[$1]}" token --role "$2" --entity "$3" ||
    die "$1: billing token failed"
}

# The port it bound (--port 0) from the process's own listening socket, read from /proc: the
# inodes of its socket fds matched against the LISTEN rows (state 0A) of /proc/net/tcp.
listening_port() {  # pid
  local inodes hex
  inodes="$(find "/proc/$1/fd" -lname 'socket:*' -printf '%l ' 2>/dev/null | tr -dc '0-9 ')" || true
  [[ -n "$inodes" ]] || return 0
  hex="$(awk -v inodes="$inodes" 'BEGIN {n = split(inodes, list, " "); for (i = 1; i <= n; i++) want[list[i]] = 1}
    $4 == "0A" && ($10 in want) {split($2, a, ":"); print a[2]; exit}' /proc/net/tcp)"
  if [[ -n "$hex" ]]; then echo $((16#$hex)); fi
}

# Starts one billing (stdout and stderr to files named by label) and waits for its port.
start_billing() {  # target label
  local target="$1" out="$TMP/$1-$2.stdout" err="$TMP/$1-$2.stderr" i port=""
  billing_env "$target"
  : >"$out"
  : >"$err"  # created before the start, so that they can be read at once
  env -i "${BILLING_ENV[@]}" "${BIN[$target]}" serve --host 127.0.0.1 --port 0 >"$out" 2>"$err" &
  BILLING_PID=$!
  # `billing listening on http://127.0.0.1:<port>` on stdout once it is ready (older builds may
  # log it on stderr); the socket table otherwise.
  for ((i = 0; i < 300; i++)); do
    port="$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$out" "$err" | head -n1)" || true
    [[ -z "$port" ]] && port="$(listening_port "$BILLING_PID")"
    [[ -n "$port" ]] && break
    kill -0 "$BILLING_PID" 2>/dev/null || { cat "$out" "$err" >&2; die "$target exited at start"; }
    sleep 0.1
  done
  [[ -n "$port" ]] || { cat "$out" "$err" >&2; die "$target did not start listening within 30 s"; }
  BILLING_URL="http://127.0.0.1:$port"
  say "$target listening at $BILLING_URL (pid $BILLING_PID)"
}
stop_billing() {
  stop "$BILLING_PID"
  BILLING_PID=""
}

# curl to loopback only (no proxy); prints the body, fails on a status other than 200.
call() {  # method path token [extra curl args...]
  local method="$1" path="$2" token="$3" out status
  shift 3
  out="$TMP/response.$RANDOM"
  status="$(curl --noproxy '*' -sS -o "$out" -w '%{http_code}' -X "$method" \
    -H "Authorization: Bearer $token" "$@" "$BILLING_URL$path")" || die "$method $path: curl failed"
  if [[ "$status" != 200 ]]; then
    printf '%s %s -> HTTP %s: %s\n' "$method" "$path" "$status" "$(cat "$out")" >&2
    die "setup request failed"
  fi
  cat "$out"
  rm -f "$out"
}

# Seeds a target's database: the hospital's first authenticated request creates its entity row,
# then an admin selects the lite plan for it. Saves the body the benchmark will ask for.
seed() {  # target
  local target="$1" hospital_token admin_token csrf
  start_billing "$target" setup
  hospital_token="$(mint "$target" hospital "$HOSPITAL")"
  admin_token="$(mint "$target" admin admin)"
  call GET /billing/plan "$hospital_token" >/dev/null
  csrf="$(call GET /csrf-token "$admin_token" | sed -n 's/.*"csrf_token" *: *"\([^"]*\)".*/\1/p')"
  [[ -n "$csrf" ]] || die "$target: GET /csrf-token: no csrf_token in the response"
  call POST /billing/plan/select "$admin_token" -H "X-CSRF-Token: $csrf" \
    -H 'Content-Type: application/json' \
    --data "{\"plan_type\":\"lite\",\"id\":\"$HOSPITAL\",\"role\":\"hospital\"}" >/dev/null
  call GET /billing/plan "$hospital_token" >"$TMP/body-$target.json"
  grep -q '"current_plan":"lite"' "$TMP/body-$target.json" ||
    die "$target: GET /billing/plan does not show the selected lite plan: $(cat "$TMP/body-$target.json")"
  stop_billing
}

if [[ "$LIMITS" == 1 ]]; then
  say "seeding (one database for every target)"
  seed "${TARGETS[0]}"
  cp "$TMP/body-${TARGETS[0]}.json" "$TMP/body-new.json"
  cp "$TMP/body-new.json" "$TMP/body-baseline.json"
else
  for target in baseline new; do
    say "seeding $target"
    seed "$target"
  done
fi
BODY_BYTES="$(wc -c <"$TMP/body-new.json")"
say "GET /billing/plan body: $BODY_BYTES bytes"
# The two bodies differ in the plan's generated id and its timestamps; anything else differing
# means the change altered the answer (and the work), which the report says.
normalized() { sed -E 's/"plan_[0-9a-f]+"/"plan_ID"/g; s/"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"/"TIME"/g' "$1"; }
BODY_NOTE=""
if ! cmp -s <(normalized "$TMP/body-baseline.json") <(normalized "$TMP/body-new.json"); then
  BODY_NOTE="NOTE: baseline and new answer different bodies ($(wc -c <"$TMP/body-baseline.json") and $BODY_BYTES bytes, in body-*.json with KEEP_TMP=1); nginx serves new's"
  say "$BODY_NOTE"
fi

# --- nginx ------------------------------------------------------------------------------------
# nginx serves new's exact body. When run as root, nginx's workers drop to an unprivileged user:
# let them reach the file.
mkdir -p "$TMP/www/billing" "$TMP/nginx"
cp "$TMP/body-new.json" "$TMP/www/billing/plan"
chmod 711 "$TMP"
chmod 755 "$TMP/www" "$TMP/www/billing"
chmod 644 "$TMP/www/billing/plan"

free_port() {  # a port nothing listens on (nginx start is retried if it is taken meanwhile)
  local port j
  for ((j = 0; j < 50; j++)); do
    port=$((20000 + RANDOM % 40000))
    if ! command -v ss >/dev/null || [[ -z "$(ss -Htln "sport = :$port" 2>/dev/null)" ]]; then
      echo "$port"
      return
    fi
  done
  die "no free port found"
}

NGINX_PORT=""
for ((attempt = 0; attempt < 5; attempt++)); do
  port="$(free_port)"
  cat >"$TMP/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events {
  worker_connections 1024;
}
http {
  access_log off;
  client_body_temp_path $TMP/nginx/client_body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    root $TMP/www;
    location = /billing/plan {
      default_type application/json;
    }
  }
}
EOF
  "$NGINX" -e "$TMP/nginx-error.log" -p "$TMP/nginx" -c "$TMP/nginx.conf" -t -q 2>"$TMP/nginx-test.log" ||
    { cat "$TMP/nginx-test.log" >&2; die "nginx rejected its config"; }
  "$NGINX" -e "$TMP/nginx-error.log" -p "$TMP/nginx" -c "$TMP/nginx.conf" 2>>"$TMP/nginx-error.log" &
  NGINX_PID=$!
  for ((i = 0; i < 50; i++)); do
    if curl --noproxy '*' -sf -o /dev/null "http://127.0.0.1:$port/billing/plan"; then
      NGINX_PORT="$port"
      break
    fi
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$NGINX_PORT" ]] && break
  stop "$NGINX_PID"
  NGINX_PID=""
done
[[ -n "$NGINX_PORT" ]] || { cat "$TMP/nginx-error.log" >&2; die "nginx did not start"; }
NGINX_URL="http://127.0.0.1:$NGINX_PORT"
say "nginx listening at $NGINX_URL (pid $NGINX_PID)"

# nginx must answer the same bytes, or the comparison means nothing.
curl --noproxy '*' -sS "$NGINX_URL/billing/plan" >"$TMP/nginx-body"
cmp -s "$TMP/nginx-body" "$TMP/www/billing/plan" || die "nginx does not serve the saved body"

# --- wrk --------------------------------------------------------------------------------------
cpu_ticks() {  # utime+stime of a process and its children's threads (nginx: master + workers)
  local total=0 pid t
  for pid in "$@" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    [[ -r "/proc/$pid/stat" ]] || continue
    t="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}')" || continue
    [[ -n "$t" ]] && total=$((total + t))
  done
  echo "$total"
}
HZ="$(getconf CLK_TCK)"

to_ms() {  # wrk latency ("812.00us", "2.34ms", "1.02s", "1.00m") -> milliseconds
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.3f", n }'
}
human_bytes() {
  awk -v b="$1" 'BEGIN {
    if (b >= 1048576) printf "%.1fM", b / 1048576; else if (b >= 1024) printf "%.0fK", b / 1024; else printf "%d", b }'
}

RUN_NAME=() RUN_RPS=() RUN_P99=() RUN_CPU=() RUN_LOG=() RUN_ERRORS=()
run_wrk() {  # name url pid token [stderr file]
  local name="$1" url="$2" pid="$3" token="$4" log="${5:-}" n=$((${#RUN_NAME[@]} + 1)) before after
  local out="$TMP/wrk-$n-$name.txt"
  say "run $n: wrk $name: $url/billing/plan, ${DURATION}s"
  before="$(cpu_ticks "$pid")"
  wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${DURATION}s" --latency \
    -H "Authorization: Bearer $token" "$url/billing/plan" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk failed against $name"; }
  after="$(cpu_ticks "$pid")"
  echo "--- run $n: $name"
  cat "$out"
  echo
  local rps p99 non2xx socket
  rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
  p99="$(awk '$1 == "99%" {print $2}' "$out")"
  [[ -n "$rps" && -n "$p99" ]] || die "could not read Requests/sec and the 99% latency from wrk's output"
  non2xx="$(awk -F': *' '/Non-2xx or 3xx responses/ {print $2}' "$out")"
  socket="$(sed -n 's/^ *Socket errors: *//p' "$out")"
  local errors=""
  [[ -n "$non2xx" && "$non2xx" != 0 ]] && errors="$non2xx non-2xx"
  if [[ -n "$socket" ]]; then
    # Socket errors: connect 0, read 0, write 0, timeout 0
    local count
    count="$(echo "$socket" | tr -cs '0-9' ' ' | awk '{s = 0; for (i = 1; i <= NF; i++) s += $i; print s}')"
    [[ "$count" != 0 ]] && errors="${errors:+$errors, }socket errors ($socket)"
  fi
  RUN_NAME+=("$name")
  RUN_RPS+=("$rps")
  RUN_P99+=("$(to_ms "$p99")")
  RUN_CPU+=("$(awk -v t=$((after - before)) -v hz="$HZ" -v d="$DURATION" 'BEGIN {printf "%.2f", t / hz / d}')")
  if [[ -n "$log" ]]; then RUN_LOG+=("$(human_bytes "$(wc -c <"$log")")"); else RUN_LOG+=(-); fi
  RUN_ERRORS+=("${errors:-none}")
}

# LIMITS=1, target metrics: GET /metrics ten times a second while wrk runs; each scrape's time in
# seconds goes to the file.
scrape_metrics() {  # url file
  while :; do
    curl --noproxy '*' -sS -o /dev/null -w '%{time_total}\n' "$1/metrics" >>"$2" 2>/dev/null || true
    sleep 0.1
  done
}

run_billing() {  # target: starts it, checks it answers, loads it, stops it
  local target="$1" n=$((${#RUN_NAME[@]} + 1)) token scraper=""
  start_billing "$target" "run$n"
  token="$(mint "$target" hospital "$HOSPITAL")"  # minted per run: no expiry however long the bench
  call GET /billing/plan "$token" >/dev/null
  if [[ "$target" == metrics ]]; then
    curl --noproxy '*' -sS -o "$TMP/metrics.txt" "$BILLING_URL/metrics" || die "GET /metrics failed"
    scrape_metrics "$BILLING_URL" "$TMP/scrapes-run$n.txt" &
    scraper=$!
  fi
  run_wrk "$target" "$BILLING_URL" "$BILLING_PID" "$token" "$TMP/$target-run$n.stderr"
  if [[ -n "$scraper" ]]; then
    kill "$scraper" 2>/dev/null || true
    wait "$scraper" 2>/dev/null || true
  fi
  stop_billing
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
for ((round = 1; round <= ROUNDS; round++)); do
  token="$(mint new hospital "$HOSPITAL")"
  run_wrk nginx "$NGINX_URL" "$NGINX_PID" "$token"
  # Each round starts with the next target, so that a drift of the machine favours none.
  for ((k = 0; k < ${#TARGETS[@]}; k++)); do
    run_billing "${TARGETS[$(((k + round - 1) % ${#TARGETS[@]}))]}"
  done
done

# --- report -----------------------------------------------------------------------------------
best() {  # name -> index of that target's run with the highest req/s
  local name="$1" i bi=-1
  for i in "${!RUN_NAME[@]}"; do
    [[ "${RUN_NAME[$i]}" == "$name" ]] || continue
    if ((bi < 0)) || awk -v a="${RUN_RPS[$i]}" -v b="${RUN_RPS[$bi]}" 'BEGIN {exit !(a > b)}'; then bi=$i; fi
  done
  echo "$bi"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
verdict() { if [[ "$1" == 1 ]]; then echo PASS; else echo FAIL; fi; }
print_runs() {
  printf '%-4s %-9s %12s %10s %6s %8s  %s\n' run target 'requests/s' 'p99 (ms)' cpu stderr errors
  for i in "${!RUN_NAME[@]}"; do
    printf '%-4s %-9s %12s %10s %6s %8s  %s\n' "$((i + 1))" "${RUN_NAME[$i]}" "${RUN_RPS[$i]}" \
      "${RUN_P99[$i]}" "${RUN_CPU[$i]}" "${RUN_LOG[$i]}" "${RUN_ERRORS[$i]}"
  done
  echo
  echo "Best run of each target (the run with the highest requests/s, with that run's p99):"
  printf '%-9s %12s %10s %5s\n' target 'requests/s' 'p99 (ms)' run
  for target in nginx "${TARGETS[@]}"; do
    i="$(best "$target")"
    printf '%-9s %12s %10s %5s\n' "$target" "${RUN_RPS[$i]}" "${RUN_P99[$i]}" "$((i + 1))"
  done
  echo
}
setup_errors() {  # prints the runs with errors and the builds' warnings; status 1 if a run had errors
  local status=0 i target warnings
  for i in "${!RUN_ERRORS[@]}"; do
    if [[ "${RUN_ERRORS[$i]}" != none ]]; then
      echo "SETUP ERROR: run $((i + 1)) (${RUN_NAME[$i]}) had ${RUN_ERRORS[$i]}: the figures are not valid"
      status=1
    fi
  done
  for target in "${TARGETS[@]}"; do  # warnings and errors only (not the info lines, not access logs)
    warnings="$(cat "$TMP/$target"-*.stderr 2>/dev/null |
      grep -E '\[(warning|error|critical)\]|"level" *: *"(warn|warning|error|critical)"' | tail -n 10 || true)"
    if [[ -n "$warnings" ]]; then
      echo "$target logged (warnings and errors, last 10):"
      echo "$warnings"
    fi
  done
  return "$status"
}

if [[ "$LIMITS" == 1 ]]; then
  U="$(best unlimited)" L="$(best local)" R="$(best redis)" M="$(best metrics)"
  LOCAL_VS_OFF="$(ratio "${RUN_RPS[$L]}" "${RUN_RPS[$U]}")"
  REDIS_VS_OFF="$(ratio "${RUN_RPS[$R]}" "${RUN_RPS[$U]}")"
  METRICS_VS_LOCAL="$(ratio "${RUN_RPS[$M]}" "${RUN_RPS[$L]}")"
  SCRAPES="$(cat "$TMP"/scrapes-run*.txt 2>/dev/null | sort -n)"
  echo
  echo "GET /billing/plan ($BODY_BYTES-byte body), wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${DURATION}s, $(nproc) cores, load average before the runs: $LOAD_BEFORE"
  echo "build: ${DESC[new]}; limits 60,000,000 a minute (never reached)"
  echo "unlimited: RATE_LIMITS=off; local: in-process buckets; redis: REDIS_URL, a local redis-server on a Unix socket; metrics: local, /metrics scraped every 0.1 s"
  echo
  print_runs
  LOCAL_OK="$(awk -v r="$LOCAL_VS_OFF" -v g="$GOAL_LOCAL_LIMITS" 'BEGIN {print (r >= g) ? 1 : 0}')"
  REDIS_OK="$(awk -v r="$REDIS_VS_OFF" -v g="$GOAL_REDIS_LIMITS" 'BEGIN {print (r >= g) ? 1 : 0}')"
  printf '%-28s %-8s %s\n' "req/s local/unlimited" "$LOCAL_VS_OFF" "$(verdict "$LOCAL_OK") (goal >= $GOAL_LOCAL_LIMITS)"
  printf '%-28s %-8s %s\n' "req/s redis/unlimited" "$REDIS_VS_OFF" "$(verdict "$REDIS_OK") (goal >= $GOAL_REDIS_LIMITS)"
  printf '%-28s %-8s %s\n' "req/s metrics/local" "$METRICS_VS_LOCAL" "(information: 10 scrapes a second)"
  if [[ -n "$SCRAPES" ]]; then
    echo "$SCRAPES" | awk -v bytes="$(wc -c <"$TMP/metrics.txt")" '{t[NR] = $1 * 1000}
      END {printf "%-28s %d scrapes of %d bytes under load: median %.2f ms, p99 %.2f ms, max %.2f ms\n",
        "GET /metrics", NR, bytes, t[int((NR + 1) / 2)], t[int(NR * 0.99 + 0.999)], t[NR]}'
  fi
  status=0
  setup_errors || status=1
  ((status == 0)) && [[ "$LOCAL_OK" != 1 || "$REDIS_OK" != 1 ]] && status=3
  exit "$status"
fi

N="$(best nginx)"
B="$(best baseline)"
X="$(best new)"
NEW_VS_BASE="$(ratio "${RUN_RPS[$X]}" "${RUN_RPS[$B]}")"
BASE_VS_NGINX="$(ratio "${RUN_RPS[$B]}" "${RUN_RPS[$N]}")"
NEW_VS_NGINX="$(ratio "${RUN_RPS[$X]}" "${RUN_RPS[$N]}")"

echo
echo "GET /billing/plan ($BODY_BYTES-byte body), wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${DURATION}s, $(nproc) cores, load average before the runs: $LOAD_BEFORE"
echo "baseline: ${DESC[baseline]}"
echo "new:      ${DESC[new]}"
if [[ -n "${BENCH_DATABASE_URL:-}" ]]; then
  echo "database: PostgreSQL, one database per build (${PG_DATABASES[*]}); LOG_LEVEL=${BENCH_LOG_LEVEL:-info}"
else
  echo "database: SQLite, one file per build; LOG_LEVEL=${BENCH_LOG_LEVEL:-info}"
fi
[[ -n "$BODY_NOTE" ]] && echo "$BODY_NOTE"
echo "cpu = cores the server used during the run (user+system time / wall time); stderr = what billing wrote to it"
echo
print_runs
RPS_OK="$(awk -v r="$NEW_VS_BASE" -v g="$GOAL_VS_BASELINE" 'BEGIN {print (r >= g) ? 1 : 0}')"
P99_OK="$(awk -v x="${RUN_P99[$X]}" -v n="${RUN_P99[$N]}" 'BEGIN {print (x < n) ? 1 : 0}')"
printf '%-24s %-22s %s\n' "req/s new/baseline" "$NEW_VS_BASE" "$(verdict "$RPS_OK") (goal >= $GOAL_VS_BASELINE)"
printf '%-24s %-22s %s\n' "p99 new vs nginx" "${RUN_P99[$X]} vs ${RUN_P99[$N]} ms" "$(verdict "$P99_OK") (goal: new < nginx)"
printf '%-24s %-22s %s\n' "req/s baseline/nginx" "$BASE_VS_NGINX" "(information)"
printf '%-24s %-22s %s\n' "req/s new/nginx" "$NEW_VS_NGINX" \
  "(information; the former goal was >= $INFO_VS_NGINX: $(verdict "$(awk -v r="$NEW_VS_NGINX" -v g="$INFO_VS_NGINX" 'BEGIN {print (r >= g) ? 1 : 0}')"))"

status=0
setup_errors || status=1
((status == 0)) && [[ "$RPS_OK" != 1 || "$P99_OK" != 1 ]] && status=3
exit "$status"
