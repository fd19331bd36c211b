/* vault.h compile-time options: VAULT_STATIC, allocator overrides (every
 * allocation freed), VAULT_ASSERT; and the #errors for half an allocator
 * override and for a missing _GNU_SOURCE. */
// NO_TSAN (vault.h starts no thread and neither does this test: nothing for TSan to check)
#define _GNU_SOURCE 1
#include <stddef.h>
static long n_alloc, n_free, n_live;
static void *my_malloc(size_t n);
static void *my_realloc(void *p, size_t n);
static void my_free(void *p);
#define VAULT_MALLOC(sz) my_malloc(sz)
#define VAULT_REALLOC(p, sz) my_realloc(p, sz)
#define VAULT_FREE(p) my_free(p)
static int n_assert;
#define VAULT_ASSERT(x) ((x) ? (void)0 : (void)n_assert++)
#define VAULT_STATIC
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include "t.h"

static void *my_malloc(size_t n) { void *p = malloc(n); if (p) { n_alloc++; n_live++; } return p; }
static __attribute__((unused)) void *my_realloc(void *p, size_t n) { void *q = realloc(p, n); if (q && !p) { n_alloc++; n_live++; } return q; }
static void my_free(void *p) { if (p) { n_free++; n_live--; } free(p); }

static void test_static_with_own_allocator(void) {
    const char *d = t_dir("vault_config");
    char path[600], buf[16];
    vault_options o;
    vault *v;
    int rc;
    memset(&o, 0, sizeof o);
    o.iterations = 1000; o.min_iterations = 1000;
    snprintf(path, sizeof path, "%s/v.json", d);
    rc = vault_create_ex(&v, path, "pw", &o);
    CHECK_EQ(rc, 0);
    if (rc) return;
    CHECK_EQ(vault_set(v, "a", "b"), 0);
    CHECK_EQ(vault_save(v), 0);
    vault_close(v);
    CHECK_EQ(vault_open_ex(&v, path, "bad", &o), VAULT_EAUTH);
    rc = vault_open_ex(&v, path, "pw", &o);
    CHECK_EQ(rc, 0);
    if (rc) return;
    CHECK_EQ(vault_get(v, "a", buf, sizeof buf), 1);
    vault_close(v);
    CHECK(n_alloc > 0);
    CHECK_EQ(n_live, 0);
    CHECK_EQ(n_alloc, n_free);
    CHECK_EQ(n_assert, 0);
    /* every other public function is static here too: reference a few */
    CHECK(vault_strerror(VAULT_EPERM) != NULL);
    CHECK(vault_cpu_features() >= 0);
}

/* Compiles a snippet; returns the compiler's exit status and its messages. */
static int try_compile(const char *flags, const char *src, char *msg, size_t cap) {
    char cmd[1024];
    const char *tmp = t_dir("vault_config_cc");
    FILE *f, *p;
    size_t n;
    snprintf(cmd, sizeof cmd, "%s/x.c", tmp);
    f = fopen(cmd, "w");
    if (!f) return -1;
    fputs(src, f); fclose(f);
    snprintf(cmd, sizeof cmd, "cc -std=c11 %s -I. -fsyntax-only %s/x.c 2>&1", flags, tmp);
    p = popen(cmd, "r");
    if (!p) return -1;
    n = fread(msg, 1, cap - 1, p); msg[n] = 0;
    return pclose(p);
}

static void test_misconfigurations_are_errors(void) {
    char msg[4096];
    if (system("command -v cc >/dev/null 2>&1") != 0) SKIP("no cc on PATH");
    CHECK(try_compile("", "#define VAULT_MALLOC(n) malloc(n)\n#define VAULT_IMPLEMENTATION\n#include \"vault.h\"\n", msg, sizeof msg) != 0);
    CHECK(strstr(msg, "VAULT_MALLOC, VAULT_REALLOC and VAULT_FREE") != NULL);
    CHECK(try_compile("", "#include <stdio.h>\n#define VAULT_IMPLEMENTATION\n#include \"vault.h\"\n", msg, sizeof msg) != 0);
    CHECK(strstr(msg, "needs _GNU_SOURCE") != NULL);
    CHECK_EQ(try_compile("-D_GNU_SOURCE -Wall -Wextra -Werror", "#include <stdio.h>\n#define VAULT_IMPLEMENTATION\n#include \"vault.h\"\n", msg, sizeof msg), 0);
    CHECK_EQ(try_compile("-Wall -Wextra -Werror -DVAULT_NO_ACCEL", "#define VAULT_IMPLEMENTATION\n#include \"vault.h\"\n", msg, sizeof msg), 0);
}

int main(void) {
    (void)t_rand;
    RUN(test_static_with_own_allocator);
    RUN(test_misconfigurations_are_errors);
    return t_done();
}
