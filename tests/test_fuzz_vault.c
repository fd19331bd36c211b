/* The fuzz target fuzz/fuzz_vault_loader.c in the ordinary test builds
 * (plain, ASan+UBSan, TSan):
 *   - makes the seed corpus from real vault files (empty, one credential,
 *     several, long names and values, after a rekey) into
 *     $PLG_FUZZ_SEEDS/fuzz_vault_loader (default build/fuzz/seeds/...), which
 *     `make fuzz` / `make test-fuzz` start from, and runs each seed: the file
 *     as is, with the tag fixed, with the save round trip, and the plaintext
 *     map alone (flags bit 1);
 *   - replays every input in fuzz/regress/fuzz_vault_loader/: each crash
 *     libFuzzer ever finds is copied there and stays a regression test
 *     (tampered-tag* there: a file with a wrong tag, which only a reader that
 *     skips the tag check opens);
 *   - every input must pass the target's oracles (fv_violations stays 0),
 *     and the oracles are shown to fail on a wrong answer.
 * Here the tag oracle's HMAC is OpenSSL's (the fuzz build uses the oracle's
 * own SHA-256, checked against OpenSSL below). */
// LIBS: -lcrypto
// NO_TSAN (vault.h starts no thread and neither does this test: nothing for TSan to check)
#define FV_REPLAY   /* an oracle violation is counted (fv_violations), not abort() */
#include <stddef.h>
static void fv_ossl_hmac(const unsigned char *key, size_t klen, const unsigned char *msg, size_t n, unsigned char *out);
#define FVO_HMAC(key, klen, msg, mlen, out) fv_ossl_hmac(key, klen, msg, mlen, out)
#include "fuzz/fuzz_vault_loader.c"
#include "t.h"
#include "fuzz_replay.h"
#include <openssl/evp.h>
#include <openssl/hmac.h>

static void fv_ossl_hmac(const unsigned char *key, size_t klen, const unsigned char *msg, size_t n, unsigned char *out) {
    unsigned int ol = 32;
    HMAC(EVP_sha256(), klen ? key : (const unsigned char *)"", (int)klen, msg, n, out, &ol);
}

static int mkdirs(const char *p) {
    char cmd[600]; snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    return system(cmd);
}

static const char *seeds_dir(void) {
    static char d[512];
    const char *e = getenv("PLG_FUZZ_SEEDS");
    snprintf(d, sizeof d, "%s/fuzz_vault_loader", e && *e ? e : "build/fuzz/seeds");
    return d;
}

static int nseeds;
static void emit_bytes(const char *name, uint8_t flags, const void *body, size_t n) {
    uint8_t *in = (uint8_t *)malloc(n + 1);
    REQUIRE(in != NULL);
    in[0] = flags;
    memcpy(in + 1, body, n);
    char p[700]; snprintf(p, sizeof p, "%s/%s_f%u", seeds_dir(), name, flags);
    FILE *fp = fopen(p, "wb");
    if (fp) { fwrite(in, 1, n + 1, fp); fclose(fp); nseeds++; }
    CHECK_EQ(LLVMFuzzerTestOneInput(in, n + 1), 0);
    free(in);
}

/* A vault made by vault.h itself, as file seeds (flags 0, 1, 4, 5) and as
 * plaintext-map seeds (flags 2, 6). */
static void make_and_emit(const char *name, int ncred, size_t vlen, int rekey) {
    const char *dir = t_dir("fz_vault");
    char path[600]; snprintf(path, sizeof path, "%s/secure_config.json", dir);
    vault_options o = fv_opts();
    vault *v;
    int rc = vault_create_ex(&v, path, FV_PASSWORD, &o);
    REQUIRE(rc == 0);
    char *val = (char *)malloc(vlen + 1);
    REQUIRE(val != NULL);
    for (int i = 0; i < ncred; i++) {
        char nm[64]; snprintf(nm, sizeof nm, "exchange%d.api_%s", i % 7, i % 2 ? "secret" : "key");
        uint64_t rs = (uint64_t)i + 1;
        for (size_t k = 0; k < vlen; k++) val[k] = (char)('!' + t_rand(&rs) % 90);
        val[vlen] = 0;
        CHECK_EQ(vault_set(v, nm, i % 5 == 4 ? "" : val), 0);
    }
    free(val);
    if (rekey) CHECK_EQ(vault_rekey(v, FV_PASSWORD), 0);
    CHECK_EQ(vault_save(v), 0);
    emit_bytes(name, 2, v->map.p, v->map_len);
    emit_bytes(name, 6, v->map.p, v->map_len);
    vault_close(v);
    FILE *fp = fopen(path, "rb");
    REQUIRE(fp != NULL);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text, fp);
    fclose(fp);
    static const uint8_t fl[] = {0, 1, 4, 5};
    for (size_t i = 0; i < sizeof fl; i++) emit_bytes(name, fl[i], text, n);
    {   /* the same file with one bit of its tag flipped: it must not open */
        char *tag = strstr(text, "\"tag\"");
        REQUIRE(tag != NULL);
        char *q = strchr(tag + 6, '"');
        REQUIRE(q != NULL);
        q[1] = (char)(q[1] == 'A' ? 'B' : 'A');
        char tn[80]; snprintf(tn, sizeof tn, "%s-tampered-tag", name);
        emit_bytes(tn, 0, text, n);
        q[1] = (char)(q[1] == 'A' ? 'B' : 'A');
    }
    /* and the file as written: it must open */
    vault *w;
    CHECK_EQ(vault_open_ex(&w, path, FV_PASSWORD, &o), 0);
    vault_close(w);
}

static void test_seed_corpus(void) {
    CHECK_EQ(mkdirs(seeds_dir()), 0);
    make_and_emit("empty", 0, 0, 0);
    make_and_emit("one", 1, 40, 0);
    make_and_emit("several", 9, 64, 0);
    make_and_emit("long", 3, 3000, 0);
    make_and_emit("rekeyed", 4, 20, 1);
    /* hand-written edges of the parser */
    static const char *const edges[] = {
        "{}",
        "{\"format\":\"vault.h/secure_config\",\"version\":1}",
        "{\"format\":\"vault.h/secure_config\",\"version\":2}",
        "{\"format\":\"vault.h/secure_config\",\"version\":1,\"version\":1}",
        "{\"kdf_iterations\":99999999999999999999999}",
        "  {\"x\":\"y\"}  ",
    };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        char nm[32]; snprintf(nm, sizeof nm, "edge%zu", i);
        emit_bytes(nm, 0, edges[i], strlen(edges[i]));
    }
    CHECK(nseeds >= 41);
    CHECK_EQ(fv_violations, 0);
    printf("  %d seed inputs in %s\n", nseeds, seeds_dir());
}

static void test_regressions(void) {
    unsigned long v0 = fv_violations;
    t_fuzz_replay("fuzz_vault_loader", LLVMFuzzerTestOneInput);
    CHECK_EQ(fv_violations - v0, 0);
}

/* The oracle's own SHA-256, HMAC and PBKDF2 (what the fuzz build uses) agree
 * with OpenSSL, and with RFC 4231 / RFC 7914's published vectors. */
static void test_oracle_crypto(void) {
    uint64_t s = 0x0fac1e;
    uint8_t key[150], msg[300], a[32], b[32];
    int bad = 0;
    for (int i = 0; i < 300; i++) {
        size_t kl = (size_t)(t_rand(&s) % sizeof key), ml = (size_t)(t_rand(&s) % sizeof msg);
        for (size_t k = 0; k < kl; k++) key[k] = (uint8_t)t_rand(&s);
        for (size_t k = 0; k < ml; k++) msg[k] = (uint8_t)t_rand(&s);
        fvo_hmac(key, kl, msg, ml, a);
        fv_ossl_hmac(key, kl, msg, ml, b);
        bad += memcmp(a, b, 32) != 0;
    }
    CHECK_EQ(bad, 0);
    static const uint8_t rfc4231_2[32] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
                                          0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    fvo_hmac((const uint8_t *)"Jefe", 4, (const uint8_t *)"what do ya want for nothing?", 28, a);
    CHECK(memcmp(a, rfc4231_2, 32) == 0);
    uint8_t salt[32];
    for (int i = 0; i < 32; i++) salt[i] = (uint8_t)(i * 7 + 1);
    fvo_pbkdf2("fuzz password", salt, 32, 1000, a);
    PKCS5_PBKDF2_HMAC("fuzz password", 13, salt, 32, 1000, EVP_sha256(), 32, b);
    CHECK(memcmp(a, b, 32) == 0);
}

/* The oracles fail on a wrong answer: a real file, then the same file with
 * a wrong tag or a changed covered field, as a reader that opened it would
 * have to be checked; and an undocumented result code. */
static void test_oracles_can_fail(void) {
    const char *dir = t_dir("fz_vault_oracle");
    char path[600]; snprintf(path, sizeof path, "%s/secure_config.json", dir);
    vault_options o = fv_opts();
    vault *v;
    REQUIRE(vault_create_ex(&v, path, FV_PASSWORD, &o) == 0);
    CHECK_EQ(vault_set(v, "exchange.api_key", "k3y"), 0);
    CHECK_EQ(vault_save(v), 0);
    vault_close(v);
    size_t n = 0;
    char *text = fv_slurp(path, &n);
    REQUIRE(text != NULL);
    unsigned long v0 = fv_violations;
    fv_check_tag(text, n, "oracle");                       /* vault.h's own file verifies */
    CHECK_EQ(fv_violations - v0, 0);
    CHECK_EQ(fvo_tag_verifies(text, n, "another password"), 0);
    char *tag = strstr(text, "\"tag\"");
    REQUIRE(tag != NULL);
    char *q = strchr(tag + 6, '"');
    REQUIRE(q != NULL);
    q[1] = (char)(q[1] == 'A' ? 'B' : 'A');                /* planted: a wrong tag */
    fv_check_tag(text, n, "planted");
    CHECK_EQ(fv_violations - v0, 1);
    q[1] = (char)(q[1] == 'A' ? 'B' : 'A');
    char *it = strstr(text, "\"kdf_iterations\": 1000");
    if (!it) it = strstr(text, "\"kdf_iterations\":1000");
    REQUIRE(it != NULL);
    char *d = strchr(it, '1');
    *d = '2';                                              /* planted: a covered field changed, tag kept */
    fv_check_tag(text, n, "planted");
    CHECK_EQ(fv_violations - v0, 2);
    *d = '1';
    (void)fv_check_rc(-30399);                             /* planted: an undocumented code */
    CHECK_EQ(fv_violations - v0, 3);
    (void)fv_check_rc(1);
    CHECK_EQ(fv_violations - v0, 4);
    (void)fv_check_rc(VAULT_EROLLBACK);
    CHECK_EQ(fv_violations - v0, 4);
    free(text);
    fv_violations = v0;
}

int main(void) {
    RUN(test_seed_corpus);
    RUN(test_regressions);
    RUN(test_oracle_crypto);
    RUN(test_oracles_can_fail);
    return t_done();       /* the scratch directory goes at exit */
}
