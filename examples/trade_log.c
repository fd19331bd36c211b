/* trade_log.c - log trades durably with picolog, then read them back.
 *
 *   cc -O2 -I. examples/trade_log.c -o trade_log -luring -lpthread
 *   ./trade_log [log-directory]          (default: trades.plg)
 *
 * The original Picolog's Logger<Trade>: a trading thread appends Trade
 * structs (a memcpy into the ring), confirms each trade only once
 * plg_durable() covers its sequence number (group commit), and a reader
 * recovers the log afterwards. Run it twice: sequence numbers continue. */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Trade {      /* POD: written to the log as is */
    uint64_t price;         /* ticks */
    uint64_t qty;           /* lots */
    uint32_t symbol_id;
    uint8_t  side;          /* 1 buy, 2 sell */
    uint32_t strategy_id;
} Trade;

PLG_TYPED(trade, Trade)     /* trade_append(log, &t), trade_get(&rec, &t) */

int main(int argc, char **argv) {
    /* an option is never taken for a path: "trade_log --help" must not create a log named --help */
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        int help = argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        fprintf(help ? stdout : stderr, "usage: %s [LOGDIR]   (default trades.plg)\n", argv[0]);
        return help ? 0 : 2;
    }
    const char *path = argc > 1 ? argv[1] : "trades.plg";
    plg_config cfg = {0};
    cfg.path = path;
    cfg.ring_capacity = 1u << 20;        /* 1 MiB ring */
    cfg.flush_interval_ns = 10000;       /* hold a record at most 10 us while a write is in flight */
    cfg.poll_interval_ns = 1000;         /* the writer idles 1 us at a time */

    plg_log *log;
    int rc = plg_open(&log, &cfg);
    if (rc != 0) { fprintf(stderr, "plg_open(%s): %s\n", path, plg_strerror(rc)); return 1; }
    uint64_t before = plg_appended(log);
    printf("opened %s: %llu trades already durable\n", path, (unsigned long long)before);

    enum { N = 100000 };
    uint64_t confirmed = 0, full = 0, t0 = plg_now_ns();
    int64_t seq = 0;
    for (uint32_t i = 0; i < N; i++) {
        Trade t = { 10050 + i % 50, 100 + i % 7, 1 + i % 4, (uint8_t)(1 + i % 2), 8 };
        while ((seq = trade_append(log, &t)) == PLG_EFULL) full++;    /* ring full: never blocks */
        if (seq < 0) { fprintf(stderr, "append: %s\n", plg_strerror((int)seq)); plg_close(log); return 1; }
        /* group commit: confirm every trade the log has made durable so far */
        uint64_t d = plg_durable(log);
        if (d > before + confirmed) confirmed = d - before;
    }
    if ((rc = plg_wait(log, (uint64_t)seq, 5000000000ll)) != 0) {
        fprintf(stderr, "wait: %s\n", plg_strerror(rc)); plg_close(log); return 1;
    }
    uint64_t t1 = plg_now_ns();
    plg_stats st;
    plg_get_stats(log, &st);
    printf("appended %d trades in %.2f ms; all durable (seq %lld); %llu confirmed before the last append returned\n",
           N, (double)(t1 - t0) / 1e6, (long long)seq, (unsigned long long)confirmed);
    printf("writes %llu (%llu pages, up to %llu pages each), ring-full retries %llu, backend %s\n",
           (unsigned long long)st.writes, (unsigned long long)st.pages_written,
           (unsigned long long)st.max_write_pages, (unsigned long long)full, st.backend);
    rc = plg_close(log);
    if (rc != 0) { fprintf(stderr, "close: %s\n", plg_strerror(rc)); return 1; }

    /* Recovery: read everything back and check it. */
    plg_reader *r;
    rc = plg_reader_open(&r, path);
    if (rc != 0) { fprintf(stderr, "reader: %s\n", plg_strerror(rc)); return 1; }
    plg_record rec;
    uint64_t n = 0, bad = 0, notional = 0;
    while ((rc = plg_reader_next(r, &rec)) == 1) {
        Trade t;
        n++;
        if (rec.seq != n || trade_get(&rec, &t) != 0) { bad++; continue; }
        notional += t.price * t.qty;
    }
    if (rc < 0) {
        uint64_t off;
        const char *f = plg_reader_where(r, &off);
        fprintf(stderr, "log damaged at %s offset %llu: %s\n", f, (unsigned long long)off, plg_strerror(rc));
    }
    if (plg_reader_seek(r, n / 2 ? n / 2 : 1) == 0 && plg_reader_next(r, &rec) == 1)
        printf("seek to %llu: found seq %llu\n", (unsigned long long)(n / 2 ? n / 2 : 1), (unsigned long long)rec.seq);
    plg_reader_close(r);
    printf("recovered %llu trades, sequence 1..%llu dense, %llu bad, notional %llu\n",
           (unsigned long long)n, (unsigned long long)n, (unsigned long long)bad, (unsigned long long)notional);
    return (rc < 0 || bad || n != before + N) ? 1 : 0;
}
