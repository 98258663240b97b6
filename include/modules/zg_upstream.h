/* zg_upstream.h — peers of an upstream: smooth weighted round-robin (nginx's
 * current_weight/effective_weight), max_fails/fail_timeout, max_conns, backup, down.
 * With `zone` the state lives in shared memory and all workers share one sequence. */
#ifndef ZG_UPSTREAM_H
#define ZG_UPSTREAM_H

#include "zg_conf.h"
#include "zg_zone.h"

#define ZG_MAX_PEERS 256  /* servers in one upstream */

/* upstream { server ...; } */
typedef struct {
    zg_addr_t addr;
    int weight;          /* default 1 */
    int max_fails;       /* default 1; 0 = never mark down */
    zg_msec_t fail_timeout; /* default 10000 */
    int max_conns;       /* 0 = unlimited */
    unsigned backup : 1;
    unsigned down : 1;
} zg_upstream_server_t;

typedef struct zg_upstream_conf_s zg_upstream_conf_t;
struct zg_upstream_conf_s {
    char name[64];
    zg_upstream_server_t *servers;
    int nservers;
    int keepalive;     /* idle upstream connections cached per worker; 0 = none */
    zg_zone_t *zone;   /* `zone NAME SIZE;` — shared peer state; NULL = per worker */
    unsigned implicit : 1; /* made from proxy_pass http://HOST:PORT */
    unsigned stream : 1;   /* in the stream block: a name space of its own */
    const char *file;
    int line;
    void *peers;       /* runtime state, owned by zg_upstream.c */
    void *pool;        /* this worker's idle keep-alive connections, owned by zg_proxy.c */
    zg_upstream_conf_t *next;
};

typedef struct {
    zg_upstream_conf_t *upstreams;
    zg_upstream_conf_t **tail;
} zg_upstream_main_conf_t;

extern zg_module_t zg_upstream_module;
extern const zg_zone_kind_t zg_upstream_zone_kind;
#define ZG_ZONE_UPSTREAM (&zg_upstream_zone_kind)

#define zg_upstream_main_conf(conf)                                                    \
    ((zg_upstream_main_conf_t *)zg_main_conf_of(conf, zg_upstream_module))

/* the upstream NAME (implicit: one made by proxy_pass http://HOST:PORT); NULL = none */
zg_upstream_conf_t *zg_upstream_find(zg_conf_t *conf, const char *name, int implicit);
/* the same among the stream block's (stream = 1) or the http block's upstreams */
zg_upstream_conf_t *zg_upstream_find_in(zg_conf_t *conf, const char *name, int implicit,
                                        int stream);
zg_upstream_conf_t *zg_upstream_implicit_in(zg_cf_t *cf, const char *name,
                                            const zg_addr_t *addr, const char *file,
                                            int line, int stream);
/* the implicit upstream of one server at addr, made on first use; NULL = no memory */
zg_upstream_conf_t *zg_upstream_implicit(zg_cf_t *cf, const char *name, const zg_addr_t *addr,
                                         const char *file, int line);

/* zone->init for ZG_ZONE_UPSTREAM zones (zone->conf is the zg_upstream_conf_t) */
int zg_upstream_zone_init(zg_zone_t *zone, void *old_data);

/* per-process state for upstreams without a zone; call in each worker after fork
 * (and in the master for -t); ZG_OK / ZG_ERROR.  Called again it starts afresh.
 * With a zone it only attaches u to the zone's (already initialised) state. */
int zg_upstream_init(zg_upstream_conf_t *u);

/* frees the per-process state of zg_upstream_init (nothing for a zone) */
void zg_upstream_cleanup(zg_upstream_conf_t *u);

/* Peers are numbered as u->servers (config order), backups included. */
typedef struct {
    uint64_t tried[ZG_MAX_PEERS / 64]; /* peers already tried by this request */
    int tries;                         /* peers tried so far */
    int peer;                          /* index of the current pick, -1 none */
    const zg_addr_t *addr;
    int backup;                        /* private: moved on to the backup servers */
} zg_upstream_pick_t;

void zg_upstream_pick_init(zg_upstream_pick_t *pk);

/* Picks the next peer (not tried yet), primaries first, backups only when every
 * primary is down/failed/full (once on the backups a request stays there, as
 * nginx).  ZG_OK and pk->peer/addr set, or ZG_BUSY when no peer can be used
 * (ZG_ERROR: u has no state: neither init nor a zone).  Counts the pick's active
 * connection and the peer's requests.  An upstream of one server and no backup
 * is never marked failed (nginx): it is refused only when down or at max_conns,
 * and a request gets it once. */
int zg_upstream_get(zg_upstream_conf_t *u, zg_upstream_pick_t *pk, zg_msec_t now);

/* Ends the use of pk->peer: failed = 1 counts a failure (max_fails within
 * fail_timeout marks the peer down for fail_timeout; then one request is let
 * through, and its success brings the peer back), 0 a success.  Sets pk->peer
 * to -1; without a current pick it does nothing. */
void zg_upstream_free(zg_upstream_conf_t *u, zg_upstream_pick_t *pk, int failed,
                      zg_msec_t now);

typedef struct {
    const zg_addr_t *addr;
    uint64_t requests, fails; /* picks, failed frees (all time) */
    uint64_t bytes_sent, bytes_received; /* stream sessions, counted as they end */
    uint32_t active;
    int weight;
    int recent_fails;        /* failures counted against max_fails now */
    int effective_weight;
    int current_weight;
    unsigned backup : 1;
    unsigned down : 1;       /* configured down, or taken down through the API */
    unsigned drain : 1;      /* draining (API): no new requests */
    unsigned unavailable : 1;/* failed: max_fails reached within fail_timeout */
} zg_upstream_peer_stats_t;

/* adds a stream session's bytes to peer i's counters (under the zone lock if any) */
void zg_upstream_bytes(zg_upstream_conf_t *u, int i, uint64_t sent, uint64_t received);

/* copies peer i's state (0 <= i < u->nservers), under the zone lock if any;
 * ZG_OK, or ZG_ERROR for a bad i or an upstream without state */
int zg_upstream_peer_stats(zg_upstream_conf_t *u, int i, zg_upstream_peer_stats_t *out,
                           zg_msec_t now);

/* The API: takes peer i down (down 1) or back (0, also ends a drain), drains it
 * (drain 1: no new requests), sets its weight (> 0); -1 leaves a field alone.  With
 * a zone every worker sees it at once, and a reload keeps it for every peer it keeps
 * (same address, backup, configured down and weight) when the zone is kept.  ZG_OK, or ZG_ERROR for a bad i or no state. */
int zg_upstream_peer_set(zg_upstream_conf_t *u, int i, int down, int drain, int weight);

#endif
