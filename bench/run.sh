#!/usr/bin/env bash
# Runs picolog_bench and its peers side by side, several rounds, and reports
# the median of each number: a table on the terminal, a CSV in bench/results/.
#
#   bash bench/run.sh [--runs N] [--duration S] [--seek] [--seek-only]
#   bash bench/run.sh --paced   only the paced latencies (10k, 100k, 1M rec/s) and
#                    the raw 4 KiB writes they are compared with, each rate also
#                    with PLG_SYNC_IN_FLIGHT (fdatasync through io_uring instead of
#                    on the writer thread), in the same rounds
#   bash bench/run.sh --paced --settle S   the same, with a pause of S seconds
#                    before each run: the disk finishes writing back what the
#                    run before it wrote (a raw run prefills 256 MiB, a picolog
#                    run zeroes a 64 MiB segment) before the next is timed
#   bash bench/run.sh --report bench/results/raw-bench-STAMP.txt   (tables again)
#   (make bench builds the binaries, then runs this; make plot draws the CSV)
#
# Environment: BENCH_RUNS (3), BENCH_DURATION (3 s per bench), BENCH_SETTLE
# (0 s; --settle), BENCH_DIR
# (build/bench-data: must be on the filesystem you want to measure; removed
# afterwards), BENCH_SEEK_GIB (10). Peers that need an optional library are
# compiled here only when the library is installed (make bench-deps installs
# them); the others are reported as skipped.
set -u
cd "$(dirname "$0")/.."
B=build/bench
RUNS=${BENCH_RUNS:-3}
DUR=${BENCH_DURATION:-3}
SETTLE=${BENCH_SETTLE:-0}
DATA=${BENCH_DIR:-build/bench-data}
RES=bench/results
SEEK=0; MAIN=1; REPORT=""; PACED=0
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --seek) SEEK=1 ;;
    --seek-only) SEEK=1; MAIN=0 ;;
    --paced) PACED=1 ;;
    --settle) SETTLE=$2; shift ;;
    --report) REPORT=$2; shift ;;
    *) echo "usage: bench/run.sh [--runs N] [--duration S] [--seek] [--seek-only] [--paced [--settle S]]" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$RES" "$DATA" "$B"
export BENCH_DIR=$DATA

# ---- placement of the paced runs ---------------------------------------------
# A thread spinning on the CPU that takes the log device's completion
# interrupts delays every completion (on the 2-CPU VM of docs/performance.md,
# "Where the threads run", each DSYNC write then took a 4 ms tick). As an
# engine pins its hot thread away from the device's interrupts, the paced runs
# put picolog's writer, and the raw writers they are compared with, on that
# CPU and picolog's spinning producer on another; the -unplaced rows leave it
# to the scheduler. BENCH_PLACE=0: no placement at all.
disk_irq_cpu() {   # the CPU that took most of the device's interrupts, or nothing
  local src dev name
  src=$(df -P "$DATA" | awk 'NR==2{print $1}'); dev=$(basename "$(readlink -f "$src")")
  [ -e "/sys/class/block/$dev/partition" ] && dev=$(basename "$(readlink -f "/sys/class/block/$dev/..")")
  name=$(basename "$(readlink -f "/sys/block/$dev/device" 2>/dev/null)" 2>/dev/null)
  [ -n "$name" ] || return 0
  awk -v n="$name" 'NR == 1 { ncpu = NF; next }
    { l = $NF; if (index(l, n) != 1 || substr(l, length(n) + 1, 1) ~ /[0-9]/) next
      for (i = 2; i <= ncpu + 1; i++) if ($i ~ /^[0-9]+$/) s[i - 2] += $i }
    END { b = -1; for (c in s) if (s[c] > 0 && (b < 0 || s[c] > s[b])) b = c; if (b >= 0) print b }' /proc/interrupts
}
PIN=(); PLACE=(); IRQ_CPU=""
if [ "${BENCH_PLACE:-1}" != 0 ] && [ "$(nproc)" -ge 2 ]; then
  IRQ_CPU=$(disk_irq_cpu)
  if [ -n "$IRQ_CPU" ]; then
    PROD_CPU=$(awk -v w="$IRQ_CPU" 'BEGIN { print (w == 0) ? 1 : 0 }')
    PIN=(taskset -c "$IRQ_CPU"); PLACE=(--cpu "$PROD_CPU" --writer-cpu "$IRQ_CPU")
  fi
fi
# the burst on segments made ahead: 32 of 64 MiB per second of the run, at most 1024
POOL=$(awk -v d="$DUR" 'BEGIN { n = int(d * 32 + 0.5); if (n < 2) n = 2; if (n > 1024) n = 1024; print n }')
stamp=$(date -u +%Y%m%dT%H%M%SZ)
kind=bench; [ $MAIN = 0 ] && kind=seek; [ $PACED = 1 ] && kind=paced
raw=$RES/raw-$kind-$stamp.txt
csv=$RES/$kind-$stamp.csv
meta=$RES/meta-$kind-$stamp.txt
if [ -n "$REPORT" ]; then   # aggregate an earlier run again; run nothing
  raw=$REPORT; csv=${REPORT/raw-/}; csv=${csv%.txt}.csv; meta=${REPORT/raw-/meta-}; SEEK=0
  RUNS=$(cut -d, -f1 "$raw" | sort -u | wc -l)
else
  : > "$raw"
fi

for b in picolog_bench raw_bench picolog_seek; do
  [ -x "$B/$b" ] || { echo "missing $B/$b: run make bench" >&2; exit 1; }
done

if [ $MAIN = 1 ] && [ -z "$REPORT" ]; then
# ---- optional peers: build each one only when its library is there ----------
CC=${CC:-cc}
CFLAGS="-std=c11 -O2 -g -Wall -Wextra -Werror -Ibench"
peers=()
build_peer() {  # name header package libs
  local name=$1 header=$2 pkg=$3 libs=$4
  if ! echo "#include <$header>" | $CC -E -x c - >/dev/null 2>&1; then
    echo "skipped: $name (install $pkg, or run make bench-deps)"; return
  fi
  if $CC $CFLAGS bench/peers/${name}_peer.c -o $B/${name}_peer $libs -lm 2>"$B/${name}_peer.log"; then
    peers+=("$name")
  else
    echo "skipped: $name (build failed, see $B/${name}_peer.log)"
  fi
}
build_peer rocksdb rocksdb/c.h librocksdb-dev -lrocksdb
build_peer sqlite sqlite3.h libsqlite3-dev -lsqlite3
build_peer lmdb lmdb.h liblmdb-dev -llmdb
for other in pp_bench vault_bench; do
  [ -x "$B/$other" ] || echo "skipped: $other (not built: its header or bench/$other.c is not there yet)"
done
fi

# run NAME ARGS...: one bench, its R lines tagged with the round
run() {
  local out
  out=$("$@" 2>&1)
  local rc=$?
  echo "$out" | grep -v '^R,' | sed 's/^/    /'
  echo "$out" | grep '^R,' | sed "s/^R,/$round,/" >> "$raw"
  [ $rc -eq 0 ] || echo "    ($1 exited with $rc)"
}
# the paced runs: after a pause of --settle seconds, if one was asked for
prun() {
  [ "$SETTLE" = 0 ] || sleep "$SETTLE"
  run "$@"
}
# floors RUNNER RATE: the floor for picolog's paced latency at RATE records/s, the
# same arrivals made durable by the raw device: a 4 KiB DSYNC write as soon as a
# slot is free (1 or 4 in flight), or a blocking pwritev2; at 1M rec/s 64 KiB
# writes (4 KiB ones cannot keep up). Each round runs them right beside picolog's
# paced runs at that rate, before them in odd rounds and after them in even ones:
# this disk has slow spells that come and go over tens of seconds (the raw floor
# itself at 100k rec/s: P99 173-302 us from one run to the next, once 6.8 ms), so
# a floor measured a minute away from picolog is not the same device.
floors() {
  local runner=$1 rate=$2 size=4096
  [ "$rate" -ge 1000000 ] && size=64k
  [ "$rate" -ge 1000000 ] || $runner "${PIN[@]}" $B/raw_bench --duration "$DUR" --size $size --rate $rate --qd 1
  $runner "${PIN[@]}" $B/raw_bench --duration "$DUR" --size $size --rate $rate --qd 4
  $runner "${PIN[@]}" $B/raw_bench --duration "$DUR" --size $size --rate $rate --engine pwritev2
}

# ---- machine ----------------------------------------------------------------
[ -z "$REPORT" ] && {
  echo "date: $(date -u)"
  echo "kernel: $(uname -sr)"
  echo "cpus: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "memory: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  src=$(df -P "$DATA" | awk 'NR==2{print $1}'); dev=$(basename "$src")
  fs=$(df -PT "$DATA" | awk 'NR==2{print $2}')
  echo "filesystem: $fs on $dev"
  # what decides whether a sync also writes the inode (docs/performance.md, "What makes the P99")
  echo "  mount options: $(findmnt -no OPTIONS -T "$DATA" 2>/dev/null)"
  [ "$fs" = ext4 ] && echo "  ext4 journal: $(ls /proc/fs/jbd2 2>/dev/null | grep -q "^$dev-" && echo yes || echo none)"
  for f in rotational write_cache fua logical_block_size; do
    [ -r /sys/block/$dev/queue/$f ] && echo "  $f: $(cat /sys/block/$dev/queue/$f)"
  done
  if [ -n "$IRQ_CPU" ]; then echo "placement (paced): the device's interrupts on CPU $IRQ_CPU: the writers there, picolog's producer on CPU $PROD_CPU"
  else echo "placement (paced): none (BENCH_PLACE=0, one CPU, or the device's interrupts not found)"; fi
  echo "runs: $RUNS x $DUR s per bench$([ "$SETTLE" = 0 ] || echo ", a pause of $SETTLE s before each paced run")"
} > "$meta"
cat "$meta" 2>/dev/null

load() { echo "    load: $(cut -d' ' -f1-3 /proc/loadavg); cpu pressure: $(awk '/some/{print $2}' /proc/pressure/cpu 2>/dev/null); io pressure: $(awk '/some/{print $2}' /proc/pressure/io 2>/dev/null)"; }

if [ $PACED = 1 ] && [ -z "$REPORT" ]; then
  for round in $(seq 1 "$RUNS"); do
    echo "== round $round of $RUNS (paced)"
    load | tee -a "$meta"
    prun "${PIN[@]}" $B/raw_bench --duration "$DUR" --size 4096 --qd 1
    prun "${PIN[@]}" $B/raw_bench --duration "$DUR" --size 4096 --engine pwritev2
    prun "${PIN[@]}" $B/raw_bench --duration "$DUR" --size 4096 --engine fdatasync
    prun "${PIN[@]}" $B/raw_bench --duration "$DUR" --size 4096 --qd 2
    prun "${PIN[@]}" $B/raw_bench --duration "$DUR" --size 4096 --qd 4
    for rate in 10000 100000 1000000; do
      [ $((round % 2)) = 1 ] && floors prun $rate
      prun $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate $rate "${PLACE[@]}"
      prun $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate $rate --sync dsync --label paced-$rate-dsync "${PLACE[@]}"
      prun $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate $rate --sync-in-flight --label paced-$rate-inflight "${PLACE[@]}"
      [ $((round % 2)) = 0 ] && floors prun $rate
    done
    prun $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate 10000 --label paced-10000-unplaced
    prun $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate 10000 --sync dsync --label paced-10000-dsync-unplaced
    # the writer polling 100 us after its last work before it sleeps (plg_config.idle_spin_ns)
    prun $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate 10000 --spin-ns 100000 --label paced-10000-spin "${PLACE[@]}"
    prun $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate 100000 --spin-ns 100000 --label paced-100000-spin "${PLACE[@]}"
    prun $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate 10000 --follow --label paced-10000-follow "${PLACE[@]}"
    load | tee -a "$meta"
  done
  MAIN=0
fi

if [ $MAIN = 1 ] && [ -z "$REPORT" ]; then
for round in $(seq 1 "$RUNS"); do
  echo "== round $round of $RUNS"
  load | tee -a "$meta"
  # how far apart the two CPUs are now (the bursts pass the ring between two threads)
  run $B/cpu_pair --label before-bursts
  # the original's scenario (4 KiB ring), then the default 8 MiB ring; sync mode
  # is the library's default (auto) unless the label says dsync
  run $B/picolog_bench --duration "$DUR" --ring 4096 --label burst-ring4k
  run $B/picolog_bench --duration "$DUR" --ring 8M --label burst-ring8m
  run $B/picolog_bench --duration "$DUR" --ring 8M --sync dsync --label burst-ring8m-dsync
  run $B/picolog_bench --duration "$DUR" --ring 8M --sync fdatasync --label burst-ring8m-fdatasync
  # as with a retention policy: old segments released, so new ones are reused, not zeroed
  run $B/picolog_bench --duration "$DUR" --ring 8M --release --label burst-ring8m-release
  # the same two with the writer's own fdatasync even while full writes queue
  # (PLG_SYNC_ON_WRITER; by default the sync is in flight then)
  run $B/picolog_bench --duration "$DUR" --ring 8M --sync-on-writer --label burst-ring8m-onwriter
  run $B/picolog_bench --duration "$DUR" --ring 8M --release --sync-on-writer --label burst-ring8m-release-onwriter
  # fresh segments, made ahead while the log was idle (plg_config.prealloc_segments;
  # the run starts once they are): a burst that the pool covers, 32 segments of
  # 64 MiB per second of the run (2 GiB/s, more than this device takes)
  run $B/picolog_bench --duration "$DUR" --ring 8M --prealloc "$POOL" --label burst-ring8m-prealloc
  run $B/cpu_pair --label after-bursts
  # the write size picolog actually used, rounded to 4 KiB
  w=$(awk -F, -v r=$round '$1==r && $2=="picolog" && $3=="burst-ring8m" && $4=="write_bytes_avg"{printf "%d", ($5+2048)/4096; exit}' "$raw")
  w=$(( ${w:-16} < 1 ? 1 : ${w:-16} )); w=$((w * 4096))
  run $B/raw_bench --duration "$DUR" --size $w --qd 1 --label same-qd1
  run $B/raw_bench --duration "$DUR" --size $w --qd 4 --label same-qd4
  run "${PIN[@]}" $B/raw_bench --duration "$DUR" --size 4096 --qd 1
  run "${PIN[@]}" $B/raw_bench --duration "$DUR" --size 4096 --engine pwritev2
  # one write + fdatasync at queue depth 1; several 4 KiB DSYNC writes in flight
  run $B/raw_bench --duration "$DUR" --size 4096 --engine fdatasync
  run $B/raw_bench --duration "$DUR" --size 4096 --qd 2
  run $B/raw_bench --duration "$DUR" --size 4096 --qd 4
  # the best writer the device allows: large writes (up to 1 MiB), 1 or 4 in flight
  run $B/raw_bench --duration "$DUR" --size 1M --qd 1
  run $B/raw_bench --duration "$DUR" --size 1M --qd 4
  # the same into fresh space (fallocate only, as picolog's segments made in a burst):
  # each write also turns unwritten extents into written ones, committed by its sync
  run $B/raw_bench --duration "$DUR" --size 1M --qd 4 --prep fallocate --label fresh-1m-qd4
  run $B/raw_bench --duration "$DUR" --size 64k --qd 1
  run $B/raw_bench --duration "$DUR" --size 64k --qd 4
  run $B/raw_bench --duration "$DUR" --mode buffered --size 64k
  for p in "${peers[@]}"; do run $B/${p}_peer --duration "$DUR"; done
  # paced: latency at a given load; the first second (second segment being preallocated)
  # left out; the raw device fed the same arrivals right beside each rate (floors)
  for rate in 10000 100000 1000000; do
    [ $((round % 2)) = 1 ] && floors run $rate
    run $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate $rate "${PLACE[@]}"
    run $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate $rate --sync dsync --label paced-$rate-dsync "${PLACE[@]}"
    [ $((round % 2)) = 0 ] && floors run $rate
  done
  run $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate 10000 --label paced-10000-unplaced
  run $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate 10000 --sync dsync --label paced-10000-dsync-unplaced
  run $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate 10000 --sync fdatasync --label paced-10000-fdatasync "${PLACE[@]}"
  run $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate 10000 --spin-ns 100000 --label paced-10000-spin "${PLACE[@]}"
  # waking: a thread in plg_wait (spin, then futex) or in poll() on plg_notify_fd instead of polling
  run $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate 10000 --observe wait --label paced-10000-wait "${PLACE[@]}"
  run $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate 10000 --observe notify --label paced-10000-notify "${PLACE[@]}"
  run $B/picolog_bench --duration "$DUR" --warmup 1 --ring 4096 --rate 10000 --label paced-10000-ring4k "${PLACE[@]}"
  # a reader tailing the log meanwhile (a standby, a live consumer): what its reads cost the writer
  run $B/picolog_bench --duration "$DUR" --warmup 1 --ring 8M --rate 10000 --follow --label paced-10000-follow "${PLACE[@]}"
  run $B/picolog_bench --duration "$DUR" --ring 8M --stride 0 --label rss-ring8m
  for other in pp_bench vault_bench; do [ -x "$B/$other" ] && run $B/$other; done
done
fi

if [ $SEEK = 1 ]; then
  round=1
  run $B/picolog_seek --gib "${BENCH_SEEK_GIB:-10}"
fi
rm -rf "$DATA"/picolog-* "$DATA"/raw-* "$DATA"/peer-* 2>/dev/null

# each round's ratio to that round's own device limit (rounds see different load)
if ! grep -q ',ratio_same_round,' "$raw"; then
  awk -F, '$4=="durable_rps" { v[$1 "," $2 "," $3] = $5
                               if ($2=="raw_dsync" && ($3=="same-qd1" || $3=="same-qd4") && $5 > L[$1]) L[$1] = $5 }
    END { for (k in v) { split(k, a, ","); if (L[a[1]] > 0) printf "%s,%s,%s,ratio_same_round,%.4g,x\n", a[1], a[2], a[3], v[k] / L[a[1]] } }' \
    "$raw" > "$raw.tmp"
  # against the best raw writer of the round (any size up to 1 MiB, any depth), and each
  # paced durable percentile against the round's raw 4 KiB DSYNC write at depth 1
  # (the faster of io_uring and pwritev2)
  awk -F, '$4=="durable_rps" { v[$1 "," $2 "," $3] = $5; if ($2=="raw_dsync" && $5 > L[$1]) L[$1] = $5 }
    $2=="raw_dsync" && ($3=="4k-qd1" || $3=="4k-pwritev2") && $4=="lat_p50_us" && (!(($1) in W) || $5 < W[$1]) { W[$1] = $5 }
    ($2=="picolog" || ($2=="raw_dsync" && $3 ~ /^paced-/)) && ($4=="dur_p50_us" || $4=="dur_p99_us" || $4=="device_wait_p99_us") { p[$1 "," $2 "," $3 "," $4] = $5 }
    END { for (k in v) { split(k, a, ","); if (L[a[1]] > 0) printf "%s,%s,%s,ratio_best_round,%.4g,x\n", a[1], a[2], a[3], v[k] / L[a[1]] }
          for (k in p) { split(k, a, ","); if (W[a[1]] > 0) printf "%s,%s,%s,%s_vs_raw4k,%.4g,x\n", a[1], a[2], a[3], a[4], p[k] / W[a[1]] } }' \
    "$raw" >> "$raw.tmp"
  # each paced picolog percentile against the same round's raw device fed the same
  # arrivals by a blocking pwritev2 (floors, run right beside it): what picolog adds
  awk -F, '$4=="dur_p50_us" || $4=="dur_p99_us" {
      if ($2=="raw_dsync" && $3 ~ /^paced-[0-9]+-pwritev2-qd1$/) { split($3, c, "-"); F[$1 "," c[2] "," $4] = $5 }
      else if ($2=="picolog" && $3 ~ /^paced-[0-9]+/) p[$1 "," $3 "," $4] = $5 }
    END { for (k in p) { split(k, a, ","); split(a[2], c, "-"); f = F[a[1] "," c[2] "," a[3]]
            if (f > 0) printf "%s,picolog,%s,%s_vs_floor,%.4g,x\n", a[1], a[2], a[3], p[k] / f } }' \
    "$raw" >> "$raw.tmp"
  # the device's bytes a second under each picolog run against those under the
  # round's best raw writer: the burst's ratio in records is this one divided
  # by picolog's bytes on the device per payload byte (the raw writer packs
  # bare records: 1)
  awk -F, '$4=="durable_rps" && $2=="raw_dsync" && $5 > L[$1] { L[$1] = $5; C[$1] = $3 }
    $4=="disk_mb_per_s" { d[$1 "," $2 "," $3] = $5 }
    END { for (k in d) { split(k, a, ","); r = d[a[1] ",raw_dsync," C[a[1]]]
            if (a[2]=="picolog" && r > 0) printf "%s,%s,%s,disk_rate_vs_best_raw,%.4g,x\n", a[1], a[2], a[3], d[k] / r } }' \
    "$raw" >> "$raw.tmp"
  # each burst against the round's raw writer into fresh space: what a writer that
  # writes new blocks once can reach on this filesystem (the extent conversion)
  awk -F, '$4=="durable_rps" { v[$1 "," $2 "," $3] = $5; if ($2=="raw_dsync" && $3=="fresh-1m-qd4") F[$1] = $5 }
    END { for (k in v) { split(k, a, ","); if (a[2]=="picolog" && F[a[1]] > 0) printf "%s,%s,%s,ratio_fresh_raw,%.4g,x\n", a[1], a[2], a[3], v[k] / F[a[1]] } }' \
    "$raw" >> "$raw.tmp"
  cat "$raw.tmp" >> "$raw"; rm -f "$raw.tmp"
fi

# ---- medians ------------------------------------------------------------------
# raw: round,bench,config,metric,value,unit  ->  csv: bench,config,metric,median,unit,runs,min,max
echo "bench,config,metric,median,unit,runs,min,max" > "$csv"
sort -t, -k2,2 -k3,3 -k4,4 -k5,5g "$raw" | awk -F, '
  function flush() { if (n) { m = (n % 2) ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2;
                     printf "%s,%s,%s,%.6g,%s,%d,%.6g,%.6g\n", kb, kc, km, m, ku, n, v[1], v[n] } }
  { key = $2 "," $3 "," $4
    if (key != last) { flush(); n = 0; last = key; kb = $2; kc = $3; km = $4; ku = $6 }
    v[++n] = $5 }
  END { flush() }' >> "$csv"

# ratios to the device limit: raw O_DIRECT+RWF_DSYNC at picolog's write size,
# the better of one and four writes in flight
limit=$(awk -F, '$1=="raw_dsync" && ($2=="same-qd1" || $2=="same-qd4") && $3=="durable_rps" && $4>m {m=$4} END{print m+0}' "$csv")
awk -F, -v L="$limit" 'NR>1 && $3=="durable_rps" && L>0 {printf "%s,%s,ratio_to_device_limit,%.4g,x,%s,,\n", $1, $2, $4/L, $6}' "$csv" > "$csv.ratio"
cat "$csv.ratio" >> "$csv"; rm -f "$csv.ratio"
best=$(awk -F, '$1=="raw_dsync" && $3=="durable_rps" && $4>m {m=$4} END{print m+0}' "$csv")
awk -F, -v L="$best" 'NR>1 && $3=="durable_rps" && L>0 {printf "%s,%s,ratio_to_best_raw,%.4g,x,%s,,\n", $1, $2, $4/L, $6}' "$csv" > "$csv.ratio"
cat "$csv.ratio" >> "$csv"; rm -f "$csv.ratio"
cp "$csv" "$RES/latest-$kind.csv"
cp "$meta" "$RES/latest-$kind-meta.txt"
get() { awk -F, -v b="$1" -v c="$2" -v m="$3" '$1==b && $2==c && $3==m {print $4; f=1} END{if(!f) print ""}' "$csv"; }
# gm bench config metric: "median [min-max]" over the rounds
gm() { awk -F, -v b="$1" -v c="$2" -v m="$3" '$1==b && $2==c && $3==m {printf "%.4g [%.4g-%.4g]", $4, $7, $8; f=1} END{if(!f) printf "-"}' "$csv"; }
# the slowest 1% of each paced run: the mean of each part over them, in how
# many episodes they came, and how busy the machine was (picolog_bench's tail)
tails() {
  echo "$1the slowest 1% (mean us: ring / batch / write / sync / wake; episodes; writer's CPU wait, machine's CPU pressure):"
  for c in $(awk -F, 'NR>1 && $1=="picolog" && $3=="tail_ring_mean_us" {print $2}' "$csv"); do
    printf "$1  %-26s %s / %s / %s / %s / %s; %s; %s, %s\n" "$c" "$(get picolog "$c" tail_ring_mean_us)" "$(get picolog "$c" tail_batch_mean_us)" \
      "$(get picolog "$c" tail_write_mean_us)" "$(get picolog "$c" tail_sync_mean_us)" "$(get picolog "$c" tail_wake_mean_us)" \
      "$(get picolog "$c" tail_episodes)" "$(get picolog "$c" writer_runq_share)" "$(get picolog "$c" psi_cpu_some_share)"
  done
}
if [ $PACED = 1 ]; then
  echo
  echo "paced durable latency, medians [min-max] over $RUNS rounds; x raw: per round, against that round's raw 4 KiB DSYNC write at depth 1 (the faster of io_uring and pwritev2)"
  echo "  raw 4 KiB DSYNC write P50: io_uring $(gm raw_dsync 4k-qd1 lat_p50_us) us, pwritev2 $(gm raw_dsync 4k-pwritev2 lat_p50_us) us;" \
       "write + fdatasync $(gm raw_dsync 4k-fdatasync lat_p50_us) us; io_uring with 2 / 4 in flight $(gm raw_dsync 4k-qd2 lat_p50_us) / $(gm raw_dsync 4k-qd4 lat_p50_us) us;" \
       "raw floor at 10k/s (a DSYNC write per arrival) $(gm raw_dsync paced-10000-qd1 dur_p50_us) us"
  printf "  %-30s %-24s %-24s %-22s %-22s\n" config "P50 us" "P99 us" "P50 x raw" "P99 x raw"
  for c in paced-10000 paced-10000-inflight paced-10000-dsync paced-100000 paced-100000-inflight paced-100000-dsync \
           paced-1000000 paced-1000000-inflight paced-1000000-dsync paced-10000-follow paced-10000-unplaced paced-10000-dsync-unplaced; do
    printf "  %-30s %-24s %-24s %-22s %-22s\n" "$c" "$(gm picolog "$c" dur_p50_us)" "$(gm picolog "$c" dur_p99_us)" \
      "$(gm picolog "$c" dur_p50_us_vs_raw4k)" "$(gm picolog "$c" dur_p99_us_vs_raw4k)"
  done
  echo "  the raw device fed the same arrivals (a 4 KiB DSYNC write as soon as one may start):"
  for c in paced-10000-qd1 paced-10000-pwritev2-qd1 paced-100000-qd1 paced-100000-pwritev2-qd1 paced-1000000-qd4 paced-1000000-pwritev2-qd1; do
    printf "  %-30s %-24s %-24s %-22s %-22s\n" "raw $c" "$(gm raw_dsync "$c" dur_p50_us)" "$(gm raw_dsync "$c" dur_p99_us)" \
      "$(gm raw_dsync "$c" dur_p50_us_vs_raw4k)" "$(gm raw_dsync "$c" dur_p99_us_vs_raw4k)"
  done
  echo "  picolog x the raw device fed the same arrivals by a blocking pwritev2 in the same round, per round (P50 / P99):"
  for c in paced-10000 paced-10000-dsync paced-100000 paced-100000-dsync paced-1000000 paced-1000000-dsync; do
    printf "    %-28s %s / %s\n" "$c" "$(gm picolog "$c" dur_p50_us_vs_floor)" "$(gm picolog "$c" dur_p99_us_vs_floor)"
  done
  echo "  the device's part of the P99 (us): each record's wait for the writes in flight when it arrived (P99, a floor no log"
  echo "  goes under), and one write's P99 / P99.9 / max; the raw writer's writes at the same arrivals (qd1) beside"
  for c in paced-10000 paced-10000-dsync paced-100000 paced-100000-dsync paced-1000000; do
    r=${c#paced-}; r=${r%-dsync}
    printf "    %-22s P99 %-22s floor %-22s writes %s / %s / %s; raw qd1 writes %s / %s / %s\n" "$c" "$(gm picolog "$c" dur_p99_us)" \
      "$(gm picolog "$c" device_wait_p99_us)" "$(get picolog "$c" write_p99_us)" "$(get picolog "$c" write_p999_us)" \
      "$(get picolog "$c" write_max_us)" "$(get raw_dsync "paced-$r-qd1" write_p99_us)" "$(get raw_dsync "paced-$r-qd1" write_p999_us)" \
      "$(get raw_dsync "paced-$r-qd1" write_max_us)"
  done
  echo "  durable latency breakdown (P50 us: ring / batch / write / sync / wake):"
  for c in $(awk -F, 'NR>1 && $1=="picolog" && $3=="part_ring_p50_us" {print $2}' "$csv"); do
    printf "    %-26s %s / %s / %s / %s / %s\n" "$c" "$(get picolog "$c" part_ring_p50_us)" "$(get picolog "$c" part_batch_p50_us)" \
      "$(get picolog "$c" part_write_p50_us)" "$(get picolog "$c" part_sync_p50_us)" "$(get picolog "$c" part_wake_p50_us)"
  done
  tails "  "
  echo "csv: $csv; machine and load: $meta"
  exit 0
fi
if [ $MAIN = 0 ]; then
  echo "picolog seek: $(awk -F, '$1=="picolog_seek"{printf "%s %s=%s%s  ", $2, $3, $4, $5}' "$csv")"
  echo "csv: $csv"
  exit 0
fi

# ---- the table ----------------------------------------------------------------
echo
echo "medians of $RUNS runs, $DUR s each; machine shared with other work (see load lines above)"
echo "device limit: raw O_DIRECT+RWF_DSYNC at picolog's write size ($(get raw_dsync same-qd4 write_bytes) B): $(printf '%.0f' "$limit") rec/s"
echo "x limit: ratio of the medians; per round: median of each round's ratio to that round's limit"
printf "%-20s %-20s %14s %8s %9s %12s %12s\n" bench config "durable rec/s" "x limit" "per round" "lat P50" "lat P99"
awk -F, 'NR>1 && $3=="durable_rps" {print $1 "," $2}' "$csv" | while IFS=, read -r b c; do
  r=$(get "$b" "$c" durable_rps); x=$(get "$b" "$c" ratio_to_device_limit); xr=$(get "$b" "$c" ratio_same_round)
  p50=$(get "$b" "$c" lat_p50_us); p99=$(get "$b" "$c" lat_p99_us)
  [ -z "$p50" ] && p50=$(get "$b" "$c" dur_p50_us) && p99=$(get "$b" "$c" dur_p99_us)
  printf "%-20s %-20s %14.0f %8.3f %9.3f %10s us %10s us\n" "$b" "$c" "$r" "${x:-0}" "${xr:-0}" "${p50:--}" "${p99:--}"
done

# ---- issue 15's targets, side by side with the raw figures of the same run ----
verdict() { awk -v v="$1" -v t="$2" -v d="$3" 'BEGIN{ if (v=="") print "-"; else if ((d=="le" && v+0 <= t+0) || (d=="ge" && v+0 >= t+0)) print "met"; else print "missed" }'; }
echo
echo "issue 15 targets: medians [min-max over $RUNS rounds]; ratios are per round (each round against its own raw figures)"
echo "  raw 4 KiB DSYNC write, depth 1, P50: io_uring $(gm raw_dsync 4k-qd1 lat_p50_us) us, pwritev2 $(gm raw_dsync 4k-pwritev2 lat_p50_us) us;" \
     "P99: io_uring $(gm raw_dsync 4k-qd1 lat_p99_us) us, pwritev2 $(gm raw_dsync 4k-pwritev2 lat_p99_us) us"
echo "  raw 4 KiB write + fdatasync, depth 1, P50: $(gm raw_dsync 4k-fdatasync lat_p50_us) us; 4 KiB DSYNC 2 in flight: $(gm raw_dsync 4k-qd2 lat_p50_us) us" \
     "($(gm raw_dsync 4k-qd2 writes_per_s) writes/s), 4 in flight: $(gm raw_dsync 4k-qd4 lat_p50_us) us ($(gm raw_dsync 4k-qd4 writes_per_s) writes/s)"
printf "  %-34s %-30s %-12s %-26s %s\n" target config limit "measured (x raw, per round)" verdict
tl() {  # label config metric limit
  local v; v=$(get picolog "$2" "$3")
  printf "  %-34s %-30s %-12s %-26s %s\n" "$1" "$2" "<= $4" "$(gm picolog "$2" "$3")" "$(verdict "$v" "$4" le)"
}
# the raw device fed the same arrivals (a 4 KiB DSYNC write as soon as one may
# start, io_uring 1 or 4 in flight, or a blocking pwritev2), against the same
# raw write: the best of the three is what the device itself reaches
dl() {  # config metric limit
  local best; best=$(for c in "$1-qd1" "$1-qd4" "$1-pwritev2-qd1"; do get raw_dsync "$c" "$2"; done |
                     awk 'NF && (m == "" || $1 < m) {m = $1} END {print m}')
  printf "  %-34s %-30s %-12s %-26s %s\n" "  the device, same arrivals" "raw: qd1 / qd4 / pwritev2" "" \
    "$(get raw_dsync "$1-qd1" "$2") / $(get raw_dsync "$1-qd4" "$2") / $(get raw_dsync "$1-pwritev2-qd1" "$2")" \
    "$(verdict "$best" "$3" le)"
}
# picolog against the device fed the same arrivals by a blocking pwritev2 in the
# same round (floors, run beside it): P50 and P99, per round; 1 = what the device does
fl() {  # config
  printf "  %-34s %-30s %-12s %-26s\n" "  x that pwritev2: P50 / P99" "$1" "" \
    "$(gm picolog "$1" dur_p50_us_vs_floor) / $(gm picolog "$1" dur_p99_us_vs_floor)"
}
# A record that arrives while earlier writes are in flight cannot be durable
# before the last of them completes (a dense durable prefix, as any log's):
# picolog_bench's device_wait_p99_us is the P99 of that wait, a floor under
# the records' P99 that only the device sets (one rare slow write holds every
# record behind it). A floor above the limit: the device stands in the way.
wl() {  # config limit
  printf "  %-34s %-30s %-12s %-26s %s\n" "  wait for earlier writes (floor)" "$1" "" \
    "$(gm picolog "$1" device_wait_p99_us_vs_raw4k)" "$(verdict "$(get picolog "$1" device_wait_p99_us_vs_raw4k)" "$2" le)"
  printf "  %-34s %-30s %-12s %-26s\n" "  its writes: P99 / P99.9 / max us" "$1" "" \
    "$(get picolog "$1" write_p99_us) / $(get picolog "$1" write_p999_us) / $(get picolog "$1" write_max_us)"
}
tl "durable P50 at 10k rec/s" paced-10000 dur_p50_us_vs_raw4k 1.3
tl "  the same, PLG_SYNC_DSYNC" paced-10000-dsync dur_p50_us_vs_raw4k 1.3
dl paced-10000 dur_p50_us_vs_raw4k 1.3
tl "durable P99 at 10k rec/s" paced-10000 dur_p99_us_vs_raw4k 2.5
dl paced-10000 dur_p99_us_vs_raw4k 2.5
fl paced-10000
wl paced-10000 2.5
tl "durable P50 at 100k rec/s" paced-100000 dur_p50_us_vs_raw4k 1.3
tl "  the same, PLG_SYNC_DSYNC" paced-100000-dsync dur_p50_us_vs_raw4k 1.3
dl paced-100000 dur_p50_us_vs_raw4k 1.3
tl "durable P99 at 100k rec/s" paced-100000 dur_p99_us_vs_raw4k 2.5
dl paced-100000 dur_p99_us_vs_raw4k 2.5
fl paced-100000
wl paced-100000 2.5
tl "durable P50 at 1M rec/s" paced-1000000 dur_p50_us_vs_raw4k 2
tl "  the same, PLG_SYNC_DSYNC" paced-1000000-dsync dur_p50_us_vs_raw4k 2
dl paced-1000000 dur_p50_us_vs_raw4k 2
fl paced-1000000
# what fresh space costs the device itself: the raw writer into unwritten extents
printf "  %-34s %-30s %-12s %-26s\n" "raw into fresh space, x best raw" fresh-1m-qd4 "(report)" "$(gm raw_dsync fresh-1m-qd4 ratio_best_round)"
printf "  %-34s %-30s %-12s %-26s\n" "  its wraps into written blocks" fresh-1m-qd4 "(0)" "$(gm raw_dsync fresh-1m-qd4 wraps)"
for c in burst-ring8m burst-ring8m-release burst-ring8m-prealloc; do
  v=$(get picolog "$c" ratio_best_round)
  printf "  %-34s %-30s %-12s %-26s %s\n" "burst >= 0.85 of best raw writer" "$c" ">= 0.85" "$(gm picolog "$c" ratio_best_round)" "$(verdict "$v" 0.85 ge)"
  printf "  %-34s %-30s %-12s %-26s\n" "  (same write size as picolog)" "$c" "" "$(gm picolog "$c" ratio_same_round)"
  printf "  %-34s %-30s %-12s %-26s\n" "  x the raw writer into fresh space" "$c" "" "$(gm picolog "$c" ratio_fresh_raw)"
  printf "  %-34s %-30s %-12s %-26s\n" "  device bytes/s, x the best raw's" "$c" "" "$(gm picolog "$c" disk_rate_vs_best_raw)"
  printf "  %-34s %-30s %-12s %-26s\n" "  picolog's writes per payload byte" "$c" "" "$(gm picolog "$c" write_bytes_per_payload_byte)"
done
for m in "sub_p50_ns 25" "sub_p99_ns 200"; do
  set -- $m
  v=$(get picolog paced-1000000 "$1")
  printf "  %-34s %-30s %-12s %-26s %s\n" "submission $1 (ns, net)" paced-1000000 "<= $2" "$(gm picolog paced-1000000 "$1")" "$(verdict "$v" "$2" le)"
done
for c in burst-ring8m burst-ring8m-release burst-ring8m-prealloc paced-10000; do
  printf "  %-34s %-30s %-12s %-26s\n" "disk bytes per payload byte" "$c" "(report)" "$(gm picolog "$c" disk_bytes_per_payload_byte)"
done
printf "  %-34s %-30s %-12s %-26s\n" "  after the warm-up (no zeroing)" paced-10000 "(report)" "$(gm picolog paced-10000 disk_bytes_per_payload_byte_warm)"
echo "  raw floor at 10k rec/s (4 KiB DSYNC per arrival), durable P50: 1 in flight $(gm raw_dsync paced-10000-qd1 dur_p50_us) us," \
     "4 in flight $(gm raw_dsync paced-10000-qd4 dur_p50_us) us, blocking pwritev2 $(gm raw_dsync paced-10000-pwritev2-qd1 dur_p50_us) us"
echo "  best raw writer: $(printf '%.0f' "$best") rec/s; durable latency breakdown (P50 us: ring / batch / write / sync / wake):"
for c in $(awk -F, 'NR>1 && $1=="picolog" && $3=="part_ring_p50_us" {print $2}' "$csv"); do
  printf "    %-26s %s / %s / %s / %s / %s\n" "$c" "$(get picolog "$c" part_ring_p50_us)" "$(get picolog "$c" part_batch_p50_us)" \
    "$(get picolog "$c" part_write_p50_us)" "$(get picolog "$c" part_sync_p50_us)" "$(get picolog "$c" part_wake_p50_us)"
done
tails "  "
echo
echo "picolog submission latency (net of timer; timer overhead and resolution in the CSV):"
printf "%-20s %8s %8s %8s %8s %10s %10s\n" config P50 P95 P99 P99.9 max "mean net"
awk -F, 'NR>1 && $1=="picolog" && $3=="sub_p50_ns" {print $2}' "$csv" | while read -r c; do
  printf "%-20s %6.0fns %6.0fns %6.0fns %6.0fns %8.0fns %8.1fns\n" "$c" "$(get picolog "$c" sub_p50_ns)" \
    "$(get picolog "$c" sub_p95_ns)" "$(get picolog "$c" sub_p99_ns)" "$(get picolog "$c" sub_p999_ns)" \
    "$(get picolog "$c" sub_max_ns)" "$(get picolog "$c" sub_mean_net_ns)"
done
echo
echo "picolog memory: process VmHWM net of the bench's own arrays $(get picolog rss-ring8m hwm_net_of_bench_mib) MiB," \
     "picolog's own share $(get picolog rss-ring8m rss_picolog_end_mib) MiB, budget (ring + in-flight + 2 MiB)" \
     "$(get picolog rss-ring8m rss_budget_mib) MiB"
if [ $SEEK = 1 ]; then
  echo "picolog seek: $(awk -F, '$1=="picolog_seek"{printf "%s %s=%s%s  ", $2, $3, $4, $5}' "$csv")"
fi
echo
echo "csv: $csv (also $RES/latest-$kind.csv); machine: $meta; plots: make plot"
