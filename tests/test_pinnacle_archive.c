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
 *   - the per-instrument layout has no archive: PP_ENOTSUP. */
#pragma GCC diagnostic ignored "-Wunused-function"   /* t.h helpers this test does not use */
#define PINNACLE_PERSIST_IMPLEMENTATION
#define PINNACLE_PERSIST_TEST_IO
#include "pinnacle_persist.h"
#include "t.h"
#include <ftw.h>
#include <signal.h>
#include <sys/wait.h>

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
static readout read_all(pp_store *S, const char *name, uint64_t from) {
    readout r;
    memset(&r, 0, sizeof r);
    pp_journal *j = NULL;
    r.rc = pp_journal_open(S, name, from, &j);
    if (r.rc) return r;
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
    run_rounds(S, b, &seq, light() ? 3 : 5);
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
    CHECK_EQ(count_files(sub(a, "books/X/snapshots"), ".pps"), (light() ? 3 : 5) - 1);
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
    rm_rf(d);
}

int main(void) {
    RUN(test_the_reader_returns_archived_history_from_seq_1);
    RUN(test_without_archive_the_reader_starts_after_compaction);
    RUN(test_across_filesystems_segments_are_copied_whole);
    RUN(test_the_per_instrument_layout_has_no_archive);
    return t_done();
}
