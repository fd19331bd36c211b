/* vault.h crypto: published known answers and random cross-checks against
 * OpenSSL (test-only oracle), on the accelerated path (AES-NI/SHA-NI when the
 * CPU has them) and on the portable constant-time path. */
// LIBS: -lcrypto
// NO_TSAN (vault.h starts no thread and neither does this test: nothing for TSan to check)
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include "t.h"
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

static size_t unhex(const char *h, uint8_t *out) {
    size_t n = 0;
    while (h[0] && h[1]) {
        if (h[0] == ' ') { h++; continue; }
        unsigned v; sscanf(h, "%2x", &v); out[n++] = (uint8_t)v; h += 2;
    }
    return n;
}
static int eqhex(const uint8_t *got, const char *hex) {
    uint8_t want[256]; size_t n = unhex(hex, want);
    return memcmp(got, want, n) == 0;
}
static void fill(uint64_t *s, uint8_t *p, size_t n) { size_t i; for (i = 0; i < n; i++) p[i] = (uint8_t)t_rand(s); }

/* Each test body runs once per path. */
static const char *path_name(void) { return vault_cpu_features() ? "accelerated" : "portable"; }
static void each_path(void (*fn)(void)) {
    vault_set_cpu_features(-1); fn();
    vault_set_cpu_features(0); fn();
    vault_set_cpu_features(-1);
}

static void kat_aes_body(void) {
    uint8_t key[32], pt[64], iv[16], out[80], back[80];
    size_t n;
    vault__aes_key ks;
    /* FIPS-197 C.3 */
    unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", key);
    unhex("00112233445566778899aabbccddeeff", pt);
    vault_aes256_encrypt_block(key, pt, out);
    CHECK(eqhex(out, "8ea2b7ca516745bfeafc49904b496089"));
    vault_aes256_decrypt_block(key, out, back);
    CHECK(memcmp(back, pt, 16) == 0);
    /* SP 800-38A F.2.5 (CBC-AES256.Encrypt): the first 64 bytes; then our PKCS#7 block */
    unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", key);
    unhex("000102030405060708090a0b0c0d0e0f", iv);
    unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
          "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710", pt);
    const char *ct = "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
                     "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b";
    CHECK_EQ(vault_aes256_cbc_encrypt(key, iv, pt, 64, out, &n), 0);
    CHECK_EQ(n, 80);
    CHECK(eqhex(out, ct));
    /* F.2.6 (CBC-AES256.Decrypt) on the raw blocks, no padding */
    uint8_t ivc[16], ctb[64];
    unhex(ct, ctb);
    memcpy(ivc, iv, 16);
    vault__aes_expand(&ks, key);
    vault__cbc_dec_blocks(&ks, ivc, ctb, back, 4);
    CHECK(memcmp(back, pt, 64) == 0);
    CHECK(memcmp(ivc, ctb + 48, 16) == 0);
    /* and the padded round trip */
    CHECK_EQ(vault_aes256_cbc_decrypt(key, iv, out, 80, back, &n), 0);
    CHECK_EQ(n, 64);
    CHECK(memcmp(back, pt, 64) == 0);
}
static void test_aes_known_answers(void) { each_path(kat_aes_body); }

static void kat_sha_body(void) {
    uint8_t d[32];
    vault_sha256("", 0, d);
    CHECK(eqhex(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    vault_sha256("abc", 3, d);
    CHECK(eqhex(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    vault_sha256(m2, strlen(m2), d);
    CHECK(eqhex(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    /* one million 'a', fed in uneven pieces */
    static uint8_t a[1000];
    memset(a, 'a', sizeof a);
    vault_sha256_ctx c;
    vault_sha256_init(&c);
    size_t left = 1000000, k = 1;
    while (left) { size_t n = k < left ? k : left; if (n > 1000) n = 1000; vault_sha256_update(&c, a, n); left -= n; k = k * 7 % 997 + 1; }
    vault_sha256_final(&c, d);
    CHECK(eqhex(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}
static void test_sha256_known_answers(void) { each_path(kat_sha_body); }

static void kat_hmac_body(void) {
    uint8_t key[200], msg[200], d[32];
    size_t kl, ml;
    memset(key, 0x0b, 20);
    vault_hmac_sha256(key, 20, "Hi There", 8, d);
    CHECK(eqhex(d, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
    vault_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
    CHECK(eqhex(d, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
    memset(key, 0xaa, 20); memset(msg, 0xdd, 50);
    vault_hmac_sha256(key, 20, msg, 50, d);
    CHECK(eqhex(d, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"));
    kl = unhex("0102030405060708090a0b0c0d0e0f10111213141516171819", key); memset(msg, 0xcd, 50);
    vault_hmac_sha256(key, kl, msg, 50, d);
    CHECK(eqhex(d, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"));
    memset(key, 0x0c, 20);
    vault_hmac_sha256(key, 20, "Test With Truncation", 20, d);
    CHECK(eqhex(d, "a3b6167473100ee06e0c796c2955552b"));   /* truncated to 128 bits */
    memset(key, 0xaa, 131);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    vault_hmac_sha256(key, 131, m6, strlen(m6), d);
    CHECK(eqhex(d, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
    const char *m7 = "This is a test using a larger than block-size key and a larger than block-size data. "
                     "The key needs to be hashed before being used by the HMAC algorithm.";
    ml = strlen(m7);
    vault_hmac_sha256(key, 131, m7, ml, d);
    CHECK(eqhex(d, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"));
}
static void test_hmac_rfc4231(void) { each_path(kat_hmac_body); }

static void kat_pbkdf2_body(void) {
    uint8_t d[64];
    vault_pbkdf2_sha256("passwd", 6, "salt", 4, 1, d, 64);
    CHECK(eqhex(d, "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
                   "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"));
    vault_pbkdf2_sha256("Password", 8, "NaCl", 4, 80000, d, 64);
    CHECK(eqhex(d, "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
                   "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"));
}
static void test_pbkdf2_rfc7914(void) { each_path(kat_pbkdf2_body); }

static void cross_sha_hmac_body(void) {
    uint64_t s = 0x5eed0001;
    static uint8_t msg[700], key[260];
    uint8_t a[32], b[32];
    unsigned int bl;
    size_t len, kl;
    int bad_sha = 0, bad_stream = 0, bad_hmac = 0;
    for (len = 0; len <= 600; len++) {
        fill(&s, msg, len);
        vault_sha256(msg, len, a);
        SHA256(msg, len, b);
        bad_sha += memcmp(a, b, 32) != 0;
        vault_sha256_ctx c;                        /* same bytes in random pieces */
        size_t off = 0;
        vault_sha256_init(&c);
        while (off < len) { size_t k = (size_t)(t_rand(&s) % 130); if (k > len - off) k = len - off; vault_sha256_update(&c, msg + off, k); off += k; }
        vault_sha256_final(&c, a);
        bad_stream += memcmp(a, b, 32) != 0;
    }
    for (kl = 0; kl <= 200; kl++) {
        int r;
        for (r = 0; r < 4; r++) {
            len = (size_t)(t_rand(&s) % 601);
            fill(&s, key, kl); fill(&s, msg, len);
            vault_hmac_sha256(key, kl, msg, len, a);
            HMAC(EVP_sha256(), kl ? key : (const uint8_t *)"", (int)kl, msg, len, b, &bl);
            bad_hmac += memcmp(a, b, 32) != 0;
        }
    }
    CHECK_EQ(bad_sha, 0); CHECK_EQ(bad_stream, 0); CHECK_EQ(bad_hmac, 0);
    if (bad_sha || bad_hmac || bad_stream) printf("  (on the %s path)\n", path_name());
}
static void test_sha256_hmac_vs_openssl(void) { each_path(cross_sha_hmac_body); }

static void cross_pbkdf2_body(void) {
    uint64_t s = 0x5eed0002;
    uint8_t pw[300], salt[100], a[100], b[100];
    int i, bad = 0;
    for (i = 0; i < 120; i++) {
        size_t pl = (size_t)(t_rand(&s) % (i < 60 ? 80 : 300)), sl = (size_t)(t_rand(&s) % 100);
        size_t ol = 1 + (size_t)(t_rand(&s) % 100);
        uint32_t it = 1 + (uint32_t)(t_rand(&s) % 40);
        fill(&s, pw, pl); fill(&s, salt, sl);
        vault_pbkdf2_sha256(pw, pl, salt, sl, it, a, ol);
        PKCS5_PBKDF2_HMAC((const char *)pw, (int)pl, salt, (int)sl, (int)it, EVP_sha256(), (int)ol, b);
        bad += memcmp(a, b, ol) != 0;
    }
    CHECK_EQ(bad, 0);
}
static void test_pbkdf2_vs_openssl(void) { each_path(cross_pbkdf2_body); }

static int ossl_cbc(int enc, const uint8_t *key, const uint8_t *iv, const uint8_t *in, int len, uint8_t *out) {
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0;
    if (!EVP_CipherInit_ex(c, EVP_aes_256_cbc(), NULL, key, iv, enc) ||
        !EVP_CipherUpdate(c, out, &n1, in, len) || !EVP_CipherFinal_ex(c, out + n1, &n2)) n1 = -1 - n2;
    EVP_CIPHER_CTX_free(c);
    return n1 < 0 ? -1 : n1 + n2;
}

static void cross_aes_body(void) {
    uint64_t s = 0x5eed0003;
    static uint8_t pt[620], ct[640], ref[640], back[640];
    uint8_t key[32], iv[16];
    size_t len, n;
    int bad_enc = 0, bad_dec = 0, bad_inplace = 0, bad_ossl_dec = 0;
    for (len = 0; len <= 600; len++) {
        fill(&s, key, 32); fill(&s, iv, 16); fill(&s, pt, len);
        if (vault_aes256_cbc_encrypt(key, iv, pt, len, ct, &n) != 0 || n != VAULT_CBC_OUT_LEN(len)) { bad_enc++; continue; }
        int rn = ossl_cbc(1, key, iv, pt, (int)len, ref);
        bad_enc += rn != (int)n || memcmp(ct, ref, n) != 0;
        bad_dec += vault_aes256_cbc_decrypt(key, iv, ct, n, back, &n) != 0 || n != len || memcmp(back, pt, len) != 0;
        /* OpenSSL decrypts ours */
        rn = ossl_cbc(0, key, iv, ct, (int)VAULT_CBC_OUT_LEN(len), ref);
        bad_ossl_dec += rn != (int)len || memcmp(ref, pt, len) != 0;
        /* in place, both ways */
        memcpy(back, pt, len);
        vault_aes256_cbc_encrypt(key, iv, back, len, back, &n);
        bad_inplace += memcmp(back, ct, n) != 0;
        bad_inplace += vault_aes256_cbc_decrypt(key, iv, back, n, back, &n) != 0 || n != len || memcmp(back, pt, len) != 0;
    }
    CHECK_EQ(bad_enc, 0); CHECK_EQ(bad_dec, 0); CHECK_EQ(bad_ossl_dec, 0); CHECK_EQ(bad_inplace, 0);
    /* random single blocks against OpenSSL's ECB */
    int i, bad_blk = 0;
    for (i = 0; i < 500; i++) {
        uint8_t b[16], o[16], r[32]; int rl = 0;
        fill(&s, key, 32); fill(&s, b, 16);
        vault_aes256_encrypt_block(key, b, o);
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        EVP_EncryptInit_ex(c, EVP_aes_256_ecb(), NULL, key, NULL);
        EVP_CIPHER_CTX_set_padding(c, 0);
        EVP_EncryptUpdate(c, r, &rl, b, 16);
        EVP_CIPHER_CTX_free(c);
        bad_blk += memcmp(o, r, 16) != 0;
        vault_aes256_decrypt_block(key, o, r);
        bad_blk += memcmp(r, b, 16) != 0;
    }
    CHECK_EQ(bad_blk, 0);
}
static void test_aes_cbc_vs_openssl(void) { each_path(cross_aes_body); }

/* The expanded-key forms (vault_aes256_ctx) give exactly what the per-call
 * forms give, for random keys, IVs and lengths, in place too. */
static void ctx_body(void) {
    uint64_t s = 17;
    int bad = 0;
    for (int i = 0; i < 300; i++) {
        uint8_t key[32], iv[16], pt[100], a[128], b[128], blk[16], ea[16], eb[16];
        size_t len = (size_t)(t_rand(&s) % 100), na = 0, nb = 0;
        fill(&s, key, 32); fill(&s, iv, 16); fill(&s, pt, sizeof pt); fill(&s, blk, 16);
        vault_aes256_ctx c;
        vault_aes256_init(&c, key);
        vault_aes256_cbc_encrypt(key, iv, pt, len, a, &na);
        memcpy(b, pt, len);
        bad += vault_aes256_ctx_cbc_encrypt(&c, iv, b, len, b, &nb) != 0 || na != nb || memcmp(a, b, na) != 0;
        bad += vault_aes256_ctx_cbc_decrypt(&c, iv, b, nb, b, &nb) != 0 || nb != len || memcmp(b, pt, len) != 0;
        vault_aes256_encrypt_block(key, blk, ea);
        vault_aes256_ctx_encrypt_block(&c, blk, eb);
        bad += memcmp(ea, eb, 16) != 0;
        a[na - 1] ^= 0x55;                            /* bad padding is still VAULT_EPAD */
        bad += vault_aes256_ctx_cbc_decrypt(&c, iv, a, na, b, &nb) != VAULT_EPAD;
        vault_wipe(&c, sizeof c);
    }
    CHECK_EQ(bad, 0);
}
static void test_aes_ctx_matches_per_call(void) { each_path(ctx_body); }

/* The batch forms give what one call per message gives: random keys, IVs,
 * message counts (lanes 1 to 9, so groups of four with a rest) and lengths
 * (equal within a batch, and not), against the per-message calls. */
static void batch_body(void) {
    uint64_t s = 23;
    int bad = 0;
    for (int round = 0; round < 200; round++) {
        enum { N = 9, MAXB = 12 };
        uint8_t key[32], iv[N][16], msg[N][MAXB * 16], got[N][MAXB * 16], want[MAXB * 16 + 16];
        const uint8_t *ivp[N];
        uint8_t *bufp[N];
        size_t nb[N], n = 1 + (size_t)(t_rand(&s) % N), same = t_rand(&s) % 2, len0 = 1 + t_rand(&s) % MAXB;
        vault_aes256_ctx c;
        fill(&s, key, 32);
        vault_aes256_init(&c, key);
        for (size_t i = 0; i < n; i++) {
            fill(&s, iv[i], 16); fill(&s, msg[i], sizeof msg[i]);
            nb[i] = same ? len0 : (size_t)(t_rand(&s) % (MAXB + 1));
            memcpy(got[i], msg[i], sizeof got[i]);
            ivp[i] = iv[i]; bufp[i] = got[i];
        }
        vault_aes256_ctx_cbc_encrypt_many(&c, n, ivp, bufp, nb);
        for (size_t i = 0; i < n; i++) {
            uint8_t chain[16];
            memcpy(chain, iv[i], 16);
            for (size_t b = 0; b < nb[i]; b++) {              /* CBC by hand from single blocks */
                uint8_t x[16];
                for (int j = 0; j < 16; j++) x[j] = (uint8_t)(msg[i][16 * b + (size_t)j] ^ chain[j]);
                vault_aes256_ctx_encrypt_block(&c, x, want + 16 * b);
                memcpy(chain, want + 16 * b, 16);
            }
            bad += memcmp(got[i], want, 16 * nb[i]) != 0;
            bad += memcmp(got[i] + 16 * nb[i], msg[i] + 16 * nb[i], sizeof got[i] - 16 * nb[i]) != 0;   /* nothing past it */
        }
        /* ECB, in place and not */
        uint8_t blocks[N * 16], ecb[N * 16];
        fill(&s, blocks, sizeof blocks);
        vault_aes256_ctx_encrypt_blocks(&c, blocks, ecb, n);
        for (size_t i = 0; i < n; i++) {
            vault_aes256_ctx_encrypt_block(&c, blocks + 16 * i, want);
            bad += memcmp(ecb + 16 * i, want, 16) != 0;
        }
        vault_aes256_ctx_encrypt_blocks(&c, blocks, blocks, n);
        bad += memcmp(blocks, ecb, 16 * n) != 0;
        vault_wipe(&c, sizeof c);
        /* SHA-256 compression of n messages of nblocks each, against the
         * streaming hash: the states after whole blocks must agree */
        size_t shb = 1 + t_rand(&s) % 3;
        uint8_t data[N][3 * 64];
        vault_sha256_ctx ref[N], mine[N];
        uint32_t *hp[N];
        const uint8_t *dp[N];
        for (size_t i = 0; i < n; i++) {
            fill(&s, data[i], sizeof data[i]);
            vault_sha256_init(&ref[i]);
            vault_sha256_update(&ref[i], data[i], 64 * shb);
            vault_sha256_init(&mine[i]);
            hp[i] = mine[i].h; dp[i] = data[i];
        }
        vault_sha256_blocks_many(n, hp, dp, shb);
        for (size_t i = 0; i < n; i++) bad += memcmp(ref[i].h, mine[i].h, sizeof ref[i].h) != 0;
    }
    CHECK_EQ(bad, 0);
}
static void test_batch_forms_match_per_message(void) { each_path(batch_body); }

/* Encrypts raw blocks (no padding added) so the last block can be anything. */
static int dec_raw(const uint8_t *plain, size_t len, uint8_t *out, size_t *n) {
    uint8_t key[32], iv[16], ivw[16], ct[64];
    vault__aes_key ks;
    memset(key, 7, 32); memset(iv, 9, 16); memcpy(ivw, iv, 16);
    vault__aes_expand(&ks, key);
    vault__cbc_enc_blocks(&ks, ivw, plain, ct, len / 16);
    *n = 12345;
    return vault_aes256_cbc_decrypt(key, iv, ct, len, out, n);
}

static void padding_body(void) {
    uint8_t p[32], out[32], zero[32];
    size_t n;
    int i;
    memset(zero, 0, sizeof zero);
    memset(p, 'x', 32);
    p[31] = 0; CHECK_EQ(dec_raw(p, 32, out, &n), VAULT_EPAD); CHECK_EQ(n, 0); CHECK(memcmp(out, zero, 32) == 0);
    p[31] = 17; CHECK_EQ(dec_raw(p, 32, out, &n), VAULT_EPAD);
    p[31] = 255; CHECK_EQ(dec_raw(p, 32, out, &n), VAULT_EPAD);
    p[29] = 3; p[30] = 2; p[31] = 3; CHECK_EQ(dec_raw(p, 32, out, &n), VAULT_EPAD);   /* inconsistent */
    p[29] = 2; p[30] = 3; p[31] = 3; CHECK_EQ(dec_raw(p, 32, out, &n), VAULT_EPAD);
    for (i = 16; i < 32; i++) p[i] = 16;
    p[16] = 15; CHECK_EQ(dec_raw(p, 32, out, &n), VAULT_EPAD);                       /* first pad byte off */
    p[16] = 16; CHECK_EQ(dec_raw(p, 32, out, &n), 0); CHECK_EQ(n, 16);                /* a whole pad block */
    CHECK(memcmp(out + 16, zero, 16) == 0);                                          /* pad bytes wiped */
    p[31] = 1; CHECK_EQ(dec_raw(p, 32, out, &n), 0); CHECK_EQ(n, 31);
    memset(p, 16, 16); CHECK_EQ(dec_raw(p, 16, out, &n), 0); CHECK_EQ(n, 0);         /* empty plaintext */
    uint8_t key[32] = {0}, iv[16] = {0};
    CHECK_EQ(vault_aes256_cbc_decrypt(key, iv, p, 0, out, &n), VAULT_EPAD);          /* no block */
    CHECK_EQ(vault_aes256_cbc_decrypt(key, iv, p, 15, out, &n), VAULT_EPAD);         /* not whole blocks */
    CHECK_EQ(vault_aes256_cbc_decrypt(key, iv, p, 17, out, &n), VAULT_EPAD);
    CHECK_EQ(vault_aes256_cbc_encrypt(key, iv, NULL, 0, out, &n), 0); CHECK_EQ(n, 16);
    CHECK_EQ(vault_aes256_cbc_encrypt(NULL, iv, p, 1, out, &n), VAULT_EINVAL);
}
static void test_padding_negative(void) { each_path(padding_body); }

static void test_ct_equal(void) {
    uint8_t a[40], b[40];
    memset(a, 1, 40); memset(b, 1, 40);
    CHECK(vault_ct_equal(a, b, 40));
    CHECK(vault_ct_equal(a, b, 0));
    b[39] ^= 0x80; CHECK(!vault_ct_equal(a, b, 40));
    b[39] ^= 0x80; b[0] ^= 1; CHECK(!vault_ct_equal(a, b, 40));
}


/* docs/vault-format.md, followed byte for byte with OpenSSL: derive the keys,
 * recompute the tag over the documented mac_input, decrypt, parse the map. */
static const char *jfield(const char *js, const char *key, char *out, size_t cap) {
    char pat[64]; const char *v, *e; size_t n;
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    v = strstr(js, pat); if (!v) return NULL;
    v += strlen(pat); if (*v == '"') v++;
    e = v; while (*e && *e != '"' && *e != ',' && *e != '\n') e++;
    n = (size_t)(e - v); if (n >= cap) return NULL;
    memcpy(out, v, n); out[n] = 0;
    return out;
}
static int unb64(const char *s, uint8_t *out) {
    return EVP_DecodeBlock(out, (const unsigned char *)s, (int)strlen(s)) - (strlen(s) > 1 && s[strlen(s) - 1] == '=') - (strlen(s) > 2 && s[strlen(s) - 2] == '=');
}
static void put32(uint8_t **p, uint32_t v) { (*p)[0] = (uint8_t)(v >> 24); (*p)[1] = (uint8_t)(v >> 16); (*p)[2] = (uint8_t)(v >> 8); (*p)[3] = (uint8_t)v; *p += 4; }
static void putstr(uint8_t **p, const char *s) { size_t n = strlen(s); **p = (uint8_t)n; memcpy(*p + 1, s, n); *p += 1 + n; }

static void test_format_doc_with_openssl(void) {
    const char *d = t_dir("vault_doc"), *pw = "doc password";
    char path[600], js[8192], b[4096];
    vault_options o;
    vault *v;
    uint8_t salt[64], iv[32], tag[64], ct[2048], master[32], ek[32], mk[32], info[64], mac_in[4096], t2[32], pt[2048];
    unsigned int tl;
    int rc, ctn;
    memset(&o, 0, sizeof o); o.iterations = 1500; o.min_iterations = 1000;
    snprintf(path, sizeof path, "%s/v.json", d);
    rc = vault_create_ex(&v, path, pw, &o);
    CHECK_EQ(rc, 0);
    if (rc) return;
    vault_set(v, "b.secret", "S3");
    vault_set(v, "a.key", "K1");
    CHECK_EQ(vault_save(v), 0);
    vault_close(v);
    FILE *f = fopen(path, "r");
    size_t jn = fread(js, 1, sizeof js - 1, f); js[jn] = 0; fclose(f);
    uint32_t iter = (uint32_t)atoi(jfield(js, "kdf_iterations", b, sizeof b));
    CHECK_EQ(iter, 1500);
    CHECK_EQ(unb64(jfield(js, "kdf_salt", b, sizeof b), salt), 32);
    CHECK_EQ(unb64(jfield(js, "iv", b, sizeof b), iv), 16);
    CHECK_EQ(unb64(jfield(js, "tag", b, sizeof b), tag), 32);
    ctn = unb64(jfield(js, "ciphertext", b, sizeof b), ct);
    CHECK(ctn > 0 && ctn % 16 == 0);
    PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, 32, (int)iter, EVP_sha256(), 32, master);
    size_t ln = strlen("vault.h v1 encryption key");
    memcpy(info, "vault.h v1 encryption key", ln); info[ln] = 1;
    HMAC(EVP_sha256(), master, 32, info, ln + 1, ek, &tl);
    ln = strlen("vault.h v1 authentication key");
    memcpy(info, "vault.h v1 authentication key", ln); info[ln] = 1;
    HMAC(EVP_sha256(), master, 32, info, ln + 1, mk, &tl);
    uint8_t *p = mac_in;
    memcpy(p, "vault.h/secure_config", 22); p += 22;
    put32(&p, 1); putstr(&p, "pbkdf2-hmac-sha256"); put32(&p, iter);
    *p++ = 32; memcpy(p, salt, 32); p += 32;
    putstr(&p, "aes-256-cbc"); memcpy(p, iv, 16); p += 16; putstr(&p, "hmac-sha256");
    put32(&p, 0); put32(&p, (uint32_t)ctn); memcpy(p, ct, (size_t)ctn); p += ctn;
    HMAC(EVP_sha256(), mk, 32, mac_in, (size_t)(p - mac_in), t2, &tl);
    CHECK(memcmp(t2, tag, 32) == 0);
    int ptn = ossl_cbc(0, ek, iv, ct, ctn, pt);
    CHECK_EQ(ptn, 256);                                  /* map padded to 256, then PKCS#7 */
    static const uint8_t want[] = {0, 0, 0, 2,
        0, 0, 0, 5, 'a', '.', 'k', 'e', 'y', 0, 0, 0, 0, 2, 'K', '1', 0,
        0, 0, 0, 8, 'b', '.', 's', 'e', 'c', 'r', 'e', 't', 0, 0, 0, 0, 2, 'S', '3', 0};
    CHECK(memcmp(pt, want, sizeof want) == 0);
    int i, zeros = 1;
    for (i = (int)sizeof want; i < 256; i++) zeros &= pt[i] == 0;
    CHECK(zeros);
}

static void test_cpu_features(void) {
    int f = vault_cpu_features();
    printf("  cpu features in use: %s%s%s\n", f & VAULT_CPU_AESNI ? "AES-NI " : "", f & VAULT_CPU_SHANI ? "SHA-NI " : "",
           f ? "" : "(none: portable only)");
    vault_set_cpu_features(0);
    CHECK_EQ(vault_cpu_features(), 0);
    vault_set_cpu_features(-1);
    CHECK_EQ(vault_cpu_features(), f);
}

int main(void) {

    RUN(test_cpu_features);
    RUN(test_aes_known_answers);
    RUN(test_sha256_known_answers);
    RUN(test_hmac_rfc4231);
    RUN(test_pbkdf2_rfc7914);
    RUN(test_sha256_hmac_vs_openssl);
    RUN(test_pbkdf2_vs_openssl);
    RUN(test_aes_cbc_vs_openssl);
    RUN(test_aes_ctx_matches_per_call);
    RUN(test_batch_forms_match_per_message);
    RUN(test_padding_negative);
    RUN(test_ct_equal);
    RUN(test_format_doc_with_openssl);
    return t_done();
}
