/* Real process crashes for pinnacle_persist.h: a child journals events on
 * three books as fast as it can (with explicit pp_snapshot and pp_sync calls,
 * a 64 KiB compaction threshold and small segments, so rolls, snapshots and
 * compaction are in progress), and publishes through MAP_SHARED memory each
 * event before it journals it, how many events returned, and pp_durable().
 * The parent SIGKILLs it at a random moment (one round in eight within the
 * first 3 ms: during pp_open's recovery), reopens the store and checks every
 * book against the reference replayed from the published events:
 *   - recovery succeeds;
 *   - mmap mode: every event whose call returned is recovered (a process
 *     crash keeps the page cache); strict mode: every event pp_durable()
 *     acknowledged is;
 *   - the recovered last seq is at most the last event the child started,
 *     and the recovered book equals the reference at that seq.
 * The store lives on across 10 rounds (each child recovers what the previous
 * one left), then a fresh one; every third store is in strict mode.
 * SIGKILL is not power loss: that is tests/test_sim_pinnacle.c.
 *
 * usage: test_crash_pinnacle [--rounds N] [--seed N]
 *   env PP_CRASH_ROUNDS, PP_CRASH_SEED (make soak sets them).
 *   Default 200 rounds (ASan 60, TSan 30). */
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "t.h"
#include "pp_model.h"
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#define NINST 3
#define CAP 150000u          /* events per book per store */
#define PER_STORE 10         /* rounds per store */

typedef struct shared {
    uint64_t intent[NINST];  /* the child is about to journal this seq */
    uint64_t done[NINST];    /* the child's calls returned up to this seq */
    uint64_t acked[NINST];   /* pp_durable() as last seen by the child */
    uint64_t opened;         /* 1 once pp_open and the books are open */
    int32_t  open_rc;
    char     msg[512];
    ppm_ev   ev[NINST][CAP];
} shared;

static shared *sh;
static pthread_mutex_t msg_mu = PTHREAD_MUTEX_INITIALIZER;   /* the store's threads log too */
static void child_log(void *u, int code, const char *msg) {
    (void)u; (void)code;
    pthread_mutex_lock(&msg_mu);
    snprintf(sh->msg, sizeof sh->msg, "%s", msg);
    pthread_mutex_unlock(&msg_mu);
}
static char parent_msg[1024];
static void parent_log(void *u, int code, const char *msg) {
    (void)u; (void)code;
    pthread_mutex_lock(&msg_mu);
    snprintf(parent_msg, sizeof parent_msg, "%s", msg);
    pthread_mutex_unlock(&msg_mu);
}

static const char *inst(int i) { static const char *n[NINST] = {"C0", "C1", "C2"}; return n[i]; }

static plg_config strict_tpl;
static pp_config cfg_for(const char *dir, int strict, uint32_t store) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.expected_orders = 1024;
    c.ring_entries = 4096;
    c.compaction_threshold = 64 << 10;
    c.journal_chunk_bytes = 16 << 10;
    c.journal_segment_bytes = 256 << 10;
    c.keep_snapshots = 1 + store % 3;
    c.journal_sync_interval_ms = 1 + store % 5;
    c.snapshot_interval_ms = 5 + store % 7;         /* background snapshots as well as explicit ones */
    if (strict) {
        c.mode = PP_JOURNAL_STRICT;
        memset(&strict_tpl, 0, sizeof strict_tpl);
        strict_tpl.segment_size = 256 << 10;
        strict_tpl.ring_capacity = 1 << 20;
        strict_tpl.io_mode = PLG_IO_BUFFERED_FDATASYNC;   /* any filesystem; durability from the sync mode */
        strict_tpl.log_fn = child_log;
        c.strict_log = &strict_tpl;
    }
    return c;
}

static void child_main(const char *dir, int strict, uint32_t store, uint64_t seed) {
    pp_config c = cfg_for(dir, strict, store);
    c.log_fn = child_log;
    pp_store *S;
    pp_book *b[NINST];
    int rc = pp_open(&S, &c);
    for (int i = 0; i < NINST && !rc; i++) rc = pp_book_open(S, inst(i), &b[i]);
    __atomic_store_n(&sh->open_rc, rc, __ATOMIC_RELEASE);
    if (rc) _exit(3);
    static ppm m[NINST];
    for (int i = 0; i < NINST; i++) {               /* the model of what recovery gave back */
        ppm_init(&m[i], sh->ev[i], CAP);
        uint64_t last = pp_last_seq(b[i]);
        ppm_rebuild(&m[i], last);
        __atomic_store_n(&sh->done[i], last, __ATOMIC_RELEASE);
        __atomic_store_n(&sh->intent[i], last, __ATOMIC_RELEASE);
        __atomic_store_n(&sh->acked[i], pp_durable(b[i]), __ATOMIC_RELEASE);
    }
    __atomic_store_n(&sh->opened, 1, __ATOMIC_RELEASE);
    uint64_t rng = seed, t0 = plg_now_ns();
    for (uint64_t k = 0;; k++) {
        int i = (int)(ppm_rand(&rng) % NINST);
        if (m[i].n + 1 < m[i].cap) {
            ppm_ev *e = &m[i].ev[m[i].n];
            ppm_gen(&m[i], &rng, e);
            __atomic_store_n(&sh->intent[i], m[i].n + 1, __ATOMIC_RELEASE);
            while ((rc = ppm_call(b[i], e)) == PP_EFULL) {
                __atomic_store_n(&sh->acked[i], pp_durable(b[i]), __ATOMIC_RELEASE);
                sched_yield();
            }
            if (rc) { snprintf(sh->msg, sizeof sh->msg, "event failed: %s", pp_strerror(rc)); _exit(4); }
            ppm_push(&m[i], e);
            __atomic_store_n(&sh->done[i], m[i].n, __ATOMIC_RELEASE);
        } else {
            pp_sync(b[i]);
        }
        __atomic_store_n(&sh->acked[i], pp_durable(b[i]), __ATOMIC_RELEASE);
        uint64_t x = ppm_rand(&rng);
        if (x % 4000 == 0) pp_snapshot(b[i]);
        if (x % 1500 == 1) pp_sync(b[i]);
        if ((k & 1023) == 0 && plg_now_ns() - t0 > 10ull * 1000000000ull) _exit(5);   /* the parent is gone */
    }
}

static uint64_t env_u64(const char *name, uint64_t def) {
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : def;
}
static uint64_t default_rounds(void) {
#if defined(__SANITIZE_THREAD__)
    return 30;
#elif defined(__SANITIZE_ADDRESS__)
    return 60;
#else
    return getenv("PLG_TEST_QUICK") ? 60 : 200;
#endif
}

static uint64_t opt_rounds, opt_seed = 1;

static void test_sigkill_rounds(void) {
    uint64_t rounds = opt_rounds ? opt_rounds : env_u64("PP_CRASH_ROUNDS", default_rounds());
    useconds_t time_scale = (useconds_t)env_u64("PLG_TEST_TIME_SCALE", 1);
    if (time_scale < 1) time_scale = 1;
    uint64_t rng = opt_seed;
    sh = (shared *)mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    static ppm m[NINST];
    uint64_t prev[NINST] = {0};
    const char *dir = NULL;
    int strict = 0;
    uint32_t store = 0;
    uint64_t bad_rounds = 0, killed_in_open = 0, strict_rounds = 0, events = 0, acked_total = 0, snapshots = 0, compactions = 0;
    uint64_t t_start = plg_now_ns();
    for (uint32_t round = 0; round < rounds && !bad_rounds; round++) {
        if (round % PER_STORE == 0) {
            store = round / PER_STORE;
            strict = store % 3 == 2;
            dir = t_dir(strict ? "crash_pinnacle_strict" : "crash_pinnacle");
            memset(prev, 0, sizeof prev);
            for (int i = 0; i < NINST; i++) { ppm_free(&m[i]); ppm_init(&m[i], sh->ev[i], CAP); }
        }
        if (strict) strict_rounds++;
        for (int i = 0; i < NINST; i++) { sh->intent[i] = sh->done[i] = sh->acked[i] = prev[i]; }
        sh->opened = 0; sh->open_rc = 0; sh->msg[0] = 0;
        uint64_t cseed = t_rand(&rng);
        fflush(stdout); fflush(stderr);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) child_main(dir, strict, store, cseed);
        uint64_t r = t_rand(&rng);
        useconds_t us = (r % 8 == 0) ? (useconds_t)(r >> 8) % 3000 : 2000 + (useconds_t)((r >> 8) % 38000);
        usleep(us * time_scale);   /* PLG_TEST_TIME_SCALE: valgrind runs the child ~30x slower */
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
            fprintf(stderr, "  round %u: the child exited on its own (status %d, open rc %d: %s)\n", round, st, sh->open_rc, sh->msg);
            bad_rounds++;
            break;
        }
        if (!__atomic_load_n(&sh->opened, __ATOMIC_ACQUIRE)) killed_in_open++;
        /* check */
        pp_config c = cfg_for(dir, strict, store);
        c.log_fn = parent_log;
        pp_store *S = NULL;
        parent_msg[0] = 0;
        int rc = pp_open(&S, &c);
        if (rc) {
            S = NULL;
            fprintf(stderr, "  round %u: pp_open after the kill: %s (%s)\n", round, pp_strerror(rc), parent_msg);
            bad_rounds++;
        }
        for (int i = 0; i < NINST && !rc; i++) {
            pp_book *b;
            rc = pp_book_open(S, inst(i), &b);
            if (rc) { fprintf(stderr, "  round %u %s: pp_book_open: %s (%s)\n", round, inst(i), pp_strerror(rc), parent_msg); bad_rounds++; break; }
            uint64_t last = pp_last_seq(b), intent = sh->intent[i], done = sh->done[i], acked = sh->acked[i];
            uint64_t floor = strict ? acked : done;
            if (floor < prev[i]) floor = prev[i];
            if (intent < prev[i]) intent = prev[i];
            const char *why = NULL;
            char buf[400];
            if (last < floor) {
                snprintf(buf, sizeof buf, "LOST %s EVENTS: recovered up to seq %llu, %llu %s", strict ? "ACKNOWLEDGED" : "RETURNED",
                         (unsigned long long)last, (unsigned long long)floor, strict ? "acknowledged" : "returned");
                why = buf;
            } else if (last > intent) {
                snprintf(buf, sizeof buf, "recovered seq %llu, the child started only %llu", (unsigned long long)last, (unsigned long long)intent);
                why = buf;
            } else {
                ppm_rebuild(&m[i], last);
                if (!ppm_same(&m[i], b, buf, sizeof buf)) why = buf;
            }
            if (why) {
                fprintf(stderr, "  round %u %s (%s mode): %s\n", round, inst(i), strict ? "strict" : "mmap", why);
                bad_rounds++;
                rc = -1;
                break;
            }
            pp_stats ps;
            pp_get_stats(b, &ps);
            if (last > prev[i]) events += last - prev[i];
            acked_total += acked > prev[i] ? acked - prev[i] : 0;
            snapshots += ps.last_snapshot_seq > 0;
            prev[i] = last;
        }
        if (S) {
            pp_book *b;
            for (int i = 0; i < NINST; i++) if (pp_book_open(S, inst(i), &b) == 0) {
                pp_stats ps; pp_get_stats(b, &ps); compactions += ps.journal_first_seq > 1;
            }
            pp_close(S);
        }
        if (bad_rounds) {
            fprintf(stderr, "  round %u FAILED: reproduce with build/test/test_crash_pinnacle --seed %llu --rounds %u; files in %s\n",
                    round, (unsigned long long)opt_seed, round + 1, dir);
        }
    }
    for (int i = 0; i < NINST; i++) ppm_free(&m[i]);
    munmap(sh, sizeof *sh);
    CHECK_EQ(bad_rounds, 0);
    printf("  crash: %llu SIGKILL rounds (%llu in strict mode, %llu during pp_open), %llu failed; %llu events recovered "
           "and checked across rounds, %llu acknowledged by pp_durable before their kill; %llu book checks found a "
           "snapshot, %llu a compacted journal; %.1f s\n",
           (unsigned long long)rounds, (unsigned long long)strict_rounds, (unsigned long long)killed_in_open,
           (unsigned long long)bad_rounds, (unsigned long long)events, (unsigned long long)acked_total,
           (unsigned long long)snapshots, (unsigned long long)compactions, (double)(plg_now_ns() - t_start) / 1e9);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) opt_rounds = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) opt_seed = strtoull(argv[++i], NULL, 0);
    }
    if (!opt_rounds && getenv("PP_CRASH_SEED")) opt_seed = strtoull(getenv("PP_CRASH_SEED"), NULL, 0);
    RUN(test_sigkill_rounds);
    return t_done();
}
