#!/usr/bin/env bash
# The whole suite, as `make test` runs it: every configuration in turn, then
# one line "N passed, N failed, N skipped" for all of them.
#
# Each configuration must report (tests/run.sh, tests/valgrind.sh and
# tests/fuzz.sh append "P F S LABEL" to $PLG_TEST_TOTALS). One that did not
# report (a test binary that does not build stops its make before anything
# runs), or whose make failed although it reported no failure, counts as a
# failure and is named. A configuration that skipped everything (valgrind or
# clang missing) is named too; with PLG_CI=1 (.ci/run) those fail instead.
# usage: tests/suite.sh            (MAKE and B from the Makefile)
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
MAKE=${MAKE:-make}
mkdir -p "$B"
totals="$PWD/$B/totals"
rm -f "$totals"; touch "$totals"
# everything the configurations print, so the failures can be named again at
# the end, where a CI log's tail shows them
log="$PWD/$B/suite.log"
: > "$log"
jobs=${PLG_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}
parts="plain:test-plain asan+ubsan:test-asan tsan:test-tsan fuzz:test-fuzz valgrind:test-valgrind"
extra=0
notes=""
times=""
start=$(date +%s)
for part in $parts; do
  label=${part%%:*}; target=${part#*:}
  before=$(wc -l < "$totals")
  t0=$(date +%s)
  # the test binaries build in parallel (PLG_BUILD_JOBS, default: the
  # cores); each configuration's tests still run one at a time
  $MAKE --no-print-directory -j"$jobs" "$target" PLG_TEST_TOTALS="$totals" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  # what each configuration costs, its build included (make test must fit
  # in 25 minutes on a 2-core machine)
  secs=$(( $(date +%s) - t0 )); times="$times $label ${secs}s"
  echo "suite: $label took ${secs}s (build and run)"
  line=$(tail -n +"$((before + 1))" "$totals" | awk -v l="$label" '$4 == l' | tail -n 1)
  if [ -z "$line" ]; then
    notes="$notes\n  FAIL $label: did not report (make $target exited $rc: a test binary that does not build, or the runner did not run)"
    extra=$((extra + 1))
    continue
  fi
  read -r p f s _ <<< "$line"
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    notes="$notes\n  FAIL $label: make $target exited $rc but reported no failure"
    extra=$((extra + 1))
  elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
    notes="$notes\n  SKIPPED $label: nothing ran ($s skipped)"
  fi
done
[ -n "$notes" ] && printf "suite:$notes\n"
echo "suite: time per configuration:$times; all $(( $(date +%s) - start ))s"
# the failed binaries and their failed checks, again (the runner printed them
# in place, with their output's tail, further up)
fails=$(grep -E '^\[[^]]*\] FAIL|^    failed: ' "$log" | head -n 60)
[ -n "$fails" ] && printf "suite: what failed (details further up)\n%s\n" "$fails"
awk -v extra="$extra" 'BEGIN{p=0;f=0;s=0} {p+=$1;f+=$2;s+=$3} END{ f+=extra; printf "%d passed, %d failed, %d skipped\n",p,f,s; exit (f>0) }' "$totals"
