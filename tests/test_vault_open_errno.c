/* SPDX-License-Identifier: MIT */
/* vault_open_errno: the errno behind a failed vault_open or vault_create (a
 * failed open gives no handle to ask): a permission error, running out of
 * file descriptors; 0 for an error no system call gave (a wrong password)
 * and after a successful open. The permission cases run in a child that is
 * not root, the descriptor cases in a child whose limit is lowered. */
// NO_TSAN (vault.h starts no thread and neither does this test: nothing for TSan to check)
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include "t.h"

#include <grp.h>
#include <sys/resource.h>
#include <sys/wait.h>

static vault_options fast(void) {
    vault_options o;
    memset(&o, 0, sizeof o);
    o.iterations = 1000; o.min_iterations = 1000;
    return o;
}

/* fn(arg) in a child; as nobody when nobody is set and this is root (root
 * ignores permission bits). Its exit status: 0 when all held. */
static int in_child(int (*fn)(const char *), const char *arg, int nobody) {
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (nobody && geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)) _exit(90);
        int r = fn(arg);
        fflush(stdout);
        _exit(r);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

static int expect(const char *what, int rc, int want_rc, int want_errno) {
    if (rc != want_rc) { printf("  %s: %s, want %s\n", what, vault_strerror(rc), vault_strerror(want_rc)); return 1; }
    if (vault_open_errno() != want_errno) { printf("  %s: vault_open_errno %d, want %d\n", what, vault_open_errno(), want_errno); return 2; }
    return 0;
}

static int child_create_in_ro_dir(const char *ro) {
    char path[700];
    snprintf(path, sizeof path, "%s/secure_config.json", ro);
    vault_options o = fast();
    vault *v;
    return expect("create in a read-only directory", vault_create_ex(&v, path, "pw", &o), VAULT_EACCES, EACCES);
}

static int child_open_unreadable(const char *path) {
    vault_options o = fast();
    vault *v;
    return expect("open a mode-000 file", vault_open_ex(&v, path, "pw", &o), VAULT_EACCES, EACCES);
}

/* No free file descriptor below the soft limit: the next open fails EMFILE. */
static int use_up_fds(void) {
    int fd = dup(2);
    struct rlimit rl;
    if (fd < 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    rl.rlim_cur = (rlim_t)fd + 1;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

static int child_open_without_fds(const char *path) {
    vault_options o = fast();
    vault *v;
    if (use_up_fds() != 0) return 10;
    return expect("open without a free fd", vault_open_ex(&v, path, "pw", &o), VAULT_EIO, EMFILE);
}

static int child_create_without_fds(const char *path) {
    vault_options o = fast();
    vault *v;
    if (use_up_fds() != 0) return 10;
    return expect("create without a free fd", vault_create_ex(&v, path, "pw", &o), VAULT_EIO, EMFILE);
}

static void make_vault(const char *path) {
    vault_options o = fast();
    vault *v;
    REQUIRE(vault_create_ex(&v, path, "pw", &o) == 0);
    CHECK_EQ(vault_open_errno(), 0);
    vault_close(v);
}

static void test_permission_errors_give_eacces(void) {
    const char *base = t_dir("vault_open_errno_perm");
    char ro[600], own[600], path[700], cmd[1600];
    snprintf(ro, sizeof ro, "%s/ro", base);
    snprintf(own, sizeof own, "%s/own", base);
    REQUIRE(mkdir(ro, 0555) == 0 && chmod(ro, 0555) == 0 && mkdir(own, 0755) == 0 && chmod(base, 0755) == 0);
    /* t_dir's parents must be traversable by nobody */
    snprintf(cmd, sizeof cmd, "d='%s'; while [ \"$d\" != . ] && [ \"$d\" != / ]; do chmod o+x \"$d\" 2>/dev/null; d=$(dirname \"$d\"); done", base);
    REQUIRE(system(cmd) == 0);
    CHECK_EQ(in_child(child_create_in_ro_dir, ro, 1), 0);
    /* the child's own vault file (nobody's when root), mode 000 */
    snprintf(path, sizeof path, "%s/secure_config.json", own);
    make_vault(path);
    snprintf(cmd, sizeof cmd, "%s '%s' && chmod 000 '%s'", geteuid() == 0 ? "chown -R 65534:65534" : "true", own, path);
    REQUIRE(system(cmd) == 0);
    CHECK_EQ(in_child(child_open_unreadable, path, 1), 0);
}

static void test_out_of_file_descriptors_gives_emfile(void) {
    const char *base = t_dir("vault_open_errno_fds");
    char path[600], fresh[600];
    snprintf(path, sizeof path, "%s/secure_config.json", base);
    snprintf(fresh, sizeof fresh, "%s/new.json", base);
    make_vault(path);
    CHECK_EQ(in_child(child_open_without_fds, path, 0), 0);
    CHECK_EQ(in_child(child_create_without_fds, fresh, 0), 0);
}

static void test_wrong_password_has_no_errno_and_success_clears_it(void) {
    const char *base = t_dir("vault_open_errno_auth");
    char path[600], missing[600];
    snprintf(path, sizeof path, "%s/secure_config.json", base);
    snprintf(missing, sizeof missing, "%s/missing.json", base);
    make_vault(path);
    vault_options o = fast();
    vault *v;
    CHECK_EQ(vault_open_ex(&v, missing, "pw", &o), VAULT_ENOENT);
    CHECK_EQ(vault_open_errno(), ENOENT);
    CHECK_EQ(vault_open_ex(&v, path, "wrong", &o), VAULT_EAUTH);
    CHECK_EQ(vault_open_errno(), 0);                 /* no system call behind it */
    CHECK_EQ(vault_open_ex(&v, missing, "pw", &o), VAULT_ENOENT);
    REQUIRE(vault_open_ex(&v, path, "pw", &o) == 0);
    CHECK_EQ(vault_open_errno(), 0);                 /* a successful open clears it */
    vault_close(v);
}

int main(void) {
    (void)t_rand;
    RUN(test_permission_errors_give_eacces);
    RUN(test_out_of_file_descriptors_gives_emfile);
    RUN(test_wrong_password_has_no_errno_and_success_clears_it);
    return t_done();
}
