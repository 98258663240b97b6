/* zg_http_core.c — the core http module: http, server, listen, server_name,
 * location, the client timeouts and limits; builds the servers, locations and
 * listen addresses once the config is read. */
#include "zg_http_core.h"

#include "zg_http.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#define ZG_HTTP_DEFAULT_PORT 80 /* a server without `listen` listens on *:80, as nginx */

typedef struct {
    zg_addr_t addr;
    int default_server;
    int ssl, http2;
    const char *file;
    int line;
} zg_http_core_listen_t;

struct zg_http_core_srv_s {
    zg_server_conf_t srv;
    zg_location_t **locs;
    int nlocs;
    zg_http_core_listen_t *listens;
    int nlistens;
    char **names;
    int nnames;
};

static int zg_http_core_http(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_main_conf_t *cmcf = conf;

    (void)cmd;
    if (cmcf->http_seen) {
        return zg_conf_duplicate(cf);
    }
    cmcf->http_seen = 1;
    if (cmcf->http_conf == NULL && (cmcf->http_conf = zg_conf_create_loc_confs(cf)) == NULL) {
        return zg_conf_nomem(cf);
    }
    return zg_conf_block(cf, ZG_CTX_HTTP, cmcf->http_conf, NULL);
}

static int zg_http_core_server(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(cf->conf);
    zg_http_core_srv_t *ps, **slot;

    (void)cmd;
    (void)conf;
    ps = zg_conf_alloc(cf->conf, sizeof(*ps));
    slot = zg_conf_push(cf->conf, cmcf->srvs, cmcf->nsrvs);
    if (ps == NULL || slot == NULL
        || (ps->srv.loc_conf = zg_conf_create_loc_confs(cf)) == NULL) {
        return zg_conf_nomem(cf);
    }
    *slot = ps;
    ps->srv.file = cf->file;
    ps->srv.line = cf->line;
    return zg_conf_block(cf, ZG_CTX_SRV, ps->srv.loc_conf, ps);
}

static int zg_http_core_listen(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_srv_t *ps = cf->block;
    zg_http_core_listen_t *l;
    zg_str_t *a = cf->args;
    zg_addr_t addr;
    int rc, def = 0, ssl = 0, http2 = 0;

    (void)cmd;
    (void)conf;
    for (int i = 2; i < cf->nargs; i++) {
        if (zg_conf_eq(&a[i], "default_server") || zg_conf_eq(&a[i], "default")) {
            def = 1;
        } else if (zg_conf_eq(&a[i], "ssl")) {
            ssl = 1;
        } else if (zg_conf_eq(&a[i], "http2")) {
            http2 = 1;
        } else {
            return zg_conf_bad_param(cf, &a[i]);
        }
    }
    rc = zg_conf_parse_addr(a[1].data, a[1].len, ZG_HTTP_DEFAULT_PORT, &addr);
    if (rc == ZG_DECLINED) {
        return zg_conf_error(cf, "host not found in \"%s\" of the \"listen\" directive",
                             a[1].data);
    }
    if (rc != ZG_OK) {
        return zg_conf_error(cf, "invalid address \"%s\" of the \"listen\" directive",
                             a[1].data);
    }
    for (int i = 0; i < ps->nlistens; i++) {
        if (zg_addr_eq(&ps->listens[i].addr, &addr)) {
            return zg_conf_error(cf, "a duplicate listen %s", addr.text);
        }
    }
    l = zg_conf_push(cf->conf, ps->listens, ps->nlistens);
    if (l == NULL) {
        return zg_conf_nomem(cf);
    }
    l->addr = addr;
    l->default_server = def;
    l->ssl = ssl;
    l->http2 = http2;
    l->file = cf->file;
    l->line = cf->line;
    return ZG_OK;
}

static int zg_http_core_server_name(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_srv_t *ps = cf->block;
    zg_str_t *a = cf->args;
    char **slot, *name;

    (void)cmd;
    (void)conf;
    for (int i = 1; i < cf->nargs; i++) {
        name = zg_conf_strdup(cf->conf, a[i].data, a[i].len);
        slot = zg_conf_push(cf->conf, ps->names, ps->nnames);
        if (name == NULL || slot == NULL) {
            return zg_conf_nomem(cf);
        }
        for (size_t k = 0; k < a[i].len; k++) {
            name[k] = (char)tolower((unsigned char)name[k]);
        }
        *slot = name;
    }
    return ZG_OK;
}

static int zg_http_core_location(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_srv_t *ps = cf->block;
    zg_location_t *loc, **slot;
    zg_str_t *a = cf->args, *path = &a[1];
    int exact = 0;

    (void)cmd;
    (void)conf;
    if (cf->nargs == 3) {
        if (zg_conf_eq(&a[1], "=")) {
            exact = 1;
        } else if (zg_conf_eq(&a[1], "~") || zg_conf_eq(&a[1], "~*")) {
            return zg_conf_error(cf, "regex locations are not supported");
        } else if (!zg_conf_eq(&a[1], "^~")) {
            return zg_conf_error(cf, "invalid location modifier \"%s\"", a[1].data);
        }
        path = &a[2];
    } else if (a[1].data[0] == '~') {
        return zg_conf_error(cf, "regex locations are not supported");
    } else if (a[1].data[0] == '=' && a[1].len > 1) {
        exact = 1;
        a[1].data++;
        a[1].len--;
    } else if (a[1].data[0] == '@') {
        return zg_conf_error(cf, "named locations are not supported");
    }
    if (path->len == 0) {
        return zg_conf_error(cf, "invalid number of arguments in \"location\" directive");
    }
    for (int i = 0; i < ps->nlocs; i++) {
        zg_location_t *o = ps->locs[i];
        if (o->exact == (unsigned)exact && o->path_len == path->len
            && memcmp(o->path, path->data, path->len) == 0) {
            return zg_conf_error(cf, "duplicate location \"%s\"", path->data);
        }
    }
    loc = zg_conf_alloc(cf->conf, sizeof(*loc));
    slot = zg_conf_push(cf->conf, ps->locs, ps->nlocs);
    if (loc == NULL || slot == NULL
        || (loc->loc_conf = zg_conf_create_loc_confs(cf)) == NULL) {
        return zg_conf_nomem(cf);
    }
    *slot = loc;
    loc->path = (char *)path->data;
    loc->path_len = path->len;
    loc->exact = (unsigned)exact;
    loc->file = cf->file;
    loc->line = cf->line;
    return zg_conf_block(cf, ZG_CTX_LOC, loc->loc_conf, ps);
}

int zg_http_core_set_handler(zg_cf_t *cf, zg_phase_handler_pt handler)
{
    zg_http_core_loc_conf_t *clcf = zg_http_core_loc_conf(cf->loc_conf);

    if (clcf->has_handler) {
        return zg_conf_duplicate(cf);
    }
    clcf->has_handler = 1;
    clcf->handler = handler;
    return ZG_OK;
}

static int zg_http_core_large_buffers(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_loc_conf_t *clcf = conf;
    zg_str_t *a = cf->args;
    int64_t size;
    int num;

    (void)cmd;
    if (clcf->large_header_buffers != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    num = zg_conf_atoi(a[1].data, a[1].len);
    if (num <= 0) {
        return zg_conf_invalid(cf, &a[1]);
    }
    size = zg_conf_parse_size(a[2].data, a[2].len);
    if (size <= 0 || size > INT_MAX) {
        return zg_conf_invalid(cf, &a[2]);
    }
    clcf->large_header_buffers = num;
    clcf->large_header_size = size;
    return ZG_OK;
}

/* client_max_headers N: header lines a request may have (zonegate; nginx bounds
 * them only by large_client_header_buffers) */
static int zg_http_core_max_headers(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_loc_conf_t *clcf = conf;
    int v;

    (void)cmd;
    if (clcf->max_headers != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    v = zg_conf_atoi(cf->args[1].data, cf->args[1].len);
    if (v <= 0 || v > 65536) {
        return zg_conf_invalid(cf, &cf->args[1]);
    }
    clcf->max_headers = v;
    return ZG_OK;
}

static int zg_http_core_satisfy(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_loc_conf_t *clcf = conf;
    zg_str_t *v = &cf->args[1];

    (void)cmd;
    if (clcf->satisfy != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    if (zg_conf_eq(v, "all") || zg_conf_eq(v, "any")) {
        clcf->satisfy = v->data[1] == 'l' ? ZG_SATISFY_ALL : ZG_SATISFY_ANY;
        return ZG_OK;
    }
    return zg_conf_invalid(cf, v);
}

static void *zg_http_core_create_main_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_http_core_main_conf_t));
}

static void *zg_http_core_create_loc_conf(zg_conf_t *conf)
{
    zg_http_core_loc_conf_t *c = zg_conf_alloc(conf, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->client_header_timeout = ZG_UNSET_MSEC;
    c->client_body_timeout = ZG_UNSET_MSEC;
    c->send_timeout = ZG_UNSET_MSEC;
    c->keepalive_timeout = ZG_UNSET_MSEC;
    c->client_max_body_size = ZG_UNSET_SIZE;
    c->large_header_buffers = ZG_UNSET;
    c->large_header_size = ZG_UNSET_SIZE;
    c->satisfy = ZG_UNSET;
    c->max_headers = ZG_UNSET;
    c->merge_slashes = ZG_UNSET;
    c->underscores_in_headers = ZG_UNSET;
    c->ignore_invalid_headers = ZG_UNSET;
    return c;
}

static int zg_http_core_merge_loc_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_http_core_loc_conf_t *p = parent, *c = child;

    (void)cf;
    ZG_CONF_MERGE(c, p, client_header_timeout, ZG_UNSET_MSEC);
    ZG_CONF_MERGE(c, p, client_body_timeout, ZG_UNSET_MSEC);
    ZG_CONF_MERGE(c, p, send_timeout, ZG_UNSET_MSEC);
    ZG_CONF_MERGE(c, p, keepalive_timeout, ZG_UNSET_MSEC);
    ZG_CONF_MERGE(c, p, client_max_body_size, ZG_UNSET_SIZE);
    if (c->large_header_buffers == ZG_UNSET) {
        c->large_header_buffers = p->large_header_buffers;
        c->large_header_size = p->large_header_size;
    }
    ZG_CONF_MERGE(c, p, satisfy, ZG_UNSET);
    ZG_CONF_MERGE(c, p, max_headers, ZG_UNSET);
    ZG_CONF_MERGE(c, p, merge_slashes, ZG_UNSET);
    ZG_CONF_MERGE(c, p, underscores_in_headers, ZG_UNSET);
    ZG_CONF_MERGE(c, p, ignore_invalid_headers, ZG_UNSET);
    /* defaults */
    if (c->client_header_timeout == ZG_UNSET_MSEC) {
        c->client_header_timeout = 60000;
    }
    if (c->client_body_timeout == ZG_UNSET_MSEC) {
        c->client_body_timeout = 60000;
    }
    if (c->send_timeout == ZG_UNSET_MSEC) {
        c->send_timeout = 60000;
    }
    if (c->keepalive_timeout == ZG_UNSET_MSEC) {
        c->keepalive_timeout = 75000;
    }
    if (c->client_max_body_size == ZG_UNSET_SIZE) {
        c->client_max_body_size = 1024 * 1024;
    }
    if (c->satisfy == ZG_UNSET) {
        c->satisfy = ZG_SATISFY_ALL;
    }
    if (c->max_headers == ZG_UNSET) {
        c->max_headers = 128;
    }
    if (c->merge_slashes == ZG_UNSET) {
        c->merge_slashes = 1;
    }
    if (c->underscores_in_headers == ZG_UNSET) {
        c->underscores_in_headers = 0;
    }
    if (c->ignore_invalid_headers == ZG_UNSET) {
        c->ignore_invalid_headers = 1;
    }
    if (c->large_header_buffers == ZG_UNSET) {
        c->large_header_buffers = ZG_HTTP_HEAD_MAX / ZG_HTTP_LINE_MAX;
        c->large_header_size = ZG_HTTP_LINE_MAX;
    }
    return ZG_OK;
}

/* servers and locations merged, listen addresses collected */
static int zg_http_core_init_main_conf(zg_cf_t *cf, void *conf)
{
    zg_http_core_main_conf_t *cmcf = conf;
    zg_conf_t *c = cf->conf;
    zg_http_core_srv_t *ps;
    zg_server_conf_t *srv;
    zg_listen_t *ls;

    if (cmcf->http_conf == NULL && (cmcf->http_conf = zg_conf_create_loc_confs(cf)) == NULL) {
        return zg_conf_nomem(cf);
    }
    if (zg_conf_merge_loc_confs(cf, cmcf->http_conf, cmcf->http_conf) != ZG_OK) {
        return ZG_ERROR;
    }
    if (cmcf->nsrvs > 0) {
        cmcf->servers = zg_conf_alloc(c, (size_t)cmcf->nsrvs * sizeof(zg_server_conf_t));
        if (cmcf->servers == NULL) {
            return zg_conf_nomem(cf);
        }
    }
    cmcf->nservers = cmcf->nsrvs;
    for (int i = 0; i < cmcf->nsrvs; i++) {
        ps = cmcf->srvs[i];
        srv = &cmcf->servers[i];
        if (zg_conf_merge_loc_confs(cf, cmcf->http_conf, ps->srv.loc_conf) != ZG_OK) {
            return ZG_ERROR;
        }
        *srv = ps->srv;
        if (ps->nnames == 0) {
            char **slot = zg_conf_push(c, ps->names, ps->nnames);
            if (slot == NULL || (*slot = zg_conf_strdup(c, "", 0)) == NULL) {
                return zg_conf_nomem(cf);
            }
        }
        srv->names = ps->names;
        srv->nnames = ps->nnames;
        srv->nlocations = ps->nlocs;
        if (ps->nlocs > 0) {
            srv->locations = zg_conf_alloc(c, (size_t)ps->nlocs * sizeof(zg_location_t));
            if (srv->locations == NULL) {
                return zg_conf_nomem(cf);
            }
        }
        for (int k = 0; k < ps->nlocs; k++) {
            if (zg_conf_merge_loc_confs(cf, srv->loc_conf, ps->locs[k]->loc_conf) != ZG_OK) {
                return ZG_ERROR;
            }
            srv->locations[k] = *ps->locs[k];
            srv->locations[k].server = srv;
        }
        if (ps->nlistens == 0) {
            zg_http_core_listen_t *l = zg_conf_push(c, ps->listens, ps->nlistens);
            unsigned char any[4] = { 0, 0, 0, 0 };
            if (l == NULL) {
                return zg_conf_nomem(cf);
            }
            zg_addr_set(&l->addr, AF_INET, any, ZG_HTTP_DEFAULT_PORT);
            l->file = srv->file;
            l->line = srv->line;
        }
        for (int k = 0; k < ps->nlistens; k++) {
            zg_http_core_listen_t *pl = &ps->listens[k];
            zg_server_conf_t **slot;
            int j;
            for (j = 0; j < cmcf->nlistens; j++) {
                if (zg_addr_eq(&cmcf->listens[j].addr, &pl->addr)) {
                    break;
                }
            }
            if (j == cmcf->nlistens) {
                ls = zg_conf_push(c, cmcf->listens, cmcf->nlistens);
                if (ls == NULL) {
                    return zg_conf_nomem(cf);
                }
                ls->addr = pl->addr;
                ls->fd = -1;
                ls->file = pl->file;
                ls->line = pl->line;
            }
            ls = &cmcf->listens[j];
            ls->ssl |= pl->ssl ? 1 : 0;
            ls->http2 |= pl->http2 ? 1 : 0;
            if (pl->default_server) {
                if (ls->default_server != NULL) {
                    return zg_conf_error_at(cf, pl->file, pl->line,
                                            "a duplicate default server for %s", ls->addr.text);
                }
                ls->default_server = srv;
            }
            slot = zg_conf_push(c, ls->servers, ls->nservers);
            if (slot == NULL) {
                return zg_conf_nomem(cf);
            }
            *slot = srv;
        }
    }
    for (int j = 0; j < cmcf->nlistens; j++) {
        if (cmcf->listens[j].default_server == NULL) {
            cmcf->listens[j].default_server = cmcf->listens[j].servers[0];
        }
    }
    return ZG_OK;
}

zg_server_conf_t *zg_http_find_server(const zg_listen_t *ls, const char *host, size_t len)
{
    size_t n = len;

    if (ls->nservers == 1) {
        return ls->default_server; /* whatever the name, the only server answers */
    }
    if (host == NULL) {
        n = 0;
    }
    /* a ":port" suffix is not part of the name */
    for (size_t i = n; i > 0; i--) {
        if (host[i - 1] == ':') {
            n = i - 1;
            break;
        }
        if (host[i - 1] < '0' || host[i - 1] > '9') {
            break;
        }
    }
    for (int i = 0; i < ls->nservers; i++) {
        zg_server_conf_t *srv = ls->servers[i];
        for (int k = 0; k < srv->nnames; k++) {
            if (strlen(srv->names[k]) == n && strncasecmp(srv->names[k], host, n) == 0) {
                return srv;
            }
        }
    }
    return ls->default_server;
}

zg_location_t *zg_http_find_location(const zg_server_conf_t *srv, const char *path,
                                     size_t len)
{
    zg_location_t *best = NULL;

    for (int i = 0; i < srv->nlocations; i++) {
        zg_location_t *loc = &srv->locations[i];
        if (loc->exact) {
            if (loc->path_len == len && memcmp(loc->path, path, len) == 0) {
                return loc; /* an exact match wins over any prefix */
            }
        } else if (loc->path_len <= len && (best == NULL || loc->path_len > best->path_len)
                   && memcmp(loc->path, path, loc->path_len) == 0) {
            best = loc;
        }
    }
    return best;
}

#define ZG_CORE_LOC(f) offsetof(zg_http_core_loc_conf_t, f)

static const zg_command_t zg_http_core_commands[] = {
    { "http", ZG_CTX_MAIN, 1, 0, 0, zg_http_core_http, ZG_MAIN_CONF, 0, NULL },
    { "server", ZG_CTX_HTTP, 1, 0, 0, zg_http_core_server, ZG_MAIN_CONF, 0, NULL },
    { "listen", ZG_CTX_SRV, 0, 1, -1, zg_http_core_listen, ZG_MAIN_CONF, 0, NULL },
    { "server_name", ZG_CTX_SRV, 0, 1, -1, zg_http_core_server_name, ZG_MAIN_CONF, 0, NULL },
    { "location", ZG_CTX_SRV, 1, 1, 2, zg_http_core_location, ZG_MAIN_CONF, 0, NULL },
    { "client_header_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_CORE_LOC(client_header_timeout), NULL },
    { "client_body_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_CORE_LOC(client_body_timeout), NULL },
    { "send_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_CORE_LOC(send_timeout), NULL },
    { "keepalive_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_CORE_LOC(keepalive_timeout), NULL },
    { "client_max_body_size", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_size, ZG_LOC_CONF,
      ZG_CORE_LOC(client_max_body_size), NULL },
    { "large_client_header_buffers", ZG_CTX_SETTINGS, 0, 2, 2, zg_http_core_large_buffers,
      ZG_LOC_CONF, 0, NULL },
    { "satisfy", ZG_CTX_SETTINGS, 0, 1, 1, zg_http_core_satisfy, ZG_LOC_CONF, 0, NULL },
    { "client_max_headers", ZG_CTX_HTTP | ZG_CTX_SRV, 0, 1, 1, zg_http_core_max_headers,
      ZG_LOC_CONF, 0, NULL },
    { "merge_slashes", ZG_CTX_HTTP | ZG_CTX_SRV, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      ZG_CORE_LOC(merge_slashes), NULL },
    { "underscores_in_headers", ZG_CTX_HTTP | ZG_CTX_SRV, 0, 1, 1, zg_conf_set_flag,
      ZG_LOC_CONF, ZG_CORE_LOC(underscores_in_headers), NULL },
    { "ignore_invalid_headers", ZG_CTX_HTTP | ZG_CTX_SRV, 0, 1, 1, zg_conf_set_flag,
      ZG_LOC_CONF, ZG_CORE_LOC(ignore_invalid_headers), NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_http_core_module = {
    .name = "http_core",
    .commands = zg_http_core_commands,
    .create_main_conf = zg_http_core_create_main_conf,
    .init_main_conf = zg_http_core_init_main_conf,
    .create_loc_conf = zg_http_core_create_loc_conf,
    .merge_loc_conf = zg_http_core_merge_loc_conf,
};
