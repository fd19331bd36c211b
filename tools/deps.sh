#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what one step needs, when it is missing (Debian/Ubuntu; needs root
# or sudo only when something is missing).
#   bash tools/deps.sh demo   build and run the examples: a C compiler, make, liburing
#   bash tools/deps.sh test   the test suite: the above, plus OpenSSL (vault's test
#                             oracle), valgrind, the sanitizer runtimes, a C++
#                             compiler, cmake, pkg-config and python3 (JSON checks),
#                             libraft-dev and libuv1-dev (picolog_raft.h)
#   bash tools/deps.sh cluster  the replication demo: demo's packages, plus libraft-dev
#                             and libuv1-dev (make cluster-demo, make cluster-test)
#   bash tools/deps.sh        the same as test
# DEPS_OPTIONAL=1 adds clang (fuzzing, the clang compile checks); DEPS_DRY_RUN=1
# only prints what would be installed; DEPS_INCLUDE_DIR (default /usr/include)
# is where a package's header is looked for.
set -euo pipefail
step=${1:-test}
case $step in demo|test|cluster) ;; *) echo "usage: tools/deps.sh [demo|test|cluster]" >&2; exit 2;; esac
inc=${DEPS_INCLUDE_DIR:-/usr/include}   # where the -dev packages put their headers (tests point it elsewhere)
need=()
command -v gcc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
{ pkg-config --exists liburing 2>/dev/null || [ -f $inc/liburing.h ]; } || need+=(liburing-dev)
if [ "$step" = cluster ]; then
  [ -f $inc/raft.h ] || need+=(libraft-dev)
  [ -f $inc/uv.h ] || need+=(libuv1-dev)
fi
if [ "$step" = test ]; then
  [ -f $inc/openssl/evp.h ] || need+=(libssl-dev)      # test oracle for vault.h only
  command -v openssl >/dev/null || need+=(openssl)            # vault.h's recovery recipe (docs/vault-format.md), tested
  # vault.h's constant-time (ctgrind) test runs under memcheck and needs its header
  { command -v valgrind >/dev/null && [ -f $inc/valgrind/memcheck.h ]; } || need+=(valgrind)
  command -v g++ >/dev/null || need+=(g++)                    # the headers as C++, the C++ wrappers
  command -v cmake >/dev/null || need+=(cmake)                # tests/test_cmake.sh
  command -v pkg-config >/dev/null || need+=(pkg-config)      # tests/test_cmake.sh
  command -v python3 >/dev/null || need+=(python3)            # tests/test_tools.sh checks --json lines
  [ -f $inc/raft.h ] || need+=(libraft-dev)          # picolog_raft.h: its tests, example, bench
  [ -f $inc/uv.h ] || need+=(libuv1-dev)
  # sanitizer runtimes for gcc (make test runs the suite under ASan+UBSan and TSan)
  gccver=$(gcc -dumpversion 2>/dev/null | cut -d. -f1 || true)
  if [ -n "$gccver" ]; then
    ls /usr/lib/gcc/x86_64-linux-gnu/"$gccver"/libasan.so >/dev/null 2>&1 || need+=(libasan8)
    ls /usr/lib/gcc/x86_64-linux-gnu/"$gccver"/libtsan.so >/dev/null 2>&1 || need+=(libtsan2)
  fi
  if [ "${DEPS_OPTIONAL:-0}" = 1 ]; then
    command -v clang >/dev/null || need+=(clang libclang-rt-14-dev)
  fi
fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "deps ($step): installing ${need[*]}"
[ "${DEPS_DRY_RUN:-0}" = 1 ] && exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "deps: missing ${need[*]}; install them as root (apt-get install -y ${need[*]})" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}"
