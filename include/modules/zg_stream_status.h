/* zg_stream_status.h — `status_zone NAME;` in stream servers: per server zone
 * counters (sessions being processed, connections, sessions by status class, bytes
 * received from and sent to clients), kept in one shared zone so that every worker
 * adds to the same figures; read by the API (/api/1/stream/server_zones) and
 * /metrics.  Several servers may name the same zone: their counts add up. */
#ifndef ZG_STREAM_STATUS_H
#define ZG_STREAM_STATUS_H

#include "zg_conf.h"
#include "zg_zone.h"

#define ZG_STREAM_STATUS_ZONE "stream_status" /* the shared zone's name */
#define ZG_STREAM_STATUS_MAX 64                /* status zones in one configuration */

typedef struct {
    const char *name;
    uint64_t processing;   /* sessions open now */
    uint64_t connections;  /* accepted */
    uint64_t sessions[3];  /* ended with $status 2xx, 4xx, 5xx */
    uint64_t total;        /* ended */
    uint64_t received;     /* bytes from clients */
    uint64_t sent;         /* bytes to clients */
} zg_stream_status_t;

extern zg_module_t zg_stream_status_module;
extern const zg_zone_kind_t zg_stream_status_zone_kind;

/* the number of status zones of conf (0 before its zone is mapped) */
int zg_stream_status_count(const zg_conf_t *conf);
/* copies the counters of status zone i (0 <= i < count); ZG_OK or ZG_ERROR */
int zg_stream_status_get(const zg_conf_t *conf, int i, zg_stream_status_t *out);
/* the index of the status zone NAME, -1 none */
int zg_stream_status_find(const zg_conf_t *conf, const char *name);

#endif
