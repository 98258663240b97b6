/* zg_keyval.c — the keyval module: key-value zones (rbtree + LRU queue in a slab
 * zone), the `keyval` variables that read them, their state files and their
 * /metrics families.
 *
 * State files are written by the master, never by a worker (workers run in a
 * sandbox that opens no file for writing): once a second the master compares each
 * zone's change counter with the one it last saved and, when it moved, writes
 * FILE.tmp and renames it over FILE.  A stop and a retired configuration save once
 * more. */
#include "zg_keyval.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zg_admin.h"
#include "zg_log.h"
#include "zg_queue.h"
#include "zg_rbtree.h"

typedef struct {
    zg_rbtree_node_t node;      /* key = hash of the stored key */
    zg_queue_t queue;           /* LRU: head = most recently used */
    zg_msec_t expire;           /* 0 = never */
    uint32_t klen;
    uint32_t vlen;
    unsigned char data[];       /* key, then value */
} zg_keyval_node_t;

typedef struct {
    zg_rbtree_t rbtree;
    zg_rbtree_node_t sentinel;
    zg_queue_t queue;
    zg_keyval_stats_t stats;
    zg_msec_t timeout;
    /* entries per stored key length: prefix zones look up only lengths in use;
     * ip zones count networks per family and prefix length */
    uint32_t v4[33];
    uint32_t v6[129];
    uint32_t lens[ZG_KEYVAL_KEY_MAX + 1];
    /* sync: the API's writes not yet stamped by Redis, oldest at the tail */
    zg_queue_t journal;
    uint32_t njournal;
    size_t journal_bytes;       /* at most a quarter of the zone: entries keep the rest */
    int synced;                 /* the current configuration has sync= */
    uint64_t cursor;            /* Redis stamp (us) read up to */
    uint64_t fleet;             /* entries in Redis, as last answered */
    zg_sync_stats_t sync;
} zg_keyval_sh_t;

/* a journal entry: key (text), then value */
typedef struct {
    zg_queue_t queue;
    int op;                     /* ZG_KEYVAL_OP_* */
    uint32_t klen;
    uint32_t vlen;
    unsigned char data[];
} zg_keyval_op_t;

typedef struct {
    const unsigned char *data;
    size_t len;
} zg_keyval_key_t;

/* keyval KEY_EXPR $VARIABLE zone=NAME */
typedef struct {
    const char *name;           /* without '$' */
    zg_cv_t *key;
    zg_keyval_zone_conf_t *zone;
    const char *zone_name;
    const char *file;
    int line;
} zg_keyval_var_t;

static const char *const zg_keyval_types[] = { "string", "ip", "prefix" };

static int zg_keyval_cmp(const zg_rbtree_node_t *n, const void *arg)
{
    const zg_keyval_node_t *kv = (const zg_keyval_node_t *)n;
    const zg_keyval_key_t *k = arg;

    return zg_rbtree_key_cmp(kv->data, kv->klen, k->data, k->len);
}

int zg_keyval_zone_init(zg_zone_t *zone, void *old_data)
{
    zg_keyval_zone_conf_t *zc = zone->conf;
    zg_keyval_sh_t *sh;

    if (zc == NULL || zone->pool == NULL) {
        zg_log_error(ZG_LOG_EMERG, 0, "keyval_zone \"%s\" has no configuration", zone->name);
        return ZG_ERROR;
    }
    if (old_data != NULL) {
        sh = old_data;
        if (sh->stats.type != zc->type) {
            zg_log_error(ZG_LOG_EMERG, 0,
                         "keyval_zone \"%s\" has type=%s while previously it had type=%s",
                         zone->name, zg_keyval_types[zc->type],
                         zg_keyval_types[sh->stats.type]);
            return ZG_ERROR;
        }
        zg_shmtx_lock(&zone->pool->mutex);
        sh->timeout = zc->timeout;
        sh->synced = zc->sync.mode != ZG_SYNC_NONE;
        while (!sh->synced && !zg_queue_empty(&sh->journal)) {
            /* a reload dropped sync=: nothing will send the journal any more */
            zg_queue_t *q = zg_queue_last(&sh->journal);

            zg_queue_remove(q);
            zg_slab_free_locked(zone->pool, zg_queue_data(q, zg_keyval_op_t, queue));
            sh->njournal--;
        }
        if (!sh->synced) {
            sh->journal_bytes = 0;
            sh->cursor = 0;
        }
        zg_shmtx_unlock(&zone->pool->mutex);
        zone->data = sh;
        return ZG_OK;
    }
    sh = zg_slab_calloc(zone->pool, sizeof(*sh));
    if (sh == NULL) {
        zg_log_error(ZG_LOG_EMERG, 0, "keyval_zone \"%s\": no memory for the zone root",
                     zone->name);
        return ZG_ERROR;
    }
    zg_rbtree_init(&sh->rbtree, &sh->sentinel, zg_rbtree_insert_value);
    zg_queue_init(&sh->queue);
    zg_queue_init(&sh->journal);
    sh->synced = zc->sync.mode != ZG_SYNC_NONE;
    sh->timeout = zc->timeout;
    sh->stats.type = zc->type;
    zone->pool->data = sh;
    zone->data = sh;
    return ZG_OK;
}

/* ---- keys ---- */

/* An ip zone's stored form of "ADDR" or "ADDR/BITS": family (4 or 6), bits, the
 * address with the bits past the prefix cleared.  Returns its length, 0 if the text
 * is not an address or network.  bits_out < 0: no "/BITS" was given. */
static size_t zg_keyval_ip_key(const char *text, size_t len, unsigned char *out, int *bits_out)
{
    char buf[64];
    const char *slash;
    unsigned char addr[16];
    int fam, alen, bits = -1;

    if (len == 0 || len >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    slash = memchr(buf, '/', len);
    if (slash != NULL) {
        bits = zg_conf_atoi(slash + 1, len - (size_t)(slash + 1 - buf));
        if (bits < 0) {
            return 0;
        }
        buf[slash - buf] = '\0';
    }
    if (inet_pton(AF_INET, buf, addr) == 1) {
        fam = 4;
        alen = 4;
    } else if (inet_pton(AF_INET6, buf, addr) == 1) {
        fam = 6;
        alen = 16;
    } else {
        return 0;
    }
    if (bits > alen * 8) {
        return 0;
    }
    if (bits_out != NULL) {
        *bits_out = bits;
    }
    if (bits < 0) {
        bits = alen * 8;
    }
    out[0] = (unsigned char)fam;
    out[1] = (unsigned char)bits;
    for (int i = 0; i < alen; i++) {
        int keep = bits - i * 8;
        unsigned char mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
        out[2 + i] = addr[i] & mask;
    }
    return (size_t)(2 + alen);
}

/* a stored key as text (ip zones: "ADDR[/BITS]") into buf (>= 64) */
static size_t zg_keyval_text(const zg_keyval_sh_t *sh, const unsigned char *data, size_t klen,
                             char *buf, const char **out)
{
    int fam, bits, full;

    if (sh->stats.type != ZG_KEYVAL_IP) {
        *out = (const char *)data;
        return klen;
    }
    fam = data[0] == 4 ? AF_INET : AF_INET6;
    bits = data[1];
    full = fam == AF_INET ? 32 : 128;
    if (inet_ntop(fam, data + 2, buf, 48) == NULL) {
        *out = "";
        return 0;
    }
    if (bits != full) {
        snprintf(buf + strlen(buf), 16, "/%d", bits);
    }
    *out = buf;
    return strlen(buf);
}

static size_t zg_keyval_key_text(const zg_keyval_sh_t *sh, const zg_keyval_node_t *kv,
                                 char *buf, const char **out)
{
    return zg_keyval_text(sh, kv->data, kv->klen, buf, out);
}

/* a write of the API goes to the journal of a synced zone (lock held); a full
 * journal or zone drops it: this host keeps it, the fleet does not learn it */
static void zg_keyval_journal(zg_zone_t *zone, zg_keyval_sh_t *sh, int op,
                              const unsigned char *k, size_t len, const char *val, size_t vlen)
{
    zg_keyval_op_t *j;
    const char *text = "";
    char buf[64];
    size_t tlen = 0;

    if (!sh->synced) {
        return;
    }
    if (op != ZG_KEYVAL_OP_CLEAR) {
        tlen = zg_keyval_text(sh, k, len, buf, &text);
    }
    j = sh->njournal < ZG_KEYVAL_JOURNAL_MAX &&
                sh->journal_bytes + sizeof(*j) + tlen + vlen <=
                    zone->pool->pages_total * ZG_SLAB_PAGE_SIZE / 4
            ? zg_slab_alloc_locked(zone->pool, sizeof(*j) + tlen + vlen)
            : NULL;
    if (j == NULL) {
        __atomic_add_fetch(&sh->sync.dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    j->op = op;
    j->klen = (uint32_t)tlen;
    j->vlen = (uint32_t)vlen;
    memcpy(j->data, text, tlen);
    if (vlen > 0) {
        memcpy(j->data + tlen, val, vlen);
    }
    zg_queue_insert_head(&sh->journal, &j->queue);
    sh->njournal++;
    sh->journal_bytes += sizeof(*j) + tlen + vlen;
}

/* 1 if the journal holds a write of key (text), or a clear.  Lock held. */
static int zg_keyval_pending(zg_keyval_sh_t *sh, const char *key, size_t klen)
{
    const zg_queue_t *q;
    const zg_keyval_op_t *j;

    for (q = zg_queue_head(&sh->journal); q != zg_queue_sentinel(&sh->journal);
         q = zg_queue_next(q)) {
        j = zg_queue_data(q, zg_keyval_op_t, queue);
        if (j->op == ZG_KEYVAL_OP_CLEAR ||
            (j->klen == klen && memcmp(j->data, key, klen) == 0)) {
            return 1;
        }
    }
    return 0;
}

static inline uint32_t *zg_keyval_len_count(zg_keyval_sh_t *sh, const zg_keyval_node_t *kv)
{
    if (sh->stats.type == ZG_KEYVAL_IP) {
        return kv->data[0] == 4 ? &sh->v4[kv->data[1]] : &sh->v6[kv->data[1]];
    }
    return &sh->lens[kv->klen];
}

static void zg_keyval_free_node(zg_zone_t *zone, zg_keyval_sh_t *sh, zg_keyval_node_t *kv)
{
    (*zg_keyval_len_count(sh, kv))--;
    zg_queue_remove(&kv->queue);
    zg_rbtree_delete(&sh->rbtree, &kv->node);
    zg_slab_free_locked(zone->pool, kv);
    sh->stats.entries--;
}

static zg_keyval_node_t *zg_keyval_find(zg_keyval_sh_t *sh, const unsigned char *key,
                                        size_t len)
{
    zg_keyval_key_t k = { key, len };

    return (zg_keyval_node_t *)zg_rbtree_lookup(&sh->rbtree, zg_hash32(key, len),
                                                zg_keyval_cmp, &k);
}

/* a live entry, or NULL (an expired one is dropped).  Lock held. */
static zg_keyval_node_t *zg_keyval_live(zg_zone_t *zone, zg_keyval_sh_t *sh,
                                        const unsigned char *key, size_t len, zg_msec_t now)
{
    zg_keyval_node_t *kv = zg_keyval_find(sh, key, len);

    if (kv != NULL && kv->expire != 0 && kv->expire <= now) {
        zg_keyval_free_node(zone, sh, kv);
        sh->stats.expired++;
        sh->stats.changes++;
        return NULL;
    }
    return kv;
}

/* the entry matching key by the zone's type.  Lock held. */
static zg_keyval_node_t *zg_keyval_lookup(zg_zone_t *zone, zg_keyval_sh_t *sh,
                                          const char *key, size_t klen, zg_msec_t now)
{
    zg_keyval_node_t *kv;
    unsigned char ip[18], probe[18];
    size_t n;
    int bits, alen;
    uint32_t *counts;

    switch (sh->stats.type) {
    case ZG_KEYVAL_IP:
        n = zg_keyval_ip_key(key, klen, ip, NULL);
        if (n == 0) {
            return NULL;
        }
        alen = (int)n - 2;
        counts = ip[0] == 4 ? sh->v4 : sh->v6;
        for (bits = ip[1]; bits >= 0; bits--) {
            if (counts[bits] == 0) {
                continue;
            }
            probe[0] = ip[0];
            probe[1] = (unsigned char)bits;
            for (int i = 0; i < alen; i++) {
                int keep = bits - i * 8;
                unsigned char mask =
                    keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
                probe[2 + i] = ip[2 + i] & mask;
            }
            kv = zg_keyval_live(zone, sh, probe, n, now);
            if (kv != NULL) {
                return kv;
            }
        }
        return NULL;
    case ZG_KEYVAL_PREFIX:
        for (n = zg_min(klen, (size_t)ZG_KEYVAL_KEY_MAX) + 1; n-- > 0;) {
            if (sh->lens[n] == 0) {
                continue;
            }
            kv = zg_keyval_live(zone, sh, (const unsigned char *)key, n, now);
            if (kv != NULL) {
                return kv;
            }
        }
        return NULL;
    default:
        if (klen > ZG_KEYVAL_KEY_MAX) {
            return NULL;
        }
        return zg_keyval_live(zone, sh, (const unsigned char *)key, klen, now);
    }
}

size_t zg_keyval_match(zg_zone_t *zone, const char *key, size_t klen, zg_msec_t now,
                       char *buf, size_t len)
{
    zg_keyval_sh_t *sh = zone->data;
    zg_keyval_node_t *kv;
    size_t vlen = 0;

    if (sh == NULL) {
        return 0;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    kv = zg_keyval_lookup(zone, sh, key, klen, now);
    if (kv != NULL) {
        zg_queue_remove(&kv->queue);
        zg_queue_insert_head(&sh->queue, &kv->queue);
        vlen = kv->vlen;
        memcpy(buf, kv->data + kv->klen, zg_min(vlen, len));
    }
    zg_shmtx_unlock(&zone->pool->mutex);
    return vlen;
}

/* the stored form of an API key: ip zones want an address or network */
static int zg_keyval_stored_key(const zg_keyval_sh_t *sh, const char *key, size_t klen,
                                unsigned char *ip, const unsigned char **out, size_t *olen)
{
    if (sh->stats.type == ZG_KEYVAL_IP) {
        *olen = zg_keyval_ip_key(key, klen, ip, NULL);
        *out = ip;
        return *olen ? ZG_OK : ZG_DECLINED;
    }
    if (klen == 0 || klen > ZG_KEYVAL_KEY_MAX) {
        return ZG_DECLINED;
    }
    *out = (const unsigned char *)key;
    *olen = klen;
    return ZG_OK;
}

/* a Redis write of this key from this worker has not yet been acknowledged: a
 * sync update must not overwrite it (under the zone lock) */
static int zg_keyval_sync_pending(zg_keyval_sh_t *sh, const unsigned char *k, size_t len)
{
    const char *text;
    char buf[64];
    size_t tlen;

    if (sh->njournal == 0) {
        return 0;
    }
    tlen = zg_keyval_text(sh, k, len, buf, &text);
    return zg_keyval_pending(sh, text, tlen);
}

enum { ZG_KEYVAL_BY_API = 0, ZG_KEYVAL_BY_LOAD, ZG_KEYVAL_BY_SYNC };

/* zg_keyval_set; by: the API (journaled), a state file, or Redis (not journaled;
 * ZG_BUSY when the key has a write in the journal) */
static int zg_keyval_store(zg_zone_t *zone, const char *key, size_t klen, const char *val,
                           size_t vlen, int only_new, zg_msec_t now, int by)
{
    zg_keyval_sh_t *sh = zone->data;
    zg_keyval_node_t *kv, *old;
    const unsigned char *k;
    unsigned char ip[18];
    size_t len, size;
    zg_keyval_key_t kk;

    if (zg_keyval_stored_key(sh, key, klen, ip, &k, &len) != ZG_OK) {
        return ZG_DECLINED;
    }
    if (vlen > ZG_KEYVAL_VALUE_MAX) {
        return ZG_ERROR;
    }
    size = sizeof(zg_keyval_node_t) + len + vlen;
    if (size > (zone->pool->pages_total * ZG_SLAB_PAGE_SIZE) / 2) {
        return ZG_ERROR;
    }

    zg_shmtx_lock(&zone->pool->mutex);
    if (by == ZG_KEYVAL_BY_SYNC && zg_keyval_sync_pending(sh, k, len)) {
        zg_shmtx_unlock(&zone->pool->mutex);
        return ZG_BUSY;
    }
    old = zg_keyval_live(zone, sh, k, len, now);
    if (old != NULL && only_new) {
        zg_shmtx_unlock(&zone->pool->mutex);
        return ZG_BUSY;
    }
    for (;;) {
        kv = zg_slab_alloc_locked(zone->pool, size);
        if (kv != NULL || zg_queue_empty(&sh->queue)) {
            break;
        }
        old = zg_queue_data(zg_queue_last(&sh->queue), zg_keyval_node_t, queue);
        zg_keyval_free_node(zone, sh, old);
        sh->stats.evicted++;
        sh->stats.changes++;
    }
    if (kv == NULL) {
        zg_shmtx_unlock(&zone->pool->mutex);
        return ZG_ERROR;
    }
    /* the previous value goes once the new one has its memory (unless evicted) */
    old = zg_keyval_find(sh, k, len);
    if (old != NULL) {
        zg_keyval_free_node(zone, sh, old);
    }
    kv->node.key = zg_hash32(k, len);
    kv->klen = (uint32_t)len;
    kv->vlen = (uint32_t)vlen;
    kv->expire = sh->timeout ? now + sh->timeout : 0;
    memcpy(kv->data, k, len);
    memcpy(kv->data + len, val, vlen);
    kk.data = k;
    kk.len = len;
    zg_rbtree_insert_keyed(&sh->rbtree, &kv->node, zg_keyval_cmp, &kk);
    zg_queue_insert_head(&sh->queue, &kv->queue);
    (*zg_keyval_len_count(sh, kv))++;
    sh->stats.entries++;
    sh->stats.changes++;
    if (by == ZG_KEYVAL_BY_API) {
        zg_keyval_journal(zone, sh, ZG_KEYVAL_OP_SET, k, len, val, vlen);
    }
    zg_shmtx_unlock(&zone->pool->mutex);
    return ZG_OK;
}

int zg_keyval_set(zg_zone_t *zone, const char *key, size_t klen, const char *val,
                  size_t vlen, int only_new, zg_msec_t now)
{
    return zg_keyval_store(zone, key, klen, val, vlen, only_new, now, ZG_KEYVAL_BY_API);
}

int zg_keyval_has(zg_zone_t *zone, const char *key, size_t klen, zg_msec_t now)
{
    zg_keyval_sh_t *sh = zone->data;
    const unsigned char *k;
    unsigned char ip[18];
    size_t len;
    int has;

    if (zg_keyval_stored_key(sh, key, klen, ip, &k, &len) != ZG_OK) {
        return 0;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    has = zg_keyval_live(zone, sh, k, len, now) != NULL;
    zg_shmtx_unlock(&zone->pool->mutex);
    return has;
}

static int zg_keyval_remove(zg_zone_t *zone, const char *key, size_t klen, int by)
{
    zg_keyval_sh_t *sh = zone->data;
    zg_keyval_node_t *kv;
    const unsigned char *k;
    unsigned char ip[18];
    size_t len;

    if (zg_keyval_stored_key(sh, key, klen, ip, &k, &len) != ZG_OK) {
        return ZG_DECLINED;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    if (by == ZG_KEYVAL_BY_SYNC && zg_keyval_sync_pending(sh, k, len)) {
        zg_shmtx_unlock(&zone->pool->mutex);
        return ZG_BUSY;
    }
    kv = zg_keyval_live(zone, sh, k, len, zg_time_msec());
    if (kv != NULL) {
        zg_keyval_free_node(zone, sh, kv);
        sh->stats.changes++;
    }
    /* another host may hold the key even when this one does not */
    if (by == ZG_KEYVAL_BY_API) {
        zg_keyval_journal(zone, sh, ZG_KEYVAL_OP_DEL, k, len, NULL, 0);
    }
    zg_shmtx_unlock(&zone->pool->mutex);
    return kv != NULL ? ZG_OK : ZG_DECLINED;
}

int zg_keyval_delete(zg_zone_t *zone, const char *key, size_t klen)
{
    return zg_keyval_remove(zone, key, klen, ZG_KEYVAL_BY_API);
}

static void zg_keyval_clear_locked(zg_zone_t *zone, zg_keyval_sh_t *sh)
{
    while (!zg_queue_empty(&sh->queue)) {
        zg_keyval_free_node(zone, sh,
                            zg_queue_data(zg_queue_last(&sh->queue), zg_keyval_node_t, queue));
    }
    sh->stats.changes++;
}

void zg_keyval_clear(zg_zone_t *zone)
{
    zg_keyval_sh_t *sh = zone->data;

    zg_shmtx_lock(&zone->pool->mutex);
    zg_keyval_clear_locked(zone, sh);
    zg_keyval_journal(zone, sh, ZG_KEYVAL_OP_CLEAR, NULL, 0, NULL, 0);
    zg_shmtx_unlock(&zone->pool->mutex);
}

size_t zg_keyval_each(zg_zone_t *zone, zg_msec_t now, zg_keyval_each_pt cb, void *arg)
{
    zg_keyval_sh_t *sh = zone->data;
    zg_keyval_node_t *kv;
    zg_queue_t *q;
    const char *k;
    char kbuf[64];
    size_t n = 0, klen;

    zg_shmtx_lock(&zone->pool->mutex);
    for (q = zg_queue_head(&sh->queue); q != zg_queue_sentinel(&sh->queue);
         q = zg_queue_next(q)) {
        kv = zg_queue_data(q, zg_keyval_node_t, queue);
        if (kv->expire != 0 && kv->expire <= now) {
            continue;
        }
        klen = zg_keyval_key_text(sh, kv, kbuf, &k);
        cb(arg, k, klen, (const char *)kv->data + kv->klen, kv->vlen);
        n++;
    }
    zg_shmtx_unlock(&zone->pool->mutex);
    return n;
}

void zg_keyval_stats(zg_zone_t *zone, zg_keyval_stats_t *out)
{
    zg_keyval_sh_t *sh = zone->data;

    if (sh == NULL || zone->pool == NULL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    *out = sh->stats;
    zg_shmtx_unlock(&zone->pool->mutex);
}

/* ---- sync ---- */

zg_sync_stats_t *zg_keyval_sync_shared(zg_zone_t *zone)
{
    zg_keyval_sh_t *sh = zone->data;

    return sh != NULL && zone->pool != NULL && sh->synced ? &sh->sync : NULL;
}

int zg_keyval_sync_peek(zg_zone_t *zone, int max, zg_keyval_sync_pt cb, void *arg, int *more)
{
    zg_keyval_sh_t *sh = zone->data;
    zg_keyval_op_t *j;
    zg_queue_t *q;
    int n = 0;

    zg_shmtx_lock(&zone->pool->mutex);
    for (q = zg_queue_last(&sh->journal); q != zg_queue_sentinel(&sh->journal) && n < max;
         q = zg_queue_prev(q)) {
        j = zg_queue_data(q, zg_keyval_op_t, queue);
        if (cb(arg, j->op, (const char *)j->data, j->klen, (const char *)j->data + j->klen,
               j->vlen) != ZG_OK) {
            break;
        }
        n++;
    }
    *more = (uint32_t)n < sh->njournal;
    zg_shmtx_unlock(&zone->pool->mutex);
    return n;
}

void zg_keyval_sync_ack(zg_zone_t *zone, int n)
{
    zg_keyval_sh_t *sh = zone->data;
    zg_queue_t *q;

    zg_shmtx_lock(&zone->pool->mutex);
    while (n-- > 0 && !zg_queue_empty(&sh->journal)) {
        zg_keyval_op_t *j = zg_queue_data(zg_queue_last(&sh->journal), zg_keyval_op_t, queue);

        q = &j->queue;
        zg_queue_remove(q);
        sh->journal_bytes -= sizeof(*j) + j->klen + j->vlen;
        zg_slab_free_locked(zone->pool, j);
        sh->njournal--;
    }
    zg_shmtx_unlock(&zone->pool->mutex);
}

int zg_keyval_sync_apply(zg_zone_t *zone, const char *key, size_t klen, const char *val,
                         size_t vlen, zg_msec_t now)
{
    if (val == NULL) {
        int rc = zg_keyval_remove(zone, key, klen, ZG_KEYVAL_BY_SYNC);
        return rc == ZG_BUSY ? ZG_BUSY : ZG_OK;
    }
    return zg_keyval_store(zone, key, klen, val, vlen, 0, now, ZG_KEYVAL_BY_SYNC);
}

void zg_keyval_sync_reset(zg_zone_t *zone)
{
    zg_keyval_sh_t *sh = zone->data;
    zg_keyval_node_t *kv;
    zg_queue_t *q, *next;
    const char *text;
    char buf[64];
    size_t tlen;

    zg_shmtx_lock(&zone->pool->mutex);
    for (q = zg_queue_head(&sh->queue); q != zg_queue_sentinel(&sh->queue); q = next) {
        next = zg_queue_next(q);
        kv = zg_queue_data(q, zg_keyval_node_t, queue);
        tlen = zg_keyval_key_text(sh, kv, buf, &text);
        if (!zg_keyval_pending(sh, text, tlen)) {
            zg_keyval_free_node(zone, sh, kv);
        }
    }
    sh->stats.changes++;
    sh->cursor = 0;
    zg_shmtx_unlock(&zone->pool->mutex);
}

uint64_t zg_keyval_sync_cursor(zg_zone_t *zone)
{
    zg_keyval_sh_t *sh = zone->data;

    return __atomic_load_n(&sh->cursor, __ATOMIC_RELAXED);
}

void zg_keyval_sync_seen(zg_zone_t *zone, uint64_t cursor, uint64_t fleet)
{
    zg_keyval_sh_t *sh = zone->data;

    __atomic_store_n(&sh->cursor, cursor, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->fleet, fleet, __ATOMIC_RELAXED);
}

uint64_t zg_keyval_sync_fleet(zg_zone_t *zone)
{
    zg_keyval_sh_t *sh = zone->data;

    return sh != NULL ? __atomic_load_n(&sh->fleet, __ATOMIC_RELAXED) : 0;
}

/* ---- state files ---- */

static void zg_keyval_state_put(void *arg, const char *key, size_t klen, const char *val,
                                size_t vlen)
{
    json_t *o = arg;

    json_object_setn_new_nocheck(o, key, klen, json_stringn_nocheck(val, vlen));
}

int zg_keyval_state_save(zg_zone_t *zone, const char *path)
{
    json_t *o = json_object();
    char tmp[4096];
    int rc = ZG_ERROR;

    if (o == NULL) {
        return ZG_ERROR;
    }
    zg_keyval_each(zone, zg_time_msec(), zg_keyval_state_put, o);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        goto done;
    }
    if (json_dump_file(o, tmp, JSON_COMPACT) != 0) {
        zg_log_error(ZG_LOG_ERR, errno, "keyval_zone \"%s\": could not write state file \"%s\"",
                     zone->name, tmp);
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        zg_log_error(ZG_LOG_ERR, errno,
                     "keyval_zone \"%s\": could not rename \"%s\" to \"%s\"", zone->name, tmp,
                     path);
        unlink(tmp);
        goto done;
    }
    rc = ZG_OK;
done:
    json_decref(o);
    return rc;
}

int zg_keyval_state_load(zg_zone_t *zone, const char *path, zg_msec_t now)
{
    zg_keyval_sh_t *sh = zone->data;
    json_error_t jerr;
    json_t *o, *v;
    const char *key;
    size_t klen;
    void *it;
    int rc = ZG_OK;

    if (access(path, F_OK) != 0 && errno == ENOENT) {
        return ZG_DECLINED;
    }
    o = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (o == NULL) {
        zg_log_error(ZG_LOG_ERR, 0,
                     "keyval_zone \"%s\": state file \"%s\" is corrupt (%s at line %d), "
                     "starting empty",
                     zone->name, path, jerr.text, jerr.line);
        return ZG_ERROR;
    }
    if (!json_is_object(o)) {
        zg_log_error(ZG_LOG_ERR, 0,
                     "keyval_zone \"%s\": state file \"%s\" is corrupt (not an object), "
                     "starting empty",
                     zone->name, path);
        json_decref(o);
        return ZG_ERROR;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    zg_keyval_clear_locked(zone, sh);
    zg_shmtx_unlock(&zone->pool->mutex);
    for (it = json_object_iter(o); it != NULL; it = json_object_iter_next(o, it)) {
        key = json_object_iter_key(it);
        klen = json_object_iter_key_len(it);
        v = json_object_iter_value(it);
        if (!json_is_string(v)
            || zg_keyval_store(zone, key, klen, json_string_value(v), json_string_length(v),
                               0, now, ZG_KEYVAL_BY_LOAD) == ZG_DECLINED) {
            zg_log_error(ZG_LOG_ERR, 0,
                         "keyval_zone \"%s\": state file \"%s\" is corrupt (bad entry "
                         "\"%.*s\"), starting empty",
                         zone->name, path, (int)zg_min(klen, (size_t)64), key);
            zg_shmtx_lock(&zone->pool->mutex);
            zg_keyval_clear_locked(zone, sh);
            zg_shmtx_unlock(&zone->pool->mutex);
            rc = ZG_ERROR;
            break;
        }
    }
    json_decref(o);
    if (sh != NULL) {
        zg_shmtx_lock(&zone->pool->mutex);
        sh->stats.changes = 0;
        zg_shmtx_unlock(&zone->pool->mutex);
    }
    return rc;
}

/* ---- the variable ---- */

/* the value for the request's key: ZG_DECLINED (not found: empty, "-" in logs) when
 * the zone holds none.  A request reads it once (the variables cache it). */
static int zg_keyval_var_get(zg_var_ctx_t *ctx, const void *data, zg_str_t *out)
{
    const zg_keyval_var_t *v = data;
    char buf[ZG_KEYVAL_VALUE_MAX];
    zg_str_t key;
    size_t n;
    char *p;

    if (v->zone->zone->pool == NULL || zg_cv_eval_str(v->key, ctx, &key) != ZG_OK
        || key.len == 0) {
        return ZG_DECLINED;
    }
    n = zg_keyval_match(v->zone->zone, key.data, key.len, zg_time_msec(), buf, sizeof(buf));
    if (n == 0) {
        return ZG_DECLINED;
    }
    n = zg_min(n, sizeof(buf));
    p = zg_var_alloc(ctx, n);
    if (p == NULL) {
        return ZG_DECLINED;
    }
    memcpy(p, buf, n);
    out->data = p;
    out->len = n;
    return ZG_OK;
}

/* ---- configuration ---- */

const zg_zone_kind_t zg_keyval_zone_kind = { "keyval", zg_keyval_zone_init };

zg_keyval_zone_conf_t *zg_keyval_zone(const zg_conf_t *conf, const char *name)
{
    zg_keyval_main_conf_t *kmcf = zg_main_conf_of(conf, zg_keyval_module);

    for (int i = 0; kmcf != NULL && i < kmcf->nzones; i++) {
        if (strcmp(kmcf->zones[i]->zone->name, name) == 0) {
            return kmcf->zones[i];
        }
    }
    return NULL;
}

static int zg_keyval_zone_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_keyval_main_conf_t *kmcf = conf;
    zg_keyval_zone_conf_t *kz, **slot;
    zg_str_t *a = cf->args, *zone_arg = NULL;
    zg_zone_t *z = NULL;
    zg_str_t v;
    int rc;

    (void)cmd;
    kz = zg_conf_alloc(cf->conf, sizeof(*kz));
    if (kz == NULL) {
        return zg_conf_nomem(cf);
    }
    for (int i = 1; i < cf->nargs; i++) {
        if (zg_conf_prefix(&a[i], "zone=")) {
            zone_arg = &a[i];
        } else if (zg_conf_prefix(&a[i], "state=")) {
            v.data = a[i].data + 6;
            v.len = a[i].len - 6;
            if (v.len == 0) {
                return zg_conf_bad_param(cf, &a[i]);
            }
            kz->state = zg_conf_path(cf, &v);
            if (kz->state == NULL) {
                return zg_conf_nomem(cf);
            }
        } else if (zg_conf_prefix(&a[i], "timeout=")) {
            kz->timeout = zg_conf_parse_time(a[i].data + 8, a[i].len - 8);
            if (kz->timeout == ZG_UNSET_MSEC || kz->timeout == 0) {
                return zg_conf_bad_param(cf, &a[i]);
            }
        } else if ((rc = zg_sync_conf_param(cf, &a[i], &kz->sync)) != ZG_DECLINED) {
            if (rc == ZG_ERROR) {
                return ZG_ERROR;
            }
        } else if (zg_conf_eq(&a[i], "type=string")) {
            kz->type = ZG_KEYVAL_STRING;
        } else if (zg_conf_eq(&a[i], "type=ip")) {
            kz->type = ZG_KEYVAL_IP;
        } else if (zg_conf_eq(&a[i], "type=prefix")) {
            kz->type = ZG_KEYVAL_PREFIX;
        } else {
            return zg_conf_bad_param(cf, &a[i]);
        }
    }
    if (zg_sync_conf_done(cf, &kz->sync) != ZG_OK) {
        return ZG_ERROR;
    }
    if (zone_arg == NULL) {
        return zg_conf_error(cf, "\"%s\" must have \"zone\" parameter", cf->name);
    }
    if (zg_conf_zone_param(cf, zone_arg, &zg_keyval_zone_kind, &z) != ZG_OK) {
        return ZG_ERROR;
    }
    if (z->conf != NULL) {
        return zg_conf_error(cf, "duplicate zone \"%s\"", z->name);
    }
    for (int i = 0; kz->state != NULL && i < kmcf->nzones; i++) {
        if (kmcf->zones[i]->state != NULL && strcmp(kmcf->zones[i]->state, kz->state) == 0) {
            return zg_conf_error(cf, "keyval_zone \"%s\" has the state file \"%s\" of "
                                     "keyval_zone \"%s\"",
                                 z->name, kz->state, kmcf->zones[i]->zone->name);
        }
    }
    kz->zone = z;
    z->conf = kz;
    slot = zg_conf_push(cf->conf, kmcf->zones, kmcf->nzones);
    if (slot == NULL) {
        return zg_conf_nomem(cf);
    }
    *slot = kz;
    return ZG_OK;
}

static int zg_keyval_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_keyval_main_conf_t *kmcf = conf;
    zg_vars_t *vs = zg_conf_vars(cf->conf);
    zg_keyval_var_t *v, **list = kmcf->vars, **slot;
    zg_str_t *a = cf->args;
    int rc;

    (void)cmd;
    if (a[2].len < 2 || a[2].data[0] != '$') {
        return zg_conf_error(cf, "invalid variable name \"%s\"", a[2].data);
    }
    for (size_t i = 1; i < a[2].len; i++) {
        char c = a[2].data[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_')) {
            return zg_conf_error(cf, "invalid variable name \"%s\"", a[2].data);
        }
    }
    if (zg_var_builtin(a[2].data + 1, a[2].len - 1)) {
        return zg_conf_error(cf, "the \"%s\" variable is built in", a[2].data + 1);
    }
    if (!zg_conf_prefix(&a[3], "zone=") || a[3].len == 5) {
        return zg_conf_bad_param(cf, &a[3]);
    }
    v = zg_conf_alloc(cf->conf, sizeof(*v));
    if (v == NULL || vs == NULL) {
        return zg_conf_nomem(cf);
    }
    v->key = zg_conf_cv(cf, a[1].data, a[1].len);
    if (v->key == NULL) {
        return ZG_ERROR;
    }
    v->name = zg_conf_strdup(cf->conf, a[2].data + 1, a[2].len - 1);
    v->zone_name = zg_conf_strdup(cf->conf, a[3].data + 5, a[3].len - 5);
    if (v->name == NULL || v->zone_name == NULL) {
        return zg_conf_nomem(cf);
    }
    v->file = cf->file;
    v->line = cf->line;
    rc = zg_vars_define(vs, a[2].data + 1, a[2].len - 1, zg_keyval_var_get, v, 0, NULL);
    if (rc == ZG_ERROR) {
        return zg_conf_nomem(cf);
    }
    if (rc == ZG_DECLINED) {
        return zg_conf_error(cf, "the duplicate \"%s\" variable", a[2].data + 1);
    }
    /* kept in a list of pointers to resolve zones after parsing */
    slot = zg_conf_push(cf->conf, list, kmcf->nvars);
    kmcf->vars = list;
    if (slot == NULL) {
        return zg_conf_nomem(cf);
    }
    *slot = v;
    return ZG_OK;
}

static void *zg_keyval_create_main_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_keyval_main_conf_t));
}

/* every keyval gets its zone */
static int zg_keyval_init_main_conf(zg_cf_t *cf, void *conf)
{
    zg_keyval_main_conf_t *kmcf = conf;
    zg_keyval_var_t **vars = kmcf->vars;

    for (int i = 0; i < kmcf->nvars; i++) {
        zg_keyval_var_t *v = vars[i];
        for (int k = 0; k < kmcf->nzones; k++) {
            if (strcmp(kmcf->zones[k]->zone->name, v->zone_name) == 0) {
                v->zone = kmcf->zones[k];
            }
        }
        if (v->zone == NULL) {
            return zg_conf_error_at(cf, v->file, v->line,
                                    "unknown keyval_zone \"%s\" in \"keyval\" directive",
                                    v->zone_name);
        }
    }
    return ZG_OK;
}

/* ---- master: state files ---- */

static void zg_keyval_save_due(zg_conf_t *conf, int force)
{
    zg_keyval_main_conf_t *kmcf = zg_keyval_main_conf(conf);
    zg_keyval_stats_t st;

    for (int i = 0; kmcf != NULL && i < kmcf->nzones; i++) {
        zg_keyval_zone_conf_t *kz = kmcf->zones[i];
        if (kz->state == NULL || kz->zone->pool == NULL || kz->zone->data == NULL) {
            continue;
        }
        zg_keyval_stats(kz->zone, &st);
        if (!force && st.changes == kz->saved) {
            continue;
        }
        if (zg_keyval_state_save(kz->zone, kz->state) == ZG_OK) {
            kz->saved = st.changes;
        }
    }
}

static int zg_keyval_init_master(zg_conf_t *conf)
{
    zg_keyval_main_conf_t *kmcf = zg_keyval_main_conf(conf);
    zg_keyval_stats_t st;

    for (int i = 0; kmcf != NULL && i < kmcf->nzones; i++) {
        zg_keyval_zone_conf_t *kz = kmcf->zones[i];
        if (kz->state == NULL || kz->zone->pool == NULL || kz->zone->data == NULL) {
            continue;
        }
        if (!kz->zone->reused) {
            zg_keyval_state_load(kz->zone, kz->state, zg_time_msec());
        }
        zg_keyval_stats(kz->zone, &st);
        kz->saved = st.changes;
    }
    return ZG_OK;
}

static void zg_keyval_tick(zg_conf_t *conf)
{
    zg_keyval_save_due(conf, 0);
}

static void zg_keyval_exit_master(zg_conf_t *conf)
{
    zg_keyval_save_due(conf, 0);
}

/* ---- /metrics ---- */

static void zg_keyval_metrics(zg_buf_t *b, const zg_conf_t *conf)
{
    zg_keyval_stats_t st;
    zg_zone_t *z;

    if (zg_admin_zones_of(conf, ZG_ZONE_KEYVAL) == 0) {
        return;
    }
    zg_admin_family(b, "zonegate_keyval_entries", "gauge", "Entries in the keyval zone now.");
    for (z = conf->zones.head; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_KEYVAL) {
            zg_keyval_stats(z, &st);
            zg_admin_sample(b, "zonegate_keyval_entries", st.entries, "zone", z->name, NULL);
        }
    }
    zg_admin_family(b, "zonegate_keyval_evictions_total", "counter",
                    "Entries dropped from the keyval zone to make room.");
    for (z = conf->zones.head; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_KEYVAL) {
            zg_keyval_stats(z, &st);
            zg_admin_sample(b, "zonegate_keyval_evictions_total", st.evicted, "zone", z->name,
                            NULL);
        }
    }
    zg_admin_family(b, "zonegate_keyval_expired_total", "counter",
                    "Entries dropped from the keyval zone after their timeout.");
    for (z = conf->zones.head; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_KEYVAL) {
            zg_keyval_stats(z, &st);
            zg_admin_sample(b, "zonegate_keyval_expired_total", st.expired, "zone", z->name,
                            NULL);
        }
    }
}

static const zg_command_t zg_keyval_commands[] = {
    { "keyval_zone", ZG_CTX_HTTP, 0, 1, 7, zg_keyval_zone_directive, ZG_MAIN_CONF, 0, NULL },
    { "keyval", ZG_CTX_HTTP, 0, 3, 3, zg_keyval_directive, ZG_MAIN_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_keyval_module = {
    .name = "keyval",
    .commands = zg_keyval_commands,
    .create_main_conf = zg_keyval_create_main_conf,
    .init_main_conf = zg_keyval_init_main_conf,
    .init_master = zg_keyval_init_master,
    .exit_master = zg_keyval_exit_master,
    .tick = zg_keyval_tick,
    .metrics = zg_keyval_metrics,
};
