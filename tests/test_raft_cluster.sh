#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# picolog_raft.h end to end: examples/replicated_log.c runs 3 processes on
# 127.0.0.1 and does PLR_CLUSTER_ROUNDS (default 2) rounds of random kill -9
# (leader or follower) and partitions under load, with tiny snapshot
# thresholds; every node must apply the same trades and no acknowledged
# trade may be missing. make soak / make cluster-test run many more rounds.
# Skips when libraft-dev/libuv1-dev are missing (the binary is then not built).
# RUN_ALONE: three nodes, elections and timeouts: the load of a test beside
# it made it take 33 s instead of 4-5 (tests/run.sh)
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0; skipped=0
bin=${B:-build}/replicated_log
if [ ! -x "$bin" ]; then
  echo "  skip cluster: $bin not built (libraft-dev, libuv1-dev missing?)"
  echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
work=${PLG_TEST_DIR:-build/tmp/test_raft_cluster}
mkdir -p "$work"
out=$(PLR_WORK_DIR="$work" "$bin" cluster-test "${PLR_CLUSTER_ROUNDS:-2}" "${PLR_CLUSTER_SEED:-$RANDOM}" 2>&1)
rc=$?
echo "$out" | sed 's/^/  /'
last=$(echo "$out" | tail -n 1)
if [ $rc -eq 0 ] && echo "$last" | grep -qE '^cluster: [0-9]+ rounds, [1-9][0-9]* acknowledged, 0 lost, nodes agree$'; then
  passed=1; echo "ok   cluster: kill -9 and partitions lose no acknowledged trade"
else
  failed=1; echo "FAIL cluster (exit $rc; replay with the seed above)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
