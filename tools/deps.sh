#!/usr/bin/env bash
# Installs what the project needs to build and test, when it is missing.
# Debian/Ubuntu only; needs root (or sudo) only when something is missing.
set -euo pipefail
need=()
pkg-config --exists liburing 2>/dev/null || need+=(liburing-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -f /usr/include/openssl/evp.h ] || need+=(libssl-dev)      # test oracle for vault.h only
command -v openssl >/dev/null || need+=(openssl)            # vault.h's recovery recipe (docs/vault-format.md), tested
# vault.h's constant-time (ctgrind) test runs under memcheck and needs its header
{ command -v valgrind >/dev/null && [ -f /usr/include/valgrind/memcheck.h ]; } || need+=(valgrind)
command -v gcc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
# sanitizer runtimes for gcc (make test runs the suite under ASan+UBSan and TSan)
gccver=$(gcc -dumpversion 2>/dev/null | cut -d. -f1 || true)
if [ -n "$gccver" ]; then
  ls /usr/lib/gcc/x86_64-linux-gnu/"$gccver"/libasan.so >/dev/null 2>&1 || need+=(libasan8)
  ls /usr/lib/gcc/x86_64-linux-gnu/"$gccver"/libtsan.so >/dev/null 2>&1 || need+=(libtsan2)
fi
if [ "${DEPS_OPTIONAL:-0}" = 1 ]; then
  command -v clang >/dev/null || need+=(clang libclang-rt-14-dev)
fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "deps: installing ${need[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "deps: missing ${need[*]}; install them as root (apt-get install -y ${need[*]})" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}"
