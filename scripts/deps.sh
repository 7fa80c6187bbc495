#!/usr/bin/env bash
# The one list of Debian packages the project needs (build, tests, benchmarks). Installs what is
# missing; does nothing when all are there.
#   bash scripts/deps.sh         everything (scripts/test.sh)
#   bash scripts/deps.sh build   only what building and running billing needs (scripts/dev.sh)
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libpq-dev libsqlite3-dev libcurl4-openssl-dev libhiredis-dev
  libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev curl
)
only_build=false
[ "${1:-}" = build ] && only_build=true
$only_build || packages+=(
  clang-format sqlite3
  postgresql redis-server wrk nginx-light python3 python3-stripe python3-prometheus-client
  golang-go debootstrap chromium nodejs
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Debian's npm, unless npm came with another build of Node.js (NodeSource's nodejs has its own).
$only_build || command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

$only_build && exit 0
# Playwright (playwright-core, no browser of its own) for the pages' browser tests, which drive
# Debian's Chromium: the version package-lock.json pins (1.61, the last that runs on Debian 12's
# Node.js 18), from the npm registry, unless it is installed already.
pages=$(realpath "$(dirname "$0")/../tests/pages")
version_of() { node -p "require(process.argv[1])$2" "$1" 2>/dev/null || true; }
locked=$(version_of "$pages/package-lock.json" '.packages["node_modules/playwright-core"].version')
if [ -z "$locked" ] ||
  [ "$locked" != "$(version_of "$pages/node_modules/playwright-core/package.json" .version)" ]; then
  npm ci --prefix "$pages" --no-audit --no-fund --loglevel=error
fi
