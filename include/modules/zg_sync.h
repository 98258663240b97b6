/* zg_sync.h — cluster-wide limit_req: reconciles the zones that have
 * sync=redis://HOST:PORT[/DB] with Redis, asynchronously, from one worker per host.
 *
 * Decisions stay local (zg_limit_req_check on shared memory).  Every
 * sync_interval the sync worker takes up to ZG_SYNC_BATCH dirty keys of each
 * synced zone, sends them in one EVALSHA (a fleet-wide leaky bucket per key in
 * Redis, draining at the zone's rate on Redis' clock), and sets each key's local
 * bucket to the fleet's excess plus what this host admitted since.  Redis down,
 * slow or restarted: local decisions go on (per-host limits), the outage and the
 * recovery are logged once each, and the link reconnects with backoff. */
#ifndef ZG_SYNC_H
#define ZG_SYNC_H

#include <uv.h>

#include "zg_conf.h"

#define ZG_SYNC_BATCH 512          /* keys per zone per interval */
#define ZG_SYNC_TIMEOUT 1000       /* ms: connect, or a batch without an answer */
#define ZG_SYNC_BACKOFF_MIN 100    /* ms: first reconnect delay, doubled up to MAX */
#define ZG_SYNC_BACKOFF_MAX 2000

/* 1 in the worker that runs the sync (the lowest slot of the current
 * generation; set by the master before it forks); default 1. */
extern zg_module_t zg_sync_module;

/* Starts syncing every zone of conf that has sync, on loop: one Redis
 * connection per distinct URL.  Never blocks (names are resolved with
 * uv_getaddrinfo).  Returns ZG_OK, ZG_DECLINED when no zone has sync, or
 * ZG_ERROR (no memory; logged). */
int zg_sync_start(uv_loop_t *loop, zg_conf_t *conf);

/* Closes the Redis links and the timer without waiting for Redis; batches in
 * flight are dropped.  The loop must run once more to finish the closes. */
void zg_sync_stop(void);

#endif
