/* test_raft_node.c - picolog_raft.h's engine API on a 3-node cluster in one
 * process (three loop threads, loopback TCP, random free ports):
 * proposals from the engine thread come back as acks with their Raft index
 * once committed, every node applies the same records in index order, a
 * follower refuses proposals (PLR_ENOTLEADER), status reports each follower's
 * match index, the leader-change callback fires, and a stopped and restarted
 * node gets everything back from its picolog log. */
// LIBS: -lraft -luv
// NO_VALGRIND: libraft 0.15 itself hands uninitialised padding bytes to write(2) when it sends messages (memcheck reports them inside libraft/libuv); the storage adapter runs under valgrind in test_raft_storage
#define PICOLOG_IMPLEMENTATION
#define PICOLOG_RAFT_IMPLEMENTATION
#include "picolog.h"
#include "picolog_raft.h"
#include "t.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* ThreadSanitizer: libuv (not instrumented) closes sockets with a raw
 * syscall(SYS_close), which TSan does not see, so a file descriptor number
 * reused by another thread (picolog's files) looks like a race on the fd.
 * Only libuv's side of such reports is suppressed. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) { return "race:libuv.so.1\n"; }

#define NODES 3
#define ALL (NODES + 1)          /* node 4 joins later (membership) */
#define MAXREC 4096
typedef struct applied_log { pthread_mutex_t mu; uint64_t n, last_index, idx[MAXREC], val[MAXREC]; int order_ok; } applied_log;
static applied_log logs[ALL + 1];
static int leader_calls[ALL + 1];

static void on_apply(void *user, uint64_t index, const void *data, uint32_t len) {
    applied_log *a = &logs[(uintptr_t)user];
    uint64_t v = 0;
    if (len == 8) memcpy(&v, data, 8);
    pthread_mutex_lock(&a->mu);
    if (index <= a->last_index) a->order_ok = 0;
    a->last_index = index;
    if (a->n < MAXREC) { a->idx[a->n] = index; a->val[a->n] = v; a->n++; }
    pthread_mutex_unlock(&a->mu);
}
static void on_leader(void *user, uint64_t leader, uint64_t term, int self) {
    (void)leader; (void)term; (void)self;
    __atomic_add_fetch(&leader_calls[(uintptr_t)user], 1, __ATOMIC_RELAXED);
}
static int free_ports(int base) {
    for (int i = 0; i < ALL; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a; memset(&a, 0, sizeof a);
        a.sin_family = AF_INET; a.sin_port = htons((uint16_t)(base + i)); a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0) close(fd);
        if (!ok) return 0;
    }
    return 1;
}
__attribute__((unused)) static void unused_helpers(void) { (void)t_rand; }
static void sleep_ms(unsigned ms) { struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L }; nanosleep(&ts, NULL); }

static char addr[ALL][64], ndir[ALL][600];
static plr_node *nodes[ALL + 1];
static int start(unsigned i) {
    plr_node_config c; memset(&c, 0, sizeof c);
    c.id = i; c.dir = ndir[i - 1]; c.n_servers = NODES;
    for (unsigned k = 0; k < NODES; k++) { c.servers[k].id = k + 1; c.servers[k].address = addr[k]; }
    if (i > NODES) {                                   /* a joining node: not in the bootstrap configuration */
        c.join = 1; c.n_servers = NODES + 1; c.servers[NODES].id = i; c.servers[NODES].address = addr[i - 1];
    }
    c.election_timeout_ms = 300; c.heartbeat_timeout_ms = 50;
    c.snapshot_threshold = 1u << 30;
    c.log.segment_size = 1u << 20; c.log.ring_capacity = 1u << 20;
    c.apply = on_apply; c.leader_changed = on_leader; c.user = (void *)(uintptr_t)i;
    return plr_node_start(&nodes[i], &c);
}
static unsigned find_leader(unsigned wait_ms) {
    for (unsigned t = 0; t <= wait_ms; t += 20) {
        for (unsigned i = 1; i <= NODES; i++) {
            if (!nodes[i]) continue;
            plr_status st; plr_get_status(nodes[i], &st);
            if (st.role == RAFT_LEADER) return i;
        }
        sleep_ms(20);
    }
    return 0;
}
static uint64_t applied_n(unsigned i) { pthread_mutex_lock(&logs[i].mu); uint64_t n = logs[i].n; pthread_mutex_unlock(&logs[i].mu); return n; }

static void test_cluster_commits_acks_and_applies_in_order(void) {
    const char *base = t_dir("raft_node");
    if (t_has_odirect(base) != 1) SKIP("needs O_DIRECT");
    int port = 0;
    srand((unsigned)getpid());
    /* below Linux's default ephemeral range (32768-60999): the nodes' own
     * outgoing connections take ports from there, and could take one of
     * these between this check and a node's listen */
    for (int t = 0; t < 200 && !port; t++) { int b = 20000 + rand() % 12000; if (free_ports(b)) port = b; }
    REQUIRE(port != 0);
    for (unsigned i = 1; i <= ALL; i++) {
        pthread_mutex_init(&logs[i].mu, NULL); logs[i].order_ok = 1;
        snprintf(addr[i - 1], sizeof addr[i - 1], "127.0.0.1:%d", port + (int)i - 1);
        snprintf(ndir[i - 1], sizeof ndir[i - 1], "%.500s/n%u", base, i);
    }
    for (unsigned i = 1; i <= NODES; i++) CHECK_EQ(start(i), 0);
    unsigned L = find_leader(20000);
    REQUIRE(L != 0);
    unsigned F = L % NODES + 1;                         /* a follower */
    uint64_t v = 42;
    int64_t r = plr_propose(nodes[F], &v, 8);            /* accepted into the ring, refused by raft */
    CHECK(r > 0);
    plr_flush(nodes[F]);
    plr_ack a; int got = 0;
    for (int t = 0; t < 500 && !got; t++) { got = plr_next_ack(nodes[F], &a); if (!got) sleep_ms(10); }
    CHECK(got == 1 && a.ticket == (uint64_t)r && a.status == PLR_ENOTLEADER);
    static char big[1u << 20];
    CHECK_EQ(plr_propose(nodes[L], big, sizeof big), PLR_ETOOBIG);
    /* 300 records from the leader's engine thread */
    const int N = 300;
    int64_t first = 0; uint64_t last_index = 0, acked = 0, bad = 0, prev_index = 0;
    for (int k = 0; k < N; k++) {
        uint64_t x = 1000 + (uint64_t)k;
        int64_t tk;
        while ((tk = plr_propose(nodes[L], &x, 8)) == PLR_EFULL) sleep_ms(1);
        CHECK(tk > 0);
        if (!first) first = tk;
    }
    plr_flush(nodes[L]);
    for (int t = 0; t < 3000 && acked < (uint64_t)N; t++) {
        while (plr_next_ack(nodes[L], &a) == 1) {
            acked++;
            if (a.status != 0) bad++;
            if (a.index <= prev_index) bad++;            /* acks in commit order */
            prev_index = a.index; last_index = a.index;
        }
        if (acked < (uint64_t)N) sleep_ms(5);
    }
    CHECK_EQ(acked, N);
    CHECK_EQ(bad, 0);
    /* every node applies the same records, in index order */
    for (int t = 0; t < 1000; t++) { int all = 1; for (unsigned i = 1; i <= NODES; i++) all &= applied_n(i) >= (uint64_t)N; if (all) break; sleep_ms(10); }
    for (unsigned i = 1; i <= NODES; i++) {
        CHECK_EQ(applied_n(i), N);
        CHECK(logs[i].order_ok);
        CHECK(memcmp(logs[i].idx, logs[1].idx, N * 8) == 0);
        CHECK(memcmp(logs[i].val, logs[1].val, N * 8) == 0);
        CHECK_EQ(logs[i].val[0], 1000);
        CHECK_EQ(logs[i].val[N - 1], 1000 + N - 1);
        CHECK_EQ(logs[i].idx[N - 1], last_index);
    }
    plr_status st; plr_get_status(nodes[L], &st);
    CHECK_EQ(st.role, RAFT_LEADER);
    CHECK_EQ(st.leader_id, L);
    CHECK(st.commit_index >= last_index);
    CHECK_EQ(st.n_followers, NODES - 1);
    for (int t = 0; t < 200; t++) {                      /* followers' match index catches up */
        plr_get_status(nodes[L], &st);
        if (st.followers[0].match_index >= last_index && st.followers[1].match_index >= last_index) break;
        sleep_ms(10);
    }
    for (unsigned k = 0; k < st.n_followers; k++) { CHECK(st.followers[k].match_index >= last_index); CHECK(st.followers[k].id != L); }
    CHECK(st.durable >= last_index);
    for (unsigned i = 1; i <= NODES; i++) CHECK(__atomic_load_n(&leader_calls[i], __ATOMIC_RELAXED) >= 1);
    /* a follower stops and restarts: its log gives it everything back */
    CHECK_EQ(plr_node_stop(nodes[F]), 0);
    nodes[F] = NULL;
    pthread_mutex_lock(&logs[F].mu); logs[F].n = 0; logs[F].last_index = 0; pthread_mutex_unlock(&logs[F].mu);
    CHECK_EQ(start(F), 0);
    for (int t = 0; t < 1000 && applied_n(F) < (uint64_t)N; t++) sleep_ms(10);
    CHECK_EQ(applied_n(F), N);   /* replayed from its own log (no snapshot below 2^30 entries) */
    CHECK(memcmp(logs[F].val, logs[L].val, N * 8) == 0);
    /* membership: node 4 joins, catches up (every record), becomes a voter, then leaves */
    L = find_leader(20000);
    REQUIRE(L != 0);
    CHECK_EQ(start(ALL), 0);
    CHECK_EQ(plr_add_server(nodes[L], ALL, addr[ALL - 1]), 0);
    for (int t = 0; t < 1000 && applied_n(ALL) < (uint64_t)N; t++) sleep_ms(10);
    CHECK_EQ(applied_n(ALL), N);
    CHECK(memcmp(logs[ALL].val, logs[L].val, N * 8) == 0);
    plr_get_status(nodes[L], &st);
    CHECK_EQ(st.n_followers, NODES);
    CHECK_EQ(plr_add_server(nodes[L], 2, addr[ALL - 1]), PLR_ERAFT);    /* id already a member */
    CHECK_EQ(plr_remove_server(nodes[L], ALL), 0);
    plr_get_status(nodes[L], &st);
    CHECK_EQ(st.n_followers, NODES - 1);
    for (unsigned i = 1; i <= ALL; i++) if (nodes[i]) CHECK_EQ(plr_node_stop(nodes[i]), 0);
    char cmd[700]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", base); if (system(cmd)) {}
}

int main(void) {
    RUN(test_cluster_commits_acks_and_applies_in_order);
    return t_done();
}
