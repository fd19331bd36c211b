#!/usr/bin/env bash
# Runs every libFuzzer target fuzz/fuzz_*.c for SECONDS each (clang,
# -fsanitize=fuzzer,address,undefined), starting from the seed corpus kept in
# fuzz/seeds/<target>, the inputs kept in fuzz/regress/<target> and (not
# with FUZZ_SEED) the seeds the tests make afresh (build/fuzz/seeds/<target>,
# by tests/test_fuzz_<header>.c). The corpus grows in
# build/fuzz/corpus/<target>. A crash fails the run and leaves the input in
# build/fuzz/artifacts/<target>/: copy it to fuzz/regress/<target>/ (it then
# runs in every `make test`) and fix the bug.
# usage: tests/fuzz.sh SECONDS      prints "N passed, N failed, N skipped"
#   env FUZZ_RUNS=N       stop each target after N executions instead of after
#                         SECONDS (make fuzz FUZZ_RUNS=100000000)
#   env FUZZ_TARGETS="a b" only these targets (names as in fuzz/, without .c)
#   env FUZZ_SEED=N       libFuzzer's -seed (make test sets 1; make fuzz does not),
#                         and only the kept seeds: the fresh ones differ at every
#                         run (random salts, the syncer's timing), so a run from
#                         them would not repeat the run that passed before landing
#                         (make fuzz-seeds refreshes fuzz/seeds from fresh ones)
set -u
secs=${1:-30}
runs=${FUZZ_RUNS:-}
cd "$(dirname "$0")/.."
B=build
passed=0; failed=0; skipped=0
done_line() { echo "fuzz: $passed passed, $failed failed, $skipped skipped"; echo "$passed $failed $skipped fuzz" >> "${PLG_TEST_TOTALS:-/dev/null}"; }
targets=$(ls fuzz/fuzz_*.c 2>/dev/null | sed 's|fuzz/||;s|\.c$||')
if [ -n "${FUZZ_TARGETS:-}" ]; then
  want=""; for t in $FUZZ_TARGETS; do t=${t%.c}; t=${t#fuzz/}; [ -f "fuzz/$t.c" ] || { echo "fuzz: no target $t"; failed=$((failed+1)); continue; }; want="$want $t"; done
  targets=$want
fi
if [ -z "$targets" ]; then echo "[fuzz] FAIL: no targets"; failed=$((failed+1)); done_line; exit 1; fi
probe=$(mktemp -d)
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t*d,size_t n){(void)d;(void)n;return 0;}\n' > "$probe/p.c"
if ! command -v "${FUZZ_CC:-clang}" >/dev/null || ! "${FUZZ_CC:-clang}" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2>/dev/null; then
  rm -rf "$probe"
  skipped=$(echo "$targets" | wc -w)
  if [ "${PLG_CI:-0}" = 1 ]; then    # .ci/run installs clang (DEPS_OPTIONAL=1): not running is a failure there
    echo "[fuzz] FAIL: clang with libFuzzer not available (PLG_CI=1: CI must run this configuration)"
    failed=1; done_line; exit 1
  fi
  echo "  skip fuzz: clang with libFuzzer not available (DEPS_OPTIONAL=1 tools/deps.sh installs clang and libclang-rt-14-dev)"
  done_line; exit 0
fi
rm -rf "$probe"
# Every target builds first (in parallel), then FUZZ_JOBS targets (default 2,
# as this machine class has 2 cores) fuzz at once, each a single process with
# its own time limit; the results are printed in the targets' order.
jobs=${FUZZ_JOBS:-2}
bins=""; for t in $targets; do bins="$bins $B/fuzz/$t"; done
make --no-print-directory -s -j"$jobs" -k $bins >/dev/null
work=$(mktemp -d)
fuzz_one() {   # target: writes $work/<target>.res (rc execs secs) and .log
  local t=$1 hdr seeds corpus art dirs d start limit seedopt rc execs
  local log="$work/$t.log"
  hdr=${t#fuzz_}; hdr=${hdr%%_*}                       # fuzz_picolog_reader -> picolog
  seeds=""
  if [ -z "${FUZZ_SEED:-}" ]; then
    seeds="$B/fuzz/seeds/$t"
    if [ ! -d "$seeds" ] && [ -f "tests/test_fuzz_$hdr.c" ]; then
      # one target per header makes the fresh seeds; the others of that header wait for it
      ( flock 9
        if [ ! -d "$seeds" ]; then
          make --no-print-directory -s "$B/test/test_fuzz_$hdr" >/dev/null && PLG_TEST_DIR=$B/tmp/fuzzseeds_$hdr "$B/test/test_fuzz_$hdr" >/dev/null
        fi ) 9>"$work/seeds_$hdr.lock"
    fi
  fi
  corpus="$B/fuzz/corpus/$t"; art="$B/fuzz/artifacts/$t"
  mkdir -p "$corpus" "$art"
  dirs="$corpus"; for d in $seeds "fuzz/seeds/$t" "fuzz/regress/$t"; do [ -d "$d" ] && dirs="$dirs $d"; done
  start=$(date +%s)
  # -fork is not used: one process, bounded memory and time
  if [ -n "$runs" ]; then limit="-runs=$runs"; else limit="-max_total_time=$secs"; fi
  # FUZZ_SEED=N (make test): the same mutations every run, so a CI run checks
  # what was checked before it landed; without it each run explores anew
  seedopt=""; [ -n "${FUZZ_SEED:-}" ] && seedopt="-seed=$FUZZ_SEED"
  ASAN_OPTIONS=detect_leaks=1 "$B/fuzz/$t" $limit $seedopt -timeout=20 -rss_limit_mb=2048 -max_len=262144 \
      -print_final_stats=1 -artifact_prefix="$art/" $dirs >"$log" 2>&1
  rc=$?
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  echo "$rc ${execs:-?} $(( $(date +%s) - start ))" > "$work/$t.res"
}
for t in $targets; do
  if [ ! -x "$B/fuzz/$t" ]; then continue; fi
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  fuzz_one "$t" &
done
wait
for t in $targets; do
  if [ ! -x "$B/fuzz/$t" ]; then echo "[fuzz] FAIL $t: does not build"; failed=$((failed+1)); continue; fi
  log="$work/$t.log"; corpus="$B/fuzz/corpus/$t"; art="$B/fuzz/artifacts/$t"
  if [ ! -f "$work/$t.res" ]; then echo "[fuzz] FAIL $t: did not run"; failed=$((failed+1)); continue; fi
  read -r rc execs took < "$work/$t.res"
  cov=$(grep -E '#[0-9]+.*cov:' "$log" | tail -n 1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  if [ "$rc" -eq 0 ]; then
    echo "[fuzz] ok   $t: $execs executions in ${took}s, coverage ${cov:-?} edges, corpus $(ls "$corpus" | wc -l) inputs"
    passed=$((passed+1))
  else
    echo "[fuzz] FAIL $t (rc=$rc) after $execs executions; crash input in $art/ (copy it to fuzz/regress/$t/)"
    grep -E 'ERROR|SUMMARY|#[0-9] ' "$log" | head -30 | sed 's/^/    /'
    failed=$((failed+1))
  fi
done
rm -rf "$work"
done_line
[ $failed -eq 0 ]
