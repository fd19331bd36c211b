/* SPDX-License-Identifier: MIT */
/* pp_inspect - what is in a pinnacle_persist data directory, read-only.
 *
 *   cc -std=c11 -O2 -I. tools/pp_inspect.c -o pp_inspect -luring -lpthread
 *   pp_inspect [-v] [--json] [--stats] [--market-data] [--conn [--hex N]]
 *              [--from-time T] [--to-time T] DATA_DIR [INSTRUMENT...]
 *   pp_inspect --events [--instrument NAME] [--from SEQ] [--to SEQ]
 *              [--from-time T] [--to-time T] [--json] [--stats] DATA_DIR
 *
 * For every instrument (or the ones named): its journal mode, its snapshots
 * (files, the newest valid one and its order count, any corrupt ones), its
 * journal (segments, the range of sequence numbers, bytes, the durable mark),
 * and what recovery would do: nothing, cut a torn tail (file and offset), or
 * refuse to open because of corruption in the middle (file, offset, why);
 * on request the market data the newest snapshot saved (last tick, bars,
 * gaps) and the connection-state blobs, read from their files; or, with
 * --events, the order events of the journals (pp_journal_open_dir), by seq
 * and by time. Both layouts: format 2 (one journal for the store, books/)
 * and the per-instrument layout of 0.2.0.
 * Exit status: 0 ok, 1 damage found, 2 usage or I/O error (a permission
 * error is not damage). It takes no lock: on a directory a store has open,
 * the picture may move. The manual page is docs/man/pp_inspect.1. */
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "tool.h"

#include <dirent.h>
#include <getopt.h>
#include <time.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *usage_text =
    "usage: pp_inspect [OPTIONS] DATA_DIR [INSTRUMENT...]\n"
    "       pp_inspect --events [--instrument NAME] [--from SEQ] [--to SEQ]\n"
    "                  [--from-time TIME] [--to-time TIME] [--json] [--stats] DATA_DIR\n"
    "Report what a pinnacle_persist data directory holds and what recovery would\n"
    "do with each instrument (all of them, or the ones named), or print the order\n"
    "events of its journals. Read-only, no lock. Both layouts: format 2 (one journal\n"
    "for the store, the default) and the per-instrument layout (PP_LEGACY_LAYOUT).\n"
    "\n"
    "  -v, --verbose        also list each snapshot (size, orders, when taken) and\n"
    "                       journal file (size)\n"
    "  -S, --stats          totals over the instruments: segments, journal bytes,\n"
    "                       snapshots, sequence numbers, bytes on disk (format 2:\n"
    "                       the store journal's segments and bytes counted once);\n"
    "                       with --events: per instrument and in all, the events by\n"
    "                       type, their seqs, time span and rate, and no event lines\n"
    "  -j, --json           JSON Lines: one object per instrument (\"type\":\"instrument\"),\n"
    "                       then one \"summary\" object; with --events one \"event\"\n"
    "                       object per event (or \"stats\" per instrument), a\n"
    "                       \"damage\" or \"error\" object per instrument not read,\n"
    "                       then the \"summary\"\n"
    "  -e, --events         the order events (add, cancel, execute, modify) of each\n"
    "                       instrument's journal, in seq order, one line each:\n"
    "                       instrument, seq, type, order id, side, price, qty, ts;\n"
    "                       every valid event, durable or not (a torn tail is not\n"
    "                       read). An instrument with damage prints none: its file,\n"
    "                       offset and why instead (exit 1). Market-data entries\n"
    "                       are not events (see --market-data)\n"
    "  -i, --instrument NAME  only this instrument (repeatable; as INSTRUMENT...)\n"
    "      --from SEQ, --to SEQ\n"
    "                       --events: only seqs in [SEQ, SEQ] (each >= 1)\n"
    "  -m, --market-data    per instrument, the market data its newest snapshot saved\n"
    "                       (md/<seq>.ppm; ticks journaled after it are not in it):\n"
    "                       scale, last tick, counts, the gaps and the 1 min bars;\n"
    "                       with -v also the 1 s bars and the raw ticks\n"
    "  -c, --conn           the connection-state blobs (.conn/): name, size, check\n"
    "  -x, --hex BYTES      --conn: the first BYTES of each blob in hex (default 0)\n"
    "      --from-time TIME, --to-time TIME\n"
    "                       only bars, ticks and gaps (by exchange time), with -v\n"
    "                       snapshots (by the time they were taken), and with\n"
    "                       --events events (by their ts) in [from, to];\n"
    "                       TIME is SECONDS since the epoch or YYYY-MM-DDTHH:MM:SS[Z]\n"
    "                       (UTC); --to-time includes its whole second\n"
    "  -h, --help           this text\n"
    "  -V, --version        the pinnacle_persist version\n"
    "On a terminal, progress (instrument i of n) goes to stderr; never otherwise.\n"
    "\n"
    TOOL_EXIT_HELP
    "  (an instrument that cannot be read for lack of permission is exit 2, not 1)\n"
    "\n"
    "Examples:\n"
    "  pp_inspect /var/lib/engine\n"
    "  pp_inspect --json /var/lib/engine BTC-USD\n"
    "  pp_inspect --market-data --from-time 2026-12-01T14:00:00Z /var/lib/engine BTC-USD\n"
    "  pp_inspect --conn --hex 64 /var/lib/engine\n"
    "  pp_inspect --events --instrument BTC-USD --from 1000 --to 2000 /var/lib/engine\n"
    "  pp_inspect --events --json --from-time 2026-12-01T14:00:00Z /var/lib/engine\n";

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

/* The layout: format 2 (a STORE file; one journal/ for every instrument,
 * each instrument's files under books/<name>/) or the per-instrument one
 * (<name>/journal/ or strict/, <name>/snapshots/, <name>/md/). */
static int store2;

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
            char p[8192 + 512];
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
    printf(",\"status\":\"%s\",\"mode\":\"%s\",\"layout\":\"%s\",\"snapshots\":%llu,\"snapshots_corrupt\":%llu,"
           "\"oldest_snapshot_seq\":%llu,\"newest_snapshot_seq\":%llu,\"snapshot_orders\":%llu,"
           "\"segments\":%llu,\"journal_first_seq\":%llu,\"journal_last_seq\":%llu,\"journal_bytes\":%llu,"
           "\"durable_mark_seq\":%llu,\"disk_bytes\":%llu,\"file\":",
           status, r->mode == PP_JOURNAL_STRICT ? "strict" : "mmap", store2 ? "store_journal" : "per_instrument",
           (unsigned long long)r->snapshots,
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

/* An instrument's directory, or sub in it. */
static void inst_path(char *buf, size_t cap, const char *data_dir, const char *name, const char *sub) {
    snprintf(buf, cap, "%s/%s%s%s%s", data_dir, store2 ? "books/" : "", name, sub ? "/" : "", sub ? sub : "");
}

/* ---- market data and connection state (read from the files, no store
 * opened): the newest valid md/<seq>.ppm of an instrument (the state its
 * newest snapshot saved; ticks journaled after that snapshot are not in it)
 * and the .conn/<name> blobs. Formats: docs/pinnacle-format.md. */
static unsigned long long time_from = 0, time_to = UINT64_MAX;   /* --from-time/--to-time, ns, inclusive */

static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }   /* little-endian host */
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* SECONDS since the epoch, or YYYY-MM-DDTHH:MM:SS[Z] (UTC), as ns; -1 if neither. */
static int parse_time(const char *s, int end_of_second, unsigned long long *out) {
    unsigned long long sec;
    if (tool_parse_u64(s, 0, 18000000000ull, &sec) != 0) {
        struct tm tmv;
        memset(&tmv, 0, sizeof tmv);
        const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tmv);
        if (!rest || (*rest && strcmp(rest, "Z") != 0)) return -1;
        time_t t = timegm(&tmv);
        if (t < 0) return -1;
        sec = (unsigned long long)t;
    }
    *out = sec * 1000000000ull + (end_of_second ? 999999999ull : 0);
    return 0;
}

static void fmt_time(uint64_t ns, char *buf, size_t cap) {
    time_t t = (time_t)(ns / 1000000000ull);
    struct tm tmv;
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", gmtime_r(&t, &tmv));
    snprintf(buf + n, cap - n, ".%03lluZ", (unsigned long long)(ns % 1000000000ull / 1000000ull));
}

static int in_range(uint64_t ns) { return ns >= time_from && ns <= time_to; }

/* The whole file in a malloc'd buffer (NULL: errno says why). */
static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && (buf = (unsigned char *)malloc((size_t)sb.st_size + 1)) != NULL) {
        *len = fread(buf, 1, (size_t)sb.st_size, f);
        if (ferror(f) || *len != (size_t)sb.st_size) { int e = ferror(f) ? errno : EIO; free(buf); buf = NULL; errno = e; }
    }
    int e = errno;
    fclose(f);
    errno = e;
    return buf;
}

#define MD_HDR 320u   /* header, spec, flags, last tick, tick in progress */

/* A .ppm that checks: magic, version, its seq is its name, sizes, CRC32C. */
static int md_valid(const unsigned char *p, size_t len, uint64_t seq) {
    if (len < MD_HDR + 8 || memcmp(p, "PPMDST01", 8) != 0 || get32(p + 8) != 1 || get64(p + 16) != seq) return 0;
    uint64_t nt = get64(p + 32), n1 = get64(p + 40), n60 = get64(p + 48), ng = get64(p + 56);
    if (nt > len || n1 > len || n60 > len || ng > len) return 0;
    return MD_HDR + nt * 96 + (n1 + n60) * 64 + ng * 24 + 8 == len && get32(p + len - 8) == plg_crc32c(0, p, len - 8);
}

static void print_tick(const unsigned char *t, int json, const char *lead) {
    char ts[64];
    fmt_time(get64(t + 8), ts, sizeof ts);
    if (json) {
        printf("{\"exch_seq\":%llu,\"exch_ts_ns\":%llu,\"time\":\"%s\",\"recv_ts_ns\":%llu,\"price\":%lld,\"size\":%lld,"
               "\"bid\":%lld,\"bid_size\":%lld,\"ask\":%lld,\"ask_size\":%lld,\"volume_24h\":%lld,\"trade_id\":%llu,\"side\":%llu}",
               (unsigned long long)get64(t), (unsigned long long)get64(t + 8), ts, (unsigned long long)get64(t + 16),
               (long long)get64(t + 24), (long long)get64(t + 32), (long long)get64(t + 40), (long long)get64(t + 48),
               (long long)get64(t + 56), (long long)get64(t + 64), (long long)get64(t + 72), (unsigned long long)get64(t + 80),
               (unsigned long long)get64(t + 88));
        return;
    }
    printf("%sexch seq %llu at %s: price %lld size %lld, bid %lld x %lld, ask %lld x %lld, trade %llu\n", lead,
           (unsigned long long)get64(t), ts, (long long)get64(t + 24), (long long)get64(t + 32), (long long)get64(t + 40),
           (long long)get64(t + 48), (long long)get64(t + 56), (long long)get64(t + 64), (unsigned long long)get64(t + 80));
}

static void print_bar(const char *name, unsigned res_s, const unsigned char *b, int json) {
    char ts[64];
    fmt_time(get64(b), ts, sizeof ts);
    if (json) {
        printf("{\"type\":\"bar\",\"instrument\":");
        tool_json_str(stdout, name);
        printf(",\"res_s\":%u,\"start_ns\":%llu,\"time\":\"%s\",\"open\":%lld,\"high\":%lld,\"low\":%lld,\"close\":%lld,"
               "\"volume\":%lld,\"trades\":%llu,\"gaps\":%llu}\n", res_s, (unsigned long long)get64(b), ts,
               (long long)get64(b + 8), (long long)get64(b + 16), (long long)get64(b + 24), (long long)get64(b + 32),
               (long long)get64(b + 40), (unsigned long long)get64(b + 48), (unsigned long long)get64(b + 56));
        return;
    }
    printf("    bar %-3s %s  o %lld h %lld l %lld c %lld  volume %lld, %llu trade(s), %llu gap(s)\n", res_s == 60 ? "1m" : "1s",
           ts, (long long)get64(b + 8), (long long)get64(b + 16), (long long)get64(b + 24), (long long)get64(b + 32),
           (long long)get64(b + 40), (unsigned long long)get64(b + 48), (unsigned long long)get64(b + 56));
}

/* The newest md/<seq>.ppm that checks, into *buf (NULL: none saved).
 * Returns the number of .ppm files that did not check. */
static unsigned long long md_newest(const char *mdir, unsigned char **buf, size_t *len, uint64_t *seq_out) {
    *buf = NULL; *seq_out = 0;
    unsigned long long bad = 0;
    DIR *d = opendir(mdir);
    if (!d) return 0;
    uint64_t best = UINT64_MAX;
    for (;;) {   /* newest first: the highest seq below the last one tried */
        uint64_t pick = 0; int found = 0;
        struct dirent *e;
        rewinddir(d);
        while ((e = readdir(d)) != NULL) {
            char *end;
            unsigned long long s = strtoull(e->d_name, &end, 10);
            if (end == e->d_name || strcmp(end, ".ppm") != 0 || s >= best) continue;
            if (!found || s > pick) { pick = s; found = 1; }
        }
        if (!found) break;
        best = pick;
        char p[8192];
        snprintf(p, sizeof p, "%s/%020llu.ppm", mdir, (unsigned long long)pick);
        size_t n = 0;
        unsigned char *b = read_all(p, &n);
        if (b && md_valid(b, n, pick)) { *buf = b; *len = n; *seq_out = pick; break; }
        free(b);
        bad++;
    }
    closedir(d);
    return bad;
}

static void market_data(const char *data_dir, const char *name, int verbose, int json) {
    char mdir[4096];
    inst_path(mdir, sizeof mdir, data_dir, name, "md");
    unsigned char *p;
    size_t len;
    uint64_t seq;
    unsigned long long bad = md_newest(mdir, &p, &len, &seq);
    if (!p) {
        if (json) {
            printf("{\"type\":\"market_data\",\"instrument\":");
            tool_json_str(stdout, name);
            printf(",\"status\":\"%s\",\"unreadable_files\":%llu}\n", bad ? "unreadable" : "none", bad);
        } else if (bad) {
            printf("  market data  none readable: %llu md/*.ppm file(s) fail their check (recovery starts that history empty)\n", bad);
        } else {
            printf("  market data  none saved\n");
        }
        return;
    }
    uint64_t nt = get64(p + 32), n1 = get64(p + 40), n60 = get64(p + 48), ng = get64(p + 56);
    int has_last = (int)(get64(p + 104) & 1);
    const unsigned char *ticks = p + MD_HDR, *b1 = ticks + nt * 96, *b60 = b1 + n1 * 64, *gaps = b60 + n60 * 64;
    if (json) {
        printf("{\"type\":\"market_data\",\"instrument\":");
        tool_json_str(stdout, name);
        printf(",\"status\":\"ok\",\"snapshot_seq\":%llu,\"unreadable_files\":%llu,\"price_scale\":%lld,\"size_scale\":%lld,"
               "\"last_exch_seq\":%llu,\"raw_ticks\":%llu,\"bars_1s\":%llu,\"bars_1m\":%llu,\"gaps\":%llu,\"last_tick\":",
               (unsigned long long)seq, bad, (long long)get64(p + 64), (long long)get64(p + 72), (unsigned long long)get64(p + 24),
               (unsigned long long)nt, (unsigned long long)n1, (unsigned long long)n60, (unsigned long long)ng);
        if (has_last) print_tick(p + 128, 1, ""); else printf("null");
        printf("}\n");
    } else {
        printf("  market data  as saved with snapshot seq %llu (md/%020llu.ppm; ticks journaled after it are not included)\n",
               (unsigned long long)seq, (unsigned long long)seq);
        if (bad) printf("    (%llu newer md/*.ppm file(s) fail their check)\n", bad);
        printf("    scale    price %lld, size %lld per unit\n", (long long)get64(p + 64), (long long)get64(p + 72));
        if (has_last) print_tick(p + 128, 0, "    last     ");
        else printf("    last     no tick\n");
        printf("    kept     %llu raw tick(s), %llu 1 s bar(s), %llu 1 min bar(s), %llu gap(s)\n", (unsigned long long)nt,
               (unsigned long long)n1, (unsigned long long)n60, (unsigned long long)ng);
    }
    for (uint64_t i = 0; i < ng; i++) {
        const unsigned char *g = gaps + i * 24;
        if (!in_range(get64(g + 16))) continue;
        char ts[64];
        fmt_time(get64(g + 16), ts, sizeof ts);
        unsigned long long after = get64(g), next = get64(g + 8);
        if (json) {
            printf("{\"type\":\"gap\",\"instrument\":");
            tool_json_str(stdout, name);
            printf(",\"after_seq\":%llu,\"next_seq\":%llu,\"missing\":%llu,\"exch_ts_ns\":%llu,\"time\":\"%s\"}\n", after, next,
                   next > after ? next - after - 1 : 0, (unsigned long long)get64(g + 16), ts);
        } else {
            printf("    gap      at %s: exchange seqs %llu..%llu missing (%llu)\n", ts, after + 1, next - 1,
                   next > after ? next - after - 1 : 0);
        }
    }
    for (uint64_t i = 0; i < n60; i++)
        if (in_range(get64(b60 + i * 64))) print_bar(name, 60, b60 + i * 64, json);
    if (verbose) {
        for (uint64_t i = 0; i < n1; i++)
            if (in_range(get64(b1 + i * 64))) print_bar(name, 1, b1 + i * 64, json);
        for (uint64_t i = 0; i < nt; i++) {
            const unsigned char *t = ticks + i * 96;
            if (!in_range(get64(t + 8))) continue;
            if (json) {
                printf("{\"type\":\"tick\",\"instrument\":");
                tool_json_str(stdout, name);
                printf(",\"tick\":");
                print_tick(t, 1, "");
                printf("}\n");
            } else {
                print_tick(t, 0, "    tick     ");
            }
        }
    }
    free(p);
}

/* The .conn/<name> blobs: "PPCONN01", u32 length, u32 CRC32C(data), data. */
static void conn_state(const char *data_dir, unsigned long long hex, int json) {
    char cdir[4096];
    snprintf(cdir, sizeof cdir, "%s/.conn", data_dir);
    DIR *d = opendir(cdir);
    if (!d) {
        if (json) printf("{\"type\":\"conn_dir\",\"status\":\"%s\"}\n", errno == ENOENT ? "none" : "error");
        else printf("connection state: %s\n", errno == ENOENT ? "none saved (.conn/ does not exist)" : strerror(errno));
        return;
    }
    if (!json) printf("connection state (.conn/)\n");
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || pp_valid_name(e->d_name) != 0) continue;   /* temp files start with a dot or end in .tmp */
        size_t nl = strlen(e->d_name);
        if (nl > 4 && strcmp(e->d_name + nl - 4, ".tmp") == 0) continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", cdir, e->d_name);
        size_t len = 0;
        unsigned char *b = read_all(p, &len);
        int err = errno;
        const char *status = !b ? "error" : len >= 16 && memcmp(b, "PPCONN01", 8) == 0 && get32(b + 8) == len - 16 &&
                                                get32(b + 12) == plg_crc32c(0, b + 16, len - 16) ? "ok" : "corrupt";
        int ok = strcmp(status, "ok") == 0;
        size_t n = ok ? len - 16 : 0, show = hex < n ? (size_t)hex : n;
        if (json) {
            printf("{\"type\":\"conn\",\"name\":");
            tool_json_str(stdout, e->d_name);
            printf(",\"status\":\"%s\",\"bytes\":%zu", status, n);
            if (!b) { printf(",\"error\":"); tool_json_str(stdout, strerror(err)); }
            if (hex) {
                printf(",\"hex\":\"");
                for (size_t i = 0; i < show; i++) printf("%02x", b[16 + i]);
                printf("\",\"truncated\":%s", show < n ? "true" : "false");
            }
            printf("}\n");
        } else if (!b) {
            printf("  %-24s ERROR %s\n", e->d_name, strerror(err));
        } else if (!ok) {
            printf("  %-24s CORRUPT (bad magic, length or CRC32C; pp_conn_get returns PP_ECORRUPT)\n", e->d_name);
        } else {
            printf("  %-24s %zu byte(s)", e->d_name, n);
            if (show) {
                printf("  ");
                for (size_t i = 0; i < show; i++) printf("%02x", b[16 + i]);
                if (show < n) printf("...");
            }
            printf("\n");
        }
        free(b);
    }
    closedir(d);
}

/* -v: each snapshot with its size and the time it was taken (the
 * "created" field of its header), those in --from-time/--to-time. */
static void list_snapshots(const char *dir, const char *name, int json) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n <= 4 || strcmp(e->d_name + n - 4, ".pps") != 0) continue;
        char p[8192 + 512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unsigned char h[40];
        struct stat st;
        FILE *f = fopen(p, "rb");
        int ok = f && fstat(fileno(f), &st) == 0 && fread(h, 1, sizeof h, f) == sizeof h && memcmp(h, "PPSNAP01", 8) == 0;
        if (f) fclose(f);
        uint64_t created = ok ? get64(h + 32) : 0;
        if ((time_from || time_to != UINT64_MAX) && (!ok || !in_range(created))) continue;
        char ts[64] = "?";
        if (ok) fmt_time(created, ts, sizeof ts);
        if (json) {
            printf("{\"type\":\"snapshot\",\"instrument\":");
            tool_json_str(stdout, name);
            printf(",\"file\":");
            tool_json_str(stdout, e->d_name);
            printf(",\"seq\":%llu,\"orders\":%llu,\"bytes\":%lld,\"created_ns\":%llu,\"time\":\"%s\"}\n",
                   ok ? (unsigned long long)get64(h + 16) : 0ull, ok ? (unsigned long long)get64(h + 24) : 0ull,
                   ok ? (long long)st.st_size : -1ll, (unsigned long long)created, ts);
        } else if (ok) {
            printf("      %s  %lld bytes, %llu order(s), taken %s\n", e->d_name, (long long)st.st_size,
                   (unsigned long long)get64(h + 24), ts);
        } else {
            printf("      %s  (header unreadable)\n", e->d_name);
        }
    }
    closedir(d);
}

static int want_md;   /* --market-data */

static int inspect(const char *data_dir, const char *name, int verbose, int json, totals *t) {
    pp_check_result r;
    int rc = pp_check(data_dir, name, &r);
    int code = exit_for(rc);
    char p[8192];
    inst_path(p, sizeof p, data_dir, name, NULL);
    unsigned long long disk = du(p);      /* format 2: the shared journal is counted once, in main */
    progress_clear();
    t->instruments++;
    if (code == TOOL_DAMAGE) t->damaged++;
    else if (code) t->unreadable++;
    else if (r.torn_tail) t->torn++;
    if (!store2) t->segments += r.segments;          /* format 2: every instrument reports the one store journal */
    else if (r.segments > t->segments) t->segments = r.segments;
    t->journal_bytes += r.journal_bytes; t->disk_bytes += disk;
    t->snapshots += r.snapshots; t->snapshots_corrupt += r.snapshots_corrupt;
    if (r.journal_last_seq >= r.journal_first_seq && r.journal_last_seq) t->events += r.journal_last_seq - r.journal_first_seq + 1;
    if (json) {
        print_json(name, rc, &r, disk);
        if (verbose && rc != PP_ENOENT && rc != PP_ENAME) {
            inst_path(p, sizeof p, data_dir, name, "snapshots");
            list_snapshots(p, name, 1);
        }
        if (want_md && rc != PP_ENOENT && rc != PP_ENAME) market_data(data_dir, name, verbose, 1);
        return code;
    }
    printf("%s\n", name);
    if (rc == PP_ENOENT || rc == PP_ENAME) { printf("  ERROR      %s\n", pp_strerror(rc)); return code; }
    printf("  mode       %s\n", store2 ? "mmap, format 2 (the store journal, journal/; files in books/<name>/)"
                              : r.mode == PP_JOURNAL_STRICT ? "strict (picolog log in strict/)" : "mmap (journal/)");
    printf("  snapshots  %llu file(s), %llu corrupt", (unsigned long long)r.snapshots, (unsigned long long)r.snapshots_corrupt);
    if (r.snapshots) printf(", seqs %llu..%llu, newest usable has %llu orders", (unsigned long long)r.oldest_snapshot_seq,
                            (unsigned long long)r.newest_snapshot_seq, (unsigned long long)r.snapshot_orders);
    printf("\n");
    printf("  journal    %llu segment(s), seqs %llu..%llu, %llu bytes of entries read, durable mark at seq %llu\n",
           (unsigned long long)r.segments, (unsigned long long)r.journal_first_seq, (unsigned long long)r.journal_last_seq,
           (unsigned long long)r.journal_bytes, (unsigned long long)r.durable_mark_seq);
    if (verbose) {
        inst_path(p, sizeof p, data_dir, name, "snapshots");
        list_snapshots(p, name, 0);
        if (store2) {
            printf("      (its journal is the store journal, listed above)\n");
        } else {
            inst_path(p, sizeof p, data_dir, name, r.mode == PP_JOURNAL_STRICT ? "strict" : "journal");
            list_dir(p, r.mode == PP_JOURNAL_STRICT ? ".plg" : ".ppj");
        }
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
    if (want_md) market_data(data_dir, name, verbose, 0);
    return code;
}

static const char *verdict(int worst) {
    return worst == TOOL_OK ? "all recoverable" : worst == TOOL_DAMAGE ? "SOME CORRUPT" : "SOME NOT CHECKED (errors)";
}

/* ---- --events: the order events of the journals, read with
 * pp_journal_open_dir (read-only, no lock; both layouts). An instrument
 * pp_check finds damaged prints no events: its damage (file, offset, why),
 * exit 1. */
static unsigned long long seq_from = 1, seq_to = UINT64_MAX;   /* --from/--to, inclusive */

typedef struct evcount {
    unsigned long long n, by_type[5], first_seq, last_seq, first_ts, last_ts;
} evcount;

static const char *ev_name(int type) {
    static const char *names[5] = {"?", "add", "cancel", "execute", "modify"};
    return type >= PP_EV_ADD && type <= PP_EV_MODIFY ? names[type] : names[0];
}

static void evcount_add(evcount *c, const pp_event *e) {
    if (!c->n || e->seq < c->first_seq) c->first_seq = e->seq;
    if (e->seq > c->last_seq) c->last_seq = e->seq;
    if (!c->n || e->ts_ns < c->first_ts) c->first_ts = e->ts_ns;
    if (e->ts_ns > c->last_ts) c->last_ts = e->ts_ns;
    c->n++;
    c->by_type[e->type >= PP_EV_ADD && e->type <= PP_EV_MODIFY ? e->type : 0]++;
}

/* counts, seqs, time span and rate: text after lead, or JSON fields after a comma */
static void evcount_print(const evcount *c, int json, const char *lead) {
    double span = c->n ? (double)(c->last_ts - c->first_ts) / 1e9 : 0;
    char t0[64] = "-", t1[64] = "-";
    if (c->n) { fmt_time(c->first_ts, t0, sizeof t0); fmt_time(c->last_ts, t1, sizeof t1); }
    if (json) {
        printf(",\"events\":%llu,\"adds\":%llu,\"cancels\":%llu,\"executes\":%llu,\"modifies\":%llu,\"first_seq\":%llu,"
               "\"last_seq\":%llu,\"first_ts_ns\":%llu,\"last_ts_ns\":%llu,\"span_s\":%.3f,\"events_per_s\":%.3f",
               c->n, c->by_type[1], c->by_type[2], c->by_type[3], c->by_type[4], c->first_seq, c->last_seq, c->first_ts,
               c->last_ts, span, span > 0 ? (double)c->n / span : 0.0);
        return;
    }
    printf("%s%llu event(s): %llu add, %llu cancel, %llu execute, %llu modify", lead, c->n, c->by_type[1], c->by_type[2],
           c->by_type[3], c->by_type[4]);
    if (c->n) printf("; seqs %llu..%llu; %s to %s (%.3f s, %.3f events/s)", c->first_seq, c->last_seq, t0, t1, span,
                     span > 0 ? (double)c->n / span : 0.0);
    printf("\n");
}

static void print_event(const char *name, const pp_event *e, int json) {
    char ts[64];
    fmt_time(e->ts_ns, ts, sizeof ts);
    const char *side = e->side == PP_BUY ? "buy" : e->side == PP_SELL ? "sell" : NULL;
    if (json) {
        printf("{\"type\":\"event\",\"instrument\":");
        tool_json_str(stdout, name);
        printf(",\"seq\":%llu,\"event\":\"%s\",\"order_id\":%llu,\"side\":%s%s%s,\"price\":%lld,\"qty\":%lld,"
               "\"ts_ns\":%llu,\"time\":\"%s\"}\n", (unsigned long long)e->seq, ev_name(e->type), (unsigned long long)e->order_id,
               side ? "\"" : "", side ? side : "null", side ? "\"" : "", (long long)e->price, (long long)e->qty,
               (unsigned long long)e->ts_ns, ts);
        return;
    }
    printf("%s seq %llu %s id %llu side %s price %lld qty %lld ts %s (%llu)\n", name, (unsigned long long)e->seq,
           ev_name(e->type), (unsigned long long)e->order_id, side ? side : "-", (long long)e->price, (long long)e->qty, ts,
           (unsigned long long)e->ts_ns);
}

/* One instrument's events in [seq_from, seq_to] and [time_from, time_to];
 * with stats only its counts. Returns the exit code for it. */
static int events(const char *data_dir, const char *name, int json, int stats, evcount *all, totals *t) {
    pp_check_result r;
    int rc = pp_check(data_dir, name, &r);
    int code = exit_for(rc);
    pp_journal *j = NULL;
    progress_clear();
    t->instruments++;
    if (!code) {                       /* clean or a torn tail: read it */
        rc = pp_journal_open_dir(data_dir, name, seq_from, &j);
        code = exit_for(rc);
        if (rc)                        /* damage between the check and the read (a running store), or I/O */
            snprintf(r.detail, sizeof r.detail, "the journal reader failed after the check found it recoverable");
    }
    if (code) {
        if (code == TOOL_DAMAGE) t->damaged++; else t->unreadable++;
        if (json) {
            printf("{\"type\":\"%s\",\"instrument\":", code == TOOL_DAMAGE ? "damage" : "error");
            tool_json_str(stdout, name);
            printf(",\"error\":");
            tool_json_str(stdout, pp_strerror(rc));
            printf(",\"file\":");
            tool_json_str(stdout, r.file);
            printf(",\"offset\":%llu,\"detail\":", (unsigned long long)r.offset);
            tool_json_str(stdout, r.detail);
            printf("}\n");
        } else if (code == TOOL_DAMAGE) {
            printf("%s CORRUPT %s\n  at %s offset %llu: %s\n  recovery refuses to open it (fail closed); no events printed\n", name,
                   pp_strerror(rc), r.file, (unsigned long long)r.offset, r.detail);
        } else {
            printf("%s ERROR %s%s%s%s%s\n  not read (not damage: fix the cause and run again)\n", name, pp_strerror(rc),
                   r.file[0] ? " at " : "", r.file, r.detail[0] ? ": " : "", r.detail);
        }
        pp_journal_close(j);
        return code;
    }
    evcount c;
    memset(&c, 0, sizeof c);
    pp_event e;
    while ((rc = pp_journal_next(j, &e)) == 1) {
        if (e.seq > seq_to) break;                         /* in seq order */
        if (!in_range(e.ts_ns)) continue;
        evcount_add(&c, &e);
        evcount_add(all, &e);
        if (!stats) print_event(name, &e, json);
    }
    pp_journal_close(j);
    if (stats) {
        if (json) {
            printf("{\"type\":\"stats\",\"instrument\":");
            tool_json_str(stdout, name);
            evcount_print(&c, 1, "");
            printf("}\n");
        } else {
            printf("%s  ", name);
            evcount_print(&c, 0, "");
        }
    }
    if (r.torn_tail) t->torn++;
    if (r.torn_tail && !json)
        fprintf(stderr, "pp_inspect: %s: torn tail at %s offset %llu (never acknowledged; not read)\n", name, r.file,
                (unsigned long long)r.offset);
    return TOOL_OK;
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

/* --events over the instruments named (all of them by default), one after
 * the other; then, with --json, the summary object. */
static int events_main(const char *dir, char **names, size_t n, int json, int stats) {
    int worst = 0;
    totals t;
    evcount all;
    memset(&t, 0, sizeof t);
    memset(&all, 0, sizeof all);
    for (size_t i = 0; i < n; i++) {
        if (!names[i]) { fprintf(stderr, "pp_inspect: out of memory\n"); return TOOL_USAGE_OR_IO; }
        if (progress_on) {
            fprintf(stderr, "\rpp_inspect: reading %zu of %zu: %-40.40s", i + 1, n, names[i]);
            fflush(stderr);
            progress_shown = 1;
        }
        int r = events(dir, names[i], json, stats, &all, &t);
        if (r > worst) worst = r;
        free(names[i]);
    }
    free(names);
    progress_clear();
    if (json) {
        printf("{\"type\":\"summary\",\"data_dir\":");
        tool_json_str(stdout, dir);
        printf(",\"layout\":\"%s\",\"instruments\":%llu,\"damaged\":%llu,\"unreadable\":%llu,\"torn_tails\":%llu",
               store2 ? "store_journal" : "per_instrument", t.instruments, t.damaged, t.unreadable, t.torn);
        evcount_print(&all, 1, "");
        printf(",\"verdict\":\"%s\",\"exit\":%d}\n", verdict(worst), worst);
    } else if (stats) {
        printf("totals  %llu instrument(s), ", t.instruments);
        evcount_print(&all, 0, "");
    }
    return worst;
}

int main(int argc, char **argv) {
    enum { OPT_FROM_TIME = 1000, OPT_TO_TIME, OPT_FROM, OPT_TO };
    static const struct option longopts[] = {
        {"verbose", no_argument, 0, 'v'}, {"stats", no_argument, 0, 'S'}, {"json", no_argument, 0, 'j'},
        {"market-data", no_argument, 0, 'm'}, {"conn", no_argument, 0, 'c'}, {"hex", required_argument, 0, 'x'},
        {"from-time", required_argument, 0, OPT_FROM_TIME}, {"to-time", required_argument, 0, OPT_TO_TIME},
        {"events", no_argument, 0, 'e'}, {"instrument", required_argument, 0, 'i'},
        {"from", required_argument, 0, OPT_FROM}, {"to", required_argument, 0, OPT_TO},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int verbose = 0, want_stats = 0, json = 0, want_conn = 0, want_events = 0, seq_given = 0, opt;
    unsigned long long hex = 0;
    /* the instruments: --instrument NAME and the arguments after DATA_DIR */
    size_t n = 0, cap = 16;
    char **names = (char **)malloc(cap * sizeof *names);
    if (!names) { fprintf(stderr, "pp_inspect: out of memory\n"); return TOOL_USAGE_OR_IO; }
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":vSjmcx:hVei:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'e': want_events = 1; break;
        case 'i':
            if (pp_valid_name(optarg) != 0) return usage_error("--instrument: not a valid instrument name: '%s'", optarg);
            if (n == cap && !(names = (char **)realloc(names, (cap *= 2) * sizeof *names))) return usage_error("%s", "out of memory");
            names[n++] = strdup(optarg);
            break;
        case OPT_FROM:
            if (tool_parse_u64(optarg, 1, UINT64_MAX, &seq_from)) return usage_error("--from: not a seq (1 or more): '%s'", optarg);
            seq_given = 1;
            break;
        case OPT_TO:
            if (tool_parse_u64(optarg, 1, UINT64_MAX, &seq_to)) return usage_error("--to: not a seq (1 or more): '%s'", optarg);
            seq_given = 1;
            break;
        case 'v': verbose = 1; break;
        case 'm': want_md = 1; break;
        case 'c': want_conn = 1; break;
        case 'x':
            if (tool_parse_u64(optarg, 0, PP_CONN_MAX, &hex)) return usage_error("--hex: not a number of bytes (0..1048576): '%s'", optarg);
            break;
        case OPT_FROM_TIME:
            if (parse_time(optarg, 0, &time_from)) return usage_error("--from-time: not SECONDS or YYYY-MM-DDTHH:MM:SS[Z]: '%s'", optarg);
            break;
        case OPT_TO_TIME:
            if (parse_time(optarg, 1, &time_to)) return usage_error("--to-time: not SECONDS or YYYY-MM-DDTHH:MM:SS[Z]: '%s'", optarg);
            break;
        case 'S': want_stats = 1; break;
        case 'j': json = 1; break;
        case 'h': fputs(usage_text, stdout); return TOOL_OK;
        case 'V': printf("pp_inspect (pinnacle_persist) %s\n", PP_VERSION_STRING); return TOOL_OK;
        case ':': return usage_error("option needs a value: %s", argv[optind - 1]);
        default: return usage_error("unknown option: %s", argv[optind - 1]);
        }
    }
    if (optind >= argc) return usage_error("%s", "no DATA_DIR given");
    if (time_to < time_from) return usage_error("%s", "--to-time is before --from-time");
    if (hex && !want_conn) return usage_error("%s", "--hex goes with --conn");
    if (seq_to < seq_from) return usage_error("%s", "--to is before --from");
    if (seq_given && !want_events) return usage_error("%s", "--from and --to go with --events (--from-time/--to-time select by time)");
    if (want_events && (want_md || want_conn || verbose)) return usage_error("%s", "--events goes with none of --market-data, --conn, --verbose");
    const char *dir = argv[optind++];
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "pp_inspect: %s: %s\n", dir, stat(dir, &sb) != 0 ? strerror(errno) : "not a directory");
        return TOOL_USAGE_OR_IO;
    }
    {
        char mk[8192];
        snprintf(mk, sizeof mk, "%s/STORE", dir);
        store2 = stat(mk, &sb) == 0;        /* format 2 (pp_check and pp_list decide the same way) */
    }
    /* the instruments first, so that progress can say "i of n" */
    if (n || optind < argc) {
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
    if (want_events) return events_main(dir, names, n, json, want_stats);
    if (store2) {              /* the store journal and the catalog once, not per instrument */
        char p[8192];
        snprintf(p, sizeof p, "%s/journal", dir);
        t.disk_bytes += du(p);
        if (!json) {
            printf("store      format 2: one journal for every instrument (journal/), catalog instruments.ppc\n");
            if (verbose) list_dir(p, ".ppj");
        }
        snprintf(p, sizeof p, "%s/instruments.ppc", dir);
        t.disk_bytes += du(p);
    }
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
    if (want_conn) conn_state(dir, hex, json);
    if (json) {
        printf("{\"type\":\"summary\",\"data_dir\":");
        tool_json_str(stdout, dir);
        printf(",\"layout\":\"%s\",\"instruments\":%llu,\"damaged\":%llu,\"unreadable\":%llu,\"torn_tails\":%llu,\"segments\":%llu,"
               "\"journal_bytes\":%llu,\"events\":%llu,\"snapshots\":%llu,\"snapshots_corrupt\":%llu,\"disk_bytes\":%llu,"
               "\"verdict\":\"%s\",\"exit\":%d}\n",
               store2 ? "store_journal" : "per_instrument", t.instruments, t.damaged, t.unreadable, t.torn, t.segments,
               t.journal_bytes, t.events, t.snapshots,
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
