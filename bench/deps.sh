#!/usr/bin/env bash
# Installs the optional peers bench/run.sh compares picolog against, and
# gnuplot for make plot. Not needed by make or make test. Debian/Ubuntu.
set -euo pipefail
need=()
[ -f /usr/include/rocksdb/c.h ] || need+=(librocksdb-dev)
[ -f /usr/include/lmdb.h ] || need+=(liblmdb-dev)
[ -f /usr/include/sqlite3.h ] || need+=(libsqlite3-dev)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
if [ ${#need[@]} -eq 0 ]; then echo "bench-deps: all installed"; exit 0; fi
echo "bench-deps: installing ${need[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "bench-deps: install as root: apt-get install -y ${need[*]}" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}"
