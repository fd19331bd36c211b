#!/usr/bin/env bash
# Runs test binaries and adds up their "N passed, N failed" lines.
# usage: tests/run.sh LABEL BIN...   (PLG_TEST_DIR is set per label)
set -u
label=$1; shift
passed=0; failed=0; skipped=0
export PLG_TEST_DIR="${PLG_TEST_BASE:-build/tmp}/$label"
mkdir -p "$PLG_TEST_DIR"
for bin in "$@"; do
  name=$(basename "$bin")
  out=$(mktemp)
  start=$(date +%s)
  timeout "${TEST_TIMEOUT:-600}" "$bin" >"$out" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  if [ -n "$line" ]; then
    p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
    s=$(echo "$line" | sed -n 's/.*, \([0-9]*\) skipped.*/\1/p'); s=${s:-0}
  else p=0; f=0; s=0; fi
  if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi   # crashed, timed out or sanitizer report
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [ "$f" != 0 ]; then
    echo "[$label] FAIL $name ($p passed, $f failed, rc=$rc, ${secs}s)"; sed 's/^/    /' "$out" | tail -n 60
  else
    echo "[$label] ok   $name ($p passed, $s skipped, ${secs}s)"
    grep -E '^  skip ' "$out" | sed "s/^/    /"
  fi
  rm -f "$out"
done
echo "$label: $passed passed, $failed failed, $skipped skipped"
echo "$passed $failed $skipped" >> "${PLG_TEST_TOTALS:-/dev/null}"
