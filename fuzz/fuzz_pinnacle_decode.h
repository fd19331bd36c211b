/* An independent decoder of pinnacle_persist's mmap journal, written from
 * docs/pinnacle-format.md ("Journal segment", "Recovery") and none of
 * pinnacle_persist.h's code: its own CRC32C, header, entry and segment-chain
 * rules, and a simple book (a hash table by order id) the order events are
 * applied to. The journal fuzz target (fuzz/fuzz_pinnacle_journal.c) decodes
 * the files it wrote, and when pp_open recovers them (no snapshot), the book
 * pp_orders gives must be this one, order by order, at the same last seq.
 *
 * Scope: journals without a snapshot (recovery from seq 0). Market-data
 * entries (types 5..8) are valid entries that do not touch the book.
 *
 * pd2_decode (at the end) does the same for format 2, the store journal of
 * every instrument, from the "Format 2" section of the same document;
 * tests/test_pinnacle_store.c checks pp_open and pp_check against it on
 * mutated stores. */
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

/* A book's table, zeroed: one kept from an earlier input when there is one
 * of this size (pd_table_put gives it back). Each is 2 x the entries or
 * frames the segments can hold (384 KiB for three full segments of the
 * store target): a fresh calloc of that is an mmap, page faults and an
 * munmap with a TLB shootdown under ASan, most of an input's time. */
#define PD_KEEP 16
static pd_ord *pd_kept[PD_KEEP]; static size_t pd_kept_cap[PD_KEEP];
static __attribute__((unused)) pd_ord *pd_table(size_t cap) {
    for (int k = 0; k < PD_KEEP; k++)
        if (pd_kept[k] && pd_kept_cap[k] == cap) {
            pd_ord *t = pd_kept[k];
            pd_kept[k] = NULL;
            memset(t, 0, cap * sizeof *t);
            return t;
        }
    return (pd_ord *)calloc(cap, sizeof(pd_ord));
}
static __attribute__((unused)) void pd_table_put(pd_ord *t, size_t cap) {
    if (!t) return;
    for (int k = 0; k < PD_KEEP; k++)
        if (!pd_kept[k]) { pd_kept[k] = t; pd_kept_cap[k] = cap; return; }
    free(t);
}

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
    b->t = pd_table(cap);
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
/* ---- format 2: the store journal (docs/pinnacle-format.md, "Format 2") ----
 * Segments journal/<index>.ppj of one store, the catalog instruments.ppc
 * (optional), decoded into one book per instrument id. Scope: stores without
 * snapshots (every book from seq 1). st->corrupt: recovery must refuse. */
#define PD2_MAXB 16
#define PD2_FN static __attribute__((unused))   /* the journal target uses pd_decode only */
typedef struct pd2_store { pd_book b[PD2_MAXB]; char name[PD2_MAXB][65]; uint32_t iid[PD2_MAXB]; int nb, corrupt; size_t cap; } pd2_store;

PD2_FN pd_book *pd2_book(pd2_store *s, uint32_t iid) {
    for (int i = 0; i < s->nb; i++) if (s->iid[i] == iid) return &s->b[i];
    return NULL;
}
/* docs/pinnacle-format.md: ids 1..2^20 - 1; an instrument name is 1..64 bytes
 * of printable ASCII without '/' or '\\', not starting with '.', without ".." */
PD2_FN int pd2_name_ok(const uint8_t *name, size_t nl) {
    if (!nl || nl > 64 || name[0] == '.') return 0;
    for (size_t i = 0; i < nl; i++) {
        if (name[i] < 0x21 || name[i] > 0x7e || name[i] == '/' || name[i] == '\\') return 0;
        if (i && name[i] == '.' && name[i - 1] == '.') return 0;
    }
    return 1;
}
PD2_FN int pd2_declare(pd2_store *s, uint32_t iid, const uint8_t *name, size_t nl) {
    if (!pd2_name_ok(name, nl) || iid == 0 || iid >= (1u << 20)) return 0;
    for (int i = 0; i < s->nb; i++) {
        if (s->iid[i] == iid) return strlen(s->name[i]) == nl && memcmp(s->name[i], name, nl) == 0;
        if (strlen(s->name[i]) == nl && memcmp(s->name[i], name, nl) == 0) return 0;   /* one name, two ids */
    }
    if (s->nb == PD2_MAXB) return 0;
    pd_book *b = &s->b[s->nb];
    memset(b, 0, sizeof *b);
    b->t = pd_table(s->cap);
    if (!b->t) return 0;
    b->mask = s->cap - 1;
    memcpy(s->name[s->nb], name, nl); s->name[s->nb][nl] = 0;
    s->iid[s->nb++] = iid;
    return 1;
}
PD2_FN void pd2_free(pd2_store *s) {
    for (int i = 0; i < s->nb; i++) { pd_table_put(s->b[i].t, s->b[i].mask + 1); s->b[i].t = NULL; }
    s->nb = 0;
}

/* CRC32C over salt (8 bytes LE) then more: the seed of a segment. */
PD2_FN uint32_t pd2_seed(uint64_t salt) {
    uint8_t sb[8];
    for (int k = 0; k < 8; k++) sb[k] = (uint8_t)(salt >> (8 * k));
    return pd_crc(0, sb, 8);
}

/* The durable mark of segment header h (format 2, version 3): two 28-byte
 * slots at 512 and 1024 (u64 end, u64 flags, u64 generation, u32
 * crc32c(salt, end, flags, generation)); a slot is valid when its CRC holds
 * and its generation is >= 1 and odd in slot 1, even in slot 0. The newest
 * valid slot is the mark. 1 a mark, 0 none (zeros, or one damaged slot and
 * a zero one), -1 both slots damaged. */
PD2_FN int pd2_mark(const uint8_t *h, uint64_t *end, uint64_t *flags) {
    int st[2];
    uint64_t e[2] = {0, 0}, f[2] = {0, 0}, g[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        const uint8_t *m = h + 512 + 512 * k;
        uint8_t b[32];
        memcpy(b, h + 16, 8); memcpy(b + 8, m, 24);
        uint64_t gen = pd_le(m + 16, 8);
        if ((uint32_t)pd_le(m + 24, 4) == pd_crc(0, b, 32) && gen >= 1 && (int)(gen & 1) == k) {
            st[k] = 1; e[k] = pd_le(m, 8); f[k] = pd_le(m + 8, 8); g[k] = gen;
        } else {
            st[k] = 0;
            for (int i = 0; i < 28; i++) if (m[i]) st[k] = -1;
        }
    }
    *end = 0; *flags = 0;
    if (st[0] < 0 && st[1] < 0) return -1;
    if (st[0] != 1 && st[1] != 1) return 0;
    int k = st[1] == 1 && (st[0] != 1 || g[1] > g[0]);
    *end = e[k]; *flags = f[k];
    return 1;
}

/* An event's length with its payload (docs/pinnacle-format.md, Frames): 64,
 * plus the payload (u16 at 56, at most 256, order events only) rounded up to
 * 64; bytes 58..63 zero. 0: not well formed. */
PD2_FN uint32_t pd2_evlen(const uint8_t *e) {
    uint32_t P = (uint32_t)pd_le(e + 56, 2);
    if (P > 256 || (P && (e[8] < 1 || e[8] > 4)) || pd_le(e + 58, 6) != 0) return 0;
    if (e[8] == 9) return 128;                 /* a whole tick (market data): one frame */
    return 64 + (P + 63) / 64 * 64;
}

PD2_FN void pd2_decode(const pd_seg *segs, size_t n, const uint8_t *cat, size_t catlen, pd2_store *st) {
    size_t frames = 16;
    for (size_t i = 0; i < n; i++) frames += segs[i].len / 64;
    memset(st, 0, sizeof *st);
    st->cap = 64;
    while (st->cap < 2 * frames) st->cap *= 2;
    if (cat) {                                  /* "PPCAT002", u32 count, u32 0, {u32 id, u8 len, name}, u32 crc */
        if (catlen < 20 || memcmp(cat, "PPCAT002", 8) != 0 || (uint32_t)pd_le(cat + catlen - 4, 4) != pd_crc(0, cat, catlen - 4)) { st->corrupt = 1; return; }
        size_t off = 16, cnt = (size_t)pd_le(cat + 8, 4);
        for (size_t i = 0; i < cnt; i++) {
            if (off + 5 > catlen - 4 || off + 5 + cat[off + 4] > catlen - 4) { st->corrupt = 1; return; }
            if (!pd2_declare(st, (uint32_t)pd_le(cat + off, 4), cat + off + 5, cat[off + 4])) { st->corrupt = 1; return; }
            off += 5 + (size_t)cat[off + 4];
        }
    }
    uint64_t data_bytes = 0;
    size_t used = n;
    for (size_t i = 0; i < n; i++) {             /* headers */
        const uint8_t *h = segs[i].p;
        int ok = segs[i].len >= 4096 && memcmp(h, "PPSJRN01", 8) == 0 && (uint32_t)pd_le(h + 60, 4) == pd_crc(0, h, 60) &&
                 pd_le(h + 8, 4) == 3 && pd_le(h + 12, 4) == 64 && pd_le(h + 24, 8) == segs[i].index;
        uint64_t db = ok ? pd_le(h + 32, 8) : 0;
        if (ok && (db < 65536 || (db & (db - 1)) || (data_bytes && db != data_bytes))) ok = 0;
        if (!ok) {
            /* not a store journal segment of this version (wrong magic, or a
             * valid header of another version or alignment): refused wherever
             * it is, as an older release refuses a newer file */
            if (segs[i].len >= 4096 && (memcmp(h, "PPSJRN01", 8) != 0 ||
                                        ((uint32_t)pd_le(h + 60, 4) == pd_crc(0, h, 60) && (pd_le(h + 8, 4) != 3 || pd_le(h + 12, 4) != 64)))) {
                st->corrupt = 1; return;
            }
            int data = 0;
            for (size_t k = 4096; k < segs[i].len && !data; k++) data = segs[i].p[k] != 0;
            /* an unused last one: whatever its header says, no data after it
             * (docs/pinnacle-format.md: only a bad header on a segment that is
             * not the last, or over data, is corruption) */
            if (i + 1 == n && !data) { used = i; break; }
            st->corrupt = 1; return;
        }
        if (i && segs[i].index != segs[i - 1].index + 1) { st->corrupt = 1; return; }
        data_bytes = db;
    }
    for (size_t i = 0; i < used; i++) {
        const uint8_t *h = segs[i].p;
        uint64_t salt = pd_le(h + 16, 8), base = segs[i].index * data_bytes;
        uint64_t mend = 0, mflags = 0;
        if (pd2_mark(h, &mend, &mflags) < 0 || mend > data_bytes) { st->corrupt = 1; return; }
        uint32_t seed = pd2_seed(salt);
        size_t avail = segs[i].len - 4096;
        if (avail > data_bytes) avail = (size_t)data_bytes;
        const uint8_t *d0 = h + 4096;
        size_t off = 0;
        while (off + 64 <= avail) {
            uint32_t len = (uint32_t)pd_le(d0 + off, 4);
            if (len < 64 || len % 64 || len > 16384 || off + len > avail) break;
            uint8_t pb[8];
            for (int k = 0; k < 8; k++) pb[k] = (uint8_t)((base + off) >> (8 * k));
            if ((uint32_t)pd_le(d0 + off + 4, 4) != pd_crc(pd_crc(seed, pb, 8), d0 + off + 8, len - 8)) break;
            const uint8_t *f = d0 + off;
            uint32_t iid = (uint32_t)pd_le(f + 12, 4);
            if (f[8] == 16) {
                if (len != 128 || !pd2_declare(st, iid, f + 24, f[9])) { st->corrupt = 1; return; }
            } else if (f[8] >= 1 && f[8] <= 9) {
                pd_book *b = pd2_book(st, iid);
                pd_ev v;
                v.type = f[8]; v.side = f[9]; v.seq = pd_le(f + 16, 8); v.id = pd_le(f + 24, 8);
                v.price = (int64_t)pd_le(f + 32, 8); v.qty = (int64_t)pd_le(f + 40, 8); v.ts = pd_le(f + 48, 8);
                if (len != pd2_evlen(f) || !b || v.seq != b->last + 1 || !pd_apply(b, &v)) { st->corrupt = 1; return; }
                b->last = v.seq;
            } else if (f[8] == 17) {                /* an atomic batch: a header, then count entries */
                uint32_t cnt = (uint32_t)pd_le(f + 10, 2);
                uint64_t first = pd_le(f + 16, 8);
                pd_book *b = pd2_book(st, iid);
                if (!b || cnt < 1 || cnt > 255 || len < 64 * (cnt + 1) || first != b->last + 1 ||
                    pd_le(f + 24, 8) != first + cnt - 1) { st->corrupt = 1; return; }
                uint32_t at = 64;
                for (uint32_t k = 0; k < cnt; k++) {
                    const uint8_t *e = f + at;
                    uint32_t el = at + 64 <= len ? pd2_evlen(e) : 0;
                    if (!el || at + el > len) { st->corrupt = 1; return; }
                    at += el;
                    pd_ev v;
                    v.type = e[8]; v.side = e[9]; v.seq = pd_le(e + 16, 8); v.id = pd_le(e + 24, 8);
                    v.price = (int64_t)pd_le(e + 32, 8); v.qty = (int64_t)pd_le(e + 40, 8); v.ts = pd_le(e + 48, 8);
                    if (v.type < 1 || v.type > 4 || (uint32_t)pd_le(e + 12, 4) != iid || v.seq != b->last + 1 ||
                        !pd_apply(b, &v)) { st->corrupt = 1; return; }
                    b->last = v.seq;
                }
                if (at != len) { st->corrupt = 1; return; }
            } else if (f[8] != 0) { st->corrupt = 1; return; }
            off += len;
        }
        if (off < mend) { st->corrupt = 1; return; }
        if (off == data_bytes || ((mflags & 1) && off == mend)) continue;
        for (size_t k = i + 1; k < used; k++) {     /* nothing after the end may be durable */
            uint64_t ge = 0, gf = 0;
            int mk = pd2_mark(segs[k].p, &ge, &gf);
            if (mk < 0 || (mk == 1 && (ge || (gf & 1)))) { st->corrupt = 1; return; }
        }
        break;
    }
}

#endif
