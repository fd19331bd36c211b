/* SPDX-License-Identifier: MIT */
/* cost - what a picolog log, a pinnacle store, a pinnacle book and a vault
 * handle cost at rest, with default configurations: resident memory, threads,
 * open file descriptors and disk. The README's cost table comes from it.
 *
 *   make build/bench/cost && build/bench/cost [scratch_dir]   (default build/bench/cost_data)
 *
 * Memory is the growth of VmRSS (what was touched), threads the entries of
 * /proc/self/task, descriptors those of /proc/self/fd, disk the blocks
 * allocated under the object's directory (du). Each object is measured
 * after it is opened and one event/record is written and made durable. */
#define PICOLOG_IMPLEMENTATION
#define PINNACLE_PERSIST_IMPLEMENTATION
#define VAULT_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "vault.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct { long rss_kib, threads, fds; } usage;

static long count_dir(const char *path) {
    DIR *d = opendir(path);
    long n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - (strcmp(path, "/proc/self/fd") == 0);   /* opendir's own descriptor */
}

static usage now(void) {
    usage u = {0, count_dir("/proc/self/task"), count_dir("/proc/self/fd")};
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) if (!strncmp(line, "VmRSS:", 6)) u.rss_kib = atol(line + 6);
    if (f) fclose(f);
    return u;
}

static long long du_kib(const char *path) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "du -sk '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    long long k = -1;
    if (p) { if (fscanf(p, "%lld", &k) != 1) k = -1; pclose(p); }
    return k;
}

static void row(const char *what, usage a, usage b, long long disk_kib, int per) {
    printf("%-34s %9ld KiB memory  %3ld threads  %3ld fds  %9lld KiB disk\n", what,
           (b.rss_kib - a.rss_kib) / per, (b.threads - a.threads) / per, (b.fds - a.fds) / per,
           disk_kib < 0 ? -1 : disk_kib / per);
}

int main(int argc, char **argv) {
    const char *base = argc > 1 ? argv[1] : "build/bench/cost_data";
    char p[1024], cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", base, base);
    if (system(cmd) != 0) return 2;
    printf("picolog %s, defaults; per object: resident memory, threads, file descriptors, disk\n", PICOLOG_VERSION_STRING);

    /* a picolog log */
    usage a = now();
    plg_config lc;
    memset(&lc, 0, sizeof lc);
    snprintf(p, sizeof p, "%s/log", base);
    lc.path = p;
    plg_log *log;
    int rc = plg_open(&log, &lc);
    if (rc) { fprintf(stderr, "plg_open: %s\n", plg_strerror(rc)); return 1; }
    int64_t s = plg_append(log, "x", 1);
    plg_wait(log, (uint64_t)s, -1);
    usage b = now();
    row("picolog log", a, b, du_kib(p), 1);
    plg_close(log);

    /* a pinnacle store with no book, then one book, then 10 more books */
    pp_config pc;
    memset(&pc, 0, sizeof pc);
    snprintf(p, sizeof p, "%s/store", base);
    pc.data_dir = p;
    a = now();
    pp_store *st;
    rc = pp_open(&st, &pc);
    if (rc) { fprintf(stderr, "pp_open: %s\n", pp_strerror(rc)); return 1; }
    b = now();
    row("pinnacle store (no book)", a, b, du_kib(p), 1);
    long long disk0 = du_kib(p), disk1 = disk0;   /* format 2: a book's disk is what the store grew by */
    usage c = b;
    char name[32];
    pp_book *bk;
    for (int i = 0; i < 11; i++) {
        snprintf(name, sizeof name, "INST-%d", i);
        rc = pp_book_open(st, name, &bk);
        if (rc) { fprintf(stderr, "pp_book_open: %s\n", pp_strerror(rc)); return 1; }
        pp_order o;
        memset(&o, 0, sizeof o);
        o.id = 1; o.price = 100; o.qty = 1; o.side = PP_BUY;
        if (pp_add(bk, &o) || pp_sync(bk)) { fprintf(stderr, "pp_add/pp_sync failed\n"); return 1; }
        if (i == 0) {
            usage d = now();
            disk1 = du_kib(p);
            row("pinnacle book (first)", c, d, disk1 - disk0, 1);
            c = d;
        }
    }
    b = now();
    row("pinnacle book (each of 10 more)", c, b, du_kib(p) - disk1, 10);
    pp_close(st);

    /* strict mode (format 2): one picolog log for the store, then 10 books */
    snprintf(p, sizeof p, "%s/strict", base);
    pc.mode = PP_JOURNAL_STRICT;
    a = now();
    rc = pp_open(&st, &pc);
    if (rc) { fprintf(stderr, "pp_open strict: %s\n", pp_strerror(rc)); return 1; }
    b = now();
    row("pinnacle store, strict (no book)", a, b, du_kib(p), 1);
    long long strict_disk = du_kib(p);
    a = b;
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "INST-%d", i);
        if ((rc = pp_book_open(st, name, &bk)) != 0) { fprintf(stderr, "strict book: %s\n", pp_strerror(rc)); return 1; }
        pp_order o;
        memset(&o, 0, sizeof o);
        o.id = 1; o.price = 100; o.qty = 1; o.side = PP_BUY;
        if (pp_add(bk, &o) || pp_sync(bk)) { fprintf(stderr, "strict pp_add/pp_sync failed\n"); return 1; }
    }
    b = now();
    row("pinnacle book, strict (each of 10)", a, b, du_kib(p) - strict_disk, 10);
    pp_close(st);

    /* a vault handle */
    snprintf(p, sizeof p, "%s/secure_config.json", base);
    vault_options vo;
    memset(&vo, 0, sizeof vo);
    vo.iterations = 1000; vo.min_iterations = 1000;
    a = now();
    vault *v;
    rc = vault_create_ex(&v, p, "pw", &vo);
    if (rc) { fprintf(stderr, "vault_create: %s\n", vault_strerror(rc)); return 1; }
    vault_set(v, "api_key", "0123456789abcdef");
    vault_save(v);
    b = now();
    row("vault handle (one credential)", a, b, du_kib(p), 1);
    vault_close(v);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : 2;
}
