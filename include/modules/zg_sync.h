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

#define ZG_SYNC_BATCH 512          /* keys per zone per interval */
#define ZG_SYNC_TIMEOUT 1000       /* ms: connect, or a batch without an answer */
#define ZG_SYNC_BACKOFF_MIN 100    /* ms: first reconnect delay, doubled up to MAX */
#define ZG_SYNC_BACKOFF_MAX 2000
#define ZG_SYNC_LEASE_INTERVALS 5  /* limit_conn: a lease lives 5 intervals, */
#define ZG_SYNC_LEASE_MIN 500      /* and at least 500 ms */

#define ZG_SYNC_MAX_NODES 16        /* sentinels, or cluster seed nodes, in one URL */

enum { ZG_SYNC_NONE = 0, ZG_SYNC_REDIS, ZG_SYNC_SENTINEL, ZG_SYNC_CLUSTER };

/* Where a zone syncs, from its sync=... sync_interval=... sync_password_file=...
 * parameters:
 *   redis://[USER:PASSWORD@]HOST:PORT[/DB]          one Redis (":PASSWORD@": no user)
 *   redis-sentinel://[..@]H1:P1,H2:P2,.../MASTER     the master Sentinel names
 *   redis-cluster://[..@]H1:P1,H2:P2,...             a Redis Cluster, seeded by these
 * Sentinel and cluster node names are resolved when the configuration is loaded.
 * The password may come from a file instead, read in the master at load. */
typedef struct {
    int mode;                /* ZG_SYNC_NONE = local only */
    char *url;               /* as written with the password masked (logs, metrics) */
    char host[256];          /* redis:// */
    int port;
    int db;
    zg_addr_t nodes[ZG_SYNC_MAX_NODES]; /* sentinels or cluster seeds */
    int nnodes;
    char *master;            /* sentinel: the master's name */
    char *user;              /* NULL = the default user */
    char *password;          /* NULL = no AUTH */
    zg_msec_t interval;      /* default 100 */
} zg_sync_conf_t;

#define ZG_SYNC_INTERVAL_DEFAULT 100

/* Shared counters of a sync zone (in the zone: /metrics may be any worker) */
typedef struct {
    uint64_t batches;    /* batches answered by Redis */
    uint64_t keys;       /* keys reconciled */
    uint64_t errors;     /* failed connects, failed or timed-out batches, error replies */
    uint64_t dropped;    /* dirty keys dropped unsynced while Redis was unreachable */
    uint64_t redirects;  /* cluster: batches answered MOVED, ASK or TRYAGAIN */
    uint64_t overflows;  /* intervals that filled the budget (more keys waited) */
    uint64_t last_ok;    /* ms since the epoch of the last batch Redis answered */
    int up;              /* ZG_SYNC_UNKNOWN / ZG_SYNC_UP / ZG_SYNC_DOWN */
    int owner;           /* pid of the worker that syncs the zone; 0 = none */
} zg_sync_stats_t;

#define ZG_SYNC_UNKNOWN 0
#define ZG_SYNC_UP 1
#define ZG_SYNC_DOWN 2

/* One parameter of a zone directive: sync=, sync_interval= or
 * sync_password_file=.  ZG_OK (taken), ZG_DECLINED (not a sync parameter) or
 * ZG_ERROR (reported with file:line and directive). */
int zg_sync_conf_param(zg_cf_t *cf, const zg_str_t *v, zg_sync_conf_t *sc);

/* After every parameter: checks they fit together (a password file needs sync=,
 * a user needs a password, one password only).  ZG_OK or ZG_ERROR (reported). */
int zg_sync_conf_done(zg_cf_t *cf, zg_sync_conf_t *sc);

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
