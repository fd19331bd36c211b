#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The command-line tools against real logs and data directories: plg_dump on
# a valid log, a torn tail and mid-log corruption (exit 1 and the exact
# offset); pp_inspect on a clean, a corrupt and an unreadable data dir, its
# market data (bars, ticks, gaps, by exchange time), snapshots by time and
# connection-state blobs, on a store of each layout (format 2, the default,
# and the per-instrument one), changing no byte of either; pp_inspect
# --events (what a writer journaled, all of it, by seq, by time, counted, and
# damage with file and offset, exit 1) on both layouts; pp_inspect --book-at
# (the book after a past seq equals a replay of what was written, payloads
# too, text and JSON, through the archive; exit codes; no file changed); pp_inspect --fix
# (format 2: a frame flipped below the durable mark is cut after "y", with a
# byte-identical copy of every cut segment, and the events before it stay;
# per-instrument layout: the damaged instrument moved aside whole; "n", EOF,
# a clean store and a store a running process holds open change no byte);
# vaultctl naming the errno of a failed open; the
# shared conventions (--help, --version, validated numbers, exit codes 0 ok /
# 1 damage / 2 usage or I/O, --json lines that each parse, --stats,
# --from/--to); plg_dump --verify, --fix (cut a torn tail with a copy, refuse
# damage below the durable mark) and --follow (a writer appends while it
# runs, or keeps the log open after one more record; --from/--to); progress
# under a pseudo-terminal, none into a file; the examples take no option for
# a directory name; plg_dump --vault/--key-name on a log encrypted under a
# data key vaultctl made.
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0; skipped=0
ok()   { passed=$((passed+1)); echo "ok   $1"; }
bad()  { failed=$((failed+1)); echo "FAIL $1"; }
skip() { skipped=$((skipped+1)); echo "  skip $1"; }
dir="${PLG_TEST_DIR:-build/tmp}/tools"; rm -rf "$dir"; mkdir -p "$dir"
trap 'chmod -R u+rwX "$dir" 2>/dev/null; rm -rf "$dir"' EXIT
# Every line of stdin is one JSON object; the last one has "type":"summary".
# Prints the number of objects of type $1.
json_lines() {
  python3 -c '
import json, sys
want = sys.argv[1]; n = 0; last = None
for line in sys.stdin:
    o = json.loads(line)
    assert isinstance(o, dict), line
    last = o.get("type"); n += last == want
assert last == "summary", "last object is not the summary"
print(n)' "$1"
}
have_py=0; command -v python3 >/dev/null && have_py=1
# ptyrun OUT INPUT CMD...: CMD with stdin and stderr on a pseudo-terminal and
# stdout into OUT; INPUT is typed on the terminal. Prints what the terminal
# showed; exits with CMD's status.
ptyrun() {
  python3 -c '
import os, pty, select, subprocess, sys, time
out, data, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
m, s = pty.openpty()
with open(out, "wb") as f:
    p = subprocess.Popen(cmd, stdin=s, stdout=f, stderr=s)
os.close(s)
if data:
    os.write(m, data.encode())
seen = b""
deadline = time.time() + 60
while True:
    if not select.select([m], [], [], max(0, deadline - time.time()))[0]:
        p.kill(); seen += b"\n[ptyrun: killed after 60 s]\n"; break
    try:
        b = os.read(m, 4096)
    except OSError:
        break
    if not b:
        break
    seen += b
sys.stdout.write(seen.decode("utf-8", "replace"))
sys.exit(p.wait())' "$@"
}
version=$(sed -n 's/^#define PICOLOG_VERSION_STRING "\(.*\)"/\1/p' picolog.h)

if [ -x build/trade_log ] && [ -x build/plg_dump ]; then
  log="$dir/trades"
  build/trade_log "$log" >/dev/null 2>&1 && ok "trade_log writes and reads back 100000 trades" || bad "trade_log"
  out=$(build/plg_dump "$log"); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "records    100000 (seq 1..100000" && echo "$out" | grep -q "clean end"; } \
    && ok "plg_dump summary of a valid log" || bad "plg_dump summary: rc=$rc $out"
  out=$(build/plg_dump -r -s 99999 -x 4 "$log" | head -2)
  [ "$(echo "$out" | head -1 | cut -d' ' -f1-4)" = "seq 99999 len 32" ] && ok "plg_dump -r -s seeks" || bad "plg_dump -r -s: $out"
  out=$(build/plg_dump --from 500 --to 502 --hex 0 "$log"); rc=$?
  [ $rc -eq 0 ] && [ "$out" = "$(printf 'seq 500 len 32 ...\nseq 501 len 32 ...\nseq 502 len 32 ...')" ] \
    && ok "plg_dump --from/--to prints exactly that range" || bad "plg_dump --from/--to: rc=$rc $out"
  out=$(timeout 60 build/plg_dump --follow --from 99999 --to 100000 --hex 0 "$log" 2>/dev/null); rc=$?
  [ $rc -eq 0 ] && [ "$out" = "$(printf 'seq 99999 len 32 ...\nseq 100000 len 32 ...')" ] \
    && ok "plg_dump --follow --from/--to: that range, then exit 0 by itself" || bad "plg_dump --follow --from/--to: rc=$rc $out"
  out=$(build/plg_dump --stats --from 101 --to 1100 "$log"); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "^records    1000 in range, 32000 payload bytes" \
    && echo "$out" | grep -q "min 32, avg 32.0, max 32"; } && ok "plg_dump --stats counts the range" || bad "plg_dump --stats: rc=$rc $out"
  out=$(build/plg_dump --help); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "^usage: plg_dump" && echo "$out" | grep -q "1  damage found" \
    && echo "$out" | grep -q "2  usage error"; } && ok "plg_dump --help: usage and exit codes, exit 0" || bad "plg_dump --help: rc=$rc"
  out=$(build/plg_dump --version); [ $? -eq 0 ] && [ "$out" = "plg_dump (picolog) $version" ] \
    && ok "plg_dump --version" || bad "plg_dump --version: $out"
  for args in "-s abc" "--from 0" "--from 12x" "--from -1" "--to 5 --from 9" "--count" "--bogus" "--hex 99999999" \
              "--yes" "--fix --json" "--follow --stats" "--follow --interval 50"; do
    # shellcheck disable=SC2086
    build/plg_dump $args "$log" >/dev/null 2>&1; rc=$?
    [ $rc -eq 2 ] && ok "plg_dump $args: usage error, exit 2" || bad "plg_dump $args: exit $rc, want 2"
  done
  build/plg_dump "$dir/no-such-log" >/dev/null 2>&1; rc=$?
  [ $rc -eq 2 ] && ok "plg_dump on a missing log: exit 2" || bad "plg_dump missing log: exit $rc"
  if [ $have_py = 1 ]; then
    n=$(build/plg_dump --json --from 10 --to 19 "$log" | json_lines record)
    [ "$n" = 10 ] && ok "plg_dump --json: 10 record lines and a summary, each parses" || bad "plg_dump --json: $n"
    n=$(build/plg_dump --json --stats "$log" | json_lines stats)
    [ "$n" = 1 ] && ok "plg_dump --json --stats: one stats object, then the summary" || bad "plg_dump --json --stats: $n"
  else skip "python3 missing: --json lines not parsed"; fi
  out=$(build/plg_dump --verify "$log" 2>"$dir/err"); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "^verified   100000 records read" && echo "$out" | grep -q "clean end" \
    && [ ! -s "$dir/err" ]; } && ok "plg_dump --verify reads all 100000 records, no progress into a file" \
    || bad "plg_dump --verify: rc=$rc $out $(cat "$dir/err")"
  if [ $have_py = 1 ]; then
    tty=$(ptyrun "$dir/stdout" "" build/plg_dump --verify "$log"); rc=$?
    { [ $rc -eq 0 ] && echo "$tty" | grep -q "plg_dump: verifying: 100000 records, segment 1 of 2 .*done" \
      && grep -q "^verified   100000 records read" "$dir/stdout" && ! grep -q "verifying" "$dir/stdout"; } \
      && ok "plg_dump --verify: progress on a terminal (stderr), not in stdout" || bad "plg_dump --verify progress: rc=$rc $tty"
    tty=$(ptyrun "$dir/stdout" "" build/plg_dump --stats "$log"); rc=$?
    { [ $rc -eq 0 ] && echo "$tty" | grep -q "plg_dump: reading: 100000 records.*done"; } \
      && ok "plg_dump --stats: progress on a terminal" || bad "plg_dump --stats progress: rc=$rc $tty"
  else skip "python3 missing: no pseudo-terminal for the progress tests"; fi

  # --follow: a writer appends while plg_dump follows; every record exactly once, in order
  if [ $have_py = 1 ] && cc -std=c11 -O0 -I. tests/plg_appender.c -o "$dir/plg_appender" $(pkg-config --libs liburing 2>/dev/null || echo -luring) -lpthread; then
    flog="$dir/follow"; fout="$dir/follow.out"; nrec=5000
    "$dir/plg_appender" "$flog" $nrec 100 "$dir/ready" "$dir/go" & wpid=$!
    for _ in $(seq 600); do [ -e "$dir/ready" ] && break; sleep 0.05; done
    build/plg_dump --follow --json "$flog" >"$fout" 2>"$dir/follow.err" & fpid=$!
    # the follower reaches the end of the first batch, then the writer goes on
    for _ in $(seq 600); do [ "$(grep -c '"record"' "$fout")" -ge 100 ] && break; sleep 0.05; done
    atend=$(grep -c '"record"' "$fout")
    touch "$dir/go"; wait $wpid; wrc=$?
    for _ in $(seq 600); do [ "$(grep -c '"record"' "$fout")" -ge $nrec ] && break; sleep 0.05; done
    kill -TERM $fpid
    for _ in $(seq 200); do kill -0 $fpid 2>/dev/null || break; sleep 0.05; done
    kill -0 $fpid 2>/dev/null && { kill -KILL $fpid; echo "plg_dump --follow ignored SIGTERM" >>"$dir/follow.err"; }
    wait $fpid; frc=$?
    check=$(python3 -c '
import json, sys
n = int(sys.argv[2]); seqs = []; last = None
for line in open(sys.argv[1]):
    o = json.loads(line); last = o
    if o["type"] == "record":
        k = o["seq"]; seqs.append(k)
        want = k.to_bytes(8, "little").hex() + (k * 31).to_bytes(8, "little").hex()
        assert o["hex"] == want, "record %d holds %s" % (k, o["hex"])
assert seqs == list(range(1, n + 1)), "seqs: %d lines, first wrong at %s" % (len(seqs), next((i + 1 for i, k in enumerate(seqs) if k != i + 1), len(seqs) + 1))
assert last["type"] == "summary" and last["status"] == "stopped" and last["records"] == n and last["exit"] == 0, last
print("ok")' "$fout" $nrec 2>&1 | tail -1)
    segs=$(ls "$flog" | grep -c '\.plg$')
    { [ "$atend" = 100 ] && [ $wrc -eq 0 ] && [ $frc -eq 0 ] && [ "$check" = ok ] && [ "$segs" -gt 2 ]; } \
      && ok "plg_dump --follow: $nrec records appended live over $segs segments, each once, in order; SIGTERM ends it, exit 0" \
      || bad "plg_dump --follow: at end $atend, writer $wrc, follower $frc, segments $segs, $check $(cat "$dir/follow.err")"

    # a record made durable after the follower reached the end, while the
    # writer keeps the log open (so only its durable mark says it is there):
    # printed within a bounded wait; SIGTERM then ends the follower, exit 0
    hlog="$dir/follow-held"; hout="$dir/follow-held.out"
    "$dir/plg_appender" "$hlog" 101 100 "$dir/hready" "$dir/hgo" "$dir/hhold" & wpid=$!
    for _ in $(seq 600); do [ -e "$dir/hready" ] && break; sleep 0.05; done
    build/plg_dump --follow --hex 16 "$hlog" >"$hout" 2>"$dir/follow-held.err" & fpid=$!
    for _ in $(seq 600); do [ "$(grep -c '^seq ' "$hout")" -ge 100 ] && break; sleep 0.05; done
    before=$(grep -c '^seq ' "$hout")
    touch "$dir/hgo"
    for _ in $(seq 400); do grep -q '^seq 101 ' "$hout" && break; sleep 0.05; done
    got=$(grep '^seq 101 ' "$hout")
    kill -TERM $fpid
    for _ in $(seq 200); do kill -0 $fpid 2>/dev/null || break; sleep 0.05; done
    kill -0 $fpid 2>/dev/null && { kill -KILL $fpid; echo "plg_dump --follow ignored SIGTERM" >>"$dir/follow-held.err"; }
    wait $fpid; frc=$?
    touch "$dir/hhold"; wait $wpid; wrc=$?
    { [ "$before" = 100 ] && [ "$got" = "seq 101 len 16 65000000000000003b0c000000000000" ] && [ $frc -eq 0 ] && [ $wrc -eq 0 ] \
      && [ "$(grep -c '^seq ' "$hout")" = 101 ] && grep -q "stopped after 101 record(s), last seq 101" "$dir/follow-held.err"; } \
      && ok "plg_dump --follow: a record made durable after it reached the end is printed (writer still open); SIGTERM: exit 0" \
      || bad "plg_dump --follow held writer: before $before, got '$got', follower $frc, writer $wrc, $(cat "$dir/follow-held.err")"
  else skip "python3 or cc missing: --follow not tested"; fi

  seg="$log/00000000000000000001.plg"
  # Trade = 32 bytes -> 56-byte fragments (24-byte header), 73 a page: record
  # 100 starts at 4096 + 4096 + 26*56 when every page is packed full. The
  # writer may leave a page part filled (a write of it in flight: a loaded
  # machine), so find it: fragments (u16 length at 4, u64 seq at 16, 8-aligned)
  # from the first data page on; a zero length ends a page.
  off=$((4096 + 4096 + 26 * 56))
  if [ $have_py = 1 ]; then
    off=$(python3 -c '
import struct, sys
d = open(sys.argv[1], "rb").read()
for p in range(4096, len(d), 4096):
    o = 0
    while o + 24 <= 4096:
        n = struct.unpack_from("<H", d, p + o + 4)[0]
        if n == 0: break
        if struct.unpack_from("<Q", d, p + o + 16)[0] == 100: print(p + o); sys.exit(0)
        o += (24 + n + 7) // 8 * 8
sys.exit(1)' "$seg") || off=0
  fi
  printf '\xff' | dd of="$seg" bs=1 seek=$((off + 30)) conv=notrunc status=none
  out=$(build/plg_dump "$log"); rc=$?
  { [ $rc -eq 1 ] && echo "$out" | grep -q "CORRUPT    $seg offset $off"; } \
    && ok "plg_dump reports mid-log corruption with file and offset, exit 1" || bad "plg_dump corruption: rc=$rc $out"
  build/plg_dump --verify "$log" >/dev/null 2>&1; rc=$?
  [ $rc -eq 1 ] && ok "plg_dump --verify on mid-log corruption: exit 1" || bad "plg_dump --verify corrupt: exit $rc"
  if [ $have_py = 1 ]; then
    out=$(build/plg_dump --json "$log"); rc=$?
    { [ $rc -eq 1 ] && [ "$(echo "$out" | json_lines summary)" = 1 ] && echo "$out" | grep -q "\"status\":\"corrupt\".*\"offset\":$off,"; } \
      && ok "plg_dump --json on a corrupt log: status corrupt, offset, exit 1" || bad "plg_dump --json corrupt: rc=$rc $out"
  fi
  log2="$dir/torn"
  build/trade_log "$log2" >/dev/null 2>&1
  end=$(build/plg_dump "$log2" | sed -n 's/^valid end .* offset //p')
  # a crash, not damage: the durable mark (picolog.meta) never covered the tail
  rm -f "$log2/picolog.meta"
  junk="$dir/junk"; head -c 3000 /dev/urandom >"$junk"
  dd if="$junk" of="$log2/00000000000000000001.plg" bs=1 seek=$((end - 1000)) conv=notrunc status=none
  out=$(build/plg_dump "$log2"); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "torn tail"; } && ok "plg_dump calls a garbled tail torn, exit 0" || bad "plg_dump torn: rc=$rc $out"

  # --fix: shows the cut, asks, keeps a copy of every byte it cuts, then cuts
  sum() { cat "$1"/* | md5sum; }
  before=$(sum "$log2")
  out=$(build/plg_dump --fix "$log2" </dev/null 2>&1); rc=$?
  { [ $rc -eq 2 ] && echo "$out" | grep -q "will cut   the torn tail from" && echo "$out" | grep -q "run with --yes" \
    && [ "$(sum "$log2")" = "$before" ]; } && ok "plg_dump --fix without a terminal or --yes: shows the cut, cuts nothing, exit 2" \
    || bad "plg_dump --fix no tty: rc=$rc $out"
  if [ $have_py = 1 ]; then
    tty=$(ptyrun "$dir/stdout" $'n\n' build/plg_dump --fix "$log2"); rc=$?
    { [ $rc -eq 0 ] && echo "$tty" | grep -q "Cut it (a copy is kept)? \[y/N\]" && grep -q "^nothing cut" "$dir/stdout" \
      && [ "$(sum "$log2")" = "$before" ]; } && ok "plg_dump --fix asks y/N on a terminal; N cuts nothing" \
      || bad "plg_dump --fix N: rc=$rc $tty $(cat "$dir/stdout")"
  fi
  out=$(build/plg_dump --fix --yes "$log2" 2>"$dir/err"); rc=$?
  copy=$(echo "$out" | sed -n 's/^copy       \(.*\) ([0-9]* bytes)$/\1/p')
  { [ $rc -eq 0 ] && [ -n "$copy" ] && [ -f "$copy" ] && [ "$(dirname "$copy")" = "$dir" ] && echo "$out" | grep -q "^cut        done: "; } \
    && ok "plg_dump --fix --yes: cuts the torn tail, the copy is next to the log ($(basename "$copy"))" \
    || bad "plg_dump --fix --yes: rc=$rc $out $(cat "$dir/err")"
  if [ $have_py = 1 ] && [ -n "$copy" ]; then
    python3 -c 'import sys; c = open(sys.argv[1], "rb").read(); j = open(sys.argv[2], "rb").read(); assert j in c' "$copy" "$junk" \
      && ok "plg_dump --fix: the copy holds the 3000 garbled bytes it cut" || bad "plg_dump --fix: the copy lacks the cut bytes"
  fi
  out=$(build/plg_dump "$log2"); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "verdict    valid; clean end"; } && ok "plg_dump after --fix: a clean end" || bad "after --fix: rc=$rc $out"
  rm -f "$copy"
  # damage at or below the durable mark is corruption: --fix refuses, changes nothing
  # (the log --follow read, closed cleanly: its durable mark covers every record)
  log3="$dir/follow"
  [ -d "$log3" ] || { log3="$dir/below"; build/trade_log "$log3" >/dev/null 2>&1; }
  endfile=$(build/plg_dump "$log3" | sed -n 's/^valid end  \(.*\) offset [0-9]*$/\1/p')
  end=$(build/plg_dump "$log3" | sed -n 's/^valid end .* offset //p')
  head -c 3000 /dev/urandom | dd of="$endfile" bs=1 seek=$((end - 1000)) conv=notrunc status=none
  before=$(sum "$log3")
  out=$(build/plg_dump --fix --yes "$log3" 2>&1); rc=$?
  { [ $rc -eq 1 ] && echo "$out" | grep -q "^detail .* was durable (durable mark in picolog.meta)" && echo "$out" | grep -q "refuses" && [ "$(sum "$log3")" = "$before" ] \
    && [ -z "$(ls "$dir" | grep '\.cut-')" ]; } && ok "plg_dump --fix refuses damage below the durable mark: exit 1, nothing cut or copied" \
    || bad "plg_dump --fix below the mark: rc=$rc $out"
else
  bad "build/trade_log and build/plg_dump are built by make (run make test-plain)"
fi

# the bytes of every file under a directory: pp_inspect must change none
tree_sum() { find "$1" -type f | sort | xargs cat 2>/dev/null | md5sum; }
# frame_off SEGMENT K: the offset of frame K (0-based) of a format-2 journal
# segment (frames from offset 4096, each led by its u32 length)
frame_off() {
  python3 -c '
import struct, sys
d = open(sys.argv[1], "rb").read(); o = 4096
for _ in range(int(sys.argv[2])):
    n = struct.unpack_from("<I", d, o)[0]; assert n >= 64, (o, n); o += n
print(o)' "$1" "$2"
}

# pp_inspect's checks on one store of each layout: LAYOUT is format2 (the
# default of a new store) or legacy (a journal per instrument)
inspect_checks() {
  local layout=$1 data="$dir/pp-$1" books jf f off want segs before
  books="$data"; [ "$layout" = format2 ] && books="$data/books"
  COINBASE_REPLAY_LAYOUT=$layout build/coinbase_replay "$data" >/dev/null 2>&1 \
    && ok "[$layout] coinbase_replay builds a data directory" || bad "[$layout] coinbase_replay"
  if [ "$layout" = format2 ]; then
    [ -f "$data/STORE" ] && [ -d "$data/journal" ] && [ ! -d "$data/BTC-USD" ] && ok "[$layout] the store is format 2" \
      || bad "[$layout] the store is not format 2: $(ls "$data")"
  else
    [ ! -e "$data/STORE" ] && [ -d "$data/BTC-USD/journal" ] && ok "[$layout] the store has a journal per instrument" \
      || bad "[$layout] not the per-instrument layout: $(ls "$data")"
  fi
  before=$(tree_sum "$data")
  out=$(build/pp_inspect "$data"); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "4 instrument(s) in $data: all recoverable"; } \
    && ok "[$layout] pp_inspect: 4 clean instruments, exit 0" || bad "[$layout] pp_inspect clean: rc=$rc $out"
  if [ $have_py = 1 ] && [ "$layout" = format2 ]; then   # progress does not depend on the layout
    tty=$(ptyrun "$dir/stdout" "" build/pp_inspect "$data"); rc=$?
    { [ $rc -eq 0 ] && echo "$tty" | grep -q "pp_inspect: checking 4 of 4: " && echo "$tty" | grep -q "checked 4 instrument(s)" \
      && grep -q "all recoverable" "$dir/stdout" && ! grep -q "checking" "$dir/stdout"; } \
      && ok "[$layout] pp_inspect: progress on a terminal (stderr), not in stdout" || bad "[$layout] pp_inspect progress: rc=$rc $tty"
    build/pp_inspect "$data" >/dev/null 2>"$dir/err"; rc=$?
    { [ $rc -eq 0 ] && [ ! -s "$dir/err" ]; } && ok "[$layout] pp_inspect: no progress when stderr is a file" || bad "[$layout] pp_inspect progress into a file: $(cat "$dir/err")"
  fi
  # the journal segments on disk: format 2 shares them, so they count once
  segs=$(ls "$data"/journal/*.ppj "$data"/*/journal/*.ppj 2>/dev/null | wc -l)
  out=$(build/pp_inspect --stats "$data"); rc=$?
  { [ $rc -eq 0 ] && [ "$segs" -gt 0 ] && echo "$out" | grep -q "^totals     4 instrument(s): $segs segment(s)"; } \
    && ok "[$layout] pp_inspect --stats: totals ($segs segment(s), as on disk)" || bad "[$layout] pp_inspect --stats: rc=$rc, $segs on disk, $out"
  out=$(build/pp_inspect --help); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "^usage: pp_inspect" && echo "$out" | grep -q "1  damage found"; } \
    && ok "[$layout] pp_inspect --help: usage and exit codes, exit 0" || bad "[$layout] pp_inspect --help: rc=$rc $out"
  out=$(build/pp_inspect --version); [ $? -eq 0 ] && [ "$out" = "pp_inspect (pinnacle_persist) $version" ] \
    && ok "[$layout] pp_inspect --version" || bad "[$layout] pp_inspect --version: $out"
  build/pp_inspect --bogus "$data" >/dev/null 2>&1; rc=$?
  [ $rc -eq 2 ] && ok "[$layout] pp_inspect --bogus: usage error, exit 2" || bad "[$layout] pp_inspect --bogus: exit $rc"
  build/pp_inspect "$dir/no-such-dir" >/dev/null 2>&1; rc=$?
  [ $rc -eq 2 ] && ok "[$layout] pp_inspect on a missing directory: exit 2" || bad "[$layout] pp_inspect missing dir: exit $rc"
  if [ $have_py = 1 ]; then
    n=$(build/pp_inspect --json "$data" | json_lines instrument)
    [ "$n" = 4 ] && ok "[$layout] pp_inspect --json: 4 instrument lines and a summary, each parses" || bad "[$layout] pp_inspect --json: $n"
  fi
  # market data as the newest snapshot saved it, by exchange time; connection state
  if [ $have_py = 1 ]; then
    mdcheck() {   # FILE: the market_data object agrees with its bars, ticks and the instrument object
      python3 -c '
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1])]
inst = [o for o in objs if o["type"] == "instrument"][0]
md = [o for o in objs if o["type"] == "market_data"][0]
bars = [o for o in objs if o["type"] == "bar" and o["res_s"] == 60]
ticks = [o["tick"] for o in objs if o["type"] == "tick"]
assert md["status"] == "ok" and md["snapshot_seq"] == inst["newest_snapshot_seq"], md
assert md["last_tick"]["exch_seq"] == md["last_exch_seq"] and md["raw_ticks"] == len(ticks) > 0, md
assert len(bars) == md["bars_1m"] and sum(b["trades"] for b in bars) == md["raw_ticks"], (len(bars), md)
assert ticks[-1] == md["last_tick"], (ticks[-1], md["last_tick"])
gaps = [o for o in objs if o["type"] == "gap"]
assert len(gaps) == md["gaps"] == sum(b["gaps"] for b in bars) and len(gaps) >= int(sys.argv[2]), (gaps, md)
assert all(g["missing"] == g["next_seq"] - g["after_seq"] - 1 > 0 for g in gaps), gaps
assert objs[-1]["type"] == "summary"
print("ok")' "$1" "$2" 2>&1 | tail -1
    }
    build/pp_inspect -v -m --json "$data" BTC-USD >"$dir/md.json"; rc=$?
    check=$(mdcheck "$dir/md.json" 0)
    build/pp_inspect -v -m --json "$data" ETH-USD >"$dir/md-eth.json"; rc2=$?
    check2=$(mdcheck "$dir/md-eth.json" 1)      # the generated ETH-USD feed skips exchange seqs once
    { [ $rc -eq 0 ] && [ "$check" = ok ] && [ $rc2 -eq 0 ] && [ "$check2" = ok ]; } \
      && ok "[$layout] pp_inspect --market-data --json: last tick, every raw tick and gap counted in the 1 min bars" \
      || bad "[$layout] pp_inspect --market-data: rc=$rc $check; ETH-USD rc=$rc2 $check2"
    from=$(python3 -c 'import json,sys; b=[json.loads(l) for l in open(sys.argv[1])]; b=[o for o in b if o["type"]=="bar" and o["res_s"]==60]; print(b[2]["time"][:19], b[3]["start_ns"]//10**9+59)' "$dir/md.json")
    build/pp_inspect -v -m --json --from-time "${from% *}Z" --to-time "${from#* }" "$data" BTC-USD >"$dir/md2.json"; rc=$?
    check=$(python3 -c '
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1])]
allb = [o for o in (json.loads(l) for l in open(sys.argv[2])) if o["type"] == "bar" and o["res_s"] == 60]
lo, hi = allb[2]["start_ns"], allb[3]["start_ns"] + 60 * 10**9 - 1
bars = [o for o in objs if o["type"] == "bar" and o["res_s"] == 60]
ticks = [o["tick"] for o in objs if o["type"] == "tick"]
assert [b["start_ns"] for b in bars] == [allb[2]["start_ns"], allb[3]["start_ns"]], bars
assert ticks and all(lo <= t["exch_ts_ns"] <= hi for t in ticks), "tick outside the range"
assert len(ticks) == allb[2]["trades"] + allb[3]["trades"], (len(ticks), allb[2]["trades"], allb[3]["trades"])
print("ok")' "$dir/md2.json" "$dir/md.json" 2>&1 | tail -1)
    { [ $rc -eq 0 ] && [ "$check" = ok ]; } && ok "[$layout] pp_inspect --from-time/--to-time: exactly the 1 min bars and ticks of two minutes" \
      || bad "[$layout] pp_inspect --from-time/--to-time: rc=$rc $check"
    n=$(build/pp_inspect -v --json --from-time 0 "$data" | json_lines snapshot)
    m=$(build/pp_inspect -v --json --from-time 4000000000 "$data" | json_lines snapshot)
    { [ "$n" -ge 4 ] && [ "$m" = 0 ]; } && ok "[$layout] pp_inspect -v --from-time: snapshots by the time they were taken ($n, then 0 after 2096)" \
      || bad "[$layout] pp_inspect snapshots by time: $n, $m"
    out=$(build/pp_inspect -v "$data" BTC-USD); rc=$?
    want=$(ls "$books/BTC-USD/snapshots/" | grep -c '\.pps$')
    { [ $rc -eq 0 ] && [ "$want" -ge 1 ] && [ "$(echo "$out" | grep -c '^      [0-9]*\.pps  [0-9]* bytes, ')" = "$want" ] \
      && echo "$out" | grep -q "^      [0-9]*\.ppj  [0-9]* bytes$"; } \
      && ok "[$layout] pp_inspect -v: the $want snapshot file(s) and the journal files" || bad "[$layout] pp_inspect -v: rc=$rc, $want snapshots, $out"
    newest=$(ls "$books/BTC-USD/md/"*.ppm | sort | tail -1)
    cp "$newest" "$dir/ppm.bak"
    printf '\xff' | dd of="$newest" bs=1 seek=400 conv=notrunc status=none
    out=$(build/pp_inspect -m --json "$data" BTC-USD); rc=$?
    echo "$out" | grep -q '"type":"market_data".*"status":"ok".*"unreadable_files":1' && [ $rc -eq 0 ] \
      && ! echo "$out" | grep -q "\"snapshot_seq\":$(basename "$newest" .ppm | sed 's/^0*//')," \
      && ok "[$layout] pp_inspect --market-data: a damaged newest .ppm is counted, the older one is shown" || bad "[$layout] pp_inspect damaged ppm: rc=$rc $out"
    cp "$dir/ppm.bak" "$newest"
    out=$(build/pp_inspect --conn --json --hex 64 "$data" BTC-USD); rc=$?
    check=$(echo "$out" | python3 -c '
import json, sys
c = {o["name"]: o for o in (json.loads(l) for l in sys.stdin) if o["type"] == "conn"}
assert len(c) == 7 and all(o["status"] == "ok" for o in c.values()), c
assert bytes.fromhex(c["feed_url"]["hex"]).startswith(b"wss://"), c["feed_url"]
assert c["feed_url"]["bytes"] == len(bytes.fromhex(c["feed_url"]["hex"])) and not c["feed_url"]["truncated"]
print("ok")' 2>&1 | tail -1)
    { [ $rc -eq 0 ] && [ "$check" = ok ]; } && ok "[$layout] pp_inspect --conn --json --hex: 7 blobs, names, sizes, contents" || bad "[$layout] pp_inspect --conn: rc=$rc $check"
    printf 'X' | dd of="$data/.conn/channels" bs=1 seek=17 conv=notrunc status=none
    out=$(build/pp_inspect --conn "$data" BTC-USD); rc=$?
    { [ $rc -eq 0 ] && echo "$out" | grep -q "^  channels .*CORRUPT" && echo "$out" | grep -q "^  feed_line  *8 byte(s)$"; } \
      && ok "[$layout] pp_inspect --conn: a damaged blob is CORRUPT, the others listed" || bad "[$layout] pp_inspect --conn corrupt: rc=$rc $out"
    printf 'i' | dd of="$data/.conn/channels" bs=1 seek=17 conv=notrunc status=none   # back as it was ("ticker")
  fi
  for args in "--from-time abc" "--from-time 2026-13-01T00:00:00Z" "--to-time 5 --from-time 9" "--hex 8" "--conn --hex x"; do
    # shellcheck disable=SC2086
    build/pp_inspect $args "$data" >/dev/null 2>&1; rc=$?
    [ $rc -eq 2 ] && ok "[$layout] pp_inspect $args: usage error, exit 2" || bad "[$layout] pp_inspect $args: exit $rc, want 2"
  done
  [ "$(tree_sum "$data")" = "$before" ] && ok "[$layout] pp_inspect changed no byte of the store (every view above)" \
    || bad "[$layout] pp_inspect changed the store"
  # an unreadable journal is an error that kept the check from running, not damage
  if [ "$layout" = format2 ]; then jf=$(ls "$data"/journal/*.ppj | head -1); else jf="$data/BTC-USD/journal/00000000000000000001.ppj"; fi
  chmod 000 "$jf"
  nocap=()
  # as root, drop the capabilities that bypass file permissions (if this
  # container lets us: setpriv needs CAP_SETPCAP)
  [ "$(id -u)" = 0 ] && setpriv --bounding-set -dac_override,-dac_read_search true 2>/dev/null \
    && nocap=(setpriv --bounding-set -dac_override,-dac_read_search)
  if [ "$(id -u)" != 0 ] || [ ${#nocap[@]} -gt 0 ]; then
    out=$("${nocap[@]}" build/pp_inspect "$data" BTC-USD); rc=$?
    { [ $rc -eq 2 ] && echo "$out" | grep -q "ERROR      PP_EACCES" && ! echo "$out" | grep -q CORRUPT; } \
      && ok "[$layout] pp_inspect: a permission error is exit 2, not corruption" || bad "[$layout] pp_inspect permission: rc=$rc $out"
  else skip "root and setpriv cannot drop CAP_DAC_OVERRIDE: cannot make a file unreadable"; fi
  chmod 644 "$jf"
  if [ "$layout" = format2 ]; then
    # a frame in the middle of the store journal: every instrument's recovery refuses the store
    f=$(ls "$data"/journal/*.ppj | head -1); off=$(frame_off "$f" 100)
    want="at $f offset $off: invalid frame below the durable mark"
  else
    f="$data/SOL-USD/journal/00000000000000000001.ppj"; off=$((4096 + 48 * 100))
    want="at $f offset $off: invalid entry where seq 101 was expected"
  fi
  printf '\xff' | dd of="$f" bs=1 seek=$((off + 20)) conv=notrunc status=none
  out=$(build/pp_inspect "$data"); rc=$?
  { [ $rc -eq 1 ] && echo "$out" | grep -q "$want"; } \
    && ok "[$layout] pp_inspect: mid-journal corruption with file and offset, exit 1" || bad "[$layout] pp_inspect corrupt: rc=$rc $out"
  if [ $have_py = 1 ]; then
    out=$(build/pp_inspect --json "$data"); rc=$?
    { [ $rc -eq 1 ] && [ "$(echo "$out" | json_lines instrument)" = 4 ] && echo "$out" | grep -q '"name":"SOL-USD","status":"corrupt"'; } \
      && ok "[$layout] pp_inspect --json on a corrupt instrument: status corrupt, exit 1" || bad "[$layout] pp_inspect --json corrupt: rc=$rc $out"
  fi
}

# evcheck WANT GOT MODE [ARGS] [-- GOT MODE [ARGS]]...: for each group, one
# line "ok" or "FAIL: why" (one python start for all: it is slow on a loaded
# machine). The events pp_inspect printed (GOT) are exactly those
# pp_eventwriter wrote (WANT, JSON Lines) that MODE selects:
#   json all | json time FROM_S TO_S   JSON Lines, then the summary (exit 0)
#   text INSTRUMENT FROM TO             text lines of one instrument's seqs
#   stats                               "stats" objects: counts by type
#   damage FILE OFFSET                  a "damage" object for AAA-USD there, summary exit 1
evcheck() {
  python3 -c '
import json, re, sys
want = [json.loads(l) for l in open(sys.argv[1])]
keys = ["instrument", "seq", "event", "order_id", "side", "price", "qty", "ts_ns"]
want.sort(key=lambda e: (e["instrument"], e["seq"]))
def check(got, mode, args):
    if mode == "text":
        inst, lo, hi = args[0], int(args[1]), int(args[2])
        sel = [e for e in want if e["instrument"] == inst and lo <= e["seq"] <= hi]
        pat = re.compile(r"^(\S+) seq (\d+) (\w+) id (\d+) side (\S+) price (-?\d+) qty (-?\d+) ts \S+Z \((\d+)\)$")
        rows = []
        for line in open(got):
            m = pat.match(line.rstrip("\n")); assert m, "not an event line: %r" % line
            g = m.groups()
            rows.append(dict(zip(keys, [g[0], int(g[1]), g[2], int(g[3]), None if g[4] == "-" else g[4], int(g[5]), int(g[6]), int(g[7])])))
        assert rows == [{k: e[k] for k in keys} for e in sel] and len(sel) == hi - lo + 1, (rows[:2], sel[:2])
        return
    objs = [json.loads(l) for l in open(got)]
    if mode == "damage":
        d = [o for o in objs if o["type"] == "damage" and o["instrument"] == "AAA-USD"]
        assert len(d) == 1 and d[0]["file"] == args[0] and d[0]["offset"] == int(args[1]), d
        assert objs[-1]["type"] == "summary" and objs[-1]["exit"] == 1 and objs[-1]["damaged"] >= 1, objs[-1]
        return
    assert objs and objs[-1]["type"] == "summary" and objs[-1]["exit"] == 0, objs[-1:]
    if mode == "stats":
        st = {o["instrument"]: o for o in objs if o["type"] == "stats"}
        assert sorted(st) == sorted({e["instrument"] for e in want}), st
        for name, o in st.items():
            mine = [e for e in want if e["instrument"] == name]
            for t, k in (("add", "adds"), ("cancel", "cancels"), ("execute", "executes"), ("modify", "modifies")):
                assert o[k] == sum(e["event"] == t for e in mine) > 0, (name, t, o)
            assert o["events"] == len(mine) and o["first_seq"] == 1 and o["last_seq"] == len(mine), o
            assert o["first_ts_ns"] == min(e["ts_ns"] for e in mine) and o["last_ts_ns"] == max(e["ts_ns"] for e in mine), o
        assert objs[-1]["events"] == len(want), objs[-1]
        return
    sel = want
    if args and args[0] == "time":
        lo, hi = int(args[1]) * 10**9, int(args[2]) * 10**9 + 999999999
        sel = [e for e in want if lo <= e["ts_ns"] <= hi]
    ev = [{k: o[k] for k in keys} for o in objs if o["type"] == "event"]
    assert ev == [{k: e[k] for k in keys} for e in sel], (len(ev), len(sel), ev[:1], sel[:1])
    assert objs[-1]["events"] == len(sel) > 0, objs[-1]
groups, cur = [], []
for a in sys.argv[2:] + ["--"]:
    if a == "--":
        groups.append(cur); cur = []
    else:
        cur.append(a)
for g in groups:
    try:
        check(g[0], g[1], g[2:]); print("ok")
    except Exception as e:
        print(("FAIL: %s %r" % (type(e).__name__, e)).replace("\n", " ")[:600])' "$@" 2>&1
}

# pp_inspect --events on a store pp_eventwriter wrote (two books, N events
# each): what it reads back is what was written, all of it, by seq, by time,
# counted; damage is exit 1 with file and offset
events_checks() {
  local layout=$1 ev="$dir/ev-$1" wantf="$dir/ev-$1.want" before f off want rc1 rc2 rc3 rc4 rc5 rc6 res
  # first beside the running store (the writer holds it open), then closed
  rm -f "$dir/ev.ready" "$dir/ev.go"
  "$dir/pp_eventwriter" "$ev" 200 "$layout" "$dir/ev.ready" "$dir/ev.go" >"$wantf" 2>"$dir/ev.err" & wpid=$!
  for _ in $(seq 600); do [ -e "$dir/ev.ready" ] && break; kill -0 $wpid 2>/dev/null || break; sleep 0.05; done
  build/pp_inspect --events --json "$ev" >"$dir/ev.1"; rc1=$?
  touch "$dir/ev.go"; wait $wpid || { bad "[$layout] pp_eventwriter: $(cat "$dir/ev.err")"; return; }
  before=$(tree_sum "$ev")
  build/pp_inspect --events --json "$ev" >"$dir/ev.2"; rc2=$?
  build/pp_inspect --events --instrument AAA-USD --from 50 --to 59 "$ev" >"$dir/ev.3"; rc3=$?
  build/pp_inspect --events --json --from-time 1800000100 --to-time 2027-01-15T08:01:59Z "$ev" >"$dir/ev.4"; rc4=$?
  build/pp_inspect --events --stats --json "$ev" >"$dir/ev.5"; rc5=$?
  out=$(build/pp_inspect --events --stats "$ev"); rc6=$?
  mapfile -t res < <(evcheck "$wantf" "$dir/ev.1" json all -- "$dir/ev.2" json all -- "$dir/ev.3" text AAA-USD 50 59 \
                      -- "$dir/ev.4" json time 1800000100 1800000119 -- "$dir/ev.5" stats)
  { [ $rc1 -eq 0 ] && [ "${res[0]}" = ok ]; } && ok "[$layout] pp_inspect --events beside the running store: the 400 events written" \
    || bad "[$layout] pp_inspect --events beside a running store: rc=$rc1 ${res[0]}"
  { [ $rc2 -eq 0 ] && [ "${res[1]}" = ok ]; } && ok "[$layout] pp_inspect --events --json: the 400 events written, each field, then the summary" \
    || bad "[$layout] pp_inspect --events --json: rc=$rc2 ${res[1]}"
  { [ $rc3 -eq 0 ] && [ "${res[2]}" = ok ]; } && ok "[$layout] pp_inspect --events --instrument --from 50 --to 59: exactly those 10 lines" \
    || bad "[$layout] pp_inspect --events --from/--to: rc=$rc3 ${res[2]} $(head -3 "$dir/ev.3")"
  { [ $rc4 -eq 0 ] && [ "${res[3]}" = ok ]; } && ok "[$layout] pp_inspect --events --from-time/--to-time: the 20 events of those 20 s" \
    || bad "[$layout] pp_inspect --events by time: rc=$rc4 ${res[3]}"
  { [ $rc5 -eq 0 ] && [ "${res[4]}" = ok ] && [ $rc6 -eq 0 ] && echo "$out" | grep -q "^totals  2 instrument(s), 400 event(s): 200 add, 100 cancel, 50 execute, 50 modify; .*(399.000 s, 1.003 events/s)$"; } \
    && ok "[$layout] pp_inspect --events --stats: counts by type, seqs, time span and rate" \
    || bad "[$layout] pp_inspect --events --stats: rc=$rc5 ${res[4]}; rc=$rc6 $out"
  for args in "--events --from 0" "--events --to 5 --from 9" "--from 5" "--events --instrument ../x" "--events -m" "--events --from 1x"; do
    # shellcheck disable=SC2086
    build/pp_inspect $args "$ev" >/dev/null 2>&1; rc=$?
    [ $rc -eq 2 ] && ok "[$layout] pp_inspect $args: usage error, exit 2" || bad "[$layout] pp_inspect $args: exit $rc, want 2"
  done
  build/pp_inspect --events --instrument NOPE-USD "$ev" >/dev/null 2>&1; rc=$?
  [ $rc -eq 2 ] && ok "[$layout] pp_inspect --events on an unknown instrument: exit 2" || bad "[$layout] pp_inspect --events unknown: exit $rc"
  [ "$(tree_sum "$ev")" = "$before" ] && ok "[$layout] pp_inspect --events changed no byte of the store" || bad "[$layout] pp_inspect --events changed the store"
  if [ "$layout" = format2 ]; then
    f=$(ls "$ev"/journal/*.ppj | head -1); off=$(frame_off "$f" 60)
    want="at $f offset $off: invalid frame below the durable mark"
  else
    f="$ev/AAA-USD/journal/00000000000000000001.ppj"; off=$((4096 + 48 * 60))
    want="at $f offset $off: invalid entry where seq 61 was expected"
  fi
  printf '\xff' | dd of="$f" bs=1 seek=$((off + 20)) conv=notrunc status=none
  out=$(build/pp_inspect --events "$ev"); rc=$?
  { [ $rc -eq 1 ] && echo "$out" | grep -q "^AAA-USD CORRUPT" && echo "$out" | grep -q "^  $want" && ! echo "$out" | grep -q "^AAA-USD seq"; } \
    && ok "[$layout] pp_inspect --events on a damaged journal: exit 1, file and offset, no events of it" \
    || bad "[$layout] pp_inspect --events damaged: rc=$rc $(echo "$out" | head -5)"
  build/pp_inspect --events --json "$ev" >"$dir/ev.6"; rc=$?
  res=$(evcheck "$wantf" "$dir/ev.6" damage "$f" "$off")
  { [ $rc -eq 1 ] && [ "$res" = ok ]; } && ok "[$layout] pp_inspect --events --json on damage: a damage object (file, offset), summary exit 1" \
    || bad "[$layout] pp_inspect --events --json damaged: rc=$rc $res"
}

# pp_inspect on an encrypted store (pp_config.encrypt_key): without the key
# "encrypted", exit 2 (never damage) and no byte changed; with --key-file
# (raw or hex) or --vault --key-name the check, the events (each field,
# payloads too) and the book; a wrong key exit 2; no payload in clear on disk
encrypted_checks() {
  local ek="$dir/enc" out rc rc2 res before
  mkdir -p "$ek"; chmod 700 "$ek"
  (umask 077; printf 'pp-inspect-tools-test-data-key!!' >"$ek/key.raw"; printf 'another-key-that-is-32-bytes-lng' >"$ek/wrong.raw"
   od -An -tx1 -v "$ek/key.raw" | tr -d ' \n' >"$ek/key.hex")
  PP_EVENTWRITER_PAYLOAD=1 PP_EVENTWRITER_KEY_FILE="$ek/key.hex" "$dir/pp_eventwriter" "$ek/store" 200 encrypted \
    >"$ek/want" 2>"$ek/err"; rc=$?
  [ $rc -eq 0 ] && ok "[encrypted] pp_eventwriter: a store encrypted at rest" || { bad "[encrypted] pp_eventwriter: rc=$rc $(cat "$ek/err")"; return; }
  PP_EVENTWRITER_PAYLOAD=1 "$dir/pp_eventwriter" "$ek/plain" 200 strict >/dev/null 2>&1   # the same in clear: grep finds it
  { ! grep -rqa "order:" "$ek/store" && grep -rqa "order:" "$ek/plain"; } \
    && ok "[encrypted] no payload in clear anywhere in the data directory (the same store unencrypted shows them)" \
    || bad "[encrypted] payloads: in clear in $(grep -rla "order:" "$ek/store"); unencrypted store: $(grep -rla "order:" "$ek/plain" | head -1)"
  before=$(tree_sum "$ek/store")
  out=$(build/pp_inspect "$ek/store" 2>&1); rc=$?
  { [ $rc -eq 2 ] && echo "$out" | grep -q "encrypted" && echo "$out" | grep -q -- "--key-file" && ! echo "$out" | grep -q CORRUPT; } \
    && ok "[encrypted] pp_inspect without a key: the store is encrypted, exit 2, not damage" || bad "[encrypted] no key: rc=$rc $out"
  out=$(build/pp_inspect --key-file "$ek/wrong.raw" "$ek/store" 2>&1); rc=$?
  { [ $rc -eq 2 ] && echo "$out" | grep -q "PP_EKEY" && ! echo "$out" | grep -q CORRUPT; } \
    && ok "[encrypted] pp_inspect with another key: PP_EKEY, exit 2, not damage" || bad "[encrypted] wrong key: rc=$rc $out"
  out=$(build/pp_inspect --key-file "$ek/key.raw" -v --market-data "$ek/store" 2>&1); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "all recoverable" && echo "$out" | grep -q "order(s), taken"; } \
    && ok "[encrypted] pp_inspect --key-file (raw key) -v: checked, snapshots listed" || bad "[encrypted] --key-file: rc=$rc $out"
  build/pp_inspect --key-file "$ek/key.hex" --events --json "$ek/store" >"$ek/got" 2>"$ek/err2"; rc=$?
  res=$(evcheck "$ek/want" "$ek/got" json all)
  { [ $rc -eq 0 ] && [ "$res" = ok ]; } && ok "[encrypted] pp_inspect --key-file (hex) --events --json: the 400 events written, payloads too" \
    || bad "[encrypted] --events: rc=$rc $res $(cat "$ek/err2")"
  out=$(build/pp_inspect --key-file "$ek/key.raw" --book-at 100 --instrument AAA-USD "$ek/store" 2>&1); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "^AAA-USD at seq 100: "; } \
    && ok "[encrypted] pp_inspect --book-at with the key" || bad "[encrypted] --book-at: rc=$rc $out"
  if [ -x build/vaultctl ]; then
    (umask 077; printf 'pw1\n' >"$ek/pw")
    vctl() { build/vaultctl -f "$ek/secure_config.json" --audit-log - --iterations 100000 --password-file "$ek/pw" "$@"; }
    vctl init 2>/dev/null && vctl datakey create books 2>/dev/null && (umask 077; vctl datakey show --hex books >"$ek/books.hex" 2>/dev/null) \
      && PP_EVENTWRITER_KEY_FILE="$ek/books.hex" "$dir/pp_eventwriter" "$ek/store2" 50 encrypted >"$ek/want2" 2>"$ek/err"; rc=$?
    out=$(build/pp_inspect --vault "$ek/secure_config.json" --key-name books --password-file "$ek/pw" "$ek/store2" 2>&1); rc2=$?
    { [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && echo "$out" | grep -q "2 instrument(s) in .*: all recoverable"; } \
      && ok "[encrypted] pp_inspect --vault --key-name: the key vaultctl made" || bad "[encrypted] --vault: writer $rc, rc=$rc2 $out"
  fi
  [ "$(tree_sum "$ek/store")" = "$before" ] && ok "[encrypted] pp_inspect changed no byte of the store" || bad "[encrypted] pp_inspect changed the store"
}

# bookcheck WANT GOT MODE SEQ [-- GOT MODE SEQ]...: for each group, "ok" or
# "FAIL: why". The book of AAA-USD after SEQ that pp_inspect --book-at
# printed (GOT; MODE text or json) is exactly the one the events
# pp_eventwriter wrote (WANT) give when replayed to SEQ: the same orders,
# fields and payloads, in price-time priority, then the summary.
bookcheck() {
  python3 -c '
import json, re, sys
want = [json.loads(l) for l in open(sys.argv[1])]
def book(seq):
    o = {}
    for e in want:
        if e["instrument"] != "AAA-USD" or e["seq"] > seq: continue
        t, i = e["event"], e["order_id"]
        if t == "add": o[i] = dict(side=e["side"], price=e["price"], qty=e["qty"], order_id=i, seq=e["seq"], ts_ns=e["ts_ns"], payload=e.get("payload"))
        elif t == "cancel": del o[i]
        elif t == "execute":
            o[i]["qty"] -= e["qty"]
            if o[i]["qty"] == 0: del o[i]
        else:
            if e["price"] != o[i]["price"] or e["qty"] > o[i]["qty"]: o[i]["seq"] = e["seq"]   # loses time priority
            o[i]["price"], o[i]["qty"] = e["price"], e["qty"]
    bids = sorted((x for x in o.values() if x["side"] == "buy"), key=lambda x: (-x["price"], x["seq"]))
    asks = sorted((x for x in o.values() if x["side"] == "sell"), key=lambda x: (x["price"], x["seq"]))
    return bids + asks
def check(got, mode, seq):
    exp = book(seq)
    lines = open(got).read().splitlines()
    if mode == "text":
        pat = re.compile(r"^AAA-USD (buy|sell) price (-?\d+) qty (-?\d+) id (\d+) seq (\d+) ts \S+Z \((\d+)\)( payload (\d+) bytes ([0-9a-f]+))?$")
        rows = []
        for line in lines[:-1]:
            m = pat.match(line); assert m, "not an order line: %r" % line
            g = m.groups()
            assert g[6] is None or int(g[7]) * 2 == len(g[8]), line
            rows.append(dict(side=g[0], price=int(g[1]), qty=int(g[2]), order_id=int(g[3]), seq=int(g[4]), ts_ns=int(g[5]), payload=g[8]))
        nb = sum(x["side"] == "buy" for x in exp)
        summ = "AAA-USD at seq %d: %d order(s): %d buy (qty %d), %d sell (qty %d)" % (seq, len(exp), nb,
               sum(x["qty"] for x in exp if x["side"] == "buy"), len(exp) - nb, sum(x["qty"] for x in exp if x["side"] == "sell"))
        assert lines and lines[-1] == summ, (lines[-1:], summ)
    else:
        objs = [json.loads(l) for l in lines]
        assert objs and objs[-1]["type"] == "summary" and objs[-1]["exit"] == 0 and objs[-1]["orders"] == len(exp), objs[-1:]
        assert all(x["type"] == "order" and x["at_seq"] == seq and x["instrument"] == "AAA-USD" for x in objs[:-1]), objs[:1]
        rows = [dict(side=x["side"], price=x["price"], qty=x["qty"], order_id=x["order_id"], seq=x["seq"], ts_ns=x["ts_ns"],
                     payload=x.get("payload")) for x in objs[:-1]]
    assert rows == exp, (len(rows), len(exp), [r for r, x in zip(rows, exp) if r != x][:1] or (rows[-1:], exp[-1:]))
    assert seq == 0 or (exp and all(x["payload"] for x in exp)), "a check that sees no order or no payload proves little"
groups, cur = [], []
for a in sys.argv[2:] + ["--"]:
    if a == "--":
        groups.append(cur); cur = []
    else:
        cur.append(a)
for g in groups:
    try:
        check(g[0], g[1], int(g[2])); print("ok")
    except Exception as e:
        print(("FAIL: %s %r" % (type(e).__name__, e)).replace("\n", " ")[:600])' "$@" 2>&1
}

# pp_inspect --book-at on a format-2 store pp_eventwriter wrote (adds with
# payloads, both books snapshotted at seq 1000 and the journal compacted into
# an archive then): the book after seqs before, at and after the snapshot,
# as text and JSON, equals a replay of what was written; the early ones need
# --archive-dir; past the journal, unknown names and bad usage are exit 2,
# damage exit 1; no file of the store or the archive changes
book_at_checks() {
  local bk="$dir/bk" ar="$dir/bk.archive" wantf="$dir/bk.want" before rc seq args res f off
  rm -rf "$bk" "$ar"
  PP_EVENTWRITER_SEGMENT_BYTES=65536 PP_EVENTWRITER_PAYLOAD=1 PP_EVENTWRITER_SNAPSHOT_AT=1999 PP_EVENTWRITER_ARCHIVE="$ar" \
    "$dir/pp_eventwriter" "$bk" 1500 format2 >"$wantf" 2>"$dir/bk.err" || { bad "[book-at] pp_eventwriter: $(cat "$dir/bk.err")"; return; }
  [ -n "$(ls "$ar/journal" 2>/dev/null)" ] || { bad "[book-at] the writer archived no segment"; return; }
  before=$( (find "$bk" "$ar" -printf '%p %s %T@\n' | sort; tree_sum "$bk"; tree_sum "$ar") | md5sum)
  local groups=() codes=""
  for seq in 0 20 999 1000 1001 1002 1500; do
    build/pp_inspect --book-at $seq --instrument AAA-USD --archive-dir "$ar" "$bk" >"$dir/bk.t$seq"; codes="$codes $?"
    build/pp_inspect --book-at $seq --json --archive-dir "$ar" "$bk" AAA-USD >"$dir/bk.j$seq"; codes="$codes $?"
    groups+=(-- "$dir/bk.t$seq" text $seq -- "$dir/bk.j$seq" json $seq)
  done
  build/pp_inspect --book-at 1000 --instrument AAA-USD "$bk" >"$dir/bk.t1000b"; rc=$?
  mapfile -t res < <(bookcheck "$wantf" "${groups[@]:1}" -- "$dir/bk.t1000b" text 1000)   # one python start
  { [ "$(echo $codes)" = "$(echo 0 0 0 0 0 0 0 0 0 0 0 0 0 0)" ] && [ "$(printf '%s\n' "${res[@]:0:14}" | sort -u)" = ok ] && [ ${#res[@]} -eq 15 ]; } \
    && ok "[book-at] pp_inspect --book-at (text and --json) at seqs 0, 20, 999, 1000, 1001, 1002, 1500: the orders a replay gives, payloads in hex" \
    || bad "[book-at] pp_inspect --book-at: exits$codes; $(printf '%s\n' "${res[@]}" | grep -v '^ok$' | head -2)"
  { [ $rc -eq 0 ] && [ "${res[14]}" = ok ]; } && ok "[book-at] from the live snapshot on, no --archive-dir needed" || bad "[book-at] live snapshot: exit $rc ${res[14]}"
  build/pp_inspect --book-at 20 --instrument AAA-USD "$bk" >/dev/null 2>"$dir/bk.e"; rc=$?
  { [ $rc -eq 2 ] && grep -q "PP_ENOENT" "$dir/bk.e"; } && ok "[book-at] an archived seq without --archive-dir: exit 2, PP_ENOENT" \
    || bad "[book-at] without --archive-dir: exit $rc $(cat "$dir/bk.e")"
  build/pp_inspect --book-at 1501 --instrument AAA-USD --archive-dir "$ar" "$bk" >/dev/null 2>"$dir/bk.e"; rc=$?
  { [ $rc -eq 2 ] && grep -q "PP_EINVAL" "$dir/bk.e"; } && ok "[book-at] a seq past the journal: exit 2, PP_EINVAL" || bad "[book-at] past the journal: exit $rc $(cat "$dir/bk.e")"
  out=$(build/pp_inspect --book-at 5 --json --instrument NOPE-USD "$bk"); rc=$?
  { [ $rc -eq 2 ] && echo "$out" | grep -q '"type":"error","instrument":"NOPE-USD","error":"PP_ENOENT' && echo "$out" | tail -1 | grep -q '"type":"summary".*"exit":2}$'; } \
    && ok "[book-at] an unknown instrument: exit 2, an error object, then the summary" || bad "[book-at] unknown: exit $rc $out"
  for args in "--book-at 5" "--book-at x --instrument AAA-USD" "--book-at 5 --events --instrument AAA-USD" "--archive-dir $ar --instrument AAA-USD" \
              "--book-at 5 --instrument AAA-USD --instrument BBB-USD" "--book-at 5 --from 3 --instrument AAA-USD" "--book-at 5 --instrument ../x"; do
    # shellcheck disable=SC2086
    build/pp_inspect $args "$bk" >/dev/null 2>&1; rc=$?
    [ $rc -eq 2 ] && ok "[book-at] pp_inspect $args: usage error, exit 2" || bad "[book-at] pp_inspect $args: exit $rc, want 2"
  done
  # --events --archive-dir: the history from seq 1, the archive's part then
  # the live one, dense; without it the live journal's part only
  local evs
  build/pp_inspect --events --archive-dir "$ar" --instrument AAA-USD "$bk" >"$dir/bk.ev" 2>"$dir/bk.e"; rc=$?
  build/pp_inspect --events --instrument AAA-USD "$bk" >"$dir/bk.ev0" 2>/dev/null
  evs=$(awk '$2 == "seq" { if ($3 != n + 1) bad = 1; n = $3 } END { print (bad ? "gap" : n) }' "$dir/bk.ev")
  local first0 last0
  first0=$(awk '$2 == "seq" { print $3; exit }' "$dir/bk.ev0"); last0=$(awk '$2 == "seq" { n = $3 } END { print n }' "$dir/bk.ev0")
  { [ $rc -eq 0 ] && [ "$(awk '$2 == "seq" { print $3; exit }' "$dir/bk.ev")" = 1 ] && [ "$evs" != gap ] && [ "$evs" = "$last0" ] \
      && [ -n "$first0" ] && [ "$first0" -gt 1 ]; } \
    && ok "[events] pp_inspect --events --archive-dir: seqs 1..$evs dense (without it the live journal's $first0..$last0)" \
    || bad "[events] --archive-dir: exit $rc, seqs to $evs, live-only $first0..$last0 $(head -c 300 "$dir/bk.e")"
  [ "$( (find "$bk" "$ar" -printf '%p %s %T@\n' | sort; tree_sum "$bk"; tree_sum "$ar") | md5sum)" = "$before" ] \
    && ok "[book-at] pp_inspect --book-at changed no file (names, sizes, mtimes, bytes) of the store or the archive" \
    || bad "[book-at] pp_inspect --book-at changed the store or the archive"
  f=$(ls "$bk"/journal/*.ppj | head -1); off=$(frame_off "$f" 10)
  printf '\xff' | dd of="$f" bs=1 seek=$((off + 20)) conv=notrunc status=none
  out=$(build/pp_inspect --book-at 1500 --instrument AAA-USD --archive-dir "$ar" "$bk"); rc=$?
  { [ $rc -eq 1 ] && echo "$out" | grep -q "^AAA-USD CORRUPT" && echo "$out" | grep -q "^  at $f offset $off: " && ! echo "$out" | grep -q "^AAA-USD buy"; } \
    && ok "[book-at] on a damaged journal: exit 1, file and offset, no book" || bad "[book-at] damaged: exit $rc $(echo "$out" | head -3)"
}

# pp_inspect --fix: shows what it will cut or move, asks y/N (or --yes),
# keeps a byte-identical copy of everything it cuts, refuses a store a
# running process holds open, and changes nothing on a clean store or on "n"
fix_state() { (cd "$1" && find . -printf '%p %s\n' | sort && find . -type f | sort | xargs cat) | md5sum; }
fix_checks() {
  local fx="$dir/fix2" lg="$dir/fixl" f off before out rc res q
  # format 2: three segments of 64 KiB (1500 events a book), a frame below the mark in the second
  PP_EVENTWRITER_SEGMENT_BYTES=65536 "$dir/pp_eventwriter" "$fx" 1500 format2 >"$dir/fix2.want" 2>"$dir/fix.err" \
    || { bad "[fix] pp_eventwriter: $(cat "$dir/fix.err")"; return; }
  f="$fx/journal/00000000000000000002.ppj"
  [ -f "$fx/journal/00000000000000000003.ppj" ] || { bad "[fix] the journal has fewer than 3 segments: $(ls "$fx/journal")"; return; }
  off=$((4096 + 64 * 100))    # frame 100: segment 2 holds only 64-byte event frames (its damage offset below checks this)
  build/pp_inspect --fix "$fx" >"$dir/fix.out" 2>&1 </dev/null; rc=$?
  { [ $rc -eq 0 ] && grep -q "^nothing damaged in $fx" "$dir/fix.out" && [ ! -e "$fx/quarantine" ]; } \
    && ok "[fix] --fix on a clean store: nothing damaged, exit 0, no quarantine made" || bad "[fix] --fix clean: rc=$rc $(cat "$dir/fix.out")"
  mkdir -p "$dir/fix2.orig"; cp "$fx"/journal/*.ppj "$dir/fix2.orig/"
  printf '\xff' | dd of="$f" bs=1 seek=$((off + 20)) conv=notrunc status=none
  cp "$f" "$dir/fix2.orig/damaged.ppj"
  before=$(fix_state "$fx")
  build/pp_inspect "$fx" >/dev/null 2>&1; rc=$?
  [ $rc -eq 1 ] && ok "[fix] a frame flipped below the durable mark: pp_inspect exit 1" || bad "[fix] damaged store: pp_inspect exit $rc"
  out=$(echo n | build/pp_inspect --fix "$fx" 2>&1); rc=$?
  q="cut the store journal there? a copy of everything cut goes to $fx/quarantine/fix-<UTC time>/ \[y/N\]"
  { [ $rc -eq 1 ] && echo "$out" | grep -q "^will cut   $f from offset $off " && echo "$out" | grep -q "and removes $fx/journal/00000000000000000003.ppj" \
    && echo "$out" | grep -q "^stays      AAA-USD: journal up to seq [0-9]" && echo "$out" | grep -q "$q" && [ "$(fix_state "$fx")" = "$before" ]; } \
    && ok "[fix] --fix answered n: shows the cut (file, offset, later segments, seqs that stay), asks, changes no byte, exit 1" \
    || bad "[fix] --fix n: rc=$rc $out"
  build/pp_inspect --fix "$fx" </dev/null >/dev/null 2>&1; rc=$?
  { [ $rc -eq 1 ] && [ "$(fix_state "$fx")" = "$before" ]; } && ok "[fix] --fix with no answer (EOF): changes no byte, exit 1" || bad "[fix] --fix EOF: rc=$rc"
  out=$(echo y | build/pp_inspect --fix "$fx" 2>&1); rc=$?
  local qd; qd=$(ls -d "$fx"/quarantine/fix-* 2>/dev/null | head -1)
  res=ok
  for k in 2 3; do
    src="$dir/fix2.orig/0000000000000000000$k.ppj"; [ $k = 2 ] && src="$dir/fix2.orig/damaged.ppj"
    cmp -s "$src" "$qd/0000000000000000000$k.ppj" || res="copy of segment $k differs or is missing"
  done
  [ -e "$qd/00000000000000000001.ppj" ] && res="segment 1 copied, it was not cut"
  ls "$qd"/books/AAA-USD/snapshots/*.pps >/dev/null 2>&1 || res="the snapshots taken past the damage are not in the quarantine"
  { [ $rc -eq 0 ] && [ -n "$qd" ] && [ "$res" = ok ] && [ ! -e "$fx/journal/00000000000000000003.ppj" ] \
    && cmp -s "$dir/fix2.orig/00000000000000000001.ppj" "$fx/journal/00000000000000000001.ppj"; } \
    && ok "[fix] --fix answered y: exit 0; the quarantine holds byte-identical copies of the cut segments and the snapshots past the cut; segment 1 untouched" \
    || bad "[fix] --fix y: rc=$rc $res $out"
  build/pp_inspect "$fx" >"$dir/fix.out" 2>&1; rc=$?
  [ $rc -eq 0 ] && ok "[fix] after the fix pp_inspect finds the store recoverable, exit 0" || bad "[fix] after the fix: rc=$rc $(cat "$dir/fix.out")"
  # what stays is every event written before the damaged frame (its ts_ns says which, in seconds), none after
  local t ty exp got last; orig="$dir/fix2.orig/00000000000000000002.ppj"
  ty=$(od -An -t u1 -j $((off + 8)) -N 1 "$orig" | tr -d ' ')
  t=$(( $(od -An -t u8 -j $((off + 48)) -N 8 "$orig" | tr -d ' ') / 1000000000 ))
  exp=$(sed -n 's/^{"instrument":"\([^"]*\)","seq":\([0-9]*\),.*"ts_ns":\([0-9]*\)000000000}$/\1 \2 \3/p' "$dir/fix2.want" \
        | awk -v t="$t" '$3 < t' | sort)
  got=$(build/pp_inspect --events "$fx" | sed -n 's/^\([^ ]*\) seq \([0-9]*\) .* (\([0-9]*\)000000000)$/\1 \2 \3/p' | sort)
  last=$(echo "$exp" | awk '{ if ($2 > m[$1]) m[$1] = $2 } END { for (k in m) print k, m[k] }' | sort)
  "$dir/pp_eventwriter" "$fx" reopen >"$dir/fix.reopen" 2>"$dir/fix.reopen.err"; rc2=$?
  n=$(echo "$exp" | grep -c .)
  { [ "$ty" -ge 1 ] && [ "$ty" -le 4 ] && [ "$n" -gt 0 ] && [ "$n" -lt 3000 ] && [ "$got" = "$exp" ] && [ $rc2 -eq 0 ] \
    && [ "$(head -1 "$dir/fix.reopen")" = "open 0" ] && [ "$(tail -n +2 "$dir/fix.reopen" | sort)" = "$last" ]; } \
    && ok "[fix] after the fix: pp_open recovers each book to its last event before the damage ($(echo $last)), the journal holds exactly those $n events" \
    || bad "[fix] events after the fix: type $ty, ts $t, $n expected, $(echo "$got" | grep -c .) read; reopen=$rc2 $(cat "$dir/fix.reopen" "$dir/fix.reopen.err"); want $last"
  # a running store holds the lock: --fix refuses, exit 2, no change
  rm -f "$dir/fix.ready" "$dir/fix.go"
  "$dir/pp_eventwriter" "$dir/fixrun" 8 format2 "$dir/fix.ready" "$dir/fix.go" >/dev/null 2>"$dir/fix.err" & wpid=$!
  for _ in $(seq 600); do [ -e "$dir/fix.ready" ] && break; kill -0 $wpid 2>/dev/null || break; sleep 0.05; done
  out=$(build/pp_inspect --fix --yes "$dir/fixrun" 2>&1); rc=$?
  touch "$dir/fix.go"; wait $wpid
  # (the running store may write its own files meanwhile: what --fix did shows in its output and in quarantine/)
  { [ $rc -eq 2 ] && echo "$out" | grep -q "is open by a running store (its LOCK is held)" && ! echo "$out" | grep -q "^will\|^nothing damaged" \
    && [ ! -e "$dir/fixrun/quarantine" ]; } \
    && ok "[fix] --fix on a store a running process holds open: refused, exit 2, no change" || bad "[fix] --fix locked: rc=$rc $out"
  out=$(build/pp_inspect --fix --yes "$dir/fixrun" 2>&1); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "^nothing damaged in $dir/fixrun"; } \
    && ok "[fix] the same store once its process closed it: --fix runs (nothing damaged), exit 0" || bad "[fix] --fix after unlock: rc=$rc $out"
  # damage at the very first frame (a declaration): every instrument is declared past the cut,
  # so the store keeps none, and their books/<name>/ go to the quarantine whole
  printf '\xff' | dd of="$dir/fixrun/journal/00000000000000000001.ppj" bs=1 seek=$((4096 + 20)) conv=notrunc status=none
  cp -a "$dir/fixrun/books" "$dir/fixrun.books"
  out=$(build/pp_inspect --fix --yes "$dir/fixrun" 2>&1); rc=$?
  qd=$(ls -d "$dir"/fixrun/quarantine/fix-* 2>/dev/null | head -1)
  "$dir/pp_eventwriter" "$dir/fixrun" reopen >"$dir/fix.reopen" 2>"$dir/fix.reopen.err"; rc2=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "^gone       AAA-USD: declared past the cut" && echo "$out" | grep -q "^gone       BBB-USD: " \
    && [ -n "$qd" ] && [ -z "$(ls "$dir/fixrun/books")" ] && diff -r "$dir/fixrun.books" "$qd/books" >/dev/null \
    && [ $rc2 -eq 0 ] && [ "$(cat "$dir/fix.reopen")" = "open 0" ]; } \
    && ok "[fix] damage at the first frame: the instruments declared past it are gone, their files moved whole; pp_open opens an empty store" \
    || bad "[fix] --fix at the first frame: rc=$rc reopen=$rc2 $(cat "$dir/fix.reopen" "$dir/fix.reopen.err") $out"
  # per-instrument layout: the damaged instrument is moved aside whole, the rest opens
  "$dir/pp_eventwriter" "$lg" 200 legacy >/dev/null 2>"$dir/fix.err" || { bad "[fix] pp_eventwriter legacy: $(cat "$dir/fix.err")"; return; }
  # a torn tail (bytes after the last entry, above the durable mark) is not damage
  printf 'torn%.0s' $(seq 75) | dd of="$lg/BBB-USD/journal/00000000000000000001.ppj" bs=1 seek=$((4096 + 48 * 200)) conv=notrunc status=none
  before=$(fix_state "$lg")
  out=$(build/pp_inspect --fix "$lg" 2>&1 </dev/null); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "^torn tail  BBB-USD: .*not damage" && echo "$out" | grep -q "^nothing damaged in $lg" \
    && [ "$(fix_state "$lg")" = "$before" ]; } \
    && ok "[legacy fix] --fix on a torn tail: says it is not damage, changes no byte, exit 0" || bad "[legacy fix] --fix torn tail: rc=$rc $out"
  printf '\xff' | dd of="$lg/AAA-USD/journal/00000000000000000001.ppj" bs=1 seek=$((4096 + 48 * 60 + 20)) conv=notrunc status=none
  cp -a "$lg/AAA-USD" "$dir/fixl.AAA-USD"
  before=$(fix_state "$lg")
  out=$(echo no | build/pp_inspect --fix "$lg" 2>&1); rc=$?
  { [ $rc -eq 1 ] && echo "$out" | grep -q "^will move  $lg/AAA-USD to $lg/quarantine/AAA-USD-<UTC time>: the instrument is gone from the store until moved back" \
    && ! echo "$out" | grep -q "will move  $lg/BBB-USD" && [ "$(fix_state "$lg")" = "$before" ]; } \
    && ok "[legacy fix] --fix answered no: names the damaged instrument, changes no byte, exit 1" || bad "[legacy fix] --fix no: rc=$rc $out"
  out=$(build/pp_inspect --fix --yes "$lg" 2>&1); rc=$?
  local moved; moved=$(ls -d "$lg"/quarantine/AAA-USD-* 2>/dev/null | head -1)
  { [ $rc -eq 0 ] && [ ! -e "$lg/AAA-USD" ] && [ -n "$moved" ] && diff -r "$dir/fixl.AAA-USD" "$moved" >/dev/null \
    && [ -d "$lg/BBB-USD/journal" ]; } \
    && ok "[legacy fix] --fix --yes: the damaged instrument moved whole (byte-identical) into quarantine/, exit 0" \
    || bad "[legacy fix] --fix --yes: rc=$rc $out"
  out=$(build/pp_inspect "$lg"); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "^1 instrument(s) in $lg: all recoverable"; } \
    && ok "[legacy fix] afterwards pp_inspect: the other instrument, recoverable, exit 0" || bad "[legacy fix] afterwards: rc=$rc $out"
  for args in "--fix --events" "--fix --json" "--fix -v" "--fix --stats" "--yes" "--fix --instrument AAA-USD"; do
    # shellcheck disable=SC2086
    build/pp_inspect $args "$lg" >/dev/null 2>&1 </dev/null; rc=$?
    [ $rc -eq 2 ] && ok "pp_inspect $args: usage error, exit 2" || bad "pp_inspect $args: exit $rc, want 2"
  done
  build/pp_inspect --fix "$lg" BBB-USD >/dev/null 2>&1 </dev/null; rc=$?
  [ $rc -eq 2 ] && ok "pp_inspect --fix DATA_DIR INSTRUMENT: usage error, exit 2" || bad "pp_inspect --fix with an instrument: exit $rc, want 2"
}

if [ -x build/coinbase_replay ] && [ -x build/pp_inspect ]; then
  inspect_checks format2
  inspect_checks legacy
  if [ $have_py = 1 ] && cc -std=c11 -O0 -I. tests/pp_eventwriter.c -o "$dir/pp_eventwriter" $(pkg-config --libs liburing 2>/dev/null || echo -luring) -lpthread; then
    events_checks format2
    events_checks legacy
    book_at_checks
    # strict mode (format 2: one picolog log for the store): the events come back too
    "$dir/pp_eventwriter" "$dir/ev-strict" 200 strict >"$dir/ev-strict.want" 2>"$dir/ev.err"; rc=$?
    build/pp_inspect --events --json "$dir/ev-strict" >"$dir/ev.7"; rc2=$?
    res=$(evcheck "$dir/ev-strict.want" "$dir/ev.7" json all)
    { [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ "$res" = ok ]; } && ok "[strict] pp_inspect --events --json: the 400 events written" \
      || bad "[strict] pp_inspect --events: writer $rc $(cat "$dir/ev.err"), rc=$rc2 $res"
    encrypted_checks
    fix_checks
  else skip "python3 or cc missing: pp_inspect --events not tested"; fi
else
  bad "build/coinbase_replay and build/pp_inspect are built by make (run make test-plain)"
fi

# A failed vault open says the errno behind it (vault_open_errno)
if [ -x build/vaultctl ]; then
  touch "$dir/not-a-dir"; printf 'pw\n' >"$dir/pw"; chmod 600 "$dir/pw"
  out=$(build/vaultctl --password-file "$dir/pw" -f "$dir/not-a-dir/v.json" list 2>&1); rc=$?
  { [ $rc -ne 0 ] && echo "$out" | grep -q "vaultctl: $dir/not-a-dir/v.json: VAULT_EIO: .*: Not a directory$"; } \
    && ok "vaultctl: a failed open names the errno behind it (Not a directory)" || bad "vaultctl open errno: rc=$rc $out"
fi

# The matching-engine example: SIGKILL/abort inside matches, recovery equals
# the replay, no match half applied, the journal reader returns the events
if [ -x build/engine ]; then
  out=$(build/engine "$dir/engine" 2>&1); rc=$?
  { [ $rc -eq 0 ] && echo "$out" | grep -q "all equal, no match half applied, nothing acknowledged was lost" \
    && ! echo "$out" | grep -q "HALF A MATCH\|DIFFER\|LOST ACKED"; } \
    && ok "engine: 4 kills, whole matches recovered, books and journal equal the replay" \
    || bad "engine: rc=$rc $(echo "$out" | tail -8)"
  # its payloads through pp_inspect: an add's client order id, in hex ("client-order:C")
  ev=$(build/pp_inspect --events --json --instrument BTC-USD "$dir/engine" 2>&1)
  echo "$ev" | grep -q '"event":"add".*"payload":"636c69656e742d6f726465723a43' \
    && ok "pp_inspect --events --json shows an event's payload as hex" || bad "pp_inspect payload: $(echo "$ev" | head -3)"
fi

# plg_dump --vault FILE --key-name NAME: a data key made by vaultctl datakey
# create, a log written under it (plg_appender; the key from vaultctl
# datakey show --hex), read back with the key taken from the vault; a wrong
# password, an unknown key name, an entry that is not a key: exit 2 and why
if [ -x build/vaultctl ] && [ -x build/plg_dump ] \
   && cc -std=c11 -O0 -I. tests/plg_appender.c -o "$dir/plg_appender_enc" $(pkg-config --libs liburing 2>/dev/null || echo -luring) -lpthread; then
  vk="$dir/vaultkey"; mkdir -p "$vk"; chmod 700 "$vk"
  (umask 077; printf 'pw1\n' >"$vk/pw"; printf 'pw2\n' >"$vk/wrongpw")
  vf="$vk/secure_config.json"
  ctl() { build/vaultctl -f "$vf" --audit-log - --iterations 100000 --password-file "$vk/pw" "$@"; }
  ctl init 2>/dev/null && ctl datakey create trades 2>/dev/null \
    && (umask 077; ctl datakey show --hex trades >"$vk/trades.hex" 2>/dev/null) && touch "$vk/go" \
    && PLG_APPENDER_KEY_FILE="$vk/trades.hex" "$dir/plg_appender_enc" "$vk/log" 300 100 "$vk/ready" "$vk/go"; rc=$?
  [ $rc -eq 0 ] && ok "vaultctl datakey create, a log written under that key" || bad "datakey setup: rc=$rc"
  out=$(build/plg_dump --verify "$vk/log" 2>&1); rc=$?
  [ $rc -eq 2 ] && echo "$out" | grep -q "encrypted" \
    && ok "plg_dump without a key: the log is encrypted (exit 2)" || bad "plg_dump no key: rc=$rc $out"
  out=$(build/plg_dump --vault "$vf" --key-name trades --password-file "$vk/pw" --verify "$vk/log" 2>&1); rc=$?
  [ $rc -eq 0 ] && echo "$out" | grep -q "^verified   300 records read" \
    && ok "plg_dump --vault --key-name --password-file: every record read" || bad "plg_dump --vault: rc=$rc $out"
  # record 7 holds 7 and 7*31 = 217, little-endian
  out=$(VAULT_PASSWORD_FILE="$vk/pw" build/plg_dump --vault "$vf" --key-name trades --records --from 7 --count 1 "$vk/log" </dev/null 2>&1); rc=$?
  [ $rc -eq 0 ] && echo "$out" | grep -q "0700000000000000d900000000000000" \
    && ok "plg_dump --vault: password from VAULT_PASSWORD_FILE, the record's bytes" || bad "plg_dump --vault records: rc=$rc $out"
  out=$(ctl datakey show --hex trades 2>/dev/null | build/plg_dump --key-file /dev/stdin --verify "$vk/log" 2>&1); rc=$?
  [ $rc -eq 0 ] && echo "$out" | grep -q "^verified   300 records read" \
    && ok "vaultctl datakey show --hex | plg_dump --key-file /dev/stdin" || bad "datakey show pipe: rc=$rc $out"
  out=$(build/plg_dump --vault "$vf" --key-name trades --password-file "$vk/wrongpw" --verify "$vk/log" 2>&1); rc=$?
  [ $rc -eq 2 ] && echo "$out" | grep -q "authentication failed" && ! echo "$out" | grep -q "CORRUPT\|verified" \
    && ok "plg_dump --vault, wrong password: exit 2, authentication failed" || bad "plg_dump wrong password: rc=$rc $out"
  out=$(build/plg_dump --vault "$vf" --key-name orders --password-file "$vk/pw" --verify "$vk/log" 2>&1); rc=$?
  [ $rc -eq 2 ] && echo "$out" | grep -q "no data key 'orders'" \
    && ok "plg_dump --vault, unknown key name: exit 2, no data key" || bad "plg_dump unknown key: rc=$rc $out"
  printf 'abc' | ctl set datakey/short 2>/dev/null
  out=$(build/plg_dump --vault "$vf" --key-name short --password-file "$vk/pw" --verify "$vk/log" 2>&1); rc=$?
  [ $rc -eq 2 ] && echo "$out" | grep -q "not a data key" \
    && ok "plg_dump --vault, an entry that is not a key: exit 2" || bad "plg_dump not a key: rc=$rc $out"
  chmod 644 "$vk/pw"
  out=$(build/plg_dump --vault "$vf" --key-name trades --password-file "$vk/pw" --verify "$vk/log" 2>&1); rc=$?
  [ $rc -eq 2 ] && echo "$out" | grep -q "chmod 600" \
    && ok "plg_dump --password-file others can read: refused as vaultctl refuses it" || bad "plg_dump open pw file: rc=$rc $out"
  chmod 600 "$vk/pw"
  bads=""
  for args in "--key-name trades" "--vault $vf" "--vault $vf --key-name trades --key-file $vk/trades.hex" \
              "--password-file $vk/pw" "--vault $vf --key-name trades --password-fd 0 --password-file $vk/pw" \
              "--vault $vf --key-name trades --password=pw1"; do
    build/plg_dump $args --verify "$vk/log" </dev/null >/dev/null 2>&1; rc=$?
    [ $rc -eq 2 ] || bads="$bads [$args: $rc]"
  done
  [ -z "$bads" ] && ok "plg_dump --vault/--key-name/--password-*: bad combinations are usage errors" || bad "plg_dump usage:$bads"
else skip "build/vaultctl or build/plg_dump missing, or plg_appender did not build: plg_dump --vault not checked"; fi

# The examples and tools never take an option for a directory name
cwd="$dir/cwd"; mkdir -p "$cwd"
for t in trade_log engine coinbase_replay vaultctl plg_dump pp_inspect; do
  [ -x "build/$t" ] || { bad "build/$t missing"; continue; }
  (cd "$cwd" && "$OLDPWD/build/$t" --help >/dev/null 2>&1); rc=$?
  [ $rc -eq 0 ] && [ -z "$(ls -A "$cwd")" ] && ok "$t --help: exit 0, creates nothing" || bad "$t --help: exit $rc, created: $(ls -A "$cwd")"
  rm -rf "${cwd:?}"/* "${cwd:?}"/.[!.]* 2>/dev/null
done
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
