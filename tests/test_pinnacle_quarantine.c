/* pinnacle_persist.h: PP_OPEN_QUARANTINE (issue 13, item 6).
 *   - per-instrument layout: one instrument with a damaged journal; pp_open
 *     fails closed by default; with the flag it opens the healthy ones, lists
 *     the damaged one (name, error, file, offset) through pp_quarantined, its
 *     pp_book_open returns its error for the rest of the run (even if its
 *     files are repaired meanwhile), and its files are left byte for byte;
 *   - format 2: damage in the shared store journal cannot be pinned on one
 *     instrument: pp_open still fails with the flag, and changes nothing;
 *     a valid frame that does not fit its book sets that book aside. */
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "t.h"

static void rm_dir(const char *dir) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static void quiet(void *u, int code, const char *msg) { (void)u; (void)code; (void)msg; }

static pp_config cfg_for(const char *dir, unsigned flags) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.flags = PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT | flags;
    c.log_fn = quiet;
    c.journal_sync_interval_ms = 2;
    c.journal_chunk_bytes = 64 << 10;
    c.journal_segment_bytes = 1 << 20;
    c.ring_entries = 1024;
    return c;
}

/* n adds on each named book, then a clean close */
static void fill(const pp_config *c, const char *const *names, int nn, int n) {
    pp_store *s = NULL;
    REQUIRE(pp_open(&s, c) == 0);
    for (int k = 0; k < nn; k++) {
        pp_book *b = NULL;
        CHECK_EQ(pp_book_open(s, names[k], &b), 0);
        for (int i = 1; b && i <= n; i++) {
            pp_order o;
            memset(&o, 0, sizeof o);
            o.id = (uint64_t)i; o.price = 100 + i % 5; o.qty = 2; o.side = i & 1 ? PP_BUY : PP_SELL;
            CHECK_EQ(pp_add(b, &o), 0);
        }
    }
    CHECK_EQ(pp_close(s), 0);
}

static int count_order(const pp_order *o, void *ctx) { (void)o; (*(int *)ctx)++; return 0; }
static int count_book(const char *name, pp_book *b, void *ctx) { (void)name; (void)b; (*(int *)ctx)++; return 0; }

/* the whole file, malloc'd (*len its size), or NULL */
static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = (uint8_t *)malloc(n > 0 ? (size_t)n : 1);
    *len = p && n >= 0 && fread(p, 1, (size_t)n, f) == (size_t)n ? (size_t)n : 0;
    fclose(f);
    return p;
}

static void damage(const char *path, long off) {
    int fd = open(path, O_RDWR);
    uint8_t x = 0;
    if (fd < 0 || pread(fd, &x, 1, off) != 1) { perror(path); exit(2); }
    x ^= 0x5A;
    if (pwrite(fd, &x, 1, off) != 1) { perror(path); exit(2); }
    close(fd);
}

static void test_quarantine_opens_the_healthy_instruments(void) {
    const char *dir = t_dir("pp_quarantine");
    const char *names[] = { "A", "B", "C" };
    pp_config c = cfg_for(dir, PP_LEGACY_LAYOUT), cq = cfg_for(dir, PP_LEGACY_LAYOUT | PP_OPEN_QUARANTINE);
    fill(&c, names, 3, 50);
    char seg[1024];
    snprintf(seg, sizeof seg, "%s/B/journal/00000000000000000001.ppj", dir);
    damage(seg, 516);                               /* B's durable mark: corruption, not a torn tail */
    size_t len0 = 0, len1 = 0;
    uint8_t *before = slurp(seg, &len0);
    REQUIRE(before != NULL && len0 > 0);

    pp_store *s = NULL;
    CHECK_EQ(pp_open(&s, &c), PP_ECORRUPT);         /* the default stays fail-closed */
    CHECK(s == NULL);

    REQUIRE(pp_open(&s, &cq) == 0);
    pp_quarantine_info q[4];
    memset(q, 0, sizeof q);
    CHECK_EQ(pp_quarantined(s, NULL, 0), 1);
    CHECK_EQ(pp_quarantined(s, q, 4), 1);
    CHECK(strcmp(q[0].instrument, "B") == 0);
    CHECK_EQ(q[0].error, PP_ECORRUPT);
    CHECK(strstr(q[0].file, "B/journal/00000000000000000001.ppj") != NULL);
    CHECK_EQ(q[0].offset, 512);
    int books = 0;
    CHECK_EQ(pp_books(s, count_book, &books), 0);
    CHECK_EQ(books, 2);
    for (int k = 0; k < 3; k += 2) {                /* A and C: recovered, whole */
        pp_book *b = NULL;
        CHECK_EQ(pp_book_open(s, names[k], &b), 0);
        int n = 0;
        if (b) CHECK_EQ(pp_orders(b, count_order, &n), 0);
        CHECK_EQ(n, 50);
        if (b) CHECK_EQ(pp_last_seq(b), 50);
    }
    pp_book *bb = (pp_book *)1;
    CHECK_EQ(pp_book_open(s, "B", &bb), PP_ECORRUPT);   /* neither recovered nor created anew */
    CHECK(bb == NULL);
    pp_book *d = NULL;
    CHECK_EQ(pp_book_open(s, "D", &d), 0);          /* new instruments still open */
    CHECK_EQ(pp_close(s), 0);

    uint8_t *after = slurp(seg, &len1);             /* nothing rewritten, nothing deleted */
    CHECK(after != NULL && len1 == len0 && memcmp(before, after, len0) == 0);
    free(after);
    pp_check_result r;
    CHECK_EQ(pp_check(dir, "B", &r), PP_ECORRUPT);
    CHECK_EQ(r.offset, 512);

    s = NULL;                                       /* and the same again on the next open */
    REQUIRE(pp_open(&s, &cq) == 0);
    CHECK_EQ(pp_quarantined(s, q, 1), 1);
    CHECK(strcmp(q[0].instrument, "B") == 0);
    CHECK_EQ(pp_close(s), 0);
    CHECK_EQ(pp_open(&s, &c), PP_ECORRUPT);
    after = slurp(seg, &len1);
    CHECK(after != NULL && len1 == len0 && memcmp(before, after, len0) == 0);
    free(after);
    free(before);

    /* set aside for the whole run: an operator repairing B's files meanwhile
     * is not raced by the store; the next open recovers it */
    s = NULL;
    REQUIRE(pp_open(&s, &cq) == 0);
    damage(seg, 516);                               /* the same flip again: B repaired */
    bb = NULL;
    CHECK_EQ(pp_book_open(s, "B", &bb), PP_ECORRUPT);
    CHECK_EQ(pp_close(s), 0);
    s = NULL;
    REQUIRE(pp_open(&s, &c) == 0);
    CHECK_EQ(pp_quarantined(s, NULL, 0), 0);
    bb = NULL;
    CHECK_EQ(pp_book_open(s, "B", &bb), 0);
    int nb = 0;
    if (bb) CHECK_EQ(pp_orders(bb, count_order, &nb), 0);
    CHECK_EQ(nb, 50);
    CHECK_EQ(pp_close(s), 0);
    rm_dir(dir);
}

static void test_quarantine_clean_store_lists_nothing(void) {
    const char *dir = t_dir("pp_quarantine_clean");
    const char *names[] = { "A", "B" };
    pp_config cq = cfg_for(dir, PP_LEGACY_LAYOUT | PP_OPEN_QUARANTINE);
    fill(&cq, names, 2, 10);
    pp_store *s = NULL;
    REQUIRE(pp_open(&s, &cq) == 0);
    CHECK_EQ(pp_quarantined(s, NULL, 0), 0);
    int books = 0;
    CHECK_EQ(pp_books(s, count_book, &books), 0);
    CHECK_EQ(books, 2);
    CHECK_EQ(pp_close(s), 0);
    CHECK_EQ(pp_quarantined(NULL, NULL, 0), 0);
    rm_dir(dir);
}

/* format 2: the damage is in the journal every instrument shares */
static void test_quarantine_format2_store_journal_damage_fails_the_store(void) {
    const char *dir = t_dir("pp_quarantine2");
    const char *names[] = { "A", "B" };
    pp_config c = cfg_for(dir, PP_STORE_JOURNAL), cq = cfg_for(dir, PP_STORE_JOURNAL | PP_OPEN_QUARANTINE);
    fill(&c, names, 2, 50);
    char seg[1024];
    snprintf(seg, sizeof seg, "%s/journal/00000000000000000001.ppj", dir);
    damage(seg, 4096 + 24);                         /* inside the first frame, below the durable mark */
    size_t len0 = 0, len1 = 0;
    uint8_t *before = slurp(seg, &len0);
    REQUIRE(before != NULL && len0 > 0);
    pp_store *s = NULL;
    CHECK_EQ(pp_open(&s, &c), PP_ECORRUPT);
    CHECK_EQ(pp_open(&s, &cq), PP_ECORRUPT);        /* cannot be pinned on A or B: fail closed */
    CHECK(s == NULL);
    uint8_t *after = slurp(seg, &len1);
    CHECK(after != NULL && len1 == len0 && memcmp(before, after, len0) == 0);
    free(after);
    free(before);
    rm_dir(dir);
}

/* Format 2: rewrite the frame of book iid with seq `from` to say seq `to`,
 * with a checksum that holds (a frame the journal vouches for, which does
 * not fit its book: a writer's bug, a snapshot that does not match).
 * Returns the frame's file offset, or 0 if not found. */
static long refit_seq(const char *seg, uint32_t iid, uint64_t from, uint64_t to) {
    size_t len = 0;
    uint8_t *buf = slurp(seg, &len);
    uint64_t salt, index, data_bytes;
    long at = 0;
    if (buf && len >= PP__PAGE && pp__sj_hdr_decode(buf, &salt, &index, &data_bytes) == 0) {
        uint32_t seed = pp__seed(salt);
        for (size_t off = PP__PAGE; off + 64 <= len && !at;) {
            uint8_t *f = buf + off;
            uint32_t fl = pp__get32(f);
            if (fl < 64 || fl % 64 || off + fl > len) break;
            if (pp__is_evtype(f[8]) && pp__get32(f + 12) == iid && pp__get64(f + 16) == from) {
                pp__put64(f + 16, to);
                pp__put32(f + 4, pp__sj_crc(seed, index * data_bytes + (off - PP__PAGE), f, fl));
                int fd = open(seg, O_WRONLY);
                if (fd < 0 || pwrite(fd, f, fl, (off_t)off) != (ssize_t)fl) { perror(seg); exit(2); }
                close(fd);
                at = (long)off;
            }
            off += fl;
        }
    }
    free(buf);
    return at;
}
static int list_one(const char *name, void *ctx) { (void)name; (*(int *)ctx)++; return 0; }
/* Format 2: the id under which the store journal (segments 1..8) declares
 * name, or 0 */
static uint32_t decl_iid(const char *dir, const char *name) {
    uint32_t iid = 0;
    for (int k = 1; k <= 8 && !iid; k++) {
        char seg[1024];
        snprintf(seg, sizeof seg, "%s/journal/%020d.ppj", dir, k);
        size_t len = 0;
        uint8_t *buf = slurp(seg, &len);
        for (size_t off = PP__PAGE; buf && off + 64 <= len && !iid;) {
            const uint8_t *f = buf + off;
            uint32_t fl = pp__get32(f);
            if (fl < 64 || fl % 64 || off + fl > len) break;
            if (f[8] == PP__SJ_DECLARE && f[9] == strlen(name) && memcmp(f + 24, name, f[9]) == 0) iid = pp__get32(f + 12);
            off += fl;
        }
        free(buf);
    }
    return iid;
}

/* Format 2: a frame the journal vouches for (its checksum holds) that does
 * not fit its book is that book's problem, not the journal's: with the flag
 * the book is set aside (name, error, file, offset), every other book
 * recovers whole and goes on; the set-aside book is neither recovered nor
 * created, nor retired; its id stays taken and in the catalog; compaction
 * keeps the whole journal while a book is set aside; no frame is rewritten;
 * the next open sets it aside again; without the flag the store fails. */
static void test_quarantine_format2_sets_aside_a_book_whose_frames_do_not_fit(void) {
    const char *dir = t_dir("pp_quarantine2_book");
    const char *names[] = { "A", "B", "C" };
    pp_config c = cfg_for(dir, 0), cq = cfg_for(dir, PP_OPEN_QUARANTINE);
    fill(&c, names, 3, 50);
    char seg[1024];
    snprintf(seg, sizeof seg, "%s/journal/00000000000000000001.ppj", dir);
    uint32_t ib = decl_iid(dir, "B");
    REQUIRE(ib != 0);
    long off = refit_seq(seg, ib, 20, 25);           /* B: seq 19, then 25 */
    REQUIRE(off > 0);
    size_t len0 = 0, len1 = 0;
    uint8_t *before = slurp(seg, &len0);
    REQUIRE(before != NULL && len0 > (size_t)off);
    pp_store *s = NULL;
    CHECK_EQ(pp_open(&s, &c), PP_ECORRUPT);          /* the default stays fail-closed */
    CHECK(s == NULL);
    for (int round = 0; round < 2; round++) {
        REQUIRE(pp_open(&s, &cq) == 0);
        pp_quarantine_info q[2];
        memset(q, 0, sizeof q);
        CHECK_EQ(pp_quarantined(s, q, 2), 1);
        CHECK(strcmp(q[0].instrument, "B") == 0);
        CHECK_EQ(q[0].error, PP_ECORRUPT);
        CHECK(strstr(q[0].file, "journal/00000000000000000001.ppj") != NULL);
        CHECK_EQ(q[0].offset, (uint64_t)off);
        CHECK(strstr(q[0].detail, "after seq 19") != NULL);
        int books = 0;
        CHECK_EQ(pp_books(s, count_book, &books), 0);
        CHECK_EQ(books, 2 + round);                  /* A, C (and D, made in round 0) */
        for (int k = 0; k < 3; k += 2) {             /* A and C: whole */
            pp_book *b = NULL;
            CHECK_EQ(pp_book_open(s, names[k], &b), 0);
            int n = 0;
            if (b) CHECK_EQ(pp_orders(b, count_order, &n), 0);
            CHECK_EQ(n, k == 0 ? 50 + 10 * round : 50);
            if (b) CHECK_EQ(pp_last_seq(b), (uint64_t)(k == 0 ? 50 + 10 * round : 50));
        }
        pp_book *bb = (pp_book *)1;
        CHECK_EQ(pp_book_open(s, "B", &bb), PP_ECORRUPT);
        CHECK(bb == NULL);
        CHECK_EQ(pp_book_retire(s, "B"), PP_ECORRUPT);
        if (round == 0) {                            /* A goes on; a compaction keeps the journal whole */
            pp_book *a = NULL;
            CHECK_EQ(pp_book_open(s, "A", &a), 0);
            for (int i = 51; a && i <= 60; i++) {
                pp_order o;
                memset(&o, 0, sizeof o);
                o.id = (uint64_t)i; o.price = 100; o.qty = 1; o.side = PP_BUY;
                CHECK_EQ(pp_add(a, &o), 0);
            }
            if (a) { CHECK_EQ(pp_snapshot(a), 0); CHECK_EQ(pp_compact(a), 0); }
            pp_book *d = NULL;                       /* a new instrument gets an id of its own */
            CHECK_EQ(pp_book_open(s, "D", &d), 0);
            CHECK(d != NULL);
        }
        CHECK_EQ(pp_close(s), 0);
        CHECK(access(seg, F_OK) == 0);
        uint32_t idd = decl_iid(dir, "D");
        CHECK(idd != 0 && idd != ib);
        CHECK_EQ(decl_iid(dir, "B"), ib);            /* still the store's */
        int listed = 0;
        CHECK_EQ(pp_list(dir, list_one, &listed), 0);
        CHECK_EQ(listed, 4);
    }
    uint8_t *after = slurp(seg, &len1);              /* no frame rewritten (the header page holds the marks) */
    size_t upto = (size_t)off + 4096;
    CHECK(after != NULL && len1 >= upto && memcmp(before + 4096, after + 4096, upto - 4096) == 0);
    free(after);
    free(before);
    CHECK_EQ(pp_open(&s, &c), PP_ECORRUPT);          /* and without the flag, still closed */
    rm_dir(dir);
}

/* Format 2: a book whose own files do not load (here its market-data spec,
 * damaged) is set aside under the flag, named by its directory; the rest
 * opens; its files stay as they were. */
static void test_quarantine_format2_sets_aside_a_book_whose_files_do_not_load(void) {
    const char *dir = t_dir("pp_quarantine2_files");
    const char *names[] = { "A", "B" };
    pp_config c = cfg_for(dir, 0), cq = cfg_for(dir, PP_OPEN_QUARANTINE);
    fill(&c, names, 2, 20);
    pp_store *s = NULL;
    REQUIRE(pp_open(&s, &c) == 0);
    pp_book *b = NULL;
    REQUIRE(pp_book_open(s, "B", &b) == 0);
    pp_md_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.price_scale = 100; sp.size_scale = 100; sp.tick_window_s = 60;
    CHECK_EQ(pp_md_declare(b, &sp), 0);
    CHECK_EQ(pp_snapshot(b), 0);
    CHECK_EQ(pp_close(s), 0);
    char spec[1024], bdir[1024];
    snprintf(spec, sizeof spec, "%s/books/B/md/spec", dir);
    snprintf(bdir, sizeof bdir, "%s/books/B", dir);
    damage(spec, 4);
    size_t len0 = 0, len1 = 0;
    uint8_t *before = slurp(spec, &len0);
    REQUIRE(before != NULL && len0 > 0);
    CHECK_EQ(pp_open(&s, &c), PP_ECORRUPT);
    REQUIRE(pp_open(&s, &cq) == 0);
    pp_quarantine_info q;
    memset(&q, 0, sizeof q);
    CHECK_EQ(pp_quarantined(s, &q, 1), 1);
    CHECK(strcmp(q.instrument, "B") == 0);
    CHECK_EQ(q.error, PP_ECORRUPT);
    CHECK(strcmp(q.file, bdir) == 0);
    CHECK(strstr(q.detail, "cannot be loaded") != NULL);
    pp_book *a = NULL, *bb = (pp_book *)1;
    CHECK_EQ(pp_book_open(s, "A", &a), 0);
    if (a) CHECK_EQ(pp_last_seq(a), 20);
    CHECK_EQ(pp_book_open(s, "B", &bb), PP_ECORRUPT);
    CHECK(bb == NULL);
    CHECK_EQ(pp_close(s), 0);
    uint8_t *after = slurp(spec, &len1);
    CHECK(after != NULL && len1 == len0 && memcmp(before, after, len0) == 0);
    free(after);
    free(before);
    rm_dir(dir);
}

int main(void) {
    RUN(test_quarantine_opens_the_healthy_instruments);
    RUN(test_quarantine_clean_store_lists_nothing);
    RUN(test_quarantine_format2_store_journal_damage_fails_the_store);
    RUN(test_quarantine_format2_sets_aside_a_book_whose_frames_do_not_fit);
    RUN(test_quarantine_format2_sets_aside_a_book_whose_files_do_not_load);
    (void)t_rand;
    return t_done();
}
