/* pinnacle_persist.h, format 2 (PP_STORE_JOURNAL): every instrument in one
 * store journal.
 *   - books come back equal after a reopen, seqs continue densely, and the
 *     STORE file keeps the layout without the flag;
 *   - many books fed from two threads: every book's pp_durable reaches its
 *     last seq, one sync round is one flush, and the books equal a replay;
 *   - 5,000 instruments without orders: file descriptors, threads and
 *     memory stay bounded, and all of them come back at a reopen;
 *   - compaction removes segments below what every book needs, snapshotting
 *     the idle book that pinned them; the books survive a reopen; an idle
 *     book that journals again while a compaction runs loses nothing;
 *   - a process killed after pp_sync loses nothing that pp_durable covered;
 *   - an old (per-instrument) store is refused with PP_EFORMAT, not adopted;
 *   - power cuts on the simulated disk (tests/sim_disk.h): eight books fed
 *     from two threads, snapshots and compaction in the background, books
 *     created while it runs; after each cut every book holds at least what
 *     pp_durable acknowledged and equals a replay of its events up to its
 *     recovered seq. Thread timing varies between executions; the seed fixes
 *     the faults and the cuts (replay: PP_STORE_SEED=n);
 *   - a power cut at every step of a compaction (snapshots of the books that
 *     pin, the catalog, each segment removal): every book comes back whole,
 *     also the one declared in a removed segment. */
/* sim_disk.h holds helpers this test does not use */
#pragma GCC diagnostic ignored "-Wunused-function"
#define PINNACLE_PERSIST_IMPLEMENTATION
#define PINNACLE_PERSIST_TEST_IO
#include "pinnacle_persist.h"
#include "sim_disk.h"
#include "t.h"
#include "../fuzz/fuzz_pinnacle_decode.h"
#include <ftw.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/syscall.h>

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
    c.flags = PP_STORE_JOURNAL | PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT;
    c.log_fn = quiet;
    c.journal_segment_bytes = 1 << 20;
    c.journal_chunk_bytes = 64 << 10;
    c.journal_sync_interval_ms = 2;
    return c;
}

/* A tiny model of one book: id -> qty, price (ids 1..MAXID). */
#define MAXID 512
typedef struct model { int64_t qty[MAXID + 1], price[MAXID + 1]; uint64_t n; } model;

/* One valid event for the model's book; with b NULL only the model moves
 * (every event is valid, so a real book takes each one). */
static int step(pp_book *b, model *m, uint64_t *rng) {
    uint64_t id = 1 + t_rand(rng) % MAXID;
    int rc = 0;
    if (!m->qty[id]) {
        pp_order o = {id, (int64_t)(100 + t_rand(rng) % 50), (int64_t)(1 + t_rand(rng) % 9), 7, (uint8_t)(1 + (id & 1)), 0, NULL, 0};
        if (b) rc = pp_add(b, &o);
        if (!rc) { m->qty[id] = o.qty; m->price[id] = o.price; }
    } else switch (t_rand(rng) % 3) {
        case 0: if (b) rc = pp_cancel(b, id); if (!rc) m->qty[id] = 0; break;
        case 1: if (b) rc = pp_execute(b, id, 1, m->price[id]); if (!rc) m->qty[id]--; break;
        default: if (b) rc = pp_modify(b, id, m->price[id] + 1, m->qty[id]); if (!rc) m->price[id]++; break;
    }
    if (!rc) m->n++;
    return rc;
}

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

static int list_count(const char *name, void *ctx) { (void)name; (*(int *)ctx)++; return 0; }

static void test_books_come_back_after_reopen(void) {
    const char *d = t_dir("pps_reopen");
    pp_config c = cfg_for(d);
    pp_store *S;
    pp_book *b[3];
    model m[3];
    memset(m, 0, sizeof m);
    uint64_t rng = 42;
    OK(pp_open(&S, &c));
    const char *names[3] = {"BTC-USD", "ETH-USD", "journal"};   /* any valid name, even the store's own dir names */
    for (int i = 0; i < 3; i++) OK(pp_book_open(S, names[i], &b[i]));
    for (int k = 0; k < 3000; k++) OK(step(b[k % 3], &m[k % 3], &rng));
    OK(pp_snapshot(b[1]));                                       /* one book from a snapshot + journal */
    for (int k = 0; k < 300; k++) OK(step(b[k % 3], &m[k % 3], &rng));
    OK(pp_sync(b[0]));
    CHECK_EQ(pp_durable(b[0]), pp_last_seq(b[0]));
    for (int i = 0; i < 3; i++) CHECK(same(b[i], &m[i]));
    OK(pp_close(S));
    struct stat st;
    char p[600];
    snprintf(p, sizeof p, "%s/STORE", d);
    CHECK_EQ(stat(p, &st), 0);
    snprintf(p, sizeof p, "%s/BTC-USD", d);
    CHECK(stat(p, &st) != 0);                                    /* no per-instrument directory */
    c.flags &= ~(uint32_t)PP_STORE_JOURNAL;                      /* the STORE file decides */
    OK(pp_open(&S, &c));
    for (int i = 0; i < 3; i++) {
        OK(pp_book_open(S, names[i], &b[i]));
        CHECK(same(b[i], &m[i]));
        CHECK_EQ(pp_durable(b[i]), m[i].n);
    }
    for (int k = 0; k < 300; k++) OK(step(b[k % 3], &m[k % 3], &rng));   /* seqs go on densely */
    OK(pp_close(S));
    OK(pp_open(&S, &c));
    for (int i = 0; i < 3; i++) { OK(pp_book_open(S, names[i], &b[i])); CHECK(same(b[i], &m[i])); }
    OK(pp_close(S));
    /* pp_check (the inspect tool) reads format 2, read-only */
    pp_check_result r;
    CHECK_EQ(pp_check(d, "ETH-USD", &r), 0);
    CHECK_EQ(r.journal_last_seq, m[1].n);
    CHECK_EQ(r.snapshots, 1);
    CHECK_EQ(r.torn_tail, 0);
    CHECK_EQ(pp_check(d, "journal", &r), 0);
    CHECK_EQ(r.journal_last_seq, m[2].n);
    CHECK_EQ(pp_check(d, "NOPE", &r), PP_ENOENT);
    int listed = 0;                                /* pp_list (pp_inspect's listing): the catalog and the journal */
    CHECK_EQ(pp_list(d, list_count, &listed), 0);
    CHECK_EQ(listed, 3);
}

static void test_damage_below_the_mark_fails_closed_with_file_and_offset(void) {
    const char *d = t_dir("pps_damage");
    pp_config c = cfg_for(d);
    pp_store *S;
    pp_book *b;
    model m;
    memset(&m, 0, sizeof m);
    uint64_t rng = 5;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "A", &b));
    for (int k = 0; k < 500; k++) OK(step(b, &m, &rng));
    OK(pp_close(S));                              /* durable, and the mark says so */
    char seg[600];
    snprintf(seg, sizeof seg, "%s/journal/%020llu.ppj", d, 1ull);
    int fd = open(seg, O_RDWR);
    REQUIRE(fd >= 0);
    uint8_t x = 0;
    const off_t at = 4096 + 64 * 200 + 30;        /* inside frame 200 (the declaration is 128 bytes: frame 200 starts at +64*200) */
    CHECK_EQ(pread(fd, &x, 1, at), 1);
    x ^= 0x10;
    CHECK_EQ(pwrite(fd, &x, 1, at), 1);
    close(fd);
    pp_check_result r;
    CHECK_EQ(pp_check(d, "A", &r), PP_ECORRUPT);
    CHECK(strcmp(r.file, seg) == 0);
    CHECK_EQ(r.offset, 4096 + 64 * 200);
    CHECK_EQ(pp_open(&S, &c), PP_ECORRUPT);       /* fail closed, not a torn tail */
}

/* retired.ppr decides which frames recovery skips: a damaged one fails the
 * open (a retired instrument must not come back, nor its id be given
 * again), while pp_list, a reader that only names what it finds, still
 * lists the live books. Undamaged again, the store opens as before. */
static int list_has_a(const char *name, void *ctx) { if (strcmp(name, "A") == 0) ++*(int *)ctx; return 0; }
static void test_a_damaged_retired_list_fails_closed(void) {
    const char *d = t_dir("pps_retired_damage");
    pp_config c = cfg_for(d);
    pp_store *S;
    pp_book *a, *b;
    model m;
    memset(&m, 0, sizeof m);
    uint64_t rng = 9;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "A", &a));
    OK(pp_book_open(S, "B", &b));
    for (int k = 0; k < 50; k++) OK(step(a, &m, &rng));
    pp_order o = {1, 100, 1, 7, PP_BUY, 0, NULL, 0};
    OK(pp_add(b, &o));
    OK(pp_sync(a)); OK(pp_sync(b));
    OK(pp_book_retire(S, "B"));
    OK(pp_close(S));
    char p[600];
    snprintf(p, sizeof p, "%s/retired.ppr", d);
    int fd = open(p, O_RDWR);
    REQUIRE(fd >= 0);
    uint8_t x = 0;
    CHECK_EQ(pread(fd, &x, 1, 21), 1);            /* the entry's name ("B"; 16 header, 4 id, 1 length) */
    x ^= 0x01;
    CHECK_EQ(pwrite(fd, &x, 1, 21), 1);
    CHECK_EQ(pp_open(&S, &c), PP_ECORRUPT);
    int seen = 0;
    OK(pp_list(d, list_has_a, &seen));
    CHECK_EQ(seen, 1);
    x ^= 0x01;
    CHECK_EQ(pwrite(fd, &x, 1, 21), 1);
    close(fd);
    OK(pp_open(&S, &c));
    pp_book *b2 = NULL;
    CHECK_EQ(pp_book_open(S, "B", &b2), PP_ERETIRED);
    OK(pp_book_open(S, "A", &a));
    CHECK_EQ(pp_last_seq(a), 50);
    OK(pp_close(S));
}

/* Regression: a short write of a segment's durable mark (a full disk, an
 * I/O error half way) left a torn mark in the header page, and the next
 * pp_open failed closed on it (PP_ECORRUPT, "damaged durable mark") although
 * nothing acknowledged was lost: the mark is only a claim about data already
 * durable. The mark has two slots, written in turn; a torn slot is no damage
 * while the other one (or nothing yet) vouches for an older mark. Tears the
 * k-th mark write of the store, k = 1 (no older mark) to 4. */
static int tear_at, tear_seen;
static int64_t tear_mark_pwrite(void *ctx, int fd, const void *buf, size_t len, int64_t off) {
    (void)ctx;
    if (off >= 512 && off < 4096 && ++tear_seen == tear_at) return (int64_t)pwrite(fd, buf, len / 2, (off_t)off);
    return (int64_t)pwrite(fd, buf, len, (off_t)off);
}
static void test_torn_mark_write_loses_nothing(void) {
    for (int k = 1; k <= 4; k++) {
        const char *d = t_dir("pps_torn_mark");
        pp_config c = cfg_for(d);
        c.journal_sync_interval_ms = 60000;         /* the rounds are the test's pp_sync calls */
        pp_store *S;
        pp_book *b;
        model m;
        memset(&m, 0, sizeof m);
        uint64_t rng = 77 + (uint64_t)k, durable = 0;
        OK(pp_open(&S, &c));
        OK(pp_book_open(S, "T", &b));
        pp_io io;
        memset(&io, 0, sizeof io);
        io.pwrite = tear_mark_pwrite;
        tear_at = k; tear_seen = 0;
        pp_test_set_io(&io);
        int rc = 0, rounds = 0;
        for (; rounds < 10 && !rc; rounds++) {
            for (int i = 0; i < 50 && !rc; i++) rc = step(b, &m, &rng);
            if (!rc) { durable = pp_durable(b); rc = pp_sync(b); }
        }
        CHECK_EQ(tear_seen >= k, 1);                /* the tear happened ... */
        CHECK_EQ(rc, PP_EIO);                       /* ... and the round that tore it failed */
        (void)pp_close(S);
        pp_test_set_io(NULL);
        rc = pp_open(&S, &c);
        CHECK_EQ(rc, 0);                            /* not PP_ECORRUPT: nothing was lost */
        if (rc) { printf("  tear at mark write %d: %s\n", k, pp_strerror(rc)); continue; }
        OK(pp_book_open(S, "T", &b));
        CHECK(pp_last_seq(b) >= durable);
        CHECK(same(b, &m));                         /* a process crash, not power loss: all of it */
        for (int i = 0; i < 50; i++) OK(step(b, &m, &rng));
        OK(pp_sync(b));
        OK(pp_close(S));
        OK(pp_open(&S, &c));                        /* and the marks written since read back */
        OK(pp_book_open(S, "T", &b));
        CHECK(same(b, &m));
        pp_check_result r;
        OK(pp_close(S));
        CHECK_EQ(pp_check(d, "T", &r), 0);
        CHECK_EQ(r.durable_mark_seq, m.n);
    }
}

/* pp_stats.journal_first_seq on format 2 (it was 0): a book's first seq in
 * the oldest segment of the store journal left, as pp_check counts it on
 * the files: 1 until compaction removes the segments holding the first
 * events, then the first one after them; 0 for a book with no frame left;
 * the same after a reopen. Events not yet durable count too. */
static void test_journal_first_seq_follows_compaction(void) {
    const char *d = t_dir("pps_first_seq");
    pp_config c = cfg_for(d);
    c.journal_sync_interval_ms = 60000;
    c.journal_segment_bytes = 64 << 10;           /* 1024 frames a segment */
    c.journal_chunk_bytes = 8 << 10;
    c.compaction_threshold = 64 << 10;
    c.keep_snapshots = 1;
    pp_store *S;
    pp_book *a, *b;
    model ma, mb;
    memset(&ma, 0, sizeof ma); memset(&mb, 0, sizeof mb);
    uint64_t rng = 31;
    pp_stats st;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "A", &a));
    OK(pp_book_open(S, "B", &b));
    for (int k = 0; k < 5; k++) OK(step(b, &mb, &rng));
    pp_get_stats(b, &st);
    CHECK_EQ(st.durable_seq, 0);
    CHECK_EQ(st.journal_first_seq, 1);            /* not durable yet, in the journal all the same */
    for (int k = 0; k < 3000; k++) OK(step(a, &ma, &rng));
    OK(pp_sync(a));
    pp_get_stats(a, &st); CHECK_EQ(st.journal_first_seq, 1);
    pp_get_stats(b, &st); CHECK_EQ(st.journal_first_seq, 1);
    OK(pp_snapshot(a));
    for (int k = 0; k < 2000; k++) OK(step(a, &ma, &rng));
    OK(pp_compact(a));                            /* snapshots idle B, removes the segments below A's snapshot */
    pp_get_stats(a, &st);
    CHECK(st.segments_deleted >= 1);
    uint64_t first_a = st.journal_first_seq;
    CHECK(first_a > 1);
    CHECK(first_a <= 3001);                       /* every event after A's snapshot is still there */
    pp_get_stats(b, &st);
    CHECK_EQ(st.journal_first_seq, 0);            /* B's frames were all in the removed segments */
    OK(pp_close(S));
    pp_check_result r;
    CHECK_EQ(pp_check(d, "A", &r), 0);
    CHECK_EQ(r.journal_first_seq, first_a);       /* what the files say */
    CHECK_EQ(pp_check(d, "B", &r), 0);
    CHECK_EQ(r.journal_first_seq, 0);
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "A", &a));
    OK(pp_book_open(S, "B", &b));
    pp_get_stats(a, &st); CHECK_EQ(st.journal_first_seq, first_a);
    pp_get_stats(b, &st); CHECK_EQ(st.journal_first_seq, 0);
    CHECK(same(a, &ma));
    CHECK(same(b, &mb));
    for (int k = 0; k < 3; k++) OK(step(b, &mb, &rng));
    OK(pp_sync(b));
    pp_get_stats(b, &st); CHECK_EQ(st.journal_first_seq, 6);
    OK(pp_close(S));
}

/* Writers that run a whole window of segments ahead of the disk wait for
 * the syncer to retire one: it syncs at once, not at its next interval
 * (60 s here; the wait took exactly that under TSan before). */
/* pp_config.thread_start runs first in each background thread, in that
 * thread: what an engine needs to pin the store's threads off the
 * trading thread's core. */
typedef struct started { pthread_mutex_t mu; int n; char name[8][16], comm[8][16]; pid_t tid[8]; } started;
static void on_thread_start(void *user, const char *name) {
    started *st = (started *)user;
    char path[64], comm[16] = "";
    pid_t tid = (pid_t)syscall(SYS_gettid);
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
    FILE *f = fopen(path, "r");
    if (f) { if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = 0; fclose(f); }
    pthread_mutex_lock(&st->mu);
    if (st->n < 8) {
        snprintf(st->name[st->n], sizeof st->name[0], "%s", name);
        snprintf(st->comm[st->n], sizeof st->comm[0], "%s", comm);
        st->tid[st->n] = tid;
    }
    st->n++;
    pthread_mutex_unlock(&st->mu);
}
static void test_thread_start_runs_in_each_background_thread(void) {
    const char *d = t_dir("pps_thread_start");
    pp_config c = cfg_for(d);
    started st;
    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.mu, NULL);
    c.thread_start = on_thread_start; c.thread_user = &st;
    pp_store *S;
    OK(pp_open(&S, &c));
    for (int i = 0; i < 2000; i++) {                /* the threads start on their own: up to 2 s */
        pthread_mutex_lock(&st.mu);
        int n = st.n;
        pthread_mutex_unlock(&st.mu);
        if (n >= 3) break;
        usleep(1000);
    }
    OK(pp_close(S));
    CHECK_EQ(st.n, 3);
    static const char *const want[3] = {"pp-sync", "pp-grow", "pp-maint"};
    for (int w = 0; w < 3; w++) {
        int seen = 0;
        for (int i = 0; i < st.n && i < 8; i++) {
            if (strcmp(st.name[i], want[w]) != 0) continue;
            seen++;
            CHECK(strcmp(st.comm[i], want[w]) == 0);          /* called in that thread, once it has its name */
            CHECK(st.tid[i] != (pid_t)syscall(SYS_gettid));
        }
        CHECK_EQ(seen, 1);
    }
    /* PP_NO_THREADS: no background thread, no call */
    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.mu, NULL);
    c.flags |= PP_NO_THREADS;
    OK(pp_open(&S, &c));
    pp_book *b;
    OK(pp_book_open(S, "T", &b));
    pp_order o = {1, 100, 5, 1, PP_BUY, 0, NULL, 0};
    OK(pp_add(b, &o));
    OK(pp_sync(b));
    OK(pp_close(S));
    CHECK_EQ(st.n, 0);
}

static void test_a_writer_waiting_for_the_window_wakes_the_syncer(void) {
    const char *d = t_dir("pps_window");
    pp_config c = cfg_for(d);
    c.journal_sync_interval_ms = 60000;
    c.journal_segment_bytes = 64 << 10;           /* 1024 frames a segment: 4 in the window */
    c.journal_chunk_bytes = 8 << 10;
    pp_store *S;
    pp_book *a;
    model ma;
    memset(&ma, 0, sizeof ma);
    uint64_t rng = 77;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "W", &a));
    uint64_t t0 = plg_now_ns();
    for (int k = 0; k < 7000; k++) OK(step(a, &ma, &rng));   /* about 7 segments, no pp_sync */
    double secs = (double)(plg_now_ns() - t0) / 1e9;
    CHECK(pp__sj_stat(&S->sj->st_stalls) >= 1);  /* the writers did wait for the window */
    CHECK(secs < 30.0);                           /* not one whole interval: the syncer was woken */
    if (secs >= 30.0) fprintf(stderr, "  7000 events took %.1f s\n", secs);
    CHECK(same(a, &ma));
    OK(pp_close(S));
}

#define NB 64
typedef struct feeder { pp_book **b; model *m; int from, to; uint64_t rng, events; int rc; } feeder;
static void *feed(void *p) {
    feeder *f = (feeder *)p;
    for (uint64_t k = 0; k < f->events && !f->rc; k++) {
        int i = f->from + (int)(t_rand(&f->rng) % (uint64_t)(f->to - f->from));
        f->rc = step(f->b[i], &f->m[i], &f->rng);
    }
    return NULL;
}

static void test_many_books_from_two_threads_one_flush_per_round(void) {
    const char *d = t_dir("pps_two_threads");
    pp_config c = cfg_for(d);
    pp_store *S;
    static pp_book *b[NB];
    static model m[NB];
    memset(m, 0, sizeof m);
    OK(pp_open(&S, &c));
    for (int i = 0; i < NB; i++) {
        char n[32];
        snprintf(n, sizeof n, "I%03d", i);
        OK(pp_book_open(S, n, &b[i]));
    }
    uint64_t ev = light() ? 20000 : 200000;
    feeder f[2] = {{b, m, 0, NB / 2, 1, ev, 0}, {b, m, NB / 2, NB, 2, ev, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) REQUIRE(pthread_create(&th[i], NULL, feed, &f[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CHECK_EQ(f[0].rc, 0);
    CHECK_EQ(f[1].rc, 0);
    pp_stats st;
    pp_get_stats(b[0], &st);
    uint64_t r0 = st.store_rounds;
    OK(pp_sync(b[NB - 1]));                 /* fed last by thread 2: a round covers everything before */
    for (int i = 0; i < NB; i++) OK(pp_sync(b[i]));
    for (int i = 0; i < NB; i++) CHECK_EQ(pp_durable(b[i]), pp_last_seq(b[i]));
    pp_get_stats(b[0], &st);
    CHECK(st.store_rounds > 0);
    CHECK(st.store_rounds - r0 <= 3);       /* 64 books made durable by one or two rounds, not one each */
    /* one flush per round, and one more in a round that crosses into a new segment */
    CHECK(st.store_flushes <= st.store_rounds + st.journal_segments);
    if (st.store_flushes > st.store_rounds + st.journal_segments)
        fprintf(stderr, "  flushes %llu rounds %llu segments %llu\n", (unsigned long long)st.store_flushes,
                (unsigned long long)st.store_rounds, (unsigned long long)st.journal_segments);
    for (int i = 0; i < NB; i++) CHECK(same(b[i], &m[i]));
    OK(pp_close(S));
    OK(pp_open(&S, &c));
    for (int i = 0; i < NB; i++) {
        char n[32];
        snprintf(n, sizeof n, "I%03d", i);
        OK(pp_book_open(S, n, &b[i]));
        CHECK(same(b[i], &m[i]));
    }
    OK(pp_close(S));
}

static int count_dir(const char *path) {
    DIR *dh = opendir(path);
    int n = 0;
    struct dirent *e;
    if (!dh) return -1;
    while ((e = readdir(dh)) != NULL) if (e->d_name[0] != '.') n++;
    closedir(dh);
    return n;
}
static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f)) if (sscanf(line, "VmRSS: %ld", &v) == 1) break;
    if (f) fclose(f);
    return v;
}
static int count_books(const char *n, pp_book *b, void *ctx) { (void)n; (void)b; (*(int *)ctx)++; return 0; }

static void test_five_thousand_idle_books_are_cheap(void) {
    const char *d = t_dir("pps_5000");
    pp_config c = cfg_for(d);
    int nb = light() ? 1000 : 5000;
    pp_store *S;
    long rss0 = rss_kib();
    int fd0 = count_dir("/proc/self/fd"), th0 = count_dir("/proc/self/task");
    OK(pp_open(&S, &c));
    for (int i = 0; i < nb; i++) {
        char n[32];
        pp_book *b;
        snprintf(n, sizeof n, "OPT-%05d", i);
        OK(pp_book_open(S, n, &b));
    }
    int fds = count_dir("/proc/self/fd") - fd0, threads = count_dir("/proc/self/task") - th0;
    long rss = rss_kib() - rss0;
    printf("  %d books: +%d fds, +%d threads, +%ld KiB RSS\n", nb, fds, threads, rss);
    CHECK(fds <= 8);               /* the lock, the live segment and the one prepared ahead */
    CHECK(threads <= 3);
    CHECK(rss < 64 * 1024);        /* a few KiB per book (the journal's mapped pages aside) */
    OK(pp_close(S));
    OK(pp_open(&S, &c));
    int n = 0;
    OK(pp_books(S, count_books, &n));
    CHECK_EQ(n, nb);
    CHECK(count_dir("/proc/self/fd") - fd0 <= 8);
    OK(pp_close(S));
}

static void test_compaction_snapshots_the_idle_book_that_pins(void) {
    const char *d = t_dir("pps_compact");
    pp_config c = cfg_for(d);
    c.journal_segment_bytes = 64 << 10;          /* 1,024 frames a segment */
    c.journal_chunk_bytes = 8 << 10;
    c.compaction_threshold = 64 << 10;
    pp_store *S;
    pp_book *idle, *busy;
    model mi, mb;
    memset(&mi, 0, sizeof mi); memset(&mb, 0, sizeof mb);
    uint64_t rng = 7;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "IDLE", &idle));
    OK(pp_book_open(S, "BUSY", &busy));
    for (int k = 0; k < 50; k++) OK(step(idle, &mi, &rng));         /* then idle for good */
    for (int k = 0; k < 8000; k++) OK(step(busy, &mb, &rng));
    OK(pp_snapshot(busy));
    OK(pp_sync(busy));
    char jd[600];
    snprintf(jd, sizeof jd, "%s/journal", d);
    int before = count_dir(jd);
    OK(pp_compact(busy));
    int after = count_dir(jd);
    pp_stats st;
    pp_get_stats(idle, &st);
    CHECK(st.snapshots == 1);                    /* the idle book was snapshotted: it pinned segment 1 */
    CHECK(after < before - 3);
    CHECK(st.segments_deleted >= 4);
    OK(pp_close(S));
    c.flags &= ~(uint32_t)PP_STORE_JOURNAL;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "IDLE", &idle));
    OK(pp_book_open(S, "BUSY", &busy));
    CHECK(same(idle, &mi));
    CHECK(same(busy, &mb));
    /* an instrument declared before the removed segments is in the catalog */
    int n = 0;
    OK(pp_books(S, count_books, &n));
    CHECK_EQ(n, 2);
    OK(pp_close(S));
}

/* An idle book that starts trading again while a compaction runs. The
 * compaction judged the book (its newest snapshot covered all it had: it
 * needs no journal) before the book's next events were journaled; those
 * events became durable and their segments were then removed as below
 * what every book needs, although the book's snapshot does not cover them:
 * acknowledged events lost, and the store no longer opened (PP_ECORRUPT:
 * the book's frames after the removed segments do not follow its
 * snapshot). The events here are journaled by a hook on the catalog write,
 * which comes between the judgement and the removal, as a trading thread
 * would. */
static pp_book *race_book, *race_other;
static model *race_model;
static uint64_t race_rng;
static int race_armed, race_rc;
static int race_wfd(void *c, const char *p, const void *d, size_t l, unsigned m) {
    (void)c;
    if (race_armed && strstr(p, "instruments.ppc")) {
        race_armed = 0;
        for (int k = 0; k < 2500 && !race_rc; k++) race_rc = step(race_book, race_model, &race_rng);
        if (!race_rc) race_rc = pp_sync(race_book);                                 /* durable */
        for (uint64_t k = 1; k <= 2 && !race_rc; k++) {      /* two more rounds: the full segments retire */
            pp_order o = {k, 100, 1, 7, PP_BUY, 0, NULL, 0};
            race_rc = pp_add(race_other, &o);
            if (!race_rc) race_rc = pp_sync(race_other);
        }
    }
    return plg_write_file_durable(p, d, l, m);
}

static void test_compaction_keeps_what_a_waking_idle_book_journals(void) {
    const char *d = t_dir("pps_compact_wake");
    pp_config c = cfg_for(d);
    c.journal_sync_interval_ms = 60000;
    c.journal_segment_bytes = 64 << 10;          /* 1,024 frames a segment */
    c.journal_chunk_bytes = 8 << 10;
    c.compaction_threshold = 64 << 10;
    pp_store *S;
    pp_book *x, *y;
    model mx;
    memset(&mx, 0, sizeof mx);
    race_rng = 5;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "X", &x));
    for (int k = 0; k < 10; k++) OK(step(x, &mx, &race_rng));
    OK(pp_snapshot(x));                          /* X is idle: its snapshot covers all it has */
    OK(pp_book_open(S, "Y", &y));                /* declared since the catalog: the compaction writes it */
    pp_io io;
    memset(&io, 0, sizeof io);
    io.write_file_durable = race_wfd;
    race_book = x; race_other = y; race_model = &mx; race_armed = 1; race_rc = 0;
    pp_test_set_io(&io);
    int rc = pp_compact(x);
    pp_test_set_io(NULL);
    CHECK_EQ(race_armed, 0);                     /* the hook ran */
    CHECK_EQ(race_rc, 0);
    CHECK_EQ(rc, 0);
    CHECK_EQ(pp_durable(x), mx.n);               /* acknowledged ... */
    CHECK_EQ(mx.n, 2510);
    OK(pp_close(S));
    rc = pp_open(&S, &c);
    CHECK_EQ(rc, 0);                             /* ... so the store opens ... */
    if (rc) return;
    OK(pp_book_open(S, "X", &x));
    CHECK_EQ(pp_last_seq(x), mx.n);              /* ... with all of it */
    CHECK(same(x, &mx));
    OK(pp_close(S));
}

/* The audit-trail reader beside a store that compacts: pp_journal_open
 * reads the segment files while compaction removes the oldest ones. Each
 * open must succeed, and give the book's events densely from its first
 * event still in the journal up to what was durable when it opened. */
typedef struct jr_arg { pp_store *S; int stop, opens, errors, gaps; int first_rc; } jr_arg;
static void *jr_main(void *p) {
    jr_arg *a = (jr_arg *)p;
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
        pp_journal *j = NULL;
        int rc = pp_journal_open(a->S, "R", 1, &j);
        a->opens++;
        if (rc) { if (!a->errors++) a->first_rc = rc; continue; }
        pp_event ev;
        uint64_t prev = 0;
        while ((rc = pp_journal_next(j, &ev)) == 1) {
            if (prev && ev.seq != prev + 1) a->gaps++;
            prev = ev.seq;
        }
        if (rc < 0 && !a->errors++) a->first_rc = rc;
        pp_journal_close(j);
    }
    return NULL;
}

static void test_journal_reader_beside_compaction(void) {
    const char *d = t_dir("pps_reader_compact");
    pp_config c = cfg_for(d);
    c.journal_segment_bytes = 64 << 10;          /* 1,024 frames a segment */
    c.journal_chunk_bytes = 8 << 10;
    c.compaction_threshold = 64 << 10;
    c.keep_snapshots = 1;
    pp_store *S;
    pp_book *b;
    model m;
    memset(&m, 0, sizeof m);
    uint64_t rng = 11;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "R", &b));
    jr_arg a;
    memset(&a, 0, sizeof a);
    a.S = S;
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, jr_main, &a) == 0);
    int rounds = light() ? 6 : 40, rc = 0;
    uint64_t dropped = 0;
    for (int r = 0; r < rounds && !rc; r++) {
        for (int k = 0; k < 1500 && !rc; k++) rc = step(b, &m, &rng);
        if (!rc) rc = pp_snapshot(b);
        if (!rc) rc = pp_compact(b);
    }
    __atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    CHECK_EQ(rc, 0);
    pp_stats st;
    pp_get_stats(b, &st);
    dropped = st.segments_deleted;
    CHECK(dropped >= 5);                         /* compaction did remove segments meanwhile */
    CHECK(a.opens >= 2);
    if (a.errors) printf("  %d of %d reader opens failed, the first with %s\n", a.errors, a.opens, pp_strerror(a.first_rc));
    CHECK_EQ(a.errors, 0);
    CHECK_EQ(a.gaps, 0);
    OK(pp_close(S));
}

static void test_killed_process_keeps_what_was_durable(void) {
    const char *d = t_dir("pps_kill");
    int rounds = light() ? 2 : 5;
    model m[4];
    memset(m, 0, sizeof m);
    uint64_t rng = 99;
    for (int r = 0; r < rounds; r++) {
        int pfd[2];
        REQUIRE(pipe(pfd) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {                          /* child: append, sync half way, append more, die */
            close(pfd[0]);
            pp_config c = cfg_for(d);
            pp_store *S;
            pp_book *b[4];
            if (pp_open(&S, &c)) _exit(2);
            for (int i = 0; i < 4; i++) { char n[16]; snprintf(n, sizeof n, "K%d", i); if (pp_book_open(S, n, &b[i])) _exit(3); }
            for (int k = 0; k < 4000; k++) if (step(b[k % 4], &m[k % 4], &rng)) _exit(4);
            if (pp_sync(b[0])) _exit(5);
            uint64_t dur[4];
            for (int i = 0; i < 4; i++) dur[i] = pp_durable(b[i]);
            if (write(pfd[1], dur, sizeof dur) != (ssize_t)sizeof dur) _exit(6);
            for (int k = 0; k < 4000; k++) if (step(b[k % 4], &m[k % 4], &rng)) _exit(7);
            raise(SIGKILL);
        }
        close(pfd[1]);
        uint64_t dur[4] = {0, 0, 0, 0};
        ssize_t got = read(pfd[0], dur, sizeof dur);
        close(pfd[0]);
        int status;
        waitpid(pid, &status, 0);
        REQUIRE(got == (ssize_t)sizeof dur);
        CHECK(WIFSIGNALED(status));
        for (int k = 0; k < 8000; k++) (void)step(NULL, &m[k % 4], &rng);   /* what the child journaled */
        pp_config c = cfg_for(d);
        pp_store *S;
        OK(pp_open(&S, &c));
        for (int i = 0; i < 4; i++) {
            char n[16];
            pp_book *b;
            snprintf(n, sizeof n, "K%d", i);
            OK(pp_book_open(S, n, &b));
            CHECK(pp_last_seq(b) >= dur[i]);
            CHECK(same(b, &m[i]));                /* a process crash keeps the page cache: all of it */
        }
        OK(pp_close(S));
    }
}

static void test_old_layout_is_refused(void) {
    const char *d = t_dir("pps_old");
    pp_config c = cfg_for(d);
    c.flags &= ~(uint32_t)PP_STORE_JOURNAL;
    c.flags |= PP_LEGACY_LAYOUT;                   /* a new store of the 0.2.0 layout, on request */
    c.journal_chunk_bytes = 64 << 10;
    pp_store *S;
    pp_book *b;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "OLD", &b));
    pp_order o = {1, 100, 5, 1, PP_BUY, 0, NULL, 0};
    OK(pp_add(b, &o));
    OK(pp_close(S));
    char p[700];
    struct stat st;
    snprintf(p, sizeof p, "%s/OLD/journal", d);
    CHECK_EQ(stat(p, &st), 0);                     /* a journal per instrument */
    snprintf(p, sizeof p, "%s/STORE", d);
    CHECK(stat(p, &st) != 0);
    c.flags = (c.flags & ~(uint32_t)PP_LEGACY_LAYOUT) | PP_STORE_JOURNAL;
    CHECK_EQ(pp_open(&S, &c), PP_EFORMAT);         /* format 2 asked for: refused, not migrated */
    c.flags &= ~(uint32_t)PP_STORE_JOURNAL;        /* no flag (the default): still opens as what it is */
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "OLD", &b));
    CHECK_EQ(pp_last_seq(b), 1);
    OK(pp_book_open(S, "NEW", &b));                /* a new instrument of an old store: the old layout */
    OK(pp_close(S));
    snprintf(p, sizeof p, "%s/NEW/journal", d);
    CHECK_EQ(stat(p, &st), 0);
    snprintf(p, sizeof p, "%s/STORE", d);
    CHECK(stat(p, &st) != 0);
    /* a new store without flags is format 2; both flags are a contradiction */
    const char *d2 = t_dir("pps_new_default");
    pp_config c2 = cfg_for(d2);
    c2.flags &= ~(uint32_t)PP_STORE_JOURNAL;
    c2.flags |= PP_STORE_JOURNAL | PP_LEGACY_LAYOUT;
    CHECK_EQ(pp_open(&S, &c2), PP_ECONFIG);
    c2.flags &= ~(uint32_t)(PP_STORE_JOURNAL | PP_LEGACY_LAYOUT);
    OK(pp_open(&S, &c2));
    OK(pp_book_open(S, "N", &b));
    OK(pp_add(b, &o));
    OK(pp_close(S));
    snprintf(p, sizeof p, "%s/STORE", d2);
    CHECK_EQ(stat(p, &st), 0);
    snprintf(p, sizeof p, "%s/N", d2);
    CHECK(stat(p, &st) != 0);                      /* no per-instrument directory */
    c2.flags |= PP_LEGACY_LAYOUT;                  /* the STORE file decides */
    OK(pp_open(&S, &c2));
    OK(pp_book_open(S, "N", &b));
    CHECK_EQ(pp_last_seq(b), 1);
    OK(pp_close(S));
}

/* ---- power cuts ---- */
#define CB 8                        /* books; books CB/2.. appear in the second incarnation */
#define OPS 40000
typedef struct op { uint8_t kind; uint64_t id; int64_t price, qty; } op;
typedef struct cbook { op ops[OPS]; uint64_t n, acked; model m; } cbook;
static cbook cb[CB];

/* The next valid event for book i, recorded (kind 1 add, 2 cancel, 3 execute, 4 modify). */
static int cut_step(pp_book *b, int i, uint64_t *rng) {
    cbook *c = &cb[i];
    if (c->n >= OPS) return 1;
    model *m = &c->m;
    uint64_t id = 1 + t_rand(rng) % MAXID;
    op o = {0, id, 0, 0};
    int rc;
    if (!m->qty[id]) {
        o.kind = 1; o.price = (int64_t)(100 + t_rand(rng) % 50); o.qty = (int64_t)(1 + t_rand(rng) % 9);
        pp_order po = {id, o.price, o.qty, 7, (uint8_t)(1 + (id & 1)), 0, NULL, 0};
        rc = pp_add(b, &po);
    } else switch (t_rand(rng) % 3) {
        case 0: o.kind = 2; rc = pp_cancel(b, id); break;
        case 1: o.kind = 3; o.qty = 1; rc = pp_execute(b, id, 1, m->price[id]); break;
        default: o.kind = 4; o.price = m->price[id] + 1; o.qty = m->qty[id]; rc = pp_modify(b, id, o.price, o.qty); break;
    }
    if (rc) return rc;
    switch (o.kind) {
    case 1: m->qty[id] = o.qty; m->price[id] = o.price; break;
    case 2: m->qty[id] = 0; break;
    case 3: m->qty[id]--; break;
    default: m->price[id] = o.price; break;
    }
    m->n++;
    c->ops[c->n++] = o;
    return 0;
}

/* The model of book i after its first n events. */
static void cut_model(int i, uint64_t n, model *m) {
    memset(m, 0, sizeof *m);
    for (uint64_t k = 0; k < n; k++) {
        const op *o = &cb[i].ops[k];
        switch (o->kind) {
        case 1: m->qty[o->id] = o->qty; m->price[o->id] = o->price; break;
        case 2: m->qty[o->id] = 0; break;
        case 3: m->qty[o->id]--; break;
        default: m->price[o->id] = o->price; break;
        }
        m->n++;
    }
}

typedef struct cutfeed { pp_book **b; int from, to; uint64_t rng; volatile int *stop; } cutfeed;
static void *cut_feed(void *p) {
    cutfeed *f = (cutfeed *)p;
    while (!__atomic_load_n(f->stop, __ATOMIC_ACQUIRE)) {
        int i = f->from + (int)(t_rand(&f->rng) % (uint64_t)(f->to - f->from));
        if (f->b[i] && cut_step(f->b[i], i, &f->rng)) {
            struct timespec ts = {0, 100000};      /* poisoned (a failed sync) or full: idle */
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb; (void)flag; (void)f;
    return remove(p);
}
static void rm_rf(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static pp_config cut_cfg(const char *dir) {
    pp_config c = cfg_for(dir);
    c.flags = PP_STORE_JOURNAL;
    c.snapshot_interval_ms = 3;
    c.keep_snapshots = 2;
    c.journal_segment_bytes = 64 << 10;
    c.journal_chunk_bytes = 8 << 10;
    c.compaction_threshold = 64 << 10;
    c.journal_sync_interval_ms = 1;
    return c;
}

static uint64_t cut_acked, cut_snaps, cut_dropped, cut_poisoned;
static int cut_seed(uint64_t seed, const char *base) {
    char dir[600], next[600], grave[700];
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 5;
    memset(cb, 0, sizeof cb);
    snprintf(dir, sizeof dir, "%s/s%llu_0", base, (unsigned long long)seed);
    mkdir(dir, 0755);
    int bad = 0;
    for (int inc = 0; inc < 3 && !bad; inc++) {
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
        pp_config c = cut_cfg(dir);
        pp_store *S = NULL;
        pp_book *b[CB] = {0};
        int rc = pp_open(&S, &c);
        if (rc) { fprintf(stderr, "  seed %llu inc %d: pp_open: %s\n", (unsigned long long)seed, inc, pp_strerror(rc)); bad = 1; }
        int nb = inc == 0 ? CB / 2 : CB;
        for (int i = 0; i < nb && !bad; i++) {
            char n[16];
            snprintf(n, sizeof n, "B%d", i);
            if ((rc = pp_book_open(S, n, &b[i])) != 0) { fprintf(stderr, "  seed %llu: book %d: %s\n", (unsigned long long)seed, i, pp_strerror(rc)); bad = 1; break; }
            uint64_t got = pp_last_seq(b[i]);
            model m;
            if (got < cb[i].acked || got > cb[i].n) {
                fprintf(stderr, "  seed %llu inc %d book %d: recovered seq %llu, acknowledged %llu, appended %llu\n", (unsigned long long)seed,
                        inc, i, (unsigned long long)got, (unsigned long long)cb[i].acked, (unsigned long long)cb[i].n);
                bad = 1; break;
            }
            cut_model(i, got, &m);
            if (!same(b[i], &m)) {
                fprintf(stderr, "  seed %llu inc %d book %d: the book differs from a replay of its %llu events\n", (unsigned long long)seed,
                        inc, i, (unsigned long long)got);
                bad = 1; break;
            }
            cb[i].n = got; cb[i].m = m;                      /* what came back goes on */
        }
        if (!bad) {
            if (seed % 3 == 0) { pthread_mutex_lock(&d.mu); d.cfg.p_sync_eio = 2000; d.cfg.p_file_enospc = 20000; pthread_mutex_unlock(&d.mu); }
            volatile int stop = 0;
            cutfeed f[2] = {{b, 0, nb / 2, rng + 1, &stop}, {b, nb / 2, nb, rng + 2, &stop}};
            pthread_t th[2];
            for (int k = 0; k < 2; k++) pthread_create(&th[k], NULL, cut_feed, &f[k]);
            struct timespec ts = {0, (long)(2000000 + t_rand(&rng) % 15000000)};
            nanosleep(&ts, NULL);
            __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
            for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
            for (int i = 0; i < nb; i++) {
                pp_stats st;
                cb[i].acked = pp_durable(b[i]);
                pp_get_stats(b[i], &st);
                cut_acked += cb[i].acked; cut_snaps += st.snapshots; cut_poisoned += st.error != 0;
                if (i == 0) cut_dropped += st.segments_deleted;
            }
        }
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

static void test_power_cuts_many_books_two_threads(void) {
    const char *base = t_dir("pps_cuts");
    int seeds = light() ? 3 : 6, failed = 0;
    const char *e = getenv("PP_STORE_SEED");
    uint64_t from = e ? strtoull(e, NULL, 10) : 1;
    if (e) seeds = 1;
    for (int i = 0; i < seeds; i++) {
        int bad = cut_seed(from + (uint64_t)i, base);
        if (bad) { failed++; fprintf(stderr, "  replay: PP_STORE_SEED=%llu build/test/test_pinnacle_store\n", (unsigned long long)(from + (uint64_t)i)); }
        CHECK_EQ(bad, 0);
    }
    CHECK_EQ(failed, 0);
    printf("  %d seeds: %llu events acknowledged at the cuts, %llu snapshots, %llu segments compacted away, %llu books poisoned by faults\n",
           seeds, (unsigned long long)cut_acked, (unsigned long long)cut_snaps, (unsigned long long)cut_dropped, (unsigned long long)cut_poisoned);
    CHECK(cut_acked > 0);
}

/* ---- a cut at every step of a compaction ---- */
typedef struct stepio { sim_disk *d; pp_io inner; int left, mode, cut; } stepio;
static stepio SIO;
static void sio_tick(void) { if (SIO.left >= 0 && SIO.left-- == 0 && !SIO.cut) { SIO.cut = 1; sim_cut(SIO.d, SIO.mode); } }
static int sio_msync(void *c, int fd, void *a, size_t l, int64_t o) { (void)c; sio_tick(); return SIO.inner.msync(SIO.inner.ctx, fd, a, l, o); }
static int sio_fdatasync(void *c, int fd) { (void)c; sio_tick(); return SIO.inner.fdatasync(SIO.inner.ctx, fd); }
static int sio_fallocate(void *c, int fd, int64_t o, int64_t l) { (void)c; sio_tick(); return SIO.inner.fallocate(SIO.inner.ctx, fd, o, l); }
static int sio_ftruncate(void *c, int fd, int64_t l) { (void)c; sio_tick(); return SIO.inner.ftruncate(SIO.inner.ctx, fd, l); }
static int64_t sio_pwrite(void *c, int fd, const void *b, size_t l, int64_t o) { (void)c; sio_tick(); return SIO.inner.pwrite(SIO.inner.ctx, fd, b, l, o); }
static int sio_rename(void *c, const char *a, const char *b) { (void)c; sio_tick(); return SIO.inner.rename(SIO.inner.ctx, a, b); }
static int sio_unlink(void *c, const char *p) { (void)c; sio_tick(); return SIO.inner.unlink(SIO.inner.ctx, p); }
static int sio_fsync_dir(void *c, const char *p) { (void)c; sio_tick(); return SIO.inner.fsync_dir(SIO.inner.ctx, p); }
static int sio_wfd(void *c, const char *p, const void *d, size_t l, unsigned m) { (void)c; sio_tick(); return SIO.inner.write_file_durable(SIO.inner.ctx, p, d, l, m); }

static pp_config step_cfg(const char *dir) {
    pp_config c = cfg_for(dir);
    c.journal_segment_bytes = 64 << 10;
    c.journal_chunk_bytes = 8 << 10;
    c.compaction_threshold = 64 << 10;
    c.keep_snapshots = 1;
    return c;
}

static void test_power_cut_at_every_step_of_a_compaction(void) {
    const char *src = t_dir("pps_step_src");
    const char *base = t_dir("pps_step");
    model m[3];
    memset(m, 0, sizeof m);
    uint64_t rng = 11;
    pp_config c = step_cfg(src);
    pp_store *S;
    pp_book *b[3];
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "IDLE", &b[0]));
    OK(pp_book_open(S, "BUSY", &b[1]));
    for (int k = 0; k < 60; k++) OK(step(b[0], &m[0], &rng));
    for (int k = 0; k < 3000; k++) OK(step(b[1], &m[1], &rng));
    OK(pp_snapshot(b[1]));
    for (int k = 0; k < 3000; k++) OK(step(b[1], &m[1], &rng));
    OK(pp_book_open(S, "LATE", &b[2]));               /* declared in a segment compaction removes */
    for (int k = 0; k < 2000; k++) OK(step(b[1], &m[1], &rng));
    OK(pp_close(S));                                  /* everything durable; no compaction yet */
    const char *names[3] = {"IDLE", "BUSY", "LATE"};
    int steps = 0, completed = 0;
    for (int k = 0; k < 200 && !completed; k++) {
        char dir[600], next[600], grave[700], cmd[1400];
        snprintf(dir, sizeof dir, "%s/w%d", base, k);
        snprintf(next, sizeof next, "%s/after%d", base, k);
        snprintf(grave, sizeof grave, "%s.grave", dir);
        snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", src, dir);
        REQUIRE(system(cmd) == 0);
        sim_disk d;
        sim_cfg sc;
        memset(&sc, 0, sizeof sc);
        sc.seed = 1000 + (uint64_t)k;
        sim_init(&d, &sc);
        sim_img_init(&d, grave);
        sim_img_adopt(&d, dir);
        memset(&SIO, 0, sizeof SIO);
        SIO.d = &d; SIO.left = -1; SIO.mode = k % 3 == 1;
        sim_pp_io(&d, &SIO.inner);
        pp_io io = {NULL, sio_msync, sio_fdatasync, sio_fallocate, sio_ftruncate, sio_pwrite, sio_rename, sio_unlink, sio_fsync_dir, sio_wfd};
        pp_test_set_io(&io);
        pp_config cw = step_cfg(dir);
        pp_store *W;
        OK(pp_open(&W, &cw));
        pp_book *wb;
        OK(pp_book_open(W, "BUSY", &wb));
        SIO.left = k;                                 /* the cut: before the k-th durable step of the compaction */
        char wj[700];
        snprintf(wj, sizeof wj, "%s/journal", dir);
        int before = count_dir(wj);
        int rc = pp_compact(wb);
        if (!SIO.cut) { completed = 1; CHECK_EQ(rc, 0); }
        if (completed) CHECK(count_dir(wj) < before);  /* it did remove segments */
        else sim_cut(&d, SIO.mode);
        pp_close(W);
        pp_test_set_io(NULL);
        sim_img_build(&d, dir, next, k % 3, 77 + (uint64_t)k);
        sim_destroy(&d);
        rm_rf(grave);
        rm_rf(dir);
        pp_config cn = step_cfg(next);
        rc = pp_open(&W, &cn);
        CHECK_EQ(rc, 0);
        if (rc) { fprintf(stderr, "  cut before step %d of the compaction: pp_open %s\n", k, pp_strerror(rc)); break; }
        int n = 0;
        OK(pp_books(W, count_books, &n));
        CHECK_EQ(n, 3);
        for (int i = 0; i < 3; i++) {
            pp_book *x;
            OK(pp_book_open(W, names[i], &x));
            if (!same(x, &m[i])) { CHECK(0); fprintf(stderr, "  cut before step %d: %s differs\n", k, names[i]); }
        }
        OK(pp_close(W));
        rm_rf(next);
        steps = k;
    }
    CHECK(completed);
    printf("  the compaction took %d durable steps; a cut before each one recovered every book\n", steps);
}

/* ---- mutated stores against the independent decoder ---- */
typedef struct mfile { char name[64]; uint8_t *p; size_t len; } mfile;

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = (uint8_t *)malloc(n > 0 ? (size_t)n : 1);
    if (p && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) { free(p); p = NULL; }
    fclose(f);
    *len = n > 0 ? (size_t)n : 0;
    return p;
}
static void write_all(const char *path, const uint8_t *p, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (len && fwrite(p, 1, len, f) != len) { fclose(f); return; }
    fclose(f);
}

typedef struct ocmp { pd_book *b; int bad; uint64_t seen; } ocmp;
static int visit_pd(const pp_order *o, void *ctx) {
    ocmp *c = (ocmp *)ctx;
    pd_ord *x = pd_find(c->b, o->id, 0);
    c->seen++;
    if (!x || x->state != 1 || x->price != o->price || x->qty != o->qty || x->side != o->side || x->seq != o->seq || x->ts != o->ts_ns) c->bad++;
    return 0;
}

static void test_mutated_stores_match_the_independent_decoder(void) {
    const char *src = t_dir("pps_mut_src");
    const char *work = t_dir("pps_mut");
    pp_config c = cfg_for(src);
    c.journal_segment_bytes = 64 << 10;
    c.journal_chunk_bytes = 8 << 10;
    pp_store *S;
    pp_book *b[3];
    model m[3];
    memset(m, 0, sizeof m);
    uint64_t rng = 3;
    OK(pp_open(&S, &c));
    for (int i = 0; i < 3; i++) { char n[16]; snprintf(n, sizeof n, "M%d", i); OK(pp_book_open(S, n, &b[i])); }
    for (int k = 0; k < 2400; k++) {
        int i = k % 3;
        if (k % 60 == i) OK(pp_batch_begin(b[i]));          /* some events in atomic batches (one frame each) */
        OK(step(b[i], &m[i], &rng));
        if (k % 60 == 45 + i) OK(pp_batch_commit(b[i]));
    }
    OK(pp_sync(b[0]));
    for (int k = 0; k < 300; k++) OK(step(b[k % 3], &m[k % 3], &rng));   /* the last ones: above the durable mark */
    OK(pp_close(S));
    char jd[700];
    snprintf(jd, sizeof jd, "%s/journal", src);
    mfile f[8];
    memset(f, 0, sizeof f);
    int nf = 0;
    uint64_t *idx; size_t ni;
    REQUIRE(pp__list_numbered(jd, ".ppj", 0, &idx, &ni) == 0);
    for (size_t i = 0; i < ni && nf < 8; i++, nf++) {
        char p[1600];
        snprintf(f[nf].name, sizeof f[nf].name, "%020llu.ppj", (unsigned long long)idx[i]);
        snprintf(p, sizeof p, "%s/%s", jd, f[nf].name);
        f[nf].p = read_all(p, &f[nf].len);
        REQUIRE(f[nf].p != NULL);
    }
    free(idx);
    /* the unmutated store: the decoder and pp_open agree with the model */
    pd_seg segs[8];
    pd2_store st;
    for (int i = 0; i < nf; i++) { segs[i].index = strtoull(f[i].name, NULL, 10); segs[i].p = f[i].p; segs[i].len = f[i].len; }
    pd2_decode(segs, (size_t)nf, NULL, 0, &st);
    CHECK_EQ(st.corrupt, 0);
    CHECK_EQ(st.nb, 3);
    for (int i = 0; i < st.nb; i++) CHECK_EQ(st.b[i].last, m[i].n);
    pd2_free(&st);
    int rounds = light() ? 20 : 60, agree_ok = 0, agree_corrupt = 0;
    uint64_t r = 20261202;
    for (int round = 0; round < rounds; round++) {
        char dir[700], p[2200];
        snprintf(dir, sizeof dir, "%s/r%d", work, round);
        snprintf(p, sizeof p, "rm -rf '%s' && cp -a '%s' '%s'", dir, src, dir);
        REQUIRE(system(p) == 0);
        int which = (int)(t_rand(&r) % (uint64_t)nf);
        uint8_t *copy = (uint8_t *)malloc(f[which].len + 1);
        REQUIRE(copy != NULL);
        memcpy(copy, f[which].p, f[which].len);
        size_t len = f[which].len;
        int kind = (int)(t_rand(&r) % 4);
        size_t at = len ? (size_t)(t_rand(&r) % len) : 0;
        if (kind == 0 && len) copy[at] ^= (uint8_t)(1u << (t_rand(&r) % 8));          /* a flipped bit */
        else if (kind == 1 && len > 4096) { at = 4096 + (size_t)(t_rand(&r) % (len - 4096)); copy[at] ^= 0xff; }   /* in the data */
        else if (kind == 2) len = at;                                                    /* truncated */
        else if (len) { size_t z = (size_t)(t_rand(&r) % 700); if (at + z > len) z = len - at; memset(copy + at, 0, z); }   /* zeroed sectors */
        snprintf(p, sizeof p, "%s/journal/%s", dir, f[which].name);
        write_all(p, copy, len);
        for (int i = 0; i < nf; i++) { segs[i].p = i == which ? copy : f[i].p; segs[i].len = i == which ? len : f[i].len; }
        pd2_decode(segs, (size_t)nf, NULL, 0, &st);
        pp_check_result cr;
        int crc0 = pp_check(dir, "M0", &cr);
        pp_config cm = cfg_for(dir);
        int rc = pp_open(&S, &cm);
        if (st.corrupt) {
            if (rc == 0) {
                CHECK(0);
                fprintf(stderr, "  round %d: segment %d, mutation %d at %zu: the decoder refuses, pp_open opened\n", round, which, kind, at);
                pp_close(S);
            } else agree_corrupt++;
            CHECK(crc0 != 0 || rc != 0);
        } else {
            if (rc) {
                CHECK(0);
                fprintf(stderr, "  round %d: segment %d, mutation %d at %zu: the decoder opens, pp_open: %s\n", round, which, kind, at, pp_strerror(rc));
            } else {
                int good = 1;
                for (int i = 0; i < st.nb; i++) {
                    pp_book *x;
                    if (pp_book_open(S, st.name[i], &x)) { good = 0; break; }
                    ocmp oc = {&st.b[i], 0, 0};
                    if (pp_orders(x, visit_pd, &oc) || oc.bad || oc.seen != st.b[i].n || pp_last_seq(x) != st.b[i].last) good = 0;
                }
                int nbooks = 0;
                pp_books(S, count_books, &nbooks);
                if (nbooks != st.nb) good = 0;
                CHECK(good);
                if (!good) fprintf(stderr, "  round %d: segment %d, mutation %d at %zu: the books differ from the decoder's\n", round, which, kind, at);
                else agree_ok++;
                pp_close(S);
            }
        }
        pd2_free(&st);
        free(copy);
        rm_rf(dir);
    }
    printf("  %d mutated stores: %d opened equal to the decoder's books, %d refused by both\n", rounds, agree_ok, agree_corrupt);
    CHECK(agree_ok > 0);
    CHECK(agree_corrupt > 0);
    for (int i = 0; i < nf; i++) free(f[i].p);
}

static void test_market_data_on_the_store_journal(void) {
    const char *d = t_dir("pps_md");
    pp_config c = cfg_for(d);
    pp_store *S;
    pp_book *b, *o;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "BTC-USD", &b));
    OK(pp_book_open(S, "ETH-USD", &o));
    pp_md_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.price_scale = 100;
    OK(pp_md_declare(b, &sp));
    pp_tick tk;
    uint64_t base = (uint64_t)1767225600 * 1000000000ull;
    int nt = 0;
    for (uint64_t s = 1; s <= 3000; s++) {
        if (s == 1500) continue;                         /* a gap */
        memset(&tk, 0, sizeof tk);
        tk.exch_seq = s; tk.exch_ts_ns = base + s * 10000000ull; tk.recv_ts_ns = tk.exch_ts_ns + 1;
        tk.price = 6500000 + (int64_t)(s % 97); tk.size = 1 + (int64_t)(s % 5); tk.side = PP_BUY;
        OK(pp_tick_append(b, &tk));
        nt++;
        if (s % 3 == 0) { pp_order x = {s, 100, 1, s, PP_SELL, 0, NULL, 0}; OK(pp_add(o, &x)); }   /* another book in between */
        if (s == 2000) OK(pp_snapshot(b));              /* history saved with the snapshot, the rest replayed */
    }
    CHECK_EQ(pp_tick_append(b, &tk), PP_EDUP);
    int64_t ticks = pp_md_ticks(b, 0, UINT64_MAX, NULL, 0), bars = pp_md_bars(b, PP_BAR_1S, 0, UINT64_MAX, NULL, 0);
    int64_t gaps = pp_md_gaps(b, 0, UINT64_MAX, NULL, 0);
    CHECK_EQ(ticks, nt);
    CHECK_EQ(gaps, 1);
    uint64_t last = pp_last_seq(b);
    OK(pp_close(S));
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "BTC-USD", &b));
    OK(pp_book_open(S, "ETH-USD", &o));
    CHECK_EQ(pp_last_seq(b), last);
    CHECK_EQ(pp_md_last_exch_seq(b), 3000);
    CHECK_EQ(pp_md_ticks(b, 0, UINT64_MAX, NULL, 0), ticks);
    CHECK_EQ(pp_md_bars(b, PP_BAR_1S, 0, UINT64_MAX, NULL, 0), bars);
    CHECK_EQ(pp_md_gaps(b, 0, UINT64_MAX, NULL, 0), 1);
    pp_md_spec got;
    OK(pp_md_spec_get(b, &got));
    CHECK_EQ(got.price_scale, 100);
    CHECK_EQ(pp_order_count(o), 999);                  /* every third seq but the gap (1500) */
    memset(&tk, 0, sizeof tk);
    tk.exch_seq = 3001; tk.exch_ts_ns = base + 3001 * 10000000ull; tk.price = 1; tk.size = 1;
    OK(pp_tick_append(b, &tk));                         /* goes on after the recovered exchange seq */
    OK(pp_close(S));
}

/* The hot-path index grows from 8 entries to 2^18 while the book trades:
 * every answer (EEXIST, ENOENT, EOVERFILL, success) matches a model, through
 * every migration from the old table to the new one. */
static void test_index_grows_without_losing_an_order(void) {
    const char *d = t_dir("pps_grow");
    pp_config c = cfg_for(d);
    pp_store *S;
    pp_book *b;
    enum { IDS = 200000 };
    static int64_t qty[IDS + 1];
    memset(qty, 0, sizeof qty);
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "G", &b));
    uint64_t rng = 17, ops = light() ? 200000 : 700000, wrong = 0, live = 0;
    for (uint64_t k = 0; k < ops; k++) {
        uint64_t r = t_rand(&rng);
        /* adds outnumber removals early, so the index passes several sizes */
        uint64_t id = 1 + (r >> 8) % (k < ops / 2 ? IDS : IDS / 4);
        int kind = (int)(r % (k < ops / 2 ? 5 : 3)), rc, want;
        if (kind >= 3) kind = 0;
        switch (kind) {
        case 0: {
            pp_order o = {id, 100, 3, k, PP_BUY, 0, NULL, 0};
            want = qty[id] ? PP_EEXIST : 0;
            rc = pp_add(b, &o);
            if (!rc) { qty[id] = 3; live++; }
            break; }
        case 1:
            want = qty[id] ? 0 : PP_ENOENT;
            rc = pp_cancel(b, id);
            if (!rc) { qty[id] = 0; live--; }
            break;
        default: {
            int64_t q = 1 + (int64_t)((r >> 40) % 4);
            want = !qty[id] ? PP_ENOENT : q > qty[id] ? PP_EOVERFILL : 0;
            rc = pp_execute(b, id, q, 100);
            if (!rc) { qty[id] -= q; if (!qty[id]) live--; }
            break; }
        }
        if (rc != want) wrong++;
    }
    CHECK_EQ(wrong, 0);
    CHECK_EQ(pp_order_count(b), live);
    pp_stats st;
    pp_get_stats(b, &st);
    printf("  %llu events, %llu live orders at the end; %llu growths found no table made ahead\n",
           (unsigned long long)pp_last_seq(b), (unsigned long long)live, (unsigned long long)st.grow_stalls);
    OK(pp_close(S));
    OK(pp_open(&S, &c));                            /* and the index rebuilt at open answers the same */
    OK(pp_book_open(S, "G", &b));
    wrong = 0;
    for (uint64_t id = 1; id <= IDS; id += 7) {
        int rc = pp_execute(b, id, 1000, 100);
        if (rc != (qty[id] ? PP_EOVERFILL : PP_ENOENT)) wrong++;
    }
    CHECK_EQ(wrong, 0);
    OK(pp_close(S));
}

int main(void) {
    RUN(test_books_come_back_after_reopen);
    RUN(test_damage_below_the_mark_fails_closed_with_file_and_offset);
    RUN(test_a_damaged_retired_list_fails_closed);
    RUN(test_torn_mark_write_loses_nothing);
    RUN(test_journal_first_seq_follows_compaction);
    RUN(test_a_writer_waiting_for_the_window_wakes_the_syncer);
    RUN(test_thread_start_runs_in_each_background_thread);
    RUN(test_many_books_from_two_threads_one_flush_per_round);
    RUN(test_five_thousand_idle_books_are_cheap);
    RUN(test_compaction_snapshots_the_idle_book_that_pins);
    RUN(test_compaction_keeps_what_a_waking_idle_book_journals);
    RUN(test_journal_reader_beside_compaction);
    RUN(test_killed_process_keeps_what_was_durable);
    RUN(test_old_layout_is_refused);
    RUN(test_power_cuts_many_books_two_threads);
    RUN(test_power_cut_at_every_step_of_a_compaction);
    RUN(test_mutated_stores_match_the_independent_decoder);
    RUN(test_market_data_on_the_store_journal);
    RUN(test_index_grows_without_losing_an_order);
    int rc = t_done();
    {   /* the scratch directories (t_dir's base) */
        const char *base = getenv("PLG_TEST_DIR");
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'/pps_*", base && *base ? base : "build/tmp");
        if (system(cmd) != 0) rc = rc ? rc : 0;
    }
    return rc;
}
