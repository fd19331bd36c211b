/* libFuzzer target: the pinnacle_persist snapshot loader (snapshots/<seq>.pps:
 * header, count, CRC, the orders' consistency, the fallback to an older
 * snapshot) and the market-data state loader (md/<seq>.ppm, md/spec), with a
 * valid empty or small journal after the snapshot; then pp_orders, the
 * market-data queries and pp_close.
 *
 * Input: byte 0 = flags, then chunks (little-endian u32 length, bytes): the
 * snapshot file, then md/<seq>.ppm (flags bit 1), then md/spec (bit 2).
 *   flags bit 0  fix the checksums first (snapshot count and CRC; the gap
 *                count and CRC of md/<seq>.ppm; the CRC of md/spec), so
 *                mutations reach the decoders
 *   flags bit 1  a market-data state chunk follows (md/<seq>.ppm, the
 *                snapshot's seq)
 *   flags bit 2  an md/spec chunk follows
 *   flags bit 3  a small valid journal after the snapshot (first seq = the
 *                snapshot's + 1): an add, a tick (3 entries), a gap, a fill,
 *                a modify, and a cancel of the snapshot's first order;
 *                otherwise no journal file (pp_open starts a new segment)
 *   flags bit 4  also an older, valid, empty snapshot at seq 0
 *   flags bit 5  after a successful open: one more event, sync, clean close,
 *                reopen, and the book must be the same plus that event
 *   flags bit 6  bytes that are not an entry after the journal (a torn tail)
 *   flags bit 7  the round trip takes pp_snapshot and pp_compact first
 *
 * Oracles as in fuzz/fuzz_pinnacle_journal.c (fuzz/fuzz_pinnacle_common.h):
 * documented PP_ERRORS codes only, and a round trip that keeps the orders
 * and the market data by content.
 *
 * Built with clang -fsanitize=fuzzer,address,undefined (make fuzz); the same
 * function runs in tests/test_fuzz_pinnacle.c on every file in
 * fuzz/regress/fuzz_pinnacle_snapshot/ and on the seeds. */
#include "fuzz_pinnacle_common.h"

static void fs_entry(uint8_t *e, uint32_t seed, int type, int side, uint64_t seq, uint64_t id, int64_t price,
                     int64_t qty, uint64_t ts) {
    pp__ev v;
    v.type = type; v.side = side; v.seq = seq; v.id = id; v.price = price; v.qty = qty; v.ts = ts;
    pp__enc(e, seed, &v);
}

/* journal/00000000000000000001.ppj holding a few valid events after seq s. */
static void fs_journal(uint64_t s, uint64_t snap_first_id, uint64_t exch_seq, uint64_t exch_ts, int torn) {
    static uint8_t f[PP__DATA_OFF + 16 * PP__ENTRY];
    memset(f, 0, sizeof f);
    uint64_t salt = 0x5eed5a17ull;
    memcpy(f, PP__SEG_MAGIC, 8);
    pp__put32(f + 8, PP__VERSION); pp__put32(f + 12, PP__ENTRY);
    pp__put64(f + 16, salt); pp__put64(f + 24, 1); pp__put64(f + 32, s + 1);
    pp__put32(f + 60, plg_crc32c(0, f, 60));
    uint32_t seed = pp__seed(salt);
    uint8_t *e = f + PP__DATA_OFF;
    uint64_t q = s + 1, id = 0x6000000000000001ull;
    fs_entry(e, seed, PP_EV_ADD, PP_BUY, q++, id, 100, 10, 1); e += PP__ENTRY;
    fs_entry(e, seed, PP__EV_TICK1, PP_SELL, q++, exch_seq, 101, 3, exch_ts); e += PP__ENTRY;
    fs_entry(e, seed, PP__EV_TICK2, 0, q++, 77, 99, 5, exch_ts + 10); e += PP__ENTRY;
    fs_entry(e, seed, PP__EV_TICK3, 0, q++, 1000, 102, 6, 0); e += PP__ENTRY;
    fs_entry(e, seed, PP__EV_GAP, 0, q++, exch_seq, (int64_t)(exch_seq + 5), 0, exch_ts + 2000000000ull); e += PP__ENTRY;
    fs_entry(e, seed, PP_EV_EXECUTE, 0, q++, id, 100, 4, 0); e += PP__ENTRY;
    fs_entry(e, seed, PP_EV_MODIFY, 0, q++, id, 98, 6, 0); e += PP__ENTRY;
    if (snap_first_id) { fs_entry(e, seed, PP_EV_CANCEL, 0, q++, snap_first_id, 0, 0, 0); e += PP__ENTRY; }
    if (torn) { memset(e, 0xab, 20); e += PP__ENTRY; }
    char path[700];
    pf_path(path, sizeof path, "journal", 1, ".ppj");
    pf_write(path, f, (size_t)(e - f));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t flags = data[0];
    size_t at = 1;
    const uint8_t *p; size_t n;
    char path[700];
    pf_reset();
    uint64_t seq = 0, first_id = 0, exch_seq = 1, exch_ts = 1700000000000000000ull;
    if (pf_chunk(data, size, &at, &p, &n)) {
        uint8_t *f = (uint8_t *)malloc(n ? n : 1);
        if (!f) return 0;
        memcpy(f, p, n);
        if (flags & 1) pf_fix_snapshot(f, n);
        seq = n >= 24 ? pp__get64(f + 16) : 0;
        if (n >= PP__SNAP_HDR + PP__ENTRY && pp__get64(f + 24) > 0) first_id = pp__get64(f + PP__SNAP_HDR);
        pf_path(path, sizeof path, "snapshots", seq, ".pps");
        pf_write(path, f, n);
        free(f);
    }
    if ((flags & 2) && pf_chunk(data, size, &at, &p, &n)) {
        uint8_t *f = (uint8_t *)malloc(n ? n : 1);
        if (!f) return 0;
        memcpy(f, p, n);
        if (flags & 1) { pf_fix_md_counts(f, n); pf_fix_tail_crc(f, n); }
        if (n >= 32) exch_seq = pp__get64(f + 24) + 1;
        if (n >= 144) exch_ts = pp__get64(f + 136) + 1000000000ull;
        pf_path(path, sizeof path, "md", seq, ".ppm");
        pf_write(path, f, n);
        free(f);
    }
    if ((flags & 4) && pf_chunk(data, size, &at, &p, &n)) {
        uint8_t *f = (uint8_t *)malloc(n ? n : 1);
        if (!f) return 0;
        memcpy(f, p, n);
        if (flags & 1) pf_fix_tail_crc(f, n);
        snprintf(path, sizeof path, "%s/%s/md/spec", pf_base(), PF_INSTR);
        pf_write(path, f, n);
        free(f);
    }
    if (flags & 0x10) {   /* an older, valid, empty snapshot */
        uint8_t f[PP__SNAP_HDR + PP__SNAP_TAIL];
        memset(f, 0, sizeof f);
        memcpy(f, PP__SNAP_MAGIC, 8);
        pp__put32(f + 8, PP__VERSION); pp__put32(f + 12, PP__ENTRY);
        pf_fix_snapshot(f, sizeof f);
        pf_path(path, sizeof path, "snapshots", 0, ".pps");
        if (seq != 0) pf_write(path, f, sizeof f);
    }
    if ((flags & 8) && seq < UINT64_MAX - 64) fs_journal(seq, first_id, exch_seq, exch_ts, (flags & 0x40) != 0);
    pf_open_and_use((flags & 0x20) != 0, (flags & 0x80) != 0);
    return 0;
}
