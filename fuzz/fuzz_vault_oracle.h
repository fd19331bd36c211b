/* The vault fuzz target's tag oracle (fuzz/fuzz_vault_loader.c): the tag of a
 * file, recomputed from docs/vault-format.md alone, with none of vault.h's
 * code: its own JSON field reader, base64 decoder, SHA-256, HMAC, PBKDF2 and
 * the canonical mac_input. A successful vault_open_ex must mean this tag
 * equals the file's "tag".
 *
 * fvo_hmac() is this file's SHA-256 HMAC; define FVO_HMAC(key, klen, msg,
 * mlen, out) before including it to use another one (tests/test_fuzz_vault.c
 * uses OpenSSL's). */
#ifndef FUZZ_VAULT_ORACLE_H
#define FUZZ_VAULT_ORACLE_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- SHA-256 (FIPS 180-4), written for the oracle ---- */
typedef struct fvo_sha { uint32_t h[8]; uint8_t blk[64]; size_t fill; uint64_t total; } fvo_sha;
static const uint32_t fvo_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
#define FVO_ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
static void fvo_block(fvo_sha *s, const uint8_t *p) {
    uint32_t w[64], a[8];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = FVO_ROR(w[i - 15], 7) ^ FVO_ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = FVO_ROR(w[i - 2], 17) ^ FVO_ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(a, s->h, sizeof a);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = a[7] + (FVO_ROR(a[4], 6) ^ FVO_ROR(a[4], 11) ^ FVO_ROR(a[4], 25)) + ((a[4] & a[5]) ^ (~a[4] & a[6])) + fvo_k[i] + w[i];
        uint32_t t2 = (FVO_ROR(a[0], 2) ^ FVO_ROR(a[0], 13) ^ FVO_ROR(a[0], 22)) + ((a[0] & a[1]) ^ (a[0] & a[2]) ^ (a[1] & a[2]));
        memmove(a + 1, a, 7 * sizeof a[0]);
        a[4] += t1;
        a[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) s->h[i] += a[i];
}
static void fvo_sha_init(fvo_sha *s) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv); s->fill = 0; s->total = 0;
}
static void fvo_sha_add(fvo_sha *s, const void *data, size_t n) {
    const uint8_t *p = (const uint8_t *)data;
    s->total += n;
    while (n) {
        size_t k = 64 - s->fill < n ? 64 - s->fill : n;
        memcpy(s->blk + s->fill, p, k);
        s->fill += k; p += k; n -= k;
        if (s->fill == 64) { fvo_block(s, s->blk); s->fill = 0; }
    }
}
static void fvo_sha_end(fvo_sha *s, uint8_t out[32]) {
    uint64_t bits = s->total * 8;
    uint8_t pad = 0x80, z = 0, len[8];
    fvo_sha_add(s, &pad, 1);
    while (s->fill != 56) fvo_sha_add(s, &z, 1);
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (56 - 8 * i));
    fvo_sha_add(s, len, 8);
    for (int i = 0; i < 8; i++) { out[4 * i] = (uint8_t)(s->h[i] >> 24); out[4 * i + 1] = (uint8_t)(s->h[i] >> 16); out[4 * i + 2] = (uint8_t)(s->h[i] >> 8); out[4 * i + 3] = (uint8_t)s->h[i]; }
}

/* HMAC-SHA256 (RFC 2104) with the key's two padded states kept, so PBKDF2's
 * iterations cost two blocks each. */
typedef struct fvo_hkey { fvo_sha in, out; } fvo_hkey;
static void fvo_hkey_set(fvo_hkey *k, const uint8_t *key, size_t klen) {
    uint8_t kb[64], pad[64];
    memset(kb, 0, sizeof kb);
    if (klen > 64) { fvo_sha s; fvo_sha_init(&s); fvo_sha_add(&s, key, klen); fvo_sha_end(&s, kb); }
    else if (klen) memcpy(kb, key, klen);
    for (int i = 0; i < 64; i++) pad[i] = kb[i] ^ 0x36;
    fvo_sha_init(&k->in); fvo_sha_add(&k->in, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = kb[i] ^ 0x5c;
    fvo_sha_init(&k->out); fvo_sha_add(&k->out, pad, 64);
}
static void fvo_hkey_mac(const fvo_hkey *k, const uint8_t *msg, size_t n, uint8_t out[32]) {
    fvo_sha s = k->in;
    uint8_t ih[32];
    fvo_sha_add(&s, msg, n); fvo_sha_end(&s, ih);
    s = k->out;
    fvo_sha_add(&s, ih, 32); fvo_sha_end(&s, out);
}
static void fvo_hmac(const uint8_t *key, size_t klen, const uint8_t *msg, size_t n, uint8_t out[32]) {
    fvo_hkey k; fvo_hkey_set(&k, key, klen); fvo_hkey_mac(&k, msg, n, out);
}
#ifndef FVO_HMAC
#define FVO_HMAC(key, klen, msg, mlen, out) fvo_hmac(key, klen, msg, mlen, out)
#define FVO_OWN_HMAC 1
#endif

/* PBKDF2-HMAC-SHA256 (RFC 8018), one 32-byte block. */
static void fvo_pbkdf2(const char *pw, const uint8_t *salt, size_t slen, uint32_t iter, uint8_t out[32]) {
    uint8_t u[32], m[200];
    if (slen > sizeof m - 4) { memset(out, 0, 32); return; }
    memcpy(m, salt, slen);
    m[slen] = 0; m[slen + 1] = 0; m[slen + 2] = 0; m[slen + 3] = 1;
#ifdef FVO_OWN_HMAC
    fvo_hkey k; fvo_hkey_set(&k, (const uint8_t *)pw, strlen(pw));
#define FVO__PRF(msg, n, o) fvo_hkey_mac(&k, msg, n, o)
#else
#define FVO__PRF(msg, n, o) FVO_HMAC((const uint8_t *)pw, strlen(pw), msg, n, o)
#endif
    FVO__PRF(m, slen + 4, u);
    memcpy(out, u, 32);
    for (uint32_t i = 1; i < iter; i++) {
        FVO__PRF(u, 32, u);
        for (int b = 0; b < 32; b++) out[b] ^= u[b];
    }
#undef FVO__PRF
}

/* ---- the file's fields: the strict format has no escapes and no nesting, so
 * a token walk finds each "key": value pair of the one object ---- */
typedef struct fvo_file {
    uint64_t version, counter, iter;
    int have_counter;
    uint8_t salt[64], iv[64], tag[64];
    long salt_n, iv_n, tag_n, ct_n;
    uint8_t *ct;
} fvo_file;

static int fvo_b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}
/* RFC 4648 with padding; -1 on anything else or when it does not fit. */
static long fvo_b64(const char *s, size_t n, uint8_t *out, size_t cap) {
    if (n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pads = 0;
        for (int j = 0; j < 4; j++) {
            if (s[i + j] == '=' && i + 4 == n && j >= 2) { v[j] = 0; pads++; continue; }
            if (pads) return -1;
            v[j] = fvo_b64val((unsigned char)s[i + j]);
            if (v[j] < 0) return -1;
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        for (int j = 0; j < 3 - pads; j++) { if (o == cap) return -1; out[o++] = (uint8_t)(x >> (16 - 8 * j)); }
    }
    return (long)o;
}

/* 0 when every field the tag covers was found and decoded. */
static int fvo_read(const char *t, size_t n, fvo_file *f) {
    memset(f, 0, sizeof *f);
    f->salt_n = f->iv_n = f->tag_n = f->ct_n = -1;
    size_t i = 0;
    const char *key = NULL; size_t klen = 0;
    int want_value = 0, have_v = 0, have_i = 0;
    while (i < n) {
        char c = t[i];
        if (c == '"' || (c >= '0' && c <= '9')) {
            const char *s; size_t sl; uint64_t num = 0; int is_str = c == '"';
            if (is_str) {
                size_t e = i + 1;
                while (e < n && t[e] != '"') e++;
                if (e >= n) return -1;
                s = t + i + 1; sl = e - i - 1; i = e + 1;
            } else {
                s = t + i;
                while (i < n && t[i] >= '0' && t[i] <= '9') { num = num * 10 + (uint64_t)(t[i] - '0'); i++; }
                sl = (size_t)(t + i - s);
            }
            if (!want_value) { if (!is_str) return -1; key = s; klen = sl; continue; }
            want_value = 0;
#define FVO_IS(k) (klen == sizeof(k) - 1 && memcmp(key, k, klen) == 0)
            if (FVO_IS("version") && !is_str) { f->version = num; have_v = 1; }
            else if (FVO_IS("counter") && !is_str) { f->counter = num; f->have_counter = 1; }
            else if (FVO_IS("kdf_iterations") && !is_str) { f->iter = num; have_i = 1; }
            else if (FVO_IS("kdf_salt") && is_str) f->salt_n = fvo_b64(s, sl, f->salt, sizeof f->salt);
            else if (FVO_IS("iv") && is_str) f->iv_n = fvo_b64(s, sl, f->iv, sizeof f->iv);
            else if (FVO_IS("tag") && is_str) f->tag_n = fvo_b64(s, sl, f->tag, sizeof f->tag);
            else if (FVO_IS("ciphertext") && is_str) {
                free(f->ct);
                f->ct = (uint8_t *)malloc(sl / 4 * 3 + 1);
                f->ct_n = f->ct ? fvo_b64(s, sl, f->ct, sl / 4 * 3 + 1) : -1;
            }
#undef FVO_IS
            continue;
        }
        if (c == ':') want_value = 1;
        i++;
    }
    if (!have_v || !have_i || f->salt_n != 32 || f->iv_n != 16 || f->tag_n != 32 || f->ct_n < 0) return -1;
    if (f->version == 2 && !f->have_counter) return -1;
    return 0;
}

static void fvo_be(uint8_t *p, uint64_t v, int n) { for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * (n - 1 - i))); }

/* The tag docs/vault-format.md gives for f under password. The master key is
 * kept for the last (salt, iterations). */
static void fvo_tag(const fvo_file *f, const char *password, uint8_t out[32]) {
    static uint8_t last_salt[32], master[32];
    static uint64_t last_iter;
    static char last_pw[64];
    if (last_iter != f->iter || memcmp(last_salt, f->salt, 32) != 0 || strncmp(last_pw, password, sizeof last_pw) != 0) {
        fvo_pbkdf2(password, f->salt, 32, (uint32_t)f->iter, master);
        memcpy(last_salt, f->salt, 32); last_iter = f->iter;
        snprintf(last_pw, sizeof last_pw, "%s", password);
    }
    static const char label[] = "vault.h v1 authentication key\001";
    uint8_t mac_key[32];
    FVO_HMAC(master, 32, (const uint8_t *)label, sizeof label - 1, mac_key);
    size_t cap = 200 + (size_t)f->ct_n, n = 0;
    uint8_t *m = (uint8_t *)malloc(cap);
    if (!m) { memset(out, 0, 32); return; }
#define FVO_PUT(p, k) (memcpy(m + n, p, k), n += (k))
#define FVO_STR(s) (m[n++] = (uint8_t)(sizeof(s) - 1), FVO_PUT(s, sizeof(s) - 1))
    FVO_PUT("vault.h/secure_config", 22);
    fvo_be(m + n, f->version, 4); n += 4;
    if (f->version == 2) { fvo_be(m + n, f->counter, 8); n += 8; }
    FVO_STR("pbkdf2-hmac-sha256");
    fvo_be(m + n, f->iter, 4); n += 4;
    m[n++] = 32; FVO_PUT(f->salt, 32);
    FVO_STR("aes-256-cbc");
    FVO_PUT(f->iv, 16);
    FVO_STR("hmac-sha256");
    fvo_be(m + n, (uint64_t)f->ct_n, 8); n += 8;
    FVO_PUT(f->ct, (size_t)f->ct_n);
#undef FVO_PUT
#undef FVO_STR
    FVO_HMAC(mac_key, 32, m, n, out);
    free(m);
}

/* 1: the text's tag verifies under password; 0: it does not; -1: the text
 * lacks a field the tag covers. */
static int fvo_tag_verifies(const char *text, size_t len, const char *password) {
    fvo_file f;
    int ok = -1;
    if (fvo_read(text, len, &f) == 0) {
        uint8_t want[32];
        fvo_tag(&f, password, want);
        ok = memcmp(want, f.tag, 32) == 0;
    }
    free(f.ct);
    return ok;
}
#endif
