/* Tests for the market-data part of pinnacle_persist.h: ticks journaled with
 * order events, bars against bars computed independently from the raw ticks,
 * duplicates refused, gaps recorded, history and connection state across
 * restarts and compaction, and an interrupted tick skipped by replay. */
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "t.h"

#define OK(call) do { int ok_rc_ = (int)(call); CHECK_EQ(ok_rc_, 0); if (ok_rc_) return; } while (0)
static void quiet(void *u, int code, const char *msg) { (void)u; (void)code; (void)msg; }

static pp_config cfg_for(const char *dir) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.flags = PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT;
    c.log_fn = quiet;
    c.expected_orders = 1024;
    c.ring_entries = 1024;
    c.journal_chunk_bytes = 8192;
    c.journal_segment_bytes = 16384;      /* small segments: compaction has something to drop */
    c.compaction_threshold = 64 << 10;
    c.keep_snapshots = 2;
    if (t_pp_format() == 1) c.flags |= PP_LEGACY_LAYOUT;   /* PP_TEST_FORMAT=1: the per-instrument layout */
    return c;
}

#define T0 1700000000000000000ull           /* an exchange time, ns */
#define NT 6000

/* A deterministic feed: ticks 8..400 ms apart, a random-walk price. */
static void make_ticks(pp_tick *t, int n, uint64_t seed) {
    uint64_t r = seed, ts = T0 + 123456789ull;
    int64_t px = 3000000;
    for (int i = 0; i < n; i++) {
        ts += 8000000ull + t_rand(&r) % 392000000ull;
        px += (int64_t)(t_rand(&r) % 201) - 100;
        memset(&t[i], 0, sizeof t[i]);
        t[i].exch_seq = 1000 + (uint64_t)i;
        t[i].exch_ts_ns = ts; t[i].recv_ts_ns = ts + 350000;
        t[i].price = px; t[i].size = 1 + (int64_t)(t_rand(&r) % 5000);
        t[i].bid = px - 1; t[i].ask = px + 1; t[i].bid_size = 7; t[i].ask_size = 9;
        t[i].volume_24h = 100000 + i; t[i].trade_id = 5000000 + (uint64_t)i;
        t[i].side = (uint8_t)(1 + (t_rand(&r) & 1));
    }
}

/* Bars from the raw ticks, computed with nothing of the library. */
static int ref_bars(const pp_tick *t, int n, uint64_t res_ns, pp_bar *out) {
    int k = -1;
    for (int i = 0; i < n; i++) {
        uint64_t st = t[i].exch_ts_ns - t[i].exch_ts_ns % res_ns;
        if (k < 0 || out[k].start_ns != st) {
            k++;
            memset(&out[k], 0, sizeof out[k]);
            out[k].start_ns = st; out[k].open = out[k].high = out[k].low = t[i].price;
        }
        if (t[i].price > out[k].high) out[k].high = t[i].price;
        if (t[i].price < out[k].low) out[k].low = t[i].price;
        out[k].close = t[i].price; out[k].volume += t[i].size; out[k].trades++;
    }
    return k + 1;
}

static int bars_equal(pp_book *b, unsigned res, const pp_tick *t, int n) {
    static pp_bar want[NT], got[NT];
    int nw = ref_bars(t, n, (uint64_t)res * 1000000000ull, want);
    int64_t ng = pp_md_bars(b, res, 0, UINT64_MAX, got, NT);
    if (ng != nw) { fprintf(stderr, "  bars %u: %lld != %d\n", res, (long long)ng, nw); return 0; }
    for (int i = 0; i < nw; i++)
        if (memcmp(&want[i], &got[i], sizeof want[i])) { fprintf(stderr, "  bar %u #%d differs\n", res, i); return 0; }
    return 1;
}

static int tick_eq(const pp_tick *a, const pp_tick *b) {
    return a->exch_seq == b->exch_seq && a->exch_ts_ns == b->exch_ts_ns && a->recv_ts_ns == b->recv_ts_ns &&
           a->price == b->price && a->size == b->size && a->bid == b->bid && a->bid_size == b->bid_size &&
           a->ask == b->ask && a->ask_size == b->ask_size && a->volume_24h == b->volume_24h &&
           a->trade_id == b->trade_id && a->side == b->side;
}

static pp_tick T[NT];

static void test_bars_match_ticks(void) {
    const char *dir = t_dir("md_bars");
    pp_config c = cfg_for(dir);
    pp_store *s; pp_book *b;
    make_ticks(T, NT, 1);
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "BTC-USD", &b));
    pp_md_spec sp; memset(&sp, 0, sizeof sp);
    sp.price_scale = 100; sp.size_scale = 100000000; sp.tick_window_s = 100000;
    CHECK_EQ(pp_md_declare(b, &sp), 0);
    int bad = 0;
    for (int i = 0; i < NT; i++) bad += pp_tick_append(b, &T[i]) != 0;
    CHECK_EQ(bad, 0);
    CHECK_EQ(pp_last_seq(b), (t_pp_format() == 2 ? 1 : 3) * NT);   /* format 2: one frame per tick; 1: three entries */
    CHECK_EQ(pp_md_last_exch_seq(b), T[NT - 1].exch_seq);
    CHECK(bars_equal(b, PP_BAR_1S, T, NT));
    CHECK(bars_equal(b, PP_BAR_1M, T, NT));
    static pp_tick got[NT];
    CHECK_EQ(pp_md_ticks(b, 0, UINT64_MAX, got, NT), NT);
    int same = 1;
    for (int i = 0; i < NT; i++) same &= tick_eq(&got[i], &T[i]);
    CHECK(same);
    /* a time range: [ts of #100, ts of #200) */
    CHECK_EQ(pp_md_ticks(b, T[100].exch_ts_ns, T[200].exch_ts_ns, got, NT), 100);
    CHECK(tick_eq(&got[0], &T[100]));
    CHECK_EQ(pp_md_ticks(b, 0, UINT64_MAX, NULL, 0), NT);   /* count only */
    pp_tick last;
    CHECK_EQ(pp_md_last(b, &last), 0);
    CHECK(tick_eq(&last, &T[NT - 1]));
    CHECK_EQ(pp_md_bars(b, 5, 0, UINT64_MAX, NULL, 0), PP_EINVAL);
    pp_md_spec g; memset(&g, 0, sizeof g);
    CHECK_EQ(pp_md_spec_get(b, &g), 0);
    CHECK_EQ(g.price_scale, 100);
    CHECK_EQ(g.size_scale, 100000000);
    CHECK_EQ(pp_close(s), 0);
}

static void test_dup_and_gap(void) {
    const char *dir = t_dir("md_dup");
    pp_config c = cfg_for(dir);
    pp_store *s; pp_book *b;
    make_ticks(T, 20, 2);
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "ETH-USD", &b));
    for (int i = 0; i < 10; i++) CHECK_EQ(pp_tick_append(b, &T[i]), 0);
    uint64_t seq = pp_last_seq(b);
    CHECK_EQ(pp_tick_append(b, &T[9]), PP_EDUP);       /* at the last */
    CHECK_EQ(pp_tick_append(b, &T[3]), PP_EDUP);       /* below it */
    CHECK_EQ(pp_last_seq(b), seq);                     /* nothing journaled */
    pp_tick z = T[10]; z.exch_seq = 0;
    CHECK_EQ(pp_tick_append(b, &z), PP_EINVAL);
    /* 1010..1014 missing */
    CHECK_EQ(pp_tick_append(b, &T[15]), 0);
    CHECK_EQ(pp_last_seq(b), seq + (t_pp_format() == 2 ? 2 : 4));   /* a gap entry and the tick */
    CHECK_EQ(pp_tick_append(b, &T[12]), PP_EDUP);      /* late: below the last, refused */
    CHECK_EQ(pp_tick_append(b, &T[16]), 0);
    pp_gap g[4];
    CHECK_EQ(pp_md_gaps(b, 0, UINT64_MAX, g, 4), 1);
    CHECK_EQ(g[0].after_seq, 1009);
    CHECK_EQ(g[0].next_seq, 1015);
    CHECK_EQ(g[0].exch_ts_ns, T[15].exch_ts_ns);
    pp_bar bars[64];
    int64_t n = pp_md_bars(b, PP_BAR_1S, 0, UINT64_MAX, bars, 64);
    uint64_t gaps = 0;
    for (int64_t i = 0; i < n && i < 64; i++) {
        gaps += bars[i].gaps;
        if (bars[i].gaps) CHECK_EQ(bars[i].start_ns, T[15].exch_ts_ns / 1000000000ull * 1000000000ull);
    }
    CHECK_EQ(gaps, 1);
    CHECK_EQ(pp_close(s), 0);
    /* after a restart: the same answers */
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "ETH-USD", &b));
    CHECK_EQ(pp_md_last_exch_seq(b), 1016);
    CHECK_EQ(pp_tick_append(b, &T[16]), PP_EDUP);
    CHECK_EQ(pp_md_gaps(b, 0, UINT64_MAX, g, 4), 1);
    CHECK_EQ(pp_tick_append(b, &T[17]), 0);
    CHECK_EQ(pp_close(s), 0);
}

/* Ticks and orders interleaved in one book; snapshots, compaction, restart:
 * the orders are as before, the history is whole. */
static void test_survives_restart_and_compaction(void) {
    const char *dir = t_dir("md_compact");
    pp_config c = cfg_for(dir);
    pp_store *s; pp_book *b;
    make_ticks(T, NT, 3);
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "SOL-USD", &b));
    pp_md_spec sp; memset(&sp, 0, sizeof sp);
    sp.price_scale = 1000; sp.size_scale = 1000; sp.tick_window_s = 600;   /* raw ticks: the last 10 minutes */
    CHECK_EQ(pp_md_declare(b, &sp), 0);
    uint64_t id = 1;
    int bad = 0;
    for (int i = 0; i < NT; i++) {
        bad += pp_tick_append(b, &T[i]) != 0;
        if (i % 3 == 0) { pp_order o = {id++, T[i].price, 10, 0, PP_BUY, 0, NULL, 0}; bad += pp_add(b, &o) != 0; }
        if (i % 6 == 5) bad += pp_cancel(b, id - 2) != 0;
        if (i == NT / 3 || i == 2 * NT / 3) bad += pp_snapshot(b) != 0;
    }
    CHECK_EQ(bad, 0);
    uint64_t orders = pp_order_count(b);
    CHECK_EQ(pp_snapshot(b), 0);
    CHECK_EQ(pp_compact(b), 0);
    pp_stats st;
    pp_get_stats(b, &st);
    CHECK(st.segments_deleted > 0);
    /* the first ticks are no longer in the journal */
    CHECK(st.journal_first_seq > 1);
    /* a few more ticks after the last snapshot: they come back from the journal */
    pp_tick extra[5];
    for (int i = 0; i < 5; i++) { extra[i] = T[NT - 1]; extra[i].exch_seq += 1 + (uint64_t)i; extra[i].exch_ts_ns += 1000000ull * (uint64_t)(i + 1); extra[i].price += i; }
    for (int i = 0; i < 5; i++) CHECK_EQ(pp_tick_append(b, &extra[i]), 0);
    CHECK_EQ(pp_close(s), 0);
    if (t_pp_format() == 2) {
        pp_check_result r;
        CHECK_EQ(pp_check(dir, "SOL-USD", &r), 0);
        CHECK(r.journal_first_seq > 1);
    }

    static pp_tick all[NT + 5];
    memcpy(all, T, sizeof T);
    memcpy(all + NT, extra, sizeof extra);
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "SOL-USD", &b));
    CHECK_EQ(pp_order_count(b), orders);
    CHECK(bars_equal(b, PP_BAR_1M, all, NT + 5));
    CHECK(bars_equal(b, PP_BAR_1S, all, NT + 5));
    pp_md_spec g; memset(&g, 0, sizeof g);
    CHECK_EQ(pp_md_spec_get(b, &g), 0);
    CHECK_EQ(g.price_scale, 1000);
    CHECK_EQ(g.tick_window_s, 600);
    /* raw ticks kept: those within 600 s of the newest */
    uint64_t newest = all[NT + 4].exch_ts_ns;
    int want = 0;
    for (int i = 0; i < NT + 5; i++) want += all[i].exch_ts_ns + 600000000000ull >= newest;
    static pp_tick got[NT + 5];
    int64_t n = pp_md_ticks(b, 0, UINT64_MAX, got, NT + 5);
    CHECK_EQ(n, want);
    CHECK(n > 0 && tick_eq(&got[n - 1], &all[NT + 4]));
    CHECK(n > 0 && tick_eq(&got[0], &all[NT + 5 - want]));
    CHECK_EQ(pp_tick_append(b, &extra[4]), PP_EDUP);
    CHECK_EQ(pp_close(s), 0);
    /* without md/spec, the state file's copy of the declaration is used */
    char p[4096];
    snprintf(p, sizeof p, "%s%s/SOL-USD/md/spec", dir, t_pp_format() == 2 ? "/books" : "");
    CHECK_EQ(unlink(p), 0);
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "SOL-USD", &b));
    memset(&g, 0, sizeof g);
    CHECK_EQ(pp_md_spec_get(b, &g), 0);
    CHECK_EQ(g.price_scale, 1000);
    CHECK_EQ(g.tick_window_s, 600);
    CHECK(bars_equal(b, PP_BAR_1M, all, NT + 5));
    CHECK_EQ(pp_close(s), 0);
}

/* A tick whose append stopped after its first entry (as a crash between the
 * entries leaves it): replay skips it; the next tick is whole. Built by hand:
 * the journal holds TICK1 of seq 1001 only. Format 2 writes a tick as one
 * frame: a torn tick frame is the end of the journal, and the tick is
 * journaled again whole. */
static void test_interrupted_tick_skipped(void) {
    const char *dir = t_dir("md_torn");
    pp_config c = cfg_for(dir);
    pp_store *s; pp_book *b;
    make_ticks(T, 3, 4);
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "ADA-USD", &b));
    CHECK_EQ(pp_tick_append(b, &T[0]), 0);
    CHECK_EQ(pp_tick_append(b, &T[1]), 0);
    CHECK_EQ(pp_close(s), 0);
    /* cut the journal after the first entry of the second tick */
    char p[4096];
    /* format 1: 48-byte entries from 4096; format 2: the store journal, its
     * first instrument's 128-byte declaration, then 64-byte frames */
    const int f2 = t_pp_format() == 2;
    const long ent = f2 ? 128 : 48, first = f2 ? 4096 + 128 : 4096;   /* format 2: 128-byte tick frames */
    if (f2) snprintf(p, sizeof p, "%s/journal/%020llu.ppj", dir, 1ull);
    else snprintf(p, sizeof p, "%s/ADA-USD/journal/%020llu.ppj", dir, 1ull);
    FILE *f = fopen(p, "r+b");
    CHECK(f != NULL);
    if (f) {
        static const uint8_t zero[128];
        long at = f2 ? first + ent : first + 4 * ent, n = f2 ? ent : 2 * ent;   /* the second tick, or two of its entries */
        fseek(f, at, SEEK_SET);
        CHECK_EQ(fwrite(zero, 1, (size_t)n, f), (size_t)n);
        /* and the durable mark, so the scan sees an unsynced tail (format 2:
         * both of its 28-byte slots, at 512 and 1024) */
        static const uint8_t z28[28];
        fseek(f, 512, SEEK_SET);
        CHECK_EQ(fwrite(z28, 1, f2 ? 28 : 20, f), f2 ? 28 : 20);
        if (f2) { fseek(f, 1024, SEEK_SET); CHECK_EQ(fwrite(z28, 1, 28, f), 28); }
        fclose(f);
    }
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "ADA-USD", &b));
    CHECK_EQ(pp_last_seq(b), f2 ? 1 : 4);              /* tick 1 (+ the first entry of tick 2) */
    CHECK_EQ(pp_md_last_exch_seq(b), T[0].exch_seq);   /* tick 2 is not there */
    CHECK_EQ(pp_tick_append(b, &T[1]), 0);             /* so it is journaled again, whole */
    pp_tick got[4];
    CHECK_EQ(pp_md_ticks(b, 0, UINT64_MAX, got, 4), 2);
    CHECK(tick_eq(&got[1], &T[1]));
    CHECK_EQ(pp_md_gaps(b, 0, UINT64_MAX, NULL, 0), 0);
    CHECK_EQ(pp_close(s), 0);
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "ADA-USD", &b));
    CHECK_EQ(pp_md_ticks(b, 0, UINT64_MAX, got, 4), 2);
    CHECK(tick_eq(&got[1], &T[1]));
    CHECK_EQ(pp_close(s), 0);
}


/* Strict mode: ticks are picolog records; the history comes back through
 * the strict replay, before and after a snapshot. */
static void test_strict_mode(void) {
    const char *dir = t_dir("md_strict");
    pp_config c = cfg_for(dir);
    c.mode = PP_JOURNAL_STRICT;
    plg_config lc;
    memset(&lc, 0, sizeof lc);
    lc.segment_size = 1 << 20;
    lc.ring_capacity = 1 << 20;
    lc.log_fn = quiet;
    c.strict_log = &lc;
    pp_store *s; pp_book *b;
    make_ticks(T, 1000, 5);
    OK(pp_open(&s, &c));
    int rc = pp_book_open(s, "STRICT", &b);
    if (rc == PP_ELOG && t_has_odirect(dir) == 0) { pp_close(s); SKIP("no O_DIRECT on this filesystem (strict mode's picolog needs it)"); }
    CHECK_EQ(rc, 0);
    int bad = 0;
    for (int i = 0; i < 1000 && !rc; i++) {
        int r;
        while ((r = pp_tick_append(b, &T[i])) == PP_EFULL) usleep(100);
        bad += r != 0;
        if (i == 500) bad += pp_snapshot(b) != 0;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(pp_sync(b), 0);
    CHECK_EQ(pp_close(s), 0);
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "STRICT", &b));
    CHECK_EQ(pp_md_last_exch_seq(b), T[999].exch_seq);
    CHECK(bars_equal(b, PP_BAR_1M, T, 1000));
    CHECK_EQ(pp_md_ticks(b, 0, UINT64_MAX, NULL, 0), 1000);
    CHECK_EQ(pp_tick_append(b, &T[999]), PP_EDUP);
    CHECK_EQ(pp_close(s), 0);
}

/* Retention: raw ticks by tick_window_s and max_ticks, 1 s bars by
 * bar1s_window_s, 1 min bars by bar_window_s. */
static void test_retention(void) {
    const char *dir = t_dir("md_retention");
    pp_config c = cfg_for(dir);
    pp_store *s; pp_book *b;
    make_ticks(T, NT, 6);                               /* about 20 minutes */
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "R", &b));
    pp_md_spec sp; memset(&sp, 0, sizeof sp);
    sp.tick_window_s = 3600; sp.max_ticks = 100; sp.bar1s_window_s = 60; sp.bar_window_s = 600;
    CHECK_EQ(pp_md_declare(b, &sp), 0);
    for (int i = 0; i < NT; i++) pp_tick_append(b, &T[i]);
    static pp_tick got[NT];
    CHECK_EQ(pp_md_ticks(b, 0, UINT64_MAX, got, NT), 100);
    CHECK(tick_eq(&got[99], &T[NT - 1]));
    static pp_bar bars[NT];
    uint64_t newest = T[NT - 1].exch_ts_ns;
    int64_t n1 = pp_md_bars(b, PP_BAR_1S, 0, UINT64_MAX, bars, NT);
    CHECK(n1 > 0 && n1 <= 62);
    CHECK(n1 > 0 && bars[0].start_ns + 60000000000ull >= newest - newest % 1000000000ull);
    int64_t n60 = pp_md_bars(b, PP_BAR_1M, 0, UINT64_MAX, bars, NT);
    CHECK(n60 >= 10 && n60 <= 11);
    CHECK_EQ(pp_close(s), 0);
}

static int count_book(const char *nm, pp_book *b, void *ctx) { (void)nm; (void)b; (*(int *)ctx)++; return 0; }

static void test_conn_state(void) {
    const char *dir = t_dir("md_conn");
    pp_config c = cfg_for(dir);
    pp_store *s;
    char buf[256];
    OK(pp_open(&s, &c));
    const char *url = "wss://ws-feed.exchange.coinbase.com";
    CHECK_EQ(pp_conn_put(s, "feed_url", url, strlen(url)), 0);
    CHECK_EQ(pp_conn_put(s, "session", "abc", 3), 0);
    CHECK_EQ(pp_conn_put(s, "session", "abcdef", 6), 0);  /* replaced */
    CHECK_EQ(pp_conn_get(s, "missing", buf, sizeof buf), PP_ENOENT);
    CHECK_EQ(pp_conn_put(s, "../x", "a", 1), PP_ENAME);
    CHECK_EQ(pp_conn_get(s, "a/b", buf, sizeof buf), PP_ENAME);
    CHECK_EQ(pp_conn_get(s, "session", buf, 2), 6);        /* truncated copy, full length */
    CHECK_EQ(pp_close(s), 0);
    OK(pp_open(&s, &c));
    memset(buf, 0, sizeof buf);
    CHECK_EQ(pp_conn_get(s, "feed_url", buf, sizeof buf), (int64_t)strlen(url));
    CHECK(strcmp(buf, url) == 0);
    memset(buf, 0, sizeof buf);
    CHECK_EQ(pp_conn_get(s, "session", buf, sizeof buf), 6);
    CHECK(memcmp(buf, "abcdef", 6) == 0);
    pp_book *b;
    CHECK_EQ(pp_book_open(s, "BTC-USD", &b), 0);         /* .conn is not an instrument */
    int n = 0;
    CHECK_EQ(pp_books(s, count_book, &n), 0);
    CHECK_EQ(n, 1);
    CHECK_EQ(pp_close(s), 0);
    /* damaged blob: refused, not returned */
    char p[4096];
    snprintf(p, sizeof p, "%s/.conn/session", dir);
    FILE *f = fopen(p, "r+b");
    CHECK(f != NULL);
    if (f) { fseek(f, 17, SEEK_SET); fputc('X', f); fclose(f); }
    OK(pp_open(&s, &c));
    CHECK_EQ(pp_conn_get(s, "session", buf, sizeof buf), PP_ECORRUPT);
    CHECK_EQ(pp_close(s), 0);
}

int main(void) {
    RUN(test_bars_match_ticks);
    RUN(test_dup_and_gap);
    RUN(test_survives_restart_and_compaction);
    RUN(test_interrupted_tick_skipped);
    RUN(test_conn_state);
    RUN(test_strict_mode);
    RUN(test_retention);
    return t_done();
}
