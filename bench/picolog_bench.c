/* picolog_bench: the original Picolog's "high throughput burst" scenario, and
 * a paced mode for latency at a given load.
 *
 *   picolog_bench [--dir D] [--duration S] [--record BYTES] [--ring BYTES]
 *                 [--flush-ns NS] [--poll-ns NS] [--spin-ns NS] [--max-write BYTES]
 *                 [--inflight N] [--sync auto|dsync|fdatasync|none]
 *                 [--rate RECS_PER_S] [--stride K] [--warmup S] [--release]
 *                 [--observe poll|wait|notify] [--label NAME] [--encrypt]
 *                 [--prealloc N] [--cpu N] [--writer-cpu N]
 *
 * Defaults are the original's scenario: 100-byte records, a 4 KiB ring, 1 ms
 * flush interval, 10 us poll interval, 3 s, and the library's default sync
 * mode (auto: RWF_DSYNC on a FUA device, else fdatasync; the run says which). --rate 0 (default) is the burst:
 * the producer appends as fast as it can and retries on PLG_EFULL; --rate R
 * appends on a fixed schedule of R records/s.
 *
 * Measured in one producer thread, no helper thread:
 *   submission latency  each successful plg_append, timed with the TSC; the
 *                       timer's own cost (back-to-back reads) is measured and
 *                       subtracted ("net"); EFULL retries are counted apart.
 *                       A burst times only the appends it samples for the
 *                       durable latency (1 in --stride, 16 by default): the
 *                       timer's fences on every append slowed the producer to
 *                       11-12 M appends/s when the two CPUs were far apart
 *                       (a cache line's round trip 500 ns, not 100), which
 *                       measured the bench, not the log.
 *   durable latency     the append tick of every K-th record (--stride, 1 in
 *                       paced mode) is kept in an array indexed by seq; after
 *                       each append (and while a paced producer waits) the
 *                       producer reads plg_durable() and logs each advance
 *                       with its tick. A record's durable latency is the first
 *                       advance that covers it minus its append tick: what an
 *                       engine that polls the mark would see.
 *   throughput          records durable at the end of the window / window.
 *                       --release calls plg_release(durable) every 2^19 durable
 *                       records, as a retention policy would: old segments are
 *                       then reused instead of new ones being zeroed.
 *   memory              VmRSS before plg_open and at the end (picolog's
 *                       share), VmHWM, against ring + in-flight + 2 MiB.
 *   breakdown           (paced) every sampled record's durable latency cut
 *                       into consecutive parts, from PICOLOG_TRACE events the
 *                       writer thread logs with the same TSC: ring (append ->
 *                       framed by the writer), batch (framed -> its write
 *                       submitted: waiting for a write slot or a batch),
 *                       write (submitted -> completed as the writer reaped
 *                       it: a writer blocked in its own fdatasync reaps
 *                       late, so at low load in fdatasync mode this part
 *                       holds much of the batch before's sync), sync (completed ->
 *                       plg_durable covers it: fdatasync, or earlier writes
 *                       still in flight), wake (plg_durable moved -> the
 *                       observer saw it). P50 and mean of each; the means add
 *                       up to the mean total.
 *   --observe           who sees the mark move: the producer polling
 *                       plg_durable between records (poll, default), or a
 *                       second thread blocked in plg_wait (wait: spin, then
 *                       futex) or in poll() on plg_notify_fd (notify).
 *   disk bytes          sectors written to the log's block device during the
 *                       run (/proc/diskstats; other processes' I/O included)
 *                       per durable payload byte (disk_bytes_per_payload_byte),
 *                       and a second (disk_mb_per_s, as raw_bench's); of
 *                       them, picolog's own writes per payload byte
 *                       (write_bytes_per_payload_byte: the records' framing
 *                       and pages written again; the rest is the segments'
 *                       zeros and the filesystem's writes). With --warmup,
 *                       also counted from the warm-up's end only (..._warm):
 *                       the segments zeroed at open are then left out.
 *   tail                (paced) the slowest 1% of the breakdown's records:
 *                       the mean of each part over them, and in how many
 *                       episodes (records < 1 ms apart) they came, how far
 *                       apart: which part makes the P99, and whether it is
 *                       periodic.
 *   contention          writer_cpu_share (the writer thread's CPU time per
 *                       second), writer_runq_share (its time runnable but
 *                       waiting for a CPU, per second) and psi_cpu_some_share
 *                       / psi_io_some_share (/proc/pressure: the share of the
 *                       window in which some task of the machine waited for
 *                       a CPU, or for I/O). A run with a high runq share
 *                       measured the machine's other load, not picolog.
 *   --prealloc N        plg_config.prealloc_segments = N (zeroed segments kept
 *                       ahead of the writer), and the run starts once they
 *                       are made (prealloc_wait_s): a burst that N segments
 *                       cover, after the log was idle long enough to make them.
 *   --cpu N             the producer thread runs on CPU N only (set once the
 *                       writer, observer and follower threads run, so they do
 *                       not inherit it); --writer-cpu N
 *                       pins the writer (PLG_PIN_WRITER). A thread that spins
 *                       on the CPU taking the disk's interrupts delays the
 *                       completions (docs/performance.md).
 *   --encrypt           the log is encrypted (PICOLOG_ENCRYPT, a fixed test key;
 *                       docs/encryption.md): the writer thread seals each
 *                       fragment; the name gets "-enc". */
#define _GNU_SOURCE 1
#include <stdint.h>
void bench_trace(int ev, uint64_t seq);
#define PICOLOG_TRACE(ev, seq) bench_trace((ev), (seq))
#define VAULT_IMPLEMENTATION
#include "vault.h"
#define PICOLOG_ENCRYPT
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "bench.h"

#include <math.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <sys/sysmacros.h>

/* ---- trace: filled by the writer thread, read after plg_close ------------ */
typedef struct { uint64_t tick, seq; } trace_ev;
enum { TR_SUBMIT, TR_DONE, TR_SYNC_END, TR_DURABLE, TR_KINDS };
static trace_ev *tr_ev[TR_KINDS];
static size_t tr_n[TR_KINDS], tr_cap;
static uint64_t *tr_drain;            /* drain tick of each sampled seq */
static size_t tr_drain_cap;
static uint64_t tr_stride;
static int tr_on;

void bench_trace(int ev, uint64_t seq) {
    if (!tr_on) return;
    uint64_t t = bench_tick();
    int k;
    switch (ev) {
    case PLG_TRACE_DRAINED:
        if (seq % tr_stride == 0 && seq / tr_stride < tr_drain_cap) tr_drain[seq / tr_stride] = t;
        return;
    case PLG_TRACE_WRITE_SUBMIT: k = TR_SUBMIT; break;
    case PLG_TRACE_WRITE_DONE: k = TR_DONE; break;
    case PLG_TRACE_SYNC_END: k = TR_SYNC_END; break;
    case PLG_TRACE_DURABLE: k = TR_DURABLE; break;
    default: return;
    }
    if (tr_n[k] < tr_cap) { tr_ev[k][tr_n[k]].tick = t; tr_ev[k][tr_n[k]].seq = seq; tr_n[k]++; }
}

typedef struct { uint64_t tick, durable; } durable_ev;

static bench_hist sub_hist, ovh_hist, dur_hist;
static bench_hist part_hist[5];
static const char *part_name[5] = {"ring", "batch", "write", "sync", "wake"};

/* The slowest 1% of the breakdown's records: the mean of each part over
 * them (which part makes the tail), and how they cluster in time. Records
 * slower than the P99 that arrive within 1 ms of each other form one
 * episode: a few long episodes at a steady interval point at something
 * periodic (a segment change, a flush of the mark), many short ones at the
 * device's own spread. */
static int cmp_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static void tail_breakdown(const char *B, const char *cfgname, uint64_t (*rec)[6], size_t n, uint64_t t0) {
    if (n < 100) return;
    uint64_t *tot = (uint64_t *)malloc(n * sizeof *tot);
    uint64_t *gap = (uint64_t *)malloc(n * sizeof *gap);
    if (!tot || !gap) { free(tot); free(gap); return; }
    for (size_t k = 0; k < n; k++) tot[k] = rec[k][1] + rec[k][2] + rec[k][3] + rec[k][4] + rec[k][5];
    qsort(tot, n, sizeof *tot, cmp_u64);
    uint64_t thr = tot[n - 1 - n / 100];
    double sum[5] = {0}; size_t m = 0, episodes = 0, ngap = 0;
    uint64_t last = 0, one_ms = (uint64_t)(1e6 / bench__ns_per_tick), ep_start = 0;
    char when[256]; int w = 0;   /* the first episodes: start (ms into the run) and records */
    size_t ep_recs = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t t = rec[k][1] + rec[k][2] + rec[k][3] + rec[k][4] + rec[k][5];
        if (t < thr) continue;
        for (int i = 0; i < 5; i++) sum[i] += bench_ticks_to_ns(rec[k][i + 1]);
        m++;
        if (!episodes || rec[k][0] > last + one_ms) {
            if (episodes) gap[ngap++] = rec[k][0] - ep_start;
            if (episodes && episodes <= 8 && w < (int)sizeof when - 32)
                w += snprintf(when + w, sizeof when - (size_t)w, " %.0f(%zu)", bench_ticks_to_ns(ep_start - t0) / 1e6, ep_recs);
            episodes++;
            ep_start = rec[k][0];
            ep_recs = 0;
        }
        ep_recs++;
        last = rec[k][0];
    }
    if (episodes <= 8 && w < (int)sizeof when - 32)
        w += snprintf(when + w, sizeof when - (size_t)w, " %.0f(%zu)", bench_ticks_to_ns(ep_start - t0) / 1e6, ep_recs);
    char line[512], name[64];
    int o = snprintf(line, sizeof line, "# the slowest 1%% (%zu records, >= %.1f us, in %zu episodes", m,
                     bench_ticks_to_ns(thr) / 1e3, episodes);
    if (ngap) {
        qsort(gap, ngap, sizeof *gap, cmp_u64);
        o += snprintf(line + o, sizeof line - (size_t)o, ", median %.1f ms apart",
                      bench_ticks_to_ns(gap[ngap / 2]) / 1e6);
        bench_result(B, cfgname, "tail_episode_gap_ms", bench_ticks_to_ns(gap[ngap / 2]) / 1e6, "ms");
    }
    o += snprintf(line + o, sizeof line - (size_t)o, "): mean");
    for (int i = 0; i < 5; i++) {
        o += snprintf(line + o, sizeof line - (size_t)o, " %s %.1f%s", part_name[i], sum[i] / (double)m / 1e3,
                      i < 4 ? "," : " us");
        snprintf(name, sizeof name, "tail_%s_mean_us", part_name[i]);
        bench_result(B, cfgname, name, sum[i] / (double)m / 1e3, "us");
    }
    bench_result(B, cfgname, "tail_episodes", (double)episodes, "episodes");
    printf("%s\n# the first episodes, ms into the run (records):%s%s\n", line, when, episodes > 8 ? " ..." : "");
    free(tot); free(gap);
}

/* Each write's own time, submitted -> completed as the writer reaped it
 * (writes submitted after the warm-up): write_p50/p99/p999/max_us. A
 * write's completion is the first WRITE_DONE of its end seq after its
 * submit (completions may come out of order, so near the front).
 *
 * And the device's share of each record's wait: a record that arrives
 * while earlier writes are still in flight cannot be durable before the
 * last of them completes (plg_durable is a dense prefix, as any log's
 * acknowledgement is), whatever the log does. device_wait_p99_us is the
 * P99 over the breakdown's records of (the latest completion among the
 * writes submitted before the record arrived) - (its arrival), or 0: a
 * floor for dur_p99_us that only the device sets. One rare slow write
 * (25 ms here, while its P99 is under 1 ms) holds every record that
 * arrives behind it, so the records' P99 follows the writes' rare tail,
 * not their P99. */
static bench_hist wr_hist, dw_hist;
static void write_latency(const char *B, const char *cfgname, uint64_t t_from, uint64_t (*rec)[6], size_t nrec) {
    const trace_ev *SU = tr_ev[TR_SUBMIT], *DO = tr_ev[TR_DONE];
    size_t ns = tr_n[TR_SUBMIT], pd = 0;
    uint64_t *pmax = (uint64_t *)calloc(ns ? ns : 1, sizeof *pmax);   /* latest completion among submits 0..i */
    if (!pmax) return;
    uint64_t latest = 0;
    for (size_t i = 0; i < ns; i++) {
        while (pd < tr_n[TR_DONE] && DO[pd].tick < SU[i].tick) pd++;
        for (size_t q = pd; q < tr_n[TR_DONE] && q < pd + 256; q++)
            if (DO[q].seq == SU[i].seq) {
                if (SU[i].tick >= t_from) bench_hist_add(&wr_hist, DO[q].tick - SU[i].tick);
                if (DO[q].tick > latest) latest = DO[q].tick;
                break;
            }
        pmax[i] = latest;
    }
    for (size_t k = 0; k < nrec; k++) {     /* records in arrival order */
        uint64_t a = rec[k][0];
        size_t lo = 0, hi = ns;             /* the first submit at or after a */
        while (lo < hi) { size_t mid = (lo + hi) / 2; if (SU[mid].tick < a) lo = mid + 1; else hi = mid; }
        uint64_t wait = lo > 0 && pmax[lo - 1] > a ? pmax[lo - 1] - a : 0;
        bench_hist_add(&dw_hist, wait);
    }
    free(pmax);
    if (wr_hist.n < 100) return;
    double q[4] = {0.5, 0.99, 0.999, 1.0}, v[4];
    const char *nm[4] = {"write_p50_us", "write_p99_us", "write_p999_us", "write_max_us"};
    for (int i = 0; i < 4; i++) {
        v[i] = bench_ticks_to_ns(i < 3 ? (uint64_t)bench_hist_q(&wr_hist, q[i]) : wr_hist.max) / 1e3;
        bench_result(B, cfgname, nm[i], v[i], "us");
    }
    double dw = dw_hist.n ? bench_ticks_to_ns((uint64_t)bench_hist_q(&dw_hist, 0.99)) / 1e3 : 0;
    if (dw_hist.n) bench_result(B, cfgname, "device_wait_p99_us", dw, "us");
    printf("# each write, submitted -> reaped (%llu writes): P50 %.1f, P99 %.1f, P99.9 %.1f, max %.1f us; "
           "records' wait for earlier writes in flight at arrival: P99 %.1f us\n",
           (unsigned long long)wr_hist.n, v[0], v[1], v[2], v[3], dw);
}

/* the observer thread (--observe wait|notify): logs each advance it sees */
typedef struct {
    plg_log *log; int mode; volatile int stop;
    durable_ev *ev; size_t cap, n;
} observer;

static void *observer_main(void *arg) {
    observer *o = (observer *)arg;
    uint64_t last = 0;
    int fd = o->mode == 2 ? plg_notify_fd(o->log) : -1;
    while (!o->stop) {
        if (o->mode == 1) {
            uint64_t want = plg_durable(o->log) + 1;
            if (want > plg_appended(o->log)) { bench_pause(); continue; }
            if (plg_wait(o->log, want, 10000000) < 0) continue;
        } else {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 10) <= 0) continue;
            uint64_t v;
            if (read(fd, &v, sizeof v) < 0) {}
        }
        uint64_t t = bench_tick(), d = plg_durable(o->log);
        if (d != last && o->n < o->cap) { o->ev[o->n].tick = t; o->ev[o->n].durable = d; o->n++; last = d; }
    }
    return NULL;
}

/* the follower thread (--follow): a reader tailing the log as it grows, as
 * a standby or a live consumer does; its reads go through the page cache */
typedef struct {
    const char *path; volatile int stop;
    uint64_t records, bad; int rc;
} follower;

static void *follower_main(void *arg) {
    follower *f = (follower *)arg;
    plg_reader *r;
    if ((f->rc = plg_reader_open(&r, f->path)) != 0) return NULL;
    plg_record rec;
    while (!f->stop) {
        int k = plg_reader_next(r, &rec);
        if (k == 1) { f->records++; if (rec.seq != f->records) f->bad++; continue; }
        if (k < 0) { f->rc = k; break; }
        if ((k = plg_reader_wait(r, 10000000)) < 0) { f->rc = k; break; }
    }
    plg_reader_close(r);
    return NULL;
}

/* The sum over this process's threads named plg-writer of parse(the text
 * of their /proc/self/task/TID/<leaf>); 0 if there is none. */
static uint64_t writer_tasks_sum(const char *leaf, uint64_t (*parse)(const char *text)) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return 0;
    struct dirent *e;
    uint64_t t = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[300], comm[64] = {0}, buf[1024];
        snprintf(p, sizeof p, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        if (!fgets(comm, sizeof comm, f)) comm[0] = 0;
        fclose(f);
        if (strncmp(comm, "plg-writer", 10) != 0) continue;
        snprintf(p, sizeof p, "/proc/self/task/%s/%s", e->d_name, leaf);
        f = fopen(p, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        t += parse(buf);
    }
    closedir(d);
    return t;
}

/* schedstat: time on a CPU, time runnable but waiting for one (ns), slices */
static uint64_t parse_runq_ns(const char *text) {
    unsigned long long run = 0, wait = 0;
    return sscanf(text, "%llu %llu", &run, &wait) == 2 ? wait : 0;
}

/* stat: fields after the name; state is 3, utime 14, stime 15 (clock ticks) */
static uint64_t parse_cpu_ticks(const char *text) {
    const char *q = strrchr(text, ')');
    unsigned long long ut = 0, stt = 0;
    if (q && sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) == 2) return ut + stt;
    return 0;
}

/* The writer thread's time runnable but waiting for a CPU so far (ns), and
 * its CPU time (user + system, clock ticks). */
static uint64_t writer_runq_ns(void) { return writer_tasks_sum("schedstat", parse_runq_ns); }
static uint64_t writer_cpu_ticks(void) { return writer_tasks_sum("stat", parse_cpu_ticks); }
/* The calling thread's (the producer's) schedstat: time on a CPU and time
 * runnable but waiting for one (ns). */
static void self_sched_ns(uint64_t *run, uint64_t *wait) {
    unsigned long long r = 0, w = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f) { if (fscanf(f, "%llu %llu", &r, &w) != 2) r = w = 0; fclose(f); }
    *run = r; *wait = w;
}

static void usage(void) {
    fprintf(stderr, "usage: picolog_bench [--dir D] [--duration S] [--record B] [--ring B] [--flush-ns NS]\n"
                    "         [--poll-ns NS] [--spin-ns NS] [--max-write B] [--inflight N] [--sync auto|dsync|fdatasync|none]\n"
                    "         [--rate R] [--stride K] [--warmup S] [--release] [--dense] [--sync-in-flight] [--sync-on-writer] [--observe poll|wait|notify] [--encrypt]\n"
                    "         [--prealloc N] [--follow] [--cpu N] [--writer-cpu N] [--label NAME]\n");
    exit(2);
}

/* The device's sectors written over a span, per durable payload byte and a
 * second (raw_bench reports its own rate: at equal device rates, records/s
 * differ by the bytes each takes on the device). */
static void disk_report(const char *B, const char *cfgname, const char *suffix, const char *when, uint64_t sectors,
                        double payload, uint64_t ticks) {
    char m[96];
    double bytes = (double)sectors * 512.0, secs = bench_ticks_to_ns(ticks) / 1e9;
    snprintf(m, sizeof m, "disk_bytes_per_payload_byte%s", suffix);
    bench_result(B, cfgname, m, bytes / payload, "x");
    printf("# disk: %.1f MB written to the device %s, %.1f MB of durable payload\n", bytes / 1e6, when, payload / 1e6);
    snprintf(m, sizeof m, "disk_mb_per_s%s", suffix);
    if (secs > 0) bench_result(B, cfgname, m, bytes / secs / 1e6, "MB/s");
}

static const uint8_t bench_key[32] = { 'p', 'i', 'c', 'o', 'l', 'o', 'g', ' ', 'b', 'e', 'n', 'c', 'h' };

int main(int argc, char **argv) {
    const char *dir = getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "build/bench-data";
    const char *label = NULL, *sync = "auto";
    double duration = 3.0, rate = 0;
    uint32_t rec_len = BENCH_RECORD_DEFAULT;
    plg_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.ring_capacity = 4096;
    cfg.flush_interval_ns = 1000000;
    cfg.poll_interval_ns = 10000;
    long stride = -1;
    double warmup = 0;
    int release = 0, observe = 0, follow = 0, prod_cpu = -1;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = bench_opt(argc, argv, &i, "--dir"))) dir = v;
        else if ((v = bench_opt(argc, argv, &i, "--duration"))) duration = atof(v);
        else if ((v = bench_opt(argc, argv, &i, "--record"))) rec_len = (uint32_t)bench_size(v);
        else if ((v = bench_opt(argc, argv, &i, "--ring"))) cfg.ring_capacity = (size_t)bench_size(v);
        else if ((v = bench_opt(argc, argv, &i, "--flush-ns"))) cfg.flush_interval_ns = strtoull(v, NULL, 10);
        else if ((v = bench_opt(argc, argv, &i, "--poll-ns"))) cfg.poll_interval_ns = strtoull(v, NULL, 10);
        else if ((v = bench_opt(argc, argv, &i, "--spin-ns"))) cfg.idle_spin_ns = strtoull(v, NULL, 10);
        else if ((v = bench_opt(argc, argv, &i, "--max-write"))) cfg.max_write_bytes = (uint32_t)bench_size(v);
        else if ((v = bench_opt(argc, argv, &i, "--inflight"))) cfg.max_inflight = (uint32_t)atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--sync"))) sync = v;
        else if ((v = bench_opt(argc, argv, &i, "--rate"))) rate = atof(v);
        else if ((v = bench_opt(argc, argv, &i, "--stride"))) stride = atol(v);
        else if ((v = bench_opt(argc, argv, &i, "--label"))) label = v;
        else if ((v = bench_opt(argc, argv, &i, "--warmup"))) warmup = atof(v);
        else if ((v = bench_opt(argc, argv, &i, "--prealloc"))) cfg.prealloc_segments = (uint32_t)atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--cpu"))) prod_cpu = atoi(v);
        else if ((v = bench_opt(argc, argv, &i, "--writer-cpu"))) { cfg.flags |= PLG_PIN_WRITER; cfg.writer_cpu = atoi(v); }
        else if (!strcmp(argv[i], "--release")) release = 1;
        else if (!strcmp(argv[i], "--follow")) follow = 1;   /* a reader tails the log meanwhile */
        else if (!strcmp(argv[i], "--dense")) cfg.flags |= PLG_PACK_DENSE;   /* format 1's packing, to compare */
        else if (!strcmp(argv[i], "--sync-in-flight")) cfg.flags |= PLG_SYNC_IN_FLIGHT;   /* fdatasync through io_uring */
        else if (!strcmp(argv[i], "--sync-on-writer")) cfg.flags |= PLG_SYNC_ON_WRITER;   /* the writer's own, even in a burst */
        else if (!strcmp(argv[i], "--encrypt")) cfg.encrypt_key = bench_key;   /* sealed fragments */
        else if ((v = bench_opt(argc, argv, &i, "--observe")))
            observe = !strcmp(v, "poll") ? 0 : !strcmp(v, "wait") ? 1 : !strcmp(v, "notify") ? 2 : -1;
        else usage();
    }
    if (!strcmp(sync, "auto")) cfg.sync_mode = PLG_SYNC_AUTO;
    else if (!strcmp(sync, "dsync")) cfg.sync_mode = PLG_SYNC_DSYNC;
    else if (!strcmp(sync, "fdatasync")) cfg.sync_mode = PLG_SYNC_FDATASYNC;
    else if (!strcmp(sync, "none")) cfg.sync_mode = PLG_SYNC_NONE_UNSAFE;
    else usage();
    if (rec_len < 8 || duration <= 0 || observe < 0) usage();
    if (stride < 0) stride = rate > 0 ? 1 : 16;
    char cfgname[64];
    if (label) snprintf(cfgname, sizeof cfgname, "%s", label);
    else if (rate > 0) snprintf(cfgname, sizeof cfgname, "paced-%.0f", rate);
    else snprintf(cfgname, sizeof cfgname, "burst");
    if (cfg.encrypt_key && !label) strncat(cfgname, "-enc", sizeof cfgname - strlen(cfgname) - 1);

    uint64_t rss_start = bench_status_kb("VmRSS");
    bench_timer_calibrate();
    /* the timer's own cost: back-to-back begin/end with nothing between */
    for (int i = 0; i < 1000000; i++) {
        uint64_t a = bench_tick_begin(), b = bench_tick_end();
        bench_hist_add(&ovh_hist, b - a);
    }
    double ovh_ticks = bench_hist_q(&ovh_hist, 0.5);
    double ovh_ns = bench_ticks_to_ns((uint64_t)ovh_ticks);
    /* resolution: the smallest step between distinct readings, as seen most often */
    double res_ns = 0;
    for (unsigned i = 1; i < BH_N; i++)
        if (ovh_hist.b[i]) {
            for (unsigned j = i + 1; j < BH_N; j++)
                if (ovh_hist.b[j] * 100 > ovh_hist.n) { res_ns = bench__bucket_mid(j) - bench__bucket_mid(i); break; }
            break;
        }
    res_ns *= bench__ns_per_tick;

    /* sample arrays, touched now so they are in the baseline */
    double max_rate = rate > 0 ? rate * 1.1 : 12e6;
    size_t cap_samples = stride > 0 ? (size_t)(max_rate * duration / (double)stride) + 1024 : 0;
    size_t cap_ev = 1u << 18;
    uint64_t *app_tick = cap_samples ? (uint64_t *)calloc(cap_samples, sizeof(uint64_t)) : NULL;
    durable_ev *ev = (durable_ev *)calloc(cap_ev, sizeof(durable_ev));
    if ((cap_samples && !app_tick) || !ev) { fprintf(stderr, "out of memory\n"); return 1; }
    if (app_tick) bench_touch(app_tick, cap_samples * sizeof(uint64_t));
    bench_touch(ev, cap_ev * sizeof(durable_ev));
    bench_touch(&dur_hist, sizeof dur_hist);
    /* the breakdown's arrays (paced runs only: every record is sampled there) */
    if (rate > 0 && stride > 0) {
        tr_stride = (uint64_t)stride; tr_drain_cap = cap_samples;
        tr_cap = (size_t)(max_rate * duration) + 4096;
        if (tr_cap > (1u << 22)) tr_cap = 1u << 22;
        tr_drain = (uint64_t *)calloc(tr_drain_cap, sizeof(uint64_t));
        for (int k = 0; k < TR_KINDS; k++) tr_ev[k] = (trace_ev *)calloc(tr_cap, sizeof(trace_ev));
        for (int k = 0; k < TR_KINDS; k++)
            if (!tr_ev[k] || !tr_drain) { fprintf(stderr, "out of memory\n"); return 1; }
        bench_touch(tr_drain, tr_drain_cap * sizeof(uint64_t));
        for (int k = 0; k < TR_KINDS; k++) bench_touch(tr_ev[k], tr_cap * sizeof(trace_ev));
        tr_on = 1;
    }
    observer obs;
    memset(&obs, 0, sizeof obs);
    if (observe) {
        obs.ev = (durable_ev *)calloc(cap_ev, sizeof(durable_ev)); obs.cap = cap_ev; obs.mode = observe;
        if (!obs.ev) { fprintf(stderr, "out of memory\n"); return 1; }
        bench_touch(obs.ev, cap_ev * sizeof(durable_ev));
    }

    char path[4096];
    bench_mkdir(dir);
    snprintf(path, sizeof path, "%s/picolog-%d.plg", dir, (int)getpid());
    bench_rmtree(path);
    cfg.path = path;
    plg_config eff = plg_config_defaults(&cfg);

    uint64_t rss_before = bench_status_kb("VmRSS");
    plg_log *log;
    int rc = plg_open(&log, &cfg);
    if (rc) { fprintf(stderr, "plg_open: %s\n", plg_strerror(rc)); return 1; }
    uint64_t rss_open = bench_status_kb("VmRSS");
    double prealloc_wait = -1;
    if (cfg.prealloc_segments > 1) {   /* --prealloc: start once the segments ahead are made */
        uint64_t w0 = bench_tick();
        plg_stats st0;
        for (;;) {
            plg_get_stats(log, &st0);
            if (st0.segments_ahead >= cfg.prealloc_segments || st0.prealloc_error) break;
            if (bench_ticks_to_ns(bench_tick() - w0) > 600e9) break;
            usleep(1000);
        }
        prealloc_wait = bench_ticks_to_ns(bench_tick() - w0) / 1e9;
        if (st0.segments_ahead < cfg.prealloc_segments) {
            fprintf(stderr, "--prealloc: %llu of %u segments made (%s)\n", (unsigned long long)st0.segments_ahead,
                    cfg.prealloc_segments, st0.prealloc_error ? plg_strerror(st0.prealloc_error) : "timed out");
            return 1;
        }
    }
    pthread_t obs_th;
    obs.log = log;
    if (observe && pthread_create(&obs_th, NULL, observer_main, &obs) != 0) { fprintf(stderr, "thread\n"); return 1; }
    pthread_t fol_th;
    follower fol;
    memset(&fol, 0, sizeof fol);
    fol.path = path;
    if (follow && pthread_create(&fol_th, NULL, follower_main, &fol) != 0) { fprintf(stderr, "thread\n"); return 1; }
    if (prod_cpu >= 0) {   /* after the other threads start: they would inherit the mask */
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(prod_cpu, &set);
        int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
        if (e) { fprintf(stderr, "--cpu %d: %s\n", prod_cpu, strerror(e)); return 1; }
    }
    uint64_t sectors0 = bench_disk_sectors(dir), sectors_t0 = bench_tick();

    uint8_t rec[1 << 16];
    if (rec_len > sizeof rec) usage();
    bench_fill_record(rec, rec_len, 1);

    uint64_t dur_ticks = bench_ns_to_ticks(duration * 1e9);
    double period = rate > 0 ? 1e9 / rate / bench__ns_per_tick : 0;
    uint64_t nfull = 0, nev = 0, last_d = 0, k = 0, last_rel = 0;
    uint64_t cpu0 = writer_cpu_ticks(), runq0 = writer_runq_ns(), prun0, pwait0;
    self_sched_ns(&prun0, &pwait0);
    uint64_t psi_cpu0 = bench_psi_some_us("cpu"), psi_io0 = bench_psi_some_us("io");
    uint64_t t_start = bench_tick(), t_end = t_start + dur_ticks, next = t_start;
    /* --warmup: the device's bytes are counted again from its end (the first
     * segments are zeroed at open, within the warm-up) */
    uint64_t t_warm0 = t_start + bench_ns_to_ticks(warmup * 1e9), sectors_w = 0, sectors_tw = 0, durable_w = 0;
    int warm_pending = warmup > 0;
    int err = 0;
    for (;;) {
        uint64_t now = bench_tick();
        if (now >= t_end) break;
        if (warm_pending && now >= t_warm0) {
            warm_pending = 0;
            durable_w = plg_durable(log);
            sectors_w = bench_disk_sectors(dir); sectors_tw = bench_tick();
        }
        if (rate > 0 && now < next) {
            if (observe) { bench_pause(); continue; }
            uint64_t d = plg_durable(log);
            if (d != last_d && nev < cap_ev) { ev[nev].tick = now; ev[nev].durable = d; nev++; last_d = d; }
            continue;
        }
        uint64_t seq_next = k + 1;
        memcpy(rec, &seq_next, 8);
        int timed = rate > 0 || stride <= 1 || seq_next % (uint64_t)stride == 0;
        uint64_t t0 = timed ? bench_tick_begin() : 0;
        int64_t s = plg_append(log, rec, rec_len);
        uint64_t t1 = timed ? bench_tick_end() : 0;
        if (s < 0) {
            if (s != PLG_EFULL) { err = (int)s; break; }
            nfull++;
        } else {
            if (timed) bench_hist_add(&sub_hist, t1 - t0);
            k = (uint64_t)s;
            if (timed && stride > 0 && (uint64_t)s % (uint64_t)stride == 0 && (size_t)s / (size_t)stride < cap_samples)
                app_tick[(uint64_t)s / (uint64_t)stride] = t0;
            if (rate > 0) next = t_start + (uint64_t)((double)k * period);
        }
        uint64_t d = plg_durable(log);
        if (d != last_d && nev < cap_ev) { ev[nev].tick = timed ? t1 : bench_tick(); ev[nev].durable = d; nev++; last_d = d; }
        if (release && d - last_rel >= (1u << 19)) { plg_release(log, d); last_rel = d; }
    }
    uint64_t t_stop = bench_tick();
    uint64_t cpu1 = writer_cpu_ticks(), runq1 = writer_runq_ns(), prun1, pwait1;
    self_sched_ns(&prun1, &pwait1);
    uint64_t psi_cpu1 = bench_psi_some_us("cpu"), psi_io1 = bench_psi_some_us("io");
    uint64_t durable_at_end = plg_durable(log), appended = plg_appended(log);
    /* drain: keep watching the mark until everything appended is durable */
    uint64_t drain_deadline = bench_tick() + bench_ns_to_ticks(30e9);
    while (!err && last_d < appended && bench_tick() < drain_deadline) {
        uint64_t d = plg_durable(log);
        if (d != last_d && nev < cap_ev) { ev[nev].tick = bench_tick(); ev[nev].durable = d; nev++; last_d = d; }
        if (plg_error(log)) { err = plg_error(log); break; }
    }
    if (observe) {   /* the observer's log replaces the producer's */
        obs.stop = 1;
        pthread_join(obs_th, NULL);
        free(ev);
        ev = obs.ev; nev = obs.n;
    }
    if (follow) {
        fol.stop = 1;
        pthread_join(fol_th, NULL);
        if (!err && fol.rc) err = fol.rc;
        if (!err && fol.bad) { fprintf(stderr, "follower: %llu records out of order\n", (unsigned long long)fol.bad); return 1; }
    }
    uint64_t sectors1 = bench_disk_sectors(dir), sectors_t1 = bench_tick();
    plg_stats st;
    plg_get_stats(log, &st);
    uint64_t rss_end = bench_status_kb("VmRSS"), hwm = bench_status_kb("VmHWM");
    rc = plg_close(log);
    tr_on = 0;
    if (!err && rc) err = rc;
    bench_rmtree(path);
    if (err) { fprintf(stderr, "picolog error: %s\n", plg_strerror(err)); return 1; }

    /* durable latency: first advance covering each sampled seq appended after the warm-up */
    uint64_t t_warm = t_start + bench_ns_to_ticks(warmup * 1e9);
    size_t e = 0;
    for (uint64_t s = (uint64_t)stride; stride > 0 && s <= appended; s += (uint64_t)stride) {
        if ((size_t)(s / (uint64_t)stride) >= cap_samples) break;
        while (e < nev && ev[e].durable < s) e++;
        if (e == nev) break;
        uint64_t a = app_tick[s / (uint64_t)stride];
        if (a && a >= t_warm && ev[e].tick >= a) bench_hist_add(&dur_hist, ev[e].tick - a);
    }

    /* breakdown: consecutive parts of each sampled record's way, from the trace */
    double part_sum[5] = {0}; uint64_t part_n = 0;
    /* each counted record's parts and start, kept for the tail breakdown below */
    uint64_t (*part_rec)[6] = tr_drain ? (uint64_t (*)[6])calloc(cap_samples, sizeof *part_rec) : NULL;
    if (tr_drain) {
        size_t ps = 0, pd = 0, pu = 0, pe = 0;
        const trace_ev *SU = tr_ev[TR_SUBMIT], *DO = tr_ev[TR_DONE], *DU = tr_ev[TR_DURABLE];
        for (uint64_t s = (uint64_t)stride; s <= appended && s / (uint64_t)stride < cap_samples; s += (uint64_t)stride) {
            uint64_t a = app_tick[s / (uint64_t)stride], dr = tr_drain[s / (uint64_t)stride];
            while (ps < tr_n[TR_SUBMIT] && SU[ps].seq < s) ps++;
            while (pu < tr_n[TR_DURABLE] && DU[pu].seq < s) pu++;
            while (pe < nev && ev[pe].durable < s) pe++;
            if (ps == tr_n[TR_SUBMIT] || pu == tr_n[TR_DURABLE] || pe == nev) break;
            /* completions can come out of order: find this write's own, near the front */
            while (pd < tr_n[TR_DONE] && DO[pd].seq < s && DO[pd].tick < SU[ps].tick) pd++;
            size_t q = pd; uint64_t done = 0;
            for (; q < tr_n[TR_DONE] && q < pd + 256; q++)
                if (DO[q].seq == SU[ps].seq && DO[q].tick >= SU[ps].tick) { done = DO[q].tick; break; }
            if (!a || a < t_warm || !dr || !done) continue;
            uint64_t t[6] = {a, dr, SU[ps].tick, done, DU[pu].tick, ev[pe].tick};
            int mono = 1;
            for (int i = 0; i < 5; i++) if (t[i + 1] < t[i]) mono = 0;
            if (!mono) continue;
            for (int i = 0; i < 5; i++) {
                bench_hist_add(&part_hist[i], t[i + 1] - t[i]);
                part_sum[i] += bench_ticks_to_ns(t[i + 1] - t[i]);
            }
            if (part_rec) {
                part_rec[part_n][0] = a;
                for (int i = 0; i < 5; i++) part_rec[part_n][i + 1] = t[i + 1] - t[i];
            }
            part_n++;
        }
    }

    double secs = bench_ticks_to_ns(t_stop - t_start) / 1e9;
    double q[] = {0.5, 0.95, 0.99, 0.999};
    const char *qn[] = {"sub_p50_ns", "sub_p95_ns", "sub_p99_ns", "sub_p999_ns"};
    const char *B = "picolog";
    double ring_mib = (double)eff.ring_capacity / 1048576.0;
    double inflight_mib = (double)eff.max_inflight * eff.max_write_bytes / 1048576.0;
    double budget = ring_mib + inflight_mib + 2.0;
    double avg_write = st.writes ? (double)st.bytes_written / (double)st.writes : 0;

    const char *mode = st.sync_mode == PLG_SYNC_DSYNC ? "dsync" : st.sync_mode == PLG_SYNC_FDATASYNC ? "fdatasync"
                     : st.sync_mode == PLG_SYNC_NONE_UNSAFE ? "none_unsafe" : "?";
    printf("# picolog %s: %.2f s, %u-byte records, ring %zu B, flush %llu ns, poll %llu ns, idle spin %llu ns, sync %s (%s), backend %s\n",
           cfgname, secs, rec_len, eff.ring_capacity, (unsigned long long)eff.flush_interval_ns,
           (unsigned long long)eff.poll_interval_ns, (unsigned long long)eff.idle_spin_ns, sync, mode, st.backend);
    printf("# timer: %s, %.3f ns/tick, overhead P50 %.1f ns (subtracted from submission latencies), "
           "resolution %.1f ns\n", bench_timer_name(), bench__ns_per_tick, ovh_ns, res_ns);
    printf("# appended %llu (%.0f/s), durable in window %llu (%.0f/s), EFULL retries %llu, writes %llu, "
           "avg write %.0f B, max write %llu pages, syncs %llu, segments %llu, stalls %llu\n",
           (unsigned long long)appended, appended / secs, (unsigned long long)durable_at_end,
           durable_at_end / secs, (unsigned long long)nfull, (unsigned long long)st.writes, avg_write,
           (unsigned long long)st.max_write_pages, (unsigned long long)st.syncs,
           (unsigned long long)st.segments_created, (unsigned long long)st.segment_stalls);
    printf("# segments released %llu, reused without zeroing %llu\n", (unsigned long long)st.segments_released,
           (unsigned long long)st.segments_recycled);

    bench_result(B, cfgname, "durable_rps", durable_at_end / secs, "rec/s");
    if (follow) bench_result(B, cfgname, "follower_records", (double)fol.records, "records");
    bench_result(B, cfgname, "appended_rps", appended / secs, "rec/s");
    if (rate > 0) bench_result(B, cfgname, "target_rps", rate, "rec/s");
    bench_result(B, cfgname, "timer_overhead_ns", ovh_ns, "ns");
    bench_result(B, cfgname, "timer_resolution_ns", res_ns, "ns");
    for (int i = 0; i < 4; i++) {
        double raw = bench_ticks_to_ns((uint64_t)bench_hist_q(&sub_hist, q[i]));
        bench_result(B, cfgname, qn[i], raw > ovh_ns ? raw - ovh_ns : 0, "ns");
    }
    bench_result(B, cfgname, "sub_p50_raw_ns", bench_ticks_to_ns((uint64_t)bench_hist_q(&sub_hist, 0.5)), "ns");
    bench_result(B, cfgname, "sub_max_ns", bench_ticks_to_ns(sub_hist.max), "ns");
    /* The TSC as seen here may advance in coarse steps (10 ns on this kind of
     * VM): single readings are quantized, but their mean is not biased, so
     * mean(raw) - mean(timer) is the finer estimate of a call's cost. */
    if (sub_hist.n && ovh_hist.n)
        bench_result(B, cfgname, "sub_mean_net_ns",
                     bench__ns_per_tick * ((double)sub_hist.sum / (double)sub_hist.n -
                                           (double)ovh_hist.sum / (double)ovh_hist.n), "ns");
    if (dur_hist.n) {
        bench_result(B, cfgname, "dur_p50_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&dur_hist, 0.5)) / 1e3, "us");
        bench_result(B, cfgname, "dur_p95_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&dur_hist, 0.95)) / 1e3, "us");
        bench_result(B, cfgname, "dur_p99_us", bench_ticks_to_ns((uint64_t)bench_hist_q(&dur_hist, 0.99)) / 1e3, "us");
        bench_result(B, cfgname, "dur_max_us", bench_ticks_to_ns(dur_hist.max) / 1e3, "us");
        bench_result(B, cfgname, "dur_samples", (double)dur_hist.n, "records");
    }
    if (part_n) {
        char m[64], line[512];
        int o = snprintf(line, sizeof line, "# breakdown of the durable latency (%llu records):", (unsigned long long)part_n);
        for (int i = 0; i < 5; i++) {
            double p50 = bench_ticks_to_ns((uint64_t)bench_hist_q(&part_hist[i], 0.5)) / 1e3;
            double mean = part_sum[i] / (double)part_n / 1e3;
            o += snprintf(line + o, sizeof line - (size_t)o, " %s P50 %.1f mean %.1f us%s", part_name[i], p50, mean,
                          i < 4 ? ";" : "");
            snprintf(m, sizeof m, "part_%s_p50_us", part_name[i]);
            bench_result(B, cfgname, m, p50, "us");
            snprintf(m, sizeof m, "part_%s_mean_us", part_name[i]);
            bench_result(B, cfgname, m, mean, "us");
        }
        bench_result(B, cfgname, "part_records", (double)part_n, "records");
        printf("%s\n", line);
        if (part_rec) tail_breakdown(B, cfgname, part_rec, (size_t)part_n, t_start);
        write_latency(B, cfgname, t_warm, part_rec, part_rec ? (size_t)part_n : 0);
    }
    free(part_rec);
    if (durable_at_end && sectors1 >= sectors0)
        disk_report(B, cfgname, "", "during the run (all processes)", sectors1 - sectors0,
                    (double)durable_at_end * rec_len, sectors_t1 - sectors_t0);
    if (sectors_tw && last_d > durable_w && sectors1 >= sectors_w)   /* after the warm-up only */
        disk_report(B, cfgname, "_warm", "after the warm-up", sectors1 - sectors_w,
                    (double)(last_d - durable_w) * rec_len, sectors_t1 - sectors_tw);
    /* what picolog itself wrote per payload byte: the records' framing
     * (a 24-byte header, 8-byte alignment, page ends) and pages written
     * again (a partly filled page); the rest of disk_bytes_per_payload_byte
     * is the segments' zeros and the filesystem's own writes */
    if (st.bytes) bench_result(B, cfgname, "write_bytes_per_payload_byte", (double)st.bytes_written / (double)st.bytes, "x");
    bench_result(B, cfgname, "efull_retries", (double)nfull, "calls");
    bench_result(B, cfgname, "write_bytes_avg", avg_write, "B");
    bench_result(B, cfgname, "writes_per_s", st.writes / secs, "1/s");
    bench_result(B, cfgname, "syncs_per_s", st.syncs / secs, "1/s");
    /* writes durable on their own completion (RWF_DSYNC): in AUTO mode on a
     * device without FUA, those made while the writer kept up */
    bench_result(B, cfgname, "dsync_write_share", st.writes ? (double)st.writes_dsync / (double)st.writes : 0, "x");
    bench_result(B, cfgname, "blocking_write_share", st.writes ? (double)st.writes_blocking / (double)st.writes : 0, "x");
    bench_result(B, cfgname, "paired_write_share", st.writes ? (double)st.writes_paired / (double)st.writes : 0, "x");
    bench_result(B, cfgname, "syncs_in_flight_share", st.syncs ? (double)st.syncs_in_flight / (double)st.syncs : 0, "x");
    bench_result(B, cfgname, "segments_recycled", (double)st.segments_recycled, "segments");
    bench_result(B, cfgname, "segments_unwritten", (double)st.segments_unwritten, "segments");
    bench_result(B, cfgname, "pages_left_per_s", st.pages_left / secs, "1/s");
    bench_result(B, cfgname, "rss_process_start_mib", rss_start / 1048576.0, "MiB");
    if (prealloc_wait >= 0) bench_result(B, cfgname, "prealloc_wait_s", prealloc_wait, "s");
    bench_result(B, cfgname, "rss_picolog_open_mib", ((double)rss_open - (double)rss_before) / 1048576.0, "MiB");
    /* CPU contention: the writer's own wait for a CPU, and the share of the
     * window in which some task of the system waited for one (or for I/O) */
    bench_result(B, cfgname, "writer_runq_share", (double)(runq1 - runq0) / 1e9 / secs, "x");
    if (psi_cpu1 >= psi_cpu0 && psi_cpu1)
        bench_result(B, cfgname, "psi_cpu_some_share", (double)(psi_cpu1 - psi_cpu0) / 1e6 / secs, "x");
    if (psi_io1 >= psi_io0 && psi_io1)
        bench_result(B, cfgname, "psi_io_some_share", (double)(psi_io1 - psi_io0) / 1e6 / secs, "x");
    bench_result(B, cfgname, "writer_cpu_share", (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK) / secs, "cores");
    /* the producer's own: on a CPU, and runnable but waiting for one (a
     * burst whose producer waits appends fewer than the writer could take) */
    if (prun1 >= prun0 && prun1) {
        bench_result(B, cfgname, "producer_cpu_share", (double)(prun1 - prun0) / 1e9 / secs, "cores");
        bench_result(B, cfgname, "producer_runq_share", (double)(pwait1 - pwait0) / 1e9 / secs, "x");
    }
    bench_result(B, cfgname, "rss_picolog_end_mib", ((double)rss_end - (double)rss_before) / 1048576.0, "MiB");
    bench_result(B, cfgname, "hwm_process_mib", hwm / 1048576.0, "MiB");
    bench_result(B, cfgname, "hwm_bench_arrays_mib", ((double)rss_before - (double)rss_start) / 1048576.0, "MiB");
    bench_result(B, cfgname, "hwm_net_of_bench_mib", ((double)hwm - ((double)rss_before - (double)rss_start)) / 1048576.0, "MiB");
    bench_result(B, cfgname, "rss_budget_mib", budget, "MiB");
    free(app_tick);
    free(ev);
    free(tr_drain);
    for (int k = 0; k < TR_KINDS; k++) free(tr_ev[k]);
    return 0;
}
