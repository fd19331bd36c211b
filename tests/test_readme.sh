#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every C snippet of README.md compiles with -Wall -Wextra -Werror as C11 and
# as C++17, and every C++ snippet as C++17, under gcc and clang when present.
# Each snippet becomes the body of a function in a file that compiles all
# headers' declarations; its #include lines go to the top of the file, and its
# X_IMPLEMENTATION defines are dropped (tests/compile_check.sh compiles the
# implementations; here they would only make each compile slow).
# The names a snippet uses without declaring them (trade, confirm, password,
# ...) are declared in the prelude below. Unused variables are allowed: a
# snippet shows calls, not a whole program.
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0; skipped=0
if ! command -v python3 >/dev/null; then echo "  skip python3 missing"; echo "0 passed, 0 failed, 1 skipped"; exit 0; fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import re, sys
out = sys.argv[1]
prelude = r'''
#include "pinnacle_persist.h"
#include "vault.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef struct Trade { uint64_t id; int64_t price, qty; } Trade;
static Trade trade;
static void confirm(Trade t) { (void)t; }
static void confirm_order(uint64_t id) { (void)id; }
static void replay(uint64_t seq, const void *data, uint32_t len) { (void)seq; (void)data; (void)len; }
static int visit(const pp_order *o, void *c) { (void)o; (void)c; return 0; }
static void *ctx;
static uint64_t ts_ns, from_ns, to_ns;
static const char *password = "pw", *secret = "s", *url = "u";
static char buf[64];
static pp_store *st;
static pp_book *b;
'''
s = open('README.md').read()
files = {}   # lang -> [tops, functions]
n = 0
for m in re.finditer(r'^```(c|cpp)\n(.*?)^```', s, re.S | re.M):
    lang, body = m.group(1), m.group(2)
    n += 1
    line = s[:m.start()].count('\n') + 1
    f = files.setdefault(lang, [[], []])
    f[0] += [l for l in body.splitlines() if l.startswith('#') and '_IMPLEMENTATION' not in l]
    rest = ['' if l.startswith('#') else l for l in body.splitlines()]  # keeps README line numbers
    f[1].append('int readme_snippet%d(void);\nint readme_snippet%d(void) {\n#line %d "README.md"\n%s\n    return 0;\n}\n'
                % (n, n, line + 1, '\n'.join(rest)))
for lang, (top, funcs) in files.items():
    if lang == 'cpp': top += ['#include <cstdio>', '#include <cstring>']
    # one file per language: every snippet is a function of it
    open('%s/readme_snippets.%s' % (out, lang), 'w').write(
        '\n'.join(dict.fromkeys(top)) + '\n' + prelude + '\n'.join(funcs) + 'int main(void) { return 0; }\n')
open('%s/count' % out, 'w').write(str(n))
PY
count=$(cat "$tmp/count"); rm -f "$tmp/count"
[ "$count" -ge 6 ] || { echo "FAIL found only $count snippets in README.md"; failed=$((failed+1)); }
uring=$(pkg-config --cflags liburing 2>/dev/null)
quiet="-Wno-unused-variable -Wno-unused-but-set-variable -Wno-unused-function"
for f in "$tmp"/*; do
  name=$(basename "$f")
  compilers=()
  case $f in
    *.c)   compilers=("gcc -x c -std=c11" "clang -x c -std=c11" "g++ -x c++ -std=c++17" "clang++ -x c++ -std=c++17") ;;
    *.cpp) compilers=("g++ -x c++ -std=c++17" "clang++ -x c++ -std=c++17") ;;
  esac
  for cc in "${compilers[@]}"; do
    exe=${cc%% *}
    if ! command -v "$exe" >/dev/null; then skipped=$((skipped+1)); echo "  skip $name with $exe: not installed"; continue; fi
    # shellcheck disable=SC2086
    if out=$($cc -Wall -Wextra -Werror $quiet $uring -I. -c "$f" -o /dev/null 2>&1); then
      passed=$((passed+1)); echo "ok   README $name: $cc"
    else
      failed=$((failed+1)); echo "FAIL README $name: $cc"; echo "$out" | grep -E "error|warning" | head -8
    fi
  done
done
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
