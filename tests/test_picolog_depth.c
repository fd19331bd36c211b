/* How many writes the writer keeps in flight, seen through PICOLOG_TRACE:
 * on a device without FUA each RWF_DSYNC write carries a cache flush, and
 * concurrent flushes only wait for each other. */
static int t_inflight, t_inflight_max;
static void t_trace(int ev) {   /* the writer thread only: it submits and reaps */
    if (ev == 2 && ++t_inflight > __atomic_load_n(&t_inflight_max, __ATOMIC_RELAXED))
        __atomic_store_n(&t_inflight_max, t_inflight, __ATOMIC_RELAXED);
    if (ev == 3) t_inflight--;
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

/* DSYNC on a device without FUA, max_inflight 4: paced records (one every
 * 100 us: several arrive during each write here) go one write at a time, each
 * write taking everything that came while the one before was in flight.
 * Starting a write per arrival instead (up to 4) made the acknowledgement
 * slower: 851 against about 600 us P50 at 10k records/s here
 * (docs/performance.md).
 * A burst, where a full batch waits, still uses every slot. */
static void test_dsync_without_fua_keeps_one_write_in_flight_unless_behind(void) {
    const char *dir = t_dir("plg_depth");
    plg_config c;
    memset(&c, 0, sizeof c);
    c.path = dir; c.log_fn = quiet_log;
    c.sync_mode = PLG_SYNC_DSYNC;
    c.max_inflight = 4;
    c.segment_size = 16u << 20;
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) SKIP("no O_DIRECT here");
    REQUIRE(rc == 0);
    plg_stats st;
    plg_get_stats(L, &st);
    if (strcmp(st.backend, "io_uring") != 0) { plg_close(L); SKIP("no io_uring: every write blocks the writer anyway"); }
    if (plg__device_fua(L->dirfd)) { plg_close(L); SKIP("the device writes FUA: DSYNC writes go in parallel"); }
    uint8_t buf[100];
    memset(buf, 3, sizeof buf);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t seq = 0;
    for (int i = 0; i < 3000; i++) {                 /* 0.3 s at 10k records/s */
        seq = plg_append(L, buf, sizeof buf);
        CHECK(seq == i + 1);
        sleep_until(&t, 100000);
    }
    CHECK_EQ(plg_wait(L, (uint64_t)seq, 10000000000ll), 0);
    plg_get_stats(L, &st);
    int paced_max = __atomic_load_n(&t_inflight_max, __ATOMIC_RELAXED);
    CHECK(st.writes >= 10);                          /* the writes were many, not one batch */
    CHECK_EQ(paced_max, 1);
    __atomic_store_n(&t_inflight_max, 0, __ATOMIC_RELAXED);   /* a burst: 32 MiB of records */
    int dense = 1;
    for (int i = 0; i < 320000; i++) {
        int64_t s;
        while ((s = plg_append(L, buf, sizeof buf)) == PLG_EFULL) plg_kick(L);
        if (s != seq + 1) dense = 0;
        seq = s;
    }
    CHECK(dense);
    CHECK_EQ(plg_wait(L, (uint64_t)seq, 60000000000ll), 0);
    int burst_max = __atomic_load_n(&t_inflight_max, __ATOMIC_RELAXED);
    CHECK(burst_max > 1);
    CHECK_EQ(plg_close(L), 0);
    printf("  paced: %d write(s) in flight at most, over %llu writes; burst: %d\n", paced_max,
           (unsigned long long)st.writes, burst_max);
}

int main(void) {
    (void)t_rand;
    RUN(test_dsync_without_fua_keeps_one_write_in_flight_unless_behind);
    return t_done();
}
