/* libFuzzer target: the pinnacle_persist journal loader (pp_check, pp_open's
 * recovery of an mmap journal: segment headers, durable marks, the entry
 * scan, torn-tail cutting, the replay into the book), then pp_orders and the
 * market-data queries, and pp_close, on fuzzed journal segment files (and,
 * if the input asks, a snapshot) of one instrument.
 *
 * Input: byte 0 = flags, then chunks, each a little-endian u32 length and
 * that many bytes: the snapshot file first (flags bit 1), then up to 3
 * journal segments in the compact encoding of fuzz/fuzz_pinnacle_common.h.
 *   flags bit 0     fix the checksums first (segment header CRC, durable
 *                   mark CRC, every entry's CRC with its segment's salt;
 *                   snapshot count and CRC), so mutations reach the
 *                   structural checks (seqs, marks, the book) instead of
 *                   dying at a CRC
 *   flags bit 1     a snapshot chunk comes first (snapshots/<seq>.pps, named
 *                   by the seq in its header; bit 7: by that seq + 1)
 *   flags bit 2     after a successful open: one more event, sync, clean
 *                   close, reopen, and the book must be exactly the same
 *                   (orders, seqs, market-data counts) plus that event
 *   flags bit 3     ... with pp_snapshot and pp_compact before the close
 *   flags bits 4-5  index of the first segment: 1, 2, 0, 1000
 *   flags bit 6     a gap in the segment indexes (the second is first + 2)
 *
 * Must never crash, leak, hang or allocate without bound. Oracles
 * (fuzz/fuzz_pinnacle_common.h; abort() here, counted in the replay test):
 * every result is 0 or one of the documented PP_ERRORS codes; pp_orders and
 * pp_order_count agree; after recovery every journaled event is durable after
 * a sync; the round trip gives back the same orders (every field) and the
 * same market data by content (ticks, 1 s and 1 min bars, gaps, the last
 * tick and exchange seq), not only the same counts. (No independent decoder
 * of the journal yet: see issue 19 item 4.) Built with clang -fsanitize=fuzzer,address,undefined
 * (make fuzz); the same function runs in tests/test_fuzz_pinnacle.c on every
 * file in fuzz/regress/fuzz_pinnacle_journal/ and on the seeds. */
#include "fuzz_pinnacle_common.h"

#define FJ_MAX_SEGS PF_MAX_SEGS

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t flags = data[0];
    size_t at = 1;
    const uint8_t *p; size_t n;
    char path[700];
    pf_reset();
    if ((flags & 2) && pf_chunk(data, size, &at, &p, &n)) {
        uint8_t *f = (uint8_t *)malloc(n ? n : 1);
        if (!f) return 0;
        memcpy(f, p, n);
        if (flags & 1) pf_fix_snapshot(f, n);
        uint64_t seq = n >= 24 ? pp__get64(f + 16) : 0;
        if (flags & 0x80) seq++;
        pf_path(path, sizeof path, "snapshots", seq, ".pps");
        pf_write(path, f, n);
        free(f);
    }
    static const uint64_t first_index[4] = {1, 2, 0, 1000};
    uint64_t idx = first_index[(flags >> 4) & 3];
    pd_seg segs[FJ_MAX_SEGS];
    size_t ns = 0;
    for (int i = 0; i < FJ_MAX_SEGS && pf_chunk(data, size, &at, &p, &n); i++) {
        size_t len = 0;
        uint8_t *f = pf_expand_segment(p, n, &len, i);
        if (!f) break;
        if (flags & 1) pf_fix_segment(f, len);
        pf_path(path, sizeof path, "journal", idx, ".ppj");
        pf_write(path, f, len);
        segs[ns].index = idx; segs[ns].p = f; segs[ns].len = len; ns++;
        idx += (i == 0 && (flags & 0x40)) ? 2 : 1;
    }
    /* without a snapshot, recovery replays the journal from seq 1: decode it
     * independently, and the recovered book must be the decoded one */
    static pd_book want;
    if (!(flags & 2)) { pd_decode(segs, ns, &want); pf_expect = &want; }
    pf_open_and_use((flags & 4) != 0, (flags & 8) != 0);
    pf_expect = NULL;
    pd_table_put(want.t, want.mask + 1); want.t = NULL;
    return 0;
}
