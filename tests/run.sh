#!/usr/bin/env bash
# Runs test binaries and adds up their "N passed, N failed" lines.
# A binary fails when it exits non-zero, when it is missing (not built), when
# it prints no "N passed, N failed" line, or when it passed and skipped
# nothing (0 passed, 0 skipped: it ran no test). Appends "P F S LABEL" to
# $PLG_TEST_TOTALS (tests/suite.sh checks that every configuration reported)
# and exits non-zero when anything failed.
# usage: tests/run.sh LABEL BIN...
#   PLG_TEST_DIR is $PLG_TEST_BASE/LABEL/<binary> (default base build/tmp), so
#   binaries never share scratch directories. PLG_TEST_JOBS=N runs up to N
#   binaries at once (default 2: the suite's binaries are single-threaded or
#   nearly, and this machine class has 2 cores); results are printed in the
#   given order. Scripts (*.sh) run one after another, never two at once
#   (they build with make and may share build/ outputs with each other): all
#   of them in one background chain that takes one of the N slots, while the
#   binaries take the others (the binaries are built before run.sh starts,
#   and no script rebuilds them). A script with a line "# RUN_ALONE" (one
#   whose timing the load beside it changes, e.g. a cluster's elections)
#   runs last, when everything else has ended, with nothing beside it.
set -u
label=$1; shift
passed=0; failed=0; skipped=0
jobs=${PLG_TEST_JOBS:-2}
base="${PLG_TEST_BASE:-build/tmp}/$label"
mkdir -p "$base"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run_one() {   # index bin
  local i=$1 bin=$2 start rc
  start=$(date +%s)
  local run=("$bin")
  case $bin in *.sh) [ -f "$bin" ] && run=(bash "$bin");; esac   # a script runs whatever its mode bits
  if [ "${run[0]}" = "$bin" ] && [ ! -x "$bin" ]; then echo "run.sh: $bin does not exist: it was not built" > "$work/$i.out"; echo "127 0" > "$work/$i.rc"; return; fi
  PLG_TEST_DIR="$base/$(basename "$bin")" timeout "${TEST_TIMEOUT:-600}" "${run[@]}" >"$work/$i.out" 2>&1
  rc=$?
  echo "$rc $(( $(date +%s) - start ))" > "$work/$i.rc"
}
scripts=(); alone=(); i=0
for bin in "$@"; do
  case $bin in
    *.sh) if grep -q '^# RUN_ALONE' "$bin" 2>/dev/null; then alone+=("$i:$bin"); else scripts+=("$i:$bin"); fi;;
  esac
  i=$((i + 1))
done
run_scripts() { local s; for s in "${scripts[@]}"; do run_one "${s%%:*}" "${s#*:}"; done; }
if [ "${#scripts[@]}" -gt 0 ]; then
  if [ "$jobs" -gt 1 ]; then run_scripts & else run_scripts; fi
fi
i=0
for bin in "$@"; do
  case $bin in *.sh) i=$((i + 1)); continue;; esac
  if [ "$jobs" -gt 1 ]; then
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    run_one $i "$bin" &
  else
    run_one $i "$bin"
  fi
  i=$((i + 1))
done
wait
for s in "${alone[@]}"; do run_one "${s%%:*}" "${s#*:}"; done
i=0
for bin in "$@"; do
  name=$(basename "$bin")
  out="$work/$i.out"
  read -r rc secs < "$work/$i.rc"
  i=$((i + 1))
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  why=""
  if [ -n "$line" ]; then
    p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
    s=$(echo "$line" | sed -n 's/.*, \([0-9]*\) skipped.*/\1/p'); s=${s:-0}
    if [ "$p" = 0 ] && [ "$s" = 0 ] && [ "$f" = 0 ]; then f=1; why="it ran no test (0 passed, 0 skipped)"; fi
  else p=0; f=1; s=0; why="no \"N passed, N failed\" line"; fi
  if [ "$rc" -ne 0 ] && [ "$f" = 0 ]; then f=1; fi   # crashed, timed out or sanitizer report
  [ "$rc" = 127 ] && [ -z "$line" ] && why="not built"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [ "$f" != 0 ]; then
    echo "[$label] FAIL $name ($p passed, $f failed, rc=$rc, ${secs}s${why:+: $why})"
    # the failed checks first (a long script's may lie before the tail), then the tail
    grep -E '^(FAIL|not ok)|: (CHECK|REQUIRE)' "$out" | head -n 20 | sed 's/^/    failed: /'
    sed 's/^/    /' "$out" | tail -n 60
  else
    echo "[$label] ok   $name ($p passed, $s skipped, ${secs}s)"
    grep -E '^  skip ' "$out" | sed "s/^/    /"
  fi
done
if [ $# -eq 0 ]; then echo "[$label] FAIL: no test binaries given"; failed=$((failed + 1)); fi
echo "$label: $passed passed, $failed failed, $skipped skipped"
echo "$passed $failed $skipped $label" >> "${PLG_TEST_TOTALS:-/dev/null}"
[ "$failed" -eq 0 ]
