/* SPDX-License-Identifier: MIT */
/* pinnacle_persist.h - v0.2.0 - order-book persistence for trading engines
 *
 * Gives every instrument of a matching engine or market maker a durable
 * memory: a journal of order events (add, cancel, execute, modify), the
 * active orders at every sequence number, point-in-time snapshots with
 * rotation, journal compaction, and recovery of every instrument at start-up.
 * The trading thread pays a validation lookup, a CRC32C and two 48-byte
 * memcpys per event: no syscall, no lock, no allocation (in the steady state:
 * see expected_orders and ring_entries). Built on picolog.h
 * (CRC32C, durable file primitives, and the strict journal backend).
 *
 * DO THIS in exactly one C or C++ file, before any other #include:
 *
 *     #define PINNACLE_PERSIST_IMPLEMENTATION
 *     #include "pinnacle_persist.h"      // also compiles picolog's implementation
 *
 * and link with -luring -lpthread. Other files just #include "pinnacle_persist.h".
 * picolog's implementation comes with it (defining PICOLOG_IMPLEMENTATION as
 * well in that file is harmless); if another file of yours already compiles
 * picolog's implementation, define PINNACLE_PERSIST_NO_PICOLOG_IMPLEMENTATION.
 *
 *     pp_config cfg = {0};  cfg.data_dir = "/var/lib/engine";   // zero = defaults
 *     pp_store *st;  pp_book *b;
 *     if (pp_open(&st, &cfg) != 0) ...            // locks and recovers every instrument
 *     pp_book_open(st, "BTC-USD", &b);             // recovered, or new
 *     pp_order o = {.id = 42, .price = 6500000, .qty = 10, .ts_ns = now_ns, .side = PP_BUY};
 *     if (pp_add(b, &o) != 0) ...                  // hot path: validated, journaled, seq = pp_last_seq(b)
 *     pp_execute(b, 42, 4, 6500000);               // partial fill; at qty 0 the order leaves
 *     pp_batch_begin(b); pp_add(b, &taker); pp_execute(b, 42, 6, 6500000);
 *     pp_batch_commit(b);                          // a match: recovered all or none (format 2)
 *     pp_sync(b);                                  // everything so far survives power loss
 *     if (pp_durable(b) >= seq) confirm(...);      // or: acknowledge on the background sync
 *     pp_wait(b, seq, 1000000);                    // or: block up to 1 ms for it (PP_ETIMEDOUT)
 *     pp_orders(b, visit, ctx);                    // the active orders, in price-time priority
 *     pp_top(b, &bid, &ask);                       // best bid/ask: price, total qty, orders
 *     pp_close(st);
 *
 * ARCHITECTURE
 *   hot path   (one thread per book) validates the event against a compact
 *              index id -> remaining qty (unknown order, duplicate id,
 *              overfill, bad side/qty: an error, nothing journaled), encodes a
 *              48-byte entry {crc, type, side, len, seq, id, price, qty, ts},
 *              copies it into the journal mapping and into an in-memory SPSC
 *              event ring, and publishes both with release stores.
 *   grower     (one background thread per store) grows each journal file
 *              ahead of the writer in preallocated chunks, pages faulted in.
 *   syncer     (one background thread per store) msyncs (a ranged fdatasync
 *              on Linux) the new entries every journal_sync_interval_ms, then
 *              a durable mark; pp_durable() moves. The whole pages it writes
 *              back leave the mapping first (no TLB shootdown per page; see
 *              pp__sj_flush_seg). With PP_PRIVATE_PAGES
 *              (format 2) it copies them from private pages into the file
 *              (pwrite + fdatasync) instead.
 *   maintainer (one background thread per store) drains each event ring into
 *              the book's shadow (the full active-order state, kept off the
 *              trading thread), takes a snapshot every snapshot_interval_min,
 *              rotates them, and compacts journals above compaction_threshold.
 *              With PP_NO_THREADS none of the three runs: their work happens
 *              on the caller's calls (pp_sync, pp_wait, the readers,
 *              pp_snapshot, pp_compact, and the hot path when it runs out of
 *              room).
 *   on disk    <data_dir>/LOCK; a new store (format 2): one journal
 *              <data_dir>/journal/ for every instrument (mmap mode: segment
 *              files; strict mode: one picolog log), the catalog
 *              instruments.ppc, books/<name>/snapshots/<seq>.pps, retired.ppr
 *              (pp_book_retire); history moves to archive_dir if set (in
 *              strict mode picolog moves the log's released segments). With
 *              PP_LEGACY_LAYOUT or in a 0.2.0 store: per
 *              instrument <data_dir>/<name>/journal/ (mmap segments) or
 *              .../strict/ (a picolog log), and .../snapshots/<seq>.pps.
 *              Format: docs/pinnacle-format.md.
 *   market data  pp_tick_append journals a feed tick as one frame of the store
 *              journal (format 2; three entries of the book's journal in the
 *              per-instrument layout), duplicates refused, gaps journaled; the
 *              maintainer keeps last tick, raw ticks, 1 s/1 min bars and gaps,
 *              saved with each snapshot as md/<seq>.ppm; pp_conn_put/get keep
 *              named connection-state blobs in <data_dir>/.conn/.
 *   recovery   newest valid snapshot (older ones if it is corrupt), then the
 *              journal entries after it; a torn tail is truncated; corruption
 *              below the durable mark fails closed with file and offset.
 *
 * DURABILITY MODES (pp_config.mode)
 *   PP_JOURNAL_MMAP    default. An event survives a process crash as soon as
 *                      pp_add & co. return (it is in the page cache). It
 *                      survives power loss once pp_durable(b) >= its seq: the
 *                      syncer gets there within journal_sync_interval_ms, and
 *                      pp_sync() gets there at once.
 *   PP_JOURNAL_STRICT  each event goes through a picolog log (O_DIRECT, its
 *                      sync_mode, group commit): pp_durable() follows picolog's
 *                      durable mark within microseconds to a millisecond, and
 *                      pp_sync() waits for it. Needs a filesystem with O_DIRECT
 *                      unless strict_log->io_mode says otherwise. Format 2: ONE
 *                      log for the whole store; the writers' frames are in
 *                      anonymous memory until the syncer (every 20 us) hands
 *                      them to picolog, so a process crash loses what was not
 *                      durable yet (as power loss does; never what pp_durable
 *                      covered). The per-instrument layout: a log per book.
 *
 * THREADS  Events of one book come from one thread at a time (different books
 *   may be fed by different threads). pp_book_open may be called from any
 *   thread, also for the same new instrument at once (both get one book). pp_sync, pp_snapshot, pp_orders,
 *   pp_durable, pp_last_seq and pp_get_stats may be called from any thread.
 *   pp_top, pp_depth, pp_find, pp_wait and pp_journal_open too. A pp_orders visitor runs after the
 *   shadow lock is let go (on a copy), so it may journal on the same book.
 *
 * COMPILE-TIME OPTIONS
 *   PINNACLE_PERSIST_STATIC      every function static
 *   PINNACLE_PERSIST_MALLOC/REALLOC/FREE  allocator override (all or none)
 *   PINNACLE_PERSIST_ASSERT(x)   assert override (default: assert)
 *   PINNACLE_PERSIST_NO_PICOLOG_IMPLEMENTATION  picolog's implementation is
 *                                compiled elsewhere
 *
 * CONTENTS
 *   errors, config, order, stats, API ...... public declarations below
 *   >>util >>maps >>entry >>segments >>sync >>shadow >>snapshot >>recovery
 *   engine API (pp_top, pp_depth, pp_wait, pp_apply, pp_journal_*) ... declarations after pp_list
 *   market data (ticks, bars, gaps, connection state) ... declarations after pp_check
 *   >>views >>compaction >>threads >>api >>engine >>reader >>marketdata >>check .... implementation (grep them)
 *
 * LICENSE: MIT, see the end of the file.
 */
#if defined(PINNACLE_PERSIST_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
#ifndef PINNACLE_PERSIST_H
#define PINNACLE_PERSIST_H

#if defined(PINNACLE_PERSIST_IMPLEMENTATION) && !defined(PINNACLE_PERSIST_NO_PICOLOG_IMPLEMENTATION) && \
    !defined(PICOLOG_IMPLEMENTATION)
#define PICOLOG_IMPLEMENTATION
#endif
#include "picolog.h"

#include <stddef.h>
#include <stdint.h>

#ifdef PINNACLE_PERSIST_STATIC
#define PPDEF static
#else
#define PPDEF extern
#endif

/* Version of this header (semantic versioning; CHANGELOG.md). pp_version()
 * gives the version of the compiled implementation. The three headers are
 * released together: this one needs the picolog.h of the same release. */
#define PP_VERSION_MAJOR 0
#define PP_VERSION_MINOR 2
#define PP_VERSION_PATCH 0
#define PP_VERSION (PP_VERSION_MAJOR * 10000 + PP_VERSION_MINOR * 100 + PP_VERSION_PATCH)
#define PP_VERSION_STRING "0.2.0"
#if !defined(PICOLOG_VERSION) || PICOLOG_VERSION != PP_VERSION
#error "pinnacle_persist.h needs the picolog.h of the same release (PICOLOG_VERSION == PP_VERSION)"
#endif

#ifdef __cplusplus
extern "C" {
#endif

PPDEF uint32_t pp_version(void);  /* PP_VERSION of the compiled implementation */
/* The errno behind this thread's last failed pp_open or pp_book_open (the
 * EACCES behind PP_EACCES, EMFILE behind PP_EMFILE, ENOTDIR behind PP_ESYS,
 * ...), as plg_open_errno is for plg_open. 0 after a successful one, or when
 * the error came from no system call (PP_ECORRUPT, PP_ENAME, ...). A strict
 * book's own picolog log: plg_open_errno(). */
PPDEF int      pp_open_errno(void);

/* Error codes: 0 is success, every error is negative. Stable numbers, in
 * -30299..-30201, outside errno's range (as LMDB's): picolog.h -301xx,
 * pinnacle_persist.h -302xx, vault.h -303xx, picolog_raft.h -304xx. */
#define PP_ERRORS(X) \
    X(PP_EINVAL,    -30201, "invalid argument") \
    X(PP_ECONFIG,   -30202, "invalid configuration value") \
    X(PP_ENOMEM,    -30203, "out of memory") \
    X(PP_EIO,       -30204, "I/O error: the book is poisoned and acknowledges nothing more") \
    X(PP_ENOSPC,    -30205, "no space left on device (a book that is journaling is poisoned by it)") \
    X(PP_ECORRUPT,  -30206, "corruption in the middle of a journal or in a snapshot (fail closed)") \
    X(PP_ELOCKED,   -30207, "the data directory is already open by another store") \
    X(PP_ENOENT,    -30208, "no such order or instrument") \
    X(PP_EEXIST,    -30209, "an active order with this id already exists") \
    X(PP_EOVERFILL, -30210, "fill larger than the order's remaining quantity") \
    X(PP_ENAME,     -30211, "invalid instrument name (empty, too long, '/', '..' or leading '.')") \
    X(PP_EFULL,     -30212, "strict journal ring full: event not journaled, retry") \
    X(PP_ESYS,      -30213, "system call failed") \
    X(PP_EFORMAT,   -30214, "not a pinnacle file, or an unsupported version") \
    X(PP_EMODE,     -30215, "instrument was created in the other journal mode") \
    X(PP_ELOG,      -30216, "the strict-mode picolog log failed (see the log message)") \
    X(PP_ECLOSED,   -30217, "the store is closing") \
    X(PP_EDUP,      -30218, "duplicate tick: exchange seq at or below the last journaled one (not journaled)") \
    X(PP_EACCES,    -30219, "permission denied, or a read-only filesystem") \
    X(PP_EMFILE,    -30220, "too many open files (the process or system file-descriptor limit)") \
    X(PP_ETIMEDOUT, -30221, "timed out before the event became durable (pp_wait)") \
    X(PP_ETOOBIG,   -30222, "the batch is full (PP_BATCH_MAX events, or 16 KiB of events and payloads): this one was not added") \
    X(PP_ENOTSUP,   -30223, "not supported by this store's layout or mode (atomic batches: format 2 only)") \
    X(PP_ERETIRED,  -30224, "the instrument was retired (pp_book_retire): not recovered, not created again") \
    X(PP_EBUSY,     -30225, "the book is in use (a batch is open on it): not retired") \
    X(PP_ENEEDKEY,  -30226, "the store is encrypted: its data key is needed (pp_config.encrypt_key)") \
    X(PP_EKEY,      -30227, "wrong data key: the store's files are sealed under another key") \
    X(PP_EPLAIN,    -30228, "a data key was given, but the store is not encrypted")

enum {
#define PP__ENUM(name, val, msg) name = (val),
    PP_OK = 0,
    PP_ERRORS(PP__ENUM)
#undef PP__ENUM
};

enum pp_side { PP_BUY = 1, PP_SELL = 2 };
enum pp_mode { PP_JOURNAL_MMAP = 0, PP_JOURNAL_STRICT = 1 };
enum pp_flags {
    PP_NO_AUTO_SNAPSHOT = 1u << 0,   /* no periodic snapshots (pp_snapshot still works) */
    PP_NO_AUTO_COMPACT  = 1u << 1,   /* no background compaction (pp_compact still works) */
    /* Format 2 (mmap mode): one journal for the whole store
     * (<data_dir>/journal/), shared by every instrument; an idle instrument
     * costs a few KiB, no thread, no file descriptor. The layout of every
     * new store in mmap mode; the flag asks for it explicitly (an old store
     * is then refused with PP_EFORMAT instead of opened in its layout). A
     * store created so is always opened so (the STORE file says it). See
     * docs/pinnacle-format.md. */
    PP_STORE_JOURNAL    = 1u << 2,
    /* A new store gets the per-instrument layout of 0.2.0 (a journal per
     * instrument) instead of format 2. An existing store opens in its own
     * layout whatever the flags. Strict mode always uses it in this release. */
    PP_LEGACY_LAYOUT    = 1u << 8,
    /* pp_open opens every healthy instrument and sets the damaged ones aside
     * (pp_quarantined lists them; their pp_book_open returns their error)
     * instead of failing the whole store. Nothing is deleted or rewritten.
     * Format 2: an instrument whose snapshots or market data do not load,
     * or whose journal frames (valid ones: checksums hold) do not fit it,
     * is set aside, and the store keeps its whole journal while one is
     * (no compaction); damage in the journal itself cannot be pinned on one
     * instrument (any book's frames may have been there), so it still fails
     * the store (see pp_quarantined; pp_inspect --fix). */
    PP_OPEN_QUARANTINE = 1u << 9,
    /* Prices of adds, modifies and executions may be 0 or negative (spreads,
     * some futures and options). Without it such a price is PP_EINVAL and
     * nothing is journaled (recovery still replays them from old journals). */
    PP_ALLOW_NONPOSITIVE_PRICES = 1u << 10,
    /* pp_open starts none of the store's three background threads (grower,
     * syncer, maintainer): their work happens on the caller's calls only.
     * Durability through pp_sync, pp_snapshot and pp_close (pp_durable does
     * not move by itself; pp_wait runs sync rounds itself until the seq is
     * durable or its timeout passes, at least one round). The shadow is
     * caught up by the calls that read it (pp_orders, pp_find, pp_top,
     * pp_depth, pp_order_count, pp_snapshot, the market-data queries) and by
     * the hot path when the ring (format 2: the window of mapped journal
     * segments) is full. Journal space is allocated and segments created by
     * the hot path when it needs them. No periodic snapshots or compaction:
     * pp_snapshot and pp_compact when the program wants them (pp_close still
     * takes its closing snapshot unless PP_NO_AUTO_SNAPSHOT). For engines
     * that run upkeep on a thread of their own, and for tests and fuzzers
     * that open many short-lived stores. Both layouts; in strict mode the
     * picolog log (format 2: the store's one log; per-instrument layout:
     * each book's) keeps its own writer thread (picolog's, not the
     * store's), and pp_sync hands the frames to it and waits. */
    PP_NO_THREADS = 1u << 11,
    /* Format 2: the journal's pages are the process's private memory
     * (MAP_PRIVATE) until the syncer copies them into the file (pwrite,
     * fdatasync), instead of a shared mapping the kernel writes back. The
     * trading thread then never takes a write-protect fault or a TLB
     * shootdown from writeback, and a full disk is PP_ENOSPC from the syncer
     * rather than a SIGBUS on the hot path (docs/performance.md has what it
     * gains). What it gives up: a process crash (SIGKILL, a segfault) loses
     * the events not yet synced, as power loss does; nothing pp_durable
     * covered is ever lost, in either mode. Without the flag an event
     * survives a process crash as soon as its call returns. Per open; the
     * files are the same either way. Ignored by the per-instrument layout and
     * strict mode. */
    PP_PRIVATE_PAGES = 1u << 12
};
enum pp_event_type { PP_EV_ADD = 1, PP_EV_CANCEL = 2, PP_EV_EXECUTE = 3, PP_EV_MODIFY = 4 };

#define PP_MAX_NAME 64   /* longest instrument name, bytes */

typedef struct pp_config {
    const char *data_dir;              /* created if missing */
    uint32_t journal_sync_interval_ms; /* background msync+fdatasync period; default 10, max 60000 */
    uint32_t snapshot_interval_min;    /* periodic snapshot per book; default 5, max 10080 */
    uint32_t keep_snapshots;           /* snapshots kept per book; default 3, max 1000 */
    uint64_t compaction_threshold;     /* journal bytes that trigger compaction; default 256 MiB, min 64 KiB */
    /* beyond the original design */
    int      mode;                     /* enum pp_mode */
    uint32_t flags;                    /* enum pp_flags */
    uint32_t snapshot_interval_ms;     /* if nonzero, overrides snapshot_interval_min (tests, demos) */
    uint64_t journal_chunk_bytes;      /* file growth step, multiple of 4 KiB; default 8 MiB */
    uint64_t journal_segment_bytes;    /* largest segment (virtual reservation); default 1 GiB */
    uint32_t expected_orders;          /* initial index capacity per book; default 65536 (format 2: unset = start at 8 and grow) */
    uint32_t ring_entries;             /* hot path -> shadow ring, power of two; default 262144 */
    const plg_config *strict_log;      /* strict mode: template for the store's picolog log (per-instrument layout: each book's); path ignored; format 2 needs ring_capacity >= 128 KiB */
    void   (*log_fn)(void *user, int code, const char *msg);  /* diagnostics; NULL: stderr */
    void    *log_user;
    /* the engine's clock, ns: the timestamp of cancels, executions and
     * modifies (pp_add journals the order's ts_ns). NULL: CLOCK_REALTIME,
     * read from the TSC when the kernel's clocksource is the TSC and the
     * maintainer thread runs (it renews the anchor every millisecond; a
     * third of the cost of clock_gettime in a VM), else clock_gettime. */
    uint64_t (*clock_ns)(void *user);
    void    *clock_user;
    /* Format 2: where history goes instead of being deleted. NULL or "":
     * compaction deletes the journal segments no book needs and rotation
     * the snapshots past keep_snapshots (as before). Set: they are moved to
     * <archive_dir>/journal/ and <archive_dir>/books/<name>/ (renamed on
     * one filesystem, else copied, fsynced and renamed there before the
     * original goes), pp_journal_open reads the archived segments before
     * the live ones, and pp_book_retire moves a retired book's files there.
     * Not the data directory nor inside it. Strict mode: picolog moves the
     * segments of the store's log that compaction releases to
     * <archive_dir>/journal/ (plg_config.archive_dir) instead of reusing
     * them, and the readers read them first (plg_reader_open_archive). The
     * per-instrument layout (PP_LEGACY_LAYOUT, a 0.2.0 store) has no
     * archive: pp_open returns PP_ENOTSUP when it is set. */
    const char *archive_dir;
    /* Called first in each background thread the store starts, in that
     * thread, with its name ("pp-sync", "pp-grow", "pp-maint"): to pin it
     * to a core (so that it never takes the trading thread's), lower its
     * priority, or register it with a profiler. Not called with
     * PP_NO_THREADS. Strict mode's picolog writers are picolog's own (see
     * strict_log's PLG_PIN_WRITER). NULL: nothing. */
    void   (*thread_start)(void *user, const char *name);
    void    *thread_user;
    /* Encryption at rest (docs/encryption.md, "pinnacle: an encrypted
     * store"): 32 bytes, the current data key. The journal (the store's
     * picolog log, sealed by picolog's writer thread), snapshots, market-data
     * state and specs and pp_conn_put blobs (sealed by the thread that writes
     * them) are encrypted and authenticated (AES-256-CBC + HMAC-SHA256,
     * vault.h's), never on the trading thread. Needs strict mode on format
     * 2 (PP_ENOTSUP otherwise: the mmap journal is the trading thread's own
     * memory) and an implementation compiled with PICOLOG_ENCRYPT
     * (PP_ENOTSUP otherwise). A store is created encrypted or plain and stays
     * so: without the key it is PP_ENEEDKEY, with another key PP_EKEY, a key
     * for a plain store PP_EPLAIN. old_keys: keys of a rotation still in use
     * (read only; new files are sealed under encrypt_key). Read during
     * pp_open only; strict_log's own keys must stay unset (PP_ECONFIG). */
    const uint8_t *encrypt_key;
    const uint8_t *const *old_keys;
    size_t n_old_keys;
} pp_config;

typedef struct pp_order {
    uint64_t id;       /* nonzero, unique among the book's active orders */
    int64_t  price;    /* ticks */
    int64_t  qty;      /* lots remaining, > 0 */
    uint64_t ts_ns;    /* the engine's timestamp, stored as given */
    uint8_t  side;     /* PP_BUY or PP_SELL */
    uint64_t seq;      /* out: seq of the add, or of the modify that reset its priority; pp_add ignores it */
    /* out (pp_orders, pp_find; format 2): the payload its add carried (pp_event.payload), NULL/0 if none.
     * pp_orders: valid during the visit; pp_find: until this thread's next pp_find. pp_add ignores them. */
    const void *payload;
    uint32_t payload_len;
} pp_order;

typedef struct pp_stats {
    uint64_t last_seq, durable_seq, applied_seq;   /* journaled >= durable; journaled >= applied (shadow) */
    uint64_t active_orders;
    uint64_t journal_bytes, journal_segments, journal_first_seq;
    uint64_t syncs, snapshots, last_snapshot_seq, oldest_snapshot_seq;
    uint64_t compactions, segments_deleted, rolls;  /* format 2: the store journal's, rolls = segments it started */
    uint64_t ring_full_stalls;      /* hot path drained the ring itself (the maintainer lagged) */
    uint64_t store_flushes, store_rounds;  /* format 2: device flushes and sync rounds of the whole store */
    uint64_t grow_stalls;           /* hot path grew the journal file itself (the syncer lagged) */
    int      error;                 /* 0, or what poisoned the book */
} pp_stats;

/* What pp_check found in one instrument (the inspect tool; read-only). */
typedef struct pp_check_result {
    int      mode;                  /* enum pp_mode */
    int      status;                /* 0 = recoverable (maybe a torn tail), or < 0 */
    uint64_t snapshots, snapshots_corrupt, newest_snapshot_seq, oldest_snapshot_seq, snapshot_orders;
    uint64_t segments, journal_first_seq, journal_last_seq, journal_bytes, durable_mark_seq;
    int      torn_tail;             /* bytes after the valid end would be discarded */
    char     file[4096];            /* where the corruption (or the torn tail) is */
    uint64_t offset;
    char     detail[256];
} pp_check_result;

typedef struct pp_store pp_store;
typedef struct pp_book pp_book;

/* >>api */
PPDEF pp_config pp_config_defaults(const pp_config *cfg);  /* cfg with defaults filled in */
PPDEF int      pp_open(pp_store **out, const pp_config *cfg);
PPDEF int      pp_close(pp_store *s);                       /* 0: everything journaled is durable */
PPDEF int      pp_book_open(pp_store *s, const char *instrument, pp_book **out);
PPDEF int      pp_books(pp_store *s, int (*visit)(const char *instrument, pp_book *b, void *ctx), void *ctx);
/* An expired instrument leaves the store (format 2; the per-instrument
 * layout: PP_ENOTSUP). The caller has stopped feeding the book (no call on
 * it in flight, none after); an open batch is PP_EBUSY. The book's journal
 * is made durable, then the retirement is recorded durably (retired.ppr,
 * replaced atomically: the commit point): a crash before it leaves the book
 * as it was, after it the book is gone. From then on pp_open does not
 * recover it, pp_book_open of its name is PP_ERETIRED (a name is never
 * reused: its archived history keeps it), the book's handle refuses events
 * with PP_ERETIRED (its memory stays valid until pp_close), pp_books no
 * longer lists it, and its journal frames pin nothing: compaction moves
 * them on. Its snapshots and market-data files go to
 * <archive_dir>/books/<name>/ (deleted without an archive); a crash in the
 * middle of that is finished by the next pp_open, or by calling
 * pp_book_retire again (a retired name: 0). pp_journal_open of a retired
 * name still reads its history (archive and live journal). PP_ENOENT: no
 * such instrument. */
PPDEF int      pp_book_retire(pp_store *s, const char *instrument);
PPDEF int      pp_valid_name(const char *instrument);       /* 0 or PP_ENAME */

PPDEF int      pp_add(pp_book *b, const pp_order *o);
PPDEF int      pp_cancel(pp_book *b, uint64_t order_id);
PPDEF int      pp_execute(pp_book *b, uint64_t order_id, int64_t qty, int64_t price);
PPDEF int      pp_modify(pp_book *b, uint64_t order_id, int64_t price, int64_t qty);

PPDEF int      pp_sync(pp_book *b);                         /* journal durable up to pp_last_seq now */
PPDEF int      pp_snapshot(pp_book *b);                     /* point-in-time snapshot now */
PPDEF int      pp_compact(pp_book *b);                      /* compaction now (whatever the threshold) */
PPDEF int      pp_orders(pp_book *b, int (*visit)(const pp_order *o, void *ctx), void *ctx);
PPDEF int      pp_find(pp_book *b, uint64_t order_id, pp_order *out);  /* 0 or PP_ENOENT */
PPDEF uint64_t pp_order_count(pp_book *b);
PPDEF uint64_t pp_last_seq(const pp_book *b);
PPDEF uint64_t pp_durable(const pp_book *b);                /* every seq <= this survives power loss */
PPDEF int      pp_error(const pp_book *b);
PPDEF const char *pp_book_name(const pp_book *b);
PPDEF void     pp_get_stats(pp_book *b, pp_stats *out);
PPDEF const char *pp_strerror(int err);

/* 0: healthy; PP_ENOENT: no such instrument; PP_ERETIRED: pp_book_retire
 * took it out (see pp_book_retire for where its history went); else the
 * damage found. */
PPDEF int      pp_check(const char *data_dir, const char *instrument, pp_check_result *out);
/* The instruments of the store in data_dir, read-only (no lock taken):
 * visit(name, ctx) for each; a nonzero return stops and is returned. */
PPDEF int      pp_list(const char *data_dir, int (*visit)(const char *instrument, void *ctx), void *ctx);

/* An instrument pp_open could not recover under PP_OPEN_QUARANTINE. */
typedef struct pp_quarantine_info {
    char     instrument[PP_MAX_NAME + 1];
    int      error;                 /* what its recovery returned (PP_ECORRUPT, PP_EMODE, ...) */
    char     file[4096];            /* where, as pp_check finds it (the instrument's directory if it cannot say) */
    uint64_t offset;
    char     detail[256];
} pp_quarantine_info;
/* The instruments pp_open set aside (PP_OPEN_QUARANTINE): copies the first
 * min(n, count) into out (out may be NULL when n is 0) and returns count.
 * Their files are left as they were, for pp_inspect and an operator; the
 * store neither recovers nor creates them until it is reopened (nor retires
 * them: pp_book_retire returns their error). Format 2: a book is set aside
 * when its snapshots or market data cannot be loaded (file: its directory,
 * books/<name>), or when a journal frame whose checksum holds does not fit it
 * (a seq out of order, an event its book cannot take: file and offset of
 * that frame); its later frames are skipped, its id stays taken, and while
 * any book is set aside compaction removes no journal segment (its history
 * stays whole for pp_inspect and the operator). Damage in the store journal
 * or its catalog fails pp_open with or without the flag (it cannot be
 * proved to belong to one instrument). In both layouts a corrupt snapshot is set aside as
 * <seq>.pps.corrupt by recovery, with or without the flag, and the
 * instrument recovers from an older one and the journal. */
PPDEF size_t   pp_quarantined(pp_store *s, pp_quarantine_info *out, size_t n);

/* ---- Engine API: views, waits, named events (>>views >>engine) -----------
 * Book views come from the book's shadow (the full active-order state kept
 * by the maintainer, off the trading thread), never from the hot path.
 * CONSISTENT means: a view is the book exactly as it was after one seq, the
 * seq of the last event applied to it, reported in pp_level.seq; every
 * event journaled on the book before the call started is in it (the call
 * catches the shadow up first), and no view mixes two seqs. pp_top is O(1)
 * and pp_depth O(n) after that catch-up: per-side price levels are kept
 * beside the shadow from the first view on (built once from the shadow,
 * then maintained per event by the maintainer). Any thread may call them. */
typedef struct pp_level {
    int64_t  price;    /* ticks */
    int64_t  qty;      /* total remaining qty of the orders at this price */
    uint64_t orders;   /* number of orders at this price (0: the side is empty) */
    uint64_t seq;      /* the view is the book after this seq (the same for every level of one call) */
} pp_level;
/* Best bid and best ask; an empty side gives price 0, qty 0, orders 0 (and
 * the view's seq). Either pointer may be NULL. 0 or an error. */
PPDEF int      pp_top(pp_book *b, pp_level *bid, pp_level *ask);
/* The best n levels of one side (PP_BUY: highest price first, PP_SELL:
 * lowest first) into levels[0..n); returns how many were filled (>= 0), or
 * an error. */
PPDEF int      pp_depth(pp_book *b, int side, pp_level *levels, size_t n);
/* pp_orders visits the active orders in price-time priority per side: the
 * bids best price first, then the asks best price first; within a price by
 * priority seq (arrival, or the modify that reset it). The orders are copied
 * out under the shadow lock and visited after it, all as of one seq. */

/* 0 once seq is durable (pp_durable(b) >= seq); PP_ETIMEDOUT when
 * timeout_ns passes first (< 0: no timeout, 0: just check); the book's (or
 * the store journal's) error when it is poisoned; PP_EINVAL for a seq not
 * journaled yet (> pp_last_seq). Both modes: a book of the per-instrument
 * layout in strict mode waits on picolog's plg_wait, every other book on a
 * CLOCK_MONOTONIC condition variable the syncer signals after each sync
 * round (no polling). It forces no sync: the
 * background syncer gets there within journal_sync_interval_ms (pp_sync
 * forces one). Any thread, not across pp_close. */
PPDEF int      pp_wait(pp_book *b, uint64_t seq, int64_t timeout_ns);

/* One order event with named fields: the misuse-proof entry point (price and
 * qty cannot be swapped by position). pp_add, pp_cancel, pp_execute and
 * pp_modify are shorthands for it. Fields by type (any other field nonzero:
 * PP_EINVAL, nothing journaled):
 *   PP_EV_ADD      order_id, side, price (limit), qty (> 0), ts_ns (the order's, stored as given)
 *   PP_EV_CANCEL   order_id [, ts_ns]
 *   PP_EV_EXECUTE  order_id, price (the fill's), qty (the fill's, <= remaining) [, ts_ns]
 *   PP_EV_MODIFY   order_id, price (new limit), qty (new remaining, > 0) [, ts_ns]
 * A price must be > 0 unless the store has PP_ALLOW_NONPOSITIVE_PRICES.
 * ts_ns 0 on a cancel, execute or modify means the engine's clock
 * (pp_config.clock_ns, else CLOCK_REALTIME). seq is ignored by pp_apply
 * (the event gets pp_last_seq(b) + 1).
 * payload: up to PP_PAYLOAD_MAX (256) opaque bytes of the engine's (a client
 * order id, an account, the aggressor's id and a trade id on an execute),
 * journaled with the event and returned verbatim by the journal reader.
 * payload_len 0 (payload ignored) journals none; more than PP_PAYLOAD_MAX,
 * or a NULL payload with a length, is PP_EINVAL. Format 2 only (either
 * mode): a store of the per-instrument layout returns PP_ENOTSUP for an
 * event with a payload. Inside a batch, the batch's frame holds at most 16 KiB
 * (64 bytes an event, plus its payload rounded up to 64): an event that
 * would not fit is PP_ETOOBIG, as the 256th event is. */
#define PP_PAYLOAD_MAX 256
typedef struct pp_event {
    int      type;      /* enum pp_event_type: PP_EV_ADD, _CANCEL, _EXECUTE, _MODIFY */
    uint64_t order_id;
    uint8_t  side;      /* PP_EV_ADD: PP_BUY or PP_SELL; other types: 0 */
    int64_t  price;
    int64_t  qty;
    uint64_t ts_ns;
    uint64_t seq;       /* out (readers): the event's seq; ignored by pp_apply */
    const void *payload;   /* in: payload_len bytes; out (readers): valid until the next pp_journal_next or close */
    uint32_t payload_len;  /* 0..PP_PAYLOAD_MAX */
} pp_event;
PPDEF int      pp_apply(pp_book *b, const pp_event *ev);

/* Atomic batches (a match: the aggressor's add, one execute per maker, the
 * rest resting). The events applied between pp_batch_begin and
 * pp_batch_commit are recovered all or none, get consecutive seqs, and
 * become durable together (pp_durable and pp_wait cover a batch only whole).
 *   pp_batch_begin   starts one (PP_EINVAL if one is open on this book).
 *   pp_apply & co.   validated at the call against the book as the batch has
 *                    left it so far (so a batch may add an order and fill it):
 *                    an invalid event returns its error and is not part of
 *                    the batch; the caller may go on or abort. The k-th event
 *                    will get seq pp_last_seq(b) + k. At most PP_BATCH_MAX
 *                    events: one more is PP_ETOOBIG (not added).
 *   pp_batch_commit  journals them as ONE frame of the store journal (one
 *                    claim, one commit word: all or none by construction);
 *                    pp_last_seq moves by their number only now. An empty
 *                    batch journals nothing. On an error (a poisoned journal)
 *                    nothing of the batch is journaled and the index is as
 *                    before it.
 *   pp_batch_abort   drops them: nothing journaled, the book as before begin.
 * Until the commit nothing of the batch is journaled or visible (pp_find,
 * pp_orders, pp_top, pp_last_seq, the journal reader). Order events only:
 * pp_tick_append inside a batch is PP_EINVAL. Same thread as the book's
 * other events. pp_close discards a batch left open. Format 2 only (the
 * store journal, either mode): a store of the per-instrument layout
 * (PP_LEGACY_LAYOUT, a 0.2.0 store) returns PP_ENOTSUP from pp_batch_begin. A
 * spread across instruments is not supported (one book per batch). */
#define PP_BATCH_MAX 255
PPDEF int      pp_batch_begin(pp_book *b);
PPDEF int      pp_batch_commit(pp_book *b);
PPDEF int      pp_batch_abort(pp_book *b);

/* The audit trail of one instrument: its order events from the store
 * journal (format 2, PP_STORE_JOURNAL; another store is PP_EFORMAT), in seq
 * order from from_seq, up to the book's durable seq when the reader was
 * opened (nothing a crash could still take back). Read-only: it reads the
 * segment files while the store goes on. pp_journal_next fills ev (seq set;
 * side 0 except on adds; a cancel's price and qty 0) and returns 1, or 0 at
 * the end, or an error. Compaction removes segments wholly below what every
 * book needs, so the first event may have a seq above from_seq (check
 * ev.seq), unless pp_config.archive_dir keeps them: the archived segments
 * are then read first, then the live ones (a gap between the two is
 * PP_ECORRUPT). A retired instrument's history reads too. No segment file
 * is removed while pp_journal_open reads them (a compaction waits for the
 * reads in progress, and a reader opened while a compaction removes files
 * waits for it). Market-data entries are skipped. This version
 * reads the instrument's events into memory at open (one pass over the
 * journal, 56 bytes an event); a streaming reader is future work. An unknown
 * instrument is PP_ENOENT. */
typedef struct pp_journal pp_journal;
PPDEF int      pp_journal_open(pp_store *s, const char *instrument, uint64_t from_seq, pp_journal **out);
PPDEF int      pp_journal_next(pp_journal *j, pp_event *ev);   /* 1 = an event, 0 = end, < 0 = error */
PPDEF void     pp_journal_close(pp_journal *j);
/* The same reader on a data directory, without a store (tools such as
 * pp_inspect): read-only, no lock, beside a running store or none. Both
 * layouts: the store journal (format 2), or the instrument's own journal/
 * segments or strict/ log (the per-instrument layout). It returns every
 * valid event of the instrument from from_seq to the end of the valid
 * journal as the files hold it at the call, durable or not (a torn tail
 * ends it, and is not read); market-data entries are skipped. PP_ENOENT for
 * an instrument the store does not hold; format 2: PP_ECORRUPT for damage
 * (pp_check says where); the per-instrument layout: it ends at the first
 * invalid entry (pp_check says whether that is damage). Beside a running
 * store that compacts, a segment file can go while it is read: PP_ENOENT
 * (open again). */
PPDEF int      pp_journal_open_dir(const char *data_dir, const char *instrument, uint64_t from_seq, pp_journal **out);
/* pp_journal_open_dir with the store's archive (format 2): the archived
 * segments (<archive_dir>/journal) are read first, then the live ones from
 * where the archive ends, so that an auditor gets the whole history of an
 * instrument, from seq 1, without opening the store. archive_dir: the
 * store's pp_config.archive_dir, or NULL (or "") for none (then it is
 * pp_journal_open_dir). A gap between the two parts is PP_ECORRUPT. Beside
 * a running store a compaction can move segments into the archive while
 * they are read: the call reads again (a few times), then returns the
 * error (call again). A data directory of the per-instrument layout has no
 * archive: PP_ENOTSUP when archive_dir is given. */
PPDEF int      pp_journal_open_archive(const char *data_dir, const char *archive_dir, const char *instrument,
                                       uint64_t from_seq, pp_journal **out);
/* The book as it was after seq (format 2; else PP_ENOTSUP): its active
 * orders visited in price-time priority, as pp_orders would have visited
 * them then, each with the payload of the add that made it (kept across
 * modifies and partial fills; valid during the visit). Rebuilt from the newest snapshot at or below seq that loads
 * (live, or in archive_dir), plus the journal's events after it (the
 * archive's, then the live ones), read-only; the book goes on meanwhile.
 * seq 0: the empty book. A retired instrument too. PP_EINVAL: seq beyond
 * the book's durable history; PP_ENOENT: no such instrument, or the history
 * up to seq is gone (compacted without an archive_dir). */
PPDEF int      pp_book_at(pp_store *s, const char *instrument, uint64_t seq,
                          int (*visit)(const pp_order *o, void *ctx), void *ctx);
/* The same book without a store, for tools and auditors (format 2; a data
 * directory of the per-instrument layout is PP_ENOTSUP): read-only, it
 * never writes, creates or removes a file under data_dir or archive_dir,
 * and takes no lock, so it is safe beside an engine running the store, as
 * pp_journal_open_dir is. archive_dir: the store's pp_config.archive_dir,
 * or NULL (or "") for none. It is an argument because the data directory
 * does not record where its archive is (it is configuration, and an
 * archive may be moved, e.g. to slower disks): without it only the live
 * snapshots and segments are read, so a seq older than them is PP_ENOENT,
 * and a retired instrument (whose snapshots went to the archive) rebuilds
 * from its journal alone. The history is the journal as the files hold it
 * at the call (pp_journal_open_dir): on a closed store that is what the
 * next pp_open recovers; beside a running store its newest events may not
 * be durable yet. PP_EINVAL: seq beyond the history; PP_ENOENT: no such
 * instrument (neither in the catalog, the retired list, nor declared in the
 * journal), or the history up to seq is gone; PP_ECORRUPT: damage (pp_check
 * says where). A journal segment moved or removed by a compaction while it
 * is read: the call reads again (a few times), then returns the error
 * (PP_ENOENT or PP_ECORRUPT: call again); a snapshot removed meanwhile: an
 * older one is used, or PP_ENOENT if the journal after it is gone. The
 * payload pointers are valid during the visit. */
PPDEF int      pp_book_at_dir(const char *data_dir, const char *archive_dir, const char *instrument, uint64_t seq,
                              int (*visit)(const pp_order *o, void *ctx), void *ctx);

/* The data keys of an encrypted store (pp_config.encrypt_key and old_keys,
 * in any order) for the read-only calls this thread makes from now on:
 * pp_check, pp_list, pp_journal_open_dir, pp_journal_open_archive,
 * pp_book_at_dir. Derived now and kept, in this thread only, until
 * the next call; pp_read_keys(NULL, 0) forgets them (wiped). Without keys
 * those calls return PP_ENEEDKEY on an encrypted store. PP_ENOTSUP in a
 * build without PICOLOG_ENCRYPT; PP_ECONFIG for more than PLG_MAX_KEYS. */
PPDEF int      pp_read_keys(const uint8_t *const *keys, size_t n);

#ifdef PINNACLE_PERSIST_TEST_IO
/* Test-only I/O hook (fault injection, simulated power loss), compiled in
 * only with PINNACLE_PERSIST_TEST_IO defined in the implementation's
 * translation unit; without it every call below is the plain syscall. It
 * covers every point where the store makes something durable or changes
 * which files exist: the journal's msyncs and fdatasyncs, file growth, the
 * header and durable-mark pwrites, renames, unlinks, directory fsyncs and the
 * snapshot/market-data/connection files (plg_write_file_durable). A NULL
 * member means the real call. The syscall-like members return what the
 * syscall does (-1 with errno set on failure; pwrite the byte count);
 * fsync_dir and write_file_durable return what plg_fsync_dir and
 * plg_write_file_durable do (0, or a negative PLG_ error). Set it before
 * pp_open; it applies to every store in the process. */
typedef struct pp_io {
    void *ctx;
    int     (*msync)(void *ctx, int fd, void *addr, size_t len, int64_t file_off); /* msync(addr, len, MS_SYNC); addr maps file_off of fd */
    int     (*fdatasync)(void *ctx, int fd);
    int     (*fallocate)(void *ctx, int fd, int64_t off, int64_t len); /* mode 0 */
    int     (*ftruncate)(void *ctx, int fd, int64_t len);
    int64_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, int64_t off);
    int     (*rename)(void *ctx, const char *from, const char *to);
    int     (*unlink)(void *ctx, const char *path);
    int     (*fsync_dir)(void *ctx, const char *dir);
    int     (*write_file_durable)(void *ctx, const char *path, const void *data, size_t len, unsigned mode);
} pp_io;
PPDEF void     pp_test_set_io(const pp_io *io);   /* NULL: the real syscalls */
#endif

/* ---- Market data (>>marketdata) ------------------------------------------
 * Ticker events of an exchange feed, journaled in the book's own journal
 * (same modes, same seq numbering, same syncs), so one instrument's order
 * events and market data share one durable, ordered history. A tick takes
 * one 128-byte frame at one seq in the store journal (format 2), three
 * consecutive 48-byte entries elsewhere (docs/pinnacle-format.md); order
 * replay skips them. Prices and sizes are integers in the instrument's declared
 * scale (price_scale = 100 means 1 unit = 0.01). The shadow side (the
 * maintainer, off the trading thread) keeps the last tick, the raw ticks of
 * the retention window, 1 s and 1 min OHLCV bars and the gaps; they are
 * persisted with each snapshot (<instrument>/md/<seq>.ppm), so history
 * survives compaction of the journal. Queries may run from any thread. */
typedef struct pp_tick {
    uint64_t exch_seq;      /* the exchange's sequence number, > 0, increasing per instrument */
    uint64_t exch_ts_ns;    /* exchange timestamp, ns since the epoch */
    uint64_t recv_ts_ns;    /* local receive timestamp, ns */
    int64_t  price, size;   /* last trade price and size (scaled integers) */
    int64_t  bid, bid_size, ask, ask_size;
    int64_t  volume_24h;
    uint64_t trade_id;
    uint8_t  side;          /* taker side: PP_BUY, PP_SELL, or 0 when unknown */
} pp_tick;

typedef struct pp_bar {
    uint64_t start_ns;      /* bar open time: exch_ts rounded down to the resolution */
    int64_t  open, high, low, close;
    int64_t  volume;        /* sum of the trade sizes */
    uint64_t trades;        /* trade count (ticks) */
    uint64_t gaps;          /* gap events whose tick falls in this bar */
} pp_bar;

typedef struct pp_gap {
    uint64_t after_seq;     /* last exchange seq journaled before the jump */
    uint64_t next_seq;      /* the seq that arrived: after_seq+1 .. next_seq-1 are missing */
    uint64_t exch_ts_ns;    /* the exchange time of the tick that revealed it */
} pp_gap;

typedef struct pp_md_spec {
    int64_t  price_scale, size_scale;   /* units per 1.0; default 1; stored with the instrument */
    uint32_t tick_window_s;             /* raw ticks kept (by exchange time); default 3600 */
    uint32_t bar_window_s;              /* 1 min bars and gaps kept; default 30 days */
    uint64_t max_ticks;                 /* raw ticks kept at most; default 1048576 */
    uint32_t bar1s_window_s;            /* 1 s bars kept; default 1 day */
} pp_md_spec;

#define PP_BAR_1S  1u
#define PP_BAR_1M  60u

PPDEF int      pp_md_declare(pp_book *b, const pp_md_spec *spec);   /* durable; before the first tick or any time */
PPDEF int      pp_md_spec_get(pp_book *b, pp_md_spec *out);
PPDEF int      pp_tick_append(pp_book *b, const pp_tick *t);        /* 0, PP_EDUP (not journaled), or an error */
PPDEF uint64_t pp_md_last_exch_seq(pp_book *b);                    /* last journaled exchange seq, 0 if none */
PPDEF int      pp_md_last(pp_book *b, pp_tick *out);                /* 0 or PP_ENOENT */
/* History by exchange time [from_ns, to_ns). Each fills at most cap items in
 * time order and returns how many there are in all (>= 0), or an error. */
PPDEF int64_t  pp_md_ticks(pp_book *b, uint64_t from_ns, uint64_t to_ns, pp_tick *out, size_t cap);
PPDEF int64_t  pp_md_bars(pp_book *b, unsigned res_s, uint64_t from_ns, uint64_t to_ns, pp_bar *out, size_t cap);
PPDEF int64_t  pp_md_gaps(pp_book *b, uint64_t from_ns, uint64_t to_ns, pp_gap *out, size_t cap);

/* Connection state: small named blobs (feed URL, channels, session id...),
 * each replaced atomically (temp + fsync + rename + dir fsync) under
 * <data_dir>/.conn/<name>. Names follow the instrument name rules. */
#define PP_CONN_MAX (1u << 20)
PPDEF int      pp_conn_put(pp_store *s, const char *name, const void *data, size_t len);
PPDEF int64_t  pp_conn_get(pp_store *s, const char *name, void *buf, size_t cap);  /* length, or PP_ENOENT... */

#ifdef __cplusplus
} /* extern "C" */
#endif
#endif /* PINNACLE_PERSIST_H */

/* ======================================================================== */
#ifdef PINNACLE_PERSIST_IMPLEMENTATION
#ifndef PINNACLE_PERSIST_IMPLEMENTATION_DONE
#define PINNACLE_PERSIST_IMPLEMENTATION_DONE
PPDEF uint32_t pp_version(void) { return PP_VERSION; }

#if defined(__GLIBC__) && !defined(__USE_GNU)
#error "pinnacle_persist.h: the implementation needs _GNU_SOURCE; put #define PINNACLE_PERSIST_IMPLEMENTATION and #include \"pinnacle_persist.h\" before any system header, or compile with -D_GNU_SOURCE"
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "pinnacle_persist.h: little-endian hosts only (the on-disk format is little-endian and copied as is)"
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <poll.h>
#include <sys/eventfd.h>

#if defined(PINNACLE_PERSIST_MALLOC) && defined(PINNACLE_PERSIST_FREE) && defined(PINNACLE_PERSIST_REALLOC)
#elif !defined(PINNACLE_PERSIST_MALLOC) && !defined(PINNACLE_PERSIST_FREE) && !defined(PINNACLE_PERSIST_REALLOC)
#define PINNACLE_PERSIST_MALLOC(sz) malloc(sz)
#define PINNACLE_PERSIST_REALLOC(p, sz) realloc(p, sz)
#define PINNACLE_PERSIST_FREE(p) free(p)
#else
#error "pinnacle_persist.h: define all of PINNACLE_PERSIST_MALLOC, PINNACLE_PERSIST_REALLOC and PINNACLE_PERSIST_FREE, or none"
#endif
#ifndef PINNACLE_PERSIST_ASSERT
#include <assert.h>
#define PINNACLE_PERSIST_ASSERT(x) assert(x)
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#ifdef __cplusplus
#define PP__STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define PP__STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

/* >>util ------------------------------------------------------------------ */
#define pp__load_rlx(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define pp__load_acq(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define pp__store_rlx(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define pp__store_rel(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define pp__add_rlx(p, v)   __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define pp__bump(p)         pp__store_rlx((p), pp__load_rlx(p) + 1)   /* single writer */

#define PP__PAGE      4096u
#define PP__ENTRY     48u          /* every journal entry and snapshot order: 48 bytes */
#define PP__DATA_OFF  4096u        /* first entry of a segment */
#define PP__MARK_OFF  512u         /* durable mark inside the header page */
#define PP__SEG_MAGIC "PPJRNL01"
#define PP__SNAP_MAGIC "PPSNAP01"
#define PP__VERSION   1u
#define PP__SNAP_HDR  64u
#define PP__SEQ_MAX   ((uint64_t)1 << 62)  /* a snapshot beyond this seq is damage (no book journals 2^62 events) */
#define PP__SNAP_TAIL 8u

#define PP__CTL_ROLL   1u          /* a prepared next segment waits for the hot path */

PPDEF const char *pp_strerror(int err) {
    switch (err) {
    case PP_OK: return "success";
#define PP__STR(name, val, msg) case name: return #name ": " msg;
    PP_ERRORS(PP__STR)
#undef PP__STR
    default: return "unknown pinnacle_persist error";
    }
}

/* The last errno this thread turned into a PP_ code, and what pp_open_errno
 * reports: it, when the failed open's code is the one that errno maps to. */
static __thread int pp__errno_seen, pp__open_errno;
PPDEF int pp_open_errno(void) { return pp__open_errno; }

static int pp__map_errno(int e) {
    switch (e) {
    case ENOSPC: case EDQUOT: return PP_ENOSPC;
    case EIO: return PP_EIO;
    case ENOMEM: return PP_ENOMEM;
    case ENOENT: return PP_ENOENT;
    case EACCES: case EPERM: case EROFS: return PP_EACCES;
    case EWOULDBLOCK: return PP_ELOCKED;
    case EMFILE: case ENFILE: return PP_EMFILE;
    default: return PP_ESYS;
    }
}

static int pp__from_errno(int e) {
    pp__errno_seen = e;
    return pp__map_errno(e);
}

static int pp__open_done(int rc) {   /* the end of pp_open and pp_book_open */
    pp__open_errno = rc && pp__errno_seen && pp__map_errno(pp__errno_seen) == rc ? pp__errno_seen : 0;
    return rc;
}

/* picolog's durable file primitives (plg_write_file_durable, plg_fsync_dir):
 * a full disk, a permission problem or a failed system call (out of file
 * descriptors, a failed rename) keeps its own code; an I/O error is PP_EIO. */
static int pp__from_plg_file(int e) {
    if (e && errno) pp__errno_seen = errno;   /* picolog leaves errno set */
    switch (e) {
    case 0: return 0;
    case PLG_ENOSPC: return PP_ENOSPC;
    case PLG_EACCES: return PP_EACCES;
    case PLG_ENOMEM: return PP_ENOMEM;
    case PLG_ENOENT: return PP_ENOENT;
    case PLG_ESYS: return errno ? pp__from_errno(errno) : PP_ESYS;   /* picolog leaves errno set: say what failed */
    default: return PP_EIO;
    }
}

static int pp__from_plg(int e) {
    switch (e) {
    case PLG_EIO: return PP_EIO;
    case PLG_ENOSPC: return PP_ENOSPC;
    case PLG_ECORRUPT: return PP_ECORRUPT;
    case PLG_ENOMEM: return PP_ENOMEM;
    case PLG_EFULL: return PP_EFULL;
    case PLG_ELOCKED: return PP_ELOCKED;
    case PLG_EACCES: return PP_EACCES;
    case PLG_EINVAL: return PP_ECONFIG;
    case PLG_ENEEDKEY: return PP_ENEEDKEY;
    case PLG_EKEY: return PP_EKEY;
    case PLG_EPLAINLOG: return PP_EPLAIN;
    case PLG_ENOCRYPT: return PP_ENOTSUP;
    default: return PP_ELOG;
    }
}

static void pp__put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void pp__put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint64_t pp__get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t pp__get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static void *pp__alloc(size_t n) {
    void *p = PINNACLE_PERSIST_MALLOC(n);
    if (p) memset(p, 0, n);
    return p;
}

static void pp__strlcpy(char *dst, const char *src, size_t cap) {
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n); dst[n] = 0;
}

static char *pp__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = (char *)PINNACLE_PERSIST_MALLOC(n);
    if (p) memcpy(p, s, n);
    return p;
}

static char *pp__join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *p = (char *)PINNACLE_PERSIST_MALLOC(na + nb + 2);
    if (!p) return NULL;
    memcpy(p, a, na); p[na] = '/'; memcpy(p + na + 1, b, nb + 1);
    return p;
}

static void pp__msg_to(void (*fn)(void *, int, const char *), void *user, int code, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (fn) fn(user, code, buf);
    else fprintf(stderr, "pinnacle_persist: %s\n", buf);
}
#define PP__MSG(S, code, ...) pp__msg_to((S)->cfg.log_fn, (S)->cfg.log_user, (code), __VA_ARGS__)

static int pp__mkdir(const char *path) {
    if (mkdir(path, 0755) == 0) {
        char parent[4096];
        const char *sl = strrchr(path, '/');
        size_t n = sl ? (size_t)(sl - path) : 0;
        if (n == 0) { parent[0] = sl ? '/' : '.'; parent[1] = 0; }
        else if (n < sizeof parent) { memcpy(parent, path, n); parent[n] = 0; }
        else return PP_EINVAL;
        return pp__from_plg_file(plg_fsync_dir(parent));
    }
    return errno == EEXIST ? 0 : pp__from_errno(errno);
}

/* mkdir -p: each directory created is made durable in its parent. */
static int pp__mkdir_p(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf) return PP_EINVAL;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (buf[i] != '/') continue;
        buf[i] = 0;
        int rc = pp__mkdir(buf);
        buf[i] = '/';
        if (rc) return rc;
    }
    return pp__mkdir(buf);
}

/* The I/O that makes things durable or changes which files exist, through
 * the test hook when PINNACLE_PERSIST_TEST_IO is defined (tests only). */
#ifdef PINNACLE_PERSIST_TEST_IO
static const pp_io *pp__tio;
PPDEF void pp_test_set_io(const pp_io *io) { __atomic_store_n(&pp__tio, io, __ATOMIC_RELEASE); }
#define PP__HOOK(member, ...) do { const pp_io *pp__h = __atomic_load_n(&pp__tio, __ATOMIC_ACQUIRE); \
    if (pp__h && pp__h->member) return pp__h->member(pp__h->ctx, __VA_ARGS__); } while (0)
#else
#define PP__HOOK(member, ...) do { } while (0)
#endif
static int pp__sys_msync(int fd, void *addr, size_t len, uint64_t file_off) {
    PP__HOOK(msync, fd, addr, len, (int64_t)file_off);
    (void)fd; (void)file_off;
    return msync(addr, len, MS_SYNC);
}
static int pp__sys_fdatasync(int fd) { PP__HOOK(fdatasync, fd); return fdatasync(fd); }
static int pp__sys_fallocate(int fd, uint64_t off, uint64_t len) {
    PP__HOOK(fallocate, fd, (int64_t)off, (int64_t)len);
    return fallocate(fd, 0, (off_t)off, (off_t)len);
}
static int pp__sys_ftruncate(int fd, uint64_t len) { PP__HOOK(ftruncate, fd, (int64_t)len); return ftruncate(fd, (off_t)len); }
static int64_t pp__sys_pwrite(int fd, const void *buf, size_t len, uint64_t off) {
    PP__HOOK(pwrite, fd, buf, len, (int64_t)off);
    return (int64_t)pwrite(fd, buf, len, (off_t)off);
}
static int pp__sys_rename(const char *from, const char *to) { PP__HOOK(rename, from, to); return rename(from, to); }
static int pp__sys_unlink(const char *path) { PP__HOOK(unlink, path); return unlink(path); }
static int pp__fsync_dir_plg(const char *dir) { PP__HOOK(fsync_dir, dir); return plg_fsync_dir(dir); }
static int pp__fsync_dir(const char *dir) { errno = 0; return pp__from_plg_file(pp__fsync_dir_plg(dir)); }   /* 0 or PP_ */
static int pp__write_file_durable(const char *path, const void *data, size_t len, unsigned mode) {
    PP__HOOK(write_file_durable, path, data, len, mode);
    return plg_write_file_durable(path, data, len, mode);
}

/* Allocate [off, off + len) of a journal file for real. Where fallocate is
 * unsupported, zeros are written: ftruncate alone would leave a sparse file
 * under a shared mapping, and a full disk would then be a SIGBUS on the
 * trading thread's store instead of PP_ENOSPC from this call. */
static int pp__alloc_range(int fd, uint64_t off, uint64_t len) {
    if (pp__sys_fallocate(fd, off, len) == 0) return 0;
    if (errno != EOPNOTSUPP) return pp__from_errno(errno);
    static const uint8_t zeros[64 << 10] = {0};
    while (len > 0) {
        size_t n = len < sizeof zeros ? (size_t)len : sizeof zeros;
        errno = 0;
        int64_t w = pp__sys_pwrite(fd, zeros, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return errno ? pp__from_errno(errno) : PP_ENOSPC;   /* no progress: no room */
        off += (uint64_t)w; len -= (uint64_t)w;
    }
    return 0;
}

static int pp__fdatasync(int fd) {
    while (pp__sys_fdatasync(fd) != 0) { if (errno != EINTR) return pp__from_errno(errno); }
    return 0;
}

/* Sorted list of u64 numbers from names "<20 digits><suffix>" in dir. Files
 * named "<anything>.tmp" are stale leftovers of an interrupted write: removed
 * when clean_tmp. */
static int pp__list_numbered(const char *dir, const char *suffix, int clean_tmp, uint64_t **out, size_t *count) {
    *out = NULL; *count = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : pp__from_errno(errno);
    uint64_t *v = NULL; size_t n = 0, cap = 0;
    size_t sl = strlen(suffix);
    struct dirent *e;
    int rc = 0, removed = 0;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        size_t len = strlen(nm);
        if (len > 4 && strcmp(nm + len - 4, ".tmp") == 0) {
            if (clean_tmp) {
                char *p = pp__join(dir, nm);
                if (p) { pp__sys_unlink(p); PINNACLE_PERSIST_FREE(p); removed = 1; }
            }
            continue;
        }
        if (len != 20 + sl || strcmp(nm + 20, suffix) != 0) continue;
        int digits = 1;
        for (int i = 0; i < 20; i++) if (nm[i] < '0' || nm[i] > '9') digits = 0;
        if (!digits) continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            uint64_t *nv = (uint64_t *)PINNACLE_PERSIST_REALLOC(v, nc * sizeof *v);
            if (!nv) { rc = PP_ENOMEM; break; }
            v = nv; cap = nc;
        }
        v[n++] = strtoull(nm, NULL, 10);
    }
    closedir(d);
    if (removed) pp__fsync_dir(dir);
    if (rc) { PINNACLE_PERSIST_FREE(v); return rc; }
    for (size_t i = 1; i < n; i++) {
        uint64_t x = v[i]; size_t j = i;
        while (j > 0 && v[j - 1] > x) { v[j] = v[j - 1]; j--; }
        v[j] = x;
    }
    *out = v; *count = n;
    return 0;
}

/* >>archive: history moved out of the store instead of deleted
 * (pp_config.archive_dir). A copy of src into tmp, made durable. */
static int pp__copy_durable(const char *src, const char *tmp) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return pp__from_errno(errno);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = out < 0 ? pp__from_errno(errno) : 0;
    const size_t cap = 64u << 10;        /* on the heap: a thread-local one would cost every thread of the engine */
    uint8_t *buf = (uint8_t *)PINNACLE_PERSIST_MALLOC(cap);
    if (!buf && !rc) rc = PP_ENOMEM;
    uint64_t off = 0;
    while (!rc) {
        ssize_t n = read(in, buf, cap);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { rc = pp__from_errno(errno); break; }
        if (n == 0) break;
        for (ssize_t done = 0; done < n && !rc;) {
            errno = 0;
            int64_t w = pp__sys_pwrite(out, buf + done, (size_t)(n - done), off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) rc = errno ? pp__from_errno(errno) : PP_ENOSPC;
            else { done += (ssize_t)w; off += (uint64_t)w; }
        }
    }
    if (!rc) rc = pp__fdatasync(out);
    PINNACLE_PERSIST_FREE(buf);
    close(in);
    if (out >= 0) close(out);
    return rc;
}

/* Move dir/name into the directory adir (made if missing), durably. On one
 * filesystem a rename; else (EXDEV) a copy into adir/name.tmp, fdatasynced
 * and renamed to adir/name, then the original removed. adir is fsynced
 * before dir in both cases, so a crash at any point leaves the file whole
 * in one place at least: the original, or the archive's copy, or both (a
 * crash between the copy and the removal: the original is still the one
 * the store uses, and its next move replaces the copy). A partial copy is
 * only ever a *.tmp, which no reader lists. */
static int pp__archive_file(const char *dir, const char *name, const char *adir) {
    char src[4096], dst[4096], tmp[4096];
    if ((size_t)snprintf(src, sizeof src, "%s/%s", dir, name) >= sizeof src ||
        (size_t)snprintf(dst, sizeof dst, "%s/%s", adir, name) >= sizeof dst ||
        (size_t)snprintf(tmp, sizeof tmp, "%s/%s.tmp", adir, name) >= sizeof tmp) return PP_EINVAL;
    int rc = pp__mkdir_p(adir);
    if (rc) return rc;
    if (pp__sys_rename(src, dst) == 0) {
        rc = pp__fsync_dir(adir);
        return rc ? rc : pp__fsync_dir(dir);
    }
    if (errno != EXDEV) return pp__from_errno(errno);
    rc = pp__copy_durable(src, tmp);
    if (!rc && pp__sys_rename(tmp, dst) != 0) rc = pp__from_errno(errno);
    if (!rc) rc = pp__fsync_dir(adir);
    if (!rc && pp__sys_unlink(src) != 0 && errno != ENOENT) rc = pp__from_errno(errno);
    if (!rc) rc = pp__fsync_dir(dir);
    if (rc) (void)unlink(tmp);          /* a partial copy, if any: never read, tidied */
    return rc;
}

static void pp__numbered(char *out, size_t cap, const char *dir, uint64_t n, const char *suffix) {
    snprintf(out, cap, "%s/%020llu%s", dir, (unsigned long long)n, suffix);
}

PPDEF int pp_valid_name(const char *nm) {
    if (!nm) return PP_ENAME;
    size_t n = strnlen(nm, PP_MAX_NAME + 1);
    if (n == 0 || n > PP_MAX_NAME || nm[0] == '.') return PP_ENAME;
    if (strstr(nm, "..")) return PP_ENAME;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)nm[i];
        if (c == '/' || c == '\\' || c < 0x21 || c > 0x7e) return PP_ENAME;
    }
    return 0;
}

/* >>maps ------------------------------------------------------------------ */
/* Open addressing, linear probing, backward-shift deletion (no tombstones),
 * key 0 = empty. PP__MAP(name, slot) defines name_find/_put/_del/_grow. */
static inline uint64_t pp__hash(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

typedef struct pp__islot { uint64_t id; int64_t qty; } pp__islot;                  /* hot-path index */
typedef struct pp__oslot { uint64_t id; int64_t price, qty; uint64_t ts, seq; uint64_t side; } pp__oslot; /* shadow */
PP__STATIC_ASSERT(sizeof(pp__oslot) == PP__ENTRY, "shadow slot is one snapshot record");

#define PP__MAP(name, slot_t)                                                                    \
    typedef struct name { slot_t *t; uint64_t mask, n; } name;                                   \
    static int name##_init(name *m, uint64_t want) {                                             \
        uint64_t cap = 16;                                                                        \
        while (cap < want * 2) cap *= 2;                                                          \
        m->t = (slot_t *)pp__alloc((size_t)cap * sizeof(slot_t));                                \
        m->mask = cap - 1; m->n = 0;                                                              \
        return m->t ? 0 : PP_ENOMEM;                                                              \
    }                                                                                             \
    static void name##_free(name *m) { PINNACLE_PERSIST_FREE(m->t); m->t = NULL; m->n = 0; }      \
    static inline slot_t *name##_find(const name *m, uint64_t id) {                               \
        uint64_t i = pp__hash(id) & m->mask;                                                      \
        for (;;) {                                                                                \
            slot_t *s = &m->t[i];                                                                 \
            if (s->id == id) return s;                                                            \
            if (s->id == 0) return NULL;                                                          \
            i = (i + 1) & m->mask;                                                                \
        }                                                                                         \
    }                                                                                             \
    static inline slot_t *name##_slot(name *m, uint64_t id) { /* insert point, id absent */      \
        uint64_t i = pp__hash(id) & m->mask;                                                      \
        while (m->t[i].id) i = (i + 1) & m->mask;                                                 \
        return &m->t[i];                                                                          \
    }                                                                                             \
    static int name##_grow(name *m) {                                                             \
        uint64_t cap = (m->mask + 1) * 2;                                                         \
        slot_t *old = m->t; uint64_t ocap = m->mask + 1;                                          \
        slot_t *t = (slot_t *)pp__alloc((size_t)cap * sizeof(slot_t));                          \
        if (!t) return PP_ENOMEM;                                                                 \
        m->t = t; m->mask = cap - 1;                                                              \
        for (uint64_t i = 0; i < ocap; i++) if (old[i].id) *name##_slot(m, old[i].id) = old[i];   \
        PINNACLE_PERSIST_FREE(old);                                                               \
        return 0;                                                                                 \
    }                                                                                             \
    static inline void name##_del(name *m, slot_t *s) {                                           \
        uint64_t i = (uint64_t)(s - m->t), j = i;                                                 \
        for (;;) {                                                                                \
            j = (j + 1) & m->mask;                                                                \
            if (m->t[j].id == 0) break;                                                           \
            uint64_t k = pp__hash(m->t[j].id) & m->mask;                                          \
            if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) { m->t[i] = m->t[j]; i = j; } \
        }                                                                                         \
        m->t[i].id = 0;                                                                           \
        m->n--;                                                                                   \
    }

PP__MAP(pp__idx, pp__islot)
PP__MAP(pp__shadow, pp__oslot)

/* The payloads of a book's resting orders whose add carried one (format 2):
 * id -> its own copy. Empty (no table) until the first one. shadow_mu. */
typedef struct pp__plslot { uint64_t id; uint8_t *p; uint64_t len; } pp__plslot;
PP__MAP(pp__plmap, pp__plslot)

static int pp__pl_put(pp__plmap *m, uint64_t *bytes, uint64_t id, const uint8_t *pl, uint32_t plen) {
    if (!m->t && pp__plmap_init(m, 8)) return PP_ENOMEM;
    if ((m->n + 1) * 2 > m->mask + 1 && pp__plmap_grow(m)) return PP_ENOMEM;
    uint8_t *p = (uint8_t *)PINNACLE_PERSIST_MALLOC(plen);
    if (!p) return PP_ENOMEM;
    memcpy(p, pl, plen);
    pp__plslot *s = pp__plmap_find(m, id);
    if (s) { PINNACLE_PERSIST_FREE(s->p); *bytes -= s->len; }
    else { s = pp__plmap_slot(m, id); s->id = id; m->n++; }
    s->p = p; s->len = plen; *bytes += plen;
    return 0;
}

static void pp__pl_drop(pp__plmap *m, uint64_t *bytes, uint64_t id) {
    if (!m->n) return;
    pp__plslot *s = pp__plmap_find(m, id);
    if (!s) return;
    PINNACLE_PERSIST_FREE(s->p);
    *bytes -= s->len;
    pp__plmap_del(m, s);
}

static void pp__pl_clear(pp__plmap *m, uint64_t *bytes) {
    for (uint64_t i = 0; m->t && i <= m->mask; i++) if (m->t[i].id) PINNACLE_PERSIST_FREE(m->t[i].p);
    pp__plmap_free(m);
    *bytes = 0;
}

/* A copy of m whose payloads live in one block (*blob): for the readers
 * that visit after the lock is let go. An empty m gives an empty copy. */
static int pp__pl_copy(const pp__plmap *m, uint64_t bytes, pp__plmap *out, uint8_t **blob) {
    memset(out, 0, sizeof *out);
    *blob = NULL;
    if (!m->n) return 0;
    size_t cap = (size_t)(m->mask + 1);
    out->t = (pp__plslot *)PINNACLE_PERSIST_MALLOC(cap * sizeof *out->t);
    *blob = (uint8_t *)PINNACLE_PERSIST_MALLOC((size_t)bytes + 1);
    if (!out->t || !*blob) {
        PINNACLE_PERSIST_FREE(out->t); PINNACLE_PERSIST_FREE(*blob);
        out->t = NULL; *blob = NULL;
        return PP_ENOMEM;
    }
    memcpy(out->t, m->t, cap * sizeof *out->t);
    out->mask = m->mask; out->n = m->n;
    uint64_t off = 0;
    for (size_t i = 0; i < cap; i++)
        if (out->t[i].id) { memcpy(*blob + off, out->t[i].p, (size_t)out->t[i].len); out->t[i].p = *blob + off; off += out->t[i].len; }
    return 0;
}

/* >>entry ----------------------------------------------------------------- */
/* Journal entry, 48 bytes, little-endian:
 *   0 u32 crc32c(salt || bytes 4..47)    4 u8 type   5 u8 side   6 u16 length (48)
 *   8 u64 seq   16 u64 order id   24 i64 price   32 i64 qty   40 u64 ts_ns
 * ADD: the order. CANCEL: id. EXECUTE: id, fill price, fill qty, side = 1 when
 * the fill leaves qty 0. MODIFY: id, new price, new remaining qty. */
typedef struct pp__ev { uint64_t seq, id; int64_t price, qty; uint64_t ts; int type, side; } pp__ev;

/* market data entries (>>marketdata): a tick is TICK1, TICK2, TICK3 at consecutive seqs;
 * in the store journal (format 2) one TICK frame of 128 bytes at one seq */
enum { PP__EV_TICK1 = 5, PP__EV_TICK2 = 6, PP__EV_TICK3 = 7, PP__EV_GAP = 8, PP__EV_TICK = 9 };

static inline void pp__enc(uint8_t *e, uint32_t seed, const pp__ev *v) {
    e[4] = (uint8_t)v->type; e[5] = (uint8_t)v->side; e[6] = (uint8_t)PP__ENTRY; e[7] = 0;
    pp__put64(e + 8, v->seq); pp__put64(e + 16, v->id);
    pp__put64(e + 24, (uint64_t)v->price); pp__put64(e + 32, (uint64_t)v->qty); pp__put64(e + 40, v->ts);
    pp__put32(e, plg_crc32c(seed, e + 4, PP__ENTRY - 4));
}

/* 1 if a valid entry of this salt is at e */
static inline int pp__dec(const uint8_t *e, uint32_t seed, pp__ev *v) {
    if (e[6] != PP__ENTRY || e[7] != 0 || e[4] < PP_EV_ADD || e[4] > PP__EV_GAP) return 0;
    if (pp__get32(e) != plg_crc32c(seed, e + 4, PP__ENTRY - 4)) return 0;
    v->type = e[4]; v->side = e[5];
    v->seq = pp__get64(e + 8); v->id = pp__get64(e + 16);
    v->price = (int64_t)pp__get64(e + 24); v->qty = (int64_t)pp__get64(e + 32); v->ts = pp__get64(e + 40);
    return 1;
}

static uint32_t pp__seed(uint64_t salt) {
    uint8_t b[8];
    pp__put64(b, salt);
    return plg_crc32c(0, b, 8);
}

/* >>marketdata state (the code: the >>marketdata sections below) */
/* A growable array whose live items are p[head .. head+n) (cheap drop-front). */
typedef struct pp__vec { uint8_t *p; size_t head, n, cap, sz; } pp__vec;
typedef struct pp__md {
    int used, has_last, have;           /* have: slots of the pending tick seen (0..2) */
    pp_md_spec spec;
    pp_tick last, pend;
    uint64_t pend_seq, gap_pending;
    pp__vec ticks, b1, b60, gaps;       /* pp_tick, pp_bar, pp_bar, pp_gap */
} pp__md;
static int pp__md_apply(pp__md *md, const pp__ev *v);
/* Where replay and the ring drain send market-data entries: the book being
 * recovered or drained by this thread (NULL: skip them, e.g. pp_check). */
static __thread pp__md *pp__md_sink;
typedef struct pp_book pp_book;
static int pp__md_serialize(pp_book *b, uint64_t seq, uint8_t **out, size_t *len);
static int pp__md_write(pp_book *b, uint64_t seq, const uint8_t *buf, size_t len);
static int pp__md_rotate(pp_book *b);

/* The shadow's slot for an id is a cache miss; replay and the ring drain
 * know the ids ahead, so they prefetch the slot PP__AHEAD entries early. */
#define PP__AHEAD 8
static inline void pp__prefetch(const pp__shadow *m, const uint8_t *entry) {
    __builtin_prefetch(&m->t[pp__hash(pp__get64(entry + 16)) & m->mask], 1);
}

/* Apply one event to a full-state map (shadow, or recovery). 0 or PP_ECORRUPT
 * when the event does not fit the book (it was validated when journaled). */
static int pp__apply(pp__shadow *m, const pp__ev *v) {
    pp__oslot *o;
    /* id 0 marks an empty slot (pp__shadow_find(m, 0) returns one), and a
     * snapshot refuses qty <= 0: such entries were never journaled by pp_add & co. */
    if (v->type >= PP_EV_ADD && v->type <= PP_EV_MODIFY && v->id == 0) return PP_ECORRUPT;
    switch (v->type) {
    case PP_EV_ADD:
        if (v->qty <= 0 || pp__shadow_find(m, v->id)) return PP_ECORRUPT;
        if ((m->n + 1) * 2 > m->mask + 1 && pp__shadow_grow(m)) return PP_ENOMEM;
        o = pp__shadow_slot(m, v->id);
        o->id = v->id; o->price = v->price; o->qty = v->qty; o->ts = v->ts; o->seq = v->seq; o->side = (uint64_t)v->side;
        m->n++;
        return 0;
    case PP_EV_CANCEL:
        if (!(o = pp__shadow_find(m, v->id))) return PP_ECORRUPT;
        pp__shadow_del(m, o);
        return 0;
    case PP_EV_EXECUTE:
        if (!(o = pp__shadow_find(m, v->id)) || v->qty <= 0 || v->qty > o->qty) return PP_ECORRUPT;
        o->qty -= v->qty;
        if (o->qty == 0) pp__shadow_del(m, o);
        return 0;
    case PP_EV_MODIFY:
        if (!(o = pp__shadow_find(m, v->id)) || v->qty <= 0) return PP_ECORRUPT;
        if (v->price != o->price || v->qty > o->qty) o->seq = v->seq;   /* loses time priority */
        o->price = v->price; o->qty = v->qty;
        return 0;
    case PP__EV_TICK1: case PP__EV_TICK2: case PP__EV_TICK3: case PP__EV_GAP:
        return pp__md_sink ? pp__md_apply(pp__md_sink, v) : 0;   /* market data: not the book's */
    case PP__EV_TICK:
        return 0;        /* format 2's whole tick: its caller hands the frame to the market data (pp__md_tick) */
    default:
        return PP_ECORRUPT;
    }
}

/* >>segments -------------------------------------------------------------- */
/* Segment file journal/<20-digit index>.ppj. Header page:
 *   0 "PPJRNL01"  8 u32 version  12 u32 entry size  16 u64 salt  24 u64 index
 *  32 u64 first_seq (0 = prepared, never written)  40 u64 created (realtime ns)
 *  60 u32 crc32c(bytes 0..59)
 * Durable mark at 512: u64 end, u64 seq, u32 crc32c(salt || end || seq):
 * every entry below `end` was durable when the mark was written. Entries from
 * 4096 on. The file is mapped once over journal_segment_bytes (beyond EOF) and
 * grows underneath the mapping, so the mapping never moves. */
typedef struct pp__seg {
    struct pp__seg *next;
    uint64_t index, first_seq, salt, map_len;
    uint32_t seed;
    int fd;
    uint8_t *base;
    uint64_t alloc_end;    /* atomic: bytes allocated in the file */
    uint64_t pub_end;      /* atomic: bytes published by the hot path */
    uint64_t final_end;    /* atomic: nonzero once the hot path left it (rolled) */
    uint64_t synced_end;   /* syncer: entries below are durable (and marked) */
    char *path;
} pp__seg;

static void pp__hdr_encode(uint8_t *h, const pp__seg *g) {
    memcpy(h, PP__SEG_MAGIC, 8);
    pp__put32(h + 8, PP__VERSION); pp__put32(h + 12, PP__ENTRY);
    pp__put64(h + 16, g->salt); pp__put64(h + 24, g->index); pp__put64(h + 32, g->first_seq);
    pp__put32(h + 60, plg_crc32c(0, h, 60));
}

static int pp__hdr_decode(const uint8_t *h, uint64_t *salt, uint64_t *index, uint64_t *first) {
    if (memcmp(h, PP__SEG_MAGIC, 8) != 0) return PP_EFORMAT;
    if (pp__get32(h + 60) != plg_crc32c(0, h, 60)) return PP_ECORRUPT;
    if (pp__get32(h + 8) != PP__VERSION || pp__get32(h + 12) != PP__ENTRY) return PP_EFORMAT;
    *salt = pp__get64(h + 16); *index = pp__get64(h + 24); *first = pp__get64(h + 32);
    return 0;
}

static void pp__mark_put(uint8_t *h, uint64_t salt, uint64_t end, uint64_t seq) {
    uint8_t b[24];
    pp__put64(b, salt); pp__put64(b + 8, end); pp__put64(b + 16, seq);
    uint8_t *m = h + PP__MARK_OFF;
    pp__put64(m, end); pp__put64(m + 8, seq); pp__put32(m + 16, plg_crc32c(0, b, 24));
}

/* The durable mark: 1 valid, 0 none (all zero: never synced), -1 damaged.
 * The mark sits alone in its 512-byte sector, so a torn write cannot damage
 * it; a damaged one means the header was damaged after it was written. */
static int pp__mark_get(const uint8_t *h, uint64_t salt, uint64_t *end, uint64_t *seq) {
    const uint8_t *m = h + PP__MARK_OFF;
    uint8_t b[24];
    pp__put64(b, salt); memcpy(b + 8, m, 16);
    *end = 0; *seq = 0;
    if (pp__get32(m + 16) == plg_crc32c(0, b, 24)) { *end = pp__get64(m); *seq = pp__get64(m + 8); return 1; }
    for (int i = 0; i < 20; i++) if (m[i]) return -1;
    return 0;
}

/* Are n bytes at p all zero? A page at a time through libc's memcmp (wide
 * loads, and one range check under the sanitizers, where a byte loop over
 * the free part of a 64 MiB segment costs seconds). */
static int pp__all_zero(const uint8_t *p, uint64_t n) {
    static const uint8_t zero[4096] = {0};
    while (n) {
        size_t k = n < sizeof zero ? (size_t)n : sizeof zero;
        if (memcmp(p, zero, k) != 0) return 0;
        p += k; n -= k;
    }
    return 1;
}

/* Are bytes [from, to) of the file at path, mapped at p, all zero? Only
 * the parts that hold data are read: the holes and unwritten extents that
 * lseek's SEEK_DATA skips read as zeros by definition, and reading them
 * through the mapping would fault in (and zero) a page-cache page for each
 * 4 KiB of a mostly free 64 MiB segment. Without SEEK_DATA, every byte. */
static int pp__map_zero(const char *path, const uint8_t *p, uint64_t from, uint64_t to) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint64_t at = from;
    while (at < to) {
        off_t d = fd < 0 ? (off_t)at : lseek(fd, (off_t)at, SEEK_DATA);
        if (d < 0 && errno == ENXIO) break;                 /* no data from here to the end of the file */
        if (d < 0) d = (off_t)at;                           /* cannot tell: read it */
        if ((uint64_t)d >= to) break;
        off_t h = fd < 0 ? (off_t)to : lseek(fd, d, SEEK_HOLE);
        uint64_t end = h < 0 || (uint64_t)h > to ? to : (uint64_t)h;
        if (end <= (uint64_t)d) end = to;                   /* (a file that changed under us) */
        if (!pp__all_zero(p + d, end - (uint64_t)d)) { if (fd >= 0) close(fd); return 0; }
        at = end;
    }
    if (fd >= 0) close(fd);
    return 1;
}

/* 1 if the data area of a segment file holds any nonzero byte */
static int pp__has_data(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 1;
    uint8_t buf[65536];
    uint64_t off = PP__DATA_OFF;
    int found = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, (off_t)off);
        if (n < 0) { found = 1; break; }      /* cannot tell: assume data */
        if (n == 0) break;
        found = !pp__all_zero(buf, (uint64_t)n);
        if (found) break;
        off += (uint64_t)n;
    }
    close(fd);
    return found;
}

/* a price level of the book views (>>views) */
typedef struct pp__lvl { int64_t price, qty; uint64_t orders; } pp__lvl;
typedef struct pp__lvside { pp__lvl *v; size_t n, cap; } pp__lvside;

/* An open atomic batch (format 2): the events validated so far, and per
 * event the index entry it changed as it was before (qty 0: absent), undone
 * in reverse order by an abort. Made at the book's first pp_batch_begin. */
#define PP__BATCH_BYTES (16u << 10)      /* = PP__SJ_MAXFRAME: the batch is one frame */
typedef struct pp__batch {
    int on;
    uint32_t n;
    uint32_t bytes;                  /* the frame so far: its header and each event with its payload */
    uint32_t pl_used;
    pp__ev ev[PP_BATCH_MAX];
    pp__islot undo[PP_BATCH_MAX];
    uint16_t plen[PP_BATCH_MAX];     /* each event's payload, packed in pl */
    uint32_t ploff[PP_BATCH_MAX];
    uint8_t pl[PP__BATCH_BYTES];
} pp__batch;

struct pp_book {
    /* hot path: owned by the thread feeding the book */
    pp__batch *batch;            /* NULL until the first pp_batch_begin */
    pp__seg *cur;
    uint64_t woff, lim, last;    /* write offset, cached alloc_end, last seq (private copy) */
    uint32_t seed;
    uint32_t ctl;                /* atomic: PP__CTL_* */
    int err;                     /* atomic: what poisoned the book */
    pp__idx idx;
    pp__idx idx_old;             /* growing: the previous table, migrated PP__MIG_STEP slots per event */
    uint64_t idx_mig;            /* the next slot of idx_old to migrate */
    pp__islot *idx_spare;        /* atomic: a zeroed table of idx_spare_cap slots, made ahead by the maintainer */
    uint64_t idx_spare_cap;      /* written before idx_spare is published, while idx_spare_busy is 0 */
    int idx_spare_busy;          /* atomic: 1 from a spare's making until the hot path has read its size */
    pp__islot *idx_garbage;      /* atomic: a migrated-out table for the maintainer to free */
    uint64_t idx_cap_pub, idx_n_pub; /* atomic copies of the table's size and count, for the maintainer */
    uint8_t *ring; uint64_t ring_mask, head, tail_cache;
    plg_log *log;                /* strict mode */
    uint64_t last_seq;           /* atomic, for other threads */
    uint64_t st_ring_full, st_grow, st_rolls;
    char pad1[64];
    /* consumer side */
    uint64_t ring_head;          /* atomic: published head */
    char pad2[64];
    uint64_t ring_tail;          /* atomic */
    pthread_mutex_t shadow_mu;   /* shadow, ring consumption */
    pp__shadow shadow;
    pp__plmap plmap;             /* shadow_mu: the payloads of resting orders (format 2) */
    uint64_t pl_bytes;           /* shadow_mu: their total size */
    uint64_t applied;            /* seq of the last event in the shadow */
    /* segments */
    pthread_mutex_t seg_mu;      /* list, cur, next_seg (held briefly) */
    pthread_mutex_t grow_mu;     /* file growth (slow: fallocate + page population) */
    pthread_mutex_t create_mu;   /* one segment creation at a time */
    pp__seg *segs, *tail, *next_seg;
    pthread_mutex_t sync_mu;     /* one sync at a time; segment deletion */
    uint64_t durable;            /* atomic */
    uint64_t st_syncs, st_compactions, st_deleted;
    pthread_mutex_t snap_mu;
    uint64_t snap_newest, snap_oldest, st_snapshots;  /* atomic */
    uint64_t next_snap_ns, last_sync_ns;
    uint64_t strict_compacted;   /* strict mode: oldest snapshot seq at the last compaction */
    /* identity */
    pp_store *s;
    int mode;
    char *name, *dir, *jdir, *sdir, *ldir;
    /* market data */
    uint64_t md_hp_last;         /* hot path: last exchange seq journaled */
    uint64_t md_last_pub;        /* atomic copy for other threads */
    pp__md md;                   /* shadow side, under shadow_mu */
    char *mdir;
    /* format 2 (one journal per store): iid != 0 */
    uint32_t iid;                /* the instrument's compact id in the store journal */
    int dirs_made;               /* books/<name>/{snapshots,md} exist (made at the first snapshot) */
    uint64_t applied_pos;        /* shadow_mu: journal position after the last frame applied */
    uint64_t first_pos;          /* atomic: the journal position of the book's first frame still needed */
    uint64_t recovered_snap;     /* recovery: the seq its snapshot covers (frames up to it are skipped) */
    uint64_t snap_oldest_pos;    /* atomic: the position the oldest kept snapshot covers */
    uint64_t snap_newest_pos;    /* atomic: the position the newest snapshot covers */
    uint64_t spos_seq[4], spos_pos[4]; unsigned spos_i;   /* snap_mu: (seq, position) of snapshots written
                                                           * or read here, so that a rotation need not read
                                                           * them again (a sealed one whole) */
    /* book views (>>views): per-side price levels, made at the first view, then kept by the drain; shadow_mu */
    int lv_on;
    pp__lvside lv[2];            /* [0] bids, [1] asks */
    uint64_t jseg_last;          /* recovery, then the syncer (sync_mu): 1 + the last segment index in jsegs */
    uint64_t *jsegs;             /* seg_mu: {segment index, the book's first seq in it} per segment it
                                  * has frames in, oldest first (pp_stats.journal_first_seq) */
    size_t jsegs_n, jsegs_cap;   /* seg_mu */
};

typedef struct pp__fkeys pp__fkeys;
/* >>clock ------------------------------------------------------------------
 * The timestamp of a cancel, execute or modify given none (pp__now): the
 * vDSO's clock_gettime(CLOCK_REALTIME) costs 20-30 ns in a VM, a third of
 * an event. Where the kernel itself keeps CLOCK_REALTIME on the TSC
 * (clocksource "tsc": invariant, synchronized across cores, checked by the
 * kernel), the trading thread reads the TSC instead and extrapolates from
 * an anchor (a TSC reading and CLOCK_REALTIME taken together) that the
 * maintainer thread renews every millisecond, at a rate measured over at
 * least 100 ms. An anchor older than 100 ms (no maintainer: PP_NO_THREADS,
 * or one busy in a long snapshot), a rate that moved by more than 0.1 %
 * (a clock step, a suspend), or another clocksource: clock_gettime, as
 * before. The timestamps stay CLOCK_REALTIME to within what the clock
 * slews over the anchor's age (a millisecond, at most 100 ms): under a
 * microsecond at NTP's largest slew. PINNACLE_PERSIST_NO_TSC_CLOCK leaves
 * it out. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__linux__) && !defined(PINNACLE_PERSIST_NO_TSC_CLOCK)
#define PP__TSC_CLOCK 1
#else
#define PP__TSC_CLOCK 0
#endif
typedef struct pp__tscclk {
    uint32_t seq;                /* odd while the maintainer writes the anchor (a seqlock) */
    uint32_t on;                 /* the anchor may be used */
    uint64_t tsc0, ns0;          /* the anchor */
    uint64_t mult;               /* ns per tick, 32.32 fixed point (< 2^32: a TSC above 1 GHz) */
    uint64_t max_ticks;          /* 100 ms of ticks: an older anchor is not used */
    /* the maintainer's own */
    int usable;                  /* clocksource is tsc (pp_open) */
    uint64_t base_tsc, base_ns;  /* where the rate is measured from */
    uint64_t rate;               /* the last rate measured, 0: none (yet) */
} pp__tscclk;

#if PP__TSC_CLOCK
static inline uint64_t pp__rdtsc(void) { return __builtin_ia32_rdtsc(); }
#endif

/* pp_open: is the kernel's own clocksource the TSC? */
static void pp__tsc_init(pp__tscclk *k) {
    memset(k, 0, sizeof *k);
#if PP__TSC_CLOCK
    char cs[32] = {0};
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f) { if (!fgets(cs, sizeof cs, f)) cs[0] = 0; fclose(f); }
    k->usable = strcmp(cs, "tsc\n") == 0 || strcmp(cs, "tsc") == 0;
#endif
}

/* The maintainer: a new anchor (one writer). */
static void pp__tsc_anchor(pp__tscclk *k) {
#if PP__TSC_CLOCK
    if (!k->usable) return;
    struct timespec ts;
    uint64_t a = pp__rdtsc();
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t c = pp__rdtsc();
    if (c < a || c - a > 200000) return;           /* preempted between the readings: not an anchor */
    uint64_t tsc = a + (c - a) / 2, ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    if (!k->base_tsc || ns < k->base_ns || tsc < k->base_tsc) {   /* the first, or the clock stepped back */
        k->base_tsc = tsc; k->base_ns = ns; k->rate = 0;
    } else if (ns - k->base_ns >= 100000000ull) {
        double r = (double)(ns - k->base_ns) / (double)(tsc - k->base_tsc) * 4294967296.0;
        uint64_t m = r > 0 && r < 4294967296.0 ? (uint64_t)r : 0;
        /* a plausible TSC (1-10 GHz), and steady: a rate off by more than
         * 0.1 % from the last one is a clock step or a suspend, not the TSC */
        int ok = m > 429496729ull && (!k->rate || (m > k->rate ? m - k->rate : k->rate - m) * 1000 < k->rate);
        k->rate = ok ? m : 0;                      /* 0: measured afresh over the next 100 ms */
        k->base_tsc = tsc; k->base_ns = ns;
    }
    /* the seqlock without fences (TSan has none): each field a release
     * store, so none is seen before the odd seq; the reader's acquire loads
     * keep its second look at seq after them */
    uint32_t s0 = k->seq;
    __atomic_store_n(&k->seq, s0 + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&k->tsc0, tsc, __ATOMIC_RELEASE);
    __atomic_store_n(&k->ns0, ns, __ATOMIC_RELEASE);
    __atomic_store_n(&k->mult, k->rate, __ATOMIC_RELEASE);
    __atomic_store_n(&k->max_ticks, k->rate ? (100000000ull << 32) / k->rate : 0, __ATOMIC_RELEASE);
    __atomic_store_n(&k->on, k->rate ? 1u : 0u, __ATOMIC_RELEASE);
    __atomic_store_n(&k->seq, s0 + 2, __ATOMIC_RELEASE);
#else
    (void)k;
#endif
}

/* The trading thread: CLOCK_REALTIME from the TSC, or 0 (use clock_gettime). */
static inline int pp__tsc_now(const pp__tscclk *k, uint64_t *out) {
#if PP__TSC_CLOCK
    uint32_t s1 = __atomic_load_n(&k->seq, __ATOMIC_ACQUIRE);
    uint32_t on = __atomic_load_n(&k->on, __ATOMIC_ACQUIRE);
    uint64_t tsc0 = __atomic_load_n(&k->tsc0, __ATOMIC_ACQUIRE), ns0 = __atomic_load_n(&k->ns0, __ATOMIC_ACQUIRE);
    uint64_t mult = __atomic_load_n(&k->mult, __ATOMIC_ACQUIRE), maxt = __atomic_load_n(&k->max_ticks, __ATOMIC_ACQUIRE);
    if (!on || (s1 & 1) || __atomic_load_n(&k->seq, __ATOMIC_RELAXED) != s1) return 0;
    uint64_t d = pp__rdtsc() - tsc0;
    if (d > maxt) return 0;                        /* stale (or a TSC behind the anchor: d wrapped) */
    *out = ns0 + ((d * mult) >> 32);               /* d < 2^32 ticks and mult < 2^32: no overflow */
    return 1;
#else
    (void)k; (void)out;
    return 0;
#endif
}

struct pp_store {
    pp_config cfg;
    pp__tscclk clk;              /* pp__now's clock (>>clock) */
    uint64_t clk_at;             /* the maintainer's: when it last renewed clk's anchor */
    pp__fkeys *fk;               /* encryption at rest: the data keys, or NULL */
    plg_config slog;             /* strict mode: the store log's template (strict_log, with the keys) */
    char *dir;
    int lock_fd;
    pthread_mutex_t mu;          /* books array */
    pthread_mutex_t open_mu;     /* pp_book_open: one lookup-or-create at a time */
    pp_book **books; size_t nbooks, cap;
    pthread_mutex_t wake_mu; pthread_cond_t wake_cv;
    int stop;
    pthread_t syncer, maint, grower; int threads;
    uint64_t snap_ns;
    /* format 2 */
    struct pp__sj *sj;           /* the store journal, or NULL (per-instrument layout) */
    pp_book **byid[1024];        /* iid -> book: 1024 chunks of 1024, made on demand, never moved */
    uint32_t next_iid;           /* open_mu */
    pthread_mutex_t drain_mu;    /* the dispatch of journal frames to the shadows */
    uint64_t drain_pos;          /* drain_mu: the next frame to dispatch */
    uint64_t catalog_iid;        /* open_mu: ids below are in the catalog file on disk */
    uint32_t jreaders;           /* open_mu: pp_journal_open scans in progress (no segment file is removed meanwhile) */
    int jr_hold;                 /* open_mu: a compaction waits to remove files: no new scan starts */
    pthread_cond_t jr_cv;        /* with open_mu: jreaders fell to 0, or jr_hold was dropped; CLOCK_MONOTONIC */
    uint32_t book_orders0;       /* format 2: a book's first table size (expected_orders if the config set it, else 8) */
    /* pp_wait (mmap modes): broadcast after a sync round moved a book's
     * durable seq and when a book or the store journal is poisoned */
    pthread_mutex_t dur_mu;
    pthread_cond_t dur_cv;       /* CLOCK_MONOTONIC */
    /* PP_OPEN_QUARANTINE: the instruments pp_open set aside (written by pp_open only) */
    pp_quarantine_info *quar; size_t nquar;
    uint32_t *quar_iid;          /* format 2: each one's id (kept in the catalog, never given again); 0 otherwise */
    char *adir;                  /* pp_config.archive_dir (format 2), or NULL: history is deleted */
    char *sjadir;                /* strict mode with adir: <adir>/journal, where picolog moves released segments */
    /* pp_book_retire: the retired instruments (retired.ppr), open_mu */
    uint32_t *ret_iid; char **ret_name; size_t nret;
    pp_book **gone; size_t ngone;   /* open_mu: books retired by this store, freed at close (handles stay valid memory) */
};

static void pp__dur_notify(pp_store *S) {
    pthread_mutex_lock(&S->dur_mu);
    pthread_cond_broadcast(&S->dur_cv);
    pthread_mutex_unlock(&S->dur_mu);
}

static void pp__poison(pp_book *b, int err) {
    int zero = 0;
    if (__atomic_compare_exchange_n(&b->err, &zero, err, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
        PP__MSG(b->s, err, "%s: book poisoned: %s; it acknowledges nothing more", b->name, pp_strerror(err));
        pp__dur_notify(b->s);        /* pp_wait returns the error */
    }
}

static void pp__seg_free(pp__seg *g) {
    if (!g) return;
    if (g->base) munmap(g->base, g->map_len);
    if (g->fd >= 0) close(g->fd);
    PINNACLE_PERSIST_FREE(g->path);
    PINNACLE_PERSIST_FREE(g);
}

/* Map an open segment for appending: one mapping over map_len, never moved. */
static int pp__seg_map(pp__seg *g, uint64_t map_len) {
    g->map_len = map_len;
    void *p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
    if (p == MAP_FAILED) return pp__from_errno(errno);
    g->base = (uint8_t *)p;
    return 0;
}

/* Create segment `index` (first_seq may be 0: prepared ahead): temp file with
 * the header and the first chunk, synced, renamed, directory synced. */
static int pp__seg_create(pp_book *b, uint64_t index, uint64_t first_seq, pp__seg **out) {
    const pp_config *c = &b->s->cfg;
    char name[4096], tmp[4200];
    pp__numbered(name, sizeof name, b->jdir, index, ".ppj");
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    pp__seg *g = (pp__seg *)pp__alloc(sizeof *g);
    if (!g) return PP_ENOMEM;
    g->fd = -1; g->index = index; g->first_seq = first_seq;
    int rc = plg_random(&g->salt, sizeof g->salt) ? PP_ESYS : 0;
    g->seed = pp__seed(g->salt);
    g->path = pp__strdup(name);
    if (!rc && !g->path) rc = PP_ENOMEM;
    int fd = rc ? -1 : open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!rc && fd < 0) rc = pp__from_errno(errno);
    uint64_t first_alloc = c->journal_chunk_bytes;
    if (!rc) rc = pp__alloc_range(fd, 0, first_alloc);
    if (!rc) {
        uint8_t h[PP__PAGE];
        memset(h, 0, sizeof h);
        pp__hdr_encode(h, g);
        errno = 0;                                     /* a short write sets none */
        if (pp__sys_pwrite(fd, h, sizeof h, 0) != (int64_t)sizeof h) rc = errno ? pp__from_errno(errno) : PP_EIO;
    }
    if (!rc) rc = pp__fdatasync(fd);
    if (!rc && pp__sys_rename(tmp, name) != 0) rc = pp__from_errno(errno);
    if (!rc) rc = pp__fsync_dir(b->jdir);
    if (rc) {
        if (fd >= 0) { close(fd); pp__sys_unlink(tmp); }
        pp__seg_free(g);
        return rc;
    }
    g->fd = fd;
    rc = pp__seg_map(g, c->journal_segment_bytes);
    if (rc) { pp__seg_free(g); return rc; }
    g->alloc_end = first_alloc;
    g->pub_end = g->synced_end = PP__DATA_OFF;
    madvise(g->base, first_alloc, MADV_POPULATE_WRITE);
    *out = g;
    return 0;
}

/* Extend the file under the mapping by chunks until `want` bytes are
 * allocated (capped at the mapping). Called with grow_mu held. */
static int pp__seg_grow(pp_book *b, pp__seg *g, uint64_t want) {
    uint64_t have = pp__load_acq(&g->alloc_end), chunk = b->s->cfg.journal_chunk_bytes;
    if (want > g->map_len) want = g->map_len;
    while (have < want) {
        uint64_t n = chunk;
        if (have + n > g->map_len) n = g->map_len - have;
        int rc = pp__alloc_range(g->fd, have, n);
        if (rc) return rc;
        madvise(g->base + have, n, MADV_POPULATE_WRITE);   /* fault the pages in here, not on the hot path */
        have += n;
        pp__store_rel(&g->alloc_end, have);
    }
    return 0;
}

/* Make sure b->next_seg is a prepared segment (index cur + 1). Maintainer,
 * or the hot path when a segment filled up before the maintainer got to it. */
static int pp__prepare_next(pp_book *b) {
    int rc = 0;
    pthread_mutex_lock(&b->create_mu);
    pthread_mutex_lock(&b->seg_mu);
    int have = b->next_seg != NULL;
    uint64_t idx = b->cur->index + 1;
    pthread_mutex_unlock(&b->seg_mu);
    if (!have) {
        pp__seg *nx = NULL;
        rc = pp__seg_create(b, idx, 0, &nx);
        if (!rc) { pthread_mutex_lock(&b->seg_mu); b->next_seg = nx; pthread_mutex_unlock(&b->seg_mu); }
    }
    pthread_mutex_unlock(&b->create_mu);
    return rc;
}

/* Hot path, slow part: room for one entry. Usually the syncer has already
 * grown the file: one atomic load, no lock. A roll takes the prepared next
 * segment (a pointer swap and a header update in the mapping: no syscall).
 * Only when the background threads lag does the hot path create a segment or
 * grow the file itself (counted in grow_stalls). */
static int pp__room_slow(pp_book *b) {
    int rc = 0;
    int roll = (pp__load_rlx(&b->ctl) & PP__CTL_ROLL) != 0;
    int full = b->woff + PP__ENTRY > b->cur->map_len;
    if (!roll && !full) {
        b->lim = pp__load_acq(&b->cur->alloc_end);
        if (b->woff + PP__ENTRY <= b->lim) return 0;
    }
    if (full) {
        pp__bump(&b->st_grow);
        rc = pp__prepare_next(b);
    }
    if (!rc && (roll || full)) {
        pthread_mutex_lock(&b->seg_mu);
        if (b->next_seg) {
            pp__seg *g = b->cur, *nx = b->next_seg;
            b->next_seg = NULL;
            nx->first_seq = b->last + 1;
            pp__hdr_encode(nx->base, nx);      /* bytes 0..63; the syncer writes only the mark at 512 */
            pp__store_rel(&g->final_end, b->woff);
            nx->next = NULL; b->tail->next = nx; b->tail = nx;
            b->cur = nx; b->woff = PP__DATA_OFF; b->seed = nx->seed;
            pp__bump(&b->st_rolls);
        }
        __atomic_fetch_and(&b->ctl, ~PP__CTL_ROLL, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&b->seg_mu);
    }
    pp__seg *g = b->cur;
    if (!rc && b->woff + PP__ENTRY > pp__load_acq(&g->alloc_end)) {
        pp__bump(&b->st_grow);
        pthread_mutex_lock(&b->grow_mu);
        rc = pp__seg_grow(b, g, b->woff + b->s->cfg.journal_chunk_bytes);
        pthread_mutex_unlock(&b->grow_mu);
    }
    b->lim = pp__load_acq(&g->alloc_end);
    if (rc) { pp__poison(b, rc); return rc; }
    return 0;
}

/* >>sync ------------------------------------------------------------------ */
/* Take [p, p + len) of a shared file mapping out of the page tables before
 * its writeback (see pp__sj_flush_seg): the bytes stay in the page cache.
 * Also PP_PRIVATE_PAGES' written copies, once the file holds their bytes:
 * their memory goes back. The kernel refuses MADV_DONTNEED on locked memory (an engine that calls
 * mlockall, as many do to keep page faults off the trading thread): those
 * pages are behind every writer and need not stay resident, so they are
 * unlocked first; the pages ahead keep their lock. */
static void pp__zap_written(uint8_t *p, size_t len) {
    if (madvise(p, len, MADV_DONTNEED) == 0 || errno != EINVAL) return;
    if (munlock(p, len) == 0) (void)madvise(p, len, MADV_DONTNEED);
}

/* msync(MS_SYNC) of [from, to). On Linux this is vfs_fsync_range(file,
 * start, end, datasync=1) (mm/msync.c): the range is written back and the
 * filesystem commits what is needed to read it and flushes the device cache,
 * i.e. a ranged fdatasync. A whole-file fdatasync on top would also write back
 * the pages pre-faulted ahead of the writer, write-protect them, and make the
 * hot path fault on each; so it is added only where msync is not known to be
 * ranged-durable (not Linux). */
static int pp__msync(int fd, uint8_t *base, uint64_t from, uint64_t to) {
    uint64_t a = from & ~(uint64_t)(PP__PAGE - 1);
    (void)fd;
    if (to <= a) return 0;
    if (pp__sys_msync(fd, base + a, to - a, a) != 0) return pp__from_errno(errno);
#ifndef __linux__
    return pp__fdatasync(fd);
#else
    return 0;
#endif
}

static uint64_t pp__seq_at(const pp__seg *g, uint64_t end) {
    return g->first_seq + (end - PP__DATA_OFF) / PP__ENTRY - 1;
}

/* Make the mmap journal durable up to what is published now: each segment
 * in order, data then its durable mark (two flushes), so an entry is called
 * durable only when a mark covering it is on stable storage. sync_mu keeps
 * compaction from freeing segments meanwhile. */
static int pp__sync_mmap(pp_book *b, int whole_pages_only) {
    int rc = pp__load_acq(&b->err);
    if (rc) return rc;
    pthread_mutex_lock(&b->sync_mu);
    /* a sync that failed while this one waited: its pages may be gone, and a
     * second msync would succeed anyway (the error is reported once) */
    rc = pp__load_acq(&b->err);
    if (rc) { pthread_mutex_unlock(&b->sync_mu); return rc; }
    uint64_t target = 0;
    pthread_mutex_lock(&b->seg_mu);
    pp__seg *g = b->segs;
    pthread_mutex_unlock(&b->seg_mu);
    while (g) {
        uint64_t fin = pp__load_acq(&g->final_end);
        uint64_t end = fin ? fin : pp__load_acq(&g->pub_end);
        uint64_t to = 0;          /* msync up to here: end, or the last whole page */
        if (!fin && whole_pages_only) {
            /* background syncs stop at the last whole page: msync write-protects
             * what it writes back, and the hot path would fault on a partly
             * filled tail page; the entries on it go with the next round. When
             * whole pages bring nothing new (a quiet writer), the tail is
             * synced too, so nothing waits longer than about one interval. */
            uint64_t pe = end & ~(uint64_t)(PP__PAGE - 1);
            uint64_t we = pe <= PP__DATA_OFF ? PP__DATA_OFF : PP__DATA_OFF + (pe - PP__DATA_OFF) / PP__ENTRY * PP__ENTRY;
            if (we > g->synced_end) { end = we; to = pe; }   /* pe >= we: every entry below we is synced */
        }
        if (end > g->synced_end && g->base) {
            uint64_t seq = pp__seq_at(g, end);
            /* the first sync of a segment includes its header page (first_seq set at the roll) */
            if (!to) to = end;
            /* whole pages of published entries leave the mapping before the
             * writeback, as in the store journal (pp__sj_flush_seg): one TLB
             * shootdown for the range instead of one per page written back */
            uint64_t za = g->synced_end & ~(uint64_t)(PP__PAGE - 1), zb = end & ~(uint64_t)(PP__PAGE - 1);
            if (za < PP__DATA_OFF) za = PP__DATA_OFF;
            if (zb > za) pp__zap_written(g->base + za, (size_t)(zb - za));
            rc = pp__msync(g->fd, g->base, g->synced_end == PP__DATA_OFF ? 0 : g->synced_end, to);
            if (!rc) {
                /* one write(2) of the whole mark, not stores into the mapping:
                 * a kill between stores left a torn mark in the page cache
                 * (new end, old crc) that recovery must refuse; a 20-byte
                 * write within a page is all or nothing, also for writeback */
                uint8_t h[PP__MARK_OFF + 20];
                pp__mark_put(h, g->salt, end, seq);
                errno = 0;
                if (pp__sys_pwrite(g->fd, h + PP__MARK_OFF, 20, PP__MARK_OFF) != 20) rc = errno ? pp__from_errno(errno) : PP_EIO;
                else rc = pp__msync(g->fd, g->base, 0, PP__PAGE);
            }
            if (rc) break;
            g->synced_end = end;
            pp__add_rlx(&b->st_syncs, 1);
        }
        if (end > PP__DATA_OFF && g->synced_end >= end) target = pp__seq_at(g, end);
        if (!fin || g->synced_end < fin) break;
        if (g->base) {            /* finished and durable: release it (the grower may still hold it) */
            pthread_mutex_lock(&b->grow_mu);
            munmap(g->base, g->map_len);
            g->base = NULL;
            if (g->fd >= 0) { close(g->fd); g->fd = -1; }
            pthread_mutex_unlock(&b->grow_mu);
        }
        pthread_mutex_lock(&b->seg_mu);
        g = g->next;
        pthread_mutex_unlock(&b->seg_mu);
    }
    int moved = !rc && target > pp__load_rlx(&b->durable);
    if (moved) pp__store_rel(&b->durable, target);
    if (rc) pp__poison(b, rc);                /* before the next sync can start */
    pthread_mutex_unlock(&b->sync_mu);
    if (moved) pp__dur_notify(b->s);
    return rc;
}

/* >>storejournal ------------------------------------------------------------
 * One journal for the whole store, shared by every instrument (the layout of
 * format 2, docs/pinnacle-format.md). Files <dir>/<20-digit index>.ppj, each
 * a 4096-byte header page and a data area of data_bytes (a power of two, the
 * same for every segment of a store). A journal position is
 * index * data_bytes + offset in the data area: it only grows, and orders
 * every event of every instrument (the store's global order). Segment
 * indexes start at 1, so position 0 is never a frame.
 *
 * Header page:
 *   0 "PPSJRN01"  8 u32 version (3)  12 u32 frame alignment (64)
 *  16 u64 salt  24 u64 index  32 u64 data_bytes  40 u64 created (realtime ns)
 *  60 u32 crc32c(bytes 0..59)
 * Durable mark: two slots, at 512 and 1024 (each alone in its sector), each
 * u64 end, u64 flags (1 = sealed), u64 generation, u32 crc32c(salt || end ||
 * flags || generation): every frame of the data area below `end` was durable
 * when the mark was written; a sealed segment holds nothing after `end`
 * (recovery moves on to the next segment). Mark g goes into slot g % 2, so
 * a write never touches the newest valid mark: a torn write (short, killed)
 * damages only a slot the other one supersedes, and recovery takes the
 * newest valid slot. Version 2 (an unreleased preview) had one slot.
 *
 * Frame (64-byte aligned, 64 bytes at least):
 *   0 u32 length (the commit word: written last, 0 = not published)
 *   4 u32 crc32c(seed(salt) || u64 position || bytes 8..length)
 *   8 u8 type (0 = padding) ... the rest belongs to the type.
 *
 * Appenders on any thread claim space with one atomic fetch-add on the tail,
 * write the frame and publish it by storing the length last (Aeron's term
 * appender). A claim that crosses the end of a segment pads the rest of it,
 * and pads the part of the next segment it spilled into, then claims again.
 * The syncer and recovery stop at the first unpublished or invalid frame: a
 * claimed but unpublished slot is the end. */
/* used by the books from the next step on; until then a test drives it */
static int pp__map_ro(const char *path, uint8_t **p, uint64_t *size);
#define PP__SJFN static __attribute__((unused))
#define PP__SJ_MAGIC    "PPSJRN01"
#define PP__SJ_VERSION  3u              /* 3: two durable-mark slots (2, the preview, had one) */
#define PP__SJ_MARK_LEN 28u              /* one mark slot: end, flags, generation, crc */
#define PP__SJ_MARK_AT(slot) (PP__MARK_OFF + 512u * (slot))   /* slot 0 or 1, each in its own sector */
#define PP__SJ_ALIGN    64u              /* frames start on a cache line */
#define PP__SJ_WIN      4u               /* segments mapped at most: fds and mappings bounded */
#define PP__SJ_MAXFRAME (16u << 10)     /* <= a quarter of the smallest segment: a claim crosses at most once */
#define PP__SJ_SEALED   1u
#define PP__SJ_AHEAD    (4u << 20)       /* bytes faulted in ahead of the tail by the preparer */
enum { PP__SJ_PAD = 0 };
PP__STATIC_ASSERT(PP__SJ_ALIGN % 8 == 0 && PP__PAGE % PP__SJ_ALIGN == 0, "frames tile a page");
PP__STATIC_ASSERT(PP__MARK_OFF % 512 == 0 && PP__SJ_MARK_LEN <= 512 && PP__SJ_MARK_AT(1) + 512 <= PP__PAGE,
                  "each mark slot alone in its own sector of the header page");

typedef struct pp__sjseg {
    struct pp__sjseg *dead;        /* retired: kept until close (a writer may still compare its index) */
    uint64_t index, salt, base;    /* base: the position of data byte 0 */
    uint32_t seed;
    int fd;
    uint8_t *map;                  /* header page + data area, read-write */
    uint64_t map_len;
    uint64_t populated;            /* data bytes faulted in (preparer) */
    uint64_t mark_end;             /* syncer: what the mark on disk vouches for */
    uint64_t mark_gen;             /* syncer: generation of the last mark written (0: none) */
    uint64_t synced;               /* syncer: data bytes below are durable */
} pp__sjseg;

typedef struct pp__sjwhere { char file[4096]; uint64_t offset; char detail[256]; int torn; } pp__sjwhere;
enum { PP__SJ_READONLY = 1, PP__SJ_PRIVATE = 2 };   /* pp__sj_open's how */

typedef struct pp__sjrel { uint64_t seq, end; } pp__sjrel;
typedef struct pp__sjfirst { uint64_t index, seq; } pp__sjfirst;
typedef struct pp__sj {
    uint64_t tail;                 /* atomic: the next position to claim */
    char pad0[56];
    pp__sjseg *win[PP__SJ_WIN];    /* atomic: segment i lives in win[i % PP__SJ_WIN] */
    uint64_t shift, data_bytes;
    int err;                       /* atomic: what poisoned the journal */
    uint32_t parked;               /* atomic: strict mode's syncer sleeps; the next publisher wakes it (wake_fd) */
    char pad1[56];
    pthread_mutex_t mu;            /* segment creation and retirement */
    pthread_mutex_t sync_mu;       /* one sync round at a time */
    char *dir;
    char *archive;                 /* NULL, or where compaction moves segments (<archive_dir>/journal) */
    uint64_t durable;              /* atomic: every frame below this position is durable */
    uint64_t scan;                 /* sync_mu: the published prefix ends here */
    uint64_t hold;                 /* atomic: lowest position an in-process reader still reads */
    uint64_t first_index;          /* mu: the oldest segment file */
    pp__sjseg *dead;               /* mu: retired segments, unmapped, freed at close */
    uint64_t st_flushes, st_rounds, st_stalls, st_created, st_dropped;  /* atomic */
    /* PP_NO_THREADS: a writer waiting for a window slot runs the dispatch
     * and a sync round itself (nobody else retires segments); NULL: waits */
    void (*help)(void *ctx);
    void *help_ctx;
    uint32_t want_round;           /* atomic: a writer waits for a window slot: the syncer syncs now, not at its interval */
    int priv;                      /* PP_PRIVATE_PAGES: segments mapped private, written by pwrite */
    /* strict mode (>>strictjournal): the segments are anonymous memory, the
     * staging area of the writers; the syncer relays their published frames
     * into one picolog log, and that log is the journal on disk */
    plg_log *log;
    uint64_t relay;                /* sync_mu: frames below this position are in the log (or padding) */
    pp__sjrel *fifo;               /* sync_mu: records relayed, not yet durable, oldest first (a ring) */
    size_t fhead, fn, fcap;
    pp__sjfirst *first;            /* mu: the first record starting in each block of positions, oldest first */
    size_t nfirst, capfirst;
    uint32_t rec_max;              /* the largest record the relay writes */
    int wake_fd;                   /* eventfd: a publisher wakes the parked syncer; -1 outside strict mode */
} pp__sj;

PP__SJFN uint64_t pp__sj_stat(const uint64_t *p) { return pp__load_rlx(p); }

PP__SJFN void pp__sj_poison(pp__sj *j, int err) {
    int zero = 0;
    __atomic_compare_exchange_n(&j->err, &zero, err, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

PP__SJFN void pp__sj_hdr_encode(uint8_t *h, const pp__sjseg *g, uint64_t data_bytes) {
    memset(h, 0, 64);
    memcpy(h, PP__SJ_MAGIC, 8);
    pp__put32(h + 8, PP__SJ_VERSION); pp__put32(h + 12, PP__SJ_ALIGN);
    pp__put64(h + 16, g->salt); pp__put64(h + 24, g->index); pp__put64(h + 32, data_bytes);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pp__put64(h + 40, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
    pp__put32(h + 60, plg_crc32c(0, h, 60));
}

PP__SJFN int pp__sj_hdr_decode(const uint8_t *h, uint64_t *salt, uint64_t *index, uint64_t *data_bytes) {
    if (memcmp(h, PP__SJ_MAGIC, 8) != 0) return PP_EFORMAT;
    if (pp__get32(h + 60) != plg_crc32c(0, h, 60)) return PP_ECORRUPT;
    if (pp__get32(h + 8) != PP__SJ_VERSION || pp__get32(h + 12) != PP__SJ_ALIGN) return PP_EFORMAT;
    *salt = pp__get64(h + 16); *index = pp__get64(h + 24); *data_bytes = pp__get64(h + 32);
    return 0;
}

/* Encode mark generation `gen` (>= 1) into its slot's PP__SJ_MARK_LEN bytes at m. */
PP__SJFN void pp__sj_mark_put(uint8_t *m, uint64_t salt, uint64_t end, uint64_t flags, uint64_t gen) {
    PINNACLE_PERSIST_ASSERT(gen >= 1);
    uint8_t b[32];
    pp__put64(b, salt); pp__put64(b + 8, end); pp__put64(b + 16, flags); pp__put64(b + 24, gen);
    memcpy(m, b + 8, 24);
    pp__put32(m + 24, plg_crc32c(0, b, 32));
}

/* One slot: 1 valid (its generation belongs in this slot), 0 all zero, -1 damaged. */
PP__SJFN int pp__sj_mark_slot(const uint8_t *m, unsigned slot, uint64_t salt, uint64_t *end, uint64_t *flags, uint64_t *gen) {
    uint8_t b[32];
    pp__put64(b, salt); memcpy(b + 8, m, 24);
    uint64_t g = pp__get64(m + 16);
    if (pp__get32(m + 24) == plg_crc32c(0, b, 32) && g >= 1 && (g & 1) == slot) {
        *end = pp__get64(m); *flags = pp__get64(m + 8); *gen = g;
        return 1;
    }
    for (unsigned i = 0; i < PP__SJ_MARK_LEN; i++) if (m[i]) return -1;
    return 0;
}

/* The durable mark of a header page h: the newest valid slot. 1 valid, 0
 * none (never marked, or only a torn first mark: it vouched for nothing the
 * data does not show), -1 damaged (both slots: no write tears both, since
 * a write never touches the newest valid one). *gen: the generation found
 * (0 for none), the next write is *gen + 1. */
PP__SJFN int pp__sj_mark_get(const uint8_t *h, uint64_t salt, uint64_t *end, uint64_t *flags, uint64_t *gen) {
    uint64_t e[2] = {0, 0}, f[2] = {0, 0}, g[2] = {0, 0};
    int st[2];
    for (unsigned k = 0; k < 2; k++) st[k] = pp__sj_mark_slot(h + PP__SJ_MARK_AT(k), k, salt, &e[k], &f[k], &g[k]);
    *end = 0; *flags = 0; *gen = 0;
    if (st[0] < 0 && st[1] < 0) return -1;
    if (st[0] != 1 && st[1] != 1) return 0;
    unsigned k = st[1] == 1 && (st[0] != 1 || g[1] > g[0]) ? 1u : 0u;
    *end = e[k]; *flags = f[k]; *gen = g[k];
    return 1;
}

/* Write the next mark (generation *gen + 1) into its slot with one pwrite:
 * all or nothing in the page cache, and a short or failed write leaves the
 * newest valid mark (the other slot) intact. 0, or the error. */
PP__SJFN int pp__sj_mark_write(int fd, uint64_t salt, uint64_t *gen, uint64_t end, uint64_t flags) {
    uint8_t m[PP__SJ_MARK_LEN];
    uint64_t g = *gen + 1;
    pp__sj_mark_put(m, salt, end, flags, g);
    errno = 0;
    if (pp__sys_pwrite(fd, m, sizeof m, PP__SJ_MARK_AT(g & 1)) != (int64_t)sizeof m) return errno ? pp__from_errno(errno) : PP_EIO;
    *gen = g;
    return 0;
}

PP__SJFN uint32_t pp__sj_crc(uint32_t seed, uint64_t pos, const uint8_t *f, uint32_t len) {
    uint8_t p[8];
    pp__put64(p, pos);
    return plg_crc32c(plg_crc32c(seed, p, 8), f + 8, len - 8);
}

/* Publish a written frame: checksum, then the commit word, last. */
static inline void pp__sj_publish(uint8_t *f, uint32_t seed, uint64_t pos, uint32_t len) {
    PINNACLE_PERSIST_ASSERT(len >= PP__SJ_ALIGN);
    PINNACLE_PERSIST_ASSERT(len % PP__SJ_ALIGN == 0);
    pp__put32(f + 4, pp__sj_crc(seed, pos, f, len));
    __atomic_store_n((uint32_t *)(void *)f, len, __ATOMIC_RELEASE);
}

/* After a publish: strict mode's syncer may be parked (an idle store);
 * wake it. One relaxed load on the hot path (the line of err, which every
 * claim reads); a system call only on the first event after a quiet spell.
 * A wake missed in the race with the syncer going to sleep costs at most
 * its park timeout (pp__syncer_strict). */
static void pp__sj_unpark(pp__sj *j) {
    if (__atomic_exchange_n(&j->parked, 0u, __ATOMIC_ACQ_REL) && j->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(j->wake_fd, &one, sizeof one);
        (void)n;                                   /* EAGAIN: already readable */
    }
}
static inline void pp__sj_nudge(pp__sj *j) {
    if (__builtin_expect(__atomic_load_n(&j->parked, __ATOMIC_RELAXED) != 0, 0)) pp__sj_unpark(j);
}

/* A strict-mode segment: anonymous memory, no file (>>strictjournal). */
PP__SJFN int pp__sj_seg_create_anon(pp__sj *j, uint64_t index, pp__sjseg **out) {
    pp__sjseg *g = (pp__sjseg *)pp__alloc(sizeof *g);
    if (!g) return PP_ENOMEM;
    g->fd = -1; g->index = index; g->base = index * j->data_bytes;
    if (plg_random(&g->salt, sizeof g->salt)) { PINNACLE_PERSIST_FREE(g); return PP_ESYS; }
    g->seed = pp__seed(g->salt);
    g->map_len = PP__PAGE + j->data_bytes;
    void *p = mmap(NULL, (size_t)g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) { int e = errno; PINNACLE_PERSIST_FREE(g); return pp__from_errno(e); }
    g->map = (uint8_t *)p;
    uint64_t first = j->data_bytes < PP__SJ_AHEAD ? j->data_bytes : PP__SJ_AHEAD;
    madvise(g->map, (size_t)(PP__PAGE + first), MADV_POPULATE_WRITE);
    g->populated = first;
    pp__add_rlx(&j->st_created, 1);
    *out = g;
    return 0;
}

PP__SJFN void pp__sj_seg_free(pp__sjseg *g) {
    if (!g) return;
    if (g->map) munmap(g->map, g->map_len);
    if (g->fd >= 0) close(g->fd);
    PINNACLE_PERSIST_FREE(g);
}

/* Create segment `index`: temp file with its whole size allocated and the
 * header, synced, renamed, directory synced; mapped; its first pages
 * faulted in. */
PP__SJFN int pp__sj_seg_create(pp__sj *j, uint64_t index, pp__sjseg **out) {
    if (j->log) return pp__sj_seg_create_anon(j, index, out);
    char name[4096], tmp[4200];
    pp__numbered(name, sizeof name, j->dir, index, ".ppj");
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    pp__sjseg *g = (pp__sjseg *)pp__alloc(sizeof *g);
    if (!g) return PP_ENOMEM;
    g->fd = -1; g->index = index; g->base = index * j->data_bytes;
    int rc = plg_random(&g->salt, sizeof g->salt) ? PP_ESYS : 0;
    g->seed = pp__seed(g->salt);
    int fd = rc ? -1 : open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!rc && fd < 0) rc = pp__from_errno(errno);
    g->map_len = PP__PAGE + j->data_bytes;
    if (!rc) rc = pp__alloc_range(fd, 0, g->map_len);
    if (!rc) {
        uint8_t h[PP__PAGE];
        memset(h, 0, sizeof h);
        pp__sj_hdr_encode(h, g, j->data_bytes);
        errno = 0;
        if (pp__sys_pwrite(fd, h, sizeof h, 0) != (int64_t)sizeof h) rc = errno ? pp__from_errno(errno) : PP_EIO;
    }
    if (!rc) rc = pp__fdatasync(fd);
    if (!rc && pp__sys_rename(tmp, name) != 0) rc = pp__from_errno(errno);
    if (!rc) rc = pp__fsync_dir(j->dir);
    if (!rc) {
        void *p = mmap(NULL, (size_t)g->map_len, PROT_READ | PROT_WRITE, j->priv ? MAP_PRIVATE | MAP_NORESERVE : MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) rc = pp__from_errno(errno);
        else g->map = (uint8_t *)p;
    }
    if (rc) {
        if (fd >= 0) { close(fd); if (!g->map) pp__sys_unlink(tmp); }
        g->fd = -1;
        pp__sj_seg_free(g);
        return rc;
    }
    g->fd = fd;
    uint64_t first = j->data_bytes < PP__SJ_AHEAD ? j->data_bytes : PP__SJ_AHEAD;
    madvise(g->map, (size_t)(PP__PAGE + first), MADV_POPULATE_WRITE);
    g->populated = first;
    pp__add_rlx(&j->st_created, 1);
    *out = g;
    return 0;
}

/* The mapped segment `index`, created if nobody prepared it. Waits while its
 * window slot still holds a segment the syncer has not retired (the writers
 * are PP__SJ_WIN segments ahead of the disk). NULL once poisoned, and NULL
 * for a segment wholly below the durable position: it is done (retired, or
 * about to be), and only a late preparer, which read the tail long ago,
 * asks for one (a claim's segment cannot become durable before the claim
 * is published). Made again, the new empty file would replace the full one. */
PP__SJFN pp__sjseg *pp__sj_seg_get(pp__sj *j, uint64_t index) {
    pp__sjseg *g = NULL;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        if (pp__load_acq(&j->err)) { g = NULL; break; }
        if ((index + 1) * j->data_bytes <= pp__load_acq(&j->durable)) { g = NULL; break; }   /* retire moves it first */
        g = pp__load_acq(&j->win[index % PP__SJ_WIN]);
        if (g && g->index == index) break;
        if (g && g->index > index) { g = NULL; pp__sj_poison(j, PP_ECORRUPT); break; }   /* retired: a bug */
        if (!g) {
            int rc = pp__sj_seg_create(j, index, &g);
            if (rc) { pp__sj_poison(j, rc); g = NULL; break; }
            pp__store_rel(&j->win[index % PP__SJ_WIN], g);
            break;
        }
        pthread_mutex_unlock(&j->mu);                   /* the syncer lags: wait for it */
        pp__add_rlx(&j->st_stalls, 1);
        if (j->help) {
            j->help(j->help_ctx);                       /* no syncer (PP_NO_THREADS): retire it here */
            sched_yield();                              /* another writer's frame may still be unpublished */
        } else {
            pp__store_rel(&j->want_round, 1u);         /* the syncer's next tick (<= 1 ms) runs a round */
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return g;
}

/* Write a padding frame over [off, off + len) of a segment. */
PP__SJFN void pp__sj_pad(pp__sjseg *g, uint64_t off, uint64_t len) {
    uint8_t *f = g->map + PP__PAGE + off;
    memset(f + 4, 0, PP__SJ_ALIGN - 4);
    f[8] = PP__SJ_PAD;
    /* the padding's body past the first 64 bytes is zero (a fresh file) */
    pp__sj_publish(f, g->seed, g->base + off, (uint32_t)len);
}

static int pp__sj_error(pp__sj *j) { int e = pp__load_acq(&j->err); return e ? e : PP_EIO; }

typedef struct pp__sjclaim { uint8_t *f; uint64_t pos; uint32_t seed; } pp__sjclaim;

/* Claim len bytes (a multiple of 64, at most PP__SJ_MAXFRAME) for one frame.
 * Lock-free: a fetch-add on the tail and, except at a segment switch, one
 * acquire load. 0, or the journal's error. */
static inline int pp__sj_claim(pp__sj *j, uint32_t len, pp__sjclaim *c) {
    PINNACLE_PERSIST_ASSERT(len % PP__SJ_ALIGN == 0);
    PINNACLE_PERSIST_ASSERT(len <= PP__SJ_MAXFRAME);
    c->f = NULL; c->pos = 0; c->seed = 0;
    for (;;) {
        uint64_t p = __atomic_fetch_add(&j->tail, (uint64_t)len, __ATOMIC_RELAXED);
        uint64_t idx = p >> j->shift, off = p & (j->data_bytes - 1);
        pp__sjseg *g = pp__load_acq(&j->win[idx % PP__SJ_WIN]);
        if (__builtin_expect(!g || g->index != idx, 0) && !(g = pp__sj_seg_get(j, idx))) return pp__sj_error(j);
        if (__builtin_expect(off + len <= j->data_bytes, 1)) {
            c->f = g->map + PP__PAGE + off; c->pos = p; c->seed = g->seed;
            return 0;
        }
        /* crossing the end: pad the rest of this segment and the part of the
         * next one this claim spilled into, then claim again */
        pp__sj_pad(g, off, j->data_bytes - off);
        pp__sjseg *nx = pp__sj_seg_get(j, idx + 1);
        if (!nx) return pp__sj_error(j);
        pp__sj_pad(nx, 0, off + len - j->data_bytes);
    }
}

/* The published frame at *pos (skipping padding), or NULL when the frame
 * there is not published yet. The segment must still be mapped (a position
 * at or above the journal's hold or durable position). */
PP__SJFN const uint8_t *pp__sj_next(pp__sj *j, uint64_t *pos, uint32_t *len) {
    for (;;) {
        uint64_t p = *pos, idx = p >> j->shift, off = p & (j->data_bytes - 1);
        pp__sjseg *g = pp__load_acq(&j->win[idx % PP__SJ_WIN]);
        if (!g || g->index != idx) return NULL;
        const uint8_t *f = g->map + PP__PAGE + off;
        uint32_t n = __atomic_load_n((const uint32_t *)(const void *)f, __ATOMIC_ACQUIRE);
        if (n == 0) return NULL;
        if (n < PP__SJ_ALIGN || n % PP__SJ_ALIGN || off + n > j->data_bytes) { pp__sj_poison(j, PP_ECORRUPT); return NULL; }
        *pos = p + n;
        if (f[8] == PP__SJ_PAD) continue;
        *len = n;
        return f;
    }
}

/* The mark (of what an earlier round made durable) goes into the header
 * page by one small pwrite (all or nothing in the page cache), and reaches
 * the disk with this round's msync or fdatasync: one flush per segment
 * touched. A mark never vouches for data not yet durable: it lags one round.
 *
 * PP_PRIVATE_PAGES: the data goes to the file by pwrite from the segment's
 * private mapping (MAP_PRIVATE), the writers' own memory, which the kernel
 * never writes back behind the syncer. So writeback never write-protects a
 * page a writer is filling (no fault, no TLB shootdown on the trading
 * thread's core), a full disk is an error of this pwrite or fdatasync
 * (PP_ENOSPC, poisoning the journal) rather than a SIGBUS on the hot path,
 * and nothing reaches the file that the syncer did not copy. Whole pages
 * below `to` hold published frames only, which nobody writes again: once
 * the file holds them, MADV_DONTNEED gives their memory back, and a reader
 * touching them again reads the same bytes from the file. */
PP__SJFN int pp__sj_flush_seg(pp__sj *j, pp__sjseg *g, uint64_t to) {
    int rc = 0;
    if (g->synced > g->mark_end) {
        uint64_t end = g->synced;
        if ((rc = pp__sj_mark_write(g->fd, g->salt, &g->mark_gen, end, end == j->data_bytes ? PP__SJ_SEALED : 0)) != 0) return rc;
    }
    if (j->priv) {
        uint64_t a = (PP__PAGE + g->synced) & ~(uint64_t)(PP__PAGE - 1), e = PP__PAGE + to;
        for (uint64_t o = a; o < e && !rc;) {      /* from the page the last round ended in */
            errno = 0;
            int64_t n = pp__sys_pwrite(g->fd, g->map + o, (size_t)(e - o), o);
            if (n > 0) o += (uint64_t)n;
            else if (!(n < 0 && errno == EINTR)) rc = n < 0 && errno ? pp__from_errno(errno) : PP_EIO;
        }
        if (!rc) rc = pp__fdatasync(g->fd);
        if (rc) return rc;
        uint64_t done = e & ~(uint64_t)(PP__PAGE - 1);
        if (done > a) pp__zap_written(g->map + a, (size_t)(done - a));   /* locked (mlockall): unlocked first */
    } else {
        uint64_t upto = PP__PAGE + to;
        /* The whole pages filled since the last round leave the mapping
         * first (their bytes stay in the page cache, dirty): writeback then
         * finds no mapping of them to write-protect. Otherwise it does so
         * page by page, each a TLB shootdown interrupting every core the
         * writers run on, several hundred thousand a second at full rate.
         * One zap of the range is one shootdown; a reader touching those
         * pages again maps them from the page cache (nobody writes there:
         * published frames only). */
        uint64_t a = (PP__PAGE + g->synced) & ~(uint64_t)(PP__PAGE - 1), done = upto & ~(uint64_t)(PP__PAGE - 1);
        if (done > a) pp__zap_written(g->map + a, (size_t)(done - a));
        upto = (upto + PP__PAGE - 1) & ~(uint64_t)(PP__PAGE - 1);
        if (pp__sys_msync(g->fd, g->map, (size_t)upto, 0) != 0) rc = pp__from_errno(errno);
#ifndef __linux__
        if (!rc) rc = pp__fdatasync(g->fd);
#endif
        if (rc) return rc;
    }
    pp__add_rlx(&j->st_flushes, 1);
    g->mark_end = g->synced;
    g->synced = to;
    return 0;
}

/* >>strictjournal ----------------------------------------------------------
 * Strict mode, format 2: the segments are anonymous memory in which the
 * writers claim and publish frames exactly as in mmap mode (the hot path is
 * the same); the syncer relays the published frames into ONE picolog log for
 * the whole store (O_DIRECT, group commit, picolog's writer thread), and that
 * log is the journal on disk: <data_dir>/journal/ holds picolog's files.
 * A record of the log is a run of consecutive frames of one segment:
 *    0 u64 the position of its first frame   8 u32 the CRC seed of its frames
 *   12 u32 log2 of the segment size         16 the frames, back to back
 * Padding frames are not relayed: the positions say where each frame was.
 * Every frame keeps its own CRC (seeded with its segment's seed and its
 * position), checked by every reader as in a segment file, under picolog's
 * CRC of the whole record. Frames become durable when picolog's durable mark
 * passes the record holding them: a FIFO of (record seq, end position) says
 * when. Compaction releases the records of the segments below the oldest
 * position a book needs (plg_release). */
#define PP__SJR_HDR 16u
#define PP__SJR_BLOCK 16u          /* compaction's unit: records are noted per 64 KiB of positions */

PP__SJFN int pp__sj_fifo_push(pp__sj *j, uint64_t seq, uint64_t end) {
    if (j->fn == j->fcap) {
        size_t nc = j->fcap ? j->fcap * 2 : 64;
        pp__sjrel *n = (pp__sjrel *)pp__alloc(nc * sizeof *n);
        if (!n) return PP_ENOMEM;
        for (size_t k = 0; k < j->fn; k++) n[k] = j->fifo[(j->fhead + k) % j->fcap];
        PINNACLE_PERSIST_FREE(j->fifo);
        j->fifo = n; j->fcap = nc; j->fhead = 0;
    }
    pp__sjrel *e = &j->fifo[(j->fhead + j->fn) % j->fcap];
    e->seq = seq; e->end = end;
    j->fn++;
    return 0;
}

/* Block `index` (positions >> PP__SJR_BLOCK) has records starting in it from
 * seq on (the first time it is seen). mu held. */
PP__SJFN int pp__sj_first_note(pp__sj *j, uint64_t index, uint64_t seq) {
    if (j->nfirst && j->first[j->nfirst - 1].index >= index) return 0;
    if (j->nfirst == j->capfirst) {
        size_t nc = j->capfirst ? j->capfirst * 2 : 16;
        pp__sjfirst *n = (pp__sjfirst *)pp__alloc(nc * sizeof *n);
        if (!n) return PP_ENOMEM;
        if (j->nfirst) memcpy(n, j->first, j->nfirst * sizeof *n);
        PINNACLE_PERSIST_FREE(j->first);
        j->first = n; j->capfirst = nc;
    }
    j->first[j->nfirst].index = index; j->first[j->nfirst].seq = seq;
    j->nfirst++;
    return 0;
}

/* Relay the published frames in [j->relay, upto) into the log, one record per
 * run of consecutive frames of one segment of at most rec_max bytes. Stops
 * early, leaving the rest for the next round, when picolog's ring is full.
 * sync_mu held. 0, or the error (the log's, mapped). */
PP__SJFN int pp__sj_relay(pp__sj *j, uint64_t upto) {
    uint64_t at = j->relay, rs = 0, re = 0;
    int have = 0;                  /* a run [rs, re) of consecutive frames is pending */
    for (;;) {
        uint64_t q = at;
        uint32_t len = 0;
        const uint8_t *f = at < upto ? pp__sj_next(j, &q, &len) : NULL;
        if (f && q > upto) f = NULL;
        uint64_t fs = f ? q - len : 0;
        if (have && (!f || fs != re || (fs >> j->shift) != (rs >> j->shift) || re - rs + len > j->rec_max)) {
            pp__sjseg *g = pp__load_acq(&j->win[(rs >> j->shift) % PP__SJ_WIN]);
            PINNACLE_PERSIST_ASSERT(g && g->index == rs >> j->shift);
            uint32_t n = (uint32_t)(re - rs);
            uint8_t *r = (uint8_t *)plg_reserve(j->log, PP__SJR_HDR + n);
            if (!r) {
                int e = plg_reserve_error(j->log);
                return e == PLG_EFULL ? 0 : pp__from_plg(e);   /* full: the ring drains, the next round goes on */
            }
            pp__put64(r, rs); pp__put32(r + 8, g->seed); pp__put32(r + 12, (uint32_t)j->shift);
            memcpy(r + PP__SJR_HDR, g->map + PP__PAGE + (rs - g->base), n);
            int64_t seq = plg_commit(j->log);
            if (seq < 0) return pp__from_plg((int)seq);
            int rc = pp__sj_fifo_push(j, (uint64_t)seq, re);
            if (!rc) {
                pthread_mutex_lock(&j->mu);
                rc = pp__sj_first_note(j, rs >> PP__SJR_BLOCK, (uint64_t)seq);
                pthread_mutex_unlock(&j->mu);
            }
            if (rc) return rc;
            j->relay = re;
            have = 0;
        }
        if (!f) {                  /* published padding up to q (a segment's end) needs no record */
            if (q > j->relay && q <= upto) j->relay = q;
            return 0;
        }
        if (!have) { rs = fs; have = 1; }
        re = q; at = q;
    }
}

/* The durable position the log's durable mark vouches for. sync_mu held. */
PP__SJFN uint64_t pp__sj_relay_durable(pp__sj *j) {
    uint64_t d = plg_durable(j->log), to = pp__load_rlx(&j->durable);
    while (j->fn && j->fifo[j->fhead].seq <= d) {
        to = j->fifo[j->fhead].end;
        j->fhead = (j->fhead + 1) % j->fcap; j->fn--;
    }
    if (!j->fn && j->relay > to) to = j->relay;        /* only padding since the last record */
    return to;
}

/* Strict mode's sync round (sync_mu held): relay what is published below p,
 * and, when wait is set, wait until the log has made all of it durable
 * (pp_sync, pp_close, PP_NO_THREADS); the background round does not wait.
 * Then the durable position moves to what picolog's mark vouches for, and
 * wholly durable segments are marked done for the retirement that follows.
 * An error poisons the journal. */
typedef void (*pp__sj_durable_fn)(void *ctx, pp__sj *j, uint64_t from, uint64_t to);
PP__SJFN int pp__sj_sync_strict(pp__sj *j, int wait, uint64_t p, pp__sj_durable_fn on_durable, void *ctx) {
    uint64_t from = pp__load_rlx(&j->durable), relayed = j->relay;
    int rc = pp__sj_relay(j, p);
    if (j->relay != relayed) plg_kick(j->log);    /* picolog's idle writer: write them now */
    while (!rc && wait && j->relay < p) {         /* picolog's ring was full: wait for room, go on */
        if (j->fn && (rc = plg_wait(j->log, j->fifo[(j->fhead + j->fn - 1) % j->fcap].seq, -1)) != 0) { rc = pp__from_plg(rc); break; }
        if (!j->fn) sched_yield();
        rc = pp__sj_relay(j, p);
        plg_kick(j->log);
    }
    if (!rc && wait && j->fn) {
        int e = plg_wait(j->log, j->fifo[(j->fhead + j->fn - 1) % j->fcap].seq, -1);
        if (e) rc = pp__from_plg(e);
    }
    if (!rc && plg_error(j->log)) rc = pp__from_plg(plg_error(j->log));
    pp__add_rlx(&j->st_rounds, 1);
    if (rc) { pp__sj_poison(j, rc); return rc; }
    uint64_t target = pp__sj_relay_durable(j);
    if (target > from) {
        pp__add_rlx(&j->st_flushes, 1);
        pp__store_rel(&j->durable, target);
        if (on_durable) on_durable(ctx, j, from, target);
    }
    for (unsigned k = 0; k < PP__SJ_WIN; k++) {
        pp__sjseg *g = pp__load_acq(&j->win[k]);
        if (g && g->base + j->data_bytes <= target) g->mark_end = g->synced = j->data_bytes;
    }
    return 0;
}

/* One sync round: find the published prefix, make it durable (one flush per
 * segment touched: one in the steady state, whatever the number of
 * instruments), move the durable position, call on_durable(ctx, from, to)
 * (frames in [from, to) are durable now; they can still be read), and
 * retire segments nobody needs mapped. whole_pages (shared mappings only):
 * the background rounds stop at the last frame that ends a page, so writers
 * do not fault on a tail page msync write-protected; when that brings
 * nothing new, the tail goes too. Returns 0 or the journal's error. */
PP__SJFN int pp__sj_sync(pp__sj *j, int whole_pages, pp__sj_durable_fn on_durable, void *ctx) {
    int rc = pp__load_acq(&j->err);
    if (rc) return rc;
    pthread_mutex_lock(&j->sync_mu);
    if ((rc = pp__load_acq(&j->err)) != 0) { pthread_mutex_unlock(&j->sync_mu); return rc; }
    uint64_t from = pp__load_rlx(&j->durable), p = j->scan, page_end = 0;
    uint32_t len;
    for (;;) {                     /* the published prefix */
        uint64_t q = p;
        if (!pp__sj_next(j, &q, &len) && q == p) break;
        p = q;
        if ((p & (PP__PAGE - 1)) == 0) page_end = p;
    }
    j->scan = p;
    if (j->log) {
        rc = pp__sj_sync_strict(j, !whole_pages, p, on_durable, ctx);
        if (rc) { pthread_mutex_unlock(&j->sync_mu); return rc; }
    } else {
        uint64_t target = whole_pages && !j->priv && page_end > from ? page_end : p;
        pp__add_rlx(&j->st_rounds, 1);
        /* every mapped segment with new data, or whose mark lags, oldest first */
        pp__sjseg *segs[PP__SJ_WIN];
        unsigned ns = 0;
        for (unsigned k = 0; k < PP__SJ_WIN; k++) {
            pp__sjseg *g = pp__load_acq(&j->win[k]);
            if (!g) continue;
            unsigned at = ns++;
            while (at > 0 && segs[at - 1]->index > g->index) { segs[at] = segs[at - 1]; at--; }
            segs[at] = g;
        }
        for (unsigned k = 0; k < ns && !rc; k++) {
            pp__sjseg *g = segs[k];
            uint64_t to = target >= g->base + j->data_bytes ? j->data_bytes : target > g->base ? target - g->base : 0;
            if (to < g->synced) to = g->synced;
            if (g->synced == j->data_bytes && g->mark_end < j->data_bytes) {
                /* a finished segment: its last mark (sealed) vouches only for
                 * data already durable, so it needs no flush of its own; the
                 * kernel writes it back when it will (until then the mark on
                 * disk says less, which costs recovery nothing) */
                rc = pp__sj_mark_write(g->fd, g->salt, &g->mark_gen, j->data_bytes, PP__SJ_SEALED);
                if (!rc) g->mark_end = j->data_bytes;
            } else if (to > g->synced || g->synced > g->mark_end) rc = pp__sj_flush_seg(j, g, to);
        }
        if (rc) {
            pp__sj_poison(j, rc);
            pthread_mutex_unlock(&j->sync_mu);
            return rc;
        }
        if (target > from) {
            PINNACLE_PERSIST_ASSERT(target <= p);
            pp__store_rel(&j->durable, target);
            if (on_durable) on_durable(ctx, j, from, target);
        }
    }
    /* retire: wholly durable, mark sealed, no reader behind its end */
    uint64_t hold = pp__load_acq(&j->hold);
    pthread_mutex_lock(&j->mu);
    for (unsigned k = 0; k < PP__SJ_WIN; k++) {
        pp__sjseg *g = j->win[k];
        if (!g || g->mark_end < j->data_bytes) continue;
        if (hold && hold < g->base + j->data_bytes) continue;
        pp__store_rel(&j->win[k], (pp__sjseg *)NULL);
        munmap(g->map, g->map_len);              /* the struct stays: see pp__sjseg.dead */
        g->map = NULL;
        if (g->fd >= 0) close(g->fd);
        g->fd = -1;
        g->dead = j->dead; j->dead = g;
    }
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_unlock(&j->sync_mu);
    return rc;
}

/* Background preparer: the segment after the tail's exists before a writer
 * needs it, and the pages ahead of the tail are faulted in. */
PP__SJFN void pp__sj_prepare(pp__sj *j) {
    if (pp__load_acq(&j->err)) return;
    uint64_t t = pp__load_acq(&j->tail), idx = t >> j->shift, off = t & (j->data_bytes - 1);
    pp__sjseg *g = pp__load_acq(&j->win[idx % PP__SJ_WIN]);
    if (g && g->index == idx) {
        pthread_mutex_lock(&j->mu);
        while (g->map && g->populated < j->data_bytes && g->populated < off + 2 * PP__SJ_AHEAD) {   /* map: not retired meanwhile */
            uint64_t n = j->data_bytes - g->populated < PP__SJ_AHEAD ? j->data_bytes - g->populated : PP__SJ_AHEAD;
            madvise(g->map + PP__PAGE + g->populated, (size_t)n, MADV_POPULATE_WRITE);
            g->populated += n;
        }
        pthread_mutex_unlock(&j->mu);
    }
    if (off >= j->data_bytes / 2) {
        pp__sjseg *nx = pp__load_acq(&j->win[(idx + 1) % PP__SJ_WIN]);
        if (!nx) (void)pp__sj_seg_get(j, idx + 1);
    }
}

PP__SJFN void pp__sj_free(pp__sj *j) {
    if (!j) return;
    if (j->log) (void)plg_close(j->log);       /* pp_close closed it already, with its result */
    if (j->wake_fd >= 0) close(j->wake_fd);
    PINNACLE_PERSIST_FREE(j->fifo); PINNACLE_PERSIST_FREE(j->first);
    for (unsigned k = 0; k < PP__SJ_WIN; k++) pp__sj_seg_free(j->win[k]);
    while (j->dead) { pp__sjseg *g = j->dead; j->dead = g->dead; pp__sj_seg_free(g); }
    pthread_mutex_destroy(&j->mu); pthread_mutex_destroy(&j->sync_mu);
    PINNACLE_PERSIST_FREE(j->dir);
    PINNACLE_PERSIST_FREE(j->archive);
    PINNACLE_PERSIST_FREE(j);
}

PP__SJFN void pp__sj_where(pp__sjwhere *w, const char *file, uint64_t off, const char *fmt, ...) {
    if (!w) return;
    pp__strlcpy(w->file, file, sizeof w->file);
    w->offset = off;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->detail, sizeof w->detail, fmt, ap);
    va_end(ap);
}

/* Recovery's view of one segment file. */
typedef struct pp__sjfile { uint64_t index, salt, data_bytes, mark_end, mark_flags, mark_gen, end; int hdr, mark; } pp__sjfile;

/* Walk the valid frames of one mapped segment from offset 0: visit the ones
 * at or above from_pos. Sets f->end to where the valid frames end. */
typedef int (*pp__sj_visit_fn)(void *ctx, uint64_t pos, const uint8_t *frame, uint32_t len);
/* Recovery's look-ahead: called with the bytes 8 frames ahead (maybe not a
 * frame start: a hint only, read within the file), so the caller can
 * prefetch what that frame will touch. */
static __thread void (*pp__sj_ahead)(void *ctx, const uint8_t *frame);
/* The index of the segment whose frames are being visited (for a visitor
 * that keeps per-segment figures: it sees positions, not the segment size). */
static __thread uint64_t pp__sj_scan_index, pp__sj_scan_bytes;   /* and the segment size */
PP__SJFN int pp__sj_scan_file(const uint8_t *p, uint64_t size, pp__sjfile *f, uint64_t from_pos,
                            pp__sj_visit_fn visit, void *ctx, uint64_t *bad_pos) {
    uint32_t seed = pp__seed(f->salt);
    pp__sj_scan_index = f->index; pp__sj_scan_bytes = f->data_bytes;
    uint64_t base = f->index * f->data_bytes, off = 0, avail = size > PP__PAGE ? size - PP__PAGE : 0;
    if (avail > f->data_bytes) avail = f->data_bytes;
    const uint8_t *d = p + PP__PAGE;
    while (off + PP__SJ_ALIGN <= avail) {
        uint32_t n = pp__get32(d + off);
        if (n < PP__SJ_ALIGN || n % PP__SJ_ALIGN || n > PP__SJ_MAXFRAME || off + n > avail) break;
        if (pp__get32(d + off + 4) != pp__sj_crc(seed, base + off, d + off, n)) break;
        if (pp__sj_ahead && off + 9 * (uint64_t)PP__SJ_ALIGN <= avail) pp__sj_ahead(ctx, d + off + 8 * PP__SJ_ALIGN);
        if (d[off + 8] != PP__SJ_PAD && base + off >= from_pos && visit) {
            int rc = visit(ctx, base + off, d + off, n);
            if (rc) { *bad_pos = base + off; f->end = off; return rc; }
        }
        off += n;
    }
    f->end = off;
    return 0;
}

/* Strict mode: is dir a store journal kept in a picolog log? */
PP__SJFN int pp__sj_is_strict(const char *dir) {
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/picolog.meta", dir);
    return stat(path, &st) == 0;
}

/* The key(s) of an encrypted strict journal, for the readers of this thread
 * (the store's own strict_log; NULL: none). */
static __thread const plg_config *pp__sj_keys;
/* A strict journal's archive (<archive_dir>/journal: the segments picolog
 * moved there), for the reads this thread makes while it is set; NULL:
 * the log alone. Set around pp__sj_open by the history readers. */
static __thread const char *pp__sj_adir;
static const plg_config *pp__read_keys_log(void);   /* pp_read_keys' (>>seal), or NULL */

/* Walk the records of a strict journal with r: check each record and each of
 * its frames (as a segment file's), visit the frames at or above from_pos,
 * and note in j the first record of each segment. *end: the position after
 * the last frame (0: no record). 0, or PP_ECORRUPT & co. with where in *w. */
PP__SJFN int pp__sj_strict_walk(pp__sj *j, const char *dir, plg_reader *r, uint64_t from_pos,
                              pp__sj_visit_fn visit, void *ctx, pp__sjwhere *w, uint64_t *end) {
    plg_record rec;
    int k;
    uint64_t last_end = 0, o = 0;
    uint32_t shift = 0;
    *end = 0;
    while ((k = plg_reader_next(r, &rec)) == 1) {
        const uint8_t *d = (const uint8_t *)rec.data;
        const char *why = NULL;
        uint64_t pos = 0, fp = 0;
        uint32_t seed = 0, sh = 0;
        if (rec.len < PP__SJR_HDR + PP__SJ_ALIGN) why = "record shorter than a frame";
        else {
            pos = pp__get64(d); seed = pp__get32(d + 8); sh = pp__get32(d + 12);
            if (sh < 16 || sh > 26 || (shift && sh != shift)) why = "segment size differs";
            else if (pos % PP__SJ_ALIGN || pos < last_end || (pos >> sh) != ((pos + rec.len - PP__SJR_HDR - 1) >> sh))
                why = "frames out of place";
        }
        for (uint64_t off = PP__SJR_HDR; !why && off < rec.len;) {
            uint32_t n = pp__get32(d + off);
            fp = pos + off - PP__SJR_HDR;
            if (n < PP__SJ_ALIGN || n % PP__SJ_ALIGN || n > PP__SJ_MAXFRAME || off + n > rec.len) why = "bad frame length";
            else if (pp__get32(d + off + 4) != pp__sj_crc(seed, fp, d + off, n)) why = "bad frame checksum";
            else if (d[off + 8] == PP__SJ_PAD) why = "padding frame in a record";
            else if (fp >= from_pos && visit) {
                pp__sj_scan_index = pos >> sh; pp__sj_scan_bytes = (uint64_t)1 << sh;
                int rc = visit(ctx, fp, d + off, n);
                if (rc) {
                    const char *file = plg_reader_where(r, &o);
                    pp__sj_where(w, file ? file : dir, o, "record %llu, frame at journal position %llu: frame does not fit its book (%s)",
                                 (unsigned long long)rec.seq, (unsigned long long)fp, pp_strerror(rc));
                    return rc;
                }
            }
            off += n;
        }
        if (why) {
            const char *file = plg_reader_where(r, &o);
            pp__sj_where(w, file ? file : dir, o, "record %llu (journal position %llu): %s", (unsigned long long)rec.seq,
                         (unsigned long long)(fp ? fp : pos), why);
            return PP_ECORRUPT;
        }
        shift = sh;
        last_end = pos + rec.len - PP__SJR_HDR;
        if (j) {
            pthread_mutex_lock(&j->mu);
            int rc = pp__sj_first_note(j, pos >> PP__SJR_BLOCK, rec.seq);
            pthread_mutex_unlock(&j->mu);
            if (rc) return rc;
            j->data_bytes = (uint64_t)1 << sh; j->shift = sh;
        }
    }
    if (k < 0) {
        const char *file = plg_reader_where(r, &o);
        pp__sj_where(w, file ? file : dir, o, "strict journal: %s", plg_strerror(k));
        return pp__from_plg(k);
    }
    *end = last_end;
    return 0;
}

/* adir: the log's archive, read first (plg_reader_open_archive), or NULL */
PP__SJFN int pp__sj_reader_open(plg_reader **r, const char *dir, const plg_config *keys, const char *adir) {
    const uint8_t *k[PLG_MAX_KEYS];
    size_t n = 0;
    if (keys && keys->encrypt_key) {
        k[n++] = keys->encrypt_key;
        for (size_t i = 0; i < keys->n_old_keys && n < PLG_MAX_KEYS; i++) k[n++] = keys->old_keys[i];
    }
    if (adir) return plg_reader_open_archive(r, dir, adir, n ? k : NULL, n);
    return n ? plg_reader_open_keys(r, dir, k, n) : plg_reader_open(r, dir);
}

static int pp__sj_new(pp__sj **out, const char *dir) {
    pp__sj *j = (pp__sj *)pp__alloc(sizeof *j);
    if (!j || !(j->dir = pp__strdup(dir))) { PINNACLE_PERSIST_FREE(j); return PP_ENOMEM; }
    pthread_mutex_init(&j->mu, NULL); pthread_mutex_init(&j->sync_mu, NULL);
    j->wake_fd = -1;
    *out = j;
    return 0;
}

/* After a walk that ended at `end`: the journal continues in a new segment.
 * A log without records (new, or every record released) continues above
 * pfloor, the highest position a snapshot recorded: the positions then
 * never go back below one that a snapshot (hence compaction) relies on. */
static void pp__sj_strict_place(pp__sj *j, uint64_t data_bytes, uint64_t end, uint64_t pfloor) {
    if (!j->nfirst) { j->data_bytes = data_bytes; j->shift = 0; while (((uint64_t)1 << j->shift) < data_bytes) j->shift++; }
    uint64_t next_index = j->nfirst ? ((end - 1) >> j->shift) + 1 : 1;
    if (!j->nfirst && pfloor && (pfloor >> j->shift) + 1 > next_index) next_index = (pfloor >> j->shift) + 1;
    j->first_index = j->nfirst ? (j->first[0].index << PP__SJR_BLOCK) >> j->shift : next_index;
    j->tail = j->durable = j->scan = j->relay = next_index * j->data_bytes;
}

/* A strict journal read only (the readers, pp_check, tools). */
PP__SJFN int pp__sj_read_strict(pp__sj **out, const char *dir, uint64_t data_bytes, uint64_t from_pos,
                              pp__sj_visit_fn visit, void *ctx, pp__sjwhere *w) {
    pp__sj *j = NULL;
    plg_reader *r = NULL;
    uint64_t end = 0;
    int rc = pp__sj_new(&j, dir);
    if (!rc) {
        int e = pp__sj_reader_open(&r, dir, pp__sj_keys ? pp__sj_keys : pp__read_keys_log(), pp__sj_adir);
        if (e) { rc = pp__from_plg(e); pp__sj_where(w, dir, 0, "strict journal: %s", plg_strerror(e)); }
    }
    if (!rc) rc = pp__sj_strict_walk(j, dir, r, from_pos, visit, ctx, w, &end);
    if (r) plg_reader_close(r);
    if (rc) { pp__sj_free(j); return rc; }
    pp__sj_strict_place(j, data_bytes, end, 0);
    *out = j;
    return 0;
}

/* Open (recover) a strict journal for appending: picolog recovers its log
 * (a torn tail is quarantined by picolog), every frame is visited, and the
 * writers go on in a new segment after the last one. tmpl: strict_log.
 * pfloor(ctx), asked only when the log holds no record: the highest
 * journal position the snapshots recorded (pp__sj_strict_place). */
typedef uint64_t (*pp__sj_floor_fn)(void *ctx);
PP__SJFN int pp__sj_open_strict(pp__sj **out, const char *dir, uint64_t data_bytes, const plg_config *tmpl,
                              pp__sj_visit_fn visit, pp__sj_floor_fn pfloor, void *ctx, pp__sjwhere *w) {
    *out = NULL;
    if (w) memset(w, 0, sizeof *w);
    pp__sj *j = NULL;
    int rc = pp__sj_new(&j, dir);
    if (rc) return rc;
    plg_config c;
    if (tmpl) c = *tmpl; else memset(&c, 0, sizeof c);
    c.path = dir;
    /* picolog's writer, idle, sleeps 1 ms (its default 10 us costs a core
     * on an idle store): the relay kicks it after each round (plg_kick) */
    if (!c.poll_interval_ns) c.poll_interval_ns = 1000000;
    plg_config eff = plg_config_defaults(&c);
    j->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (j->wake_fd < 0) { rc = pp__from_errno(errno); pp__sj_where(w, dir, 0, "eventfd: %s", strerror(errno)); }
    if (!rc && eff.ring_capacity < 4 * (PP__SJ_MAXFRAME + PP__SJR_HDR)) {
        rc = PP_ECONFIG;
        pp__sj_where(w, dir, 0, "strict_log->ring_capacity must be at least 128 KiB for the store journal");
    }
    size_t rm = eff.ring_capacity / 4 < (32u << 10) ? eff.ring_capacity / 4 : (32u << 10);   /* <= a block */
    j->rec_max = (uint32_t)(rm - PP__SJR_HDR) & ~(PP__SJ_ALIGN - 1);
    if (!rc) {
        int e = plg_open(&j->log, &c);
        if (e) {
            rc = pp__from_plg(e); j->log = NULL;
            plg_check_result *cr = e == PLG_ECORRUPT ? (plg_check_result *)pp__alloc(sizeof *cr) : NULL;
            const uint8_t *k[PLG_MAX_KEYS];
            size_t nk = 0;
            if (c.encrypt_key) { k[nk++] = c.encrypt_key; for (size_t i = 0; i < c.n_old_keys && nk < PLG_MAX_KEYS; i++) k[nk++] = c.old_keys[i]; }
            if (cr && plg_check_keys(dir, nk ? k : NULL, nk, cr) == PLG_ECORRUPT)   /* where, for the message */
                pp__sj_where(w, cr->file, cr->offset, "strict journal: %s: %s", plg_strerror(e), cr->detail);
            else
                pp__sj_where(w, dir, 0, "cannot open the strict journal: %s", plg_strerror(e));
            PINNACLE_PERSIST_FREE(cr);
        }
    }
    plg_reader *r = NULL;
    uint64_t end = 0;
    if (!rc) {
        int e = pp__sj_reader_open(&r, dir, &c, NULL);
        if (e) { rc = pp__from_plg(e); pp__sj_where(w, dir, 0, "strict journal: %s", plg_strerror(e)); }
    }
    if (!rc) rc = pp__sj_strict_walk(j, dir, r, 0, visit, ctx, w, &end);
    if (r) plg_reader_close(r);
    if (!rc) {
        pp__sj_strict_place(j, data_bytes, end, !j->nfirst && pfloor ? pfloor(ctx) : 0);
        pp__sjseg *g = NULL;
        uint64_t idx = j->tail >> j->shift;
        rc = pp__sj_seg_create_anon(j, idx, &g);
        if (!rc) j->win[idx % PP__SJ_WIN] = g;
    }
    if (rc) { pp__sj_free(j); return rc; }
    *out = j;
    return 0;
}

/* Open (recover) the journal in dir: every valid frame at or above from_pos
 * is visited once, in journal order. The journal ends at the first frame
 * that is neither published nor valid; below a segment's durable mark that
 * is corruption (PP_ECORRUPT, with file and offset in *w), above it a torn
 * tail. Unless readonly: the segment holding the end is sealed there
 * (durably), later segments (which held nothing durable: checked) are
 * removed, and a new segment is started for appending. data_bytes is used
 * for a new store; an existing one keeps its own. */
PP__SJFN int pp__sj_open(pp__sj **out, const char *dir, uint64_t data_bytes, int how, uint64_t from_pos,
                       pp__sj_visit_fn visit, void *ctx, pp__sjwhere *w) {
    int readonly = how & PP__SJ_READONLY;
    *out = NULL;
    if (w) memset(w, 0, sizeof *w);
    if (pp__sj_is_strict(dir)) {
        if (readonly) return pp__sj_read_strict(out, dir, data_bytes, from_pos, visit, ctx, w);
        pp__sj_where(w, dir, 0, "the store journal is in strict mode (a picolog log)");
        return PP_EMODE;
    }
    uint64_t *v = NULL; size_t n = 0;
    int rc = pp__list_numbered(dir, ".ppj", !readonly, &v, &n);
    if (rc) return rc;
    pp__sjfile *fs = (pp__sjfile *)pp__alloc((n ? n : 1) * sizeof *fs);
    pp__sj *j = (pp__sj *)pp__alloc(sizeof *j);
    if (!fs || !j || !(j->dir = pp__strdup(dir))) {
        PINNACLE_PERSIST_FREE(v); PINNACLE_PERSIST_FREE(fs); if (j) PINNACLE_PERSIST_FREE(j->dir); PINNACLE_PERSIST_FREE(j);
        return PP_ENOMEM;
    }
    pthread_mutex_init(&j->mu, NULL); pthread_mutex_init(&j->sync_mu, NULL);
    j->wake_fd = -1;
    j->priv = (how & PP__SJ_PRIVATE) != 0;
    char path[4096];
    /* headers */
    for (size_t i = 0; i < n && !rc; i++) {
        uint8_t h[PP__PAGE];
        pp__numbered(path, sizeof path, dir, v[i], ".ppj");
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t got = fd < 0 ? -1 : pread(fd, h, sizeof h, 0);
        int e = errno;
        if (fd >= 0) close(fd);
        if (got < 0) { rc = pp__from_errno(e); pp__sj_where(w, path, 0, "cannot read: %s", strerror(e)); break; }
        fs[i].index = v[i];
        uint64_t idx = 0;
        fs[i].hdr = got == (ssize_t)sizeof h ? pp__sj_hdr_decode(h, &fs[i].salt, &idx, &fs[i].data_bytes) : PP_ECORRUPT;
        if (!fs[i].hdr && idx != v[i]) fs[i].hdr = PP_ECORRUPT;
        if (!fs[i].hdr) fs[i].mark = pp__sj_mark_get(h, fs[i].salt, &fs[i].mark_end, &fs[i].mark_flags, &fs[i].mark_gen);
        if (fs[i].hdr == PP_EFORMAT) {
            rc = PP_EFORMAT;
            pp__sj_where(w, path, 0, "not a store journal segment of this version");
        } else if (fs[i].hdr && (i + 1 < n || pp__has_data(path))) {
            rc = PP_ECORRUPT;
            pp__sj_where(w, path, 0, "bad segment header");
        } else if (!fs[i].hdr && (fs[i].mark < 0 || fs[i].mark_end > fs[i].data_bytes)) {
            rc = PP_ECORRUPT;
            pp__sj_where(w, path, PP__MARK_OFF, "damaged durable mark (both slots)");
        } else if (!fs[i].hdr && (fs[i].data_bytes < (64u << 10) || (fs[i].data_bytes & (fs[i].data_bytes - 1)) ||
                                  (i > 0 && fs[i].data_bytes != fs[0].data_bytes))) {
            rc = PP_ECORRUPT;
            pp__sj_where(w, path, 32, "segment size differs from the store's");
        } else if (i > 0 && !fs[i].hdr && v[i] != v[i - 1] + 1) {   /* (an unused last one is not a segment: removed below) */
            rc = PP_ECORRUPT;
            pp__sj_where(w, path, 24, "segment %llu is missing", (unsigned long long)(v[i - 1] + 1));
        }
    }
    if (!rc && n && fs[n - 1].hdr) {       /* an unused last segment (created, header never durable) */
        pp__numbered(path, sizeof path, dir, v[n - 1], ".ppj");
        if (!readonly && ((pp__sys_unlink(path) != 0 && errno != ENOENT) || pp__fsync_dir(dir) != 0)) rc = PP_EIO;
        n--;
    }
    if (n) data_bytes = fs[0].data_bytes;
    if (!rc && (data_bytes < (64u << 10) || (data_bytes & (data_bytes - 1)))) rc = PP_ECONFIG;
    j->data_bytes = data_bytes;
    while (((uint64_t)1 << j->shift) < data_bytes) j->shift++;
    /* frames, in order, to the end of the valid journal */
    size_t end_seg = n;
    for (size_t i = 0; i < n && !rc; i++) {
        pp__sjfile *f = &fs[i];
        pp__numbered(path, sizeof path, dir, v[i], ".ppj");
        uint64_t seg_end_pos = (f->index + 1) * f->data_bytes;
        uint8_t *p = NULL; uint64_t size = 0, bad = 0;
        int sealed = f->mark == 1 && (f->mark_flags & PP__SJ_SEALED);
        if (seg_end_pos <= from_pos && sealed && i + 1 < n) { f->end = f->mark_end; continue; }   /* not needed */
        rc = pp__map_ro(path, &p, &size);
        if (rc) { pp__sj_where(w, path, 0, "cannot map: %s", pp_strerror(rc)); break; }
        if (p) {
            rc = pp__sj_scan_file(p, size, f, from_pos, visit, ctx, &bad);
            if (rc) pp__sj_where(w, path, PP__PAGE + (bad - f->index * f->data_bytes), "frame does not fit its book (%s)", pp_strerror(rc));
            if (!rc && f->end < f->mark_end) {
                rc = PP_ECORRUPT;
                pp__sj_where(w, path, PP__PAGE + f->end, "invalid frame below the durable mark (%llu bytes vouched for)",
                             (unsigned long long)f->mark_end);
            }
            if (!rc && w && !(sealed && f->end == f->mark_end) && f->end < f->data_bytes) {
                uint64_t lim = size < PP__PAGE + f->data_bytes ? size : PP__PAGE + f->data_bytes;
                if (PP__PAGE + f->end < lim && !pp__map_zero(path, p, PP__PAGE + f->end, lim)) {
                    pp__sj_where(w, path, PP__PAGE + f->end, "torn tail: unpublished bytes after the last valid frame");
                    w->torn = 1;
                }
            }
            munmap(p, size);
        }
        if (rc) break;
        if (f->end == f->data_bytes || (sealed && f->end == f->mark_end)) continue;
        end_seg = i + 1;              /* the valid journal ends in this segment */
        break;
    }
    for (size_t k = end_seg; k < n && !rc; k++) {        /* nothing after the end may be durable */
        if (fs[k].mark_end > 0 || (fs[k].mark_flags & PP__SJ_SEALED)) {
            pp__numbered(path, sizeof path, dir, v[k], ".ppj");
            rc = PP_ECORRUPT;
            pp__sj_where(w, path, PP__MARK_OFF, "durable frames after the end of the valid journal (segment %llu ends early)",
                         (unsigned long long)v[end_seg - 1]);
        }
    }
    uint64_t next_index = n ? v[end_seg - 1] + 1 : 1;
    j->first_index = n ? v[0] : next_index;
    if (!rc && !readonly) {
        for (size_t k = end_seg; k < n && !rc; k++) {    /* durably gone before anything new is written */
            pp__numbered(path, sizeof path, dir, v[k], ".ppj");
            if (pp__sys_unlink(path) != 0 && errno != ENOENT) rc = pp__from_errno(errno);
        }
        if (!rc && end_seg < n) rc = pp__fsync_dir(dir);
        if (!rc && end_seg > 0) {                        /* seal the last segment at its valid end */
            pp__sjfile *f = &fs[end_seg - 1];
            if (!(f->mark == 1 && (f->mark_flags & PP__SJ_SEALED) && f->mark_end == f->end)) {
                pp__numbered(path, sizeof path, dir, v[end_seg - 1], ".ppj");
                int fd = open(path, O_RDWR | O_CLOEXEC);
                if (fd < 0) rc = pp__from_errno(errno);
                if (!rc) rc = pp__fdatasync(fd);          /* what the crash left in the page cache, durable */
                if (!rc) rc = pp__sj_mark_write(fd, f->salt, &f->mark_gen, f->end, PP__SJ_SEALED);
                if (!rc) rc = pp__fdatasync(fd);
                if (!rc && f->end < f->data_bytes) {      /* give back the unused space */
                    uint64_t keep = (PP__PAGE + f->end + PP__PAGE - 1) & ~(uint64_t)(PP__PAGE - 1);
                    if (pp__sys_ftruncate(fd, keep) != 0) rc = pp__from_errno(errno);
                }
                if (fd >= 0) close(fd);
                if (rc) pp__sj_where(w, path, PP__MARK_OFF, "cannot seal the segment at its valid end: %s", pp_strerror(rc));
            }
        }
        if (!rc) {
            pp__sjseg *g = NULL;
            rc = pp__sj_seg_create(j, next_index, &g);
            if (!rc) j->win[next_index % PP__SJ_WIN] = g;
        }
    }
    j->tail = j->durable = j->scan = next_index * j->data_bytes;
    PINNACLE_PERSIST_FREE(v); PINNACLE_PERSIST_FREE(fs);
    if (rc) { pp__sj_free(j); return rc; }
    *out = j;
    return 0;
}

/* Compaction: remove the segment files wholly below pos, oldest first, each
 * removal durable before the next (a crash leaves a suffix). Only segments
 * that are retired (sealed on disk, unmapped) go. With an archive they are
 * moved there instead (pp__archive_file: durable, never half a file), so
 * the archive plus the live directory always hold every segment. */
PP__SJFN int pp__sj_drop_below(pp__sj *j, uint64_t pos) {
    int rc = 0;
    char path[4096];
    pthread_mutex_lock(&j->mu);
    if (j->log) {
        /* strict: picolog releases the records wholly below pos. A record
         * is at most rec_max (< one block) long, so every record that
         * starts below the block before pos's ends below pos. Only records
         * the sync rounds have processed (popped from the FIFO: the books'
         * pp_durable, hence what they need, counts them) are released.
         * The newest of those always stays: the journal positions live
         * only in the records, and an empty log would restart them at
         * segment 1 on the next open, below the positions the snapshots
         * recorded, so that compaction would release the frames written
         * after that open (every book's need would lie above them). */
        uint64_t blk = pos >> PP__SJR_BLOCK, below = UINT64_MAX;
        size_t k = 0;
        while (k < j->nfirst && j->first[k].index + 1 < blk) k++;
        if (k < j->nfirst) below = j->first[k].seq;
        uint64_t done = j->fn ? j->fifo[j->fhead].seq : plg_appended(j->log) + 1;
        if (done > 0 && below > done - 1) below = done - 1;
        if (!j->nfirst || below <= j->first[0].seq) { pthread_mutex_unlock(&j->mu); return 0; }
        int e = plg_release(j->log, below);
        if (e) rc = pp__from_plg(e);
        else {
            size_t gone = 0;               /* blocks whose records are all below `below` */
            while (gone + 1 < j->nfirst && j->first[gone + 1].seq <= below) gone++;
            memmove(j->first, j->first + gone, (j->nfirst - gone) * sizeof *j->first);
            j->nfirst -= gone;
            uint64_t fi = (j->first[0].index << PP__SJR_BLOCK) >> j->shift;
            if (fi > j->first_index) { pp__add_rlx(&j->st_dropped, fi - j->first_index); j->first_index = fi; }
        }
        pthread_mutex_unlock(&j->mu);
        return rc;
    }
    for (;;) {
        uint64_t i = j->first_index;
        if ((i + 1) * j->data_bytes > pos) break;
        pp__sjseg *g = j->win[i % PP__SJ_WIN];
        if ((g && g->index <= i) || (i + 1) * j->data_bytes > pp__load_acq(&j->durable)) break;
        pp__numbered(path, sizeof path, j->dir, i, ".ppj");
        if (j->archive) {
            if ((rc = pp__archive_file(j->dir, path + strlen(j->dir) + 1, j->archive)) != 0) break;
        } else {
            if (pp__sys_unlink(path) != 0 && errno != ENOENT) { rc = pp__from_errno(errno); break; }
            if ((rc = pp__fsync_dir(j->dir)) != 0) break;
        }
        j->first_index = i + 1;
        pp__add_rlx(&j->st_dropped, 1);
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

/* >>views ----------------------------------------------------------------- */
/* Price levels of the shadow, per side, for pp_top and pp_depth. Each side
 * is an array sorted worst price first, best last (bids ascending, asks
 * descending), so the busy end of the book is the cheap end to insert and
 * delete at. Made from the shadow at the first view (sort and sum), then
 * moved by every event the drain applies (pp__apply_book); on ENOMEM they
 * are dropped and made again at the next view. All under shadow_mu. */
static void pp__lv_free(pp_book *b) {
    for (int k = 0; k < 2; k++) { PINNACLE_PERSIST_FREE(b->lv[k].v); b->lv[k].v = NULL; b->lv[k].n = b->lv[k].cap = 0; }
    b->lv_on = 0;
}

/* the index of price px, or where it would go (the levels before it are worse) */
static size_t pp__lv_find(const pp__lvside *s, int ask, int64_t px) {
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t p = s->v[mid].price;
        if (ask ? p > px : p < px) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* qty and orders of the level at px change by dq and dn (a level appears
 * with its first order and goes with its last). 0 or PP_ENOMEM. */
static int pp__lv_move(pp_book *b, uint64_t side, int64_t px, int64_t dq, int64_t dn) {
    if (side != PP_BUY && side != PP_SELL) return 0;     /* never journaled by pp_add */
    int ask = side == PP_SELL;
    pp__lvside *s = &b->lv[ask];
    size_t i = pp__lv_find(s, ask, px);
    if (i < s->n && s->v[i].price == px) {
        pp__lvl *l = &s->v[i];
        PINNACLE_PERSIST_ASSERT(dn >= 0 || l->orders >= (uint64_t)-dn);
        l->qty += dq;
        l->orders = (uint64_t)((int64_t)l->orders + dn);
        if (l->orders == 0) {
            PINNACLE_PERSIST_ASSERT(l->qty == 0);
            memmove(l, l + 1, (s->n - i - 1) * sizeof *l);
            s->n--;
        }
        return 0;
    }
    PINNACLE_PERSIST_ASSERT(dn == 1);
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        pp__lvl *v = (pp__lvl *)PINNACLE_PERSIST_REALLOC(s->v, nc * sizeof *v);
        if (!v) return PP_ENOMEM;
        s->v = v; s->cap = nc;
    }
    memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof *s->v);
    s->v[i].price = px; s->v[i].qty = dq; s->v[i].orders = 1;
    s->n++;
    return 0;
}

static int pp__lv_cmp_bid(const void *a, const void *c) {      /* ascending: best (highest) last */
    int64_t x = ((const pp__lvl *)a)->price, y = ((const pp__lvl *)c)->price;
    return x < y ? -1 : x > y;
}
static int pp__lv_cmp_ask(const void *a, const void *c) { return pp__lv_cmp_bid(c, a); }

/* Make the levels from the shadow: every order a level of one, sorted, then
 * equal prices summed. O(n log n), once. */
static int pp__lv_build(pp_book *b) {
    pp__lv_free(b);
    uint64_t cnt[2] = {0, 0};
    for (uint64_t i = 0, cap = b->shadow.mask + 1; i < cap; i++) {
        const pp__oslot *o = &b->shadow.t[i];
        if (o->id && (o->side == PP_BUY || o->side == PP_SELL)) cnt[o->side == PP_SELL]++;
    }
    for (int k = 0; k < 2; k++) {
        b->lv[k].cap = cnt[k] > 64 ? (size_t)cnt[k] : 64;
        b->lv[k].v = (pp__lvl *)PINNACLE_PERSIST_MALLOC(b->lv[k].cap * sizeof(pp__lvl));
        if (!b->lv[k].v) { pp__lv_free(b); return PP_ENOMEM; }
    }
    for (uint64_t i = 0, cap = b->shadow.mask + 1; i < cap; i++) {
        const pp__oslot *o = &b->shadow.t[i];
        if (!o->id || (o->side != PP_BUY && o->side != PP_SELL)) continue;
        pp__lvside *s = &b->lv[o->side == PP_SELL];
        pp__lvl *l = &s->v[s->n++];
        l->price = o->price; l->qty = o->qty; l->orders = 1;
    }
    for (int k = 0; k < 2; k++) {
        pp__lvside *s = &b->lv[k];
        PINNACLE_PERSIST_ASSERT(s->n == cnt[k]);
        if (s->n) qsort(s->v, s->n, sizeof *s->v, k ? pp__lv_cmp_ask : pp__lv_cmp_bid);
        size_t w = 0;
        for (size_t r = 0; r < s->n; r++) {
            if (w && s->v[w - 1].price == s->v[r].price) { s->v[w - 1].qty += s->v[r].qty; s->v[w - 1].orders++; }
            else s->v[w++] = s->v[r];
        }
        s->n = w;
    }
    b->lv_on = 1;
    return 0;
}

/* pp__apply on the book's shadow, and the levels moved with it. */
static int pp__apply_book(pp_book *b, const pp__ev *v) {
    if (!b->lv_on || v->type < PP_EV_ADD || v->type > PP_EV_MODIFY || v->id == 0) return pp__apply(&b->shadow, v);
    pp__oslot was;
    memset(&was, 0, sizeof was);
    if (v->type != PP_EV_ADD) {
        const pp__oslot *o = pp__shadow_find(&b->shadow, v->id);
        if (o) was = *o;
    }
    int rc = pp__apply(&b->shadow, v);
    if (rc) return rc;                    /* nothing applied: the levels stand */
    int r = 0;
    switch (v->type) {
    case PP_EV_ADD:     r = pp__lv_move(b, (uint64_t)v->side, v->price, v->qty, 1); break;
    case PP_EV_CANCEL:  r = pp__lv_move(b, was.side, was.price, -was.qty, -1); break;
    case PP_EV_EXECUTE: r = pp__lv_move(b, was.side, was.price, -v->qty, v->qty == was.qty ? -1 : 0); break;
    default:
        r = pp__lv_move(b, was.side, was.price, -was.qty, -1);
        if (!r) r = pp__lv_move(b, was.side, v->price, v->qty, 1);
        break;
    }
    if (r) pp__lv_free(b);                /* out of memory: made again at the next view */
    return 0;
}

/* >>shadow ---------------------------------------------------------------- */
static int pp__store_catch_up(pp_book *b);
static int pp__store_wait_durable(pp_book *b, uint64_t seq);
static int pp__book_dirs(pp_book *b);
static uint64_t pp__snap_pos(const pp__fkeys *fk, const char *sdir, uint64_t seq);
static int pp__store_sync(pp_store *S, int whole_pages);
static int pp__store_drain(pp_store *S, uint64_t max_frames);
static int pp__store_compact(pp_store *S, int force);
static void pp__idx_upkeep(pp_book *b);
/* Drain up to max events of the ring into the shadow. shadow_mu held. */
static int pp__drain_n(pp_book *b, uint64_t max) {
    uint64_t t = pp__load_rlx(&b->ring_tail), h = pp__load_acq(&b->ring_head);
    if (h - t > max) h = t + max;
    int rc = 0;
    pp__md_sink = &b->md;
    for (; t < h; t++) {
        const uint8_t *e = b->ring + (t & b->ring_mask) * PP__ENTRY;
        if (t + PP__AHEAD < h) pp__prefetch(&b->shadow, b->ring + ((t + PP__AHEAD) & b->ring_mask) * PP__ENTRY);
        pp__ev v;
        v.type = e[4]; v.side = e[5];
        v.seq = pp__get64(e + 8); v.id = pp__get64(e + 16);
        v.price = (int64_t)pp__get64(e + 24); v.qty = (int64_t)pp__get64(e + 32); v.ts = pp__get64(e + 40);
        int r = pp__apply_book(b, &v);
        if (r && !rc) rc = r;
        b->applied = v.seq;
    }
    pp__md_sink = NULL;
    pp__store_rel(&b->ring_tail, t);
    return rc;
}
/* shadow_mu held. Format 2: the store's dispatch catches the book up (it
 * takes other books' locks: ours is let go meanwhile). */
static int pp__drain(pp_book *b) {
    if (b->iid) {
        pthread_mutex_unlock(&b->shadow_mu);
        int rc = pp__store_catch_up(b);
        pthread_mutex_lock(&b->shadow_mu);
        return rc;
    }
    return pp__drain_n(b, UINT64_MAX);
}

/* >>snapshot -------------------------------------------------------------- */
/* Snapshot file snapshots/<20-digit seq>.pps:
 *   0 "PPSNAP01"  8 u32 version  12 u32 record size (48)  16 u64 seq
 *  24 u64 order count  32 u64 created (realtime ns)  40 u64 journal position
 *  (format 2)  48 u64 payload section bytes P (format 2; 0: none)  56..63 zero
 *  64 count x {u64 id, i64 price, i64 qty, u64 ts_ns, u64 priority seq, u64 side}
 *  then P bytes: per order with a payload, in the orders' order,
 *     {u64 id, u32 length (1..PP_PAYLOAD_MAX), u32 0, the bytes, zeros to a multiple of 8}
 *  end: u32 crc32c(everything before), u32 zero */
#define PP__SNAP_PLHDR 16u
static inline uint64_t pp__pad8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

/* The payload entry at *at (below end), checked; *at moves past it. 0 or PP_ECORRUPT. */
static int pp__snap_pl_next(const uint8_t *p, uint64_t *at, uint64_t end, uint64_t *id, const uint8_t **pl, uint32_t *plen) {
    uint64_t a = *at;
    if (end - a < PP__SNAP_PLHDR) return PP_ECORRUPT;
    uint32_t l = pp__get32(p + a + 8);
    if (l == 0 || l > PP_PAYLOAD_MAX || pp__get32(p + a + 12) != 0 || end - a - PP__SNAP_PLHDR < pp__pad8(l)) return PP_ECORRUPT;
    for (uint64_t i = l; i < pp__pad8(l); i++) if (p[a + PP__SNAP_PLHDR + i]) return PP_ECORRUPT;
    *id = pp__get64(p + a); *pl = p + a + PP__SNAP_PLHDR; *plen = l;
    *at = a + PP__SNAP_PLHDR + pp__pad8(l);
    return 0;
}

static int pp__snap_decode(const uint8_t *p, size_t len, uint64_t *seq, uint64_t *count) {
    if (len < PP__SNAP_HDR + PP__SNAP_TAIL || memcmp(p, PP__SNAP_MAGIC, 8) != 0) return PP_EFORMAT;
    if (pp__get32(p + 8) != PP__VERSION || pp__get32(p + 12) != PP__ENTRY) return PP_EFORMAT;
    *seq = pp__get64(p + 16); *count = pp__get64(p + 24);
    if (*seq > PP__SEQ_MAX) return PP_ECORRUPT;       /* the book could not go on: its next seq would wrap */
    uint64_t plsec = pp__get64(p + 48), room = len - PP__SNAP_HDR - PP__SNAP_TAIL;
    if (plsec > room || plsec % 8 || pp__get64(p + 56) != 0) return PP_ECORRUPT;
    if (*count > (room - plsec) / PP__ENTRY || len != PP__SNAP_HDR + *count * PP__ENTRY + plsec + PP__SNAP_TAIL) return PP_ECORRUPT;
    if (pp__get32(p + len - PP__SNAP_TAIL) != plg_crc32c(0, p, len - PP__SNAP_TAIL)) return PP_ECORRUPT;
    /* each payload belongs to an order of the snapshot, in the orders' order, one each */
    uint64_t at = PP__SNAP_HDR + *count * PP__ENTRY, end = at + plsec, oi = 0;
    while (at < end) {
        uint64_t id; const uint8_t *pl; uint32_t l;
        if (pp__snap_pl_next(p, &at, end, &id, &pl, &l)) return PP_ECORRUPT;
        while (oi < *count && pp__get64(p + PP__SNAP_HDR + oi * PP__ENTRY) != id) oi++;
        if (oi == *count) return PP_ECORRUPT;
        oi++;
    }
    return 0;
}

static int pp__read_file(const char *path, uint8_t **out, size_t *len) {
    *out = NULL; *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pp__from_errno(errno);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) rc = pp__from_errno(errno);
    uint8_t *p = NULL;
    if (!rc) { p = (uint8_t *)PINNACLE_PERSIST_MALLOC((size_t)st.st_size + 1); if (!p) rc = PP_ENOMEM; }
    size_t got = 0;
    while (!rc && got < (size_t)st.st_size) {
        ssize_t n = pread(fd, p + got, (size_t)st.st_size - got, (off_t)got);
        if (n < 0) { if (errno == EINTR) continue; rc = pp__from_errno(errno); }
        else if (n == 0) break;
        else got += (size_t)n;
    }
    close(fd);
    if (rc) { PINNACLE_PERSIST_FREE(p); return rc; }
    *out = p; *len = got;
    return 0;
}

/* >>seal: encryption at rest of the store's own files (PICOLOG_ENCRYPT;
 * docs/encryption.md, "pinnacle: an encrypted store"). A sealed file (a snapshot, a market-data
 * state or spec, a pp_conn_put blob) is
 *   0 "PPSEAL01"  8 u32 version (1)  12 u32 zero  16 u64 key id
 *  24 u64 plaintext length  32 16-byte IV (random)  48..63 zero
 *  64 AES-256-CBC(K_enc, IV, plaintext, PKCS#7)
 *  then HMAC-SHA256(K_mac, bytes 0..63 || the file's name || 0 || ciphertext)
 * with K_x = HMAC-SHA256(data key, "pinnacle v1 file <x>" || 0) and the key
 * id picolog's (the same fingerprint for the same data key). The name (not
 * the directory: archiving moves files) under the tag means that one sealed
 * file cannot stand in for another. Every file is written whole, once
 * (temp, fsync, rename), so a random IV per file is enough. */
#define PP__SEAL_MAGIC "PPSEAL01"
/* The keys for the read-only paths of this thread: pp__ro_fk for the span
 * of one store call (pp_book_at), else what pp_read_keys gave (pp__tls_fk);
 * NULL: none. The store's own paths use its keys (pp_store.fk). */
static __thread const pp__fkeys *pp__ro_fk;
static __thread pp__fkeys *pp__tls_fk;
static const pp__fkeys *pp__ro_keys(void) { return pp__ro_fk ? pp__ro_fk : pp__tls_fk; }
#define PP__SEAL_HDR 64u
#define PP__SEAL_TAG 32u
struct pp__fkeys {
    uint32_t n;                              /* k[0]: the current key (new files) */
    struct { uint64_t id; uint8_t enc[32], mac[32]; } k[PLG_MAX_KEYS];
    uint8_t raw[PLG_MAX_KEYS][32];           /* the data keys themselves, for the store's picolog log */
    const uint8_t *ptr[PLG_MAX_KEYS];        /* raw[i] */
    plg_config keys;                         /* pp_read_keys: the picolog reader's keys (the rest zero) */
};
static const plg_config *pp__read_keys_log(void) { return pp__tls_fk ? &pp__tls_fk->keys : NULL; }

static void pp__fkeys_free(pp__fkeys *f) {
    if (!f) return;
#ifdef PICOLOG_ENCRYPT
    vault_wipe(f, sizeof *f);
#else
    memset(f, 0, sizeof *f);
#endif
    PINNACLE_PERSIST_FREE(f);
}

#ifdef PICOLOG_ENCRYPT
static const char *pp__base(const char *path) { const char *s = strrchr(path, '/'); return s ? s + 1 : path; }
static void pp__seal_kdf(const uint8_t *key, const char *label, uint8_t out[32]) {
    vault_hmac_sha256(key, 32, label, strlen(label) + 1, out);   /* the label and its NUL */
}
/* The first 8 bytes of HMAC(key, "picolog v1 key id" || 0), as picolog's. */
static uint64_t pp__seal_key_id(const uint8_t *key) {
    uint8_t t[32];
    pp__seal_kdf(key, "picolog v1 key id", t);
    uint64_t id = 0;
    for (int i = 7; i >= 0; i--) id = id << 8 | t[i];
    vault_wipe(t, sizeof t);
    return id;
}
static void pp__seal_tag(const uint8_t mac[32], const uint8_t *hdr, const char *name, const uint8_t *ct, size_t n, uint8_t tag[32]) {
    /* HMAC over three pieces without copying the file: inner and outer hash by hand */
    uint8_t blk[64], inner[32];
    vault_sha256_ctx c;
    memset(blk, 0, sizeof blk); memcpy(blk, mac, 32);
    for (int i = 0; i < 64; i++) blk[i] ^= 0x36;
    vault_sha256_init(&c); vault_sha256_update(&c, blk, 64);
    vault_sha256_update(&c, hdr, PP__SEAL_HDR);
    vault_sha256_update(&c, name, strlen(name) + 1);
    vault_sha256_update(&c, ct, n);
    vault_sha256_final(&c, inner);
    for (int i = 0; i < 64; i++) blk[i] ^= 0x36 ^ 0x5c;
    vault_sha256_init(&c); vault_sha256_update(&c, blk, 64); vault_sha256_update(&c, inner, 32);
    vault_sha256_final(&c, tag);
    vault_wipe(blk, sizeof blk); vault_wipe(inner, sizeof inner);
}
#endif

/* The keys of pp_config (NULL when it has none), derived once at pp_open. */
static int pp__fkeys_make(const pp_config *c, pp__fkeys **out) {
    *out = NULL;
    if (!c->encrypt_key) return 0;
#ifdef PICOLOG_ENCRYPT
    if (c->n_old_keys + 1 > PLG_MAX_KEYS || (c->n_old_keys && !c->old_keys)) return PP_ECONFIG;
    pp__fkeys *f = (pp__fkeys *)pp__alloc(sizeof *f);
    if (!f) return PP_ENOMEM;
    for (size_t i = 0; i <= c->n_old_keys; i++) {
        const uint8_t *k = i ? c->old_keys[i - 1] : c->encrypt_key;
        if (!k) { pp__fkeys_free(f); return PP_ECONFIG; }
        memcpy(f->raw[f->n], k, 32); f->ptr[f->n] = f->raw[f->n];
        f->k[f->n].id = pp__seal_key_id(k);
        pp__seal_kdf(k, "pinnacle v1 file enc", f->k[f->n].enc);
        pp__seal_kdf(k, "pinnacle v1 file mac", f->k[f->n].mac);
        f->n++;
    }
    *out = f;
    return 0;
#else
    return PP_ENOTSUP;
#endif
}


/* Write path durably: sealed under fk's current key, or as it is (fk NULL). */
static int pp__write_file_k(const pp__fkeys *fk, const char *path, const void *data, size_t len, unsigned mode) {
    if (!fk) return pp__write_file_durable(path, data, len, mode);
#ifdef PICOLOG_ENCRYPT
    size_t ctn = (len / 16 + 1) * 16, total = PP__SEAL_HDR + ctn + PP__SEAL_TAG, got = 0;
    uint8_t *f = (uint8_t *)PINNACLE_PERSIST_MALLOC(total);
    if (!f) { errno = ENOMEM; return PLG_ENOMEM; }
    memset(f, 0, PP__SEAL_HDR);
    memcpy(f, PP__SEAL_MAGIC, 8); pp__put32(f + 8, 1);
    pp__put64(f + 16, fk->k[0].id); pp__put64(f + 24, (uint64_t)len);
    if (vault_random(f + 32, 16) != 0) { PINNACLE_PERSIST_FREE(f); errno = EIO; return PLG_EIO; }
    vault_aes256_ctx c;
    vault_aes256_init(&c, fk->k[0].enc);
    int rc = vault_aes256_ctx_cbc_encrypt(&c, f + 32, data, len, f + PP__SEAL_HDR, &got);
    vault_wipe(&c, sizeof c);
    PINNACLE_PERSIST_ASSERT(rc == 0 && got == ctn);
    pp__seal_tag(fk->k[0].mac, f, pp__base(path), f + PP__SEAL_HDR, ctn, f + PP__SEAL_HDR + ctn);
    rc = pp__write_file_durable(path, f, total, mode);
    PINNACLE_PERSIST_FREE(f);
    return rc;
#else
    (void)data; (void)len; (void)mode; (void)path;
    return PLG_ENOCRYPT;
#endif
}

/* The file's bytes, opened: a sealed file needs fk (PP_ENEEDKEY; PP_EKEY when
 * its key is not among fk's) and a tag that holds (PP_ECORRUPT); in an
 * encrypted store (fk) a file that is not sealed is PP_ECORRUPT too (it
 * cannot have been written by the store). why: what was wrong, or "". */
static int pp__read_file_k(const pp__fkeys *fk, const char *path, uint8_t **out, size_t *len, char *why, size_t wcap) {
    if (why && wcap) why[0] = 0;
    int rc = pp__read_file(path, out, len);
    if (rc) return rc;
    int sealed = *len >= 8 && memcmp(*out, PP__SEAL_MAGIC, 8) == 0;
    if (!sealed && !fk) return 0;
    uint8_t *f = *out; size_t n = *len;
    *out = NULL; *len = 0;
    (void)n;
    if (!sealed) {
        if (why) snprintf(why, wcap, "not sealed, in an encrypted store");
        PINNACLE_PERSIST_FREE(f);
        return PP_ECORRUPT;
    }
    if (!fk) {
        if (why) snprintf(why, wcap, "sealed (encrypted): the store's data key is needed");
        PINNACLE_PERSIST_FREE(f);
        return PP_ENEEDKEY;
    }
#ifdef PICOLOG_ENCRYPT
    uint64_t plen = n >= PP__SEAL_HDR ? pp__get64(f + 24) : 0, kid = n >= PP__SEAL_HDR ? pp__get64(f + 16) : 0;
    size_t ctn = n >= PP__SEAL_HDR + PP__SEAL_TAG ? n - PP__SEAL_HDR - PP__SEAL_TAG : 0;
    const char *bad = NULL;
    uint32_t k = 0;
    rc = 0;
    if (n < PP__SEAL_HDR + 16 + PP__SEAL_TAG || pp__get32(f + 8) != 1 || ctn % 16 || plen / 16 + 1 != ctn / 16) bad = "sealed header damaged (length or version)";
    else {
        while (k < fk->n && fk->k[k].id != kid) k++;
        if (k == fk->n) {
            if (why) snprintf(why, wcap, "sealed under key id %016llx, which was not given", (unsigned long long)kid);
            PINNACLE_PERSIST_FREE(f);
            return PP_EKEY;
        }
        uint8_t tag[32];
        pp__seal_tag(fk->k[k].mac, f, pp__base(path), f + PP__SEAL_HDR, ctn, tag);
        if (!vault_ct_equal(tag, f + PP__SEAL_HDR + ctn, PP__SEAL_TAG)) bad = "authentication tag does not match (damaged or tampered)";
    }
    uint8_t *p = NULL;
    size_t got = 0;
    if (!bad && !(p = (uint8_t *)PINNACLE_PERSIST_MALLOC(ctn + 1))) rc = PP_ENOMEM;
    if (!bad && !rc) {
        vault_aes256_ctx c;
        vault_aes256_init(&c, fk->k[k].enc);
        if (vault_aes256_ctx_cbc_decrypt(&c, f + 32, f + PP__SEAL_HDR, ctn, p, &got) != 0 || got != plen) bad = "padding does not match its length";
        vault_wipe(&c, sizeof c);
    }
    PINNACLE_PERSIST_FREE(f);
    if (bad) {
        if (why) snprintf(why, wcap, "%s", bad);
        if (p) { vault_wipe(p, ctn); PINNACLE_PERSIST_FREE(p); }
        return PP_ECORRUPT;
    }
    if (rc) return rc;
    *out = p; *len = got;
    return 0;
#else
    PINNACLE_PERSIST_FREE(f);
    if (why) snprintf(why, wcap, "sealed, and this build has no PICOLOG_ENCRYPT");
    return PP_ENOTSUP;
#endif
}

PPDEF int pp_read_keys(const uint8_t *const *keys, size_t n) {
    pp__fkeys_free(pp__tls_fk);
    pp__tls_fk = NULL;
    if (!n) return 0;
    if (!keys) return PP_EINVAL;
    if (n > PLG_MAX_KEYS) return PP_ECONFIG;
    pp_config c;
    memset(&c, 0, sizeof c);
    c.encrypt_key = keys[0]; c.old_keys = n > 1 ? keys + 1 : NULL; c.n_old_keys = n - 1;
    pp__fkeys *f = NULL;
    int rc = pp__fkeys_make(&c, &f);
    if (rc) return rc;
    f->keys.encrypt_key = f->ptr[0];
    f->keys.old_keys = f->n > 1 ? f->ptr + 1 : NULL;
    f->keys.n_old_keys = f->n - 1;
    pp__tls_fk = f;
    return 0;
}

/* <archive_dir>/books/<name>/<sub> of a format-2 book, or NULL (no
 * archive, or no memory: the caller tells them apart by S->adir). */
static char *pp__book_archive(const pp_book *b, const char *sub) {
    if (!b->s->adir) return NULL;
    char p[4096];
    if ((size_t)snprintf(p, sizeof p, "%s/books/%s/%s", b->s->adir, b->name, sub) >= sizeof p) return NULL;
    return pp__strdup(p);
}

/* Note the position snapshot seq covers (snap_mu, or the open). */
static void pp__snap_pos_note(pp_book *b, uint64_t seq, uint64_t pos) {
    b->spos_seq[b->spos_i & 3] = seq; b->spos_pos[b->spos_i & 3] = pos; b->spos_i++;
}
/* The position snapshot seq covers: noted, or read from its file. */
static uint64_t pp__snap_pos_b(pp_book *b, uint64_t seq) {
    for (int i = 0; i < 4 && seq; i++) if (b->spos_seq[i] == seq) return b->spos_pos[i];
    uint64_t pos = pp__snap_pos(b->s->fk, b->sdir, seq);
    if (pos) pp__snap_pos_note(b, seq, pos);
    return pos;
}
/* Delete snapshots beyond keep_snapshots (oldest first) and record the
 * range. Format 2 with an archive_dir: moved there instead. */
static int pp__snap_rotate(pp_book *b) {
    uint64_t *v; size_t n;
    int rc = pp__list_numbered(b->sdir, ".pps", 0, &v, &n);
    if (rc) return rc;
    size_t keep = b->s->cfg.keep_snapshots, del = n > keep ? n - keep : 0;
    char *adir = b->iid ? pp__book_archive(b, "snapshots") : NULL;   /* NULL: deleted */
    if (b->iid && b->s->adir && !adir) del = 0;
    for (size_t i = 0; i < del; i++) {
        char p[4096];
        pp__numbered(p, sizeof p, b->sdir, v[i], ".pps");
        if (adir) {
            /* archived: a snapshot that cannot move stays (and counts) */
            if ((rc = pp__archive_file(b->sdir, p + strlen(b->sdir) + 1, adir)) != 0) { del = i; break; }
        } else {
            pp__sys_unlink(p);
        }
    }
    PINNACLE_PERSIST_FREE(adir);
    if (del && !rc) rc = pp__fsync_dir(b->sdir);
    pp__store_rel(&b->snap_oldest, n > del ? v[del] : 0);
    pp__store_rel(&b->snap_newest, n ? v[n - 1] : 0);
    if (b->iid) {
        pp__store_rel(&b->snap_oldest_pos, n > del ? pp__snap_pos_b(b, v[del]) : 0);
        pp__store_rel(&b->snap_newest_pos, n ? pp__snap_pos_b(b, v[n - 1]) : 0);
    }
    PINNACLE_PERSIST_FREE(v);
    return rc;
}

static int pp__wait_durable(pp_book *b, uint64_t seq) {
    if (pp__load_acq(&b->durable) >= seq) return 0;
    if (b->iid) return pp__store_wait_durable(b, seq);
    if (b->mode == PP_JOURNAL_STRICT) {
        int r = plg_wait(b->log, seq, -1);
        if (r) { r = pp__from_plg(r); pp__poison(b, r); return r; }
        if (seq > pp__load_rlx(&b->durable)) pp__store_rel(&b->durable, seq);
        return 0;
    }
    int rc = pp__sync_mmap(b, 0);
    if (!rc && pp__load_acq(&b->durable) < seq) rc = PP_EIO;
    return rc;
}

/* Capture the shadow at its newest seq (shadow_mu held only for the copy; the
 * hot path never takes it), make the journal durable up to that seq (the
 * snapshot must never be ahead of the journal), write it durably, rotate. */
static int pp__snapshot(pp_book *b) {
    int rc = pp__load_acq(&b->err);
    if (rc) return rc;
    pthread_mutex_lock(&b->snap_mu);
    if ((rc = pp__load_acq(&b->err)) != 0) { pthread_mutex_unlock(&b->snap_mu); return rc; }   /* retired meanwhile */
    if ((rc = pp__book_dirs(b)) != 0) {
        pthread_mutex_unlock(&b->snap_mu);
        PP__MSG(b->s, rc, "%s: cannot make the book's snapshot directory: %s", b->name, pp_strerror(rc));
        return rc;
    }
    pthread_mutex_lock(&b->shadow_mu);
    rc = pp__drain(b);
    uint64_t seq = b->applied, n = b->shadow.n, pos = b->applied_pos;
    uint8_t *buf = NULL; size_t len = 0;
    if (!rc && seq == pp__load_acq(&b->snap_newest)) {     /* nothing new since the last one */
        pthread_mutex_unlock(&b->shadow_mu);
        pthread_mutex_unlock(&b->snap_mu);
        return 0;
    }
    /* Under the lock only one straight copy of the table (the ring buffers
     * the events meanwhile); packing the orders happens after. */
    uint64_t cap = b->shadow.mask + 1;
    pp__oslot *raw = NULL;
    uint8_t *mdbuf = NULL; size_t mdlen = 0;
    pp__plmap pm;                      /* the resting orders' payloads (format 2) */
    uint8_t *blob = NULL;
    uint64_t plsec = 0;
    memset(&pm, 0, sizeof pm);
    if (!rc) rc = pp__md_serialize(b, seq, &mdbuf, &mdlen);
    if (!rc) rc = pp__pl_copy(&b->plmap, b->pl_bytes, &pm, &blob);
    for (uint64_t i = 0; pm.t && i <= pm.mask; i++) if (pm.t[i].id) plsec += PP__SNAP_PLHDR + pp__pad8(pm.t[i].len);
    if (!rc) {
        len = PP__SNAP_HDR + (size_t)n * PP__ENTRY + (size_t)plsec + PP__SNAP_TAIL;
        buf = (uint8_t *)PINNACLE_PERSIST_MALLOC(len);
        raw = (pp__oslot *)PINNACLE_PERSIST_MALLOC((size_t)cap * sizeof *raw);
        if (!buf || !raw) rc = PP_ENOMEM;
        else memcpy(raw, b->shadow.t, (size_t)cap * sizeof *raw);
    }
    pthread_mutex_unlock(&b->shadow_mu);
    if (!rc) {
        uint8_t *o = buf + PP__SNAP_HDR;
        for (uint64_t i = 0; i < cap; i++)
            if (raw[i].id) { memcpy(o, &raw[i], PP__ENTRY); o += PP__ENTRY; }
        PINNACLE_PERSIST_ASSERT(o == buf + PP__SNAP_HDR + (size_t)n * PP__ENTRY);
        for (uint64_t i = 0; pm.n && i < cap; i++) {        /* the payloads, in the orders' order */
            const pp__plslot *q = raw[i].id ? pp__plmap_find(&pm, raw[i].id) : NULL;
            if (!q) continue;
            pp__put64(o, q->id); pp__put32(o + 8, (uint32_t)q->len); pp__put32(o + 12, 0);
            memcpy(o + PP__SNAP_PLHDR, q->p, (size_t)q->len);
            memset(o + PP__SNAP_PLHDR + q->len, 0, (size_t)(pp__pad8(q->len) - q->len));
            o += PP__SNAP_PLHDR + pp__pad8(q->len);
        }
        PINNACLE_PERSIST_ASSERT(o == buf + PP__SNAP_HDR + (size_t)n * PP__ENTRY + plsec);
    }
    PINNACLE_PERSIST_FREE(raw);
    PINNACLE_PERSIST_FREE(pm.t);
    PINNACLE_PERSIST_FREE(blob);
    if (!rc) {
        memset(buf, 0, PP__SNAP_HDR);
        memcpy(buf, PP__SNAP_MAGIC, 8);
        pp__put32(buf + 8, PP__VERSION); pp__put32(buf + 12, PP__ENTRY);
        pp__put64(buf + 16, seq); pp__put64(buf + 24, n);
        pp__put64(buf + 40, pos);          /* format 2: the store-journal position it covers (0 otherwise) */
        pp__put64(buf + 48, plsec);        /* format 2: the payload section (0: none) */
        {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            pp__put64(buf + 32, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
        }
        pp__put32(buf + len - PP__SNAP_TAIL, plg_crc32c(0, buf, len - PP__SNAP_TAIL));
        pp__put32(buf + len - 4, 0);
        rc = pp__wait_durable(b, seq);
    }
    if (!rc && mdbuf) rc = pp__md_write(b, seq, mdbuf, mdlen);   /* before the snapshot that needs it */
    PINNACLE_PERSIST_FREE(mdbuf);
    if (!rc) {
        char p[4096];
        pp__numbered(p, sizeof p, b->sdir, seq, ".pps");
        rc = pp__from_plg_file(pp__write_file_k(b->s->fk, p, buf, len, 0644));
    }
    PINNACLE_PERSIST_FREE(buf);
    /* counted before the rotation publishes it as the newest (release), so
     * pp_get_stats, which reads the newest first (acquire), never shows a
     * newest snapshot that the count does not include yet */
    if (!rc) { pp__add_rlx(&b->st_snapshots, 1); if (b->iid) pp__snap_pos_note(b, seq, pos); rc = pp__snap_rotate(b); }
    if (!rc) rc = pp__md_rotate(b);
    pthread_mutex_unlock(&b->snap_mu);
    if (rc) PP__MSG(b->s, rc, "%s: snapshot at seq %llu failed: %s", b->name, (unsigned long long)seq, pp_strerror(rc));
    return rc;
}

/* >>marketdata ------------------------------------------------------------ */
/* Shadow-side state of an instrument's market data (under shadow_mu):
 * the last tick, raw ticks of the retention window, 1 s and 1 min bars and
 * gaps. Persisted as <instrument>/md/<seq>.ppm with each snapshot, and the
 * declared spec as <instrument>/md/spec. */
#define PP__MD_MAGIC  "PPMDST01"
#define PP__MD_HDR    64u
#define PP__TICK_REC  96u
#define PP__SPEC_REC  40u

static void *pp__vec_at(const pp__vec *v, size_t i) { return v->p + (v->head + i) * v->sz; }
static void *pp__vec_push(pp__vec *v) {
    if (v->head + v->n == v->cap) {
        if (v->head && v->head >= v->n) {          /* mostly dropped: slide down */
            memmove(v->p, v->p + v->head * v->sz, v->n * v->sz);
            v->head = 0;
        } else {
            size_t nc = v->cap ? v->cap * 2 : 256;
            uint8_t *np = (uint8_t *)PINNACLE_PERSIST_REALLOC(v->p, nc * v->sz);
            if (!np) return NULL;
            v->p = np; v->cap = nc;
        }
    }
    return v->p + (v->head + v->n++) * v->sz;
}
static void pp__vec_drop(pp__vec *v, size_t k) { v->head += k; v->n -= k; if (!v->n) v->head = 0; }
static void pp__vec_free(pp__vec *v) { PINNACLE_PERSIST_FREE(v->p); v->p = NULL; v->head = v->n = v->cap = 0; }

static pp_md_spec pp__md_spec_defaults(const pp_md_spec *in) {
    pp_md_spec s;
    if (in) s = *in; else memset(&s, 0, sizeof s);
    if (!s.price_scale) s.price_scale = 1;
    if (!s.size_scale) s.size_scale = 1;
    if (!s.tick_window_s) s.tick_window_s = 3600;
    if (!s.bar_window_s) s.bar_window_s = 30u * 86400u;
    if (!s.max_ticks) s.max_ticks = 1u << 20;
    if (!s.bar1s_window_s) s.bar1s_window_s = 86400;
    return s;
}

static void pp__md_init(pp__md *md) {
    memset(md, 0, sizeof *md);
    md->spec = pp__md_spec_defaults(NULL);
    md->ticks.sz = sizeof(pp_tick); md->gaps.sz = sizeof(pp_gap);
    md->b1.sz = sizeof(pp_bar); md->b60.sz = sizeof(pp_bar);
}
static void pp__md_free(pp__md *md) {
    pp__vec_free(&md->ticks); pp__vec_free(&md->b1); pp__vec_free(&md->b60); pp__vec_free(&md->gaps);
}

/* first index whose key (u64 at offset 0 of each item, sorted) is >= k */
static size_t pp__vec_lower(const pp__vec *v, size_t key_off, uint64_t k) {
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t x; memcpy(&x, (const uint8_t *)pp__vec_at(v, mid) + key_off, 8);
        if (x < k) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static int pp__bar_add(pp__vec *v, uint64_t res_ns, uint64_t window_ns, const pp_tick *t, uint64_t gaps) {
    uint64_t start = t->exch_ts_ns / res_ns * res_ns;
    pp_bar *x = v->n ? (pp_bar *)pp__vec_at(v, v->n - 1) : NULL;
    if (!x || x->start_ns != start) {
        if (x && start < x->start_ns) {            /* a late tick: its bar, or a new one in order */
            size_t i = pp__vec_lower(v, 0, start);
            x = (pp_bar *)pp__vec_at(v, i);
            if (x->start_ns != start) {
                if (!pp__vec_push(v)) return PP_ENOMEM;
                x = (pp_bar *)pp__vec_at(v, i);
                memmove(x + 1, x, (v->n - 1 - i) * sizeof *x);
                memset(x, 0, sizeof *x);
                x->start_ns = start; x->open = x->high = x->low = t->price;
            }
        } else {
            if (!(x = (pp_bar *)pp__vec_push(v))) return PP_ENOMEM;
            memset(x, 0, sizeof *x);
            x->start_ns = start; x->open = x->high = x->low = t->price;
            size_t k = 0;                           /* retention: bars older than the window, never the new one */
            while (k + 1 < v->n) {                  /* (start_ns + window_ns would wrap for a far-future tick) */
                uint64_t s0 = ((pp_bar *)pp__vec_at(v, k))->start_ns;
                if (s0 >= start || start - s0 <= window_ns) break;
                k++;
            }
            if (k) { pp__vec_drop(v, k); x = (pp_bar *)pp__vec_at(v, v->n - 1); }
        }
    }
    if (t->price > x->high) x->high = t->price;
    if (t->price < x->low) x->low = t->price;
    x->close = t->price;
    x->volume += t->size;
    x->trades++;
    x->gaps += gaps;
    return 0;
}

static int pp__md_commit(pp__md *md, const pp_tick *t) {
    md->used = 1;
    md->last = *t; md->has_last = 1;
    uint64_t win = (uint64_t)md->spec.tick_window_s * 1000000000ull;
    size_t k = 0;
    while (k < md->ticks.n && (md->ticks.n - k >= md->spec.max_ticks ||
                               ((pp_tick *)pp__vec_at(&md->ticks, k))->exch_ts_ns + win < t->exch_ts_ns)) k++;
    if (k) pp__vec_drop(&md->ticks, k);
    pp_tick *d = (pp_tick *)pp__vec_push(&md->ticks);
    if (!d) return PP_ENOMEM;
    *d = *t;
    uint64_t bw = (uint64_t)md->spec.bar_window_s * 1000000000ull, bw1 = (uint64_t)md->spec.bar1s_window_s * 1000000000ull;
    int rc = pp__bar_add(&md->b1, 1000000000ull, bw1, t, md->gap_pending);
    if (!rc) rc = pp__bar_add(&md->b60, 60000000000ull, bw, t, md->gap_pending);
    md->gap_pending = 0;
    return rc;
}

static int pp__md_apply(pp__md *md, const pp__ev *v) {
    md->used = 1;
    switch (v->type) {
    case PP__EV_TICK1:
        memset(&md->pend, 0, sizeof md->pend);
        md->pend.exch_seq = v->id; md->pend.price = v->price; md->pend.size = v->qty;
        md->pend.exch_ts_ns = v->ts; md->pend.side = (uint8_t)v->side;
        md->pend_seq = v->seq; md->have = 1;
        return 0;
    case PP__EV_TICK2:
        if (md->have != 1 || v->seq != md->pend_seq + 1) { md->have = 0; return 0; }   /* orphan: skipped */
        md->pend.trade_id = v->id; md->pend.bid = v->price; md->pend.bid_size = v->qty; md->pend.recv_ts_ns = v->ts;
        md->have = 2;
        return 0;
    case PP__EV_TICK3:
        if (md->have != 2 || v->seq != md->pend_seq + 2) { md->have = 0; return 0; }
        md->pend.volume_24h = (int64_t)v->id; md->pend.ask = v->price; md->pend.ask_size = v->qty;
        md->have = 0;
        return pp__md_commit(md, &md->pend);
    case PP__EV_GAP: {
        md->have = 0;
        if (md->gaps.n) {          /* the same gap journaled again by a retried append */
            const pp_gap *l = (const pp_gap *)pp__vec_at(&md->gaps, md->gaps.n - 1);
            if (l->after_seq == v->id && l->next_seq == (uint64_t)v->price) return 0;
        }
        pp_gap *g = (pp_gap *)pp__vec_push(&md->gaps);
        if (!g) return PP_ENOMEM;
        g->after_seq = v->id; g->next_seq = (uint64_t)v->price; g->exch_ts_ns = v->ts;
        md->gap_pending++;
        uint64_t bw = (uint64_t)md->spec.bar_window_s * 1000000000ull;
        size_t k = 0;
        while (k < md->gaps.n && ((pp_gap *)pp__vec_at(&md->gaps, k))->exch_ts_ns + bw < v->ts) k++;
        if (k) pp__vec_drop(&md->gaps, k);
        return 0;
    }
    default:
        return PP_ECORRUPT;
    }
}

static void pp__tick_put(uint8_t *p, const pp_tick *t) {
    pp__put64(p, t->exch_seq); pp__put64(p + 8, t->exch_ts_ns); pp__put64(p + 16, t->recv_ts_ns);
    pp__put64(p + 24, (uint64_t)t->price); pp__put64(p + 32, (uint64_t)t->size);
    pp__put64(p + 40, (uint64_t)t->bid); pp__put64(p + 48, (uint64_t)t->bid_size);
    pp__put64(p + 56, (uint64_t)t->ask); pp__put64(p + 64, (uint64_t)t->ask_size);
    pp__put64(p + 72, (uint64_t)t->volume_24h); pp__put64(p + 80, t->trade_id); pp__put64(p + 88, t->side);
}
static void pp__tick_get(const uint8_t *p, pp_tick *t) {
    memset(t, 0, sizeof *t);
    t->exch_seq = pp__get64(p); t->exch_ts_ns = pp__get64(p + 8); t->recv_ts_ns = pp__get64(p + 16);
    t->price = (int64_t)pp__get64(p + 24); t->size = (int64_t)pp__get64(p + 32);
    t->bid = (int64_t)pp__get64(p + 40); t->bid_size = (int64_t)pp__get64(p + 48);
    t->ask = (int64_t)pp__get64(p + 56); t->ask_size = (int64_t)pp__get64(p + 64);
    t->volume_24h = (int64_t)pp__get64(p + 72); t->trade_id = pp__get64(p + 80); t->side = (uint8_t)pp__get64(p + 88);
}
static void pp__spec_put(uint8_t *p, const pp_md_spec *s) {
    memset(p, 0, PP__SPEC_REC);
    pp__put64(p, (uint64_t)s->price_scale); pp__put64(p + 8, (uint64_t)s->size_scale);
    pp__put32(p + 16, s->tick_window_s); pp__put32(p + 20, s->bar_window_s); pp__put64(p + 24, s->max_ticks);
    pp__put32(p + 32, s->bar1s_window_s);
}
static int pp__spec_get(const uint8_t *p, pp_md_spec *s) {
    s->price_scale = (int64_t)pp__get64(p); s->size_scale = (int64_t)pp__get64(p + 8);
    s->tick_window_s = pp__get32(p + 16); s->bar_window_s = pp__get32(p + 20); s->max_ticks = pp__get64(p + 24);
    s->bar1s_window_s = pp__get32(p + 32);
    if (!s->bar1s_window_s) s->bar1s_window_s = 86400;
    return s->price_scale > 0 && s->size_scale > 0 && s->tick_window_s && s->bar_window_s && s->max_ticks ? 0 : PP_ECORRUPT;
}
PP__STATIC_ASSERT(sizeof(pp_bar) == 64 && sizeof(pp_gap) == 24, "pp_bar and pp_gap are stored as they are");

/* State file: 64-byte header {magic, u32 version, u32 0, u64 seq, u64 last
 * exch seq, u64 ticks, u64 bars1s, u64 bars1m, u64 gaps}, then spec (40),
 * u64 flags (bit0 has_last, bits 8..15 have), u64 pend_seq, u64 gap_pending,
 * last tick (96), pending tick (96), the arrays, CRC32C of all before, u32 0.
 * Built under shadow_mu at snapshot time: the state at exactly seq. */
static int pp__md_serialize(pp_book *b, uint64_t seq, uint8_t **out, size_t *len) {
    pp__md *md = &b->md;
    *out = NULL; *len = 0;
    if (!md->used) return 0;
    size_t n = PP__MD_HDR + PP__SPEC_REC + 24 + 2 * PP__TICK_REC + md->ticks.n * PP__TICK_REC +
               (md->b1.n + md->b60.n) * sizeof(pp_bar) + md->gaps.n * sizeof(pp_gap) + 8;
    uint8_t *p = (uint8_t *)pp__alloc(n), *o;
    if (!p) return PP_ENOMEM;
    memcpy(p, PP__MD_MAGIC, 8); pp__put32(p + 8, PP__VERSION);
    pp__put64(p + 16, seq); pp__put64(p + 24, md->has_last ? md->last.exch_seq : 0);
    pp__put64(p + 32, md->ticks.n); pp__put64(p + 40, md->b1.n); pp__put64(p + 48, md->b60.n); pp__put64(p + 56, md->gaps.n);
    o = p + PP__MD_HDR;
    pp__spec_put(o, &md->spec); o += PP__SPEC_REC;
    pp__put64(o, (uint64_t)md->has_last | ((uint64_t)md->have << 8)); pp__put64(o + 8, md->pend_seq); pp__put64(o + 16, md->gap_pending); o += 24;
    pp__tick_put(o, &md->last); o += PP__TICK_REC;
    pp__tick_put(o, &md->pend); o += PP__TICK_REC;
    for (size_t i = 0; i < md->ticks.n; i++, o += PP__TICK_REC) pp__tick_put(o, (const pp_tick *)pp__vec_at(&md->ticks, i));
    if (md->b1.n) { memcpy(o, pp__vec_at(&md->b1, 0), md->b1.n * sizeof(pp_bar)); o += md->b1.n * sizeof(pp_bar); }
    if (md->b60.n) { memcpy(o, pp__vec_at(&md->b60, 0), md->b60.n * sizeof(pp_bar)); o += md->b60.n * sizeof(pp_bar); }
    if (md->gaps.n) { memcpy(o, pp__vec_at(&md->gaps, 0), md->gaps.n * sizeof(pp_gap)); o += md->gaps.n * sizeof(pp_gap); }
    pp__put32(o, plg_crc32c(0, p, (size_t)(o - p)));
    PINNACLE_PERSIST_ASSERT((size_t)(o - p) + 8 == n);
    *out = p; *len = n;
    return 0;
}

static int pp__md_fill(pp__vec *v, const uint8_t *src, size_t count) {
    for (size_t i = 0; i < count; i++) {
        void *d = pp__vec_push(v);
        if (!d) return PP_ENOMEM;
        memcpy(d, src + i * v->sz, v->sz);
    }
    return 0;
}

static int pp__md_decode(pp__md *md, const uint8_t *p, size_t len, uint64_t want_seq) {
    if (len < PP__MD_HDR + PP__SPEC_REC + 24 + 2 * PP__TICK_REC + 8 || memcmp(p, PP__MD_MAGIC, 8) ||
        pp__get32(p + 8) != PP__VERSION || pp__get64(p + 16) != want_seq) return PP_EFORMAT;
    uint64_t nt = pp__get64(p + 32), n1 = pp__get64(p + 40), n60 = pp__get64(p + 48), ng = pp__get64(p + 56);
    if (nt > len || n1 > len || n60 > len || ng > len) return PP_ECORRUPT;
    size_t need = PP__MD_HDR + PP__SPEC_REC + 24 + 2 * PP__TICK_REC + nt * PP__TICK_REC + (n1 + n60) * sizeof(pp_bar) +
                  ng * sizeof(pp_gap) + 8;
    if (need != len || pp__get32(p + len - 8) != plg_crc32c(0, p, len - 8)) return PP_ECORRUPT;
    const uint8_t *o = p + PP__MD_HDR;
    if (pp__spec_get(o, &md->spec)) return PP_ECORRUPT;
    o += PP__SPEC_REC;
    uint64_t fl = pp__get64(o);
    md->has_last = (int)(fl & 1); md->have = (int)((fl >> 8) & 0xff); md->pend_seq = pp__get64(o + 8); md->gap_pending = pp__get64(o + 16);
    o += 24;
    pp__tick_get(o, &md->last); o += PP__TICK_REC;
    pp__tick_get(o, &md->pend); o += PP__TICK_REC;
    for (uint64_t i = 0; i < nt; i++, o += PP__TICK_REC) {
        pp_tick *d = (pp_tick *)pp__vec_push(&md->ticks);
        if (!d) return PP_ENOMEM;
        pp__tick_get(o, d);
    }
    int rc = pp__md_fill(&md->b1, o, n1); o += n1 * sizeof(pp_bar);
    if (!rc) rc = pp__md_fill(&md->b60, o, n60);
    o += n60 * sizeof(pp_bar);
    if (!rc) rc = pp__md_fill(&md->gaps, o, ng);
    md->used = 1;
    return rc;
}

/* At open, before the journal replay: the spec, and the state at the snapshot. */
static int pp__md_load(pp_book *b, uint64_t snap) {
    pp__md *md = &b->md;
    char p[4096];
    { struct stat st; if (stat(b->mdir, &st) != 0 || !S_ISDIR(st.st_mode)) return 0; }
    {   /* before any thread writes here: leftovers of an interrupted write go */
        uint64_t *v; size_t n;
        if (pp__list_numbered(b->mdir, ".ppm", 1, &v, &n) == 0) PINNACLE_PERSIST_FREE(v);
    }
    snprintf(p, sizeof p, "%s/spec", b->mdir);
    uint8_t *buf; size_t len;
    int have_spec = 0;
    char why[128];
    int rc = pp__read_file_k(b->s->fk, p, &buf, &len, why, sizeof why);
    if (rc == PP_ENEEDKEY || rc == PP_EKEY || rc == PP_ENOTSUP || (rc == PP_ECORRUPT && why[0])) {
        PP__MSG(b->s, rc, "%s: market-data spec %s: %s", b->name, p, why);
        return rc;
    }
    if (!rc) {
        pp_md_spec sp;
        if (len != PP__SPEC_REC + 8 || pp__get32(buf + PP__SPEC_REC) != plg_crc32c(0, buf, PP__SPEC_REC) || pp__spec_get(buf, &sp)) rc = PP_ECORRUPT;
        else { md->spec = sp; md->used = 1; have_spec = 1; }
        PINNACLE_PERSIST_FREE(buf);
        if (rc) { PP__MSG(b->s, rc, "%s: market-data spec %s is corrupt", b->name, p); return rc; }
    } else if (rc != PP_ENOENT) return rc;
    if (!snap) return 0;
    pp__numbered(p, sizeof p, b->mdir, snap, ".ppm");
    rc = pp__read_file_k(b->s->fk, p, &buf, &len, why, sizeof why);
    if (rc == PP_ENEEDKEY || rc == PP_EKEY || rc == PP_ENOTSUP) {
        PP__MSG(b->s, rc, "%s: market-data state %s: %s", b->name, p, why);
        return rc;
    }
    if (rc == PP_ECORRUPT && why[0]) {        /* as a state that does not decode (below) */
        PP__MSG(b->s, rc, "%s: market-data state %s is unusable (%s): history before seq %llu is not recovered",
                b->name, p, why, (unsigned long long)snap);
        return 0;
    }
    if (rc == PP_ENOENT) {
        PP__MSG(b->s, 0, "%s: no market-data state at snapshot %llu: history before it is not recovered",
                b->name, (unsigned long long)snap);
        return 0;
    }
    if (rc) return rc;
    pp_md_spec keep = md->spec;
    rc = pp__md_decode(md, buf, len, snap);
    PINNACLE_PERSIST_FREE(buf);
    if (have_spec) md->spec = keep;          /* md/spec is the declaration; the state's copy is older or equal */
    if (rc) {
        PP__MSG(b->s, rc, "%s: market-data state %s is unusable (%s): history before seq %llu is not recovered",
                b->name, p, pp_strerror(rc), (unsigned long long)snap);
        pp_md_spec sp = md->spec;
        pp__md_free(md); pp__md_init(md); md->spec = sp; md->used = 1;
    }
    return 0;
}

/* Write the state file for snapshot seq (before the snapshot itself, so
 * every snapshot has its market data), and drop files older than the
 * oldest snapshot kept. */
static int pp__md_write(pp_book *b, uint64_t seq, const uint8_t *buf, size_t len) {
    int rc = pp__mkdir(b->mdir);
    if (rc) return rc;
    char p[4096];
    pp__numbered(p, sizeof p, b->mdir, seq, ".ppm");
    return pp__from_plg_file(pp__write_file_k(b->s->fk, p, buf, len, 0644));
}
static int pp__md_rotate(pp_book *b) {
    { struct stat st; if (stat(b->mdir, &st) != 0 || !S_ISDIR(st.st_mode)) return 0; }
    uint64_t *v; size_t n, del = 0;
    /* No clean-up of *.tmp here: pp_md_declare may be writing spec.tmp from
     * another thread right now. Stale ones go at the book's load. */
    int rc = pp__list_numbered(b->mdir, ".ppm", 0, &v, &n);
    if (rc) return rc;
    uint64_t oldest = pp__load_acq(&b->snap_oldest);
    char *adir = b->iid ? pp__book_archive(b, "md") : NULL;   /* NULL: deleted */
    if (b->iid && b->s->adir && !adir) n = 0;
    for (size_t i = 0; i + 1 < n && v[i] < oldest && !rc; i++) {
        char p[4096];
        pp__numbered(p, sizeof p, b->mdir, v[i], ".ppm");
        if (adir) rc = pp__archive_file(b->mdir, p + strlen(b->mdir) + 1, adir);
        else { pp__sys_unlink(p); del++; }
    }
    PINNACLE_PERSIST_FREE(adir);
    if (del) rc = pp__fsync_dir(b->mdir);
    PINNACLE_PERSIST_FREE(v);
    return rc;
}

/* >>recovery -------------------------------------------------------------- */
typedef struct pp__scanres {
    uint64_t first_seq, last_seq, end, file_size, mark_end, mark_seq, entries;
    int status;            /* 0 = clean end, 1 = torn tail, PP_ECORRUPT */
    uint64_t bad_off;
    char detail[200];
} pp__scanres;

/* Walk one segment's entries from its header's first_seq. Entries with seq >
 * apply_after are applied to m (when m is set). */
static int pp__scan_seg(const uint8_t *p, uint64_t size, uint64_t salt, uint64_t first, pp__shadow *m,
                        uint64_t apply_after, pp__scanres *r) {
    uint32_t seed = pp__seed(salt);
    memset(r, 0, sizeof *r);
    r->file_size = size;
    if (pp__mark_get(p, salt, &r->mark_end, &r->mark_seq) < 0) {
        snprintf(r->detail, sizeof r->detail, "the durable mark is damaged");
        r->status = PP_ECORRUPT; r->bad_off = PP__MARK_OFF; r->end = PP__DATA_OFF;
        r->first_seq = first; r->last_seq = first - 1;
        return PP_ECORRUPT;
    }
    uint64_t off = PP__DATA_OFF, expect = first;
    pp__ev v;
    while (off + PP__ENTRY <= size && pp__dec(p + off, seed, &v) && v.seq == expect) {
        if (m && off + (PP__AHEAD + 1) * PP__ENTRY <= size) pp__prefetch(m, p + off + PP__AHEAD * PP__ENTRY);
        if (m && v.seq > apply_after) {
            int rc = pp__apply(m, &v);
            if (rc) {
                snprintf(r->detail, sizeof r->detail, "entry seq %llu does not fit the book (%s)",
                         (unsigned long long)v.seq, pp_strerror(rc));
                r->status = rc; r->bad_off = off; r->end = off;
                return rc;
            }
        }
        off += PP__ENTRY; expect++; r->entries++;
    }
    r->end = off;
    r->first_seq = first;
    r->last_seq = expect - 1;
    if (off < r->mark_end || (r->mark_end && r->mark_seq > r->last_seq)) {
        snprintf(r->detail, sizeof r->detail,
                 "invalid entry where seq %llu was expected, below the durable mark (offset %llu, seq %llu)",
                 (unsigned long long)expect, (unsigned long long)r->mark_end, (unsigned long long)r->mark_seq);
        r->status = PP_ECORRUPT; r->bad_off = off;
        return PP_ECORRUPT;
    }
    for (uint64_t i = off; i < size; i++)
        if (p[i]) {
            r->status = 1; r->bad_off = off;
            snprintf(r->detail, sizeof r->detail, "torn tail after seq %llu (unsynced bytes from offset %llu)",
                     (unsigned long long)r->last_seq, (unsigned long long)off);
            break;
        }
    return 0;
}

typedef struct pp__segfile { uint64_t index, salt, first; int hdr; } pp__segfile;

/* Map a whole segment file read-only. */
static int pp__map_ro(const char *path, uint8_t **p, uint64_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pp__from_errno(errno);
    struct stat st;
    if (fstat(fd, &st) != 0) { close(fd); return pp__from_errno(errno); }
    *size = (uint64_t)st.st_size;
    *p = NULL;
    if (st.st_size >= (off_t)PP__PAGE) {
        /* Populated (read in and mapped at once: recovery replays it
         * without a fault per page) up to the first hole only: the free
         * rest of a segment left by a crash is unwritten space, and
         * populating it would zero a page-cache page per 4 KiB of it. */
        off_t hole = lseek(fd, 0, SEEK_HOLE);
        size_t pop = hole > 0 && hole < st.st_size ? ((size_t)hole + PP__PAGE - 1) & ~(size_t)(PP__PAGE - 1) : (size_t)st.st_size;
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED | (pop == (size_t)st.st_size ? MAP_POPULATE : 0), fd, 0);
        if (m == MAP_FAILED) { close(fd); return pp__from_errno(errno); }
        if (pop < (size_t)st.st_size && mmap(m, pop, PROT_READ, MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd, 0) == MAP_FAILED) {
            int e = errno;
            munmap(m, (size_t)st.st_size); close(fd);
            return pp__from_errno(e);
        }
        madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
        *p = (uint8_t *)m;
    }
    close(fd);
    return 0;
}

/* A snapshot that does not load is renamed <seq>.pps.corrupt (kept for the
 * operator, invisible to the store): left under its name, rotation would count
 * it among keep_snapshots and delete the good ones, compaction would trim the
 * journal to it, and pp_snapshot would see "a snapshot at this seq exists"
 * and write none. Durable before the open goes on. */
static int pp__snap_quarantine(pp_store *S, const char *name, const char *sdir, const char *path) {
    char q[4200];
    snprintf(q, sizeof q, "%s.corrupt", path);
    errno = 0;
    int rc = pp__sys_rename(path, q) != 0 ? pp__from_errno(errno) : pp__fsync_dir(sdir);
    if (rc && S) PP__MSG(S, rc, "%s: cannot set the unusable snapshot %s aside: %s; not opened", name, path, pp_strerror(rc));
    else if (S) PP__MSG(S, 0, "%s: unusable snapshot set aside as %s", name, q);
    return rc;
}

/* Newest valid snapshot into m; older ones when newer are corrupt (set aside). */
static void pp__chk_where(pp_check_result *chk, const char *file, uint64_t off, const char *detail);
static int pp__load_snapshot(pp_store *S, const char *name, const char *sdir, pp__shadow *m, pp__plmap *pm,
                             uint64_t *pm_bytes, uint64_t *seq_out, pp_check_result *chk) {
    uint64_t *v; size_t n;
    *seq_out = 0;
    int rc = pp__list_numbered(sdir, ".pps", chk == NULL, &v, &n);
    if (rc) return rc;
    if (chk) { chk->snapshots = n; if (n) { chk->newest_snapshot_seq = v[n - 1]; chk->oldest_snapshot_seq = v[0]; } }
    for (size_t k = n; k-- > 0;) {
        char p[4096];
        pp__numbered(p, sizeof p, sdir, v[k], ".pps");
        uint8_t *buf; size_t len;
        uint64_t seq = 0, count = 0;
        char why[128];
        rc = pp__read_file_k(S ? S->fk : pp__ro_keys(), p, &buf, &len, why, sizeof why);
        if (rc == PP_ENOMEM) break;
        if (rc == PP_ENEEDKEY || rc == PP_EKEY || rc == PP_ENOTSUP) {   /* a key matter, not damage */
            if (S) PP__MSG(S, rc, "%s: snapshot %s: %s; not opened", name, p, why);
            if (chk) pp__chk_where(chk, p, 0, why);
            break;
        }
        if (rc == PP_ECORRUPT && why[0] && S) PP__MSG(S, rc, "%s: snapshot %s: %s", name, p, why);
        if (rc == PP_EACCES) {    /* not damage: an older snapshot would hide the cause */
            if (S) PP__MSG(S, rc, "%s: cannot read snapshot %s: %s; not opened", name, p, pp_strerror(rc));
            if (chk) pp__chk_where(chk, p, 0, "snapshot not readable (permission denied)");
            break;
        }
        if (!rc) rc = pp__snap_decode(buf, len, &seq, &count);
        if (!rc && seq != v[k]) rc = PP_ECORRUPT;
        if (rc) {
            if (chk) chk->snapshots_corrupt++;
            else if (S) PP__MSG(S, rc, "%s: snapshot %s is unusable (%s); falling back to an older one", name, p, pp_strerror(rc));
            PINNACLE_PERSIST_FREE(buf);
            rc = chk ? 0 : pp__snap_quarantine(S, name, sdir, p);
            if (rc) break;
            continue;
        }
        if (m) {
            for (uint64_t i = 0; i < count && !rc; i++) {
                pp__oslot o;
                memcpy(&o, buf + PP__SNAP_HDR + i * PP__ENTRY, PP__ENTRY);
                if (!o.id || o.qty <= 0 || pp__shadow_find(m, o.id)) { rc = PP_ECORRUPT; break; }
                if ((m->n + 1) * 2 > m->mask + 1 && pp__shadow_grow(m)) { rc = PP_ENOMEM; break; }
                *pp__shadow_slot(m, o.id) = o;
                m->n++;
            }
            /* the payloads (pp__snap_decode checked that each belongs to one of the orders) */
            uint64_t at = PP__SNAP_HDR + count * PP__ENTRY, end = len - PP__SNAP_TAIL;
            while (pm && !rc && at < end) {
                uint64_t id; const uint8_t *pl; uint32_t l;
                rc = pp__snap_pl_next(buf, &at, end, &id, &pl, &l);
                if (!rc) rc = pp__pl_put(pm, pm_bytes, id, pl, l);
            }
        }
        PINNACLE_PERSIST_FREE(buf);
        if (rc) {   /* checksummed but inconsistent: treat as corrupt, try older */
            if (m) { memset(m->t, 0, (size_t)(m->mask + 1) * sizeof *m->t); m->n = 0; }
            if (pm) pp__pl_clear(pm, pm_bytes);
            if (chk) chk->snapshots_corrupt++;
            rc = chk ? 0 : pp__snap_quarantine(S, name, sdir, p);
            if (rc) break;
            continue;
        }
        *seq_out = seq;
        if (chk) chk->snapshot_orders = count;
        break;
    }
    PINNACLE_PERSIST_FREE(v);
    return rc;
}

/* Data first, then the mark that vouches for it: a mark is never durable
 * before the entries below it. */
static int pp__mark_write_fd(int fd, uint64_t salt, uint64_t end, uint64_t seq) {
    uint8_t h[PP__PAGE];
    int rc = pp__fdatasync(fd);
    if (rc) return rc;
    pp__mark_put(h, salt, end, seq);
    errno = 0;                                         /* a short write sets none */
    if (pp__sys_pwrite(fd, h + PP__MARK_OFF, 20, PP__MARK_OFF) != 20) return errno ? pp__from_errno(errno) : PP_EIO;
    return pp__fdatasync(fd);
}

static void pp__chk_where(pp_check_result *chk, const char *file, uint64_t off, const char *detail) {
    if (!chk) return;
    pp__strlcpy(chk->file, file, sizeof chk->file);
    chk->offset = off;
    pp__strlcpy(chk->detail, detail, sizeof chk->detail);
}

/* Recover (or, with chk and no book, only inspect) the mmap journal of one
 * book. Segments wholly before the snapshot are not read. From the segment
 * holding snap_seq + 1 on, entries are checked and those after snap_seq are
 * applied to m. At the first invalid entry: below the durable mark, fail
 * closed (corruption, with file and offset); otherwise the valid journal ends
 * there: the torn bytes are cut and later segments (which can hold nothing
 * durable: checked) are deleted. With a book, the segments are then made
 * durable, marked, and the last one is mapped for appending. */
static int pp__recover_journal(pp_store *S, pp_book *b, const char *name, const char *jdir, pp__shadow *m,
                               uint64_t snap_seq, uint64_t *last_out, pp_check_result *chk) {
    uint64_t *v; size_t n;
    int rc = pp__list_numbered(jdir, ".ppj", b != NULL, &v, &n);
    if (rc) return rc;
    pp__segfile *f = (pp__segfile *)pp__alloc((n ? n : 1) * sizeof *f);
    pp__scanres *res = (pp__scanres *)pp__alloc((n ? n : 1) * sizeof *res);
    if (!f || !res) { PINNACLE_PERSIST_FREE(v); PINNACLE_PERSIST_FREE(f); PINNACLE_PERSIST_FREE(res); return PP_ENOMEM; }
    char path[4096], msg[256];
    for (size_t i = 0; i < n && !rc; i++) {                          /* headers */
        uint8_t h[PP__PAGE];
        pp__numbered(path, sizeof path, jdir, v[i], ".ppj");
        f[i].index = v[i];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t got = fd < 0 ? -1 : pread(fd, h, sizeof h, 0);
        int e = errno;
        if (fd >= 0) close(fd);
        if (got < 0) {            /* cannot read it (permissions, I/O): say so, it is not corruption */
            rc = pp__from_errno(e);
            pp__chk_where(chk, path, 0, strerror(e));
            if (S) PP__MSG(S, rc, "%s: cannot read journal segment %s: %s; not opened", name, path, strerror(e));
            break;
        }
        uint64_t idx = 0;
        f[i].hdr = got == (ssize_t)sizeof h ? pp__hdr_decode(h, &f[i].salt, &idx, &f[i].first) : PP_ECORRUPT;
        if (!f[i].hdr && idx != v[i]) f[i].hdr = PP_ECORRUPT;
        if (f[i].hdr && i + 1 < n) {
            rc = PP_ECORRUPT;
            pp__chk_where(chk, path, 0, "bad segment header");
            if (S) PP__MSG(S, rc, "%s: journal segment %s has a bad header (offset 0); not opened (fail closed)", name, path);
        }
    }
    /* Trailing segments prepared but never rolled into (first_seq 0 on disk:
     * no sync ever covered them, as the first sync writes the header page)
     * are unused. A bad header is damage (headers are written whole, before
     * the rename): unused only if the file holds no data at all.
     * So are the segments after one whose header still says first seq 0:
     * syncs go segment by segment, so none of them was ever synced, but two
     * rolls between syncs and a power cut can leave a later header on disk
     * (written back early) and not that one. They are unused unless one
     * carries a durable mark, which only a sync writes (then: damage). */
    size_t z = n;                                  /* the first segment saying first seq 0 */
    for (size_t i = 0; i < n && z == n; i++) if (!f[i].hdr && f[i].first == 0) z = i;
    while (!rc && n && (f[n - 1].hdr || f[n - 1].first == 0 || n - 1 > z)) {
        pp__numbered(path, sizeof path, jdir, v[n - 1], ".ppj");
        if (f[n - 1].hdr && pp__has_data(path)) {
            rc = PP_ECORRUPT;
            pp__chk_where(chk, path, 0, "bad segment header on a segment that holds data");
            if (S) PP__MSG(S, rc, "%s: journal segment %s has a bad header (offset 0) but holds data; not opened (fail closed)", name, path);
            break;
        }
        if (!f[n - 1].hdr && f[n - 1].first != 0) {   /* after segment z */
            uint8_t *q = NULL; uint64_t qs = 0, me = 0, ms = 0;
            int mk = 0;
            if (pp__map_ro(path, &q, &qs) == 0 && q) { mk = pp__mark_get(q, f[n - 1].salt, &me, &ms); munmap(q, qs); }
            if (mk < 0 || me > PP__DATA_OFF) {
                rc = PP_ECORRUPT;
                pp__chk_where(chk, path, PP__MARK_OFF, "durable entries after a segment without a first seq");
                if (S) PP__MSG(S, rc, "%s: segment %s holds durable entries but an earlier one has no first seq; not opened (fail closed)", name, path);
                break;
            }
        }
        if (b) {                /* durably gone, or not opened: see the deletion after the valid end below */
            if (pp__sys_unlink(path) != 0 && errno != ENOENT) rc = pp__from_errno(errno);
            else rc = pp__fsync_dir(jdir);
            if (rc) {
                if (S) PP__MSG(S, rc, "%s: cannot durably remove unused segment %s: %s; not opened", name, path, pp_strerror(rc));
                break;
            }
        }
        n--;
    }
    for (size_t i = 0; i < n && !rc; i++)
        if (f[i].first == 0) {
            rc = PP_ECORRUPT;
            pp__numbered(path, sizeof path, jdir, v[i], ".ppj");
            pp__chk_where(chk, path, 32, "segment without a first seq before others");
            if (S) PP__MSG(S, rc, "%s: segment %s has no first seq but later ones exist; not opened", name, path);
        } else if (i > 0 && f[i].first < f[i - 1].first) {
            /* segments are created in seq order: a later one starting earlier would
             * hide the earlier one's entries from recovery (and wrap its end) */
            rc = PP_ECORRUPT;
            pp__numbered(path, sizeof path, jdir, v[i], ".ppj");
            pp__chk_where(chk, path, 32, "segment starts at a lower seq than the one before it");
            if (S) PP__MSG(S, rc, "%s: segment %s starts at seq %llu, before its predecessor (seq %llu); not opened (fail closed)",
                           name, path, (unsigned long long)f[i].first, (unsigned long long)f[i - 1].first);
        }
    size_t start = 0;
    if (!rc && n) {
        for (size_t i = 0; i < n; i++) if (f[i].first <= snap_seq + 1) start = i;
        if (f[start].first > snap_seq + 1) {
            rc = PP_ECORRUPT;
            pp__numbered(path, sizeof path, jdir, v[start], ".ppj");
            snprintf(msg, sizeof msg, "journal starts at seq %llu; the newest usable snapshot covers only up to seq %llu: entries missing",
                     (unsigned long long)f[start].first, (unsigned long long)snap_seq);
            pp__chk_where(chk, path, PP__DATA_OFF, msg);
            if (S) PP__MSG(S, rc, "%s: %s; not opened (fail closed)", name, msg);
        }
    }
    if (chk) { chk->segments = n; chk->journal_first_seq = n ? f[0].first : 0; }
    size_t end_seg = n;
    uint64_t jlast = 0, expect = 0;
    int torn = 0;
    for (size_t i = start; i < n && !rc; i++) {
        pp__scanres *r = &res[i];
        pp__numbered(path, sizeof path, jdir, v[i], ".ppj");
        uint8_t *p = NULL; uint64_t size = 0;
        rc = pp__map_ro(path, &p, &size);
        if (!rc && p) {
            rc = pp__scan_seg(p, size, f[i].salt, f[i].first, m, snap_seq, r);
            munmap(p, size);
        } else if (!rc) {
            r->first_seq = f[i].first; r->last_seq = f[i].first - 1; r->end = PP__DATA_OFF; r->file_size = size;
        }
        if (rc) {
            pp__chk_where(chk, path, r->bad_off, r->detail);
            if (S) PP__MSG(S, rc, "%s: %s at %s offset %llu: %s. Not opened (fail closed); inspect with pp_inspect.",
                           name, pp_strerror(rc), path, (unsigned long long)r->bad_off, r->detail);
            break;
        }
        if (chk) { chk->journal_bytes += r->end; if (r->mark_seq > chk->durable_mark_seq) chk->durable_mark_seq = r->mark_seq; }
        jlast = r->last_seq;
        expect = r->last_seq + 1;
        if (r->status == 1 || (i + 1 < n && f[i + 1].first != expect)) {
            /* the valid journal ends here; what follows was never durable (checked) */
            torn = r->status == 1;
            end_seg = i + 1;
            pp__strlcpy(msg, r->detail[0] ? r->detail : "valid journal ends before the next segment starts", sizeof msg);
            if (chk) { chk->torn_tail = 1; pp__chk_where(chk, path, r->end, msg); }
            for (size_t k = i + 1; k < n && !rc; k++) {
                uint8_t *q = NULL; uint64_t qs = 0, me = 0, ms = 0;
                char qp[4096];
                pp__numbered(qp, sizeof qp, jdir, v[k], ".ppj");
                int mk = 0;
                if (pp__map_ro(qp, &q, &qs) == 0 && q) { mk = pp__mark_get(q, f[k].salt, &me, &ms); munmap(q, qs); }
                if (me > PP__DATA_OFF || mk < 0) {
                    rc = PP_ECORRUPT;
                    snprintf(msg, sizeof msg, "valid journal ends at seq %llu here, but segment %llu holds durable entries: entries missing",
                             (unsigned long long)jlast, (unsigned long long)v[k]);
                    pp__chk_where(chk, path, r->end, msg);
                    if (S) PP__MSG(S, rc, "%s: %s at %s offset %llu; not opened (fail closed)", name, msg, path, (unsigned long long)r->end);
                }
            }
            if (!rc && S && b) PP__MSG(S, 0, "%s: %s in %s; discarded%s", name, msg, path,
                                       end_seg < n ? ", with the unsynced segments after it" : "");
            break;
        }
    }
    uint64_t last = jlast > snap_seq ? jlast : snap_seq;
    if (chk || rc || !b) {
        if (chk) chk->journal_last_seq = n ? jlast : 0;
        *last_out = last;
        PINNACLE_PERSIST_FREE(f); PINNACLE_PERSIST_FREE(v); PINNACLE_PERSIST_FREE(res);
        return rc;
    }
    /* The segments after the valid end must be durably gone before anything
     * is appended to the one before them: a deletion a power cut undoes would
     * bring back a segment starting at a seq the live one goes on to write,
     * and the next recovery would start from it and skip the live one's
     * acknowledged entries. So a failed unlink or directory fsync fails the
     * open (a retry redoes the deletion). */
    for (size_t k = end_seg; k < n && !rc; k++) {
        pp__numbered(path, sizeof path, jdir, v[k], ".ppj");
        if (pp__sys_unlink(path) != 0 && errno != ENOENT) rc = pp__from_errno(errno);
    }
    if (!rc && end_seg < n) rc = pp__fsync_dir(jdir);
    if (rc) {
        if (S) PP__MSG(S, rc, "%s: cannot durably remove the segments after the valid journal end in %s: %s; not opened",
                       name, jdir, pp_strerror(rc));
        PINNACLE_PERSIST_FREE(f); PINNACLE_PERSIST_FREE(v); PINNACLE_PERSIST_FREE(res);
        *last_out = last;
        return rc;
    }
    n = end_seg;
    /* the live segment: the last one, if the journal reaches the snapshot */
    int live_ok = n > 0 && jlast >= snap_seq;
    for (size_t i = 0; i < n && !rc; i++) {
        pp__seg *g = (pp__seg *)pp__alloc(sizeof *g);
        if (!g) { rc = PP_ENOMEM; break; }
        g->fd = -1; g->index = v[i]; g->first_seq = f[i].first; g->salt = f[i].salt; g->seed = pp__seed(g->salt);
        pp__numbered(path, sizeof path, jdir, v[i], ".ppj");
        g->path = pp__strdup(path);
        if (!g->path) { pp__seg_free(g); rc = PP_ENOMEM; break; }
        if (!b->segs) b->segs = g; else b->tail->next = g;
        b->tail = g;
        uint64_t end = i + 1 < n ? PP__DATA_OFF + (f[i + 1].first - f[i].first) * PP__ENTRY : res[i].end;
        if (i < start) { g->final_end = g->pub_end = g->synced_end = end; continue; }
        g->fd = open(path, O_RDWR | O_CLOEXEC);
        if (g->fd < 0) { rc = pp__from_errno(errno); break; }
        uint64_t size = res[i].file_size;
        if (i + 1 == n && torn) {        /* cut the torn tail, durably, before anything new is written */
            if (pp__sys_ftruncate(g->fd, end) != 0) { rc = pp__from_errno(errno); break; }
            size = end;
        }
        /* whatever the crash left in the page cache is durable from here on, and marked so */
        if (end > PP__DATA_OFF || torn) rc = pp__mark_write_fd(g->fd, g->salt, end, pp__seq_at(g, end));
        if (rc) break;
        g->pub_end = g->synced_end = end;
        if (i + 1 == n && live_ok) {
            uint64_t ml = S->cfg.journal_segment_bytes;
            if (ml < size) ml = size;
            rc = pp__seg_map(g, ml);
            if (rc) break;
            g->alloc_end = size;
            b->cur = g; b->woff = end; b->seed = g->seed; b->lim = size;
        } else {
            /* finished and durable (marked above): nothing writes to it again,
             * compaction unlinks it by name. Its descriptor goes now, or every
             * recovered segment would hold one until compaction (a store with
             * many segments or books then runs out of descriptors). */
            g->final_end = end;
            close(g->fd); g->fd = -1;
        }
    }
    PINNACLE_PERSIST_FREE(f); PINNACLE_PERSIST_FREE(v); PINNACLE_PERSIST_FREE(res);
    *last_out = last;
    return rc;
}

/* Strict mode: replay the picolog log after snap_seq. */
static int pp__recover_strict(pp_store *S, const char *name, const char *ldir, pp__shadow *m, uint64_t snap_seq,
                              uint64_t *last_out, pp_check_result *chk) {
    plg_reader *rd;
    uint64_t last = snap_seq;
    int rc = plg_reader_open(&rd, ldir);
    if (rc == PLG_ENOENT) { *last_out = last; return 0; }
    if (rc) {
        if (S) PP__MSG(S, PP_ECORRUPT, "%s: strict log %s: %s", name, ldir, plg_strerror(rc));
        if (chk) { pp__strlcpy(chk->file, ldir, sizeof chk->file); pp__strlcpy(chk->detail, plg_strerror(rc), sizeof chk->detail); }
        return pp__from_plg(rc);
    }
    uint32_t seed = pp__seed(0);
    if (snap_seq) {
        rc = plg_reader_seek(rd, snap_seq + 1);
        if (rc == PLG_ENOENT) {
            rc = PLG_ECORRUPT;
            if (S) PP__MSG(S, PP_ECORRUPT, "%s: strict log does not hold seq %llu (after the snapshot): entries missing", name, (unsigned long long)(snap_seq + 1));
        }
    }
    plg_record rec;
    while (!rc && (rc = plg_reader_next(rd, &rec)) == 1) {
        pp__ev ev;
        rc = 0;
        if (rec.len != PP__ENTRY || !pp__dec((const uint8_t *)rec.data, seed, &ev) || ev.seq != rec.seq) rc = PLG_ECORRUPT;
        else if (rec.seq <= snap_seq) continue;
        else if (m && pp__apply(m, &ev)) rc = PLG_ECORRUPT;
        if (chk && !chk->journal_first_seq) chk->journal_first_seq = rec.seq;
        if (!rc) last = rec.seq;
    }
    if (rc < 0) {
        uint64_t off = 0;
        const char *file = plg_reader_where(rd, &off);
        if (S) PP__MSG(S, PP_ECORRUPT, "%s: strict log corrupt at %s offset %llu (after seq %llu). Not opened (fail closed).",
                       name, file, (unsigned long long)off, (unsigned long long)last);
        if (chk) { pp__strlcpy(chk->file, file, sizeof chk->file); chk->offset = off; snprintf(chk->detail, sizeof chk->detail, "invalid record after seq %llu", (unsigned long long)last); }
        plg_reader_close(rd);
        return pp__from_plg(rc);
    }
    plg_reader_close(rd);
    if (chk) {
        plg_check_result pc;
        if (plg_check(ldir, &pc) == 0) { chk->torn_tail = pc.torn_tail; chk->segments = pc.segments; chk->journal_bytes = pc.bytes; if (pc.torn_tail) { pp__strlcpy(chk->file, pc.file, sizeof chk->file); chk->offset = pc.offset; } }
    }
    *last_out = last;
    return 0;
}

/* >>compaction ------------------------------------------------------------ */
static uint64_t pp__journal_bytes(pp_book *b) {
    uint64_t t = 0;
    for (pp__seg *g = b->segs; g; g = g->next) {
        uint64_t fe = pp__load_acq(&g->final_end);
        t += fe ? fe : pp__load_acq(&g->pub_end);
    }
    return t;
}

/* Drop finished segments whose every entry is covered by the oldest kept
 * snapshot, oldest first, each unlink followed by a directory fsync; a crash
 * anywhere in between leaves a suffix of the journal that still holds every
 * entry after the oldest kept snapshot. */
static int pp__compact_mmap(pp_book *b, int force) {
    uint64_t oldest = pp__load_acq(&b->snap_oldest);
    int rc = 0, did = 0;
    pthread_mutex_lock(&b->sync_mu);
    pthread_mutex_lock(&b->grow_mu);          /* the syncer may be growing a segment we could free */
    pthread_mutex_lock(&b->seg_mu);
    uint64_t total = pp__journal_bytes(b);
    if (force || total > b->s->cfg.compaction_threshold) {
        while (b->segs && b->segs->next && b->segs != b->cur) {
            pp__seg *g = b->segs;
            uint64_t last = g->next->first_seq - 1;
            if (!oldest || last > oldest || g->synced_end < pp__load_acq(&g->final_end)) break;
            if (pp__sys_unlink(g->path) != 0 && errno != ENOENT) { rc = pp__from_errno(errno); break; }
            if ((rc = pp__fsync_dir(b->jdir)) != 0) break;
            b->segs = g->next;
            pp__seg_free(g);
            pp__add_rlx(&b->st_deleted, 1);
            did = 1;
        }
    }
    pthread_mutex_unlock(&b->seg_mu);
    pthread_mutex_unlock(&b->grow_mu);
    pthread_mutex_unlock(&b->sync_mu);
    if (did) pp__add_rlx(&b->st_compactions, 1);
    return rc;
}

/* Strict mode: delete the picolog segment files that lie wholly before the
 * record at the oldest kept snapshot (picolog's reader accepts a log whose
 * first segments are gone). See docs/pinnacle-format.md. */
static int pp__compact_strict_locked(pp_book *b, int force);
static int pp__compact_strict(pp_book *b, int force) {
    pthread_mutex_lock(&b->sync_mu);        /* pp_compact and the maintainer, one at a time */
    int rc = pp__compact_strict_locked(b, force);
    pthread_mutex_unlock(&b->sync_mu);
    return rc;
}

static int pp__compact_strict_locked(pp_book *b, int force) {
    uint64_t oldest = pp__load_acq(&b->snap_oldest);
    if (!oldest) return 0;
    /* picolog keeps no byte count of old segments: estimate what is covered */
    if (!force && (oldest - b->strict_compacted) * (uint64_t)(PP__ENTRY + 24) < b->s->cfg.compaction_threshold) return 0;
    b->strict_compacted = oldest;
    plg_reader *rd;
    if (plg_reader_open(&rd, b->ldir)) return 0;
    int rc = 0;
    /* Seek to the record AT the oldest kept snapshot, not the one after: when
     * the snapshot was taken at the tip, seq oldest + 1 does not exist yet and
     * the reader's position past the end names a segment after the last one,
     * so every segment would go, and the reopened log would no longer hold
     * the seq the book is at. Keeping that one record costs at most one
     * segment. */
    if (plg_reader_seek(rd, oldest) == 0) {
        uint64_t off;
        const char *file = plg_reader_where(rd, &off);
        const char *base = strrchr(file, '/');
        uint64_t keep_from = base ? strtoull(base + 1, NULL, 10) : 0;
        uint64_t *v; size_t n;
        if (keep_from > 1 && pp__list_numbered(b->ldir, ".plg", 0, &v, &n) == 0) {
            int did = 0;
            for (size_t i = 0; i < n && v[i] < keep_from; i++) {
                char p[4096];
                pp__numbered(p, sizeof p, b->ldir, v[i], ".plg");
                if (pp__sys_unlink(p) == 0) { did = 1; pp__add_rlx(&b->st_deleted, 1); if ((rc = pp__fsync_dir(b->ldir)) != 0) break; }
            }
            if (did) pp__add_rlx(&b->st_compactions, 1);
            PINNACLE_PERSIST_FREE(v);
        }
    }
    plg_reader_close(rd);
    return rc;
}

/* Maintainer: prepare the next segment and ask the hot path to roll when the
 * live segment reached the compaction threshold (so the covered prefix
 * becomes a whole file) or 3/4 of its reservation. */
static void pp__maybe_roll(pp_book *b) {
    if (pp__load_rlx(&b->ctl) & PP__CTL_ROLL) return;
    pthread_mutex_lock(&b->seg_mu);
    pp__seg *g = b->cur;
    uint64_t used = pp__load_acq(&g->pub_end);
    int want = used >= b->s->cfg.compaction_threshold || used >= g->map_len / 4 * 3;
    pthread_mutex_unlock(&b->seg_mu);
    if (want && pp__prepare_next(b) == 0) __atomic_fetch_or(&b->ctl, PP__CTL_ROLL, __ATOMIC_RELEASE);
}

/* >>threads --------------------------------------------------------------- */
static int pp__sleep(pp_store *S, uint64_t ns) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);         /* wake_cv runs on CLOCK_MONOTONIC */
    uint64_t t = (uint64_t)ts.tv_nsec + ns;
    ts.tv_sec += (time_t)(t / 1000000000ull); ts.tv_nsec = (long)(t % 1000000000ull);
    pthread_mutex_lock(&S->wake_mu);
    if (!S->stop) pthread_cond_timedwait(&S->wake_cv, &S->wake_mu, &ts);
    int stop = S->stop;
    pthread_mutex_unlock(&S->wake_mu);
    return stop;
}

static pp_book *pp__book_at(pp_store *S, size_t i) {
    pthread_mutex_lock(&S->mu);
    pp_book *b = i < S->nbooks ? S->books[i] : NULL;
    pthread_mutex_unlock(&S->mu);
    return b;
}

/* Grower: keeps every live segment allocated (and its pages faulted in)
 * three chunks ahead of the writer. Its own thread, so a slow msync or a
 * snapshot's fsync never leaves the hot path without room. */
static void *pp__grower_main(void *arg) {
    pp_store *S = (pp_store *)arg;
    pthread_setname_np(pthread_self(), "pp-grow");
    if (S->cfg.thread_start) S->cfg.thread_start(S->cfg.thread_user, "pp-grow");
    uint64_t chunk = S->cfg.journal_chunk_bytes;
    for (;;) {
        /* format 2: one journal to keep ahead, 4 MiB faulted in at a time
         * (a dozen ms of appends at 5M events/s): every ms is enough, and an
         * idle store wakes 1,000 times a second, not 5,000 */
        if (pp__sleep(S, S->sj ? 1000000ull : 200000ull)) break;
        if (S->sj) { pp__sj_prepare(S->sj); continue; }
        pp_book *b;
        for (size_t i = 0; (b = pp__book_at(S, i)) != NULL; i++) {
            if (b->mode != PP_JOURNAL_MMAP || pp__load_acq(&b->err)) continue;
            pthread_mutex_lock(&b->grow_mu);
            pthread_mutex_lock(&b->seg_mu);
            pp__seg *g = b->cur;
            pthread_mutex_unlock(&b->seg_mu);
            int rc = 0;
            uint64_t pub = pp__load_acq(&g->pub_end);
            if (pp__load_acq(&g->alloc_end) < pub + 2 * chunk) rc = pp__seg_grow(b, g, pub + 3 * chunk);
            pthread_mutex_unlock(&b->grow_mu);
            if (rc) pp__poison(b, rc);
        }
    }
    return NULL;
}

/* Strict mode (format 2): the syncer relays what the writers publish to the
 * store's picolog log and moves every book's pp_durable as picolog's mark
 * moves. Busy (records in flight, or frames relayed this round), it waits
 * at most 50 us, woken at once by picolog's durable notification (eventfd):
 * a new frame waits at most that long to be relayed. After about 1 ms with
 * nothing to do it parks: the next publisher wakes it (wake_fd, one system
 * call on the first event after a quiet spell; a wake lost in the race with
 * parking costs at most the park's 1 ms), and picolog's writer sleeps until
 * the relay kicks it. An idle store costs about a thousand wakeups a second
 * (picolog's own 10 us default poll would cost a core on this kind of VM). */
static void pp__syncer_strict(pp_store *S) {
    pp__sj *j = S->sj;
    int nfd = plg_notify_fd(j->log);
    unsigned quiet = 0;
    for (;;) {
        pthread_mutex_lock(&S->wake_mu);
        int stop = S->stop;
        pthread_mutex_unlock(&S->wake_mu);
        if (pp__load_acq(&j->want_round)) pp__store_rel(&j->want_round, 0u);
        pthread_mutex_lock(&j->sync_mu);
        uint64_t relay0 = j->relay;
        pthread_mutex_unlock(&j->sync_mu);
        (void)pp__store_sync(S, !stop);           /* stop: relays everything and waits for it */
        if (stop) break;
        if (pp__load_acq(&j->tail) - pp__load_acq(&j->hold) > 2 * j->data_bytes && pthread_mutex_trylock(&S->drain_mu) == 0) {
            pthread_mutex_unlock(&S->drain_mu);  /* the maintainer lags (a long snapshot): dispatch too */
            (void)pp__store_drain(S, 1u << 14);
        }
        pthread_mutex_lock(&j->sync_mu);
        int busy = j->fn != 0 || j->relay != relay0;
        pthread_mutex_unlock(&j->sync_mu);
        struct pollfd pf[2];
        nfds_t n = 0;
        pf[n].fd = j->wake_fd; pf[n].events = POLLIN; pf[n].revents = 0; n++;
        if (nfd >= 0) { pf[n].fd = nfd; pf[n].events = POLLIN; pf[n].revents = 0; n++; }
        struct timespec ts = {0, 50000};
        quiet = busy ? 0 : quiet + 1;
        if (quiet > 20) {                         /* park */
            (void)__atomic_exchange_n(&j->parked, 1u, __ATOMIC_SEQ_CST);   /* a full barrier before the check */
            /* under sync_mu, from the relay's position now: a pp_sync on
             * another thread may have relayed past a position this thread
             * read earlier and retired (unmapped) the segment holding it */
            uint32_t len;
            pthread_mutex_lock(&j->sync_mu);
            uint64_t q = j->relay;
            const uint8_t *next = pp__sj_next(j, &q, &len);
            pthread_mutex_unlock(&j->sync_mu);
            if (next != NULL || pp__load_acq(&j->want_round)) {
                __atomic_store_n(&j->parked, 0u, __ATOMIC_SEQ_CST);   /* published meanwhile */
                quiet = 0;
                continue;
            }
            ts.tv_nsec = 1000000;
        }
        (void)ppoll(pf, n, &ts, NULL);
        __atomic_store_n(&j->parked, 0u, __ATOMIC_SEQ_CST);
        uint64_t v;
        for (nfds_t k = 0; k < n; k++)
            if (pf[k].revents & POLLIN) { ssize_t r = read(pf[k].fd, &v, sizeof v); (void)r; }
    }
}

/* Syncer: syncs each book every journal_sync_interval_ms (strict mode: just
 * follows picolog's durable mark). */
static void *pp__syncer_main(void *arg) {
    pp_store *S = (pp_store *)arg;
    pthread_setname_np(pthread_self(), "pp-sync");
    if (S->cfg.thread_start) S->cfg.thread_start(S->cfg.thread_user, "pp-sync");
    uint64_t interval = (uint64_t)S->cfg.journal_sync_interval_ms * 1000000ull;
    uint64_t tick = interval < 1000000ull ? interval : 1000000ull;
    uint64_t last_round = 0;
    if (S->sj && S->sj->log) {    /* strict mode, format 2 */
#ifdef __linux__
        prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
#endif
        pp__syncer_strict(S);
        return NULL;
    }
    for (;;) {
        int stop = pp__sleep(S, tick);
        uint64_t now = plg_now_ns();
        if (S->sj) {              /* format 2: one round for every book, one flush */
            int asked = pp__load_acq(&S->sj->want_round) != 0;   /* a writer waits for a window slot */
            if (asked) pp__store_rel(&S->sj->want_round, 0u);
            if (stop || asked || now - last_round >= interval) { last_round = now; (void)pp__store_sync(S, !stop); }
            /* while the maintainer is busy (a long snapshot) and the
             * dispatch falls two segments behind, the syncer dispatches too:
             * segments are retired only behind the dispatch, and writers
             * would wait for them */
            if (!stop && pp__load_acq(&S->sj->tail) - pp__load_acq(&S->sj->hold) > 2 * S->sj->data_bytes &&
                pthread_mutex_trylock(&S->drain_mu) == 0) {
                pthread_mutex_unlock(&S->drain_mu);
                (void)pp__store_drain(S, 1u << 14);
            }
            if (stop) break;
            continue;
        }
        pp_book *b;
        for (size_t i = 0; (b = pp__book_at(S, i)) != NULL; i++) {
            if (b->mode == PP_JOURNAL_STRICT) {
                uint64_t d = plg_durable(b->log);
                if (d > pp__load_rlx(&b->durable)) pp__store_rel(&b->durable, d);
                continue;
            }
            if (pp__load_acq(&b->err)) continue;
            if (stop || now - b->last_sync_ns >= interval) {
                b->last_sync_ns = now;
                pp__sync_mmap(b, !stop);
            }
        }
        if (stop) break;
    }
    return NULL;
}

/* Maintainer: shadow upkeep, periodic snapshots, compaction. */
static void *pp__maint_main(void *arg) {
    pp_store *S = (pp_store *)arg;
    pthread_setname_np(pthread_self(), "pp-maint");
    if (S->cfg.thread_start) S->cfg.thread_start(S->cfg.thread_user, "pp-maint");
    uint64_t next_scan = 0;
    for (;;) {
        int stop = pp__sleep(S, 1000000ull);
        if (stop) break;
        uint64_t now = plg_now_ns();
        if (now - S->clk_at >= 1000000ull) { S->clk_at = now; pp__tsc_anchor(&S->clk); }
        if (S->sj) {              /* format 2: tail the store journal; timers every 20 ms */
            (void)pp__store_drain(S, 1u << 16);   /* bounded: the scan below must not wait for a quiet journal */
            if (now < next_scan) continue;
            next_scan = now + 20000000ull;
            pp_book *b;
            for (size_t i = 0; (b = pp__book_at(S, i)) != NULL; i++) {
                pp__idx_upkeep(b);
                if (pp__load_acq(&b->err) || (S->cfg.flags & PP_NO_AUTO_SNAPSHOT) || now < b->next_snap_ns) continue;
                /* due with nothing new: it stays due, and its first event is snapshotted at the next scan */
                if (pp__load_acq(&b->last_seq) <= pp__load_acq(&b->snap_newest)) continue;
                b->next_snap_ns = now + S->snap_ns;
                pp__snapshot(b);
            }
            if (!(S->cfg.flags & PP_NO_AUTO_COMPACT)) (void)pp__store_compact(S, 0);
            continue;
        }
        pp_book *b;
        for (size_t i = 0; (b = pp__book_at(S, i)) != NULL; i++) {
            pthread_mutex_lock(&b->shadow_mu);
            int rc = pp__drain(b);
            pthread_mutex_unlock(&b->shadow_mu);
            if (rc) pp__poison(b, rc);
            if (pp__load_acq(&b->err)) continue;
            if (!(S->cfg.flags & PP_NO_AUTO_SNAPSHOT) && now >= b->next_snap_ns &&
                pp__load_acq(&b->last_seq) > pp__load_acq(&b->snap_newest)) {   /* else it stays due */
                b->next_snap_ns = now + S->snap_ns;
                pp__snapshot(b);
            }
            if (b->mode == PP_JOURNAL_MMAP) pp__maybe_roll(b);
            if (!(S->cfg.flags & PP_NO_AUTO_COMPACT)) {
                if (b->mode == PP_JOURNAL_MMAP) pp__compact_mmap(b, 0);
                else pp__compact_strict(b, 0);
            }
        }
    }
    return NULL;
}

/* >>api ------------------------------------------------------------------- */
PPDEF pp_config pp_config_defaults(const pp_config *in) {
    pp_config c;
    memset(&c, 0, sizeof c);
    if (in) c = *in;
    if (!c.journal_sync_interval_ms) c.journal_sync_interval_ms = 10;
    if (!c.snapshot_interval_min) c.snapshot_interval_min = 5;
    if (!c.keep_snapshots) c.keep_snapshots = 3;
    if (!c.compaction_threshold) c.compaction_threshold = (uint64_t)256 << 20;
    if (!c.journal_chunk_bytes) c.journal_chunk_bytes = (uint64_t)8 << 20;
    if (!c.journal_segment_bytes) c.journal_segment_bytes = (uint64_t)1 << 30;
    if (!c.expected_orders) c.expected_orders = 65536;
    if (!c.ring_entries) c.ring_entries = 1u << 18;
    return c;
}

static int pp__validate(pp_store *S, const pp_config *c) {
    const char *bad = NULL;
    if (!c->data_dir || !*c->data_dir) bad = "data_dir is required";
    else if (c->journal_sync_interval_ms > 60000) bad = "journal_sync_interval_ms must be 1..60000";
    else if (c->snapshot_interval_min > 10080) bad = "snapshot_interval_min must be 1..10080 (a week)";
    else if (c->keep_snapshots > 1000) bad = "keep_snapshots must be 1..1000";
    else if (c->compaction_threshold < (64u << 10)) bad = "compaction_threshold must be at least 64 KiB";
    else if (c->mode != PP_JOURNAL_MMAP && c->mode != PP_JOURNAL_STRICT) bad = "mode must be PP_JOURNAL_MMAP or PP_JOURNAL_STRICT";
    else if (c->journal_chunk_bytes % PP__PAGE || c->journal_chunk_bytes < 2 * PP__PAGE) bad = "journal_chunk_bytes must be a multiple of 4096, at least 8192";
    else if (c->journal_segment_bytes % c->journal_chunk_bytes || c->journal_segment_bytes < 2 * c->journal_chunk_bytes)
        bad = "journal_segment_bytes must be a multiple of journal_chunk_bytes, at least two chunks";
    else if (c->journal_segment_bytes > ((uint64_t)1 << 40)) bad = "journal_segment_bytes must be at most 1 TiB";
    else if (c->ring_entries & (c->ring_entries - 1) || c->ring_entries < 64 || c->ring_entries > (1u << 26))
        bad = "ring_entries must be a power of two, 64..2^26";
    else if (c->expected_orders > (1u << 30)) bad = "expected_orders must be at most 2^30";
    else if ((c->flags & PP_STORE_JOURNAL) && (c->flags & PP_LEGACY_LAYOUT)) bad = "PP_STORE_JOURNAL and PP_LEGACY_LAYOUT ask for two layouts";
    if (bad) { pp__msg_to(c->log_fn, c->log_user, PP_ECONFIG, "invalid configuration: %s", bad); (void)S; return PP_ECONFIG; }
    return 0;
}

static void pp__book_free(pp_book *b) {
    if (!b) return;
    if (b->log) plg_close(b->log);
    pp__seg *g = b->segs;
    while (g) { pp__seg *nx = g->next; pp__seg_free(g); g = nx; }
    if (b->next_seg) pp__seg_free(b->next_seg);
    pp__idx_free(&b->idx);
    pp__idx_free(&b->idx_old);
    PINNACLE_PERSIST_FREE(b->idx_spare);
    PINNACLE_PERSIST_FREE(b->idx_garbage);
    pp__shadow_free(&b->shadow);
    pp__pl_clear(&b->plmap, &b->pl_bytes);
    pp__lv_free(b);
    if (b->ring) munmap(b->ring, (size_t)(b->ring_mask + 1) * PP__ENTRY);
    pthread_mutex_destroy(&b->shadow_mu); pthread_mutex_destroy(&b->seg_mu); pthread_mutex_destroy(&b->grow_mu);
    pthread_mutex_destroy(&b->sync_mu); pthread_mutex_destroy(&b->snap_mu);
    pthread_mutex_destroy(&b->create_mu);
    PINNACLE_PERSIST_FREE(b->name); PINNACLE_PERSIST_FREE(b->dir); PINNACLE_PERSIST_FREE(b->jdir);
    PINNACLE_PERSIST_FREE(b->sdir); PINNACLE_PERSIST_FREE(b->ldir);
    pp__md_free(&b->md); PINNACLE_PERSIST_FREE(b->mdir);
    PINNACLE_PERSIST_FREE(b->jsegs);
    PINNACLE_PERSIST_FREE(b->batch);
    PINNACLE_PERSIST_FREE(b);
}

static int pp__is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }

/* When the book's next periodic snapshot is due: snapshot_interval after the
 * newest snapshot was written (its header's creation time), not after this
 * open; a process restarted more often than the interval would otherwise
 * never snapshot, nor compact. */
static uint64_t pp__next_snap_ns(pp_store *S, const char *sdir, uint64_t snap) {
    uint64_t now = plg_now_ns();
    if (!snap) return now + S->snap_ns;
    char p[4096];
    pp__numbered(p, sizeof p, sdir, snap, ".pps");
    uint8_t h[PP__SNAP_HDR];
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : pread(fd, h, sizeof h, 0);
    if (fd >= 0) close(fd);
    if (got != (ssize_t)sizeof h) return now + S->snap_ns;
    uint64_t created = pp__get64(h + 32);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    uint64_t age = wall > created ? wall - created : 0;   /* a clock step back: as if just written */
    return age >= S->snap_ns ? now : now + (S->snap_ns - age);
}

/* PP_OPEN_QUARANTINE: pp_open sets a damaged instrument aside (its error,
 * and where pp_check, read-only, finds the damage) and goes on. */
static int pp__quarantine_add(pp_store *S, const char *name, int err) {
    pp_quarantine_info *q = (pp_quarantine_info *)PINNACLE_PERSIST_REALLOC(S->quar, (S->nquar + 1) * sizeof *q);
    pp_check_result *chk = (pp_check_result *)PINNACLE_PERSIST_MALLOC(sizeof *chk);
    if (q) S->quar = q;
    if (!q || !chk) { PINNACLE_PERSIST_FREE(chk); return PP_ENOMEM; }
    q += S->nquar;
    memset(q, 0, sizeof *q);
    pp__strlcpy(q->instrument, name, sizeof q->instrument);
    q->error = err;
    (void)pp_check(S->dir, name, chk);
    if (chk->file[0]) { pp__strlcpy(q->file, chk->file, sizeof q->file); q->offset = chk->offset; }
    else snprintf(q->file, sizeof q->file, "%s/%s", S->dir, name);
    pp__strlcpy(q->detail, chk->detail[0] ? chk->detail : pp_strerror(err), sizeof q->detail);
    PINNACLE_PERSIST_FREE(chk);
    S->nquar++;
    PP__MSG(S, err, "%s: quarantined (%s at %s offset %llu); the other instruments are open", name, pp_strerror(err),
            q->file, (unsigned long long)q->offset);
    return 0;
}

/* Format 2: a book recovery could not rebuild (its snapshots or market
 * data do not load, or a journal frame of it does not fit it) is set aside
 * with where that happened; the journal itself is intact (its damage still
 * fails the store), so every other book recovers whole. Its id stays taken
 * (catalog, next ids) and its frames are skipped. 0 or PP_ENOMEM. */
static int pp__quarantine_add2(pp_store *S, const char *name, uint32_t iid, int err, const char *file, uint64_t offset,
                               const char *detail) {
    pp_quarantine_info *q = (pp_quarantine_info *)PINNACLE_PERSIST_REALLOC(S->quar, (S->nquar + 1) * sizeof *q);
    if (q) S->quar = q;
    uint32_t *qi = (uint32_t *)PINNACLE_PERSIST_REALLOC(S->quar_iid, (S->nquar + 1) * sizeof *qi);
    if (qi) S->quar_iid = qi;
    if (!q || !qi) return PP_ENOMEM;
    q += S->nquar;
    memset(q, 0, sizeof *q);
    pp__strlcpy(q->instrument, name, sizeof q->instrument);
    q->error = err;
    pp__strlcpy(q->file, file, sizeof q->file);
    q->offset = offset;
    pp__strlcpy(q->detail, detail, sizeof q->detail);
    qi[S->nquar] = iid;
    S->nquar++;
    if (iid >= S->next_iid) S->next_iid = iid + 1;
    PP__MSG(S, err, "%s: quarantined (%s at %s offset %llu: %s); the other instruments are open", name, pp_strerror(err),
            q->file, (unsigned long long)offset, detail);
    return 0;
}
static int pp__quarantined2(const pp_store *S, uint32_t iid) {
    for (size_t i = 0; S->quar_iid && i < S->nquar; i++) if (S->quar_iid[i] == iid) return 1;
    return 0;
}

PPDEF size_t pp_quarantined(pp_store *S, pp_quarantine_info *out, size_t n) {
    if (!S) return 0;
    for (size_t i = 0; out && i < n && i < S->nquar; i++) out[i] = S->quar[i];
    return S->nquar;
}

/* Open one book: recover it from disk, or create it. */
static int pp__book_load(pp_store *S, const char *name, pp_book **out) {
    pp_book *b = (pp_book *)pp__alloc(sizeof *b);
    if (!b) return PP_ENOMEM;
    pthread_mutex_init(&b->shadow_mu, NULL); pthread_mutex_init(&b->seg_mu, NULL); pthread_mutex_init(&b->grow_mu, NULL);
    pthread_mutex_init(&b->sync_mu, NULL); pthread_mutex_init(&b->snap_mu, NULL);
    pthread_mutex_init(&b->create_mu, NULL);
    b->s = S;
    b->name = pp__strdup(name);
    b->dir = pp__join(S->dir, name);
    if (b->dir) { b->jdir = pp__join(b->dir, "journal"); b->sdir = pp__join(b->dir, "snapshots"); b->ldir = pp__join(b->dir, "strict"); }
    if (b->dir) b->mdir = pp__join(b->dir, "md");
    pp__md_init(&b->md);
    int rc = (!b->name || !b->jdir || !b->sdir || !b->ldir || !b->mdir) ? PP_ENOMEM : 0;
    if (!rc) {
        int has_j = pp__is_dir(b->jdir), has_l = pp__is_dir(b->ldir);
        b->mode = has_j ? PP_JOURNAL_MMAP : has_l ? PP_JOURNAL_STRICT : S->cfg.mode;
        if ((has_j || has_l) && b->mode != S->cfg.mode) {
            rc = PP_EMODE;
            PP__MSG(S, rc, "%s: created in %s mode; the store is configured for the other mode", name, b->mode ? "strict" : "mmap");
        }
    }
    int fresh = !rc && !pp__is_dir(b->dir);    /* a new instrument: undo its directories if it fails */
    if (!rc) rc = pp__mkdir(b->dir);
    if (!rc) rc = pp__mkdir(b->sdir);
    if (!rc) rc = pp__mkdir(b->mode == PP_JOURNAL_MMAP ? b->jdir : b->ldir);
    if (!rc) rc = pp__shadow_init(&b->shadow, S->cfg.expected_orders);
    uint64_t snap = 0, last = 0;
    if (!rc) rc = pp__load_snapshot(S, name, b->sdir, &b->shadow, &b->plmap, &b->pl_bytes, &snap, NULL);
    if (!rc) rc = pp__md_load(b, snap);
    if (!rc) {
        pp__md_sink = &b->md;      /* market-data entries after the snapshot go to b->md */
        if (b->mode == PP_JOURNAL_MMAP) rc = pp__recover_journal(S, b, name, b->jdir, &b->shadow, snap, &last, NULL);
        else rc = pp__recover_strict(S, name, b->ldir, &b->shadow, snap, &last, NULL);
        pp__md_sink = NULL;
        b->md_hp_last = b->md_last_pub = b->md.has_last ? b->md.last.exch_seq : 0;
    }
    if (!rc && last < snap) last = snap;
    if (!rc && b->mode == PP_JOURNAL_MMAP && !b->cur) {
        /* no segment to append to (new book, or the journal ends before the snapshot) */
        uint64_t idx = b->tail ? b->tail->index + 1 : 1;
        pp__seg *g = NULL;
        rc = pp__seg_create(b, idx, last + 1, &g);
        if (!rc) {
            if (b->tail) b->tail->next = g;
            else b->segs = g;
            b->tail = g; b->cur = g; b->woff = PP__DATA_OFF; b->seed = g->seed;
            b->lim = g->alloc_end;
        }
    }
    if (!rc && b->mode == PP_JOURNAL_STRICT) {
        plg_config lc;
        if (S->cfg.strict_log) lc = *S->cfg.strict_log; else memset(&lc, 0, sizeof lc);
        lc.path = b->ldir;
        if (!lc.log_fn) { lc.log_fn = S->cfg.log_fn; lc.log_user = S->cfg.log_user; }
        int r = plg_open(&b->log, &lc);
        if (r) {
            rc = pp__from_plg(r);
            PP__MSG(S, rc, "%s: cannot open strict log %s: %s", name, b->ldir, plg_strerror(r));
        } else if (plg_appended(b->log) != last) {
            rc = PP_ECORRUPT;
            PP__MSG(S, rc, "%s: strict log ends at seq %llu but the book is at seq %llu: entries missing",
                    name, (unsigned long long)plg_appended(b->log), (unsigned long long)last);
        }
        b->seed = pp__seed(0);
    }
    if (!rc) {
        b->last = last; b->last_seq = last; b->applied = last; b->durable = last;
        rc = pp__idx_init(&b->idx, S->cfg.expected_orders > b->shadow.n ? S->cfg.expected_orders : b->shadow.n);
    }
    if (!rc) {
        for (uint64_t i = 0, cap = b->shadow.mask + 1; i < cap; i++)
            if (b->shadow.t[i].id) {
                pp__islot *x = pp__idx_slot(&b->idx, b->shadow.t[i].id);
                x->id = b->shadow.t[i].id; x->qty = b->shadow.t[i].qty; b->idx.n++;
            }
        size_t rl = (size_t)S->cfg.ring_entries * PP__ENTRY;
        void *p = mmap(NULL, rl, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (p == MAP_FAILED) rc = PP_ENOMEM;
        else { b->ring = (uint8_t *)p; b->ring_mask = S->cfg.ring_entries - 1; }
    }
    if (!rc) rc = pp__snap_rotate(b);
    if (!rc) b->next_snap_ns = pp__next_snap_ns(S, b->sdir, snap);
    if (rc && fresh) {
        /* Left behind, an instrument directory without a journal segment
         * would have to get one at every later pp_open: on a full disk the
         * whole store would then fail to open. rmdir removes only what is
         * still empty. */
        if (b->mdir) rmdir(b->mdir);
        if (b->jdir) rmdir(b->jdir);
        if (b->ldir) rmdir(b->ldir);
        if (b->sdir) rmdir(b->sdir);
        if (b->dir && rmdir(b->dir) == 0) pp__fsync_dir(S->dir);
    }
    if (rc) { pp__book_free(b); return rc; }
    *out = b;
    return 0;
}

static int pp__store_add(pp_store *S, pp_book *b) {
    pthread_mutex_lock(&S->mu);
    if (S->nbooks == S->cap) {
        size_t nc = S->cap ? S->cap * 2 : 8;
        pp_book **nb = (pp_book **)PINNACLE_PERSIST_REALLOC(S->books, nc * sizeof *nb);
        if (!nb) { pthread_mutex_unlock(&S->mu); return PP_ENOMEM; }
        S->books = nb; S->cap = nc;
    }
    S->books[S->nbooks++] = b;
    pthread_mutex_unlock(&S->mu);
    return 0;
}

static void pp__store_free(pp_store *S) {
    for (size_t i = 0; i < S->nbooks; i++) pp__book_free(S->books[i]);
    pp__fkeys_free(S->fk); S->fk = NULL;
    if (S->sj) pp__sj_free(S->sj);
    for (size_t i = 0; i < 1024; i++) PINNACLE_PERSIST_FREE(S->byid[i]);
    pthread_mutex_destroy(&S->drain_mu);
    pthread_mutex_destroy(&S->dur_mu); pthread_cond_destroy(&S->dur_cv); pthread_cond_destroy(&S->jr_cv);
    PINNACLE_PERSIST_FREE(S->books);
    PINNACLE_PERSIST_FREE(S->quar);
    PINNACLE_PERSIST_FREE(S->quar_iid);
    for (size_t i = 0; i < S->nret; i++) PINNACLE_PERSIST_FREE(S->ret_name[i]);
    PINNACLE_PERSIST_FREE(S->ret_iid); PINNACLE_PERSIST_FREE(S->ret_name);
    for (size_t i = 0; i < S->ngone; i++) pp__book_free(S->gone[i]);
    PINNACLE_PERSIST_FREE(S->gone);
    PINNACLE_PERSIST_FREE(S->adir);
    PINNACLE_PERSIST_FREE(S->sjadir);
    if (S->lock_fd >= 0) close(S->lock_fd);     /* drops the flock */
    pthread_mutex_destroy(&S->mu); pthread_mutex_destroy(&S->open_mu); pthread_mutex_destroy(&S->wake_mu); pthread_cond_destroy(&S->wake_cv);
    PINNACLE_PERSIST_FREE(S->dir);
    PINNACLE_PERSIST_FREE(S);
}

/* >>storebooks -------------------------------------------------------------
 * Format 2 (PP_STORE_JOURNAL): every book journals into the store journal
 * (>>storejournal). A book frame is 64 bytes:
 *   0 u32 length (64)  4 u32 crc  8 u8 type  9 u8 side  10 u16 0
 *  12 u32 instrument id  16 u64 seq  24 u64 order id  32 i64 price
 *  40 i64 qty  48 u64 ts_ns  56 u64 0
 * An instrument is declared by a 128-byte frame before its first event:
 *   8 u8 16  9 u8 name length  12 u32 instrument id  24 name (up to 64 bytes)
 * Declarations cost no fsync: a declaration precedes its book's events in
 * the journal, and durability is a prefix of the journal. Compaction writes
 * every declaration into instruments.ppc (durably) before it removes the
 * segments holding them. */
#define PP__SJ_EVFRAME   64u
#define PP__SJ_TICKFRAME 128u
#define PP__SJ_DECLFRAME 128u
#define PP__MAX_IID      (1u << 20)
enum { PP__SJ_DECLARE = 16 };
#define PP__CAT_MAGIC "PPCAT002"

/* The entries of a file in the catalog's layout (instruments.ppc, and
 * retired.ppr under its own magic): magic, u32 count, u32 0, count x {u32 id,
 * u8 name length 1..PP_MAX_NAME, the name (no NUL)}, u32 crc32c of all
 * before. fn gets each entry in order, its name NUL-terminated; a nonzero
 * return stops the walk and is returned. PP_ENOENT: no such file;
 * PP_ECORRUPT: not whole and well formed (fn has seen the entries before the
 * bad one, which readers that only look something up may use). */
typedef int (*pp__cat_fn)(void *ctx, uint32_t iid, const char *name, size_t nl);
static int pp__cat_walk(const char *dir, const char *file, const char *magic, pp__cat_fn fn, void *ctx);

static inline void pp__sj_enc_ev(uint8_t *f, uint32_t iid, const pp__ev *v) {
    f[8] = (uint8_t)v->type; f[9] = (uint8_t)v->side; f[10] = 0; f[11] = 0;
    pp__put32(f + 12, iid);
    pp__put64(f + 16, v->seq); pp__put64(f + 24, v->id);
    pp__put64(f + 32, (uint64_t)v->price); pp__put64(f + 40, (uint64_t)v->qty);
    pp__put64(f + 48, v->ts); pp__put64(f + 56, 0);
}

static inline void pp__sj_dec_ev(const uint8_t *f, pp__ev *v) {
    v->type = f[8]; v->side = f[9];
    v->seq = pp__get64(f + 16); v->id = pp__get64(f + 24);
    v->price = (int64_t)pp__get64(f + 32); v->qty = (int64_t)pp__get64(f + 40); v->ts = pp__get64(f + 48);
}

static int pp__is_evtype(int t) { return t >= PP_EV_ADD && t <= PP__EV_TICK; }

/* An event's payload (issue 13): 56 u16 its length P (0..PP_PAYLOAD_MAX),
 * 58..63 zero, the P bytes from 64 on, zeros up to the next multiple of 64.
 * Only order events (types 1..4) carry one. */
static inline uint32_t pp__sj_pl_room(uint32_t plen) { return (plen + PP__SJ_EVFRAME - 1) & ~(PP__SJ_EVFRAME - 1); }
static inline uint32_t pp__sj_ev_plen(const uint8_t *f) { return (uint32_t)f[56] | (uint32_t)f[57] << 8; }
/* The length of the event (a frame, or an entry of a batch) at f: 64 plus
 * its payload's room; 0 if its payload fields are not well formed. */
static uint32_t pp__sj_ev_len(const uint8_t *f) {
    uint32_t P = pp__sj_ev_plen(f);
    if (P > PP_PAYLOAD_MAX || (P && (f[8] < PP_EV_ADD || f[8] > PP_EV_MODIFY))) return 0;
    for (int i = 58; i < 64; i++) if (f[i]) return 0;
    if (f[8] == PP__EV_TICK) return PP__SJ_TICKFRAME;
    return PP__SJ_EVFRAME + pp__sj_pl_room(P);
}

/* A whole tick (format 2, type 9), one 128-byte frame at one seq:
 *   8 u8 9  9 u8 taker side  10 u16 0  12 u32 instrument id  16 u64 the book's seq
 *  24 u64 exchange seq  32 i64 price  40 i64 size  48 u64 exchange ts  56..63 0
 *  64 u64 receive ts  72 i64 bid  80 i64 bid size  88 i64 ask  96 i64 ask size
 * 104 i64 24 h volume  112 u64 trade id  120 u64 0 */
static inline void pp__sj_enc_tick(uint8_t *f, uint32_t iid, uint64_t seq, const pp_tick *t) {
    f[8] = PP__EV_TICK; f[9] = t->side; f[10] = 0; f[11] = 0;
    pp__put32(f + 12, iid); pp__put64(f + 16, seq);
    pp__put64(f + 24, t->exch_seq); pp__put64(f + 32, (uint64_t)t->price); pp__put64(f + 40, (uint64_t)t->size);
    pp__put64(f + 48, t->exch_ts_ns); pp__put64(f + 56, 0);
    pp__put64(f + 64, t->recv_ts_ns); pp__put64(f + 72, (uint64_t)t->bid); pp__put64(f + 80, (uint64_t)t->bid_size);
    pp__put64(f + 88, (uint64_t)t->ask); pp__put64(f + 96, (uint64_t)t->ask_size);
    pp__put64(f + 104, (uint64_t)t->volume_24h); pp__put64(f + 112, t->trade_id); pp__put64(f + 120, 0);
}
static inline void pp__sj_dec_tick(const uint8_t *f, pp_tick *t) {
    memset(t, 0, sizeof *t);
    t->side = f[9];
    t->exch_seq = pp__get64(f + 24); t->price = (int64_t)pp__get64(f + 32); t->size = (int64_t)pp__get64(f + 40);
    t->exch_ts_ns = pp__get64(f + 48); t->recv_ts_ns = pp__get64(f + 64);
    t->bid = (int64_t)pp__get64(f + 72); t->bid_size = (int64_t)pp__get64(f + 80);
    t->ask = (int64_t)pp__get64(f + 88); t->ask_size = (int64_t)pp__get64(f + 96);
    t->volume_24h = (int64_t)pp__get64(f + 104); t->trade_id = pp__get64(f + 112);
}
/* The frame f of event v reached the book: a whole tick goes to its market data. */
static inline int pp__md_tick(pp__md *md, const uint8_t *f) {
    if (f[8] != PP__EV_TICK) return 0;
    pp_tick t;
    pp__sj_dec_tick(f, &t);
    md->have = 0;                 /* no tick of three entries is in progress across a whole one */
    return pp__md_commit(md, &t);
}
static inline void pp__sj_put_pl(uint8_t *f, const uint8_t *pl, uint32_t plen) {
    f[56] = (uint8_t)(plen & 0xff); f[57] = (uint8_t)(plen >> 8);
    if (!plen) return;
    memcpy(f + PP__SJ_EVFRAME, pl, plen);
    memset(f + PP__SJ_EVFRAME + plen, 0, pp__sj_pl_room(plen) - plen);
}

/* An atomic batch (pp_batch_commit) is ONE frame:
 *   8 u8 17  9 u8 0  10 u16 count (1..PP_BATCH_MAX)  12 u32 instrument id
 *  16 u64 first seq  24 u64 last seq (= first + count - 1)  32..63 0
 * then count entries back to back, each laid out as a book event frame
 * whose bytes 0..7 are 0 (64 bytes, and its payload's room when it has one):
 * type (order events 1..4 only), side, the batch's instrument id, seq
 * first + k, ... The frame ends right after the last entry. One claim and
 * one commit word, so recovery, the syncer and the dispatch see the whole
 * batch or none of it. */
enum { PP__SJ_BATCH = 17 };
PP__STATIC_ASSERT(PP__SJ_EVFRAME * (PP_BATCH_MAX + 1) <= PP__SJ_MAXFRAME, "a whole batch fits one frame");
PP__STATIC_ASSERT(PP__BATCH_BYTES == PP__SJ_MAXFRAME, "a batch's bound is the frame's");

/* The number of events of a well-formed batch frame, 0 if it is not one. */
static uint32_t pp__sj_batch_count(const uint8_t *f, uint32_t len) {
    uint32_t n = (uint32_t)f[10] | (uint32_t)f[11] << 8, iid = pp__get32(f + 12);
    uint64_t first = pp__get64(f + 16);
    if (f[8] != PP__SJ_BATCH || n == 0 || n > PP_BATCH_MAX || len < PP__SJ_EVFRAME * (n + 1)) return 0;
    if (first == 0 || pp__get64(f + 24) != first + n - 1) return 0;
    uint32_t at = PP__SJ_EVFRAME;
    for (uint32_t k = 0; k < n; k++) {
        if (at + PP__SJ_EVFRAME > len) return 0;
        const uint8_t *e = f + at;
        uint32_t el = pp__sj_ev_len(e);
        if (!el || at + el > len) return 0;
        if (e[8] < PP_EV_ADD || e[8] > PP_EV_MODIFY || pp__get32(e + 12) != iid || pp__get64(e + 16) != first + k) return 0;
        at += el;
    }
    return at == len ? n : 0;
}
/* The entries of a well-formed batch frame f, in order: e = PP__SJ_BATCH_FIRST(f), then e = PP__SJ_BATCH_NEXT(e). */
#define PP__SJ_BATCH_FIRST(f) ((f) + PP__SJ_EVFRAME)
#define PP__SJ_BATCH_NEXT(e)  ((e) + pp__sj_ev_len(e))

static pp_book *pp__byid(pp_store *S, uint32_t iid) {
    if (iid >= PP__MAX_IID) return NULL;
    pp_book **c = pp__load_acq(&S->byid[iid >> 10]);
    return c ? pp__load_acq(&c[iid & 1023u]) : NULL;
}

static int pp__byid_set(pp_store *S, uint32_t iid, pp_book *b) {
    if (iid == 0 || iid >= PP__MAX_IID) return PP_ECONFIG;
    pp_book **c = S->byid[iid >> 10];
    if (!c) {
        c = (pp_book **)pp__alloc(1024 * sizeof *c);
        if (!c) return PP_ENOMEM;
        pp__store_rel(&S->byid[iid >> 10], c);
    }
    pp__store_rel(&c[iid & 1023u], b);
    return 0;
}

/* A format-2 book: no directory, no file, no thread until its first
 * snapshot; tables start small and grow with the book. */
static int pp__book_new2(pp_store *S, const char *name, uint32_t iid, pp_book **out) {
    pp_book *b = (pp_book *)pp__alloc(sizeof *b);
    if (!b) return PP_ENOMEM;
    pthread_mutex_init(&b->shadow_mu, NULL); pthread_mutex_init(&b->seg_mu, NULL); pthread_mutex_init(&b->grow_mu, NULL);
    pthread_mutex_init(&b->sync_mu, NULL); pthread_mutex_init(&b->snap_mu, NULL);
    pthread_mutex_init(&b->create_mu, NULL);
    b->s = S; b->mode = PP_JOURNAL_MMAP; b->iid = iid;
    b->first_pos = UINT64_MAX;
    b->name = pp__strdup(name);
    char *bd = pp__join(S->dir, "books");
    b->dir = bd ? pp__join(bd, name) : NULL;
    PINNACLE_PERSIST_FREE(bd);
    if (b->dir) { b->sdir = pp__join(b->dir, "snapshots"); b->mdir = pp__join(b->dir, "md"); }
    pp__md_init(&b->md);
    int rc = (!b->name || !b->sdir || !b->mdir) ? PP_ENOMEM : 0;
    if (!rc) rc = pp__shadow_init(&b->shadow, S->book_orders0);
    if (!rc) rc = pp__idx_init(&b->idx, S->book_orders0);
    if (!rc) b->idx_cap_pub = b->idx.mask + 1;
    if (rc) { pp__book_free(b); return rc; }
    *out = b;
    return 0;
}

/* books/<name>/snapshots, made at the book's first snapshot. */
static int pp__book_dirs(pp_book *b) {
    if (!b->iid || b->dirs_made) return 0;
    char *bd = pp__join(b->s->dir, "books");
    int rc = bd ? pp__mkdir(bd) : PP_ENOMEM;
    PINNACLE_PERSIST_FREE(bd);
    if (!rc) rc = pp__mkdir(b->dir);
    if (!rc) rc = pp__mkdir(b->sdir);            /* md/ comes with the first market data (pp__md_write) */
    if (!rc) b->dirs_made = 1;
    return rc;
}

/* The journal position a snapshot file covers (0: none recorded). */
static uint64_t pp__snap_pos(const pp__fkeys *fk, const char *sdir, uint64_t seq) {
    if (!seq) return 0;
    char p[4096];
    pp__numbered(p, sizeof p, sdir, seq, ".pps");
    if (fk) {                          /* sealed: the header is inside */
        uint8_t *buf = NULL; size_t len = 0;
        uint64_t pos = 0;
        if (pp__read_file_k(fk, p, &buf, &len, NULL, 0) == 0 && len >= PP__SNAP_HDR) pos = pp__get64(buf + 40);
        PINNACLE_PERSIST_FREE(buf);
        return pos;
    }
    uint8_t h[PP__SNAP_HDR];
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : pread(fd, h, sizeof h, 0);
    if (fd >= 0) close(fd);
    return got == (ssize_t)sizeof h && memcmp(h, PP__SNAP_MAGIC, 8) == 0 ? pp__get64(h + 40) : 0;   /* not one (sealed): 0 */
}

/* A book known from the catalog or a declaration: its newest usable
 * snapshot and market-data state, before its frames are replayed. */
static int pp__book_recover2(pp_store *S, const char *name, uint32_t iid, pp_book **out) {
    pp_book *b = NULL;
    int rc = pp_valid_name(name) ? PP_ECORRUPT : 0;
    if (!rc && (iid == 0 || iid >= PP__MAX_IID || pp__byid(S, iid))) rc = PP_ECORRUPT;
    if (!rc) rc = pp__book_new2(S, name, iid, &b);
    uint64_t snap = 0;
    if (!rc && pp__is_dir(b->sdir)) {
        b->dirs_made = 1;
        rc = pp__load_snapshot(S, name, b->sdir, &b->shadow, &b->plmap, &b->pl_bytes, &snap, NULL);
        if (!rc) rc = pp__md_load(b, snap);
        if (rc && rc != PP_ENOMEM && (S->cfg.flags & PP_OPEN_QUARANTINE)) {   /* this book only */
            char why[160];
            snprintf(why, sizeof why, "its snapshots or market data cannot be loaded: %s", pp_strerror(rc));
            rc = pp__quarantine_add2(S, name, iid, rc, b->dir, 0, why);
            pp__book_free(b);
            *out = NULL;
            return rc;
        }
    }
    if (!rc) { b->last = snap; b->applied = snap; b->recovered_snap = snap; }
    if (!rc) rc = pp__byid_set(S, iid, b);
    if (!rc) { rc = pp__store_add(S, b); if (rc) pp__byid_set(S, iid, NULL); }
    if (rc) { if (b) pp__book_free(b); return rc; }
    if (iid >= S->next_iid) S->next_iid = iid + 1;
    *out = b;
    return 0;
}

/* One name, one id: a name declared (in the catalog or the journal) under
 * two ids is damage, the writer never does it. Checked once after the scan,
 * by sorting the names (a check per declaration would cost O(books^2)). */
static int pp__cmp_book_name(const void *a, const void *b) {
    return strcmp((*(pp_book *const *)a)->name, (*(pp_book *const *)b)->name);
}
static int pp__names_unique(pp_store *S, const char **dup) {
    *dup = NULL;
    if (S->nbooks < 2) return 0;
    pp_book **v = (pp_book **)pp__alloc(S->nbooks * sizeof *v);
    if (!v) return PP_ENOMEM;
    memcpy(v, S->books, S->nbooks * sizeof *v);
    qsort(v, S->nbooks, sizeof *v, pp__cmp_book_name);
    for (size_t i = 1; i < S->nbooks && !*dup; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0) *dup = v[i]->name;
    PINNACLE_PERSIST_FREE(v);
    for (size_t q = 0; S->quar_iid && q < S->nquar && !*dup; q++)    /* and the books set aside */
        for (size_t i = 0; i < S->nbooks && !*dup; i++)
            if (strcmp(S->books[i]->name, S->quar[q].instrument) == 0) *dup = S->books[i]->name;
    return *dup ? PP_ECORRUPT : 0;
}

/* The book has a frame with this seq in segment idx: the first one of the
 * book there is kept (pp_stats.journal_first_seq: the first seq of the
 * book in the oldest segment left). Called in journal order, by recovery
 * and then by the syncer for every durable frame; one compare per frame,
 * a lock and an entry once per book and segment. Stats only: without
 * memory the entry is left out. */
static void pp__book_jseg_note(pp_book *b, uint64_t idx, uint64_t seq) {
    if (b->jseg_last == idx + 1) return;
    b->jseg_last = idx + 1;
    pthread_mutex_lock(&b->seg_mu);
    if (b->jsegs_n == b->jsegs_cap) {
        size_t nc = b->jsegs_cap ? 2 * b->jsegs_cap : 2;
        uint64_t *nv = (uint64_t *)PINNACLE_PERSIST_REALLOC(b->jsegs, nc * 2 * sizeof *nv);
        if (nv) { b->jsegs = nv; b->jsegs_cap = nc; }
    }
    if (b->jsegs_n < b->jsegs_cap) {
        PINNACLE_PERSIST_ASSERT(b->jsegs_n == 0 || b->jsegs[2 * (b->jsegs_n - 1)] < idx);
        b->jsegs[2 * b->jsegs_n] = idx; b->jsegs[2 * b->jsegs_n + 1] = seq;
        b->jsegs_n++;
    }
    pthread_mutex_unlock(&b->seg_mu);
}

/* Compaction removed the segments below first_index: forget them. */
static void pp__book_jseg_drop(pp_book *b, uint64_t first_index) {
    pthread_mutex_lock(&b->seg_mu);
    size_t k = 0;
    while (k < b->jsegs_n && b->jsegs[2 * k] < first_index) k++;
    if (k) memmove(b->jsegs, b->jsegs + 2 * k, (b->jsegs_n - k) * 2 * sizeof *b->jsegs);
    b->jsegs_n -= k;
    pthread_mutex_unlock(&b->seg_mu);
}

/* >>retire: retired.ppr, the instruments pp_book_retire took out of the
 * store: "PPRET001", u32 count, u32 0, count x {u32 id, u8 name length,
 * name}, u32 crc32c of everything before. Replaced atomically (the commit
 * point of a retirement). Their frames are skipped at recovery, their ids
 * never given again. open_mu (or pp_open alone). */
#define PP__RET_MAGIC "PPRET001"
static uint32_t pp__retired_iid(const pp_store *S, const char *name) {
    for (size_t i = 0; i < S->nret; i++) if (strcmp(S->ret_name[i], name) == 0) return S->ret_iid[i];
    return 0;
}
static int pp__is_retired(const pp_store *S, uint32_t iid) {
    for (size_t i = 0; i < S->nret; i++) if (S->ret_iid[i] == iid) return 1;
    return 0;
}
static int pp__retired_push(pp_store *S, uint32_t iid, const char *name) {
    uint32_t *vi = (uint32_t *)PINNACLE_PERSIST_REALLOC(S->ret_iid, (S->nret + 1) * sizeof *vi);
    if (!vi) return PP_ENOMEM;
    S->ret_iid = vi;
    char **vn = (char **)PINNACLE_PERSIST_REALLOC(S->ret_name, (S->nret + 1) * sizeof *vn);
    if (!vn) return PP_ENOMEM;
    S->ret_name = vn;
    if (!(vn[S->nret] = pp__strdup(name))) return PP_ENOMEM;
    vi[S->nret++] = iid;
    if (iid >= S->next_iid) S->next_iid = iid + 1;     /* never given again */
    return 0;
}
/* The list with one more (iid, name), durably; then in memory. */
static int pp__cat_write(const char *dir, const char *file, const char *magic, size_t n, const uint32_t *ids,
                         const char *const *names);
static int pp__retired_write(pp_store *S, uint32_t iid, const char *name) {
    uint32_t *ids = (uint32_t *)pp__alloc((S->nret + 1) * sizeof *ids);
    const char **names = (const char **)pp__alloc((S->nret + 1) * sizeof *names);
    int rc = ids && names ? 0 : PP_ENOMEM;
    if (!rc) {
        for (size_t i = 0; i < S->nret; i++) { ids[i] = S->ret_iid[i]; names[i] = S->ret_name[i]; }
        ids[S->nret] = iid; names[S->nret] = name;
        rc = pp__cat_write(S->dir, "retired.ppr", PP__RET_MAGIC, S->nret + 1, ids, names);
    }
    if (!rc) rc = pp__retired_push(S, iid, name);
    PINNACLE_PERSIST_FREE(ids); PINNACLE_PERSIST_FREE((void *)names);
    return rc;
}
static int pp__retired_entry(void *ctx, uint32_t iid, const char *name, size_t nl) {
    (void)nl;
    if (iid == 0 || iid >= PP__MAX_IID || pp_valid_name(name)) return PP_ECORRUPT;
    return pp__retired_push((pp_store *)ctx, iid, name);
}
static int pp__retired_load(pp_store *S) {
    int rc = pp__cat_walk(S->dir, "retired.ppr", PP__RET_MAGIC, pp__retired_entry, S);
    if (rc == PP_ENOENT) return 0;
    if (rc) PP__MSG(S, rc, "%s/retired.ppr: the list of retired instruments is unusable: %s; not opened (fail closed)", S->dir, pp_strerror(rc));
    return rc;
}

/* One pass over dir: each file moved into adir (deleted without an
 * archive; *.tmp leftovers are deleted either way). *seen: it held any. */
static int pp__retire_dir_pass(const char *dir, const char *adir, int *seen) {
    *seen = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : pp__from_errno(errno);
    struct dirent *e;
    int rc = 0, removed = 0;
    while (!rc && (e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        size_t l = strlen(nm);
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0) continue;
        *seen = 1;
        if (adir && !(l > 4 && strcmp(nm + l - 4, ".tmp") == 0)) { rc = pp__archive_file(dir, nm, adir); continue; }
        char f[4096];
        if ((size_t)snprintf(f, sizeof f, "%s/%s", dir, nm) >= sizeof f) rc = PP_EINVAL;
        else if (pp__sys_unlink(f) != 0 && errno != ENOENT) rc = pp__from_errno(errno);
        removed = 1;
    }
    closedir(d);
    return !rc && removed ? pp__fsync_dir(dir) : rc;
}

/* A retired book's files: every file of books/<name>/{snapshots,md} moved
 * into the archive (deleted without one), then the directories removed.
 * Each step durable; run again after a crash (pp_open, pp_book_retire).
 * Passes over a directory until one finds it empty (readdir while its
 * entries go need not return every one). */
static int pp__retire_files(pp_store *S, const char *name) {
    static const char *const subs[2] = {"snapshots", "md"};
    char bd[4096], dir[4096], adir[4096];
    if ((size_t)snprintf(bd, sizeof bd, "%s/books/%s", S->dir, name) >= sizeof bd) return PP_EINVAL;
    if (!pp__is_dir(bd)) return 0;
    int rc = 0;
    for (int k = 0; k < 2 && !rc; k++) {
        if ((size_t)snprintf(dir, sizeof dir, "%s/%s", bd, subs[k]) >= sizeof dir ||
            (S->adir && (size_t)snprintf(adir, sizeof adir, "%s/books/%s/%s", S->adir, name, subs[k]) >= sizeof adir)) return PP_EINVAL;
        int seen = 1;
        for (int pass = 0; pass < 8 && seen && !rc; pass++) rc = pp__retire_dir_pass(dir, S->adir ? adir : NULL, &seen);
        if (!rc && rmdir(dir) != 0 && errno != ENOENT) rc = pp__from_errno(errno);
    }
    if (!rc && rmdir(bd) != 0 && errno != ENOENT) rc = pp__from_errno(errno);
    if (!rc && (size_t)snprintf(dir, sizeof dir, "%s/books", S->dir) < sizeof dir) rc = pp__fsync_dir(dir);
    if (rc) PP__MSG(S, rc, "%s: the retired book's files could not all be moved: %s (done again at the next open)", name, pp_strerror(rc));
    return rc;
}

/* Recovery: one pass over the store journal, each frame to its book. */
static int pp__recover_ev(pp_book *b, uint64_t pos, uint32_t len, const uint8_t *f);
/* A valid frame (its CRC holds) that does not fit its book at pos: the
 * error, or under PP_OPEN_QUARANTINE the book set aside (taken out of the
 * store before anything else sees it; its later frames are skipped) and 0.
 * A batch set aside part way is not half applied anywhere: the book goes. */
static int pp__recover_misfit(pp_store *S, pp_book *b, uint64_t pos, int err) {
    if (err == PP_ENOMEM || !(S->cfg.flags & PP_OPEN_QUARANTINE)) return err;
    char file[4096], why[200];
    uint64_t bytes = pp__sj_scan_bytes, idx = pp__sj_scan_index;
    char *jd = pp__join(S->dir, "journal");
    if (!jd) return PP_ENOMEM;
    pp__numbered(file, sizeof file, jd, idx, ".ppj");
    PINNACLE_PERSIST_FREE(jd);
    snprintf(why, sizeof why, "a journal frame does not fit the book after seq %llu (%s)", (unsigned long long)b->last,
             pp_strerror(err));
    int rc = pp__quarantine_add2(S, b->name, b->iid, err, file, PP__PAGE + (pos - idx * bytes), why);
    if (rc) return rc;
    (void)pp__byid_set(S, b->iid, NULL);
    pthread_mutex_lock(&S->mu);
    size_t at = 0;
    while (at < S->nbooks && S->books[at] != b) at++;
    PINNACLE_PERSIST_ASSERT(at < S->nbooks);
    memmove(S->books + at, S->books + at + 1, (S->nbooks - at - 1) * sizeof *S->books);
    S->nbooks--;
    pthread_mutex_unlock(&S->mu);
    pp__book_free(b);
    return 0;
}
static int pp__recover_frame(void *ctx, uint64_t pos, const uint8_t *f, uint32_t len) {
    pp_store *S = (pp_store *)ctx;
    uint32_t iid = pp__get32(f + 12);
    if (f[8] == PP__SJ_DECLARE) {
        char name[PP_MAX_NAME + 1];
        unsigned nl = f[9];
        if (len != PP__SJ_DECLFRAME || nl == 0 || nl > PP_MAX_NAME) return PP_ECORRUPT;
        if (memchr(f + 24, 0, nl)) return PP_ECORRUPT;   /* a NUL inside: not the name of nl bytes it claims */
        memcpy(name, f + 24, nl); name[nl] = 0;
        pp_book *b = pp__byid(S, iid);
        if (b) return strcmp(b->name, name) == 0 ? 0 : PP_ECORRUPT;
        if (pp__is_retired(S, iid)) return 0;            /* pp_book_retire: not recovered */
        if (pp__quarantined2(S, iid)) {                  /* set aside: the same name again says nothing new */
            for (size_t i = 0; i < S->nquar; i++)
                if (S->quar_iid[i] == iid) return strcmp(S->quar[i].instrument, name) == 0 ? 0 : PP_ECORRUPT;
        }
        return pp__book_recover2(S, name, iid, &b);
    }
    if (f[8] == PP__SJ_BATCH) {
        uint32_t n = pp__sj_batch_count(f, len);
        pp_book *b = pp__byid(S, iid);
        if (n && !b && (pp__is_retired(S, iid) || pp__quarantined2(S, iid))) return 0;
        if (!n || !b) return PP_ECORRUPT;
        const uint8_t *e = PP__SJ_BATCH_FIRST(f);
        for (uint32_t k = 0; k < n; k++, e = PP__SJ_BATCH_NEXT(e)) {
            int rc = pp__recover_ev(b, pos, len, e);
            if (rc) return pp__recover_misfit(S, b, pos, rc);
        }
        return 0;
    }
    if (!pp__is_evtype(f[8]) || len != pp__sj_ev_len(f)) return PP_ECORRUPT;
    pp_book *b = pp__byid(S, iid);
    if (!b && (pp__is_retired(S, iid) || pp__quarantined2(S, iid))) return 0;
    if (!b) return PP_ECORRUPT;                      /* an event of an instrument never declared */
    int rc = pp__recover_ev(b, pos, len, f);
    return rc ? pp__recover_misfit(S, b, pos, rc) : 0;
}

/* After event v (the frame or batch entry f) reached b's shadow: an add's
 * payload is kept with its order, until the order leaves the book. */
static int pp__pl_follow(pp__plmap *pm, uint64_t *bytes, const pp__shadow *m, const pp__ev *v, const uint8_t *pl, uint32_t plen) {
    if (v->type == PP_EV_ADD) return plen ? pp__pl_put(pm, bytes, v->id, pl, plen) : 0;
    if (pm->n && (v->type == PP_EV_CANCEL || v->type == PP_EV_EXECUTE) && !pp__shadow_find(m, v->id))
        pp__pl_drop(pm, bytes, v->id);
    return 0;
}
static int pp__pl_track(pp_book *b, const pp__ev *v, const uint8_t *f) {
    return pp__pl_follow(&b->plmap, &b->pl_bytes, &b->shadow, v, f + PP__SJ_EVFRAME, pp__sj_ev_plen(f));
}

/* One event (a frame, or an entry of a batch frame at pos) into its book. */
static int pp__recover_ev(pp_book *b, uint64_t pos, uint32_t len, const uint8_t *f) {
    pp__ev v;
    pp__sj_dec_ev(f, &v);
    pp__book_jseg_note(b, pp__sj_scan_index, v.seq);
    if (v.seq && v.seq <= b->recovered_snap) return 0;   /* covered by the book's snapshot (seqs start at 1) */
    if (v.seq != b->last + 1) return PP_ECORRUPT;    /* entries missing, or a seq already replayed */
    pp__md_sink = &b->md;
    int rc = pp__apply(&b->shadow, &v);
    pp__md_sink = NULL;
    if (!rc) rc = pp__md_tick(&b->md, f);
    if (!rc) rc = pp__pl_track(b, &v, f);
    if (rc) return rc;
    b->last = v.seq; b->applied = v.seq; b->applied_pos = pos + len;
    if (b->first_pos == UINT64_MAX) b->first_pos = pos;
    return 0;
}

/* Recovery's prefetch: the shadow slot the frame 8 ahead will touch. */
static void pp__recover_ahead(void *ctx, const uint8_t *f) {
    pp_book *b = pp__byid((pp_store *)ctx, pp__get32(f + 12));
    if (b) __builtin_prefetch(&b->shadow.t[pp__hash(pp__get64(f + 24)) & b->shadow.mask], 1);
}

/* Syncer: frames in [from, to) are durable: each book's pp_durable moves. */
static void pp__store_on_durable(void *ctx, pp__sj *j, uint64_t from, uint64_t to) {
    pp_store *S = (pp_store *)ctx;
    uint64_t p = from;
    uint32_t len;
    const uint8_t *f;
    while (p < to && (f = pp__sj_next(j, &p, &len)) != NULL && p - len < to) {
        if (!pp__is_evtype(f[8]) && f[8] != PP__SJ_BATCH) continue;
        pp_book *b = pp__byid(S, pp__get32(f + 12));
        uint64_t seq = pp__get64(f + 16);
        if (b) pp__book_jseg_note(b, (p - len) >> j->shift, seq);
        if (f[8] == PP__SJ_BATCH) seq = pp__get64(f + 24);   /* a batch is durable whole: its last seq */
        if (b && seq > pp__load_rlx(&b->durable)) pp__store_rel(&b->durable, seq);
    }
    pp__dur_notify(S);
}

static int pp__store_sync(pp_store *S, int whole_pages) {
    int rc = pp__sj_sync(S->sj, whole_pages, pp__store_on_durable, S);
    if (rc) pp__dur_notify(S);           /* the journal is poisoned: pp_wait returns its error */
    return rc;
}

/* The dispatch of one event (a frame, or an entry of a batch frame ending
 * at end_pos) into its book's shadow; shadow_mu held. */
static int pp__drain_ev(pp_book *b, const uint8_t *f, uint64_t end_pos) {
    pp__ev v;
    pp__sj_dec_ev(f, &v);
    int r = 0;
    if (v.seq == b->applied + 1) {
        pp__md_sink = &b->md;
        r = pp__apply_book(b, &v);
        pp__md_sink = NULL;
        if (!r) r = pp__md_tick(&b->md, f);
        if (!r) r = pp__pl_track(b, &v, f);
        if (r) pp__poison(b, r);
        b->applied = v.seq; b->applied_pos = end_pos;
    } else if (v.seq > b->applied + 1) {
        pp__poison(b, PP_ECORRUPT);
    }
    return r;
}

/* The dispatch: published frames, in journal order, into their books'
 * shadows. Stops at the first frame not yet published. */
static int pp__store_drain(pp_store *S, uint64_t max_frames) {
    pp__sj *j = S->sj;
    int rc = 0;
    pthread_mutex_lock(&S->drain_mu);
    uint64_t pos = S->drain_pos, ahead_pos = pos;
    uint32_t ahead = 0;           /* published frames from pos up to ahead_pos, their shadow slots prefetched */
    pp_book *cur = NULL;
    for (uint64_t k = 0; k < max_frames; k++) {
        while (ahead < 8) {       /* the shadow slots of the next frames (a cache miss hidden), walked frame by frame */
            uint64_t q = ahead_pos;
            uint32_t al;
            const uint8_t *a = pp__sj_next(j, &q, &al);
            if (!a) break;
            ahead_pos = q; ahead++;
            if (pp__is_evtype(a[8]) || a[8] == PP__SJ_BATCH) {
                pp_book *ab = pp__byid(S, pp__get32(a + 12));
                if (ab) __builtin_prefetch(&ab->shadow.t[pp__hash(pp__get64(a + (a[8] == PP__SJ_BATCH ? 88 : 24))) & ab->shadow.mask], 1);
            }
        }
        uint64_t p = pos;
        uint32_t len;
        const uint8_t *f = pp__sj_next(j, &p, &len);
        if (!f) { pos = p; break; }
        if (ahead) ahead--;
        if (pp__is_evtype(f[8]) || f[8] == PP__SJ_BATCH) {
            pp_book *b = pp__byid(S, pp__get32(f + 12));
            if (b != cur) {
                if (cur) pthread_mutex_unlock(&cur->shadow_mu);
                cur = b;
                if (cur) pthread_mutex_lock(&cur->shadow_mu);
            }
            if (b && f[8] == PP__SJ_BATCH) {          /* a batch: all of it under one hold of the shadow lock */
                uint32_t n = pp__sj_batch_count(f, len);
                if (!n) { if (!rc) rc = PP_ECORRUPT; pp__poison(b, PP_ECORRUPT); }
                const uint8_t *e = PP__SJ_BATCH_FIRST(f);
                for (uint32_t x = 0; x < n; x++, e = PP__SJ_BATCH_NEXT(e)) {
                    int r = pp__drain_ev(b, e, p);
                    if (r && !rc) rc = r;
                }
            } else if (b) {
                int r = pp__drain_ev(b, f, p);
                if (r && !rc) rc = r;
            }
        }
        pos = p;
    }
    if (cur) pthread_mutex_unlock(&cur->shadow_mu);
    S->drain_pos = pos;
    pp__store_rel(&j->hold, pos);
    pthread_mutex_unlock(&S->drain_mu);
    return rc;
}

/* The book's shadow holds every event journaled before this call. Frames
 * of other threads claimed before them and still being written hold the
 * dispatch up for nanoseconds: it retries. */
static int pp__store_catch_up(pp_book *b) {
    uint64_t target = pp__load_acq(&b->last_seq);
    for (;;) {
        int rc = pp__store_drain(b->s, UINT64_MAX);
        pthread_mutex_lock(&b->shadow_mu);
        uint64_t a = b->applied;
        pthread_mutex_unlock(&b->shadow_mu);
        if (a >= target) return 0;
        if (rc) return rc;
        if ((rc = pp__load_acq(&b->s->sj->err)) != 0) return rc;
        if ((rc = pp__load_acq(&b->err)) != 0) return rc;
        sched_yield();
    }
}

/* PP_NO_THREADS: a writer found the window of mapped segments full. The
 * dispatch moves past the oldest one, and a sync round makes it durable,
 * seals and retires it (a segment takes two rounds: its data, then its
 * sealed mark). Errors poison the journal; the writer sees them. */
static void pp__store_help(void *ctx) {
    pp_store *S = (pp_store *)ctx;
    PINNACLE_PERSIST_ASSERT(S->cfg.flags & PP_NO_THREADS);
    PINNACLE_PERSIST_ASSERT(!S->threads);
    (void)pp__store_drain(S, UINT64_MAX);
    (void)pp__store_sync(S, 0);
}

static int pp__store_wait_durable(pp_book *b, uint64_t seq) {
    for (;;) {
        if (pp__load_acq(&b->durable) >= seq) return 0;
        int rc = pp__store_sync(b->s, 0);
        if (rc) { pp__poison(b, rc); return rc; }
        if (pp__load_acq(&b->durable) >= seq) return 0;
        sched_yield();           /* a frame before ours is still being written */
    }
}

/* instruments.ppc and retired.ppr: an 8-byte magic, u32 count, u32 0,
 * count x {u32 id, u8 name length, name}, u32 crc32c of everything
 * before. Replaced atomically and durably (pp__cat_walk reads it). */
static int pp__cat_write(const char *dir, const char *file, const char *magic, size_t n, const uint32_t *ids,
                         const char *const *names) {
    size_t len = 16 + 4;
    for (size_t i = 0; i < n; i++) len += 5 + strlen(names[i]);
    uint8_t *buf = (uint8_t *)pp__alloc(len), *o = buf + 16;
    char *p = pp__join(dir, file);
    int rc = buf && p ? 0 : PP_ENOMEM;
    if (!rc) {
        memcpy(buf, magic, 8);
        pp__put32(buf + 8, (uint32_t)n);
        for (size_t i = 0; i < n; i++) {
            size_t nl = strlen(names[i]);
            PINNACLE_PERSIST_ASSERT(nl <= 255);
            pp__put32(o, ids[i]); o[4] = (uint8_t)nl; memcpy(o + 5, names[i], nl);
            o += 5 + nl;
        }
        PINNACLE_PERSIST_ASSERT(o + 4 == buf + len);
        pp__put32(o, plg_crc32c(0, buf, (size_t)(o - buf)));
        rc = pp__from_plg_file(pp__write_file_durable(p, buf, len, 0644));
    }
    PINNACLE_PERSIST_FREE(buf); PINNACLE_PERSIST_FREE(p);
    return rc;
}

/* The catalog: every book of the store ("PPCAT002"). A book's name stays
 * valid until pp_close (retired ones too), so the pointers outlive the lock. */
static int pp__catalog_write(pp_store *S) {
    pthread_mutex_lock(&S->mu);
    size_t n = S->nbooks, nq = S->quar_iid ? S->nquar : 0;   /* the books, and the ones set aside (still the store's) */
    uint32_t *ids = (uint32_t *)pp__alloc((n + nq ? n + nq : 1) * sizeof *ids), top = 0;
    const char **names = (const char **)pp__alloc((n + nq ? n + nq : 1) * sizeof *names);
    if (!ids || !names) {
        pthread_mutex_unlock(&S->mu);
        PINNACLE_PERSIST_FREE(ids); PINNACLE_PERSIST_FREE((void *)names);
        return PP_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) { ids[i] = S->books[i]->iid; names[i] = S->books[i]->name; }
    for (size_t i = 0; i < nq; i++) { ids[n + i] = S->quar_iid[i]; names[n + i] = S->quar[i].instrument; }
    n += nq;
    for (size_t i = 0; i < n; i++) if (ids[i] > top) top = ids[i];
    pthread_mutex_unlock(&S->mu);
    for (size_t i = 0; i < S->nret; i++) if (S->ret_iid[i] > top) top = S->ret_iid[i];   /* retired ids are taken too */
    int rc = pp__cat_write(S->dir, "instruments.ppc", PP__CAT_MAGIC, n, ids, names);
    PINNACLE_PERSIST_FREE(ids); PINNACLE_PERSIST_FREE((void *)names);
    if (!rc && top + 1 > S->catalog_iid) S->catalog_iid = top + 1;
    return rc;
}

typedef struct pp__catload { pp_store *S; uint32_t top; } pp__catload;
static int pp__catalog_entry(void *ctx, uint32_t iid, const char *name, size_t nl) {
    pp__catload *c = (pp__catload *)ctx;
    (void)nl;
    if (iid > c->top) c->top = iid;
    pp_book *b = pp__byid(c->S, iid);
    if (b) return strcmp(b->name, name) == 0 ? 0 : PP_ECORRUPT;   /* the same entry again says nothing new, as a
                                                                    * declaration repeated in the journal */
    for (size_t i = 0; c->S->quar_iid && i < c->S->nquar; i++)    /* set aside already (the same entry again) */
        if (c->S->quar_iid[i] == iid) return strcmp(c->S->quar[i].instrument, name) == 0 ? 0 : PP_ECORRUPT;
    return pp__is_retired(c->S, iid) ? 0 : pp__book_recover2(c->S, name, iid, &b);
}
static int pp__catalog_load(pp_store *S) {
    pp__catload c = {S, 0};
    int rc = pp__cat_walk(S->dir, "instruments.ppc", PP__CAT_MAGIC, pp__catalog_entry, &c);
    if (rc == PP_ENOENT) rc = 0;
    if (rc == PP_ENEEDKEY || rc == PP_EKEY || rc == PP_ENOTSUP) { /* a book's sealed file: said where it was read */ }
    else if (rc) PP__MSG(S, rc, "%s/instruments.ppc: the instrument catalog is unusable: %s; not opened (fail closed)", S->dir, pp_strerror(rc));
    S->catalog_iid = c.top + 1;
    return rc;
}

static int pp__cat_walk(const char *dir, const char *file, const char *magic, pp__cat_fn fn, void *ctx) {
    char *p = pp__join(dir, file);
    if (!p) return PP_ENOMEM;
    uint8_t *buf = NULL; size_t len = 0;
    int rc = pp__read_file(p, &buf, &len);
    PINNACLE_PERSIST_FREE(p);
    if (!rc && (len < 20 || memcmp(buf, magic, 8) != 0 || pp__get32(buf + len - 4) != plg_crc32c(0, buf, len - 4))) rc = PP_ECORRUPT;
    size_t off = 16, n = rc ? 0 : pp__get32(buf + 8);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t nl = off + 5 <= len - 4 ? buf[off + 4] : 0;
        if (!nl || nl > PP_MAX_NAME || off + 5 + nl > len - 4 || memchr(buf + off + 5, 0, nl)) { rc = PP_ECORRUPT; break; }
        char name[PP_MAX_NAME + 1];
        memcpy(name, buf + off + 5, nl); name[nl] = 0;
        rc = fn(ctx, pp__get32(buf + off), name, nl);
        off += 5 + nl;
    }
    PINNACLE_PERSIST_FREE(buf);
    return rc;
}

/* The store journal's segment size: a power of two, 64 KiB .. 64 MiB. */
static uint64_t pp__sj_seg_bytes(const pp_config *c) {
    uint64_t want = c->journal_segment_bytes < ((uint64_t)64 << 20) ? c->journal_segment_bytes : ((uint64_t)64 << 20), s = 64u << 10;
    while (s * 2 <= want) s *= 2;
    return s;
}

/* The highest journal position any snapshot of any book recorded (every
 * snapshot file, unreadable ones aside): asked by the strict journal's open
 * when its log holds no record. A log emptied by compaction (before it kept
 * its newest record) would otherwise restart the positions below them. */
static uint64_t pp__snap_floor(void *ctx) {
    pp_store *S = (pp_store *)ctx;
    uint64_t top = 0;
    for (size_t i = 0; i < S->nbooks; i++) {
        pp_book *b = S->books[i];
        uint64_t *v = NULL; size_t n = 0;
        if (!b->dirs_made || pp__list_numbered(b->sdir, ".pps", 0, &v, &n) != 0) continue;
        for (size_t k = 0; k < n; k++) { uint64_t p = pp__snap_pos_b(b, v[k]); if (p > top) top = p; }
        PINNACLE_PERSIST_FREE(v);
    }
    return top;
}

/* pp_open of a format-2 store: the catalog, then one pass over the journal. */
static int pp__store2_open(pp_store *S) {
    S->next_iid = 1;
    int rc = pp__retired_load(S);
    char *jd = pp__join(S->dir, "journal");
    if (!jd) return PP_ENOMEM;
    if (!rc) rc = pp__mkdir(jd);
    pp__sjwhere w;
    memset(&w, 0, sizeof w);
    /* the mode and the keys before the catalog loads any snapshot: a
     * mismatch is an error of the open, never damage to set aside */
    int strict = !rc && pp__sj_is_strict(jd);
    if (!rc && strict != (S->cfg.mode == PP_JOURNAL_STRICT)) {
        uint64_t *v = NULL; size_t n = 0;
        if (strict || (pp__list_numbered(jd, ".ppj", 0, &v, &n) == 0 && n > 0)) {
            rc = PP_EMODE;
            PP__MSG(S, rc, "%s: the store was created in %s mode; it is opened in %s mode. Not opened.", S->dir,
                    strict ? "strict" : "mmap", strict ? "mmap" : "strict");
        }
        PINNACLE_PERSIST_FREE(v);
    }
    if (!rc && strict) {               /* picolog tells from its meta and segment headers */
        plg_reader *r = NULL;
        int e = pp__sj_reader_open(&r, jd, &S->slog, NULL);
        if (r) plg_reader_close(r);
        if (e == PLG_ENEEDKEY || e == PLG_EKEY || e == PLG_EPLAINLOG || e == PLG_ENOCRYPT) {
            rc = pp__from_plg(e);
            PP__MSG(S, rc, "%s: %s (%s). Not opened.", S->dir, pp_strerror(rc), plg_strerror(e));
        }
    }
    if (!rc) rc = pp__catalog_load(S);
    if (!rc && S->cfg.mode == PP_JOURNAL_STRICT && S->adir) {   /* picolog moves the segments it releases there */
        if (!(S->sjadir = pp__join(S->adir, "journal"))) rc = PP_ENOMEM;
        if (!rc) rc = pp__mkdir_p(S->sjadir);
        if (rc) PP__MSG(S, rc, "%s: cannot create the archive directory %s: %s", S->dir, S->sjadir ? S->sjadir : S->adir, pp_strerror(rc));
        S->slog.archive_dir = S->sjadir;
    }
    if (!rc) {
        pp__sj_ahead = pp__recover_ahead;
        if (S->cfg.mode == PP_JOURNAL_STRICT)
            rc = pp__sj_open_strict(&S->sj, jd, pp__sj_seg_bytes(&S->cfg), S->cfg.strict_log, pp__recover_frame,
                                    pp__snap_floor, S, &w);
        else
            rc = pp__sj_open(&S->sj, jd, pp__sj_seg_bytes(&S->cfg), (S->cfg.flags & PP_PRIVATE_PAGES) ? PP__SJ_PRIVATE : 0, 0,
                             pp__recover_frame, S, &w);
        pp__sj_ahead = NULL;
        if (rc) PP__MSG(S, rc, "store journal: %s at %s offset %llu: %s. Not opened (fail closed).", pp_strerror(rc),
                        w.file, (unsigned long long)w.offset, w.detail);
        else if (w.torn) PP__MSG(S, 0, "store journal: %s in %s at offset %llu; discarded", w.detail, w.file, (unsigned long long)w.offset);
    }
    PINNACLE_PERSIST_FREE(jd);
    if (!rc && S->adir && !(S->sj->archive = pp__join(S->adir, "journal"))) rc = PP_ENOMEM;
    for (size_t i = 0; i < S->nret && !rc; i++) (void)pp__retire_files(S, S->ret_name[i]);   /* a retirement a crash interrupted */
    if (!rc) {
        const char *dup;
        rc = pp__names_unique(S, &dup);
        if (rc == PP_ECORRUPT) PP__MSG(S, rc, "store journal: instrument %s is declared under two ids. Not opened (fail closed).", dup);
    }
    for (size_t i = 0; i < S->nbooks && !rc; i++) {
        pp_book *b = S->books[i];
        b->last_seq = b->last; b->durable = b->last;
        for (uint64_t k = 0, cap = b->shadow.mask + 1; k < cap && !rc; k++)
            if (b->shadow.t[k].id) {
                if ((b->idx.n + 1) * 2 > b->idx.mask + 1 && pp__idx_grow(&b->idx)) { rc = PP_ENOMEM; break; }
                pp__islot *x = pp__idx_slot(&b->idx, b->shadow.t[k].id);
                x->id = b->shadow.t[k].id; x->qty = b->shadow.t[k].qty; b->idx.n++;
            }
        b->idx_cap_pub = b->idx.mask + 1; b->idx_n_pub = b->idx.n;
        if (!rc && b->dirs_made) rc = pp__snap_rotate(b);
        if (!rc) b->next_snap_ns = pp__next_snap_ns(S, b->sdir, b->snap_newest);
        b->md_hp_last = b->md_last_pub = b->md.has_last ? b->md.last.exch_seq : 0;
    }
    if (!rc) { S->drain_pos = S->sj->tail; S->sj->hold = S->drain_pos; }
    if (!rc && (S->cfg.flags & PP_NO_THREADS)) { S->sj->help = pp__store_help; S->sj->help_ctx = S; }
    return rc;
}

/* pp_book_open of a new instrument (open_mu held): an id, a declaration. */
static int pp__book_create2(pp_store *S, const char *name, pp_book **out) {
    if (S->next_iid >= PP__MAX_IID) return PP_ECONFIG;
    uint32_t iid = S->next_iid;
    pp_book *b = NULL;
    int rc = pp__book_new2(S, name, iid, &b);
    pp__sjclaim c;
    if (!rc) rc = pp__sj_claim(S->sj, PP__SJ_DECLFRAME, &c);
    if (!rc) {
        size_t nl = strlen(name);
        memset(c.f + 4, 0, PP__SJ_DECLFRAME - 4);
        c.f[8] = PP__SJ_DECLARE; c.f[9] = (uint8_t)nl;
        pp__put32(c.f + 12, iid);
        memcpy(c.f + 24, name, nl);
        pp__sj_publish(c.f, c.seed, c.pos, PP__SJ_DECLFRAME);
        pp__sj_nudge(S->sj);
        S->next_iid = iid + 1;
        rc = pp__byid_set(S, iid, b);
    }
    if (!rc) { rc = pp__store_add(S, b); if (rc) pp__byid_set(S, iid, NULL); }
    if (rc) { if (b) pp__book_free(b); return rc; }
    *out = b;
    return 0;
}

/* What a book needs of the journal (for compaction): from its oldest kept
 * snapshot's position; a book never snapshotted, from its first frame; an
 * idle book whose newest snapshot covers every durable event it has,
 * nothing (its older snapshots then have no journal to fall back on: the
 * price of not pinning the store's journal, docs/pinnacle-format.md).
 * Judged by what is durable, with the journal's sync_mu held: the book's
 * pp_durable then accounts for every frame below the journal's durable
 * position, so an event it does not cover (journaled by the book's thread
 * while the compaction runs) lies at or above that position, and no segment
 * removal reaches it. Judged by pp_last_seq instead, an event journaled
 * just after the judgement could be made durable and its segment removed
 * before the removal. */
static uint64_t pp__book_need(pp_book *b) {
    uint64_t newest = pp__load_acq(&b->snap_newest), dur = pp__load_acq(&b->durable);
    if (newest) return dur <= newest ? UINT64_MAX : pp__load_acq(&b->snap_oldest_pos);
    if (!dur) return UINT64_MAX;
    uint64_t f = pp__load_acq(&b->first_pos);
    return f == UINT64_MAX ? 0 : f;           /* durable, its position not stored yet: keep all */
}

/* Compaction of the store journal: books that pin the oldest segment get
 * snapshotted (idle or not), the catalog is made durable, then whole
 * segments below the lowest position any book needs are removed. The
 * snapshots and the catalog come first, without the journal's sync_mu (a
 * snapshot waits for sync rounds); what each book needs is then judged
 * and the segments removed with it held (see pp__book_need). */
static int pp__store_compact(pp_store *S, int force) {
    pp__sj *j = S->sj;
    if (S->quar_iid && S->nquar) return 0;   /* a book set aside keeps the whole journal (nquar: set at open only) */
    uint64_t tail = pp__load_acq(&j->tail);
    pthread_mutex_lock(&S->open_mu);
    uint64_t first = j->first_index * j->data_bytes;
    if (!force && tail - first <= S->cfg.compaction_threshold) { pthread_mutex_unlock(&S->open_mu); return 0; }
    uint64_t cut = first + j->data_bytes, need = UINT64_MAX;
    int rc = 0;
    pp_book *b;
    for (size_t i = 0; (b = pp__book_at(S, i)) != NULL; i++) {
        if (pp__load_acq(&b->err)) { need = 0; break; }          /* a poisoned book keeps its journal */
        if (pp__book_need(b) < cut) (void)pp__snapshot(b);
        uint64_t n = pp__book_need(b);
        if (n < need) need = n;
    }
    if (need > first && S->catalog_iid < S->next_iid) rc = pp__catalog_write(S);
    uint64_t d = 0;
    if (!rc && need > first) {
        /* journal readers (pp_journal_open) read the files: wait until they
         * are done, new ones wait for this compaction (the wait releases
         * open_mu: a book declared meanwhile is caught below) */
        S->jr_hold++;
        while (S->jreaders) pthread_cond_wait(&S->jr_cv, &S->open_mu);
        pthread_mutex_lock(&j->sync_mu);
        need = UINT64_MAX;
        for (size_t i = 0; (b = pp__book_at(S, i)) != NULL; i++) {
            uint64_t n = pp__load_acq(&b->err) ? 0 : pp__book_need(b);
            if (n < need) need = n;
        }
        if (S->catalog_iid < S->next_iid) need = first;   /* declarations the catalog lacks: remove nothing */
        if (need > first) {
            uint64_t d0 = pp__sj_stat(&j->st_dropped);
            rc = pp__sj_drop_below(j, need);
            d = pp__sj_stat(&j->st_dropped) - d0;
        }
        pthread_mutex_unlock(&j->sync_mu);
        if (--S->jr_hold == 0) pthread_cond_broadcast(&S->jr_cv);
    }
    if (d) {
        pthread_mutex_lock(&j->mu);
        uint64_t fi = j->first_index;
        pthread_mutex_unlock(&j->mu);
        for (size_t i = 0; (b = pp__book_at(S, i)) != NULL; i++) { pp__add_rlx(&b->st_compactions, 1); pp__book_jseg_drop(b, fi); }
    }
    pthread_mutex_unlock(&S->open_mu);
    return rc;
}

/* Which layout the store in S->dir has: format 2 when its STORE file says
 * so; a store with instruments of the per-instrument layout (0.2.0) keeps
 * it (refused with PP_EFORMAT when PP_STORE_JOURNAL asks for format 2: not
 * migrated); a new store becomes format 2, in either mode, unless
 * PP_LEGACY_LAYOUT asks for the old layout. */
static int pp__store_layout(pp_store *S, int *store2) {
    char *mk = pp__join(S->dir, "STORE");
    if (!mk) return PP_ENOMEM;
    struct stat st;
    int rc = 0, old = 0;
    *store2 = stat(mk, &st) == 0;
    int want2 = (S->cfg.flags & PP_STORE_JOURNAL) || !(S->cfg.flags & PP_LEGACY_LAYOUT);
    if (!*store2 && want2) {
        DIR *d = opendir(S->dir);
        struct dirent *e;
        while (d && !old && (e = readdir(d)) != NULL) {
            if (pp_valid_name(e->d_name) != 0) continue;
            char *p = pp__join(S->dir, e->d_name);
            char *pj = p ? pp__join(p, "journal") : NULL, *pl = p ? pp__join(p, "strict") : NULL;
            old = pj && pl && (pp__is_dir(pj) || pp__is_dir(pl));
            PINNACLE_PERSIST_FREE(p); PINNACLE_PERSIST_FREE(pj); PINNACLE_PERSIST_FREE(pl);
        }
        if (d) closedir(d);
        if (old && !(S->cfg.flags & PP_STORE_JOURNAL)) {
            /* an existing store of the per-instrument layout: opened in it */
        } else if (old) {
            rc = PP_EFORMAT;
            PP__MSG(S, rc, "%s holds instruments of the per-instrument layout (0.2.0); this release does not migrate them "
                           "to the store journal: open it without PP_STORE_JOURNAL", S->dir);
        } else {
            static const char txt[] = "pinnacle_persist store, format 2: one journal for every instrument\n";
            rc = pp__from_plg_file(pp__write_file_durable(mk, txt, sizeof txt - 1, 0644));
            if (!rc) *store2 = 1;
        }
    }
    PINNACLE_PERSIST_FREE(mk);
    return rc;
}

static int pp__open(pp_store **out, const pp_config *cfg_in) {
    if (!out || !cfg_in) return PP_EINVAL;
    *out = NULL;
    pp_config cfg = pp_config_defaults(cfg_in);
    int rc = pp__validate(NULL, &cfg);
    if (rc) return rc;
    pp_store *S = (pp_store *)pp__alloc(sizeof *S);
    if (!S) return PP_ENOMEM;
    S->cfg = cfg; S->lock_fd = -1;
    pp__tsc_init(&S->clk);
    S->book_orders0 = cfg_in->expected_orders ? cfg.expected_orders : 8;   /* format 2: grow from small unless told */
    pthread_mutex_init(&S->mu, NULL); pthread_mutex_init(&S->open_mu, NULL); pthread_mutex_init(&S->wake_mu, NULL);
    pthread_mutex_init(&S->drain_mu, NULL);
    pthread_mutex_init(&S->dur_mu, NULL);
    {
        pthread_condattr_t ca;       /* CLOCK_MONOTONIC: a wall-clock step never stretches a pp_wait */
        pthread_condattr_init(&ca);  /* nor stalls the threads' timers (pp__sleep) */
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&S->wake_cv, &ca);
        pthread_cond_init(&S->dur_cv, &ca);
        pthread_cond_init(&S->jr_cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    /* the strict log's template is the store's own copy: the keys go in it,
     * and they must outlive the caller's buffers (readers open it later) */
    if (cfg.strict_log) S->slog = *cfg.strict_log;
    S->cfg.strict_log = cfg.mode == PP_JOURNAL_STRICT || cfg.strict_log ? &S->slog : NULL;
    S->cfg.encrypt_key = NULL; S->cfg.old_keys = NULL; S->cfg.n_old_keys = 0;
    if (S->slog.encrypt_key || S->slog.n_old_keys) {
        PP__MSG(S, PP_ECONFIG, "invalid configuration: strict_log's keys: set pp_config.encrypt_key instead "
                               "(it seals the snapshots and the market data too)");
        pp__store_free(S);
        return PP_ECONFIG;
    }
    if (cfg.encrypt_key && (cfg.mode != PP_JOURNAL_STRICT || (cfg.flags & PP_LEGACY_LAYOUT))) {
        PP__MSG(S, PP_ENOTSUP, "encryption at rest needs strict mode on the store journal (format 2): the mmap journal "
                               "is the trading thread's own memory, and the per-instrument layout has none");
        pp__store_free(S);
        return PP_ENOTSUP;
    }
    rc = pp__fkeys_make(&cfg, &S->fk);
    if (rc) {
        if (rc == PP_ENOTSUP) PP__MSG(S, rc, "encrypt_key given, but pinnacle was built without PICOLOG_ENCRYPT");
        else if (rc == PP_ECONFIG) PP__MSG(S, rc, "invalid configuration: old_keys (at most %d keys in all, none NULL)", PLG_MAX_KEYS);
        pp__store_free(S);
        return rc;
    }
    if (S->fk) {
        S->slog.encrypt_key = S->fk->ptr[0];
        S->slog.old_keys = S->fk->n > 1 ? S->fk->ptr + 1 : NULL;
        S->slog.n_old_keys = S->fk->n - 1;
    }
    S->snap_ns = cfg.snapshot_interval_ms ? (uint64_t)cfg.snapshot_interval_ms * 1000000ull
                                         : (uint64_t)cfg.snapshot_interval_min * 60000000000ull;
    size_t dl = strlen(cfg.data_dir);
    while (dl > 1 && cfg.data_dir[dl - 1] == '/') dl--;
    S->dir = (char *)PINNACLE_PERSIST_MALLOC(dl + 1);
    if (!S->dir) { pp__store_free(S); return PP_ENOMEM; }
    memcpy(S->dir, cfg.data_dir, dl); S->dir[dl] = 0;
    S->cfg.data_dir = S->dir;
    if (cfg.archive_dir && cfg.archive_dir[0]) {
        size_t al = strlen(cfg.archive_dir);
        while (al > 1 && cfg.archive_dir[al - 1] == '/') al--;
        S->adir = (char *)PINNACLE_PERSIST_MALLOC(al + 1);
        if (!S->adir) { pp__store_free(S); return PP_ENOMEM; }
        memcpy(S->adir, cfg.archive_dir, al); S->adir[al] = 0;
        if (strcmp(S->adir, S->dir) == 0) {
            PP__MSG(S, PP_ECONFIG, "archive_dir must not be the data directory");
            pp__store_free(S);
            return PP_ECONFIG;
        }
    }
    S->cfg.archive_dir = S->adir;
    rc = pp__mkdir_p(S->dir);
    char *lk = rc ? NULL : pp__join(S->dir, "LOCK");
    if (!rc && !lk) rc = PP_ENOMEM;
    if (!rc) {
        S->lock_fd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (S->lock_fd < 0) rc = pp__from_errno(errno);
        else if (flock(S->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            rc = pp__from_errno(errno);   /* EWOULDBLOCK: PP_ELOCKED */
            if (rc == PP_ELOCKED) PP__MSG(S, rc, "%s is already open by another store", S->dir);
        }
    }
    if (rc && rc != PP_ELOCKED) {
        int e = errno;
        PP__MSG(S, rc, "%s: cannot create or lock the data directory: %s (%s)", S->dir, pp_strerror(rc), strerror(e));
    }
    PINNACLE_PERSIST_FREE(lk);
    /* format 2 (one store journal): the STORE file says so, or a new store asks for it */
    int store2 = 0;
    if (!rc) rc = pp__store_layout(S, &store2);
    if (!rc && !store2 && S->fk) {
        rc = PP_ENOTSUP;
        PP__MSG(S, rc, "%s: encryption at rest needs the store journal (format 2); this store has the per-instrument layout", S->dir);
    }
    if (!rc && !store2 && S->adir) {
        rc = PP_ENOTSUP;
        PP__MSG(S, rc, "%s: archive_dir needs the store journal (format 2); this store has the per-instrument layout", S->dir);
    }
    if (!rc && store2) rc = pp__store2_open(S);
    /* recover every instrument found under data_dir (per-instrument layout) */
    DIR *d = rc || store2 ? NULL : opendir(S->dir);
    if (!rc && !store2 && !d) rc = pp__from_errno(errno);
    struct dirent *e;
    while (!rc && d && (e = readdir(d)) != NULL) {
        if (pp_valid_name(e->d_name) != 0 || strcmp(e->d_name, "LOCK") == 0) continue;
        /* An instrument is a directory holding the journal the store created
         * in it (journal/ or strict/); anything else under data_dir
         * (lost+found, an operator's backup/) is not ours to adopt. */
        char *p = pp__join(S->dir, e->d_name);
        char *pj = p ? pp__join(p, "journal") : NULL, *pl = p ? pp__join(p, "strict") : NULL;
        if (!p || !pj || !pl) rc = PP_ENOMEM;
        int ours = pj && pl && (pp__is_dir(pj) || pp__is_dir(pl));
        PINNACLE_PERSIST_FREE(p); PINNACLE_PERSIST_FREE(pj); PINNACLE_PERSIST_FREE(pl);
        if (!ours) continue;
        pp_book *b = NULL;
        rc = pp__book_load(S, e->d_name, &b);
        if (!rc) { rc = pp__store_add(S, b); if (rc) pp__book_free(b); }
        if (rc) PP__MSG(S, rc, "%s: recovery failed: %s", e->d_name, pp_strerror(rc));
        if (rc && rc != PP_ENOMEM && (S->cfg.flags & PP_OPEN_QUARANTINE)) rc = pp__quarantine_add(S, e->d_name, rc);
    }
    if (d) closedir(d);
    if (!rc && !(S->cfg.flags & PP_NO_THREADS)) {
        int started = 0;
        if (pthread_create(&S->syncer, NULL, pp__syncer_main, S) == 0) started++;
        if (started == 1 && pthread_create(&S->grower, NULL, pp__grower_main, S) == 0) started++;
        if (started == 2 && pthread_create(&S->maint, NULL, pp__maint_main, S) == 0) started++;
        if (started == 3) S->threads = 1;
        else {
            rc = PP_ESYS;
            pthread_mutex_lock(&S->wake_mu); S->stop = 1; pthread_cond_broadcast(&S->wake_cv); pthread_mutex_unlock(&S->wake_mu);
            if (started > 0) pthread_join(S->syncer, NULL);
            if (started > 1) pthread_join(S->grower, NULL);
        }
    }
    if (rc) { pp__store_free(S); return rc; }
    *out = S;
    return 0;
}

PPDEF int pp_open(pp_store **out, const pp_config *cfg) {
    pp__errno_seen = 0;
    return pp__open_done(pp__open(out, cfg));
}

static int pp__book_open(pp_store *S, const char *name, pp_book **out) {
    if (!S || !out) return PP_EINVAL;
    *out = NULL;
    int rc = pp_valid_name(name);
    if (rc) return rc;
    if (strcmp(name, "LOCK") == 0) return PP_ENAME;
    /* Held across lookup and creation: two threads opening the same new
     * instrument would otherwise both create (and rename over each other)
     * its first journal segment and register two books for one name. Other
     * books keep journaling meanwhile (open_mu is not on their path). */
    pthread_mutex_lock(&S->open_mu);
    pp_book *b = NULL;
    pthread_mutex_lock(&S->mu);
    for (size_t i = 0; i < S->nbooks && !b; i++)
        if (strcmp(S->books[i]->name, name) == 0) b = S->books[i];
    pthread_mutex_unlock(&S->mu);
    if (b) { pthread_mutex_unlock(&S->open_mu); *out = b; return 0; }
    for (size_t i = 0; i < S->nquar; i++)        /* set aside by pp_open: not recovered, not created */
        if (strcmp(S->quar[i].instrument, name) == 0) { pthread_mutex_unlock(&S->open_mu); return S->quar[i].error; }
    if (S->sj && pp__retired_iid(S, name)) { pthread_mutex_unlock(&S->open_mu); return PP_ERETIRED; }
    if (S->sj) {
        rc = pp__book_create2(S, name, &b);
        if (rc) PP__MSG(S, rc, "%s: cannot open the instrument: %s", name, pp_strerror(rc));
        pthread_mutex_unlock(&S->open_mu);
        if (rc) return rc;
        *out = b;
        return 0;
    }
    rc = pp__book_load(S, name, &b);
    if (rc) PP__MSG(S, rc, "%s: cannot open the instrument: %s", name, pp_strerror(rc));
    else if ((rc = pp__store_add(S, b)) != 0) pp__book_free(b);
    pthread_mutex_unlock(&S->open_mu);
    if (rc) return rc;
    *out = b;
    return 0;
}

PPDEF int pp_book_open(pp_store *S, const char *name, pp_book **out) {
    pp__errno_seen = 0;
    return pp__open_done(pp__book_open(S, name, out));
}

PPDEF int pp_books(pp_store *S, int (*visit)(const char *, pp_book *, void *), void *ctx) {
    if (!S || !visit) return PP_EINVAL;
    pp_book *b;
    for (size_t i = 0; (b = pp__book_at(S, i)) != NULL; i++) {
        int r = visit(b->name, b, ctx);
        if (r) return r;
    }
    return 0;
}

PPDEF int pp_book_retire(pp_store *S, const char *name) {
    if (!S || !name) return PP_EINVAL;
    int rc = pp_valid_name(name);
    if (rc) return rc;
    if (!S->sj) return PP_ENOTSUP;
    pthread_mutex_lock(&S->open_mu);
    if (pp__retired_iid(S, name)) {                  /* done before: finish moving its files */
        rc = pp__retire_files(S, name);
        pthread_mutex_unlock(&S->open_mu);
        return rc;
    }
    for (size_t i = 0; i < S->nquar; i++)        /* set aside by pp_open: its files stay as they are */
        if (strcmp(S->quar[i].instrument, name) == 0) { pthread_mutex_unlock(&S->open_mu); return S->quar[i].error; }
    pp_book *b = NULL;
    size_t at = 0;
    pthread_mutex_lock(&S->mu);
    for (size_t i = 0; i < S->nbooks && !b; i++) if (strcmp(S->books[i]->name, name) == 0) { b = S->books[i]; at = i; }
    pthread_mutex_unlock(&S->mu);
    if (!b) rc = PP_ENOENT;
    else if (b->batch && b->batch->on) rc = PP_EBUSY;
    /* its whole history durable first, so the archive gets all of it */
    if (!rc && !pp__load_acq(&b->err)) rc = pp__wait_durable(b, pp__load_acq(&b->last_seq));
    pp_book **g = NULL;
    if (!rc) {
        g = (pp_book **)PINNACLE_PERSIST_REALLOC(S->gone, (S->ngone + 1) * sizeof *g);
        if (!g) rc = PP_ENOMEM;
        else S->gone = g;
    }
    if (!rc) rc = pp__retired_write(S, b->iid, b->name);    /* the commit point */
    if (rc) {
        pthread_mutex_unlock(&S->open_mu);
        if (rc != PP_ENOENT && rc != PP_EBUSY) PP__MSG(S, rc, "%s: not retired: %s", name, pp_strerror(rc));
        return rc;
    }
    /* gone from the store: no lookup, no dispatch, no snapshot, no pin */
    int zero = 0;
    __atomic_compare_exchange_n(&b->err, &zero, PP_ERETIRED, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
    (void)pp__byid_set(S, b->iid, NULL);
    pthread_mutex_lock(&S->mu);
    PINNACLE_PERSIST_ASSERT(S->books[at] == b);
    memmove(S->books + at, S->books + at + 1, (S->nbooks - at - 1) * sizeof *S->books);
    S->nbooks--;
    pthread_mutex_unlock(&S->mu);
    S->gone[S->ngone++] = b;
    pthread_mutex_lock(&b->snap_mu);                 /* a snapshot in progress finishes first; later ones see the error */
    rc = pp__retire_files(S, name);
    pthread_mutex_unlock(&b->snap_mu);
    pthread_mutex_unlock(&S->open_mu);
    return rc;
}

PPDEF int pp_close(pp_store *S) {
    if (!S) return PP_EINVAL;
    if (S->threads) {
        pthread_mutex_lock(&S->wake_mu); S->stop = 1; pthread_cond_broadcast(&S->wake_cv); pthread_mutex_unlock(&S->wake_mu);
        if (S->sj && S->sj->wake_fd >= 0) { uint64_t one = 1; ssize_t n = write(S->sj->wake_fd, &one, sizeof one); (void)n; }
        pthread_join(S->maint, NULL);
        pthread_join(S->grower, NULL);
        pthread_join(S->syncer, NULL);
    }
    int rc = 0;
    for (size_t i = 0; i < S->nbooks; i++) {
        /* A snapshot of every book with events since its last one, so that
         * the next open replays little and compaction has something to cut
         * at, however often the process restarts. Its failure is logged by
         * pp__snapshot and loses nothing: the journal still holds it all. */
        pp_book *b = S->books[i];
        if (!(S->cfg.flags & PP_NO_AUTO_SNAPSHOT) && !pp__load_acq(&b->err) &&
            pp__load_acq(&b->last_seq) > pp__load_acq(&b->snap_newest)) {
            (void)pp__snapshot(b);
            if (!(S->cfg.flags & PP_NO_AUTO_COMPACT) && !S->sj) {
                if (b->mode == PP_JOURNAL_MMAP) (void)pp__compact_mmap(b, 0);
                else (void)pp__compact_strict(b, 0);
            }
        }
    }
    if (S->sj) {
        if (!(S->cfg.flags & PP_NO_AUTO_COMPACT)) (void)pp__store_compact(S, 0);
        int r = pp__store_sync(S, 0);
        if (!r) r = pp__store_sync(S, 0);        /* the durable mark goes with the second round */
        if (r) rc = r;
        if (S->sj->log) {                        /* strict: everything relayed is durable; its close says so */
            r = plg_close(S->sj->log);
            S->sj->log = NULL;
            if (r && !rc) rc = pp__from_plg(r);
        }
        for (size_t i = 0; i < S->nbooks && !rc; i++) if (pp__load_acq(&S->books[i]->err)) rc = pp__load_acq(&S->books[i]->err);
    }
    for (size_t i = 0; i < S->nbooks && !S->sj; i++) {
        pp_book *b = S->books[i];
        int r = pp__load_acq(&b->err);
        if (!r && b->mode == PP_JOURNAL_MMAP) r = pp__sync_mmap(b, 0);
        if (!r && b->mode == PP_JOURNAL_STRICT) {
            r = plg_close(b->log);
            b->log = NULL;
            if (r) r = pp__from_plg(r);
        }
        if (r && !rc) rc = r;
    }
    pp__store_free(S);
    return rc;
}

/* ---- the hot path ---- */
static inline uint64_t pp__now(const pp_book *b) {
    const pp_config *c = &b->s->cfg;
    if (c->clock_ns) return c->clock_ns(c->clock_user);
    uint64_t t;
    if (pp__tsc_now(&b->s->clk, &t)) return t;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* pl/plen: the event's payload (format 2 only; pp_apply checked it). */
static inline int pp__journal_pl(pp_book *b, pp__ev *v, const uint8_t *pl, uint32_t plen) {
    int err = pp__load_rlx(&b->err);
    if (__builtin_expect(err != 0, 0)) return err;
    if (b->batch && b->batch->on) {   /* in a batch: kept until pp_batch_commit writes them as one frame */
        pp__batch *B = b->batch;
        uint32_t el = PP__SJ_EVFRAME + pp__sj_pl_room(plen);
        if (B->n == PP_BATCH_MAX || B->bytes + el > PP__BATCH_BYTES) return PP_ETOOBIG;
        v->seq = b->last + 1 + B->n;
        B->plen[B->n] = (uint16_t)plen; B->ploff[B->n] = B->pl_used;
        if (plen) memcpy(B->pl + B->pl_used, pl, plen);
        B->pl_used += plen; B->bytes += el;
        B->ev[B->n++] = *v;
        return 0;
    }
    v->seq = b->last + 1;
    if (b->iid) {                 /* format 2: one frame of the store journal */
        pp__sj *j = b->s->sj;
        pp__sjclaim c;
        uint32_t len = PP__SJ_EVFRAME + pp__sj_pl_room(plen);
        int rc = pp__load_rlx(&j->err);
        if (!rc) rc = pp__sj_claim(j, len, &c);
        if (__builtin_expect(rc != 0, 0)) { pp__poison(b, rc); return rc; }
        pp__sj_enc_ev(c.f, b->iid, v);
        if (plen) pp__sj_put_pl(c.f, pl, plen);
        pp__sj_publish(c.f, c.seed, c.pos, len);
        pp__sj_nudge(j);
        if (__builtin_expect(b->first_pos == UINT64_MAX, 0)) pp__store_rel(&b->first_pos, c.pos);
        PINNACLE_PERSIST_ASSERT(v->seq == b->last + 1);
        b->last = v->seq;
        pp__store_rel(&b->last_seq, v->seq);
        return 0;
    }
    uint8_t e[PP__ENTRY];
    if (b->mode == PP_JOURNAL_MMAP) {
        if (__builtin_expect(b->woff + PP__ENTRY > b->lim || (pp__load_rlx(&b->ctl) & PP__CTL_ROLL), 0)) {
            int rc = pp__room_slow(b);
            if (rc) return rc;
            if (b->woff + PP__ENTRY > b->lim) { pp__poison(b, PP_ENOSPC); return PP_ENOSPC; }
        }
        pp__enc(b->cur->base + b->woff, b->seed, v);
        memcpy(e, b->cur->base + b->woff, PP__ENTRY);
        b->woff += PP__ENTRY;
        pp__store_rel(&b->cur->pub_end, b->woff);
    } else {
        pp__enc(e, b->seed, v);
        int64_t r = plg_append(b->log, e, PP__ENTRY);
        if (r < 0) {
            int rc = pp__from_plg((int)r);
            if (rc != PP_EFULL) pp__poison(b, rc);
            return rc;
        }
        if ((uint64_t)r != v->seq) { pp__poison(b, PP_ECORRUPT); return PP_ECORRUPT; }
    }
    /* to the shadow: the ring; when full, drain it here (the maintainer lags) */
    if (__builtin_expect(b->head - b->tail_cache > b->ring_mask, 0)) {
        b->tail_cache = pp__load_acq(&b->ring_tail);
        if (b->head - b->tail_cache > b->ring_mask) {
            pthread_mutex_lock(&b->shadow_mu);
            int rc = pp__drain_n(b, 256);      /* just make room: a bounded stall */
            pthread_mutex_unlock(&b->shadow_mu);
            pp__bump(&b->st_ring_full);
            if (rc) pp__poison(b, rc);
            b->tail_cache = pp__load_acq(&b->ring_tail);
        }
    }
    memcpy(b->ring + (b->head & b->ring_mask) * PP__ENTRY, e, PP__ENTRY);
    b->head++;
    pp__store_rel(&b->ring_head, b->head);
    b->last = v->seq;
    pp__store_rel(&b->last_seq, v->seq);
    return 0;
}
static inline int pp__journal(pp_book *b, pp__ev *v) { return pp__journal_pl(b, v, NULL, 0); }

/* ---- the hot-path index: incremental growth ----
 * At half load the index moves to a table twice the size without stopping
 * the trading thread: the new table (zeroed ahead by the maintainer when it
 * can) takes every insertion, and each event migrates PP__MIG_STEP slots of
 * the old one. Until the old table is empty, lookups try the new table,
 * then the old; the old one is never inserted into, and a deletion there is
 * a tombstone (qty PP__TOMB), so no entry shifts past the migration point. */
#define PP__MIG_STEP 16
#define PP__TOMB INT64_MIN
static inline pp__islot *pp__hfind(pp_book *b, uint64_t id) {
    pp__islot *s = pp__idx_find(&b->idx, id);
    if (s || !b->idx_old.t) return s;
    s = pp__idx_find(&b->idx_old, id);
    return s && s->qty != PP__TOMB ? s : NULL;
}

static inline int pp__in_old(const pp_book *b, const pp__islot *s) {
    return b->idx_old.t && s >= b->idx_old.t && s <= b->idx_old.t + b->idx_old.mask;
}

static inline void pp__hdel(pp_book *b, pp__islot *s) {
    if (pp__in_old(b, s)) { s->qty = PP__TOMB; return; }
    uint64_t id = s->id;
    pp__idx_del(&b->idx, s);
    if (b->idx_old.t) {                           /* its migrated copy must not come back */
        pp__islot *o = pp__idx_find(&b->idx_old, id);
        if (o) o->qty = PP__TOMB;
    }
}

static void pp__hmigrate(pp_book *b, uint64_t steps) {
    uint64_t cap = b->idx_old.mask + 1, end = b->idx_mig + steps < cap ? b->idx_mig + steps : cap;
    for (uint64_t i = b->idx_mig; i < end; i++) {
        const pp__islot *o = &b->idx_old.t[i];
        if (!o->id || o->qty == PP__TOMB) continue;
        PINNACLE_PERSIST_ASSERT(!pp__idx_find(&b->idx, o->id));
        *pp__idx_slot(&b->idx, o->id) = *o;
        b->idx.n++;
    }
    b->idx_mig = end;
    if (end < cap) return;
    pp__islot *done = b->idx_old.t;               /* freeing 100s of MiB is not the trading thread's job */
    b->idx_old.t = NULL; b->idx_old.n = 0; b->idx_old.mask = 0;
    pp__islot *none = NULL;
    if (!(b->iid && !(b->s->cfg.flags & PP_NO_THREADS) &&      /* no maintainer: nobody else would */
          __atomic_compare_exchange_n(&b->idx_garbage, &none, done, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED)))
        PINNACLE_PERSIST_FREE(done);
}

static inline void pp__hstep(pp_book *b) {
    if (__builtin_expect(b->idx_old.t != NULL, 0)) pp__hmigrate(b, PP__MIG_STEP);
    pp__store_rlx(&b->idx_n_pub, b->idx.n + b->idx_old.n);
}

/* Room for one more entry: starts a growth at half load. */
static int pp__hroom(pp_book *b) {
    if (__builtin_expect((b->idx.n + 1) * 2 <= b->idx.mask + 1, 1)) return 0;
    if (b->idx_old.t) pp__hmigrate(b, UINT64_MAX);  /* cannot happen at these loads; finish, to be sure */
    if ((b->idx.n + 1) * 2 <= b->idx.mask + 1) return 0;
    uint64_t cap = (b->idx.mask + 1) * 2;
    pp__islot *t = __atomic_exchange_n(&b->idx_spare, (pp__islot *)NULL, __ATOMIC_ACQUIRE);
    if (t) {
        uint64_t have = b->idx_spare_cap;
        pp__store_rel(&b->idx_spare_busy, 0);     /* the maintainer may make the next one */
        if (have != cap) { PINNACLE_PERSIST_FREE(t); t = NULL; }
    }
    if (!t) {
        t = (pp__islot *)pp__alloc((size_t)cap * sizeof *t);
        if (!t) return PP_ENOMEM;
        pp__bump(&b->st_grow);                    /* the maintainer had none ready: made here */
    }
    b->idx_old = b->idx;
    b->idx_old.n = 0;                             /* entries left there are counted in idx.n when migrated */
    b->idx.t = t; b->idx.mask = cap - 1; b->idx.n = 0;
    b->idx_mig = 0;
    pp__store_rlx(&b->idx_cap_pub, cap);
    pp__hmigrate(b, PP__MIG_STEP);
    return 0;
}

/* Maintainer (format 2): free a migrated-out table, and make the next one
 * ahead when the index passed a third of its size. */
static void pp__idx_upkeep(pp_book *b) {
    pp__islot *g = __atomic_exchange_n(&b->idx_garbage, (pp__islot *)NULL, __ATOMIC_ACQUIRE);
    PINNACLE_PERSIST_FREE(g);
    uint64_t cap = pp__load_rlx(&b->idx_cap_pub), n = pp__load_rlx(&b->idx_n_pub);
    if (!cap || n * 3 <= cap || pp__load_acq(&b->idx_spare_busy)) return;
    pp__islot *t = (pp__islot *)pp__alloc((size_t)(cap * 2) * sizeof *t);
    if (!t) return;
    b->idx_spare_cap = cap * 2;
    pp__store_rlx(&b->idx_spare_busy, 1);
    pp__store_rel(&b->idx_spare, t);          /* only the maintainer publishes, only when none is out */
}

/* A price the store accepts: > 0, or anything with PP_ALLOW_NONPOSITIVE_PRICES. */
static inline int pp__price_ok(const pp_book *b, int64_t px) {
    return px > 0 || (b->s->cfg.flags & PP_ALLOW_NONPOSITIVE_PRICES) != 0;
}

/* In a batch: the index entry of id as it was before the event just
 * buffered (qty 0: absent), for pp_batch_abort. */
static inline void pp__batch_note(pp_book *b, uint64_t id, int64_t qty_before) {
    pp__batch *B = b->batch;
    if (!B || !B->on) return;
    PINNACLE_PERSIST_ASSERT(B->n >= 1);
    B->undo[B->n - 1].id = id;
    B->undo[B->n - 1].qty = qty_before;
}

/* Put the hot-path index back as it was before the batch: each event's
 * change undone, last first (by id: growth may have moved the slots). */
static int pp__batch_undo(pp_book *b) {
    pp__batch *B = b->batch;
    int rc = 0;
    for (uint32_t k = B->n; k-- > 0;) {
        uint64_t id = B->undo[k].id;
        int64_t q = B->undo[k].qty;
        pp__islot *s = pp__hfind(b, id);
        if (s && q == 0) pp__hdel(b, s);                 /* undo an add */
        else if (s) s->qty = q;                          /* undo a fill or a modify */
        else if (q > 0) {                                /* undo a cancel or a fill to 0 */
            if (pp__hroom(b)) { rc = PP_ENOMEM; continue; }
            s = pp__idx_slot(&b->idx, id);
            s->id = id; s->qty = q;
            b->idx.n++;
        }
        pp__hstep(b);
    }
    B->n = 0; B->bytes = PP__SJ_EVFRAME; B->pl_used = 0;
    B->on = 0;
    if (rc) pp__poison(b, rc);       /* the index no longer matches the journal: stop */
    return rc;
}

PPDEF int pp_batch_begin(pp_book *b) {
    if (!b) return PP_EINVAL;
    if (!b->iid) return PP_ENOTSUP;  /* per-instrument layout or strict mode: no batch frame there */
    if (b->batch && b->batch->on) return PP_EINVAL;
    int err = pp__load_rlx(&b->err);
    if (err) return err;
    if (!b->batch) {
        b->batch = (pp__batch *)pp__alloc(sizeof *b->batch);
        if (!b->batch) return PP_ENOMEM;
    }
    b->batch->n = 0; b->batch->bytes = PP__SJ_EVFRAME; b->batch->pl_used = 0;
    b->batch->on = 1;
    return 0;
}

PPDEF int pp_batch_abort(pp_book *b) {
    if (!b || !b->batch || !b->batch->on) return PP_EINVAL;
    return pp__batch_undo(b);
}

/* The batch as ONE frame of the store journal: one claim, one commit word. */
PPDEF int pp_batch_commit(pp_book *b) {
    if (!b || !b->batch || !b->batch->on) return PP_EINVAL;
    pp__batch *B = b->batch;
    uint32_t n = B->n;
    if (n == 0) { B->on = 0; return 0; }
    PINNACLE_PERSIST_ASSERT(b->iid != 0);
    PINNACLE_PERSIST_ASSERT(n <= PP_BATCH_MAX);
    PINNACLE_PERSIST_ASSERT(B->ev[0].seq == b->last + 1);
    PINNACLE_PERSIST_ASSERT(B->ev[n - 1].seq == b->last + n);
    pp__sj *j = b->s->sj;
    uint32_t len = B->bytes;
    PINNACLE_PERSIST_ASSERT(len <= PP__SJ_MAXFRAME);
    pp__sjclaim c;
    int rc = pp__load_rlx(&b->err);
    if (!rc) rc = pp__load_rlx(&j->err);
    if (!rc) rc = pp__sj_claim(j, len, &c);
    if (rc) {
        pp__poison(b, rc);
        (void)pp__batch_undo(b);
        return rc;
    }
    memset(c.f + 8, 0, PP__SJ_EVFRAME - 8);
    c.f[8] = PP__SJ_BATCH;
    c.f[10] = (uint8_t)(n & 0xff); c.f[11] = (uint8_t)(n >> 8);
    pp__put32(c.f + 12, b->iid);
    pp__put64(c.f + 16, B->ev[0].seq);
    pp__put64(c.f + 24, B->ev[n - 1].seq);
    uint8_t *e = c.f + PP__SJ_EVFRAME;
    for (uint32_t k = 0; k < n; k++) {
        memset(e, 0, 8);
        pp__sj_enc_ev(e, b->iid, &B->ev[k]);
        pp__sj_put_pl(e, B->pl + B->ploff[k], B->plen[k]);
        e += PP__SJ_EVFRAME + pp__sj_pl_room(B->plen[k]);
    }
    PINNACLE_PERSIST_ASSERT(e == c.f + len);
    pp__sj_publish(c.f, c.seed, c.pos, len);
    pp__sj_nudge(b->s->sj);
    if (__builtin_expect(b->first_pos == UINT64_MAX, 0)) pp__store_rel(&b->first_pos, c.pos);
    b->last = B->ev[n - 1].seq;
    pp__store_rel(&b->last_seq, b->last);
    B->n = 0; B->bytes = PP__SJ_EVFRAME; B->pl_used = 0;
    B->on = 0;
    return 0;
}

/* >>engine: every order event goes through here (the four calls below are
 * shorthands): validated against the hot-path index, then journaled. */
PPDEF int pp_apply(pp_book *b, const pp_event *e) {
    if (!b || !e || e->order_id == 0) return PP_EINVAL;
    const uint8_t *pl = (const uint8_t *)e->payload;
    uint32_t plen = e->payload_len;
    if (plen && (plen > PP_PAYLOAD_MAX || !pl)) return PP_EINVAL;
    if (plen && !b->iid) return PP_ENOTSUP;      /* only the store journal (format 2) has room for it */
    uint64_t id = e->order_id;
    pp__islot *s;
    pp__ev v;
    int rc;
    v.id = id; v.price = e->price; v.qty = e->qty; v.side = 0; v.type = e->type;
    switch (e->type) {
    case PP_EV_ADD:
        if (e->qty <= 0 || (e->side != PP_BUY && e->side != PP_SELL) || !pp__price_ok(b, e->price)) return PP_EINVAL;
        if (pp__hfind(b, id)) return PP_EEXIST;
        if (pp__hroom(b)) return PP_ENOMEM;
        v.side = e->side; v.ts = e->ts_ns;      /* the order's own timestamp, as given */
        if ((rc = pp__journal_pl(b, &v, pl, plen)) != 0) return rc;
        pp__batch_note(b, id, 0);
        s = pp__idx_slot(&b->idx, id);
        s->id = id; s->qty = e->qty;
        b->idx.n++;
        break;
    case PP_EV_CANCEL:
        if (e->side || e->price || e->qty) return PP_EINVAL;
        if (!(s = pp__hfind(b, id))) return PP_ENOENT;
        v.ts = e->ts_ns ? e->ts_ns : pp__now(b);
        if ((rc = pp__journal_pl(b, &v, pl, plen)) != 0) return rc;
        pp__batch_note(b, id, s->qty);
        pp__hdel(b, s);
        break;
    case PP_EV_EXECUTE:
        if (e->side || e->qty <= 0 || !pp__price_ok(b, e->price)) return PP_EINVAL;
        if (!(s = pp__hfind(b, id))) return PP_ENOENT;
        if (e->qty > s->qty) return PP_EOVERFILL;
        v.side = e->qty == s->qty;              /* the entry says the fill leaves qty 0 */
        v.ts = e->ts_ns ? e->ts_ns : pp__now(b);
        if ((rc = pp__journal_pl(b, &v, pl, plen)) != 0) return rc;
        pp__batch_note(b, id, s->qty);
        s->qty -= e->qty;
        PINNACLE_PERSIST_ASSERT(s->qty >= 0);
        if (s->qty == 0) pp__hdel(b, s);
        break;
    case PP_EV_MODIFY:
        if (e->side || e->qty <= 0 || !pp__price_ok(b, e->price)) return PP_EINVAL;
        if (!(s = pp__hfind(b, id))) return PP_ENOENT;
        v.ts = e->ts_ns ? e->ts_ns : pp__now(b);
        if ((rc = pp__journal_pl(b, &v, pl, plen)) != 0) return rc;
        pp__batch_note(b, id, s->qty);
        s->qty = e->qty;
        break;
    default:
        return PP_EINVAL;                       /* market data goes through pp_tick_append */
    }
    pp__hstep(b);
    return 0;
}

static inline pp_event pp__event(int type, uint64_t id, int64_t price, int64_t qty) {
    pp_event e;
    memset(&e, 0, sizeof e);
    e.type = type; e.order_id = id; e.price = price; e.qty = qty;
    return e;
}

PPDEF int pp_add(pp_book *b, const pp_order *o) {
    if (!o) return PP_EINVAL;
    pp_event e = pp__event(PP_EV_ADD, o->id, o->price, o->qty);
    e.side = o->side; e.ts_ns = o->ts_ns;
    return pp_apply(b, &e);
}

PPDEF int pp_cancel(pp_book *b, uint64_t id) {
    pp_event e = pp__event(PP_EV_CANCEL, id, 0, 0);
    return pp_apply(b, &e);
}

PPDEF int pp_execute(pp_book *b, uint64_t id, int64_t qty, int64_t price) {
    pp_event e = pp__event(PP_EV_EXECUTE, id, price, qty);
    return pp_apply(b, &e);
}

PPDEF int pp_modify(pp_book *b, uint64_t id, int64_t price, int64_t qty) {
    pp_event e = pp__event(PP_EV_MODIFY, id, price, qty);
    return pp_apply(b, &e);
}

/* >>reader: the audit trail (pp_journal_*), format 2 */
struct pp_journal {
    pp_event *ev; size_t n, cap, at; uint32_t iid; uint64_t from, to;
    size_t *ploff;                   /* per event: where its payload starts in pl */
    uint8_t *pl; size_t pl_n, pl_cap;
    uint64_t lo, hi;             /* the lowest and highest seq in [from, to] of any entry, market data too (pp_book_at) */
};

static void pp__jr_note(pp_journal *j, uint64_t seq) {
    if (seq < j->from || seq > j->to) return;
    if (!j->lo || seq < j->lo) j->lo = seq;
    if (seq > j->hi) j->hi = seq;
}

static int pp__jr_ev(pp_journal *j, const uint8_t *f);
static int pp__jr_frame(void *ctx, uint64_t pos, const uint8_t *f, uint32_t len) {
    pp_journal *j = (pp_journal *)ctx;
    (void)pos;
    if (pp__get32(f + 12) != j->iid) return 0;
    if (f[8] == PP__SJ_BATCH) {                  /* a batch: its events one by one */
        uint32_t n = pp__sj_batch_count(f, len);
        if (!n) return PP_ECORRUPT;
        const uint8_t *e = PP__SJ_BATCH_FIRST(f);
        for (uint32_t k = 0; k < n; k++, e = PP__SJ_BATCH_NEXT(e)) {
            pp__jr_note(j, pp__get64(e + 16));
            int rc = pp__jr_ev(j, e);
            if (rc) return rc;
        }
        return 0;
    }
    if (!pp__is_evtype(f[8])) return 0;
    if (len != pp__sj_ev_len(f)) return PP_ECORRUPT;
    pp__jr_note(j, pp__get64(f + 16));
    if (f[8] < PP_EV_ADD || f[8] > PP_EV_MODIFY) return 0;
    return pp__jr_ev(j, f);
}

/* One event into the reader: in its seq range, after the last one (a
 * book's seqs only grow along the journal). */
static int pp__jr_add(pp_journal *j, const pp__ev *v, const uint8_t *pl, uint32_t plen) {
    if (v->seq < j->from || v->seq > j->to) return 0;
    if (j->n && v->seq <= j->ev[j->n - 1].seq) return PP_ECORRUPT;
    if (j->n == j->cap) {
        size_t nc = j->cap ? j->cap * 2 : 256;
        pp_event *e = (pp_event *)PINNACLE_PERSIST_REALLOC(j->ev, nc * sizeof *e);
        if (!e) return PP_ENOMEM;
        j->ev = e;
        size_t *o = (size_t *)PINNACLE_PERSIST_REALLOC(j->ploff, nc * sizeof *o);
        if (!o) return PP_ENOMEM;
        j->ploff = o; j->cap = nc;
    }
    if (plen && j->pl_n + plen > j->pl_cap) {
        size_t nc = j->pl_cap ? j->pl_cap * 2 : 4096;
        while (nc < j->pl_n + plen) nc *= 2;
        uint8_t *q = (uint8_t *)PINNACLE_PERSIST_REALLOC(j->pl, nc);
        if (!q) return PP_ENOMEM;
        j->pl = q; j->pl_cap = nc;
    }
    j->ploff[j->n] = j->pl_n;
    if (plen) { memcpy(j->pl + j->pl_n, pl, plen); j->pl_n += plen; }
    pp_event *e = &j->ev[j->n++];
    memset(e, 0, sizeof *e);
    e->payload_len = plen;
    e->type = v->type; e->order_id = v->id; e->seq = v->seq; e->ts_ns = v->ts;
    e->side = v->type == PP_EV_ADD ? (uint8_t)v->side : 0;     /* an execute's side byte is internal ("leaves 0") */
    if (v->type != PP_EV_CANCEL) { e->price = v->price; e->qty = v->qty; }
    return 0;
}

static int pp__jr_ev(pp_journal *j, const uint8_t *f) {
    pp__ev v;
    pp__sj_dec_ev(f, &v);
    return pp__jr_add(j, &v, f + PP__SJ_EVFRAME, pp__sj_ev_plen(f));
}

/* The archived segments first (archive_dir): every frame they hold, in
 * order; *live_from is then where the live journal takes over (the end of
 * the last archived segment: a segment in both places after a crash in the
 * middle of a move is read once), 0 when nothing is archived. */
static int pp__jr_archive(pp_store *S, pp_journal *j, pp__sjwhere *w, uint64_t *live_from) {
    *live_from = 0;
    if (!S->sj->archive || S->sj->log) return 0;   /* strict: picolog's reader reads the archive (pp__sj_adir) */
    pp__sj *a = NULL;
    int rc = pp__sj_open(&a, S->sj->archive, S->sj->data_bytes, 1, 0, pp__jr_frame, j, w);
    if (!rc && a->data_bytes != S->sj->data_bytes) {
        rc = PP_ECORRUPT;
        snprintf(w->detail, sizeof w->detail, "archived segments of another size");
    }
    if (!rc && a->tail > a->data_bytes) *live_from = a->tail;   /* tail: (last archived index + 1) * data_bytes */
    if (a) pp__sj_free(a);
    return rc;
}

PPDEF int pp_journal_open(pp_store *S, const char *name, uint64_t from_seq, pp_journal **out) {
    if (!S || !name || !out) return PP_EINVAL;
    *out = NULL;
    int rc = pp_valid_name(name);
    if (rc) return rc;
    if (!S->sj) return PP_EFORMAT;
    pp_book *b = NULL;
    pthread_mutex_lock(&S->mu);
    for (size_t i = 0; i < S->nbooks && !b; i++) if (strcmp(S->books[i]->name, name) == 0) b = S->books[i];
    pthread_mutex_unlock(&S->mu);
    uint32_t retired = 0;
    if (!b) {                                      /* a retired instrument: its history, all durable */
        pthread_mutex_lock(&S->open_mu);
        retired = pp__retired_iid(S, name);
        pthread_mutex_unlock(&S->open_mu);
    }
    if ((!b || !b->iid) && !retired) return PP_ENOENT;
    pp_journal *j = (pp_journal *)pp__alloc(sizeof *j);
    if (!j) return PP_ENOMEM;
    j->iid = b ? b->iid : retired; j->from = from_seq; j->to = b ? pp_durable(b) : UINT64_MAX;
    pp__sj *sj = NULL;
    pp__sjwhere w;
    uint64_t from_pos = 0;
    memset(&w, 0, sizeof w);
    pthread_mutex_lock(&S->open_mu);      /* no segment file is removed while they are read */
    while (S->jr_hold) pthread_cond_wait(&S->jr_cv, &S->open_mu);
    S->jreaders++;
    pthread_mutex_unlock(&S->open_mu);
    rc = pp__jr_archive(S, j, &w, &from_pos);
    pp__sj_keys = S->cfg.strict_log;      /* strict: an encrypted log's keys */
    pp__sj_adir = S->sj->log ? S->sjadir : NULL;   /* strict: the archived segments, then the log's */
    if (!rc) rc = pp__sj_open(&sj, S->sj->dir, S->sj->data_bytes, 1, from_pos, pp__jr_frame, j, &w);
    pp__sj_keys = NULL;
    pp__sj_adir = NULL;
    if (!rc && from_pos && sj->first_index * sj->data_bytes > from_pos) {
        rc = PP_ECORRUPT;                /* segments missing between the archive and the live journal */
        snprintf(w.detail, sizeof w.detail, "segments %llu..%llu are in neither the archive nor the journal",
                 (unsigned long long)(from_pos / sj->data_bytes), (unsigned long long)(sj->first_index - 1));
        pp__strlcpy(w.file, S->sj->archive, sizeof w.file);
    }
    pthread_mutex_lock(&S->open_mu);
    if (--S->jreaders == 0) pthread_cond_broadcast(&S->jr_cv);
    pthread_mutex_unlock(&S->open_mu);
    if (sj) pp__sj_free(sj);
    if (rc) {
        PP__MSG(S, rc, "%s: journal reader: %s%s%s%s%s", name, pp_strerror(rc), w.file[0] ? ": " : "", w.file,
                w.detail[0] ? ": " : "", w.detail);
        pp_journal_close(j);
        return rc;
    }
    *out = j;
    return 0;
}

PPDEF int pp_journal_next(pp_journal *j, pp_event *ev) {
    if (!j || !ev) return PP_EINVAL;
    if (j->at == j->n) return 0;
    *ev = j->ev[j->at];
    ev->payload = ev->payload_len ? j->pl + j->ploff[j->at] : NULL;
    j->at++;
    return 1;
}

PPDEF void pp_journal_close(pp_journal *j) {
    if (!j) return;
    PINNACLE_PERSIST_FREE(j->ev);
    PINNACLE_PERSIST_FREE(j->ploff);
    PINNACLE_PERSIST_FREE(j->pl);
    PINNACLE_PERSIST_FREE(j);
}

/* pp_journal_open_dir: one order event into the reader */
static int pp__jr_push(pp_journal *j, const pp__ev *v) {
    if (v->type < PP_EV_ADD || v->type > PP_EV_MODIFY) return 0;
    return pp__jr_add(j, v, NULL, 0);
}

/* The instrument's id in a name list of a format-2 store: the catalog
 * (instruments.ppc) or the retired list (retired.ppr) (0: not there). */
typedef struct pp__catfind { const char *name; uint32_t iid; } pp__catfind;
static int pp__cat_find_entry(void *ctx, uint32_t iid, const char *name, size_t nl) {
    pp__catfind *f = (pp__catfind *)ctx;
    (void)nl;
    if (strcmp(name, f->name) != 0) return 0;
    f->iid = iid;
    return 1;
}
static uint32_t pp__names_find(const char *data_dir, const char *file, const char *magic, const char *name) {
    pp__catfind f = {name, 0};
    (void)pp__cat_walk(data_dir, file, magic, pp__cat_find_entry, &f);   /* damage: up to it */
    return f.iid;
}
static uint32_t pp__cat_find(const char *data_dir, const char *name) {
    return pp__names_find(data_dir, "instruments.ppc", PP__CAT_MAGIC, name);
}

/* format 2: the declaration gives the id when the catalog does not have it yet */
typedef struct pp__jrdir { pp_journal *j; const char *name; } pp__jrdir;
static int pp__jrdir_frame(void *ctx, uint64_t pos, const uint8_t *f, uint32_t len) {
    pp__jrdir *d = (pp__jrdir *)ctx;
    if (f[8] == PP__SJ_DECLARE) {
        if (!d->j->iid && (size_t)f[9] == strlen(d->name) && memcmp(f + 24, d->name, f[9]) == 0) d->j->iid = pp__get32(f + 12);
        return 0;
    }
    return d->j->iid ? pp__jr_frame(d->j, pos, f, len) : 0;
}

/* the per-instrument layout, mmap mode: segments in order, each entry's seq
 * the next one, to the first entry that is not valid */
static int pp__jr_segments(const char *jd, pp_journal *j) {
    uint64_t *v = NULL; size_t n = 0;
    int rc = pp__list_numbered(jd, ".ppj", 0, &v, &n);
    uint64_t expect = 0;
    int end = 0;
    char path[4096];
    for (size_t i = 0; i < n && !rc && !end; i++) {
        uint8_t *p = NULL; uint64_t size = 0, salt = 0, index = 0, first = 0;
        pp__numbered(path, sizeof path, jd, v[i], ".ppj");
        rc = pp__map_ro(path, &p, &size);
        if (rc) break;
        if (!p || pp__hdr_decode(p, &salt, &index, &first) != 0 || index != v[i] || !first || (expect && first != expect)) end = 1;
        uint32_t seed = end ? 0 : pp__seed(salt);
        uint64_t off = PP__DATA_OFF;
        pp__ev e;
        if (!end) expect = first;
        while (!end && !rc && off + PP__ENTRY <= size && pp__dec(p + off, seed, &e) && e.seq == expect) {
            rc = pp__jr_push(j, &e);
            off += PP__ENTRY; expect++;
        }
        if (!end && off + PP__ENTRY <= size && pp__get32(p + off)) end = 1;   /* an invalid entry, not the zeros after the last */
        if (p) munmap(p, size);
    }
    PINNACLE_PERSIST_FREE(v);
    return rc;
}

/* the per-instrument layout, strict mode: the picolog log, one entry a record */
static int pp__jr_strict(const char *ld, pp_journal *j) {
    plg_reader *rd = NULL;
    int rc = plg_reader_open(&rd, ld);
    if (rc) return pp__from_plg(rc);
    uint32_t seed = pp__seed(0);
    plg_record rec;
    while ((rc = plg_reader_next(rd, &rec)) == 1) {
        pp__ev e;
        if (rec.len != PP__ENTRY || !pp__dec((const uint8_t *)rec.data, seed, &e) || e.seq != rec.seq) break;
        if ((rc = pp__jr_push(j, &e)) != 0) break;
    }
    plg_reader_close(rd);
    if (rc >= 0 || rc == PLG_ECORRUPT) return 0;   /* the end of the valid log (pp_check says if it is damage) */
    return rc > -30300 && rc <= -30200 ? rc : pp__from_plg(rc);   /* our own error, or picolog's */
}

PPDEF int pp_journal_open_dir(const char *data_dir, const char *name, uint64_t from_seq, pp_journal **out) {
    return pp_journal_open_archive(data_dir, NULL, name, from_seq, out);
}

static int pp__book_at_jopen_dir(void *jctx, uint64_t from_seq, pp_journal **out);
typedef struct pp__atdir { const char *dir, *adir, *name; int again; } pp__atdir;
PPDEF int pp_journal_open_archive(const char *data_dir, const char *archive_dir, const char *name, uint64_t from_seq,
                                  pp_journal **out) {
    if (!data_dir || !name || !out) return PP_EINVAL;
    *out = NULL;
    int rc = pp_valid_name(name);
    if (rc) return rc;
    if (archive_dir && !archive_dir[0]) archive_dir = NULL;
    char *mk = pp__join(data_dir, "STORE"), *dir = pp__join(data_dir, name);
    char *ijd = dir ? pp__join(dir, "journal") : NULL, *ild = dir ? pp__join(dir, "strict") : NULL;
    struct stat st;
    if (!mk || !ijd || !ild) rc = PP_ENOMEM;
    else if (stat(mk, &st) == 0) {                        /* format 2: the archive's part, then the live one */
        pp__atdir t;
        t.dir = data_dir; t.adir = archive_dir; t.name = name; t.again = 0;
        for (int attempt = 0; attempt < 4; attempt++) {   /* a compaction moved segments meanwhile: again */
            rc = pp__book_at_jopen_dir(&t, from_seq, out);
            if (!rc || !t.again) break;
        }
    } else if (archive_dir) {
        rc = PP_ENOTSUP;                                  /* the per-instrument layout keeps no archive */
    } else {
        pp_journal *j = (pp_journal *)pp__alloc(sizeof *j);
        if (!j) rc = PP_ENOMEM;
        else {
            j->from = from_seq; j->to = UINT64_MAX;
            if (pp__is_dir(ijd)) rc = pp__jr_segments(ijd, j);
            else if (pp__is_dir(ild)) rc = pp__jr_strict(ild, j);
            else rc = PP_ENOENT;
            if (rc) pp_journal_close(j);
            else *out = j;
        }
    }
    PINNACLE_PERSIST_FREE(mk); PINNACLE_PERSIST_FREE(dir);
    PINNACLE_PERSIST_FREE(ijd); PINNACLE_PERSIST_FREE(ild);
    return rc;
}

/* the error pp_wait returns: the book's, or (format 2) the store journal's */
static int pp__wait_err(const pp_book *b) {
    int e = pp__load_acq(&b->err);
    if (!e && b->iid) e = pp__load_acq(&b->s->sj->err);
    return e;
}

/* A poisoned book's sync reports its error even when everything it
 * journaled is already durable: it acknowledges nothing more. */
PPDEF int pp_sync(pp_book *b) {
    if (!b) return PP_EINVAL;
    int rc = pp__wait_err(b);
    if (rc) return rc;
    return pp__wait_durable(b, pp__load_acq(&b->last_seq));
}

/* pp_wait without a syncer (PP_NO_THREADS): sync rounds here, at least
 * one, until seq is durable or the timeout passed (format 2: a frame
 * another thread claimed before ours may still be unpublished, and a round
 * stops there). */
static int pp__wait_rounds(pp_book *b, uint64_t seq, int64_t timeout_ns) {
    PINNACLE_PERSIST_ASSERT(b->s->cfg.flags & PP_NO_THREADS);
    PINNACLE_PERSIST_ASSERT(b->mode == PP_JOURNAL_MMAP);     /* strict mode waits on picolog's own thread */
    uint64_t deadline = timeout_ns > 0 ? plg_now_ns() + (uint64_t)timeout_ns : 0;
    for (;;) {
        int rc = b->iid ? pp__store_sync(b->s, 0) : pp__sync_mmap(b, 0);
        if (rc) { if (b->iid) pp__poison(b, rc); return rc; }
        if (pp_durable(b) >= seq) return 0;
        if ((rc = pp__wait_err(b)) != 0) return rc;
        if (timeout_ns == 0 || (timeout_ns > 0 && plg_now_ns() >= deadline)) return PP_ETIMEDOUT;
        sched_yield();
    }
}

PPDEF int pp_wait(pp_book *b, uint64_t seq, int64_t timeout_ns) {
    if (!b) return PP_EINVAL;
    if (pp_durable(b) >= seq) return 0;
    int rc = pp__wait_err(b);
    if (rc) return rc;
    if (seq > pp_last_seq(b)) return PP_EINVAL;      /* as plg_wait: never journaled, it cannot become durable */
    if (b->mode == PP_JOURNAL_STRICT && !b->iid) {   /* picolog's own wait (futex on its durable mark) */
        int r = plg_wait(b->log, seq, timeout_ns);
        if (r == PLG_ETIMEDOUT) return PP_ETIMEDOUT;
        if (r) { r = pp__from_plg(r); pp__poison(b, r); return r; }
        if (seq > pp__load_rlx(&b->durable)) pp__store_rel(&b->durable, seq);
        return 0;
    }
    pp_store *S = b->s;
    if (S->cfg.flags & PP_NO_THREADS) return pp__wait_rounds(b, seq, timeout_ns);
    uint64_t deadline = timeout_ns > 0 ? plg_now_ns() + (uint64_t)timeout_ns : 0;
    struct timespec dl;
    dl.tv_sec = (time_t)(deadline / 1000000000ull); dl.tv_nsec = (long)(deadline % 1000000000ull);
    pthread_mutex_lock(&S->dur_mu);
    for (;;) {
        /* the syncer moves durable, then takes dur_mu to broadcast: checked
         * under dur_mu, no wake-up is lost between the check and the wait */
        if (pp_durable(b) >= seq) { rc = 0; break; }
        if ((rc = pp__wait_err(b)) != 0) break;
        if (timeout_ns == 0) { rc = PP_ETIMEDOUT; break; }
        if (timeout_ns < 0) { pthread_cond_wait(&S->dur_cv, &S->dur_mu); continue; }
        if (pthread_cond_timedwait(&S->dur_cv, &S->dur_mu, &dl) == ETIMEDOUT) {
            rc = pp_durable(b) >= seq ? 0 : pp__wait_err(b);
            if (!rc && pp_durable(b) < seq) rc = PP_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&S->dur_mu);
    return rc;
}

PPDEF int pp_snapshot(pp_book *b) { return b ? pp__snapshot(b) : PP_EINVAL; }

PPDEF int pp_compact(pp_book *b) {
    if (!b) return PP_EINVAL;
    if (b->iid) return pp__store_compact(b->s, 1);
    /* no maintainer (PP_NO_THREADS) to ask for a roll at the threshold: the
     * next event starts a new segment, and the next pp_compact can cut the
     * full one */
    if ((b->s->cfg.flags & PP_NO_THREADS) && b->mode == PP_JOURNAL_MMAP && !pp__load_acq(&b->err)) pp__maybe_roll(b);
    return b->mode == PP_JOURNAL_MMAP ? pp__compact_mmap(b, 1) : pp__compact_strict(b, 1);
}

/* price-time priority: bids before asks, the better price first, then the lower priority seq */
static int pp__by_priority(const void *a, const void *c) {
    const pp__oslot *x = (const pp__oslot *)a, *y = (const pp__oslot *)c;
    int xs = x->side == PP_SELL, ys = y->side == PP_SELL;
    if (xs != ys) return xs - ys;
    if (x->price != y->price) return (xs ? x->price < y->price : x->price > y->price) ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Orders in price-time priority to visit (v is sorted in place). */
static int pp__visit_sorted(pp__oslot *v, uint64_t k, const pp__plmap *pm, int (*visit)(const pp_order *, void *), void *ctx) {
    int rc = 0;
    qsort(v, (size_t)k, sizeof *v, pp__by_priority);
    for (uint64_t i = 0; i < k && !rc; i++) {
        pp_order o;
        memset(&o, 0, sizeof o);
        o.id = v[i].id; o.price = v[i].price; o.qty = v[i].qty; o.ts_ns = v[i].ts;
        o.side = (uint8_t)v[i].side; o.seq = v[i].seq;
        const pp__plslot *p = pm && pm->n ? pp__plmap_find(pm, o.id) : NULL;
        if (p) { o.payload = p->p; o.payload_len = (uint32_t)p->len; }
        rc = visit(&o, ctx);
    }
    return rc;
}

PPDEF int pp_orders(pp_book *b, int (*visit)(const pp_order *, void *), void *ctx) {
    if (!b || !visit) return PP_EINVAL;
    pthread_mutex_lock(&b->shadow_mu);
    int rc = pp__drain(b);
    if (rc) { pthread_mutex_unlock(&b->shadow_mu); pp__poison(b, rc); return rc; }
    /* one straight copy under the lock (the book as of b->applied); the sort
     * and the visits after it, so the maintainer is not held up */
    uint64_t n = b->shadow.n, k = 0;
    pp__oslot *v = (pp__oslot *)PINNACLE_PERSIST_MALLOC((size_t)(n ? n : 1) * sizeof *v);
    if (!v) { pthread_mutex_unlock(&b->shadow_mu); return PP_ENOMEM; }
    for (uint64_t i = 0, cap = b->shadow.mask + 1; i < cap; i++) if (b->shadow.t[i].id) v[k++] = b->shadow.t[i];
    pp__plmap pm;
    uint8_t *blob;
    rc = pp__pl_copy(&b->plmap, b->pl_bytes, &pm, &blob);
    pthread_mutex_unlock(&b->shadow_mu);
    PINNACLE_PERSIST_ASSERT(k == n);
    if (!rc) rc = pp__visit_sorted(v, k, &pm, visit, ctx);
    PINNACLE_PERSIST_FREE(v);
    PINNACLE_PERSIST_FREE(pm.t);
    PINNACLE_PERSIST_FREE(blob);
    return rc;
}

/* pp_book_at's rebuilt book: its orders, and the payloads of their adds. */
typedef struct pp__atbook { pp__shadow m; pp__plmap pm; uint64_t pm_bytes; } pp__atbook;

static void pp__atbook_reset(pp__atbook *a) {
    memset(a->m.t, 0, (size_t)(a->m.mask + 1) * sizeof *a->m.t);
    a->m.n = 0;
    pp__pl_clear(&a->pm, &a->pm_bytes);
}

/* pp_book_at: one snapshot file into the empty book a, its payload section
 * too, read-only (no quarantine of a bad one: the caller tries an older one). */
static int pp__snap_load_ro(const char *path, uint64_t want, pp__atbook *a) {
    uint8_t *buf = NULL; size_t len = 0;
    uint64_t seq = 0, count = 0;
    int rc = pp__read_file_k(pp__ro_keys(), path, &buf, &len, NULL, 0);
    if (!rc) rc = pp__snap_decode(buf, len, &seq, &count);
    if (!rc && seq != want) rc = PP_ECORRUPT;
    for (uint64_t i = 0; i < count && !rc; i++) {
        pp__oslot o;
        memcpy(&o, buf + PP__SNAP_HDR + i * PP__ENTRY, PP__ENTRY);
        if (!o.id || o.qty <= 0 || pp__shadow_find(&a->m, o.id)) { rc = PP_ECORRUPT; break; }
        if ((a->m.n + 1) * 2 > a->m.mask + 1 && pp__shadow_grow(&a->m)) { rc = PP_ENOMEM; break; }
        *pp__shadow_slot(&a->m, o.id) = o;
        a->m.n++;
    }
    /* the payloads (pp__snap_decode checked that each belongs to one of the orders) */
    uint64_t at = PP__SNAP_HDR + count * PP__ENTRY, end = rc ? at : len - PP__SNAP_TAIL;
    while (!rc && at < end) {
        uint64_t id; const uint8_t *pl; uint32_t l;
        rc = pp__snap_pl_next(buf, &at, end, &id, &pl, &l);
        if (!rc) rc = pp__pl_put(&a->pm, &a->pm_bytes, id, pl, l);
    }
    PINNACLE_PERSIST_FREE(buf);
    if (rc) pp__atbook_reset(a);
    return rc;
}

/* pp_book_at: the newest snapshot at or below seq that loads, from
 * <dir>/books/<name>/snapshots or the archive's (adir: NULL for none);
 * *snap: the seq it covers, 0: none. */
static int pp__book_at_snap(const char *dir, const char *adir, const char *name, uint64_t seq, pp__atbook *a, uint64_t *snap) {
    char dirs[2][4096];
    uint64_t *v[2] = {NULL, NULL}; size_t n[2] = {0, 0};
    int nd = adir ? 2 : 1, rc = 0;
    *snap = 0;
    if ((size_t)snprintf(dirs[0], sizeof dirs[0], "%s/books/%s/snapshots", dir, name) >= sizeof dirs[0] ||
        (adir && (size_t)snprintf(dirs[1], sizeof dirs[1], "%s/books/%s/snapshots", adir, name) >= sizeof dirs[1])) return PP_EINVAL;
    for (int d = 0; d < nd && !rc; d++) rc = pp__list_numbered(dirs[d], ".pps", 0, &v[d], &n[d]);
    size_t k[2] = {n[0], n[1]};
    while (!rc) {                          /* newest first across both lists */
        int d = -1;
        for (int e = 0; e < nd; e++) {
            while (k[e] > 0 && v[e][k[e] - 1] > seq) k[e]--;
            if (k[e] > 0 && (d < 0 || v[e][k[e] - 1] > v[d][k[d] - 1])) d = e;
        }
        if (d < 0) break;
        char p[4096];
        uint64_t cand = v[d][--k[d]];
        pp__numbered(p, sizeof p, dirs[d], cand, ".pps");
        int r = pp__snap_load_ro(p, cand, a);
        if (r == 0) { *snap = cand; break; }
        if (r == PP_ENOMEM || r == PP_EACCES) rc = r;   /* not damage: do not fall back past it */
    }
    PINNACLE_PERSIST_FREE(v[0]); PINNACLE_PERSIST_FREE(v[1]);
    return rc;
}

/* pp_book_at: the events of j up to seq onto the book a, each add's payload
 * kept with its order as the live book keeps it (pp__pl_follow). */
static int pp__book_at_replay(pp__atbook *a, pp_journal *j, uint64_t seq) {
    pp_event ev;
    int rc = 0;
    while (!rc && pp_journal_next(j, &ev) == 1 && ev.seq <= seq) {
        pp__ev v;
        memset(&v, 0, sizeof v);
        v.seq = ev.seq; v.id = ev.order_id; v.price = ev.price; v.qty = ev.qty; v.ts = ev.ts_ns;
        v.type = ev.type; v.side = ev.side;
        rc = pp__apply(&a->m, &v);
        if (!rc) rc = pp__pl_follow(&a->pm, &a->pm_bytes, &a->m, &v, (const uint8_t *)ev.payload, ev.payload_len);
    }
    return rc;
}

/* pp_book_at: the rebuilt book's orders, in price-time priority, to visit. */
static int pp__book_at_visit(const pp__atbook *a, int (*visit)(const pp_order *, void *), void *ctx) {
    pp__oslot *o = (pp__oslot *)PINNACLE_PERSIST_MALLOC((size_t)(a->m.n ? a->m.n : 1) * sizeof *o);
    if (!o) return PP_ENOMEM;
    uint64_t k = 0;
    for (uint64_t i = 0; i <= a->m.mask; i++) if (a->m.t[i].id) o[k++] = a->m.t[i];
    PINNACLE_PERSIST_ASSERT(k == a->m.n);
    int rc = pp__visit_sorted(o, k, &a->pm, visit, ctx);
    PINNACLE_PERSIST_FREE(o);
    return rc;
}

/* The journal after the snapshot (its reader j, from snap + 1) checked to
 * reach seq: PP_ENOENT when the entries right after the snapshot are gone
 * (compacted, no archive), or when neither a snapshot nor an entry is left;
 * PP_EINVAL when the history ends before seq (also: it ends at the
 * snapshot). */
static int pp__book_at_reach(const pp_journal *j, uint64_t snap, uint64_t seq) {
    if (!j->lo) return snap ? PP_EINVAL : PP_ENOENT;
    if (j->lo != snap + 1) return PP_ENOENT;
    if (j->hi < seq) return PP_EINVAL;
    return 0;
}

/* pp_book_at's steps, shared by the store's call and the data directory's:
 * the snapshot (from dir and adir, under snap_mu if not NULL), the journal
 * after it through jopen (also when the snapshot covers seq if
 * always_journal: it is how pp_book_at_dir learns the instrument exists),
 * the replay to seq, the visits. */
typedef int (*pp__jopen_fn)(void *jctx, uint64_t from_seq, pp_journal **out);
static int pp__book_at_run(const char *dir, const char *adir, const char *name, uint64_t seq, pthread_mutex_t *snap_mu,
                           pp__jopen_fn jopen, void *jctx, int always_journal,
                           int (*visit)(const pp_order *, void *), void *ctx) {
    pp__atbook a;
    memset(&a, 0, sizeof a);
    int rc = pp__shadow_init(&a.m, 8);
    if (rc) return rc;
    uint64_t snap = 0;
    if (snap_mu) pthread_mutex_lock(snap_mu);      /* rotation does not move a snapshot while it is read */
    rc = pp__book_at_snap(dir, adir, name, seq, &a, &snap);
    if (snap_mu) pthread_mutex_unlock(snap_mu);
    if (!rc && (seq > snap || always_journal)) {
        pp_journal *j = NULL;
        rc = jopen(jctx, snap + 1, &j);
        if (!rc && seq > snap) rc = pp__book_at_reach(j, snap, seq);
        if (!rc && seq > snap) rc = pp__book_at_replay(&a, j, seq);
        pp_journal_close(j);
    }
    if (!rc) rc = pp__book_at_visit(&a, visit, ctx);
    pp__pl_clear(&a.pm, &a.pm_bytes);
    pp__shadow_free(&a.m);
    return rc;
}

typedef struct pp__atstore { pp_store *S; const char *name; } pp__atstore;
static int pp__book_at_jopen(void *jctx, uint64_t from_seq, pp_journal **out) {
    pp__atstore *t = (pp__atstore *)jctx;
    return pp_journal_open(t->S, t->name, from_seq, out);
}

PPDEF int pp_book_at(pp_store *S, const char *name, uint64_t seq, int (*visit)(const pp_order *, void *), void *ctx) {
    if (!S || !name || !visit) return PP_EINVAL;
    int rc = pp_valid_name(name);
    if (rc) return rc;
    if (!S->sj) return PP_ENOTSUP;
    pp_book *b = NULL;
    pthread_mutex_lock(&S->mu);
    for (size_t i = 0; i < S->nbooks && !b; i++) if (strcmp(S->books[i]->name, name) == 0) b = S->books[i];
    pthread_mutex_unlock(&S->mu);
    if (!b) {
        pthread_mutex_lock(&S->open_mu);
        uint32_t retired = pp__retired_iid(S, name);
        pthread_mutex_unlock(&S->open_mu);
        if (!retired) return PP_ENOENT;
    }
    if (b && seq > pp_durable(b)) return PP_EINVAL;
    pp__atstore t;
    t.S = S; t.name = name;
    pp__ro_fk = S->fk;                    /* an encrypted store's snapshots */
    rc = pp__book_at_run(S->dir, S->adir, name, seq, b ? &b->snap_mu : NULL, pp__book_at_jopen, &t, 0, visit, ctx);
    pp__ro_fk = NULL;
    return rc;
}

/* pp_book_at_dir's journal: the store journal of data_dir, the archived
 * segments (<archive_dir>/journal) first, then the live ones from where the
 * archive ends; read-only. The instrument's id from the catalog, the
 * retired list, or its declaration in the journal. again: worth reading
 * again, beside a running store: the two parts do not meet (a compaction
 * moved segments between the two reads, or they are lost), or a segment
 * file went while it was read. */
static int pp__book_at_jopen_dir(void *jctx, uint64_t from_seq, pp_journal **out) {
    pp__atdir *t = (pp__atdir *)jctx;
    *out = NULL;
    pp_journal *j = (pp_journal *)pp__alloc(sizeof *j);
    char *jd = pp__join(t->dir, "journal"), *ajd = t->adir ? pp__join(t->adir, "journal") : NULL;
    int rc = j && jd && (!t->adir || ajd) ? 0 : PP_ENOMEM;
    pp__sj *a = NULL, *sj = NULL;
    uint64_t live_from = 0, bytes = 64u << 10;
    t->again = 0;
    if (!rc) {
        j->from = from_seq; j->to = UINT64_MAX;
        j->iid = pp__cat_find(t->dir, t->name);
        if (!j->iid) j->iid = pp__names_find(t->dir, "retired.ppr", PP__RET_MAGIC, t->name);
    }
    pp__jrdir d;
    d.j = j; d.name = t->name;
    int strict = !rc && pp__sj_is_strict(jd);   /* its archive: picolog's segments, read by picolog's reader */
    if (!rc && ajd && !strict) {
        rc = pp__sj_open(&a, ajd, bytes, 1, 0, pp__jrdir_frame, &d, NULL);
        if (!rc && a->tail > a->data_bytes) { live_from = a->tail; bytes = a->data_bytes; }
    }
    pp__sj_adir = strict ? ajd : NULL;
    if (!rc) rc = pp__sj_open(&sj, jd, bytes, 1, live_from, pp__jrdir_frame, &d, NULL);
    pp__sj_adir = NULL;
    if (rc == PP_ENOENT) t->again = 1;
    if (!rc && live_from && sj->data_bytes != bytes) rc = PP_ECORRUPT;   /* archived segments of another size */
    if (!rc && live_from && sj->first_index * sj->data_bytes > live_from) { rc = PP_ECORRUPT; t->again = 1; }
    if (!rc && !j->iid) rc = PP_ENOENT;
    if (a) pp__sj_free(a);
    if (sj) pp__sj_free(sj);
    PINNACLE_PERSIST_FREE(jd); PINNACLE_PERSIST_FREE(ajd);
    if (rc) { pp_journal_close(j); return rc; }
    *out = j;
    return 0;
}

PPDEF int pp_book_at_dir(const char *data_dir, const char *archive_dir, const char *name, uint64_t seq,
                         int (*visit)(const pp_order *, void *), void *ctx) {
    if (!data_dir || !name || !visit) return PP_EINVAL;
    int rc = pp_valid_name(name);
    if (rc) return rc;
    if (archive_dir && !archive_dir[0]) archive_dir = NULL;
    char *mk = pp__join(data_dir, "STORE");
    struct stat st;
    if (!mk) return PP_ENOMEM;
    if (stat(data_dir, &st) != 0) rc = pp__from_errno(errno);
    else if (stat(mk, &st) != 0) rc = PP_ENOTSUP;          /* not a format-2 store */
    PINNACLE_PERSIST_FREE(mk);
    if (rc) return rc;
    pp__atdir t;
    t.dir = data_dir; t.adir = archive_dir; t.name = name; t.again = 0;
    /* beside a running store, a compaction can move or remove segments
     * while they are read: read again (a few times at most) */
    for (int attempt = 0; attempt < 4; attempt++) {
        rc = pp__book_at_run(data_dir, archive_dir, name, seq, NULL, pp__book_at_jopen_dir, &t, 1, visit, ctx);
        if (!rc || !t.again) break;
    }
    return rc;
}

PPDEF int pp_find(pp_book *b, uint64_t id, pp_order *out) {
    if (!b || !out) return PP_EINVAL;
    if (id == 0) return PP_ENOENT;           /* 0 marks an empty slot of the table, never an order */
    pthread_mutex_lock(&b->shadow_mu);
    int rc = pp__drain(b);
    pp__oslot *s = rc ? NULL : pp__shadow_find(&b->shadow, id);
    if (s) {
        static __thread uint8_t pl[PP_PAYLOAD_MAX];   /* the payload handed out: this thread's, until its next pp_find */
        memset(out, 0, sizeof *out);
        out->id = s->id; out->price = s->price; out->qty = s->qty; out->ts_ns = s->ts; out->side = (uint8_t)s->side; out->seq = s->seq;
        const pp__plslot *p = b->plmap.n ? pp__plmap_find(&b->plmap, id) : NULL;
        if (p && p->len <= sizeof pl) {
            memcpy(pl, p->p, (size_t)p->len);
            out->payload = pl; out->payload_len = (uint32_t)p->len;
        }
    }
    pthread_mutex_unlock(&b->shadow_mu);
    return rc ? rc : s ? 0 : PP_ENOENT;
}

PPDEF uint64_t pp_order_count(pp_book *b) {
    pthread_mutex_lock(&b->shadow_mu);
    pp__drain(b);
    uint64_t n = b->shadow.n;
    pthread_mutex_unlock(&b->shadow_mu);
    return n;
}

/* >>views: shadow_mu held, caught up; the levels made if they are not */
static int pp__view_begin(pp_book *b) {
    if (!b) return PP_EINVAL;
    pthread_mutex_lock(&b->shadow_mu);
    int rc = pp__drain(b);
    if (rc) { pthread_mutex_unlock(&b->shadow_mu); pp__poison(b, rc); return rc; }
    if (!b->lv_on && (rc = pp__lv_build(b)) != 0) { pthread_mutex_unlock(&b->shadow_mu); return rc; }
    return 0;
}

static void pp__level_out(pp_level *out, const pp__lvl *l, uint64_t seq) {
    memset(out, 0, sizeof *out);
    if (l) { out->price = l->price; out->qty = l->qty; out->orders = l->orders; }
    out->seq = seq;
}

PPDEF int pp_top(pp_book *b, pp_level *bid, pp_level *ask) {
    int rc = pp__view_begin(b);
    if (rc) return rc;
    const pp__lvside *bs = &b->lv[0], *as = &b->lv[1];
    if (bid) pp__level_out(bid, bs->n ? &bs->v[bs->n - 1] : NULL, b->applied);
    if (ask) pp__level_out(ask, as->n ? &as->v[as->n - 1] : NULL, b->applied);
    pthread_mutex_unlock(&b->shadow_mu);
    return 0;
}

PPDEF int pp_depth(pp_book *b, int side, pp_level *levels, size_t n) {
    if (!b || (side != PP_BUY && side != PP_SELL) || (n && !levels)) return PP_EINVAL;
    int rc = pp__view_begin(b);
    if (rc) return rc;
    const pp__lvside *s = &b->lv[side == PP_SELL];
    size_t k = n < s->n ? n : s->n;
    if (k > INT32_MAX) k = INT32_MAX;
    for (size_t i = 0; i < k; i++) pp__level_out(&levels[i], &s->v[s->n - 1 - i], b->applied);
    pthread_mutex_unlock(&b->shadow_mu);
    return (int)k;
}

PPDEF uint64_t pp_last_seq(const pp_book *b) { return pp__load_acq(&b->last_seq); }
PPDEF uint64_t pp_durable(const pp_book *b) {
    if (b->mode == PP_JOURNAL_STRICT && b->log) return plg_durable(b->log);
    return pp__load_acq(&b->durable);
}
PPDEF int pp_error(const pp_book *b) { return pp__load_acq(&b->err); }
PPDEF const char *pp_book_name(const pp_book *b) { return b->name; }

PPDEF void pp_get_stats(pp_book *b, pp_stats *o) {
    memset(o, 0, sizeof *o);
    o->last_seq = pp_last_seq(b);
    o->durable_seq = pp_durable(b);
    pthread_mutex_lock(&b->shadow_mu);
    o->applied_seq = b->applied;
    o->active_orders = b->shadow.n;
    pthread_mutex_unlock(&b->shadow_mu);
    if (b->iid) {                 /* format 2: the store journal's figures */
        pp__sj *j = b->s->sj;
        pthread_mutex_lock(&j->mu);
        uint64_t first = j->first_index;
        pthread_mutex_unlock(&j->mu);
        uint64_t tail = pp__load_acq(&j->tail);
        o->journal_bytes = tail - first * j->data_bytes;
        o->journal_segments = (tail >> j->shift) - first + 1;
        o->store_flushes = pp__sj_stat(&j->st_flushes);
        o->store_rounds = pp__sj_stat(&j->st_rounds);
        o->segments_deleted = pp__sj_stat(&j->st_dropped);
        pthread_mutex_lock(&b->seg_mu);      /* the book's first frame in the oldest segment left */
        o->journal_first_seq = b->jsegs_n ? b->jsegs[1] : 0;
        pthread_mutex_unlock(&b->seg_mu);
        /* none durable in the journal: its frames not yet walked by a sync round */
        if (!o->journal_first_seq && o->last_seq > o->durable_seq) o->journal_first_seq = o->durable_seq + 1;
    } else if (b->mode == PP_JOURNAL_MMAP) {
        pthread_mutex_lock(&b->seg_mu);
        o->journal_bytes = pp__journal_bytes(b);
        for (pp__seg *g = b->segs; g; g = g->next) o->journal_segments++;
        o->journal_first_seq = b->segs ? b->segs->first_seq : 0;
        pthread_mutex_unlock(&b->seg_mu);
    }
    o->syncs = pp__load_rlx(&b->st_syncs);
    o->last_snapshot_seq = pp__load_acq(&b->snap_newest);
    o->snapshots = pp__load_rlx(&b->st_snapshots);
    o->oldest_snapshot_seq = pp__load_acq(&b->snap_oldest);
    o->compactions = pp__load_rlx(&b->st_compactions);
    if (!b->iid) o->segments_deleted = pp__load_rlx(&b->st_deleted);
    o->rolls = b->iid ? pp__sj_stat(&b->s->sj->st_created) : pp__load_rlx(&b->st_rolls);
    o->ring_full_stalls = pp__load_rlx(&b->st_ring_full);
    o->grow_stalls = pp__load_rlx(&b->st_grow);
    o->error = pp_error(b);
}

/* ---- market data: the hot path and the queries (>>marketdata) ---- */
PPDEF int pp_tick_append(pp_book *b, const pp_tick *t) {
    if (!b || !t || !t->exch_seq || t->exch_seq > INT64_MAX) return PP_EINVAL;
    if (b->batch && b->batch->on) return PP_EINVAL;   /* a batch holds order events only */
    if (t->exch_seq <= b->md_hp_last) return PP_EDUP;
    pp__ev v;
    int rc;
    if (b->md_hp_last && t->exch_seq != b->md_hp_last + 1) {
        v.type = PP__EV_GAP; v.side = 0; v.id = b->md_hp_last; v.price = (int64_t)t->exch_seq; v.qty = 0; v.ts = t->exch_ts_ns;
        if ((rc = pp__journal(b, &v))) return rc;
    }
    if (b->iid) {                 /* format 2: the whole tick in one frame, at one seq */
        int err = pp__load_rlx(&b->err);
        if (err) return err;
        pp__sj *j = b->s->sj;
        pp__sjclaim c;
        rc = pp__load_rlx(&j->err);
        if (!rc) rc = pp__sj_claim(j, PP__SJ_TICKFRAME, &c);
        if (__builtin_expect(rc != 0, 0)) { pp__poison(b, rc); return rc; }
        uint64_t seq = b->last + 1;
        pp__sj_enc_tick(c.f, b->iid, seq, t);
        pp__sj_publish(c.f, c.seed, c.pos, PP__SJ_TICKFRAME);
        pp__sj_nudge(j);
        if (__builtin_expect(b->first_pos == UINT64_MAX, 0)) pp__store_rel(&b->first_pos, c.pos);
        b->last = seq;
        pp__store_rel(&b->last_seq, seq);
        b->md_hp_last = t->exch_seq;
        pp__store_rel(&b->md_last_pub, t->exch_seq);
        return 0;
    }
    v.type = PP__EV_TICK1; v.side = t->side; v.id = t->exch_seq; v.price = t->price; v.qty = t->size; v.ts = t->exch_ts_ns;
    if ((rc = pp__journal(b, &v))) return rc;
    v.type = PP__EV_TICK2; v.side = 0; v.id = t->trade_id; v.price = t->bid; v.qty = t->bid_size; v.ts = t->recv_ts_ns;
    if ((rc = pp__journal(b, &v))) return rc;   /* an incomplete tick is skipped by replay; a retry journals it whole */
    v.type = PP__EV_TICK3; v.side = 0; v.id = (uint64_t)t->volume_24h; v.price = t->ask; v.qty = t->ask_size; v.ts = 0;
    if ((rc = pp__journal(b, &v))) return rc;
    b->md_hp_last = t->exch_seq;
    pp__store_rel(&b->md_last_pub, t->exch_seq);
    return 0;
}

PPDEF uint64_t pp_md_last_exch_seq(pp_book *b) { return b ? pp__load_acq(&b->md_last_pub) : 0; }

PPDEF int pp_md_declare(pp_book *b, const pp_md_spec *spec) {
    if (!b || !spec) return PP_EINVAL;
    if (spec->price_scale < 0 || spec->size_scale < 0 || spec->tick_window_s > 366u * 86400u ||
        spec->bar1s_window_s > 366u * 86400u) return PP_ECONFIG;
    pp_md_spec s = pp__md_spec_defaults(spec);
    uint8_t buf[PP__SPEC_REC + 8];
    pp__spec_put(buf, &s);
    pp__put32(buf + PP__SPEC_REC, plg_crc32c(0, buf, PP__SPEC_REC));
    pp__put32(buf + PP__SPEC_REC + 4, 0);
    int rc = pp__book_dirs(b);
    if (!rc) rc = pp__mkdir(b->mdir);
    char p[4096];
    snprintf(p, sizeof p, "%s/spec", b->mdir);
    if (!rc) rc = pp__from_plg_file(pp__write_file_k(b->s->fk, p, buf, sizeof buf, 0644));
    if (rc) return rc;
    pthread_mutex_lock(&b->shadow_mu);
    b->md.spec = s; b->md.used = 1;
    pthread_mutex_unlock(&b->shadow_mu);
    return 0;
}

PPDEF int pp_md_spec_get(pp_book *b, pp_md_spec *out) {
    if (!b || !out) return PP_EINVAL;
    pthread_mutex_lock(&b->shadow_mu);
    *out = b->md.spec;
    pthread_mutex_unlock(&b->shadow_mu);
    return 0;
}

PPDEF int pp_md_last(pp_book *b, pp_tick *out) {
    if (!b || !out) return PP_EINVAL;
    pthread_mutex_lock(&b->shadow_mu);
    int rc = pp__drain(b);
    if (!rc && !b->md.has_last) rc = PP_ENOENT;
    if (!rc) *out = b->md.last;
    pthread_mutex_unlock(&b->shadow_mu);
    return rc;
}

/* Items of v with key (u64 at key_off) in [from, to): copied to out (up to cap). */
static int64_t pp__md_range(pp_book *b, const pp__vec *v, size_t key_off, uint64_t from, uint64_t to, void *out, size_t cap) {
    size_t i = pp__vec_lower(v, key_off, from), n = 0;
    for (; i < v->n; i++, n++) {
        const uint8_t *x = (const uint8_t *)pp__vec_at(v, i);
        uint64_t k; memcpy(&k, x + key_off, 8);
        if (k >= to) break;
        if (n < cap) memcpy((uint8_t *)out + n * v->sz, x, v->sz);
    }
    (void)b;
    return (int64_t)n;
}

PPDEF int64_t pp_md_ticks(pp_book *b, uint64_t from, uint64_t to, pp_tick *out, size_t cap) {
    if (!b || (cap && !out)) return PP_EINVAL;
    pthread_mutex_lock(&b->shadow_mu);
    int64_t r = pp__drain(b);
    if (!r) r = pp__md_range(b, &b->md.ticks, offsetof(pp_tick, exch_ts_ns), from, to, out, cap);
    pthread_mutex_unlock(&b->shadow_mu);
    return r;
}

PPDEF int64_t pp_md_bars(pp_book *b, unsigned res_s, uint64_t from, uint64_t to, pp_bar *out, size_t cap) {
    if (!b || (cap && !out) || (res_s != PP_BAR_1S && res_s != PP_BAR_1M)) return PP_EINVAL;
    pthread_mutex_lock(&b->shadow_mu);
    int64_t r = pp__drain(b);
    if (!r) r = pp__md_range(b, res_s == PP_BAR_1S ? &b->md.b1 : &b->md.b60, 0, from, to, out, cap);
    pthread_mutex_unlock(&b->shadow_mu);
    return r;
}

PPDEF int64_t pp_md_gaps(pp_book *b, uint64_t from, uint64_t to, pp_gap *out, size_t cap) {
    if (!b || (cap && !out)) return PP_EINVAL;
    pthread_mutex_lock(&b->shadow_mu);
    int64_t r = pp__drain(b);
    if (!r) r = pp__md_range(b, &b->md.gaps, offsetof(pp_gap, exch_ts_ns), from, to, out, cap);
    pthread_mutex_unlock(&b->shadow_mu);
    return r;
}

/* ---- connection state (>>marketdata): <data_dir>/.conn/<name> =
 *      "PPCONN01", u32 length, u32 CRC32C(data), data ---- */
PPDEF int pp_conn_put(pp_store *S, const char *name, const void *data, size_t len) {
    if (!S || !name || (len && !data) || len > PP_CONN_MAX) return PP_EINVAL;
    if (pp_valid_name(name)) return PP_ENAME;
    char d[4096], p[4096 + PP_MAX_NAME + 2];
    snprintf(d, sizeof d, "%s/.conn", S->dir);
    int rc = pp__mkdir(d);
    if (rc) return rc;
    snprintf(p, sizeof p, "%s/%s", d, name);
    uint8_t *buf = (uint8_t *)PINNACLE_PERSIST_MALLOC(16 + len);
    if (!buf) return PP_ENOMEM;
    memcpy(buf, "PPCONN01", 8);
    pp__put32(buf + 8, (uint32_t)len);
    pp__put32(buf + 12, plg_crc32c(0, data, len));
    if (len) memcpy(buf + 16, data, len);
    rc = pp__from_plg_file(pp__write_file_k(S->fk, p, buf, 16 + len, 0600));
    PINNACLE_PERSIST_FREE(buf);
    return rc;
}

PPDEF int64_t pp_conn_get(pp_store *S, const char *name, void *out, size_t cap) {
    if (!S || !name || (cap && !out)) return PP_EINVAL;
    if (pp_valid_name(name)) return PP_ENAME;
    char p[4096];
    snprintf(p, sizeof p, "%s/.conn/%s", S->dir, name);
    uint8_t *buf; size_t len;
    char why[128];
    int rc = pp__read_file_k(S->fk, p, &buf, &len, why, sizeof why);
    if (rc && why[0]) PP__MSG(S, rc, "connection state %s: %s", p, why);
    if (rc) return rc;
    uint32_t n = len >= 16 ? pp__get32(buf + 8) : 0;
    if (len < 16 || memcmp(buf, "PPCONN01", 8) || len != 16 + (size_t)n || pp__get32(buf + 12) != plg_crc32c(0, buf + 16, n))
        rc = PP_ECORRUPT;
    else if (n) memcpy(out, buf + 16, n < cap ? n : cap);
    PINNACLE_PERSIST_FREE(buf);
    return rc ? rc : (int64_t)n;
}

/* >>check ----------------------------------------------------------------- */
/* pp_check of a format-2 store (read-only): the instrument's id from the
 * catalog or its declaration, its snapshots, and one pass over the store
 * journal counting its frames (seqs dense from the snapshot on). */
typedef struct pp__chk2 {
    const char *name; uint32_t iid; uint64_t first, last, snap, entries, bytes; int gap;
    uint64_t durable_pos, durable_seq;   /* frames below durable_pos were durable; the book's last seq among them */
} pp__chk2;

/* The journal position below which the segments' durable marks vouch for
 * every frame (durability is a prefix of the journal: the highest vouched
 * position wins). Unreadable or damaged headers count for nothing here; the
 * scan reports them. */
static uint64_t pp__sj_marked_pos(const char *jd) {
    uint64_t *v = NULL, best = 0;
    size_t n = 0;
    if (pp__list_numbered(jd, ".ppj", 0, &v, &n) != 0) return 0;
    char path[4096];
    for (size_t i = 0; i < n; i++) {
        uint8_t h[PP__PAGE];
        pp__numbered(path, sizeof path, jd, v[i], ".ppj");
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t got = fd < 0 ? -1 : pread(fd, h, sizeof h, 0);
        if (fd >= 0) close(fd);
        uint64_t salt, index, data_bytes, end, flags, gen;
        if (got != (ssize_t)sizeof h || pp__sj_hdr_decode(h, &salt, &index, &data_bytes) != 0 || index != v[i]) continue;
        if (pp__sj_mark_get(h, salt, &end, &flags, &gen) == 1 && end <= data_bytes && index * data_bytes + end > best)
            best = index * data_bytes + end;
    }
    PINNACLE_PERSIST_FREE(v);
    return best;
}

static int pp__check2_frame(void *ctx, uint64_t pos, const uint8_t *f, uint32_t len) {
    pp__chk2 *c = (pp__chk2 *)ctx;
    if (f[8] == PP__SJ_DECLARE) {
        unsigned nl = f[9];
        if (!c->iid && nl == strlen(c->name) && memcmp(f + 24, c->name, nl) == 0) c->iid = pp__get32(f + 12);
        return 0;
    }
    if (!c->iid || pp__get32(f + 12) != c->iid || (!pp__is_evtype(f[8]) && f[8] != PP__SJ_BATCH)) return 0;
    uint32_t n = 1;
    if (f[8] == PP__SJ_BATCH && !(n = pp__sj_batch_count(f, len))) return PP_ECORRUPT;
    if (f[8] != PP__SJ_BATCH && len != pp__sj_ev_len(f)) return PP_ECORRUPT;   /* as recovery refuses it */
    for (uint32_t k = 0; k < n; k++) {           /* a batch's events are consecutive seqs */
        uint64_t seq = pp__get64(f + 16) + k;
        if (!c->first) c->first = seq;
        else if (seq != c->last + 1) return PP_ECORRUPT;
        if (c->first > c->snap + 1 && seq == c->first) c->gap = 1;   /* starts after a hole the snapshot does not cover */
        c->last = seq; c->entries++;
        if (pos + len <= c->durable_pos) c->durable_seq = seq;
    }
    c->bytes += len;
    return 0;
}

static int pp__check2(const char *data_dir, const char *name, pp_check_result *out) {
    pp__chk2 c;
    memset(&c, 0, sizeof c);
    c.name = name;
    char *bd = pp__join(data_dir, "books");
    char *dir = bd ? pp__join(bd, name) : NULL, *sdir = dir ? pp__join(dir, "snapshots") : NULL;
    char *jd = pp__join(data_dir, "journal");
    int rc = (!sdir || !jd) ? PP_ENOMEM : 0;
    if (!rc) c.iid = pp__cat_find(data_dir, name);
    int strict = jd && pp__sj_is_strict(jd);
    out->mode = strict ? PP_JOURNAL_STRICT : PP_JOURNAL_MMAP;
    if (!rc && !c.iid && pp__names_find(data_dir, "retired.ppr", PP__RET_MAGIC, name)) {
        /* pp_book_retire took it out: recovery skips its frames still in
         * the journal (not damage), and its snapshots were archived or
         * deleted */
        pp__chk_where(out, data_dir, 0, "retired (retired.ppr): not recovered; its snapshots went to the archive "
                                        "directory if the store has one, its events stay in the journal until compaction");
        PINNACLE_PERSIST_FREE(bd); PINNACLE_PERSIST_FREE(dir); PINNACLE_PERSIST_FREE(sdir); PINNACLE_PERSIST_FREE(jd);
        return out->status = PP_ERETIRED;
    }
    if (!rc && pp__is_dir(sdir)) rc = pp__load_snapshot(NULL, name, sdir, NULL, NULL, NULL, &c.snap, out);
    pp__sj *j = NULL;
    pp__sjwhere w;
    memset(&w, 0, sizeof w);
    if (!rc) {
        c.durable_pos = strict ? UINT64_MAX : pp__sj_marked_pos(jd);   /* strict: picolog's reader stops at its durable mark */
        rc = pp__sj_open(&j, jd, 64u << 10, 1, 0, pp__check2_frame, &c, &w);
        if (rc) pp__chk_where(out, w.file, w.offset, w.detail);
        else if (w.torn) { out->torn_tail = 1; pp__chk_where(out, w.file, w.offset, w.detail); }
        if (j) {
            pthread_mutex_lock(&j->mu);
            out->segments = (j->tail >> j->shift) - j->first_index;
            pthread_mutex_unlock(&j->mu);
            pp__sj_free(j);
        }
    }
    if (!rc && !c.iid) rc = PP_ENOENT;
    if (!rc && c.gap) {
        rc = PP_ECORRUPT;
        pp__chk_where(out, jd, 0, "the journal's first frame of this instrument is after the seq its newest snapshot covers: entries missing");
    }
    out->journal_first_seq = c.first; out->journal_last_seq = c.last ? c.last : c.snap;
    out->journal_bytes = c.bytes;
    out->durable_mark_seq = c.durable_seq;
    PINNACLE_PERSIST_FREE(bd); PINNACLE_PERSIST_FREE(dir); PINNACLE_PERSIST_FREE(sdir); PINNACLE_PERSIST_FREE(jd);
    return out->status = rc;
}

/* pp_list: format 2 names its instruments in the catalog and in
 * declaration frames; format 1, by the directories holding journal/ or strict/. */
typedef struct pp__lst { char (*names)[PP_MAX_NAME + 1]; size_t n, cap; } pp__lst;
static int pp__lst_add(pp__lst *l, const char *name, size_t nl) {
    for (size_t i = 0; i < l->n; i++) if (strlen(l->names[i]) == nl && memcmp(l->names[i], name, nl) == 0) return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        void *p = PINNACLE_PERSIST_REALLOC(l->names, nc * sizeof *l->names);
        if (!p) return PP_ENOMEM;
        l->names = (char (*)[PP_MAX_NAME + 1])p; l->cap = nc;
    }
    memcpy(l->names[l->n], name, nl); l->names[l->n][nl] = 0; l->n++;
    return 0;
}
static int pp__lst_cat_entry(void *ctx, uint32_t iid, const char *name, size_t nl) {
    (void)iid;
    return pp__lst_add((pp__lst *)ctx, name, nl);
}
static int pp__lst_frame(void *ctx, uint64_t pos, const uint8_t *f, uint32_t len) {
    (void)pos; (void)len;
    if (f[8] != PP__SJ_DECLARE || !f[9] || f[9] > PP_MAX_NAME) return 0;
    return pp__lst_add((pp__lst *)ctx, (const char *)f + 24, f[9]);
}

/* Format 2: the names retired.ppr lists leave the list (pp_book_retire). */
static int pp__lst_drop_entry(void *ctx, uint32_t iid, const char *name, size_t nl) {
    pp__lst *l = (pp__lst *)ctx;
    (void)iid; (void)nl;
    for (size_t k = 0; k < l->n; k++)
        if (strcmp(l->names[k], name) == 0) {
            memmove(l->names + k, l->names + k + 1, (l->n - k - 1) * sizeof *l->names);
            l->n--;
            break;
        }
    return 0;
}
static void pp__lst_drop_retired(const char *data_dir, pp__lst *l) {
    (void)pp__cat_walk(data_dir, "retired.ppr", PP__RET_MAGIC, pp__lst_drop_entry, l);   /* damage: up to it */
}

PPDEF int pp_list(const char *data_dir, int (*visit)(const char *, void *), void *ctx) {
    if (!data_dir || !visit) return PP_EINVAL;
    pp__lst l;
    memset(&l, 0, sizeof l);
    int rc = 0;
    char *mk = pp__join(data_dir, "STORE");
    struct stat st;
    if (!mk) return PP_ENOMEM;
    if (stat(mk, &st) == 0) {
        char *jd = pp__join(data_dir, "journal");
        if (!jd) rc = PP_ENOMEM;
        if (!rc) {
            rc = pp__cat_walk(data_dir, "instruments.ppc", PP__CAT_MAGIC, pp__lst_cat_entry, &l);
            if (rc == PP_ENOENT || rc == PP_ECORRUPT) rc = 0;   /* damage is pp_check's to report: up to it */
        }
        pp__sj *j = NULL;
        if (!rc) { rc = pp__sj_open(&j, jd, 64u << 10, 1, 0, pp__lst_frame, &l, NULL); if (j) pp__sj_free(j); }
        if (rc == PP_ECORRUPT) rc = 0;            /* damage is pp_check's to report; list what was found */
        if (!rc) pp__lst_drop_retired(data_dir, &l);
        PINNACLE_PERSIST_FREE(jd);
    } else {
        DIR *d = opendir(data_dir);
        struct dirent *e;
        if (!d) rc = pp__from_errno(errno);
        while (!rc && d && (e = readdir(d)) != NULL) {
            if (pp_valid_name(e->d_name) != 0) continue;
            char *p = pp__join(data_dir, e->d_name);
            char *pj = p ? pp__join(p, "journal") : NULL, *pl = p ? pp__join(p, "strict") : NULL;
            if (!pj || !pl) rc = PP_ENOMEM;
            else if (pp__is_dir(pj) || pp__is_dir(pl)) rc = pp__lst_add(&l, e->d_name, strlen(e->d_name));
            PINNACLE_PERSIST_FREE(p); PINNACLE_PERSIST_FREE(pj); PINNACLE_PERSIST_FREE(pl);
        }
        if (d) closedir(d);
    }
    PINNACLE_PERSIST_FREE(mk);
    for (size_t i = 0; i < l.n && !rc; i++) rc = visit(l.names[i], ctx);
    PINNACLE_PERSIST_FREE(l.names);
    return rc;
}

PPDEF int pp_check(const char *data_dir, const char *name, pp_check_result *out) {
    if (!data_dir || !out) return PP_EINVAL;
    memset(out, 0, sizeof *out);
    int rc = pp_valid_name(name);
    if (rc) return out->status = rc;
    {
        char *mk = pp__join(data_dir, "STORE");
        struct stat st;
        int store2 = mk && stat(mk, &st) == 0;
        PINNACLE_PERSIST_FREE(mk);
        if (store2) return pp__check2(data_dir, name, out);
    }
    char *dir = pp__join(data_dir, name);
    char *jdir = dir ? pp__join(dir, "journal") : NULL, *sdir = dir ? pp__join(dir, "snapshots") : NULL;
    char *ldir = dir ? pp__join(dir, "strict") : NULL;
    if (!jdir || !sdir || !ldir) rc = PP_ENOMEM;
    else if (!pp__is_dir(dir)) rc = PP_ENOENT;
    uint64_t snap = 0, last = 0;
    if (!rc) rc = pp__load_snapshot(NULL, name, sdir, NULL, NULL, NULL, &snap, out);
    if (!rc) {
        out->mode = pp__is_dir(ldir) && !pp__is_dir(jdir) ? PP_JOURNAL_STRICT : PP_JOURNAL_MMAP;
        if (out->mode == PP_JOURNAL_MMAP) rc = pp__recover_journal(NULL, NULL, name, jdir, NULL, snap, &last, out);
        else { rc = pp__recover_strict(NULL, name, ldir, NULL, snap, &last, out); if (!rc) out->journal_last_seq = last; }
    }
    PINNACLE_PERSIST_FREE(dir); PINNACLE_PERSIST_FREE(jdir); PINNACLE_PERSIST_FREE(sdir); PINNACLE_PERSIST_FREE(ldir);
    return out->status = rc;
}

#endif /* PINNACLE_PERSIST_IMPLEMENTATION_DONE */
#endif /* PINNACLE_PERSIST_IMPLEMENTATION */

/*
MIT License

Copyright (c) 2026 the pinnacle_persist authors

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
/* C++: RAII and errors as values (C++11 or later). pp::store owns a
 * pp_store and closes it (with every book) when it goes out of scope;
 * pp::book is a light handle to a book the store owns (valid until the
 * store closes). Calls that can fail return a pp::result<T>: the value or
 * the PP_E* code, no exceptions.
 *
 *     pp_config cfg{};  cfg.data_dir = "/var/lib/engine";
 *     auto st = pp::store::open(cfg);
 *     if (!st) { std::fprintf(stderr, "%s\n", st.message()); return 1; }
 *     auto b = st->book("BTC-USD");
 *     if (!b) ...;
 *     pp_order o{};  o.id = 42; o.price = 6500000; o.qty = 10; o.side = PP_BUY;
 *     if (auto r = b->add(o); !r) ...;               // C++17 if-init, or two lines
 *     b->orders([](const pp_order &ord) { use(ord); });
 */
#if defined(__cplusplus) && !defined(PINNACLE_PERSIST_CXX_DONE)
#define PINNACLE_PERSIST_CXX_DONE
#include <type_traits>
#include <utility>
namespace pp {
/* The value, or a negative PP_E* code: picolog's plg::basic_result with
 * pp_strerror for message(). value() of an error is a default-constructed T:
 * check ok() (or the bool conversion) first. */
struct pp_errors { static const char *message(int err) { return pp_strerror(err); } };
template <class T> using result = plg::basic_result<T, pp_errors>;
inline result<void> status(int rc) { return rc < 0 ? result<void>::failure(rc) : result<void>(); }

namespace detail {
template <class F> struct visitor {
    /* a visitor may return void (visit everything) or int/bool (nonzero stops) */
    template <class G> static auto call(G &f, const pp_order &o, int) -> decltype((int)f(o)) { return (int)f(o); }
    template <class G> static int call(G &f, const pp_order &o, long) { f(o); return 0; }
    static int trampoline(const pp_order *o, void *ctx) { return call(*static_cast<F *>(ctx), *o, 0); }
};
} /* namespace detail */

class book {
public:
    book() noexcept : b_(nullptr) {}
    explicit book(pp_book *b) noexcept : b_(b) {}
    result<void> add(const pp_order &o) { return status(pp_add(b_, &o)); }
    result<void> cancel(uint64_t id) { return status(pp_cancel(b_, id)); }
    result<void> execute(uint64_t id, int64_t qty, int64_t price) { return status(pp_execute(b_, id, qty, price)); }
    result<void> modify(uint64_t id, int64_t price, int64_t qty) { return status(pp_modify(b_, id, price, qty)); }
    result<void> sync() { return status(pp_sync(b_)); }
    result<void> snapshot() { return status(pp_snapshot(b_)); }
    result<void> compact() { return status(pp_compact(b_)); }
    result<void> tick(const pp_tick &t) { return status(pp_tick_append(b_, &t)); }
    result<void> apply(const pp_event &e) { return status(pp_apply(b_, &e)); }
    result<void> wait(uint64_t seq, int64_t timeout_ns) { return status(pp_wait(b_, seq, timeout_ns)); }
    result<void> top(pp_level &bid, pp_level &ask) { return status(pp_top(b_, &bid, &ask)); }
    /* levels filled (best first), or the error */
    result<int> depth(int side, pp_level *levels, size_t n) {
        int rc = pp_depth(b_, side, levels, n);
        return rc < 0 ? result<int>::failure(rc) : result<int>(rc);
    }
    result<pp_order> find(uint64_t id) {
        pp_order o;
        int rc = pp_find(b_, id, &o);
        return rc ? result<pp_order>::failure(rc) : result<pp_order>(o);
    }
    /* Visit the active orders in price-time priority: f(const pp_order &). */
    template <class F> result<void> orders(F &&f) {
        typedef typename std::remove_reference<F>::type G;
        int rc = pp_orders(b_, &detail::visitor<G>::trampoline, (void *)&f);
        return rc < 0 ? result<void>::failure(rc) : result<void>();
    }
    uint64_t order_count() const { return pp_order_count(b_); }
    uint64_t last_seq() const { return pp_last_seq(b_); }
    uint64_t durable() const { return pp_durable(b_); }
    int error() const { return pp_error(b_); }
    const char *name() const { return pp_book_name(b_); }
    pp_book *get() const noexcept { return b_; }
    explicit operator bool() const noexcept { return b_ != nullptr; }
private:
    pp_book *b_;
};

class store {
public:
    store() noexcept : s_(nullptr) {}
    store(store &&o) noexcept : s_(o.s_) { o.s_ = nullptr; }
    store &operator=(store &&o) noexcept { if (this != &o) { close(); s_ = o.s_; o.s_ = nullptr; } return *this; }
    store(const store &) = delete;
    store &operator=(const store &) = delete;
    ~store() { close(); }
    static result<store> open(const pp_config &cfg) {
        pp_store *s = nullptr;
        int rc = pp_open(&s, &cfg);
        if (rc) return result<store>::failure(rc);
        store st; st.s_ = s;
        return result<store>(std::move(st));
    }
    /* The book of an instrument: recovered, or new. Owned by the store. */
    result<pp::book> book(const char *instrument) {
        pp_book *b = nullptr;
        int rc = pp_book_open(s_, instrument, &b);
        return rc ? result<pp::book>::failure(rc) : result<pp::book>(pp::book(b));
    }
    /* 0 (ok) means everything journaled is durable; closing twice is a no-op. */
    result<void> close() {
        if (!s_) return result<void>();
        int rc = pp_close(s_);
        s_ = nullptr;
        return status(rc);
    }
    pp_store *get() const noexcept { return s_; }
    explicit operator bool() const noexcept { return s_ != nullptr; }
private:
    pp_store *s_;
};
} /* namespace pp */
#endif /* __cplusplus */
