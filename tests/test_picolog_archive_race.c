/* A reader of a log and its archive (plg_reader_open_archive) while the
 * writer's segment thread moves released segments into the archive: the
 * move lands between the reader's listing of the segments (or its look at
 * one) and its open of the segment's file. Made deterministic here: the
 * test binary's open() moves the armed segment into the archive right
 * before the reader opens it by its name in the log. A segment is always
 * whole in one place or the other, so the reader must find it, whichever
 * moment the move takes.
 * Needs a filesystem with O_DIRECT under $PLG_TEST_DIR (default build/tmp). */
#define _GNU_SOURCE
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "t.h"
#include <fcntl.h>
#include <stdarg.h>
#include <sys/syscall.h>

static void quiet_log(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }

/* The move: armed with a segment's name in the log and its name in the
 * archive; done once, by the first open() of the armed name. */
static char move_from[700], move_to[700];
static int move_armed, move_done;

int open(const char *path, int flags, ...) {
    unsigned mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, unsigned);
        va_end(ap);
    }
    if (move_armed && strcmp(path, move_from) == 0) {
        move_armed = 0;
        move_done = rename(move_from, move_to) == 0;
    }
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

static plg_config cfg_for(const char *dir, const char *adir) {
    plg_config c;
    memset(&c, 0, sizeof c);
    c.path = dir;
    c.archive_dir = adir;
    c.segment_size = 64 * 1024;      /* up to 569 records of 100 bytes a segment */
    c.ring_capacity = 1u << 20;
    c.log_fn = quiet_log;
    return c;
}

static void fill(uint8_t *p, uint32_t len, uint64_t seq) {
    for (uint32_t i = 0; i < len; i++) p[i] = (uint8_t)(seq * 31 + i);
}

/* Every record from seq 1, in order, with its bytes; the count, or < 0. */
static int64_t read_all(const char *dir, const char *adir, int *bad) {
    plg_reader *r;
    int rc = plg_reader_open_archive(&r, dir, adir, NULL, 0);
    if (rc) return rc;
    plg_record rec;
    uint8_t want[100];
    int64_t n = 0;
    while ((rc = plg_reader_next(r, &rec)) == 1) {
        n++;
        fill(want, sizeof want, rec.seq);
        if (rec.seq != (uint64_t)n || rec.len != sizeof want || memcmp(rec.data, want, sizeof want) != 0) (*bad)++;
    }
    plg_reader_close(r);
    return rc < 0 ? rc : n;
}

/* Segment 1 released into the archive, segments 2.. in the log; the
 * reader opens while segment `moving` leaves the log. */
static void moved_while_opening(const char *name, uint64_t moving) {
    const char *dir = t_dir(name);
    char adir[560];
    snprintf(adir, sizeof adir, "%s.archive", dir);
    char cmd[700]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", adir);
    REQUIRE(system(cmd) == 0);
    plg_config c = cfg_for(dir, adir);
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) SKIP("no O_DIRECT under $PLG_TEST_DIR");
    REQUIRE(rc == 0);
    const uint64_t n = 2000;                         /* 5 segments */
    uint8_t buf[100];
    for (uint64_t s = 1; s <= n; s++) {
        fill(buf, sizeof buf, s);
        int64_t got;
        while ((got = plg_append(L, buf, sizeof buf)) == PLG_EFULL) sched_yield();
        REQUIRE(got == (int64_t)s);
    }
    REQUIRE(plg_wait(L, n, 10000000000ll) == 0);
    REQUIRE(plg_release(L, 600) == 0);               /* segment 1 only */
    plg_stats st;
    for (int i = 0; i < 10000; i++) { plg_get_stats(L, &st); if (st.segments_released >= 1) break; usleep(1000); }
    REQUIRE(st.segments_released == 1);
    REQUIRE(plg_close(L) == 0);
    snprintf(move_from, sizeof move_from, "%s/%020llu.plg", dir, (unsigned long long)moving);
    snprintf(move_to, sizeof move_to, "%s/%020llu.plg", adir, (unsigned long long)moving);
    REQUIRE(access(move_from, F_OK) == 0);
    move_done = 0; move_armed = 1;
    int bad = 0;
    CHECK_EQ(read_all(dir, adir, &bad), (int64_t)n);
    CHECK_EQ(bad, 0);
    CHECK(move_done);                                /* the move did happen inside the open */
    move_armed = 0;
    CHECK_EQ(access(move_from, F_OK), -1);
    CHECK_EQ(access(move_to, F_OK), 0);
    bad = 0;                                         /* and the log reads the same afterwards */
    CHECK_EQ(read_all(dir, adir, &bad), (int64_t)n);
    CHECK_EQ(bad, 0);
    REQUIRE(system(cmd) == 0);
}

/* The first segment left in the log, and one further on. */
static void test_first_log_segment_moved_while_opening(void) { moved_while_opening("plg_arace_first", 2); }
static void test_middle_segment_moved_while_opening(void) { moved_while_opening("plg_arace_mid", 4); }

int main(void) {
    (void)t_rand;
    RUN(test_first_log_segment_moved_while_opening);
    RUN(test_middle_segment_moved_while_opening);
    return t_done();
}
