#!/usr/bin/env bash
# Every header compiles warning-free on its own (declarations only, and with its
# implementation) as C11 and as C++17, under gcc and clang when present; and all
# headers with all implementations together in one translation unit.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0
# Each compile runs in the background, COMPILE_JOBS at a time (default: the
# cores); the results are added up, and failures printed, at the end.
jobs=${COMPILE_JOBS:-$(nproc 2>/dev/null || echo 2)}
ntry=0
try() { # label, compiler, args...
  local label=$1; shift
  ntry=$((ntry+1))
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  local res="$tmp/try.$ntry"
  ( if out=$("$@" 2>&1); then echo ok > "$res"; else { echo "FAIL $label"; echo "$out" | head -20; } > "$res"; fi ) &
}
tally() {
  wait
  local i
  for ((i = 1; i <= ntry; i++)); do
    if [ "$(cat "$tmp/try.$i" 2>/dev/null)" = ok ]; then passed=$((passed+1)); else failed=$((failed+1)); cat "$tmp/try.$i" 2>/dev/null || echo "FAIL: compile $i left no result"; fi
  done
}
uring=$(pkg-config --cflags liburing 2>/dev/null)
hdrs=$(ls picolog.h pinnacle_persist.h vault.h 2>/dev/null)
all_impl=""; all_inc=""
for h in $hdrs; do
  impl=$(echo "${h%.h}" | tr a-z A-Z)_IMPLEMENTATION
  printf '#include "%s"\nint main(void){return 0;}\n' "$h" > "$tmp/decl_${h%.h}.c"
  printf '#define %s\n#include "%s"\nint main(void){return 0;}\n' "$impl" "$h" > "$tmp/impl_${h%.h}.c"
  cp "$tmp/impl_${h%.h}.c" "$tmp/impl_${h%.h}.cpp"
  all_impl+="#define $impl"$'\n'; all_inc+="#include \"$h\""$'\n'
  for cc in gcc clang; do
    command -v $cc >/dev/null || continue
    cxx=g++; [ $cc = clang ] && cxx=clang++
    try "$h decl $cc c11" $cc -std=c11 -Wall -Wextra -Werror $uring -I. -c "$tmp/decl_${h%.h}.c" -o /dev/null
    try "$h impl $cc c11" $cc -std=c11 -Wall -Wextra -Werror -Wshadow $uring -I. -c "$tmp/impl_${h%.h}.c" -o /dev/null
    command -v $cxx >/dev/null && try "$h impl $cxx c++17" $cxx -std=c++17 -Wall -Wextra -Werror $uring -I. -c "$tmp/impl_${h%.h}.cpp" -o /dev/null
  done
done
if [ -n "$hdrs" ]; then
  printf '%s%s%s\n' "$all_impl" "$all_inc" 'int main(void){return 0;}' > "$tmp/all.c"; cp "$tmp/all.c" "$tmp/all.cpp"
  try "all headers, one TU, gcc c11" gcc -std=c11 -Wall -Wextra -Werror $uring -I. -c "$tmp/all.c" -o /dev/null
  try "all headers, one TU, g++ c++17" g++ -std=c++17 -Wall -Wextra -Werror $uring -I. -c "$tmp/all.cpp" -o /dev/null
  if [ -f picolog.h ]; then
    printf '#define PICOLOG_IMPLEMENTATION\n#define PICOLOG_STATIC\n#include "picolog.h"\nint main(void){return 0;}\n' > "$tmp/static.c"
    try "picolog.h PICOLOG_STATIC" gcc -std=c11 -Wall -Wextra -Werror -Wno-unused-function $uring -I. -c "$tmp/static.c" -o /dev/null
    printf '#define PICOLOG_IMPLEMENTATION\n#define PICOLOG_NO_URING\n#include "picolog.h"\nint main(void){return 0;}\n' > "$tmp/nouring.c"
    try "picolog.h PICOLOG_NO_URING" gcc -std=c11 -Wall -Wextra -Werror -I. -c "$tmp/nouring.c" -o /dev/null
    # PICOLOG_ENCRYPT: picolog.h seals fragments with vault.h's crypto
    printf '#define VAULT_IMPLEMENTATION\n#include "vault.h"\n#define PICOLOG_ENCRYPT\n#define PICOLOG_IMPLEMENTATION\n#include "picolog.h"\nint main(void){return 0;}\n' > "$tmp/encrypt.c"; cp "$tmp/encrypt.c" "$tmp/encrypt.cpp"
    printf '#define PICOLOG_ENCRYPT\n#define PICOLOG_IMPLEMENTATION\n#include "picolog.h"\nint main(void){return 0;}\n' > "$tmp/encrypt_only.c"
    for cc in gcc clang; do
      command -v $cc >/dev/null || continue
      cxx=g++; [ $cc = clang ] && cxx=clang++
      try "picolog.h PICOLOG_ENCRYPT $cc c11" $cc -std=c11 -Wall -Wextra -Werror -Wshadow $uring -I. -c "$tmp/encrypt.c" -o /dev/null
      try "picolog.h PICOLOG_ENCRYPT (vault.h declarations only) $cc c11" $cc -std=c11 -Wall -Wextra -Werror -Wshadow $uring -I. -c "$tmp/encrypt_only.c" -o /dev/null
      command -v $cxx >/dev/null && try "picolog.h PICOLOG_ENCRYPT $cxx c++17" $cxx -std=c++17 -Wall -Wextra -Werror $uring -I. -c "$tmp/encrypt.cpp" -o /dev/null
    done
    printf '#include <stdlib.h>\nstatic void *my_malloc(size_t n){return malloc(n);}\nstatic void *my_realloc(void *p,size_t n){return realloc(p,n);}\nstatic void my_free(void *p){free(p);}\n#define PICOLOG_MALLOC(n) my_malloc(n)\n#define PICOLOG_REALLOC(p,n) my_realloc(p,n)\n#define PICOLOG_FREE(p) my_free(p)\n#define PICOLOG_ASSERT(x) ((void)(x))\n#define PICOLOG_IMPLEMENTATION\n#include "picolog.h"\nint main(void){return 0;}\n' > "$tmp/alloc.c"
    try "picolog.h allocator overrides, after <stdlib.h>, gnu11" gcc -std=gnu11 -Wall -Wextra -Werror $uring -I. -c "$tmp/alloc.c" -o /dev/null
    printf '#define PICOLOG_MALLOC(n) malloc(n)\n#define PICOLOG_IMPLEMENTATION\n#include "picolog.h"\n' > "$tmp/half.c"
    if gcc -std=c11 $uring -I. -c "$tmp/half.c" -o /dev/null 2>/dev/null; then failed=$((failed+1)); echo "FAIL picolog.h accepted a partial allocator override"; else passed=$((passed+1)); fi
    printf '#define PICOLOG_IMPLEMENTATION\n#include "picolog.h"\nstruct Trade { unsigned long long price, qty; };\nint main(){ plg::logger<Trade> lg(nullptr); (void)lg; plg_record r{}; Trade t; return plg::logger<Trade>::get(r, t) == PLG_ETYPE ? 0 : 1; }\n' > "$tmp/typed.cpp"
    for cxx in g++ clang++; do command -v $cxx >/dev/null && try "picolog.h plg::logger<T> with $cxx" $cxx -std=c++17 -Wall -Wextra -Werror $uring -I. -c "$tmp/typed.cpp" -o /dev/null; done
  fi
  if [ -f pinnacle_persist.h ]; then
    printf '#define PINNACLE_PERSIST_IMPLEMENTATION\n#define PINNACLE_PERSIST_TEST_IO\n#include "pinnacle_persist.h"\nint main(void){pp_test_set_io(0);return 0;}\n' > "$tmp/ppio.c"; cp "$tmp/ppio.c" "$tmp/ppio.cpp"
    for cc in gcc clang; do
      command -v $cc >/dev/null || continue
      cxx=g++; [ $cc = clang ] && cxx=clang++
      try "pinnacle_persist.h PINNACLE_PERSIST_TEST_IO $cc c11" $cc -std=c11 -Wall -Wextra -Werror -Wshadow $uring -I. -c "$tmp/ppio.c" -o /dev/null
      command -v $cxx >/dev/null && try "pinnacle_persist.h PINNACLE_PERSIST_TEST_IO $cxx c++17" $cxx -std=c++17 -Wall -Wextra -Werror $uring -I. -c "$tmp/ppio.cpp" -o /dev/null
    done
  fi
fi
# picolog_raft.h (optional: needs libraft-dev and libuv1-dev), alone and with
# picolog.h's implementation in the same translation unit
if [ -f picolog_raft.h ] && printf '#include <raft.h>\n#include <raft/uv.h>\n' | gcc -E -x c - >/dev/null 2>&1; then
  printf '#include "picolog_raft.h"\nint main(void){return 0;}\n' > "$tmp/decl_raft.c"
  printf '#define PICOLOG_RAFT_IMPLEMENTATION\n#include "picolog_raft.h"\nint main(void){return 0;}\n' > "$tmp/impl_raft.c"
  printf '#define PICOLOG_IMPLEMENTATION\n#define PICOLOG_RAFT_IMPLEMENTATION\n#include "picolog.h"\n#include "picolog_raft.h"\nint main(void){return 0;}\n' > "$tmp/both_raft.c"
  for f in decl_raft impl_raft both_raft; do cp "$tmp/$f.c" "$tmp/$f.cpp"; done
  for cc in gcc clang; do
    command -v $cc >/dev/null || continue
    cxx=g++; [ $cc = clang ] && cxx=clang++
    for f in decl_raft both_raft; do
      try "picolog_raft.h $f $cc c11" $cc -std=c11 -Wall -Wextra -Werror -Wshadow $uring -I. -c "$tmp/$f.c" -o /dev/null
      command -v $cxx >/dev/null && try "picolog_raft.h $f $cxx c++17" $cxx -std=c++17 -Wall -Wextra -Werror $uring -I. -c "$tmp/$f.cpp" -o /dev/null
    done
  done
else
  echo "  skip picolog_raft.h: libraft-dev / libuv1-dev not installed"
fi
tally
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
