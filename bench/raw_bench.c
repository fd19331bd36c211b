/* raw_bench: the device's own limit, and buffered write + fdatasync, fed the
 * same stream of records as picolog_bench.
 *
 *   raw_bench [--mode direct|buffered] [--size BYTES] [--qd N] [--dir D]
 *             [--duration S] [--record BYTES] [--file-size BYTES] [--engine uring|pwritev2|fdatasync]
 *             [--label NAME]
 *
 * direct    O_DIRECT writes of --size bytes, each with RWF_DSYNC (on a disk
 *           with a volatile cache and no FUA: write + cache flush), through
 *           io_uring with --qd writes in flight (1 = one at a time), at
 *           sequential offsets in a file that was written and synced first
 *           (so no write changes metadata, as in picolog's preallocated
 *           segments). floor(size / record) records are packed per write.
 *           --engine pwritev2: one synchronous pwritev2(RWF_DSYNC) at a time
 *           from this thread instead (no io_uring, no kernel worker).
 *           --engine fdatasync: one plain O_DIRECT pwritev2, then fdatasync,
 *           one at a time (picolog's PLG_SYNC_FDATASYNC at queue depth 1).
 * buffered  pwrite of --size bytes into the page cache, then fdatasync; one
 *           at a time.
 * Latency is per write (submission to completion); throughput counts records. */
#include "bench.h"

#include <liburing.h>
#include <sys/uio.h>

#ifndef RWF_DSYNC
#define RWF_DSYNC 0x00000002
#endif

static bench_hist lat;

static void usage(void) {
    fprintf(stderr, "usage: raw_bench [--mode direct|buffered] [--size B] [--qd N] [--dir D] [--duration S]\n"
                    "         [--record B] [--file-size B] [--engine uring|pwritev2|fdatasync] [--label NAME]\n");
    exit(2);
}

static void pack(uint8_t *buf, size_t size, uint32_t rec_len, uint64_t *next_rec, uint32_t per_write) {
    memset(buf + (size_t)per_write * rec_len, 0, size - (size_t)per_write * rec_len);
    for (uint32_t i = 0; i < per_write; i++) bench_fill_record(buf + (size_t)i * rec_len, rec_len, (*next_rec)++);
}

int main(int argc, char **argv) {
    const char *dir = getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "build/bench-data";
    const char *mode = "direct", *label = NULL, *engine = "uring";
    double duration = 3.0;
    uint64_t size = 4096, file_size = 256ull << 20;
    uint32_t rec_len = BENCH_RECORD_DEFAULT;
    int qd = 1;
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
        else usage();
    }
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
    /* write the whole file once and sync it: later writes are overwrites */
    memset(bufs, 0, (size_t)size * (size_t)qd);
    for (uint64_t off = 0; off < file_size; off += size)
        if (pwrite(fd, bufs, size, (off_t)off) != (ssize_t)size) { fprintf(stderr, "prefill: %s\n", strerror(errno)); return 1; }
    if (fdatasync(fd) != 0) { fprintf(stderr, "fdatasync: %s\n", strerror(errno)); return 1; }
    if (!direct) posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);

    uint64_t next_rec = 1, writes = 0, off = 0;
    uint64_t dur_ticks = bench_ns_to_ticks(duration * 1e9);
    uint64_t t_start = bench_tick(), t_end = t_start + dur_ticks, t_stop;
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
            off = (off + size) % file_size;
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
            off = (off + size) % file_size;
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
            off = (off + size) % file_size;
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
            off = (off + size) % file_size;
        }
        t_stop = bench_tick();
    }
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
    bench_result(B, cfgname, "write_bytes", (double)size, "B");
    bench_result(B, cfgname, "lat_p50_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&lat, 0.5)) / 1e3, "us");
    bench_result(B, cfgname, "lat_p95_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&lat, 0.95)) / 1e3, "us");
    bench_result(B, cfgname, "lat_p99_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&lat, 0.99)) / 1e3, "us");
    bench_result(B, cfgname, "lat_max_us", bench_ticks_to_ns(lat.max) / 1e3, "us");
    return 0;
}
