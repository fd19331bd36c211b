/* vault.h PBKDF2-HMAC-SHA256 at 600,000 iterations against OpenSSL's
 * PKCS5_PBKDF2_HMAC in the same run; median of several runs; goal <= 1.5x.
 *   make build/bench/vault_bench && build/bench/vault_bench [runs]
 * Also: the portable (no SHA-NI) path, AES-256-CBC throughput, and the
 * batch forms picolog seals records with against one call per record. With
 * OPENSSL_ia32cap=":~0x20000000" OpenSSL runs without SHA-NI too. */
// LIBS: -lcrypto
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 5, i;
    const char *pw = "correct horse battery staple";
    uint8_t salt[32], a[32], b[32];
    double tv[64], to[64], mv, mo;
    const uint32_t iter = VAULT_DEFAULT_ITERATIONS;
    if (runs < 1) runs = 1;
    if (runs > 64) runs = 64;
    memset(salt, 0x5a, sizeof salt);
    printf("vault_bench: PBKDF2-HMAC-SHA256, %u iterations, 32-byte output, %d runs each (interleaved)\n", iter, runs);
    printf("cpu paths in use: %s%s\n", vault_cpu_features() & VAULT_CPU_SHANI ? "SHA-NI " : "",
           vault_cpu_features() & VAULT_CPU_AESNI ? "AES-NI" : "");
    for (i = 0; i < runs; i++) {
        double t0 = now();
        vault_pbkdf2_sha256(pw, strlen(pw), salt, sizeof salt, iter, a, 32);
        double t1 = now();
        PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, sizeof salt, (int)iter, EVP_sha256(), 32, b);
        double t2 = now();
        tv[i] = t1 - t0; to[i] = t2 - t1;
        if (memcmp(a, b, 32) != 0) { printf("MISMATCH with OpenSSL\n"); return 1; }
    }
    qsort(tv, (size_t)runs, sizeof *tv, cmpd);
    qsort(to, (size_t)runs, sizeof *to, cmpd);
    mv = tv[runs / 2]; mo = to[runs / 2];
    printf("vault.h : median %.3f s (min %.3f, max %.3f)\n", mv, tv[0], tv[runs - 1]);
    printf("OpenSSL : median %.3f s (min %.3f, max %.3f)\n", mo, to[0], to[runs - 1]);
    printf("ratio vault/OpenSSL (median): %.2fx  (goal <= 1.50x) %s\n", mv / mo, mv / mo <= 1.5 ? "OK" : "SLOWER THAN GOAL");

    vault_set_cpu_features(0);
    double t0;
    for (i = 0; i < runs; i++) {
        t0 = now();
        vault_pbkdf2_sha256(pw, strlen(pw), salt, sizeof salt, iter, a, 32);
        tv[i] = now() - t0;
        if (memcmp(a, b, 32) != 0) { printf("MISMATCH with OpenSSL (portable)\n"); return 1; }
    }
    qsort(tv, (size_t)runs, sizeof *tv, cmpd);
    printf("vault.h portable path (no SHA-NI): median %.3f s = %.2fx OpenSSL's median above\n", tv[runs / 2], tv[runs / 2] / mo);
    printf("  (to compare with OpenSSL also without SHA-NI: OPENSSL_ia32cap=\":~0x20000000\" %s)\n", argv[0]);

    static uint8_t buf[1 << 20], out[(1 << 20) + 16];
    uint8_t key[32], iv[16];
    size_t n;
    memset(key, 1, 32); memset(iv, 2, 16); memset(buf, 3, sizeof buf);
    vault_set_cpu_features(-1);
    t0 = now();
    for (i = 0; i < 16; i++) vault_aes256_cbc_encrypt(key, iv, buf, sizeof buf, out, &n);
    double ta = now() - t0;
    vault_set_cpu_features(0);
    t0 = now();
    vault_aes256_cbc_encrypt(key, iv, buf, sizeof buf, out, &n);
    double tpa = now() - t0;
    printf("AES-256-CBC encrypt: AES-NI %.0f MB/s, portable %.1f MB/s\n", 16.0 / ta, 1.0 / tpa);

    /* picolog's sealing of a 100-byte record: an IV block, seven CBC blocks,
     * four SHA-256 compressions (docs/encryption.md); one message at a time
     * against the batch forms, 32 messages a batch, medians over runs */
    vault_set_cpu_features(-1);
    {
        enum { NM = 4096, B = 32, REP = 50 };
        static uint8_t msg[NM][112], ivs[NM][16], blk[NM][128];
        static vault_sha256_ctx hs[NM];
        const uint8_t *ivp[NM], *bp[NM];
        uint8_t *mp[NM];
        uint32_t *hp[NM];
        size_t nb[NM];
        double t1[64], t2[64], t3[64], t4[64];
        vault_aes256_ctx c;
        vault_aes256_init(&c, key);
        for (int m = 0; m < NM; m++) {
            ivp[m] = ivs[m]; mp[m] = msg[m]; nb[m] = 7;
            vault_sha256_init(&hs[m]); hp[m] = hs[m].h; bp[m] = blk[m];
        }
        for (i = 0; i < runs; i++) {
            t0 = now();
            for (int r = 0; r < REP; r++)
                for (int m = 0; m < NM; m++) {
                    vault_aes256_ctx_encrypt_block(&c, ivs[m], ivs[m]);
                    vault_aes256_ctx_cbc_encrypt(&c, ivs[m], msg[m], 100, msg[m], &n);
                }
            t1[i] = (now() - t0) / (NM * REP);
            t0 = now();
            for (int r = 0; r < REP; r++)
                for (int m = 0; m < NM; m += B) {
                    vault_aes256_ctx_encrypt_blocks(&c, ivs[m], ivs[m], B);
                    vault_aes256_ctx_cbc_encrypt_many(&c, B, ivp + m, mp + m, nb + m);
                }
            t2[i] = (now() - t0) / (NM * REP);
            t0 = now();
            for (int r = 0; r < REP; r++)
                for (int m = 0; m < NM; m++) vault_sha256_blocks_many(1, hp + m, bp + m, 2);
            t3[i] = (now() - t0) / (NM * REP * 2.0);
            t0 = now();
            for (int r = 0; r < REP; r++) vault_sha256_blocks_many(NM, hp, bp, 2);
            t4[i] = (now() - t0) / (NM * REP * 2.0);
        }
        qsort(t1, (size_t)runs, sizeof *t1, cmpd); qsort(t2, (size_t)runs, sizeof *t2, cmpd);
        qsort(t3, (size_t)runs, sizeof *t3, cmpd); qsort(t4, (size_t)runs, sizeof *t4, cmpd);
        printf("100-byte record, IV + CBC: %.1f ns one at a time, %.1f ns in batches of %d (%.2fx)\n",
               t1[runs / 2] * 1e9, t2[runs / 2] * 1e9, B, t1[runs / 2] / t2[runs / 2]);
        printf("SHA-256 compression, per 64-byte block: %.1f ns one message, %.1f ns two side by side (%.2fx)\n",
               t3[runs / 2] * 1e9, t4[runs / 2] * 1e9, t3[runs / 2] / t4[runs / 2]);
        vault_wipe(&c, sizeof c);
    }
    printf("(shared 2-core machine: numbers are indicative)\n");
    return 0;
}
