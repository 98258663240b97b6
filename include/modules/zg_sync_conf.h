/* zg_sync_conf.h — where a zone syncs (the sync=... parameters of limit_req_zone and
 * limit_conn_zone) and the counters a synced zone keeps: what the limiter modules
 * need of cluster sync, without the sync module itself (zg_sync.h), which drives
 * them. */
#ifndef ZG_SYNC_CONF_H
#define ZG_SYNC_CONF_H

#include "zg_conf.h"

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

/* a consistent-enough copy of a zone's shared counters (each field read atomically;
 * workers update them while this runs) */
void zg_sync_stats_load(const zg_sync_stats_t *st, zg_sync_stats_t *out);

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

#endif
