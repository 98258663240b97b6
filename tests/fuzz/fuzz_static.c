/* fuzz_static.c — libFuzzer: the client's headers static files parse: a Range value
 * against a body size taken from the input, and an If-None-Match / If-Match list
 * against an ETag.  A range found must lie inside the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zg_static.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t body, start = -1, end = -1;
    uint32_t b = 0;

    if (size < 4) {
        return 0;
    }
    memcpy(&b, data, 4);
    body = (int64_t)b * ((b & 1) ? 4096 : 1);
    const char *p = (const char *)data + 4;
    size_t n = size - 4;
    int rc = zg_static_range_parse(p, n, body, &start, &end);
    if (rc == ZG_OK && !(start >= 0 && start < end && end <= body)) {
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
