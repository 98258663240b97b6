/* zg_admin.h — the admin module: /slab_stat and /metrics, and the helpers other
 * modules render their /metrics families with. */
#ifndef ZG_ADMIN_H
#define ZG_ADMIN_H

#include "zg_buf.h"
#include "zg_conf.h"

extern zg_module_t zg_admin_module;

/* Renders every mapped zone of conf in the Tengine slab_stat layout
 * (zg_slab_stat_render), blocks back to back, zones in declaration order.
 * Returns a malloc'd NUL-terminated buffer (empty if no zone) and its length in
 * *len, or NULL when out of memory. */
char *zg_admin_slab_stat(const zg_conf_t *conf, size_t *len);

/* Renders Prometheus text exposition format 0.0.4: every family once, with
 * # HELP and # TYPE before its samples, counters named *_total, label values
 * escaped.  Counters are read when called (zone counters under the zone lock).
 * The modules' families first (zonegate_limit_req_*, zonegate_limit_conn_*,
 * zonegate_upstream_peer_*, zonegate_sync_*: see each module), then
 * zonegate_zone_bytes{zone,kind,type=total|used|free},
 * zonegate_zone_alloc_failures_total{zone}, zonegate_slab_slots{zone,slot,type},
 * zonegate_slab_{alloc_failures,requests}_total{zone,slot}, and the process
 * counters zonegate_{worker_restarts,reloads,reload_failures,connections,
 * accept_errors,requests}_total, zonegate_responses_total{code=1xx..5xx|other}.
 * Returns a malloc'd NUL-terminated buffer and its length, or NULL. */
char *zg_admin_metrics(const zg_conf_t *conf, size_t *len);

/* the Content-Type of zg_admin_metrics' text */
#define ZG_ADMIN_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* for a module's metrics hook: "# HELP" and "# TYPE" lines of a family */
void zg_admin_family(zg_buf_t *b, const char *name, const char *type, const char *help);
/* name{k1="v1",k2="v2"} value — the labels as (key, value) pairs ending with NULL */
void zg_admin_sample(zg_buf_t *b, const char *name, uint64_t value, ...);
/* mapped zones of a kind (NULL: of every kind) */
int zg_admin_zones_of(const zg_conf_t *conf, const zg_zone_kind_t *kind);

#endif
