/* libFuzzer target: the recovery of a format-2 store (PP_STORE_JOURNAL, one
 * journal for every instrument): pp_check and pp_open on fuzzed store
 * journal segments and an optional instrument catalog, checked against the
 * independent decoder pd2_decode (fuzz/fuzz_pinnacle_decode.h).
 *
 * Input: byte 0 = flags, then chunks, each a little-endian u32 length and
 * that many bytes: the catalog instruments.ppc first (flags bit 1), then up
 * to 3 segments. A segment chunk of n < 84 bytes is the whole (short) file;
 * otherwise its bytes 0..63 are the header page's first 64 bytes, 64..83 the
 * first 20 bytes of durable-mark slot 0 (offset 512: end, flags, the
 * generation's low half; slot 1 stays zero), the rest the data area (offset 4096, at most
 * 64 KiB); the file is always 4096 + 64 KiB long, every other byte zero.
 *   flags bit 0     make the checksums and the header fields right first
 *                   (magic, version, alignment, index = the file's, 64 KiB
 *                   data, header CRC; slot 0's CRC, with an even
 *                   generation, if it is not zero;
 *                   every frame's CRC over its position while the lengths
 *                   chain; the catalog's CRC), so mutations reach the
 *                   structural checks (declarations, seqs, the books, marks)
 *   flags bit 1     a catalog chunk comes first
 *   flags bits 4-5  index of the first segment: 1, 2, 3, 1000
 *   flags bit 6     a gap in the segment indexes (the second is first + 2)
 *
 * Oracles (abort()): every result is 0 or a documented PP_E* code; pp_open
 * refuses exactly what the decoder calls corrupt, and when it opens, every
 * book the decoder found is there with the same last seq and the same
 * active orders (every field), and no other book. Must never crash, leak
 * or hang. Built with clang -fsanitize=fuzzer,address,undefined (make fuzz). */
#include "fuzz_pinnacle_common.h"

#define FS_MAX_SEGS 3
#define FS_DATA (64u << 10)

static void fs_reset(void) {
    char p[600];
    pf_rm_rf(pf_base());
    mkdir(pf_base(), 0755);
    snprintf(p, sizeof p, "%s/journal", pf_base()); mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/STORE", pf_base());
    static const char txt[] = "pinnacle_persist store, format 2: one journal for every instrument\n";
    pf_write(p, (const uint8_t *)txt, sizeof txt - 1);
}

/* The image of segment chunk `slot` in a static buffer: a 68 KiB calloc
 * per segment and input made ASan release and fault in its shadow pages
 * each time. */
static uint8_t *fs_expand(const uint8_t *in, size_t n, size_t *outlen, int slot) {
    static uint8_t img[FS_MAX_SEGS][PP__PAGE + FS_DATA];
    size_t len = n < PF_HDR_CHUNK ? n : PP__PAGE + FS_DATA;
    uint8_t *f = img[slot];
    memset(f, 0, len);
    if (n < PF_HDR_CHUNK) memcpy(f, in, n);
    else {
        size_t d = n - PF_HDR_CHUNK;
        if (d > FS_DATA) d = FS_DATA;
        memcpy(f, in, 64);
        memcpy(f + PP__MARK_OFF, in + 64, 20);
        memcpy(f + PP__PAGE, in + PF_HDR_CHUNK, d);
    }
    *outlen = len;
    return f;
}

static void fs_fix(uint8_t *f, size_t len, uint64_t index) {
    if (len < PP__PAGE + FS_DATA) return;
    memcpy(f, PP__SJ_MAGIC, 8);
    pp__put32(f + 8, PP__SJ_VERSION); pp__put32(f + 12, PP__SJ_ALIGN);
    pp__put64(f + 24, index); pp__put64(f + 32, FS_DATA);
    pp__put32(f + 60, plg_crc32c(0, f, 60));
    uint64_t salt = pp__get64(f + 16);
    int nz = 0;
    for (int i = 0; i < 20; i++) nz |= f[PP__MARK_OFF + i];
    uint64_t gen = pp__get64(f + PP__MARK_OFF + 16);
    gen += gen & 1;
    if (nz) pp__sj_mark_put(f + PP__MARK_OFF, salt, pp__get64(f + PP__MARK_OFF), pp__get64(f + PP__MARK_OFF + 8), gen ? gen : 2);
    uint32_t seed = pp__seed(salt);
    for (uint64_t off = 0; off + 64 <= FS_DATA;) {
        uint8_t *fr = f + PP__PAGE + off;
        uint32_t fl = pp__get32(fr);
        if (fl < 64 || fl % 64 || fl > PP__SJ_MAXFRAME || off + fl > FS_DATA) break;
        pp__put32(fr + 4, pp__sj_crc(seed, index * FS_DATA + off, fr, fl));
        off += fl;
    }
}

typedef struct fs_cmp { pd_book *b; int bad; uint64_t seen; } fs_cmp;
static int fs_visit(const pp_order *o, void *ctx) {
    fs_cmp *c = (fs_cmp *)ctx;
    pd_ord *x = pd_find(c->b, o->id, 0);
    c->seen++;
    if (!x || x->state != 1 || x->price != o->price || x->qty != o->qty || x->side != o->side || x->seq != o->seq ||
        x->ts != o->ts_ns)
        c->bad++;
    return 0;
}
static int fs_count(const char *name, pp_book *b, void *ctx) { (void)name; (void)b; (*(int *)ctx)++; return 0; }
static unsigned long fs_compared;   /* books found equal to the decoder's (the replay test counts them) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t flags = data[0];
    size_t at = 1;
    const uint8_t *p; size_t n;
    char path[700];
    fs_reset();
    uint8_t *cat = NULL; size_t catlen = 0;
    if ((flags & 2) && pf_chunk(data, size, &at, &p, &n)) {
        cat = (uint8_t *)malloc(n ? n : 1);
        if (!cat) return 0;
        memcpy(cat, p, n); catlen = n;
        if ((flags & 1) && n >= 20) pp__put32(cat + n - 4, plg_crc32c(0, cat, n - 4));
        snprintf(path, sizeof path, "%s/instruments.ppc", pf_base());
        pf_write(path, cat, catlen);
    }
    static const uint64_t first_index[4] = {1, 2, 3, 1000};
    uint64_t idx = first_index[(flags >> 4) & 3];
    pd_seg segs[FS_MAX_SEGS];
    size_t ns = 0;
    for (int i = 0; i < FS_MAX_SEGS && pf_chunk(data, size, &at, &p, &n); i++) {
        size_t len = 0;
        uint8_t *f = fs_expand(p, n, &len, i);
        if (flags & 1) fs_fix(f, len, idx);
        snprintf(path, sizeof path, "%s/journal/%020llu.ppj", pf_base(), (unsigned long long)idx);
        pf_write(path, f, len);
        memset(&segs[ns], 0, sizeof segs[ns]);
        segs[ns].index = idx; segs[ns].p = f; segs[ns].len = len; ns++;
        idx += (i == 0 && (flags & 0x40)) ? 2 : 1;
    }
    pd2_store st;
    pd2_decode(segs, ns, cat, catlen, &st);
    free(cat);

    pp_check_result cr;
    pf_check_rc("pp_check", pp_check(pf_base(), st.nb ? st.name[0] : PF_INSTR, &cr));
    pp_config c = pf_config(pf_base());
    c.flags |= PP_STORE_JOURNAL;
    c.journal_segment_bytes = FS_DATA;
    c.journal_chunk_bytes = 8192;
    pp_store *S = NULL;
    int rc = pf_check_rc("pp_open", pp_open(&S, &c));
    if (st.corrupt) {
        if (rc == 0) pf_violation("the decoder calls the store corrupt, pp_open opened it");
    } else if (rc == PP_ECORRUPT || rc == PP_EFORMAT) {
        pf_violation("the decoder opens the store, pp_open refused it: %s", pp_strerror(rc));
    }
    if (rc == 0) {
        for (int i = 0; !st.corrupt && i < st.nb; i++) {
            pp_book *b = NULL;
            int br = pf_check_rc("pp_book_open", pp_book_open(S, st.name[i], &b));
            if (br) { pf_violation("book %s of the decoder does not open: %s", st.name[i], pp_strerror(br)); continue; }
            fs_cmp oc = {&st.b[i], 0, 0};
            int orc = pf_check_rc("pp_orders", pp_orders(b, fs_visit, &oc));
            if (!orc && !oc.bad && oc.seen == st.b[i].n && pp_last_seq(b) == st.b[i].last) fs_compared++;
            else pf_violation("book %s differs from the decoder's (seen %llu of %llu, %d differ, last %llu vs %llu)", st.name[i],
                             (unsigned long long)oc.seen, (unsigned long long)st.b[i].n, oc.bad,
                             (unsigned long long)pp_last_seq(b), (unsigned long long)st.b[i].last);
        }
        int nbooks = 0;
        pp_books(S, fs_count, &nbooks);
        if (!st.corrupt && nbooks != st.nb) pf_violation("pp_open has %d books, the decoder %d", nbooks, st.nb);
        pf_check_rc("pp_close", pp_close(S));
    }
    pd2_free(&st);
    return 0;
}
