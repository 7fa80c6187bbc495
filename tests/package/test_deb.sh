#!/usr/bin/env bash
# The Debian package end to end: `cpack -G DEB` in BUILD_DIR, then in a clean Debian 12 root
# (debootstrap minbase, plus systemd for `systemd-analyze verify`) `apt-get install ./billing_*.deb`
# resolves the runtime libraries from Debian's mirror; checks the files, their owners and modes,
# the billing user and the generated secrets; verifies the unit; and starts the installed service
# as the billing user with the installed environment file, as the unit would, and asks /health.
#
# Usage (as root): bash tests/package/test_deb.sh [BUILD_DIR]   (default: build, a plain build)
# The prepared root is kept as BUILD_DIR/package-test/bookworm-root.tar: only the first run pays
# for debootstrap. BILLING_DEBIAN_MIRROR overrides the mirror (default: the one apt uses here).
set -euo pipefail
build=$(realpath "${1:-$(dirname "$0")/../../build}")
started=$(date +%s)
say() { echo "== [$(($(date +%s) - started)) s] $*"; }
fail() {
  echo "test_deb: FAIL: $*" >&2
  exit 1
}
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot, mount)"

# The Debian mirror this machine's apt uses (deb822 or one-line sources), not the security one.
mirror=${BILLING_DEBIAN_MIRROR:-$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
  2>/dev/null | grep -E '^(URIs:|deb )' | grep -oE 'https?://[^ ]+/debian/?' | grep -v security |
  head -n1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}
# Mirrors frozen at a snapshot serve Release files past their Valid-Until date.
apt_options=(-o Acquire::Check-Valid-Until=false -o Acquire::Retries=3)

say "package (cpack -G DEB in $build)"
ninja -C "$build" billing >/dev/null
rm -f "$build"/billing_*_amd64.deb
(cd "$build" && cpack -G DEB >/dev/null)
debs=("$build"/billing_*_amd64.deb)
if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then
  fail "cpack made no billing_<version>_amd64.deb"
fi
deb=${debs[0]}
say "built $(basename "$deb")"

cache_dir=$build/package-test
mkdir -p "$cache_dir"
tarball=$cache_dir/bookworm-root.tar
(
  flock 9  # two runs sharing a build directory prepare the root once
  if [ ! -f "$tarball" ]; then
    say "debootstrap --variant=minbase bookworm from $mirror (first run only)"
    fresh=$(mktemp -d "$cache_dir/debootstrap.XXXXXX")
    debootstrap --variant=minbase --include=systemd bookworm "$fresh" "$mirror" \
      >"$cache_dir/debootstrap.log" 2>&1 || {
      tail -n 30 "$cache_dir/debootstrap.log"
      rm -rf --one-file-system "$fresh"
      fail "debootstrap from $mirror failed (log: $cache_dir/debootstrap.log)"
    }
    tar -C "$fresh" -cf "$tarball.partial" . && mv "$tarball.partial" "$tarball"
    rm -rf --one-file-system "$fresh"
  fi
) 9>"$cache_dir/lock"

root=$(mktemp -d "$cache_dir/root.XXXXXX")
service_pid=
cleanup() {
  if [ -n "$service_pid" ]; then kill -KILL "$service_pid" 2>/dev/null || true; fi
  if mountpoint -q "$root/proc"; then umount "$root/proc"; fi
  # --one-file-system: never follow into anything still mounted inside the root.
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
tar -C "$root" -xf "$tarball"
chmod 0755 "$root"  # mktemp's 0700 (also in the tarball): as / every user must traverse it
mount -t proc proc "$root/proc"
cp /etc/resolv.conf /etc/hosts "$root/etc/"
echo "deb $mirror bookworm main" >"$root/etc/apt/sources.list"
cp "$deb" "$root/tmp/"
in_root() { chroot "$root" "$@"; }
say "root ready in $root"

in_root apt-get "${apt_options[@]}" -qq update
DEBIAN_FRONTEND=noninteractive in_root apt-get "${apt_options[@]}" install -y -qq \
  --no-install-recommends "/tmp/$(basename "$deb")" >"$root/install.log" 2>&1 || {
  cat "$root/install.log"
  fail "apt-get install ./$(basename "$deb") failed"
}
say "installed with its dependencies"

expect_stat() {  # expect_stat PATH "MODE USER GROUP"
  local got
  got=$(in_root stat -c '%a %U %G' "$1") || fail "$1 is missing"
  [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
}
expect_stat /usr/bin/billing "755 root root"
expect_stat /etc/billing/plans.json "644 root root"
expect_stat /etc/billing/billing.env "600 root root"
expect_stat /lib/systemd/system/billing.service "644 root root"
expect_stat /var/lib/billing "750 billing billing"
IFS=: read -r _ _ uid _ _ home shell < <(in_root getent passwd billing) || fail "no billing user"
[ "$uid" -lt 1000 ] || fail "billing is not a system user (uid $uid)"
[ "$home" = /var/lib/billing ] || fail "billing's home is $home"
[ "$shell" = /usr/sbin/nologin ] || fail "billing's shell is $shell"
env_file=$root/etc/billing/billing.env
grep -qx 'DATABASE_URL=sqlite:////var/lib/billing/billing.db' "$env_file" || fail "DATABASE_URL"
grep -qx 'PLANS_CONFIG=/etc/billing/plans.json' "$env_file" || fail "PLANS_CONFIG"
jwt=$(sed -n 's/^JWT_SECRET_KEY=//p' "$env_file")
csrf=$(sed -n 's/^CSRF_SECRET_KEY=//p' "$env_file")
[[ $jwt =~ ^[0-9a-f]{64}$ && $csrf =~ ^[0-9a-f]{64}$ && $jwt != "$csrf" ]] ||
  fail "the secrets are not two different 256-bit values: '$jwt' '$csrf'"
before=$(sha256sum <"$env_file")
DEBIAN_FRONTEND=noninteractive in_root dpkg -i "/tmp/$(basename "$deb")" >/dev/null
[ "$(sha256sum <"$env_file")" = "$before" ] || fail "reinstalling changed billing.env"
say "files, modes, user and secrets as expected; a reinstall keeps the secrets"

in_root systemd-analyze verify /lib/systemd/system/billing.service ||
  fail "systemd-analyze verify billing.service"
say "systemd-analyze verify billing.service passed"

# As the unit runs it: the environment file read as root, then the billing user, in its
# directory. Port 0: the service picks a free one and prints it.
as_billing='set -a; . /etc/billing/billing.env; set +a; cd /var/lib/billing
  exec setpriv --reuid=billing --regid=billing --init-groups --no-new-privs /usr/bin/billing "$@"'
log=$root/serve.log
chroot "$root" /bin/sh -c "$as_billing" sh serve --port 0 >"$log" 2>&1 &
service_pid=$!
port=
for _ in $(seq 150); do
  port=$(sed -n 's#^billing listening on http://127.0.0.1:\([0-9]*\)$#\1#p' "$log")
  [ -n "$port" ] && break
  kill -0 "$service_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || {
  cat "$log"
  fail "the installed service did not start"
}
health=$(curl -fsS "http://127.0.0.1:$port/billing/health") || fail "GET /billing/health"
[[ $health == *'"status":"healthy"'* ]] || fail "GET /billing/health answered $health"
[ "$(ps -o uid= -p "$service_pid" | tr -d ' ')" = "$uid" ] || fail "the service is not the billing user"
[ "$(in_root stat -c '%U %G' /var/lib/billing/billing.db)" = "billing billing" ] ||
  fail "the database is not the billing user's"
in_root /bin/sh -c "$as_billing" sh backup --to /var/lib/billing/backup.db >/dev/null ||
  fail "billing backup as the billing user"
kill -TERM "$service_pid"
wait "$service_pid" || fail "the service did not exit 0 on SIGTERM: $(cat "$log")"
service_pid=
say "the installed service ran as billing, answered $health, made a backup, stopped cleanly"
say "test_deb OK"
