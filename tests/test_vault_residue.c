/* vault.h key material in a core dump. A child opens a vault, saves it (so
 * PBKDF2, HMAC and AES all ran), then abort()s with a core limit set; the
 * parent searches the core file for the derived keys: PBKDF2's output, the
 * AES and HMAC keys, the AES round keys and the HMAC inner/outer states. Any
 * of them, in a vector register's note or in dead stack, decrypts the file.
 * The locked key pages are MADV_DONTDUMP, so a clean core holds none of them.
 * Runs once per CPU path (AES-NI/SHA-NI when present, then portable).
 * Also: vaultctl makes itself undumpable (no core at all while it waits for
 * a password).
 * Needs the kernel to write cores to a file (kernel.core_pattern not a pipe);
 * otherwise it SKIPs and says so.
 */
// NO_ASAN (ASan keeps stack frames on its own fake stack; the plain build is the one to check)
// NO_TSAN (same)
// NO_VALGRIND (a core of a process under valgrind is valgrind's, not the program's)
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include "t.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

static const char *pathin(const char *dir, const char *name) {
    static char b[4][1200]; static int k;
    char *p = b[k++ & 3];
    snprintf(p, sizeof b[0], "%.600s/%.500s", dir, name);
    return p;
}

static char *slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    struct stat st;
    char *b;
    size_t got = 0;
    if (fd < 0 || fstat(fd, &st) != 0) { if (fd >= 0) close(fd); return NULL; }
    b = (char *)malloc((size_t)st.st_size + 1);
    while (b && got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (b) b[got] = 0;
    *len = got;
    return b;
}

/* Where the kernel writes a core: "" when it goes to a pipe (systemd-coredump,
 * apport) or an absolute path outside our control. */
static int cores_to_cwd(void) {
    char pat[256] = "";
    FILE *f = fopen("/proc/sys/kernel/core_pattern", "r");
    if (!f) return 0;
    if (!fgets(pat, sizeof pat, f)) pat[0] = 0;
    fclose(f);
    return pat[0] && pat[0] != '|' && pat[0] != '/' && !strchr(pat, '%');
}

/* The core file the child left in dir (any name starting with "core"). */
static char *find_core(const char *dir, size_t *len) {
    char cmd[800], name[600];
    FILE *p;
    snprintf(cmd, sizeof cmd, "ls '%s' | grep '^core' | head -1", dir);
    p = popen(cmd, "r");
    if (!p) return NULL;
    if (!fgets(name, sizeof name, p)) { pclose(p); return NULL; }
    pclose(p);
    name[strcspn(name, "\n")] = 0;
    return slurp(pathin(dir, name), len);
}

static void core_on(void) {
    struct rlimit r;
    getrlimit(RLIMIT_CORE, &r);
    r.rlim_cur = r.rlim_max;
    if (geteuid() == 0) r.rlim_cur = r.rlim_max = RLIM_INFINITY;
    setrlimit(RLIMIT_CORE, &r);
    prctl(PR_SET_DUMPABLE, 1);
}

/* Forks; the child runs fn in dir and aborts. Returns the wait status. */
static int crash_in(const char *dir, int features, void (*fn)(const char *dir)) {
    int st = 0;
    pid_t pid;
    fflush(stdout); fflush(stderr);
    pid = fork();
    if (pid == 0) {
        vault_set_cpu_features(features);
        core_on();
        if (chdir(dir) != 0) _exit(3);
        fn(dir);
        abort();
    }
    waitpid(pid, &st, 0);
    return st;
}

static void child_create(const char *dir) {
    vault_options o;
    vault *v;
    (void)dir;
    memset(&o, 0, sizeof o);
    o.iterations = 1000; o.min_iterations = 1000;
    if (vault_create_ex(&v, "secure_config.json", "correct horse", &o) != 0) _exit(4);
    if (vault_set(v, "coinbase.api_key", "organizations/x/apiKeys/y") != 0 || vault_save(v) != 0) _exit(5);
    vault_close(v);
    _exit(0);
}

static void child_use(const char *dir) {
    vault_options o;
    vault *v;
    char buf[64];
    (void)dir;
    memset(&o, 0, sizeof o);
    o.iterations = 1000; o.min_iterations = 1000;
    if (vault_open_ex(&v, "secure_config.json", "correct horse", &o) != 0) _exit(6);
    if (vault_get(v, "coinbase.api_key", buf, sizeof buf) < 0) _exit(7);
    vault_wipe(buf, sizeof buf);
    /* the handle stays open: its keys are in MADV_DONTDUMP pages */
}

static void child_save(const char *dir) {
    vault_options o;
    vault *v;
    (void)dir;
    memset(&o, 0, sizeof o);
    o.iterations = 1000; o.min_iterations = 1000;
    if (vault_open_ex(&v, "secure_config.json", "correct horse", &o) != 0) _exit(6);
    if (vault_set(v, "binance.api_key", "b") != 0 || vault_save(v) != 0) _exit(8);
}

/* Every 16-byte piece of key material the file's password and salt give. */
#define NEEDLES 64
static int needles(const char *file, uint8_t nd[NEEDLES][16], const char *names[NEEDLES]) {
    size_t len = 0, n;
    char *text = slurp(file, &len);
    vault__json j;
    uint8_t salt[VAULT__SALT_LEN], master[32], info[64];
    vault__keyset *k = (vault__keyset *)malloc(sizeof *k);
    int c = 0, r;
    if (!text || !k || vault__json_parse(text, len, &j) != 0 ||
        vault__b64_decode(j.s[VAULT__F_SALT], j.n[VAULT__F_SALT], salt, sizeof salt) != VAULT__SALT_LEN) {
        free(text); free(k); return -1;
    }
    vault_pbkdf2_sha256("correct horse", 13, salt, VAULT__SALT_LEN, (uint32_t)j.num[VAULT__F_ITER], master, 32);
    n = sizeof vault__label_enc - 1; memcpy(info, vault__label_enc, n); info[n] = 1;
    vault_hmac_sha256(master, 32, info, n + 1, k->enc);
    n = sizeof vault__label_mac - 1; memcpy(info, vault__label_mac, n); info[n] = 1;
    vault_hmac_sha256(master, 32, info, n + 1, k->mac);
    vault__aes_expand(&k->aes, k->enc);
    vault__hmac_setkey(&k->hmac, k->mac, 32);
#define ADD(p, what) do { memcpy(nd[c], (p), 16); names[c] = (what); c++; } while (0)
    ADD(master, "PBKDF2 output (1st half)"); ADD(master + 16, "PBKDF2 output (2nd half)");
    ADD(k->mac, "MAC key (1st half)"); ADD(k->mac + 16, "MAC key (2nd half)");
    for (r = 0; r < 15; r++) ADD(k->aes.rk + 16 * r, r == 0 ? "AES key (1st half)" : r == 1 ? "AES key (2nd half)" : "AES round key");
    ADD(k->hmac.i, "HMAC inner state"); ADD(k->hmac.i + 4, "HMAC inner state");
    ADD(k->hmac.o, "HMAC outer state"); ADD(k->hmac.o + 4, "HMAC outer state");
#undef ADD
    free(text); free(k);
    return c;
}

static long find(const uint8_t *hay, size_t n, const uint8_t *needle) {
    size_t i;
    for (i = 0; i + 16 <= n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, 16) == 0) return (long)i;
    return -1;
}

static void check_path(int features, void (*fn)(const char *), const char *what) {
    const char *d = t_dir(features ? "vres_accel" : "vres_portable");
    uint8_t nd[NEEDLES][16];
    const char *names[NEEDLES];
    char *core;
    size_t len = 0;
    int st, c, i, found = 0;
    if (!cores_to_cwd()) SKIP("kernel.core_pattern sends cores to a pipe or elsewhere: no core to search");
    st = crash_in(d, features, child_create);
    REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = crash_in(d, features, fn);
    REQUIRE(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    core = find_core(d, &len);
    if (!core && !WCOREDUMP(st)) SKIP("the kernel wrote no core (RLIMIT_CORE could not be raised?)");
    REQUIRE(core != NULL);
    REQUIRE(len > 4096);
    c = needles(pathin(d, "secure_config.json"), nd, names);
    REQUIRE(c > 0);
    for (i = 0; i < c; i++) {
        long at = find((const uint8_t *)core, len, nd[i]);
        if (at >= 0) { found++; printf("  %s, %s: %s found in the core at offset %ld\n", features ? "accelerated" : "portable", what, names[i], at); }
    }
    printf("  %s path (cpu features %d), %s: %d of %d key pieces in a %zu-byte core\n",
           features ? "accelerated" : "portable", vault_cpu_features() & features, what, found, c, len);
    CHECK_EQ(found, 0);
    free(core);
    {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -f '%s'/core*", d);
        CHECK_EQ(system(cmd), 0);
    }
}

static void test_no_key_in_core_accelerated(void) {
    if (!vault_cpu_features()) SKIP("no AES-NI/SHA-NI on this CPU: the portable test covers it");
    check_path(-1, child_use, "abort after vault_open");
    check_path(-1, child_save, "abort after vault_save");
}
static void test_no_key_in_core_portable(void) {
    check_path(0, child_use, "abort after vault_open");
    check_path(0, child_save, "abort after vault_save");
}

/* The search can fail: a child that copies a key into ordinary memory
 * before it aborts leaves it in the core, and the search finds it. */
static void test_search_finds_a_planted_key(void) {
    const char *d = t_dir("vres_planted");
    uint8_t nd[NEEDLES][16];
    const char *names[NEEDLES];
    char *core;
    size_t len = 0;
    int st, c;
    if (!cores_to_cwd()) SKIP("kernel.core_pattern sends cores to a pipe or elsewhere: no core to search");
    st = crash_in(d, 0, child_create);
    REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    c = needles(pathin(d, "secure_config.json"), nd, names);
    REQUIRE(c > 2);
    /* the child derives the keys itself and keeps one on the heap */
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        uint8_t copy[NEEDLES][16];
        const char *nm[NEEDLES];
        volatile uint8_t *keep;
        core_on();
        if (chdir(d) != 0) _exit(3);
        if (needles("secure_config.json", copy, nm) < 3) _exit(4);
        keep = (volatile uint8_t *)malloc(16);
        memcpy((void *)keep, copy[2], 16);      /* the MAC key's first half */
        abort();
    }
    waitpid(pid, &st, 0);
    REQUIRE(WIFSIGNALED(st));
    core = find_core(d, &len);
    REQUIRE(core != NULL);
    CHECK(find((const uint8_t *)core, len, nd[2]) >= 0);
    free(core);
    {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -f '%s'/core*", d);
        CHECK_EQ(system(cmd), 0);
    }
}

/* The dead stack right after vault_open and vault_save return: the frames
 * of the KDF, HMAC and AES code lie below the caller's stack pointer until
 * something else overwrites them. Scanned in this process (no core needed). */
#define DEAD 12288
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static int scan_dead_stack(uint8_t nd[NEEDLES][16], int c) {
    volatile uint8_t here = 0;
    /* below this (small) frame: what the callee frames of vault_* left;
     * read in place, by a loop that itself needs no stack below it */
    const uint8_t *lo = (const uint8_t *)((uintptr_t)&here - DEAD), *hi = (const uint8_t *)((uintptr_t)&here - 512);
    int i, found = 0;
    for (i = 0; i < c; i++) {
        const uint8_t *q;
        for (q = lo; q + 16 <= hi; q++)
            if (q[0] == nd[i][0] && q[1] == nd[i][1] && q[2] == nd[i][2] && q[3] == nd[i][3] &&
                q[4] == nd[i][4] && q[5] == nd[i][5] && q[15] == nd[i][15] && q[9] == nd[i][9]) {
                int k = 0;
                while (k < 16 && q[k] == nd[i][k]) k++;
                if (k == 16) { found++; break; }
            }
    }
    return found;
}
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void clear_below(void) { uint8_t b[DEAD + 4096]; vault_wipe(b, sizeof b); }

static void dead_stack_after(int features) {
    const char *d = t_dir("vres_stack"), *p = pathin(d, "secure_config.json");
    uint8_t nd[NEEDLES][16];
    const char *names[NEEDLES];
    vault_options o;
    vault *v = NULL;
    int c, f1, f2;
    memset(&o, 0, sizeof o);
    o.iterations = 1000; o.min_iterations = 1000;
    vault_set_cpu_features(features);
    REQUIRE(vault_create_ex(&v, p, "correct horse", &o) == 0);
    vault_close(v);
    c = needles(p, nd, names);
    REQUIRE(c > 0);
    clear_below();
    REQUIRE(vault_open_ex(&v, p, "correct horse", &o) == 0);
    f1 = scan_dead_stack(nd, c);
    CHECK_EQ(vault_set(v, "k", "v"), 0);
    clear_below();
    CHECK_EQ(vault_save(v), 0);
    f2 = scan_dead_stack(nd, c);
    vault_close(v);
    vault_set_cpu_features(-1);
    printf("  %s: key pieces in the dead stack after vault_open %d, after vault_save %d\n",
           features ? "accelerated" : "portable", f1, f2);
    CHECK_EQ(f1, 0);
    CHECK_EQ(f2, 0);
}
static void test_no_key_in_dead_stack(void) {
    dead_stack_after(-1);
    dead_stack_after(0);
}

/* vaultctl, waiting for a password, gets SIGABRT: it must leave no core. */
static void test_vaultctl_is_not_dumpable(void) {
    const char *d = t_dir("vres_ctl");
    char exe[4096], cmd[1600];
    int in[2], st;
    pid_t pid;
    if (!cores_to_cwd()) SKIP("kernel.core_pattern sends cores to a pipe or elsewhere: no core to search");
    if (access("build/vaultctl", X_OK) != 0) SKIP("build/vaultctl not built");
    REQUIRE(realpath("build/vaultctl", exe) != NULL);
    REQUIRE(pipe(in) == 0);
    fflush(stdout); fflush(stderr);
    pid = fork();
    if (pid == 0) {
        core_on();
        if (chdir(d) != 0) _exit(3);
        dup2(in[0], 0); close(in[0]); close(in[1]);
        execl(exe, "vaultctl", "-f", "x.json", "--password-fd", "0", "list", (char *)NULL);
        _exit(4);
    }
    close(in[0]);
    {   /* wait until it runs vaultctl and sleeps (blocked reading the password) */
        char sp[64], buf[256];
        int tries;
        snprintf(sp, sizeof sp, "/proc/%d/stat", (int)pid);
        for (tries = 0; tries < 2000; tries++) {
            FILE *f = fopen(sp, "r");
            size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
            if (f) fclose(f);
            buf[n] = 0;
            if (strstr(buf, "(vaultctl) S")) break;
            usleep(5000);
        }
    }
    kill(pid, SIGABRT);
    waitpid(pid, &st, 0);
    close(in[1]);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK(!WCOREDUMP(st));
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '^core'", d);
    FILE *p = popen(cmd, "r");
    char n[16] = "";
    REQUIRE(p != NULL);
    if (!fgets(n, sizeof n, p)) n[0] = 0;
    pclose(p);
    CHECK_EQ(atoi(n), 0);
    snprintf(cmd, sizeof cmd, "rm -f '%s'/core*", d);
    CHECK_EQ(system(cmd), 0);
}

int main(void) {
    (void)t_rand;
    RUN(test_search_finds_a_planted_key);
    RUN(test_no_key_in_core_accelerated);
    RUN(test_no_key_in_core_portable);
    RUN(test_no_key_in_dead_stack);
    RUN(test_vaultctl_is_not_dumpable);
    return t_done();
}
