/* Real process crashes: a child appends to a picolog log as fast as it can and
 * publishes, through MAP_SHARED memory, the last sequence number it is about
 * to append and the last one plg_durable() acknowledged. The parent SIGKILLs it
 * at a random moment (sometimes during plg_open's recovery), reopens the log
 * and checks the invariant: every acknowledged record is there byte for byte,
 * seqs are dense from 1, nothing that was never appended appears, recovery
 * succeeds.
 *
 * SIGKILL is not power loss: the kernel's page cache survives the process, so
 * this proves the process-crash half (no acknowledged record depends on
 * anything in the dead process's memory; recovery copes with whatever the
 * writer left mid-flight, including a kill during recovery itself).
 * Power loss is tests/test_sim_picolog.c. All three sync modes run here,
 * PLG_SYNC_NONE_UNSAFE included: it promises to survive a process crash.
 *
 * Logs with a small in-flight window (max_inflight * max_write_bytes) are
 * included: they found F5 (a torn record larger than the window, or a kill
 * during the torn-tail erase, read as mid-log corruption on the next open),
 * fixed in picolog.h.
 *
 * usage: test_crash_picolog [--rounds N] [--seed N]
 *   env PLG_CRASH_ROUNDS, PLG_CRASH_SEED */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "t.h"
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

typedef struct shared {
    uint64_t intent;     /* the child is about to append this seq */
    uint64_t acked;      /* plg_durable() as last seen by the child */
    uint64_t opened;     /* 1 once plg_open returned */
    int32_t open_rc;
} shared;

static void quiet_log(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }

static uint32_t rec_len(uint64_t seq, uint32_t gen) {
    uint64_t h = (seq * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)gen * 0xC2B2AE3D27D4EB4Full);
    h ^= h >> 29;
    if (h % 100 < 2) return 20000 + (uint32_t)(h % 80000);   /* spans pages and segments */
    if (h % 100 < 20) return 1 + (uint32_t)(h % 4000);
    return 1 + (uint32_t)(h % 200);
}
static void fill(uint8_t *p, uint32_t len, uint64_t seq, uint32_t gen) {
    uint64_t s = seq * 0x9E3779B97F4A7C15ull ^ ((uint64_t)gen << 40) ^ 0x1234;
    for (uint32_t i = 0; i < len; i++) {
        if ((i & 7) == 0) s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(s >> (8 * (i & 7)));
    }
}

/* `round` is the generation: the config a log is created with is its first
 * round's, and fixes its window for good. */
static plg_config cfg_for(const char *dir, uint32_t round) {
    plg_config c;
    memset(&c, 0, sizeof c);
    c.path = dir;
    c.log_fn = quiet_log;
    c.segment_size = 256 * 1024;
    c.ring_capacity = 1u << 20;
    int m = (int)(round % 5);
    c.sync_mode = m < 3 ? PLG_SYNC_DSYNC : m == 3 ? PLG_SYNC_FDATASYNC : PLG_SYNC_NONE_UNSAFE;
    c.max_inflight = 1 + round % 4;
    c.max_write_bytes = 4096u << (round % 4);
    return c;
}

static void child_main(const char *dir, uint32_t gen, shared *sh) {
    static uint8_t buf[100000];
    plg_config c = cfg_for(dir, gen);
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) { c.io_mode = PLG_IO_BUFFERED_FDATASYNC; rc = plg_open(&L, &c); }
    __atomic_store_n(&sh->open_rc, rc, __ATOMIC_RELEASE);
    if (rc) _exit(3);
    __atomic_store_n(&sh->opened, 1, __ATOMIC_RELEASE);
    uint64_t t0 = plg_now_ns();
    for (;;) {
        uint64_t seq = plg_appended(L) + 1;
        uint32_t len = rec_len(seq, gen);
        fill(buf, len, seq, gen);
        __atomic_store_n(&sh->intent, seq, __ATOMIC_RELEASE);
        int64_t s;
        while ((s = plg_append(L, buf, len)) == PLG_EFULL) {
            __atomic_store_n(&sh->acked, plg_durable(L), __ATOMIC_RELEASE);
            sched_yield();
        }
        if (s != (int64_t)seq) _exit(4);
        __atomic_store_n(&sh->acked, plg_durable(L), __ATOMIC_RELEASE);
        if (plg_now_ns() - t0 > 10ull * 1000000000ull) _exit(5);   /* never killed: the parent is gone */
    }
}

static uint64_t env_u64(const char *name, uint64_t def) {
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : def;
}
static uint64_t default_rounds(void) {
#if defined(__SANITIZE_THREAD__)
    return 40;
#elif defined(__SANITIZE_ADDRESS__)
    return 100;
#else
    return 200;
#endif
}

static uint64_t opt_rounds, opt_seed = 1;

static void test_sigkill_rounds(void) {
    uint64_t rounds = opt_rounds ? opt_rounds : env_u64("PLG_CRASH_ROUNDS", default_rounds());
    uint64_t rng = opt_seed;
    shared *sh = (shared *)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    const uint32_t per_log = 25;                  /* a fresh log every 25 rounds */
    static uint32_t gen_of_start[64]; static uint64_t start_seq[64];
    int nstarts = 0;
    const char *dir = NULL;
    uint64_t total_acked = 0, total_recovered = 0, killed_in_open = 0, bad_rounds = 0, torn = 0, max_lost_unacked = 0;
    static uint8_t exp[100000];
    uint64_t t_start = plg_now_ns();
    uint64_t last = 0;                            /* records in the log after the previous round */
    for (uint32_t round = 0; round < rounds; round++) {
        if (round % per_log == 0) { dir = t_dir("crash_picolog"); nstarts = 0; last = 0; }
        memset(sh, 0, sizeof *sh);
        uint32_t gen = round + 1;
        gen_of_start[nstarts] = gen; start_seq[nstarts] = last + 1; nstarts++;
        fflush(stdout); fflush(stderr);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) child_main(dir, gen, sh);
        /* kill after 0..40 ms; one round in eight right away (during recovery) */
        uint64_t r = t_rand(&rng);
        useconds_t us = (r % 8 == 0) ? (useconds_t)(r >> 8) % 3000 : 2000 + (useconds_t)((r >> 8) % 38000);
        usleep(us);
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
            fprintf(stderr, "  round %u: the child exited on its own (status %d, open rc %d)\n", round, st, sh->open_rc);
            bad_rounds++;
            continue;
        }
        uint64_t acked = __atomic_load_n(&sh->acked, __ATOMIC_ACQUIRE);
        uint64_t intent = __atomic_load_n(&sh->intent, __ATOMIC_ACQUIRE);
        if (!__atomic_load_n(&sh->opened, __ATOMIC_ACQUIRE)) killed_in_open++;
        /* check */
        plg_reader *rd;
        int rc = plg_reader_open(&rd, dir);
        if (rc == PLG_ENOENT && last == 0) { nstarts--; continue; }   /* killed before the first segment existed */
        if (rc) { fprintf(stderr, "  round %u: plg_reader_open: %s\n", round, plg_strerror(rc)); bad_rounds++; break; }
        plg_record rec; uint64_t n = 0; int bad = 0;
        while ((rc = plg_reader_next(rd, &rec)) == 1) {
            n++;
            if (rec.seq != n) { fprintf(stderr, "  round %u: seq %llu where %llu expected\n", round, (unsigned long long)rec.seq, (unsigned long long)n); bad = 1; break; }
            int k = nstarts - 1;
            while (k > 0 && start_seq[k] > n) k--;
            uint32_t g = gen_of_start[k], len = rec_len(n, g);
            fill(exp, len, n, g);
            if (rec.len != len || memcmp(exp, rec.data, len) != 0) {
                fprintf(stderr, "  round %u: seq %llu has other content than appended (gen %u)\n", round, (unsigned long long)n, g);
                bad = 1; break;
            }
        }
        uint64_t off = 0;
        const char *where = plg_reader_where(rd, &off);
        if (!bad && rc != 0) {
            fprintf(stderr, "  round %u: recovery failed after %llu records: %s at %s offset %llu\n", round,
                    (unsigned long long)n, plg_strerror(rc), where, (unsigned long long)off);
            bad = 1;
        }
        plg_reader_close(rd);
        uint64_t floor = acked > last ? acked : last;   /* what was durable before this round survives too */
        if (!bad && n < floor) {
            fprintf(stderr, "  round %u: LOST ACKNOWLEDGED RECORDS: recovered %llu, acknowledged %llu\n", round,
                    (unsigned long long)n, (unsigned long long)floor);
            bad = 1;
        }
        if (!bad && n > intent && n > last) {
            fprintf(stderr, "  round %u: recovered %llu records, at most %llu appended\n", round, (unsigned long long)n,
                    (unsigned long long)intent);
            bad = 1;
        }
        plg_check_result cr;
        if (!bad && (plg_check(dir, &cr) != 0 || cr.last_seq != n)) {
            fprintf(stderr, "  round %u: plg_check: %d, last %llu, but the reader just saw %llu: %s\n", round, cr.status, (unsigned long long)cr.last_seq, (unsigned long long)n, cr.detail);
            bad = 1;
        }
        if (!bad && cr.torn_tail) torn++;
        if (bad) {
            /* keep the files as found, and again a moment later: a write of the dead
             * process that lands after waitpid would show up as a difference */
            char cmd[2000];
            snprintf(cmd, sizeof cmd, "rm -rf '%s.at_check' '%s.later'; cp -r '%s' '%s.at_check'; sleep 0.5; cp -r '%s' '%s.later'; "
                     "cmp -s '%s.at_check' '%s.later' 2>/dev/null; diff -rq '%s.at_check' '%s.later' >&2 && echo '  (no change after 0.5 s)' >&2",
                     dir, dir, dir, dir, dir, dir, dir, dir, dir, dir);
            if (system(cmd) != 0) {}
            fprintf(stderr, "  round %u FAILED (seed %llu, mode %d): reproduce with test_crash_picolog --seed %llu; files in %s\n",
                    round, (unsigned long long)opt_seed, cfg_for(dir, gen).sync_mode, (unsigned long long)opt_seed, dir);
            bad_rounds++;
            break;
        }
        if (intent > n && intent - n > max_lost_unacked) max_lost_unacked = intent - n;
        total_acked += acked > last ? acked - last : 0;
        total_recovered += n > last ? n - last : 0;
        last = n;
    }
    munmap(sh, 4096);
    CHECK_EQ(bad_rounds, 0);
    printf("  crash: %llu SIGKILL rounds (%llu during plg_open), %llu failed; %llu records acknowledged and %llu "
           "recovered across rounds; %llu rounds ended in a torn tail; %.1f s\n",
           (unsigned long long)rounds, (unsigned long long)killed_in_open, (unsigned long long)bad_rounds,
           (unsigned long long)total_acked, (unsigned long long)total_recovered, (unsigned long long)torn,
           (double)(plg_now_ns() - t_start) / 1e9);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) opt_rounds = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) opt_seed = strtoull(argv[++i], NULL, 0);
    }
    if (!opt_rounds && getenv("PLG_CRASH_SEED")) opt_seed = strtoull(getenv("PLG_CRASH_SEED"), NULL, 0);
    RUN(test_sigkill_rounds);
    return t_done();
}
