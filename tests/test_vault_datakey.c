/* vault.h data keys: the 32-byte keys of picolog's encryption at rest, kept
 * in the vault under "datakey/NAME" (vault_data_key_create, vault_data_key). */
// NO_TSAN (vault.h starts no thread and neither does this test: nothing for TSan to check)
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include "t.h"

/* Small PBKDF2 counts keep the test fast. */
static vault_options fast(void) {
    vault_options o;
    memset(&o, 0, sizeof o);
    o.iterations = 1000; o.min_iterations = 1000;
    return o;
}

static int all_zero(const uint8_t *p, size_t n) {
    uint8_t acc = 0;
    size_t i;
    for (i = 0; i < n; i++) acc |= p[i];
    return acc == 0;
}

static int collect(const char *name, void *ctx) {
    char *acc = (char *)ctx;
    if (strlen(acc) + strlen(name) + 2 < 256) { strcat(acc, name); strcat(acc, ","); }
    return 0;
}

/* A created key is saved at once: another handle opened from the file (the
 * creating one still open, never saved by the caller) reads the same key. */
static void test_data_key_created_is_saved_and_read_back(void) {
    const char *d = t_dir("vault_datakey_roundtrip");
    char p[600], acc[256] = "";
    vault_options o = fast();
    vault *v, *w;
    uint8_t k1[32], k2[32], got[32];
    snprintf(p, sizeof p, "%s/v.json", d);
    REQUIRE(vault_create_ex(&v, p, "pw", &o) == 0);
    CHECK_EQ(vault_set(v, "coinbase.api_key", "ak"), 0);
    CHECK_EQ(vault_data_key_create(v, "trades", k1), 0);
    CHECK_EQ(vault_data_key_create(v, "orders", k2), 0);
    CHECK(!all_zero(k1, 32));
    CHECK(memcmp(k1, k2, 32) != 0);                   /* random, not derived from the name */
    REQUIRE(vault_open_ex(&w, p, "pw", &o) == 0);
    CHECK_EQ(vault_data_key(w, "trades", got), 0);
    CHECK(memcmp(got, k1, 32) == 0);
    CHECK_EQ(vault_data_key(w, "orders", got), 0);
    CHECK(memcmp(got, k2, 32) == 0);
    CHECK_EQ(vault_list(w, collect, acc), 3);
    CHECK(strcmp(acc, "coinbase.api_key,datakey/orders,datakey/trades,") == 0);
    vault_close(w);
    CHECK_EQ(vault_data_key(v, "trades", got), 0);   /* the creating handle too */
    CHECK(memcmp(got, k1, 32) == 0);
    vault_close(v);
    CHECK_EQ(vault_open_ex(&w, p, "wrong", &o), VAULT_EAUTH);
    vault_wipe(k1, 32); vault_wipe(k2, 32); vault_wipe(got, 32);
}

/* An existing key is never replaced (data encrypted under it would be lost),
 * nor an entry put under the reserved name by other means. */
static void test_data_key_create_refuses_an_existing_entry(void) {
    const char *d = t_dir("vault_datakey_exists");
    char p[600];
    vault_options o = fast();
    vault *v;
    uint8_t k1[32], k2[32], got[32];
    const uint8_t mine[32] = {1, 2, 3};
    snprintf(p, sizeof p, "%s/v.json", d);
    REQUIRE(vault_create_ex(&v, p, "pw", &o) == 0);
    CHECK_EQ(vault_data_key_create(v, "trades", k1), 0);
    memset(k2, 0xAA, sizeof k2);
    CHECK_EQ(vault_data_key_create(v, "trades", k2), VAULT_EEXIST);
    CHECK(all_zero(k2, 32));
    CHECK_EQ(vault_data_key(v, "trades", got), 0);
    CHECK(memcmp(got, k1, 32) == 0);
    CHECK_EQ(vault_set_bytes(v, "datakey/imported", mine, sizeof mine), 0);   /* a key the caller had */
    CHECK_EQ(vault_data_key_create(v, "imported", NULL), VAULT_EEXIST);
    CHECK_EQ(vault_data_key(v, "imported", got), 0);
    CHECK(memcmp(got, mine, 32) == 0);
    vault_close(v);
    REQUIRE(vault_open_ex(&v, p, "pw", &o) == 0);    /* and on disk */
    CHECK_EQ(vault_data_key(v, "trades", got), 0);
    CHECK(memcmp(got, k1, 32) == 0);
    vault_close(v);
}

/* Absent is VAULT_ENOTFOUND; a credential of the same short name is not a
 * key; an entry under the reserved name that is not 32 bytes is
 * VAULT_ENOTKEY. The caller's buffer is zeros after every error. */
static void test_data_key_absent_or_not_a_key(void) {
    const char *d = t_dir("vault_datakey_notkey");
    char p[600];
    vault_options o = fast();
    vault *v;
    uint8_t got[32], bytes[33];
    memset(bytes, 0x5c, sizeof bytes);
    snprintf(p, sizeof p, "%s/v.json", d);
    REQUIRE(vault_create_ex(&v, p, "pw", &o) == 0);
    memset(got, 0xAA, sizeof got);
    CHECK_EQ(vault_data_key(v, "trades", got), VAULT_ENOTFOUND);
    CHECK(all_zero(got, 32));
    CHECK_EQ(vault_set_bytes(v, "trades", bytes, 32), 0);             /* a credential, not a key */
    CHECK_EQ(vault_data_key(v, "trades", got), VAULT_ENOTFOUND);
    CHECK_EQ(vault_set_bytes(v, "datakey/short", bytes, 31), 0);
    memset(got, 0xAA, sizeof got);
    CHECK_EQ(vault_data_key(v, "short", got), VAULT_ENOTKEY);
    CHECK(all_zero(got, 32));
    CHECK_EQ(vault_set_bytes(v, "datakey/long", bytes, 33), 0);
    memset(got, 0xAA, sizeof got);
    CHECK_EQ(vault_data_key(v, "long", got), VAULT_ENOTKEY);
    CHECK(all_zero(got, 32));
    CHECK_EQ(vault_set(v, "datakey/text", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), 0);
    CHECK_EQ(vault_data_key(v, "text", got), VAULT_ENOTKEY);         /* hex is not the key itself */
    CHECK(strstr(vault_strerror(VAULT_ENOTKEY), "not a data key") != NULL);
    vault_close(v);
}

static void test_data_key_names_checked(void) {
    const char *d = t_dir("vault_datakey_names");
    char p[600];
    vault_options o = fast();
    vault *v;
    uint8_t got[32];
    size_t room = VAULT_NAME_MAX - (sizeof VAULT_DATA_KEY_PREFIX - 1);
    char *big = (char *)malloc(room + 2);
    REQUIRE(big != NULL);
    snprintf(p, sizeof p, "%s/v.json", d);
    if (vault_create_ex(&v, p, "pw", &o) != 0) { free(big); REQUIRE(0); }
    CHECK_EQ(vault_data_key_create(v, "", got), VAULT_EINVAL);
    CHECK_EQ(vault_data_key_create(v, NULL, got), VAULT_EINVAL);
    CHECK_EQ(vault_data_key_create(NULL, "x", got), VAULT_EINVAL);
    CHECK_EQ(vault_data_key(v, "", got), VAULT_EINVAL);
    CHECK_EQ(vault_data_key(v, "x", NULL), VAULT_EINVAL);
    memset(big, 'n', room + 1); big[room + 1] = 0;
    CHECK_EQ(vault_data_key_create(v, big, got), VAULT_ETOOBIG);
    CHECK_EQ(vault_data_key(v, big, got), VAULT_ETOOBIG);
    big[room] = 0;                                    /* prefix + name: exactly VAULT_NAME_MAX */
    CHECK_EQ(vault_data_key_create(v, big, NULL), 0);
    CHECK_EQ(vault_data_key(v, big, got), 0);
    CHECK_EQ(vault_count(v), 1);
    vault_close(v);
    free(big);
}

/* A save that fails leaves no key behind in the handle: the caller would
 * otherwise encrypt data under a key that is in no file. */
static void test_data_key_failed_save_leaves_nothing(void) {
    const char *d = t_dir("vault_datakey_failsave");
    char dir[600], moved[600], p[700];
    vault_options o = fast();
    vault *v;
    uint8_t k[32], got[32];
    snprintf(dir, sizeof dir, "%s/sub", d);
    snprintf(moved, sizeof moved, "%s/moved", d);
    snprintf(p, sizeof p, "%s/v.json", dir);
    REQUIRE(mkdir(dir, 0700) == 0);
    REQUIRE(vault_create_ex(&v, p, "pw", &o) == 0);
    CHECK(rename(dir, moved) == 0);                   /* the vault's directory is gone */
    memset(k, 0xAA, sizeof k);
    CHECK(vault_data_key_create(v, "trades", k) < 0);
    CHECK(all_zero(k, 32));
    CHECK_EQ(vault_data_key(v, "trades", got), VAULT_ENOTFOUND);
    CHECK_EQ(vault_count(v), 0);
    CHECK(rename(moved, dir) == 0);
    CHECK_EQ(vault_data_key_create(v, "trades", k), 0);   /* and can be made once it works */
    vault_close(v);
    REQUIRE(vault_open_ex(&v, p, "pw", &o) == 0);
    CHECK_EQ(vault_data_key(v, "trades", got), 0);
    CHECK(memcmp(got, k, 32) == 0);
    vault_close(v);
}

int main(void) {
    (void)t_rand;
    RUN(test_data_key_created_is_saved_and_read_back);
    RUN(test_data_key_create_refuses_an_existing_entry);
    RUN(test_data_key_absent_or_not_a_key);
    RUN(test_data_key_names_checked);
    RUN(test_data_key_failed_save_leaves_nothing);
    return t_done();
}
