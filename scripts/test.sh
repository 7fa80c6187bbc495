#!/usr/bin/env bash
# The README's test command: installs what is missing, builds plain and with
# AddressSanitizer + UndefinedBehaviorSanitizer, starts PostgreSQL in a temporary directory, and
# runs every test (unit, storage over SQLite and PostgreSQL, HTTP end to end) in both builds;
# and installs the Debian package into a clean Debian 12 root (tests/package/test_deb.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/deps.sh

echo "== layers (include arrows between src/ folders)"
python3 scripts/check_layers.py
bash tests/layers/test_check_layers.sh

jobs=$(nproc)
build() {  # build DIR [cmake options...]
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" -G Ninja -DBILLING_WERROR=ON "$@" >/dev/null
  ninja -C "$dir" -j "$jobs" billing billing_tests billing_bench
}

echo "== build (plain)"
build build -DCMAKE_BUILD_TYPE=Release  # as scripts/dev.sh, the package and bench/ build it
echo "== build (address + undefined sanitizers)"
build build-sanitize -DCMAKE_BUILD_TYPE=Debug -DBILLING_SANITIZE=ON
echo "== build (stripe-mock, Stripe's API emulator for tests/stripe/)"
BILLING_STRIPE_MOCK=$(bash scripts/stripe_mock.sh build build-stripe-mock)

echo "== Debian package (installed into a clean Debian 12 root, started from it)"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" bash tests/package/test_deb.sh build

pg_dir=$(mktemp -d /tmp/billing-pg.XXXXXX)
trap 'bash "$root/scripts/postgres.sh" stop "$pg_dir"; rm -rf "$pg_dir"' EXIT
BILLING_TEST_POSTGRES_URL=$(bash scripts/postgres.sh start "$pg_dir")
export BILLING_TEST_POSTGRES_URL BILLING_REQUIRE_POSTGRES=1
export BILLING_STRIPE_MOCK BILLING_REQUIRE_STRIPE_MOCK=1
export BILLING_REQUIRE_BROWSER=1  # deps.sh installed Chromium and playwright-core
echo "== PostgreSQL at $BILLING_TEST_POSTGRES_URL"

echo "== tests (plain)"
(cd build && ctest --output-on-failure -j "$jobs")
echo "== tests (sanitized)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-sanitize && ctest --output-on-failure -j "$jobs")
