// cc -std=c11 -O2 -I. tools/pp_inspect.c -o pp_inspect -luring -lpthread
/*
 * pp_inspect: what is in a pinnacle_persist data directory, read-only.
 *
 *   usage: pp_inspect <data_dir> [instrument...]
 *
 * For every instrument (or the ones named): its journal mode, its snapshots
 * (files, the newest valid one and its order count, any corrupt ones), its
 * journal (segments, the range of sequence numbers, bytes, the durable mark),
 * and what recovery would do: nothing, cut a torn tail (file and offset), or
 * refuse to open because of corruption in the middle (file, offset, why).
 * Exit status: 0 all recoverable, 1 some instrument is corrupt, 2 usage/I/O.
 * It takes no lock: on a directory a store has open, the picture may move.
 */
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>

static int list_dir(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > sl && strcmp(e->d_name + n - sl, suffix) == 0) {
            char p[8192];
            struct stat st;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (stat(p, &st) == 0) printf("      %s  %lld bytes\n", e->d_name, (long long)st.st_size);
        }
    }
    closedir(d);
    return 0;
}

static int inspect(const char *data_dir, const char *name, int verbose) {
    pp_check_result r;
    int rc = pp_check(data_dir, name, &r);
    printf("%s\n", name);
    if (rc == PP_ENOENT || rc == PP_ENAME) { printf("  %s\n", pp_strerror(rc)); return 2; }
    printf("  mode       %s\n", r.mode == PP_JOURNAL_STRICT ? "strict (picolog log in strict/)" : "mmap (journal/)");
    printf("  snapshots  %llu file(s), %llu corrupt", (unsigned long long)r.snapshots, (unsigned long long)r.snapshots_corrupt);
    if (r.snapshots) printf(", seqs %llu..%llu, newest usable has %llu orders", (unsigned long long)r.oldest_snapshot_seq,
                            (unsigned long long)r.newest_snapshot_seq, (unsigned long long)r.snapshot_orders);
    printf("\n");
    printf("  journal    %llu segment(s), seqs %llu..%llu, %llu bytes of entries read, durable mark at seq %llu\n",
           (unsigned long long)r.segments, (unsigned long long)r.journal_first_seq, (unsigned long long)r.journal_last_seq,
           (unsigned long long)r.journal_bytes, (unsigned long long)r.durable_mark_seq);
    if (verbose) {
        char p[8192];
        snprintf(p, sizeof p, "%s/%s/snapshots", data_dir, name);
        list_dir(p, ".pps");
        snprintf(p, sizeof p, "%s/%s/%s", data_dir, name, r.mode == PP_JOURNAL_STRICT ? "strict" : "journal");
        list_dir(p, r.mode == PP_JOURNAL_STRICT ? ".plg" : ".ppj");
    }
    if (rc) {
        printf("  CORRUPT    %s\n             at %s offset %llu: %s\n             recovery refuses to open it (fail closed)\n",
               pp_strerror(rc), r.file, (unsigned long long)r.offset, r.detail);
        return 1;
    }
    if (r.torn_tail)
        printf("  torn tail  at %s offset %llu: %s\n             recovery cuts it (never acknowledged)\n", r.file,
               (unsigned long long)r.offset, r.detail);
    else
        printf("  status     clean\n");
    return 0;
}

int main(int argc, char **argv) {
    int verbose = 0, a = 1;
    if (a < argc && strcmp(argv[a], "-v") == 0) { verbose = 1; a++; }
    if (a >= argc) { fprintf(stderr, "usage: %s [-v] <data_dir> [instrument...]\n", argv[0]); return 2; }
    const char *dir = argv[a++];
    int worst = 0;
    if (a < argc) {
        for (; a < argc; a++) { int r = inspect(dir, argv[a], verbose); if (r > worst) worst = r; }
        return worst;
    }
    DIR *d = opendir(dir);
    if (!d) { perror(dir); return 2; }
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        char p[8192];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (pp_valid_name(e->d_name) != 0 || stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        int r = inspect(dir, e->d_name, verbose);
        if (r > worst) worst = r;
        n++;
    }
    closedir(d);
    printf("%d instrument(s) in %s: %s\n", n, dir, worst == 0 ? "all recoverable" : "SOME CORRUPT");
    return worst;
}
