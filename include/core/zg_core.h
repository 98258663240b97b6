/* zg_core.h — return codes, time and small helpers every zonegate file uses. */
#ifndef ZG_CORE_H
#define ZG_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ZG_OK        0
#define ZG_ERROR    -1
#define ZG_AGAIN    -2
#define ZG_BUSY     -3
#define ZG_DONE     -4
#define ZG_DECLINED -5

#define ZG_VERSION "0.1.0"

/* entry that contains `ptr` (a pointer to its `member`) */
#define zg_data_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#define zg_min(a, b) ((a) < (b) ? (a) : (b))
#define zg_max(a, b) ((a) > (b) ? (a) : (b))
#define zg_align(n, a) (((n) + ((a) - 1)) & ~((uintptr_t)(a) - 1))
#define zg_nelems(a) (sizeof(a) / sizeof((a)[0]))

typedef uint64_t zg_msec_t;

/* a counted string; not NUL-terminated unless said so */
typedef struct {
    size_t len;
    const char *data;
} zg_str_t;

#define zg_string(s) { sizeof(s) - 1, (s) }

/* milliseconds of CLOCK_MONOTONIC: the same clock in every process */
zg_msec_t zg_time_msec(void);

/* 32-bit hash of bytes (murmur2, as nginx's ngx_murmur_hash2) */
uint32_t zg_hash32(const void *data, size_t len);

#endif
