/* picolog.h under hostile operating conditions: each gives a clear error and
 * loses nothing that was acknowledged.
 *   - a full disk: a small loop-mounted ext4 (root, loop devices), else a
 *     size-limited tmpfs (root), else SKIP (the simulated disk's ENOSPC
 *     injection in test_sim_picolog covers the logic);
 *   - a read-only directory, and files with the wrong owner/mode (as an
 *     unprivileged user: a child drops to nobody when run as root, since root
 *     ignores permission bits), and a read-only filesystem;
 *   - a second process opening the same log (flock across processes), and
 *     the lock going away with a SIGKILLed holder.
 * Each prints the error and the message picolog gave, so the run shows what
 * an operator would see. */
// NO_TSAN
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "t.h"
#include "conditions.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

static char last_msg[1024];
static void keep_log(void *user, int code, const char *msg) {
    (void)user; (void)code;
    snprintf(last_msg, sizeof last_msg, "%s", msg);
}

static plg_config cfg_for(const char *dir) {
    plg_config c;
    memset(&c, 0, sizeof c);
    c.path = dir; c.log_fn = keep_log;
    c.segment_size = 1 << 20; c.ring_capacity = 1 << 20;
    return c;
}

static int open_log(plg_log **L, plg_config *c) {
    last_msg[0] = 0;
    int rc = plg_open(L, c);
    if (rc == PLG_ENODIRECT) { c->io_mode = PLG_IO_BUFFERED_FDATASYNC; rc = plg_open(L, c); }
    return rc;
}

static void fill(uint8_t *p, uint32_t len, uint64_t seq) {
    for (uint32_t i = 0; i < len; i++) p[i] = (uint8_t)(seq * 31 + i);
}

/* Records 1..n present, dense, with their content; returns how many. */
static uint64_t count_valid(const char *dir, uint32_t len) {
    plg_reader *r;
    if (plg_reader_open(&r, dir) != 0) return 0;
    plg_record rec; uint64_t n = 0;
    static uint8_t exp[4096];
    while (plg_reader_next(r, &rec) == 1) {
        fill(exp, len, rec.seq);
        if (rec.seq != n + 1 || rec.len != len || memcmp(exp, rec.data, len) != 0) break;
        n++;
    }
    plg_reader_close(r);
    return n;
}

/* Appends len-byte records until the log refuses; returns what was acked. */
static uint64_t append_until_error(plg_log *L, uint32_t len, uint64_t max) {
    static uint8_t buf[4096];
    for (uint64_t i = 0; i < max; i++) {
        uint64_t seq = plg_appended(L) + 1;
        fill(buf, len, seq);
        int64_t s;
        while ((s = plg_append(L, buf, len)) == PLG_EFULL) {
            if (plg_error(L)) break;
            sched_yield();
        }
        if (s < 0) break;
        if (i % 64 == 63 && plg_wait(L, (uint64_t)s, 10000000000ll) != 0) break;
    }
    plg_wait(L, plg_appended(L), 10000000000ll);
    return plg_durable(L);
}

static int run(const char *cmd) { return system(cmd); }

/* ---- a full disk -------------------------------------------------------- */
static void test_full_disk(void) {
    if (geteuid() != 0) SKIP("needs root to mount a small filesystem; ENOSPC is covered by the simulated disk (test_sim_picolog)");
    char img[600], mnt[600], cmd[4000];
    const char *kind = "loop-mounted ext4, 12 MiB";
    if (t_mount_small_ext4("plg_full_disk", mnt, sizeof mnt, img, sizeof img) != 0) {
        kind = "size-limited tmpfs, 12 MiB";
        if (mount("tmpfs", mnt, "tmpfs", 0, "size=12m") != 0)
            SKIP("cannot mount a loop ext4 or a tmpfs here; ENOSPC is covered by the simulated disk (test_sim_picolog)");
    }
    printf("  full disk: %s\n", kind);
    char logdir[700], ballast[700];
    snprintf(logdir, sizeof logdir, "%s/log", mnt);
    snprintf(ballast, sizeof ballast, "%s/ballast", mnt);
    snprintf(cmd, sizeof cmd, "dd if=/dev/zero of='%s' bs=1M count=2 status=none", ballast);
    CHECK_EQ(run(cmd), 0);
    plg_config c = cfg_for(logdir);
    if (strstr(kind, "tmpfs")) c.flags |= PLG_ALLOW_VOLATILE;   /* only the ENOSPC logic is tested there */
    plg_log *L;
    int rc = open_log(&L, &c);
    if (rc) fprintf(stderr, "  open on the small fs: %s (%s)\n", plg_strerror(rc), last_msg);
    CHECK_EQ(rc, 0);                                   /* 10 MiB free: a log must open; the test is void otherwise */
    if (rc == 0) {
        uint64_t acked = append_until_error(L, 1000, 100000);
        int err = plg_error(L);
        printf("  filled: %llu records acknowledged, then %s; message: %s\n", (unsigned long long)acked,
               plg_strerror(err), last_msg);
        CHECK_EQ(err, PLG_ENOSPC);
        CHECK(acked > 1000);
        CHECK_EQ(plg_append(L, "x", 1), PLG_ENOSPC);      /* refuses from now on, says why */
        CHECK_EQ(plg_close(L), PLG_ENOSPC);
        uint64_t got = count_valid(logdir, 1000);
        CHECK(got >= acked);                               /* nothing acknowledged is lost */
        /* reopening on the still-full disk: recovers, and says ENOSPC when it needs space */
        rc = open_log(&L, &c);
        printf("  reopen on the full disk: %s%s%s\n", plg_strerror(rc), last_msg[0] ? "; " : "", last_msg);
        if (rc == 0) {
            CHECK_EQ(plg_appended(L), got);
            uint64_t more = append_until_error(L, 1000, 100000);
            CHECK(more >= got);
            int e2 = plg_error(L), c2 = plg_close(L);
            CHECK(e2 == 0 || e2 == PLG_ENOSPC);
            CHECK(c2 == 0 || c2 == PLG_ENOSPC);
            got = count_valid(logdir, 1000);
            CHECK(got >= more);
        } else {
            CHECK_EQ(rc, PLG_ENOSPC);
        }
        /* space comes back: the log continues densely */
        CHECK_EQ(unlink(ballast), 0);
        rc = open_log(&L, &c);
        CHECK_EQ(rc, 0);
        if (rc == 0) {
            CHECK_EQ(plg_appended(L), got);
            static uint8_t buf[1000];
            fill(buf, 1000, got + 1);
            CHECK_EQ(plg_append(L, buf, 1000), (int64_t)got + 1);
            CHECK_EQ(plg_wait(L, got + 1, 10000000000ll), 0);
            CHECK_EQ(plg_close(L), 0);
            CHECK_EQ(count_valid(logdir, 1000), got + 1);
        }
        /* a new log on a disk with no room at all */
        snprintf(cmd, sizeof cmd, "dd if=/dev/zero of='%s' bs=1M count=64 status=none 2>/dev/null; true", ballast);
        CHECK_EQ(run(cmd), 0);
        char newdir[800]; snprintf(newdir, sizeof newdir, "%s/log2", mnt);
        plg_config c3 = cfg_for(newdir);
        c3.flags = c.flags;
        rc = open_log(&L, &c3);
        printf("  a new log on a full disk: %s%s%s\n", plg_strerror(rc), last_msg[0] ? "; " : "", last_msg);
        CHECK_EQ(rc, PLG_ENOSPC);
        if (rc == 0) plg_close(L);
        CHECK_EQ(count_valid(logdir, 1000), got + 1);     /* the other log is untouched */
    }
    CHECK_EQ(umount(mnt), 0);
}

/* A burst that fills the disk. Segments made while the writer is busy get
 * allocated but unwritten extents (plg_stats segments_unwritten), and each
 * write converts the extents it covers: the filesystem may need metadata
 * blocks for that at the moment the disk is full. The log still ends in a
 * named ENOSPC, every acknowledged record reads back, and it goes on
 * densely once space comes back. */
static void test_full_disk_in_a_burst(void) {
    if (geteuid() != 0) SKIP("needs root to mount a small filesystem");
    char img[600], mnt[600], cmd[4000];
    if (t_mount_small_ext4("plg_full_burst", mnt, sizeof mnt, img, sizeof img) != 0)
        SKIP("cannot mount a loop ext4 here");
    char logdir[700], ballast[700];
    snprintf(logdir, sizeof logdir, "%s/log", mnt);
    snprintf(ballast, sizeof ballast, "%s/ballast", mnt);
    snprintf(cmd, sizeof cmd, "dd if=/dev/zero of='%s' bs=1M count=2 status=none", ballast);
    CHECK_EQ(run(cmd), 0);
    plg_config c = cfg_for(logdir);                    /* 1 MiB segments */
    c.max_write_bytes = 2 * PLG_PAGE_SIZE;             /* 2 full pages waiting: the writer counts as busy */
    plg_log *L;
    int rc = open_log(&L, &c);
    REQUIRE(rc == 0);
    if (c.io_mode != PLG_IO_DIRECT) { plg_close(L); umount(mnt); SKIP("no O_DIRECT on the loop ext4"); }
    static uint8_t buf[1000];
    uint64_t appended = 0;
    for (uint64_t i = 0; i < 100000 && !plg_error(L); i++) {     /* never waits: a burst */
        fill(buf, sizeof buf, appended + 1);
        int64_t s;
        while ((s = plg_append(L, buf, sizeof buf)) == PLG_EFULL && !plg_error(L)) sched_yield();
        if (s < 0) break;
        appended = (uint64_t)s;
    }
    plg_wait(L, appended, 10000000000ll);
    uint64_t acked = plg_durable(L);
    int err = plg_error(L);
    plg_stats st;
    plg_get_stats(L, &st);
    printf("  burst on a full disk: %llu appended, %llu acknowledged, %llu of %llu segments unwritten, then %s; message: %s\n",
           (unsigned long long)appended, (unsigned long long)acked, (unsigned long long)st.segments_unwritten,
           (unsigned long long)st.segments_created, plg_strerror(err), last_msg);
    CHECK(st.segments_unwritten > 0);                  /* the case under test happened */
    CHECK_EQ(err, PLG_ENOSPC);
    CHECK(acked > 1000);
    CHECK_EQ(plg_append(L, "x", 1), PLG_ENOSPC);
    CHECK_EQ(plg_close(L), PLG_ENOSPC);
    uint64_t got = count_valid(logdir, 1000);
    CHECK(got >= acked);                               /* nothing acknowledged is lost */
    plg_check_result cr;
    CHECK_EQ(plg_check(logdir, &cr), 0);               /* a torn tail at most, no corruption */
    CHECK_EQ(unlink(ballast), 0);                      /* space comes back */
    rc = open_log(&L, &c);
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        CHECK_EQ(plg_appended(L), got);
        fill(buf, sizeof buf, got + 1);
        CHECK_EQ(plg_append(L, buf, sizeof buf), (int64_t)got + 1);
        CHECK_EQ(plg_wait(L, got + 1, 10000000000ll), 0);
        CHECK_EQ(plg_close(L), 0);
        CHECK_EQ(count_valid(logdir, 1000), got + 1);
    }
    CHECK_EQ(umount(mnt), 0);
}

/* A temporary ENOSPC while the next segment is made is not sticky: the
 * preallocation is retried, reports ENOSPC meanwhile (plg_stats), and once
 * space is free the log goes on past the segment boundary, unpoisoned. */
static void test_preallocation_retried_after_space_freed(void) {
    if (geteuid() != 0) SKIP("needs root to mount a small filesystem");
    char img[600], mnt[600], cmd[4000];
    if (t_mount_small_ext4("plg_prealloc_enospc", mnt, sizeof mnt, img, sizeof img) != 0)
        SKIP("cannot mount a loop ext4 here");
    char logdir[700], ballast[700];
    snprintf(logdir, sizeof logdir, "%s/log", mnt);
    snprintf(ballast, sizeof ballast, "%s/ballast", mnt);
    struct statvfs vs;
    REQUIRE(statvfs(mnt, &vs) == 0);
    uint64_t avail = (uint64_t)vs.f_bavail * vs.f_frsize, room = (3u << 20) / 2;   /* segment 1 and a half */
    REQUIRE(avail > room + (1u << 20));
    snprintf(cmd, sizeof cmd, "fallocate -l %llu '%s'", (unsigned long long)(avail - room), ballast);
    CHECK_EQ(run(cmd), 0);
    plg_config c = cfg_for(logdir);                    /* 1 MiB segments */
    plg_log *L;
    int rc = open_log(&L, &c);
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        plg_stats st;
        for (int i = 0; i < 5000; i++) { plg_get_stats(L, &st); if (st.prealloc_error) break; usleep(1000); }
        printf("  segment 2 on the full disk: %s, errno %d\n", plg_strerror(st.prealloc_error), st.prealloc_errno);
        CHECK_EQ(st.prealloc_error, PLG_ENOSPC);
        CHECK_EQ(st.prealloc_errno, ENOSPC);
        CHECK_EQ(plg_error(L), 0);
        CHECK_EQ(unlink(ballast), 0);                  /* space comes back */
        uint64_t acked = append_until_error(L, 1000, 2600);   /* through segments 2 and 3 */
        CHECK_EQ(plg_error(L), 0);
        CHECK_EQ(acked, 2600);
        plg_get_stats(L, &st);
        CHECK_EQ(st.prealloc_error, 0);
        CHECK_EQ(plg_close(L), 0);
        CHECK_EQ(count_valid(logdir, 1000), 2600);
    }
    CHECK_EQ(umount(mnt), 0);
}

/* ---- permissions, as an unprivileged user -------------------------------- */
static int child_new_log_in_ro_dir(const char *parent) {
    char dir[700]; snprintf(dir, sizeof dir, "%s/log", parent);
    plg_config c = cfg_for(dir);
    plg_log *L;
    int rc = open_log(&L, &c);
    printf("  new log in a read-only directory: %s%s%s\n", plg_strerror(rc), last_msg[0] ? "; " : "", last_msg);
    if (rc == 0) { plg_close(L); return 1; }
    return rc == PLG_EACCES ? 0 : 2;
}

static int child_existing_log_not_writable(const char *dir) {
    plg_config c = cfg_for(dir);
    plg_log *L;
    int rc = open_log(&L, &c);
    printf("  existing log, files not writable by this user: %s%s%s\n", plg_strerror(rc), last_msg[0] ? "; " : "", last_msg);
    if (rc == 0) { plg_close(L); return 1; }
    /* reading needs no write permission */
    if (count_valid(dir, 100) != 500) return 3;
    return rc == PLG_EACCES ? 0 : 2;
}

static void make_log(const char *dir, uint64_t n) {
    plg_config c = cfg_for(dir);
    c.segment_size = 64 * 1024;
    plg_log *L;
    REQUIRE(open_log(&L, &c) == 0);
    static uint8_t buf[100];
    for (uint64_t i = 1; i <= n; i++) { fill(buf, 100, i); while (plg_append(L, buf, 100) == PLG_EFULL) sched_yield(); }
    CHECK_EQ(plg_close(L), 0);
}

static void test_read_only_directory_and_wrong_permissions(void) {
    const char *base = t_dir("plg_perm");
    char ro[600], logdir[600], cmd[2000];
    snprintf(ro, sizeof ro, "%s/ro", base);
    snprintf(logdir, sizeof logdir, "%s/log", base);
    mkdir(ro, 0555); chmod(ro, 0555);
    chmod(base, 0755);
    /* t_dir's parents must be traversable by nobody */
    snprintf(cmd, sizeof cmd, "d='%s'; while [ \"$d\" != . ] && [ \"$d\" != / ]; do chmod o+x \"$d\" 2>/dev/null; d=$(dirname \"$d\"); done", base);
    CHECK_EQ(run(cmd), 0);
    CHECK_EQ(t_as_nobody(child_new_log_in_ro_dir, ro), 0);
    make_log(logdir, 500);                     /* owned by this user, 0644 files */
    CHECK_EQ(t_as_nobody(child_existing_log_not_writable, logdir), 0);
    CHECK_EQ(count_valid(logdir, 100), 500);    /* nothing lost */
    plg_check_result cr;
    CHECK_EQ(plg_check(logdir, &cr), 0);
}

/* A read-only filesystem (root: a read-only bind mount of the log). */
static void test_read_only_filesystem(void) {
    if (geteuid() != 0) SKIP("needs root for a read-only bind mount");
    const char *base = t_dir("plg_rofs");
    char logdir[600], view[600];
    snprintf(logdir, sizeof logdir, "%s/log", base);
    snprintf(view, sizeof view, "%s/view", base);
    make_log(logdir, 300);
    mkdir(view, 0755);
    /* the type is ignored for bind mounts and remounts; "none" rather than NULL
     * keeps valgrind from reporting a NULL string argument */
    if (mount(logdir, view, "none", MS_BIND, NULL) != 0) SKIP("bind mount not allowed here");
    if (mount("none", view, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0) { umount(view); SKIP("read-only remount not allowed here"); }
    plg_config c = cfg_for(view);
    plg_log *L;
    int rc = open_log(&L, &c);
    printf("  log on a read-only filesystem: %s%s%s\n", plg_strerror(rc), last_msg[0] ? "; " : "", last_msg);
    CHECK_EQ(rc, PLG_EACCES);
    if (rc == 0) plg_close(L);
    CHECK_EQ(count_valid(view, 100), 300);      /* still readable */
    CHECK_EQ(umount(view), 0);
    CHECK_EQ(count_valid(logdir, 100), 300);
}

/* ---- a second process --------------------------------------------------- */
static void test_second_process(void) {
    const char *dir = t_dir("plg_two_procs");
    int p2c[2], c2p[2];
    REQUIRE(pipe(p2c) == 0 && pipe(c2p) == 0);
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        plg_config c = cfg_for(dir);
        plg_log *L;
        char ok = open_log(&L, &c) == 0 ? 'y' : 'n';
        static uint8_t buf[100];
        for (uint64_t i = 1; ok == 'y' && i <= 200; i++) { fill(buf, 100, i); plg_append(L, buf, 100); }
        if (ok == 'y' && plg_wait(L, 200, 10000000000ll) != 0) ok = 'n';
        if (write(c2p[1], &ok, 1) != 1) _exit(1);
        char go;
        if (read(p2c[0], &go, 1) != 1) _exit(1);      /* hold the log until told */
        if (go == 'k') { for (;;) pause(); }            /* wait for SIGKILL, log open */
        _exit(plg_close(L) == 0 ? 0 : 1);
    }
    char ok = 0;
    REQUIRE(read(c2p[0], &ok, 1) == 1);
    CHECK_EQ(ok, 'y');
    plg_config c = cfg_for(dir);
    plg_log *L = NULL;
    int rc = open_log(&L, &c);
    printf("  second process opens the same log: %s%s%s\n", plg_strerror(rc), last_msg[0] ? "; " : "", last_msg);
    CHECK_EQ(rc, PLG_ELOCKED);
    CHECK(L == NULL);
    CHECK_EQ(count_valid(dir, 100), 200);       /* reading alongside the writer is fine */
    char go = 'k';
    CHECK_EQ(write(p2c[1], &go, 1), 1);
    usleep(20000);
    kill(pid, SIGKILL);                          /* the holder dies with the log open */
    int st; waitpid(pid, &st, 0);
    rc = open_log(&L, &c);                       /* the kernel dropped its lock */
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        CHECK_EQ(plg_appended(L), 200);
        CHECK_EQ(plg_close(L), 0);
    }
    close(p2c[0]); close(p2c[1]); close(c2p[0]); close(c2p[1]);
}

int main(void) {
    (void)t_rand;
    RUN(test_second_process);
    RUN(test_read_only_directory_and_wrong_permissions);
    RUN(test_read_only_filesystem);
    RUN(test_full_disk);
    RUN(test_full_disk_in_a_burst);
    RUN(test_preallocation_retried_after_space_freed);
    return t_done();
}
