/* crc_bench: what the writer's CRC32C costs per fragment (picolog.h's
 * plg_crc32c, the SSE4.2 instruction where there is one), on fragments shaped
 * as the writer makes them: the log id (8 bytes), the header's 20 bytes
 * after its CRC (4 bytes into the fragment) and the payload (8-aligned), as
 * plg__frag_crc does. Records of 100 bytes unless --record says otherwise.
 *
 *   crc_bench [--record BYTES] [--count N] [--label NAME]
 *
 * Prints R,crc,<label>,ns_per_fragment (fragments independent of each
 * other: the CPU overlaps them), ns_per_fragment_chained (each CRC starts
 * from the one before: the latency of one fragment's CRC) and
 * ns_per_fragment_portable (the table path), and ns_per_record_framed: the
 * writer's whole framing of a record as plg__drain does it (header, payload
 * copied from a ring of records into a page, CRC; a fresh zeroed page when
 * one is full), on an 8 MiB ring so the payloads come from memory, not L1.
 * Median of 5 timed passes. */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "bench.h"

static double pass(uint32_t (*fn)(uint32_t, const void *, size_t), const uint8_t *frags, size_t stride,
                   uint32_t rec, size_t n, int chained, uint32_t *sink) {
    uint8_t id[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint64_t t0 = bench_tick();
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *f = frags + (i % 64) * stride;
        uint32_t c = fn(chained ? acc : 0, id, 8);   /* chained: each waits for the one before */
        c = fn(c, f + 4, 20);
        c = fn(c, f + 24, rec);
        acc = chained ? c : acc ^ c;
    }
    uint64_t t1 = bench_tick();
    *sink ^= acc;
    return bench_ticks_to_ns(t1 - t0) / (double)n;
}

/* The writer's framing of n records of rec bytes, read in order from a ring
 * of ring_len bytes, into one page reused as the writer reuses its slots:
 * a page's first record with a 24-byte header, the others SHORT (format 5). */
static double framed(const uint8_t *ring, size_t ring_len, uint8_t *page, uint32_t rec, size_t n, uint32_t *sink) {
    size_t step = (8 + (size_t)rec + 7) & ~(size_t)7, pos = 0;
    uint32_t off = 0, acc = 0;
    uint64_t t0 = bench_tick();
    for (size_t i = 0; i < n; i++) {
        if (PLG_PAGE_SIZE - off < (off ? PLG__SHORT_HDR : PLG__FRAG_HDR) + rec) {
            acc ^= plg__get32(page);
            memset(page, 0, PLG_PAGE_SIZE);
            off = 0;
        }
        if (pos + step > ring_len) pos = 0;
        if (off) off += plg__frag_put_short(page + off, 0x1234567890abcdefull, 7, i + 1, ring + pos + 8, rec);
        else off += plg__frag_put(page, 0x1234567890abcdefull, PLG__FULL, 0, 7, rec, i + 1, ring + pos + 8, rec);
        pos += step;
    }
    uint64_t t1 = bench_tick();
    *sink ^= acc;
    return bench_ticks_to_ns(t1 - t0) / (double)n;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    uint32_t rec = 100; size_t n = 10000000; const char *label = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--record"))) rec = (uint32_t)bench_size(v);
        else if ((v = bench_opt(argc, argv, &i, "--count"))) n = (size_t)bench_size(v);
        else if ((v = bench_opt(argc, argv, &i, "--label"))) label = v;
        else { fprintf(stderr, "usage: crc_bench [--record B] [--count N] [--label NAME]\n"); return 2; }
    }
    if (rec == 0 || rec > 4072) { fprintf(stderr, "--record: 1..4072\n"); return 2; }
    char name[64];
    snprintf(name, sizeof name, "%s", label ? label : "fragment");
    bench_timer_calibrate();
    size_t stride = (24 + (size_t)rec + 7) & ~(size_t)7;
    uint8_t *frags = (uint8_t *)malloc(64 * stride);
    if (!frags) return 1;
    for (size_t i = 0; i < 64 * stride; i++) frags[i] = (uint8_t)(i * 131u + 7u);
    size_t ring_len = (size_t)8 << 20;
    uint8_t *ring = (uint8_t *)malloc(ring_len), *page = (uint8_t *)aligned_alloc(PLG_PAGE_SIZE, PLG_PAGE_SIZE);
    if (!ring || !page) return 1;
    for (size_t i = 0; i < ring_len; i++) ring[i] = (uint8_t)(i * 167u + 3u);
    memset(page, 0, PLG_PAGE_SIZE);
    uint32_t sink = 0;
    double hw[5], ch[5], sw[5], fr[5];
    for (int k = 0; k < 5; k++) {
        hw[k] = pass(plg_crc32c, frags, stride, rec, n, 0, &sink);
        ch[k] = pass(plg_crc32c, frags, stride, rec, n, 1, &sink);
        sw[k] = pass(plg_crc32c_portable, frags, stride, rec, n / 4, 0, &sink);
        fr[k] = framed(ring, ring_len, page, rec, n, &sink);
    }
    qsort(fr, 5, sizeof fr[0], cmp_d);
    qsort(hw, 5, sizeof hw[0], cmp_d); qsort(ch, 5, sizeof ch[0], cmp_d); qsort(sw, 5, sizeof sw[0], cmp_d);
    printf("# crc32c of %zu fragments of a %u-byte record (log id, header, payload), median of 5 passes (sink %08x)\n",
           n, rec, sink);
    printf("R,crc,%s,ns_per_fragment,%.2f,ns\n", name, hw[2]);
    printf("R,crc,%s,ns_per_fragment_chained,%.2f,ns\n", name, ch[2]);
    printf("R,crc,%s,ns_per_fragment_portable,%.2f,ns\n", name, sw[2]);
    printf("R,crc,%s,ns_per_record_framed,%.2f,ns\n", name, fr[2]);
    free(frags); free(ring); free(page);
    return 0;
}
