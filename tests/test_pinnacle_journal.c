/* pinnacle_persist.h: the store journal layer (>>storejournal), driven
 * directly, before the books stand on it:
 *   - two threads append at once through segment switches; every published
 *     frame comes back once, in each thread's order, after a reopen;
 *   - a sync round is one flush while the frames stay in one segment,
 *     whatever the number of writers;
 *   - a claimed but unpublished frame is the end for the syncer and for
 *     recovery; what follows it is never durable nor replayed;
 *   - damage below the durable mark fails closed with file and offset;
 *     damage above it is a torn tail;
 *   - a reopen continues at a new segment: positions only grow;
 *   - a preparer that runs late never makes a retired segment again;
 *   - compaction removes whole segments below a position, oldest first. */
/* sim_disk.h holds helpers this test does not use */
#pragma GCC diagnostic ignored "-Wunused-function"
#define PINNACLE_PERSIST_IMPLEMENTATION
#define PINNACLE_PERSIST_TEST_IO
#include "pinnacle_persist.h"
#include "sim_disk.h"
#include "t.h"
#include <ftw.h>
#include <pthread.h>

#define SEG (64u << 10)            /* 1,024 frames of 64 bytes: many switches */

static int light(void) {
    const char *p = getenv("LD_PRELOAD");
    return (p && strstr(p, "valgrind")) || getenv("PLG_TEST_QUICK") != NULL;
}

typedef struct seen {
    uint64_t n, last_pos, bad;
    uint64_t next[4];              /* per writer: the counter expected next */
} seen;

static int visit(void *ctx, uint64_t pos, const uint8_t *f, uint32_t len) {
    seen *s = (seen *)ctx;
    uint32_t w = pp__get32(f + 12);
    uint64_t k = pp__get64(f + 16);
    if (len != 64 || f[8] != 1 || w >= 4 || pos <= s->last_pos) { s->bad++; return 0; }
    if (k != s->next[w]) s->bad++;
    s->next[w] = k + 1;
    s->last_pos = pos;
    s->n++;
    return 0;
}

static int append(pp__sj *j, uint32_t writer, uint64_t k, uint64_t *pos) {
    pp__sjclaim c;
    int rc = pp__sj_claim(j, 64, &c);
    if (rc) return rc;
    memset(c.f + 4, 0, 60);
    c.f[8] = 1;
    pp__put32(c.f + 12, writer);
    pp__put64(c.f + 16, k);
    pp__sj_publish(c.f, c.seed, c.pos, 64);
    if (pos) *pos = c.pos;
    return 0;
}

typedef struct writer_arg { pp__sj *j; uint32_t id; uint64_t count; int rc; } writer_arg;
static void *writer_main(void *p) {
    writer_arg *a = (writer_arg *)p;
    for (uint64_t k = 0; k < a->count && !a->rc; k++) a->rc = append(a->j, a->id, k, NULL);
    return NULL;
}

static volatile int sync_stop;
static void *syncer_main(void *p) {
    pp__sj *j = (pp__sj *)p;
    while (!__atomic_load_n(&sync_stop, __ATOMIC_ACQUIRE)) {
        pp__sj_prepare(j);
        if (pp__sj_sync(j, 1, NULL, NULL)) break;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int count_files(const char *dir) {
    uint64_t *v; size_t n;
    if (pp__list_numbered(dir, ".ppj", 0, &v, &n)) return -1;
    PINNACLE_PERSIST_FREE(v);
    return (int)n;
}

static void test_two_writers_through_segment_switches(void) {
    const char *d = t_dir("ppj_two_writers");
    pp__sj *j;
    pp__sjwhere w;
    seen s0;
    memset(&s0, 0, sizeof s0);
    REQUIRE(pp__sj_open(&j, d, SEG, 0, 0, visit, &s0, &w) == 0);
    CHECK_EQ(s0.n, 0);
    uint64_t per = light() ? 5000 : 60000;
    writer_arg a[2] = {{j, 0, per, 0}, {j, 1, per, 0}};
    pthread_t th[3];
    __atomic_store_n(&sync_stop, 0, __ATOMIC_RELEASE);
    REQUIRE(pthread_create(&th[2], NULL, syncer_main, j) == 0);
    for (int i = 0; i < 2; i++) REQUIRE(pthread_create(&th[i], NULL, writer_main, &a[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    __atomic_store_n(&sync_stop, 1, __ATOMIC_RELEASE);
    pthread_join(th[2], NULL);
    CHECK_EQ(a[0].rc, 0);
    CHECK_EQ(a[1].rc, 0);
    /* the last round makes everything durable, its mark goes with the next */
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    CHECK_EQ(pp__load_acq(&j->durable), pp__load_acq(&j->tail));
    CHECK(pp__sj_stat(&j->st_created) > 2 * per * 64 / SEG);   /* it did switch segments */
    /* at most the window is mapped: file descriptors stay bounded */
    int mapped = 0;
    for (unsigned k = 0; k < PP__SJ_WIN; k++) mapped += j->win[k] != NULL;
    CHECK(mapped <= (int)PP__SJ_WIN);
    pp__sj_free(j);
    seen s;
    memset(&s, 0, sizeof s);
    REQUIRE(pp__sj_open(&j, d, SEG, 1, 0, visit, &s, &w) == 0);
    CHECK_EQ(s.bad, 0);
    CHECK_EQ(s.n, 2 * per);
    CHECK_EQ(s.next[0], per);
    CHECK_EQ(s.next[1], per);
    CHECK_EQ(w.torn, 0);
    pp__sj_free(j);
}

static void test_one_flush_per_round(void) {
    const char *d = t_dir("ppj_one_flush");
    pp__sj *j;
    REQUIRE(pp__sj_open(&j, d, 1u << 20, 0, 0, NULL, NULL, NULL) == 0);
    /* 100 "books" (writer ids) of 4 frames each, then one round */
    for (uint64_t k = 0; k < 400; k++) REQUIRE(append(j, (uint32_t)(k % 4), k, NULL) == 0);
    uint64_t f0 = pp__sj_stat(&j->st_flushes);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    CHECK_EQ(pp__sj_stat(&j->st_flushes) - f0, 1);
    CHECK_EQ(pp__load_acq(&j->durable), pp__load_acq(&j->tail));
    /* a round with nothing new writes the lagging mark: one flush; then none */
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    CHECK_EQ(pp__sj_stat(&j->st_flushes) - f0, 2);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    CHECK_EQ(pp__sj_stat(&j->st_flushes) - f0, 2);
    pp__sj_free(j);
}

typedef struct range { uint64_t from, to; int calls; } range;
static void on_durable(void *ctx, pp__sj *j, uint64_t from, uint64_t to) {
    (void)j;
    range *r = (range *)ctx;
    if (!r->calls) r->from = from;
    r->to = to; r->calls++;
}

static void test_unpublished_claim_is_the_end(void) {
    const char *d = t_dir("ppj_unpublished");
    pp__sj *j;
    REQUIRE(pp__sj_open(&j, d, SEG, 0, 0, NULL, NULL, NULL) == 0);
    uint64_t p1;
    REQUIRE(append(j, 0, 0, &p1) == 0);
    pp__sjclaim hole;                          /* claimed, never published */
    REQUIRE(pp__sj_claim(j, 64, &hole) == 0);
    memset(hole.f + 8, 0xab, 56);              /* written but not committed */
    REQUIRE(append(j, 0, 1, NULL) == 0);       /* published after the hole */
    range r = {0, 0, 0};
    CHECK_EQ(pp__sj_sync(j, 0, on_durable, &r), 0);
    CHECK_EQ(pp__load_acq(&j->durable), p1 + 64);   /* stops at the hole */
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.from, p1);
    CHECK_EQ(r.to, p1 + 64);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);     /* the mark vouches for frame 1 only */
    pp__sj_free(j);                            /* a crash: nothing sealed */
    seen s;
    memset(&s, 0, sizeof s);
    pp__sjwhere w;
    REQUIRE(pp__sj_open(&j, d, SEG, 0, 0, visit, &s, &w) == 0);
    CHECK_EQ(s.n, 1);                          /* the frame after the hole is not replayed */
    CHECK_EQ(s.bad, 0);
    CHECK_EQ(w.torn, 1);                       /* its bytes are there: a torn tail */
    uint64_t restart = pp__load_acq(&j->tail);
    CHECK(restart > p1 + 3 * 64);              /* a new segment: positions only grow */
    CHECK_EQ(restart % SEG, 0);
    /* the reopen sealed the old segment at its valid end: the stale frame
     * after the hole can never come back, whatever is appended now */
    REQUIRE(append(j, 1, 0, NULL) == 0);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    pp__sj_free(j);
    memset(&s, 0, sizeof s);
    REQUIRE(pp__sj_open(&j, d, SEG, 1, 0, visit, &s, &w) == 0);
    CHECK_EQ(s.n, 2);
    CHECK_EQ(s.next[0], 1);
    CHECK_EQ(s.next[1], 1);
    CHECK_EQ(s.bad, 0);
    pp__sj_free(j);
}

static void flip(const char *path, uint64_t off) {
    int fd = open(path, O_RDWR);
    uint8_t b = 0;
    if (fd < 0) return;
    if (pread(fd, &b, 1, (off_t)off) == 1) { b ^= 0x40; if (pwrite(fd, &b, 1, (off_t)off) != 1) b = 0; }
    close(fd);
}

static void test_damage_below_the_mark_fails_closed(void) {
    const char *d = t_dir("ppj_damage");
    pp__sj *j;
    REQUIRE(pp__sj_open(&j, d, SEG, 0, 0, NULL, NULL, NULL) == 0);
    uint64_t first = pp__load_acq(&j->tail);
    for (uint64_t k = 0; k < 100; k++) REQUIRE(append(j, 0, k, NULL) == 0);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);      /* mark: 100 frames */
    for (uint64_t k = 100; k < 110; k++) REQUIRE(append(j, 0, k, NULL) == 0);   /* not synced */
    pp__sj_free(j);
    char seg[4096];
    pp__numbered(seg, sizeof seg, d, first / SEG, ".ppj");
    /* above the mark: a torn tail, the 100 durable frames come back */
    flip(seg, PP__PAGE + 105 * 64 + 20);
    seen s;
    memset(&s, 0, sizeof s);
    pp__sjwhere w;
    REQUIRE(pp__sj_open(&j, d, SEG, 1, 0, visit, &s, &w) == 0);
    CHECK_EQ(s.n, 105);
    CHECK_EQ(s.bad, 0);
    CHECK_EQ(w.torn, 1);
    pp__sj_free(j);
    /* below the mark: corruption, with the file and the frame's offset */
    flip(seg, PP__PAGE + 42 * 64 + 20);
    memset(&s, 0, sizeof s);
    CHECK_EQ(pp__sj_open(&j, d, SEG, 0, 0, visit, &s, &w), PP_ECORRUPT);
    CHECK(strcmp(w.file, seg) == 0);
    CHECK_EQ(w.offset, PP__PAGE + 42 * 64);
    CHECK(strstr(w.detail, "below the durable mark") != NULL);
}

/* The torn-tail check reads only what holds data (lseek SEEK_DATA skips the
 * unwritten rest of a 64 MiB segment): a stray byte far into the free
 * space, after megabytes that were never written, is still found, and its
 * absence is not taken for one. */
static void test_stray_byte_far_in_the_free_space_is_a_torn_tail(void) {
    const uint64_t big = 64u << 20;
    for (int stray = 0; stray <= 1; stray++) {
        const char *d = t_dir(stray ? "ppj_stray" : "ppj_nostray");
        pp__sj *j;
        REQUIRE(pp__sj_open(&j, d, big, 0, 0, NULL, NULL, NULL) == 0);
        uint64_t first = pp__load_acq(&j->tail);
        for (uint64_t k = 0; k < 10; k++) REQUIRE(append(j, 0, k, NULL) == 0);
        CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
        pp__sj_free(j);                            /* a crash: nothing sealed */
        char seg[4096];
        pp__numbered(seg, sizeof seg, d, first / big, ".ppj");
        if (stray) flip(seg, PP__PAGE + (40u << 20) + 7);   /* one byte, 40 MiB in */
        seen s;
        memset(&s, 0, sizeof s);
        pp__sjwhere w;
        REQUIRE(pp__sj_open(&j, d, big, PP__SJ_READONLY, 0, visit, &s, &w) == 0);
        CHECK_EQ(s.n, 10);
        CHECK_EQ(s.bad, 0);
        CHECK_EQ(w.torn, stray);
        if (stray) CHECK(strstr(w.detail, "torn tail") != NULL);
        pp__sj_free(j);
    }
}

/* The preparer reads the tail, and when it is past the middle of its
 * segment, gets the next segment made. A preparer that read the tail and
 * then did not run until the writers had filled that next segment and the
 * syncer had retired it asked for a retired segment: its window slot was
 * empty (or held a newer one), so the segment was created again, the new
 * empty file renamed over the full one, then synced and sealed (a power
 * cut later: "invalid frame below the durable mark" at its first frame); a
 * slot holding a newer segment poisoned the journal instead. Asked for a
 * segment that is done, pp__sj_seg_get now answers NULL and nothing else
 * happens: the call below is what the late preparer does. */
static void test_late_preparer_never_recreates_a_retired_segment(void) {
    const char *d = t_dir("ppj_late_prepare");
    pp__sj *j;
    REQUIRE(pp__sj_open(&j, d, SEG, 0, 0, NULL, NULL, NULL) == 0);
    uint64_t first = pp__load_acq(&j->tail) / SEG, k = 0, per = SEG / 64;
    for (; k < 2 * per + 100; k++) REQUIRE(append(j, 0, k, NULL) == 0);
    for (int r = 0; r < 3; r++) CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    CHECK(j->win[(first + 1) % PP__SJ_WIN] == NULL);          /* the second segment is retired */
    CHECK(pp__sj_seg_get(j, first + 1) == NULL);               /* the late preparer's request */
    CHECK_EQ(pp__load_acq(&j->err), 0);
    for (; k < 5 * per + 100; k++) {           /* rounds on the way: a segment made again would retire too */
        REQUIRE(append(j, 0, k, NULL) == 0);
        if (k % 256 == 0) CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    }
    for (int r = 0; r < 3; r++) CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    pp__sjseg *newer = j->win[(first + 1) % PP__SJ_WIN];
    CHECK(newer != NULL && newer->index > first + 1);          /* its slot holds a newer segment now */
    CHECK(pp__sj_seg_get(j, first + 1) == NULL);
    CHECK_EQ(pp__load_acq(&j->err), 0);                        /* not poisoned */
    for (; k < 6 * per + 50; k++) REQUIRE(append(j, 0, k, NULL) == 0);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    pp__sj_free(j);
    seen s;
    memset(&s, 0, sizeof s);
    pp__sjwhere w;
    CHECK_EQ(pp__sj_open(&j, d, SEG, 1, 0, visit, &s, &w), 0);
    CHECK_EQ(s.n, k);                                          /* every frame, in order */
    CHECK_EQ(s.bad, 0);
    if (j) pp__sj_free(j);
}

static void test_compaction_drops_whole_segments(void) {
    const char *d = t_dir("ppj_compact");
    pp__sj *j;
    REQUIRE(pp__sj_open(&j, d, SEG, 0, 0, NULL, NULL, NULL) == 0);
    uint64_t cut = 0;
    for (uint64_t k = 0; k < 5000; k++) {
        uint64_t pos;
        REQUIRE(append(j, 0, k, &pos) == 0);
        if (k == 3000) cut = pos;
        if (k % 500 == 0) { CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0); }
    }
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    int before = count_files(d);
    CHECK_EQ(pp__sj_drop_below(j, cut), 0);
    int after = count_files(d);
    CHECK_EQ(before - after, (int)(cut / SEG - 1));   /* segments 1 .. cut's - 1 */
    CHECK_EQ(pp__sj_stat(&j->st_dropped), (uint64_t)(before - after));
    pp__sj_free(j);
    seen s;
    memset(&s, 0, sizeof s);
    s.next[0] = 0;
    pp__sjwhere w;
    REQUIRE(pp__sj_open(&j, d, SEG, 1, cut, visit, &s, &w) == 0);
    CHECK_EQ(s.n, 2000);
    CHECK_EQ(s.bad, 1);                        /* the first counter seen is 3000, not 0 */
    CHECK_EQ(s.next[0], 5000);
    pp__sj_free(j);
}

/* ---- power cuts ---- */
typedef struct cutrun {
    pp__sj *j;
    pthread_mutex_t mu;
    uint64_t acked[2];             /* per writer: frames the syncer called durable */
    uint64_t acked_pos[2];         /* per writer: the position of the last of them */
    uint64_t kept_from;            /* compaction removed every segment below this position */
    uint64_t next[2];              /* per writer: the counter to write next */
    volatile int stop, stop_sync;
    int compact;
} cutrun;

static void cut_durable(void *ctx, pp__sj *j, uint64_t from, uint64_t to) {
    cutrun *c = (cutrun *)ctx;
    uint64_t p = from;
    uint32_t len;
    const uint8_t *f;
    pthread_mutex_lock(&c->mu);
    while (p < to && (f = pp__sj_next(j, &p, &len)) != NULL) {
        uint32_t w = pp__get32(f + 12);
        uint64_t k = pp__get64(f + 16);
        if (w < 2 && k + 1 > c->acked[w]) { c->acked[w] = k + 1; c->acked_pos[w] = p - len; }
    }
    pthread_mutex_unlock(&c->mu);
}

typedef struct cutw { cutrun *c; uint32_t id; } cutw;
static void *cut_writer(void *p) {
    cutw *a = (cutw *)p;
    cutrun *c = a->c;
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        if (append(c->j, a->id, c->next[a->id], NULL)) break;   /* poisoned: the disk failed */
        c->next[a->id]++;
    }
    return NULL;
}

static void *cut_syncer(void *p) {
    cutrun *c = (cutrun *)p;
    for (int round = 0; !__atomic_load_n(&c->stop_sync, __ATOMIC_ACQUIRE); round++) {
        pp__sj_prepare(c->j);
        if (pp__sj_sync(c->j, round & 1, cut_durable, c)) break;
        if (c->compact && round % 8 == 7) {
            uint64_t d = pp__load_acq(&c->j->durable);
            if (d > 3 * SEG) {
                (void)pp__sj_drop_below(c->j, d - 2 * SEG);   /* a failed removal loses nothing */
                pthread_mutex_lock(&c->j->mu);
                uint64_t kept = c->j->first_index * SEG;
                pthread_mutex_unlock(&c->j->mu);
                pthread_mutex_lock(&c->mu);
                c->kept_from = kept;
                pthread_mutex_unlock(&c->mu);
            }
        }
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb; (void)flag; (void)f;
    return remove(p);
}
static void rm_rf(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

typedef struct cutseen { uint64_t n, first[2], last[2], lastpos[2], bad; int have[2]; } cutseen;
static int cut_visit(void *ctx, uint64_t pos, const uint8_t *f, uint32_t len) {
    cutseen *s = (cutseen *)ctx;
    uint32_t w = pp__get32(f + 12);
    uint64_t k = pp__get64(f + 16);
    if (len != 64 || w >= 2) { s->bad++; return 0; }
    if (!s->have[w]) { s->have[w] = 1; s->first[w] = k; }
    else if (k != s->last[w] + 1) s->bad++;
    s->last[w] = k;
    s->lastpos[w] = pos;
    s->n++;
    return 0;
}

/* One seed: three incarnations, each ended by a power cut. 0 = held. */
static int cut_seed(uint64_t seed, const char *base) {
    char dir[600], next[600], grave[700];
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 1;
    uint64_t expect[2] = {0, 0};           /* per writer: what recovery must bring back at least */
    uint64_t expect_pos[2] = {0, 0}, kept_from = 0;
    snprintf(dir, sizeof dir, "%s/s%llu_0", base, (unsigned long long)seed);
    mkdir(dir, 0755);
    int bad = 0;
    for (int inc = 0; inc < 3 && !bad; inc++) {
        sim_disk d;
        sim_cfg sc;
        memset(&sc, 0, sizeof sc);
        sc.seed = seed * 100 + (uint64_t)inc;
        if (seed % 3 == 0) sc.p_sync_eio = 3000;          /* a failed msync poisons the journal */
        if (seed % 5 == 0) sc.p_grow_enospc = 20000;
        sim_init(&d, &sc);
        snprintf(grave, sizeof grave, "%s.grave", dir);
        sim_img_init(&d, grave);
        sim_img_adopt(&d, dir);
        pp_io io;
        sim_pp_io(&d, &io);
        pp_test_set_io(&io);
        /* recovery on this incarnation's disk, faults off */
        uint32_t eio = d.cfg.p_sync_eio, nospc = d.cfg.p_grow_enospc;
        d.cfg.p_sync_eio = d.cfg.p_grow_enospc = 0;
        cutseen s;
        memset(&s, 0, sizeof s);
        pp__sjwhere w;
        cutrun c;
        memset(&c, 0, sizeof c);
        int rc = pp__sj_open(&c.j, dir, SEG, seed % 2 ? PP__SJ_PRIVATE : 0, 0, cut_visit, &s, &w);   /* odd seeds: PP_PRIVATE_PAGES */
        d.cfg.p_sync_eio = eio; d.cfg.p_grow_enospc = nospc;
        if (rc) { fprintf(stderr, "  seed %llu inc %d: open: %s at %s offset %llu: %s\n", (unsigned long long)seed, inc,
                          pp_strerror(rc), w.file, (unsigned long long)w.offset, w.detail); bad = 1; }
        for (int k = 0; k < 2 && !bad; k++) {
            /* compaction may have removed a writer's whole history (it stopped
             * early, the other went on): then its acknowledged frames all lie
             * below what compaction kept */
            int gone = !s.have[k] && expect[k] && expect_pos[k] < kept_from;
            uint64_t got = s.have[k] ? s.last[k] + 1 : gone ? expect[k] : 0;
            if (s.bad || got < expect[k]) {
                fprintf(stderr, "  seed %llu inc %d writer %d: recovered up to %llu (first %llu, %llu out of order), acknowledged %llu\n",
                        (unsigned long long)seed, inc, k, (unsigned long long)got, (unsigned long long)s.first[k],
                        (unsigned long long)s.bad, (unsigned long long)expect[k]);
                bad = 1;
            }
            c.next[k] = got;
            c.acked[k] = got;               /* recovered = durable from here on */
            c.acked_pos[k] = s.have[k] ? s.lastpos[k] : expect_pos[k];
        }
        if (!bad) {
            pthread_mutex_init(&c.mu, NULL);
            c.compact = (seed >> 1) % 2;
            c.kept_from = kept_from;
            pthread_t th[3];
            cutw wa[2] = {{&c, 0}, {&c, 1}};
            pthread_create(&th[2], NULL, cut_syncer, &c);
            for (int k = 0; k < 2; k++) pthread_create(&th[k], NULL, cut_writer, &wa[k]);
            struct timespec ts = {0, (long)(1000000 + sim__r(&rng) % 20000000)};
            nanosleep(&ts, NULL);
            __atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
            for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);   /* the writers may wait for the syncer */
            __atomic_store_n(&c.stop_sync, 1, __ATOMIC_RELEASE);
            pthread_join(th[2], NULL);
            pthread_mutex_lock(&c.mu);
            expect[0] = c.acked[0]; expect[1] = c.acked[1];
            expect_pos[0] = c.acked_pos[0]; expect_pos[1] = c.acked_pos[1];
            kept_from = c.kept_from;
            pthread_mutex_unlock(&c.mu);
            pthread_mutex_destroy(&c.mu);
        }
        sim_cut(&d, (int)(sim__r(&rng) % 3) == 1);
        if (c.j) pp__sj_free(c.j);
        pp_test_set_io(NULL);
        snprintf(next, sizeof next, "%s/s%llu_%d", base, (unsigned long long)seed, inc + 1);
        sim_img_build(&d, dir, next, (int)(sim__r(&rng) % 3), seed * 31 + (uint64_t)inc);
        sim_destroy(&d);
        rm_rf(grave);
        rm_rf(dir);
        snprintf(dir, sizeof dir, "%s", next);
    }
    rm_rf(dir);
    return bad;
}

static void test_power_cuts_with_two_writers(void) {
    const char *base = t_dir("ppj_cuts");
    int seeds = light() ? 4 : 12, failed = 0;
    const char *e = getenv("PP_SJ_SEED");
    uint64_t from = e ? strtoull(e, NULL, 10) : 1;
    if (e) seeds = 1;
    for (int i = 0; i < seeds; i++) {
        int bad = cut_seed(from + (uint64_t)i, base);
        if (bad) { failed++; fprintf(stderr, "  replay: PP_SJ_SEED=%llu %s\n", (unsigned long long)(from + (uint64_t)i), "build/test/test_pinnacle_journal"); }
        CHECK_EQ(bad, 0);
    }
    CHECK_EQ(failed, 0);
}


/* ---- PP_PRIVATE_PAGES: the segment mapped private, written by pwrite ---- */

/* Bytes of one field of /proc/self/smaps ("Anonymous", "Rss") for the
 * mapping that holds addr; -1 if not found. */
static long long smaps_bytes_at(const void *addr, const char *field) {
    FILE *fp = fopen("/proc/self/smaps", "r");
    if (!fp) return -1;
    char line[512];
    int in = 0;
    long long kb = -1;
    uintptr_t a = (uintptr_t)addr;
    while (fgets(line, sizeof line, fp)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') == line + strspn(line, "0123456789abcdef")) {
            in = a >= lo && a < hi;
            continue;
        }
        size_t fl = strlen(field);
        if (in && !strncmp(line, field, fl) && line[fl] == ':' && sscanf(line + fl + 1, " %lld kB", &kb) == 1) break;
    }
    fclose(fp);
    return kb < 0 ? -1 : kb * 1024;
}
static long long anon_bytes_at(const void *addr) { return smaps_bytes_at(addr, "Anonymous"); }

/* Pages of [addr, addr + len) that are in this process's page tables (the
 * present bit of /proc/self/pagemap); -1 if it cannot be read. */
static long long mapped_pages(const void *addr, size_t len) {
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0) return -1;
    uint64_t first = (uint64_t)(uintptr_t)addr / 4096, n = len / 4096;
    long long present = 0;
    uint64_t buf[512];
    for (uint64_t i = 0; i < n;) {
        uint64_t k = n - i < 512 ? n - i : 512;
        if (pread(fd, buf, k * 8, (off_t)((first + i) * 8)) != (ssize_t)(k * 8)) { close(fd); return -1; }
        for (uint64_t q = 0; q < k; q++) present += (buf[q] >> 63) & 1;
        i += k;
    }
    close(fd);
    return present;
}

/* The shared mapping (the default): a sync round takes the whole pages it
 * writes back out of the mapping first, so writeback has no page-table
 * entry to write-protect (one TLB shootdown for the range, not one per
 * page). The pages the writers filled are no longer in the page tables
  * after the round (/proc/self/pagemap), those ahead stay mapped, and
 * every frame still reads back, from the page cache, and from the file
 * after a reopen. */
/* After a sync round that took pages out of memory: the n frames appended
 * from `first` (64 bytes, type 1, seq 0..n-1) read back in order through
 * the mapping, and a reopen of the journal in d recovers them; frees j. */
static void frames_read_back(pp__sj *j, const char *d, uint64_t bytes, uint64_t first, uint64_t n) {
    uint64_t pos = first, k = 0, bad = 0;
    uint32_t len;
    const uint8_t *f;
    while ((f = pp__sj_next(j, &pos, &len)) != NULL) {
        if (len != 64 || f[8] != 1 || pp__get64(f + 16) != k) bad++;
        k++;
    }
    CHECK_EQ(k, n);
    CHECK_EQ(bad, 0);
    pp__sj_free(j);
    seen s;
    memset(&s, 0, sizeof s);
    pp__sjwhere w;
    s.next[1] = 0;
    REQUIRE(pp__sj_open(&j, d, bytes, PP__SJ_READONLY, 0, visit, &s, &w) == 0);
    CHECK_EQ(s.n, n);
    CHECK_EQ(s.bad, 0);
    pp__sj_free(j);
}

/* MiB of frames the written-pages tests append: 8 under PLG_TEST_QUICK
 * (TSan and valgrind, where each append is slow), 24 otherwise. */
static uint64_t written_mib(void) { return getenv("PLG_TEST_QUICK") ? 8 : 24; }

/* how: 0 (the shared mapping) or PP__SJ_PRIVATE; locked: the segment
 * mlock'ed first (mlock of a writable private mapping copies every page). */
static void written_pages_body(const char *name, int how, int locked) {
    const char *d = t_dir(name);
    pp__sj *j;
    const uint64_t bytes = 64u << 20;
    REQUIRE(pp__sj_open(&j, d, bytes, how, 0, NULL, NULL, NULL) == 0);
    REQUIRE(j->priv == (how == PP__SJ_PRIVATE));
    uint64_t first = pp__load_acq(&j->tail);
    pp__store_rel(&j->hold, first);
    pp__sjseg *g = pp__load_acq(&j->win[(first >> j->shift) % PP__SJ_WIN]);
    REQUIRE(g && g->map);
    if (locked && mlock(g->map, (size_t)g->map_len) != 0) {
        int e = errno;
        pp__sj_free(j);
        printf("  skip: mlock of the segment: %s\n", strerror(e));
        SKIP("mlock not permitted here (RLIMIT_MEMLOCK)");
    }
    const uint64_t n = (written_mib() << 20) / 64;  /* 24 MiB of frames (8 in the light runs) */
    for (uint64_t k = 0; k < n; k++) REQUIRE(append(j, 1, k, NULL) == 0);
    const uint8_t *data = g->map + PP__PAGE;        /* the pages the writers filled */
    const size_t filled = (size_t)n * 64, ahead = (size_t)(8u << 20);
    /* Map the 8 MiB ahead of the writers, as a preparer would have: how
     * many pages the kernel maps around a fault varies (fault-around, the
     * page cache's folio sizes), and the round's own look at the frame
     * after the last one faults some in; with all of them mapped, any the
     * round took out shows. */
    unsigned sum = 0;
    for (size_t o = 0; o < ahead; o += 4096) sum += ((const volatile uint8_t *)data)[filled + o];
    CHECK_EQ(sum, 0);
    long long before = mapped_pages(data, filled), ahead0 = mapped_pages(data + filled, ahead);
    CHECK_EQ(before, (long long)(filled / 4096));
    CHECK_EQ(ahead0, (long long)(ahead / 4096));
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    long long after = mapped_pages(data, filled), ahead1 = mapped_pages(data + filled, ahead);
    CHECK_EQ(after, 0);
    CHECK_EQ(ahead1, ahead0);                       /* nothing ahead of the writers is taken out */
    printf("  written pages mapped: %lld before the round, %lld after; the next 8 MiB: %lld, %lld\n", before, after,
           ahead0, ahead1);
    frames_read_back(j, d, bytes, first, n);
}
static void test_shared_sync_unmaps_written_pages(void) { written_pages_body("ppj_shared_unmap", 0, 0); }

/* The same with the segment locked in memory (an engine's mlockall does
 * this to every mapping): the kernel refuses to zap locked pages, so the
 * syncer unlocks the written ones first; they still leave the mapping. */
static void test_shared_sync_unmaps_written_pages_when_locked(void) { written_pages_body("ppj_shared_unmap_locked", 0, 1); }

/* A sync round copies the new frames into the file and gives the pages it
 * finished back: the journal's private memory does not grow with what was
 * written, and the frames read back the same from the file. */
static void test_private_pages_give_memory_back(void) {
    const char *d = t_dir("ppj_private_mem");
    pp__sj *j;
    const uint64_t bytes = 64u << 20;
    REQUIRE(pp__sj_open(&j, d, bytes, PP__SJ_PRIVATE, 0, NULL, NULL, NULL) == 0);
    REQUIRE(j->priv);
    uint64_t first = pp__load_acq(&j->tail);
    pp__store_rel(&j->hold, first);                 /* the frames are read back below */
    const uint64_t n = (written_mib() << 20) / 64;  /* 24 MiB of frames (8 in the light runs) */
    for (uint64_t k = 0; k < n; k++) REQUIRE(append(j, 1, k, NULL) == 0);
    pp__sjseg *g = pp__load_acq(&j->win[(first >> j->shift) % PP__SJ_WIN]);
    REQUIRE(g && g->map);
    long long before = anon_bytes_at(g->map);
    CHECK(before >= (long long)((written_mib() - 4) << 20));   /* the writers' copies */
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    long long after = anon_bytes_at(g->map);
    CHECK(after >= 0);
    CHECK(after <= (long long)(1u << 20));          /* only the tail page (and what the open faulted in ahead) is left */
    printf("  anonymous memory of the segment: %lld KiB before the round, %lld KiB after\n", before / 1024, after / 1024);
    frames_read_back(j, d, bytes, first, n);
}

/* The same under mlock (an engine's mlockall does this to every mapping;
 * mlock of a writable private mapping even copies every page ahead): the
 * kernel refuses MADV_DONTNEED on locked pages, so the round unlocks the
 * ones it wrote to the file first; they leave the page tables (pagemap),
 * the pages ahead stay, and the frames read back from the file. */
static void test_private_pages_give_memory_back_when_locked(void) {
    written_pages_body("ppj_private_mem_locked", PP__SJ_PRIVATE, 1);
}

/* A full disk is an error of the syncer's pwrite (PP_ENOSPC), never a SIGBUS
 * on a writer: the journal is poisoned, the durable position stays, and a
 * reopen has every frame made durable before. */
static int nospc_on;
static int64_t nospc_pwrite(void *ctx, int fd, const void *buf, size_t len, int64_t off) {
    (void)ctx;
    if (__atomic_load_n(&nospc_on, __ATOMIC_ACQUIRE) && off >= PP__PAGE) { errno = ENOSPC; return -1; }
    return (int64_t)pwrite(fd, buf, len, (off_t)off);
}
static void test_private_pages_full_disk_is_enospc(void) {
    const char *d = t_dir("ppj_private_nospc");
    pp_io io;
    memset(&io, 0, sizeof io);
    io.pwrite = nospc_pwrite;
    pp_test_set_io(&io);
    pp__sj *j;
    REQUIRE(pp__sj_open(&j, d, SEG, PP__SJ_PRIVATE, 0, NULL, NULL, NULL) == 0);
    for (uint64_t k = 0; k < 300; k++) REQUIRE(append(j, 0, k, NULL) == 0);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), 0);     /* the mark: 300 frames */
    uint64_t durable = pp__load_acq(&j->durable);
    __atomic_store_n(&nospc_on, 1, __ATOMIC_RELEASE);
    for (uint64_t k = 300; k < 400; k++) REQUIRE(append(j, 0, k, NULL) == 0);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), PP_ENOSPC);
    CHECK_EQ(pp__load_acq(&j->err), PP_ENOSPC);
    CHECK_EQ(pp__load_acq(&j->durable), durable);
    CHECK_EQ(pp__sj_sync(j, 0, NULL, NULL), PP_ENOSPC);   /* poisoned: never retried as if nothing happened */
    CHECK_EQ(pp__load_acq(&j->durable), durable);
    __atomic_store_n(&nospc_on, 0, __ATOMIC_RELEASE);
    pp__sj_free(j);
    pp_test_set_io(NULL);
    seen s;
    memset(&s, 0, sizeof s);
    pp__sjwhere w;
    REQUIRE(pp__sj_open(&j, d, SEG, PP__SJ_READONLY, 0, visit, &s, &w) == 0);
    CHECK_EQ(s.n, 300);
    CHECK_EQ(s.bad, 0);
    pp__sj_free(j);
}

int main(void) {
    (void)t_rand;
    RUN(test_two_writers_through_segment_switches);
    RUN(test_one_flush_per_round);
    RUN(test_unpublished_claim_is_the_end);
    RUN(test_damage_below_the_mark_fails_closed);
    RUN(test_stray_byte_far_in_the_free_space_is_a_torn_tail);
    RUN(test_late_preparer_never_recreates_a_retired_segment);
    RUN(test_compaction_drops_whole_segments);
    RUN(test_power_cuts_with_two_writers);
    RUN(test_shared_sync_unmaps_written_pages);
    RUN(test_shared_sync_unmaps_written_pages_when_locked);
    RUN(test_private_pages_give_memory_back);
    RUN(test_private_pages_give_memory_back_when_locked);
    RUN(test_private_pages_full_disk_is_enospc);
    int rc = t_done();
    {   /* the scratch directories (t_dir's base) */
        const char *base = getenv("PLG_TEST_DIR");
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'/ppj_*", base && *base ? base : "build/tmp");
        if (system(cmd) != 0) rc = rc ? rc : 0;
    }
    return rc;
}
