#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/deps.sh installs per step: `demo` asks only for what the examples
# need (compiler, make, liburing), `test` also for valgrind, the sanitizer
# runtimes, cmake and the rest. Checked with DEPS_DRY_RUN=1 and a PATH where
# no tool is installed, so every command-based check reports its package.
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0
ok()   { passed=$((passed+1)); echo "ok   $1"; }
bad()  { failed=$((failed+1)); echo "FAIL $1"; }
bin=$(mktemp -d); trap 'rm -rf "$bin"' EXIT
for t in bash cut ls id; do ln -s "$(command -v $t)" "$bin/$t"; done
demo=$(PATH=$bin DEPS_DRY_RUN=1 bash tools/deps.sh demo 2>&1)
test=$(PATH=$bin DEPS_DRY_RUN=1 bash tools/deps.sh test 2>&1)
{ echo "$demo" | grep -qw gcc && echo "$demo" | grep -qw make; } && ok "deps demo: compiler and make" || bad "deps demo: $demo"
echo "$demo" | grep -qwE "valgrind|cmake|g\+\+|libssl-dev|pkg-config|python3" \
  && bad "deps demo asks for test-only packages: $demo" || ok "deps demo asks for no test-only package"
for p in valgrind cmake pkg-config g++ python3 gcc make; do
  echo "$test" | grep -q -- " $p\( \|$\)" || { bad "deps test does not ask for $p: $test"; continue; }
done
echo "$test" | grep -q " valgrind" && echo "$test" | grep -q " cmake" && ok "deps test: valgrind, cmake, pkg-config, g++, python3"
# the replication demo's step: what the demo needs plus libraft and libuv,
# nothing of the test step (an empty include dir: no header is installed)
noinc=$(mktemp -d); trap 'rm -rf "$bin" "$noinc"' EXIT
cluster=$(PATH=$bin DEPS_INCLUDE_DIR=$noinc DEPS_DRY_RUN=1 bash tools/deps.sh cluster 2>&1)
{ echo "$cluster" | grep -qw libraft-dev && echo "$cluster" | grep -qw libuv1-dev && echo "$cluster" | grep -qw liburing-dev \
  && echo "$cluster" | grep -qw gcc; } && ok "deps cluster: compiler, liburing, libraft, libuv" || bad "deps cluster: $cluster"
echo "$cluster" | grep -qwE "valgrind|cmake|g\+\+|libssl-dev|python3" \
  && bad "deps cluster asks for test-only packages: $cluster" || ok "deps cluster asks for no test-only package"
demo2=$(PATH=$bin DEPS_INCLUDE_DIR=$noinc DEPS_DRY_RUN=1 bash tools/deps.sh demo 2>&1)
echo "$demo2" | grep -qwE "libraft-dev|libuv1-dev" && bad "deps demo asks for libraft: $demo2" || ok "deps demo does not ask for libraft"
PATH=$bin bash tools/deps.sh bogus >/dev/null 2>&1; [ $? -eq 2 ] && ok "deps: an unknown step is a usage error" || bad "deps bogus step"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
