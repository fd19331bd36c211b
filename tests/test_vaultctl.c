/* examples/vaultctl end to end, passwords through --password-fd (the terminal
 * path is interactive). Needs build/vaultctl, which `make test` builds first. */
// NO_ASAN
// NO_TSAN
#define _GNU_SOURCE 1
#include "t.h"
#include <fcntl.h>
#include <signal.h>
#include <termios.h>
#include <sys/ioctl.h>
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

/* The terminal prompt: echo off while it reads, back on while vaultctl is
 * stopped by Ctrl-Z (SIGTSTP), off again after fg (SIGCONT). vaultctl runs on
 * a pseudo-terminal, in a foreground process group that is not orphaned
 * (stop signals to orphaned groups are discarded). */
static int echo_on(int fd) { struct termios t; return tcgetattr(fd, &t) == 0 ? !!(t.c_lflag & ECHO) : -1; }
static char proc_state(pid_t pid) {
    char p[64], b[256], *q;
    FILE *f;
    size_t n;
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    if (!(f = fopen(p, "r"))) return 0;
    n = fread(b, 1, sizeof b - 1, f); fclose(f); b[n] = 0;
    q = strrchr(b, ')');
    return q && q[1] == ' ' ? q[2] : 0;
}
static int wait_for(int (*cond)(int, pid_t), int fd, pid_t pid) {
    int i;
    for (i = 0; i < 2000; i++) { if (cond(fd, pid)) return 1; usleep(5000); }   /* up to 10 s */
    return 0;
}
static int c_echo_off(int fd, pid_t pid) { (void)pid; return echo_on(fd) == 0; }
static int c_stopped(int fd, pid_t pid) { (void)fd; return proc_state(pid) == 'T'; }

static void test_vaultctl_prompt_survives_ctrl_z(void) {
    const char *d = t_dir("vaultctl_tty");
    char exe[4096], vf[700];
    int m, s, st, pp[2];
    pid_t mid, kid = 0;
    const char *pre = getenv("LD_PRELOAD");
    if (access("build/vaultctl", X_OK) != 0) SKIP("build/vaultctl not built (make build/vaultctl)");
    if (pre && strstr(pre, "vgpreload"))   /* vaultctl would run under valgrind too, which does not stop on a raised SIGTSTP */
        SKIP("under valgrind: job control of the traced vaultctl is valgrind's (the plain run checks it)");
    REQUIRE(realpath("build/vaultctl", exe) != NULL);
    snprintf(vf, sizeof vf, "%s/secure_config.json", d);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "init 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\nsecret-value' | " CTL "set k 2>&1", d), 0);
    m = posix_openpt(O_RDWR | O_NOCTTY);
    REQUIRE(m >= 0);
    REQUIRE(grantpt(m) == 0 && unlockpt(m) == 0);
    s = open(ptsname(m), O_RDWR | O_NOCTTY);
    REQUIRE(s >= 0);
    REQUIRE(pipe(pp) == 0);
    fflush(stdout); fflush(stderr);
    mid = fork();
    REQUIRE(mid >= 0);
    if (mid == 0) {                      /* session leader owning the terminal */
        pid_t k;
        int ks;
        setsid();
        if (ioctl(s, TIOCSCTTY, 0) != 0) _exit(90);
        k = fork();
        if (k == 0) {
            setpgid(0, 0);
            tcsetpgrp(s, getpgrp());
            dup2(s, 0); dup2(s, 1); dup2(s, 2);
            execl(exe, "vaultctl", "-f", vf, "--iterations", "1000", "get", "k", (char *)NULL);
            _exit(91);
        }
        setpgid(k, k);
        tcsetpgrp(s, k);
        if (write(pp[1], &k, sizeof k) != (ssize_t)sizeof k) _exit(92);
        while (waitpid(k, &ks, 0) < 0) {}
        _exit(WIFEXITED(ks) ? WEXITSTATUS(ks) : 93);
    }
    close(pp[1]);
    CHECK_EQ(read(pp[0], &kid, sizeof kid), (ssize_t)sizeof kid);
    close(pp[0]);
    CHECK(wait_for(c_echo_off, s, kid));         /* prompting, echo off */
    kill(kid, SIGTSTP);
    CHECK(wait_for(c_stopped, s, kid));
    CHECK_EQ(echo_on(s), 1);                      /* stopped: the shell gets its echo back */
    kill(kid, SIGCONT);
    CHECK(wait_for(c_echo_off, s, kid));         /* fg: still reading, echo off again */
    CHECK_EQ(write(m, "pw1\n", 4), 4);
    REQUIRE(waitpid(mid, &st, 0) == mid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(echo_on(s), 1);
    {
        char buf[256];
        ssize_t n;
        int fl = fcntl(m, F_GETFL);
        fcntl(m, F_SETFL, fl | O_NONBLOCK);
        n = read(m, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st)) printf("  status 0x%x, the terminal shows: [%s]\n", st, buf);
        CHECK(strstr(buf, "pw1") == NULL);        /* the password was never echoed */
        CHECK(strstr(buf, "secret-value") != NULL); /* and get printed the value */
    }
    close(s); close(m);
}

/* export --env runs a command with the credentials in its environment;
 * audit prints the log of opens, failed decryptions and saves. */
static void test_vaultctl_export_env_and_audit(void) {
    const char *d = t_dir("vaultctl_export");
    if (access("build/vaultctl", X_OK) != 0) SKIP("build/vaultctl not built (make build/vaultctl)");
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "init 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\nak-123' | " CTL "set coinbase.api_key 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\nline1\\nline2' | " CTL "set binance-secret 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "export --env -- sh -c 'printf \"%%s|%%s\" \"$COINBASE_API_KEY\" \"$BINANCE_SECRET\"' 2>&1", d), 0);
    CHECK(strcmp(out, "ak-123|line1\nline2") == 0);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "export --env -- sh -c 'exit 7' 2>&1", d), 7);   /* the command's status */
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "export -- true 2>&1", d), 2);                  /* --env is required */
    CHECK_EQ(sh("printf 'nope\\n' | " CTL "export --env -- true 2>&1", d), 1);
    /* nothing of the values on disk besides the vault: no temp file, and the log has no secret */
    CHECK_EQ(sh("ls %s", d), 0);
    CHECK(strcmp(out, "secure_config.json\nsecure_config.json.audit.log\nsecure_config.json.lock\n") == 0);
    CHECK_EQ(sh("build/vaultctl -f %s/secure_config.json audit 2>&1", d), 0);
    CHECK(strstr(out, "create: created") != NULL);
    CHECK(strstr(out, "save: saved") != NULL);
    CHECK(strstr(out, "decryption failed:") != NULL);
    CHECK(strstr(out, "open: ") != NULL && strstr(out, "uid=") != NULL);
    CHECK(strstr(out, "ak-123") == NULL && strstr(out, "pw1") == NULL && strstr(out, "coinbase") == NULL);
    CHECK_EQ(sh("stat -c %%a %s/secure_config.json.audit.log", d), 0);
    CHECK(strcmp(out, "600\n") == 0);
    /* a log that cannot be written: named, it stops vaultctl; the default one only warns */
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "--audit-log %s/no/such/dir/log list 2>&1", d), 1);
    CHECK_EQ(sh("rm %s/secure_config.json.audit.log && mkdir %s/secure_config.json.audit.log && printf 'pw1\\n' | " CTL "list 2>&1", d), 0);
    CHECK(strstr(out, "going on without the audit log") != NULL && strstr(out, "coinbase.api_key") != NULL);
}

/* datakey create / show: 32 random bytes under datakey/NAME, never replaced,
 * in hex on stdout only with --hex. export leaves data keys out of the
 * environment (binary, often with a NUL byte, which used to stop the whole
 * export) and still exports the credentials. */
static void test_vaultctl_datakey(void) {
    const char *d = t_dir("vaultctl_datakey");
    char hex1[80];
    if (access("build/vaultctl", X_OK) != 0) SKIP("build/vaultctl not built (make build/vaultctl)");
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "init 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "datakey create trades 2>&1", d), 0);
    CHECK(strstr(out, "created data key datakey/trades") != NULL);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "datakey show trades 2>/dev/null", d), 0);
    CHECK(strcmp(out, "") == 0);                                   /* nothing on stdout without --hex */
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "datakey show trades 2>&1", d), 0);
    CHECK(strstr(out, "is a 32-byte data key") != NULL);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "datakey show --hex trades 2>/dev/null", d), 0);
    CHECK(strlen(out) == 65 && out[64] == '\n' && strspn(out, "0123456789abcdef") == 64);
    snprintf(hex1, sizeof hex1, "%s", out);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "get datakey/trades 2>/dev/null | od -An -tx1 -v | tr -d ' \\n'", d), 0);
    CHECK(strncmp(out, hex1, 64) == 0);                            /* the stored bytes, in hex */
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "datakey create trades 2>&1", d), 1);
    CHECK(strstr(out, "already exists") != NULL);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "datakey show --hex trades 2>/dev/null", d), 0);
    CHECK(strcmp(out, hex1) == 0);                                 /* not replaced */
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "datakey create orders 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "datakey show --hex orders 2>/dev/null", d), 0);
    CHECK(strlen(out) == 65 && strcmp(out, hex1) != 0);           /* random, one per name */
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "datakey show nosuch 2>&1", d), 1);
    CHECK(strstr(out, "no data key datakey/nosuch") != NULL);
    CHECK_EQ(sh("printf 'pw1\\nabc' | " CTL "set datakey/short 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "datakey show --hex short 2>&1", d), 1);
    CHECK(strstr(out, "not a data key") != NULL && strstr(out, "abc") == NULL);
    CHECK_EQ(sh("printf 'nope\\n' | " CTL "datakey show --hex trades 2>&1", d), 1);
    CHECK(strstr(out, "authentication failed") != NULL && strlen(out) < 200);
    CHECK_EQ(sh(CTL "datakey 2>&1 </dev/null", d), 2);
    CHECK_EQ(sh(CTL "datakey make x 2>&1 </dev/null", d), 2);
    CHECK_EQ(sh(CTL "datakey show 2>&1 </dev/null", d), 2);
    CHECK_EQ(sh(CTL "--hex list 2>&1 </dev/null", d), 2);
    CHECK_EQ(sh("printf 'pw1\\nak-1' | " CTL "set coinbase.api_key 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\nk\\000y' | " CTL "set datakey/withnul 2>&1", d), 0);
    CHECK_EQ(sh("printf 'pw1\\n' | " CTL "export --env -- sh -c 'env | grep -c \"^DATAKEY\"; printf \"%%s\" \"$COINBASE_API_KEY\"' 2>&1", d), 0);
    CHECK(strcmp(out, "0\nak-1") == 0);
}

int main(void) {
    (void)t_rand;
    RUN(test_vaultctl_end_to_end);
    RUN(test_vaultctl_set_takes_any_bytes);
    RUN(test_vaultctl_options_are_strict);
    RUN(test_vaultctl_password_sources);
    RUN(test_vaultctl_prompt_survives_ctrl_z);
    RUN(test_vaultctl_export_env_and_audit);
    RUN(test_vaultctl_datakey);
    return t_done();
}
