/* raw_bench: the device's own limit, and buffered write + fdatasync, fed the
 * same stream of records as picolog_bench.
 *
 *   raw_bench [--mode direct|buffered] [--size BYTES] [--qd N] [--dir D]
 *             [--duration S] [--record BYTES] [--file-size BYTES] [--engine uring|pwritev2|fdatasync]
 *             [--rate R] [--prep zero|fallocate] [--label NAME]
 *
 * direct    O_DIRECT writes of --size bytes, each with RWF_DSYNC (on a disk
 *           with a volatile cache and no FUA: write + cache flush), through
 *           io_uring with --qd writes in flight (1 = one at a time), at
 *           sequential offsets in a file that was written and synced first
 *           (so no write changes metadata, as in picolog's preallocated
 *           segments). floor(size / record) records are packed per write.
 *           --prep fallocate: the file is only reserved (fallocate, 16 GiB
 *           unless --file-size), never written first: each write also turns
 *           unwritten extents into written ones, as a writer into fresh space
 *           does; "wraps" says whether it ran past the end into written blocks.
 *           --engine pwritev2: one synchronous pwritev2(RWF_DSYNC) at a time
 *           from this thread instead (no io_uring, no kernel worker).
 *           --engine fdatasync: one plain O_DIRECT pwritev2, then fdatasync,
 *           one at a time (picolog's PLG_SYNC_FDATASYNC at queue depth 1).
 * buffered  pwrite of --size bytes into the page cache, then fdatasync; one
 *           at a time.
 * --rate R  (direct) records arrive on a fixed schedule of R per second and
 *           each one is made durable by a --size DSYNC write that starts as
 *           soon as fewer than --qd writes are in flight, carrying every record
 *           that arrived and is not yet written (up to a write's worth). With
 *           --qd 1 a record that arrives during a write waits for it, then for
 *           its own (picolog's policy for a lone page today); with --qd 4 it
 *           starts at once. Latency is per record, arrival to completion:
 *           the floor for picolog's durable latency at that rate.
 *           Also per write, submission to completion (write_p50_us,
 *           write_p99_us, write_p999_us, write_max_us): what one DSYNC
 *           write costs at this rate (a rare slow one holds every record
 *           that arrives behind it), and how
 *           the device's slow writes come (slow_write_episodes: writes of
 *           4 x the write P50 or more, and the median gap between them).
 *           --rewrite N: each block is written N times in a row before the
 *           next (a log rewriting its partly filled tail page as records
 *           come), to compare with writes that never repeat a block.
 * Latency is per write (submission to completion); throughput counts records. */
#include "bench.h"

#include <liburing.h>
#include <sys/uio.h>

#ifndef RWF_DSYNC
#define RWF_DSYNC 0x00000002
#endif

static bench_hist lat, wlat;
static unsigned rewrite = 1;   /* --rewrite N: each block written N times in a row (paced) */
/* --rate: every write's start and latency (the first SLOW_MAX), for the
 * slow writes counted at the end against the final P50 */
#define SLOW_MAX 65536
static uint64_t w_start[SLOW_MAX], w_lat[SLOW_MAX];
static size_t w_n;
static void write_done(uint64_t submitted, uint64_t done) {
    bench_hist_add(&wlat, done - submitted);
    if (w_n < SLOW_MAX) { w_start[w_n] = submitted; w_lat[w_n] = done - submitted; w_n++; }
}

/* the next write's offset: sequential, back to 0 at the file's end (counted:
 * after a wrap, a --prep fallocate run overwrites written blocks) */
static uint64_t wraps;
static uint64_t next_off(uint64_t off, uint64_t size, uint64_t file_size) {
    if (off + size < file_size) return off + size;
    wraps++;
    return 0;
}

/* --rate: paced records, each durable by a DSYNC write started as soon as a
 * slot is free (io_uring), or by a blocking pwritev2 (--engine pwritev2). */
static int paced_run(int fd, uint8_t *bufs, uint64_t size, int qd, double rate, double duration, int sync_engine,
                     uint64_t file_size, uint64_t *writes_out, uint64_t *recs_out) {
    uint32_t per_write = (uint32_t)(size / 100u);
    double period = 1e9 / rate / bench__ns_per_tick;
    uint64_t t_start = bench_tick(), t_end = t_start + bench_ns_to_ticks(duration * 1e9);
    uint64_t arrived = 0, issued = 0, done_recs = 0, off = 0, writes = 0, writes_started = 0;
    uint64_t first[64], count[64], sub[64];
    int busy[64] = {0}, inflight = 0;
    struct io_uring ring;
    if (!sync_engine && io_uring_queue_init(64, &ring, 0) < 0) return -1;
    for (;;) {
        uint64_t now = bench_tick();
        if (now < t_end) {
            while (t_start + (uint64_t)((double)arrived * period) <= now) arrived++;
        } else if (issued == arrived && inflight == 0) break;
        if (issued < arrived && inflight < qd) {
            uint64_t n = arrived - issued;
            if (n > per_write) n = per_write;
            int sl = 0;
            while (busy[sl]) sl++;
            memset(bufs + (size_t)sl * size, (int)(issued & 0xff), size);
            first[sl] = issued + 1; count[sl] = n; busy[sl] = 1;
            issued += n;
            if (sync_engine) {
                struct iovec iov = {bufs + (size_t)sl * size, (size_t)size};
                uint64_t t0 = bench_tick();
                if (pwritev2(fd, &iov, 1, (off_t)off, RWF_DSYNC) != (ssize_t)size) return -1;
                uint64_t t = bench_tick();
                write_done(t0, t);
                for (uint64_t r = first[sl]; r < first[sl] + n; r++) {
                    uint64_t a = t_start + (uint64_t)((double)(r - 1) * period);
                    bench_hist_add(&lat, t - a);
                }
                done_recs += n; busy[sl] = 0; writes++;
            } else {
                struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
                io_uring_prep_write(sqe, fd, bufs + (size_t)sl * size, (unsigned)size, off);
                sqe->rw_flags = RWF_DSYNC;
                io_uring_sqe_set_data64(sqe, (uint64_t)sl);
                sub[sl] = bench_tick();
                io_uring_submit(&ring);
                inflight++;
            }
            if (writes_started++ % rewrite == rewrite - 1) off = next_off(off, size, file_size);
            continue;
        }
        if (sync_engine) { bench_pause(); continue; }
        struct io_uring_cqe *cqe;
        if (inflight) {   /* sleep until a completion or the next arrival: a spin here would take
                           * the CPU from the kernel worker that completes DSYNC writes */
            uint64_t next_a = t_start + (uint64_t)((double)arrived * period), t = bench_tick();
            uint64_t wait_ns = next_a > t ? (uint64_t)bench_ticks_to_ns(next_a - t) : 0;
            if (wait_ns > 1000) {
                struct __kernel_timespec ts = {0, (long long)wait_ns};
                io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
            }
        }
        while (inflight && io_uring_peek_cqe(&ring, &cqe) == 0) {
            uint64_t t = bench_tick();
            int sl = (int)io_uring_cqe_get_data64(cqe);
            if (cqe->res != (int)size) return -1;
            io_uring_cqe_seen(&ring, cqe);
            write_done(sub[sl], t);
            for (uint64_t r = first[sl]; r < first[sl] + count[sl]; r++) {
                uint64_t a = t_start + (uint64_t)((double)(r - 1) * period);
                bench_hist_add(&lat, t - a);
            }
            done_recs += count[sl]; busy[sl] = 0; inflight--; writes++;
        }
        bench_pause();
    }
    if (!sync_engine) io_uring_queue_exit(&ring);
    *writes_out = writes; *recs_out = done_recs;
    return 0;
}

/* The writes of 4 x the write P50 or more: how many, in how many episodes
 * (slow writes that start within 1 ms of the one before's end form one),
 * and the median gap between episodes; the first episodes' starts, ms into
 * the run. A steady gap points at something periodic under the log (the
 * device, the host, the filesystem), since this writer does nothing
 * periodic of its own. */
static int cmp_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}
static void slow_writes(const char *B, const char *cfgname, uint64_t thr, uint64_t t0) {
    uint64_t gap[SLOW_MAX / 2];
    size_t slow = 0, episodes = 0, ngap = 0;
    uint64_t last_end = 0, ep_start = 0, one_ms = bench_ns_to_ticks(1e6);
    char when[200]; int w = 0;
    when[0] = 0;
    for (size_t k = 0; k < w_n; k++) {
        if (w_lat[k] < thr) continue;
        slow++;
        if (!episodes || w_start[k] > last_end + one_ms) {
            if (episodes && ngap < SLOW_MAX / 2) gap[ngap++] = w_start[k] - ep_start;
            if (episodes < 8 && w < (int)sizeof when - 16)
                w += snprintf(when + w, sizeof when - (size_t)w, " %.0f", bench_ticks_to_ns(w_start[k] - t0) / 1e6);
            episodes++;
            ep_start = w_start[k];
        }
        if (w_start[k] + w_lat[k] > last_end) last_end = w_start[k] + w_lat[k];
    }
    /* the whole line first: bench_result prints lines of its own */
    char line[512];
    int o = snprintf(line, sizeof line, "# slow writes (>= %.0f us, 4 x the write P50): %zu of %zu, in %zu episodes",
                     bench_ticks_to_ns(thr) / 1e3, slow, w_n, episodes);
    double gap_ms = 0;
    if (ngap) {
        qsort(gap, ngap, sizeof *gap, cmp_u64);
        gap_ms = bench_ticks_to_ns(gap[ngap / 2]) / 1e6;
        o += snprintf(line + o, sizeof line - (size_t)o, ", median %.1f ms apart", gap_ms);
    }
    printf("%s; the first at (ms):%s%s\n", line, when, episodes > 8 ? " ..." : "");
    bench_result(B, cfgname, "slow_writes", (double)slow, "writes");
    bench_result(B, cfgname, "slow_write_episodes", (double)episodes, "episodes");
    if (ngap) bench_result(B, cfgname, "slow_write_gap_ms", gap_ms, "ms");
}

static void usage(void) {
    fprintf(stderr, "usage: raw_bench [--mode direct|buffered] [--size B] [--qd N] [--dir D] [--duration S]\n"
                    "         [--record B] [--file-size B] [--engine uring|pwritev2|fdatasync] [--rate R]\n"
                    "         [--prep zero|fallocate] [--label NAME] [--rewrite N]\n");
    exit(2);
}

static void pack(uint8_t *buf, size_t size, uint32_t rec_len, uint64_t *next_rec, uint32_t per_write) {
    memset(buf + (size_t)per_write * rec_len, 0, size - (size_t)per_write * rec_len);
    for (uint32_t i = 0; i < per_write; i++) bench_fill_record(buf + (size_t)i * rec_len, rec_len, (*next_rec)++);
}

int main(int argc, char **argv) {
    const char *dir = getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "build/bench-data";
    const char *mode = "direct", *label = NULL, *engine = "uring", *prep = "zero";
    double duration = 3.0;
    uint64_t size = 4096, file_size = 0;
    uint32_t rec_len = BENCH_RECORD_DEFAULT;
    int qd = 1;
    double rate = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--dir"))) dir = v;
        else if ((v = bench_opt(argc, argv, &i, "--mode"))) mode = v;
        else if ((v = bench_opt(argc, argv, &i, "--size"))) size = bench_size(v);
        else if ((v = bench_opt(argc, argv, &i, "--qd"))) qd = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--duration"))) duration = atof(v);
        else if ((v = bench_opt(argc, argv, &i, "--record"))) rec_len = (uint32_t)bench_size(v);
        else if ((v = bench_opt(argc, argv, &i, "--file-size"))) file_size = bench_size(v);
        else if ((v = bench_opt(argc, argv, &i, "--label"))) label = v;
        else if ((v = bench_opt(argc, argv, &i, "--engine"))) engine = v;
        else if ((v = bench_opt(argc, argv, &i, "--rate"))) rate = atof(v);
        else if ((v = bench_opt(argc, argv, &i, "--rewrite"))) rewrite = (unsigned)atoi(v) > 0 ? (unsigned)atoi(v) : 1;
        else if ((v = bench_opt(argc, argv, &i, "--prep"))) prep = v;
        else usage();
    }
    /* a fresh file (--prep fallocate) large enough that a burst of a few
     * seconds never wraps into blocks it wrote (fallocate reserves it at once) */
    if (!file_size) file_size = !strcmp(prep, "fallocate") ? 16ull << 30 : 256ull << 20;
    int direct = !strcmp(mode, "direct");
    int fdsync_engine = !strcmp(engine, "fdatasync");
    int sync_engine = !strcmp(engine, "pwritev2") || fdsync_engine;
    if (!sync_engine && strcmp(engine, "uring")) usage();
    if (sync_engine) qd = 1;
    if ((!direct && strcmp(mode, "buffered")) || size < 4096 || size % 4096 || qd < 1 || qd > 64 ||
        rec_len == 0 || rec_len > size || file_size < size * (uint64_t)qd)
        usage();
    if (!direct) qd = 1;
    file_size -= file_size % size;
    uint32_t per_write = (uint32_t)(size / rec_len);
    char cfgname[64], path[4096];
    if (label) snprintf(cfgname, sizeof cfgname, "%s", label);
    else if (direct && rate > 0) snprintf(cfgname, sizeof cfgname, "paced-%.0f-%s%d%s", rate, sync_engine ? "pwritev2-qd" : "qd", qd,
                                          rewrite > 1 ? "-rewrite" : "");
    else if (direct && sync_engine) snprintf(cfgname, sizeof cfgname, "%lluk-%s", (unsigned long long)(size >> 10), engine);
    else if (direct) snprintf(cfgname, sizeof cfgname, "%lluk-qd%d", (unsigned long long)(size >> 10), qd);
    else snprintf(cfgname, sizeof cfgname, "%lluk", (unsigned long long)(size >> 10));
    const char *B = direct ? "raw_dsync" : "buffered_fdatasync";

    bench_timer_calibrate();
    bench_mkdir(dir);
    snprintf(path, sizeof path, "%s/raw-%d.dat", dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | (direct ? O_DIRECT : 0), 0644);
    if (fd < 0) { fprintf(stderr, "open %s: %s\n", path, strerror(errno)); return 1; }
    uint8_t *bufs;
    if (posix_memalign((void **)&bufs, 4096, (size_t)size * (size_t)qd) != 0) return 1;
    /* write the whole file once and sync it: later writes are overwrites; or
     * (--prep fallocate) only reserve it: each write then turns unwritten
     * extents into written ones, a metadata change its sync must commit */
    memset(bufs, 0, (size_t)size * (size_t)qd);
    if (!strcmp(prep, "fallocate")) {
        if (fallocate(fd, 0, 0, (off_t)file_size) != 0) { fprintf(stderr, "fallocate: %s\n", strerror(errno)); return 1; }
    } else if (!strcmp(prep, "zero")) {
        for (uint64_t off = 0; off < file_size; off += size)
            if (pwrite(fd, bufs, size, (off_t)off) != (ssize_t)size) { fprintf(stderr, "prefill: %s\n", strerror(errno)); return 1; }
    } else usage();
    if (fdatasync(fd) != 0) { fprintf(stderr, "fdatasync: %s\n", strerror(errno)); return 1; }
    if (!direct) posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);

    uint64_t next_rec = 1, writes = 0, off = 0;
    uint64_t dur_ticks = bench_ns_to_ticks(duration * 1e9);
    uint64_t sectors0 = bench_disk_sectors(dir), sectors_t0 = bench_tick();
    uint64_t t_start = bench_tick(), t_end = t_start + dur_ticks, t_stop;
    if (direct && rate > 0 && !fdsync_engine) {
        uint64_t recs = 0, psi_cpu0 = bench_psi_some_us("cpu"), psi_io0 = bench_psi_some_us("io");
        if (paced_run(fd, bufs, size, qd, rate, duration, sync_engine, file_size, &writes, &recs) != 0) {
            fprintf(stderr, "paced: %s\n", strerror(errno));
            return 1;
        }
        t_stop = t_end;
        close(fd); unlink(path); free(bufs);
        double secs = bench_ticks_to_ns(t_stop - t_start) / 1e9;
        printf("# %s %s: %.2f s, %llu records at %.0f/s in %llu writes of %llu B, at most %d in flight\n", B, cfgname,
               secs, (unsigned long long)recs, rate, (unsigned long long)writes, (unsigned long long)size, qd);
        bench_result(B, cfgname, "durable_rps", (double)recs / secs, "rec/s");
        bench_result(B, cfgname, "writes_per_s", (double)writes / secs, "1/s");
        bench_result(B, cfgname, "dur_p50_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&lat, 0.5)) / 1e3, "us");
        bench_result(B, cfgname, "dur_p99_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&lat, 0.99)) / 1e3, "us");
        double wp50 = bench_hist_q(&wlat, 0.5);
        bench_result(B, cfgname, "write_p50_us", bench_ticks_to_ns((uint64_t)wp50) / 1e3, "us");
        bench_result(B, cfgname, "write_p99_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&wlat, 0.99)) / 1e3, "us");
        bench_result(B, cfgname, "write_p999_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&wlat, 0.999)) / 1e3, "us");
        bench_result(B, cfgname, "write_max_us", bench_ticks_to_ns(wlat.max) / 1e3, "us");
        slow_writes(B, cfgname, (uint64_t)(4 * wp50), t_start);
        /* as picolog_bench: how much the machine's other load was in the way */
        uint64_t psi_cpu1 = bench_psi_some_us("cpu"), psi_io1 = bench_psi_some_us("io");
        if (psi_cpu1 >= psi_cpu0 && psi_cpu1)
            bench_result(B, cfgname, "psi_cpu_some_share", (double)(psi_cpu1 - psi_cpu0) / 1e6 / secs, "x");
        if (psi_io1 >= psi_io0 && psi_io1)
            bench_result(B, cfgname, "psi_io_some_share", (double)(psi_io1 - psi_io0) / 1e6 / secs, "x");
        return 0;
    }
    if (direct && sync_engine) {
        for (;;) {
            uint64_t t0 = bench_tick();
            if (t0 >= t_end) break;
            pack(bufs, size, rec_len, &next_rec, per_write);
            struct iovec iov = {bufs, (size_t)size};
            t0 = bench_tick();
            if (pwritev2(fd, &iov, 1, (off_t)off, fdsync_engine ? 0 : RWF_DSYNC) != (ssize_t)size ||
                (fdsync_engine && fdatasync(fd) != 0)) {
                fprintf(stderr, "pwritev2: %s\n", strerror(errno));
                return 1;
            }
            bench_hist_add(&lat, bench_tick() - t0);
            writes++;
            off = next_off(off, size, file_size);
        }
        t_stop = bench_tick();
    } else if (direct) {
        struct io_uring ring;
        int r = io_uring_queue_init(64, &ring, 0);
        if (r < 0) { fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-r)); return 1; }
        uint64_t *sub_t = (uint64_t *)calloc((size_t)qd, sizeof(uint64_t));
        int inflight = 0;
        int stop = 0;
        for (int s = 0; s < qd; s++) {   /* slot s uses buffer s */
            pack(bufs + (size_t)s * size, size, rec_len, &next_rec, per_write);
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_write(sqe, fd, bufs + (size_t)s * size, (unsigned)size, off);
            sqe->rw_flags = RWF_DSYNC;
            io_uring_sqe_set_data64(sqe, (uint64_t)s);
            off = next_off(off, size, file_size);
            sub_t[s] = bench_tick();
            io_uring_submit(&ring);
            inflight++;
        }
        while (inflight) {
            struct io_uring_cqe *cqe;
            r = io_uring_wait_cqe(&ring, &cqe);
            if (r < 0) { if (r == -EINTR) continue; fprintf(stderr, "wait: %s\n", strerror(-r)); return 1; }
            uint64_t now = bench_tick();
            int s = (int)io_uring_cqe_get_data64(cqe);
            if (cqe->res != (int)size) { fprintf(stderr, "write: %s\n", cqe->res < 0 ? strerror(-cqe->res) : "short"); return 1; }
            io_uring_cqe_seen(&ring, cqe);
            inflight--;
            if (now < t_end) { writes++; bench_hist_add(&lat, now - sub_t[s]); }
            else stop = 1;
            if (stop) continue;
            pack(bufs + (size_t)s * size, size, rec_len, &next_rec, per_write);
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_write(sqe, fd, bufs + (size_t)s * size, (unsigned)size, off);
            sqe->rw_flags = RWF_DSYNC;
            io_uring_sqe_set_data64(sqe, (uint64_t)s);
            off = next_off(off, size, file_size);
            sub_t[s] = bench_tick();
            io_uring_submit(&ring);
            inflight++;
        }
        t_stop = t_end;
        io_uring_queue_exit(&ring);
        free(sub_t);
    } else {
        for (;;) {
            uint64_t t0 = bench_tick();
            if (t0 >= t_end) break;
            pack(bufs, size, rec_len, &next_rec, per_write);
            t0 = bench_tick();
            if (pwrite(fd, bufs, size, (off_t)off) != (ssize_t)size || fdatasync(fd) != 0) {
                fprintf(stderr, "write/fdatasync: %s\n", strerror(errno));
                return 1;
            }
            bench_hist_add(&lat, bench_tick() - t0);
            writes++;
            off = next_off(off, size, file_size);
        }
        t_stop = bench_tick();
    }
    uint64_t sectors1 = bench_disk_sectors(dir), sectors_t1 = bench_tick();
    close(fd);
    unlink(path);
    free(bufs);

    double secs = bench_ticks_to_ns(t_stop - t_start) / 1e9;
    double recs = (double)writes * per_write;
    printf("# %s %s: %.2f s, %llu writes of %llu B (%u records of %u B each), qd %d\n", B, cfgname, secs,
           (unsigned long long)writes, (unsigned long long)size, per_write, rec_len, qd);
    bench_result(B, cfgname, "durable_rps", recs / secs, "rec/s");
    bench_result(B, cfgname, "mb_per_s", (double)writes * (double)size / secs / 1e6, "MB/s");
    bench_result(B, cfgname, "writes_per_s", (double)writes / secs, "1/s");
    double dsecs = bench_ticks_to_ns(sectors_t1 - sectors_t0) / 1e9;   /* the device's, every process's */
    if (sectors1 >= sectors0 && sectors0 && dsecs > 0)
        bench_result(B, cfgname, "disk_mb_per_s", (double)(sectors1 - sectors0) * 512.0 / dsecs / 1e6, "MB/s");
    bench_result(B, cfgname, "write_bytes", (double)size, "B");
    if (!strcmp(prep, "fallocate")) bench_result(B, cfgname, "wraps", (double)wraps, "n");
    bench_result(B, cfgname, "lat_p50_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&lat, 0.5)) / 1e3, "us");
    bench_result(B, cfgname, "lat_p95_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&lat, 0.95)) / 1e3, "us");
    bench_result(B, cfgname, "lat_p99_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&lat, 0.99)) / 1e3, "us");
    bench_result(B, cfgname, "lat_max_us", bench_ticks_to_ns(lat.max) / 1e3, "us");
    return 0;
}
