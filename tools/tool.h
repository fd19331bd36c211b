/* SPDX-License-Identifier: MIT */
/* tool.h - what the command-line tools share: the exit-code convention,
 * strict number parsing and JSON string output. Not installed. */
#ifndef PICOLOG_TOOL_H
#define PICOLOG_TOOL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One convention for every tool (documented in each --help and man page). */
enum { TOOL_OK = 0, TOOL_DAMAGE = 1, TOOL_USAGE_OR_IO = 2 };

#define TOOL_EXIT_HELP \
    "Exit status:\n" \
    "  0  ok: nothing damaged (a torn tail after a crash is normal, not damage)\n" \
    "  1  damage found: corruption that recovery refuses (fail closed)\n" \
    "  2  usage error, or an I/O or permission error that kept the check from running\n"

/* A decimal number in [min, max], digits only (no sign, no spaces, no
 * trailing text). 0 on success, -1 otherwise. */
static inline int tool_parse_u64(const char *s, unsigned long long min, unsigned long long max, unsigned long long *out) {
    if (!s || *s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* s as a JSON string, quotes included. Control and non-ASCII bytes are
 * escaped as \u00XX so every line stays valid JSON whatever a path holds. */
static inline void tool_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

#endif
