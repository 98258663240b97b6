/* fuzz_static.c — libFuzzer: the client's headers static files parse: a Range value
 * against a body size and max_ranges taken from the input (each range found
 * must lie inside the body), and an If-None-Match / If-Match list
 * against an ETag.  A range found must lie inside the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zg_static.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t body;
    zg_static_range_t rs[4];
    int nr = 0;
    uint32_t b = 0;

    if (size < 4) {
        return 0;
    }
    memcpy(&b, data, 4);
    body = (int64_t)b * ((b & 1) ? 4096 : 1);
    const char *p = (const char *)data + 4;
    size_t n = size - 4;
    int rc = zg_static_range_parse(p, n, body, (b & 2) ? INT32_MAX : (int)(b % 5) + 1, rs, 4,
                                   &nr);
    for (int i = 0; rc == ZG_OK && i < nr && i < 4; i++) {
        if (!(rs[i].start >= 0 && rs[i].start < rs[i].end && rs[i].end <= body)) {
            abort();
        }
    }
    if (rc == ZG_OK && nr < 1) {
        abort();
    }
    if (rc != ZG_OK && rc != ZG_DECLINED && rc != 416) {
        abort();
    }
    zg_str_t list = { n, p };
    (void)zg_static_etag_match(&list, "\"6553f100-d\"", 12, 1);
    (void)zg_static_etag_match(&list, "\"6553f100-d\"", 12, 0);
    (void)zg_static_etag_match(&list, "", 0, 1);
    return 0;
}
