/* fuzz_gzip.c — libFuzzer: Accept-Encoding values through gzip's reader.
 * Invariant: a value without "gzip" (any case) never accepts gzip. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zg_gzip.h"

static int fz_has_gzip(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++) {
        if ((d[i] | 32) == 'g' && (d[i + 1] | 32) == 'z' && (d[i + 2] | 32) == 'i' &&
            (d[i + 3] | 32) == 'p') {
            return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1); /* exact size: ASan sees any over-read */

    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    int ok = zg_gzip_accepts(copy, size);
    if (ok && !fz_has_gzip(data, size)) {
        abort();
    }
    free(copy);
    return 0;
}
