// cc -std=c11 -O2 -I. examples/engine.c -o engine -luring -lpthread
/*
 * A small matching engine that journals its order books with
 * pinnacle_persist.h, kills itself at a random point, restarts, and proves
 * that what it recovered is exactly a replay of the events it had
 * acknowledged (and of whatever else made it into the journal).
 *
 *   usage: engine <fresh-data-dir>
 *
 * Each round the parent forks a child. The child opens the store (recovering
 * every instrument), rebuilds its limit order books from pp_orders(), and
 * trades: random limit orders matched with price-time priority, cancels and
 * modifies, round-robin over several instruments. A match (one execute per
 * resting order it fills, then the remainder resting as an add) is one atomic
 * batch (pp_batch_begin .. pp_batch_commit): recovered all or none. Every
 * event goes through pp_apply, whose named fields cannot swap a price and a
 * quantity, with a payload: an add's client order id, an execution's trade
 * id and aggressor order id. After every few hundred events a pp_sync, whose result the child
 * reports to the parent through a pipe ("seq N of BTC-USD is acknowledged").
 * At a random event the child dies: abort() or SIGKILL, in the middle of
 * whatever it was doing, often inside a match. The parent reopens the store
 * and, per instrument, checks
 *   - the recovered seq is at least the acknowledged one (nothing acked lost);
 *   - no match is half applied: the recovered seq ends a whole engine step;
 *   - the recovered book equals a reference book that replays, from the state
 *     before the round, exactly the recovered events of the same
 *     deterministic order flow: same orders, prices, quantities, sides and
 *     time priority;
 *   - the journal reader (pp_journal_open/next, the audit trail) returns
 *     exactly those events, in order, with their seqs and payloads (from the
 *     first one that compaction kept).
 * The engine's state before each round is the verified state after the last.
 */
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NINST 3
#define MAXREST 4096
#define SYNC_EVERY 500
static const char *INST[NINST] = {"BTC-USD", "ETH-USD", "ES-Z6"};

typedef struct rest { uint64_t id, prio; int64_t price, qty; int side; } rest;
typedef struct lob { rest r[MAXREST]; int n; uint64_t seq; int64_t mid; } lob;
typedef struct ev { int type; uint64_t id; int64_t price, qty; int side; uint64_t aggressor; } ev;

static uint64_t rnd(uint64_t *s) {            /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int find(const lob *b, uint64_t id) {
    for (int i = 0; i < b->n; i++) if (b->r[i].id == id) return i;
    return -1;
}

/* The reference book: the only place its state changes. */
static void lob_apply(lob *b, const ev *e) {
    b->seq++;
    int i = e->type == PP_EV_ADD ? -1 : find(b, e->id);
    switch (e->type) {
    case PP_EV_ADD: { rest x = {e->id, b->seq, e->price, e->qty, e->side}; b->r[b->n++] = x; break; }
    case PP_EV_CANCEL: b->r[i] = b->r[--b->n]; break;
    case PP_EV_EXECUTE: b->r[i].qty -= e->qty; if (!b->r[i].qty) b->r[i] = b->r[--b->n]; break;
    case PP_EV_MODIFY:
        if (e->price != b->r[i].price || e->qty > b->r[i].qty) b->r[i].prio = b->seq;
        b->r[i].price = e->price; b->r[i].qty = e->qty;
        break;
    }
}

/* Best resting order on `side` that an incoming order at `px` crosses:
 * best price first, then earliest priority. */
static int best(const lob *b, int side, int64_t px, const int64_t *left) {
    int k = -1;
    for (int i = 0; i < b->n; i++) {
        const rest *r = &b->r[i];
        if (r->side != side || left[i] == 0) continue;
        if (side == PP_SELL ? r->price > px : r->price < px) continue;
        if (k < 0) { k = i; continue; }
        const rest *q = &b->r[k];
        if ((side == PP_SELL ? r->price < q->price : r->price > q->price) || (r->price == q->price && r->prio < q->prio)) k = i;
    }
    return k;
}

/* One engine step: decide its events from the current book (nothing changes
 * yet). Returns how many. */
static int step(lob *b, uint64_t *rng, ev *out) {
    uint64_t r = rnd(rng) % 100;
    int n = 0;
    if (b->n > 0 && (r < 25 || b->n >= MAXREST - 64)) {                 /* cancel */
        rest *x = &b->r[rnd(rng) % (uint64_t)b->n];
        ev e = {PP_EV_CANCEL, x->id, 0, 0, 0, 0}; out[n++] = e;
        return n;
    }
    if (b->n > 0 && r < 35) {                                           /* modify */
        rest *x = &b->r[rnd(rng) % (uint64_t)b->n];
        ev e = {PP_EV_MODIFY, x->id, x->price, x->qty, 0, 0};
        if (rnd(rng) & 1) e.qty = x->qty > 1 ? x->qty - 1 : 1;            /* smaller: keeps priority */
        else e.price = x->price + (x->side == PP_BUY ? -1 : 1);          /* away from the touch: loses it */
        out[n++] = e;
        return n;
    }
    /* a limit order around the mid; crossing ones match */
    int side = (rnd(rng) & 1) ? PP_BUY : PP_SELL;
    int64_t off = (int64_t)(rnd(rng) % 20);               /* most orders rest, some cross */
    int64_t px = side == PP_BUY ? b->mid + 2 - off : b->mid - 2 + off;
    int64_t qty = 1 + (int64_t)(rnd(rng) % 50);
    static int64_t left[MAXREST];
    for (int i = 0; i < b->n; i++) left[i] = b->r[i].qty;
    int opp = side == PP_BUY ? PP_SELL : PP_BUY;
    while (qty > 0) {
        int k = best(b, opp, px, left);
        if (k < 0) break;
        int64_t f = qty < left[k] ? qty : left[k];
        ev e = {PP_EV_EXECUTE, b->r[k].id, b->r[k].price, f, 0, 0};
        out[n++] = e;
        left[k] -= f; qty -= f;
        b->mid = b->r[k].price;
    }
    uint64_t aggressor = b->seq + (uint64_t)n + 1;       /* id = its add's seq: unique */
    for (int i = 0; i < n; i++) out[i].aggressor = aggressor;
    if (qty > 0) {
        ev e = {PP_EV_ADD, aggressor, px, qty, side, 0};
        out[n++] = e;
    }
    return n;
}

/* What the engine keeps with an event beside the book's fields (journaled as
 * its payload, returned verbatim by the journal reader): an add's client
 * order id, an execution's trade id (its seq) and aggressor order id. */
static uint32_t payload_of(const ev *e, uint64_t seq, char *out, size_t cap) {
    int n = 0;
    if (e->type == PP_EV_ADD) n = snprintf(out, cap, "client-order:C%llu", (unsigned long long)e->id);
    else if (e->type == PP_EV_EXECUTE)
        n = snprintf(out, cap, "trade:T%llu aggressor:%llu", (unsigned long long)seq, (unsigned long long)e->aggressor);
    return n > 0 ? (uint32_t)n : 0;
}

/* ---- the live engine (child) ---- */
static int journal(pp_book *pb, const ev *e, uint64_t seq) {
    char pl[96];
    pp_event x;
    memset(&x, 0, sizeof x);
    x.type = e->type; x.order_id = e->id; x.side = (uint8_t)e->side;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    x.price = e->price; x.qty = e->qty; x.ts_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    x.payload_len = payload_of(e, seq, pl, sizeof pl);
    x.payload = pl;
    return pp_apply(pb, &x);
}

/* One engine step on the journal: a match (more than one event) is one
 * batch. `seq` is the book's seq before the step. */
static int journal_step(pp_book *pb, const ev *evs, int n, uint64_t seq, uint64_t *total, uint64_t budget, int how, int inside) {
    int rc = n > 1 ? pp_batch_begin(pb) : 0;
    for (int i = 0; i < n && !rc; i++) {
        if (*total >= budget && (!inside || i > 0)) {   /* die, at any event or inside a match */
            if (how) raise(SIGKILL);
            abort();
        }
        rc = journal(pb, &evs[i], seq + (uint64_t)i + 1);
        if (!rc) ++*total;
    }
    if (n > 1) {
        if (!rc) rc = pp_batch_commit(pb);
        else (void)pp_batch_abort(pb);
    }
    return rc;
}

static lob books[NINST], ref[NINST], prev[NINST];

static int load_visit(const pp_order *o, void *ctx) {
    lob *b = (lob *)ctx;
    rest x = {o->id, o->seq, o->price, o->qty, o->side};
    if (b->n >= MAXREST) return -1;
    b->r[b->n++] = x;
    return 0;
}

static pp_config make_cfg(const char *dir) {
    static char archive[4096];
    snprintf(archive, sizeof archive, "%s.archive", dir);
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.archive_dir = archive;               /* compaction keeps the history there: the audit trail reads it all */
    c.flags = PP_STORE_JOURNAL;            /* one journal for the three books (format 2) */
    c.journal_sync_interval_ms = 5;
    c.snapshot_interval_ms = 150;          /* snapshots during the run (the default is 5 minutes) */
    c.keep_snapshots = 2;
    c.compaction_threshold = 1 << 20;      /* small, so the demo compacts */
    c.journal_chunk_bytes = 256 << 10;
    c.journal_segment_bytes = 4 << 20;
    return c;
}

/* The parent's check does not compact while it reads (compaction would
 * only move segments into the archive, which the reader reads too). */
static int open_books(const char *dir, int checking, pp_store **s, pp_book **pb, lob *out) {
    pp_config c = make_cfg(dir);
    if (checking) c.flags |= PP_NO_AUTO_COMPACT;
    int rc = pp_open(s, &c);
    if (rc) { fprintf(stderr, "pp_open: %s\n", pp_strerror(rc)); return rc; }
    for (int k = 0; k < NINST; k++) {
        rc = pp_book_open(*s, INST[k], &pb[k]);
        if (rc) { fprintf(stderr, "pp_book_open %s: %s\n", INST[k], pp_strerror(rc)); return rc; }
        memset(&out[k], 0, sizeof out[k]);
        out[k].seq = pp_last_seq(pb[k]);
        out[k].mid = 100000;
        rc = pp_orders(pb[k], load_visit, &out[k]);
        if (rc) return rc;
    }
    return 0;
}

typedef struct ack { int inst; uint64_t seq; } ack;

/* Random picks index the array: both sides start a round in pp_orders' order
 * (price-time priority: bids best price first, then asks best price first,
 * then by priority seq). */
static int by_prio(const void *a, const void *b) {
    const rest *x = (const rest *)a, *y = (const rest *)b;
    int xs = x->side == PP_SELL, ys = y->side == PP_SELL;
    if (xs != ys) return xs - ys;
    if (x->price != y->price) return (xs ? x->price < y->price : x->price > y->price) ? -1 : 1;
    return x->prio < y->prio ? -1 : x->prio > y->prio;
}

/* The child: trade until `budget` events, then die by `how` (1: SIGKILL,
 * 0: abort), at once or (`inside`) in the middle of the next match. */
static void child(const char *dir, uint64_t seed, uint64_t budget, int how, int inside, int fd, const int64_t *mids) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    pp_store *s; pp_book *pb[NINST];
    if (open_books(dir, 0, &s, pb, books)) _exit(3);
    uint64_t rng[NINST], total = 0, since_sync[NINST] = {0};
    for (int k = 0; k < NINST; k++) { rng[k] = seed * 1000 + (uint64_t)k; books[k].mid = mids[k]; }
    ev evs[MAXREST + 1];
    for (;;) {
        for (int k = 0; k < NINST; k++) {
            int n = step(&books[k], &rng[k], evs);
            uint64_t before = total;
            int rc = journal_step(pb[k], evs, n, books[k].seq, &total, budget, how, inside);
            if (rc) { fprintf(stderr, "child: %s: %s\n", INST[k], pp_strerror(rc)); _exit(4); }
            for (int i = 0; i < n; i++) lob_apply(&books[k], &evs[i]);
            since_sync[k] += (uint64_t)n;
            if (since_sync[k] >= SYNC_EVERY) {
                since_sync[k] = 0;
                if (pp_sync(pb[k]) == 0) {                 /* acknowledged: tell the parent */
                    ack a = {k, pp_durable(pb[k])};
                    if (write(fd, &a, sizeof a) != sizeof a) _exit(5);
                }
            }
            if (k == 0 && before < budget / 2 && total >= budget / 2) pp_snapshot(pb[k]);   /* an on-demand one too */
        }
    }
}

typedef struct cmp { const lob *ref; int bad; int seen; } cmp;
static int cmp_visit(const pp_order *o, void *ctx) {
    cmp *c = (cmp *)ctx;
    c->seen++;
    int i = find(c->ref, o->id);
    if (i < 0) { c->bad++; return 0; }
    const rest *r = &c->ref->r[i];
    if (r->price != o->price || r->qty != o->qty || r->side != o->side || r->prio != o->seq) c->bad++;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {  /* "engine --help" must not create a data directory named --help */
        int help = argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        fprintf(help ? stdout : stderr, "usage: %s <fresh-data-dir>\n", argv[0]);
        return help ? 0 : 2;
    }
    const char *dir = argv[1];
    uint64_t seed0 = plg_now_ns();
    printf("engine: data dir %s, %d instruments, order flow seed %llu\n", dir, NINST, (unsigned long long)seed0);
    for (int k = 0; k < NINST; k++) { memset(&ref[k], 0, sizeof ref[k]); ref[k].mid = 100000; }
    const uint64_t hist_cap = 400000;                 /* a round's events of one instrument, and more */
    ev *hist = (ev *)malloc(hist_cap * sizeof *hist);
    if (!hist) { perror("malloc"); return 1; }
    uint64_t meta = seed0;
    int rounds = 4, failures = 0;
    uint64_t checked_events = 0, journal_events = 0, journal_payloads = 0;
    for (int round = 1; round <= rounds; round++) {
        uint64_t seed = seed0 + (uint64_t)round;
        uint64_t budget = 20000 + rnd(&meta) % 180000;
        int how = round % 2;                              /* SIGKILL, then abort(), ... */
        int inside = round % 4 == 1 || round % 4 == 2;    /* rounds 1 and 2 die inside a match */
        int64_t mids[NINST];
        for (int k = 0; k < NINST; k++) {
            mids[k] = ref[k].mid;
            qsort(ref[k].r, (size_t)ref[k].n, sizeof(rest), by_prio);
            prev[k] = ref[k];                              /* for pp_book_at after the round */
        }
        int fds[2];
        if (pipe(fds) != 0) { perror("pipe"); return 1; }
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) { close(fds[0]); child(dir, seed, budget, how, inside, fds[1], mids); _exit(0); }
        close(fds[1]);
        uint64_t acked[NINST] = {0};
        ack a;
        while (read(fds[0], &a, sizeof a) == sizeof a) if (a.seq > acked[a.inst]) acked[a.inst] = a.seq;
        close(fds[0]);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFSIGNALED(st)) { fprintf(stderr, "round %d: the child did not die as planned (status %d)\n", round, st); return 1; }
        printf("round %d: child killed by %s after %llu events%s\n", round, WTERMSIG(st) == SIGKILL ? "SIGKILL" : "SIGABRT",
               (unsigned long long)budget, inside ? ", inside a match" : "");
        /* restart: recover, then check every instrument against the reference */
        pp_store *s; pp_book *pb[NINST];
        if (open_books(dir, 1, &s, pb, books)) return 1;
        for (int k = 0; k < NINST; k++) {
            uint64_t rec = pp_last_seq(pb[k]), before = ref[k].seq;
            lob *R = &ref[k];
            uint64_t rng = seed * 1000 + (uint64_t)k;
            R->mid = mids[k];
            ev evs[MAXREST + 1];
            uint64_t nhist = 0;
            int half = 0;
            while (R->seq < rec) {                        /* replay exactly the recovered number of events */
                int n = step(R, &rng, evs);
                if (R->seq + (uint64_t)n > rec) half = 1; /* the recovery ends inside a match */
                for (int i = 0; i < n && R->seq < rec; i++) {
                    lob_apply(R, &evs[i]);
                    if (nhist < hist_cap) hist[nhist++] = evs[i];
                }
            }
            cmp c = {R, 0, 0};
            pp_orders(pb[k], cmp_visit, &c);
            /* the audit trail: the journal holds exactly these events */
            uint64_t jfirst = 0, jn = 0, jbad = 0;
            pp_journal *j;
            int jrc = pp_journal_open(s, INST[k], before + 1, &j);
            if (!jrc) {
                pp_event x;
                while ((jrc = pp_journal_next(j, &x)) == 1) {
                    if (!jfirst) jfirst = x.seq;
                    if (x.seq != jfirst + jn || x.seq <= before || x.seq > rec || x.seq - before > nhist) { jbad++; jn++; continue; }
                    const ev *e = &hist[x.seq - before - 1];
                    char pl[96];
                    uint32_t pn = payload_of(e, x.seq, pl, sizeof pl);
                    if (x.type != e->type || x.order_id != e->id || x.side != e->side || x.price != e->price || x.qty != e->qty ||
                        x.payload_len != pn || (pn && memcmp(x.payload, pl, pn) != 0))
                        jbad++;
                    if (pn) journal_payloads++;
                    jn++;
                }
                pp_journal_close(j);
            }
            int jok = jrc == 0 && jbad == 0 && nhist == rec - before &&
                      (rec == before || (jfirst == before + 1 && jfirst + jn - 1 == rec));   /* all of it, archive too */
            /* the book as of the seq before the round, rebuilt from snapshots and journal (pp_book_at) */
            cmp cp = {&prev[k], 0, 0};
            int arc = pp_book_at(s, INST[k], before, cmp_visit, &cp);
            int atok = arc == 0 && cp.bad == 0 && cp.seen == prev[k].n;
            int ok = rec >= acked[k] && c.bad == 0 && c.seen == R->n && !half && jok && atok;
            pp_stats ps;
            pp_get_stats(pb[k], &ps);
            printf("  %-8s acked seq %7llu, recovered seq %7llu (%s%s), replayed %6llu events: %4d resting orders %s;"
                   " journal reader %llu events %s; book at seq %llu %s [snapshot %llu, journal from seq %llu]\n",
                   INST[k], (unsigned long long)acked[k], (unsigned long long)rec, rec >= acked[k] ? ">= acked" : "LOST ACKED",
                   half ? ", HALF A MATCH" : ", whole matches",
                   (unsigned long long)(rec - before), c.seen, c.bad == 0 && c.seen == R->n ? "equal" : "DIFFER",
                   (unsigned long long)jn, jok ? "equal" : jrc < 0 ? pp_strerror(jrc) : "DIFFER",
                   (unsigned long long)before, atok ? "equal" : arc < 0 ? pp_strerror(arc) : "DIFFER",
                   (unsigned long long)ps.last_snapshot_seq, (unsigned long long)ps.journal_first_seq);
            if (!ok) failures++;
            checked_events += rec - before;
            journal_events += jn;
        }
        int rc = pp_close(s);
        if (rc) { fprintf(stderr, "pp_close: %s\n", pp_strerror(rc)); failures++; }
    }
    for (int k = 0; k < NINST; k++) {
        pp_check_result r;
        int rc = pp_check(dir, INST[k], &r);
        printf("pp_check %-8s: %s, %llu snapshots (newest seq %llu), %llu journal segments, seqs %llu..%llu\n", INST[k],
               rc ? pp_strerror(rc) : "ok", (unsigned long long)r.snapshots, (unsigned long long)r.newest_snapshot_seq,
               (unsigned long long)r.segments, (unsigned long long)r.journal_first_seq, (unsigned long long)r.journal_last_seq);
        if (rc) failures++;
    }
    free(hist);
    if (!journal_events || !journal_payloads) { printf("engine: the journal reader returned no event or payload in any round\n"); failures++; }
    printf("engine: %d rounds, %llu recovered events checked against the reference book (%llu of them also read back"
           " from the journal, %llu with their payloads): %s\n", rounds, (unsigned long long)checked_events,
           (unsigned long long)journal_events, (unsigned long long)journal_payloads, failures ? "FAILED" : "all equal, no match half applied, nothing acknowledged was lost");
    return failures ? 1 : 0;
}
