/* raft_bench.c - commit latency and throughput of 100-byte records through a
 * 3-node Raft cluster on 127.0.0.1 (picolog_raft.h), next to single-node
 * picolog durable latency measured in the same run on the same disk.
 *
 *   make build/bench/raft_bench && build/bench/raft_bench [DIR] [SAMPLES] [SECONDS]
 *
 * The three nodes run in this process (one libuv loop thread each) and talk
 * over loopback TCP; each has its own picolog log under DIR (default
 * build/tmp/raft_bench, removed at the end). Latency: one record at a time,
 * plr_propose + plr_flush on the leader until its ack (committed on a
 * majority, every log durable). Throughput: records proposed as fast as the
 * ack window allows for SECONDS. Baseline: plg_append + plg_wait on one log.
 * Result lines: R,raft_bench,<config>,<metric>,<value>,<unit> (bench/bench.h). */
// LIBS: -lraft -luv
#define PICOLOG_IMPLEMENTATION
#define PICOLOG_RAFT_IMPLEMENTATION
#include "picolog.h"
#include "picolog_raft.h"
#include "bench.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define NODES 3
#define REC 100u

static uint64_t applied[NODES + 1];
static void on_apply(void *user, uint64_t index, const void *data, uint32_t len) {
    (void)data; (void)len;
    __atomic_store_n(&applied[(uintptr_t)user], index, __ATOMIC_RELEASE);
}
static int cmp_u64(const void *a, const void *b) { uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b; return x < y ? -1 : x > y; }
static uint64_t pct(uint64_t *v, size_t n, double p) { size_t i = (size_t)(p * (double)(n - 1)); return v[i]; }
static int free_ports(int base) {
    for (int i = 0; i < NODES; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a; memset(&a, 0, sizeof a);
        a.sin_family = AF_INET; a.sin_port = htons((uint16_t)(base + i)); a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0) close(fd);
        if (!ok) return 0;
    }
    return 1;
}
static void sleep_us(unsigned us) { struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000L }; nanosleep(&ts, NULL); }
static void report(const char *cfg, uint64_t *lat, size_t n) {
    qsort(lat, n, sizeof *lat, cmp_u64);
    printf("%-28s p50 %8.1f us  p99 %8.1f us  max %8.1f us  (%zu samples)\n", cfg,
           pct(lat, n, 0.50) / 1e3, pct(lat, n, 0.99) / 1e3, lat[n - 1] / 1e3, n);
    printf("R,raft_bench,%s,p50,%.1f,us\nR,raft_bench,%s,p99,%.1f,us\n", cfg, pct(lat, n, 0.50) / 1e3, cfg, pct(lat, n, 0.99) / 1e3);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "build/tmp/raft_bench";
    size_t samples = argc > 2 ? (size_t)atol(argv[2]) : 2000;
    double seconds = argc > 3 ? atof(argv[3]) : 2.0;
    char cmd[1200], path[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd)) return 2;
    uint64_t *lat = (uint64_t *)malloc(samples * sizeof *lat);
    unsigned char rec[REC];
    memset(rec, 0x5a, sizeof rec);
    if (!lat) return 2;

    /* ---- single-node picolog: append, wait until durable ---- */
    plg_config pc; memset(&pc, 0, sizeof pc);
    snprintf(path, sizeof path, "%s/single", dir);
    pc.path = path;
    plg_log *L;
    int rc = plg_open(&L, &pc);
    if (rc) { fprintf(stderr, "plg_open: %s\n", plg_strerror(rc)); return 1; }
    for (size_t i = 0; i < samples; i++) {
        uint64_t t0 = bench_mono_ns();
        int64_t s = plg_append(L, rec, REC);
        if (s < 0 || plg_wait(L, (uint64_t)s, -1)) { fprintf(stderr, "picolog append/wait failed\n"); return 1; }
        lat[i] = bench_mono_ns() - t0;
    }
    plg_stats ps; plg_get_stats(L, &ps);
    plg_close(L);
    printf("disk sync mode: %d (picolog), record %u bytes\n", ps.sync_mode, REC);
    report("picolog_single_durable", lat, samples);

    /* ---- 3-node cluster on loopback ---- */
    int port = 0;
    srand((unsigned)getpid());
    for (int t = 0; t < 200 && !port; t++) { int b = 20000 + rand() % 40000; if (free_ports(b)) port = b; }
    if (!port) return 2;
    char addr[NODES][64], ndir[NODES][1100];
    plr_node *nodes[NODES + 1] = {0};
    for (unsigned i = 1; i <= NODES; i++) {
        plr_node_config c; memset(&c, 0, sizeof c);
        snprintf(ndir[i - 1], sizeof ndir[i - 1], "%s/n%u", dir, i);
        c.id = i; c.dir = ndir[i - 1]; c.n_servers = NODES;
        for (unsigned k = 0; k < NODES; k++) {
            snprintf(addr[k], sizeof addr[k], "127.0.0.1:%d", port + (int)k);
            c.servers[k].id = k + 1; c.servers[k].address = addr[k];
        }
        c.election_timeout_ms = 500; c.heartbeat_timeout_ms = 50;
        c.snapshot_threshold = 1u << 30;      /* no snapshots: the FSM here keeps nothing */
        c.apply = on_apply; c.user = (void *)(uintptr_t)i;
        c.ack_window = 4096;                  /* the default, said here: 65536 in flight was much slower */
        rc = plr_node_start(&nodes[i], &c);
        if (rc) { fprintf(stderr, "node %u: %s\n", i, plr_strerror(rc)); return 1; }
    }
    plr_node *leader = NULL;
    for (int t = 0; t < 300 && !leader; t++) {
        for (unsigned i = 1; i <= NODES; i++) { plr_status st; plr_get_status(nodes[i], &st); if (st.role == RAFT_LEADER) leader = nodes[i]; }
        if (!leader) sleep_us(20000);
    }
    if (!leader) { fprintf(stderr, "no leader elected\n"); return 1; }
    /* a barrier-free warm-up: the leader's first entries of its term */
    plr_ack a;
    size_t got = 0;
    for (size_t i = 0; i < samples; i++) {
        uint64_t t0 = bench_mono_ns();
        int64_t tk = plr_propose(leader, rec, REC);
        if (tk < 0) { fprintf(stderr, "propose: %s\n", plr_strerror((int)tk)); return 1; }
        plr_flush(leader);
        while (plr_next_ack(leader, &a) == 0) { }   /* spin: the ack is the latency */
        if (a.status) { fprintf(stderr, "ack status %s\n", plr_strerror(a.status)); return 1; }
        lat[got++] = bench_mono_ns() - t0;
    }
    report("raft3_commit", lat, got);

    /* throughput: keep the window full */
    uint64_t t0 = bench_mono_ns(), end = t0 + (uint64_t)(seconds * 1e9), acked = 0, proposed = 0;
    while (bench_mono_ns() < end) {
        int k = 0;
        while (k < 256 && plr_propose(leader, rec, REC) > 0) { k++; proposed++; }
        if (k) plr_flush(leader);
        while (plr_next_ack(leader, &a) == 1) { if (a.status) { fprintf(stderr, "ack status %d\n", a.status); return 1; } acked++; }
        if (!k) sleep_us(50);
    }
    while (acked < proposed) { if (plr_next_ack(leader, &a) == 1) acked++; else sleep_us(50); }
    double el = (double)(bench_mono_ns() - t0) / 1e9;
    printf("%-28s %10.0f records/s  (%llu in %.2f s, %.1f MB/s of payload)\n", "raft3_throughput", (double)acked / el,
           (unsigned long long)acked, el, (double)acked * REC / el / 1e6);
    printf("R,raft_bench,raft3,throughput,%.0f,records/s\n", (double)acked / el);
    plr_status st; plr_get_status(leader, &st);
    for (unsigned i = 0; i < st.n_followers; i++)
        printf("follower %llu: match %llu, lag %llu\n", (unsigned long long)st.followers[i].id,
               (unsigned long long)st.followers[i].match_index, (unsigned long long)st.followers[i].lag);
    for (unsigned i = 1; i <= NODES; i++) plr_node_stop(nodes[i]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {}
    free(lat);
    return 0;
}
