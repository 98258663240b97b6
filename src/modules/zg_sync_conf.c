/* zg_sync_conf.c — the sync=..., sync_interval= and sync_password_file= parameters
 * of the limiters' zone directives. */
#include "zg_sync_conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int zg_sync_conf_bad(zg_cf_t *cf, const char *u, const char *why)
{
    return zg_conf_error(cf, "invalid sync URL \"%s\" in \"%s\" directive: %s", u, cf->name,
                         why);
}

/* "HOST:PORT" into sc->host / sc->port (redis://) */
static int zg_sync_conf_hostport(const char *h, const char *end, zg_sync_conf_t *sc)
{
    const char *he, *ps;
    int port;

    if (h < end && *h == '[') {
        he = memchr(h, ']', (size_t)(end - h));
        if (he == NULL) {
            return ZG_ERROR;
        }
        h++;
        ps = he + 1;
    } else {
        for (he = h; he < end && *he != ':'; he++) {
        }
        ps = he;
    }
    if (he == h || (size_t)(he - h) >= sizeof(sc->host) || ps >= end || *ps != ':') {
        return ZG_ERROR;
    }
    port = zg_conf_atoi(ps + 1, (size_t)(end - ps - 1));
    if (port < 1 || port > 65535) {
        return ZG_ERROR;
    }
    memcpy(sc->host, h, (size_t)(he - h));
    sc->host[he - h] = '\0';
    sc->port = port;
    return ZG_OK;
}

/* sync=URL */
static int zg_sync_conf_url(zg_cf_t *cf, const zg_str_t *v, zg_sync_conf_t *sc)
{
    const char *u = v->data + 5, *end = v->data + v->len, *p, *at, *hosts, *hend, *c;
    zg_buf_t shown = { 0 };
    int rc;

    if (sc->mode != ZG_SYNC_NONE) {
        return zg_conf_error(cf, "duplicate \"sync\" parameter in \"%s\" directive", cf->name);
    }
    if (strncmp(u, "redis://", 8) == 0) {
        sc->mode = ZG_SYNC_REDIS;
        p = u + 8;
    } else if (strncmp(u, "redis-sentinel://", 17) == 0) {
        sc->mode = ZG_SYNC_SENTINEL;
        p = u + 17;
    } else if (strncmp(u, "redis-cluster://", 16) == 0) {
        sc->mode = ZG_SYNC_CLUSTER;
        p = u + 16;
    } else {
        return zg_sync_conf_bad(cf, u, "redis://, redis-sentinel:// or redis-cluster:// expected");
    }
    /* [USER:PASSWORD@ | :PASSWORD@ | USER@]: the last '@' ends it */
    at = NULL;
    for (c = p; c < end; c++) {
        if (*c == '@') {
            at = c;
        }
    }
    if (at != NULL) {
        c = memchr(p, ':', (size_t)(at - p));
        if (c == NULL) {
            c = at; /* a user only: the password comes from sync_password_file */
        }
        if (c > p) {
            sc->user = zg_conf_strdup(cf->conf, p, (size_t)(c - p));
            if (sc->user == NULL) {
                return zg_conf_nomem(cf);
            }
        }
        if (c < at) {
            if (at - c - 1 == 0) {
                return zg_sync_conf_bad(cf, u, "empty password");
            }
            sc->password = zg_conf_strdup(cf->conf, c + 1, (size_t)(at - c - 1));
            if (sc->password == NULL) {
                return zg_conf_nomem(cf);
            }
        }
        hosts = at + 1;
    } else {
        hosts = p;
    }
    /* the path: /DB (redis://) or /MASTER (sentinel); none for a cluster */
    hend = memchr(hosts, '/', (size_t)(end - hosts));
    if (hend == NULL) {
        hend = end;
    }
    if (sc->mode == ZG_SYNC_REDIS) {
        if (zg_sync_conf_hostport(hosts, hend, sc) != ZG_OK) {
            return zg_sync_conf_bad(cf, u, "HOST:PORT expected");
        }
        if (hend < end) {
            sc->db = zg_conf_atoi(hend + 1, (size_t)(end - hend - 1));
            if (sc->db < 0) {
                return zg_sync_conf_bad(cf, u, "bad database number");
            }
        }
    } else {
        for (p = hosts; p < hend; p = c + 1) {
            c = memchr(p, ',', (size_t)(hend - p));
            if (c == NULL) {
                c = hend;
            }
            if (sc->nnodes == ZG_SYNC_MAX_NODES) {
                return zg_sync_conf_bad(cf, u, "too many nodes");
            }
            rc = zg_conf_parse_addr(p, (size_t)(c - p), 0, &sc->nodes[sc->nnodes]);
            if (rc == ZG_DECLINED) {
                return zg_conf_error(cf, "host not found in sync URL \"%s\" of \"%s\" directive",
                                     u, cf->name);
            }
            if (rc != ZG_OK || c == p) {
                return zg_sync_conf_bad(cf, u, "HOST:PORT list expected");
            }
            sc->nnodes++;
        }
        if (sc->nnodes == 0) {
            return zg_sync_conf_bad(cf, u, "no node");
        }
        if (sc->mode == ZG_SYNC_SENTINEL) {
            if (hend >= end - 1 || memchr(hend + 1, '/', (size_t)(end - hend - 1)) != NULL) {
                return zg_sync_conf_bad(cf, u, "/MASTERNAME expected");
            }
            sc->master = zg_conf_strdup(cf->conf, hend + 1, (size_t)(end - hend - 1));
            if (sc->master == NULL) {
                return zg_conf_nomem(cf);
            }
        } else if (hend < end) {
            return zg_sync_conf_bad(cf, u, "a cluster has no database or path");
        }
    }
    /* shown without the password */
    {
        size_t scheme = (size_t)(strstr(u, "://") + 3 - u);

        if (zg_buf_append(&shown, u, scheme) != ZG_OK ||
            (sc->user != NULL && zg_buf_append(&shown, sc->user, strlen(sc->user)) != ZG_OK) ||
            (sc->password != NULL && zg_buf_append(&shown, ":***", 4) != ZG_OK) ||
            (at != NULL && zg_buf_append(&shown, "@", 1) != ZG_OK) ||
            zg_buf_append(&shown, hosts, (size_t)(end - hosts)) != ZG_OK) {
            goto nomem;
        }
    }
    sc->url = zg_conf_strdup(cf->conf, shown.data, shown.len);
    zg_buf_free(&shown);
    return sc->url != NULL ? ZG_OK : zg_conf_nomem(cf);
nomem:
    zg_buf_free(&shown);
    return zg_conf_nomem(cf);
}

/* sync_password_file=FILE: read now, in the master (workers cannot open files) */
static int zg_sync_conf_password_file(zg_cf_t *cf, const zg_str_t *v, zg_sync_conf_t *sc)
{
    zg_str_t name;
    char buf[1024], *path;
    size_t n;
    FILE *f;

    name.data = v->data + 19;
    name.len = v->len - 19;
    if (name.len == 0) {
        return zg_conf_bad_param(cf, v);
    }
    path = zg_conf_path(cf, &name);
    if (path == NULL) {
        return zg_conf_nomem(cf);
    }
    f = fopen(path, "r");
    if (f == NULL) {
        return zg_conf_error(cf, "cannot read sync_password_file \"%s\" in \"%s\" directive: %s",
                             path, cf->name, strerror(errno));
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    if (n == 0 || n == sizeof(buf) || memchr(buf, '\n', n) != NULL) {
        return zg_conf_error(cf, "sync_password_file \"%s\" in \"%s\" directive must hold one "
                             "line of 1 to 1000 bytes", path, cf->name);
    }
    sc->password = zg_conf_strdup(cf->conf, buf, n);
    memset(buf, 0, sizeof(buf));
    return sc->password != NULL ? ZG_OK : zg_conf_nomem(cf);
}

int zg_sync_conf_param(zg_cf_t *cf, const zg_str_t *v, zg_sync_conf_t *sc)
{
    if (sc->interval == 0) {
        sc->interval = ZG_SYNC_INTERVAL_DEFAULT;
    }
    if (zg_conf_prefix(v, "sync=")) {
        char *had = sc->password;
        int rc;

        sc->password = NULL;
        rc = zg_sync_conf_url(cf, v, sc);
        if (rc == ZG_OK && had != NULL) {
            if (sc->password != NULL) {
                return zg_conf_error(cf, "the sync password is given twice (URL and "
                                     "sync_password_file) in \"%s\" directive", cf->name);
            }
            sc->password = had;
        }
        return rc;
    }
    if (zg_conf_prefix(v, "sync_interval=")) {
        sc->interval = zg_conf_parse_time(v->data + 14, v->len - 14);
        if (sc->interval == ZG_UNSET_MSEC || sc->interval == 0) {
            return zg_conf_bad_param(cf, v);
        }
        return ZG_OK;
    }
    if (zg_conf_prefix(v, "sync_password_file=")) {
        if (sc->password != NULL) {
            return zg_conf_error(cf, "the sync password is given twice (URL and "
                                 "sync_password_file) in \"%s\" directive", cf->name);
        }
        return zg_sync_conf_password_file(cf, v, sc);
    }
    return ZG_DECLINED;
}

int zg_sync_conf_done(zg_cf_t *cf, zg_sync_conf_t *sc)
{
    if (sc->interval == 0) {
        sc->interval = ZG_SYNC_INTERVAL_DEFAULT;
    }
    if (sc->mode == ZG_SYNC_NONE && sc->password != NULL) {
        return zg_conf_error(cf, "\"sync_password_file\" without \"sync\" in \"%s\" directive",
                             cf->name);
    }
    if (sc->user != NULL && sc->password == NULL) {
        return zg_conf_error(cf, "the sync URL in \"%s\" directive names a user but no "
                             "password (give it in the URL or in sync_password_file)",
                             cf->name);
    }
    return ZG_OK;
}

void zg_sync_stats_load(const zg_sync_stats_t *st, zg_sync_stats_t *out)
{
    out->batches = __atomic_load_n(&st->batches, __ATOMIC_RELAXED);
    out->keys = __atomic_load_n(&st->keys, __ATOMIC_RELAXED);
    out->errors = __atomic_load_n(&st->errors, __ATOMIC_RELAXED);
    out->dropped = __atomic_load_n(&st->dropped, __ATOMIC_RELAXED);
    out->redirects = __atomic_load_n(&st->redirects, __ATOMIC_RELAXED);
    out->overflows = __atomic_load_n(&st->overflows, __ATOMIC_RELAXED);
    out->last_ok = __atomic_load_n(&st->last_ok, __ATOMIC_RELAXED);
    out->up = __atomic_load_n(&st->up, __ATOMIC_RELAXED);
    out->owner = __atomic_load_n(&st->owner, __ATOMIC_RELAXED);
}
