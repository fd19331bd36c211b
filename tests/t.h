/* t.h - the project's minimal test harness.
 *
 *   static void test_something(void) { CHECK(x == 1); CHECK_EQ(a, b); }
 *   int main(void) { RUN(test_something); return t_done(); }
 *
 * A test that runs no CHECK and did not SKIP counts as failed: a test that
 * asserts nothing is a defect. Each binary ends with "N passed, N failed";
 * tests/run.sh adds them up. Scratch directories live under $PLG_TEST_DIR
 * (default build/tmp), which must be on a filesystem with O_DIRECT for the
 * picolog tests; tests that need O_DIRECT say so when they skip. */
#ifndef T_H
#define T_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <inttypes.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static int t__passed, t__failed, t__skipped;
static int t__cur_failed, t__cur_checks, t__cur_skipped;
static const char *t__cur_name = "";

#define CHECK(c) do { t__cur_checks++; if (!(c)) { t__cur_failed++; \
    fprintf(stderr, "  %s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, t__cur_name, #c); } } while (0)
#define CHECK_EQ(a, b) do { long long t__a = (long long)(a), t__b = (long long)(b); t__cur_checks++; \
    if (t__a != t__b) { t__cur_failed++; fprintf(stderr, "  %s:%d: %s: CHECK_EQ(%s, %s) failed: %lld != %lld\n", \
    __FILE__, __LINE__, t__cur_name, #a, #b, t__a, t__b); } } while (0)
/* Stop the current test early (after a failed precondition). */
#define REQUIRE(c) do { int t__ok = (c) ? 1 : 0; t__cur_checks++; if (!t__ok) { t__cur_failed++; \
    fprintf(stderr, "  %s:%d: %s: REQUIRE(%s) failed\n", __FILE__, __LINE__, t__cur_name, #c); return; } } while (0)
#define SKIP(why) do { t__cur_skipped = 1; printf("  skip %s: %s\n", t__cur_name, why); return; } while (0)
#define RUN(fn) t__run(#fn, fn)

static void t__run(const char *name, void (*fn)(void)) {
    const char *only = getenv("T_ONLY");         /* run one test by name, for debugging */
    if (only && *only && strcmp(only, name) != 0) return;
    t__cur_name = name; t__cur_failed = 0; t__cur_checks = 0; t__cur_skipped = 0;
    fn();
    if (t__cur_skipped && !t__cur_failed) { t__skipped++; return; }
    if (t__cur_checks == 0) { fprintf(stderr, "  %s: ran no CHECK\n", name); t__cur_failed = 1; }
    if (t__cur_failed) { t__failed++; printf("FAIL %s\n", name); }
    else { t__passed++; printf("ok   %s (%d checks)\n", name, t__cur_checks); }
    fflush(stdout);
}

static int t_done(void) {
    printf("%d passed, %d failed, %d skipped\n", t__passed, t__failed, t__skipped);
    return t__failed ? 1 : 0;
}

/* A fresh, empty scratch directory for one test: $PLG_TEST_DIR/<name>. */
static const char *t_dir(const char *name) {
    static char buf[4][512]; static int k;
    char *p = buf[k++ & 3];
    const char *base = getenv("PLG_TEST_DIR");
    if (!base || !*base) base = "build/tmp";
    char cmd[1200];
    snprintf(p, 512, "%s/%s", base, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", p, p);
    if (system(cmd) != 0) { fprintf(stderr, "t_dir: cannot make %s\n", p); exit(2); }
    return p;
}

/* Whether files in dir can be opened with O_DIRECT: 1 yes, 0 the filesystem
 * refuses it (EINVAL), -1 the probe itself failed. For tests that may skip
 * only for want of O_DIRECT. Needs _GNU_SOURCE before the first include. */
__attribute__((unused)) static int t_has_odirect(const char *dir) {
#ifdef O_DIRECT
    char p[600];
    snprintf(p, sizeof p, "%s/.odirect_probe", dir);
    int fd = open(p, O_CREAT | O_WRONLY | O_DIRECT, 0600);
    int e = errno;
    if (fd >= 0) { close(fd); unlink(p); return 1; }
    return e == EINVAL ? 0 : -1;
#else
    (void)dir;
    return -1;
#endif
}

/* The pinnacle store layout the tests run on: format 2 (one journal for the
 * whole store), the default of a new store in mmap mode; PP_TEST_FORMAT=1
 * makes every store a test creates one of the per-instrument layout
 * (PP_LEGACY_LAYOUT), so one test file checks both layouts. 1 or 2.
 * Strict mode is on the per-instrument layout either way. */
__attribute__((unused)) static int t_pp_format(void) {
    const char *v = getenv("PP_TEST_FORMAT");
    return v && strcmp(v, "1") == 0 ? 1 : 2;
}

/* A field of /proc/thread-self/io for the calling thread so far ("rchar":
 * bytes read through read(2)-like calls, the page cache included; "syscr":
 * such calls; "read_bytes": bytes the block layer read for it); -1 when
 * unknown. The thread's own, not the process's: the tests measure a reader
 * on the test's thread. Under valgrind on a loaded machine the process's
 * count grew by 20-56 in 200 polls that read nothing: valgrind's threads
 * take turns through a pipe, a 1-byte read(2) at each handover. */
__attribute__((unused)) static long long t_thread_io(const char *field) {
    FILE *f = fopen("/proc/thread-self/io", "r");
    if (!f) return -1;
    char line[128]; long long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') { v = strtoll(line + n + 1, NULL, 10); break; }
    fclose(f);
    return v;
}

/* Where 100-byte records of one picolog writer incarnation end (or, with
 * start, where record i begins), packed densely (PLG_PACK_DENSE), data
 * pages from file offset 4096: the log's first record and a page's first
 * fragment take a 24-byte header (128 bytes in all), the others a SHORT
 * one (108 bytes); a record that does not fit the rest of a page is split,
 * its FIRST fragment filling the page to a multiple of 8 and its LAST one
 * beginning the next page. */
__attribute__((unused)) static uint64_t t_plg_dense_pos(uint64_t i, int start) {
    uint64_t g = 0; uint32_t off = 0;
    for (uint64_t r = 1; r + (start ? 1 : 0) <= i; r++) {
        if (4096 - off < 32) { g++; off = 0; }
        uint32_t room = 4096 - off, fit = (room & ~7u) - 24;
        if (r > 1 && off && room >= 108) off += 108;
        else if (fit >= 100) off += 128;
        else { g++; off = (24 + (100 - fit) + 7) & ~7u; }
    }
    if (start && 4096 - off < 32) { g++; off = 0; }
    return 4096 + g * 4096 + off;
}

/* Deterministic PRNG for tests (splitmix64). */
static uint64_t t_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
#endif
