/* zg_upstream.h — peers of an upstream: smooth weighted round-robin (nginx's
 * current_weight/effective_weight), max_fails/fail_timeout, max_conns, backup, down.
 * With `zone` the state lives in shared memory and all workers share one sequence. */
#ifndef ZG_UPSTREAM_H
#define ZG_UPSTREAM_H

#include "zg_conf.h"
#include "zg_zone.h"

/* zone->init for ZG_ZONE_UPSTREAM zones (zone->conf is the zg_upstream_conf_t) */
int zg_upstream_zone_init(zg_zone_t *zone, void *old_data);

/* per-process state for upstreams without a zone; call in each worker after fork
 * (and in the master for -t); ZG_OK / ZG_ERROR */
int zg_upstream_init(zg_upstream_conf_t *u);

typedef struct {
    uint64_t tried[ZG_MAX_PEERS / 64]; /* peers already tried by this request */
    int tries;                         /* peers tried so far */
    int peer;                          /* index of the current pick, -1 none */
    const zg_addr_t *addr;
} zg_upstream_pick_t;

void zg_upstream_pick_init(zg_upstream_pick_t *pk);

/* Picks the next peer (not tried yet), primaries first, backups only when every
 * primary is down/failed/full.  ZG_OK and pk->peer/addr set, or ZG_BUSY when no
 * peer can be used.  Counts the pick's active connection. */
int zg_upstream_get(zg_upstream_conf_t *u, zg_upstream_pick_t *pk, zg_msec_t now);

/* Ends the use of pk->peer: failed = 1 counts a failure (max_fails within
 * fail_timeout marks the peer down for fail_timeout), 0 a success. */
void zg_upstream_free(zg_upstream_conf_t *u, zg_upstream_pick_t *pk, int failed,
                      zg_msec_t now);

typedef struct {
    const zg_addr_t *addr;
    uint64_t requests, fails;
    uint32_t active;
    int weight;
    unsigned backup : 1;
    unsigned down : 1;       /* configured down */
    unsigned unavailable : 1;/* failed: max_fails reached within fail_timeout */
} zg_upstream_peer_stats_t;

/* copies peer i's state (0 <= i < u->nservers), under the zone lock if any */
int zg_upstream_peer_stats(zg_upstream_conf_t *u, int i, zg_upstream_peer_stats_t *out,
                           zg_msec_t now);

#endif
