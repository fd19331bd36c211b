/* SPDX-License-Identifier: MIT */
/* plg_open_errno: the errno behind a failed plg_open, which has no log whose
 * plg_stats.last_errno could be read. */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>

static void quiet(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }

static void test_failed_open_keeps_its_errno(void) {
    const char *d = t_dir("open_errno");
    char file[600], path[700];
    snprintf(file, sizeof file, "%s/a-file", d);
    int fd = open(file, O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    close(fd);
    snprintf(path, sizeof path, "%s/log", file);          /* a log under a regular file */
    plg_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.path = path;
    cfg.log_fn = quiet;
    plg_log *log;
    int rc = plg_open(&log, &cfg);
    CHECK(rc < 0);
    CHECK_EQ(plg_open_errno(), ENOTDIR);
}

static void test_second_writer_sees_ewouldblock_and_success_clears_it(void) {
    const char *d = t_dir("open_errno_lock");
    char path[600];
    snprintf(path, sizeof path, "%s/log", d);
    plg_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.path = path;
    cfg.log_fn = quiet;
    plg_log *a, *b;
    REQUIRE(plg_open(&a, &cfg) == 0);
    CHECK_EQ(plg_open_errno(), 0);
    CHECK_EQ(plg_open(&b, &cfg), PLG_ELOCKED);
    CHECK_EQ(plg_open_errno(), EWOULDBLOCK);
    CHECK_EQ(plg_close(a), 0);
    REQUIRE(plg_open(&a, &cfg) == 0);
    CHECK_EQ(plg_open_errno(), 0);                       /* a successful open clears it */
    CHECK_EQ(plg_close(a), 0);
}

int main(void) {
    (void)t_rand;
    RUN(test_failed_open_keeps_its_errno);
    RUN(test_second_writer_sees_ewouldblock_and_success_clears_it);
    return t_done();
}
