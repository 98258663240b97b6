/* zg_limit_rate.h — bandwidth limits: limit_rate, limit_rate_after, $limit_rate,
 * proxy_limit_rate; X-Accel-Limit-Rate from an upstream. */
#ifndef ZG_LIMIT_RATE_H
#define ZG_LIMIT_RATE_H

#include "zg_conf.h"

typedef struct {
    zg_cv_t *rate;          /* limit_rate; NULL = unset */
    int64_t rate_const;     /* its value when it has no variables; -1 = it has */
    int64_t after;          /* limit_rate_after, bytes; ZG_UNSET_SIZE */
    int64_t proxy_rate;     /* proxy_limit_rate, bytes a second; 0 = none */
    int var;                /* $limit_rate when another module defines it (set, map,
                               geo, keyval): its index; else -1 */
    unsigned on : 1;        /* responses here may be limited */
} zg_limit_rate_loc_conf_t;

extern zg_module_t zg_limit_rate_module;

#define zg_limit_rate_loc_conf(confs)                                                  \
    ((zg_limit_rate_loc_conf_t *)zg_conf_module(confs, zg_limit_rate_module))

/* X-Accel-Limit-Rate from the upstream (a number of bytes a second, or "off"): it
 * limits this response instead of limit_rate and $limit_rate.  Call before the
 * response's head gets its extra headers (zg_request_extra_headers). */
void zg_limit_rate_accel(zg_request_t *r, const char *v, size_t len);

/* proxy_limit_rate of the request's location, bytes a second; 0 = none */
static inline int64_t zg_limit_rate_proxy(void **loc_conf)
{
    int64_t v = zg_limit_rate_loc_conf(loc_conf)->proxy_rate;
    return v > 0 ? v : 0;
}

#endif
