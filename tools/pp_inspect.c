/* SPDX-License-Identifier: MIT */
/* pp_inspect - what is in a pinnacle_persist data directory, read-only.
 *
 *   cc -std=c11 -O2 -I. tools/pp_inspect.c -o pp_inspect -luring -lpthread
 *   pp_inspect [-v] [--json] [--stats] [--market-data] [--conn [--hex N]]
 *              [--from-time T] [--to-time T] DATA_DIR [INSTRUMENT...]
 *   pp_inspect --events [--instrument NAME] [--from SEQ] [--to SEQ]
 *              [--from-time T] [--to-time T] [--archive-dir DIR] [--json] [--stats] DATA_DIR
 *   pp_inspect --book-at SEQ --instrument NAME [--archive-dir DIR] [--json] DATA_DIR
 *   pp_inspect --fix [--yes] DATA_DIR
 *   pp_inspect --key-file F | --vault V --key-name N  ...   an encrypted store
 *
 * For every instrument (or the ones named): its journal mode, its snapshots
 * (files, the newest valid one and its order count, any corrupt ones), its
 * journal (segments, the range of sequence numbers, bytes, the durable mark),
 * and what recovery would do: nothing, cut a torn tail (file and offset), or
 * refuse to open because of corruption in the middle (file, offset, why);
 * on request the market data the newest snapshot saved (last tick, bars,
 * gaps) and the connection-state blobs, read from their files; or, with
 * --events, the order events of the journals (pp_journal_open_archive,
 * with the archived history first when --archive-dir names it), by seq
 * and by time; or, with --book-at, one instrument's book as it was after a
 * past seq (pp_book_at_dir, format 2). Both layouts: format 2 (one journal
 * for the store, books/) and the per-instrument layout of 0.2.0.
 * With --fix, the one mode that writes: after showing what it will do and
 * asking (or --yes), it cuts the store journal at damage below a durable
 * mark (format 2) or moves a damaged instrument aside (per-instrument
 * layout), keeping a copy of everything it cuts in DATA_DIR/quarantine/.
 * Exit status: 0 ok, 1 damage found, 2 usage or I/O error (a permission
 * error is not damage). It takes no lock, except --fix (which refuses a
 * store a running process has open): on a directory a store has open, the
 * picture may move. The manual page is docs/man/pp_inspect.1. */
#define VAULT_IMPLEMENTATION
#include "vault.h"
#define PICOLOG_ENCRYPT                  /* reads encrypted stores too, given --key-file or --vault */
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "tool.h"
#include "password.h"                    /* the vault password's sources: vaultctl's */
#include "keys.h"                        /* --key-file, --vault: shared with plg_dump */

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <time.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *usage_text =
    "usage: pp_inspect [OPTIONS] DATA_DIR [INSTRUMENT...]\n"
    "       pp_inspect --events [--instrument NAME] [--from SEQ] [--to SEQ]\n"
    "                  [--from-time TIME] [--to-time TIME] [--archive-dir DIR]\n"
    "                  [--json] [--stats] DATA_DIR\n"
    "       pp_inspect --book-at SEQ --instrument NAME [--archive-dir DIR] [--json] DATA_DIR\n"
    "       pp_inspect --fix [--yes] DATA_DIR\n"
    "Report what a pinnacle_persist data directory holds and what recovery would\n"
    "do with each instrument (all of them, or the ones named), or print the order\n"
    "events of its journals. Read-only, no lock (except --fix). Both layouts: format 2\n"
    "(one journal for the store, the default) and the per-instrument layout\n"
    "(PP_LEGACY_LAYOUT).\n"
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
    "      --book-at SEQ    the book of one instrument as it was after SEQ (0: empty),\n"
    "                       rebuilt from the newest snapshot at or below SEQ and the\n"
    "                       journal (format 2): one line per resting order in price-\n"
    "                       time priority (bids best first, then asks): instrument,\n"
    "                       side, price, qty, order id, priority seq, ts, and the\n"
    "                       add's payload in hex if it had one; then a summary line.\n"
    "                       With --json one \"order\" object per order, then the\n"
    "                       \"summary\". SEQ past the journal, an unknown instrument,\n"
    "                       or history compacted away (no --archive-dir): exit 2;\n"
    "                       damage: exit 1 (file and offset). Read-only, beside a\n"
    "                       running store too\n"
    "      --archive-dir DIR\n"
    "                       --book-at, --events: the store's archive_dir (archived\n"
    "                       segments and snapshots; the data directory does not\n"
    "                       record it). --events reads the archived segments first:\n"
    "                       the history compaction moved there, from seq 1\n"
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
    "      --fix            repair damage recovery refuses, after showing what will be\n"
    "                       cut or moved and asking y/N on stdin (only y or yes goes on;\n"
    "                       anything else, EOF too, changes nothing: exit 1). Format 2:\n"
    "                       an invalid frame below a segment's durable mark in the store\n"
    "                       journal: the damaged segment and every later one are copied\n"
    "                       whole into DATA_DIR/quarantine/fix-<UTC time>/, with the\n"
    "                       snapshots taken past the damage (moved); the later segments\n"
    "                       are removed and the damaged one is sealed at the damage:\n"
    "                       every book recovers to its last event before it. Per-\n"
    "                       instrument layout: each damaged instrument's directory is\n"
    "                       moved to DATA_DIR/quarantine/<name>-<UTC time>/ (gone from\n"
    "                       the store until moved back). Nothing damaged, or only a torn\n"
    "                       tail (pp_open cuts that): says so, changes nothing, exit 0.\n"
    "                       Takes the store's lock: a store open in a running process\n"
    "                       is refused (exit 2). Goes with --yes only\n"
    "  -y, --yes            --fix without asking\n"
    "  -k, --key-file F     the store is encrypted (pp_config.encrypt_key): F holds its\n"
    "                       data key, 32 raw bytes or 64 hex digits; after a key\n"
    "                       rotation once per key still in use. Without a key an\n"
    "                       encrypted store is \"not checked\" (exit 2), never damage\n"
    "      --vault FILE --key-name NAME\n"
    "                       the key from a vault (vaultctl datakey create NAME); its\n"
    "                       password from --password-file F (only its owner may read\n"
    "                       it), --password-fd N, --password-command CMD,\n"
    "                       $VAULT_PASSWORD_FILE or the terminal (never argv)\n"
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
    "  pp_inspect --events --json --from-time 2026-12-01T14:00:00Z /var/lib/engine\n"
    "  pp_inspect --book-at 120000 --instrument BTC-USD --archive-dir /archive/engine /var/lib/engine\n"
    "  pp_inspect --fix /var/lib/engine\n"
    "  pp_inspect --key-file /run/keys/engine.key --events /var/lib/engine\n";

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

/* The whole file in a malloc'd buffer, opened with the keys given (a sealed
 * file of an encrypted store); NULL: errno says why (ENOKEY: sealed and no
 * key given; EKEYREJECTED: sealed under a key not given; EBADMSG: its tag
 * does not match, or a file that is not sealed in an encrypted store). */
static unsigned char *read_all(const char *path, size_t *len) {
    uint8_t *buf = NULL;
    size_t n = 0;
    errno = 0;
    int rc = pp__read_file_k(pp__tls_fk, path, &buf, &n, NULL, 0);
    if (rc == 0) { *len = n; return buf; }
    errno = rc == PP_ENEEDKEY ? ENOKEY : rc == PP_EKEY ? EKEYREJECTED : rc == PP_ECORRUPT ? EBADMSG
          : rc == PP_ENOMEM ? ENOMEM : errno ? errno : EIO;
    return NULL;
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
        const char *status = !b ? (err == EBADMSG ? "corrupt" : "error") : len >= 16 && memcmp(b, "PPCONN01", 8) == 0 && get32(b + 8) == len - 16 &&
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
        } else if (!b && err == EBADMSG) {
            printf("  %-24s CORRUPT (its seal does not check; pp_conn_get returns PP_ECORRUPT)\n", e->d_name);
        } else if (!b) {
            printf("  %-24s ERROR %s%s\n", e->d_name, strerror(err), err == ENOKEY ? ": the store is encrypted, give its key (--key-file, --vault)" : "");
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
        int ok = f && fstat(fileno(f), &st) == 0 && fread(h, 1, sizeof h, f) == sizeof h;
        if (f) fclose(f);
        if (ok && memcmp(h, "PPSEAL01", 8) == 0) {     /* sealed: the header is inside */
            size_t bl = 0;
            unsigned char *b = read_all(p, &bl);
            ok = b && bl >= sizeof h;
            if (ok) memcpy(h, b, sizeof h);
            free(b);
        }
        ok = ok && memcmp(h, "PPSNAP01", 8) == 0;
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
    if (rc == PP_ERETIRED) { printf("  RETIRED    %s\n", r.detail); return code; }   /* not a live instrument: nothing to check */
    printf("  mode       %s\n", store2 ? (r.mode == PP_JOURNAL_STRICT ? "strict, format 2 (the store journal: one picolog log in journal/; "
                                                                      "files in books/<name>/)"
                                                                    : "mmap, format 2 (the store journal, journal/; files in books/<name>/)")
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
        printf("  ERROR      %s\n             at %s: %s\n             not checked (not damage: %s)\n",
               pp_strerror(rc), r.file[0] ? r.file : "(no file)", r.detail,
               rc == PP_ENEEDKEY ? "give the store's key with --key-file FILE or --vault FILE --key-name NAME"
               : rc == PP_EKEY ? "give every key still in use, one --key-file each" : "fix the cause and run again");
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

/* One JSON line for an instrument that could not be read: "damage" (exit 1)
 * or "error" (exit 2), with pp_check's file and offset. */
static void json_problem(int code, const char *name, int rc, const pp_check_result *r, const char *detail) {
    printf("{\"type\":\"%s\",\"instrument\":", code == TOOL_DAMAGE ? "damage" : "error");
    tool_json_str(stdout, name);
    printf(",\"error\":");
    tool_json_str(stdout, pp_strerror(rc));
    printf(",\"file\":");
    tool_json_str(stdout, r->file);
    printf(",\"offset\":%llu,\"detail\":", (unsigned long long)r->offset);
    tool_json_str(stdout, detail);
    printf("}\n");
}

/* ---- --events: the order events of the journals, read with
 * pp_journal_open_dir (read-only, no lock; both layouts). An instrument
 * pp_check finds damaged prints no events: its damage (file, offset, why),
 * exit 1. */
static unsigned long long seq_from = 1, seq_to = UINT64_MAX;   /* --from/--to, inclusive */
static const char *events_archive;                              /* --archive-dir, or NULL */

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
               "\"ts_ns\":%llu,\"time\":\"%s\"", (unsigned long long)e->seq, ev_name(e->type), (unsigned long long)e->order_id,
               side ? "\"" : "", side ? side : "null", side ? "\"" : "", (long long)e->price, (long long)e->qty,
               (unsigned long long)e->ts_ns, ts);
        if (e->payload_len) {                    /* the engine's opaque bytes, as hex */
            printf(",\"payload\":\"");
            for (uint32_t i = 0; i < e->payload_len; i++) printf("%02x", ((const uint8_t *)e->payload)[i]);
            printf("\"");
        }
        printf("}\n");
        return;
    }
    printf("%s seq %llu %s id %llu side %s price %lld qty %lld ts %s (%llu)", name, (unsigned long long)e->seq,
           ev_name(e->type), (unsigned long long)e->order_id, side ? side : "-", (long long)e->price, (long long)e->qty, ts,
           (unsigned long long)e->ts_ns);
    if (e->payload_len) {
        printf(" payload %u bytes ", e->payload_len);
        for (uint32_t i = 0; i < e->payload_len; i++) printf("%02x", ((const uint8_t *)e->payload)[i]);
    }
    printf("\n");
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
        rc = pp_journal_open_archive(data_dir, events_archive, name, seq_from, &j);
        code = exit_for(rc);
        if (rc && events_archive)      /* pp_check reads the live files only: the archive's damage shows here */
            snprintf(r.detail, sizeof r.detail, "reading the archive (%s) and then the live journal failed", events_archive);
        else if (rc)                   /* damage between the check and the read (a running store), or I/O */
            snprintf(r.detail, sizeof r.detail, "the journal reader failed after the check found it recoverable");
    }
    if (code) {
        if (code == TOOL_DAMAGE) t->damaged++; else t->unreadable++;
        if (json) {
            json_problem(code, name, rc, &r, r.detail);
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

/* ---- --book-at: one instrument's book as it was after a past seq, read
 * with pp_book_at_dir (read-only, no lock; format 2). */
typedef struct bookat {
    const char *name; unsigned long long seq; int json;
    unsigned long long orders[2], qty[2];          /* [0] buy, [1] sell */
} bookat;

static int print_order(const pp_order *o, void *ctx) {
    bookat *a = (bookat *)ctx;
    char ts[64];
    fmt_time(o->ts_ns, ts, sizeof ts);
    const char *side = o->side == PP_BUY ? "buy" : o->side == PP_SELL ? "sell" : "?";
    int k = o->side == PP_SELL;
    a->orders[k]++;
    a->qty[k] += (unsigned long long)o->qty;
    if (a->json) {
        printf("{\"type\":\"order\",\"instrument\":");
        tool_json_str(stdout, a->name);
        printf(",\"at_seq\":%llu,\"side\":\"%s\",\"price\":%lld,\"qty\":%lld,\"order_id\":%llu,\"seq\":%llu,\"ts_ns\":%llu,"
               "\"time\":\"%s\"", a->seq, side, (long long)o->price, (long long)o->qty, (unsigned long long)o->id,
               (unsigned long long)o->seq, (unsigned long long)o->ts_ns, ts);
        if (o->payload_len) {
            printf(",\"payload\":\"");
            for (uint32_t i = 0; i < o->payload_len; i++) printf("%02x", ((const uint8_t *)o->payload)[i]);
            printf("\"");
        }
        printf("}\n");
        return 0;
    }
    printf("%s %s price %lld qty %lld id %llu seq %llu ts %s (%llu)", a->name, side, (long long)o->price, (long long)o->qty,
           (unsigned long long)o->id, (unsigned long long)o->seq, ts, (unsigned long long)o->ts_ns);
    if (o->payload_len) {
        printf(" payload %u bytes ", o->payload_len);
        for (uint32_t i = 0; i < o->payload_len; i++) printf("%02x", ((const uint8_t *)o->payload)[i]);
    }
    printf("\n");
    return 0;
}

static int book_at_main(const char *dir, const char *name, unsigned long long seq, const char *archive, int json) {
    bookat a;
    memset(&a, 0, sizeof a);
    a.name = name; a.seq = seq; a.json = json;
    if (!store2) { fprintf(stderr, "pp_inspect: --book-at: %s is not a format-2 store (one journal for the store)\n", dir); return TOOL_USAGE_OR_IO; }
    int rc = pp_book_at_dir(dir, archive, name, (uint64_t)seq, print_order, &a);
    int code = exit_for(rc);
    pp_check_result r;
    memset(&r, 0, sizeof r);
    if (code == TOOL_DAMAGE) pp_check(dir, name, &r);          /* where the damage is */
    const char *why = rc == PP_EINVAL ? "SEQ is past the instrument's journal"
                    : rc == PP_ENOENT ? "no such instrument, or its history up to SEQ is gone (compacted; --archive-dir?)" : "";
    if (json) {
        if (code) {
            json_problem(code, name, rc, &r, r.detail[0] ? r.detail : why);
        }
        printf("{\"type\":\"summary\",\"data_dir\":");
        tool_json_str(stdout, dir);
        printf(",\"instrument\":");
        tool_json_str(stdout, name);
        printf(",\"at_seq\":%llu,\"orders\":%llu,\"buy_orders\":%llu,\"sell_orders\":%llu,\"buy_qty\":%llu,\"sell_qty\":%llu,"
               "\"verdict\":\"%s\",\"exit\":%d}\n", seq, code ? 0 : a.orders[0] + a.orders[1], code ? 0 : a.orders[0],
               code ? 0 : a.orders[1], code ? 0 : a.qty[0], code ? 0 : a.qty[1], code ? (code == TOOL_DAMAGE ? "CORRUPT" : "not read") : "ok", code);
        return code;
    }
    if (code == TOOL_DAMAGE)
        printf("%s CORRUPT %s\n  at %s offset %llu: %s\n  no book printed\n", name, pp_strerror(rc), r.file,
               (unsigned long long)r.offset, r.detail);
    else if (code)
        fprintf(stderr, "pp_inspect: %s: book at seq %llu: %s%s%s\n", name, seq, pp_strerror(rc), why[0] ? ": " : "", why);
    else
        printf("%s at seq %llu: %llu order(s): %llu buy (qty %llu), %llu sell (qty %llu)\n", name, seq,
               a.orders[0] + a.orders[1], a.orders[0], a.qty[0], a.orders[1], a.qty[1]);
    return code;
}

/* ---- --fix: the repair path, after confirmation (as redis-check-aof --fix).
 * It shows what it will cut or move, asks (or --yes), keeps a copy of every
 * byte it cuts, and only then changes the store. It holds the store's lock
 * (flock on DATA_DIR/LOCK, as pp_open) the whole time: a store open in a
 * running process is refused (exit 2).
 *   format 2: damage below a segment's durable mark in the store journal.
 *     The damaged segment and every later one are copied whole into
 *     DATA_DIR/quarantine/fix-<UTC time>/ (each copy fsynced, then the
 *     directories); the later segments are removed (newest first, then the
 *     journal directory fsynced); the damaged segment is sealed at the
 *     damage (its next durable mark: end = the damage, sealed). So a crash
 *     at any step leaves a prefix of the journal that --fix can run on again.
 *   per-instrument layout: each damaged instrument's directory is moved
 *     (renamed) to DATA_DIR/quarantine/<name>-<UTC time>/. */
typedef struct fixseq { uint32_t iid; char name[PP_MAX_NAME + 1]; uint64_t first, last; int declared; } fixseq;
typedef struct fixscan { fixseq *v; size_t n, cap; } fixscan;

static fixseq *fix_book(fixscan *s, uint32_t iid) {
    for (size_t i = 0; i < s->n; i++) if (s->v[i].iid == iid) return &s->v[i];
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        fixseq *nv = (fixseq *)realloc(s->v, nc * sizeof *nv);
        if (!nv) return NULL;
        s->v = nv; s->cap = nc;
    }
    fixseq *b = &s->v[s->n++];
    memset(b, 0, sizeof *b);
    b->iid = iid;
    return b;
}

/* The valid prefix of the store journal: each book's name (declarations)
 * and the last seq it has there. */
static int fix_frame(void *ctx, uint64_t pos, const uint8_t *f, uint32_t len) {
    (void)pos;
    fixscan *s = (fixscan *)ctx;
    fixseq *b = fix_book(s, pp__get32(f + 12));
    if (!b) return PP_ENOMEM;
    if (f[8] == PP__SJ_DECLARE) {
        unsigned nl = f[9] <= PP_MAX_NAME ? f[9] : PP_MAX_NAME;
        memcpy(b->name, f + 24, nl); b->name[nl] = 0;
        b->declared = 1;
    } else if ((f[8] == PP__SJ_BATCH && len >= 64) || pp__is_evtype(f[8])) {
        if (!b->first) b->first = pp__get64(f + 16);
        b->last = pp__get64(f + (f[8] == PP__SJ_BATCH ? 24 : 16));
    }
    return 0;
}

static void utc_stamp(char *buf, size_t cap) {
    time_t now = time(NULL);
    struct tm tmv;
    strftime(buf, cap, "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tmv));
}

/* The store's lock (DATA_DIR/LOCK, flock LOCK_EX|LOCK_NB, as pp_open takes
 * it): the fd to keep open, or -1 with a message (held: exit 2). */
static int fix_lock(const char *dir) {
    char p[8192];
    snprintf(p, sizeof p, "%s/LOCK", dir);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);   /* pp_open makes it too */
    if (fd < 0) { fprintf(stderr, "pp_inspect: %s: %s\n", p, strerror(errno)); return -1; }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK)
            fprintf(stderr, "pp_inspect: --fix refuses: %s is open by a running store (its LOCK is held). Close it first.\n"
                            "Nothing was changed.\n", dir);
        else fprintf(stderr, "pp_inspect: %s: flock: %s\n", p, strerror(e));
        close(fd);
        return -1;
    }
    return fd;
}

/* yes, or the answer on stdin: only "y" or "yes". */
static int fix_ask(const char *question, int yes) {
    if (yes) { printf("%s (--yes)\n", question); return 1; }
    fprintf(stderr, "%s [y/N] ", question);
    fflush(stderr);
    char ans[64];
    if (!fgets(ans, sizeof ans, stdin)) { fprintf(stderr, "\n"); return 0; }
    ans[strcspn(ans, "\r\n")] = 0;
    return strcmp(ans, "y") == 0 || strcmp(ans, "yes") == 0;
}

static int fsync_dir_msg(const char *d) {
    if (plg_fsync_dir(d) == 0) return 0;
    fprintf(stderr, "pp_inspect: fsync %s: %s\n", d, strerror(errno));
    return -1;
}

/* DATA_DIR/quarantine (made, durably, if new) and in it a new directory
 * named prefix-<UTC time> (-2, -3 ... if taken), durable in its parent.
 * make_it 0: only the name (for a rename onto it). 0 or -1 (message). */
static int fix_quarantine(const char *dir, const char *prefix, int make_it, char *out, size_t cap) {
    char q[4096], stamp[32];
    snprintf(q, sizeof q, "%.4000s/quarantine", dir);
    if (mkdir(q, 0755) == 0) { if (fsync_dir_msg(dir)) return -1; }
    else if (errno != EEXIST) { fprintf(stderr, "pp_inspect: mkdir %s: %s\n", q, strerror(errno)); return -1; }
    utc_stamp(stamp, sizeof stamp);
    for (int k = 1; k < 1000; k++) {
        if (k == 1) snprintf(out, cap, "%s/%s-%s", q, prefix, stamp);
        else snprintf(out, cap, "%s/%s-%s-%d", q, prefix, stamp, k);
        struct stat sb;
        if (!make_it) { if (lstat(out, &sb) != 0 && errno == ENOENT) return 0; continue; }
        if (mkdir(out, 0755) == 0) return fsync_dir_msg(q);
        if (errno != EEXIST) { fprintf(stderr, "pp_inspect: mkdir %s: %s\n", out, strerror(errno)); return -1; }
    }
    fprintf(stderr, "pp_inspect: no free name in %s\n", q);
    return -1;
}

/* src copied whole to dst (new), fsynced. 0 or -1 (message). */
static int copy_file(const char *src, const char *dst) {
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    const char *bad = src;
    if (in >= 0) { out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644); bad = dst; }
    static char buf[1 << 20];
    if (in >= 0 && out >= 0) {
        for (;;) {
            ssize_t got = read(in, buf, sizeof buf);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) { bad = src; break; }
            if (got == 0) { rc = 0; break; }
            ssize_t done = 0;
            while (done < got) {
                ssize_t w = write(out, buf + done, (size_t)(got - done));
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) break;
                done += w;
            }
            if (done < got) { bad = dst; break; }
        }
        if (!rc && fsync(out) != 0) { rc = -1; bad = dst; }
    }
    int e = errno;
    if (out >= 0 && close(out) != 0 && !rc) { rc = -1; e = errno; bad = dst; }
    if (in >= 0) close(in);
    if (rc) fprintf(stderr, "pp_inspect: copying %s to %s: %s: %s\n", src, dst, bad, strerror(e ? e : EIO));
    return rc;
}

static unsigned long long file_size(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 ? (unsigned long long)sb.st_size : 0;
}

/* Every instrument checked (pp_check); prints the damaged and torn ones.
 * Returns the worst exit code; *damaged gets the names of the damaged ones
 * (malloc'd, NULL-terminated) when asked. */
static int fix_check_all(const char *dir, char ***damaged) {
    size_t n = 0, cap = 16, nd = 0;
    char **names = (char **)malloc(cap * sizeof *names);
    if (!names) return TOOL_USAGE_OR_IO;
    lister ls = {&names, &n, &cap};
    int lr = pp_list(dir, list_one, &ls);
    if (lr || !names) { fprintf(stderr, "pp_inspect: %s: %s\n", dir, pp_strerror(lr ? lr : PP_ENOMEM)); return TOOL_USAGE_OR_IO; }
    char **dv = damaged ? (char **)calloc(n + 1, sizeof *dv) : NULL;
    if (damaged && !dv) { fprintf(stderr, "pp_inspect: out of memory\n"); return TOOL_USAGE_OR_IO; }
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        pp_check_result r;
        memset(&r, 0, sizeof r);
        int rc = names[i] ? pp_check(dir, names[i], &r) : PP_ENOMEM, code = exit_for(rc);
        if (code > worst) worst = code;
        if (code == TOOL_DAMAGE)
            printf("damage     %s: %s at %s offset %llu: %s\n", names[i], pp_strerror(rc), r.file, (unsigned long long)r.offset, r.detail);
        else if (code)
            printf("error      %s: %s%s%s%s%s (not checked)\n", names[i] ? names[i] : "?", pp_strerror(rc), r.file[0] ? " at " : "",
                   r.file, r.detail[0] ? ": " : "", r.detail);
        else if (r.torn_tail)
            printf("torn tail  %s: at %s offset %llu (never acknowledged: pp_open cuts it; not damage)\n", names[i], r.file,
                   (unsigned long long)r.offset);
        if (code == TOOL_DAMAGE && dv) dv[nd++] = names[i]; else free(names[i]);
    }
    free(names);
    if (damaged) *damaged = dv;
    return worst;
}

/* Move path (a file) into the directory qdir/sub (made, durably), both
 * directories fsynced. 0 or -1 (message). */
static int fix_move(const char *path, const char *qdir, const char *sub) {
    char d[8192], dst[8192 + 512];
    snprintf(d, sizeof d, "%s", qdir);
    for (const char *p = sub; *p;) {           /* each level of sub, made durably */
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        size_t dl = strlen(d);
        snprintf(d + dl, sizeof d - dl, "/%.*s", (int)l, p);
        if (mkdir(d, 0755) == 0) { d[dl] = 0; if (fsync_dir_msg(d)) return -1; d[dl] = '/'; }
        else if (errno != EEXIST) { fprintf(stderr, "pp_inspect: mkdir %s: %s\n", d, strerror(errno)); return -1; }
        p += l + (e ? 1 : 0);
    }
    const char *base = strrchr(path, '/');
    snprintf(dst, sizeof dst, "%s/%s", d, base ? base + 1 : path);
    if (rename(path, dst) != 0) { fprintf(stderr, "pp_inspect: rename %s to %s: %s\n", path, dst, strerror(errno)); return -1; }
    char src_dir[8192];
    snprintf(src_dir, sizeof src_dir, "%s", path);
    char *slash = strrchr(src_dir, '/');
    if (slash) *slash = 0;
    if (fsync_dir_msg(d) || fsync_dir_msg(slash ? src_dir : ".")) return -1;
    printf("moved      %s to %s\n", path, dst);
    return 0;
}

/* Per instrument: the last seq of the journal that stays after the cut,
 * and its snapshots that cover events past the cut (taken after the
 * damaged frame's position: header bytes 40..47). Those go to the
 * quarantine with their market-data state (md/<seq>.ppm), so that every
 * book recovers to the point of the cut, as the journal does; but only
 * when what stays recovers the book whole up to the cut (its journal from
 * its first seq or from a snapshot that stays). Otherwise they stay (the
 * book recovers from them; its journal then lacks the seqs between) and
 * it is said. With qd NULL: print the plan; else carry it out. 0 or -1. */
static int fix_snaps(const char *dir, const fixscan *s, uint64_t cut_pos, const char *qd) {
    size_t n = 0, cap = 16;
    int bad = 0;
    char **names = (char **)malloc(cap * sizeof *names);
    lister ls = {&names, &n, &cap};
    if (!names || pp_list(dir, list_one, &ls) != 0 || !names) { free(names); fprintf(stderr, "pp_inspect: %s: cannot list the instruments\n", dir); return -1; }
    for (size_t i = 0; i < n; i++) {
        if (!names[i] || bad) continue;
        uint32_t iid = pp__cat_find(dir, names[i]);
        const fixseq *b = NULL;
        for (size_t k = 0; k < s->n && !b; k++)
            if (strcmp(s->v[k].name, names[i]) == 0 || (iid && s->v[k].iid == iid)) b = &s->v[k];
        uint64_t first = b ? b->first : 0, last = b ? b->last : 0, keep = 0, past_max = 0, past = 0;
        char sdir[8192], p[8192 + 64];
        snprintf(sdir, sizeof sdir, "%s/books/%s/snapshots", dir, names[i]);
        uint64_t *v = NULL; size_t nv = 0;
        pp__list_numbered(sdir, ".pps", 0, &v, &nv);
        for (size_t k = 0; k < nv; k++) {
            uint64_t pos = pp__snap_pos(NULL, sdir, v[k]);
            if (pos > cut_pos) { past++; if (v[k] > past_max) past_max = v[k]; }
            else if (v[k] > keep) keep = v[k];
        }
        int whole = last ? first <= keep + 1 : (b && b->declared);
        if (!qd) {
            if (last) printf("stays      %s: journal up to seq %llu\n", names[i], (unsigned long long)last);
            else printf("stays      %s: no event of it in the journal\n", names[i]);
        }
        if (past && whole && !qd) {   /* the plan */
            printf("           and %llu snapshot(s) of it past the cut (up to seq %llu) go to the quarantine with\n"
                   "           their market data: %s recovers to seq %llu, the point of the cut\n",
                   (unsigned long long)past, (unsigned long long)past_max, names[i], (unsigned long long)(last > keep ? last : keep));
        } else if (past && !qd) {
            printf("           its snapshot at seq %llu is past the cut, and what stays cannot rebuild the book without it:\n"
                   "           it stays, and %s recovers from it (its journal then lacks seqs %llu..%llu)\n",
                   (unsigned long long)past_max, names[i], (unsigned long long)last + 1, (unsigned long long)past_max);
        } else if (past && whole) {
            char sub[512];
            for (size_t k = 0; k < nv && !bad; k++) {
                if (pp__snap_pos(NULL, sdir, v[k]) <= cut_pos) continue;
                pp__numbered(p, sizeof p, sdir, v[k], ".pps");
                snprintf(sub, sizeof sub, "books/%s/snapshots", names[i]);
                bad = fix_move(p, qd, sub);
                snprintf(p, sizeof p, "%s/books/%s/md/%020llu.ppm", dir, names[i], (unsigned long long)v[k]);
                struct stat sb;
                snprintf(sub, sizeof sub, "books/%s/md", names[i]);
                if (!bad && stat(p, &sb) == 0) bad = fix_move(p, qd, sub);
            }
        }
        PINNACLE_PERSIST_FREE(v);
    }
    /* an instrument declared past the cut is gone from the store: its files
     * (books/<name>/: snapshots and market data, all past the cut) go too */
    char bd[8192];
    snprintf(bd, sizeof bd, "%s/books", dir);
    DIR *d = opendir(bd);
    struct dirent *e;
    while (!bad && d && (e = readdir(d)) != NULL) {
        if (pp_valid_name(e->d_name) != 0) continue;
        int known = 0;
        for (size_t i = 0; i < n && !known; i++) known = names[i] && strcmp(names[i], e->d_name) == 0;
        if (known) continue;
        char p[8192 + 512];
        snprintf(p, sizeof p, "%s/%s", bd, e->d_name);
        if (!qd) printf("gone       %s: declared past the cut; the store no longer has it, and %s goes to the quarantine\n",
                        e->d_name, p);
        else bad = fix_move(p, qd, "books");
    }
    if (d) closedir(d);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return bad;
}

static int fix_store2(const char *dir, int yes) {
    char jd[4096];
    snprintf(jd, sizeof jd, "%.4000s/journal", dir);
    fixscan s;
    memset(&s, 0, sizeof s);
    pp__sj *j = NULL;
    pp__sjwhere w;
    int rc = pp__sj_open(&j, jd, 64u << 10, 1, 0, fix_frame, &s, &w);
    if (j) pp__sj_free(j);
    static const char below[] = "invalid frame below the durable mark";
    if (rc != PP_ECORRUPT || strncmp(w.detail, below, sizeof below - 1) != 0 || w.offset < PP__PAGE) {
        free(s.v);
        if (rc && rc != PP_ECORRUPT) {
            fprintf(stderr, "pp_inspect: %s: %s at %s: %s\n", jd, pp_strerror(rc), w.file, w.detail);
            return TOOL_USAGE_OR_IO;
        }
        if (rc) {
            printf("damage     store journal: %s at %s offset %llu: %s\n", pp_strerror(rc), w.file, (unsigned long long)w.offset, w.detail);
            printf("not fixed  --fix cuts only an invalid frame below a segment's durable mark; this damage it leaves.\n"
                   "           Nothing was changed.\n");
            return TOOL_DAMAGE;
        }
        int worst = fix_check_all(dir, NULL);
        if (worst == TOOL_OK) {
            printf("nothing damaged in %s: nothing to fix, nothing changed\n", dir);
        } else if (worst == TOOL_DAMAGE) {
            printf("not fixed  the store journal is whole; the damage above is of a kind --fix does not repair.\n"
                   "           Nothing was changed.\n");
        }
        return worst;
    }
    /* the damage: file, offset; the segment's index; the later segments */
    uint64_t *v = NULL; size_t n = 0;
    const char *base = strrchr(w.file, '/');
    uint64_t index = strtoull(base ? base + 1 : w.file, NULL, 10), data_off = w.offset - PP__PAGE;
    if (pp__list_numbered(jd, ".ppj", 0, &v, &n) != 0 || !index) {
        fprintf(stderr, "pp_inspect: %s: cannot list the segments\n", jd);
        free(s.v); PINNACLE_PERSIST_FREE(v);
        return TOOL_USAGE_OR_IO;
    }
    uint8_t h[PP__PAGE];
    uint64_t salt = 0, idx = 0, db = 0, end, flags, gen = 0;
    {
        int fd = open(w.file, O_RDONLY | O_CLOEXEC);
        int r = fd < 0 ? pp__from_errno(errno) : pread(fd, h, sizeof h, 0) == (ssize_t)sizeof h ? 0 : PP_EIO;
        if (fd >= 0) close(fd);
        if (!r) r = pp__sj_hdr_decode(h, &salt, &idx, &db);
        if (!r && (idx != index || data_off > db || pp__sj_mark_get(h, salt, &end, &flags, &gen) < 0)) r = PP_ECORRUPT;
        if (r) {
            fprintf(stderr, "pp_inspect: %s: its header: %s\n", w.file, pp_strerror(r));
            free(s.v); PINNACLE_PERSIST_FREE(v);
            return TOOL_USAGE_OR_IO;
        }
    }
    uint64_t cut_pos = index * db + data_off;
    printf("damage     store journal: %s offset %llu: %s\n", w.file, (unsigned long long)w.offset, w.detail);
    printf("will cut   %s from offset %llu (%llu bytes of the file from there; the segment is sealed there)\n", w.file,
           (unsigned long long)w.offset, file_size(w.file) - (unsigned long long)w.offset);
    size_t later = 0;
    char p[8192];
    for (size_t i = 0; i < n; i++) {
        if (v[i] <= index) continue;
        pp__numbered(p, sizeof p, jd, v[i], ".ppj");
        printf("           and removes %s (%llu bytes)\n", p, file_size(p));
        later++;
    }
    if (!later) printf("           (no later segment)\n");
    if (fix_snaps(dir, &s, cut_pos, NULL)) { free(s.v); PINNACLE_PERSIST_FREE(v); return TOOL_USAGE_OR_IO; }
    char q[512];
    snprintf(q, sizeof q, "cut the store journal there? a copy of everything cut goes to %s/quarantine/fix-<UTC time>/", dir);
    if (!fix_ask(q, yes)) {
        printf("nothing changed (answer was not yes); the damage stays: pp_open refuses the store\n");
        free(s.v); PINNACLE_PERSIST_FREE(v);
        return TOOL_DAMAGE;
    }
    /* 1. copies, durable, before anything is changed */
    char qd[8192], dst[8192 + 64];
    int bad = fix_quarantine(dir, "fix", 1, qd, sizeof qd);
    for (size_t i = 0; i < n && !bad; i++) {
        if (v[i] < index) continue;
        pp__numbered(p, sizeof p, jd, v[i], ".ppj");
        snprintf(dst, sizeof dst, "%s/%020llu.ppj", qd, (unsigned long long)v[i]);
        bad = copy_file(p, dst);
        if (!bad) printf("copied     %s to %s\n", p, dst);
    }
    if (!bad) bad = fsync_dir_msg(qd);
    /* 2. the snapshots past the cut go to the quarantine (moved: renames) */
    if (!bad) bad = fix_snaps(dir, &s, cut_pos, qd);
    free(s.v);
    /* 3. the later segments go, newest first (a crash leaves a prefix), durably */
    for (size_t i = n; i-- > 0 && !bad;) {
        if (v[i] <= index) continue;
        pp__numbered(p, sizeof p, jd, v[i], ".ppj");
        if (unlink(p) != 0) { fprintf(stderr, "pp_inspect: unlink %s: %s\n", p, strerror(errno)); bad = -1; }
    }
    if (!bad && later) bad = fsync_dir_msg(jd);
    /* 4. the damaged segment sealed at the damage: its next durable mark */
    if (!bad) {
        int fd = open(w.file, O_RDWR | O_CLOEXEC);
        int r = fd < 0 ? pp__from_errno(errno) : 0;
        if (!r) r = pp__sj_mark_write(fd, salt, &gen, data_off, PP__SJ_SEALED);
        if (!r) r = pp__fdatasync(fd);
        if (fd >= 0) close(fd);
        if (r) { fprintf(stderr, "pp_inspect: sealing %s at offset %llu: %s\n", w.file, (unsigned long long)w.offset, pp_strerror(r)); bad = -1; }
        else printf("sealed     %s at offset %llu (durable mark generation %llu: data offset %llu, sealed)\n", w.file,
                    (unsigned long long)w.offset, (unsigned long long)gen, (unsigned long long)data_off);
    }
    PINNACLE_PERSIST_FREE(v);
    if (bad) {
        fprintf(stderr, "pp_inspect: --fix stopped; what is in %s stays. Run --fix again once the cause is fixed.\n", qd);
        return TOOL_USAGE_OR_IO;
    }
    printf("quarantine %s holds the cut segment files, whole\n", qd);
    int worst = fix_check_all(dir, NULL);
    if (worst == TOOL_OK) printf("fixed      %s: every instrument recoverable\n", dir);
    else printf("still      %s: %s after the cut\n", dir, verdict(worst));
    return worst;
}

static int fix_legacy(const char *dir, int yes) {
    char **dv = NULL;
    int worst = fix_check_all(dir, &dv);
    if (worst == TOOL_USAGE_OR_IO) {
        for (size_t i = 0; dv && dv[i]; i++) free(dv[i]);
        free(dv);
        printf("not fixed  an instrument could not be checked (above); fix that first. Nothing was changed.\n");
        return worst;
    }
    if (!dv || !dv[0]) {
        free(dv);
        printf("nothing damaged in %s: nothing to fix, nothing changed\n", dir);
        return TOOL_OK;
    }
    for (size_t i = 0; dv[i]; i++)
        printf("will move  %s/%s to %s/quarantine/%s-<UTC time>: the instrument is gone from the store until moved back\n",
               dir, dv[i], dir, dv[i]);
    if (!fix_ask("move the damaged instrument(s) aside, into the quarantine directory?", yes)) {
        printf("nothing changed (answer was not yes); pp_open refuses the damaged instrument(s)\n");
        for (size_t i = 0; dv[i]; i++) free(dv[i]);
        free(dv);
        return TOOL_DAMAGE;
    }
    int bad = 0;
    for (size_t i = 0; dv[i]; i++) {
        char src[8192], dst[8192], q[4096];
        snprintf(src, sizeof src, "%s/%s", dir, dv[i]);
        snprintf(q, sizeof q, "%.4000s/quarantine", dir);
        if (!bad) bad = fix_quarantine(dir, dv[i], 0, dst, sizeof dst);
        if (!bad && rename(src, dst) != 0) { fprintf(stderr, "pp_inspect: rename %s to %s: %s\n", src, dst, strerror(errno)); bad = -1; }
        if (!bad) bad = fsync_dir_msg(q);
        if (!bad) bad = fsync_dir_msg(dir);
        if (!bad) printf("moved      %s to %s (pp_open no longer sees it; move it back to restore it)\n", src, dst);
        free(dv[i]);
    }
    free(dv);
    if (bad) return TOOL_USAGE_OR_IO;
    worst = fix_check_all(dir, NULL);
    if (worst == TOOL_OK) printf("fixed      %s: every instrument left is recoverable\n", dir);
    else printf("still      %s: %s\n", dir, verdict(worst));
    return worst;
}

static int fix_main(const char *dir, int yes) {
    if (strlen(dir) > 3000) { fprintf(stderr, "pp_inspect: --fix: DATA_DIR is too long a path\n"); return TOOL_USAGE_OR_IO; }
    int lock = fix_lock(dir);
    if (lock < 0) return TOOL_USAGE_OR_IO;
    int rc = store2 ? fix_store2(dir, yes) : fix_legacy(dir, yes);
    close(lock);
    return rc;
}

int main(int argc, char **argv) {
    enum { OPT_FROM_TIME = 1000, OPT_TO_TIME, OPT_FROM, OPT_TO, OPT_FIX, OPT_BOOK_AT, OPT_ARCHIVE_DIR,
           OPT_VAULT, OPT_KEYNAME, OPT_PWFILE, OPT_PWFD, OPT_PWCMD };
    static const struct option longopts[] = {
        {"verbose", no_argument, 0, 'v'}, {"stats", no_argument, 0, 'S'}, {"json", no_argument, 0, 'j'},
        {"market-data", no_argument, 0, 'm'}, {"conn", no_argument, 0, 'c'}, {"hex", required_argument, 0, 'x'},
        {"from-time", required_argument, 0, OPT_FROM_TIME}, {"to-time", required_argument, 0, OPT_TO_TIME},
        {"events", no_argument, 0, 'e'}, {"instrument", required_argument, 0, 'i'},
        {"from", required_argument, 0, OPT_FROM}, {"to", required_argument, 0, OPT_TO},
        {"fix", no_argument, 0, OPT_FIX}, {"yes", no_argument, 0, 'y'},
        {"book-at", required_argument, 0, OPT_BOOK_AT}, {"archive-dir", required_argument, 0, OPT_ARCHIVE_DIR},
        {"key-file", required_argument, 0, 'k'}, {"vault", required_argument, 0, OPT_VAULT},
        {"key-name", required_argument, 0, OPT_KEYNAME}, {"password-file", required_argument, 0, OPT_PWFILE},
        {"password-fd", required_argument, 0, OPT_PWFD}, {"password-command", required_argument, 0, OPT_PWCMD},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int want_fix = 0, yes = 0, any_other = 0, verbose = 0, want_stats = 0, json = 0, want_conn = 0, want_events = 0, seq_given = 0, opt;
    unsigned long long hex = 0, book_at = 0;
    int want_book_at = 0;
    const char *archive = NULL;
    const char *vault_file = NULL, *key_name = NULL, *key_file[PLG_MAX_KEYS];
    size_t n_key_files = 0;
    pw_source pw = {-1, NULL, NULL};
    unsigned long long num;
    int key_opts = 0;
    /* the instruments: --instrument NAME and the arguments after DATA_DIR */
    size_t n = 0, cap = 16;
    char **names = (char **)malloc(cap * sizeof *names);
    if (!names) { fprintf(stderr, "pp_inspect: out of memory\n"); return TOOL_USAGE_OR_IO; }
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":vSjmcx:hVei:yk:", longopts, NULL)) != -1) {
        int is_key = opt == 'k' || opt == OPT_VAULT || opt == OPT_KEYNAME || opt == OPT_PWFILE || opt == OPT_PWFD || opt == OPT_PWCMD;
        key_opts |= is_key;
        if (opt != OPT_FIX && opt != 'y' && opt != 'h' && opt != 'V' && opt != ':' && opt != '?' && !is_key) any_other = 1;
        switch (opt) {
        case 'k':
            if (n_key_files == PLG_MAX_KEYS) return usage_error("%s", "too many --key-file options");
            key_file[n_key_files++] = optarg; break;
        case OPT_VAULT: vault_file = optarg; break;
        case OPT_KEYNAME: key_name = optarg; break;
        case OPT_PWFILE: pw.file = optarg; break;
        case OPT_PWCMD: pw.command = optarg; break;
        case OPT_PWFD:
            if (tool_parse_u64(optarg, 0, INT32_MAX, &num)) return usage_error("--password-fd: not a file descriptor: '%s'", optarg);
            pw.fd = (int)num; break;
        case OPT_FIX: want_fix = 1; break;
        case 'y': yes = 1; break;
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
        case OPT_BOOK_AT:
            if (tool_parse_u64(optarg, 0, UINT64_MAX, &book_at)) return usage_error("--book-at: not a seq (0 or more): '%s'", optarg);
            want_book_at = 1;
            break;
        case OPT_ARCHIVE_DIR: archive = optarg; break;
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
    if (yes && !want_fix) return usage_error("%s", "--yes goes with --fix");
    if (want_fix && (any_other || key_opts || argc - optind != 1)) return usage_error("%s", "--fix takes --yes and one DATA_DIR, nothing else");
    if (!vault_file != !key_name) return usage_error("%s", "--vault and --key-name go together");
    if (n_key_files && vault_file) return usage_error("%s", "give the key with --key-file or with --vault, not both");
    if (pw_source_given(&pw) && !vault_file) return usage_error("%s", "the --password-* options go with --vault");
    if ((pw.fd >= 0) + !!pw.file + !!pw.command > 1) return usage_error("%s", "give one password source (fd, file or command)");
    tk_prog = "pp_inspect";
    atexit(tk_wipe);
    for (size_t i = 0; i < n_key_files; i++) if (tk_load_file(key_file[i])) return TOOL_USAGE_OR_IO;
    if (vault_file && tk_load_vault(vault_file, key_name, &pw)) return TOOL_USAGE_OR_IO;
    if (tk_n) {                        /* the read-only calls of this thread use them (derived keys; ours wiped at exit) */
        int kr = pp_read_keys(tk_keys, tk_n);
        if (kr) { fprintf(stderr, "pp_inspect: the keys: %s\n", pp_strerror(kr)); return TOOL_USAGE_OR_IO; }
    }
    if (time_to < time_from) return usage_error("%s", "--to-time is before --from-time");
    if (hex && !want_conn) return usage_error("%s", "--hex goes with --conn");
    if (seq_to < seq_from) return usage_error("%s", "--to is before --from");
    if (seq_given && !want_events) return usage_error("%s", "--from and --to go with --events (--from-time/--to-time select by time)");
    if (want_events && (want_md || want_conn || verbose)) return usage_error("%s", "--events goes with none of --market-data, --conn, --verbose");
    if (archive && !want_book_at && !want_events) return usage_error("%s", "--archive-dir goes with --book-at or --events");
    events_archive = archive;
    if (want_book_at && (want_events || want_md || want_conn || verbose || want_stats || seq_given || time_from || time_to != UINT64_MAX))
        return usage_error("%s", "--book-at takes --instrument, --archive-dir and --json only");
    if (want_book_at && n + (size_t)(argc - optind - 1) != 1) return usage_error("%s", "--book-at takes one instrument (--instrument NAME) and DATA_DIR");
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
    if (want_fix) { free(names); return fix_main(dir, yes); }
    if (want_book_at) {
        const char *name = n ? names[0] : argv[optind];
        if (name && pp_valid_name(name) != 0) return usage_error("not a valid instrument name: '%s'", name);
        int r = name ? book_at_main(dir, name, book_at, archive, json) : TOOL_USAGE_OR_IO;
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        return r;
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
        if (lr && lr != PP_ENOMEM) {
            fprintf(stderr, "pp_inspect: %s: %s%s\n", dir, pp_strerror(lr),
                    lr == PP_ENEEDKEY ? "; give it with --key-file FILE or --vault FILE --key-name NAME" : "");
            return TOOL_USAGE_OR_IO;
        }
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
