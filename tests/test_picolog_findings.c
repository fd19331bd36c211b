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
    c.max_inflight = 1; c.max_write_bytes = 4096;     /* window 8 KiB */
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

int main(void) {
    (void)t_rand;
    RUN(test_f5_torn_big_record_then_reopen);
    return t_done();
}
