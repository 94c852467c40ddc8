#!/bin/sh
# Installs the npm packages the integration tests use (tests/integration/mqttjs: MQTT.js, a
# third-party client run in Node), exactly as package-lock.json pins them. Idempotent: does
# nothing when they are installed and the lock file has not changed since. Needs node and
# npm (Debian's nodejs and npm packages; deps/debian-packages.txt lists nodejs, and npm is
# installed here when node came without it).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dir="$here/tests/integration/mqttjs"
stamp="$dir/node_modules/.installed-lock"
if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  as_root=""
  [ "$(id -u)" -eq 0 ] || as_root=sudo
  echo "install-test-tools: installing npm"
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q --no-install-recommends npm
fi
echo "install-test-tools: npm ci in tests/integration/mqttjs"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
cp "$dir/package-lock.json" "$stamp"
