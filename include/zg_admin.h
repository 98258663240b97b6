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

/* maps the shared counters page (master, before fork); ZG_OK / ZG_ERROR */
int zg_proc_stats_init(void);

/* Renders every zone of conf (limit_req, limit_conn, upstream) in the Tengine
 * slab_stat layout, zones in declaration order.  Returns a malloc'd buffer and its
 * length in *len, or NULL. */
char *zg_admin_slab_stat(const zg_conf_t *conf, size_t *len);

/* Renders Prometheus text exposition format 0.0.4 (see README for the families).
 * Returns a malloc'd buffer and its length, or NULL. */
char *zg_admin_metrics(const zg_conf_t *conf, size_t *len);

#endif
