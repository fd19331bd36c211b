/* SPDX-License-Identifier: MIT */
/* picolog_raft.h - v0.1.0 - replicate a picolog log through Raft (C-Raft / libraft)
 *
 * A trading engine proposes a record from its hot thread (a copy into a
 * lock-free single-producer ring, no syscall), a loop thread hands it to
 * libraft, and the engine learns the record's Raft index once a majority of
 * the cluster holds it durably: acknowledge the trade then, not before. Every
 * node applies the committed records in the same order through a callback.
 * The consensus engine is libraft (Debian's libraft-dev 0.15, canonical/raft;
 * the same v0 API as cowsql/raft): this header writes no protocol of its own.
 *
 * DO THIS in exactly one C or C++ file:
 *
 *     #define PICOLOG_IMPLEMENTATION        // (once, anywhere in the program)
 *     #define PICOLOG_RAFT_IMPLEMENTATION
 *     #include "picolog.h"
 *     #include "picolog_raft.h"
 *
 * and link with -lraft -luv -luring -lpthread. Only programs that include
 * this header need libraft and libuv; picolog.h stays free of them.
 *
 *     plr_node_config c = {0};
 *     c.id = 1; c.dir = "node1";                       // a directory per node
 *     c.n_servers = 3;
 *     c.servers[0].id = 1; c.servers[0].address = "127.0.0.1:9001";  // ... 2, 3
 *     c.apply = on_apply;                              // every node, commit order
 *     plr_node *n;
 *     if (plr_node_start(&n, &c) != 0) ...
 *     int64_t ticket = plr_propose(n, &trade, sizeof trade);    // hot path
 *     plr_ack a;
 *     while (plr_next_ack(n, &a) == 1)                 // later, same thread
 *         if (a.status == 0) confirm(a.ticket, a.index);   // committed on a majority
 *     plr_status st; plr_get_status(n, &st);           // role, term, commit, lag
 *     plr_add_server(leader, 4, "127.0.0.1:9004");    // membership (node 4: join = 1)
 *     plr_node_stop(n);
 *
 * ARCHITECTURE
 *   hot path   plr_propose copies the record into an SPSC byte ring and returns
 *              a ticket (1, 2, 3, ...). No lock, no syscall, no allocation.
 *              PLR_EFULL when the ring or the ack window is full.
 *   loop       one thread runs a libuv loop: libraft, its raft_uv timers and
 *              raft_uv_tcp transport, a timer that drains the proposal ring
 *              (every drain_interval_ms, or at once after plr_flush), and a
 *              uv_poll on plg_notify_fd. raft_apply's callback puts
 *              {ticket, index, status} on a second SPSC ring (plr_next_ack).
 *   storage    the storage half of struct raft_io is picolog (plr_io_init):
 *              Raft index == picolog seq; each record is a 16-byte prefix
 *              (term, entry type) and the entry. append completes when
 *              plg_durable covers it; truncate is plg_truncate; a snapshot is
 *              written durably (temp, fsync, rename, directory fsync), then
 *              plg_release (or plg_reset when it replaces the whole log);
 *              term and vote live in raft.meta, replaced the same way. The
 *              network and timer members are raft_uv's, delegated.
 *   signals    plr_node_start ignores SIGPIPE when its disposition is the
 *              default: a peer killed mid-write must not kill this process.
 *   on disk    <dir>/log/ (picolog), <dir>/raft.meta, <dir>/snapshot,
 *              <dir>/uv/ (raft_uv's scratch: probe files only).
 *   processes  one node per process in production: libraft 0.15's TCP
 *              transport parses addresses with strtok, which is not
 *              thread-safe, so nodes in one process (the tests, the bench)
 *              can race there (ThreadSanitizer saw it; tests/tsan.supp).
 *
 * GUARANTEE
 *   An ack with status 0 means: the record is committed, i.e. durable on a
 *   majority of the voters. Any later leader holds it, so a failover (kill -9,
 *   power loss of a minority) loses nothing acknowledged. A record whose ack
 *   is PLR_ELEADERSHIP may or may not commit later (the outcome is unknown, as
 *   for any Raft client); one with PLR_ENOTLEADER was never in the log.
 *
 * LIBRAFT 0.15 CAVEAT (upstream a54636b, "election: only consider persisted
 * state when running elections"): 0.15 asks for votes with its in-memory last
 * index, which includes entries not yet durable. This header rewrites every
 * outgoing RequestVote so that it claims only the durable last index and its
 * term (a candidate asks for less than it has: always safe, at worst an
 * election is lost and retried). plr_io_stats.votes_clamped counts them.
 *
 * ACK WINDOW (plr_node_config.ack_window, default 4096): with 65536 records
 * in flight, bench/raft_bench (3 nodes in one process, 100-byte records, 2
 * cores) acknowledged nothing for 1.3 s, then a handful, then the rest only
 * once proposals stopped. Measured on the leader meanwhile: its own log was
 * durable to its last index (26k-44k), its commit index and both followers'
 * match index stayed near 100 (+16 per ~0.5 s) while the followers had the
 * entries durable (up to 28k): their results were not being taken in by the
 * leader. Each drain of the full 1 MiB proposal ring (~8,700 records) took
 * 0.28-0.45 s in raft_apply (libraft 0.15 appends and sends each record on
 * its own: ~40 us each here), and the ring refilled during each drain,
 * because the engine stops only when the window is full. So the loop ran
 * back-to-back drains and the leader's replication progress (follower
 * results, commit) nearly stopped. Capping a drain at 256 records did not
 * remove the stall, so the exact libraft-side cause is not pinned down. A
 * window of 4096 bounds the work queued ahead of the replication progress;
 * there, acks flowed every 0.25 s at ~17,000 records/s.
 *
 * COMPILE-TIME OPTIONS
 *   PICOLOG_RAFT_STATIC   every function static
 *
 * CONTENTS  errors, io (storage adapter), node (engine API); implementation:
 *   >>util >>meta >>snapfile >>queue >>io >>rings >>node
 *
 * LICENSE: MIT, see the end of the file.
 */
#if defined(PICOLOG_RAFT_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
#ifndef PICOLOG_RAFT_H
#define PICOLOG_RAFT_H

#include <stddef.h>
#include <stdint.h>
#include <raft.h>
#include "picolog.h"
struct uv_loop_s;            /* <raft/uv.h> (libuv) only in the implementation */

#ifdef PICOLOG_RAFT_STATIC
#define PLRDEF static
#else
#define PLRDEF extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes: -30401..-30499 (picolog.h -301xx, pinnacle -302xx, vault -303xx). */
#define PLR_ERRORS(X) \
    X(PLR_EINVAL,      -30401, "invalid argument or configuration") \
    X(PLR_ENOMEM,      -30402, "out of memory") \
    X(PLR_ELOG,        -30403, "the picolog log failed (plr_log_error says why)") \
    X(PLR_ECORRUPT,    -30404, "raft.meta or the snapshot file is damaged, or the log does not follow the snapshot") \
    X(PLR_EIO,         -30405, "file I/O failed") \
    X(PLR_ERAFT,       -30406, "libraft returned an error (see the node's raft_errmsg)") \
    X(PLR_EFULL,       -30407, "proposal ring or ack window full: nothing proposed") \
    X(PLR_ENOTLEADER,  -30408, "this node is not the leader: the record was not appended") \
    X(PLR_ETOOBIG,     -30409, "record larger than the proposal ring can hold") \
    X(PLR_ECLOSED,     -30410, "the node is stopping") \
    X(PLR_ELEADERSHIP, -30411, "leadership lost before commit: the record may or may not be committed later") \
    X(PLR_EUV,         -30412, "libuv setup failed")

enum {
#define PLR__ENUM(name, val, msg) name = (val),
    PLR_OK = 0,
    PLR_ERRORS(PLR__ENUM)
#undef PLR__ENUM
};
PLRDEF const char *plr_strerror(int err);

/* ---- storage adapter: struct raft_io on picolog ---------------------------- */
typedef struct plr_io_config {
    const char *dir;          /* node directory (created if missing) */
    plg_config log;           /* picolog settings; .path is ignored (dir/log) */
    struct uv_loop_s *loop;   /* the loop the net io and raft run on */
    struct raft_io *net;      /* network + timers (raft_uv); init'ed, not started */
    /* test hook: return nonzero to drop a message to server `to` (a partition) */
    int (*drop_send)(void *user, raft_id to);
    void *drop_user;
} plr_io_config;

typedef struct plr_io_stats {
    uint64_t appends, entries, truncates, resets, snapshots_put, releases;
    uint64_t votes_clamped;   /* RequestVotes rewritten to claim durable state only */
    uint64_t sends_dropped;   /* by drop_send */
    uint64_t durable;         /* plg_durable of the log */
    int      log_error;       /* plg_error of the log */
} plr_io_stats;

/* Fill *io (zeroed by the caller) with picolog storage + cfg->net's network and
 * timers. raft_init(r, io, ...) then calls io->init, which opens the log.
 * After raft_close's callback has fired, call plr_io_close(io). */
PLRDEF int  plr_io_init(struct raft_io *io, const plr_io_config *cfg);
PLRDEF void plr_io_close(struct raft_io *io);
PLRDEF void plr_io_get_stats(struct raft_io *io, plr_io_stats *out);
PLRDEF plg_log *plr_io_log(struct raft_io *io);
PLRDEF int  plr_log_error(struct raft_io *io);

/* ---- engine API ------------------------------------------------------------ */
#define PLR_MAX_SERVERS 7

typedef struct plr_ack { uint64_t ticket; uint64_t index; int status; } plr_ack;

typedef struct plr_follower { uint64_t id; uint64_t match_index; uint64_t lag; } plr_follower;
typedef struct plr_status {
    int      role;            /* RAFT_FOLLOWER, RAFT_CANDIDATE, RAFT_LEADER, RAFT_UNAVAILABLE */
    uint64_t term, leader_id, commit_index, last_applied, last_index, durable;
    unsigned n_followers;     /* filled on the leader only */
    plr_follower followers[PLR_MAX_SERVERS];
    uint64_t proposed, acked; /* tickets handed out / acks delivered */
    int      error;           /* 0, or why the node stopped working */
} plr_status;

typedef struct plr_node_config {
    uint64_t id;              /* this node, one of servers[].id */
    const char *dir;          /* this node's directory */
    unsigned n_servers;       /* bootstrap configuration (all voters) */
    struct { uint64_t id; const char *address; } servers[PLR_MAX_SERVERS];
    size_t   ring_capacity;   /* proposal ring bytes, power of two; default 1 MiB */
    uint32_t ack_window;      /* proposals in flight, power of two; default 4096 (65536 measured far slower) */
    unsigned drain_interval_ms;      /* proposal ring poll; default 1 */
    unsigned election_timeout_ms;    /* default 1000 */
    unsigned heartbeat_timeout_ms;   /* default 100 */
    unsigned snapshot_threshold;     /* default 1024 entries */
    unsigned snapshot_trailing;      /* default 128 entries */
    plg_config log;                  /* picolog settings (path ignored) */
    void *user;
    /* loop thread, every node, commit order */
    void (*apply)(void *user, uint64_t index, const void *data, uint32_t len);
    /* the state machine as bytes (malloc'd; the node frees it), and back */
    int  (*snapshot)(void *user, void **data, size_t *len);
    int  (*restore)(void *user, const void *data, size_t len);
    void (*leader_changed)(void *user, uint64_t leader_id, uint64_t term, int is_self);  /* loop thread */
    int  (*drop_send)(void *user, uint64_t to_id);   /* test hook: partition */
    int  join;                /* 1: never bootstrap; wait to be added (plr_add_server on the leader) */
} plr_node_config;

typedef struct plr_node plr_node;
PLRDEF int     plr_node_start(plr_node **out, const plr_node_config *cfg);
PLRDEF int64_t plr_propose(plr_node *n, const void *data, uint32_t len); /* ticket, or < 0 */
PLRDEF void    plr_flush(plr_node *n);  /* wake the loop now (one syscall); optional */
PLRDEF int     plr_next_ack(plr_node *n, plr_ack *out);  /* 1 = an ack, 0 = none yet */
PLRDEF void    plr_get_status(plr_node *n, plr_status *out);
PLRDEF int     plr_node_stop(plr_node *n);
/* Membership, on the leader, from any thread but the loop's; block until the
 * change is committed (or failed). add: the new node (started with join = 1)
 * catches up, then becomes a voter. */
PLRDEF int     plr_add_server(plr_node *n, uint64_t id, const char *address);
PLRDEF int     plr_remove_server(plr_node *n, uint64_t id);

#ifdef __cplusplus
}
#endif
#endif /* PICOLOG_RAFT_H */

/* ========================================================================== */
#ifdef PICOLOG_RAFT_IMPLEMENTATION
#ifndef PICOLOG_RAFT_IMPLEMENTED
#define PICOLOG_RAFT_IMPLEMENTED

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <assert.h>
#include <raft/uv.h>
#ifndef __cplusplus
#include <stdalign.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

PLRDEF const char *plr_strerror(int err) {
    switch (err) {
    case 0: return "success";
#define PLR__MSG(name, val, msg) case val: return msg;
    PLR_ERRORS(PLR__MSG)
#undef PLR__MSG
    default: return err > -30200 && err <= -30100 ? plg_strerror(err) : "unknown error";
    }
}

/* >>util ------------------------------------------------------------------- */
static void plr__put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void plr__put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint64_t plr__get64(const unsigned char *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint32_t plr__get32(const unsigned char *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }

static int plr__read_file(const char *path, unsigned char **out, size_t *len) {
    *out = NULL; *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 1 : PLR_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0) { close(fd); return PLR_EIO; }
    size_t n = (size_t)st.st_size, got = 0;
    unsigned char *b = (unsigned char *)malloc(n ? n : 1);
    if (!b) { close(fd); return PLR_ENOMEM; }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { free(b); close(fd); return PLR_EIO; }
        got += (size_t)r;
    }
    close(fd);
    *out = b; *len = n;
    return 0;
}

/* >>meta: raft.meta = "PLRMETA1" term vote crc32c(previous 24 bytes) ---------- */
#define PLR__META_BYTES 28
static int plr__meta_write(const char *dir, raft_term term, raft_id vote) {
    char path[PATH_MAX];
    unsigned char b[PLR__META_BYTES];
    memcpy(b, "PLRMETA1", 8); plr__put64(b + 8, term); plr__put64(b + 16, vote);
    plr__put32(b + 24, plg_crc32c(0, b, 24));
    snprintf(path, sizeof path, "%s/raft.meta", dir);
    return plg_write_file_durable(path, b, sizeof b, 0644) ? PLR_EIO : 0;
}
static int plr__meta_read(const char *dir, raft_term *term, raft_id *vote) {
    char path[PATH_MAX];
    unsigned char *b; size_t n;
    snprintf(path, sizeof path, "%s/raft.meta", dir);
    *term = 0; *vote = 0;
    int rc = plr__read_file(path, &b, &n);
    if (rc == 1) return 0;                      /* never written: term 0, no vote */
    if (rc) return rc;
    rc = 0;
    if (n != PLR__META_BYTES || memcmp(b, "PLRMETA1", 8) || plr__get32(b + 24) != plg_crc32c(0, b, 24)) rc = PLR_ECORRUPT;
    else { *term = plr__get64(b + 8); *vote = plr__get64(b + 16); }
    free(b);
    return rc;
}

/* >>snapfile: "PLRSNAP1" index term conf_index conf_len(4) pad(4) data_len(8)
 *             conf data crc32c(everything before) -------------------------------- */
#define PLR__SNAP_HDR 48
static size_t plr__conf_size(const struct raft_configuration *c) {
    size_t n = 4;
    for (unsigned i = 0; i < c->n; i++) n += 16 + strlen(c->servers[i].address);
    return n;
}
static void plr__conf_put(unsigned char *p, const struct raft_configuration *c) {
    plr__put32(p, c->n); p += 4;
    for (unsigned i = 0; i < c->n; i++) {
        size_t al = strlen(c->servers[i].address);
        plr__put64(p, c->servers[i].id); plr__put32(p + 8, (uint32_t)c->servers[i].role);
        plr__put32(p + 12, (uint32_t)al); memcpy(p + 16, c->servers[i].address, al);
        p += 16 + al;
    }
}
static int plr__conf_get(const unsigned char *p, size_t len, struct raft_configuration *c) {
    raft_configuration_init(c);
    if (len < 4) return PLR_ECORRUPT;
    uint32_t n = plr__get32(p); size_t off = 4;
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < 16) goto bad;
        uint64_t id = plr__get64(p + off); int role = (int)plr__get32(p + off + 8);
        uint32_t al = plr__get32(p + off + 12);
        if (al > 1024 || len - off - 16 < al) goto bad;
        char addr[1025];
        memcpy(addr, p + off + 16, al); addr[al] = 0;
        if (raft_configuration_add(c, id, addr, role) != 0) goto bad;
        off += 16 + al;
    }
    if (off != len) goto bad;
    return 0;
bad:
    raft_configuration_close(c);
    raft_configuration_init(c);
    return PLR_ECORRUPT;
}

static int plr__snap_write(const char *dir, const struct raft_snapshot *s) {
    size_t cl = plr__conf_size(&s->configuration), dl = 0;
    for (unsigned i = 0; i < s->n_bufs; i++) dl += s->bufs[i].len;
    size_t total = PLR__SNAP_HDR + cl + dl + 4;
    unsigned char *b = (unsigned char *)malloc(total);
    if (!b) return PLR_ENOMEM;
    memcpy(b, "PLRSNAP1", 8); plr__put64(b + 8, s->index); plr__put64(b + 16, s->term);
    plr__put64(b + 24, s->configuration_index); plr__put32(b + 32, (uint32_t)cl); plr__put32(b + 36, 0);
    plr__put64(b + 40, dl);
    plr__conf_put(b + PLR__SNAP_HDR, &s->configuration);
    unsigned char *p = b + PLR__SNAP_HDR + cl;
    for (unsigned i = 0; i < s->n_bufs; i++) { if (s->bufs[i].len) memcpy(p, s->bufs[i].base, s->bufs[i].len); p += s->bufs[i].len; }
    plr__put32(p, plg_crc32c(0, b, total - 4));
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/snapshot", dir);
    int rc = plg_write_file_durable(path, b, total, 0644) ? PLR_EIO : 0;
    free(b);
    return rc;
}

/* *out NULL when there is no snapshot. The snapshot is raft_malloc'd, as libraft frees it. */
static int plr__snap_read(const char *dir, struct raft_snapshot **out) {
    char path[PATH_MAX];
    unsigned char *b; size_t n;
    *out = NULL;
    snprintf(path, sizeof path, "%s/snapshot", dir);
    int rc = plr__read_file(path, &b, &n);
    if (rc == 1) return 0;
    if (rc) return rc;
    rc = PLR_ECORRUPT;
    if (n < PLR__SNAP_HDR + 4 || memcmp(b, "PLRSNAP1", 8) || plr__get32(b + n - 4) != plg_crc32c(0, b, n - 4)) goto done;
    {
        uint64_t cl = plr__get32(b + 32), dl = plr__get64(b + 40);
        if (PLR__SNAP_HDR + cl + dl + 4 != n) goto done;
        struct raft_snapshot *s = (struct raft_snapshot *)raft_calloc(1, sizeof *s);
        if (!s) { rc = PLR_ENOMEM; goto done; }
        s->index = plr__get64(b + 8); s->term = plr__get64(b + 16); s->configuration_index = plr__get64(b + 24);
        rc = plr__conf_get(b + PLR__SNAP_HDR, (size_t)cl, &s->configuration);
        if (rc) { raft_free(s); goto done; }
        s->bufs = (struct raft_buffer *)raft_malloc(sizeof *s->bufs);
        void *data = raft_malloc(dl ? (size_t)dl : 1);
        if (!s->bufs || !data) {
            raft_free(s->bufs); raft_free(data); raft_configuration_close(&s->configuration); raft_free(s);
            rc = PLR_ENOMEM; goto done;
        }
        if (dl) memcpy(data, b + PLR__SNAP_HDR + cl, (size_t)dl);
        s->bufs[0].base = data; s->bufs[0].len = (size_t)dl; s->n_bufs = 1;
        *out = s; rc = 0;
    }
done:
    free(b);
    return rc;
}
static void plr__snap_free(struct raft_snapshot *s) {
    if (!s) return;
    for (unsigned i = 0; i < s->n_bufs; i++) raft_free(s->bufs[i].base);
    raft_free(s->bufs);
    raft_configuration_close(&s->configuration);
    raft_free(s);
}

/* >>queue: completions, fired in order on the loop once the log covers `need` */
enum { PLR__DONE_APPEND = 1, PLR__DONE_SNAP_PUT, PLR__DONE_SNAP_GET, PLR__DONE_SEND };
typedef struct plr__done {
    int kind, status;
    uint64_t need;            /* plg_durable must reach this (0: at once, in order) */
    void *req, *cb;
    struct raft_snapshot *snap;
} plr__done;

typedef struct plr__io {
    struct raft_io *io, *net;
    struct uv_loop_s *loop;
    char dir[PATH_MAX - 64];
    plg_config lcfg;
    plg_log *log;
    uv_poll_t poll; uv_async_t kick;
    int handles, poll_on, closing, opened;
    raft_io_close_cb close_cb;
    raft_term term; raft_id vote;
    raft_index snap_index; raft_term snap_term;
    raft_term *terms; uint64_t terms_base, terms_n, terms_cap;   /* term of index terms_base + i */
    plr__done *q; size_t q_head, q_n, q_cap;
    int (*drop_send)(void *user, raft_id to); void *drop_user;
    plr_io_stats st;
    int failed;               /* the log's error once poisoned */
} plr__io;

static int plr__q_push(plr__io *s, const plr__done *d) {
    if (s->q_n == s->q_cap) {
        size_t nc = s->q_cap ? s->q_cap * 2 : 256;
        plr__done *nq = (plr__done *)malloc(nc * sizeof *nq);
        if (!nq) return PLR_ENOMEM;
        for (size_t i = 0; i < s->q_n; i++) nq[i] = s->q[(s->q_head + i) % s->q_cap];
        free(s->q); s->q = nq; s->q_head = 0; s->q_cap = nc;
    }
    s->q[(s->q_head + s->q_n) % s->q_cap] = *d;
    s->q_n++;
    return 0;
}
static void plr__q_clip(plr__io *s, uint64_t upto) {    /* after truncate/reset: nothing above waits */
    for (size_t i = 0; i < s->q_n; i++) {
        plr__done *d = &s->q[(s->q_head + i) % s->q_cap];
        if (d->need > upto) d->need = upto;
    }
}
static void plr__fire(plr__io *s, plr__done d, int status) {
    switch (d.kind) {
    case PLR__DONE_APPEND: ((raft_io_append_cb)d.cb)((struct raft_io_append *)d.req, status); break;
    case PLR__DONE_SNAP_PUT: ((raft_io_snapshot_put_cb)d.cb)((struct raft_io_snapshot_put *)d.req, status); break;
    case PLR__DONE_SEND: ((raft_io_send_cb)d.cb)((struct raft_io_send *)d.req, status); break;
    case PLR__DONE_SNAP_GET:
        if (status) { plr__snap_free(d.snap); d.snap = NULL; }
        ((raft_io_snapshot_get_cb)d.cb)((struct raft_io_snapshot_get *)d.req, d.snap, status);
        break;
    default: assert(0);
    }
    (void)s;
}
/* Fire every completion whose need the durable mark covers, in order. Once
 * the log failed (power cut, EIO), or at close, the rest fails (RAFT_IOERR,
 * RAFT_CANCELED), durable or not: what is not an append first, in order, then
 * the appends from the last to the first. libraft 0.15's leader append
 * callback truncates its in-memory log at the failed request's first index;
 * fired oldest first, the next failed request's index lies beyond the
 * truncated log and libraft frees its entries twice (a crash, seen in
 * test_raft_cluster_sim when the leader loses power). Newest first, each
 * truncation removes exactly that request's entries. */
static void plr__q_run(plr__io *s) {
    int err = s->log ? plg_error(s->log) : 0;
    if (err && !s->failed) s->failed = err;
    while (s->q_n && s->q[s->q_head].need <= (s->log ? plg_durable(s->log) : 0) && !(s->failed || s->closing)) {
        plr__done d = s->q[s->q_head];
        s->q_head = (s->q_head + 1) % s->q_cap; s->q_n--;
        plr__fire(s, d, d.status);
    }
    if (!(s->failed || s->closing) || !s->q_n) return;
    int code = s->closing ? RAFT_CANCELED : RAFT_IOERR;
    size_t n = s->q_n;
    plr__done *rest = (plr__done *)malloc(n * sizeof *rest);
    if (!rest) {                              /* no memory: in order, as well as it goes */
        while (s->q_n) {
            plr__done d = s->q[s->q_head];
            s->q_head = (s->q_head + 1) % s->q_cap; s->q_n--;
            plr__fire(s, d, d.status ? d.status : code);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) rest[i] = s->q[(s->q_head + i) % s->q_cap];
    s->q_head = 0; s->q_n = 0;                /* callbacks may queue more: they see an empty queue */
    for (size_t i = 0; i < n; i++)
        if (rest[i].kind != PLR__DONE_APPEND) plr__fire(s, rest[i], rest[i].status ? rest[i].status : code);
    for (size_t i = n; i-- > 0;)
        if (rest[i].kind == PLR__DONE_APPEND) plr__fire(s, rest[i], code);
    free(rest);
}

/* >>io ---------------------------------------------------------------------- */
#define PLR__PREFIX 16
static plr__io *plr__of(struct raft_io *io) { return (plr__io *)io->impl; }

static int plr__terms_set(plr__io *s, uint64_t index, raft_term t) {
    if (s->terms_n == 0) s->terms_base = index;
    if (index < s->terms_base || index > s->terms_base + s->terms_n) return PLR_EINVAL;
    uint64_t pos = index - s->terms_base;
    if (pos == s->terms_cap) {
        uint64_t nc = s->terms_cap ? s->terms_cap * 2 : 1024;
        raft_term *nt = (raft_term *)realloc(s->terms, (size_t)nc * sizeof *nt);
        if (!nt) return PLR_ENOMEM;
        s->terms = nt; s->terms_cap = nc;
    }
    s->terms[pos] = t;
    s->terms_n = pos + 1;
    return 0;
}
static void plr__terms_drop_below(plr__io *s, uint64_t index) {   /* after a release */
    if (index <= s->terms_base) return;
    uint64_t k = index - s->terms_base;
    if (k > s->terms_n) k = s->terms_n;
    memmove(s->terms, s->terms + k, (size_t)(s->terms_n - k) * sizeof *s->terms);
    s->terms_base += k; s->terms_n -= k;
}
static raft_term plr__term_of(const plr__io *s, uint64_t index) {
    if (index >= s->terms_base && index < s->terms_base + s->terms_n) return s->terms[index - s->terms_base];
    if (index == s->snap_index) return s->snap_term;
    return 0;
}

static void plr__poll_cb(uv_poll_t *h, int status, int events) {
    plr__io *s = (plr__io *)h->data;
    (void)status; (void)events;
    uint64_t v;
    while (read(plg_notify_fd(s->log), &v, sizeof v) > 0) {}
    plr__q_run(s);
}
static void plr__kick_cb(uv_async_t *h) { plr__q_run((plr__io *)h->data); }

static int plr__init(struct raft_io *io, raft_id id, const char *address) {
    plr__io *s = plr__of(io);
    char path[PATH_MAX];
    mkdir(s->dir, 0755);
    snprintf(path, sizeof path, "%s/log", s->dir);
    plg_config c = s->lcfg;
    c.path = path;
    int rc = plg_open(&s->log, &c);
    if (rc) { snprintf(io->errmsg, sizeof io->errmsg, "picolog open: %s", plg_strerror(rc)); return RAFT_IOERR; }
    s->opened = 1;
    rc = plr__meta_read(s->dir, &s->term, &s->vote);
    if (rc) { snprintf(io->errmsg, sizeof io->errmsg, "raft.meta: %s", plr_strerror(rc)); return RAFT_CORRUPT; }
    int fd = plg_notify_fd(s->log);
    if (fd < 0) return RAFT_IOERR;
    if (uv_poll_init(s->loop, &s->poll, fd) || uv_async_init(s->loop, &s->kick, plr__kick_cb)) return RAFT_IOERR;
    s->poll.data = s; s->kick.data = s; s->handles = 2;
    if (uv_poll_start(&s->poll, UV_READABLE, plr__poll_cb)) return RAFT_IOERR;
    s->poll_on = 1;
    rc = s->net->init(s->net, id, address);
    if (rc) { memcpy(io->errmsg, s->net->errmsg, sizeof io->errmsg); return rc; }
    return 0;
}

static void plr__closed_one(plr__io *s) {
    assert(s->handles > 0);
    if (--s->handles == 0 && s->close_cb) {
        raft_io_close_cb cb = s->close_cb;
        s->close_cb = NULL;
        cb(s->io);
    }
}
static void plr__handle_closed(uv_handle_t *h) { plr__closed_one((plr__io *)h->data); }
static void plr__net_closed(struct raft_io *net) { plr__closed_one((plr__io *)net->data); }
static void plr__close(struct raft_io *io, raft_io_close_cb cb) {
    plr__io *s = plr__of(io);
    int have_handles = s->handles == 2;
    s->closing = 1;
    if (s->q_n) plr__q_run(s);             /* cancel what is left */
    if (s->log) { plg_close(s->log); s->log = NULL; }
    s->close_cb = cb;
    s->handles = 1 + (have_handles ? 2 : 0);
    s->net->data = s;
    if (have_handles) {
        uv_close((uv_handle_t *)&s->poll, plr__handle_closed);
        uv_close((uv_handle_t *)&s->kick, plr__handle_closed);
    }
    s->net->close(s->net, plr__net_closed);
}

static int plr__load(struct raft_io *io, raft_term *term, raft_id *voted_for, struct raft_snapshot **snapshot,
                     raft_index *start_index, struct raft_entry *entries[], size_t *n_entries) {
    plr__io *s = plr__of(io);
    struct raft_snapshot *snap = NULL;
    struct raft_entry *es = NULL;
    size_t n = 0, cap = 0;
    plg_reader *r = NULL;
    char path[PATH_MAX];
    int rc = plr__snap_read(s->dir, &snap);
    if (rc) { snprintf(io->errmsg, sizeof io->errmsg, "snapshot: %s", plr_strerror(rc)); return RAFT_CORRUPT; }
    s->snap_index = snap ? snap->index : 0; s->snap_term = snap ? snap->term : 0;
    snprintf(path, sizeof path, "%s/log", s->dir);
    rc = plg_reader_open(&r, path);
    if (rc) { snprintf(io->errmsg, sizeof io->errmsg, "log reader: %s", plg_strerror(rc)); plr__snap_free(snap); return RAFT_IOERR; }
    uint64_t first = 0;
    plg_record rec;
    s->terms_n = 0;
    while ((rc = plg_reader_next(r, &rec)) == 1) {
        if (rec.len < PLR__PREFIX) { rc = PLR_ECORRUPT; break; }
        const unsigned char *p = (const unsigned char *)rec.data;
        if (!first) first = rec.seq;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct raft_entry *ne = (struct raft_entry *)raft_realloc(es, cap * sizeof *ne);
            if (!ne) { rc = PLR_ENOMEM; break; }
            es = ne;
        }
        struct raft_entry *e = &es[n];
        e->term = plr__get64(p); e->type = (unsigned short)plr__get32(p + 8);
        e->buf.len = rec.len - PLR__PREFIX;
        e->buf.base = raft_malloc(e->buf.len ? e->buf.len : 1);
        if (!e->buf.base) { rc = PLR_ENOMEM; break; }
        memcpy(e->buf.base, p + PLR__PREFIX, e->buf.len);
        e->batch = e->buf.base;
        n++;
        if ((rc = plr__terms_set(s, rec.seq, e->term)) != 0) break;
    }
    plg_reader_close(r);
    if (rc < 0) goto fail;
    /* a crash between writing an installed snapshot and plg_reset leaves the
     * old log: drop it when it ends before the snapshot or disagrees at it */
    if (snap && n && (first + n - 1 <= snap->index ||
                      (first <= snap->index && plr__term_of(s, snap->index) != snap->term))) {
        for (size_t i = 0; i < n; i++) raft_free(es[i].batch);
        n = 0; s->terms_n = 0;
        rc = plg_reset(s->log, snap->index + 1);
        if (rc) goto fail;
        s->st.resets++;
    }
    if (n && snap && first > snap->index + 1) { rc = PLR_ECORRUPT; goto fail; }
    if (n && !snap && first != 1) { rc = PLR_ECORRUPT; goto fail; }
    if (!n) {
        /* an empty log must continue right after the snapshot (or at 1) */
        uint64_t next = snap ? snap->index + 1 : 1;
        if (plg_appended(s->log) + 1 != next) {
            rc = plg_reset(s->log, next);
            if (rc) goto fail;
        }
    }
    *term = s->term; *voted_for = s->vote;
    *snapshot = snap;
    *start_index = n ? first : (snap ? snap->index + 1 : 1);
    *entries = es; *n_entries = n;
    return 0;
fail:
    for (size_t i = 0; i < n; i++) raft_free(es[i].batch);
    raft_free(es);
    plr__snap_free(snap);
    snprintf(io->errmsg, sizeof io->errmsg, "load: %s", plr_strerror(rc));
    return rc == PLR_ENOMEM ? RAFT_NOMEM : RAFT_CORRUPT;
}

static int plr__start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv) {
    plr__io *s = plr__of(io);
    s->net->data = io->data;              /* raft_uv calls tick/recv with its own io: they read ->data */
    int rc = s->net->start(s->net, msecs, tick, recv);
    if (rc) memcpy(io->errmsg, s->net->errmsg, sizeof io->errmsg);
    return rc;
}

/* bytes of an encoded configuration (libraft 0.15: version (1), count (8),
 * per server id (8), address + NUL, role (1)) before its padding to 8 bytes;
 * len when it does not parse */
static size_t plr__conf_encoded_len(const unsigned char *b, size_t len) {
    if (len < 9) return len;
    uint64_t n = plr__get64(b + 1);
    size_t off = 9;
    for (uint64_t i = 0; i < n; i++) {
        if (len - off < 8) return len;
        off += 8;
        const unsigned char *z = (const unsigned char *)memchr(b + off, 0, len - off);
        if (!z) return len;
        off = (size_t)(z - b) + 1;
        if (off >= len) return len;
        off += 1;
    }
    return off;
}

/* one record: prefix (term, type, 0) and the entry */
static int plr__put_entry(plr__io *s, const struct raft_entry *e, uint64_t *seq) {
    uint32_t len = (uint32_t)(PLR__PREFIX + e->buf.len);
    for (int tries = 0;; tries++) {
        unsigned char *p = (unsigned char *)plg_reserve(s->log, len);
        if (p) {
            plr__put64(p, e->term); plr__put32(p + 8, e->type); plr__put32(p + 12, 0);
            if (e->buf.len) memcpy(p + PLR__PREFIX, e->buf.base, e->buf.len);
            if (e->type == RAFT_CHANGE) {              /* libraft's padding is uninitialised: zero it */
                size_t used = plr__conf_encoded_len((const unsigned char *)e->buf.base, e->buf.len);
                memset(p + PLR__PREFIX + used, 0, e->buf.len - used);
            }
            int64_t q = plg_commit(s->log);
            if (q < 0) return (int)q;
            *seq = (uint64_t)q;
            return 0;
        }
        int err = plg_reserve_error(s->log);
        if (err != PLG_EFULL || tries > 100000) return err ? err : PLG_EFULL;
        struct timespec ts = {0, 50000};   /* the writer drains the ring: wait for room */
        nanosleep(&ts, NULL);
    }
}

static int plr__append(struct raft_io *io, struct raft_io_append *req, const struct raft_entry entries[],
                       unsigned n, raft_io_append_cb cb) {
    plr__io *s = plr__of(io);
    if (s->failed) return RAFT_IOERR;
    uint64_t seq = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t want = plg_appended(s->log) + 1;
        int rc = plr__put_entry(s, &entries[i], &seq);
        if (rc) { snprintf(io->errmsg, sizeof io->errmsg, "append: %s", plg_strerror(rc)); s->failed = rc; return RAFT_IOERR; }
        assert(seq == want);
        (void)want;
        if (plr__terms_set(s, seq, entries[i].term)) return RAFT_NOMEM;
    }
    plr__done d;
    memset(&d, 0, sizeof d);
    d.kind = PLR__DONE_APPEND; d.need = seq; d.req = req; d.cb = (void *)cb;
    if (plr__q_push(s, &d)) return RAFT_NOMEM;
    s->st.appends++; s->st.entries += n;
    return 0;
}

static int plr__truncate(struct raft_io *io, raft_index index) {
    plr__io *s = plr__of(io);
    if (s->failed) return RAFT_IOERR;
    if (index == 0) return RAFT_INVALID;
    if (index - 1 >= plg_appended(s->log)) return 0;
    int rc = plg_truncate(s->log, index - 1);
    if (rc) { snprintf(io->errmsg, sizeof io->errmsg, "truncate: %s", plg_strerror(rc)); s->failed = rc; return RAFT_IOERR; }
    if (index <= s->terms_base) s->terms_n = 0;
    else if (index < s->terms_base + s->terms_n) s->terms_n = index - s->terms_base;
    plr__q_clip(s, index - 1);
    s->st.truncates++;
    uv_async_send(&s->kick);
    return 0;
}

static int plr__set_term(struct raft_io *io, raft_term term) {
    plr__io *s = plr__of(io);
    int rc = plr__meta_write(s->dir, term, 0);
    if (rc) { snprintf(io->errmsg, sizeof io->errmsg, "set_term: %s", plr_strerror(rc)); return RAFT_IOERR; }
    s->term = term; s->vote = 0;
    return 0;
}
static int plr__set_vote(struct raft_io *io, raft_id id) {
    plr__io *s = plr__of(io);
    int rc = plr__meta_write(s->dir, s->term, id);
    if (rc) { snprintf(io->errmsg, sizeof io->errmsg, "set_vote: %s", plr_strerror(rc)); return RAFT_IOERR; }
    s->vote = id;
    return 0;
}

static int plr__bootstrap(struct raft_io *io, const struct raft_configuration *conf) {
    plr__io *s = plr__of(io);
    if (s->term != 0 || plg_appended(s->log) != 0) return RAFT_CANTBOOTSTRAP;
    struct raft_entry e;
    memset(&e, 0, sizeof e);
    e.term = 1; e.type = RAFT_CHANGE;
    int rc = raft_configuration_encode(conf, &e.buf);
    if (rc) return rc;
    /* (plr__put_entry zeroes libraft's uninitialised padding in the copy) */
    uint64_t seq = 0;
    rc = plr__put_entry(s, &e, &seq);
    raft_free(e.buf.base);
    if (rc == 0) rc = plg_wait(s->log, seq, -1);
    if (rc) { snprintf(io->errmsg, sizeof io->errmsg, "bootstrap: %s", plg_strerror(rc)); return RAFT_IOERR; }
    return plr__set_term(io, 1);
}
static int plr__recover(struct raft_io *io, const struct raft_configuration *conf) {
    (void)conf;
    snprintf(io->errmsg, sizeof io->errmsg, "recover is not supported by picolog_raft");
    return RAFT_INVALID;
}

static int plr__send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m, raft_io_send_cb cb) {
    plr__io *s = plr__of(io);
    if (s->drop_send && s->drop_send(s->drop_user, m->server_id)) {
        plr__done d;
        memset(&d, 0, sizeof d);
        d.kind = PLR__DONE_SEND; d.req = req; d.cb = (void *)cb;   /* "sent", then lost on the wire */
        if (plr__q_push(s, &d)) return RAFT_NOMEM;
        s->st.sends_dropped++;
        uv_async_send(&s->kick);
        return 0;
    }
    if (m->type == RAFT_IO_REQUEST_VOTE && s->log) {
        /* libraft 0.15 claims its in-memory last index: claim the durable one */
        uint64_t dur = plg_durable(s->log);
        if (m->request_vote.last_log_index > dur) {
            raft_term t = plr__term_of(s, dur);
            if (t || dur == 0) {
                struct raft_message c = *m;
                c.request_vote.last_log_index = dur;
                c.request_vote.last_log_term = t;
                s->st.votes_clamped++;
                return s->net->send(s->net, req, &c, cb);
            }
        }
    }
    return s->net->send(s->net, req, m, cb);
}

static int plr__snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                             const struct raft_snapshot *snap, raft_io_snapshot_put_cb cb) {
    plr__io *s = plr__of(io);
    if (s->failed) return RAFT_IOERR;
    int rc = plr__snap_write(s->dir, snap);
    if (rc) { snprintf(io->errmsg, sizeof io->errmsg, "snapshot_put: %s", plr_strerror(rc)); return RAFT_IOERR; }
    s->snap_index = snap->index; s->snap_term = snap->term;
    if (trailing == 0) {                          /* an installed snapshot replaces the whole log */
        rc = plg_reset(s->log, snap->index + 1);
        if (rc) { snprintf(io->errmsg, sizeof io->errmsg, "snapshot reset: %s", plg_strerror(rc)); s->failed = rc; return RAFT_IOERR; }
        s->terms_n = 0; s->terms_base = snap->index + 1;
        plr__q_clip(s, snap->index);
        s->st.resets++;
    } else if (snap->index > trailing) {
        uint64_t keep = snap->index - trailing + 1;   /* records below keep may go */
        plg_release(s->log, keep);
        plr__terms_drop_below(s, keep);
        s->st.releases++;
    }
    plr__done d;
    memset(&d, 0, sizeof d);
    d.kind = PLR__DONE_SNAP_PUT; d.req = req; d.cb = (void *)cb;
    if (plr__q_push(s, &d)) return RAFT_NOMEM;
    s->st.snapshots_put++;
    uv_async_send(&s->kick);
    return 0;
}
static int plr__snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req, raft_io_snapshot_get_cb cb) {
    plr__io *s = plr__of(io);
    plr__done d;
    memset(&d, 0, sizeof d);
    d.kind = PLR__DONE_SNAP_GET; d.req = req; d.cb = (void *)cb;
    int rc = plr__snap_read(s->dir, &d.snap);
    d.status = rc ? RAFT_IOERR : (d.snap ? 0 : RAFT_NOTFOUND);
    if (plr__q_push(s, &d)) { plr__snap_free(d.snap); return RAFT_NOMEM; }
    uv_async_send(&s->kick);
    return 0;
}
static raft_time plr__time(struct raft_io *io) { plr__io *s = plr__of(io); return s->net->time(s->net); }
static int plr__random(struct raft_io *io, int lo, int hi) { plr__io *s = plr__of(io); return s->net->random(s->net, lo, hi); }
static int plr__async_work(struct raft_io *io, struct raft_io_async_work *req, raft_io_async_work_cb cb) {
    plr__io *s = plr__of(io);
    return s->net->async_work ? s->net->async_work(s->net, req, cb) : RAFT_INVALID;
}

PLRDEF int plr_io_init(struct raft_io *io, const plr_io_config *cfg) {
    if (!io || !cfg || !cfg->dir || !cfg->loop || !cfg->net || strlen(cfg->dir) >= sizeof(((plr__io *)0)->dir)) return PLR_EINVAL;
    plr__io *s = (plr__io *)calloc(1, sizeof *s);
    if (!s) return PLR_ENOMEM;
    s->io = io; s->net = cfg->net; s->loop = cfg->loop; s->lcfg = cfg->log;
    snprintf(s->dir, sizeof s->dir, "%s", cfg->dir);
    s->drop_send = cfg->drop_send; s->drop_user = cfg->drop_user;
    memset(io, 0, sizeof *io);
    io->version = cfg->net->version >= 2 ? 2 : 1;
    io->impl = s;
    io->init = plr__init; io->close = plr__close; io->load = plr__load; io->start = plr__start;
    io->bootstrap = plr__bootstrap; io->recover = plr__recover; io->set_term = plr__set_term;
    io->set_vote = plr__set_vote; io->send = plr__send; io->append = plr__append; io->truncate = plr__truncate;
    io->snapshot_put = plr__snapshot_put; io->snapshot_get = plr__snapshot_get; io->time = plr__time;
    io->random = plr__random;
    if (io->version >= 2) io->async_work = plr__async_work;
    return 0;
}
PLRDEF void plr_io_close(struct raft_io *io) {
    plr__io *s = io ? plr__of(io) : NULL;
    if (!s) return;
    if (s->log) plg_close(s->log);
    free(s->terms); free(s->q); free(s);
    io->impl = NULL;
}
PLRDEF void plr_io_get_stats(struct raft_io *io, plr_io_stats *out) {
    plr__io *s = plr__of(io);
    *out = s->st;
    out->durable = s->log ? plg_durable(s->log) : 0;
    out->log_error = s->log ? plg_error(s->log) : s->failed;
}
PLRDEF plg_log *plr_io_log(struct raft_io *io) { return plr__of(io)->log; }
PLRDEF int plr_log_error(struct raft_io *io) { plr__io *s = plr__of(io); return s->log ? plg_error(s->log) : s->failed; }


/* >>rings: proposal bytes (engine -> loop), acks (loop -> engine); SPSC ------- */
#define PLR__CACHELINE 64
#define PLR__LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define PLR__STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
typedef struct plr__ring {
    unsigned char *buf; uint64_t cap;           /* bytes, power of two */
    alignas(PLR__CACHELINE) uint64_t head;      /* producer writes */
    uint64_t tail_cache;
    alignas(PLR__CACHELINE) uint64_t tail;      /* consumer writes */
} plr__ring;
#define PLR__REC_HDR 16u                         /* len(4) pad(4) ticket(8); len 0xffffffff: wrap */

/* >>node -------------------------------------------------------------------- */
typedef struct plr__req { struct raft_apply apply; uint64_t ticket; struct plr_node *node; } plr__req;

struct plr_node {
    plr__ring props;
    plr_ack *acks; uint64_t ack_cap;
    alignas(PLR__CACHELINE) uint64_t ack_head;  /* loop writes */
    alignas(PLR__CACHELINE) uint64_t ack_tail;  /* engine writes */
    alignas(PLR__CACHELINE) uint64_t next_ticket;  /* engine only */
    uint64_t drained_ticket;                    /* loop only */
    plr_node_config cfg;
    char dir[PATH_MAX - 64];
    char addr[PLR_MAX_SERVERS][64];
    uv_loop_t loop;
    uv_timer_t drain; uv_async_t wake; uv_check_t check;
    struct raft_uv_transport transport;
    struct raft_io net, io;
    struct raft raft;
    struct raft_fsm fsm;
    pthread_t thread;
    int started_rc, stopping, raft_closed, started;
    /* one membership request at a time (under mu): kind 1 add, 2 remove */
    int ch_kind, ch_stage, ch_done, ch_rc; uint64_t ch_id; char ch_addr[64];
    struct raft_change change;
    pthread_mutex_t mu; pthread_cond_t cv;      /* start handshake, status */
    plr_status status;
    uint64_t seen_leader, seen_term;
};

static int plr__fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result) {
    plr_node *n = (plr_node *)fsm->data;
    uint64_t index = raft_last_applied(&n->raft) + 1;   /* libraft applies index last_applied + 1 */
    if (n->cfg.apply) n->cfg.apply(n->cfg.user, index, buf->base, (uint32_t)buf->len);
    *result = NULL;
    return 0;
}
static int plr__fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs) {
    plr_node *n = (plr_node *)fsm->data;
    void *data = NULL; size_t len = 0;
    if (n->cfg.snapshot) { int rc = n->cfg.snapshot(n->cfg.user, &data, &len); if (rc) return RAFT_IOERR; }
    *bufs = (struct raft_buffer *)raft_malloc(sizeof **bufs);
    void *copy = raft_malloc(len ? len : 1);
    if (!*bufs || !copy) { raft_free(*bufs); raft_free(copy); free(data); return RAFT_NOMEM; }
    if (len) memcpy(copy, data, len);
    free(data);
    (*bufs)[0].base = copy; (*bufs)[0].len = len;
    *n_bufs = 1;
    return 0;
}
static int plr__fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
    plr_node *n = (plr_node *)fsm->data;
    int rc = n->cfg.restore ? n->cfg.restore(n->cfg.user, buf->base, buf->len) : 0;
    if (rc) return RAFT_CORRUPT;
    raft_free(buf->base);                 /* the FSM owns the buffer now */
    return 0;
}

static void plr__ack_push(plr_node *n, uint64_t ticket, uint64_t index, int status) {
    uint64_t h = n->ack_head;
    assert(h - PLR__LOAD_ACQ(&n->ack_tail) < n->ack_cap);   /* the window keeps room */
    plr_ack *a = &n->acks[h & (n->ack_cap - 1)];
    a->ticket = ticket; a->index = index; a->status = status;
    PLR__STORE_REL(&n->ack_head, h + 1);
}
static void plr__apply_cb(struct raft_apply *req, int status, void *result) {
    plr__req *q = (plr__req *)req->data;
    (void)result;
    int st = status == 0 ? 0 : status == RAFT_NOTLEADER ? PLR_ENOTLEADER
           : status == RAFT_SHUTDOWN || status == RAFT_CANCELED ? PLR_ECLOSED : PLR_ELEADERSHIP;
    plr__ack_push(q->node, q->ticket, req->index, st);
    free(q);
}

static void plr__drain(plr_node *n) {
    plr__ring *r = &n->props;
    uint64_t t = r->tail, h = PLR__LOAD_ACQ(&r->head);
    while (t != h) {
        unsigned char *p = r->buf + (t & (r->cap - 1));
        uint32_t len; uint64_t ticket;
        memcpy(&len, p, 4);
        if (len == 0xffffffffu) { t += r->cap - (t & (r->cap - 1)); continue; }
        memcpy(&ticket, p + 8, 8);
        struct raft_buffer b;
        b.len = len; b.base = raft_malloc(len ? len : 1);
        plr__req *q = (plr__req *)malloc(sizeof *q);
        int rc = RAFT_NOMEM;
        if (b.base && q) {
            memcpy(b.base, p + PLR__REC_HDR, len);
            q->apply.data = q; q->ticket = ticket; q->node = n;
            rc = raft_apply(&n->raft, &q->apply, &b, 1, plr__apply_cb);
        }
        if (rc) {
            raft_free(b.base); free(q);
            plr__ack_push(n, ticket, 0, rc == RAFT_NOTLEADER ? PLR_ENOTLEADER : PLR_ERAFT);
        }
        n->drained_ticket = ticket;
        t += (PLR__REC_HDR + len + 7u) & ~(uint64_t)7u;
        PLR__STORE_REL(&r->tail, t);
    }
}

static void plr__status_update(plr_node *n) {
    struct raft *r = &n->raft;
    plr_status st;
    memset(&st, 0, sizeof st);
    st.role = raft_state(r);
    st.term = r->current_term;
    const char *addr = NULL; raft_id lid = 0;
    raft_leader(r, &lid, &addr);
    st.leader_id = lid;
    st.commit_index = r->commit_index; st.last_applied = r->last_applied;
    st.last_index = raft_last_index(r);
    plr_io_stats is;
    plr_io_get_stats(&n->io, &is);
    st.durable = is.durable; st.error = is.log_error;
    if (st.role == RAFT_LEADER && r->leader_state.progress) {
        for (unsigned i = 0; i < r->configuration.n && st.n_followers < PLR_MAX_SERVERS; i++) {
            if (r->configuration.servers[i].id == r->id) continue;
            plr_follower *f = &st.followers[st.n_followers++];
            f->id = r->configuration.servers[i].id;
            f->match_index = r->leader_state.progress[i].match_index;
            f->lag = st.last_index > f->match_index ? st.last_index - f->match_index : 0;
        }
    }
    st.proposed = n->drained_ticket; st.acked = n->ack_head;
    pthread_mutex_lock(&n->mu);
    n->status = st;
    pthread_mutex_unlock(&n->mu);
    if (n->cfg.leader_changed && (lid != n->seen_leader || (lid && st.term != n->seen_term))) {
        n->seen_leader = lid; n->seen_term = st.term;
        n->cfg.leader_changed(n->cfg.user, lid, st.term, lid == n->cfg.id);
    }
}

static void plr__drain_cb(uv_timer_t *t) {
    plr_node *n = (plr_node *)t->data;
    if (!__atomic_load_n(&n->stopping, __ATOMIC_ACQUIRE)) plr__drain(n);
}
static void plr__check_cb(uv_check_t *c) {
    plr_node *n = (plr_node *)c->data;
    if (!n->raft_closed) plr__status_update(n);
}
static void plr__closed_handle(uv_handle_t *h) { (void)h; }
static void plr__raft_closed(struct raft *r) {
    plr_node *n = (plr_node *)r->data;
    n->raft_closed = 1;
    uv_close((uv_handle_t *)&n->drain, plr__closed_handle);
    uv_close((uv_handle_t *)&n->wake, plr__closed_handle);
    uv_close((uv_handle_t *)&n->check, plr__closed_handle);
}

/* >>membership: run on the loop thread; the caller waits on cv */
static void plr__change_done(plr_node *n, int rc) {
    pthread_mutex_lock(&n->mu);
    n->ch_rc = rc; n->ch_done = 1; n->ch_kind = 0;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}
static void plr__change_cb(struct raft_change *req, int status) {
    plr_node *n = (plr_node *)req->data;
    if (status) { plr__change_done(n, status == RAFT_NOTLEADER || status == RAFT_LEADERSHIPLOST ? PLR_ENOTLEADER : PLR_ERAFT); return; }
    if (n->ch_kind == 1 && n->ch_stage == 1) {      /* added as a spare: now a voter (after catching up) */
        n->ch_stage = 2;
        int rc = raft_assign(&n->raft, &n->change, n->ch_id, RAFT_VOTER, plr__change_cb);
        if (rc) plr__change_done(n, rc == RAFT_NOTLEADER ? PLR_ENOTLEADER : PLR_ERAFT);
        return;
    }
    plr__change_done(n, 0);
}
static void plr__change_start(plr_node *n) {
    n->change.data = n;
    n->ch_stage = 1;
    int rc = n->ch_kind == 1 ? raft_add(&n->raft, &n->change, n->ch_id, n->ch_addr, plr__change_cb)
                             : raft_remove(&n->raft, &n->change, n->ch_id, plr__change_cb);
    if (rc) plr__change_done(n, rc == RAFT_NOTLEADER ? PLR_ENOTLEADER : PLR_ERAFT);
}
static int plr__change(plr_node *n, int kind, uint64_t id, const char *address) {
    if (!n || !id || (kind == 1 && (!address || strlen(address) >= sizeof n->ch_addr))) return PLR_EINVAL;
    pthread_mutex_lock(&n->mu);
    if (n->ch_kind) { pthread_mutex_unlock(&n->mu); return PLR_EFULL; }
    n->ch_kind = kind; n->ch_id = id; n->ch_done = 0; n->ch_rc = 0; n->ch_stage = 0;
    if (kind == 1) snprintf(n->ch_addr, sizeof n->ch_addr, "%s", address);
    pthread_mutex_unlock(&n->mu);
    uv_async_send(&n->wake);
    pthread_mutex_lock(&n->mu);
    while (!n->ch_done) pthread_cond_wait(&n->cv, &n->mu);
    int rc = n->ch_rc;
    pthread_mutex_unlock(&n->mu);
    return rc;
}
PLRDEF int plr_add_server(plr_node *n, uint64_t id, const char *address) { return plr__change(n, 1, id, address); }
PLRDEF int plr_remove_server(plr_node *n, uint64_t id) { return plr__change(n, 2, id, NULL); }

static void plr__wake_cb(uv_async_t *a) {
    plr_node *n = (plr_node *)a->data;
    if (__atomic_load_n(&n->stopping, __ATOMIC_ACQUIRE)) {
        if (__atomic_load_n(&n->stopping, __ATOMIC_ACQUIRE) == 1) {
            __atomic_store_n(&n->stopping, 2, __ATOMIC_RELEASE);
            plr__status_update(n);
            raft_close(&n->raft, plr__raft_closed);
        }
        pthread_mutex_lock(&n->mu);
        int pending = n->ch_kind && !n->ch_done;
        pthread_mutex_unlock(&n->mu);
        if (pending) plr__change_done(n, PLR_ECLOSED);
        return;
    }
    pthread_mutex_lock(&n->mu);
    int start_change = n->ch_kind && !n->ch_done && n->ch_stage == 0;
    if (start_change) n->ch_stage = -1;            /* taken */
    pthread_mutex_unlock(&n->mu);
    if (start_change) plr__change_start(n);
    plr__drain(n);
}

static int plr__node_drop(void *user, raft_id to) {
    plr_node *n = (plr_node *)user;
    return n->cfg.drop_send ? n->cfg.drop_send(n->cfg.user, to) : 0;
}

static int plr__node_setup(plr_node *n) {
    const plr_node_config *c = &n->cfg;
    char sub[PATH_MAX];
    const char *self = NULL;
    for (unsigned i = 0; i < c->n_servers; i++) if (c->servers[i].id == c->id) self = n->addr[i];
    if (!self) return PLR_EINVAL;
    if (uv_loop_init(&n->loop)) return PLR_EUV;
    mkdir(n->dir, 0755);
    snprintf(sub, sizeof sub, "%s/uv", n->dir);
    mkdir(sub, 0755);
    if (raft_uv_tcp_init(&n->transport, &n->loop)) return PLR_EUV;
    if (raft_uv_init(&n->net, &n->loop, sub, &n->transport)) return PLR_ERAFT;
    raft_uv_set_connect_retry_delay(&n->net, 100);
    plr_io_config ic;
    memset(&ic, 0, sizeof ic);
    ic.dir = n->dir; ic.log = c->log; ic.loop = &n->loop; ic.net = &n->net;
    ic.drop_send = plr__node_drop; ic.drop_user = n;
    int rc = plr_io_init(&n->io, &ic);
    if (rc) return rc;
    memset(&n->fsm, 0, sizeof n->fsm);
    n->fsm.version = 1; n->fsm.data = n;
    n->fsm.apply = plr__fsm_apply; n->fsm.snapshot = plr__fsm_snapshot; n->fsm.restore = plr__fsm_restore;
    if (raft_init(&n->raft, &n->io, &n->fsm, c->id, self)) return PLR_ERAFT;
    n->raft.data = n;
    raft_set_election_timeout(&n->raft, c->election_timeout_ms ? c->election_timeout_ms : 1000);
    raft_set_heartbeat_timeout(&n->raft, c->heartbeat_timeout_ms ? c->heartbeat_timeout_ms : 100);
    raft_set_snapshot_threshold(&n->raft, c->snapshot_threshold ? c->snapshot_threshold : 1024);
    raft_set_snapshot_trailing(&n->raft, c->snapshot_trailing ? c->snapshot_trailing : 128);
    raft_set_pre_vote(&n->raft, true);
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (unsigned i = 0; i < c->n_servers; i++)
        if (raft_configuration_add(&conf, c->servers[i].id, n->addr[i], RAFT_VOTER)) { raft_configuration_close(&conf); return PLR_EINVAL; }   /* duplicate id or address */
    rc = c->join ? RAFT_CANTBOOTSTRAP : raft_bootstrap(&n->raft, &conf);   /* only a pristine node takes it */
    raft_configuration_close(&conf);
    if (rc && rc != RAFT_CANTBOOTSTRAP) return PLR_ERAFT;
    if (raft_start(&n->raft)) return PLR_ERAFT;
    uv_timer_init(&n->loop, &n->drain); n->drain.data = n;
    uv_async_init(&n->loop, &n->wake, plr__wake_cb); n->wake.data = n;
    uv_check_init(&n->loop, &n->check); n->check.data = n;
    unsigned iv = c->drain_interval_ms ? c->drain_interval_ms : 1;
    uv_timer_start(&n->drain, plr__drain_cb, iv, iv);
    uv_check_start(&n->check, plr__check_cb);
    return 0;
}

static void *plr__thread(void *arg) {
    plr_node *n = (plr_node *)arg;
    int rc = plr__node_setup(n);
    pthread_mutex_lock(&n->mu);
    n->started_rc = rc; n->started = 1;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    if (rc) return NULL;
    uv_run(&n->loop, UV_RUN_DEFAULT);
    return NULL;
}

PLRDEF int plr_node_start(plr_node **out, const plr_node_config *cfg) {
    *out = NULL;
    if (!cfg || !cfg->dir || !cfg->id || cfg->n_servers == 0 || cfg->n_servers > PLR_MAX_SERVERS) return PLR_EINVAL;
    size_t cap = cfg->ring_capacity ? cfg->ring_capacity : (size_t)1 << 20;
    uint64_t win = cfg->ack_window ? cfg->ack_window : 4096;
    if ((cap & (cap - 1)) || cap < 4096 || (win & (win - 1))) return PLR_EINVAL;
    /* a peer that dies mid-write would kill the process with SIGPIPE: libuv
     * does not ignore it, so the node does, unless the program handles it */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
    plr_node *n = (plr_node *)calloc(1, sizeof *n);
    if (!n) return PLR_ENOMEM;
    n->cfg = *cfg;
    snprintf(n->dir, sizeof n->dir, "%s", cfg->dir);
    n->cfg.dir = n->dir;
    for (unsigned i = 0; i < cfg->n_servers; i++) {
        if (!cfg->servers[i].address || strlen(cfg->servers[i].address) >= sizeof n->addr[i]) { free(n); return PLR_EINVAL; }
        snprintf(n->addr[i], sizeof n->addr[i], "%s", cfg->servers[i].address);
        n->cfg.servers[i].address = n->addr[i];
    }
    n->props.buf = (unsigned char *)malloc(cap);
    n->props.cap = cap;
    n->acks = (plr_ack *)calloc((size_t)win, sizeof *n->acks);
    n->ack_cap = win;
    n->next_ticket = 1;
    if (!n->props.buf || !n->acks) { free(n->props.buf); free(n->acks); free(n); return PLR_ENOMEM; }
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    if (pthread_create(&n->thread, NULL, plr__thread, n)) { free(n->props.buf); free(n->acks); free(n); return PLR_ENOMEM; }
    pthread_mutex_lock(&n->mu);
    while (!n->started) pthread_cond_wait(&n->cv, &n->mu);
    int rc = n->started_rc;
    pthread_mutex_unlock(&n->mu);
    if (rc) {
        pthread_join(n->thread, NULL);
        /* the loop never ran: release what setup made, in its order */
        free(n->props.buf); free(n->acks); free(n);   /* (a failed setup leaks libuv/raft internals) */
        return rc;
    }
    *out = n;
    return 0;
}

PLRDEF int64_t plr_propose(plr_node *n, const void *data, uint32_t len) {
    plr__ring *r = &n->props;
    uint64_t need = (PLR__REC_HDR + (uint64_t)len + 7u) & ~(uint64_t)7u;
    if (need > r->cap / 2) return PLR_ETOOBIG;
    if (__atomic_load_n(&n->stopping, __ATOMIC_ACQUIRE)) return PLR_ECLOSED;
    uint64_t ticket = n->next_ticket;
    if (ticket - 1 - PLR__LOAD_ACQ(&n->ack_tail) >= n->ack_cap) return PLR_EFULL;   /* ack window */
    uint64_t h = r->head, pos = h & (r->cap - 1), pad = 0;
    if (pos + need > r->cap) pad = r->cap - pos;         /* would wrap: skip to the start */
    if (h + pad + need - r->tail_cache > r->cap) {
        r->tail_cache = PLR__LOAD_ACQ(&r->tail);
        if (h + pad + need - r->tail_cache > r->cap) return PLR_EFULL;
    }
    if (pad) { uint32_t m = 0xffffffffu; memcpy(r->buf + pos, &m, 4); h += pad; pos = 0; }
    unsigned char *p = r->buf + pos;
    memcpy(p, &len, 4); memset(p + 4, 0, 4); memcpy(p + 8, &ticket, 8);
    if (len) memcpy(p + PLR__REC_HDR, data, len);
    PLR__STORE_REL(&r->head, h + need);
    n->next_ticket = ticket + 1;
    return (int64_t)ticket;
}
PLRDEF void plr_flush(plr_node *n) { uv_async_send(&n->wake); }
PLRDEF int plr_next_ack(plr_node *n, plr_ack *out) {
    uint64_t t = n->ack_tail;
    if (t == PLR__LOAD_ACQ(&n->ack_head)) return 0;
    *out = n->acks[t & (n->ack_cap - 1)];
    PLR__STORE_REL(&n->ack_tail, t + 1);
    return 1;
}
PLRDEF void plr_get_status(plr_node *n, plr_status *out) {
    pthread_mutex_lock(&n->mu);
    *out = n->status;
    pthread_mutex_unlock(&n->mu);
}
PLRDEF int plr_node_stop(plr_node *n) {
    if (!n) return 0;
    __atomic_store_n(&n->stopping, 1, __ATOMIC_RELEASE);
    uv_async_send(&n->wake);
    pthread_join(n->thread, NULL);
    int err = n->status.error;
    plr_io_close(&n->io);
    raft_uv_close(&n->net);
    raft_uv_tcp_close(&n->transport);
    uv_loop_close(&n->loop);
    pthread_mutex_destroy(&n->mu); pthread_cond_destroy(&n->cv);
    free(n->props.buf); free(n->acks); free(n);
    return err;
}

#ifdef __cplusplus
}
#endif
#endif /* PICOLOG_RAFT_IMPLEMENTED */
#endif /* PICOLOG_RAFT_IMPLEMENTATION */
