/* zg_buf.c — the growable byte buffer. */
#include "zg_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* after a failure no room is left, so that every later append comes back here */
static int zg_buf_fail(zg_buf_t *b)
{
    b->failed = 1;
    b->cap = b->len;
    return ZG_ERROR;
}

int zg_buf_reserve(zg_buf_t *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->failed) {
        return ZG_ERROR;
    }
    if (b->len + n < b->cap) {
        return ZG_OK;
    }
    if (n > SIZE_MAX / 2 - b->len) {
        return zg_buf_fail(b);
    }
    cap = b->cap ? b->cap : 256;
    while (cap <= b->len + n) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        return zg_buf_fail(b);
    }
    b->data = p;
    b->cap = cap;
    return ZG_OK;
}

int zg_buf_resize(zg_buf_t *b, size_t cap)
{
    char *p;

    if (cap < b->len) {
        return ZG_ERROR;
    }
    p = realloc(b->data, cap > 0 ? cap : 1);
    if (p == NULL) {
        return ZG_ERROR;
    }
    b->data = p;
    b->cap = cap;
    return ZG_OK;
}

int zg_buf_str(zg_buf_t *b, const char *s)
{
    return zg_buf_append(b, s, strlen(s));
}

int zg_buf_num(zg_buf_t *b, uint64_t n)
{
    if (zg_buf_reserve(b, 20) != ZG_OK) {
        return ZG_ERROR;
    }
    b->len += zg_fmt_u64(b->data + b->len, n);
    return ZG_OK;
}

int zg_buf_printf(zg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || zg_buf_reserve(b, (size_t)n) != ZG_OK) {
        return ZG_ERROR;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return ZG_OK;
}

void zg_buf_consume(zg_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

char *zg_buf_cstr(zg_buf_t *b)
{
    if (zg_buf_reserve(b, 0) != ZG_OK) {
        return NULL;
    }
    b->data[b->len] = '\0';
    return b->data;
}

char *zg_buf_detach(zg_buf_t *b, size_t *len)
{
    char *p = zg_buf_cstr(b);

    if (p == NULL) {
        free(b->data);
    }
    if (len != NULL) {
        *len = p != NULL ? b->len : 0;
    }
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
    return p;
}

void zg_buf_free(zg_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
