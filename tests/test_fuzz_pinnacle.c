/* The pinnacle_persist fuzz targets (fuzz/fuzz_pinnacle_journal.c,
 * fuzz/fuzz_pinnacle_snapshot.c, fuzz/fuzz_pinnacle_store.c,
 * fuzz/fuzz_pinnacle_sealed.c, fuzz/fuzz_pinnacle_strict.c) in the
 * ordinary test builds (plain, ASan+UBSan, TSan):
 *   - makes their seed corpora from real stores (order events only, rolled
 *     segments, snapshots, market data with a gap, a torn tail) into
 *     $PLG_FUZZ_SEEDS/<target> (default build/fuzz/seeds/<target>), which
 *     `make fuzz` starts from, and runs each seed;
 *   - replays every input in fuzz/regress/<target>/: each crash libFuzzer
 *     ever finds is copied there and stays a regression test;
 *   - every input must pass the targets' oracles (pf_violations stays 0),
 *     and the oracles are shown to fail on a wrong answer. */
#define PF_REPLAY   /* an oracle violation is counted (pf_violations), not abort() */
#define LLVMFuzzerTestOneInput fuzz_pinnacle_journal_one
#include "fuzz/fuzz_pinnacle_journal.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_pinnacle_snapshot_one
#include "fuzz/fuzz_pinnacle_snapshot.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_pinnacle_store_one
#include "fuzz/fuzz_pinnacle_store.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_pinnacle_sealed_one
#include "fuzz/fuzz_pinnacle_sealed.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_pinnacle_strict_one
#include "fuzz/fuzz_pinnacle_strict.c"
#undef LLVMFuzzerTestOneInput
#include "t.h"
#include "fuzz_replay.h"

static int mkdirs(const char *p) {
    char cmd[600]; snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    return system(cmd);
}

static const char *seeds_dir(const char *target) {
    static char d[2][512]; static int k;
    char *s = d[k++ & 1];
    const char *e = getenv("PLG_FUZZ_SEEDS");
    snprintf(s, 512, "%s/%s", e && *e ? e : "build/fuzz/seeds", target);
    return s;
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END); long n = ftell(fp); fseek(fp, 0, SEEK_SET);
    uint8_t *b = (uint8_t *)malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) { free(b); b = NULL; }
    fclose(fp);
    if (b) *len = (size_t)n;
    return b;
}

/* an input being built: flags byte, then chunks */
typedef struct inbuf { uint8_t *p; size_t n, cap; } inbuf;
static void in_put(inbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t nc = (b->n + n) * 2;
        uint8_t *p = (uint8_t *)realloc(b->p, nc);
        if (!p) abort();
        b->p = p; b->cap = nc;
    }
    memcpy(b->p + b->n, d, n); b->n += n;
}
static void in_chunk(inbuf *b, const uint8_t *d, size_t n) {
    uint32_t l = (uint32_t)n;
    in_put(b, &l, 4);
    in_put(b, d, n);
}

static int nseeds_j, nseeds_s;
static void emit(const char *target, const char *name, inbuf *b, int (*fn)(const uint8_t *, size_t), int *count) {
    char p[800]; snprintf(p, sizeof p, "%s/%s_f%02x", seeds_dir(target), name, b->p[0]);
    FILE *fp = fopen(p, "wb");
    if (fp) { fwrite(b->p, 1, b->n, fp); fclose(fp); (*count)++; }
    CHECK_EQ(fn(b->p, b->n), 0);
}

/* a segment file in the compact encoding, trailing zeros cut */
static uint8_t *compact_segment(const uint8_t *f, size_t len, size_t *out) {
    if (len < PP__DATA_OFF) { *out = 0; return NULL; }
    size_t e = len;
    while (e > PP__DATA_OFF && f[e - 1] == 0) e--;
    e = PP__DATA_OFF + (e - PP__DATA_OFF + PP__ENTRY - 1) / PP__ENTRY * PP__ENTRY;
    if (e > len) e = len;
    uint8_t *c = (uint8_t *)malloc(PF_HDR_CHUNK + (e - PP__DATA_OFF) + 1);
    if (!c) abort();
    memcpy(c, f, 64);
    memcpy(c + 64, f + PP__MARK_OFF, 20);
    memcpy(c + PF_HDR_CHUNK, f + PP__DATA_OFF, e - PP__DATA_OFF);
    *out = PF_HDR_CHUNK + (e - PP__DATA_OFF);
    return c;
}

static uint64_t newest(const char *dir, const char *suffix) {
    uint64_t *v; size_t n;
    if (pp__list_numbered(dir, suffix, 0, &v, &n) != 0 || n == 0) return UINT64_MAX;
    uint64_t r = v[n - 1];
    free(v);
    return r;
}

/* Feeds a store the way an engine does: adds, fills, modifies, cancels, and
 * (ticks) market data with one gap; snapshots at the given event counts. */
static void make_store(const char *dir, int nev, int ticks, int snap_at, int snap_at2, uint64_t seed) {
    pp_config c = pf_config(dir);
    c.flags |= PP_LEGACY_LAYOUT;                 /* the journal and snapshot targets read format-1 files */
    c.flags &= ~(uint32_t)PP_NO_THREADS;         /* made as an engine runs a store: the maintainer rolls at the threshold */
    pp_store *st;
    REQUIRE(pp_open(&st, &c) == 0);
    pp_book *b;
    REQUIRE(pp_book_open(st, PF_INSTR, &b) == 0);
    if (ticks) {
        pp_md_spec sp; memset(&sp, 0, sizeof sp);
        sp.price_scale = 100; sp.size_scale = 1000; sp.tick_window_s = 600;
        CHECK_EQ(pp_md_declare(b, &sp), 0);
    }
    uint64_t live[64]; int nlive = 0, nextid = 1, exch = 1;
    for (int i = 0; i < nev; i++) {
        uint64_t r = t_rand(&seed);
        if (i == snap_at || i == snap_at2) CHECK_EQ(pp_snapshot(b), 0);
        if (ticks && r % 4 == 0) {
            pp_tick t; memset(&t, 0, sizeof t);
            exch += (r % 97 == 0) ? 3 : 1;                     /* now and then a gap */
            t.exch_seq = (uint64_t)exch; t.exch_ts_ns = 1700000000000000000ull + (uint64_t)i * 250000000ull;
            t.recv_ts_ns = t.exch_ts_ns + 1000; t.price = 6500000 + (int64_t)(r % 100); t.size = 1 + (int64_t)(r % 7);
            t.bid = t.price - 1; t.ask = t.price + 1; t.bid_size = 3; t.ask_size = 4; t.trade_id = (uint64_t)i; t.side = PP_BUY;
            CHECK_EQ(pp_tick_append(b, &t), 0);
            continue;
        }
        if (nlive < 8 || (nlive < 64 && r % 3 == 0)) {
            pp_order o = {(uint64_t)nextid++, 1000 + (int64_t)(r % 50), 1 + (int64_t)(r % 20), (uint64_t)i, (uint8_t)(r % 2 ? PP_BUY : PP_SELL), 0, NULL, 0};
            CHECK_EQ(pp_add(b, &o), 0);
            live[nlive++] = o.id;
            continue;
        }
        int k = (int)((r >> 8) % (uint64_t)nlive);
        pp_order cur;
        CHECK_EQ(pp_find(b, live[k], &cur), 0);
        switch ((r >> 16) % 3) {
        case 0: CHECK_EQ(pp_cancel(b, live[k]), 0); live[k] = live[--nlive]; break;
        case 1:
            CHECK_EQ(pp_execute(b, live[k], cur.qty > 1 ? 1 : cur.qty, cur.price), 0);
            if (cur.qty == 1) live[k] = live[--nlive];
            break;
        default: CHECK_EQ(pp_modify(b, live[k], cur.price + 1, cur.qty), 0); break;
        }
    }
    CHECK_EQ(pp_close(st), 0);
}

static void emit_store(const char *dir, const char *name, int torn) {
    char jdir[600], sdir[600], mdir[600], p[800];
    snprintf(jdir, sizeof jdir, "%s/%s/journal", dir, PF_INSTR);
    snprintf(sdir, sizeof sdir, "%s/%s/snapshots", dir, PF_INSTR);
    snprintf(mdir, sizeof mdir, "%s/%s/md", dir, PF_INSTR);
    uint64_t *v; size_t n;
    REQUIRE(pp__list_numbered(jdir, ".ppj", 0, &v, &n) == 0);
    uint8_t *seg[3]; size_t segn[3]; size_t ns = 0;
    for (size_t i = 0; i < n && ns < 3; i++) {
        pp__numbered(p, sizeof p, jdir, v[i], ".ppj");
        size_t len = 0;
        uint8_t *f = slurp(p, &len);
        if (!f) continue;
        seg[ns] = compact_segment(f, len, &segn[ns]);
        free(f);
        if (seg[ns]) ns++;
    }
    free(v);
    if (torn && ns) {   /* garbage where the next entry would go */
        uint8_t *s = (uint8_t *)realloc(seg[ns - 1], segn[ns - 1] + 100);
        REQUIRE(s != NULL);
        memset(s + segn[ns - 1], 0x5c, 100);
        seg[ns - 1] = s; segn[ns - 1] += 100;
    }
    uint64_t sseq = newest(sdir, ".pps");
    uint8_t *snap = NULL, *md = NULL, *spec = NULL; size_t snapn = 0, mdn = 0, specn = 0;
    if (sseq != UINT64_MAX) { pp__numbered(p, sizeof p, sdir, sseq, ".pps"); snap = slurp(p, &snapn); }
    if (sseq != UINT64_MAX) { pp__numbered(p, sizeof p, mdir, sseq, ".ppm"); md = slurp(p, &mdn); }
    snprintf(p, sizeof p, "%s/spec", mdir); spec = slurp(p, &specn);
    /* the journal target */
    static const uint8_t jflags[] = {0x00, 0x01, 0x04, 0x0d};
    for (size_t k = 0; k < sizeof jflags; k++) {
        inbuf b = {0, 0, 0};
        uint8_t fl = (uint8_t)(jflags[k] | (snap ? 2 : 0));
        in_put(&b, &fl, 1);
        if (snap) in_chunk(&b, snap, snapn);
        for (size_t i = 0; i < ns; i++) in_chunk(&b, seg[i], segn[i]);
        emit("fuzz_pinnacle_journal", name, &b, fuzz_pinnacle_journal_one, &nseeds_j);
        free(b.p);
    }
    /* the snapshot target */
    if (snap) {
        static const uint8_t sflags[] = {0x00, 0x01, 0x08, 0x18, 0x28, 0xa8, 0x48};
        for (size_t k = 0; k < sizeof sflags; k++) {
            inbuf b = {0, 0, 0};
            uint8_t fl = (uint8_t)(sflags[k] | (md ? 2 : 0) | (spec ? 4 : 0));
            in_put(&b, &fl, 1);
            in_chunk(&b, snap, snapn);
            if (md) in_chunk(&b, md, mdn);
            if (spec) in_chunk(&b, spec, specn);
            emit("fuzz_pinnacle_snapshot", name, &b, fuzz_pinnacle_snapshot_one, &nseeds_s);
            free(b.p);
        }
    }
    for (size_t i = 0; i < ns; i++) free(seg[i]);
    free(snap); free(md); free(spec);
}

static int quick(void) { return getenv("PLG_TEST_QUICK") != NULL; }

static void test_seed_corpus(void) {
    CHECK_EQ(mkdirs(seeds_dir("fuzz_pinnacle_journal")), 0);
    CHECK_EQ(mkdirs(seeds_dir("fuzz_pinnacle_snapshot")), 0);
    const char *d;
    d = t_dir("fzp_small");   make_store(d, 40, 0, -1, -1, 1);   emit_store(d, "small", 0);
    d = t_dir("fzp_snap");    make_store(d, 120, 0, 60, -1, 2);  emit_store(d, "snapshot", 0);
    d = t_dir("fzp_md");      make_store(d, 200, 1, 80, 150, 3); emit_store(d, "marketdata", 0);
    d = t_dir("fzp_torn");    make_store(d, 60, 1, 30, -1, 4);   emit_store(d, "torn", 1);
    if (!quick()) { d = t_dir("fzp_rolled"); make_store(d, 2200, 1, 900, 1900, 5); emit_store(d, "rolled", 0); }
    /* an empty snapshot and nothing else */
    {
        uint8_t s[PP__SNAP_HDR + PP__SNAP_TAIL]; memset(s, 0, sizeof s);
        memcpy(s, PP__SNAP_MAGIC, 8); pp__put32(s + 8, PP__VERSION); pp__put32(s + 12, PP__ENTRY); pp__put64(s + 16, 5);
        pf_fix_snapshot(s, sizeof s);
        inbuf b = {0, 0, 0};
        uint8_t fl = 0x08;
        in_put(&b, &fl, 1); in_chunk(&b, s, sizeof s);
        emit("fuzz_pinnacle_snapshot", "empty", &b, fuzz_pinnacle_snapshot_one, &nseeds_s);
        free(b.p);
    }
    CHECK_EQ(pf_violations, 0);
    CHECK(pf_compared >= 3);            /* the decoder oracle ran on the seeds (those without a snapshot) */
    printf("  %lu recovered books compared with the independent decoder's\n", pf_compared);
    CHECK(nseeds_j >= 16);
    CHECK(nseeds_s >= 15);
    printf("  %d + %d seed inputs in %s and %s\n", nseeds_j, nseeds_s, seeds_dir("fuzz_pinnacle_journal"), seeds_dir("fuzz_pinnacle_snapshot"));
}

/* fuzz_pinnacle_store: seeds from real format-2 stores (three books, their
 * declarations and events interleaved, rolled segments, a torn tail), as
 * compact segment chunks with trailing zeros cut; each must open equal to
 * the decoder's books. */
static int nseeds_st;
static void emit_store2(const char *dir, const char *name, int torn) {
    char jd[700];
    snprintf(jd, sizeof jd, "%s/journal", dir);
    uint64_t *v; size_t n;
    if (pp__list_numbered(jd, ".ppj", 0, &v, &n) != 0) { CHECK(0); return; }
    for (int fix = 0; fix < 2; fix++) {
        inbuf b = {0, 0, 0};
        uint8_t fl = (uint8_t)(fix | (v[0] == 2 ? 0x10 : v[0] == 3 ? 0x20 : 0));
        in_put(&b, &fl, 1);
        for (size_t i = 0; i < n && i < FS_MAX_SEGS; i++) {
            char p[900];
            snprintf(p, sizeof p, "%s/%020llu.ppj", jd, (unsigned long long)v[i]);
            size_t len = 0;
            uint8_t *f = slurp(p, &len);
            if (!f || len < PP__PAGE) { free(f); CHECK(0); continue; }
            size_t e = len;
            while (e > PP__PAGE && f[e - 1] == 0) e--;
            e = PP__PAGE + (e - PP__PAGE + 63) / 64 * 64;
            if (e > len) e = len;
            if (torn && i + 1 == n && e > PP__PAGE + 64) memset(f + e - 40, 0xA5, 40);   /* a torn last frame */
            uint8_t *c = (uint8_t *)malloc(PF_HDR_CHUNK + (e - PP__PAGE) + 1);
            if (!c) abort();
            memcpy(c, f, 64); memcpy(c + 64, f + PP__MARK_OFF, 20); memcpy(c + PF_HDR_CHUNK, f + PP__PAGE, e - PP__PAGE);
            in_chunk(&b, c, PF_HDR_CHUNK + (e - PP__PAGE));
            free(c); free(f);
        }
        emit("fuzz_pinnacle_store", name, &b, fuzz_pinnacle_store_one, &nseeds_st);
        free(b.p);
    }
    free(v);
}
static int mk2_strict;                           /* make_store2 makes a strict store (one picolog log) */
static void make_store2(const char *dir, int nev, uint64_t seed) {
    pp_config c = pf_config(dir);
    c.flags |= PP_STORE_JOURNAL;
    c.flags &= ~(uint32_t)PP_NO_THREADS;         /* made as an engine runs a store */
    plg_config tl;
    memset(&tl, 0, sizeof tl);
    tl.ring_capacity = 256u << 10; tl.segment_size = 256u << 10; tl.io_mode = PLG_IO_BUFFERED_FDATASYNC;
    if (mk2_strict) { c.mode = PP_JOURNAL_STRICT; c.strict_log = &tl; }
    c.journal_segment_bytes = FS_DATA;
    c.journal_chunk_bytes = 8192;
    pp_store *s;
    pp_book *b[3];
    if (pp_open(&s, &c) != 0) { CHECK(0); return; }
    for (int i = 0; i < 3; i++) {
        char nm[16]; snprintf(nm, sizeof nm, "S%d", i);
        if (pp_book_open(s, nm, &b[i]) != 0) { CHECK(0); pp_close(s); return; }
    }
    uint64_t r = seed, next[3] = {1, 1, 1};
    int open0 = 0, in0 = 0;
    for (int k = 0; k < nev; k++) {
        int i = (int)(t_rand(&r) % 3);
        uint64_t x = t_rand(&r);
        pp_order o = {next[i], 1000 + (int64_t)(x % 50), 1 + (int64_t)(x % 9), 100 + (uint64_t)k, (uint8_t)(x & 1 ? PP_BUY : PP_SELL), 0, NULL, 0};
        if (i == 0 && !open0) open0 = pp_batch_begin(b[0]) == 0;   /* S0's events in atomic batches (batch frames) */
        if (next[i] > 3 && x % 4 == 0) (void)pp_cancel(b[i], next[i] - 2);
        else if (next[i] > 3 && x % 4 == 1) (void)pp_execute(b[i], next[i] - 1, 1, o.price);
        else if (i == 2 && x % 7 == 2) {          /* S2 also gets market data: whole-tick frames (128 bytes) */
            pp_tick t;
            memset(&t, 0, sizeof t);
            t.exch_seq = 1000 + (uint64_t)k + (x % 3 == 0);   /* now and then a gap frame before it */
            t.exch_ts_ns = 1700000000000000000ull + (uint64_t)k * 1000; t.recv_ts_ns = t.exch_ts_ns + 5;
            t.price = 1000 + (int64_t)(x % 50); t.size = 1 + (int64_t)(x % 7); t.side = PP_BUY;
            t.bid = t.price - 1; t.ask = t.price + 1; t.bid_size = t.ask_size = 3; t.trade_id = (uint64_t)k;
            int rc = pp_tick_append(b[i], &t);
            CHECK(rc == 0 || rc == PP_EDUP);
        }
        else if (i == 2 && pp_add(b[i], &o) == 0) next[i]++;
        else if (i != 2) {                       /* S0 and S1 carry payloads (frames longer than 64 bytes) */
            uint8_t pl[PP_PAYLOAD_MAX];
            uint32_t pn = (uint32_t)((x >> 8) % (PP_PAYLOAD_MAX + 1));
            for (uint32_t q = 0; q < pn; q++) pl[q] = (uint8_t)(x >> (q % 56));
            pp_event e;
            memset(&e, 0, sizeof e);
            e.type = PP_EV_ADD; e.order_id = o.id; e.side = o.side; e.price = o.price; e.qty = o.qty; e.ts_ns = o.ts_ns;
            e.payload = pl; e.payload_len = pn;
            int rc = pp_apply(b[i], &e);
            if (rc == PP_ETOOBIG && open0) {     /* the batch's frame is full: commit it, the add goes alone */
                CHECK_EQ(pp_batch_commit(b[0]), 0); open0 = 0;
                rc = pp_apply(b[i], &e);
            }
            CHECK_EQ(rc, 0);
            if (rc == 0) next[i]++;
        }
        if (i == 0 && open0 && ++in0 % 5 == 0) { CHECK_EQ(pp_batch_commit(b[0]), 0); open0 = 0; }
    }
    if (open0) CHECK_EQ(pp_batch_commit(b[0]), 0);
    CHECK_EQ(pp_sync(b[0]), 0);
    CHECK_EQ(pp_close(s), 0);
}
static void test_store_seed_corpus(void) {
    CHECK_EQ(mkdirs(seeds_dir("fuzz_pinnacle_store")), 0);
    unsigned long v0 = pf_violations, c0 = fs_compared;
    const char *d;
    d = t_dir("fzs_small");  make_store2(d, 60, 1);   emit_store2(d, "small", 0);
    d = t_dir("fzs_torn");   make_store2(d, 90, 2);   emit_store2(d, "torn", 1);
    d = t_dir("fzs_rolled"); make_store2(d, quick() ? 1100 : 2500, 3); emit_store2(d, "rolled", 0);
    CHECK_EQ(pf_violations - v0, 0);
    CHECK(fs_compared - c0 >= 12);      /* the recovered books equal the decoder's, 3 per input */
    CHECK_EQ(nseeds_st, 6);
    printf("  %d seed inputs in %s; %lu books equal to the decoder's\n", nseeds_st, seeds_dir("fuzz_pinnacle_store"), fs_compared - c0);
}
static void test_regressions_store(void) {
    unsigned long v0 = pf_violations;
    t_fuzz_replay("fuzz_pinnacle_store", fuzz_pinnacle_store_one);
    CHECK_EQ(pf_violations - v0, 0);
}

static void test_regressions_journal(void) {
    unsigned long v0 = pf_violations;
    t_fuzz_replay("fuzz_pinnacle_journal", fuzz_pinnacle_journal_one);
    CHECK_EQ(pf_violations - v0, 0);
}
static void test_regressions_snapshot(void) {
    unsigned long v0 = pf_violations;
    t_fuzz_replay("fuzz_pinnacle_snapshot", fuzz_pinnacle_snapshot_one);
    CHECK_EQ(pf_violations - v0, 0);
}

/* The oracles fail on a wrong answer: market data read twice from one store
 * agrees, and each planted difference in content (not in counts) is caught;
 * an undocumented result code is caught. */
static void test_oracles_can_fail(void) {
    const char *d = t_dir("fzp_oracle");
    make_store(d, 200, 1, 80, 150, 3);
    pp_config c = pf_config(d);
    pp_store *st;
    REQUIRE(pp_open(&st, &c) == 0);
    pp_book *b;
    REQUIRE(pp_book_open(st, PF_INSTR, &b) == 0);
    {   /* one tick after a jump in the exchange seq: a gap */
        pp_tick t, last;
        REQUIRE(pp_md_last(b, &last) == 0);
        t = last; t.exch_seq += 5; t.exch_ts_ns += 1000000000ull; t.recv_ts_ns += 1000000000ull; t.trade_id++;
        CHECK_EQ(pp_tick_append(b, &t), 0);
    }
    static pf_md good, bad;
    unsigned long v0 = pf_violations;
    pf_md_queries(b, &good);
    pf_md_queries(b, &bad);
    CHECK_EQ(pp_close(st), 0);
    REQUIRE(good.counts[0] >= 2 && good.counts[1] >= 1 && good.counts[3] >= 1);
    pf_md_compare(&good, &bad, "oracle");
    CHECK_EQ(pf_violations - v0, 0);
    bad.ticks[1].price++;                                   /* a tick's price changed, same counts */
    pf_md_compare(&good, &bad, "planted");
    CHECK_EQ(pf_violations - v0, 1);
    bad = good; bad.bars1[0].volume--;                      /* a bar's volume */
    pf_md_compare(&good, &bad, "planted");
    CHECK_EQ(pf_violations - v0, 2);
    bad = good; bad.gaps[0].next_seq++;                     /* a gap's end */
    pf_md_compare(&good, &bad, "planted");
    CHECK_EQ(pf_violations - v0, 3);
    bad = good; bad.last.side ^= 3;                         /* the last tick */
    pf_md_compare(&good, &bad, "planted");
    CHECK_EQ(pf_violations - v0, 4);
    /* the decoder oracle: the store's journal decoded independently is the
     * recovered book; then planted differences */
    {
        char jd[700]; snprintf(jd, sizeof jd, "%s/%s/journal", d, PF_INSTR);
        pd_seg segs[8]; size_t ns = 0;
        for (uint64_t ix = 0; ix < 64 && ns < 8; ix++) {
            char f[800]; snprintf(f, sizeof f, "%s/%020llu.ppj", jd, (unsigned long long)ix);
            size_t len = 0;
            uint8_t *img = slurp(f, &len);
            if (!img) continue;
            segs[ns].index = ix; segs[ns].p = img; segs[ns].len = len; ns++;
        }
        REQUIRE(ns >= 1);
        static pd_book dec;
        pd_decode(segs, ns, &dec);
        for (size_t i = 0; i < ns; i++) free((void *)segs[i].p);
        CHECK(!dec.corrupt && dec.n >= 1 && dec.last >= 100);
        REQUIRE(pp_open(&st, &c) == 0);
        REQUIRE(pp_book_open(st, PF_INSTR, &b) == 0);
        unsigned long w0 = pf_violations;
        pf_book_compare(b, &dec, "oracle");
        CHECK_EQ(pf_violations - w0, 0);
        dec.last++;                                        /* recovery one event short */
        pf_book_compare(b, &dec, "planted");
        CHECK_EQ(pf_violations - w0, 1);
        dec.last--;
        pd_ord *o = NULL;
        for (size_t i = 0; i <= dec.mask && !o; i++) if (dec.t[i].state == 1) o = &dec.t[i];
        REQUIRE(o != NULL);
        o->qty++;                                          /* a fill lost */
        pf_book_compare(b, &dec, "planted");
        CHECK_EQ(pf_violations - w0, 2);
        o->qty--; o->seq++;                                /* a modify's priority rule */
        pf_book_compare(b, &dec, "planted");
        CHECK_EQ(pf_violations - w0, 3);
        o->seq--; o->state = 2; dec.n--;                   /* an order recovery should not have */
        pf_book_compare(b, &dec, "planted");
        CHECK_EQ(pf_violations - w0, 4);
        o->state = 1; dec.n++;
        pf_book_compare(b, &dec, "again");
        CHECK_EQ(pf_violations - w0, 4);
        CHECK_EQ(pp_close(st), 0);
        free(dec.t);
    }
    (void)pf_check_rc("planted", -30299);                   /* undocumented codes */
    (void)pf_check_rc("planted", 2);
    CHECK_EQ(pf_violations - v0, 10);
    (void)pf_check_rc("documented", PP_EMFILE);
    CHECK_EQ(pf_violations - v0, 10);
    pf_violations = v0;
}

/* fuzz_pinnacle_sealed: seeds of each mode (a snapshot of a real store as
 * the plaintext, a file the store sealed, lengths around the block size),
 * the regressions, and its oracles shown to fail on planted wrong answers. */
static int nseeds_se;
static void test_sealed_seeds_and_oracles(void) {
    CHECK_EQ(mkdirs(seeds_dir("fuzz_pinnacle_sealed")), 0);
    unsigned long v0 = pf_violations;
    const char *d = t_dir("fzse_snap");
    make_store(d, 120, 0, 60, -1, 2);
    char p[900];
    snprintf(p, sizeof p, "%s/%s/snapshots/%020llu.pps", d, PF_INSTR, 60ull);
    size_t sl = 0;
    uint8_t *snap = slurp(p, &sl);
    REQUIRE(snap != NULL && sl > PP__SNAP_HDR);
    for (int mode = 0; mode < 8; mode++) {
        inbuf b = {0, 0, 0};
        uint8_t m = (uint8_t)mode;
        in_put(&b, &m, 1);
        if ((mode & 3) == 0) {            /* a file the store sealed (or, mode 4, a plain one) */
            char q[900];
            snprintf(q, sizeof q, "%s/sealed.pps", d);
            REQUIRE(pp__write_file_k(mode & 4 ? NULL : pfs_keys(), q, snap, sl, 0600) == 0);
            size_t fl = 0;
            uint8_t *f = slurp(q, &fl);
            REQUIRE(f != NULL);
            in_put(&b, f, fl);
            free(f);
        } else {
            uint8_t pick[5] = {(uint8_t)(mode * 37), 0, 0, 0, (uint8_t)(1u << mode)};
            if ((mode & 3) >= 2) in_put(&b, pick, sizeof pick);
            in_put(&b, snap, mode & 4 ? 15 + (size_t)mode : sl);   /* lengths around a block too */
        }
        char nm[32];
        snprintf(nm, sizeof nm, "mode%d", mode);
        emit("fuzz_pinnacle_sealed", nm, &b, fuzz_pinnacle_sealed_one, &nseeds_se);
        free(b.p);
    }
    free(snap);
    CHECK_EQ(nseeds_se, 8);
    CHECK_EQ(pf_violations - v0, 0);
    t_fuzz_replay("fuzz_pinnacle_sealed", fuzz_pinnacle_sealed_one);
    CHECK_EQ(pf_violations - v0, 0);
    /* planted: the round trip returns a changed byte; a "damaged" file that was not damaged */
    uint8_t in1[40] = {1};
    for (size_t i = 1; i < sizeof in1; i++) in1[i] = (uint8_t)i;
    pfs_plant = 1;
    fuzz_pinnacle_sealed_one(in1, sizeof in1);
    CHECK_EQ(pf_violations - v0, 1);
    in1[0] = 2;
    pfs_plant = 2;
    fuzz_pinnacle_sealed_one(in1, sizeof in1);
    CHECK_EQ(pf_violations - v0, 2);
    pfs_plant = 0;
    fuzz_pinnacle_sealed_one(in1, sizeof in1);
    CHECK_EQ(pf_violations - v0, 2);
    pf_violations = v0;
    printf("  %d seed inputs in %s\n", nseeds_se, seeds_dir("fuzz_pinnacle_sealed"));
}

/* fuzz_pinnacle_strict: seeds from real strict stores (three books with
 * payloads, batches and market data; the records of their picolog log as
 * chunks), raw, made well formed, encrypted, with pp_check; each must open
 * with the books it was written with. */
static int nseeds_sx;
static void emit_strict(const char *dir, const char *name) {
    char jd[700];
    snprintf(jd, sizeof jd, "%s/journal", dir);
    static const uint8_t fl[4] = {0, 1, 2, 5};
    for (int k = 0; k < 4; k++) {
        inbuf b = {0, 0, 0};
        in_put(&b, &fl[k], 1);
        plg_reader *r;
        if (plg_reader_open(&r, jd) != 0) { CHECK(0); free(b.p); return; }
        plg_record rec;
        int nrec = 0;
        while (plg_reader_next(r, &rec) == 1 && nrec < 64) { in_chunk(&b, rec.data, rec.len); nrec++; }
        plg_reader_close(r);
        CHECK(nrec >= 1);
        emit("fuzz_pinnacle_strict", name, &b, fuzz_pinnacle_strict_one, &nseeds_sx);   /* named NAME_f<flags> */
        free(b.p);
    }
}
static void test_strict_seeds_and_oracles(void) {
    CHECK_EQ(mkdirs(seeds_dir("fuzz_pinnacle_strict")), 0);
    unsigned long v0 = pf_violations;
    mk2_strict = 1;
    unsigned long o0 = pft_opened;
    const char *d;
    d = t_dir("fzx_small");  make_store2(d, 60, 11);  emit_strict(d, "small");
    d = t_dir("fzx_more");   make_store2(d, 400, 12); emit_strict(d, "more");
    mk2_strict = 0;
    CHECK_EQ(nseeds_sx, 8);
    CHECK_EQ(pft_opened - o0, 8);        /* every seed is a store that opens with its books */
    CHECK_EQ(pf_violations - v0, 0);
    t_fuzz_replay("fuzz_pinnacle_strict", fuzz_pinnacle_strict_one);
    CHECK_EQ(pf_violations - v0, 0);
    {   /* the round-trip oracle fails on a planted wrong answer */
        char p[900];
        snprintf(p, sizeof p, "%s/small_f01", seeds_dir("fuzz_pinnacle_strict"));
        size_t n = 0;
        uint8_t *in = slurp(p, &n);
        REQUIRE(in != NULL);
        pft_plant = 1;
        fuzz_pinnacle_strict_one(in, n);
        pft_plant = 0;
        CHECK_EQ(pf_violations - v0, 1);
        fuzz_pinnacle_strict_one(in, n);
        CHECK_EQ(pf_violations - v0, 1);
        free(in);
        pf_violations = v0;
    }
    printf("  %d seed inputs in %s\n", nseeds_sx, seeds_dir("fuzz_pinnacle_strict"));
}

int main(void) {
    RUN(test_seed_corpus);
    RUN(test_regressions_journal);
    RUN(test_regressions_snapshot);
    RUN(test_store_seed_corpus);
    RUN(test_regressions_store);
    RUN(test_oracles_can_fail);
    RUN(test_sealed_seeds_and_oracles);
    RUN(test_strict_seeds_and_oracles);
    return t_done();       /* the scratch directory goes at exit */
}
