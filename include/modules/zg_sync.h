/* zg_sync.h — cluster-wide limit_req and limit_conn: reconciles the zones that have
 * sync=URL (one Redis, Sentinel or Cluster; AUTH) with Redis, asynchronously, from
 * one worker per host.
 *
 * Decisions stay local (zg_limit_req_check on shared memory).  Every
 * sync_interval the sync worker takes up to ZG_SYNC_BATCH dirty keys of each
 * synced zone, sends them in one EVALSHA (a fleet-wide leaky bucket per key in
 * Redis, draining at the zone's rate on Redis' clock), and sets each key's local
 * bucket to the fleet's excess plus what this host admitted since.  Redis down,
 * slow or restarted: local decisions go on (per-host limits), the outage and the
 * recovery are logged once each, and the link reconnects with backoff.  A
 * limit_conn zone pushes each key's count as a lease with a TTL and learns the
 * other hosts' live leases (zg_limit_conn.h). */
#ifndef ZG_SYNC_H
#define ZG_SYNC_H

#include <uv.h>

#include "zg_conf.h"
#include "zg_sync_conf.h"

#define ZG_SYNC_BATCH 512          /* keys per zone per interval */
#define ZG_SYNC_TIMEOUT 1000       /* ms: connect, or a batch without an answer */
#define ZG_SYNC_BACKOFF_MIN 100    /* ms: first reconnect delay, doubled up to MAX */
#define ZG_SYNC_BACKOFF_MAX 2000
#define ZG_SYNC_LEASE_INTERVALS 5  /* limit_conn: a lease lives 5 intervals, */
#define ZG_SYNC_LEASE_MIN 500      /* and at least 500 ms */

/* CRC16 slot (0..16383) of a key, hash tag rules of Redis Cluster */
unsigned zg_sync_key_slot(const char *key, size_t len);

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
