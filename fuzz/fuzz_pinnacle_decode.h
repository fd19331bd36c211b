/* An independent decoder of pinnacle_persist's mmap journal, written from
 * docs/pinnacle-format.md ("Journal segment", "Recovery") and none of
 * pinnacle_persist.h's code: its own CRC32C, header, entry and segment-chain
 * rules, and a simple book (a hash table by order id) the order events are
 * applied to. The journal fuzz target (fuzz/fuzz_pinnacle_journal.c) decodes
 * the files it wrote, and when pp_open recovers them (no snapshot), the book
 * pp_orders gives must be this one, order by order, at the same last seq.
 *
 * Scope: journals without a snapshot (recovery from seq 0). Market-data
 * entries (types 5..8) are valid entries that do not touch the book. */
#ifndef FUZZ_PINNACLE_DECODE_H
#define FUZZ_PINNACLE_DECODE_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint32_t pd_crc_tab[256];
static uint32_t pd_crc(uint32_t crc, const uint8_t *p, size_t n) {   /* CRC32C (Castagnoli), reflected */
    if (!pd_crc_tab[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
            pd_crc_tab[i] = c;
        }
    crc = ~crc;
    while (n--) crc = pd_crc_tab[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}
static uint64_t pd_le(const uint8_t *p, int n) { uint64_t v = 0; for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i]; return v; }

typedef struct pd_ord { uint64_t id, ts, seq; int64_t price, qty; uint8_t side, state; } pd_ord;   /* state: 0 free, 1 live, 2 deleted */
typedef struct pd_book { pd_ord *t; size_t mask, n; uint64_t last; int corrupt; } pd_book;

static pd_ord *pd_find(pd_book *b, uint64_t id, int for_insert) {
    size_t i = (size_t)((id * 0x9E3779B97F4A7C15ull) >> 20) & b->mask;
    pd_ord *del = NULL;
    for (;; i = (i + 1) & b->mask) {
        pd_ord *o = &b->t[i];
        if (o->state == 0) return for_insert ? (del ? del : o) : NULL;
        if (o->state == 2) { if (!del) del = o; continue; }
        if (o->id == id) return o;
    }
}

/* One entry at e of a segment with salt: 1 and the fields if valid. */
typedef struct pd_ev { int type, side; uint64_t seq, id, ts; int64_t price, qty; } pd_ev;
static int pd_entry(const uint8_t *e, uint32_t seed, pd_ev *v) {
    if (e[4] < 1 || e[4] > 8 || e[6] != 48 || e[7] != 0) return 0;
    if ((uint32_t)pd_le(e, 4) != pd_crc(seed, e + 4, 44)) return 0;
    v->type = e[4]; v->side = e[5]; v->seq = pd_le(e + 8, 8); v->id = pd_le(e + 16, 8);
    v->price = (int64_t)pd_le(e + 24, 8); v->qty = (int64_t)pd_le(e + 32, 8); v->ts = pd_le(e + 40, 8);
    return 1;
}

/* An order event applied to the book; 0 when it does not fit (corruption). */
static int pd_apply(pd_book *b, const pd_ev *v) {
    if (v->type > 4) return 1;                                /* market data */
    if (v->id == 0) return 0;
    pd_ord *o = pd_find(b, v->id, v->type == 1);
    switch (v->type) {
    case 1:
        if (v->qty <= 0 || (o && o->state == 1)) return 0;
        o->id = v->id; o->price = v->price; o->qty = v->qty; o->ts = v->ts; o->seq = v->seq; o->side = (uint8_t)v->side; o->state = 1;
        b->n++;
        return 1;
    case 2:
        if (!o) return 0;
        o->state = 2; b->n--;
        return 1;
    case 3:
        if (!o || v->qty <= 0 || v->qty > o->qty) return 0;
        o->qty -= v->qty;
        if (o->qty == 0) { o->state = 2; b->n--; }
        return 1;
    default:
        if (!o || v->qty <= 0) return 0;
        if (v->price != o->price || v->qty > o->qty) o->seq = v->seq;   /* loses time priority */
        o->price = v->price; o->qty = v->qty;
        return 1;
    }
}

typedef struct pd_seg { uint64_t index, salt, first; const uint8_t *p; size_t len; int hdr_ok; } pd_seg;

/* Decode segment files segs[0..n) (ascending index, as named) into b.
 * 0: decoded; b->corrupt: the decoder says recovery must fail closed. */
static void pd_decode(pd_seg *s, size_t n, pd_book *b) {
    size_t entries = 16;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *h = s[i].p;
        s[i].hdr_ok = s[i].len >= 4096 && memcmp(h, "PPJRNL01", 8) == 0 && (uint32_t)pd_le(h + 60, 4) == pd_crc(0, h, 60) &&
                      pd_le(h + 8, 4) == 1 && pd_le(h + 12, 4) == 48 && pd_le(h + 24, 8) == s[i].index;
        if (s[i].hdr_ok) { s[i].salt = pd_le(h + 16, 8); s[i].first = pd_le(h + 32, 8); }
        if (s[i].len > 4096) entries += (s[i].len - 4096) / 48;
    }
    size_t cap = 64;
    while (cap < 2 * entries) cap *= 2;
    memset(b, 0, sizeof *b);
    b->t = (pd_ord *)calloc(cap, sizeof *b->t);
    b->mask = cap - 1;
    if (!b->t) { b->corrupt = 1; return; }
    /* unused trailing segments: a bad header, first seq 0, or after the first with first seq 0 */
    size_t z = n;
    for (size_t i = 0; i < n && z == n; i++) if (s[i].hdr_ok && s[i].first == 0) z = i;
    while (n && (!s[n - 1].hdr_ok || s[n - 1].first == 0 || n - 1 > z)) n--;
    for (size_t i = 0; i < n; i++)
        if (!s[i].hdr_ok || s[i].first == 0 || (i && s[i].first < s[i - 1].first)) { b->corrupt = 1; return; }
    if (!n) return;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) if (s[i].first <= 1) start = i;
    if (s[start].first > 1) { b->corrupt = 1; return; }
    for (size_t i = start; i < n; i++) {
        uint8_t sb[8];
        for (int k = 0; k < 8; k++) sb[k] = (uint8_t)(s[i].salt >> (8 * k));
        uint32_t seed = pd_crc(0, sb, 8);
        uint64_t expect = s[i].first;
        size_t off = 4096;
        pd_ev v;
        while (off + 48 <= s[i].len && pd_entry(s[i].p + off, seed, &v) && v.seq == expect) {
            if (!pd_apply(b, &v)) { b->corrupt = 1; return; }
            off += 48; expect++;
        }
        b->last = expect - 1;
        int torn = 0;
        for (size_t k = off; k < s[i].len && !torn; k++) torn = s[i].p[k] != 0;
        if (torn || (i + 1 < n && s[i + 1].first != expect)) break;
    }
}
#endif
