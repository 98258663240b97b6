/* zg_limit_conn.c — concurrent requests per key in a shared zone (nginx's
 * limit_conn), counted per worker slot so a dead worker's share can be given back. */
#include "zg_limit_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "zg_log.h"
#include "zg_rbtree.h"

#define ZG_LIMIT_CONN_KEY_MAX 255

int zg_worker_slot = 0;

/* no LRU: an entry lives while some request holds it */
typedef struct {
    zg_rbtree_node_t node;     /* key = hash of data */
    uint32_t count;            /* holds, all workers */
    uint8_t len;
    uint16_t workers[ZG_MAX_WORKERS]; /* holds per worker slot; their sum is count */
    unsigned char data[];
} zg_limit_conn_node_t;

typedef struct {
    zg_rbtree_t rbtree;
    zg_rbtree_node_t sentinel;
    zg_limit_conn_stats_t stats;
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
    size_t len = zg_min((size_t)lc->len, k->len);
    int rc;

    rc = memcmp(lc->data, k->data, len);
    if (rc != 0) {
        return rc;
    }
    return lc->len < k->len ? -1 : lc->len > k->len ? 1 : 0;
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
    sh->key_len = key_len;
    memcpy(sh->key, key, key_len);

    zone->pool->data = sh;
    zone->data = sh;
    return ZG_OK;
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
    if (lc->count == 0) {
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
    uint32_t hash;
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

        len = zg_cv_eval(zc->key, ctx, 0, buf, sizeof(buf));
        if (len == 0) {
            continue;
        }
        if (len > ZG_LIMIT_CONN_KEY_MAX) {
            zg_log_error(ZG_LOG_ERR, 0,
                         "the value of the \"%s\" key is more than 255 bytes: \"%.*s...\"",
                         zc->key_text != NULL ? zc->key_text : "", (int)ZG_LIMIT_CONN_KEY_MAX,
                         buf);
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

            /* a slot's share is 16 bits: beyond that the key is over any sane limit */
            if (lc->count >= limits[i].conn || lc->workers[slot] == UINT16_MAX) {
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
        if (lc->count == 0) {
            zg_rbtree_delete(&sh->rbtree, node);
            zg_slab_free_locked(zone->pool, lc);
            sh->stats.entries--;
        }
    }
    zg_shmtx_unlock(&zone->pool->mutex);
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
