/* SPDX-License-Identifier: MIT */
/* vault.h - v0.2.0 - encrypted credential store with bundled constant-time crypto
 *
 * An engine keeps its exchange API keys, secrets and passphrases in one file,
 * `secure_config.json`, encrypted under a master password. The file holds the
 * whole credential map (names too) as ONE AES-256-CBC ciphertext, authenticated
 * with HMAC-SHA256 (encrypt-then-MAC) under keys derived by PBKDF2-HMAC-SHA256
 * (600,000 iterations by default). The crypto is in this header: no OpenSSL,
 * libc only. Portable code has no branch and no table index that depends on a
 * key, a password or plaintext (the AES S-box is computed arithmetically, as an
 * inversion in GF(2^8) done eight bytes at a time in 64-bit words); AES-NI and
 * SHA-NI are used when the CPU has them (chosen at run time, no -m flags needed).
 *
 * HOW IT WORKS
 *   on disk    secure_config.json, mode 0600: format, version, kdf, kdf_iterations,
 *              kdf_salt, cipher, iv, mac, ciphertext, tag (docs/vault-format.md)
 *   keys       master = PBKDF2-HMAC-SHA256(password, salt, iterations);
 *              enc key, MAC key = HKDF-Expand(master, two labels)
 *   open       O_NOFOLLOW + owner/mode checks -> strict bounded JSON parse ->
 *              iteration range -> KDF -> tag compared in constant time ->
 *              decrypt straight into locked pages -> map checked
 *   in memory  the map and the derived keys in mmap'd pages, mlock'd and
 *              MADV_DONTDUMP, wiped on close; set/remove rebuild the map
 *   save       under flock of "<path>.lock" (waits up to lock_timeout_ms:
 *              VAULT_ELOCKED); refused with VAULT_ECONFLICT if the file is no
 *              longer the one this handle read or wrote (reopen, redo, save);
 *              re-encrypt with a fresh IV (no KDF), temp file + fsync +
 *              rename + directory fsync
 *
 * DO THIS in exactly one C or C++ file, BEFORE any other #include:
 *
 *     #define VAULT_IMPLEMENTATION
 *     #include "vault.h"
 *
 * (the implementation defines _GNU_SOURCE itself; if that file must include
 * system headers first, compile it with -D_GNU_SOURCE, otherwise you get an
 * #error that says so). Other files just #include "vault.h". Linux, glibc.
 *
 * USAGE
 *
 *     vault *v;
 *     int rc = vault_open(&v, "data/secure_config.json", password);
 *     if (rc < 0) { fprintf(stderr, "vault: %s\n", vault_strerror(rc)); ... }
 *     char key[256];
 *     if (vault_get(v, "coinbase.api_key", key, sizeof key) >= 0) { ... use ...; vault_wipe(key, sizeof key); }
 *     vault_set(v, "coinbase.api_secret", secret);
 *     rc = vault_save(v);                       // temp + fsync + rename + dir fsync, mode 0600
 *     vault_close(v);                           // wipes every secret it holds
 *
 *   New file: vault_create(&v, path, password) (fails if the file exists).
 *   Options (zero = defaults): vault_create_ex / vault_open_ex with a
 *   vault_options: PBKDF2 iterations, accepted iteration range, an audit
 *   callback (+ user_data) told of every open, failed decryption and save,
 *   how long a save waits for another writer's lock, and rollback_state (a
 *   file keeping the highest save counter seen: an older vault file put back
 *   is then refused with VAULT_EROLLBACK).
 *   Values are any bytes with vault_set_bytes (vault_set: a C string).
 *   vault_open_with takes the password from a callback (keyring, manager).
 *   The command-line tool examples/vaultctl.c does init/set/get/list/rm/rekey.
 *   Data keys (32 random bytes for picolog's encryption at rest):
 *   vault_data_key_create / vault_data_key, under "datakey/NAME".
 *
 * COMPILE-TIME OPTIONS
 *   VAULT_IMPLEMENTATION   compile the implementation in this file
 *   VAULT_STATIC           make every function static (private to the file)
 *   VAULT_MALLOC(sz) / VAULT_REALLOC(p,sz) / VAULT_FREE(p)
 *                          allocator for non-secret buffers; all three or none
 *                          (REALLOC is not called today; it is there so the set
 *                          stays complete if it is).
 *                          Secrets live in their own mmap'd pages (mlock'd and
 *                          MADV_DONTDUMP where allowed), not in these.
 *   VAULT_ASSERT(x)        defaults to assert(x)
 *   VAULT_NO_ACCEL         never use AES-NI / SHA-NI (portable code only)
 *   VAULT_CT_SECRET(p,n) / VAULT_CT_DECLASSIFY(p,n)
 *                          hooks for constant-time testing (ctgrind, see
 *                          tests/test_vault_ctgrind.c). SECRET marks where
 *                          secrets enter the store code (the password after
 *                          strlen, the map before it is encrypted); DECLASSIFY
 *                          marks values public by design (MAC verdict, padding
 *                          verdict and length, ciphertext and tag, the map once
 *                          decrypted, since its parsing is not constant-time).
 *                          Default: nothing.
 *
 * RUN-TIME: vault_cpu_features() says which accelerated paths are in use;
 * vault_set_cpu_features(mask) restricts them (0 = portable only; for tests).
 *
 * CONTENTS
 *   declarations ........ error codes (X-macro), options, audit, store API, crypto API
 *   implementation ...... grep for these markers:
 *     >>util     wiping, constant-time helpers, secure pages, randomness
 *     >>cpu      run-time CPU feature selection
 *     >>sha256   SHA-256 (portable + SHA-NI), HMAC, PBKDF2
 *     >>aes      AES-256 (arithmetic S-box, portable) + AES-NI, CBC + PKCS#7
 *     >>b64      strict base64
 *     >>json     the secure_config.json writer and its strict, bounded parser
 *     >>map      the credential map (plaintext encoding)
 *     >>file     file checks, atomic save
 *     >>store    create/open/set/get/remove/list/save/rekey/rotate/close
 *   license (MIT) at the bottom.
 *
 * THREADS: the crypto functions are thread-safe. A vault handle is not: use one
 * handle per thread or lock around it.
 *
 * The file format and the threat model: docs/vault-format.md.
 */
#if defined(VAULT_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif

#ifndef VAULT_H_INCLUDED
#define VAULT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef VAULT_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define VAULTDEF static __attribute__((unused))
#else
#define VAULTDEF static
#endif
#else
#define VAULTDEF extern
#endif

/* Version of this header (semantic versioning; CHANGELOG.md). vault_version()
 * gives the version of the compiled implementation. */
#define VAULT_VERSION_MAJOR 0
#define VAULT_VERSION_MINOR 2
#define VAULT_VERSION_PATCH 0
#define VAULT_VERSION (VAULT_VERSION_MAJOR * 10000 + VAULT_VERSION_MINOR * 100 + VAULT_VERSION_PATCH)
#define VAULT_VERSION_STRING "0.2.0"

#ifdef __cplusplus
extern "C" {
#endif

VAULTDEF uint32_t vault_version(void);  /* VAULT_VERSION of the compiled implementation */

/* Error codes: 0 is success, every error is negative. Stable numbers, in
 * -30399..-30301, outside errno's range (as LMDB's): picolog.h -301xx,
 * pinnacle_persist.h -302xx, vault.h -303xx, picolog_raft.h -304xx. */
#define VAULT_ERRORS(X) \
    X(VAULT_OK,        0,  "success") \
    X(VAULT_EINVAL,   -30301, "invalid argument") \
    X(VAULT_ENOMEM,   -30302, "out of memory") \
    X(VAULT_EIO,      -30303, "I/O error (errno has the cause)") \
    X(VAULT_EEXIST,   -30304, "already exists: the vault file, or a data key of that name") \
    X(VAULT_ENOENT,   -30305, "no such vault file") \
    X(VAULT_ENOTFOUND,-30306, "no credential with that name") \
    X(VAULT_EAUTH,    -30307, "authentication failed: wrong password or tampered file") \
    X(VAULT_EFORMAT,  -30308, "not a vault file, or truncated or malformed") \
    X(VAULT_EVERSION, -30309, "unsupported vault format version") \
    X(VAULT_EALGO,    -30310, "unsupported KDF, cipher or MAC algorithm") \
    X(VAULT_EKDFPARAM,-30311, "KDF iteration count outside the accepted range") \
    X(VAULT_EPERM,    -30312, "vault file is accessible by group or others (chmod 600 it)") \
    X(VAULT_EOWNER,   -30313, "vault file is owned by another user") \
    X(VAULT_ESYMLINK, -30314, "vault path is a symbolic link (refused)") \
    X(VAULT_ENOTREG,  -30315, "vault path is not a regular file") \
    X(VAULT_ETOOBIG,  -30316, "file, name or value too large") \
    X(VAULT_ERANGE,   -30317, "buffer too small") \
    X(VAULT_ERANDOM,  -30318, "no random bytes (getrandom failed)") \
    X(VAULT_ECORRUPT, -30319, "authenticated contents are malformed") \
    X(VAULT_EPAD,     -30320, "bad PKCS#7 padding") \
    X(VAULT_ECONFLICT,-30321, "the vault file changed since this handle read it (reopen, redo the change, save again)") \
    X(VAULT_ELOCKED,  -30322, "another writer held the vault's lock file longer than lock_timeout_ms") \
    X(VAULT_EFORKED,  -30323, "vault handle used in a forked child (its secrets were wiped at fork); open the vault again") \
    X(VAULT_EACCES,   -30324, "permission denied (the vault file or its directory)") \
    X(VAULT_ENOSPC,   -30325, "no space left on the device (or quota exceeded)") \
    X(VAULT_EROLLBACK,-30326, "the vault file is older than one already seen (rollback): restore refused") \
    X(VAULT_ENOTKEY,  -30327, "the entry is not a data key (32 bytes): it was set by other means")

enum {
#define VAULT__ENUM(name, num, text) name = num,
    VAULT_ERRORS(VAULT__ENUM)
#undef VAULT__ENUM
};

/* Audit events (vault_audit_event.event). */
#define VAULT_AUDIT_EVENTS(X) \
    X(VAULT_AUDIT_CREATE,      1, "create") \
    X(VAULT_AUDIT_OPEN,        2, "open") \
    X(VAULT_AUDIT_AUTH_FAILED, 3, "decryption failed") \
    X(VAULT_AUDIT_SAVE,        4, "save") \
    X(VAULT_AUDIT_REKEY,       5, "rekey") \
    X(VAULT_AUDIT_ROTATE,      6, "rotate") \
    X(VAULT_AUDIT_WARNING,     7, "warning")

enum {
#define VAULT__ENUM(name, num, text) name = num,
    VAULT_AUDIT_EVENTS(VAULT__ENUM)
#undef VAULT__ENUM
    VAULT__AUDIT_END
};

/* Limits. */
#define VAULT_DEFAULT_ITERATIONS 600000u    /* OWASP 2023 for PBKDF2-HMAC-SHA256 */
#define VAULT_DEFAULT_MIN_ITERATIONS 100000u /* files below are refused (downgrade) */
#define VAULT_DEFAULT_MAX_ITERATIONS 10000000u /* files above are refused (DoS) */
#define VAULT_ITERATIONS_FLOOR 1000u        /* min_iterations can go no lower */
#define VAULT_NAME_MAX   1024u              /* bytes in a credential name */
#define VAULT_VALUE_MAX  65536u             /* bytes in a credential value */
#define VAULT_MAP_MAX    (4u << 20)         /* bytes of the whole encoded map */
#define VAULT_FILE_MAX   (8u << 20)         /* bytes of secure_config.json */
#define VAULT_FORMAT_VERSION 1              /* written without rollback detection */
#define VAULT_FORMAT_VERSION_COUNTER 2      /* written with it: adds an authenticated save counter */
#define VAULT_DEFAULT_LOCK_TIMEOUT_MS 10000u /* a save waits this long for another writer */

/* What the audit callback receives. Never contains a secret: no password, no
 * key, no credential name or value. `message` is a human-readable sentence. */
typedef struct vault_audit_event {
    int event;              /* VAULT_AUDIT_* */
    int result;             /* 0, or the VAULT_E* code the operation returns */
    const char *path;       /* the vault file */
    const char *message;    /* e.g. "permissions 0644 for 'x' are too open; chmod 600" */
    uint32_t iterations;    /* PBKDF2 count involved, or 0 */
} vault_audit_event;
typedef void (*vault_audit_fn)(const vault_audit_event *ev, void *user_data);

/* Zero-initialise, set what you need; zero means default. */
typedef struct vault_options {
    uint32_t iterations;      /* PBKDF2 count for create/rekey (0 = 600000) */
    uint32_t min_iterations;  /* files with fewer are refused (0 = 100000; never below VAULT_ITERATIONS_FLOOR) */
    uint32_t max_iterations;  /* files with more are refused (0 = 10000000) */
    vault_audit_fn audit;     /* optional: told of opens, failed decryptions, saves, ... */
    void *audit_user_data;
    uint32_t lock_timeout_ms; /* how long a save waits for another writer's lock (0 = 10000) */
    const char *rollback_state; /* optional: a file (keep it apart from the vault) holding the highest
                                   save counter seen; an older vault file is then VAULT_EROLLBACK */
} vault_options;

typedef struct vault vault;

VAULTDEF const char *vault_strerror(int err);
VAULTDEF const char *vault_audit_name(int event);
VAULTDEF vault_options vault_options_defaults(const vault_options *opts); /* with defaults filled in */

/* The store. A handle holds the decrypted map in locked memory until close. */
VAULTDEF int  vault_create(vault **out, const char *path, const char *password); /* writes the empty vault; VAULT_EEXIST if the file exists */
VAULTDEF int  vault_create_ex(vault **out, const char *path, const char *password, const vault_options *opts);
VAULTDEF int  vault_open(vault **out, const char *path, const char *password);   /* VAULT_EAUTH: wrong password or tampered file */
VAULTDEF int  vault_open_ex(vault **out, const char *path, const char *password, const vault_options *opts);
/* The password from a callback (a keyring, a secrets manager, a helper
 * program): it writes a NUL-terminated password into buf (cap bytes, in
 * locked, non-dumpable memory that is wiped and unmapped right after the
 * KDF) and returns 0, or a negative code that vault_open_with returns. */
typedef int (*vault_password_fn)(char *buf, size_t cap, void *user_data);
#define VAULT_PASSWORD_MAX 4096u                                                 /* cap given to the callback, NUL included */
VAULTDEF int  vault_open_with(vault **out, const char *path, vault_password_fn fn, void *user_data, const vault_options *opts);
/* The errno behind this thread's last failed vault_open, vault_create (and
 * their _ex and _with forms): EACCES behind VAULT_EACCES, EMFILE or EIO
 * behind VAULT_EIO, ENOSPC behind VAULT_ENOSPC, ... 0 after a successful
 * one, or when the error came from no system call (VAULT_EAUTH, ...). */
VAULTDEF int  vault_open_errno(void);
VAULTDEF int  vault_set(vault *v, const char *name, const char *value);          /* in memory until vault_save */
VAULTDEF int  vault_set_bytes(vault *v, const char *name, const void *value, size_t len); /* any bytes (newlines, NUL), up to VAULT_VALUE_MAX */
VAULTDEF int  vault_get(vault *v, const char *name, char *buf, size_t cap);      /* value length (NUL added), or < 0; (buf NULL, cap 0) asks the length;
                                                                                    a value set with vault_set_bytes may hold NULs: use the length */
VAULTDEF int  vault_remove(vault *v, const char *name);                          /* in memory until vault_save */
VAULTDEF int  vault_count(const vault *v);
VAULTDEF int  vault_list(vault *v, int (*visit)(const char *name, void *ctx), void *ctx); /* sorted; visit returns nonzero to stop; returns count visited */
VAULTDEF int  vault_save(vault *v);                                              /* atomic, mode 0600, new IV */
VAULTDEF int  vault_rekey(vault *v, const char *new_password);                   /* new password + new salt, saved now */
VAULTDEF int  vault_rotate(vault *v, const char *name, const char *new_value);   /* replace one existing credential, saved now under a fresh salt (one PBKDF2) */
VAULTDEF void vault_close(vault *v);                                             /* wipes every secret */

/* Data keys: 32 random bytes that encrypt other data (picolog's
 * PICOLOG_ENCRYPT logs, plg_config.encrypt_key), kept in the vault, wrapped
 * by its master password like any credential. A data key NAME is the entry
 * VAULT_DATA_KEY_PREFIX NAME ("datakey/trades"): its own part of the
 * namespace, so it is never taken for a credential (vaultctl export leaves
 * it out of the environment) and a credential is never taken for a key.
 * vault_list shows it under the full name; vault_remove takes the full name.
 * A key you already have can be stored with vault_set_bytes under the full
 * name; vault_data_key then checks its length. */
#define VAULT_DATA_KEY_PREFIX "datakey/"
#define VAULT_DATA_KEY_LEN 32u
/* The key NAME into key: 0; VAULT_ENOTFOUND (no such key), VAULT_ENOTKEY
 * (the entry is not 32 bytes), VAULT_EINVAL (empty name), VAULT_ETOOBIG
 * (name too long). On any error key is all zeros. Wipe it after use. */
VAULTDEF int  vault_data_key(vault *v, const char *name, uint8_t key[32]);
/* A new key NAME from vault_random, stored and saved now (vault_save: the
 * whole map, with any other change this handle holds). VAULT_EEXIST if the
 * entry exists (never overwritten: data encrypted under it would be lost).
 * If the save fails the entry is dropped from the handle again. key may be
 * NULL; otherwise it receives the new key (zeros on error). */
VAULTDEF int  vault_data_key_create(vault *v, const char *name, uint8_t key[32]);

/* The crypto, usable on its own. */
typedef struct vault_sha256_ctx { uint32_t h[8]; uint64_t nbytes; uint8_t buf[64]; size_t nbuf; } vault_sha256_ctx;
VAULTDEF void vault_sha256_init(vault_sha256_ctx *c);
VAULTDEF void vault_sha256_update(vault_sha256_ctx *c, const void *msg, size_t len);
VAULTDEF void vault_sha256_final(vault_sha256_ctx *c, uint8_t out[32]);          /* wipes c */
VAULTDEF void vault_sha256(const void *msg, size_t len, uint8_t out[32]);
VAULTDEF void vault_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32]);
/* iter 0 counts as 1. Any outlen. */
VAULTDEF void vault_pbkdf2_sha256(const void *pw, size_t pwlen, const void *salt, size_t slen, uint32_t iter, uint8_t *out, size_t outlen);
/* CBC with PKCS#7. encrypt: out holds VAULT_CBC_OUT_LEN(len) bytes, *out_len set to it.
 * decrypt: len a nonzero multiple of 16, out holds len bytes; VAULT_EPAD on bad
 * padding (out then holds only zeros). in == out is allowed for both. */
#define VAULT_CBC_OUT_LEN(len) (((len) / 16 + 1) * 16)
VAULTDEF int  vault_aes256_cbc_encrypt(const uint8_t key[32], const uint8_t iv[16], const void *in, size_t len, uint8_t *out, size_t *out_len);
VAULTDEF int  vault_aes256_cbc_decrypt(const uint8_t key[32], const uint8_t iv[16], const void *in, size_t len, uint8_t *out, size_t *out_len);
VAULTDEF void vault_aes256_encrypt_block(const uint8_t key[32], const uint8_t in[16], uint8_t out[16]);
VAULTDEF void vault_aes256_decrypt_block(const uint8_t key[32], const uint8_t in[16], uint8_t out[16]);
/* The same under a key expanded once (many small messages under one key:
 * picolog's sealed fragments). Same results as the calls above; wipe the
 * context with vault_wipe when done. */
typedef struct vault_aes256_ctx { uint8_t rk[240]; } vault_aes256_ctx;
VAULTDEF void vault_aes256_init(vault_aes256_ctx *c, const uint8_t key[32]);
VAULTDEF void vault_aes256_ctx_encrypt_block(const vault_aes256_ctx *c, const uint8_t in[16], uint8_t out[16]);
VAULTDEF int  vault_aes256_ctx_cbc_encrypt(const vault_aes256_ctx *c, const uint8_t iv[16], const void *in, size_t len, uint8_t *out, size_t *out_len);
VAULTDEF int  vault_aes256_ctx_cbc_decrypt(const vault_aes256_ctx *c, const uint8_t iv[16], const void *in, size_t len, uint8_t *out, size_t *out_len);
/* Batches of independent messages under one key, for a caller that seals
 * many small ones at once (picolog packs a page of fragments): every result
 * equals one call per message, but with AES-NI four messages go through the
 * AES pipeline together, where one CBC chain waits on each block, and with
 * SHA-NI two hashes do.
 * encrypt_blocks: ECB, each 16-byte block on its own (in == out allowed).
 * cbc_encrypt_many: message i is nblocks[i] whole blocks at buf[i], already
 * padded, encrypted in place under iv[i]; no PKCS#7 is added.
 * sha256_blocks_many: the compression function over nblocks 64-byte blocks
 * of message p[i] into state h[i] (vault_sha256_ctx.h): padding is the
 * caller's. */
VAULTDEF void vault_aes256_ctx_encrypt_blocks(const vault_aes256_ctx *c, const uint8_t *in, uint8_t *out, size_t nblocks);
VAULTDEF void vault_aes256_ctx_cbc_encrypt_many(const vault_aes256_ctx *c, size_t n, const uint8_t *const iv[],
                                                uint8_t *const buf[], const size_t nblocks[]);
VAULTDEF void vault_sha256_blocks_many(size_t n, uint32_t *const h[], const uint8_t *const p[], size_t nblocks);
VAULTDEF int  vault_ct_equal(const void *a, const void *b, size_t n);            /* 1 if equal; time depends on n only */
VAULTDEF void vault_wipe(void *p, size_t n);                                     /* a store the compiler cannot drop */
VAULTDEF int  vault_random(void *buf, size_t n);                                 /* getrandom; 0 or VAULT_ERANDOM */

#ifdef VAULT_TEST_IO
/* Test-only I/O hook (simulated power loss), compiled in only with
 * VAULT_TEST_IO defined in the implementation's translation unit; without
 * it every step below is the plain syscall. It covers every step of the
 * atomic save that makes something durable or changes which files exist:
 * creating the temp file, writing it, its fsync, the rename (or link and
 * unlink of create), the directory fsync, and the unlink of stale temps. A
 * NULL member means the real call; each returns what the syscall does (-1
 * with errno set on failure; write the byte count). fsync_dir gets the
 * directory's fd and path. Set it before the call; it applies process-wide. */
typedef struct vault_io {
    void *ctx;
    int  (*open)(void *ctx, const char *path, int flags, unsigned mode);   /* creates the temp file */
    long (*write)(void *ctx, int fd, const void *buf, size_t len);
    int  (*fsync)(void *ctx, int fd);
    int  (*rename)(void *ctx, const char *from, const char *to);
    int  (*link)(void *ctx, const char *from, const char *to);
    int  (*unlink)(void *ctx, const char *path);
    int  (*fsync_dir)(void *ctx, int dirfd, const char *dir);
} vault_io;
VAULTDEF void vault_test_set_io(const vault_io *io);   /* NULL: the real syscalls */
#endif

#define VAULT_CPU_AESNI 1
#define VAULT_CPU_SHANI 2
VAULTDEF int  vault_cpu_features(void);              /* VAULT_CPU_* bits in use */
VAULTDEF void vault_set_cpu_features(int mask);      /* use only these (if present); 0 = portable */

#ifdef __cplusplus
}
#endif
#endif /* VAULT_H_INCLUDED */

/* ======================================================================== */
#if defined(VAULT_IMPLEMENTATION) && !defined(VAULT__IMPLEMENTED)
#define VAULT__IMPLEMENTED
VAULTDEF uint32_t vault_version(void) { return VAULT_VERSION; }

#include <features.h>
#if defined(__GLIBC__) && !defined(__USE_MISC)
#error "vault.h: the implementation needs _GNU_SOURCE; put #define VAULT_IMPLEMENTATION and #include \"vault.h\" before any system header, or compile with -D_GNU_SOURCE"
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <time.h>

#if defined(VAULT_MALLOC) && defined(VAULT_FREE) && defined(VAULT_REALLOC)
#elif !defined(VAULT_MALLOC) && !defined(VAULT_FREE) && !defined(VAULT_REALLOC)
#define VAULT_MALLOC(sz) malloc(sz)
#define VAULT_REALLOC(p, sz) realloc(p, sz)
#define VAULT_FREE(p) free(p)
#else
#error "vault.h: define all of VAULT_MALLOC, VAULT_REALLOC and VAULT_FREE, or none of them"
#endif

#ifndef VAULT_ASSERT
#include <assert.h>
#define VAULT_ASSERT(x) assert(x)
#endif

#ifndef VAULT_CT_DECLASSIFY
#define VAULT_CT_DECLASSIFY(p, n) ((void)(p), (void)(n))
#endif
#ifndef VAULT_CT_SECRET
#define VAULT_CT_SECRET(p, n) ((void)(p), (void)(n))
#endif

#if !defined(VAULT_NO_ACCEL) && (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define VAULT__X86 1
#include <cpuid.h>
#include <immintrin.h>
#define VAULT__TARGET_AES __attribute__((target("aes,sse2")))
#define VAULT__TARGET_SHA __attribute__((target("sha,sse4.1,ssse3")))
/* Zeroes the SSE registers: the AES-NI and SHA-NI code leaves round keys and
 * key-derived hash states in them, and a core dump's register notes (or a
 * ptrace of the process) would show them long after. */
#if defined(__x86_64__)
#define VAULT__CLEAR_VREGS() __asm__ __volatile__( \
    "pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\tpxor %%xmm2, %%xmm2\n\tpxor %%xmm3, %%xmm3\n\t" \
    "pxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\tpxor %%xmm6, %%xmm6\n\tpxor %%xmm7, %%xmm7\n\t" \
    "pxor %%xmm8, %%xmm8\n\tpxor %%xmm9, %%xmm9\n\tpxor %%xmm10, %%xmm10\n\tpxor %%xmm11, %%xmm11\n\t" \
    "pxor %%xmm12, %%xmm12\n\tpxor %%xmm13, %%xmm13\n\tpxor %%xmm14, %%xmm14\n\tpxor %%xmm15, %%xmm15" \
    : : : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
          "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory")
#else
#define VAULT__CLEAR_VREGS() __asm__ __volatile__( \
    "pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\tpxor %%xmm2, %%xmm2\n\tpxor %%xmm3, %%xmm3\n\t" \
    "pxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\tpxor %%xmm6, %%xmm6\n\tpxor %%xmm7, %%xmm7" \
    : : : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "memory")
#endif
#endif
#ifndef VAULT__CLEAR_VREGS
#define VAULT__CLEAR_VREGS() ((void)0)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define VAULT__LOAD_RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define VAULT__STORE_RELAXED(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#else
#define VAULT__LOAD_RELAXED(p) (*(p))
#define VAULT__STORE_RELAXED(p, v) (*(p) = (v))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* >>util ----------------------------------------------------------------- */

VAULTDEF void vault_wipe(void *p, size_t n) {
#if defined(__GNUC__) || defined(__clang__)
    /* memset, then an asm barrier that claims to read the memory: the store
     * cannot be dropped as dead (the BoringSSL OPENSSL_cleanse idiom) */
    if (n) memset(p, 0, n);
    __asm__ __volatile__("" : : "r"(p) : "memory");
#else
    volatile uint8_t *q = (volatile uint8_t *)p;
    while (n--) *q++ = 0;
#endif
}

VAULTDEF int vault_ct_equal(const void *a, const void *b, size_t n) {
    const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
    uint32_t d = 0;
    size_t i;
    for (i = 0; i < n; i++) d |= (uint32_t)(x[i] ^ y[i]);
    return (int)(1 & ((d - 1) >> 8));   /* 1 iff d == 0 (d <= 0xff) */
}

static uint32_t vault__be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static void vault__put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void vault__put_be64(uint8_t *p, uint64_t v) {
    vault__put_be32(p, (uint32_t)(v >> 32)); vault__put_be32(p + 4, (uint32_t)v);
}
static uint64_t vault__le64(const uint8_t *p) {
    uint64_t v = 0; int i;
    for (i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static void vault__put_le64(uint8_t *p, uint64_t v) {
    int i;
    for (i = 0; i < 8; i++) { p[i] = (uint8_t)v; v >>= 8; }
}

/* The fallback when getrandom() is missing (ENOSYS, very old kernels): only
 * the kernel's random character device (1:8 random, 1:9 urandom) will do.
 * Anything else at that path (a regular file of zeros in a chroot, a
 * symlink, another device) fails closed: no salt or IV from it. */
static int vault__random_dev(const char *dev, uint8_t *p, size_t n) {
    struct stat st;
    int fd = open(dev, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0) return VAULT_ERANDOM;
    if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 ||
        (minor(st.st_rdev) != 8 && minor(st.st_rdev) != 9)) {
        close(fd);
        return VAULT_ERANDOM;
    }
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { close(fd); return VAULT_ERANDOM; }
        p += r; n -= (size_t)r;
    }
    close(fd);
    return 0;
}

VAULTDEF int vault_random(void *buf, size_t n) {
    uint8_t *p = (uint8_t *)buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOSYS) return vault__random_dev("/dev/urandom", p, n);
            return VAULT_ERANDOM;
        }
        p += r; n -= (size_t)r;
    }
    return 0;
}

/* Secure pages: anonymous mmap, mlock'd (failure is not fatal: RLIMIT_MEMLOCK),
 * excluded from core dumps (MADV_DONTDUMP), wiped before unmapping. */
typedef struct vault__sec { uint8_t *p; size_t cap; int locked, lock_errno; } vault__sec;

static size_t vault__page(void) {
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (size_t)ps : 4096;
}

static int vault__sec_alloc(vault__sec *s, size_t n) {
    size_t ps = vault__page(), cap;
    void *p;
    if (n == 0) n = 1;
    cap = (n + ps - 1) / ps * ps;
    p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { s->p = NULL; s->cap = 0; s->locked = 0; return VAULT_ENOMEM; }
#ifdef MADV_DONTDUMP
    (void)madvise(p, cap, MADV_DONTDUMP);
#endif
    /* A forked child gets zero pages instead of the keys and the map
     * (MADV_WIPEONFORK, Linux 4.14); older kernels: no pages at all. */
#if defined(MADV_WIPEONFORK)
    if (madvise(p, cap, MADV_WIPEONFORK) != 0)
#endif
#ifdef MADV_DONTFORK
        (void)madvise(p, cap, MADV_DONTFORK);
#else
        {}
#endif
    s->locked = mlock(p, cap) == 0;
    s->lock_errno = s->locked ? 0 : errno;
    s->p = (uint8_t *)p; s->cap = cap;
    return 0;
}

/* After a store operation that held keys: zero the stack below the caller
 * (the dead frames of the KDF, HMAC and AES code, and whatever the compiler
 * spilled there) and the vector registers. A core dump of the process then
 * holds no key outside the MADV_DONTDUMP pages. */
#define VAULT__BURN_BYTES 16384
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void vault__burn_stack(void) {
    uint8_t b[VAULT__BURN_BYTES];
    vault_wipe(b, sizeof b);
}
static void vault__scrub(void) {
    vault__burn_stack();
    VAULT__CLEAR_VREGS();
}

static void vault__sec_free(vault__sec *s) {
    if (!s->p) return;
    vault_wipe(s->p, s->cap);
    if (s->locked) (void)munlock(s->p, s->cap);
    (void)munmap(s->p, s->cap);
    s->p = NULL; s->cap = 0; s->locked = 0; s->lock_errno = 0;
}

/* >>cpu ------------------------------------------------------------------ */

static int vault__cpu_detected = -1;   /* what the CPU has */
static int vault__cpu_mask = -1;       /* what the user allows (-1 = all) */

static int vault__detect(void) {
    int f = 0;
#ifdef VAULT__X86
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int sse41 = (c >> 19) & 1, ssse3 = (c >> 9) & 1;
        if ((c >> 25) & 1) f |= VAULT_CPU_AESNI;
        if (__get_cpuid_max(0, NULL) >= 7) {
            __cpuid_count(7, 0, a, b, c, d);
            if (((b >> 29) & 1) && sse41 && ssse3) f |= VAULT_CPU_SHANI;
        }
    }
#endif
    return f;
}

VAULTDEF int vault_cpu_features(void) {
    int d = VAULT__LOAD_RELAXED(&vault__cpu_detected);
    if (d < 0) { d = vault__detect(); VAULT__STORE_RELAXED(&vault__cpu_detected, d); }
    return d & VAULT__LOAD_RELAXED(&vault__cpu_mask);
}

VAULTDEF void vault_set_cpu_features(int mask) { VAULT__STORE_RELAXED(&vault__cpu_mask, mask); }

/* >>sha256 --------------------------------------------------------------- */

static const uint32_t vault__K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static const uint32_t vault__H256[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define VAULT__ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

#define VAULT__CH(x, y, z) (((x) & ((y) ^ (z))) ^ (z))
#define VAULT__MAJ(x, y, z) (((x) & (y)) | ((z) & ((x) | (y))))
#define VAULT__RND(a, b, c, d, e, f, g, h, k) \
    t1 = h + (VAULT__ROR(e, 6) ^ VAULT__ROR(e, 11) ^ VAULT__ROR(e, 25)) + VAULT__CH(e, f, g) + vault__K256[k] + w[k]; \
    t2 = (VAULT__ROR(a, 2) ^ VAULT__ROR(a, 13) ^ VAULT__ROR(a, 22)) + VAULT__MAJ(a, b, c); \
    d += t1; h = t1 + t2;

static void vault__sha256_portable(uint32_t st[8], const uint8_t *p, size_t nblocks) {
    uint32_t w[64], a, b, c, d, e, f, g, h, t1, t2;
    int i;
    while (nblocks--) {
        for (i = 0; i < 16; i++) w[i] = vault__be32(p + 4 * i);
        for (i = 16; i < 64; i++) {
            uint32_t x = w[i - 15], y = w[i - 2];
            w[i] = (VAULT__ROR(y, 17) ^ VAULT__ROR(y, 19) ^ (y >> 10)) + w[i - 7]
                 + (VAULT__ROR(x, 7) ^ VAULT__ROR(x, 18) ^ (x >> 3)) + w[i - 16];
        }
        a = st[0]; b = st[1]; c = st[2]; d = st[3]; e = st[4]; f = st[5]; g = st[6]; h = st[7];
        for (i = 0; i < 64; i += 8) {
            VAULT__RND(a, b, c, d, e, f, g, h, i + 0)
            VAULT__RND(h, a, b, c, d, e, f, g, i + 1)
            VAULT__RND(g, h, a, b, c, d, e, f, i + 2)
            VAULT__RND(f, g, h, a, b, c, d, e, i + 3)
            VAULT__RND(e, f, g, h, a, b, c, d, i + 4)
            VAULT__RND(d, e, f, g, h, a, b, c, i + 5)
            VAULT__RND(c, d, e, f, g, h, a, b, i + 6)
            VAULT__RND(b, c, d, e, f, g, h, a, i + 7)
        }
        st[0] += a; st[1] += b; st[2] += c; st[3] += d; st[4] += e; st[5] += f; st[6] += g; st[7] += h;
        p += 64;
    }
    vault_wipe(w, sizeof w);
}

#ifdef VAULT__X86
/* Four rounds with SHA-NI; m0..m3 are the rolling message schedule. */
#define VAULT__SHA_QR(i, m0, m1, m2, m3) \
    msg = _mm_add_epi32(m0, _mm_loadu_si128((const __m128i *)&vault__K256[4 * (i)])); \
    st1 = _mm_sha256rnds2_epu32(st1, st0, msg); \
    if ((i) >= 3 && (i) <= 14) { tmp = _mm_alignr_epi8(m0, m3, 4); m1 = _mm_add_epi32(m1, tmp); m1 = _mm_sha256msg2_epu32(m1, m0); } \
    msg = _mm_shuffle_epi32(msg, 0x0E); \
    st0 = _mm_sha256rnds2_epu32(st0, st1, msg); \
    if ((i) >= 1 && (i) <= 12) m3 = _mm_sha256msg1_epu32(m3, m0);

VAULT__TARGET_SHA static void vault__sha256_shani(uint32_t h[8], const uint8_t *p, size_t nblocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i st0, st1, tmp, msg, m0, m1, m2, m3, save0, save1;
    tmp = _mm_loadu_si128((const __m128i *)&h[0]);
    st1 = _mm_loadu_si128((const __m128i *)&h[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);          /* CDAB */
    st1 = _mm_shuffle_epi32(st1, 0x1B);          /* EFGH */
    st0 = _mm_alignr_epi8(tmp, st1, 8);          /* ABEF */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);       /* CDGH */
    while (nblocks--) {
        save0 = st0; save1 = st1;
        m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), bswap);
        m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), bswap);
        m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), bswap);
        m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), bswap);
        VAULT__SHA_QR(0, m0, m1, m2, m3)
        VAULT__SHA_QR(1, m1, m2, m3, m0)
        VAULT__SHA_QR(2, m2, m3, m0, m1)
        VAULT__SHA_QR(3, m3, m0, m1, m2)
        VAULT__SHA_QR(4, m0, m1, m2, m3)
        VAULT__SHA_QR(5, m1, m2, m3, m0)
        VAULT__SHA_QR(6, m2, m3, m0, m1)
        VAULT__SHA_QR(7, m3, m0, m1, m2)
        VAULT__SHA_QR(8, m0, m1, m2, m3)
        VAULT__SHA_QR(9, m1, m2, m3, m0)
        VAULT__SHA_QR(10, m2, m3, m0, m1)
        VAULT__SHA_QR(11, m3, m0, m1, m2)
        VAULT__SHA_QR(12, m0, m1, m2, m3)
        VAULT__SHA_QR(13, m1, m2, m3, m0)
        VAULT__SHA_QR(14, m2, m3, m0, m1)
        VAULT__SHA_QR(15, m3, m0, m1, m2)
        st0 = _mm_add_epi32(st0, save0);
        st1 = _mm_add_epi32(st1, save1);
        p += 64;
    }
    tmp = _mm_shuffle_epi32(st0, 0x1B);          /* FEBA */
    st1 = _mm_shuffle_epi32(st1, 0xB1);          /* DCHG */
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);       /* DCBA */
    st1 = _mm_alignr_epi8(st1, tmp, 8);          /* HGFE */
    _mm_storeu_si128((__m128i *)&h[0], st0);
    _mm_storeu_si128((__m128i *)&h[4], st1);
    VAULT__CLEAR_VREGS();
}

/* Two messages side by side: the rounds of one run while the other's wait
 * on the SHA unit's latency. The same four rounds as VAULT__SHA_QR, on state
 * (a0, a1) with schedule a_m0..3 and on (b0, b1) with b_m0..3. */
#define VAULT__SHA_QR2(i, am0, am1, am2, am3, bm0, bm1, bm2, bm3) \
    msga = _mm_add_epi32(am0, _mm_loadu_si128((const __m128i *)&vault__K256[4 * (i)])); \
    msgb = _mm_add_epi32(bm0, _mm_loadu_si128((const __m128i *)&vault__K256[4 * (i)])); \
    a1 = _mm_sha256rnds2_epu32(a1, a0, msga); \
    b1 = _mm_sha256rnds2_epu32(b1, b0, msgb); \
    if ((i) >= 3 && (i) <= 14) { \
        tmp = _mm_alignr_epi8(am0, am3, 4); am1 = _mm_add_epi32(am1, tmp); am1 = _mm_sha256msg2_epu32(am1, am0); \
        tmp = _mm_alignr_epi8(bm0, bm3, 4); bm1 = _mm_add_epi32(bm1, tmp); bm1 = _mm_sha256msg2_epu32(bm1, bm0); \
    } \
    msga = _mm_shuffle_epi32(msga, 0x0E); \
    msgb = _mm_shuffle_epi32(msgb, 0x0E); \
    a0 = _mm_sha256rnds2_epu32(a0, a1, msga); \
    b0 = _mm_sha256rnds2_epu32(b0, b1, msgb); \
    if ((i) >= 1 && (i) <= 12) { am3 = _mm_sha256msg1_epu32(am3, am0); bm3 = _mm_sha256msg1_epu32(bm3, bm0); }

VAULT__TARGET_SHA static void vault__sha256_shani2(uint32_t ha[8], const uint8_t *pa, uint32_t hb[8], const uint8_t *pb,
                                                   size_t nblocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i a0, a1, b0, b1, tmp, msga, msgb, sa0, sa1, sb0, sb1;
    __m128i x0, x1, x2, x3, y0, y1, y2, y3;
#define VAULT__SHA_LOAD(h, s0, s1) \
    tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&(h)[0]), 0xB1); \
    s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&(h)[4]), 0x1B); \
    s0 = _mm_alignr_epi8(tmp, s1, 8); s1 = _mm_blend_epi16(s1, tmp, 0xF0);
#define VAULT__SHA_STORE(h, s0, s1) \
    tmp = _mm_shuffle_epi32(s0, 0x1B); s1 = _mm_shuffle_epi32(s1, 0xB1); \
    _mm_storeu_si128((__m128i *)&(h)[0], _mm_blend_epi16(tmp, s1, 0xF0)); \
    _mm_storeu_si128((__m128i *)&(h)[4], _mm_alignr_epi8(s1, tmp, 8));
    VAULT__SHA_LOAD(ha, a0, a1)
    VAULT__SHA_LOAD(hb, b0, b1)
    while (nblocks--) {
        sa0 = a0; sa1 = a1; sb0 = b0; sb1 = b1;
        x0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 0)), bswap);
        x1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 16)), bswap);
        x2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 32)), bswap);
        x3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 48)), bswap);
        y0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pb + 0)), bswap);
        y1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pb + 16)), bswap);
        y2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pb + 32)), bswap);
        y3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pb + 48)), bswap);
        VAULT__SHA_QR2(0, x0, x1, x2, x3, y0, y1, y2, y3)
        VAULT__SHA_QR2(1, x1, x2, x3, x0, y1, y2, y3, y0)
        VAULT__SHA_QR2(2, x2, x3, x0, x1, y2, y3, y0, y1)
        VAULT__SHA_QR2(3, x3, x0, x1, x2, y3, y0, y1, y2)
        VAULT__SHA_QR2(4, x0, x1, x2, x3, y0, y1, y2, y3)
        VAULT__SHA_QR2(5, x1, x2, x3, x0, y1, y2, y3, y0)
        VAULT__SHA_QR2(6, x2, x3, x0, x1, y2, y3, y0, y1)
        VAULT__SHA_QR2(7, x3, x0, x1, x2, y3, y0, y1, y2)
        VAULT__SHA_QR2(8, x0, x1, x2, x3, y0, y1, y2, y3)
        VAULT__SHA_QR2(9, x1, x2, x3, x0, y1, y2, y3, y0)
        VAULT__SHA_QR2(10, x2, x3, x0, x1, y2, y3, y0, y1)
        VAULT__SHA_QR2(11, x3, x0, x1, x2, y3, y0, y1, y2)
        VAULT__SHA_QR2(12, x0, x1, x2, x3, y0, y1, y2, y3)
        VAULT__SHA_QR2(13, x1, x2, x3, x0, y1, y2, y3, y0)
        VAULT__SHA_QR2(14, x2, x3, x0, x1, y2, y3, y0, y1)
        VAULT__SHA_QR2(15, x3, x0, x1, x2, y3, y0, y1, y2)
        a0 = _mm_add_epi32(a0, sa0); a1 = _mm_add_epi32(a1, sa1);
        b0 = _mm_add_epi32(b0, sb0); b1 = _mm_add_epi32(b1, sb1);
        pa += 64; pb += 64;
    }
    VAULT__SHA_STORE(ha, a0, a1)
    VAULT__SHA_STORE(hb, b0, b1)
#undef VAULT__SHA_LOAD
#undef VAULT__SHA_STORE
    VAULT__CLEAR_VREGS();
}
#undef VAULT__SHA_QR2
#endif

typedef void (*vault__sha_fn)(uint32_t h[8], const uint8_t *p, size_t nblocks);

static vault__sha_fn vault__sha_impl(void) {
#ifdef VAULT__X86
    if (vault_cpu_features() & VAULT_CPU_SHANI) return vault__sha256_shani;
#endif
    return vault__sha256_portable;
}

VAULTDEF void vault_sha256_blocks_many(size_t n, uint32_t *const h[], const uint8_t *const p[], size_t nblocks) {
    vault__sha_fn f = vault__sha_impl();
    size_t i = 0;
#ifdef VAULT__X86
    if (f == vault__sha256_shani)
        for (; n - i >= 2; i += 2) vault__sha256_shani2(h[i], p[i], h[i + 1], p[i + 1], nblocks);
#endif
    for (; i < n; i++) f(h[i], p[i], nblocks);
}

VAULTDEF void vault_sha256_init(vault_sha256_ctx *c) {
    memcpy(c->h, vault__H256, sizeof c->h);
    c->nbytes = 0; c->nbuf = 0;
}

VAULTDEF void vault_sha256_update(vault_sha256_ctx *c, const void *msg, size_t len) {
    const uint8_t *p = (const uint8_t *)msg;
    vault__sha_fn f;
    if (len == 0) return;
    f = vault__sha_impl();
    c->nbytes += len;
    if (c->nbuf) {
        size_t k = 64 - c->nbuf;
        if (k > len) k = len;
        memcpy(c->buf + c->nbuf, p, k);
        c->nbuf += k; p += k; len -= k;
        if (c->nbuf < 64) return;
        f(c->h, c->buf, 1);
        c->nbuf = 0;
    }
    if (len >= 64) { f(c->h, p, len / 64); p += len / 64 * 64; len %= 64; }
    if (len) { memcpy(c->buf, p, len); c->nbuf = len; }
}

static void vault__sha256_digest(vault_sha256_ctx *c, uint8_t out[32]) {
    uint64_t bits = c->nbytes * 8;
    uint8_t pad[72];
    size_t padlen = (c->nbuf < 56 ? 56 : 120) - c->nbuf;
    int i;
    memset(pad, 0, sizeof pad);
    pad[0] = 0x80;
    vault__put_be64(pad + padlen, bits);
    vault_sha256_update(c, pad, padlen + 8);
    for (i = 0; i < 8; i++) vault__put_be32(out + 4 * i, c->h[i]);
}

VAULTDEF void vault_sha256_final(vault_sha256_ctx *c, uint8_t out[32]) {
    vault__sha256_digest(c, out);
    vault_wipe(c, sizeof *c);
}

VAULTDEF void vault_sha256(const void *msg, size_t len, uint8_t out[32]) {
    vault_sha256_ctx c;
    vault_sha256_init(&c);
    vault_sha256_update(&c, msg, len);
    vault_sha256_final(&c, out);
}

/* HMAC: the inner and outer states after the padded key, computed once per key. */
typedef struct vault__hmac_key { uint32_t i[8], o[8]; } vault__hmac_key;

static void vault__hmac_setkey(vault__hmac_key *k, const void *key, size_t klen) {
    uint8_t kb[64], blk[64];
    vault__sha_fn f = vault__sha_impl();
    int j;
    memset(kb, 0, sizeof kb);
    if (klen > 64) vault_sha256(key, klen, kb);
    else if (klen) memcpy(kb, key, klen);
    for (j = 0; j < 64; j++) blk[j] = (uint8_t)(kb[j] ^ 0x36);
    memcpy(k->i, vault__H256, sizeof k->i);
    f(k->i, blk, 1);
    for (j = 0; j < 64; j++) blk[j] = (uint8_t)(kb[j] ^ 0x5c);
    memcpy(k->o, vault__H256, sizeof k->o);
    f(k->o, blk, 1);
    vault_wipe(kb, sizeof kb); vault_wipe(blk, sizeof blk);
}

static void vault__hmac_start(vault_sha256_ctx *c, const vault__hmac_key *k) {
    memcpy(c->h, k->i, sizeof c->h);
    c->nbytes = 64; c->nbuf = 0;
}

static void vault__hmac_finish(vault_sha256_ctx *c, const vault__hmac_key *k, uint8_t out[32]) {
    uint8_t inner[32];
    vault__sha256_digest(c, inner);
    memcpy(c->h, k->o, sizeof c->h);
    c->nbytes = 64; c->nbuf = 0;
    vault_sha256_update(c, inner, 32);
    vault__sha256_digest(c, out);
    vault_wipe(inner, sizeof inner);
    vault_wipe(c, sizeof *c);
}

VAULTDEF void vault_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32]) {
    vault__hmac_key k;
    vault_sha256_ctx c;
    vault__hmac_setkey(&k, key, klen);
    vault__hmac_start(&c, &k);
    vault_sha256_update(&c, msg, mlen);
    vault__hmac_finish(&c, &k, out);
    vault_wipe(&k, sizeof k);
}

/* PBKDF2 inner loop: U_j = HMAC(P, U_{j-1}) for j = 2..iter, T ^= U_j.
 * Both hashes are one compression each on a pre-padded block. */
static void vault__pbkdf2_loop_generic(vault__sha_fn f, const vault__hmac_key *k, uint8_t u[32], uint8_t t[32], uint32_t n) {
    uint8_t ib[64], ob[64];
    uint32_t st[8];
    uint32_t j;
    int i;
    memset(ib, 0, sizeof ib); memset(ob, 0, sizeof ob);
    ib[32] = 0x80; ib[62] = 0x03;          /* 96 bytes hashed = 768 bits */
    ob[32] = 0x80; ob[62] = 0x03;
    memcpy(ib, u, 32);
    for (j = 0; j < n; j++) {
        memcpy(st, k->i, sizeof st);
        f(st, ib, 1);
        for (i = 0; i < 8; i++) vault__put_be32(ob + 4 * i, st[i]);
        memcpy(st, k->o, sizeof st);
        f(st, ob, 1);
        for (i = 0; i < 8; i++) vault__put_be32(ib + 4 * i, st[i]);
        for (i = 0; i < 32; i++) t[i] ^= ib[i];
    }
    memcpy(u, ib, 32);
    vault_wipe(ib, sizeof ib); vault_wipe(ob, sizeof ob); vault_wipe(st, sizeof st);
}

#ifdef VAULT__X86
/* The same loop kept in SHA-NI registers: the digest (ABEF/CDGH) is turned
 * straight into the next block's first two message vectors. */
VAULT__TARGET_SHA static void vault__pbkdf2_loop_shani(const vault__hmac_key *k, uint8_t u[32], uint8_t t[32], uint32_t n) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    const __m128i pad2 = _mm_set_epi32(0, 0, 0, (int)0x80000000u);
    const __m128i pad3 = _mm_set_epi32(768, 0, 0, 0);
    __m128i ist0, ist1, ost0, ost1, st0, st1, tmp, msg, m0, m1, m2, m3, w0, w1, t0, t1;
    uint32_t j;
#define VAULT__SHA_STATE(src, a, b) \
    tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&(src)[0]), 0xB1); \
    b = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&(src)[4]), 0x1B); \
    a = _mm_alignr_epi8(tmp, b, 8); b = _mm_blend_epi16(b, tmp, 0xF0);
    VAULT__SHA_STATE(k->i, ist0, ist1)
    VAULT__SHA_STATE(k->o, ost0, ost1)
#undef VAULT__SHA_STATE
    w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(u + 0)), bswap);   /* words 0..3 */
    w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(u + 16)), bswap);  /* words 4..7 */
    t0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(t + 0)), bswap);
    t1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(t + 16)), bswap);
#define VAULT__SHA_BLOCK(s0, s1) \
    st0 = s0; st1 = s1; m0 = w0; m1 = w1; m2 = pad2; m3 = pad3; \
    VAULT__SHA_QR(0, m0, m1, m2, m3)  VAULT__SHA_QR(1, m1, m2, m3, m0) \
    VAULT__SHA_QR(2, m2, m3, m0, m1)  VAULT__SHA_QR(3, m3, m0, m1, m2) \
    VAULT__SHA_QR(4, m0, m1, m2, m3)  VAULT__SHA_QR(5, m1, m2, m3, m0) \
    VAULT__SHA_QR(6, m2, m3, m0, m1)  VAULT__SHA_QR(7, m3, m0, m1, m2) \
    VAULT__SHA_QR(8, m0, m1, m2, m3)  VAULT__SHA_QR(9, m1, m2, m3, m0) \
    VAULT__SHA_QR(10, m2, m3, m0, m1) VAULT__SHA_QR(11, m3, m0, m1, m2) \
    VAULT__SHA_QR(12, m0, m1, m2, m3) VAULT__SHA_QR(13, m1, m2, m3, m0) \
    VAULT__SHA_QR(14, m2, m3, m0, m1) VAULT__SHA_QR(15, m3, m0, m1, m2) \
    st0 = _mm_add_epi32(st0, s0); st1 = _mm_add_epi32(st1, s1); \
    tmp = _mm_shuffle_epi32(st0, 0x1B); st1 = _mm_shuffle_epi32(st1, 0xB1); \
    w0 = _mm_blend_epi16(tmp, st1, 0xF0); w1 = _mm_alignr_epi8(st1, tmp, 8);
    for (j = 0; j < n; j++) {
        VAULT__SHA_BLOCK(ist0, ist1)
        VAULT__SHA_BLOCK(ost0, ost1)
        t0 = _mm_xor_si128(t0, w0);
        t1 = _mm_xor_si128(t1, w1);
    }
#undef VAULT__SHA_BLOCK
    _mm_storeu_si128((__m128i *)(u + 0), _mm_shuffle_epi8(w0, bswap));
    _mm_storeu_si128((__m128i *)(u + 16), _mm_shuffle_epi8(w1, bswap));
    _mm_storeu_si128((__m128i *)(t + 0), _mm_shuffle_epi8(t0, bswap));
    _mm_storeu_si128((__m128i *)(t + 16), _mm_shuffle_epi8(t1, bswap));
    VAULT__CLEAR_VREGS();
}
#endif

VAULTDEF void vault_pbkdf2_sha256(const void *pw, size_t pwlen, const void *salt, size_t slen, uint32_t iter,
                                  uint8_t *out, size_t outlen) {
    vault__hmac_key k;
    vault_sha256_ctx c;
    uint8_t u[32], t[32], ctr[4];
    uint32_t blk = 1;
    vault__sha_fn f = vault__sha_impl();
    if (iter == 0) iter = 1;
    vault__hmac_setkey(&k, pw, pwlen);
    while (outlen > 0) {
        size_t take = outlen < 32 ? outlen : 32;
        vault__hmac_start(&c, &k);
        vault_sha256_update(&c, salt, slen);
        vault__put_be32(ctr, blk);
        vault_sha256_update(&c, ctr, 4);
        vault__hmac_finish(&c, &k, u);
        memcpy(t, u, 32);
#ifdef VAULT__X86
        if (f == vault__sha256_shani) vault__pbkdf2_loop_shani(&k, u, t, iter - 1);
        else
#endif
        vault__pbkdf2_loop_generic(f, &k, u, t, iter - 1);
        memcpy(out, t, take);
        out += take; outlen -= take; blk++;
    }
    vault_wipe(&k, sizeof k); vault_wipe(u, sizeof u); vault_wipe(t, sizeof t);
}

/* >>aes ------------------------------------------------------------------ */
/* Portable AES-256 with no secret-dependent branch or index. SubBytes is the
 * inversion in GF(2^8) (x^254, an addition chain of 11 multiplications) plus
 * the affine map, computed on eight bytes at once in a uint64_t: every
 * multiplication is shifts, ANDs with masks made by multiplying a 0/1 lane by
 * 0xff, and XORs. ShiftRows is a fixed byte permutation; MixColumns works on
 * two columns per uint64_t. The key schedule uses the same S-box. */

#define VAULT__M01 0x0101010101010101ull

static uint64_t vault__xt(uint64_t a) {   /* multiply each byte by x (0x02) */
    return ((a & 0x7f7f7f7f7f7f7f7full) << 1) ^ (((a >> 7) & VAULT__M01) * 0x1b);
}
static uint64_t vault__gmul(uint64_t a, uint64_t b) {
    uint64_t r = 0;
    int i;
    for (i = 0; i < 8; i++) {
        r ^= a & (((b >> i) & VAULT__M01) * 0xff);
        a = vault__xt(a);
    }
    return r;
}
static uint64_t vault__ginv(uint64_t x) {  /* x^254 per byte; 0 -> 0 */
    uint64_t x2 = vault__gmul(x, x), x3 = vault__gmul(x2, x), x6 = vault__gmul(x3, x3);
    uint64_t x12 = vault__gmul(x6, x6), x15 = vault__gmul(x12, x3);
    uint64_t y = vault__gmul(x15, x15);           /* x^30 */
    y = vault__gmul(y, y); y = vault__gmul(y, y); /* x^120 */
    y = vault__gmul(y, y);                        /* x^240 */
    y = vault__gmul(y, x12);                      /* x^252 */
    return vault__gmul(y, x2);                    /* x^254 */
}
static uint64_t vault__rotb(uint64_t x, int k) {  /* rotate each byte left by k */
    return ((x << k) & (VAULT__M01 * ((0xffu << k) & 0xffu))) | ((x >> (8 - k)) & (VAULT__M01 * ((1u << k) - 1)));
}
static uint64_t vault__sbox8(uint64_t x) {
    x = vault__ginv(x);
    return x ^ vault__rotb(x, 1) ^ vault__rotb(x, 2) ^ vault__rotb(x, 3) ^ vault__rotb(x, 4) ^ (VAULT__M01 * 0x63);
}
static uint64_t vault__inv_sbox8(uint64_t x) {
    x = vault__rotb(x, 1) ^ vault__rotb(x, 3) ^ vault__rotb(x, 6) ^ (VAULT__M01 * 0x05);
    return vault__ginv(x);
}
static uint64_t vault__r1(uint64_t a) { return ((a >> 8) & 0x00ffffff00ffffffull) | ((a << 24) & 0xff000000ff000000ull); }
static uint64_t vault__r2(uint64_t a) { return ((a >> 16) & 0x0000ffff0000ffffull) | ((a << 16) & 0xffff0000ffff0000ull); }
static uint64_t vault__r3(uint64_t a) { return ((a >> 24) & 0x000000ff000000ffull) | ((a << 8) & 0xffffff00ffffff00ull); }
static uint64_t vault__mix(uint64_t a) {
    uint64_t b = vault__r1(a);
    return vault__xt(a ^ b) ^ b ^ vault__r2(a) ^ vault__r3(a);
}
static uint64_t vault__invmix(uint64_t a) {
    return vault__mix(a ^ vault__xt(vault__xt(a ^ vault__r2(a))));
}

typedef struct vault__aes_key { uint8_t rk[240]; } vault__aes_key;   /* 15 round keys */

static void vault__aes_expand(vault__aes_key *ks, const uint8_t key[32]) {
    static const uint8_t rcon[7] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40};
    uint8_t *w = ks->rk, t[8];
    int i;
    memcpy(w, key, 32);
    for (i = 8; i < 60; i++) {
        memset(t, 0, sizeof t);
        memcpy(t, w + 4 * (i - 1), 4);
        if (i % 8 == 0) {
            uint8_t t0 = t[0];
            t[0] = t[1]; t[1] = t[2]; t[2] = t[3]; t[3] = t0;
            vault__put_le64(t, vault__sbox8(vault__le64(t)));
            t[0] ^= rcon[i / 8 - 1];
        } else if (i % 8 == 4) {
            vault__put_le64(t, vault__sbox8(vault__le64(t)));
        }
        w[4 * i + 0] = (uint8_t)(w[4 * (i - 8) + 0] ^ t[0]);
        w[4 * i + 1] = (uint8_t)(w[4 * (i - 8) + 1] ^ t[1]);
        w[4 * i + 2] = (uint8_t)(w[4 * (i - 8) + 2] ^ t[2]);
        w[4 * i + 3] = (uint8_t)(w[4 * (i - 8) + 3] ^ t[3]);
    }
    vault_wipe(t, sizeof t);
}

/* State as bytes s[r + 4c] (FIPS-197 order). */
static void vault__shift_rows(uint8_t s[16], int inverse) {
    uint8_t t[16];
    int r, c;
    for (c = 0; c < 4; c++)
        for (r = 0; r < 4; r++) {
            if (!inverse) t[r + 4 * c] = s[r + 4 * ((c + r) & 3)];
            else t[r + 4 * ((c + r) & 3)] = s[r + 4 * c];
        }
    memcpy(s, t, 16);
    vault_wipe(t, sizeof t);
}

static void vault__aes_encrypt_portable(const vault__aes_key *ks, const uint8_t in[16], uint8_t out[16]) {
    uint8_t s[16];
    uint64_t a, b;
    int r;
    for (r = 0; r < 16; r++) s[r] = (uint8_t)(in[r] ^ ks->rk[r]);
    for (r = 1; r <= 14; r++) {
        a = vault__sbox8(vault__le64(s)); b = vault__sbox8(vault__le64(s + 8));
        vault__put_le64(s, a); vault__put_le64(s + 8, b);
        vault__shift_rows(s, 0);
        a = vault__le64(s); b = vault__le64(s + 8);
        if (r < 14) { a = vault__mix(a); b = vault__mix(b); }   /* r is public */
        a ^= vault__le64(ks->rk + 16 * r + 0);
        b ^= vault__le64(ks->rk + 16 * r + 8);
        vault__put_le64(s, a); vault__put_le64(s + 8, b);
    }
    memcpy(out, s, 16);
    vault_wipe(s, sizeof s); a = b = 0;
}

static void vault__aes_decrypt_portable(const vault__aes_key *ks, const uint8_t in[16], uint8_t out[16]) {
    uint8_t s[16];
    uint64_t a, b;
    int r;
    for (r = 0; r < 16; r++) s[r] = (uint8_t)(in[r] ^ ks->rk[16 * 14 + r]);
    for (r = 13; r >= 0; r--) {
        vault__shift_rows(s, 1);
        a = vault__inv_sbox8(vault__le64(s)) ^ vault__le64(ks->rk + 16 * r + 0);
        b = vault__inv_sbox8(vault__le64(s + 8)) ^ vault__le64(ks->rk + 16 * r + 8);
        if (r > 0) { a = vault__invmix(a); b = vault__invmix(b); }
        vault__put_le64(s, a); vault__put_le64(s + 8, b);
    }
    memcpy(out, s, 16);
    vault_wipe(s, sizeof s); a = b = 0;
}

#ifdef VAULT__X86
VAULT__TARGET_AES static void vault__aesni_cbc_enc(const vault__aes_key *ks, uint8_t iv[16], const uint8_t *in, uint8_t *out, size_t nblocks) {
    __m128i k[15], x;
    int r;
    for (r = 0; r < 15; r++) k[r] = _mm_loadu_si128((const __m128i *)(ks->rk + 16 * r));
    x = _mm_loadu_si128((const __m128i *)iv);
    while (nblocks--) {
        x = _mm_xor_si128(x, _mm_loadu_si128((const __m128i *)in));
        x = _mm_xor_si128(x, k[0]);
        for (r = 1; r < 14; r++) x = _mm_aesenc_si128(x, k[r]);
        x = _mm_aesenclast_si128(x, k[14]);
        _mm_storeu_si128((__m128i *)out, x);
        in += 16; out += 16;
    }
    _mm_storeu_si128((__m128i *)iv, x);
    vault_wipe(k, sizeof k);
    VAULT__CLEAR_VREGS();
}

VAULT__TARGET_AES static void vault__aesni_cbc_dec(const vault__aes_key *ks, uint8_t iv[16], const uint8_t *in, uint8_t *out, size_t nblocks) {
    __m128i k[15], x, c, prev;
    int r;
    k[0] = _mm_loadu_si128((const __m128i *)(ks->rk + 16 * 14));
    for (r = 1; r < 14; r++) k[r] = _mm_aesimc_si128(_mm_loadu_si128((const __m128i *)(ks->rk + 16 * (14 - r))));
    k[14] = _mm_loadu_si128((const __m128i *)ks->rk);
    prev = _mm_loadu_si128((const __m128i *)iv);
    while (nblocks--) {
        c = _mm_loadu_si128((const __m128i *)in);
        x = _mm_xor_si128(c, k[0]);
        for (r = 1; r < 14; r++) x = _mm_aesdec_si128(x, k[r]);
        x = _mm_aesdeclast_si128(x, k[14]);
        _mm_storeu_si128((__m128i *)out, _mm_xor_si128(x, prev));
        prev = c;
        in += 16; out += 16;
    }
    _mm_storeu_si128((__m128i *)iv, prev);
    vault_wipe(k, sizeof k);
    VAULT__CLEAR_VREGS();
}

/* Four CBC chains side by side: lane j encrypts nb blocks from in[j] to
 * out[j] (stepping step[j] bytes a block: 0 for an idle lane on a scratch
 * block), starting from and leaving its chain value in iv[j]. */
VAULT__TARGET_AES static void vault__aesni_cbc_enc4(const vault__aes_key *ks, uint8_t iv[4][16], const uint8_t *const in[4],
                                                   uint8_t *const out[4], const size_t step[4], size_t nb) {
    __m128i k[15], a, b, c, d;
    size_t i;
    int r;
    for (r = 0; r < 15; r++) k[r] = _mm_loadu_si128((const __m128i *)(ks->rk + 16 * r));
    a = _mm_loadu_si128((const __m128i *)iv[0]);
    b = _mm_loadu_si128((const __m128i *)iv[1]);
    c = _mm_loadu_si128((const __m128i *)iv[2]);
    d = _mm_loadu_si128((const __m128i *)iv[3]);
    for (i = 0; i < nb; i++) {
        a = _mm_xor_si128(_mm_xor_si128(a, _mm_loadu_si128((const __m128i *)(in[0] + i * step[0]))), k[0]);
        b = _mm_xor_si128(_mm_xor_si128(b, _mm_loadu_si128((const __m128i *)(in[1] + i * step[1]))), k[0]);
        c = _mm_xor_si128(_mm_xor_si128(c, _mm_loadu_si128((const __m128i *)(in[2] + i * step[2]))), k[0]);
        d = _mm_xor_si128(_mm_xor_si128(d, _mm_loadu_si128((const __m128i *)(in[3] + i * step[3]))), k[0]);
        for (r = 1; r < 14; r++) {
            a = _mm_aesenc_si128(a, k[r]); b = _mm_aesenc_si128(b, k[r]);
            c = _mm_aesenc_si128(c, k[r]); d = _mm_aesenc_si128(d, k[r]);
        }
        a = _mm_aesenclast_si128(a, k[14]); b = _mm_aesenclast_si128(b, k[14]);
        c = _mm_aesenclast_si128(c, k[14]); d = _mm_aesenclast_si128(d, k[14]);
        _mm_storeu_si128((__m128i *)(out[0] + i * step[0]), a);
        _mm_storeu_si128((__m128i *)(out[1] + i * step[1]), b);
        _mm_storeu_si128((__m128i *)(out[2] + i * step[2]), c);
        _mm_storeu_si128((__m128i *)(out[3] + i * step[3]), d);
    }
    _mm_storeu_si128((__m128i *)iv[0], a);
    _mm_storeu_si128((__m128i *)iv[1], b);
    _mm_storeu_si128((__m128i *)iv[2], c);
    _mm_storeu_si128((__m128i *)iv[3], d);
    vault_wipe(k, sizeof k);
    VAULT__CLEAR_VREGS();
}
#endif

/* CBC over whole blocks; iv is updated to the last ciphertext block. */
static void vault__cbc_enc_blocks(const vault__aes_key *ks, uint8_t iv[16], const uint8_t *in, uint8_t *out, size_t nblocks) {
    uint8_t x[16];
    int i;
#ifdef VAULT__X86
    if (vault_cpu_features() & VAULT_CPU_AESNI) { vault__aesni_cbc_enc(ks, iv, in, out, nblocks); return; }
#endif
    while (nblocks--) {
        for (i = 0; i < 16; i++) x[i] = (uint8_t)(in[i] ^ iv[i]);
        vault__aes_encrypt_portable(ks, x, out);
        memcpy(iv, out, 16);
        in += 16; out += 16;
    }
    vault_wipe(x, sizeof x);
}

static void vault__cbc_dec_blocks(const vault__aes_key *ks, uint8_t iv[16], const uint8_t *in, uint8_t *out, size_t nblocks) {
    uint8_t c[16], x[16];
    int i;
#ifdef VAULT__X86
    if (vault_cpu_features() & VAULT_CPU_AESNI) { vault__aesni_cbc_dec(ks, iv, in, out, nblocks); return; }
#endif
    while (nblocks--) {
        memcpy(c, in, 16);
        vault__aes_decrypt_portable(ks, c, x);
        for (i = 0; i < 16; i++) out[i] = (uint8_t)(x[i] ^ iv[i]);
        memcpy(iv, c, 16);
        in += 16; out += 16;
    }
    vault_wipe(x, sizeof x);
}

static void vault__cbc_encrypt(const vault__aes_key *ks, const uint8_t iv0[16], const uint8_t *in, size_t len, uint8_t *out) {
    uint8_t iv[16], last[16];
    size_t full = len / 16, rem = len % 16, i;
    memcpy(iv, iv0, 16);
    if (rem) memcpy(last, in + full * 16, rem);     /* before out (maybe == in) is written */
    for (i = rem; i < 16; i++) last[i] = (uint8_t)(16 - rem);
    vault__cbc_enc_blocks(ks, iv, in, out, full);
    vault__cbc_enc_blocks(ks, iv, last, out + full * 16, 1);
    vault_wipe(last, sizeof last); vault_wipe(iv, sizeof iv);
}

/* Decrypts len bytes (a nonzero multiple of 16) into out, checks PKCS#7 in
 * constant time, zeroes the padding bytes. Returns the plaintext length, or
 * VAULT_EPAD (and out all zeros). */
static long vault__cbc_decrypt(const vault__aes_key *ks, const uint8_t iv0[16], const uint8_t *in, size_t len, uint8_t *out) {
    uint8_t iv[16];
    uint32_t p, good, i;
    size_t n;
    memcpy(iv, iv0, 16);
    vault__cbc_dec_blocks(ks, iv, in, out, len / 16);
    vault_wipe(iv, sizeof iv);
    p = out[len - 1];
    good = ((p - 1) >> 8) ^ 1;                     /* p != 0 (p <= 255) */
    good &= ((16 - p) >> 8) ^ 1;                   /* p <= 16 */
    for (i = 0; i < 16; i++) {
        uint32_t in_pad = ((i - p) >> 31) & 1;     /* i < p */
        uint32_t eq = (((uint32_t)(out[len - 1 - i] ^ p) - 1) >> 31) & 1;
        good &= (in_pad ^ 1) | eq;
    }
    good &= 1;
    VAULT_CT_DECLASSIFY(&good, sizeof good);
    if (!good) { vault_wipe(out, len); return VAULT_EPAD; }
    VAULT_CT_DECLASSIFY(&p, sizeof p);
    n = len - p;
    vault_wipe(out + n, p);
    return (long)n;
}

VAULTDEF int vault_aes256_cbc_encrypt(const uint8_t key[32], const uint8_t iv[16], const void *in, size_t len, uint8_t *out, size_t *out_len) {
    vault__aes_key ks;
    if (!key || !iv || !out || (!in && len)) return VAULT_EINVAL;
    if (len > (size_t)-1 - 32) return VAULT_ETOOBIG;
    vault__aes_expand(&ks, key);
    vault__cbc_encrypt(&ks, iv, (const uint8_t *)in, len, out);
    vault_wipe(&ks, sizeof ks);
    if (out_len) *out_len = VAULT_CBC_OUT_LEN(len);
    return 0;
}

VAULTDEF int vault_aes256_cbc_decrypt(const uint8_t key[32], const uint8_t iv[16], const void *in, size_t len, uint8_t *out, size_t *out_len) {
    vault__aes_key ks;
    long n;
    if (!key || !iv || !in || !out) return VAULT_EINVAL;
    if (len == 0 || len % 16) return VAULT_EPAD;
    vault__aes_expand(&ks, key);
    n = vault__cbc_decrypt(&ks, iv, (const uint8_t *)in, len, out);
    vault_wipe(&ks, sizeof ks);
    if (n < 0) { if (out_len) *out_len = 0; return (int)n; }
    if (out_len) *out_len = (size_t)n;
    return 0;
}

VAULTDEF void vault_aes256_encrypt_block(const uint8_t key[32], const uint8_t in[16], uint8_t out[16]) {
    vault__aes_key ks;
    uint8_t iv[16];
    memset(iv, 0, sizeof iv);
    vault__aes_expand(&ks, key);
    vault__cbc_enc_blocks(&ks, iv, in, out, 1);   /* CBC with a zero IV = ECB for one block */
    vault_wipe(&ks, sizeof ks); vault_wipe(iv, sizeof iv);
}

VAULTDEF void vault_aes256_decrypt_block(const uint8_t key[32], const uint8_t in[16], uint8_t out[16]) {
    vault__aes_key ks;
    uint8_t iv[16];
    memset(iv, 0, sizeof iv);
    vault__aes_expand(&ks, key);
    vault__cbc_dec_blocks(&ks, iv, in, out, 1);
    vault_wipe(&ks, sizeof ks); vault_wipe(iv, sizeof iv);
}

/* The expanded-key forms: vault_aes256_ctx has vault__aes_key's layout. */
static const vault__aes_key *vault__ctx_ks(const vault_aes256_ctx *c) { return (const vault__aes_key *)(const void *)c; }

VAULTDEF void vault_aes256_init(vault_aes256_ctx *c, const uint8_t key[32]) {
    vault__aes_key ks;
    vault__aes_expand(&ks, key);
    memcpy(c->rk, ks.rk, sizeof c->rk);
    vault_wipe(&ks, sizeof ks);
}

VAULTDEF void vault_aes256_ctx_encrypt_block(const vault_aes256_ctx *c, const uint8_t in[16], uint8_t out[16]) {
    uint8_t iv[16];
    memset(iv, 0, sizeof iv);
    vault__cbc_enc_blocks(vault__ctx_ks(c), iv, in, out, 1);
    vault_wipe(iv, sizeof iv);
}

VAULTDEF int vault_aes256_ctx_cbc_encrypt(const vault_aes256_ctx *c, const uint8_t iv[16], const void *in, size_t len, uint8_t *out, size_t *out_len) {
    if (!c || !iv || !out || (!in && len)) return VAULT_EINVAL;
    if (len > (size_t)-1 - 32) return VAULT_ETOOBIG;
    vault__cbc_encrypt(vault__ctx_ks(c), iv, (const uint8_t *)in, len, out);
    if (out_len) *out_len = VAULT_CBC_OUT_LEN(len);
    return 0;
}

VAULTDEF int vault_aes256_ctx_cbc_decrypt(const vault_aes256_ctx *c, const uint8_t iv[16], const void *in, size_t len, uint8_t *out, size_t *out_len) {
    long n;
    if (!c || !iv || !in || !out) return VAULT_EINVAL;
    if (len == 0 || len % 16) return VAULT_EPAD;
    n = vault__cbc_decrypt(vault__ctx_ks(c), iv, (const uint8_t *)in, len, out);
    if (n < 0) { if (out_len) *out_len = 0; return (int)n; }
    if (out_len) *out_len = (size_t)n;
    return 0;
}

VAULTDEF void vault_aes256_ctx_encrypt_blocks(const vault_aes256_ctx *c, const uint8_t *in, uint8_t *out, size_t nblocks) {
    const vault__aes_key *ks = vault__ctx_ks(c);
    uint8_t iv[16];
    size_t i = 0;
#ifdef VAULT__X86
    if (vault_cpu_features() & VAULT_CPU_AESNI) {
        uint8_t ivs[4][16];
        const uint8_t *src[4];
        uint8_t *dst[4];
        const size_t step[4] = {0, 0, 0, 0};
        int j;
        for (; nblocks - i >= 4; i += 4) {
            memset(ivs, 0, sizeof ivs);
            for (j = 0; j < 4; j++) { src[j] = in + 16 * (i + (size_t)j); dst[j] = out + 16 * (i + (size_t)j); }
            vault__aesni_cbc_enc4(ks, ivs, src, dst, step, 1);
        }
        vault_wipe(ivs, sizeof ivs);
    }
#endif
    for (; i < nblocks; i++) {
        memset(iv, 0, sizeof iv);
        vault__cbc_enc_blocks(ks, iv, in + 16 * i, out + 16 * i, 1);
    }
    vault_wipe(iv, sizeof iv);
}

VAULTDEF void vault_aes256_ctx_cbc_encrypt_many(const vault_aes256_ctx *c, size_t n, const uint8_t *const iv[],
                                                uint8_t *const buf[], const size_t nblocks[]) {
    const vault__aes_key *ks = vault__ctx_ks(c);
    uint8_t chain[4][16];
    size_t i = 0;
    int j;
#ifdef VAULT__X86
    if (vault_cpu_features() & VAULT_CPU_AESNI) {
        uint8_t scratch[16];
        const uint8_t *src[4];
        uint8_t *dst[4];
        size_t step[4];
        for (; n - i >= 2; i += 4) {
            size_t m = (size_t)-1, lanes = n - i < 4 ? n - i : 4;
            memset(scratch, 0, sizeof scratch);
            for (j = 0; j < 4; j++) {
                size_t q = i + (size_t)j;
                if ((size_t)j < lanes) {
                    memcpy(chain[j], iv[q], 16);
                    src[j] = dst[j] = buf[q]; step[j] = 16;
                    if (nblocks[q] < m) m = nblocks[q];
                } else {
                    memset(chain[j], 0, 16);
                    src[j] = dst[j] = scratch; step[j] = 0;
                }
            }
            vault__aesni_cbc_enc4(ks, chain, src, dst, step, m);
            for (j = 0; (size_t)j < lanes; j++) {   /* a longer message's rest on its own */
                size_t q = i + (size_t)j;
                if (nblocks[q] > m) vault__aesni_cbc_enc(ks, chain[j], buf[q] + 16 * m, buf[q] + 16 * m, nblocks[q] - m);
            }
            if (lanes < 4) { i += lanes; break; }
        }
        vault_wipe(scratch, sizeof scratch);
    }
#endif
    for (; i < n; i++) {
        memcpy(chain[0], iv[i], 16);
        vault__cbc_enc_blocks(ks, chain[0], buf[i], buf[i], nblocks[i]);
    }
    (void)j;
    vault_wipe(chain, sizeof chain);
}

/* >>b64 ------------------------------------------------------------------ */
/* Standard alphabet, '=' padding required, no whitespace, unused bits zero:
 * exactly one accepted spelling for each byte string. Not secret data. */

static const char vault__b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t vault__b64_len(size_t n) { return (n + 2) / 3 * 4; }

static void vault__b64_encode(const uint8_t *in, size_t n, char *out) {
    size_t i;
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        *out++ = vault__b64chars[v >> 18]; *out++ = vault__b64chars[(v >> 12) & 63];
        *out++ = vault__b64chars[(v >> 6) & 63]; *out++ = vault__b64chars[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = vault__b64chars[v >> 18]; *out++ = vault__b64chars[(v >> 12) & 63]; *out++ = '='; *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        *out++ = vault__b64chars[v >> 18]; *out++ = vault__b64chars[(v >> 12) & 63];
        *out++ = vault__b64chars[(v >> 6) & 63]; *out++ = '=';
    }
    *out = 0;
}

static int vault__b64_val(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Returns the decoded length, or -1 if not canonical base64 or > cap. */
static long vault__b64_decode(const char *s, size_t n, uint8_t *out, size_t cap) {
    size_t i, o = 0, pad = 0;
    if (n % 4) return -1;
    if (n >= 4 && s[n - 1] == '=') pad = s[n - 2] == '=' ? 2 : 1;
    if (n / 4 * 3 - pad > cap) return -1;
    for (i = 0; i < n; i += 4) {
        int v[4], k;
        int last = i + 4 == n;
        for (k = 0; k < 4; k++) {
            if (last && k >= 4 - (int)pad) v[k] = 0;
            else if ((v[k] = vault__b64_val(s[i + k])) < 0) return -1;
        }
        {
            uint32_t w = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) | ((uint32_t)v[2] << 6) | (uint32_t)v[3];
            out[o++] = (uint8_t)(w >> 16);
            if (!last || pad < 2) out[o++] = (uint8_t)(w >> 8);
            else if (w & 0xffff) return -1;              /* non-zero unused bits */
            if (!last || pad < 1) out[o++] = (uint8_t)w;
            else if (pad == 1 && (w & 0xff)) return -1;
        }
    }
    return (long)o;
}

/* >>json ----------------------------------------------------------------- */
/* secure_config.json is one flat JSON object. The parser accepts JSON
 * whitespace, string values of printable ASCII without escapes, and unsigned
 * integers without sign, fraction or leading zeros; every key at most once.
 * Everything it touches is bounded by the file size (itself bounded). */

#define VAULT__MAGIC "vault.h/secure_config"
#define VAULT__KDF "pbkdf2-hmac-sha256"
#define VAULT__CIPHER "aes-256-cbc"
#define VAULT__MAC "hmac-sha256"
#define VAULT__SALT_LEN 32

enum { VAULT__F_FORMAT, VAULT__F_VERSION, VAULT__F_KDF, VAULT__F_ITER, VAULT__F_SALT, VAULT__F_CIPHER,
       VAULT__F_IV, VAULT__F_MAC, VAULT__F_CT, VAULT__F_TAG, VAULT__F_COUNTER, VAULT__F_N };
static const char *const vault__fields[VAULT__F_N] = {
    "format", "version", "kdf", "kdf_iterations", "kdf_salt", "cipher", "iv", "mac", "ciphertext", "tag", "counter"};
static const int vault__field_is_num[VAULT__F_N] = {0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1};

typedef struct vault__json {
    const char *s[VAULT__F_N]; size_t n[VAULT__F_N]; uint64_t num[VAULT__F_N]; int seen[VAULT__F_N];
    int unknown;
} vault__json;

static const char *vault__ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static const char *vault__jstring(const char *p, const char *e, const char **s, size_t *n) {
    const char *q;
    if (p >= e || *p != '"') return NULL;
    q = ++p;
    while (q < e && *q != '"') {
        if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e || *q == '\\') return NULL;
        q++;
    }
    if (q >= e) return NULL;
    *s = p; *n = (size_t)(q - p);
    return q + 1;
}

static int vault__json_parse(const char *p, size_t len, vault__json *j) {
    const char *e = p + len;
    memset(j, 0, sizeof *j);
    p = vault__ws(p, e);
    if (p >= e || *p != '{') return VAULT_EFORMAT;
    p = vault__ws(p + 1, e);
    if (p < e && *p == '}') { p++; goto done; }
    for (;;) {
        const char *k; size_t kn; int f;
        p = vault__jstring(p, e, &k, &kn);
        if (!p) return VAULT_EFORMAT;
        p = vault__ws(p, e);
        if (p >= e || *p != ':') return VAULT_EFORMAT;
        p = vault__ws(p + 1, e);
        for (f = 0; f < VAULT__F_N; f++)
            if (strlen(vault__fields[f]) == kn && memcmp(vault__fields[f], k, kn) == 0) break;
        if (p >= e) return VAULT_EFORMAT;
        if (*p == '"') {
            const char *s; size_t sn;
            p = vault__jstring(p, e, &s, &sn);
            if (!p) return VAULT_EFORMAT;
            if (f == VAULT__F_N) j->unknown = 1;
            else if (j->seen[f] || vault__field_is_num[f]) return VAULT_EFORMAT;
            else { j->seen[f] = 1; j->s[f] = s; j->n[f] = sn; }
        } else if (*p >= '0' && *p <= '9') {
            uint64_t v = 0;
            if (*p == '0' && p + 1 < e && p[1] >= '0' && p[1] <= '9') return VAULT_EFORMAT;
            while (p < e && *p >= '0' && *p <= '9') {      /* saturates: huge is out of range, not a new value */
                uint64_t d = (uint64_t)(*p - '0');
                v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
                p++;
            }
            if (p < e && (*p == '.' || *p == 'e' || *p == 'E')) return VAULT_EFORMAT;
            if (f == VAULT__F_N) j->unknown = 1;
            else if (j->seen[f] || !vault__field_is_num[f]) return VAULT_EFORMAT;
            else { j->seen[f] = 1; j->num[f] = v; }
        } else {
            return VAULT_EFORMAT;   /* objects, arrays, true/false/null, negative numbers: not in this format */
        }
        p = vault__ws(p, e);
        if (p >= e) return VAULT_EFORMAT;
        if (*p == ',') { p = vault__ws(p + 1, e); continue; }
        if (*p == '}') { p++; break; }
        return VAULT_EFORMAT;
    }
done:
    p = vault__ws(p, e);
    return p == e ? 0 : VAULT_EFORMAT;
}

static int vault__jeq(const vault__json *j, int f, const char *want) {
    return j->seen[f] && j->n[f] == strlen(want) && memcmp(j->s[f], want, j->n[f]) == 0;
}

/* >>map ------------------------------------------------------------------ */
/* The plaintext: u32be count, then per credential, sorted by name (strcmp),
 *   u32be name_len, name, 0x00, u32be value_len, value, 0x00
 * and, in the file only, zero bytes up to a multiple of 256 (hides sizes). */

#define VAULT__MAP_ALIGN 256u

static size_t vault__entry_len(size_t nl, size_t vl) { return 4 + nl + 1 + 4 + vl + 1; }

/* Validates an encoded map in p[0..len): returns the encoded length (the rest,
 * up to len, must be zeros) or VAULT_ECORRUPT. */
static long vault__map_check(const uint8_t *p, size_t len) {
    size_t off = 4, i, prev_name = 0;
    uint32_t count;
    if (len < 4) return VAULT_ECORRUPT;
    count = vault__be32(p);
    if (count > len / 11) return VAULT_ECORRUPT;
    for (i = 0; i < count; i++) {
        uint32_t nl, vl;
        size_t name;
        if (len - off < 4) return VAULT_ECORRUPT;
        nl = vault__be32(p + off); off += 4;
        if (nl == 0 || nl > VAULT_NAME_MAX || len - off < (size_t)nl + 1 + 4) return VAULT_ECORRUPT;
        name = off;
        if (memchr(p + off, 0, nl) || p[off + nl] != 0) return VAULT_ECORRUPT;
        off += nl + 1;
        vl = vault__be32(p + off); off += 4;
        if (vl > VAULT_VALUE_MAX || len - off < (size_t)vl + 1) return VAULT_ECORRUPT;
        if (p[off + vl] != 0) return VAULT_ECORRUPT;   /* values are any bytes, then a NUL */
        off += vl + 1;
        if (i > 0 && strcmp((const char *)p + prev_name, (const char *)p + name) >= 0) return VAULT_ECORRUPT;
        prev_name = name;
    }
    for (i = off; i < len; i++) if (p[i]) return VAULT_ECORRUPT;
    return (long)off;
}

/* >>file ----------------------------------------------------------------- */

struct vault {
    char *path;
    vault_options opt;
    vault__sec keys;     /* vault__keyset */
    vault__sec map;      /* the encoded map, zero after map_len */
    vault__sec pw;       /* the password, NUL-terminated: rotate re-derives with a fresh salt */
    size_t map_len;
    uint8_t salt[VAULT__SALT_LEN];
    uint32_t iterations;
    uint32_t version;      /* of the file: 2 carries a save counter */
    uint64_t counter;      /* the file's save counter (version 2) */
    uint8_t file_tag[32];  /* the tag of the file as this handle last read or wrote it */
    struct stat file_st;   /* and its identity then (used when it cannot be read back) */
    pid_t pid;             /* the process that opened it: a forked child's copy has no secrets */
    int mlock_warned;      /* the audit heard once that pages could not be locked */
};

typedef struct vault__keyset {
    uint8_t enc[32], mac[32];
    vault__aes_key aes;
    vault__hmac_key hmac;
} vault__keyset;

static void vault__audit(const vault_options *o, int ev, int result, const char *path, uint32_t iter, const char *msg) {
    vault_audit_event e;
    if (!o->audit) return;
    e.event = ev; e.result = result; e.path = path; e.iterations = iter;
    e.message = msg ? msg : vault_strerror(result);
    o->audit(&e, o->audit_user_data);
}

/* Tells the audit callback, once per handle, that secret pages could not be
 * locked in memory (they can then reach swap or a hibernation image). */
static void vault__check_locked(vault *v, const vault__sec *s) {
    char msg[256];
    if (!s->p || s->locked || v->mlock_warned) return;
    v->mlock_warned = 1;
    snprintf(msg, sizeof msg, "secret pages of '%s' could not be locked in memory (mlock: %s; RLIMIT_MEMLOCK?): they may be swapped out",
             v->path, strerror(s->lock_errno));
    vault__audit(&v->opt, VAULT_AUDIT_WARNING, 0, v->path, 0, msg);
}

/* snprintf for messages (paths can be long: truncation is fine). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void vault__msg(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* The last errno this thread turned into a VAULT_ code, and what
 * vault_open_errno reports: it, when the failed open's code is the one that
 * errno maps to. */
static __thread int vault__errno_seen, vault__open_errno;
VAULTDEF int vault_open_errno(void) { return vault__open_errno; }

static int vault__map_errno(int e) {
    switch (e) {
    case ELOOP: return VAULT_ESYMLINK;
    case ENOENT: return VAULT_ENOENT;
    case EEXIST: return VAULT_EEXIST;
    case ENOMEM: return VAULT_ENOMEM;
    case EACCES: case EPERM: case EROFS: return VAULT_EACCES;
    case ENOSPC: case EDQUOT: return VAULT_ENOSPC;
    default: return VAULT_EIO;
    }
}

static int vault__errno(int e) {
    vault__errno_seen = e;
    return vault__map_errno(e);
}

static int vault__open_done(int rc) {   /* the end of vault_open/vault_create */
    vault__open_errno = rc && vault__errno_seen && vault__map_errno(vault__errno_seen) == rc ? vault__errno_seen : 0;
    return rc;
}

/* Errors whose errno is worth printing. */
static int vault__errno_said(int rc) {
    return rc == VAULT_EIO || rc == VAULT_EACCES || rc == VAULT_ENOSPC || rc == VAULT_ENOENT;
}

/* Reads the whole vault file after the OpenSSH-style checks. *msg gets a
 * sentence for the audit log. */
static int vault__read_file(const char *path, char **buf, size_t *len, char *msg, size_t msgcap, struct stat *st_out) {
    struct stat st;
    int fd, rc;
    size_t got = 0;
    char *b;
    *buf = NULL; *len = 0;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        rc = vault__errno(errno);
        if (rc == VAULT_ESYMLINK) vault__msg(msg, msgcap, "'%s' is a symbolic link; refusing to follow it", path);
        else vault__msg(msg, msgcap, "cannot open '%s': %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) != 0) { rc = VAULT_EIO; vault__errno_seen = errno; vault__msg(msg, msgcap, "cannot stat '%s': %s", path, strerror(errno)); goto fail; }
    if (!S_ISREG(st.st_mode)) { rc = VAULT_ENOTREG; vault__msg(msg, msgcap, "'%s' is not a regular file", path); goto fail; }
    if (st.st_uid != geteuid()) {
        rc = VAULT_EOWNER;
        vault__msg(msg, msgcap, "'%s' is owned by uid %lu, not by this user (uid %lu); refusing it", path,
                 (unsigned long)st.st_uid, (unsigned long)geteuid());
        goto fail;
    }
    if (st.st_mode & 077) {
        rc = VAULT_EPERM;
        vault__msg(msg, msgcap, "permissions 0%03o for '%s' are too open: it must not be accessible by others (chmod 600 '%s')",
                 (unsigned)(st.st_mode & 0777), path, path);
        goto fail;
    }
    if (st.st_size > (off_t)VAULT_FILE_MAX) { rc = VAULT_ETOOBIG; vault__msg(msg, msgcap, "'%s' is larger than %u bytes", path, VAULT_FILE_MAX); goto fail; }
    b = (char *)VAULT_MALLOC((size_t)st.st_size + 1);
    if (!b) { rc = VAULT_ENOMEM; vault__msg(msg, msgcap, "out of memory"); goto fail; }
    for (;;) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size + 1 - got);   /* +1: notices growth */
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { rc = VAULT_EIO; vault__errno_seen = errno; vault__msg(msg, msgcap, "cannot read '%s': %s", path, strerror(errno)); VAULT_FREE(b); goto fail; }
        if (r == 0) break;
        got += (size_t)r;
        if (got > (size_t)st.st_size) { VAULT_FREE(b); rc = VAULT_EIO; vault__msg(msg, msgcap, "'%s' changed while being read", path); goto fail; }
    }
    close(fd);
    *buf = b; *len = got;
    if (st_out) *st_out = st;
    return 0;
fail:
    close(fd);
    return rc;
}

/* The steps of the atomic save, through the test hook with VAULT_TEST_IO. */
#ifdef VAULT_TEST_IO
static const vault_io *vault__tio;
VAULTDEF void vault_test_set_io(const vault_io *io) { __atomic_store_n(&vault__tio, io, __ATOMIC_RELEASE); }
#define VAULT__HOOK(member, ...) do { const vault_io *vault__h = __atomic_load_n(&vault__tio, __ATOMIC_ACQUIRE); \
    if (vault__h && vault__h->member) return vault__h->member(vault__h->ctx, __VA_ARGS__); } while (0)
#else
#define VAULT__HOOK(member, ...) do { } while (0)
#endif
static int vault__sys_open(const char *path, int flags, unsigned mode) { VAULT__HOOK(open, path, flags, mode); return open(path, flags, (mode_t)mode); }
static long vault__sys_write(int fd, const void *buf, size_t len) { VAULT__HOOK(write, fd, buf, len); return (long)write(fd, buf, len); }
static int vault__sys_fsync(int fd) { VAULT__HOOK(fsync, fd); return fsync(fd); }
static int vault__sys_rename(const char *from, const char *to) { VAULT__HOOK(rename, from, to); return rename(from, to); }
static int vault__sys_link(const char *from, const char *to) { VAULT__HOOK(link, from, to); return link(from, to); }
static int vault__sys_unlink(const char *path) { VAULT__HOOK(unlink, path); return unlink(path); }
static int vault__sys_fsync_dir(int dirfd, const char *dir) { VAULT__HOOK(fsync_dir, dirfd, dir); (void)dir; return fsync(dirfd); }

static int vault__fsync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd, rc = 0;
    size_t n;
    n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    dir = (char *)VAULT_MALLOC(n + 1);
    if (!dir) return VAULT_ENOMEM;
    if (!slash) dir[0] = '.'; else memcpy(dir, path, n);
    dir[n] = 0;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) { int err = errno; VAULT_FREE(dir); errno = err; return vault__errno(err); }
    if (vault__sys_fsync_dir(fd, dir) != 0) { int err = errno; rc = vault__errno(err); close(fd); VAULT_FREE(dir); errno = err; return rc; }
    close(fd);
    VAULT_FREE(dir);
    return rc;
}

/* Temp files are "<path>.tmp-" + 16 hex digits, flock()ed by their writer
 * from creation until they are renamed or unlinked. One left behind by a
 * killed save is a whole copy of the vault under the password of its time
 * (an old one, after a rekey): every successful save removes those of this
 * user that nobody holds locked. A writer that finds its new temp unlinked
 * (a cleaner won the race between its open and its flock) starts over. */
static int vault__is_temp_of(const char *name, const char *base) {
    size_t bl = strlen(base), i;
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp-", 5) != 0) return 0;
    for (i = 0; i < 16; i++) {
        char c = name[bl + 5 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    return name[bl + 5 + 16] == 0;
}

static void vault__remove_stale_temps(const char *path) {
    const char *sl = strrchr(path, '/');
    const char *base = sl ? sl + 1 : path;
    size_t dl = sl ? (size_t)(sl - path) : 0;
    char *dir = (char *)VAULT_MALLOC(dl + 2), *full;
    DIR *d;
    struct dirent *e;
    int removed = 0;
    if (!dir) return;
    if (!sl) { dir[0] = '.'; dir[1] = 0; }
    else if (dl == 0) { dir[0] = '/'; dir[1] = 0; }
    else { memcpy(dir, path, dl); dir[dl] = 0; }
    d = opendir(dir);
    full = (char *)VAULT_MALLOC(strlen(dir) + strlen(base) + 32);
    while (d && full && (e = readdir(d)) != NULL) {
        struct stat st;
        int fd;
        if (!vault__is_temp_of(e->d_name, base)) continue;
        sprintf(full, "%s/%s", dir, e->d_name);
        fd = open(full, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            flock(fd, LOCK_EX | LOCK_NB) == 0 && vault__sys_unlink(full) == 0)
            removed = 1;
        close(fd);
    }
    if (d) closedir(d);
    VAULT_FREE(full);
    if (removed) {   /* best effort: the removal need not be durable */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) { if (fsync(dfd) != 0) { /* nothing depends on it */ } close(dfd); }
    }
    VAULT_FREE(dir);
}

/* Errors: VAULT_EACCES, VAULT_ENOSPC, else VAULT_EIO, with errno saying why (VAULT_EEXIST / VAULT_ENOENT when
 * creating). Writes data to a fresh temp file beside path (0600, O_EXCL|O_NOFOLLOW,
 * flock()ed while it exists), fsyncs it, then puts it in place: rename() to
 * replace, or link() when exclusive (fails with VAULT_EEXIST if path exists),
 * then fsyncs the dir. */
static int vault__write_atomic(const char *path, const char *data, size_t len, int exclusive) {
    size_t pl = strlen(path), off = 0;
    char *tmp = (char *)VAULT_MALLOC(pl + 32);
    uint8_t rnd[8];
    int fd, rc = 0, err = 0, i, attempt;
    struct stat st;
    if (!tmp) return VAULT_ENOMEM;
    for (attempt = 0;; attempt++) {
        if (vault_random(rnd, sizeof rnd) != 0) { VAULT_FREE(tmp); return VAULT_ERANDOM; }
        memcpy(tmp, path, pl);
        memcpy(tmp + pl, ".tmp-", 5);
        for (i = 0; i < 8; i++) snprintf(tmp + pl + 5 + 2 * i, 3, "%02x", rnd[i]);
        fd = vault__sys_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            err = errno;
            VAULT_FREE(tmp);
            errno = err;
            return vault__errno(err);   /* errno says why */
        }
        if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0) {
            err = errno; close(fd); vault__sys_unlink(tmp); VAULT_FREE(tmp); errno = err; return vault__errno(err);
        }
        if (st.st_nlink > 0) break;              /* still ours: nobody removed it */
        close(fd);
        if (attempt == 8) { VAULT_FREE(tmp); errno = EAGAIN; return VAULT_EIO; }
    }
    if (fchmod(fd, 0600) != 0) { err = errno; rc = vault__errno(err); }    /* exact mode whatever the umask */
    while (rc == 0 && off < len) {
        long w = vault__sys_write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { err = w < 0 ? errno : ENOSPC; rc = vault__errno(err); break; }
        off += (size_t)w;
    }
    /* A failed fsync is final for this file: the next save writes a new one. */
    if (rc == 0 && vault__sys_fsync(fd) != 0) { err = errno; rc = vault__errno(err); }
    if (rc == 0) {               /* renamed or linked while still locked */
        if (exclusive) {
            if (vault__sys_link(tmp, path) != 0) { err = errno; rc = vault__errno(err); }
            vault__sys_unlink(tmp);
        } else if (vault__sys_rename(tmp, path) != 0) {
            err = errno; rc = vault__errno(err);
        }
    }
    if (rc != 0) vault__sys_unlink(tmp);
    if (close(fd) != 0 && rc == 0) { err = errno; rc = vault__errno(err); }
    if (rc == 0 && (rc = vault__fsync_dir(path)) != 0) err = errno;
    if (rc == 0) vault__remove_stale_temps(path);
    VAULT_FREE(tmp);
    if (rc != 0) errno = err;
    return rc;
}

/* Writers take turns on "<path>.lock" (flock, exclusive): created on first
 * use, never removed (removing it would let two writers lock two different
 * files). A writer that finds it held retries every few milliseconds for up
 * to timeout_ms, then gives up with VAULT_ELOCKED. *fd is closed to unlock. */
static int vault__lock(const char *path, uint32_t timeout_ms, int *fd) {
    size_t pl = strlen(path);
    char *lp = (char *)VAULT_MALLOC(pl + 6);
    struct timespec t0, now, nap;
    struct stat st;
    int err;
    *fd = -1;
    if (!lp) return VAULT_ENOMEM;
    memcpy(lp, path, pl); memcpy(lp + pl, ".lock", 6);
    *fd = open(lp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
    err = errno;
    VAULT_FREE(lp);
    if (*fd < 0) { errno = err; return vault__errno(err); }
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) { close(*fd); *fd = -1; return VAULT_ENOTREG; }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    nap.tv_sec = 0; nap.tv_nsec = 2000000;   /* 2 ms, doubling up to 64 ms */
    while (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        uint64_t ms;
        if (errno != EWOULDBLOCK && errno != EINTR) { err = errno; close(*fd); *fd = -1; errno = err; return VAULT_EIO; }
        clock_gettime(CLOCK_MONOTONIC, &now);
        ms = (uint64_t)(now.tv_sec - t0.tv_sec) * 1000u + (uint64_t)((now.tv_nsec - t0.tv_nsec) / 1000000);
        if (ms >= timeout_ms) { close(*fd); *fd = -1; return VAULT_ELOCKED; }
        nanosleep(&nap, NULL);
        if (nap.tv_nsec < 64000000) nap.tv_nsec *= 2;
    }
    return 0;
}

/* Is the file at path still the one this handle read or last wrote? The tag
 * decides (public, and different for every save: each draws a fresh IV); it
 * is read without the owner and mode checks, which do not matter for it.
 * When the file cannot be read (mode 000 for its owner), the same inode,
 * size and mtime count as the same file. 1 same, 0 changed or gone, < 0 error. */
static int vault__unchanged(const vault *v) {
    struct stat st;
    vault__json j;
    uint8_t tag[32];
    char *b;
    size_t got = 0;
    int fd = open(v->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), rc;
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        if (errno != EACCES || lstat(v->path, &st) != 0) return vault__errno(errno);
        return st.st_dev == v->file_st.st_dev && st.st_ino == v->file_st.st_ino && st.st_size == v->file_st.st_size &&
               st.st_mtim.tv_sec == v->file_st.st_mtim.tv_sec && st.st_mtim.tv_nsec == v->file_st.st_mtim.tv_nsec;
    }
    if (fstat(fd, &st) != 0) { rc = vault__errno(errno); close(fd); return rc; }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)VAULT_FILE_MAX) { close(fd); return 0; }
    b = (char *)VAULT_MALLOC((size_t)st.st_size + 1);
    if (!b) { close(fd); return VAULT_ENOMEM; }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    rc = vault__json_parse(b, got, &j) == 0 && j.seen[VAULT__F_TAG] &&
         vault__b64_decode(j.s[VAULT__F_TAG], j.n[VAULT__F_TAG], tag, 32) == 32 && vault_ct_equal(tag, v->file_tag, 32);
    VAULT_FREE(b);
    return rc;
}

/* Rollback state: one decimal number and a newline, the highest save
 * counter seen, in a file the caller names (kept apart from the vault: an
 * attacker who can put back an old vault must not be able to put back this
 * too). Missing: 0. Written like the vault (temp, fsync, rename). */
static int vault__state_read(const char *path, uint64_t *out) {
    char b[32];
    size_t got = 0, i;
    uint64_t v = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    *out = 0;
    if (fd < 0) return errno == ENOENT ? 0 : vault__errno(errno);
    for (;;) {
        ssize_t r = read(fd, b + got, sizeof b - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
        if (got == sizeof b) break;
    }
    close(fd);
    if (got < 2 || got == sizeof b || b[got - 1] != '\n') return VAULT_EFORMAT;
    for (i = 0; i + 1 < got; i++) {
        if (b[i] < '0' || b[i] > '9' || v > (UINT64_MAX - 9) / 10) return VAULT_EFORMAT;
        v = v * 10 + (uint64_t)(b[i] - '0');
    }
    *out = v;
    return 0;
}

static int vault__state_write(const char *path, uint64_t v) {
    char b[32];
    int n = snprintf(b, sizeof b, "%llu\n", (unsigned long long)v);
    return vault__write_atomic(path, b, (size_t)n, 0);
}

/* >>store ---------------------------------------------------------------- */

VAULTDEF const char *vault_strerror(int err) {
    switch (err) {
#define VAULT__CASE(name, num, text) case num: return num ? #name ": " text : text;  /* "NAME: text", as plg_ and pp_strerror */
    VAULT_ERRORS(VAULT__CASE)
#undef VAULT__CASE
    default: return "unknown vault error";
    }
}

VAULTDEF const char *vault_audit_name(int event) {
    switch (event) {
#define VAULT__CASE(name, num, text) case num: return text;
    VAULT_AUDIT_EVENTS(VAULT__CASE)
#undef VAULT__CASE
    default: return "unknown";
    }
}

VAULTDEF vault_options vault_options_defaults(const vault_options *opts) {
    vault_options o;
    if (opts) o = *opts; else memset(&o, 0, sizeof o);
    if (!o.iterations) o.iterations = VAULT_DEFAULT_ITERATIONS;
    if (!o.min_iterations) o.min_iterations = VAULT_DEFAULT_MIN_ITERATIONS;
    if (o.min_iterations < VAULT_ITERATIONS_FLOOR) o.min_iterations = VAULT_ITERATIONS_FLOOR;
    if (!o.max_iterations) o.max_iterations = VAULT_DEFAULT_MAX_ITERATIONS;
    if (!o.lock_timeout_ms) o.lock_timeout_ms = VAULT_DEFAULT_LOCK_TIMEOUT_MS;
    return o;
}

static const char vault__label_enc[] = "vault.h v1 encryption key";
static const char vault__label_mac[] = "vault.h v1 authentication key";

/* master = PBKDF2(password, salt, iter, 32); enc/mac = HKDF-Expand(master, label, 32). */
static void vault__derive(vault__keyset *k, const char *password, const uint8_t *salt, uint32_t iter) {
    uint8_t master[32], info[64];
    size_t n, pwlen = strlen(password);          /* the password's length is not hidden */
    VAULT_CT_SECRET(password, pwlen);
    vault_pbkdf2_sha256(password, pwlen, salt, VAULT__SALT_LEN, iter, master, 32);
    VAULT_CT_DECLASSIFY(password, pwlen);        /* the caller's buffer, as it was */
    n = sizeof vault__label_enc - 1;
    memcpy(info, vault__label_enc, n); info[n] = 1;
    vault_hmac_sha256(master, 32, info, n + 1, k->enc);
    n = sizeof vault__label_mac - 1;
    memcpy(info, vault__label_mac, n); info[n] = 1;
    vault_hmac_sha256(master, 32, info, n + 1, k->mac);
    vault__aes_expand(&k->aes, k->enc);
    vault__hmac_setkey(&k->hmac, k->mac, 32);
    vault_wipe(master, sizeof master);
}

static void vault__mac_str(vault_sha256_ctx *c, const char *s) {
    uint8_t n = (uint8_t)strlen(s);
    vault_sha256_update(c, &n, 1);
    vault_sha256_update(c, s, n);
}

/* The tag covers a canonical binary encoding of everything in the file:
 *   "vault.h/secure_config" 0x00, u32be version, [version 2: u64be counter], str(kdf), u32be iterations,
 *   u8 salt_len, salt, str(cipher), iv[16], str(mac), u64be ct_len, ct
 * where str(s) = u8 length, bytes. */
static void vault__tag(const vault__keyset *k, uint32_t version, uint64_t counter, uint32_t iter, const uint8_t *salt,
                       const uint8_t iv[16], const uint8_t *ct, size_t ctlen, uint8_t tag[32]) {
    vault_sha256_ctx c;
    uint8_t b[8];
    vault__hmac_start(&c, &k->hmac);
    vault_sha256_update(&c, VAULT__MAGIC, sizeof VAULT__MAGIC);   /* with its NUL */
    vault__put_be32(b, version); vault_sha256_update(&c, b, 4);
    if (version >= VAULT_FORMAT_VERSION_COUNTER) { vault__put_be64(b, counter); vault_sha256_update(&c, b, 8); }
    vault__mac_str(&c, VAULT__KDF);
    vault__put_be32(b, iter); vault_sha256_update(&c, b, 4);
    b[0] = VAULT__SALT_LEN; vault_sha256_update(&c, b, 1);
    vault_sha256_update(&c, salt, VAULT__SALT_LEN);
    vault__mac_str(&c, VAULT__CIPHER);
    vault_sha256_update(&c, iv, 16);
    vault__mac_str(&c, VAULT__MAC);
    vault__put_be64(b, ctlen); vault_sha256_update(&c, b, 8);
    vault_sha256_update(&c, ct, ctlen);
    vault__hmac_finish(&c, &k->hmac, tag);
}

static vault__keyset *vault__ks(vault *v) { return (vault__keyset *)v->keys.p; }

/* Keeps a copy of the password in its own secure pages. */
static int vault__keep_password(vault *v, const char *password) {
    vault__sec n;
    size_t len = strlen(password);
    int rc = vault__sec_alloc(&n, len + 1);
    if (rc != 0) return rc;
    memcpy(n.p, password, len + 1);
    vault__check_locked(v, &n);
    vault__sec_free(&v->pw);
    v->pw = n;
    return 0;
}


/* Encrypts the map with a fresh IV and returns the JSON text (VAULT_MALLOC). */
static int vault__serialize(vault *v, uint64_t counter, char **out, size_t *outlen, uint8_t tag_out[32]) {
    size_t padded = (v->map_len + VAULT__MAP_ALIGN - 1) / VAULT__MAP_ALIGN * VAULT__MAP_ALIGN;
    size_t ctlen = VAULT_CBC_OUT_LEN(padded), cap;
    uint8_t iv[16], tag[32];
    uint8_t *ct;
    char *js, *p;
    char b64salt[64], b64iv[32], b64tag[48];
    int rc;
    VAULT_ASSERT(padded <= v->map.cap);          /* the map pages are zero after map_len */
    if ((rc = vault_random(iv, sizeof iv)) != 0) return rc;
    ct = (uint8_t *)VAULT_MALLOC(ctlen);
    if (!ct) return VAULT_ENOMEM;
    VAULT_CT_SECRET(v->map.p, padded);
    vault__cbc_encrypt(&vault__ks(v)->aes, iv, v->map.p, padded, ct);
    VAULT_CT_DECLASSIFY(ct, ctlen);               /* the ciphertext and tag are public */
    vault__tag(vault__ks(v), v->version, counter, v->iterations, v->salt, iv, ct, ctlen, tag);
    VAULT_CT_DECLASSIFY(tag, sizeof tag);
    VAULT_CT_DECLASSIFY(v->map.p, padded);        /* back to the (not constant-time) map code */
    vault__b64_encode(v->salt, VAULT__SALT_LEN, b64salt);
    vault__b64_encode(iv, 16, b64iv);
    vault__b64_encode(tag, 32, b64tag);
    cap = vault__b64_len(ctlen) + 512;
    js = (char *)VAULT_MALLOC(cap);
    if (!js) { VAULT_FREE(ct); return VAULT_ENOMEM; }
    p = js;
    p += snprintf(p, cap, "{\n  \"format\": \"%s\",\n  \"version\": %lu,\n", VAULT__MAGIC, (unsigned long)v->version);
    if (v->version >= VAULT_FORMAT_VERSION_COUNTER)
        p += snprintf(p, cap - (size_t)(p - js), "  \"counter\": %llu,\n", (unsigned long long)counter);
    p += snprintf(p, cap - (size_t)(p - js), "  \"kdf\": \"%s\",\n  \"kdf_iterations\": %lu,\n"
                  "  \"kdf_salt\": \"%s\",\n  \"cipher\": \"%s\",\n  \"iv\": \"%s\",\n  \"mac\": \"%s\",\n  \"ciphertext\": \"",
                  VAULT__KDF, (unsigned long)v->iterations, b64salt, VAULT__CIPHER, b64iv, VAULT__MAC);
    vault__b64_encode(ct, ctlen, p);
    p += strlen(p);
    p += snprintf(p, cap - (size_t)(p - js), "\",\n  \"tag\": \"%s\"\n}\n", b64tag);
    VAULT_FREE(ct);
    memcpy(tag_out, tag, 32);
    *out = js; *outlen = (size_t)(p - js);
    return 0;
}

static int vault__new(vault **out, const char *path, const vault_options *opts) {
    vault *v;
    size_t pl = strlen(path);
    *out = NULL;
    v = (vault *)VAULT_MALLOC(sizeof *v);
    if (!v) return VAULT_ENOMEM;
    memset(v, 0, sizeof *v);
    v->opt = vault_options_defaults(opts);
    v->path = (char *)VAULT_MALLOC(pl + 1);
    if (!v->path) { VAULT_FREE(v); return VAULT_ENOMEM; }
    memcpy(v->path, path, pl + 1);
    v->pid = getpid();
    if (vault__sec_alloc(&v->keys, sizeof(vault__keyset)) != 0) { VAULT_FREE(v->path); VAULT_FREE(v); return VAULT_ENOMEM; }
    *out = v;
    return 0;
}

VAULTDEF void vault_close(vault *v) {
    if (!v) return;
    vault__sec_free(&v->keys);
    vault__sec_free(&v->map);
    vault__sec_free(&v->pw);
    VAULT_FREE(v->path);
    vault_wipe(v, sizeof *v);
    VAULT_FREE(v);
}

static int vault__create(vault **out, const char *path, const char *password, const vault_options *opts) {
    vault *v;
    char *js = NULL;
    size_t jl = 0;
    int rc;
    char msg[256];
    if (!out) return VAULT_EINVAL;
    *out = NULL;
    if (!path || !password || !password[0]) return VAULT_EINVAL;   /* an empty password protects nothing */
    {   /* fail fast, before the KDF; link() below is what makes it exclusive */
        struct stat st;
        if (lstat(path, &st) == 0) {
            vault_options o = vault_options_defaults(opts);
            vault__msg(msg, sizeof msg, "refusing to create '%s': it already exists", path);
            vault__audit(&o, VAULT_AUDIT_CREATE, VAULT_EEXIST, path, 0, msg);
            return VAULT_EEXIST;
        }
    }
    if ((rc = vault__new(&v, path, opts)) != 0) return rc;
    v->iterations = v->opt.iterations;
    if (v->iterations < v->opt.min_iterations || v->iterations > v->opt.max_iterations) {
        rc = VAULT_EKDFPARAM;
        vault__msg(msg, sizeof msg, "refusing to create '%s' with %lu PBKDF2 iterations (accepted: %lu..%lu)", path,
                 (unsigned long)v->iterations, (unsigned long)v->opt.min_iterations, (unsigned long)v->opt.max_iterations);
        vault__audit(&v->opt, VAULT_AUDIT_CREATE, rc, path, v->iterations, msg);
        vault_close(v);
        return rc;
    }
    if ((rc = vault__sec_alloc(&v->map, VAULT__MAP_ALIGN)) == 0 && (rc = vault_random(v->salt, sizeof v->salt)) == 0) {
        v->map_len = 4;                           /* count 0 */
        v->version = v->opt.rollback_state ? VAULT_FORMAT_VERSION_COUNTER : VAULT_FORMAT_VERSION;
        v->counter = v->opt.rollback_state ? 1 : 0;
        vault__derive(vault__ks(v), password, v->salt, v->iterations);
        rc = vault__serialize(v, v->counter, &js, &jl, v->file_tag);
        /* no writers' lock: link() makes it exclusive, and a save through
         * another handle finds no file of its own, a conflict */
        if (rc == 0) rc = vault__write_atomic(path, js, jl, 1);
        if (rc == 0 && lstat(path, &v->file_st) != 0) memset(&v->file_st, 0, sizeof v->file_st);
        if (rc == 0 && v->opt.rollback_state) rc = vault__state_write(v->opt.rollback_state, v->counter);
        VAULT_FREE(js);
    }
    if (rc == 0) vault__msg(msg, sizeof msg, "created '%s'", path);
    else vault__msg(msg, sizeof msg, "could not create '%s': %s (%s)", path, vault_strerror(rc),
                    vault__errno_said(rc) ? strerror(errno) : "-");
    vault__audit(&v->opt, VAULT_AUDIT_CREATE, rc, path, v->iterations, msg);
    vault__scrub();
    if (rc == 0) rc = vault__keep_password(v, password);
    if (rc != 0) { vault_close(v); return rc; }
    vault__check_locked(v, &v->keys);
    vault__check_locked(v, &v->map);
    *out = v;
    return 0;
}

VAULTDEF int vault_create_ex(vault **out, const char *path, const char *password, const vault_options *opts) {
    vault__errno_seen = 0;
    return vault__open_done(vault__create(out, path, password, opts));
}

VAULTDEF int vault_create(vault **out, const char *path, const char *password) {
    return vault_create_ex(out, path, password, NULL);
}

/* Parses and authenticates the file text, decrypts into v. */
static int vault__load(vault *v, const char *text, size_t len, const char *password, char *msg, size_t msgcap) {
    vault__json j;
    uint8_t iv[16], tag[32], want[32];
    uint8_t *ct = NULL;
    long n, m;
    size_t ctcap;
    int rc, ok;
    if ((rc = vault__json_parse(text, len, &j)) != 0) { vault__msg(msg, msgcap, "'%s' is not a vault file (JSON)", v->path); return rc; }
    if (!vault__jeq(&j, VAULT__F_FORMAT, VAULT__MAGIC) || !j.seen[VAULT__F_VERSION]) {
        vault__msg(msg, msgcap, "'%s' is not a vault file (no \"format\": \"%s\" and version)", v->path, VAULT__MAGIC);
        return VAULT_EFORMAT;
    }
    if (j.num[VAULT__F_VERSION] != VAULT_FORMAT_VERSION && j.num[VAULT__F_VERSION] != VAULT_FORMAT_VERSION_COUNTER) {
        vault__msg(msg, msgcap, "'%s' has format version %llu; this vault.h reads versions %d and %d", v->path,
                 (unsigned long long)j.num[VAULT__F_VERSION], VAULT_FORMAT_VERSION, VAULT_FORMAT_VERSION_COUNTER);
        return VAULT_EVERSION;
    }
    v->version = (uint32_t)j.num[VAULT__F_VERSION];
    for (rc = 0; rc < VAULT__F_N; rc++)
        if (!j.seen[rc] && rc != VAULT__F_COUNTER) { vault__msg(msg, msgcap, "'%s' lacks the field \"%s\"", v->path, vault__fields[rc]); return VAULT_EFORMAT; }
    if (j.seen[VAULT__F_COUNTER] != (v->version >= VAULT_FORMAT_VERSION_COUNTER)) {
        vault__msg(msg, msgcap, "'%s': \"counter\" belongs to format version %d files, and only to them", v->path, VAULT_FORMAT_VERSION_COUNTER);
        return VAULT_EFORMAT;
    }
    v->counter = j.num[VAULT__F_COUNTER];
    if (j.unknown) { vault__msg(msg, msgcap, "'%s' has fields this version does not know", v->path); return VAULT_EFORMAT; }
    if (!vault__jeq(&j, VAULT__F_KDF, VAULT__KDF) || !vault__jeq(&j, VAULT__F_CIPHER, VAULT__CIPHER) || !vault__jeq(&j, VAULT__F_MAC, VAULT__MAC)) {
        vault__msg(msg, msgcap, "'%s' uses an algorithm this version does not support (want %s, %s, %s)", v->path,
                 VAULT__KDF, VAULT__CIPHER, VAULT__MAC);
        return VAULT_EALGO;
    }
    if (j.num[VAULT__F_ITER] < v->opt.min_iterations || j.num[VAULT__F_ITER] > v->opt.max_iterations) {
        vault__msg(msg, msgcap, "'%s' asks for %llu PBKDF2 iterations; accepted range is %lu..%lu", v->path,
                 (unsigned long long)j.num[VAULT__F_ITER], (unsigned long)v->opt.min_iterations, (unsigned long)v->opt.max_iterations);
        return VAULT_EKDFPARAM;
    }
    v->iterations = (uint32_t)j.num[VAULT__F_ITER];
    if (vault__b64_decode(j.s[VAULT__F_SALT], j.n[VAULT__F_SALT], v->salt, sizeof v->salt) != VAULT__SALT_LEN ||
        vault__b64_decode(j.s[VAULT__F_IV], j.n[VAULT__F_IV], iv, sizeof iv) != 16 ||
        vault__b64_decode(j.s[VAULT__F_TAG], j.n[VAULT__F_TAG], tag, sizeof tag) != 32) {
        vault__msg(msg, msgcap, "'%s': salt, IV or tag is not canonical base64 of the right length", v->path);
        return VAULT_EFORMAT;
    }
    ctcap = j.n[VAULT__F_CT] / 4 * 3;
    if (ctcap == 0 || ctcap > VAULT_CBC_OUT_LEN(VAULT_MAP_MAX) + 2) { vault__msg(msg, msgcap, "'%s': ciphertext size out of range", v->path); return VAULT_EFORMAT; }
    ct = (uint8_t *)VAULT_MALLOC(ctcap);
    if (!ct) return VAULT_ENOMEM;
    n = vault__b64_decode(j.s[VAULT__F_CT], j.n[VAULT__F_CT], ct, ctcap);
    if (n <= 0 || n % 16 != 0 || (size_t)n > VAULT_CBC_OUT_LEN(VAULT_MAP_MAX)) {
        VAULT_FREE(ct);
        vault__msg(msg, msgcap, "'%s': ciphertext is not canonical base64 of whole AES blocks", v->path);
        return VAULT_EFORMAT;
    }
    /* Authenticate before anything is decrypted. */
    vault__derive(vault__ks(v), password, v->salt, v->iterations);
    vault__tag(vault__ks(v), v->version, v->counter, v->iterations, v->salt, iv, ct, (size_t)n, want);
    ok = vault_ct_equal(want, tag, 32);
    VAULT_CT_DECLASSIFY(&ok, sizeof ok);
    vault_wipe(want, sizeof want);
    if (!ok) {
        VAULT_FREE(ct);
        vault__audit(&v->opt, VAULT_AUDIT_AUTH_FAILED, VAULT_EAUTH, v->path, v->iterations,
                     "decryption refused: the tag does not match (wrong password or modified file)");
        vault__msg(msg, msgcap, "'%s': wrong password or the file was modified", v->path);
        return VAULT_EAUTH;
    }
    if ((rc = vault__sec_alloc(&v->map, (size_t)n)) != 0) { VAULT_FREE(ct); return rc; }
    m = vault__cbc_decrypt(&vault__ks(v)->aes, iv, ct, (size_t)n, v->map.p);
    VAULT_FREE(ct);
    if (m < 0) { vault__msg(msg, msgcap, "'%s': authenticated but badly padded", v->path); return VAULT_ECORRUPT; }
    /* The map's layout is public to this code from here on (not constant-time). */
    VAULT_CT_DECLASSIFY(v->map.p, (size_t)m);
    m = vault__map_check(v->map.p, (size_t)m);
    if (m > (long)VAULT_MAP_MAX) m = VAULT_ECORRUPT;   /* the limit set() enforces, checked here too */
    if (m < 0) { vault__msg(msg, msgcap, "'%s': authenticated but the credential map is malformed", v->path); return VAULT_ECORRUPT; }
    v->map_len = (size_t)m;
    memcpy(v->file_tag, tag, 32);
    return 0;
}

static int vault__open(vault **out, const char *path, const char *password, const vault_options *opts) {
    vault *v;
    char *text = NULL;
    size_t len = 0;
    char msg[512];
    int rc;
    if (!out) return VAULT_EINVAL;
    *out = NULL;
    if (!path || !password) return VAULT_EINVAL;
    if ((rc = vault__new(&v, path, opts)) != 0) return rc;
    msg[0] = 0;
    rc = vault__read_file(path, &text, &len, msg, sizeof msg, &v->file_st);
    if (rc == 0) {
        rc = vault__load(v, text, len, password, msg, sizeof msg);
        VAULT_FREE(text);
    }
    if (rc == 0 && v->opt.rollback_state) {     /* after the tag: the counter is authentic */
        uint64_t seen = 0;
        rc = vault__state_read(v->opt.rollback_state, &seen);
        if (rc != 0) vault__msg(msg, sizeof msg, "cannot read the rollback state '%s': %s", v->opt.rollback_state, vault_strerror(rc));
        else if (v->counter < seen) {
            rc = VAULT_EROLLBACK;
            vault__msg(msg, sizeof msg, "'%s' has save counter %llu but counter %llu was already seen: an older copy was put back; refused",
                       path, (unsigned long long)v->counter, (unsigned long long)seen);
        } else if (v->counter > seen) {
            rc = vault__state_write(v->opt.rollback_state, v->counter);
            if (rc != 0) vault__msg(msg, sizeof msg, "cannot write the rollback state '%s': %s", v->opt.rollback_state, vault_strerror(rc));
        }
        v->version = VAULT_FORMAT_VERSION_COUNTER;   /* saves from now on carry the counter */
    }
    if (rc == 0) vault__msg(msg, sizeof msg, "opened '%s'", path);
    vault__audit(&v->opt, VAULT_AUDIT_OPEN, rc, path, v->iterations, msg[0] ? msg : NULL);
    vault__scrub();
    if (rc == 0) rc = vault__keep_password(v, password);
    if (rc != 0) { vault_close(v); return rc; }
    vault__check_locked(v, &v->keys);
    vault__check_locked(v, &v->map);
    *out = v;
    return 0;
}

VAULTDEF int vault_open_ex(vault **out, const char *path, const char *password, const vault_options *opts) {
    vault__errno_seen = 0;
    return vault__open_done(vault__open(out, path, password, opts));
}

VAULTDEF int vault_open(vault **out, const char *path, const char *password) {
    return vault_open_ex(out, path, password, NULL);
}

VAULTDEF int vault_open_with(vault **out, const char *path, vault_password_fn fn, void *user_data, const vault_options *opts) {
    vault__sec pw;
    int rc;
    if (!out) return VAULT_EINVAL;
    *out = NULL;
    vault__errno_seen = 0;
    if (!path || !fn) return vault__open_done(VAULT_EINVAL);
    if ((rc = vault__sec_alloc(&pw, VAULT_PASSWORD_MAX)) != 0) return vault__open_done(rc);
    rc = fn((char *)pw.p, VAULT_PASSWORD_MAX, user_data);
    if (rc > 0) rc = VAULT_EINVAL;                 /* 0 or a negative code, nothing else */
    if (rc == 0 && !memchr(pw.p, 0, VAULT_PASSWORD_MAX)) rc = VAULT_ETOOBIG;   /* not terminated in buf */
    if (rc == 0) rc = vault_open_ex(out, path, (const char *)pw.p, opts);
    else vault__open_done(rc);                     /* the callback's or the buffer's error */
    vault__sec_free(&pw);                          /* wiped, then unmapped */
    return rc;
}

/* Finds name: returns the entry offset, or 0 and *ins = where it would go. */
static size_t vault__find(const vault *v, const char *name, size_t *ins) {
    const uint8_t *p = v->map.p;
    uint32_t count = vault__be32(p), i;
    size_t off = 4;
    for (i = 0; i < count; i++) {
        uint32_t nl = vault__be32(p + off), vl = vault__be32(p + off + 4 + nl + 1);
        int c = strcmp((const char *)p + off + 4, name);
        if (c == 0) return off;
        if (c > 0) break;
        off += vault__entry_len(nl, vl);
    }
    *ins = off;
    return 0;
}

/* Rebuilds the map: drops the entry at `del` (if nonzero), inserts name=value at `ins` (if name). */
static int vault__rebuild(vault *v, size_t del, size_t ins, const char *name, const void *value, size_t vl) {
    vault__sec nm;
    const uint8_t *p = v->map.p;
    size_t dlen = 0, nl = name ? strlen(name) : 0;
    size_t add = name ? vault__entry_len(nl, vl) : 0, len, o;
    uint32_t count = vault__be32(p);
    int rc;
    if (del) {
        uint32_t dn = vault__be32(p + del);
        dlen = vault__entry_len(dn, vault__be32(p + del + 4 + dn + 1));
        count--;
    }
    if (name) count++;
    len = v->map_len - dlen + add;
    if (len > VAULT_MAP_MAX) return VAULT_ETOOBIG;
    if ((rc = vault__sec_alloc(&nm, (len + VAULT__MAP_ALIGN - 1) / VAULT__MAP_ALIGN * VAULT__MAP_ALIGN)) != 0) return rc;
    if (del) ins = del;
    memcpy(nm.p, p, ins);
    vault__put_be32(nm.p, count);
    o = ins;
    if (name) {
        vault__put_be32(nm.p + o, (uint32_t)nl); memcpy(nm.p + o + 4, name, nl + 1); o += 4 + nl + 1;
        vault__put_be32(nm.p + o, (uint32_t)vl); if (vl) memcpy(nm.p + o + 4, value, vl);
        nm.p[o + 4 + vl] = 0; o += 4 + vl + 1;
    }
    memcpy(nm.p + o, p + ins + dlen, v->map_len - ins - dlen);
    vault__check_locked(v, &nm);
    vault__sec_free(&v->map);
    v->map = nm;
    v->map_len = len;
    return 0;
}

/* A forked child's copy of a handle has zero pages for keys and map. */
#define VAULT__IN_OWNER(v) ((v)->pid == getpid())

VAULTDEF int vault_set_bytes(vault *v, const char *name, const void *value, size_t vl) {
    size_t off, ins = 0, nl;
    if (!v || !name || (!value && vl)) return VAULT_EINVAL;
    if (!VAULT__IN_OWNER(v)) return VAULT_EFORKED;
    nl = strlen(name);
    if (nl == 0) return VAULT_EINVAL;
    if (nl > VAULT_NAME_MAX || vl > VAULT_VALUE_MAX) return VAULT_ETOOBIG;
    off = vault__find(v, name, &ins);
    return vault__rebuild(v, off, ins, name, value, vl);
}

VAULTDEF int vault_set(vault *v, const char *name, const char *value) {
    if (!v || !value) return VAULT_EINVAL;
    return vault_set_bytes(v, name, value, strlen(value));
}

VAULTDEF int vault_remove(vault *v, const char *name) {
    size_t off, ins = 0;
    if (!v || !name) return VAULT_EINVAL;
    if (!VAULT__IN_OWNER(v)) return VAULT_EFORKED;
    off = vault__find(v, name, &ins);
    if (!off) return VAULT_ENOTFOUND;
    return vault__rebuild(v, off, 0, NULL, NULL, 0);
}

VAULTDEF int vault_get(vault *v, const char *name, char *buf, size_t cap) {
    size_t off, ins = 0;
    uint32_t nl, vl;
    if (!v || !name || (!buf && cap)) return VAULT_EINVAL;
    if (!VAULT__IN_OWNER(v)) return VAULT_EFORKED;
    off = vault__find(v, name, &ins);
    if (!off) return VAULT_ENOTFOUND;
    nl = vault__be32(v->map.p + off);
    vl = vault__be32(v->map.p + off + 4 + nl + 1);
    if (!buf) return (int)vl;
    if (cap < (size_t)vl + 1) return VAULT_ERANGE;
    memcpy(buf, v->map.p + off + 4 + nl + 1 + 4, (size_t)vl + 1);
    return (int)vl;
}

VAULTDEF int vault_count(const vault *v) {
    if (!v) return VAULT_EINVAL;
    return VAULT__IN_OWNER(v) ? (int)vault__be32(v->map.p) : VAULT_EFORKED;
}

VAULTDEF int vault_list(vault *v, int (*visit)(const char *name, void *ctx), void *ctx) {
    uint32_t count, i;
    size_t off = 4;
    if (!v || !visit) return VAULT_EINVAL;
    if (!VAULT__IN_OWNER(v)) return VAULT_EFORKED;
    count = vault__be32(v->map.p);
    for (i = 0; i < count; i++) {
        uint32_t nl = vault__be32(v->map.p + off), vl = vault__be32(v->map.p + off + 4 + nl + 1);
        if (visit((const char *)v->map.p + off + 4, ctx)) return (int)i + 1;
        off += vault__entry_len(nl, vl);
    }
    return (int)count;
}

/* Under the writers' lock: refuses (VAULT_ECONFLICT) when the file is no
 * longer the one this handle read or last wrote, so a stale handle never
 * undoes another writer's save (a rekey, an added credential). */
static int vault__save_as(vault *v, int event) {
    char *js = NULL;
    size_t jl = 0;
    char msg[256];
    uint8_t tag[32];
    uint64_t next;
    int lfd = -1, rc = vault__lock(v->path, v->opt.lock_timeout_ms, &lfd);
    if (rc == 0) {
        rc = vault__unchanged(v);
        rc = rc == 1 ? 0 : rc == 0 ? VAULT_ECONFLICT : rc;
    }
    next = v->version >= VAULT_FORMAT_VERSION_COUNTER ? v->counter + 1 : 0;
    if (rc == 0) rc = vault__serialize(v, next, &js, &jl, tag);
    if (rc == 0) rc = vault__write_atomic(v->path, js, jl, 0);
    if (rc == 0) {               /* ours until the lock is released */
        memcpy(v->file_tag, tag, 32);
        v->counter = next;
        if (lstat(v->path, &v->file_st) != 0) memset(&v->file_st, 0, sizeof v->file_st);
        if (v->opt.rollback_state && vault__state_write(v->opt.rollback_state, next) != 0) {
            char w[256];   /* the vault is saved; the next open still accepts it */
            vault__msg(w, sizeof w, "saved '%s' but could not record counter %llu in '%s': %s", v->path,
                       (unsigned long long)next, v->opt.rollback_state, strerror(errno));
            vault__audit(&v->opt, VAULT_AUDIT_WARNING, 0, v->path, 0, w);
        }
    }
    if (lfd >= 0) close(lfd);
    VAULT_FREE(js);
    if (rc == 0) vault__msg(msg, sizeof msg, "saved '%s' (%d credentials)", v->path, vault_count(v));
    else if (rc == VAULT_ECONFLICT)
        vault__msg(msg, sizeof msg, "refused to save '%s': another writer saved it after this handle read it", v->path);
    else vault__msg(msg, sizeof msg, "could not save '%s': %s (%s)", v->path,
                    vault_strerror(rc), vault__errno_said(rc) ? strerror(errno) : "-");
    vault__audit(&v->opt, event, rc, v->path, v->iterations, msg);
    vault__scrub();
    return rc;
}

VAULTDEF int vault_save(vault *v) {
    if (!v) return VAULT_EINVAL;
    if (!VAULT__IN_OWNER(v)) return VAULT_EFORKED;
    return vault__save_as(v, VAULT_AUDIT_SAVE);
}

/* New salt, keys derived from password at iter, saved now. On failure the
 * handle keeps its old keys, salt and password (the file has them too). */
static int vault__rederive_and_save(vault *v, const char *password, uint32_t iter, int event) {
    vault__sec oldkeys = v->keys, oldpw = v->pw;
    uint8_t oldsalt[VAULT__SALT_LEN];
    uint32_t olditer = v->iterations;
    int rc;
    memcpy(oldsalt, v->salt, sizeof oldsalt);
    if ((rc = vault__sec_alloc(&v->keys, sizeof(vault__keyset))) != 0) { v->keys = oldkeys; return rc; }
    memset(&v->pw, 0, sizeof v->pw);
    if ((rc = vault_random(v->salt, sizeof v->salt)) == 0 && (rc = vault__keep_password(v, password)) == 0) {
        v->iterations = iter;
        vault__derive(vault__ks(v), password, v->salt, v->iterations);
        rc = vault__save_as(v, event);
    }
    if (rc != 0) {               /* the file still has the old keys: so does the handle */
        vault__sec_free(&v->keys);
        vault__sec_free(&v->pw);
        v->keys = oldkeys; v->pw = oldpw; v->iterations = olditer;
        memcpy(v->salt, oldsalt, sizeof oldsalt);
        return rc;
    }
    vault__sec_free(&oldkeys);
    vault__sec_free(&oldpw);
    return 0;
}

VAULTDEF int vault_rekey(vault *v, const char *new_password) {
    if (!v || !new_password || !new_password[0]) return VAULT_EINVAL;
    if (!VAULT__IN_OWNER(v)) return VAULT_EFORKED;
    if (v->opt.iterations < v->opt.min_iterations || v->opt.iterations > v->opt.max_iterations) return VAULT_EKDFPARAM;
    return vault__rederive_and_save(v, new_password, v->opt.iterations, VAULT_AUDIT_REKEY);
}

VAULTDEF int vault_rotate(vault *v, const char *name, const char *new_value) {
    size_t off, ins = 0, vl;
    vault__sec old;
    size_t old_len;
    int rc;
    if (!v || !name || !new_value) return VAULT_EINVAL;
    if (!VAULT__IN_OWNER(v)) return VAULT_EFORKED;
    vl = strlen(new_value);
    if (vl > VAULT_VALUE_MAX) return VAULT_ETOOBIG;
    off = vault__find(v, name, &ins);
    if (!off) return VAULT_ENOTFOUND;
    /* Keep the old map until the new one is on disk, so failure changes nothing. */
    if ((rc = vault__sec_alloc(&old, v->map.cap)) != 0) return rc;
    memcpy(old.p, v->map.p, v->map.cap);
    old_len = v->map_len;
    rc = vault__rebuild(v, off, ins, name, new_value, vl);
    /* a fresh salt, so keys taken from this process before do not open the
     * file after (the password is the same: one PBKDF2 run) */
    if (rc == 0) rc = vault__rederive_and_save(v, (const char *)v->pw.p, v->iterations, VAULT_AUDIT_ROTATE);
    if (rc != 0) {
        vault__sec_free(&v->map);
        v->map = old; v->map_len = old_len;
        return rc;
    }
    vault__sec_free(&old);
    return 0;
}

/* The entry name of data key `name` into full (VAULT_NAME_MAX + 1 bytes). */
static int vault__data_key_name(const char *name, char *full) {
    size_t pl = sizeof VAULT_DATA_KEY_PREFIX - 1, nl;
    if (!name || !name[0]) return VAULT_EINVAL;
    nl = strlen(name);
    if (nl > VAULT_NAME_MAX - pl) return VAULT_ETOOBIG;
    memcpy(full, VAULT_DATA_KEY_PREFIX, pl);
    memcpy(full + pl, name, nl + 1);
    return 0;
}

VAULTDEF int vault_data_key(vault *v, const char *name, uint8_t key[32]) {
    char full[VAULT_NAME_MAX + 1];
    uint8_t buf[VAULT_DATA_KEY_LEN + 1];          /* vault_get adds a NUL */
    int rc;
    if (!key) return VAULT_EINVAL;
    vault_wipe(key, VAULT_DATA_KEY_LEN);
    if (!v) return VAULT_EINVAL;
    if ((rc = vault__data_key_name(name, full)) != 0) return rc;
    rc = vault_get(v, full, NULL, 0);             /* the length first: never copy a wrong-sized value */
    if (rc >= 0 && rc != (int)VAULT_DATA_KEY_LEN) return VAULT_ENOTKEY;
    if (rc >= 0) rc = vault_get(v, full, (char *)buf, sizeof buf);
    if (rc == (int)VAULT_DATA_KEY_LEN) { memcpy(key, buf, VAULT_DATA_KEY_LEN); rc = 0; }
    else if (rc >= 0) rc = VAULT_ENOTKEY;
    vault_wipe(buf, sizeof buf);
    return rc;
}

VAULTDEF int vault_data_key_create(vault *v, const char *name, uint8_t key[32]) {
    char full[VAULT_NAME_MAX + 1];
    uint8_t k[VAULT_DATA_KEY_LEN];
    int rc;
    if (key) vault_wipe(key, VAULT_DATA_KEY_LEN);
    if (!v) return VAULT_EINVAL;
    if (!VAULT__IN_OWNER(v)) return VAULT_EFORKED;
    if ((rc = vault__data_key_name(name, full)) != 0) return rc;
    rc = vault_get(v, full, NULL, 0);
    if (rc >= 0) return VAULT_EEXIST;
    if (rc != VAULT_ENOTFOUND) return rc;
    rc = vault_random(k, sizeof k);
    if (rc == 0) rc = vault_set_bytes(v, full, k, sizeof k);
    if (rc == 0 && (rc = vault_save(v)) != 0)
        (void)vault_remove(v, full);              /* the handle holds what the file holds again */
    if (rc == 0 && key) memcpy(key, k, sizeof k);
    vault_wipe(k, sizeof k);
    return rc;
}

#ifdef __cplusplus
}
#endif
#endif /* VAULT_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
vault.h is available under the MIT License.

Copyright (c) 2026 the picolog / pinnacle_persist / vault authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
*/

/* ======================================================================== */
/* C++: an RAII handle and errors as values (C++11 or later). The namespace
 * is vlt, not vault: in C++ a namespace cannot share its name with the C
 * type `vault` declared above. vlt::handle owns a vault and closes it
 * (wiping every secret) when it goes out of scope; calls that can fail
 * return a vlt::result<T>, no exceptions. get() fills a caller's buffer:
 * nothing here copies a secret into a std::string (unlocked heap memory).
 *
 *     auto v = vlt::handle::open("secure_config.json", password);
 *     if (!v) { std::fprintf(stderr, "%s\n", v.message()); return 1; }
 *     char key[256];
 *     auto n = v->get("binance.api_key", key);       // result<size_t>
 *     vault_wipe(key, sizeof key);
 */
#if defined(__cplusplus) && !defined(VAULT_CXX_DONE)
#define VAULT_CXX_DONE
#include <utility>
namespace vlt {
/* The value, or a negative VAULT_E* code. value() of an error is a
 * default-constructed T: check ok() (or the bool conversion) first. */
template <class T> class result {
public:
    result(T v) : v_(std::move(v)), err_(0) {}  /* NOLINT: implicit on purpose */
    static result failure(int err) { result r; r.err_ = err; return r; }
    bool ok() const { return err_ == 0; }
    explicit operator bool() const { return err_ == 0; }
    int error() const { return err_; }
    const char *message() const { return vault_strerror(err_); }
    T &value() & { return v_; }
    const T &value() const & { return v_; }
    T &&value() && { return std::move(v_); }
    T value_or(T alt) const { return err_ ? alt : v_; }
    T *operator->() { return &v_; }
    const T *operator->() const { return &v_; }
    T &operator*() & { return v_; }
private:
    result() : v_(), err_(0) {}
    T v_;
    int err_;
};
template <> class result<void> {
public:
    result() : err_(0) {}
    static result failure(int err) { result r; r.err_ = err; return r; }
    bool ok() const { return err_ == 0; }
    explicit operator bool() const { return err_ == 0; }
    int error() const { return err_; }
    const char *message() const { return vault_strerror(err_); }
private:
    int err_;
};
inline result<void> status(int rc) { return rc < 0 ? result<void>::failure(rc) : result<void>(); }

class handle {
public:
    handle() noexcept : v_(nullptr) {}
    handle(handle &&o) noexcept : v_(o.v_) { o.v_ = nullptr; }
    handle &operator=(handle &&o) noexcept { if (this != &o) { close(); v_ = o.v_; o.v_ = nullptr; } return *this; }
    handle(const handle &) = delete;
    handle &operator=(const handle &) = delete;
    ~handle() { close(); }
    static result<handle> open(const char *path, const char *password, const vault_options *opts = nullptr) {
        return wrap(vault_open_ex, path, password, opts);
    }
    static result<handle> create(const char *path, const char *password, const vault_options *opts = nullptr) {
        return wrap(vault_create_ex, path, password, opts);
    }
    result<void> set(const char *name, const char *value) { return status(vault_set(v_, name, value)); }
    /* The value's length; the value and a NUL are in buf. */
    result<size_t> get(const char *name, char *buf, size_t cap) {
        int n = vault_get(v_, name, buf, cap);
        return n < 0 ? result<size_t>::failure(n) : result<size_t>((size_t)n);
    }
    template <size_t N> result<size_t> get(const char *name, char (&buf)[N]) { return get(name, buf, N); }
    result<void> remove(const char *name) { return status(vault_remove(v_, name)); }
    result<void> save() { return status(vault_save(v_)); }
    result<void> rekey(const char *new_password) { return status(vault_rekey(v_, new_password)); }
    result<void> rotate(const char *name, const char *new_value) { return status(vault_rotate(v_, name, new_value)); }
    /* Data keys (datakey/NAME): the 32 bytes into key; create makes a random
     * one and saves the vault (VAULT_EEXIST if it exists). Wipe key after use. */
    result<void> data_key(const char *name, uint8_t (&key)[VAULT_DATA_KEY_LEN]) { return status(vault_data_key(v_, name, key)); }
    result<void> create_data_key(const char *name, uint8_t (&key)[VAULT_DATA_KEY_LEN]) {
        return status(vault_data_key_create(v_, name, key));
    }
    int count() const { return vault_count(v_); }
    void close() { if (v_) vault_close(v_); v_ = nullptr; }
    vault *get() const noexcept { return v_; }
    explicit operator bool() const noexcept { return v_ != nullptr; }
private:
    static result<handle> wrap(int (*fn)(vault **, const char *, const char *, const vault_options *),
                               const char *path, const char *password, const vault_options *opts) {
        vault *v = nullptr;
        int rc = fn(&v, path, password, opts);
        if (rc) return result<handle>::failure(rc);
        handle h; h.v_ = v;
        return result<handle>(std::move(h));
    }
    vault *v_;
};
} /* namespace vlt */
#endif /* __cplusplus */
