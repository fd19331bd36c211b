/* SPDX-License-Identifier: MIT */
/* plg_dump - inspect a picolog log: its records, where its valid part ends,
 * and any corruption with the file and offset; follows a live log (--follow);
 * cuts a torn tail after confirmation, keeping a copy (--fix).
 *
 *   cc -O2 -I. tools/plg_dump.c -o plg_dump -luring -lpthread
 *   plg_dump LOGDIR                      summary: segments, records, end, verdict
 *   plg_dump --records [--from SEQ] [--to SEQ] [--count N] [--hex BYTES] LOGDIR
 *   plg_dump --stats [--from SEQ] [--to SEQ] LOGDIR
 *   plg_dump --json ...                  JSON Lines: one object per record, then a summary
 *   plg_dump --verify LOGDIR             read every record (CRC checked), progress on a terminal
 *   plg_dump --follow [--from SEQ] LOGDIR   print records as they become durable, like tail -f
 *   plg_dump --fix [--yes] LOGDIR        cut a torn tail, after asking, keeping a copy
 *   plg_dump --key-file F ...            an encrypted log: F holds its 32-byte data key
 *   plg_dump --key-file NEW --key-file OLD ...  after a key rotation: every key still in use
 *   plg_dump --key-file OLD --reencrypt NEWDIR --new-key-file NEW LOGDIR   copy under the new key alone
 *   plg_dump --vault V --key-name N ...  the same, the key kept in vault V (vaultctl datakey create N)
 *
 * Exit status: 0 ok (a torn tail is normal after a crash), 1 damage found,
 * 2 usage or I/O error. The manual page is docs/man/plg_dump.1. */
#define VAULT_IMPLEMENTATION
#include "vault.h"
#define PICOLOG_ENCRYPT                  /* reads encrypted logs too, given --key-file */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include "tool.h"
#include "password.h"                    /* the vault password's sources: vaultctl's */
#include "keys.h"                        /* --key-file, --vault: shared with pp_inspect */

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *usage_text =
    "usage: plg_dump [OPTIONS] LOGDIR\n"
    "Inspect a picolog log (a directory of segments): where its valid part ends,\n"
    "a torn tail, corruption with the file and offset; its records; statistics.\n"
    "Read-only except --fix.\n"
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
    "  -c, --verify         read every record (each CRC checked) and count them; with\n"
    "                       --records or --stats the same walk. On a terminal, progress\n"
    "                       goes to stderr (also for --records/--stats); never otherwise\n"
    "  -F, --follow         like tail -f: print the records (from --from, default the\n"
    "                       first) and then each new one as a writer appends it, until\n"
    "                       SIGINT or SIGTERM (exit 0). With --json, one line per record\n"
    "                       and a summary line when stopped. It sleeps until the writer\n"
    "                       makes records durable (picolog's live reader) and never\n"
    "                       prints one that is not yet durable\n"
    "      --fix            repair a torn tail: show what will be cut, ask y/N on a\n"
    "                       terminal, copy the bytes it cuts (all but trailing zeros)\n"
    "                       to LOGDIR.cut-TIME next to the log (named in the output),\n"
    "                       then cut (by plg_open's\n"
    "                       recovery, which may keep a quarantine-*.plgq copy too).\n"
    "                       Refuses damage at or below the durable mark (corruption,\n"
    "                       exit 1): that is never cut. Run it with no writer open\n"
    "  -y, --yes            --fix without asking (needed when stdin is no terminal)\n"
    "      --reencrypt NEWDIR --new-key-file F\n"
    "                       copy every record, in order and with the same sequence\n"
    "                       numbers, into a new log NEWDIR (must not exist) sealed\n"
    "                       under the key in F alone, then check the copy; LOGDIR is\n"
    "                       not changed (give its keys with --key-file; a plain log\n"
    "                       is copied encrypted). Swap the directories after it, with\n"
    "                       no writer open. docs/encryption.md, \"Key rotation\"\n"
    "  -k, --key-file F     the log is encrypted: F holds its data key, 32 raw bytes\n"
    "                       or 64 hex digits (a newline after them is fine). Without\n"
    "                       it an encrypted log is reported as such (exit 2), never\n"
    "                       as damage; a wrong key is reported as a wrong key.\n"
    "                       Repeat it for a log whose key was rotated: each segment\n"
    "                       is read with the key its header names, and a segment\n"
    "                       whose key is missing is reported with the key id it\n"
    "                       needs. With --fix the first key is the current one\n"
    "      --vault FILE --key-name NAME\n"
    "                       the same, with the key kept in the vault FILE as data key\n"
    "                       NAME (vaultctl datakey create NAME). The vault password,\n"
    "                       as vaultctl takes it: --password-file PATH (a file only\n"
    "                       you can read), --password-fd N, --password-command CMD,\n"
    "                       else $VAULT_PASSWORD_FILE, else asked on the terminal;\n"
    "                       never on the command line. A wrong password or no such\n"
    "                       key: exit 2\n"
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
    "  plg_dump --stats --json data/trades.plg\n"
    "  plg_dump --follow --json data/trades.plg | consumer\n"
    "  plg_dump --fix data/trades.plg\n"
    "  plg_dump --vault secure_config.json --key-name trades --password-file ~/.vaultpw data/trades.plg\n";

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "plg_dump: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'plg_dump --help'.\n");
    return TOOL_USAGE_OR_IO;
}

/* --reencrypt's new key (--new-key-file); the others are keys.h's (tk_keys, tk_n). */
static uint8_t new_key_buf[32];
static void wipe_key(void) { tk_wipe(); vault_wipe(new_key_buf, sizeof new_key_buf); }

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
    int rc = plg_check_keys(dir, tk_keys, tk_n, &cr);
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
        if (rc == PLG_ENEEDKEY) fprintf(stderr, "plg_dump: the log is encrypted: give its key with --key-file FILE\n");
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

/* ---- progress: on a terminal only (isatty(stderr)), never in a pipe or file */
static int progress_on;
static uint64_t progress_next_ns;

/* Index of a segment file named NNNN.plg (0: not one). */
static unsigned long long seg_index(const char *name) {
    const char *b = strrchr(name, '/');
    b = b ? b + 1 : name;
    char *end;
    unsigned long long v = strtoull(b, &end, 10);
    return end != b && strcmp(end, ".plg") == 0 ? v : 0;
}

/* The lowest and highest segment index in dir (0, 0 when none). */
static void seg_range(const char *dir, unsigned long long *lo, unsigned long long *hi) {
    *lo = *hi = 0;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned long long k = seg_index(e->d_name);
        if (!k) continue;
        if (!*lo || k < *lo) *lo = k;
        if (k > *hi) *hi = k;
    }
    closedir(d);
}

/* A line "\r...": the first call, then at most 5 a second, then the final one. */
static void progress(const char *what, unsigned long long n, plg_reader *r, unsigned long long lo, unsigned long long hi,
                     int final) {
    if (!progress_on) return;
    uint64_t now = plg_now_ns();
    if (!final && now < progress_next_ns) return;
    progress_next_ns = now + 200000000ull;
    uint64_t off = 0;
    unsigned long long seg = r ? seg_index(plg_reader_where(r, &off)) : 0;
    if (seg && hi >= lo && seg >= lo) fprintf(stderr, "\rplg_dump: %s: %llu records, segment %llu of %llu   ", what, n, seg - lo + 1, hi - lo + 1);
    else fprintf(stderr, "\rplg_dump: %s: %llu records   ", what, n);
    if (final) fprintf(stderr, "done\n");
    fflush(stderr);
}

static void print_record(const plg_record *rec, unsigned long long hex, int json) {
    const unsigned char *p = (const unsigned char *)rec->data;
    unsigned long long show = hex < rec->len ? hex : rec->len;
    if (json) {
        printf("{\"type\":\"record\",\"seq\":%llu,\"len\":%u,\"hex\":\"", (unsigned long long)rec->seq, rec->len);
        for (unsigned long long i = 0; i < show; i++) printf("%02x", p[i]);
        printf("\",\"truncated\":%s}\n", show < rec->len ? "true" : "false");
    } else {
        printf("seq %llu len %u ", (unsigned long long)rec->seq, rec->len);
        for (unsigned long long i = 0; i < show; i++) printf("%02x", p[i]);
        printf(show < rec->len ? "...\n" : "\n");
    }
}

/* ---- --follow */
static volatile sig_atomic_t stop_flag;
static void on_stop(int sig) { (void)sig; stop_flag = 1; }

/* How long one plg_reader_wait lasts at most: a stop signal interrupts the
 * sleep but not the wait, so this bounds how late SIGINT/SIGTERM is seen. */
#define FOLLOW_WAIT_NS 100000000ll

/* tail -f for a log, on picolog's live reader: plg_reader_wait sleeps until
 * the writer's durable mark moves (a futex on the log's live.shm; a short
 * poll where that page is read-only) and the reader reads on from its end
 * into new segments, so nothing is re-seeked or reopened. It never returns a
 * record a running writer has not made durable. Records are printed once
 * each, in seq order, from --from to --to. */
static int follow(const char *dir, unsigned long long from, unsigned long long to, unsigned long long hex, int json) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;            /* no SA_RESTART: a sleep ends early */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    plg_reader *r = NULL;
    unsigned long long last = 0, n = 0;
    int done = 0, rc = plg_reader_open_keys(&r, dir, tk_keys, tk_n);
    if (rc == 0 && from > 1 && (rc = plg_reader_seek(r, from)) == PLG_ENOENT) {
        /* --from is beyond the end (or below the oldest kept record): read
         * from the start and skip what is below it */
        plg_reader_close(r); r = NULL;
        rc = plg_reader_open_keys(&r, dir, tk_keys, tk_n);
    }
    while (rc == 0 && !stop_flag && !done) {
        rc = plg_reader_wait(r, FOLLOW_WAIT_NS);
        if (rc <= 0) continue;          /* 0: nothing new yet; < 0: the loop ends */
        plg_record rec;
        while (!stop_flag && (rc = plg_reader_next(r, &rec)) == 1) {
            if (rec.seq < from || rec.seq <= last) continue;
            if (rec.seq > to) { done = 1; break; }
            print_record(&rec, hex, json);
            last = rec.seq; n++;
            if (last == to) { done = 1; break; }
        }
        fflush(stdout);
        if (rc > 0) rc = 0;
    }
    int code = exit_for(rc);
    if (rc < 0) {
        uint64_t off = 0;
        const char *where = r ? plg_reader_where(r, &off) : dir;
        fprintf(stderr, "plg_dump: %s: %s at %s offset %llu\n", dir, plg_strerror(rc), where, (unsigned long long)off);
    }
    if (json) {
        printf("{\"type\":\"summary\",\"log\":");
        tool_json_str(stdout, dir);
        printf(",\"status\":\"%s\",\"records\":%llu,\"last_seq\":%llu,\"error\":",
               code == TOOL_OK ? "stopped" : code == TOOL_DAMAGE ? "corrupt" : "error", n, last);
        if (rc < 0) tool_json_str(stdout, plg_strerror(rc)); else printf("null");
        printf(",\"exit\":%d}\n", code);
    } else if (!code) {
        fprintf(stderr, "plg_dump: stopped after %llu record(s), last seq %llu\n", n, last);
    }
    fflush(stdout);
    if (r) plg_reader_close(r);
    return code;
}

/* ---- --fix */
/* Copy the non-zero bytes from (file, offset) to the end of the log's
 * segment files into a new file `copy`: for each segment with any, a text
 * line "plg_dump-cut SEGMENT OFFSET LENGTH\n" and then LENGTH raw bytes.
 * Returns the number of bytes copied, or -1 (errno set; message printed). */
static long long copy_tail(const char *dir, const char *file, unsigned long long offset, const char *copy,
                           unsigned long long *nonzero) {
    unsigned long long lo, hi, first = seg_index(file);
    seg_range(dir, &lo, &hi);
    int out = -1;
    long long total = 0;
    *nonzero = 0;
    unsigned char *buf = (unsigned char *)malloc(1u << 20);
    if (!buf) return -1;
    for (unsigned long long k = first; k && k <= hi; k++) {
        char p[8192];
        snprintf(p, sizeof p, "%s/%020llu.plg", dir, k);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat sb;
        unsigned long long start = k == first ? offset : 0, end = start, pos;
        if (fstat(fd, &sb) != 0) { close(fd); total = -1; break; }
        /* the last non-zero byte after start */
        for (pos = start; pos < (unsigned long long)sb.st_size;) {
            ssize_t got = pread(fd, buf, 1u << 20, (off_t)pos);
            if (got <= 0) break;
            for (ssize_t i = 0; i < got; i++)
                if (buf[i]) { end = pos + (unsigned long long)i + 1; (*nonzero)++; }
            pos += (unsigned long long)got;
        }
        if (end > start && copy) {
            if (out < 0) {
                out = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (out < 0) { fprintf(stderr, "plg_dump: %s: %s\n", copy, strerror(errno)); close(fd); total = -1; break; }
            }
            char line[128];
            int ln = snprintf(line, sizeof line, "plg_dump-cut %020llu.plg %llu %llu\n", k, start, end - start);
            if (write(out, line, (size_t)ln) != ln) { total = -1; close(fd); break; }
            for (pos = start; pos < end;) {
                size_t want = end - pos < (1u << 20) ? (size_t)(end - pos) : (1u << 20);
                ssize_t got = pread(fd, buf, want, (off_t)pos);
                if (got <= 0 || write(out, buf, (size_t)got) != got) { total = -1; break; }
                pos += (unsigned long long)got; total += got;
            }
        }
        close(fd);
        if (total < 0) break;
    }
    free(buf);
    if (out >= 0) {
        if (total >= 0 && fsync(out) != 0) total = -1;
        if (close(out) != 0) total = -1;
        if (total < 0) fprintf(stderr, "plg_dump: writing %s: %s\n", copy, strerror(errno));
    }
    return total;
}

static void fix_quiet(void *user, int code, const char *msg) {
    (void)code;
    fprintf(stderr, "plg_dump: picolog: %s\n", msg);
    (void)user;
}

static int fix(const char *dir, int yes) {
    plg_check_result cr;
    int rc = plg_check_keys(dir, tk_keys, tk_n, &cr);
    if (rc) {
        if (exit_for(rc) != TOOL_DAMAGE) {
            fprintf(stderr, "plg_dump: %s: %s%s%s\n", dir, plg_strerror(rc), cr.detail[0] ? ": " : "", cr.detail);
            return TOOL_USAGE_OR_IO;
        }
        printf("CORRUPT    %s offset %llu\n", cr.file, (unsigned long long)cr.offset);
        if (cr.detail[0]) printf("detail     %s\n", cr.detail);
        fprintf(stderr, "plg_dump: --fix refuses: %s. This is damage at or below the durable mark (records that\n"
                        "were acknowledged), not a torn tail; cutting would lose them. Nothing was changed.\n"
                        "Keep a copy of the log and restore the missing records from a replica or backup.\n",
                plg_strerror(rc));
        return TOOL_DAMAGE;
    }
    printf("log        %s\n", dir);
    printf("keeps      %llu records (seq %llu..%llu)\n", (unsigned long long)cr.records,
           (unsigned long long)cr.first_seq, (unsigned long long)cr.last_seq);
    if (!cr.torn_tail) {
        printf("nothing to cut: the log ends cleanly at %s offset %llu\n", cr.file, (unsigned long long)cr.offset);
        return TOOL_OK;
    }
    unsigned long long nonzero;
    if (copy_tail(dir, cr.file, cr.offset, NULL, &nonzero) < 0) {
        fprintf(stderr, "plg_dump: %s: reading the tail: %s\n", dir, strerror(errno));
        return TOOL_USAGE_OR_IO;
    }
    printf("will cut   the torn tail from %s offset %llu: %llu non-zero byte(s) after the valid end,\n"
           "           above the durable mark (never acknowledged)\n",
           cr.file, (unsigned long long)cr.offset, nonzero);
    if (!yes) {
        if (!isatty(0)) {
            fprintf(stderr, "plg_dump: stdin is not a terminal: run with --yes to cut without asking. Nothing was cut.\n");
            return TOOL_USAGE_OR_IO;
        }
        fprintf(stderr, "Cut it (a copy is kept)? [y/N] ");
        fflush(stderr);
        char ans[32];
        if (!fgets(ans, sizeof ans, stdin) || (strcmp(ans, "y\n") != 0 && strcmp(ans, "yes\n") != 0)) {
            printf("nothing cut\n");
            return TOOL_OK;
        }
    }
    char copy[8192];
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dl--;
    time_t now = time(NULL);
    struct tm tmv;
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", gmtime_r(&now, &tmv));
    long long copied = -1;
    for (int k = 0; k < 100 && copied < 0; k++) {
        if (k) snprintf(copy, sizeof copy, "%.*s.cut-%s-%d", (int)dl, dir, stamp, k);
        else snprintf(copy, sizeof copy, "%.*s.cut-%s", (int)dl, dir, stamp);
        struct stat sb;
        if (stat(copy, &sb) == 0) continue;
        copied = copy_tail(dir, cr.file, cr.offset, copy, &nonzero);
        if (copied < 0) return TOOL_USAGE_OR_IO;
    }
    if (copied < 0) { fprintf(stderr, "plg_dump: no free name for the copy next to %s\n", dir); return TOOL_USAGE_OR_IO; }
    {   /* the copy's name in its directory is durable before anything is cut */
        char parent[8192];
        snprintf(parent, sizeof parent, "%s", copy);
        char *slash = strrchr(parent, '/');
        if (slash) { if (slash == parent) slash[1] = 0; else *slash = 0; } else snprintf(parent, sizeof parent, ".");
        if (copied > 0 && plg_fsync_dir(parent) != 0) { fprintf(stderr, "plg_dump: fsync %s failed\n", parent); return TOOL_USAGE_OR_IO; }
    }
    if (copied > 0) printf("copy       %s (%lld bytes)\n", copy, copied);
    else printf("copy       none needed: nothing but zeros after the valid end\n");
    plg_config c;
    memset(&c, 0, sizeof c);
    c.path = dir;
    c.log_fn = fix_quiet;
    c.encrypt_key = tk_n ? tk_keys[0] : NULL;   /* the first key is the current one */
    c.old_keys = tk_n > 1 ? tk_keys + 1 : NULL;
    c.n_old_keys = tk_n > 1 ? tk_n - 1 : 0;
    plg_log *log;
    rc = plg_open(&log, &c);   /* recovery cuts the tail, and refuses damage below the durable mark */
    if (rc) {
        int e = plg_open_errno();
        fprintf(stderr, "plg_dump: %s: cutting failed: %s%s%s. The copy stays.\n", dir, plg_strerror(rc), e ? ": " : "",
                e ? strerror(e) : "");
        return exit_for(rc) == TOOL_DAMAGE ? TOOL_DAMAGE : TOOL_USAGE_OR_IO;
    }
    plg_stats st;
    plg_get_stats(log, &st);
    if (st.quarantine) printf("quarantine %s (picolog's own copy)\n", st.quarantine);
    rc = plg_close(log);
    if (rc) { fprintf(stderr, "plg_dump: %s: closing: %s\n", dir, plg_strerror(rc)); return TOOL_USAGE_OR_IO; }
    rc = plg_check_keys(dir, tk_keys, tk_n, &cr);
    if (rc || cr.torn_tail) {
        fprintf(stderr, "plg_dump: %s: still not clean after the cut: %s\n", dir, rc ? plg_strerror(rc) : "torn tail");
        return rc ? exit_for(rc) : TOOL_USAGE_OR_IO;
    }
    printf("cut        done: %llu records (seq %llu..%llu), clean end at %s offset %llu\n",
           (unsigned long long)cr.records, (unsigned long long)cr.first_seq, (unsigned long long)cr.last_seq, cr.file,
           (unsigned long long)cr.offset);
    return TOOL_OK;
}

/* --reencrypt NEWDIR --new-key-file F: every record of the log, copied in
 * order into a new log NEWDIR sealed under the new key alone, with the same
 * sequence numbers (docs/encryption.md, "Re-encrypting old data"); then the
 * copy is checked against the original. The log itself is not changed; the
 * caller swaps the directories. Run with no writer open. */
static int reencrypt(const char *dir, const char *newdir) {
    struct stat st;
    if (lstat(newdir, &st) == 0) {
        fprintf(stderr, "plg_dump: --reencrypt %s: already exists; give a directory that does not\n", newdir);
        return TOOL_USAGE_OR_IO;
    }
    plg_check_result cr, cn;
    int rc = plg_check_keys(dir, tk_keys, tk_n, &cr);
    if (rc) {
        fprintf(stderr, "plg_dump: %s: %s%s%s. Nothing copied.\n", dir, plg_strerror(rc), cr.detail[0] ? ": " : "", cr.detail);
        return exit_for(rc) == TOOL_DAMAGE ? TOOL_DAMAGE : TOOL_USAGE_OR_IO;
    }
    plg_reader *r;
    plg_record rec;
    uint32_t maxlen = 0;                          /* the ring must hold the largest record */
    if ((rc = plg_reader_open_keys(&r, dir, tk_keys, tk_n)) == 0) {
        while ((rc = plg_reader_next(r, &rec)) == 1) if (rec.len > maxlen) maxlen = rec.len;
        plg_reader_close(r);
    }
    size_t ring = (size_t)8 << 20;
    while (ring < 2 * (size_t)maxlen + 65536 && ring < ((size_t)1 << 31)) ring *= 2;
    const uint8_t *nk[1] = { new_key_buf };
    plg_config c;
    memset(&c, 0, sizeof c);
    c.path = newdir;
    c.log_fn = fix_quiet;
    c.encrypt_key = new_key_buf;
    c.ring_capacity = ring;
    c.first_seq = cr.records ? cr.first_seq : cr.last_seq + 1;   /* the same seqs; an empty log goes on after its last */
    plg_log *out = NULL;
    uint64_t n = 0;
    if (rc == 0) rc = plg_open(&out, &c);
    if (rc == 0) rc = plg_reader_open_keys(&r, dir, tk_keys, tk_n);
    if (rc == 0) {
        while ((rc = plg_reader_next(r, &rec)) == 1) {
            int64_t got;
            while ((got = plg_append(out, rec.data, rec.len)) == PLG_EFULL) sched_yield();
            if (got != (int64_t)rec.seq) { rc = got < 0 ? (int)got : PLG_EINVAL; break; }
            n++;
        }
        plg_reader_close(r);
    }
    if (out) { int rc2 = plg_close(out); if (rc == 0) rc = rc2; }
    if (rc == 0) rc = plg_check_keys(newdir, nk, 1, &cn);
    if (rc == 0 && (cn.records != n || n != cr.records || (n && (cn.first_seq != cr.first_seq || cn.last_seq != cr.last_seq))))
        rc = PLG_ECORRUPT;
    if (rc) {
        fprintf(stderr, "plg_dump: --reencrypt: %s after %llu records; %s is incomplete: remove it. %s is unchanged.\n",
                plg_strerror(rc), (unsigned long long)n, newdir, dir);
        return TOOL_USAGE_OR_IO;
    }
    printf("reencrypt  %llu records (seq %llu..%llu) copied to %s under the new key alone, checked\n",
           (unsigned long long)n, (unsigned long long)cn.first_seq, (unsigned long long)cn.last_seq, newdir);
    printf("next       with no writer open: mv %s %s.old && mv %s %s; open it with the new key; destroy %s.old\n",
           dir, dir, newdir, dir, dir);
    return TOOL_OK;
}

int main(int argc, char **argv) {
    enum { OPT_FIX = 1000, OPT_VAULT, OPT_KEYNAME, OPT_PWFILE, OPT_PWFD, OPT_PWCMD, OPT_REENC, OPT_NEWKEY };
    static const struct option longopts[] = {
        {"records", no_argument, 0, 'r'}, {"from", required_argument, 0, 'f'},
        {"to", required_argument, 0, 't'}, {"count", required_argument, 0, 'n'},
        {"hex", required_argument, 0, 'x'}, {"stats", no_argument, 0, 'S'},
        {"json", no_argument, 0, 'j'}, {"verify", no_argument, 0, 'c'},
        {"follow", no_argument, 0, 'F'},
        {"fix", no_argument, 0, OPT_FIX}, {"yes", no_argument, 0, 'y'}, {"key-file", required_argument, 0, 'k'},
        {"vault", required_argument, 0, OPT_VAULT}, {"key-name", required_argument, 0, OPT_KEYNAME},
        {"password-file", required_argument, 0, OPT_PWFILE}, {"password-fd", required_argument, 0, OPT_PWFD},
        {"password-command", required_argument, 0, OPT_PWCMD},
        {"reencrypt", required_argument, 0, OPT_REENC}, {"new-key-file", required_argument, 0, OPT_NEWKEY},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    const char *vault_file = NULL, *key_name = NULL, *key_file[PLG_MAX_KEYS];
    size_t n_key_files = 0;
    const char *reenc_dir = NULL, *new_key_file = NULL;
    pw_source pw = {-1, NULL, NULL};
    unsigned long long num;
    int records = 0, want_stats = 0, json = 0, verify = 0, want_follow = 0, want_fix = 0, yes = 0, opt;
    unsigned long long from = 1, to = UINT64_MAX, limit = UINT64_MAX, hex = 16;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":rf:s:t:n:x:SjcFyk:hV", longopts, NULL)) != -1) {
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
        case 'c': verify = 1; break;
        case 'F': want_follow = 1; break;
        case OPT_FIX: want_fix = 1; break;
        case 'y': yes = 1; break;
        case 'k':
            if (n_key_files == PLG_MAX_KEYS) return usage_error("%s", "too many --key-file options");
            key_file[n_key_files++] = optarg; break;
        case OPT_VAULT: vault_file = optarg; break;
        case OPT_KEYNAME: key_name = optarg; break;
        case OPT_PWFILE: pw.file = optarg; break;
        case OPT_PWCMD: pw.command = optarg; break;
        case OPT_REENC: reenc_dir = optarg; break;
        case OPT_NEWKEY: new_key_file = optarg; break;
        case OPT_PWFD:
            if (tool_parse_u64(optarg, 0, INT32_MAX, &num)) return usage_error("--password-fd: not a file descriptor: '%s'", optarg);
            pw.fd = (int)num; break;
        case 'h': fputs(usage_text, stdout); return TOOL_OK;
        case 'V': printf("plg_dump (picolog) %s\n", PICOLOG_VERSION_STRING); return TOOL_OK;
        case ':': return usage_error("option needs a value: %s", argv[optind - 1]);
        default: return usage_error("unknown option: %s", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) return usage_error("%s", optind >= argc ? "no LOGDIR given" : "more than one LOGDIR given");
    if (to < from) return usage_error("%s", "--to is below --from");
    if (want_fix && (want_follow || want_stats || records || verify || json))
        return usage_error("%s", "--fix goes with --yes only");
    if (yes && !want_fix) return usage_error("%s", "--yes goes with --fix");
    if (want_follow && (want_stats || verify)) return usage_error("%s", "--follow does not go with --stats or --verify");
    if (!vault_file != !key_name) return usage_error("%s", "--vault and --key-name go together");
    if (!reenc_dir != !new_key_file) return usage_error("%s", "--reencrypt and --new-key-file go together");
    if (reenc_dir && (want_fix || want_follow || want_stats || records || verify || json))
        return usage_error("%s", "--reencrypt goes with the key options only");
    if (n_key_files && vault_file) return usage_error("%s", "give the key with --key-file or with --vault, not both");
    if (pw_source_given(&pw) && !vault_file) return usage_error("%s", "the --password-* options go with --vault");
    if ((pw.fd >= 0) + !!pw.file + !!pw.command > 1) return usage_error("%s", "give one password source (fd, file or command)");
    tk_prog = "plg_dump";
    atexit(wipe_key);
    for (size_t i = 0; i < n_key_files; i++) if (tk_load_file(key_file[i])) return TOOL_USAGE_OR_IO;
    if (vault_file && tk_load_vault(vault_file, key_name, &pw)) return TOOL_USAGE_OR_IO;
    if (new_key_file && tk_load_into("--new-key-file", new_key_file, new_key_buf)) return TOOL_USAGE_OR_IO;
    const char *dir = argv[optind];
    if (reenc_dir) return reencrypt(dir, reenc_dir);
    if (want_fix) return fix(dir, yes);
    if (want_follow) return follow(dir, from, to, hex, json);
    if (want_stats) records = 0;  /* --stats reads the range but prints no records */
    progress_on = isatty(2) && !(records && isatty(1));   /* records on the same terminal are progress enough */

    if (records || want_stats || verify) {
        plg_reader *r;
        int rc = plg_reader_open_keys(&r, dir, tk_keys, tk_n);
        if (rc) {
            fprintf(stderr, "plg_dump: %s: %s\n", dir, plg_strerror(rc));
            if (json) summary(dir, 1);
            return exit_for(rc) == TOOL_DAMAGE ? TOOL_DAMAGE : TOOL_USAGE_OR_IO;
        }
        const char *what = verify ? "verifying" : want_stats ? "reading" : "dumping";
        unsigned long long lo, hi;
        seg_range(dir, &lo, &hi);
        plg_record rec;
        stats st;
        memset(&st, 0, sizeof st);
        unsigned long long n = 0;
        int empty = 0;
        progress(what, 0, r, lo, hi, 0);
        rc = from > 1 ? plg_reader_seek(r, from) : 0;
        if (rc == PLG_ENOENT) rc = 0, empty = 1;  /* nothing at or after --from: an empty range */
        while (rc == 0 && !empty && n < limit && (rc = plg_reader_next(r, &rec)) == 1) {
            rc = 0;
            if (rec.seq < from) continue;     /* --from below the oldest kept record */
            if (rec.seq > to) break;
            n++;
            progress(what, n, r, lo, hi, 0);
            if (want_stats) { stats_add(&st, rec.len); continue; }
            if (records) print_record(&rec, hex, json);
        }
        progress(what, n, r, lo, hi, 1);
        int code = TOOL_OK;
        if (rc < 0) {
            uint64_t off;
            const char *f = plg_reader_where(r, &off);
            code = exit_for(rc);
            if (!json) printf("%s: %s at %s offset %llu\n", code == TOOL_DAMAGE ? "CORRUPT" : "ERROR", plg_strerror(rc), f,
                              (unsigned long long)off);
        } else if (verify && !json && !records && !want_stats) {
            printf("verified   %llu records read, each checked (CRC32C, sequence)\n", n);
        }
        plg_reader_close(r);
        if (want_stats) print_stats(&st, dir, json);
        if (json || want_stats || (verify && !records)) {
            int s = summary(dir, json);
            return code > s ? code : s;
        }
        return code;
    }
    return summary(dir, json);
}
