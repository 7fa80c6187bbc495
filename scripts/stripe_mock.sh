#!/usr/bin/env bash
# Builds stripe-mock (Stripe's API emulator, vendored in third_party/stripe-mock/) for the Stripe
# provider's tests, offline with Debian's Go.
#   bash scripts/stripe_mock.sh build OUT_DIR   -> prints OUT_DIR/stripe-mock
# Does nothing when OUT_DIR/stripe-mock is newer than every vendored file. The Go build cache
# lives in OUT_DIR/gocache, so a rebuild after a change reuses the unchanged packages.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
vendored=$root/third_party/stripe-mock

usage() {
  echo "usage: $0 build OUT_DIR" >&2
  exit 2
}
[ $# -eq 2 ] && [ "$1" = build ] || usage

out=$(mkdir -p "$2" && cd "$2" && pwd)
binary=$out/stripe-mock
if [ -x "$binary" ] && [ -z "$(find "$vendored" -newer "$binary" -print -quit)" ]; then
  echo "$binary"
  exit 0
fi
# build.sh prints the binary's path last; its build log goes to stderr so callers can capture
# the path alone.
GOCACHE=$out/gocache bash "$vendored/build.sh" "$out" >&2
echo "$binary"
