#!/bin/sh
# ./run.sh: on a bare Debian 12 (root, or a user with sudo), installs what is missing (make and
# deps/debian-packages.txt), builds, and starts the broker in the foreground (`make run`).
# Arguments go to make, e.g. ./run.sh CONF=my.conf
set -eu
cd "$(dirname "$0")"
scripts/install-deps.sh
exec make run "$@"
