/* picolog.h built WITHOUT PICOLOG_ENCRYPT: a key is refused (never a log
 * written in plaintext under a key), and an encrypted log is told apart
 * from a damaged one. */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "t.h"
#include <dirent.h>
#include <fcntl.h>

static void quiet_log(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }
static const uint8_t key[32] = { 1, 2, 3 };

static int count_segments(const char *dir) {
    DIR *d = opendir(dir); int n = 0; struct dirent *e;
    while (d && (e = readdir(d)) != NULL) n += strstr(e->d_name, ".plg") != NULL;
    if (d) closedir(d);
    return n;
}

static void test_key_without_encrypt_build_is_refused(void) {
    const char *dir = t_dir("enc_off");
    plg_config c;
    memset(&c, 0, sizeof c);
    c.path = dir; c.segment_size = 64 * 1024; c.log_fn = quiet_log;
    c.encrypt_key = key;
    plg_log *L = NULL;
    CHECK_EQ(plg_open(&L, &c), PLG_ENOCRYPT);
    CHECK(L == NULL);
    CHECK_EQ(count_segments(dir), 0);                    /* nothing written */
    c.encrypt_key = NULL;
    REQUIRE(plg_open(&L, &c) == 0);
    CHECK_EQ(plg_append(L, "x", 1), 1);
    CHECK_EQ(plg_close(L), 0);
    plg_reader *r = NULL;
    CHECK_EQ(plg_reader_open_key(&r, dir, key), PLG_ENOCRYPT);
    plg_check_result cr;
    CHECK_EQ(plg_check_key(dir, key, &cr), PLG_ENOCRYPT);
    CHECK(strstr(cr.detail, "PICOLOG_ENCRYPT") != NULL);

    /* the same log marked encrypted (meta cipher, segment version 3): no
     * key is PLG_ENEEDKEY, a key is PLG_ENOCRYPT, never PLG_ECORRUPT */
    plg__meta m;
    REQUIRE(plg__meta_read(dir, &m) == 1);
    m.cipher = 1;
    char name[600];
    snprintf(name, sizeof name, "%s/picolog.meta", dir);
    int fd = open(name, O_RDWR);
    REQUIRE(fd >= 0);
    CHECK_EQ(plg__meta_put(fd, &m), 0);
    close(fd);
    for (int i = 1; i <= 2; i++) {                       /* segment 2 was made ahead */
        snprintf(name, sizeof name, "%s/%020d.plg", dir, i);
        fd = open(name, O_RDWR);
        if (fd < 0) continue;
        uint8_t h[64];
        CHECK_EQ(pread(fd, h, 64, 0), 64);
        plg__put32(h + 8, 3);
        plg__put32(h + 60, plg_crc32c(0, h, 60));
        CHECK_EQ(pwrite(fd, h, 64, 0), 64);
        close(fd);
    }
    CHECK_EQ(plg_open(&L, &c), PLG_ENEEDKEY);
    CHECK_EQ(plg_reader_open(&r, dir), PLG_ENEEDKEY);
    CHECK_EQ(plg_check(dir, &cr), PLG_ENEEDKEY);
    CHECK(strstr(cr.detail, "encrypted") != NULL);
    c.encrypt_key = key;
    CHECK_EQ(plg_open(&L, &c), PLG_ENOCRYPT);
}

int main(void) {
    (void)t_rand;
    RUN(test_key_without_encrypt_build_is_refused);
    return t_done();
}
