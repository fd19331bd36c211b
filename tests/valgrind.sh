#!/usr/bin/env bash
# valgrind memcheck over every test binary of the plain build (both picolog
# I/O engines: io_uring in test_picolog, pwritev2 in test_picolog_nouring;
# valgrind 3.19 runs io_uring here). A test opts out with a "// NO_VALGRIND"
# line and says why. Budgets are smaller under valgrind (quick mode, fewer
# seeds/rounds); two binaries run at once. Programs a test execs are traced
# too (e.g. vaultctl), except the compilers and shells some tests start.
# Errors or definite leaks fail the test (--error-exitcode). Skips, with a
# message, when valgrind is missing (tools/deps.sh installs it), except with
# PLG_CI=1 (set by .ci/run): there a missing valgrind fails.
# usage: tests/valgrind.sh BIN...
set -u
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
  if [ "${PLG_CI:-0}" = 1 ]; then     # CI installs it (tools/deps.sh): not running is a failure there
    echo "[valgrind] FAIL: valgrind is not installed (PLG_CI=1: CI must run this configuration)"
    echo "valgrind: 0 passed, 1 failed, $# skipped"
    echo "0 1 $# valgrind" >> "${PLG_TEST_TOTALS:-/dev/null}"
    exit 1
  fi
  echo "  skip valgrind: not installed (DEPS_OPTIONAL=1 bash tools/deps.sh installs it)"
  echo "valgrind: 0 passed, 0 failed, $# skipped"
  echo "0 0 $# valgrind" >> "${PLG_TEST_TOTALS:-/dev/null}"
  exit 0
fi
wrap=build/valgrind
rm -rf "$wrap"; mkdir -p "$wrap"
bins=()
for bin in "$@"; do
  name=$(basename "$bin")
  [ -f "tests/$name.c" ] && grep -q '^// NO_VALGRIND' "tests/$name.c" && continue
  if [ ! -x "$bin" ]; then bins+=("$bin"); continue; fi    # run.sh reports it as not built
  cat > "$wrap/$name" <<SH
#!/usr/bin/env bash
export PLG_TEST_QUICK=1 PLG_TEST_TIME_SCALE=30 PLG_SIM_SEEDS=\${PLG_SIM_SEEDS:-30} PLG_SIMAPI_SEEDS=\${PLG_SIMAPI_SEEDS:-40} PLG_CRASH_ROUNDS=\${PLG_CRASH_ROUNDS:-20}
export PP_SIM_SEEDS=\${PP_SIM_SEEDS:-30} PP_CRASH_ROUNDS=\${PP_CRASH_ROUNDS:-20} VAULT_CRASH_ROUNDS=\${VAULT_CRASH_ROUNDS:-20}
exec valgrind -q --vgdb=no --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \\
  --show-leak-kinds=definite --trace-children=yes --trace-children-skip='*/sh,*/bash,*/cc,*/gcc*,*/c++,*/g++*,*/clang*,*/cc1*,*/as,*/ld*,*/collect2,*/rm,*/mkdir,*/cp' --child-silent-after-fork=no "$PWD/$bin" "\$@"
SH
  chmod +x "$wrap/$name"
  bins+=("$wrap/$name")
done
PLG_TEST_JOBS=${PLG_TEST_JOBS:-2} TEST_TIMEOUT=${TEST_TIMEOUT:-900} bash tests/run.sh valgrind "${bins[@]}"
