#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The C++ wrappers (plg::log, plg::reader, pp::store, pp::book, vlt::handle)
# built with -Wall -Wextra -Werror by g++ and by clang++, and run.
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0; skipped=0
base="${PLG_TEST_DIR:-build/tmp/test_cxx}"
mkdir -p "$base"
uring=$(pkg-config --cflags --libs liburing 2>/dev/null || echo -luring)
for cxx in g++ clang++; do
  if ! command -v $cxx >/dev/null; then skipped=$((skipped+1)); echo "  skip $cxx not installed"; continue; fi
  bin="$base/test_cxx_$cxx"
  # shellcheck disable=SC2086
  if out=$($cxx -std=c++17 -O0 -g -Wall -Wextra -Werror -I. -Itests tests/test_cxx.cpp -o "$bin" $uring -lpthread 2>&1); then
    passed=$((passed+1)); echo "ok   tests/test_cxx.cpp builds warning-free with $cxx"
  else
    failed=$((failed+1)); echo "FAIL $cxx build"; echo "$out" | head -30; continue
  fi
  out=$(PLG_TEST_DIR="$base/run_$cxx" "$bin" 2>&1); rc=$?
  echo "$out" | sed "s/^/  [$cxx] /"
  if [ $rc -eq 0 ] && echo "$out" | grep -q "^[1-9][0-9]* passed, 0 failed"; then
    passed=$((passed+1)); echo "ok   test_cxx ($cxx)"
  else failed=$((failed+1)); echo "FAIL test_cxx ($cxx)"; fi
  rm -rf "$base/run_$cxx" "$bin"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
