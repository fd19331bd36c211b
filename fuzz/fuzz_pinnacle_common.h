/* Helpers shared by the pinnacle_persist fuzz targets
 * (fuzz/fuzz_pinnacle_journal.c, fuzz/fuzz_pinnacle_snapshot.c,
 * fuzz/fuzz_pinnacle_store.c, fuzz/fuzz_pinnacle_sealed.c) and their
 * seed maker tests/test_fuzz_pinnacle.c: the scratch data directory, the
 * compact segment encoding, checksum fixing, the oracles (documented result
 * codes; a round trip that keeps the orders and the market data by content),
 * each a pf_violation(): abort() under libFuzzer, counted with PF_REPLAY.
 *
 * Compact segment encoding (what a fuzz input holds for one journal segment):
 * a chunk of n bytes. n < 84: the file is those n bytes (a short header).
 * Otherwise the file is 4096 + (n - 84) bytes: chunk bytes 0..63 are the
 * header (offset 0), 64..83 the durable mark (offset 512), the rest the
 * entries (offset 4096); every other byte is zero, as the loader never reads
 * it. Seeds cut the trailing zeros of the entries. */
#ifndef FUZZ_PINNACLE_COMMON_H
#define FUZZ_PINNACLE_COMMON_H
#define VAULT_IMPLEMENTATION            /* encryption at rest (fuzz_pinnacle_sealed.c) */
#include "vault.h"
#define PICOLOG_ENCRYPT
#define PINNACLE_PERSIST_IMPLEMENTATION
#ifndef PF_REAL_FILES
/* The data directory in memory (fuzz/fuzz_memfs.h): pinnacle's and
 * picolog's file calls on it below are function calls, not system calls;
 * on a VM each is a trap, and an munmap of a journal mapping is a TLB
 * shootdown on every CPU: they were most of an input's time. The test that
 * includes a target still makes its seed stores on real files (every path
 * outside the memory root goes to the kernel). -DPF_REAL_FILES: real files
 * in /dev/shm, as before. */
#include "fuzz_memfs.h"
#endif
#include "pinnacle_persist.h"
#include "fuzz_pinnacle_decode.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define PF_INSTR "BTC-USD"
#define PF_HDR_CHUNK 84u          /* 64 header bytes + 20 mark bytes */
#define PF_MAX_FILE (1u << 20)

/* Quiet, unless PF_VERBOSE is set (to see why an input was refused:
 * PF_VERBOSE=1 build/fuzz/fuzz_pinnacle_store crash-...). */
static void pf_quiet(void *user, int code, const char *msg) {
    (void)user;
    static int v = -1;
    if (v < 0) v = getenv("PF_VERBOSE") != NULL;
    if (v) fprintf(stderr, "pinnacle (%d): %s\n", code, msg);
}

/* The config every target and seed uses: small chunks and segments, no
 * background snapshots or compaction, quiet, and no background thread
 * (PP_NO_THREADS: starting and joining the store's three threads was most
 * of an input's time; every call a target makes does its own upkeep). The
 * seed makers clear PP_NO_THREADS: they build their stores as an engine
 * runs them. */
static pp_config pf_config(const char *dir) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.log_fn = pf_quiet;
    c.flags = PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT | PP_NO_THREADS;
    c.journal_chunk_bytes = 16384;
    c.journal_segment_bytes = 1u << 20;
    c.compaction_threshold = 64u << 10;
    c.expected_orders = 16;
    c.ring_entries = 64;
    c.keep_snapshots = 3;
    return c;
}

/* A data directory per process (in memory; with PF_REAL_FILES on tmpfs when
 * there is one: fsync is cheap). */
static void pf_rm_rf(const char *path);
static const char *pf_base(void);
static void pf_cleanup(void) { pf_rm_rf(pf_base()); rmdir(pf_base()); }
static const char *pf_base(void) {
    static char dir[256];
#ifndef PF_REAL_FILES
    if (!dir[0]) { snprintf(dir, sizeof dir, "%s", FZM_ROOT); atexit(fzm_reset); }
#endif
    if (!dir[0]) {
        struct stat sb;
        const char *base = (stat("/dev/shm", &sb) == 0 && access("/dev/shm", W_OK) == 0) ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/pp_fuzz_%d", base, (int)getpid());
        mkdir(dir, 0755);
        atexit(pf_cleanup);               /* libFuzzer exits through exit() */
    }
    return dir;
}

static void pf_rm_rf(const char *path) {
    DIR *d = opendir(path);
    if (!d) { unlink(path); return; }
    struct dirent *e;
    char p[1200];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) { pf_rm_rf(p); rmdir(p); }
        else unlink(p);
    }
    closedir(d);
}

/* Empties the data directory and makes <instr>/{journal,snapshots,md}. */
static void pf_reset(void) {
    char p[600];
    pf_rm_rf(pf_base());
    snprintf(p, sizeof p, "%s/%s", pf_base(), PF_INSTR); mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/journal", pf_base(), PF_INSTR); mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/snapshots", pf_base(), PF_INSTR); mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/md", pf_base(), PF_INSTR); mkdir(p, 0755);
}

static void pf_write(const char *path, const uint8_t *d, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    while (n > 0) { ssize_t w = write(fd, d, n); if (w <= 0) break; d += w; n -= (size_t)w; }
    close(fd);
}

/* <data_dir>/<instr>/<sub>/<20-digit n><suffix> */
static void pf_path(char *out, size_t cap, const char *sub, uint64_t n, const char *suffix) {
    snprintf(out, cap, "%s/%s/%s/%020llu%s", pf_base(), PF_INSTR, sub, (unsigned long long)n, suffix);
}

/* Reads the next (u32 length, bytes) chunk of a fuzz input. */
static int pf_chunk(const uint8_t *data, size_t size, size_t *at, const uint8_t **p, size_t *n) {
    if (*at + 4 > size) return 0;
    uint32_t len;
    memcpy(&len, data + *at, 4);
    *at += 4;
    if (len > size - *at) len = (uint32_t)(size - *at);
    if (len > PF_MAX_FILE) len = PF_MAX_FILE;
    *p = data + *at; *n = len;
    *at += len;
    return 1;
}

/* Expands a compact segment chunk into a file image: the static buffer of
 * `slot` (0..PF_MAX_SEGS - 1), valid until the next call for that slot. A
 * fresh calloc per segment and input (up to 1 MiB) was an mmap, page faults
 * and an munmap under ASan. */
#define PF_MAX_SEGS 3
static uint8_t *pf_expand_segment(const uint8_t *in, size_t n, size_t *outlen, int slot) {
    static uint8_t img[PF_MAX_SEGS][PP__DATA_OFF + PF_MAX_FILE];
    size_t len = n < PF_HDR_CHUNK ? n : PP__DATA_OFF + (n - PF_HDR_CHUNK);
    if (slot < 0 || slot >= PF_MAX_SEGS || len > sizeof img[0]) return NULL;
    uint8_t *f = img[slot];
    memset(f, 0, len);
    if (n < PF_HDR_CHUNK) { memcpy(f, in, n); }
    else {
        memcpy(f, in, 64);
        memcpy(f + PP__MARK_OFF, in + 64, 20);
        memcpy(f + PP__DATA_OFF, in + PF_HDR_CHUNK, n - PF_HDR_CHUNK);
    }
    *outlen = len;
    return f;
}

/* Fix the header CRC, the mark's CRC (if the mark is not all zero) and the
 * CRC of every entry whose length byte says 48. */
static void pf_fix_segment(uint8_t *f, size_t len) {
    if (len < 64) return;
    pp__put32(f + 60, plg_crc32c(0, f, 60));
    uint64_t salt = pp__get64(f + 16);
    if (len >= PP__MARK_OFF + 20) {
        int nz = 0;
        for (int i = 0; i < 20; i++) nz |= f[PP__MARK_OFF + i];
        if (nz) pp__mark_put(f, salt, pp__get64(f + PP__MARK_OFF), pp__get64(f + PP__MARK_OFF + 8));
    }
    uint32_t seed = pp__seed(salt);
    for (size_t off = PP__DATA_OFF; off + PP__ENTRY <= len; off += PP__ENTRY) {
        uint8_t *e = f + off;
        if (e[6] != PP__ENTRY) continue;
        pp__put32(e, plg_crc32c(seed, e + 4, PP__ENTRY - 4));
    }
}

/* Snapshot: the count that fits the length, and the CRC. */
static void pf_fix_snapshot(uint8_t *f, size_t len) {
    if (len < PP__SNAP_HDR + PP__SNAP_TAIL) return;
    if ((len - PP__SNAP_HDR - PP__SNAP_TAIL) % PP__ENTRY == 0) pp__put64(f + 24, (len - PP__SNAP_HDR - PP__SNAP_TAIL) / PP__ENTRY);
    pp__put32(f + len - PP__SNAP_TAIL, plg_crc32c(0, f, len - PP__SNAP_TAIL));
}

/* md/<seq>.ppm: the gap count that makes the length add up (when the rest
 * is whole gaps), so length mutations get past the size check. */
static void pf_fix_md_counts(uint8_t *f, size_t len) {
    const size_t fixed = 64 + 40 + 24 + 2 * 96 + 8;
    if (len < fixed) return;
    uint64_t nt = pp__get64(f + 32), n1 = pp__get64(f + 40), n60 = pp__get64(f + 48);
    if (nt > len || n1 > len || n60 > len) return;
    uint64_t used = fixed + nt * 96 + (n1 + n60) * 64;
    if (used <= len && (len - used) % 24 == 0) pp__put64(f + 56, (len - used) / 24);
}

/* md/<seq>.ppm and md/spec: the CRC 8 bytes from the end. */
static void pf_fix_tail_crc(uint8_t *f, size_t len) {
    if (len < 8) return;
    pp__put32(f + len - 8, plg_crc32c(0, f, len - 8));
}

/* ---- oracles: a violation aborts under libFuzzer; the replay test
 * (tests/test_fuzz_pinnacle.c, PF_REPLAY) counts it in pf_violations ---- */
static unsigned long pf_violations;
static void pf_violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void pf_violation(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    fprintf(stderr, "fuzz_pinnacle: ORACLE: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    pf_violations++;
#ifndef PF_REPLAY
    pf_cleanup();                        /* abort() skips atexit: leave no scratch directory */
    abort();
#endif
}

/* 0 or one of the documented PP_ERRORS codes. */
static int pf_check_rc(const char *what, int rc) {
    int known = rc == 0;
#define PF__IS(name, val, msg) if (rc == (val)) known = 1;
    PP_ERRORS(PF__IS)
#undef PF__IS
    if (!known) pf_violation("%s returned %d, not 0 or a documented PP_E* code", what, rc);
    return rc;
}

typedef struct pf_orders { pp_order *o; size_t n, cap; } pf_orders;
static int pf_collect(const pp_order *o, void *ctx) {
    pf_orders *v = (pf_orders *)ctx;
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 64;
        pp_order *p = (pp_order *)realloc(v->o, nc * sizeof *p);
        if (!p) abort();
        v->o = p; v->cap = nc;
    }
    v->o[v->n++] = *o;
    return 0;
}
static int pf_by_id(const void *a, const void *b) {
    uint64_t x = ((const pp_order *)a)->id, y = ((const pp_order *)b)->id;
    return x < y ? -1 : x > y;
}
static void pf_orders_of(pp_book *b, pf_orders *v) {
    v->n = 0;
    pf_check_rc("pp_orders", pp_orders(b, pf_collect, v));
    if (v->n) qsort(v->o, v->n, sizeof *v->o, pf_by_id);
    if (v->n != pp_order_count(b)) pf_violation("pp_orders visited %zu, pp_order_count %llu", v->n, (unsigned long long)pp_order_count(b));
}
static int pf_same_order(const pp_order *a, const pp_order *b) {
    return a->id == b->id && a->price == b->price && a->qty == b->qty && a->ts_ns == b->ts_ns && a->side == b->side && a->seq == b->seq;
}

/* What the market-data queries return: counts and content (the first 64
 * ticks, 1 s bars, 1 min bars and gaps, the last tick, the last exchange seq). */
#define PF_MDN 64
typedef struct pf_md {
    int64_t counts[4];
    pp_tick ticks[PF_MDN]; pp_bar bars1[PF_MDN], bars60[PF_MDN]; pp_gap gaps[PF_MDN];
    int last_rc; pp_tick last;
    uint64_t last_exch_seq;
} pf_md;

static void pf_md_queries(pp_book *b, pf_md *m) {
    static pp_tick ticks[PF_MDN]; static pp_bar bars[PF_MDN];
    pp_md_spec sp;
    memset(m, 0, sizeof *m);
    m->last_rc = pf_check_rc("pp_md_last", pp_md_last(b, &m->last));
    (void)pf_check_rc("pp_md_spec_get", pp_md_spec_get(b, &sp));
    m->last_exch_seq = pp_md_last_exch_seq(b);
    m->counts[0] = pp_md_ticks(b, 0, UINT64_MAX, m->ticks, PF_MDN);
    m->counts[1] = pp_md_bars(b, PP_BAR_1S, 0, UINT64_MAX, m->bars1, PF_MDN);
    m->counts[2] = pp_md_bars(b, PP_BAR_1M, 0, UINT64_MAX, m->bars60, PF_MDN);
    m->counts[3] = pp_md_gaps(b, 0, UINT64_MAX, m->gaps, PF_MDN);
    for (int i = 0; i < 4; i++) (void)pf_check_rc("pp_md_ticks/bars/gaps", m->counts[i] < 0 ? (int)m->counts[i] : 0);
    (void)pp_md_ticks(b, 5, 3, ticks, PF_MDN);          /* an empty range the wrong way round */
    (void)pp_md_bars(b, 7, 0, UINT64_MAX, bars, PF_MDN); /* an unsupported resolution */
}

static int pf_same_tick(const pp_tick *a, const pp_tick *b) {   /* field by field: the struct has padding */
    return a->exch_seq == b->exch_seq && a->exch_ts_ns == b->exch_ts_ns && a->recv_ts_ns == b->recv_ts_ns &&
           a->price == b->price && a->size == b->size && a->bid == b->bid && a->bid_size == b->bid_size &&
           a->ask == b->ask && a->ask_size == b->ask_size && a->volume_24h == b->volume_24h &&
           a->trade_id == b->trade_id && a->side == b->side;
}
static int pf_same_bar(const pp_bar *a, const pp_bar *b) {
    return a->start_ns == b->start_ns && a->open == b->open && a->high == b->high && a->low == b->low &&
           a->close == b->close && a->volume == b->volume && a->trades == b->trades && a->gaps == b->gaps;
}

/* The same market data, by content: a violation names the first difference. */
static void pf_md_compare(const pf_md *a, const pf_md *b, const char *what) {
    static const char *const kind[4] = {"ticks", "1 s bars", "1 min bars", "gaps"};
    for (int i = 0; i < 4; i++)
        if (a->counts[i] != b->counts[i]) {
            pf_violation("%s: %s: %lld before, %lld after", what, kind[i], (long long)a->counts[i], (long long)b->counts[i]);
            return;
        }
    int64_t n[4];
    for (int i = 0; i < 4; i++) n[i] = a->counts[i] < 0 ? 0 : a->counts[i] > PF_MDN ? PF_MDN : a->counts[i];
    for (int64_t k = 0; k < n[0]; k++)
        if (!pf_same_tick(&a->ticks[k], &b->ticks[k])) { pf_violation("%s: tick %lld differs (exch seq %llu / %llu)", what, (long long)k, (unsigned long long)a->ticks[k].exch_seq, (unsigned long long)b->ticks[k].exch_seq); return; }
    for (int64_t k = 0; k < n[1]; k++)
        if (!pf_same_bar(&a->bars1[k], &b->bars1[k])) { pf_violation("%s: 1 s bar %lld differs", what, (long long)k); return; }
    for (int64_t k = 0; k < n[2]; k++)
        if (!pf_same_bar(&a->bars60[k], &b->bars60[k])) { pf_violation("%s: 1 min bar %lld differs", what, (long long)k); return; }
    for (int64_t k = 0; k < n[3]; k++)
        if (a->gaps[k].after_seq != b->gaps[k].after_seq || a->gaps[k].next_seq != b->gaps[k].next_seq ||
            a->gaps[k].exch_ts_ns != b->gaps[k].exch_ts_ns) { pf_violation("%s: gap %lld differs", what, (long long)k); return; }
    if (a->last_rc != b->last_rc || (a->last_rc == 0 && !pf_same_tick(&a->last, &b->last)))
        pf_violation("%s: the last tick differs", what);
    else if (a->last_exch_seq != b->last_exch_seq)
        pf_violation("%s: last exchange seq %llu before, %llu after", what, (unsigned long long)a->last_exch_seq, (unsigned long long)b->last_exch_seq);
}

/* The recovered book equals the independent decoder's (fuzz_pinnacle_decode.h):
 * the same last seq and the same orders, every field. */
static unsigned long pf_compared;   /* books compared with the decoder's (the replay test checks it is not 0) */
static void pf_book_compare(pp_book *b, pd_book *d, const char *what) {
    static pf_orders v;
    pf_compared++;
    if (d->corrupt) { pf_violation("%s: pp_open recovered a journal the decoder says is corrupt", what); return; }
    if (pp_last_seq(b) != d->last) {
        pf_violation("%s: recovered up to seq %llu, the decoder %llu", what, (unsigned long long)pp_last_seq(b), (unsigned long long)d->last);
        return;
    }
    pf_orders_of(b, &v);
    if (v.n != d->n) { pf_violation("%s: %zu orders recovered, %zu decoded", what, v.n, d->n); return; }
    for (size_t i = 0; i < v.n; i++) {
        const pp_order *o = &v.o[i];
        pd_ord *e = pd_find(d, o->id, 0);
        if (!e || e->price != o->price || e->qty != o->qty || e->ts != o->ts_ns || e->side != o->side || e->seq != o->seq) {
            pf_violation("%s: order %llu: recovered price %lld qty %lld ts %llu side %u seq %llu, decoded %s", what,
                         (unsigned long long)o->id, (long long)o->price, (long long)o->qty, (unsigned long long)o->ts_ns,
                         (unsigned)o->side, (unsigned long long)o->seq, e ? "other fields" : "no such order");
            return;
        }
    }
}
static pd_book *pf_expect;   /* set by the journal target when the decoder applies (no snapshot) */

/* After a successful recovery: the orders and md history, one more event,
 * optionally a snapshot and a compaction, a clean close, and a reopen that
 * must give back exactly the same book plus the new event. pp_open succeeded
 * once on these files and nothing acknowledged may be lost by reopening. */
static void pf_round_trip(pp_store *st, pp_book *b, int snapshot) {
    static pf_orders before, after;
    static pf_md md0, md1;
    pf_orders_of(b, &before);
    pf_md_queries(b, &md0);
    uint64_t last = pp_last_seq(b);
    uint64_t id = 0x7000000000000001ull;
    while (pp_find(b, id, &(pp_order){0}) == 0) id++;
    pp_order o = {id, 12345, 7, 99, PP_SELL, 0, NULL, 0};
    int rc = pf_check_rc("pp_add", pp_add(b, &o));
    if (rc == 0) {
        if (pp_last_seq(b) != last + 1)
            pf_violation("pp_add moved seq %llu -> %llu", (unsigned long long)last, (unsigned long long)pp_last_seq(b));
        if (pf_check_rc("pp_sync", pp_sync(b)) == 0 && pp_durable(b) != pp_last_seq(b))
            pf_violation("after pp_sync, durable %llu but last %llu", (unsigned long long)pp_durable(b),
                         (unsigned long long)pp_last_seq(b));
        if (snapshot) { pf_check_rc("pp_snapshot", pp_snapshot(b)); pf_check_rc("pp_compact", pp_compact(b)); }
        pf_orders_of(b, &before);
        pf_md_queries(b, &md0);
        last = pp_last_seq(b);
    }
    int crc = pf_check_rc("pp_close", pp_close(st));
    if (rc != 0 || crc != 0) return;               /* nothing promised */
    pp_config c = pf_config(pf_base());
    rc = pf_check_rc("pp_open (again)", pp_open(&st, &c));
    if (rc != 0) { pf_violation("reopen after a clean close failed: %s", pp_strerror(rc)); return; }
    if (pf_check_rc("pp_book_open (again)", pp_book_open(st, PF_INSTR, &b)) != 0) {
        pf_violation("pp_book_open after a clean close and reopen failed");
        pp_close(st);
        return;
    }
    pf_orders_of(b, &after);
    pf_md_queries(b, &md1);
    int bad = pp_last_seq(b) != last || after.n != before.n;
    for (size_t i = 0; !bad && i < after.n; i++) bad = !pf_same_order(&before.o[i], &after.o[i]);
    if (bad)
        pf_violation("reopen lost or changed the book: seq %llu -> %llu, %zu -> %zu orders", (unsigned long long)last,
                     (unsigned long long)pp_last_seq(b), before.n, after.n);
    pf_md_compare(&md0, &md1, "reopen changed the market data");
    pf_check_rc("pp_close (again)", pp_close(st));
}

/* Recovery, the queries, and (round_trip) the round trip. */
static void pf_open_and_use(int round_trip, int snapshot) {
    pp_check_result cr;
    (void)pf_check_rc("pp_check", pp_check(pf_base(), PF_INSTR, &cr));
    pp_config c = pf_config(pf_base());
    pp_store *st = NULL;
    int rc = pf_check_rc("pp_open", pp_open(&st, &c));
    if (rc != 0) { if (st) pf_violation("a store after a failed pp_open (%d)", rc); return; }
    pp_book *b = NULL;
    rc = pf_check_rc("pp_book_open", pp_book_open(st, PF_INSTR, &b));
    if (rc == 0) {
        if (pf_expect) pf_book_compare(b, pf_expect, "recovery vs the independent decoder");
        pp_stats s;
        pp_get_stats(b, &s);
        if (s.last_seq != pp_last_seq(b) || s.durable_seq > s.last_seq || pp_durable(b) > pp_last_seq(b))
            pf_violation("after recovery: last %llu, stats last %llu, durable %llu", (unsigned long long)pp_last_seq(b),
                         (unsigned long long)s.last_seq, (unsigned long long)pp_durable(b));
        /* a sync with nothing new: every journaled event is durable, and no more */
        if (pf_check_rc("pp_sync", pp_sync(b)) == 0 && pp_durable(b) != pp_last_seq(b))
            pf_violation("after recovery and pp_sync, durable %llu but last %llu", (unsigned long long)pp_durable(b),
                         (unsigned long long)pp_last_seq(b));
        if (round_trip) { pf_round_trip(st, b, snapshot); return; }
        static pf_orders v;
        static pf_md md;
        pf_orders_of(b, &v);
        pf_md_queries(b, &md);
    }
    pf_check_rc("pp_close", pp_close(st));
}
#endif
