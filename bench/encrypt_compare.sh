#!/usr/bin/env bash
# Encrypted vs plain picolog, side by side in one run (docs/encryption.md):
# durable throughput of 100-byte records (burst) and P50 durable latency at a
# paced 10k records/s, RUNS short runs each, interleaved, medians printed.
# usage: bench/encrypt_compare.sh [RUNS] [SECONDS] [picolog_bench options...]
#   (defaults 3 and 1.5; e.g. --sync none leaves the disk out: the writer's CPU)
set -eu
cd "$(dirname "$0")/.."
runs=${1:-3}; secs=${2:-1.5}; shift $(( $# < 2 ? $# : 2 ))
bin=build/bench/picolog_bench
make --no-print-directory -s "$bin"
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
declare -A got
for ((i = 1; i <= runs; i++)); do
  for enc in "" "--encrypt"; do
    k=${enc:+enc}; k=${k:-plain}
    t=$("$bin" --duration "$secs" --record 100 "$@" $enc | sed -n 's/^R,picolog,[^,]*,durable_rps,\([^,]*\),.*/\1/p')
    l=$("$bin" --duration "$secs" --record 100 --rate 10000 "$@" $enc | sed -n 's/^R,picolog,[^,]*,dur_p50_us,\([^,]*\),.*/\1/p')
    got[$k.tput]+="$t "; got[$k.lat]+="$l "
    echo "run $i $k: durable $t rec/s; paced 10k/s durable P50 $l us"
  done
done
for k in plain enc; do
  printf '%-6s median durable %s rec/s, paced P50 %s us\n' "$k" \
    "$(tr ' ' '\n' <<<"${got[$k.tput]}" | grep . | median)" "$(tr ' ' '\n' <<<"${got[$k.lat]}" | grep . | median)"
done
pt=$(tr ' ' '\n' <<<"${got[plain.tput]}" | grep . | median); et=$(tr ' ' '\n' <<<"${got[enc.tput]}" | grep . | median)
pl=$(tr ' ' '\n' <<<"${got[plain.lat]}" | grep . | median); el=$(tr ' ' '\n' <<<"${got[enc.lat]}" | grep . | median)
awk -v pt="$pt" -v et="$et" -v pl="$pl" -v el="$el" 'BEGIN { printf "encrypted/plain: throughput %.2fx (target >= 0.8x), paced P50 latency %.2fx (target <= 1.1x)\n", et / pt, el / pl }'
