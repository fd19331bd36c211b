/* pp_model.h - a reference order book for pinnacle_persist.h tests: the
 * journal of every event appended (seq s is ev[s-1]) and the book it gives,
 * rebuilt for any prefix. Used by the simulated-disk and the SIGKILL tests:
 * a recovered book must equal the model replayed to the recovered last seq.
 * The event array may live in memory shared with a child process. */
#ifndef PP_MODEL_H
#define PP_MODEL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ppm_ev { uint64_t id; int64_t price, qty; uint64_t ts; uint8_t type, side, pad[6]; } ppm_ev;
typedef struct ppm_ord { int64_t price, qty; uint64_t ts, seq, pos; uint8_t side, live; } ppm_ord;
typedef struct ppm {
    ppm_ev *ev; uint64_t n, cap; int ev_owned;   /* the journal: ev[s - 1] is seq s */
    ppm_ord *o; uint64_t ocap;                   /* the book by id */
    uint64_t *live, nlive, lcap;                 /* active ids, any order */
    uint64_t next_id;
} ppm;

static uint64_t ppm_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ev: the caller's array of cap events (shared memory), or NULL to own one */
static void ppm_init(ppm *m, ppm_ev *ev, uint64_t cap) {
    memset(m, 0, sizeof *m);
    m->ev = ev ? ev : (ppm_ev *)calloc(cap, sizeof *ev); m->ev_owned = ev == NULL; m->cap = cap;
    m->next_id = 1;
    if (!m->ev) abort();
}
static void ppm_free(ppm *m) { if (m->ev_owned) free(m->ev); free(m->o); free(m->live); memset(m, 0, sizeof *m); }

static ppm_ord *ppm__ord(ppm *m, uint64_t id) {
    if (id >= m->ocap) {
        uint64_t nc = m->ocap ? m->ocap : 1024;
        while (nc <= id) nc *= 2;
        m->o = (ppm_ord *)realloc(m->o, nc * sizeof *m->o);
        if (!m->o) abort();
        memset(m->o + m->ocap, 0, (nc - m->ocap) * sizeof *m->o);
        m->ocap = nc;
    }
    return &m->o[id];
}
static void ppm__live_del(ppm *m, uint64_t id) {
    uint64_t p = m->o[id].pos, last = m->live[--m->nlive];
    m->live[p] = last; m->o[last].pos = p;
    m->o[id].live = 0;
}

/* the event at seq applied to the book (the events are valid by construction) */
static void ppm__apply(ppm *m, const ppm_ev *e, uint64_t seq) {
    ppm_ord *o = ppm__ord(m, e->id);
    if (e->id >= m->next_id) m->next_id = e->id + 1;
    switch (e->type) {
    case PP_EV_ADD:
        o->price = e->price; o->qty = e->qty; o->ts = e->ts; o->seq = seq; o->side = e->side; o->live = 1;
        if (m->nlive == m->lcap) {
            m->lcap = m->lcap ? 2 * m->lcap : 256;
            m->live = (uint64_t *)realloc(m->live, m->lcap * sizeof *m->live);
            if (!m->live) abort();
        }
        o->pos = m->nlive; m->live[m->nlive++] = e->id;
        break;
    case PP_EV_CANCEL: ppm__live_del(m, e->id); break;
    case PP_EV_EXECUTE: o->qty -= e->qty; if (o->qty == 0) ppm__live_del(m, e->id); break;
    case PP_EV_MODIFY:
        if (e->price != o->price || e->qty > o->qty) o->seq = seq;
        o->price = e->price; o->qty = e->qty;
        break;
    }
}

/* The book after the first k events (k <= the events known). */
static void ppm_rebuild(ppm *m, uint64_t k) {
    for (uint64_t i = 0; i < m->nlive; i++) m->o[m->live[i]].live = 0;
    m->nlive = 0;
    m->n = k;
    for (uint64_t s = 1; s <= k; s++) ppm__apply(m, &m->ev[s - 1], s);
}

/* A random valid event for the current book. */
static void ppm_gen(ppm *m, uint64_t *rng, ppm_ev *e) {
    memset(e, 0, sizeof *e);
    uint64_t r = ppm_rand(rng) % 100;
    int add = m->nlive == 0 || r < (m->nlive > 400 ? 20u : 45u);
    if (add) {
        e->type = PP_EV_ADD; e->id = m->next_id;
        e->price = 1000 + (int64_t)(ppm_rand(rng) % 50); e->qty = 1 + (int64_t)(ppm_rand(rng) % 20);
        e->ts = 1000000 + e->id * 7; e->side = (ppm_rand(rng) & 1) ? PP_BUY : PP_SELL;
        return;
    }
    uint64_t id = m->live[ppm_rand(rng) % m->nlive];
    const ppm_ord *o = &m->o[id];
    e->id = id;
    r = ppm_rand(rng) % 3;
    if (r == 0) e->type = PP_EV_CANCEL;
    else if (r == 1) { e->type = PP_EV_EXECUTE; e->qty = 1 + (int64_t)(ppm_rand(rng) % (uint64_t)o->qty); e->price = o->price; }
    else { e->type = PP_EV_MODIFY; e->price = o->price + (int64_t)(ppm_rand(rng) % 3) - 1; e->qty = 1 + (int64_t)(ppm_rand(rng) % 30); }
}

/* the event journaled on the book: pinnacle's return code */
static int ppm_call(pp_book *b, const ppm_ev *e) {
    pp_order o;
    switch (e->type) {
    case PP_EV_ADD:
        memset(&o, 0, sizeof o);
        o.id = e->id; o.price = e->price; o.qty = e->qty; o.ts_ns = e->ts; o.side = e->side;
        return pp_add(b, &o);
    case PP_EV_CANCEL: return pp_cancel(b, e->id);
    case PP_EV_EXECUTE: return pp_execute(b, e->id, e->qty, e->price);
    default: return pp_modify(b, e->id, e->price, e->qty);
    }
}

/* the event was journaled as seq n + 1 */
static void ppm_push(ppm *m, const ppm_ev *e) {
    if (m->n >= m->cap) abort();
    if (&m->ev[m->n] != e) m->ev[m->n] = *e;
    m->n++;
    ppm__apply(m, e, m->n);
}

typedef struct ppm__cmp { const ppm *m; uint64_t seen, bad, last_seq; char why[200]; pp_order prev; } ppm__cmp;
/* pp_orders' order: price-time priority, bids (best price first), then asks */
static int ppm__before(const pp_order *a, const pp_order *b) {
    if (a->side != b->side) return a->side == PP_BUY;
    if (a->price != b->price) return a->side == PP_BUY ? a->price > b->price : a->price < b->price;
    return a->seq < b->seq;
}
static int ppm__visit(const pp_order *o, void *c_) {
    ppm__cmp *c = (ppm__cmp *)c_;
    c->seen++;
    const ppm_ord *x = o->id < c->m->ocap ? &c->m->o[o->id] : NULL;
    if (c->seen > 1 && !ppm__before(&c->prev, o) && !c->bad++)
        snprintf(c->why, sizeof c->why, "order %llu out of priority order", (unsigned long long)o->id);
    c->prev = *o;
    c->last_seq = o->seq;
    if (!x || !x->live) { if (!c->bad++) snprintf(c->why, sizeof c->why, "order %llu is not in the reference book", (unsigned long long)o->id); return 0; }
    if (x->price != o->price || x->qty != o->qty || x->side != o->side || x->ts != o->ts_ns || x->seq != o->seq)
        if (!c->bad++) snprintf(c->why, sizeof c->why, "order %llu: price %lld qty %lld seq %llu, reference %lld %lld %llu",
                                (unsigned long long)o->id, (long long)o->price, (long long)o->qty, (unsigned long long)o->seq,
                                (long long)x->price, (long long)x->qty, (unsigned long long)x->seq);
    return 0;
}
/* 1 if the book's active orders and last seq equal the model's; else 0 and why */
static int ppm_same(const ppm *m, pp_book *b, char *why, size_t cap) {
    ppm__cmp c; memset(&c, 0, sizeof c); c.m = m;
    int rc = pp_orders(b, ppm__visit, &c);
    if (rc) { snprintf(why, cap, "pp_orders: %s", pp_strerror(rc)); return 0; }
    if (c.bad) { snprintf(why, cap, "%s", c.why); return 0; }
    if (c.seen != m->nlive || pp_last_seq(b) != m->n) {
        snprintf(why, cap, "book has %llu orders at seq %llu; reference %llu orders at seq %llu", (unsigned long long)c.seen,
                 (unsigned long long)pp_last_seq(b), (unsigned long long)m->nlive, (unsigned long long)m->n);
        return 0;
    }
    return 1;
}
#endif
