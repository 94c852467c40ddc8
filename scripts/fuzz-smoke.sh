#!/usr/bin/env bash
# Runs every fuzz target briefly over its checked-in corpus. Usage: fuzz-smoke.sh BUILD_DIR
set -euo pipefail
build=${1:-build-fuzz}
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${FUZZ_SECONDS:-20}
found=0
for bin in "$build"/fuzz_*; do
  [ -x "$bin" ] || continue
  found=1
  name=$(basename "$bin"); name=${name#fuzz_}
  corpus="$here/tests/fuzz/corpus/$name"
  work=$(mktemp -d)
  echo "fuzz: $name for ${secs}s"
  "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 "$work" "$corpus"
  rm -rf "$work"
done
[ "$found" = 1 ] || { echo "fuzz: no targets built" >&2; exit 1; }
