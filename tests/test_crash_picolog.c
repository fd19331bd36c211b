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
 * Release rounds: 64 KiB segments, records up to 1.5 segments long, and the
 * child calls plg_release (mostly at a record longer than a segment, once it
 * is durable: the record at the release point then has its head in an older
 * segment than its tail), publishing the point first. Segments are retired
 * and recycled many times per round. After each kill the check is exact:
 * the log starts at or before the highest release point (at seq 1 when
 * nothing was released), seqs are dense from there, every acknowledged record
 * from the release point on is intact, and the next plg_open continues right
 * after the recovered end. Retiring the segment that holds the head of the
 * record at the release point loses that one record, and fails here.
 *
 * Archive rounds: the release rounds with plg_config.archive_dir (on the
 * log's filesystem for one log, on /dev/shm, another one, for the next when
 * there is one: renames, then copies): the log read through its archive
 * (plg_reader_open_archive) starts at seq 1 whatever was released, with
 * every record intact, however the kill fell in a move.
 *
 * usage: test_crash_picolog [--rounds N] [--release-rounds N] [--seed N]
 *   env PLG_CRASH_ROUNDS, PLG_CRASH_RELEASE_ROUNDS (default: a fifth of the
 *   plain rounds), PLG_CRASH_SEED */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "t.h"
#include <signal.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

typedef struct shared {
    uint64_t intent;     /* the child is about to append this seq */
    uint64_t acked;      /* plg_durable() as last seen by the child */
    uint64_t opened;     /* 1 once plg_open returned */
    uint64_t appended0;  /* plg_appended() right after plg_open */
    uint64_t released;   /* release rounds: the highest seq passed to plg_release, published
                          * before the call (the parent sets what earlier rounds released) */
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
/* Release rounds (64 KiB segments): 3% of records are longer than a segment,
 * so each one spans a segment boundary, and the child releases at them. */
#define REL_SEGMENT (64u * 1024u)
static uint32_t rel_len(uint64_t seq, uint32_t gen) {
    uint64_t h = (seq * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)gen * 0xC2B2AE3D27D4EB4Full);
    h ^= h >> 29;
    if (h % 100 < 3) return REL_SEGMENT + 4096 + (uint32_t)(h % 29000);
    if (h % 100 < 25) return 1 + (uint32_t)(h % 6000);
    return 1 + (uint32_t)(h % 200);
}
static uint32_t len_of(int release, uint64_t seq, uint32_t gen) { return release ? rel_len(seq, gen) : rec_len(seq, gen); }
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
static char arch_dir[700];                        /* archive rounds: the log's archive ("": none) */
static plg_config cfg_rel(const char *dir, uint32_t round) {
    plg_config c = cfg_for(dir, round);
    c.segment_size = REL_SEGMENT;
    if (arch_dir[0]) c.archive_dir = arch_dir;
    return c;
}

/* The child appends until it is killed. In release rounds it also calls
 * plg_release: mostly at a record longer than a segment (its head lies in an
 * older segment than its tail: the boundary record, whose head segment must
 * stay) once that record is durable, else at a random durable seq. The point
 * is published before the call, and never passes the durable seq, so the
 * newest acknowledged record always stays. */
static void child_main(const char *dir, uint32_t gen, shared *sh, int release, uint64_t seed) {
    static uint8_t buf[100000];
    plg_config c = release ? cfg_rel(dir, gen) : cfg_for(dir, gen);
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) { c.io_mode = PLG_IO_BUFFERED_FDATASYNC; rc = plg_open(&L, &c); }
    __atomic_store_n(&sh->open_rc, rc, __ATOMIC_RELEASE);
    if (rc) _exit(3);
    __atomic_store_n(&sh->appended0, plg_appended(L), __ATOMIC_RELEASE);
    __atomic_store_n(&sh->opened, 1, __ATOMIC_RELEASE);
    uint64_t rng = seed * 0xD1342543DE82EF95ull + gen;
    uint64_t rel = __atomic_load_n(&sh->released, __ATOMIC_ACQUIRE), big = 0;
    uint64_t t0 = plg_now_ns();
    for (;;) {
        uint64_t seq = plg_appended(L) + 1;
        uint32_t len = len_of(release, seq, gen);
        fill(buf, len, seq, gen);
        __atomic_store_n(&sh->intent, seq, __ATOMIC_RELEASE);
        int64_t s;
        while ((s = plg_append(L, buf, len)) == PLG_EFULL) {
            __atomic_store_n(&sh->acked, plg_durable(L), __ATOMIC_RELEASE);
            sched_yield();
        }
        if (s != (int64_t)seq) _exit(4);
        if (release && len > REL_SEGMENT && t_rand(&rng) % 2 == 0)
            (void)plg_wait(L, seq, 1000000000);    /* now and then: released while the writer is right behind it */
        uint64_t acked = plg_durable(L);
        __atomic_store_n(&sh->acked, acked, __ATOMIC_RELEASE);
        if (release) {
            if (!big && len > REL_SEGMENT && seq > rel) big = seq;   /* the oldest one not yet released */
            if (big && acked >= big) {
                uint64_t to = big;
                if (t_rand(&rng) % 4 == 0) to = rel + 1 + t_rand(&rng) % (acked - rel);   /* anywhere durable */
                big = 0;
                rel = to;
                __atomic_store_n(&sh->released, rel, __ATOMIC_RELEASE);
                if (plg_release(L, rel) != 0) _exit(6);
            }
        }
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

/* TSan and valgrind run the child many times slower: it gets longer. */
static int slow_build(void) {
#if defined(__SANITIZE_THREAD__)
    return 1;
#else
    const char *q = getenv("PLG_TEST_QUICK");
    return q && *q && *q != '0';
#endif
}

static uint64_t opt_rounds, opt_release_rounds, opt_seed = 1;
static int opt_have_release_rounds;

/* One series of SIGKILL rounds. release: 64 KiB segments and plg_release in
 * the child (segments retired and recycled many times per round); the check
 * is then exact about the start of the log too. archive: and the released
 * segments go to an archive, read back with the log from seq 1. */
static void sigkill_rounds(int release, int archive, uint64_t rounds) {
    const char *name = archive ? "crash_picolog_archive" : release ? "crash_picolog_release" : "crash_picolog";
    uint64_t nlogs = 0;
    uint64_t rng = opt_seed ^ (release ? 0x5EEDull << 32 : 0) ^ (archive ? 0xA4Cull << 48 : 0);
    shared *sh = (shared *)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    const uint32_t per_log = 25;                  /* a fresh log every 25 rounds */
    static uint32_t gen_of_start[64]; static uint64_t start_seq[64];
    int nstarts = 0;
    const char *dir = NULL;
    uint64_t total_acked = 0, total_recovered = 0, killed_in_open = 0, bad_rounds = 0, torn = 0, max_lost_unacked = 0;
    uint64_t max_released = 0, max_first = 0, segs_retired = 0;
    static uint8_t exp[100000];
    uint64_t t_start = plg_now_ns();
    uint64_t last = 0;                            /* the last seq in the log after the previous round */
    uint64_t released = 0;                        /* the highest release point any round of this log published */
    for (uint32_t round = 0; round < rounds; round++) {
        if (round % per_log == 0) {
            dir = t_dir(name); nstarts = 0; last = 0; released = 0;
            arch_dir[0] = 0;
            if (archive) {                        /* every other log: on another filesystem, if there is one */
                struct stat sd, ss;
                int other = nlogs++ % 2 == 1 && stat(dir, &sd) == 0 && stat("/dev/shm", &ss) == 0 && sd.st_dev != ss.st_dev;
                if (other) snprintf(arch_dir, sizeof arch_dir, "/dev/shm/plg_crash_archive_%d", (int)getpid());
                else snprintf(arch_dir, sizeof arch_dir, "%s.archive", dir);
                char cmd[800];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", arch_dir);
                if (system(cmd) != 0) {}
            }
        }
        memset(sh, 0, sizeof *sh);
        sh->released = released;
        uint32_t gen = round + 1;
        gen_of_start[nstarts] = gen; start_seq[nstarts] = last + 1; nstarts++;
        fflush(stdout); fflush(stderr);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) child_main(dir, gen, sh, release, opt_seed);
        /* kill after 0..40 ms; one round in eight right away (during recovery).
         * Release rounds: the rest wait for plg_open (at most 5 s), then run
         * 5..60 ms (4x under TSan and valgrind), long enough for several
         * releases on a loaded machine. */
        uint64_t r = t_rand(&rng);
        useconds_t us = (r % 8 == 0) ? (useconds_t)(r >> 8) % 3000 : 2000 + (useconds_t)((r >> 8) % 38000);
        if (release && r % 8 != 0) {
            for (int w = 0; w < 5000 && !__atomic_load_n(&sh->opened, __ATOMIC_ACQUIRE) && !sh->open_rc; w++) usleep(1000);
            us = 5000 + (useconds_t)((r >> 8) % 55000);
            if (slow_build()) us *= 4;
        }
        usleep(us);
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
            fprintf(stderr, "  round %u: the child exited on its own (status %d, open rc %d); seed %llu: reproduce with "
                    "test_crash_picolog --seed %llu\n", round, st, sh->open_rc, (unsigned long long)opt_seed, (unsigned long long)opt_seed);
            bad_rounds++;
            continue;
        }
        uint64_t acked = __atomic_load_n(&sh->acked, __ATOMIC_ACQUIRE);
        uint64_t intent = __atomic_load_n(&sh->intent, __ATOMIC_ACQUIRE);
        int opened = __atomic_load_n(&sh->opened, __ATOMIC_ACQUIRE) != 0;
        uint64_t appended0 = __atomic_load_n(&sh->appended0, __ATOMIC_ACQUIRE);
        uint64_t rel_now = __atomic_load_n(&sh->released, __ATOMIC_ACQUIRE);
        if (rel_now > released) released = rel_now;
        if (!opened) killed_in_open++;
        /* check */
        int bad = 0;
        if (opened && appended0 != last) {
            /* the next append continues right after the end the previous check found */
            fprintf(stderr, "  round %u: plg_open continued at seq %llu, the log ended at %llu\n", round,
                    (unsigned long long)appended0 + 1, (unsigned long long)last);
            bad = 1;
        }
        /* The child's io_uring writes can still land after waitpid (the kernel
         * finishes them without the process): read what plg_open will recover. */
        int src = plg_settle(dir, 10000000000ll);
        if (!bad && src != 0 && src != PLG_ENOENT) {
            fprintf(stderr, "  round %u: plg_settle: %s\n", round, plg_strerror(src));
            bad = 1;
        }
        plg_reader *rd = NULL;
        int rc = archive ? plg_reader_open_archive(&rd, dir, arch_dir, NULL, 0) : plg_reader_open(&rd, dir);
        if (rc) rd = NULL;
        if (!bad && rc == PLG_ENOENT && last == 0) { nstarts--; continue; }   /* killed before the first segment existed */
        if (!bad && rc) { fprintf(stderr, "  round %u: plg_reader_open: %s\n", round, plg_strerror(rc)); bad = 1; }
        plg_record rec; uint64_t n = 0, first = 0, count = 0;
        while (!bad && (rc = plg_reader_next(rd, &rec)) == 1) {
            if (!count) first = rec.seq;
            count++;
            n = first + count - 1;                  /* seqs dense from the first record held */
            if (rec.seq != n) { fprintf(stderr, "  round %u: seq %llu where %llu expected\n", round, (unsigned long long)rec.seq, (unsigned long long)n); bad = 1; break; }
            int k = nstarts - 1;
            while (k > 0 && start_seq[k] > n) k--;
            uint32_t g = gen_of_start[k], len = len_of(release, n, g);
            fill(exp, len, n, g);
            if (rec.len != len || memcmp(exp, rec.data, len) != 0) {
                fprintf(stderr, "  round %u: seq %llu has other content than appended (gen %u)\n", round, (unsigned long long)n, g);
                bad = 1; break;
            }
        }
        uint64_t off = 0;
        const char *where = rd ? plg_reader_where(rd, &off) : "";
        if (!bad && rc != 0) {
            fprintf(stderr, "  round %u: recovery failed after %llu records: %s at %s offset %llu\n", round,
                    (unsigned long long)n, plg_strerror(rc), where, (unsigned long long)off);
            bad = 1;
        }
        if (rd) plg_reader_close(rd);
        uint64_t floor = acked > last ? acked : last;   /* what was durable before this round survives too */
        /* Only records below the release point may go, and the release point
         * never passes an acknowledged seq: the log starts at or before it
         * (at 1 when nothing was released). One record lost at a release
         * boundary shows here. */
        uint64_t may_start = released > 1 && !archive ? released : 1;   /* archived: nothing goes */
        if (!bad && count && first > may_start) {
            fprintf(stderr, "  round %u: LOST RECORDS AT THE RELEASE POINT: the log starts at seq %llu, only seqs below %llu "
                    "were released and %llu are acknowledged\n", round, (unsigned long long)first,
                    (unsigned long long)may_start, (unsigned long long)floor);
            bad = 1;
        }
        if (!bad && n < floor) {
            fprintf(stderr, "  round %u: LOST ACKNOWLEDGED RECORDS: recovered up to %llu, acknowledged %llu\n", round,
                    (unsigned long long)n, (unsigned long long)floor);
            bad = 1;
        }
        if (!bad && n > intent && n > last) {
            fprintf(stderr, "  round %u: recovered up to %llu, at most %llu appended\n", round, (unsigned long long)n,
                    (unsigned long long)intent);
            bad = 1;
        }
        plg_check_result cr;
        memset(&cr, 0, sizeof cr);
        /* plg_check reads the log directory alone: with an archive, its first records are elsewhere */
        if (!bad && (plg_check(dir, &cr) != 0 || cr.last_seq != n ||
                     (!archive && (cr.records != count || (count && cr.first_seq != first))))) {
            fprintf(stderr, "  round %u: plg_check: %d, seqs %llu..%llu (%llu records), but the reader just saw %llu..%llu: %s\n",
                    round, cr.status, (unsigned long long)cr.first_seq, (unsigned long long)cr.last_seq,
                    (unsigned long long)cr.records, (unsigned long long)first, (unsigned long long)n, cr.detail);
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
            fprintf(stderr, "  %sround %u FAILED (seed %llu, mode %d, released below %llu, acknowledged %llu): reproduce with "
                    "test_crash_picolog --seed %llu; files in %s\n", archive ? "archive " : release ? "release " : "",
                    round, (unsigned long long)opt_seed, cfg_for(dir, gen).sync_mode, (unsigned long long)released,
                    (unsigned long long)floor, (unsigned long long)opt_seed, dir);
            bad_rounds++;
            break;
        }
        if (intent > n && intent - n > max_lost_unacked) max_lost_unacked = intent - n;
        if (released > max_released) max_released = released;
        if (first > max_first) max_first = first;
        if (cr.first_segment > 1) segs_retired += cr.first_segment - 1;
        total_acked += acked > last ? acked - last : 0;
        total_recovered += n > last ? n - last : 0;
        last = n;
    }
    munmap(sh, 4096);
    if (archive && arch_dir[0]) {
        if (!bad_rounds) { char cmd[800]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", arch_dir); if (system(cmd) != 0) {} }
        arch_dir[0] = 0;
    }
    CHECK_EQ(bad_rounds, 0);
    printf("  crash%s: %llu SIGKILL rounds (%llu during plg_open), %llu failed; %llu records acknowledged and %llu "
           "recovered across rounds; %llu rounds ended in a torn tail; %.1f s\n",
           archive ? " with plg_release into an archive" : release ? " with plg_release" : "",
           (unsigned long long)rounds, (unsigned long long)killed_in_open, (unsigned long long)bad_rounds,
           (unsigned long long)total_acked, (unsigned long long)total_recovered, (unsigned long long)torn,
           (double)(plg_now_ns() - t_start) / 1e9);
    if (release)
        printf("  release: highest release point %llu, latest first seq held %llu; summed over rounds, the oldest segment "
               "index above 1 by %llu\n", (unsigned long long)max_released, (unsigned long long)max_first,
               (unsigned long long)segs_retired);
}

static void test_sigkill_rounds(void) {
    sigkill_rounds(0, 0, opt_rounds ? opt_rounds : env_u64("PLG_CRASH_ROUNDS", default_rounds()));
}

/* A fifth as many release rounds as plain ones (valgrind runs 20 plain: 4). */
static void test_sigkill_release_rounds(void) {
    uint64_t plain = opt_rounds ? opt_rounds : env_u64("PLG_CRASH_ROUNDS", default_rounds());
    uint64_t n = opt_have_release_rounds ? opt_release_rounds : env_u64("PLG_CRASH_RELEASE_ROUNDS", (plain + 4) / 5);
    sigkill_rounds(1, 0, n);
}

/* As many archive rounds as release rounds. */
static void test_sigkill_archive_rounds(void) {
    uint64_t plain = opt_rounds ? opt_rounds : env_u64("PLG_CRASH_ROUNDS", default_rounds());
    uint64_t n = opt_have_release_rounds ? opt_release_rounds : env_u64("PLG_CRASH_RELEASE_ROUNDS", (plain + 4) / 5);
    sigkill_rounds(1, 1, n);
}

/* ---- a dead writer's writes that land late -------------------------------
 * A writer killed with io_uring writes in flight is reaped before they land:
 * the kernel finishes them without the process. A plg_open in that window
 * found the end before them, and the late writes then replaced records the
 * new writer had acknowledged at the same place. plg_open now waits until
 * no open file holds a segment (each write holds the writer's file, and its
 * lock, until it lands). */

#define LATE_LEN 100u
static int read_all_fd(int fd, uint8_t *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Every record of the log in dir: seqs dense from 1, seq <= upto of gen
 * old_gen, the rest of new_gen; returns the last seq, or 0 after a
 * report. *replaced: records of the new writer that hold other content. */
static uint64_t late_check(const char *dir, uint64_t upto, uint32_t old_gen, uint32_t new_gen, uint64_t *replaced) {
    static uint8_t exp[LATE_LEN];
    plg_reader *rd = NULL;
    *replaced = 0;
    if (plg_reader_open(&rd, dir) != 0) { fprintf(stderr, "  late_check: cannot open the log\n"); return 0; }
    plg_record rec; uint64_t n = 0; int rc;
    while ((rc = plg_reader_next(rd, &rec)) == 1) {
        if (rec.seq != n + 1) { fprintf(stderr, "  seq %llu after %llu\n", (unsigned long long)rec.seq, (unsigned long long)n); n = 0; break; }
        n = rec.seq;
        uint32_t g = n <= upto ? old_gen : new_gen;
        fill(exp, LATE_LEN, n, g);
        if (rec.len != LATE_LEN || memcmp(exp, rec.data, LATE_LEN) != 0) {
            if (n > upto) (*replaced)++;
            else { fprintf(stderr, "  seq %llu: not the content appended\n", (unsigned long long)n); n = 0; break; }
        }
    }
    plg_reader_close(rd);
    return rc == 0 ? n : 0;
}

typedef struct late_writer { int fd; const uint8_t *img; size_t len; uint64_t delay_us; } late_writer;
/* The late write of a dead writer: after a delay, the bytes of the later
 * image land, then the file (and its lock) goes. */
static void *late_write_main(void *arg) {
    late_writer *w = (late_writer *)arg;
    usleep((useconds_t)w->delay_us);
    size_t off = 0;
    while (off < w->len) {
        ssize_t r = pwrite(w->fd, w->img + off, w->len - off, (off_t)off);
        if (r <= 0) break;
        off += (size_t)r;
    }
    if (fdatasync(w->fd) != 0) {}
    close(w->fd);
    return NULL;
}

/* Deterministic: a log closed at seq 100 (its files kept), then written on
 * to 200; the files back as at 100, and "the writes of 101..200 in flight":
 * an open file of segment 1 holds the writer's lock and writes the later
 * bytes 300 ms on. plg_open must wait for them: the log then ends at 200 and
 * the new writer's records follow; without the wait it found 100, and its
 * acknowledged 101..200 were replaced. */
static void test_open_waits_for_a_late_write(void) {
    const char *dir = t_dir("crash_late_write");
    char cmd[2000], seg[700];
    snprintf(seg, sizeof seg, "%s/00000000000000000001.plg", dir);
    plg_config c;
    memset(&c, 0, sizeof c);
    c.path = dir; c.log_fn = quiet_log; c.segment_size = 1u << 20;
    static uint8_t rec[LATE_LEN];
    plg_log *L = NULL;
    REQUIRE(plg_open(&L, &c) == 0);
    for (uint64_t q = 1; q <= 100; q++) { fill(rec, LATE_LEN, q, 1); REQUIRE(plg_append(L, rec, LATE_LEN) == (int64_t)q); }
    REQUIRE(plg_close(L) == 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s.at100' && cp -a '%s' '%s.at100'", dir, dir, dir);
    REQUIRE(system(cmd) == 0);
    REQUIRE(plg_open(&L, &c) == 0);
    for (uint64_t q = 101; q <= 200; q++) { fill(rec, LATE_LEN, q, 1); REQUIRE(plg_append(L, rec, LATE_LEN) == (int64_t)q); }
    REQUIRE(plg_close(L) == 0);
    size_t len = c.segment_size;
    uint8_t *later = (uint8_t *)malloc(len);
    REQUIRE(later != NULL);
    int fd = open(seg, O_RDONLY);
    REQUIRE(fd >= 0);
    int rd = read_all_fd(fd, later, len);
    close(fd);
    REQUIRE(rd == 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s.at100' '%s'", dir, dir, dir);
    REQUIRE(system(cmd) == 0);

    /* the dead writer's file: open read-write with its lock, as the writer holds it */
    late_writer w;
    w.fd = open(seg, O_RDWR); w.img = later; w.len = len; w.delay_us = 300000;
    REQUIRE(w.fd >= 0);
    struct flock lk;
    memset(&lk, 0, sizeof lk);
    lk.l_type = F_RDLCK; lk.l_whence = SEEK_SET;
    REQUIRE(fcntl(w.fd, F_OFD_SETLK, &lk) == 0);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, late_write_main, &w) == 0);
    uint64_t t0 = plg_now_ns();
    int orc = plg_open(&L, &c);
    uint64_t open_ns = plg_now_ns() - t0;
    uint64_t start = orc == 0 ? plg_appended(L) : 0;
    if (orc == 0) {
        for (uint64_t q = start + 1; q <= start + 100; q++) { fill(rec, LATE_LEN, q, 2); CHECK(plg_append(L, rec, LATE_LEN) == (int64_t)q); }
        CHECK_EQ(plg_wait(L, start + 100, 5000000000ll), 0);        /* acknowledged */
    }
    pthread_join(th, NULL);
    if (orc == 0) CHECK_EQ(plg_close(L), 0);
    free(later);
    REQUIRE(orc == 0);
    CHECK(open_ns >= 250000000ull);               /* it waited for the late write */
    CHECK_EQ(start, 200);                         /* and recovered what it wrote */
    uint64_t replaced = 0, last = late_check(dir, start, 1, 2, &replaced);
    CHECK_EQ(replaced, 0);                        /* the new writer's acknowledged records are its own */
    CHECK_EQ(last, start + 100);
    printf("  plg_open waited %.0f ms, recovered to %llu; the new writer's records replaced: %llu\n", (double)open_ns / 1e6,
           (unsigned long long)start, (unsigned long long)replaced);
    snprintf(cmd, sizeof cmd, "rm -rf '%s.at100'", dir);
    if (system(cmd) != 0) {}
}

/* A cgroup that throttles writes to the disk under dir to 10 a second, for
 * a real writer killed with writes queued: 0 and its path in cg, or -1 and
 * why not (not root, no blkio or io controller, not on a block device). */
static int put_file(const char *dir, const char *name, const char *val) {
    char p[800];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY);
    if (fd < 0) return -1;
    ssize_t r = write(fd, val, strlen(val));
    close(fd);
    return r == (ssize_t)strlen(val) ? 0 : -1;
}
static int throttle_make(const char *dir, char *cg, size_t cap, const char **why) {
    struct stat st;
    if (geteuid() != 0) { *why = "not root: cannot throttle a cgroup's writes"; return -1; }
    if (stat(dir, &st) != 0 || major(st.st_dev) == 0) { *why = "the test directory is not on a block device"; return -1; }
    char p[300], devno[64];
    unsigned ma = major(st.st_dev), mi = minor(st.st_dev);
    snprintf(devno, sizeof devno, "%u:%u", ma, mi);
    snprintf(p, sizeof p, "/sys/dev/block/%u:%u/partition", ma, mi);
    if (access(p, F_OK) == 0) {                   /* a partition: throttles are set on its disk */
        snprintf(p, sizeof p, "/sys/dev/block/%u:%u/../dev", ma, mi);
        FILE *f = fopen(p, "r");
        if (!f || !fgets(devno, sizeof devno, f)) { if (f) fclose(f); *why = "cannot find the partition's disk"; return -1; }
        fclose(f);
        devno[strcspn(devno, "\n")] = 0;
    }
    char rule[128];
    if (access("/sys/fs/cgroup/blkio/blkio.throttle.write_iops_device", F_OK) == 0) {        /* cgroup v1 */
        snprintf(cg, cap, "/sys/fs/cgroup/blkio/plg_test_%d", (int)getpid());
        snprintf(rule, sizeof rule, "%s 10", devno);
        if ((mkdir(cg, 0755) != 0 && errno != EEXIST) || put_file(cg, "blkio.throttle.write_iops_device", rule) != 0) {
            rmdir(cg); *why = "cannot set a blkio throttle"; return -1;
        }
        return 0;
    }
    if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {                            /* cgroup v2 */
        if (put_file("/sys/fs/cgroup", "cgroup.subtree_control", "+io") != 0) { *why = "cannot enable the io controller"; return -1; }
        snprintf(cg, cap, "/sys/fs/cgroup/plg_test_%d", (int)getpid());
        snprintf(rule, sizeof rule, "%s wiops=10", devno);
        if ((mkdir(cg, 0755) != 0 && errno != EEXIST) || put_file(cg, "io.max", rule) != 0) {
            rmdir(cg); *why = "cannot set io.max"; return -1;
        }
        return 0;
    }
    *why = "no cgroup blkio or io controller";
    return -1;
}

/* The real thing: a writer whose writes the block layer holds (a throttled
 * cgroup) is SIGKILLed with writes queued; it is reaped before they land.
 * plg_open right after must wait for them, and the records the new writer
 * acknowledges must survive them. */
static void test_killed_writer_with_writes_queued(void) {
    const char *dir = t_dir("crash_queued_writes");
    char cg[300];
    const char *why = "";
    if (throttle_make(dir, cg, sizeof cg, &why) != 0) SKIP(why);
    volatile uint64_t *sh = (volatile uint64_t *)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    static uint8_t rec[LATE_LEN];
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        plg_config c;
        memset(&c, 0, sizeof c);
        c.path = dir; c.log_fn = quiet_log; c.segment_size = 4u << 20;
        c.sync_mode = PLG_SYNC_DSYNC; c.flags = PLG_URING_ONLY;   /* every write through io_uring */
        c.max_write_bytes = 16384; c.max_inflight = 4;
        plg_log *L;
        if (plg_open(&L, &c) != 0) _exit(3);
        for (uint64_t q = 1; q <= 200; q++) { fill(rec, LATE_LEN, q, 1); if (plg_append(L, rec, LATE_LEN) < 0) _exit(4); }
        if (plg_wait(L, 200, 5000000000ll) != 0) _exit(5);
        sh[0] = 1;                                                    /* ready: the parent moves it */
        for (int i = 0; i < 10000 && !sh[1]; i++) usleep(1000);       /* from now on its writes queue */
        if (!sh[1]) _exit(6);
        for (uint64_t q = 201;; q++) {
            fill(rec, LATE_LEN, q, 1);
            while (plg_append(L, rec, LATE_LEN) < 0) usleep(100);
            if (q % 40 == 0) usleep(2000);
        }
    }
    for (int i = 0; i < 10000 && !sh[0]; i++) usleep(1000);
    char child[32];
    snprintf(child, sizeof child, "%d", (int)pid);
    int joined = sh[0] != 0 && put_file(cg, "cgroup.procs", child) == 0;
    if (joined) { sh[1] = 1; usleep(slow_build() ? 1500000 : 300000); }   /* writes queue meanwhile */
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    if (!joined && sh[0]) {                       /* the cgroup takes no process here */
        for (int i = 0; i < 100 && rmdir(cg) != 0; i++) usleep(10000);
        munmap((void *)sh, 4096);
        SKIP("cannot move a process into the throttled cgroup");
    }
    uint64_t replaced = 0, at_reap = joined ? late_check(dir, UINT64_MAX, 1, 1, &replaced) : 0;
    plg_config c;
    memset(&c, 0, sizeof c);
    c.path = dir; c.log_fn = quiet_log;
    plg_log *L = NULL;
    uint64_t t0 = plg_now_ns();
    int orc = joined ? plg_open(&L, &c) : -1;
    uint64_t open_ns = plg_now_ns() - t0, start = orc == 0 ? plg_appended(L) : 0;
    if (orc == 0) {
        for (uint64_t q = start + 1; q <= start + 300; q++) { fill(rec, LATE_LEN, q, 2); CHECK(plg_append(L, rec, LATE_LEN) == (int64_t)q); }
        CHECK_EQ(plg_wait(L, start + 300, 5000000000ll), 0);        /* acknowledged */
        CHECK_EQ(plg_close(L), 0);
    }
    CHECK_EQ(plg_settle(dir, 20000000000ll), 0);  /* whatever was still in flight has landed */
    for (int i = 0; i < 100 && rmdir(cg) != 0; i++) usleep(10000);
    munmap((void *)sh, 4096);
    REQUIRE(joined);
    REQUIRE(orc == 0);
    uint64_t last = late_check(dir, start, 1, 2, &replaced);
    CHECK_EQ(replaced, 0);
    CHECK_EQ(last, start + 300);
    CHECK(start >= at_reap);
    printf("  reaped with the log at seq %llu; plg_open waited %.0f ms and recovered to %llu; the new writer's records "
           "replaced: %llu\n", (unsigned long long)at_reap, (double)open_ns / 1e6, (unsigned long long)start,
           (unsigned long long)replaced);
    if (start == at_reap && replaced == 0) SKIP("no write was still in flight when the writer was reaped: the race was not exercised");
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) opt_rounds = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--release-rounds") && i + 1 < argc) { opt_release_rounds = strtoull(argv[++i], NULL, 0); opt_have_release_rounds = 1; }
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) opt_seed = strtoull(argv[++i], NULL, 0);
    }
    if (!opt_rounds && getenv("PLG_CRASH_SEED")) opt_seed = strtoull(getenv("PLG_CRASH_SEED"), NULL, 0);
    RUN(test_open_waits_for_a_late_write);
    RUN(test_killed_writer_with_writes_queued);
    RUN(test_sigkill_rounds);
    RUN(test_sigkill_release_rounds);
    RUN(test_sigkill_archive_rounds);
    return t_done();
}
