/* zg_upstream.c — smooth weighted round-robin over an upstream's peers, with
 * nginx's max_fails/fail_timeout ("checked"), max_conns, backup and down. */
#include "zg_upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_admin.h"
#include "zg_log.h"
#include "zg_worker.h"

#define ZG_UPSTREAM_MAGIC 0x7a677570u /* "zgup" */

/* one server: its configuration (to recognise an identical list on reload)
 * and its state; lives in the zone or in process memory */
typedef struct {
    char text[64];
    socklen_t socklen;
    int weight;
    int max_fails;
    int max_conns;
    zg_msec_t fail_timeout;
    uint8_t backup;
    uint8_t down;
    uint8_t drain;          /* set through the API: no new requests */
    uint8_t conf_down;      /* as configured: a reload keeps the zone when they match */
    int conf_weight;

    int current_weight;
    int effective_weight;
    int fails;              /* counted against max_fails; reset by a passed check */
    uint32_t conns;         /* active picks, all workers */
    zg_msec_t accessed;     /* last failure */
    zg_msec_t checked;      /* last failure, or start of the current check window */
    uint64_t requests;
    uint64_t fails_total;
    uint64_t bytes_sent;    /* stream sessions: to the peer */
    uint64_t bytes_received;
} zg_upstream_peer_sh_t;

typedef struct zg_upstream_sh_s zg_upstream_sh_t;
struct zg_upstream_sh_s {
    uint32_t magic;
    int nservers;
    int nbackup;
    int single;             /* one primary and no backup: never marked failed */
    zg_upstream_sh_t *prev; /* previous generation, still used by old workers */
    zg_upstream_peer_sh_t peer[];
};

static inline int zg_upstream_tried(const zg_upstream_pick_t *pk, int i)
{
    return (pk->tried[i / 64] >> (i % 64)) & 1;
}

static inline void zg_upstream_set_tried(zg_upstream_pick_t *pk, int i)
{
    pk->tried[i / 64] |= (uint64_t)1 << (i % 64);
}

/* now - t > timeout, safe when a caller's clock went backwards */
static inline int zg_upstream_elapsed(zg_msec_t now, zg_msec_t t, zg_msec_t timeout)
{
    return now > t && now - t > timeout;
}

static inline void zg_upstream_lock(zg_upstream_conf_t *u)
{
    if (u->zone != NULL) {
        zg_shmtx_lock(&u->zone->pool->mutex);
    }
}

static inline void zg_upstream_unlock(zg_upstream_conf_t *u)
{
    if (u->zone != NULL) {
        zg_shmtx_unlock(&u->zone->pool->mutex);
    }
}

static size_t zg_upstream_sh_size(int n)
{
    return sizeof(zg_upstream_sh_t) + (size_t)n * sizeof(zg_upstream_peer_sh_t);
}

static int zg_upstream_check(const zg_upstream_conf_t *u)
{
    int i, nprimary = 0;

    if (u->nservers <= 0 || u->nservers > ZG_MAX_PEERS) {
        zg_log_error(ZG_LOG_EMERG, 0, "no servers or too many servers in upstream \"%s\"",
                     u->name);
        return ZG_ERROR;
    }
    for (i = 0; i < u->nservers; i++) {
        if (!u->servers[i].backup) {
            nprimary++;
        }
    }
    if (nprimary == 0) {
        zg_log_error(ZG_LOG_EMERG, 0, "no servers in upstream \"%s\"", u->name);
        return ZG_ERROR;
    }
    return ZG_OK;
}

static void zg_upstream_sh_fill(zg_upstream_sh_t *sh, const zg_upstream_conf_t *u)
{
    const zg_upstream_server_t *s;
    zg_upstream_peer_sh_t *p;
    int i;

    memset(sh, 0, zg_upstream_sh_size(u->nservers));
    sh->magic = ZG_UPSTREAM_MAGIC;
    sh->nservers = u->nservers;

    for (i = 0; i < u->nservers; i++) {
        s = &u->servers[i];
        p = &sh->peer[i];
        memcpy(p->text, s->addr.text, sizeof(p->text));
        p->text[sizeof(p->text) - 1] = '\0';
        p->socklen = s->addr.socklen;
        p->weight = s->weight > 0 ? s->weight : 1;
        p->max_fails = s->max_fails;
        p->max_conns = s->max_conns;
        p->fail_timeout = s->fail_timeout;
        p->backup = s->backup;
        p->down = s->down;
        p->conf_down = s->down;
        p->conf_weight = p->weight;
        p->effective_weight = p->weight;
        if (s->backup) {
            sh->nbackup++;
        }
    }
    sh->single = (u->nservers == 1);
}

/* 1 if sh was made from a server list identical to u's */
static int zg_upstream_sh_same(const zg_upstream_sh_t *sh, const zg_upstream_conf_t *u)
{
    const zg_upstream_server_t *s;
    const zg_upstream_peer_sh_t *p;
    int i;

    if (sh->magic != ZG_UPSTREAM_MAGIC || sh->nservers != u->nservers) {
        return 0;
    }
    for (i = 0; i < u->nservers; i++) {
        s = &u->servers[i];
        p = &sh->peer[i];
        if (strncmp(p->text, s->addr.text, sizeof(p->text) - 1) != 0
            || p->socklen != s->addr.socklen
            || p->conf_weight != (s->weight > 0 ? s->weight : 1)
            || p->max_fails != s->max_fails || p->max_conns != s->max_conns
            || p->fail_timeout != s->fail_timeout || p->backup != s->backup
            || p->conf_down != s->down)
        {
            return 0;
        }
    }
    return 1;
}

/* What the API changed on a peer (down, drain, weight) stays when a reload keeps the
 * peer: the same address, backup or not, with the same configured down and weight. */
static void zg_upstream_keep_changes(zg_upstream_sh_t *sh, const zg_upstream_sh_t *old)
{
    zg_upstream_peer_sh_t *p;
    const zg_upstream_peer_sh_t *o;

    for (int i = 0; i < sh->nservers; i++) {
        p = &sh->peer[i];
        for (int k = 0; k < old->nservers; k++) {
            o = &old->peer[k];
            if (strcmp(o->text, p->text) != 0 || o->backup != p->backup
                || o->conf_down != p->conf_down || o->conf_weight != p->conf_weight) {
                continue;
            }
            p->down = o->down;
            p->drain = o->drain;
            if (o->weight != o->conf_weight) {
                p->weight = o->weight;
                p->effective_weight = o->weight;
            }
            break;
        }
    }
}

int zg_upstream_zone_init(zg_zone_t *zone, void *old_data)
{
    zg_upstream_conf_t *u = zone->conf;
    zg_upstream_sh_t *sh, *old = old_data;
    zg_slab_pool_t *pool = zone->pool;

    if (u == NULL || zg_upstream_check(u) != ZG_OK) {
        return ZG_ERROR;
    }

    zg_shmtx_lock(&pool->mutex);

    if (old != NULL && old->magic == ZG_UPSTREAM_MAGIC && zg_upstream_sh_same(old, u)) {
        sh = old;

    } else {
        /* workers of the previous generation may still use `old`: keep it one
         * more generation and drop the one before it */
        if (old != NULL && old->magic == ZG_UPSTREAM_MAGIC && old->prev != NULL) {
            zg_slab_free_locked(pool, old->prev);
            old->prev = NULL;
        }

        sh = zg_slab_alloc_locked(pool, zg_upstream_sh_size(u->nservers));
        if (sh == NULL) {
            zg_shmtx_unlock(&pool->mutex);
            zg_log_error(ZG_LOG_EMERG, 0,
                         "zone \"%s\" is too small for the %d servers of upstream \"%s\"",
                         zone->name, u->nservers, u->name);
            return ZG_ERROR;
        }
        zg_upstream_sh_fill(sh, u);
        sh->prev = (old != NULL && old->magic == ZG_UPSTREAM_MAGIC) ? old : NULL;
        if (sh->prev != NULL) {
            zg_upstream_keep_changes(sh, sh->prev);
        }
    }

    pool->data = sh;
    zone->data = sh;
    u->peers = sh;

    zg_shmtx_unlock(&pool->mutex);
    return ZG_OK;
}

int zg_upstream_init(zg_upstream_conf_t *u)
{
    zg_upstream_sh_t *sh;

    if (u->zone != NULL) {
        if (u->zone->pool == NULL || u->zone->pool->data == NULL) {
            zg_log_error(ZG_LOG_EMERG, 0, "zone \"%s\" of upstream \"%s\" is not mapped",
                         u->zone->name, u->name);
            return ZG_ERROR;
        }
        u->peers = u->zone->pool->data;
        return ZG_OK;
    }

    if (zg_upstream_check(u) != ZG_OK) {
        return ZG_ERROR;
    }

    sh = malloc(zg_upstream_sh_size(u->nservers));
    if (sh == NULL) {
        zg_log_error(ZG_LOG_EMERG, 0, "upstream \"%s\": out of memory", u->name);
        return ZG_ERROR;
    }
    zg_upstream_sh_fill(sh, u);

    free(u->peers);
    u->peers = sh;
    return ZG_OK;
}

void zg_upstream_cleanup(zg_upstream_conf_t *u)
{
    if (u->zone == NULL) {
        free(u->peers);
    }
    u->peers = NULL;
}

void zg_upstream_pick_init(zg_upstream_pick_t *pk)
{
    memset(pk, 0, sizeof(*pk));
    pk->peer = -1;
}

/* nginx's ngx_http_upstream_get_peer over the primaries (backup = 0) or the
 * backups: the usable peer with the highest current_weight wins and gives
 * back the total.  Returns its index or -1. */
static int zg_upstream_swrr(zg_upstream_sh_t *sh, zg_upstream_pick_t *pk, int backup,
                            zg_msec_t now)
{
    zg_upstream_peer_sh_t *p, *best = NULL;
    int i, b = -1, total = 0;

    for (i = 0; i < sh->nservers; i++) {
        p = &sh->peer[i];

        if (p->backup != backup || zg_upstream_tried(pk, i) || p->down || p->drain) {
            continue;
        }
        if (p->max_fails && p->fails >= p->max_fails
            && !zg_upstream_elapsed(now, p->checked, p->fail_timeout))
        {
            continue;
        }
        if (p->max_conns && p->conns >= (uint32_t)p->max_conns) {
            continue;
        }

        p->current_weight += p->effective_weight;
        total += p->effective_weight;

        if (p->effective_weight < p->weight) {
            p->effective_weight++;
        }

        if (best == NULL || p->current_weight > best->current_weight) {
            best = p;
            b = i;
        }
    }

    if (best == NULL) {
        return -1;
    }

    best->current_weight -= total;

    /* a failed peer past fail_timeout gets this one request as its check */
    if (zg_upstream_elapsed(now, best->checked, best->fail_timeout)) {
        best->checked = now;
    }

    return b;
}

int zg_upstream_get(zg_upstream_conf_t *u, zg_upstream_pick_t *pk, zg_msec_t now)
{
    zg_upstream_sh_t *sh = u->peers;
    zg_upstream_peer_sh_t *p;
    int i = -1;

    if (sh == NULL) {
        return ZG_ERROR;
    }

    zg_upstream_lock(u);

    if (sh->single) {
        p = &sh->peer[0];
        if (!p->down && !p->drain && !zg_upstream_tried(pk, 0)
            && !(p->max_conns && p->conns >= (uint32_t)p->max_conns))
        {
            i = 0;
        }

    } else {
        if (!pk->backup) {
            i = zg_upstream_swrr(sh, pk, 0, now);
            if (i < 0 && sh->nbackup > 0) {
                pk->backup = 1;
            }
        }
        if (i < 0 && pk->backup) {
            i = zg_upstream_swrr(sh, pk, 1, now);
        }
    }

    if (i < 0) {
        zg_upstream_unlock(u);
        return ZG_BUSY;
    }

    p = &sh->peer[i];
    p->conns++;
    p->requests++;

    zg_upstream_unlock(u);

    zg_upstream_set_tried(pk, i);
    pk->tries++;
    pk->peer = i;
    pk->addr = &u->servers[i].addr;
    return ZG_OK;
}

void zg_upstream_free(zg_upstream_conf_t *u, zg_upstream_pick_t *pk, int failed,
                      zg_msec_t now)
{
    zg_upstream_sh_t *sh = u->peers;
    zg_upstream_peer_sh_t *p;
    int disabled = 0;

    if (sh == NULL || pk->peer < 0 || pk->peer >= sh->nservers) {
        return;
    }

    zg_upstream_lock(u);

    p = &sh->peer[pk->peer];

    if (p->conns > 0) {
        p->conns--;
    }
    if (failed) {
        p->fails_total++;
    }

    if (!sh->single) {
        if (failed) {
            p->fails++;
            p->accessed = now;
            p->checked = now;

            if (p->max_fails) {
                p->effective_weight -= p->weight / p->max_fails;
                disabled = (p->fails >= p->max_fails);
            }
            if (p->effective_weight < 0) {
                p->effective_weight = 0;
            }

        } else if (p->accessed < p->checked) {
            /* the check after fail_timeout passed */
            p->fails = 0;
        }
    }

    zg_upstream_unlock(u);

    if (disabled) {
        zg_log(ZG_LOG_WARN, "upstream server temporarily disabled: %s in upstream \"%s\"",
               u->servers[pk->peer].addr.text, u->name);
    }

    pk->peer = -1;
    pk->addr = NULL;
}

void zg_upstream_bytes(zg_upstream_conf_t *u, int i, uint64_t sent, uint64_t received)
{
    zg_upstream_sh_t *sh = u->peers;

    if (sh == NULL || i < 0 || i >= sh->nservers) {
        return;
    }
    zg_upstream_lock(u);
    sh->peer[i].bytes_sent += sent;
    sh->peer[i].bytes_received += received;
    zg_upstream_unlock(u);
}

int zg_upstream_peer_stats(zg_upstream_conf_t *u, int i, zg_upstream_peer_stats_t *out,
                           zg_msec_t now)
{
    zg_upstream_sh_t *sh = u->peers;
    zg_upstream_peer_sh_t *p;

    if (sh == NULL || i < 0 || i >= u->nservers || i >= sh->nservers) {
        return ZG_ERROR;
    }

    memset(out, 0, sizeof(*out));
    out->addr = &u->servers[i].addr;

    zg_upstream_lock(u);

    p = &sh->peer[i];
    out->requests = p->requests;
    out->fails = p->fails_total;
    out->bytes_sent = p->bytes_sent;
    out->bytes_received = p->bytes_received;
    out->active = p->conns;
    out->weight = p->weight;
    out->recent_fails = p->fails;
    out->effective_weight = p->effective_weight;
    out->current_weight = p->current_weight;
    out->backup = p->backup;
    out->down = p->down;
    out->drain = p->drain;
    out->unavailable = !sh->single && p->max_fails && p->fails >= p->max_fails
                       && !zg_upstream_elapsed(now, p->checked, p->fail_timeout);

    zg_upstream_unlock(u);
    return ZG_OK;
}

int zg_upstream_peer_set(zg_upstream_conf_t *u, int i, int down, int drain, int weight)
{
    zg_upstream_sh_t *sh = u->peers;
    zg_upstream_peer_sh_t *p;

    if (sh == NULL || i < 0 || i >= u->nservers || i >= sh->nservers) {
        return ZG_ERROR;
    }
    zg_upstream_lock(u);
    p = &sh->peer[i];
    if (down >= 0) {
        p->down = (uint8_t)down;
        if (!down) {
            p->drain = 0;
        }
    }
    if (drain >= 0) {
        p->drain = (uint8_t)drain;
    }
    if (weight > 0) {
        p->weight = weight;
        p->effective_weight = weight;
        p->current_weight = 0;
    }
    zg_upstream_unlock(u);
    return ZG_OK;
}

/* ---------------------------------------------------------------- module */

const zg_zone_kind_t zg_upstream_zone_kind = { "upstream", zg_upstream_zone_init };

zg_upstream_conf_t *zg_upstream_find_in(zg_conf_t *conf, const char *name, int implicit,
                                        int stream)
{
    for (zg_upstream_conf_t *u = zg_upstream_main_conf(conf)->upstreams; u != NULL;
         u = u->next) {
        if ((int)u->implicit == implicit && (int)u->stream == stream
            && strcmp(u->name, name) == 0) {
            return u;
        }
    }
    return NULL;
}

static zg_upstream_conf_t *zg_upstream_new(zg_cf_t *cf, const char *name, const char *file,
                                           int line)
{
    zg_upstream_main_conf_t *umcf = zg_upstream_main_conf(cf->conf);
    zg_upstream_conf_t *u = zg_conf_alloc(cf->conf, sizeof(*u));

    if (u == NULL) {
        return NULL;
    }
    snprintf(u->name, sizeof(u->name), "%s", name);
    u->file = file;
    u->line = line;
    *umcf->tail = u;
    umcf->tail = &u->next;
    return u;
}

static void zg_upstream_server_init(zg_upstream_server_t *s, const zg_addr_t *addr)
{
    s->addr = *addr;
    s->weight = 1;
    s->max_fails = 1;
    s->fail_timeout = 10000;
}

zg_upstream_conf_t *zg_upstream_find(zg_conf_t *conf, const char *name, int implicit)
{
    return zg_upstream_find_in(conf, name, implicit, 0);
}

zg_upstream_conf_t *zg_upstream_implicit_in(zg_cf_t *cf, const char *name,
                                            const zg_addr_t *addr, const char *file,
                                            int line, int stream)
{
    zg_upstream_conf_t *u;
    zg_upstream_server_t *s;

    for (u = zg_upstream_main_conf(cf->conf)->upstreams; u != NULL; u = u->next) {
        if (u->implicit && (int)u->stream == stream && zg_addr_eq(&u->servers[0].addr, addr)) {
            return u;
        }
    }
    u = zg_upstream_new(cf, name, file, line);
    if (u == NULL || (s = zg_conf_push(cf->conf, u->servers, u->nservers)) == NULL) {
        return NULL;
    }
    u->implicit = 1;
    u->stream = stream ? 1 : 0;
    zg_upstream_server_init(s, addr);
    return u;
}

zg_upstream_conf_t *zg_upstream_implicit(zg_cf_t *cf, const char *name, const zg_addr_t *addr,
                                         const char *file, int line)
{
    return zg_upstream_implicit_in(cf, name, addr, file, line, 0);
}

static int zg_upstream_block(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_str_t *a = cf->args;
    zg_upstream_conf_t *u;
    int rc, stream = cf->ctx == ZG_CTX_STREAM;

    (void)cmd;
    (void)conf;
    if (a[1].len == 0 || a[1].len >= sizeof(u->name)) {
        return zg_conf_invalid(cf, &a[1]);
    }
    /* http and stream upstreams are two name spaces, as nginx's */
    if (zg_upstream_find_in(cf->conf, a[1].data, 0, stream) != NULL) {
        return zg_conf_error(cf, "duplicate upstream \"%s\"", a[1].data);
    }
    u = zg_upstream_new(cf, a[1].data, cf->file, cf->line);
    if (u == NULL) {
        return zg_conf_nomem(cf);
    }
    u->stream = stream ? 1 : 0;
    rc = zg_conf_block(cf, ZG_CTX_UPS, cf->loc_conf, u);
    if (rc == ZG_OK && u->nservers == 0) {
        return zg_conf_error_at(cf, u->file, u->line, "no servers are inside upstream");
    }
    return rc;
}

static int zg_upstream_server(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_upstream_conf_t *u = cf->block;
    zg_upstream_server_t *s;
    zg_str_t *a = cf->args;
    zg_addr_t addr;
    int rc, v;

    (void)cmd;
    (void)conf;
    if (u->nservers >= ZG_MAX_PEERS) {
        return zg_conf_error(cf, "too many servers in upstream \"%s\" (the limit is %d)",
                             u->name, ZG_MAX_PEERS);
    }
    /* a stream server needs its port (nginx: "no port in upstream") */
    rc = zg_conf_parse_addr(a[1].data, a[1].len, u->stream ? 0 : 80, &addr);
    if (rc == ZG_ERROR && u->stream && zg_conf_parse_addr(a[1].data, a[1].len, 1, &addr) != ZG_ERROR) {
        return zg_conf_error(cf, "no port in upstream \"%s\"", a[1].data);
    }
    if (rc == ZG_DECLINED) {
        return zg_conf_error(cf, "host not found in upstream \"%s\"", a[1].data);
    }
    if (rc != ZG_OK) {
        return zg_conf_error(cf, "invalid address in upstream \"%s\"", a[1].data);
    }
    s = zg_conf_push(cf->conf, u->servers, u->nservers);
    if (s == NULL) {
        return zg_conf_nomem(cf);
    }
    zg_upstream_server_init(s, &addr);
    for (int i = 2; i < cf->nargs; i++) {
        if (zg_conf_prefix(&a[i], "weight=")) {
            v = zg_conf_atoi(a[i].data + 7, a[i].len - 7);
            if (v <= 0) {
                return zg_conf_bad_param(cf, &a[i]);
            }
            s->weight = v;
        } else if (zg_conf_prefix(&a[i], "max_fails=")) {
            v = zg_conf_atoi(a[i].data + 10, a[i].len - 10);
            if (v < 0) {
                return zg_conf_bad_param(cf, &a[i]);
            }
            s->max_fails = v;
        } else if (zg_conf_prefix(&a[i], "fail_timeout=")) {
            s->fail_timeout = zg_conf_parse_time(a[i].data + 13, a[i].len - 13);
            if (s->fail_timeout == ZG_UNSET_MSEC) {
                return zg_conf_bad_param(cf, &a[i]);
            }
        } else if (zg_conf_prefix(&a[i], "max_conns=")) {
            v = zg_conf_atoi(a[i].data + 10, a[i].len - 10);
            if (v < 0) {
                return zg_conf_bad_param(cf, &a[i]);
            }
            s->max_conns = v;
        } else if (zg_conf_eq(&a[i], "backup")) {
            s->backup = 1;
        } else if (zg_conf_eq(&a[i], "down")) {
            s->down = 1;
        } else {
            return zg_conf_bad_param(cf, &a[i]);
        }
    }
    return ZG_OK;
}

static int zg_upstream_zone(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_upstream_conf_t *u = cf->block;
    zg_str_t *a = cf->args;
    zg_zone_t *z = NULL;

    (void)cmd;
    (void)conf;
    if (u->zone != NULL) {
        return zg_conf_duplicate(cf);
    }
    if (zg_conf_zone(cf, a[1].data, a[1].len, &a[1], a[2].data, a[2].len, &a[2],
                     &zg_upstream_zone_kind, &z)
        != ZG_OK) {
        return ZG_ERROR;
    }
    z->conf = u;
    u->zone = z;
    return ZG_OK;
}

static int zg_upstream_keepalive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_upstream_conf_t *u = cf->block;
    int v;

    (void)cmd;
    (void)conf;
    if (u->stream) {
        return zg_conf_error(cf, "\"keepalive\" directive is not allowed here");
    }
    if (u->keepalive != 0) {
        return zg_conf_duplicate(cf);
    }
    v = zg_conf_atoi(cf->args[1].data, cf->args[1].len);
    if (v <= 0) {
        return zg_conf_invalid(cf, &cf->args[1]);
    }
    u->keepalive = v;
    return ZG_OK;
}

static void *zg_upstream_create_main_conf(zg_conf_t *conf)
{
    zg_upstream_main_conf_t *umcf = zg_conf_alloc(conf, sizeof(*umcf));

    if (umcf != NULL) {
        umcf->tail = &umcf->upstreams;
    }
    return umcf;
}

/* a worker's own peer state for the upstreams without a zone */
static int zg_upstream_init_worker(zg_worker_t *w)
{
    for (zg_upstream_conf_t *u = zg_upstream_main_conf(w->conf)->upstreams; u; u = u->next) {
        if (u->zone == NULL && zg_upstream_init(u) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

typedef struct {
    zg_upstream_conf_t *u;
    int i;
    char peer[136];
    zg_upstream_peer_stats_t st;
} zg_upstream_peer_snap_t;

/* the peer label: its address, "#2", "#3" ... on repeats within the upstream */
static void zg_upstream_peer_label(zg_upstream_conf_t *u, int i, char *buf, size_t len)
{
    int j, k = 1;

    for (j = 0; j < i; j++) {
        if (strcmp(u->servers[j].addr.text, u->servers[i].addr.text) == 0) {
            k++;
        }
    }
    if (k == 1) {
        snprintf(buf, len, "%s", u->servers[i].addr.text);
    } else {
        snprintf(buf, len, "%s#%d", u->servers[i].addr.text, k);
    }
}

/* peer_state: one series per state, exactly one of them 1: "down" (configured
 * down), "unavailable" (max_fails reached within fail_timeout), "backup" (a
 * usable backup server), "up" (a usable primary) */
static void zg_upstream_metrics(zg_buf_t *b, const zg_conf_t *conf)
{
    static const char *states[] = { "up", "down", "unavailable", "backup" };
    zg_upstream_peer_snap_t *ps;
    zg_upstream_conf_t *u;
    zg_msec_t now = zg_time_msec();
    int i, n = 0, np = 0, s, cur;

    for (u = zg_upstream_main_conf(conf)->upstreams; u != NULL; u = u->next) {
        n += u->nservers > 0 ? u->nservers : 0;
    }
    ps = calloc(n ? n : 1, sizeof(*ps));
    if (ps == NULL) {
        b->failed = 1;
        return;
    }
    for (u = zg_upstream_main_conf(conf)->upstreams; u != NULL; u = u->next) {
        for (i = 0; i < u->nservers; i++) {
            if (zg_upstream_peer_stats(u, i, &ps[np].st, now) != ZG_OK) {
                continue;
            }
            ps[np].u = u;
            ps[np].i = i;
            zg_upstream_peer_label(u, i, ps[np].peer, sizeof(ps[np].peer));
            np++;
        }
    }

    zg_admin_family(b, "zonegate_upstream_peer_requests_total", "counter",
                    "Requests sent to the upstream peer (every pick).");
    for (i = 0; i < np; i++) {
        if (ps[i].u->stream) {
            continue;
        }
        zg_admin_sample(b, "zonegate_upstream_peer_requests_total", ps[i].st.requests,
                        "upstream", ps[i].u->name, "peer", ps[i].peer, NULL);
    }

    zg_admin_family(b, "zonegate_upstream_peer_failures_total", "counter",
                    "Requests to the upstream peer that failed.");
    for (i = 0; i < np; i++) {
        if (ps[i].u->stream) {
            continue;
        }
        zg_admin_sample(b, "zonegate_upstream_peer_failures_total", ps[i].st.fails,
                        "upstream", ps[i].u->name, "peer", ps[i].peer, NULL);
    }

    zg_admin_family(b, "zonegate_upstream_peer_active", "gauge",
                    "Requests using the upstream peer now.");
    for (i = 0; i < np; i++) {
        if (ps[i].u->stream) {
            continue;
        }
        zg_admin_sample(b, "zonegate_upstream_peer_active", ps[i].st.active, "upstream",
                        ps[i].u->name, "peer", ps[i].peer, NULL);
    }

    zg_admin_family(b, "zonegate_upstream_peer_state", "gauge",
                    "State of the upstream peer: the series of its current state is 1.");
    for (i = 0; i < np; i++) {
        if (ps[i].u->stream) {
            continue;
        }
        cur = ps[i].st.down ? 1 : ps[i].st.unavailable ? 2 : ps[i].st.backup ? 3 : 0;
        for (s = 0; s < 4; s++) {
            zg_admin_sample(b, "zonegate_upstream_peer_state", s == cur, "upstream",
                            ps[i].u->name, "peer", ps[i].peer, "state", states[s], NULL);
        }
    }


    /* stream upstreams (a name space of their own): per peer connections and bytes */
    static const char *dirs[] = { "sent", "received" };
    zg_admin_family(b, "zonegate_stream_upstream_peer_connections_total", "counter",
                    "Stream sessions sent to the upstream peer (every pick).");
    for (i = 0; i < np; i++) {
        if (ps[i].u->stream) {
            zg_admin_sample(b, "zonegate_stream_upstream_peer_connections_total",
                            ps[i].st.requests, "upstream", ps[i].u->name, "peer", ps[i].peer,
                            NULL);
        }
    }
    zg_admin_family(b, "zonegate_stream_upstream_peer_failures_total", "counter",
                    "Connects to the stream upstream peer that failed.");
    for (i = 0; i < np; i++) {
        if (ps[i].u->stream) {
            zg_admin_sample(b, "zonegate_stream_upstream_peer_failures_total", ps[i].st.fails,
                            "upstream", ps[i].u->name, "peer", ps[i].peer, NULL);
        }
    }
    zg_admin_family(b, "zonegate_stream_upstream_peer_active", "gauge",
                    "Stream sessions using the upstream peer now.");
    for (i = 0; i < np; i++) {
        if (ps[i].u->stream) {
            zg_admin_sample(b, "zonegate_stream_upstream_peer_active", ps[i].st.active,
                            "upstream", ps[i].u->name, "peer", ps[i].peer, NULL);
        }
    }
    zg_admin_family(b, "zonegate_stream_upstream_peer_bytes_total", "counter",
                    "Bytes relayed to (sent) and from (received) the stream upstream peer, "
                    "counted when a session ends.");
    for (i = 0; i < np; i++) {
        if (ps[i].u->stream) {
            for (s = 0; s < 2; s++) {
                zg_admin_sample(b, "zonegate_stream_upstream_peer_bytes_total",
                                s == 0 ? ps[i].st.bytes_sent : ps[i].st.bytes_received,
                                "upstream", ps[i].u->name, "peer", ps[i].peer, "direction",
                                dirs[s], NULL);
            }
        }
    }
    zg_admin_family(b, "zonegate_stream_upstream_peer_state", "gauge",
                    "State of the stream upstream peer: the series of its current state is 1.");
    for (i = 0; i < np; i++) {
        if (!ps[i].u->stream) {
            continue;
        }
        cur = ps[i].st.down ? 1 : ps[i].st.unavailable ? 2 : ps[i].st.backup ? 3 : 0;
        for (s = 0; s < 4; s++) {
            zg_admin_sample(b, "zonegate_stream_upstream_peer_state", s == cur, "upstream",
                            ps[i].u->name, "peer", ps[i].peer, "state", states[s], NULL);
        }
    }

    free(ps);
}


static const zg_command_t zg_upstream_commands[] = {
    { "upstream", ZG_CTX_HTTP | ZG_CTX_STREAM, 1, 1, 1, zg_upstream_block, ZG_MAIN_CONF, 0, NULL },
    { "server", ZG_CTX_UPS, 0, 1, -1, zg_upstream_server, ZG_MAIN_CONF, 0, NULL },
    { "zone", ZG_CTX_UPS, 0, 2, 2, zg_upstream_zone, ZG_MAIN_CONF, 0, NULL },
    { "keepalive", ZG_CTX_UPS, 0, 1, 1, zg_upstream_keepalive, ZG_MAIN_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_upstream_module = {
    .name = "upstream",
    .commands = zg_upstream_commands,
    .create_main_conf = zg_upstream_create_main_conf,
    .init_worker = zg_upstream_init_worker,
    .metrics = zg_upstream_metrics,
};
