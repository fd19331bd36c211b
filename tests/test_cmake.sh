#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A tiny consumer project finds and links the headers the four ways a user
# would: CMake add_subdirectory, CMake FetchContent (from a source archive of
# this tree), find_package(picolog) after `make install PREFIX=...`, and
# pkg-config after the same install. Also: `make install DESTDIR=...` stages
# under DESTDIR with the final PREFIX written into picolog.pc. The consumer
# checks that each header's version call matches its version macros.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
passed=0; failed=0; skipped=0
ok()   { passed=$((passed+1)); echo "ok   $1"; }
bad()  { failed=$((failed+1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "$2" | tail -20; }
skip() { skipped=$((skipped+1)); echo "  skip $1"; }
dir="${PLG_TEST_DIR:-build/tmp/test_cmake}"; case $dir in /*) ;; *) dir="$root/$dir";; esac
rm -rf "$dir"; mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT

mkdir -p "$dir/app"
cat > "$dir/app/main.c" <<'C'
#define PICOLOG_IMPLEMENTATION
#define PINNACLE_PERSIST_IMPLEMENTATION
#define VAULT_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "vault.h"
#include <stdio.h>
int main(void) {
    unsigned v = PICOLOG_VERSION_MAJOR * 10000 + PICOLOG_VERSION_MINOR * 100 + PICOLOG_VERSION_PATCH;
    if (plg_version() != v || pp_version() != PP_VERSION || vault_version() != VAULT_VERSION || PP_VERSION != v) {
        printf("version mismatch: %u %u %u %u\n", plg_version(), pp_version(), vault_version(), v);
        return 1;
    }
    printf("picolog %s %s\n", PICOLOG_VERSION_STRING, plg_strerror(PLG_EFULL));
    return 0;
}
C
consumer_cmake() { # how (the lines that bring in picolog)
  cat > "$dir/app/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.14)
project(consumer C)
$1
add_executable(consumer main.c)
target_link_libraries(consumer PRIVATE picolog::picolog picolog::pinnacle picolog::vault)
CM
}
build_run() { # label builddir [cmake args...]
  local label=$1 b=$2; shift 2
  local out
  if out=$(cmake -S "$dir/app" -B "$b" "$@" 2>&1 && cmake --build "$b" 2>&1 && "$b/consumer" 2>&1) \
     && echo "$out" | grep -q "^picolog $version PLG_EFULL"; then ok "$label"; else bad "$label" "$out"; fi
}
version=$(sed -n 's/^#define PICOLOG_VERSION_STRING "\(.*\)"/\1/p' picolog.h)

if command -v cmake >/dev/null; then
  consumer_cmake "add_subdirectory(\"$root\" picolog)"
  build_run "cmake add_subdirectory: picolog::picolog, ::pinnacle, ::vault link and run" "$dir/b-sub"

  tar -C "$root" --exclude=./build --exclude=./.git -czf "$dir/picolog-src.tar.gz" .
  consumer_cmake "include(FetchContent)
if(POLICY CMP0135)
  cmake_policy(SET CMP0135 NEW)
endif()
FetchContent_Declare(picolog URL \"file://$dir/picolog-src.tar.gz\")
FetchContent_MakeAvailable(picolog)"
  build_run "cmake FetchContent from a source archive" "$dir/b-fetch"

  # the way the README shows: a git URL and a commit (this checkout's HEAD,
  # so it checks what is committed)
  if head=$(git rev-parse HEAD 2>/dev/null); then
    consumer_cmake "include(FetchContent)
FetchContent_Declare(picolog GIT_REPOSITORY \"file://$root\" GIT_TAG $head)
FetchContent_MakeAvailable(picolog)"
    build_run "cmake FetchContent from a git URL at a commit" "$dir/b-fetch-git"
  else
    skip "not a git checkout: FetchContent from a git URL not checked"
  fi
else
  skip "cmake not installed: add_subdirectory, FetchContent and find_package not checked (bash tools/deps.sh test)"
fi

# make install to a prefix, then find_package and pkg-config against it
prefix="$dir/prefix"
if out=$(make --no-print-directory install PREFIX="$prefix" 2>&1); then
  missing=""
  for f in include/picolog.h include/pinnacle_persist.h include/vault.h bin/plg_dump bin/pp_inspect \
           share/man/man1/plg_dump.1 share/man/man1/pp_inspect.1 lib/pkgconfig/picolog.pc; do
    [ -e "$prefix/$f" ] || missing+=" $f"
  done
  [ -z "$missing" ] && ok "make install PREFIX: headers, tools, man pages, picolog.pc" || bad "make install is missing:$missing"
else
  bad "make install PREFIX" "$out"
fi
if command -v cmake >/dev/null; then
  # the version file refuses another version; then the real one is found
  consumer_cmake "find_package(picolog 99.0 QUIET)
if(picolog_FOUND)
  message(FATAL_ERROR \"find_package accepted version 99.0\")
endif()
find_package(picolog $version REQUIRED)"
  build_run "cmake find_package(picolog $version) after make install (and not 99.0)" "$dir/b-find" -DCMAKE_PREFIX_PATH="$prefix"
fi
if command -v pkg-config >/dev/null; then
  flags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs picolog 2>&1)
  pv=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --modversion picolog 2>&1)
  # shellcheck disable=SC2086
  if out=$(cc -std=c11 -Wall -Wextra -Werror "$dir/app/main.c" -o "$dir/pc-consumer" $flags 2>&1 && "$dir/pc-consumer") \
     && [ "$pv" = "$version" ] && echo "$flags" | grep -q -- "-I$prefix/include" && echo "$flags" | grep -q -- "-luring"; then
    ok "pkg-config --cflags --libs picolog builds and links the consumer"
  else bad "pkg-config: version '$pv' flags '$flags'" "$out"; fi
else
  skip "pkg-config not installed (bash tools/deps.sh test)"
fi

# DESTDIR stages the same tree; picolog.pc names the final prefix
stage="$dir/stage"
if out=$(make --no-print-directory install PREFIX=/opt/picolog DESTDIR="$stage" 2>&1) \
   && [ -f "$stage/opt/picolog/include/picolog.h" ] && grep -qx "prefix=/opt/picolog" "$stage/opt/picolog/lib/pkgconfig/picolog.pc" \
   && { ! command -v cmake >/dev/null || [ -f "$stage/opt/picolog/lib/cmake/picolog/picologConfig.cmake" ]; }; then
  ok "make install DESTDIR stages under DESTDIR, picolog.pc keeps the final PREFIX"
else bad "make install DESTDIR" "$out"; fi

echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
