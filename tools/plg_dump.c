/* plg_dump - inspect a picolog log: its records, where its valid part ends,
 * and any corruption with the file and offset.
 *
 *   cc -O2 -I. tools/plg_dump.c -o plg_dump -luring -lpthread
 *   plg_dump LOGDIR                 summary: segments, records, end, verdict
 *   plg_dump -r [-s SEQ] [-n N] [-x BYTES] LOGDIR
 *                                   print records (from SEQ, at most N, BYTES of hex each)
 *
 * Exit status: 0 valid log (a torn tail is normal after a crash), 2 corruption
 * in the middle of the log, 1 other errors. Read-only: it never repairs. */
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void) {
    fprintf(stderr, "usage: plg_dump [-r] [-s SEQ] [-n N] [-x BYTES] LOGDIR\n");
    exit(1);
}

int main(int argc, char **argv) {
    int records = 0, opt;
    unsigned long long from = 0, limit = ~0ull, hex = 16;
    while ((opt = getopt(argc, argv, "rs:n:x:h")) != -1) {
        switch (opt) {
        case 'r': records = 1; break;
        case 's': from = strtoull(optarg, NULL, 10); records = 1; break;
        case 'n': limit = strtoull(optarg, NULL, 10); break;
        case 'x': hex = strtoull(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (optind != argc - 1) usage();
    const char *dir = argv[optind];

    if (records) {
        plg_reader *r;
        int rc = plg_reader_open(&r, dir);
        if (rc) { fprintf(stderr, "plg_dump: %s: %s\n", dir, plg_strerror(rc)); return 1; }
        if (from && (rc = plg_reader_seek(r, from)) != 0) {
            fprintf(stderr, "plg_dump: seek %llu: %s\n", from, plg_strerror(rc));
            plg_reader_close(r);
            return 1;
        }
        plg_record rec;
        unsigned long long n = 0;
        while (n < limit && (rc = plg_reader_next(r, &rec)) == 1) {
            printf("seq %llu len %u ", (unsigned long long)rec.seq, rec.len);
            const unsigned char *p = (const unsigned char *)rec.data;
            for (unsigned long long i = 0; i < hex && i < rec.len; i++) printf("%02x", p[i]);
            printf(rec.len > hex ? "...\n" : "\n");
            n++;
        }
        if (rc < 0) {
            uint64_t off;
            const char *f = plg_reader_where(r, &off);
            printf("CORRUPT: %s at %s offset %llu\n", plg_strerror(rc), f, (unsigned long long)off);
        }
        plg_reader_close(r);
        if (rc < 0) return rc == PLG_ECORRUPT ? 2 : 1;
        if (n == limit) return 0;
    }

    plg_check_result cr;
    int rc = plg_check(dir, &cr);
    printf("log        %s\n", dir);
    printf("segments   %llu\n", (unsigned long long)cr.segments);
    printf("records    %llu (seq %llu..%llu, %llu payload bytes)\n", (unsigned long long)cr.records,
           (unsigned long long)cr.first_seq, (unsigned long long)cr.last_seq, (unsigned long long)cr.bytes);
    if (rc == 0) {
        printf("valid end  %s offset %llu\n", cr.file, (unsigned long long)cr.offset);
        printf("verdict    %s\n", cr.torn_tail ? "valid; a torn tail after the end is discarded on open"
                                               : "valid; clean end");
        return 0;
    }
    if (rc == PLG_ECORRUPT) {
        printf("CORRUPT    %s offset %llu\n", cr.file, (unsigned long long)cr.offset);
        if (cr.detail[0]) printf("detail     %s\n", cr.detail);
        printf("verdict    corruption in the middle of the log: plg_open refuses it (fail closed).\n"
               "           Records 1..%llu are intact. Keep a copy before any repair.\n",
               (unsigned long long)cr.last_seq);
        return 2;
    }
    printf("error      %s%s%s\n", plg_strerror(rc), cr.detail[0] ? ": " : "", cr.detail);
    return 1;
}
