/* libFuzzer target: pinnacle's sealed files (encryption at rest,
 * pp_config.encrypt_key: snapshots, market-data state and specs, connection
 * blobs), the envelope's reader pp__read_file_k and writer pp__write_file_k
 * under a known data key (and an older one, as after a key rotation).
 *
 * Input: byte 0 = mode, then the rest R.
 *   mode & 3 == 0  R is a file as found on disk. Read with the keys: never
 *                  a crash; 0 only for a file that seals under one of them
 *                  (its plaintext length is the header's), else
 *                  PP_ECORRUPT or PP_EKEY. Read without a key: PP_ENEEDKEY
 *                  for anything with the sealed magic, else the bytes as
 *                  they are (a plain store's file).
 *   mode & 3 == 1  R is a plaintext: sealed under the current key (bit 2:
 *                  the old one), read back: R exactly; the same file under
 *                  another name: PP_ECORRUPT (the name is under the tag).
 *   mode & 3 == 2  as 1, then the u32 at R's start chooses a byte of the
 *                  sealed file and byte 4 a nonzero mask to flip it with:
 *                  the read fails (PP_ECORRUPT, or PP_EKEY when the flip
 *                  is in the key id), never returns data.
 *   mode & 3 == 3  as 2, but the file is cut at that byte: the read fails.
 *
 * Built with clang -fsanitize=fuzzer,address,undefined (make fuzz); the same
 * function runs in tests/test_fuzz_pinnacle.c on every file in
 * fuzz/regress/fuzz_pinnacle_sealed/ and on the seeds. */
#include "fuzz_pinnacle_common.h"

/* tests/test_fuzz_pinnacle.c plants wrong answers to show the oracles fail:
 * 1 a byte of the round trip's plaintext changed, 2 no damage done. */
static int pfs_plant;

static const uint8_t pfs_key_now[32] = "fuzz-sealed-current-data-key-32b";
static const uint8_t pfs_key_old[32] = "fuzz-sealed-older---data-key-32b";

static pp__fkeys *pfs_keys(void) {
    static pp__fkeys *fk;
    if (!fk) {
        const uint8_t *old[1] = { pfs_key_old };
        pp_config c;
        memset(&c, 0, sizeof c);
        c.encrypt_key = pfs_key_now; c.old_keys = old; c.n_old_keys = 1;
        if (pp__fkeys_make(&c, &fk) != 0) abort();
    }
    return fk;
}
static pp__fkeys *pfs_old_first(void) {     /* the old key as the current one: files sealed before the rotation */
    static pp__fkeys *fk;
    if (!fk) {
        pp_config c;
        memset(&c, 0, sizeof c);
        c.encrypt_key = pfs_key_old;
        if (pp__fkeys_make(&c, &fk) != 0) abort();
    }
    return fk;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > PF_MAX_FILE) return 0;
    uint8_t mode = data[0];
    const uint8_t *r = data + 1;
    size_t rn = size - 1;
    char path[700], other[700];
    pf_reset();
    snprintf(path, sizeof path, "%s/00000000000000000007.pps", pf_base());
    snprintf(other, sizeof other, "%s/00000000000000000008.pps", pf_base());
    uint8_t *out = NULL;
    size_t len = 0;
    int rc;
    if ((mode & 3) == 0) {
        pf_write(path, r, rn);
        rc = pp__read_file_k(pfs_keys(), path, &out, &len, NULL, 0);
        pf_check_rc("sealed read", rc);
        if (rc == 0 && (rn < PP__SEAL_HDR || len != pp__get64(r + 24) || memcmp(r, PP__SEAL_MAGIC, 8) != 0))
            pf_violation("a file read as sealed: %zu bytes from a header that says %llu", len,
                         rn >= PP__SEAL_HDR ? (unsigned long long)pp__get64(r + 24) : 0ull);
        if (rc != 0 && rc != PP_ECORRUPT && rc != PP_EKEY && rc != PP_ENOMEM) pf_violation("sealed read: %s", pp_strerror(rc));
        free(out); out = NULL;
        int sealed = rn >= 8 && memcmp(r, PP__SEAL_MAGIC, 8) == 0;
        rc = pp__read_file_k(NULL, path, &out, &len, NULL, 0);
        if (sealed ? rc != PP_ENEEDKEY : (rc != 0 || len != rn || (rn && memcmp(out, r, rn) != 0)))
            pf_violation("read without a key: %s (sealed %d)", pp_strerror(rc), sealed);
        free(out);
        return 0;
    }
    /* a plaintext, sealed as the store seals it */
    const pp__fkeys *wk = (mode & 4) ? pfs_old_first() : pfs_keys();
    rc = pp__write_file_k(wk, path, r, rn, 0600);
    if (rc != 0) pf_violation("seal: %d", rc);
    if ((mode & 3) == 1) {
        rc = pp__read_file_k(pfs_keys(), path, &out, &len, NULL, 0);
        if (pfs_plant == 1 && rc == 0 && len) out[0] ^= 1;
        if (rc != 0 || len != rn || (rn && memcmp(out, r, rn) != 0)) pf_violation("round trip: %s, %zu of %zu bytes", pp_strerror(rc), len, rn);
        free(out); out = NULL;
        if (rename(path, other) != 0) abort();
        rc = pp__read_file_k(pfs_keys(), other, &out, &len, NULL, 0);
        if (rc != PP_ECORRUPT) pf_violation("a sealed file under another name: %s", pp_strerror(rc));
        free(out);
        return 0;
    }
    size_t fn = 0;
    uint8_t *f = NULL;
    if (pp__read_file(path, &f, &fn) != 0) abort();
    uint32_t at = rn >= 4 ? pp__get32(r) : 0;
    uint8_t mask = rn >= 5 && r[4] ? r[4] : 0x80;
    size_t pos = fn ? at % fn : 0;
    if ((mode & 3) == 2 && pfs_plant != 2) f[pos] ^= mask;
    pf_write(path, f, (mode & 3) == 2 || pfs_plant == 2 ? fn : pos);
    free(f);
    rc = pp__read_file_k(pfs_keys(), path, &out, &len, NULL, 0);
    int in_key_id = (mode & 3) == 2 && pos >= 16 && pos < 24;
    if (rc == 0) pf_violation("a damaged sealed file (byte %zu of %zu, %s) was read", pos, fn, (mode & 3) == 2 ? "flipped" : "cut");
    else if (rc != PP_ECORRUPT && !(in_key_id && rc == PP_EKEY)) pf_violation("damaged sealed file: %s", pp_strerror(rc));
    free(out);
    return 0;
}
