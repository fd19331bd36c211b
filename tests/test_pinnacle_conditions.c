/* pinnacle_persist.h under hostile operating conditions: each gives a clear
 * error code and loses nothing that pp_durable() acknowledged.
 *   - a full disk: a small loop-mounted ext4 (root, loop devices), else SKIP;
 *     journal growth and snapshots fail with PP_ENOSPC, the book is poisoned,
 *     and everything acknowledged comes back after pp_close + pp_open, on the
 *     full disk and after space is freed; in strict mode (a picolog journal)
 *     the log's PLG_ENOSPC reaches the book as PP_ENOSPC;
 *   - a read-only directory, files owned by another user, mode 000 files (as
 *     an unprivileged user: a child drops to nobody when run as root, since
 *     root ignores permission bits), and a read-only filesystem: PP_EACCES,
 *     nothing existing damaged;
 *   - a second process opening the same data_dir (<data_dir>/LOCK flock):
 *     PP_ELOCKED while the first holds it, and free again once the holder is
 *     SIGKILLed.
 * Each prints the code and the message pinnacle gave, so the run shows what
 * an operator would see. */
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "t.h"
#include "conditions.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>

/* every message since the last say(); the store's threads log too */
static char last_msg[2048];
static pthread_mutex_t msg_mu = PTHREAD_MUTEX_INITIALIZER;
static void keep_msg(void *u, int code, const char *msg) {
    (void)u; (void)code;
    pthread_mutex_lock(&msg_mu);
    size_t n = strlen(last_msg);
    snprintf(last_msg + n, sizeof last_msg - n, "%s%s", n ? " | " : "", msg);
    pthread_mutex_unlock(&msg_mu);
}

static pp_config cfg_for(const char *dir) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.flags = PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT;
    c.log_fn = keep_msg;
    c.expected_orders = 1024;
    c.ring_entries = 1024;
    c.journal_chunk_bytes = 64 << 10;
    c.journal_segment_bytes = 1 << 20;
    if (t_pp_format() == 1) c.flags |= PP_LEGACY_LAYOUT;   /* PP_TEST_FORMAT=1: the per-instrument layout */
    return c;
}

static void clear_msg(void) { pthread_mutex_lock(&msg_mu); last_msg[0] = 0; pthread_mutex_unlock(&msg_mu); }
static int open_store(pp_store **s, const pp_config *c) { clear_msg(); return pp_open(s, c); }
static void say(const char *what, int rc) {
    pthread_mutex_lock(&msg_mu);
    printf("  %s: %s%s%s\n", what, rc ? pp_strerror(rc) : "ok", last_msg[0] ? "; message: " : "", last_msg);
    last_msg[0] = 0;
    pthread_mutex_unlock(&msg_mu);
}

/* The workload: event seq s (1-based) is, for odd s, the add of order
 * (s+1)/2; for even s, the cancel of order s/2 unless s/2 is a multiple of 10
 * (those stay). So the book after seq L is known from L alone, and a
 * snapshot stays small. */
static int event(pp_book *b, uint64_t s) {
    if (s & 1) {
        pp_order o;
        memset(&o, 0, sizeof o);
        o.id = (s + 1) / 2; o.price = 1000 + (int64_t)(o.id % 7); o.qty = 1 + (int64_t)(o.id % 5);
        o.ts_ns = o.id * 3; o.side = (o.id & 1) ? PP_BUY : PP_SELL;
        return pp_add(b, &o);
    }
    uint64_t id = s / 2;
    if (id % 10 == 0) {                 /* keep it: a partial fill instead, unless that would empty it */
        int64_t q = 1 + (int64_t)(id % 5);
        return q > 1 ? pp_execute(b, id, 1, 1000) : pp_modify(b, id, 1001, 1);
    }
    return pp_cancel(b, id);
}

/* The book holds exactly what seq L implies. */
static int book_is(pp_book *b, uint64_t L) {
    if (pp_last_seq(b) != L) { fprintf(stderr, "    last seq %llu, want %llu\n", (unsigned long long)pp_last_seq(b), (unsigned long long)L); return 0; }
    uint64_t live = 0;
    for (uint64_t id = 1; 2 * id - 1 <= L; id++) {
        int want = id % 10 == 0 || 2 * id > L;
        pp_order o;
        int got = pp_find(b, id, &o) == 0;
        if (got != want) { fprintf(stderr, "    order %llu: present %d, want %d\n", (unsigned long long)id, got, want); return 0; }
        if (got) {
            int64_t q = 1 + (int64_t)(id % 5);
            if (id % 10 == 0 && 2 * id <= L) q = q > 1 ? q - 1 : 1;
            if (o.qty != q) { fprintf(stderr, "    order %llu: qty %lld, want %lld\n", (unsigned long long)id, (long long)o.qty, (long long)q); return 0; }
            live++;
        }
    }
    return pp_order_count(b) == live;
}

/* Journals events from pp_last_seq+1 on, pp_sync every `every`; stops at the
 * first error (returned) or after max events. *acked = pp_durable at the end. */
static int run_events(pp_book *b, uint64_t max, uint64_t every, uint64_t *acked) {
    int rc = 0;
    for (uint64_t i = 0; i < max && !rc; i++) {
        while ((rc = event(b, pp_last_seq(b) + 1)) == PP_EFULL) sched_yield();   /* strict mode's ring */
        if (!rc && (i + 1) % every == 0) rc = pp_sync(b);
    }
    if (!rc) rc = pp_sync(b);
    *acked = pp_durable(b);
    return rc;
}

static int run(const char *cmd) { return system(cmd); }
static int count_tmp(const char *dir) {
    char cmd[5000];
    snprintf(cmd, sizeof cmd, "test -z \"$(find '%s' -name '*.tmp' 2>/dev/null)\"", dir);
    return run(cmd) == 0 ? 0 : 1;
}

/* ---- a full disk -------------------------------------------------------- */
static void test_full_disk(void) {
    if (geteuid() != 0) SKIP("needs root to mount a small filesystem");
    char img[600], mnt[600], cmd[4000], data[700], ballast[700];
    if (t_mount_small_ext4("pp_full_disk", mnt, sizeof mnt, img, sizeof img) != 0)
        SKIP("cannot mount a loop ext4 here (no loop devices?)");
    printf("  full disk: loop-mounted ext4, 12 MiB\n");
    snprintf(data, sizeof data, "%s/data", mnt);
    snprintf(ballast, sizeof ballast, "%s/ballast", mnt);
    snprintf(cmd, sizeof cmd, "dd if=/dev/zero of='%s' bs=1M count=2 status=none", ballast);
    CHECK_EQ(run(cmd), 0);
    pp_config c = cfg_for(data);
    pp_store *s; pp_book *b;
    int rc = open_store(&s, &c);
    CHECK_EQ(rc, 0);
    if (rc == 0) rc = pp_book_open(s, "BTC-USD", &b);
    CHECK_EQ(rc, 0);
    if (rc) { if (s) pp_close(s); umount(mnt); return; }
    static const char conn1[] = "wss://feed.example/v1 channels=ticker";
    CHECK_EQ(pp_conn_put(s, "feed", conn1, sizeof conn1), 0);
    uint64_t acked = 0;
    int err = run_events(b, 2000000, 1000, &acked);
    uint64_t journaled = pp_last_seq(b);
    say("filling the disk", err);
    printf("  %llu events journaled, %llu acknowledged (pp_durable)\n", (unsigned long long)journaled, (unsigned long long)acked);
    CHECK_EQ(err, PP_ENOSPC);
    CHECK_EQ(pp_error(b), PP_ENOSPC);
    CHECK(acked > 50000);
    CHECK_EQ(event(b, journaled + 1), PP_ENOSPC);           /* poisoned: refuses, says why */
    int sr0 = pp_sync(b);                                      /* nothing left to sync, or the error */
    CHECK(sr0 == PP_ENOSPC || (sr0 == 0 && pp_durable(b) == journaled));
    CHECK_EQ(pp_last_seq(b), journaled);
    CHECK_EQ(pp_close(s), PP_ENOSPC);
    clear_msg();

    /* reopen on the still-full disk: everything acknowledged is there */
    uint64_t got = 0;
    rc = open_store(&s, &c);
    say("reopen on the full disk", rc);
    if (rc == 0) {
        b = NULL;
        CHECK_EQ(pp_book_open(s, "BTC-USD", &b), 0);
        if (b) {
            got = pp_last_seq(b);
            CHECK(got >= acked);
            CHECK(got <= journaled);
            CHECK(book_is(b, got));
            if (t_pp_format() == 2) {
                /* format 2's recovery seals the journal's last segment at its
                 * end and gives its unused space back: fill the disk again */
                snprintf(cmd, sizeof cmd, "for i in 1 2; do dd if=/dev/zero of='%s'3$i bs=4k count=100000 status=none 2>/dev/null; sync; done; true", ballast);
                CHECK_EQ(run(cmd), 0);
            }
            /* connection state cannot be replaced either; the old one stays */
            static char conn2[64 << 10];
            memset(conn2, 'c', sizeof conn2);
            int pr = pp_conn_put(s, "feed", conn2, sizeof conn2);
            say("connection state on the full disk", pr);
            CHECK_EQ(pr, PP_ENOSPC);
            char cb[128];
            CHECK_EQ(pp_conn_get(s, "feed", cb, sizeof cb), (int64_t)sizeof conn1);
            CHECK(memcmp(cb, conn1, sizeof conn1) == 0);
            /* a snapshot needs room it does not have */
            int sr = pp_snapshot(b);
            say("snapshot on the full disk", sr);
            CHECK_EQ(sr, PP_ENOSPC);
            /* a failed snapshot does not poison the book; the grower, which
             * keeps the journal chunks ahead, may have (PP_ENOSPC) */
            CHECK(pp_error(b) == 0 || pp_error(b) == PP_ENOSPC);
            uint64_t more = 0;
            int er = run_events(b, 100000, 1000, &more);
            say("more events on the full disk", er);
            CHECK(er == 0 || er == PP_ENOSPC);
            CHECK(more >= got);
            acked = more; journaled = pp_last_seq(b);
        }
        int cr = pp_close(s);
        CHECK(cr == 0 || cr == PP_ENOSPC);
    } else {
        CHECK_EQ(rc, PP_ENOSPC);
    }
    snprintf(cmd, sizeof cmd, "%s/BTC-USD", data);
    CHECK_EQ(count_tmp(cmd), 0);                               /* no temp file left behind */

    /* space comes back: recovered, continues densely, snapshots again */
    CHECK_EQ(unlink(ballast), 0);
    snprintf(cmd, sizeof cmd, "rm -f '%s'3*", ballast);
    CHECK_EQ(run(cmd), 0);
    rc = open_store(&s, &c);
    say("reopen after freeing space", rc);
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        b = NULL;
        CHECK_EQ(pp_book_open(s, "BTC-USD", &b), 0);
        if (b) {
            got = pp_last_seq(b);
            CHECK(got >= acked);
            CHECK(got <= journaled);
            CHECK(book_is(b, got));
            uint64_t a2 = 0;
            CHECK_EQ(run_events(b, 1000, 100, &a2), 0);
            CHECK_EQ(a2, got + 1000);
            int sr = pp_snapshot(b);
            say("snapshot after freeing space", sr);
            CHECK_EQ(sr, 0);
            /* with a snapshot, compaction gives the journal's space back */
            pp_stats st0, st1;
            pp_get_stats(b, &st0);
            CHECK_EQ(pp_compact(b), 0);
            pp_get_stats(b, &st1);
            printf("  compaction after the snapshot: %llu -> %llu journal segments\n",
                   (unsigned long long)st0.journal_segments, (unsigned long long)st1.journal_segments);
            CHECK(st1.journal_segments < st0.journal_segments);
            got = a2;
        }
        CHECK_EQ(pp_close(s), 0);
        rc = open_store(&s, &c);
        CHECK_EQ(rc, 0);
        if (rc == 0) {
            b = NULL;
            CHECK_EQ(pp_book_open(s, "BTC-USD", &b), 0);
            if (b) CHECK(book_is(b, got));
            CHECK_EQ(pp_close(s), 0);
        }
    }

    /* a new store on a disk with no room at all */
    /* 4 KiB writes, synced, twice: ext4 keeps delalloc reserves that a
     * single large dd leaves free */
    snprintf(cmd, sizeof cmd, "for i in 1 2; do dd if=/dev/zero of='%s'$i bs=4k count=100000 status=none 2>/dev/null; sync; done; true", ballast);
    CHECK_EQ(run(cmd), 0);
    char data2[800]; snprintf(data2, sizeof data2, "%s/data2", mnt);
    pp_config c2 = cfg_for(data2);
    rc = open_store(&s, &c2);
    say("a new store on a full disk", rc);
    if (rc == 0) {
        rc = pp_book_open(s, "ETH-USD", &b);
        say("a new book on a full disk", rc);
        CHECK_EQ(rc, PP_ENOSPC);
        CHECK_EQ(pp_close(s), 0);
        rc = open_store(&s, &c2);          /* the failed book must not keep the store from opening */
        say("reopen that store, still full", rc);
        CHECK_EQ(rc, 0);
        if (rc == 0) pp_close(s);
    } else {
        CHECK_EQ(rc, PP_ENOSPC);
    }
    /* a new instrument in the full store with books, with room for its
     * directories but not for its first journal chunk: refused, and the
     * store still opens afterwards with the books it had */
    snprintf(cmd, sizeof cmd, "rm -f '%s'1 '%s'2 && dd if=/dev/zero of='%s/gap' bs=4k count=6 status=none && sync && "
             "for i in 1 2; do dd if=/dev/zero of='%s'$i bs=4k count=100000 status=none 2>/dev/null; sync; done; "
             "rm '%s/gap' && sync", ballast, ballast, mnt, ballast, mnt);
    CHECK_EQ(run(cmd), 0);
    rc = open_store(&s, &c);
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        rc = pp_book_open(s, "SOL-USD", &b);
        say("a new instrument in a store on a full disk", rc);
        /* format 2: a new instrument is a frame of the store journal, no file */
        CHECK_EQ(rc, t_pp_format() == 2 ? 0 : PP_ENOSPC);
        CHECK_EQ(pp_close(s), 0);
        rc = open_store(&s, &c);
        say("reopen that store, still full", rc);
        CHECK_EQ(rc, 0);
        if (rc == 0) pp_close(s);
    }
    rc = open_store(&s, &c);                                   /* the other store is untouched */
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        b = NULL;
        CHECK_EQ(pp_book_open(s, "BTC-USD", &b), 0);
        if (b) CHECK(book_is(b, got));
        pp_close(s);
    }
    CHECK_EQ(umount(mnt), 0);
}

/* Strict mode: the journal is a picolog log; its ENOSPC reaches the book as
 * PP_ENOSPC (not PP_ELOG) and the acknowledged events come back. */
static void test_full_disk_strict(void) {
    if (geteuid() != 0) SKIP("needs root to mount a small filesystem");
    char img[600], mnt[600], cmd[4000], data[700];
    if (t_mount_small_ext4("pp_full_disk_strict", mnt, sizeof mnt, img, sizeof img) != 0)
        SKIP("cannot mount a loop ext4 here (no loop devices?)");
    snprintf(data, sizeof data, "%s/data", mnt);
    plg_config lc;
    memset(&lc, 0, sizeof lc);
    lc.segment_size = 1 << 20; lc.ring_capacity = 1 << 20;
    pp_config c = cfg_for(data);
    c.mode = PP_JOURNAL_STRICT; c.strict_log = &lc;
    pp_store *s; pp_book *b = NULL;
    int rc = open_store(&s, &c);
    if (rc == 0) rc = pp_book_open(s, "BTC-USD", &b);
    if (rc == PP_ELOG || rc == PP_ECONFIG) {                  /* no O_DIRECT on this loop fs */
        if (s) pp_close(s);
        lc.io_mode = PLG_IO_BUFFERED_FDATASYNC;
        rc = open_store(&s, &c);
        if (rc == 0) rc = pp_book_open(s, "BTC-USD", &b);
    }
    say("strict store on the small fs", rc);
    CHECK_EQ(rc, 0);
    if (rc) { umount(mnt); return; }
    uint64_t acked = 0;
    int err = run_events(b, 2000000, 1000, &acked);
    uint64_t journaled = pp_last_seq(b);
    say("filling the disk, strict mode", err);
    printf("  %llu events journaled, %llu acknowledged\n", (unsigned long long)journaled, (unsigned long long)acked);
    CHECK_EQ(err, PP_ENOSPC);
    CHECK_EQ(pp_error(b), PP_ENOSPC);
    CHECK(acked > 10000);
    int cr = pp_close(s);
    CHECK(cr == PP_ENOSPC || cr == PP_ELOG);
    clear_msg();
    /* space comes back: the log itself filled the disk (no ballast to
     * drop), so the filesystem is grown */
    snprintf(cmd, sizeof cmd, "umount '%s' && truncate -s 24M '%s' && e2fsck -fy '%s' >/dev/null 2>&1; resize2fs '%s' >/dev/null 2>&1 && mount -o loop '%s' '%s'",
             mnt, img, img, img, img, mnt);
    CHECK_EQ(run(cmd), 0);
    rc = open_store(&s, &c);
    say("reopen strict store after growing the fs", rc);
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        b = NULL;
        CHECK_EQ(pp_book_open(s, "BTC-USD", &b), 0);
        if (b) {
            uint64_t got = pp_last_seq(b);
            CHECK(got >= acked);
            CHECK(got <= journaled);
            CHECK(book_is(b, got));
            uint64_t a2 = 0;
            CHECK_EQ(run_events(b, 1000, 100, &a2), 0);
            CHECK_EQ(a2, got + 1000);
        }
        CHECK_EQ(pp_close(s), 0);
    }
    CHECK_EQ(umount(mnt), 0);
}

/* ---- permissions, as an unprivileged user -------------------------------- */
static int child_open_expect(const char *dir, const char *what, int want) {
    pp_config c = cfg_for(dir);
    pp_store *s = NULL;
    int rc = open_store(&s, &c);
    say(what, rc);
    if (rc == 0) { pp_close(s); return 1; }
    return rc == want ? 0 : 2;
}
static int child_new_store_in_ro_dir(const char *parent) {
    char dir[700]; snprintf(dir, sizeof dir, "%s/data", parent);
    return child_open_expect(dir, "new store under a read-only directory", PP_EACCES);
}
static int child_ro_dir_as_store(const char *dir) {
    return child_open_expect(dir, "read-only directory as data_dir", PP_EACCES);
}
static int child_store_of_another_user(const char *dir) {
    return child_open_expect(dir, "existing store, owned by another user (not root: read-only files)", PP_EACCES);
}
static int child_store_with_mode_000_file(const char *dir) {
    return child_open_expect(dir, "own store, one journal segment mode 000", PP_EACCES);
}
static int child_store_with_mode_000_snapshot(const char *dir) {
    return child_open_expect(dir, "own store, newest snapshot mode 000", PP_EACCES);
}
static int child_compacted_store_with_mode_000_snapshot(const char *dir) {
    return child_open_expect(dir, "own store, compacted, its snapshot mode 000", PP_EACCES);
}
static int child_new_book_in_ro_store(const char *dir) {
    pp_config c = cfg_for(dir);
    pp_store *s = NULL;
    int rc = open_store(&s, &c);
    if (rc) { say("own store, read-only directory", rc); return 3; }
    pp_book *b;
    rc = pp_book_open(s, "NEW", &b);
    say("new instrument in a read-only data_dir", rc);
    /* format 2: a new instrument is a frame of the store journal, no file */
    int ok = rc == (t_pp_format() == 2 ? 0 : PP_EACCES);
    rc = pp_book_open(s, "A", &b);                 /* the existing one still works */
    if (rc) { say("existing instrument", rc); ok = 0; }
    else if (!book_is(b, 500)) ok = 0;
    if (pp_close(s) != 0) ok = 0;
    return ok ? 0 : 4;
}

/* data_dir with book A at seq 500 (snap: a snapshot at 400), or at seq
 * 40100 with a snapshot at 40000 and the journal compacted (snap 2) */
static void make_store(const char *dir, int snap) {
    pp_config c = cfg_for(dir);
    pp_store *s; pp_book *b;
    int rc = pp_open(&s, &c);
    CHECK_EQ(rc, 0);
    if (rc) return;
    CHECK_EQ(pp_book_open(s, "A", &b), 0);
    uint64_t acked, before = snap == 2 ? 40000 : 400;
    CHECK_EQ(run_events(b, before, 100, &acked), 0);
    if (snap) CHECK_EQ(pp_snapshot(b), 0);
    if (snap == 2) CHECK_EQ(pp_compact(b), 0);  /* whole segments before the snapshot go */
    CHECK_EQ(run_events(b, 100, 100, &acked), 0);
    CHECK_EQ(acked, before + 100);
    CHECK_EQ(pp_close(s), 0);
}

static int store_ok(const char *dir, uint64_t L) {
    pp_config c = cfg_for(dir);
    pp_store *s; pp_book *b;
    if (open_store(&s, &c) != 0) return 0;
    int ok = pp_book_open(s, "A", &b) == 0 && book_is(b, L);
    if (pp_close(s) != 0) ok = 0;
    return ok;
}

static void test_read_only_directory_and_wrong_permissions(void) {
    const char *base = t_dir("pp_perm");
    char ro[600], data[600], mine[600], cmd[3000];
    snprintf(ro, sizeof ro, "%s/ro", base);
    snprintf(data, sizeof data, "%s/data", base);
    snprintf(mine, sizeof mine, "%s/mine", base);
    mkdir(ro, 0555); chmod(ro, 0555);
    chmod(base, 0755);
    /* t_dir's parents must be traversable by nobody */
    snprintf(cmd, sizeof cmd, "d='%s'; while [ \"$d\" != . ] && [ \"$d\" != / ]; do chmod o+x \"$d\" 2>/dev/null; d=$(dirname \"$d\"); done", base);
    CHECK_EQ(run(cmd), 0);
    CHECK_EQ(t_as_nobody(child_new_store_in_ro_dir, ro), 0);
    CHECK_EQ(t_as_nobody(child_ro_dir_as_store, ro), 0);

    make_store(data, 1);                        /* this user's files, 0644, dirs 0755 */
    if (geteuid() != 0) {                       /* no second user: take write permission away instead */
        snprintf(cmd, sizeof cmd, "chmod -R a-w '%s'", data);
        CHECK_EQ(run(cmd), 0);
    }
    CHECK_EQ(t_as_nobody(child_store_of_another_user, data), 0);
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'", data);
    CHECK_EQ(run(cmd), 0);
    CHECK(store_ok(data, 500));                 /* nothing damaged */

    /* the child's own store (owned by nobody, or by this user when not
     * root) with one file it cannot open */
    const char *own = geteuid() == 0 ? "chown -R 65534:65534" : "true";
    make_store(mine, 1);
    /* where the first journal segment and the snapshots are, per format */
    const char *seg1 = t_pp_format() == 2 ? "journal/00000000000000000001.ppj" : "A/journal/00000000000000000001.ppj";
    const char *snaps = t_pp_format() == 2 ? "books/A/snapshots" : "A/snapshots";
    snprintf(cmd, sizeof cmd, "%s '%s' && chmod 000 '%s/%s'", own, mine, mine, seg1);
    CHECK_EQ(run(cmd), 0);
    CHECK_EQ(t_as_nobody(child_store_with_mode_000_file, mine), 0);
    snprintf(cmd, sizeof cmd, "chmod 644 '%s/%s' && chmod 000 '%s'/%s/*.pps", mine, seg1, mine, snaps);
    CHECK_EQ(run(cmd), 0);
    CHECK_EQ(t_as_nobody(child_store_with_mode_000_snapshot, mine), 0);
    /* compacted: the journal no longer covers what the snapshot holds, so a
     * fallback to an older snapshot could only end in "entries missing" */
    char mine2[700]; snprintf(mine2, sizeof mine2, "%s/mine2", base);
    make_store(mine2, 2);
    snprintf(cmd, sizeof cmd, "%s '%s' && chmod 000 '%s'/%s/*.pps", own, mine2, mine2, snaps);
    CHECK_EQ(run(cmd), 0);
    CHECK_EQ(t_as_nobody(child_compacted_store_with_mode_000_snapshot, mine2), 0);
    snprintf(cmd, sizeof cmd, "chmod 644 '%s'/%s/*.pps", mine2, snaps);
    CHECK_EQ(run(cmd), 0);
    CHECK(store_ok(mine2, 40100));
    snprintf(cmd, sizeof cmd, "chmod 644 '%s'/%s/*.pps && chmod 555 '%s'", mine, snaps, mine);
    CHECK_EQ(run(cmd), 0);
    CHECK_EQ(t_as_nobody(child_new_book_in_ro_store, mine), 0);
    snprintf(cmd, sizeof cmd, "chmod 755 '%s'", mine);
    CHECK_EQ(run(cmd), 0);
    CHECK(store_ok(mine, 500));                 /* nothing damaged by any of it */
}

/* A read-only filesystem (root: a read-only bind mount of the data_dir). */
static void test_read_only_filesystem(void) {
    if (geteuid() != 0) SKIP("needs root for a read-only bind mount");
    const char *base = t_dir("pp_rofs");
    char data[600], view[600];
    snprintf(data, sizeof data, "%s/data", base);
    snprintf(view, sizeof view, "%s/view", base);
    make_store(data, 1);
    mkdir(view, 0755);
    if (mount(data, view, "none", MS_BIND, NULL) != 0) SKIP("bind mount not allowed here");
    if (mount("none", view, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0) { umount(view); SKIP("read-only remount not allowed here"); }
    pp_config c = cfg_for(view);
    pp_store *s = NULL;
    int rc = open_store(&s, &c);
    say("store on a read-only filesystem", rc);
    CHECK_EQ(rc, PP_EACCES);
    if (rc == 0) pp_close(s);
    pp_check_result cr;
    CHECK_EQ(pp_check(view, "A", &cr), 0);      /* the read-only checker still reads it */
    CHECK_EQ(cr.journal_last_seq, 500);
    CHECK_EQ(umount(view), 0);
    CHECK(store_ok(data, 500));
}

/* ---- a second process --------------------------------------------------- */
static void test_second_process(void) {
    const char *dir = t_dir("pp_two_procs");
    int p2c[2], c2p[2];
    REQUIRE(pipe(p2c) == 0 && pipe(c2p) == 0);
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        pp_config c = cfg_for(dir);
        pp_store *s; pp_book *b;
        uint64_t acked = 0;
        char ok = pp_open(&s, &c) == 0 && pp_book_open(s, "A", &b) == 0 ? 'y' : 'n';
        if (ok == 'y' && (run_events(b, 300, 100, &acked) != 0 || acked != 300)) ok = 'n';
        if (write(c2p[1], &ok, 1) != 1) _exit(1);
        char go;
        if (read(p2c[0], &go, 1) != 1) _exit(1);        /* hold the store until told */
        if (go == 'k') {                                  /* journal more, unsynced, and wait for SIGKILL */
            for (uint64_t i = 0; i < 50; i++) event(b, pp_last_seq(b) + 1);
            if (write(c2p[1], &ok, 1) != 1) _exit(1);
            for (;;) pause();
        }
        _exit(pp_close(s) == 0 ? 0 : 1);
    }
    char ok = 0;
    REQUIRE(read(c2p[0], &ok, 1) == 1);
    CHECK_EQ(ok, 'y');
    pp_config c = cfg_for(dir);
    pp_store *s = NULL;
    int rc = open_store(&s, &c);
    say("second process opens the same data_dir", rc);
    CHECK_EQ(rc, PP_ELOCKED);
    CHECK(s == NULL);
    pp_check_result cr;
    CHECK_EQ(pp_check(dir, "A", &cr), 0);        /* reading alongside the holder is fine */
    CHECK(cr.journal_last_seq >= 300);
    char go = 'k';
    CHECK_EQ(write(p2c[1], &go, 1), 1);
    CHECK_EQ(read(c2p[0], &ok, 1), 1);
    kill(pid, SIGKILL);                           /* the holder dies with the store open */
    int st; waitpid(pid, &st, 0);
    rc = open_store(&s, &c);                      /* the kernel dropped its lock */
    say("open after the holder was SIGKILLed", rc);
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        pp_book *b = NULL;
        CHECK_EQ(pp_book_open(s, "A", &b), 0);
        if (b) {
            /* 300 acknowledged; the 50 unsynced ones were in the page cache */
            CHECK(pp_last_seq(b) >= 300);
            CHECK(book_is(b, pp_last_seq(b)));
        }
        CHECK_EQ(pp_close(s), 0);
    }
    close(p2c[0]); close(p2c[1]); close(c2p[0]); close(c2p[1]);
}

int main(void) {
    (void)t_rand;
    RUN(test_second_process);
    RUN(test_read_only_directory_and_wrong_permissions);
    RUN(test_read_only_filesystem);
    RUN(test_full_disk);
    RUN(test_full_disk_strict);
    return t_done();
}
