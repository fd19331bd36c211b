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
    /* durable images (pp_io, below): */
    uint32_t p_grow_enospc;   /* fallocate fails with ENOSPC */
    uint32_t p_file_enospc;   /* a whole-file durable write (snapshot...) fails with ENOSPC, leaving a torn temp */
    int      lie_sync;        /* UNSAFE, for checking the checker: msync/fdatasync succeed but make nothing durable */
} sim_cfg;

typedef struct sim_stats {
    uint64_t writes, syncs, reaps, delivered, reordered, held;
    uint64_t durable_writes, writebacks, fsync_applied;
    uint64_t inj_eio, inj_enospc, inj_short, inj_sync_eio, inj_submit;
    uint64_t cuts, cut_kept, cut_dropped, cut_torn, sectors_kept, sectors_dropped;
    uint64_t buf_changed_in_flight;   /* the caller modified a buffer before completion: a bug */
    uint64_t ops_after_cut, ext_syncs;
    uint64_t img_syncs, img_files, img_sectors_new, img_sectors_kept, img_sectors_reverted, img_sizes_reverted;
    uint64_t dir_ops, dir_ops_undone, tmp_dropped, tmp_torn, inj_grow_enospc, inj_file_enospc, inj_dir_eio;
} sim_stats;

enum { SIM_SUBMITTED = 0, SIM_CACHED = 1, SIM_LIMBO = 2 };

typedef struct sim_op {
    uint64_t id, tag, upto;          /* upto: fsync covers writes completed at or before it */
    int file, is_sync, dsync, state, delivered, failed, is_short;
    int32_t res;
    uint32_t delay, len;
    uint64_t off, done_at;
    pthread_t owner;                 /* the submitting thread: only its reap delivers the op */
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
    /* durable images (pp_io, below) */
    struct sim_img *imgs; int nimgs, capimgs;
    struct sim_dirop *dirops; int ndirops, capdirops;
    char grave[1024]; uint64_t ngrave;
    int err_files;                   /* injected sync/growth errors delivered on journal files */
    /* pp_io: the power goes at the cut_at_op-th operation (0: never), before
     * it is done, so a cut can land between any two steps of a sync, a
     * snapshot or a file replacement; the pending plg_io writes are cut in
     * cut_at_mode (see sim_cut) */
    uint64_t cut_at_op, pp_ops; int cut_at_mode;
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

static void sim__img_free(sim_disk *d);
static void sim_destroy(sim_disk *d) {
    if (sim__active == d) sim__active = NULL;
    sim__img_free(d);
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
    o->owner = pthread_self();       /* several logs on one disk: each writer thread reaps its own */
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
    pthread_t self = pthread_self();
#define SIM__MINE(o) pthread_equal((o)->owner, self)
    for (int i = 0; i < d->nops; i++) if (!d->ops[i].delivered && d->ops[i].delay && SIM__MINE(&d->ops[i])) d->ops[i].delay--;
    for (int pass = 0; pass < 2 && n == 0; pass++) {
        int idx[512], nr = 0, first_ready = -1;
        for (int i = 0; i < d->nops && nr < 512; i++)
            if (!d->ops[i].delivered && d->ops[i].delay == 0 && SIM__MINE(&d->ops[i])) {
                if (first_ready < 0) first_ready = i;
                idx[nr++] = i;
            }
        if (nr == 0) {
            if (!timeout_ns) break;
            uint32_t m = UINT32_MAX;                   /* advance simulated time */
            for (int i = 0; i < d->nops; i++) if (!d->ops[i].delivered && SIM__MINE(&d->ops[i]) && d->ops[i].delay < m) m = d->ops[i].delay;
            if (m == UINT32_MAX) break;
            for (int i = 0; i < d->nops; i++) if (!d->ops[i].delivered && SIM__MINE(&d->ops[i])) d->ops[i].delay -= m;
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
    for (int i = 0; i < d->nops; i++) if (!d->ops[i].delivered && SIM__MINE(&d->ops[i])) undelivered++;
#undef SIM__MINE
    void (*cb)(sim_disk *, void *, int) = d->dead ? NULL : d->on_step;
    pthread_mutex_unlock(&d->mu);
    if (cb) cb(d, d->user, undelivered);
    return n;
}

/* Power loss. mode 0: each pending write kept, dropped or torn at random;
 * mode 1: every pending write dropped (the worst case for acknowledged data).
 * Caller may hold no lock. Afterwards the disk is dead. */
static void sim__cut_locked(sim_disk *d, int mode) {
    if (d->dead) return;
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
}
static void sim_cut(sim_disk *d, int mode) {
    pthread_mutex_lock(&d->mu);
    sim__cut_locked(d, mode);
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
/* A file with a durable image (adopted at the start of an incarnation, say)
 * that the code under test rewrote with plain pwrite, outside plg_io (picolog
 * reusing a released segment: new header, fdatasync, rename): its sync makes
 * the current contents the durable image, as the real call makes them durable. */
static void sim__img_external_sync(sim_disk *d, int fd);
int fdatasync(int fd) {
    if (sim__active) { sim_external_sync(sim__active, fd); sim__img_external_sync(sim__active, fd); }
    return (int)syscall(SYS_fdatasync, fd);
}
int fsync(int fd) {
    if (sim__active) { sim_external_sync(sim__active, fd); sim__img_external_sync(sim__active, fd); }
    return (int)syscall(SYS_fsync, fd);
}
/* After the cut the machine is off: a directory operation the code under
 * test makes with a plain call (picolog's segment thread releasing or
 * reusing a segment, say) must not reach the files the cut leaves, as the
 * operations through plg_io and pp_io do not. */
static int sim__off(void) {
    sim_disk *d = sim__active;
    if (!d) return 0;
    pthread_mutex_lock(&d->mu);
    int dead = d->dead;
    pthread_mutex_unlock(&d->mu);
    return dead;
}
int rename(const char *a, const char *b) {
    SIM_TRACE("plain rename %s %s%s\n", a, b, sim__off() ? " (refused: off)" : "");
    if (sim__off()) { errno = EIO; return -1; }
    return (int)syscall(SYS_renameat, AT_FDCWD, a, AT_FDCWD, b);
}
int unlink(const char *p) {
    if (sim__off()) { errno = EIO; return -1; }
    return (int)syscall(SYS_unlinkat, AT_FDCWD, p, 0);
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

/* ---- durable images: files changed in place (a shared mapping, pwrite) and
 * made durable by msync/fdatasync, as pinnacle_persist.h's mmap journal is.
 *
 * Model: the real file always holds the current contents (the page cache).
 * For every file it has seen synced, the sim keeps a durable image: the bytes
 * and the size that successful syncs made durable (an msync: its range; an
 * fdatasync: the whole file; a whole-file durable write: the file). A failed
 * sync makes nothing durable (its pages may or may not be written: they stay
 * "maybe"). Renames and unlinks are directory metadata: durable only once an
 * fsync of the directory returned; until then a power cut may undo them (the
 * latest first, as a journaling filesystem commits in order). Unlinked files
 * are kept as hard links in a graveyard so an undo can bring them back and
 * no inode is reused meanwhile (images are keyed by inode).
 *
 * sim_img_build() makes the state after a power cut in a separate directory,
 * once the disk is dead (sim_cut): each file is copied, and in every 512-byte
 * sector where the current contents differ from the durable image the cut
 * keeps the new bytes or reverts to the durable ones (mode 0: each sector at
 * random; 1: revert all, the worst case; 2: keep all, a process crash); a
 * size not yet durable may revert too. A file never synced that is a temp
 * file (*.tmp) may be missing, complete or torn; other never-synced files
 * (the lock file; picolog's files, which the plg_io part above handles) are
 * copied as they are. Then undone directory operations are applied.
 *
 * pinnacle_persist.h's pp_io on top: sim_pp_io() when the test compiled the
 * implementation with PINNACLE_PERSIST_TEST_IO. */
#include <dirent.h>
#define SIM__UNUSED __attribute__((unused))   /* a test uses the part it needs */

SIM__UNUSED static uint64_t sim__r(uint64_t *s) {               /* splitmix64, for the cut's own choices */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct sim_img { dev_t dev; ino_t ino; uint8_t *data; uint64_t size, cap; int failed; } sim_img;
enum { SIM_DIR_RENAME = 1, SIM_DIR_UNLINK = 2 };
typedef struct sim_dirop { int kind, done; char dir[512], a[512], b[512], grave_a[1100], grave_b[1100]; } sim_dirop;
enum { SIM_ERR_MSYNC = 1, SIM_ERR_FDATASYNC = 2, SIM_ERR_GROW = 3, SIM_ERR_SHORT = 4 };
#define SIM_MAX_ERRS 16
typedef struct sim_errrec { int kind; char path[512]; } sim_errrec;
static sim_errrec sim__errs[SIM_MAX_ERRS]; static int sim__nerrs;

SIM__UNUSED static void sim__img_free(sim_disk *d) {
    for (int i = 0; i < d->nimgs; i++) free(d->imgs[i].data);
    free(d->imgs); free(d->dirops);
    d->imgs = NULL; d->dirops = NULL; d->nimgs = d->capimgs = d->ndirops = d->capdirops = 0;
}

/* Where unlinked and replaced files are kept (same filesystem as the data). */
SIM__UNUSED static void sim_img_init(sim_disk *d, const char *grave_dir) {
    snprintf(d->grave, sizeof d->grave, "%s", grave_dir);
    mkdir(d->grave, 0755);
    sim__nerrs = 0;
}

SIM__UNUSED static sim_img *sim__img_find(sim_disk *d, dev_t dev, ino_t ino, int add) {
    for (int i = 0; i < d->nimgs; i++) if (d->imgs[i].dev == dev && d->imgs[i].ino == ino) return &d->imgs[i];
    if (!add) return NULL;
    if (d->nimgs == d->capimgs) {
        d->capimgs = d->capimgs ? 2 * d->capimgs : 32;
        d->imgs = (sim_img *)realloc(d->imgs, (size_t)d->capimgs * sizeof *d->imgs);
        if (!d->imgs) abort();
    }
    sim_img *im = &d->imgs[d->nimgs++];
    memset(im, 0, sizeof *im);
    im->dev = dev; im->ino = ino;
    d->st.img_files++;
    return im;
}

/* Caller holds the lock: [off, off+len) of fd's current contents is durable,
 * and so is the file's size. With lie_sync only a file's first sync counts. */
SIM__UNUSED static void sim__img_capture(sim_disk *d, int fd, uint64_t off, uint64_t len) {
    struct stat sb;
    if (fstat(fd, &sb) != 0) return;
    sim_img *im = sim__img_find(d, sb.st_dev, sb.st_ino, 0);
    if (im && (d->cfg.lie_sync || im->failed)) return;
    if (!im) { im = sim__img_find(d, sb.st_dev, sb.st_ino, 1); off = 0; len = (uint64_t)sb.st_size; }
    uint64_t fsz = (uint64_t)sb.st_size;
    if (fsz > im->cap) {
        uint64_t nc = im->cap ? im->cap : 65536;
        while (nc < fsz) nc *= 2;
        im->data = (uint8_t *)realloc(im->data, nc);
        if (!im->data) abort();
        im->cap = nc;
    }
    if (fsz > im->size) memset(im->data + im->size, 0, fsz - im->size);
    im->size = fsz;
    uint64_t end = off + len < fsz ? off + len : fsz;
    while (off < end) {
        ssize_t n = pread(fd, im->data + off, end - off, (off_t)off);
        if (n <= 0) break;
        off += (uint64_t)n;
    }
    d->st.img_syncs++;
}

SIM__UNUSED static void sim__fd_path(int fd, char *out, size_t cap) {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, out, cap - 1);
    out[n > 0 ? n : 0] = 0;
}

/* Caller holds the lock: an injected error was delivered on fd. After a
 * failed sync nothing more of the file becomes durable (the kernel may have
 * dropped the dirty pages and marked them clean: PostgreSQL's fsyncgate). */
SIM__UNUSED static void sim__img_err(sim_disk *d, int fd, int kind, int err) {
    struct stat sb;
    if ((kind == SIM_ERR_MSYNC || kind == SIM_ERR_FDATASYNC) && fstat(fd, &sb) == 0)
        sim__img_find(d, sb.st_dev, sb.st_ino, 1)->failed = 1;    /* a new file: nothing of it is durable */
    if (!d->first_error) { d->first_error = err; d->first_error_step = d->step; }
    if (sim__nerrs < SIM_MAX_ERRS) {
        sim__errs[sim__nerrs].kind = kind;
        sim__fd_path(fd, sim__errs[sim__nerrs].path, sizeof sim__errs[0].path);
        sim__nerrs++;
    }
}

SIM__UNUSED static void sim__dirname(const char *path, char *out, size_t cap) {
    snprintf(out, cap, "%s", path);
    char *sl = strrchr(out, '/');
    if (sl && sl != out) *sl = 0; else snprintf(out, cap, "%s", sl ? "/" : ".");
}

/* Caller holds the lock: keep path's file alive in the graveyard. */
SIM__UNUSED static int sim__bury(sim_disk *d, const char *path, char *grave, size_t cap) {
    grave[0] = 0;
    if (!d->grave[0]) return 0;
    snprintf(grave, cap, "%s/%llu", d->grave, (unsigned long long)++d->ngrave);
    if (link(path, grave) != 0) { grave[0] = 0; return -1; }
    return 0;
}

SIM__UNUSED static sim_dirop *sim__dirop(sim_disk *d, int kind, const char *a, const char *b) {
    if (d->ndirops == d->capdirops) {
        d->capdirops = d->capdirops ? 2 * d->capdirops : 64;
        d->dirops = (sim_dirop *)realloc(d->dirops, (size_t)d->capdirops * sizeof *d->dirops);
        if (!d->dirops) abort();
    }
    sim_dirop *o = &d->dirops[d->ndirops++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    snprintf(o->a, sizeof o->a, "%s", a);
    if (b) snprintf(o->b, sizeof o->b, "%s", b);
    sim__dirname(b ? b : a, o->dir, sizeof o->dir);
    d->st.dir_ops++;
    return o;
}

/* ---- the state after the cut ---- */
SIM__UNUSED static int sim__read_all(const char *path, uint8_t **out, uint64_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0) { close(fd); return -1; }
    uint8_t *p = (uint8_t *)malloc((size_t)sb.st_size + 1);
    uint64_t got = 0;
    while (p && got < (uint64_t)sb.st_size) {
        ssize_t n = pread(fd, p + got, (size_t)((uint64_t)sb.st_size - got), (off_t)got);
        if (n <= 0) break;
        got += (uint64_t)n;
    }
    close(fd);
    if (!p) return -1;
    *out = p; *len = got;
    return 0;
}

SIM__UNUSED static void sim__write_all(const char *path, const uint8_t *p, uint64_t len, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) { fprintf(stderr, "sim_disk: cannot create %s: %s\n", path, strerror(errno)); abort(); }
    uint64_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, p + done, (size_t)(len - done), (off_t)done);
        if (n <= 0) { fprintf(stderr, "sim_disk: cannot write %s\n", path); abort(); }
        done += (uint64_t)n;
    }
    close(fd);
}

/* One file as the cut leaves it: src (current contents; its inode names the
 * image) to dst. */
SIM__UNUSED static void sim__emit(sim_disk *d, const char *src, const char *dst, int mode, uint64_t *rng) {
    struct stat sb;
    uint8_t *cur; uint64_t clen;
    if (stat(src, &sb) != 0 || sim__read_all(src, &cur, &clen) != 0) return;
    sim_img *im = sim__img_find(d, sb.st_dev, sb.st_ino, 0);
    for (int i = 0; i < d->nfiles && im; i++)          /* written through plg_io: sim_cut made the file what survived */
        if (d->files[i].dev == sb.st_dev && d->files[i].ino == sb.st_ino) im = NULL;
    size_t nl = strlen(src);
    if (!im) {
        int how = 0;                                   /* 0 copy, 1 drop, 2 torn */
        if (nl > 4 && !strcmp(src + nl - 4, ".tmp")) how = mode == 1 ? 1 : mode == 2 ? 0 : (int)(sim__r(rng) % 3);
        if (how == 1) { d->st.tmp_dropped++; free(cur); return; }
        if (how == 2) { clen = clen ? (sim__r(rng) % ((clen + SIM_SECTOR - 1) / SIM_SECTOR)) * SIM_SECTOR : 0; d->st.tmp_torn++; }
        sim__write_all(dst, cur, clen, sb.st_mode & 0777);
        free(cur);
        return;
    }
    uint64_t size = clen;
    if (clen != im->size) {
        int revert = mode == 1 || (mode == 0 && (sim__r(rng) & 1));
        if (revert) { size = im->size; d->st.img_sizes_reverted++; }
    }
    uint8_t *out = (uint8_t *)calloc(1, (size_t)size + 1);
    if (!out) abort();
    for (uint64_t s = 0; s < size; s += SIM_SECTOR) {
        uint64_t n = size - s < SIM_SECTOR ? size - s : SIM_SECTOR;
        uint8_t nw[SIM_SECTOR], old[SIM_SECTOR];
        memset(nw, 0, sizeof nw); memset(old, 0, sizeof old);
        if (s < clen) memcpy(nw, cur + s, clen - s < n ? clen - s : n);
        if (s < im->size) memcpy(old, im->data + s, im->size - s < n ? im->size - s : n);
        const uint8_t *pick = nw;
        if (memcmp(nw, old, n) != 0) {
            d->st.img_sectors_new++;
            int keep = mode == 2 || (mode == 0 && (sim__r(rng) & 1));
            if (keep) d->st.img_sectors_kept++; else { d->st.img_sectors_reverted++; pick = old; }
        }
        memcpy(out + s, pick, n);
    }
    sim__write_all(dst, out, size, sb.st_mode & 0777);
    free(out); free(cur);
}

SIM__UNUSED static int sim__cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

SIM__UNUSED static void sim__build_tree(sim_disk *d, const char *src, const char *dst, int mode, uint64_t *rng) {
    mkdir(dst, 0755);
    DIR *dir = opendir(src);
    if (!dir) return;
    char *names[4096]; int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL && n < 4096)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names[n++] = strdup(e->d_name);
    closedir(dir);
    qsort(names, (size_t)n, sizeof names[0], sim__cmpstr);     /* same order, same choices */
    for (int i = 0; i < n; i++) {
        char s[1024], t[1024];
        struct stat sb;
        snprintf(s, sizeof s, "%s/%s", src, names[i]);
        snprintf(t, sizeof t, "%s/%s", dst, names[i]);
        if (lstat(s, &sb) == 0) {
            if (S_ISDIR(sb.st_mode)) sim__build_tree(d, s, t, mode, rng);
            else if (S_ISREG(sb.st_mode)) sim__emit(d, s, t, mode, rng);
        }
        free(names[i]);
    }
}

/* src's path under dst (src must be the prefix the store used), or 0. */
SIM__UNUSED static int sim__map_path(const char *src, const char *dst, const char *path, char *out, size_t cap) {
    size_t n = strlen(src);
    if (strncmp(path, src, n) != 0 || (path[n] != '/' && path[n] != 0)) return 0;
    snprintf(out, cap, "%s%s", dst, path + n);
    return 1;
}

/* The state after a power cut of the files under src (the data directory as
 * the store named it), built in dst (must not exist). The disk must be dead. */
SIM__UNUSED static void sim_img_build(sim_disk *d, const char *src, const char *dst, int mode, uint64_t seed) {
    uint64_t rng = seed ^ 0xC0FFEE123ull;
    SIM_TRACE("img_build %s -> %s mode %d\n", src, dst, mode);
    sim__build_tree(d, src, dst, mode, &rng);
    /* directory operations not yet durable: per directory, a suffix is undone */
    for (int i = 0; i < d->ndirops; i++) {
        sim_dirop *o = &d->dirops[i];
        if (o->done) continue;
        int pending = 0;
        for (int j = i; j < d->ndirops; j++) if (!d->dirops[j].done && !strcmp(d->dirops[j].dir, o->dir)) pending++;
        int keep = mode == 2 ? pending : mode == 1 ? 0 : (int)(sim__r(&rng) % (uint64_t)(pending + 1));
        int idx[4096], k = 0;
        for (int j = i; j < d->ndirops && k < 4096; j++)
            if (!d->dirops[j].done && !strcmp(d->dirops[j].dir, o->dir)) { d->dirops[j].done = 1; idx[k++] = j; }
        for (int q = k - 1; q >= keep; q--) {          /* undo, latest first */
            sim_dirop *u = &d->dirops[idx[q]];
            char pa[1200], pb[1200];
            SIM_TRACE("undo %s %s %s\n", u->kind == SIM_DIR_RENAME ? "rename" : "unlink", u->a, u->b);
            if (u->kind == SIM_DIR_RENAME && sim__map_path(src, dst, u->a, pa, sizeof pa) && sim__map_path(src, dst, u->b, pb, sizeof pb)) {
                (void)syscall(SYS_renameat, AT_FDCWD, pb, AT_FDCWD, pa);   /* not the interposed rename: the disk is off */
                if (u->grave_b[0]) sim__emit(d, u->grave_b, pb, mode, &rng);
            } else if (u->kind == SIM_DIR_UNLINK && u->grave_a[0] && sim__map_path(src, dst, u->a, pa, sizeof pa)) {
                sim__emit(d, u->grave_a, pa, mode, &rng);
            }
            d->st.dir_ops_undone++;
        }
    }
}

/* Every file under dir is durable as it is now (a store closed cleanly). */
SIM__UNUSED static void sim_img_adopt(sim_disk *d, const char *dir) {
    DIR *dh = opendir(dir);
    if (!dh) return;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (lstat(p, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) { sim_img_adopt(d, p); continue; }
        if (!S_ISREG(sb.st_mode)) continue;
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        pthread_mutex_lock(&d->mu);
        sim__img_capture(d, fd, 0, UINT64_MAX / 2);
        pthread_mutex_unlock(&d->mu);
        close(fd);
    }
    closedir(dh);
}

#ifdef SIM_DISK_INTERPOSE_SYNC
static void sim__img_external_sync(sim_disk *d, int fd) {
    struct stat sb;
    char p[64];
    if (fstat(fd, &sb) != 0) return;
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    int rfd = open(p, O_RDONLY | O_CLOEXEC);      /* the caller's fd may be write-only */
    if (rfd < 0) return;
    pthread_mutex_lock(&d->mu);
    if (!d->dead && sim__img_find(d, sb.st_dev, sb.st_ino, 0)) {
        SIM_TRACE("external sync: the image of fd %d captured\n", fd);
        sim__img_capture(d, rfd, 0, UINT64_MAX / 2);
    }
    pthread_mutex_unlock(&d->mu);
    close(rfd);
}
#endif

/* The injected errors delivered so far: kind (SIM_ERR_*) and file. */
SIM__UNUSED static int sim_img_errors(const sim_errrec **out) { *out = sim__errs; return sim__nerrs; }

#if defined(PINNACLE_PERSIST_H) && defined(PINNACLE_PERSIST_TEST_IO)
#define SIM__PP_ENTER(d) pthread_mutex_lock(&(d)->mu); sim__pp_tick(d); \
    if ((d)->dead) { (d)->st.ops_after_cut++; pthread_mutex_unlock(&(d)->mu); errno = EIO; return -1; }
#define SIM__PP_TRACE(op, fd, a, b, rc) do { if (sim__trace < 0) sim__trace = getenv("SIM_TRACE") != NULL; \
    if (sim__trace) { char p_[512]; sim__fd_path(fd, p_, sizeof p_); \
        fprintf(stderr, "sim: pp %s %s %lld %lld -> %d\n", op, p_, (long long)(a), (long long)(b), rc); } } while (0)
#define SIM__PP_TRACEP(op, pa, pb, rc) do { if (sim__trace < 0) sim__trace = getenv("SIM_TRACE") != NULL; \
    if (sim__trace) fprintf(stderr, "sim: pp %s %s %s -> %d\n", op, pa, pb ? pb : "", rc); } while (0)
SIM__UNUSED static void sim__pp_tick(sim_disk *d) {   /* caller holds the lock */
    if (d->cut_at_op && !d->dead && ++d->pp_ops >= d->cut_at_op) {
        SIM_TRACE("power cut at pp operation %llu\n", (unsigned long long)d->pp_ops);
        sim__cut_locked(d, d->cut_at_mode);
    }
}
SIM__UNUSED static int sim__pp_msync(void *ctx, int fd, void *addr, size_t len, int64_t off) {
    sim_disk *d = (sim_disk *)ctx;
    (void)addr;
    SIM__PP_ENTER(d);
    int rc = 0;
    if (sim_chance(d, d->cfg.p_sync_eio)) { d->st.inj_sync_eio++; sim__img_err(d, fd, SIM_ERR_MSYNC, EIO); rc = EIO; }
    else sim__img_capture(d, fd, (uint64_t)off, len);
    SIM__PP_TRACE("msync", fd, off, len, rc);
    pthread_mutex_unlock(&d->mu);
    if (rc) { errno = rc; return -1; }
    return 0;
}
SIM__UNUSED static int sim__pp_fdatasync(void *ctx, int fd) {
    sim_disk *d = (sim_disk *)ctx;
    SIM__PP_ENTER(d);
    int rc = 0;
    if (sim_chance(d, d->cfg.p_sync_eio)) { d->st.inj_sync_eio++; sim__img_err(d, fd, SIM_ERR_FDATASYNC, EIO); rc = EIO; }
    else sim__img_capture(d, fd, 0, UINT64_MAX / 2);
    SIM__PP_TRACE("fdatasync", fd, 0, 0, rc);
    pthread_mutex_unlock(&d->mu);
    if (rc) { errno = rc; return -1; }
    return 0;
}
SIM__UNUSED static int sim__pp_fallocate(void *ctx, int fd, int64_t off, int64_t len) {
    sim_disk *d = (sim_disk *)ctx;
    SIM__PP_ENTER(d);
    int rc = 0;
    if (sim_chance(d, d->cfg.p_grow_enospc)) { d->st.inj_grow_enospc++; sim__img_err(d, fd, SIM_ERR_GROW, ENOSPC); rc = ENOSPC; }
    else if (fallocate(fd, 0, (off_t)off, (off_t)len) != 0) rc = errno;
    SIM__PP_TRACE("fallocate", fd, off, len, rc);
    pthread_mutex_unlock(&d->mu);
    if (rc) { errno = rc; return -1; }
    return 0;
}
SIM__UNUSED static int sim__pp_ftruncate(void *ctx, int fd, int64_t len) {
    sim_disk *d = (sim_disk *)ctx;
    SIM__PP_ENTER(d);
    int rc = ftruncate(fd, (off_t)len) != 0 ? errno : 0;
    SIM__PP_TRACE("ftruncate", fd, len, 0, rc);
    pthread_mutex_unlock(&d->mu);
    if (rc) { errno = rc; return -1; }
    return 0;
}
SIM__UNUSED static int64_t sim__pp_pwrite(void *ctx, int fd, const void *buf, size_t len, int64_t off) {
    sim_disk *d = (sim_disk *)ctx;
    SIM__PP_ENTER(d);
    size_t n = len;
    if (len > SIM_SECTOR && sim_chance(d, d->cfg.p_write_short)) {   /* whole sectors missing at the end */
        size_t ns = (len + SIM_SECTOR - 1) / SIM_SECTOR;
        n = (1 + (size_t)(sim_rand(d) % (ns - 1))) * SIM_SECTOR;
        d->st.inj_short++; sim__img_err(d, fd, SIM_ERR_SHORT, SIM_ESHORT);
    }
    ssize_t w = pwrite(fd, buf, n, (off_t)off);
    int e = errno;
    SIM__PP_TRACE("pwrite", fd, off, len, (int)w);
    pthread_mutex_unlock(&d->mu);
    errno = e;
    return (int64_t)w;
}
SIM__UNUSED static int sim__pp_rename(void *ctx, const char *from, const char *to) {
    sim_disk *d = (sim_disk *)ctx;
    SIM__PP_ENTER(d);
    char grave[1100];
    if (access(to, F_OK) == 0) sim__bury(d, to, grave, sizeof grave); else grave[0] = 0;
    int rc = syscall(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to) != 0 ? errno : 0;   /* (not the interposed rename: the lock is held) */
    if (!rc) { sim_dirop *o = sim__dirop(d, SIM_DIR_RENAME, from, to); snprintf(o->grave_b, sizeof o->grave_b, "%s", grave); }
    SIM__PP_TRACEP("rename", from, to, rc);
    pthread_mutex_unlock(&d->mu);
    if (rc) { errno = rc; return -1; }
    return 0;
}
SIM__UNUSED static int sim__pp_unlink(void *ctx, const char *path) {
    sim_disk *d = (sim_disk *)ctx;
    SIM__PP_ENTER(d);
    char grave[1100];
    sim__bury(d, path, grave, sizeof grave);
    int rc = syscall(SYS_unlinkat, AT_FDCWD, path, 0) != 0 ? errno : 0;
    if (!rc) { sim_dirop *o = sim__dirop(d, SIM_DIR_UNLINK, path, NULL); snprintf(o->grave_a, sizeof o->grave_a, "%s", grave); }
    SIM__PP_TRACEP("unlink", path, (const char *)NULL, rc);
    pthread_mutex_unlock(&d->mu);
    if (rc) { errno = rc; return -1; }
    return 0;
}
SIM__UNUSED static int sim__pp_fsync_dir(void *ctx, const char *dir) {
    sim_disk *d = (sim_disk *)ctx;
    pthread_mutex_lock(&d->mu);
    sim__pp_tick(d);
    int rc = 0;
    if (d->dead) { d->st.ops_after_cut++; rc = PLG_EIO; }
    else if (sim_chance(d, d->cfg.p_sync_eio)) { d->st.inj_dir_eio++; rc = PLG_EIO; }
    else {
        char nd[512];
        snprintf(nd, sizeof nd, "%s", dir);
        size_t l = strlen(nd);
        while (l > 1 && nd[l - 1] == '/') nd[--l] = 0;
        for (int i = 0; i < d->ndirops; i++) if (!strcmp(d->dirops[i].dir, nd)) d->dirops[i].done = 1;
        int w = 0;                                     /* forget what is durable */
        for (int i = 0; i < d->ndirops; i++) if (!d->dirops[i].done) d->dirops[w++] = d->dirops[i];
        d->ndirops = w;
    }
    SIM__PP_TRACEP("fsync_dir", dir, (const char *)NULL, rc);
    pthread_mutex_unlock(&d->mu);
    return rc;
}
/* A file replaced durably (snapshot, market data, connection state): every
 * step of plg_write_file_durable_ops is an operation of this disk. The temp
 * file is pending until its fsync (a cut may leave it missing or torn), the
 * rename until the directory's fsync (a cut may undo it: the old file comes
 * back), as the model above says for any file. */
SIM__UNUSED static int sim__fop_open(void *ctx, const char *path, int flags, unsigned mode) {
    sim_disk *d = (sim_disk *)ctx;
    SIM__PP_ENTER(d);
    int fd = open(path, (flags & ~O_ACCMODE) | O_RDWR, (mode_t)mode), e = errno;   /* readable: its sync reads it */
    SIM__PP_TRACEP("open", path, (const char *)NULL, fd);
    pthread_mutex_unlock(&d->mu);
    errno = e;
    return fd;
}
SIM__UNUSED static int64_t sim__fop_pwrite(void *ctx, int fd, const void *buf, size_t len, int64_t off) {
    sim_disk *d = (sim_disk *)ctx;
    SIM__PP_ENTER(d);
    int64_t w;
    int e;
    if (sim_chance(d, d->cfg.p_file_enospc)) {         /* the disk filled up half way */
        w = (int64_t)pwrite(fd, buf, len / 2, (off_t)off);
        d->st.inj_file_enospc++;
        w = -1; e = ENOSPC;
    } else {
        w = (int64_t)pwrite(fd, buf, len, (off_t)off); e = errno;
    }
    SIM__PP_TRACE("file pwrite", fd, off, len, (int)w);
    pthread_mutex_unlock(&d->mu);
    errno = e;
    return w;
}
SIM__UNUSED static int sim__fop_fsync(void *ctx, int fd) {
    sim_disk *d = (sim_disk *)ctx;
    SIM__PP_ENTER(d);
    sim__img_capture(d, fd, 0, UINT64_MAX / 2);        /* a new file: its first sync makes it durable */
    SIM__PP_TRACE("file fsync", fd, 0, 0, 0);
    pthread_mutex_unlock(&d->mu);
    return 0;
}
SIM__UNUSED static int sim__fop_close(void *ctx, int fd) { (void)ctx; return close(fd); }
SIM__UNUSED static int sim__fop_fsync_dir(void *ctx, const char *dir) {
    int rc = sim__pp_fsync_dir(ctx, dir);
    if (rc) { errno = EIO; return -1; }
    return 0;
}
SIM__UNUSED static int sim__pp_write_file_durable(void *ctx, const char *path, const void *data, size_t len, unsigned mode) {
    plg_file_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.ctx = ctx;
    ops.open = sim__fop_open; ops.pwrite = sim__fop_pwrite; ops.fsync = sim__fop_fsync; ops.close = sim__fop_close;
    ops.rename = sim__pp_rename; ops.unlink = sim__pp_unlink; ops.fsync_dir = sim__fop_fsync_dir;
    return plg_write_file_durable_ops(&ops, path, data, len, mode);
}
SIM__UNUSED static void sim_pp_io(sim_disk *d, pp_io *io) {
    memset(io, 0, sizeof *io);
    io->ctx = d;
    io->msync = sim__pp_msync; io->fdatasync = sim__pp_fdatasync; io->fallocate = sim__pp_fallocate;
    io->ftruncate = sim__pp_ftruncate; io->pwrite = sim__pp_pwrite; io->rename = sim__pp_rename;
    io->unlink = sim__pp_unlink; io->fsync_dir = sim__pp_fsync_dir; io->write_file_durable = sim__pp_write_file_durable;
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

SIM__UNUSED static void sim_img_print_stats(const sim_stats *s, FILE *f) {
    fprintf(f, "sim images: %llu files, %llu syncs captured; at the cuts %llu sectors differed from the durable image: "
            "%llu kept, %llu reverted; %llu sizes reverted; %llu renames/unlinks, %llu undone; temp files %llu dropped, "
            "%llu torn; injected: %llu sync EIO, %llu dir-fsync EIO, %llu growth ENOSPC, %llu file ENOSPC, %llu short writes\n",
            (unsigned long long)s->img_files, (unsigned long long)s->img_syncs, (unsigned long long)s->img_sectors_new,
            (unsigned long long)s->img_sectors_kept, (unsigned long long)s->img_sectors_reverted,
            (unsigned long long)s->img_sizes_reverted, (unsigned long long)s->dir_ops, (unsigned long long)s->dir_ops_undone,
            (unsigned long long)s->tmp_dropped, (unsigned long long)s->tmp_torn, (unsigned long long)s->inj_sync_eio,
            (unsigned long long)s->inj_dir_eio, (unsigned long long)s->inj_grow_enospc, (unsigned long long)s->inj_file_enospc,
            (unsigned long long)s->inj_short);
}

static void sim_stats_add(sim_stats *a, const sim_stats *b) {
    const uint64_t *src = (const uint64_t *)b; uint64_t *dst = (uint64_t *)a;
    for (size_t i = 0; i < sizeof *a / sizeof(uint64_t); i++) dst[i] += src[i];
}
#endif
