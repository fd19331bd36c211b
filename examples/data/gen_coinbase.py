#!/usr/bin/env python3
"""Writes coinbase_ticker.jsonl: a recorded Coinbase Exchange `ticker` channel
feed, for examples/coinbase_replay.c. Deterministic (seed 20261121), standard
library only:  python3 examples/data/gen_coinbase.py > examples/data/coinbase_ticker.jsonl

The messages have the channel's real format and field order (numbers as
decimal strings, sequence and trade_id as JSON integers, time in RFC 3339
with microseconds). Each product's sequence is contiguous here, except for:
  - one outage on ETH-USD (12 messages never received: a real gap),
  - a few messages delivered twice (a reconnect replays; duplicates),
  - a few malformed lines (truncated, not JSON, a bad number, a wrong type).
(The live ticker channel samples the full channel, so its sequence numbers
skip; a recording of it would show a gap event at nearly every message.)"""
import json, random, sys

rng = random.Random(20261121)
# product, start price, price decimals, typical size, 24h volume
products = [("BTC-USD", 37123.45, 2, 0.05, 14250.0),
            ("ETH-USD", 2012.34, 2, 0.8, 151234.0),
            ("SOL-USD", 58.12, 2, 12.0, 1523456.0),
            ("DOGE-USD", 0.08123, 5, 4000.0, 512345678.0)]
state = {}
for i, (pid, px, dec, sz, vol) in enumerate(products):
    state[pid] = dict(px=px, dec=dec, sz=sz, vol=vol, seq=10_000_000_000 + i * 7_000_000_000,
                      trade=500_000_000 + i * 10_000_000, open=px, lo=px, hi=px)

t_us = 1763740800_000000  # 2025-11-21T16:00:00Z
N = 4000
lines = []
eth_drop = set(range(1500, 1512))
for k in range(N):
    t_us += rng.randint(20_000, 320_000)
    pid, _, _, _, _ = products[rng.choices(range(4), weights=[4, 3, 2, 1])[0]]
    s = state[pid]
    s["px"] = max(s["px"] * (1 + rng.gauss(0, 0.0004)), 10 ** -s["dec"])
    px = round(s["px"], s["dec"])
    s["lo"], s["hi"] = min(s["lo"], px), max(s["hi"], px)
    size = round(rng.expovariate(1 / s["sz"]) + 1e-8, 8)
    s["vol"] += size
    s["seq"] += 1
    s["trade"] += 1
    spread = 10 ** -s["dec"] * rng.randint(1, 3)
    f = "%." + str(s["dec"]) + "f"
    sec, us = divmod(t_us, 1_000_000)
    import time
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%06dZ" % us
    msg = {"type": "ticker", "sequence": s["seq"], "product_id": pid, "price": f % px,
           "open_24h": f % s["open"], "volume_24h": "%.8f" % s["vol"], "low_24h": f % s["lo"],
           "high_24h": f % s["hi"], "volume_30d": "%.8f" % (s["vol"] * 29.7),
           "best_bid": f % (px - spread / 2 if rng.random() < 0.5 else px - spread),
           "best_bid_size": "%.8f" % round(rng.uniform(0.001, 5 * s["sz"]), 8),
           "best_ask": f % (px + spread), "best_ask_size": "%.8f" % round(rng.uniform(0.001, 5 * s["sz"]), 8),
           "side": rng.choice(["buy", "sell"]), "time": ts, "trade_id": s["trade"], "last_size": "%.8f" % size}
    if pid == "ETH-USD" and k in eth_drop:
        continue
    line = json.dumps(msg, separators=(",", ":"))
    lines.append(line)
    if k % 700 == 350:
        lines.append(line)                                  # delivered twice
    if k % 900 == 450:
        lines.append(line[: len(line) // 2])                # truncated
    if k == 1234:
        lines.append("HTTP/1.1 502 Bad Gateway")            # not JSON
    if k == 2345:
        lines.append(line.replace('"price":"', '"price":"1e3', 1))  # not a plain decimal
    if k == 3456:
        lines.append('{"type":"heartbeat","sequence":1,"last_trade_id":1,"product_id":"BTC-USD","time":"%s"}' % ts)
sys.stdout.write("\n".join(lines) + "\n")
