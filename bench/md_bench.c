// cc -std=c11 -O2 -I. bench/md_bench.c -o md_bench -luring -lpthread -lm
/*
 * md_bench: the market-data part of pinnacle_persist.h against issue 5.
 *
 *   usage: md_bench [--mlockall] [--private-pages | --strict] [data_dir] [runs] [ticks]   (default build/bench/md_data, 3, 10000000)
 *          --private-pages: the store opened with PP_PRIVATE_PAGES
 *          --strict: strict mode (the store's one picolog log, its defaults)
 *          --mlockall (before the others): mlockall(MCL_CURRENT | MCL_FUTURE)
 *            first, as an engine that keeps page faults off its threads does
 *
 *   append   pp_tick_append of `ticks` ticks (one book, mmap mode, background
 *            sync every 10 ms), ticks 8.64 ms apart in exchange time so that
 *            10M ticks span one day; ticks/s over the whole loop, and until
 *            pp_sync returns after it (every tick durable). For scale,
 *            the same loop of pp_add+pp_cancel on a second book (orders/s).
 *                                               target: >= 5M ticks/s
 *   bars     pp_md_bars(1 min) over that whole day (1440 bars), after the
 *            maintainer caught up: median of 21 calls.   target: <= 50 ms
 *   reopen   pp_open + pp_book_open of the book (state file + journal replay).
 *
 * Every figure is the median of `runs` runs (each on a fresh directory,
 * removed afterwards). Written on a shared 2-core VM: expect noise.
 */
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"

#include <stdio.h>
#include <stdlib.h>

static void quiet(void *u, int code, const char *msg) { (void)u; (void)code; fprintf(stderr, "  [%s]\n", msg); }

static int cmp_d(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static double median(double *v, int n) { qsort(v, (size_t)n, sizeof *v, cmp_d); return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2; }

static uint32_t extra_flags;   /* --private-pages */
static int strict_mode;        /* --strict */

static pp_config cfg_for(const char *dir) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.flags = PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT | extra_flags;
    c.log_fn = quiet;
    c.journal_segment_bytes = 4ull << 30;
    if (strict_mode) c.mode = PP_JOURNAL_STRICT;
    return c;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--mlockall") == 0) {
        if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) { perror("mlockall"); return 1; }
        argv++; argc--;
    }
    if (argc > 1 && strcmp(argv[1], "--private-pages") == 0) { extra_flags = PP_PRIVATE_PAGES; argv++; argc--; }
    else if (argc > 1 && strcmp(argv[1], "--strict") == 0) { strict_mode = 1; argv++; argc--; }
    const char *dir = argc > 1 ? argv[1] : "build/bench/md_data";
    int runs = argc > 2 ? atoi(argv[2]) : 3;
    uint64_t n = argc > 3 ? strtoull(argv[3], NULL, 10) : 10000000ull;
    if (runs < 1 || runs > 99 || n < 1000) { fprintf(stderr, "usage: md_bench [data_dir] [runs 1..99] [ticks >= 1000]\n"); return 2; }
    double tps[99], dps[99], ops[99], q[99], reo[99];
    const uint64_t day0 = 1763683200ull * 1000000000ull;     /* a UTC midnight */
    const uint64_t step = 86400ull * 1000000000ull / n;      /* n ticks over one day */
    printf("md_bench: %llu ticks over one day, %d runs, data in %s (%s)\n", (unsigned long long)n, runs, dir,
           strict_mode ? "strict mode" : extra_flags ? "mmap mode, private pages" : "mmap mode");
    for (int r = 0; r < runs; r++) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) return 1;
        pp_config c = cfg_for(dir);
        pp_store *s; pp_book *b, *ob;
        int rc = pp_open(&s, &c);
        if (!rc) rc = pp_book_open(s, "BTC-USD", &b);
        if (!rc) rc = pp_book_open(s, "ORDERS", &ob);
        pp_md_spec sp; memset(&sp, 0, sizeof sp);
        sp.price_scale = 100; sp.size_scale = 100000000; sp.tick_window_s = 60;   /* raw ticks: the last minute */
        if (!rc) rc = pp_md_declare(b, &sp);
        if (rc) { fprintf(stderr, "open: %s\n", pp_strerror(rc)); return 1; }
        pp_tick t; memset(&t, 0, sizeof t);
        t.bid_size = 5; t.ask_size = 7; t.volume_24h = 123456789; t.side = PP_BUY;
        uint64_t x = 88172645463325252ull;
        int64_t px = 3700000;
        uint64_t t0 = plg_now_ns();
        for (uint64_t i = 0; i < n && !rc; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            px += (int64_t)(x & 15) - 7;
            t.exch_seq = i + 1; t.exch_ts_ns = day0 + i * step; t.recv_ts_ns = t.exch_ts_ns + 200000;
            t.price = px; t.size = 1 + (int64_t)((x >> 8) & 1023); t.bid = px - 1; t.ask = px + 1; t.trade_id = 9000000 + i;
            rc = pp_tick_append(b, &t);
        }
        uint64_t t1 = plg_now_ns();
        if (rc) { fprintf(stderr, "append: %s\n", pp_strerror(rc)); return 1; }
        rc = pp_sync(b);                                     /* every tick durable: the sustained rate */
        uint64_t t2 = plg_now_ns();
        if (rc) { fprintf(stderr, "sync: %s\n", pp_strerror(rc)); return 1; }
        dps[r] = (double)n / ((double)(t2 - t0) / 1e9);
        pp_stats st; pp_get_stats(b, &st);
        printf("  (ring full stalls %llu, grow stalls %llu)\n", (unsigned long long)st.ring_full_stalls, (unsigned long long)st.grow_stalls);
        tps[r] = (double)n / ((double)(t1 - t0) / 1e9);
        uint64_t on = n / 2;
        t0 = plg_now_ns();
        for (uint64_t i = 0; i < on && !rc; i++) {
            pp_order o = {i + 1, px, 10, 0, PP_BUY, 0, NULL, 0};
            rc = pp_add(ob, &o);
            if (!rc) rc = pp_cancel(ob, i + 1);
        }
        t1 = plg_now_ns();
        if (rc) { fprintf(stderr, "orders: %s\n", pp_strerror(rc)); return 1; }
        ops[r] = (double)(2 * on) / ((double)(t1 - t0) / 1e9);
        pp_tick last;
        if (pp_md_last(b, &last)) return 1;                  /* the maintainer caught up */
        static pp_bar bars[2000];
        double qs[21];
        int64_t nb = 0;
        for (int k = 0; k < 21; k++) {
            t0 = plg_now_ns();
            nb = pp_md_bars(b, PP_BAR_1M, day0, day0 + 86400ull * 1000000000ull, bars, 2000);
            qs[k] = (double)(plg_now_ns() - t0) / 1e6;
        }
        q[r] = median(qs, 21);
        if (nb != 1440) { fprintf(stderr, "bars: %lld, expected 1440\n", (long long)nb); return 1; }
        if (pp_snapshot(b) || pp_close(s)) { fprintf(stderr, "close failed\n"); return 1; }
        t0 = plg_now_ns();
        rc = pp_open(&s, &c);
        if (!rc) rc = pp_book_open(s, "BTC-USD", &b);
        reo[r] = (double)(plg_now_ns() - t0) / 1e6;
        if (rc || pp_md_last_exch_seq(b) != n) { fprintf(stderr, "reopen: %s\n", pp_strerror(rc)); return 1; }
        pp_close(s);
        printf("  run %d: %.2fM ticks/s (%.2fM/s until durable), %.2fM order events/s, 1-min bars of the day %.3f ms, reopen %.1f ms\n",
               r + 1, tps[r] / 1e6, dps[r] / 1e6, ops[r] / 1e6, q[r], reo[r]);
        fflush(stdout);
        if (system(cmd) != 0) return 1;
    }
    printf("median of %d: append %.2fM ticks/s (target >= 5M; until the last is durable %.2fM/s; order events on the same machine %.2fM/s); "
           "1-day 1-min bar query %.3f ms (target <= 50); reopen %.1f ms\n",
           runs, median(tps, runs) / 1e6, median(dps, runs) / 1e6, median(ops, runs) / 1e6, median(q, runs), median(reo, runs));
    return 0;
}
