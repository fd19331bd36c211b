/* bench.h - shared pieces of the benchmarks: timer, histogram, record stream,
 * result lines, resident memory. Header-only; every bench includes it.
 *
 * Result lines: every bench prints its numbers as
 *     R,<bench>,<config>,<metric>,<value>,<unit>
 * on stdout; bench/run.sh collects them over the runs and takes medians.
 * Other lines are for people.
 *
 * Timer: on x86-64 the invariant TSC (lfence;rdtsc ... rdtscp;lfence),
 * calibrated against CLOCK_MONOTONIC at start; elsewhere clock_gettime. */
#ifndef BENCH_H
#define BENCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define BENCH_TSC 1
#else
#define BENCH_TSC 0
#endif

#define BENCH_RECORD_DEFAULT 100u

static inline uint64_t bench_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- timer ------------------------------------------------------------- */
static double bench__ns_per_tick = 1.0;

#if BENCH_TSC
static inline uint64_t bench_tick_begin(void) {
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}
static inline uint64_t bench_tick_end(void) {
    unsigned aux;
    uint64_t t = __rdtscp(&aux);
    _mm_lfence();
    return t;
}
static inline uint64_t bench_tick(void) { return __rdtsc(); }
static inline const char *bench_timer_name(void) { return "rdtsc (lfence;rdtsc / rdtscp;lfence)"; }
#else
static inline uint64_t bench_tick_begin(void) { return bench_mono_ns(); }
static inline uint64_t bench_tick_end(void) { return bench_mono_ns(); }
static inline uint64_t bench_tick(void) { return bench_mono_ns(); }
static inline const char *bench_timer_name(void) { return "clock_gettime(CLOCK_MONOTONIC)"; }
#endif

/* Ticks per ns against CLOCK_MONOTONIC over ~200 ms. */
/* a spin-wait hint */
static inline void bench_pause(void) {
#if BENCH_TSC
    _mm_pause();
#endif
}

static inline void bench_timer_calibrate(void) {
#if BENCH_TSC
    uint64_t n0 = bench_mono_ns(), t0 = bench_tick();
    while (bench_mono_ns() - n0 < 200000000ull) {}
    uint64_t n1 = bench_mono_ns(), t1 = bench_tick();
    bench__ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
#endif
}
static inline double bench_ticks_to_ns(uint64_t t) { return (double)t * bench__ns_per_tick; }
static inline uint64_t bench_ns_to_ticks(double ns) { return (uint64_t)(ns / bench__ns_per_tick); }

/* ---- histogram ----------------------------------------------------------- */
/* Log-linear: values below 2^BH_SUB exact, then 2^BH_SUB buckets per octave
 * (relative error < 1/2^BH_SUB). Fixed size, no allocation when recording. */
#define BH_SUB 7
#define BH_OCT 40
#define BH_N ((1u << BH_SUB) * (BH_OCT + 1))
typedef struct bench_hist { uint64_t n, max, sum; uint64_t b[BH_N]; } bench_hist;

static inline unsigned bench__bucket(uint64_t v) {
    if (v < (1u << BH_SUB)) return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned oct = msb - BH_SUB + 1;
    if (oct > BH_OCT) return BH_N - 1;
    unsigned sub = (unsigned)(v >> (msb - BH_SUB)) & ((1u << BH_SUB) - 1);
    return oct * (1u << BH_SUB) + sub;
}
/* lower bound of a bucket's values, and its midpoint */
static inline double bench__bucket_mid(unsigned i) {
    if (i < (1u << BH_SUB)) return (double)i;
    unsigned oct = i >> BH_SUB, sub = i & ((1u << BH_SUB) - 1);
    unsigned msb = oct + BH_SUB - 1;
    double lo = (double)((1ull << msb) + ((uint64_t)sub << (msb - BH_SUB)));
    double w = (double)(1ull << (msb - BH_SUB));
    return lo + (w - 1) / 2.0;
}
static inline void bench_hist_add(bench_hist *h, uint64_t v) {
    h->b[bench__bucket(v)]++;
    h->n++;
    h->sum += v;
    if (v > h->max) h->max = v;
}
/* value at quantile q (0..1) */
static inline double bench_hist_q(const bench_hist *h, double q) {
    if (!h->n) return 0;
    uint64_t want = (uint64_t)(q * (double)h->n);
    if (want >= h->n) want = h->n - 1;
    uint64_t acc = 0;
    for (unsigned i = 0; i < BH_N; i++) {
        acc += h->b[i];
        if (acc > want) {
            double m = bench__bucket_mid(i);
            return m > (double)h->max ? (double)h->max : m;
        }
    }
    return (double)h->max;
}

/* ---- records ------------------------------------------------------------- */
/* The stream every bench writes: record i is `len` bytes, its sequence number
 * in the first 8 bytes and a cheap pattern after it. */
static inline void bench_fill_record(uint8_t *p, uint32_t len, uint64_t i) {
    uint64_t x = i * 0x9E3779B97F4A7C15ull;
    for (uint32_t k = 0; k < len; k++) p[k] = (uint8_t)(x >> (8 * (k & 7))) ^ (uint8_t)k;
    memcpy(p, &i, len < 8 ? len : 8);
}

/* ---- output -------------------------------------------------------------- */
static inline void bench_result(const char *bench, const char *config, const char *metric, double v,
                                const char *unit) {
    printf("R,%s,%s,%s,%.6g,%s\n", bench, config, metric, v, unit);
}

/* VmRSS / VmHWM of this process, in bytes (0 if unknown). */
static inline uint64_t bench_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kl = strlen(key);
    uint64_t v = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') { v = strtoull(line + kl + 1, NULL, 10); break; }
    fclose(f);
    return v * 1024;
}

/* The system's pressure stall totals (/proc/pressure/cpu|io, "some" line, us):
 * time at least one task waited for a CPU, or for I/O. 0 without PSI. */
/* Sectors (512 B) written so far to the block device holding `dir` (its
 * partition's line in /proc/diskstats; every process's writes count), or 0. */
static inline uint64_t bench_disk_sectors(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0) return 0;
    FILE *f = fopen("/proc/diskstats", "r");
    if (!f) return 0;
    unsigned ma, mi; char name[64]; unsigned long long v[8]; uint64_t out = 0;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%u %u %63s %llu %llu %llu %llu %llu %llu %llu %llu", &ma, &mi, name, &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]) == 11 &&
            ma == major(st.st_dev) && mi == minor(st.st_dev)) { out = v[6]; break; }
    fclose(f);
    return out;
}

static inline uint64_t bench_psi_some_us(const char *what) {
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/pressure/%s", what);
    FILE *f = fopen(p, "r");
    unsigned long long t = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        const char *q = strstr(line, "total=");
        if (!strncmp(line, "some", 4) && q) { t = strtoull(q + 6, NULL, 10); break; }
    }
    fclose(f);
    return t;
}

/* ---- options ------------------------------------------------------------- */
/* "--name value" or "--name=value"; returns the value or NULL. */
static inline const char *bench_opt(int argc, char **argv, int *i, const char *name) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] == 0 && *i + 1 < argc) return argv[++*i];
    return NULL;
}
/* 4096, 4k, 64K, 8m, 10g */
static inline uint64_t bench_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
    default: break;
    }
    return (uint64_t)v;
}

/* Fault every page of a buffer in now, with zeros (volatile stores, which the
 * compiler cannot drop the way it drops a memset after calloc). */
static inline void bench_touch(void *p, size_t len) {
    volatile uint8_t *b = (volatile uint8_t *)p;
    for (size_t i = 0; i < len; i += 4096) b[i] = 0;
}

static inline void bench_mkdir(const char *dir) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "mkdir %s: %s\n", dir, strerror(errno));
        exit(2);
    }
}

/* rm -rf of a bench directory (one level of files, or a log directory). */
static inline void bench_rmtree(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}


#endif /* BENCH_H */
