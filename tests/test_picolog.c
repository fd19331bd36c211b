/* picolog.h tests: round trips, recovery, torn tails, corruption, stale data,
 * a full ring, injected I/O failures and completion order.
 * Needs a filesystem with O_DIRECT under $PLG_TEST_DIR (default build/tmp). */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "t.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/vfs.h>
#include <dirent.h>

static int quick(void) { return getenv("PLG_TEST_QUICK") != NULL; }

static void quiet_log(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }

static plg_config cfg_for(const char *dir) {
    plg_config c;
    memset(&c, 0, sizeof c);
    c.path = dir;
    c.segment_size = 64 * 1024;      /* small segments: rollover is exercised */
    c.ring_capacity = 1u << 20;
    c.log_fn = quiet_log;
    return c;
}

static void fill(uint8_t *p, uint32_t len, uint64_t seq, uint64_t salt) {
    uint64_t s = seq * 0x9E3779B97F4A7C15ull ^ salt;
    for (uint32_t i = 0; i < len; i++) { if ((i & 7) == 0) s = s * 6364136223846793005ull + 1442695040888963407ull; p[i] = (uint8_t)(s >> (8 * (i & 7))); }
}
static int same(const plg_record *r, uint32_t len, uint64_t salt) {
    static uint8_t buf[1 << 21];
    if (r->len != len) return 0;
    fill(buf, len, r->seq, salt);
    return memcmp(buf, r->data, len) == 0;
}

static int64_t append_retry(plg_log *L, const void *d, uint32_t len) {
    int64_t s;
    for (int i = 0; (s = plg_append(L, d, len)) == PLG_EFULL && i < 10000000; i++) sched_yield();
    return s;
}

/* These tests damage the files after a clean close to stand for what a
 * crash leaves behind. A crash leaves the durable mark (picolog.meta) below
 * the records that were in flight; without the meta file the log has no
 * mark at all, so the damage is judged as a crash's would be. */
static void crash_before_mark(const char *dir) {
    char f[600]; snprintf(f, sizeof f, "%s/picolog.meta", dir);
    CHECK_EQ(unlink(f), 0);
}

/* Append n records of size len (content from seq and salt); wait durable. */
static void write_records(plg_log *L, uint64_t n, uint32_t len, uint64_t salt) {
    uint8_t buf[4096];
    int64_t last = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seq = plg_appended(L) + 1;
        fill(buf, len, seq, salt);
        last = append_retry(L, buf, len);
        if (last != (int64_t)seq) { CHECK_EQ(last, seq); return; }
    }
    CHECK_EQ(plg_wait(L, (uint64_t)last, 10000000000ll), 0);
}

/* Read the whole log: returns the count, checks density and content. */
static uint64_t read_all(const char *dir, uint32_t len, uint64_t salt, int *rc_out) {
    plg_reader *r;
    int rc = plg_reader_open(&r, dir);
    if (rc) { *rc_out = rc; return 0; }
    plg_record rec;
    uint64_t n = 0, bad = 0;
    while ((rc = plg_reader_next(r, &rec)) == 1) {
        n++;
        if (rec.seq != n || (len && !same(&rec, len, salt))) bad++;
    }
    plg_reader_close(r);
    CHECK_EQ(bad, 0);
    *rc_out = rc;
    return n;
}

static void seg_path(char *out, size_t cap, const char *dir, int idx) { snprintf(out, cap, "%s/%020d.plg", dir, idx); }

static void poke(const char *file, uint64_t off, const void *data, size_t len) {
    int fd = open(file, O_WRONLY);
    CHECK(fd >= 0);
    CHECK_EQ(pwrite(fd, data, len, (off_t)off), (long long)len);
    fsync(fd);
    close(fd);
}

/* ---------------------------------------------------------------------- */

static void test_crc32c(void) {
    CHECK_EQ(plg_crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(plg_crc32c_portable(0, "123456789", 9), 0xE3069283u);
    uint8_t buf[1000]; uint64_t s = 7;
    for (int i = 0; i < 1000; i++) buf[i] = (uint8_t)t_rand(&s);
    for (int len = 0; len < 1000; len += 37) {
        CHECK_EQ(plg_crc32c(0, buf, (size_t)len), plg_crc32c_portable(0, buf, (size_t)len));
        uint32_t a = plg_crc32c(0, buf, (size_t)len / 2);
        CHECK_EQ(plg_crc32c(a, buf + len / 2, (size_t)(len - len / 2)), plg_crc32c(0, buf, (size_t)len));
    }
    /* every start alignment and every length up to 80, then some longer:
     * the hardware path's steps before and after its 8-byte loop */
    int bad = 0;
    for (int off = 0; off < 8; off++)
        for (int len = 0; len < 200; len += len < 80 ? 1 : 13)
            bad += plg_crc32c(0x12345678u, buf + off, (size_t)len) != plg_crc32c_portable(0x12345678u, buf + off, (size_t)len);
    CHECK_EQ(bad, 0);
}

/* The writer computes a fragment's CRC from the header's fields and the
 * payload it copied (plg__frag_crc_fields); readers from the page's bytes
 * (plg__frag_crc). Both must give the same value, on the hardware path and
 * the portable one, for every type, flag, length and field value. */
static void test_frag_crc_fields_match_bytes(void) {
    uint8_t payload[300], page[PLG_PAGE_SIZE]; uint64_t s = 11;
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)t_rand(&s);
    int bad = 0, n = 0;
    for (int hw = 1; hw >= 0; hw--) {
#ifdef PLG__CRC_FIELDS_HW
        int saved = plg__crc_hw_get();
        plg__crc_hw = hw ? saved : 0;
#endif
        for (int type = PLG__FULL; type <= PLG__LAST; type++)
            for (uint32_t len = 1; len < 300; len += len < 20 ? 1 : 29) {
                uint64_t log_id = t_rand(&s), seq = t_rand(&s);
                uint32_t epoch = (uint32_t)t_rand(&s), aux = (uint32_t)t_rand(&s);
                unsigned flags = (unsigned)(t_rand(&s) & 0xFF);
                uint32_t off = (uint32_t)(t_rand(&s) % 64) * 8;
                memset(page, 0, sizeof page);
                plg__frag_put(page + off, log_id, type, flags, epoch, aux, seq, payload + (len % 7), len);
                uint32_t stored = plg__get32(page + off);
                bad += stored != plg__frag_crc(log_id, page + off, page + off + PLG__FRAG_HDR, len);
                bad += stored != plg__frag_crc_fields(log_id, len, type, flags, epoch, aux, seq, payload + (len % 7), len);
                n++;
            }
#ifdef PLG__CRC_FIELDS_HW
        plg__crc_hw = saved;
#endif
    }
    CHECK(n > 100);
    CHECK_EQ(bad, 0);
}

static void test_roundtrip_and_reopen(void) {
    const char *dir = t_dir("plg_roundtrip");
    plg_config c = cfg_for(dir);
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) SKIP("no O_DIRECT on the test filesystem (set PLG_TEST_DIR to ext4/xfs)");
    REQUIRE(rc == 0);
    CHECK_EQ(plg_append(L, "x", 1), 1);            /* a new log starts at 1 */
    write_records(L, 2999, 100, 1);
    CHECK_EQ(plg_durable(L), 3000);
    plg_stats st; plg_get_stats(L, &st);
    CHECK(st.sync_mode == PLG_SYNC_DSYNC || st.sync_mode == PLG_SYNC_FDATASYNC);   /* AUTO resolved */
    CHECK_EQ(plg_close(L), 0);
    for (int round = 0; round < 3; round++) {      /* dense across restarts */
        REQUIRE(plg_open(&L, &c) == 0);
        CHECK_EQ(plg_appended(L), 3000 + round * 1000);
        CHECK_EQ(plg_durable(L), 3000 + round * 1000);
        write_records(L, 1000, 100, 1);
        CHECK_EQ(plg_close(L), 0);
    }
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    uint64_t n = 0, bad = 0;
    while (plg_reader_next(r, &rec) == 1) {
        n++;
        if (rec.seq != n) bad++;
        else if (n == 1) { if (rec.len != 1 || memcmp(rec.data, "x", 1)) bad++; }
        else if (!same(&rec, 100, 1)) bad++;
    }
    CHECK_EQ(n, 6000);
    CHECK_EQ(bad, 0);
    plg_reader_close(r);
    plg_check_result cr;
    CHECK_EQ(plg_check(dir, &cr), 0);
    CHECK_EQ(cr.records, 6000);
    CHECK_EQ(cr.last_seq, 6000);
    CHECK(cr.segments >= 10);                       /* 64 KiB segments rolled over */
    CHECK_EQ(cr.torn_tail, 0);
}

static void test_random_sizes_1b_to_1mib(void) {
    const char *dir = t_dir("plg_sizes");
    plg_config c = cfg_for(dir);
    c.ring_capacity = 4u << 20;
    c.segment_size = 256 * 1024;                   /* a 1 MiB record spans segments */
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    static uint8_t buf[1 << 20];
    uint64_t s = 42;
    int n = quick() ? 60 : 200;
    uint32_t lens[200];
    for (int i = 0; i < n; i++) {
        uint32_t len;
        int k = (int)(t_rand(&s) % 10);
        if (i == 0) len = 1;
        else if (i == 1) len = 1u << 20;
        else if (k < 5) len = 1 + (uint32_t)(t_rand(&s) % 200);
        else if (k < 8) len = 1 + (uint32_t)(t_rand(&s) % 10000);
        else len = 1 + (uint32_t)(t_rand(&s) % (1u << 20));
        lens[i] = len;
        fill(buf, len, (uint64_t)i + 1, 9);
        CHECK_EQ(append_retry(L, buf, len), i + 1);
    }
    CHECK_EQ(plg_wait(L, (uint64_t)n, 30000000000ll), 0);
    CHECK_EQ(plg_close(L), 0);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    int got = 0, bad = 0;
    while (plg_reader_next(r, &rec) == 1) {
        if (rec.seq != (uint64_t)got + 1 || !same(&rec, lens[got], 9)) bad++;
        got++;
    }
    CHECK_EQ(got, n);
    CHECK_EQ(bad, 0);
    /* seek lands on records that start mid-segment and span segments */
    for (int i = 0; i < 20; i++) {
        uint64_t want = 1 + t_rand(&s) % (uint64_t)n;
        CHECK_EQ(plg_reader_seek(r, want), 0);
        CHECK_EQ(plg_reader_next(r, &rec), 1);
        CHECK_EQ(rec.seq, want);
        CHECK(same(&rec, lens[want - 1], 9));
    }
    plg_reader_close(r);
    /* reopen continues after a log of big records */
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), (uint64_t)n);
    CHECK_EQ(plg_close(L), 0);
}

static void test_seek(void) {
    const char *dir = t_dir("plg_seek");
    plg_config c = cfg_for(dir);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 5000, 100, 3);
    CHECK_EQ(plg_close(L), 0);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    uint64_t s = 5;
    for (int i = 0; i < 200; i++) {
        uint64_t want = 1 + t_rand(&s) % 5000;
        if (i == 0) want = 1;
        if (i == 1) want = 5000;
        REQUIRE(plg_reader_seek(r, want) == 0);
        REQUIRE(plg_reader_next(r, &rec) == 1);
        CHECK_EQ(rec.seq, want);
        CHECK(same(&rec, 100, 3));
        if (plg_reader_next(r, &rec) == 1) CHECK_EQ(rec.seq, want + 1);
        else CHECK_EQ(want, 5000);
    }
    CHECK_EQ(plg_reader_seek(r, 5001), 0);           /* just past the end: next says end */
    CHECK_EQ(plg_reader_next(r, &rec), 0);
    CHECK_EQ(plg_reader_seek(r, 7000), PLG_ENOENT);
    CHECK_EQ(plg_reader_seek(r, 0), PLG_EINVAL);
    plg_reader_close(r);
}

/* Where record i ends, packed densely: t_plg_dense_pos (t.h) */
static uint64_t rec_end(uint64_t i) { return t_plg_dense_pos(i, 0); }

static void test_torn_tail_every_sector(void) {
    const char *dir = t_dir("plg_torn");
    const uint64_t N = 200;                          /* 6.25 pages in segment 1 */
    uint64_t end = rec_end(N), first = end > 4 * 4096 ? end - 4 * 4096 : 4096;
    first -= first % 512;
    int cases = 0, ok = 0;
    uint64_t s = 11;
    for (int garble = 0; garble < 3; garble++) {      /* zeros, garbage, truncated file */
        for (uint64_t b = first; b < end; b += (quick() ? 1536 : 512)) {
            plg_config c = cfg_for(dir);
            c.flags |= PLG_PACK_DENSE;                 /* rec_end(): packed densely */
            c.segment_size = 256 * 1024;
            char cmd[600]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir); CHECK_EQ(system(cmd), 0);
            plg_log *L;
            REQUIRE(plg_open(&L, &c) == 0);
            write_records(L, N, 100, 5);
            REQUIRE(plg_close(L) == 0);
            crash_before_mark(dir);
            /* the tear: from sector b to past the end, zeros or garbage */
            uint8_t junk[4 * 4096 + 8192];
            uint64_t len = end + 4096 - b;
            for (uint64_t i = 0; i < len; i++) junk[i] = garble == 1 ? (uint8_t)t_rand(&s) : 0;
            char f[600]; seg_path(f, sizeof f, dir, 1);
            if (garble == 2) CHECK_EQ(truncate(f, (off_t)b), 0);
            else poke(f, b, junk, (size_t)len);
            uint64_t expect = 0;
            while (expect < N && rec_end(expect + 1) <= b) expect++;
            REQUIRE(plg_open(&L, &c) == 0);
            cases++;
            int good = plg_appended(L) == expect && plg_durable(L) == expect;
            write_records(L, 50, 100, 5);             /* continues densely after the tear */
            good &= plg_close(L) == 0;
            int rc;
            good &= read_all(dir, 100, 5, &rc) == expect + 50 && rc == 0;
            if (!good) fprintf(stderr, "  torn at %llu (garble %d): appended %s\n", (unsigned long long)b, garble, "wrong");
            ok += good;
        }
    }
    CHECK(cases > 20);
    CHECK_EQ(ok, cases);
}

/* A garbled record with valid records behind it, inside the in-flight
 * window: a torn tail. The records behind are discarded, never replayed. */
static void test_garbled_record_valid_behind(void) {
    const char *dir = t_dir("plg_garbled");
    plg_config c = cfg_for(dir);
    c.flags |= PLG_PACK_DENSE;                 /* rec_end(): packed densely */
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 300, 100, 6);
    REQUIRE(plg_close(L) == 0);
    crash_before_mark(dir);
    char f[600]; seg_path(f, sizeof f, dir, 1);
    uint8_t x = 0x5A;
    poke(f, rec_end(250) + 40, &x, 1);               /* inside record 251's payload */
    plg_check_result cr;
    CHECK_EQ(plg_check(dir, &cr), 0);                  /* torn, not corrupt */
    CHECK_EQ(cr.last_seq, 250);
    CHECK_EQ(cr.torn_tail, 1);
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 250);
    write_records(L, 10, 100, 6);
    CHECK_EQ(plg_close(L), 0);
    int rc;
    CHECK_EQ(read_all(dir, 100, 6, &rc), 260);
    CHECK_EQ(rc, 0);
}

/* Damage far behind the in-flight window is corruption: fail closed, name
 * the file and offset; the reader stops there with an error. */
static void test_mid_log_corruption(void) {
    const char *dir = t_dir("plg_corrupt");
    plg_config c = cfg_for(dir);
    c.flags |= PLG_PACK_DENSE;                 /* rec_end(): packed densely */
    c.max_write_bytes = 4096; c.max_inflight = 1;    /* window = 12 KiB */
    c.segment_size = 1024 * 1024;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 3000, 100, 7);
    REQUIRE(plg_close(L) == 0);
    char f[600]; seg_path(f, sizeof f, dir, 1);
    uint8_t x = 0xFF;
    uint64_t off = rec_end(99) + 30;                   /* record 100's payload */
    poke(f, off, &x, 1);
    CHECK_EQ(plg_open(&L, &c), PLG_ECORRUPT);
    plg_check_result cr;
    CHECK_EQ(plg_check(dir, &cr), PLG_ECORRUPT);
    CHECK_EQ(cr.last_seq, 99);
    CHECK_EQ(cr.offset, rec_end(99));                  /* exact offset of the bad record */
    CHECK(strstr(cr.file, "00000000000000000001.plg") != NULL);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec; int rc; uint64_t n = 0;
    while ((rc = plg_reader_next(r, &rec)) == 1) n++;
    CHECK_EQ(n, 99);
    CHECK_EQ(rc, PLG_ECORRUPT);
    uint64_t where = 0;
    CHECK(strstr(plg_reader_where(r, &where), "00000000000000000001.plg") != NULL);
    CHECK_EQ(where, rec_end(99));
    plg_reader_close(r);
    /* the damaged log was not modified by the refused open */
    CHECK_EQ(plg_check(dir, &cr), PLG_ECORRUPT);
}

/* Bytes of another log (same offsets, valid checksums for that log) behind
 * the end never replay. */
static void test_stale_other_log(void) {
    const char *a = t_dir("plg_stale_a"), *b = t_dir("plg_stale_b");
    plg_config ca = cfg_for(a), cb = cfg_for(b);
    ca.flags |= PLG_PACK_DENSE; cb.flags |= PLG_PACK_DENSE;
    plg_log *L;
    REQUIRE(plg_open(&L, &ca) == 0); write_records(L, 300, 100, 1); REQUIRE(plg_close(L) == 0);
    REQUIRE(plg_open(&L, &cb) == 0); write_records(L, 50, 100, 1); REQUIRE(plg_close(L) == 0);
    char fa[600], fb[600]; seg_path(fa, sizeof fa, a, 1); seg_path(fb, sizeof fb, b, 1);
    static uint8_t buf[64 * 1024];
    int fd = open(fa, O_RDONLY); REQUIRE(fd >= 0);
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), (long long)sizeof buf);
    close(fd);
    poke(fb, rec_end(50), buf + rec_end(50), (size_t)(rec_end(300) - rec_end(50)));
    REQUIRE(plg_open(&L, &cb) == 0);
    CHECK_EQ(plg_appended(L), 50);
    CHECK_EQ(plg_close(L), 0);
    int rc;
    CHECK_EQ(read_all(b, 100, 1, &rc), 50);
    CHECK_EQ(rc, 0);
}

/* Records of this log's earlier incarnation put back exactly where the
 * next record is expected still never replay (the epoch chain). */
static void test_stale_earlier_incarnation(void) {
    const char *dir = t_dir("plg_stale_epoch");
    plg_config c = cfg_for(dir);
    c.flags |= PLG_PACK_DENSE;                 /* rec_end(): packed densely */
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0); write_records(L, 200, 100, 1); REQUIRE(plg_close(L) == 0);
    char f[600]; seg_path(f, sizeof f, dir, 1);
    static uint8_t old[32 * 1024];
    int fd = open(f, O_RDONLY); REQUIRE(fd >= 0);
    CHECK_EQ(pread(fd, old, sizeof old, 0), (long long)sizeof old);
    close(fd);
    static uint8_t zero[32 * 1024];
    crash_before_mark(dir);
    poke(f, rec_end(100), zero, (size_t)(rec_end(200) - rec_end(100)));   /* "crash" lost 101..200 */
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 100);
    write_records(L, 10, 100, 2);                       /* new 101..110, other content, same size */
    REQUIRE(plg_close(L) == 0);
    /* 101 took a 24-byte header (the new incarnation's first record), so
     * the new 110 ends 20 bytes after the old one: the old incarnation's
     * 111..200 go back (a) right behind the new end, where 111 is expected,
     * SHORT headers implying the new epoch; (b) at their own offsets */
    plg_check_result cr;
    REQUIRE(plg_check(dir, &cr) == 0);
    CHECK_EQ(cr.last_seq, 110);
    uint64_t new_end = cr.offset;
    CHECK_EQ(new_end, rec_end(110) + 20);
    static uint8_t now[32 * 1024];
    fd = open(f, O_RDONLY); REQUIRE(fd >= 0);
    CHECK_EQ(pread(fd, now, sizeof now, 0), (long long)sizeof now);
    close(fd);
    for (int place = 0; place < 2; place++) {
        poke(f, 0, now, sizeof now);
        if (place == 0) poke(f, new_end, old + rec_end(110), (size_t)(rec_end(200) - rec_end(110)));
        else poke(f, new_end, old + new_end, (size_t)(rec_end(200) - new_end));
        plg_reader *r;
        REQUIRE(plg_reader_open(&r, dir) == 0);
        plg_record rec; uint64_t n = 0; int bad = 0, rc;
        while ((rc = plg_reader_next(r, &rec)) == 1) { n++; if (!same(&rec, 100, n <= 100 ? 1 : 2)) bad++; }
        plg_reader_close(r);
        CHECK_EQ(n, 110);
        CHECK_EQ(bad, 0);
        CHECK_EQ(rc, 0);
    }
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 110);
    CHECK_EQ(plg_close(L), 0);
}

/* ---- a controllable I/O engine: hold completions, release them in any
 * order, fail or shorten a chosen write ---- */
typedef struct top { uint64_t tag; int fd; const void *buf; uint32_t len; uint64_t off; int dsync, is_sync, ready; } top;
typedef struct tio {
    pthread_mutex_t mu;
    top q[256]; int qn;
    int nsub, hold;
    int fail_at, fail_errno, short_at, fsync_fail;   /* 1-based submission index, 0 = never */
    int nwait;                                       /* reap calls that may wait (timeout_ns > 0) */
    uint64_t min_wait;                               /* the shortest such wait since reset, ns (0: none) */
} tio;

static int tio_write(void *ctx, int fd, const void *buf, uint32_t len, uint64_t off, int dsync, uint64_t tag) {
    tio *t = (tio *)ctx;
    pthread_mutex_lock(&t->mu);
    top *o = &t->q[t->qn++];
    o->tag = tag; o->fd = fd; o->buf = buf; o->len = len; o->off = off; o->dsync = dsync; o->is_sync = 0;
    o->ready = !t->hold;
    t->nsub++;
    if (t->nsub == t->fail_at) o->len = 0xFFFFFFFFu;
    if (t->nsub == t->short_at) o->len = len - 512;
    pthread_mutex_unlock(&t->mu);
    return 0;
}
static int tio_fsync(void *ctx, int fd, uint64_t tag) {
    tio *t = (tio *)ctx;
    pthread_mutex_lock(&t->mu);
    top *o = &t->q[t->qn++];
    memset(o, 0, sizeof *o);
    o->tag = tag; o->fd = fd; o->is_sync = 1; o->ready = !t->hold;
    pthread_mutex_unlock(&t->mu);
    return 0;
}
static int tio_reap(void *ctx, plg_io_cqe *out, int max, uint64_t timeout_ns) {
    tio *t = (tio *)ctx;
    int n = 0;
    pthread_mutex_lock(&t->mu);
    if (timeout_ns) { t->nwait++; if (!t->min_wait || timeout_ns < t->min_wait) t->min_wait = timeout_ns; }
    for (int i = 0; i < t->qn && n < max; ) {
        top *o = &t->q[i];
        if (!o->ready) { i++; continue; }
        int res;
        if (o->is_sync) res = t->fsync_fail ? -EIO : (fdatasync(o->fd) == 0 ? 0 : -errno);
        else if (o->len == 0xFFFFFFFFu) res = -t->fail_errno;
        else {
            ssize_t w = pwrite(o->fd, o->buf, o->len, (off_t)o->off);
            if (w >= 0 && o->dsync) fdatasync(o->fd);
            res = w < 0 ? -errno : (int)w;
        }
        out[n].tag = o->tag; out[n].res = res; n++;
        memmove(o, o + 1, (size_t)(t->qn - i - 1) * sizeof *o);
        t->qn--;
    }
    pthread_mutex_unlock(&t->mu);
    if (!n && timeout_ns) usleep(timeout_ns > 1000000 ? 1000 : (useconds_t)(timeout_ns / 1000 + 1));
    return n;
}
static void tio_init(tio *t, plg_io *io) {
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    io->ctx = t; io->submit_write = tio_write; io->submit_fsync = tio_fsync; io->reap = tio_reap;
}
static int tio_pending(tio *t) { pthread_mutex_lock(&t->mu); int n = t->qn; pthread_mutex_unlock(&t->mu); return n; }
static void tio_release(tio *t, int i) {   /* i-th queued op */
    pthread_mutex_lock(&t->mu); if (i < t->qn) t->q[i].ready = 1; pthread_mutex_unlock(&t->mu);
}
static void tio_release_all(tio *t) {
    pthread_mutex_lock(&t->mu); t->hold = 0; for (int i = 0; i < t->qn; i++) t->q[i].ready = 1;
    pthread_mutex_unlock(&t->mu);
}
static void wait_until(int (*cond)(void *), void *arg) {
    for (int i = 0; i < 5000 && !cond(arg); i++) usleep(1000);
}
static int four_pending(void *t) { return tio_pending((tio *)t) >= 4; }

/* Completions arriving out of order never move durable past a gap. Records
 * of 4072 bytes fill a page each, so each is its own one-page write. */
static int dur_at_least_1(void *L) { return plg_durable((plg_log *)L) >= 1; }
static void test_durable_is_contiguous(void) {
    const char *dir = t_dir("plg_order");
    tio t; plg_io io; tio_init(&t, &io);
    t.hold = 1;
    plg_config c = cfg_for(dir);
    c.io = &io; c.max_write_bytes = 4096; c.max_inflight = 4;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    static uint8_t buf[4072];
    memset(buf, 1, sizeof buf);
    for (int i = 0; i < 6; i++) CHECK_EQ(plg_append(L, buf, sizeof buf), i + 1);
    wait_until(four_pending, &t);
    int pending = tio_pending(&t);
    CHECK_EQ(pending, 4);                              /* max_inflight writes, one record each */
    CHECK_EQ(plg_durable(L), 0);
    if (pending >= 3) {
        tio_release(&t, 2);                            /* the third write completes first */
        usleep(20000);
        CHECK_EQ(plg_durable(L), 0);
        CHECK_EQ(plg_written(L), 0);
        tio_release(&t, 0);                            /* then the first: durable covers only it */
        wait_until(dur_at_least_1, L);
        usleep(20000);
        CHECK_EQ(plg_durable(L), 1);
    }
    tio_release_all(&t);
    CHECK_EQ(plg_wait(L, 6, 10000000000ll), 0);
    CHECK_EQ(plg_durable(L), 6);
    CHECK_EQ(plg_close(L), 0);
    int rc;
    CHECK_EQ(read_all(dir, 0, 0, &rc), 6);
}

/* While the staging pages are full and records wait in the ring, only a
 * completion can let the writer go on: it waits for one, rather than
 * waking at the poll interval (10 us), or at once when the flush deadline
 * has passed, which burnt most of a core in a burst. */
static int tio_waits(tio *t) { pthread_mutex_lock(&t->mu); int n = t->nwait; pthread_mutex_unlock(&t->mu); return n; }

/* A log on the controllable engine with every write held: one page per
 * write, two writes in flight at most. */
static plg_log *open_held(const char *dir, tio *t, plg_io *io) {
    tio_init(t, io);
    t->hold = 1;
    plg_config c = cfg_for(dir);
    c.io = io; c.max_write_bytes = 4096; c.max_inflight = 2;
    plg_log *L = NULL;
    return plg_open(&L, &c) == 0 ? L : NULL;
}

/* The writer's waiting reaps over 200 ms while nothing completes: at least
 * one, and under 600 (about 200 at 1 ms each; thousands at the 10 us poll
 * interval, tens of thousands at 1 us). */
static void check_waits_for_a_completion(tio *t) {
    int w0 = tio_waits(t);
    usleep(200000);
    int waits = tio_waits(t) - w0;
    CHECK(waits >= 1);
    CHECK(waits < 600);
}

static void test_writer_blocked_on_full_staging_waits_for_a_completion(void) {
    const char *dir = t_dir("plg_blocked_wait");
    tio t; plg_io io;
    plg_log *L = open_held(dir, &t, &io);
    REQUIRE(L != NULL);
    uint8_t buf[100];
    uint64_t n = 0;
    for (; n < 4000; n++) {                          /* 500 KiB of pages: far more than the staging holds */
        fill(buf, sizeof buf, n + 1, 9);
        if (plg_append(L, buf, sizeof buf) != (int64_t)(n + 1)) break;
    }
    CHECK_EQ(n, 4000);
    usleep(50000);                                   /* the writer fills the staging and blocks */
    check_waits_for_a_completion(&t);
    CHECK(plg_durable(L) < n);                       /* nothing completed meanwhile */
    tio_release_all(&t);
    CHECK_EQ(plg_wait(L, n, 10000000000ll), 0);
    CHECK_EQ(plg_close(L), 0);
    int rc;
    CHECK_EQ(read_all(dir, 100, 9, &rc), n);
    CHECK_EQ(rc, 0);
}

static int one_pending(void *t) { return tio_pending((tio *)t) >= 1; }
static int two_pending(void *t) { return tio_pending((tio *)t) >= 2; }
static int three_pending(void *t) { return tio_pending((tio *)t) >= 3; }

/* With every slot taken, the writer's waiting reaps over 200 ms: at least
 * one, and none shorter than 100 us (the poll interval is 10 us). */
static void check_waits_in_slices(tio *t) {
    pthread_mutex_lock(&t->mu); t->min_wait = 0; int w0 = t->nwait; pthread_mutex_unlock(&t->mu);
    usleep(200000);
    pthread_mutex_lock(&t->mu); uint64_t min_wait = t->min_wait; int waits = t->nwait - w0; pthread_mutex_unlock(&t->mu);
    CHECK(waits >= 1);
    CHECK(min_wait >= 100000);
}
static int tio_submitted(tio *t) { pthread_mutex_lock(&t->mu); int n = t->nsub; pthread_mutex_unlock(&t->mu); return n; }
static int three_submitted(void *t) { return tio_submitted((tio *)t) >= 3; }

/* Every write slot is taken and the ring is empty: a record that came now
 * could not go out before a completion, so the writer waits for one (in
 * slices of 100 us) instead of polling the ring at the poll interval
 * (10 us). That polling used half a core at 10k records/s with one DSYNC
 * write in flight, beside a spinning producer on two CPUs, and slowed the
 * acknowledgements it was meant to hasten. A record that comes meanwhile
 * still goes out once a slot frees. */
static void test_writer_with_every_slot_taken_waits_for_a_completion(void) {
    const char *dir = t_dir("plg_slots_wait");
    tio t; plg_io io;
    plg_log *L = open_held(dir, &t, &io);            /* two writes in flight at most */
    REQUIRE(L != NULL);
    static uint8_t buf[4072];                        /* a page each: one write each */
    for (uint64_t i = 1; i <= 2; i++) { fill(buf, sizeof buf, i, 5); CHECK_EQ(plg_append(L, buf, sizeof buf), (int64_t)i); }
    wait_until(two_pending, &t);
    REQUIRE(tio_pending(&t) == 2);
    usleep(20000);
    check_waits_in_slices(&t);
    CHECK_EQ(tio_pending(&t), 2);                    /* no third write could start */
    fill(buf, sizeof buf, 3, 5);
    CHECK_EQ(plg_append(L, buf, sizeof buf), 3);     /* comes while both slots are taken */
    tio_release(&t, 0);                              /* one slot frees: record 3 goes out */
    wait_until(three_submitted, &t);
    CHECK_EQ(tio_submitted(&t), 3);
    CHECK_EQ(plg_durable(L), 1);
    tio_release_all(&t);
    CHECK_EQ(plg_wait(L, 3, 10000000000ll), 0);
    CHECK_EQ(plg_close(L), 0);
    int rc;
    CHECK_EQ(read_all(dir, sizeof buf, 5, &rc), 3);
    CHECK_EQ(rc, 0);
}

/* A record that arrives while the partly filled page is in flight starts the
 * next page and its own write at once (format version 2): it never waits for
 * the write in flight. Each page is in one write only, durable still moves
 * over completed writes in order, and the log reads back, reopens and
 * continues densely. */
static void test_record_while_page_in_flight_starts_next_page(void) {
    const char *dir = t_dir("plg_leave");
    tio t; plg_io io; tio_init(&t, &io);
    t.hold = 1;
    plg_config c = cfg_for(dir);
    c.io = &io; c.max_inflight = 4;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    uint8_t buf[100];
    int (*pending_at_least[3])(void *) = {one_pending, two_pending, three_pending};
    for (int i = 0; i < 3; i++) {
        fill(buf, sizeof buf, (uint64_t)i + 1, 21);
        CHECK_EQ(plg_append(L, buf, sizeof buf), i + 1);
        wait_until(pending_at_least[i], &t);          /* its write starts while the others are held */
    }
    REQUIRE(tio_pending(&t) == 3);
    pthread_mutex_lock(&t.mu);
    uint64_t off0 = t.q[0].off;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(t.q[i].off, off0 + (uint64_t)i * 4096);   /* one page each, never the same page twice */
        CHECK_EQ(t.q[i].len, 4096);
    }
    pthread_mutex_unlock(&t.mu);
    tio_release(&t, 1);                               /* the second completes first: durable waits */
    usleep(20000);
    CHECK_EQ(plg_durable(L), 0);
    tio_release_all(&t);
    CHECK_EQ(plg_wait(L, 3, 10000000000ll), 0);
    plg_stats st; plg_get_stats(L, &st);
    CHECK_EQ(st.pages_left, 2);
    fill(buf, sizeof buf, 4, 21);                     /* nothing in flight: it joins record 3's page */
    CHECK_EQ(plg_append(L, buf, sizeof buf), 4);
    CHECK_EQ(plg_wait(L, 4, 10000000000ll), 0);
    plg_get_stats(L, &st);
    CHECK_EQ(st.pages_left, 2);
    CHECK_EQ(plg_close(L), 0);
    int rc;
    CHECK_EQ(read_all(dir, 100, 21, &rc), 4);
    CHECK_EQ(rc, 0);
    plg_check_result cr;
    CHECK_EQ(plg_check(dir, &cr), 0);
    CHECK_EQ(cr.records, 4);
    CHECK_EQ(cr.torn_tail, 0);
    plg_reader *r; plg_record rec;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    for (uint64_t want = 4; want >= 1; want--) {
        CHECK_EQ(plg_reader_seek(r, want), 0);
        CHECK_EQ(plg_reader_next(r, &rec), 1);
        CHECK_EQ(rec.seq, want);
        CHECK(same(&rec, 100, 21));
    }
    plg_reader_close(r);
    c.io = NULL;
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 4);
    write_records(L, 200, 100, 21);
    CHECK_EQ(plg_close(L), 0);
    CHECK_EQ(read_all(dir, 100, 21, &rc), 204);
    CHECK_EQ(rc, 0);
    /* a crash in which the first page's write was lost: the records after it,
     * on the next pages, are a torn tail (they were never durable) */
    char f[600]; seg_path(f, sizeof f, dir, 1);
    uint8_t zero[4096]; memset(zero, 0, sizeof zero);
    poke(f, off0, zero, sizeof zero);
    crash_before_mark(dir);
    CHECK_EQ(read_all(dir, 100, 21, &rc), 0);
    CHECK_EQ(rc, 0);
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 0);
    plg_get_stats(L, &st);
    CHECK(st.discarded_records >= 2);
    write_records(L, 5, 100, 21);
    CHECK_EQ(plg_close(L), 0);
    CHECK_EQ(read_all(dir, 100, 21, &rc), 5);
    CHECK_EQ(rc, 0);
}

/* The same once the oldest packed record's flush deadline has passed and
 * every write slot is taken: the writer waited 1 us at a time. Now it waits
 * in slices, as with every slot taken and nothing packed. */
static void test_writer_past_flush_deadline_waits_for_a_completion(void) {
    const char *dir = t_dir("plg_deadline_wait");
    tio t; plg_io io;
    plg_log *L = open_held(dir, &t, &io);
    REQUIRE(L != NULL);
    uint8_t buf[100];
    int (*pending_at_least[2])(void *) = {one_pending, two_pending};
    for (uint64_t i = 1; i <= 3; i++) {              /* 2 writes in flight, the third record packed */
        fill(buf, sizeof buf, i, 10);
        CHECK_EQ(plg_append(L, buf, sizeof buf), (int64_t)i);
        if (i <= 2) wait_until(pending_at_least[i - 1], &t);
    }
    usleep(20000);                                   /* past the 1 ms flush deadline */
    CHECK_EQ(tio_pending(&t), 2);
    check_waits_in_slices(&t);
    CHECK_EQ(plg_durable(L), 0);
    tio_release_all(&t);
    CHECK_EQ(plg_wait(L, 3, 10000000000ll), 0);
    CHECK_EQ(plg_close(L), 0);
    int rc;
    CHECK_EQ(read_all(dir, 100, 10, &rc), 3);
    CHECK_EQ(rc, 0);
}

/* The reader goes on at the next page's start only for exactly the next
 * record of the same writer incarnation: another seq, another epoch, an
 * EPOCH_START record or a continuation fragment there ends the log. */
static void test_reader_skips_to_next_page_only_for_the_next_record(void) {
    const char *dir = t_dir("plg_skiprule");
    plg_config c = cfg_for(dir);
    c.flags |= PLG_PACK_DENSE;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 2, 100, 22);                     /* records 1 and 2 at the start of data page 0 */
    CHECK_EQ(plg_close(L), 0);
    char f[600]; seg_path(f, sizeof f, dir, 1);
    uint8_t hdr[4096], rec1[32];
    int fd = open(f, O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK_EQ(pread(fd, hdr, sizeof hdr, 0), 4096);
    CHECK_EQ(pread(fd, rec1, sizeof rec1, 4096), 32);   /* record 2 is SHORT: the epoch is record 1's */
    close(fd);
    uint64_t log_id = plg__get64(hdr + 16);
    uint32_t epoch = plg__get32(rec1 + 8);
    CHECK_EQ(plg__get64(rec1 + 16), 1);
    struct { uint64_t seq; uint32_t epoch; unsigned flags; int type; uint64_t want; } v[] = {
        {3, epoch, 0, PLG__FULL, 3},                  /* the next record: the log goes on there */
        {3, epoch ^ 1, 0, PLG__FULL, 2},              /* another incarnation's */
        {3, epoch ^ 1, PLG__F_EPOCH_START, PLG__FULL, 2},
        {3, epoch, PLG__F_EPOCH_START, PLG__FULL, 2},
        {4, epoch, 0, PLG__FULL, 2},                  /* not the next seq */
        {2, epoch, 0, PLG__FULL, 2},
        {3, epoch, 0, PLG__LAST, 2},                  /* the rest of a record */
        {3, epoch, 0, PLG__SHORT, 2},                 /* SHORT: never a page's first fragment */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t page[4096], payload[100];
        memset(page, 0, sizeof page);
        fill(payload, sizeof payload, v[i].seq, 22);
        if (v[i].type == PLG__SHORT) plg__frag_put_short(page, log_id, v[i].epoch, v[i].seq, payload, sizeof payload);
        else plg__frag_put(page, log_id, v[i].type, v[i].flags, v[i].epoch, v[i].type == PLG__FULL ? 100 : 0,
                           v[i].seq, payload, sizeof payload);
        poke(f, 2 * 4096, page, sizeof page);         /* data page 1 */
        int rc;
        uint64_t n = read_all(dir, 100, 22, &rc);
        if (n != v[i].want) fprintf(stderr, "  case %zu: read %llu records\n", i, (unsigned long long)n);
        CHECK_EQ(n, v[i].want);
        CHECK_EQ(rc, 0);
        plg_check_result cr;
        CHECK_EQ(plg_check(dir, &cr), 0);
        CHECK_EQ(cr.records, v[i].want);
    }
}

/* Format version 5: a record right after its writer's previous record in
 * the same page takes an 8-byte SHORT header; the log's first record, an
 * incarnation's first and a page's first fragment keep the 24-byte one. A
 * SHORT header implies its seq and epoch from the fragment before it, so
 * one moved anywhere else (here: record 3 put where record 2 was) does not
 * verify. */
static void test_short_headers_follow_the_record_before(void) {
    const char *dir = t_dir("plg_short");
    plg_config c = cfg_for(dir);
    c.flags |= PLG_PACK_DENSE;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 3, 100, 25);
    CHECK_EQ(plg_close(L), 0);
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 2, 100, 25);                     /* 4: the new incarnation's first, 5: SHORT */
    CHECK_EQ(plg_close(L), 0);
    char f[600]; seg_path(f, sizeof f, dir, 1);
    uint8_t hdr[4096], page[4096];
    int fd = open(f, O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK_EQ(pread(fd, hdr, sizeof hdr, 0), 4096);
    CHECK_EQ(pread(fd, page, sizeof page, 4096), 4096);
    close(fd);
    CHECK_EQ(plg__get32(hdr + 8), 5);                 /* segment format version */
    uint32_t at[5] = {0, 128, 236, 344, 472}, type[5] = {PLG__FULL, PLG__SHORT, PLG__SHORT, PLG__FULL, PLG__SHORT};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(page[at[i] + 6], type[i]);
        CHECK_EQ(plg__get16(page + at[i] + 4), 100);
    }
    CHECK_EQ(plg__get64(page + 344 + 16), 4);
    CHECK(plg__get32(page + 344 + 8) != plg__get32(page + 8));   /* another epoch */
    CHECK(page[344 + 7] & PLG__F_EPOCH_START);
    int rc;
    CHECK_EQ(read_all(dir, 100, 25, &rc), 5);
    CHECK_EQ(rc, 0);
    crash_before_mark(dir);
    poke(f, 4096 + 128, page + 236, 108);             /* record 3's bytes where record 2 goes */
    CHECK_EQ(read_all(dir, 100, 25, &rc), 1);
    plg_check_result cr;
    CHECK_EQ(plg_check(dir, &cr), 0);                 /* no mark: a torn tail after record 1 */
    CHECK_EQ(cr.last_seq, 1);
    CHECK_EQ(cr.offset, 4096 + 128);
}

/* Wait (at most 20 s) until n segments are made ahead of the writer's. */
static int wait_ahead(plg_log *L, uint64_t n) {
    plg_stats st;
    for (int i = 0; i < 20000; i++) {
        plg_get_stats(L, &st);
        if (st.segments_ahead >= n) return 1;
        usleep(1000);
    }
    return 0;
}

/* Segments of a version before 5 (an older picolog's, or made ahead by one)
 * get no SHORT header when a newer writer continues in them, since an older
 * reader would stop at it; the segments this writer makes are version 5. */
static int has_short(const uint8_t *pg) {          /* a page of long fragments only? walk it */
    for (uint32_t o = 0; o + 32 <= 4096 && plg__get16(pg + o + 4); ) {
        if (pg[o + 6] == PLG__SHORT) return 1;
        o += (uint32_t)PLG__ALIGN8(24 + plg__get16(pg + o + 4));
    }
    return 0;
}
static void test_older_segments_get_no_short_headers(void) {
    const char *dir = t_dir("plg_short_v2");
    plg_config c = cfg_for(dir);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 1, 100, 26);
    /* the segment made ahead: a close before the preallocation thread ran
     * (valgrind, beside another test) left only the first */
    REQUIRE(wait_ahead(L, 1));
    CHECK_EQ(plg_close(L), 0);
    int old = 0;
    for (int idx = 1; idx <= 8; idx++) {              /* as a version 2 picolog left them */
        char f[600]; seg_path(f, sizeof f, dir, idx);
        uint8_t h[4096];
        int fd = open(f, O_RDONLY);
        if (fd < 0) continue;
        CHECK_EQ(pread(fd, h, sizeof h, 0), 4096);
        close(fd);
        plg__put32(h + 8, 2);
        plg__put32(h + 60, plg_crc32c(0, h, 60));
        poke(f, 0, h, sizeof h);
        old = idx;
    }
    REQUIRE(old >= 2);                                /* the first one and one made ahead */
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 4000, 100, 26);                  /* through the old segments into new ones */
    CHECK_EQ(plg_close(L), 0);
    int rc;
    CHECK_EQ(read_all(dir, 100, 26, &rc), 4001);
    CHECK_EQ(rc, 0);
    int newer = 0, shorts = 0;
    for (int idx = 1; idx <= 64; idx++) {
        char f[600]; seg_path(f, sizeof f, dir, idx);
        static uint8_t seg[64 * 1024];
        int fd = open(f, O_RDONLY);
        if (fd < 0) continue;
        ssize_t got = pread(fd, seg, sizeof seg, 0);
        close(fd);
        REQUIRE(got == (ssize_t)sizeof seg);
        uint32_t v = plg__get32(seg + 8);
        int any = 0;
        for (int pg = 1; pg < 16; pg++) any |= has_short(seg + pg * 4096);
        if (idx <= old) {
            CHECK_EQ(v, 2);
            CHECK_EQ(any, 0);
        } else {
            CHECK_EQ(v, 5);
            newer++; shorts += any;
        }
    }
    CHECK(newer >= 2);
    CHECK(shorts >= 1);                               /* the new ones do get them */
}

/* A crash tore a record that had started the page after a left page: the
 * log ends right after the last whole record, on the left page, and the next
 * writer goes on there. (Going on at the torn record's page start, behind
 * the gap, put the new incarnation's first record, flagged EPOCH_START,
 * where the reader's skip rule does not follow: every record written after
 * the crash was lost to readers.) */
static void test_torn_record_after_a_left_page_ends_the_log_on_that_page(void) {
    const char *dir = t_dir("plg_lefttorn");
    plg_config c = cfg_for(dir);
    c.flags |= PLG_PACK_DENSE;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 2, 100, 24);                     /* records 1 and 2 on data page 0 */
    CHECK_EQ(plg_close(L), 0);
    char f[600]; seg_path(f, sizeof f, dir, 1);
    uint8_t hdr[4096], rec1[32];
    int fd = open(f, O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK_EQ(pread(fd, hdr, sizeof hdr, 0), 4096);
    CHECK_EQ(pread(fd, rec1, sizeof rec1, 4096), 32);   /* record 2 is SHORT: the epoch is record 1's */
    CHECK_EQ(plg__get64(rec1 + 16), 1);
    close(fd);
    static uint8_t page[4096], payload[4072];
    memset(page, 0, sizeof page);
    memset(payload, 7, sizeof payload);
    /* record 3 (9000 bytes) began on data page 1; its later fragments never landed */
    plg__frag_put(page, plg__get64(hdr + 16), PLG__FIRST, 0, plg__get32(rec1 + 8), 9000, 3, payload, sizeof payload);
    poke(f, 2 * 4096, page, sizeof page);
    crash_before_mark(dir);
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 2);
    write_records(L, 3, 100, 24);
    CHECK_EQ(plg_close(L), 0);
    int rc;
    CHECK_EQ(read_all(dir, 100, 24, &rc), 5);
    CHECK_EQ(rc, 0);
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 5);
    CHECK_EQ(plg_close(L), 0);
}

/* plg_truncate to a record whose successor had started the next page (it
 * came while the record's page was in flight): the log goes on right after
 * the record kept, on its page. (Going on where the successor had been,
 * behind the gap, put the new incarnation's first record, flagged
 * EPOCH_START, where the reader's skip rule does not follow: every record
 * appended after the truncation was lost to readers, and plg_open called the
 * log corrupt once the durable mark passed them. Found by
 * test_raft_storage's power-cut seeds under load.) */
static void test_truncate_after_a_left_page_goes_on_on_that_page(void) {
    const char *dir = t_dir("plg_truncleft");
    tio t; plg_io io; tio_init(&t, &io);
    t.hold = 1;
    plg_config c = cfg_for(dir);
    c.io = &io; c.max_inflight = 4;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    uint8_t buf[100];
    int (*pending_at_least[3])(void *) = {one_pending, two_pending, three_pending};
    for (int i = 0; i < 3; i++) {
        fill(buf, sizeof buf, (uint64_t)i + 1, 25);
        CHECK_EQ(plg_append(L, buf, sizeof buf), i + 1);
        wait_until(pending_at_least[i], &t);          /* records 2 and 3 each start a page */
    }
    REQUIRE(tio_pending(&t) == 3);
    tio_release_all(&t);
    CHECK_EQ(plg_wait(L, 3, 10000000000ll), 0);
    CHECK_EQ(plg_truncate(L, 1), 0);
    write_records(L, 2, 100, 25);                     /* seqs 2 and 3 again, a new incarnation */
    CHECK_EQ(plg_wait(L, 3, 10000000000ll), 0);
    CHECK_EQ(plg_close(L), 0);
    int rc;
    CHECK_EQ(read_all(dir, 100, 25, &rc), 3);
    CHECK_EQ(rc, 0);
    plg_check_result cr;
    CHECK_EQ(plg_check(dir, &cr), 0);
    CHECK_EQ(cr.records, 3);
    c.io = NULL;
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 3);
    CHECK_EQ(plg_close(L), 0);
}

/* A log written before format version 2 (version 1 segment headers) is read
 * as it is, and a writer continuing it packs those segments densely: the
 * second record waits for the write of the page in flight, then rewrites it. */
static void test_version_1_log_is_read_and_continued_densely(void) {
    const char *dir = t_dir("plg_v1");
    plg_config c = cfg_for(dir);
    plg_log *L;
    for (int i = 0; i < 2; i++) {                     /* each record its writer's first: no SHORT header */
        REQUIRE(plg_open(&L, &c) == 0);
        write_records(L, 1, 100, 23);
        CHECK_EQ(plg_close(L), 0);
    }
    int v1 = 0;
    for (int idx = 1; idx <= 8; idx++) {              /* every segment there: version 1, as 0.1.0 wrote */
        char f[600]; seg_path(f, sizeof f, dir, idx);
        uint8_t h[4096];
        int fd = open(f, O_RDONLY);
        if (fd < 0) continue;
        CHECK_EQ(pread(fd, h, sizeof h, 0), 4096);
        close(fd);
        CHECK_EQ(plg__get32(h + 8), 5);
        plg__put32(h + 8, 1);
        plg__put32(h + 60, plg_crc32c(0, h, 60));
        poke(f, 0, h, sizeof h);
        v1++;
    }
    CHECK(v1 >= 1);
    int rc;
    CHECK_EQ(read_all(dir, 100, 23, &rc), 2);
    CHECK_EQ(rc, 0);
    tio t; plg_io io; tio_init(&t, &io);
    t.hold = 1;
    c.io = &io;
    REQUIRE(plg_open(&L, &c) == 0);
    uint8_t buf[100];
    fill(buf, sizeof buf, 3, 23);
    CHECK_EQ(plg_append(L, buf, sizeof buf), 3);
    wait_until(one_pending, &t);
    fill(buf, sizeof buf, 4, 23);
    CHECK_EQ(plg_append(L, buf, sizeof buf), 4);
    usleep(20000);
    CHECK_EQ(tio_pending(&t), 1);                     /* record 4 waits: page 0 is in flight */
    tio_release_all(&t);
    CHECK_EQ(plg_wait(L, 4, 10000000000ll), 0);
    plg_stats st; plg_get_stats(L, &st);
    CHECK_EQ(st.pages_left, 0);
    CHECK_EQ(plg_close(L), 0);
    CHECK_EQ(read_all(dir, 100, 23, &rc), 4);
    CHECK_EQ(rc, 0);
    char f[600]; seg_path(f, sizeof f, dir, 1);
    uint8_t h[64]; int fd = open(f, O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK_EQ(pread(fd, h, sizeof h, 0), 64);
    close(fd);
    CHECK_EQ(plg__get32(h + 8), 1);                   /* nothing converted */
}

/* plg_release retired the segment that held the head of a record whose LAST
 * fragment opens the next segment, and the writer had left the rest of that
 * page (the next record came while it was in flight). A walk from the start
 * skips the continuation without knowing the seq before it: the LAST
 * fragment gives the seq and the writer incarnation, so the next page's
 * record is the log going on, not corruption. (Seen in a SIGKILL round with
 * plg_release: "invalid record where seq 119 was expected, but valid records
 * follow", plg_open refused the log.) */
static int seg2_partial_pending(void *arg) {
    tio *t = (tio *)arg;
    pthread_mutex_lock(&t->mu);
    int ok = t->qn == 1 && t->q[0].len == 4096 && !t->q[0].ready;
    pthread_mutex_unlock(&t->mu);
    return ok;
}
static void test_left_page_after_a_released_records_head(void) {
    const char *dir = t_dir("plg_leftrel");
    tio t; plg_io io; tio_init(&t, &io);
    t.hold = 1;
    plg_config c = cfg_for(dir);                      /* 64 KiB segments: 15 data pages */
    c.io = &io; c.max_inflight = 4;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    static uint8_t big[15 * 4072 + 100];              /* fills segment 1, its LAST fragment opens segment 2 */
    uint8_t small[100];
    fill(big, sizeof big, 1, 25);
    CHECK_EQ(append_retry(L, big, sizeof big), 1);
    wait_until(one_pending, &t);                      /* segment 1's pages, held */
    tio_release(&t, 0);
    wait_until(seg2_partial_pending, &t);             /* then segment 2's first page, held */
    REQUIRE(seg2_partial_pending(&t));
    fill(small, sizeof small, 2, 25);
    CHECK_EQ(plg_append(L, small, sizeof small), 2);  /* leaves that page, starts the next one */
    wait_until(two_pending, &t);
    tio_release_all(&t);
    CHECK_EQ(plg_wait(L, 2, 10000000000ll), 0);
    plg_stats st; plg_get_stats(L, &st);
    CHECK_EQ(st.pages_left, 1);
    CHECK_EQ(plg_release(L, 2), 0);                   /* segment 1 holds only record 1's head */
    for (int i = 0; i < 10000; i++) { plg_get_stats(L, &st); if (st.segments_released >= 1) break; usleep(1000); }
    REQUIRE(st.segments_released >= 1);
    CHECK_EQ(plg_close(L), 0);
    plg_reader *r; plg_record rec;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    CHECK_EQ(plg_reader_next(r, &rec), 1);
    CHECK_EQ(rec.seq, 2);
    CHECK(same(&rec, 100, 25));
    CHECK_EQ(plg_reader_next(r, &rec), 0);
    CHECK_EQ(plg_reader_seek(r, 2), 0);
    CHECK_EQ(plg_reader_next(r, &rec), 1);
    CHECK_EQ(rec.seq, 2);
    plg_reader_close(r);
    plg_check_result cr;
    CHECK_EQ(plg_check(dir, &cr), 0);
    CHECK_EQ(cr.last_seq, 2);
    CHECK_EQ(cr.records, 1);
    c.io = NULL;
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 2);
    write_records(L, 3, 100, 25);
    CHECK_EQ(plg_close(L), 0);
    REQUIRE(plg_reader_open(&r, dir) == 0);
    uint64_t n = 0; int rc;
    while ((rc = plg_reader_next(r, &rec)) == 1) { CHECK_EQ(rec.seq, n + 2); CHECK(same(&rec, 100, 25)); n++; }
    CHECK_EQ(rc, 0);
    CHECK_EQ(n, 4);
    plg_reader_close(r);
}

static void test_write_error_poisons(void) {
    for (int m = 0; m < 3; m++) {   /* EIO, ENOSPC, short write */
        const char *dir = t_dir("plg_poison");
        tio t; plg_io io; tio_init(&t, &io);
        if (m == 0) { t.fail_at = 3; t.fail_errno = EIO; }
        if (m == 1) { t.fail_at = 3; t.fail_errno = ENOSPC; }
        if (m == 2) t.short_at = 3;
        plg_config c = cfg_for(dir);
        c.io = &io;
        plg_log *L;
        REQUIRE(plg_open(&L, &c) == 0);
        uint8_t buf[100]; memset(buf, 2, sizeof buf);
        int64_t s = 0;
        for (int i = 0; i < 3; i++) {                 /* three separate writes */
            s = plg_append(L, buf, 100);
            CHECK(s > 0);
            if (i < 2) CHECK_EQ(plg_wait(L, (uint64_t)s, 5000000000ll), 0);
        }
        int want = m == 0 ? PLG_EIO : m == 1 ? PLG_ENOSPC : PLG_ESHORT;
        CHECK_EQ(plg_wait(L, (uint64_t)s, 5000000000ll), want);
        CHECK_EQ(plg_durable(L), 2);                 /* the failed write is never acknowledged */
        CHECK_EQ(plg_error(L), want);
        CHECK_EQ(plg_append(L, buf, 100), want);       /* appends refused from now on */
        plg_stats st; plg_get_stats(L, &st);
        CHECK_EQ(st.error, want);
        CHECK_EQ(st.errors, 1);
        CHECK_EQ(st.durable, 2);
        CHECK_EQ(plg_close(L), want);
        /* what was acknowledged is there; nothing was retried as if it worked:
         * the failed write (EIO, ENOSPC) reached nothing, so exactly records
         * 1 and 2 are on disk (a retry would have put the third there too);
         * the short write did put its first 3584 bytes there, the third
         * record with them, and nothing after it */
        plg_config c2 = cfg_for(dir);
        REQUIRE(plg_open(&L, &c2) == 0);
        CHECK_EQ(plg_appended(L), m == 2 ? 3 : 2);
        CHECK_EQ(plg_close(L), 0);
    }
}

/* fdatasync mode: a sync covers the writes that completed before it was
 * submitted, never one still in flight, and the writer goes on writing while
 * a sync is in flight. Each record (4072 bytes) is one page, one write. */
static void tio_release_kind(tio *t, int is_sync) {   /* the oldest held sync, or write */
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->qn; i++) if (t->q[i].is_sync == is_sync && !t->q[i].ready) { t->q[i].ready = 1; break; }
    pthread_mutex_unlock(&t->mu);
}
static int tio_count(tio *t, int is_sync) {
    pthread_mutex_lock(&t->mu);
    int n = 0;
    for (int i = 0; i < t->qn; i++) n += t->q[i].is_sync == is_sync;
    pthread_mutex_unlock(&t->mu);
    return n;
}
typedef struct { tio *t; int syncs, writes; plg_log *L; uint64_t durable; } tio_want;
static int tio_has(void *arg) {
    tio_want *w = (tio_want *)arg;
    return tio_count(w->t, 1) == w->syncs && tio_count(w->t, 0) == w->writes;
}
static int durable_is(void *arg) { tio_want *w = (tio_want *)arg; return plg_durable(w->L) == w->durable; }
static void test_sync_covers_only_writes_completed_before_it(void) {
    const char *dir = t_dir("plg_sync_order");
    tio t; plg_io io; tio_init(&t, &io);
    t.hold = 1;
    plg_config c = cfg_for(dir);
    c.io = &io; c.sync_mode = PLG_SYNC_FDATASYNC; c.max_inflight = 4;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    static uint8_t rec[4072];
    tio_want w; memset(&w, 0, sizeof w); w.t = &t; w.L = L;
#define EXPECT_HELD(s_, w_) do { w.syncs = (s_); w.writes = (w_); wait_until(tio_has, &w); \
        CHECK_EQ(tio_count(&t, 1), (s_)); CHECK_EQ(tio_count(&t, 0), (w_)); } while (0)
#define EXPECT_DURABLE(d_) do { w.durable = (d_); wait_until(durable_is, &w); usleep(20000); \
        CHECK_EQ(plg_durable(L), (d_)); } while (0)
    fill(rec, sizeof rec, 1, 26);
    CHECK_EQ(plg_append(L, rec, sizeof rec), 1);
    EXPECT_HELD(0, 1);
    tio_release_kind(&t, 0);                          /* write 1 completes: its sync goes out */
    EXPECT_HELD(1, 0);
    EXPECT_DURABLE(0);
    fill(rec, sizeof rec, 2, 26);
    CHECK_EQ(plg_append(L, rec, sizeof rec), 2);
    EXPECT_HELD(1, 1);                                /* written while the sync is in flight */
    tio_release_kind(&t, 1);                          /* the sync completes before the later write */
    EXPECT_DURABLE(1);
    EXPECT_HELD(0, 1);
    tio_release_kind(&t, 0);                          /* write 2 completes: its own sync */
    EXPECT_HELD(1, 0);
    EXPECT_DURABLE(1);
    tio_release_kind(&t, 1);
    EXPECT_DURABLE(2);
    /* a sync submitted while a later write is in flight, completing first */
    fill(rec, sizeof rec, 3, 26);
    CHECK_EQ(plg_append(L, rec, sizeof rec), 3);
    EXPECT_HELD(0, 1);
    fill(rec, sizeof rec, 4, 26);
    CHECK_EQ(plg_append(L, rec, sizeof rec), 4);
    EXPECT_HELD(0, 2);
    tio_release_kind(&t, 0);                          /* write 3 completes, write 4 is in flight */
    EXPECT_HELD(1, 1);
    tio_release_kind(&t, 1);                          /* its sync completes before write 4 */
    EXPECT_DURABLE(2);                                /* but counts after it: submission order */
    tio_release_kind(&t, 0);
    EXPECT_HELD(1, 0);
    EXPECT_DURABLE(3);                                /* write 4 is not covered by that sync */
    tio_release_kind(&t, 1);
    EXPECT_DURABLE(4);
    /* write 6 completes before write 5: nothing is synced past the gap */
    fill(rec, sizeof rec, 5, 26);
    CHECK_EQ(plg_append(L, rec, sizeof rec), 5);
    EXPECT_HELD(0, 1);
    fill(rec, sizeof rec, 6, 26);
    CHECK_EQ(plg_append(L, rec, sizeof rec), 6);
    EXPECT_HELD(0, 2);
    tio_release(&t, 1);                               /* write 6 */
    EXPECT_HELD(0, 1);
    EXPECT_DURABLE(4);
    tio_release_all(&t);
    CHECK_EQ(plg_wait(L, 6, 10000000000ll), 0);
#undef EXPECT_HELD
#undef EXPECT_DURABLE
    CHECK_EQ(plg_close(L), 0);
    int rc;
    CHECK_EQ(read_all(dir, 4072, 26, &rc), 6);
    CHECK_EQ(rc, 0);
}

static void test_fsync_error_poisons(void) {
    const char *dir = t_dir("plg_fsync_poison");
    tio t; plg_io io; tio_init(&t, &io);
    t.fsync_fail = 1;
    plg_config c = cfg_for(dir);
    c.io = &io; c.sync_mode = PLG_SYNC_FDATASYNC;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_append(L, "abc", 3), 1);
    CHECK_EQ(plg_wait(L, 1, 5000000000ll), PLG_EIO);
    CHECK_EQ(plg_durable(L), 0);
    CHECK_EQ(plg_close(L), PLG_EIO);
}

/* A write failing with EAGAIN poisons the log as a system error with that
 * errno, not as "another writer holds the log" (PLG_ELOCKED). */
static void test_write_eagain_is_not_locked(void) {
    const char *dir = t_dir("plg_eagain");
    tio t; plg_io io; tio_init(&t, &io);
    t.fail_at = 1; t.fail_errno = EAGAIN;
    plg_config c = cfg_for(dir);
    c.io = &io;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_append(L, "abc", 3), 1);
    int rc = plg_wait(L, 1, 5000000000ll);
    CHECK(rc != PLG_ELOCKED);
    CHECK_EQ(rc, PLG_ESYS);
    plg_stats st; plg_get_stats(L, &st);
    CHECK_EQ(st.last_errno, EAGAIN);
    CHECK_EQ(plg_close(L), PLG_ESYS);
}

static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0; struct dirent *e;
    while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* PLG_TEST_NO_THREADS (the fuzzers' mode): no thread is started, plg_close
 * writes what was appended (making the segments it switches to) and the log
 * reopens as any other; calls that need the writer thread are refused. */
static void test_no_threads_mode_writes_at_close(void) {
    const char *dir = t_dir("plg_no_threads");
    tio t; plg_io io; tio_init(&t, &io);
    plg_config c = cfg_for(dir);
    c.flags = PLG_TEST_NO_THREADS;
    c.io = &io; c.max_write_bytes = 4096; c.max_inflight = 1;
    char name0[32] = {0}, name1[32] = {0};
    prctl(PR_GET_NAME, name0, 0, 0, 0);
    int threads = thread_count();
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(thread_count(), threads);
    static uint8_t buf[1000];
    for (uint64_t seq = 1; seq <= 150; seq++) {       /* 150 KB: three 64 KiB segments */
        fill(buf, sizeof buf, seq, 7);
        CHECK_EQ(plg_append(L, buf, sizeof buf), (int64_t)seq);
    }
    CHECK_EQ(plg_appended(L), 150);
    CHECK_EQ(plg_durable(L), 0);                     /* nothing runs before plg_close */
    CHECK_EQ(plg_truncate(L, 10), PLG_EINVAL);
    CHECK_EQ(plg_reset(L, 10), PLG_EINVAL);
    CHECK_EQ(thread_count(), threads);
    CHECK_EQ(plg_close(L), 0);
    prctl(PR_GET_NAME, name1, 0, 0, 0);
    CHECK(strcmp(name0, name1) == 0);               /* the caller's thread keeps its name */
    int rc;
    CHECK_EQ(read_all(dir, 1000, 7, &rc), 150);
    CHECK_EQ(rc, 0);
    char seg3[600]; seg_path(seg3, sizeof seg3, dir, 3);
    CHECK_EQ(access(seg3, F_OK), 0);
    REQUIRE(plg_open(&L, &c) == 0);                  /* again, and with threads */
    CHECK_EQ(plg_appended(L), 150);
    CHECK_EQ(plg_close(L), 0);
    plg_config c2 = cfg_for(dir);
    REQUIRE(plg_open(&L, &c2) == 0);
    CHECK_EQ(plg_appended(L), 150);
    CHECK_EQ(plg_close(L), 0);
}

static void test_ring_full(void) {
    const char *dir = t_dir("plg_full");
    tio t; plg_io io; tio_init(&t, &io);
    t.hold = 1;                                       /* the disk never answers */
    plg_config c = cfg_for(dir);
    c.io = &io; c.ring_capacity = 4096;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    uint8_t buf[100]; memset(buf, 3, sizeof buf);
    int64_t s; uint64_t ok = 0, full = 0;
    for (int i = 0; i < 200000 && full < 1000; i++) {
        s = plg_append(L, buf, sizeof buf);
        if (s == PLG_EFULL) full++;
        else if (s == (int64_t)ok + 1) ok++;
        else { CHECK(0); break; }
    }
    CHECK(full >= 1000);                               /* full, and said so at once */
    plg_stats st; plg_get_stats(L, &st);
    CHECK_EQ(st.ring_full, full);
    CHECK_EQ(st.appended, ok);                         /* EFULL consumed no number */
    static uint8_t big[5000];
    CHECK_EQ(plg_append(L, big, sizeof big), PLG_ETOOBIG);   /* can never fit: not EFULL */
    void *p = plg_reserve(L, 5000);
    CHECK(p == NULL);
    CHECK_EQ(plg_reserve_error(L), PLG_ETOOBIG);
    tio_release_all(&t);
    CHECK_EQ(plg_wait(L, ok, 10000000000ll), 0);
    CHECK_EQ(plg_append(L, buf, sizeof buf), (int64_t)ok + 1);
    CHECK_EQ(plg_close(L), 0);
    int rc;
    CHECK_EQ(read_all(dir, 0, 0, &rc), ok + 1);
}

typedef struct trade { uint64_t price, qty; uint32_t symbol_id; uint8_t side; uint32_t strategy_id; } trade;
PLG_TYPED(trade, trade)

static void test_reserve_commit_and_typed(void) {
    const char *dir = t_dir("plg_reserve");
    plg_config c = cfg_for(dir);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    trade *tp = (trade *)plg_reserve(L, sizeof(trade));
    REQUIRE(tp != NULL);
    CHECK_EQ(((uintptr_t)tp) % 8, 0);
    memset(tp, 0, sizeof *tp);
    tp->price = 10050; tp->qty = 100; tp->symbol_id = 1; tp->side = 1; tp->strategy_id = 8;
    CHECK_EQ(plg_commit(L), 1);
    CHECK_EQ(plg_commit(L), PLG_EINVAL);             /* nothing reserved */
    trade t2; memset(&t2, 0, sizeof t2);
    t2.price = 10051; t2.qty = 7;
    CHECK_EQ(trade_append(L, &t2), 2);
    CHECK_EQ(plg_append(L, "x", 0), PLG_EINVAL);
    CHECK_EQ(plg_close(L), 0);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec; trade out;
    REQUIRE(plg_reader_next(r, &rec) == 1);
    CHECK_EQ(trade_get(&rec, &out), 0);
    CHECK_EQ(out.price, 10050); CHECK_EQ(out.strategy_id, 8);
    REQUIRE(plg_reader_next(r, &rec) == 1);
    CHECK_EQ(trade_get(&rec, &out), 0);
    CHECK_EQ(out.price, 10051); CHECK_EQ(out.qty, 7);
    CHECK_EQ(plg_reader_next(r, &rec), 0);
    rec.len = 3;
    CHECK_EQ(trade_get(&rec, &out), PLG_ETYPE);
    plg_reader_close(r);
}

/* A second plg_reserve before plg_commit, or a plg_append while a
 * reservation is open, is refused with PLG_EBUSY and leaves the open
 * reservation (and what was written into it) as it was. */
static void test_reserve_misuse_is_refused(void) {
    const char *dir = t_dir("plg_reserve_busy");
    plg_config c = cfg_for(dir);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    char *p = (char *)plg_reserve(L, 5);
    REQUIRE(p != NULL);
    memcpy(p, "first", 5);
    CHECK(plg_reserve(L, 5) == NULL);
    CHECK_EQ(plg_reserve_error(L), PLG_EBUSY);
    CHECK_EQ(plg_append(L, "other", 5), PLG_EBUSY);
    CHECK_EQ(plg_appended(L), 0);                     /* no number consumed */
    CHECK_EQ(plg_commit(L), 1);
    CHECK_EQ(plg_append(L, "again", 5), 2);
    CHECK_EQ(plg_close(L), 0);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    REQUIRE(plg_reader_next(r, &rec) == 1);
    CHECK_EQ(rec.len, 5);
    CHECK(memcmp(rec.data, "first", 5) == 0);
    REQUIRE(plg_reader_next(r, &rec) == 1);
    CHECK(memcmp(rec.data, "again", 5) == 0);
    CHECK_EQ(plg_reader_next(r, &rec), 0);
    plg_reader_close(r);
}

/* A record the reader would refuse (over PLG_MAX_RECORD_BYTES) is refused at
 * append, even when the ring could hold it (a 2 GiB ring: skipped in quick
 * mode, i.e. under valgrind and TSan, and in the pwritev2 variant). */
static void test_record_over_max_refused(void) {
#ifdef PICOLOG_NO_URING
    SKIP("covered by the io_uring variant");
#else
    if (quick()) SKIP("quick mode: no 2 GiB ring");
    const char *dir = t_dir("plg_toobig");
    plg_config c = cfg_for(dir);
    c.ring_capacity = (size_t)1 << 31;
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENOMEM) SKIP("no memory for a 2 GiB ring");
    REQUIRE(rc == 0);
    CHECK(plg_reserve(L, PLG_MAX_RECORD_BYTES + 1u) == NULL);
    CHECK_EQ(plg_reserve_error(L), PLG_ETOOBIG);
    CHECK_EQ(plg_appended(L), 0);
    CHECK_EQ(plg_append(L, "x", 1), 1);
    CHECK_EQ(plg_close(L), 0);
    int n = 0;
    CHECK_EQ(read_all(dir, 0, 0, &n), 1);
    CHECK_EQ(n, 0);
#endif
}

static void test_second_writer_refused(void) {
    const char *dir = t_dir("plg_lock");
    plg_config c = cfg_for(dir);
    plg_log *L, *L2 = NULL;
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_open(&L2, &c), PLG_ELOCKED);
    CHECK(L2 == NULL);
    CHECK_EQ(plg_close(L), 0);
    CHECK_EQ(plg_open(&L2, &c), 0);
    CHECK_EQ(plg_close(L2), 0);
}

/* A reader never deletes a segment being preallocated; the writer cleans
 * leftovers of a crashed preallocation at open. */
static void test_reader_leaves_tmp_files(void) {
    const char *dir = t_dir("plg_tmpfiles");
    plg_config c = cfg_for(dir);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 10, 100, 1);
    char tmp[600]; snprintf(tmp, sizeof tmp, "%s/00000000000000000099.plg.tmp", dir);
    FILE *f = fopen(tmp, "w"); REQUIRE(f != NULL); fputs("x", f); fclose(f);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_reader_close(r);
    CHECK_EQ(access(tmp, F_OK), 0);
    CHECK_EQ(plg_close(L), 0);
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK(access(tmp, F_OK) != 0);
    CHECK_EQ(plg_appended(L), 10);
    CHECK_EQ(plg_close(L), 0);
}

static int count_files(const char *dir, const char *prefix) {
    char cmd[700]; snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '%s'", dir, prefix);
    FILE *p = popen(cmd, "r"); int n = -1;
    if (p) { if (fscanf(p, "%d", &n) != 1) n = -1; pclose(p); }
    return n;
}

/* Zero the n bytes before the end of the valid log that plg_check found
 * (fewer when the log ends less than n bytes into its last segment's data:
 * the bytes from the data's start; how records pack, and so where the log
 * ends, depends on the writer's timing). A log that fills its last segment
 * exactly ends "at the first data page of the next segment" (where the
 * next record goes): its last bytes are then the previous segment's last
 * ones. */
static void tear_before_end(const plg_check_result *cr, uint64_t segment_size, size_t n) {
    static uint8_t zero[4096];
    REQUIRE(n <= sizeof zero);
    char f[4200]; uint64_t off = cr->offset;
    snprintf(f, sizeof f, "%s", cr->file);
    if (off == 4096) {                             /* page 0 is the segment header */
        char *base = strrchr(f, '/');
        REQUIRE(base);
        unsigned long long idx = strtoull(base + 1, NULL, 10);
        REQUIRE(idx > 1);
        snprintf(base + 1, sizeof f - (size_t)(base + 1 - f), "%020llu.plg", idx - 1);
        off = segment_size;
    }
    REQUIRE(off > 4096);
    if (off - 4096 < n) n = (size_t)(off - 4096);
    poke(f, off - n, zero, n);
}

/* A log whose last record ends exactly at the end of a segment: a tear of
 * its last bytes loses the last records, and the log continues densely from
 * the ones before. (With one record per flush, 112-byte records pack 34 to a
 * page: the first with a 24-byte header, 136 bytes, then 33 SHORT ones of
 * 120 bytes; 15 data pages to a 64 KiB segment: 510 records fill segment 1.) */
static void test_tear_at_the_end_of_a_full_segment(void) {
    const char *dir = t_dir("plg_tear_segment_end");
    plg_config c = cfg_for(dir);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    for (int i = 0; i < 510; i++) write_records(L, 1, 112, 9);
    CHECK_EQ(plg_close(L), 0);
    plg_check_result cr;
    REQUIRE(plg_check(dir, &cr) == 0);
    CHECK_EQ(cr.last_seq, 510);
    CHECK_EQ(cr.offset, 4096);                     /* ends where segment 2's first record goes */
    CHECK(strstr(cr.file, "00000000000000000002.plg") != NULL);
    crash_before_mark(dir);
    tear_before_end(&cr, c.segment_size, 600);     /* records 506..510: 5 x 120 bytes */
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 505);
    write_records(L, 10, 112, 9);
    CHECK_EQ(plg_close(L), 0);
    int rc = 0;
    CHECK_EQ(read_all(dir, 112, 9, &rc), 515);
    CHECK_EQ(rc, 0);
}

/* plg_release: old segments go (two are kept and reused for new segments);
 * the log reads, seeks, reopens and continues; reused space never replays. */
static void test_release_and_recycle(void) {
    const char *dir = t_dir("plg_release");
    plg_config c = cfg_for(dir);                   /* 64 KiB segments: 15 data pages, up to 569 records */
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 5000, 100, 3);                /* ~11 segments */
    CHECK_EQ(plg_release(L, 3000), 0);
    plg_stats st;
    for (int i = 0; i < 2000; i++) { plg_get_stats(L, &st); if (st.segments_released >= 5) break; usleep(1000); }
    CHECK(st.segments_released >= 5);
    write_records(L, 3000, 100, 3);                /* new segments reuse released ones */
    plg_get_stats(L, &st);
    CHECK(st.segments_recycled >= 1);
    CHECK_EQ(plg_close(L), 0);
    CHECK(count_files(dir, "^free-") <= 2);
    /* everything from the first kept segment on is there, dense, intact */
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec; uint64_t first = 0, n = 0, bad = 0; int rc;
    while ((rc = plg_reader_next(r, &rec)) == 1) {
        if (!first) first = rec.seq;
        if (rec.seq != first + n || !same(&rec, 100, 3)) bad++;
        n++;
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(bad, 0);
    CHECK(first > 1 && first <= 3000);
    CHECK_EQ(first + n - 1, 8000);
    for (uint64_t want = 3000; want <= 8000; want += 250) {   /* seeks skip reused space */
        REQUIRE(plg_reader_seek(r, want) == 0);
        REQUIRE(plg_reader_next(r, &rec) == 1);
        CHECK_EQ(rec.seq, want);
    }
    CHECK_EQ(plg_reader_seek(r, 1), PLG_ENOENT);
    plg_reader_close(r);
    plg_check_result cr;
    CHECK_EQ(plg_check(dir, &cr), 0);
    CHECK_EQ(cr.last_seq, 8000);
    CHECK(cr.first_segment > 1);
    CHECK_EQ(cr.torn_tail, 0);                     /* old records after the end are not a tear */
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 8000);
    write_records(L, 100, 100, 3);
    CHECK_EQ(plg_close(L), 0);
    CHECK_EQ(plg_check(dir, &cr), 0);
    CHECK_EQ(cr.last_seq, 8100);
    /* a torn tail inside a reused segment recovers to the valid prefix,
     * with the old records behind it never taken for new ones */
    crash_before_mark(dir);
    tear_before_end(&cr, c.segment_size, 640);
    REQUIRE(plg_open(&L, &c) == 0);
    uint64_t a = plg_appended(L);
    CHECK(a >= 8090 && a < 8100);
    if (!(a >= 8090 && a < 8100))
        fprintf(stderr, "  after the tear the log holds %llu records (log ended in %s at %llu)\n",
                (unsigned long long)a, cr.file, (unsigned long long)cr.offset);
    write_records(L, 50, 100, 3);
    CHECK_EQ(plg_close(L), 0);
    REQUIRE(plg_reader_open(&r, dir) == 0);
    n = 0; bad = 0; first = 0;
    while ((rc = plg_reader_next(r, &rec)) == 1) {
        if (!first) first = rec.seq;
        if (rec.seq != first + n || !same(&rec, 100, 3)) bad++;
        n++;
    }
    plg_reader_close(r);
    CHECK_EQ(rc, 0);
    CHECK_EQ(bad, 0);
    CHECK_EQ(first + n - 1, a + 50);
}

/* Reads the log in dir from its archive a (plg_reader_open_archive): the
 * count of records, which must be 1..n in order with their contents. */
static uint64_t read_archived(const char *dir, const char *a, uint32_t len, uint64_t salt, int *rc_out) {
    plg_reader *r;
    int rc = plg_reader_open_archive(&r, dir, a, NULL, 0);
    if (rc) { *rc_out = rc; return 0; }
    plg_record rec;
    uint64_t n = 0, bad = 0;
    while ((rc = plg_reader_next(r, &rec)) == 1) {
        n++;
        if (rec.seq != n || !same(&rec, len, salt)) bad++;
    }
    plg_reader_close(r);
    CHECK_EQ(bad, 0);
    *rc_out = rc;
    return n;
}

/* Waits until at least `least` segments were released and no more are
 * going (a copy into the archive goes a segment at a time). */
static void released_settle(plg_log *L, uint64_t least, plg_stats *st) {
    plg_stats again;
    for (int i = 0; i < 500; i++) {
        plg_get_stats(L, st);
        usleep(20000);
        plg_get_stats(L, &again);
        if (st->segments_released >= least && again.segments_released == st->segments_released) return;
    }
}

/* plg_config.archive_dir: plg_release moves the released segments into the
 * archive (none reused, none deleted); plg_reader_open_archive reads the
 * whole log from seq 1, the archive then the log, also when segments move
 * while it reads them and after a reopen; plg_reader_open starts after
 * them, as before. adir on another filesystem than dir: copied whole (no
 * partial copy left). */
static void archive_body(const char *dir, const char *a) {
    plg_config c = cfg_for(dir);                   /* 64 KiB segments: up to 569 records of 100 bytes */
    c.archive_dir = a;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 5000, 100, 4);
    CHECK_EQ(plg_release(L, 3000), 0);
    plg_stats st;
    /* a segment copied to another filesystem is in the archive before the
     * batch that moved it is counted (after both directories' fsyncs):
     * settle until the count has caught up with the files */
    int archived = -1;
    for (int i = 0; i < 50; i++) {
        released_settle(L, 5, &st);
        archived = count_files(a, "^[0-9]*\\.plg$");
        if ((uint64_t)archived == st.segments_released) break;
    }
    CHECK(st.segments_released >= 5);
    CHECK_EQ((uint64_t)archived, st.segments_released);
    CHECK_EQ(count_files(a, "tmp$"), 0);
    CHECK_EQ(count_files(dir, "^free-"), 0);
    int rc = -1;
    CHECK_EQ(read_archived(dir, a, 100, 4, &rc), 5000);
    CHECK_EQ(rc, 0);
    plg_reader *r;                                 /* without the archive: after what was released */
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec;
    REQUIRE(plg_reader_next(r, &rec) == 1);
    CHECK(rec.seq > 1);
    plg_reader_close(r);
    /* a reader inside the log's own segments when they move to the archive */
    REQUIRE(plg_reader_open_archive(&r, dir, a, NULL, 0) == 0);
    uint64_t n = 0, bad = 0;
    while (n < 3500 && (rc = plg_reader_next(r, &rec)) == 1) { n++; if (rec.seq != n || !same(&rec, 100, 4)) bad++; }
    uint64_t before = st.segments_released;
    write_records(L, 3000, 100, 4);
    CHECK_EQ(plg_release(L, 7000), 0);
    for (int i = 0; i < 5000; i++) { plg_get_stats(L, &st); if (st.segments_released >= before + 7) break; usleep(1000); }
    CHECK(st.segments_released >= before + 7);
    while ((rc = plg_reader_next(r, &rec)) == 1) { n++; if (rec.seq != n || !same(&rec, 100, 4)) bad++; }
    CHECK_EQ(rc, 0);
    CHECK_EQ(n, 8000);
    CHECK_EQ(bad, 0);
    plg_reader_close(r);
    CHECK_EQ(plg_close(L), 0);
    REQUIRE(plg_open(&L, &c) == 0);                /* recovery of a log whose first segments are archived */
    CHECK_EQ(plg_appended(L), 8000);
    write_records(L, 100, 100, 4);
    CHECK_EQ(plg_close(L), 0);
    CHECK_EQ(read_archived(dir, a, 100, 4, &rc), 8100);
    CHECK_EQ(rc, 0);
    CHECK_EQ(count_files(a, "tmp$"), 0);
    /* a segment missing between the archive and the log: damage, not a log that begins later */
    char p[700], q[720];
    snprintf(p, sizeof p, "%s/%020llu.plg", a, (unsigned long long)st.segments_released);
    snprintf(q, sizeof q, "%s.aside", p);
    REQUIRE(rename(p, q) == 0);
    CHECK_EQ(plg_reader_open_archive(&r, dir, a, NULL, 0), PLG_ECORRUPT);
    REQUIRE(rename(q, p) == 0);
    CHECK_EQ(read_archived(dir, a, 100, 4, &rc), 8100);
}

static void test_release_to_archive(void) {
    const char *dir = t_dir("plg_archive");
    char a[600];
    snprintf(a, sizeof a, "%s.archive", dir);
    char cmd[700]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", a);
    CHECK_EQ(system(cmd), 0);
    archive_body(dir, a);
    plg_config c = cfg_for(dir);                   /* the log directory itself is refused */
    c.archive_dir = dir;
    plg_log *L;
    CHECK_EQ(plg_open(&L, &c), PLG_EINVAL);
    CHECK_EQ(system(cmd), 0);
}

/* The same with the archive on another filesystem (/dev/shm, when the test
 * directory is not there): rename says EXDEV, the segments are copied. */
static void test_release_to_archive_across_filesystems(void) {
    const char *dir = t_dir("plg_archive_xdev");
    struct stat sd, ss;
    if (stat(dir, &sd) != 0 || stat("/dev/shm", &ss) != 0 || sd.st_dev == ss.st_dev)
        SKIP("no second filesystem (/dev/shm) beside the test directory");
    char a[200];
    snprintf(a, sizeof a, "/dev/shm/plg_archive_test_%d", (int)getpid());
    char cmd[300]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", a);
    CHECK_EQ(system(cmd), 0);
    archive_body(dir, a);
    CHECK_EQ(system(cmd), 0);
}

/* A failed preallocation is retried (with backoff) and reported with its
 * real errno: a directory in the way of segment 3's temp file fails it with
 * EISDIR; once it is gone, the log continues past segment 3 unharmed. */
static void test_failed_preallocation_is_retried(void) {
    const char *dir = t_dir("plg_prealloc_retry");
    plg_config c = cfg_for(dir);                   /* 64 KiB segments: up to 569 records of 100 bytes */
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    char blocker[600]; snprintf(blocker, sizeof blocker, "%s/00000000000000000003.plg.tmp", dir);
    REQUIRE(mkdir(blocker, 0755) == 0);
    write_records(L, 600, 100, 5);                 /* into segment 2: segment 3 is wanted */
    plg_stats st;
    for (int i = 0; i < 5000; i++) { plg_get_stats(L, &st); if (st.prealloc_error) break; usleep(1000); }
    CHECK(st.prealloc_error != 0);
    CHECK_EQ(st.prealloc_errno, EISDIR);
    CHECK_EQ(plg_error(L), 0);
    REQUIRE(rmdir(blocker) == 0);
    write_records(L, 1400, 100, 5);                /* through segments 3 and 4 */
    CHECK_EQ(plg_error(L), 0);
    plg_get_stats(L, &st);
    CHECK_EQ(st.prealloc_error, 0);
    CHECK_EQ(plg_close(L), 0);
    int rc;
    CHECK_EQ(read_all(dir, 100, 5, &rc), 2000);
    CHECK_EQ(rc, 0);
}

/* Retiring released segments costs one directory fsync per batch, not one
 * per segment (and runs on the background thread, off the lock that
 * plg_release and the writer's segment switch take). */
static void test_release_batches_directory_syncs(void) {
    const char *dir = t_dir("plg_release_batch");
    plg_config c = cfg_for(dir);
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    int segs = quick() ? 20 : 60;
    write_records(L, (uint64_t)segs * 570, 100, 6);   /* 570: more than a 64 KiB segment holds */
    plg_stats st0, st;
    plg_get_stats(L, &st0);
    CHECK_EQ(plg_release(L, plg_appended(L) + 1), 0);
    for (int i = 0; i < 10000; i++) {
        plg_get_stats(L, &st);
        if (st.segments_released >= (uint64_t)segs - 3) break;
        usleep(1000);
    }
    uint64_t released = st.segments_released - st0.segments_released, syncs = st.dir_syncs - st0.dir_syncs;
    printf("  %llu segments released with %llu directory fsyncs\n", (unsigned long long)released, (unsigned long long)syncs);
    CHECK(released >= (uint64_t)segs - 3);
    CHECK(syncs <= released / 8 + 2);
    CHECK_EQ(plg_close(L), 0);
}

static void test_config_validation(void) {
    plg_config c; memset(&c, 0, sizeof c);
    plg_log *L;
    CHECK_EQ(plg_open(&L, &c), PLG_EINVAL);          /* no path */
    c.path = t_dir("plg_cfg"); c.log_fn = quiet_log;
    c.ring_capacity = 5000;                          /* not a power of two */
    CHECK_EQ(plg_open(&L, &c), PLG_EINVAL);
    c.ring_capacity = 0; c.segment_size = 1000;
    CHECK_EQ(plg_open(&L, &c), PLG_EINVAL);
    c.segment_size = 0; c.sync_mode = 7;
    CHECK_EQ(plg_open(&L, &c), PLG_EINVAL);
    c.sync_mode = 0; c.prealloc_segments = PLG_MAX_PREALLOC + 1;
    CHECK_EQ(plg_open(&L, &c), PLG_EINVAL);
    plg_config d; memset(&d, 0, sizeof d); d.path = "x";
    plg_config e = plg_config_defaults(&d);
    CHECK_EQ(e.ring_capacity, 8u << 20);
    CHECK_EQ(e.flush_interval_ns, 1000000);
    CHECK_EQ(e.prealloc_segments, 1);                 /* one segment ahead, as before the option */
    CHECK(strstr(plg_strerror(PLG_EFULL), "PLG_EFULL") != NULL);
    CHECK(strstr(plg_strerror(PLG_ECORRUPT), "corruption") != NULL);
}

/* The writer's idle spin: off unless asked for; a log spinning and a log
 * sleeping at once, side by side, both make every record durable, also
 * after idle moments longer than the spin. */
static void test_idle_spin(void) {
    plg_config d; memset(&d, 0, sizeof d); d.path = "x";
    CHECK_EQ(plg_config_defaults(&d).idle_spin_ns, 0);
    d.idle_spin_ns = 5000;
    CHECK_EQ(plg_config_defaults(&d).idle_spin_ns, 5000);
    plg_log *L[2];
    for (int k = 0; k < 2; k++) {
        plg_config c = cfg_for(t_dir(k ? "plg_spin_on" : "plg_spin_off"));
        c.idle_spin_ns = k ? 100000 : 0;
        REQUIRE(plg_open(&L[k], &c) == 0);
    }
    for (int r = 1; r <= 200; r++) {
        for (int k = 0; k < 2; k++) {
            uint8_t rec[64]; memset(rec, r & 0xff, sizeof rec);
            int64_t s = plg_append(L[k], rec, sizeof rec);
            CHECK_EQ(s, r);
            if (r % 20 == 0) CHECK_EQ(plg_wait(L[k], (uint64_t)s, (int64_t)5000000000), 0);
        }
        if (r % 50 == 0) usleep(300);   /* idle past the spin now and then */
    }
    for (int k = 0; k < 2; k++) {
        CHECK_EQ(plg_durable(L[k]), 200);
        CHECK_EQ(plg_close(L[k]), 0);
    }
}

static void test_sync_modes(void) {
    /* the fourth: fdatasync as an io_uring operation in flight, across
     * segment switches (64 KiB segments) */
    int modes[4] = { PLG_SYNC_DSYNC, PLG_SYNC_FDATASYNC, PLG_SYNC_NONE_UNSAFE, PLG_SYNC_FDATASYNC };
    for (int m = 0; m < 4; m++) {
        const char *dir = t_dir("plg_modes");
        plg_config c = cfg_for(dir);
        c.sync_mode = modes[m];
        if (m == 3) c.flags |= PLG_SYNC_IN_FLIGHT;
        plg_log *L;
        REQUIRE(plg_open(&L, &c) == 0);
        write_records(L, 2000, 100, 4);
        plg_stats st; plg_get_stats(L, &st);
        CHECK_EQ(st.sync_mode, modes[m]);
        if (modes[m] == PLG_SYNC_FDATASYNC) CHECK(st.syncs > 0);
        else CHECK_EQ(st.syncs, 0);
        CHECK_EQ(plg_close(L), 0);
        int rc;
        CHECK_EQ(read_all(dir, 100, 4, &rc), 2000);
        CHECK_EQ(rc, 0);
    }
}

/* fdatasync mode through io_uring: the writer calls fdatasync itself while
 * records trickle in (no io-wq worker to wait for), and puts the sync in
 * flight while full writes queue up, so the device stays busy during it.
 * Records come back whole either way; PLG_SYNC_ON_WRITER keeps the old
 * rule (always the writer's own fdatasync). */
/* A new log's window (segment header, offset 40) is twice what its writes
 * in flight can hold, plus a page: the half beyond the writes in flight is
 * for completed writes that wait for their sync (fdatasync mode). A log
 * keeps the window it was made with when reopened with other settings, and
 * a reopen asking for more in flight than that window is cut to fit. */
static uint64_t window_of(const char *dir) {
    char f[600]; seg_path(f, sizeof f, dir, 1);
    uint8_t h[48] = {0};
    int fd = open(f, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = pread(fd, h, sizeof h, 0);
    close(fd);
    return n == (ssize_t)sizeof h ? plg__get64(h + 40) : 0;
}
static void test_new_log_window_is_twice_the_writes_in_flight(void) {
    const char *dir = t_dir("plg_window");
    plg_config c = cfg_for(dir);
    c.max_inflight = 2; c.max_write_bytes = 8192;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 500, 100, 3);
    CHECK_EQ(plg_close(L), 0);
    CHECK_EQ(window_of(dir), 2 * 2 * 8192 + 4096);
    c.max_inflight = 4; c.max_write_bytes = 65536;     /* more than the recorded window allows */
    REQUIRE(plg_open(&L, &c) == 0);
    plg_stats st; plg_get_stats(L, &st);
    CHECK(st.max_write_pages * 4096 * 4 + 4096 <= 2 * 2 * 8192 + 4096);
    write_records(L, 500, 100, 3);
    CHECK_EQ(plg_close(L), 0);
    CHECK_EQ(window_of(dir), 2 * 2 * 8192 + 4096);     /* unchanged */
    int rc = 0;
    CHECK_EQ(read_all(dir, 100, 3, &rc), 1000);
    CHECK_EQ(rc, 0);
}

/* The kernel threads io_uring hands a blocking request to are named
 * "iou-wrk-<tid of the submitting thread>". Does the writer thread of the one
 * log open have one? (-1: no writer thread found) */
static int writer_has_io_worker(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    long writer = -1;
    char names[64][32]; int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char f[300], comm[32] = "";
        snprintf(f, sizeof f, "/proc/self/task/%s/comm", e->d_name);
        FILE *fp = fopen(f, "r");
        if (!fp) continue;
        if (fgets(comm, sizeof comm, fp)) comm[strcspn(comm, "\n")] = 0;
        fclose(fp);
        if (!strcmp(comm, "plg-writer")) writer = atol(e->d_name);
        else if (!strncmp(comm, "iou-wrk-", 8) && n < 64) snprintf(names[n++], sizeof names[0], "%s", comm);
    }
    closedir(d);
    if (writer < 0) return -1;
    char want[32]; snprintf(want, sizeof want, "iou-wrk-%ld", writer);
    want[15] = 0;                                   /* a thread's name holds 15 characters */
    for (int i = 0; i < n; i++) if (!strcmp(names[i], want)) return 1;
    return 0;
}

/* A reader following the log reads the tail page, and the pages after it,
 * through the page cache. An O_DIRECT write over a cached page cannot be
 * issued without blocking (the page must be evicted first), so io_uring
 * handed each such write to a kernel worker thread, whose wake-up is late
 * on a busy machine: half the writes of a 10k rec/s log with one follower
 * took that detour. The writer now evicts the range itself before it
 * submits, and its writes stay on the fast path. */
static void test_writes_stay_inline_beside_a_follower(void) {
    const char *dir = t_dir("plg_follow_inline");
    plg_config c = cfg_for(dir);
    c.segment_size = 4u << 20;
    c.flags |= PLG_URING_ONLY;   /* the lone pages through io_uring too (not blocking writes without FUA) */
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) SKIP("no O_DIRECT on the test filesystem (set PLG_TEST_DIR to ext4/xfs)");
    REQUIRE(rc == 0);
    plg_stats st; plg_get_stats(L, &st);
    if (strcmp(st.backend, "io_uring") != 0) { plg_close(L); SKIP("no io_uring: every write blocks the writer anyway"); }
    int w = -1;
    for (int i = 0; i < 2000 && (w = writer_has_io_worker()) < 0; i++) usleep(1000);   /* the writer names itself */
    if (w != 0) { plg_close(L); SKIP("cannot find the writer thread and its io_uring workers here"); }
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    uint64_t bad = 0, got = 0;
    for (uint64_t i = 1; i <= 200; i++) {   /* one at a time, the follower reads each: its pages are cached */
        uint8_t one[100]; fill(one, sizeof one, i, 21);
        CHECK_EQ(plg_append(L, one, sizeof one), i);
        CHECK_EQ(plg_wait(L, i, 10000000000ll), 0);
        plg_record x;
        while ((rc = plg_reader_next(r, &x)) == 1) {
            got++;
            if (x.seq != got || !same(&x, sizeof one, 21)) bad++;
        }
        CHECK_EQ(rc, 0);
    }
    CHECK_EQ(got, 200);
    CHECK_EQ(bad, 0);
    CHECK_EQ(writer_has_io_worker(), 0);
    plg_reader_close(r);
    CHECK_EQ(plg_close(L), 0);
    CHECK_EQ(read_all(dir, 100, 21, &rc), 200);
    CHECK_EQ(rc, 0);
}

/* A reader reads pages ahead of its position. When the durable mark moved
 * on while it was short of it, it walked on into the zeros it had read
 * before the writer filled those pages, took them for a possible tear, and
 * ran the check that tells a tear from damage: up to 16 MiB read past the
 * end, for nothing (a third of the polls of a follower reading every 10 ms
 * at 10k records/s). A live reader now reads such pages again first. */
static void test_follower_reads_little_per_advance(void) {
    const char *dir = t_dir("plg_follow_reads");
    plg_config c = cfg_for(dir);
    c.segment_size = 64u << 20;          /* room past the end for the check to read */
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) SKIP("no O_DIRECT on the test filesystem (set PLG_TEST_DIR to ext4/xfs)");
    REQUIRE(rc == 0);
    if (t_thread_io("rchar") < 0) { plg_close(L); SKIP("no /proc/thread-self/io"); }
    write_records(L, 10, 100, 23);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record x;
    uint64_t got = 0, bad = 0;
    CHECK_EQ(plg_reader_next(r, &x), 1);      /* record 1, and the pages after the 10th, still zeros */
    got++;
    if (x.seq != 1 || !same(&x, 100, 23)) bad++;
    for (int round = 0; round < 3; round++) {
        write_records(L, 10, 100, 23);        /* the mark moves on while the reader is short of it */
        long long before = t_thread_io("rchar");
        while ((rc = plg_reader_next(r, &x)) == 1) {
            got++;
            if (x.seq != got || !same(&x, 100, 23)) bad++;
            if (got % 10 == 5 && round < 2) break;   /* short of the mark again for the next round */
        }
        long long read = t_thread_io("rchar") - before;
        CHECK(rc >= 0);
        CHECK(read < 1 << 20);                /* a few pages, not a walk over megabytes of zeros */
    }
    CHECK_EQ(got, 40);
    CHECK_EQ(bad, 0);
    plg_reader_close(r);
    CHECK_EQ(plg_close(L), 0);
    CHECK_EQ(read_all(dir, 100, 23, &rc), 40);
    CHECK_EQ(rc, 0);
}

static void test_sync_in_flight_only_in_a_burst(void) {
    for (int on_writer = 0; on_writer < 2; on_writer++) {
        const char *dir = t_dir("plg_sync_burst");
        plg_config c = cfg_for(dir);
        c.sync_mode = PLG_SYNC_FDATASYNC;
        c.segment_size = 1024 * 1024;
        c.ring_capacity = 4u << 20;
        c.max_write_bytes = 16 * 1024;     /* full writes queue up soon */
        if (on_writer) c.flags |= PLG_SYNC_ON_WRITER;
        plg_log *L;
        REQUIRE(plg_open(&L, &c) == 0);
        plg_stats st; plg_get_stats(L, &st);
        if (strcmp(st.backend, "io_uring") != 0) { plg_close(L); SKIP("no io_uring: the writer always syncs itself"); }
        for (uint64_t i = 1; i <= 30; i++) {   /* one at a time, each waited for: nothing queues */
            uint8_t one[100]; fill(one, sizeof one, i, 9);
            CHECK_EQ(plg_append(L, one, sizeof one), i);
            CHECK_EQ(plg_wait(L, i, 10000000000ll), 0);
        }
        plg_get_stats(L, &st);
        CHECK(st.syncs >= 30);
        CHECK_EQ(st.syncs_in_flight, 0);
        uint64_t s0 = st.syncs_in_flight;
        static uint8_t rec[1000];
        int64_t last = 0;
        for (uint64_t i = 0; i < 20000; i++) {
            uint64_t seq = plg_appended(L) + 1;
            fill(rec, sizeof rec, seq, 9);
            while ((last = plg_append(L, rec, sizeof rec)) == PLG_EFULL) sched_yield();
            if (last != (int64_t)seq) break;
        }
        CHECK_EQ(last, 20030);
        CHECK_EQ(plg_wait(L, 20030, 30000000000ll), 0);
        plg_get_stats(L, &st);
        if (on_writer) CHECK_EQ(st.syncs_in_flight, 0);
        else CHECK(st.syncs_in_flight > s0);
        CHECK(st.syncs_in_flight <= st.syncs);
        CHECK_EQ(plg_close(L), 0);
        plg_reader *r;
        REQUIRE(plg_reader_open(&r, dir) == 0);
        plg_record x; int rc; uint64_t n = 0, bad = 0;
        uint8_t want[1000];
        while ((rc = plg_reader_next(r, &x)) == 1) {
            n++;
            uint32_t len = x.seq <= 30 ? 100 : 1000;
            fill(want, len, x.seq, 9);
            if (x.seq != n || x.len != len || memcmp(x.data, want, len) != 0) bad++;
        }
        plg_reader_close(r);
        CHECK_EQ(rc, 0);
        CHECK_EQ(n, 20030);
        CHECK_EQ(bad, 0);
    }
}

/* Open dir's log (cfg_for, ring_capacity = ring unless 0) with n segments
 * made ahead, and wait until they are: plg_open's code, or -1 (closed
 * again) if they never were. */
static int open_with_pool(plg_log **L, plg_config *c, const char *dir, uint32_t n, size_t ring) {
    *c = cfg_for(dir);
    c->prealloc_segments = n;
    if (ring) c->ring_capacity = ring;
    int rc = plg_open(L, c);
    if (rc == 0 && !wait_ahead(*L, n)) { plg_close(*L); return -1; }
    return rc;
}

/* Read a log whose head was released: every record from the first one kept
 * must be the next seq and intact (counted in *bad); returns how many, the
 * first seq in *first and the reader's last code in *rc_out. */
static uint64_t read_from_first(const char *dir, uint32_t len, uint64_t salt, uint64_t *first, uint64_t *bad,
                                int *rc_out) {
    plg_reader *r;
    uint64_t n = 0;
    *first = 0; *bad = 0;
    if ((*rc_out = plg_reader_open(&r, dir)) != 0) return 0;
    plg_record rec;
    while ((*rc_out = plg_reader_next(r, &rec)) == 1) {
        if (!*first) *first = rec.seq;
        if (rec.seq != *first + n || !same(&rec, len, salt)) (*bad)++;
        n++;
    }
    plg_reader_close(r);
    return n;
}

/* Segment files in dir (*.plg) whose allocated blocks cover less than
 * seg_size: a segment must hold its whole space from the start. */
static int segments_short_of_space(const char *dir, uint64_t seg_size, int *count) {
    DIR *d = opendir(dir);
    int shortn = 0; *count = 0;
    if (!d) return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".plg") != 0) continue;
        char p[1024]; struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (stat(p, &sb) != 0) { shortn++; continue; }
        (*count)++;
        if ((uint64_t)sb.st_blocks * 512 < seg_size || (uint64_t)sb.st_size != seg_size) shortn++;
    }
    closedir(d);
    return shortn;
}

/* A burst does not write its segments twice: while the writer is busy, new
 * segments get allocated extents instead of zeros (plg_stats
 * segments_unwritten). They still hold their whole space, and every record
 * reads back, after a reopen too. A log whose records are waited for one at
 * a time is never busy and keeps zeroed segments. */
static void test_burst_segments_written_once(void) {
    const char *dir = t_dir("plg_burst_once");
    plg_config c = cfg_for(dir);
    c.max_write_bytes = 2 * PLG_PAGE_SIZE;           /* 2 full pages waiting: the writer counts as busy */
    plg_log *L;
    int rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) SKIP("no O_DIRECT on the test filesystem (set PLG_TEST_DIR to ext4/xfs)");
    REQUIRE(rc == 0);
    plg_stats st;
    uint64_t n = 0;
    for (int round = 0; round < 20; round++) {       /* 64 KiB segments: about 40 per round */
        write_records(L, 20000, 100, 5);
        n += 20000;
        plg_get_stats(L, &st);
        if (st.segments_unwritten > 0) break;
    }
    CHECK(st.segments_unwritten > 0);
    CHECK(st.segments_unwritten <= st.segments_created);
    CHECK_EQ(plg_close(L), 0);
    int files = 0;
    CHECK_EQ(segments_short_of_space(dir, c.segment_size, &files), 0);
    CHECK(files > 10);
    int rrc = 0;
    CHECK_EQ(read_all(dir, 100, 5, &rrc), n);
    CHECK_EQ(rrc, 0);
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_durable(L), n);
    write_records(L, 500, 100, 5);
    CHECK_EQ(plg_close(L), 0);
    CHECK_EQ(read_all(dir, 100, 5, &rrc), n + 500);
    CHECK_EQ(rrc, 0);

    const char *dir2 = t_dir("plg_paced_zeroed");
    c = cfg_for(dir2);
    c.max_write_bytes = 2 * PLG_PAGE_SIZE;
    REQUIRE(plg_open(&L, &c) == 0);
    uint8_t buf[1000];
    for (uint64_t i = 1; i <= 1200; i++) {           /* 1000 B records: 3 segments at least */
        fill(buf, sizeof buf, i, 6);
        int64_t seq = append_retry(L, buf, sizeof buf);
        if (seq != (int64_t)i) { CHECK_EQ(seq, i); break; }
        if (plg_wait(L, i, 10000000000ll) != 0) { CHECK(0); break; }
    }
    plg_get_stats(L, &st);
    CHECK(st.segments_created >= 3);
    CHECK_EQ(st.segments_unwritten, 0);
    CHECK_EQ(plg_close(L), 0);
    CHECK_EQ(read_all(dir2, 1000, 6, &rrc), 1200);
    CHECK_EQ(rrc, 0);
}

/* plg_config.prealloc_segments: that many zeroed segments wait ahead of the
 * one being written, made again as the writer moves on; they are empty, so a
 * reopen with the default finds the records where they were and goes on. */
static void test_prealloc_segments_kept_ahead(void) {
    const char *dir = t_dir("plg_prealloc_ahead");
    plg_config c; plg_log *L;                        /* 64 KiB segments: 569 records of 100 B at most */
    int rc = open_with_pool(&L, &c, dir, 5, 0);
    if (rc == PLG_ENODIRECT) SKIP("no O_DIRECT on the test filesystem (set PLG_TEST_DIR to ext4/xfs)");
    REQUIRE(rc == 0);
    CHECK_EQ(count_files(dir, "[.]plg$"), 6);
    write_records(L, 2400, 100, 7);                  /* at least 5 segments: at least 4 moves */
    CHECK(wait_ahead(L, 5));
    plg_stats st; plg_get_stats(L, &st);
    CHECK_EQ(st.segments_ahead, 5);
    CHECK(st.segments_created >= 6 + 4);             /* with one ahead: 2 + the moves */
    CHECK_EQ(count_files(dir, "[.]plg$"), (int)st.segments_created);
    CHECK_EQ(plg_close(L), 0);
    c.prealloc_segments = 0;
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 2400);
    CHECK_EQ(plg_durable(L), 2400);
    write_records(L, 500, 100, 7);
    CHECK_EQ(plg_close(L), 0);
    int rrc = 0;
    CHECK_EQ(read_all(dir, 100, 7, &rrc), 2900);
    CHECK_EQ(rrc, 0);
    plg_check_result cr;
    CHECK_EQ(plg_check(dir, &cr), 0);
    CHECK_EQ(cr.records, 2900);
    CHECK_EQ(cr.torn_tail, 0);
}

/* A burst through a pool of segments made ahead: every record durable and
 * read back, and once the burst is over the pool is made whole again
 * (zeroing past the next segment waits only while the writer is busy). */
static void test_prealloc_pool_refills_after_a_burst(void) {
    const char *dir = t_dir("plg_prealloc_burst");
    plg_config c; plg_log *L;
    int rc = open_with_pool(&L, &c, dir, 8, 4u << 20);
    if (rc == PLG_ENODIRECT) SKIP("no O_DIRECT on the test filesystem (set PLG_TEST_DIR to ext4/xfs)");
    REQUIRE(rc == 0);
    static uint8_t buf[1000];
    uint64_t n = 6000;                               /* 6 MB: about 100 segments of 60 KiB of data */
    int64_t last = 0;
    for (uint64_t i = 1; i <= n; i++) {
        fill(buf, sizeof buf, i, 9);
        last = append_retry(L, buf, sizeof buf);
        if (last != (int64_t)i) break;
    }
    REQUIRE(last == (int64_t)n);
    CHECK_EQ(plg_wait(L, n, 60000000000ll), 0);
    CHECK(wait_ahead(L, 8));
    plg_stats st; plg_get_stats(L, &st);
    CHECK_EQ(st.error, 0);
    CHECK_EQ(st.prealloc_error, 0);
    CHECK_EQ(plg_close(L), 0);
    int rrc = 0;
    CHECK_EQ(read_all(dir, sizeof buf, 9, &rrc), n);
    CHECK_EQ(rrc, 0);
}

/* A pool of segments made ahead and plg_release together: released segments
 * fill the pool again (reused, not zeroed), and the log reads dense and
 * intact from the first kept record, also after a reopen. */
static void test_prealloc_pool_with_release(void) {
    const char *dir = t_dir("plg_prealloc_release");
    plg_config c; plg_log *L;
    int rc = open_with_pool(&L, &c, dir, 4, 0);
    if (rc == PLG_ENODIRECT) SKIP("no O_DIRECT on the test filesystem (set PLG_TEST_DIR to ext4/xfs)");
    REQUIRE(rc == 0);
    plg_stats st;
    for (int round = 1; round <= 4; round++) {
        write_records(L, 2000, 100, 5);
        CHECK_EQ(plg_release(L, plg_durable(L) - 500), 0);
    }
    CHECK(wait_ahead(L, 4));
    for (int i = 0; i < 5000; i++) { plg_get_stats(L, &st); if (st.segments_released >= 10) break; usleep(1000); }
    CHECK(st.segments_released >= 10);
    write_records(L, 2000, 100, 5);
    CHECK(wait_ahead(L, 4));
    plg_get_stats(L, &st);
    CHECK(st.segments_recycled >= 1);
    CHECK_EQ(st.prealloc_error, 0);
    CHECK_EQ(plg_close(L), 0);
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_appended(L), 10000);
    write_records(L, 100, 100, 5);
    CHECK_EQ(plg_close(L), 0);
    uint64_t first, bad, n = read_from_first(dir, 100, 5, &first, &bad, &rc);
    CHECK_EQ(rc, 0);
    CHECK_EQ(bad, 0);
    CHECK(first > 1 && first <= 7500);
    CHECK_EQ(first + n - 1, 10100);
    plg_reader *r;
    plg_record rec;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    REQUIRE(plg_reader_seek(r, 9000) == 0);
    REQUIRE(plg_reader_next(r, &rec) == 1);
    CHECK_EQ(rec.seq, 9000);
    plg_reader_close(r);
    plg_check_result cr;
    CHECK_EQ(plg_check(dir, &cr), 0);
    CHECK_EQ(cr.last_seq, 10100);
    CHECK_EQ(cr.torn_tail, 0);
}

/* A release asked for during a burst is taken during the burst, also while
 * the pool made ahead is short: the segment thread must not keep to making
 * (or waiting to make) segments past the next one. (The first version of
 * prealloc_segments took releases only once the pool was whole again, so a
 * burst with releases zeroed new segments instead of reusing.) */
static void test_prealloc_pool_takes_releases_during_a_burst(void) {
    const char *dir = t_dir("plg_prealloc_release_burst");
    plg_config c; plg_log *L;
    int rc = open_with_pool(&L, &c, dir, 4, 4u << 20);
    if (rc == PLG_ENODIRECT) SKIP("no O_DIRECT on the test filesystem (set PLG_TEST_DIR to ext4/xfs)");
    REQUIRE(rc == 0);
    static uint8_t buf[1000];
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    plg_stats st;
    uint64_t n = 0, asked = 0;
    int seen = 0;
    for (;;) {                                       /* appends for at most 10 s */
        fill(buf, sizeof buf, n + 1, 11);
        if (append_retry(L, buf, sizeof buf) != (int64_t)(n + 1)) break;
        n++;
        if (!asked && plg_durable(L) > 2000) { asked = plg_durable(L); CHECK_EQ(plg_release(L, asked), 0); }
        if (n % 64) continue;
        if (asked) { plg_get_stats(L, &st); if (st.segments_released > 0) { seen = 1; break; } }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec >= 10) break;
    }
    CHECK(asked > 0);
    CHECK(seen);                                     /* while the appends went on */
    CHECK_EQ(plg_wait(L, n, 60000000000ll), 0);
    CHECK_EQ(plg_close(L), 0);
    uint64_t first, bad, k = read_from_first(dir, sizeof buf, 11, &first, &bad, &rc);
    CHECK_EQ(rc, 0);
    CHECK_EQ(bad, 0);
    CHECK(first > 1 && first <= asked);
    CHECK_EQ(first + k - 1, n);
}

static void test_pinned_writer(void) {
    const char *dir = t_dir("plg_pin");
    plg_config c = cfg_for(dir);
    c.flags = PLG_PIN_WRITER; c.writer_cpu = 0;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    write_records(L, 100, 100, 4);
    CHECK_EQ(plg_close(L), 0);
    c.writer_cpu = -1;
    CHECK_EQ(plg_open(&L, &c), PLG_EINVAL);
}

/* tmpfs keeps the files in RAM (and this kernel accepts O_DIRECT there):
 * refused with PLG_EVOLATILE unless PLG_ALLOW_VOLATILE opts in by name. */
static void test_volatile_filesystem_refused(void) {
    struct statfs sf;
    if (statfs("/dev/shm", &sf) != 0 || (uint32_t)sf.f_type != 0x01021994u) SKIP("no tmpfs at /dev/shm");
    char dir[256]; snprintf(dir, sizeof dir, "/dev/shm/plg_test_%d", (int)getpid());
    char cmd[300]; snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    plg_config c = cfg_for(dir);
    plg_log *L = NULL;
    int rc = plg_open(&L, &c);
    if (rc == 0) plg_close(L);
    CHECK_EQ(rc, PLG_EVOLATILE);
    c.io_mode = PLG_IO_BUFFERED_FDATASYNC;             /* buffered is no opt-in: still RAM */
    rc = plg_open(&L, &c);
    if (rc == 0) plg_close(L);
    CHECK_EQ(rc, PLG_EVOLATILE);
    c.io_mode = PLG_IO_DIRECT;
    c.flags = PLG_ALLOW_VOLATILE;                      /* opted in by name */
    rc = plg_open(&L, &c);
    if (rc == PLG_ENODIRECT) { c.io_mode = PLG_IO_BUFFERED_FDATASYNC; rc = plg_open(&L, &c); }
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        write_records(L, 500, 100, 8);
        CHECK_EQ(plg_close(L), 0);
        CHECK_EQ(read_all(dir, 100, 8, &rc), 500);
    }
    CHECK(system(cmd) == 0);
}

/* A producer, two waiters and a stats reader at once (run under TSan). */
typedef struct conc { plg_log *L; uint64_t n; int done; uint64_t bad; } conc;
static void *conc_producer(void *arg) {
    conc *k = (conc *)arg;
    uint8_t buf[64] = {0};   /* bytes 8.. are appended too: initialised (valgrind) */
    for (uint64_t i = 1; i <= k->n; i++) {
        memcpy(buf, &i, 8);
        int64_t s;
        while ((s = plg_append(k->L, buf, 8 + (uint32_t)(i % 56))) == PLG_EFULL) sched_yield();
        if (s != (int64_t)i) __atomic_add_fetch(&k->bad, 1, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&k->done, 1, __ATOMIC_RELEASE);
    return NULL;
}
static void *conc_waiter(void *arg) {
    conc *k = (conc *)arg;
    uint64_t last = 0;
    while (!__atomic_load_n(&k->done, __ATOMIC_ACQUIRE) || plg_durable(k->L) < k->n) {
        uint64_t a = plg_appended(k->L);
        if (a > last) {
            if (plg_wait(k->L, a, 60000000000ll) != 0) { __atomic_add_fetch(&k->bad, 1, __ATOMIC_RELAXED); break; }
            if (plg_durable(k->L) < a) __atomic_add_fetch(&k->bad, 1, __ATOMIC_RELAXED);
            last = a;
        }
        plg_stats st; plg_get_stats(k->L, &st);
        if (!(st.appended >= st.written && st.written >= st.durable)) __atomic_add_fetch(&k->bad, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}
static void test_concurrent_producer_and_waiters(void) {
    const char *dir = t_dir("plg_conc");
    plg_config c = cfg_for(dir);
    c.ring_capacity = 64 * 1024;
    plg_log *L;
    REQUIRE(plg_open(&L, &c) == 0);
    conc k; memset(&k, 0, sizeof k);
    k.L = L; k.n = quick() ? 20000 : 200000;
    pthread_t p, w1, w2;
    pthread_create(&p, NULL, conc_producer, &k);
    pthread_create(&w1, NULL, conc_waiter, &k);
    pthread_create(&w2, NULL, conc_waiter, &k);
    pthread_join(p, NULL); pthread_join(w1, NULL); pthread_join(w2, NULL);
    CHECK_EQ(k.bad, 0);
    CHECK_EQ(plg_durable(L), k.n);
    CHECK_EQ(plg_close(L), 0);
    plg_reader *r;
    REQUIRE(plg_reader_open(&r, dir) == 0);
    plg_record rec; uint64_t n = 0, bad = 0;
    while (plg_reader_next(r, &rec) == 1) {
        n++;
        uint64_t v; memcpy(&v, rec.data, 8);
        if (v != n || rec.seq != n || rec.len != 8 + n % 56) bad++;
    }
    plg_reader_close(r);
    CHECK_EQ(n, k.n);
    CHECK_EQ(bad, 0);
}

int main(void) {
    RUN(test_crc32c);
    RUN(test_frag_crc_fields_match_bytes);
    RUN(test_config_validation);
    RUN(test_idle_spin);
    RUN(test_roundtrip_and_reopen);
    RUN(test_random_sizes_1b_to_1mib);
    RUN(test_seek);
    RUN(test_torn_tail_every_sector);
    RUN(test_garbled_record_valid_behind);
    RUN(test_mid_log_corruption);
    RUN(test_stale_other_log);
    RUN(test_stale_earlier_incarnation);
    RUN(test_durable_is_contiguous);
    RUN(test_writer_blocked_on_full_staging_waits_for_a_completion);
    RUN(test_writer_with_every_slot_taken_waits_for_a_completion);
    RUN(test_writer_past_flush_deadline_waits_for_a_completion);
    RUN(test_record_while_page_in_flight_starts_next_page);
    RUN(test_reader_skips_to_next_page_only_for_the_next_record);
    RUN(test_short_headers_follow_the_record_before);
    RUN(test_older_segments_get_no_short_headers);
    RUN(test_version_1_log_is_read_and_continued_densely);
    RUN(test_torn_record_after_a_left_page_ends_the_log_on_that_page);
    RUN(test_truncate_after_a_left_page_goes_on_on_that_page);
    RUN(test_left_page_after_a_released_records_head);
    RUN(test_write_error_poisons);
    RUN(test_fsync_error_poisons);
    RUN(test_sync_covers_only_writes_completed_before_it);
    RUN(test_write_eagain_is_not_locked);
    RUN(test_ring_full);
    RUN(test_no_threads_mode_writes_at_close);
    RUN(test_reserve_commit_and_typed);
    RUN(test_reserve_misuse_is_refused);
    RUN(test_record_over_max_refused);
    RUN(test_second_writer_refused);
    RUN(test_reader_leaves_tmp_files);
    RUN(test_release_and_recycle);
    RUN(test_release_to_archive);
    RUN(test_release_to_archive_across_filesystems);
    RUN(test_tear_at_the_end_of_a_full_segment);
    RUN(test_failed_preallocation_is_retried);
    RUN(test_release_batches_directory_syncs);
    RUN(test_sync_modes);
    RUN(test_sync_in_flight_only_in_a_burst);
    RUN(test_new_log_window_is_twice_the_writes_in_flight);
    RUN(test_prealloc_segments_kept_ahead);
    RUN(test_burst_segments_written_once);
    RUN(test_prealloc_pool_refills_after_a_burst);
    RUN(test_prealloc_pool_with_release);
    RUN(test_writes_stay_inline_beside_a_follower);
    RUN(test_follower_reads_little_per_advance);
    RUN(test_prealloc_pool_takes_releases_during_a_burst);
    RUN(test_pinned_writer);
    RUN(test_volatile_filesystem_refused);
    RUN(test_concurrent_producer_and_waiters);
    return t_done();
}
