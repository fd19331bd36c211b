/* SPDX-License-Identifier: MIT */
/* pp_inspect - what is in a pinnacle_persist data directory, read-only.
 *
 *   cc -std=c11 -O2 -I. tools/pp_inspect.c -o pp_inspect -luring -lpthread
 *   pp_inspect [-v] [--json] [--stats] DATA_DIR [INSTRUMENT...]
 *
 * For every instrument (or the ones named): its journal mode, its snapshots
 * (files, the newest valid one and its order count, any corrupt ones), its
 * journal (segments, the range of sequence numbers, bytes, the durable mark),
 * and what recovery would do: nothing, cut a torn tail (file and offset), or
 * refuse to open because of corruption in the middle (file, offset, why).
 * Exit status: 0 ok, 1 damage found, 2 usage or I/O error (a permission
 * error is not damage). It takes no lock: on a directory a store has open,
 * the picture may move. The manual page is docs/man/pp_inspect.1. */
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "tool.h"

#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *usage_text =
    "usage: pp_inspect [OPTIONS] DATA_DIR [INSTRUMENT...]\n"
    "Report what a pinnacle_persist data directory holds and what recovery would\n"
    "do with each instrument (all of them, or the ones named). Read-only, no lock.\n"
    "\n"
    "  -v, --verbose        also list each snapshot and journal file with its size\n"
    "  -S, --stats          totals over the instruments: segments, journal bytes,\n"
    "                       snapshots, sequence numbers, bytes on disk\n"
    "  -j, --json           JSON Lines: one object per instrument (\"type\":\"instrument\"),\n"
    "                       then one \"summary\" object\n"
    "  -h, --help           this text\n"
    "On a terminal, progress (instrument i of n) goes to stderr; never otherwise.\n"
    "Journal events are not printed: pinnacle_persist.h has no public read-only\n"
    "journal reader (pp_check only reports ranges and damage).\n"
    "  -V, --version        the pinnacle_persist version\n"
    "\n"
    TOOL_EXIT_HELP
    "  (an instrument that cannot be read for lack of permission is exit 2, not 1)\n"
    "\n"
    "Examples:\n"
    "  pp_inspect /var/lib/engine\n"
    "  pp_inspect --json /var/lib/engine BTC-USD\n";

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "pp_inspect: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'pp_inspect --help'.\n");
    return TOOL_USAGE_OR_IO;
}

static int exit_for(int rc) {
    if (rc == 0) return TOOL_OK;
    return rc == PP_ECORRUPT || rc == PP_EFORMAT ? TOOL_DAMAGE : TOOL_USAGE_OR_IO;
}

typedef struct {
    unsigned long long instruments, damaged, unreadable, torn, segments, journal_bytes, snapshots, snapshots_corrupt;
    unsigned long long events, disk_bytes;
} totals;

/* Allocated bytes under path (files and directories, not following links). */
static unsigned long long du(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return 0;
    unsigned long long total = (unsigned long long)sb.st_blocks * 512;
    if (!S_ISDIR(sb.st_mode)) return total;
    DIR *d = opendir(path);
    if (!d) return total;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        total += du(p);
    }
    closedir(d);
    return total;
}

static void list_dir(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d) return;
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
}

static void print_json(const char *name, int rc, const pp_check_result *r, unsigned long long disk) {
    const char *status = rc == 0 ? (r->torn_tail ? "torn_tail" : "clean") : exit_for(rc) == TOOL_DAMAGE ? "corrupt" : "error";
    printf("{\"type\":\"instrument\",\"name\":");
    tool_json_str(stdout, name);
    printf(",\"status\":\"%s\",\"mode\":\"%s\",\"snapshots\":%llu,\"snapshots_corrupt\":%llu,"
           "\"oldest_snapshot_seq\":%llu,\"newest_snapshot_seq\":%llu,\"snapshot_orders\":%llu,"
           "\"segments\":%llu,\"journal_first_seq\":%llu,\"journal_last_seq\":%llu,\"journal_bytes\":%llu,"
           "\"durable_mark_seq\":%llu,\"disk_bytes\":%llu,\"file\":",
           status, r->mode == PP_JOURNAL_STRICT ? "strict" : "mmap", (unsigned long long)r->snapshots,
           (unsigned long long)r->snapshots_corrupt, (unsigned long long)r->oldest_snapshot_seq,
           (unsigned long long)r->newest_snapshot_seq, (unsigned long long)r->snapshot_orders,
           (unsigned long long)r->segments, (unsigned long long)r->journal_first_seq,
           (unsigned long long)r->journal_last_seq, (unsigned long long)r->journal_bytes,
           (unsigned long long)r->durable_mark_seq, disk);
    tool_json_str(stdout, r->file);
    printf(",\"offset\":%llu,\"error\":", (unsigned long long)r->offset);
    if (rc) tool_json_str(stdout, pp_strerror(rc)); else printf("null");
    printf(",\"detail\":");
    tool_json_str(stdout, r->detail);
    printf("}\n");
}

/* Progress on stderr when it is a terminal: "checking i of n: NAME", wiped
 * before anything goes to stdout (which may be the same terminal). */
static int progress_on, progress_shown;
static void progress_clear(void) {
    if (!progress_shown) return;
    fprintf(stderr, "\r%-79s\r", "");
    fflush(stderr);
    progress_shown = 0;
}

static int inspect(const char *data_dir, const char *name, int verbose, int json, totals *t) {
    pp_check_result r;
    int rc = pp_check(data_dir, name, &r);
    int code = exit_for(rc);
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", data_dir, name);
    unsigned long long disk = du(p);
    progress_clear();
    t->instruments++;
    if (code == TOOL_DAMAGE) t->damaged++;
    else if (code) t->unreadable++;
    else if (r.torn_tail) t->torn++;
    t->segments += r.segments; t->journal_bytes += r.journal_bytes; t->disk_bytes += disk;
    t->snapshots += r.snapshots; t->snapshots_corrupt += r.snapshots_corrupt;
    if (r.journal_last_seq >= r.journal_first_seq && r.journal_last_seq) t->events += r.journal_last_seq - r.journal_first_seq + 1;
    if (json) { print_json(name, rc, &r, disk); return code; }
    printf("%s\n", name);
    if (rc == PP_ENOENT || rc == PP_ENAME) { printf("  ERROR      %s\n", pp_strerror(rc)); return code; }
    printf("  mode       %s\n", r.mode == PP_JOURNAL_STRICT ? "strict (picolog log in strict/)" : "mmap (journal/)");
    printf("  snapshots  %llu file(s), %llu corrupt", (unsigned long long)r.snapshots, (unsigned long long)r.snapshots_corrupt);
    if (r.snapshots) printf(", seqs %llu..%llu, newest usable has %llu orders", (unsigned long long)r.oldest_snapshot_seq,
                            (unsigned long long)r.newest_snapshot_seq, (unsigned long long)r.snapshot_orders);
    printf("\n");
    printf("  journal    %llu segment(s), seqs %llu..%llu, %llu bytes of entries read, durable mark at seq %llu\n",
           (unsigned long long)r.segments, (unsigned long long)r.journal_first_seq, (unsigned long long)r.journal_last_seq,
           (unsigned long long)r.journal_bytes, (unsigned long long)r.durable_mark_seq);
    if (verbose) {
        snprintf(p, sizeof p, "%s/%s/snapshots", data_dir, name);
        list_dir(p, ".pps");
        snprintf(p, sizeof p, "%s/%s/%s", data_dir, name, r.mode == PP_JOURNAL_STRICT ? "strict" : "journal");
        list_dir(p, r.mode == PP_JOURNAL_STRICT ? ".plg" : ".ppj");
    }
    if (code == TOOL_DAMAGE)
        printf("  CORRUPT    %s\n             at %s offset %llu: %s\n             recovery refuses to open it (fail closed)\n",
               pp_strerror(rc), r.file, (unsigned long long)r.offset, r.detail);
    else if (code)
        printf("  ERROR      %s\n             at %s: %s\n             not checked (not damage: fix the cause and run again)\n",
               pp_strerror(rc), r.file[0] ? r.file : "(no file)", r.detail);
    else if (r.torn_tail)
        printf("  torn tail  at %s offset %llu: %s\n             recovery cuts it (never acknowledged)\n", r.file,
               (unsigned long long)r.offset, r.detail);
    else
        printf("  status     clean\n");
    return code;
}

static const char *verdict(int worst) {
    return worst == TOOL_OK ? "all recoverable" : worst == TOOL_DAMAGE ? "SOME CORRUPT" : "SOME NOT CHECKED (errors)";
}

typedef struct lister { char ***names; size_t *n, *cap; } lister;
static int list_one(const char *name, void *ctx) {
    lister *l = (lister *)ctx;
    if (*l->n == *l->cap) {
        char **nn = (char **)realloc(*l->names, (*l->cap *= 2) * sizeof **l->names);
        if (!nn) { free(*l->names); *l->names = NULL; return PP_ENOMEM; }
        *l->names = nn;
    }
    (*l->names)[(*l->n)++] = strdup(name);
    return 0;
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"verbose", no_argument, 0, 'v'}, {"stats", no_argument, 0, 'S'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int verbose = 0, want_stats = 0, json = 0, opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":vSjhV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'v': verbose = 1; break;
        case 'S': want_stats = 1; break;
        case 'j': json = 1; break;
        case 'h': fputs(usage_text, stdout); return TOOL_OK;
        case 'V': printf("pp_inspect (pinnacle_persist) %s\n", PP_VERSION_STRING); return TOOL_OK;
        default: return usage_error("unknown option: %s", argv[optind - 1]);
        }
    }
    if (optind >= argc) return usage_error("%s", "no DATA_DIR given");
    const char *dir = argv[optind++];
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "pp_inspect: %s: %s\n", dir, stat(dir, &sb) != 0 ? strerror(errno) : "not a directory");
        return TOOL_USAGE_OR_IO;
    }
    /* the instruments first, so that progress can say "i of n" */
    size_t n = 0, cap = 16;
    char **names = (char **)malloc(cap * sizeof *names);
    if (!names) { fprintf(stderr, "pp_inspect: out of memory\n"); return TOOL_USAGE_OR_IO; }
    if (optind < argc) {
        for (; optind < argc; optind++) {
            if (n == cap && !(names = (char **)realloc(names, (cap *= 2) * sizeof *names))) break;
            names[n++] = strdup(argv[optind]);
        }
    } else {
        lister ls = {&names, &n, &cap};
        int lr = pp_list(dir, list_one, &ls);      /* both layouts (format 2: the catalog and the journal) */
        if (lr && lr != PP_ENOMEM) { fprintf(stderr, "pp_inspect: %s: %s\n", dir, pp_strerror(lr)); return TOOL_USAGE_OR_IO; }
    }
    if (!names) { fprintf(stderr, "pp_inspect: out of memory\n"); return TOOL_USAGE_OR_IO; }
    /* progress on a terminal only (each instrument is a full journal scan) */
    progress_on = isatty(2);
    int worst = 0;
    totals t;
    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < n; i++) {
        if (!names[i]) { fprintf(stderr, "pp_inspect: out of memory\n"); return TOOL_USAGE_OR_IO; }
        if (progress_on) {
            fprintf(stderr, "\rpp_inspect: checking %zu of %zu: %-40.40s", i + 1, n, names[i]);
            fflush(stderr);
            progress_shown = 1;
        }
        int r = inspect(dir, names[i], verbose, json, &t);
        if (r > worst) worst = r;
        free(names[i]);
    }
    free(names);
    if (progress_on) { fprintf(stderr, "pp_inspect: checked %zu instrument(s)\n", n); fflush(stderr); }
    if (json) {
        printf("{\"type\":\"summary\",\"data_dir\":");
        tool_json_str(stdout, dir);
        printf(",\"instruments\":%llu,\"damaged\":%llu,\"unreadable\":%llu,\"torn_tails\":%llu,\"segments\":%llu,"
               "\"journal_bytes\":%llu,\"events\":%llu,\"snapshots\":%llu,\"snapshots_corrupt\":%llu,\"disk_bytes\":%llu,"
               "\"verdict\":\"%s\",\"exit\":%d}\n",
               t.instruments, t.damaged, t.unreadable, t.torn, t.segments, t.journal_bytes, t.events, t.snapshots,
               t.snapshots_corrupt, t.disk_bytes, verdict(worst), worst);
        return worst;
    }
    if (want_stats)
        printf("totals     %llu instrument(s): %llu segment(s), %llu journal bytes, %llu sequence numbers in journals,\n"
               "           %llu snapshot(s) (%llu corrupt), %llu bytes allocated on disk; %llu torn tail(s),\n"
               "           %llu damaged, %llu not checked\n",
               t.instruments, t.segments, t.journal_bytes, t.events, t.snapshots, t.snapshots_corrupt, t.disk_bytes,
               t.torn, t.damaged, t.unreadable);
    printf("%llu instrument(s) in %s: %s\n", t.instruments, dir, verdict(worst));
    return worst;
}
