/* zg_buf.h — one growable byte buffer (in the spirit of Redis's sds, but a plain
 * struct): appends grow it by doubling; after a failed allocation `failed` is set
 * and every later append is a no-op (until zg_buf_detach or zg_buf_free, or the
 * owner clears `failed`), so a caller checks once at the end. */
#ifndef ZG_BUF_H
#define ZG_BUF_H

#include <string.h>

#include "zg_core.h"

typedef struct {
    char *data;          /* NULL until the first append; NUL-terminated after zg_buf_cstr */
    size_t len, cap;
    int failed;          /* an allocation failed: the content is incomplete */
} zg_buf_t;

#define ZG_BUF_INIT { NULL, 0, 0, 0 }

/* room for n more bytes (and a NUL): ZG_OK, or ZG_ERROR (and failed = 1) */
int zg_buf_reserve(zg_buf_t *b, size_t n);
/* capacity of exactly cap bytes (at least len; a read buffer that fills to cap):
 * ZG_OK, or ZG_ERROR with the buffer unchanged */
int zg_buf_resize(zg_buf_t *b, size_t cap);

static inline int zg_buf_append(zg_buf_t *b, const void *p, size_t n)
{
    if (b->len + n >= b->cap && zg_buf_reserve(b, n) != ZG_OK) {
        return ZG_ERROR;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return ZG_OK;
}

int zg_buf_str(zg_buf_t *b, const char *s);
int zg_buf_num(zg_buf_t *b, uint64_t n);
int zg_buf_printf(zg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* drops the first n bytes */
void zg_buf_consume(zg_buf_t *b, size_t n);
/* the text NUL-terminated (NULL if an allocation failed) */
char *zg_buf_cstr(zg_buf_t *b);
/* hands the memory to the caller (NUL-terminated; NULL after a failure, then freed)
 * and leaves b empty */
char *zg_buf_detach(zg_buf_t *b, size_t *len);
void zg_buf_free(zg_buf_t *b);

/* writes n in decimal at p (at least 20 bytes of room); returns the length */
static inline size_t zg_fmt_u64(char *p, uint64_t n)
{
    char tmp[20];
    size_t k = 0, i;

    do {
        tmp[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    for (i = 0; i < k; i++) {
        p[i] = tmp[k - 1 - i];
    }
    return k;
}

#endif
