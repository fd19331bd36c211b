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
 *
 * The same on the store journal (format 2, one journal for every book):
 * 16 books fed by two threads of the child (each opens its 8 books itself,
 * at the same time as the other), snapshots and compaction running; after
 * the kill every event acknowledged by pp_durable is recovered, and each
 * book equals its replay. Not every event whose call returned: a thread
 * killed between claiming its frame and publishing it leaves an unpublished
 * slot, where the journal ends, and the other thread's frames after it go
 * (docs/pinnacle-format.md, "A process crash"); the rounds where that
 * happened are counted. 5 rounds per store. Every third store runs in
 * strict mode (one picolog log for the store; every other one of them
 * encrypted at rest, pp_config.encrypt_key), and of the others every other
 * one with PP_PRIVATE_PAGES; in both a kill also loses what was not durable
 * yet (never what pp_durable covered): counted apart.
 * SIGKILL is not power loss: that is tests/test_sim_pinnacle.c.
 *
 * usage: test_crash_pinnacle [--rounds N] [--store-rounds N] [--seed N]
 *   env PP_CRASH_ROUNDS, PP_CRASH_SEED (make soak sets them; the store
 *   journal's test runs a fifth of PP_CRASH_ROUNDS), PP_CRASH_STORE_ROUNDS.
 *   Default 200 rounds (ASan 60, TSan 30), store journal 15 (ASan 8, TSan
 *   5, PLG_TEST_QUICK 6). */
#define VAULT_IMPLEMENTATION           /* encryption at rest: every other strict store */
#include "vault.h"
#define PICOLOG_ENCRYPT
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
static char *child_msg;     /* the shared message buffer of the test running */
static pthread_mutex_t msg_mu = PTHREAD_MUTEX_INITIALIZER;   /* the store's threads log too */
static void child_log(void *u, int code, const char *msg) {
    (void)u; (void)code;
    pthread_mutex_lock(&msg_mu);
    snprintf(child_msg, 512, "%s", msg);
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
    c.flags = PP_LEGACY_LAYOUT;                     /* a journal per book (the store journal: below) */
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
    child_msg = sh->msg;
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

/* ---- the store journal (format 2): many books, two threads ---- */
#define SB 16                /* books */
#define SCAP 30000u          /* events per book per store */
#define SPER 5               /* rounds per store */

typedef struct shared2 {
    uint64_t intent[SB], done[SB], acked[SB];   /* as in shared, per book */
    uint64_t opened;         /* threads that opened their books */
    int32_t  open_rc;
    char     msg[512];
    ppm_ev   ev[SB][SCAP];
} shared2;
static shared2 *sh2;

static void sbook(int i, char *buf, size_t cap) { snprintf(buf, cap, "S%02d", i); }

static pp_config cfg_store(const char *dir, uint32_t store) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;                             /* no flags: format 2, the default */
    c.compaction_threshold = 128 << 10;
    c.journal_chunk_bytes = 16 << 10;
    c.journal_segment_bytes = 64 << 10;           /* 1024 frames a segment: rolls all the time */
    c.keep_snapshots = 1 + store % 3;
    c.journal_sync_interval_ms = 1 + store % 5;
    c.snapshot_interval_ms = 5 + store % 7;
    if (store % 3 == 2) {                           /* strict: one picolog log for the store */
        static plg_config tpl;
        memset(&tpl, 0, sizeof tpl);
        tpl.segment_size = 256 << 10;               /* compaction releases segments */
        tpl.ring_capacity = 1 << 20;
        tpl.io_mode = PLG_IO_BUFFERED_FDATASYNC;    /* any filesystem; durability from the sync mode */
        tpl.log_fn = child_log;
        c.mode = PP_JOURNAL_STRICT;
        c.strict_log = &tpl;
        static const uint8_t key[32] = "crash-pinnacle-data-key-01234567";
        if ((store / 3) % 2) c.encrypt_key = key;  /* every other strict store is encrypted */
    } else if (store % 2) {
        c.flags |= PP_PRIVATE_PAGES;                /* a kill loses what was not synced: never an acknowledged event */
    }
    return c;
}
/* Stores where a kill loses returned events not yet made durable (never
 * what pp_durable covered): private pages, and strict mode, whose writers'
 * frames are in anonymous memory until the syncer relays them to picolog. */
static int store_loses_unsynced(uint32_t store) { return store % 3 == 2 || store % 2; }

typedef struct sfeeder { pp_store *S; int from; uint64_t seed; } sfeeder;
static void *store_feed(void *p) {
    sfeeder *f = (sfeeder *)p;
    pp_book *b[SB / 2];
    static ppm m[SB];
    for (int k = 0; k < SB / 2; k++) {            /* books opened by both threads at once */
        char n[16];
        sbook(f->from + k, n, sizeof n);
        int rc = pp_book_open(f->S, n, &b[k]);
        if (rc) { __atomic_store_n(&sh2->open_rc, rc, __ATOMIC_RELEASE); _exit(3); }
        int i = f->from + k;
        ppm_init(&m[i], sh2->ev[i], SCAP);
        uint64_t last = pp_last_seq(b[k]);
        ppm_rebuild(&m[i], last);
        __atomic_store_n(&sh2->done[i], last, __ATOMIC_RELEASE);
        __atomic_store_n(&sh2->intent[i], last, __ATOMIC_RELEASE);
        __atomic_store_n(&sh2->acked[i], pp_durable(b[k]), __ATOMIC_RELEASE);
    }
    __atomic_fetch_add(&sh2->opened, 1, __ATOMIC_ACQ_REL);
    uint64_t rng = f->seed, t0 = plg_now_ns();
    for (uint64_t k = 0;; k++) {
        int x = (int)(ppm_rand(&rng) % (SB / 2)), i = f->from + x;
        int rc;
        if (m[i].n + 1 < m[i].cap) {
            ppm_ev *e = &m[i].ev[m[i].n];
            ppm_gen(&m[i], &rng, e);
            __atomic_store_n(&sh2->intent[i], m[i].n + 1, __ATOMIC_RELEASE);
            while ((rc = ppm_call(b[x], e)) == PP_EFULL) sched_yield();
            if (rc) { snprintf(sh2->msg, sizeof sh2->msg, "event failed: %s", pp_strerror(rc)); _exit(4); }
            ppm_push(&m[i], e);
            __atomic_store_n(&sh2->done[i], m[i].n, __ATOMIC_RELEASE);
        } else {
            pp_sync(b[x]);
        }
        __atomic_store_n(&sh2->acked[i], pp_durable(b[x]), __ATOMIC_RELEASE);
        uint64_t y = ppm_rand(&rng);
        if (y % 6000 == 0) pp_snapshot(b[x]);
        if (y % 2000 == 1) pp_sync(b[x]);
        if ((k & 1023) == 0 && plg_now_ns() - t0 > 10ull * 1000000000ull) _exit(5);   /* the parent is gone */
    }
    return NULL;
}

static void store_child(const char *dir, uint32_t store, uint64_t seed) {
    pp_config c = cfg_store(dir, store);
    c.log_fn = child_log;
    pp_store *S;
    int rc = pp_open(&S, &c);
    if (rc) { __atomic_store_n(&sh2->open_rc, rc, __ATOMIC_RELEASE); _exit(3); }
    sfeeder f[2] = {{S, 0, seed}, {S, SB / 2, seed ^ 0x5555555555555555ull}};
    pthread_t th;
    if (pthread_create(&th, NULL, store_feed, &f[1]) != 0) _exit(6);
    store_feed(&f[0]);
}

static uint64_t store_rounds_default(void) {
    if (getenv("PP_CRASH_STORE_ROUNDS")) return env_u64("PP_CRASH_STORE_ROUNDS", 1);
    if (getenv("PP_CRASH_ROUNDS")) { uint64_t r = env_u64("PP_CRASH_ROUNDS", 5) / 5; return r ? r : 1; }
#if defined(__SANITIZE_THREAD__)
    return 5;
#elif defined(__SANITIZE_ADDRESS__)
    return 8;
#else
    return getenv("PLG_TEST_QUICK") ? 6 : 15;   /* a round is ~0.1-0.3 s: opening costs device flushes */
#endif
}
static uint64_t opt_store_rounds;

static void test_sigkill_store_journal(void) {
    uint64_t rounds = opt_store_rounds ? opt_store_rounds : store_rounds_default();
    useconds_t time_scale = (useconds_t)env_u64("PLG_TEST_TIME_SCALE", 1);
    if (time_scale < 1) time_scale = 1;
    uint64_t rng = opt_seed ^ 0xC0FFEEull;
    sh2 = (shared2 *)mmap(NULL, sizeof *sh2, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh2 != MAP_FAILED);
    child_msg = sh2->msg;
    static ppm m[SB];
    uint64_t prev[SB] = {0};
    const char *dir = NULL;
    uint32_t store = 0;
    uint64_t bad_rounds = 0, killed_in_open = 0, events = 0, acked_total = 0, books_checked = 0, compacted = 0, returned_lost_books = 0, unsynced_lost_books = 0;
    uint64_t t_start = plg_now_ns();
    for (uint32_t round = 0; round < rounds && !bad_rounds; round++) {
        if (round % SPER == 0) {
            store = round / SPER;
            dir = t_dir("crash_pinnacle_store");
            memset(prev, 0, sizeof prev);
            for (int i = 0; i < SB; i++) { ppm_free(&m[i]); ppm_init(&m[i], sh2->ev[i], SCAP); }
        }
        for (int i = 0; i < SB; i++) { sh2->intent[i] = sh2->done[i] = sh2->acked[i] = prev[i]; }
        sh2->opened = 0; sh2->open_rc = 0; sh2->msg[0] = 0;
        uint64_t cseed = t_rand(&rng);
        fflush(stdout); fflush(stderr);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) store_child(dir, store, cseed);
        /* one round in eight: the kill lands within 20 ms of the fork (in
         * pp_open's recovery, or the books' opening); the others: 1..25 ms
         * after both threads have their books (opening takes a few device
         * flushes, tens of ms on a loaded disk) */
        uint64_t r = t_rand(&rng);
        if (r % 8 != 0) {
            uint64_t deadline = plg_now_ns() + 10ull * 1000000000ull * time_scale;
            while (__atomic_load_n(&sh2->opened, __ATOMIC_ACQUIRE) < 2 && plg_now_ns() < deadline) usleep(200);
        }
        useconds_t us = (r % 8 == 0) ? (useconds_t)(r >> 8) % 20000 : 1000 + (useconds_t)((r >> 8) % 24000);
        usleep(us * time_scale);
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
            fprintf(stderr, "  round %u: the child exited on its own (status %d, open rc %d: %s)\n", round, st, sh2->open_rc, sh2->msg);
            bad_rounds++;
            break;
        }
        if (__atomic_load_n(&sh2->opened, __ATOMIC_ACQUIRE) < 2) killed_in_open++;
        pp_config c = cfg_store(dir, store);
        c.log_fn = parent_log;
        c.flags |= PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT;   /* the check: no 16 snapshots at its close */
        pp_store *S = NULL;
        parent_msg[0] = 0;
        int rc = pp_open(&S, &c);
        if (rc) {
            S = NULL;
            fprintf(stderr, "  round %u: pp_open after the kill: %s (%s)\n", round, pp_strerror(rc), parent_msg);
            bad_rounds++;
        }
        for (int i = 0; i < SB && !rc; i++) {
            pp_book *b;
            char n[16];
            sbook(i, n, sizeof n);
            rc = pp_book_open(S, n, &b);
            if (rc) { fprintf(stderr, "  round %u %s: pp_book_open: %s (%s)\n", round, n, pp_strerror(rc), parent_msg); bad_rounds++; break; }
            uint64_t last = pp_last_seq(b), intent = sh2->intent[i], done = sh2->done[i], acked = sh2->acked[i];
            if (done < prev[i]) done = prev[i];
            if (intent < prev[i]) intent = prev[i];
            const char *why = NULL;
            char buf[400];
            if (last < acked) {
                snprintf(buf, sizeof buf, "LOST ACKNOWLEDGED EVENTS: recovered up to seq %llu, pp_durable said %llu",
                         (unsigned long long)last, (unsigned long long)acked);
                why = buf;
            } else if (last > intent) {
                snprintf(buf, sizeof buf, "recovered seq %llu, the child started only %llu", (unsigned long long)last, (unsigned long long)intent);
                why = buf;
            } else {
                ppm_rebuild(&m[i], last);
                if (!ppm_same(&m[i], b, buf, sizeof buf)) why = buf;
            }
            if (why) {
                fprintf(stderr, "  round %u %s: %s\n", round, n, why);
                bad_rounds++;
                rc = -1;
                break;
            }
            if (last < done) { if (store_loses_unsynced(store)) unsynced_lost_books++; else returned_lost_books++; }
            pp_stats ps;
            pp_get_stats(b, &ps);
            compacted += ps.journal_first_seq != 1 && last > 0;
            if (last > prev[i]) events += last - prev[i];
            acked_total += acked > prev[i] ? acked - prev[i] : 0;
            books_checked++;
            prev[i] = last;
        }
        if (S) pp_close(S);
        if (bad_rounds)
            fprintf(stderr, "  round %u FAILED: reproduce with build/test/test_crash_pinnacle --seed %llu --store-rounds %u; files in %s\n",
                    round, (unsigned long long)opt_seed, round + 1, dir);
    }
    for (int i = 0; i < SB; i++) ppm_free(&m[i]);
    munmap(sh2, sizeof *sh2);
    CHECK_EQ(bad_rounds, 0);
    CHECK(events > 0);
    printf("  crash (store journal): %llu SIGKILL rounds (%llu before both threads had their books), %llu failed; %llu book "
           "checks, %llu events recovered and checked, %llu acknowledged by pp_durable before their kill, %llu books with "
           "their first events compacted away, %llu that lost returned (unacknowledged) events behind an unpublished claim, "
           "%llu with private pages or in strict mode that lost returned events not yet durable; %.1f s\n",
           (unsigned long long)rounds, (unsigned long long)killed_in_open, (unsigned long long)bad_rounds,
           (unsigned long long)books_checked, (unsigned long long)events, (unsigned long long)acked_total,
           (unsigned long long)compacted, (unsigned long long)returned_lost_books, (unsigned long long)unsynced_lost_books,
           (double)(plg_now_ns() - t_start) / 1e9);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) opt_rounds = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--store-rounds") && i + 1 < argc) opt_store_rounds = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) opt_seed = strtoull(argv[++i], NULL, 0);
    }
    if (!opt_rounds && getenv("PP_CRASH_SEED")) opt_seed = strtoull(getenv("PP_CRASH_SEED"), NULL, 0);
    if (!opt_store_rounds || opt_rounds) RUN(test_sigkill_rounds);
    if (!opt_rounds || opt_store_rounds) RUN(test_sigkill_store_journal);
    return t_done();
}
