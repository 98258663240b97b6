/* fuzz_proxy_protocol.c — libFuzzer: any bytes through zg_pp_parse.  Invariants:
 *   - it returns ZG_AGAIN, ZG_ERROR or a length within the input (never past it,
 *     never more than ZG_PP_MAX),
 *   - a header found in a prefix is found, the same, in the whole input (more bytes
 *     behind a header never change it), and ZG_ERROR on a prefix stays ZG_ERROR,
 *   - addresses it reports (both of one family) are written back by zg_pp_write as a
 *     header that parses to the same addresses and ports. */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zg_proxy_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zg_pp_t a, b, c;
    unsigned char out[128];
    int n, m;
    size_t half = size / 2;
    unsigned char *copy = malloc(size ? size : 1);

    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size); /* exactly size bytes: ASan catches any read past */
    n = zg_pp_parse(copy, size, &a);
    if (n != ZG_AGAIN && n != ZG_ERROR && (n <= 0 || (size_t)n > size || n > ZG_PP_MAX)) {
        abort();
    }
    m = zg_pp_parse(copy, half, &b);
    if (m > 0 && (n != m || strcmp(a.src_text, b.src_text) != 0)) {
        abort();
    }
    if (m == ZG_ERROR && n != ZG_ERROR) {
        abort();
    }
    if (n > 0 && !a.local && (a.src.ss_family == AF_INET || a.src.ss_family == AF_INET6)
        && a.dst.ss_family == a.src.ss_family) {
        size_t alen = a.src.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                 : sizeof(struct sockaddr_in6);
        for (int v = 1; v <= 2; v++) {
            size_t w = zg_pp_write(v, (struct sockaddr *)&a.src, (struct sockaddr *)&a.dst, out,
                                   sizeof(out));
            if (w == 0 || zg_pp_parse(out, w, &c) != (int)w || c.local
                || memcmp(&c.src, &a.src, alen) != 0 || memcmp(&c.dst, &a.dst, alen) != 0) {
                abort();
            }
        }
    }
    free(copy);
    return 0;
}
