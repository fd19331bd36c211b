/* test_raft_cluster_sim.c - the 3-node in-process cluster of picolog_raft.h
 * with each node's picolog on its own simulated disk (tests/sim_disk.h):
 *
 * 1. Power cuts under load. Each round streams proposals to the leader and,
 *    part way through, cuts the power of one node (the leader or a follower,
 *    in turn): its pending, unsynced writes are kept, dropped or torn as the
 *    simulated disk decides (or all dropped), the node is stopped, its files
 *    are put back as the cut left them, and it restarts from what survived.
 *    After each round, once every node has caught up: every acknowledged
 *    record is applied on every node at its acknowledged index; no two nodes
 *    (nor one node before and after a restart) ever apply different records
 *    at the same index; every node applies in index order.
 *
 * 2. libraft 0.15 lacks upstream a54636b ("election: only consider persisted
 *    state when running elections"). A follower whose disk holds its writes
 *    back has the last entries appended but not durable; the leader stops,
 *    the other follower restarts (it knows no leader), and the held follower
 *    campaigns first (shorter election timeout). It must
 *    ask for votes with its durable state only, so the other follower, which
 *    holds the acknowledged entries durably, refuses it and wins instead. The
 *    held follower then loses power (its pending writes dropped), restarts,
 *    and nothing acknowledged is missing anywhere.
 *
 * usage: test_raft_cluster_sim [--seed N] [--rounds N]
 *        env PLR_CLUSTER_SIM_SEED, PLR_CLUSTER_SIM_ROUNDS (make soak: more)
 * The seed picks the victims, the moments of the cuts, how each cut treats
 * the pending writes and each disk's behaviour; thread timing is not seeded,
 * so a replay takes the same decisions but may interleave differently.
 * A failing round prints the command that replays its seed. */
// LIBS: -lraft -luv
// NO_VALGRIND: libraft 0.15 itself hands uninitialised padding bytes to write(2) when it sends messages (as in test_raft_node)
#define PICOLOG_IMPLEMENTATION
#define PICOLOG_RAFT_IMPLEMENTATION
#include "picolog.h"
#include "picolog_raft.h"
#include "sim_disk.h"
#include "t.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* ThreadSanitizer: libuv closes sockets with a raw syscall TSan does not see
 * (see test_raft_node.c); only libuv's side of such reports is suppressed. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) { return "race:libuv.so.1\n"; }

__attribute__((unused)) static void unused_helpers(void) { (void)t_rand; (void)sim_stats_add; (void)sim_print_stats; (void)sim_outstanding; }

#define NODES 3
#define MAXIDX (1u << 16)        /* raft indexes a run may reach */
#define MAXT   (1u << 16)        /* tickets per node incarnation */

static void sleep_ms(unsigned ms) { struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L }; nanosleep(&ts, NULL); }
static uint64_t now_ms(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000; }

/* ---- one simulated disk per node; completions can be held back ----------- */
static sim_disk disks[NODES + 1];
static int disk_live[NODES + 1];
static int held[NODES + 1];
static pthread_mutex_t disks_mu = PTHREAD_MUTEX_INITIALIZER;
static plg_io dio[NODES + 1];

static int held_reap(void *ctx, plg_io_cqe *out, int max, uint64_t timeout_ns) {
    int i = (int)((sim_disk *)ctx - disks);
    if (__atomic_load_n(&held[i], __ATOMIC_ACQUIRE)) { sleep_ms(1); return 0; }
    return dio[i].reap(ctx, out, max, timeout_ns);
}
/* picolog syncs some files itself (fdatasync): the disk that knows the file
 * makes its completed writes durable, as the real call does */
static void external_sync(int fd) {
    pthread_mutex_lock(&disks_mu);
    for (int i = 1; i <= NODES; i++) if (disk_live[i]) sim_external_sync(&disks[i], fd);
    pthread_mutex_unlock(&disks_mu);
}
int fdatasync(int fd) { external_sync(fd); return (int)syscall(SYS_fdatasync, fd); }
int fsync(int fd) { external_sync(fd); return (int)syscall(SYS_fsync, fd); }

static uint64_t rng;
static uint64_t rnd(void) { uint64_t z = (rng += 0x9e3779b97f4a7c15ull); z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9ull; z = (z ^ z >> 27) * 0x94d049bb133111ebull; return z ^ z >> 31; }

static void disk_new(unsigned i) {
    sim_cfg sc; memset(&sc, 0, sizeof sc);
    sc.seed = rnd(); sc.max_delay = (uint32_t)(rnd() % 4); sc.p_hold = (uint32_t)(rnd() % 3) * 100000;
    sc.p_writeback = (uint32_t)(rnd() % 3) * 50000;
    pthread_mutex_lock(&disks_mu);
    if (disk_live[i]) sim_destroy(&disks[i]);
    sim_init(&disks[i], &sc);
    sim_plg_io(&disks[i], &dio[i]);
    disk_live[i] = 1;
    pthread_mutex_unlock(&disks_mu);
}
static void disk_free(unsigned i) {
    pthread_mutex_lock(&disks_mu);
    if (disk_live[i]) sim_destroy(&disks[i]);
    disk_live[i] = 0;
    pthread_mutex_unlock(&disks_mu);
}

/* ---- each node's state machine: the record applied at each index ----------- */
typedef struct nstate { pthread_mutex_t mu; uint64_t last_index, order_bad; uint64_t vals[MAXIDX]; } nstate;
static nstate *ns[NODES + 1];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_vals[MAXIDX];           /* the first record any node applied at each index */
static uint64_t g_conflicts; static char g_conflict_msg[256];

static void g_check(unsigned node, uint64_t index, uint64_t v, const char *how) {
    pthread_mutex_lock(&g_mu);
    if (!g_vals[index]) g_vals[index] = v;
    else if (g_vals[index] != v) {
        if (!g_conflicts++) snprintf(g_conflict_msg, sizeof g_conflict_msg, "node %u %s record %llu at index %llu, another applied %llu",
                                     node, how, (unsigned long long)v, (unsigned long long)index, (unsigned long long)g_vals[index]);
    }
    pthread_mutex_unlock(&g_mu);
}
static void on_apply(void *user, uint64_t index, const void *data, uint32_t len) {
    unsigned i = (unsigned)(uintptr_t)user;
    nstate *s = ns[i];
    uint64_t v = 0;
    if (len == 8) memcpy(&v, data, 8);
    if (index >= MAXIDX || v == 0) { pthread_mutex_lock(&s->mu); s->order_bad++; pthread_mutex_unlock(&s->mu); return; }
    pthread_mutex_lock(&s->mu);
    if (index <= s->last_index) s->order_bad++;
    s->last_index = index;
    s->vals[index] = v;
    pthread_mutex_unlock(&s->mu);
    g_check(i, index, v, "applied");
}
/* the state machine as bytes: last index, then the record at every index up to it */
static int on_snapshot(void *user, void **data, size_t *len) {
    nstate *s = ns[(uintptr_t)user];
    pthread_mutex_lock(&s->mu);
    size_t n = (size_t)(s->last_index + 1) * 8;
    uint64_t *b = (uint64_t *)malloc(n);
    if (b) { memcpy(b, s->vals, n); b[0] = s->last_index; }
    pthread_mutex_unlock(&s->mu);
    if (!b) return -1;
    *data = b; *len = n;
    return 0;
}
static int on_restore(void *user, const void *data, size_t len) {
    unsigned i = (unsigned)(uintptr_t)user;
    nstate *s = ns[i];
    if (len < 8 || len % 8) return -1;
    uint64_t last; memcpy(&last, data, 8);
    if (last >= MAXIDX || (last + 1) * 8 != len) return -1;
    pthread_mutex_lock(&s->mu);
    memset(s->vals, 0, sizeof s->vals);
    memcpy(s->vals + 1, (const uint64_t *)data + 1, (size_t)last * 8);
    s->last_index = last;
    pthread_mutex_unlock(&s->mu);
    for (uint64_t x = 1; x <= last; x++) { uint64_t v; memcpy(&v, (const uint64_t *)data + x, 8); if (v) g_check(i, x, v, "restored"); }
    return 0;
}

/* ---- the cluster ------------------------------------------------------------- */
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
static char addr[NODES][64], ndir[NODES][600], saved[700];
static plr_node *nodes[NODES + 1];
static unsigned etimeout[NODES + 1];
static uint64_t tval[NODES + 1][MAXT];    /* ticket -> record, per node incarnation */
static uint64_t ack_at[MAXIDX];           /* the record acknowledged at each index */
static uint64_t n_acked, max_acked, ack_conflicts, next_val = 1;
static unsigned snap_threshold;

static void quiet_log(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }   /* cut disks poison logs: expected */

static int start(unsigned i) {
    disk_new(i);
    pthread_mutex_lock(&ns[i]->mu);
    memset(ns[i]->vals, 0, sizeof ns[i]->vals); ns[i]->last_index = 0;    /* a new process */
    pthread_mutex_unlock(&ns[i]->mu);
    memset(tval[i], 0, sizeof tval[i]);
    plr_node_config c; memset(&c, 0, sizeof c);
    c.id = i; c.dir = ndir[i - 1]; c.n_servers = NODES;
    for (unsigned k = 0; k < NODES; k++) { c.servers[k].id = k + 1; c.servers[k].address = addr[k]; }
    c.election_timeout_ms = etimeout[i]; c.heartbeat_timeout_ms = 50;
    c.snapshot_threshold = snap_threshold; c.snapshot_trailing = 32;
    c.log.segment_size = 256 * 1024; c.log.ring_capacity = 1u << 18;
    static plg_io hio[NODES + 1];
    hio[i] = dio[i]; hio[i].reap = held_reap;
    c.log.io = &hio[i];
    c.log.sync_mode = rnd() % 2 ? PLG_SYNC_DSYNC : PLG_SYNC_FDATASYNC;
    c.log.poll_interval_ns = 100000;                 /* an idle writer wakes every 100 us, not 10: 3 nodes share 2 cores */
    c.log.flags = PLG_ALLOW_VOLATILE;
    c.log.log_fn = quiet_log;
    c.apply = on_apply; c.snapshot = on_snapshot; c.restore = on_restore;
    c.user = (void *)(uintptr_t)i;
    return plr_node_start(&nodes[i], &c);
}
static void copy_tree(const char *from, const char *to) {
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s' && rm -f '%s/log/live.shm'", to, from, to, to);
    if (system(cmd)) fprintf(stderr, "  copy failed: %s\n", cmd);
}
/* power loss on node i: pending writes kept/dropped/torn (mode 0) or all
 * dropped (mode 1); the files as the cut left them; a new process on them */
static int power_cut(unsigned i, int mode) {
    sim_cut(&disks[i], mode);
    __atomic_store_n(&held[i], 0, __ATOMIC_RELEASE);   /* the dead disk fails what it held */
    copy_tree(ndir[i - 1], saved);         /* what the disk holds now; the dying node may still write */
    plr_node_stop(nodes[i]);               /* (its log is poisoned: the error is expected) */
    nodes[i] = NULL;
    copy_tree(saved, ndir[i - 1]);
    return start(i);
}
static unsigned find_leader(unsigned wait_ms) {
    for (uint64_t t0 = now_ms(); now_ms() - t0 <= wait_ms; sleep_ms(10)) {
        for (unsigned i = 1; i <= NODES; i++) {
            if (!nodes[i]) continue;
            plr_status st; plr_get_status(nodes[i], &st);
            if (st.role == RAFT_LEADER) return i;
        }
    }
    return 0;
}
static void drain_acks(void) {
    for (unsigned i = 1; i <= NODES; i++) {
        plr_ack a;
        while (nodes[i] && plr_next_ack(nodes[i], &a) == 1) {
            if (a.status != 0) continue;
            uint64_t v = a.ticket < MAXT ? tval[i][a.ticket] : 0;
            if (!v || a.index >= MAXIDX) { ack_conflicts++; continue; }
            if (ack_at[a.index] && ack_at[a.index] != v) ack_conflicts++;   /* two records acknowledged at one index */
            ack_at[a.index] = v;
            n_acked++;
            if (a.index > max_acked) max_acked = a.index;
        }
    }
}
/* propose one record on node L; 0 when the ring or window is full */
static int propose(unsigned L) {
    uint64_t v = next_val;
    int64_t tk = plr_propose(nodes[L], &v, 8);
    if (tk == PLR_EFULL) return 0;
    if (tk < 0 || (uint64_t)tk >= MAXT) return -1;
    tval[L][tk] = v;
    next_val++;
    return 1;
}
static uint64_t node_applied(unsigned i) { plr_status st; plr_get_status(nodes[i], &st); return st.last_applied; }
/* n_acked reaches target (bounded wait) */
static int wait_acked(uint64_t target, unsigned wait_ms) {
    for (uint64_t t0 = now_ms(); n_acked < target && now_ms() - t0 <= wait_ms; sleep_ms(5)) drain_acks();
    return n_acked >= target;
}
/* every node has applied up to the last acknowledged index (bounded wait) */
static int caught_up(unsigned wait_ms) {
    for (uint64_t t0 = now_ms(); now_ms() - t0 <= wait_ms; sleep_ms(10)) {
        drain_acks();
        int all = 1;
        for (unsigned i = 1; i <= NODES; i++) all &= nodes[i] && node_applied(i) >= max_acked;
        if (all) return 1;
    }
    return 0;
}
/* the checks after a round; 0 or a message in msg */
static int check_cluster(char *msg, size_t cap) {
    msg[0] = 0;
    if (ack_conflicts) { snprintf(msg, cap, "%llu acks name an unknown ticket or a second record at one index", (unsigned long long)ack_conflicts); return 1; }
    pthread_mutex_lock(&g_mu);
    int conf = g_conflicts != 0;
    if (conf) snprintf(msg, cap, "%s", g_conflict_msg);
    pthread_mutex_unlock(&g_mu);
    if (conf) return 1;
    for (unsigned i = 1; i <= NODES; i++) {
        nstate *s = ns[i];
        pthread_mutex_lock(&s->mu);
        uint64_t bad = s->order_bad, lost = 0, first = 0;
        for (uint64_t x = 1; x <= max_acked; x++)
            if (ack_at[x] && s->vals[x] != ack_at[x]) { if (!lost++) first = x; }
        pthread_mutex_unlock(&s->mu);
        if (bad) { snprintf(msg, cap, "node %u applied out of index order (%llu times)", i, (unsigned long long)bad); return 1; }
        if (lost) { snprintf(msg, cap, "node %u: %llu acknowledged records missing or different, the first at index %llu", i, (unsigned long long)lost, (unsigned long long)first); return 1; }
    }
    return 0;
}

static const char *base_dir;
static int setup_cluster(const char *name) {
    base_dir = t_dir(name);
    if (t_has_odirect(base_dir) != 1) return 1;
    int port = 0;
    uint64_t prng = (uint64_t)getpid() ^ now_ms();
    for (int t = 0; t < 200 && !port; t++) { int b = 20000 + (int)(t_rand(&prng) % 40000); if (free_ports(b)) port = b; }
    if (!port) return -1;
    for (unsigned i = 1; i <= NODES; i++) {
        if (!ns[i]) { ns[i] = (nstate *)calloc(1, sizeof *ns[i]); pthread_mutex_init(&ns[i]->mu, NULL); }
        ns[i]->order_bad = 0;
        snprintf(addr[i - 1], sizeof addr[i - 1], "127.0.0.1:%d", port + (int)i - 1);
        snprintf(ndir[i - 1], sizeof ndir[i - 1], "%.500s/n%u", base_dir, i);
    }
    snprintf(saved, sizeof saved, "%.500s/cut", base_dir);
    memset(g_vals, 0, sizeof g_vals); g_conflicts = 0;
    memset(ack_at, 0, sizeof ack_at); n_acked = max_acked = ack_conflicts = 0;
    return 0;
}
static void teardown_cluster(void) {
    for (unsigned i = 1; i <= NODES; i++) { if (nodes[i]) plr_node_stop(nodes[i]); nodes[i] = NULL; disk_free(i); }
    char cmd[700]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", base_dir); if (system(cmd)) {}
}

/* ---- 1. power cuts under a stream of proposals ------------------------------- */
static uint64_t opt_seed = 1; static int opt_rounds = -1;
static int default_rounds(void) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    return 2;
#else
    const char *q = getenv("PLG_TEST_QUICK");
    return q && *q == '1' ? 2 : 6;
#endif
}

static void test_power_cuts_lose_nothing_acknowledged(void) {
    int rc = setup_cluster("raft_cluster_sim");
    if (rc == 1) SKIP("needs O_DIRECT");
    REQUIRE(rc == 0);
    int rounds = opt_rounds >= 0 ? opt_rounds : default_rounds();
    rng = opt_seed * 0x2545F4914F6CDD1Dull + 7;
    snap_threshold = 128;
    for (unsigned i = 1; i <= NODES; i++) etimeout[i] = 300;
    for (unsigned i = 1; i <= NODES; i++) REQUIRE(start(i) == 0);
    unsigned leader_cuts = 0, follower_cuts = 0, drop_all_cuts = 0;
    char msg[512] = "";
    int r;
    for (r = 0; r < rounds && !msg[0]; r++) {
        unsigned L = find_leader(20000);
        if (!L) { snprintf(msg, sizeof msg, "round %d: no leader within 20 s", r); break; }
        int cut_leader = r % 2 == 1;                      /* in turn: a follower, then the leader */
        int mode = (int)(rnd() % 2);
        unsigned n_props = 100 + (unsigned)(rnd() % 200), cut_at = (unsigned)(rnd() % n_props);
        unsigned victim = 0;
        for (unsigned k = 0; k < n_props; k++) {
            if (k == cut_at) {
                unsigned cur = find_leader(0);
                victim = cut_leader ? (cur ? cur : L) : ((cur ? cur : L) % NODES) + 1 + (unsigned)(rnd() % 2 ? 1 : 0);
                if (victim > NODES) victim -= NODES;
                if (cut_leader) leader_cuts++; else follower_cuts++;
                if (mode == 1) drop_all_cuts++;
                if (power_cut(victim, mode) != 0) { snprintf(msg, sizeof msg, "round %d: node %u does not restart after the cut", r, victim); break; }
                L = find_leader(20000);
                if (!L) { snprintf(msg, sizeof msg, "round %d: no leader within 20 s after the cut", r); break; }
            }
            int p;
            uint64_t t0 = now_ms();
            while ((p = propose(L)) == 0 && now_ms() - t0 < 5000) { plr_flush(nodes[L]); drain_acks(); sleep_ms(1); }
            if (p < 0) { snprintf(msg, sizeof msg, "round %d: propose failed", r); break; }
            if (k % 16 == 15) { plr_flush(nodes[L]); sleep_ms(1 + (unsigned)(rnd() % 3)); }
            drain_acks();
            plr_status st; plr_get_status(nodes[L], &st);
            if (st.role != RAFT_LEADER) { unsigned nl = find_leader(20000); if (nl) L = nl; }
        }
        if (msg[0]) break;
        plr_flush(nodes[L]);
        /* the proposals in flight settle; then a last one that must commit, so
         * the caught-up check covers the whole round */
        sleep_ms(200);
        drain_acks();
        uint64_t before = n_acked;
        for (uint64_t t0 = now_ms(); n_acked == before && now_ms() - t0 < 20000;) {
            L = find_leader(20000);
            if (!L) break;
            if (propose(L) == 1) plr_flush(nodes[L]);
            for (int w = 0; w < 100 && n_acked == before; w++) { sleep_ms(10); drain_acks(); }
        }
        if (n_acked == before) { snprintf(msg, sizeof msg, "round %d: nothing acknowledged after the cut within 20 s", r); break; }
        if (!caught_up(30000)) { snprintf(msg, sizeof msg, "round %d: the nodes did not catch up to index %llu within 30 s", r, (unsigned long long)max_acked); break; }
        char m2[400];
        if (check_cluster(m2, sizeof m2)) snprintf(msg, sizeof msg, "round %d (cut node %u, the %s, mode %d): %s", r, victim, cut_leader ? "leader" : "follower", mode, m2);
    }
    if (msg[0]) fprintf(stderr, "  %s\n  replay: build/test/test_raft_cluster_sim --seed %llu --rounds %d\n", msg, (unsigned long long)opt_seed, r + 1);
    CHECK(msg[0] == 0);
    printf("  cluster-sim: %d rounds, %llu acknowledged, 0 lost, nodes agree (%u leader and %u follower power cuts, %u dropping every pending write; seed %llu)\n",
           r, (unsigned long long)n_acked, leader_cuts, follower_cuts, drop_all_cuts, (unsigned long long)opt_seed);
    if (!msg[0] && rounds > 0) { CHECK(n_acked > 0); if (rounds >= 2) { CHECK(leader_cuts > 0); CHECK(follower_cuts > 0); } }
    teardown_cluster();
}

/* ---- 2. a candidate with appended-but-not-durable entries (upstream a54636b) -- */
static void test_candidate_claims_only_durable_entries(void) {
    int rc = setup_cluster("raft_cluster_vote");
    if (rc == 1) SKIP("needs O_DIRECT");
    REQUIRE(rc == 0);
    rng = 4242;
    snap_threshold = 1u << 30;
    /* nodes 1 and 2 campaign fast, node 3 slowly: the leader is 1 or 2 */
    etimeout[1] = etimeout[2] = 200; etimeout[3] = 1500;
    for (unsigned i = 1; i <= NODES; i++) REQUIRE(start(i) == 0);
    unsigned L = 0;
    for (int t = 0; t < 5 && (L = find_leader(20000)) == 3; t++) {   /* rare: node 3 won; it steps aside */
        plr_node_stop(nodes[3]); nodes[3] = NULL; REQUIRE(start(3) == 0); sleep_ms(500);
    }
    REQUIRE(L == 1 || L == 2);
    unsigned A = 3 - L, B = 3;     /* A: fast to campaign, its disk held; B: slow, holds everything durably */
    for (int k = 0; k < 20; k++) while (propose(L) == 0) sleep_ms(1);
    plr_flush(nodes[L]);
    REQUIRE(wait_acked(20, 20000));
    REQUIRE(caught_up(20000));
    __atomic_store_n(&held[A], 1, __ATOMIC_RELEASE);           /* A appends from now on, durably nothing */
    sleep_ms(100);
    plr_status sa; plr_get_status(nodes[A], &sa);
    uint64_t a_durable = sa.durable;
    uint64_t before = n_acked;
    for (int k = 0; k < 30; k++) while (propose(L) == 0) sleep_ms(1);
    plr_flush(nodes[L]);
    wait_acked(before + 30, 20000);
    CHECK_EQ(n_acked, before + 30);                             /* committed by the leader and B */
    for (uint64_t t0 = now_ms(); now_ms() - t0 < 5000; sleep_ms(10)) {   /* A holds them in memory */
        plr_get_status(nodes[A], &sa);
        if (sa.last_index >= max_acked) break;
    }
    CHECK(sa.last_index >= max_acked);
    CHECK_EQ(sa.durable, a_durable);                            /* ... but not durably */
    plr_status sb; plr_get_status(nodes[B], &sb);
    CHECK(sb.durable >= max_acked);
    /* the leader goes, and B restarts (so it knows no leader and judges A's
     * vote requests by their logs at once; a follower that still has a
     * leader refuses every request until its own timeout makes it campaign).
     * A campaigns first, claiming what is durable only, so B refuses it. */
    plr_node_stop(nodes[L]); nodes[L] = NULL;
    plr_node_stop(nodes[B]); nodes[B] = NULL;
    REQUIRE(start(B) == 0);
    unsigned NL = 0; uint64_t a_led = 0;
    for (uint64_t t0 = now_ms(); now_ms() - t0 < 20000 && !NL; sleep_ms(5)) {
        plr_get_status(nodes[A], &sa);
        if (sa.role == RAFT_LEADER) { NL = A; a_led = sa.term; }
        plr_get_status(nodes[B], &sb);
        if (sb.role == RAFT_LEADER) NL = B;
    }
    if (a_led) fprintf(stderr, "  node %u, its disk holding entries %llu..%llu back, was elected in term %llu: its RequestVote claimed entries that were not durable\n",
                       A, (unsigned long long)a_durable + 1, (unsigned long long)max_acked, (unsigned long long)a_led);
    CHECK(a_led == 0);
    CHECK_EQ(NL, B);
    plr_get_status(nodes[A], &sa);
    CHECK_EQ(sa.durable, a_durable);                            /* still held: the election did not depend on it */
    /* A loses power with every pending write dropped, restarts, catches up */
    REQUIRE(power_cut(A, 1) == 0);
    REQUIRE(start(L) == 0);
    unsigned cur = find_leader(20000);
    REQUIRE(cur != 0);
    before = n_acked;
    for (int k = 0; k < 10; k++) while (propose(cur) == 0) sleep_ms(1);
    plr_flush(nodes[cur]);
    wait_acked(before + 10, 20000);
    CHECK_EQ(n_acked, before + 10);
    CHECK(caught_up(30000));
    char m2[400];
    int bad = check_cluster(m2, sizeof m2);
    if (bad) fprintf(stderr, "  %s\n", m2);
    CHECK(bad == 0);
    teardown_cluster();
}

int main(int argc, char **argv) {
    const char *e = getenv("PLR_CLUSTER_SIM_SEED");
    if (e && *e) opt_seed = strtoull(e, NULL, 0);
    e = getenv("PLR_CLUSTER_SIM_ROUNDS");
    if (e && *e) opt_rounds = atoi(e);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) opt_seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) opt_rounds = atoi(argv[++i]);
    }
    RUN(test_candidate_claims_only_durable_entries);
    RUN(test_power_cuts_lose_nothing_acknowledged);
    for (unsigned i = 1; i <= NODES; i++) free(ns[i]);
    return t_done();
}
