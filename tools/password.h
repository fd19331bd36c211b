/* SPDX-License-Identifier: MIT */
/* password.h - where vaultctl and the tools that open a vault take its
 * password from: the terminal with echo off (Ctrl-Z safe), a file
 * descriptor, a file only its owner can read, or a helper command. Never
 * from argv. One copy, so every tool refuses the same weak sources. Not
 * installed. Include vault.h (with its implementation, which defines
 * _GNU_SOURCE) before this file, and set pw_prog to the tool's name. */
#ifndef PICOLOG_PASSWORD_H
#define PICOLOG_PASSWORD_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* The name error messages start with. */
static const char *pw_prog = "vaultctl";

static void pw__perror(const char *what) {
    int e = errno;
    fprintf(stderr, "%s: %s: %s\n", pw_prog, what, strerror(e));
}

/* ---- the terminal ------------------------------------------------------- */
static struct termios saved_tio, noecho_tio;
static volatile sig_atomic_t tty_fd = -1, tty_echo_off;

static void restore_tty(void) {
    if (tty_echo_off) { (void)tcsetattr(tty_fd, TCSAFLUSH, &saved_tio); tty_echo_off = 0; }
}
static void on_fatal_signal(int sig) {
    restore_tty();
    signal(sig, SIG_DFL);
    raise(sig);
}
static void catch_signal(int sig, void (*fn)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);               /* no SA_RESTART: read() sees EINTR and retries */
}

/* Ctrl-Z: echo back on while stopped; fg: echo off again, still reading. */
static void on_tstp(int sig) {
    int was_off = tty_echo_off, e = errno;
    sigset_t set;
    restore_tty();
    signal(sig, SIG_DFL);
    sigemptyset(&set); sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);    /* blocked while in its handler */
    raise(sig);                              /* stops here until SIGCONT */
    sigprocmask(SIG_BLOCK, &set, NULL);
    catch_signal(sig, on_tstp);
    if (was_off && tcsetattr(tty_fd, TCSAFLUSH, &noecho_tio) == 0) tty_echo_off = 1;
    errno = e;
}


/* One line from fd, byte by byte (so several lines can come from one fd);
 * the newline (and a CR before it) is dropped. Returns the length, or -1. */
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

/* From the terminal with echo off; refuses to read if echo cannot be turned off. */
static long read_secret_tty(const char *prompt, char *buf, size_t cap) {
    long n;
    if (tty_fd < 0) tty_fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (tty_fd < 0) { fprintf(stderr, "%s: no terminal to ask for the secret (see --help for other sources)\n", pw_prog); return -1; }
    if (tcgetattr(tty_fd, &saved_tio) != 0) { pw__perror("tcgetattr"); return -1; }
    noecho_tio = saved_tio;
    noecho_tio.c_lflag &= (tcflag_t)~(ECHO | ECHONL);
    noecho_tio.c_lflag |= ICANON;
    catch_signal(SIGINT, on_fatal_signal); catch_signal(SIGTERM, on_fatal_signal);
    catch_signal(SIGHUP, on_fatal_signal); catch_signal(SIGQUIT, on_fatal_signal);
    catch_signal(SIGTSTP, on_tstp);
    if (write(tty_fd, prompt, strlen(prompt)) < 0) return -1;
    tty_echo_off = 1;
    if (tcsetattr(tty_fd, TCSAFLUSH, &noecho_tio) != 0) {
        tty_echo_off = 0;
        pw__perror("cannot turn terminal echo off");
        return -1;
    }
    n = read_line_fd(tty_fd, buf, cap);
    restore_tty();
    signal(SIGTSTP, SIG_DFL);
    if (write(tty_fd, "\n", 1) < 0) { /* nothing to do */ }
    return n;
}

/* ---- password sources --------------------------------------------------- */
typedef struct { int fd; const char *file, *command; } pw_source;

static int pw_source_given(const pw_source *s) { return s->fd >= 0 || s->file || s->command; }

/* No source given: VAULT_PASSWORD_FILE, if set (as --password-file);
 * otherwise the terminal. */
static void pw_source_from_env(pw_source *s) {
    const char *envf;
    if (pw_source_given(s)) return;
    envf = getenv("VAULT_PASSWORD_FILE");
    if (envf && *envf) s->file = envf;
}

/* The first line of a file only its owner can read (as ssh does for keys). */
static long read_password_file(const char *path, char *buf, size_t cap) {
    struct stat st;
    long n;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) { fprintf(stderr, "%s: password file '%s': %s\n", pw_prog, path, strerror(errno)); return -1; }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: password file '%s' is not a regular file\n", pw_prog, path); close(fd); return -1;
    }
    if (st.st_uid != geteuid()) {
        fprintf(stderr, "%s: password file '%s' is owned by uid %lu, not by this user; refusing it\n", pw_prog,
                path, (unsigned long)st.st_uid);
        close(fd); return -1;
    }
    if (st.st_mode & 077) {
        fprintf(stderr, "%s: password file '%s' has permissions 0%03o: it must not be accessible by others (chmod 600 '%s')\n", pw_prog,
                path, (unsigned)(st.st_mode & 0777), path);
        close(fd); return -1;
    }
    n = read_line_fd(fd, buf, cap);
    close(fd);
    if (n < 0) fprintf(stderr, "%s: password file '%s' holds no line\n", pw_prog, path);
    return n;
}

/* The first line a helper command prints (its stdin and stderr are ours). */
static long read_password_command(const char *cmd, char *buf, size_t cap) {
    int p[2], st = 0;
    long n;
    pid_t pid;
    if (pipe2(p, O_CLOEXEC) != 0) { pw__perror("pipe"); return -1; }
    pid = fork();
    if (pid < 0) { pw__perror("fork"); close(p[0]); close(p[1]); return -1; }
    if (pid == 0) {
        if (dup2(p[1], 1) < 0) _exit(127);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    n = read_line_fd(p[0], buf, cap);
    close(p[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s: password command failed (%s %d)\n", pw_prog, WIFEXITED(st) ? "exit status" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        vault_wipe(buf, cap);
        return -1;
    }
    if (n < 0) fprintf(stderr, "%s: password command printed no line\n", pw_prog);
    return n;
}

static long get_password(const pw_source *s, const char *prompt, char *buf, size_t cap) {
    long n;
    if (s->fd >= 0) {
        n = read_line_fd(s->fd, buf, cap);
        if (n < 0) fprintf(stderr, "%s: could not read a line from file descriptor %d\n", pw_prog, s->fd);
        return n;
    }
    if (s->file) return read_password_file(s->file, buf, cap);
    if (s->command) return read_password_command(s->command, buf, cap);
    n = read_secret_tty(prompt, buf, cap);
    if (n < 0) fprintf(stderr, "%s: could not read the password\n", pw_prog);
    return n;
}

#endif
