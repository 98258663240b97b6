/* zg_limit_req.c — the limit_req module: a leaky bucket per key in a shared zone
 * (nginx's limit_req), its directives, its preaccess phase handler, its
 * RateLimit headers and its /metrics families. */
#include "zg_limit_req.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "zg_admin.h"
#include "zg_log.h"
#include "zg_queue.h"
#include "zg_rbtree.h"
#include "zg_request.h"
#include "zg_stream.h"

#define ZG_LIMIT_REQ_KEY_MAX 65535
#define ZG_LIMIT_REQ_FRESH UINT32_MAX           /* node->excess: never accounted */
#define ZG_LIMIT_REQ_EXCESS_MAX (UINT32_MAX - 1)
#define ZG_LIMIT_REQ_REBASE ((uint64_t)1 << 31) /* node->last must stay below 2^32 */
#define ZG_LIMIT_REQ_STACK 8

/*
 * A node starts at its zg_rbtree_node_t (key = hash) and continues at the
 * tree node's color byte, as nginx lays it out: with a 4-byte key the whole
 * entry is 32 + 28 + 4 = 64 bytes, one 64-byte slab slot.
 */
typedef struct {
    unsigned char color;   /* the tree node's */
    uint8_t count;         /* lookups between lookup and account (processes in the handler) */
    uint16_t len;
    uint32_t excess;       /* thousandths of a request; FRESH = never accounted */
    zg_queue_t queue;      /* LRU: head = most recently used */
    uint32_t last;         /* msec since sh->epoch */
    unsigned char data[];
} zg_limit_req_node_t;

/* the extension of a sync zone's node, after its key (8-byte aligned) */
typedef struct {
    zg_queue_t dirty;      /* in sync->dirty; detached (points to itself) when not listed */
    uint32_t admitted;     /* requests charged here since the last take */
    uint32_t len;          /* the node's key length: leads back to the node */
} zg_limit_req_sync_node_t;

typedef struct {
    zg_limit_req_sync_stats_t stats;
    zg_queue_t dirty;      /* head = listed longest ago */
} zg_limit_req_sync_sh_t;

typedef struct {
    zg_rbtree_t rbtree;
    zg_rbtree_node_t sentinel;
    zg_queue_t queue;
    zg_limit_req_stats_t stats;
    zg_limit_req_sync_sh_t *sync; /* NULL unless the zone was created with sync */
    uint64_t rate;         /* requests per 1000 s: 1 corresponds to 0.001 r/s */
    uint64_t epoch;        /* msec: node->last counts from here */
    size_t key_len;
    size_t rate_len;
    int varrate;           /* made with rate=$var: every node keeps its last rate */
    char text[];           /* key text, then rate text */
} zg_limit_req_sh_t;

typedef struct {
    zg_limit_req_node_t *node; /* held (count++) between lookup and account */
    uint64_t excess;           /* after this request, for the RateLimit fields */
    uint64_t rate;             /* in force for this request (rate=$var), per 1000 s */
    int used;
} zg_limit_req_state_t;

typedef struct {
    const char *data;
    size_t len;
} zg_limit_req_key_t;

_Static_assert(2 * ZG_MAX_WORKERS < UINT8_MAX, "node->count must hold every process");

static inline zg_limit_req_node_t *zg_limit_req_of(const zg_rbtree_node_t *n)
{
    return (zg_limit_req_node_t *)(void *)&((zg_rbtree_node_t *)n)->color;
}

static inline zg_rbtree_node_t *zg_limit_req_tree_node(zg_limit_req_node_t *lr)
{
    return (zg_rbtree_node_t *)(void *)((char *)lr - offsetof(zg_rbtree_node_t, color));
}

size_t zg_limit_req_node_size(size_t key_len)
{
    return offsetof(zg_rbtree_node_t, color) + offsetof(zg_limit_req_node_t, data) + key_len;
}

static inline size_t zg_limit_req_sync_off(size_t key_len)
{
    return zg_align(offsetof(zg_limit_req_node_t, data) + key_len, 8);
}

static inline zg_limit_req_sync_node_t *zg_limit_req_sync_of(zg_limit_req_node_t *lr)
{
    return (zg_limit_req_sync_node_t *)(void *)((char *)lr + zg_limit_req_sync_off(lr->len));
}

/* a node's end, from the node: the key, then a sync zone's extension */
static inline size_t zg_limit_req_node_end(const zg_limit_req_sh_t *sh, size_t key_len)
{
    if (sh->sync == NULL) {
        return offsetof(zg_limit_req_node_t, data) + key_len;
    }
    return zg_limit_req_sync_off(key_len) + sizeof(zg_limit_req_sync_node_t);
}

/* bytes of a node in this zone: sync zones add the extension after the key, zones
 * made with a variable rate the key's last rate (per 1000 s) after that */
static inline size_t zg_limit_req_alloc_size(const zg_limit_req_sh_t *sh, size_t key_len)
{
    size_t end = zg_limit_req_node_end(sh, key_len);

    if (sh->varrate) {
        end = zg_align(end, 4) + sizeof(uint32_t);
    }
    return offsetof(zg_rbtree_node_t, color) + end;
}

static inline uint32_t *zg_limit_req_rate_slot(const zg_limit_req_sh_t *sh,
                                               zg_limit_req_node_t *lr)
{
    return (uint32_t *)(void *)((char *)lr + zg_align(zg_limit_req_node_end(sh, lr->len), 4));
}

/* the rate in force for a node: its last request's with a variable rate */
static inline uint64_t zg_limit_req_node_rate(const zg_limit_req_sh_t *sh,
                                              zg_limit_req_node_t *lr)
{
    return sh->varrate ? *zg_limit_req_rate_slot(sh, lr) : sh->rate;
}

static inline void zg_limit_req_set_rate(const zg_limit_req_sh_t *sh, zg_limit_req_node_t *lr,
                                         uint64_t rate)
{
    if (sh->varrate) {
        *zg_limit_req_rate_slot(sh, lr) = (uint32_t)zg_min(rate, (uint64_t)UINT32_MAX);
    }
}

/* lists a sync node as dirty; charged: one more request admitted here.  Lock held. */
static inline void zg_limit_req_sync_mark(zg_limit_req_sh_t *sh, zg_limit_req_node_t *lr,
                                          int charged)
{
    zg_limit_req_sync_node_t *sn;

    if (sh->sync == NULL) {
        return;
    }
    sn = zg_limit_req_sync_of(lr);
    if (charged && sn->admitted < UINT32_MAX) {
        sn->admitted++;
    }
    if (zg_queue_empty(&sn->dirty)) {
        zg_queue_insert_tail(&sh->sync->dirty, &sn->dirty);
    }
}

static int zg_limit_req_cmp(const zg_rbtree_node_t *n, const void *arg)
{
    const zg_limit_req_node_t *lr = zg_limit_req_of(n);
    const zg_limit_req_key_t *k = arg;

    return zg_rbtree_key_cmp(lr->data, lr->len, k->data, k->len);
}

/* "10r/s" or "30r/m" into requests per 1000 s; ZG_ERROR if it is neither or 0 */
static int zg_limit_req_parse_rate(const char *r, size_t len, uint64_t *out)
{
    int64_t scale, n;

    if (len > 3 && memcmp(r + len - 3, "r/s", 3) == 0) {
        scale = 1;
    } else if (len > 3 && memcmp(r + len - 3, "r/m", 3) == 0) {
        scale = 60;
    } else {
        return ZG_ERROR;
    }
    n = zg_conf_atoi(r, len - 3);
    if (n <= 0) {
        return ZG_ERROR;
    }
    *out = (uint64_t)(n * 1000 / scale);
    return *out > 0 ? ZG_OK : ZG_ERROR;
}

/* rate=$var: the rate of this request, default= when empty or not a rate */
static uint64_t zg_limit_req_rate_of(const zg_limit_req_zone_conf_t *zc, const zg_var_ctx_t *ctx)
{
    char buf[32];
    size_t len = zg_cv_eval(zc->rate_cv, ctx, 0, buf, sizeof(buf));
    uint64_t rate;

    if (len == 0 || len > sizeof(buf) || zg_limit_req_parse_rate(buf, len, &rate) != ZG_OK) {
        return zc->rate;
    }
    return rate;
}

/* "10r/s" or "30r/m" for a rate in requests per 1000 s */
static void zg_limit_req_rate_text(uint64_t rate, char *buf, size_t len)
{
    if (rate % 1000 == 0) {
        snprintf(buf, len, "%llur/s", (unsigned long long)(rate / 1000));
    } else {
        snprintf(buf, len, "%llur/m", (unsigned long long)(rate * 60 / 1000));
    }
}

int zg_limit_req_zone_init(zg_zone_t *zone, void *old_data)
{
    zg_limit_req_zone_conf_t *zc = zone->conf;
    zg_limit_req_sh_t *sh;
    const char *key, *rate_text;
    char rbuf[64];
    size_t key_len, rate_len;

    if (zc == NULL || zone->pool == NULL) {
        zg_log_error(ZG_LOG_EMERG, 0, "limit_req_zone \"%s\" has no configuration", zone->name);
        return ZG_ERROR;
    }

    key = zc->key_text != NULL ? zc->key_text : "";
    key_len = strlen(key);
    if (zc->rate_text != NULL) {
        rate_text = zc->rate_text;
    } else {
        zg_limit_req_rate_text(zc->rate, rbuf, sizeof(rbuf));
        rate_text = rbuf;
    }
    rate_len = strlen(rate_text);

    if (old_data != NULL) {
        sh = old_data;
        if (sh->key_len != key_len || memcmp(sh->text, key, key_len) != 0) {
            zg_log_error(ZG_LOG_EMERG, 0,
                         "limit_req_zone \"%s\" uses the \"%s\" key while previously it "
                         "used the \"%.*s\" key",
                         zone->name, key, (int)sh->key_len, sh->text);
            return ZG_ERROR;
        }
        if (sh->rate != zc->rate) {
            zg_log_error(ZG_LOG_EMERG, 0,
                         "limit_req_zone \"%s\" uses the \"%s\" rate while previously it "
                         "used the \"%.*s\" rate",
                         zone->name, rate_text, (int)sh->rate_len, sh->text + sh->key_len);
            return ZG_ERROR;
        }
        if (zc->sync.mode != ZG_SYNC_NONE && sh->sync == NULL) {
            zg_log_error(ZG_LOG_EMERG, 0,
                         "limit_req_zone \"%s\" has \"sync\" while previously it had not: "
                         "a zone gains sync only when it is created (change its name or size)",
                         zone->name);
            return ZG_ERROR;
        }
        zone->data = sh;
        zone->pool->data = sh;
        return ZG_OK;
    }

    sh = zg_slab_calloc(zone->pool, sizeof(zg_limit_req_sh_t) + key_len + rate_len + 1);
    if (sh == NULL) {
        zg_log_error(ZG_LOG_EMERG, 0, "limit_req_zone \"%s\": no memory for the zone root",
                     zone->name);
        return ZG_ERROR;
    }

    if (zc->sync.mode != ZG_SYNC_NONE) {
        sh->sync = zg_slab_calloc(zone->pool, sizeof(zg_limit_req_sync_sh_t));
        if (sh->sync == NULL) {
            zg_log_error(ZG_LOG_EMERG, 0, "limit_req_zone \"%s\": no memory for sync",
                         zone->name);
            return ZG_ERROR;
        }
        zg_queue_init(&sh->sync->dirty);
    }
    zg_rbtree_init(&sh->rbtree, &sh->sentinel, zg_rbtree_insert_value);
    zg_queue_init(&sh->queue);
    sh->rate = zc->rate;
    sh->varrate = zc->rate_cv != NULL;
    sh->epoch = 0;
    sh->key_len = key_len;
    sh->rate_len = rate_len;
    memcpy(sh->text, key, key_len);
    memcpy(sh->text + key_len, rate_text, rate_len);

    zone->pool->data = sh;
    zone->data = sh;
    return ZG_OK;
}

/* node->last as an absolute msec */
static inline int64_t zg_limit_req_last(zg_limit_req_sh_t *sh, zg_limit_req_node_t *lr)
{
    return (int64_t)(sh->epoch + lr->last);
}

static inline uint32_t zg_limit_req_rel(zg_limit_req_sh_t *sh, zg_msec_t now)
{
    return now > sh->epoch ? (uint32_t)zg_min(now - sh->epoch, (uint64_t)UINT32_MAX) : 0;
}

/* Keeps node->last (32 bits) exact: once now is 2^31 ms past the epoch the
 * epoch moves to now - 2^30 and every node is re-based (older ones clamp to
 * the new epoch: 12 days idle, long drained).  Lock held. */
static void zg_limit_req_rebase(zg_limit_req_sh_t *sh, zg_msec_t now)
{
    zg_limit_req_node_t *lr;
    zg_queue_t *q;
    uint64_t epoch, abs;

    if (now < sh->epoch || now - sh->epoch < ZG_LIMIT_REQ_REBASE) {
        return;
    }
    epoch = now - ZG_LIMIT_REQ_REBASE / 2;
    for (q = zg_queue_head(&sh->queue); q != zg_queue_sentinel(&sh->queue);
         q = zg_queue_next(q)) {
        lr = zg_queue_data(q, zg_limit_req_node_t, queue);
        abs = sh->epoch + lr->last;
        lr->last = abs > epoch ? (uint32_t)(abs - epoch) : 0;
    }
    sh->epoch = epoch;
}

/* rate * ms / 1000 without overflow (saturates) */
static inline uint64_t zg_limit_req_drain(uint64_t rate, int64_t ms)
{
    if (ms <= 0) {
        return 0;
    }
    if (rate > UINT64_MAX / (uint64_t)ms) {
        return UINT64_MAX;
    }
    return rate * (uint64_t)ms / 1000;
}

/* nginx: excess = node->excess - rate * ms / 1000 + 1000, at least 0, where a
 * clock that went back by up to 60 s counts as 0 ms and further back as 1 ms.
 * Sets *msp to the ms used. */
static uint64_t zg_limit_req_excess(zg_limit_req_sh_t *sh, zg_limit_req_node_t *lr,
                                    zg_msec_t now, int64_t *msp, uint64_t rate)
{
    int64_t ms;
    uint64_t drain;

    ms = (int64_t)now - zg_limit_req_last(sh, lr);
    if (ms < -60000) {
        ms = 1;
    } else if (ms < 0) {
        ms = 0;
    }
    *msp = ms;

    if (lr->excess == ZG_LIMIT_REQ_FRESH) {
        /* nginx's last = 0: infinitely long ago */
        return 0;
    }
    drain = zg_limit_req_drain(rate, ms);
    if (drain >= (uint64_t)lr->excess + 1000) {
        return 0;
    }
    return (uint64_t)lr->excess + 1000 - drain;
}

static inline uint32_t zg_limit_req_store(uint64_t excess)
{
    return (uint32_t)zg_min(excess, (uint64_t)ZG_LIMIT_REQ_EXCESS_MAX);
}

static void zg_limit_req_free_node(zg_zone_t *zone, zg_limit_req_sh_t *sh,
                                   zg_limit_req_node_t *lr)
{
    zg_queue_remove(&lr->queue);
    if (sh->sync != NULL) {
        zg_limit_req_sync_node_t *sn = zg_limit_req_sync_of(lr);
        if (!zg_queue_empty(&sn->dirty)) {
            zg_queue_remove(&sn->dirty);
        }
    }
    zg_rbtree_delete(&sh->rbtree, zg_limit_req_tree_node(lr));
    zg_slab_free_locked(zone->pool, zg_limit_req_tree_node(lr));
    sh->stats.entries--;
    sh->stats.evicted++;
}

/* nginx's _expire: n == 1 frees one or two LRU entries that are idle for 60 s
 * and drained; n == 0 frees the LRU entry by force, then up to two such.
 * Stops at an entry some lookup holds.  Lock held. */
static void zg_limit_req_expire(zg_zone_t *zone, zg_limit_req_sh_t *sh, zg_msec_t now,
                                unsigned n)
{
    zg_limit_req_node_t *lr;
    zg_queue_t *q;
    int64_t ms;

    while (n < 3) {
        if (zg_queue_empty(&sh->queue)) {
            return;
        }
        q = zg_queue_last(&sh->queue);
        lr = zg_queue_data(q, zg_limit_req_node_t, queue);
        if (lr->count) {
            return;
        }
        if (n++ != 0 && lr->excess != ZG_LIMIT_REQ_FRESH) {
            ms = (int64_t)now - zg_limit_req_last(sh, lr);
            if (ms < 0) {
                ms = -ms;
            }
            if (ms < 60000) {
                return;
            }
            if (zg_limit_req_drain(zg_limit_req_node_rate(sh, lr), ms) < lr->excess) {
                return;
            }
        }
        zg_limit_req_free_node(zone, sh, lr);
    }
}

/* counts a request charged to this zone: delayed if its own limit delays it */
static void zg_limit_req_count_pass(zg_limit_req_sh_t *sh, const zg_limit_req_conf_t *limit,
                                    uint64_t excess, int dry_run)
{
    if (excess > limit->delay) {
        if (dry_run) {
            sh->stats.delayed_dry_run++;
        } else {
            sh->stats.delayed++;
        }
    } else {
        sh->stats.passed++;
    }
}

/* nginx's _lookup.  Lock held.  ZG_OK: accounted (the last limit); ZG_AGAIN:
 * found or made, held in st->node for account; ZG_BUSY: over burst;
 * ZG_ERROR: no memory even after expiry.  *ep gets the excess. */
static int zg_limit_req_lookup(const zg_limit_req_conf_t *limit, uint32_t hash,
                               const zg_limit_req_key_t *key, zg_msec_t now, int account,
                               int dry_run, uint64_t *ep, zg_limit_req_state_t *st)
{
    zg_zone_t *zone = limit->zone->zone;
    zg_limit_req_sh_t *sh = zone->data;
    zg_rbtree_node_t *node;
    zg_limit_req_node_t *lr;
    uint64_t excess;
    int64_t ms;
    size_t size;

    zg_limit_req_rebase(sh, now);

    node = zg_rbtree_lookup(&sh->rbtree, hash, zg_limit_req_cmp, key);
    if (node != NULL) {
        lr = zg_limit_req_of(node);
        zg_queue_remove(&lr->queue);
        zg_queue_insert_head(&sh->queue, &lr->queue);

        excess = zg_limit_req_excess(sh, lr, now, &ms, st->rate);
        zg_limit_req_set_rate(sh, lr, st->rate);
        *ep = excess;
        st->excess = excess;

        if (excess > limit->burst) {
            if (dry_run) {
                sh->stats.rejected_dry_run++;
            } else {
                sh->stats.rejected++;
            }
            zg_limit_req_sync_mark(sh, lr, 0);
            return ZG_BUSY;
        }
        if (account) {
            lr->excess = zg_limit_req_store(excess);
            if (ms) {
                lr->last = zg_limit_req_rel(sh, now);
            }
            zg_limit_req_count_pass(sh, limit, excess, dry_run);
            zg_limit_req_sync_mark(sh, lr, 1);
            return ZG_OK;
        }
        lr->count++;
        st->node = lr;
        return ZG_AGAIN;
    }

    *ep = 0;
    st->excess = 0;
    size = zg_limit_req_alloc_size(sh, key->len);

    zg_limit_req_expire(zone, sh, now, 1);
    node = zg_slab_alloc_locked(zone->pool, size);
    if (node == NULL) {
        zg_limit_req_expire(zone, sh, now, 0);
        node = zg_slab_alloc_locked(zone->pool, size);
        if (node == NULL) {
            sh->stats.alloc_fails++;
            if (dry_run) {
                sh->stats.rejected_dry_run++;
            } else {
                sh->stats.rejected++;
            }
            return ZG_ERROR;
        }
    }

    node->key = hash;
    lr = zg_limit_req_of(node);
    lr->len = (uint16_t)key->len;
    memcpy(lr->data, key->data, key->len);
    zg_limit_req_set_rate(sh, lr, st->rate);
    if (sh->sync != NULL) {
        zg_limit_req_sync_node_t *sn = zg_limit_req_sync_of(lr);
        zg_queue_init(&sn->dirty);
        sn->admitted = 0;
        sn->len = (uint32_t)key->len;
    }
    zg_rbtree_insert_keyed(&sh->rbtree, node, zg_limit_req_cmp, key);
    zg_queue_insert_head(&sh->queue, &lr->queue);
    sh->stats.entries++;

    if (account) {
        lr->excess = 0;
        lr->last = zg_limit_req_rel(sh, now);
        lr->count = 0;
        zg_limit_req_count_pass(sh, limit, 0, dry_run);
        zg_limit_req_sync_mark(sh, lr, 1);
        return ZG_OK;
    }
    lr->excess = ZG_LIMIT_REQ_FRESH;
    lr->last = 0;
    lr->count = 1;
    st->node = lr;
    return ZG_AGAIN;
}

/* nginx's _account: charges the held nodes of limits[0..n) and returns the
 * longest delay over them and *limit (whose excess is *ep). */
static zg_msec_t zg_limit_req_account(const zg_limit_req_conf_t *limits, int n,
                                      zg_limit_req_state_t *st, zg_msec_t now, int dry_run,
                                      uint64_t *ep, int *limit)
{
    const zg_limit_req_conf_t *lim;
    zg_limit_req_node_t *lr;
    zg_limit_req_sh_t *sh;
    zg_zone_t *zone;
    zg_msec_t delay, max_delay;
    uint64_t excess;
    int64_t ms;

    lim = &limits[*limit];
    excess = *ep;
    if (excess <= lim->delay) {
        max_delay = 0;
    } else {
        max_delay = (excess - lim->delay) * 1000 / zg_max(st[*limit].rate, 1);
    }

    while (n--) {
        lr = st[n].node;
        if (lr == NULL) {
            continue;
        }
        lim = &limits[n];
        zone = lim->zone->zone;
        sh = zone->data;

        zg_shmtx_lock(&zone->pool->mutex);
        excess = zg_limit_req_excess(sh, lr, now, &ms, st[n].rate);
        if (ms || lr->excess == ZG_LIMIT_REQ_FRESH) {
            lr->last = zg_limit_req_rel(sh, now);
        }
        lr->excess = zg_limit_req_store(excess);
        lr->count--;
        zg_limit_req_count_pass(sh, lim, excess, dry_run);
        zg_limit_req_sync_mark(sh, lr, 1);
        zg_shmtx_unlock(&zone->pool->mutex);

        st[n].node = NULL;
        st[n].excess = excess;

        if (excess <= lim->delay) {
            continue;
        }
        delay = (excess - lim->delay) * 1000 / zg_max(st[n].rate, 1);
        if (delay > max_delay) {
            max_delay = delay;
            *ep = excess;
            *limit = n;
        }
    }
    return max_delay;
}

/* gives back the nodes held by limits[0..n) without charging them */
static void zg_limit_req_unlock(const zg_limit_req_conf_t *limits, int n,
                                zg_limit_req_state_t *st)
{
    zg_zone_t *zone;

    while (n--) {
        if (st[n].node == NULL) {
            continue;
        }
        zone = limits[n].zone->zone;
        zg_shmtx_lock(&zone->pool->mutex);
        st[n].node->count--;
        zg_shmtx_unlock(&zone->pool->mutex);
        st[n].node = NULL;
        st[n].used = 0;
    }
}

static inline uint64_t zg_div_ceil(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/*
 * RateLimit fields from the limit with the least remaining.  The policy is the
 * zone's rate as a quota q per window w seconds (10r/s -> q=10;w=1, 30r/m ->
 * q=30;w=60); r = whole requests left in the burst, t = seconds until the bucket
 * is empty; Retry-After = seconds until the excess is back within the burst.
 */
static void zg_limit_req_fields(const zg_limit_req_conf_t *limits, int n,
                                const zg_limit_req_state_t *st, int rejected,
                                zg_limit_req_result_t *res)
{
    const zg_limit_req_conf_t *lim;
    uint64_t remaining, reset, rate, best_rem = UINT64_MAX, best_reset = 0;
    int i, best = -1;

    if (rejected >= 0) {
        best = rejected;
    } else {
        for (i = 0; i < n; i++) {
            if (!st[i].used) {
                continue;
            }
            lim = &limits[i];
            rate = zg_max(st[i].rate, 1);
            remaining = lim->burst >= st[i].excess ? (lim->burst - st[i].excess) / 1000 : 0;
            reset = zg_div_ceil(st[i].excess, rate);
            if (best < 0 || remaining < best_rem || (remaining == best_rem && reset > best_reset)) {
                best = i;
                best_rem = remaining;
                best_reset = reset;
            }
        }
    }
    if (best < 0) {
        return;
    }

    lim = &limits[best];
    rate = zg_max(st[best].rate, 1);
    res->zone_name = lim->zone->zone->name;
    /* the zone's rate as a quota per window: 10r/s -> q=10;w=1, 30r/m -> q=30;w=60 */
    if (rate % 1000 == 0) {
        res->policy_q = rate / 1000;
        res->policy_w = 1;
    } else {
        res->policy_q = zg_max(rate * 60 / 1000, 1);
        res->policy_w = 60;
    }
    res->remaining = lim->burst >= st[best].excess && rejected < 0
                         ? (lim->burst - st[best].excess) / 1000
                         : 0;
    res->reset = zg_div_ceil(st[best].excess, rate);
    if (rejected >= 0) {
        res->retry_after =
            st[best].excess > lim->burst ? zg_div_ceil(st[best].excess - lim->burst, rate) : 0;
        res->retry_after = zg_max(res->retry_after, 1);
    }
}

int zg_limit_req_check(const zg_limit_req_conf_t *limits, int n, int dry_run,
                       int log_level, const zg_var_ctx_t *ctx, zg_msec_t now,
                       zg_limit_req_result_t *res)
{
    zg_limit_req_state_t stack[ZG_LIMIT_REQ_STACK], *st;
    const zg_limit_req_zone_conf_t *zc;
    zg_limit_req_key_t key;
    zg_zone_t *zone;
    zg_msec_t delay;
    uint64_t excess;
    char buf[256], *heap, addr[64];
    size_t len;
    uint32_t hash;
    int i, rc, limit, delay_level;

    memset(res, 0, sizeof(*res));
    res->status = ZG_LIMIT_NONE;
    res->limit = -1;
    if (n <= 0) {
        return ZG_OK;
    }

    if (n <= ZG_LIMIT_REQ_STACK) {
        st = stack;
        memset(st, 0, sizeof(stack));
    } else {
        st = calloc((size_t)n, sizeof(zg_limit_req_state_t));
        if (st == NULL) {
            zg_log_error(ZG_LOG_ALERT, 0, "limit_req: no memory");
            return ZG_ERROR;
        }
    }

    excess = 0;
    rc = ZG_DECLINED;

    for (i = 0; i < n; i++) {
        zc = limits[i].zone;
        zone = zc->zone;

        heap = NULL;
        len = zg_cv_eval(zc->key, ctx, 0, buf, sizeof(buf));
        key.data = buf;
        if (len == 0) {
            continue;
        }
        if (len > ZG_LIMIT_REQ_KEY_MAX) {
            zg_log_error(ZG_LOG_ERR, 0,
                         "the value of the \"%s\" key is more than %d bytes: \"%.*s...\"",
                         zc->key_text != NULL ? zc->key_text : "", ZG_LIMIT_REQ_KEY_MAX,
                         (int)sizeof(buf), buf);
            continue;
        }
        if (len > sizeof(buf)) {
            heap = malloc(len);
            if (heap == NULL) {
                zg_log_error(ZG_LOG_ALERT, 0, "limit_req: no memory for a %zu-byte key", len);
                zg_limit_req_unlock(limits, i, st);
                rc = ZG_ERROR;
                goto done;
            }
            zg_cv_eval(zc->key, ctx, 0, heap, len);
            key.data = heap;
        }
        key.len = len;
        hash = zg_hash32(key.data, key.len);
        st[i].used = 1;
        st[i].rate = zc->rate_cv == NULL ? zc->rate : zg_limit_req_rate_of(zc, ctx);

        zg_shmtx_lock(&zone->pool->mutex);
        rc = zg_limit_req_lookup(&limits[i], hash, &key, now, i == n - 1, dry_run, &excess,
                                 &st[i]);
        zg_shmtx_unlock(&zone->pool->mutex);
        free(heap);

        if (rc == ZG_ERROR) {
            zg_log_error(ZG_LOG_ALERT, 0, "could not allocate node in limit_req zone \"%s\"",
                         zone->name);
        }
        if (rc != ZG_AGAIN) {
            break;
        }
    }

    if (rc == ZG_DECLINED) {
        rc = ZG_OK;
        goto done;
    }

    if (rc == ZG_BUSY || rc == ZG_ERROR) {
        if (rc == ZG_BUSY) {
            zg_log(log_level,
                   "limiting requests%s, excess: %llu.%03llu by zone \"%s\", client: %s",
                   dry_run ? ", dry run" : "", (unsigned long long)(excess / 1000),
                   (unsigned long long)(excess % 1000), limits[i].zone->zone->name,
                   zg_var_client(ctx, addr, sizeof(addr)));
        }
        zg_limit_req_unlock(limits, i, st);
        res->limit = i;
        zg_limit_req_fields(limits, n, st, i, res);
        if (dry_run) {
            res->status = ZG_LIMIT_REJECTED_DRY_RUN;
            rc = ZG_OK;
        } else {
            res->status = ZG_LIMIT_REJECTED;
        }
        goto done;
    }

    /* rc == ZG_AGAIN (the last limits had empty keys) || rc == ZG_OK */

    if (rc == ZG_AGAIN) {
        excess = 0;
        limit = n - 1;
    } else {
        limit = i;
    }

    delay = zg_limit_req_account(limits, i, st, now, dry_run, &excess, &limit);
    zg_limit_req_fields(limits, n, st, -1, res);
    rc = ZG_OK;

    if (delay == 0) {
        res->status = ZG_LIMIT_PASSED;
        goto done;
    }

    delay_level = log_level >= ZG_LOG_INFO ? ZG_LOG_INFO : log_level + 1;
    zg_log(delay_level, "delaying request%s, excess: %llu.%03llu, by zone \"%s\", client: %s",
           dry_run ? ", dry run" : "", (unsigned long long)(excess / 1000),
           (unsigned long long)(excess % 1000), limits[limit].zone->zone->name,
           zg_var_client(ctx, addr, sizeof(addr)));

    res->limit = limit;
    if (dry_run) {
        res->status = ZG_LIMIT_DELAYED_DRY_RUN;
    } else {
        res->status = ZG_LIMIT_DELAYED;
        res->delay = delay;
    }

done:
    if (st != stack) {
        free(st);
    }
    return rc;
}

void zg_limit_req_stats(zg_zone_t *zone, zg_limit_req_stats_t *out)
{
    zg_limit_req_sh_t *sh = zone->data;

    if (sh == NULL || zone->pool == NULL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    *out = sh->stats;
    zg_shmtx_unlock(&zone->pool->mutex);
}

/* ---- the API ---- */

int zg_limit_req_key_is_addr(zg_zone_t *zone)
{
    zg_limit_req_sh_t *sh = zone->data;
    static const char b[] = "$binary_remote_addr";

    return sh != NULL && sh->key_len == sizeof(b) - 1 && memcmp(sh->text, b, sizeof(b) - 1) == 0;
}

/* the first entry after (hash, key) in tree order, NULL if none.  Lock held. */
static zg_rbtree_node_t *zg_limit_req_after(zg_limit_req_sh_t *sh, uint32_t hash,
                                            const zg_limit_req_key_t *k)
{
    zg_rbtree_node_t *node = sh->rbtree.root, *s = sh->rbtree.sentinel, *best = NULL;
    int c;

    while (node != s) {
        c = node->key < hash ? -1 : node->key > hash ? 1 : zg_limit_req_cmp(node, k);
        if (c > 0) {
            best = node;
            node = node->left;
        } else {
            node = node->right;
        }
    }
    return best;
}

/* min-heap by excess: out[0] is the smallest kept */
static void zg_limit_req_heap_down(zg_limit_req_top_t *h, size_t n, size_t i)
{
    zg_limit_req_top_t t;
    size_t m, l, r;

    for (;;) {
        m = i;
        l = 2 * i + 1;
        r = l + 1;
        if (l < n && h[l].excess < h[m].excess) {
            m = l;
        }
        if (r < n && h[r].excess < h[m].excess) {
            m = r;
        }
        if (m == i) {
            return;
        }
        t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void zg_limit_req_heap_up(zg_limit_req_top_t *h, size_t i)
{
    zg_limit_req_top_t t;

    while (i > 0 && h[(i - 1) / 2].excess > h[i].excess) {
        t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static int zg_limit_req_top_cmp(const void *a, const void *b)
{
    const zg_limit_req_top_t *x = a, *y = b;

    return x->excess < y->excess ? 1 : x->excess > y->excess ? -1 : 0;
}

void zg_limit_req_top_init(zg_limit_req_top_walk_t *w, zg_limit_req_top_t *out, size_t n)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
    w->n = zg_min(n, (size_t)ZG_LIMIT_REQ_TOP_MAX);
}

int zg_limit_req_top_step(zg_zone_t *zone, zg_limit_req_top_walk_t *w, zg_msec_t now)
{
    zg_limit_req_sh_t *sh = zone->data;
    zg_limit_req_top_t *out = w->out, cur;
    zg_rbtree_node_t *node, *prev = NULL;
    zg_limit_req_node_t *lr;
    zg_limit_req_key_t k;
    uint64_t drain, rate;
    int64_t ms;
    int visited;

    if (sh == NULL || w->n == 0 || w->done) {
        w->done = 1;
        qsort(out, w->have, sizeof(*out), zg_limit_req_top_cmp);
        return ZG_OK;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    if (!w->started) {
        node = sh->rbtree.root == sh->rbtree.sentinel ? NULL : zg_rbtree_min(&sh->rbtree);
        w->started = 1;
    } else {
        k.data = (const char *)w->last;
        k.len = w->last_len;
        node = zg_limit_req_after(sh, w->last_hash, &k);
    }
    for (visited = 0; node != NULL && visited < ZG_LIMIT_REQ_TOP_CHUNK; visited++) {
        lr = zg_limit_req_of(node);
        if (lr->excess != ZG_LIMIT_REQ_FRESH && lr->excess > 0) {
            ms = (int64_t)now - zg_limit_req_last(sh, lr);
            ms = ms < 0 ? 0 : ms;
            rate = zg_limit_req_node_rate(sh, lr);
            drain = zg_limit_req_drain(rate, ms);
            if (drain < lr->excess
                && (w->have < w->n || lr->excess - drain > out[0].excess)) {
                cur.excess = lr->excess - drain;
                cur.len = lr->len;
                memcpy(cur.key, lr->data, zg_min((size_t)lr->len, sizeof(cur.key)));
                cur.rate = rate;
                cur.idle = (zg_msec_t)ms;
                if (w->have < w->n) {
                    out[w->have] = cur;
                    zg_limit_req_heap_up(out, w->have++);
                } else {
                    out[0] = cur;
                    zg_limit_req_heap_down(out, w->have, 0);
                }
            }
        }
        prev = node;
        node = zg_rbtree_next(&sh->rbtree, node);
    }
    if (prev != NULL) {
        /* where the next chunk resumes: after this key, wherever it is then */
        lr = zg_limit_req_of(prev);
        w->last_hash = prev->key;
        w->last_len = lr->len;
        memcpy(w->last, lr->data, lr->len);
    }
    zg_shmtx_unlock(&zone->pool->mutex);
    if (node != NULL) {
        return ZG_AGAIN;
    }
    w->done = 1;
    qsort(out, w->have, sizeof(*out), zg_limit_req_top_cmp);
    return ZG_OK;
}

size_t zg_limit_req_top(zg_zone_t *zone, zg_limit_req_top_t *out, size_t n, zg_msec_t now)
{
    zg_limit_req_top_walk_t *w = malloc(sizeof(*w));
    size_t have;

    if (w == NULL) {
        return 0;
    }
    zg_limit_req_top_init(w, out, n);
    while (zg_limit_req_top_step(zone, w, now) == ZG_AGAIN) {
    }
    have = w->have;
    free(w);
    return have;
}

int zg_limit_req_forgive(zg_zone_t *zone, const void *key, size_t len)
{
    zg_limit_req_sh_t *sh = zone->data;
    zg_limit_req_key_t k = { key, len };
    zg_rbtree_node_t *node;
    zg_limit_req_node_t *lr;

    if (sh == NULL || len == 0 || len > ZG_LIMIT_REQ_KEY_MAX) {
        return ZG_DECLINED;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    node = zg_rbtree_lookup(&sh->rbtree, zg_hash32(key, len), zg_limit_req_cmp, &k);
    if (node != NULL) {
        lr = zg_limit_req_of(node);
        if (lr->count == 0) {
            zg_limit_req_free_node(zone, sh, lr);
            sh->stats.evicted--;
        } else {
            lr->excess = 0;
        }
    }
    zg_shmtx_unlock(&zone->pool->mutex);
    return node != NULL ? ZG_OK : ZG_DECLINED;
}

/* ---- cluster sync ---- */

zg_limit_req_sync_stats_t *zg_limit_req_sync_shared(zg_zone_t *zone)
{
    zg_limit_req_sh_t *sh = zone->data;

    return sh != NULL && sh->sync != NULL ? &sh->sync->stats : NULL;
}

int zg_limit_req_sync_stats(zg_zone_t *zone, zg_limit_req_sync_stats_t *out)
{
    zg_limit_req_sync_stats_t *st = zone->pool != NULL ? zg_limit_req_sync_shared(zone) : NULL;

    memset(out, 0, sizeof(*out));
    if (st == NULL) {
        return ZG_DECLINED;
    }
    zg_sync_stats_load(st, out);
    return ZG_OK;
}

int zg_limit_req_sync_take(zg_zone_t *zone, int max, zg_limit_req_sync_pt cb, void *arg)
{
    zg_limit_req_sh_t *sh = zone->data;
    zg_limit_req_sync_node_t *sn;
    zg_limit_req_node_t *lr;
    int n = 0;

    if (sh == NULL || sh->sync == NULL) {
        return 0;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    while (n < max && !zg_queue_empty(&sh->sync->dirty)) {
        sn = zg_queue_data(zg_queue_head(&sh->sync->dirty), zg_limit_req_sync_node_t, dirty);
        lr = (zg_limit_req_node_t *)(void *)((char *)sn - zg_limit_req_sync_off(sn->len));
        if (cb != NULL) {
            if (cb(arg, lr->data, lr->len, sn->admitted) != ZG_OK) {
                break;
            }
        } else {
            sh->sync->stats.dropped++;
        }
        sn->admitted = 0;
        zg_queue_remove(&sn->dirty);
        zg_queue_init(&sn->dirty);
        n++;
    }
    zg_shmtx_unlock(&zone->pool->mutex);
    return n;
}

void zg_limit_req_sync_apply(zg_zone_t *zone, const unsigned char *key, size_t len,
                             uint64_t fleet_excess, zg_msec_t taken, zg_msec_t now)
{
    zg_limit_req_sh_t *sh = zone->data;
    zg_limit_req_key_t k = { (const char *)key, len };
    zg_limit_req_sync_node_t *sn;
    zg_limit_req_node_t *lr;
    zg_rbtree_node_t *node;
    uint64_t excess, since, drain;

    if (sh == NULL || sh->sync == NULL) {
        return;
    }
    drain = zg_limit_req_drain(sh->rate, now > taken ? (int64_t)(now - taken) : 0);
    zg_shmtx_lock(&zone->pool->mutex);
    zg_limit_req_rebase(sh, now);
    node = zg_rbtree_lookup(&sh->rbtree, zg_hash32(key, len), zg_limit_req_cmp, &k);
    if (node != NULL) {
        lr = zg_limit_req_of(node);
        sn = zg_limit_req_sync_of(lr);
        since = (uint64_t)sn->admitted * 1000;
        excess = fleet_excess + (since > drain ? since - drain : 0);
        lr->excess = zg_limit_req_store(excess);
        lr->last = zg_limit_req_rel(sh, now);
    }
    zg_shmtx_unlock(&zone->pool->mutex);
}

/* ---------------------------------------------------------------- module */

const zg_zone_kind_t zg_limit_req_zone_kind = { "limit_req", zg_limit_req_zone_init };


static int zg_limit_req_zone_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_limit_req_main_conf_t *lmcf = conf;
    zg_limit_req_zone_conf_t *lz, **slot;
    zg_str_t *a = cf->args, *zone_arg = NULL;
    zg_zone_t *z = NULL;
    uint64_t rate = 1000, def = 0;
    const char *rate_text = "1r/s", *def_text = NULL;
    zg_str_t *rate_var = NULL;

    (void)cmd;
    lz = zg_conf_alloc(cf->conf, sizeof(*lz));
    if (lz == NULL) {
        return zg_conf_nomem(cf);
    }
    lz->sync.interval = ZG_SYNC_INTERVAL_DEFAULT;
    for (int i = 2; i < cf->nargs; i++) {
        int rc = zg_sync_conf_param(cf, &a[i], &lz->sync);

        if (rc == ZG_ERROR) {
            return ZG_ERROR;
        }
        if (rc == ZG_OK) {
            continue;
        }
        if (zg_conf_prefix(&a[i], "zone=")) {
            zone_arg = &a[i];
        } else if (zg_conf_prefix(&a[i], "rate=") && a[i].len > 5 && a[i].data[5] == '$') {
            rate_var = &a[i];
        } else if (zg_conf_prefix(&a[i], "rate=") || zg_conf_prefix(&a[i], "default=")) {
            size_t skip = a[i].data[0] == 'r' ? 5 : 8;
            uint64_t v;
            if (zg_limit_req_parse_rate(a[i].data + skip, a[i].len - skip, &v) != ZG_OK) {
                return zg_conf_error(cf, "invalid rate \"%s\" in \"%s\" directive", a[i].data,
                                     cf->name);
            }
            if (skip == 5) {
                rate = v;
                rate_text = a[i].data + skip;
            } else {
                def = v;
                def_text = a[i].data + skip;
            }
        } else {
            return zg_conf_bad_param(cf, &a[i]);
        }
    }
    if (zg_sync_conf_done(cf, &lz->sync) != ZG_OK) {
        return ZG_ERROR;
    }
    if (zone_arg == NULL) {
        return zg_conf_error(cf, "\"%s\" must have \"zone\" parameter", cf->name);
    }
    if (a[1].len == 0) {
        return zg_conf_invalid(cf, &a[1]);
    }
    if (rate_var != NULL) {
        /* rate=$var default=RATE: the zone's rate is the default */
        if (def_text == NULL) {
            return zg_conf_error(cf, "\"%s\" with a variable rate must have \"default\" "
                                     "parameter", cf->name);
        }
        lz->rate_cv = zg_conf_cv(cf, rate_var->data + 5, rate_var->len - 5);
        if (lz->rate_cv == NULL) {
            return ZG_ERROR;
        }
        rate = def;
        rate_text = def_text;
    } else if (def_text != NULL) {
        return zg_conf_error(cf, "\"default\" needs a variable rate in \"%s\" directive",
                             cf->name);
    }
    lz->rate = rate;
    lz->rate_text = zg_conf_strdup(cf->conf, rate_text, strlen(rate_text));
    lz->key_text = zg_conf_strdup(cf->conf, a[1].data, a[1].len);
    if (lz->rate_text == NULL || lz->key_text == NULL) {
        return zg_conf_nomem(cf);
    }
    if (zg_conf_zone_param(cf, zone_arg, &zg_limit_req_zone_kind, &z) != ZG_OK) {
        return ZG_ERROR;
    }
    lz->zone = z;
    lz->stream = cf->ctx == ZG_CTX_STREAM;
    z->conf = lz;
    lz->key = zg_conf_cv(cf, a[1].data, a[1].len);
    if (lz->key == NULL) {
        return ZG_ERROR;
    }
    slot = zg_conf_push(cf->conf, lmcf->zones, lmcf->nzones);
    if (slot == NULL) {
        return zg_conf_nomem(cf);
    }
    *slot = lz;
    return ZG_OK;
}

static int zg_limit_req_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_limit_req_main_conf_t *lmcf = zg_limit_req_main_conf(cf->conf);
    zg_limit_req_loc_conf_t *lc = conf;
    zg_limit_req_conf_t *lr;
    zg_str_t *a = cf->args, *zone = NULL;
    int v;

    (void)cmd;
    lr = zg_conf_push(cf->conf, lc->limits, lc->nlimits);
    if (lr == NULL) {
        return zg_conf_nomem(cf);
    }
    for (int i = 1; i < cf->nargs; i++) {
        if (zg_conf_prefix(&a[i], "zone=")) {
            zone = &a[i];
        } else if (zg_conf_prefix(&a[i], "burst=")) {
            v = zg_conf_atoi(a[i].data + 6, a[i].len - 6);
            if (v <= 0) {
                return zg_conf_error(cf, "invalid burst value \"%s\"", a[i].data);
            }
            lr->burst = (uint64_t)v * 1000;
        } else if (zg_conf_prefix(&a[i], "delay=")) {
            v = zg_conf_atoi(a[i].data + 6, a[i].len - 6);
            if (v <= 0) {
                return zg_conf_error(cf, "invalid delay value \"%s\"", a[i].data);
            }
            lr->delay = (uint64_t)v * 1000;
        } else if (zg_conf_eq(&a[i], "nodelay")) {
            lr->delay = ZG_LIMIT_REQ_NODELAY;
        } else {
            return zg_conf_bad_param(cf, &a[i]);
        }
    }
    if (zone == NULL || zone->len == 5) {
        return zg_conf_error(cf, "\"%s\" must have \"zone\" parameter", cf->name);
    }
    return zg_conf_zone_ref_add(cf, &lmcf->refs, &lmcf->nrefs, zone->data + 5, zone->len - 5,
                                lc, lc->nlimits - 1);
}

static void *zg_limit_req_create_main_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_limit_req_main_conf_t));
}

/* every limit_req gets its zone */
static int zg_limit_req_init_main_conf(zg_cf_t *cf, void *conf)
{
    zg_limit_req_main_conf_t *lmcf = conf;
    for (int i = 0; i < lmcf->nrefs; i++) {
        zg_conf_zone_ref_t *r = &lmcf->refs[i];
        zg_limit_req_loc_conf_t *lc = r->level;
        zg_limit_req_zone_conf_t *z = zg_conf_zone_ref_conf(cf, r, &zg_limit_req_zone_kind);
        if (z == NULL) {
            return ZG_ERROR;
        }
        for (int k = 0; k < r->idx; k++) {
            if (lc->limits[k].zone == z) {
                return zg_conf_error_at(cf, r->file, r->line, "\"%s\" directive is duplicate",
                                        r->directive);
            }
        }
        lc->limits[r->idx].zone = z;
    }
    return ZG_OK;
}

static void *zg_limit_req_create_loc_conf(zg_conf_t *conf)
{
    zg_limit_req_loc_conf_t *lc = zg_conf_alloc(conf, sizeof(*lc));

    if (lc == NULL) {
        return NULL;
    }
    lc->nlimits = -1;
    lc->status = ZG_UNSET;
    lc->log_level = ZG_UNSET;
    lc->dry_run = ZG_UNSET;
    lc->headers = ZG_UNSET;
    return lc;
}

static int zg_limit_req_merge_loc_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_limit_req_loc_conf_t *p = parent, *c = child;

    (void)cf;
    if (c->nlimits < 0) {
        c->limits = p->limits;
        c->nlimits = p->nlimits;
    }
    ZG_CONF_MERGE(c, p, status, ZG_UNSET);
    ZG_CONF_MERGE(c, p, log_level, ZG_UNSET);
    ZG_CONF_MERGE(c, p, dry_run, ZG_UNSET);
    ZG_CONF_MERGE(c, p, headers, ZG_UNSET);
    if (c->nlimits < 0) {
        c->limits = NULL;
        c->nlimits = 0;
    }
    if (c->status == ZG_UNSET) {
        c->status = 503;
    }
    if (c->log_level == ZG_UNSET) {
        c->log_level = ZG_LOG_ERR;
    }
    if (c->dry_run == ZG_UNSET) {
        c->dry_run = 0;
    }
    if (c->headers == ZG_UNSET) {
        c->headers = 0;
    }
    return ZG_OK;
}

/* RateLimit-Policy / RateLimit (limit_req_headers on), and Retry-After on rejection */
static size_t zg_limit_req_headers(zg_request_t *r, char *buf, size_t len, int rejected)
{
    zg_limit_req_result_t *lr = zg_request_ctx(r, zg_limit_req_module);

    if (lr->zone_name == NULL || !zg_limit_req_loc_conf(r->loc_conf)->headers) {
        return 0;
    }
    rejected = rejected || lr->status == ZG_LIMIT_REJECTED;
    int n = snprintf(buf, len,
                     "RateLimit-Policy: \"%s\";q=%llu;w=%llu\r\n"
                     "RateLimit: \"%s\";r=%llu;t=%llu\r\n",
                     lr->zone_name, (unsigned long long)lr->policy_q,
                     (unsigned long long)lr->policy_w, lr->zone_name,
                     (unsigned long long)lr->remaining, (unsigned long long)lr->reset);
    if (n < 0 || (size_t)n >= len) {
        return 0;
    }
    if (rejected) {
        int m = snprintf(buf + n, len - (size_t)n, "Retry-After: %llu\r\n",
                         (unsigned long long)zg_max(lr->retry_after, 1));
        if (m > 0 && (size_t)m < len - (size_t)n) {
            n += m;
        }
    }
    return (size_t)n;
}

/* the rejection, with Retry-After when limit_req_headers is on */
static __attribute__((noinline)) int zg_limit_req_reject(zg_request_t *r, int status)
{
    /* the header hook adds Retry-After to a rejection */
    zg_request_respond(r, status, NULL, NULL, NULL, 0);
    return ZG_DONE;
}

/* preaccess: pass, delay (the request sleeps) or reject */
static int zg_limit_req_handler(zg_request_t *r)
{
    zg_limit_req_loc_conf_t *lc = zg_limit_req_loc_conf(r->loc_conf);
    zg_limit_req_result_t *lr;
    int rc;

    /* as nginx: once per request, not again after an internal redirect */
    if (lc->nlimits <= 0 || r->ctx.limit_req_status != ZG_LIMIT_NONE) {
        return ZG_DECLINED;
    }
    lr = zg_request_ctx(r, zg_limit_req_module);
    rc = zg_limit_req_check(lc->limits, lc->nlimits, lc->dry_run, lc->log_level, &r->ctx,
                            zg_time_msec(), lr);
    r->ctx.limit_req_status = lr->status;
    if (lc->headers && lr->zone_name != NULL) {
        r->want_headers = 1;
    }
    if (rc == ZG_BUSY || rc == ZG_ERROR) {
        return zg_limit_req_reject(r, lc->status);
    }
    if (lr->delay > 0) {
        return zg_request_sleep(r, lr->delay);
    }
    return ZG_DECLINED;
}

/* a stream session delayed by limit_req: accepted, nothing relayed until the timer */
typedef struct {
    uv_timer_t timer;
    zg_stream_session_t *s;
    unsigned open : 1;
} zg_limit_req_stream_t;

static void zg_limit_req_stream_timer_closed(uv_handle_t *h)
{
    zg_limit_req_stream_t *x = h->data;

    zg_stream_unref(x->s);
}

static void zg_limit_req_stream_wake(uv_timer_t *t)
{
    zg_limit_req_stream_t *x = t->data;

    x->open = 0;
    uv_close((uv_handle_t *)&x->timer, zg_limit_req_stream_timer_closed);
    zg_stream_resume(x->s);
}

/* stream preaccess (beyond nginx): limit_req on new connections; an excess session
 * is closed (503) or held for its delay */
static int zg_limit_req_stream_handler(zg_stream_session_t *s)
{
    zg_limit_req_loc_conf_t *lc = zg_stream_conf(s, zg_limit_req_module);
    zg_limit_req_result_t lr;
    zg_limit_req_stream_t *x;
    int rc;

    if (lc->nlimits <= 0) {
        return ZG_DECLINED;
    }
    rc = zg_limit_req_check(lc->limits, lc->nlimits, lc->dry_run, lc->log_level, &s->vars,
                            zg_time_msec(), &lr);
    s->vars.limit_req_status = lr.status;
    if (rc == ZG_BUSY || rc == ZG_ERROR) {
        zg_stream_finalize(s, ZG_STREAM_SERVICE_UNAVAILABLE);
        return ZG_DONE;
    }
    if (lr.delay == 0) {
        return ZG_DECLINED;
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return ZG_DONE;
    }
    s->ctx[zg_limit_req_module.index] = x; /* freed with the session */
    x->s = s;
    uv_timer_init(s->loop, &x->timer);
    x->timer.data = x;
    x->open = 1;
    zg_stream_ref(s);
    uv_timer_start(&x->timer, zg_limit_req_stream_wake, lr.delay, 0);
    return ZG_AGAIN;
}

static void zg_limit_req_stream_release(zg_stream_session_t *s)
{
    zg_limit_req_stream_t *x = s->ctx[zg_limit_req_module.index];

    if (x != NULL && x->open) {
        x->open = 0;
        uv_close((uv_handle_t *)&x->timer, zg_limit_req_stream_timer_closed);
    }
}

static void zg_limit_req_metrics(zg_buf_t *b, const zg_conf_t *conf)
{
    static const char *results[] = { "passed", "delayed", "rejected", "delayed_dry_run",
                                     "rejected_dry_run" };
    zg_limit_req_stats_t *st;
    zg_zone_t *z;
    uint64_t v[5];
    int i, j, n = zg_admin_zones_of(conf, ZG_ZONE_LIMIT_REQ);

    st = calloc(n ? n : 1, sizeof(*st));
    if (st == NULL) {
        b->failed = 1;
        return;
    }
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_LIMIT_REQ) {
            zg_limit_req_stats(z, &st[i++]);
        }
    }

    zg_admin_family(b, "zonegate_limit_req_requests_total", "counter",
                    "Requests checked by limit_req, by zone and outcome.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool == NULL || z->kind != ZG_ZONE_LIMIT_REQ) {
            continue;
        }
        v[0] = st[i].passed;
        v[1] = st[i].delayed;
        v[2] = st[i].rejected;
        v[3] = st[i].delayed_dry_run;
        v[4] = st[i].rejected_dry_run;
        for (j = 0; j < 5; j++) {
            zg_admin_sample(b, "zonegate_limit_req_requests_total", v[j], "zone", z->name,
                            "result", results[j], NULL);
        }
        i++;
    }

    zg_admin_family(b, "zonegate_limit_req_entries", "gauge",
                    "Keys held in the limit_req zone now.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_LIMIT_REQ) {
            zg_admin_sample(b, "zonegate_limit_req_entries", st[i++].entries, "zone", z->name,
                            NULL);
        }
    }

    zg_admin_family(b, "zonegate_limit_req_evictions_total", "counter",
                    "Keys dropped from the limit_req zone to make room.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_LIMIT_REQ) {
            zg_admin_sample(b, "zonegate_limit_req_evictions_total", st[i++].evicted, "zone",
                            z->name, NULL);
        }
    }

    free(st);
}

#define ZG_LR(f) offsetof(zg_limit_req_loc_conf_t, f)

static const zg_command_t zg_limit_req_commands[] = {
    { "limit_req_zone", ZG_CTX_HTTP | ZG_CTX_STREAM, 0, 3, -1, zg_limit_req_zone_directive,
      ZG_MAIN_CONF, 0, NULL },
    { "limit_req", ZG_CTX_SETTINGS | ZG_CTX_STREAM_SETTINGS, 0, 1, 3, zg_limit_req_directive,
      ZG_LOC_CONF, 0, NULL },
    { "limit_req_status", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_status, ZG_LOC_CONF,
      ZG_LR(status), NULL },
    { "limit_req_log_level", ZG_CTX_SETTINGS | ZG_CTX_STREAM_SETTINGS, 0, 1, 1,
      zg_conf_set_level, ZG_LOC_CONF, ZG_LR(log_level), NULL },
    { "limit_req_dry_run", ZG_CTX_SETTINGS | ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_conf_set_flag,
      ZG_LOC_CONF, ZG_LR(dry_run), NULL },
    { "limit_req_headers", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      ZG_LR(headers), NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_limit_req_module = {
    .name = "limit_req",
    .commands = zg_limit_req_commands,
    .create_main_conf = zg_limit_req_create_main_conf,
    .init_main_conf = zg_limit_req_init_main_conf,
    .create_loc_conf = zg_limit_req_create_loc_conf,
    .merge_loc_conf = zg_limit_req_merge_loc_conf,
    .phase = ZG_PHASE_PREACCESS,
    .handler = zg_limit_req_handler,
    .headers = zg_limit_req_headers,
    .ctx_size = sizeof(zg_limit_req_result_t),
    .stream_phase = ZG_STREAM_PHASE_PREACCESS,
    .stream_handler = zg_limit_req_stream_handler,
    .stream_release = zg_limit_req_stream_release,
    .metrics = zg_limit_req_metrics,
};
