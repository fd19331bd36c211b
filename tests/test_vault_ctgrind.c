/* ctgrind: constant-time check of vault.h under valgrind memcheck.
 *
 * Secrets (keys, passwords, plaintext) are marked undefined with
 * VALGRIND_MAKE_MEM_UNDEFINED; memcheck then reports every conditional jump
 * and every memory address computed from them. Each section must add no
 * error. Values public by design are handed back with VAULT_CT_DECLASSIFY
 * (the MAC and padding verdicts, lengths, ciphertext and tag). Started
 * normally, this binary re-runs itself under valgrind; without valgrind it
 * SKIPs, except with PLG_CI=1 (CI installs valgrind) or when valgrind is
 * installed but the check still cannot run: then it fails. Only the plain build: sanitizer builds cannot run under valgrind.
 * Valgrind does not emulate SHA-NI, so under it the SHA-256 code is always
 * the portable one; AES-NI is emulated and is checked too. */
// NO_ASAN
// NO_TSAN
// NO_VALGRIND (it starts itself under valgrind, in the plain run)
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#define HAVE_MEMCHECK 1
#endif
#endif
#ifdef HAVE_MEMCHECK
#include <valgrind/memcheck.h>
#define VAULT_CT_SECRET(p, n) ((void)VALGRIND_MAKE_MEM_UNDEFINED((p), (n)))
#define VAULT_CT_DECLASSIFY(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#endif
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include "t.h"

#ifdef HAVE_MEMCHECK
#define SECRET(p, n) VAULT_CT_SECRET(p, n)
#define PUBLIC(p, n) VAULT_CT_DECLASSIFY(p, n)

static unsigned long errors(void) { return (unsigned long)VALGRIND_COUNT_ERRORS; }
static void fill(uint8_t *p, size_t n, uint8_t k) { size_t i; for (i = 0; i < n; i++) p[i] = (uint8_t)(i * 31 + k); }

static unsigned long aes_section(void) {
    uint8_t key[32], iv[16], pt[100], ct[112], back[112], blk[16];
    size_t n;
    unsigned long e0 = errors();
    fill(key, 32, 1); fill(iv, 16, 2); fill(pt, sizeof pt, 3);
    SECRET(key, 32); SECRET(pt, sizeof pt);
    vault_aes256_encrypt_block(key, pt, blk);
    vault_aes256_decrypt_block(key, blk, blk);
    vault_aes256_cbc_encrypt(key, iv, pt, sizeof pt, ct, &n);
    PUBLIC(ct, sizeof ct);                             /* ciphertext is public */
    vault_aes256_cbc_decrypt(key, iv, ct, n, back, &n); /* padding verdict + length declassified inside */
    ct[n] ^= 0;                                        /* (n is public) */
    CHECK_EQ(n, sizeof pt);
    /* a bad-padding decryption takes the same constant-time check */
    uint8_t bad[32];
    memset(bad, 0xee, sizeof bad);
    vault_aes256_cbc_decrypt(key, iv, bad, sizeof bad, back, &n);
    PUBLIC(key, 32); PUBLIC(pt, sizeof pt);
    return errors() - e0;
}

static unsigned long sha_section(void) {
    uint8_t msg[300], key[100], out[40];
    unsigned long e0 = errors();
    fill(msg, sizeof msg, 4); fill(key, sizeof key, 5);
    SECRET(msg, sizeof msg); SECRET(key, sizeof key);
    vault_sha256(msg, sizeof msg, out);
    vault_hmac_sha256(key, 20, msg, 77, out);
    vault_hmac_sha256(key, 100, msg, 300, out);        /* key longer than a block: hashed first */
    vault_pbkdf2_sha256(key, 30, "salt", 4, 50, out, 40);
    PUBLIC(msg, sizeof msg); PUBLIC(key, sizeof key);
    return errors() - e0;
}

static unsigned long ct_equal_section(void) {
    uint8_t a[32], b[32];
    int r;
    unsigned long e0 = errors();
    fill(a, 32, 6); fill(b, 32, 6); b[31] ^= 1;
    SECRET(a, 32); SECRET(b, 32);
    r = vault_ct_equal(a, b, 32);
    PUBLIC(&r, sizeof r);
    CHECK_EQ(r, 0);
    return errors() - e0;
}

/* The store: the password is secret from strlen on, the map while it is
 * encrypted, and everything derived (keys, tag before the verdict). */
static unsigned long store_section(void) {
    const char *d = t_dir("vault_ctgrind");
    char path[600], buf[32];
    vault_options o;
    vault *v = NULL;
    unsigned long e0 = errors();
    int rc;
    memset(&o, 0, sizeof o);
    o.iterations = 1000; o.min_iterations = 1000;
    snprintf(path, sizeof path, "%s/v.json", d);
    rc = vault_create_ex(&v, path, "correct horse battery staple", &o);
    CHECK_EQ(rc, 0);
    if (rc) return 1;
    vault_set(v, "exchange.api_key", "AKIA0123456789");
    CHECK_EQ(vault_save(v), 0);
    vault_close(v);
    CHECK_EQ(vault_open_ex(&v, path, "wrong", &o), VAULT_EAUTH);
    rc = vault_open_ex(&v, path, "correct horse battery staple", &o);
    CHECK_EQ(rc, 0);
    if (rc) return 1;
    CHECK_EQ(vault_get(v, "exchange.api_key", buf, sizeof buf), 14);
    CHECK_EQ(vault_rekey(v, "new password"), 0);
    vault_close(v);
    return errors() - e0;
}

static void run_sections(const char *label) {
    unsigned long a = aes_section(), s = sha_section(), c = ct_equal_section(), st = store_section();
    printf("  %s: memcheck errors from secrets: AES %lu, SHA-256/HMAC/PBKDF2 %lu, ct_equal %lu, store %lu\n",
           label, a, s, c, st);
    CHECK_EQ(a, 0); CHECK_EQ(s, 0); CHECK_EQ(c, 0); CHECK_EQ(st, 0);
}

static void test_portable_path_is_constant_time(void) {
    vault_set_cpu_features(0);
    run_sections("portable");
    vault_set_cpu_features(-1);
}

static void test_accelerated_path_is_constant_time(void) {
    int f = vault_cpu_features();
    if (!(f & VAULT_CPU_AESNI)) SKIP("no AES-NI on this CPU (or valgrind hides it)");
    printf("  under valgrind the CPU offers: %s%s\n", f & VAULT_CPU_AESNI ? "AES-NI " : "",
           f & VAULT_CPU_SHANI ? "SHA-NI" : "(no SHA-NI: valgrind does not emulate it; SHA-256 runs portable)");
    run_sections("accelerated");
}

/* The checker itself must see a secret-dependent branch and index. */
static volatile int sink;
static void test_checker_catches_a_leak(void) {
    static const uint8_t table[256] = {1};
    uint8_t k[2] = {3, 200};
    unsigned long e0 = errors();
    SECRET(k, 2);
    if (k[0] == 3) sink = 1;                           /* secret-dependent branch */
    sink = table[k[1]];                                /* secret-dependent index */
    PUBLIC(k, 2);
    printf("  planted leaks found: %lu (want 2)\n", errors() - e0);
    CHECK_EQ(errors() - e0, 2);
}
#endif

/* Reached only when the check could not run. That is a SKIP on a machine
 * without valgrind, and a failure where it must run: valgrind installed (then
 * the build must have had its header, and the re-exec must work) or PLG_CI=1
 * (CI installs valgrind: tools/deps.sh). */
static const char *ct_not_run = "valgrind is not installed";
static void test_constant_time_check_ran(void) {
    const char *ci = getenv("PLG_CI");
    int must = (ci && !strcmp(ci, "1")) || system("command -v valgrind >/dev/null 2>&1") == 0;
    if (!must) SKIP("valgrind is not installed (apt-get install valgrind): constant-time check not run");
    fprintf(stderr, "  the constant-time check did not run: %s\n", ct_not_run);
    int ran = 0;
    CHECK(ran);
}

int main(int argc, char **argv) {
    (void)argc; (void)t_rand;
#ifdef HAVE_MEMCHECK
    if (!RUNNING_ON_VALGRIND) {
        if (system("command -v valgrind >/dev/null 2>&1") == 0) {
            char *args[] = {(char *)"valgrind", (char *)"-q", (char *)"--error-limit=no", (char *)"--num-callers=8",
                            argv[0], NULL};
            fflush(stdout);
            execvp("valgrind", args);
            perror("execvp valgrind");
            ct_not_run = "valgrind is installed but could not be started";
        }
        RUN(test_constant_time_check_ran);
        return t_done();
    }
    RUN(test_checker_catches_a_leak);
    RUN(test_portable_path_is_constant_time);
    RUN(test_accelerated_path_is_constant_time);
#else
    (void)argv; (void)t_dir;
    ct_not_run = "built without <valgrind/memcheck.h> (apt-get install valgrind, then rebuild)";
    RUN(test_constant_time_check_ran);
#endif
    return t_done();
}
