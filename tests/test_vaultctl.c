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
    snprintf(cmd, sizeof cmd, fmt, dir, dir, dir);
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

int main(void) {
    (void)t_rand;
    RUN(test_vaultctl_end_to_end);
    return t_done();
}
