/* fuzz_cache.c — libFuzzer: an upstream head's caching headers through
 * zg_cache_validity.  Input: lines "Name: value" separated by '\n'; the first byte
 * is the proxy_ignore_headers mask.  Invariants: the result is -1 or within
 * [0, 2^40]; a head with Set-Cookie (not ignored) is never cacheable. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "zg_cache.h"
#include "zg_proxy_ignore.h"
#include "zg_response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zg_resp_header_t h[16];
    zg_resp_t r;
    int cookie = 0;

    if (size < 1) {
        return 0;
    }
    int ignore = data[0] | (data[0] & 1 ? ZG_IGNORE_VARY : 0);
    char *copy = malloc(size - 1 ? size - 1 : 1); /* exact size: ASan sees any over-read */
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data + 1, size - 1);
    memset(&r, 0, sizeof(r));
    r.h = h;
    r.status = 200;
    char *p = copy, *end = copy + size - 1;
    while (p < end && r.n < 16) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon != NULL) {
            h[r.n].name.data = p;
            h[r.n].name.len = (size_t)(colon - p);
            h[r.n].value.data = colon + 1;
            h[r.n].value.len = (size_t)(le - colon - 1);
            if (h[r.n].name.len == 10 && strncasecmp(p, "set-cookie", 10) == 0) {
                cookie = 1;
            }
            r.n++;
        }
        p = le + 1;
    }
    int64_t v = zg_cache_validity(&r, ignore, 1700000000);
    if (v < -1 || v > ((int64_t)1 << 40) || (cookie && !(ignore & ZG_IGNORE_SET_COOKIE)
                                               && v != -1)) {
        abort();
    }
    free(copy);
    return 0;
}
