/* zg_limit_conn.h — concurrent requests per key in a shared zone (nginx's limit_conn),
 * with per-worker shares so a dead worker's counts can be given back. */
#ifndef ZG_LIMIT_CONN_H
#define ZG_LIMIT_CONN_H

#include "zg_conf.h"
#include "zg_proc.h"
#include "zg_sync_conf.h"
#include "zg_vars.h"
#include "zg_zone.h"

/* limit_conn_zone KEY zone=NAME:SIZE [sync=URL] [sync_interval=T]
 *                 [sync_password_file=FILE]  (zg_sync_conf.h) */
typedef struct {
    zg_zone_t *zone;
    zg_cv_t *key;
    char *key_text;
    zg_sync_conf_t sync; /* sync.mode ZG_SYNC_NONE = local only */
    unsigned stream : 1; /* declared in the stream block */
} zg_limit_conn_zone_conf_t;

/* limit_conn NAME N */
typedef struct {
    zg_limit_conn_zone_conf_t *zone;
    uint32_t conn;       /* with conn_cv: the default= (0 = not limited when unset) */
    zg_cv_t *conn_cv;    /* limit_conn NAME $VAR [default=N]; NULL = a fixed number */
} zg_limit_conn_conf_t;

typedef struct {
    zg_limit_conn_zone_conf_t **zones;
    int nzones;
    /* private: limit_conn naming a zone that may be declared later */
    zg_conf_zone_ref_t *refs;
    int nrefs;
} zg_limit_conn_main_conf_t;

typedef struct {
    zg_limit_conn_conf_t *limits;
    int nlimits;                 /* -1 = unset */
    int status;                  /* limit_conn_status 503 */
    int log_level;               /* ZG_LOG_ERR */
    int dry_run;
} zg_limit_conn_loc_conf_t;

extern zg_module_t zg_limit_conn_module;
extern const zg_zone_kind_t zg_limit_conn_zone_kind;
#define ZG_ZONE_LIMIT_CONN (&zg_limit_conn_zone_kind)

#define zg_limit_conn_main_conf(conf)                                                  \
    ((zg_limit_conn_main_conf_t *)zg_main_conf_of(conf, zg_limit_conn_module))
#define zg_limit_conn_loc_conf(confs)                                                  \
    ((zg_limit_conn_loc_conf_t *)zg_conf_module(confs, zg_limit_conn_module))

/* a request holds at most this many limit_conn slots */
#define ZG_LIMIT_CONN_MAX_HOLDS 16

/* the worker slot (0..ZG_MAX_WORKERS-1) this process counts its holds under;
 * set by the master right after fork */

int zg_limit_conn_zone_init(zg_zone_t *zone, void *old_data);

typedef struct {
    zg_zone_t *zone;
    void *node;          /* private: the held entry */
    int slot;            /* private: the zg_worker_slot it is counted under */
} zg_limit_conn_hold_t;

/* Takes one slot per limit of limits[0..n) in order (holds has room for n).
 * On ZG_OK holds[0..*nholds) must later be given to zg_limit_conn_release
 * (exactly once).  Keys: empty = not limited; longer than 255 bytes: logged,
 * not limited (nginx).  If a limit is over its count: everything taken is given
 * back and ZG_BUSY is returned; with dry_run, as nginx, everything taken is given
 * back too, no further limit is looked at, ZG_OK with *nholds == 0 and *status
 * REJECTED_DRY_RUN.  ZG_ERROR: no memory for a new entry (limit_conn has no LRU
 * to expire; logged "could not allocate node"): handled like a rejection.
 * *status gets NONE (no key) / ZG_LIMIT_PASSED / REJECTED / REJECTED_DRY_RUN. */
int zg_limit_conn_acquire(const zg_limit_conn_conf_t *limits, int n, int dry_run,
                          int log_level, const zg_var_ctx_t *ctx,
                          zg_limit_conn_hold_t *holds, int *nholds, int *status);

void zg_limit_conn_release(zg_limit_conn_hold_t *holds, int nholds);

/* master: give back every count that worker `slot` held in this zone (it died);
 * entries left with no holds are freed.  Holds of that slot must not be released
 * afterwards. */
void zg_limit_conn_forget_worker(zg_zone_t *zone, int slot);

typedef struct {
    uint64_t passed, rejected, rejected_dry_run;
    uint64_t current;    /* requests held now, all keys */
    uint64_t entries;
    uint64_t alloc_fails;
} zg_limit_conn_stats_t;

void zg_limit_conn_stats(zg_zone_t *zone, zg_limit_conn_stats_t *out);

/* ---- fleet-wide counts with leases (the sync module, zg_sync.c, drives it) ----
 * In a zone with sync=..., each entry also holds `others`: the live leases of the
 * other hosts for its key, as Redis last answered.  A request is admitted while
 * count + others < N.  An entry whose count falls to 0 stays until this host's
 * lease of 0 has been pushed and no other host holds the key, so the fleet learns
 * of releases too.  Without sync (or while Redis is unreachable: _sync_local) it
 * is nginx's limit_conn. */

/* the zone's shared sync counters, or NULL when the zone has no sync */
zg_sync_stats_t *zg_limit_conn_sync_shared(zg_zone_t *zone);

/* this host's lease owner name in Redis (random, made when the zone was created,
 * kept across reloads) */
const char *zg_limit_conn_sync_host(zg_zone_t *zone);

/* called under the zone lock for each key taken: its count on this host */
typedef int (*zg_limit_conn_sync_pt)(void *arg, const unsigned char *key, size_t len,
                                     uint32_t count);

/* Takes up to max entries, round robin over the zone (every held key is pushed
 * each interval while they fit the budget: that refreshes its lease), frees those
 * with nothing left to tell.  Returns how many cb accepted (cb's ZG_ERROR ends it). */
int zg_limit_conn_sync_take(zg_zone_t *zone, int max, zg_limit_conn_sync_pt cb, void *arg);

/* the other hosts hold `others` of key (Redis' answer) */
void zg_limit_conn_sync_apply(zg_zone_t *zone, const unsigned char *key, size_t len,
                              uint32_t others);

/* Redis is unreachable: forget the other hosts' counts (per-host limits) */
void zg_limit_conn_sync_local(zg_zone_t *zone);

/* the fleet's count as this host sees it: the sum of count + others over keys */
uint64_t zg_limit_conn_sync_fleet(zg_zone_t *zone);
/* current count for a key (tests); 0 if absent */
uint32_t zg_limit_conn_count(zg_zone_t *zone, const void *key, size_t len);

/* the API: the (at most n) keys holding most connections now, most first */
typedef struct {
    unsigned char key[255];
    size_t len;
    uint32_t count;
} zg_limit_conn_top_t;

/* An entry lives only while requests hold it, so the zone holds no more keys than
 * requests in flight: one walk under the lock copies them. */
size_t zg_limit_conn_top(zg_zone_t *zone, zg_limit_conn_top_t *out, size_t n);
/* 1 if the zone's key is $binary_remote_addr */
int zg_limit_conn_key_is_addr(zg_zone_t *zone);

#endif
