/* zg_cache.h — proxy_cache: responses of proxied locations kept in files under a
 * proxy_cache_path, indexed by a shared "keys zone" (an rbtree of the md5 of each
 * key with an LRU queue in a slab zone), so every worker serves what any worker
 * cached.  The lookup wraps the content handler of a caching location (set at load
 * time, so other locations pay nothing); storing is a response filter that sees the
 * upstream's head and body first (before add_header and gzip).  The
 * master loads the index from the files at start and keeps the disk under
 * max_size and the entries within inactive (zg_module_t.tick).  With
 * proxy_cache_background_update, an expired entry is refreshed by a fetch the worker
 * owns (not the client's request), holding the entry's lock; exit_worker ends those. */
#ifndef ZG_CACHE_H
#define ZG_CACHE_H

#include <stdint.h>
#include <time.h>

#include "zg_conf.h"
#include "zg_queue.h"
#include "zg_rbtree.h"

/* $upstream_cache_status */
enum {
    ZG_CACHE_NONE = 0,
    ZG_CACHE_MISS,
    ZG_CACHE_BYPASS,
    ZG_CACHE_EXPIRED,
    ZG_CACHE_STALE,
    ZG_CACHE_UPDATING,
    ZG_CACHE_REVALIDATED,
    ZG_CACHE_HIT,
};

/* one cached key: in the keys zone */
typedef struct {
    zg_rbtree_node_t node;      /* key: the first 4 bytes of the md5 */
    zg_queue_t queue;           /* LRU, most recent first */
    unsigned char md5[16];
    int64_t valid_sec;          /* wall clock: fresh until */
    int64_t access;             /* wall clock: last use */
    uint64_t fs_size;           /* bytes of its file (0: no file yet) */
    zg_msec_t lock_time;        /* zg_time_msec() when lock_slot took it */
    uint32_t uses;
    int32_t lock_slot;          /* worker slot + 1 fetching the key; 0: none */
    unsigned exists : 1;        /* a complete file is in place */
} zg_cache_node_sh_t;

typedef struct {
    zg_rbtree_t tree;
    zg_rbtree_node_t sentinel;
    zg_queue_t lru;
    uint64_t size;              /* bytes of the files of the entries */
    uint64_t entries;
    uint64_t hits, misses, expired, stale, updating, bypass, revalidated;
    uint64_t bytes_written, evictions, stored;
    int loaded;                 /* the loader has read the directory */
} zg_cache_sh_t;

extern const zg_zone_kind_t zg_cache_zone_kind;
#define ZG_ZONE_CACHE (&zg_cache_zone_kind)

/* index operations, under the zone's lock (exposed for the unit tests) */
zg_cache_node_sh_t *zg_cache_lookup_locked(zg_cache_sh_t *sh, const unsigned char *md5);
/* a new entry (evicting least recently used ones without a lock when the zone is
 * full; their md5s are written to evicted, up to *nevicted, for the caller to remove
 * the files); NULL when nothing could be evicted */
zg_cache_node_sh_t *zg_cache_insert_locked(zg_slab_pool_t *pool, zg_cache_sh_t *sh,
                                           const unsigned char *md5, int64_t now,
                                           unsigned char (*evicted)[16], int *nevicted);
void zg_cache_delete_locked(zg_slab_pool_t *pool, zg_cache_sh_t *sh, zg_cache_node_sh_t *n);
void zg_cache_touch_locked(zg_cache_sh_t *sh, zg_cache_node_sh_t *n, int64_t now);
/* the entries that must go: inactive for longer than inactive seconds, then the
 * least recently used while the files exceed max_size (0: no limit); at most max of
 * them, their md5s in out; returns how many were removed from the index */
int zg_cache_expire_locked(zg_slab_pool_t *pool, zg_cache_sh_t *sh, int64_t now,
                           int64_t inactive, uint64_t max_size, unsigned char (*out)[16],
                           int max);

/* seconds of validity an upstream head gives (-1: not cacheable by its headers, 0:
 * nothing said, > 0: seconds) from X-Accel-Expires, Cache-Control and Expires, and
 * whether Set-Cookie / Vary: * forbid caching, as nginx with the ZG_IGNORE_* mask */
int64_t zg_cache_validity(const zg_resp_t *h, int ignore, time_t now);

/* for the JSON API: a cache zone's figures (ZG_OK; ZG_DECLINED: not a mapped cache
 * zone), the removal of one key (its text, %XX-decoded here; ZG_OK removed,
 * ZG_DECLINED none such) with its file, and the counters set back to zero */
typedef struct {
    uint64_t size, max_size, entries;
    uint64_t hits, misses, expired, stale, updating, bypass, revalidated;
    uint64_t bytes_written, stored, evictions;
    int cold;                   /* the loader has not read the directory yet */
} zg_cache_stats_t;
int zg_cache_stats(zg_zone_t *z, zg_cache_stats_t *st);
int zg_cache_purge(zg_zone_t *z, const char *key, size_t len);
void zg_cache_reset(zg_zone_t *z);

extern zg_module_t zg_cache_module;

#endif
