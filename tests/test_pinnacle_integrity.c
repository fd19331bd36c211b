/* pinnacle_persist.h: behaviours that used to lose data or mislabel a
 * failure (issue 12), one test each:
 *   - two threads opening the same new instrument get the same book, and the
 *     events journaled through it come back;
 *   - strict compaction after a snapshot at the tip keeps the records the
 *     reopen needs, wherever a picolog segment ends;
 *   - a damaged newest snapshot is not counted by rotation or compaction;
 *   - market-data rotation leaves the spec being declared alone;
 *   - pp_find of id 0 is PP_ENOENT;
 *   - journal growth without fallocate allocates real blocks (a full disk is
 *     an error code, not SIGBUS);
 *   - running out of file descriptors is reported as PP_EMFILE;
 *   - pp_open adopts only directories the store created as instruments;
 *   - pp_close snapshots, and the snapshot timer survives a restart;
 *   - cancels, executions and modifies carry the engine's time. */
#define PINNACLE_PERSIST_IMPLEMENTATION
#define PINNACLE_PERSIST_TEST_IO
#include "pinnacle_persist.h"
#include "t.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#define OK(call) do { int ok_rc_ = (call); CHECK_EQ(ok_rc_, 0); if (ok_rc_) return; } while (0)
static void quiet(void *u, int code, const char *msg) { (void)u; (void)code; (void)msg; }

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
static int exists(const char *path) { return access(path, F_OK) == 0; }
static pp_order order(uint64_t id) {
    pp_order o;
    memset(&o, 0, sizeof o);
    o.id = id; o.price = 1000 + (int64_t)(id % 7); o.qty = 10; o.ts_ns = 1000 + id; o.side = (id & 1) ? PP_BUY : PP_SELL;
    return o;
}
static uint64_t realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
/* valgrind and the sanitizer runs set PLG_TEST_QUICK: fewer rounds there */
static int quick(void) { return getenv("PLG_TEST_QUICK") != NULL; }

/* ---- 1. two threads open the same new instrument ---- */
typedef struct open_race { pp_store *s; const char *name; int go; pp_book *b; int rc; } open_race;
static void *open_race_main(void *arg) {
    open_race *r = (open_race *)arg;
    while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE)) { }
    r->rc = pp_book_open(r->s, r->name, &r->b);
    return NULL;
}
static void test_two_threads_open_one_new_instrument(void) {
    const char *dir = t_dir("pp_int_open_race");
    pp_config c = cfg_for(dir);
    int rounds = quick() ? 3 : 8;
    for (int k = 0; k < rounds; k++) {
        char name[32];
        snprintf(name, sizeof name, "RACE%d", k);
        pp_store *s;
        OK(pp_open(&s, &c));
        open_race a = {s, name, 0, NULL, 0}, b = {s, name, 0, NULL, 0};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, open_race_main, &a);
        pthread_create(&tb, NULL, open_race_main, &b);
        __atomic_store_n(&a.go, 1, __ATOMIC_RELEASE); __atomic_store_n(&b.go, 1, __ATOMIC_RELEASE);
        pthread_join(ta, NULL); pthread_join(tb, NULL);
        CHECK_EQ(a.rc, 0); CHECK_EQ(b.rc, 0);
        CHECK(a.b != NULL && a.b == b.b);
        /* events through each handle the caller got: all must come back */
        int added = 0;
        if (a.rc == 0) { pp_order o = order(1); if (pp_add(a.b, &o) == 0 && pp_sync(a.b) == 0) added++; }
        if (b.rc == 0 && b.b != a.b) { pp_order o = order(2); if (pp_add(b.b, &o) == 0 && pp_sync(b.b) == 0) added++; }
        CHECK_EQ(pp_close(s), 0);
        OK(pp_open(&s, &c));
        pp_book *x;
        int rc = pp_book_open(s, name, &x);
        CHECK_EQ(rc, 0);
        if (!rc) CHECK_EQ(pp_order_count(x), (uint64_t)added);
        CHECK_EQ(pp_close(s), 0);
    }
}

/* ---- 2. strict compaction after a snapshot at the tip ---- */
static void test_strict_compaction_after_tip_snapshot(void) {
    const char *dir = t_dir("pp_int_strict_tip");
    int skipped = 0;
    /* With 64 KiB picolog segments and 48-byte records, the tip ends the
     * first segment at 850 events: each count around it, both sides. */
    uint64_t lo = quick() ? 849 : 845, hi = quick() ? 851 : 855;
    for (uint64_t n = lo; n <= hi && !skipped; n++) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'/* ", dir);
        if (system(cmd) != 0) { CHECK(0); return; }
        pp_config c = cfg_for(dir);
        c.mode = PP_JOURNAL_STRICT;
        c.keep_snapshots = 1;
        plg_config lc;
        memset(&lc, 0, sizeof lc);
        lc.segment_size = 64 << 10;
        lc.ring_capacity = 1 << 20;
        lc.log_fn = quiet;
        c.strict_log = &lc;
        pp_store *s; pp_book *b;
        OK(pp_open(&s, &c));
        int rc = pp_book_open(s, "TIP", &b);
        if (rc == PP_ELOG) { pp_close(s); skipped = 1; break; }
        OK(rc);
        for (uint64_t i = 1; i <= n; i++) {
            pp_order o = order(i);
            while ((rc = pp_add(b, &o)) == PP_EFULL) usleep(100);
            CHECK_EQ(rc, 0);
        }
        CHECK_EQ(pp_sync(b), 0);
        CHECK_EQ(pp_snapshot(b), 0);
        CHECK_EQ(pp_compact(b), 0);
        CHECK_EQ(pp_close(s), 0);
        rc = pp_open(&s, &c);
        if (rc) fprintf(stderr, "    after %llu events: reopen %s\n", (unsigned long long)n, pp_strerror(rc));
        CHECK_EQ(rc, 0);
        if (rc) continue;
        rc = pp_book_open(s, "TIP", &b);
        if (rc) fprintf(stderr, "    after %llu events: reopen %s\n", (unsigned long long)n, pp_strerror(rc));
        CHECK_EQ(rc, 0);
        if (!rc) { CHECK_EQ(pp_last_seq(b), n); CHECK_EQ(pp_order_count(b), n); }
        /* and it keeps journaling */
        if (!rc) { pp_order o = order(n + 1); CHECK_EQ(pp_add(b, &o), 0); CHECK_EQ(pp_sync(b), 0); }
        CHECK_EQ(pp_close(s), 0);
    }
    if (skipped) SKIP("picolog cannot open here (O_DIRECT?)");
}

/* ---- 3. a damaged newest snapshot meets rotation ---- */
static void test_rotation_ignores_damaged_snapshot(void) {
    const char *dir = t_dir("pp_int_snap_rot");
    pp_config c = cfg_for(dir);
    c.keep_snapshots = 3;
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "ROT", &b));
    for (uint64_t i = 1; i <= 30; i++) {
        pp_order o = order(i);
        CHECK_EQ(pp_add(b, &o), 0);
        if (i % 10 == 0) CHECK_EQ(pp_snapshot(b), 0);
    }
    CHECK_EQ(pp_close(s), 0);
    char p[4096];
    snprintf(p, sizeof p, "%s%s/ROT/snapshots/%020u.pps", dir, t_pp_format() == 2 ? "/books" : "", 30u);
    REQUIRE(exists(p));
    int fd = open(p, O_RDWR);
    REQUIRE(fd >= 0);
    uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK_EQ(pwrite(fd, junk, sizeof junk, 70), (ssize_t)sizeof junk);   /* inside the first order */
    close(fd);
    c.keep_snapshots = 1;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "ROT", &b));
    CHECK_EQ(pp_order_count(b), 30);
    CHECK_EQ(pp_snapshot(b), 0);              /* must write a good one at seq 30 */
    CHECK_EQ(pp_compact(b), 0);
    CHECK_EQ(pp_close(s), 0);
    pp_check_result r;
    CHECK_EQ(pp_check(dir, "ROT", &r), 0);
    CHECK_EQ(r.snapshots_corrupt, 0);
    CHECK_EQ(r.newest_snapshot_seq, 30);
    OK(pp_open(&s, &c));
    int rc = pp_book_open(s, "ROT", &b);
    CHECK_EQ(rc, 0);
    if (!rc) { CHECK_EQ(pp_order_count(b), 30); CHECK_EQ(pp_last_seq(b), 30); }
    CHECK_EQ(pp_close(s), 0);
}

/* ---- 4. market-data rotation and a concurrent pp_md_declare ---- */
typedef struct md_race { pp_book *b; int stop; int fails, done; } md_race;
static void *md_declare_main(void *arg) {
    md_race *r = (md_race *)arg;
    pp_md_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.price_scale = 2; sp.size_scale = 8;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        if (pp_md_declare(r->b, &sp) != 0) r->fails++;
        r->done++;
    }
    return NULL;
}
static void test_md_rotation_spares_declared_spec(void) {
    const char *dir = t_dir("pp_int_md_spec");
    pp_config c = cfg_for(dir);
    c.keep_snapshots = 1;
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "MD", &b));
    pp_md_spec sp;
    memset(&sp, 0, sizeof sp);
    OK(pp_md_declare(b, &sp));
    md_race r = {b, 0, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, md_declare_main, &r);
    int snaps = quick() ? 20 : 80;
    for (int i = 1; i <= snaps; i++) {
        pp_order o = order((uint64_t)i);
        CHECK_EQ(pp_add(b, &o), 0);
        CHECK_EQ(pp_snapshot(b), 0);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    printf("  %d declares during %d snapshots, %d failed\n", r.done, snaps, r.fails);
    CHECK(r.done > 0);
    CHECK_EQ(r.fails, 0);
    CHECK_EQ(pp_close(s), 0);
}

/* ---- 5. pp_find of id 0 ---- */
static void test_find_id_zero_is_enoent(void) {
    const char *dir = t_dir("pp_int_find0");
    pp_config c = cfg_for(dir);
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "F0", &b));
    pp_order o = order(5), got;
    CHECK_EQ(pp_add(b, &o), 0);
    CHECK_EQ(pp_find(b, 0, &got), PP_ENOENT);
    CHECK_EQ(pp_find(b, 6, &got), PP_ENOENT);
    CHECK_EQ(pp_find(b, 5, &got), 0);
    CHECK_EQ(got.id, 5);
    CHECK_EQ(pp_close(s), 0);
}

/* ---- 6. no fallocate, then a full disk: an error code, not SIGBUS ----
 * The hook plays a filesystem without fallocate whose disk fills up at
 * 192 KiB of journal: writes there fail with ENOSPC while a size change
 * (metadata) still succeeds, as on a real full disk. Growth must find out
 * (PP_ENOSPC from the hot path); a sparse file would hand the trading
 * thread a mapping that faults with SIGBUS when it is touched. */
static int no_fallocate(void *ctx, int fd, int64_t off, int64_t len) {
    (void)ctx; (void)fd; (void)off; (void)len;
    errno = EOPNOTSUPP;
    return -1;
}
static int64_t full_at_192k(void *ctx, int fd, const void *buf, size_t len, int64_t off) {
    (void)ctx;
    if (off + (int64_t)len > (192 << 10)) { errno = ENOSPC; return -1; }
    return (int64_t)pwrite(fd, buf, len, (off_t)off);
}
/* format 2 allocates each segment file whole (64 KiB + a page here): its
 * files never reach 192 KiB, so its disk fills at 192 KiB written in all */
static int64_t written_total;
static int64_t full_after_192k_total(void *ctx, int fd, const void *buf, size_t len, int64_t off) {
    (void)ctx;
    if (__atomic_add_fetch(&written_total, (int64_t)len, __ATOMIC_RELAXED) > (192 << 10)) { errno = ENOSPC; return -1; }
    return (int64_t)pwrite(fd, buf, len, (off_t)off);
}
static void test_growth_without_fallocate_reports_full_disk(void) {
    const char *dir = t_dir("pp_int_nofalloc");
    pp_config c = cfg_for(dir);
    pp_io io;
    memset(&io, 0, sizeof io);
    io.fallocate = no_fallocate;
    io.pwrite = full_at_192k;
    if (t_pp_format() == 2) {
        c.journal_chunk_bytes = 8192;
        c.journal_segment_bytes = 64 << 10;
        written_total = 0;
        io.pwrite = full_after_192k_total;
    }
    pp_test_set_io(&io);
    pp_store *s; pp_book *b;
    int rc = pp_open(&s, &c);
    CHECK_EQ(rc, 0);
    if (rc) { pp_test_set_io(NULL); return; }
    rc = pp_book_open(s, "NF", &b);
    CHECK_EQ(rc, 0);
    uint64_t acked = 0;
    int last = 0;
    if (!rc) {
        for (uint64_t i = 1; i <= 20000 && !last; i++) {      /* 20000 entries = 960 KiB > 192 KiB */
            pp_order o = order(i);
            last = pp_add(b, &o);
            if (!last) acked = i;
        }
        printf("  %llu events journaled, then: %s\n", (unsigned long long)acked, pp_strerror(last));
        CHECK_EQ(last, PP_ENOSPC);
    }
    pp_close(s);
    pp_test_set_io(NULL);
    OK(pp_open(&s, &c));
    rc = pp_book_open(s, "NF", &b);
    CHECK_EQ(rc, 0);
    if (!rc) CHECK_EQ(pp_last_seq(b), acked);      /* everything the page cache held comes back */
    CHECK_EQ(pp_close(s), 0);
}

/* ---- 7. out of file descriptors ---- */
static void test_out_of_descriptors_is_emfile(void) {
    const char *dir = t_dir("pp_int_emfile");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        for (int fd = 3; fd < 4096; fd++) close(fd);   /* inherited ones would leave room below them */
        pp_config c = cfg_for(dir);
        pp_store *s;
        if (pp_open(&s, &c) != 0) _exit(10);
        /* a limit a little above what is open now */
        int top = 0;
        for (int fd = 0; fd < 4096; fd++) if (fcntl(fd, F_GETFD) != -1) top = fd;
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = (rlim_t)top + 9;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(11);
        int rc = 0, opened = 0;
        if (t_pp_format() == 2) {
            /* format 2: an instrument costs no descriptor, so all 64 open
             * under this limit; what needs one (a snapshot file) reports
             * PP_EMFILE once the process has none left */
            pp_book *b = NULL;
            for (int i = 0; i < 64 && !rc; i++) {
                char name[32];
                snprintf(name, sizeof name, "FD%d", i);
                rc = pp_book_open(s, name, &b);
                if (!rc) opened++;
            }
            pp_order o = order(1);
            if (!rc) rc = pp_add(b, &o);
            int held[16], nh = 0;
            while (nh < 16 && (held[nh] = open("/dev/null", O_RDONLY)) >= 0) nh++;
            int rs = rc ? rc : pp_snapshot(b);
            for (int i = 0; i < nh; i++) close(held[i]);
            printf("  opened %d books (%s), then a snapshot without descriptors: %s\n", opened, pp_strerror(rc),
                   pp_strerror(rs));
            fflush(stdout);
            int rcl = pp_close(s);
            int rc2 = pp_open(&s, &c);
            printf("  close: %s; reopen under the limit: %s\n", pp_strerror(rcl), pp_strerror(rc2));
            fflush(stdout);
            if (!rc2) pp_close(s);
            _exit(rc == 0 && opened == 64 && rs == -30220 && rc2 == 0 ? 0 : 1);   /* PP_EMFILE */
        }
        for (int i = 0; i < 64 && !rc; i++) {
            char name[32];
            snprintf(name, sizeof name, "FD%d", i);
            pp_book *b;
            rc = pp_book_open(s, name, &b);
            if (!rc) opened++;
        }
        printf("  opened %d books, then: %s\n", opened, pp_strerror(rc));
        fflush(stdout);
        pp_close(s);
        /* reopening the whole store under the same limit */
        int rc2 = pp_open(&s, &c);
        printf("  reopen under the limit: %s\n", pp_strerror(rc2));
        fflush(stdout);
        if (!rc2) pp_close(s);
        _exit(rc == -30220 && (rc2 == 0 || rc2 == -30220) ? 0 : 1);   /* PP_EMFILE */
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
}

/* ---- 7b. descriptors of a recovered journal ----
 * A reopened store held one descriptor per recovered journal segment until
 * compaction; with many segments or books it ran out of them. */
static int open_fds(void) {
    int n = 0;
    for (int fd = 0; fd < 4096; fd++) if (fcntl(fd, F_GETFD) != -1) n++;
    return n;
}
static void test_reopen_holds_no_descriptor_per_segment(void) {
    const char *dir = t_dir("pp_int_fds");
    pp_config c = cfg_for(dir);
    c.journal_segment_bytes = 128 << 10;        /* two 64 KiB chunks: a roll every ~2,700 events */
    c.compaction_threshold = 64 << 10;
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "SEGS", &b));
    for (uint64_t i = 1; i <= 40000; i++) { pp_order o = order(i); int rc = pp_add(b, &o); if (rc) { CHECK_EQ(rc, 0); break; } }
    CHECK_EQ(pp_sync(b), 0);
    pp_stats st;
    pp_get_stats(b, &st);
    CHECK_EQ(pp_close(s), 0);
    printf("  %llu journal segments\n", (unsigned long long)st.journal_segments);
    CHECK(st.journal_segments >= 10);
    int before = open_fds();
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "SEGS", &b));
    int held = open_fds() - before;
    printf("  descriptors held by the reopened store: %d\n", held);
    CHECK(held <= 4);                            /* LOCK, the live segment (+ a prepared one) */
    CHECK_EQ(pp_last_seq(b), 40000);
    CHECK_EQ(pp_order_count(b), 40000);
    CHECK_EQ(pp_close(s), 0);
}

/* ---- 8. only what the store created is an instrument ---- */
static int count_book(const char *nm, pp_book *bk, void *ctx) { (void)nm; (void)bk; (*(int *)ctx)++; return 0; }
static void test_open_adopts_only_instruments(void) {
    const char *dir = t_dir("pp_int_adopt");
    pp_config c = cfg_for(dir);
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "REAL", &b));
    pp_order o = order(1);
    CHECK_EQ(pp_add(b, &o), 0);
    CHECK_EQ(pp_close(s), 0);
    char p[4096];
    snprintf(p, sizeof p, "%s/lost+found", dir); CHECK_EQ(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/backup", dir); CHECK_EQ(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/backup/notes.txt", dir);
    FILE *f = fopen(p, "w"); if (f) { fputs("operator's\n", f); fclose(f); }
    OK(pp_open(&s, &c));
    int n = 0;
    CHECK_EQ(pp_books(s, count_book, &n), 0);
    CHECK_EQ(n, 1);                              /* REAL only */
    CHECK_EQ(pp_close(s), 0);
    snprintf(p, sizeof p, "%s/backup/journal", dir); CHECK(!exists(p));
    snprintf(p, sizeof p, "%s/backup/snapshots", dir); CHECK(!exists(p));
    snprintf(p, sizeof p, "%s/lost+found/journal", dir); CHECK(!exists(p));
}

/* ---- 9. snapshots across restarts ---- */
static void test_close_snapshots_and_timer_survives_restart(void) {
    const char *dir = t_dir("pp_int_snap_timer");
    pp_config c = cfg_for(dir);
    c.flags &= ~(uint32_t)PP_NO_AUTO_SNAPSHOT;  /* periodic snapshots on */
    c.snapshot_interval_ms = 60000;
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "TM", &b));
    for (uint64_t i = 1; i <= 10; i++) { pp_order o = order(i); CHECK_EQ(pp_add(b, &o), 0); }
    CHECK_EQ(pp_close(s), 0);
    pp_check_result r;
    CHECK_EQ(pp_check(dir, "TM", &r), 0);
    CHECK_EQ(r.newest_snapshot_seq, 10);        /* pp_close took one */
    /* age that snapshot by an hour: the next open is overdue */
    char p[4096];
    snprintf(p, sizeof p, "%s%s/TM/snapshots/%020u.pps", dir, t_pp_format() == 2 ? "/books" : "", 10u);
    uint8_t *buf = NULL; size_t len = 0;
    if (pp__read_file(p, &buf, &len) == 0 && len >= PP__SNAP_HDR + PP__SNAP_TAIL) {
        pp__put64(buf + 32, realtime_ns() - 3600ull * 1000000000ull);
        pp__put32(buf + len - PP__SNAP_TAIL, plg_crc32c(0, buf, len - PP__SNAP_TAIL));
        CHECK_EQ(plg_write_file_durable(p, buf, len, 0644), 0);
    } else CHECK(0);
    free(buf);
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "TM", &b));
    usleep(100000);     /* the maintainer finds the overdue book with nothing new first: it stays due */
    for (uint64_t i = 11; i <= 20; i++) { pp_order o = order(i); CHECK_EQ(pp_add(b, &o), 0); }
    pp_stats st;
    memset(&st, 0, sizeof st);
    for (int i = 0; i < 2000; i++) {            /* up to 20 s; the fix takes a few ms */
        pp_get_stats(b, &st);
        if (st.last_snapshot_seq >= 20) break;
        usleep(10000);
    }
    CHECK_EQ(st.last_snapshot_seq, 20);
    CHECK_EQ(pp_close(s), 0);
}

/* ---- 10. the engine's time on every event ---- */
typedef struct seen_ev { int type; uint64_t ts; } seen_ev;
static int read_events(const char *path, seen_ev *out, int cap) {
    uint8_t *buf = NULL; size_t len = 0;
    if (pp__read_file(path, &buf, &len) != 0) return -1;
    uint64_t salt, index, first;
    int n = -1;
    if (len >= PP__DATA_OFF && pp__hdr_decode(buf, &salt, &index, &first) == 0) {
        uint32_t seed = pp__seed(salt);
        n = 0;
        pp__ev v;
        for (size_t off = PP__DATA_OFF; off + PP__ENTRY <= len && n < cap && pp__dec(buf + off, seed, &v); off += PP__ENTRY) {
            out[n].type = v.type; out[n].ts = v.ts; n++;
        }
    }
    free(buf);
    return n;
}
/* format 2: the book events of a store journal segment, checksums checked */
static int read_events2(const char *path, seen_ev *out, int cap) {
    uint8_t *buf = NULL; size_t len = 0;
    if (pp__read_file(path, &buf, &len) != 0) return -1;
    uint64_t salt, index, data_bytes;
    int n = -1;
    if (len >= PP__PAGE && pp__sj_hdr_decode(buf, &salt, &index, &data_bytes) == 0) {
        uint32_t seed = pp__seed(salt);
        n = 0;
        for (size_t off = PP__PAGE; off + 64 <= len && n < cap;) {
            const uint8_t *f = buf + off;
            uint32_t fl = pp__get32(f);
            if (fl < 64 || fl % 64 || off + fl > len) break;
            if (pp__get32(f + 4) != pp__sj_crc(seed, index * data_bytes + (off - PP__PAGE), f, fl)) break;
            if (pp__is_evtype(f[8])) {
                pp__ev v;
                pp__sj_dec_ev(f, &v);
                out[n].type = v.type; out[n].ts = v.ts; n++;
            }
            off += fl;
        }
    }
    free(buf);
    return n;
}
static void test_events_carry_engine_time(void) {
    const char *dir = t_dir("pp_int_ts");
    pp_config c = cfg_for(dir);
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "TS", &b));
    pp_order o1 = order(1), o2 = order(2);
    uint64_t t0 = realtime_ns();
    CHECK_EQ(pp_add(b, &o1), 0);
    CHECK_EQ(pp_add(b, &o2), 0);
    CHECK_EQ(pp_execute(b, 1, 3, 1000), 0);
    CHECK_EQ(pp_modify(b, 1, 1001, 5), 0);
    CHECK_EQ(pp_cancel(b, 2), 0);
    uint64_t t1 = realtime_ns();
    CHECK_EQ(pp_sync(b), 0);
    CHECK_EQ(pp_close(s), 0);
    char p[4096];
    seen_ev ev[8];
    int n;
    if (t_pp_format() == 2) {
        snprintf(p, sizeof p, "%s/journal/%020u.ppj", dir, 1u);
        n = read_events2(p, ev, 8);
    } else {
        snprintf(p, sizeof p, "%s/TS/journal/%020u.ppj", dir, 1u);
        n = read_events(p, ev, 8);
    }
    CHECK_EQ(n, 5);
    for (int i = 2; i < n; i++) {
        if (ev[i].ts < t0 || ev[i].ts > t1) fprintf(stderr, "    event %d (type %d): ts %llu not in [%llu, %llu]\n", i,
                                                   ev[i].type, (unsigned long long)ev[i].ts, (unsigned long long)t0, (unsigned long long)t1);
        CHECK(ev[i].ts >= t0 && ev[i].ts <= t1);
    }
}

int main(void) {
    (void)t_rand;
    RUN(test_two_threads_open_one_new_instrument);
    RUN(test_strict_compaction_after_tip_snapshot);
    RUN(test_rotation_ignores_damaged_snapshot);
    RUN(test_md_rotation_spares_declared_spec);
    RUN(test_find_id_zero_is_enoent);
    RUN(test_growth_without_fallocate_reports_full_disk);
    RUN(test_out_of_descriptors_is_emfile);
    RUN(test_reopen_holds_no_descriptor_per_segment);
    RUN(test_open_adopts_only_instruments);
    RUN(test_close_snapshots_and_timer_survives_restart);
    RUN(test_events_carry_engine_time);
    return t_done();
}
