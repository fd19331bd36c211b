/* Every timed wait in pinnacle_persist.h and picolog.h runs on
 * CLOCK_MONOTONIC (DESIGN.md: a wall-clock step by NTP must never stall a
 * syncer or delay an acknowledgement).
 *
 * The machine's clock is shared and is never changed here. Instead, this
 * translation unit routes the headers' pthread_cond_init and
 * pthread_cond_timedwait through recording wrappers (macros defined before
 * the implementation is included; the wrappers call the real functions):
 *   - every condition variable the headers create must be set to
 *     CLOCK_MONOTONIC (read back with pthread_condattr_getclock);
 *   - every timed wait must be on such a condition variable, with a deadline
 *     taken from CLOCK_MONOTONIC (within an hour of its now: a deadline
 *     computed from CLOCK_REALTIME is decades away on that clock).
 * The store runs its threads (grower, syncer, maintainer) in the
 * per-instrument layout, format 2 and strict mode, and pp_wait waits for
 * the syncer, so each kind of timed wait happens; the test checks that waits were
 * seen, so it cannot pass by watching nothing. */
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>

enum { CK_MAX = 1024 };
static pthread_mutex_t ck_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { const pthread_cond_t *cv; clockid_t clk; } ck_cv[CK_MAX];
static int ck_n;
static long ck_inits, ck_inits_not_mono, ck_waits, ck_waits_not_mono, ck_waits_far;

static int ck_cond_init(pthread_cond_t *cv, const pthread_condattr_t *a) {
    clockid_t clk = CLOCK_REALTIME;                 /* a NULL attribute: the default clock */
    if (a && pthread_condattr_getclock(a, &clk) != 0) clk = CLOCK_REALTIME;
    pthread_mutex_lock(&ck_mu);
    int i = 0;
    while (i < ck_n && ck_cv[i].cv != cv) i++;
    if (i == ck_n && ck_n < CK_MAX) ck_n++;
    if (i < CK_MAX) { ck_cv[i].cv = cv; ck_cv[i].clk = clk; }
    ck_inits++;
    if (clk != CLOCK_MONOTONIC) ck_inits_not_mono++;
    pthread_mutex_unlock(&ck_mu);
    return pthread_cond_init(cv, a);
}

static int ck_cond_timedwait(pthread_cond_t *cv, pthread_mutex_t *m, const struct timespec *abstime) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long d = (long long)abstime->tv_sec - (long long)now.tv_sec;
    pthread_mutex_lock(&ck_mu);
    clockid_t clk = CLOCK_REALTIME;                 /* never initialised here: static, default clock */
    for (int i = 0; i < ck_n; i++) if (ck_cv[i].cv == cv) { clk = ck_cv[i].clk; break; }
    ck_waits++;
    if (clk != CLOCK_MONOTONIC) ck_waits_not_mono++;
    if (d > 3600 || d < -3600) ck_waits_far++;
    pthread_mutex_unlock(&ck_mu);
    return pthread_cond_timedwait(cv, m, abstime);
}

#define pthread_cond_init ck_cond_init
#define pthread_cond_timedwait ck_cond_timedwait
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#undef pthread_cond_init
#undef pthread_cond_timedwait
#include "t.h"

static void rm_dir(const char *dir) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static void quiet(void *u, int code, const char *msg) { (void)u; (void)code; (void)msg; }

static void ck_reset(void) {
    pthread_mutex_lock(&ck_mu);
    ck_n = 0; ck_inits = ck_inits_not_mono = ck_waits = ck_waits_not_mono = ck_waits_far = 0;
    pthread_mutex_unlock(&ck_mu);
}

enum { L_MMAP = 1, L_STORE = 2, L_STRICT = 3 };

/* open a store, journal a few orders, pp_wait for the last (a timed wait
 * until the syncer's round), let the threads tick, close; then the counts */
static void run_layout(int layout, const char *name) {
    const char *dir = t_dir(name);
    if (layout == L_STRICT && t_has_odirect(dir) != 1) { rm_dir(dir); SKIP("strict mode needs O_DIRECT"); }
    ck_reset();
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.log_fn = quiet;
    c.journal_sync_interval_ms = 1;
    c.snapshot_interval_ms = 5;                     /* the maintainer's timers run too */
    c.journal_chunk_bytes = 64 << 10;
    c.journal_segment_bytes = 1 << 20;
    c.ring_entries = 1024;
    plg_config lc;
    memset(&lc, 0, sizeof lc);
    if (layout == L_STORE) c.flags |= PP_STORE_JOURNAL;
    if (layout == L_MMAP) c.flags |= PP_LEGACY_LAYOUT;     /* format 2 is a new store's default */
    if (layout == L_STRICT) {
        lc.segment_size = 1 << 20;
        lc.ring_capacity = 1 << 20;
        lc.log_fn = quiet;
        c.mode = PP_JOURNAL_STRICT;
        c.strict_log = &lc;
    }
    pp_store *s = NULL;
    pp_book *b = NULL;
    int rc = pp_open(&s, &c);
    CHECK_EQ(rc, 0);
    if (rc) { rm_dir(dir); return; }
    CHECK_EQ(pp_book_open(s, "BTC-USD", &b), 0);
    for (uint64_t i = 1; b && i <= 50; i++) {
        pp_order o;
        memset(&o, 0, sizeof o);
        o.id = i; o.price = 100 + (int64_t)(i % 7); o.qty = 3; o.side = (uint8_t)(i & 1 ? PP_BUY : PP_SELL);
        CHECK_EQ(pp_add(b, &o), 0);
    }
    if (b) {
        CHECK_EQ(pp_wait(b, pp_last_seq(b), 5000000000ll), 0);   /* the syncer's round wakes it (dur_cv) */
        CHECK_EQ(pp_sync(b), 0);
    }
    struct timespec nap = { 0, 20000000 };          /* 20 ms: the threads' timers fire many times */
    nanosleep(&nap, NULL);
    CHECK_EQ(pp_close(s), 0);
    rm_dir(dir);

    pthread_mutex_lock(&ck_mu);
    long inits = ck_inits, inits_bad = ck_inits_not_mono, waits = ck_waits;
    long waits_bad = ck_waits_not_mono, far = ck_waits_far;
    pthread_mutex_unlock(&ck_mu);
    if (waits_bad || inits_bad || far)
        fprintf(stderr, "  %s: %ld of %ld condition variables not on CLOCK_MONOTONIC; %ld of %ld timed waits"
                " on such a one, %ld with a deadline off the monotonic clock\n", name, inits_bad, inits, waits_bad, waits, far);
    CHECK(inits >= 2);                              /* the store's own: wake_cv, dur_cv */
    CHECK(waits >= 3);                              /* the threads' sleeps and pp_wait's */
    CHECK_EQ(inits_bad, 0);
    CHECK_EQ(waits_bad, 0);
    CHECK_EQ(far, 0);
}

static void test_timed_waits_are_monotonic_per_instrument(void) { run_layout(L_MMAP, "clock_mmap"); }
static void test_timed_waits_are_monotonic_format2(void) { run_layout(L_STORE, "clock_store"); }
static void test_timed_waits_are_monotonic_strict(void) { run_layout(L_STRICT, "clock_strict"); }

int main(void) {
    (void)t_rand;
    RUN(test_timed_waits_are_monotonic_per_instrument);
    RUN(test_timed_waits_are_monotonic_format2);
    RUN(test_timed_waits_are_monotonic_strict);
    return t_done();
}
