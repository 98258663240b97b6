/* zg_proxy_ignore.h — proxy_ignore_headers: the upstream response headers whose
 * processing is disabled for a location, as a bitmask any module may read
 * (zg_proxy_ignore(loc_conf) & ZG_IGNORE_*). */
#ifndef ZG_PROXY_IGNORE_H
#define ZG_PROXY_IGNORE_H

#define ZG_IGNORE_X_ACCEL_REDIRECT 0x0001
#define ZG_IGNORE_X_ACCEL_EXPIRES 0x0002
#define ZG_IGNORE_X_ACCEL_LIMIT_RATE 0x0004
#define ZG_IGNORE_X_ACCEL_BUFFERING 0x0008
#define ZG_IGNORE_X_ACCEL_CHARSET 0x0010
#define ZG_IGNORE_EXPIRES 0x0020
#define ZG_IGNORE_CACHE_CONTROL 0x0040
#define ZG_IGNORE_SET_COOKIE 0x0080
#define ZG_IGNORE_VARY 0x0100

/* the proxy_ignore_headers mask of a location (its merged confs); 0 = none */
int zg_proxy_ignore(void **loc_conf);

#endif
