/* pinnacle_persist.h: PP_NO_THREADS, a store without its background threads
 * (grower, syncer, maintainer), in both layouts (format 2 and
 * PP_LEGACY_LAYOUT) and in strict mode.
 *   - pp_open, pp_book_open and a book's whole life start no thread (the
 *     process's Threads: in /proc/self/status stays put; without the flag
 *     the same open adds three, so the count does see them);
 *   - nothing becomes durable by itself: pp_sync, pp_wait (with a timeout:
 *     0 once it ran a sync round) and pp_snapshot make it durable;
 *   - random events equal a model (pp_orders, pp_top, pp_find), also after
 *     pp_snapshot, pp_compact (which removes journal without a maintainer;
 *     in the per-instrument layout it asks for the roll the maintainer
 *     would ask for), close and reopen;
 *   - many events with no read in between (the ring, in format 2 the window
 *     of mapped journal segments, fills up with nobody draining it) lose
 *     nothing: the hot path makes room itself.
 * Seeded: replay with PP_NOTHR_SEED=n. */
// NO_TSAN (the stores here start no thread; the control that starts three only opens and closes: nothing for TSan to check)
/* pp_model.h holds helpers this test does not use */
#pragma GCC diagnostic ignored "-Wunused-function"
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "pp_model.h"
#include "t.h"
#include <ftw.h>
#include <time.h>

static void quiet(void *u, int code, const char *msg) { (void)u; (void)code; (void)msg; }
static int light(void) {
    const char *p = getenv("LD_PRELOAD");
    return (p && strstr(p, "valgrind")) || getenv("PLG_TEST_QUICK") != NULL;
}
static uint64_t seed0(void) {
    const char *e = getenv("PP_NOTHR_SEED");
    return e ? strtoull(e, NULL, 10) : 12;
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *w) { (void)s; (void)f; (void)w; return remove(p); }
static void rm_rf(const char *d) { nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* layout 1: PP_LEGACY_LAYOUT; 2: format 2 (a new mmap store's default) */
static pp_config cfg_for(const char *dir, int layout) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.flags = PP_NO_THREADS | PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT | (layout == 1 ? PP_LEGACY_LAYOUT : 0);
    c.log_fn = quiet;
    c.journal_sync_interval_ms = 1;              /* a syncer, if there were one, would sync at once */
    c.journal_chunk_bytes = 64u << 10;
    c.journal_segment_bytes = 256u << 10;        /* format 2: 256 KiB segments, a window of 1 MiB */
    c.compaction_threshold = 64u << 10;
    c.ring_entries = 64;
    return c;
}

static long threads_now(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long n = -1;
    while (f && fgets(line, sizeof line, f)) if (strncmp(line, "Threads:", 8) == 0) n = strtol(line + 8, NULL, 10);
    if (f) fclose(f);
    return n;
}

static void sleep_ms(long ms) { struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L}; nanosleep(&ts, NULL); }

/* the model's best bid and ask: price, total qty, orders */
static void model_top(const ppm *m, pp_level *bid, pp_level *ask) {
    memset(bid, 0, sizeof *bid); memset(ask, 0, sizeof *ask);
    for (uint64_t i = 0; i < m->nlive; i++) {
        const ppm_ord *o = &m->o[m->live[i]];
        pp_level *l = o->side == PP_BUY ? bid : ask;
        int better = !l->orders || (o->side == PP_BUY ? o->price > l->price : o->price < l->price);
        if (better) { l->price = o->price; l->qty = 0; l->orders = 0; }
        if (o->price == l->price) { l->qty += o->qty; l->orders++; }
    }
}
static int same_top(const ppm *m, pp_book *b) {
    pp_level mb, ma, bb, ba;
    model_top(m, &mb, &ma);
    if (pp_top(b, &bb, &ba) != 0) return 0;
    return bb.price == mb.price && bb.qty == mb.qty && bb.orders == mb.orders &&
           ba.price == ma.price && ba.qty == ma.qty && ba.orders == ma.orders;
}

/* n random valid events; 0 or the first error */
static int feed(pp_book *b, ppm *m, uint64_t *rng, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        ppm_ev e;
        ppm_gen(m, rng, &e);
        int rc = ppm_call(b, &e);
        if (rc) return rc;
        ppm_push(m, &e);
    }
    return 0;
}

static void test_no_thread_is_started_by_open_book_open_or_use(void) {
    for (int layout = 1; layout <= 2; layout++) {
        const char *d = t_dir("ppnt_threads");
        pp_config c = cfg_for(d, layout);
        long t0 = threads_now();
        REQUIRE(t0 >= 1);
        pp_store *S; pp_book *b;
        REQUIRE(pp_open(&S, &c) == 0);
        CHECK_EQ(threads_now(), t0);
        REQUIRE(pp_book_open(S, "BTC-USD", &b) == 0);
        CHECK_EQ(threads_now(), t0);
        ppm m; ppm_init(&m, NULL, 4096);
        uint64_t rng = seed0();
        CHECK_EQ(feed(b, &m, &rng, 2000), 0);
        CHECK_EQ(pp_sync(b), 0);
        CHECK_EQ(pp_snapshot(b), 0);
        CHECK_EQ(pp_compact(b), 0);
        CHECK_EQ(threads_now(), t0);
        CHECK_EQ(pp_close(S), 0);
        CHECK_EQ(threads_now(), t0);
        /* the control: without the flag the same open starts the three */
        c.flags &= ~(uint32_t)PP_NO_THREADS;
        REQUIRE(pp_open(&S, &c) == 0);
        CHECK(threads_now() >= t0 + 3);          /* (a sanitizer may add one of its own) */
        CHECK_EQ(pp_close(S), 0);
        ppm_free(&m);
        rm_rf(d);
    }
}

static void test_only_the_callers_calls_make_events_durable(void) {
    for (int layout = 1; layout <= 2; layout++) {
        const char *d = t_dir("ppnt_durable");
        pp_config c = cfg_for(d, layout);
        pp_store *S; pp_book *b;
        REQUIRE(pp_open(&S, &c) == 0);
        REQUIRE(pp_book_open(S, "ETH-USD", &b) == 0);
        ppm m; ppm_init(&m, NULL, 4096);
        uint64_t rng = seed0() + 1;
        CHECK_EQ(feed(b, &m, &rng, 500), 0);
        uint64_t last = pp_last_seq(b);
        CHECK_EQ(last, 500);
        sleep_ms(30);                             /* 30 sync intervals: a syncer would have moved it */
        CHECK_EQ(pp_durable(b), 0);
        CHECK_EQ(pp_wait(b, last, 1000000000), 0);   /* runs a sync round itself */
        CHECK(pp_durable(b) >= last);
        CHECK_EQ(pp_wait(b, last + 1, 1000000), PP_EINVAL);   /* never journaled */
        CHECK_EQ(feed(b, &m, &rng, 100), 0);
        CHECK_EQ(pp_durable(b), last);
        CHECK_EQ(pp_sync(b), 0);
        CHECK_EQ(pp_durable(b), pp_last_seq(b));
        CHECK_EQ(feed(b, &m, &rng, 100), 0);
        CHECK_EQ(pp_snapshot(b), 0);             /* a snapshot makes its seq durable first */
        CHECK_EQ(pp_durable(b), pp_last_seq(b));
        pp_stats st;
        pp_get_stats(b, &st);
        CHECK_EQ(st.snapshots, 1);
        CHECK_EQ(pp_close(S), 0);
        ppm_free(&m);
        rm_rf(d);
    }
}

/* pp_wait with a timeout, where no event is due yet: a poll that runs a
 * round, a timeout that runs rounds; either way 0 once durable */
static void test_pp_wait_with_a_timeout_returns_once_it_ran_a_sync(void) {
    for (int layout = 1; layout <= 2; layout++) {
        const char *d = t_dir("ppnt_wait");
        pp_config c = cfg_for(d, layout);
        pp_store *S; pp_book *b;
        REQUIRE(pp_open(&S, &c) == 0);
        REQUIRE(pp_book_open(S, "SOL-USD", &b) == 0);
        ppm m; ppm_init(&m, NULL, 64);
        uint64_t rng = seed0() + 2;
        CHECK_EQ(feed(b, &m, &rng, 10), 0);
        CHECK_EQ(pp_durable(b), 0);
        CHECK_EQ(pp_wait(b, 10, 0), 0);          /* timeout 0: one round, and it is durable */
        CHECK_EQ(pp_durable(b), 10);
        CHECK_EQ(feed(b, &m, &rng, 10), 0);
        CHECK_EQ(pp_wait(b, 15, 5000000), 0);    /* 5 ms */
        CHECK(pp_durable(b) >= 15);
        CHECK_EQ(feed(b, &m, &rng, 10), 0);
        CHECK_EQ(pp_wait(b, 30, -1), 0);         /* no timeout */
        CHECK_EQ(pp_durable(b), 30);
        CHECK_EQ(pp_close(S), 0);
        ppm_free(&m);
        rm_rf(d);
    }
}

static void test_views_snapshot_compaction_and_reopen_equal_a_model(void) {
    uint64_t n = light() ? 3000 : 30000;
    for (int layout = 1; layout <= 2; layout++) {
        const char *d = t_dir("ppnt_model");
        pp_config c = cfg_for(d, layout);
        c.journal_chunk_bytes = 16u << 10;        /* 64 KiB segments: compaction has whole ones to cut */
        c.journal_segment_bytes = 64u << 10;
        pp_store *S; pp_book *b;
        REQUIRE(pp_open(&S, &c) == 0);
        REQUIRE(pp_book_open(S, "BTC-USD", &b) == 0);
        ppm m; ppm_init(&m, NULL, n + 100);
        uint64_t rng = seed0() + 3;
        char why[256];
        int bad = 0;
        for (uint64_t done = 0; done < n && !bad; done += n / 10) {
            if (feed(b, &m, &rng, n / 10) != 0) { bad = 1; break; }
            if (!ppm_same(&m, b, why, sizeof why)) { bad = 2; fprintf(stderr, "  layout %d seq %llu: %s\n", layout, (unsigned long long)m.n, why); }
            if (!same_top(&m, b)) bad = 3;
            if (m.nlive) {
                uint64_t id = m.live[m.n % m.nlive];
                pp_order o;
                if (pp_find(b, id, &o) != 0 || o.qty != m.o[id].qty || o.price != m.o[id].price) bad = 4;
            }
            if (pp_order_count(b) != m.nlive) bad = 5;
            if ((done / (n / 10)) % 3 == 1 && (pp_snapshot(b) != 0 || pp_compact(b) != 0)) bad = 6;
        }
        if (bad) fprintf(stderr, "  layout %d: failure %d; replay: PP_NOTHR_SEED=%llu\n", layout, bad, (unsigned long long)seed0());
        CHECK_EQ(bad, 0);
        /* compaction without a maintainer: a snapshot, pp_compact (it asks
         * for a roll in the per-instrument layout), one event, again */
        CHECK_EQ(pp_snapshot(b), 0);
        CHECK_EQ(pp_compact(b), 0);
        CHECK_EQ(feed(b, &m, &rng, 1), 0);
        CHECK_EQ(pp_snapshot(b), 0);
        CHECK_EQ(pp_compact(b), 0);
        pp_stats st;
        pp_get_stats(b, &st);
        CHECK(st.segments_deleted > 0);
        CHECK(st.journal_first_seq > 1);
        CHECK(ppm_same(&m, b, why, sizeof why));
        CHECK_EQ(feed(b, &m, &rng, 50), 0);      /* after the last snapshot: replayed from the journal */
        CHECK_EQ(pp_close(S), 0);
        REQUIRE(pp_open(&S, &c) == 0);
        REQUIRE(pp_book_open(S, "BTC-USD", &b) == 0);
        if (!ppm_same(&m, b, why, sizeof why)) { fprintf(stderr, "  layout %d after reopen: %s\n", layout, why); CHECK(0); }
        CHECK(same_top(&m, b));
        CHECK_EQ(pp_durable(b), m.n);
        CHECK_EQ(pp_close(S), 0);
        ppm_free(&m);
        rm_rf(d);
    }
}

/* The per-instrument layout: a segment far from full but above the
 * compaction threshold. Without a maintainer to ask for the roll there,
 * pp_compact asks for it: the next event starts a new segment, and the next
 * snapshot and pp_compact remove the old one. */
static void test_pp_compact_rolls_a_segment_above_the_threshold(void) {
    const char *d = t_dir("ppnt_roll");
    pp_config c = cfg_for(d, 1);
    c.journal_segment_bytes = 1u << 20;           /* 2000 events: 96 KiB, above 64 KiB, far below 3/4 MiB */
    pp_store *S; pp_book *b;
    REQUIRE(pp_open(&S, &c) == 0);
    REQUIRE(pp_book_open(S, "BTC-USD", &b) == 0);
    ppm m; ppm_init(&m, NULL, 2100);
    uint64_t rng = seed0() + 6;
    CHECK_EQ(feed(b, &m, &rng, 2000), 0);
    CHECK_EQ(pp_snapshot(b), 0);
    CHECK_EQ(pp_compact(b), 0);
    CHECK_EQ(feed(b, &m, &rng, 1), 0);
    CHECK_EQ(pp_snapshot(b), 0);
    CHECK_EQ(pp_compact(b), 0);
    pp_stats st;
    pp_get_stats(b, &st);
    CHECK_EQ(st.rolls, 1);
    CHECK_EQ(st.segments_deleted, 1);
    CHECK_EQ(st.journal_first_seq, 2001);
    char why[256];
    CHECK(ppm_same(&m, b, why, sizeof why));
    CHECK_EQ(pp_close(S), 0);
    REQUIRE(pp_open(&S, &c) == 0);
    REQUIRE(pp_book_open(S, "BTC-USD", &b) == 0);
    CHECK(ppm_same(&m, b, why, sizeof why));
    CHECK_EQ(pp_close(S), 0);
    ppm_free(&m);
    rm_rf(d);
}

/* No reads at all while the book journals many times its ring (and, in
 * format 2, many times the window of mapped segments). */
static void test_a_ring_nobody_drains_loses_no_event(void) {
    uint64_t n = light() ? 12000 : 30000;
    for (int layout = 1; layout <= 2; layout++) {
        const char *d = t_dir("ppnt_ring");
        pp_config c = cfg_for(d, layout);
        if (layout == 2) { c.journal_chunk_bytes = 16u << 10; c.journal_segment_bytes = 64u << 10; }   /* the window: 4 x 64 KiB = 4096 events */
        pp_store *S; pp_book *b;
        REQUIRE(pp_open(&S, &c) == 0);
        REQUIRE(pp_book_open(S, "BTC-USD", &b) == 0);
        ppm m; ppm_init(&m, NULL, n + 1);
        uint64_t rng = seed0() + 4;
        int rc = feed(b, &m, &rng, n);
        CHECK_EQ(rc, 0);
        pp_stats st;
        pp_get_stats(b, &st);
        CHECK_EQ(st.last_seq, n);
        if (layout == 1) CHECK(st.ring_full_stalls > 0);   /* the hot path drained the ring itself */
        else CHECK(st.rolls > 8);                          /* segments retired and made by the writer */
        CHECK(st.applied_seq < n);                         /* nobody drained it all: the reads below do */
        char why[256];
        if (!ppm_same(&m, b, why, sizeof why)) { fprintf(stderr, "  layout %d: %s (PP_NOTHR_SEED=%llu)\n", layout, why, (unsigned long long)seed0()); CHECK(0); }
        CHECK(same_top(&m, b));
        CHECK_EQ(pp_close(S), 0);
        REQUIRE(pp_open(&S, &c) == 0);
        REQUIRE(pp_book_open(S, "BTC-USD", &b) == 0);
        CHECK(ppm_same(&m, b, why, sizeof why));
        CHECK_EQ(pp_close(S), 0);
        ppm_free(&m);
        rm_rf(d);
    }
}

/* Strict mode: the store starts no thread of its own (each book's picolog
 * log keeps its writer thread); events, durability and reopen work. */
static void test_strict_mode_without_the_stores_threads(void) {
    const char *d = t_dir("ppnt_strict");
    if (t_has_odirect(d) != 1) { rm_rf(d); SKIP("strict mode needs O_DIRECT on PLG_TEST_DIR"); }
    pp_config c = cfg_for(d, 1);
    c.mode = PP_JOURNAL_STRICT;
    long t0 = threads_now();
    pp_store *S; pp_book *b;
    REQUIRE(pp_open(&S, &c) == 0);
    CHECK_EQ(threads_now(), t0);
    REQUIRE(pp_book_open(S, "BTC-USD", &b) == 0);
    ppm m; ppm_init(&m, NULL, 4096);
    uint64_t rng = seed0() + 5;
    int rc = 0;
    for (int i = 0; i < 2000 && !rc; i++) {       /* strict: PP_EFULL means retry */
        ppm_ev e;
        ppm_gen(&m, &rng, &e);
        while ((rc = ppm_call(b, &e)) == PP_EFULL) sched_yield();
        if (!rc) ppm_push(&m, &e);
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(pp_wait(b, m.n, 2000000000), 0);
    CHECK_EQ(pp_sync(b), 0);
    CHECK_EQ(pp_durable(b), m.n);
    char why[256];
    CHECK(ppm_same(&m, b, why, sizeof why));
    CHECK_EQ(pp_snapshot(b), 0);
    CHECK_EQ(pp_compact(b), 0);
    CHECK_EQ(pp_close(S), 0);
    REQUIRE(pp_open(&S, &c) == 0);
    REQUIRE(pp_book_open(S, "BTC-USD", &b) == 0);
    CHECK(ppm_same(&m, b, why, sizeof why));
    CHECK_EQ(pp_close(S), 0);
    ppm_free(&m);
    rm_rf(d);
}

int main(void) {
    RUN(test_no_thread_is_started_by_open_book_open_or_use);
    RUN(test_only_the_callers_calls_make_events_durable);
    RUN(test_pp_wait_with_a_timeout_returns_once_it_ran_a_sync);
    RUN(test_views_snapshot_compaction_and_reopen_equal_a_model);
    RUN(test_pp_compact_rolls_a_segment_above_the_threshold);
    RUN(test_a_ring_nobody_drains_loses_no_event);
    RUN(test_strict_mode_without_the_stores_threads);
    return t_done();
}
