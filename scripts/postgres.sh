#!/usr/bin/env bash
# Starts a throw-away PostgreSQL server in a temporary directory and prints its URL.
#   scripts/postgres.sh start DIR   -> prints postgresql://postgres@127.0.0.1:PORT/billing_test
#   scripts/postgres.sh stop DIR
#   POSTGRES_OPTIONS='-c name=value ...' scripts/postgres.sh start DIR   # more server settings
set -euo pipefail
action=$1
dir=$2
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

as_owner() {
  # PostgreSQL refuses to run as root: run it as the postgres user then.
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync --no-locale -E UTF8 >"$dir/initdb.log" 2>&1
    for attempt in 1 2 3 4 5; do  # a random port; another one if it is taken
      port=$((20000 + RANDOM % 30000))
      if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 ${POSTGRES_OPTIONS:-}" start >/dev/null; then
        break
      fi
      [ "$attempt" -lt 5 ] || { cat "$dir/server.log" >&2; exit 1; }
    done
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres billing_test
    echo "postgresql://postgres@127.0.0.1:$port/billing_test"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
