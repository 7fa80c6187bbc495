#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs `billing serve --dev`
# (SQLite billing.db in the current directory, local payments, generated secrets, demo data).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/deps.sh" build
cmake -S "$root" -B "$root/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$root/build-release" billing
exec "$root/build-release/billing" serve --dev "$@"
