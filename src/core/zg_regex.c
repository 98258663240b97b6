/* zg_regex.c — PCRE2 compile and match (see zg_regex.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_regex.h"

struct zg_regex_s {
    pcre2_code *code;
    int ncaps;
    int nnamed;
    int name_size;              /* bytes per entry of the name table */
    PCRE2_SPTR names;           /* 2 bytes group number, then the NUL-terminated name */
    char pattern[];
};

/* the match buffer every exec uses: one per process */
static pcre2_match_data *zg_regex_md;

zg_regex_t *zg_regex_compile(const char *pattern, size_t len, int flags, char *err,
                             size_t errlen)
{
    zg_regex_t *re;
    pcre2_code *code;
    uint32_t opts = 0, n;
    int rc;
    PCRE2_SIZE erroff;
    PCRE2_UCHAR msg[256];

    if (flags & ZG_REGEX_CASELESS) {
        opts |= PCRE2_CASELESS;
    }
    code = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &rc, &erroff, NULL);
    if (code == NULL) {
        if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0) {
            snprintf((char *)msg, sizeof(msg), "error %d", rc);
        }
        if (erroff >= len) {
            snprintf(err, errlen, "pcre2_compile() failed: %s in \"%.*s\"", (char *)msg,
                     (int)len, pattern);
        } else {
            snprintf(err, errlen, "pcre2_compile() failed: %s in \"%.*s\" at \"%.*s\"",
                     (char *)msg, (int)len, pattern, (int)(len - erroff), pattern + erroff);
        }
        return NULL;
    }
    /* JIT is an optimisation: without it (no executable memory) matching still works */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);

    re = calloc(1, sizeof(*re) + len + 1);
    if (re == NULL) {
        pcre2_code_free(code);
        snprintf(err, errlen, "out of memory compiling \"%.*s\"", (int)len, pattern);
        return NULL;
    }
    re->code = code;
    memcpy(re->pattern, pattern, len);
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &n);
    re->ncaps = (int)n;
    pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &n);
    re->nnamed = (int)n;
    if (n > 0) {
        pcre2_pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE, &n);
        re->name_size = (int)n;
        pcre2_pattern_info(code, PCRE2_INFO_NAMETABLE, &re->names);
    }
    return re;
}

void zg_regex_free(zg_regex_t *re)
{
    if (re != NULL) {
        pcre2_code_free(re->code);
        free(re);
    }
}

const char *zg_regex_pattern(const zg_regex_t *re)
{
    return re->pattern;
}

int zg_regex_ncaptures(const zg_regex_t *re)
{
    return re->ncaps;
}

int zg_regex_named(const zg_regex_t *re, int i, zg_str_t *name, int *group)
{
    PCRE2_SPTR e;

    if (i < 0 || i >= re->nnamed) {
        return ZG_DECLINED;
    }
    e = re->names + (size_t)i * (size_t)re->name_size;
    *group = (e[0] << 8) | e[1];
    name->data = (const char *)e + 2;
    name->len = strlen(name->data);
    return ZG_OK;
}

int zg_regex_exec(const zg_regex_t *re, const char *subject, size_t len,
                  zg_regex_caps_t *caps)
{
    PCRE2_SIZE *ov;
    int rc, i;

    if (zg_regex_md == NULL) {
        zg_regex_md = pcre2_match_data_create(ZG_REGEX_MAX_CAPS + 1, NULL);
        if (zg_regex_md == NULL) {
            return ZG_ERROR;
        }
    }
    rc = pcre2_match(re->code, (PCRE2_SPTR)subject, len, 0, 0, zg_regex_md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) {
        return ZG_DECLINED;
    }
    if (rc < 0) {
        return ZG_ERROR;
    }
    if (caps == NULL) {
        return ZG_OK;
    }
    /* rc = 0: more groups than the buffer holds; it is full */
    if (rc == 0 || rc > ZG_REGEX_MAX_CAPS + 1) {
        rc = ZG_REGEX_MAX_CAPS + 1;
    }
    ov = pcre2_get_ovector_pointer(zg_regex_md);
    for (i = 0; i < 2 * rc; i++) {
        caps->ovec[i] = ov[i];
    }
    caps->re = re;
    caps->subject = subject;
    caps->n = rc;
    return ZG_OK;
}

zg_str_t zg_regex_cap(const zg_regex_caps_t *caps, int i)
{
    zg_str_t s = { 0, NULL };

    if (caps == NULL || i < 0 || i >= caps->n || caps->ovec[2 * i] == PCRE2_UNSET) {
        return s;
    }
    s.data = caps->subject + caps->ovec[2 * i];
    s.len = caps->ovec[2 * i + 1] - caps->ovec[2 * i];
    return s;
}

zg_str_t zg_regex_cap_named(const zg_regex_caps_t *caps, const char *name, size_t len)
{
    zg_str_t s = { 0, NULL }, n;
    int i, group;

    if (caps == NULL || caps->re == NULL) {
        return s;
    }
    for (i = 0; zg_regex_named(caps->re, i, &n, &group) == ZG_OK; i++) {
        if (n.len == len && memcmp(n.data, name, len) == 0) {
            /* a name used twice ((?J)): the first group that took part */
            s = zg_regex_cap(caps, group);
            if (s.data != NULL) {
                return s;
            }
        }
    }
    return s;
}

void zg_regex_caps_clear(zg_regex_caps_t *caps)
{
    caps->re = NULL;
    caps->subject = NULL;
    caps->n = 0;
}
