/* zg_regex.h — regular expressions: PCRE2 (8-bit, JIT when available), as nginx's
 * ngx_regex.  Compiled once at config time, matched per request.
 *
 * A match fills a zg_regex_caps_t: the captures $0..$N of the last successful match
 * (nginx keeps one such set per request: the last regex that matched — location,
 * server_name, if, rewrite, map — provides $1..$9 and the named captures).  The
 * captures point into the subject, which the caller keeps alive while they are read.
 *
 *   char err[256];
 *   zg_regex_t *re = zg_regex_compile("^/u/(?<id>\\d+)$", len, ZG_REGEX_CASELESS,
 *                                     err, sizeof(err));
 *   if (zg_regex_exec(re, uri, ulen, &r->caps) == ZG_OK) {
 *       zg_str_t one = zg_regex_cap(&r->caps, 1);         // "$1"
 *       zg_str_t id = zg_regex_cap_named(&r->caps, "id", 2);
 *   }
 *   zg_regex_free(re);
 *
 * Not thread-safe (one match buffer per process): zonegate's workers are processes. */
#ifndef ZG_REGEX_H
#define ZG_REGEX_H

#include "zg_core.h"

#define ZG_REGEX_CASELESS 0x01 /* ~* locations, if ($x ~* ...), map ~* entries */

/* capture groups kept per match, beyond $0; groups past this are not readable */
#define ZG_REGEX_MAX_CAPS 31

typedef struct zg_regex_s zg_regex_t;

typedef struct {
    const zg_regex_t *re;     /* the regex that matched; NULL: no captures */
    const char *subject;      /* what it matched (not copied) */
    int n;                    /* groups set, $0 included (0 = none) */
    size_t ovec[2 * (ZG_REGEX_MAX_CAPS + 1)]; /* start, end of $0, $1, ...; unset = -1 */
} zg_regex_caps_t;

/* Compiles pattern (len bytes, need not be NUL-terminated) with ZG_REGEX_* flags.
 * NULL on error, with err set as nginx words it:
 *   pcre2_compile() failed: missing closing parenthesis in "^(foo"
 *   pcre2_compile() failed: quantifier does not follow a repeatable item in "*a" at "*a"
 * The result is malloc'd: free with zg_regex_free (NULL is fine). */
zg_regex_t *zg_regex_compile(const char *pattern, size_t len, int flags, char *err,
                             size_t errlen);
void zg_regex_free(zg_regex_t *re);

/* the pattern as written (NUL-terminated) */
const char *zg_regex_pattern(const zg_regex_t *re);
/* the number of capture groups in the pattern ($1..$N) */
int zg_regex_ncaptures(const zg_regex_t *re);
/* the i-th (from 0) named group: its name (NUL-terminated, in re) and its number;
 * ZG_DECLINED past the last */
int zg_regex_named(const zg_regex_t *re, int i, zg_str_t *name, int *group);

/* Matches subject (len bytes).  ZG_OK on a match: caps (if not NULL) then hold
 * the captures of this match; ZG_DECLINED: no match, caps unchanged; ZG_ERROR: the
 * match failed (match limit, no memory), caps unchanged — treat as no match and log. */
int zg_regex_exec(const zg_regex_t *re, const char *subject, size_t len,
                  zg_regex_caps_t *caps);

/* $i of caps: empty (data NULL) when group i did not take part or is out of range */
zg_str_t zg_regex_cap(const zg_regex_caps_t *caps, int i);
/* the capture named name (len bytes) of caps; empty when no such name */
zg_str_t zg_regex_cap_named(const zg_regex_caps_t *caps, const char *name, size_t len);
/* forgets the captures */
void zg_regex_caps_clear(zg_regex_caps_t *caps);

#endif
