/* SPDX-License-Identifier: MIT */
/* A writer for tests/test_tools.sh (pp_inspect --events): journals a fixed,
 * deterministic order flow on two instruments and prints, one JSON object a
 * line, every event as it was journaled, so the test can compare what
 * pp_inspect reads back with what was written.
 *   pp_eventwriter DATA_DIR N format2|legacy|strict|encrypted [READY_FILE GO_FILE]
 * N events per instrument (adds, executes, modifies, cancels, interleaved
 * across the two books); "legacy" makes the store in the per-instrument
 * layout (PP_LEGACY_LAYOUT), "strict" in strict mode (format 2: one
 * picolog log for the store),
 * "encrypted" in strict mode on format 2 encrypted at rest under the key in
 * the file PP_EVENTWRITER_KEY_FILE names (32 raw bytes or 64 hex digits). With READY_FILE and GO_FILE it keeps the store
 * open after the last event (synced): it creates READY_FILE, then waits (at
 * most 60 s) for GO_FILE before it closes (a reader beside a running store). Event k (0-based,
 * over both books) carries ts_ns = (1800000000 + k) s, cancels and modifies
 * included. The store is closed cleanly (snapshot, no compaction), so its
 * durable marks cover every event. PP_EVENTWRITER_SEGMENT_BYTES in the
 * environment sets journal_segment_bytes (default 1 MiB). Format 2 only (for
 * pp_inspect --book-at): PP_EVENTWRITER_PAYLOAD=1 gives each add a payload,
 * the text "order:<id>" (printed as "payload" in hex);
 * PP_EVENTWRITER_SNAPSHOT_AT=K snapshots both books after event K (0-based,
 * over both); PP_EVENTWRITER_ARCHIVE=DIR sets
 * archive_dir and compacts right after that snapshot (the segments before
 * it go to DIR/journal).
 *   pp_eventwriter DATA_DIR reopen
 * recovers a store as a program would (pp_open; pp_inspect --fix) and
 * prints "open RC", then "NAME LAST_SEQ" per book. Exit 0, or 1 with a
 * message. */
#define VAULT_IMPLEMENTATION
#include "vault.h"
#define PICOLOG_ENCRYPT                   /* "encrypted": pp_config.encrypt_key */
#define PINNACLE_PERSIST_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "tools/password.h"
#include "tools/keys.h"                   /* the key file, read as the tools read it */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static const char *NAMES[2] = {"AAA-USD", "BBB-USD"};
static const char *TYPES[5] = {"", "add", "cancel", "execute", "modify"};

static void quiet(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }
static void to_stderr(void *user, int code, const char *msg) { (void)user; (void)code; fprintf(stderr, "pinnacle: %s\n", msg); }

static int print_book(const char *name, pp_book *b, void *ctx) {
    (void)ctx;
    printf("%s %llu\n", name, (unsigned long long)pp_last_seq(b));
    return 0;
}

/* reopen: recover the store as a program would (pp_open), print "open RC",
 * then "NAME LAST_SEQ" per book, and close it. */
static int reopen(const char *dir) {
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = dir;
    c.flags = PP_NO_AUTO_COMPACT;
    c.log_fn = to_stderr;
    pp_store *s;
    int rc = pp_open(&s, &c);
    printf("open %d\n", rc);
    if (rc) return 1;
    pp_books(s, print_book, NULL);
    if ((rc = pp_close(s)) != 0) { fprintf(stderr, "pp_eventwriter: close: %s\n", pp_strerror(rc)); return 1; }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[2], "reopen") == 0) return reopen(argv[1]);
    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: pp_eventwriter DATA_DIR N format2|legacy|strict|encrypted [READY_FILE GO_FILE]\n"
                        "       pp_eventwriter DATA_DIR reopen\n");
        return 2;
    }
    long n = strtol(argv[2], NULL, 10);
    if (n < 8) { fprintf(stderr, "pp_eventwriter: N must be at least 8\n"); return 2; }
    pp_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = argv[1];
    c.flags = PP_NO_AUTO_COMPACT | (strcmp(argv[3], "legacy") == 0 ? PP_LEGACY_LAYOUT : 0);
    if (strcmp(argv[3], "strict") == 0) c.mode = PP_JOURNAL_STRICT;   /* format 2: one picolog log for the store */
    uint8_t key[32];
    if (strcmp(argv[3], "encrypted") == 0) {
        const char *kf = getenv("PP_EVENTWRITER_KEY_FILE");
        tk_prog = "pp_eventwriter";
        if (!kf || tk_load_into("PP_EVENTWRITER_KEY_FILE", kf, key)) return 2;
        c.mode = PP_JOURNAL_STRICT;
        c.encrypt_key = key;
    }
    c.expected_orders = 1024;
    c.ring_entries = 4096;
    c.journal_chunk_bytes = 256 << 10;
    c.journal_segment_bytes = 1 << 20;
    if (getenv("PP_EVENTWRITER_SEGMENT_BYTES")) {         /* small segments: a journal of several */
        c.journal_segment_bytes = strtoull(getenv("PP_EVENTWRITER_SEGMENT_BYTES"), NULL, 10);
        c.journal_chunk_bytes = (uint32_t)(c.journal_segment_bytes / 4);
    }
    c.log_fn = quiet;
    const char *e_pl = getenv("PP_EVENTWRITER_PAYLOAD"), *e_snap = getenv("PP_EVENTWRITER_SNAPSHOT_AT");
    int with_payload = e_pl && strcmp(e_pl, "1") == 0;
    uint64_t snap_at = e_snap ? strtoull(e_snap, NULL, 10) : UINT64_MAX;
    c.archive_dir = getenv("PP_EVENTWRITER_ARCHIVE");
    pp_store *s;
    pp_book *b[2];
    int rc = pp_open(&s, &c);
    for (int i = 0; i < 2 && !rc; i++) rc = pp_book_open(s, NAMES[i], &b[i]);
    if (rc) { fprintf(stderr, "pp_eventwriter: open: %s\n", pp_strerror(rc)); return 1; }
    uint64_t next_id[2] = {1000, 5000}, k = 0;
    for (long i = 0; i < n && !rc; i++) {
        for (int w = 0; w < 2 && !rc; w++, k++) {
            pp_event e;
            memset(&e, 0, sizeof e);
            e.ts_ns = (1800000000ull + k) * 1000000000ull;
            /* per book, in groups of four: add A, add B, then execute, modify or cancel one of them */
            uint64_t a = next_id[w], phase = (uint64_t)i % 4;
            if (phase < 2) {
                e.type = PP_EV_ADD; e.order_id = a + phase; e.side = (uint8_t)(phase ? PP_SELL : PP_BUY);
                e.price = 100000 + (int64_t)(i * 7 % 50) - (phase ? 0 : 60); e.qty = 10 + (int64_t)(i % 13);
            } else if (phase == 2) {
                e.type = (i / 4) % 2 ? PP_EV_MODIFY : PP_EV_EXECUTE; e.order_id = a;
                e.price = 99990 + (int64_t)(i % 5); e.qty = 3;
            } else {
                e.type = PP_EV_CANCEL; e.order_id = a + 1;
                next_id[w] += 2;
            }
            char pl[40];
            if (with_payload && e.type == PP_EV_ADD) {
                e.payload_len = (uint32_t)snprintf(pl, sizeof pl, "order:%llu", (unsigned long long)e.order_id);
                e.payload = pl;
            }
            if ((rc = pp_apply(b[w], &e)) != 0) { fprintf(stderr, "pp_eventwriter: event %llu: %s\n", (unsigned long long)k, pp_strerror(rc)); break; }
            printf("{\"instrument\":\"%s\",\"seq\":%llu,\"event\":\"%s\",\"order_id\":%llu,\"side\":%s,\"price\":%lld,\"qty\":%lld,\"ts_ns\":%llu",
                   NAMES[w], (unsigned long long)pp_last_seq(b[w]), TYPES[e.type], (unsigned long long)e.order_id,
                   e.side == PP_BUY ? "\"buy\"" : e.side == PP_SELL ? "\"sell\"" : "null",
                   e.type == PP_EV_CANCEL ? 0ll : (long long)e.price, e.type == PP_EV_CANCEL ? 0ll : (long long)e.qty,
                   (unsigned long long)e.ts_ns);
            if (e.payload_len) printf(",\"payload\":\"");
            for (uint32_t p = 0; p < e.payload_len; p++) printf("%02x", (unsigned)(uint8_t)pl[p]);
            printf(e.payload_len ? "\"}\n" : "}\n");
            if (k == snap_at) {                      /* both books, then (with an archive) a compaction */
                for (int i = 0; i < 2 && !rc; i++) rc = pp_snapshot(b[i]);
                if (!rc && c.archive_dir) rc = pp_compact(b[0]);
                if (rc) { fprintf(stderr, "pp_eventwriter: snapshot/compact: %s\n", pp_strerror(rc)); break; }
            }
        }
    }
    for (int i = 0; i < 2 && !rc; i++) rc = pp_sync(b[i]);
    fflush(stdout);
    if (!rc && argc == 6) {
        FILE *f = fopen(argv[4], "w");
        if (f) fclose(f);
        struct timespec ms = {0, 10 * 1000 * 1000};
        for (int i = 0; i < 6000 && access(argv[5], F_OK) != 0; i++) nanosleep(&ms, NULL);
    }
    int crc = pp_close(s);
    if (rc || crc) { if (crc) fprintf(stderr, "pp_eventwriter: close: %s\n", pp_strerror(crc)); return 1; }
    return 0;
}
