/* SPDX-License-Identifier: MIT */
/* picolog.h - v0.2.0 - crash-consistent write-ahead log for trading engines
 *
 * A trading thread appends a record (a memcpy into a lock-free single-producer
 * single-consumer ring, no syscall, no lock, no allocation) and gets a dense
 * sequence number back. A background thread packs records into 4 KiB pages and
 * writes them with O_DIRECT through io_uring, with RWF_DSYNC so each completed
 * write has passed the disk's volatile cache. plg_durable() is the group-commit
 * high-water mark: every record up to it survives power loss, so the engine may
 * confirm those trades. A reader recovers the log after a crash.
 *
 * DO THIS in exactly one C or C++ file, before any other #include:
 *
 *     #define PICOLOG_IMPLEMENTATION
 *     #include "picolog.h"
 *
 * and link with -luring -lpthread. Other files just #include "picolog.h".
 *
 *     plg_config cfg = {0};
 *     cfg.path = "trades.plg";                     // a directory of segments
 *     plg_log *log;
 *     if (plg_open(&log, &cfg) != 0) ...
 *     int64_t seq = plg_append(log, &trade, sizeof trade);   // hot path
 *     if (seq < 0) ...                              // PLG_EFULL: ring full, nothing consumed
 *     if (plg_durable(log) >= (uint64_t)seq) confirm(trade);  // group commit
 *     plg_wait(log, (uint64_t)seq, 1000000);        // or block up to 1 ms
 *     plg_release(log, snapshot_seq);               // optional: old segments go, and are reused
 *     plg_close(log);                               // 0: everything appended is durable
 *
 *     plg_reader *r; plg_record rec;
 *     plg_reader_open(&r, "trades.plg");
 *     while (plg_reader_next(r, &rec) == 1) use(rec.seq, rec.data, rec.len);
 *     plg_reader_close(r);
 *
 *     // tail a log another thread or process is writing (a replica, a feed):
 *     while (plg_reader_wait(r, 1000000000) >= 0)   // 1: ready, 0: timed out
 *         while (plg_reader_next(r, &rec) == 1) use(rec.seq, rec.data, rec.len);
 *     // (< 0: PLG_ERELEASED when plg_release removed the next record first)
 *     int fd = plg_notify_fd(log);   // or: epoll on this; readable when plg_durable moved
 *
 * ARCHITECTURE
 *   hot path   plg_append / plg_reserve+plg_commit: copy into the ring, publish
 *              the head with a release store, return the next sequence number.
 *              A full ring returns PLG_EFULL at once and consumes no number.
 *   writer     one background thread drains everything available, frames each
 *              record (length, sequence, epoch, CRC32C) into 4 KiB pages, and
 *              writes runs of pages: at once while a write slot is free (up
 *              to max_inflight in flight), batched only while every slot is
 *              busy. A record that arrives while the partly filled page is in
 *              flight starts the next page and its own write at once (format
 *              version 2; PLG_PACK_DENSE: wait and rewrite the page instead).
 *              Completions move `written`, and, once the data is on stable
 *              storage, `durable`, over the contiguous prefix of completed
 *              writes, whatever order they complete in.
 *   on disk    a directory of preallocated, pre-zeroed segment files. Records
 *              larger than a page span pages as fragments. The format is in
 *              docs/picolog-format.md.
 *   recovery   plg_open finds the last valid record, discards a torn tail and
 *              continues at the next sequence number; corruption deeper in the
 *              log fails closed with the file and offset. It reads only the
 *              tail segments (seconds per GiB saved): damage in an older
 *              segment is found by plg_check, the reader and plg_dump, not by
 *              plg_open (run plg_check to verify a whole log).
 *   mark       picolog.meta holds the durable mark (highest seq known durable;
 *              raised at segment switches, once a second when idle, at close), a
 *              clean-close flag and where the log begins (plg_config.first_seq,
 *              plg_reset). A record missing at or below the mark is
 *              PLG_ECORRUPT, never a torn tail. What recovery discards is first
 *              copied to quarantine-*.plgq in the log directory (synced) and
 *              reported in plg_stats (discarded_bytes/records, quarantine).
 *   replication plg_truncate(log, seq) drops every record after seq;
 *              plg_reset(log, next_seq) drops every record and continues at
 *              next_seq. Both run on the writer thread, are durable on return,
 *              are called from the appending thread, and are crash-safe (a
 *              truncate leaves the log ending between seq and the old end).
 *   seeks      plg_reader_seek returns exactly what a scan from the start
 *              would; beyond what the reader has verified it walks there once.
 *   segments   a second background thread makes the next segment ahead of the
 *              writer (retried with backoff when it fails, e.g. a full disk)
 *              and retires released ones in batches, one directory fsync each.
 *   live       the writer publishes plg_durable in <dir>/live.shm (a shared
 *              page, not synced) and through plg_notify_fd's eventfd. A reader,
 *              in any process, never returns a record above that mark while
 *              the writer runs, reads on from its end as the log grows, and
 *              sleeps in plg_reader_wait. A reader whose records were released
 *              gets PLG_ERELEASED, never PLG_ECORRUPT; so does a reader opened
 *              before a plg_reset, at its end (reopen it for the new log).
 *
 * DURABILITY MODES (plg_config.sync_mode)
 *   PLG_SYNC_AUTO           default: DSYNC when the device does FUA writes,
 *                           FDATASYNC with PLG_DSYNC_UNTIL_BEHIND otherwise:
 *                           while the writer keeps up, each write carries
 *                           RWF_DSYNC and goes alone (no fdatasync after it);
 *                           once a full max_write_bytes batch waits, plain
 *                           writes and one fdatasync for several. Survives
 *                           power loss either way.
 *   PLG_SYNC_DSYNC          writes carry RWF_DSYNC (FUA, or a cache flush after
 *                           each write): acknowledged = survives power loss.
 *                           Without FUA the writes go one at a time (each
 *                           taking every record that came meanwhile) until a
 *                           full max_write_bytes batch waits: concurrent
 *                           flushes only wait for each other.
 *   PLG_SYNC_FDATASYNC      plain O_DIRECT writes, then the writer thread calls
 *                           fdatasync, which covers every write completed before
 *                           it (group commit); acknowledged after it returns.
 *                           Same guarantee; on a disk without FUA it avoids the
 *                           kernel worker that completes RWF_DSYNC writes.
 *   PLG_SYNC_NONE_UNSAFE    acknowledged when the write completes: survives a
 *                           process crash, NOT power loss (the disk's volatile
 *                           cache). For benchmarks and throwaway data.
 *   plg_config.io_mode = PLG_IO_BUFFERED_FDATASYNC opts into page-cache writes
 *   (for filesystems without O_DIRECT); the sync mode still decides when a
 *   record is acknowledged. tmpfs and ramfs hold the files in RAM: plg_open
 *   refuses them with PLG_EVOLATILE unless plg_config.flags has
 *   PLG_ALLOW_VOLATILE (tests, scratch logs).
 *
 * COMPILE-TIME OPTIONS
 *   PICOLOG_STATIC            every function static (private copy per file)
 *   PICOLOG_NO_URING          pwritev2 from the writer thread instead of io_uring
 *   PICOLOG_MALLOC/REALLOC/FREE  allocator override (all three or none)
 *   PICOLOG_ASSERT(x)         assert override (default: assert)
 *   PICOLOG_TRACE(ev, seq)    called by the writer thread at each step of a
 *                             record's way to durable (enum plg_trace_event;
 *                             seq: the record, or the last one a write or sync
 *                             covers); for latency breakdowns (bench/); default
 *                             nothing
 *   PICOLOG_LONE_PAGE_SYNC    1: a lone page on an idle device is a synchronous
 *                             RWF_DSYNC write from the writer thread on every
 *                             device (default 0: only where the writes go one
 *                             at a time anyway, a device without FUA; on a FUA
 *                             device through io_uring, so the writer can start
 *                             the next record's write meanwhile). The runtime
 *                             flag PLG_URING_ONLY turns it off
 *                             (docs/performance.md)
 *   PICOLOG_ENCRYPT           encryption at rest: plg_config.encrypt_key seals every
 *                             fragment (AES-256-CBC + HMAC-SHA256, per fragment,
 *                             on the writer thread) with vault.h's crypto; compile
 *                             vault.h with VAULT_IMPLEMENTATION in one file. Without
 *                             it a key is refused (PLG_ENOCRYPT). Keys rotate segment
 *                             by segment (plg_config.old_keys, plg_reader_open_keys).
 *                             docs/encryption.md
 *   PICOLOG_WAIT_SPIN_NS      plg_wait spins up to this long (after its short
 *                             spin of 256 pauses) before it sleeps on the futex;
 *                             default 0: on a shared 2-core VM a longer spin
 *                             measured no faster wake (bench --observe wait)
 *
 * CONTENTS
 *   errors, config, records, stats ........ public declarations below
 *   >>util >>crc >>files >>format >>crypt >>ring >>io >>segments >>scan >>writer
 *   >>api >>reader ......................... implementation sections (grep them)
 *
 * LICENSE: MIT, see the end of the file.
 */
#if defined(PICOLOG_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
#ifndef PICOLOG_H
#define PICOLOG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef PICOLOG_STATIC
#define PLGDEF static
#else
#define PLGDEF extern
#endif

/* Version of this header (semantic versioning; CHANGELOG.md says what each
 * release changed in the API and the on-disk format). plg_version() gives the
 * version of the compiled implementation, PICOLOG_VERSION the one of the
 * header a file was compiled against. */
#define PICOLOG_VERSION_MAJOR 0
#define PICOLOG_VERSION_MINOR 2
#define PICOLOG_VERSION_PATCH 0
#define PICOLOG_VERSION (PICOLOG_VERSION_MAJOR * 10000 + PICOLOG_VERSION_MINOR * 100 + PICOLOG_VERSION_PATCH)
#define PICOLOG_VERSION_STRING "0.2.0"

#ifdef __cplusplus
extern "C" {
#endif

PLGDEF uint32_t plg_version(void);  /* PICOLOG_VERSION of the compiled implementation */
/* The errno behind this thread's last failed plg_open (PLG_ESYS, PLG_EACCES,
 * PLG_ELOCKED, ...): plg_stats.last_errno needs a log, which a failed open
 * does not give. 0 after a successful open, or when no system call failed. */
PLGDEF int      plg_open_errno(void);

/* Error codes: 0 is success, every error is negative. Stable numbers, in
 * -30199..-30101, outside errno's range (as LMDB's): picolog.h -301xx,
 * pinnacle_persist.h -302xx, vault.h -303xx, picolog_raft.h -304xx. */
#define PLG_ERRORS(X) \
    X(PLG_EFULL,     -30101, "ring full: record not appended, no sequence number consumed") \
    X(PLG_ETOOBIG,   -30102, "record longer than PLG_MAX_RECORD_BYTES or than the ring can ever hold") \
    X(PLG_EINVAL,    -30103, "invalid argument or configuration") \
    X(PLG_EIO,       -30104, "I/O error: the log is poisoned and acknowledges nothing more") \
    X(PLG_ENOSPC,    -30105, "no space left on device (a writing log is poisoned by it)") \
    X(PLG_ECORRUPT,  -30106, "corruption in the middle of the log (not a torn tail)") \
    X(PLG_ELOCKED,   -30107, "the log is already open for writing by another writer") \
    X(PLG_ETIMEDOUT, -30108, "timed out before the record became durable") \
    X(PLG_ENOMEM,    -30109, "out of memory") \
    X(PLG_ENODIRECT, -30110, "filesystem does not support O_DIRECT (opt into PLG_IO_BUFFERED_FDATASYNC)") \
    X(PLG_ESHORT,    -30111, "short write: the log is poisoned") \
    X(PLG_EFORMAT,   -30112, "not a picolog log, or an unsupported format version") \
    X(PLG_ENOENT,    -30113, "no such log or record") \
    X(PLG_ESYS,      -30114, "system call failed (see plg_stats.last_errno, or plg_open_errno after a failed open)") \
    X(PLG_EURING,    -30115, "io_uring setup failed") \
    X(PLG_ETYPE,     -30116, "record length does not match the typed struct") \
    X(PLG_ECLOSED,   -30117, "the log is closing") \
    X(PLG_EBUSY,     -30118, "a reservation is already open") \
    X(PLG_EACCES,    -30119, "permission denied, or a read-only filesystem") \
    X(PLG_EMETA,     -30120, "the log's meta file (durable mark) is damaged or belongs to another log") \
    X(PLG_EVOLATILE, -30130, "the log directory is on tmpfs or ramfs: data in RAM is lost at power loss (opt in with PLG_ALLOW_VOLATILE)") \
    X(PLG_ERELEASED, -30131, "the records this reader needs were removed by plg_release, or by a plg_reset since it opened (not corruption)") \
    X(PLG_EKEY,      -30132, "wrong key: the log was encrypted with another key") \
    X(PLG_ENEEDKEY,  -30133, "the log is encrypted: open it with its key (plg_config.encrypt_key, plg_reader_open_key)") \
    X(PLG_EPLAINLOG, -30134, "a key was given, but the log is not encrypted") \
    X(PLG_ENOCRYPT,  -30135, "a key was given, but this build has no encryption (compile the implementation with PICOLOG_ENCRYPT)")

enum {
#define PLG__ENUM(name, val, msg) name = (val),
    PLG_OK = 0,
    PLG_ERRORS(PLG__ENUM)
#undef PLG__ENUM
};

enum plg_sync_mode {
    PLG_SYNC_AUTO = 0,         /* default: DSYNC on a FUA device, else FDATASYNC + PLG_DSYNC_UNTIL_BEHIND */
    PLG_SYNC_DSYNC = 1,        /* RWF_DSYNC writes; ack = power-loss safe */
    PLG_SYNC_FDATASYNC = 2,    /* write, then fdatasync; ack = power-loss safe */
    PLG_SYNC_NONE_UNSAFE = 3   /* ack on write completion: loses acked data on power loss */
};
enum plg_io_mode {
    PLG_IO_DIRECT = 0,               /* default: O_DIRECT; error PLG_ENODIRECT where unsupported */
    PLG_IO_BUFFERED_FDATASYNC = 1    /* page cache; durability still from the sync mode */
};
enum plg_flags {
    PLG_PIN_WRITER = 1u << 0,  /* pin the writer thread to config.writer_cpu */
    PLG_URING_ONLY = 1u << 1,  /* no synchronous RWF_DSYNC write when the device is idle */
    PLG_ALLOW_VOLATILE = 1u << 2,  /* open on tmpfs/ramfs (RAM: nothing survives power loss) */
    /* Tests and fuzzers that open and close a log per input: no background
     * thread. plg_open makes the segment it needs inline and none ahead;
     * plg_append only queues, and plg_close runs the writer to the end on the
     * caller's thread (making any segment it switches to). Nothing becomes
     * durable before plg_close (plg_wait cannot succeed earlier), and
     * plg_truncate / plg_reset are refused with PLG_EINVAL. */
    PLG_TEST_NO_THREADS = 1u << 3,
    /* Pack every page full, as format version 1 did: a record that arrives
     * while the partly filled page is in flight waits for that write, and
     * the page is rewritten with it. Default (off): the record starts the
     * next page and its own write at once (lower latency; the rest of that
     * page stays unused). Also for tests that compute record offsets. */
    PLG_PACK_DENSE = 1u << 4,
    /* PLG_SYNC_FDATASYNC (AUTO on a disk without FUA) through io_uring: the
     * sync is an IORING_OP_FSYNC (DATASYNC) in flight, submitted once a
     * write completed, and the writer goes on packing and writing meanwhile
     * (one write overlaps it) instead of calling fdatasync and waiting. It
     * covers only writes completed before it; durable moves when it
     * retires, in submission order. By default this is done only while a
     * full write (max_write_bytes) waits for a slot, i.e. while the device
     * is the bottleneck; otherwise the writer calls fdatasync itself, which
     * has no io-wq worker to wait for and measured faster at low load
     * (docs/performance.md). This flag: always in flight. A custom plg_io
     * always syncs this way. */
    PLG_SYNC_IN_FLIGHT = 1u << 5,
    /* PLG_SYNC_FDATASYNC through io_uring: the writer always calls fdatasync
     * itself, even while writes queue up (as before 0.2.0's choice by load;
     * for comparisons). */
    PLG_SYNC_ON_WRITER = 1u << 6,
    /* PLG_SYNC_FDATASYNC: while the writer keeps up (no full max_write_bytes
     * batch waits), each write goes alone and carries RWF_DSYNC, durable
     * when it completes, with no fdatasync after it; once a full batch
     * waits, plain writes on every slot and one fdatasync for several.
     * AUTO sets it on a device without FUA (O_DIRECT, no custom plg_io).
     * There, at 10k-1M records/s, one RWF_DSYNC write acknowledged sooner
     * than a write and then an fdatasync; in a burst, group commit made
     * more records per second than RWF_DSYNC writes on every slot more
     * often than fewer (docs/performance.md). */
    PLG_DSYNC_UNTIL_BEHIND = 1u << 7
};

/* Steps of a record's way to durable, for PICOLOG_TRACE (see COMPILE-TIME
 * OPTIONS). For one record s: DRAINED(s) when the writer framed it, then the
 * first WRITE_SUBMIT whose seq >= s, its WRITE_DONE (same seq), SYNC_BEGIN/END
 * (fdatasync mode) and DURABLE once plg_durable() >= s. */
enum plg_trace_event {
    PLG_TRACE_DRAINED = 1,       /* framed into a staging page (left the ring) */
    PLG_TRACE_WRITE_SUBMIT = 2,  /* a write covering up to seq was submitted */
    PLG_TRACE_WRITE_DONE = 3,    /* that write completed (seq: the same as its submit) */
    PLG_TRACE_SYNC_BEGIN = 4,    /* fdatasync covering up to seq begins */
    PLG_TRACE_SYNC_END = 5,
    PLG_TRACE_DURABLE = 6        /* plg_durable() moved to seq */
};

#define PLG_PAGE_SIZE 4096u
/* Largest record, in bytes: plg_append and plg_reserve refuse a longer one with
 * PLG_ETOOBIG, and the reader refuses a first fragment that claims more. */
#define PLG_MAX_RECORD_BYTES (1u << 30)

/* Optional I/O engine, for fault injection in tests and simulators. When
 * plg_config.io is NULL the log uses io_uring (or pwritev2). Every call is made
 * from the writer thread. A submitted operation completes exactly once, via
 * reap(), with res = bytes written (writes), 0 (fsync), or -errno. */
typedef struct plg_io_cqe { uint64_t tag; int32_t res; } plg_io_cqe;
typedef struct plg_io {
    void *ctx;
    int (*submit_write)(void *ctx, int fd, const void *buf, uint32_t len, uint64_t off, int dsync, uint64_t tag);
    int (*submit_fsync)(void *ctx, int fd, uint64_t tag);
    /* up to max completions; waits at most timeout_ns for the first (0: don't wait) */
    int (*reap)(void *ctx, plg_io_cqe *out, int max, uint64_t timeout_ns);
} plg_io;

#define PLG_MAX_KEYS 16          /* data keys one open may be given (current + old) */

typedef struct plg_config {
    const char *path;            /* log directory (created if missing) */
    size_t   ring_capacity;      /* bytes, power of two; default 8 MiB */
    uint64_t flush_interval_ns;  /* longest a record waits while writes are in flight; default 1 ms */
    uint64_t poll_interval_ns;   /* writer idle sleep; default 10 us; 1 = spin; plg_kick cuts it short */
    uint64_t segment_size;       /* bytes per segment file, multiple of 4 KiB; default 64 MiB */
    uint32_t max_write_bytes;    /* largest single write; default 1 MiB */
    uint32_t max_inflight;       /* writes in flight at once; default 4 (DSYNC without FUA: 1 until a full batch waits) */
    int      sync_mode;          /* enum plg_sync_mode; plg_stats tells what AUTO chose */
    int      io_mode;            /* enum plg_io_mode */
    uint32_t flags;              /* enum plg_flags */
    int      writer_cpu;         /* with PLG_PIN_WRITER */
    const plg_io *io;            /* NULL: io_uring */
    void   (*log_fn)(void *user, int code, const char *msg);  /* diagnostics; NULL: stderr */
    void    *log_user;
    uint64_t first_seq;          /* seq of the first record of a new log; default 1 */
    /* 32-byte data key: a new log is created encrypted and authenticated
     * (AES-256-CBC + HMAC-SHA256 per fragment, docs/encryption.md), an
     * encrypted log is opened with it. Needs the implementation compiled
     * with PICOLOG_ENCRYPT (else PLG_ENOCRYPT). Read during plg_open only.
     * NULL: a plain log (an encrypted one is then PLG_ENEEDKEY). */
    const uint8_t *encrypt_key;
    /* Key rotation (docs/encryption.md): older 32-byte data keys that
     * segments written before may still be sealed under. encrypt_key is the
     * current key: segments made from this open on are sealed under it,
     * older ones are read with the key their header names. A segment whose
     * key is neither given is PLG_EKEY at open (the detail names the key id
     * and the segment). At most PLG_MAX_KEYS - 1; read during plg_open only. */
    const uint8_t *const *old_keys;
    size_t n_old_keys;
    /* Keep what plg_release releases, for audits: each released segment is
     * moved to <archive_dir>/<index>.plg (the same name) instead of being
     * reused or deleted: renamed on one filesystem, else copied, fsynced and
     * renamed there before the original goes, so it is always whole in one
     * place or the other. plg_reader_open_archive reads the archive before
     * the log. NULL or "": none (released segments are reused or deleted).
     * Created if missing (its parent must exist); not the log directory.
     * Only plg_release archives: what plg_reset and plg_truncate discard
     * is discarded as without it. Read during plg_open only. */
    const char *archive_dir;
    /* After its last work (a record packed, a write or sync completed) the
     * writer keeps polling, on its CPU, this long before it sleeps
     * (poll_interval_ns, a kick, a completion): a record that arrives
     * meanwhile is packed and written without a wake-up, and a completion
     * is seen at once. 0 (default): sleep at once. Worth it where the
     * device's write and sync take less than the gap between records and
     * the writer has a CPU of its own (docs/performance.md, "The writer's
     * idle spin"); it costs up to that CPU while records keep coming,
     * nothing more while the log is idle. */
    uint64_t idle_spin_ns;
    /* Segments kept made and zeroed ahead of the one being written; 0 means
     * 1 (default). A burst writes into them at the speed of reused segments
     * instead of competing with their zeros; each costs segment_size of disk
     * from the moment it is made. Past the next one, a segment is made only
     * while the writer is not busy (no full batch waited in the last 100
     * ms), from a released segment when there is one, so the pool drains
     * during a burst and fills again after it. At most PLG_MAX_PREALLOC. */
    uint32_t prealloc_segments;
} plg_config;

#define PLG_MAX_PREALLOC 1024

typedef struct plg_record { uint64_t seq; const void *data; uint32_t len; } plg_record;

typedef struct plg_stats {
    uint64_t appended, written, durable;  /* positions: appended >= written >= durable */
    uint64_t records, bytes;              /* accepted by plg_append/plg_commit */
    uint64_t ring_full;                   /* PLG_EFULL returns */
    uint64_t writes, pages_written, bytes_written, syncs;
    uint64_t segments_created, segment_stalls;
    uint64_t max_write_pages;
    uint64_t errors;                      /* failed or short I/O operations seen */
    uint64_t segments_released, segments_recycled;
    uint64_t dir_syncs;                   /* directory fsyncs for segment files (create, reuse, release) */
    int      prealloc_error;              /* 0, or why the last segment preallocation failed (it is retried) */
    int      prealloc_errno;              /* the errno behind prealloc_error */
    int      sync_mode;                   /* the mode in use (AUTO resolved) */
    int      error;                       /* 0, or the code that poisoned the log */
    int      last_errno;
    const char *backend;                  /* "io_uring", "pwritev2", "custom" */
    /* what plg_open's recovery discarded after the valid end (a torn tail):
     * the bytes were copied to `quarantine` (a file in the log directory)
     * before they were erased; NULL and 0 when nothing was discarded
     * (the name stays valid until plg_close) */
    uint64_t discarded_bytes, discarded_records;
    const char *quarantine;
    uint64_t mark;                        /* durable mark last persisted in the meta file */
    uint64_t pages_left;                  /* partly filled pages whose rest was left unwritten: a record
                                           * came while the page was in flight, and started the next
                                           * page at once instead of waiting for that write */
    uint64_t syncs_in_flight;             /* of syncs, those that were operations in flight (io_uring
                                           * fsync or the plg_io's), not the writer's own fdatasync */
    uint64_t segments_ahead;              /* segments made and zeroed ahead of the one being written */
    uint64_t segments_unwritten;          /* of segments_created, those made during a burst with their
                                           * extents allocated, not zeroed (written once, not twice) */
    uint64_t writes_dsync;                /* of writes, those that carried RWF_DSYNC (durable on completion) */
    uint64_t writes_blocking;             /* of writes, those the writer thread made itself with a blocking
                                           * pwritev2 (a lone page on an idle device without FUA; every
                                           * write of the pwritev2 backend) */
    uint64_t writes_paired;               /* of writes_blocking, those of a page just filled and the partly
                                           * filled one after it: one write, not two in a row */
} plg_stats;

/* Result of scanning a whole log (plg_check and the dump tool). */
typedef struct plg_check_result {
    uint64_t records, first_seq, last_seq, bytes, segments;
    uint64_t first_segment;  /* index of the oldest segment file (above 1 after plg_release) */
    int      status;        /* 0: valid log (maybe a torn tail); PLG_ECORRUPT; other < 0 */
    int      torn_tail;     /* 1: bytes after the valid end were discarded as a torn tail */
    char     file[4096];    /* segment where the valid log ends, or the corruption is */
    uint64_t offset;        /* byte offset in that file */
    char     detail[256];
} plg_check_result;

typedef struct plg_log plg_log;
typedef struct plg_reader plg_reader;

/* >>api */
PLGDEF int      plg_open(plg_log **out, const plg_config *cfg);
PLGDEF plg_config plg_config_defaults(const plg_config *cfg);  /* cfg with defaults filled in */
PLGDEF int64_t  plg_append(plg_log *log, const void *data, uint32_t len);
PLGDEF void    *plg_reserve(plg_log *log, uint32_t len);   /* NULL: see plg_reserve_error */
PLGDEF int      plg_reserve_error(const plg_log *log);     /* why the last plg_reserve gave NULL */
PLGDEF int64_t  plg_commit(plg_log *log);
PLGDEF uint64_t plg_appended(const plg_log *log);
PLGDEF uint64_t plg_written(const plg_log *log);
PLGDEF uint64_t plg_durable(const plg_log *log);
PLGDEF int      plg_wait(plg_log *log, uint64_t seq, int64_t timeout_ns); /* < 0: no timeout */
PLGDEF int      plg_error(const plg_log *log);              /* 0, or what poisoned it */
PLGDEF void     plg_get_stats(const plg_log *log, plg_stats *out);
PLGDEF int      plg_release(plg_log *log, uint64_t seq);  /* records < seq may go: old segments are reused */
PLGDEF int      plg_truncate(plg_log *log, uint64_t seq);  /* drop every record after seq; durable on return */
PLGDEF int      plg_reset(plg_log *log, uint64_t next_seq); /* drop every record; the next append is next_seq */
PLGDEF int      plg_notify_fd(plg_log *log);  /* eventfd, readable when plg_durable advances; < 0 error */
PLGDEF void     plg_kick(plg_log *log);       /* wake an idle writer now (a producer that appends in batches); any thread.
                                                 * From the first call on, the idle writer waits for kicks (up to poll_interval_ns) */
PLGDEF int      plg_close(plg_log *log);
PLGDEF const char *plg_strerror(int err);

PLGDEF int      plg_reader_open(plg_reader **out, const char *path);
PLGDEF int      plg_reader_next(plg_reader *r, plg_record *rec);  /* 1, 0 = end (for now), < 0 error */
PLGDEF int      plg_reader_wait(plg_reader *r, int64_t timeout_ns); /* 1 ready, 0 timeout, < 0 error; < 0 ns: no timeout */
PLGDEF int      plg_reader_seek(plg_reader *r, uint64_t seq);
PLGDEF const char *plg_reader_where(const plg_reader *r, uint64_t *offset); /* file/offset of the next read, or of the corruption */
PLGDEF void     plg_reader_close(plg_reader *r);
PLGDEF int      plg_check(const char *path, plg_check_result *out);
/* Waits until no open file holds a segment of the log in path for writing:
 * a writer that died (a crash, SIGKILL) can leave writes in the kernel
 * (io_uring) that land after its process is gone, and each holds the
 * writer's segment file open until it has landed. plg_open waits for them
 * itself before it recovers (for at most PLG_SETTLE_NS); call this before
 * reading or checking a log whose writer just died, to see what plg_open
 * will recover. With a writer running (in any process, this one too) it
 * waits until the timeout. 0; PLG_ETIMEDOUT; PLG_ENOENT; other < 0. */
PLGDEF int      plg_settle(const char *path, int64_t timeout_ns);  /* < 0 ns: no timeout */
#ifndef PLG_SETTLE_NS
#define PLG_SETTLE_NS 30000000000ll      /* plg_open's wait for a dead writer's writes */
#endif
/* The same for an encrypted log: key is its 32-byte data key (NULL: as
 * without _key). PLG_EKEY: another key; PLG_ENEEDKEY: plg_reader_open or
 * plg_check on an encrypted log; PLG_EPLAINLOG: a key for a plain log. */
PLGDEF int      plg_reader_open_key(plg_reader **out, const char *path, const uint8_t *key);
PLGDEF int      plg_check_key(const char *path, const uint8_t *key, plg_check_result *out);
/* The same for a log whose segments are under several keys (key rotation):
 * keys[0..n) in any order, each 32 bytes; every segment is read with the key
 * its header names; one that none of them opens is PLG_EKEY. */
PLGDEF int      plg_reader_open_keys(plg_reader **out, const char *path, const uint8_t *const *keys, size_t n);
/* A reader of the log in path that begins in its archive (plg_config.
 * archive_dir): the segments plg_release moved there are read first, then
 * the log's own, as one log (a segment moved while the reader reads it is
 * found in the archive). keys: as plg_reader_open_keys (n = 0: a plain
 * log). A segment missing between the two is PLG_ECORRUPT; archive_dir
 * NULL or "" is plg_reader_open_keys. */
PLGDEF int      plg_reader_open_archive(plg_reader **out, const char *path, const char *archive_dir,
                                        const uint8_t *const *keys, size_t n);
PLGDEF int      plg_check_keys(const char *path, const uint8_t *const *keys, size_t n, plg_check_result *out);

/* Shared primitives (also used by pinnacle_persist.h). */
PLGDEF uint32_t plg_crc32c(uint32_t crc, const void *data, size_t len);  /* crc 0 to start; chainable */
PLGDEF uint32_t plg_crc32c_portable(uint32_t crc, const void *data, size_t len);
PLGDEF int      plg_fsync_dir(const char *dir);
PLGDEF int      plg_write_file_durable(const char *path, const void *data, size_t len, unsigned mode);
/* The same, with each step (create the temp, write, fsync, close, rename,
 * fsync the directory, unlink the temp after a failure) made through ops, so
 * a test can route them through a simulated disk. NULL ops or a NULL member:
 * the real call. Members return what the syscall does (-1 and errno). */
typedef struct plg_file_ops {
    void *ctx;
    int     (*open)(void *ctx, const char *path, int flags, unsigned mode);
    int64_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, int64_t off);
    int     (*fsync)(void *ctx, int fd);
    int     (*close)(void *ctx, int fd);
    int     (*rename)(void *ctx, const char *from, const char *to);
    int     (*unlink)(void *ctx, const char *path);
    int     (*fsync_dir)(void *ctx, const char *dir);
} plg_file_ops;
PLGDEF int      plg_write_file_durable_ops(const plg_file_ops *ops, const char *path, const void *data, size_t len, unsigned mode);
PLGDEF uint64_t plg_now_ns(void);       /* CLOCK_MONOTONIC */
PLGDEF int      plg_random(void *buf, size_t len);

#ifdef __cplusplus
} /* extern "C" */
#endif

/* Typed helper: one call logs one fixed-size POD struct (the original
 * Picolog's Logger<Trade>).  PLG_TYPED(trade, struct trade) defines
 *   int64_t trade_append(plg_log *, const struct trade *)
 *   int     trade_get(const plg_record *, struct trade *)   0 or PLG_ETYPE */
#define PLG_TYPED(name, T) \
    static inline int64_t name##_append(plg_log *log_, const T *v_) { \
        return plg_append(log_, v_, (uint32_t)sizeof(T)); } \
    static inline int name##_get(const plg_record *r_, T *out_) { \
        if (r_->len != sizeof(T)) return PLG_ETYPE; \
        memcpy(out_, r_->data, sizeof(T)); return 0; }

#ifdef __cplusplus
#include <cstring>
#include <type_traits>
namespace plg {
template <class T> struct logger {
    static_assert(std::is_trivially_copyable<T>::value, "plg::logger<T> needs a trivially copyable (POD) T");
    plg_log *log;
    explicit logger(plg_log *l) : log(l) {}
    int64_t append(const T &v) { return plg_append(log, &v, (uint32_t)sizeof(T)); }
    static int get(const plg_record &r, T &out) {
        if (r.len != sizeof(T)) return PLG_ETYPE;
        std::memcpy(&out, r.data, sizeof(T)); return 0;
    }
};
} /* namespace plg */
#endif

#endif /* PICOLOG_H */

/* ======================================================================== */
#ifdef PICOLOG_IMPLEMENTATION
#ifndef PICOLOG_IMPLEMENTATION_DONE
#define PICOLOG_IMPLEMENTATION_DONE
PLGDEF uint32_t plg_version(void) { return PICOLOG_VERSION; }
static __thread int plg__open_errno;
PLGDEF int plg_open_errno(void) { return plg__open_errno; }

/* The implementation defines _GNU_SOURCE itself when it comes first. If a
 * system header was included before it, only POSIX 2008 + the default BSD/SVID
 * declarations are needed (gnu11/gnu++ modes have them); the few GNU-only calls
 * go through syscall() then. A strict -std=c11 TU needs it first. */
#if defined(__GLIBC__) && !(defined(__USE_MISC) && defined(__USE_XOPEN2K8))
#error "picolog.h: put #define PICOLOG_IMPLEMENTATION and #include \"picolog.h\" before any system header, or compile with -D_GNU_SOURCE"
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <sys/eventfd.h>
#include <signal.h>
#ifndef PICOLOG_NO_URING
#include <liburing.h>
#endif
#ifdef PICOLOG_ENCRYPT
#include "vault.h"   /* the project's one crypto implementation (AES-NI/SHA-NI when present) */
#endif

#if defined(PICOLOG_MALLOC) && defined(PICOLOG_FREE) && defined(PICOLOG_REALLOC)
#elif !defined(PICOLOG_MALLOC) && !defined(PICOLOG_FREE) && !defined(PICOLOG_REALLOC)
#define PICOLOG_MALLOC(sz) malloc(sz)
#define PICOLOG_REALLOC(p, sz) realloc(p, sz)
#define PICOLOG_FREE(p) free(p)
#else
#error "picolog.h: define all of PICOLOG_MALLOC, PICOLOG_REALLOC and PICOLOG_FREE, or none"
#endif
#ifndef PICOLOG_ASSERT
#include <assert.h>
#define PICOLOG_ASSERT(x) assert(x)
#endif

#ifndef PICOLOG_TRACE
#define PICOLOG_TRACE(ev, seq) ((void)0)
#endif
#ifndef PICOLOG_WAIT_SPIN_NS
#define PICOLOG_WAIT_SPIN_NS 0
#endif

#ifndef RWF_DSYNC
#define RWF_DSYNC 0x00000002
#endif
#if !defined(O_DIRECT) && defined(__O_DIRECT)
#define O_DIRECT __O_DIRECT
#endif

#ifdef __cplusplus
#define PLG__STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define PLG__STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

/* >>util ------------------------------------------------------------------ */
/* Atomics through the GCC/Clang builtins so the same code is C11 and C++. */
#define plg__load_rlx(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define plg__load_acq(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define plg__store_rlx(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define plg__store_rel(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define plg__add_rlx(p, v)   __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
/* single-writer counter: no locked RMW on the hot path */
#define plg__bump(p, v)      plg__store_rlx((p), plg__load_rlx(p) + (v))

#define PLG__FRAG_HDR   24u   /* fragment header bytes */
#define PLG__MIN_FRAG   32u   /* a page tail shorter than this is padding */
#define PLG__ALIGN8(x)  (((x) + 7u) & ~(uint64_t)7u)

static inline void plg__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

PLGDEF uint64_t plg_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void plg__sleep_ns(uint64_t ns) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / 1000000000ull);
    ts.tv_nsec = (long)(ns % 1000000000ull);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Page-aligned memory, touched now so the hot path never page-faults. */
static void *plg__map(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void plg__put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void plg__put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void plg__put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint16_t plg__get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t plg__get32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t plg__get64(const uint8_t *p) { return (uint64_t)plg__get32(p) | ((uint64_t)plg__get32(p + 4) << 32); }

PLGDEF int plg_random(void *buf, size_t len) {
    uint8_t *p = (uint8_t *)buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) { if (errno == EINTR) continue; return PLG_ESYS; }
        p += n; len -= (size_t)n;
    }
    return 0;
}

PLGDEF const char *plg_strerror(int err) {
    switch (err) {
    case PLG_OK: return "success";
#define PLG__STR(name, val, msg) case name: return #name ": " msg;
    PLG_ERRORS(PLG__STR)
#undef PLG__STR
    default: return "unknown picolog error";
    }
}

/* errno -> picolog code */
static int plg__from_errno(int e) {
    switch (e) {
    case ENOSPC: case EDQUOT: return PLG_ENOSPC;
    case EIO: return PLG_EIO;
    case ENOMEM: return PLG_ENOMEM;
    case ENOENT: return PLG_ENOENT;
    case EACCES: case EPERM: case EROFS: return PLG_EACCES;
    default: return PLG_ESYS;      /* EAGAIN, EINVAL, ...: plg_stats.last_errno says which */
    }
}

/* >>crc ------------------------------------------------------------------- */
/* CRC32C (Castagnoli): SSE4.2 crc32 instruction when the CPU has it,
 * slicing-by-8 tables otherwise. plg_crc32c(0, "123456789", 9) == 0xE3069283. */
static uint32_t plg__crc_tab[8][256];
static pthread_once_t plg__crc_once = PTHREAD_ONCE_INIT;
static void plg__crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        plg__crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            plg__crc_tab[t][i] = (plg__crc_tab[t - 1][i] >> 8) ^ plg__crc_tab[0][plg__crc_tab[t - 1][i] & 0xFF];
}

PLGDEF uint32_t plg_crc32c_portable(uint32_t crc, const void *data, size_t len) {
    pthread_once(&plg__crc_once, plg__crc_init);
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = ~crc;
    while (len >= 8) {
        uint32_t lo = c ^ plg__get32(p), hi = plg__get32(p + 4);
        c = plg__crc_tab[7][lo & 0xFF] ^ plg__crc_tab[6][(lo >> 8) & 0xFF] ^
            plg__crc_tab[5][(lo >> 16) & 0xFF] ^ plg__crc_tab[4][lo >> 24] ^
            plg__crc_tab[3][hi & 0xFF] ^ plg__crc_tab[2][(hi >> 8) & 0xFF] ^
            plg__crc_tab[1][(hi >> 16) & 0xFF] ^ plg__crc_tab[0][hi >> 24];
        p += 8; len -= 8;
    }
    while (len--) c = (c >> 8) ^ plg__crc_tab[0][(c ^ *p++) & 0xFF];
    return ~c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2")))
static uint32_t plg__crc32c_hw(uint32_t crc, const void *data, size_t len) {
    /* Each crc32 instruction waits for the one before it, so count them: at
     * most one of each width before the 8-byte loop (to align it) and after
     * it (the rest), not one per byte. A fragment's 20 header bytes start
     * 4 bytes into it, and a 100-byte payload ends in 4 bytes. */
    const uint8_t *p = (const uint8_t *)data;
    uint64_t c = (uint32_t)~crc;
    uint16_t h; uint32_t w; uint64_t v;
    if (len >= 8) {
        if ((uintptr_t)p & 1) { c = __builtin_ia32_crc32qi((uint32_t)c, *p); p += 1; len -= 1; }
        if ((uintptr_t)p & 2) { memcpy(&h, p, 2); c = __builtin_ia32_crc32hi((uint32_t)c, h); p += 2; len -= 2; }
        if ((uintptr_t)p & 4) { memcpy(&w, p, 4); c = __builtin_ia32_crc32si((uint32_t)c, w); p += 4; len -= 4; }
    }
    while (len >= 8) { memcpy(&v, p, 8); c = __builtin_ia32_crc32di(c, v); p += 8; len -= 8; }
    if (len & 4) { memcpy(&w, p, 4); c = __builtin_ia32_crc32si((uint32_t)c, w); p += 4; }
    if (len & 2) { memcpy(&h, p, 2); c = __builtin_ia32_crc32hi((uint32_t)c, h); p += 2; }
    if (len & 1) c = __builtin_ia32_crc32qi((uint32_t)c, *p);
    return ~(uint32_t)c;
}
/* A fragment's CRC from its fields as integers: the log id, then header
 * bytes 4..23 (h1 = length | type << 16 | flags << 24, h2 = epoch | aux <<
 * 32, the sequence number), little-endian as stored, then the payload. */
__attribute__((target("sse4.2")))
static uint32_t plg__frag_crc_fields_hw(uint64_t log_id, uint32_t h1, uint64_t h2, uint64_t seq,
                                        const void *payload, uint32_t len) {
    uint64_t c = 0xFFFFFFFFu;
    c = __builtin_ia32_crc32di(c, log_id);
    c = __builtin_ia32_crc32si((uint32_t)c, h1);
    c = __builtin_ia32_crc32di(c, h2);
    c = __builtin_ia32_crc32di(c, seq);
    return plg__crc32c_hw(~(uint32_t)c, payload, len);
}
static int plg__crc_hw = -1;
static int plg__crc_hw_get(void) {
    int hw = plg__load_rlx(&plg__crc_hw);
    if (hw < 0) { hw = __builtin_cpu_supports("sse4.2") ? 1 : 0; plg__store_rlx(&plg__crc_hw, hw); }
    return hw;
}
PLGDEF uint32_t plg_crc32c(uint32_t crc, const void *data, size_t len) {
    return plg__crc_hw_get() ? plg__crc32c_hw(crc, data, len) : plg_crc32c_portable(crc, data, len);
}
#define PLG__CRC_FIELDS_HW 1
#else
PLGDEF uint32_t plg_crc32c(uint32_t crc, const void *data, size_t len) {
    return plg_crc32c_portable(crc, data, len);
}
#endif

/* >>files ----------------------------------------------------------------- */
static int plg__fsync_fd(int fd) {
    while (fsync(fd) != 0) { if (errno != EINTR) return plg__from_errno(errno); }
    return 0;
}

PLGDEF int plg_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return plg__from_errno(errno);
    int rc = plg__fsync_fd(fd);
    close(fd);
    return rc;
}

static int plg__dirname(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) { if (cap < 2) return PLG_EINVAL; strcpy(out, "."); return 0; }
    size_t n = (size_t)(slash - path);
    if (n == 0) n = 1;
    if (n + 1 > cap) return PLG_EINVAL;
    memcpy(out, path, n); out[n] = 0;
    return 0;
}

static int plg__write_all(int fd, const void *data, size_t len, uint64_t off) {
    const uint8_t *p = (const uint8_t *)data;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) { if (errno == EINTR) continue; return plg__from_errno(errno); }
        if (n == 0) return PLG_ESHORT;
        p += n; len -= (size_t)n; off += (uint64_t)n;
    }
    return 0;
}

/* Are n bytes at p all zero? (libc's memcmp of the range against itself
 * shifted by one byte: word-wide, where a byte loop is not) */
static int plg__all_zero(const uint8_t *p, size_t n) {
    return n == 0 || (p[0] == 0 && (n == 1 || memcmp(p, p + 1, n - 1) == 0));
}

static int plg__read_full(int fd, void *buf, size_t len, uint64_t off, size_t *got) {
    uint8_t *p = (uint8_t *)buf; size_t total = 0;
    while (total < len) {
        ssize_t n = pread(fd, p + total, len - total, (off_t)(off + total));
        if (n < 0) { if (errno == EINTR) continue; return plg__from_errno(errno); }
        if (n == 0) break;
        total += (size_t)n;
    }
    *got = total;
    return 0;
}

/* Replace `path` atomically and durably: write path.tmp, fsync, rename,
 * fsync the directory. A crash leaves the old file or the new one. */
static int plg__real_open(void *c, const char *p, int flags, unsigned mode) { (void)c; return open(p, flags, (mode_t)mode); }
static int64_t plg__real_pwrite(void *c, int fd, const void *buf, size_t len, int64_t off) {
    (void)c; return (int64_t)pwrite(fd, buf, len, (off_t)off);
}
static int plg__real_fsync(void *c, int fd) { (void)c; return fsync(fd); }
static int plg__real_close(void *c, int fd) { (void)c; return close(fd); }
static int plg__real_rename(void *c, const char *from, const char *to) { (void)c; return rename(from, to); }
static int plg__real_unlink(void *c, const char *p) { (void)c; return unlink(p); }
static int plg__real_fsync_dir(void *c, const char *dir) {
    (void)c;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd), err = errno;
    close(fd);
    errno = err;
    return rc;
}
PLGDEF int plg_write_file_durable_ops(const plg_file_ops *ops, const char *path, const void *data, size_t len, unsigned mode) {
    plg_file_ops o;
    memset(&o, 0, sizeof o);
    if (ops) o = *ops;
    if (!o.open) o.open = plg__real_open;
    if (!o.pwrite) o.pwrite = plg__real_pwrite;
    if (!o.fsync) o.fsync = plg__real_fsync;
    if (!o.close) o.close = plg__real_close;
    if (!o.rename) o.rename = plg__real_rename;
    if (!o.unlink) o.unlink = plg__real_unlink;
    if (!o.fsync_dir) o.fsync_dir = plg__real_fsync_dir;
    char tmp[4096], dir[4096];
    if (!path || snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return PLG_EINVAL;
    int rc = plg__dirname(path, dir, sizeof dir);
    if (rc) return rc;
    int fd = o.open(o.ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) return plg__from_errno(errno);
    const uint8_t *p = (const uint8_t *)data;
    for (uint64_t off = 0, left = len; left > 0 && !rc; ) {          /* write */
        int64_t n = o.pwrite(o.ctx, fd, p + off, (size_t)left, (int64_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = plg__from_errno(errno);
        else if (n == 0) rc = PLG_ESHORT;
        else { off += (uint64_t)n; left -= (uint64_t)n; }
    }
    while (!rc && o.fsync(o.ctx, fd) != 0) if (errno != EINTR) rc = plg__from_errno(errno);
    if (o.close(o.ctx, fd) != 0 && !rc) rc = plg__from_errno(errno);
    if (!rc && o.rename(o.ctx, tmp, path) != 0) rc = plg__from_errno(errno);
    if (rc) { o.unlink(o.ctx, tmp); return rc; }
    while (o.fsync_dir(o.ctx, dir) != 0) if (errno != EINTR) return plg__from_errno(errno);
    return 0;
}
PLGDEF int plg_write_file_durable(const char *path, const void *data, size_t len, unsigned mode) {
    return plg_write_file_durable_ops(NULL, path, data, len, mode);
}

/* >>format ---------------------------------------------------------------- */
/* Segment file <dir>/<20-digit index>.plg: page 0 is the segment header, the
 * other pages hold fragments, each where the one before it ends. Fragment
 * header, little-endian; a fragment takes its header and payload rounded up
 * to 8 bytes:
 *   0 u32 crc32c(log_id || bytes 4..23 || payload)
 *   4 u16 payload length          6 u8 type (FULL FIRST MIDDLE LAST)
 *   7 u8 flags (EPOCH_START)      8 u32 epoch (random per writer incarnation)
 *  12 u32 aux (FULL/FIRST: whole record length)   16 u64 sequence number
 * Fragments never cross a page; a page tail shorter than 32 bytes is padding.
 * Version 2: a writer that has the partly filled tail page in flight starts
 * the next record on the next page; the rest of the page is never written.
 * The record there is exactly the next seq, same epoch, FULL or FIRST, no
 * EPOCH_START (plg__scan_skip). Version 1 segments never leave such a gap.
 * Version 5 (plain logs): version 2, and a whole record that directly
 * follows the fragment before it in the same page (its seq + 1, the same
 * epoch, no flags) may take a SHORT header of 8 bytes, rounded up to 4:
 *   0 u32 crc32c(log_id || bytes 4..7 || epoch || aux = length || seq || payload)
 *   4 u16 payload length          6 u8 type SHORT       7 u8 flags (0)
 * Its epoch and seq are not stored but implied by the fragment before it,
 * and covered by the CRC as if stored, so stale bytes of another incarnation
 * or position never verify. A page's first fragment is never SHORT: seek,
 * the skip rule and the damage checks, which read a page's first fragment on
 * its own, are unchanged. A 100-byte record takes 108 bytes, not 128. The
 * reader needs no version to walk a page (each header says its own size);
 * the version keeps an older picolog, which would stop at the first SHORT
 * header as at a torn tail, from reading the segment at all. */
enum { PLG__FULL = 1, PLG__FIRST = 2, PLG__MIDDLE = 3, PLG__LAST = 4, PLG__SHORT = 5 };
#define PLG__SHORT_HDR 8u
#define PLG__F_EPOCH_START 1u
#define PLG__MAX_RECORD   PLG_MAX_RECORD_BYTES   /* one limit for writer and reader */
#define PLG__MAX_SEGMENT  ((uint64_t)1 << 40)
#define PLG__MAX_WINDOW   ((uint64_t)62 * (64u << 20) + PLG_PAGE_SIZE)   /* the largest writes in flight + 4 KiB */
#define PLG__SEG_MAGIC    "PICOLOG1"
#define PLG__VERSION      5u   /* what new plain segments get; 1, 2 and 5 are read */
#define PLG__VERSION_MIN  1u
#define PLG__VERSION_ENC  3u   /* an encrypted log's segments (version 2 framing, sealed fragments) */
#define PLG__VERSION_KEYS 4u   /* version 3 + the sealing key's id at byte 64 (key rotation) */
#define PLG__VERSION_MAX  5u

/* Header page: 0 magic, 8 u32 version, 12 u32 page size, 16 log_id,
 * 24 seg_index, 32 seg_size, 40 window, 48 created_ns (u64 each),
 * 60 u32 crc32c of bytes 0..59; version 4 only: 64 u64 key_id (the data key
 * every fragment here is sealed under; version 3 segments are under the key
 * picolog.meta names), 72 u32 crc32c of bytes 0..71. The CRC at 60 keeps
 * its coverage so an older picolog sees a valid header of an unknown
 * version (PLG_EFORMAT), not a damaged one. */
typedef struct plg__seghdr {
    uint64_t log_id, seg_index, seg_size, window, created_ns;
    uint32_t version;
    uint64_t key_id;             /* version 4 */
} plg__seghdr;

static int plg__seghdr_encrypted(uint32_t version) {
    return version == PLG__VERSION_ENC || version == PLG__VERSION_KEYS;
}

static void plg__seghdr_encode(uint8_t *page, const plg__seghdr *h) {
    memset(page, 0, PLG_PAGE_SIZE);
    memcpy(page, PLG__SEG_MAGIC, 8);
    plg__put32(page + 8, h->version);
    plg__put32(page + 12, PLG_PAGE_SIZE);
    plg__put64(page + 16, h->log_id);
    plg__put64(page + 24, h->seg_index);
    plg__put64(page + 32, h->seg_size);
    plg__put64(page + 40, h->window);
    plg__put64(page + 48, h->created_ns);
    plg__put32(page + 60, plg_crc32c(0, page, 60));
    if (h->version == PLG__VERSION_KEYS) {
        plg__put64(page + 64, h->key_id);
        plg__put32(page + 72, plg_crc32c(0, page, 72));
    }
}

static int plg__seghdr_decode(const uint8_t *page, plg__seghdr *h) {
    if (memcmp(page, PLG__SEG_MAGIC, 8) != 0) return PLG_EFORMAT;
    if (plg__get32(page + 60) != plg_crc32c(0, page, 60)) return PLG_ECORRUPT;
    h->version = plg__get32(page + 8);
    if (h->version < PLG__VERSION_MIN || h->version > PLG__VERSION_MAX || plg__get32(page + 12) != PLG_PAGE_SIZE)
        return PLG_EFORMAT;
    if (h->version == PLG__VERSION_KEYS && plg__get32(page + 72) != plg_crc32c(0, page, 72)) return PLG_ECORRUPT;
    h->key_id = h->version == PLG__VERSION_KEYS ? plg__get64(page + 64) : 0;
    h->log_id = plg__get64(page + 16);
    h->seg_index = plg__get64(page + 24);
    h->seg_size = plg__get64(page + 32);
    h->window = plg__get64(page + 40);
    h->created_ns = plg__get64(page + 48);
    if (h->seg_size < 4 * PLG_PAGE_SIZE || h->seg_size % PLG_PAGE_SIZE || h->seg_size > PLG__MAX_SEGMENT ||
        h->window < PLG_PAGE_SIZE || h->window > PLG__MAX_WINDOW)
        return PLG_EFORMAT;                        /* checksummed, but not something plg_open makes */
    return 0;
}

typedef struct plg__frag {
    uint32_t len, epoch, aux;
    uint8_t type, flags;         /* a SHORT fragment reads as FULL, its epoch and seq implied */
    uint64_t seq;
    const uint8_t *payload;      /* plaintext; encrypted log: the ciphertext */
    uint32_t stored;             /* payload bytes on disk (encrypted: tag + ciphertext) */
    uint32_t step;               /* bytes the fragment takes in its page, alignment included */
} plg__frag;

/* Where a fragment is read: prev, the fragment right before it in the same
 * page verified (a SHORT one implies its epoch and seq from that one). */
typedef struct plg__fpos {
    int prev;
    uint32_t prev_epoch;
    uint64_t prev_seq;
} plg__fpos;

/* >>crypt: encryption at rest (PICOLOG_ENCRYPT; docs/encryption.md). An
 * encrypted log (segment format version 3) stores each fragment as
 *   24-byte header (as above; len = plaintext bytes; MIDDLE/LAST: aux = the
 *   fragment's byte offset in its record), 16-byte tag, ciphertext
 *   = AES-256-CBC(K_enc, IV, payload, PKCS#7): (len / 16 + 1) * 16 bytes,
 *   IV = AES-256(K_iv, seq u64 || epoch u32 || aux u32)   (ESSIV style)
 *   tag = HMAC-SHA256(K_mac, header bytes 4..23 || ciphertext)[0..15]
 * and the CRC32C covers header, tag and ciphertext. K_x = HMAC-SHA256(data
 * key, "picolog v1 <x>" || 0 || log_id LE): per log, so one data key may
 * serve many logs. Each fragment is sealed once, when the writer packs it,
 * and never changes: a torn rewrite of the tail page cannot touch it. */
typedef struct plg__crypt plg__crypt;
/* The keys one open was given, derived for the log (k[0]: the writer's
 * current key, or the first key given to a reader). Never changes while in
 * use, so the writer, the preallocation thread and a scan may share it. */
typedef struct plg__keys { plg__crypt *k[PLG_MAX_KEYS]; uint32_t n; } plg__keys;
#define PLG__TAG 16u
/* An encrypted fragment laid out in its page with its payload in clear, to
 * be sealed with the others of its batch (plg__seal_batch) before the page
 * can be written: encrypting and tagging several at once keeps the AES and
 * SHA units busy, where one fragment's CBC chain waits on every block. */
typedef struct plg__seal_job { uint8_t *at; const plg__crypt *k; uint32_t ct_len; } plg__seal_job;
#define PLG__SEAL_BATCH 32u
#define PLG__CIPHER_V1 1u              /* meta: AES-256-CBC + HMAC-SHA256, as above */
#ifdef PICOLOG_ENCRYPT
struct plg__crypt {
    uint8_t k_enc[32], k_iv[32];
    vault_aes256_ctx enc, iv;          /* the two AES keys, expanded once */
    vault_sha256_ctx mac_in, mac_out;  /* HMAC key blocks absorbed once */
    uint64_t key_id; uint8_t check[16];
};

static void plg__kdf(const uint8_t key[32], const char *label, uint64_t log_id, int with_id, uint8_t out[32]) {
    uint8_t msg[64]; size_t n = strlen(label);
    PICOLOG_ASSERT(n + 9 <= sizeof msg);
    memcpy(msg, label, n);
    msg[n++] = 0;
    if (with_id) { plg__put64(msg + n, log_id); n += 8; }
    vault_hmac_sha256(key, 32, msg, n, out);
    vault_wipe(msg, sizeof msg);
}

/* All keys of one log from its data key; heap, wiped by plg__crypt_free. */
static plg__crypt *plg__crypt_new(const uint8_t key[32], uint64_t log_id) {
    plg__crypt *k = (plg__crypt *)PICOLOG_MALLOC(sizeof *k);
    if (!k) return NULL;
    uint8_t mk[32], blk[64], t[32];
    plg__kdf(key, "picolog v1 enc", log_id, 1, k->k_enc);
    plg__kdf(key, "picolog v1 iv", log_id, 1, k->k_iv);
    plg__kdf(key, "picolog v1 mac", log_id, 1, mk);
    plg__kdf(key, "picolog v1 check", log_id, 1, t);
    memcpy(k->check, t, sizeof k->check);
    plg__kdf(key, "picolog v1 key id", 0, 0, t);
    k->key_id = plg__get64(t);
    vault_aes256_init(&k->enc, k->k_enc);
    vault_aes256_init(&k->iv, k->k_iv);
    memset(blk, 0, sizeof blk);
    memcpy(blk, mk, 32);
    for (int i = 0; i < 64; i++) blk[i] ^= 0x36;
    vault_sha256_init(&k->mac_in); vault_sha256_update(&k->mac_in, blk, 64);
    for (int i = 0; i < 64; i++) blk[i] ^= 0x36 ^ 0x5c;
    vault_sha256_init(&k->mac_out); vault_sha256_update(&k->mac_out, blk, 64);
    vault_wipe(mk, sizeof mk); vault_wipe(blk, sizeof blk); vault_wipe(t, sizeof t);
    return k;
}

static void plg__crypt_free(plg__crypt *k) {
    if (!k) return;
    vault_wipe(k, sizeof *k);
    PICOLOG_FREE(k);
}

static plg__crypt *plg__crypt_dup(const plg__crypt *k) {
    plg__crypt *c = k ? (plg__crypt *)PICOLOG_MALLOC(sizeof *c) : NULL;
    if (c) memcpy(c, k, sizeof *c);
    return c;
}

static void plg__keys_free(plg__keys *r) {
    for (uint32_t i = 0; i < r->n; i++) plg__crypt_free(r->k[i]);
    memset(r, 0, sizeof *r);
}

/* r = the n data keys derived for log_id, or a copy of have. */
static int plg__keys_make(plg__keys *r, const uint8_t *const *keys, size_t n, uint64_t log_id, const plg__keys *have) {
    memset(r, 0, sizeof *r);
    size_t count = have ? have->n : n;
    PICOLOG_ASSERT(count <= PLG_MAX_KEYS);
    for (size_t i = 0; i < count; i++) {
        r->k[i] = have ? plg__crypt_dup(have->k[i]) : plg__crypt_new(keys[i], log_id);
        if (!r->k[i]) { plg__keys_free(r); return PLG_ENOMEM; }
        r->n = (uint32_t)i + 1;
    }
    return 0;
}

/* The key with this id, or NULL: not given. */
static const plg__crypt *plg__keys_find(const plg__keys *r, uint64_t key_id) {
    for (uint32_t i = 0; i < r->n; i++) if (r->k[i]->key_id == key_id) return r->k[i];
    return NULL;
}

/* IV of the fragment whose header is at hdr: unique per (seq, epoch, aux),
 * i.e. per fragment of one writer incarnation. */
static void plg__frag_iv(const plg__crypt *k, const uint8_t *hdr, uint8_t iv[16]) {
    uint8_t b[16];
    memcpy(b, hdr + 16, 8);            /* seq */
    memcpy(b + 8, hdr + 8, 4);         /* epoch */
    memcpy(b + 12, hdr + 12, 4);       /* aux */
    vault_aes256_ctx_encrypt_block(&k->iv, b, iv);
}

static void plg__frag_tag(const plg__crypt *k, const uint8_t *hdr, const uint8_t *ct, uint32_t ct_len,
                          uint8_t tag[32]) {
    vault_sha256_ctx c = k->mac_in;
    uint8_t inner[32];
    vault_sha256_update(&c, hdr + 4, PLG__FRAG_HDR - 4);
    vault_sha256_update(&c, ct, ct_len);
    vault_sha256_final(&c, inner);
    c = k->mac_out;
    vault_sha256_update(&c, inner, 32);
    vault_sha256_final(&c, tag);
}

/* Decrypt fragment f (validated: its tag matched) into out, which holds
 * f->len rounded up to the next 16 + 16 bytes. 0 or PLG_ECORRUPT. */
static int plg__frag_open(const plg__crypt *k, const plg__frag *f, uint8_t *out) {
    uint8_t iv[16]; size_t n = 0;
    const uint8_t *hdr = f->payload - PLG__TAG - PLG__FRAG_HDR;
    plg__frag_iv(k, hdr, iv);
    int rc = vault_aes256_ctx_cbc_decrypt(&k->enc, iv, f->payload, f->stored - PLG__TAG, out, &n);
    return rc == 0 && n == f->len ? 0 : PLG_ECORRUPT;
}
#endif

static uint64_t plg__crypt_key_id(const plg__crypt *k) {
#ifdef PICOLOG_ENCRYPT
    return k ? k->key_id : 0;
#else
    (void)k;
    return 0;
#endif
}

/* Smallest page tail that can hold a fragment; a shorter one is padding. */
static uint32_t plg__min_frag(const plg__crypt *k) { return k ? PLG__FRAG_HDR + PLG__TAG + 16u : PLG__MIN_FRAG; }

/* Payload bytes a fragment holds on disk (after the header). */
static uint32_t plg__stored(const plg__crypt *k, uint32_t len) {
    return k ? PLG__TAG + (len / 16u + 1u) * 16u : len;
}

/* Most payload bytes of one fragment that fit in room bytes (header included). */
static uint32_t plg__frag_fit(const plg__crypt *k, uint32_t room) {
    if (room < plg__min_frag(k)) return 0;
    /* (room & ~7): after a SHORT fragment room may be 4 more than a
     * multiple of 8, and a fragment takes its bytes rounded up to 8 */
    return k ? ((room - PLG__FRAG_HDR - PLG__TAG) & ~15u) - 1u : (room & ~7u) - PLG__FRAG_HDR;
}

static uint32_t plg__frag_crc(uint64_t log_id, const uint8_t *hdr, const void *payload, uint32_t len) {
    uint8_t id[8];
    plg__put64(id, log_id);
    uint32_t c = plg_crc32c(0, id, 8);
    c = plg_crc32c(c, hdr + 4, PLG__FRAG_HDR - 4);
    return plg_crc32c(c, payload, len);
}

/* The writer's form of plg__frag_crc: from the header's fields and the
 * payload where the writer copies it from (the ring), not from the page it
 * was just framed in. Reading those bytes back at once, in other widths than
 * they were stored in, stalls each load until the stores reach the cache (a
 * failed store-to-load forward); this form costs about half as much per
 * 100-byte record (crc_bench's ns_per_record_framed). Same value. */
static uint32_t plg__frag_crc_fields(uint64_t log_id, uint32_t len16, int type, unsigned flags, uint32_t epoch,
                                     uint32_t aux, uint64_t seq, const void *payload, uint32_t len) {
    uint32_t h1 = (len16 & 0xFFFFu) | ((uint32_t)(type & 0xFF) << 16) | ((uint32_t)(flags & 0xFFu) << 24);
#ifdef PLG__CRC_FIELDS_HW
    if (plg__crc_hw_get()) return plg__frag_crc_fields_hw(log_id, h1, epoch | ((uint64_t)aux << 32), seq, payload, len);
#endif
    uint8_t hdr[PLG__FRAG_HDR];
    plg__put32(hdr, 0);
    plg__put32(hdr + 4, h1);
    plg__put32(hdr + 8, epoch);
    plg__put32(hdr + 12, aux);
    plg__put64(hdr + 16, seq);
    return plg__frag_crc(log_id, hdr, payload, len);
}

#ifdef PICOLOG_ENCRYPT
/* The HMAC's inner message of a fragment (header after the CRC, then the
 * ciphertext), padded as SHA-256 pads it after the 64-byte key block, into
 * dst; returns its 64-byte blocks. */
static size_t plg__tag_blocks(uint8_t *dst, const uint8_t *at, uint32_t ct_len) {
    size_t n = PLG__FRAG_HDR - 4 + (size_t)ct_len, nb = (n + 9 + 63) / 64;
    uint64_t bits = (64 + (uint64_t)n) * 8;
    memcpy(dst, at + 4, PLG__FRAG_HDR - 4);
    memcpy(dst + PLG__FRAG_HDR - 4, at + PLG__FRAG_HDR + PLG__TAG, ct_len);
    memset(dst + n, 0, nb * 64 - n);
    dst[n] = 0x80;
    for (int i = 0; i < 8; i++) dst[nb * 64 - 1 - (size_t)i] = (uint8_t)(bits >> (8 * i));
    return nb;
}

/* The HMAC's outer block over an inner state h, padded (64 + 32 bytes). */
static void plg__tag_outer(uint8_t dst[64], const uint32_t h[8]) {
    memset(dst, 0, 64);
    for (int i = 0; i < 8; i++)
        for (int b = 0; b < 4; b++) dst[4 * i + b] = (uint8_t)(h[i] >> (24 - 8 * b));
    dst[32] = 0x80;
    dst[62] = 0x03;                    /* 96 bytes = 768 bits */
}

/* Seal n staged fragments under one key (n <= PLG__SEAL_BATCH): IVs, CBC,
 * tags (the same bytes plg__frag_tag and vault's CBC give one at a time),
 * then each fragment's CRC, which covers them. */
static void plg__seal_run(uint64_t log_id, const plg__crypt *k, const plg__seal_job *q, uint32_t n) {
    uint8_t ivin[PLG__SEAL_BATCH * 16] = {0}, iv[PLG__SEAL_BATCH * 16];
    const uint8_t *ivp[PLG__SEAL_BATCH] = {0};   /* (gcc cannot tell the loop fills the first n) */
    uint8_t *buf[PLG__SEAL_BATCH] = {0};
    size_t nb[PLG__SEAL_BATCH] = {0};
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *at = q[j].at;
        memcpy(ivin + 16 * j, at + 16, 8);       /* as plg__frag_iv: seq, epoch, aux */
        memcpy(ivin + 16 * j + 8, at + 8, 4);
        memcpy(ivin + 16 * j + 12, at + 12, 4);
        ivp[j] = iv + 16 * j;
        buf[j] = q[j].at + PLG__FRAG_HDR + PLG__TAG;
        nb[j] = q[j].ct_len / 16;
    }
    vault_aes256_ctx_encrypt_blocks(&k->iv, ivin, iv, n);
    vault_aes256_ctx_cbc_encrypt_many(&k->enc, n, ivp, buf, nb);
    /* tags, two at a time when their inner messages have as many blocks */
    uint8_t msg[2][(PLG_PAGE_SIZE + 64 + 63) / 64 * 64], outer[2][64];
    for (uint32_t j = 0; j < n;) {
        uint32_t lanes = 1;
        uint32_t h[2][8];
        uint32_t *hp[2] = {h[0], h[1]};
        const uint8_t *mp[2] = {msg[0], msg[1]};
        size_t b0 = plg__tag_blocks(msg[0], q[j].at, q[j].ct_len);
        PICOLOG_ASSERT(b0 * 64 <= sizeof msg[0]);
        if (j + 1 < n && (PLG__FRAG_HDR - 4 + (size_t)q[j + 1].ct_len + 9 + 63) / 64 == b0) {
            plg__tag_blocks(msg[1], q[j + 1].at, q[j + 1].ct_len);
            lanes = 2;
        }
        for (uint32_t l = 0; l < lanes; l++) memcpy(h[l], k->mac_in.h, sizeof h[l]);
        vault_sha256_blocks_many(lanes, hp, mp, b0);
        for (uint32_t l = 0; l < lanes; l++) {
            plg__tag_outer(outer[l], h[l]);
            memcpy(h[l], k->mac_out.h, sizeof h[l]);
            mp[l] = outer[l];
        }
        vault_sha256_blocks_many(lanes, hp, mp, 1);
        for (uint32_t l = 0; l < lanes; l++) {
            uint8_t *at = q[j + l].at, *body = at + PLG__FRAG_HDR;
            for (int i = 0; i < 4; i++)        /* the tag: the digest's first 16 bytes */
                for (int b = 0; b < 4; b++) body[4 * i + b] = (uint8_t)(h[l][i] >> (24 - 8 * b));
            plg__put32(at, plg__frag_crc(log_id, at, body, PLG__TAG + q[j + l].ct_len));
        }
        j += lanes;
    }
    vault_wipe(iv, sizeof iv);
    vault_wipe(msg, sizeof msg);
    vault_wipe(outer, sizeof outer);
}

static void plg__seal_batch(uint64_t log_id, const plg__seal_job *q, uint32_t n) {
    for (uint32_t i = 0; i < n;) {
        uint32_t m = 1;
        while (i + m < n && q[i + m].k == q[i].k) m++;
        plg__seal_run(log_id, q[i].k, q + i, m);
        i += m;
    }
}
#endif

/* Frame one fragment at `at`; returns the bytes it takes (8-aligned). With
 * k, the payload goes in clear and PKCS#7-padded where its ciphertext goes,
 * and *job is set: the fragment is whole once plg__seal_batch has sealed it
 * (encrypted, tagged, then its CRC). */
static uint32_t plg__frag_stage(uint8_t *at, const plg__crypt *k, int type, unsigned flags, uint32_t epoch,
                                uint32_t aux, uint64_t seq, const void *payload, uint32_t len, plg__seal_job *job) {
    plg__put16(at + 4, (uint16_t)len);
    at[6] = (uint8_t)type;
    at[7] = (uint8_t)flags;
    plg__put32(at + 8, epoch);
    plg__put32(at + 12, aux);
    plg__put64(at + 16, seq);
    uint32_t stored = plg__stored(k, len);
    uint8_t *body = at + PLG__FRAG_HDR;
    if (k) {
        uint32_t ct_len = stored - PLG__TAG;
        memcpy(body + PLG__TAG, payload, len);
        memset(body + PLG__TAG + len, (int)(ct_len - len), ct_len - len);
        job->at = at; job->k = k; job->ct_len = ct_len;
    } else {
        memcpy(body, payload, len);
    }
    uint32_t total = (uint32_t)PLG__ALIGN8(PLG__FRAG_HDR + stored);
    memset(body + stored, 0, total - PLG__FRAG_HDR - stored);
    return total;
}

/* Frame and seal one fragment at `at` (a batch of one with k); returns the
 * bytes it takes (8-aligned). */
static uint32_t plg__frag_seal(uint8_t *at, uint64_t log_id, const plg__crypt *k, int type, unsigned flags,
                               uint32_t epoch, uint32_t aux, uint64_t seq, const void *payload, uint32_t len) {
    plg__seal_job job;
    uint32_t total = plg__frag_stage(at, k, type, flags, epoch, aux, seq, payload, len, &job);
#ifdef PICOLOG_ENCRYPT
    if (k) { plg__seal_batch(log_id, &job, 1); return total; }
#endif
    plg__put32(at, plg__frag_crc_fields(log_id, len, type, flags, epoch, aux, seq, payload, len));
    return total;
}

/* 1 if a well-formed fragment with a matching checksum (and, with k, a
 * matching tag) starts at `at`. pos: what came before it (NULL: nothing, as
 * for a page's first fragment; a SHORT one never verifies then). */
static int plg__frag_read(const uint8_t *at, uint32_t room, uint64_t log_id, const plg__crypt *k,
                          const plg__fpos *pos, plg__frag *f) {
    if (room < plg__min_frag(k)) return 0;
    if (at[6] == PLG__SHORT) {
        if (k || !pos || !pos->prev || at[7] != 0) return 0;
        f->len = plg__get16(at + 4);
        f->type = PLG__FULL; f->flags = 0;
        f->epoch = pos->prev_epoch; f->seq = pos->prev_seq + 1; f->aux = f->len;
        f->payload = at + PLG__SHORT_HDR; f->stored = f->len;
        if (f->len == 0 || PLG__SHORT_HDR + f->len > room) return 0;
        f->step = (PLG__SHORT_HDR + f->len + 3u) & ~3u;
        return plg__get32(at) ==
               plg__frag_crc_fields(log_id, f->len, PLG__SHORT, 0, f->epoch, f->len, f->seq, f->payload, f->len);
    }
    f->len = plg__get16(at + 4);
    f->type = at[6];
    f->flags = at[7];
    f->epoch = plg__get32(at + 8);
    f->aux = plg__get32(at + 12);
    f->seq = plg__get64(at + 16);
    f->payload = at + PLG__FRAG_HDR;
    if (f->len == 0 || f->type < PLG__FULL || f->type > PLG__LAST || f->seq == 0) return 0;
    f->stored = plg__stored(k, f->len);
    if (PLG__FRAG_HDR + f->stored > room) return 0;
    f->step = (uint32_t)PLG__ALIGN8(PLG__FRAG_HDR + f->stored);
    if (f->type == PLG__FULL && f->aux != f->len) return 0;
    if (f->type == PLG__FIRST && (f->aux <= f->len || f->aux > PLG__MAX_RECORD)) return 0;
    if (k && f->type >= PLG__MIDDLE && (f->aux == 0 || f->aux >= PLG__MAX_RECORD)) return 0;
    if (plg__get32(at) != plg__frag_crc(log_id, at, f->payload, f->stored)) return 0;
#ifdef PICOLOG_ENCRYPT
    if (k) {
        uint8_t tag[32];
        f->payload = at + PLG__FRAG_HDR + PLG__TAG;
        plg__frag_tag(k, at, f->payload, f->stored - PLG__TAG, tag);
        return vault_ct_equal(tag, at + PLG__FRAG_HDR, PLG__TAG);
    }
#endif
    return 1;
}

/* The plain-log forms (tests build fragments and read them with these). */
__attribute__((unused)) static uint32_t plg__frag_put(uint8_t *at, uint64_t log_id, int type, unsigned flags,
                                                      uint32_t epoch, uint32_t aux, uint64_t seq, const void *payload,
                                                      uint32_t len) {
    return plg__frag_seal(at, log_id, NULL, type, flags, epoch, aux, seq, payload, len);
}
__attribute__((unused)) static int plg__frag_get(const uint8_t *at, uint32_t room, uint64_t log_id, plg__frag *f) {
    return plg__frag_read(at, room, log_id, NULL, NULL, f);
}

/* A SHORT fragment (version 5 segments): epoch, aux and seq are the
 * fragment before's (seq + 1), not stored, covered by the CRC only; the
 * writer's form, CRC from the fields and the ring. Returns the bytes it
 * takes. */
static uint32_t plg__frag_put_short(uint8_t *at, uint64_t log_id, uint32_t epoch, uint64_t seq, const void *payload,
                                    uint32_t len) {
    uint32_t total = (PLG__SHORT_HDR + len + 3u) & ~3u;
    plg__put16(at + 4, (uint16_t)len);
    at[6] = PLG__SHORT;
    at[7] = 0;
    memcpy(at + PLG__SHORT_HDR, payload, len);
    memset(at + PLG__SHORT_HDR + len, 0, total - PLG__SHORT_HDR - len);
    plg__put32(at, plg__frag_crc_fields(log_id, len, PLG__SHORT, 0, epoch, len, seq, payload, len));
    return total;
}

static void plg__seg_name(char *out, size_t cap, const char *dir, uint64_t idx) {
    snprintf(out, cap, "%s/%020llu.plg", dir, (unsigned long long)idx);
}

/* >>meta ------------------------------------------------------------------ */
/* <dir>/picolog.meta: what recovery needs to tell damage from a tear. 4 KiB,
 * made whole when the log is created (so rewriting it later needs no new
 * blocks), holding two 512-byte slots written alternately in place, each
 * with its own checksum: a torn write of one leaves the other. The slot with
 * the higher generation wins. Slot, little-endian:
 *   0 "PLGMETA1"  8 u32 version   16 u64 log_id   24 u64 generation
 *  32 u64 mark: every record <= mark was durable (lazily raised; lowered
 *     before a truncate erases anything)
 *  40 u64 base_seg  48 u64 base_g  56 u32 base_off  64 u64 base_seq: the log
 *     begins at global page base_g, offset base_off, with seq base_seq
 *     (a new log: segment 1, page 0, plg_config.first_seq; moved by plg_reset)
 *  60 u32 clean: 1 = closed cleanly, mark is the last record
 *  72 u64 stale: the highest seq ever written before the last plg_reset or
 *     plg_truncate; bytes past the end (a reused segment, what the call left
 *     behind) may hold records up to it, so only a higher seq past the
 *     window is evidence of damage (0 in a meta written before the field)
 *  80 u32 cipher (0 plain, 1 AES-256-CBC + HMAC-SHA256, see >>crypt)
 *  88 u64 key_id   96 16 bytes key check value (encrypted logs)
 * 508 u32 crc32c of bytes 0..507 */
#define PLG__META_NAME  "picolog.meta"
#define PLG__META_MAGIC "PLGMETA1"
#define PLG__META_SLOT  512u
#define PLG__META_FILE  4096u

typedef struct plg__meta {
    uint64_t log_id, gen, mark, base_seg, base_g, base_seq, stale;
    uint32_t base_off, clean;
    uint32_t cipher;             /* 0 plain, PLG__CIPHER_V1 encrypted */
    uint64_t key_id;             /* which data key (a fingerprint, the same for every log) */
    uint8_t check[16];           /* key check value: a key derived for this log from the data key */
} plg__meta;

static void plg__meta_name(char *out, size_t cap, const char *dir) {
    snprintf(out, cap, "%s/%s", dir, PLG__META_NAME);
}

static void plg__meta_encode(uint8_t *slot, const plg__meta *m) {
    memset(slot, 0, PLG__META_SLOT);
    memcpy(slot, PLG__META_MAGIC, 8);
    plg__put32(slot + 8, 1u);
    plg__put64(slot + 16, m->log_id);
    plg__put64(slot + 24, m->gen);
    plg__put64(slot + 32, m->mark);
    plg__put64(slot + 40, m->base_seg);
    plg__put64(slot + 48, m->base_g);
    plg__put32(slot + 56, m->base_off);
    plg__put32(slot + 60, m->clean);
    plg__put64(slot + 64, m->base_seq);
    plg__put64(slot + 72, m->stale);
    plg__put32(slot + 80, m->cipher);
    plg__put64(slot + 88, m->key_id);
    memcpy(slot + 96, m->check, sizeof m->check);
    plg__put32(slot + PLG__META_SLOT - 4, plg_crc32c(0, slot, PLG__META_SLOT - 4));
}

static int plg__meta_decode(const uint8_t *slot, plg__meta *m) {
    if (memcmp(slot, PLG__META_MAGIC, 8) != 0 || plg__get32(slot + 8) != 1u) return 0;
    if (plg__get32(slot + PLG__META_SLOT - 4) != plg_crc32c(0, slot, PLG__META_SLOT - 4)) return 0;
    m->log_id = plg__get64(slot + 16);
    m->gen = plg__get64(slot + 24);
    m->mark = plg__get64(slot + 32);
    m->base_seg = plg__get64(slot + 40);
    m->base_g = plg__get64(slot + 48);
    m->base_off = plg__get32(slot + 56);
    m->clean = plg__get32(slot + 60);
    m->base_seq = plg__get64(slot + 64);
    m->stale = plg__get64(slot + 72);
    m->cipher = plg__get32(slot + 80);
    m->key_id = plg__get64(slot + 88);
    memcpy(m->check, slot + 96, sizeof m->check);
    return m->base_seg >= 1 && m->base_seq >= 1 && m->base_off < PLG_PAGE_SIZE;
}

/* 1 = read, 0 = no meta file (a log made before it existed), < 0 = error
 * (PLG_EMETA: both slots damaged). */
static int plg__meta_read(const char *dir, plg__meta *m) {
    char name[4200]; uint8_t buf[2 * PLG__META_SLOT]; size_t got = 0;
    plg__meta_name(name, sizeof name, dir);
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : plg__from_errno(errno);
    int rc = plg__read_full(fd, buf, sizeof buf, 0, &got);
    close(fd);
    if (rc) return rc;
    memset(buf + got, 0, sizeof buf - got);
    plg__meta a, b;
    int ok_a = plg__meta_decode(buf, &a), ok_b = plg__meta_decode(buf + PLG__META_SLOT, &b);
    if (!ok_a && !ok_b) return PLG_EMETA;
    *m = (ok_a && (!ok_b || a.gen > b.gen)) ? a : b;
    return 1;
}

/* Write the next generation of m in place (the slot not holding the
 * current one) and make it durable. */
static int plg__meta_put(int fd, plg__meta *m) {
    uint8_t slot[PLG__META_SLOT];
    m->gen++;
    plg__meta_encode(slot, m);
    int rc = plg__write_all(fd, slot, sizeof slot, (m->gen & 1) * PLG__META_SLOT);
    if (!rc && fdatasync(fd) != 0) rc = plg__from_errno(errno);
    return rc;
}

/* A new meta file, durably (temp, fsync, rename, directory fsync). */
static int plg__meta_create(const char *dir, plg__meta *m) {
    char name[4200];
    uint8_t *buf = (uint8_t *)PICOLOG_MALLOC(PLG__META_FILE);
    if (!buf) return PLG_ENOMEM;
    memset(buf, 0, PLG__META_FILE);
    m->gen = 2;                                    /* slot 0 */
    plg__meta_encode(buf, m);
    plg__meta_name(name, sizeof name, dir);
    int rc = plg_write_file_durable(name, buf, PLG__META_FILE, 0644);
    PICOLOG_FREE(buf);
    return rc;
}

/* Segment indexes present in dir, sorted. The writer (holding the lock) also
 * removes stale *.plg.tmp files; a reader must not: one may be in progress. */
static int plg__list_segments(const char *dir, int clean, uint64_t **out, size_t *count) {
    DIR *d = opendir(dir);
    if (!d) return plg__from_errno(errno);
    uint64_t *v = NULL; size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        size_t len = strlen(nm);
        int digits = 1;
        for (int i = 0; i < 20 && i < (int)len; i++) if (nm[i] < '0' || nm[i] > '9') digits = 0;
        if (len < 24 || !digits) continue;
        if (len == 28 && strcmp(nm + 20, ".plg.tmp") == 0) {
            if (clean) { char p[4096]; snprintf(p, sizeof p, "%s/%s", dir, nm); unlink(p); }
            continue;
        }
        if (len != 24 || strcmp(nm + 20, ".plg") != 0) continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            uint64_t *nv = (uint64_t *)PICOLOG_REALLOC(v, nc * sizeof *v);
            if (!nv) { rc = PLG_ENOMEM; break; }
            v = nv; cap = nc;
        }
        v[n++] = strtoull(nm, NULL, 10);
    }
    closedir(d);
    if (rc) { PICOLOG_FREE(v); return rc; }
    for (size_t i = 1; i < n; i++) {              /* insertion sort: few segments */
        uint64_t x = v[i]; size_t j = i;
        while (j > 0 && v[j - 1] > x) { v[j] = v[j - 1]; j--; }
        v[j] = x;
    }
    *out = v; *count = n;
    return 0;
}

#ifndef F_OFD_GETLK                   /* without _GNU_SOURCE: the Linux values */
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#endif
/* >>settle: every segment file the writer writes through is opened
 * read-write and holds a shared OFD read lock (F_OFD_SETLK). The kernel drops
 * such a lock only when the last reference to that open file goes, and an
 * io_uring write holds one until it has landed: so after the writer's
 * process is gone (SIGKILL, a crash), the lock stays while a write of it is
 * still in flight. plg_open waits until no segment holds one before it
 * recovers: else it would find the end before those writes, and a write
 * landing later would replace records the new writer has acknowledged at
 * the same place. Tested with F_OFD_GETLK, which takes no lock. */
static void plg__seg_lock(int fd) {
    struct flock lk;
    memset(&lk, 0, sizeof lk);
    lk.l_type = F_RDLCK; lk.l_whence = SEEK_SET;     /* the whole file; shared: the writer's own fds agree */
    (void)fcntl(fd, F_OFD_SETLK, &lk);               /* no lock support (a network filesystem): no guard */
}

/* 1: another open file holds a lock on fd's file; 0: none (or no lock support). */
static int plg__seg_held(int fd) {
    struct flock lk;
    memset(&lk, 0, sizeof lk);
    lk.l_type = F_WRLCK; lk.l_whence = SEEK_SET;
    return fcntl(fd, F_OFD_GETLK, &lk) == 0 && lk.l_type != F_UNLCK;
}

/* Wait until no other open file holds fd's segment, until deadline
 * (plg_now_ns; UINT64_MAX: none). 0, or PLG_ETIMEDOUT. */
static int plg__settle_fd(int fd, uint64_t deadline) {
    while (plg__seg_held(fd)) {
        if (plg_now_ns() >= deadline) return PLG_ETIMEDOUT;
        struct timespec ts = {0, 1000000};             /* 1 ms: about a write */
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* The same for every segment file in dir (plg_settle). */
static int plg__settle(const char *dir, uint64_t deadline) {
    uint64_t *segs = NULL;
    size_t n = 0;
    int rc = plg__list_segments(dir, 0, &segs, &n);
    if (rc) return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        char name[4096];
        plg__seg_name(name, sizeof name, dir, segs[i]);
        int fd = open(name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;                          /* gone since the listing: nothing lands in it */
        rc = plg__settle_fd(fd, deadline);
        close(fd);
    }
    PICOLOG_FREE(segs);
    return rc;
}

/* >>scan ------------------------------------------------------------------ */
/* One walker over a log directory, used by recovery, the reader and plg_check.
 * Global data page g (0-based, across segments) lives in segment g / D + 1 at
 * page g % D + 1, where D is the number of data pages per segment; so the
 * byte position g * 4096 + off is linear over the whole log. */
#define PLG__CHUNK_PAGES 256u
#define PLG__EVIDENCE_PAGES 4096u   /* pages read past the in-flight window */

/* The last fragment a walk took: its page, where it ended, its epoch and
 * seq (a SHORT fragment right after it implies its own from them). */
typedef struct plg__pv { uint64_t g, seq; uint32_t end, epoch; } plg__pv;

typedef struct plg__scan {
    char *dir;
    char *adir;                              /* the archive read before dir (plg_reader_open_archive), or NULL */
    uint64_t log_id, seg_size, window, D;
    uint64_t seg_first, seg_last;
    uint64_t v1_last;                        /* highest segment with a version 1 header, 0 = none */
    uint64_t v2_last;                        /* highest segment with a version 1 or 2 header, 0 = none
                                                (a writer puts no SHORT fragment up to there) */
    int fd; uint64_t fd_seg;
    uint8_t *chunk; uint64_t chunk_g; uint32_t chunk_n, ra;
    uint8_t *one;                            /* a single page for binary search */
    uint64_t g; uint32_t off;                /* next fragment */
    uint64_t expect;                         /* next sequence number, 0 = any */
    uint32_t epoch; int have_epoch;
    int skip_cont;                           /* skip continuation fragments (after a seek) */
    int skipped; uint64_t skip_g; uint32_t skip_off;   /* went on at page skip_g + 1 from here, no record since */
    int in_rec; uint64_t rec_seq; uint32_t rec_total, rec_len, rec_epoch; uint64_t rec_g; uint32_t rec_off;
    plg__pv rec_pv;
    uint8_t *rec; size_t rec_cap;
    uint64_t *seg_seq;                       /* first seq of each segment, for seeks */
    uint64_t ret_g; uint32_t ret_off;        /* start of the record last returned */
    plg__pv pv, ret_pv;                      /* the last fragment taken; as it was before the record last returned */
    uint64_t last_seq, first_seq, records, bytes; uint32_t last_epoch;
    int done, status, torn;
    int live_retry, live_retried;            /* a live reader short of the durable mark: read again first */
    struct plg__tail *tail; const struct plg__live *tail_live;   /* a live reader's copies of the last pages written */
    int tail_ok;                             /* ... and the writer that made them runs: use them */
    uint64_t end_g; uint32_t end_off;        /* where the valid log ends */
    plg__meta meta; int has_meta;            /* durable mark and where the log begins */
    plg__keys keys;                          /* an encrypted log's keys (n = 0: plain) */
    const plg__crypt *crypt;                 /* keys.k[0], else NULL: whether the log is encrypted */
    uint64_t kseg[4]; const plg__crypt *kkey[4]; uint32_t knext;   /* recent segments and their keys */
    uint64_t where_g; uint32_t where_off;    /* reported position (end, or corruption) */
    int where_abs;                           /* where_off is the offset in where_file itself (a header, the meta file) */
    char where_file[4096];
    char detail[256];
    uint64_t settle_ns;                      /* recovery: how long it waited for a dead writer's writes (>>settle) */
} plg__scan;

static uint64_t plg__seg_of(const plg__scan *s, uint64_t g) { return g / s->D + 1; }
static uint64_t plg__page_off(uint64_t D, uint64_t g) { return (g % D + 1) * (uint64_t)PLG_PAGE_SIZE; }

static void plg__scan_close(plg__scan *s) {
    if (s->fd >= 0) close(s->fd);
    PICOLOG_FREE(s->dir); PICOLOG_FREE(s->adir); PICOLOG_FREE(s->chunk); PICOLOG_FREE(s->one); PICOLOG_FREE(s->rec);
    PICOLOG_FREE(s->seg_seq);
#ifdef PICOLOG_ENCRYPT
    plg__keys_free(&s->keys);
#endif
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

static void plg__strlcpy(char *dst, const char *src, size_t cap) {
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n); dst[n] = 0;
}

/* The name of segment seg, for messages: in the log's directory, or in the
 * archive read before it when it is there and not in the log (it was moved). */
static void plg__scan_segname(const plg__scan *s, uint64_t seg, char *out, size_t cap) {
    plg__seg_name(out, cap, s->dir, seg);
    if (s->adir && access(out, F_OK) != 0 && errno == ENOENT) {
        char a[4096];
        plg__seg_name(a, sizeof a, s->adir, seg);
        if (access(a, F_OK) == 0) plg__strlcpy(out, a, cap);
    }
}

/* Segment seg opened read-only: in the log's directory, else in the archive
 * read before it. Never by plg__scan_segname's name: the segment thread may
 * move the file between that look and the open (a move puts the segment
 * whole in the archive before it leaves the log, so a failed open in the log
 * means it is in the archive). -1 and errno on failure. */
static int plg__scan_open_seg(const plg__scan *s, uint64_t seg) {
    char name[4096];
    plg__seg_name(name, sizeof name, s->dir, seg);
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && s->adir) {
        plg__seg_name(name, sizeof name, s->adir, seg);
        fd = open(name, O_RDONLY | O_CLOEXEC);
    }
    return fd;
}

static void plg__scan_setwhere(plg__scan *s, uint64_t g, uint32_t off) {
    s->where_g = g; s->where_off = off; s->where_abs = 0;
    plg__scan_segname(s, plg__seg_of(s, g), s->where_file, sizeof s->where_file);
}
/* Damage outside the data pages: segment seg's header (or its file). */
static void plg__scan_where_seg(plg__scan *s, uint64_t seg, uint32_t off) {
    s->where_g = 0; s->where_off = off; s->where_abs = 1;
    plg__scan_segname(s, seg, s->where_file, sizeof s->where_file);
}
/* The reported position as an offset in where_file. */
static uint64_t plg__scan_where_off(const plg__scan *s) {
    return s->where_abs ? s->where_off : plg__page_off(s->D ? s->D : 1, s->where_g) + s->where_off;
}

/* The header of segment idx from fd (which it closes), or fd's error. */
static int plg__read_seghdr_fd(int fd, uint64_t idx, plg__seghdr *h) {
    uint8_t page[PLG_PAGE_SIZE]; size_t got = 0;
    if (fd < 0) return plg__from_errno(errno);
    int rc = plg__read_full(fd, page, sizeof page, 0, &got);
    close(fd);
    if (rc) return rc;
    if (got < sizeof page) return PLG_ECORRUPT;
    rc = plg__seghdr_decode(page, h);
    if (!rc && h->seg_index != idx) rc = PLG_ECORRUPT;
    return rc;
}
static int plg__read_seghdr(const char *dir, uint64_t idx, plg__seghdr *h) {
    char name[4096];
    plg__seg_name(name, sizeof name, dir, idx);
    return plg__read_seghdr_fd(open(name, O_RDONLY | O_CLOEXEC), idx, h);
}

/* The key id a segment's fragments are sealed under: its header's (version
 * 4), or the log's first key, named in picolog.meta (version 3). */
static uint64_t plg__seg_key_id(const plg__seghdr *h, uint64_t meta_key_id) {
    return h->version == PLG__VERSION_KEYS ? h->key_id : meta_key_id;
}

/* Forget which key each segment is under: a writer that opened since may
 * have given the empty segments after its own a new header (a rotation). */
static void plg__scan_forget_keys(plg__scan *s) {
    memset(s->kkey, 0, sizeof s->kkey);
    s->knext = 0;
}

/* The key of the segment holding page g (NULL: a plain log). Segments are
 * looked up once, by their header, and remembered: a live reader meets new
 * segments, maybe under a key rotated in since it opened. A key that was not
 * given fails the scan with PLG_EKEY (never a record read with another key:
 * k[0] is returned, under which every tag fails). */
static const plg__crypt *plg__scan_k(plg__scan *s, uint64_t g) {
    if (!s->crypt) return NULL;
#ifdef PICOLOG_ENCRYPT
    uint64_t seg = plg__seg_of(s, g);
    for (int i = 0; i < 4; i++) if (s->kkey[i] && s->kseg[i] == seg) return s->kkey[i];
    plg__seghdr h;
    if (plg__read_seghdr_fd(plg__scan_open_seg(s, seg), seg, &h) != 0 || h.log_id != s->log_id)
        return s->crypt;                           /* gone: scan_page says */
    uint64_t id = plg__seg_key_id(&h, s->meta.key_id);
    const plg__crypt *k = plg__keys_find(&s->keys, id);
    if (!k) {
        if (!s->status) {
            s->status = PLG_EKEY;
            plg__scan_where_seg(s, seg, 0);           /* the header names the key */
            snprintf(s->detail, sizeof s->detail, "segment %llu is sealed under key id %016llx, which was not given",
                     (unsigned long long)seg, (unsigned long long)id);
        }
        return s->crypt;
    }
    s->kseg[s->knext] = seg; s->kkey[s->knext] = k; s->knext = (s->knext + 1) % 4;
    return k;
#else
    (void)g;
    return NULL;
#endif
}

/* Where a walk from the start of the log begins: where the meta says the log
 * begins (with its seq), or, once plg_release retired that segment, at the
 * oldest segment, not knowing the seq there (continuations of a record whose
 * head was retired are skipped; a LAST one gives the seq). */
static void plg__scan_begin(plg__scan *s) {
    uint64_t g0 = (s->seg_first - 1) * s->D;
    s->g = g0; s->off = 0; s->expect = 0; s->skip_cont = 1;
    if (s->meta.base_seg == s->seg_first) {
        s->g = s->meta.base_g; s->off = s->meta.base_off;
        s->expect = s->meta.base_seq; s->skip_cont = 0;
        if (s->last_seq < s->meta.base_seq - 1) s->last_seq = s->meta.base_seq - 1;
    }
}

/* Do the keys fit the log? Encrypted is what the meta says (segment
 * headers agree, see plg__scan_open); a wrong key, a missing one or one for
 * a plain log each has its own error, never PLG_ECORRUPT. Which segments
 * need which key is checked after this, by plg__scan_need. */
static int plg__scan_key(plg__scan *s, const uint8_t *const *keys, size_t nkeys, const plg__keys *have) {
    int enc = s->has_meta && s->meta.cipher != 0;
    int given = nkeys > 0 || (have && have->n > 0);
    plg__meta_name(s->where_file, sizeof s->where_file, s->dir);
    s->where_abs = 1; s->where_off = 0;
    if (enc && s->meta.cipher != PLG__CIPHER_V1) {
        snprintf(s->detail, sizeof s->detail, "unknown cipher %u in %s", s->meta.cipher, PLG__META_NAME);
        return PLG_EFORMAT;
    }
    if (!given && !enc) { s->where_file[0] = 0; s->where_abs = 0; return 0; }
    if (!given) {
        snprintf(s->detail, sizeof s->detail, "the log is encrypted (key id %016llx); give its key",
                 (unsigned long long)s->meta.key_id);
        return PLG_ENEEDKEY;
    }
#ifndef PICOLOG_ENCRYPT
    (void)keys; (void)have;
    snprintf(s->detail, sizeof s->detail, "a key was given, but picolog was built without PICOLOG_ENCRYPT");
    return PLG_ENOCRYPT;
#else
    if (!enc) {
        snprintf(s->detail, sizeof s->detail, "a key was given, but the log is not encrypted");
        return PLG_EPLAINLOG;
    }
    if (plg__keys_make(&s->keys, keys, nkeys, s->log_id, have)) return PLG_ENOMEM;   /* have: the writer's */
    s->crypt = s->keys.k[0];
    const plg__crypt *first = plg__keys_find(&s->keys, s->meta.key_id);   /* the log's first key */
    if (first && !vault_ct_equal(first->check, s->meta.check, sizeof s->meta.check)) {
        snprintf(s->detail, sizeof s->detail, "wrong key: key id %016llx, but not the key this log was made with",
                 (unsigned long long)first->key_id);
        return PLG_EKEY;
    }
    s->where_file[0] = 0; s->where_abs = 0;
    return 0;
#endif
}

/* Every segment of an encrypted log must be under a key that was given:
 * else PLG_EKEY naming the first segment that needs the missing key (a
 * wrong key is a key error at open, never a record that fails its tag). */
static int plg__scan_need(plg__scan *s, const uint64_t *ids, size_t n) {
    for (size_t i = 0; s->crypt && i < n; i++) {
#ifdef PICOLOG_ENCRYPT
        if (plg__keys_find(&s->keys, ids[i])) continue;
#endif
        uint64_t seg = s->seg_first + i;
        plg__scan_where_seg(s, seg, 0);
        snprintf(s->detail, sizeof s->detail,
                 "wrong key: segment %llu needs key id %016llx, which is not among the %u key(s) given (first: %016llx)",
                 (unsigned long long)seg, (unsigned long long)ids[i], (unsigned)s->keys.n,
                 (unsigned long long)plg__crypt_key_id(s->crypt));
        return PLG_EKEY;
    }
    return 0;
}

/* The segments of the archive adir and of the log (both sorted) as one
 * sorted list: a segment moved between the two listings is in both. */
static int plg__merge_segments(uint64_t **segs, size_t *n, const char *adir) {
    uint64_t *a = NULL, *m;
    size_t na = 0, i = 0, k = 0, q = 0;
    int rc = plg__list_segments(adir, 0, &a, &na);
    if (rc == PLG_ENOENT) return 0;                /* nothing archived yet */
    if (rc) return rc;
    m = (uint64_t *)PICOLOG_MALLOC((na + *n + 1) * sizeof *m);
    if (!m) { PICOLOG_FREE(a); return PLG_ENOMEM; }
    while (i < na || k < *n) {
        uint64_t v = k == *n || (i < na && a[i] < (*segs)[k]) ? a[i++] : (*segs)[k++];
        if (!q || m[q - 1] != v) m[q++] = v;
    }
    PICOLOG_FREE(a); PICOLOG_FREE(*segs);
    *segs = m; *n = q;
    return 0;
}

/* keys: the data keys given for this scan, or have: keys derived already (a
 * writer reading its own log); neither: a plain log. adir: the log's
 * archive, listed with it (plg_reader_open_archive), or NULL. */
static int plg__scan_open(plg__scan *s, const char *dir, const char *adir, int writer, const uint8_t *const *keys,
                          size_t nkeys, const plg__keys *have) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    size_t dl = strlen(dir);
    s->dir = (char *)PICOLOG_MALLOC(dl + 1);
    s->adir = adir ? (char *)PICOLOG_MALLOC(strlen(adir) + 1) : NULL;
    s->chunk = (uint8_t *)PICOLOG_MALLOC((size_t)PLG__CHUNK_PAGES * PLG_PAGE_SIZE);
    s->one = (uint8_t *)PICOLOG_MALLOC(PLG_PAGE_SIZE);
    if (!s->dir || (adir && !s->adir) || !s->chunk || !s->one) { plg__scan_close(s); return PLG_ENOMEM; }
    memcpy(s->dir, dir, dl + 1);
    if (adir) memcpy(s->adir, adir, strlen(adir) + 1);
    uint64_t *segs = NULL, bad_seg = 0; size_t n = 0, i0 = 0;
    int rc = plg__list_segments(dir, writer, &segs, &n);
    if (!rc && adir && n) rc = plg__merge_segments(&segs, &n, adir);   /* the log's listing first: see above */
    if (rc) { PICOLOG_FREE(segs); plg__scan_close(s); return rc; }
    if (n == 0) { PICOLOG_FREE(segs); plg__scan_close(s); return PLG_ENOENT; }
    rc = plg__meta_read(dir, &s->meta);
    s->has_meta = rc == 1;
    if (rc < 0) {
        PICOLOG_FREE(segs);
        snprintf(s->detail, sizeof s->detail, "both slots of %s are damaged", PLG__META_NAME);
        s->D = 1; s->status = rc; s->where_abs = 1;
        plg__meta_name(s->where_file, sizeof s->where_file, dir);
        return rc;
    }
    rc = 0;
    uint64_t *ids = (uint64_t *)PICOLOG_MALLOC(n * sizeof *ids);   /* each segment's key id */
    if (!ids) { PICOLOG_FREE(segs); plg__scan_close(s); return PLG_ENOMEM; }
    while (s->has_meta && i0 + 1 < n && segs[i0] < s->meta.base_seg) i0++;   /* before a plg_reset: dead */
    s->seg_first = segs[i0]; s->seg_last = segs[n - 1];
    if (s->has_meta && s->meta.base_seg > s->seg_first) {
        snprintf(s->detail, sizeof s->detail, "segment %llu, where the log begins, is missing",
                 (unsigned long long)s->meta.base_seg);
        rc = PLG_ECORRUPT; bad_seg = s->meta.base_seg;
    }
    for (size_t i = i0; i < n && !rc; i++) {
        plg__seghdr h;
        if (segs[i] != segs[i0] + i - i0) {
            snprintf(s->detail, sizeof s->detail, "segment %llu is missing", (unsigned long long)(segs[i0] + i - i0));
            rc = PLG_ECORRUPT; bad_seg = segs[i0] + i - i0; break;
        }
        int fd = plg__scan_open_seg(s, segs[i]);
        if (writer && fd >= 0 && plg__seg_held(fd)) {   /* recovery: a dead writer's writes land first (>>settle) */
            uint64_t t0 = plg_now_ns();
            int w = plg__settle_fd(fd, t0 + (uint64_t)PLG_SETTLE_NS);
            s->settle_ns += plg_now_ns() - t0;
            if (w) {
                close(fd);
                snprintf(s->detail, sizeof s->detail, "segment %llu is still held by an open file after %.1f s: the "
                         "writes of a writer that is gone have not landed, or a process holds its file (a fork)",
                         (unsigned long long)segs[i], (double)PLG_SETTLE_NS / 1e9);
                rc = PLG_ELOCKED; bad_seg = segs[i];
                break;
            }
        }
        rc = plg__read_seghdr_fd(fd, segs[i], &h);
        if (rc) {
            snprintf(s->detail, sizeof s->detail, "bad header in segment %llu", (unsigned long long)segs[i]);
            bad_seg = segs[i];
            break;
        }
        if (i == i0) { s->log_id = h.log_id; s->seg_size = h.seg_size; s->window = h.window; }
        else if (h.log_id != s->log_id || h.seg_size != s->seg_size) {
            snprintf(s->detail, sizeof s->detail, "segment %llu belongs to another log", (unsigned long long)segs[i]);
            rc = PLG_ECORRUPT; bad_seg = segs[i];
        }
        if (h.window > s->window) s->window = h.window;
        if (h.version == 1) s->v1_last = segs[i];
        if (h.version <= 2) s->v2_last = segs[i];
        if (!rc && plg__seghdr_encrypted(h.version) != (s->has_meta && s->meta.cipher != 0)) {
            snprintf(s->detail, sizeof s->detail, "segment %llu is %s, %s says the log is %s",
                     (unsigned long long)segs[i], plg__seghdr_encrypted(h.version) ? "encrypted" : "plain",
                     PLG__META_NAME, plg__seghdr_encrypted(h.version) ? "plain" : "encrypted");
            rc = PLG_EFORMAT; bad_seg = segs[i];
        }
        if (!rc) ids[i - i0] = plg__seg_key_id(&h, s->meta.key_id);
    }
    PICOLOG_FREE(segs);
    if (rc) {
        PICOLOG_FREE(ids);
        s->D = 1;
        if (bad_seg) plg__scan_where_seg(s, bad_seg, 0);   /* its header (or, missing, the name it should have) */
        else plg__scan_setwhere(s, 0, 0);
        s->status = rc;
        return rc;
    }
    s->D = s->seg_size / PLG_PAGE_SIZE - 1;
    if (s->has_meta && s->meta.log_id != s->log_id) {
        snprintf(s->detail, sizeof s->detail, "%s belongs to another log", PLG__META_NAME);
        plg__meta_name(s->where_file, sizeof s->where_file, dir);
        s->where_abs = 1; s->where_off = 0;
        s->status = PLG_EMETA;
        PICOLOG_FREE(ids);
        return PLG_EMETA;
    }
    rc = plg__scan_key(s, keys, nkeys, have);
    if (!rc) rc = plg__scan_need(s, ids, (size_t)(s->seg_last - s->seg_first + 1));
    PICOLOG_FREE(ids);
    if (rc) { s->status = rc; return rc; }
    if (!s->has_meta) {                              /* an old log: begins at seq 1, no mark */
        memset(&s->meta, 0, sizeof s->meta);
        s->meta.base_seg = 1; s->meta.base_seq = 1;
    }
    plg__scan_begin(s);
    return 0;
}

static int plg__scan_fd(plg__scan *s, uint64_t seg) {
    if (s->fd >= 0 && s->fd_seg == seg) return s->fd;
    if (s->fd >= 0) close(s->fd);
    s->fd = plg__scan_open_seg(s, seg);
    s->fd_seg = seg;
    return s->fd;
}

static int plg__tail_get(const plg__scan *s, uint64_t g, uint8_t *dst);

/* Page g through the chunk cache; NULL past the last segment or on error. A
 * live reader takes the page from the writer's copy in live.pages when it is
 * there (no read from the device: the writer's O_DIRECT writes leave no copy
 * in the page cache). */
static const uint8_t *plg__scan_page(plg__scan *s, uint64_t g) {
    uint64_t seg = plg__seg_of(s, g);
    if (seg < s->seg_first || seg > s->seg_last) return NULL;
    if (g >= s->chunk_g && g < s->chunk_g + s->chunk_n)
        return s->chunk + (g - s->chunk_g) * PLG_PAGE_SIZE;
    if (s->tail_ok && plg__tail_get(s, g, s->chunk)) {
        s->chunk_g = g; s->chunk_n = 1;
        return s->chunk;
    }
    int fd = plg__scan_fd(s, seg);
    if (fd < 0) {            /* listed at open, gone now: only plg_release removes segments */
        s->status = errno == ENOENT ? PLG_ERELEASED : plg__from_errno(errno);
        if (errno == ENOENT)
            snprintf(s->detail, sizeof s->detail, "segment %llu was released", (unsigned long long)seg);
        return NULL;
    }
    uint64_t left = s->D - g % s->D;
    uint32_t want = s->ra ? s->ra : PLG__CHUNK_PAGES;     /* small reads right after a seek */
    uint32_t n = (uint32_t)(left < want ? left : want);
    if (s->ra && s->ra < PLG__CHUNK_PAGES) s->ra *= 2;
    size_t got = 0;
    int rc = plg__read_full(fd, s->chunk, (size_t)n * PLG_PAGE_SIZE, plg__page_off(s->D, g), &got);
    if (rc) { s->status = rc; return NULL; }
    memset(s->chunk + got, 0, (size_t)n * PLG_PAGE_SIZE - got);
    s->chunk_g = g; s->chunk_n = n;
    return s->chunk;
}

/* Page g read on its own (binary search); NULL past the end or on error. */
static const uint8_t *plg__scan_one(plg__scan *s, uint64_t g) {
    uint64_t seg = plg__seg_of(s, g);
    if (seg < s->seg_first || seg > s->seg_last) return NULL;
    int fd = plg__scan_fd(s, seg);
    if (fd < 0) return NULL;
    size_t got = 0;
    if (plg__read_full(fd, s->one, PLG_PAGE_SIZE, plg__page_off(s->D, g), &got)) return NULL;
    memset(s->one + got, 0, PLG_PAGE_SIZE - got);
    return s->one;
}

/* What reading the fragment at (g, off) needs to know (plg__fpos). */
static plg__fpos plg__scan_fpos(const plg__scan *s, uint64_t g, uint32_t off) {
    plg__fpos p;
    p.prev = off != 0 && s->pv.g == g && s->pv.end == off;
    p.prev_epoch = s->pv.epoch; p.prev_seq = s->pv.seq;
    return p;
}

/* First fragment of page g, if valid. */
static int plg__scan_first_frag(plg__scan *s, uint64_t g, plg__frag *f) {
    const uint8_t *p = plg__scan_one(s, g);
    return p && plg__frag_read(p, PLG_PAGE_SIZE, s->log_id, plg__scan_k(s, g), NULL, f);
}

/* Valid data from this log past the in-flight window behind position
 * (xg, xoff) means the bytes at x were damaged after they were durable:
 * corruption, not a torn tail. Returns 1 and the page if found. */
static int plg__scan_evidence(plg__scan *s, uint64_t xg, uint32_t xoff, uint64_t *at) {
    uint64_t limit = xg * PLG_PAGE_SIZE + xoff + s->window;
    uint64_t q = limit / PLG_PAGE_SIZE + 1;
    uint64_t seg_end = (plg__seg_of(s, q) ) * s->D;   /* first page of the next segment */
    uint32_t budget = PLG__EVIDENCE_PAGES;
    uint64_t over = s->last_seq > s->meta.stale ? s->last_seq : s->meta.stale;   /* below: maybe stale bytes */
    plg__frag f;
    for (; q < seg_end && budget; q++, budget--) {
        const uint8_t *p = plg__scan_page(s, q);
        if (!p) break;
        if (plg__frag_read(p, PLG_PAGE_SIZE, s->log_id, plg__scan_k(s, q), NULL, &f) && f.seq > over) { *at = q; return 1; }
    }
    for (uint64_t seg = plg__seg_of(s, q); seg <= s->seg_last; seg++) {
        uint64_t g0 = (seg - 1) * s->D;
        if (g0 * PLG_PAGE_SIZE <= limit) continue;
        if (plg__scan_first_frag(s, g0, &f) && f.seq > over) { *at = g0; return 1; }
    }
    return 0;
}

static int plg__scan_accept(plg__scan *s, const plg__frag *f);

/* Was segment seg released (and maybe reused) since this scan listed it? Its
 * name is gone, or names another file than the one open, or the open file
 * now carries another index. Segment names are never reused, and only
 * plg_release removes a segment of an open log. */
static int plg__scan_released(plg__scan *s, uint64_t seg) {
    char name[4096];
    struct stat a, b;
    plg__seg_name(name, sizeof name, s->dir, seg);
    if (stat(name, &a) != 0) {
        if (errno != ENOENT) return 0;
        if (!s->adir) return 1;
        plg__seg_name(name, sizeof name, s->adir, seg);   /* archived: the same bytes, not released */
        return stat(name, &a) != 0 && errno == ENOENT;
    }
    if (s->fd < 0 || s->fd_seg != seg || fstat(s->fd, &b) != 0) return 0;
    if (a.st_ino != b.st_ino || a.st_dev != b.st_dev) return 1;
    uint8_t page[PLG_PAGE_SIZE]; size_t got = 0; plg__seghdr h;
    return plg__read_full(s->fd, page, sizeof page, 0, &got) == 0 && got == sizeof page &&
           plg__seghdr_decode(page, &h) == 0 && h.seg_index != seg;
}

/* The fragment at (xg, xoff) was invalid when read; is it valid now, read
 * again? Then a writer filled it after the first read: the live end of the
 * log, not damage. (Data a whole window further on is only written after
 * everything before it completed, so a healthy log passes this check.) */
static int plg__scan_filled(plg__scan *s, uint64_t xg, uint32_t xoff) {
    plg__frag f;
    plg__fpos pos = plg__scan_fpos(s, xg, xoff);
    const uint8_t *p = plg__scan_one(s, xg);
    return p && plg__frag_read(p + xoff, PLG_PAGE_SIZE - xoff, s->log_id, plg__scan_k(s, xg), &pos, &f) &&
           plg__scan_accept(s, &f) != 0;
}

/* The walk stopped at (g, off): an invalid fragment (invalid = 1) or the end
 * of the segment files. Decide torn tail (0) or corruption (PLG_ECORRUPT). */
/* Where a damaged record begins when the walk stopped at (g, off) and no
 * fragment of it verified: a page left partly filled (format 2) has its
 * rest unwritten, and if the next page begins with a fragment that claims
 * the next seq (it did not verify: it is the damaged one), that is where
 * the damage is, not the start of the unwritten rest. */
static void plg__scan_bad_at(plg__scan *s, uint64_t *g, uint32_t *off) {
    if (s->in_rec || *off == 0 || plg__seg_of(s, *g + 1) != plg__seg_of(s, *g)) return;
    const uint8_t *p = plg__scan_page(s, *g);
    int zero = p != NULL;
    for (uint32_t i = *off; zero && i < PLG_PAGE_SIZE; i++) zero = !p[i];
    const uint8_t *q = zero ? plg__scan_page(s, *g + 1) : NULL;
    if (q && plg__get64(q + 16) == s->last_seq + 1 && (q[6] == PLG__FULL || q[6] == PLG__FIRST)) { *g += 1; *off = 0; }
}

/* Not the end after all, for now: the next call reads again from the start
 * of the unfinished record (or from the valid end), with nothing cached. */
static int plg__scan_end_for_now(plg__scan *s) {
    s->g = s->end_g; s->off = s->end_off; s->in_rec = 0; s->torn = 0;
    s->chunk_n = 0; s->done = 0; s->skipped = 0;
    plg__scan_forget_keys(s);
    plg__scan_setwhere(s, s->end_g, s->end_off);
    return 0;
}

static int plg__scan_end(plg__scan *s, int invalid) {
    uint64_t xg = s->g; uint32_t xoff = s->off;
    s->done = 1;
    s->end_g = s->in_rec ? s->rec_g : xg;
    s->end_off = s->in_rec ? s->rec_off : xoff;
    uint64_t bad_g = s->end_g; uint32_t bad_off = s->end_off;   /* where the record that did not verify begins */
    if (s->skipped && s->end_g == s->skip_g + 1 && s->end_off == 0) {
        /* the record on the next page was torn: the log ends right after the
         * last record, where the next writer goes on (never on a page start
         * behind a gap, which only the record right after it may cross) */
        s->end_g = s->skip_g; s->end_off = s->skip_off;
    }
    if (s->status) return s->status;
    if (s->in_rec) s->torn = 1;
    for (uint64_t seg = plg__seg_of(s, s->end_g); invalid && seg <= plg__seg_of(s, xg); seg++)
        if (plg__scan_released(s, seg)) {
            plg__scan_setwhere(s, xg, xoff);
            snprintf(s->detail, sizeof s->detail, "segment %llu was released while this reader needed it",
                     (unsigned long long)seg);
            s->status = PLG_ERELEASED;
            return s->status;
        }
    if (invalid && s->live_retry) {
        /* A live reader short of the writer's durable mark: the pages it
         * walked may have been read before the writer filled them. End for
         * now, and let it read them again before anything is judged; the
         * damage check below reads up to PLG__EVIDENCE_PAGES past the end. */
        s->live_retried = 1;
        return plg__scan_end_for_now(s);
    }
    if (invalid) {
        const uint8_t *p = plg__scan_page(s, xg);
        plg__frag of;
        plg__fpos pos = plg__scan_fpos(s, xg, xoff);
        int stale = p && plg__frag_read(p + xoff, PLG_PAGE_SIZE - xoff, s->log_id, plg__scan_k(s, xg), &pos, &of) &&
                    of.seq <= s->last_seq;
        for (uint32_t i = xoff; p && !stale && i < PLG_PAGE_SIZE && !s->torn; i++) if (p[i]) s->torn = 1;
        uint64_t at = 0;
        int evidence = plg__scan_evidence(s, xg, xoff, &at);
        if (s->status == PLG_EKEY) return s->status;   /* a later segment's key was not given */
        if (evidence && plg__scan_filled(s, xg, xoff)) {
            /* a live log moved on while this walk read it: end for now; the
             * next call reads again from the start of the unfinished record */
            return plg__scan_end_for_now(s);
        }
        if (evidence) {
            uint64_t eg = xg; uint32_t eoff = xoff;
            plg__scan_bad_at(s, &eg, &eoff);
            plg__scan_setwhere(s, eg, eoff);
            snprintf(s->detail, sizeof s->detail,
                     "invalid record where seq %llu was expected, but valid records follow in segment %llu at offset %llu",
                     (unsigned long long)(s->in_rec ? s->rec_seq : s->last_seq + 1),
                     (unsigned long long)plg__seg_of(s, at), (unsigned long long)plg__page_off(s->D, at));
            s->status = PLG_ECORRUPT;
            return s->status;
        }
    }
    plg__scan_setwhere(s, s->end_g, s->end_off);
    if (s->meta.mark > s->last_seq) {              /* acknowledged records are missing: damage, not a tear */
        /* named where the damaged record begins, not where the valid log
         * ends: after a page padded at a flush the two differ */
        if (invalid) plg__scan_bad_at(s, &bad_g, &bad_off);
        plg__scan_setwhere(s, bad_g, bad_off);
        snprintf(s->detail, sizeof s->detail,
                 "seq %llu is missing or damaged here, but every seq up to %llu was durable (durable mark in %s)",
                 (unsigned long long)(s->last_seq + 1), (unsigned long long)s->meta.mark, PLG__META_NAME);
        s->status = PLG_ECORRUPT;
        return s->status;
    }
    return 0;
}

/* Room for need bytes of the record being assembled: doubling, but never
 * past the largest record (a 1 GiB record takes 1 GiB, not 2). */
static int plg__scan_grow(plg__scan *s, size_t need) {
    if (need <= s->rec_cap) return 0;
    size_t top = (size_t)PLG__MAX_RECORD + 64, cap = s->rec_cap ? s->rec_cap : 65536;
    while (cap < need) cap *= 2;
    if (cap > top && need <= top) cap = top;
    uint8_t *p = (uint8_t *)PICOLOG_REALLOC(s->rec, cap);
    if (!p) return PLG_ENOMEM;
    s->rec = p; s->rec_cap = cap;
    return 0;
}

/* 1 = accept, 2 = skip (continuation after a seek), 0 = invalid here. */
static int plg__scan_accept(plg__scan *s, const plg__frag *f) {
    if (!s->in_rec) {
        if (f->type == PLG__MIDDLE || f->type == PLG__LAST) return s->skip_cont ? 2 : 0;
        if (s->expect && f->seq != s->expect) return 0;
        if (s->have_epoch && f->epoch != s->epoch && !(f->flags & PLG__F_EPOCH_START)) return 0;
        return 1;
    }
    if (f->type != PLG__MIDDLE && f->type != PLG__LAST) return 0;
    if (f->seq != s->rec_seq || f->epoch != s->rec_epoch) return 0;
    if (s->crypt && f->aux != s->rec_len) return 0;   /* encrypted: aux is where it goes in the record */
    if (f->type == PLG__MIDDLE && s->rec_len + f->len >= s->rec_total) return 0;
    if (f->type == PLG__LAST && s->rec_len + f->len != s->rec_total) return 0;
    return 1;
}

static void plg__scan_took(plg__scan *s, uint64_t seq, uint32_t epoch, uint32_t len) {
    s->skipped = 0;
    s->last_seq = seq; s->last_epoch = epoch; s->expect = seq + 1;
    s->epoch = epoch; s->have_epoch = 1; s->skip_cont = 0;
    if (!s->first_seq) s->first_seq = seq;
    s->records++; s->bytes += len;
}

/* The fragment at (g, off) does not continue the log: does the next page
 * start with it? A writer that had this partly filled page in flight put the
 * next record there (format version 2): exactly the next seq, of the same
 * writer incarnation (same epoch, not EPOCH_START), FULL or FIRST, with its
 * own checksum, so stale bytes (an older incarnation, a reused segment) never
 * pass. A read error here is left to plg__scan_end, which reads again. */
static int plg__scan_skip(plg__scan *s) {
    if (s->off == 0 || s->in_rec || !s->expect || !s->have_epoch) return 0;
    int status = s->status;
    const uint8_t *p = plg__scan_page(s, s->g + 1);
    s->status = status;
    plg__frag f;
    if (!p || !plg__frag_read(p, PLG_PAGE_SIZE, s->log_id, plg__scan_k(s, s->g + 1), NULL, &f)) return 0;
    return (f.type == PLG__FULL || f.type == PLG__FIRST) && f.seq == s->expect && f.epoch == s->epoch &&
           !(f.flags & PLG__F_EPOCH_START);
}

#ifdef PICOLOG_ENCRYPT
/* A fragment whose tag matched did not decrypt: cannot happen with the key
 * that passed the key check, unless the construction itself is broken. */
static int plg__scan_bad_seal(plg__scan *s) {
    plg__scan_setwhere(s, s->g, s->off);
    snprintf(s->detail, sizeof s->detail, "fragment authenticated but does not decrypt");
    s->status = PLG_ECORRUPT; s->done = 1;
    return s->status;
}
#endif

static int plg__scan_next(plg__scan *s, plg_record *rec) {
    if (s->done) return s->status < 0 ? s->status : 0;
    for (;;) {
        if (s->off + plg__min_frag(s->crypt) > PLG_PAGE_SIZE) { s->g++; s->off = 0; }
        const uint8_t *page = plg__scan_page(s, s->g);
        if (!page) return plg__scan_end(s, 0);
        plg__frag f;
        const plg__crypt *k = plg__scan_k(s, s->g);
        if (s->status) return plg__scan_end(s, 0);       /* this segment's key was not given */
        plg__fpos pos = plg__scan_fpos(s, s->g, s->off);
        int ok = plg__frag_read(page + s->off, PLG_PAGE_SIZE - s->off, s->log_id, k, &pos, &f);
        if (ok) ok = plg__scan_accept(s, &f);
        if (!ok && plg__scan_skip(s)) {
            s->skipped = 1; s->skip_g = s->g; s->skip_off = s->off;
            s->g++; s->off = 0;
            continue;
        }
        if (!ok) return plg__scan_end(s, 1);
        uint32_t step = f.step;
        plg__pv before = s->pv;
        s->pv.g = s->g; s->pv.end = s->off + step; s->pv.seq = f.seq; s->pv.epoch = f.epoch;
        if (ok == 2) {
            /* the rest of a record whose head was retired: every seq below it
             * was written; after its LAST fragment comes seq + 1, of the same
             * writer incarnation unless flagged EPOCH_START (so the skip rule
             * can follow a page its writer left right after this fragment) */
            if (f.seq - 1 > s->last_seq) s->last_seq = f.seq - 1;
            if (f.type == PLG__LAST) {
                s->expect = f.seq + 1; s->epoch = f.epoch; s->have_epoch = 1;
                if (f.seq > s->last_seq) s->last_seq = f.seq;
            }
            s->off += step;
            continue;
        }
        if (f.type == PLG__FULL) {
            const uint8_t *data = f.payload;
#ifdef PICOLOG_ENCRYPT
            if (s->crypt) {
                if (plg__scan_grow(s, (size_t)f.len + 32)) { s->status = PLG_ENOMEM; s->done = 1; return PLG_ENOMEM; }
                if (plg__frag_open(k, &f, s->rec)) return plg__scan_bad_seal(s);
                data = s->rec;
            }
#endif
            s->ret_g = s->g; s->ret_off = s->off; s->ret_pv = before;
            s->off += step;
            plg__scan_took(s, f.seq, f.epoch, f.len);
            rec->seq = f.seq; rec->data = data; rec->len = f.len;
            return 1;
        }
        if (f.type == PLG__FIRST) {
            s->in_rec = 1; s->rec_seq = f.seq; s->rec_total = f.aux; s->rec_len = 0;
            s->rec_epoch = f.epoch; s->rec_g = s->g; s->rec_off = s->off; s->rec_pv = before;
        }
        /* memory for the fragments taken, not for the size the first one
         * claims: a damaged claim costs what is on disk */
        if (plg__scan_grow(s, (size_t)s->rec_len + f.len + 32)) { s->status = PLG_ENOMEM; s->done = 1; return PLG_ENOMEM; }
#ifdef PICOLOG_ENCRYPT
        if (s->crypt) {
            if (plg__frag_open(k, &f, s->rec + s->rec_len)) return plg__scan_bad_seal(s);
        } else
#endif
            memcpy(s->rec + s->rec_len, f.payload, f.len);
        s->rec_len += f.len;
        s->off += step;
        if (f.type == PLG__LAST) {
            s->in_rec = 0;
            s->ret_g = s->rec_g; s->ret_off = s->rec_off; s->ret_pv = s->rec_pv;
            plg__scan_took(s, s->rec_seq, s->rec_epoch, s->rec_total);
            rec->seq = s->rec_seq; rec->data = s->rec; rec->len = s->rec_total;
            return 1;
        }
    }
}

/* Restart the walk at page g, not knowing the sequence number there. */
static void plg__scan_restart(plg__scan *s, uint64_t g) {
    s->g = g; s->off = 0; s->expect = 0; s->have_epoch = 0; s->skip_cont = 1;
    s->in_rec = 0; s->done = 0; s->status = 0; s->torn = 0; s->skipped = 0;
    s->chunk_n = 0; s->ra = 4;
}

/* >>ring ------------------------------------------------------------------ */
/* Byte ring of 8-byte-aligned entries {u32 len, u32 kind, payload}. The
 * producer owns head (and a cached copy of tail), the consumer owns tail (and
 * a cached copy of head); each side's fields sit on their own cache lines.
 * An entry never wraps: a WRAP entry fills the end of the buffer instead. */
#define PLG__RING_REC  1u
#define PLG__RING_WRAP 2u

typedef struct plg__ring_ctl {
    /* producer line(s) */
    uint64_t head, cached_tail, next_seq, pend_pos;
    uint32_t pend_len, pend_need;
    int32_t  reserve_err; uint32_t pend_open;
    uint64_t records, bytes, ring_full;
    char pad1[128 - 8 * 4 - 16 - 24];
    /* consumer line(s) */
    uint64_t tail;
    char pad2[128 - 8];
} plg__ring_ctl;
PLG__STATIC_ASSERT(sizeof(plg__ring_ctl) == 256, "ring control block layout");

/* one write (or fsync) in flight, in submission order */
typedef struct plg__wr {
    uint64_t g0, end_seq;
    uint32_t npages, expect;
    uint8_t partial, is_sync, done, failed, dsynced, plain;   /* plain: a write without RWF_DSYNC */
    uint8_t final;        /* partial, and its page was left for the next one: nothing more goes in it */
    uint8_t *buf;         /* partial: the shadow copy written */
} plg__wr;

#define PLG__MAX_INFLIGHT 64
#define PLG__MAX_CPUS 1024

struct plg_log {
    plg_config cfg;
    char *path;
    int dirfd;
    char *adir; int adirfd;      /* plg_config.archive_dir, or NULL and -1 */
    /* ring (mmap: control block page, then data) */
    void *map; size_t map_len;
    plg__ring_ctl *rc; uint8_t *rdata; uint64_t cap, mask;
    /* shared positions and state (atomics) */
    uint64_t written, durable;
    uint32_t durable_gen, waiters;
    uint32_t idle;           /* futex word: 1 while the writer sleeps idle (plg_kick wakes it) */
    uint32_t kicked;         /* a producer calls plg_kick: the idle writer sleeps on idle, not in nanosleep */
    int error, last_errno, stop;
    /* log identity */
    uint64_t log_id, seg_size, window, D;
    uint32_t epoch;
    /* writer: staging pages g map to slot g % S */
    uint8_t *stage, *shadow; size_t stage_len; uint32_t S;   /* shadow: max_inflight pages after stage */
    uint32_t shadow_next;             /* round robin: a shadow is reused max_inflight partial writes later */
    uint64_t tail_busy;               /* g + 1 of the partly filled page in flight, 0 = none */
    uint64_t skip_from;               /* first segment where a page in flight may be left (version 2) */
    uint64_t short_from;              /* first segment where SHORT fragments may go (version 5) */
    uint64_t short_g;                 /* the page where this writer's last record ended (it may be followed
                                         by a SHORT one there), or UINT64_MAX */
    plg__keys keys;                   /* an encrypted log's keys (k[0]: the current one), n = 0: plain;
                                       * fixed from plg_open to plg_close, shared by the threads */
    const plg__crypt *crypt;          /* writer thread: the key of segment seal_seg (packing seals with it) */
    uint64_t seal_seg;                /* the segment of the page being packed, when crypt was looked up */
    plg__seal_job seal_q[PLG__SEAL_BATCH];   /* writer thread: fragments packed, not yet sealed */
    uint32_t seal_n;
    uint64_t key_from;                /* segments from here on are all under keys.k[0] (plg__rotate_keys) */
    uint64_t first_key_id;            /* the key of version 3 segments (picolog.meta's) */
    uint64_t *slot_end;
    uint64_t g_fill, g_sub, g_free;
    uint64_t g_synced; int unsynced;   /* fdatasync mode: pages below g_synced are on stable storage */
    uint32_t fill_off, partial_off;
    int epoch_start, broken;
    uint64_t fill_end_seq, cseq, ctail;
    uint32_t pack_done;
    uint64_t oldest_ns;
    plg__wr wr[PLG__MAX_INFLIGHT]; uint32_t wr_head, wr_n, sync_inflight;
    uint32_t wr_plain;                  /* writes in flight without RWF_DSYNC */
    uint32_t max_write_pages;
    int dsync_one;                      /* DSYNC without FUA: one write in flight unless a full batch waits */
    int dsync_low;                      /* PLG_DSYNC_UNTIL_BEHIND in FDATASYNC mode (AUTO without FUA) */
    uint64_t cur_seg; int fd_cur;
    /* I/O engine */
    int io_kind;  /* 0 io_uring, 1 pwritev2, 2 custom */
#ifndef PICOLOG_NO_URING
    struct io_uring uring; int uring_ok, fixed;
#endif
    plg_io_cqe sq[PLG__MAX_INFLIGHT + 2]; uint32_t sq_n;
    /* segment preallocation thread */
    pthread_t writer, prealloc;
    int writer_started, prealloc_started;
    int synchronous;                    /* PLG_TEST_NO_THREADS */
    pthread_mutex_t pa_mu; pthread_cond_t pa_cv;
    uint64_t pa_want, pa_ready; int pa_err, pa_errno, pa_stop;
    uint64_t pa_need;                   /* the segment the writer is in (under pa_mu) */
    uint64_t busy_ns;                   /* writer: when a full batch last waited (relaxed) */
    uint64_t pa_fail_ns, pa_retry_ns;   /* failing since, next retry (CLOCK_MONOTONIC) */
    uint64_t seg_first, release_below; int release_pending; uint32_t nfree;   /* under pa_mu */
    /* stats (writer-owned, read relaxed) */
    uint64_t st_writes, st_pages, st_bytes, st_syncs, st_segs, st_stalls, st_maxw, st_errors;
    uint64_t st_writes_dsync;
    uint64_t st_writes_blocking, st_writes_paired;
    uint64_t st_segs_unwritten;
    uint64_t st_released, st_recycled, st_dirsyncs, st_pages_left, st_syncs_async;
    /* meta file (durable mark), written by the writer thread, or by
     * plg_open/plg_close while it is not running */
    int meta_fd; plg__meta meta; uint64_t mark_ns;
    uint64_t discarded_bytes, discarded_records; char *quarantine;
    /* plg_truncate / plg_reset, carried out by the writer thread */
    pthread_mutex_t op_mu; pthread_cond_t op_cv;
    int op_req, op_kind, op_rc, op_done; uint64_t op_arg;
    /* durability notification: an eventfd (lazily), the shared live mark */
    int notify_fd;
    struct plg__live *live; int live_fd;   /* live_fd holds the lock that says "a writer runs" */
    struct plg__tail *tail;                /* live.pages (NULL: none) */
};

/* >>live: <dir>/live.shm, one shared page that tells readers in any process
 * how far the writer's durable mark is, and wakes them (a shared futex). It
 * is rewritten at every plg_open and never synced: only a running writer's
 * mark means anything. Fields are native-endian (one machine). The writer
 * holds an OFD write lock (F_OFD_SETLK) on the whole file while the log is
 * open: the kernel drops it when the writer dies, so unlike a pid it can
 * never name a writer that is gone (a crash, a reboot, a reused pid).
 * Readers test it with F_OFD_GETLK, which takes no lock. */
#define PLG__LIVE_NAME  "live.shm"
#define PLG__LIVE_MAGIC 0x31564c4e474c50ull       /* "PLGNLV1" */
typedef struct plg__live {
    uint64_t magic, log_id;
    uint64_t durable;        /* the writer's plg_durable */
    uint32_t gen;            /* futex word: bumped when durable moves or the writer stops */
    uint32_t waiters;        /* readers sleeping on gen */
    int32_t  writer_pid;
    uint32_t open;           /* 1 while a writer has the log open */
    uint64_t wid;            /* names this writer's live.pages (0: none yet) */
    uint64_t follow_ns;      /* a reader at its end looked at the log then (plg_now_ns) */
    uint64_t resets;         /* plg_reset calls of this writer, each counted once its meta write is done */
} plg__live;
PLG__STATIC_ASSERT(sizeof(plg__live) <= PLG_PAGE_SIZE, "live mark fits a page");

static void plg__live_wake(plg__live *v) {
    __atomic_fetch_add(&v->gen, 1u, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&v->waiters, __ATOMIC_SEQ_CST))
        syscall(SYS_futex, &v->gen, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* <dir>/live.pages: the last pages the writer wrote, for readers following
 * the log in any process. The writer's O_DIRECT writes leave nothing in the
 * page cache, so without it a reader at the end reads the tail page from the
 * device after every advance (a device read beside each write and flush).
 * Slot i holds page g with g % PLG__TAIL_SLOTS == i, as the last completed
 * write of g left it (what the file holds), under a sequence lock; a tag of
 * UINT64_MAX holds nothing. Made at every plg_open under a new name and
 * renamed into place (a reader's old mapping is never cut short), named by
 * a random wid that live.shm repeats: a reader uses it only while both
 * agree and the writer's lock says that writer runs (after a crash the
 * copies may hold what never reached the disk). Filled only while a reader
 * polled at its end in the last second (live.shm's follow_ns), from the
 * writer thread as each write retires, before the sync that makes it
 * durable. Never synced. */
#define PLG__TAIL_NAME  "live.pages"
#define PLG__TAIL_MAGIC 0x31504c4e474c50ull       /* "PLGNLP1" */
#define PLG__TAIL_SLOTS 16u
#define PLG__FOLLOW_NS  1000000000ull
typedef struct plg__tail {
    uint64_t magic, log_id, wid;
    int32_t writer_pid; uint32_t slots;
    struct { uint32_t seq, pad; uint64_t g; } tag[PLG__TAIL_SLOTS];
} plg__tail;                                   /* page 0; slot i's page is page 1 + i */
PLG__STATIC_ASSERT(sizeof(plg__tail) <= PLG_PAGE_SIZE, "live.pages header fits a page");
#define PLG__TAIL_LEN ((size_t)(1 + PLG__TAIL_SLOTS) * PLG_PAGE_SIZE)

static uint64_t *plg__tail_page(const plg__tail *t, uint32_t i) {
    return (uint64_t *)(void *)((uint8_t *)(uintptr_t)t + (size_t)(1 + i) * PLG_PAGE_SIZE);
}

/* Writer: slot i now holds page g (src; NULL: nothing, g ignored). 8-byte
 * stores inside the sequence lock: a reader that overlaps sees the sequence
 * move and does not use what it copied. Release stores and acquire loads of
 * the page (plain moves on x86) order it against the sequence without
 * fences, which ThreadSanitizer does not model. */
static void plg__tail_store(plg__tail *t, uint32_t i, uint64_t g, const uint8_t *src) {
    uint32_t sq = __atomic_load_n(&t->tag[i].seq, __ATOMIC_RELAXED);
    __atomic_store_n(&t->tag[i].seq, sq + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&t->tag[i].g, src ? g : UINT64_MAX, __ATOMIC_RELEASE);
    if (src) {
        uint64_t *dst = plg__tail_page(t, i);
        for (size_t k = 0; k < PLG_PAGE_SIZE / 8; k++) {
            uint64_t x;
            memcpy(&x, src + 8 * k, 8);
            __atomic_store_n(&dst[k], x, __ATOMIC_RELEASE);
        }
    }
    __atomic_store_n(&t->tag[i].seq, sq + 2, __ATOMIC_RELEASE);
}

/* Reader: page g from its slot into dst; 0 when the slot does not hold it,
 * changed meanwhile, or belongs to another writer than live.shm names. */
static int plg__tail_get(const plg__scan *s, uint64_t g, uint8_t *dst) {
    const plg__tail *t = s->tail;
    const plg__live *v = s->tail_live;
    uint64_t wid = __atomic_load_n(&t->wid, __ATOMIC_ACQUIRE);
    if (!wid || __atomic_load_n(&v->wid, __ATOMIC_ACQUIRE) != wid) return 0;
    /* a writer of an earlier release leaves wid as it was, but not the pid */
    if (__atomic_load_n(&v->writer_pid, __ATOMIC_RELAXED) != t->writer_pid) return 0;
    uint32_t i = (uint32_t)(g % PLG__TAIL_SLOTS);
    uint32_t s1 = __atomic_load_n(&t->tag[i].seq, __ATOMIC_ACQUIRE);
    if ((s1 & 1u) || __atomic_load_n(&t->tag[i].g, __ATOMIC_ACQUIRE) != g) return 0;
    const uint64_t *src = plg__tail_page(t, i);
    for (size_t k = 0; k < PLG_PAGE_SIZE / 8; k++) {
        uint64_t x = __atomic_load_n(&src[k], __ATOMIC_ACQUIRE);
        memcpy(dst + 8 * k, &x, 8);
    }
    if (__atomic_load_n(&t->tag[i].seq, __ATOMIC_RELAXED) != s1) return 0;
    return __atomic_load_n(&v->wid, __ATOMIC_ACQUIRE) == wid;
}

static void plg__msg(const plg_log *L, int code, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (L && L->cfg.log_fn) L->cfg.log_fn(L->cfg.log_user, code, buf);
    else fprintf(stderr, "picolog: %s\n", buf);
}

static void plg__futex_wake(uint32_t *addr) {
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void plg__wake_waiters(plg_log *L) {
    __atomic_fetch_add(&L->durable_gen, 1u, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&L->waiters, __ATOMIC_SEQ_CST)) plg__futex_wake(&L->durable_gen);
    if (L->live) plg__live_wake(L->live);
    int nfd = plg__load_acq(&L->notify_fd);
    if (nfd >= 0) {                                /* the counter only grows; a reader clears it */
        uint64_t one = 1;
        ssize_t n = write(nfd, &one, sizeof one);
        (void)n;                                   /* EAGAIN: already readable */
    }
}

/* The first error poisons the log for good: nothing more is acknowledged. */
static void plg__poison(plg_log *L, int code, int err) {
    int expected = 0;
    plg__add_rlx(&L->st_errors, 1);
    if (__atomic_compare_exchange_n(&L->error, &expected, code, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        plg__store_rlx(&L->last_errno, err);
        plg__msg(L, code, "%s: log poisoned: %s (errno %d); durable stays at %llu", L->path,
                 plg_strerror(code), err, (unsigned long long)plg__load_rlx(&L->durable));
    }
    plg__wake_waiters(L);
}

static void plg__set_durable(plg_log *L, uint64_t seq) {
    if (seq > plg__load_rlx(&L->durable)) {
        PICOLOG_TRACE(PLG_TRACE_DURABLE, seq);
        plg__store_rel(&L->durable, seq);
        if (L->live) plg__store_rel(&L->live->durable, seq);   /* only the writer thread moves it */
        plg__wake_waiters(L);
    }
}

/* Producer side: room for `need` contiguous bytes, writing a WRAP entry first
 * when the end of the buffer is too short. Returns the position or -1. */
static int64_t plg__ring_room(plg_log *L, uint64_t need) {
    plg__ring_ctl *c = L->rc;
    uint64_t head = c->head;
    uint64_t pos = head & L->mask, to_end = L->cap - pos;
    if (need > to_end) {
        if (head + to_end - c->cached_tail > L->cap) {
            c->cached_tail = plg__load_acq(&c->tail);
            if (head + to_end - c->cached_tail > L->cap) return -1;
        }
        uint8_t *e = L->rdata + pos;
        plg__put32(e, (uint32_t)(to_end - 8));
        plg__put32(e + 4, PLG__RING_WRAP);
        head += to_end;
        plg__store_rel(&c->head, head);
        pos = 0;
    }
    if (head + need - c->cached_tail > L->cap) {
        c->cached_tail = plg__load_acq(&c->tail);
        if (head + need - c->cached_tail > L->cap) return -1;
    }
    return (int64_t)pos;
}

PLGDEF void *plg_reserve(plg_log *L, uint32_t len) {
    plg__ring_ctl *c = L->rc;
    int err = plg__load_rlx(&L->error);
    if (!err && c->pend_open) {        /* misuse: the open reservation stays as it is */
        c->reserve_err = PLG_EBUSY;
        return NULL;
    }
    if (!err && len == 0) err = PLG_EINVAL;
    uint64_t need = 8 + PLG__ALIGN8((uint64_t)len);
    if (!err && (need > L->cap || len > PLG__MAX_RECORD)) err = PLG_ETOOBIG;
    if (!err && plg__load_rlx(&L->stop)) err = PLG_ECLOSED;
    int64_t pos = -1;
    if (!err) {
        pos = plg__ring_room(L, need);
        if (pos < 0) { err = PLG_EFULL; plg__bump(&c->ring_full, 1); }
    }
    c->reserve_err = err;
    if (err) { c->pend_open = 0; return NULL; }
    c->pend_pos = (uint64_t)pos; c->pend_len = len; c->pend_need = (uint32_t)need; c->pend_open = 1;
    return L->rdata + pos + 8;
}

PLGDEF int plg_reserve_error(const plg_log *L) { return L->rc->reserve_err; }

PLGDEF int64_t plg_commit(plg_log *L) {
    plg__ring_ctl *c = L->rc;
    if (!c->pend_open) return PLG_EINVAL;
    uint8_t *e = L->rdata + c->pend_pos;
    plg__put32(e, c->pend_len);
    plg__put32(e + 4, PLG__RING_REC);
    c->pend_open = 0;
    uint64_t seq = c->next_seq;
    plg__store_rlx(&c->next_seq, seq + 1);
    plg__bump(&c->records, 1);
    plg__bump(&c->bytes, c->pend_len);
    plg__store_rel(&c->head, c->head + c->pend_need);
    return (int64_t)seq;
}

PLGDEF int64_t plg_append(plg_log *L, const void *data, uint32_t len) {
    void *p = plg_reserve(L, len);
    if (!p) return L->rc->reserve_err;
    memcpy(p, data, len);
    return plg_commit(L);
}

/* >>io -------------------------------------------------------------------- */
/* io_uring (default), pwritev2 from the writer thread (PICOLOG_NO_URING, or
 * when io_uring is unavailable), or the caller's plg_io (tests). */
/* One write of len bytes from buf, then (tail_len > 0) tail_len more from
 * tail, at off: one device write. */
static int plg__pwrite2_dsync(int fd, const void *buf, uint32_t len, const void *tail, uint32_t tail_len, uint64_t off,
                              int dsync) {
    struct iovec iov[2];
    iov[0].iov_base = (void *)buf; iov[0].iov_len = len;
    iov[1].iov_base = (void *)tail; iov[1].iov_len = tail_len;
    int cnt = tail_len ? 2 : 1;
    for (;;) {
#ifdef __USE_GNU
        ssize_t n = pwritev2(fd, iov, cnt, (off_t)off, dsync ? RWF_DSYNC : 0);
#else
        ssize_t n = (ssize_t)syscall(SYS_pwritev2, fd, iov, cnt, (long)off, 0L, dsync ? RWF_DSYNC : 0);
#endif
        if (n < 0 && errno == EINTR) continue;
        return n < 0 ? -errno : (int)n;
    }
}
static int plg__pwrite_dsync(int fd, const void *buf, uint32_t len, uint64_t off, int dsync) {
    return plg__pwrite2_dsync(fd, buf, len, NULL, 0, off, dsync);
}

static int plg__io_write(plg_log *L, int fd, const void *buf, uint32_t len, uint64_t off, int dsync, uint64_t tag) {
    if (L->io_kind == 2) return L->cfg.io->submit_write(L->cfg.io->ctx, fd, buf, len, off, dsync, tag);
#ifndef PICOLOG_NO_URING
    if (L->io_kind == 0) {
        /* A page of the range in the page cache (a reader following the
         * log, recovery's reads) makes the write block while it evicts the
         * page: io_uring then hands it to a kernel worker thread, whose
         * wake-up can cost more than the write. Evicting here first, about
         * 0.3 us when nothing is cached, keeps the write on the fast path. */
        (void)posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
        struct io_uring_sqe *sqe = io_uring_get_sqe(&L->uring);
        if (!sqe) return -EBUSY;
        if (L->fixed) io_uring_prep_write_fixed(sqe, fd, buf, len, off, 0);
        else io_uring_prep_write(sqe, fd, buf, len, off);
        sqe->rw_flags = dsync ? RWF_DSYNC : 0;
        io_uring_sqe_set_data64(sqe, tag);
        int r = io_uring_submit(&L->uring);
        return r < 0 ? r : 0;
    }
#endif
    L->sq[L->sq_n].tag = tag;
    L->sq[L->sq_n].res = plg__pwrite_dsync(fd, buf, len, off, dsync);
    L->sq_n++;
    plg__add_rlx(&L->st_writes_blocking, 1);     /* the pwritev2 backend */
    return 0;
}

static int plg__io_fsync(plg_log *L, int fd, uint64_t tag) {
    if (L->io_kind == 2) return L->cfg.io->submit_fsync(L->cfg.io->ctx, fd, tag);
#ifndef PICOLOG_NO_URING
    if (L->io_kind == 0) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&L->uring);
        if (!sqe) return -EBUSY;
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
        io_uring_sqe_set_data64(sqe, tag);
        int r = io_uring_submit(&L->uring);
        return r < 0 ? r : 0;
    }
#endif
    L->sq[L->sq_n].tag = tag;
    L->sq[L->sq_n].res = fdatasync(fd) == 0 ? 0 : -errno;
    L->sq_n++;
    return 0;
}

static int plg__io_reap(plg_log *L, plg_io_cqe *out, int max, uint64_t timeout_ns) {
    if (L->io_kind == 2) return L->cfg.io->reap(L->cfg.io->ctx, out, max, timeout_ns);
#ifndef PICOLOG_NO_URING
    if (L->io_kind == 0 && L->sq_n == 0) {
        struct io_uring_cqe *cqe = NULL;
        int n = 0, r;
        if (timeout_ns) {
            struct __kernel_timespec ts;
            ts.tv_sec = (long long)(timeout_ns / 1000000000ull);
            ts.tv_nsec = (long long)(timeout_ns % 1000000000ull);
            r = io_uring_wait_cqe_timeout(&L->uring, &cqe, &ts);
        } else {
            r = io_uring_peek_cqe(&L->uring, &cqe);
        }
        if (r == -ETIME || r == -EAGAIN || r == -EINTR) return 0;
        if (r < 0) return r;
        while (n < max && io_uring_peek_cqe(&L->uring, &cqe) == 0) {
            out[n].tag = io_uring_cqe_get_data64(cqe);
            out[n].res = cqe->res;
            io_uring_cqe_seen(&L->uring, cqe);
            n++;
        }
        return n;
    }
#endif
    int n = 0;
    while (n < max && (uint32_t)n < L->sq_n) { out[n] = L->sq[n]; n++; }
    memmove(L->sq, L->sq + n, (L->sq_n - (uint32_t)n) * sizeof L->sq[0]);
    L->sq_n -= (uint32_t)n;
    return n;
}

static void plg__mark_tick(plg_log *L, int force);
static void plg__op_run(plg_log *L);
static void plg__tail_put(plg_log *L, uint64_t g0, uint32_t npages, const uint8_t *partial_buf);
static void plg__tail_clear(plg_log *L);

/* >>segments -------------------------------------------------------------- */
/* A segment is born complete: <name>.tmp gets the header and zeros over its
 * whole length (written, not fallocated, so later writes are overwrites that
 * change no metadata), is synced, then renamed into place and the directory
 * synced. Written without O_DSYNC; one fdatasync at the end. Where the device
 * can write zeroes itself (FALLOC_FL_WRITE_ZEROES, Linux 6.17+), the extents
 * become written zeros without the data transfer.
 *
 * Except in a burst: while the writer is busy (plg__quiet_at), the zeros
 * would take the device's bandwidth from the records, every byte written
 * twice. Then the segment's extents are only allocated (fallocate; they read
 * as zeros): each write into them also converts an extent, which its sync
 * makes durable with the data, so a paced log, whose latency that costs,
 * keeps zeroed segments, and a burst writes each byte once. */
#ifndef FALLOC_FL_WRITE_ZEROES
#define FALLOC_FL_WRITE_ZEROES 0x80
#endif
#define PLG__ZERO_CHUNK ((size_t)1 << 20)

#define PLG__MAX_FREE 2      /* released segments kept for reuse */

/* A zeroed, page-aligned buffer of the log: a populated mapping, or, with
 * PLG_TEST_NO_THREADS, a block from PICOLOG_MALLOC (a fuzzer's allocator
 * keeps it for the next input: no mmap, munmap and page faults per open). */
static void *plg__buf_get(const plg_log *L, size_t len) {
    if (!L->synchronous) return plg__map(len);
    uint8_t *raw = (uint8_t *)PICOLOG_MALLOC(len + 2 * PLG_PAGE_SIZE);
    if (!raw) return NULL;
    uint8_t *p = raw + 2 * PLG_PAGE_SIZE - ((uintptr_t)raw % PLG_PAGE_SIZE);
    memcpy(p - sizeof raw, &raw, sizeof raw);
    memset(p, 0, len);
    return p;
}
static void plg__buf_put(const plg_log *L, void *p, size_t len) {
    if (!p) return;
    if (!L->synchronous) { munmap(p, len); return; }
    uint8_t *raw;
    memcpy(&raw, (uint8_t *)p - sizeof raw, sizeof raw);
    PICOLOG_FREE(raw);
}

/* A new log's window: twice what max_inflight writes of max_write_bytes put
 * in flight, plus a page. The writes in flight take at most half of it; the
 * other half lets fdatasync mode keep writing while a sync covers what was
 * written before (completed but unsynced writes count against the window:
 * plg__submit), so a burst makes fewer syncs (measured faster in 4 of 5
 * interleaved rounds, on fresh and on reused segments: docs/performance.md). */
static uint64_t plg__new_window(const plg_config *c) {
    uint64_t w = 2 * (uint64_t)c->max_inflight * c->max_write_bytes + PLG_PAGE_SIZE;
    return w < PLG__MAX_WINDOW ? w : PLG__MAX_WINDOW;
}

static int plg__dirsync(plg_log *L) {
    plg__add_rlx(&L->st_dirsyncs, 1);
    return plg__fsync_fd(L->dirfd);
}

/* A new segment's version and key: an encrypted log seals every segment it
 * makes under its current key (k[0]), and says so in the header. */
static void plg__seghdr_keyed(const plg_log *L, plg__seghdr *h) {
    h->version = L->keys.n ? PLG__VERSION_KEYS : PLG__VERSION;
    h->key_id = L->keys.n ? plg__crypt_key_id(L->keys.k[0]) : 0;
}

/* The key segment idx is sealed under, from its header (*k = NULL for a
 * plain log). Any thread: the key set does not change while the log is open. */
static int plg__log_key(const plg_log *L, uint64_t idx, const plg__crypt **k) {
    *k = NULL;
    if (!L->keys.n) return 0;
    plg__seghdr h;
    int rc = plg__read_seghdr(L->path, idx, &h);
    if (rc) return rc;
#ifdef PICOLOG_ENCRYPT
    *k = plg__keys_find(&L->keys, plg__seg_key_id(&h, L->first_key_id));
#endif
    return *k ? 0 : PLG_EKEY;
}

static void plg__free_name(char *out, size_t cap, const char *dir, uint64_t idx) {
    snprintf(out, cap, "%s/free-%020llu.plg", dir, (unsigned long long)idx);
}

/* Reuse a released segment: new header, first data page zeroed, synced, then
 * renamed into place. The rest keeps old records of this log; their sequence
 * numbers are below everything written here, so they never validate where a
 * record is expected (and seeks ignore them). 1 = done, 0 = none to reuse. */
static int plg__seg_recycle(plg_log *L, uint64_t idx, const char *name) {
    DIR *d = opendir(L->path);
    if (!d) return 0;
    char from[4200] = {0};
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "free-", 5) == 0 && strlen(e->d_name) == 29) {
            snprintf(from, sizeof from, "%s/%s", L->path, e->d_name);
            break;
        }
    closedir(d);
    if (!from[0]) return 0;
    int fd = open(from, O_WRONLY | O_CLOEXEC | (L->cfg.io_mode == PLG_IO_DIRECT ? O_DIRECT : 0));
    struct stat st;
    uint8_t *buf = (uint8_t *)plg__map(2 * PLG_PAGE_SIZE);
    int ok = fd >= 0 && buf && fstat(fd, &st) == 0 && (uint64_t)st.st_size == L->seg_size;
    if (ok) {
        plg__seghdr h;
        h.log_id = L->log_id; h.seg_index = idx; h.seg_size = L->seg_size;
        h.window = L->window; h.created_ns = (uint64_t)time(NULL) * 1000000000ull;
        plg__seghdr_keyed(L, &h);
        plg__seghdr_encode(buf, &h);
        ok = plg__write_all(fd, buf, 2 * PLG_PAGE_SIZE, 0) == 0 && fdatasync(fd) == 0;
    }
    if (fd >= 0) close(fd);
    if (buf) munmap(buf, 2 * PLG_PAGE_SIZE);
    ok = ok && rename(from, name) == 0 && plg__dirsync(L) == 0;
    if (!ok) unlink(from);             /* unusable: make a new one instead */
    pthread_mutex_lock(&L->pa_mu);
    if (L->nfree) L->nfree--;
    pthread_mutex_unlock(&L->pa_mu);
    if (ok) plg__add_rlx(&L->st_recycled, 1);
    return ok;
}

/* Wait on pa_cv (pa_mu held) until when_ns at the latest. */
static void plg__cond_wait_until(plg_log *L, uint64_t when_ns) {
    struct timespec ts;
    ts.tv_sec = (time_t)(when_ns / 1000000000ull);
    ts.tv_nsec = (long)(when_ns % 1000000000ull);
    pthread_cond_timedwait(&L->pa_cv, &L->pa_mu, &ts);     /* pa_cv runs on CLOCK_MONOTONIC */
}

/* A segment past the next one is made, and each chunk of its zeros
 * written, only while the writer is not busy (no full batch waited in the
 * last PLG__QUIET_NS): a burst then writes into the segments made ahead
 * instead of competing with more zeros, syncs and renames. The next
 * segment (the writer's, or the one after it) is always made at once.
 * plg__quiet_at: 0 if the writer is not busy, else when it will count as
 * not busy (if it stays so). */
#define PLG__QUIET_NS 100000000ull
static uint64_t plg__quiet_at(const plg_log *L) {
    uint64_t busy = plg__load_rlx(&L->busy_ns), now = plg_now_ns();
    return !busy || now - busy >= PLG__QUIET_NS ? 0 : busy + PLG__QUIET_NS;
}
static void plg__pace_ahead(plg_log *L, uint64_t idx) {
    if (L->synchronous) return;
    pthread_mutex_lock(&L->pa_mu);
    uint64_t at;
    while (!L->pa_stop && idx > L->pa_need + 1 && (at = plg__quiet_at(L)) != 0) plg__cond_wait_until(L, at);
    pthread_mutex_unlock(&L->pa_mu);
}

static int plg__seg_create(plg_log *L, uint64_t idx) {
    char name[4096], tmp[4200];
    plg__seg_name(name, sizeof name, L->path, idx);
    if (access(name, F_OK) == 0) return 0;         /* preallocated earlier */
    if (plg__seg_recycle(L, idx, name)) { plg__add_rlx(&L->st_segs, 1); return 0; }
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
    if (L->cfg.io_mode == PLG_IO_DIRECT) flags |= O_DIRECT;
    int fd = open(tmp, flags, 0644), e = fd < 0 ? errno : 0;   /* e: the errno behind rc */
    int rc = fd >= 0 ? 0 : e == EINVAL && (flags & O_DIRECT) ? PLG_ENODIRECT : plg__from_errno(e);
    /* only while creating; no larger than one write (a small segment needs no 1 MiB of zeros) */
    size_t buf_len = L->seg_size < PLG__ZERO_CHUNK ? (size_t)L->seg_size : PLG__ZERO_CHUNK;
    uint8_t *buf = rc ? NULL : (uint8_t *)plg__buf_get(L, buf_len);
    if (!rc && !buf) { e = errno; rc = PLG_ENOMEM; }
    int zeroed = !rc && syscall(SYS_fallocate, fd, FALLOC_FL_WRITE_ZEROES, (off_t)0, (off_t)L->seg_size) == 0;
    int unwritten = 0;                            /* a burst: allocated extents read as zeros */
    if (!rc && !zeroed) {
        if (syscall(SYS_fallocate, fd, 0, (off_t)0, (off_t)L->seg_size) == 0)
            unwritten = !L->synchronous && plg__quiet_at(L) != 0;
        else if (errno != EOPNOTSUPP) { e = errno; rc = plg__from_errno(e); }
    }
    if (!rc) {
        plg__seghdr h;
        h.log_id = L->log_id; h.seg_index = idx; h.seg_size = L->seg_size;
        h.window = L->window; h.created_ns = (uint64_t)time(NULL) * 1000000000ull;
        plg__seghdr_keyed(L, &h);
        plg__seghdr_encode(buf, &h);
    }
    for (uint64_t off = 0; !rc && off < (zeroed || unwritten ? PLG_PAGE_SIZE : L->seg_size); ) {
        uint64_t n = L->seg_size - off < PLG__ZERO_CHUNK ? L->seg_size - off : PLG__ZERO_CHUNK;
        if (zeroed || unwritten) n = PLG_PAGE_SIZE;
        else plg__pace_ahead(L, idx);
        rc = plg__write_all(fd, buf, (size_t)n, off);
        if (rc) e = errno;
        if (off == 0) memset(buf, 0, PLG_PAGE_SIZE);
        off += n;
    }
    plg__buf_put(L, buf, buf_len);
    if (!rc && fdatasync(fd) != 0) { e = errno; rc = plg__from_errno(e); }
    if (fd >= 0) close(fd);
    if (!rc && rename(tmp, name) != 0) { e = errno; rc = plg__from_errno(e); }
    if (!rc && (rc = plg__dirsync(L)) != 0) e = errno;
    if (rc) {
        if (fd >= 0) unlink(tmp);
        plg__store_rlx(&L->pa_errno, e);
        plg__msg(L, rc, "%s: cannot create segment %s: %s (%s)", L->path, name, plg_strerror(rc), strerror(e));
    } else {
        plg__add_rlx(&L->st_segs, 1);
        if (unwritten) plg__add_rlx(&L->st_segs_unwritten, 1);
    }
    return rc;
}

/* Release the oldest segments that hold only records below release_below
 * and are behind the writer: keep a few for reuse, delete the rest. Runs on
 * the preallocation thread (which owns segment files and seg_first, nfree)
 * WITHOUT pa_mu: plg_release and the writer's segment switch never wait for
 * it. At most PLG__RELEASE_BATCH segments, then one directory fsync; returns
 * 1 if more may be due (the caller makes new segments first, then goes on).
 * Oldest first: a crash before the fsync keeps a prefix of the batch's
 * renames on a filesystem that journals directory operations in order
 * (ext4, XFS), so the log still starts at one segment with no gap after it. */
#define PLG__RELEASE_BATCH 64

/* Segment idx (the file `name`) into the archive: a rename on one
 * filesystem; across filesystems a copy (<idx>.plg.tmp, fdatasync, renamed,
 * the archive's directory fsynced) before the original goes, so that it is
 * whole in one place or the other at every moment. 0 renamed, 1 copied,
 * -1 failed (errno; the segment stays where it was). */
static int plg__archive_seg(plg_log *L, uint64_t idx, const char *name) {
    char to[4200], tmp[4300];
    plg__seg_name(to, sizeof to, L->adir, idx);
    if (rename(name, to) == 0) return 0;
    if (errno != EXDEV) return -1;
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    const size_t cap = (size_t)1 << 20;
    int in = open(name, O_RDONLY | O_CLOEXEC);
    int out = in < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    uint8_t *buf = out < 0 ? NULL : (uint8_t *)PICOLOG_MALLOC(cap);
    int ok = buf != NULL, e = 0;
    for (uint64_t off = 0; ok;) {
        ssize_t n = pread(in, buf, cap, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { ok = n == 0; break; }
        ok = plg__write_all(out, buf, (size_t)n, off) == 0;
        off += (uint64_t)n;
    }
    ok = ok && fdatasync(out) == 0;
    if (!ok) e = errno;
    PICOLOG_FREE(buf);
    if (out >= 0) close(out);
    if (in >= 0) close(in);
    if (ok && (rename(tmp, to) != 0 || plg__fsync_fd(L->adirfd) != 0)) { ok = 0; e = errno; }
    if (!ok) { if (out >= 0) unlink(tmp); errno = e; return -1; }
    if (unlink(name) != 0) return -1;             /* whole in the archive; the next round removes it */
    return 1;
}

static int plg__release_segments(plg_log *L) {
    uint64_t cur = plg__load_acq(&L->cur_seg);     /* the writer's segment: never released */
    pthread_mutex_lock(&L->pa_mu);
    uint64_t below = L->release_below;
    pthread_mutex_unlock(&L->pa_mu);
    uint32_t done = 0;
    int more = 0;
    for (;;) {
        if (done == PLG__RELEASE_BATCH) { more = 1; break; }
        uint64_t next = L->seg_first + 1;
        if (next > cur) break;
        char name[4096], to[4200];
        plg__seg_name(name, sizeof name, L->path, next);
        int fd = open(name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) break;
        uint8_t page[PLG_PAGE_SIZE]; size_t got = 0; plg__frag f; const plg__crypt *k = NULL;
        int ok = plg__log_key(L, next, &k) == 0 &&
                 plg__read_full(fd, page, sizeof page, PLG_PAGE_SIZE, &got) == 0 && got == sizeof page &&
                 plg__frag_read(page, PLG_PAGE_SIZE, L->log_id, k, NULL, &f) && f.seq < below;
        close(fd);
        if (!ok) break;                 /* segment seg_first still holds records >= below */
        plg__seg_name(name, sizeof name, L->path, L->seg_first);
        int r;
        pthread_mutex_lock(&L->pa_mu);
        uint32_t nfree = L->nfree;
        pthread_mutex_unlock(&L->pa_mu);
        if (L->adir) {
            r = plg__archive_seg(L, L->seg_first, name);
            if (r < 0) {
                int e = errno;
                plg__msg(L, plg__from_errno(e), "%s: cannot move segment %llu to the archive %s: %s; it stays in the log",
                         L->path, (unsigned long long)L->seg_first, L->adir, strerror(e));
                break;
            }
            if (r == 1) more = 1;                     /* a copy: let the writer's next segment be made first */
            r = 0;
        } else if (nfree < PLG__MAX_FREE) {
            plg__free_name(to, sizeof to, L->path, L->seg_first);
            r = rename(name, to);
            if (r == 0) { pthread_mutex_lock(&L->pa_mu); L->nfree++; pthread_mutex_unlock(&L->pa_mu); }
        } else {
            r = unlink(name);
        }
        if (r != 0) break;
        L->seg_first++;
        done++;
        if (more) break;
    }
    /* the archive's entries before the log's removals (a rename: both) */
    if (done && L->adir && plg__fsync_fd(L->adirfd) != 0) return more;
    if (done && plg__dirsync(L) == 0) plg__add_rlx(&L->st_released, done);
    return more;
}

/* The background thread for segment files: makes the segments the writer
 * will want (first: the writer may be waiting), then retires released ones.
 * A failed preallocation (a full disk, say) is retried with backoff, 1 ms
 * doubling to 1 s, and at once after a plg_release (space may be free). */
#define PLG__RETRY_MIN_NS 1000000ull
#define PLG__RETRY_MAX_NS 1000000000ull

static void *plg__prealloc_main(void *arg) {
    plg_log *L = (plg_log *)arg;
    prctl(PR_SET_NAME, "plg-prealloc", 0, 0, 0);
    uint64_t backoff = 0;
    pthread_mutex_lock(&L->pa_mu);
    for (;;) {
        int create = 0;
        while (!L->pa_stop) {
            int due = L->pa_want > L->pa_ready && (!L->pa_err || plg_now_ns() >= L->pa_retry_ns);
            /* the segment to make (pa_ready + 1) past the next one: only
             * while the writer is not busy, and after the releases due (a
             * released segment is reused cheaply) */
            uint64_t quiet_at = plg__quiet_at(L);
            int ahead = L->pa_ready > L->pa_need;
            create = due && (!ahead || (!quiet_at && !L->release_pending));
            if (create || L->release_pending) break;
            if (due) plg__cond_wait_until(L, quiet_at);
            else if (L->pa_want > L->pa_ready) plg__cond_wait_until(L, L->pa_retry_ns);
            else pthread_cond_wait(&L->pa_cv, &L->pa_mu);
        }
        if (L->pa_stop) break;
        if (!create) {
            L->release_pending = 0;
            pthread_mutex_unlock(&L->pa_mu);
            int more = plg__release_segments(L);
            pthread_mutex_lock(&L->pa_mu);
            if (more) L->release_pending = 1;
            continue;
        }
        uint64_t idx = L->pa_ready + 1;
        pthread_mutex_unlock(&L->pa_mu);
        int rc = plg__seg_create(L, idx);
        pthread_mutex_lock(&L->pa_mu);
        if (rc) {
            uint64_t now = plg_now_ns();
            if (!L->pa_err) L->pa_fail_ns = now;
            L->pa_err = rc;
            backoff = backoff ? (2 * backoff < PLG__RETRY_MAX_NS ? 2 * backoff : PLG__RETRY_MAX_NS) : PLG__RETRY_MIN_NS;
            L->pa_retry_ns = now + backoff;
        } else {
            L->pa_err = 0; backoff = 0;
            L->pa_ready = idx;
        }
        pthread_cond_broadcast(&L->pa_cv);
    }
    pthread_mutex_unlock(&L->pa_mu);
    return NULL;
}

static void plg__prealloc_request(plg_log *L, uint64_t idx) {
    pthread_mutex_lock(&L->pa_mu);
    if (idx > L->pa_want) { L->pa_want = idx; pthread_cond_broadcast(&L->pa_cv); }
    pthread_mutex_unlock(&L->pa_mu);
}

/* Without a preallocation thread (PLG_TEST_NO_THREADS): the writer makes the
 * segments up to idx itself; a failure is reported as a failed
 * preallocation that is not retried. */
static void plg__prealloc_inline(plg_log *L, uint64_t idx) {
    while (L->pa_ready < idx && !L->pa_err) {
        int rc = plg__seg_create(L, L->pa_ready + 1);
        pthread_mutex_lock(&L->pa_mu);
        if (rc) { L->pa_err = rc; L->pa_fail_ns = 0; }
        else L->pa_ready++;
        pthread_mutex_unlock(&L->pa_mu);
    }
}

static int plg__open_seg_fd(plg_log *L, uint64_t idx) {
    char name[4096];
    plg__seg_name(name, sizeof name, L->path, idx);
    int flags = O_RDWR | O_CLOEXEC | (L->cfg.io_mode == PLG_IO_DIRECT ? O_DIRECT : 0);
    int fd = open(name, flags);
    if (fd < 0) return errno == EINVAL && (flags & O_DIRECT) ? PLG_ENODIRECT : plg__from_errno(errno);
    plg__seg_lock(fd);                                 /* held while a write of it is in flight (>>settle) */
    return fd;
}

/* Writer: move to segment idx (nothing in flight). Waits for the
 * preallocator if it is behind; that wait is counted as a stall. */
/* fdatasync of the current segment, now (nothing in flight), through the
 * caller's plg_io when there is one so a simulated disk sees it. */
static int plg__sync_now(plg_log *L) {
    if (L->io_kind != 2) {
        int r;
        while ((r = fdatasync(L->fd_cur)) != 0 && errno == EINTR) {}
        return r == 0 ? 0 : -errno;
    }
    int r = plg__io_fsync(L, L->fd_cur, PLG__MAX_INFLIGHT);
    for (int i = 0; r == 0 && i < 1000000; i++) {
        plg_io_cqe cq[4];
        int n = plg__io_reap(L, cq, 4, 1000000);
        if (n < 0) return n;
        for (int k = 0; k < n; k++) if (cq[k].tag == PLG__MAX_INFLIGHT) return cq[k].res;
    }
    return r ? r : -EIO;
}

#define PLG__PREALLOC_WAIT_NS 5000000000ull   /* the writer's wait for a failing preallocation */
static int plg__switch_segment(plg_log *L, uint64_t idx) {
    /* Every completed write to the old segment must be on stable storage
     * before the writer moves on: later syncs only cover the new file. */
    if (L->cfg.sync_mode == PLG_SYNC_FDATASYNC && L->fd_cur >= 0 && L->unsynced) {
        int r = plg__sync_now(L);
        plg__add_rlx(&L->st_syncs, 1);
        if (r != 0) return plg__from_errno(-r);
        L->unsynced = 0;
        L->g_synced = L->g_sub;
        plg__set_durable(L, plg__load_rlx(&L->written));
    }
    if (L->synchronous) plg__prealloc_inline(L, idx);
    pthread_mutex_lock(&L->pa_mu);
    L->pa_need = idx;
    pthread_cond_broadcast(&L->pa_cv);                /* a paced zeroing may be urgent now */
    if (idx > L->pa_want) L->pa_want = idx;
    int stalled = 0;
    while (L->pa_ready < idx) {
        /* preallocation failing: wait while it is retried, for a while */
        if (L->pa_err && (plg__load_acq(&L->stop) || plg_now_ns() - L->pa_fail_ns >= PLG__PREALLOC_WAIT_NS)) break;
        stalled = 1;
        plg__cond_wait_until(L, plg_now_ns() + 100000000ull);
    }
    int err = L->pa_ready >= idx ? 0 : L->pa_err;
    if (idx + L->cfg.prealloc_segments > L->pa_want) {
        L->pa_want = idx + L->cfg.prealloc_segments;
        pthread_cond_broadcast(&L->pa_cv);
    }
    pthread_mutex_unlock(&L->pa_mu);
    if (stalled) plg__add_rlx(&L->st_stalls, 1);
    if (err) return err;
    int fd = plg__open_seg_fd(L, idx);
    if (fd < 0) return fd;
    if (L->fd_cur >= 0) close(L->fd_cur);
    L->fd_cur = fd;
    plg__store_rel(&L->cur_seg, idx);
    plg__mark_tick(L, 1);
    return 0;
}

/* >>writer ---------------------------------------------------------------- */
static uint8_t *plg__slot(plg_log *L, uint64_t g) { return L->stage + (size_t)(g % L->S) * PLG_PAGE_SIZE; }

/* Start the next page, if the staging area has a free slot. */
static int plg__next_page(plg_log *L) {
    if (L->g_fill + 1 - L->g_free >= L->S) return 0;
    L->g_fill++;
    L->fill_off = 0; L->partial_off = 0;
    memset(plg__slot(L, L->g_fill), 0, PLG_PAGE_SIZE);
    L->slot_end[L->g_fill % L->S] = L->fill_end_seq;
    return 1;
}

/* The partly filled page is in flight: rather than wait for that write and
 * then rewrite the page, the next record starts the next page, and this
 * page's write in flight is its last (format version 2; the reader skips to
 * the next page when it holds exactly the next record). */
static int plg__leave_page(plg_log *L) {
    uint64_t g = L->g_fill;
    PICOLOG_ASSERT(L->fill_off == L->partial_off);
    PICOLOG_ASSERT(L->g_sub == g);
    if (!plg__next_page(L)) return 0;
    L->g_sub = g + 1;
    for (uint32_t k = 0; k < L->wr_n; k++) {
        plg__wr *w = &L->wr[(L->wr_head + k) % PLG__MAX_INFLIGHT];
        if (w->partial && !w->done && w->g0 + w->npages - 1 == g) w->final = 1;
    }
    plg__add_rlx(&L->st_pages_left, 1);
    return 1;
}

/* The key the page being packed is sealed under (writer thread): the
 * current key from key_from on (every segment there was made or re-headed
 * under it, or will be), else the key its segment's header names (a
 * plg_truncate back into a segment written before a rotation). */
static const plg__crypt *plg__seal_key(plg_log *L) {
    uint64_t seg = L->g_fill / L->D + 1;
    if (!L->keys.n || seg == L->seal_seg) return L->crypt;
    const plg__crypt *k = L->keys.k[0];
    int rc = seg < L->key_from ? plg__log_key(L, seg, &k) : 0;
    if (rc) { plg__poison(L, rc, 0); k = L->keys.k[0]; }   /* checked at open: does not happen */
    L->seal_seg = seg; L->crypt = k;
    return k;
}

/* Seal the fragments packed since the last call (encrypted logs). */
static void plg__seal_pending(plg_log *L) {
#ifdef PICOLOG_ENCRYPT
    if (L->seal_n) plg__seal_batch(L->log_id, L->seal_q, L->seal_n);
#endif
    L->seal_n = 0;
}

/* Drain the ring into staging pages. Returns 1 if it packed anything. */
static int plg__drain(plg_log *L) {
    plg__ring_ctl *c = L->rc;
    uint64_t head = plg__load_acq(&c->head), tail = L->ctail;
    int did = 0;
    while (tail != head) {
        uint64_t pos = tail & L->mask;
        const uint8_t *e = L->rdata + pos;
        uint32_t len = plg__get32(e), kind = plg__get32(e + 4);
        if (kind == PLG__RING_WRAP) { tail += L->cap - pos; continue; }
        PICOLOG_ASSERT(kind == PLG__RING_REC && len > 0);
        if (L->pack_done == 0 && L->tail_busy == L->g_fill + 1 && L->g_fill / L->D + 1 >= L->skip_from &&
            L->cfg.max_inflight > 1 && !plg__leave_page(L))   /* one slot: its page could not go out sooner */
            goto out;
        while (L->pack_done < len) {
            if (PLG_PAGE_SIZE - L->fill_off < plg__min_frag(L->crypt) && !plg__next_page(L)) goto out;
            if (L->short_g == L->g_fill && L->pack_done == 0 && !L->epoch_start && L->fill_off && !L->keys.n &&
                PLG__SHORT_HDR + len <= PLG_PAGE_SIZE - L->fill_off && L->g_fill / L->D + 1 >= L->short_from) {
                /* right after this writer's previous record, in its page, in
                 * a version 5 segment of a plain log: a SHORT fragment */
                L->fill_off += plg__frag_put_short(plg__slot(L, L->g_fill) + L->fill_off, L->log_id, L->epoch,
                                                   L->cseq, e + 8, len);
                L->pack_done = len;
                if (!L->oldest_ns) L->oldest_ns = plg_now_ns();
                did = 1;
                break;
            }
            plg__seal_key(L);
            uint32_t room = plg__frag_fit(L->crypt, PLG_PAGE_SIZE - L->fill_off);
            uint32_t rem = len - L->pack_done, n = rem < room ? rem : room;
            PICOLOG_ASSERT(n > 0);
            int type = L->pack_done == 0 ? (n == len ? PLG__FULL : PLG__FIRST) : (n == rem ? PLG__LAST : PLG__MIDDLE);
            unsigned flags = (L->epoch_start && L->pack_done == 0) ? PLG__F_EPOCH_START : 0;
            /* aux: FULL/FIRST the record's length; encrypted MIDDLE/LAST where it goes in the record */
            uint32_t aux = (type == PLG__FULL || type == PLG__FIRST) ? len : L->crypt ? L->pack_done : 0;
            uint8_t *at = plg__slot(L, L->g_fill) + L->fill_off;
            if (L->crypt) {
                L->fill_off += plg__frag_stage(at, L->crypt, type, flags, L->epoch, aux, L->cseq, e + 8 + L->pack_done,
                                               n, &L->seal_q[L->seal_n]);
                if (++L->seal_n == PLG__SEAL_BATCH) plg__seal_pending(L);
            } else {
                L->fill_off += plg__frag_seal(at, L->log_id, NULL, type, flags, L->epoch, aux, L->cseq,
                                              e + 8 + L->pack_done, n);
            }
            PICOLOG_ASSERT(L->fill_off <= PLG_PAGE_SIZE);
            L->pack_done += n;
            if (!L->oldest_ns) L->oldest_ns = plg_now_ns();
            did = 1;
        }
        PICOLOG_TRACE(PLG_TRACE_DRAINED, L->cseq);
        L->short_g = L->crypt ? UINT64_MAX : L->g_fill;
        L->fill_end_seq = L->cseq;
        L->slot_end[L->g_fill % L->S] = L->cseq;
        L->cseq++;
        L->pack_done = 0;
        L->epoch_start = 0;
        tail += 8 + PLG__ALIGN8((uint64_t)len);
        if (PLG_PAGE_SIZE - L->fill_off < plg__min_frag(L->crypt)) plg__next_page(L);
    }
out:
    plg__seal_pending(L);              /* nothing leaves the staging pages unsealed */
    if (tail != L->ctail) { L->ctail = tail; plg__store_rel(&c->tail, tail); }
    return did;
}

static uint32_t plg__writes_inflight(const plg_log *L) { return L->wr_n - L->sync_inflight; }
/* The device is behind: a full max_write_bytes batch waits to be written. */
static int plg__behind(const plg_log *L) { return L->g_fill - L->g_sub >= L->max_write_pages; }

/* Write slots. In fdatasync mode, with a sync in flight, one write may
 * overlap it; a second would only be synced after that write anyway (one
 * sync at a time), so records batch into it instead of each starting a page
 * of its own. RWF_DSYNC on a device without FUA: each write is followed by
 * a cache flush in the kernel, and flushes in flight only wait for each
 * other, so the writes go one at a time, each taking everything that came
 * meanwhile, until a full batch waits (the device is behind: then every
 * slot). At 10k records/s here the P50 fell from 851 us (a write started
 * per arrival) to about 600, beside 576 for a raw writer fed the same
 * arrivals (docs/performance.md).
 * PLG_DSYNC_UNTIL_BEHIND (AUTO without FUA) does the same while the writer
 * keeps up, each write with RWF_DSYNC (plg__wr_push). Back from behind, once
 * the last plain write completed, the writes not yet synced are synced first
 * (no slot until then), so that the next write can carry RWF_DSYNC: written
 * beside that sync it would be plain and need a sync of its own, and so on
 * (at 1M records/s here nearly every write was followed by an fdatasync that
 * way). While plain writes are in flight (a burst) the slots are FDATASYNC's. */
static uint32_t plg__slots(const plg_log *L) {
    if (L->dsync_low && !plg__behind(L) && !L->wr_plain) return L->unsynced || L->sync_inflight ? 0 : 1;
    if (L->dsync_one && !plg__behind(L)) return 1;
    return L->sync_inflight && L->cfg.sync_mode == PLG_SYNC_FDATASYNC ? 1 : L->cfg.max_inflight;
}

#ifndef PICOLOG_LONE_PAGE_SYNC
#define PICOLOG_LONE_PAGE_SYNC 0
#endif
/* A lone page on an idle device as a synchronous RWF_DSYNC write from the
 * writer thread? The writer is blocked meanwhile, so a record arriving then
 * waits for it. Where the log keeps several writes in flight (a FUA device)
 * the next record starts its own write at once instead, through io_uring.
 * Where it keeps one at a time anyway (a device without FUA, AUTO or DSYNC:
 * dsync_low, dsync_one), that record would wait for the write in flight
 * either way, and the synchronous write has the shorter tail: through
 * io_uring, an RWF_DSYNC write's cache flush is issued by a kernel worker
 * after the data completes, one more wake-up on the way. At 100k records/s
 * the P99 fell from 1,130 to 288 us (P50 126 to 140 us) on this project's
 * 2-CPU VM (docs/performance.md). In an older picolog's segments (no page
 * is left in flight) a lone page always goes this way. */
static int plg__lone_sync(const plg_log *L) {
    return PICOLOG_LONE_PAGE_SYNC || L->cur_seg < L->skip_from || L->dsync_low || L->dsync_one;
}

/* fdatasync mode: is the sync an operation in flight (the caller's plg_io,
 * or io_uring with PLG_SYNC_IN_FLIGHT or while a full write waits for a
 * slot), or a call the writer makes and waits for? Either is decided afresh
 * for each sync: both move durable only to what had been written when the
 * sync began, and only one sync is ever outstanding. */
static int plg__sync_async(const plg_log *L) {
    if (L->io_kind == 2) return 1;
    if (L->io_kind != 0 || (L->cfg.flags & PLG_SYNC_ON_WRITER)) return 0;
    if (L->cfg.flags & PLG_SYNC_IN_FLIGHT) return 1;
    /* a burst: the writer keeps the device busy during the sync (measured
     * faster then, on fresh segments most); idle or paced, it waits */
    return plg__behind(L);
}

/* The writer may write now with a blocking RWF_DSYNC pwritev2 of its own:
 * nothing in flight, nothing unsynced, and a device (or a segment) where a
 * lone write does best that way (plg__lone_sync). */
static int plg__lone_now(const plg_log *L) {
    return L->io_kind == 0 && L->wr_n == 0 && !L->unsynced && plg__lone_sync(L) &&
           L->cfg.sync_mode != PLG_SYNC_NONE_UNSAFE && !(L->cfg.flags & PLG_URING_ONLY);
}

/* A write of pages g0 .. g0 + npages - 1; partial: the last of them is the
 * partly filled page, written from a shadow copy. More than one page with
 * the partly filled one only as a lone write (plg__lone_now; the caller
 * checks): a full page and the records that came after it, in one write. */
static int plg__wr_push(plg_log *L, uint64_t g0, uint32_t npages, uint64_t end_seq, int partial, int is_sync) {
    int lone = !is_sync && plg__lone_now(L) && (npages == 1 || (partial && npages == 2));
    PICOLOG_ASSERT(!partial || npages == 1 || lone);
    uint32_t i = (L->wr_head + L->wr_n) % PLG__MAX_INFLIGHT;
    plg__wr *w = &L->wr[i];
    memset(w, 0, sizeof *w);
    w->g0 = g0; w->npages = npages; w->end_seq = end_seq;
    w->partial = (uint8_t)partial; w->is_sync = (uint8_t)is_sync;
    w->expect = is_sync ? 0 : npages * PLG_PAGE_SIZE;
    if (partial) {
        /* round robin: the partial write max_inflight ago has been retired,
         * or writes_inflight would be at max_inflight */
        w->buf = L->shadow + (size_t)(L->shadow_next++ % L->cfg.max_inflight) * PLG_PAGE_SIZE;
        memcpy(w->buf, plg__slot(L, g0 + npages - 1), PLG_PAGE_SIZE);
    }
    L->wr_n++;
    const void *buf = partial && npages == 1 ? w->buf : plg__slot(L, g0);
    int r;
    PICOLOG_TRACE(is_sync ? PLG_TRACE_SYNC_BEGIN : PLG_TRACE_WRITE_SUBMIT, end_seq);
    /* PLG_DSYNC_UNTIL_BEHIND: while the writer keeps up, a write alone in
     * flight with every earlier write synced carries RWF_DSYNC, and is
     * durable when it completes: one round trip instead of a write, then an
     * fdatasync. Once a full batch waits, plain writes and one fdatasync for
     * several (group commit) move more records per second. */
    int dsync = !is_sync && L->cfg.sync_mode == PLG_SYNC_DSYNC;
    if (!is_sync && L->dsync_low && L->wr_n == 1 && !L->unsynced && !plg__behind(L)) { w->dsynced = 1; dsync = 1; }
    if (lone) {
        /* The device is idle and this is one page (or a full one and the
         * next): a synchronous RWF_DSYNC write from this thread is the
         * lowest latency there is (no kernel worker to wait for). Under
         * load the writes go through io_uring. */
        w->dsynced = 1; dsync = 1;
        L->sq[L->sq_n].tag = i;
        L->sq[L->sq_n].res = npages == 1 ? plg__pwrite_dsync(L->fd_cur, buf, w->expect, plg__page_off(L->D, g0), 1)
                                         : plg__pwrite2_dsync(L->fd_cur, buf, PLG_PAGE_SIZE, w->buf, PLG_PAGE_SIZE,
                                                              plg__page_off(L->D, g0), 1);
        L->sq_n++;
        plg__add_rlx(&L->st_writes_blocking, 1);
        if (npages == 2) plg__add_rlx(&L->st_writes_paired, 1);
        r = 0;
    } else {
        r = is_sync ? plg__io_fsync(L, L->fd_cur, i)
                    : plg__io_write(L, L->fd_cur, buf, w->expect, plg__page_off(L->D, g0), dsync, i);
    }
    if (!is_sync && !dsync) { w->plain = 1; L->wr_plain++; }   /* dsync is final here */
    if (r < 0) { w->done = 1; w->failed = 1; plg__poison(L, plg__from_errno(-r), -r); return r; }
    if (is_sync) { L->sync_inflight = 1; plg__add_rlx(&L->st_syncs, 1); plg__add_rlx(&L->st_syncs_async, 1); }
    else {
        plg__add_rlx(&L->st_writes, 1); plg__add_rlx(&L->st_pages, npages);
        if (dsync) plg__add_rlx(&L->st_writes_dsync, 1);
        plg__add_rlx(&L->st_bytes, (uint64_t)npages * PLG_PAGE_SIZE);
        if (npages > L->st_maxw) plg__store_rlx(&L->st_maxw, (uint64_t)npages);
    }
    return 0;
}


/* Completions may arrive in any order; positions move only over the
 * contiguous prefix of finished operations, in submission order. */
static int plg__reap(plg_log *L, uint64_t timeout_ns) {
    plg_io_cqe cq[PLG__MAX_INFLIGHT];
    if (!L->wr_n) return 0;
    int n = plg__io_reap(L, cq, PLG__MAX_INFLIGHT, timeout_ns);
    if (n < 0) { plg__poison(L, PLG_EIO, -n); return 0; }
    for (int i = 0; i < n; i++) {
        uint32_t k = (uint32_t)cq[i].tag;
        if (k >= PLG__MAX_INFLIGHT) { plg__poison(L, PLG_EIO, EINVAL); continue; }
        plg__wr *w = &L->wr[k];
        PICOLOG_TRACE(w->is_sync ? PLG_TRACE_SYNC_END : PLG_TRACE_WRITE_DONE, w->end_seq);
        w->done = 1;
        if (w->is_sync) L->sync_inflight = 0;
        if (w->partial && L->tail_busy == w->g0 + w->npages) L->tail_busy = 0;
        if (cq[i].res < 0) { w->failed = 1; plg__poison(L, plg__from_errno(-cq[i].res), -cq[i].res); }
        else if ((uint32_t)cq[i].res != w->expect) { w->failed = 1; plg__poison(L, PLG_ESHORT, 0); }
    }
    while (L->wr_n && L->wr[L->wr_head].done) {
        plg__wr *w = &L->wr[L->wr_head];
        if (w->plain) {
            PICOLOG_ASSERT(L->wr_plain > 0);
            L->wr_plain--;
        }
        if (w->failed) L->broken = 1;          /* nothing after a failure ever counts */
        if (L->broken) {}
        else if (w->is_sync) { plg__set_durable(L, w->end_seq); L->g_synced = w->g0; }
        else {
            if (L->tail && w->npages) plg__tail_put(L, w->g0, w->npages, w->partial ? (const uint8_t *)w->buf : NULL);
            if (w->end_seq > plg__load_rlx(&L->written)) plg__store_rel(&L->written, w->end_seq);
            uint64_t g_end = w->g0 + w->npages - (w->partial && !w->final ? 1u : 0u);   /* pages done with */
            if (g_end > L->g_free) L->g_free = g_end;
            if (w->dsynced && !L->unsynced) { plg__set_durable(L, w->end_seq); L->g_synced = L->g_free; }
            else if (L->cfg.sync_mode != PLG_SYNC_FDATASYNC) plg__set_durable(L, w->end_seq);
            else L->unsynced = 1;
        }
        L->wr_head = (L->wr_head + 1) % PLG__MAX_INFLIGHT;
        L->wr_n--;
    }
    return n > 0;
}

/* Decide what to write: everything at once when the device is idle; while
 * writes are in flight, only full batches of max_write_bytes, until the
 * oldest waiting record is flush_interval old. A partly filled page goes out
 * from a shadow copy and is never in flight twice, so two writes of the same
 * page can never reorder. */
static int plg__submit(plg_log *L, int stopping) {
    int did = 0;
    uint64_t now = 0;
    uint32_t slots = plg__slots(L);
    while (!plg__load_rlx(&L->error) && plg__writes_inflight(L) < slots) {
        uint64_t n_full = L->g_fill - L->g_sub;
        int partial = L->fill_off > L->partial_off;
        if (!n_full && !partial) break;
        uint64_t seg = L->g_sub / L->D + 1;
        if (seg != L->cur_seg) {
            /* the old segment's sync, if one is due, goes through the ring
             * too (below); the switch comes once it is done */
            if (L->wr_n || (L->unsynced && plg__sync_async(L))) break;
            int e0 = errno, rc = plg__switch_segment(L, seg);
            if (rc) { int e = plg__load_rlx(&L->pa_errno); plg__poison(L, rc, e ? e : (errno ? errno : e0)); break; }
        }
        /* in a version 2 segment a free slot is reason enough: a record
         * never waits for another write; batches grow only while every
         * slot is busy, i.e. when the device is the bottleneck */
        int idle = plg__writes_inflight(L) == 0, due = stopping || idle || (seg >= L->skip_from && L->cfg.max_inflight > 1);
        if (!due) {
            if (!now) now = plg_now_ns();
            due = L->oldest_ns && now - L->oldest_ns >= L->cfg.flush_interval_ns;
        }
        if (n_full) {
            uint64_t n = n_full;
            if (n >= L->max_write_pages) {            /* the device is behind: paces zeroing ahead */
                if (!now) now = plg_now_ns();
                plg__store_rlx(&L->busy_ns, now);
            }
            if (n > L->max_write_pages) n = L->max_write_pages;
            uint64_t to_seg_end = seg * L->D - L->g_sub, to_wrap = L->S - L->g_sub % L->S;
            if (n > to_seg_end) n = to_seg_end;
            if (n > to_wrap) n = to_wrap;
            if (L->tail_busy > L->g_sub && L->tail_busy - 1 - L->g_sub < n) n = L->tail_busy - 1 - L->g_sub;
            if (!n) break;                     /* the next page is a partial write still in flight */
            if (!due && n < L->max_write_pages) break;
            if (n == 1 && n_full == 1 && partial && L->partial_off == 0 && !L->tail_busy && to_seg_end > 1 &&
                to_wrap > 1 && plg__lone_now(L) &&
                (L->cfg.sync_mode != PLG_SYNC_FDATASYNC || (L->g_fill + 1 - L->g_synced) * PLG_PAGE_SIZE <= L->window)) {
                /* The page just filled and the records after it: one lone
                 * write of both, not two in a row (the later records would
                 * wait for the first). */
                if (plg__wr_push(L, L->g_sub, 2, L->fill_end_seq, 1, 0)) break;
                L->g_sub = L->g_fill;
                L->tail_busy = L->g_fill + 1;
                L->partial_off = L->fill_off;
                did = 1;
                break;
            }
            if (L->cfg.sync_mode == PLG_SYNC_FDATASYNC) {
                /* Completed but unsynced writes are in flight too, as far as a
                 * power cut is concerned: never more than the recovery window. */
                uint64_t room = L->window / PLG_PAGE_SIZE - 1, used = L->g_sub - L->g_synced;
                if (used >= room) break;
                if (n > room - used) n = room - used;
            }
            uint64_t last = L->g_sub + n - 1;
            if (plg__wr_push(L, L->g_sub, (uint32_t)n, L->slot_end[last % L->S], 0, 0)) break;
            L->g_sub += n;
            did = 1;
            continue;
        }
        if (!due || L->tail_busy == L->g_fill + 1) break;
        if (L->cfg.sync_mode == PLG_SYNC_FDATASYNC && (L->g_fill + 1 - L->g_synced) * PLG_PAGE_SIZE > L->window) break;
        if (plg__wr_push(L, L->g_fill, 1, L->fill_end_seq, 1, 0)) break;
        L->tail_busy = L->g_fill + 1;
        L->partial_off = L->fill_off;
        did = 1;
        break;
    }
    if (L->g_sub == L->g_fill && L->fill_off == L->partial_off) L->oldest_ns = 0;
    /* fdatasync mode: one sync covers every write completed before it was
     * submitted (`written`, moved only over retired writes), never one still
     * in flight: durable moves to that target when the sync retires, in
     * submission order. It goes out as soon as a completed write is not
     * covered, while other writes may be in flight, and the writer goes on
     * packing and writing meanwhile (plg_io, PLG_SYNC_IN_FLIGHT, or a burst:
     * plg__sync_async). Otherwise the writer thread calls it itself: an
     * io_uring fsync runs on an io-wq worker, which waits for a CPU and then
     * for the writer to reap it (measured slower at low load). */
    uint64_t target = plg__load_rlx(&L->written);
    if (L->cfg.sync_mode == PLG_SYNC_FDATASYNC && !L->sync_inflight && !plg__load_rlx(&L->error) && L->unsynced) {
        if (plg__sync_async(L)) {
            if (L->wr_n < PLG__MAX_INFLIGHT && plg__wr_push(L, L->g_free, 0, target, 0, 1) == 0) {
                L->unsynced = 0;
                did = 1;
            }
        } else {
            uint64_t g_done = L->g_free;
            int r = 0;
            L->unsynced = 0;
            PICOLOG_TRACE(PLG_TRACE_SYNC_BEGIN, target);
            while ((r = fdatasync(L->fd_cur)) != 0 && errno == EINTR) {}
            PICOLOG_TRACE(PLG_TRACE_SYNC_END, target);
            plg__add_rlx(&L->st_syncs, 1);
            if (r != 0) plg__poison(L, plg__from_errno(errno), errno);
            else { plg__set_durable(L, target); L->g_synced = g_done; }
            did = 1;
        }
    }
    return did;
}

/* The writer's wait for a completion when only one can let it go on: the
 * staging is full with records waiting in the ring, or the flush deadline
 * has passed with every write slot taken. A completion ends it at once. */
#define PLG__BLOCKED_WAIT_NS 1000000ull
/* With every write slot taken (and nothing else to do), the writer waits for
 * a completion in slices of this much. Not 1 ms: on this project's 2-CPU VM
 * (no guest cpuidle driver: an idle CPU halts) the completion came later
 * after long sleeps, probably as the host stops polling for a vCPU that
 * halts for long (not verified from inside the guest). There one DSYNC
 * write at a time took a P50 of 897 us at 10k records/s with 1 ms slices
 * and 616 us with 100 us ones, beside 655 for a raw writer. Not the 10 us
 * poll either: that took half a core from the kernel's completion work. */
#define PLG__SLOT_WAIT_NS 100000ull
static int plg__ring_empty(plg_log *L) { return plg__load_acq(&L->rc->head) == L->ctail; }

static void *plg__writer_main(void *arg) {
    plg_log *L = (plg_log *)arg;
    prctl(PR_SET_NAME, "plg-writer", 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    if (L->cfg.flags & PLG_PIN_WRITER) {
        uint64_t mask[PLG__MAX_CPUS / 64];
        memset(mask, 0, sizeof mask);
        mask[L->cfg.writer_cpu / 64] |= 1ull << (L->cfg.writer_cpu % 64);
        if (syscall(SYS_sched_setaffinity, 0, sizeof mask, mask) != 0)   /* this thread */
            plg__msg(L, 0, "%s: could not pin the writer to CPU %d", L->path, L->cfg.writer_cpu);
    }
    uint64_t spin_until = 0;           /* 0: not idle yet */
    for (;;) {
        int progress = plg__reap(L, 0);
        if (plg__load_rlx(&L->error)) break;
        int drained = plg__drain(L);
        progress |= drained;
        int stopping = plg__load_acq(&L->stop);
        progress |= plg__submit(L, stopping);
        if (plg__load_rlx(&L->error)) break;
        if (L->wr_n == 0 && plg__ring_empty(L)) plg__mark_tick(L, 0);   /* idle: delays no write */
        if (plg__load_acq(&L->op_req) && plg__ring_empty(L) && L->pack_done == 0 && L->wr_n == 0 &&
            L->g_sub == L->g_fill && L->fill_off == L->partial_off &&
            plg__load_rlx(&L->durable) == plg__load_rlx(&L->written)) {
            plg__op_run(L);
            continue;
        }
        if (stopping && plg__ring_empty(L) && L->pack_done == 0 && L->wr_n == 0 &&
            L->g_sub == L->g_fill && L->fill_off == L->partial_off &&
            plg__load_rlx(&L->durable) == plg__load_rlx(&L->written))
            break;
        if (progress) { spin_until = 0; continue; }
        if (L->cfg.idle_spin_ns && !stopping) {
            /* idle: poll a while before sleeping (the completions of
             * io_uring writes arrive here too, as task work) */
            uint64_t now = plg_now_ns();
            if (!spin_until) spin_until = now + L->cfg.idle_spin_ns;
            if (now < spin_until) { plg__cpu_relax(); continue; }
        }
        if (L->wr_n) {
            uint64_t wait = L->cfg.poll_interval_ns;
            if (!drained && !plg__ring_empty(L)) {
                /* records wait in the ring and none could be packed: the
                 * staging pages are full, and only a completion frees them
                 * (a burst). Waking at the poll interval only burnt the CPU
                 * the kernel and the producer need (tens of thousands of
                 * timeouts a second); the completion wakes the writer. */
                wait = PLG__BLOCKED_WAIT_NS;
            } else if (wait > 1 && plg__writes_inflight(L) >= plg__slots(L)) {
                /* every write slot is taken: a record that comes now cannot
                 * go out before a completion anyway, and is packed then.
                 * Polling the ring meanwhile only took CPU from the producer
                 * and from the kernel's completion work: at 10k records/s
                 * with one DSYNC write in flight, the writer used half a
                 * core, and slower acknowledgements (docs/performance.md) */
                wait = PLG__SLOT_WAIT_NS;
            } else if (L->oldest_ns) {
                uint64_t now = plg_now_ns(), dl = L->oldest_ns + L->cfg.flush_interval_ns;
                if (dl > now && dl - now < wait) wait = dl - now;
                /* past the deadline, and still nothing went out: every slot
                 * (or the window) is taken, so again only a completion
                 * helps; records that come meanwhile are packed then */
                if (dl <= now) wait = PLG__BLOCKED_WAIT_NS;
            }
            plg__reap(L, wait ? wait : 1000);
        } else if (L->cfg.poll_interval_ns > 1 && !__atomic_load_n(&L->kicked, __ATOMIC_ACQUIRE)) {
            plg__sleep_ns(L->cfg.poll_interval_ns);
        } else if (L->cfg.poll_interval_ns > 1) {
            /* idle, and the producer kicks (plg_kick was called): sleep on
             * the kick word. Both sides swap the word (a full barrier):
             * either the kicker sees idle set and wakes us, or we see its
             * records in the ring. */
            (void)__atomic_exchange_n(&L->idle, 1u, __ATOMIC_SEQ_CST);
            if (plg__ring_empty(L) && !plg__load_acq(&L->stop) && !plg__load_acq(&L->op_req)) {
                struct timespec ts = {(time_t)(L->cfg.poll_interval_ns / 1000000000ull), (long)(L->cfg.poll_interval_ns % 1000000000ull)};
                syscall(SYS_futex, &L->idle, FUTEX_WAIT_PRIVATE, 1u, &ts, NULL, 0);
            }
            __atomic_store_n(&L->idle, 0u, __ATOMIC_SEQ_CST);
        } else {
            plg__cpu_relax();
        }
    }
    /* Poisoned or done: let every write in flight finish before the buffers go. */
    for (int i = 0; i < 100000 && L->wr_n; i++) plg__reap(L, 10000000);
    plg__wake_waiters(L);
    return NULL;
}

/* >>api ------------------------------------------------------------------- */
PLGDEF plg_config plg_config_defaults(const plg_config *in) {
    plg_config c;
    memset(&c, 0, sizeof c);
    if (in) c = *in;
    if (!c.ring_capacity) c.ring_capacity = (size_t)8 << 20;
    if (!c.flush_interval_ns) c.flush_interval_ns = 1000000;
    if (!c.poll_interval_ns) c.poll_interval_ns = 10000;
    if (!c.segment_size) c.segment_size = (uint64_t)64 << 20;
    if (!c.max_write_bytes) c.max_write_bytes = 1u << 20;
    if (!c.max_inflight) c.max_inflight = 4;
    if (!c.first_seq) c.first_seq = 1;
    if (!c.prealloc_segments) c.prealloc_segments = 1;
    return c;
}

static int plg__validate(const plg_config *c) {
    if (!c->path || !*c->path) return PLG_EINVAL;
    if (c->ring_capacity < 4096 || c->ring_capacity > ((size_t)1 << 31) ||
        (c->ring_capacity & (c->ring_capacity - 1)))
        return PLG_EINVAL;
    if (c->segment_size % PLG_PAGE_SIZE || c->segment_size < 16 * PLG_PAGE_SIZE || c->segment_size > PLG__MAX_SEGMENT)
        return PLG_EINVAL;
    if (c->max_write_bytes % PLG_PAGE_SIZE || c->max_write_bytes > (64u << 20)) return PLG_EINVAL;
    if (c->max_inflight > PLG__MAX_INFLIGHT - 2) return PLG_EINVAL;
    if (c->prealloc_segments > PLG_MAX_PREALLOC) return PLG_EINVAL;
    if (c->sync_mode < PLG_SYNC_AUTO || c->sync_mode > PLG_SYNC_NONE_UNSAFE) return PLG_EINVAL;
    if (c->io_mode < PLG_IO_DIRECT || c->io_mode > PLG_IO_BUFFERED_FDATASYNC) return PLG_EINVAL;
    if (c->io && (!c->io->submit_write || !c->io->submit_fsync || !c->io->reap)) return PLG_EINVAL;
    if ((c->flags & PLG_PIN_WRITER) && (c->writer_cpu < 0 || c->writer_cpu >= PLG__MAX_CPUS)) return PLG_EINVAL;
    if (c->n_old_keys && (!c->old_keys || !c->encrypt_key || c->n_old_keys > PLG_MAX_KEYS - 1)) return PLG_EINVAL;
    for (size_t i = 0; i < c->n_old_keys; i++) if (!c->old_keys[i]) return PLG_EINVAL;
#ifndef PICOLOG_ENCRYPT
    if (c->encrypt_key) return PLG_ENOCRYPT;   /* never write plaintext when a key was asked for */
#endif
    return 0;
}

/* The keys of a config: the current one first, then the old ones. */
static size_t plg__cfg_keys(const plg_config *c, const uint8_t **out) {
    size_t n = 0;
    if (c->encrypt_key) out[n++] = c->encrypt_key;
    for (size_t i = 0; c->encrypt_key && i < c->n_old_keys && n < PLG_MAX_KEYS; i++) out[n++] = c->old_keys[i];
    return n;
}


static void plg__free(plg_log *L) {
    if (!L) return;
#ifndef PICOLOG_NO_URING
    if (L->uring_ok) io_uring_queue_exit(&L->uring);
#endif
    if (L->fd_cur >= 0) close(L->fd_cur);
    if (L->meta_fd >= 0) close(L->meta_fd);
    if (L->notify_fd >= 0) close(L->notify_fd);
    if (L->live) {
        __atomic_store_n(&L->live->open, 0u, __ATOMIC_RELEASE);
        plg__live_wake(L->live);
        munmap(L->live, PLG_PAGE_SIZE);
    }
    if (L->tail) munmap(L->tail, PLG__TAIL_LEN);
    if (L->live_fd >= 0) close(L->live_fd);        /* drops the live lock */
    if (L->dirfd >= 0) close(L->dirfd);            /* drops the flock */
    if (L->adirfd >= 0) close(L->adirfd);
    PICOLOG_FREE(L->adir);
    plg__buf_put(L, L->map, L->map_len);
    plg__buf_put(L, L->stage, L->stage_len);
    PICOLOG_FREE(L->slot_end);
    PICOLOG_FREE(L->path);
    PICOLOG_FREE(L->quarantine);
#ifdef PICOLOG_ENCRYPT
    plg__keys_free(&L->keys);
#endif
    pthread_mutex_destroy(&L->pa_mu);
    pthread_cond_destroy(&L->pa_cv);
    pthread_mutex_destroy(&L->op_mu);
    pthread_cond_destroy(&L->op_cv);
    PICOLOG_FREE(L);
}

/* Find where the log ends. Scans from a few segments before the last one
 * that holds data (enough to cover the in-flight window), or from the start. */
static int plg__recover(plg_log *L, uint64_t *end_g, uint32_t *end_off, uint64_t *last_seq, uint32_t *last_epoch,
                        uint64_t *stop_g) {
    plg__scan s;
    const uint8_t *keys[PLG_MAX_KEYS];
    size_t nkeys = plg__cfg_keys(&L->cfg, keys);
    int rc = plg__scan_open(&s, L->path, NULL, 1, keys, nkeys, NULL);
    if (s.settle_ns >= 10000000ull)
        plg__msg(L, 0, "%s: waited %.1f ms for the writes of a writer that is gone to land", L->path, (double)s.settle_ns / 1e6);
    if (rc) {
        if (rc == PLG_ELOCKED)
            plg__msg(L, rc, "%s: cannot recover: %s", L->path, s.detail);
        else if (rc != PLG_ENOENT && s.where_file[0])
            plg__msg(L, rc, "%s: cannot recover: %s at %s offset %llu: %s. Not opened (fail closed); inspect with plg_dump.",
                     L->path, plg_strerror(rc), s.where_file, (unsigned long long)plg__scan_where_off(&s), s.detail);
        else if (rc != PLG_ENOENT)
            plg__msg(L, rc, "%s: cannot recover: %s (%s)", L->path, plg_strerror(rc), s.detail);
        plg__scan_close(&s);
        return rc;
    }
    L->log_id = s.log_id; L->seg_size = s.seg_size; L->window = s.window; L->D = s.D;
    L->skip_from = s.v1_last + 1;                  /* an older picolog's segments: no page left in flight */
    L->short_from = s.v2_last + 1;                 /* ... nor a SHORT fragment */
#ifdef PICOLOG_ENCRYPT
    if (s.crypt && plg__keys_make(&L->keys, NULL, 0, 0, &s.keys)) { plg__scan_close(&s); return PLG_ENOMEM; }
#endif
    L->first_key_id = s.meta.key_id;
    plg__frag f;
    uint64_t k = s.seg_last;
    while (k > s.seg_first && !plg__scan_first_frag(&s, (k - 1) * s.D, &f)) k--;
    uint64_t back = 2 + s.window / (s.D * PLG_PAGE_SIZE);
    uint64_t start = k > s.seg_first + back ? k - back : s.seg_first;
    while (start > s.seg_first &&
           !(plg__scan_first_frag(&s, (start - 1) * s.D, &f) && (f.type == PLG__FULL || f.type == PLG__FIRST)))
        start--;
    for (int pass = 0; pass < 2; pass++) {
        if (start != s.seg_first) plg__scan_restart(&s, (start - 1) * s.D);
        plg_record rec;
        while ((rc = plg__scan_next(&s, &rec)) == 1) {}
        if (rc == 0 && s.records == 0 && start != s.seg_first) {   /* one record spans it all */
            uint64_t sf = s.seg_first;
            plg__scan_restart(&s, (sf - 1) * s.D);
            plg__scan_begin(&s); s.ra = 0;
            start = sf;
            continue;
        }
        break;
    }
    if (rc < 0) {
        plg__msg(L, rc, "%s: %s at %s offset %llu: %s. Not opened (fail closed); inspect with plg_dump.",
                 L->path, plg_strerror(rc), s.where_file, (unsigned long long)plg__scan_where_off(&s), s.detail);
        plg__scan_close(&s);
        return rc;
    }
    if (s.torn)
        plg__msg(L, 0, "%s: torn tail discarded at %s offset %llu (after seq %llu)", L->path, s.where_file,
                 (unsigned long long)plg__scan_where_off(&s), (unsigned long long)s.last_seq);
    *end_g = s.end_g; *end_off = s.end_off; *last_seq = s.last_seq; *last_epoch = s.last_epoch;
    *stop_g = s.g > s.end_g ? s.g : s.end_g;       /* a torn record's fragments reach up to here */
    L->pa_ready = s.seg_last;
    L->seg_first = s.seg_first;
    if (s.has_meta) L->meta = s.meta;
    else {                                       /* a log older than the meta file */
        memset(&L->meta, 0, sizeof L->meta);
        L->meta.log_id = s.log_id; L->meta.base_seg = 1; L->meta.base_seq = 1;
    }
    uint64_t *segs = NULL; size_t n = 0;               /* segments before a plg_reset: dead */
    if (plg__list_segments(L->path, 0, &segs, &n) == 0) {
        int gone = 0;
        for (size_t i = 0; i < n && segs[i] < L->meta.base_seg; i++) {
            char name[4096];
            plg__seg_name(name, sizeof name, L->path, segs[i]);
            gone |= unlink(name) == 0;
        }
        if (gone) plg__fsync_fd(L->dirfd);
        PICOLOG_FREE(segs);
    }
    plg__scan_close(&s);
    return 0;
}

/* Load the valid prefix of the tail page into staging, and erase what
 * recovery discarded (a torn record's fragments reach stop_g) plus the
 * in-flight window after it, durably, before anything new is written. The
 * erase runs from the far end back to the valid end, one synced chunk of at
 * most window + 1 pages at a time: a crash during it leaves a shorter torn
 * tail, never zeros followed by valid-looking fragments more than a window
 * further on (which the next recovery would call corruption). */
static int plg__prepare_tail(plg_log *L, uint64_t g, uint32_t off, uint64_t stop_g) {
    uint8_t *slot = plg__slot(L, g);
    memset(slot, 0, PLG_PAGE_SIZE);
    uint64_t reach = L->window / PLG_PAGE_SIZE + 1, chunk = reach < 256 ? reach : 256;   /* <= 1 MiB buffer */
    pthread_mutex_lock(&L->pa_mu);                  /* plg_truncate: the preallocator runs */
    uint64_t end = (stop_g > g ? stop_g : g) + reach, limit = L->pa_ready * L->D;
    pthread_mutex_unlock(&L->pa_mu);
    if (end > limit) end = limit;
    uint8_t *buf = (uint8_t *)PICOLOG_MALLOC((size_t)chunk * PLG_PAGE_SIZE);
    if (!buf) return PLG_ENOMEM;
    int rc = 0;
    if (end <= g && off) {                          /* the tail page itself only */
        char name[4096]; size_t got = 0;
        plg__seg_name(name, sizeof name, L->path, g / L->D + 1);
        int fd = open(name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) rc = plg__from_errno(errno);
        else { rc = plg__read_full(fd, slot, off, plg__page_off(L->D, g), &got); close(fd); }
    }
    for (uint64_t hi = end; hi > g && !rc; ) {
        uint64_t seg = (hi - 1) / L->D + 1, lo = hi - g < chunk ? g : hi - chunk;
        if (lo < (seg - 1) * L->D) lo = (seg - 1) * L->D;          /* one segment at a time */
        char name[4096];
        plg__seg_name(name, sizeof name, L->path, seg);
        int fd = open(name, O_RDWR | O_CLOEXEC);
        if (fd < 0) { rc = plg__from_errno(errno); break; }
        size_t got = 0, len = (size_t)(hi - lo) * PLG_PAGE_SIZE;
        rc = plg__read_full(fd, buf, len, plg__page_off(L->D, lo), &got);
        if (!rc) memset(buf + got, 0, len - got);   /* past the file's end reads as zeros, as the scan read it */
        if (!rc && lo == g) memcpy(slot, buf, off);
        size_t from = lo == g ? off : 0;
        int dirty = !rc && got > from && !plg__all_zero(buf + from, got - from);
        if (!rc && dirty) {
            memset(buf, 0, len);
            if (lo == g) memcpy(buf, slot, off);
            rc = plg__write_all(fd, buf, len, plg__page_off(L->D, lo));
            if (!rc && fdatasync(fd) != 0) rc = plg__from_errno(errno);
        }
        close(fd);
        hi = lo;
    }
    PICOLOG_FREE(buf);
    return rc;
}

/* Key rotation at open (docs/encryption.md): every segment after the one
 * the writer goes on in holds no record yet (made ahead, or left behind by
 * a truncate), so each whose header names another key than the current one
 * gets a new header under the current key: the new key seals from the next
 * segment on, or at once when the writer starts a segment afresh. Nothing
 * written is ever re-sealed. Then the writer takes the key of its segment.
 * A crash in between leaves empty segments under either key, both given. */
static int plg__rotate_keys(plg_log *L, uint64_t end_g, uint32_t end_off) {
    if (!L->keys.n) return 0;
    uint64_t cur = end_g / L->D + 1, from = (end_g % L->D == 0 && end_off == 0) ? cur : cur + 1;
    uint64_t want = plg__crypt_key_id(L->keys.k[0]);
    uint8_t *page = (uint8_t *)plg__map(PLG_PAGE_SIZE);
    if (!page) return PLG_ENOMEM;
    int rc = 0;
    for (uint64_t idx = from; idx <= L->pa_ready && !rc; idx++) {
        plg__seghdr h;
        if ((rc = plg__read_seghdr(L->path, idx, &h)) != 0) break;
        if (h.version == PLG__VERSION_KEYS && h.key_id == want) continue;
        plg__seghdr_keyed(L, &h);
        plg__seghdr_encode(page, &h);
        char name[4096];
        plg__seg_name(name, sizeof name, L->path, idx);
        int fd = open(name, O_WRONLY | O_CLOEXEC | (L->cfg.io_mode == PLG_IO_DIRECT ? O_DIRECT : 0));
        if (fd < 0) { rc = plg__from_errno(errno); break; }
        rc = plg__write_all(fd, page, PLG_PAGE_SIZE, 0);
        if (!rc && fdatasync(fd) != 0) rc = plg__from_errno(errno);
        close(fd);
    }
    munmap(page, PLG_PAGE_SIZE);
    L->key_from = from;
    if (!rc) rc = plg__log_key(L, cur, &L->crypt);
    L->seal_seg = cur;
    if (rc) plg__msg(L, rc, "%s: cannot seal new segments under the current key: %s", L->path, plg_strerror(rc));
    return rc;
}

/* Before recovery erases what it discarded after the valid end (page g from
 * offset off up to `end`), copy every page there that may hold an
 * acknowledged record to a quarantine file next to the segments, durably.
 * Skipped: zeros, and pages whose first fragment is an older record of this
 * log (seq <= last_seq: stale bytes of a reused segment). Each entry: 32-byte
 * header "PLGQUAR1", u64 segment index, u64 file offset, u32 length, u32
 * crc32c of the bytes; then the bytes. */
static int plg__quarantine(plg_log *L, uint64_t g, uint32_t off, uint64_t end, uint64_t last_seq, uint32_t last_epoch) {
    char name[4200]; int fd = -1, rc = 0, cur = -1; uint64_t cur_seg = 0;
    uint8_t page[PLG_PAGE_SIZE], hdr[32];
    const plg__crypt *sk = NULL;                    /* the key of segment cur_seg */
    for (uint64_t q = g; q < end && !rc; q++) {
        uint64_t seg = q / L->D + 1;
        if (seg != cur_seg) {
            if (cur >= 0) close(cur);
            plg__seg_name(name, sizeof name, L->path, seg);
            cur = open(name, O_RDONLY | O_CLOEXEC); cur_seg = seg;
            if (cur < 0) break;
            if (plg__log_key(L, seg, &sk) != 0) sk = L->keys.k[0];   /* no key: its records count as damaged */
        }
        size_t got = 0;
        if ((rc = plg__read_full(cur, page, sizeof page, plg__page_off(L->D, q), &got)) != 0) break;
        memset(page + got, 0, sizeof page - got);
        uint32_t from = q == g ? off : 0, nz = !plg__all_zero(page + from, PLG_PAGE_SIZE - from);
        plg__frag f;
        if (!nz || (from == 0 && plg__frag_read(page, PLG_PAGE_SIZE, L->log_id, sk, NULL, &f) && f.seq <= last_seq)) continue;
        /* the valid log's last record right before the first one here */
        plg__fpos pos = {q == g && from != 0, last_epoch, last_seq};
        for (uint32_t o = from; o + plg__min_frag(sk) <= PLG_PAGE_SIZE; ) {   /* records in it, damaged ones too */
            int ok = plg__frag_read(page + o, PLG_PAGE_SIZE - o, L->log_id, sk, &pos, &f);
            if (ok && (f.type == PLG__FULL || f.type == PLG__FIRST) && f.seq > last_seq) L->discarded_records++;
            else if (!ok && q == g && o == from) L->discarded_records++;      /* the torn one at the end */
            uint32_t n = plg__get16(page + o + 4), t = page[o + 6];
            if (ok) {
                pos.prev = 1; pos.prev_seq = f.seq; pos.prev_epoch = f.epoch;
                o += f.step;
            } else if (!sk && n && t == PLG__SHORT && PLG__SHORT_HDR + n <= PLG_PAGE_SIZE - o) {
                /* a damaged SHORT record: the ones right after it imply
                 * their seq from it, so step over it as its header says */
                pos.prev_seq++;
                o += (PLG__SHORT_HDR + n + 3u) & ~3u;
            } else if (!sk && n && t == PLG__FULL && PLG__FRAG_HDR + n <= PLG_PAGE_SIZE - o) {
                pos.prev = 1; pos.prev_seq = plg__get64(page + o + 16); pos.prev_epoch = plg__get32(page + o + 8);
                o += (uint32_t)PLG__ALIGN8(PLG__FRAG_HDR + n);
            } else {
                pos.prev = 0;                  /* a SHORT one cannot verify until a long one is found */
                o += 4u;
            }
        }
        if (fd < 0) {
            for (int k = 0; k < 1000 && fd < 0; k++) {
                snprintf(name, sizeof name, "%s/quarantine-%020llu-%llu-%d.plgq", L->path, (unsigned long long)seg,
                         (unsigned long long)(plg__page_off(L->D, q) + from), k);
                fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd < 0 && errno != EEXIST) { rc = plg__from_errno(errno); break; }
            }
            if (fd < 0) { if (!rc) rc = PLG_ESYS; break; }
            size_t nl = strlen(name) + 1;
            L->quarantine = (char *)PICOLOG_MALLOC(nl);
            if (!L->quarantine) { rc = PLG_ENOMEM; break; }
            memcpy(L->quarantine, name, nl);
        }
        memset(hdr, 0, sizeof hdr);
        memcpy(hdr, "PLGQUAR1", 8);
        plg__put64(hdr + 8, seg);
        plg__put64(hdr + 16, plg__page_off(L->D, q) + from);
        plg__put32(hdr + 24, PLG_PAGE_SIZE - from);
        plg__put32(hdr + 28, plg_crc32c(0, page + from, PLG_PAGE_SIZE - from));
        struct stat st;
        rc = fstat(fd, &st) == 0 ? 0 : plg__from_errno(errno);
        if (!rc) rc = plg__write_all(fd, hdr, sizeof hdr, (uint64_t)st.st_size);
        if (!rc) rc = plg__write_all(fd, page + from, PLG_PAGE_SIZE - from, (uint64_t)st.st_size + sizeof hdr);
        if (!rc) L->discarded_bytes += PLG_PAGE_SIZE - from;
    }
    if (cur >= 0) close(cur);
    if (fd >= 0) {
        if (!rc) rc = plg__fsync_fd(fd);
        close(fd);
        if (!rc) rc = plg__fsync_fd(L->dirfd);
        if (!rc)
            plg__msg(L, 0, "%s: recovery discarded %llu bytes (%llu records) after seq %llu; copied to %s", L->path,
                     (unsigned long long)L->discarded_bytes, (unsigned long long)L->discarded_records,
                     (unsigned long long)last_seq, L->quarantine);
    }
    return rc;
}

/* Every segment that may hold recovered records still only in the page
 * cache (a process crash, not a power cut) is synced before the durable
 * mark may cover them. */
static int plg__sync_tail(plg_log *L, uint64_t end_g) {
    uint64_t back = L->window / PLG_PAGE_SIZE + 1, lo = end_g > back ? end_g - back : 0;
    for (uint64_t seg = lo / L->D + 1; seg <= end_g / L->D + 1; seg++) {
        char name[4096];
        plg__seg_name(name, sizeof name, L->path, seg);
        int fd = open(name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) { if (errno == ENOENT) continue; return plg__from_errno(errno); }
        int rc = plg__fsync_fd(fd);
        close(fd);
        if (rc) return rc;
    }
    return 0;
}

/* Open the meta file for this session, made when missing, and record that
 * the log is open (not clean) with mark = last_seq. */
static int plg__meta_attach(plg_log *L, uint64_t last_seq) {
    char name[4200];
    int exists = L->meta.gen != 0;
    L->meta.mark = last_seq; L->meta.clean = 0; L->meta.log_id = L->log_id;
    int rc = exists ? 0 : plg__meta_create(L->path, &L->meta);
    if (rc) return rc;
    plg__meta_name(name, sizeof name, L->path);
    L->meta_fd = open(name, O_RDWR | O_CLOEXEC);
    if (L->meta_fd < 0) return plg__from_errno(errno);
    return exists ? plg__meta_put(L->meta_fd, &L->meta) : 0;
}

/* Writer: persist the durable mark, at most every PLG__MARK_INTERVAL_NS and
 * only while no write is in flight and the ring is empty, unless forced (a
 * segment switch, which waits for the writes anyway). A failure poisons the
 * log. */
#define PLG__MARK_INTERVAL_NS 1000000000ull
static void plg__mark_tick(plg_log *L, int force) {
    uint64_t d = plg__load_rlx(&L->durable);
    if (L->meta_fd < 0 || d <= L->meta.mark) return;
    uint64_t now = plg_now_ns();
    if (!force && now - L->mark_ns < PLG__MARK_INTERVAL_NS) return;
    L->mark_ns = now;
    plg__meta m = L->meta;
    m.mark = d;
    int rc = plg__meta_put(L->meta_fd, &m);
    if (rc) { plg__poison(L, rc, errno); return; }
    L->meta.gen = m.gen;
    plg__store_rlx(&L->meta.mark, d);
}

/* Does the block device under dir write FUA (so RWF_DSYNC needs no flush)? */
static int plg__device_fua(int dirfd) {
    struct stat st;
    if (fstat(dirfd, &st) != 0) return 0;
    char p[128], buf[8] = {0};
    unsigned maj = major(st.st_dev), min = minor(st.st_dev);
    const char *fmt[2] = { "/sys/dev/block/%u:%u/queue/fua", "/sys/dev/block/%u:%u/../queue/fua" };
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, fmt[i], maj, min);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        return n > 0 && buf[0] == '1';
    }
    return 0;
}

/* tmpfs and ramfs keep the files in RAM (tmpfs even accepts O_DIRECT): a
 * "durable" record there is lost at power loss. Refused unless opted in. */
#define PLG__TMPFS_MAGIC 0x01021994u
#define PLG__RAMFS_MAGIC 0x858458f6u
static int plg__check_volatile(plg_log *L) {
    struct statfs sf;
    if (fstatfs(L->dirfd, &sf) != 0) return plg__from_errno(errno);
    uint32_t type = (uint32_t)sf.f_type;
    if (type != PLG__TMPFS_MAGIC && type != PLG__RAMFS_MAGIC) return 0;
    if (L->cfg.flags & PLG_ALLOW_VOLATILE) return 0;
    errno = 0;
    plg__msg(L, PLG_EVOLATILE, "%s: on %s, which keeps data in RAM only; set PLG_ALLOW_VOLATILE in plg_config.flags "
             "to use it anyway", L->path, type == PLG__TMPFS_MAGIC ? "tmpfs" : "ramfs");
    return PLG_EVOLATILE;
}

/* Publish the durable mark for readers in other processes. Without it (a
 * read-only directory, say) the log works; tailing readers then see no
 * limit (what is on disk) and poll. */
static void plg__live_open(plg_log *L) {
    int fd = openat(L->dirfd, PLG__LIVE_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return;
    struct flock lk;
    memset(&lk, 0, sizeof lk);
    lk.l_type = F_WRLCK; lk.l_whence = SEEK_SET;      /* the whole file */
    /* no lock, no mark: readers would take it for a crashed writer's */
    void *p = fcntl(fd, F_OFD_SETLK, &lk) == 0 && ftruncate(fd, PLG_PAGE_SIZE) == 0
                  ? mmap(NULL, PLG_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (p == MAP_FAILED) { close(fd); return; }
    L->live_fd = fd;
    plg__live *v = (plg__live *)p;
    __atomic_store_n(&v->open, 0u, __ATOMIC_RELEASE);       /* readers ignore it while it changes */
    __atomic_store_n(&v->wid, 0ull, __ATOMIC_RELEASE);       /* an earlier writer's live.pages: no more */
    __atomic_store_n(&v->follow_ns, 0ull, __ATOMIC_RELAXED);
    __atomic_store_n(&v->resets, 0ull, __ATOMIC_RELAXED);
    __atomic_store_n(&v->log_id, L->log_id, __ATOMIC_RELAXED);
    __atomic_store_n(&v->writer_pid, (int32_t)getpid(), __ATOMIC_RELAXED);
    __atomic_store_n(&v->durable, L->durable, __ATOMIC_RELEASE);
    __atomic_store_n(&v->magic, PLG__LIVE_MAGIC, __ATOMIC_RELEASE);
    __atomic_store_n(&v->open, 1u, __ATOMIC_RELEASE);
    L->live = v;
    plg__live_wake(v);
}

/* Make live.pages for this writer (after plg__live_open). Without it readers
 * read every page from the files. */
static void plg__tail_open(plg_log *L) {
    if (!L->live) return;
    uint64_t wid = 0;
    if (plg_random(&wid, sizeof wid) != 0 || !wid) return;
    static const char tmp[] = PLG__TAIL_NAME ".tmp";
    int fd = openat(L->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return;
    void *p = ftruncate(fd, (off_t)PLG__TAIL_LEN) == 0
                  ? mmap(NULL, PLG__TAIL_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    close(fd);
    if (p == MAP_FAILED) { (void)unlinkat(L->dirfd, tmp, 0); return; }
    plg__tail *t = (plg__tail *)p;
    for (uint32_t i = 0; i < PLG__TAIL_SLOTS; i++) t->tag[i].g = UINT64_MAX;
    t->log_id = L->log_id; t->writer_pid = (int32_t)getpid(); t->slots = PLG__TAIL_SLOTS;
    __atomic_store_n(&t->wid, wid, __ATOMIC_RELAXED);
    __atomic_store_n(&t->magic, PLG__TAIL_MAGIC, __ATOMIC_RELEASE);
    if (renameat(L->dirfd, tmp, L->dirfd, PLG__TAIL_NAME) != 0) {
        (void)unlinkat(L->dirfd, tmp, 0);
        munmap(p, PLG__TAIL_LEN);
        return;
    }
    L->tail = t;
    __atomic_store_n(&L->live->wid, wid, __ATOMIC_RELEASE);
}

/* Writer: a write retired; copy its last pages for readers at the end, if
 * one looked lately. */
static void plg__tail_put(plg_log *L, uint64_t g0, uint32_t npages, const uint8_t *partial_buf) {
    uint64_t f = __atomic_load_n(&L->live->follow_ns, __ATOMIC_RELAXED);
    if (!f) return;
    uint64_t now = plg_now_ns();
    if (now > f && now - f > PLG__FOLLOW_NS) return;
    uint32_t n = npages < PLG__TAIL_SLOTS ? npages : PLG__TAIL_SLOTS;
    for (uint64_t g = g0 + npages - n; g < g0 + npages; g++)
        plg__tail_store(L->tail, (uint32_t)(g % PLG__TAIL_SLOTS), g,
                        partial_buf && g == g0 + npages - 1 ? partial_buf : plg__slot(L, g));
}

/* Writer: pages are rewritten outside the writes that retire (plg_truncate,
 * plg_reset): nothing in live.pages may be used any more. */
static void plg__tail_clear(plg_log *L) {
    if (!L->tail) return;
    for (uint32_t i = 0; i < PLG__TAIL_SLOTS; i++) plg__tail_store(L->tail, i, 0, NULL);
}

static int plg__io_init(plg_log *L) {
    if (L->cfg.io) { L->io_kind = 2; return 0; }
    L->io_kind = 1;
#ifndef PICOLOG_NO_URING
    unsigned entries = 8;
    while (entries < 2 * (L->cfg.max_inflight + 2)) entries *= 2;
    int r = io_uring_queue_init(entries, &L->uring, 0);
    if (r < 0) {
        plg__msg(L, PLG_EURING, "%s: io_uring unavailable (%s); writing with pwritev2", L->path, strerror(-r));
        return 0;
    }
    L->uring_ok = 1; L->io_kind = 0;
    struct iovec iov;
    iov.iov_base = L->stage; iov.iov_len = L->stage_len;
    L->fixed = io_uring_register_buffers(&L->uring, &iov, 1) == 0;
#endif
    return 0;
}

PLGDEF int plg_open(plg_log **out, const plg_config *cfg_in) {
    plg__open_errno = 0;
    if (!out || !cfg_in) return PLG_EINVAL;
    *out = NULL;
    plg_config cfg = plg_config_defaults(cfg_in);
    int rc = plg__validate(&cfg);
    if (rc) return rc;
    plg_log *L = (plg_log *)PICOLOG_MALLOC(sizeof *L);
    if (!L) return PLG_ENOMEM;
    memset(L, 0, sizeof *L);
    L->cfg = cfg; L->dirfd = -1; L->adirfd = -1; L->fd_cur = -1; L->meta_fd = -1; L->notify_fd = -1; L->live_fd = -1;
    L->synchronous = (cfg.flags & PLG_TEST_NO_THREADS) != 0;
    pthread_mutex_init(&L->pa_mu, NULL);
    pthread_mutex_init(&L->op_mu, NULL);
    {
        pthread_condattr_t ca;                         /* CLOCK_MONOTONIC: NTP steps never stall a wait */
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&L->pa_cv, &ca);
        pthread_cond_init(&L->op_cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    size_t pl = strlen(cfg.path);
    while (pl > 1 && cfg.path[pl - 1] == '/') pl--;
    L->path = (char *)PICOLOG_MALLOC(pl + 1);
    if (!L->path) { plg__free(L); return PLG_ENOMEM; }
    memcpy(L->path, cfg.path, pl); L->path[pl] = 0;
    L->cfg.path = L->path;
    uint64_t end_g = 0, last_seq = 0, stop_g = 0;
    uint32_t end_off = 0, last_epoch = 0;
    uint64_t wpages = cfg.max_write_bytes / PLG_PAGE_SIZE;

    if (mkdir(L->path, 0755) == 0) {
        char parent[4096];
        if (plg__dirname(L->path, parent, sizeof parent) == 0) plg_fsync_dir(parent);
    } else if (errno != EEXIST) { rc = plg__from_errno(errno); goto fail; }
    L->dirfd = open(L->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (L->dirfd < 0) { rc = plg__from_errno(errno); goto fail; }
    if (flock(L->dirfd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? PLG_ELOCKED : plg__from_errno(errno);
        goto fail;
    }
    rc = plg__check_volatile(L);
    if (rc) goto fail;
    if (cfg.archive_dir && cfg.archive_dir[0]) {
        size_t al = strlen(cfg.archive_dir);
        while (al > 1 && cfg.archive_dir[al - 1] == '/') al--;
        if (!(L->adir = (char *)PICOLOG_MALLOC(al + 1))) { rc = PLG_ENOMEM; goto fail; }
        memcpy(L->adir, cfg.archive_dir, al); L->adir[al] = 0;
        L->cfg.archive_dir = L->adir;
        if (mkdir(L->adir, 0755) == 0) {
            char parent[4096];
            if (plg__dirname(L->adir, parent, sizeof parent) == 0) plg_fsync_dir(parent);
        } else if (errno != EEXIST) {
            rc = plg__from_errno(errno);
            plg__msg(L, rc, "%s: cannot create the archive directory %s: %s", L->path, L->adir, strerror(errno));
            goto fail;
        }
        struct stat sa, sl;
        L->adirfd = open(L->adir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (L->adirfd < 0 || fstat(L->adirfd, &sa) != 0 || fstat(L->dirfd, &sl) != 0) { rc = plg__from_errno(errno); goto fail; }
        if (sa.st_dev == sl.st_dev && sa.st_ino == sl.st_ino) {
            rc = PLG_EINVAL;
            plg__msg(L, rc, "%s: archive_dir must not be the log directory", L->path);
            goto fail;
        }
    }

    {                                                  /* released segments kept for reuse */
        DIR *dd = opendir(L->path);
        struct dirent *e;
        while (dd && (e = readdir(dd)) != NULL)
            if (strncmp(e->d_name, "free-", 5) == 0 && strlen(e->d_name) == 29) L->nfree++;
        if (dd) closedir(dd);
    }
    {
        int fua = !cfg.io && cfg.io_mode == PLG_IO_DIRECT && plg__device_fua(L->dirfd);
        int automatic = L->cfg.sync_mode == PLG_SYNC_AUTO;
        if (automatic) L->cfg.sync_mode = (cfg.io || fua) ? PLG_SYNC_DSYNC : PLG_SYNC_FDATASYNC;
        L->dsync_one = !cfg.io && !fua && L->cfg.sync_mode == PLG_SYNC_DSYNC;
        if (automatic && !cfg.io && cfg.io_mode == PLG_IO_DIRECT && L->cfg.sync_mode == PLG_SYNC_FDATASYNC)
            L->cfg.flags |= PLG_DSYNC_UNTIL_BEHIND;
        L->dsync_low = (L->cfg.flags & PLG_DSYNC_UNTIL_BEHIND) && L->cfg.sync_mode == PLG_SYNC_FDATASYNC;
    }
    rc = plg__recover(L, &end_g, &end_off, &last_seq, &last_epoch, &stop_g);
    if (L->cfg.flags & PLG_PACK_DENSE) L->skip_from = UINT64_MAX;    /* no segment leaves a page */
    if (rc == PLG_ENOENT) {                                /* a new log */
        rc = plg_random(&L->log_id, sizeof L->log_id);
        if (rc) goto fail;
        L->log_id |= 1;
        L->seg_size = cfg.segment_size;
        L->D = L->seg_size / PLG_PAGE_SIZE - 1;
        L->window = plg__new_window(&cfg);
        memset(&L->meta, 0, sizeof L->meta);         /* the meta first: it says where seq first_seq is */
        L->meta.base_seg = 1; L->meta.base_seq = cfg.first_seq;
#ifdef PICOLOG_ENCRYPT
        if (cfg.encrypt_key) {                       /* the meta holds the key check value */
            const uint8_t *keys[PLG_MAX_KEYS];
            size_t nkeys = plg__cfg_keys(&cfg, keys);
            if (plg__keys_make(&L->keys, keys, nkeys, L->log_id, NULL)) { rc = PLG_ENOMEM; goto fail; }
            L->crypt = L->keys.k[0];
            L->meta.cipher = PLG__CIPHER_V1; L->meta.key_id = L->first_key_id = L->crypt->key_id;
            memcpy(L->meta.check, L->crypt->check, sizeof L->meta.check);
        }
#endif
        last_seq = cfg.first_seq - 1;
        rc = plg__meta_attach(L, last_seq);
        if (rc) goto fail;
        rc = plg__seg_create(L, 1);
        if (rc) goto fail;
        L->pa_ready = 1; L->seg_first = 1;
    } else if (rc) {
        goto fail;
    }
    /* Never put more bytes in flight than the log's recorded window. */
    if (wpages > L->D) wpages = L->D;
    while ((uint64_t)L->cfg.max_inflight * wpages * PLG_PAGE_SIZE + PLG_PAGE_SIZE > L->window) {
        if (wpages > 1) wpages /= 2;
        else if (L->cfg.max_inflight > 1) L->cfg.max_inflight--;
        else break;
    }
    L->max_write_pages = (uint32_t)wpages;
    if (end_g / L->D + 1 > L->pa_ready) {                 /* the end is in a segment not made yet */
        rc = plg__seg_create(L, end_g / L->D + 1);
        if (rc) goto fail;
        L->pa_ready = end_g / L->D + 1;
    }
    L->pa_want = L->pa_ready;
    L->pa_need = end_g / L->D + 1;

    /* ring and staging, touched now so the hot path never page-faults */
    L->cap = cfg.ring_capacity; L->mask = L->cap - 1;
    L->map_len = PLG_PAGE_SIZE + L->cap;
    L->map = plg__buf_get(L, L->map_len);
    L->S = (uint32_t)((L->cfg.max_inflight + 1) * L->max_write_pages + 8);   /* in flight + one batch filling */
    if (L->S < 64) L->S = 64;
    L->stage_len = ((size_t)L->S + L->cfg.max_inflight) * PLG_PAGE_SIZE;
    L->stage = (uint8_t *)plg__buf_get(L, L->stage_len);
    L->slot_end = (uint64_t *)PICOLOG_MALLOC(L->S * sizeof(uint64_t));
    if (!L->map || !L->stage || !L->slot_end) { rc = PLG_ENOMEM; goto fail; }
    L->rc = (plg__ring_ctl *)L->map;
    L->rdata = (uint8_t *)L->map + PLG_PAGE_SIZE;
    L->shadow = L->stage + (size_t)L->S * PLG_PAGE_SIZE;

    if (L->meta_fd < 0 && !L->meta.clean) {            /* not closed cleanly: keep what is discarded */
        uint64_t reach = L->window / PLG_PAGE_SIZE + 1, end = (stop_g > end_g ? stop_g : end_g) + reach;
        if (end > L->pa_ready * L->D) end = L->pa_ready * L->D;
        rc = plg__quarantine(L, end_g, end_off, end, last_seq, last_epoch);
        if (rc) goto fail;
    }
    rc = plg__prepare_tail(L, end_g, end_off, stop_g);
    if (rc) goto fail;
    if (L->meta_fd < 0) {
        rc = plg__sync_tail(L, end_g);
        if (!rc) rc = plg__meta_attach(L, last_seq);
        if (rc) goto fail;
    }
    rc = plg__rotate_keys(L, end_g, end_off);
    if (rc) goto fail;
    do {
        rc = plg_random(&L->epoch, sizeof L->epoch);
        if (rc) goto fail;
    } while (L->epoch == 0 || L->epoch == last_epoch);
    L->epoch_start = 1; L->short_g = UINT64_MAX;
    L->g_fill = L->g_sub = L->g_free = L->g_synced = end_g;
    L->fill_off = L->partial_off = end_off;
    L->slot_end[end_g % L->S] = last_seq;
    L->fill_end_seq = last_seq;
    L->cseq = last_seq + 1;
    L->rc->next_seq = last_seq + 1;
    L->written = L->durable = last_seq;
    plg__live_open(L);
    plg__tail_open(L);

    rc = plg__io_init(L);
    if (rc) goto fail;
    if (L->synchronous) { *out = L; return 0; }   /* the writer runs in plg_close */
    if (pthread_create(&L->prealloc, NULL, plg__prealloc_main, L) != 0) { rc = PLG_ESYS; goto fail; }
    L->prealloc_started = 1;
    plg__prealloc_request(L, end_g / L->D + 1 + L->cfg.prealloc_segments);
    if (pthread_create(&L->writer, NULL, plg__writer_main, L) != 0) { rc = PLG_ESYS; goto fail; }
    L->writer_started = 1;
    *out = L;
    return 0;
fail:
    if (rc != PLG_ECORRUPT && rc != PLG_EFORMAT) {          /* those were explained by recovery */
        int e = errno;
        plg__open_errno = e;
        plg__msg(L, rc, "%s: cannot open the log: %s%s%s%s", L->path, plg_strerror(rc),
                 rc == PLG_ELOCKED ? " (another writer holds it)" : "", e ? ": " : "", e ? strerror(e) : "");
    }
    if (L->prealloc_started) {
        pthread_mutex_lock(&L->pa_mu); L->pa_stop = 1; pthread_cond_broadcast(&L->pa_cv);
        pthread_mutex_unlock(&L->pa_mu);
        pthread_join(L->prealloc, NULL);
    }
    plg__free(L);
    return rc;
}

PLGDEF int plg_release(plg_log *L, uint64_t seq) {
    if (!L) return PLG_EINVAL;
    pthread_mutex_lock(&L->pa_mu);
    if (seq > L->release_below) { L->release_below = seq; L->release_pending = 1; pthread_cond_broadcast(&L->pa_cv); }
    L->pa_retry_ns = 0;                           /* space may be free now: retry a failed preallocation */
    pthread_mutex_unlock(&L->pa_mu);
    return 0;
}

/* Wake the writer if it sleeps on the kick word. A swap, not a load: a full
 * barrier after the records committed before, which the writer's check then
 * sees. */
static void plg__kick_wake(plg_log *L) {
    if (__atomic_exchange_n(&L->idle, 0u, __ATOMIC_SEQ_CST)) plg__futex_wake(&L->idle);
}

PLGDEF void plg_kick(plg_log *L) {
    if (!L) return;
    if (!__atomic_load_n(&L->kicked, __ATOMIC_RELAXED)) __atomic_store_n(&L->kicked, 1u, __ATOMIC_RELEASE);
    plg__kick_wake(L);
}

PLGDEF int plg_notify_fd(plg_log *L) {
    if (!L) return PLG_EINVAL;
    pthread_mutex_lock(&L->pa_mu);
    int fd = L->notify_fd, rc = 0;
    if (fd < 0) {
        fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) rc = plg__from_errno(errno);
        else plg__store_rel(&L->notify_fd, fd);
    }
    pthread_mutex_unlock(&L->pa_mu);
    return rc ? rc : fd;
}

PLGDEF uint64_t plg_appended(const plg_log *L) { return plg__load_rlx(&L->rc->next_seq) - 1; }
PLGDEF uint64_t plg_written(const plg_log *L) { return plg__load_acq(&L->written); }
PLGDEF uint64_t plg_durable(const plg_log *L) { return plg__load_acq(&L->durable); }
PLGDEF int plg_error(const plg_log *L) { return plg__load_acq(&L->error); }

PLGDEF int plg_wait(plg_log *L, uint64_t seq, int64_t timeout_ns) {
    if (plg__load_acq(&L->durable) >= seq) return 0;
    if (seq > plg_appended(L)) return PLG_EINVAL;
    uint64_t t0 = plg_now_ns(), deadline = timeout_ns > 0 ? t0 + (uint64_t)timeout_ns : 0;
    for (int i = 0; i < 256; i++) {
        if (plg__load_acq(&L->durable) >= seq) return 0;
        plg__cpu_relax();
    }
#if PICOLOG_WAIT_SPIN_NS > 0
    for (uint64_t spin_end = t0 + PICOLOG_WAIT_SPIN_NS; ; ) {   /* then a bounded spin (see its option) */
        for (int i = 0; i < 64; i++) {
            if (plg__load_acq(&L->durable) >= seq) return 0;
            plg__cpu_relax();
        }
        if (plg__load_acq(&L->error)) break;
        uint64_t now = plg_now_ns();
        if (now >= spin_end || (deadline && now >= deadline)) break;
    }
#endif
    for (;;) {
        uint32_t gen = __atomic_load_n(&L->durable_gen, __ATOMIC_SEQ_CST);
        if (plg__load_acq(&L->durable) >= seq) return 0;
        int e = plg__load_acq(&L->error);
        if (e) return e;
        if (timeout_ns == 0) return PLG_ETIMEDOUT;
        struct timespec ts, *tsp = NULL;
        if (timeout_ns > 0) {
            uint64_t now = plg_now_ns();
            if (now >= deadline) return PLG_ETIMEDOUT;
            ts.tv_sec = (time_t)((deadline - now) / 1000000000ull);
            ts.tv_nsec = (long)((deadline - now) % 1000000000ull);
            tsp = &ts;
        }
        __atomic_fetch_add(&L->waiters, 1u, __ATOMIC_SEQ_CST);
        if (plg__load_acq(&L->durable) < seq && !plg__load_acq(&L->error))
            syscall(SYS_futex, &L->durable_gen, FUTEX_WAIT_PRIVATE, gen, tsp, NULL, 0);
        __atomic_fetch_sub(&L->waiters, 1u, __ATOMIC_SEQ_CST);
    }
}

PLGDEF void plg_get_stats(const plg_log *L, plg_stats *o) {
    memset(o, 0, sizeof *o);
    o->durable = plg_durable(L);          /* read in this order, monotonic counters */
    o->written = plg_written(L);          /* give appended >= written >= durable */
    o->appended = plg_appended(L);
    o->records = plg__load_rlx(&L->rc->records);
    o->bytes = plg__load_rlx(&L->rc->bytes);
    o->ring_full = plg__load_rlx(&L->rc->ring_full);
    o->writes = plg__load_rlx(&L->st_writes);
    o->pages_written = plg__load_rlx(&L->st_pages);
    o->bytes_written = plg__load_rlx(&L->st_bytes);
    o->syncs = plg__load_rlx(&L->st_syncs);
    o->segments_created = plg__load_rlx(&L->st_segs);
    o->segments_unwritten = plg__load_rlx(&L->st_segs_unwritten);
    o->segment_stalls = plg__load_rlx(&L->st_stalls);
    o->max_write_pages = plg__load_rlx(&L->st_maxw);
    o->errors = plg__load_rlx(&L->st_errors);
    o->segments_released = plg__load_rlx(&L->st_released);
    o->segments_recycled = plg__load_rlx(&L->st_recycled);
    o->dir_syncs = plg__load_rlx(&L->st_dirsyncs);
    o->pages_left = plg__load_rlx(&L->st_pages_left);
    o->syncs_in_flight = plg__load_rlx(&L->st_syncs_async);
    o->writes_dsync = plg__load_rlx(&L->st_writes_dsync);
    o->writes_blocking = plg__load_rlx(&L->st_writes_blocking);
    o->writes_paired = plg__load_rlx(&L->st_writes_paired);
    pthread_mutex_lock((pthread_mutex_t *)&L->pa_mu);
    o->prealloc_error = L->pa_err;
    o->prealloc_errno = plg__load_rlx(&L->pa_errno);
    o->segments_ahead = L->pa_ready > L->pa_need ? L->pa_ready - L->pa_need : 0;
    pthread_mutex_unlock((pthread_mutex_t *)&L->pa_mu);
    o->sync_mode = L->cfg.sync_mode;
    o->error = plg_error(L);
    o->last_errno = plg__load_rlx(&L->last_errno);
    o->backend = L->io_kind == 0 ? "io_uring" : L->io_kind == 1 ? "pwritev2" : "custom";
    o->discarded_bytes = L->discarded_bytes;
    o->discarded_records = L->discarded_records;
    o->quarantine = L->quarantine;
    o->mark = plg__load_rlx(&L->meta.mark);
}

/* PLG_TEST_NO_THREADS: the writer's loop on this thread (it stops once
 * everything queued is durable), keeping this thread's name and timer slack. */
static void plg__writer_inline(plg_log *L) {
    char name[32] = {0};
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    prctl(PR_GET_NAME, name, 0, 0, 0);
    plg__writer_main(L);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    if (slack > 0) prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0, 0, 0);
}

PLGDEF int plg_close(plg_log *L) {
    if (!L) return PLG_EINVAL;
    plg__store_rel(&L->stop, 1);
    plg__kick_wake(L);                            /* an idle writer sees stop now, not after its sleep */
    if (L->writer_started) pthread_join(L->writer, NULL);
    else if (L->synchronous) plg__writer_inline(L);
    int rc = plg__load_acq(&L->error);
    if (!rc && plg_durable(L) != plg_appended(L)) rc = PLG_EIO;
    if (L->meta_fd >= 0) {                             /* the durable mark, and a clean close */
        plg__meta m = L->meta;
        m.mark = plg_durable(L); m.clean = rc == 0;
        int r = plg__meta_put(L->meta_fd, &m);
        if (!rc && r) rc = r;
    }
    if (L->prealloc_started) {
        pthread_mutex_lock(&L->pa_mu); L->pa_stop = 1; pthread_cond_broadcast(&L->pa_cv);
        pthread_mutex_unlock(&L->pa_mu);
        pthread_join(L->prealloc, NULL);
    }
    plg__free(L);
    return rc;
}

/* >>reader ---------------------------------------------------------------- */
/* A walk's position between two records, to go back to. */
typedef struct plg__pos {
    uint64_t g, expect, last_seq, first_seq, records, bytes;
    uint32_t off, epoch, last_epoch; int have_epoch, skip_cont;
    plg__pv pv;
} plg__pos;

static void plg__pos_save(const plg__scan *s, plg__pos *p) {
    p->g = s->g; p->off = s->off; p->expect = s->expect; p->epoch = s->epoch; p->have_epoch = s->have_epoch;
    p->skip_cont = s->skip_cont; p->last_seq = s->last_seq; p->last_epoch = s->last_epoch;
    p->first_seq = s->first_seq; p->records = s->records; p->bytes = s->bytes; p->pv = s->pv;
}

static void plg__pos_load(plg__scan *s, const plg__pos *p) {
    s->g = p->g; s->off = p->off; s->expect = p->expect; s->epoch = p->epoch; s->have_epoch = p->have_epoch;
    s->skip_cont = p->skip_cont; s->last_seq = p->last_seq; s->last_epoch = p->last_epoch;
    s->first_seq = p->first_seq; s->records = p->records; s->bytes = p->bytes; s->pv = p->pv;
    s->in_rec = 0; s->done = 0; s->status = 0; s->torn = 0; s->skipped = 0;
}

/* verified: every record up to seq `vseq` was reached by a walk from the
 * start (front: where that walk stands), so a seek at or below it may jump. */
struct plg_reader {
    plg__scan s;
    plg__pos front; uint64_t vseq;
    plg__live *live; int live_rw;    /* the writer's shared mark (NULL: none) */
    int live_fd;                     /* open on live.shm, to test the writer's lock */
    plg__tail *tail;                 /* the writer's live.pages, mapped read-only (NULL: none) */
    uint64_t tail_miss;              /* the wid whose live.pages could not be mapped (not tried again) */
    uint64_t rs_wid, rs_resets; int32_t rs_pid;   /* live.shm when the meta file was last read (rs_wid 0: never) */
    uint64_t limit;                  /* last durable mark seen */
    int has_pend; plg_record pend;   /* a record plg_reader_wait found */
};

/* The live mark of this log, mapped read-write when allowed (to sleep on
 * it), else read-only (then plg_reader_wait polls). */
static void plg__reader_live(plg_reader *r) {
    char name[4200];
    snprintf(name, sizeof name, "%s/%s", r->s.dir, PLG__LIVE_NAME);
    int rw = 1, fd = open(name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) { rw = 0; fd = open(name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW); }
    if (fd < 0) return;
    struct stat st;
    void *p = fstat(fd, &st) == 0 && st.st_size >= (off_t)PLG_PAGE_SIZE
                  ? mmap(NULL, PLG_PAGE_SIZE, rw ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (p == MAP_FAILED) { close(fd); return; }
    r->live = (plg__live *)p; r->live_rw = rw; r->live_fd = fd;
}

/* The writer's durable mark, while a writer has the log open (else
 * UINT64_MAX: everything on disk). check_pid: also make sure that writer
 * still runs (a killed writer leaves its mark behind): it holds the lock on
 * live.shm; its pid is only looked at where the lock cannot be tested. */
static uint64_t plg__reader_mark(plg_reader *r, int check_pid) {
    plg__live *v = r->live;
    if (!v || __atomic_load_n(&v->magic, __ATOMIC_ACQUIRE) != PLG__LIVE_MAGIC ||
        __atomic_load_n(&v->log_id, __ATOMIC_RELAXED) != r->s.log_id)
        return UINT64_MAX;
    uint64_t d = __atomic_load_n(&v->durable, __ATOMIC_ACQUIRE);
    if (!__atomic_load_n(&v->open, __ATOMIC_ACQUIRE)) return UINT64_MAX;
    pid_t pid = (pid_t)__atomic_load_n(&v->writer_pid, __ATOMIC_RELAXED);
    if (!check_pid) return d;
    struct flock lk;
    memset(&lk, 0, sizeof lk);
    lk.l_type = F_WRLCK; lk.l_whence = SEEK_SET;
    if (fcntl(r->live_fd, F_OFD_GETLK, &lk) == 0) return lk.l_type == F_UNLCK ? UINT64_MAX : d;
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) return UINT64_MAX;   /* the writer died */
    return d;
}

PLGDEF int plg_reader_open(plg_reader **out, const char *path) { return plg_reader_open_key(out, path, NULL); }

static int plg__reader_open(plg_reader **out, const char *path, const char *adir, const uint8_t *const *keys,
                            size_t nkeys, const plg__keys *have);
PLGDEF int plg_reader_open_key(plg_reader **out, const char *path, const uint8_t *key) {
    return plg__reader_open(out, path, NULL, &key, key ? 1 : 0, NULL);
}

PLGDEF int plg_reader_open_keys(plg_reader **out, const char *path, const uint8_t *const *keys, size_t n) {
    if (out) *out = NULL;
    if (n > PLG_MAX_KEYS || (n && !keys)) return PLG_EINVAL;
    for (size_t i = 0; i < n; i++) if (!keys[i]) return PLG_EINVAL;
    return plg__reader_open(out, path, NULL, keys, n, NULL);
}

PLGDEF int plg_reader_open_archive(plg_reader **out, const char *path, const char *archive_dir,
                                   const uint8_t *const *keys, size_t n) {
    if (out) *out = NULL;
    if (n > PLG_MAX_KEYS || (n && !keys)) return PLG_EINVAL;
    for (size_t i = 0; i < n; i++) if (!keys[i]) return PLG_EINVAL;
    return plg__reader_open(out, path, archive_dir && archive_dir[0] ? archive_dir : NULL, keys, n, NULL);
}

static int plg__reader_open(plg_reader **out, const char *path, const char *adir, const uint8_t *const *keys,
                            size_t nkeys, const plg__keys *have) {
    if (!out || !path) return PLG_EINVAL;
    *out = NULL;
    plg_reader *r = (plg_reader *)PICOLOG_MALLOC(sizeof *r);
    if (!r) return PLG_ENOMEM;
    memset(r, 0, sizeof *r);
    r->live_fd = -1;
    int rc = plg__scan_open(&r->s, path, adir, 0, keys, nkeys, have);
    if (rc) { plg__scan_close(&r->s); PICOLOG_FREE(r); return rc; }
    plg__pos_save(&r->s, &r->front);
    r->vseq = 0;
    plg__reader_live(r);
    *out = r;
    return 0;
}

/* The running writer's live.pages, mapped again when the writer changed.
 * The reader's walk uses it only while that writer holds its lock (runs:
 * 1 known to, -1 look). */
static void plg__reader_tail(plg_reader *r, int runs) {
    plg__live *v = r->live;
    plg__scan *s = &r->s;
    uint64_t wid = __atomic_load_n(&v->wid, __ATOMIC_ACQUIRE);
    if (r->tail && __atomic_load_n(&r->tail->wid, __ATOMIC_ACQUIRE) != wid) {
        munmap(r->tail, PLG__TAIL_LEN);
        r->tail = NULL;
    }
    if (!r->tail && wid && wid != r->tail_miss) {
        char name[4200];
        snprintf(name, sizeof name, "%s/%s", s->dir, PLG__TAIL_NAME);
        int fd = open(name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        void *p = fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= (off_t)PLG__TAIL_LEN
                      ? mmap(NULL, PLG__TAIL_LEN, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
        if (fd >= 0) close(fd);
        const plg__tail *t = (const plg__tail *)p;
        if (p != MAP_FAILED && (__atomic_load_n(&t->magic, __ATOMIC_ACQUIRE) != PLG__TAIL_MAGIC ||
                                t->log_id != s->log_id || t->slots != PLG__TAIL_SLOTS ||
                                __atomic_load_n(&t->wid, __ATOMIC_ACQUIRE) != wid)) {
            munmap(p, PLG__TAIL_LEN);
            p = MAP_FAILED;
        }
        if (p != MAP_FAILED) r->tail = (plg__tail *)p;
        else r->tail_miss = wid;
    }
    s->tail = r->tail; s->tail_live = v;
    s->tail_ok = r->tail && (runs > 0 || plg__reader_mark(r, 1) != UINT64_MAX);
    if (r->live_rw) __atomic_store_n(&v->follow_ns, plg_now_ns(), __ATOMIC_RELAXED);   /* the writer copies while we look */
}

/* A writer may have added segments since this reader listed them. */
static void plg__reader_relist(plg_reader *r) {
    plg__scan *s = &r->s;
    uint64_t *segs = NULL; size_t n = 0;
    if (plg__list_segments(s->dir, 0, &segs, &n) == 0 && n && segs[n - 1] > s->seg_last) {
        s->seg_last = segs[n - 1];
        PICOLOG_FREE(s->seg_seq); s->seg_seq = NULL;      /* sized for the old count */
    }
    PICOLOG_FREE(segs);
    plg__scan_forget_keys(s);                      /* and a writer may have rotated its key */
    if (!r->live) plg__reader_live(r);             /* a writer may have started since */
    if (r->live) plg__reader_tail(r, -1);
    r->limit = 0;                                  /* and the mark is looked at again */
}

/* The walk ended cleanly at the end of what was there: look again from
 * that end, with the segments that exist now. */
static void plg__reader_resume(plg_reader *r) {
    plg__scan *s = &r->s;
    plg__reader_relist(r);
    s->g = s->end_g; s->off = s->end_off;
    s->in_rec = 0; s->done = 0; s->torn = 0; s->chunk_n = 0; s->ra = 4; s->skipped = 0;
}

/* One step of the walk: a record is returned only at or below the live
 * writer's durable mark (a record written but not yet durable is given back
 * and read again later); every record returned extends what the reader has
 * verified when it lies beyond it. A walk that ends below the live mark read
 * pages cached before the writer filled them, or missed a segment made since
 * the listing: it reads once more, afresh. */
static int plg__reader_step(plg_reader *r, plg_record *rec) {
    plg__scan *s = &r->s;
    if (r->has_pend) { r->has_pend = 0; *rec = r->pend; return 1; }
    for (int pass = 0;; pass++) {
        if (s->done && s->status == 0) plg__reader_resume(r);
        /* at the writer's durable mark: nothing more to read yet (no walk over
         * the unwritten end, whose evidence check would read megabytes) */
        if (!s->done && r->live && s->last_seq && s->last_seq >= plg__reader_mark(r, 0) &&
            s->last_seq >= plg__reader_mark(r, 1)) {
            /* the pages cached from here on were read while the writer was
             * still filling them: once the mark moves, read them again */
            s->chunk_n = 0; s->ra = 4;
            plg__reader_tail(r, 1);                /* where to read them, once it does */
            return 0;
        }
        plg__pos before;
        plg__pos_save(s, &before);
        uint64_t m0 = r->live ? plg__reader_mark(r, 0) : UINT64_MAX;
        s->live_retry = pass == 0 && m0 != UINT64_MAX && m0 > s->last_seq;
        s->live_retried = 0;
        int rc = plg__scan_next(s, rec);
        int retried = s->live_retried;
        s->live_retry = s->live_retried = 0;
        if (rc == 1 && rec->seq > r->limit) {
            /* a mark the writer published is durable even if that writer
             * died since: the lock is tested only when it holds back */
            r->limit = plg__reader_mark(r, 0);
            if (rec->seq > r->limit) r->limit = plg__reader_mark(r, 1);
            if (rec->seq > r->limit) {
                /* written but not yet durable: give it back; it is read again later */
                plg__pos_load(s, &before);
                s->g = s->ret_g; s->off = s->ret_off; s->pv = s->ret_pv;
                s->expect = rec->seq; s->skip_cont = 0; s->last_seq = rec->seq - 1;
                s->chunk_n = 0;
                return 0;
            }
        }
        if (rc == 1 && rec->seq > r->vseq) { r->vseq = rec->seq; plg__pos_save(s, &r->front); }
        if (rc != 0 || pass || s->status || !r->live) return rc;
        uint64_t mark = plg__reader_mark(r, 1);
        if (!retried && (mark == UINT64_MAX || mark <= s->last_seq)) return 0;
        if (!s->done) { plg__reader_relist(r); s->chunk_n = 0; s->ra = 4; }   /* else resumed above */
    }
}

/* Was the log reset (plg_reset) since this reader read its meta file? Its
 * records are gone then, and what follows its position is another log's:
 * the meta file's base (where the log begins) moved. Looked at only when the
 * reader has nothing to return, and then read only when live.shm does not
 * show the same writer with the same count of resets as at the last read. */
static int plg__reader_was_reset(plg_reader *r) {
    const plg__scan *s = &r->s;
    plg__live *v = r->live;
    uint64_t wid = 0, resets = 0; int32_t pid = 0;
    if (v) {
        /* the same writer (of this release: it counts its resets in
         * live.shm) as at the last look, and no reset since: not read again */
        wid = __atomic_load_n(&v->wid, __ATOMIC_ACQUIRE);
        pid = __atomic_load_n(&v->writer_pid, __ATOMIC_RELAXED);
        resets = __atomic_load_n(&v->resets, __ATOMIC_SEQ_CST);
        if (wid && r->rs_wid == wid && r->rs_pid == pid && r->rs_resets == resets) return 0;
    }
    plg__meta m;
    if (!s->has_meta || plg__meta_read(s->dir, &m) != 1) return 0;
    int reset = m.base_seq != s->meta.base_seq || m.base_g != s->meta.base_g || m.base_seg != s->meta.base_seg;
    if (!reset) { r->rs_wid = wid; r->rs_pid = pid; r->rs_resets = resets; }
    return reset;
}

PLGDEF int plg_reader_next(plg_reader *r, plg_record *rec) {
    int rc = plg__reader_step(r, rec);
    if (rc == 0 && plg__reader_was_reset(r)) return PLG_ERELEASED;
    return rc;
}

PLGDEF int plg_reader_wait(plg_reader *r, int64_t timeout_ns) {
    if (!r) return PLG_EINVAL;
    uint64_t deadline = timeout_ns > 0 ? plg_now_ns() + (uint64_t)timeout_ns : 0;
    for (;;) {
        plg__live *v = r->live;
        uint32_t gen = v ? __atomic_load_n(&v->gen, __ATOMIC_SEQ_CST) : 0;
        if (r->has_pend) return 1;
        int rc = plg_reader_next(r, &r->pend);
        if (rc < 0) return rc;
        if (rc == 1) { r->has_pend = 1; return 1; }
        if (timeout_ns == 0) return 0;
        uint64_t now = plg_now_ns(), slice = 10000000;      /* 10 ms: a missed wake costs no more */
        if (timeout_ns > 0) {
            if (now >= deadline) return 0;
            if (deadline - now < slice) slice = deadline - now;
        }
        struct timespec ts;
        ts.tv_sec = 0; ts.tv_nsec = (long)slice;
        if (v && r->live_rw) {
            __atomic_fetch_add(&v->waiters, 1u, __ATOMIC_SEQ_CST);
            syscall(SYS_futex, &v->gen, FUTEX_WAIT, gen, &ts, NULL, 0);
            __atomic_fetch_sub(&v->waiters, 1u, __ATOMIC_SEQ_CST);
        } else {
            if (slice > 1000000) ts.tv_nsec = 1000000;      /* no shared mark to sleep on: poll */
            nanosleep(&ts, NULL);
        }
    }
}

/* The last page in [lo, hi) whose first fragment is valid with seq < target,
 * by binary search (pages hold increasing sequence numbers, then zeros). */
/* Sequence number of the first fragment of page g (0: no valid fragment). */
static uint64_t plg__page_seq(plg__scan *s, uint64_t g) {
    plg__frag f;
    return plg__scan_first_frag(s, g, &f) ? f.seq : 0;
}

/* First sequence number of segment idx, read once and cached. */
static uint64_t plg__seg_seq(plg__scan *s, uint64_t idx) {
    uint64_t i = idx - s->seg_first;
    if (!s->seg_seq) {
        size_t n = (size_t)(s->seg_last - s->seg_first + 1);
        s->seg_seq = (uint64_t *)PICOLOG_MALLOC(n * sizeof(uint64_t));
        if (!s->seg_seq) return plg__page_seq(s, (idx - 1) * s->D);
        for (size_t k = 0; k < n; k++) s->seg_seq[k] = UINT64_MAX;
    }
    if (s->seg_seq[i] == UINT64_MAX) s->seg_seq[i] = plg__page_seq(s, (idx - 1) * s->D);
    return s->seg_seq[i];
}

/* The last page in [lo, hi) whose first fragment is valid with seq < target;
 * page lo is known to qualify (its seq is lo_seq), hi_seq is the seq at page
 * hi when known (else 0). Pages hold increasing sequence numbers, then zeros,
 * so the search interpolates by sequence number (records of similar size
 * land in a read or two) and bisects whenever a guess did not halve the range. */
static uint64_t plg__search_pages(plg__scan *s, uint64_t lo, uint64_t hi, uint64_t lo_seq, uint64_t hi_seq,
                                  uint64_t target) {
    uint64_t a = lo + 1, b = hi, sa = lo_seq, sb = hi_seq;
    int guess = 1;
    while (a < b) {
        uint64_t mid = a + (b - a) / 2, width = b - a;
        if (guess && sb > sa && target > sa) {
            double frac = (double)(target - sa) / (double)(sb - sa);
            mid = (a - 1) + (uint64_t)(frac * (double)(b - (a - 1)));
            if (mid < a) mid = a;
            if (mid >= b) mid = b - 1;
        }
        uint64_t q = plg__page_seq(s, mid);
        if (q < lo_seq) q = 0;                 /* old records in a reused segment */
        if (q && q < target) { a = mid + 1; sa = q; } else { b = mid; sb = q; }
        guess = (b - a) <= width / 2;
    }
    return a - 1;
}

static int plg__seek(plg_reader *r, uint64_t seq, int again);

/* A seek returns exactly what a walk from the start would: below the
 * verified mark it jumps (binary search); beyond it, it walks on from the
 * verified front up to seq (through plg_reader_next, so never past a live
 * writer's durable mark, with the segments that exist now), so damage before
 * seq gives the walk's error and damage after seq is not looked at. */
PLGDEF int plg_reader_seek(plg_reader *r, uint64_t seq) {
    plg__scan *s = &r->s;
    if (seq == 0) return PLG_EINVAL;
    r->has_pend = 0;
    if (seq <= r->vseq && plg__seek(r, seq, 1) == 0) return 0;
    plg__pos before;
    if (seq <= r->vseq) {                         /* the jump failed: walk from the start */
        plg__scan_restart(s, (s->seg_first - 1) * s->D);
        plg__scan_begin(s);
        s->last_seq = s->meta.base_seg == s->seg_first ? s->meta.base_seq - 1 : 0;
        s->first_seq = s->records = s->bytes = 0; s->have_epoch = 0;
    } else {
        plg__reader_relist(r);
        plg__pos_load(s, &r->front);
        s->chunk_n = 0; s->ra = 4;
    }
    for (;;) {
        plg_record rec;
        plg__pos_save(s, &before);
        int rc = plg_reader_next(r, &rec);
        if (rc < 0) return rc;
        if (rc == 0) return s->last_seq + 1 == seq ? 0 : PLG_ENOENT;
        if (rec.seq > seq) return PLG_ENOENT;
        if (rec.seq == seq) { plg__pos_load(s, &before); return 0; }
    }
}

static int plg__seek(plg_reader *r, uint64_t seq, int again) {
    plg__scan *s = &r->s;
    if (seq == 0) return PLG_EINVAL;
    /* the last segment whose first page starts below seq (binary search) */
    uint64_t a = s->seg_first, b = s->seg_last + 1;
    while (a < b) {
        uint64_t mid = a + (b - a) / 2, q = plg__seg_seq(s, mid);
        if (q && q < seq) a = mid + 1; else b = mid;
    }
    int found = a > s->seg_first;
    uint64_t g = (s->seg_first - 1) * s->D;
    if (found) {
        uint64_t seg = a - 1, next = seg < s->seg_last ? plg__seg_seq(s, seg + 1) : 0;
        g = plg__search_pages(s, (seg - 1) * s->D, seg * s->D, plg__seg_seq(s, seg), next, seq);
    }
    plg__scan_restart(s, g);
    if (!found || (s->meta.base_seg == s->seg_first && g <= s->meta.base_g)) plg__scan_begin(s);
    for (;;) {
        plg_record rec;
        int rc = plg__scan_next(s, &rec);
        if (rc < 0) return rc;
        if (rc == 0) {
            if (s->last_seq + 1 == seq) return 0;
            /* seq may be the position after the last record, and the search
             * landed on a page holding only that record's end (a continuation,
             * skipped): find the record itself; what follows it is seq */
            if (again && seq > 1 && plg__seek(r, seq - 1, 0) == 0 && plg__scan_next(s, &rec) == 1 && rec.seq == seq - 1)
                return 0;
            return PLG_ENOENT;
        }
        if (rec.seq > seq) return PLG_ENOENT;
        if (rec.seq == seq) {
            s->g = s->ret_g; s->off = s->ret_off; s->pv = s->ret_pv;
            s->expect = seq; s->have_epoch = 0; s->skip_cont = 0; s->in_rec = 0;
            s->last_seq = seq - 1; s->records--;
            return 0;
        }
    }
}

PLGDEF const char *plg_reader_where(const plg_reader *r, uint64_t *offset) {
    plg__scan *s = (plg__scan *)&r->s;
    if (!s->done) plg__scan_setwhere(s, s->g, s->off);
    if (offset) *offset = plg__scan_where_off(s);
    return s->where_file;
}

PLGDEF void plg_reader_close(plg_reader *r) {
    if (!r) return;
    if (r->live) munmap(r->live, PLG_PAGE_SIZE);
    if (r->tail) munmap(r->tail, PLG__TAIL_LEN);
    if (r->live_fd >= 0) close(r->live_fd);
    plg__scan_close(&r->s);
    PICOLOG_FREE(r);
}

/* >>truncate -------------------------------------------------------------- */
/* plg_truncate and plg_reset run on the writer thread once everything
 * appended is durable and nothing is in flight (the caller, the producer,
 * waits). Crash safety:
 *   truncate  the durable mark is lowered to seq first (durably), then the
 *             bytes after seq are erased from the far end back, one synced
 *             chunk of at most a window at a time (plg__prepare_tail): a crash
 *             leaves the log ending between seq and the old end, never zeros
 *             followed by valid records further than a window on.
 *   reset     one meta write is the commit: the log now begins where the old
 *             one ended, with seq next_seq; the old records are dead (readers
 *             and recovery start at the new beginning; recovery deletes the
 *             segments before it). */
static void plg__op_restart(plg_log *L, uint64_t g, uint32_t off, uint64_t last) {
    plg__tail_clear(L);
    L->g_fill = L->g_sub = L->g_free = L->g_synced = g;
    L->fill_off = L->partial_off = off;
    L->slot_end[g % L->S] = last;
    L->fill_end_seq = last;
    L->cseq = last + 1;
    L->oldest_ns = 0;
    plg__store_rel(&L->written, last);
    plg__store_rel(&L->durable, last);
    if (L->live) plg__store_rel(&L->live->durable, last);   /* tailing readers: may go down */
    uint32_t old = L->epoch;
    while (L->epoch == old || L->epoch == 0)
        if (plg_random(&L->epoch, sizeof L->epoch)) L->epoch = old + 1;
    L->epoch_start = 1; L->short_g = UINT64_MAX;
    plg__wake_waiters(L);
}

static int plg__op_reset(plg_log *L, uint64_t next_seq) {
    uint64_t g = L->g_fill; uint32_t off = L->fill_off;
    plg__meta m = L->meta;
    m.base_seg = g / L->D + 1; m.base_g = g; m.base_off = off; m.base_seq = next_seq;
    m.mark = next_seq - 1; m.clean = 0;
    if (L->cseq - 1 > m.stale) m.stale = L->cseq - 1;   /* the old records stay on disk past the base */
    int rc = plg__meta_put(L->meta_fd, &m);
    if (rc) return rc;
    L->meta.gen = m.gen; L->meta.clean = 0;           /* field by field: plg_get_stats reads the mark */
    L->meta.base_seg = m.base_seg; L->meta.base_g = m.base_g; L->meta.base_off = off; L->meta.base_seq = next_seq;
    L->meta.stale = m.stale;
    plg__store_rlx(&L->meta.mark, m.mark);
    if (L->live) __atomic_fetch_add(&L->live->resets, 1ull, __ATOMIC_SEQ_CST);   /* readers read the meta file again */
    plg__op_restart(L, g, off, next_seq - 1);
    return 0;
}

static int plg__op_truncate(plg_log *L, uint64_t seq) {
    if (seq >= L->cseq - 1) return 0;                 /* nothing after seq; all of it durable */
    plg_reader *r;
    int rc = plg__reader_open(&r, L->path, NULL, NULL, 0, &L->keys);   /* the caller's keys were for plg_open only */
    if (rc) return rc;
    rc = plg__seek(r, seq + 1, 1);
    uint64_t g = r->s.g; uint32_t off = r->s.off;
    int all = 0;
    if (rc == PLG_ENOENT) {                           /* seq is before the oldest record kept */
        plg_record rec;
        plg__scan_restart(&r->s, (r->s.seg_first - 1) * r->s.D);
        plg__scan_begin(&r->s);
        int n = plg__scan_next(&r->s, &rec);
        all = n == 0 || (n == 1 && rec.seq > seq);
        rc = all ? 0 : PLG_ENOENT;
    }
    if (!rc && !all && seq > 0) {
        /* Go on right after record seq, on its page. Record seq + 1 may have
         * started the next page (it came while seq's page was in flight):
         * going on there, behind the gap, puts the new incarnation's first
         * record (EPOCH_START) where the reader's skip rule does not follow,
         * and every record appended after the truncation is lost to readers.
         * seq below the oldest record kept: its successor's place, as before. */
        plg_record rec;
        int k = plg__seek(r, seq, 1);
        if (k == 0 && plg__scan_next(&r->s, &rec) == 1 && rec.seq == seq) { g = r->s.g; off = r->s.off; }
        else if (k < 0 && k != PLG_ENOENT) rc = k;
    }
    plg_reader_close(r);
    if (rc) return rc;
    if (all) return plg__op_reset(L, seq + 1);
    if (L->meta.mark > seq || L->meta.stale < L->cseq - 1) {   /* first: never claim what is erased next */
        plg__meta m = L->meta;
        if (m.mark > seq) m.mark = seq;
        m.clean = 0;
        if (m.stale < L->cseq - 1) m.stale = L->cseq - 1;       /* records past seq may survive a crash */
        rc = plg__meta_put(L->meta_fd, &m);
        if (rc) return rc;
        L->meta.gen = m.gen; L->meta.clean = 0; L->meta.stale = m.stale;
        plg__store_rlx(&L->meta.mark, m.mark);
    }
    rc = plg__prepare_tail(L, g, off, L->g_fill + 1);
    if (rc) return rc;
    plg__op_restart(L, g, off, seq);
    if (g / L->D + 1 != L->cur_seg) rc = plg__switch_segment(L, g / L->D + 1);
    return rc;
}

static void plg__op_run(plg_log *L) {
    pthread_mutex_lock(&L->op_mu);
    int kind = L->op_kind; uint64_t arg = L->op_arg;
    pthread_mutex_unlock(&L->op_mu);
    plg__tail_clear(L);                               /* pages change outside the writes */
    int rc = kind == 1 ? plg__op_truncate(L, arg) : plg__op_reset(L, arg);
    if (rc) plg__poison(L, rc, errno);                /* the files are in an unknown state: stop */
    pthread_mutex_lock(&L->op_mu);
    L->op_rc = rc; L->op_done = 1;
    plg__store_rel(&L->op_req, 0);
    pthread_cond_broadcast(&L->op_cv);
    pthread_mutex_unlock(&L->op_mu);
}

static int plg__op_call(plg_log *L, int kind, uint64_t arg) {
    int rc = plg_error(L);
    if (rc) return rc;
    if (L->rc->pend_open) return PLG_EBUSY;
    if (L->synchronous) return PLG_EINVAL;     /* no writer thread to run it */
    pthread_mutex_lock(&L->op_mu);
    L->op_kind = kind; L->op_arg = arg; L->op_done = 0; L->op_rc = 0;
    plg__store_rel(&L->op_req, 1);
    plg__kick_wake(L);
    while (!L->op_done && !plg_error(L)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 10000000;
        if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
        pthread_cond_timedwait(&L->op_cv, &L->op_mu, &ts);
    }
    rc = L->op_done ? L->op_rc : plg_error(L);
    plg__store_rel(&L->op_req, 0);
    pthread_mutex_unlock(&L->op_mu);
    if (!rc) plg__store_rlx(&L->rc->next_seq, L->cseq);   /* the writer is idle: the ring is empty */
    return rc;
}

PLGDEF int plg_truncate(plg_log *L, uint64_t seq) {
    if (!L || seq > plg_appended(L)) return PLG_EINVAL;
    return plg__op_call(L, 1, seq);
}

PLGDEF int plg_reset(plg_log *L, uint64_t next_seq) {
    if (!L || next_seq == 0 || next_seq == UINT64_MAX) return PLG_EINVAL;
    return plg__op_call(L, 2, next_seq);
}

PLGDEF int plg_settle(const char *path, int64_t timeout_ns) {
    if (!path) return PLG_EINVAL;
    return plg__settle(path, timeout_ns < 0 ? UINT64_MAX : plg_now_ns() + (uint64_t)timeout_ns);
}

PLGDEF int plg_check(const char *path, plg_check_result *out) { return plg_check_key(path, NULL, out); }

PLGDEF int plg_check_key(const char *path, const uint8_t *key, plg_check_result *out) {
    return plg_check_keys(path, &key, key ? 1 : 0, out);
}

PLGDEF int plg_check_keys(const char *path, const uint8_t *const *keys, size_t n, plg_check_result *out) {
    plg__scan s;
    memset(out, 0, sizeof *out);
    if (n > PLG_MAX_KEYS || (n && !keys)) return out->status = PLG_EINVAL;
    for (size_t i = 0; i < n; i++) if (!keys[i]) return out->status = PLG_EINVAL;
    int rc = plg__scan_open(&s, path, NULL, 0, keys, n, NULL);
    if (!rc) {
        plg_record rec;
        while ((rc = plg__scan_next(&s, &rec)) == 1) {}
    }
    out->records = s.records; out->first_seq = s.first_seq; out->last_seq = s.last_seq;
    out->bytes = s.bytes; out->torn_tail = s.torn; out->status = rc;
    out->segments = s.seg_last >= s.seg_first && s.seg_last ? s.seg_last - s.seg_first + 1 : 0;
    out->first_segment = out->segments ? s.seg_first : 0;
    if (s.dir) {
        plg__strlcpy(out->file, s.where_file, sizeof out->file);
        out->offset = plg__scan_where_off(&s);
    }
    plg__strlcpy(out->detail, s.detail, sizeof out->detail);
    plg__scan_close(&s);
    return rc;
}

#endif /* PICOLOG_IMPLEMENTATION_DONE */
#endif /* PICOLOG_IMPLEMENTATION */

/*
MIT License

Copyright (c) 2026 the picolog authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of
the Software, and to permit persons to whom the Software is furnished to do so,
subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS
FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR
COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER
IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
*/

/* ======================================================================== */
/* C++: RAII handles and errors as values (C++11 or later). plg::log and
 * plg::reader own their C handle and close it when they go out of scope;
 * every call that can fail returns a plg::result<T>: the value, or the
 * PLG_E* code (no exceptions). The C API stays available through get().
 *
 *     auto lg = plg::log::open("trades.plg");
 *     if (!lg) { std::fprintf(stderr, "%s\n", lg.message()); return 1; }
 *     auto seq = lg->append(trade);                  // result<uint64_t>
 *     if (auto slot = lg->reserve<Trade>()) {        // zero-copy, typed
 *         (*slot)->price = 100; auto s = lg->commit();
 *     }
 *     auto rd = plg::reader::open("trades.plg");
 *     plg_record rec;
 *     while (rd && rd->next(rec).value()) use(rec);
 */
#if defined(__cplusplus) && !defined(PICOLOG_CXX_DONE)
#define PICOLOG_CXX_DONE
#include <new>
#include <type_traits>
#include <utility>
namespace plg {
/* The value, or a negative error code. value() of an error is a
 * default-constructed T: check ok() (or the bool conversion) first. Errors
 * says whose codes they are: a struct with static const char *message(int)
 * (pinnacle_persist.h uses this template with its own pp_strerror). */
template <class T, class Errors> class basic_result {
public:
    basic_result(T v) : v_(std::move(v)), err_(0) {}  /* NOLINT: implicit on purpose */
    static basic_result failure(int err) { basic_result r; r.err_ = err; return r; }
    bool ok() const { return err_ == 0; }
    explicit operator bool() const { return err_ == 0; }
    int error() const { return err_; }
    const char *message() const { return Errors::message(err_); }
    T &value() & { return v_; }
    const T &value() const & { return v_; }
    T &&value() && { return std::move(v_); }
    T value_or(T alt) const { return err_ ? alt : v_; }
    T *operator->() { return &v_; }
    const T *operator->() const { return &v_; }
    T &operator*() & { return v_; }
private:
    basic_result() : v_(), err_(0) {}
    T v_;
    int err_;
};
template <class Errors> class basic_result<void, Errors> {
public:
    basic_result() : err_(0) {}
    static basic_result failure(int err) { basic_result r; r.err_ = err; return r; }
    bool ok() const { return err_ == 0; }
    explicit operator bool() const { return err_ == 0; }
    int error() const { return err_; }
    const char *message() const { return Errors::message(err_); }
private:
    int err_;
};
struct plg_errors { static const char *message(int err) { return plg_strerror(err); } };
/* The value, or a negative PLG_E* code. */
template <class T> using result = basic_result<T, plg_errors>;
inline result<void> status(int rc) { return rc < 0 ? result<void>::failure(rc) : result<void>(); }

class log {
public:
    log() noexcept : h_(nullptr) {}
    explicit log(plg_log *h) noexcept : h_(h) {}
    log(log &&o) noexcept : h_(o.h_) { o.h_ = nullptr; }
    log &operator=(log &&o) noexcept { if (this != &o) { close(); h_ = o.h_; o.h_ = nullptr; } return *this; }
    log(const log &) = delete;
    log &operator=(const log &) = delete;
    ~log() { close(); }

    static result<log> open(const plg_config &cfg) {
        plg_log *h = nullptr;
        int rc = plg_open(&h, &cfg);
        return rc ? result<log>::failure(rc) : result<log>(log(h));
    }
    static result<log> open(const char *path) {
        plg_config cfg;
        std::memset(&cfg, 0, sizeof cfg);
        cfg.path = path;
        return open(cfg);
    }
    result<uint64_t> append(const void *data, uint32_t len) { return seq(plg_append(h_, data, len)); }
    template <class T> result<uint64_t> append(const T &v) {
        static_assert(std::is_trivially_copyable<T>::value, "plg::log::append<T> needs a trivially copyable T");
        return append(&v, (uint32_t)sizeof(T));
    }
    /* Zero-copy: a T-sized slot in the ring (8-byte aligned), published by commit(). */
    template <class T> result<T *> reserve() {
        static_assert(std::is_trivially_copyable<T>::value && std::is_trivially_destructible<T>::value,
                      "plg::log::reserve<T> needs a trivially copyable T");
        static_assert(alignof(T) <= 8, "plg::log::reserve<T>: ring slots are 8-byte aligned");
        void *p = plg_reserve(h_, (uint32_t)sizeof(T));
        if (!p) return result<T *>::failure(plg_reserve_error(h_));
        return result<T *>(::new (p) T);
    }
    result<void *> reserve(uint32_t len) {
        void *p = plg_reserve(h_, len);
        return p ? result<void *>(p) : result<void *>::failure(plg_reserve_error(h_));
    }
    result<uint64_t> commit() { return seq(plg_commit(h_)); }
    uint64_t appended() const { return plg_appended(h_); }
    uint64_t written() const { return plg_written(h_); }
    uint64_t durable() const { return plg_durable(h_); }
    result<void> wait(uint64_t s, int64_t timeout_ns) { return status(plg_wait(h_, s, timeout_ns)); }
    result<void> release_before(uint64_t s) { return status(plg_release(h_, s)); }
    int error() const { return plg_error(h_); }
    /* 0 (ok) means everything appended is durable; closing twice is a no-op. */
    result<void> close() {
        if (!h_) return result<void>();
        int rc = plg_close(h_);
        h_ = nullptr;
        return status(rc);
    }
    plg_log *get() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != nullptr; }
private:
    static result<uint64_t> seq(int64_t s) { return s < 0 ? result<uint64_t>::failure((int)s) : result<uint64_t>((uint64_t)s); }
    plg_log *h_;
};

class reader {
public:
    reader() noexcept : h_(nullptr) {}
    reader(reader &&o) noexcept : h_(o.h_) { o.h_ = nullptr; }
    reader &operator=(reader &&o) noexcept { if (this != &o) { close(); h_ = o.h_; o.h_ = nullptr; } return *this; }
    reader(const reader &) = delete;
    reader &operator=(const reader &) = delete;
    ~reader() { close(); }
    static result<reader> open(const char *path, const uint8_t *key = nullptr) {   /* key: an encrypted log's */
        plg_reader *h = nullptr;
        int rc = plg_reader_open_key(&h, path, key);
        if (rc) return result<reader>::failure(rc);
        reader r; r.h_ = h;
        return result<reader>(std::move(r));
    }
    /* An encrypted log whose key was rotated: every key its segments need. */
    static result<reader> open(const char *path, const uint8_t *const *keys, size_t n) {
        plg_reader *h = nullptr;
        int rc = plg_reader_open_keys(&h, path, keys, n);
        if (rc) return result<reader>::failure(rc);
        reader r; r.h_ = h;
        return result<reader>(std::move(r));
    }
    /* true: rec is the next record (valid until the next call); false: end of the valid log. */
    result<bool> next(plg_record &rec) {
        int rc = plg_reader_next(h_, &rec);
        return rc < 0 ? result<bool>::failure(rc) : result<bool>(rc == 1);
    }
    /* The next record as a T (PLG_ETYPE if its length is not sizeof(T)); false at the end. */
    template <class T> result<bool> next(T &out, uint64_t *seq_out = nullptr) {
        plg_record rec;
        result<bool> r = next(rec);
        if (!r || !r.value()) return r;
        if (logger<T>::get(rec, out) != 0) return result<bool>::failure(PLG_ETYPE);
        if (seq_out) *seq_out = rec.seq;
        return r;
    }
    result<void> seek(uint64_t seq) { return status(plg_reader_seek(h_, seq)); }
    void close() { if (h_) plg_reader_close(h_); h_ = nullptr; }
    plg_reader *get() const noexcept { return h_; }
private:
    plg_reader *h_;
};
} /* namespace plg */
#endif /* __cplusplus */
