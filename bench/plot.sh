#!/usr/bin/env bash
# make plot: draws the latest bench/run.sh results (or the CSV given) as PNGs
# in bench/results/: throughput.png (durable records/s, bars, with the ratio to
# the device limit) and latency.png (percentile curves: submission and
# durable latency).
set -euo pipefail
cd "$(dirname "$0")/.."
RES=bench/results
csv=${1:-$RES/latest-bench.csv}
[ -f "$csv" ] || { echo "no $csv: run make bench first" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "gnuplot missing: make bench-deps (gnuplot-nox)" >&2; exit 1; }
out=${PLOT_DIR:-$RES}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# throughput: every sustained (not paced) configuration
awk -F, 'NR>1 && $3=="durable_rps" && $2 !~ /^paced/ {print $1 "," $2 "," $4}' "$csv" | sort -t, -k3,3g |
  while IFS=, read -r b c v; do
    x=$(awk -F, -v b="$b" -v c="$c" '$1==b && $2==c && $3=="ratio_to_device_limit"{print $4}' "$csv")
    case $b in picolog) col=1 ;; raw_dsync) col=2 ;; *) col=3 ;; esac
    printf '"%s %s" %s %s %s\n' "$b" "$c" "$v" "${x:-0}" "$col"
  done > "$tmp/thr.dat"

# submission latency percentiles (net of the timer), one block per picolog config
: > "$tmp/sub.dat"
for c in $(awk -F, 'NR>1 && $1=="picolog" && $3=="sub_p50_ns"{print $2}' "$csv"); do
  echo "\"$c\" 0" >> "$tmp/sub.dat"
  for m in "50 sub_p50_ns" "95 sub_p95_ns" "99 sub_p99_ns" "99.9 sub_p999_ns"; do
    set -- $m
    awk -F, -v c="$c" -v m="$2" -v p="$1" '$1=="picolog" && $2==c && $3==m {v=$4; if (v < 1) v = 1; print p, v}' "$csv"
  done >> "$tmp/sub.dat"
  printf '\n\n' >> "$tmp/sub.dat"
done
subn=$(grep -c '^"' "$tmp/sub.dat" || true)

# parts PREFIX FILE: the mean of each part (metrics PREFIX_<part>_mean_us), one
# line per paced configuration: part_ for every record (the means add up to
# the mean total), tail_ for the slowest 1% (picolog_bench's tail)
parts() {
  : > "$2"
  for c in $(awk -F, -v m="$1_ring_mean_us" 'NR>1 && $1=="picolog" && $3==m {print $2}' "$csv"); do
    printf '"%s"' "$c" >> "$2"
    for part in ring batch write sync wake; do
      printf ' %s' "$(awk -F, -v c="$c" -v m="$1_${part}_mean_us" '$1=="picolog" && $2==c && $3==m {print $4; f=1} END{if(!f) print 0}' "$csv")" >> "$2"
    done
    echo >> "$2"
  done
}
parts part "$tmp/parts.dat"; partn=$(wc -l < "$tmp/parts.dat")
parts tail "$tmp/tail.dat"; tailn=$(wc -l < "$tmp/tail.dat")

# durable latency percentiles: picolog (append -> durable), raw 4 KiB write, peers (per batch)
: > "$tmp/dur.dat"
durn=0
add_dur() {  # bench config prefix title
  local b=$1 c=$2 pre=$3 title=$4 got=0
  echo "\"$title\" 0" > "$tmp/blk"
  for m in "50 ${pre}_p50_us" "95 ${pre}_p95_us" "99 ${pre}_p99_us"; do
    set -- $m
    line=$(awk -F, -v b="$b" -v c="$c" -v m="$2" -v p="$1" '$1==b && $2==c && $3==m {print p, $4}' "$csv")
    [ -n "$line" ] && { echo "$line" >> "$tmp/blk"; got=1; }
  done
  if [ $got = 1 ]; then cat "$tmp/blk" >> "$tmp/dur.dat"; printf '\n\n' >> "$tmp/dur.dat"; durn=$((durn + 1)); fi
}
for c in $(awk -F, 'NR>1 && $1=="picolog" && $3=="dur_p50_us"{print $2}' "$csv"); do
  add_dur picolog "$c" dur "picolog $c"
done
add_dur raw_dsync 4k-qd1 lat "raw 4 KiB DSYNC write (io_uring)"
add_dur raw_dsync 4k-pwritev2 lat "raw 4 KiB DSYNC write (pwritev2)"
# the raw device fed picolog's paced arrivals: a DSYNC write per arrival (P50, P99)
for r in 10000 100000; do
  add_dur raw_dsync "paced-$r-qd1" dur "raw paced-$r io_uring"
  add_dur raw_dsync "paced-$r-pwritev2-qd1" dur "raw paced-$r pwritev2"
done
add_dur raw_dsync paced-1000000-pwritev2-qd1 dur "raw paced-1000000 pwritev2 64K"
for p in rocksdb sqlite lmdb; do
  c=$(awk -F, -v b=$p '$1==b && $3=="lat_p50_us"{print $2; exit}' "$csv")
  [ -n "$c" ] && add_dur "$p" "$c" lat "$p $c commit"
done

gnuplot <<EOF
set terminal pngcairo size 1100,680 font "sans,10" noenhanced

set output "$out/throughput.png"
set title "Durable throughput, 100-byte records (median of runs; label = ratio to the raw O_DIRECT+DSYNC limit at picolog's write size)\nred: picolog, grey: raw device, blue: other stores"
set style fill solid 0.6 border -1
set boxwidth 0.7
set logscale y
set yrange [10000:*]
set ylabel "records/s (log)"
set xtics rotate by -35 left
set grid ytics
unset key
set bmargin 13
set rmargin 20
set palette maxcolors 3
set palette defined (1 "#cc6677", 2 "#777777", 3 "#4477aa")
set cbrange [0.5:3.5]
unset colorbox
plot "$tmp/thr.dat" using 0:2:4:xtic(1) with boxes lc palette, \
     "" using 0:2:(sprintf("%.2fx", \$3)) with labels offset 0,0.8 font "sans,9"

set terminal pngcairo size 1600,700 font "sans,10" noenhanced
set output "$out/latency.png"
set multiplot layout 1,2 title "Latency percentiles (median of runs)"
unset title
set bmargin 4
unset xtics
set xtics ("P50" 0.301, "P95" 1.301, "P99" 2, "P99.9" 3)
set grid xtics ytics
set key outside right top font "sans,8"
set rmargin 34
set logscale y
set yrange [*:*]
set xrange [0.2:3.1]
set ylabel "ns (log)"
set title "picolog submission (plg_append), net of timer"
plot for [i=0:$((subn > 0 ? subn - 1 : 0))] "$tmp/sub.dat" index i using (-log10(1-\$1/100)):2 with linespoints title columnheader(1)
set xtics ("P50" 0.301, "P95" 1.301, "P99" 2)
set xrange [0.2:2.1]
set ylabel "us (log)"
set title "durable: picolog append -> plg_durable; raw write; peer batch commit"
plot for [i=0:$((durn > 0 ? durn - 1 : 0))] "$tmp/dur.dat" index i using (-log10(1-\$1/100)):2 with linespoints title columnheader(1)
unset multiplot
EOF
# stacked dat png title: the parts of each configuration (columns 2-6 of dat), stacked
stacked() {
gnuplot <<EOF
set terminal pngcairo size 1100,620 font "sans,10" noenhanced
set output "$out/$2"
set title "$3: mean per part, microseconds (median of runs)\nring: append -> framed by the writer; batch: -> write submitted; write: -> completed; sync: -> plg_durable covers it; wake: -> observer saw it"
set style data histograms
set style histogram rowstacked
set style fill solid 0.7 border -1
set boxwidth 0.6
set ylabel "us"
set xtics rotate by -30 left
set grid ytics
set key outside right top
set bmargin 8
plot "$1" using 2:xtic(1) title "ring", "" using 3 title "batch", "" using 4 title "write", \\
     "" using 5 title "sync", "" using 6 title "wake"
EOF
}
[ "$partn" -gt 0 ] && stacked "$tmp/parts.dat" breakdown.png "Where a record's durable latency goes"
[ "$tailn" -gt 0 ] && stacked "$tmp/tail.dat" tail.png "The slowest 1% of records"
echo "wrote $out/throughput.png $out/latency.png$( [ "$partn" -gt 0 ] && echo " $out/breakdown.png")$( [ "$tailn" -gt 0 ] && echo " $out/tail.png")"
