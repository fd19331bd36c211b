/* The recovery recipe in docs/vault-format.md, run as written: it must print
 * every credential of a vault made by vault.h (format versions 1 and 2,
 * values with newlines and NULs aside), and refuse a wrong password and a
 * modified file. Needs bash and the openssl command line (tools/deps.sh
 * installs it); SKIPs only when the openssl binary is missing. */
// NO_ASAN (the work is done by bash and openssl)
// NO_TSAN (same)
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include "t.h"
#include <sys/wait.h>

static char out[8192];

static int sh(const char *cmd) {
    FILE *p = popen(cmd, "r");
    size_t n;
    int st;
    if (!p) return -1;
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *pathin(const char *dir, const char *name) {
    static char b[4][1200]; static int k;
    char *p = b[k++ & 3];
    snprintf(p, sizeof b[0], "%.600s/%.500s", dir, name);
    return p;
}

static void make_vault(const char *p, const char *rollback_state) {
    vault_options o;
    vault *v = NULL;
    memset(&o, 0, sizeof o);
    o.iterations = 1000; o.min_iterations = 1000;
    o.rollback_state = rollback_state;
    if (vault_create_ex(&v, p, "correct horse: battery", &o) != 0) { fprintf(stderr, "create failed\n"); exit(2); }
    vault_set(v, "coinbase.api_key", "organizations/abc/apiKeys/def");
    vault_set(v, "coinbase.pem", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n");
    vault_set(v, "empty", "");
    if (vault_save(v) != 0) { fprintf(stderr, "save failed\n"); exit(2); }
    vault_close(v);
}

static const char want[] =
    "coinbase.api_key=organizations/abc/apiKeys/def\n"
    "coinbase.pem=-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n\n"
    "empty=\n";

static void test_recovery_recipe_from_the_docs(void) {
    const char *d = t_dir("vault_recovery");
    char cmd[4000];
    if (sh("command -v openssl >/dev/null 2>&1") != 0) SKIP("the openssl command is not installed (bash tools/deps.sh)");
    snprintf(cmd, sizeof cmd,
             "awk '/recovery-recipe: begin/{f=1;next} /recovery-recipe: end/{f=0} f' docs/vault-format.md | sed '/^```/d' > '%s'",
             pathin(d, "recover.sh"));
    REQUIRE(sh(cmd) == 0);
    snprintf(cmd, sizeof cmd, "grep -c openssl '%s'", pathin(d, "recover.sh"));
    REQUIRE(sh(cmd) == 0 && atoi(out) >= 3);            /* the recipe was found */
    snprintf(cmd, sizeof cmd, "printf 'correct horse: battery\\n' > '%s' && printf 'wrong\\n' > '%s'",
             pathin(d, "pw"), pathin(d, "badpw"));
    REQUIRE(sh(cmd) == 0);
    make_vault(pathin(d, "v1.json"), NULL);
    make_vault(pathin(d, "v2.json"), pathin(d, "seen"));
    {
        const char *f[2] = {"v1.json", "v2.json"};
        int i;
        for (i = 0; i < 2; i++) {
            snprintf(cmd, sizeof cmd, "bash '%s' '%s' '%s' 2>&1", pathin(d, "recover.sh"), pathin(d, f[i]), pathin(d, "pw"));
            CHECK_EQ(sh(cmd), 0);
            CHECK(strcmp(out, want) == 0);
            if (strcmp(out, want) != 0) printf("  %s: the recipe printed [%s]\n", f[i], out);
        }
    }
    snprintf(cmd, sizeof cmd, "bash '%s' '%s' '%s' 2>&1", pathin(d, "recover.sh"), pathin(d, "v1.json"), pathin(d, "badpw"));
    CHECK_EQ(sh(cmd), 1);
    CHECK(strstr(out, "tag mismatch") != NULL && strstr(out, "organizations") == NULL);
    /* one ciphertext character changed: the tag check stops it */
    {
        char *b = (char *)malloc(65536), *c;
        size_t n;
        FILE *fp = fopen(pathin(d, "v1.json"), "r+");
        REQUIRE(fp != NULL && b != NULL);
        n = fread(b, 1, 65535, fp); b[n] = 0;
        c = strstr(b, "\"ciphertext\": \"");
        REQUIRE(c != NULL);
        c += 15;
        *c = *c == 'A' ? 'B' : 'A';
        rewind(fp);
        CHECK_EQ(fwrite(b, 1, n, fp), n);
        fclose(fp);
        free(b);
    }
    snprintf(cmd, sizeof cmd, "bash '%s' '%s' '%s' 2>&1", pathin(d, "recover.sh"), pathin(d, "v1.json"), pathin(d, "pw"));
    CHECK_EQ(sh(cmd), 1);
    CHECK(strstr(out, "tag mismatch") != NULL);
}

int main(void) {
    (void)t_rand;
    RUN(test_recovery_recipe_from_the_docs);
    return t_done();
}
