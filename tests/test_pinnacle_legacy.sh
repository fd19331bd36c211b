#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The pinnacle test binaries once more, on the per-instrument layout of
# 0.2.0 (PP_TEST_FORMAT=1: every store they create has a journal per
# instrument, PP_LEGACY_LAYOUT; their own run is on format 2, the default),
# so each behaviour they check holds in both layouts. The binaries are those
# make test-plain built. Prints the sum of their "N passed, N failed, N
# skipped" lines; a binary that is missing, crashes or prints no such line
# counts as failed. test_sim_pinnacle runs 200 seeds here (PP_SIM_SEEDS).
# RUN_ALONE: it runs the test binaries, whose timing bounds assume no
# other test beside them (beside one, test_pinnacle's growth failure
# came outside its 100-1000 events once; tests/run.sh)
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
base="${PLG_TEST_DIR:-build/tmp}/legacy"
passed=0; failed=0; skipped=0
for t in test_pinnacle test_pinnacle_integrity test_pinnacle_conditions test_marketdata test_pinnacle_open_errno test_sim_pinnacle; do
  bin="$B/test/$t"
  if [ ! -x "$bin" ]; then echo "FAIL $t: $bin was not built"; failed=$((failed + 1)); continue; fi
  # the simulated disk: 200 seeds here (its own run has 1,000 on format 2)
  out=$(PP_TEST_FORMAT=1 PP_SIM_SEEDS=${PP_SIM_SEEDS:-200} PLG_TEST_DIR="$base/$t" "$bin" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  if [ -z "$line" ]; then echo "FAIL $t (legacy layout): no summary line, rc=$rc"; printf '%s\n' "$out" | tail -n 30; failed=$((failed + 1)); continue; fi
  p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}'); s=$(echo "$line" | awk '{print $5}')
  if [ "$rc" -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
  [ "$f" != 0 ] && { echo "FAIL $t (legacy layout)"; printf '%s\n' "$out" | grep -v '^ok ' | tail -n 30; }
  echo "$t (legacy layout): $line"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done
rm -rf "$base"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
