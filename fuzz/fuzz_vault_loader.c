/* libFuzzer target: the vault file loader (vault_open_ex: the strict JSON
 * parser, base64, the iteration range, the KDF, the tag, CBC + PKCS#7, the
 * credential map check) on a fuzzed secure_config.json, then every query on
 * what opened.
 *
 * Input: byte 0 = flags, then the rest:
 *   flags bit 0  fix the tag first: parse the text as the loader does, derive
 *                the keys from the file's salt and iterations under the fuzz
 *                password and put the right HMAC in "tag" (keeping the text
 *                around it), so mutations reach the decryption, the padding
 *                and the map checks instead of dying at VAULT_EAUTH
 *   flags bit 1  the rest is a plaintext credential map, not a file: it is
 *                encrypted (PKCS#7, no 256-byte padding) and authenticated
 *                under the fuzz password into a well-formed file, so every
 *                mutation reaches vault__map_check and the queries
 *   flags bit 2  after a successful open: set a credential, save, reopen and
 *                check that every credential came back byte for byte
 *
 * The PBKDF2 count accepted is VAULT_ITERATIONS_FLOOR (1000) .. 4000: the
 * floor costs about 80 us per derivation with SHA-NI (no test-only macro is
 * needed).
 *
 * Oracles (each a violation: abort() under libFuzzer, counted in
 * fv_violations in the replay test, tests/test_fuzz_vault.c):
 *   - every result is 0 or one of the documented VAULT_ERRORS codes;
 *   - a successful open means the file's tag verifies under an independent
 *     HMAC-SHA256 of what docs/vault-format.md says is authenticated
 *     (fuzz/fuzz_vault_oracle.h: its own field reader, base64, SHA-256, HMAC,
 *     PBKDF2, none of vault.h's code), whether or not the fuzzer fixed the
 *     tag up: a reader that skips or weakens the tag check opens a file with
 *     a wrong tag, and this says so; so does a save's file;
 *   - count, list and get agree, names come sorted, and a save + reopen
 *     gives back every credential byte for byte.
 * A sanitizer report or a leak fails the run as well.
 *
 * Built with clang -fsanitize=fuzzer,address,undefined (make fuzz); the same
 * function is called by tests/test_fuzz_vault.c on every file in
 * fuzz/regress/fuzz_vault_loader/ and on the seed corpus, in the ordinary
 * test builds. */
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <stdarg.h>
#include "fuzz_vault_oracle.h"

#define FV_PASSWORD "fuzz password"
#define FV_MAX_ITER 4000u
#define FV_MAX_TEXT (1u << 20)

static vault_options fv_opts(void) {
    vault_options o;
    memset(&o, 0, sizeof o);
    o.iterations = VAULT_ITERATIONS_FLOOR;
    o.min_iterations = VAULT_ITERATIONS_FLOOR;
    o.max_iterations = FV_MAX_ITER;
    return o;
}

static void fv_cleanup(void);
static const char *fv_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        struct stat sb;
        const char *base = (stat("/dev/shm", &sb) == 0 && access("/dev/shm", W_OK) == 0) ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/vault_fuzz_%d", base, (int)getpid());
        mkdir(dir, 0700);
        atexit(fv_cleanup);               /* libFuzzer exits through exit() */
    }
    return dir;
}

static const char *fv_path(void) {
    static char p[300];
    if (!p[0]) snprintf(p, sizeof p, "%s/secure_config.json", fv_dir());
    return p;
}

static void fv_clean(void) {
    DIR *dd = opendir(fv_dir());
    if (!dd) return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(dd)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", fv_dir(), e->d_name);
        unlink(p);
    }
    closedir(dd);
}

static void fv_cleanup(void) { fv_clean(); rmdir(fv_dir()); }

static void fv_write(const char *d, size_t n) {
    int fd = open(fv_path(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
    if (fd < 0) return;
    if (fchmod(fd, 0600) != 0) { close(fd); return; }
    while (n > 0) { ssize_t w = write(fd, d, n); if (w <= 0) break; d += w; n -= (size_t)w; }
    close(fd);
}

/* The keys for (salt, iterations) under the fuzz password; the last ones are
 * kept, since most mutations leave the salt alone. */
static const vault__keyset *fv_keys(const uint8_t salt[VAULT__SALT_LEN], uint32_t iter) {
    static vault__keyset ks;
    static uint8_t last_salt[VAULT__SALT_LEN];
    static uint32_t last_iter;
    if (last_iter != iter || memcmp(last_salt, salt, VAULT__SALT_LEN) != 0) {
        vault__derive(&ks, FV_PASSWORD, salt, iter);
        memcpy(last_salt, salt, VAULT__SALT_LEN);
        last_iter = iter;
    }
    return &ks;
}

/* ---- oracles ---- */
static unsigned long fv_violations;
static void fv_violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fv_violation(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    fprintf(stderr, "fuzz_vault_loader: ORACLE: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fv_violations++;
#ifndef FV_REPLAY
    fv_cleanup();                        /* abort() skips atexit: leave no scratch directory */
    abort();
#endif
}

/* 0 or a documented VAULT_ERRORS code. */
static int fv_check_rc(int rc) {
    int known = 0;
#define FV__IS(name, val, msg) if (rc == (val)) known = 1;
    VAULT_ERRORS(FV__IS)
#undef FV__IS
    if (!known) fv_violation("undocumented result %d", rc);
    return rc;
}

/* The file at path opened: its tag must verify under the oracle's own HMAC. */
static void fv_check_tag(const char *text, size_t len, const char *what) {
    int ok = fvo_tag_verifies(text, len, FV_PASSWORD);
    if (ok != 1)
        fv_violation("%s: vault_open_ex accepted a file whose tag %s under an independent HMAC-SHA256", what,
                     ok == 0 ? "does not verify" : "cannot be computed (a covered field is missing)");
}

static char *fv_slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    long sz = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    rewind(fp);
    char *b = sz >= 0 ? (char *)malloc((size_t)sz + 1) : NULL;
    size_t n = b ? fread(b, 1, (size_t)sz, fp) : 0;
    fclose(fp);
    *len = n;
    return b;
}

static void fv_check_file_tag(const char *what) {
    size_t n = 0;
    char *b = fv_slurp(fv_path(), &n);
    if (!b) { fv_violation("%s: the vault file cannot be read back", what); return; }
    fv_check_tag(b, n, what);
    free(b);
}

/* flags bit 0: the text with the right tag (malloc'd), or NULL to use it as is. */
static char *fv_fix_tag(const char *text, size_t len, size_t *outlen) {
    vault__json j;
    uint8_t salt[VAULT__SALT_LEN], iv[16], tag[32];
    if (vault__json_parse(text, len, &j) != 0) return NULL;
    if (!j.seen[VAULT__F_SALT] || !j.seen[VAULT__F_IV] || !j.seen[VAULT__F_CT] || !j.seen[VAULT__F_TAG]) return NULL;
    if (j.num[VAULT__F_ITER] < VAULT_ITERATIONS_FLOOR || j.num[VAULT__F_ITER] > FV_MAX_ITER) return NULL;
    if (vault__b64_decode(j.s[VAULT__F_SALT], j.n[VAULT__F_SALT], salt, sizeof salt) != VAULT__SALT_LEN) return NULL;
    if (vault__b64_decode(j.s[VAULT__F_IV], j.n[VAULT__F_IV], iv, sizeof iv) != 16) return NULL;
    size_t cap = j.n[VAULT__F_CT] / 4 * 3 + 3;
    uint8_t *ct = (uint8_t *)malloc(cap);
    if (!ct) return NULL;
    long n = vault__b64_decode(j.s[VAULT__F_CT], j.n[VAULT__F_CT], ct, cap);
    if (n < 0) { free(ct); return NULL; }
    vault__tag(fv_keys(salt, (uint32_t)j.num[VAULT__F_ITER]), (uint32_t)j.num[VAULT__F_VERSION], j.num[VAULT__F_COUNTER],
               (uint32_t)j.num[VAULT__F_ITER], salt, iv, ct, (size_t)n, tag);
    free(ct);
    char b64[48];
    vault__b64_encode(tag, 32, b64);
    size_t pre = (size_t)(j.s[VAULT__F_TAG] - text), post = len - pre - j.n[VAULT__F_TAG], bl = strlen(b64);
    char *out = (char *)malloc(pre + bl + post + 1);
    if (!out) return NULL;
    memcpy(out, text, pre);
    memcpy(out + pre, b64, bl);
    memcpy(out + pre + bl, text + pre + j.n[VAULT__F_TAG], post);
    *outlen = pre + bl + post;
    return out;
}

/* flags bit 1: a well-formed file around a fuzzed plaintext map. */
static char *fv_wrap_map(const uint8_t *map, size_t len, size_t *outlen) {
    uint8_t salt[VAULT__SALT_LEN], iv[16], tag[32];
    memset(salt, 0x5a, sizeof salt);
    memset(iv, 0xa5, sizeof iv);
    const vault__keyset *ks = fv_keys(salt, VAULT_ITERATIONS_FLOOR);
    size_t ctlen = VAULT_CBC_OUT_LEN(len);
    uint8_t *ct = (uint8_t *)malloc(ctlen);
    char *js = (char *)malloc(vault__b64_len(ctlen) + 512);
    if (!ct || !js) { free(ct); free(js); return NULL; }
    {
        size_t got = 0;
        vault_aes256_cbc_encrypt(ks->enc, iv, map, len, ct, &got);   /* PKCS#7 */
        ctlen = got;
    }
    vault__tag(ks, VAULT_FORMAT_VERSION, 0, VAULT_ITERATIONS_FLOOR, salt, iv, ct, ctlen, tag);
    char b64salt[64], b64iv[32], b64tag[48];
    vault__b64_encode(salt, sizeof salt, b64salt);
    vault__b64_encode(iv, 16, b64iv);
    vault__b64_encode(tag, 32, b64tag);
    char *p = js;
    p += sprintf(p, "{\"format\":\"%s\",\"version\":%d,\"kdf\":\"%s\",\"kdf_iterations\":%u,\"kdf_salt\":\"%s\","
                    "\"cipher\":\"%s\",\"iv\":\"%s\",\"mac\":\"%s\",\"ciphertext\":\"",
                 VAULT__MAGIC, VAULT_FORMAT_VERSION, VAULT__KDF, VAULT_ITERATIONS_FLOOR, b64salt, VAULT__CIPHER, b64iv, VAULT__MAC);
    vault__b64_encode(ct, ctlen, p);
    p += strlen(p);
    p += sprintf(p, "\",\"tag\":\"%s\"}\n", b64tag);
    free(ct);
    *outlen = (size_t)(p - js);
    return js;
}

typedef struct fv_cred { char *name, *value; int vlen; } fv_cred;   /* a value may hold NUL bytes (vault_set_bytes) */
typedef struct fv_ctx { vault *v; fv_cred *c; int n, cap, bad; char *buf; } fv_ctx;

static int fv_visit(const char *name, void *ctxp) {
    fv_ctx *x = (fv_ctx *)ctxp;
    int len = vault_get(x->v, name, x->buf, VAULT_VALUE_MAX + 1);
    int need = vault_get(x->v, name, NULL, 0);
    if (len < 0 || need != len || x->buf[len] != 0 || strlen(name) == 0 || strlen(name) > VAULT_NAME_MAX) {
        x->bad = 1;
        return 1;
    }
    if (x->n == x->cap) {
        int nc = x->cap ? x->cap * 2 : 16;
        fv_cred *c = (fv_cred *)realloc(x->c, (size_t)nc * sizeof *c);
        if (!c) { x->bad = 1; return 1; }
        x->c = c; x->cap = nc;
    }
    x->c[x->n].name = strdup(name);
    x->c[x->n].value = (char *)malloc((size_t)len + 1);
    if (x->c[x->n].value) memcpy(x->c[x->n].value, x->buf, (size_t)len + 1);
    x->c[x->n].vlen = len;
    x->n++;
    return 0;
}

static void fv_free_ctx(fv_ctx *x) {
    for (int i = 0; i < x->n; i++) { free(x->c[i].name); free(x->c[i].value); }
    free(x->c);
    x->c = NULL; x->n = x->cap = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char *valbuf;
    if (!valbuf) valbuf = (char *)malloc(VAULT_VALUE_MAX + 1);
    if (size < 1 || !valbuf || size > FV_MAX_TEXT) return 0;
    uint8_t flags = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char *owned = NULL;
    fv_clean();
    if (flags & 2) {
        owned = fv_wrap_map(data + 1, size - 1, &len);
        if (!owned) return 0;
        text = owned;
    } else if (flags & 1) {
        size_t fl = 0;
        char *fixed = fv_fix_tag(text, len, &fl);
        if (fixed) { owned = fixed; text = fixed; len = fl; }
    }
    fv_write(text, len);
    free(owned);

    vault_options o = fv_opts();
    vault *v = NULL;
    int rc = fv_check_rc(vault_open_ex(&v, fv_path(), FV_PASSWORD, &o));
    if (rc != 0) {
        if (v) fv_violation("a handle after a failed open (%d)", rc);   /* no handle on failure */
        return 0;
    }
    fv_check_file_tag("open");
    fv_ctx x;
    memset(&x, 0, sizeof x);
    x.v = v; x.buf = valbuf;
    int cnt = vault_count(v);
    int listed = vault_list(v, fv_visit, &x);
    if (x.bad || cnt < 0 || listed != cnt || x.n != cnt) {
        fv_violation("count %d, listed %d, visited %d, bad %d", cnt, listed, x.n, x.bad);
    }
    for (int i = 1; i < x.n; i++)
        if (strcmp(x.c[i - 1].name, x.c[i].name) >= 0) { fv_violation("names not sorted"); break; }
    (void)fv_check_rc(vault_get(v, "no such name", valbuf, 16));
    if (flags & 4) {
        /* round trip: what opened saves and opens again, unchanged, plus one */
        int added = vault_set(v, "fuzz.added", "value") == 0;
        rc = fv_check_rc(vault_save(v));
        vault_close(v);
        v = NULL;
        if (rc == 0 && added) {
            rc = vault_open_ex(&v, fv_path(), FV_PASSWORD, &o);
            if (rc != 0) { fv_violation("reopen after save: %s", vault_strerror(rc)); fv_free_ctx(&x); return 0; }
            fv_check_file_tag("reopen after save");
            for (int i = 0; i < x.n; i++) {
                if (!strcmp(x.c[i].name, "fuzz.added")) continue;
                int l = vault_get(v, x.c[i].name, valbuf, VAULT_VALUE_MAX + 1);
                if (l != x.c[i].vlen || !x.c[i].value || memcmp(valbuf, x.c[i].value, (size_t)l) != 0) {
                    fv_violation("credential %d changed across save + open (%d)", i, l);
                    break;
                }
            }
            if (vault_get(v, "fuzz.added", valbuf, 16) != 5 || strcmp(valbuf, "value") != 0) fv_violation("the added credential did not come back");
        }
    }
    vault_close(v);
    fv_free_ctx(&x);
    return 0;
}
