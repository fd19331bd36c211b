/* pinnacle_persist.h: atomic batches (pp_batch_begin / commit / abort) on the
 * store journal (format 2).
 *   - a committed batch's events are all recovered after close and reopen,
 *     with consecutive seqs, and nothing of an open batch is visible;
 *   - abort leaves nothing journaled and the hot-path index as before (also
 *     across a growth of the index inside the batch);
 *   - invalid events inside a batch return their error and are not part of
 *     it; misuse (nested begin, commit or abort without begin) is PP_EINVAL;
 *     PP_BATCH_MAX + 1 events is PP_ETOOBIG; the per-instrument layout
 *     refuses batches (PP_ENOTSUP);
 *   - pp_durable never stops inside a batch (a watcher thread samples it
 *     while the background syncer runs), pp_wait covers a batch whole;
 *   - the journal reader returns a batch's events one by one;
 *   - payloads: journaled with single events and inside batches, read back
 *     verbatim by the journal reader before and after a reopen; over
 *     PP_PAYLOAD_MAX or without bytes is PP_EINVAL, on the per-instrument
 *     layout PP_ENOTSUP; a batch is at most one 16 KiB frame (PP_ETOOBIG);
 *     a flipped payload byte is PP_ECORRUPT; an add's payload stays with
 *     its order for pp_find and pp_orders, through snapshots and reopens,
 *     and leaves with it;
 *   - power cuts on the simulated disk (tests/sim_disk.h) while batches are
 *     committed, aborted or left open: the recovered book never ends inside
 *     a batch, holds at least what pp_durable acknowledged, and equals a
 *     replay of its events (replay one seed: PP_BATCH_SEED=n). */
/* sim_disk.h holds helpers this test does not use */
#pragma GCC diagnostic ignored "-Wunused-function"
#define PINNACLE_PERSIST_IMPLEMENTATION
#define PINNACLE_PERSIST_TEST_IO
#include "pinnacle_persist.h"
#include "sim_disk.h"
#include "t.h"
#include <ftw.h>
#include <pthread.h>

#define OK(call) do { int ok_rc_ = (call); CHECK_EQ(ok_rc_, 0); if (ok_rc_) return; } while (0)
static void quiet(void *u, int code, const char *msg) { (void)u; (void)code; (void)msg; }
static int light(void) {
    const char *p = getenv("LD_PRELOAD");
    return (p && strstr(p, "valgrind")) || getenv("PLG_TEST_QUICK") != NULL;
}

static pp_config cfg_for(const char *dir) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.flags = PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT;   /* a new mmap store: format 2 */
    c.log_fn = quiet;
    c.journal_segment_bytes = 1 << 20;
    c.journal_chunk_bytes = 64 << 10;
    c.journal_sync_interval_ms = 2;
    return c;
}

/* A tiny model of one book: id -> qty, price (ids 1..MAXID). */
#define MAXID 64
typedef struct model { int64_t qty[MAXID + 1], price[MAXID + 1]; uint64_t n; } model;

typedef struct cmp { const model *m; int bad; uint64_t seen; } cmp;
static int visit_cmp(const pp_order *o, void *ctx) {
    cmp *c = (cmp *)ctx;
    c->seen++;
    if (o->id > MAXID || c->m->qty[o->id] != o->qty || c->m->price[o->id] != o->price) c->bad++;
    return 0;
}
static int same(pp_book *b, const model *m) {
    cmp c = {m, 0, 0};
    uint64_t live = 0;
    for (int i = 1; i <= MAXID; i++) live += m->qty[i] != 0;
    if (pp_orders(b, visit_cmp, &c)) return 0;
    return !c.bad && c.seen == live && pp_last_seq(b) == m->n;
}

static int add(pp_book *b, model *m, uint64_t id, int64_t px, int64_t qty) {
    pp_order o = {id, px, qty, 7, (uint8_t)(1 + (id & 1)), 0, NULL, 0};
    int rc = pp_add(b, &o);
    if (!rc && m) { m->qty[id] = qty; m->price[id] = px; m->n++; }
    return rc;
}

static void test_a_committed_batch_comes_back_whole_after_reopen(void) {
    const char *d = t_dir("ppb_reopen");
    pp_config c = cfg_for(d);
    pp_store *S;
    pp_book *b;
    model m;
    memset(&m, 0, sizeof m);
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "BTC-USD", &b));
    OK(add(b, &m, 1, 100, 5));
    OK(pp_batch_begin(b));
    OK(add(b, NULL, 2, 101, 4));
    OK(add(b, NULL, 3, 99, 6));
    OK(pp_execute(b, 2, 1, 101));
    OK(pp_execute(b, 1, 5, 100));                 /* fills order 1 to 0: it leaves */
    OK(pp_modify(b, 3, 98, 2));
    CHECK_EQ(pp_last_seq(b), 1);                  /* nothing of the batch is journaled yet */
    pp_order f;
    CHECK_EQ(pp_find(b, 2, &f), PP_ENOENT);       /* nor visible */
    CHECK_EQ(pp_find(b, 1, &f), 0);
    OK(pp_batch_commit(b));
    m.qty[2] = 3; m.price[2] = 101; m.qty[1] = 0; m.qty[3] = 2; m.price[3] = 98; m.n += 5;
    CHECK_EQ(pp_last_seq(b), 6);
    CHECK(same(b, &m));
    OK(pp_batch_begin(b));                        /* an empty batch journals nothing */
    OK(pp_batch_commit(b));
    CHECK_EQ(pp_last_seq(b), 6);
    OK(pp_close(S));

    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "BTC-USD", &b));
    CHECK_EQ(pp_last_seq(b), 6);
    CHECK(same(b, &m));
    OK(add(b, &m, 4, 100, 1));                    /* seqs go on densely */
    CHECK_EQ(pp_last_seq(b), 7);
    OK(pp_close(S));
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "BTC-USD", &b));
    CHECK(same(b, &m));
    OK(pp_close(S));
}

static void test_abort_leaves_nothing_and_the_book_as_before(void) {
    const char *d = t_dir("ppb_abort");
    pp_config c = cfg_for(d);
    pp_store *S;
    pp_book *b;
    model m;
    memset(&m, 0, sizeof m);
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "ETH-USD", &b));
    OK(add(b, &m, 1, 100, 5));
    OK(add(b, &m, 2, 100, 3));
    OK(pp_batch_begin(b));
    OK(pp_cancel(b, 1));
    OK(pp_execute(b, 2, 3, 100));                 /* to 0 */
    OK(add(b, NULL, 3, 101, 1));
    OK(add(b, NULL, 1, 90, 9));                   /* the cancelled id again */
    OK(pp_modify(b, 1, 91, 8));
    for (uint64_t id = 10; id < 10 + 40; id++) OK(add(b, NULL, id, 100, 1));   /* grows the index (it starts at 8) */
    OK(pp_cancel(b, 10));
    OK(pp_batch_abort(b));
    CHECK_EQ(pp_last_seq(b), 2);
    CHECK(same(b, &m));
    /* the hot-path index is as before: the validations say so */
    CHECK_EQ(pp_execute(b, 1, 6, 100), PP_EOVERFILL);   /* 5 left, not 8 */
    CHECK_EQ(pp_execute(b, 2, 4, 100), PP_EOVERFILL);   /* 3 left, not gone */
    CHECK_EQ(pp_cancel(b, 3), PP_ENOENT);
    for (uint64_t id = 10; id < 10 + 40; id++) CHECK_EQ(pp_cancel(b, id), PP_ENOENT);
    CHECK_EQ(add(b, NULL, 1, 100, 1), PP_EEXIST);
    OK(pp_execute(b, 2, 3, 100));  m.qty[2] = 0; m.n++;
    OK(pp_execute(b, 1, 5, 100));  m.qty[1] = 0; m.n++;
    CHECK_EQ(pp_last_seq(b), 4);
    CHECK(same(b, &m));
    /* a batch aborted with nothing in it, and one after an abort */
    OK(pp_batch_begin(b));
    OK(pp_batch_abort(b));
    OK(pp_batch_begin(b));
    OK(add(b, NULL, 5, 100, 2));
    OK(pp_batch_commit(b));
    m.qty[5] = 2; m.price[5] = 100; m.n++;
    CHECK(same(b, &m));
    OK(pp_close(S));
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "ETH-USD", &b));
    CHECK(same(b, &m));
    pp_journal *j;
    OK(pp_journal_open(S, "ETH-USD", 1, &j));
    pp_event ev;
    uint64_t n = 0;
    while (pp_journal_next(j, &ev) == 1) { n++; CHECK(ev.order_id <= 5); CHECK_EQ(ev.seq, n); }
    CHECK_EQ(n, 5);
    pp_journal_close(j);
    OK(pp_close(S));
}

static void test_invalid_events_inside_a_batch_are_not_part_of_it(void) {
    const char *d = t_dir("ppb_invalid");
    pp_config c = cfg_for(d);
    pp_store *S;
    pp_book *b;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "SOL-USD", &b));
    CHECK_EQ(pp_batch_commit(b), PP_EINVAL);      /* no batch open */
    CHECK_EQ(pp_batch_abort(b), PP_EINVAL);
    CHECK_EQ(pp_batch_begin(NULL), PP_EINVAL);
    OK(pp_batch_begin(b));
    CHECK_EQ(pp_batch_begin(b), PP_EINVAL);       /* no nesting */
    OK(add(b, NULL, 1, 100, 5));
    CHECK_EQ(add(b, NULL, 1, 100, 5), PP_EEXIST);             /* added earlier in this batch */
    CHECK_EQ(pp_execute(b, 1, 6, 100), PP_EOVERFILL);
    CHECK_EQ(pp_cancel(b, 99), PP_ENOENT);
    CHECK_EQ(add(b, NULL, 2, 100, 0), PP_EINVAL);
    pp_tick t;
    memset(&t, 0, sizeof t);
    t.exch_seq = 1; t.price = 100; t.size = 1;
    CHECK_EQ(pp_tick_append(b, &t), PP_EINVAL);   /* market data is not part of a batch */
    OK(pp_execute(b, 1, 2, 100));
    OK(pp_batch_commit(b));
    CHECK_EQ(pp_last_seq(b), 2);
    OK(pp_sync(b));
    pp_journal *j;
    OK(pp_journal_open(S, "SOL-USD", 1, &j));
    pp_event ev;
    REQUIRE(pp_journal_next(j, &ev) == 1);
    CHECK_EQ(ev.type, PP_EV_ADD); CHECK_EQ(ev.seq, 1); CHECK_EQ(ev.qty, 5);
    REQUIRE(pp_journal_next(j, &ev) == 1);
    CHECK_EQ(ev.type, PP_EV_EXECUTE); CHECK_EQ(ev.seq, 2); CHECK_EQ(ev.qty, 2);
    CHECK_EQ(pp_journal_next(j, &ev), 0);
    pp_journal_close(j);
    /* one event more than a frame takes */
    OK(pp_batch_begin(b));
    for (uint64_t k = 0; k < PP_BATCH_MAX; k++) OK(add(b, NULL, 1000 + k, 100, 1));
    CHECK_EQ(add(b, NULL, 5000, 100, 1), PP_ETOOBIG);
    OK(pp_batch_commit(b));
    CHECK_EQ(pp_last_seq(b), 2 + PP_BATCH_MAX);
    CHECK_EQ(pp_cancel(b, 5000), PP_ENOENT);      /* the refused one is not in the index */
    CHECK_EQ(pp_order_count(b), 1 + PP_BATCH_MAX);
    OK(pp_close(S));
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "SOL-USD", &b));
    CHECK_EQ(pp_last_seq(b), 2 + PP_BATCH_MAX);
    CHECK_EQ(pp_order_count(b), 1 + PP_BATCH_MAX);
    OK(pp_close(S));
}

static void test_the_per_instrument_layout_refuses_batches(void) {
    const char *d = t_dir("ppb_legacy");
    pp_config c = cfg_for(d);
    c.flags |= PP_LEGACY_LAYOUT;
    pp_store *S;
    pp_book *b;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "OLD", &b));
    CHECK_EQ(pp_batch_begin(b), PP_ENOTSUP);
    CHECK_EQ(pp_batch_commit(b), PP_EINVAL);
    OK(add(b, NULL, 1, 100, 1));                  /* the book itself is fine */
    CHECK_EQ(pp_last_seq(b), 1);
    OK(pp_close(S));
}

/* ---- pp_durable moves past a batch only whole ---- */
#define DW_MAXSEQ 200000
static uint8_t dw_end[DW_MAXSEQ + 1];           /* 1: a seq after which the book may stop */
typedef struct dwatch { pp_book *b; volatile int stop; uint64_t samples, inside, last_bad; } dwatch;
static void *dw_main(void *p) {
    dwatch *w = (dwatch *)p;
    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
        uint64_t d = pp_durable(w->b);
        w->samples++;
        if (d > DW_MAXSEQ || !__atomic_load_n(&dw_end[d], __ATOMIC_ACQUIRE)) { w->inside++; w->last_bad = d; }
    }
    return NULL;
}

static void test_durable_never_stops_inside_a_batch(void) {
    const char *d = t_dir("ppb_durable");
    pp_config c = cfg_for(d);
    c.journal_sync_interval_ms = 1;
    pp_store *S;
    pp_book *b;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "BTC-USD", &b));
    memset(dw_end, 0, sizeof dw_end);
    dw_end[0] = 1;
    dwatch w;
    memset(&w, 0, sizeof w);
    w.b = b;
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, dw_main, &w) == 0);
    uint64_t rng = 42, seq = 0, id = 1, batches = light() ? 300 : 3000;
    int bad = 0;
    for (uint64_t k = 0; k < batches && !bad; k++) {
        uint64_t n = 1 + t_rand(&rng) % 20;
        if (seq + n > DW_MAXSEQ) break;
        bad |= pp_batch_begin(b) != 0;
        uint64_t got = ((n + 1) / 2) * 2;           /* pairs: add, then fill (the book stays small) */
        for (uint64_t e = 0; e < got && !bad; e += 2, id++) {
            bad |= add(b, NULL, id, 100, 1) != 0;
            bad |= pp_execute(b, id, 1, 100) != 0;
        }
        /* mark the end before the commit publishes it */
        __atomic_store_n(&dw_end[seq + got], 1, __ATOMIC_RELEASE);
        bad |= pp_batch_commit(b) != 0;
        seq += got;
        bad |= pp_last_seq(b) != seq;
        if (k % 64 == 0) {                          /* pp_wait covers the batch whole */
            int r = pp_wait(b, seq - got + 1, 10000000000ll);
            bad |= r != 0 || pp_durable(b) < seq;
        }
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(pp_wait(b, seq, 10000000000ll), 0);
    __atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    if (w.inside) fprintf(stderr, "  pp_durable was %llu, inside a batch\n", (unsigned long long)w.last_bad);
    CHECK_EQ(w.inside, 0);
    OK(pp_sync(b));
    CHECK_EQ(pp_durable(b), seq);
    CHECK(w.samples > 0);
    printf("  %llu events in batches, %llu samples of pp_durable\n", (unsigned long long)seq, (unsigned long long)w.samples);
    OK(pp_close(S));
}

/* ---- the journal reader ---- */
static void test_the_journal_reader_returns_batch_events_one_by_one(void) {
    const char *d = t_dir("ppb_reader");
    pp_config c = cfg_for(d);
    pp_store *S;
    pp_book *b, *o;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "A", &b));
    OK(pp_book_open(S, "B", &o));
    pp_event want[16];
    memset(want, 0, sizeof want);
    int n = 0;
#define WANT(t, i, s, p, q) do { want[n].type = (t); want[n].order_id = (i); want[n].side = (s); \
    want[n].price = (p); want[n].qty = (q); want[n].seq = (uint64_t)n + 1; n++; } while (0)
    OK(add(b, NULL, 1, 100, 5));                    WANT(PP_EV_ADD, 1, 2, 100, 5);
    OK(pp_batch_begin(b));
    OK(add(b, NULL, 2, 101, 3));                    WANT(PP_EV_ADD, 2, 1, 101, 3);
    OK(add(o, NULL, 7, 100, 1));                    /* another book's event between them in the journal */
    OK(pp_execute(b, 1, 5, 100));                   WANT(PP_EV_EXECUTE, 1, 0, 100, 5);
    OK(pp_modify(b, 2, 102, 2));                    WANT(PP_EV_MODIFY, 2, 0, 102, 2);
    OK(pp_batch_commit(b));
    OK(pp_batch_begin(b));
    OK(add(b, NULL, 9, 100, 9));
    OK(pp_batch_abort(b));
    OK(pp_cancel(b, 2));                            WANT(PP_EV_CANCEL, 2, 0, 0, 0);
    OK(pp_sync(b));
    pp_journal *j;
    OK(pp_journal_open(S, "A", 1, &j));
    pp_event ev;
    int k = 0;
    while (pp_journal_next(j, &ev) == 1 && k < n) {
        CHECK_EQ(ev.type, want[k].type); CHECK_EQ(ev.order_id, want[k].order_id); CHECK_EQ(ev.side, want[k].side);
        CHECK_EQ(ev.price, want[k].price); CHECK_EQ(ev.qty, want[k].qty); CHECK_EQ(ev.seq, want[k].seq);
        k++;
    }
    CHECK_EQ(k, n);
    CHECK_EQ(pp_journal_next(j, &ev), 0);
    pp_journal_close(j);
    OK(pp_journal_open(S, "A", 3, &j));             /* from the middle of a batch */
    REQUIRE(pp_journal_next(j, &ev) == 1);
    CHECK_EQ(ev.seq, 3);
    CHECK_EQ(ev.type, PP_EV_EXECUTE);
    pp_journal_close(j);
    pp_check_result r;
    OK(pp_close(S));
    OK(pp_check(d, "A", &r));
    CHECK_EQ(r.status, 0);
    CHECK_EQ(r.journal_last_seq, (uint64_t)n);
#undef WANT
}

/* ---- power cuts inside and around batches ---- */
#define CUT_OPS 20000
typedef struct cop { uint8_t kind; uint64_t id; int64_t price, qty; } cop;
static cop cut_ops[CUT_OPS];                       /* seq s is cut_ops[s - 1] */
static uint8_t cut_end[CUT_OPS + 1];               /* 1: the book may end after this seq */

static void cut_apply(model *m, const cop *o) {
    switch (o->kind) {
    case 1: m->qty[o->id] = o->qty; m->price[o->id] = o->price; break;
    case 2: m->qty[o->id] = 0; break;
    case 3: m->qty[o->id] -= o->qty; break;
    default: m->price[o->id] = o->price; m->qty[o->id] = o->qty; break;
    }
    m->n++;
}

/* One valid event on b, applied to m and recorded at ops[*n]; 1 when the call fails. */
static int cut_event(pp_book *b, model *m, cop *ops, uint64_t *n, uint64_t *rng) {
    uint64_t id = 1 + t_rand(rng) % MAXID;
    cop o = {0, id, 0, 0};
    int rc;
    if (!m->qty[id]) {
        o.kind = 1; o.price = (int64_t)(100 + t_rand(rng) % 50); o.qty = (int64_t)(1 + t_rand(rng) % 9);
        rc = add(b, NULL, id, o.price, o.qty);
    } else switch (t_rand(rng) % 3) {
        case 0: o.kind = 2; rc = pp_cancel(b, id); break;
        case 1: o.kind = 3; o.qty = 1 + (int64_t)(t_rand(rng) % (uint64_t)m->qty[id]); o.price = m->price[id];
                rc = pp_execute(b, id, o.qty, o.price); break;
        default: o.kind = 4; o.price = m->price[id] + 1; o.qty = 1 + (int64_t)(t_rand(rng) % 9);
                rc = pp_modify(b, id, o.price, o.qty); break;
    }
    if (rc) return 1;
    cut_apply(m, &o);
    ops[(*n)++] = o;
    return 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb; (void)flag; (void)f;
    return remove(p);
}
static void rm_rf(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static uint64_t cut_batches, cut_aborts, cut_acked, cut_open_at_cut;
static int cut_seed(uint64_t seed, const char *base) {
    char dir[600], next[600], grave[700];
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 11, n = 0, acked = 0;
    model m;
    memset(&m, 0, sizeof m);
    memset(cut_end, 0, sizeof cut_end);
    cut_end[0] = 1;
    snprintf(dir, sizeof dir, "%s/s%llu_0", base, (unsigned long long)seed);
    mkdir(dir, 0755);
    int bad = 0, rounds = light() ? 2 : 4;
    for (int inc = 0; inc < rounds && !bad; inc++) {
        sim_disk d;
        sim_cfg sc;
        memset(&sc, 0, sizeof sc);
        sc.seed = seed * 100 + (uint64_t)inc;
        sim_init(&d, &sc);
        snprintf(grave, sizeof grave, "%s.grave", dir);
        sim_img_init(&d, grave);
        sim_img_adopt(&d, dir);
        pp_io io;
        sim_pp_io(&d, &io);
        pp_test_set_io(&io);
        pp_config c = cfg_for(dir);
        c.journal_segment_bytes = 64 << 10;          /* batches cross segment ends */
        c.journal_chunk_bytes = 8 << 10;
        c.journal_sync_interval_ms = 1;
        pp_store *S = NULL;
        pp_book *b = NULL, *o = NULL;
        int rc = pp_open(&S, &c);
        if (!rc) rc = pp_book_open(S, "BAT", &b);
        if (!rc) rc = pp_book_open(S, "ONE", &o);
        if (rc) { fprintf(stderr, "  seed %llu inc %d: open: %s\n", (unsigned long long)seed, inc, pp_strerror(rc)); bad = 1; }
        if (!bad) {
            uint64_t got = pp_last_seq(b);
            model r;
            memset(&r, 0, sizeof r);
            for (uint64_t s = 0; s < got && s < n; s++) cut_apply(&r, &cut_ops[s]);
            if (got < acked || got > n || !cut_end[got] || !same(b, &r)) {
                fprintf(stderr, "  seed %llu inc %d: recovered seq %llu (acknowledged %llu, appended %llu, %s), book %s\n",
                        (unsigned long long)seed, inc, (unsigned long long)got, (unsigned long long)acked, (unsigned long long)n,
                        got <= n && cut_end[got] ? "a batch boundary" : "INSIDE a batch", same(b, &r) ? "equal" : "differs");
                bad = 1;
            }
            n = got; m = r;
            for (uint64_t s = got + 1; s <= CUT_OPS; s++) cut_end[s] = 0;
        }
        /* batches (committed, aborted, some with an invalid event), single events, another book */
        uint64_t steps = 50 + t_rand(&rng) % 400;
        int open_batch = 0;
        for (uint64_t k = 0; k < steps && !bad && n + PP_BATCH_MAX < CUT_OPS; k++) {
            uint64_t what = t_rand(&rng) % 10;
            if (what < 2) {                                         /* a single event */
                if (cut_event(b, &m, cut_ops, &n, &rng)) break;
                cut_end[n] = 1;
            } else if (what < 3) {                                  /* the other book */
                if (add(o, NULL, (uint64_t)inc * 100000 + 1 + k, 100, 1) && pp_error(o)) break;
            } else {
                model save = m;
                uint64_t n0 = n, len = 1 + (what == 9 ? t_rand(&rng) % PP_BATCH_MAX : t_rand(&rng) % 12);
                if (pp_batch_begin(b)) break;
                int failed = 0;
                for (uint64_t e = 0; e < len && !failed; e++) failed = cut_event(b, &m, cut_ops, &n, &rng);
                if (!failed && t_rand(&rng) % 4 == 0)               /* an invalid event: refused, the batch goes on */
                    failed = pp_cancel(b, MAXID + 1) != PP_ENOENT;
                if (failed && pp_error(b)) break;
                if (k + 1 == steps && t_rand(&rng) % 2) { open_batch = 1; m = save; n = n0; break; }  /* open at the cut */
                if (t_rand(&rng) % 5 == 0) {
                    if (pp_batch_abort(b)) break;
                    m = save; n = n0;
                    cut_aborts++;
                } else {
                    if (pp_batch_commit(b)) break;
                    cut_end[n] = 1;
                    cut_batches++;
                }
            }
            if (t_rand(&rng) % 50 == 0) (void)pp_sync(b);
        }
        cut_open_at_cut += (uint64_t)open_batch;
        if (b) acked = pp_durable(b);
        if (acked > n) acked = n;
        cut_acked += acked;
        sim_cut(&d, (int)(t_rand(&rng) % 3) == 1);
        if (S) pp_close(S);                                  /* the disk is dead: it fails, closes */
        pp_test_set_io(NULL);
        snprintf(next, sizeof next, "%s/s%llu_%d", base, (unsigned long long)seed, inc + 1);
        sim_img_build(&d, dir, next, (int)(t_rand(&rng) % 3), seed * 31 + (uint64_t)inc);
        sim_destroy(&d);
        rm_rf(grave);
        rm_rf(dir);
        snprintf(dir, sizeof dir, "%s", next);
    }
    rm_rf(dir);
    return bad;
}

static void test_power_cuts_never_recover_half_a_batch(void) {
    const char *base = t_dir("ppb_cuts");
    int seeds = light() ? 4 : 16, failed = 0;
    const char *e = getenv("PP_BATCH_SEED");
    uint64_t from = e ? strtoull(e, NULL, 10) : 1;
    if (e) seeds = 1;
    for (int i = 0; i < seeds; i++) {
        int bad = cut_seed(from + (uint64_t)i, base);
        if (bad) { failed++; fprintf(stderr, "  replay: PP_BATCH_SEED=%llu build/test/test_pinnacle_batch\n", (unsigned long long)(from + (uint64_t)i)); }
    }
    CHECK_EQ(failed, 0);
    printf("  %d seeds: %llu batches committed, %llu aborted, %llu open at a cut, %llu events acknowledged at the cuts\n", seeds,
           (unsigned long long)cut_batches, (unsigned long long)cut_aborts, (unsigned long long)cut_open_at_cut,
           (unsigned long long)cut_acked);
    CHECK(cut_batches > 0);
    rm_rf(base);
}

/* ---- payloads (issue 13): up to PP_PAYLOAD_MAX opaque bytes an event ---- */
static void fill_pl(uint8_t *p, uint32_t n, uint64_t tag) {
    for (uint32_t i = 0; i < n; i++) p[i] = (uint8_t)(tag * 131 + i * 7 + (i >> 3));
}
static int apply_pl(pp_book *b, int type, uint64_t id, int side, int64_t price, int64_t qty, uint32_t plen, uint64_t tag) {
    static uint8_t pl[PP_PAYLOAD_MAX + 64];
    fill_pl(pl, plen, tag);
    pp_event e;
    memset(&e, 0, sizeof e);
    e.type = type; e.order_id = id; e.side = (uint8_t)side; e.price = price; e.qty = qty; e.ts_ns = 1000 + id;
    e.payload = plen ? pl : NULL; e.payload_len = plen;
    return pp_apply(b, &e);
}
/* Every event of book `name` from seq 1: its payload must be plen[k] bytes of tag k+1. */
static int payloads_match(pp_store *S, const char *name, const uint32_t *plen, int n) {
    pp_journal *j;
    if (pp_journal_open(S, name, 1, &j) != 0) return -1;
    pp_event ev;
    int k = 0, bad = 0;
    uint8_t want[PP_PAYLOAD_MAX];
    while (pp_journal_next(j, &ev) == 1) {
        if (k >= n || ev.seq != (uint64_t)k + 1 || ev.payload_len != plen[k]) { bad++; k++; continue; }
        fill_pl(want, plen[k], (uint64_t)k + 1);
        if (plen[k] ? !ev.payload || memcmp(ev.payload, want, plen[k]) != 0 : ev.payload != NULL) bad++;
        k++;
    }
    pp_journal_close(j);
    return bad || k != n ? -1 : 0;
}

static void test_payloads_are_journaled_and_read_back_verbatim(void) {
    const char *d = t_dir("ppb_payload");
    pp_config c = cfg_for(d);
    pp_store *S;
    pp_book *b;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "PX", &b));
    /* lengths around the 64-byte room of a frame; tag = the event's seq */
    uint32_t plen[12] = {15, 256, 64, 1, 65, 0, 200, 63, 128, 0, 2, 256};
    OK(apply_pl(b, PP_EV_ADD, 1, PP_BUY, 100, 10, plen[0], 1));
    OK(apply_pl(b, PP_EV_ADD, 2, PP_SELL, 105, 4, plen[1], 2));
    OK(apply_pl(b, PP_EV_EXECUTE, 1, 0, 100, 1, plen[2], 3));
    OK(apply_pl(b, PP_EV_CANCEL, 2, 0, 0, 0, plen[3], 4));
    OK(pp_batch_begin(b));                                   /* a match with payloads: one frame */
    OK(apply_pl(b, PP_EV_ADD, 3, PP_SELL, 101, 5, plen[4], 5));
    OK(apply_pl(b, PP_EV_EXECUTE, 3, 0, 101, 1, plen[5], 6));
    OK(apply_pl(b, PP_EV_MODIFY, 3, 0, 102, 2, plen[6], 7));
    OK(apply_pl(b, PP_EV_ADD, 4, PP_BUY, 99, 3, plen[7], 8));
    OK(pp_batch_commit(b));
    OK(apply_pl(b, PP_EV_ADD, 5, PP_BUY, 98, 3, plen[8], 9));
    OK(apply_pl(b, PP_EV_ADD, 6, PP_BUY, 97, 3, plen[9], 10));
    CHECK_EQ(pp_last_seq(b), 10);
    OK(pp_sync(b));
    CHECK_EQ(payloads_match(S, "PX", plen, 10), 0);
    OK(pp_close(S));
    OK(pp_open(&S, &c));                                     /* recovery reads the longer frames */
    OK(pp_book_open(S, "PX", &b));
    CHECK_EQ(pp_last_seq(b), 10);
    pp_level bid, ask;
    OK(pp_top(b, &bid, &ask));
    CHECK_EQ(bid.price, 100); CHECK_EQ(bid.qty, 9);          /* order 1 after its fill of 1 */
    CHECK_EQ(ask.price, 102); CHECK_EQ(ask.qty, 2);          /* order 3 as modified */
    OK(apply_pl(b, PP_EV_CANCEL, 4, 0, 0, 0, plen[10], 11));
    OK(apply_pl(b, PP_EV_ADD, 7, PP_SELL, 110, 1, plen[11], 12));
    OK(pp_sync(b));
    CHECK_EQ(payloads_match(S, "PX", plen, 12), 0);
    pp_check_result r;
    CHECK_EQ(pp_check(d, "PX", &r), 0);
    CHECK_EQ(r.journal_last_seq, 12);
    OK(pp_close(S));
    pp_journal *j;                                           /* the reader without a store */
    OK(pp_journal_open_dir(d, "PX", 12, &j));
    pp_event ev;
    REQUIRE(pp_journal_next(j, &ev) == 1);
    CHECK_EQ(ev.seq, 12); CHECK_EQ(ev.payload_len, 256);
    uint8_t want[256];
    fill_pl(want, 256, 12);
    CHECK(ev.payload && memcmp(ev.payload, want, 256) == 0);
    pp_journal_close(j);
}

static void test_payload_misuse_and_the_batch_bound(void) {
    const char *d = t_dir("ppb_payload_bad");
    pp_config c = cfg_for(d);
    pp_store *S;
    pp_book *b;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "PB", &b));
    CHECK_EQ(apply_pl(b, PP_EV_ADD, 1, PP_BUY, 100, 1, PP_PAYLOAD_MAX + 1, 1), PP_EINVAL);
    pp_event e;
    memset(&e, 0, sizeof e);
    e.type = PP_EV_ADD; e.order_id = 1; e.side = PP_BUY; e.price = 100; e.qty = 1; e.payload_len = 5;  /* no bytes */
    CHECK_EQ(pp_apply(b, &e), PP_EINVAL);
    CHECK_EQ(pp_last_seq(b), 0);
    /* a batch is one frame of at most 16 KiB: 51 events of 64 + 256 bytes fill it */
    uint32_t plen[52];
    OK(pp_batch_begin(b));
    int k;
    for (k = 0; k < 51; k++) {
        plen[k] = PP_PAYLOAD_MAX;
        int rc = apply_pl(b, PP_EV_ADD, (uint64_t)k + 1, PP_BUY, 100, 1, PP_PAYLOAD_MAX, (uint64_t)k + 1);
        CHECK_EQ(rc, 0);
        if (rc) break;
    }
    CHECK_EQ(apply_pl(b, PP_EV_ADD, 99, PP_BUY, 100, 1, 0, 52), PP_ETOOBIG);   /* not even a bare event */
    OK(pp_batch_commit(b));
    CHECK_EQ(pp_last_seq(b), 51);
    OK(apply_pl(b, PP_EV_ADD, 52, PP_BUY, 100, 1, 0, 52));  /* the add refused in the batch, alone */
    plen[51] = 0;
    OK(pp_sync(b));
    CHECK_EQ(payloads_match(S, "PB", plen, 52), 0);
    OK(pp_close(S));
    /* the per-instrument layout has no room for a payload: nothing journaled */
    const char *d1 = t_dir("ppb_payload_legacy");
    pp_config c1 = cfg_for(d1);
    c1.flags |= PP_LEGACY_LAYOUT;
    OK(pp_open(&S, &c1));
    OK(pp_book_open(S, "PL", &b));
    CHECK_EQ(apply_pl(b, PP_EV_ADD, 1, PP_BUY, 100, 1, 8, 1), PP_ENOTSUP);
    CHECK_EQ(pp_last_seq(b), 0);
    OK(apply_pl(b, PP_EV_ADD, 1, PP_BUY, 100, 1, 0, 1));
    OK(pp_close(S));
}

/* The frame checksum covers the payload: a flipped payload byte of an
 * acknowledged event is PP_ECORRUPT, never a shorter journal. */
static void test_a_damaged_payload_byte_is_corruption(void) {
    const char *d = t_dir("ppb_payload_flip");
    pp_config c = cfg_for(d);
    pp_store *S;
    pp_book *b;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "PF", &b));
    const char mark[] = "CLIENT-ORDER-7f3a9";
    for (uint64_t i = 1; i <= 20; i++) {
        pp_event e;
        memset(&e, 0, sizeof e);
        e.type = PP_EV_ADD; e.order_id = i; e.side = PP_BUY; e.price = 100; e.qty = 1;
        e.payload = mark; e.payload_len = i == 7 ? (uint32_t)sizeof mark : 3;
        OK(pp_apply(b, &e));
    }
    OK(pp_close(S));                                         /* all of it durable, under the mark */
    char seg[4096];
    snprintf(seg, sizeof seg, "%s/journal/%020u.ppj", d, 1u);
    int fd = open(seg, O_RDWR);
    REQUIRE(fd >= 0);
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    size_t n = (size_t)st.st_size;
    uint8_t *buf = (uint8_t *)malloc(n);
    REQUIRE(buf && pread(fd, buf, n, 0) == (ssize_t)n);
    uint8_t *at = (uint8_t *)memmem(buf, n, mark, sizeof mark - 1);
    CHECK(at != NULL);
    if (at) {
        off_t off = (off_t)(at - buf) + 5;
        uint8_t x = (uint8_t)(at[5] ^ 0x20);
        CHECK_EQ(pwrite(fd, &x, 1, off), 1);
    }
    free(buf);
    close(fd);
    CHECK_EQ(pp_open(&S, &c), PP_ECORRUPT);
    pp_check_result r;
    CHECK_EQ(pp_check(d, "PF", &r), PP_ECORRUPT);
}

/* The add's payload stays with its resting order: pp_find and pp_orders
 * return it, after a snapshot and a reopen too; it leaves with the order. */
typedef struct plseen { int n; uint64_t id[16]; uint32_t len[16]; int bad; } plseen;
static int visit_pl(const pp_order *o, void *ctx) {
    plseen *v = (plseen *)ctx;
    if (v->n < 16) { v->id[v->n] = o->id; v->len[v->n] = o->payload_len; }
    uint8_t want[PP_PAYLOAD_MAX];
    fill_pl(want, o->payload_len, o->id * 100);
    if (o->payload_len && (!o->payload || memcmp(o->payload, want, o->payload_len) != 0)) v->bad++;
    if (!o->payload_len && o->payload) v->bad++;
    v->n++;
    return 0;
}
static int find_pl(pp_book *b, uint64_t id, uint32_t want_len) {   /* 0: pp_find gives the add's payload */
    pp_order o;
    if (pp_find(b, id, &o) != 0 || o.payload_len != want_len) return -1;
    uint8_t want[PP_PAYLOAD_MAX];
    fill_pl(want, want_len, id * 100);
    return want_len ? (o.payload && memcmp(o.payload, want, want_len) == 0 ? 0 : -1) : (o.payload ? -1 : 0);
}
static void test_the_adds_payload_stays_with_its_order(void) {
    const char *d = t_dir("ppb_payload_book");
    pp_config c = cfg_for(d);
    pp_store *S;
    pp_book *b;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "PO", &b));
    OK(apply_pl(b, PP_EV_ADD, 1, PP_BUY, 100, 10, 17, 100));         /* tag = id * 100 */
    OK(apply_pl(b, PP_EV_ADD, 2, PP_SELL, 110, 5, 256, 200));
    OK(apply_pl(b, PP_EV_ADD, 3, PP_BUY, 99, 5, 0, 300));
    OK(pp_batch_begin(b));
    OK(apply_pl(b, PP_EV_ADD, 4, PP_SELL, 111, 5, 64, 400));
    OK(apply_pl(b, PP_EV_EXECUTE, 1, 0, 100, 3, 40, 7));              /* an execution's own payload: not the order's */
    OK(pp_batch_commit(b));
    OK(apply_pl(b, PP_EV_MODIFY, 2, 0, 112, 4, 9, 8));                /* a modify keeps the add's */
    OK(apply_pl(b, PP_EV_CANCEL, 4, 0, 0, 0, 0, 9));
    CHECK_EQ(find_pl(b, 1, 17), 0);
    CHECK_EQ(find_pl(b, 2, 256), 0);
    CHECK_EQ(find_pl(b, 3, 0), 0);
    pp_order o;
    CHECK_EQ(pp_find(b, 4, &o), PP_ENOENT);
    plseen v;
    memset(&v, 0, sizeof v);
    OK(pp_orders(b, visit_pl, &v));
    CHECK_EQ(v.n, 3); CHECK_EQ(v.bad, 0);
    OK(pp_snapshot(b));                                               /* the snapshot carries them */
    OK(apply_pl(b, PP_EV_ADD, 5, PP_BUY, 98, 1, 200, 500));           /* and the journal after it */
    OK(apply_pl(b, PP_EV_ADD, 4, PP_BUY, 97, 1, 3, 400));             /* an id again, its new payload */
    OK(pp_close(S));
    for (int round = 0; round < 2; round++) {   /* snapshot + journal; then pp_close's snapshot alone */
        OK(pp_open(&S, &c));
        OK(pp_book_open(S, "PO", &b));
        CHECK_EQ(find_pl(b, 1, 17), 0);
        CHECK_EQ(find_pl(b, 2, 256), 0);
        CHECK_EQ(find_pl(b, 3, 0), 0);
        CHECK_EQ(find_pl(b, 4, 3), 0);
        CHECK_EQ(find_pl(b, 5, 200), 0);
        memset(&v, 0, sizeof v);
        OK(pp_orders(b, visit_pl, &v));
        CHECK_EQ(v.n, 5); CHECK_EQ(v.bad, 0);
        if (round == 0) OK(pp_snapshot(b));
        OK(pp_close(S));
    }
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "PO", &b));
    OK(apply_pl(b, PP_EV_EXECUTE, 1, 0, 100, 7, 0, 10));             /* filled: it leaves, with its payload */
    CHECK_EQ(pp_find(b, 1, &o), PP_ENOENT);
    OK(apply_pl(b, PP_EV_ADD, 1, PP_SELL, 120, 1, 0, 11));            /* the id again, without one */
    CHECK_EQ(find_pl(b, 1, 0), 0);
    OK(pp_close(S));
    /* a snapshot whose payload names an order it does not hold is damage (CRC fixed) */
    pp_check_result r;
    REQUIRE(pp_check(d, "PO", &r) == 0);
    char p[4096];
    snprintf(p, sizeof p, "%s/books/PO/snapshots/%020llu.pps", d, (unsigned long long)r.newest_snapshot_seq);
    uint8_t *buf = NULL; size_t len = 0;
    REQUIRE(pp__read_file(p, &buf, &len) == 0);
    uint64_t count = pp__get64(buf + 24), plsec = pp__get64(buf + 48);
    CHECK(plsec > 0);
    if (plsec > 0 && len == PP__SNAP_HDR + count * PP__ENTRY + plsec + PP__SNAP_TAIL) {
        pp__put64(buf + PP__SNAP_HDR + count * PP__ENTRY, 777777);   /* the first payload's id */
        pp__put32(buf + len - PP__SNAP_TAIL, plg_crc32c(0, buf, len - PP__SNAP_TAIL));
        CHECK_EQ(plg_write_file_durable(p, buf, len, 0644), 0);
        CHECK_EQ(pp_check(d, "PO", &r), 0);
        CHECK_EQ(r.snapshots_corrupt, 1);
    }
    free(buf);
}

int main(void) {
    RUN(test_a_committed_batch_comes_back_whole_after_reopen);
    RUN(test_abort_leaves_nothing_and_the_book_as_before);
    RUN(test_invalid_events_inside_a_batch_are_not_part_of_it);
    RUN(test_the_per_instrument_layout_refuses_batches);
    RUN(test_durable_never_stops_inside_a_batch);
    RUN(test_the_journal_reader_returns_batch_events_one_by_one);
    RUN(test_power_cuts_never_recover_half_a_batch);
    RUN(test_payloads_are_journaled_and_read_back_verbatim);
    RUN(test_payload_misuse_and_the_batch_bound);
    RUN(test_a_damaged_payload_byte_is_corruption);
    RUN(test_the_adds_payload_stays_with_its_order);
    return t_done();
}
