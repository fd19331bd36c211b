/* pinnacle_persist.h, strict mode on the store journal (format 2): one
 * picolog log for the whole store, not one per book.
 *   - 200 books fed from two threads: one log (journal/picolog.meta), no
 *     log per book; threads and file descriptors bounded; pp_durable of
 *     every book reaches its last seq without pp_sync; the books come back
 *     equal after a reopen, pp_check says strict, and the journal reader
 *     returns every event;
 *   - a store created in one mode is refused in the other (PP_EMODE), and
 *     encrypt_key in a build without PICOLOG_ENCRYPT is PP_ENOTSUP;
 *   - archive_dir: compaction's released segments move to the archive, and
 *     the history readers (pp_journal_open, pp_journal_open_archive,
 *     pp_book_at_dir) read it from seq 1, after a reopen too;
 *   - a byte flipped in an acknowledged record fails the open closed
 *     (PP_ECORRUPT, naming the log's segment file);
 *   - a record whose frame does not check (a frame CRC wrong under a valid
 *     picolog record) fails the open closed with "bad frame checksum";
 *   - compaction releases the log's old segments and the books survive;
 *   - compaction never leaves the log without a record (the journal
 *     positions live in the records), and an open that finds none goes on
 *     above every snapshot's position: events journaled after such an open
 *     survive the next compaction;
 *   - PP_NO_THREADS: pp_sync relays and waits, nothing else moves.
 * Power cuts on the simulated disk: tests/test_sim_pinnacle.c (one seed in
 * eight is strict); SIGKILL: tests/test_crash_pinnacle.c (every third
 * store journal is strict). */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wunused-function"   /* t.h helpers this test does not use */
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "t.h"
#include <dirent.h>
#include <pthread.h>

#define OK(call) do { int ok_rc_ = (call); CHECK_EQ(ok_rc_, 0); if (ok_rc_) return; } while (0)
static char last_msg[1024];
static pthread_mutex_t msg_mu = PTHREAD_MUTEX_INITIALIZER;
static void keep(void *u, int code, const char *msg) {
    (void)u; (void)code;
    pthread_mutex_lock(&msg_mu);
    snprintf(last_msg, sizeof last_msg, "%s", msg);
    pthread_mutex_unlock(&msg_mu);
}

static plg_config tpl;
static pp_config cfg_for(const char *dir) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.mode = PP_JOURNAL_STRICT;
    c.flags = PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT;
    c.log_fn = keep;
    memset(&tpl, 0, sizeof tpl);
    tpl.segment_size = 256 << 10;
    tpl.ring_capacity = 1 << 20;
    tpl.io_mode = PLG_IO_BUFFERED_FDATASYNC;   /* any filesystem: durability from fdatasync */
    tpl.log_fn = keep;
    c.strict_log = &tpl;
    return c;
}

static int count_dir(const char *path) {
    DIR *dh = opendir(path);
    int n = 0;
    struct dirent *e;
    if (!dh) return -1;
    while ((e = readdir(dh)) != NULL) if (e->d_name[0] != '.') n++;
    closedir(dh);
    return n;
}
static int exists(const char *p) { struct stat st; return stat(p, &st) == 0; }
/* The process's threads but io_uring's workers (iou-wrk-*: the kernel's,
 * started and stopped as buffered writes block). */
static int count_threads(void) {
    DIR *dh = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (!dh) return -1;
    while ((e = readdir(dh)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[300], comm[64] = "";
        snprintf(p, sizeof p, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(p, "r");
        if (f) { if (!fgets(comm, sizeof comm, f)) comm[0] = 0; fclose(f); }
        n += strncmp(comm, "iou-", 4) != 0;
    }
    closedir(dh);
    return n;
}

#define NB 200
typedef struct feeder { pp_book **b; int from, to, rounds; int rc; } feeder;
/* Book k gets adds of ids 1.. and cancels of every third one; its seq,
 * orders and the sum of its prices follow from the rounds alone. */
static void *feed(void *p) {
    feeder *f = (feeder *)p;
    for (int r = 1; r <= f->rounds && !f->rc; r++)
        for (int k = f->from; k < f->to && !f->rc; k++) {
            pp_order o;
            memset(&o, 0, sizeof o);
            o.id = (uint64_t)r; o.price = 1000 + k + r % 17; o.qty = 1 + r % 5; o.side = r % 2 ? PP_BUY : PP_SELL;
            f->rc = pp_add(f->b[k], &o);
            if (!f->rc && r % 3 == 0) f->rc = pp_cancel(f->b[k], (uint64_t)r);
        }
    return NULL;
}
static uint64_t want_seq(int rounds) { return (uint64_t)rounds + (uint64_t)rounds / 3; }
static uint64_t want_orders(int rounds) { return (uint64_t)rounds - (uint64_t)rounds / 3; }

static void test_one_log_for_many_books(void) {
    const char *dir = t_dir("pps_strict_many");
    pp_config c = cfg_for(dir);
    int th0 = count_threads(), fd0 = count_dir("/proc/self/fd");
    pp_store *s;
    static pp_book *b[NB];
    OK(pp_open(&s, &c));
    for (int k = 0; k < NB; k++) {
        char n[16];
        snprintf(n, sizeof n, "S%03d", k);
        OK(pp_book_open(s, n, &b[k]));
    }
    const int rounds = 60;
    feeder f[2] = {{b, 0, NB / 2, rounds, 0}, {b, NB / 2, NB, rounds, 0}};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, feed, &f[1]) == 0);
    feed(&f[0]);
    pthread_join(th, NULL);
    CHECK_EQ(f[0].rc, 0); CHECK_EQ(f[1].rc, 0);
    int threads = count_threads() - th0, fds = count_dir("/proc/self/fd") - fd0;
    /* the store's three, picolog's writer and its segment thread: not 2 per book */
    CHECK(threads <= 6);
    CHECK(fds <= 16);
    char p[4096];
    snprintf(p, sizeof p, "%s/journal/picolog.meta", dir);
    CHECK(exists(p));
    snprintf(p, sizeof p, "%s/books/S000/strict", dir);
    CHECK(!exists(p));
    snprintf(p, sizeof p, "%s/S000", dir);
    CHECK(!exists(p));
    /* pp_durable moves by itself (the syncer relays to picolog, picolog
     * syncs): every book within 10 s, without a pp_sync */
    uint64_t t0 = plg_now_ns();
    int behind = NB;
    while (behind && plg_now_ns() - t0 < 10000000000ull) {
        behind = 0;
        for (int k = 0; k < NB; k++) behind += pp_durable(b[k]) < want_seq(rounds);
        if (behind) usleep(1000);
    }
    CHECK_EQ(behind, 0);
    CHECK_EQ(pp_wait(b[7], want_seq(rounds), 2000000000ll), 0);
    for (int k = 0; k < NB; k++) {
        CHECK_EQ(pp_last_seq(b[k]), want_seq(rounds));
        CHECK_EQ(pp_order_count(b[k]), want_orders(rounds));
    }
    CHECK_EQ(pp_close(s), 0);

    pp_check_result r;
    CHECK_EQ(pp_check(dir, "S123", &r), 0);
    CHECK_EQ(r.mode, PP_JOURNAL_STRICT);
    CHECK_EQ(r.journal_last_seq, want_seq(rounds));
    CHECK_EQ(r.durable_mark_seq, want_seq(rounds));

    OK(pp_open(&s, &c));
    for (int k = 0; k < NB; k++) {
        char n[16];
        snprintf(n, sizeof n, "S%03d", k);
        OK(pp_book_open(s, n, &b[k]));
        CHECK_EQ(pp_last_seq(b[k]), want_seq(rounds));
        CHECK_EQ(pp_durable(b[k]), want_seq(rounds));
        CHECK_EQ(pp_order_count(b[k]), want_orders(rounds));
        pp_order o;
        CHECK_EQ(pp_find(b[k], 2, &o), 0);
        CHECK_EQ(o.price, 1000 + k + 2);
        CHECK_EQ(pp_find(b[k], 3, &o), PP_ENOENT);
    }
    pp_journal *j;
    OK(pp_journal_open(s, "S042", 1, &j));
    pp_event ev;
    uint64_t n = 0, adds = 0;
    int rc;
    while ((rc = pp_journal_next(j, &ev)) == 1) { n++; CHECK_EQ(ev.seq, n); adds += ev.type == PP_EV_ADD; }
    CHECK_EQ(rc, 0);
    CHECK_EQ(n, want_seq(rounds));
    CHECK_EQ(adds, (uint64_t)rounds);
    pp_journal_close(j);
    /* the seqs go on densely after a reopen */
    pp_order o;
    memset(&o, 0, sizeof o);
    o.id = 1000; o.price = 5; o.qty = 1; o.side = PP_BUY;
    CHECK_EQ(pp_add(b[0], &o), 0);
    CHECK_EQ(pp_last_seq(b[0]), want_seq(rounds) + 1);
    CHECK_EQ(pp_sync(b[0]), 0);
    CHECK_EQ(pp_durable(b[0]), want_seq(rounds) + 1);
    CHECK_EQ(pp_close(s), 0);
}

static void test_modes_do_not_mix(void) {
    const char *dir = t_dir("pps_strict_modes");
    pp_config c = cfg_for(dir);
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "A", &b));
    CHECK_EQ(pp_close(s), 0);
    pp_config m = c;
    m.mode = PP_JOURNAL_MMAP;
    CHECK_EQ(pp_open(&s, &m), PP_EMODE);
    CHECK(strstr(last_msg, "strict") != NULL);
    const char *dir2 = t_dir("pps_strict_modes2");
    m.data_dir = dir2;
    OK(pp_open(&s, &m));
    OK(pp_book_open(s, "A", &b));
    CHECK_EQ(pp_close(s), 0);
    pp_config c2 = c;
    c2.data_dir = dir2;
    CHECK_EQ(pp_open(&s, &c2), PP_EMODE);
    /* encryption at rest in a build without PICOLOG_ENCRYPT: refused before
     * anything is written (tests/test_pinnacle_encrypt.c has the rest) */
    static const uint8_t key[32] = "not-compiled-in-data-key-0123456";
    const char *dir4 = t_dir("pps_strict_nocrypt");
    pp_config c4 = c;
    c4.data_dir = dir4; c4.encrypt_key = key;
    last_msg[0] = 0;
    CHECK_EQ(pp_open(&s, &c4), PP_ENOTSUP);
    CHECK(strstr(last_msg, "PICOLOG_ENCRYPT") != NULL);
    CHECK_EQ(count_dir(dir4), 0);
}

/* The first segment file of the store's log, and the data of its first page. */
static void seg1(const char *dir, char *p, size_t cap) { snprintf(p, cap, "%s/journal/%020u.plg", dir, 1u); }

static void test_flipped_byte_fails_closed(void) {
    const char *dir = t_dir("pps_strict_flip");
    pp_config c = cfg_for(dir);
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "F", &b));
    for (uint64_t i = 1; i <= 300; i++) {
        pp_order o;
        memset(&o, 0, sizeof o);
        o.id = i; o.price = 100 + (int64_t)i; o.qty = 1; o.side = PP_BUY;
        OK(pp_add(b, &o));
    }
    CHECK_EQ(pp_sync(b), 0);
    CHECK_EQ(pp_durable(b), 300u);
    CHECK_EQ(pp_close(s), 0);
    /* a byte inside the log's first record (how the relay cut the frames
     * into records depends on timing: ask the reader where it is) */
    char jd[4096], p[4096];
    snprintf(jd, sizeof jd, "%s/journal", dir);
    plg_reader *rd;
    OK(plg_reader_open(&rd, jd));
    uint64_t off = 0;
    const char *file = plg_reader_where(rd, &off);
    REQUIRE(file != NULL);
    snprintf(p, sizeof p, "%s", file);
    plg_record rec;
    REQUIRE(plg_reader_next(rd, &rec) == 1 && rec.len >= 64);
    plg_reader_close(rd);
    int fd = open(p, O_RDWR);
    REQUIRE(fd >= 0);
    uint8_t x;
    REQUIRE(pread(fd, &x, 1, (off_t)off + 40) == 1);   /* past its 24-byte fragment header: a frame's bytes */
    x ^= 0x10;
    REQUIRE(pwrite(fd, &x, 1, (off_t)off + 40) == 1);
    close(fd);
    last_msg[0] = 0;
    CHECK_EQ(pp_open(&s, &c), PP_ECORRUPT);
    CHECK(strstr(last_msg, ".plg") != NULL);
    if (!strstr(last_msg, ".plg")) fprintf(stderr, "  message: %s\n", last_msg);
    pp_check_result r;
    CHECK_EQ(pp_check(dir, "F", &r), PP_ECORRUPT);
    CHECK(strstr(r.file, ".plg") != NULL);
}

/* A frame whose CRC is wrong inside a valid picolog record: only the
 * store's own check sees it (the record's CRC covers the bytes as written). */
static void test_bad_frame_in_a_record_fails_closed(void) {
    const char *dir = t_dir("pps_strict_frame");
    pp_config c = cfg_for(dir);
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "G", &b));
    pp_order o;
    memset(&o, 0, sizeof o);
    o.id = 1; o.price = 10; o.qty = 1; o.side = PP_BUY;
    OK(pp_add(b, &o));
    CHECK_EQ(pp_close(s), 0);
    /* append a record as the relay would write it, with one bit of its
     * frame changed after the frame's CRC was computed */
    char jd[4096];
    snprintf(jd, sizeof jd, "%s/journal", dir);
    plg_reader *rd;
    OK(plg_reader_open(&rd, jd));
    plg_record rec;
    uint8_t last[4096];
    uint32_t len = 0;
    while (plg_reader_next(rd, &rec) == 1) { REQUIRE(rec.len <= sizeof last); memcpy(last, rec.data, rec.len); len = rec.len; }
    plg_reader_close(rd);
    REQUIRE(len >= PP__SJR_HDR + PP__SJ_EVFRAME);
    uint64_t pos = pp__get64(last) + (len - PP__SJR_HDR);       /* right after the last frame */
    pp__put64(last, pos);
    uint8_t *f = last + PP__SJR_HDR;
    memmove(f, last + len - PP__SJ_EVFRAME, PP__SJ_EVFRAME);    /* the record's last frame: the add */
    REQUIRE(f[8] == PP_EV_ADD && pp__get32(f) == PP__SJ_EVFRAME);
    pp__put64(f + 16, 2); pp__put64(f + 24, 2);                 /* seq 2, order 2: it would fit */
    pp__put32(f + 4, pp__sj_crc(pp__get32(last + 8), pos, f, PP__SJ_EVFRAME));
    f[40] ^= 1;                                                  /* qty changed after the CRC */
    plg_config lc = tpl;
    lc.path = jd;
    plg_log *log;
    OK(plg_open(&log, &lc));
    CHECK(plg_append(log, last, PP__SJR_HDR + PP__SJ_EVFRAME) > 0);
    CHECK_EQ(plg_close(log), 0);
    last_msg[0] = 0;
    CHECK_EQ(pp_open(&s, &c), PP_ECORRUPT);
    CHECK(strstr(last_msg, "bad frame checksum") != NULL);
    if (!strstr(last_msg, "bad frame checksum")) fprintf(stderr, "  message: %s\n", last_msg);
}

/* Records that are not what the relay writes (random headers, frame
 * lengths and contents; half of them with every frame's CRC made right so
 * the bytes reach the dispatch): pp_open and pp_check fail closed with
 * PP_ECORRUPT or open a store whose book is unharmed; nothing crashes or
 * reads out of bounds (run under ASan by make test). */
static void test_random_records_fail_closed(void) {
    const char *dir = t_dir("pps_strict_random");
    const char *tpl_dir = t_dir("pps_strict_random_tpl");
    pp_config c = cfg_for(tpl_dir);
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "R", &b));
    for (uint64_t i = 1; i <= 20; i++) {
        pp_order o;
        memset(&o, 0, sizeof o);
        o.id = i; o.price = 100; o.qty = 2; o.side = PP_BUY;
        OK(pp_add(b, &o));
    }
    CHECK_EQ(pp_close(s), 0);
    uint64_t rng = 0x5eed;
    int rounds = getenv("PLG_TEST_QUICK") ? 40 : 150, opened = 0, refused = 0;
    for (int round = 0; round < rounds; round++) {
        char cmd[2200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", dir, tpl_dir, dir);
        REQUIRE(system(cmd) == 0);
        char jd[4096];
        snprintf(jd, sizeof jd, "%s/journal", dir);
        /* the position after the last record, and its seed */
        plg_reader *rd;
        OK(plg_reader_open(&rd, jd));
        plg_record rec;
        uint64_t end = 0; uint32_t seed = 0, shift = 0;
        while (plg_reader_next(rd, &rec) == 1) {
            end = pp__get64((const uint8_t *)rec.data) + rec.len - PP__SJR_HDR;
            seed = pp__get32((const uint8_t *)rec.data + 8); shift = pp__get32((const uint8_t *)rec.data + 12);
        }
        plg_reader_close(rd);
        static uint8_t r[4096];
        uint32_t nframes = 1 + (uint32_t)(t_rand(&rng) % 4), len = PP__SJR_HDR;
        uint64_t k = t_rand(&rng);
        pp__put64(r, k % 5 == 0 ? t_rand(&rng) : k % 5 == 1 ? end - 64 : end);   /* mostly where it belongs */
        pp__put32(r + 8, k % 7 == 0 ? (uint32_t)t_rand(&rng) : seed);
        pp__put32(r + 12, k % 11 == 0 ? (uint32_t)(t_rand(&rng) % 40) : shift);
        if (round % 4 == 0) { pp__put64(r, end); pp__put32(r + 8, seed); pp__put32(r + 12, shift); }
        for (uint32_t f = 0; f < nframes && len + 128 <= sizeof r; f++) {
            uint8_t *fr = r + len;
            uint32_t fl = t_rand(&rng) % 3 == 0 ? 128 : 64;
            for (uint32_t x = 0; x < fl; x += 8) pp__put64(fr + x, t_rand(&rng));
            uint64_t y = t_rand(&rng);
            pp__put32(fr, y % 9 == 0 ? (uint32_t)t_rand(&rng) : fl);
            if (y % 3 != 0) fr[8] = (uint8_t)(1 + t_rand(&rng) % 17);   /* a type that exists, mostly */
            if (y % 4 != 0) pp__put32(fr + 12, 1);                      /* the book's id, mostly */
            if (y % 5 != 0) pp__put64(fr + 16, 21 + f);                 /* the next seqs, mostly */
            if (y % 6 != 0) { fr[56] = 0; fr[57] = 0; for (int z = 58; z < 64; z++) fr[z] = 0; }
            if (round % 4 == 0) {                                        /* a record the relay could have written */
                fl = 64;
                memset(fr, 0, 64);
                pp__put32(fr, 64); fr[8] = PP_EV_ADD; fr[9] = PP_BUY; pp__put32(fr + 12, 1);
                pp__put64(fr + 16, 21 + f); pp__put64(fr + 24, 1000 + f); pp__put64(fr + 32, 100); pp__put64(fr + 40, 1);
            }
            if ((k & 1) || round % 4 == 0) pp__put32(fr + 4, pp__sj_crc(pp__get32(r + 8), pp__get64(r) + (len - PP__SJR_HDR), fr, fl));
            len += fl;
        }
        plg_config lc = tpl;
        lc.path = jd;
        plg_log *log;
        OK(plg_open(&log, &lc));
        CHECK(plg_append(log, r, len) > 0);
        CHECK_EQ(plg_close(log), 0);
        pp_check_result cr;
        int crc = pp_check(dir, "R", &cr);
        CHECK(crc == 0 || crc == PP_ECORRUPT || crc == PP_ENOENT);
        pp_config c2 = cfg_for(dir);
        int rc = pp_open(&s, &c2);
        CHECK(rc == 0 || rc == PP_ECORRUPT);
        if (round % 4 == 0) CHECK_EQ(rc, 0);                          /* well formed: accepted */
        if (rc == 0) {
            opened++;
            OK(pp_book_open(s, "R", &b));
            CHECK(pp_last_seq(b) >= 20);
            pp_order o;
            CHECK_EQ(pp_find(b, 20, &o), 0);
            if (round % 4 == 0) { CHECK_EQ(pp_last_seq(b), 20 + (uint64_t)nframes); CHECK_EQ(pp_order_count(b), 20 + (uint64_t)nframes); }
            CHECK_EQ(pp_close(s), 0);
        } else {
            refused++;
        }
    }
    printf("  %d random records: %d stores opened, %d refused (PP_ECORRUPT)\n", rounds, opened, refused);
    CHECK(refused > 0);
}

static void test_compaction_releases_old_segments(void) {
    const char *dir = t_dir("pps_strict_compact");
    pp_config c = cfg_for(dir);
    c.keep_snapshots = 1;
    pp_store *s; pp_book *b[3];
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "X", &b[0]));
    OK(pp_book_open(s, "Y", &b[1]));
    OK(pp_book_open(s, "Z", &b[2]));              /* Z stays idle after one event: compaction snapshots it */
    pp_order o;
    memset(&o, 0, sizeof o);
    o.id = 1; o.price = 7; o.qty = 3; o.side = PP_SELL;
    OK(pp_add(b[2], &o));
    for (uint64_t i = 1; i <= 12000; i++) {
        memset(&o, 0, sizeof o);
        o.id = i; o.price = 100 + (int64_t)(i % 50); o.qty = 1; o.side = PP_BUY;
        OK(pp_add(b[i % 2], &o));
        if (i % 4 == 0) OK(pp_cancel(b[i % 2], i - 2));
    }
    CHECK_EQ(pp_sync(b[0]), 0);
    OK(pp_snapshot(b[0]));
    OK(pp_snapshot(b[1]));
    char p[4096];
    seg1(dir, p, sizeof p);
    CHECK(exists(p));
    CHECK_EQ(pp_compact(b[0]), 0);
    for (int i = 0; i < 3000 && exists(p); i++) usleep(1000);   /* picolog's segment thread */
    CHECK(!exists(p));
    uint64_t last[3], cnt[3];
    for (int k = 0; k < 3; k++) { last[k] = pp_last_seq(b[k]); cnt[k] = pp_order_count(b[k]); }
    CHECK_EQ(pp_close(s), 0);
    OK(pp_open(&s, &c));
    const char *names[3] = {"X", "Y", "Z"};
    for (int k = 0; k < 3; k++) {
        OK(pp_book_open(s, names[k], &b[k]));
        CHECK_EQ(pp_last_seq(b[k]), last[k]);
        CHECK_EQ(pp_order_count(b[k]), cnt[k]);
    }
    CHECK_EQ(pp_find(b[2], 1, &o), 0);
    CHECK_EQ(o.qty, 3);
    CHECK_EQ(pp_close(s), 0);
}

/* The file holding the start of the log's last record and the file where
 * the log ends (malloc'd), and the offset of the end in it. */
static int last_record_files(const char *jdir, char **head, char **end, uint64_t *end_off) {
    plg_reader *r = NULL;
    plg_record rec;
    uint64_t off;
    *head = *end = NULL;
    if (plg_reader_open(&r, jdir) != 0) return -1;
    for (;;) {
        const char *f = plg_reader_where(r, &off);
        char *at = f ? strdup(f) : NULL;
        int k = plg_reader_next(r, &rec);
        if (k != 1) { free(at); break; }
        free(*head); *head = at;
    }
    const char *f = plg_reader_where(r, end_off);
    *end = f ? strdup(f) : NULL;
    plg_reader_close(r);
    return *head && *end ? 0 : -1;
}

/* The number of the log's first segment file (<20 digits>.plg), 0 if none. */
static uint64_t first_segment(const char *jdir) {
    DIR *dh = opendir(jdir);
    uint64_t first = 0;
    struct dirent *e;
    if (!dh) return 0;
    while ((e = readdir(dh)) != NULL) {
        if (strlen(e->d_name) != 24 || strcmp(e->d_name + 20, ".plg") != 0) continue;
        uint64_t v = strtoull(e->d_name, NULL, 10);
        if (!first || v < first) first = v;
    }
    closedir(dh);
    return first;
}

static int add_events(pp_book *b, uint64_t *id, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        pp_order o;
        memset(&o, 0, sizeof o);
        o.id = ++*id; o.price = 100 + (int64_t)(*id % 50); o.qty = 1; o.side = PP_BUY;
        int rc = pp_add(b, &o);
        if (rc) return rc;
    }
    return pp_sync(b);
}

/* The journal positions live only in the log's records. When the last
 * record spanned two of picolog's segments and compaction released every
 * record (the book snapshotted at its tip), picolog retired the segment
 * holding its head: the log held only a continuation, no record. The next
 * open restarted the positions at segment 1, below the position the
 * snapshot recorded, and the next compaction released the segments holding
 * the events journaled after that open (the book's need lay above them):
 * the store then opened as PP_ECORRUPT ("entries missing"), acknowledged
 * events gone. Compaction now keeps the newest processed record; and an
 * open that finds no record continues above every snapshot's position.
 * empty_it: the reopen finds a log with no record, what the old compaction
 * left (here a new, empty log in place of the store's: which segments hold
 * only a continuation depends on the relay's timing). */
static void compact_everything(const char *name, int empty_it) {
    const char *dir = t_dir(name);
    char jdir[4096];
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    pp_config c = cfg_for(dir);
    c.keep_snapshots = 1;
    c.journal_chunk_bytes = 8192;
    c.journal_segment_bytes = 64 << 10;
    tpl.segment_size = 64 << 10;
    pp_store *s; pp_book *b;
    uint64_t id = 0;
    char *head = NULL, *end = NULL;
    int spans = 0;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "X", &b));
    OK(add_events(b, &id, 6000));                 /* positions far beyond the first segments */
    /* batches (one record each) until the last record spans two segments
     * (read live: everything is durable after pp_sync) */
    for (int k = 0; k < 200 && !spans && !empty_it; k++) {
        OK(add_events(b, &id, 97));
        free(head); free(end);
        uint64_t end_off = 0;
        REQUIRE(last_record_files(jdir, &head, &end, &end_off) == 0);
        spans = strcmp(head, end) != 0 && end_off > PLG_PAGE_SIZE;   /* its tail in the next segment's first data page */
    }
    REQUIRE(spans || empty_it);
    OK(pp_snapshot(b));                           /* at the tip: the book needs nothing of the journal */
    CHECK_EQ(pp_compact(b), 0);
    for (int i = 0; i < 1000 && head && exists(head); i++) usleep(1000);   /* picolog's retirement (before the fix) */
    CHECK_EQ(pp_close(s), 0);
    if (empty_it) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", jdir);
        REQUIRE(system(cmd) == 0);
        plg_config lc = tpl;
        lc.path = jdir;
        plg_log *L = NULL;
        REQUIRE(plg_open(&L, &lc) == 0);
        REQUIRE(plg_close(L) == 0);
        plg_reader *r = NULL;
        plg_record rec;
        REQUIRE(plg_reader_open(&r, jdir) == 0);
        CHECK_EQ(plg_reader_next(r, &rec), 0);    /* no record */
        plg_reader_close(r);
    }
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "X", &b));
    CHECK_EQ(pp_last_seq(b), id);
    for (int k = 0; k < 6; k++) OK(add_events(b, &id, 500));   /* several of picolog's segments */
    CHECK_EQ(pp_durable(b), id);
    uint64_t seg0 = first_segment(jdir);
    CHECK_EQ(pp_compact(b), 0);
    for (int i = 0; i < 1000 && first_segment(jdir) == seg0; i++) usleep(1000);   /* the retirement, if any */
    CHECK_EQ(pp_close(s), 0);
    OK(pp_open(&s, &c));                          /* before the fix: PP_ECORRUPT, entries missing */
    OK(pp_book_open(s, "X", &b));
    CHECK_EQ(pp_last_seq(b), id);
    CHECK_EQ(pp_order_count(b), id);
    CHECK_EQ(pp_close(s), 0);
    free(head); free(end);
}
static void test_compacting_everything_keeps_the_positions(void) { compact_everything("pps_strict_compact_all", 0); }
static void test_empty_log_continues_above_the_snapshots(void) { compact_everything("pps_strict_empty_log", 1); }

static void test_no_threads(void) {
    const char *dir = t_dir("pps_strict_nothreads");
    pp_config c = cfg_for(dir);
    c.flags |= PP_NO_THREADS;
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "N", &b));
    for (uint64_t i = 1; i <= 1000; i++) {
        pp_order o;
        memset(&o, 0, sizeof o);
        o.id = i; o.price = 50; o.qty = 2; o.side = PP_SELL;
        OK(pp_add(b, &o));
    }
    usleep(20000);
    CHECK_EQ(pp_durable(b), 0u);                  /* nobody relays: no store thread */
    CHECK_EQ(pp_sync(b), 0);
    CHECK_EQ(pp_durable(b), 1000u);
    CHECK_EQ(pp_close(s), 0);
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "N", &b));
    CHECK_EQ(pp_last_seq(b), 1000u);
    CHECK_EQ(pp_order_count(b), 1000u);
    CHECK_EQ(pp_close(s), 0);
}

/* Event k of a book fed from seq 1: odd k adds order k, even k cancels
 * order k - 1 (the book holds one order at most). */
static int arch_event(pp_book *b, uint64_t k) {
    if (!(k & 1)) return pp_cancel(b, k - 1);
    pp_order o;
    memset(&o, 0, sizeof o);
    o.id = k; o.price = 100 + (int64_t)(k % 7); o.qty = 10; o.ts_ns = k; o.side = PP_BUY;
    return pp_add(b, &o);
}
/* Reads the journal j to its end: the count, the first seq, and how many
 * events are not what arch_event wrote at their place (closes j). */
static void arch_read(pp_journal *j, uint64_t *n, uint64_t *first, uint64_t *bad) {
    pp_event ev;
    *n = *first = *bad = 0;
    while (pp_journal_next(j, &ev) == 1) {
        if (!*n) *first = ev.seq;
        uint64_t want = *first + *n;
        int type = (want & 1) ? PP_EV_ADD : PP_EV_CANCEL;
        if (ev.seq != want || ev.type != type || ev.order_id != ((want & 1) ? want : want - 1)) (*bad)++;
        (*n)++;
    }
    pp_journal_close(j);
}
static int arch_visit(const pp_order *o, void *ctx) { *(uint64_t *)ctx = o->id; return 0; }

/* archive_dir in strict mode: picolog moves the segments compaction
 * releases to <archive_dir>/journal/ instead of reusing or deleting them;
 * the journal reader returns every event from seq 1 (also after a reopen),
 * pp_journal_open_archive the same without the store, pp_journal_open_dir
 * (no archive) starts after the released segments; pp_book_at_dir rebuilds
 * an early book only with the archive. Before picolog could archive, this
 * configuration was refused (PP_ENOTSUP). */
static void test_archive_keeps_the_released_segments(void) {
    const char *dir = t_dir("pps_strict_archive");
    const char *adir = t_dir("pps_strict_archive_to");
    pp_config c = cfg_for(dir);
    c.archive_dir = adir;
    c.keep_snapshots = 1;
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "X", &b));
    char a1[4096], live1[4096];
    snprintf(a1, sizeof a1, "%s/journal/%020u.plg", adir, 1u);
    seg1(dir, live1, sizeof live1);
    uint64_t seq = 0;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 12000; i++) OK(arch_event(b, ++seq));
        CHECK_EQ(pp_sync(b), 0);
        OK(pp_snapshot(b));
        CHECK_EQ(pp_compact(b), 0);
    }
    for (int i = 0; i < 3000 && !exists(a1); i++) usleep(1000);   /* picolog's segment thread */
    CHECK(exists(a1));
    CHECK(!exists(live1));
    uint64_t n, first, bad;
    pp_journal *j = NULL;
    OK(pp_journal_open(s, "X", 1, &j));
    arch_read(j, &n, &first, &bad);
    CHECK_EQ(first, 1);
    CHECK_EQ(n, seq);
    CHECK_EQ(bad, 0);
    CHECK_EQ(pp_close(s), 0);
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "X", &b));
    CHECK_EQ(pp_last_seq(b), seq);
    for (int i = 0; i < 100; i++) OK(arch_event(b, ++seq));
    CHECK_EQ(pp_sync(b), 0);
    OK(pp_journal_open(s, "X", 5000, &j));
    arch_read(j, &n, &first, &bad);
    CHECK_EQ(first, 5000);
    CHECK_EQ(n, seq - 4999);
    CHECK_EQ(bad, 0);
    CHECK_EQ(pp_close(s), 0);
    OK(pp_journal_open_archive(dir, adir, "X", 1, &j));   /* without the store */
    arch_read(j, &n, &first, &bad);
    CHECK_EQ(first, 1);
    CHECK_EQ(n, seq);
    CHECK_EQ(bad, 0);
    OK(pp_journal_open_dir(dir, "X", 1, &j));            /* the log alone: after the released segments */
    arch_read(j, &n, &first, &bad);
    CHECK(first > 1);
    CHECK_EQ(first + n - 1, seq);
    CHECK_EQ(bad, 0);
    uint64_t id = 0;
    CHECK_EQ(pp_book_at_dir(dir, adir, "X", 3, arch_visit, &id), 0);   /* after event 3: order 3 rests */
    CHECK_EQ(id, 3);
    CHECK_EQ(pp_book_at_dir(dir, NULL, "X", 3, arch_visit, &id), PP_ENOENT);
}

int main(void) {
    RUN(test_one_log_for_many_books);
    RUN(test_modes_do_not_mix);
    RUN(test_flipped_byte_fails_closed);
    RUN(test_bad_frame_in_a_record_fails_closed);
    RUN(test_random_records_fail_closed);
    RUN(test_compaction_releases_old_segments);
    RUN(test_archive_keeps_the_released_segments);
    RUN(test_compacting_everything_keeps_the_positions);
    RUN(test_empty_log_continues_above_the_snapshots);
    RUN(test_no_threads);
    return t_done();
}
