/* The whole picolog API on the simulated disk (tests/sim_disk.h), driven by
 * one seed, checked against a reference model after every step.
 *
 * One seed picks a configuration and a random sequence of operations:
 *   append (1 B .. 1 MiB, mostly small), reserve/commit (and its misuse),
 *   let the writer run some steps, wait for durability, plg_release,
 *   plg_truncate, plg_reset, clean close + reopen, abandon (a process kill:
 *   every submitted write reaches the disk, nothing more), power cut (pending
 *   writes kept, dropped or torn per sector), damage (one flipped bit or one
 *   lost 512-byte sector anywhere in a segment file of a closed log), seek
 *   and scan from random positions, and a scan of the live log.
 *
 * The model knows every appended record (length and content), the highest
 * acknowledged seq (plg_durable sampled before a cut, everything after a
 * clean close), the release point and the lowest seq that may still appear.
 * Checked after every step and at every recovery:
 *   - every acknowledged record not released or truncated comes back intact,
 *     with its seq; seqs are dense; nothing never appended appears;
 *   - plg_open continues right after the recovered end (plg_appended), and
 *     the next append gets the next seq;
 *   - damage to the files is either harmless (every record still intact) or
 *     PLG_ECORRUPT naming the damaged file: never records silently dropped;
 *     plg_check agrees with the reader on status and last seq; plg_open does
 *     not erase acknowledged records;
 *   - a seek returns exactly what a scan from the start returns from there,
 *     and never a record that the scan does not reach.
 *
 * Determinism: the writer thread runs in lockstep with the test. It stops
 * at a gate inside every reap of the simulated disk and every idle sleep,
 * and the test lets it through a seeded number of steps at a time; the API
 * is called only while the writer waits at the gate. The segment
 * preallocator/retirer thread is not gated (its file operations are direct
 * and durable in the model; a release retires segments a little earlier or
 * later, which the model allows).
 *
 * Operations and checks are switched with PLG_SIMAPI_OPS (a comma list:
 * names below, "all", "default", "-name" to leave one out; the default is
 * all but stalemark). Leaving one out, or reverting its fix, shows what it
 * guards:
 *   release (defect 1: seqs restart after plg_release), damage (defect 2:
 *   corruption inside acknowledged data erased as a torn tail), seekdamage
 *   (defect 3: a seek jumps past the first invalid record), ebusy (reserve misuse
 *   returns PLG_EBUSY), truncate, reset, live (scan of the live log), cut,
 *   kill, tail (a live tailing reader beside the writer, plg_reader_wait),
 *   stalemark (keep a crashed writer's live.shm: readers trust its
 *   mark while its pid runs, see crash()).
 *
 * usage: test_sim_picolog_api [--seed N] [--seeds N] [--base N] [-v]
 *   env PLG_SIMAPI_SEEDS, PLG_SIMAPI_BASE (make soak sets them),
 *   PLG_SIMAPI_OPS, PLG_SIM_DIR (scratch directory; default /dev/shm),
 *   PLG_SIMAPI_KEEP (copy a failed seed's files there). */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#define SIM_DISK_INTERPOSE_SYNC
#include "sim_disk.h"
#include "t.h"
#include <dirent.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <ftw.h>
#include <time.h>

/* Operations the header on this branch has (switched on when they land). */
#ifndef SIMAPI_HAVE_TRUNCATE
#define SIMAPI_HAVE_TRUNCATE 1
#endif
#ifndef SIMAPI_HAVE_RESET
#define SIMAPI_HAVE_RESET 1
#endif
#ifndef SIMAPI_HAVE_VOLATILE      /* PLG_ALLOW_VOLATILE (tmpfs refusal) */
#define SIMAPI_HAVE_VOLATILE 1
#endif

enum {
    F_RELEASE = 1 << 0, F_DAMAGE = 1 << 1, F_SEEKDMG = 1 << 2, F_EBUSY = 1 << 4,
    F_TRUNCATE = 1 << 5, F_RESET = 1 << 6, F_LIVE = 1 << 7, F_CUT = 1 << 8, F_KILL = 1 << 9, F_STALEMARK = 1 << 10, F_TAIL = 1 << 3
};
static const struct { const char *name; int bit; } feat_names[] = {
    {"release", F_RELEASE}, {"damage", F_DAMAGE}, {"seekdamage", F_SEEKDMG},
    {"ebusy", F_EBUSY}, {"truncate", F_TRUNCATE}, {"reset", F_RESET}, {"live", F_LIVE}, {"cut", F_CUT},
    {"kill", F_KILL}, {"stalemark", F_STALEMARK}, {"tail", F_TAIL},
};
#define FEAT_ALL ((1 << 10) - 1)   /* stalemark only by name */
/* Every fix has landed: everything but stalemark runs by default. */
#define FEAT_DEFAULT FEAT_ALL
static int feats = FEAT_DEFAULT;
static int verbose;

static const char *feat_string(int f) {
    static char buf[256]; buf[0] = 0;
    for (size_t i = 0; i < sizeof feat_names / sizeof feat_names[0]; i++)
        if (f & feat_names[i].bit) { if (buf[0]) strcat(buf, ","); strcat(buf, feat_names[i].name); }
    return buf[0] ? buf : "none";
}

static int parse_feats(const char *s) {
    int f = 0;
    char tmp[512]; snprintf(tmp, sizeof tmp, "%s", s);
    for (char *tok = strtok(tmp, ","); tok; tok = strtok(NULL, ",")) {
        int neg = tok[0] == '-';
        const char *nm = neg ? tok + 1 : tok;
        int bit = -1;
        if (!strcmp(nm, "all")) bit = FEAT_ALL;
        else if (!strcmp(nm, "default")) bit = FEAT_DEFAULT;
        else if (!strcmp(nm, "none")) bit = 0;
        for (size_t i = 0; bit < 0 && i < sizeof feat_names / sizeof feat_names[0]; i++)
            if (!strcmp(nm, feat_names[i].name)) bit = feat_names[i].bit;
        if (bit < 0) { fprintf(stderr, "PLG_SIMAPI_OPS: unknown name '%s'\n", nm); exit(2); }
        if (neg) f &= ~bit; else f |= bit;
    }
    if (!SIMAPI_HAVE_TRUNCATE) f &= ~F_TRUNCATE;
    if (!SIMAPI_HAVE_RESET) f &= ~F_RESET;
    return f;
}

static void quiet_log(void *user, int code, const char *msg) {
    (void)user; (void)code;
    if (verbose > 1) fprintf(stderr, "    picolog: %s\n", msg);
}

/* ---- the gate: the writer thread runs only as many steps as it is given ---- */
static struct {
    pthread_mutex_t mu; pthread_cond_t cv;
    int active, parked;
    int64_t credits;                 /* < 0: run freely */
} G = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };

static int is_writer_thread(void) {
    char nm[32] = {0};
    prctl(PR_GET_NAME, nm, 0, 0, 0);
    return strcmp(nm, "plg-writer") == 0;
}

static void gate_hook(void) {
    pthread_mutex_lock(&G.mu);
    if (__atomic_load_n(&G.active, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&G.active, __ATOMIC_ACQUIRE) && G.credits == 0) {
            G.parked = 1;
            pthread_cond_broadcast(&G.cv);
            pthread_cond_wait(&G.cv, &G.mu);
        }
        G.parked = 0;
        if (G.credits > 0) G.credits--;
    }
    pthread_mutex_unlock(&G.mu);
}

static void on_step(sim_disk *d, void *user, int remaining) { (void)d; (void)user; (void)remaining; gate_hook(); }

/* The writer sleeps only when idle; here that sleep is a gate step. */
int nanosleep(const struct timespec *req, struct timespec *rem) {
    if (__atomic_load_n(&G.active, __ATOMIC_ACQUIRE) && is_writer_thread()) { gate_hook(); return 0; }
    return (int)syscall(SYS_nanosleep, req, rem);
}

static void gate_free(void) {
    pthread_mutex_lock(&G.mu); __atomic_store_n(&G.active, 1, __ATOMIC_RELEASE); G.credits = -1; pthread_cond_broadcast(&G.cv); pthread_mutex_unlock(&G.mu);
}
static void gate_off(void) {
    pthread_mutex_lock(&G.mu); __atomic_store_n(&G.active, 0, __ATOMIC_RELEASE); G.credits = -1; pthread_cond_broadcast(&G.cv); pthread_mutex_unlock(&G.mu);
}
/* Give the writer k steps and wait until it is back at the gate; 0, or -1
 * when it did not come back (stalled, or stopped by an error). */
static int gate_run(int64_t k, plg_log *L) {
    int rc = 0;
    pthread_mutex_lock(&G.mu);
    G.credits = k; G.parked = 0;
    pthread_cond_broadcast(&G.cv);
    uint64_t t0 = plg_now_ns();
    while (!(G.parked && G.credits == 0)) {
        struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 2000000; if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
        pthread_cond_timedwait(&G.cv, &G.mu, &ts);
        if (G.parked && G.credits == 0) break;
        if (L && plg_error(L)) { rc = -1; break; }
        if (plg_now_ns() - t0 > 30ull * 1000000000ull) { rc = -1; break; }
    }
    pthread_mutex_unlock(&G.mu);
    return rc;
}
static int gate_park(plg_log *L) { return gate_run(0, L); }

/* ---- the model ---- */
typedef struct model {
    uint32_t *len; uint64_t *salt; uint64_t cap;
    uint64_t n;          /* last appended seq */
    uint64_t acked;      /* every seq in [max(lo, min_first), acked] must come back */
    uint64_t lo;         /* release point: seqs below may be gone (a prefix) */
    uint64_t min_first;  /* no seq below this may appear (after a reset) */
    uint64_t salt_ctr;
} model;

static void fill(uint8_t *p, uint32_t len, uint64_t seq, uint64_t salt) {
    uint64_t s = seq * 0x9E3779B97F4A7C15ull ^ salt * 0xD1B54A32D192ED03ull ^ 0xA5A5;
    for (uint32_t i = 0; i < len; i++) {
        if ((i & 7) == 0) s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(s >> (8 * (i & 7)));
    }
}

static void model_put(model *m, uint64_t seq, uint32_t len, uint64_t salt) {
    if (seq >= m->cap) {
        uint64_t nc = m->cap ? m->cap : 1024;
        while (nc <= seq) nc *= 2;
        m->len = (uint32_t *)realloc(m->len, nc * sizeof *m->len);
        m->salt = (uint64_t *)realloc(m->salt, nc * sizeof *m->salt);
        if (!m->len || !m->salt) abort();
        m->cap = nc;
    }
    m->len[seq] = len; m->salt[seq] = salt;
}

#define MAXREC (1u << 20)
static uint8_t recbuf[MAXREC], expbuf[MAXREC];

typedef struct S {
    uint64_t seed, rng;
    char dir[300], snap[320];
    plg_config base;
    plg_io io;
    sim_disk d; int have_disk;
    plg_log *L;
    model m;
    int step, inc;
    char why[1024];
    int seg_kb;
} S;

static uint64_t rnd(S *s) { return t_rand(&s->rng); }
static uint64_t rnd_in(S *s, uint64_t lo, uint64_t hi) { return hi <= lo ? lo : lo + rnd(s) % (hi - lo + 1); }

static void fail(S *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(S *s, const char *fmt, ...) {
    if (s->why[0]) return;
    int k = snprintf(s->why, sizeof s->why, "step %d (incarnation %d): ", s->step, s->inc);
    va_list ap; va_start(ap, fmt);
    vsnprintf(s->why + k, sizeof s->why - (size_t)k, fmt, ap);
    va_end(ap);
}

static uint32_t pick_len(S *s) {
    uint64_t k = rnd(s) % 1000;
    if (k < 600) return 1 + (uint32_t)(rnd(s) % 120);
    if (k < 850) return 121 + (uint32_t)(rnd(s) % 3900);
    if (k < 970) return 4000 + (uint32_t)(rnd(s) % 60000);
    if (k < 995) return 64000 + (uint32_t)(rnd(s) % 200000);
    return 1 + (uint32_t)(rnd(s) % MAXREC);
}

/* ---- files ---- */
static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb; (void)flag; (void)f;
    return remove(p);
}
static void rm_rf(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static int copy_tree(const char *from, const char *to) {
    DIR *dh = opendir(from);
    if (!dh) return -1;
    mkdir(to, 0755);
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(dh)) && !rc) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char a[1200], b[1200];
        snprintf(a, sizeof a, "%.900s/%.256s", from, e->d_name); snprintf(b, sizeof b, "%.900s/%.256s", to, e->d_name);
        struct stat sb;
        if (lstat(a, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) { rc = copy_tree(a, b); continue; }
        if (!S_ISREG(sb.st_mode)) continue;
        int in = open(a, O_RDONLY);
        if (in < 0 && errno == ENOENT) { rc = -2; break; }   /* renamed under us (the segment thread) */
        int out = open(b, O_WRONLY | O_CREAT | O_TRUNC, sb.st_mode & 0777);
        if (in < 0 || out < 0) { rc = -1; }
        static uint8_t buf[1 << 16];
        ssize_t n;
        while (!rc && (n = read(in, buf, sizeof buf)) > 0) if (write(out, buf, (size_t)n) != n) rc = -1;
        if (in >= 0) close(in);
        if (out >= 0) close(out);
    }
    closedir(dh);
    return rc;
}
static void restore_tree(S *s) { rm_rf(s->dir); if (copy_tree(s->snap, s->dir)) fail(s, "cannot restore the snapshot"); rm_rf(s->snap); }

static int is_segment_name(const char *n) {
    size_t k = strlen(n);
    if (k != 24 || strcmp(n + 20, ".plg")) return 0;
    for (int i = 0; i < 20; i++) if (n[i] < '0' || n[i] > '9') return 0;
    return 1;
}
static const char *base_name(const char *p) { const char *q = strrchr(p, '/'); return q ? q + 1 : p; }

typedef struct totals { uint64_t seeds, failed, ops[16], op_ns[16], records, incarnations, pending_at_crash; sim_stats sim; } totals;
static totals T;

/* The live tailing reader (one per incarnation, opened on first use). */
static plg_reader *tail_rd;
static uint64_t tail_last;
static void tail_close(void) { if (tail_rd) plg_reader_close(tail_rd); tail_rd = NULL; tail_last = 0; }

/* ---- open / close ---- */
static void open_log(S *s, uint64_t expect_next) {
    sim_cfg sc; memset(&sc, 0, sizeof sc);
    sc.seed = rnd(s);
    sc.max_delay = (uint32_t)(rnd(s) % 4);
    sc.p_hold = (uint32_t)(rnd(s) % 3) * 100000;
    sc.p_writeback = (uint32_t)(rnd(s) % 3) * 50000;
    sim_init(&s->d, &sc);
    s->have_disk = 1;
    s->d.on_step = on_step; s->d.user = s;
    sim_plg_io(&s->d, &s->io);
    plg_config c = s->base;
    c.io = &s->io;
    c.sync_mode = rnd(s) % 2 ? PLG_SYNC_DSYNC : PLG_SYNC_FDATASYNC;
    c.max_inflight = 1 + (uint32_t)(rnd(s) % 4);
    s->inc++;
    gate_free();
    int rc = plg_open(&s->L, &c);
    if (rc == PLG_ENODIRECT) { c.io_mode = PLG_IO_BUFFERED_FDATASYNC; s->base.io_mode = c.io_mode; rc = plg_open(&s->L, &c); }
    if (rc) {
        gate_off(); s->L = NULL; sim_destroy(&s->d); s->have_disk = 0;
        fail(s, "plg_open: %s", plg_strerror(rc));
        return;
    }
    if (gate_park(s->L)) fail(s, "the writer did not reach the gate after plg_open");
    uint64_t ap = plg_appended(s->L);
    if (expect_next != UINT64_MAX && ap + 1 != expect_next)
        fail(s, "reopened with plg_appended %llu, the recovered log ends at %llu (next append would get a wrong seq)",
             (unsigned long long)ap, (unsigned long long)(expect_next - 1));
    s->m.n = ap;
    if (s->m.acked > ap) s->m.acked = ap;
    if (plg_durable(s->L) != ap) fail(s, "after plg_open plg_durable %llu != plg_appended %llu",
                                      (unsigned long long)plg_durable(s->L), (unsigned long long)ap);
}

static void end_disk(S *s) {
    gate_off();
    if (s->have_disk) { sim_stats_add(&T.sim, &s->d.st); sim_destroy(&s->d); }
    s->have_disk = 0;
}

static int close_clean(S *s) {
    tail_close();
    if (!s->L) return 0;
    gate_free();
    int rc = plg_close(s->L);
    s->L = NULL;
    end_disk(s);
    if (rc) { fail(s, "clean plg_close: %s", plg_strerror(rc)); return -1; }
    s->m.acked = s->m.n;
    return 0;
}

/* Every write submitted reaches the disk (a process kill: the kernel has
 * them); what the writer had not submitted is lost. */
static void sim_kill(sim_disk *d) {
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < d->nops; i++) {
        sim_op *o = &d->ops[i];
        if (o->is_sync || o->file < 0 || o->state == -1 || o->failed) continue;
        for (uint32_t k = 0; k < sim__nsect(o); k++) if (!o->dead[k]) sim__put_sector(d, o, k);
    }
    pthread_mutex_unlock(&d->mu);
    sim_cut(d, 1);   /* now drops nothing that was not already written */
}

/* Cut the power (how = 0: random per write, 1: drop every pending write) or
 * kill the process (how = 2), with the writer at the gate; then shut the
 * log down in-process on the dead disk, and put back the files as they were
 * at the cut. */
static void crash(S *s, int how) {
    tail_close();
    if (!s->L) return;
    uint64_t acked = plg_durable(s->L);
    if (acked < s->m.acked) fail(s, "plg_durable %llu went below the acknowledged %llu",
                                 (unsigned long long)acked, (unsigned long long)s->m.acked);
    s->m.acked = acked;
    T.pending_at_crash += (uint64_t)sim_outstanding(&s->d);
    if (how == 2) sim_kill(&s->d); else sim_cut(&s->d, how);
    int cp = -2;
    for (int k = 0; k < 20 && cp == -2; k++) {    /* -2: a file moved while copying: copy again */
        rm_rf(s->snap);
        cp = copy_tree(s->dir, s->snap);
    }
    if (cp) fail(s, "cannot copy the files after the cut");
    if (!(feats & F_STALEMARK)) {
        /* live.shm names the running writer by pid; the crashed writer here
         * is this process, which still runs, so readers would trust its
         * stale durable mark. Drop the file, as if that pid were gone. With
         * PLG_SIMAPI_OPS=stalemark it stays (a reused pid after a reboot). */
        char p[400]; snprintf(p, sizeof p, "%.320s/live.shm", s->snap);
        unlink(p);
    }
    gate_free();
    plg_close(s->L);     /* poisoned by the dead disk */
    s->L = NULL;
    end_disk(s);
    restore_tree(s);
}

/* ---- reading back ---- */
typedef struct scan_out { uint64_t first, last, count; int rc; char file[600]; uint64_t off; } scan_out;

/* Check one record against the model. */
static int check_rec(S *s, const plg_record *rec, const char *what) {
    model *m = &s->m;
    if (rec->seq < m->min_first || rec->seq > m->n) {
        fail(s, "%s: seq %llu was never appended (or was dropped: log holds %llu..%llu)", what,
             (unsigned long long)rec->seq, (unsigned long long)m->min_first, (unsigned long long)m->n);
        return -1;
    }
    uint32_t len = m->len[rec->seq];
    if (rec->len != len) { fail(s, "%s: seq %llu has length %u, appended %u", what, (unsigned long long)rec->seq, rec->len, len); return -1; }
    fill(expbuf, len, rec->seq, m->salt[rec->seq]);
    if (memcmp(expbuf, rec->data, len) != 0) {
        fail(s, "%s: seq %llu comes back with other content", what, (unsigned long long)rec->seq);
        return -1;
    }
    return 0;
}

/* Scan from the start; every record is checked against the model. */
static int scan_all(S *s, scan_out *o, const char *what) {
    memset(o, 0, sizeof *o);
    plg_reader *r;
    int rc = plg_reader_open(&r, s->dir);
    if (rc) {                      /* no reader to ask where: plg_check says (a damaged header, the meta file) */
        o->rc = rc;
        plg_check_result cr;
        if (plg_check(s->dir, &cr) == rc) {
            snprintf(o->file, sizeof o->file, "%.*s", (int)sizeof o->file - 1, cr.file);
            o->off = cr.offset;
        }
        return 0;
    }
    plg_record rec;
    while ((rc = plg_reader_next(r, &rec)) == 1) {
        if (check_rec(s, &rec, what)) { plg_reader_close(r); return -1; }
        if (o->count && rec.seq != o->last + 1) {
            fail(s, "%s: seq %llu after %llu (not dense)", what, (unsigned long long)rec.seq, (unsigned long long)o->last);
            plg_reader_close(r); return -1;
        }
        if (!o->count) o->first = rec.seq;
        o->last = rec.seq; o->count++;
    }
    o->rc = rc;
    uint64_t off = 0;
    const char *w = plg_reader_where(r, &off);
    snprintf(o->file, sizeof o->file, "%.*s", (int)sizeof o->file - 1, w ? w : "");   /* (a path of the test's own: short) */
    o->off = off;
    plg_reader_close(r);
    return 0;
}

/* A seek to target returns exactly what the scan returns from there, and
 * nothing when the scan does not reach it. */
static void check_seek(S *s, const scan_out *sc, uint64_t target, const char *what) {
    plg_reader *r;
    if (target == 0) return;
    if (plg_reader_open(&r, s->dir)) return;       /* the scan's open failed too */
    int rc = plg_reader_seek(r, target);
    plg_record rec;
    int reach = sc->count && target >= sc->first && target <= sc->last;
    if (!reach) {
        if (rc == 0 && (rc = plg_reader_next(r, &rec)) == 1 && !(sc->count == 0 && target >= s->m.min_first))
            fail(s, "%s: seek(%llu) returned seq %llu, but a scan from the start %s", what,
                 (unsigned long long)target, (unsigned long long)rec.seq,
                 sc->count ? "ends before it" : "finds no record");
        else if (rc == 1 && sc->count == 0) check_rec(s, &rec, what);
        plg_reader_close(r);
        return;
    }
    if (rc == PLG_ENOENT && target < s->m.lo && s->L) { plg_reader_close(r); return; }   /* released meanwhile */
    if (rc != 0) {
        fail(s, "%s: seek(%llu) failed with %s, a scan from the start reaches %llu", what, (unsigned long long)target,
             plg_strerror(rc), (unsigned long long)sc->last);
        plg_reader_close(r); return;
    }
    uint64_t want = target;
    int ended = 0;
    for (int k = 0; k < 64; k++) {
        rc = plg_reader_next(r, &rec);
        if (rc != 1) break;
        if (rec.seq != want) {
            fail(s, "%s: after seek(%llu) got seq %llu where %llu expected", what, (unsigned long long)target,
                 (unsigned long long)rec.seq, (unsigned long long)want);
            break;
        }
        if (check_rec(s, &rec, what)) break;
        if (want == sc->last) { rc = plg_reader_next(r, &rec); ended = 1; break; }
        want++;
    }
    if (s->why[0]) { plg_reader_close(r); return; }
    if (!ended && rc != 1)
        fail(s, "%s: after seek(%llu) the read ends at %llu with %s, the scan from the start reaches %llu", what,
             (unsigned long long)target, (unsigned long long)want, plg_strerror(rc), (unsigned long long)sc->last);
    else if (ended && rc == 1)
        fail(s, "%s: after seek(%llu) seq %llu follows the last record %llu of the scan", what,
             (unsigned long long)target, (unsigned long long)rec.seq, (unsigned long long)sc->last);
    else if (ended && rc != sc->rc)
        fail(s, "%s: after seek(%llu) the read ends with %s, the scan from the start with %s", what,
             (unsigned long long)target, plg_strerror(rc), plg_strerror(sc->rc));
    plg_reader_close(r);
}

static void some_seeks(S *s, const scan_out *sc, int n, const char *what) {
    for (int i = 0; i < n && !s->why[0]; i++) {
        uint64_t hi = (sc->count ? sc->last : s->m.n) + 3;
        uint64_t lo = sc->count ? sc->first : 1;
        check_seek(s, sc, rnd_in(s, lo, hi), what);
    }
}

/* A closed log: the recovered end must lie in [lo_end, hi_end]; returns the
 * seq the next append must get (UINT64_MAX: not known from the files). */
static uint64_t verify_closed(S *s, uint64_t lo_end, uint64_t hi_end, const char *what) {
    model *m = &s->m;
    scan_out sc;
    if (scan_all(s, &sc, what)) return UINT64_MAX;
    if (sc.rc != 0) {
        fail(s, "%s: the scan fails after %llu records with %s at %s offset %llu", what, (unsigned long long)sc.count,
             plg_strerror(sc.rc), sc.file, (unsigned long long)sc.off);
        return UINT64_MAX;
    }
    uint64_t keep_from = m->lo > m->min_first ? m->lo : m->min_first;   /* acked seqs from here on must be there */
    if (sc.count) {
        if (sc.first > keep_from && sc.first <= lo_end)
            fail(s, "%s: the log starts at seq %llu; %llu..%llu were acknowledged and not released", what,
                 (unsigned long long)sc.first, (unsigned long long)keep_from, (unsigned long long)(sc.first - 1));
        if (sc.last < lo_end && lo_end >= keep_from)
            fail(s, "%s: LOST ACKNOWLEDGED RECORDS: the log ends at %llu, %llu were acknowledged", what,
                 (unsigned long long)sc.last, (unsigned long long)lo_end);
        if (sc.last > hi_end)
            fail(s, "%s: the log ends at %llu, only %llu appended", what, (unsigned long long)sc.last, (unsigned long long)hi_end);
    } else if (lo_end >= keep_from && lo_end >= 1 && lo_end >= m->min_first) {
        fail(s, "%s: LOST ACKNOWLEDGED RECORDS: no record comes back, %llu..%llu were acknowledged", what,
             (unsigned long long)keep_from, (unsigned long long)lo_end);
    }
    plg_check_result cr;
    int rc = plg_check(s->dir, &cr);
    if (rc != 0 || (sc.count && (cr.last_seq != sc.last || cr.records != sc.count)))
        fail(s, "%s: plg_check says %s, last seq %llu, %llu records; the reader %llu..%llu", what, plg_strerror(rc),
             (unsigned long long)cr.last_seq, (unsigned long long)cr.records, (unsigned long long)sc.first,
             (unsigned long long)sc.last);
    some_seeks(s, &sc, 3, what);
    return sc.count ? sc.last + 1 : UINT64_MAX;
}

/* ---- operations ---- */
static void wait_durable(S *s, uint64_t seq) {
    for (int i = 0; i < 2000000 && s->L && plg_durable(s->L) < seq && !plg_error(s->L); i++)
        if (gate_run(8, s->L)) break;
    if (plg_durable(s->L) < seq) fail(s, "plg_durable stays at %llu below %llu (log error %s)",
                                      (unsigned long long)plg_durable(s->L), (unsigned long long)seq,
                                      plg_strerror(plg_error(s->L)));
}

static void note_append(S *s, int64_t got, uint32_t len, uint64_t salt, const char *how) {
    if (got != (int64_t)(s->m.n + 1)) {
        fail(s, "%s returned %lld, the next seq is %llu", how, (long long)got, (unsigned long long)(s->m.n + 1));
        return;
    }
    model_put(&s->m, (uint64_t)got, len, salt);
    s->m.n = (uint64_t)got;
}

static void op_append(S *s) {
    int k = 1 + (int)(rnd(s) % 8);
    for (int i = 0; i < k && !s->why[0]; i++) {
        uint32_t len = pick_len(s);
        uint64_t salt = ++s->m.salt_ctr;
        fill(recbuf, len, s->m.n + 1, salt);
        int64_t got = plg_append(s->L, recbuf, len);
        if (got == PLG_EFULL) {                       /* let the writer drain the ring, then again */
            wait_durable(s, s->m.n);
            got = plg_append(s->L, recbuf, len);
        }
        note_append(s, got, len, salt, "plg_append");
    }
}

static void op_reserve(S *s) {
    uint32_t len = pick_len(s);
    uint64_t salt = ++s->m.salt_ctr;
    uint8_t *p = (uint8_t *)plg_reserve(s->L, len);
    if (!p && plg_reserve_error(s->L) == PLG_EFULL) { wait_durable(s, s->m.n); p = (uint8_t *)plg_reserve(s->L, len); }
    if (!p) { fail(s, "plg_reserve(%u): %s", len, plg_strerror(plg_reserve_error(s->L))); return; }
    fill(p, len, s->m.n + 1, salt);
    if ((feats & F_EBUSY) && rnd(s) % 2) {
        uint8_t *q = (uint8_t *)plg_reserve(s->L, 16);
        if (q || plg_reserve_error(s->L) != PLG_EBUSY)
            fail(s, "a second plg_reserve with one open gave %s, not PLG_EBUSY", q ? "a pointer" : plg_strerror(plg_reserve_error(s->L)));
        int64_t a = plg_append(s->L, "x", 1);
        if (a != PLG_EBUSY) fail(s, "plg_append with a reservation open returned %lld, not PLG_EBUSY", (long long)a);
    }
    note_append(s, plg_commit(s->L), len, salt, "plg_commit");
}

/* Retirement runs on picolog's segment thread; wait until it has done what
 * plg_release asked (a peek at the implementation's state, test only), so
 * that a seed replays the same files. */
static void reopen_after(S *s, uint64_t lo_end, uint64_t hi_end, const char *what);
static void settle_release(plg_log *L) {
    for (int i = 0; i < 100000; i++) {
        pthread_mutex_lock(&L->pa_mu);
        int pending = L->release_pending;
        pthread_mutex_unlock(&L->pa_mu);
        if (!pending) break;
        sched_yield();
    }
    /* the retirement itself runs off the lock: wait until it stops moving */
    uint64_t last = UINT64_MAX;
    for (int still = 0, i = 0; still < 3 && i < 1000; i++) {
        plg_stats st; plg_get_stats(L, &st);
        if (st.segments_released == last) still++; else still = 0;
        last = st.segments_released;
        struct timespec ts = { 0, 200000 };
        syscall(SYS_nanosleep, &ts, NULL);
    }
}

static void op_release(S *s) {
    int all = rnd(s) % 2;
    if (all) {             /* often: release everything, sometimes after a record that spans segments */
        if (rnd(s) % 2) {
            uint64_t seg = (uint64_t)s->seg_kb << 10;
            uint32_t len = (uint32_t)rnd_in(s, seg / 2, 2 * seg < MAXREC ? 2 * seg : MAXREC);
            uint64_t salt = ++s->m.salt_ctr;
            fill(recbuf, len, s->m.n + 1, salt);
            int64_t got = plg_append(s->L, recbuf, len);
            if (got == PLG_EFULL) { wait_durable(s, s->m.n); got = plg_append(s->L, recbuf, len); }
            note_append(s, got, len, salt, "plg_append");
        }
        wait_durable(s, s->m.n);
        s->m.acked = plg_durable(s->L);
    }
    uint64_t top = s->m.acked + 1;
    uint64_t r = all ? top : rnd_in(s, s->m.lo > 0 ? s->m.lo : 1, top);
    int rc = plg_release(s->L, r);
    if (rc) { fail(s, "plg_release(%llu): %s", (unsigned long long)r, plg_strerror(rc)); return; }
    if (r > s->m.lo) s->m.lo = r;
    settle_release(s->L);
    if (rnd(s) % 2 == 0 && !close_clean(s)) reopen_after(s, s->m.n, s->m.n, "after plg_release and a clean close");
}

#if SIMAPI_HAVE_TRUNCATE
static void op_truncate(S *s) {
    uint64_t floor = s->m.min_first > 0 ? s->m.min_first - 1 : 0;
    if (s->m.lo > 0 && s->m.lo - 1 > floor) floor = s->m.lo - 1;
    if (s->m.n < floor) return;
    uint64_t to = rnd_in(s, floor, s->m.n);
    tail_close();                                    /* its position may be past the new end */
    gate_free();
    int rc = plg_truncate(s->L, to);
    if (gate_park(s->L)) fail(s, "the writer did not come back after plg_truncate");
    if (rc) { fail(s, "plg_truncate(%llu) with %llu appended: %s", (unsigned long long)to, (unsigned long long)s->m.n, plg_strerror(rc)); return; }
    s->m.n = to;
    if (s->m.acked > to) s->m.acked = to;
    if (plg_appended(s->L) != to) fail(s, "after plg_truncate(%llu) plg_appended is %llu", (unsigned long long)to, (unsigned long long)plg_appended(s->L));
}
#endif

#if SIMAPI_HAVE_RESET
static void op_reset(S *s) {
    uint64_t next = rnd(s) % 4 == 0 ? rnd_in(s, 1, s->m.n + 1) : s->m.n + 1 + rnd(s) % 1000;
    tail_close();
    gate_free();
    int rc = plg_reset(s->L, next);
    if (gate_park(s->L)) fail(s, "the writer did not come back after plg_reset");
    if (rc) { fail(s, "plg_reset(%llu): %s", (unsigned long long)next, plg_strerror(rc)); return; }
    s->m.n = next - 1; s->m.acked = next - 1; s->m.lo = next; s->m.min_first = next;
    if (plg_appended(s->L) != next - 1) fail(s, "after plg_reset(%llu) plg_appended is %llu", (unsigned long long)next, (unsigned long long)plg_appended(s->L));
}
#endif

/* A scan of the live log (writer at the gate): a checked prefix that holds at
 * least every acknowledged record, and no error. */
static void op_live_scan(S *s) {
    uint64_t du = plg_durable(s->L);
    scan_out sc;
    if (scan_all(s, &sc, "live scan")) return;
    if (sc.rc != 0) {
        fail(s, "live scan: %s after %llu records at %s offset %llu (durable %llu)", plg_strerror(sc.rc),
             (unsigned long long)sc.count, sc.file, (unsigned long long)sc.off, (unsigned long long)du);
        return;
    }
    uint64_t keep_from = s->m.lo > s->m.min_first ? s->m.lo : s->m.min_first;
    if (du >= keep_from && (!sc.count || sc.last < du))
        fail(s, "live scan ends at %llu, plg_durable is %llu", (unsigned long long)sc.last, (unsigned long long)du);
    some_seeks(s, &sc, 1, "live seek");
}

/* A reader tailing the live log (writer at the gate): it returns the next
 * records, dense and intact, up to the writer's durable mark and never past
 * it, and plg_reader_wait says nothing is ready once it has caught up. */
static void op_tail(S *s) {
    if (!tail_rd) {
        int rc = plg_reader_open(&tail_rd, s->dir);
        if (rc) { fail(s, "tail: plg_reader_open on the live log: %s", plg_strerror(rc)); tail_rd = NULL; return; }
    }
    uint64_t du = plg_durable(s->L);
    plg_record rec;
    int rc = 0, w = 0;
    /* the documented loop: plg_reader_wait says a record is ready (1) or
     * not (0, timeout 0 = do not sleep); then plg_reader_next returns it */
    for (int k = 0; k < 400; k++) {
        w = plg_reader_wait(tail_rd, 0);
        if (w != 1) break;
        rc = plg_reader_next(tail_rd, &rec);
        if (rc != 1) {
            fail(s, "tail: plg_reader_wait said a record is ready, plg_reader_next returned %d after %llu", rc,
                 (unsigned long long)tail_last);
            return;
        }
        if (tail_last && rec.seq != tail_last + 1) {
            fail(s, "tail: seq %llu after %llu", (unsigned long long)rec.seq, (unsigned long long)tail_last); return;
        }
        if (rec.seq > du) {
            fail(s, "tail: returned seq %llu past the durable mark %llu", (unsigned long long)rec.seq, (unsigned long long)du);
            return;
        }
        if (check_rec(s, &rec, "tail")) return;
        tail_last = rec.seq;
    }
    if (w == 1) return;                              /* more next time */
    if (w == PLG_ERELEASED && tail_last + 1 < s->m.lo) { tail_close(); return; }   /* it fell behind a release */
    if (w < 0) {
        fail(s, "tail: %s after seq %llu (durable %llu)", plg_strerror(w), (unsigned long long)tail_last, (unsigned long long)du);
        return;
    }
    uint64_t keep_from = s->m.lo > s->m.min_first ? s->m.lo : s->m.min_first;
    if (du >= keep_from && tail_last < du)
        fail(s, "tail: plg_reader_wait says nothing is ready at %llu, the durable mark is %llu",
             (unsigned long long)tail_last, (unsigned long long)du);
}

static void reopen_after(S *s, uint64_t lo_end, uint64_t hi_end, const char *what) {
    uint64_t next = verify_closed(s, lo_end, hi_end, what);
    if (s->why[0]) return;
    if (next == UINT64_MAX) next = hi_end + 1 > lo_end + 1 ? UINT64_MAX : lo_end + 1;
    open_log(s, next);
    if (!s->why[0] && next == UINT64_MAX && (plg_appended(s->L) < lo_end || plg_appended(s->L) > hi_end))
        fail(s, "%s: reopened at %llu, the log must end in %llu..%llu", what, (unsigned long long)plg_appended(s->L),
             (unsigned long long)lo_end, (unsigned long long)hi_end);
    s->m.acked = s->m.n;
}

/* One flipped bit or one lost sector in a segment file of the closed log. */
static void op_damage(S *s) {
    if (close_clean(s)) return;
    plg_check_result cr;
    plg_check(s->dir, &cr);
    char names[64][32]; int nn = 0;
    DIR *dh = opendir(s->dir);
    struct dirent *e;
    while (dh && (e = readdir(dh)) && nn < 64) if (is_segment_name(e->d_name)) snprintf(names[nn++], 32, "%.30s", e->d_name);
    if (dh) closedir(dh);
    if (!nn) { reopen_after(s, s->m.n, s->m.n, "damage (no segment)"); return; }
    const char *pick = names[rnd(s) % (uint64_t)nn];
    int at_end = rnd(s) % 2 && cr.file[0];
    if (at_end) pick = base_name(cr.file);
    char path[700]; snprintf(path, sizeof path, "%s/%.40s", s->dir, pick);
    struct stat sb;
    if (stat(path, &sb) != 0 || sb.st_size == 0) { reopen_after(s, s->m.n, s->m.n, "damage"); return; }
    uint64_t lim = (uint64_t)sb.st_size;
    if (at_end && rnd(s) % 4 && cr.offset > 0 && cr.offset < lim) lim = cr.offset;
    uint64_t off = rnd(s) % lim;
    int lost = rnd(s) % 2;
    rm_rf(s->snap);
    if (copy_tree(s->dir, s->snap)) { fail(s, "cannot copy the log"); return; }
    int fd = open(path, O_RDWR);
    if (fd < 0) { fail(s, "cannot open %s", pick); return; }
    uint8_t sect[512];
    if (lost) { off &= ~(uint64_t)511; memset(sect, 0, sizeof sect); if (pwrite(fd, sect, 512, (off_t)off) != 512) fail(s, "pwrite"); }
    else {
        uint8_t b; if (pread(fd, &b, 1, (off_t)off) != 1) fail(s, "pread");
        b ^= (uint8_t)(1u << (rnd(s) % 8));
        if (pwrite(fd, &b, 1, (off_t)off) != 1) fail(s, "pwrite");
    }
    close(fd);
    char what[200];
    snprintf(what, sizeof what, "after %s at %.40s offset %llu", lost ? "a lost sector" : "a flipped bit", pick, (unsigned long long)off);
    scan_out sc;
    if (scan_all(s, &sc, what) == 0 && !s->why[0]) {
        uint64_t keep_from = s->m.lo > s->m.min_first ? s->m.lo : s->m.min_first;
        if (feats & F_DAMAGE) {
            if (sc.rc == 0) {
                if (s->m.acked >= keep_from && (!sc.count || sc.last < s->m.acked))
                    fail(s, "%s: the scan ends cleanly at %llu of %llu acknowledged records: damage read as a torn tail",
                         what, (unsigned long long)(sc.count ? sc.last : 0), (unsigned long long)s->m.acked);
            } else if (sc.rc == PLG_ECORRUPT || sc.rc == PLG_EFORMAT) {
                /* the first invalid record is reported where it starts: at or
                 * before the damage (a record may span pages and segments) */
                const char *got = base_name(sc.file);
                int cmp = is_segment_name(got) ? strcmp(got, pick) : 1;
                if (sc.rc == PLG_ECORRUPT && (cmp > 0 || (cmp == 0 && sc.off > (off | 511))))
                    fail(s, "%s: PLG_ECORRUPT names %s offset %llu, past the damage", what, got, (unsigned long long)sc.off);
            } else {
                fail(s, "%s: the scan fails with %s", what, plg_strerror(sc.rc));
            }
            plg_check_result c2;
            int rc = plg_check(s->dir, &c2);
            int st = rc ? rc : c2.status;
            if (!s->why[0] && (st != sc.rc || (sc.count && c2.last_seq != sc.last)))
                fail(s, "%s: plg_check says %s, last seq %llu; the reader %s, last seq %llu", what, plg_strerror(st),
                     (unsigned long long)c2.last_seq, plg_strerror(sc.rc), (unsigned long long)sc.last);
        }
        if (feats & F_SEEKDMG) some_seeks(s, &sc, 4, what);
        if ((feats & F_DAMAGE) && !s->why[0]) {      /* recovery: fail closed, or keep everything */
            open_log(s, UINT64_MAX);
            if (s->why[0] && strstr(s->why, "plg_open: ") &&
                (strstr(s->why, plg_strerror(PLG_ECORRUPT)) || strstr(s->why, plg_strerror(PLG_EFORMAT))))
                s->why[0] = 0;                       /* fails closed */
            else if (s->L) {
                uint64_t ap = plg_appended(s->L);
                if (s->m.acked >= keep_from && ap < s->m.acked)
                    fail(s, "%s: plg_open succeeds and continues at %llu: acknowledged %llu..%llu dropped", what,
                         (unsigned long long)(ap + 1), (unsigned long long)(ap + 1), (unsigned long long)s->m.acked);
                gate_free(); plg_close(s->L); s->L = NULL; end_disk(s);
                scan_out s2;
                if (!s->why[0] && scan_all(s, &s2, what) == 0 && s->m.acked >= keep_from && (s2.rc || !s2.count || s2.last < s->m.acked))
                    fail(s, "%s: after plg_open the log ends at %llu (%s): acknowledged records erased", what,
                         (unsigned long long)s2.last, plg_strerror(s2.rc));
            }
            s->m.n = s->m.acked;
        }
    }
    restore_tree(s);
    if (!s->why[0]) reopen_after(s, s->m.acked, s->m.acked, "after restoring the undamaged files");
}

/* Seeks from random positions of the closed log against one scan. */
static void op_seek(S *s) {
    scan_out sc;
    if (close_clean(s)) return;
    if (!scan_all(s, &sc, "scan") && !s->why[0]) {
        if (sc.rc) fail(s, "scan of a cleanly closed log: %s", plg_strerror(sc.rc));
        some_seeks(s, &sc, 6, "seek");
    }
    if (!s->why[0]) reopen_after(s, s->m.n, s->m.n, "after seeks");
}

/* ---- one seed ---- */

enum { OP_APPEND, OP_RESERVE, OP_STEP, OP_WAIT, OP_RELEASE, OP_TRUNCATE, OP_RESET, OP_REOPEN, OP_KILL, OP_CUT,
       OP_DAMAGE, OP_SEEK, OP_LIVE, OP_TAIL, OP__N };
static const char *op_names[OP__N] = { "append", "reserve", "step", "wait", "release", "truncate", "reset", "reopen",
                                      "kill", "cut", "damage", "seek", "live", "tail" };

static int pick_op(S *s) {
    static const int w[OP__N] = { 30, 8, 18, 6, 5, 3, 1, 3, 3, 4, 2, 2, 3, 4 };
    for (;;) {
        int tot = 0; for (int i = 0; i < OP__N; i++) tot += w[i];
        int x = (int)(rnd(s) % (uint64_t)tot), op = 0;
        while (x >= w[op]) x -= w[op++];
        if (op == OP_RELEASE && !(feats & F_RELEASE)) continue;
        if (op == OP_TRUNCATE && !(feats & F_TRUNCATE)) continue;
        if (op == OP_RESET && !(feats & F_RESET)) continue;
        if (op == OP_KILL && !(feats & F_KILL)) continue;
        if (op == OP_CUT && !(feats & F_CUT)) continue;
        if (op == OP_DAMAGE && !(feats & (F_DAMAGE | F_SEEKDMG))) continue;
        if (op == OP_LIVE && !(feats & F_LIVE)) continue;
        if (op == OP_TAIL && !(feats & F_TAIL)) continue;
        return op;
    }
}

static const char *scratch_base(void) {
    static char base[240];
    if (!base[0]) {
        const char *e = getenv("PLG_SIM_DIR");
        struct stat sb;
        if (e && *e) snprintf(base, sizeof base, "%s/plg_simapi_%d", e, (int)getpid());
        else if (stat("/dev/shm", &sb) == 0 && access("/dev/shm", W_OK) == 0)
            snprintf(base, sizeof base, "/dev/shm/plg_simapi_%d", (int)getpid());
        else snprintf(base, sizeof base, "%s", t_dir("simapi"));
        mkdir(base, 0755);
    }
    return base;
}

static int n_ops_per_seed = 16;

static int run_seed(uint64_t seed) {
    static S st;
    S *s = &st;
    free(s->m.len); free(s->m.salt);
    memset(s, 0, sizeof *s);
    s->seed = seed;
    s->rng = seed * 0x2545F4914F6CDD1Dull + 0x51AB;
    snprintf(s->dir, sizeof s->dir, "%.240s/%llu", scratch_base(), (unsigned long long)seed);
    snprintf(s->snap, sizeof s->snap, "%.300s.snap", s->dir);
    rm_rf(s->dir); rm_rf(s->snap);
    mkdir(s->dir, 0755);
    static const uint32_t segs_kb[] = { 64, 64, 128, 128, 256, 256, 64, 1024 };
    s->seg_kb = (int)segs_kb[rnd(s) % 8];
    plg_config c; memset(&c, 0, sizeof c);
    c.path = s->dir; c.log_fn = quiet_log;
#if SIMAPI_HAVE_VOLATILE
    c.flags = PLG_ALLOW_VOLATILE;                    /* scratch on /dev/shm: the simulated disk decides durability */
#endif
    c.segment_size = (uint64_t)s->seg_kb << 10;
    c.ring_capacity = rnd(s) % 8 ? (2u << 20) : (4u << 20);
    c.max_write_bytes = 4096u * (1 + (uint32_t)(rnd(s) % 16));
    c.flush_interval_ns = 3600ull * 1000000000ull;   /* time never decides */
    c.poll_interval_ns = 1000;
    s->base = c;
    s->m.min_first = 1;
    open_log(s, 1);
    int nops = n_ops_per_seed / 2 + (int)(rnd(s) % (uint64_t)n_ops_per_seed);
    for (s->step = 0; s->step < nops && !s->why[0]; s->step++) {
        if (!s->L) { reopen_after(s, s->m.acked, s->m.n, "reopen"); if (s->why[0]) break; }
        int op = pick_op(s);
        T.ops[op]++;
        if (verbose) fprintf(stderr, "  seed %llu step %d: %s (appended %llu, acked %llu, lo %llu, durable %llu)\n",
                             (unsigned long long)seed, s->step, op_names[op], (unsigned long long)s->m.n,
                             (unsigned long long)s->m.acked, (unsigned long long)s->m.lo,
                             (unsigned long long)plg_durable(s->L));
        uint64_t t_op = plg_now_ns();
        switch (op) {
        case OP_APPEND: op_append(s); break;
        case OP_RESERVE: op_reserve(s); break;
        case OP_STEP: if (gate_run(1 + (int64_t)(rnd(s) % 40), s->L)) fail(s, "the writer stalled"); break;
        case OP_WAIT: wait_durable(s, s->m.n); s->m.acked = plg_durable(s->L); break;
        case OP_RELEASE: op_release(s); break;
#if SIMAPI_HAVE_TRUNCATE
        case OP_TRUNCATE: op_truncate(s); break;
#endif
#if SIMAPI_HAVE_RESET
        case OP_RESET: op_reset(s); break;
#endif
        case OP_REOPEN: if (!close_clean(s)) reopen_after(s, s->m.n, s->m.n, "after a clean close"); break;
        case OP_KILL: { uint64_t n = s->m.n; crash(s, 2); reopen_after(s, s->m.acked, n, "after a kill"); break; }
        case OP_CUT: { uint64_t n = s->m.n; crash(s, rnd(s) % 4 == 0); reopen_after(s, s->m.acked, n, "after a power cut"); break; }
        case OP_DAMAGE: op_damage(s); break;
        case OP_SEEK: op_seek(s); break;
        case OP_LIVE: op_live_scan(s); break;
        case OP_TAIL: op_tail(s); break;
        default: break;
        }
        T.op_ns[op] += plg_now_ns() - t_op;
        if (s->L && !s->why[0]) {                    /* the cheap invariants, after every step */
            uint64_t du = plg_durable(s->L), ap = plg_appended(s->L);
            if (ap != s->m.n) fail(s, "plg_appended %llu, the model has %llu", (unsigned long long)ap, (unsigned long long)s->m.n);
            if (du > ap) fail(s, "plg_durable %llu past plg_appended %llu", (unsigned long long)du, (unsigned long long)ap);
            if (du < s->m.acked && op != OP_TRUNCATE) fail(s, "plg_durable %llu went below %llu", (unsigned long long)du, (unsigned long long)s->m.acked);
            if (plg_error(s->L)) fail(s, "the log is poisoned: %s", plg_strerror(plg_error(s->L)));
            if (du > s->m.acked) s->m.acked = du;
        }
    }
    if (!s->why[0] && s->L) {                        /* the end: a clean close and a full check */
        close_clean(s);
        if (!s->why[0]) verify_closed(s, s->m.n, s->m.n, "final");
    } else if (s->L) {
        tail_close();
        gate_free(); plg_close(s->L); s->L = NULL; end_disk(s);
    }
    tail_close();
    T.incarnations += (uint64_t)s->inc;
    T.records += s->m.n;
    if (s->why[0]) {
        fprintf(stderr, "  SEED %llu FAILED: %s\n  config: segment %d KiB, ring %zu, max_write_bytes %u\n"
                "  reproduce: PLG_SIMAPI_OPS=%s build/test/test_sim_picolog_api --seed %llu -v\n",
                (unsigned long long)seed, s->why, s->seg_kb, s->base.ring_capacity, s->base.max_write_bytes,
                feat_string(feats), (unsigned long long)seed);
    }
    const char *keep = getenv("PLG_SIMAPI_KEEP");      /* a directory for the files of a failed seed */
    if (s->why[0] && keep && *keep) {
        char to[400]; snprintf(to, sizeof to, "%.300s/%llu", keep, (unsigned long long)seed);
        mkdir(keep, 0755);
        if (copy_tree(s->dir, to) == 0) fprintf(stderr, "  the files are in %s\n", to);
    }
    rm_rf(s->dir); rm_rf(s->snap);
    return s->why[0] ? 1 : 0;
}

static uint64_t env_u64(const char *name, uint64_t def) {
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : def;
}

static uint64_t one_seed; static int have_one_seed;

static uint64_t default_seeds(void) {
#if defined(__SANITIZE_THREAD__)
    return 15;                       /* races and memory errors on the paths: the */
#elif defined(__SANITIZE_ADDRESS__)
    return 50;                       /* plain run covers the seeds (make test in 25 min) */
#else
    if (getenv("PLG_TEST_QUICK") && getenv("PLG_TEST_TIME_SCALE")) return 40;   /* valgrind (tests/valgrind.sh) */
    return 2000;
#endif
}

static void test_simapi_seeds(void) {
    uint64_t n = env_u64("PLG_SIMAPI_SEEDS", default_seeds()), base = env_u64("PLG_SIMAPI_BASE", 1);
    if (have_one_seed) { n = 1; base = one_seed; }
    uint64_t t0 = plg_now_ns(), failed0 = T.failed;
    for (uint64_t i = 0; i < n; i++) {
        T.seeds++;
        if (run_seed(base + i)) T.failed++;
    }
    CHECK_EQ(T.failed - failed0, 0);
    CHECK(T.seeds > 0);
    printf("  simapi: %llu seeds (base %llu, ops %s), %llu failed; %llu incarnations, %llu records at the ends; %.1f s\n   ",
           (unsigned long long)n, (unsigned long long)base, feat_string(feats), (unsigned long long)(T.failed - failed0),
           (unsigned long long)T.incarnations, (unsigned long long)T.records, (double)(plg_now_ns() - t0) / 1e9);
    for (int i = 0; i < OP__N; i++) printf(" %s %llu (%.0f ms)", op_names[i], (unsigned long long)T.ops[i], (double)T.op_ns[i] / 1e6);
    printf("\n  ops in flight at the crashes: %llu\n  ", (unsigned long long)T.pending_at_crash);
    sim_print_stats(&T.sim, stdout);
}

int main(int argc, char **argv) {
    const char *ops = getenv("PLG_SIMAPI_OPS");
    if (ops && *ops) feats = parse_feats(ops);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) { one_seed = strtoull(argv[++i], NULL, 0); have_one_seed = 1; }
        else if (!strcmp(argv[i], "--seeds") && i + 1 < argc) setenv("PLG_SIMAPI_SEEDS", argv[++i], 1);
        else if (!strcmp(argv[i], "--base") && i + 1 < argc) setenv("PLG_SIMAPI_BASE", argv[++i], 1);
        else if (!strcmp(argv[i], "--ops") && i + 1 < argc) n_ops_per_seed = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-v")) verbose++;
    }
    RUN(test_simapi_seeds);
    rm_rf(scratch_base());
    return t_done();
}
