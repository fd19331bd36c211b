/* vaultctl: manage a vault.h credential store (secure_config.json) from the shell.
 * Build:  cc -O2 -I. examples/vaultctl.c -o vaultctl
 * `vaultctl --help` is the manual (the text is in usage() below).
 *
 * Passwords never come from argv (they would show in ps and shell history):
 * from the terminal with echo off, a file descriptor, a file only its owner
 * can read, or a helper command. The process is undumpable and keeps every
 * secret in one locked, MADV_DONTDUMP buffer, wiped at exit. */
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include "tools/password.h"   /* the password sources, shared with plg_dump */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define VAULTCTL_VERSION "0.2"
#define PW_MAX 1024

static int usage(FILE *to, int code) {
    fprintf(to,
"usage: vaultctl [options] COMMAND\n"
"commands:\n"
"  init            create the vault file (password asked twice on a terminal)\n"
"  set NAME        store a value. The value is any bytes: with --file PATH, the\n"
"                  whole file; else, when stdin is not a terminal (or the password\n"
"                  came from fd 0), everything on stdin up to the end of input,\n"
"                  newlines included (a PEM key: vaultctl set k < key.pem); no\n"
"                  newline is added or removed (use printf '%%s', not echo). From\n"
"                  a terminal: one line, not echoed. At most %u bytes.\n"
"  get NAME        write the value to stdout, exactly as stored (a newline is\n"
"                  added only when stdout is a terminal)\n"
"  list            the names, one a line\n"
"  rm NAME         remove a credential\n"
"  rekey           new password and new salt\n"
"  datakey create NAME\n"
"                  a new data key: 32 random bytes, stored as datakey/NAME, for\n"
"                  picolog's encryption at rest (plg_config.encrypt_key; read a log\n"
"                  with plg_dump --vault FILE --key-name NAME). Never replaces an\n"
"                  existing entry (data encrypted under it would be lost)\n"
"  datakey show [--hex] NAME\n"
"                  says (on stderr) whether datakey/NAME is a data key; with --hex\n"
"                  only, writes the key to stdout as 64 hex digits and a newline\n"
"                  (vaultctl datakey show --hex k | plg_dump --key-file /dev/stdin)\n"
"  export --env -- CMD [ARG...]\n"
"                  run CMD with every credential in its environment (as sops\n"
"                  exec-env): nothing is written to disk. NAME becomes NAME in\n"
"                  upper case with every character other than A-Z, 0-9 and _\n"
"                  turned into _ (coinbase.api_key: COINBASE_API_KEY). Data keys\n"
"                  (datakey/...) are binary and are left out\n"
"  audit           print the audit log of the vault: every open, failed\n"
"                  decryption, save, rekey and refusal, one a line (no password)\n"
"options:\n"
"  -f, --vault FILE          the vault (default $VAULT_FILE, else ./secure_config.json)\n"
"  --file PATH               set: read the value from PATH\n"
"  --hex                     datakey show: print the key in hex on stdout\n"
"  --password-fd N           read the password as one line from file descriptor N\n"
"  --password-file PATH      read it from the first line of PATH, which must be a\n"
"                            regular file of this user with no group/other access\n"
"  --password-command CMD    run CMD with /bin/sh -c; its first output line is the\n"
"                            password (a helper that asks a keyring or a manager)\n"
"  --new-password-fd N, --new-password-file PATH, --new-password-command CMD\n"
"                            the same, for the new password of init/rekey (the fd may\n"
"                            be the same N: lines are read one after the other)\n"
"  --iterations N            PBKDF2 count for init/rekey (default 600000); also\n"
"                            accepts existing files down to N (1000..10000000)\n"
"  --audit                   print the store's audit events to stderr too\n"
"  --audit-log PATH          where events are appended (default FILE.audit.log;\n"
"                            \"-\" for none); mode 0600, one line per event\n"
"  -h, --help                this text\n"
"  -V, --version             the version\n"
"environment:\n"
"  VAULT_FILE                the vault, when -f is not given\n"
"  VAULT_PASSWORD_FILE       a password file (as --password-file) used when no\n"
"                            password option is given\n"
"Passwords are never taken from the command line.\n", VAULT_VALUE_MAX);
    return code;
}

static int write_all(int fd, const char *p, size_t n);
/* Secrets live in one locked, non-dumpable buffer, wiped at exit. */
static struct { char pw[PW_MAX], pw2[PW_MAX], value[VAULT_VALUE_MAX + 2]; } *sec;

/* Everything on fd up to its end; -2 when it is more than cap - 1 bytes. */
static long read_all_fd(int fd, char *buf, size_t cap) {
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        n += (size_t)r;
        if (n >= cap) return -2;
    }
    return (long)n;
}

/* ---- the rest ----------------------------------------------------------- */
/* Audit events go to the log file (appended, 0600, one line each: UTC time,
 * uid, pid, event, result, message) and, with --audit, to stderr. */
static int audit_fd = -1, audit_stderr;
static void audit_print(const vault_audit_event *e, void *ud) {
    (void)ud;
    if (audit_stderr)
        fprintf(stderr, "vaultctl: audit: %s: %s (%s)\n", vault_audit_name(e->event), e->message,
                e->result ? vault_strerror(e->result) : "ok");
    if (audit_fd >= 0) {
        char line[1024], ts[32];
        time_t now = time(NULL);
        struct tm tm;
        int n;
        gmtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        n = snprintf(line, sizeof line, "%s uid=%lu pid=%ld %s: %s (%s)\n", ts, (unsigned long)getuid(), (long)getpid(),
                     vault_audit_name(e->event), e->message, e->result ? vault_strerror(e->result) : "ok");
        if (n > (int)sizeof line - 1) { n = (int)sizeof line - 1; line[n - 1] = '\n'; }
        if (write(audit_fd, line, (size_t)n) < 0) { /* the operation goes on; stderr may say more */ }
    }
}

static int open_audit_log(const char *path) {
    struct stat st;
    audit_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (audit_fd < 0) { fprintf(stderr, "vaultctl: audit log '%s': %s\n", path, strerror(errno)); return -1; }
    if (fstat(audit_fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
        fprintf(stderr, "vaultctl: audit log '%s' must be a regular file of this user, mode 0600\n", path);
        close(audit_fd); audit_fd = -1;
        return -1;
    }
    return 0;
}

static int print_audit_log(const char *path) {
    char buf[4096];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) { fprintf(stderr, "vaultctl: audit log '%s': %s\n", path, strerror(errno)); return 1; }
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (write_all(1, buf, (size_t)n) != 0) { close(fd); return 1; }
    close(fd);
    return n < 0 ? 1 : 0;
}

/* NAME as an environment variable name: A-Z 0-9 _, upper case. */
static void env_name(const char *name, char *out, size_t cap) {
    size_t i;
    for (i = 0; name[i] && i + 1 < cap; i++) {
        char c = name[i];
        if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) c = '_';
        out[i] = c;
    }
    out[i] = 0;
}

typedef struct { vault *v; int bad; } export_ctx;
static int export_one(const char *name, void *ctx) {
    export_ctx *x = (export_ctx *)ctx;
    char var[VAULT_NAME_MAX + 1];
    int n;
    /* a data key is 32 binary bytes (often with a NUL): for plg_dump
     * --vault, never a variable, and never a reason to refuse the rest */
    if (!strncmp(name, VAULT_DATA_KEY_PREFIX, sizeof VAULT_DATA_KEY_PREFIX - 1)) return 0;
    n = vault_get(x->v, name, sec->value, sizeof sec->value);
    if (n < 0) { fprintf(stderr, "vaultctl: %s: %s\n", name, vault_strerror(n)); x->bad = 1; return 1; }
    if (memchr(sec->value, 0, (size_t)n)) {
        fprintf(stderr, "vaultctl: %s holds a NUL byte: it cannot go into the environment\n", name);
        x->bad = 1; return 1;
    }
    env_name(name, var, sizeof var);
    if (var[0] >= '0' && var[0] <= '9') { fprintf(stderr, "vaultctl: %s: not a variable name (%s)\n", name, var); x->bad = 1; return 1; }
    if (setenv(var, sec->value, 1) != 0) { perror("vaultctl: setenv"); x->bad = 1; return 1; }
    return 0;
}

static int print_name(const char *name, void *ctx) { (void)ctx; puts(name); return 0; }

static int fail(const char *what, int rc) {
    fprintf(stderr, "vaultctl: %s: %s\n", what, vault_strerror(rc));
    return 1;
}

/* A failed vault_open/vault_create, with the errno behind it if any. */
static int fail_open(const char *file, int rc) {
    int e = vault_open_errno();
    fprintf(stderr, "vaultctl: %s: %s%s%s\n", file, vault_strerror(rc), e ? ": " : "", e ? strerror(e) : "");
    return 1;
}

/* A whole decimal number in [lo, hi]: no sign, no spaces, no trailing bytes. */
static int parse_num(const char *opt, const char *s, unsigned long lo, unsigned long hi, unsigned long *out) {
    char *end;
    unsigned long v;
    if (!s || s[0] < '0' || s[0] > '9') goto bad;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v < lo || v > hi) goto bad;
    *out = v;
    return 0;
bad:
    fprintf(stderr, "vaultctl: %s wants a number from %lu to %lu, not '%s'\n", opt, lo, hi, s ? s : "");
    return -1;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w; n -= (size_t)w;
    }
    return 0;
}

/* datakey create / show. The key goes through the locked buffer only. */
static int datakey(vault *v, const char *sub, const char *name, int hex) {
    static const char digits[] = "0123456789abcdef";
    uint8_t *key = (uint8_t *)sec->value;
    char *text = sec->value + VAULT_DATA_KEY_LEN;
    int rc, i;
    if (!strcmp(sub, "create")) {
        rc = vault_data_key_create(v, name, NULL);
        if (rc == VAULT_EEXIST) {
            fprintf(stderr, "vaultctl: %s%s already exists: not replaced (data encrypted under it would be lost)\n",
                    VAULT_DATA_KEY_PREFIX, name);
            return 1;
        }
        if (rc < 0) return fail(name, rc);
        fprintf(stderr, "vaultctl: created data key %s%s (32 random bytes)\n", VAULT_DATA_KEY_PREFIX, name);
        return 0;
    }
    rc = vault_data_key(v, name, key);
    if (rc == VAULT_ENOTFOUND) {
        fprintf(stderr, "vaultctl: no data key %s%s (vaultctl datakey create %s)\n", VAULT_DATA_KEY_PREFIX, name, name);
        return 1;
    }
    if (rc < 0) return fail(name, rc);
    if (!hex) {
        fprintf(stderr, "vaultctl: %s%s is a 32-byte data key (--hex prints it)\n", VAULT_DATA_KEY_PREFIX, name);
        vault_wipe(key, VAULT_DATA_KEY_LEN);
        return 0;
    }
    for (i = 0; i < (int)VAULT_DATA_KEY_LEN; i++) {
        text[2 * i] = digits[key[i] >> 4];
        text[2 * i + 1] = digits[key[i] & 15];
    }
    text[2 * VAULT_DATA_KEY_LEN] = '\n';
    rc = write_all(1, text, 2 * VAULT_DATA_KEY_LEN + 1);
    vault_wipe(sec->value, 3 * VAULT_DATA_KEY_LEN + 1);
    if (rc != 0) { perror("vaultctl: write"); return 1; }
    return 0;
}

static void wipe_secrets(void) { if (sec) vault_wipe(sec, sizeof *sec); }

enum { OPT_PWFD = 1000, OPT_NEWFD, OPT_PWFILE, OPT_NEWFILE, OPT_PWCMD, OPT_NEWCMD, OPT_ITER, OPT_AUDIT, OPT_FILE, OPT_PASSWORD,
       OPT_ENV, OPT_AUDITLOG, OPT_HEX };

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"vault", required_argument, NULL, 'f'},
        {"file", required_argument, NULL, OPT_FILE},
        {"password-fd", required_argument, NULL, OPT_PWFD},
        {"new-password-fd", required_argument, NULL, OPT_NEWFD},
        {"password-file", required_argument, NULL, OPT_PWFILE},
        {"new-password-file", required_argument, NULL, OPT_NEWFILE},
        {"password-command", required_argument, NULL, OPT_PWCMD},
        {"new-password-command", required_argument, NULL, OPT_NEWCMD},
        {"iterations", required_argument, NULL, OPT_ITER},
        {"audit", no_argument, NULL, OPT_AUDIT},
        {"audit-log", required_argument, NULL, OPT_AUDITLOG},
        {"env", no_argument, NULL, OPT_ENV},
        {"hex", no_argument, NULL, OPT_HEX},
        {"password", optional_argument, NULL, OPT_PASSWORD},
        {"new-password", optional_argument, NULL, OPT_PASSWORD},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    const char *file = getenv("VAULT_FILE"), *cmd, *sub = NULL, *name = NULL, *value_file = NULL, *audit_log = NULL;
    char audit_default[4200];
    char **child_argv = NULL;
    int env_flag = 0, hex_flag = 0;
    pw_source pw = {-1, NULL, NULL}, npw = {-1, NULL, NULL};
    unsigned long num;
    int c, rc, ret = 0;
    vault_options o;
    vault *v = NULL;
    memset(&o, 0, sizeof o);
    /* No core dump and no ptrace by other processes of this user: the
     * password, the keys and the secrets are in this process's memory. */
    if (prctl(PR_SET_DUMPABLE, 0) != 0) { perror("vaultctl: prctl(PR_SET_DUMPABLE)"); return 1; }
    if (!file || !*file) file = "secure_config.json";
    while ((c = getopt_long(argc, argv, "f:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': file = optarg; break;
        case OPT_FILE: value_file = optarg; break;
        case OPT_PWFD: case OPT_NEWFD:
            if (parse_num(c == OPT_PWFD ? "--password-fd" : "--new-password-fd", optarg, 0, INT_MAX, &num) != 0) return 2;
            if (c == OPT_PWFD) pw.fd = (int)num; else npw.fd = (int)num;
            break;
        case OPT_PWFILE: pw.file = optarg; break;
        case OPT_NEWFILE: npw.file = optarg; break;
        case OPT_PWCMD: pw.command = optarg; break;
        case OPT_NEWCMD: npw.command = optarg; break;
        case OPT_ITER:
            if (parse_num("--iterations", optarg, VAULT_ITERATIONS_FLOOR, VAULT_DEFAULT_MAX_ITERATIONS, &num) != 0) return 2;
            o.iterations = (uint32_t)num;
            if (o.iterations < VAULT_DEFAULT_MIN_ITERATIONS) o.min_iterations = o.iterations;
            break;
        case OPT_AUDIT: audit_stderr = 1; break;
        case OPT_AUDITLOG: audit_log = optarg; break;
        case OPT_ENV: env_flag = 1; break;
        case OPT_HEX: hex_flag = 1; break;
        case OPT_PASSWORD:
            fprintf(stderr, "vaultctl: passwords are never taken from the command line (see --help)\n");
            return 2;
        case 'h': return usage(stdout, 0);
        case 'V': printf("vaultctl %s (vault.h file format %d)\n", VAULTCTL_VERSION, VAULT_FORMAT_VERSION); return 0;
        default: return usage(stderr, 2);
        }
    }
    if ((pw.fd >= 0) + !!pw.file + !!pw.command > 1 || (npw.fd >= 0) + !!npw.file + !!npw.command > 1) {
        fprintf(stderr, "vaultctl: give one password source (fd, file or command)\n");
        return 2;
    }
    pw_source_from_env(&pw);
    if (optind >= argc) return usage(stderr, 2);
    cmd = argv[optind++];
    {   /* options may come after the command too ("set --file key.pem NAME") */
        int needs_name = !strcmp(cmd, "set") || !strcmp(cmd, "get") || !strcmp(cmd, "rm");
        if (!strcmp(cmd, "datakey")) {
            if (optind >= argc || (strcmp(argv[optind], "create") && strcmp(argv[optind], "show"))) {
                fprintf(stderr, "vaultctl: datakey create NAME, or datakey show [--hex] NAME\n");
                return 2;
            }
            sub = argv[optind++];
            needs_name = 1;
        }
        if (hex_flag && !(sub && !strcmp(sub, "show"))) { fprintf(stderr, "vaultctl: --hex is for datakey show\n"); return 2; }
        if (needs_name) {
            if (optind >= argc) return usage(stderr, 2);
            name = argv[optind++];
        }
        if (!strcmp(cmd, "export")) {
            if (!env_flag || optind >= argc) { fprintf(stderr, "vaultctl: export --env -- CMD [ARG...]\n"); return 2; }
            child_argv = argv + optind;
            optind = argc;
        } else if (env_flag) { fprintf(stderr, "vaultctl: --env is for export\n"); return 2; }
        if (optind != argc) return usage(stderr, 2);
    }
    {   /* the default log beside the vault may be impossible (a read-only
         * directory): say so and go on; a log asked for by name must work */
        int named = audit_log != NULL;
        if (!named) { snprintf(audit_default, sizeof audit_default, "%s.audit.log", file); audit_log = audit_default; }
        if (!strcmp(cmd, "audit")) return print_audit_log(audit_log);
        if (strcmp(audit_log, "-") && open_audit_log(audit_log) != 0) {
            if (named) return 1;
            fprintf(stderr, "vaultctl: warning: going on without the audit log\n");
        }
    }
    o.audit = audit_print;
    if (value_file && strcmp(cmd, "set")) { fprintf(stderr, "vaultctl: --file is for set\n"); return 2; }

    sec = (__typeof__(sec))mmap(NULL, sizeof *sec, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sec == MAP_FAILED) { sec = NULL; fprintf(stderr, "vaultctl: out of memory\n"); return 1; }
    if (mlock(sec, sizeof *sec) != 0) fprintf(stderr, "vaultctl: warning: secrets not locked in memory (%s)\n", strerror(errno));
#ifdef MADV_DONTDUMP
    (void)madvise(sec, sizeof *sec, MADV_DONTDUMP);
#endif
    atexit(wipe_secrets);

    if (!strcmp(cmd, "init")) {
        const pw_source *s = pw_source_given(&npw) ? &npw : &pw;
        if (get_password(s, "New vault password: ", sec->pw, sizeof sec->pw) < 0) return 1;
        if (!pw_source_given(s)) {
            if (get_password(s, "Repeat password: ", sec->pw2, sizeof sec->pw2) < 0) return 1;
            if (strcmp(sec->pw, sec->pw2) != 0) { fprintf(stderr, "vaultctl: passwords differ\n"); return 1; }
        }
        if (!sec->pw[0]) { fprintf(stderr, "vaultctl: empty password refused\n"); return 1; }
        rc = vault_create_ex(&v, file, sec->pw, &o);
        if (rc < 0) return fail_open(file, rc);
        vault_close(v);
        fprintf(stderr, "vaultctl: created %s\n", file);
        return 0;
    }
    if (strcmp(cmd, "set") && strcmp(cmd, "get") && strcmp(cmd, "list") && strcmp(cmd, "rm") && strcmp(cmd, "rekey") &&
        strcmp(cmd, "export") && strcmp(cmd, "datakey"))
        return usage(stderr, 2);
    if (get_password(&pw, "Vault password: ", sec->pw, sizeof sec->pw) < 0) return 1;
    rc = vault_open_ex(&v, file, sec->pw, &o);
    vault_wipe(sec->pw, sizeof sec->pw);
    if (rc < 0) return fail_open(file, rc);

    if (!strcmp(cmd, "get")) {
        /* straight from the locked buffer with write(2): no stdio copy */
        rc = vault_get(v, name, sec->value, sizeof sec->value);
        if (rc < 0) ret = fail(name, rc);
        else if (write_all(1, sec->value, (size_t)rc) != 0 ||
                 (isatty(1) && (rc == 0 || sec->value[rc - 1] != '\n') && write_all(1, "\n", 1) != 0)) {
            perror("vaultctl: write"); ret = 1;
        }
    } else if (!strcmp(cmd, "datakey")) {
        ret = datakey(v, sub, name, hex_flag);
    } else if (!strcmp(cmd, "list")) {
        vault_list(v, print_name, NULL);
    } else if (!strcmp(cmd, "export")) {
        /* the credentials go into this process's environment, then exec
         * replaces it with the command: nothing is written to disk */
        export_ctx x = {v, 0};
        vault_list(v, export_one, &x);
        vault_wipe(sec->value, sizeof sec->value);
        vault_close(v);
        if (x.bad) return 1;
        if (audit_fd >= 0) close(audit_fd);
        execvp(child_argv[0], child_argv);
        fprintf(stderr, "vaultctl: %s: %s\n", child_argv[0], strerror(errno));
        return 127;
    } else if (!strcmp(cmd, "rm")) {
        rc = vault_remove(v, name);
        if (rc == 0) rc = vault_save(v);
        if (rc < 0) ret = fail(name, rc);
    } else if (!strcmp(cmd, "set")) {
        long n;
        if (value_file) {
            int fd = open(value_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
            if (fd < 0) { fprintf(stderr, "vaultctl: %s: %s\n", value_file, strerror(errno)); vault_close(v); return 1; }
            n = read_all_fd(fd, sec->value, VAULT_VALUE_MAX + 1);
            close(fd);
        } else if (isatty(0) && pw.fd != 0) {
            n = read_secret_tty("Value: ", sec->value, sizeof sec->value);
        } else {
            n = read_all_fd(0, sec->value, VAULT_VALUE_MAX + 1);
        }
        if (n == -2) { fprintf(stderr, "vaultctl: the value is larger than %u bytes\n", VAULT_VALUE_MAX); ret = 1; }
        else if (n < 0) { fprintf(stderr, "vaultctl: could not read the value\n"); ret = 1; }
        else {
            rc = vault_set_bytes(v, name, sec->value, (size_t)n);
            if (rc == 0) rc = vault_save(v);
            if (rc < 0) ret = fail(name, rc);
        }
    } else if (!strcmp(cmd, "rekey")) {
        if (get_password(&npw, "New vault password: ", sec->pw, sizeof sec->pw) < 0) ret = 1;
        else if (!pw_source_given(&npw) && (get_password(&npw, "Repeat password: ", sec->pw2, sizeof sec->pw2) < 0 ||
                                             strcmp(sec->pw, sec->pw2) != 0)) {
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
