/* replicated_log.c - the original's Trade struct, replicated over three
 * processes on 127.0.0.1 through Raft (picolog_raft.h).
 *
 *   cc -O2 -I. examples/replicated_log.c -o replicated_log -lraft -luv -luring -lpthread
 *   ./replicated_log demo                 start 3 nodes, kill -9 the leader under load,
 *                                         restart it, check every node applied the same
 *                                         trades and no acknowledged one is missing
 *   ./replicated_log cluster-test ROUNDS [SEED]
 *                                         ROUNDS of random kill -9 (leader or follower)
 *                                         and partitions under load, tiny snapshots
 *   ./replicated_log node ID WORKDIR BASEPORT    one node (what the two above start)
 *
 * A node proposes trades while it leads and writes each trade it saw
 * acknowledged (committed on a majority) to WORKDIR/acked-ID.txt. Every node
 * applies the committed trades in order; its state is the list of trade ids
 * and a hash chain over them. At the end each node dumps its state, and the
 * checker compares them and looks for every acknowledged trade.
 * Ports: three consecutive free ports picked at random, so runs in parallel
 * do not collide. The work directory is removed when the check passes. */
#define PICOLOG_IMPLEMENTATION
#define PICOLOG_RAFT_IMPLEMENTATION
#include "picolog.h"
#include "picolog_raft.h"
// LIBS: -lraft -luv

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct Trade {      /* the original Picolog example's record */
    uint64_t price;         /* ticks */
    uint64_t qty;           /* lots */
    uint32_t symbol_id;
    uint8_t  side;          /* 1 buy, 2 sell */
    uint32_t strategy_id;
} Trade;
typedef struct TradeMsg { uint64_t id; Trade t; } TradeMsg;   /* id: incarnation << 32 | counter */

#define NODES 3

/* ---- one node --------------------------------------------------------------- */
static struct {
    pthread_mutex_t mu;
    uint64_t *ids; size_t n, cap;
    uint64_t hash, applied;
} fsm = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 1469598103934665603ull, 0 };
static volatile sig_atomic_t g_term;
static int g_partitioned;
static const char *g_work;
static unsigned g_id;

static uint64_t mix(uint64_t h, uint64_t v) { for (int i = 0; i < 8; i++) { h ^= (v >> (8 * i)) & 0xff; h *= 1099511628211ull; } return h; }

static void on_apply(void *user, uint64_t index, const void *data, uint32_t len) {
    (void)user;
    TradeMsg m;
    if (len != sizeof m) { fprintf(stderr, "node %u: bad record at %llu\n", g_id, (unsigned long long)index); abort(); }
    memcpy(&m, data, sizeof m);
    pthread_mutex_lock(&fsm.mu);
    if (fsm.n == fsm.cap) {
        fsm.cap = fsm.cap ? fsm.cap * 2 : 4096;
        fsm.ids = (uint64_t *)realloc(fsm.ids, fsm.cap * sizeof *fsm.ids);
        if (!fsm.ids) abort();
    }
    fsm.ids[fsm.n++] = m.id;
    fsm.hash = mix(fsm.hash, m.id);
    fsm.applied = index;
    pthread_mutex_unlock(&fsm.mu);
}
static int on_snapshot(void *user, void **data, size_t *len) {
    (void)user;
    pthread_mutex_lock(&fsm.mu);
    size_t bytes = 16 + fsm.n * 8;
    uint64_t *b = (uint64_t *)malloc(bytes);
    if (!b) { pthread_mutex_unlock(&fsm.mu); return -1; }
    b[0] = fsm.n; b[1] = fsm.hash;
    if (fsm.n) memcpy(b + 2, fsm.ids, fsm.n * 8);
    pthread_mutex_unlock(&fsm.mu);
    *data = b; *len = bytes;
    return 0;
}
static int on_restore(void *user, const void *data, size_t len) {
    (void)user;
    const uint64_t *b = (const uint64_t *)data;
    if (len < 16 || len != 16 + b[0] * 8) return -1;
    pthread_mutex_lock(&fsm.mu);
    fsm.n = fsm.cap = b[0];
    free(fsm.ids);
    fsm.ids = (uint64_t *)malloc((fsm.n ? fsm.n : 1) * 8);
    if (!fsm.ids) abort();
    if (fsm.n) memcpy(fsm.ids, b + 2, fsm.n * 8);
    fsm.hash = b[1];
    pthread_mutex_unlock(&fsm.mu);
    return 0;
}
static void on_leader(void *user, uint64_t leader, uint64_t term, int self) {
    (void)user;
    fprintf(stderr, "node %u: leader %llu term %llu%s\n", g_id, (unsigned long long)leader, (unsigned long long)term, self ? " (me)" : "");
}
static int drop_send(void *user, uint64_t to) { (void)user; (void)to; return __atomic_load_n(&g_partitioned, __ATOMIC_RELAXED); }
static void on_term(int sig) { (void)sig; g_term = 1; }
static int exists(const char *dir, const char *name) {
    char p[1024]; snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}
static void sleep_ms(unsigned ms) { struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L }; nanosleep(&ts, NULL); }

static int run_node(unsigned id, const char *work, int baseport) {
    g_id = id; g_work = work;
    signal(SIGTERM, on_term);
    char dir[1024], addr[NODES][64], path[1200], tmp[1300];
    snprintf(dir, sizeof dir, "%s/n%u", work, id);
    plr_node_config c;
    memset(&c, 0, sizeof c);
    c.id = id; c.dir = dir; c.n_servers = NODES;
    for (unsigned i = 0; i < NODES; i++) {
        snprintf(addr[i], sizeof addr[i], "127.0.0.1:%d", baseport + (int)i);
        c.servers[i].id = i + 1; c.servers[i].address = addr[i];
    }
    c.election_timeout_ms = 400; c.heartbeat_timeout_ms = 50;
    c.snapshot_threshold = 64; c.snapshot_trailing = 16;    /* tiny: snapshots and installs happen */
    c.log.ring_capacity = 1u << 20; c.log.segment_size = 1u << 20;
    c.apply = on_apply; c.snapshot = on_snapshot; c.restore = on_restore;
    c.leader_changed = on_leader; c.drop_send = drop_send;
    plr_node *n;
    int rc = plr_node_start(&n, &c);
    if (rc) { fprintf(stderr, "node %u: start: %s\n", id, plr_strerror(rc)); return 1; }
    snprintf(path, sizeof path, "%s/acked-%u.txt", work, id);
    FILE *acked = fopen(path, "a");
    if (!acked) return 1;
    struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t incarnation = ((uint64_t)getpid() << 8 ^ (uint64_t)ts.tv_nsec) & 0x7fffffffu;
    uint64_t counter = 0, tick = 0;
    while (!g_term) {
        sleep_ms(1);
        tick++;
        __atomic_store_n(&g_partitioned, exists(work, id == 1 ? "part-1" : id == 2 ? "part-2" : "part-3"), __ATOMIC_RELAXED);
        plr_status st; plr_get_status(n, &st);
        if (st.role == RAFT_LEADER && !exists(work, "stop")) {
            for (int k = 0; k < 4; k++) {
                TradeMsg m;
                memset(&m, 0, sizeof m);
                m.id = incarnation << 32 | ++counter;
                m.t.price = 100000 + counter % 977; m.t.qty = 1 + counter % 10; m.t.symbol_id = 7;
                m.t.side = (uint8_t)(1 + counter % 2); m.t.strategy_id = id;
                if (plr_propose(n, &m, sizeof m) < 0) { counter--; break; }
            }
        }
        plr_ack a; int any = 0;
        while (plr_next_ack(n, &a) == 1)
            if (a.status == 0) { fprintf(acked, "%llu %llu %llu\n", (unsigned long long)(incarnation << 32 | a.ticket), (unsigned long long)a.index, (unsigned long long)st.term); any = 1; }
        if (any) fflush(acked);       /* a kill -9 keeps what reached the page cache */
        if (tick % 20 == 0) {
            snprintf(path, sizeof path, "%s/status-%u", work, id);
            snprintf(tmp, sizeof tmp, "%s.tmp", path);
            FILE *f = fopen(tmp, "w");
            if (f) {
                pthread_mutex_lock(&fsm.mu);
                fprintf(f, "%d %llu %llu %llu %llu %zu %llu\n", st.role, (unsigned long long)st.term, (unsigned long long)st.leader_id,
                        (unsigned long long)st.commit_index, (unsigned long long)st.last_applied, fsm.n, (unsigned long long)fsm.hash);
                pthread_mutex_unlock(&fsm.mu);
                fclose(f);
                rename(tmp, path);
            }
        }
    }
    fclose(acked);
    plr_status st; plr_get_status(n, &st);
    rc = plr_node_stop(n);
    snprintf(path, sizeof path, "%s/final-%u.txt", work, id);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f, "%llu %zu %llu\n", (unsigned long long)st.last_applied, fsm.n, (unsigned long long)fsm.hash);
    for (size_t i = 0; i < fsm.n; i++) fprintf(f, "%llu\n", (unsigned long long)fsm.ids[i]);
    fclose(f);
    free(fsm.ids);
    return rc ? 1 : 0;
}

/* ---- the checker: starts, kills, partitions and restarts the nodes ------------ */
static pid_t pids[NODES + 1];
static char g_self[4096], g_portstr[16];
static uint64_t rng_state;
static uint64_t rnd(void) { uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull); z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9ull; z = (z ^ z >> 27) * 0x94d049bb133111ebull; return z ^ z >> 31; }

static void start_node(unsigned id) {
    char ids[16], logp[1200];
    snprintf(ids, sizeof ids, "%u", id);
    snprintf(logp, sizeof logp, "%s/log-%u.txt", g_work, id);
    pid_t p = fork();
    if (p == 0) {
        FILE *e = freopen(logp, "a", stderr); (void)e;
        execl(g_self, g_self, "node", ids, g_work, g_portstr, (char *)NULL);
        _exit(127);
    }
    pids[id] = p;
}
static void kill9(unsigned id) { if (pids[id] > 0) { kill(pids[id], SIGKILL); waitpid(pids[id], NULL, 0); pids[id] = 0; } }

typedef struct nstat { int role; unsigned long long term, leader, commit, applied, n, hash; int ok; } nstat;
static nstat read_status(unsigned id) {
    nstat s; memset(&s, 0, sizeof s);
    char p[1200]; snprintf(p, sizeof p, "%s/status-%u", g_work, id);
    FILE *f = fopen(p, "r");
    if (f) { s.ok = fscanf(f, "%d %llu %llu %llu %llu %llu %llu", &s.role, &s.term, &s.leader, &s.commit, &s.applied, &s.n, &s.hash) == 7; fclose(f); }
    return s;
}
static unsigned find_leader(unsigned wait_ms) {
    for (unsigned t = 0; t < wait_ms; t += 50) {
        for (unsigned i = 1; i <= NODES; i++) { nstat s = read_status(i); if (pids[i] && s.ok && s.role == RAFT_LEADER) return i; }
        sleep_ms(50);
    }
    return 0;
}
static void touch(const char *name) { char p[1200]; snprintf(p, sizeof p, "%s/%s", g_work, name); FILE *f = fopen(p, "w"); if (f) fclose(f); }
static void rm(const char *name) { char p[1200]; snprintf(p, sizeof p, "%s/%s", g_work, name); unlink(p); }

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
static int cmp_u64(const void *a, const void *b) { uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b; return x < y ? -1 : x > y; }

/* every node stopped: compare their states, look for every acknowledged trade */
static int verify(unsigned rounds, int verbose) {
    uint64_t *ids[NODES + 1] = {0}; unsigned long long hdr[NODES + 1][3];
    int bad = 0;
    for (unsigned i = 1; i <= NODES; i++) {
        char p[1200]; snprintf(p, sizeof p, "%s/final-%u.txt", g_work, i);
        FILE *f = fopen(p, "r");
        if (!f || fscanf(f, "%llu %llu %llu", &hdr[i][0], &hdr[i][1], &hdr[i][2]) != 3) { fprintf(stderr, "cluster: node %u left no final state\n", i); if (f) fclose(f); return 1; }
        ids[i] = (uint64_t *)malloc((hdr[i][1] + 1) * 8);
        for (unsigned long long k = 0; k < hdr[i][1]; k++) { unsigned long long v; if (fscanf(f, "%llu", &v) != 1) bad = 1; ids[i][k] = v; }
        fclose(f);
        if (verbose) printf("node %u: applied index %llu, %llu trades, hash %016llx\n", i, hdr[i][0], hdr[i][1], hdr[i][2]);
    }
    int agree = !bad;
    for (unsigned i = 2; i <= NODES; i++)
        if (hdr[i][0] != hdr[1][0] || hdr[i][1] != hdr[1][1] || hdr[i][2] != hdr[1][2] || memcmp(ids[i], ids[1], hdr[1][1] * 8)) agree = 0;
    qsort(ids[1], hdr[1][1], 8, cmp_u64);
    unsigned long long acked = 0, lost = 0;
    for (unsigned i = 1; i <= NODES; i++) {
        char p[1200]; snprintf(p, sizeof p, "%s/acked-%u.txt", g_work, i);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        unsigned long long id, idx, term;
        while (fscanf(f, "%llu %llu %llu", &id, &idx, &term) == 3) {
            uint64_t key = id;
            acked++;
            if (!bsearch(&key, ids[1], hdr[1][1], 8, cmp_u64)) { lost++; if (lost < 5) fprintf(stderr, "cluster: acknowledged trade %llx (index %llu, term %llu, node %u) missing\n", id, idx, term, i); }
        }
        fclose(f);
    }
    for (unsigned i = 1; i <= NODES; i++) free(ids[i]);
    printf("cluster: %u rounds, %llu acknowledged, %llu lost, nodes %s\n", rounds, acked, lost, agree ? "agree" : "DISAGREE");
    return lost || !agree || acked == 0;
}

static int run_cluster(unsigned rounds, uint64_t seed, int demo) {
    rng_state = seed;
    ssize_t sl = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (sl <= 0) return 2;
    g_self[sl] = 0;
    static char work[1024];
    const char *base = getenv("PLR_WORK_DIR");
    snprintf(work, sizeof work, "%s/plr-cluster-XXXXXX", base && *base ? base : ".");
    if (!mkdtemp(work)) { perror("mkdtemp"); return 2; }
    g_work = work;
    int port = 0;
    for (int t = 0; t < 200 && !port; t++) { int b = 20000 + (int)(rnd() % 40000); if (free_ports(b)) port = b; }
    if (!port) return 2;
    snprintf(g_portstr, sizeof g_portstr, "%d", port);
    char replay[64];
    if (demo) snprintf(replay, sizeof replay, "demo %llu", (unsigned long long)seed);
    else snprintf(replay, sizeof replay, "cluster-test %u %llu", rounds, (unsigned long long)seed);
    printf("cluster: seed %llu, ports %d-%d, work %s (replay: replicated_log %s)\n",
           (unsigned long long)seed, port, port + NODES - 1, work, replay);
    fflush(stdout);
    for (unsigned i = 1; i <= NODES; i++) start_node(i);
    int rc = 0;
    for (unsigned r = 0; r < rounds; r++) {
        unsigned leader = find_leader(15000);
        if (!leader) { fprintf(stderr, "cluster: no leader in round %u\n", r); rc = 1; break; }
        sleep_ms(300 + (unsigned)(rnd() % 500));                 /* load */
        leader = find_leader(15000);
        if (!leader) { fprintf(stderr, "cluster: no leader in round %u\n", r); rc = 1; break; }
        unsigned kind = demo ? 0 : (unsigned)(rnd() % 3);
        unsigned victim = kind == 1 ? 1 + (leader + (unsigned)(rnd() % 2)) % NODES : leader;
        if (kind == 2) {                                           /* partition: drop the victim's sends */
            char name[16]; snprintf(name, sizeof name, "part-%u", victim);
            printf("round %u: partition node %u (leader %u)\n", r, victim, leader);
            touch(name); sleep_ms(1200 + (unsigned)(rnd() % 600)); rm(name);
        } else {
            printf("round %u: kill -9 node %u (%s)\n", r, victim, victim == leader ? "leader" : "follower");
            kill9(victim);
            sleep_ms(200 + (unsigned)(rnd() % 800));               /* the others go on (a new election) */
            start_node(victim);
        }
        fflush(stdout);
    }
    touch("stop");
    /* quiesce: a leader, and every node has applied the same index for a while */
    unsigned stable = 0; unsigned long long last = 0;
    for (unsigned t = 0; rc == 0 && t < 600 && stable < 6; t++) {
        sleep_ms(100);
        nstat s[NODES + 1]; int same = 1;
        for (unsigned i = 1; i <= NODES; i++) { s[i] = read_status(i); if (!s[i].ok || s[i].applied != s[1].applied || s[i].hash != s[1].hash) same = 0; }
        if (same && s[1].applied == last && find_leader(1)) stable++; else stable = 0;
        last = s[1].applied;
    }
    if (stable < 6 && rc == 0) { fprintf(stderr, "cluster: nodes did not converge\n"); rc = 1; }
    for (unsigned i = 1; i <= NODES; i++) if (pids[i] > 0) kill(pids[i], SIGTERM);
    for (unsigned i = 1; i <= NODES; i++) if (pids[i] > 0) { int st; waitpid(pids[i], &st, 0); if (!WIFEXITED(st) || WEXITSTATUS(st)) { fprintf(stderr, "cluster: node %u exited badly (status %d, signal %d)\n", i, WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0); rc = 1; } }
    if (rc == 0) rc = verify(rounds, demo);
    if (rc == 0) { char cmd[1200]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", work); if (system(cmd)) {} }
    else fprintf(stderr, "cluster: FAILED, kept %s (node logs: log-N.txt)\n", work);
    return rc;
}

int main(int argc, char **argv) {
    if (argc >= 5 && !strcmp(argv[1], "node")) return run_node((unsigned)atoi(argv[2]), argv[3], atoi(argv[4]));
    if (argc >= 2 && !strcmp(argv[1], "demo")) return run_cluster(1, argc > 2 ? strtoull(argv[2], NULL, 10) : (uint64_t)time(NULL), 1);
    if (argc >= 3 && !strcmp(argv[1], "cluster-test"))
        return run_cluster((unsigned)atoi(argv[2]), argc > 3 ? strtoull(argv[3], NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid(), 0);
    fprintf(stderr, "usage: %s demo [SEED] | cluster-test ROUNDS [SEED] | node ID WORKDIR BASEPORT\n", argv[0]);
    return 2;
}
