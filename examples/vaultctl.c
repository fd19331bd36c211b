/* vaultctl: manage a vault.h credential store (secure_config.json) from the shell.
 * Build:  cc -O2 -I. examples/vaultctl.c -o vaultctl
 *
 *   vaultctl [options] init            create the file (password asked twice)
 *   vaultctl [options] set NAME        value from the terminal (no echo) or one line of stdin
 *   vaultctl [options] get NAME        print the value
 *   vaultctl [options] list            print the names, one a line
 *   vaultctl [options] rm NAME         remove a credential
 *   vaultctl [options] rekey           new password and new salt
 * options:
 *   -f FILE                the vault (default $VAULT_FILE, else ./secure_config.json)
 *   --password-fd N        read the password as one line from file descriptor N
 *   --new-password-fd N    same, for the new password of init/rekey (may be the same N:
 *                          lines are read one after the other)
 *   --iterations N         PBKDF2 count for init/rekey (default 600000); also accepts
 *                          existing files down to N
 *   --audit                print the store's audit events to stderr
 * Passwords never come from argv (they would show in ps and shell history):
 * from the terminal with echo off, or from a file descriptor. */
#define VAULT_IMPLEMENTATION
#include "vault.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

#define LINE_MAX_ (VAULT_VALUE_MAX + 2)

static struct termios saved_tio;
static int tty_fd = -1, tty_echo_off;

static void restore_tty(void) {
    if (tty_echo_off) { tcsetattr(tty_fd, TCSAFLUSH, &saved_tio); tty_echo_off = 0; }
}
static void on_signal(int sig) {
    restore_tty();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* One line from fd, byte by byte (so several lines can come from one fd);
 * the newline is dropped. Returns the length, or -1. */
static long read_line_fd(int fd, char *buf, size_t cap) {
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) { if (n == 0) return -1; break; }
        if (c == '\n') break;
        if (n + 1 >= cap) return -1;
        buf[n++] = c;
    }
    if (n > 0 && buf[n - 1] == '\r') n--;
    buf[n] = 0;
    return (long)n;
}

/* From the terminal with echo off. */
static long read_secret_tty(const char *prompt, char *buf, size_t cap) {
    struct termios t;
    long n;
    if (tty_fd < 0) tty_fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (tty_fd < 0) { fprintf(stderr, "vaultctl: no terminal to ask for the secret (use --password-fd N)\n"); return -1; }
    if (tcgetattr(tty_fd, &saved_tio) != 0) return -1;
    t = saved_tio;
    t.c_lflag &= (tcflag_t)~(ECHO | ECHONL);
    t.c_lflag |= ICANON;
    signal(SIGINT, on_signal); signal(SIGTERM, on_signal); signal(SIGHUP, on_signal);
    if (write(tty_fd, prompt, strlen(prompt)) < 0) return -1;
    tty_echo_off = 1;
    tcsetattr(tty_fd, TCSAFLUSH, &t);
    n = read_line_fd(tty_fd, buf, cap);
    restore_tty();
    if (write(tty_fd, "\n", 1) < 0) { /* nothing to do */ }
    return n;
}

static long get_secret(int fd, const char *prompt, char *buf, size_t cap) {
    long n = fd >= 0 ? read_line_fd(fd, buf, cap) : read_secret_tty(prompt, buf, cap);
    if (n < 0) fprintf(stderr, "vaultctl: could not read %s\n", fd >= 0 ? "a line from the password fd" : "the secret");
    return n;
}

static void audit_print(const vault_audit_event *e, void *ud) {
    (void)ud;
    fprintf(stderr, "vaultctl: audit: %s: %s (%s)\n", vault_audit_name(e->event), e->message,
            e->result ? vault_strerror(e->result) : "ok");
}

static int print_name(const char *name, void *ctx) { (void)ctx; puts(name); return 0; }

static int usage(void) {
    fprintf(stderr, "usage: vaultctl [-f FILE] [--password-fd N] [--new-password-fd N] [--iterations N] [--audit]\n"
                    "                init | set NAME | get NAME | list | rm NAME | rekey\n");
    return 2;
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "vaultctl: %s: %s\n", what, vault_strerror(rc));
    return 1;
}

/* Secrets live in one locked, non-dumpable buffer, wiped at exit. */
static struct { char pw[1024], pw2[1024], value[LINE_MAX_]; } *sec;

static void wipe_secrets(void) { if (sec) vault_wipe(sec, sizeof *sec); }

int main(int argc, char **argv) {
    const char *file = getenv("VAULT_FILE"), *cmd = NULL, *name = NULL;
    int pwfd = -1, newfd = -1, i, rc, ret = 0;
    vault_options o;
    vault *v = NULL;
    memset(&o, 0, sizeof o);
    /* No core dump and no ptrace by other processes of this user: the
     * password, the keys and the secrets are in this process's memory. */
    if (prctl(PR_SET_DUMPABLE, 0) != 0) { perror("vaultctl: prctl(PR_SET_DUMPABLE)"); return 1; }
    if (!file || !*file) file = "secure_config.json";
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-f") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "--password-fd") && i + 1 < argc) pwfd = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--new-password-fd") && i + 1 < argc) newfd = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iterations") && i + 1 < argc) {
            o.iterations = (uint32_t)strtoul(argv[++i], NULL, 10);
            if (o.iterations < VAULT_DEFAULT_MIN_ITERATIONS) o.min_iterations = o.iterations;
        } else if (!strcmp(argv[i], "--audit")) o.audit = audit_print;
        else if (!strncmp(argv[i], "--password", 10)) { fprintf(stderr, "vaultctl: passwords are never taken from the command line\n"); return 2; }
        else if (argv[i][0] == '-') return usage();
        else if (!cmd) cmd = argv[i];
        else if (!name) name = argv[i];
        else return usage();
    }
    if (!cmd) return usage();
    int needs_name = !strcmp(cmd, "set") || !strcmp(cmd, "get") || !strcmp(cmd, "rm");
    if (needs_name != (name != NULL)) return usage();

    sec = (__typeof__(sec))mmap(NULL, sizeof *sec, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sec == MAP_FAILED) { sec = NULL; fprintf(stderr, "vaultctl: out of memory\n"); return 1; }
    (void)mlock(sec, sizeof *sec);                   /* best effort */
#ifdef MADV_DONTDUMP
    (void)madvise(sec, sizeof *sec, MADV_DONTDUMP);
#endif
    atexit(wipe_secrets);

    if (!strcmp(cmd, "init")) {
        if (get_secret(pwfd >= 0 ? pwfd : newfd, "New vault password: ", sec->pw, sizeof sec->pw) < 0) return 1;
        if (pwfd < 0 && newfd < 0) {
            if (get_secret(-1, "Repeat password: ", sec->pw2, sizeof sec->pw2) < 0) return 1;
            if (strcmp(sec->pw, sec->pw2) != 0) { fprintf(stderr, "vaultctl: passwords differ\n"); return 1; }
        }
        if (!sec->pw[0]) { fprintf(stderr, "vaultctl: empty password refused\n"); return 1; }
        rc = vault_create_ex(&v, file, sec->pw, &o);
        if (rc < 0) return fail(file, rc);
        vault_close(v);
        fprintf(stderr, "vaultctl: created %s\n", file);
        return 0;
    }
    if (strcmp(cmd, "set") && strcmp(cmd, "get") && strcmp(cmd, "list") && strcmp(cmd, "rm") && strcmp(cmd, "rekey"))
        return usage();
    if (get_secret(pwfd, "Vault password: ", sec->pw, sizeof sec->pw) < 0) return 1;
    rc = vault_open_ex(&v, file, sec->pw, &o);
    vault_wipe(sec->pw, sizeof sec->pw);
    if (rc < 0) return fail(file, rc);

    if (!strcmp(cmd, "get")) {
        rc = vault_get(v, name, sec->value, sizeof sec->value);
        if (rc < 0) ret = fail(name, rc);
        else { fwrite(sec->value, 1, (size_t)rc, stdout); fputc('\n', stdout); fflush(stdout); }
    } else if (!strcmp(cmd, "list")) {
        vault_list(v, print_name, NULL);
    } else if (!strcmp(cmd, "rm")) {
        rc = vault_remove(v, name);
        if (rc == 0) rc = vault_save(v);
        if (rc < 0) ret = fail(name, rc);
    } else if (!strcmp(cmd, "set")) {
        long n;
        if (isatty(0) && pwfd != 0) n = get_secret(-1, "Value: ", sec->value, sizeof sec->value);
        else n = read_line_fd(0, sec->value, sizeof sec->value);
        if (n < 0) { fprintf(stderr, "vaultctl: no value on stdin\n"); ret = 1; }
        else {
            rc = vault_set(v, name, sec->value);
            if (rc == 0) rc = vault_save(v);
            if (rc < 0) ret = fail(name, rc);
        }
    } else if (!strcmp(cmd, "rekey")) {
        if (get_secret(newfd, "New vault password: ", sec->pw, sizeof sec->pw) < 0) ret = 1;
        else if (newfd < 0 && (get_secret(-1, "Repeat password: ", sec->pw2, sizeof sec->pw2) < 0 || strcmp(sec->pw, sec->pw2) != 0)) {
            fprintf(stderr, "vaultctl: passwords differ\n"); ret = 1;
        } else if (!sec->pw[0]) {
            fprintf(stderr, "vaultctl: empty password refused\n"); ret = 1;
        } else if ((rc = vault_rekey(v, sec->pw)) < 0) {
            ret = fail(file, rc);
        }
    }
    vault_close(v);
    return ret;
}
