/* zg_admin.h — /slab_stat and /metrics renderers, and the process-wide counters
 * that every worker bumps in shared memory. */
#ifndef ZG_ADMIN_H
#define ZG_ADMIN_H

#include "zg_conf.h"

/* One shared page mapped by the master before fork; bumped with __atomic builtins. */
typedef struct {
    uint64_t worker_restarts;   /* workers respawned after dying */
    uint64_t reloads;           /* successful reloads */
    uint64_t reload_failures;
    uint64_t connections;       /* accepted, all workers */
    uint64_t requests;          /* finalized requests, all workers */
    uint64_t responses[6];      /* by status class: [1]=1xx ... [5]=5xx, [0]=other */
    uint64_t accept_errors;
} zg_proc_stats_sh_t;

extern zg_proc_stats_sh_t *zg_proc_stats; /* NULL until mapped */

/* maps the shared counters page (master, before fork; a second call keeps the
 * page, so counters survive reloads); ZG_OK / ZG_ERROR */
int zg_proc_stats_init(void);

/* Renders every mapped zone of conf (limit_req, limit_conn, upstream) in the
 * Tengine slab_stat layout (zg_slab_stat_render), blocks back to back, zones in
 * declaration order.  Returns a malloc'd NUL-terminated buffer (empty if no
 * zone) and its length in *len, or NULL when out of memory. */
char *zg_admin_slab_stat(const zg_conf_t *conf, size_t *len);

/* Renders Prometheus text exposition format 0.0.4: every family once, with
 * # HELP and # TYPE before its samples, counters named *_total, label values
 * escaped.  Counters are read when called (zone counters under the zone lock).
 * Families: zonegate_limit_req_{requests_total{zone,result},entries{zone},
 * evictions_total{zone}}, zonegate_limit_conn_{requests_total{zone,result},
 * current{zone},entries{zone}}, zonegate_zone_bytes{zone,kind,type=total|used|free},
 * zonegate_zone_alloc_failures_total{zone}, zonegate_slab_slots{zone,slot,type},
 * zonegate_slab_{alloc_failures,requests}_total{zone,slot},
 * zonegate_upstream_peer_{requests_total,failures_total,active}{upstream,peer},
 * zonegate_upstream_peer_state{upstream,peer,state=up|down|unavailable|backup}
 * (four series per peer, the current state's is 1), and the process counters
 * zonegate_{worker_restarts,reloads,reload_failures,connections,accept_errors,
 * requests}_total, zonegate_responses_total{code=1xx..5xx|other}.
 * Returns a malloc'd NUL-terminated buffer and its length, or NULL. */
char *zg_admin_metrics(const zg_conf_t *conf, size_t *len);

/* the Content-Type of zg_admin_metrics' text */
#define ZG_ADMIN_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
