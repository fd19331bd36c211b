/* pinnacle_persist.h, encryption at rest (pp_config.encrypt_key; strict
 * mode on the store journal, PICOLOG_ENCRYPT):
 *   - no plaintext of an order, a payload, a tick or a connection blob in
 *     any file of the data directory (temp files, set-aside snapshots and
 *     the log's quarantine included), while the same store unencrypted
 *     shows every pattern (so the search can fail); everything comes back
 *     with the key;
 *   - without the key PP_ENEEDKEY, another key PP_EKEY, a key for a plain
 *     store PP_EPLAIN, mmap mode or the per-instrument layout PP_ENOTSUP,
 *     keys in strict_log PP_ECONFIG; pp_check without a key PP_ENEEDKEY;
 *     none of them changes a file; the read-only calls (pp_check, the
 *     journal reader, pp_book_at_dir) with pp_read_keys;
 *   - a flipped byte of a sealed snapshot (ciphertext or tag) or a snapshot
 *     replaced by a plain one is set aside as corrupt, and the books come
 *     back from the journal; a flipped ciphertext byte of an acknowledged
 *     journal record is PP_ECORRUPT naming the log's segment file;
 *   - a tampered connection blob is PP_ECORRUPT;
 *   - key rotation: new files under the new key, the old still read while
 *     its key is given (PP_EKEY without it);
 *   - with archive_dir, the log's archived segments stay sealed and the
 *     history readers decrypt them (the offline one with pp_read_keys).
 * Known answers of the file construction: test_seal_known_answer. */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wunused-function"   /* t.h helpers this test does not use */
#define VAULT_IMPLEMENTATION
#include "vault.h"
#define PICOLOG_ENCRYPT
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "t.h"
#include <dirent.h>
#include <fcntl.h>

#define OK(call) do { int ok_rc_ = (call); CHECK_EQ(ok_rc_, 0); if (ok_rc_) return; } while (0)
static char last_msg[1024];
static void keep(void *u, int code, const char *msg) {
    (void)u; (void)code;
    snprintf(last_msg, sizeof last_msg, "%s", msg);
}

static const uint8_t KEY_A[32] = "pinnacle-test-data-key-A-0123456";
static const uint8_t KEY_B[32] = "pinnacle-test-data-key-B-6543210";

static plg_config tpl;
static pp_config cfg_for(const char *dir, const uint8_t *key) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.mode = PP_JOURNAL_STRICT;
    c.flags = PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT;
    c.keep_snapshots = 3;
    c.log_fn = keep;
    c.encrypt_key = key;
    memset(&tpl, 0, sizeof tpl);
    tpl.segment_size = 256 << 10;
    tpl.ring_capacity = 1 << 20;
    tpl.io_mode = PLG_IO_BUFFERED_FDATASYNC;
    tpl.log_fn = keep;
    c.strict_log = &tpl;
    return c;
}

/* Patterns that would show a record in clear: an order's price and id
 * (8 bytes each, little-endian as the frames hold them), a payload, a
 * tick's price and a connection blob. */
#define PRICE0 0x5EC2E7A1B2C3D4E5ll
#define ID0    0x0DDBA11C0FFEE000ull
#define PAYLOAD "client-order-7f3a9c"
#define TICKPX 0x7A11CEB0B0CAFE01ll
#define CONN   "fix-session-seqnum-4471-secret"

static void fill(pp_store *s, int rounds) {
    pp_book *b;
    if (pp_book_open(s, "SECRET", &b)) return;
    pp_md_spec sp;
    memset(&sp, 0, sizeof sp);
    if (pp_md_declare(b, &sp)) return;
    for (int r = 0; r < rounds; r++) {
        for (uint64_t i = 0; i < 200; i++) {
            pp_event e;
            memset(&e, 0, sizeof e);
            e.type = PP_EV_ADD; e.order_id = ID0 + (uint64_t)r * 1000 + i; e.side = PP_BUY;
            e.price = PRICE0 + (int64_t)i; e.qty = 5; e.ts_ns = 1;
            e.payload = PAYLOAD; e.payload_len = (uint32_t)strlen(PAYLOAD);
            CHECK_EQ(pp_apply(b, &e), 0);
        }
        pp_tick t;
        memset(&t, 0, sizeof t);
        t.exch_seq = (uint64_t)r + 1; t.exch_ts_ns = 1000000000ull * (uint64_t)(r + 1); t.recv_ts_ns = t.exch_ts_ns;
        t.price = TICKPX; t.size = 1; t.bid = TICKPX - 1; t.ask = TICKPX + 1; t.bid_size = t.ask_size = 1;
        CHECK_EQ(pp_tick_append(b, &t), 0);
        CHECK_EQ(pp_sync(b), 0);
        CHECK_EQ(pp_snapshot(b), 0);
    }
    CHECK_EQ(pp_conn_put(s, "feed1", CONN, strlen(CONN)), 0);
    CHECK_EQ(pp_compact(b), 0);        /* writes the catalog: the next open loads snapshots before the journal */
}

/* Does any file under dir (recursively) hold the n bytes of pat? */
static int holds(const char *dir, const void *pat, size_t n) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) { found = holds(p, pat, n); continue; }
        FILE *f = fopen(p, "rb");
        if (!f) continue;
        uint8_t *buf = (uint8_t *)malloc((size_t)st.st_size + 1);
        size_t got = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
        fclose(f);
        for (size_t i = 0; buf && got >= n && i + n <= got && !found; i++) found = memcmp(buf + i, pat, n) == 0;
        free(buf);
    }
    closedir(d);
    return found;
}

static int count_plain_patterns(const char *dir) {
    int64_t px = PRICE0 + 7, tp = TICKPX;
    uint64_t id = ID0 + 1005;
    return holds(dir, &px, 8) + holds(dir, &id, 8) + holds(dir, PAYLOAD, strlen(PAYLOAD)) + holds(dir, &tp, 8) +
           holds(dir, CONN, strlen(CONN));
}

static int count_suffix(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l >= sl && !strcmp(e->d_name + l - sl, suffix)) n++;
    }
    if (d) closedir(d);
    return n;
}

static void check_book(pp_store *s, uint64_t orders) {
    pp_book *b;
    if (pp_book_open(s, "SECRET", &b)) { CHECK(0); return; }
    CHECK_EQ(pp_order_count(b), orders);
    pp_order o;
    CHECK_EQ(pp_find(b, ID0 + 1005, &o), 0);
    CHECK_EQ(o.price, PRICE0 + 5);
    CHECK_EQ(o.payload_len, strlen(PAYLOAD));
    CHECK(o.payload && memcmp(o.payload, PAYLOAD, strlen(PAYLOAD)) == 0);
    pp_tick t;
    CHECK_EQ(pp_md_last(b, &t), 0);
    CHECK_EQ(t.price, TICKPX);
    char buf[64];
    CHECK_EQ(pp_conn_get(s, "feed1", buf, sizeof buf), (int64_t)strlen(CONN));
    CHECK(memcmp(buf, CONN, strlen(CONN)) == 0);
}

static int count_visit(const pp_order *o, void *ctx) { (void)o; ++*(uint64_t *)ctx; return 0; }

static void test_no_plaintext_on_disk(void) {
    /* the same store in clear first: every pattern is found (the search works) */
    const char *pdir = t_dir("ppe_plain");
    pp_config pc = cfg_for(pdir, NULL);
    pp_store *s;
    OK(pp_open(&s, &pc));
    fill(s, 3);
    CHECK_EQ(pp_close(s), 0);
    CHECK_EQ(count_plain_patterns(pdir), 5);

    const char *dir = t_dir("ppe_sealed");
    pp_config c = cfg_for(dir, KEY_A);
    OK(pp_open(&s, &c));
    fill(s, 3);
    CHECK_EQ(pp_close(s), 0);
    CHECK_EQ(count_plain_patterns(dir), 0);
    char sd[4096];
    snprintf(sd, sizeof sd, "%s/books/SECRET/snapshots", dir);
    CHECK(count_suffix(sd, ".pps") >= 3);     /* the snapshots are there, sealed */

    OK(pp_open(&s, &c));
    check_book(s, 600);
    pp_journal *j;
    OK(pp_journal_open(s, "SECRET", 1, &j));
    pp_event ev;
    int k, n = 0, pl = 0;
    while ((k = pp_journal_next(j, &ev)) == 1) { n++; pl += ev.payload_len == strlen(PAYLOAD); }
    CHECK_EQ(k, 0);
    CHECK_EQ(pl, 600);
    CHECK(n >= 600);
    pp_journal_close(j);
    /* pp_book_at reads a sealed snapshot and the sealed journal */
    uint64_t at = 0;
    CHECK_EQ(pp_book_at(s, "SECRET", 250, count_visit, &at), 0);
    CHECK(at > 0);
    CHECK_EQ(pp_close(s), 0);
    CHECK_EQ(count_plain_patterns(dir), 0);
}

/* Every file of dir with its size and mtime, to show an open changed nothing. */
static void fingerprint(const char *dir, char *out, size_t cap) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "cd '%s' && find . -type f ! -name LOCK -printf '%%p %%s %%T@\\n' | sort", dir);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = 0;
    if (f) pclose(f);
}

static void test_key_errors(void) {
    const char *dir = t_dir("ppe_keys");
    pp_config c = cfg_for(dir, KEY_A);
    pp_store *s;
    OK(pp_open(&s, &c));
    fill(s, 2);
    CHECK_EQ(pp_close(s), 0);
    static char before[1 << 16], after[1 << 16];
    fingerprint(dir, before, sizeof before);
    CHECK(strstr(before, ".pps") != NULL);
    CHECK(strstr(before, "instruments.ppc") != NULL);

    pp_config none = cfg_for(dir, NULL);
    CHECK_EQ(pp_open(&s, &none), PP_ENEEDKEY);
    pp_config wrong = cfg_for(dir, KEY_B);
    CHECK_EQ(pp_open(&s, &wrong), PP_EKEY);
    pp_config mm = cfg_for(dir, KEY_A);
    mm.mode = PP_JOURNAL_MMAP;
    CHECK_EQ(pp_open(&s, &mm), PP_ENOTSUP);
    pp_config leg = cfg_for(dir, KEY_A);
    leg.flags |= PP_LEGACY_LAYOUT;
    CHECK_EQ(pp_open(&s, &leg), PP_ENOTSUP);
    pp_config inlog = cfg_for(dir, NULL);
    tpl.encrypt_key = KEY_A;           /* the log alone: the snapshots would stay in clear */
    CHECK_EQ(pp_open(&s, &inlog), PP_ECONFIG);
    pp_config many = cfg_for(dir, KEY_A);
    const uint8_t *olds[PLG_MAX_KEYS];
    for (int i = 0; i < PLG_MAX_KEYS; i++) olds[i] = KEY_B;
    many.old_keys = olds; many.n_old_keys = PLG_MAX_KEYS;
    CHECK_EQ(pp_open(&s, &many), PP_ECONFIG);
    pp_check_result r;
    CHECK_EQ(pp_check(dir, "SECRET", &r), PP_ENEEDKEY);
    /* the read-only calls with the keys pp_read_keys gives this thread */
    const uint8_t *ka[1] = { KEY_A }, *kb[1] = { KEY_B };
    OK(pp_read_keys(ka, 1));
    CHECK_EQ(pp_check(dir, "SECRET", &r), 0);
    CHECK_EQ(r.mode, PP_JOURNAL_STRICT);
    CHECK_EQ(r.snapshots_corrupt, 0);
    pp_journal *j;
    OK(pp_journal_open_dir(dir, "SECRET", 1, &j));
    pp_event ev;
    int k, pl = 0;
    while ((k = pp_journal_next(j, &ev)) == 1) pl += ev.payload_len == strlen(PAYLOAD) && !memcmp(ev.payload, PAYLOAD, ev.payload_len);
    CHECK_EQ(k, 0);
    CHECK_EQ(pl, 400);
    pp_journal_close(j);
    uint64_t at = 0;
    CHECK_EQ(pp_book_at_dir(dir, NULL, "SECRET", 300, count_visit, &at), 0);
    CHECK(at > 0);
    OK(pp_read_keys(kb, 1));
    CHECK_EQ(pp_check(dir, "SECRET", &r), PP_EKEY);
    OK(pp_read_keys(NULL, 0));
    CHECK_EQ(pp_check(dir, "SECRET", &r), PP_ENEEDKEY);
    CHECK_EQ(pp_journal_open_dir(dir, "SECRET", 1, &j), PP_ENEEDKEY);
    fingerprint(dir, after, sizeof after);
    CHECK(strcmp(before, after) == 0);  /* nothing renamed, rewritten or set aside */

    /* a key for a plain store */
    const char *pdir = t_dir("ppe_keys_plain");
    pp_config pc = cfg_for(pdir, NULL);
    OK(pp_open(&s, &pc));
    fill(s, 1);
    CHECK_EQ(pp_close(s), 0);
    fingerprint(pdir, before, sizeof before);
    pp_config pk = cfg_for(pdir, KEY_A);
    CHECK_EQ(pp_open(&s, &pk), PP_EPLAIN);
    fingerprint(pdir, after, sizeof after);
    CHECK(strcmp(before, after) == 0);

    OK(pp_open(&s, &c));               /* the right key still opens it whole */
    check_book(s, 400);
    CHECK_EQ(pp_close(s), 0);
}

static void flip_at(const char *path, long off) {
    int fd = open(path, O_RDWR);
    REQUIRE(fd >= 0);
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    if (off < 0) off += (long)st.st_size;
    uint8_t x;
    REQUIRE(pread(fd, &x, 1, off) == 1);
    x ^= 0x01;
    REQUIRE(pwrite(fd, &x, 1, off) == 1);
    close(fd);
}

static void newest_snapshot(const char *dir, char *p, size_t cap) {
    char sd[4096];
    snprintf(sd, sizeof sd, "%s/books/SECRET/snapshots", dir);
    DIR *d = opendir(sd);
    struct dirent *e;
    char best[256] = "";
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".pps") && strcmp(e->d_name, best) > 0) snprintf(best, sizeof best, "%s", e->d_name);
    }
    if (d) closedir(d);
    snprintf(p, cap, "%s/%s", sd, best);
}

static void test_damaged_snapshots_are_set_aside(void) {
    /* three cases on the newest snapshot: a ciphertext byte, a tag byte,
     * and a plain snapshot put in its place; each is set aside (.corrupt)
     * and the book comes back whole from the older snapshot and the journal */
    for (int kind = 0; kind < 3; kind++) {
        const char *dir = t_dir("ppe_snapflip");
        pp_config c = cfg_for(dir, KEY_A);
        pp_store *s;
        OK(pp_open(&s, &c));
        fill(s, 3);
        CHECK_EQ(pp_close(s), 0);
        char p[4200], sd[4096];
        newest_snapshot(dir, p, sizeof p);
        if (kind == 0) flip_at(p, 64 + 100);          /* ciphertext */
        else if (kind == 1) flip_at(p, -5);           /* the tag */
        else {                                        /* a plain file of the same name */
            FILE *f = fopen(p, "wb");
            REQUIRE(f != NULL);
            uint8_t h[80];
            memset(h, 0, sizeof h);
            memcpy(h, "PPSNAP01", 8);
            fwrite(h, 1, sizeof h, f);
            fclose(f);
        }
        last_msg[0] = 0;
        OK(pp_open(&s, &c));
        check_book(s, 600);
        CHECK_EQ(pp_close(s), 0);
        snprintf(sd, sizeof sd, "%s/books/SECRET/snapshots", dir);
        CHECK_EQ(count_suffix(sd, ".corrupt"), 1);
    }
}

/* A snapshot sealed under a key that was not given is a key matter (the
 * open fails with PP_EKEY and sets nothing aside), not damage. */
static void test_snapshot_under_another_key(void) {
    const char *bdir = t_dir("ppe_otherkey_b");
    pp_config cb = cfg_for(bdir, KEY_B);
    pp_store *s;
    OK(pp_open(&s, &cb));
    fill(s, 1);
    CHECK_EQ(pp_close(s), 0);
    char pb[4200], pa[4200], sd[4096];
    newest_snapshot(bdir, pb, sizeof pb);
    const char *dir = t_dir("ppe_otherkey");
    pp_config c = cfg_for(dir, KEY_A);
    OK(pp_open(&s, &c));
    fill(s, 2);
    CHECK_EQ(pp_close(s), 0);
    newest_snapshot(dir, pa, sizeof pa);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", pb, pa);
    REQUIRE(system(cmd) == 0);
    last_msg[0] = 0;
    CHECK_EQ(pp_open(&s, &c), PP_EKEY);
    CHECK(strstr(last_msg, "key id") != NULL);
    if (!strstr(last_msg, "key id")) fprintf(stderr, "  message: %s\n", last_msg);
    snprintf(sd, sizeof sd, "%s/books/SECRET/snapshots", dir);
    CHECK_EQ(count_suffix(sd, ".corrupt"), 0);
}

static void test_flipped_journal_byte_fails_closed(void) {
    const char *dir = t_dir("ppe_jflip");
    pp_config c = cfg_for(dir, KEY_A);
    pp_store *s;
    OK(pp_open(&s, &c));
    fill(s, 1);
    CHECK_EQ(pp_close(s), 0);
    char jd[4096];
    snprintf(jd, sizeof jd, "%s/journal", dir);
    plg_reader *rd;
    OK(plg_reader_open_key(&rd, jd, KEY_A));
    uint64_t off = 0;
    const char *file = plg_reader_where(rd, &off);
    REQUIRE(file != NULL);
    char p[4096];
    snprintf(p, sizeof p, "%s", file);
    plg_record rec;
    REQUIRE(plg_reader_next(rd, &rec) == 1 && rec.len >= 64);
    plg_reader_close(rd);
    flip_at(p, (long)off + 40 + 16);   /* past the fragment header and the tag: ciphertext */
    last_msg[0] = 0;
    CHECK_EQ(pp_open(&s, &c), PP_ECORRUPT);
    CHECK(strstr(last_msg, ".plg") != NULL);
    if (!strstr(last_msg, ".plg")) fprintf(stderr, "  message: %s\n", last_msg);
}

static void test_tampered_conn_blob(void) {
    const char *dir = t_dir("ppe_conn");
    pp_config c = cfg_for(dir, KEY_A);
    pp_store *s;
    OK(pp_open(&s, &c));
    CHECK_EQ(pp_conn_put(s, "feed1", CONN, strlen(CONN)), 0);
    char buf[64], p[4096];
    CHECK_EQ(pp_conn_get(s, "feed1", buf, sizeof buf), (int64_t)strlen(CONN));
    snprintf(p, sizeof p, "%s/.conn/feed1", dir);
    flip_at(p, 64 + 3);
    CHECK_EQ(pp_conn_get(s, "feed1", buf, sizeof buf), PP_ECORRUPT);
    CHECK_EQ(pp_close(s), 0);
}

static void test_key_rotation(void) {
    const char *dir = t_dir("ppe_rotate");
    pp_config c = cfg_for(dir, KEY_A);
    pp_store *s;
    OK(pp_open(&s, &c));
    fill(s, 2);
    CHECK_EQ(pp_close(s), 0);
    const uint8_t *olds[1] = { KEY_A };
    pp_config r = cfg_for(dir, KEY_B);
    r.old_keys = olds; r.n_old_keys = 1;
    OK(pp_open(&s, &r));
    pp_book *b;
    OK(pp_book_open(s, "SECRET", &b));
    pp_order o;
    memset(&o, 0, sizeof o);
    o.id = 77; o.price = 5; o.qty = 1; o.side = PP_SELL;
    CHECK_EQ(pp_add(b, &o), 0);
    CHECK_EQ(pp_sync(b), 0);
    CHECK_EQ(pp_snapshot(b), 0);       /* sealed under B */
    CHECK_EQ(pp_close(s), 0);
    pp_config onlyb = cfg_for(dir, KEY_B);
    CHECK_EQ(pp_open(&s, &onlyb), PP_EKEY);     /* the journal still holds segments under A */
    pp_config onlya = cfg_for(dir, KEY_A);
    CHECK_EQ(pp_open(&s, &onlya), PP_EKEY);     /* and a segment under B */
    OK(pp_open(&s, &r));
    check_book(s, 401);
    CHECK_EQ(pp_close(s), 0);
}

/* The file construction against values computed independently here with
 * vault.h's primitives: the key id is picolog's, the tag covers the
 * header, the name and the ciphertext, and the plaintext comes back. */
static void test_seal_known_answer(void) {
    const char *dir = t_dir("ppe_kat");
    pp_config c = cfg_for(dir, KEY_A);
    pp__fkeys *fk;
    OK(pp__fkeys_make(&c, &fk));
    char p[4096];
    snprintf(p, sizeof p, "%s/x.bin", dir);
    const char msg[] = "sealed: 32 bytes and then some more";
    CHECK_EQ(pp__write_file_k(fk, p, msg, sizeof msg, 0600), 0);
    uint8_t *raw; size_t n;
    OK(pp__read_file(p, &raw, &n));
    CHECK_EQ(n, 64 + (sizeof msg / 16 + 1) * 16 + 32);
    CHECK(memcmp(raw, "PPSEAL01", 8) == 0);
    uint8_t t[32], kenc[32], kmac[32], tag[32];
    vault_hmac_sha256(KEY_A, 32, "picolog v1 key id", 18, t);
    uint64_t id = 0;
    for (int i = 7; i >= 0; i--) id = id << 8 | t[i];
    CHECK(pp__get64(raw + 16) == id);
    CHECK_EQ(pp__get64(raw + 24), sizeof msg);
    vault_hmac_sha256(KEY_A, 32, "pinnacle v1 file enc", 21, kenc);
    vault_hmac_sha256(KEY_A, 32, "pinnacle v1 file mac", 21, kmac);
    size_t ct = n - 64 - 32;
    uint8_t *m = (uint8_t *)malloc(64 + 6 + ct);
    REQUIRE(m != NULL);
    memcpy(m, raw, 64); memcpy(m + 64, "x.bin", 6); memcpy(m + 70, raw + 64, ct);
    vault_hmac_sha256(kmac, 32, m, 70 + ct, tag);
    CHECK(memcmp(tag, raw + 64 + ct, 32) == 0);
    uint8_t out[128]; size_t got = 0;
    CHECK_EQ(vault_aes256_cbc_decrypt(kenc, raw + 32, raw + 64, ct, out, &got), 0);
    CHECK_EQ(got, sizeof msg);
    CHECK(memcmp(out, msg, sizeof msg) == 0);
    /* the same bytes under another name do not open: the name is under the tag */
    char q[4096];
    snprintf(q, sizeof q, "%s/y.bin", dir);
    CHECK_EQ(rename(p, q), 0);
    uint8_t *back; size_t bl; char why[128];
    CHECK_EQ(pp__read_file_k(fk, q, &back, &bl, why, sizeof why), PP_ECORRUPT);
    CHECK(strstr(why, "tag") != NULL);
    CHECK_EQ(rename(q, p), 0);
    OK(pp__read_file_k(fk, p, &back, &bl, why, sizeof why));
    CHECK_EQ(bl, sizeof msg);
    CHECK(memcmp(back, msg, sizeof msg) == 0);
    free(back); free(m); free(raw);
    pp__fkeys_free(fk);
}

/* An encrypted strict store with archive_dir: the segments picolog moves to
 * the archive stay sealed (no pattern in clear under the archive), and the
 * history readers decrypt them: pp_journal_open from seq 1 with every
 * payload verbatim; pp_journal_open_archive without the store needs the
 * key (PP_ENEEDKEY), and reads it all with pp_read_keys. */
static int archived_history(pp_journal *j, uint64_t *n) {
    pp_event ev;
    int k, bad = 0;
    *n = 0;
    while ((k = pp_journal_next(j, &ev)) == 1) {
        ++*n;
        if (ev.seq != *n) bad++;
        if (ev.type == PP_EV_ADD && (ev.payload_len != strlen(PAYLOAD) || memcmp(ev.payload, PAYLOAD, strlen(PAYLOAD)))) bad++;
    }
    pp_journal_close(j);
    return k < 0 ? k : bad;
}
static void test_archive_stays_sealed(void) {
    const char *dir = t_dir("ppe_archive");
    const char *adir = t_dir("ppe_archive_to");
    pp_config c = cfg_for(dir, KEY_A);
    c.archive_dir = adir;
    c.keep_snapshots = 1;
    pp_store *s; pp_book *b;
    OK(pp_open(&s, &c));
    OK(pp_book_open(s, "SECRET", &b));
    uint64_t seq = 0;
    for (uint64_t i = 0; i < 6000; i++) {
        pp_event e;
        memset(&e, 0, sizeof e);
        e.type = PP_EV_ADD; e.order_id = ID0 + i; e.side = PP_BUY; e.price = PRICE0 + 7; e.qty = 5; e.ts_ns = 1;
        e.payload = PAYLOAD; e.payload_len = (uint32_t)strlen(PAYLOAD);
        OK(pp_apply(b, &e));
        OK(pp_cancel(b, ID0 + i));
        seq += 2;
    }
    CHECK_EQ(pp_sync(b), 0);
    OK(pp_snapshot(b));
    CHECK_EQ(pp_compact(b), 0);
    char a1[4096];
    snprintf(a1, sizeof a1, "%s/journal/%020u.plg", adir, 1u);
    struct stat st;
    for (int i = 0; i < 3000 && stat(a1, &st) != 0; i++) usleep(1000);   /* picolog's segment thread */
    REQUIRE(stat(a1, &st) == 0);
    CHECK_EQ(holds(adir, PAYLOAD, strlen(PAYLOAD)), 0);
    int64_t px = PRICE0 + 7;
    CHECK_EQ(holds(adir, &px, 8), 0);
    pp_journal *j = NULL;
    uint64_t n = 0;
    OK(pp_journal_open(s, "SECRET", 1, &j));
    CHECK_EQ(archived_history(j, &n), 0);
    CHECK_EQ(n, seq);
    CHECK_EQ(pp_close(s), 0);
    CHECK_EQ(pp_journal_open_archive(dir, adir, "SECRET", 1, &j), PP_ENEEDKEY);
    const uint8_t *ka[1] = {KEY_A};
    OK(pp_read_keys(ka, 1));
    CHECK_EQ(pp_journal_open_archive(dir, adir, "SECRET", 1, &j), 0);
    if (j) { CHECK_EQ(archived_history(j, &n), 0); CHECK_EQ(n, seq); }
    OK(pp_read_keys(NULL, 0));
}

int main(void) {
    RUN(test_seal_known_answer);
    RUN(test_no_plaintext_on_disk);
    RUN(test_key_errors);
    RUN(test_damaged_snapshots_are_set_aside);
    RUN(test_snapshot_under_another_key);
    RUN(test_flipped_journal_byte_fails_closed);
    RUN(test_tampered_conn_blob);
    RUN(test_key_rotation);
    RUN(test_archive_stays_sealed);
    return t_done();
}
