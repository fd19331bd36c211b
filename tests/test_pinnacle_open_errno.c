/* SPDX-License-Identifier: MIT */
/* pp_open_errno: the errno behind a failed pp_open or pp_book_open (a failed
 * open has no book whose stats could say why): a permission error, running
 * out of file descriptors, a lock held by another store; cleared by a
 * successful open; 0 when the open failed for a reason with no errno behind
 * it, even after it handled an errno on its way. The permission cases run in a child that is not root. */
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "t.h"
#include "conditions.h"

#include <sys/resource.h>

static void quiet(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }

static pp_config cfg_for(const char *dir) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.flags = PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT;
    c.log_fn = quiet;
    c.expected_orders = 1024;
    c.ring_entries = 1024;
    c.journal_chunk_bytes = 64 << 10;
    c.journal_segment_bytes = 1 << 20;
    if (t_pp_format() == 1) c.flags |= PP_LEGACY_LAYOUT;   /* PP_TEST_FORMAT=1: the per-instrument layout */
    return c;
}

/* No free file descriptor is left below the soft limit: the next open,
 * socket or dup fails with EMFILE. In a child only. */
static int use_up_fds(void) {
    int fd = dup(2);
    if (fd < 0) return -1;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    rl.rlim_cur = (rlim_t)fd + 1;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

/* exit status: 0 when every expectation held, else the number of the failed one */
static int child_store_under_ro_dir(const char *ro) {
    char dir[700];
    snprintf(dir, sizeof dir, "%s/data", ro);
    pp_config c = cfg_for(dir);
    pp_store *s;
    int rc = pp_open(&s, &c);
    if (rc != PP_EACCES) { printf("  pp_open under a read-only dir: %s\n", pp_strerror(rc)); return 1; }
    if (pp_open_errno() != EACCES) { printf("  pp_open_errno %d, want EACCES\n", pp_open_errno()); return 2; }
    return 0;
}

static int child_new_book_in_ro_store(const char *dir) {
    pp_config c = cfg_for(dir);
    pp_store *s;
    if (pp_open(&s, &c) != 0) return 3;
    if (pp_open_errno() != 0) return 4;
    pp_book *b;
    int rc = pp_book_open(s, "NEW", &b), e = pp_open_errno();
    pp_close(s);
    if (t_pp_format() == 2) {   /* a new instrument is a frame of the store journal: no file to create */
        if (rc != 0) { printf("  pp_book_open in a read-only format-2 store: %s\n", pp_strerror(rc)); return 5; }
        return e == 0 ? 0 : 6;
    }
    if (rc != PP_EACCES) { printf("  pp_book_open in a read-only store: %s\n", pp_strerror(rc)); return 5; }
    if (e != EACCES) { printf("  pp_open_errno %d, want EACCES\n", e); return 6; }
    return 0;
}

static int child_no_fds(const char *dir) {
    pp_config c = cfg_for(dir);
    pp_store *s;
    if (use_up_fds() != 0) return 7;
    int rc = pp_open(&s, &c);
    if (rc != PP_EMFILE) { printf("  pp_open without a free fd: %s\n", pp_strerror(rc)); return 8; }
    if (pp_open_errno() != EMFILE) { printf("  pp_open_errno %d, want EMFILE\n", pp_open_errno()); return 9; }
    return 0;
}

static int child_book_without_fds(const char *dir) {
    pp_config c = cfg_for(dir);
    pp_store *s;
    if (pp_open(&s, &c) != 0) return 10;
    if (use_up_fds() != 0) return 11;
    pp_book *b;
    int rc = pp_book_open(s, "NOFD", &b), e = pp_open_errno();
    pp_close(s);
    if (t_pp_format() == 2) {   /* an instrument costs no descriptor */
        if (rc != 0) { printf("  pp_book_open without a free fd, format 2: %s\n", pp_strerror(rc)); return 12; }
        return e == 0 ? 0 : 13;
    }
    if (rc != PP_EMFILE) { printf("  pp_book_open without a free fd: %s\n", pp_strerror(rc)); return 12; }
    if (e != EMFILE) { printf("  pp_open_errno %d, want EMFILE\n", e); return 13; }
    return 0;
}

static int in_child(int (*fn)(const char *), const char *arg) {
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) { int r = fn(arg); fflush(stdout); _exit(r); }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

static void test_permission_error_gives_eacces(void) {
    const char *base = t_dir("pp_open_errno_perm");
    char ro[600], store[600], cmd[1600];
    snprintf(ro, sizeof ro, "%s/ro", base);
    snprintf(store, sizeof store, "%s/store", base);
    REQUIRE(mkdir(ro, 0555) == 0 && chmod(ro, 0555) == 0 && chmod(base, 0755) == 0);
    /* t_dir's parents must be traversable by nobody */
    snprintf(cmd, sizeof cmd, "d='%s'; while [ \"$d\" != . ] && [ \"$d\" != / ]; do chmod o+x \"$d\" 2>/dev/null; d=$(dirname \"$d\"); done", base);
    REQUIRE(system(cmd) == 0);
    CHECK_EQ(t_as_nobody(child_store_under_ro_dir, ro), 0);

    /* a store the child owns, its directory made read-only: no new book */
    pp_config c = cfg_for(store);
    pp_store *s;
    REQUIRE(pp_open(&s, &c) == 0);
    CHECK_EQ(pp_open_errno(), 0);
    CHECK_EQ(pp_close(s), 0);
    snprintf(cmd, sizeof cmd, "%s '%s' && chmod 555 '%s'", geteuid() == 0 ? "chown -R 65534:65534" : "true", store, store);
    REQUIRE(system(cmd) == 0);
    CHECK_EQ(t_as_nobody(child_new_book_in_ro_store, store), 0);
    chmod(store, 0755);
}

static void test_out_of_file_descriptors_gives_emfile(void) {
    const char *base = t_dir("pp_open_errno_fds");
    char fresh[600], store[600];
    snprintf(fresh, sizeof fresh, "%s/fresh", base);
    snprintf(store, sizeof store, "%s/store", base);
    CHECK_EQ(in_child(child_no_fds, fresh), 0);
    CHECK_EQ(in_child(child_book_without_fds, store), 0);
}

static void test_lock_held_gives_ewouldblock_and_success_clears_it(void) {
    const char *dir = t_dir("pp_open_errno_lock");
    pp_config c = cfg_for(dir);
    pp_store *a, *b;
    REQUIRE(pp_open(&a, &c) == 0);
    CHECK_EQ(pp_open(&b, &c), PP_ELOCKED);
    CHECK_EQ(pp_open_errno(), EWOULDBLOCK);
    pp_book *bk;
    CHECK_EQ(pp_book_open(a, "BTC-USD", &bk), 0);
    CHECK_EQ(pp_open_errno(), 0);                /* a successful open clears it */
    CHECK_EQ(pp_book_open(a, "../x", &bk), PP_ENAME);
    CHECK_EQ(pp_open_errno(), 0);                /* no system call behind it */
    CHECK_EQ(pp_close(a), 0);
}

/* An open that handled an errno on its way (format 2: no catalog file yet,
 * ENOENT, which only means no compaction has run) and then failed for a
 * reason with no errno behind it (a flipped bit below the durable mark):
 * pp_open_errno is 0, not the errno it handled. */
static void test_corruption_after_a_handled_errno_gives_no_errno(void) {
    if (t_pp_format() == 1) SKIP("format 2 only (the catalog file)");
    const char *dir = t_dir("pp_open_errno_corrupt");
    pp_config c = cfg_for(dir);
    pp_store *s;
    pp_book *b;
    REQUIRE(pp_open(&s, &c) == 0);
    REQUIRE(pp_book_open(s, "BTC-USD", &b) == 0);
    for (uint64_t id = 1; id <= 50; id++) {
        pp_order o = {id, 100, 1, 7, PP_BUY, 0, NULL, 0};
        REQUIRE(pp_add(b, &o) == 0);
    }
    REQUIRE(pp_sync(b) == 0);
    REQUIRE(pp_close(s) == 0);
    char cat[600], jd[600], seg[1200];
    snprintf(cat, sizeof cat, "%s/instruments.ppc", dir);
    CHECK(access(cat, F_OK) != 0);              /* the open below meets ENOENT first */
    snprintf(jd, sizeof jd, "%s/journal", dir);
    uint64_t *v; size_t n;
    REQUIRE(pp__list_numbered(jd, ".ppj", 0, &v, &n) == 0 && n >= 1);
    pp__numbered(seg, sizeof seg, jd, v[0], ".ppj");
    PINNACLE_PERSIST_FREE(v);
    int fd = open(seg, O_RDWR);
    REQUIRE(fd >= 0);
    uint8_t x = 0;
    REQUIRE(pread(fd, &x, 1, 4096 + 10 * 64 + 20) == 1);   /* inside an early frame, below the mark */
    x ^= 0x10;
    REQUIRE(pwrite(fd, &x, 1, 4096 + 10 * 64 + 20) == 1);
    close(fd);
    CHECK_EQ(pp_open(&s, &c), PP_ECORRUPT);
    CHECK_EQ(pp_open_errno(), 0);
}

int main(void) {
    (void)t_rand; (void)t_mount_small_ext4;
    RUN(test_permission_error_gives_eacces);
    RUN(test_out_of_file_descriptors_gives_emfile);
    RUN(test_lock_held_gives_ewouldblock_and_success_clears_it);
    RUN(test_corruption_after_a_handled_errno_gives_no_errno);
    return t_done();
}
