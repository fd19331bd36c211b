#!/usr/bin/env bash
# make demo: runs each example end to end in a scratch directory on a real
# filesystem (O_DIRECT needs one; tmpfs would be refused with a clear error).
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${DEMO_DIR:-build/demo}"
rm -rf "$scratch"; mkdir -p "$scratch"
for ex in trade_log engine coinbase_replay; do
  [ -x "build/$ex" ] || continue
  echo "== $ex"
  "build/$ex" "$scratch/$ex"
  echo
done
