/* The fuzz target fuzz/fuzz_picolog_reader.c in the ordinary test builds
 * (plain, ASan+UBSan, TSan):
 *   - makes the seed corpus from real logs (several shapes: small records,
 *     records spanning pages and segments, a torn tail, several incarnations)
 *     into $PLG_FUZZ_SEEDS/fuzz_picolog_reader (default build/fuzz/seeds/...),
 *     which `make fuzz` / `make test-fuzz` start from, and runs each seed;
 *   - replays every input in fuzz/regress/fuzz_picolog_reader/: each crash
 *     libFuzzer ever finds is copied there and stays a regression test;
 *   - every input must pass the target's oracles (fz_violations stays 0),
 *     and the oracles are shown to fail on a wrong answer. */
#define FZ_REPLAY   /* an oracle violation is counted (fz_violations), not abort() */
#include "fuzz/fuzz_picolog_reader.c"
#include "t.h"
#include "fuzz_replay.h"
#include <dirent.h>
#include <fcntl.h>

static void quiet_log(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }

static int mkdirs(const char *p) {
    char cmd[600]; snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    return system(cmd);
}

/* Pack a log directory as one fuzz input: flags, then (u32 len, bytes) per
 * segment with the trailing zeros cut. */
static size_t pack(const char *dir, uint8_t flags, uint8_t *out, size_t cap) {
    size_t n = 0;
    out[n++] = flags;
    static uint8_t f[1 << 20];
    for (int i = 1; i <= 3; i++) {
        char name[600]; snprintf(name, sizeof name, "%s/%020d.plg", dir, i);
        int fd = open(name, O_RDONLY);
        if (fd < 0) break;
        ssize_t got = read(fd, f, sizeof f);
        close(fd);
        if (got < 0) got = 0;
        size_t len = (size_t)got;
        while (len > 0 && f[len - 1] == 0) len--;
        len = (len + 7) & ~(size_t)7;
        if (n + 4 + len > cap) break;
        plg__put32(out + n, (uint32_t)len); n += 4;
        memcpy(out + n, f, len); n += len;
    }
    return n;
}

static const char *seeds_dir(void) {
    static char d[512];
    const char *e = getenv("PLG_FUZZ_SEEDS");
    snprintf(d, sizeof d, "%s/fuzz_picolog_reader", e && *e ? e : "build/fuzz/seeds");
    return d;
}

static int nseeds;
static void emit(const char *logdir, const char *name) {
    static uint8_t in[4 << 20];
    for (uint8_t flags = 0; flags < 4; flags++) {
        size_t n = pack(logdir, (uint8_t)(flags | (nseeds % 7) << 2), in, sizeof in);
        char p[700]; snprintf(p, sizeof p, "%s/%s_f%u", seeds_dir(), name, flags);
        FILE *fp = fopen(p, "wb");
        if (fp) { fwrite(in, 1, n, fp); fclose(fp); nseeds++; }
        CHECK_EQ(LLVMFuzzerTestOneInput(in, n), 0);
    }
}

static void make_log(const char *dir, int nrec, uint32_t maxlen, int reopen, uint64_t seed) {
    plg_config c; memset(&c, 0, sizeof c);
    c.path = dir; c.log_fn = quiet_log; c.segment_size = 64 * 1024; c.ring_capacity = 1u << 20;
    c.max_inflight = 2; c.max_write_bytes = 8192;
    static uint8_t buf[200000];
    for (int inc = 0; inc <= reopen; inc++) {
        plg_log *L;
        int rc = plg_open(&L, &c);
        if (rc == PLG_ENODIRECT) { c.io_mode = PLG_IO_BUFFERED_FDATASYNC; rc = plg_open(&L, &c); }
        if (rc) { CHECK_EQ(rc, 0); return; }
        for (int i = 0; i < nrec; i++) {
            uint32_t len = 1 + (uint32_t)(t_rand(&seed) % maxlen);
            memset(buf, (int)(i + inc), len);
            while (plg_append(L, buf, len) == PLG_EFULL) sched_yield();
        }
        CHECK_EQ(plg_close(L), 0);
    }
}

static void test_seed_corpus(void) {
    CHECK_EQ(mkdirs(seeds_dir()), 0);
    const char *d;
    d = t_dir("fz_small");  make_log(d, 40, 100, 0, 1);    emit(d, "small");
    d = t_dir("fz_pages");  make_log(d, 30, 6000, 0, 2);   emit(d, "pages");
    d = t_dir("fz_big");    make_log(d, 3, 100000, 0, 3);  emit(d, "segments");
    d = t_dir("fz_incs");   make_log(d, 20, 300, 2, 4);    emit(d, "incarnations");
    d = t_dir("fz_torn");   make_log(d, 60, 200, 0, 5);
    {   /* tear the tail: zero the second half of the last data page */
        char f[600]; snprintf(f, sizeof f, "%s/%020d.plg", d, 1);
        int fd = open(f, O_RDWR);
        static uint8_t z[2048];
        if (fd >= 0) { CHECK_EQ(pwrite(fd, z, sizeof z, 4096 * 3 + 2048), 2048); close(fd); }
    }
    emit(d, "torn");
    CHECK(nseeds >= 20);
    CHECK_EQ(fz_violations, 0);
    printf("  %d seed inputs in %s\n", nseeds, seeds_dir());
}

static void test_regressions(void) {
    unsigned long v0 = fz_violations;
    t_fuzz_replay("fuzz_picolog_reader", LLVMFuzzerTestOneInput);
    CHECK_EQ(fz_violations - v0, 0);
}

/* The oracles fail on a wrong answer: a real log, then results that
 * disagree with it as a broken reader, plg_check or recovery would. */
static void test_oracles_can_fail(void) {
    const char *d = t_dir("fz_oracle");
    make_log(d, 30, 300, 0, 9);
    static fz_scan good, bad;
    unsigned long v0 = fz_violations;
    fz_scan_dir(d, &good, "oracle");
    REQUIRE(good.rc == 0 && good.n == 30 && good.last == 30);
    fz_check_agrees(d, &good, "oracle");
    fz_check_seek(d, &good, 7, "oracle");
    fz_check_prefix(&good, &good, "oracle");
    CHECK_EQ(fz_violations - v0, 0);
    bad = good; bad.last = 29; bad.n = 29;               /* the reader stops one short */
    fz_check_agrees(d, &bad, "planted");
    CHECK_EQ(fz_violations - v0, 1);
    bad = good; bad.rc = PLG_ECORRUPT;                   /* the reader reports corruption, plg_check none */
    fz_check_agrees(d, &bad, "planted");
    CHECK_EQ(fz_violations - v0, 2);
    bad = good; bad.crc[4] ^= 1;                         /* recovery changed a record's bytes */
    fz_check_prefix(&good, &bad, "planted");
    CHECK_EQ(fz_violations - v0, 3);
    bad = good; bad.crc[6] ^= 1;                         /* the seek returns other bytes than the scan */
    fz_check_seek(d, &bad, 7, "planted");
    CHECK_EQ(fz_violations - v0, 4);
#if FZ_SEEK_REACH_FIXED
    bad = good; bad.last = 5; bad.n = 5;                 /* the scan ends at 5: a seek to 7 must give nothing */
    fz_check_seek(d, &bad, 7, "planted");
    CHECK_EQ(fz_violations - v0, 5);
#endif
    CHECK(fz_reader_code(PLG_ECORRUPT) && !fz_reader_code(PLG_EFULL) && !fz_reader_code(-5) && !fz_documented(1));
    fz_violations = v0;                                  /* planted: not failures of the code under test */
}

int main(void) {
    RUN(test_seed_corpus);
    RUN(test_regressions);
    RUN(test_oracles_can_fail);
    fz_clean(fz_dir());
    rmdir(fz_dir());
    return t_done();
}
