/* zg_core.c — clock and hash. */
#include "zg_core.h"

#include <time.h>

zg_msec_t zg_time_msec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (zg_msec_t)ts.tv_sec * 1000 + (zg_msec_t)ts.tv_nsec / 1000000;
}

uint32_t zg_hash32(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t h = 0 ^ (uint32_t)len, k;

    while (len >= 4) {
        k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
            (uint32_t)p[3] << 24;
        k *= 0x5bd1e995;
        k ^= k >> 24;
        k *= 0x5bd1e995;
        h *= 0x5bd1e995;
        h ^= k;
        p += 4;
        len -= 4;
    }
    switch (len) {
    case 3:
        h ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        h ^= p[0];
        h *= 0x5bd1e995;
    }
    h ^= h >> 13;
    h *= 0x5bd1e995;
    h ^= h >> 15;
    return h;
}
