/* peer.h - the loop every key-value peer shares: the same stream of records
 * as picolog_bench, committed durably in batches; one batch's latency runs
 * from its first record's put to the durable commit's return.
 *
 *   <peer> [--dir D] [--duration S] [--batch N] [--record BYTES]
 *
 * A peer defines peer_open(dir), peer_put(seq, data, len), peer_commit()
 * and peer_close(), then includes this file. --batch defaults to 655 records
 * (64 KiB of payload, the size of raw_bench's 64 KiB writes). */
#include "bench.h"

static int peer_open(const char *dir);
static int peer_begin(void);
static int peer_put(uint64_t seq, const void *data, uint32_t len);
static int peer_commit(void);
static void peer_close(void);

static bench_hist peer_lat;

int main(int argc, char **argv) {
    const char *dir = getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "build/bench-data";
    double duration = 3.0;
    uint32_t batch = 655, rec_len = BENCH_RECORD_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--dir"))) dir = v;
        else if ((v = bench_opt(argc, argv, &i, "--duration"))) duration = atof(v);
        else if ((v = bench_opt(argc, argv, &i, "--batch"))) batch = (uint32_t)atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--record"))) rec_len = (uint32_t)bench_size(v);
        else { fprintf(stderr, "usage: %s [--dir D] [--duration S] [--batch N] [--record B]\n", PEER_NAME); return 2; }
    }
    if (batch == 0 || rec_len < 8 || rec_len > 65536) return 2;
    bench_timer_calibrate();
    char path[4096], cfg[64];
    bench_mkdir(dir);
    snprintf(path, sizeof path, "%s/peer-%s-%d", dir, PEER_NAME, (int)getpid());
    bench_rmtree(path);
    bench_mkdir(path);
    if (peer_open(path)) { bench_rmtree(path); return 1; }
    uint8_t rec[65536];
    uint64_t seq = 0, batches = 0;
    uint64_t t_start = bench_tick(), t_end = t_start + bench_ns_to_ticks(duration * 1e9), t_stop;
    int rc = 0;
    for (;;) {
        uint64_t t0 = bench_tick();
        if (t0 >= t_end) break;
        if ((rc = peer_begin())) break;
        for (uint32_t i = 0; i < batch && !rc; i++) {
            bench_fill_record(rec, rec_len, ++seq);
            rc = peer_put(seq, rec, rec_len);
        }
        if (rc || (rc = peer_commit())) break;
        bench_hist_add(&peer_lat, bench_tick() - t0);
        batches++;
    }
    t_stop = bench_tick();
    peer_close();
    bench_rmtree(path);
    if (rc) { fprintf(stderr, "%s failed\n", PEER_NAME); return 1; }
    double secs = bench_ticks_to_ns(t_stop - t_start) / 1e9;
    snprintf(cfg, sizeof cfg, "batch%u", batch);
    printf("# %s %s: %.2f s, %llu batches of %u records of %u B, %s\n", PEER_NAME, cfg, secs,
           (unsigned long long)batches, batch, rec_len, PEER_DURABILITY);
    bench_result(PEER_NAME, cfg, "durable_rps", (double)batches * batch / secs, "rec/s");
    bench_result(PEER_NAME, cfg, "commits_per_s", (double)batches / secs, "1/s");
    bench_result(PEER_NAME, cfg, "lat_p50_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&peer_lat, 0.5)) / 1e3, "us");
    bench_result(PEER_NAME, cfg, "lat_p95_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&peer_lat, 0.95)) / 1e3, "us");
    bench_result(PEER_NAME, cfg, "lat_p99_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&peer_lat, 0.99)) / 1e3, "us");
    bench_result(PEER_NAME, cfg, "lat_max_us", bench_ticks_to_ns(peer_lat.max) / 1e3, "us");
    return 0;
}
