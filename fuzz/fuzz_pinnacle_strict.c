/* libFuzzer target: strict mode on the store journal (format 2): the
 * records of the store's picolog log, as recovery (pp_open) and the
 * read-only readers (pp_check through pp_list) walk them, with records the
 * store's relay would never write: frames out of place, lengths and
 * checksums that do not fit, frames of books that were never declared,
 * batches and market data of the wrong book, a segment size that changes.
 *
 * Input: byte 0 = flags, then chunks (little-endian u32 length, bytes),
 * each one record of the log (at most 32 KiB), appended in order to a new
 * picolog log (journal/ of a format-2 data directory) and made durable.
 *   flags bit 0  make each record well formed first: its position the end
 *                of the one before (from 0), one CRC seed and 64 KiB
 *                segments for all, each frame's length a multiple of 64 that
 *                fits, each frame's CRC right; a record never crosses a
 *                segment (cut there); the frames' contents stay fuzzed, so
 *                the dispatch to the books sees them
 *   flags bit 1  the log and the store are encrypted at rest under a known
 *                key (pp_config.encrypt_key): the readers decrypt each record
 *   flags bit 2  after a successful open: pp_check of every instrument
 *                pp_list names
 *
 * Oracles (fuzz/fuzz_pinnacle_common.h's pf_violation): every result is a
 * documented code; pp_open opens or refuses with PP_ECORRUPT (or
 * PP_ENOMEM), never anything else; a store that opens, closed and opened
 * again, has the same books at the same last seqs with the same order
 * counts; pp_check agrees that an instrument of an open store is
 * recoverable.
 *
 * The log is written and the store opened without threads (the log with
 * PLG_TEST_NO_THREADS and a plg_io that completes each write at once, the
 * store with PP_NO_THREADS), in memory (fuzz/fuzz_memfs.h).
 *
 * Built with clang -fsanitize=fuzzer,address,undefined (make fuzz); the same
 * function runs in tests/test_fuzz_pinnacle.c on every file in
 * fuzz/regress/fuzz_pinnacle_strict/ and on the seeds. */
#include "fuzz_pinnacle_common.h"

#define PFT_MAX_REC (32u << 10)
#define PFT_SEED 0x51ec7ed5u
static const uint8_t pft_key[32] = "fuzz-strict-store-data-key-32byt";

/* A plg_io that completes every write at once (buffered pwrite, in memory). */
typedef struct pft_io { plg_io_cqe q[64]; int n; } pft_io;
static int pft_write(void *ctx, int fd, const void *buf, uint32_t len, uint64_t off, int dsync, uint64_t tag) {
    pft_io *m = (pft_io *)ctx;
    (void)dsync;
    if (m->n == 64) return -EAGAIN;
    ssize_t w = pwrite(fd, buf, len, (off_t)off);
    m->q[m->n].tag = tag; m->q[m->n].res = w < 0 ? -errno : (int32_t)w; m->n++;
    return 0;
}
static int pft_fsync(void *ctx, int fd, uint64_t tag) {
    pft_io *m = (pft_io *)ctx;
    (void)fd;
    if (m->n == 64) return -EAGAIN;
    m->q[m->n].tag = tag; m->q[m->n].res = 0; m->n++;
    return 0;
}
static int pft_reap(void *ctx, plg_io_cqe *out, int max, uint64_t timeout_ns) {
    pft_io *m = (pft_io *)ctx;
    (void)timeout_ns;
    int k = m->n < max ? m->n : max;
    memcpy(out, m->q, (size_t)k * sizeof *out);
    memmove(m->q, m->q + k, (size_t)(m->n - k) * sizeof *out);
    m->n -= k;
    return k;
}
static pft_io pft_mem;
static unsigned long pft_opened;          /* inputs whose store opened with at least one book (the seed test counts) */
static int pft_plant;                     /* the seed test plants a wrong answer: the reopened book one seq longer */
static plg_io pft_plg_io;

static plg_config pft_log_config(const char *path, int enc) {
    plg_config c;
    memset(&c, 0, sizeof c);
    pft_plg_io.ctx = &pft_mem; pft_plg_io.submit_write = pft_write; pft_plg_io.submit_fsync = pft_fsync; pft_plg_io.reap = pft_reap;
    c.path = path; c.log_fn = pf_quiet; c.io = &pft_plg_io;
    c.io_mode = PLG_IO_BUFFERED_FDATASYNC; c.sync_mode = PLG_SYNC_DSYNC;
    c.ring_capacity = 128u << 10; c.segment_size = 256u << 10;   /* the least ring the store allows */
    c.max_write_bytes = 16u << 10;   /* a small write window: each open scans and erases past it */
    c.flags = PLG_TEST_NO_THREADS | PLG_ALLOW_VOLATILE;   /* memory on purpose */
    c.encrypt_key = enc ? pft_key : NULL;
    return c;
}

/* Record r (n bytes) made well formed at position *end: returns its new length. */
static size_t pft_fix(uint8_t *r, size_t n, uint64_t *end) {
    if (n < PP__SJR_HDR + PP__SJ_ALIGN) return 0;
    uint64_t seg = (uint64_t)1 << 16, room = seg - (*end & (seg - 1));
    size_t len = n;
    if (len - PP__SJR_HDR > room) len = PP__SJR_HDR + (size_t)room;     /* never across a segment */
    len = PP__SJR_HDR + (len - PP__SJR_HDR) / PP__SJ_ALIGN * PP__SJ_ALIGN;
    pp__put64(r, *end); pp__put32(r + 8, PFT_SEED); pp__put32(r + 12, 16);
    size_t off = PP__SJR_HDR;
    while (off < len) {
        uint32_t f = pp__get32(r + off);
        f = f < PP__SJ_ALIGN ? PP__SJ_ALIGN : f / PP__SJ_ALIGN * PP__SJ_ALIGN;
        if (f > PP__SJ_MAXFRAME) f = PP__SJ_MAXFRAME;
        if (off + f > len) f = (uint32_t)(len - off);
        if (r[off + 8] == PP__SJ_PAD) r[off + 8] = PP_EV_ADD;          /* padding is never relayed */
        pp__put32(r + off, f);
        pp__put32(r + off + 4, pp__sj_crc(PFT_SEED, *end + (off - PP__SJR_HDR), r + off, f));
        off += f;
    }
    *end += len - PP__SJR_HDR;
    return len;
}

typedef struct pft_book { char name[PP_MAX_NAME + 1]; uint64_t last, orders; } pft_book;
typedef struct pft_books { pft_book b[64]; int n; } pft_books;
static int pft_visit(const char *name, pp_book *b, void *ctx) {
    pft_books *v = (pft_books *)ctx;
    if (v->n == 64) return 1;
    snprintf(v->b[v->n].name, sizeof v->b[v->n].name, "%s", name);
    v->b[v->n].last = pp_last_seq(b); v->b[v->n].orders = pp_order_count(b);
    v->n++;
    return 0;
}
static int pft_list(const char *name, void *ctx) {
    pp_check_result *r = (pp_check_result *)malloc(sizeof *r);
    if (!r) return 1;
    int rc = pf_check_rc("pp_check", pp_check((const char *)ctx, name, r));
    if (rc != 0) pf_violation("pp_check(%s) = %s on a store that opens: %s", name, pp_strerror(rc), r->detail);
    free(r);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t flags = data[0];
    int enc = (flags & 2) != 0;
    char jd[700], mk[700];
    pf_rm_rf(pf_base());
    mkdir(pf_base(), 0755);
    snprintf(jd, sizeof jd, "%s/journal", pf_base());
    snprintf(mk, sizeof mk, "%s/STORE", pf_base());
    mkdir(jd, 0755);
    static const char store_txt[] = "pinnacle_persist store, format 2: one journal for every instrument\n";
    pf_write(mk, (const uint8_t *)store_txt, sizeof store_txt - 1);
    plg_config lc = pft_log_config(jd, enc);
    plg_log *L;
    pft_mem.n = 0;
    if (plg_open(&L, &lc) != 0) pf_violation("plg_open of a new log failed");
    size_t at = 1;
    const uint8_t *p; size_t n;
    uint64_t end = 0;
    static uint8_t r[PFT_MAX_REC];
    while (pf_chunk(data, size, &at, &p, &n)) {
        if (n > PFT_MAX_REC) n = PFT_MAX_REC;
        if (!n) continue;
        memcpy(r, p, n);
        if (flags & 1) n = pft_fix(r, n, &end);
        if (n && plg_append(L, r, (uint32_t)n) < 0) break;           /* a full ring: the rest is not written */
    }
    if (plg_close(L) != 0) pf_violation("plg_close of the fuzzed log failed");
    pp_config c = pf_config(pf_base());
    c.mode = PP_JOURNAL_STRICT;
    plg_config tl = pft_log_config(NULL, 0);
    c.strict_log = &tl;
    c.encrypt_key = enc ? pft_key : NULL;
    pp_store *st;
    pft_mem.n = 0;
    int rc = pf_check_rc("pp_open", pp_open(&st, &c));
    if (rc != 0 && rc != PP_ECORRUPT && rc != PP_ENOMEM) pf_violation("pp_open of a strict store: %s", pp_strerror(rc));
    if (rc) return 0;
    static pft_books a, b;
    a.n = 0; b.n = 0;
    pf_check_rc("pp_books", pp_books(st, pft_visit, &a));
    if (a.n) pft_opened++;
    pf_check_rc("pp_close", pp_close(st));
    if (flags & 4) {
        const uint8_t *k[1] = { pft_key };
        if (enc) pf_check_rc("pp_read_keys", pp_read_keys(k, 1));
        pf_check_rc("pp_list", pp_list(pf_base(), pft_list, (void *)pf_base()));
        pp_read_keys(NULL, 0);
    }
    pft_mem.n = 0;
    rc = pf_check_rc("pp_open again", pp_open(&st, &c));
    if (rc) { pf_violation("a strict store that opened does not open again: %s", pp_strerror(rc)); return 0; }
    pf_check_rc("pp_books", pp_books(st, pft_visit, &b));
    pf_check_rc("pp_close", pp_close(st));
    if (pft_plant && b.n) b.b[0].last++;
    if (a.n != b.n) pf_violation("reopened with %d books, had %d", b.n, a.n);
    for (int i = 0; i < a.n && i < b.n; i++)
        if (strcmp(a.b[i].name, b.b[i].name) || a.b[i].last != b.b[i].last || a.b[i].orders != b.b[i].orders)
            pf_violation("book %s: last seq %llu, %llu orders; reopened as %s: %llu, %llu", a.b[i].name,
                         (unsigned long long)a.b[i].last, (unsigned long long)a.b[i].orders, b.b[i].name,
                         (unsigned long long)b.b[i].last, (unsigned long long)b.b[i].orders);
    return 0;
}
