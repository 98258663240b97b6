/* zg_keyval.h — key-value zones (nginx Plus's keyval): a dictionary in a shared
 * zone that every worker reads through a variable and the API writes.
 *
 *   keyval_zone zone=NAME:SIZE [state=FILE] [timeout=TIME] [type=string|ip|prefix];
 *   keyval KEY_EXPR $VARIABLE zone=NAME;
 *
 * type=string matches the key exactly; type=ip stores addresses and CIDR networks
 * ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7") and matches an address against the
 * longest stored network; type=prefix matches the longest stored prefix of the key. */
#ifndef ZG_KEYVAL_H
#define ZG_KEYVAL_H

#include "zg_conf.h"
#include "zg_sync_conf.h"
#include "zg_vars.h"
#include "zg_zone.h"

#define ZG_KEYVAL_KEY_MAX 1024
#define ZG_KEYVAL_VALUE_MAX 4096

enum { ZG_KEYVAL_STRING = 0, ZG_KEYVAL_IP, ZG_KEYVAL_PREFIX };

typedef struct {
    zg_zone_t *zone;
    int type;               /* ZG_KEYVAL_* */
    zg_msec_t timeout;      /* 0 = entries never expire */
    char *state;            /* absolute path, or NULL */
    uint64_t saved;         /* master: the zone's change counter at the last save */
    zg_sync_conf_t sync;    /* sync=...: the fleet shares the zone through Redis */
} zg_keyval_zone_conf_t;

typedef struct {
    zg_keyval_zone_conf_t **zones;
    int nzones;
    /* private: keyval directives naming a zone that may be declared later */
    void *vars;
    int nvars;
} zg_keyval_main_conf_t;

extern zg_module_t zg_keyval_module;
extern const zg_zone_kind_t zg_keyval_zone_kind;
#define ZG_ZONE_KEYVAL (&zg_keyval_zone_kind)

#define zg_keyval_main_conf(conf)                                                      \
    ((zg_keyval_main_conf_t *)zg_main_conf_of(conf, zg_keyval_module))

/* Counters and figures of a zone (copied under its lock) */
typedef struct {
    uint64_t entries;
    uint64_t evicted;       /* entries dropped (least recently used) to make room */
    uint64_t expired;       /* entries dropped after their timeout */
    uint64_t changes;       /* every set or delete: the state file is due when it moves */
    int type;
} zg_keyval_stats_t;

/* zone->init for keyval zones (zone->conf is the zg_keyval_zone_conf_t).  A reused
 * zone keeps its entries; one whose type changed is refused (ZG_ERROR, logged). */
int zg_keyval_zone_init(zg_zone_t *zone, void *old_data);

/* The value matched by key (by the zone's type), copied into buf: returns its full
 * length (snprintf semantics, no NUL), 0 when there is none.  Takes the lock; the
 * entry becomes the most recently used. */
size_t zg_keyval_match(zg_zone_t *zone, const char *key, size_t klen, zg_msec_t now,
                       char *buf, size_t len);

/* Stores key = val.  only_new: ZG_BUSY if the key is present.  Returns ZG_OK;
 * ZG_DECLINED: not a key of this zone's type (ip: not an address or network;
 * too long); ZG_ERROR: the entry does not fit the zone even after evicting the
 * least recently used entries (a value too large for it), the zone is unchanged
 * apart from those evictions.  Takes the lock. */
int zg_keyval_set(zg_zone_t *zone, const char *key, size_t klen, const char *val,
                  size_t vlen, int only_new, zg_msec_t now);

/* 1 if an entry is stored under key exactly (ip zones: the same network), else 0 */
int zg_keyval_has(zg_zone_t *zone, const char *key, size_t klen, zg_msec_t now);

/* Removes the entry stored under key (exactly: for ip zones the same network).
 * ZG_OK, or ZG_DECLINED when there is none or the key is invalid. */
int zg_keyval_delete(zg_zone_t *zone, const char *key, size_t klen);

/* Removes every entry. */
void zg_keyval_clear(zg_zone_t *zone);

/* Calls cb for every live entry under the lock, keys as text (ip zones print
 * "10.0.0.0/8", a single address without "/32" or "/128").  cb must not call back
 * into the zone.  Returns the number of entries visited. */
typedef void (*zg_keyval_each_pt)(void *arg, const char *key, size_t klen, const char *val,
                                  size_t vlen);
size_t zg_keyval_each(zg_zone_t *zone, zg_msec_t now, zg_keyval_each_pt cb, void *arg);

void zg_keyval_stats(zg_zone_t *zone, zg_keyval_stats_t *out);

/* State files: the zone as a JSON object {"key": "value", ...}.  save writes
 * path.tmp and renames it over path (ZG_OK or ZG_ERROR, logged with the path).
 * load replaces the zone's entries with the file's (a missing file is an empty
 * zone: ZG_DECLINED); a file that does not parse, or holds anything but string
 * values, leaves the zone empty and returns ZG_ERROR, logged with its path. */
int zg_keyval_state_save(zg_zone_t *zone, const char *path);
int zg_keyval_state_load(zg_zone_t *zone, const char *path, zg_msec_t now);

/* ---- sync (zg_sync.c drives it) ----
 * A synced zone keeps a journal in shared memory of the API's writes (set, delete,
 * clear), keys as text, at most ZG_KEYVAL_JOURNAL_MAX writes in a quarter of the
 * zone's memory (more are dropped, counted in the sync stats): the syncing worker sends
 * them, oldest first, and removes them once Redis has stamped them.  Changes read
 * back from Redis are applied without a journal entry; a key with a write still in
 * the journal keeps its local value (it is newer than anything Redis sent). */
#define ZG_KEYVAL_JOURNAL_MAX 4096

enum { ZG_KEYVAL_OP_SET = 's', ZG_KEYVAL_OP_DEL = 'd', ZG_KEYVAL_OP_CLEAR = 'c' };

/* the zone's sync counters, NULL unless it is a keyval zone with sync= */
zg_sync_stats_t *zg_keyval_sync_shared(zg_zone_t *zone);

/* Calls cb for the oldest journal entries, up to max, without removing them
 * (key "" for a clear).  Returns how many; *more: entries remain past those. */
typedef int (*zg_keyval_sync_pt)(void *arg, int op, const char *key, size_t klen,
                                 const char *val, size_t vlen);
int zg_keyval_sync_peek(zg_zone_t *zone, int max, zg_keyval_sync_pt cb, void *arg, int *more);

/* Removes the n oldest journal entries (Redis stamped them). */
void zg_keyval_sync_ack(zg_zone_t *zone, int n);

/* Applies a change read from Redis: val NULL deletes.  ZG_OK; ZG_BUSY: the key has
 * a write in the journal (kept); ZG_DECLINED: an invalid key; ZG_ERROR: no room. */
int zg_keyval_sync_apply(zg_zone_t *zone, const char *key, size_t klen, const char *val,
                         size_t vlen, zg_msec_t now);

/* Redis forgot what this host last saw (trimmed past its cursor): every entry
 * without a write in the journal is dropped before the zone is read again. */
void zg_keyval_sync_reset(zg_zone_t *zone);

/* the Redis clock stamp (us) this host has read changes up to; the fleet's entries
 * (HLEN of the zone's hash in Redis, as last answered) */
uint64_t zg_keyval_sync_cursor(zg_zone_t *zone);
void zg_keyval_sync_seen(zg_zone_t *zone, uint64_t cursor, uint64_t fleet);
uint64_t zg_keyval_sync_fleet(zg_zone_t *zone);

/* the zone named name of this module, NULL if none */
zg_keyval_zone_conf_t *zg_keyval_zone(const zg_conf_t *conf, const char *name);

#endif
