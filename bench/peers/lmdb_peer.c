/* LMDB peer: default environment flags (full sync: every commit is synced),
 * one write transaction per batch, keys appended in order (MDB_APPEND).
 * Built by bench/run.sh when liblmdb-dev is installed. */
#define PEER_NAME "lmdb"
#define PEER_DURABILITY "default flags (full sync at commit), MDB_APPEND"
#include "peer.h"
#include <lmdb.h>

static MDB_env *env;
static MDB_txn *txn;
static MDB_dbi dbi;

static int peer_open(const char *dir) {
    int rc = mdb_env_create(&env);
    if (!rc) rc = mdb_env_set_mapsize(env, (size_t)16 << 30);   /* sparse; grows as used */
    if (!rc) rc = mdb_env_open(env, dir, 0, 0644);
    if (!rc) rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (!rc) rc = mdb_dbi_open(txn, NULL, 0, &dbi);
    if (!rc) rc = mdb_txn_commit(txn);
    if (rc) fprintf(stderr, "lmdb: %s\n", mdb_strerror(rc));
    return rc ? -1 : 0;
}
static int peer_begin(void) { return mdb_txn_begin(env, NULL, 0, &txn) ? -1 : 0; }
static int peer_put(uint64_t seq, const void *data, uint32_t len) {
    uint8_t k[8];
    for (int i = 0; i < 8; i++) k[i] = (uint8_t)(seq >> (56 - 8 * i));
    MDB_val key = {sizeof k, k}, val = {len, (void *)data};
    int rc = mdb_put(txn, dbi, &key, &val, MDB_APPEND);
    if (rc) { fprintf(stderr, "mdb_put: %s\n", mdb_strerror(rc)); mdb_txn_abort(txn); }
    return rc ? -1 : 0;
}
static int peer_commit(void) {
    int rc = mdb_txn_commit(txn);
    if (rc) fprintf(stderr, "mdb_txn_commit: %s\n", mdb_strerror(rc));
    return rc ? -1 : 0;
}
static void peer_close(void) { mdb_env_close(env); }
