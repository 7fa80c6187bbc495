#!/usr/bin/env bash
# Tests scripts/check_layers.py on fixture trees built in a temporary directory.
# Usage: bash tests/layers/test_check_layers.sh    (prints "N passed, K failed"; exit 1 if K > 0)
set -uo pipefail
check="$(cd "$(dirname "$0")/../.." && pwd)/scripts/check_layers.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# put TREE PATH LINE... : writes the lines to TREE/PATH
put() {
  local tree=$1 path=$2
  shift 2
  mkdir -p "$(dirname "$work/$tree/$path")"
  printf '%s\n' "$@" >"$work/$tree/$path"
}

# A tree that keeps every rule: each fixture below starts from a copy of it and adds one mistake.
clean() {
  local t=$1
  put "$t" src/kit/clock.hpp '#pragma once' '#include <chrono>'
  put "$t" src/kit/json.cpp '#include "kit/clock.hpp"' '#include <boost/json/value.hpp>'
  put "$t" src/core/money.hpp '#pragma once' '#include "kit/clock.hpp"'
  put "$t" src/core/db.hpp '#pragma once' '#include "core/money.hpp"' \
    '#include <boost/asio/awaitable.hpp>'
  put "$t" src/http/route.hpp '#pragma once' '#include "core/db.hpp"' '#include "kit/clock.hpp"' \
    '#include <boost/beast/http.hpp>'
  put "$t" src/auth/jwt.hpp '#pragma once' '#include "core/money.hpp"' '#include "http/route.hpp"'
  put "$t" src/entities/repo.hpp '#pragma once' '#include "core/db.hpp"'
  put "$t" src/plans/types.hpp '#pragma once' '#include "entities/repo.hpp"' \
    '#include <boost/asio/awaitable.hpp>' '// #include <boost/beast/http.hpp> (a comment)'
  put "$t" src/plans/routes.cpp '#include "plans/types.hpp"' '#include "http/route.hpp"' \
    '#include "auth/jwt.hpp"' '#include "types.hpp"'
  put "$t" src/services/selection.cpp '#include "plans/types.hpp"' '#include "kit/clock.hpp"'
  # A domain nobody listed: recognised as one by not being a layer.
  put "$t" src/payments/checkout.hpp '#pragma once' '#include "plans/types.hpp"'
  put "$t" src/storage/sqlite/db.cpp '#include "core/db.hpp"' '#include "plans/types.hpp"' \
    '#include "storage/sqlite/db.hpp"' '#include <sqlite3.h>'
  put "$t" src/storage/sqlite/db.hpp '#pragma once'
  put "$t" src/app/app.cpp '#include "storage/sqlite/db.hpp"' '#include "http/route.hpp"' \
    '#include "auth/jwt.hpp"' '#include "services/../plans/types.hpp"' '#include <boost/beast.hpp>'
  put "$t" src/main.cpp '#include "app/app.cpp"' '#include <cstdlib>'
  # Tests may reach across layers (and into tests/).
  put "$t" src/kit/clock_test.cpp '#include "plans/types.hpp"' '#include "tests/support/db.hpp"'
  put "$t" tests/support/db.hpp '#pragma once' '#include "storage/sqlite/db.hpp"'
}

# expect NAME CODE [TEXT...] : runs the check on $work/NAME; the exit code must be CODE and the
# output must contain every TEXT (fixed strings).
expect() {
  local name=$1 code=$2 out actual ok=1 text
  shift 2
  out=$(python3 "$check" --root "$work/$name" 2>&1)
  actual=$?
  if [[ $actual != "$code" ]]; then
    ok=0
    echo "FAIL $name: exit $actual, expected $code"
  fi
  for text in "$@"; do
    if ! grep -qF -- "$text" <<<"$out"; then
      ok=0
      echo "FAIL $name: output lacks: $text"
    fi
  done
  if ((ok)); then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    sed 's/^/     | /' <<<"$out"
  fi
}

# fixture NAME : a copy of the clean tree to add a mistake to
fixture() {
  clean "$1"
}

fixture clean
expect clean 0 "layers: OK (15 files, 19 arrows)" \
  "domains: entities, payments, plans, services" \
  "  plans -> auth, entities, http" \
  "  storage -> core, plans"
# The clean tree must say nothing but the summary.
if python3 "$check" --root "$work/clean" | grep -q ': .* -> .*: '; then
  failed=$((failed + 1)); echo "FAIL clean: a violation was printed"
else
  passed=$((passed + 1)); echo "ok   clean prints no violation"
fi

fixture cycle
put cycle src/plans/uses_services.hpp '#pragma once' '#include "services/selection.hpp"'
put cycle src/services/selection.hpp '#pragma once'
expect cycle 1 \
  "src/plans/uses_services.hpp:2: plans -> services: part of the cycle plans -> services -> plans" \
  "src/services/selection.cpp:1: services -> plans: part of the cycle plans -> services -> plans"

fixture cycle3  # a cycle through three domains
put cycle3 src/entities/x.hpp '#pragma once' '#include "payments/checkout.hpp"'
expect cycle3 1 "part of the cycle entities -> payments -> plans -> entities"

fixture kit_plans
put kit_plans src/kit/text.hpp '#pragma once' '' '#include "plans/types.hpp"'
expect kit_plans 1 "src/kit/text.hpp:3: kit -> plans: kit knows no product folder"

fixture core_domain
put core_domain src/core/entity.hpp '#pragma once' '#include "entities/repo.hpp"'
expect core_domain 1 "src/core/entity.hpp:2: core -> entities:"

fixture storage_http
put storage_http src/storage/sqlite/db.hpp '#pragma once' '#include "http/route.hpp"'
expect storage_http 1 "src/storage/sqlite/db.hpp:2: storage -> http: storage knows no http"

fixture auth_storage
put auth_storage src/auth/csrf.cpp '#include "auth/jwt.hpp"' '#include "storage/sqlite/db.hpp"'
expect auth_storage 1 "src/auth/csrf.cpp:2: auth -> storage: auth knows no storage"

fixture domain_storage
put domain_storage src/services/routes.cpp '#include "storage/sqlite/db.hpp"'
expect domain_storage 1 "src/services/routes.cpp:1: services -> storage: a domain declares"

fixture auth_domain
put auth_domain src/auth/csrf.cpp '#include "payments/checkout.hpp"'
expect auth_domain 1 "src/auth/csrf.cpp:1: auth -> payments: auth knows no domain folder"

fixture domain_beast
put domain_beast src/services/routes.cpp '#include "services/../kit/clock.hpp"' \
  '#include <boost/beast/http.hpp>'
expect domain_beast 1 "src/services/routes.cpp:2: services -> <boost/beast/http.hpp>: domain folders use no Beast"

fixture new_domain_curl
put new_domain_curl src/payments/stripe.cpp '#include <boost/asio/awaitable.hpp>' '#include <curl/curl.h>'
expect new_domain_curl 1 "src/payments/stripe.cpp:2: payments -> <curl/curl.h>: domain folders use no curl"

fixture http_plans
put http_plans src/http/dispatch.cpp '#include "http/route.hpp"' '#include <plans/types.hpp>'
expect http_plans 1 "src/http/dispatch.cpp:2: http -> plans: http includes only kit and core"

# The stripe adapter: it may use payments, http, core and kit (curl only through http/); only app
# and main include it.
fixture stripe_adapter
put stripe_adapter src/stripe/provider.hpp '#pragma once' '#include "payments/checkout.hpp"' \
  '#include "core/money.hpp"' '#include "kit/clock.hpp"' '#include <boost/asio/thread_pool.hpp>'
put stripe_adapter src/stripe/provider.cpp '#include "stripe/provider.hpp"' \
  '#include "http/curl_client.hpp"'
put stripe_adapter src/http/curl_client.hpp '#pragma once' '#include <curl/curl.h>'
put stripe_adapter src/app/payments.cpp '#include "stripe/provider.hpp"'
expect stripe_adapter 0 "layers:  app, auth, core, http, kit, main, storage, stripe" \
  "  stripe -> core, http, kit, payments" "  app -> auth, http, plans, storage, stripe"

fixture stripe_curl
put stripe_curl src/stripe/provider.cpp '#include <curl/curl.h>'
expect stripe_curl 1 "src/stripe/provider.cpp:1: stripe -> <curl/curl.h>: adapter folders use no curl"

fixture stripe_storage
put stripe_storage src/stripe/provider.cpp '#include "payments/checkout.hpp"' \
  '#include "storage/sqlite/db.hpp"'
expect stripe_storage 1 \
  "src/stripe/provider.cpp:2: stripe -> storage: stripe (an adapter) includes only core, kit, http, payments"

fixture stripe_auth
put stripe_auth src/stripe/provider.cpp '#include "auth/jwt.hpp"'
expect stripe_auth 1 "src/stripe/provider.cpp:1: stripe -> auth: stripe (an adapter) includes only"

fixture domain_stripe
put domain_stripe src/stripe/provider.hpp '#pragma once' '#include "kit/clock.hpp"'
put domain_stripe src/payments/routes.cpp '#include "payments/checkout.hpp"' \
  '#include "stripe/provider.hpp"'
expect domain_stripe 1 \
  "src/payments/routes.cpp:2: payments -> stripe: only app and main (the composition root) include the adapter stripe"

fixture storage_stripe
put storage_stripe src/stripe/provider.hpp '#pragma once'
put storage_stripe src/storage/sqlite/db.hpp '#pragma once' '#include "stripe/provider.hpp"'
expect storage_stripe 1 "src/storage/sqlite/db.hpp:2: storage -> stripe: only app and main"

fixture typo
put typo src/plans/views.cpp '#include "plans/types.hpp"' '#include "servcies/selection.hpp"'
expect typo 1 'src/plans/views.cpp:2: plans -> "servcies/selection.hpp": names no file'

echo "$passed passed, $failed failed"
((failed == 0))
