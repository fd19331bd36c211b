/* SPDX-License-Identifier: MIT */
/* plg_dump - inspect a picolog log: its records, where its valid part ends,
 * and any corruption with the file and offset. Read-only: it never repairs.
 *
 *   cc -O2 -I. tools/plg_dump.c -o plg_dump -luring -lpthread
 *   plg_dump LOGDIR                      summary: segments, records, end, verdict
 *   plg_dump --records [--from SEQ] [--to SEQ] [--count N] [--hex BYTES] LOGDIR
 *   plg_dump --stats [--from SEQ] [--to SEQ] LOGDIR
 *   plg_dump --json ...                  JSON Lines: one object per record, then a summary
 *
 * Exit status: 0 ok (a torn tail is normal after a crash), 1 damage found,
 * 2 usage or I/O error. The manual page is docs/man/plg_dump.1. */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "tool.h"

#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage_text =
    "usage: plg_dump [OPTIONS] LOGDIR\n"
    "Inspect a picolog log (a directory of segments): where its valid part ends,\n"
    "a torn tail, corruption with the file and offset; its records; statistics.\n"
    "Read-only: it never changes the log.\n"
    "\n"
    "  -r, --records        print the records (seq, length, the first bytes in hex)\n"
    "  -f, --from SEQ       start at record SEQ (implies --records unless --stats)\n"
    "  -s SEQ               the same as --from\n"
    "  -t, --to SEQ         stop after record SEQ\n"
    "  -n, --count N        print at most N records\n"
    "  -x, --hex BYTES      bytes of each record shown in hex (default 16, 0 for none)\n"
    "  -S, --stats          counts, sizes and a record-length histogram of [--from, --to],\n"
    "                       and the log's size on disk (records carry no timestamps:\n"
    "                       there is no time span or rate)\n"
    "  -j, --json           JSON Lines: one object per record (\"type\":\"record\"), one\n"
    "                       \"stats\" object with --stats, then one \"summary\" object\n"
    "  -h, --help           this text\n"
    "  -V, --version        the picolog version\n"
    "\n"
    "Without --records or --stats it prints the summary only. SEQ is a decimal\n"
    "number >= 1; N and BYTES are decimal numbers.\n"
    "\n"
    TOOL_EXIT_HELP
    "\n"
    "Examples:\n"
    "  plg_dump data/trades.plg\n"
    "  plg_dump --from 1000 --to 1010 --hex 32 data/trades.plg\n"
    "  plg_dump --stats --json data/trades.plg\n";

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "plg_dump: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'plg_dump --help'.\n");
    return TOOL_USAGE_OR_IO;
}

/* ECORRUPT is damage; EFORMAT is a segment that is not (or no longer) a
 * picolog segment inside a log: damage too. Everything else (no such log,
 * permission, I/O, memory) kept the check from running. */
static int exit_for(int rc) {
    if (rc == 0) return TOOL_OK;
    return rc == PLG_ECORRUPT || rc == PLG_EFORMAT ? TOOL_DAMAGE : TOOL_USAGE_OR_IO;
}

typedef struct {
    unsigned long long n, bytes, min, max;
    unsigned long long hist[33];  /* hist[k]: records with 2^(k-1) < len <= 2^k (hist[0]: len 1) */
} stats;

static void stats_add(stats *st, uint32_t len) {
    if (st->n == 0 || len < st->min) st->min = len;
    if (len > st->max) st->max = len;
    st->n++; st->bytes += len;
    int k = 0;
    while ((1ull << k) < len) k++;
    st->hist[k]++;
}

static unsigned long long disk_bytes(const char *dir, unsigned long long *files) {
    unsigned long long total = 0;
    *files = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".plg") != 0) continue;
        char p[8192];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &sb) == 0) { total += (unsigned long long)sb.st_blocks * 512; (*files)++; }
    }
    closedir(d);
    return total;
}

static void print_stats(const stats *st, const char *dir, int json) {
    unsigned long long files, disk = disk_bytes(dir, &files);
    double avg = st->n ? (double)st->bytes / (double)st->n : 0.0;
    if (json) {
        printf("{\"type\":\"stats\",\"records\":%llu,\"payload_bytes\":%llu,\"min_len\":%llu,\"avg_len\":%.1f,"
               "\"max_len\":%llu,\"segment_files\":%llu,\"disk_bytes\":%llu,\"len_histogram\":[",
               st->n, st->bytes, st->min, avg, st->max, files, disk);
        int first = 1;
        for (int k = 0; k < 33; k++) {
            if (!st->hist[k]) continue;
            printf("%s{\"max_len\":%llu,\"records\":%llu}", first ? "" : ",", 1ull << k, st->hist[k]);
            first = 0;
        }
        printf("]}\n");
        return;
    }
    printf("records    %llu in range, %llu payload bytes\n", st->n, st->bytes);
    printf("length     min %llu, avg %.1f, max %llu bytes\n", st->min, avg, st->max);
    printf("on disk    %llu segment file(s), %llu bytes allocated\n", files, disk);
    for (int k = 0; k < 33; k++)
        if (st->hist[k]) printf("  len <= %-10llu %llu\n", 1ull << k, st->hist[k]);
}

static int summary(const char *dir, int json) {
    plg_check_result cr;
    int rc = plg_check(dir, &cr);
    if (json) {
        const char *status = rc == 0 ? (cr.torn_tail ? "torn_tail" : "clean") : exit_for(rc) == TOOL_DAMAGE ? "corrupt" : "error";
        printf("{\"type\":\"summary\",\"log\":");
        tool_json_str(stdout, dir);
        printf(",\"status\":\"%s\",\"segments\":%llu,\"records\":%llu,\"first_seq\":%llu,\"last_seq\":%llu,"
               "\"payload_bytes\":%llu,\"file\":", status, (unsigned long long)cr.segments,
               (unsigned long long)cr.records, (unsigned long long)cr.first_seq, (unsigned long long)cr.last_seq,
               (unsigned long long)cr.bytes);
        tool_json_str(stdout, cr.file);
        printf(",\"offset\":%llu,\"error\":", (unsigned long long)cr.offset);
        if (rc) tool_json_str(stdout, plg_strerror(rc)); else printf("null");
        printf(",\"detail\":");
        tool_json_str(stdout, cr.detail);
        printf(",\"exit\":%d}\n", exit_for(rc));
        return exit_for(rc);
    }
    if (rc && exit_for(rc) != TOOL_DAMAGE) {
        fprintf(stderr, "plg_dump: %s: %s%s%s\n", dir, plg_strerror(rc), cr.detail[0] ? ": " : "", cr.detail);
        return TOOL_USAGE_OR_IO;
    }
    printf("log        %s\n", dir);
    printf("segments   %llu\n", (unsigned long long)cr.segments);
    printf("records    %llu (seq %llu..%llu, %llu payload bytes)\n", (unsigned long long)cr.records,
           (unsigned long long)cr.first_seq, (unsigned long long)cr.last_seq, (unsigned long long)cr.bytes);
    if (rc == 0) {
        printf("valid end  %s offset %llu\n", cr.file, (unsigned long long)cr.offset);
        printf("verdict    %s\n", cr.torn_tail ? "valid; a torn tail after the end is discarded on open"
                                               : "valid; clean end");
        return TOOL_OK;
    }
    printf("CORRUPT    %s offset %llu\n", cr.file, (unsigned long long)cr.offset);
    if (cr.detail[0]) printf("detail     %s\n", cr.detail);
    printf("verdict    %s: plg_open refuses it (fail closed).\n"
           "           Records up to %llu are intact. Keep a copy before any repair.\n",
           plg_strerror(rc), (unsigned long long)cr.last_seq);
    return TOOL_DAMAGE;
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"records", no_argument, 0, 'r'}, {"from", required_argument, 0, 'f'},
        {"to", required_argument, 0, 't'}, {"count", required_argument, 0, 'n'},
        {"hex", required_argument, 0, 'x'}, {"stats", no_argument, 0, 'S'},
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int records = 0, want_stats = 0, json = 0, opt;
    unsigned long long from = 1, to = UINT64_MAX, limit = UINT64_MAX, hex = 16;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":rf:s:t:n:x:SjhV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r': records = 1; break;
        case 'f': case 's':
            if (tool_parse_u64(optarg, 1, UINT64_MAX, &from)) return usage_error("--from: not a sequence number >= 1: '%s'", optarg);
            records = 1; break;
        case 't':
            if (tool_parse_u64(optarg, 1, UINT64_MAX, &to)) return usage_error("--to: not a sequence number >= 1: '%s'", optarg);
            records = 1; break;
        case 'n':
            if (tool_parse_u64(optarg, 0, UINT64_MAX, &limit)) return usage_error("--count: not a number: '%s'", optarg);
            records = 1; break;
        case 'x':
            if (tool_parse_u64(optarg, 0, 1u << 20, &hex)) return usage_error("--hex: not a number of bytes (0..1048576): '%s'", optarg);
            break;
        case 'S': want_stats = 1; break;
        case 'j': json = 1; break;
        case 'h': fputs(usage_text, stdout); return TOOL_OK;
        case 'V': printf("plg_dump (picolog) %s\n", PICOLOG_VERSION_STRING); return TOOL_OK;
        case ':': return usage_error("option needs a value: %s", argv[optind - 1]);
        default: return usage_error("unknown option: %s", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) return usage_error("%s", optind >= argc ? "no LOGDIR given" : "more than one LOGDIR given");
    if (to < from) return usage_error("%s", "--to is below --from");
    const char *dir = argv[optind];
    if (want_stats) records = 0;  /* --stats reads the range but prints no records */

    if (records || want_stats) {
        plg_reader *r;
        int rc = plg_reader_open(&r, dir);
        if (rc) {
            fprintf(stderr, "plg_dump: %s: %s\n", dir, plg_strerror(rc));
            if (json) summary(dir, 1);
            return exit_for(rc) == TOOL_DAMAGE ? TOOL_DAMAGE : TOOL_USAGE_OR_IO;
        }
        plg_record rec;
        stats st;
        memset(&st, 0, sizeof st);
        unsigned long long n = 0;
        rc = from > 1 ? plg_reader_seek(r, from) : 0;
        if (rc == PLG_ENOENT) rc = 0, n = limit;  /* nothing at or after --from: an empty range */
        while (rc == 0 && n < limit && (rc = plg_reader_next(r, &rec)) == 1) {
            rc = 0;
            if (rec.seq < from) continue;     /* --from below the oldest kept record */
            if (rec.seq > to) break;
            n++;
            if (want_stats) { stats_add(&st, rec.len); continue; }
            const unsigned char *p = (const unsigned char *)rec.data;
            unsigned long long show = hex < rec.len ? hex : rec.len;
            if (json) {
                printf("{\"type\":\"record\",\"seq\":%llu,\"len\":%u,\"hex\":\"", (unsigned long long)rec.seq, rec.len);
                for (unsigned long long i = 0; i < show; i++) printf("%02x", p[i]);
                printf("\",\"truncated\":%s}\n", show < rec.len ? "true" : "false");
            } else {
                printf("seq %llu len %u ", (unsigned long long)rec.seq, rec.len);
                for (unsigned long long i = 0; i < show; i++) printf("%02x", p[i]);
                printf(show < rec.len ? "...\n" : "\n");
            }
        }
        int code = TOOL_OK;
        if (rc < 0) {
            uint64_t off;
            const char *f = plg_reader_where(r, &off);
            code = exit_for(rc);
            if (!json) printf("%s: %s at %s offset %llu\n", code == TOOL_DAMAGE ? "CORRUPT" : "ERROR", plg_strerror(rc), f,
                              (unsigned long long)off);
        }
        plg_reader_close(r);
        if (want_stats) print_stats(&st, dir, json);
        if (json || want_stats) {
            int s = summary(dir, json);
            return code > s ? code : s;
        }
        return code;
    }
    return summary(dir, json);
}
