/* fuzz_redirect.c — libFuzzer: proxy_redirect on an upstream's Location and Refresh
 * bytes (untrusted).  Input: "VALUE\nFROM\nTO" (missing parts are empty).
 * Invariants, for the Location (offset 0) and the Refresh URL (after "url="):
 *   - zg_proxy_refresh_url is -1 or an offset within the value, just after "url=";
 *   - a rewrite that matches returns off + prefix + TO + the rest, and its bytes are
 *     value[0, off), the prefix, TO, value[off + |FROM|, ...);
 *   - one that does not match returns 0 and a too small output -1, writing nothing
 *     past cap. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "zg_proxy_shape.h"

static void fz_check(const zg_str_t *v, size_t off, const zg_str_t *from, const zg_str_t *to)
{
    static const zg_str_t prefix = {13, "http://h:8080"};
    size_t cap = v->len + prefix.len + to->len;
    char *out = malloc(cap + 1);
    if (out == NULL) {
        return;
    }
    long n = zg_proxy_rewrite(v, off, from, &prefix, to, out, cap);
    int match = off <= v->len && from->len <= v->len - off &&
                (from->len == 0 || memcmp(v->data + off, from->data, from->len) == 0);
    if (!match) {
        if (n != 0) {
            abort();
        }
    } else {
        size_t rest = v->len - off - from->len;
        if (n != (long)(off + prefix.len + to->len + rest) ||
            memcmp(out, v->data, off) != 0 ||
            memcmp(out + off, prefix.data, prefix.len) != 0 ||
            (to->len && memcmp(out + off + prefix.len, to->data, to->len) != 0) ||
            (rest && memcmp(out + off + prefix.len + to->len, v->data + off + from->len,
                            rest) != 0)) {
            abort();
        }
        if (n > 0 && zg_proxy_rewrite(v, off, from, &prefix, to, out, (size_t)n - 1) != -1) {
            abort();
        }
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    zg_str_t part[3] = {{0, ""}, {0, ""}, {0, ""}};
    for (int i = 0; i < 3; i++) {
        const char *nl = i < 2 ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        const char *e = nl ? nl : end;
        part[i].data = p;
        part[i].len = (size_t)(e - p);
        if (nl == NULL) {
            break;
        }
        p = nl + 1;
    }
    /* a copy of exactly the value's bytes, so ASan sees any read past it */
    char *v = malloc(part[0].len + 1);
    if (v == NULL) {
        return 0;
    }
    memcpy(v, part[0].data, part[0].len);
    zg_str_t value = {part[0].len, v};
    long off = zg_proxy_refresh_url(&value);
    if (off != -1 && (off < 4 || (size_t)off > value.len ||
                      strncasecmp(v + off - 4, "url=", 4) != 0)) {
        abort();
    }
    fz_check(&value, 0, &part[1], &part[2]);
    if (off >= 0) {
        fz_check(&value, (size_t)off, &part[1], &part[2]);
    }
    free(v);
    return 0;
}
