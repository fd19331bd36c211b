/* vault.h under hostile operating conditions: each gives a clear error and
 * never damages the secure_config.json that is on disk.
 *   - a full disk (a small loop-mounted ext4; root, else SKIP): save, rekey,
 *     rotate and create fail with VAULT_ENOSPC (errno ENOSPC; the audit
 *     message names it), the previous file is intact and opens, no temp file
 *     is left, and the handle saves once space is back;
 *   - a read-only directory, a file of another user, a mode 000 file (as an
 *     unprivileged user: a child drops to nobody when run as root):
 *     VAULT_EACCES with errno EACCES, or VAULT_EOWNER; nothing damaged. (Group/
 *     other-readable files and symlinks: test_vault's test_file_checks.)
 *   - two processes on one file: every save writes its own O_EXCL temp file
 *     and renames it, so the file is always one whole save (readers never see
 *     a torn or mixed file), and two racing vault_create give one success and
 *     one VAULT_EEXIST. Saves take turns on <path>.lock, and a handle whose
 *     file changed since it read it gets VAULT_ECONFLICT; the writers reload
 *     and retry, and no update is lost.
 *   - mlock refused (RLIMIT_MEMLOCK 0, as nobody): the audit callback hears it. */
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include "t.h"
#include "conditions.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>

static vault_options fast(void) {
    vault_options o;
    memset(&o, 0, sizeof o);
    o.iterations = 1000; o.min_iterations = 1000;
    return o;
}

static char last_audit[1024];
static void keep_audit(const vault_audit_event *e, void *ud) {
    (void)ud;
    snprintf(last_audit, sizeof last_audit, "%s", e->message ? e->message : "");
}
static vault_options fast_audited(void) { vault_options o = fast(); o.audit = keep_audit; return o; }

static void say(const char *what, int rc, int e) {
    printf("  %s: %s%s%s; audit: %s\n", what, rc ? vault_strerror(rc) : "ok", rc ? ", errno: " : "",
           rc ? strerror(e) : "", last_audit);
    last_audit[0] = 0;
}

static int run(const char *cmd) { return system(cmd); }
static const char *pathin(const char *dir, const char *name) {
    static char b[4][700]; static int k;
    char *p = b[k++ & 3];
    snprintf(p, 700, "%s/%s", dir, name);
    return p;
}
/* entries of dir whose name starts with prefix */
static int count_prefix(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d))) if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}
/* the file opens with the password and name has value want */
static int holds(const char *path, const char *pw, const char *name, const char *want) {
    vault_options o = fast();
    vault *v;
    char buf[256];
    if (vault_open_ex(&v, path, pw, &o) != 0) return 0;
    int ok = vault_get(v, name, buf, sizeof buf) >= 0 && strcmp(buf, want) == 0;
    vault_close(v);
    return ok;
}

/* ---- a full disk -------------------------------------------------------- */
static void test_full_disk(void) {
    if (geteuid() != 0) SKIP("needs root to mount a small filesystem");
    char img[600], mnt[600], cmd[4000], ballast[700];
    if (t_mount_small_ext4("vault_full_disk", mnt, sizeof mnt, img, sizeof img) != 0)
        SKIP("cannot mount a loop ext4 here (no loop devices?)");
    printf("  full disk: loop-mounted ext4, 12 MiB\n");
    snprintf(ballast, sizeof ballast, "%s/ballast", mnt);
    const char *p = pathin(mnt, "secure_config.json");
    vault_options o = fast_audited();
    vault *v;
    int rc = vault_create_ex(&v, p, "pw", &o);
    CHECK_EQ(rc, 0);
    if (rc) { umount(mnt); return; }
    CHECK_EQ(vault_set(v, "coinbase.api_key", "v1"), 0);
    CHECK_EQ(vault_save(v), 0);
    /* fill it: 4 KiB writes, synced, twice (ext4 keeps delalloc reserves a
     * single large dd leaves free) */
    snprintf(cmd, sizeof cmd, "for i in 1 2; do dd if=/dev/zero of='%s'$i bs=4k count=100000 status=none 2>/dev/null; sync; done; true", ballast);
    CHECK_EQ(run(cmd), 0);
    static char big[60000];
    memset(big, 'x', sizeof big - 1);
    CHECK_EQ(vault_set(v, "coinbase.api_key", "v2"), 0);
    CHECK_EQ(vault_set(v, "blob", big), 0);
    errno = 0;
    rc = vault_save(v);
    int e = errno;
    CHECK(strstr(last_audit, strerror(ENOSPC)) != NULL);      /* the audit says why */
    say("save on the full disk", rc, e);
    CHECK_EQ(rc, VAULT_ENOSPC);
    CHECK_EQ(e, ENOSPC);
    CHECK(holds(p, "pw", "coinbase.api_key", "v1"));          /* the previous file, intact */
    CHECK_EQ(count_prefix(mnt, "secure_config.json.tmp"), 0);  /* no temp file left */
    /* a small save on the full disk too (no room for even a block) */
    CHECK_EQ(vault_remove(v, "blob"), 0);
    errno = 0;
    rc = vault_save(v); e = errno;
    say("small save on the full disk", rc, e);
    CHECK_EQ(rc, VAULT_ENOSPC);
    CHECK_EQ(e, ENOSPC);
    /* rekey and rotate fail and change nothing, in the file or the handle */
    errno = 0;
    rc = vault_rekey(v, "new-pw"); e = errno;
    say("rekey on the full disk", rc, e);
    CHECK_EQ(rc, VAULT_ENOSPC);
    CHECK_EQ(e, ENOSPC);
    errno = 0;
    rc = vault_rotate(v, "coinbase.api_key", "v3"); e = errno;
    say("rotate on the full disk", rc, e);
    CHECK_EQ(rc, VAULT_ENOSPC);
    char buf[64];
    CHECK_EQ(vault_get(v, "coinbase.api_key", buf, sizeof buf), 2);
    CHECK(strcmp(buf, "v2") == 0);                             /* rotate rolled back */
    CHECK(holds(p, "pw", "coinbase.api_key", "v1"));
    CHECK_EQ(count_prefix(mnt, "secure_config.json.tmp"), 0);
    /* a new vault on the full disk */
    vault *v2 = NULL;
    const char *p2 = pathin(mnt, "other.json");
    errno = 0;
    rc = vault_create_ex(&v2, p2, "pw", &o); e = errno;
    say("create on the full disk", rc, e);
    CHECK_EQ(rc, VAULT_ENOSPC);
    CHECK_EQ(e, ENOSPC);
    CHECK(v2 == NULL);
    CHECK(access(p2, F_OK) != 0);                               /* nothing half-made */
    CHECK_EQ(count_prefix(mnt, "other.json"), 0);
    /* space comes back: the same handle saves (old password: rekey failed) */
    snprintf(cmd, sizeof cmd, "rm -f '%s'1 '%s'2", ballast, ballast);
    CHECK_EQ(run(cmd), 0);
    rc = vault_save(v);
    say("save after freeing space", rc, errno);
    CHECK_EQ(rc, 0);
    vault_close(v);
    CHECK(holds(p, "pw", "coinbase.api_key", "v2"));
    CHECK_EQ(umount(mnt), 0);
}

/* ---- permissions, as an unprivileged user -------------------------------- */
static int child_create_in_ro_dir(const char *ro) {
    vault_options o = fast_audited();
    vault *v = NULL;
    errno = 0;
    int rc = vault_create_ex(&v, pathin(ro, "secure_config.json"), "pw", &o), e = errno;
    int named = strstr(last_audit, strerror(EACCES)) != NULL;    /* the audit says why */
    say("create in a read-only directory", rc, e);
    if (rc == 0) { vault_close(v); return 1; }
    return rc == VAULT_EACCES && e == EACCES && named ? 0 : 2;
}

/* the child's own vault in its own directory, which then turns read-only */
static int child_save_in_ro_dir(const char *dir) {
    vault_options o = fast_audited();
    vault *v;
    const char *p = pathin(dir, "secure_config.json");
    if (vault_create_ex(&v, p, "pw", &o) != 0 || vault_set(v, "k", "old") != 0 || vault_save(v) != 0) return 3;
    if (chmod(dir, 0555) != 0) return 4;
    vault_set(v, "k", "new");
    errno = 0;
    int rc = vault_save(v), e = errno;
    say("save in a directory made read-only", rc, e);
    int ok = rc == VAULT_EACCES && e == EACCES;
    errno = 0;
    rc = vault_rekey(v, "pw2"); e = errno;
    say("rekey in a directory made read-only", rc, e);
    if (!(rc == VAULT_EACCES && e == EACCES)) ok = 0;
    if (!holds(p, "pw", "k", "old")) ok = 0;                 /* the file as it was */
    if (chmod(dir, 0755) != 0) ok = 0;
    if (vault_save(v) != 0) ok = 0;                          /* writable again: the handle saves */
    vault_close(v);
    if (!holds(p, "pw", "k", "new")) ok = 0;
    return ok ? 0 : 2;
}

static int child_open_foreign_file(const char *p) {
    vault_options o = fast_audited();
    vault *v = NULL;
    errno = 0;
    int rc = vault_open_ex(&v, p, "pw", &o), e = errno;
    say(geteuid() == 0 ? "open a file of another user (0600)" : "open a file of another user", rc, e);
    if (rc == 0) { vault_close(v); return 1; }
    return rc == VAULT_EACCES || rc == VAULT_EOWNER ? 0 : 2;
}

static int child_mode_000(const char *dir) {
    vault_options o = fast_audited();
    vault *v;
    const char *p = pathin(dir, "mine.json");
    if (vault_create_ex(&v, p, "pw", &o) != 0 || vault_set(v, "k", "old") != 0 || vault_save(v) != 0) return 3;
    if (chmod(p, 0) != 0) return 4;
    vault *v2 = NULL;
    errno = 0;
    int rc = vault_open_ex(&v2, p, "pw", &o), e = errno;
    int ok = rc == VAULT_EACCES && e == EACCES && strstr(last_audit, strerror(EACCES)) != NULL;
    say("open a mode 000 file", rc, e);
    if (rc == 0) { vault_close(v2); ok = 0; }
    /* a save replaces the file whole and makes it 0600 again */
    vault_set(v, "k", "new");
    rc = vault_save(v);
    say("save over a mode 000 file", rc, errno);
    if (rc != 0) ok = 0;
    struct stat st;
    if (stat(p, &st) != 0 || (st.st_mode & 0777) != 0600) ok = 0;
    vault_close(v);
    if (!holds(p, "pw", "k", "new")) ok = 0;
    return ok ? 0 : 2;
}

static void test_read_only_directory_and_wrong_permissions(void) {
    const char *base = t_dir("vault_perm");
    char ro[600], own[600], cmd[3000];
    snprintf(ro, sizeof ro, "%s/ro", base);
    snprintf(own, sizeof own, "%s/own", base);
    mkdir(ro, 0555); chmod(ro, 0555);
    mkdir(own, 0755);
    chmod(base, 0755);
    snprintf(cmd, sizeof cmd, "d='%s'; while [ \"$d\" != . ] && [ \"$d\" != / ]; do chmod o+x \"$d\" 2>/dev/null; d=$(dirname \"$d\"); done", base);
    CHECK_EQ(run(cmd), 0);
    if (geteuid() == 0) CHECK_EQ(chown(own, 65534, 65534), 0);
    CHECK_EQ(t_as_nobody(child_create_in_ro_dir, ro), 0);
    CHECK_EQ(count_prefix(ro, ""), 2);                       /* only . and .. */
    CHECK_EQ(t_as_nobody(child_save_in_ro_dir, own), 0);
    CHECK_EQ(t_as_nobody(child_mode_000, own), 0);
    /* a vault of this user (root when root), opened by nobody */
    vault_options o = fast();
    vault *v;
    const char *p = pathin(base, "root.json");
    int rc = vault_create_ex(&v, p, "pw", &o);
    CHECK_EQ(rc, 0);
    if (rc) return;
    CHECK_EQ(vault_set(v, "k", "v"), 0);
    CHECK_EQ(vault_save(v), 0);
    vault_close(v);
    if (geteuid() != 0) CHECK_EQ(chmod(p, 0), 0);           /* no second user: unreadable instead */
    CHECK_EQ(t_as_nobody(child_open_foreign_file, p), 0);
    if (geteuid() == 0) {                                    /* readable by nobody, still not theirs */
        CHECK_EQ(chmod(p, 0644), 0);
        CHECK_EQ(t_as_nobody(child_open_foreign_file, p), 0);
    }
    CHECK_EQ(chmod(p, 0600), 0);
    CHECK(holds(p, "pw", "k", "v"));                         /* nothing damaged */
}

/* ---- two processes on one file ------------------------------------------ */
#define ROUNDS 40

/* writer `who` ('A' or 'B'): its own handle, sets its key and "shared",
 * saves; when the other saved in between (VAULT_ECONFLICT) it reopens and
 * redoes the change, as docs/vault-format.md says */
static int writer(const char *p, char who) {
    vault_options o = fast();
    vault *v;
    if (vault_open_ex(&v, p, "pw", &o) != 0) return 3;
    char name[8] = {'w', who, 0}, val[32];
    int bad = 0;
    for (int i = 1; i <= ROUNDS; i++) {
        snprintf(val, sizeof val, "%c%d", who, i);
        for (int tries = 0; tries < 1000; tries++) {
            if (vault_set(v, name, val) != 0 || vault_set(v, "shared", val) != 0) bad++;
            int rc = vault_save(v);
            if (rc != VAULT_ECONFLICT) { if (rc != 0) bad++; break; }
            vault_close(v);
            if (vault_open_ex(&v, p, "pw", &o) != 0) return 4;
        }
    }
    vault_close(v);
    return bad ? 2 : 0;
}

static void test_two_processes(void) {
    const char *dir = t_dir("vault_two_procs");
    const char *p = pathin(dir, "secure_config.json");
    vault_options o = fast();
    vault *v;
    /* racing creates: one wins, the other is told the file exists */
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    fflush(stdout); fflush(stderr);
    pid_t c[2];
    for (int k = 0; k < 2; k++) {
        c[k] = fork();
        if (c[k] == 0) {
            char go;
            if (read(fds[0], &go, 1) != 1) _exit(9);
            vault *w;
            vault_options oo = fast();
            int rc = vault_create_ex(&w, p, "pw", &oo);
            if (rc == 0) { vault_close(w); _exit(0); }
            _exit(rc == VAULT_EEXIST ? 1 : 2);
        }
    }
    CHECK_EQ(write(fds[1], "gg", 2), 2);
    int st0 = 0, st1 = 0;
    waitpid(c[0], &st0, 0); waitpid(c[1], &st1, 0);
    close(fds[0]); close(fds[1]);
    int r0 = WIFEXITED(st0) ? WEXITSTATUS(st0) : 99, r1 = WIFEXITED(st1) ? WEXITSTATUS(st1) : 99;
    printf("  two processes create the same vault: exit codes %d and %d (0 created, 1 VAULT_EEXIST)\n", r0, r1);
    CHECK(r0 + r1 == 1 && r0 * r1 == 0);
    CHECK_EQ(count_prefix(dir, "secure_config.json.tmp"), 0);

    /* two writers saving concurrently, a reader opening all the while */
    pid_t w[2];
    for (int k = 0; k < 2; k++) {
        fflush(stdout); fflush(stderr);
        w[k] = fork();
        if (w[k] == 0) _exit(writer(p, k ? 'B' : 'A'));
    }
    int opens = 0, failed = 0, alive = 2;
    while (alive) {
        vault *r;
        int rc = vault_open_ex(&r, p, "pw", &o);
        opens++;
        if (rc == 0) {
            char buf[32];
            if (vault_get(r, "shared", buf, sizeof buf) < 0 && vault_count(r) != 0) failed++;
            vault_close(r);
        } else {
            failed++;
            fprintf(stderr, "  reader: %s\n", vault_strerror(rc));
        }
        alive = 0;
        for (int k = 0; k < 2; k++) if (w[k] && waitpid(w[k], &st0, WNOHANG) == 0) alive++;
            else if (w[k]) { CHECK(WIFEXITED(st0) && WEXITSTATUS(st0) == 0); w[k] = 0; }
    }
    printf("  reader opened the file %d times while two writers saved %d times each: %d failures\n", opens, ROUNDS, failed);
    CHECK_EQ(failed, 0);                                     /* never torn, never mixed */
    CHECK(opens > 0);
    CHECK_EQ(count_prefix(dir, "secure_config.json.tmp"), 0);
    int rc = vault_open_ex(&v, p, "pw", &o);
    CHECK_EQ(rc, 0);
    if (rc) return;
    char a[32] = "", b[32] = "", s[32] = "";
    int ha = vault_get(v, "wA", a, sizeof a) >= 0, hb = vault_get(v, "wB", b, sizeof b) >= 0;
    CHECK(vault_get(v, "shared", s, sizeof s) >= 0);
    vault_close(v);
    /* no update lost: both writers' last rounds are there, "shared" from
     * whichever saved last */
    CHECK(ha && hb);
    CHECK(strcmp(a, "A" "40") == 0);
    CHECK(strcmp(b, "B" "40") == 0);
    CHECK(strcmp(s, "A" "40") == 0 || strcmp(s, "B" "40") == 0);
    printf("  final file: shared=%s, wA %s, wB %s\n", s, ha ? a : "missing", hb ? b : "missing");
}

/* ---- mlock refused -------------------------------------------------------- */
static int warnings;
static char warning_msg[512];
static void count_warnings(const vault_audit_event *e, void *ud) {
    (void)ud;
    if (e->event == VAULT_AUDIT_WARNING) { warnings++; snprintf(warning_msg, sizeof warning_msg, "%s", e->message); }
}
static int child_no_mlock(const char *dir) {
    struct rlimit r = {0, 0};
    vault_options o = fast();
    vault *v;
    const char *p = pathin(dir, "secure_config.json");
    if (setrlimit(RLIMIT_MEMLOCK, &r) != 0) return 3;
    o.audit = count_warnings;
    warnings = 0;
    if (vault_create_ex(&v, p, "pw", &o) != 0) return 4;
    int after_create = warnings;
    vault_close(v);
    warnings = 0;
    if (vault_open_ex(&v, p, "pw", &o) != 0) return 5;
    vault_close(v);
    printf("  mlock refused: %d warning(s) at create, %d at open: %s\n", after_create, warnings, warning_msg);
    return after_create >= 1 && warnings >= 1 && strstr(warning_msg, "mlock") ? 0 : 2;
}
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define T_MLOCK_IS_A_NOOP 1          /* the sanitizers' mlock interceptor does nothing and returns 0 */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define T_MLOCK_IS_A_NOOP 1
#endif
#endif
static void test_mlock_failure_is_audited(void) {
    const char *base = t_dir("vault_mlock");
#ifdef T_MLOCK_IS_A_NOOP
    (void)child_no_mlock; (void)base;
    SKIP("ASan and TSan replace mlock with a no-op that succeeds: nothing to refuse (the plain build runs it)");
#endif
    char own[600];
    snprintf(own, sizeof own, "%s/own", base);
    CHECK_EQ(mkdir(own, 0755), 0);
    if (geteuid() == 0) CHECK_EQ(chown(own, 65534, 65534), 0);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "d='%s'; while [ \"$d\" != . ] && [ \"$d\" != / ]; do chmod o+x \"$d\" 2>/dev/null; d=$(dirname \"$d\"); done", own);
    CHECK_EQ(run(cmd), 0);
    CHECK_EQ(t_as_nobody(child_no_mlock, own), 0);
}

int main(void) {
    (void)t_rand;
    RUN(test_two_processes);
    RUN(test_read_only_directory_and_wrong_permissions);
    RUN(test_full_disk);
    RUN(test_mlock_failure_is_audited);
    return t_done();
}
