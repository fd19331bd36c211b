/* The fuzz target fuzz/fuzz_vault_loader.c in the ordinary test builds
 * (plain, ASan+UBSan, TSan):
 *   - makes the seed corpus from real vault files (empty, one credential,
 *     several, long names and values, after a rekey) into
 *     $PLG_FUZZ_SEEDS/fuzz_vault_loader (default build/fuzz/seeds/...), which
 *     `make fuzz` / `make test-fuzz` start from, and runs each seed: the file
 *     as is, with the tag fixed, with the save round trip, and the plaintext
 *     map alone (flags bit 1);
 *   - replays every input in fuzz/regress/fuzz_vault_loader/: each crash
 *     libFuzzer ever finds is copied there and stays a regression test. */
#include "fuzz/fuzz_vault_loader.c"
#include "t.h"
#include "fuzz_replay.h"

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
    CHECK(nseeds >= 36);
    printf("  %d seed inputs in %s\n", nseeds, seeds_dir());
}

static void test_regressions(void) { t_fuzz_replay("fuzz_vault_loader", LLVMFuzzerTestOneInput); }

int main(void) {
    RUN(test_seed_corpus);
    RUN(test_regressions);
    return t_done();       /* the scratch directory goes at exit */
}
