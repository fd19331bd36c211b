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
 * PLG_ECORRUPT, however the writer moves on while it reads (an 8 KiB
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
    plg_config c = cfg_for(dir, 1u << 20);
    c.max_inflight = 1; c.max_write_bytes = 4096;      /* window 8 KiB */
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    live_w w; memset(&w, 0, sizeof w); w.L = L;
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, live_writer, &w) == 0);
    uint64_t reads = 0, corrupt = 0, other = 0, records = 0;
    uint64_t t_end = plg_now_ns() + (quick() ? 1500000000ull : 3000000000ull);
    while (plg_now_ns() < t_end && reads < 20000) {
        plg_reader *r;
        int rc = plg_reader_open(&r, dir);
        if (rc) { other++; break; }
        plg_record rec;
        uint64_t n = 0;
        while ((rc = plg_reader_next(r, &rec)) == 1) {
            n++;
            if (rec.seq != n) { other++; break; }
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

int main(void) {
    (void)t_rand;
    RUN(test_reader_of_released_segment);
    RUN(test_reader_on_live_log_never_corrupt);
    return t_done();
}
