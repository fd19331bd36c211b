/* Regression tests for bugs found by the fault-injection work (issue 6),
 * one test each; the fix is in picolog.h. */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "t.h"
#include <fcntl.h>

static void quiet_log(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }

/* F5: a torn record longer than the in-flight window; reopen (torn tail
 * discarded), close without appending, reopen: must not be PLG_ECORRUPT. */
static void test_f5_torn_big_record_then_reopen(void) {
    const char *dir = t_dir("plg_f5");
    plg_config c; memset(&c, 0, sizeof c);
    c.path = dir; c.log_fn = quiet_log;
    c.max_inflight = 1; c.max_write_bytes = 4096;     /* window 12 KiB */
    c.segment_size = 256 * 1024;
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) { c.io_mode = PLG_IO_BUFFERED_FDATASYNC; rc = plg_open(&L, &c); }
    REQUIRE(rc == 0);
    static uint8_t buf[20000];
    memset(buf, 7, sizeof buf);
    for (int i = 0; i < 10; i++) CHECK_EQ(plg_append(L, buf, 100), i + 1);
    CHECK_EQ(plg_append(L, buf, sizeof buf), 11);
    CHECK_EQ(plg_close(L), 0);
    /* a crash: the durable mark never covered record 11 (no meta file: no mark) */
    char mf[600]; snprintf(mf, sizeof mf, "%s/picolog.meta", dir);
    CHECK_EQ(unlink(mf), 0);
    /* the write that carried record 11's LAST fragment never happened */
    char f[600]; snprintf(f, sizeof f, "%s/%020d.plg", dir, 1);
    int fd = open(f, O_RDWR);
    REQUIRE(fd >= 0);
    static uint8_t pg[4096]; off_t last = 0;
    for (off_t off = 4096; off < 256 * 1024; off += 4096) {
        CHECK_EQ(pread(fd, pg, sizeof pg, off), 4096);
        for (int i = 0; i < 4096; i++) if (pg[i]) { last = off; break; }
    }
    REQUIRE(last > 4 * 4096);
    memset(pg, 0, sizeof pg);
    CHECK_EQ(pwrite(fd, pg, sizeof pg, last), 4096);
    close(fd);
    plg_check_result cr;
    CHECK_EQ(plg_check(dir, &cr), 0);
    CHECK_EQ(cr.last_seq, 10);
    CHECK_EQ(cr.torn_tail, 1);
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 10);
    CHECK_EQ(plg_close(L), 0);                        /* nothing appended */
    CHECK_EQ(plg_check(dir, &cr), 0);                 /* main today: PLG_ECORRUPT */
    CHECK_EQ(cr.last_seq, 10);
    rc = plg_open(&L, &c);
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        CHECK_EQ(plg_append(L, "x", 1), 11);
        CHECK_EQ(plg_close(L), 0);
    }
}

/* plg_reader_seek(last + 1) must succeed (the position after the last
 * record: plg_reader_next then says end), also when the last record began
 * on an earlier page and the last page holds only its continuation: the
 * page search lands on that page, skips the continuation and saw no record.
 * Found by test_crash_pinnacle (strict mode: a snapshot at the log's last
 * seq, then recovery seeks to snapshot + 1 and failed closed). */
static void test_seek_after_last_record_on_a_continuation_page(void) {
    static uint8_t buf[6000];
    memset(buf, 5, sizeof buf);
    for (uint32_t len = 2000; len <= 6000; len += 1000) {
        const char *dir = t_dir("plg_seek_end");
        plg_config c; memset(&c, 0, sizeof c);
        c.path = dir; c.log_fn = quiet_log; c.segment_size = 256 * 1024;
        plg_log *L;
        int rc = plg_open(&L, &c);
        if (rc == PLG_ENODIRECT) { c.io_mode = PLG_IO_BUFFERED_FDATASYNC; rc = plg_open(&L, &c); }
        REQUIRE(rc == 0);
        for (int i = 0; i < 7; i++) CHECK_EQ(plg_append(L, buf, len), i + 1);
        CHECK_EQ(plg_close(L), 0);
        plg_reader *rd;
        for (uint64_t seq = 1; seq <= 9; seq++) {            /* a fresh reader each: seek first, as recovery does */
            REQUIRE(plg_reader_open(&rd, dir) == 0);
            rc = plg_reader_seek(rd, seq);
            if (seq == 9) CHECK_EQ(rc, PLG_ENOENT);
            else {
                CHECK_EQ(rc, 0);
                plg_record rec;
                rc = plg_reader_next(rd, &rec);
                if (seq <= 7) { CHECK_EQ(rc, 1); CHECK_EQ(rec.seq, seq); } else CHECK_EQ(rc, 0);
            }
            plg_reader_close(rd);
        }
    }
}

int main(void) {
    (void)t_rand;
    RUN(test_f5_torn_big_record_then_reopen);
    RUN(test_seek_after_last_record_on_a_continuation_page);
    return t_done();
}
