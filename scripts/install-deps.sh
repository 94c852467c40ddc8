#!/bin/sh
# Installs the Debian packages listed in deps/debian-packages.txt that are missing.
# Idempotent: does nothing (and needs no root) when everything is already installed.
# POSIX sh on purpose: it runs first on a bare Debian 12, before anything else is installed.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
wanted=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$here/deps/debian-packages.txt" | grep -v '^$')
missing=""
for pkg in $wanted; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing="$missing $pkg"
done
[ -n "$missing" ] || exit 0
echo "install-deps: installing$missing"
as_root=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing packages and no sudo; run as root:  apt-get install$missing" >&2
    exit 1
  fi
  as_root=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# Always refresh the lists first: a fresh system or container has none, and stale ones 404.
$as_root apt-get update -q
# policy-rc.d keeps the packaged mosquitto service from starting and taking port 1883.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $as_root tee /usr/sbin/policy-rc.d >/dev/null
  $as_root chmod +x /usr/sbin/policy-rc.d
  trap '$as_root rm -f /usr/sbin/policy-rc.d' EXIT
fi
# $missing unquoted on purpose: one word per package.
# shellcheck disable=SC2086
$as_root apt-get install -y -q --no-install-recommends $missing
