/* SQLite peer: WAL journal, synchronous=FULL (the WAL is synced at every
 * commit), one transaction per batch, a prepared INSERT per record. Built by
 * bench/run.sh when libsqlite3-dev is installed. */
#define PEER_NAME "sqlite"
#define PEER_DURABILITY "journal_mode=WAL, synchronous=FULL, one transaction per batch"
#include "peer.h"
#include <sqlite3.h>

static sqlite3 *db;
static sqlite3_stmt *ins;

static int exec(const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s: %s\n", sql, err ? err : "?");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}
static int peer_open(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/log.db", dir);
    if (sqlite3_open(path, &db) != SQLITE_OK) return -1;
    if (exec("PRAGMA journal_mode=WAL") || exec("PRAGMA synchronous=FULL") ||
        exec("CREATE TABLE log(seq INTEGER PRIMARY KEY, data BLOB NOT NULL)"))
        return -1;
    return sqlite3_prepare_v2(db, "INSERT INTO log(seq, data) VALUES(?, ?)", -1, &ins, NULL) == SQLITE_OK ? 0 : -1;
}
static int peer_begin(void) { return exec("BEGIN"); }
static int peer_put(uint64_t seq, const void *data, uint32_t len) {
    sqlite3_bind_int64(ins, 1, (sqlite3_int64)seq);
    sqlite3_bind_blob(ins, 2, data, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    return rc == SQLITE_DONE ? 0 : -1;
}
static int peer_commit(void) { return exec("COMMIT"); }
static void peer_close(void) {
    sqlite3_finalize(ins);
    sqlite3_close(db);
}
