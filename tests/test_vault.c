/* vault.h store: secure_config.json round trips, authentication, strict
 * parsing of bad input, file checks, atomic saves, rekey/rotate, audit. */
// NO_TSAN (vault.h starts no thread and neither does this test: nothing for TSan to check)
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include "t.h"
#include "conditions.h"
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <sys/file.h>
#include <time.h>
#include <sys/wait.h>

/* (REQUIRE evaluates its argument twice: calls go through r_ first.)
 * Small PBKDF2 counts keep the suite fast; one test runs the default. */
static vault_options fast(void) {
    vault_options o;
    memset(&o, 0, sizeof o);
    o.iterations = 1000; o.min_iterations = 1000;
    return o;
}

#define MAXEV 64
static struct { int n; int ev[MAXEV]; int res[MAXEV]; char msg[MAXEV][600]; } au;
static void audit_cb(const vault_audit_event *e, void *ud) {
    (void)ud;
    if (au.n < MAXEV) {
        au.ev[au.n] = e->event; au.res[au.n] = e->result;
        snprintf(au.msg[au.n], sizeof au.msg[0], "%s", e->message ? e->message : "");
        au.n++;
    }
}
static int audit_has(int ev, int res) {
    int i;
    for (i = 0; i < au.n; i++) if (au.ev[i] == ev && au.res[i] == res) return 1;
    return 0;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *b;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END); n = ftell(f); fseek(f, 0, SEEK_SET);
    b = (char *)malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(b); return NULL; }
    b[n] = 0; fclose(f);
    if (len) *len = (size_t)n;
    return b;
}
static void spit(const char *path, const char *data, size_t len) {
    int fd;
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) { perror("spit"); exit(2); }
    fchmod(fd, 0600);
    close(fd);
}
static const char *pathin(const char *dir, const char *name) {
    static char b[4][600]; static int k;
    char *p = b[k++ & 3];
    snprintf(p, 600, "%s/%s", dir, name);
    return p;
}

/* Replaces the value of "key" in a JSON text (whose values are strings or numbers). */
static char *with_field(const char *js, const char *key, const char *newval) {
    char pat[64];
    const char *k, *v, *e;
    char *out;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    k = strstr(js, pat);
    if (!k) return NULL;
    v = k + strlen(pat);
    while (*v == ' ') v++;
    e = v;
    if (*e == '"') { e++; while (*e != '"') e++; e++; } else { while (*e && *e != ',' && *e != '\n' && *e != '}') e++; }
    out = (char *)malloc(strlen(js) + strlen(newval) + 1);
    memcpy(out, js, (size_t)(v - js));
    strcpy(out + (v - js), newval);
    strcat(out, e);
    return out;
}
static char *field(const char *js, const char *key) {   /* the raw value text */
    char pat[64];
    const char *v, *e;
    char *out;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    v = strstr(js, pat) + strlen(pat);
    while (*v == ' ') v++;
    e = v;
    if (*e == '"') { e++; while (*e != '"') e++; e++; } else { while (*e && *e != ',' && *e != '\n') e++; }
    out = (char *)malloc((size_t)(e - v) + 1);
    memcpy(out, v, (size_t)(e - v)); out[e - v] = 0;
    return out;
}

static int open_text(const char *dir, const char *text, const vault_options *o) {
    const char *p = pathin(dir, "probe.json");
    vault *v = NULL;
    int rc;
    spit(p, text, strlen(text));
    rc = vault_open_ex(&v, p, "pw", o);
    if (rc == 0) vault_close(v);
    return rc;
}

static void test_create_open_roundtrip(void) {
    const char *d = t_dir("vault_roundtrip"), *p = pathin(d, "secure_config.json");
    vault_options o = fast();
    vault *v;
    char buf[128];
    struct stat st;
    { int r_ = vault_create_ex(&v, p, "hunter2", &o); CHECK_EQ(r_, 0); if (r_) return; }
    CHECK(stat(p, &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(vault_count(v), 0);
    CHECK_EQ(vault_set(v, "coinbase.api_key", "AKIA-1234"), 0);
    CHECK_EQ(vault_set(v, "coinbase.api_secret", "s3cr3t/+=="), 0);
    CHECK_EQ(vault_set(v, "binance.passphrase", ""), 0);
    CHECK_EQ(vault_count(v), 3);
    CHECK_EQ(vault_save(v), 0);
    vault_close(v);
    v = NULL;
    { int r_ = vault_open_ex(&v, p, "hunter2", &o); CHECK_EQ(r_, 0); if (r_) return; }
    CHECK_EQ(vault_count(v), 3);
    CHECK_EQ(vault_get(v, "coinbase.api_key", buf, sizeof buf), 9);
    CHECK(strcmp(buf, "AKIA-1234") == 0);
    CHECK_EQ(vault_get(v, "coinbase.api_secret", buf, sizeof buf), 10);
    CHECK(strcmp(buf, "s3cr3t/+==") == 0);
    CHECK_EQ(vault_get(v, "binance.passphrase", buf, sizeof buf), 0);
    CHECK_EQ(buf[0], 0);
    CHECK_EQ(vault_get(v, "nope", buf, sizeof buf), VAULT_ENOTFOUND);
    CHECK_EQ(vault_get(v, "coinbase.api_key", NULL, 0), 9);          /* length query */
    CHECK_EQ(vault_get(v, "coinbase.api_key", buf, 9), VAULT_ERANGE); /* no room for NUL */
    CHECK_EQ(vault_get(v, "coinbase.api_key", buf, 10), 9);
    vault_close(v);
    /* names and values never appear in the file */
    char *js = slurp(p, NULL);
    REQUIRE(js != NULL);
    CHECK(strstr(js, "coinbase") == NULL && strstr(js, "AKIA") == NULL && strstr(js, "binance") == NULL);
    CHECK(strstr(js, "\"kdf_iterations\": 1000") != NULL);
    free(js);
}

static void test_create_refuses_existing(void) {
    const char *d = t_dir("vault_exists"), *p = pathin(d, "secure_config.json");
    vault_options o = fast();
    vault *v;
    spit(p, "x", 1);
    CHECK_EQ(vault_create_ex(&v, p, "pw", &o), VAULT_EEXIST);
    CHECK(v == NULL);
    char *js = slurp(p, NULL);
    CHECK(js && strcmp(js, "x") == 0);                 /* untouched */
    free(js);
    CHECK(symlink("elsewhere", pathin(d, "link.json")) == 0);
    CHECK_EQ(vault_create_ex(&v, pathin(d, "link.json"), "pw", &o), VAULT_EEXIST);
    CHECK_EQ(vault_create_ex(&v, pathin(d, "no/such/dir.json"), "pw", &o), VAULT_ENOENT);
}

static int collect(const char *name, void *ctx) {
    char *acc = (char *)ctx;
    strcat(acc, name); strcat(acc, ",");
    return 0;
}
static int stop_after_two(const char *name, void *ctx) { (void)name; return ++*(int *)ctx == 2; }

static void test_set_get_remove_list(void) {
    const char *d = t_dir("vault_ops"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v;
    char acc[256] = "", buf[64];
    int k = 0;
    { int r_ = vault_create_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    CHECK_EQ(vault_set(v, "b", "2"), 0);
    CHECK_EQ(vault_set(v, "a", "1"), 0);
    CHECK_EQ(vault_set(v, "c", "3"), 0);
    CHECK_EQ(vault_set(v, "b", "two"), 0);              /* replace */
    CHECK_EQ(vault_list(v, collect, acc), 3);
    CHECK(strcmp(acc, "a,b,c,") == 0);
    CHECK_EQ(vault_list(v, stop_after_two, &k), 2);
    CHECK_EQ(vault_get(v, "b", buf, sizeof buf), 3);
    CHECK(strcmp(buf, "two") == 0);
    CHECK_EQ(vault_remove(v, "b"), 0);
    CHECK_EQ(vault_remove(v, "b"), VAULT_ENOTFOUND);
    CHECK_EQ(vault_count(v), 2);
    CHECK_EQ(vault_set(v, "", "x"), VAULT_EINVAL);
    CHECK_EQ(vault_set(v, NULL, "x"), VAULT_EINVAL);
    char *big = (char *)malloc(VAULT_VALUE_MAX + 2);
    memset(big, 'v', VAULT_VALUE_MAX + 1); big[VAULT_VALUE_MAX + 1] = 0;
    CHECK_EQ(vault_set(v, "big", big), VAULT_ETOOBIG);
    big[VAULT_VALUE_MAX] = 0;
    CHECK_EQ(vault_set(v, "big", big), 0);              /* exactly the limit */
    memset(big, 'n', VAULT_NAME_MAX + 1); big[VAULT_NAME_MAX + 1] = 0;
    CHECK_EQ(vault_set(v, big, "x"), VAULT_ETOOBIG);
    big[VAULT_NAME_MAX] = 0;
    CHECK_EQ(vault_set(v, big, "x"), 0);
    CHECK_EQ(vault_save(v), 0);
    vault_close(v);
    { int r_ = vault_open_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    CHECK_EQ(vault_get(v, big, buf, sizeof buf), 1);
    CHECK_EQ(vault_get(v, "big", NULL, 0), VAULT_VALUE_MAX);
    vault_close(v);
    free(big);
}

/* Random operations against a simple model; then save, reopen, compare. */
static void test_random_ops_model(void) {
    const char *d = t_dir("vault_model"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v;
    char names[40][16], vals[40][80], buf[100];
    int have[40] = {0}, i, bad = 0;
    uint64_t s = 42;
    { int r_ = vault_create_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    for (i = 0; i < 40; i++) snprintf(names[i], sizeof names[i], "cred%02d", (int)(t_rand(&s) % 100));
    for (i = 0; i < 600; i++) {
        int k = (int)(t_rand(&s) % 40), j, op = (int)(t_rand(&s) % 3);
        for (j = 0; j < k; j++) if (!strcmp(names[j], names[k])) { k = j; break; }   /* same name, same slot */
        if (op < 2) {
            int l = (int)(t_rand(&s) % 79), m;
            for (m = 0; m < l; m++) vals[k][m] = (char)('!' + t_rand(&s) % 90);
            vals[k][l] = 0;
            bad += vault_set(v, names[k], vals[k]) != 0;
            have[k] = 1;
        } else {
            bad += vault_remove(v, names[k]) != (have[k] ? 0 : VAULT_ENOTFOUND);
            have[k] = 0;
        }
        if (i % 150 == 149) {
            CHECK_EQ(vault_save(v), 0);
            vault_close(v);
            { int r_ = vault_open_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
        }
    }
    int n = 0;
    for (i = 0; i < 40; i++) {
        int j, dup = 0;
        for (j = 0; j < i; j++) if (!strcmp(names[j], names[i])) dup = 1;
        if (dup) continue;
        if (have[i]) { n++; bad += vault_get(v, names[i], buf, sizeof buf) != (int)strlen(vals[i]) || strcmp(buf, vals[i]); }
        else bad += vault_get(v, names[i], buf, sizeof buf) != VAULT_ENOTFOUND;
    }
    CHECK_EQ(vault_count(v), n);
    CHECK_EQ(bad, 0);
    vault_close(v);
}

static void test_wrong_password_and_tampering(void) {
    const char *d = t_dir("vault_auth"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v;
    char *js, *t;
    o.audit = audit_cb;
    { int r_ = vault_create_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    vault_set(v, "k", "secret-value");
    CHECK_EQ(vault_save(v), 0);
    vault_close(v);
    memset(&au, 0, sizeof au);
    CHECK_EQ(vault_open_ex(&v, p, "Pw", &o), VAULT_EAUTH);
    CHECK(v == NULL);
    CHECK(audit_has(VAULT_AUDIT_AUTH_FAILED, VAULT_EAUTH));
    CHECK(audit_has(VAULT_AUDIT_OPEN, VAULT_EAUTH));
    CHECK_EQ(vault_open_ex(&v, p, "", &o), VAULT_EAUTH);
    js = slurp(p, NULL);
    REQUIRE(js != NULL);
    /* flip one base64 character (keeping it canonical) in each authenticated field */
    static const char *const fields[] = {"ciphertext", "tag", "iv", "kdf_salt"};
    int i;
    for (i = 0; i < 4; i++) {
        char *val = field(js, fields[i]);
        val[2] = val[2] == 'A' ? 'B' : 'A';
        t = with_field(js, fields[i], val);
        CHECK_EQ(open_text(d, t, &o), VAULT_EAUTH);
        free(t); free(val);
    }
    t = with_field(js, "kdf_iterations", "1001");          /* in range, but not what was MACed */
    CHECK_EQ(open_text(d, t, &o), VAULT_EAUTH);
    free(t);
    /* a ciphertext one block shorter / longer */
    char *ct = field(js, "ciphertext");
    size_t cl = strlen(ct);
    /* 64 base64 chars = 48 bytes = 3 blocks: remove them from the middle */
    if (cl > 1 + 64 + 1) {
        char *s2 = (char *)malloc(cl + 1);
        memcpy(s2, ct, 1 + 4); strcpy(s2 + 5, ct + 5 + 64);
        t = with_field(js, "ciphertext", s2);
        CHECK_EQ(open_text(d, t, &o), VAULT_EAUTH);
        free(t); free(s2);
    }
    free(ct);
    /* the untouched text still opens */
    CHECK_EQ(open_text(d, js, &o), 0);
    free(js);
    /* no secret in any audit message */
    for (i = 0; i < au.n; i++) CHECK(strstr(au.msg[i], "secret-value") == NULL && strstr(au.msg[i], "Pw") == NULL);
}

static void test_kdf_param_range(void) {
    const char *d = t_dir("vault_kdfrange"), *p = pathin(d, "v.json");
    vault_options o = fast(), def;
    vault *v;
    char *js, *t;
    memset(&def, 0, sizeof def);
    { int r_ = vault_create_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    vault_close(v);
    js = slurp(p, NULL);
    REQUIRE(js != NULL);
    CHECK_EQ(open_text(d, js, &def), VAULT_EKDFPARAM);     /* 1000 < default minimum 100000: downgrade */
    t = with_field(js, "kdf_iterations", "999");
    CHECK_EQ(open_text(d, t, &o), VAULT_EKDFPARAM);        /* below the floor even when allowed low */
    free(t);
    t = with_field(js, "kdf_iterations", "4294967295");
    CHECK_EQ(open_text(d, t, &o), VAULT_EKDFPARAM);        /* DoS: refused before any KDF work */
    free(t);
    t = with_field(js, "kdf_iterations", "0");
    CHECK_EQ(open_text(d, t, &o), VAULT_EKDFPARAM);
    free(t);
    t = with_field(js, "kdf_iterations", "184467440737095516150000");   /* saturates, still refused */
    CHECK_EQ(open_text(d, t, &o), VAULT_EKDFPARAM);
    free(t);
    free(js);
    /* creating a weak vault is refused too */
    vault_options weak = fast();
    weak.iterations = 500;
    CHECK_EQ(vault_create_ex(&v, pathin(d, "weak.json"), "pw", &weak), VAULT_EKDFPARAM);
    weak.iterations = 20000000;
    CHECK_EQ(vault_create_ex(&v, pathin(d, "weak.json"), "pw", &weak), VAULT_EKDFPARAM);
    CHECK(access(pathin(d, "weak.json"), F_OK) != 0);
    vault_options got = vault_options_defaults(NULL);
    CHECK_EQ(got.iterations, 600000); CHECK_EQ(got.min_iterations, 100000); CHECK_EQ(got.max_iterations, 10000000);
}

static void test_bad_input(void) {
    const char *d = t_dir("vault_badinput"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v;
    char *js, *t;
    size_t len, i;
    { int r_ = vault_create_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    vault_set(v, "k", "v");
    vault_save(v);
    vault_close(v);
    js = slurp(p, &len);
    REQUIRE(js != NULL);
    /* every truncation is a format error, never a crash */
    int bad = 0;
    for (i = 0; i + 1 < len; i++) {
        const char *q = pathin(d, "trunc.json");
        spit(q, js, i);
        int rc = vault_open_ex(&v, q, "pw", &o);
        if (rc != VAULT_EFORMAT) { bad++; if (bad < 5) printf("  truncated at %zu: %s\n", i, vault_strerror(rc)); }
        if (rc == 0) vault_close(v);
    }
    CHECK_EQ(bad, 0);
    static const char *const junk[] = {"", "hello", "[]", "{}", "{\"format\": \"vault.h/secure_config\"}", "{,}",
        "\x00\x01\x02", "{\"version\": 1", "null", "{\"format\": \"vault.h/secure_config\", \"version\": true}",
        "{\"format\": \"vault.h/secure_config\", \"version\": -1}", "{\"format\": \"vault.h/secure_config\", \"version\": 01}",
        "{\"format\": \"vault.h/secure_config\", \"version\": {\"a\": 1}}", "{\"a\": \"\\u0041\"}"};
    for (i = 0; i < sizeof junk / sizeof junk[0]; i++) CHECK_EQ(open_text(d, junk[i], &o), VAULT_EFORMAT);
    t = with_field(js, "version", "3");            CHECK_EQ(open_text(d, t, &o), VAULT_EVERSION); free(t);
    t = with_field(js, "version", "2");            CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);   /* 2 needs its counter */
    t = with_field(js, "version", "0");            CHECK_EQ(open_text(d, t, &o), VAULT_EVERSION); free(t);
    t = with_field(js, "version", "1.0");          CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);
    t = with_field(js, "version", "99999999999999999999999"); CHECK_EQ(open_text(d, t, &o), VAULT_EVERSION); free(t);
    t = with_field(js, "version", "\"1\"");        CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);
    t = with_field(js, "kdf", "\"scrypt\"");       CHECK_EQ(open_text(d, t, &o), VAULT_EALGO); free(t);
    t = with_field(js, "cipher", "\"aes-128-cbc\""); CHECK_EQ(open_text(d, t, &o), VAULT_EALGO); free(t);
    t = with_field(js, "mac", "\"none\"");         CHECK_EQ(open_text(d, t, &o), VAULT_EALGO); free(t);
    t = with_field(js, "format", "\"something-else\""); CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);
    /* duplicate and unknown keys */
    t = with_field(js, "mac", "\"hmac-sha256\", \"mac\": \"hmac-sha256\""); CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);
    t = with_field(js, "mac", "\"hmac-sha256\", \"comment\": \"hi\"");     CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);
    /* non-canonical base64 */
    char *salt = field(js, "kdf_salt");                 /* 32 bytes: 44 chars ending in one '=' */
    size_t sl = strlen(salt);                           /* includes the quotes */
    char *s2 = strdup(salt);
    s2[sl - 3] = 'B';                                   /* last data char before '=': its 2 unused bits now 01 */
    t = with_field(js, "kdf_salt", s2); CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);
    strcpy(s2, salt); s2[sl - 2] = 'A';                 /* no padding '=' */
    t = with_field(js, "kdf_salt", s2); CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);
    strcpy(s2, salt); s2[5] = ' ';                      /* whitespace */
    t = with_field(js, "kdf_salt", s2); CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);
    strcpy(s2, salt); s2[5] = '-';                      /* url-safe alphabet */
    t = with_field(js, "kdf_salt", s2); CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);
    t = with_field(js, "kdf_salt", "\"AAAA\"");         /* wrong length */
    CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);
    t = with_field(js, "iv", "\"\"");
    CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);
    t = with_field(js, "ciphertext", "\"AAAAAAAAAAAAAAAAAAAAAAAA\"");   /* 18 bytes: not whole blocks */
    CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);
    free(s2); free(salt);
    /* huge: a ciphertext bigger than any map (within the file limit), and a file over the limit */
    size_t hn = (VAULT_MAP_MAX / 3 * 4) + 4096, k;
    char *huge = (char *)malloc(hn + 3);
    huge[0] = '"'; for (k = 1; k <= hn; k++) huge[k] = 'A'; huge[hn + 1] = '"'; huge[hn + 2] = 0;
    t = with_field(js, "ciphertext", huge);
    CHECK_EQ(open_text(d, t, &o), VAULT_EFORMAT); free(t);
    free(huge);
    hn = VAULT_FILE_MAX + 10;
    huge = (char *)malloc(hn + 1);
    memset(huge, ' ', hn); huge[hn] = 0; huge[0] = '{'; huge[hn - 1] = '}';
    CHECK_EQ(open_text(d, huge, &o), VAULT_ETOOBIG);
    free(huge);
    free(js);
}


/* Bounded random mutations of a valid file straight into the loader: every
 * result is one of the documented codes, never a crash (ASan/UBSan runs this
 * too). Real fuzzing is a separate issue. */
static void test_mutations_never_crash(void) {
    const char *d = t_dir("vault_mutate"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v, *w;
    char *js, *m, msg[512];
    size_t len, i;
    uint64_t s = 7;
    int counts[32] = {0}, odd = 0, k;
    { int r_ = vault_create_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    vault_set(v, "name", "value");
    vault_save(v);
    vault_close(v);
    js = slurp(p, &len);
    REQUIRE(js != NULL);
    m = (char *)malloc(len + 64);
    for (k = 0; k < 1500; k++) {
        size_t n = len, j, edits = 1 + (size_t)(t_rand(&s) % 3);
        memcpy(m, js, len);
        for (j = 0; j < edits; j++) {
            size_t at = (size_t)(t_rand(&s) % n);
            switch (t_rand(&s) % 4) {
            case 0: m[at] = (char)t_rand(&s); break;                              /* any byte */
            case 1: m[at] = "{}[]\",:0123456789=A/ \n\\-.e"[t_rand(&s) % 27]; break; /* JSON-ish byte */
            case 2: n = at; break;                                                 /* truncate */
            case 3: if (n + 1 < len + 64) { memmove(m + at + 1, m + at, n - at); m[at] = m[(at * 7) % n]; n++; } break;
            }
            if (n == 0) break;
        }
        if (vault__new(&w, p, &o) != 0) { odd++; break; }
        int rc = vault__load(w, m, n, "pw", msg, sizeof msg);
        vault_close(w);
        int k = rc == 0 ? 0 : -rc - 30300;             /* vault codes are -30301.. */
        if (rc > 0 || k < 0 || k >= 32) odd++;
        else counts[k]++;
    }
    CHECK_EQ(odd, 0);
    printf("  1500 mutated files (\"opened\": edits in whitespace):");
    for (i = 0; i < 32; i++) if (counts[i]) printf(" %s=%d", i ? vault_strerror(-30300 - (int)i) : "opened", counts[i]);
    printf("\n");
    CHECK(counts[-VAULT_EFORMAT - 30300] > 0);
    CHECK(counts[-VAULT_EAUTH - 30300] > 0);
    free(m); free(js);
}

static void test_authenticated_but_malformed(void) {
    const char *d = t_dir("vault_corrupt"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v;
    { int r_ = vault_create_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    vault_set(v, "a", "1");
    vault__put_be32(v->map.p, 7);                       /* count says 7, there is 1 */
    CHECK_EQ(vault_save(v), 0);
    vault_close(v);
    CHECK_EQ(vault_open_ex(&v, p, "pw", &o), VAULT_ECORRUPT);
}

static void test_file_checks(void) {
    const char *d = t_dir("vault_perms"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v;
    o.audit = audit_cb;
    { int r_ = vault_create_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    vault_close(v);
    memset(&au, 0, sizeof au);
    CHECK(chmod(p, 0644) == 0);
    CHECK_EQ(vault_open_ex(&v, p, "pw", &o), VAULT_EPERM);
    CHECK(au.n == 1 && strstr(au.msg[0], "0644") && strstr(au.msg[0], "chmod 600"));
    printf("  audit says: %s\n", au.msg[0]);
    CHECK(chmod(p, 0640) == 0);  CHECK_EQ(vault_open_ex(&v, p, "pw", &o), VAULT_EPERM);
    CHECK(chmod(p, 0602) == 0);  CHECK_EQ(vault_open_ex(&v, p, "pw", &o), VAULT_EPERM);
    CHECK(chmod(p, 0400) == 0);  CHECK_EQ(vault_open_ex(&v, p, "pw", &o), 0);
    vault_close(v);
    CHECK(chmod(p, 0600) == 0);
    CHECK(symlink("v.json", pathin(d, "link.json")) == 0);
    CHECK_EQ(vault_open_ex(&v, pathin(d, "link.json"), "pw", &o), VAULT_ESYMLINK);
    CHECK_EQ(vault_open_ex(&v, d, "pw", &o), VAULT_ENOTREG);
    CHECK_EQ(vault_open_ex(&v, pathin(d, "missing.json"), "pw", &o), VAULT_ENOENT);
    if (geteuid() == 0) {
        CHECK(chown(p, 12345, (gid_t)-1) == 0);
        memset(&au, 0, sizeof au);
        CHECK_EQ(vault_open_ex(&v, p, "pw", &o), VAULT_EOWNER);
        CHECK(au.n == 1 && strstr(au.msg[0], "12345"));
        CHECK(chown(p, 0, (gid_t)-1) == 0);
    } else {
        printf("  (not root: owner check exercised only by the accepting case)\n");
    }
    CHECK_EQ(vault_open_ex(&v, p, "pw", &o), 0);
    vault_close(v);
}

static int count_entries(const char *dir) {
    DIR *dd = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dd))) if (e->d_name[0] != '.') n++;
    closedir(dd);
    return n;
}

/* The child opens the vault itself: a handle does not survive fork (its
 * secret pages are wiped in the child, VAULT_EFORKED). */
static const char *unwritable_path;
static int child_save_cannot_write(const char *dir) {
    (void)dir;
    vault_options o = fast();
    vault *v = NULL;
    int rc = vault_open_ex(&v, unwritable_path, "pw", &o);
    if (rc) { printf("  child could not open the vault: %s\n", vault_strerror(rc)); return 2; }
    vault_set(v, "x", "z");
    rc = vault_save(v);
    printf("  save into a directory this user cannot write: %s\n", vault_strerror(rc));
    vault_close(v);
    return rc == VAULT_EACCES ? 0 : 1;
}

static void test_save_is_atomic_and_private(void) {
    const char *d = t_dir("vault_save"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v;
    struct stat st;
    mode_t old = umask(0);                             /* a careless umask must not matter */
    { int r_ = vault_create_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    umask(0277);
    vault_set(v, "x", "y");
    CHECK_EQ(vault_save(v), 0);
    umask(old);
    CHECK(stat(p, &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(count_entries(d), 2);                     /* the vault and its lock file: no temp left behind */
    CHECK(access(pathin(d, "v.json.lock"), F_OK) == 0);
    char *a = slurp(p, NULL);
    CHECK_EQ(vault_save(v), 0);
    char *b = slurp(p, NULL);
    CHECK(a && b && strcmp(a, b) != 0);               /* fresh IV every save */
    CHECK(strcmp(strstr(a, "kdf_salt"), strstr(b, "kdf_salt")) != 0);
    free(a); free(b);
    /* a save that cannot write leaves the old file: the directory is read-only
     * to the saver (a child that drops to nobody when this runs as root, since
     * root ignores permission bits); the file is byte for byte the old one */
    static char before[1 << 16];                       /* static: the forked child must not see it as a leak */
    {
        char *t = slurp(p, NULL);
        CHECK(t != NULL && strlen(t) < sizeof before);
        snprintf(before, sizeof before, "%s", t ? t : "");
        free(t);
    }
    uid_t me = geteuid();
    const char *lk = pathin(d, "v.json.lock");
    if (me == 0) CHECK(chown(d, 65534, 65534) == 0 && chown(p, 65534, 65534) == 0 && chown(lk, 65534, 65534) == 0);
    CHECK(chmod(d, 0500) == 0);
    unwritable_path = p;
    CHECK_EQ(t_as_nobody(child_save_cannot_write, d), 0);
    CHECK(chmod(d, 0700) == 0);
    if (me == 0) CHECK(chown(d, 0, 0) == 0 && chown(p, 0, 0) == 0 && chown(lk, 0, 0) == 0);
    char *after = slurp(p, NULL);
    CHECK(before[0] && after && strcmp(before, after) == 0);
    CHECK_EQ(count_entries(d), 2);                     /* the vault and its lock: no temp file */
    free(after);
    vault_close(v);
    CHECK_EQ(vault_open_ex(&v, p, "pw", &o), 0);
    vault_close(v);
}


/* When the file cannot be written, save/rekey/rotate fail, say so in the
 * audit, and leave the handle as it was: same keys, same map. */
static void test_failed_writes_change_nothing(void) {
    const char *d = t_dir("vault_failwrite");
    char dir[600], moved[600], p[700], buf[32];
    vault_options o = fast();
    vault *v;
    snprintf(dir, sizeof dir, "%s/sub", d);
    snprintf(moved, sizeof moved, "%s/moved", d);
    snprintf(p, sizeof p, "%s/v.json", dir);
    CHECK(mkdir(dir, 0700) == 0);
    o.audit = audit_cb;
    { int r_ = vault_create_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    vault_set(v, "k", "old");
    CHECK_EQ(vault_save(v), 0);
    CHECK(rename(dir, moved) == 0);                    /* the directory is gone */
    memset(&au, 0, sizeof au);
    CHECK(vault_save(v) < 0);
    CHECK(au.n == 1 && au.ev[0] == VAULT_AUDIT_SAVE && au.res[0] < 0);
    printf("  audit says: %s\n", au.n ? au.msg[0] : "");
    CHECK(vault_rotate(v, "k", "new") < 0);
    CHECK_EQ(vault_get(v, "k", buf, sizeof buf), 3);
    CHECK(strcmp(buf, "old") == 0);                    /* rotate rolled back */
    CHECK(vault_rekey(v, "other") < 0);
    CHECK(rename(moved, dir) == 0);
    vault_set(v, "k2", "v2");
    CHECK_EQ(vault_save(v), 0);                        /* still the old keys */
    vault_close(v);
    CHECK_EQ(vault_open_ex(&v, p, "other", &o), VAULT_EAUTH);
    { int r_ = vault_open_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    CHECK_EQ(vault_get(v, "k2", buf, sizeof buf), 2);
    vault_close(v);
}

static void test_rekey(void) {
    const char *d = t_dir("vault_rekey"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v;
    char buf[32];
    o.audit = audit_cb;
    memset(&au, 0, sizeof au);
    { int r_ = vault_create_ex(&v, p, "old", &o); CHECK_EQ(r_, 0); if (r_) return; }
    vault_set(v, "k", "val");
    CHECK_EQ(vault_save(v), 0);
    char *before = slurp(p, NULL), *salt0 = field(before, "kdf_salt");
    o.iterations = 2000;
    v->opt.iterations = 2000;
    CHECK_EQ(vault_rekey(v, "new"), 0);
    vault_close(v);
    char *after = slurp(p, NULL), *salt1 = field(after, "kdf_salt");
    CHECK(strcmp(salt0, salt1) != 0);
    CHECK(strstr(after, "\"kdf_iterations\": 2000") != NULL);
    CHECK_EQ(vault_open_ex(&v, p, "old", &o), VAULT_EAUTH);
    { int r_ = vault_open_ex(&v, p, "new", &o); CHECK_EQ(r_, 0); if (r_) return; }
    CHECK_EQ(vault_get(v, "k", buf, sizeof buf), 3);
    vault_close(v);
    CHECK(audit_has(VAULT_AUDIT_REKEY, 0));
    free(before); free(after); free(salt0); free(salt1);
}

static void test_rotate(void) {
    const char *d = t_dir("vault_rotate"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v;
    char buf[32];
    o.audit = audit_cb;
    memset(&au, 0, sizeof au);
    { int r_ = vault_create_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    vault_set(v, "api_key", "v1");
    vault_set(v, "other", "o");
    CHECK_EQ(vault_save(v), 0);
    vault_set(v, "unsaved", "u");                      /* rotate saves everything in memory */
    CHECK_EQ(vault_rotate(v, "api_key", "v2"), 0);
    CHECK_EQ(vault_rotate(v, "missing", "x"), VAULT_ENOTFOUND);
    vault_close(v);
    { int r_ = vault_open_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    CHECK_EQ(vault_get(v, "api_key", buf, sizeof buf), 2);
    CHECK(strcmp(buf, "v2") == 0);
    CHECK_EQ(vault_get(v, "other", buf, sizeof buf), 1);
    vault_close(v);
    CHECK(audit_has(VAULT_AUDIT_ROTATE, 0));
}

static void test_audit_events(void) {
    const char *d = t_dir("vault_audit"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v;
    int i;
    o.audit = audit_cb;
    memset(&au, 0, sizeof au);
    { int r_ = vault_create_ex(&v, p, "correct horse", &o); CHECK_EQ(r_, 0); if (r_) return; }
    vault_set(v, "exchange.key", "TOPSECRETVALUE");
    vault_save(v);
    vault_close(v);
    vault_open_ex(&v, p, "wrong horse", &o);
    { int r_ = vault_open_ex(&v, p, "correct horse", &o); CHECK_EQ(r_, 0); if (r_) return; }
    vault_close(v);
    CHECK(audit_has(VAULT_AUDIT_CREATE, 0));
    CHECK(audit_has(VAULT_AUDIT_SAVE, 0));
    CHECK(audit_has(VAULT_AUDIT_AUTH_FAILED, VAULT_EAUTH));
    CHECK(audit_has(VAULT_AUDIT_OPEN, VAULT_EAUTH));
    CHECK(audit_has(VAULT_AUDIT_OPEN, 0));
    for (i = 0; i < au.n; i++) {
        CHECK(strstr(au.msg[i], "horse") == NULL);
        CHECK(strstr(au.msg[i], "exchange") == NULL);
        CHECK(strstr(au.msg[i], "TOPSECRET") == NULL);
    }
    CHECK(strcmp(vault_audit_name(VAULT_AUDIT_AUTH_FAILED), "decryption failed") == 0);
}

static void test_secrets_locked_and_not_dumped(void) {
    const char *d = t_dir("vault_mlock"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v;
    { int r_ = vault_create_ex(&v, p, "pw", &o); CHECK_EQ(r_, 0); if (r_) return; }
    printf("  keys page mlocked: %s, map pages mlocked: %s\n", v->keys.locked ? "yes" : "no (RLIMIT_MEMLOCK?)",
           v->map.locked ? "yes" : "no");
    /* /proc/self/smaps: the key page's mapping is flagged dd (MADV_DONTDUMP) */
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    unsigned long lo, hi, k = (unsigned long)(uintptr_t)v->keys.p;
    int in = 0, dd = 0, lk = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) in = k >= lo && k < hi;
        else if (in && !strncmp(line, "VmFlags:", 8)) { dd = strstr(line, " dd") != NULL; lk = strstr(line, " lo") != NULL; }
    }
    if (f) fclose(f);
    CHECK(dd);
    /* (ASan and TSan turn mlock into a no-op that reports success: so no CHECK on lk) */
    printf("  smaps VmFlags of the key page: dd=%d lo=%d\n", dd, lk);
    vault_close(v);
}

static void test_default_iterations(void) {
    const char *d = t_dir("vault_default"), *p = pathin(d, "v.json");
    vault *v;
    struct timespec a, b;
    char buf[16];
    clock_gettime(CLOCK_MONOTONIC, &a);
    { int r_ = vault_create(&v, p, "pw"); CHECK_EQ(r_, 0); if (r_) return; }
    vault_set(v, "k", "v");
    CHECK_EQ(vault_save(v), 0);                        /* no KDF: the keys are kept */
    vault_close(v);
    { int r_ = vault_open(&v, p, "pw"); CHECK_EQ(r_, 0); if (r_) return; }
    CHECK_EQ(vault_get(v, "k", buf, sizeof buf), 1);
    vault_close(v);
    clock_gettime(CLOCK_MONOTONIC, &b);
    char *js = slurp(p, NULL);
    CHECK(js && strstr(js, "\"kdf_iterations\": 600000"));
    free(js);
    printf("  create + open at 600000 iterations: %.2f s (%s)\n",
           (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9,
           vault_cpu_features() & VAULT_CPU_SHANI ? "SHA-NI" : "portable");
}

static void test_strerror(void) {
    CHECK(strcmp(vault_strerror(VAULT_EAUTH), "VAULT_EAUTH: authentication failed: wrong password or tampered file") == 0);
    CHECK(strcmp(vault_strerror(0), "success") == 0);
    CHECK(strcmp(vault_strerror(-999), "unknown vault error") == 0);
    CHECK_EQ(vault_open(NULL, "x", "y"), VAULT_EINVAL);
    vault *v;
    CHECK_EQ(vault_open(&v, NULL, "y"), VAULT_EINVAL);
    CHECK_EQ(vault_open(&v, "x", NULL), VAULT_EINVAL);
    vault_close(NULL);
}

/* A temp left by a killed save is a whole copy of the vault (perhaps under an
 * old password): a successful save removes it, but not one another writer
 * holds locked (a save in progress), nor files that only look similar. */
static void test_stale_temps_removed(void) {
    const char *dir = t_dir("vault_stale_tmp");
    const char *path = pathin(dir, "secure_config.json");
    const char *stale = pathin(dir, "secure_config.json.tmp-0123456789abcdef");
    const char *busy = pathin(dir, "secure_config.json.tmp-fedcba9876543210");
    char other[600]; snprintf(other, sizeof other, "%s/secure_config.json.tmp-notours", dir);
    vault_options o = fast();
    vault *v;
    REQUIRE(vault_create_ex(&v, path, "pw", &o) == 0);
    REQUIRE(vault_set(v, "k", "v1") == 0);
    REQUIRE(vault_save(v) == 0);
    spit(stale, "old copy", 8);
    spit(busy, "in progress", 11);
    spit(other, "x", 1);
    int bfd = open(busy, O_RDONLY);
    REQUIRE(bfd >= 0);
    REQUIRE(flock(bfd, LOCK_EX) == 0);
    CHECK_EQ(vault_set(v, "k", "v2"), 0);
    CHECK_EQ(vault_save(v), 0);
    CHECK(access(stale, F_OK) != 0);          /* removed */
    CHECK(access(busy, F_OK) == 0);           /* locked by its writer: kept */
    CHECK(access(other, F_OK) == 0);          /* not a temp name of ours */
    close(bfd);                               /* its writer died */
    CHECK_EQ(vault_save(v), 0);
    CHECK(access(busy, F_OK) != 0);
    CHECK(access(other, F_OK) == 0);
    vault_close(v);
    char buf[16];
    REQUIRE(vault_open_ex(&v, path, "pw", &o) == 0);
    CHECK_EQ(vault_get(v, "k", buf, sizeof buf), 2);
    CHECK(strcmp(buf, "v2") == 0);
    vault_close(v);
}

/* A value is any bytes: newlines (a PEM key), NULs, 0xff, up to
 * VAULT_VALUE_MAX; it comes back whole after a save and a reopen. */
static void test_values_hold_any_bytes(void) {
    const char *d = t_dir("vault_bytes"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v;
    static char big[VAULT_VALUE_MAX + 2];
    char buf[64];
    const char bin[] = {'a', 0, '\n', (char)0xff, 0, '\r', 'z'};
    size_t i;
    for (i = 0; i < sizeof big; i++) big[i] = (char)(i * 7);
    REQUIRE(vault_create_ex(&v, p, "pw", &o) == 0);
    CHECK_EQ(vault_set_bytes(v, "bin", bin, sizeof bin), 0);
    CHECK_EQ(vault_set_bytes(v, "empty", NULL, 0), 0);
    CHECK_EQ(vault_set_bytes(v, "big", big, VAULT_VALUE_MAX), 0);
    CHECK_EQ(vault_set_bytes(v, "toobig", big, VAULT_VALUE_MAX + 1), VAULT_ETOOBIG);
    CHECK_EQ(vault_set_bytes(v, "x", NULL, 1), VAULT_EINVAL);
    CHECK_EQ(vault_save(v), 0);
    vault_close(v);
    REQUIRE(vault_open_ex(&v, p, "pw", &o) == 0);
    memset(buf, 'Q', sizeof buf);
    CHECK_EQ(vault_get(v, "bin", buf, sizeof buf), (int)sizeof bin);
    CHECK(memcmp(buf, bin, sizeof bin) == 0);
    CHECK_EQ(buf[sizeof bin], 0);
    CHECK_EQ(vault_get(v, "empty", buf, sizeof buf), 0);
    CHECK_EQ(vault_get(v, "big", NULL, 0), (int)VAULT_VALUE_MAX);
    {
        char *b = (char *)malloc(VAULT_VALUE_MAX + 1);
        CHECK_EQ(vault_get(v, "big", b, VAULT_VALUE_MAX + 1), (int)VAULT_VALUE_MAX);
        CHECK(b && memcmp(b, big, VAULT_VALUE_MAX) == 0);
        free(b);
    }
    CHECK_EQ(vault_rotate(v, "bin", "plain"), 0);
    CHECK_EQ(vault_get(v, "bin", buf, sizeof buf), 5);
    vault_close(v);
}

/* The /dev/urandom fallback (kernels without getrandom) takes random bytes
 * only from the character device: in a chroot where the path is a regular
 * file of zeros, or a symlink, or a directory, it fails closed. */
static void test_random_fallback_needs_the_device(void) {
    const char *d = t_dir("vault_urandom"), *zeros = pathin(d, "urandom"), *lnk = pathin(d, "link");
    uint8_t b[32];
    char z[64];
    int i, nonzero = 0;
    memset(z, 0, sizeof z);
    spit(zeros, z, sizeof z);
    memset(b, 0, sizeof b);
    CHECK_EQ(vault__random_dev(zeros, b, sizeof b), VAULT_ERANDOM);
    CHECK_EQ(symlink("/dev/urandom", lnk), 0);
    CHECK_EQ(vault__random_dev(lnk, b, sizeof b), VAULT_ERANDOM);
    CHECK_EQ(vault__random_dev(d, b, sizeof b), VAULT_ERANDOM);
    CHECK_EQ(vault__random_dev("/dev/null", b, sizeof b), VAULT_ERANDOM);   /* a char device, but not random */
    if (access("/dev/urandom", R_OK) == 0) {
        CHECK_EQ(vault__random_dev("/dev/urandom", b, sizeof b), 0);
        for (i = 0; i < (int)sizeof b; i++) nonzero |= b[i];
        CHECK(nonzero != 0);
    }
}

/* The library refuses an empty password for a new vault or a rekey (vaultctl
 * always did); a file made with one by an older version still opens. */
static void test_empty_password_refused(void) {
    const char *d = t_dir("vault_emptypw"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v = NULL;
    CHECK_EQ(vault_create_ex(&v, p, "", &o), VAULT_EINVAL);
    CHECK(v == NULL);
    CHECK(access(p, F_OK) != 0);
    REQUIRE(vault_create_ex(&v, p, "pw", &o) == 0);
    CHECK_EQ(vault_rekey(v, ""), VAULT_EINVAL);
    vault_close(v);
    CHECK_EQ(vault_open_ex(&v, p, "pw", &o), 0);    /* the rekey changed nothing */
    vault_close(v);
}

/* A forked child does not inherit the keys or the map (MADV_WIPEONFORK):
 * its copy of the pages is zero, and the handle refuses to work there
 * rather than save an empty vault under zero keys. */
static void test_secrets_wiped_in_forked_child(void) {
    const char *d = t_dir("vault_fork"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v = NULL;
    int st;
    pid_t pid;
    REQUIRE(vault_create_ex(&v, p, "pw", &o) == 0);
    REQUIRE(vault_set(v, "coinbase.api_key", "secret") == 0);
    REQUIRE(vault_save(v) == 0);
    fflush(stdout); fflush(stderr);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        size_t i;
        int nz = 0, bad = 0;
        char buf[32];
        for (i = 0; i < v->keys.cap; i++) nz |= v->keys.p[i];
        for (i = 0; i < v->map.cap; i++) nz |= v->map.p[i];
        if (vault_get(v, "coinbase.api_key", buf, sizeof buf) != VAULT_EFORKED) bad |= 2;
        if (vault_set(v, "x", "y") != VAULT_EFORKED) bad |= 4;
        if (vault_save(v) != VAULT_EFORKED) bad |= 8;
        if (vault_rotate(v, "coinbase.api_key", "z") != VAULT_EFORKED) bad |= 16;
        _exit((nz ? 1 : 0) | bad);
    }
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    if (WEXITSTATUS(st) & 1) printf("  the child saw the parent's key or map bytes\n");
    {   /* the parent's handle is untouched, and the file was not overwritten */
        char buf[32];
        CHECK_EQ(vault_get(v, "coinbase.api_key", buf, sizeof buf), 6);
        CHECK_EQ(vault_save(v), 0);
    }
    vault_close(v);
    REQUIRE(vault_open_ex(&v, p, "pw", &o) == 0);
    CHECK_EQ(vault_count(v), 1);
    vault_close(v);
}

/* Rotating a credential (because it leaked) re-derives the keys with a fresh
 * salt: keys taken from the process before the rotate (a core, a swap file)
 * do not open or forge the file after it. After a rekey the rotate uses the
 * new password. */
static void salt_of(const char *p, char out[64]) {
    char *t = slurp(p, NULL), *s = t ? strstr(t, "\"kdf_salt\": \"") : NULL;
    out[0] = 0;
    if (s) { s += 13; snprintf(out, 64, "%.*s", (int)(strchr(s, '"') - s), s); }
    free(t);
}
static void test_rotate_draws_a_fresh_salt(void) {
    const char *d = t_dir("vault_rotsalt"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v = NULL;
    char s1[64], s2[64], s3[64], buf[16];
    REQUIRE(vault_create_ex(&v, p, "pw", &o) == 0);
    REQUIRE(vault_set(v, "k", "leaked") == 0);
    REQUIRE(vault_save(v) == 0);
    salt_of(p, s1);
    CHECK_EQ(vault_rotate(v, "k", "fresh"), 0);
    salt_of(p, s2);
    CHECK(s1[0] && s2[0] && strcmp(s1, s2) != 0);
    CHECK_EQ(vault_rekey(v, "pw2"), 0);
    CHECK_EQ(vault_rotate(v, "k", "fresher"), 0);
    salt_of(p, s3);
    CHECK(s3[0] && strcmp(s2, s3) != 0);
    vault_close(v);
    CHECK_EQ(vault_open_ex(&v, p, "pw", &o), VAULT_EAUTH);
    REQUIRE(vault_open_ex(&v, p, "pw2", &o) == 0);
    CHECK_EQ(vault_get(v, "k", buf, sizeof buf), 7);
    CHECK(strcmp(buf, "fresher") == 0);
    vault_close(v);
}

/* One size limit, the same on both sides: a map of exactly VAULT_MAP_MAX
 * bytes saves and opens again; a set that would pass it is refused before
 * anything is written. */
static void test_map_size_limit_both_sides(void) {
    const char *d = t_dir("vault_mapmax"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v = NULL;
    static char val[VAULT_VALUE_MAX + 1];
    char name[32];
    size_t left;
    int i, rc = 0;
    memset(val, 'a', VAULT_VALUE_MAX);
    REQUIRE(vault_create_ex(&v, p, "pw", &o) == 0);
    for (i = 0; rc == 0; i++) { snprintf(name, sizeof name, "k%04d", i); rc = vault_set(v, name, val); }
    CHECK_EQ(rc, VAULT_ETOOBIG);
    left = VAULT_MAP_MAX - v->map_len;                 /* fill to the byte: name "zz" = 2 */
    REQUIRE(left > 4 + 2 + 1 + 4 + 1 && left < VAULT_VALUE_MAX);
    val[left - (4 + 2 + 1 + 4 + 1) + 1] = 0;
    CHECK_EQ(vault_set(v, "zz", val), VAULT_ETOOBIG);  /* one byte over */
    val[left - (4 + 2 + 1 + 4 + 1)] = 0;
    CHECK_EQ(vault_set(v, "zz", val), 0);               /* exactly at the limit */
    CHECK_EQ(v->map_len, (size_t)VAULT_MAP_MAX);
    CHECK_EQ(vault_save(v), 0);
    vault_close(v);
    rc = vault_open_ex(&v, p, "pw", &o);
    CHECK_EQ(rc, 0);
    if (rc == 0) { CHECK_EQ(v->map_len, (size_t)VAULT_MAP_MAX); vault_close(v); }
}

/* The password from a callback (a keyring, a secrets manager): it fills a
 * buffer the library gives it; its error comes back as is; a password that
 * fills the whole buffer without a NUL is refused. */
static int pw_from_ctx(char *buf, size_t cap, void *ud) {
    const char *pw = (const char *)ud;
    if (!pw) return VAULT_EAUTH;                      /* "the keyring said no" */
    if (!strcmp(pw, "overflow")) { memset(buf, 'x', cap); return 0; }
    if (strlen(pw) + 1 > cap) return VAULT_ERANGE;
    memcpy(buf, pw, strlen(pw) + 1);
    return 0;
}
static void test_password_from_a_callback(void) {
    const char *d = t_dir("vault_pwcb"), *p = pathin(d, "v.json");
    vault_options o = fast();
    vault *v = NULL;
    char buf[8];
    REQUIRE(vault_create_ex(&v, p, "from the keyring", &o) == 0);
    REQUIRE(vault_set(v, "k", "v") == 0);
    REQUIRE(vault_save(v) == 0);
    vault_close(v);
    v = NULL;
    CHECK_EQ(vault_open_with(&v, p, pw_from_ctx, (void *)"from the keyring", &o), 0);
    if (v) { CHECK_EQ(vault_get(v, "k", buf, sizeof buf), 1); vault_close(v); v = NULL; }
    CHECK_EQ(vault_open_with(&v, p, pw_from_ctx, (void *)"wrong", &o), VAULT_EAUTH);
    CHECK_EQ(vault_open_with(&v, p, pw_from_ctx, NULL, &o), VAULT_EAUTH);
    CHECK_EQ(vault_open_with(&v, p, pw_from_ctx, (void *)"overflow", &o), VAULT_ETOOBIG);
    CHECK_EQ(vault_open_with(&v, p, NULL, NULL, &o), VAULT_EINVAL);
    CHECK(v == NULL);
}

int main(void) {
    (void)t_mount_small_ext4;
    RUN(test_create_open_roundtrip);
    RUN(test_create_refuses_existing);
    RUN(test_set_get_remove_list);
    RUN(test_random_ops_model);
    RUN(test_wrong_password_and_tampering);
    RUN(test_kdf_param_range);
    RUN(test_bad_input);
    RUN(test_mutations_never_crash);
    RUN(test_authenticated_but_malformed);
    RUN(test_file_checks);
    RUN(test_save_is_atomic_and_private);
    RUN(test_failed_writes_change_nothing);
    RUN(test_rekey);
    RUN(test_rotate);
    RUN(test_audit_events);
    RUN(test_secrets_locked_and_not_dumped);
    RUN(test_default_iterations);
    RUN(test_strerror);
    RUN(test_stale_temps_removed);
    RUN(test_values_hold_any_bytes);
    RUN(test_random_fallback_needs_the_device);
    RUN(test_empty_password_refused);
    RUN(test_secrets_wiped_in_forked_child);
    RUN(test_rotate_draws_a_fresh_salt);
    RUN(test_map_size_limit_both_sides);
    RUN(test_password_from_a_callback);
    return t_done();
}
