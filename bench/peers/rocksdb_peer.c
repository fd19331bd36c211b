/* RocksDB peer: a WriteBatch per batch, written with sync = true (the WAL is
 * fsynced before the write returns). Built by bench/run.sh when
 * librocksdb-dev is installed. */
#define PEER_NAME "rocksdb"
#define PEER_DURABILITY "WriteBatch, WriteOptions.sync=true"
#include "peer.h"
#include <rocksdb/c.h>

static rocksdb_t *db;
static rocksdb_options_t *opts;
static rocksdb_writeoptions_t *wo;
static rocksdb_writebatch_t *wb;

static int peer_open(const char *dir) {
    char *err = NULL;
    opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(opts, 1);
    db = rocksdb_open(opts, dir, &err);
    if (err) { fprintf(stderr, "rocksdb_open: %s\n", err); free(err); return -1; }
    wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, 1);
    wb = rocksdb_writebatch_create();
    return 0;
}
static int peer_begin(void) { rocksdb_writebatch_clear(wb); return 0; }
static int peer_put(uint64_t seq, const void *data, uint32_t len) {
    uint8_t key[8];
    for (int i = 0; i < 8; i++) key[i] = (uint8_t)(seq >> (56 - 8 * i));   /* big-endian: keys in order */
    rocksdb_writebatch_put(wb, (const char *)key, sizeof key, (const char *)data, len);
    return 0;
}
static int peer_commit(void) {
    char *err = NULL;
    rocksdb_write(db, wo, wb, &err);
    if (err) { fprintf(stderr, "rocksdb_write: %s\n", err); free(err); return -1; }
    return 0;
}
static void peer_close(void) {
    rocksdb_writebatch_destroy(wb);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_close(db);
    rocksdb_options_destroy(opts);
}
