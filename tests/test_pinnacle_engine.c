/* pinnacle_persist.h: what a matching engine needs from the book (issue 13).
 *   - book views (pp_top, pp_depth, pp_orders in price-time priority) equal a
 *     reference book kept here, over random events, in the per-instrument
 *     layout, format 2 (PP_STORE_JOURNAL) and strict mode, after a snapshot
 *     and after reopen; a view taken on another thread while the trading
 *     thread journals is the book after exactly the seq it reports; a
 *     pp_orders visitor may journal on the same book;
 *   - pp_wait: succeeds, times out, is woken, returns a poisoned book's error;
 *   - pp_apply with named fields; a price <= 0 is refused unless allowed;
 *   - the journal reader (format 2) gives what was applied, durable only;
 *   - the default clock (no clock_ns): cancels stamped with CLOCK_REALTIME,
 *     from the TSC once the maintainer renews its anchor, else clock_gettime.
 * Seeded: PP_ENGINE_SEED=n replays a run (the seed is printed on failure). */
#define PINNACLE_PERSIST_IMPLEMENTATION
#define PINNACLE_PERSIST_TEST_IO
#include "pinnacle_persist.h"
#include "t.h"
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

/* remove a test's scratch directory (t_dir made it) */
static void rm_dir(const char *dir) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static void quiet(void *u, int code, const char *msg) { (void)u; (void)code; (void)msg; }

/* valgrind and the sanitizer runs: fewer events */
static int quick(void) {
    const char *p = getenv("LD_PRELOAD");
    return (p && strstr(p, "valgrind")) || getenv("PLG_TEST_QUICK") != NULL;
}

static uint64_t seed0(void) {
    const char *e = getenv("PP_ENGINE_SEED");
    return e ? strtoull(e, NULL, 10) : 1313;
}

enum { L_MMAP = 1, L_STORE = 2, L_STRICT = 3 };
static const char *layout_name(int l) { return l == L_MMAP ? "per-instrument mmap" : l == L_STORE ? "format 2" : "strict"; }

static plg_config strict_lc;
static pp_config cfg_for(const char *dir, int layout) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.flags = PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT;
    c.log_fn = quiet;
    c.journal_sync_interval_ms = 2;
    c.journal_chunk_bytes = 64 << 10;
    c.journal_segment_bytes = 1 << 20;
    c.ring_entries = 1024;
    if (layout == L_STORE) c.flags |= PP_STORE_JOURNAL;
    if (layout == L_MMAP) c.flags |= PP_LEGACY_LAYOUT;     /* format 2 is a new store's default */
    if (layout == L_STRICT) {
        memset(&strict_lc, 0, sizeof strict_lc);
        strict_lc.segment_size = 1 << 20;
        strict_lc.ring_capacity = 1 << 20;
        strict_lc.log_fn = quiet;
        c.mode = PP_JOURNAL_STRICT;
        c.strict_log = &strict_lc;
    }
    return c;
}

/* ---- the reference book ---------------------------------------------------- */
#define MAXID 8192
typedef struct mo { int live; uint8_t side; int64_t price, qty; uint64_t seq; } mo;
typedef struct mev { int type; uint64_t id; uint8_t side; int64_t price, qty; } mev;
typedef struct model { mo o[MAXID]; uint64_t next_id, seq; } model;

static void m_apply(model *m, const mev *e) {
    mo *o = &m->o[e->id];
    m->seq++;
    switch (e->type) {
    case PP_EV_ADD: o->live = 1; o->side = e->side; o->price = e->price; o->qty = e->qty; o->seq = m->seq; break;
    case PP_EV_CANCEL: o->live = 0; break;
    case PP_EV_EXECUTE: o->qty -= e->qty; if (!o->qty) o->live = 0; break;
    default:
        if (e->price != o->price || e->qty > o->qty) o->seq = m->seq;
        o->price = e->price; o->qty = e->qty;
        break;
    }
}

static uint64_t m_live(const model *m, uint64_t *ids) {
    uint64_t n = 0;
    for (uint64_t id = 1; id < m->next_id; id++) if (m->o[id].live) { if (ids) ids[n] = id; n++; }
    return n;
}

/* a random valid event; ids are never reused (an id's slot is its history) */
static void m_gen(model *m, uint64_t *rng, mev *e) {
    static uint64_t ids[MAXID];
    memset(e, 0, sizeof *e);
    uint64_t n = m_live(m, ids), r = t_rand(rng) % 100;
    if (m->next_id < MAXID - 1 && (n == 0 || r < (n > 250 ? 30u : 55u))) {
        e->type = PP_EV_ADD; e->id = m->next_id++;
        e->side = (t_rand(rng) & 1) ? PP_BUY : PP_SELL;
        e->price = 100 + (int64_t)(t_rand(rng) % 24);     /* few prices: many orders per level */
        e->qty = 1 + (int64_t)(t_rand(rng) % 20);
        return;
    }
    if (n == 0) { e->type = 0; return; }
    e->id = ids[t_rand(rng) % n];
    const mo *o = &m->o[e->id];
    r = t_rand(rng) % 3;
    if (r == 0) e->type = PP_EV_CANCEL;
    else if (r == 1) { e->type = PP_EV_EXECUTE; e->qty = 1 + (int64_t)(t_rand(rng) % (uint64_t)o->qty); e->price = o->price; }
    else {
        e->type = PP_EV_MODIFY;
        e->price = o->price + (int64_t)(t_rand(rng) % 3) - 1;
        if (e->price <= 0) e->price = 1;
        e->qty = 1 + (int64_t)(t_rand(rng) % 30);
    }
}

static int call(pp_book *b, const mev *e) {
    if (e->id % 3 == 0) {             /* a third of the orders go through pp_apply, named fields */
        pp_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = e->type; ev.order_id = e->id; ev.price = e->price; ev.qty = e->qty;
        if (e->type == PP_EV_ADD) { ev.side = e->side; ev.ts_ns = e->id; }
        return pp_apply(b, &ev);
    }
    switch (e->type) {
    case PP_EV_ADD: { pp_order o; memset(&o, 0, sizeof o); o.id = e->id; o.price = e->price; o.qty = e->qty; o.side = e->side; o.ts_ns = e->id; return pp_add(b, &o); }
    case PP_EV_CANCEL: return pp_cancel(b, e->id);
    case PP_EV_EXECUTE: return pp_execute(b, e->id, e->qty, e->price);
    default: return pp_modify(b, e->id, e->price, e->qty);
    }
}

/* journal e on b (strict mode: retry a full ring) and on the model */
static int step(pp_book *b, model *m, const mev *e) {
    int rc;
    while ((rc = call(b, e)) == PP_EFULL) usleep(50);
    if (rc == 0) m_apply(m, e);
    return rc;
}

/* price-time priority, as pp_orders documents it */
static const model *sort_m;
static int by_priority(const void *a, const void *c) {
    const mo *x = &sort_m->o[*(const uint64_t *)a], *y = &sort_m->o[*(const uint64_t *)c];
    int xs = x->side == PP_SELL, ys = y->side == PP_SELL;
    if (xs != ys) return xs - ys;
    if (x->price != y->price) return (xs ? x->price < y->price : x->price > y->price) ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* the model's levels of one side, best first */
static size_t m_levels(const model *m, int side, pp_level *lv, size_t cap) {
    static uint64_t ids[MAXID];
    uint64_t n = m_live(m, ids);
    sort_m = m;
    qsort(ids, (size_t)n, sizeof *ids, by_priority);
    size_t k = 0;
    for (uint64_t i = 0; i < n; i++) {
        const mo *o = &m->o[ids[i]];
        if (o->side != side) continue;
        if (k && lv[k - 1].price == o->price) { lv[k - 1].qty += o->qty; lv[k - 1].orders++; continue; }
        if (k == cap) break;
        lv[k].price = o->price; lv[k].qty = o->qty; lv[k].orders = 1; lv[k].seq = m->seq;
        k++;
    }
    return k;
}

typedef struct ovis { pp_order o[MAXID]; uint64_t n; } ovis;
static int collect(const pp_order *o, void *ctx) {
    ovis *v = (ovis *)ctx;
    if (v->n < MAXID) v->o[v->n] = *o;
    v->n++;
    return 0;
}

/* every view of the book equals the model; 1 if so (failures printed) */
static int views_match(pp_book *b, const model *m, const char *where) {
    static pp_level want[64], got[64];
    static uint64_t ids[MAXID];
    static ovis v;
    int good = 1;
    for (int side = PP_BUY; side <= PP_SELL; side++) {
        size_t wn = m_levels(m, side, want, 64);
        int gn = pp_depth(b, side, got, 64);
        if (gn != (int)wn) { good = 0; fprintf(stderr, "    %s: side %d depth %d levels, the model %zu\n", where, side, gn, wn); continue; }
        for (size_t i = 0; i < wn; i++)
            if (got[i].price != want[i].price || got[i].qty != want[i].qty || got[i].orders != want[i].orders || got[i].seq != m->seq) {
                good = 0;
                fprintf(stderr, "    %s: side %d level %zu: {%lld, %lld, %llu, seq %llu}, the model {%lld, %lld, %llu, seq %llu}\n", where, side, i,
                        (long long)got[i].price, (long long)got[i].qty, (unsigned long long)got[i].orders, (unsigned long long)got[i].seq,
                        (long long)want[i].price, (long long)want[i].qty, (unsigned long long)want[i].orders, (unsigned long long)m->seq);
                break;
            }
        if (wn > 2 && pp_depth(b, side, got, 2) != 2) { good = 0; fprintf(stderr, "    %s: depth of 2 did not give 2\n", where); }
    }
    pp_level bid, ask, wb, wa;
    memset(&wb, 0, sizeof wb); memset(&wa, 0, sizeof wa);
    m_levels(m, PP_BUY, &wb, 1); m_levels(m, PP_SELL, &wa, 1);
    wb.seq = wa.seq = m->seq;
    if (pp_top(b, &bid, &ask) != 0 || memcmp(&bid, &wb, sizeof bid) != 0 || memcmp(&ask, &wa, sizeof ask) != 0) {
        good = 0;
        fprintf(stderr, "    %s: top bid {%lld, %lld, %llu} ask {%lld, %lld, %llu}, the model bid {%lld, %lld, %llu} ask {%lld, %lld, %llu}\n", where,
                (long long)bid.price, (long long)bid.qty, (unsigned long long)bid.orders, (long long)ask.price, (long long)ask.qty,
                (unsigned long long)ask.orders, (long long)wb.price, (long long)wb.qty, (unsigned long long)wb.orders, (long long)wa.price,
                (long long)wa.qty, (unsigned long long)wa.orders);
    }
    /* pp_orders: the live orders in price-time priority */
    uint64_t n = m_live(m, ids);
    sort_m = m;
    qsort(ids, (size_t)n, sizeof *ids, by_priority);
    v.n = 0;
    if (pp_orders(b, collect, &v) != 0 || v.n != n) { fprintf(stderr, "    %s: pp_orders visited %llu, the model has %llu\n", where, (unsigned long long)v.n, (unsigned long long)n); return 0; }
    for (uint64_t i = 0; i < n; i++) {
        const mo *o = &m->o[ids[i]];
        const pp_order *g = &v.o[i];
        if (g->id != ids[i] || g->price != o->price || g->qty != o->qty || g->side != o->side || g->seq != o->seq) {
            fprintf(stderr, "    %s: pp_orders #%llu is id %llu (price %lld seq %llu), the model's id %llu (price %lld seq %llu)\n", where,
                    (unsigned long long)i, (unsigned long long)g->id, (long long)g->price, (unsigned long long)g->seq,
                    (unsigned long long)ids[i], (long long)o->price, (unsigned long long)o->seq);
            return 0;
        }
    }
    return good;
}

static model M, M2;

/* Random events on a book, its views checked against the model every few
 * events (the levels kept event by event), across a snapshot and two
 * reopens (the levels made from the recovered shadow); a second book is
 * first viewed after all its events (the levels made at once). */
static void run_views(int layout) {
    char name[64];
    snprintf(name, sizeof name, "pp_engine_views_%d", layout);
    const char *dir = t_dir(name);
    pp_config c = cfg_for(dir, layout);
    pp_store *s; pp_book *b, *late;
    REQUIRE(pp_open(&s, &c) == 0);
    int rc = pp_book_open(s, "VIEW", &b);
    if (layout == L_STRICT && rc == PP_ELOG && t_has_odirect(dir) == 0) { pp_close(s); SKIP("no O_DIRECT here (strict mode's picolog needs it)"); }
    REQUIRE(rc == 0);
    REQUIRE(pp_book_open(s, "LATE", &late) == 0);
    memset(&M, 0, sizeof M); memset(&M2, 0, sizeof M2);
    M.next_id = M2.next_id = 1;
    uint64_t seed = seed0() * 10 + (uint64_t)layout, rng = seed, rng2 = seed ^ 0x5555;
    int events = quick() ? 1500 : 4000, bad = 0;
    pp_level lv;
    memset(&lv, 0xff, sizeof lv);
    CHECK_EQ(pp_top(b, &lv, NULL), 0);                        /* empty book: an empty level at seq 0 */
    CHECK_EQ(lv.orders, 0); CHECK_EQ(lv.qty, 0); CHECK_EQ(lv.seq, 0);
    CHECK_EQ(pp_depth(b, PP_BUY, &lv, 1), 0);
    CHECK_EQ(pp_depth(b, 3, &lv, 1), PP_EINVAL);
    for (int i = 1; i <= events && !bad; i++) {
        mev e;
        m_gen(&M, &rng, &e);
        if (e.type) CHECK_EQ(step(b, &M, &e), 0);
        m_gen(&M2, &rng2, &e);
        if (e.type) CHECK_EQ(step(late, &M2, &e), 0);
        if (i % 17 == 0 && !views_match(b, &M, "running")) bad = 1;
        if (i == events / 3) CHECK_EQ(pp_snapshot(b), 0);
        if (i == events / 2 || i == 3 * events / 4) {       /* reopen: the levels come from the recovered shadow */
            CHECK_EQ(pp_close(s), 0);
            REQUIRE(pp_open(&s, &c) == 0);
            REQUIRE(pp_book_open(s, "VIEW", &b) == 0);
            REQUIRE(pp_book_open(s, "LATE", &late) == 0);
            CHECK_EQ(pp_last_seq(b), M.seq);
            if (!views_match(b, &M, "after reopen")) bad = 1;
        }
    }
    CHECK(!bad);
    CHECK(views_match(b, &M, "at the end"));
    CHECK(views_match(late, &M2, "first view at the end"));
    CHECK(M.seq > (uint64_t)events / 2);
    CHECK_EQ(pp_close(s), 0);
    if (bad || t__cur_failed) fprintf(stderr, "  %s: replay with PP_ENGINE_SEED=%llu\n", layout_name(layout), (unsigned long long)seed0());
    rm_dir(dir);
}
static void test_views_match_a_reference_book(void) { run_views(L_MMAP); }
static void test_views_match_a_reference_book_format2(void) { run_views(L_STORE); }
static void test_views_match_a_reference_book_strict(void) { run_views(L_STRICT); }

/* A view taken on another thread while the trading thread journals: each is
 * the book after exactly the seq it reports (the model replayed to that seq
 * has the same top), and the seqs never go back. */
#define NSEEN 4096
typedef struct seen { pp_level bid, ask; } seen;
typedef struct viewer { pp_book *b; int stop, took; seen s[NSEEN]; int n, err; } viewer;
static void *viewer_main(void *arg) {
    viewer *v = (viewer *)arg;
    while (!__atomic_load_n(&v->stop, __ATOMIC_ACQUIRE) && v->n < NSEEN) {
        seen x;
        int rc = pp_top(v->b, &x.bid, &x.ask);
        if (rc) { v->err = rc; break; }
        if (x.bid.seq != x.ask.seq) { v->err = -1; break; }
        if (v->n && x.bid.seq < v->s[v->n - 1].bid.seq) { v->err = -3; break; }   /* went back */
        if (v->n && x.bid.seq == v->s[v->n - 1].bid.seq) { sched_yield(); continue; }
        v->s[v->n++] = x;
        if (v->n == 1) __atomic_store_n(&v->took, 1, __ATOMIC_RELEASE);
        if (v->n % 64 == 0) { pp_level d[8]; if (pp_depth(v->b, PP_SELL, d, 8) < 0) { v->err = -2; break; } }
    }
    __atomic_store_n(&v->took, 1, __ATOMIC_RELEASE);     /* or it ended without a view (an error) */
    return NULL;
}

static mev evs[40000];
static viewer V;
static void run_concurrent(int layout) {
    char name[64];
    snprintf(name, sizeof name, "pp_engine_conc_%d", layout);
    const char *dir = t_dir(name);
    pp_config c = cfg_for(dir, layout);
    pp_store *s; pp_book *b;
    REQUIRE(pp_open(&s, &c) == 0);
    REQUIRE(pp_book_open(s, "CONC", &b) == 0);
    memset(&M, 0, sizeof M);
    M.next_id = 1;
    uint64_t rng = seed0() * 7 + (uint64_t)layout;
    int events = quick() ? 4000 : 20000, nev = 0;
    memset(&V, 0, sizeof V);
    V.b = b;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, viewer_main, &V) == 0);
    for (int i = 0; i < events; i++) {
        mev e;
        m_gen(&M, &rng, &e);
        if (!e.type) continue;
        if (step(b, &M, &e) != 0) { CHECK(0); break; }
        evs[nev++] = e;
    }
    /* the viewer may not have run yet (valgrind runs one thread at a
     * time): let it take at least one view before it is stopped */
    for (int w = 0; w < 10000 && !__atomic_load_n(&V.took, __ATOMIC_ACQUIRE); w++) usleep(1000);
    __atomic_store_n(&V.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    CHECK_EQ(V.err, 0);
    CHECK(V.n > 0);
    /* replay the model and compare each view at its seq */
    memset(&M, 0, sizeof M);
    M.next_id = 1;
    int k = 0, bad = 0, distinct = 0;
    uint64_t prev = 0;
    for (int i = 0; i < V.n && !bad; i++) if (V.s[i].bid.seq < prev) bad = 1; else prev = V.s[i].bid.seq;
    CHECK(!bad);
    for (int i = 0; i <= nev && !bad; i++) {
        while (k < V.n && V.s[k].bid.seq == M.seq) {
            pp_level wb, wa;
            memset(&wb, 0, sizeof wb); memset(&wa, 0, sizeof wa);
            m_levels(&M, PP_BUY, &wb, 1); m_levels(&M, PP_SELL, &wa, 1);
            const seen *x = &V.s[k];
            if (x->bid.price != wb.price || x->bid.qty != wb.qty || x->bid.orders != wb.orders || x->ask.price != wa.price ||
                x->ask.qty != wa.qty || x->ask.orders != wa.orders) {
                bad = 1;
                fprintf(stderr, "    view at seq %llu differs from the model there\n", (unsigned long long)M.seq);
            }
            if (k == 0 || V.s[k - 1].bid.seq != x->bid.seq) distinct++;
            k++;
        }
        if (i < nev) { M.next_id = evs[i].id + 1 > M.next_id ? evs[i].id + 1 : M.next_id; m_apply(&M, &evs[i]); }
    }
    CHECK(!bad);
    CHECK_EQ(k, V.n);                   /* every view's seq was one of the book's */
    printf("    %s: %d views at %d distinct seqs checked\n", layout_name(layout), V.n, distinct);
    CHECK_EQ(pp_close(s), 0);
    if (bad || t__cur_failed) fprintf(stderr, "  replay with PP_ENGINE_SEED=%llu\n", (unsigned long long)seed0());
    rm_dir(dir);
}
static void test_views_on_another_thread_are_consistent(void) { run_concurrent(L_MMAP); }
static void test_views_on_another_thread_are_consistent_format2(void) { run_concurrent(L_STORE); }

/* ---- pp_wait ---------------------------------------------------------------- */
static pp_order order_of(uint64_t id) {
    pp_order o;
    memset(&o, 0, sizeof o);
    o.id = id; o.price = 1000 + (int64_t)(id % 7); o.qty = 5; o.side = (id & 1) ? PP_BUY : PP_SELL;
    return o;
}

/* A wait that succeeds: at once when durable, after the background sync
 * otherwise; a seq never journaled is PP_EINVAL. */
static void run_wait_succeeds(int layout) {
    char name[64];
    snprintf(name, sizeof name, "pp_engine_wait_%d", layout);
    const char *dir = t_dir(name);
    pp_config c = cfg_for(dir, layout);
    pp_store *s; pp_book *b;
    REQUIRE(pp_open(&s, &c) == 0);
    int rc = pp_book_open(s, "WAIT", &b);
    if (layout == L_STRICT && rc == PP_ELOG && t_has_odirect(dir) == 0) { pp_close(s); rm_dir(dir); SKIP("no O_DIRECT here (strict mode's picolog needs it)"); }
    REQUIRE(rc == 0);
    CHECK_EQ(pp_wait(b, 0, 0), 0);                   /* seq 0: nothing to wait for */
    CHECK_EQ(pp_wait(b, 1, 1000000), PP_EINVAL);     /* not journaled yet */
    for (uint64_t id = 1; id <= 200; id++) {
        pp_order o = order_of(id);
        while ((rc = pp_add(b, &o)) == PP_EFULL) usleep(50);
        REQUIRE(rc == 0);
        if (id % 40 == 0) {                            /* the background sync (2 ms) gets there */
            CHECK_EQ(pp_wait(b, pp_last_seq(b), 30ll * 1000000000ll), 0);
            CHECK(pp_durable(b) >= id);
        }
    }
    CHECK_EQ(pp_wait(b, pp_last_seq(b), -1), 0);     /* no timeout */
    CHECK_EQ(pp_wait(b, 150, 0), 0);                 /* durable already: 0 even with no time to wait */
    CHECK_EQ(pp_wait(b, pp_last_seq(b) + 1, -1), PP_EINVAL);
    CHECK_EQ(pp_close(s), 0);
    rm_dir(dir);
}
static void test_wait_returns_once_durable(void) { run_wait_succeeds(L_MMAP); }
static void test_wait_returns_once_durable_format2(void) { run_wait_succeeds(L_STORE); }
static void test_wait_returns_once_durable_strict(void) { run_wait_succeeds(L_STRICT); }

/* With a 60 s sync interval nothing becomes durable by itself after the
 * syncer's first round: a wait times out (PP_ETIMEDOUT, the seq still not
 * durable), and a waiter on another thread is woken by a pp_sync. */
typedef struct waiter { pp_book *b; uint64_t seq; int rc, done; } waiter;
static void *waiter_main(void *arg) {
    waiter *w = (waiter *)arg;
    w->rc = pp_wait(w->b, w->seq, 60ll * 1000000000ll);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return NULL;
}
/* The waiter was woken, not left to its 60 s timeout: done within 10 s (a
 * lost wake-up would still return the right code, at the timeout). */
static int woken(waiter *w) {
    for (int i = 0; i < 1000 && !__atomic_load_n(&w->done, __ATOMIC_ACQUIRE); i++) usleep(10000);
    return __atomic_load_n(&w->done, __ATOMIC_ACQUIRE);
}
static void run_wait_times_out(int layout) {
    char name[64];
    snprintf(name, sizeof name, "pp_engine_wait_to_%d", layout);
    const char *dir = t_dir(name);
    pp_config c = cfg_for(dir, layout);
    c.journal_sync_interval_ms = 60000;
    pp_store *s; pp_book *b;
    REQUIRE(pp_open(&s, &c) == 0);
    REQUIRE(pp_book_open(s, "SLOW", &b) == 0);
    int timeouts = 0, other = 0;
    uint64_t id = 1;
    for (int i = 0; i < 20 && timeouts < 3; i++) {   /* the syncer's first round may catch the first ones */
        pp_order o = order_of(id++);
        REQUIRE(pp_add(b, &o) == 0);
        uint64_t seq = pp_last_seq(b);
        int rc = pp_wait(b, seq, i & 1 ? 0 : 20000000);
        if (rc == PP_ETIMEDOUT) timeouts++;
        else if (rc != 0) other++;
    }
    CHECK_EQ(timeouts, 3);
    CHECK_EQ(other, 0);
    /* a waiter blocks until pp_sync makes its seq durable */
    pp_order o = order_of(id++);
    REQUIRE(pp_add(b, &o) == 0);
    waiter w = {b, pp_last_seq(b), 1, 0};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, waiter_main, &w) == 0);
    usleep(20000);
    /* still waiting, unless the syncer's first round came this late (a loaded machine) */
    if (__atomic_load_n(&w.done, __ATOMIC_ACQUIRE)) printf("    the background sync got there first: no wake-up tested\n");
    CHECK_EQ(pp_sync(b), 0);
    CHECK(woken(&w));
    pthread_join(t, NULL);
    CHECK_EQ(w.rc, 0);
    CHECK(pp_durable(b) >= w.seq);
    CHECK_EQ(pp_close(s), 0);
    rm_dir(dir);
}
static void test_wait_times_out_and_is_woken(void) { run_wait_times_out(L_MMAP); }
static void test_wait_times_out_and_is_woken_format2(void) { run_wait_times_out(L_STORE); }

/* A failed msync poisons the book (format 2: the store journal): a waiter
 * gets that error, not a timeout, and so does every later wait. */
static int fail_sync;
static int io_msync(void *ctx, int fd, void *addr, size_t len, int64_t off) {
    (void)ctx; (void)off;
    if (__atomic_load_n(&fail_sync, __ATOMIC_ACQUIRE)) { errno = EIO; return -1; }
    (void)fd;
    return msync(addr, len, MS_SYNC);
}
static int io_fdatasync(void *ctx, int fd) {
    (void)ctx;
    if (__atomic_load_n(&fail_sync, __ATOMIC_ACQUIRE)) { errno = EIO; return -1; }
    return fdatasync(fd);
}
static void run_wait_poisoned(int layout) {
    char name[64];
    snprintf(name, sizeof name, "pp_engine_wait_eio_%d", layout);
    const char *dir = t_dir(name);
    pp_config c = cfg_for(dir, layout);
    c.journal_sync_interval_ms = 60000;
    static pp_io io;
    memset(&io, 0, sizeof io);
    io.msync = io_msync; io.fdatasync = io_fdatasync;
    __atomic_store_n(&fail_sync, 0, __ATOMIC_RELEASE);
    pp_test_set_io(&io);
    pp_store *s; pp_book *b;
    int rc = pp_open(&s, &c);
    if (rc) { pp_test_set_io(NULL); REQUIRE(rc == 0); }
    rc = pp_book_open(s, "EIO", &b);
    if (rc) { pp_close(s); pp_test_set_io(NULL); REQUIRE(rc == 0); }
    pp_order o = order_of(1);
    CHECK_EQ(pp_add(b, &o), 0);
    CHECK_EQ(pp_sync(b), 0);
    /* from here every sync fails, so seq 2 can never become durable */
    __atomic_store_n(&fail_sync, 1, __ATOMIC_RELEASE);
    o = order_of(2);
    CHECK_EQ(pp_add(b, &o), 0);
    uint64_t seq = pp_last_seq(b);
    waiter w = {b, seq, 1, 0};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, waiter_main, &w) == 0);
    usleep(20000);
    CHECK_EQ(pp_sync(b), PP_EIO);                    /* the sync fails: poisoned */
    CHECK(woken(&w));
    pthread_join(t, NULL);
    CHECK_EQ(w.rc, PP_EIO);
    CHECK_EQ(pp_wait(b, seq, 1000000), PP_EIO);
    CHECK_EQ(pp_wait(b, 1, 0), 0);                   /* what was durable stays so */
    pp_close(s);
    pp_test_set_io(NULL);
    rm_dir(dir);
}
static void test_wait_returns_the_error_of_a_poisoned_book(void) { run_wait_poisoned(L_MMAP); }
static void test_wait_returns_the_error_of_a_poisoned_store_format2(void) { run_wait_poisoned(L_STORE); }

/* ---- pp_apply and prices ---------------------------------------------------- */
static int orders_of(pp_book *b, pp_order *o, int cap) {
    static ovis v;
    v.n = 0;
    if (pp_orders(b, collect, &v) != 0) return -1;
    for (uint64_t i = 0; i < v.n && (int)i < cap; i++) o[i] = v.o[i];
    return (int)v.n;
}

/* The fill price of an execution was not checked: -999999 was journaled.
 * Now a price <= 0 (fill, limit or new price) is PP_EINVAL and journals
 * nothing, unless the store allows it. */
static void test_execute_refuses_a_nonpositive_fill_price(void) {
    const char *dir = t_dir("pp_engine_price");
    pp_config c = cfg_for(dir, t_pp_format() == 2 ? L_STORE : L_MMAP);
    pp_store *s; pp_book *b;
    REQUIRE(pp_open(&s, &c) == 0);
    REQUIRE(pp_book_open(s, "PX", &b) == 0);
    pp_order o = order_of(7);
    REQUIRE(pp_add(b, &o) == 0);
    uint64_t seq = pp_last_seq(b);
    CHECK_EQ(pp_execute(b, 7, 2, -999999), PP_EINVAL);
    CHECK_EQ(pp_execute(b, 7, 2, 0), PP_EINVAL);
    CHECK_EQ(pp_modify(b, 7, -1, 3), PP_EINVAL);
    o = order_of(8); o.price = 0;
    CHECK_EQ(pp_add(b, &o), PP_EINVAL);
    CHECK_EQ(pp_last_seq(b), seq);                    /* nothing journaled */
    pp_order got[4];
    CHECK_EQ(orders_of(b, got, 4), 1);
    CHECK_EQ(got[0].qty, 5);
    CHECK_EQ(pp_execute(b, 7, 2, 1000), 0);           /* a valid fill still goes */
    CHECK_EQ(pp_last_seq(b), seq + 1);
    CHECK_EQ(pp_close(s), 0);
    /* with PP_ALLOW_NONPOSITIVE_PRICES they are journaled and recovered */
    c.flags |= PP_ALLOW_NONPOSITIVE_PRICES;
    REQUIRE(pp_open(&s, &c) == 0);
    REQUIRE(pp_book_open(s, "PX", &b) == 0);
    o = order_of(9); o.price = -5; o.side = PP_BUY;
    CHECK_EQ(pp_add(b, &o), 0);
    o = order_of(11); o.price = 0; o.side = PP_BUY;
    CHECK_EQ(pp_add(b, &o), 0);
    CHECK_EQ(pp_execute(b, 9, 1, -5), 0);
    CHECK_EQ(pp_modify(b, 7, -3, 3), 0);
    CHECK_EQ(pp_close(s), 0);
    REQUIRE(pp_open(&s, &c) == 0);
    REQUIRE(pp_book_open(s, "PX", &b) == 0);
    pp_level lv[4];
    CHECK_EQ(pp_depth(b, PP_BUY, lv, 4), 3);           /* bids, best first: 0, -3 (id 7 is a buy), -5 */
    CHECK_EQ(lv[0].price, 0); CHECK_EQ(lv[1].price, -3); CHECK_EQ(lv[2].price, -5);
    CHECK_EQ(lv[2].qty, 4);
    CHECK_EQ(pp_close(s), 0);
    rm_dir(dir);
}

/* Named fields: the call of the issue, pp_modify(b, 7, 2, 450030) (price and
 * qty swapped), cannot be written with pp_apply; fields a type does not use
 * must be 0; unknown and market-data types are refused; nothing invalid is
 * journaled. A cancel/execute/modify's ts_ns 0 takes the engine clock. */
static uint64_t fake_now;
static uint64_t fake_clock(void *u) { (void)u; return fake_now; }
static void test_apply_takes_named_fields_and_refuses_misuse(void) {
    const char *dir = t_dir("pp_engine_apply");
    pp_config c = cfg_for(dir, t_pp_format() == 2 ? L_STORE : L_MMAP);
    c.clock_ns = fake_clock;
    fake_now = 777;
    pp_store *s; pp_book *b;
    REQUIRE(pp_open(&s, &c) == 0);
    REQUIRE(pp_book_open(s, "APPLY", &b) == 0);
    pp_event e;
    memset(&e, 0, sizeof e);
    e.type = PP_EV_ADD; e.order_id = 7; e.side = PP_SELL; e.price = 450000; e.qty = 2; e.ts_ns = 55;
    CHECK_EQ(pp_apply(b, &e), 0);
    CHECK_EQ(pp_apply(b, &e), PP_EEXIST);
    memset(&e, 0, sizeof e);
    e.type = PP_EV_MODIFY; e.order_id = 7; e.price = 450030; e.qty = 2;
    CHECK_EQ(pp_apply(b, &e), 0);
    pp_order o;
    CHECK_EQ(pp_find(b, 7, &o), 0);
    CHECK_EQ(o.price, 450030); CHECK_EQ(o.qty, 2); CHECK_EQ(o.ts_ns, 55); CHECK_EQ(o.side, PP_SELL);
    uint64_t seq = pp_last_seq(b);
    CHECK_EQ(seq, 2);
    /* misuse: each PP_EINVAL (or the documented code), nothing journaled */
    pp_event bad[10];
    memset(bad, 0, sizeof bad);
    bad[0].type = PP_EV_CANCEL; bad[0].order_id = 7; bad[0].qty = 1;                     /* a cancel has no qty */
    bad[1].type = PP_EV_EXECUTE; bad[1].order_id = 7; bad[1].qty = 1; bad[1].price = 450030; bad[1].side = PP_BUY;  /* no side */
    bad[2].type = PP_EV_EXECUTE; bad[2].order_id = 7; bad[2].qty = 1;                   /* price 0 */
    bad[3].type = PP_EV_MODIFY; bad[3].order_id = 7; bad[3].price = 450030;             /* qty 0 */
    bad[4].type = 5; bad[4].order_id = 7; bad[4].price = 1; bad[4].qty = 1;             /* market data */
    bad[5].type = 0; bad[5].order_id = 7;
    bad[6].type = PP_EV_ADD; bad[6].order_id = 0; bad[6].side = PP_BUY; bad[6].price = 1; bad[6].qty = 1;   /* id 0 */
    bad[7].type = PP_EV_ADD; bad[7].order_id = 8; bad[7].side = 3; bad[7].price = 1; bad[7].qty = 1;        /* side */
    bad[8].type = PP_EV_CANCEL; bad[8].order_id = 7; bad[8].side = PP_SELL;              /* a cancel has no side */
    bad[9].type = PP_EV_CANCEL; bad[9].order_id = 7; bad[9].price = 450030;             /* nor a price */
    for (int i = 0; i < 10; i++) CHECK_EQ(pp_apply(b, &bad[i]), PP_EINVAL);
    CHECK_EQ(pp_apply(b, NULL), PP_EINVAL);
    CHECK_EQ(pp_apply(NULL, &e), PP_EINVAL);
    memset(&e, 0, sizeof e);
    e.type = PP_EV_EXECUTE; e.order_id = 7; e.qty = 3; e.price = 450030;
    CHECK_EQ(pp_apply(b, &e), PP_EOVERFILL);
    e.order_id = 9; e.qty = 1;
    CHECK_EQ(pp_apply(b, &e), PP_ENOENT);
    CHECK_EQ(pp_last_seq(b), seq);
    /* valid again: an execute with its own timestamp, a cancel on the clock */
    e.order_id = 7; e.qty = 1; e.ts_ns = 123456;
    CHECK_EQ(pp_apply(b, &e), 0);
    memset(&e, 0, sizeof e);
    e.type = PP_EV_CANCEL; e.order_id = 7;
    CHECK_EQ(pp_apply(b, &e), 0);
    CHECK_EQ(pp_last_seq(b), seq + 2);
    CHECK_EQ(pp_find(b, 7, &o), PP_ENOENT);
    CHECK_EQ(pp_close(s), 0);
    rm_dir(dir);
}

/* ---- the journal reader -------------------------------------------------------- */
/* what the test journaled on a book: ev[s - 1] is seq s */
typedef struct jlog { pp_event ev[20000]; uint64_t n; } jlog;
static jlog JA, JB;
static void jlog_push(jlog *l, const mev *e, uint64_t seq, uint64_t ts) {
    pp_event *x = &l->ev[l->n++];
    memset(x, 0, sizeof *x);
    x->type = e->type; x->order_id = e->id; x->seq = seq; x->ts_ns = ts;
    if (e->type == PP_EV_ADD) x->side = e->side;
    if (e->type != PP_EV_CANCEL) { x->price = e->price; x->qty = e->qty; }
}
/* journal e with pp_apply and an explicit timestamp (adds: the order's) */
static int apply_ts(pp_book *b, model *m, jlog *l, const mev *e, uint64_t ts) {
    pp_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = e->type; ev.order_id = e->id; ev.price = e->price; ev.qty = e->qty; ev.ts_ns = ts;
    if (e->type == PP_EV_ADD) ev.side = e->side;
    int rc = pp_apply(b, &ev);
    if (rc == 0) { m_apply(m, e); jlog_push(l, e, pp_last_seq(b), ts); }
    return rc;
}
/* the reader's events of inst from from_seq equal l's; returns how many */
static int64_t read_all(pp_store *s, const char *inst, uint64_t from_seq, const jlog *l) {
    pp_journal *j;
    int rc = pp_journal_open(s, inst, from_seq, &j);
    if (rc) { fprintf(stderr, "    pp_journal_open %s: %s\n", inst, pp_strerror(rc)); return rc; }
    pp_event ev;
    int64_t k = 0;
    uint64_t want = from_seq ? from_seq : 1;
    while ((rc = pp_journal_next(j, &ev)) == 1) {
        if (ev.seq != want || want > l->n || memcmp(&ev, &l->ev[want - 1], sizeof ev) != 0) {
            fprintf(stderr, "    %s: event %lld is seq %llu type %d id %llu, expected seq %llu\n", inst, (long long)k,
                    (unsigned long long)ev.seq, ev.type, (unsigned long long)ev.order_id, (unsigned long long)want);
            pp_journal_close(j);
            return -1;
        }
        k++; want++;
    }
    pp_journal_close(j);
    return rc == 0 ? k : rc;
}

/* Two books fed through pp_apply with explicit timestamps (and the engine
 * clock for some): the reader gives each book's events, in seq order, with
 * their fields and timestamps, from any seq, also after reopen; replayed
 * into a new store they give the same book. */
static void test_journal_reader_returns_what_was_applied(void) {
    const char *dir = t_dir("pp_engine_reader");
    pp_config c = cfg_for(dir, L_STORE);
    c.clock_ns = fake_clock;
    pp_store *s; pp_book *a, *b;
    REQUIRE(pp_open(&s, &c) == 0);
    REQUIRE(pp_book_open(s, "AAA", &a) == 0);
    REQUIRE(pp_book_open(s, "BBB", &b) == 0);
    memset(&M, 0, sizeof M); memset(&M2, 0, sizeof M2);
    M.next_id = M2.next_id = 1;
    JA.n = JB.n = 0;
    uint64_t rng = seed0() * 3 + 1;
    int events = quick() ? 1000 : 5000, bad = 0;
    for (int i = 0; i < events && !bad; i++) {
        mev e;
        model *m = i & 1 ? &M2 : &M;
        m_gen(m, &rng, &e);
        if (!e.type) continue;
        fake_now = 5000000 + (uint64_t)i;
        uint64_t ts = (i % 5 == 0 && e.type != PP_EV_ADD) ? 0 : 1000000 + (uint64_t)i;   /* 0: the engine clock */
        if (apply_ts(i & 1 ? b : a, m, i & 1 ? &JB : &JA, &e, ts) != 0) bad = 1;
        if (ts == 0) (i & 1 ? &JB : &JA)->ev[(i & 1 ? &JB : &JA)->n - 1].ts_ns = fake_now;
        if (i == events / 2) { CHECK_EQ(pp_close(s), 0); REQUIRE(pp_open(&s, &c) == 0); REQUIRE(pp_book_open(s, "AAA", &a) == 0); REQUIRE(pp_book_open(s, "BBB", &b) == 0); }
    }
    CHECK(!bad);
    CHECK_EQ(pp_sync(a), 0);
    CHECK_EQ(pp_sync(b), 0);
    CHECK_EQ(read_all(s, "AAA", 1, &JA), (int64_t)JA.n);
    CHECK_EQ(read_all(s, "BBB", 0, &JB), (int64_t)JB.n);
    CHECK_EQ(read_all(s, "AAA", JA.n / 3, &JA), (int64_t)(JA.n - JA.n / 3 + 1));
    CHECK_EQ(read_all(s, "AAA", JA.n + 1, &JA), 0);
    pp_journal *j;
    CHECK_EQ(pp_journal_open(s, "NOPE", 1, &j), PP_ENOENT);
    CHECK_EQ(pp_journal_open(s, "../x", 1, &j), PP_ENAME);
    CHECK_EQ(pp_close(s), 0);
    REQUIRE(pp_open(&s, &c) == 0);                   /* after reopen (recovery sealed the last segment) */
    CHECK_EQ(read_all(s, "BBB", 1, &JB), (int64_t)JB.n);
    /* the events read, applied to a new store, give the same book */
    const char *dir2 = t_dir("pp_engine_reader_replay");
    pp_config c2 = cfg_for(dir2, L_STORE);
    pp_store *s2; pp_book *r;
    REQUIRE(pp_open(&s2, &c2) == 0);
    REQUIRE(pp_book_open(s2, "AAA", &r) == 0);
    REQUIRE(pp_journal_open(s, "AAA", 1, &j) == 0);
    pp_event ev;
    int rc, n = 0;
    while ((rc = pp_journal_next(j, &ev)) == 1) { CHECK_EQ(pp_apply(r, &ev), 0); n++; }
    CHECK_EQ(rc, 0);
    pp_journal_close(j);
    CHECK_EQ(n, JA.n);
    CHECK(views_match(r, &M, "replayed from the reader"));
    CHECK_EQ(pp_close(s2), 0);
    CHECK_EQ(pp_close(s), 0);
    rm_dir(dir); rm_dir(dir2);
}

/* Only what is durable: with a 60 s sync interval, events not yet synced are
 * not returned; after pp_sync they are. A per-instrument store is PP_EFORMAT. */
static void test_journal_reader_stops_at_the_durable_seq(void) {
    const char *dir = t_dir("pp_engine_reader_dur");
    pp_config c = cfg_for(dir, L_STORE);
    c.journal_sync_interval_ms = 60000;
    pp_store *s; pp_book *b;
    REQUIRE(pp_open(&s, &c) == 0);
    REQUIRE(pp_book_open(s, "DUR", &b) == 0);
    for (uint64_t id = 1; id <= 10; id++) { pp_order o = order_of(id); REQUIRE(pp_add(b, &o) == 0); }
    CHECK_EQ(pp_sync(b), 0);
    for (uint64_t id = 11; id <= 20; id++) { pp_order o = order_of(id); REQUIRE(pp_add(b, &o) == 0); }
    uint64_t d0 = pp_durable(b);
    pp_journal *j;
    REQUIRE(pp_journal_open(s, "DUR", 1, &j) == 0);
    uint64_t d1 = pp_durable(b), last = 0;
    pp_event ev;
    int n = 0;
    while (pp_journal_next(j, &ev) == 1) { n++; last = ev.seq; }
    pp_journal_close(j);
    CHECK(last >= d0 && last <= d1);                 /* up to the durable seq at open, no further */
    CHECK(n >= 10);
    CHECK_EQ(pp_sync(b), 0);
    REQUIRE(pp_journal_open(s, "DUR", 1, &j) == 0);
    n = 0;
    while (pp_journal_next(j, &ev) == 1) n++;
    pp_journal_close(j);
    CHECK_EQ(n, 20);
    CHECK_EQ(pp_close(s), 0);
    const char *dir1 = t_dir("pp_engine_reader_f1");
    c = cfg_for(dir1, L_MMAP);
    REQUIRE(pp_open(&s, &c) == 0);
    REQUIRE(pp_book_open(s, "F1", &b) == 0);
    CHECK_EQ(pp_journal_open(s, "F1", 1, &j), PP_EFORMAT);
    CHECK_EQ(pp_close(s), 0);
    rm_dir(dir); rm_dir(dir1);
}

/* pp_orders visits a copy taken under the shadow lock: a visitor may journal
 * on the same book (here it cancels every order it is shown, more than the
 * ring holds, so the hot path must drain the ring itself meanwhile). */
typedef struct cancel_ctx { pp_book *b; int seen, bad; } cancel_ctx;
static int cancel_visit(const pp_order *o, void *ctx) {
    cancel_ctx *c = (cancel_ctx *)ctx;
    c->seen++;
    if (pp_cancel(c->b, o->id) != 0) c->bad++;
    return 0;
}
static void run_visitor_journals(int layout) {
    char name[64];
    snprintf(name, sizeof name, "pp_engine_visit_%d", layout);
    const char *dir = t_dir(name);
    pp_config c = cfg_for(dir, layout);
    pp_store *s; pp_book *b;
    REQUIRE(pp_open(&s, &c) == 0);
    REQUIRE(pp_book_open(s, "VISIT", &b) == 0);
    int n = 3000;                                        /* the ring holds 1024 */
    for (int id = 1; id <= n; id++) { pp_order o = order_of((uint64_t)id); REQUIRE(pp_add(b, &o) == 0); }
    cancel_ctx x = {b, 0, 0};
    CHECK_EQ(pp_orders(b, cancel_visit, &x), 0);
    CHECK_EQ(x.seen, n);
    CHECK_EQ(x.bad, 0);
    CHECK_EQ(pp_order_count(b), 0);
    CHECK_EQ(pp_last_seq(b), 2 * n);
    pp_level bid, ask;
    CHECK_EQ(pp_top(b, &bid, &ask), 0);
    CHECK_EQ(bid.orders + ask.orders, 0);
    CHECK_EQ(bid.seq, 2 * n);
    CHECK_EQ(pp_close(s), 0);
    rm_dir(dir);
}
static void test_orders_visitor_may_journal_on_the_book(void) { run_visitor_journals(L_MMAP); }
static void test_orders_visitor_may_journal_on_the_book_format2(void) { run_visitor_journals(L_STORE); }

/* ---- the default clock ----------------------------------------------------------- */
static uint64_t realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
/* Cancels journaled on the default clock (no clock_ns, no ts given); each
 * one's timestamp against CLOCK_REALTIME read just before and after it:
 * the largest distance outside that window, in ns. */
static uint64_t cancels_off_realtime(pp_store *s, pp_book *b, uint64_t n, uint64_t first_id) {
    static uint64_t lo[4000], hi[4000];
    if (n > 4000) { CHECK(n <= 4000); return UINT64_MAX; }
    uint64_t seq0 = pp_last_seq(b);
    for (uint64_t k = 0; k < n; k++) {
        pp_order o;
        memset(&o, 0, sizeof o);
        o.id = first_id + k; o.price = 100; o.qty = 1; o.side = PP_BUY; o.ts_ns = 1;
        CHECK_EQ(pp_add(b, &o), 0);
        lo[k] = realtime_ns();
        CHECK_EQ(pp_cancel(b, first_id + k), 0);
        hi[k] = realtime_ns();
    }
    CHECK_EQ(pp_sync(b), 0);
    pp_journal *j = NULL;
    int rc = pp_journal_open(s, "CLK", seq0 + 1, &j);
    CHECK_EQ(rc, 0);
    if (rc) return UINT64_MAX;
    pp_event ev;
    uint64_t seen = 0, worst = 0;
    while (pp_journal_next(j, &ev) == 1) {
        if (ev.type != PP_EV_CANCEL) continue;
        uint64_t k = ev.order_id - first_id;
        if (k >= n) { worst = UINT64_MAX; continue; }
        uint64_t off = ev.ts_ns < lo[k] ? lo[k] - ev.ts_ns : ev.ts_ns > hi[k] ? ev.ts_ns - hi[k] : 0;
        if (off > worst) worst = off;
        seen++;
    }
    pp_journal_close(j);
    CHECK_EQ(seen, n);
    return worst;
}

/* Without clock_ns, a cancel is stamped with CLOCK_REALTIME: read from the
 * TSC once the maintainer has a rate (where the kernel's clocksource is the
 * TSC), within 200 us of clock_gettime taken around the call (the slew of
 * one anchor interval; typically under a microsecond); with PP_NO_THREADS
 * (nobody renews the anchor) from clock_gettime itself, inside the window. */
static void test_default_clock_is_realtime(void) {
    const char *dir = t_dir("pp_engine_clock");
    pp_config c = cfg_for(dir, L_STORE);
    pp_store *s; pp_book *b;
    REQUIRE(pp_open(&s, &c) == 0);
    REQUIRE(pp_book_open(s, "CLK", &b) == 0);
    for (int i = 0; i < 400 && !__atomic_load_n(&s->clk.on, __ATOMIC_ACQUIRE); i++) usleep(5000);
    int tsc = __atomic_load_n(&s->clk.on, __ATOMIC_ACQUIRE) != 0;
    if (!s->clk.usable) printf("  the clocksource is not the TSC here: clock_gettime throughout\n");
    else CHECK(tsc);                                  /* the maintainer measured a rate within 2 s */
    uint64_t worst = 0, direct = 0;
    if (tsc) {                                        /* the clock itself, beside clock_gettime */
        for (int i = 0; i < 100000; i++) {
            uint64_t a = realtime_ns(), t = 0;
            int ok = pp__tsc_now(&s->clk, &t);
            uint64_t z = realtime_ns();
            if (!ok) continue;
            uint64_t off = t < a ? a - t : t > z ? t - z : 0;
            if (off > direct) direct = off;
        }
    }
    worst = cancels_off_realtime(s, b, 3000, 1000000);
    printf("  TSC clock %s; farthest from clock_gettime: %llu ns (the clock alone), %llu ns (cancels)\n",
           tsc ? "on" : "off", (unsigned long long)direct, (unsigned long long)worst);
    CHECK(direct <= 200000);
    CHECK(worst <= 200000);
    CHECK_EQ(pp_close(s), 0);
    rm_dir(dir);
    dir = t_dir("pp_engine_clock_nothreads");
    c = cfg_for(dir, L_STORE);
    c.flags |= PP_NO_THREADS;
    REQUIRE(pp_open(&s, &c) == 0);
    REQUIRE(pp_book_open(s, "CLK", &b) == 0);
    usleep(150000);
    CHECK_EQ(__atomic_load_n(&s->clk.on, __ATOMIC_ACQUIRE), 0u);   /* no maintainer, no anchor */
    CHECK_EQ(cancels_off_realtime(s, b, 500, 1), 0);
    CHECK_EQ(pp_close(s), 0);
    rm_dir(dir);
}

int main(void) {
    RUN(test_views_match_a_reference_book);
    RUN(test_views_match_a_reference_book_format2);
    RUN(test_views_match_a_reference_book_strict);
    RUN(test_views_on_another_thread_are_consistent);
    RUN(test_views_on_another_thread_are_consistent_format2);
    RUN(test_orders_visitor_may_journal_on_the_book);
    RUN(test_orders_visitor_may_journal_on_the_book_format2);
    RUN(test_wait_returns_once_durable);
    RUN(test_wait_returns_once_durable_format2);
    RUN(test_wait_returns_once_durable_strict);
    RUN(test_wait_times_out_and_is_woken);
    RUN(test_wait_times_out_and_is_woken_format2);
    RUN(test_wait_returns_the_error_of_a_poisoned_book);
    RUN(test_wait_returns_the_error_of_a_poisoned_store_format2);
    RUN(test_execute_refuses_a_nonpositive_fill_price);
    RUN(test_apply_takes_named_fields_and_refuses_misuse);
    RUN(test_journal_reader_returns_what_was_applied);
    RUN(test_journal_reader_stops_at_the_durable_seq);
    RUN(test_default_clock_is_realtime);
    return t_done();
}
