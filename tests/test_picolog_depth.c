/* How many writes the writer keeps in flight, and how it makes them durable,
 * seen through PICOLOG_TRACE: on a device without FUA each RWF_DSYNC write
 * carries a cache flush, and concurrent flushes only wait for each other. */
static int t_inflight, t_inflight_max, t_syncs;
static void t_trace(int ev) {   /* the writer thread only: it submits and reaps */
    if (ev == 2 && ++t_inflight > __atomic_load_n(&t_inflight_max, __ATOMIC_RELAXED))
        __atomic_store_n(&t_inflight_max, t_inflight, __ATOMIC_RELAXED);
    if (ev == 3) t_inflight--;
    if (ev == 4) __atomic_store_n(&t_syncs, __atomic_load_n(&t_syncs, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}
#define PICOLOG_TRACE(ev, seq) ((void)(seq), t_trace(ev))
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "t.h"
#include <time.h>

static void quiet_log(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }

static void sleep_until(struct timespec *t, long step_ns) {
    t->tv_nsec += step_ns;
    while (t->tv_nsec >= 1000000000l) { t->tv_nsec -= 1000000000l; t->tv_sec++; }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL);
}

/* One log on the test directory's device, max_inflight 4: records paced
 * one every 100 us for 0.3 s, longer if the writer made fewer than 10
 * writes by then (several records arrive during each write here), then a
 * burst of 32 MiB of records (a full batch waits: the device is behind).
 * Each phase's writes in flight at most, its syncs and its stats. Returns 1,
 * 0 when the test does not apply here (depth_skip says why), -1 on failure. */
typedef struct depth_run {
    int paced_max, burst_max, paced_syncs, burst_syncs;
    plg_stats paced, burst;               /* counters after each phase */
} depth_run;

static const char *depth_skip;

static int depth_measure(int sync_mode, uint32_t flags, depth_run *out) {
    const char *dir = t_dir("plg_depth");
    plg_config c;
    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    c.path = dir; c.log_fn = quiet_log;
    c.sync_mode = sync_mode;
    c.flags = flags;
    c.max_inflight = 4;
    c.segment_size = 16u << 20;
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) { depth_skip = "no O_DIRECT here"; return 0; }
    if (rc != 0) { CHECK_EQ(rc, 0); return -1; }
    plg_stats st;
    plg_get_stats(L, &st);
    if (strcmp(st.backend, "io_uring") != 0) { plg_close(L); depth_skip = "no io_uring: every write blocks the writer anyway"; return 0; }
    if (plg__device_fua(L->dirfd)) { plg_close(L); depth_skip = "the device writes FUA: DSYNC writes go in parallel"; return 0; }
    uint8_t buf[100];
    memset(buf, 3, sizeof buf);
    struct timespec t;
    __atomic_store_n(&t_inflight_max, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&t_syncs, 0, __ATOMIC_RELAXED);
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t seq = 0;
    /* 0.3 s at 10k records/s, longer (up to 5 s) until the writer made 10
     * writes: a slow device (a loaded machine, a sanitizer) made only 5 in
     * 0.3 s once, and a phase of so few writes shows little */
    for (int i = 0; i < 50000; i++) {
        seq = plg_append(L, buf, sizeof buf);
        CHECK(seq == i + 1);
        sleep_until(&t, 100000);
        if (i + 1 >= 3000 && (i + 1) % 500 == 0) {
            plg_get_stats(L, &st);
            if (st.writes >= 10) break;
        }
    }
    CHECK_EQ(plg_wait(L, (uint64_t)seq, 10000000000ll), 0);
    plg_get_stats(L, &out->paced);
    out->paced_max = __atomic_load_n(&t_inflight_max, __ATOMIC_RELAXED);
    out->paced_syncs = __atomic_load_n(&t_syncs, __ATOMIC_RELAXED);
    __atomic_store_n(&t_inflight_max, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&t_syncs, 0, __ATOMIC_RELAXED);
    int dense = 1;
    for (int i = 0; i < 320000; i++) {
        int64_t s;
        while ((s = plg_append(L, buf, sizeof buf)) == PLG_EFULL) plg_kick(L);
        if (s != seq + 1) dense = 0;
        seq = s;
    }
    CHECK(dense);
    CHECK_EQ(plg_wait(L, (uint64_t)seq, 60000000000ll), 0);
    plg_get_stats(L, &out->burst);
    out->burst_max = __atomic_load_n(&t_inflight_max, __ATOMIC_RELAXED);
    out->burst_syncs = __atomic_load_n(&t_syncs, __ATOMIC_RELAXED);
    CHECK_EQ(plg_close(L), 0);
    printf("  paced: %d write(s) in flight at most, %llu writes, %llu with RWF_DSYNC, %d syncs;"
           " %llu blocking; burst: %d in flight, %d syncs\n", out->paced_max, (unsigned long long)out->paced.writes,
           (unsigned long long)out->paced.writes_dsync, out->paced_syncs, (unsigned long long)out->paced.writes_blocking,
           out->burst_max, out->burst_syncs);
    return 1;
}

/* DSYNC on a device without FUA: paced records go one write at a time, each
 * write taking everything that came while the one before was in flight.
 * Starting a write per arrival instead (up to 4) made the acknowledgement
 * slower: 851 against about 600 us P50 at 10k records/s here
 * (docs/performance.md). A burst still uses every slot. */
static void test_dsync_without_fua_keeps_one_write_in_flight_unless_behind(void) {
    depth_run d;
    int m = depth_measure(PLG_SYNC_DSYNC, 0, &d);
    if (m < 0) return;
    if (m == 0) SKIP(depth_skip);
    CHECK(d.paced.writes >= 10);                     /* the writes were many, not one batch */
    CHECK_EQ(d.paced_max, 1);
    CHECK(d.burst_max > 1);
    CHECK_EQ(d.burst.writes_dsync, d.burst.writes);
}

/* AUTO on a device without FUA: while the writer keeps up, each write
 * carries RWF_DSYNC and goes alone (one round trip to the device, no
 * fdatasync after it); in a burst, plain writes on every slot and
 * fdatasync for several at once. With fdatasync after every paced write
 * the P50 at 10k records/s was about 1.3 times DSYNC's here
 * (docs/performance.md). */
static void test_auto_without_fua_writes_dsync_until_behind(void) {
    depth_run d;
    int m = depth_measure(PLG_SYNC_AUTO, 0, &d);
    if (m < 0) return;
    if (m == 0) SKIP(depth_skip);
    CHECK_EQ(d.paced.sync_mode, PLG_SYNC_FDATASYNC);
    CHECK(d.paced.writes >= 10);
    CHECK_EQ(d.paced_syncs, 0);                      /* no fdatasync while keeping up */
    CHECK_EQ(d.paced.writes_dsync, d.paced.writes);
    CHECK_EQ(d.paced_max, 1);
    CHECK(d.burst_syncs > 0);                        /* group commit once behind */
    CHECK(d.burst_max > 1);
    CHECK(d.burst.writes_dsync - d.paced.writes_dsync < d.burst.writes - d.paced.writes);
}

/* Without FUA, where the writes go one at a time anyway, a lone page on an
 * idle device is a blocking pwritev2(RWF_DSYNC) from the writer thread: the
 * kernel issues its cache flush at once instead of from a worker after the
 * data completes. At 100k records/s here the P99 fell from 1,130 to 288 us
 * against io_uring (docs/performance.md). A burst still goes through
 * io_uring on every slot, and PLG_URING_ONLY keeps every write there. */
static void test_lone_page_without_fua_is_written_by_the_writer_itself(void) {
    depth_run d;
    int m = depth_measure(PLG_SYNC_AUTO, 0, &d);
    if (m < 0) return;
    if (m == 0) SKIP(depth_skip);
    CHECK(d.paced.writes >= 10);
    CHECK(d.paced.writes_blocking > 0);
    CHECK(d.paced.writes_blocking <= d.paced.writes_dsync);   /* each one durable on return */
    CHECK(d.burst.writes_blocking - d.paced.writes_blocking < d.burst.writes - d.paced.writes);
    CHECK(d.burst_max > 1);
    m = depth_measure(PLG_SYNC_DSYNC, 0, &d);
    if (m < 0) return;
    CHECK(d.paced.writes_blocking > 0);
    m = depth_measure(PLG_SYNC_AUTO, PLG_URING_ONLY, &d);
    if (m < 0) return;
    CHECK(d.paced.writes >= 10);
    CHECK_EQ(d.paced.writes_blocking, 0);
    CHECK_EQ(d.burst.writes_blocking, 0);
}

/* Without FUA: a page that fills while the writer blocks in its write goes
 * out with the records that came after it, in one blocking write of two
 * pages, not in two writes one after the other (those records waited for
 * both: at 100k records/s about a tenth of them, and the P99 with them,
 * docs/performance.md). Records come 3 at a time every 100 us; every one
 * reads back. With PLG_URING_ONLY there is no blocking write at all. */
static int paired_run(uint32_t flags, plg_stats *st, uint64_t *nrec) {
    const char *dir = t_dir("plg_paired");
    plg_config c;
    memset(&c, 0, sizeof c);
    c.path = dir; c.log_fn = quiet_log; c.flags = flags;
    c.max_inflight = 4; c.segment_size = 16u << 20;
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) { depth_skip = "no O_DIRECT here"; return 0; }
    if (rc != 0) { CHECK_EQ(rc, 0); return -1; }
    plg_get_stats(L, st);
    if (strcmp(st->backend, "io_uring") != 0) { plg_close(L); depth_skip = "no io_uring: every write blocks the writer anyway"; return 0; }
    if (plg__device_fua(L->dirfd)) { plg_close(L); depth_skip = "the device writes FUA: no blocking writes"; return 0; }
    uint8_t buf[100];
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t seq = 0;
    for (int i = 0; i < 50000; i++) {                /* 0.2 s, up to 5 s until 5 paired writes */
        for (int k = 0; k < 3; k++) {
            memset(buf, (int)((seq + 1) * 7 % 251), sizeof buf);
            memcpy(buf, &seq, sizeof seq);
            int64_t s = plg_append(L, buf, sizeof buf);
            CHECK_EQ(s, seq + 1);
            seq = s;
        }
        sleep_until(&t, 100000);
        if (i + 1 >= 2000 && (i + 1) % 500 == 0) {
            plg_get_stats(L, st);
            if (st->writes_paired >= 5 || (flags & PLG_URING_ONLY)) break;
        }
    }
    CHECK_EQ(plg_wait(L, (uint64_t)seq, 10000000000ll), 0);
    plg_get_stats(L, st);
    CHECK_EQ(plg_close(L), 0);
    plg_reader *r;
    rc = plg_reader_open(&r, dir);
    if (rc != 0) { CHECK_EQ(rc, 0); return -1; }
    plg_record rec;
    uint64_t n = 0;
    while ((rc = plg_reader_next(r, &rec)) == 1) {
        int64_t prev = (int64_t)n;
        memset(buf, (int)((prev + 1) * 7 % 251), sizeof buf);
        memcpy(buf, &prev, sizeof prev);
        if (rec.seq != n + 1 || rec.len != sizeof buf || memcmp(rec.data, buf, sizeof buf) != 0) break;
        n++;
    }
    plg_reader_close(r);
    CHECK_EQ(rc, 0);
    CHECK_EQ(n, (uint64_t)seq);
    *nrec = n;
    return 1;
}

static void test_a_filled_page_and_the_next_go_in_one_write(void) {
    plg_stats st;
    uint64_t n = 0;
    int m = paired_run(0, &st, &n);
    if (m < 0) return;
    if (m == 0) SKIP(depth_skip);
    printf("  %llu records: %llu writes, %llu blocking, %llu of them paired, %llu pages\n", (unsigned long long)n,
           (unsigned long long)st.writes, (unsigned long long)st.writes_blocking, (unsigned long long)st.writes_paired,
           (unsigned long long)st.pages_written);
    CHECK(st.writes_paired > 0);
    CHECK(st.writes_paired <= st.writes_blocking);
    CHECK_EQ(st.max_write_pages >= 2, 1);
    m = paired_run(PLG_URING_ONLY, &st, &n);
    if (m < 0) return;
    CHECK_EQ(st.writes_blocking, 0);
    CHECK_EQ(st.writes_paired, 0);
}

int main(void) {
    (void)t_rand;
    RUN(test_dsync_without_fua_keeps_one_write_in_flight_unless_behind);
    RUN(test_auto_without_fua_writes_dsync_until_behind);
    RUN(test_lone_page_without_fua_is_written_by_the_writer_itself);
    RUN(test_a_filled_page_and_the_next_go_in_one_write);
    return t_done();
}
