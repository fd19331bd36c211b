/* Shared by tests/test_fuzz_*.c: replays every input kept in
 * fuzz/regress/<target>/ through the target's entry point (a crash libFuzzer
 * found stays a regression test in every build). NAME.pending is an input
 * whose fix is pending (counted, not run). Include after t.h; run from the
 * repository root. */
#ifndef TESTS_FUZZ_REPLAY_H
#define TESTS_FUZZ_REPLAY_H
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void t_fuzz_replay(const char *target, int (*one)(const uint8_t *, size_t)) {
    char rd[300]; snprintf(rd, sizeof rd, "fuzz/regress/%s", target);
    DIR *dd = opendir(rd);
    if (!dd) SKIP("no fuzz/regress/<target> (run from the repository root)");
    struct dirent *e;
    int n = 0, pending = 0;
    while ((e = readdir(dd)) != NULL) {
        if (e->d_name[0] == '.') continue;
        size_t nl = strlen(e->d_name);
        if (nl > 8 && !strcmp(e->d_name + nl - 8, ".pending")) { pending++; continue; }
        char p[700]; snprintf(p, sizeof p, "%s/%s", rd, e->d_name);
        FILE *fp = fopen(p, "rb");
        if (!fp) continue;
        fseek(fp, 0, SEEK_END);
        long sz = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        uint8_t *in = (uint8_t *)malloc(sz > 0 ? (size_t)sz : 1);
        size_t len = in && sz > 0 ? fread(in, 1, (size_t)sz, fp) : 0;
        fclose(fp);
        if (!in) continue;
        CHECK_EQ(one(in, len), 0);
        free(in);
        n++;
    }
    closedir(dd);
    CHECK(n >= 1);
    printf("  %s: %d regression inputs replayed, %d pending a fix (*.pending)\n", target, n, pending);
}
#endif
