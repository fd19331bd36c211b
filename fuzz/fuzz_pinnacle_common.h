/* Helpers shared by the pinnacle_persist fuzz targets
 * (fuzz/fuzz_pinnacle_journal.c, fuzz/fuzz_pinnacle_snapshot.c) and their
 * seed maker tests/test_fuzz_pinnacle.c: the scratch data directory, the
 * compact segment encoding, checksum fixing, the round-trip oracle.
 *
 * Compact segment encoding (what a fuzz input holds for one journal segment):
 * a chunk of n bytes. n < 84: the file is those n bytes (a short header).
 * Otherwise the file is 4096 + (n - 84) bytes: chunk bytes 0..63 are the
 * header (offset 0), 64..83 the durable mark (offset 512), the rest the
 * entries (offset 4096); every other byte is zero, as the loader never reads
 * it. Seeds cut the trailing zeros of the entries. */
#ifndef FUZZ_PINNACLE_COMMON_H
#define FUZZ_PINNACLE_COMMON_H
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define PF_INSTR "BTC-USD"
#define PF_HDR_CHUNK 84u          /* 64 header bytes + 20 mark bytes */
#define PF_MAX_FILE (1u << 20)

static void pf_quiet(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }

/* The config every target and seed uses: small chunks and segments, no
 * background snapshots or compaction, quiet. */
static pp_config pf_config(const char *dir) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.log_fn = pf_quiet;
    c.flags = PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT;
    c.journal_chunk_bytes = 16384;
    c.journal_segment_bytes = 1u << 20;
    c.compaction_threshold = 64u << 10;
    c.expected_orders = 16;
    c.ring_entries = 64;
    c.keep_snapshots = 3;
    return c;
}

/* A data directory per process (tmpfs when there is one: fsync is cheap). */
static void pf_rm_rf(const char *path);
static const char *pf_base(void);
static void pf_cleanup(void) { pf_rm_rf(pf_base()); rmdir(pf_base()); }
static const char *pf_base(void) {
    static char dir[256];
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

/* Expands a compact segment chunk into a file image (malloc'd). */
static uint8_t *pf_expand_segment(const uint8_t *in, size_t n, size_t *outlen) {
    size_t len = n < PF_HDR_CHUNK ? n : PP__DATA_OFF + (n - PF_HDR_CHUNK);
    uint8_t *f = (uint8_t *)calloc(1, len ? len : 1);
    if (!f) return NULL;
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

static int pf_check_rc(const char *what, int rc) {
    if (rc > 0 || strcmp(pp_strerror(rc), "unknown pinnacle_persist error") == 0) {
        fprintf(stderr, "fuzz_pinnacle: %s returned %d, not 0 or a PP_E* code\n", what, rc);
        abort();
    }
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
    if (v->n != pp_order_count(b)) { fprintf(stderr, "fuzz_pinnacle: pp_orders visited %zu, pp_order_count %llu\n", v->n, (unsigned long long)pp_order_count(b)); abort(); }
}
static int pf_same_order(const pp_order *a, const pp_order *b) {
    return a->id == b->id && a->price == b->price && a->qty == b->qty && a->ts_ns == b->ts_ns && a->side == b->side && a->seq == b->seq;
}

static void pf_md_queries(pp_book *b, int64_t counts[4]) {
    static pp_tick ticks[64]; static pp_bar bars[64]; static pp_gap gaps[64];
    pp_tick last; pp_md_spec sp;
    (void)pf_check_rc("pp_md_last", pp_md_last(b, &last));
    (void)pf_check_rc("pp_md_spec_get", pp_md_spec_get(b, &sp));
    (void)pp_md_last_exch_seq(b);
    counts[0] = pp_md_ticks(b, 0, UINT64_MAX, ticks, 64);
    counts[1] = pp_md_bars(b, PP_BAR_1S, 0, UINT64_MAX, bars, 64);
    counts[2] = pp_md_bars(b, PP_BAR_1M, 0, UINT64_MAX, bars, 64);
    counts[3] = pp_md_gaps(b, 0, UINT64_MAX, gaps, 64);
    for (int i = 0; i < 4; i++) (void)pf_check_rc("pp_md_ticks/bars/gaps", counts[i] < 0 ? (int)counts[i] : 0);
    (void)pp_md_ticks(b, 5, 3, ticks, 64);          /* an empty range the wrong way round */
    (void)pp_md_bars(b, 7, 0, UINT64_MAX, bars, 64); /* an unsupported resolution */
}

/* After a successful recovery: the orders and md history, one more event,
 * optionally a snapshot and a compaction, a clean close, and a reopen that
 * must give back exactly the same book plus the new event. pp_open succeeded
 * once on these files and nothing acknowledged may be lost by reopening. */
static void pf_round_trip(pp_store *st, pp_book *b, int snapshot) {
    static pf_orders before, after;
    pf_orders_of(b, &before);
    int64_t md0[4], md1[4];
    pf_md_queries(b, md0);
    uint64_t last = pp_last_seq(b);
    uint64_t id = 0x7000000000000001ull;
    while (pp_find(b, id, &(pp_order){0}) == 0) id++;
    pp_order o = {id, 12345, 7, 99, PP_SELL, 0};
    int rc = pf_check_rc("pp_add", pp_add(b, &o));
    if (rc == 0) {
        if (pp_last_seq(b) != last + 1) { fprintf(stderr, "fuzz_pinnacle: pp_add moved seq %llu -> %llu\n", (unsigned long long)last, (unsigned long long)pp_last_seq(b)); abort(); }
        if (pf_check_rc("pp_sync", pp_sync(b)) == 0 && pp_durable(b) != pp_last_seq(b)) {
            fprintf(stderr, "fuzz_pinnacle: after pp_sync, durable %llu but last %llu\n",
                    (unsigned long long)pp_durable(b), (unsigned long long)pp_last_seq(b));
            abort();
        }
        if (snapshot) { pf_check_rc("pp_snapshot", pp_snapshot(b)); pf_check_rc("pp_compact", pp_compact(b)); }
        pf_orders_of(b, &before);
        pf_md_queries(b, md0);
        last = pp_last_seq(b);
    }
    int crc = pf_check_rc("pp_close", pp_close(st));
    if (rc != 0 || crc != 0) return;               /* nothing promised */
    pp_config c = pf_config(pf_base());
    rc = pf_check_rc("pp_open (again)", pp_open(&st, &c));
    if (rc != 0) { fprintf(stderr, "fuzz_pinnacle: reopen after a clean close failed: %s\n", pp_strerror(rc)); abort(); }
    if (pf_check_rc("pp_book_open (again)", pp_book_open(st, PF_INSTR, &b)) != 0) abort();
    pf_orders_of(b, &after);
    pf_md_queries(b, md1);
    int bad = pp_last_seq(b) != last || after.n != before.n;
    for (size_t i = 0; !bad && i < after.n; i++) bad = !pf_same_order(&before.o[i], &after.o[i]);
    if (bad) {
        fprintf(stderr, "fuzz_pinnacle: reopen lost or changed the book: seq %llu -> %llu, %zu -> %zu orders\n",
                (unsigned long long)last, (unsigned long long)pp_last_seq(b), before.n, after.n);
        abort();
    }
    if (memcmp(md0, md1, sizeof md0) != 0) {
        fprintf(stderr, "fuzz_pinnacle: reopen changed the market data: ticks %lld/%lld, 1s bars %lld/%lld, 1m bars %lld/%lld, gaps %lld/%lld\n",
                (long long)md0[0], (long long)md1[0], (long long)md0[1], (long long)md1[1], (long long)md0[2], (long long)md1[2],
                (long long)md0[3], (long long)md1[3]);
        abort();
    }
    pf_check_rc("pp_close (again)", pp_close(st));
}

/* Recovery, the queries, and (round_trip) the round trip. */
static void pf_open_and_use(int round_trip, int snapshot) {
    pp_check_result cr;
    (void)pf_check_rc("pp_check", pp_check(pf_base(), PF_INSTR, &cr));
    pp_config c = pf_config(pf_base());
    pp_store *st = NULL;
    int rc = pf_check_rc("pp_open", pp_open(&st, &c));
    if (rc != 0) { if (st) abort(); return; }
    pp_book *b = NULL;
    rc = pf_check_rc("pp_book_open", pp_book_open(st, PF_INSTR, &b));
    if (rc == 0) {
        pp_stats s;
        pp_get_stats(b, &s);
        if (s.last_seq != pp_last_seq(b) || s.durable_seq > s.last_seq || pp_durable(b) > pp_last_seq(b)) {
            fprintf(stderr, "fuzz_pinnacle: after recovery: last %llu, stats last %llu, durable %llu\n",
                    (unsigned long long)pp_last_seq(b), (unsigned long long)s.last_seq, (unsigned long long)pp_durable(b));
            abort();
        }
        /* a sync with nothing new: every journaled event is durable, and no more */
        if (pf_check_rc("pp_sync", pp_sync(b)) == 0 && pp_durable(b) != pp_last_seq(b)) {
            fprintf(stderr, "fuzz_pinnacle: after recovery and pp_sync, durable %llu but last %llu\n",
                    (unsigned long long)pp_durable(b), (unsigned long long)pp_last_seq(b));
            abort();
        }
        if (round_trip) { pf_round_trip(st, b, snapshot); return; }
        static pf_orders v;
        pf_orders_of(b, &v);
        int64_t md[4];
        pf_md_queries(b, md);
    }
    pf_check_rc("pp_close", pp_close(st));
}
#endif
