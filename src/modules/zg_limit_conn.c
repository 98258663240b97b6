/* zg_limit_conn.c — the limit_conn module: concurrent requests per key in a shared
 * zone (nginx's limit_conn), counted per worker slot so a dead worker's share can be
 * given back; its directives, preaccess phase handler, release hook and metrics. */
#include "zg_limit_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "zg_admin.h"
#include "zg_log.h"
#include "zg_rbtree.h"
#include "zg_request.h"
#include "zg_stream.h"

#define ZG_LIMIT_CONN_KEY_MAX 255

/* no LRU: an entry lives while some request holds it */
typedef struct {
    zg_rbtree_node_t node;     /* key = hash of data */
    uint32_t count;            /* holds, all workers */
    uint32_t others;           /* sync: the other hosts' live leases for the key */
    uint32_t pushed;           /* sync: the count this host last pushed */
    uint8_t len;
    uint16_t workers[ZG_MAX_WORKERS]; /* holds per worker slot; their sum is count */
    unsigned char data[];
} zg_limit_conn_node_t;

typedef struct {
    zg_rbtree_t rbtree;
    zg_rbtree_node_t sentinel;
    zg_limit_conn_stats_t stats;
    zg_sync_stats_t sync;      /* counters of the sync module */
    int synced;                /* the current configuration has sync= */
    uint32_t cursor;           /* sync: the hash after which the next take starts */
    char host[24];             /* sync: this host's lease owner name */
    size_t key_len;
    char key[];
} zg_limit_conn_sh_t;

typedef struct {
    const char *data;
    size_t len;
} zg_limit_conn_key_t;

static int zg_limit_conn_cmp(const zg_rbtree_node_t *n, const void *arg)
{
    const zg_limit_conn_node_t *lc = zg_data_of(n, zg_limit_conn_node_t, node);
    const zg_limit_conn_key_t *k = arg;

    return zg_rbtree_key_cmp(lc->data, lc->len, k->data, k->len);
}

int zg_limit_conn_zone_init(zg_zone_t *zone, void *old_data)
{
    zg_limit_conn_zone_conf_t *zc = zone->conf;
    zg_limit_conn_sh_t *sh;
    const char *key;
    size_t key_len;

    if (zc == NULL || zone->pool == NULL) {
        zg_log_error(ZG_LOG_EMERG, 0, "limit_conn_zone \"%s\" has no configuration",
                     zone->name);
        return ZG_ERROR;
    }
    key = zc->key_text != NULL ? zc->key_text : "";
    key_len = strlen(key);

    if (old_data != NULL) {
        sh = old_data;
        if (sh->key_len != key_len || memcmp(sh->key, key, key_len) != 0) {
            zg_log_error(ZG_LOG_EMERG, 0,
                         "limit_conn_zone \"%s\" uses the \"%s\" key while previously it "
                         "used the \"%.*s\" key",
                         zone->name, key, (int)sh->key_len, sh->key);
            return ZG_ERROR;
        }
        sh->synced = zc->sync.mode != ZG_SYNC_NONE;
        zone->data = sh;
        zone->pool->data = sh;
        return ZG_OK;
    }

    sh = zg_slab_calloc(zone->pool, sizeof(zg_limit_conn_sh_t) + key_len + 1);
    if (sh == NULL) {
        zg_log_error(ZG_LOG_EMERG, 0, "limit_conn_zone \"%s\": no memory for the zone root",
                     zone->name);
        return ZG_ERROR;
    }
    zg_rbtree_init(&sh->rbtree, &sh->sentinel, zg_rbtree_insert_value);
    sh->synced = zc->sync.mode != ZG_SYNC_NONE;
    {
        uint64_t id;

        if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id)) {
            id = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
        }
        snprintf(sh->host, sizeof(sh->host), "%016llx", (unsigned long long)id);
    }
    sh->key_len = key_len;
    memcpy(sh->key, key, key_len);

    zone->pool->data = sh;
    zone->data = sh;
    return ZG_OK;
}

/* nothing left to count or to tell the fleet: the entry may go.  Lock held. */
static inline int zg_limit_conn_idle(const zg_limit_conn_sh_t *sh, const zg_limit_conn_node_t *lc)
{
    return lc->count == 0 && (!sh->synced || (lc->others == 0 && lc->pushed == 0));
}

/* gives back one hold; rollback: the request was refused after all, so it
 * does not count as passed.  Takes the zone lock. */
static void zg_limit_conn_put(zg_limit_conn_hold_t *h, int rollback)
{
    zg_limit_conn_node_t *lc = h->node;
    zg_limit_conn_sh_t *sh;
    zg_zone_t *zone = h->zone;

    if (lc == NULL || zone == NULL) {
        return;
    }
    sh = zone->data;

    zg_shmtx_lock(&zone->pool->mutex);
    if (h->slot >= 0 && h->slot < ZG_MAX_WORKERS && lc->workers[h->slot] > 0) {
        lc->workers[h->slot]--;
        if (lc->count > 0) {
            lc->count--;
        }
        if (sh->stats.current > 0) {
            sh->stats.current--;
        }
    }
    if (rollback && sh->stats.passed > 0) {
        sh->stats.passed--;
    }
    if (zg_limit_conn_idle(sh, lc)) {
        zg_rbtree_delete(&sh->rbtree, &lc->node);
        zg_slab_free_locked(zone->pool, lc);
        sh->stats.entries--;
    }
    zg_shmtx_unlock(&zone->pool->mutex);

    h->node = NULL;
}

static void zg_limit_conn_rollback(zg_limit_conn_hold_t *holds, int *nholds)
{
    while (*nholds > 0) {
        (*nholds)--;
        zg_limit_conn_put(&holds[*nholds], 1);
    }
}

/* limit_conn NAME $VAR: this request's limit, 1..65535; else the default= (0 = none:
 * the request is not limited by it) */
static uint32_t zg_limit_conn_of(const zg_limit_conn_conf_t *l, const zg_var_ctx_t *ctx)
{
    char buf[16];
    size_t len = zg_cv_eval(l->conn_cv, ctx, 0, buf, sizeof(buf));
    int v = len > 0 && len <= sizeof(buf) ? zg_conf_atoi(buf, len) : -1;

    return v > 0 && v <= 65535 ? (uint32_t)v : l->conn;
}

int zg_limit_conn_acquire(const zg_limit_conn_conf_t *limits, int n, int dry_run,
                          int log_level, const zg_var_ctx_t *ctx,
                          zg_limit_conn_hold_t *holds, int *nholds, int *status)
{
    const zg_limit_conn_zone_conf_t *zc;
    zg_limit_conn_node_t *lc;
    zg_limit_conn_sh_t *sh;
    zg_limit_conn_key_t key;
    zg_rbtree_node_t *node;
    zg_zone_t *zone;
    char buf[ZG_LIMIT_CONN_KEY_MAX + 1], addr[64];
    size_t len;
    uint32_t hash, conn;
    int i, slot = zg_worker_slot;

    *nholds = 0;
    *status = ZG_LIMIT_NONE;
    if (slot < 0 || slot >= ZG_MAX_WORKERS) {
        zg_log_error(ZG_LOG_ALERT, 0, "limit_conn: worker slot %d out of range", slot);
        return ZG_ERROR;
    }

    for (i = 0; i < n; i++) {
        zc = limits[i].zone;
        zone = zc->zone;
        sh = zone->data;

        conn = limits[i].conn_cv == NULL ? limits[i].conn : zg_limit_conn_of(&limits[i], ctx);
        if (conn == 0) {
            continue;
        }
        len = zg_cv_eval(zc->key, ctx, 0, buf, sizeof(buf));
        if (len == 0) {
            continue;
        }
        if (len > ZG_LIMIT_CONN_KEY_MAX) {
            zg_log_error(ZG_LOG_ERR, 0,
                         "the value of the \"%s\" key is more than %d bytes: \"%.*s...\"",
                         zc->key_text != NULL ? zc->key_text : "", ZG_LIMIT_CONN_KEY_MAX,
                         ZG_LIMIT_CONN_KEY_MAX, buf);
            continue;
        }
        key.data = buf;
        key.len = len;
        hash = zg_hash32(buf, len);
        *status = ZG_LIMIT_PASSED;

        zg_shmtx_lock(&zone->pool->mutex);

        node = zg_rbtree_lookup(&sh->rbtree, hash, zg_limit_conn_cmp, &key);
        if (node == NULL) {
            lc = zg_slab_alloc_locked(zone->pool, sizeof(zg_limit_conn_node_t) + len);
            if (lc == NULL) {
                sh->stats.alloc_fails++;
                if (dry_run) {
                    sh->stats.rejected_dry_run++;
                } else {
                    sh->stats.rejected++;
                }
                zg_shmtx_unlock(&zone->pool->mutex);
                zg_log_error(ZG_LOG_ALERT, 0,
                             "could not allocate node in limit_conn zone \"%s\"", zone->name);
                zg_limit_conn_rollback(holds, nholds);
                if (dry_run) {
                    *status = ZG_LIMIT_REJECTED_DRY_RUN;
                    return ZG_OK;
                }
                *status = ZG_LIMIT_REJECTED;
                return ZG_ERROR;
            }
            memset(lc, 0, sizeof(zg_limit_conn_node_t));
            lc->node.key = hash;
            lc->len = (uint8_t)len;
            memcpy(lc->data, buf, len);
            zg_rbtree_insert_keyed(&sh->rbtree, &lc->node, zg_limit_conn_cmp, &key);
            sh->stats.entries++;

        } else {
            lc = zg_data_of(node, zg_limit_conn_node_t, node);

            /* a slot's share is 16 bits: beyond that the key is over any sane limit;
             * the other hosts count only while the zone syncs (a reload may drop it) */
            if (lc->count + (sh->synced ? lc->others : 0) >= conn ||
                lc->workers[slot] == UINT16_MAX) {
                if (dry_run) {
                    sh->stats.rejected_dry_run++;
                } else {
                    sh->stats.rejected++;
                }
                zg_shmtx_unlock(&zone->pool->mutex);
                zg_log(log_level, "limiting connections%s by zone \"%s\", client: %s",
                       dry_run ? ", dry run," : "", zone->name,
                       zg_var_client(ctx, addr, sizeof(addr)));
                zg_limit_conn_rollback(holds, nholds);
                if (dry_run) {
                    *status = ZG_LIMIT_REJECTED_DRY_RUN;
                    return ZG_OK;
                }
                *status = ZG_LIMIT_REJECTED;
                return ZG_BUSY;
            }
        }

        lc->count++;
        lc->workers[slot]++;
        sh->stats.current++;
        sh->stats.passed++;
        zg_shmtx_unlock(&zone->pool->mutex);

        holds[*nholds].zone = zone;
        holds[*nholds].node = lc;
        holds[*nholds].slot = slot;
        (*nholds)++;
    }

    return ZG_OK;
}

void zg_limit_conn_release(zg_limit_conn_hold_t *holds, int nholds)
{
    while (nholds > 0) {
        nholds--;
        zg_limit_conn_put(&holds[nholds], 0);
    }
}

void zg_limit_conn_forget_worker(zg_zone_t *zone, int slot)
{
    zg_limit_conn_sh_t *sh = zone->data;
    zg_limit_conn_node_t *lc;
    zg_rbtree_node_t *node, *next;
    uint16_t held;

    if (sh == NULL || zone->pool == NULL || slot < 0 || slot >= ZG_MAX_WORKERS) {
        return;
    }

    zg_shmtx_lock(&zone->pool->mutex);
    for (node = zg_rbtree_min(&sh->rbtree); node != NULL; node = next) {
        next = zg_rbtree_next(&sh->rbtree, node);
        lc = zg_data_of(node, zg_limit_conn_node_t, node);
        held = lc->workers[slot];
        if (held == 0) {
            continue;
        }
        lc->workers[slot] = 0;
        lc->count = lc->count > held ? lc->count - held : 0;
        sh->stats.current = sh->stats.current > held ? sh->stats.current - held : 0;
        if (zg_limit_conn_idle(sh, lc)) {
            zg_rbtree_delete(&sh->rbtree, node);
            zg_slab_free_locked(zone->pool, lc);
            sh->stats.entries--;
        }
    }
    zg_shmtx_unlock(&zone->pool->mutex);
}

int zg_limit_conn_key_is_addr(zg_zone_t *zone)
{
    zg_limit_conn_sh_t *sh = zone->data;
    static const char b[] = "$binary_remote_addr";

    return sh != NULL && sh->key_len == sizeof(b) - 1 && memcmp(sh->key, b, sizeof(b) - 1) == 0;
}

size_t zg_limit_conn_top(zg_zone_t *zone, zg_limit_conn_top_t *out, size_t n)
{
    zg_limit_conn_sh_t *sh = zone->data;
    zg_rbtree_node_t *node;
    zg_limit_conn_node_t *lc;
    size_t have = 0, i;

    if (sh == NULL || n == 0) {
        return 0;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    node = sh->rbtree.root == sh->rbtree.sentinel ? NULL : zg_rbtree_min(&sh->rbtree);
    for (; node != NULL; node = zg_rbtree_next(&sh->rbtree, node)) {
        lc = zg_data_of(node, zg_limit_conn_node_t, node);
        if (lc->count == 0 || (have == n && lc->count <= out[n - 1].count)) {
            continue;
        }
        /* insertion into out, most first */
        i = have < n ? have++ : n - 1;
        while (i > 0 && out[i - 1].count < lc->count) {
            out[i] = out[i - 1];
            i--;
        }
        out[i].count = lc->count;
        out[i].len = lc->len;
        memcpy(out[i].key, lc->data, lc->len);
    }
    zg_shmtx_unlock(&zone->pool->mutex);
    return have;
}

void zg_limit_conn_stats(zg_zone_t *zone, zg_limit_conn_stats_t *out)
{
    zg_limit_conn_sh_t *sh = zone->data;

    if (sh == NULL || zone->pool == NULL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    *out = sh->stats;
    zg_shmtx_unlock(&zone->pool->mutex);
}

/* ---- fleet-wide counts ---- */

zg_sync_stats_t *zg_limit_conn_sync_shared(zg_zone_t *zone)
{
    zg_limit_conn_sh_t *sh = zone->data;

    return sh != NULL && zone->pool != NULL && sh->synced ? &sh->sync : NULL;
}

const char *zg_limit_conn_sync_host(zg_zone_t *zone)
{
    zg_limit_conn_sh_t *sh = zone->data;

    return sh != NULL ? sh->host : "";
}

/* one entry for the push; ZG_DECLINED: freed instead (nothing to tell) */
static int zg_limit_conn_sync_one(zg_zone_t *zone, zg_limit_conn_sh_t *sh,
                                  zg_limit_conn_node_t *lc, zg_limit_conn_sync_pt cb,
                                  void *arg)
{
    if (zg_limit_conn_idle(sh, lc)) {
        zg_rbtree_delete(&sh->rbtree, &lc->node);
        zg_slab_free_locked(zone->pool, lc);
        sh->stats.entries--;
        return ZG_DECLINED;
    }
    if (cb(arg, lc->data, lc->len, lc->count) != ZG_OK) {
        return ZG_ERROR;
    }
    lc->pushed = lc->count;
    return ZG_OK;
}

int zg_limit_conn_sync_take(zg_zone_t *zone, int max, zg_limit_conn_sync_pt cb, void *arg)
{
    zg_limit_conn_sh_t *sh = zone->data;
    zg_rbtree_node_t *node, *next;
    uint32_t cursor;
    int n = 0, rc, pass;

    if (sh == NULL || zone->pool == NULL) {
        return 0;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    cursor = sh->cursor;
    /* keys above the cursor first, then from the start up to it */
    for (pass = 0; pass < 2 && n < max; pass++) {
        for (node = zg_rbtree_min(&sh->rbtree); node != NULL && n < max; node = next) {
            next = zg_rbtree_next(&sh->rbtree, node);
            if ((pass == 0) != (node->key > cursor)) {
                continue;
            }
            rc = zg_limit_conn_sync_one(zone, sh,
                                        zg_data_of(node, zg_limit_conn_node_t, node), cb, arg);
            if (rc == ZG_ERROR) {
                pass = 2;
                break;
            }
            if (rc == ZG_OK) {
                n++;
                sh->cursor = node->key;
            }
        }
    }
    if (n < max) {
        sh->cursor = 0; /* everything fitted: start from the beginning next time */
    }
    zg_shmtx_unlock(&zone->pool->mutex);
    return n;
}

void zg_limit_conn_sync_apply(zg_zone_t *zone, const unsigned char *key, size_t len,
                              uint32_t others)
{
    zg_limit_conn_sh_t *sh = zone->data;
    zg_limit_conn_key_t k = { (const char *)key, len };
    zg_limit_conn_node_t *lc;
    zg_rbtree_node_t *node;

    if (sh == NULL || zone->pool == NULL) {
        return;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    node = zg_rbtree_lookup(&sh->rbtree, zg_hash32(key, len), zg_limit_conn_cmp, &k);
    if (node != NULL) {
        lc = zg_data_of(node, zg_limit_conn_node_t, node);
        lc->others = others;
    }
    zg_shmtx_unlock(&zone->pool->mutex);
}

void zg_limit_conn_sync_local(zg_zone_t *zone)
{
    zg_limit_conn_sh_t *sh = zone->data;
    zg_limit_conn_node_t *lc;
    zg_rbtree_node_t *node, *next;

    if (sh == NULL || zone->pool == NULL) {
        return;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    for (node = zg_rbtree_min(&sh->rbtree); node != NULL; node = next) {
        next = zg_rbtree_next(&sh->rbtree, node);
        lc = zg_data_of(node, zg_limit_conn_node_t, node);
        lc->others = 0;
        if (lc->count == 0) {
            /* its lease, if any, expires in Redis */
            lc->pushed = 0;
            zg_rbtree_delete(&sh->rbtree, node);
            zg_slab_free_locked(zone->pool, lc);
            sh->stats.entries--;
        }
    }
    zg_shmtx_unlock(&zone->pool->mutex);
}

uint64_t zg_limit_conn_sync_fleet(zg_zone_t *zone)
{
    zg_limit_conn_sh_t *sh = zone->data;
    zg_limit_conn_node_t *lc;
    zg_rbtree_node_t *node;
    uint64_t sum = 0;

    if (sh == NULL || zone->pool == NULL) {
        return 0;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    for (node = zg_rbtree_min(&sh->rbtree); node != NULL;
         node = zg_rbtree_next(&sh->rbtree, node)) {
        lc = zg_data_of(node, zg_limit_conn_node_t, node);
        sum += (uint64_t)lc->count + lc->others;
    }
    zg_shmtx_unlock(&zone->pool->mutex);
    return sum;
}

uint32_t zg_limit_conn_count(zg_zone_t *zone, const void *key, size_t len)
{
    zg_limit_conn_sh_t *sh = zone->data;
    zg_limit_conn_key_t k = { key, len };
    zg_rbtree_node_t *node;
    uint32_t count;

    if (sh == NULL || zone->pool == NULL) {
        return 0;
    }
    zg_shmtx_lock(&zone->pool->mutex);
    node = zg_rbtree_lookup(&sh->rbtree, zg_hash32(key, len), zg_limit_conn_cmp, &k);
    count = node != NULL ? zg_data_of(node, zg_limit_conn_node_t, node)->count : 0;
    zg_shmtx_unlock(&zone->pool->mutex);
    return count;
}

/* ---------------------------------------------------------------- module */

const zg_zone_kind_t zg_limit_conn_zone_kind = { "limit_conn", zg_limit_conn_zone_init };

/* per request: how many slots it holds (zeroed), and the slots (scratch) */
typedef struct {
    int nholds;
} zg_limit_conn_ctx_t;

typedef struct {
    zg_limit_conn_hold_t holds[ZG_LIMIT_CONN_MAX_HOLDS];
} zg_limit_conn_scratch_t;

static zg_limit_conn_hold_t *zg_limit_conn_holds(zg_request_t *r)
{
    return ((zg_limit_conn_scratch_t *)zg_request_scratch(r, zg_limit_conn_module))->holds;
}

static int zg_limit_conn_zone_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_limit_conn_main_conf_t *lmcf = conf;
    zg_limit_conn_zone_conf_t *lz, **slot;
    zg_str_t *a = cf->args, *zone_arg = NULL;
    zg_zone_t *z = NULL;

    (void)cmd;
    lz = zg_conf_alloc(cf->conf, sizeof(*lz));
    if (lz == NULL) {
        return zg_conf_nomem(cf);
    }
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
    if ((lz->key_text = zg_conf_strdup(cf->conf, a[1].data, a[1].len)) == NULL) {
        return zg_conf_nomem(cf);
    }
    if (zg_conf_zone_param(cf, zone_arg, &zg_limit_conn_zone_kind, &z) != ZG_OK) {
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

static int zg_limit_conn_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_limit_conn_main_conf_t *lmcf = zg_limit_conn_main_conf(cf->conf);
    zg_limit_conn_loc_conf_t *lc = conf;
    zg_limit_conn_conf_t *l;
    zg_str_t *a = cf->args;
    int v;

    (void)cmd;
    if (a[2].len > 1 && a[2].data[0] == '$') {
        v = 0; /* from the variable, per request */
        if (cf->nargs == 4) {
            if (!zg_conf_prefix(&a[3], "default=")) {
                return zg_conf_bad_param(cf, &a[3]);
            }
            v = zg_conf_atoi(a[3].data + 8, a[3].len - 8);
            if (v <= 0 || v > 65535) {
                return zg_conf_error(cf, "invalid number of connections \"%s\"", a[3].data);
            }
        }
    } else {
        if (cf->nargs > 3) {
            return zg_conf_bad_param(cf, &a[3]);
        }
        v = zg_conf_atoi(a[2].data, a[2].len);
        if (v <= 0 || v > 65535) {
            return zg_conf_error(cf, "invalid number of connections \"%s\"", a[2].data);
        }
    }
    if (lc->nlimits >= ZG_LIMIT_CONN_MAX_HOLDS) {
        return zg_conf_error(cf, "too many \"limit_conn\" directives (the limit is %d)",
                             ZG_LIMIT_CONN_MAX_HOLDS);
    }
    l = zg_conf_push(cf->conf, lc->limits, lc->nlimits);
    if (l == NULL) {
        return zg_conf_nomem(cf);
    }
    l->conn = (uint32_t)v;
    if (a[2].len > 1 && a[2].data[0] == '$') {
        l->conn_cv = zg_conf_cv(cf, a[2].data, a[2].len);
        if (l->conn_cv == NULL) {
            return ZG_ERROR;
        }
    }
    return zg_conf_zone_ref_add(cf, &lmcf->refs, &lmcf->nrefs, a[1].data, a[1].len, lc,
                                lc->nlimits - 1);
}

static void *zg_limit_conn_create_main_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_limit_conn_main_conf_t));
}

static int zg_limit_conn_init_main_conf(zg_cf_t *cf, void *conf)
{
    zg_limit_conn_main_conf_t *lmcf = conf;
    for (int i = 0; i < lmcf->nrefs; i++) {
        zg_conf_zone_ref_t *r = &lmcf->refs[i];
        zg_limit_conn_loc_conf_t *lc = r->level;
        zg_limit_conn_zone_conf_t *z = zg_conf_zone_ref_conf(cf, r, &zg_limit_conn_zone_kind);
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

static void *zg_limit_conn_create_loc_conf(zg_conf_t *conf)
{
    zg_limit_conn_loc_conf_t *lc = zg_conf_alloc(conf, sizeof(*lc));

    if (lc == NULL) {
        return NULL;
    }
    lc->nlimits = -1;
    lc->status = ZG_UNSET;
    lc->log_level = ZG_UNSET;
    lc->dry_run = ZG_UNSET;
    return lc;
}

static int zg_limit_conn_merge_loc_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_limit_conn_loc_conf_t *p = parent, *c = child;

    (void)cf;
    if (c->nlimits < 0) {
        c->limits = p->limits;
        c->nlimits = p->nlimits;
    }
    ZG_CONF_MERGE(c, p, status, ZG_UNSET);
    ZG_CONF_MERGE(c, p, log_level, ZG_UNSET);
    ZG_CONF_MERGE(c, p, dry_run, ZG_UNSET);
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
    return ZG_OK;
}

/* preaccess, after limit_req: a rejected request never takes a slot */
static int zg_limit_conn_handler(zg_request_t *r)
{
    zg_limit_conn_loc_conf_t *lc = zg_limit_conn_loc_conf(r->loc_conf);
    zg_limit_conn_ctx_t *x;
    int status = 0, rc;

    /* as nginx: once per request, not again after an internal redirect */
    if (lc->nlimits <= 0 || r->ctx.limit_conn_status != ZG_LIMIT_NONE) {
        return ZG_DECLINED;
    }
    x = zg_request_ctx(r, zg_limit_conn_module);
    rc = zg_limit_conn_acquire(lc->limits, lc->nlimits, lc->dry_run, lc->log_level, &r->ctx,
                               zg_limit_conn_holds(r), &x->nholds, &status);
    r->ctx.limit_conn_status = status;
    if (x->nholds > 0) {
        r->holding = 1;
    }
    if (rc == ZG_BUSY || rc == ZG_ERROR) {
        zg_request_respond(r, lc->status, NULL, NULL, NULL, 0);
        return ZG_DONE;
    }
    return ZG_DECLINED;
}

static void zg_limit_conn_release_request(zg_request_t *r)
{
    zg_limit_conn_ctx_t *x = zg_request_ctx(r, zg_limit_conn_module);

    if (x->nholds) {
        zg_limit_conn_release(zg_limit_conn_holds(r), x->nholds);
        x->nholds = 0;
    }
}

/* a stream session's holds: taken at accept, given back however it ends */
typedef struct {
    zg_limit_conn_hold_t holds[ZG_LIMIT_CONN_MAX_HOLDS];
    int nholds;
} zg_limit_conn_stream_t;

/* stream preaccess, after limit_req: a rejected session is closed (status 503) */
static int zg_limit_conn_stream_handler(zg_stream_session_t *s)
{
    zg_limit_conn_loc_conf_t *lc = zg_stream_conf(s, zg_limit_conn_module);
    zg_limit_conn_stream_t *x;
    int status = 0, rc;

    if (lc->nlimits <= 0) {
        return ZG_DECLINED;
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return ZG_DONE;
    }
    s->ctx[zg_limit_conn_module.index] = x; /* freed with the session */
    rc = zg_limit_conn_acquire(lc->limits, lc->nlimits, lc->dry_run, lc->log_level, &s->vars,
                               x->holds, &x->nholds, &status);
    s->vars.limit_conn_status = status;
    if (rc == ZG_BUSY || rc == ZG_ERROR) {
        zg_stream_finalize(s, ZG_STREAM_SERVICE_UNAVAILABLE);
        return ZG_DONE;
    }
    return ZG_DECLINED;
}

static void zg_limit_conn_stream_release(zg_stream_session_t *s)
{
    zg_limit_conn_stream_t *x = s->ctx[zg_limit_conn_module.index];

    if (x != NULL && x->nholds > 0) {
        zg_limit_conn_release(x->holds, x->nholds);
        x->nholds = 0;
    }
}

/* master: a dead worker's slots are given back */
static void zg_limit_conn_worker_gone(zg_conf_t *conf, int slot)
{
    zg_limit_conn_main_conf_t *lmcf = zg_limit_conn_main_conf(conf);

    for (int i = 0; i < lmcf->nzones; i++) {
        if (lmcf->zones[i]->zone->pool != NULL) {
            zg_limit_conn_forget_worker(lmcf->zones[i]->zone, slot);
        }
    }
}

static void zg_limit_conn_metrics(zg_buf_t *b, const zg_conf_t *conf)
{
    static const char *results[] = { "passed", "rejected", "rejected_dry_run" };
    zg_limit_conn_stats_t *st;
    zg_zone_t *z;
    uint64_t v[3];
    int i, j, n = zg_admin_zones_of(conf, ZG_ZONE_LIMIT_CONN);

    st = calloc(n ? n : 1, sizeof(*st));
    if (st == NULL) {
        b->failed = 1;
        return;
    }
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_LIMIT_CONN) {
            zg_limit_conn_stats(z, &st[i++]);
        }
    }

    zg_admin_family(b, "zonegate_limit_conn_requests_total", "counter",
                    "Requests checked by limit_conn, by zone and outcome.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool == NULL || z->kind != ZG_ZONE_LIMIT_CONN) {
            continue;
        }
        v[0] = st[i].passed;
        v[1] = st[i].rejected;
        v[2] = st[i].rejected_dry_run;
        for (j = 0; j < 3; j++) {
            zg_admin_sample(b, "zonegate_limit_conn_requests_total", v[j], "zone", z->name,
                            "result", results[j], NULL);
        }
        i++;
    }

    zg_admin_family(b, "zonegate_limit_conn_current", "gauge",
                    "Requests holding a limit_conn slot now, all keys.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_LIMIT_CONN) {
            zg_admin_sample(b, "zonegate_limit_conn_current", st[i++].current, "zone", z->name,
                            NULL);
        }
    }

    zg_admin_family(b, "zonegate_limit_conn_entries", "gauge",
                    "Keys held in the limit_conn zone now.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_LIMIT_CONN) {
            zg_admin_sample(b, "zonegate_limit_conn_entries", st[i++].entries, "zone", z->name,
                            NULL);
        }
    }

    free(st);
}

#define ZG_LC(f) offsetof(zg_limit_conn_loc_conf_t, f)

static const zg_command_t zg_limit_conn_commands[] = {
    { "limit_conn_zone", ZG_CTX_HTTP | ZG_CTX_STREAM, 0, 2, -1, zg_limit_conn_zone_directive,
      ZG_MAIN_CONF, 0, NULL },
    { "limit_conn", ZG_CTX_SETTINGS | ZG_CTX_STREAM_SETTINGS, 0, 2, 3, zg_limit_conn_directive,
      ZG_LOC_CONF, 0, NULL },
    { "limit_conn_status", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_status, ZG_LOC_CONF,
      ZG_LC(status), NULL },
    { "limit_conn_log_level", ZG_CTX_SETTINGS | ZG_CTX_STREAM_SETTINGS, 0, 1, 1,
      zg_conf_set_level, ZG_LOC_CONF, ZG_LC(log_level), NULL },
    { "limit_conn_dry_run", ZG_CTX_SETTINGS | ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_conf_set_flag,
      ZG_LOC_CONF, ZG_LC(dry_run), NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_limit_conn_module = {
    .name = "limit_conn",
    .commands = zg_limit_conn_commands,
    .create_main_conf = zg_limit_conn_create_main_conf,
    .init_main_conf = zg_limit_conn_init_main_conf,
    .create_loc_conf = zg_limit_conn_create_loc_conf,
    .merge_loc_conf = zg_limit_conn_merge_loc_conf,
    .worker_gone = zg_limit_conn_worker_gone,
    .phase = ZG_PHASE_PREACCESS,
    .handler = zg_limit_conn_handler,
    .release = zg_limit_conn_release_request,
    .ctx_size = sizeof(zg_limit_conn_ctx_t),
    .scratch_size = sizeof(zg_limit_conn_scratch_t),
    .stream_phase = ZG_STREAM_PHASE_PREACCESS,
    .stream_handler = zg_limit_conn_stream_handler,
    .stream_release = zg_limit_conn_stream_release,
    .metrics = zg_limit_conn_metrics,
};
