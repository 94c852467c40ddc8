#!/bin/sh
# ./test.sh: on a bare Debian 12 (root, or a user with sudo), installs what is missing (make and
# deps/debian-packages.txt), builds, and runs every test, unit + integration (`make test`).
set -eu
cd "$(dirname "$0")"
scripts/install-deps.sh
exec make test "$@"
