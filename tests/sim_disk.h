/* sim_disk.h - a simulated disk with a volatile write cache, for tests only.
 *
 * Model (SQLite's crash layer, TigerBeetle's simulated storage):
 *   - A write is *pending* (in the disk's volatile cache) from submission
 *     until it is made durable by: its own completion if it was submitted
 *     with dsync (RWF_DSYNC / FUA); a later fsync/fdatasync of the same file
 *     that was submitted after the write completed; or, at random, the disk
 *     writing its cache back on its own. Durable bytes go to the real file.
 *     Pending bytes live only in memory here.
 *   - Completions are delivered late (each op is held for a random number of
 *     reap calls) and out of order (a random subset of the ready ones).
 *   - Injected failures: EIO or ENOSPC on a write, EIO on an fsync, a short
 *     write (whole sectors missing at the end), a submission refused. A
 *     failed write may still leave any of its sectors on the disk; the
 *     writes covered by a failed fsync are never made durable by a later
 *     one (Linux marks the pages clean: PostgreSQL's "fsyncgate").
 *   - sim_cut(): power loss. Every write not yet durable is independently
 *     kept, dropped, or torn sector by sector (512 B: each sector old or new),
 *     in submission order, so a later kept sector wins. After the cut the disk
 *     is dead: every operation fails with EIO and touches nothing, so the
 *     caller can shut its log down in-process (plg_close) and then reopen the
 *     files, which now hold exactly what survived.
 *   - Deterministic: every decision comes from one splitmix64 stream seeded by
 *     sim_cfg.seed, in the order of the calls. Same calls, same disk.
 *
 * The I/O engine interface is picolog's plg_io (submit_write, submit_fsync,
 * reap); sim_plg_io() fills one in when picolog.h is included first. The
 * engine also has plain functions (sim_write, sim_fsync, sim_reap) so other
 * headers' I/O can be routed through it.
 *
 * Syncs done outside the engine (a direct fdatasync() by the code under test)
 * are seen when the test defines SIM_DISK_INTERPOSE_SYNC before including
 * this file: fsync/fdatasync are then interposed in the test binary and make
 * the pending writes of that file durable, as the real call would. */
#ifndef SIM_DISK_H
#define SIM_DISK_H
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SIM_SECTOR 512u
#define SIM_ESHORT 10000   /* sim_disk.first_error after a short write */

typedef struct sim_cfg {
    uint64_t seed;
    /* probabilities, in parts per million per operation */
    uint32_t p_write_eio, p_write_enospc, p_write_short, p_sync_eio, p_submit_fail;
    uint32_t p_writeback;     /* per reap call, per pending completed write */
    uint32_t max_delay;       /* reap calls an op may be held before it is ready */
    uint32_t p_hold;          /* a ready op is held back once more (late, reordered) */
} sim_cfg;

typedef struct sim_stats {
    uint64_t writes, syncs, reaps, delivered, reordered, held;
    uint64_t durable_writes, writebacks, fsync_applied;
    uint64_t inj_eio, inj_enospc, inj_short, inj_sync_eio, inj_submit;
    uint64_t cuts, cut_kept, cut_dropped, cut_torn, sectors_kept, sectors_dropped;
    uint64_t buf_changed_in_flight;   /* the caller modified a buffer before completion: a bug */
    uint64_t ops_after_cut, ext_syncs;
} sim_stats;

enum { SIM_SUBMITTED = 0, SIM_CACHED = 1, SIM_LIMBO = 2 };

typedef struct sim_op {
    uint64_t id, tag, upto;          /* upto: fsync covers writes completed at or before it */
    int file, is_sync, dsync, state, delivered, failed, is_short;
    int32_t res;
    uint32_t delay, len;
    uint64_t off, done_at;
    const void *ubuf;                /* the caller's buffer (checked unchanged at completion) */
    uint8_t *data;                   /* copy taken at submission */
    uint8_t *dead;                   /* per sector: superseded by a later durable write */
} sim_op;

typedef struct sim_file { dev_t dev; ino_t ino; int fd; } sim_file;

typedef struct sim_disk {
    pthread_mutex_t mu;
    sim_cfg cfg;
    uint64_t rng, next_id, completions, step;
    sim_op *ops; int nops, capops;
    sim_file files[256]; int nfiles;
    int dead;
    int first_error;                 /* errno of the first injected failure delivered (0: none) */
    uint64_t first_error_step;
    uint64_t submits_after_error;    /* operations submitted after an error was delivered */
    sim_stats st;
    /* Called from inside reap (the I/O thread), without the lock, after the
     * completions are chosen; `remaining` ops are still undelivered. */
    void (*on_step)(struct sim_disk *d, void *user, int remaining);
    void *user;
} sim_disk;

static uint64_t sim_rand(sim_disk *d) {
    uint64_t z = (d->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int sim_chance(sim_disk *d, uint32_t ppm) { return ppm && sim_rand(d) % 1000000u < ppm; }

static sim_disk *sim__active;        /* for the interposed fsync/fdatasync */
static int sim__trace = -1;          /* env SIM_TRACE=1: every operation on stderr */
#define SIM_TRACE(...) do { if (sim__trace < 0) sim__trace = getenv("SIM_TRACE") != NULL; \
    if (sim__trace) fprintf(stderr, "sim: " __VA_ARGS__); } while (0)

static void sim_init(sim_disk *d, const sim_cfg *cfg) {
    memset(d, 0, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    d->cfg = *cfg;
    d->rng = cfg->seed ^ 0x5EEDD15Cull;
    sim__active = d;
}

static void sim__free_op(sim_op *o) { free(o->data); free(o->dead); o->data = NULL; o->dead = NULL; }

static void sim_destroy(sim_disk *d) {
    if (sim__active == d) sim__active = NULL;
    for (int i = 0; i < d->nops; i++) sim__free_op(&d->ops[i]);
    free(d->ops);
    for (int i = 0; i < d->nfiles; i++) close(d->files[i].fd);
    pthread_mutex_destroy(&d->mu);
    memset(d, 0, sizeof *d);
}

/* The file behind fd, opened a second time (buffered) for the sim's own
 * writes; -1 when unknown and `add` is 0. */
static int sim__file(sim_disk *d, int fd, int add) {
    struct stat sb;
    if (fstat(fd, &sb) != 0) return -1;
    for (int i = 0; i < d->nfiles; i++)
        if (d->files[i].dev == sb.st_dev && d->files[i].ino == sb.st_ino) return i;
    if (!add || d->nfiles == (int)(sizeof d->files / sizeof d->files[0])) return -1;
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    int pfd = open(p, O_WRONLY | O_CLOEXEC);
    if (pfd < 0) return -1;
    d->files[d->nfiles].dev = sb.st_dev; d->files[d->nfiles].ino = sb.st_ino; d->files[d->nfiles].fd = pfd;
    return d->nfiles++;
}

static uint32_t sim__nsect(const sim_op *o) { return (o->len + SIM_SECTOR - 1) / SIM_SECTOR; }

static void sim__put_sector(sim_disk *d, const sim_op *o, uint32_t k) {
    uint32_t a = k * SIM_SECTOR, n = o->len - a < SIM_SECTOR ? o->len - a : SIM_SECTOR;
    ssize_t w = pwrite(d->files[o->file].fd, o->data + a, n, (off_t)(o->off + a));
    if (w != (ssize_t)n) { fprintf(stderr, "sim_disk: applying a sector failed: %s\n", strerror(errno)); abort(); }
}

/* Make write o durable: its live sectors go to the file, and the same
 * sectors of older pending writes are superseded (they can never win). */
static void sim__apply(sim_disk *d, sim_op *o) {
    uint32_t n = sim__nsect(o);
    SIM_TRACE("durable #%llu file %d off %llu len %u\n", (unsigned long long)o->id, o->file, (unsigned long long)o->off, o->len);
    for (uint32_t k = 0; k < n; k++) if (!o->dead[k]) sim__put_sector(d, o, k);
    for (int i = 0; i < d->nops; i++) {
        sim_op *p = &d->ops[i];
        if (p == o || p->is_sync || p->file != o->file || p->id > o->id) continue;
        for (uint32_t k = 0; k < sim__nsect(p); k++) {
            uint64_t s = p->off + (uint64_t)k * SIM_SECTOR;
            if (s >= o->off && s < o->off + o->len) p->dead[k] = 1;
        }
    }
}

static void sim__remove(sim_disk *d, int i) {
    sim__free_op(&d->ops[i]);
    memmove(&d->ops[i], &d->ops[i + 1], (size_t)(d->nops - i - 1) * sizeof d->ops[0]);
    d->nops--;
}

static sim_op *sim__new_op(sim_disk *d) {
    if (d->nops == d->capops) {
        int nc = d->capops ? d->capops * 2 : 64;
        sim_op *n = (sim_op *)realloc(d->ops, (size_t)nc * sizeof *n);
        if (!n) abort();
        d->ops = n; d->capops = nc;
    }
    sim_op *o = &d->ops[d->nops++];
    memset(o, 0, sizeof *o);
    o->id = ++d->next_id;
    o->delay = d->cfg.max_delay ? (uint32_t)(sim_rand(d) % (d->cfg.max_delay + 1)) : 0;
    return o;
}

static void sim__refuse(sim_disk *d) {
    d->st.inj_submit++;
    if (!d->first_error) { d->first_error = EIO; d->first_error_step = d->step; }
}

/* Submit a write; 0 or -errno (submission refused). */
static int sim_write(sim_disk *d, int fd, const void *buf, uint32_t len, uint64_t off, int dsync, uint64_t tag) {
    pthread_mutex_lock(&d->mu);
    if (d->first_error) d->submits_after_error++;
    int rc = 0;
    if (d->dead) { d->st.ops_after_cut++; }
    if (!d->dead && sim_chance(d, d->cfg.p_submit_fail)) { sim__refuse(d); rc = -EIO; goto out; }
    sim_op *o = sim__new_op(d);
    o->tag = tag; o->dsync = dsync; o->off = off; o->len = len; o->ubuf = buf; o->res = (int32_t)len;
    o->file = d->dead ? -1 : sim__file(d, fd, 1);
    if (!d->dead && o->file < 0) { fprintf(stderr, "sim_disk: cannot track fd %d\n", fd); abort(); }
    o->data = (uint8_t *)malloc(len ? len : 1);
    o->dead = (uint8_t *)calloc(sim__nsect(o) + 1, 1);
    if (!o->data || !o->dead) abort();
    memcpy(o->data, buf, len);
    d->st.writes++;
    SIM_TRACE("write #%llu file %d off %llu len %u dsync %d tag %llu\n", (unsigned long long)o->id, o->file,
              (unsigned long long)off, len, dsync, (unsigned long long)tag);
    if (d->dead) { o->res = -EIO; o->failed = 1; goto out; }
    uint64_t r = sim_rand(d) % 1000000u;
    uint32_t p1 = d->cfg.p_write_eio, p2 = p1 + d->cfg.p_write_enospc, p3 = p2 + d->cfg.p_write_short;
    if (r < p1) { o->res = -EIO; o->failed = 1; d->st.inj_eio++; }
    else if (r < p2) { o->res = -ENOSPC; o->failed = 1; d->st.inj_enospc++; }
    else if (r < p3 && len > SIM_SECTOR) {
        uint32_t ns = sim__nsect(o), keep = (uint32_t)(sim_rand(d) % (ns - 1)) + 1;   /* 1..ns-1 sectors */
        o->len = keep * SIM_SECTOR; o->res = (int32_t)o->len; o->is_short = 1; d->st.inj_short++;
    }
out:
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int sim_fsync(sim_disk *d, int fd, uint64_t tag) {
    pthread_mutex_lock(&d->mu);
    if (d->first_error) d->submits_after_error++;
    int rc = 0;
    if (!d->dead && sim_chance(d, d->cfg.p_submit_fail)) { sim__refuse(d); rc = -EIO; goto out; }
    sim_op *o = sim__new_op(d);
    o->tag = tag; o->is_sync = 1; o->upto = d->completions;
    o->file = d->dead ? -1 : sim__file(d, fd, 1);
    d->st.syncs++;
    if (d->dead) { o->res = -EIO; o->failed = 1; d->st.ops_after_cut++; goto out; }
    if (sim_chance(d, d->cfg.p_sync_eio)) { o->res = -EIO; o->failed = 1; d->st.inj_sync_eio++; }
out:
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* Caller holds the lock. A completed write becomes durable or stays cached. */
static void sim__complete(sim_disk *d, int i) {
    sim_op *o = &d->ops[i];
    o->delivered = 1;
    o->done_at = ++d->completions;
    d->st.delivered++;
    SIM_TRACE("complete #%llu %s file %d res %d\n", (unsigned long long)o->id, o->is_sync ? "fsync" : "write", o->file, o->res);
    if (o->is_sync) {
        if (o->file >= 0) {
            for (int j = 0; j < d->nops; j++) {
                sim_op *p = &d->ops[j];
                if (p->is_sync || p->file != o->file || p->state != SIM_CACHED || p->done_at > o->upto) continue;
                if (o->failed) p->state = SIM_LIMBO;
                else { sim__apply(d, p); p->state = -1; d->st.fsync_applied++; }
            }
        }
        if (o->failed && !d->first_error && !d->dead) { d->first_error = -o->res; d->first_error_step = d->step; }
        return;
    }
    if (o->ubuf && memcmp(o->ubuf, o->data, o->len) != 0) d->st.buf_changed_in_flight++;
    if (o->failed) {
        o->state = SIM_LIMBO;                          /* some sectors may be on the disk */
        if (!d->first_error && !d->dead) { d->first_error = -o->res; d->first_error_step = d->step; }
        return;
    }
    if (o->is_short && !d->first_error && !d->dead) { d->first_error = SIM_ESHORT; d->first_error_step = d->step; }
    if (o->dsync) { sim__apply(d, o); o->state = -1; d->st.durable_writes++; }
    else o->state = SIM_CACHED;
}

/* Deliver completions: up to max; waits (in simulated time) for at least one
 * when timeout_ns > 0. */
static int sim_reap(sim_disk *d, uint64_t *tags, int32_t *res, int max, uint64_t timeout_ns) {
    pthread_mutex_lock(&d->mu);
    d->step++; d->st.reaps++;
    int n = 0, undelivered = 0;
    for (int i = 0; i < d->nops; i++) if (!d->ops[i].delivered && d->ops[i].delay) d->ops[i].delay--;
    for (int pass = 0; pass < 2 && n == 0; pass++) {
        int idx[512], nr = 0, first_ready = -1;
        for (int i = 0; i < d->nops && nr < 512; i++)
            if (!d->ops[i].delivered && d->ops[i].delay == 0) {
                if (first_ready < 0) first_ready = i;
                idx[nr++] = i;
            }
        if (nr == 0) {
            if (!timeout_ns) break;
            uint32_t m = UINT32_MAX;                   /* advance simulated time */
            for (int i = 0; i < d->nops; i++) if (!d->ops[i].delivered && d->ops[i].delay < m) m = d->ops[i].delay;
            if (m == UINT32_MAX) break;
            for (int i = 0; i < d->nops; i++) if (!d->ops[i].delivered) d->ops[i].delay -= m;
            continue;
        }
        for (int i = nr - 1; i > 0; i--) {             /* any order */
            int j = (int)(sim_rand(d) % (uint64_t)(i + 1)), t = idx[i]; idx[i] = idx[j]; idx[j] = t;
        }
        for (int k = 0; k < nr && n < max; k++) {
            if (!d->dead && (n > 0 || !timeout_ns) && sim_chance(d, d->cfg.p_hold)) { d->st.held++; continue; }
            if (idx[k] != first_ready && n == 0) d->st.reordered++;
            sim_op *o = &d->ops[idx[k]];
            tags[n] = o->tag; res[n] = o->res; n++;
            sim__complete(d, idx[k]);
        }
        if (n == 0 && !timeout_ns) break;
    }
    /* the disk writes part of its cache back on its own */
    for (int i = 0; i < d->nops && !d->dead; i++) {
        sim_op *o = &d->ops[i];
        if (o->state == SIM_CACHED && o->delivered && !o->is_sync && sim_chance(d, d->cfg.p_writeback)) {
            sim__apply(d, o); o->state = -1; d->st.writebacks++;
        }
    }
    for (int i = 0; i < d->nops; ) {                   /* forget what is settled */
        sim_op *o = &d->ops[i];
        if (o->delivered && (o->state == -1 || (o->is_sync))) sim__remove(d, i); else i++;
    }
    for (int i = 0; i < d->nops; i++) if (!d->ops[i].delivered) undelivered++;
    void (*cb)(sim_disk *, void *, int) = d->dead ? NULL : d->on_step;
    pthread_mutex_unlock(&d->mu);
    if (cb) cb(d, d->user, undelivered);
    return n;
}

/* Power loss. mode 0: each pending write kept, dropped or torn at random;
 * mode 1: every pending write dropped (the worst case for acknowledged data).
 * Caller may hold no lock. Afterwards the disk is dead. */
static void sim_cut(sim_disk *d, int mode) {
    pthread_mutex_lock(&d->mu);
    if (d->dead) { pthread_mutex_unlock(&d->mu); return; }
    d->st.cuts++;
    for (int i = 0; i < d->nops; i++) {
        sim_op *o = &d->ops[i];
        if (o->is_sync || o->file < 0 || o->state == -1) continue;
        int how = mode == 1 ? 1 : (int)(sim_rand(d) % 3);      /* 0 keep, 1 drop, 2 torn */
        SIM_TRACE("cut: #%llu file %d off %llu len %u state %d: %s\n", (unsigned long long)o->id, o->file,
                  (unsigned long long)o->off, o->len, o->state, how == 0 ? "kept" : how == 1 ? "dropped" : "torn");
        if (how == 0) d->st.cut_kept++; else if (how == 1) d->st.cut_dropped++; else d->st.cut_torn++;
        for (uint32_t k = 0; k < sim__nsect(o); k++) {
            int keep = how == 0 || (how == 2 && (sim_rand(d) & 1));
            if (o->dead[k]) continue;
            if (keep) { sim__put_sector(d, o, k); d->st.sectors_kept++; } else d->st.sectors_dropped++;
        }
    }
    for (int i = 0; i < d->nops; i++) {                /* anything undelivered fails */
        d->ops[i].res = -EIO; d->ops[i].failed = 1; d->ops[i].state = SIM_LIMBO; d->ops[i].file = -1;
    }
    d->dead = 1;
    pthread_mutex_unlock(&d->mu);
}

static int sim_outstanding(sim_disk *d) {
    pthread_mutex_lock(&d->mu);
    int n = 0;
    for (int i = 0; i < d->nops; i++) if (!d->ops[i].delivered) n++;
    pthread_mutex_unlock(&d->mu);
    return n;
}

/* A sync of fd made outside the engine: the file's completed pending writes
 * become durable (what the real call does). */
static void sim_external_sync(sim_disk *d, int fd) {
    pthread_mutex_lock(&d->mu);
    if (!d->dead) {
        int f = sim__file(d, fd, 0);
        SIM_TRACE("external sync fd %d file %d\n", fd, f);
        if (f >= 0) {
            d->st.ext_syncs++;
            for (int j = 0; j < d->nops; j++) {
                sim_op *p = &d->ops[j];
                if (!p->is_sync && p->file == f && p->state == SIM_CACHED && p->delivered) {
                    sim__apply(d, p); p->state = -1; d->st.fsync_applied++;
                }
            }
        }
    }
    pthread_mutex_unlock(&d->mu);
}

#ifdef SIM_DISK_INTERPOSE_SYNC
int fdatasync(int fd) {
    if (sim__active) sim_external_sync(sim__active, fd);
    return (int)syscall(SYS_fdatasync, fd);
}
int fsync(int fd) {
    if (sim__active) sim_external_sync(sim__active, fd);
    return (int)syscall(SYS_fsync, fd);
}
#endif

/* ---- picolog's plg_io on top of the simulated disk ---- */
#ifdef PICOLOG_H
static int sim__plg_write(void *ctx, int fd, const void *buf, uint32_t len, uint64_t off, int dsync, uint64_t tag) {
    return sim_write((sim_disk *)ctx, fd, buf, len, off, dsync, tag);
}
static int sim__plg_fsync(void *ctx, int fd, uint64_t tag) { return sim_fsync((sim_disk *)ctx, fd, tag); }
static int sim__plg_reap(void *ctx, plg_io_cqe *out, int max, uint64_t timeout_ns) {
    uint64_t tags[64]; int32_t res[64];
    if (max > 64) max = 64;
    int n = sim_reap((sim_disk *)ctx, tags, res, max, timeout_ns);
    for (int i = 0; i < n; i++) { out[i].tag = tags[i]; out[i].res = res[i]; }
    return n;
}
static void sim_plg_io(sim_disk *d, plg_io *io) {
    memset(io, 0, sizeof *io);
    io->ctx = d; io->submit_write = sim__plg_write; io->submit_fsync = sim__plg_fsync; io->reap = sim__plg_reap;
}
#endif

static void sim_print_stats(const sim_stats *s, FILE *f) {
    fprintf(f, "sim: %llu writes, %llu syncs, %llu reaps, %llu reordered, %llu held late; durable by dsync %llu, "
            "by fsync %llu, by writeback %llu; injected: %llu EIO, %llu ENOSPC, %llu short, %llu sync EIO, "
            "%llu refused; %llu cuts: pending writes %llu kept, %llu dropped, %llu torn (%llu sectors kept, %llu dropped)\n",
            (unsigned long long)s->writes, (unsigned long long)s->syncs, (unsigned long long)s->reaps,
            (unsigned long long)s->reordered, (unsigned long long)s->held, (unsigned long long)s->durable_writes,
            (unsigned long long)s->fsync_applied, (unsigned long long)s->writebacks, (unsigned long long)s->inj_eio,
            (unsigned long long)s->inj_enospc, (unsigned long long)s->inj_short, (unsigned long long)s->inj_sync_eio,
            (unsigned long long)s->inj_submit, (unsigned long long)s->cuts, (unsigned long long)s->cut_kept,
            (unsigned long long)s->cut_dropped, (unsigned long long)s->cut_torn, (unsigned long long)s->sectors_kept,
            (unsigned long long)s->sectors_dropped);
}

static void sim_stats_add(sim_stats *a, const sim_stats *b) {
    const uint64_t *src = (const uint64_t *)b; uint64_t *dst = (uint64_t *)a;
    for (size_t i = 0; i < sizeof *a / sizeof(uint64_t); i++) dst[i] += src[i];
}
#endif
