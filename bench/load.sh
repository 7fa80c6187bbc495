#!/usr/bin/env bash
# Load benchmark: GET /billing/plan on a Release build of billing, against nginx serving the
# same bytes from a file, on the same machine in the same run. See bench/README.md.
#
#   bash bench/load.sh                 # 10 s per wrk run
#   DURATION=5 bash bench/load.sh      # shorter runs
#   KEEP_TMP=1 bash bench/load.sh      # keep the temp dir (logs, nginx.conf, wrk outputs)
#   BENCH_DATABASE_URL=postgresql://... bash bench/load.sh   # billing on PostgreSQL
#     (a throw-away server: scripts/postgres.sh start DIR prints such a URL)
#
# Order: nginx, billing, nginx, billing. Each target is scored by the better of its two runs
# (the run with the higher requests/s; that run's p99 goes with it).
# Goals: billing req/s >= 0.60 x nginx req/s, billing p99 < 5 ms.
# Exit status: 0 goals met, 3 a goal missed, 1 the setup failed (build, start, errors in wrk).
# Everything listens on 127.0.0.1 only.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$REPO/build-release"
BIN="$BUILD/billing"
DURATION="${DURATION:-10}"
WRK_THREADS=2
WRK_CONNECTIONS=64
HOSPITAL=bench-hospital-1
GOAL_RATIO=0.60
GOAL_P99_MS=5

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'load.sh: %s\n' "$*" >&2; exit 1; }

for tool in cmake ninja wrk nginx curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a whole number of seconds (got '$DURATION')"
NGINX="$(command -v nginx)"

# --- build ------------------------------------------------------------------------------------
say "Release build in $BUILD"
cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBILLING_WERROR=ON >/dev/null
ninja -C "$BUILD" billing

# --- temp dir and clean-up --------------------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/billing-load.XXXXXX")"
BILLING_PID=""
NGINX_PID=""

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
  local status=$?
  trap - EXIT INT TERM
  [[ -n "$BILLING_PID" ]] && stop "$BILLING_PID"
  [[ -n "$NGINX_PID" ]] && stop "$NGINX_PID"
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

# --- billing ----------------------------------------------------------------------------------
random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
JWT_SECRET="$(random_hex)"
CSRF_SECRET="$(random_hex)"

# billing runs with only the variables it needs, so that a PORT, HOST, STRIPE_* or PLANS_CONFIG
# in the caller's environment cannot change what is measured. (`env` execs billing, so $! of a
# background `env -i ... billing serve &` is billing's own pid.)
BILLING_ENV=(
  PATH="$PATH" HOME="${HOME:-/}"
  JWT_SECRET_KEY="$JWT_SECRET" CSRF_SECRET_KEY="$CSRF_SECRET"
  DATABASE_URL="${BENCH_DATABASE_URL:-sqlite:///$TMP/billing.db}" LOG_LEVEL=warn HTTP_THREADS=2
  DATABASE_POOL_SIZE="${BENCH_DATABASE_POOL_SIZE:-4}"
  PLANS_CONFIG="$REPO/config/plans.json"
)

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

say "starting billing"
env -i "${BILLING_ENV[@]}" "$BIN" serve --host 127.0.0.1 --port 0 2>"$TMP/billing.log" &
BILLING_PID=$!
# billing logs `listening on http://127.0.0.1:<port>` at info level, which LOG_LEVEL=warn hides;
# the line is used when it is there, the socket table otherwise.
BILLING_PORT=""
for ((i = 0; i < 300; i++)); do
  BILLING_PORT="$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$TMP/billing.log" | head -n1)"
  [[ -z "$BILLING_PORT" ]] && BILLING_PORT="$(listening_port "$BILLING_PID")"
  [[ -n "$BILLING_PORT" ]] && break
  kill -0 "$BILLING_PID" 2>/dev/null || { cat "$TMP/billing.log" >&2; die "billing exited at start"; }
  sleep 0.1
done
[[ -n "$BILLING_PORT" ]] || { cat "$TMP/billing.log" >&2; die "billing did not start listening within 30 s"; }
BILLING_URL="http://127.0.0.1:$BILLING_PORT"
say "billing listening at $BILLING_URL (pid $BILLING_PID)"

HOSPITAL_TOKEN="$(env -i "${BILLING_ENV[@]}" "$BIN" token --role hospital --entity "$HOSPITAL")"
ADMIN_TOKEN="$(env -i "${BILLING_ENV[@]}" "$BIN" token --role admin --entity admin)"

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

# The hospital's first authenticated request creates its entity row.
call GET /billing/plan "$HOSPITAL_TOKEN" >/dev/null
CSRF_TOKEN="$(call GET /csrf-token "$ADMIN_TOKEN" | sed -n 's/.*"csrf_token" *: *"\([^"]*\)".*/\1/p')"
[[ -n "$CSRF_TOKEN" ]] || die "GET /csrf-token: no csrf_token in the response"
call POST /billing/plan/select "$ADMIN_TOKEN" -H "X-CSRF-Token: $CSRF_TOKEN" \
  -H 'Content-Type: application/json' \
  --data "{\"plan_type\":\"lite\",\"id\":\"$HOSPITAL\",\"role\":\"hospital\"}" >/dev/null

# The exact body the benchmark will ask for, for nginx to serve.
mkdir -p "$TMP/www/billing"
call GET /billing/plan "$HOSPITAL_TOKEN" >"$TMP/www/billing/plan"
grep -q '"current_plan":"lite"' "$TMP/www/billing/plan" ||
  die "GET /billing/plan does not show the selected lite plan: $(cat "$TMP/www/billing/plan")"
BODY_BYTES="$(wc -c <"$TMP/www/billing/plan")"
say "GET /billing/plan body: $BODY_BYTES bytes"

# --- nginx ------------------------------------------------------------------------------------
# When run as root, nginx's workers drop to an unprivileged user: let them reach the file.
chmod 711 "$TMP"
chmod 755 "$TMP/www" "$TMP/www/billing"
chmod 644 "$TMP/www/billing/plan"
mkdir -p "$TMP/nginx"

free_port() {  # a port nothing listens on (nginx start is retried if it is taken meanwhile)
  local port
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

# Both must answer the same bytes, or the comparison means nothing.
curl --noproxy '*' -sS -H "Authorization: Bearer $HOSPITAL_TOKEN" "$NGINX_URL/billing/plan" >"$TMP/nginx-body"
cmp -s "$TMP/nginx-body" "$TMP/www/billing/plan" || die "nginx does not serve the saved body"

# --- wrk --------------------------------------------------------------------------------------
cpu_ticks() {  # utime+stime of a process and its children's threads (nginx: master + workers)
  local total=0 pid t
  for pid in "$@" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    [[ -r "/proc/$pid/stat" ]] || continue
    t="$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')"
    total=$((total + t))
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

RUN_NAME=() RUN_RPS=() RUN_P99=() RUN_CPU=() RUN_ERRORS=()
run_wrk() {  # name url pid
  local name="$1" url="$2" pid="$3" out="$TMP/wrk-$((${#RUN_NAME[@]} + 1))-$1.txt" before after
  say "wrk $name: $url/billing/plan, ${DURATION}s"
  before="$(cpu_ticks "$pid")"
  wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${DURATION}s" --latency \
    -H "Authorization: Bearer $HOSPITAL_TOKEN" "$url/billing/plan" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk failed against $name"; }
  after="$(cpu_ticks "$pid")"
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
  RUN_ERRORS+=("${errors:-none}")
}

run_wrk nginx "$NGINX_URL" "$NGINX_PID"
run_wrk billing "$BILLING_URL" "$BILLING_PID"
run_wrk nginx "$NGINX_URL" "$NGINX_PID"
run_wrk billing "$BILLING_URL" "$BILLING_PID"

# --- report -----------------------------------------------------------------------------------
best() {  # name -> index of that target's run with the highest req/s
  local name="$1" i bi=-1
  for i in "${!RUN_NAME[@]}"; do
    [[ "${RUN_NAME[$i]}" == "$name" ]] || continue
    if ((bi < 0)) || awk -v a="${RUN_RPS[$i]}" -v b="${RUN_RPS[$bi]}" 'BEGIN {exit !(a > b)}'; then bi=$i; fi
  done
  echo "$bi"
}
N="$(best nginx)"
B="$(best billing)"
RATIO="$(awk -v b="${RUN_RPS[$B]}" -v n="${RUN_RPS[$N]}" 'BEGIN {printf "%.3f", b / n}')"

echo
echo "GET /billing/plan ($BODY_BYTES-byte body), wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${DURATION}s, $(nproc) cores"
echo "cpu = cores the server used during the run (user+system time / wall time)"
echo
printf '%-4s %-8s %12s %10s %6s  %s\n' run target 'requests/s' 'p99 (ms)' cpu errors
for i in "${!RUN_NAME[@]}"; do
  printf '%-4s %-8s %12s %10s %6s  %s\n' "$((i + 1))" "${RUN_NAME[$i]}" "${RUN_RPS[$i]}" \
    "${RUN_P99[$i]}" "${RUN_CPU[$i]}" "${RUN_ERRORS[$i]}"
done
echo
echo "Best of each pair (the run with the higher requests/s, with that run's p99):"
printf '%-8s %12s %10s\n' target 'requests/s' 'p99 (ms)'
printf '%-8s %12s %10s\n' nginx "${RUN_RPS[$N]}" "${RUN_P99[$N]}"
printf '%-8s %12s %10s\n' billing "${RUN_RPS[$B]}" "${RUN_P99[$B]}"
echo

verdict() { if [[ "$1" == 1 ]]; then echo PASS; else echo FAIL; fi; }
RATIO_OK="$(awk -v r="$RATIO" -v g="$GOAL_RATIO" 'BEGIN {print (r >= g) ? 1 : 0}')"
P99_OK="$(awk -v p="${RUN_P99[$B]}" -v g="$GOAL_P99_MS" 'BEGIN {print (p < g) ? 1 : 0}')"
printf '%-40s %-10s %s\n' "req/s ratio billing/nginx" "$RATIO" "$(verdict "$RATIO_OK") (goal >= $GOAL_RATIO)"
printf '%-40s %-10s %s\n' "billing p99" "${RUN_P99[$B]} ms" "$(verdict "$P99_OK") (goal < $GOAL_P99_MS ms)"

status=0
for i in "${!RUN_ERRORS[@]}"; do
  if [[ "${RUN_ERRORS[$i]}" != none ]]; then
    echo "SETUP ERROR: run $((i + 1)) (${RUN_NAME[$i]}) had ${RUN_ERRORS[$i]}: the figures are not valid"
    status=1
  fi
done
if [[ -s "$TMP/billing.log" ]] && grep -qv 'listening on' "$TMP/billing.log"; then
  echo "billing logged (warn and above):"
  grep -v 'listening on' "$TMP/billing.log" | tail -n 20
fi
((status == 0)) && [[ "$RATIO_OK" != 1 || "$P99_OK" != 1 ]] && status=3
exit "$status"
