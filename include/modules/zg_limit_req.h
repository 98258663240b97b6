/* zg_limit_req.h — leaky bucket per key in a shared zone (nginx's limit_req). */
#ifndef ZG_LIMIT_REQ_H
#define ZG_LIMIT_REQ_H

#include "zg_conf.h"
#include "zg_sync_conf.h"
#include "zg_vars.h"
#include "zg_zone.h"

/* limit_req_zone KEY zone=NAME:SIZE rate=R [sync=URL] [sync_interval=T]
 *                [sync_password_file=FILE]  (zg_sync_conf.h) */
typedef struct {
    zg_zone_t *zone;
    zg_cv_t *key;
    char *key_text;      /* as written, e.g. "$binary_remote_addr": a reload must keep it */
    uint64_t rate;       /* requests per 1000 s: 1 corresponds to 0.001 r/s */
    char *rate_text;     /* "10r/s" */
    zg_sync_conf_t sync; /* sync.mode ZG_SYNC_NONE = local only */
} zg_limit_req_zone_conf_t;

/* limit_req zone=NAME [burst=N] [nodelay | delay=N] */
typedef struct {
    zg_limit_req_zone_conf_t *zone;
    uint64_t burst;      /* thousandths of a request (burst=5 -> 5000) */
    uint64_t delay;      /* thousandths; UINT64_MAX = nodelay; 0 = delay everything (default) */
} zg_limit_req_conf_t;

#define ZG_LIMIT_REQ_NODELAY UINT64_MAX

typedef struct {
    zg_limit_req_zone_conf_t **zones;
    int nzones;
    /* private: limit_req naming a zone that may be declared later */
    zg_conf_zone_ref_t *refs;
    int nrefs;
} zg_limit_req_main_conf_t;

/* limit_req and its settings, at http, server and location level */
typedef struct {
    zg_limit_req_conf_t *limits;
    int nlimits;                 /* -1 = unset */
    int status;                  /* limit_req_status 503 */
    int log_level;               /* ZG_LOG_ERR; delays logged one level lower */
    int dry_run;                 /* 0 */
    int headers;                 /* limit_req_headers 0; zonegate extension */
} zg_limit_req_loc_conf_t;

extern zg_module_t zg_limit_req_module;
extern const zg_zone_kind_t zg_limit_req_zone_kind;
#define ZG_ZONE_LIMIT_REQ (&zg_limit_req_zone_kind)

#define zg_limit_req_main_conf(conf)                                                   \
    ((zg_limit_req_main_conf_t *)zg_main_conf_of(conf, zg_limit_req_module))
#define zg_limit_req_loc_conf(confs)                                                   \
    ((zg_limit_req_loc_conf_t *)zg_conf_module(confs, zg_limit_req_module))

/* zone->init for ZG_ZONE_LIMIT_REQ zones (zone->conf is the zg_limit_req_zone_conf_t).
 * A reused zone whose key or rate changed is refused: ZG_ERROR, logged. */
int zg_limit_req_zone_init(zg_zone_t *zone, void *old_data);

/* Outcome of all limit_req of a location for one request. */
typedef struct {
    int status;          /* ZG_LIMIT_PASSED / DELAYED / REJECTED / *_DRY_RUN */
    zg_msec_t delay;     /* > 0: wait this long, then go on (DELAYED) */
    int limit;           /* index of the limit that decided a rejection or the delay; -1 */
    /* for limit_req_headers (the limit with the least remaining) */
    uint64_t policy_q;   /* burst + 1 requests ... per policy_w seconds */
    uint64_t policy_w;
    uint64_t remaining;  /* whole requests left before rejection */
    uint64_t reset;      /* seconds until the bucket is empty */
    uint64_t retry_after;/* seconds, >= 1, on rejection */
    const char *zone_name;
} zg_limit_req_result_t;

/* Runs limits[0..n) in order exactly as nginx's handler does (every limit is looked
 * up, only a request all pass is charged; the longest delay wins).  Keys are
 * evaluated against ctx; an empty key is not limited.  `now` is zg_time_msec().
 * Returns ZG_OK (pass or delay: see res->delay), ZG_BUSY (reject: answer
 * limit_req_status) or ZG_ERROR (zone full even after expiry: also answer
 * limit_req_status; logged "could not allocate node").  Dry run: never rejects or
 * delays, but res->status says what would have happened; as in nginx a request
 * that would be rejected is charged to no zone, one that would be delayed is
 * charged.  Keys over 65535 bytes are logged and not limited (nginx).  Logs
 * rejections at log_level and delays one level lower (nginx's text plus
 * ", client: ADDR").  No limit with a key: ZG_OK, res->status ZG_LIMIT_NONE. */
int zg_limit_req_check(const zg_limit_req_conf_t *limits, int n, int dry_run,
                       int log_level, const zg_var_ctx_t *ctx, zg_msec_t now,
                       zg_limit_req_result_t *res);

/* Counters kept in each zone's shared root (all workers) */
typedef struct {
    uint64_t passed, delayed, rejected, delayed_dry_run, rejected_dry_run;
    uint64_t entries;    /* nodes in the tree now */
    uint64_t evicted;    /* nodes expired by LRU to make room */
    uint64_t alloc_fails;
} zg_limit_req_stats_t;

/* copies the zone's counters under its lock.  Each request is counted at most
 * once per zone: passed or delayed (its own limit wanted a delay) in every zone
 * it was charged to, rejected in the zone that rejected it (zones looked up
 * before a rejection are not charged and count nothing); *_dry_run likewise.
 * evicted counts every entry _expire removed (idle and drained, or the LRU
 * one by force); alloc_fails the lookups answered "could not allocate node". */
void zg_limit_req_stats(zg_zone_t *zone, zg_limit_req_stats_t *out);

/* bytes one entry takes for a key of key_len bytes (64 for a 4-byte key) */
size_t zg_limit_req_node_size(size_t key_len);

/* ---- cluster sync (the sync module, zg_sync.c, drives it) ----
 * A zone created with sync=... gives every node a small extension: the requests
 * admitted (charged) here since the last push, and a link in the zone's dirty list
 * (a node is listed when it is charged or rejects).  The layout is fixed when the
 * zone is created: a reload may drop sync (the zone keeps its layout, nothing
 * syncs) but cannot add it to a zone made without (zone_init refuses: new name or
 * size needed). */

/* the zone's shared sync counters: zg_sync_stats_t (zg_sync_conf.h) */
typedef zg_sync_stats_t zg_limit_req_sync_stats_t;

/* the zone's shared sync counters (update them with __atomic builtins), or NULL
 * when the zone has no sync layout */
zg_limit_req_sync_stats_t *zg_limit_req_sync_shared(zg_zone_t *zone);

/* Copy of the counters; ZG_DECLINED (and zeroes) when the zone has no sync layout. */
int zg_limit_req_sync_stats(zg_zone_t *zone, zg_limit_req_sync_stats_t *out);

/* Takes up to max nodes off the dirty list, oldest first, under the zone lock:
 * for each calls cb(arg, key, len, admitted) and zeroes its admitted count.
 * cb == NULL drops them (counted in dropped).  Returns how many were taken;
 * cb returning ZG_ERROR stops the walk (that node stays listed). */
typedef int (*zg_limit_req_sync_pt)(void *arg, const unsigned char *key, size_t len,
                                    uint32_t admitted);
int zg_limit_req_sync_take(zg_zone_t *zone, int max, zg_limit_req_sync_pt cb, void *arg);

/* Applies the fleet's answer for a key: its bucket becomes fleet_excess (thousandths,
 * as the fleet bucket stood when it counted this host's push) plus the requests
 * admitted here since the push was taken (at `taken`), less what the zone's rate
 * drained of those since then, as of now.  No node: nothing. */
void zg_limit_req_sync_apply(zg_zone_t *zone, const unsigned char *key, size_t len,
                             uint64_t fleet_excess, zg_msec_t taken, zg_msec_t now);

#endif
