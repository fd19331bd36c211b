/* SPDX-License-Identifier: MIT */
/* A writer for tests/test_tools.sh (plg_dump --follow): appends N records to
 * LOGDIR in batches, each durable before the next, with small segments so a
 * follower crosses segment switches. Record k holds k as 8 little-endian
 * bytes, then 8 bytes of k * 31.
 *   plg_appender LOGDIR N BATCH READY_FILE GO_FILE [HOLD_FILE]
 * After the first batch is durable it creates READY_FILE, then waits (at
 * most 60 s) for GO_FILE before it appends the rest. With HOLD_FILE it keeps
 * the log open after the last record is durable until HOLD_FILE exists (at
 * most 60 s): a live writer whose records a follower must see.
 * With PLG_APPENDER_KEY_FILE set, the log is encrypted under the key that
 * file holds as 64 hex digits (vaultctl datakey show --hex's output). */
#define VAULT_IMPLEMENTATION
#include "vault.h"
#define PICOLOG_ENCRYPT
#define PICOLOG_IMPLEMENTATION
#include "picolog.h"
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void quiet(void *user, int code, const char *msg) { (void)user; (void)code; (void)msg; }

/* 64 hex digits (and a newline) from path into key; 0 or -1. */
static int read_hex_key(const char *path, uint8_t key[32]) {
    char text[80];
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(text + 2 * i, "%2x", &v) != 1) return -1;
        key[i] = (uint8_t)v;
    }
    vault_wipe(text, sizeof text);
    return n >= 64 ? 0 : -1;
}

static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) { fprintf(stderr, "usage: plg_appender LOGDIR N BATCH READY_FILE GO_FILE [HOLD_FILE]\n"); return 2; }
    uint64_t n = strtoull(argv[2], NULL, 10), batch = strtoull(argv[3], NULL, 10);
    plg_config c;
    memset(&c, 0, sizeof c);
    c.path = argv[1];
    c.segment_size = 64u << 10;
    c.ring_capacity = 1u << 20;
    c.log_fn = quiet;
    uint8_t key[32];
    const char *key_file = getenv("PLG_APPENDER_KEY_FILE");
    if (key_file && *key_file) {
        if (read_hex_key(key_file, key) != 0) { fprintf(stderr, "plg_appender: %s: not 64 hex digits\n", key_file); return 2; }
        c.encrypt_key = key;
    }
    plg_log *log;
    int rc = plg_open(&log, &c);
    if (rc) { fprintf(stderr, "plg_appender: %s\n", plg_strerror(rc)); return 1; }
    struct timespec ms = {0, 1000000};
    for (uint64_t k = 1; k <= n; k++) {
        unsigned char rec[16];
        put64(rec, k); put64(rec + 8, k * 31);
        int64_t s;
        while ((s = plg_append(log, rec, sizeof rec)) == PLG_EFULL) sched_yield();
        if (s != (int64_t)k) { fprintf(stderr, "plg_appender: append %llu gave %lld\n", (unsigned long long)k, (long long)s); return 1; }
        if (k % batch && k != n) continue;
        if ((rc = plg_wait(log, k, 30000000000ll)) != 0) { fprintf(stderr, "plg_appender: %s\n", plg_strerror(rc)); return 1; }
        if (k == batch) {
            FILE *f = fopen(argv[4], "w");
            if (!f) return 1;
            fclose(f);
            for (int i = 0; i < 60000 && access(argv[5], F_OK) != 0; i++) nanosleep(&ms, NULL);
        } else {
            nanosleep(&ms, NULL);
        }
    }
    for (int i = 0; argc == 7 && i < 60000 && access(argv[6], F_OK) != 0; i++) nanosleep(&ms, NULL);
    rc = plg_close(log);
    if (rc) { fprintf(stderr, "plg_appender: close: %s\n", plg_strerror(rc)); return 1; }
    return 0;
}
