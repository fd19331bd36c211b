/* picolog_seek: plg_reader_seek on a large log (issue 2 asks for < 1 ms).
 *
 *   picolog_seek [--dir D] [--gib N] [--seeks N] [--cold N] [--keep]
 *
 * Builds a log of N GiB (default 10) of 100-byte records once, with
 * PLG_SYNC_NONE_UNSAFE to save time (the on-disk format is the same), then
 * times plg_reader_seek + the first plg_reader_next at random sequence numbers:
 *   warm   the same targets a second time (the pages the searches touch are
 *          in the page cache);
 *   cold   before each seek every segment file is dropped from the page cache
 *          with posix_fadvise(DONTNEED) ("cold-ish": the device and the
 *          hypervisor may still cache).
 * Needs 2.5x the log size free (statvfs), else it says so and skips. The log
 * is deleted afterwards unless --keep. */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "bench.h"

#include <dirent.h>
#include <sys/statvfs.h>

static bench_hist warm, cold;

static uint64_t rnd_state = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void) {
    rnd_state ^= rnd_state << 13; rnd_state ^= rnd_state >> 7; rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void drop_cache(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4200];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    closedir(d);
}

static int seek_once(plg_reader *r, uint64_t seq, bench_hist *h) {
    plg_record rec;
    uint64_t t0 = bench_tick_begin();
    int rc = plg_reader_seek(r, seq);
    if (rc == 0) rc = plg_reader_next(r, &rec) == 1 ? 0 : PLG_ENOENT;
    uint64_t t1 = bench_tick_end();
    if (rc || rec.seq != seq) {
        fprintf(stderr, "seek %llu: %s (got %llu)\n", (unsigned long long)seq, plg_strerror(rc),
                (unsigned long long)(rc ? 0 : rec.seq));
        return -1;
    }
    bench_hist_add(h, t1 - t0);
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "build/bench-data";
    double gib = 10;
    int nseeks = 2000, ncold = 300, keep = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--dir"))) dir = v;
        else if ((v = bench_opt(argc, argv, &i, "--gib"))) gib = atof(v);
        else if ((v = bench_opt(argc, argv, &i, "--seeks"))) nseeks = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--cold"))) ncold = atoi(v);
        else if (!strcmp(argv[i], "--keep")) keep = 1;
        else { fprintf(stderr, "usage: picolog_seek [--dir D] [--gib N] [--seeks N] [--cold N] [--keep]\n"); return 2; }
    }
    bench_mkdir(dir);
    struct statvfs vfs;
    uint64_t want = (uint64_t)(gib * 1073741824.0);
    if (statvfs(dir, &vfs) != 0) { perror("statvfs"); return 1; }
    double free_gib = (double)vfs.f_bavail * (double)vfs.f_frsize / 1073741824.0;
    if (free_gib < gib * 2.5) {
        printf("skipped: picolog_seek needs %.0f GiB free in %s, has %.1f GiB\n", gib * 2.5, dir, free_gib);
        return 0;
    }
    bench_timer_calibrate();
    char path[4096], cfgname[32];
    snprintf(path, sizeof path, "%s/picolog-seek.plg", dir);
    snprintf(cfgname, sizeof cfgname, "%ggib", gib);
    bench_rmtree(path);

    /* build */
    plg_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.path = path;
    cfg.ring_capacity = 64u << 20;
    cfg.sync_mode = PLG_SYNC_NONE_UNSAFE;
    plg_log *log;
    int rc = plg_open(&log, &cfg);
    if (rc) { fprintf(stderr, "plg_open: %s\n", plg_strerror(rc)); return 1; }
    uint8_t rec[100];
    uint64_t n = 0, t0 = bench_mono_ns();
    plg_stats st;
    for (;;) {
        bench_fill_record(rec, sizeof rec, n + 1);
        int64_t s = plg_append(log, rec, sizeof rec);
        if (s == PLG_EFULL) continue;
        if (s < 0) { fprintf(stderr, "append: %s\n", plg_strerror((int)s)); return 1; }
        n = (uint64_t)s;
        if ((n & 0xFFFFF) == 0) {
            plg_get_stats(log, &st);
            if (st.pages_written * (uint64_t)PLG_PAGE_SIZE >= want) break;
        }
    }
    rc = plg_close(log);
    double build_s = (double)(bench_mono_ns() - t0) / 1e9;
    if (rc) { fprintf(stderr, "plg_close: %s\n", plg_strerror(rc)); return 1; }
    printf("# built %.1f GiB log: %llu records in %.1f s (%.0f rec/s, PLG_SYNC_NONE_UNSAFE)\n", gib,
           (unsigned long long)n, build_s, n / build_s);

    /* seek */
    drop_cache(path);
    plg_reader *r;
    uint64_t o0 = bench_mono_ns();
    rc = plg_reader_open(&r, path);
    double open_ms = (double)(bench_mono_ns() - o0) / 1e6;
    if (rc) { fprintf(stderr, "plg_reader_open: %s\n", plg_strerror(rc)); return 1; }
    uint64_t *targets = (uint64_t *)malloc((size_t)nseeks * sizeof(uint64_t));
    if (!targets) return 1;
    for (int i = 0; i < nseeks; i++) targets[i] = 1 + rnd() % n;
    int bad = 0;
    for (int i = 0; i < ncold && !bad; i++) {
        drop_cache(path);
        bad = seek_once(r, 1 + rnd() % n, &cold);
    }
    bench_hist scratch;
    memset(&scratch, 0, sizeof scratch);
    for (int i = 0; i < nseeks && !bad; i++) bad = seek_once(r, targets[i], &scratch);   /* warms the cache */
    for (int i = 0; i < nseeks && !bad; i++) bad = seek_once(r, targets[i], &warm);
    plg_reader_close(r);
    free(targets);
    if (!keep) bench_rmtree(path);
    if (bad) return 1;

    const char *B = "picolog_seek";
    printf("# %d cold-ish seeks, %d warm seeks (each: plg_reader_seek + first plg_reader_next)\n", ncold, nseeks);
    bench_result(B, cfgname, "records", (double)n, "records");
    bench_result(B, cfgname, "build_s", build_s, "s");
    bench_result(B, cfgname, "reader_open_ms", open_ms, "ms");
    bench_result(B, cfgname, "warm_p50_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&warm, 0.5)) / 1e3, "us");
    bench_result(B, cfgname, "warm_p99_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&warm, 0.99)) / 1e3, "us");
    bench_result(B, cfgname, "warm_max_us", bench_ticks_to_ns(warm.max) / 1e3, "us");
    bench_result(B, cfgname, "cold_p50_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&cold, 0.5)) / 1e3, "us");
    bench_result(B, cfgname, "cold_p99_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&cold, 0.99)) / 1e3, "us");
    bench_result(B, cfgname, "cold_max_us", bench_ticks_to_ns(cold.max) / 1e3, "us");
    return 0;
}
