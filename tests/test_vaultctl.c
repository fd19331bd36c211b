/* examples/vaultctl end to end, passwords through --password-fd (the terminal
 * path is interactive). Needs build/vaultctl, which `make test` builds first. */
// NO_ASAN
// NO_TSAN
#define _GNU_SOURCE 1
#include "t.h"
#include <sys/wait.h>

static char out[4096];

/* Runs a shell command; stdout+stderr into out; returns the exit status. */
static int sh(const char *fmt, const char *dir) {
    char cmd[2048];
    FILE *p;
    size_t n;
    int st;
    snprintf(cmd, sizeof cmd, fmt, dir, dir, dir, dir, dir);
    p = popen(cmd, "r");
    if (!p) return -1;
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define CTL "build/vaultctl -f %s/secure_config.json --iterations 1000 --password-fd 0 "

static void test_vaultctl_end_to_end(void) {
    const char *d = t_dir("vaultctl");
    struct stat st;
    char path[600];
    if (access("build/vaultctl", X_OK) != 0) SKIP("build/vaultctl not built (make build/vaultctl)");
    snprintf(path, sizeof path, "%s/secure_config.json", d);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "init 2>&1", d), 0);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "init 2>&1", d), 1);                   /* exists */
    CHECK(strstr(out, "already exists") != NULL);
    CHECK_EQ(sh("printf 'pw1\\nAKIA-123/+=\\n' | " CTL "set coinbase.key 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\nsecond\\n' | " CTL "set binance.key 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "get coinbase.key 2>/dev/null", d), 0);
    CHECK(strcmp(out, "AKIA-123/+=\n") == 0);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "list 2>/dev/null", d), 0);
    CHECK(strcmp(out, "binance.key\ncoinbase.key\n") == 0);
    CHECK_EQ(sh("printf 'nope\\n' | " CTL "list 2>&1", d), 1);
    CHECK(strstr(out, "authentication failed") != NULL);
    CHECK_EQ(sh("printf 'pw1\\npw2\\n' | " CTL "--new-password-fd 0 rekey 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "list 2>&1", d), 1);
    CHECK_EQ(sh("printf 'pw2\\n' | " CTL "rm binance.key 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw2\\n' | " CTL "--audit list 2>&1", d), 0);
    CHECK(strstr(out, "coinbase.key") != NULL && strstr(out, "binance.key") == NULL);
    CHECK(strstr(out, "audit: open") != NULL);
    CHECK_EQ(sh("printf 'pw2\\n' | " CTL "get binance.key 2>&1", d), 1);
    CHECK(strstr(out, "no credential") != NULL);
    CHECK_EQ(sh("build/vaultctl -f %s/secure_config.json --password pw2 list 2>&1", d), 2);   /* never from argv */
    CHECK(strstr(out, "never taken from the command line") != NULL);
    CHECK_EQ(sh("chmod 644 %s/secure_config.json && printf 'pw2\\n' | " CTL "list 2>&1", d), 1);
    CHECK(strstr(out, "chmod 600") != NULL);
}

static const char pem[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIBqZ7wr8k3hQ0yK5v0m8H4Pq1mNf6bX9yY0v3YcX2L0aoAoGCCqGSM49\n"
    "AwEHoUQDQgAEx1n3wq5D0b1Vf7Tq8cZ2r4Wm9nYh0kP3s6dJ5uQ1mB7x2vK8cR4t\n"
    "-----END EC PRIVATE KEY-----\n";

/* A PEM key (Coinbase CDP's format) through `set`: stdin to its end, or
 * --file; `get` gives back exactly the bytes stored. */
static void test_vaultctl_set_takes_any_bytes(void) {
    const char *d = t_dir("vaultctl_bytes");
    char pemf[600];
    FILE *f;
    if (access("build/vaultctl", X_OK) != 0) SKIP("build/vaultctl not built (make build/vaultctl)");
    snprintf(pemf, sizeof pemf, "%s/cdp.pem", d);
    f = fopen(pemf, "w");
    REQUIRE(f != NULL);
    fputs(pem, f);
    fclose(f);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "init 2>&1", d), 0);
    CHECK_EQ(sh("(printf 'pw1\\n'; cat %s/cdp.pem) | " CTL "set coinbase.cdp_key 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "get coinbase.cdp_key 2>/dev/null", d), 0);
    CHECK(strcmp(out, pem) == 0);
    if (strcmp(out, pem) != 0) printf("  got back: [%s]\n", out);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "set --file %s/cdp.pem other.key 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "get other.key 2>/dev/null", d), 0);
    CHECK(strcmp(out, pem) == 0);
    /* no newline added or taken away */
    CHECK_EQ(sh("printf 'pw1\\nno-newline' | " CTL "set plain 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "get plain 2>/dev/null", d), 0);
    CHECK(strcmp(out, "no-newline") == 0);
    CHECK_EQ(sh("build/vaultctl --help 2>&1", d), 0);
    CHECK(strstr(out, "end of input") != NULL);
    CHECK(strstr(out, "--file") != NULL);
}

/* Options: getopt_long, numbers parsed strictly, --help and --version. */
static void test_vaultctl_options_are_strict(void) {
    const char *d = t_dir("vaultctl_opts");
    if (access("build/vaultctl", X_OK) != 0) SKIP("build/vaultctl not built (make build/vaultctl)");
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "init 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\n' | build/vaultctl -f %s/secure_config.json --password-fd three list 2>&1", d), 2);
    CHECK(strstr(out, "three") != NULL);
    CHECK_EQ(sh("printf 'pw1\\n' | build/vaultctl -f %s/secure_config.json --password-fd 0x list 2>&1", d), 2);
    CHECK_EQ(sh("printf 'pw1\\n' | build/vaultctl -f %s/secure_config.json --password-fd -1 list 2>&1", d), 2);
    CHECK_EQ(sh("printf 'pw1\\n' | build/vaultctl -f %s/secure_config.json --iterations 1000x --password-fd 0 list 2>&1", d), 2);
    CHECK_EQ(sh("printf 'pw1\\n' | build/vaultctl -f %s/secure_config.json --iterations 99999999999 --password-fd 0 list 2>&1", d), 2);
    CHECK_EQ(sh("printf 'pw1\\n' | build/vaultctl -f %s/secure_config.json --iterations=1000 --password-fd=0 list 2>&1", d), 0);
    CHECK_EQ(sh("build/vaultctl --version 2>&1", d), 0);
    CHECK(strstr(out, "vaultctl") != NULL);
    CHECK_EQ(sh("build/vaultctl --no-such-option list 2>&1", d), 2);
    CHECK_EQ(sh("build/vaultctl -h 2>&1", d), 0);
    CHECK(strstr(out, "usage") != NULL);
}

/* Password sources besides the terminal: a file only its owner can read,
 * $VAULT_PASSWORD_FILE, a helper command. */
static void test_vaultctl_password_sources(void) {
    const char *d = t_dir("vaultctl_pwsrc");
    if (access("build/vaultctl", X_OK) != 0) SKIP("build/vaultctl not built (make build/vaultctl)");
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "init 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\nv1' | " CTL "set k 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\nsecond line\\n' > %s/pw && chmod 600 %s/pw", d), 0);
#define NOFD "build/vaultctl -f %s/secure_config.json --iterations 1000 "
    CHECK_EQ(sh(NOFD "--password-file %s/pw get k 2>&1", d), 0);
    CHECK(strcmp(out, "v1") == 0);
    CHECK_EQ(sh("VAULT_PASSWORD_FILE=%s/pw " NOFD "get k 2>&1 </dev/null", d), 0);
    CHECK(strcmp(out, "v1") == 0);
    CHECK_EQ(sh(NOFD "--password-command 'printf pw1' get k 2>&1 </dev/null", d), 0);
    CHECK(strcmp(out, "v1") == 0);
    CHECK_EQ(sh(NOFD "--password-command 'exit 3' get k 2>&1 </dev/null", d), 1);
    CHECK(strstr(out, "password command failed") != NULL);
    /* a password file others can read is refused, and says how to fix it */
    CHECK_EQ(sh("chmod 640 %s/pw && build/vaultctl -f %s/secure_config.json --password-file %s/pw list 2>&1", d), 1);
    CHECK(strstr(out, "chmod 600") != NULL);
    CHECK_EQ(sh("chmod 600 %s/pw && ln -sf pw %s/pwlink && build/vaultctl -f %s/secure_config.json --password-file \"$(dirname %s/pwlink)/pwlink\" list 2>&1", d), 1);
    CHECK_EQ(sh("build/vaultctl -f %s/secure_config.json --password-file %s/pw --password-fd 0 list 2>&1", d), 2);
    /* rekey with a new-password file */
    CHECK_EQ(sh("printf 'pw2\\n' > %s/pw2 && chmod 600 %s/pw2 && " NOFD "--password-file %s/pw --new-password-file %s/pw2 rekey 2>&1", d), 0);
    CHECK_EQ(sh(NOFD "--password-file %s/pw2 get k 2>&1", d), 0);
    CHECK(strcmp(out, "v1") == 0);
#undef NOFD
}

int main(void) {
    (void)t_rand;
    RUN(test_vaultctl_end_to_end);
    RUN(test_vaultctl_set_takes_any_bytes);
    RUN(test_vaultctl_options_are_strict);
    RUN(test_vaultctl_password_sources);
    return t_done();
}
