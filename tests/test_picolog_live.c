/* picolog.h tests: reading a log while it is written and released, the
 * durability notification fd, the live tailing reader.
 * Needs a filesystem with O_DIRECT under $PLG_TEST_DIR (default build/tmp). */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "t.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

static int quick(void) { return getenv("PLG_TEST_QUICK") != NULL; }

static void quiet_log(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }

static plg_config cfg_for(const char *dir, uint64_t seg_size) {
    plg_config c;
    memset(&c, 0, sizeof c);
    c.path = dir;
    c.segment_size = seg_size;
    c.ring_capacity = 1u << 20;
    c.log_fn = quiet_log;
    return c;
}

/* Record content: seq in the first 8 bytes, then a pattern from seq. */
static void fill(uint8_t *p, uint32_t len, uint64_t seq) {
    for (uint32_t i = 0; i < len; i++) p[i] = (uint8_t)(seq * 31 + i);
    if (len >= 8) memcpy(p, &seq, 8);
}
static int same(const plg_record *r, uint32_t len) {
    uint8_t buf[4096];
    if (r->len != len || len > sizeof buf) return 0;
    fill(buf, len, r->seq);
    return memcmp(buf, r->data, len) == 0;
}

static int64_t append_retry(plg_log *L, const void *d, uint32_t len) {
    int64_t s;
    for (int i = 0; (s = plg_append(L, d, len)) == PLG_EFULL && i < 10000000; i++) sched_yield();
    return s;
}

static int write_records(plg_log *L, uint64_t n, uint32_t len) {
    uint8_t buf[4096];
    int64_t last = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seq = plg_appended(L) + 1;
        fill(buf, len, seq);
        last = append_retry(L, buf, len);
        if (last != (int64_t)seq) return -1;
    }
    return plg_wait(L, (uint64_t)last, 30000000000ll);
}

/* A reader whose segment was released, and reused by the writer, while it
 * read: PLG_ERELEASED (the records are gone by release), never
 * PLG_ECORRUPT. 2 MiB segments, longer than the reader's 1 MiB read-ahead,
 * so the reader reads the rest of its segment after it was reused. */
static void test_reader_of_released_segment(void) {
    const char *dir = t_dir("plg_live_released");
    plg_config c = cfg_for(dir, 2u << 20);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    const uint32_t len = 1000;
    uint64_t per_seg = (2u << 20) / 1024;              /* ~4 records a page */
    REQUIRE(write_records(L, per_seg * 5 / 2, len) == 0);   /* segments 1..3 */
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    REQUIRE(plg_reader_next(r, &rec) == 1);
    CHECK_EQ(rec.seq, 1);
    CHECK(same(&rec, len));
    /* everything so far may go; keep writing until both released segments
     * were reused and written over */
    CHECK_EQ(plg_release(L, plg_appended(L) + 1), 0);
    for (int i = 0; i < 2000; i++) {
        plg_stats st; plg_get_stats(L, &st);
        if (st.segments_released >= 2) break;
        usleep(1000);
    }
    REQUIRE(write_records(L, per_seg * 4, len) == 0);
    plg_stats st; plg_get_stats(L, &st);
    CHECK(st.segments_recycled >= 2);
    int rc;
    uint64_t n = 1, bad = 0;
    while ((rc = plg_reader_next(r, &rec)) == 1) {
        if (rec.seq != ++n || !same(&rec, len)) bad++;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(rc, PLG_ERELEASED);
    plg_reader_close(r);
    CHECK_EQ(plg_close(L), 0);
}

/* A reader on a healthy log that is being written never reports
 * PLG_ECORRUPT, however the writer moves on while it reads (a 12 KiB
 * in-flight window: evidence pages beyond it are soon written). Runs for a
 * bounded time; every read must end cleanly (0). */
typedef struct live_w { plg_log *L; int stop; int err; } live_w;
static void *live_writer(void *arg) {
    live_w *w = (live_w *)arg;
    uint8_t buf[512];
    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
        uint64_t seq = plg_appended(w->L) + 1;
        uint32_t len = 24 + (uint32_t)(seq * 7919 % 480);
        fill(buf, len, seq);
        int64_t s = plg_append(w->L, buf, len);
        if (s == PLG_EFULL) { sched_yield(); continue; }
        if (s != (int64_t)seq) { w->err = (int)s; break; }
        if (seq % 64 == 0) usleep(100);
    }
    return NULL;
}
static void test_reader_on_live_log_never_corrupt(void) {
    const char *dir = t_dir("plg_live_reads");
    plg_config c = cfg_for(dir, 64u << 10);
    c.max_inflight = 1; c.max_write_bytes = 4096;      /* window 12 KiB */
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    live_w w; memset(&w, 0, sizeof w); w.L = L;
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, live_writer, &w) == 0);
    uint64_t reads = 0, corrupt = 0, other = 0, records = 0;
    uint64_t t_end = plg_now_ns() + (quick() ? 1000000000ull : 2000000000ull);
    while (plg_now_ns() < t_end && reads < 20000) {
        plg_reader *r;
        int rc = plg_reader_open(&r, dir);
        if (rc) { other++; break; }
        plg_record rec;
        uint64_t n = 0, d = plg_durable(L);
        int paused = 0;
        while ((rc = plg_reader_next(r, &rec)) == 1) {
            n++;
            if (rec.seq != n) { other++; break; }
            /* near the end that was there: let the writer get a window or
             * more ahead of the pages this reader already holds */
            if (!paused && n + 8 >= d && reads % 2) { usleep(20000); paused = 1; }
        }
        if (rc == PLG_ECORRUPT) {
            uint64_t off = 0;
            const char *f = plg_reader_where(r, &off);
            if (corrupt++ == 0) fprintf(stderr, "  read %llu: PLG_ECORRUPT at %s offset %llu after %llu records\n",
                                        (unsigned long long)reads, f, (unsigned long long)off, (unsigned long long)n);
        } else if (rc != 0) other++;
        records += n;
        plg_reader_close(r);
        reads++;
    }
    __atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    CHECK_EQ(w.err, 0);
    printf("  %llu reads of the live log (%llu records)\n", (unsigned long long)reads, (unsigned long long)records);
    CHECK(reads > 0);
    CHECK_EQ(corrupt, 0);
    CHECK_EQ(other, 0);
    CHECK_EQ(plg_close(L), 0);
}

/* plg_notify_fd: readable once plg_durable advances, cleared by a read. */
static int readable(int fd, int ms) {
    struct pollfd p; p.fd = fd; p.events = POLLIN; p.revents = 0;
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}
static void test_notify_fd(void) {
    const char *dir = t_dir("plg_live_notify");
    plg_config c = cfg_for(dir, 64u << 10);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    int fd = plg_notify_fd(L);
    REQUIRE(fd >= 0);
    CHECK_EQ(plg_notify_fd(L), fd);                    /* one fd per log */
    CHECK(!readable(fd, 0));
    for (int round = 1; round <= 3; round++) {
        CHECK_EQ(plg_append(L, "tick", 4), round);
        CHECK_EQ(plg_wait(L, (uint64_t)round, 5000000000ll), 0);
        CHECK(readable(fd, 5000));
        uint64_t v = 0;
        CHECK_EQ(read(fd, &v, sizeof v), 8);
        CHECK(v >= 1);
        CHECK(!readable(fd, 0));                       /* reading cleared it */
        CHECK_EQ(plg_durable(L), round);
    }
    CHECK_EQ(plg_close(L), 0);
}

/* An I/O engine whose writes reach the file at once but whose fsyncs are
 * held: records are on disk, written, and not durable. */
typedef struct hio { pthread_mutex_t mu; plg_io_cqe q[256]; int qn; int fd_q[256]; int is_sync[256]; int hold_sync; } hio;
static int hio_write(void *ctx, int fd, const void *buf, uint32_t len, uint64_t off, int dsync, uint64_t tag) {
    hio *h = (hio *)ctx;
    (void)dsync;
    ssize_t w = pwrite(fd, buf, len, (off_t)off);
    pthread_mutex_lock(&h->mu);
    h->q[h->qn].tag = tag; h->q[h->qn].res = w < 0 ? -errno : (int32_t)w; h->is_sync[h->qn] = 0; h->qn++;
    pthread_mutex_unlock(&h->mu);
    return 0;
}
static int hio_fsync(void *ctx, int fd, uint64_t tag) {
    hio *h = (hio *)ctx;
    pthread_mutex_lock(&h->mu);
    h->q[h->qn].tag = tag; h->q[h->qn].res = 0; h->fd_q[h->qn] = fd; h->is_sync[h->qn] = 1; h->qn++;
    pthread_mutex_unlock(&h->mu);
    return 0;
}
static int hio_reap(void *ctx, plg_io_cqe *out, int max, uint64_t timeout_ns) {
    hio *h = (hio *)ctx;
    int n = 0;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->qn && n < max; ) {
        if (h->is_sync[i] && h->hold_sync) { i++; continue; }
        if (h->is_sync[i]) fdatasync(h->fd_q[i]);
        out[n++] = h->q[i];
        memmove(&h->q[i], &h->q[i + 1], (size_t)(h->qn - i - 1) * sizeof h->q[0]);
        memmove(&h->fd_q[i], &h->fd_q[i + 1], (size_t)(h->qn - i - 1) * sizeof h->fd_q[0]);
        memmove(&h->is_sync[i], &h->is_sync[i + 1], (size_t)(h->qn - i - 1) * sizeof h->is_sync[0]);
        h->qn--;
    }
    pthread_mutex_unlock(&h->mu);
    if (!n && timeout_ns) usleep(200);
    return n;
}

/* A tailing reader returns records as they become durable and never one
 * beyond the writer's durable mark, even when it is already in the file.
 * pause_us before the last append: the writer may then write 11..19 and
 * start their (held) sync before 20 arrives; 20 waits for that sync, so
 * only "some records past the mark are in the file" can be asserted. */
static void live_mark_case(const char *name, int pause_us) {
    const char *dir = t_dir(name);
    hio h; memset(&h, 0, sizeof h); pthread_mutex_init(&h.mu, NULL);
    plg_io io; io.ctx = &h; io.submit_write = hio_write; io.submit_fsync = hio_fsync; io.reap = hio_reap;
    plg_config c = cfg_for(dir, 64u << 10);
    c.io = &io; c.sync_mode = PLG_SYNC_FDATASYNC;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    uint8_t buf[200];
    for (uint64_t i = 1; i <= 10; i++) { fill(buf, 200, i); CHECK_EQ(plg_append(L, buf, 200), (int64_t)i); }
    CHECK_EQ(plg_wait(L, 10, 5000000000ll), 0);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    uint64_t n = 0;
    while (plg_reader_next(r, &rec) == 1) { n++; CHECK_EQ(rec.seq, n); CHECK(same(&rec, 200)); }
    CHECK_EQ(n, 10);
    pthread_mutex_lock(&h.mu); h.hold_sync = 1; pthread_mutex_unlock(&h.mu);
    for (uint64_t i = 11; i <= 20; i++) {
        if (i == 20 && pause_us) usleep((useconds_t)pause_us);
        fill(buf, 200, i);
        CHECK_EQ(plg_append(L, buf, 200), (int64_t)i);
    }
    for (int i = 0; i < 5000 && plg_written(L) < 20; i++) {
        if (plg_written(L) > 10 && i >= 200) break;   /* 20 may wait for the held sync */
        usleep(1000);
    }
    CHECK(plg_written(L) > 10);                        /* in the file ... */
    CHECK_EQ(plg_durable(L), 10);                      /* ... not durable */
    CHECK_EQ(plg_reader_wait(r, 50000000), 0);         /* times out */
    CHECK_EQ(plg_reader_next(r, &rec), 0);
    pthread_mutex_lock(&h.mu); h.hold_sync = 0; pthread_mutex_unlock(&h.mu);
    CHECK_EQ(plg_wait(L, 20, 5000000000ll), 0);
    CHECK_EQ(plg_reader_wait(r, 5000000000ll), 1);
    while (plg_reader_next(r, &rec) == 1) {
        n++;
        CHECK_EQ(rec.seq, n); CHECK(same(&rec, 200));
        CHECK(rec.seq <= plg_durable(L));
    }
    CHECK_EQ(n, 20);
    CHECK_EQ(plg_reader_wait(r, 0), 0);
    plg_reader_close(r);
    CHECK_EQ(plg_close(L), 0);
    pthread_mutex_destroy(&h.mu);
}
static void test_live_reader_stops_at_durable_mark(void) {
    live_mark_case("plg_live_mark", 0);
    live_mark_case("plg_live_mark_pause", 20000);    /* failed as 19 != 20 when it asserted all 20 written */
}

/* A reader in another process tails the log across segment switches:
 * every record, dense and intact, each as soon as it is durable. */
static int follow(const char *dir, uint64_t total, uint64_t *bad_out, uint64_t *progress) {
    plg_reader *r = NULL;
    int rc = PLG_ENOENT;
    for (int i = 0; i < 5000 && (rc = plg_reader_open(&r, dir)) != 0; i++) usleep(1000);
    if (rc) return rc;
    uint64_t n = 0, bad = 0;
    plg_record rec;
    while (n < total) {
        rc = plg_reader_wait(r, 20000000000ll);
        if (rc != 1) break;
        while (n < total && (rc = plg_reader_next(r, &rec)) == 1) {
            n++;
            uint32_t len = 24 + (uint32_t)(rec.seq * 7919 % 480);
            if (rec.seq != n || !same(&rec, len)) bad++;
        }
        __atomic_store_n(progress, n, __ATOMIC_RELEASE);
        if (rc < 0) break;
    }
    if (n < total) {
        uint64_t off = 0;
        const char *f = plg_reader_where(r, &off);
        fprintf(stderr, "  follower stopped after %llu of %llu records: %s at %s offset %llu\n", (unsigned long long)n,
                (unsigned long long)total, plg_strerror(rc), f, (unsigned long long)off);
    }
    plg_reader_close(r);
    *bad_out = bad;
    return n == total ? 0 : rc < 0 ? rc : -1;
}
static void test_live_reader_in_another_process(void) {
    const char *dir = t_dir("plg_live_proc");
    uint64_t total = quick() ? 3000 : 20000;            /* 64 KiB segments: ~100 switches */
    uint64_t *progress = (uint64_t *)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(progress != MAP_FAILED);
    *progress = 0;
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {                                    /* the writer */
        plg_config c = cfg_for(dir, 64u << 10);
        plg_log *L;
        if (plg_open(&L, &c) != 0) _exit(2);
        uint8_t buf[512];
        for (uint64_t seq = 1; seq <= total; seq++) {
            uint32_t len = 24 + (uint32_t)(seq * 7919 % 480);
            fill(buf, len, seq);
            if (append_retry(L, buf, len) != (int64_t)seq) _exit(3);
            if (seq % 500 == 0) {                      /* old segments go, behind the reader */
                uint64_t done = __atomic_load_n(progress, __ATOMIC_ACQUIRE);
                if (done > 1000) plg_release(L, done - 1000);
                usleep(2000);
            }
        }
        _exit(plg_close(L) == 0 ? 0 : 4);
    }
    uint64_t bad = 0;
    int rc = follow(dir, total, &bad, progress);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(rc, 0);
    CHECK_EQ(bad, 0);
    munmap(progress, 4096);
}

/* A tailing reader that falls behind plg_release: PLG_ERELEASED from
 * plg_reader_wait/plg_reader_next once its next record is gone, after
 * every record it could still read, and never PLG_ECORRUPT. */
static void test_live_reader_behind_release(void) {
    const char *dir = t_dir("plg_live_behind");
    plg_config c = cfg_for(dir, 64u << 10);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    REQUIRE(write_records(L, 100, 300) == 0);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    CHECK_EQ(plg_reader_wait(r, 5000000000ll), 1);
    REQUIRE(plg_reader_next(r, &rec) == 1);
    CHECK_EQ(rec.seq, 1);
    REQUIRE(write_records(L, 4000, 300) == 0);        /* ~20 segments */
    CHECK_EQ(plg_release(L, plg_appended(L) - 100), 0);
    plg_stats st;
    for (int i = 0; i < 5000; i++) { plg_get_stats(L, &st); if (st.segments_released >= 15) break; usleep(1000); }
    CHECK(st.segments_released >= 15);
    REQUIRE(write_records(L, 1000, 300) == 0);        /* released segments are reused */
    uint64_t n = 1, bad = 0;
    int rc;
    for (;;) {
        rc = plg_reader_wait(r, 2000000000ll);
        if (rc != 1) break;
        while ((rc = plg_reader_next(r, &rec)) == 1) if (rec.seq != ++n || !same(&rec, 300)) bad++;
        if (rc < 0) break;
    }
    CHECK_EQ(rc, PLG_ERELEASED);
    CHECK_EQ(bad, 0);
    CHECK(n < 4000);
    CHECK_EQ(plg_reader_wait(r, 0), PLG_ERELEASED);    /* it stays that way */
    plg_reader_close(r);
    CHECK_EQ(plg_close(L), 0);
}

/* A tailing reader that stopped at the durable mark in the middle of a
 * page: the writer then adds records to that same page and they become
 * durable. The next plg_reader_wait(r, 0) / plg_reader_next must see them
 * at once (the reader must not keep the page as it read it, partly written). */
static void test_live_reader_rereads_partly_written_page(void) {
    const char *dir = t_dir("plg_live_reread");
    plg_config c = cfg_for(dir, 64u << 10);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    REQUIRE(write_records(L, 2, 100) == 0);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    uint64_t n = 0;
    while (plg_reader_next(r, &rec) == 1) { n++; CHECK_EQ(rec.seq, n); CHECK(same(&rec, 100)); }
    CHECK_EQ(n, 2);
    CHECK_EQ(plg_reader_wait(r, 0), 0);                /* caught up */
    REQUIRE(write_records(L, 3, 100) == 0);            /* 3..5, same page */
    CHECK_EQ(plg_reader_wait(r, 0), 1);
    while (plg_reader_next(r, &rec) == 1) { n++; CHECK_EQ(rec.seq, n); CHECK(same(&rec, 100)); }
    CHECK_EQ(n, 5);
    REQUIRE(write_records(L, 2, 100) == 0);            /* 6..7: plg_reader_next alone */
    while (plg_reader_next(r, &rec) == 1) { n++; CHECK_EQ(rec.seq, n); CHECK(same(&rec, 100)); }
    CHECK_EQ(n, 7);
    plg_reader_close(r);
    CHECK_EQ(plg_close(L), 0);
}

/* A tailing reader at the end of the only segment it listed: the writer
 * fills that segment and goes on into new ones, all durable. The next
 * plg_reader_next calls return every record without a 0 in between (the
 * reader must look for the new segments, not end at the old last one). */
static void test_live_reader_finds_new_segments(void) {
    const char *dir = t_dir("plg_live_newseg");
    plg_config c = cfg_for(dir, 64u << 10);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    REQUIRE(write_records(L, 10, 1000) == 0);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    uint64_t n = 0;
    while (plg_reader_next(r, &rec) == 1) { n++; CHECK_EQ(rec.seq, n); CHECK(same(&rec, 1000)); }
    CHECK_EQ(n, 10);
    REQUIRE(write_records(L, 200, 1000) == 0);         /* ~60 a segment: into segments 2..4 */
    CHECK_EQ(plg_reader_wait(r, 0), 1);
    while (plg_reader_next(r, &rec) == 1) { n++; CHECK_EQ(rec.seq, n); CHECK(same(&rec, 1000)); }
    CHECK_EQ(n, 210);
    plg_reader_close(r);
    CHECK_EQ(plg_close(L), 0);
}

/* live.shm as a crashed writer leaves it (flag 1, a durable mark below the
 * end), naming a pid that runs but holds no writer (after a reboot, or a
 * reused pid): readers must not trust that mark, and read every record on
 * disk, as plg_check does. */
static void test_stale_live_mark_of_crashed_writer(void) {
    const char *dir = t_dir("plg_live_stale");
    plg_config c = cfg_for(dir, 64u << 10);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    REQUIRE(write_records(L, 50, 200) == 0);
    CHECK_EQ(plg_close(L), 0);
    fflush(stdout); fflush(stderr);
    pid_t other = fork();                              /* a live process that is no writer */
    REQUIRE(other >= 0);
    if (other == 0) { for (;;) pause(); }
    char name[4200];
    snprintf(name, sizeof name, "%s/live.shm", dir);
    int fd = open(name, O_RDWR);
    REQUIRE(fd >= 0);
    uint8_t *p = (uint8_t *)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    REQUIRE(p != MAP_FAILED);
    uint64_t mark = 5; int32_t pid = (int32_t)other; uint32_t open1 = 1;
    memcpy(p + 16, &mark, 8);                          /* see docs/picolog-format.md */
    memcpy(p + 32, &pid, 4);
    memcpy(p + 36, &open1, 4);
    munmap(p, 4096);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    uint64_t n = 0;
    while (plg_reader_next(r, &rec) == 1) { n++; CHECK_EQ(rec.seq, n); CHECK(same(&rec, 200)); }
    CHECK_EQ(n, 50);
    CHECK_EQ(plg_reader_wait(r, 0), 0);
    plg_reader_close(r);
    plg_check_result cr;
    CHECK_EQ(plg_check(dir, &cr), 0);
    CHECK_EQ(cr.last_seq, 50);
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
}

/* A reader that caught up with the writer, then records become durable in
 * the page it already read: the very next plg_reader_wait(r, 0) and
 * plg_reader_next return them (the reader must not answer from the copy of
 * that page it read before they were written). Found by the whole-API
 * simulator (PLG_SIMAPI_OPS=default,tail --seed 72). */
static void test_live_reader_sees_records_in_a_page_it_read(void) {
    const char *dir = t_dir("plg_live_cached");
    plg_config c = cfg_for(dir, 64u << 10);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(write_records(L, 2, 100), 0);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    uint64_t n = 0;
    while (plg_reader_next(r, &rec) == 1) { n++; CHECK_EQ(rec.seq, n); CHECK(same(&rec, 100)); }
    CHECK_EQ(n, 2);
    CHECK_EQ(plg_reader_wait(r, 0), 0);                /* caught up */
    for (int round = 0; round < 3; round++) {
        CHECK_EQ(write_records(L, 8, 100), 0);         /* same page; durable on return */
        CHECK_EQ(plg_reader_wait(r, 0), 1);            /* ready at once, no second call needed */
        while (plg_reader_next(r, &rec) == 1) { n++; CHECK_EQ(rec.seq, n); CHECK(same(&rec, 100)); }
        CHECK_EQ(n, plg_durable(L));
    }
    CHECK_EQ(n, 26);
    plg_reader_close(r);
    CHECK_EQ(plg_close(L), 0);
}

/* A reader that follows the log record by record. The writer's O_DIRECT
 * writes leave nothing in the page cache, so each advance cost the follower
 * a read of the tail page from the device (4 KiB per record here, a device
 * read beside each of the writer's writes and flushes). The writer now
 * copies the last pages it wrote into live.pages while a reader follows,
 * and the reader takes them from there. */
static void test_follower_reads_tail_pages_from_memory(void) {
    const char *dir = t_dir("plg_live_tailpages");
    plg_config c = cfg_for(dir, 4u << 20);
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) SKIP("no O_DIRECT on the test filesystem (set PLG_TEST_DIR to ext4/xfs)");
    REQUIRE(rc == 0);
    if (t_thread_io("read_bytes") < 0) { plg_close(L); SKIP("no read_bytes in /proc/thread-self/io"); }
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    uint64_t n = 0, bad = 0;
    CHECK_EQ(plg_reader_wait(r, 0), 0);                /* at the end: it follows */
    long long before = t_thread_io("read_bytes");
    for (int i = 0; i < 300; i++) {
        CHECK_EQ(write_records(L, 1, 100), 0);
        while ((rc = plg_reader_next(r, &rec)) == 1) { n++; if (rec.seq != n || !same(&rec, 100)) bad++; }
        CHECK_EQ(rc, 0);
    }
    long long read = t_thread_io("read_bytes") - before;
    CHECK_EQ(n, 300);
    CHECK_EQ(bad, 0);
    CHECK(read < 300 * 4096 / 4);                      /* was one 4 KiB page per record */
    plg_reader_close(r);
    CHECK_EQ(plg_close(L), 0);
}

/* A follower that stopped part way, then the writer truncates behind it and
 * writes other records in the same places, smaller ones: the follower reads
 * the new records, never what the writer's copies of those pages held
 * before the truncate. */
static void test_follower_after_truncate_reads_new_records(void) {
    const char *dir = t_dir("plg_live_tailtrunc");
    plg_config c = cfg_for(dir, 4u << 20);
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) SKIP("no O_DIRECT on the test filesystem (set PLG_TEST_DIR to ext4/xfs)");
    REQUIRE(rc == 0);
    plg_reader *lag, *r;
    REQUIRE(plg_reader_open(&lag, dir) == 0);
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    uint64_t n = 0, m = 0, bad = 0;
    CHECK_EQ(write_records(L, 40, 300), 0);
    while ((rc = plg_reader_next(lag, &rec)) == 1) { m++; if (rec.seq != m || !same(&rec, 300)) bad++; }
    CHECK_EQ(rc, 0);
    CHECK_EQ(m, 40);                                   /* stops here, at the end then */
    for (int i = 0; i < 60; i++) {                     /* 41..100, the other reader following */
        CHECK_EQ(write_records(L, 1, 300), 0);
        while ((rc = plg_reader_next(r, &rec)) == 1) { n++; if (rec.seq != n || !same(&rec, 300)) bad++; }
        CHECK_EQ(rc, 0);
    }
    CHECK_EQ(n, 100);
    CHECK_EQ(plg_truncate(L, 50), 0);
    CHECK_EQ(write_records(L, 50, 60), 0);             /* 51..100 again, 60 bytes each */
    while ((rc = plg_reader_next(lag, &rec)) == 1) {
        m++;
        if (rec.seq != m || !same(&rec, m <= 50 ? 300 : 60)) bad++;
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(m, 100);
    CHECK_EQ(bad, 0);
    plg_reader_close(lag);
    plg_reader_close(r);
    CHECK_EQ(plg_close(L), 0);
}

/* A reader at the end of a live log, polled: each poll that found nothing
 * opened and read picolog.meta (has the log been reset?). The writer now
 * counts its resets in live.shm, and the reader reads the meta file again
 * only when that count (or the writer) changed. */
static void test_follower_poll_reads_no_meta(void) {
    const char *dir = t_dir("plg_live_pollmeta");
    plg_config c = cfg_for(dir, 4u << 20);
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) SKIP("no O_DIRECT on the test filesystem (set PLG_TEST_DIR to ext4/xfs)");
    REQUIRE(rc == 0);
    if (t_thread_io("syscr") < 0) { plg_close(L); SKIP("no syscr in /proc/thread-self/io"); }
    CHECK_EQ(write_records(L, 5, 100), 0);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    uint64_t n = 0;
    while ((rc = plg_reader_next(r, &rec)) == 1) { n++; CHECK_EQ(rec.seq, n); CHECK(same(&rec, 100)); }
    CHECK_EQ(rc, 0);
    CHECK_EQ(n, 5);
    long long before = t_thread_io("syscr");
    for (int i = 0; i < 200; i++) CHECK_EQ(plg_reader_next(r, &rec), 0);   /* nothing new */
    long long calls = t_thread_io("syscr") - before;
    printf("  %lld read calls in 200 polls at the end\n", calls);
    CHECK(calls < 20);                                 /* was one per poll: the meta file */
    CHECK_EQ(plg_reset(L, 100), 0);                    /* and a reset is still seen at once */
    CHECK_EQ(plg_reader_next(r, &rec), PLG_ERELEASED);
    plg_reader_close(r);
    CHECK_EQ(plg_close(L), 0);
}

int main(void) {
    (void)t_rand;
    RUN(test_reader_of_released_segment);
    RUN(test_reader_on_live_log_never_corrupt);
    RUN(test_notify_fd);
    RUN(test_live_reader_stops_at_durable_mark);
    RUN(test_live_reader_in_another_process);
    RUN(test_live_reader_behind_release);
    RUN(test_live_reader_rereads_partly_written_page);
    RUN(test_stale_live_mark_of_crashed_writer);
    RUN(test_live_reader_finds_new_segments);
    RUN(test_live_reader_sees_records_in_a_page_it_read);
    RUN(test_follower_reads_tail_pages_from_memory);
    RUN(test_follower_after_truncate_reads_new_records);
    RUN(test_follower_poll_reads_no_meta);
    return t_done();
}
