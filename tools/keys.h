/* SPDX-License-Identifier: MIT */
/* keys.h - the data keys a tool is given (plg_dump, pp_inspect): --key-file F
 * (32 raw bytes or 64 hex digits; repeated after a key rotation) or
 * --vault FILE --key-name NAME (the key vaultctl datakey create NAME made,
 * the vault password from password.h's sources). Include after vault.h,
 * picolog.h (PLG_MAX_KEYS) and password.h; set tk_prog first. Not installed. */
#ifndef PICOLOG_TOOL_KEYS_H
#define PICOLOG_TOOL_KEYS_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *tk_prog = "tool";                 /* the tool's name, for its messages */
static uint8_t tk_buf[PLG_MAX_KEYS][32];
static const uint8_t *tk_keys[PLG_MAX_KEYS];         /* tk_n of them: tk_keys[0] is the current one */
static size_t tk_n;

static int tk_hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* 32 raw bytes, or 64 hex digits and optional trailing whitespace, into key.
 * opt names the option in the message. 0, or -1 with the reason on stderr. */
static int tk_load_into(const char *opt, const char *path, uint8_t *key) {
    uint8_t buf[200];
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "%s: %s %s: %s\n", tk_prog, opt, path, strerror(errno)); return -1; }
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    int ok = 0;
    if (n == 32) { memcpy(key, buf, 32); ok = 1; }
    else {
        while (n > 64 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t')) n--;
        ok = n == 64;
        for (size_t i = 0; ok && i < 32; i++) {
            int hi = tk_hexval(buf[2 * i]), lo = tk_hexval(buf[2 * i + 1]);
            if (hi < 0 || lo < 0) ok = 0;
            else key[i] = (uint8_t)(hi << 4 | lo);
        }
    }
    vault_wipe(buf, sizeof buf);
    if (!ok) { fprintf(stderr, "%s: %s %s: not 32 raw bytes nor 64 hex digits\n", tk_prog, opt, path); return -1; }
    return 0;
}

/* --key-file F: one more key. */
static int tk_load_file(const char *path) {
    if (tk_n == PLG_MAX_KEYS) { fprintf(stderr, "%s: more than %d keys\n", tk_prog, PLG_MAX_KEYS); return -1; }
    if (tk_load_into("--key-file", path, tk_buf[tk_n])) return -1;
    tk_keys[tk_n] = tk_buf[tk_n];
    tk_n++;
    return 0;
}

/* --vault FILE --key-name NAME: the key from the vault, password from src. */
static int tk_pw_unread;
static int tk_pw(char *buf, size_t cap, void *src) {
    if (get_password((const pw_source *)src, "Vault password: ", buf, cap) >= 0) return 0;
    tk_pw_unread = 1;                    /* get_password said why */
    return VAULT_EINVAL;
}
static int tk_load_vault(const char *file, const char *name, pw_source *src) {
    vault_options o;
    vault *v;
    memset(&o, 0, sizeof o);
    pw_prog = tk_prog;
    pw_source_from_env(src);
    int rc = vault_open_with(&v, file, tk_pw, src, &o);
    if (rc < 0) {
        int e = vault_open_errno();
        if (!tk_pw_unread)
            fprintf(stderr, "%s: --vault %s: %s%s%s\n", tk_prog, file, vault_strerror(rc), e ? ": " : "", e ? strerror(e) : "");
        return -1;
    }
    rc = vault_data_key(v, name, tk_buf[0]);
    vault_close(v);
    if (rc == VAULT_ENOTFOUND)
        fprintf(stderr, "%s: --vault %s: no data key '%s' (vaultctl datakey create %s)\n", tk_prog, file, name, name);
    else if (rc < 0)
        fprintf(stderr, "%s: --vault %s: data key '%s': %s\n", tk_prog, file, name, vault_strerror(rc));
    if (rc < 0) return -1;
    tk_keys[0] = tk_buf[0];
    tk_n = 1;
    return 0;
}

static void tk_wipe(void) { vault_wipe(tk_buf, sizeof tk_buf); }

#endif
