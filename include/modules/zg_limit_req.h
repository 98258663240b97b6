/* zg_limit_req.h — leaky bucket per key in a shared zone (nginx's limit_req). */
#ifndef ZG_LIMIT_REQ_H
#define ZG_LIMIT_REQ_H

#include "zg_conf.h"
#include "zg_sync_conf.h"
#include "zg_vars.h"
#include "zg_zone.h"

/* limit_req_zone KEY zone=NAME:SIZE rate=R|rate=$VAR default=R [sync=URL]
 *                [sync_interval=T] [sync_password_file=FILE]  (zg_sync_conf.h) */
typedef struct {
    zg_zone_t *zone;
    zg_cv_t *key;
    char *key_text;      /* as written, e.g. "$binary_remote_addr": a reload must keep it */
    uint64_t rate;       /* requests per 1000 s: 1 corresponds to 0.001 r/s; with
                            rate=$var the default= rate */
    char *rate_text;     /* "10r/s" */
    zg_cv_t *rate_cv;    /* rate=$var: evaluated per request; NULL = fixed rate */
    zg_sync_conf_t sync; /* sync.mode ZG_SYNC_NONE = local only */
    unsigned stream : 1; /* declared in the stream block */
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

/* ---- the API: keys with the most excess, forgiving one ---- */

#define ZG_LIMIT_REQ_TOP_KEY 64     /* key bytes kept per top entry */
#define ZG_LIMIT_REQ_TOP_CHUNK 512  /* entries visited per hold of the zone lock */
#define ZG_LIMIT_REQ_TOP_MAX 1000   /* most entries one call returns */

typedef struct {
    unsigned char key[ZG_LIMIT_REQ_TOP_KEY];
    size_t len;          /* the whole key's length; key holds its first 64 bytes */
    uint64_t excess;     /* thousandths of a request, as of now */
    uint64_t rate;       /* requests per 1000 s in force for the key */
    zg_msec_t idle;      /* ms since the key was last charged */
} zg_limit_req_top_t;

/* The (at most n, up to ZG_LIMIT_REQ_TOP_MAX) keys of the zone with the most excess
 * now (only keys with some), most first, into out; returns how many.  The zone is
 * walked in key order ZG_LIMIT_REQ_TOP_CHUNK entries per hold of its lock, each
 * chunk resuming after the last key seen, so requests wait at most one chunk; keys
 * added or removed meanwhile may be missed or seen with newer figures. */
size_t zg_limit_req_top(zg_zone_t *zone, zg_limit_req_top_t *out, size_t n, zg_msec_t now);

/* The same walk one chunk at a time, so a worker can serve its other connections
 * between chunks: init, then step until it returns ZG_OK (out sorted, have entries);
 * ZG_AGAIN means more to walk. */
typedef struct {
    zg_limit_req_top_t *out;
    size_t n, have;
    int started, done;
    uint32_t last_hash;  /* the last key seen: the next chunk starts after it */
    size_t last_len;
    unsigned char last[65535];
} zg_limit_req_top_walk_t;

void zg_limit_req_top_init(zg_limit_req_top_walk_t *w, zg_limit_req_top_t *out, size_t n);
int zg_limit_req_top_step(zg_zone_t *zone, zg_limit_req_top_walk_t *w, zg_msec_t now);

/* Forgives a key: its excess becomes 0 (the entry is removed unless a request
 * holds it).  ZG_OK, or ZG_DECLINED when the zone has no such key. */
int zg_limit_req_forgive(zg_zone_t *zone, const void *key, size_t len);

/* 1 if the zone's key is $binary_remote_addr (its keys read as addresses) */
int zg_limit_req_key_is_addr(zg_zone_t *zone);

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
