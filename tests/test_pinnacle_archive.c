/* pinnacle_persist.h: history kept instead of deleted (issue 13), format 2.
 *   - pp_config.archive_dir: compaction moves the journal segments no book
 *     needs into <archive_dir>/journal/, and snapshot rotation the snapshots
 *     past keep_snapshots into <archive_dir>/books/<name>/snapshots/;
 *     without it both are deleted, as before;
 *   - the journal reader reads the archived segments, then the live ones:
 *     every event from seq 1 after several compactions (and a reopen);
 *     without an archive it starts at the first seq the journal still holds;
 *   - across filesystems (rename fails with EXDEV: simulated through the
 *     test I/O hook) a segment is copied, fsynced and renamed into the
 *     archive, never left half there; a crash between the copy and the
 *     removal of the original (simulated: the removal fails) leaves the
 *     segment in both places, the store opens and the reader returns each
 *     event once; a leftover partial copy (*.tmp) is never read;
 *   - the per-instrument layout has no archive: PP_ENOTSUP;
 *   - pp_book_retire: the book is not recovered at the next open, its name
 *     is PP_ERETIRED, its handle refuses events, its snapshots go to the
 *     archive (deleted without one), its frames pin nothing (compaction
 *     does not snapshot it again), the reader still returns its history;
 *     PP_ENOENT, PP_EBUSY (open batch), PP_ENOTSUP (per-instrument layout),
 *     a second retire is 0; pp_list leaves it out;
 *   - a process killed (SIGKILL) at every file operation of a retirement:
 *     the reopened store holds the book whole as it was, or it is retired
 *     and its files are in the archive; never half; the other book intact;
 *     a retirement with the background threads running while another book
 *     journals (TSan);
 *   - pp_book_at: the book after any seq (from archived and live snapshots
 *     and segments) equals a replay of the events up to it, visited in
 *     price-time priority, each order with its add's payload byte for byte
 *     (across modifies and partial fills, from a snapshot's payload section
 *     and from the journal); pp_book_at_dir gives the same books from the
 *     files alone (beside the open store and after its close), changes
 *     nothing under the data directory or the archive (a listing with sizes
 *     and mtimes), needs the archive for early seqs, and is PP_ENOENT for an
 *     unknown instrument, PP_EINVAL past the journal, PP_ENOTSUP on the
 *     per-instrument layout; also for a retired book; without an archive an
 *     early seq is PP_ENOENT, a seq past the durable one PP_EINVAL. */
#pragma GCC diagnostic ignored "-Wunused-function"   /* t.h helpers this test does not use */
#define PINNACLE_PERSIST_IMPLEMENTATION
#define PINNACLE_PERSIST_TEST_IO
#include "pinnacle_persist.h"
#include "t.h"
#include <ftw.h>
#include <signal.h>
#include <sys/wait.h>
#include <pthread.h>

#define OK(call) do { int ok_rc_ = (call); CHECK_EQ(ok_rc_, 0); if (ok_rc_) return; } while (0)
static void quiet(void *u, int code, const char *msg) { (void)u; (void)code; (void)msg; }
static int light(void) {
    const char *p = getenv("LD_PRELOAD");
    return (p && strstr(p, "valgrind")) || getenv("PLG_TEST_QUICK") != NULL;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)st; (void)flag; (void)f;
    return remove(p) == 0 ? 0 : 0;
}
static void rm_rf(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static char adir_buf[4][600];
static const char *archive_of(const char *d, int k) {
    snprintf(adir_buf[k], sizeof adir_buf[k], "%s.archive", d);
    rm_rf(adir_buf[k]);
    return adir_buf[k];
}

static pp_config cfg_for(const char *dir, const char *archive) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.archive_dir = archive;
    c.flags = PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT | PP_NO_THREADS;
    c.log_fn = quiet;
    c.journal_segment_bytes = 64 << 10;           /* 1024 frames a segment */
    c.journal_chunk_bytes = 8 << 10;
    c.compaction_threshold = 64 << 10;
    c.keep_snapshots = 1;
    return c;
}

/* Event k of a book (seq k when fed from 1): odd k adds order k, even k
 * cancels order k - 1; the book holds at most one order. */
static int feed_event(pp_book *b, uint64_t k) {
    if (k & 1) {
        pp_order o;
        memset(&o, 0, sizeof o);
        o.id = k; o.price = 100 + (int64_t)(k % 7); o.qty = 10; o.ts_ns = k; o.side = PP_BUY;
        return pp_add(b, &o);
    }
    return pp_cancel(b, k - 1);
}
static int feed(pp_book *b, uint64_t from, uint64_t to) {
    for (uint64_t k = from; k <= to; k++) {
        int rc = feed_event(b, k);
        if (rc) return rc;
    }
    return 0;
}

/* Reads the instrument's events from seq `from`: how many, the first seq,
 * and whether they are exactly from..from+n-1 as feed_event wrote them. */
typedef struct readout { int rc; uint64_t n, first, bad; } readout;
static readout read_journal(pp_journal *j);
static readout read_all(pp_store *S, const char *name, uint64_t from) {
    pp_journal *j = NULL;
    int rc = pp_journal_open(S, name, from, &j);
    if (rc) { readout r; memset(&r, 0, sizeof r); r.rc = rc; return r; }
    return read_journal(j);
}
/* the same through pp_journal_open_archive (no store; archive NULL: none) */
static readout read_dir(const char *d, const char *a, const char *name, uint64_t from) {
    pp_journal *j = NULL;
    int rc = pp_journal_open_archive(d, a, name, from, &j);
    if (rc) { readout r; memset(&r, 0, sizeof r); r.rc = rc; return r; }
    return read_journal(j);
}
static readout read_journal(pp_journal *j) {
    readout r;
    memset(&r, 0, sizeof r);
    pp_event ev;
    int k;
    uint64_t expect = 0;
    while ((k = pp_journal_next(j, &ev)) == 1) {
        if (!r.n) { r.first = ev.seq; expect = ev.seq; }
        int type = (ev.seq & 1) ? PP_EV_ADD : PP_EV_CANCEL;
        uint64_t id = (ev.seq & 1) ? ev.seq : ev.seq - 1;
        if (ev.seq != expect || ev.type != type || ev.order_id != id) r.bad++;
        expect++;
        r.n++;
    }
    if (k < 0) r.rc = k;
    pp_journal_close(j);
    return r;
}

static int count_files(const char *dir, const char *suffix) {
    uint64_t *v = NULL; size_t n = 0;
    if (pp__list_numbered(dir, suffix, 0, &v, &n) != 0) return -1;
    PINNACLE_PERSIST_FREE(v);
    return (int)n;
}
static int count_tmp(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) { size_t l = strlen(e->d_name); if (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0) n++; }
    if (d) closedir(d);
    return n;
}
static const char *sub(const char *a, const char *b) {
    static char buf[4][700]; static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 700, "%s/%s", a, b);
    return p;
}

/* Moves the newest archived segment of archive a to <a>/aside (put: 1), or
 * back (put: 0), as if it were lost between the archive and the live
 * journal. 0, or -1 (fewer than two archived segments, or a rename failed). */
static int newest_archived_aside(const char *a, int put) {
    static char p[800];
    char q[800];
    snprintf(q, sizeof q, "%s/aside", a);
    if (!put) return rename(q, p);
    uint64_t *v = NULL; size_t n = 0;
    if (pp__list_numbered(sub(a, "journal"), ".ppj", 0, &v, &n) != 0) return -1;
    if (n >= 2) snprintf(p, sizeof p, "%s/journal/%020llu.ppj", a, (unsigned long long)v[n - 1]);
    PINNACLE_PERSIST_FREE(v);
    return n >= 2 ? rename(p, q) : -1;
}

/* Rounds of events, each followed by a snapshot and a compaction: with an
 * archive the reader returns every event from 1, also after a reopen; the
 * live journal was compacted all the same; rotated snapshots are in the
 * archive. Without one, the reader starts after what compaction removed. */
static void run_rounds(pp_store *S, pp_book *b, uint64_t *seq, int rounds) {
    for (int r = 0; r < rounds; r++) {
        OK(feed(b, *seq + 1, *seq + 1500));
        *seq += 1500;
        OK(pp_snapshot(b));
        OK(pp_compact(b));
    }
    (void)S;
}

static void test_the_reader_returns_archived_history_from_seq_1(void) {
    const char *d = t_dir("ppa_reader");
    const char *a = archive_of(d, 0);
    pp_config c = cfg_for(d, a);
    pp_store *S; pp_book *b;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "X", &b));
    uint64_t seq = 0;
    run_rounds(S, b, &seq, 4);
    pp_stats st;
    pp_get_stats(b, &st);
    CHECK(st.segments_deleted >= 2);                  /* compaction did take segments off the live journal */
    CHECK(st.journal_first_seq > 1);
    int archived = count_files(sub(a, "journal"), ".ppj");
    CHECK(archived >= 2);
    CHECK_EQ((uint64_t)archived, st.segments_deleted);  /* every one of them moved, none deleted */
    readout r = read_all(S, "X", 1);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.first, 1);
    CHECK_EQ(r.n, seq);
    CHECK_EQ(r.bad, 0);
    r = read_all(S, "X", 777);                        /* from the middle of the archive */
    CHECK_EQ(r.first, 777);
    CHECK_EQ(r.n, seq - 776);
    CHECK_EQ(r.bad, 0);
    /* rotated snapshots: keep_snapshots = 1 live, the older ones archived */
    CHECK_EQ(count_files(sub(d, "books/X/snapshots"), ".pps"), 1);
    CHECK_EQ(count_files(sub(a, "books/X/snapshots"), ".pps"), 4 - 1);
    OK(pp_close(S));
    OK(pp_open(&S, &c));                              /* the archive is not read at open, and not needed */
    OK(pp_book_open(S, "X", &b));
    CHECK_EQ(pp_last_seq(b), seq);
    OK(feed(b, seq + 1, seq + 1500)); seq += 1500;
    OK(pp_snapshot(b));
    OK(pp_compact(b));
    r = read_all(S, "X", 1);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.first, 1);
    CHECK_EQ(r.n, seq);
    CHECK_EQ(r.bad, 0);
    /* a segment missing between the archive and the live journal: damage */
    REQUIRE(newest_archived_aside(a, 1) == 0);
    r = read_all(S, "X", 1);
    CHECK_EQ(r.rc, PP_ECORRUPT);
    REQUIRE(newest_archived_aside(a, 0) == 0);
    r = read_all(S, "X", 1);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.n, seq);
    OK(pp_close(S));
    rm_rf(d); rm_rf(a);
}

static void test_without_archive_the_reader_starts_after_compaction(void) {
    const char *d = t_dir("ppa_noarchive");
    pp_config c = cfg_for(d, NULL);
    pp_store *S; pp_book *b;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "X", &b));
    uint64_t seq = 0;
    run_rounds(S, b, &seq, 3);
    pp_stats st;
    pp_get_stats(b, &st);
    CHECK(st.segments_deleted >= 2);
    readout r = read_all(S, "X", 1);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.first, st.journal_first_seq);          /* the first seq the journal still holds */
    CHECK(r.first > 1);
    CHECK_EQ(r.n, seq - r.first + 1);
    CHECK_EQ(r.bad, 0);
    CHECK_EQ(count_files(sub(d, "books/X/snapshots"), ".pps"), 1);   /* the older snapshots deleted */
    OK(pp_close(S));
    rm_rf(d);
}

/* pp_journal_open_archive: the store's history without the store, the
 * archived segments first (from seq 1), as pp_journal_open gives it; with
 * no archive (and pp_journal_open_dir) the live journal's part only; a
 * segment missing between the two parts is PP_ECORRUPT; the per-instrument
 * layout has no archive. Store open (beside it) and closed. */
static void test_the_offline_reader_reads_the_archive(void) {
    const char *d = t_dir("ppa_offline");
    const char *a = archive_of(d, 3);
    pp_config c = cfg_for(d, a);
    pp_store *S; pp_book *b;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "X", &b));
    uint64_t seq = 0;
    run_rounds(S, b, &seq, 4);
    OK(pp_sync(b));
    pp_stats st;
    pp_get_stats(b, &st);
    REQUIRE(st.journal_first_seq > 1);
    for (int closed = 0; closed < 2; closed++) {
        readout r = read_dir(d, a, "X", 1);
        CHECK_EQ(r.rc, 0);
        CHECK_EQ(r.first, 1);
        CHECK_EQ(r.n, seq);
        CHECK_EQ(r.bad, 0);
        r = read_dir(d, a, "X", 777);                 /* from inside the archive */
        CHECK_EQ(r.first, 777);
        CHECK_EQ(r.n, seq - 776);
        r = read_dir(d, "", "X", 1);                  /* "" is no archive */
        CHECK_EQ(r.rc, 0);
        CHECK_EQ(r.first, st.journal_first_seq);
        CHECK_EQ(r.n, seq - st.journal_first_seq + 1);
        CHECK_EQ(r.bad, 0);
        pp_journal *j = NULL;                         /* pp_journal_open_dir is the same without the archive */
        CHECK_EQ(pp_journal_open_dir(d, "X", 1, &j), 0);
        pp_event ev;
        CHECK_EQ(pp_journal_next(j, &ev), 1);
        CHECK_EQ(ev.seq, st.journal_first_seq);
        pp_journal_close(j);
        CHECK_EQ(read_dir(d, a, "NOPE", 1).rc, PP_ENOENT);
        CHECK_EQ(pp_journal_open_archive(d, a, "../X", 1, &j), PP_ENAME);
        CHECK_EQ(pp_journal_open_archive(NULL, a, "X", 1, &j), PP_EINVAL);
        if (!closed) OK(pp_close(S));
    }
    REQUIRE(newest_archived_aside(a, 1) == 0);       /* the two parts do not meet */
    CHECK_EQ(read_dir(d, a, "X", 1).rc, PP_ECORRUPT);
    REQUIRE(newest_archived_aside(a, 0) == 0);
    CHECK_EQ(read_dir(d, a, "X", 1).n, seq);
    /* the per-instrument layout keeps no archive */
    const char *l = t_dir("ppa_offline_legacy");
    pp_config cl = cfg_for(l, NULL);
    cl.flags |= PP_LEGACY_LAYOUT;
    OK(pp_open(&S, &cl));
    OK(pp_book_open(S, "L", &b));
    OK(feed(b, 1, 10));
    OK(pp_close(S));
    CHECK_EQ(read_dir(l, a, "L", 1).rc, PP_ENOTSUP);
    readout r = read_dir(l, NULL, "L", 1);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.n, 10);
    CHECK_EQ(r.bad, 0);
    rm_rf(d); rm_rf(a); rm_rf(l);
}

/* A rename hook that says EXDEV for every move into the archive, as
 * across filesystems: the archive gets its files by copy. fail_unlink:
 * the removal of the original after the copy fails once (a crash there). */
static const char *xdev_archive;
static int fail_unlinks, unlinks_failed;
static int hook_rename(void *ctx, const char *from, const char *to) {
    (void)ctx;
    size_t l = strlen(from);
    if (xdev_archive && strncmp(to, xdev_archive, strlen(xdev_archive)) == 0 && !(l > 4 && strcmp(from + l - 4, ".tmp") == 0)) {
        errno = EXDEV;
        return -1;
    }
    return rename(from, to);
}
static int hook_unlink(void *ctx, const char *path) {
    (void)ctx;
    size_t l = strlen(path);
    if (fail_unlinks > 0 && l > 4 && strcmp(path + l - 4, ".ppj") == 0) { fail_unlinks--; unlinks_failed++; errno = EIO; return -1; }
    return unlink(path);
}

static void test_across_filesystems_segments_are_copied_whole(void) {
    const char *d = t_dir("ppa_xdev");
    const char *a = archive_of(d, 1);
    pp_config c = cfg_for(d, a);
    pp_io io;
    memset(&io, 0, sizeof io);
    io.rename = hook_rename; io.unlink = hook_unlink;
    xdev_archive = a; fail_unlinks = 0; unlinks_failed = 0;
    pp_test_set_io(&io);
    pp_store *S; pp_book *b;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "X", &b));
    uint64_t seq = 0;
    run_rounds(S, b, &seq, 3);
    CHECK(count_files(sub(a, "journal"), ".ppj") >= 2);
    CHECK_EQ(count_tmp(sub(a, "journal")), 0);
    readout r = read_all(S, "X", 1);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.first, 1);
    CHECK_EQ(r.n, seq);
    CHECK_EQ(r.bad, 0);
    /* a crash after the copy, before the original went: the compaction
     * fails, the segment is in both places */
    OK(feed(b, seq + 1, seq + 1500)); seq += 1500;
    OK(pp_snapshot(b));
    fail_unlinks = 1;
    CHECK(pp_compact(b) != 0);
    CHECK_EQ(unlinks_failed, 1);
    OK(pp_close(S));
    /* and a partial copy of the next one (a crash inside the copy) */
    {
        uint64_t *v = NULL; size_t n = 0;
        OK(pp__list_numbered(sub(d, "journal"), ".ppj", 0, &v, &n));
        REQUIRE(n >= 2);
        char tmp[800];
        snprintf(tmp, sizeof tmp, "%s/journal/%020llu.ppj.tmp", a, (unsigned long long)(v[0] + 1));
        FILE *f = fopen(tmp, "w");
        REQUIRE(f != NULL);
        fputs("half a segment", f);
        fclose(f);
        PINNACLE_PERSIST_FREE(v);
    }
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "X", &b));
    CHECK_EQ(pp_last_seq(b), seq);
    r = read_all(S, "X", 1);                          /* the segment in both places is read once */
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.first, 1);
    CHECK_EQ(r.n, seq);
    CHECK_EQ(r.bad, 0);
    OK(pp_compact(b));                                /* the move is done again, over the copy */
    r = read_all(S, "X", 1);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.n, seq);
    CHECK_EQ(r.bad, 0);
    OK(pp_close(S));
    pp_test_set_io(NULL);
    xdev_archive = NULL;
    rm_rf(d); rm_rf(a);
}

static int count_visits(const pp_order *o, void *ctx) { (void)o; if (ctx) (*(int *)ctx)++; return 0; }

static void test_the_per_instrument_layout_has_no_archive(void) {
    const char *d = t_dir("ppa_legacy");
    const char *a = archive_of(d, 2);
    pp_config c = cfg_for(d, a);
    c.flags |= PP_LEGACY_LAYOUT;
    pp_store *S = NULL;
    CHECK_EQ(pp_open(&S, &c), PP_ENOTSUP);
    CHECK(S == NULL);
    c.archive_dir = d;                                /* the data directory itself */
    c.flags &= ~(uint32_t)PP_LEGACY_LAYOUT;
    CHECK_EQ(pp_open(&S, &c), PP_ECONFIG);
    c.archive_dir = NULL;                             /* pp_book_at_dir on this layout */
    c.flags |= PP_LEGACY_LAYOUT;
    pp_book *b;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "L", &b));
    OK(feed_event(b, 1));
    OK(pp_close(S));
    CHECK_EQ(pp_book_at_dir(d, NULL, "L", 1, count_visits, NULL), PP_ENOTSUP);
    rm_rf(d);
}


static int count_books(const char *n, pp_book *b, void *ctx) { (void)n; (void)b; (*(int *)ctx)++; return 0; }
static int count_listed(const char *n, void *ctx) { (*(int *)ctx) += strcmp(n, "X") == 0 ? 100 : 1; return 0; }

static void test_a_retired_book_is_gone_and_its_history_archived(void) {
    const char *d = t_dir("ppa_retire");
    const char *a = archive_of(d, 2);
    pp_config c = cfg_for(d, a);
    c.keep_snapshots = 2;
    pp_store *S; pp_book *x, *y;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "X", &x));
    OK(pp_book_open(S, "Y", &y));
    OK(feed(x, 1, 1501));
    OK(pp_snapshot(x));
    OK(feed(x, 1502, 2001));
    OK(feed(y, 1, 11));
    OK(pp_snapshot(y));
    CHECK_EQ(pp_book_retire(S, "NOPE"), PP_ENOENT);
    OK(pp_batch_begin(x));
    CHECK_EQ(pp_book_retire(S, "X"), PP_EBUSY);       /* in use: nothing changes */
    OK(pp_batch_abort(x));
    CHECK_EQ(count_files(sub(d, "books/X/snapshots"), ".pps"), 1);
    OK(pp_book_retire(S, "X"));
    CHECK_EQ(pp_book_retire(S, "X"), 0);              /* again: nothing left to do */
    pp_book *x2 = NULL;
    CHECK_EQ(pp_book_open(S, "X", &x2), PP_ERETIRED);
    CHECK(x2 == NULL);
    CHECK_EQ(feed_event(x, 2003), PP_ERETIRED);       /* the old handle refuses events */
    int nb = 0;
    OK(pp_books(S, count_books, &nb));
    CHECK_EQ(nb, 1);
    struct stat st;
    CHECK(stat(sub(d, "books/X"), &st) != 0);         /* its files left the store ... */
    CHECK_EQ(count_files(sub(a, "books/X/snapshots"), ".pps"), 1);   /* ... for the archive */
    int listed = 0;
    OK(pp_list(d, count_listed, &listed));            /* its declaration is still in the live journal */
    CHECK_EQ(listed, 1);                              /* Y only */
    /* its frames pin nothing: compaction moves the journal on without
     * snapshotting it again */
    OK(feed(y, 12, 3011));
    OK(pp_snapshot(y));
    OK(pp_compact(y));
    pp_stats ys;
    pp_get_stats(y, &ys);
    CHECK(ys.segments_deleted >= 1);
    CHECK(stat(sub(d, "books/X"), &st) != 0);
    readout r = read_all(S, "X", 1);                  /* its history: archive and live journal */
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.first, 1);
    CHECK_EQ(r.n, 2001);
    CHECK_EQ(r.bad, 0);
    OK(pp_close(S));
    pp_check_result cr;                               /* the offline check says so too */
    CHECK_EQ(pp_check(d, "X", &cr), PP_ERETIRED);
    CHECK_EQ(cr.status, PP_ERETIRED);
    CHECK(strstr(cr.detail, "retired") != NULL);
    CHECK_EQ(pp_check(d, "Y", &cr), 0);
    CHECK_EQ(cr.journal_last_seq, 3011);
    OK(pp_open(&S, &c));                              /* not recovered */
    nb = 0;
    OK(pp_books(S, count_books, &nb));
    CHECK_EQ(nb, 1);
    CHECK_EQ(pp_book_open(S, "X", &x2), PP_ERETIRED);
    OK(pp_book_open(S, "Y", &y));
    CHECK_EQ(pp_last_seq(y), 3011);
    CHECK_EQ(pp_order_count(y), 1);
    pp_book *z;
    OK(pp_book_open(S, "Z", &z));                     /* a new instrument gets a new id */
    OK(feed(z, 1, 5));
    OK(pp_sync(z));
    r = read_all(S, "Z", 1);
    CHECK_EQ(r.n, 5);                                 /* not X's frames under a reused id */
    CHECK_EQ(r.bad, 0);
    r = read_all(S, "X", 1);
    CHECK_EQ(r.n, 2001);
    OK(pp_close(S));
    r = read_dir(d, a, "X", 1);                       /* and without the store: its id from retired.ppr */
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.first, 1);
    CHECK_EQ(r.n, 2001);
    CHECK_EQ(r.bad, 0);
    r = read_dir(d, a, "Z", 1);
    CHECK_EQ(r.n, 5);
    CHECK_EQ(r.bad, 0);
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "Z", &z));
    CHECK_EQ(pp_last_seq(z), 5);
    OK(pp_close(S));
    /* without an archive the files are deleted */
    c.archive_dir = NULL;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "Z", &z));
    OK(pp_snapshot(z));
    CHECK(stat(sub(d, "books/Z/snapshots"), &st) == 0);
    OK(pp_book_retire(S, "Z"));
    CHECK(stat(sub(d, "books/Z"), &st) != 0);
    CHECK(stat(sub(a, "books/Z"), &st) != 0);
    OK(pp_close(S));
    /* the per-instrument layout */
    const char *d1 = t_dir("ppa_retire_legacy");
    pp_config c1 = cfg_for(d1, NULL);
    c1.flags |= PP_LEGACY_LAYOUT;
    OK(pp_open(&S, &c1));
    OK(pp_book_open(S, "X", &x));
    CHECK_EQ(pp_book_retire(S, "X"), PP_ENOTSUP);
    OK(pp_close(S));
    rm_rf(d); rm_rf(a); rm_rf(d1);
}

/* SIGKILL at the k-th file operation of a retirement (before it, or just
 * after it): the child stops there; the parent reopens. */
static int kill_at, kill_after, ops_seen;
static void op_point(void) { if (++ops_seen == kill_at && !kill_after) raise(SIGKILL); }
static void op_done(void) { if (ops_seen == kill_at && kill_after) raise(SIGKILL); }
static int k_rename(void *ctx, const char *from, const char *to) { (void)ctx; op_point(); int r = rename(from, to); op_done(); return r; }
static int k_unlink(void *ctx, const char *p) { (void)ctx; op_point(); int r = unlink(p); op_done(); return r; }
static int k_fsync_dir(void *ctx, const char *p) { (void)ctx; op_point(); int r = plg_fsync_dir(p); op_done(); return r; }
static int k_fdatasync(void *ctx, int fd) { (void)ctx; op_point(); int r = fdatasync(fd); op_done(); return r; }
static int k_msync(void *ctx, int fd, void *addr, size_t len, int64_t off) {
    (void)ctx; (void)fd; (void)off; op_point(); int r = msync(addr, len, MS_SYNC); op_done(); return r;
}
static int64_t k_pwrite(void *ctx, int fd, const void *buf, size_t len, int64_t off) {
    (void)ctx; op_point(); int64_t r = (int64_t)pwrite(fd, buf, len, (off_t)off); op_done(); return r;
}
static int k_write(void *ctx, const char *p, const void *data, size_t len, unsigned mode) {
    (void)ctx; op_point(); int r = plg_write_file_durable(p, data, len, mode); op_done(); return r;
}

static void test_a_retirement_killed_at_any_point_is_all_or_nothing(void) {
    const char *d = t_dir("ppa_retire_kill");
    const char *a = archive_of(d, 3);
    pp_config c = cfg_for(d, a);
    c.keep_snapshots = 3;
    int points = 0, kept = 0, gone = 0;
    int step = light() ? 4 : 1;                       /* valgrind, sanitizers: every 4th point */
    for (int k = 1; k < 200; k += step) {
        for (int after = 0; after < 2; after++) {
            rm_rf(d); rm_rf(a);
            pp_store *S; pp_book *x, *y;
            OK(pp_open(&S, &c));
            OK(pp_book_open(S, "X", &x));
            OK(pp_book_open(S, "Y", &y));
            OK(feed(x, 1, 31)); OK(pp_snapshot(x));
            OK(feed(x, 32, 61)); OK(pp_snapshot(x));
            pp_md_spec spec;
            memset(&spec, 0, sizeof spec);
            spec.price_scale = 100;
            OK(pp_md_declare(x, &spec));                  /* md/spec: one more file to move */
            OK(feed(x, 62, 71));
            OK(feed(y, 1, 21));                           /* not synced: the retirement makes X's events durable */
            pid_t pid = fork();
            REQUIRE(pid >= 0);
            if (pid == 0) {
                pp_io io;
                memset(&io, 0, sizeof io);
                io.rename = k_rename; io.unlink = k_unlink; io.fsync_dir = k_fsync_dir;
                io.fdatasync = k_fdatasync; io.write_file_durable = k_write;
                io.msync = k_msync; io.pwrite = k_pwrite;
                kill_at = k; kill_after = after; ops_seen = 0;
                pp_test_set_io(&io);
                int rc = pp_book_retire(S, "X");
                _exit(rc == 0 ? 0 : 3);
            }
            int status = 0;
            waitpid(pid, &status, 0);
            int finished = WIFEXITED(status);
            if (finished) CHECK_EQ(WEXITSTATUS(status), 0);
            pp__store_free(S);                            /* our copy, dropped unclosed: the files are the child's */
            OK(pp_open(&S, &c));
            pp_book *x2 = NULL;
            int rc = pp_book_open(S, "X", &x2);
            struct stat st;
            if (rc == 0) {                                /* as it was */
                kept++;
                CHECK(!finished);
                CHECK_EQ(pp_last_seq(x2), 71);
                CHECK_EQ(pp_order_count(x2), 1);
                CHECK_EQ(count_files(sub(d, "books/X/snapshots"), ".pps"), 2);
            } else {                                      /* retired, and its files moved, whole */
                gone++;
                CHECK_EQ(rc, PP_ERETIRED);
                CHECK(stat(sub(d, "books/X"), &st) != 0);
                CHECK_EQ(count_files(sub(a, "books/X/snapshots"), ".pps"), 2);
                CHECK(stat(sub(a, "books/X/md/spec"), &st) == 0);
                readout r = read_all(S, "X", 1);
                CHECK_EQ(r.rc, 0);
                CHECK_EQ(r.n, 71);
                CHECK_EQ(r.bad, 0);
            }
            OK(pp_book_open(S, "Y", &y));
            CHECK_EQ(pp_last_seq(y), 21);
            OK(pp_close(S));
            points++;
            if (finished) { k = 1000; break; }
        }
    }
    printf("  %d kill points: book kept %d, retired %d\n", points, kept, gone);
    CHECK(kept > 0);
    CHECK(gone > 1);
    rm_rf(d); rm_rf(a);
}

/* With the background threads (syncer, maintainer snapshotting and
 * compacting on their own): a retirement while another book journals. */
typedef struct feeder { pp_book *b; uint64_t from, to; int rc; } feeder;
static void *feed_thread(void *p) { feeder *f = (feeder *)p; f->rc = feed(f->b, f->from, f->to); return NULL; }

static void test_a_retirement_beside_the_background_threads(void) {
    const char *d = t_dir("ppa_retire_threads");
    const char *a = archive_of(d, 1);
    pp_config c = cfg_for(d, a);
    c.flags = 0;                                      /* periodic snapshots and compaction on */
    c.snapshot_interval_ms = 5;
    c.journal_sync_interval_ms = 2;
    pp_store *S; pp_book *x, *y;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "X", &x));
    OK(pp_book_open(S, "Y", &y));
    uint64_t n = light() ? 2001 : 4001;
    OK(feed(x, 1, n));
    feeder f = {y, 1, n, 0};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, feed_thread, &f) == 0);
    int rc = pp_book_retire(S, "X");
    pthread_join(t, NULL);
    CHECK_EQ(rc, 0);
    CHECK_EQ(f.rc, 0);
    OK(pp_sync(y));
    readout r = read_all(S, "X", 1);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.n, n);
    CHECK_EQ(r.bad, 0);
    OK(pp_close(S));
    struct stat st;
    CHECK(stat(sub(d, "books/X"), &st) != 0);         /* no snapshot of it after the retirement */
    OK(pp_open(&S, &c));
    pp_book *x2;
    CHECK_EQ(pp_book_open(S, "X", &x2), PP_ERETIRED);
    OK(pp_book_open(S, "Y", &y));
    CHECK_EQ(pp_last_seq(y), n);
    r = read_all(S, "Y", 1);
    CHECK_EQ(r.n, n);
    CHECK_EQ(r.bad, 0);
    OK(pp_close(S));
    rm_rf(d); rm_rf(a);
}

/* A random order flow, logged, so the book after any seq can be replayed. */
#define FLOW_MAX 12000
typedef struct flow { int type[FLOW_MAX + 1]; uint64_t id[FLOW_MAX + 1]; int64_t price[FLOW_MAX + 1], qty[FLOW_MAX + 1];
                      int side[FLOW_MAX + 1]; uint64_t n, rng; } flow;
typedef struct fmodel { int64_t qty[FLOW_MAX + 1], price[FLOW_MAX + 1]; int side[FLOW_MAX + 1]; uint64_t live[FLOW_MAX + 1]; uint64_t nlive; } fmodel;
static flow FL;
static fmodel FM;

static void fm_apply(fmodel *m, const flow *f, uint64_t k) {
    uint64_t id = f->id[k];
    if (f->type[k] == PP_EV_ADD) { m->qty[id] = f->qty[k]; m->price[id] = f->price[k]; m->side[id] = f->side[k]; m->live[m->nlive++] = id; return; }
    if (f->type[k] == PP_EV_EXECUTE) m->qty[id] -= f->qty[k];
    else if (f->type[k] == PP_EV_MODIFY) { m->qty[id] = f->qty[k]; m->price[id] = f->price[k]; }
    else m->qty[id] = 0;
    if (m->qty[id] == 0)
        for (uint64_t i = 0; i < m->nlive; i++) if (m->live[i] == id) { m->live[i] = m->live[--m->nlive]; break; }
}

/* The payload of order id's add: 0..PP_PAYLOAD_MAX bytes, its own. */
static uint32_t flow_payload(uint64_t id, uint8_t *pl) {
    uint32_t n = (uint32_t)((id * 7) % (PP_PAYLOAD_MAX + 1));
    for (uint32_t i = 0; i < n; i++) pl[i] = (uint8_t)(id * 31 + i * 13 + (id >> 8));
    return n;
}

/* The next event of the flow, journaled on b and logged. */
static int flow_step(pp_book *b, flow *f, fmodel *m) {
    uint64_t k = ++f->n, r = t_rand(&f->rng) % 10;
    if (m->nlive < 8 || r < 4) {
        f->type[k] = PP_EV_ADD; f->id[k] = k; f->side[k] = (t_rand(&f->rng) & 1) ? PP_BUY : PP_SELL;
        f->price[k] = 1000 + (int64_t)(t_rand(&f->rng) % 20); f->qty[k] = 1 + (int64_t)(t_rand(&f->rng) % 9);
    } else {
        uint64_t id = m->live[t_rand(&f->rng) % m->nlive];
        f->id[k] = id;
        if (r < 6) f->type[k] = PP_EV_CANCEL;
        else if (r < 8) { f->type[k] = PP_EV_EXECUTE; f->qty[k] = 1 + (int64_t)(t_rand(&f->rng) % (uint64_t)m->qty[id]); f->price[k] = m->price[id]; }
        else { f->type[k] = PP_EV_MODIFY; f->price[k] = 1000 + (int64_t)(t_rand(&f->rng) % 20); f->qty[k] = 1 + (int64_t)(t_rand(&f->rng) % 9); }
    }
    int rc;
    if (f->type[k] == PP_EV_ADD) {                    /* most adds carry a payload of their own */
        uint8_t pl[PP_PAYLOAD_MAX];
        pp_event e;
        memset(&e, 0, sizeof e);
        e.type = PP_EV_ADD; e.order_id = f->id[k]; e.price = f->price[k]; e.qty = f->qty[k]; e.ts_ns = k; e.side = (uint8_t)f->side[k];
        e.payload_len = flow_payload(f->id[k], pl);
        e.payload = e.payload_len ? pl : NULL;
        rc = pp_apply(b, &e);
    } else if (f->type[k] == PP_EV_CANCEL) rc = pp_cancel(b, f->id[k]);
    else if (f->type[k] == PP_EV_EXECUTE) rc = pp_execute(b, f->id[k], f->qty[k], f->price[k]);
    else rc = pp_modify(b, f->id[k], f->price[k], f->qty[k]);
    if (!rc) fm_apply(m, f, k);
    return rc;
}

typedef struct atcheck { const fmodel *m; uint64_t seen, bad, misordered; int last_side; int64_t last_price;
                         uint8_t visited[FLOW_MAX + 1]; } atcheck;
static int at_visit(const pp_order *o, void *ctx) {
    atcheck *c = (atcheck *)ctx;
    c->seen++;
    if (o->id > FLOW_MAX || c->visited[o->id]++ || c->m->qty[o->id] != o->qty || c->m->price[o->id] != o->price ||
        c->m->side[o->id] != o->side) c->bad++;           /* each live order once: with seen == nlive, exactly the live ones */
    else {                                            /* the add's time and payload, byte for byte */
        uint8_t pl[PP_PAYLOAD_MAX];
        uint32_t n = flow_payload(o->id, pl);
        if (o->ts_ns != o->id || o->payload_len != n || (n && (!o->payload || memcmp(o->payload, pl, n) != 0))) c->bad++;
    }
    /* bids first, best (highest) price first; then asks, lowest first */
    if (c->seen > 1 && (o->side < c->last_side ||
                        (o->side == c->last_side && (o->side == PP_BUY ? o->price > c->last_price : o->price < c->last_price)))) c->misordered++;
    c->last_side = o->side; c->last_price = o->price;
    return 0;
}
/* pp_book_at(seq) against the flow replayed to seq; with S NULL,
 * pp_book_at_dir(AT_DIR, AT_ADIR, ...) instead (the store's files, no store). */
static const char *AT_DIR, *AT_ADIR;
static int book_at_matches(pp_store *S, const char *name, uint64_t seq) {
    static fmodel m;
    memset(&m, 0, sizeof m);
    for (uint64_t k = 1; k <= seq; k++) fm_apply(&m, &FL, k);
    static atcheck c;
    memset(&c, 0, sizeof c);
    c.m = &m;
    int rc = S ? pp_book_at(S, name, seq, at_visit, &c) : pp_book_at_dir(AT_DIR, AT_ADIR, name, seq, at_visit, &c);
    if (rc) { printf("  pp_book_at%s(%llu): %s\n", S ? "" : "_dir", (unsigned long long)seq, pp_strerror(rc)); return 0; }
    if (c.seen != m.nlive || c.bad || c.misordered)
        printf("  pp_book_at(%llu): %llu orders (want %llu), %llu wrong, %llu out of order\n", (unsigned long long)seq,
               (unsigned long long)c.seen, (unsigned long long)m.nlive, (unsigned long long)c.bad, (unsigned long long)c.misordered);
    return c.seen == m.nlive && !c.bad && !c.misordered;
}

/* A listing of every file under dir (path, type, size, mtime), to tell
 * whether anything was written, made or removed there. */
static char *LS_BUF; static size_t LS_N, LS_CAP;
static int ls_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)flag; (void)f;
    char line[1200];
    int n = snprintf(line, sizeof line, "%s %o %lld %lld.%09ld\n", p, (unsigned)st->st_mode, (long long)st->st_size,
                     (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
    if (n < 0 || (size_t)n >= sizeof line) return 1;
    if (LS_N + (size_t)n + 1 > LS_CAP) {
        size_t nc = LS_CAP ? LS_CAP * 2 : 1 << 16;
        while (nc < LS_N + (size_t)n + 1) nc *= 2;
        char *q = (char *)realloc(LS_BUF, nc);
        if (!q) return 1;
        LS_BUF = q; LS_CAP = nc;
    }
    memcpy(LS_BUF + LS_N, line, (size_t)n + 1);
    LS_N += (size_t)n;
    return 0;
}
static char *dir_listing(const char *dir) {
    LS_BUF = NULL; LS_N = LS_CAP = 0;
    if (nftw(dir, ls_one, 16, FTW_PHYS) != 0 || !LS_BUF) { free(LS_BUF); return NULL; }
    return LS_BUF;
}
static int same_listing(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static void test_the_book_at_any_past_seq_is_rebuilt(void) {
    const char *d = t_dir("ppa_book_at");
    const char *a = archive_of(d, 0);
    pp_config c = cfg_for(d, a);
    pp_store *S; pp_book *b, *y;
    memset(&FL, 0, sizeof FL); memset(&FM, 0, sizeof FM);
    FL.rng = 1313;
    OK(pp_open(&S, &c));
    OK(pp_book_open(S, "X", &b));
    OK(pp_book_open(S, "Y", &y));
    int rounds = light() ? 3 : 4;
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 1500; k++) OK(flow_step(b, &FL, &FM));
        OK(pp_snapshot(b));
        OK(pp_compact(b));
    }
    for (int k = 0; k < 777; k++) OK(flow_step(b, &FL, &FM));
    OK(pp_sync(b));
    pp_stats st;
    pp_get_stats(b, &st);
    CHECK(st.journal_first_seq > 1500);               /* the early history is only in the archive */
    uint64_t n = FL.n;
    uint64_t seqs[] = {0, 1, 2, 777, 1499, 1500, 1501, 2999, 3000, n / 2, n - 778, n - 1, n};
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) CHECK(book_at_matches(S, "X", seqs[i]));
    CHECK_EQ(pp_book_at(S, "X", n + 1, at_visit, NULL), PP_EINVAL);   /* not journaled (durable) yet */
    CHECK_EQ(pp_book_at(S, "NOPE", 1, at_visit, NULL), PP_ENOENT);
    /* pp_book_at_dir on the same files, the store still open: the same
     * books, and nothing under the data directory or the archive changes */
    char *ls_d = dir_listing(d), *ls_a = dir_listing(a);
    CHECK(ls_d != NULL); CHECK(ls_a != NULL);
    AT_DIR = d; AT_ADIR = a;
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) CHECK(book_at_matches(NULL, "X", seqs[i]));
    CHECK_EQ(pp_book_at_dir(d, a, "X", n + 1, at_visit, NULL), PP_EINVAL);   /* beyond the journal */
    CHECK_EQ(pp_book_at_dir(d, a, "NOPE", 1, at_visit, NULL), PP_ENOENT);
    CHECK_EQ(pp_book_at_dir(d, a, "NOPE", 0, at_visit, NULL), PP_ENOENT);
    CHECK_EQ(pp_book_at_dir(d, NULL, "X", 2, at_visit, NULL), PP_ENOENT);     /* early history: only in the archive */
    AT_ADIR = NULL;
    CHECK(book_at_matches(NULL, "X", n));             /* the live snapshot and segments suffice */
    char *ls_d2 = dir_listing(d), *ls_a2 = dir_listing(a);
    CHECK(same_listing(ls_d, ls_d2));
    CHECK(same_listing(ls_a, ls_a2));
    free(ls_d); free(ls_a); free(ls_d2); free(ls_a2);
    OK(pp_book_retire(S, "X"));                       /* a retired book's history too */
    CHECK(book_at_matches(S, "X", n / 3));
    CHECK(book_at_matches(S, "X", n));
    OK(pp_close(S));
    AT_ADIR = a;                                      /* and offline, after the close */
    ls_d = dir_listing(d); ls_a = dir_listing(a);
    CHECK(book_at_matches(NULL, "X", n / 3));
    CHECK(book_at_matches(NULL, "X", n));
    CHECK_EQ(pp_book_at_dir(d, a, "X", n + 1, at_visit, NULL), PP_EINVAL);
    ls_d2 = dir_listing(d); ls_a2 = dir_listing(a);
    CHECK(same_listing(ls_d, ls_d2));
    CHECK(same_listing(ls_a, ls_a2));
    free(ls_d); free(ls_a); free(ls_d2); free(ls_a2);
    /* without an archive: the early history is gone */
    const char *d2 = t_dir("ppa_book_at_noarchive");
    pp_config c2 = cfg_for(d2, NULL);
    memset(&FL, 0, sizeof FL); memset(&FM, 0, sizeof FM);
    FL.rng = 1314;
    OK(pp_open(&S, &c2));
    OK(pp_book_open(S, "X", &b));
    for (int r = 0; r < 3; r++) {
        for (int k = 0; k < 1500; k++) OK(flow_step(b, &FL, &FM));
        OK(pp_snapshot(b));
        OK(pp_compact(b));
    }
    for (int k = 0; k < 100; k++) OK(flow_step(b, &FL, &FM));
    OK(pp_sync(b));
    CHECK_EQ(pp_book_at(S, "X", 10, at_visit, NULL), PP_ENOENT);
    CHECK(book_at_matches(S, "X", FL.n));            /* from the kept snapshot on, it works */
    CHECK(book_at_matches(S, "X", 4500));
    OK(pp_close(S));
    rm_rf(d); rm_rf(a); rm_rf(d2);
}

int main(void) {
    RUN(test_the_reader_returns_archived_history_from_seq_1);
    RUN(test_without_archive_the_reader_starts_after_compaction);
    RUN(test_the_offline_reader_reads_the_archive);
    RUN(test_across_filesystems_segments_are_copied_whole);
    RUN(test_the_per_instrument_layout_has_no_archive);
    RUN(test_a_retired_book_is_gone_and_its_history_archived);
    RUN(test_a_retirement_killed_at_any_point_is_all_or_nothing);
    RUN(test_a_retirement_beside_the_background_threads);
    RUN(test_the_book_at_any_past_seq_is_rebuilt);
    return t_done();
}
