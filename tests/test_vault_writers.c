/* vault.h with more than one writer: handles in one process and in several
 * processes. A save through a handle that read an older file is refused
 * (VAULT_ECONFLICT) instead of undoing what the other writer saved; writers
 * take turns on the lock file "<path>.lock", waiting up to lock_timeout_ms.
 *   PLG_TEST_QUICK=1 (valgrind, TSan): fewer credentials per process. */
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include "t.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>

static vault_options fast(void) {
    vault_options o;
    memset(&o, 0, sizeof o);
    o.iterations = 1000; o.min_iterations = 1000;
    return o;
}

static int quick(void) { const char *q = getenv("PLG_TEST_QUICK"); return q && *q && *q != '0'; }

static const char *pathin(const char *dir, const char *name) {
    static char b[4][600]; static int k;
    char *p = b[k++ & 3];
    snprintf(p, 600, "%s/%s", dir, name);
    return p;
}

/* The audit's scenario: the operator rekeys (old password leaked) and adds a
 * key; the engine's older handle then rotates a credential. */
static void test_stale_handle_cannot_undo_rekey(void) {
    const char *d = t_dir("vw_rekey"), *p = pathin(d, "secure_config.json");
    vault_options o = fast();
    vault *c = NULL, *engine = NULL, *op = NULL, *v = NULL;
    char buf[64];
    int rc;
    REQUIRE(vault_create_ex(&c, p, "leaked", &o) == 0);
    REQUIRE(vault_set(c, "coinbase.api_key", "k1") == 0);
    REQUIRE(vault_save(c) == 0);
    vault_close(c);
    REQUIRE(vault_open_ex(&engine, p, "leaked", &o) == 0);
    REQUIRE(vault_open_ex(&op, p, "leaked", &o) == 0);
    CHECK_EQ(vault_rekey(op, "fresh"), 0);
    CHECK_EQ(vault_set(op, "binance.api_key", "b1"), 0);
    CHECK_EQ(vault_save(op), 0);
    rc = vault_rotate(engine, "coinbase.api_key", "k2");
    CHECK_EQ(rc, VAULT_ECONFLICT);
    CHECK_EQ(vault_get(engine, "coinbase.api_key", buf, sizeof buf), 2);   /* the handle is as before */
    CHECK(strcmp(buf, "k1") == 0);
    CHECK_EQ(vault_save(engine), VAULT_ECONFLICT);                         /* plain saves too */
    vault_close(engine);
    CHECK_EQ(vault_open_ex(&v, p, "leaked", &o), VAULT_EAUTH);
    rc = vault_open_ex(&v, p, "fresh", &o);
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        CHECK_EQ(vault_get(v, "binance.api_key", buf, sizeof buf), 2);
        /* reload and retry: the documented way out of a conflict */
        CHECK_EQ(vault_rotate(v, "coinbase.api_key", "k2"), 0);
        vault_close(v);
    }
    /* the operator's handle saw its own saves: it may go on saving */
    CHECK_EQ(vault_set(op, "kraken.api_key", "r1"), 0);
    CHECK_EQ(vault_save(op), VAULT_ECONFLICT);   /* v's rotate came after op's last save */
    vault_close(op);
}

/* A handle keeps saving without conflict as long as nobody else saves. */
static void test_own_saves_are_not_conflicts(void) {
    const char *d = t_dir("vw_own"), *p = pathin(d, "secure_config.json");
    vault_options o = fast();
    vault *v = NULL;
    int i;
    REQUIRE(vault_create_ex(&v, p, "pw", &o) == 0);
    for (i = 0; i < 3; i++) {
        char n[16];
        snprintf(n, sizeof n, "k%d", i);
        CHECK_EQ(vault_set(v, n, "x"), 0);
        CHECK_EQ(vault_save(v), 0);
    }
    CHECK_EQ(vault_rekey(v, "pw2"), 0);
    CHECK_EQ(vault_rotate(v, "k0", "y"), 0);
    vault_close(v);
}

/* Each child adds its credentials one save at a time, with the documented
 * recovery: on VAULT_ECONFLICT close, reopen, set again, save again. */
static int add_many(const char *p, const char *prefix, int n, int start_fd) {
    vault_options o = fast();
    vault *v = NULL;
    char go;
    int i, conflicts = 0;
    if (vault_open_ex(&v, p, "pw", &o) != 0) return 10;
    if (read(start_fd, &go, 1) != 1) return 11;     /* both children hold a handle before either saves */
    for (i = 0; i < n; i++) {
        char name[32];
        int rc, tries;
        snprintf(name, sizeof name, "%s.%02d", prefix, i);
        for (tries = 0;; tries++) {
            if (vault_set(v, name, "value") != 0) return 12;
            rc = vault_save(v);
            if (rc == 0) break;
            if (rc != VAULT_ECONFLICT || tries > 1000) { fprintf(stderr, "save: %s\n", vault_strerror(rc)); return 13; }
            conflicts++;
            vault_close(v);
            if (vault_open_ex(&v, p, "pw", &o) != 0) return 14;
        }
    }
    vault_close(v);
    return 0;
}

static void test_two_processes_lose_nothing(void) {
    const char *d = t_dir("vw_procs"), *p = pathin(d, "secure_config.json");
    vault_options o = fast();
    vault *v = NULL;
    int n = quick() ? 6 : 30, k, pipefd[2], st;
    pid_t kid[2];
    REQUIRE(vault_create_ex(&v, p, "pw", &o) == 0);
    vault_close(v);
    REQUIRE(pipe(pipefd) == 0);
    for (k = 0; k < 2; k++) {
        kid[k] = fork();
        REQUIRE(kid[k] >= 0);
        if (kid[k] == 0) {
            close(pipefd[1]);
            _exit(add_many(p, k ? "binance" : "coinbase", n, pipefd[0]));
        }
    }
    close(pipefd[0]);
    usleep(20000);   /* not needed for correctness: lets both open first more often */
    CHECK_EQ(write(pipefd[1], "gg", 2), 2);
    close(pipefd[1]);
    for (k = 0; k < 2; k++) {
        REQUIRE(waitpid(kid[k], &st, 0) == kid[k]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st)) fprintf(stderr, "  child %d: status 0x%x\n", k, st);
    }
    REQUIRE(vault_open_ex(&v, p, "pw", &o) == 0);
    CHECK_EQ(vault_count(v), 2 * n);
    vault_close(v);
}

/* A second writer waits for the lock; after lock_timeout_ms it gives up with
 * VAULT_ELOCKED and the file is unchanged. */
static void test_second_writer_waits_for_the_lock(void) {
    const char *d = t_dir("vw_lock"), *p = pathin(d, "secure_config.json");
    const char *lk = pathin(d, "secure_config.json.lock"), *mark = pathin(d, "released");
    vault_options o = fast();
    vault *v = NULL, *r = NULL;
    int fd, st, sync_[2];
    pid_t kid;
    char c;
    REQUIRE(vault_create_ex(&v, p, "pw", &o) == 0);
    REQUIRE(vault_set(v, "a", "1") == 0);
    fd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(flock(fd, LOCK_EX | LOCK_NB) == 0);     /* another writer holds it */
    o.lock_timeout_ms = 50;
    vault_close(v);
    REQUIRE(vault_open_ex(&v, p, "pw", &o) == 0);
    REQUIRE(vault_set(v, "a", "1") == 0);
    CHECK_EQ(vault_save(v), VAULT_ELOCKED);
    close(fd);
    REQUIRE(vault_open_ex(&r, p, "pw", &o) == 0);
    CHECK_EQ(vault_count(r), 0);                    /* nothing was written */
    vault_close(r);
    /* now a child holds the lock for a while, then releases it after leaving a mark */
    REQUIRE(pipe(sync_) == 0);
    kid = fork();
    REQUIRE(kid >= 0);
    if (kid == 0) {
        int f = open(lk, O_RDWR | O_CLOEXEC), m;
        if (f < 0 || flock(f, LOCK_EX) != 0) _exit(1);
        if (write(sync_[1], "L", 1) != 1) _exit(2);
        usleep(200000);
        m = open(mark, O_WRONLY | O_CREAT, 0600);
        if (m < 0) _exit(3);
        close(m);
        _exit(0);                                   /* exit closes f: the lock is released */
    }
    close(sync_[1]);
    REQUIRE(read(sync_[0], &c, 1) == 1);
    close(sync_[0]);
    o.lock_timeout_ms = 60000;
    vault_close(v);
    REQUIRE(vault_open_ex(&v, p, "pw", &o) == 0);
    REQUIRE(vault_set(v, "a", "1") == 0);
    CHECK_EQ(vault_save(v), 0);                     /* waited, then saved */
    CHECK(access(mark, F_OK) == 0);                 /* ... only after the holder let go */
    REQUIRE(waitpid(kid, &st, 0) == kid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    vault_close(v);
    REQUIRE(vault_open_ex(&r, p, "pw", &o) == 0);
    CHECK_EQ(vault_count(r), 1);
    vault_close(r);
}

/* Rollback detection (opt-in): every save of a vault opened with
 * vault_options.rollback_state carries a counter inside the authenticated
 * data, and the highest one seen is kept in that state file. Putting back an
 * older copy (a backup holding a revoked key) is refused. */
static void cp_file(const char *from, const char *to) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chmod 600 '%s'", from, to, to);
    if (system(cmd) != 0) { fprintf(stderr, "cp failed\n"); exit(2); }
}
static void test_rollback_is_detected(void) {
    const char *d = t_dir("vw_rollback"), *p = pathin(d, "secure_config.json");
    const char *old = pathin(d, "backup.json"), *state = pathin(d, "seen");
    vault_options o = fast();
    vault *v = NULL;
    char buf[16];
    o.rollback_state = state;
    REQUIRE(vault_create_ex(&v, p, "pw", &o) == 0);
    REQUIRE(vault_set(v, "coinbase.api_key", "revoked") == 0);
    REQUIRE(vault_save(v) == 0);
    vault_close(v);
    cp_file(p, old);                                   /* a backup, with the revoked key */
    REQUIRE(vault_open_ex(&v, p, "pw", &o) == 0);
    CHECK_EQ(vault_rotate(v, "coinbase.api_key", "current"), 0);
    vault_close(v);
    cp_file(old, p);                                   /* someone puts the backup back */
    CHECK_EQ(vault_open_ex(&v, p, "pw", &o), VAULT_EROLLBACK);
    CHECK(v == NULL);
    {   /* without the state file the check is off (opt-in) */
        vault_options plain = fast();
        CHECK_EQ(vault_open_ex(&v, p, "pw", &plain), 0);
        if (v) { CHECK_EQ(vault_get(v, "coinbase.api_key", buf, sizeof buf), 7); vault_close(v); v = NULL; }
    }
    /* the counter is authenticated: editing it in the file is VAULT_EAUTH */
    {
        size_t n = 0;
        FILE *f = fopen(old, "rb");
        char text[4096], *c;
        REQUIRE(f != NULL);
        n = fread(text, 1, sizeof text - 1, f); fclose(f); text[n] = 0;
        c = strstr(text, "\"counter\": ");
        REQUIRE(c != NULL);
        c += 11;
        REQUIRE(*c >= '1' && *c <= '8');
        *c = '9';                                      /* a higher counter than ever seen */
        unlink(p);
        f = fopen(p, "wb");
        REQUIRE(f != NULL);
        fwrite(text, 1, n, f); fclose(f); chmod(p, 0600);
        CHECK_EQ(vault_open_ex(&v, p, "pw", &o), VAULT_EAUTH);
    }
}

int main(void) {
    (void)t_rand;
    RUN(test_stale_handle_cannot_undo_rekey);
    RUN(test_own_saves_are_not_conflicts);
    RUN(test_two_processes_lose_nothing);
    RUN(test_second_writer_waits_for_the_lock);
    RUN(test_rollback_is_detected);
    return t_done();
}
