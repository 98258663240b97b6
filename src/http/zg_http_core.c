/* zg_http_core.c — the core http module: http, server, listen, server_name,
 * location, the client timeouts and limits; builds the servers, locations and
 * listen addresses once the config is read. */
#include "zg_http_core.h"

#include "zg_http.h"
#include "zg_request.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <limits.h>
#include <stdio.h>
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

typedef struct zg_http_core_ploc_s zg_http_core_ploc_t;

/* a location being read: its nested locations */
struct zg_http_core_ploc_s {
    zg_location_t loc;
    zg_http_core_ploc_t **locs;
    int nlocs;
    zg_http_core_srv_t *ps;
};

struct zg_http_core_srv_s {
    zg_server_conf_t srv;
    zg_http_core_ploc_t **locs; /* server-level locations, named ones included */
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
    int rc;

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
    cmcf->cur_block = ps;
    rc = zg_conf_block(cf, ZG_CTX_SRV, ps->srv.loc_conf, ps);
    cmcf->cur_block = NULL;
    return rc;
}

/* the nginx module (or feature) a "listen" parameter belongs to; NULL if none */
static const char *zg_http_core_listen_module(const zg_str_t *v)
{
    static const struct {
        const char *param, *module;
    } params[] = {
        { "quic", "http3 module" },
        { "proxy_protocol", "PROXY protocol support" },
        { "ipv6only=", "socket options of listen" },
        { "so_keepalive=", "socket options of listen" },
        { "fastopen=", "socket options of listen" },
        { "rcvbuf=", "socket options of listen" },
        { "sndbuf=", "socket options of listen" },
        { "setfib=", "socket options of listen" },
        { "accept_filter=", "socket options of listen" },
    };

    for (size_t i = 0; i < zg_nelems(params); i++) {
        size_t n = strlen(params[i].param);
        if (params[i].param[n - 1] == '=' ? zg_conf_prefix(v, params[i].param)
                                          : zg_conf_eq(v, params[i].param)) {
            return params[i].module;
        }
    }
    return NULL;
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
    if (ps == NULL || ps != zg_http_core_main_conf(cf->conf)->cur_block) {
        return zg_conf_error(cf, "\"%s\" directive is not allowed here", cf->name);
    }
    for (int i = 2; i < cf->nargs; i++) {
        const char *module = zg_http_core_listen_module(&a[i]);
        if (zg_conf_eq(&a[i], "default_server") || zg_conf_eq(&a[i], "default")) {
            def = 1;
        } else if (zg_conf_eq(&a[i], "ssl")) {
            ssl = 1;
        } else if (zg_conf_eq(&a[i], "http2")) {
            http2 = 1;
        } else if (zg_conf_eq(&a[i], "reuseport") || zg_conf_eq(&a[i], "bind")
                   || zg_conf_eq(&a[i], "deferred") || zg_conf_eq(&a[i], "ipv6only=on")) {
            /* what zonegate does anyway: one SO_REUSEPORT socket per worker and
             * address, bound by itself, IPv6 sockets IPv6 only; deferred accept is a
             * kernel detail clients do not see */
        } else if (zg_conf_prefix(&a[i], "backlog=")) {
            if (zg_conf_atoi(a[i].data + 8, a[i].len - 8) <= 0) {
                return zg_conf_error(cf, "invalid backlog \"%s\"", a[i].data + 8);
            }
        } else if (module != NULL) {
            return zg_conf_error(cf, "parameter \"%s\" of the \"listen\" directive belongs to "
                                 "nginx's %s, which zonegate does not implement", a[i].data,
                                 module);
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

/* nginx's check of a wildcard name: one '*', as a whole first or last label */
static int zg_http_core_wildcard_ok(const char *n, size_t len)
{
    const char *star = memchr(n, '*', len);

    if (star == NULL) {
        return !(len > 1 && n[0] == '.' && n[1] == '.') && !(len == 1 && n[0] == '.');
    }
    if (memchr(star + 1, '*', len - (size_t)(star - n) - 1) != NULL || len < 3) {
        return 0;
    }
    if (star == n) {
        return n[1] == '.' && n[2] != '.';
    }
    return star == n + len - 1 && n[len - 2] == '.' && n[0] != '.';
}

static int zg_http_core_server_name(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_srv_t *ps = cf->block;
    zg_str_t *a = cf->args;
    char **slot, *name, err[512];
    zg_regex_t *re;

    (void)cmd;
    (void)conf;
    if (ps == NULL || ps != zg_http_core_main_conf(cf->conf)->cur_block) {
        return zg_conf_error(cf, "\"%s\" directive is not allowed here", cf->name);
    }
    for (int i = 1; i < cf->nargs; i++) {
        if (a[i].len > 0 && a[i].data[0] == '~') {
            if (a[i].len == 1) {
                return zg_conf_error(cf, "empty regex in server name \"%s\"", a[i].data);
            }
            /* compiled again per listen address; here only checked */
            re = zg_regex_compile(a[i].data + 1, a[i].len - 1, ZG_REGEX_CASELESS, err,
                                  sizeof(err));
            if (re == NULL) {
                return zg_conf_error(cf, "%s", err);
            }
            zg_regex_free(re);
        } else if (!zg_http_core_wildcard_ok(a[i].data, a[i].len)) {
            return zg_conf_error(cf, "invalid server name or wildcard \"%s\"", a[i].data);
        }
        name = zg_conf_strdup(cf->conf, a[i].data, a[i].len);
        slot = zg_conf_push(cf->conf, ps->names, ps->nnames);
        if (name == NULL || slot == NULL) {
            return zg_conf_nomem(cf);
        }
        if (name[0] != '~') {
            for (size_t k = 0; k < a[i].len; k++) {
                name[k] = (char)tolower((unsigned char)name[k]);
            }
        }
        *slot = name;
    }
    return ZG_OK;
}

static int zg_http_core_location(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(cf->conf);
    zg_http_core_ploc_t *parent = cf->ctx == ZG_CTX_LOC ? cf->block : NULL;
    zg_http_core_srv_t *ps = parent != NULL ? parent->ps : cf->block;
    void *saved;
    int rc;
    zg_http_core_ploc_t *pl, ***list, **slot;
    int *nlist;
    zg_location_t *loc;
    zg_str_t *a = cf->args, path = a[1];
    int exact = 0, noregex = 0, regex = 0, caseless = 0, named = 0;
    char err[512];

    (void)cmd;
    (void)conf;
    if (cf->block == NULL || cf->block != cmcf->cur_block) {
        /* a block of another module (an `if`): not where locations go */
        return zg_conf_error(cf, "\"location\" directive is not allowed here");
    }
    if (cf->nargs == 3) {
        if (zg_conf_eq(&a[1], "=")) {
            exact = 1;
        } else if (zg_conf_eq(&a[1], "^~")) {
            noregex = 1;
        } else if (zg_conf_eq(&a[1], "~")) {
            regex = 1;
        } else if (zg_conf_eq(&a[1], "~*")) {
            regex = caseless = 1;
        } else {
            return zg_conf_error(cf, "invalid location modifier \"%s\"", a[1].data);
        }
        path = a[2];
    } else if (path.len > 0 && path.data[0] == '=') {
        exact = 1;
        path.data++;
        path.len--;
    } else if (path.len > 0 && path.data[0] == '~') {
        regex = 1;
        caseless = path.len > 1 && path.data[1] == '*';
        path.data += 1 + caseless;
        path.len -= 1 + (size_t)caseless;
    } else if (path.len > 0 && path.data[0] == '@') {
        named = 1;
    }
    if (path.len == 0 && !regex && !exact) {
        return zg_conf_error(cf, "invalid number of arguments in \"location\" directive");
    }
    if (parent != NULL) {
        const zg_location_t *pc = &parent->loc;
        if (pc->exact) {
            return zg_conf_error(cf, "location \"%s\" cannot be inside the exact location \"%s\"",
                                 path.data, pc->path);
        }
        if (pc->named) {
            return zg_conf_error(cf, "location \"%s\" cannot be inside the named location \"%s\"",
                                 path.data, pc->path);
        }
        if (named) {
            return zg_conf_error(cf, "named location \"%s\" can be on the server level only",
                                 path.data);
        }
        if (!regex && (path.len < pc->path_len || memcmp(path.data, pc->path, pc->path_len))) {
            return zg_conf_error(cf, "location \"%s\" is outside location \"%s\"", path.data,
                                 pc->path);
        }
    }
    list = parent != NULL ? &parent->locs : &ps->locs;
    nlist = parent != NULL ? &parent->nlocs : &ps->nlocs;
    /* nginx lets a named location repeat (the first is used); not a prefix */
    for (int i = 0; i < *nlist && !regex && !named; i++) {
        zg_location_t *o = &(*list)[i]->loc;
        if (o->regex == NULL && o->exact == (unsigned)exact && o->path_len == path.len
            && memcmp(o->path, path.data, path.len) == 0) {
            return zg_conf_error(cf, "duplicate location \"%s\"", path.data);
        }
    }
    pl = zg_conf_alloc(cf->conf, sizeof(*pl));
    if (pl == NULL || (slot = zg_conf_grow(cf->conf, *list, nlist, sizeof(**list))) == NULL
        || (pl->loc.loc_conf = zg_conf_create_loc_confs(cf)) == NULL) {
        return zg_conf_nomem(cf);
    }
    *list = slot;
    slot[*nlist - 1] = pl;
    loc = &pl->loc;
    pl->ps = ps;
    loc->path = (char *)path.data;
    loc->path_len = path.len;
    loc->exact = (unsigned)exact;
    loc->noregex = (unsigned)noregex;
    loc->named = (unsigned)named;
    loc->file = cf->file;
    loc->line = cf->line;
    if (regex) {
        err[0] = '\0';
        loc->regex = zg_regex_compile(path.data, path.len, caseless ? ZG_REGEX_CASELESS : 0,
                                      err, sizeof(err));
        if (loc->regex == NULL) {
            return zg_conf_error(cf, "%s", err);
        }
        if (zg_conf_keep(cf->conf, loc->regex, (void (*)(void *))zg_regex_free) != ZG_OK) {
            zg_regex_free(loc->regex);
            loc->regex = NULL;
            return zg_conf_nomem(cf);
        }
    }
    saved = cmcf->cur_block;
    cmcf->cur_block = pl;
    rc = zg_conf_block(cf, ZG_CTX_LOC, loc->loc_conf, pl);
    cmcf->cur_block = saved;
    return rc;
}

/* error_log FILE [LEVEL] at http, server or location level */
static int zg_http_core_error_log(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(cf->conf);
    zg_http_core_loc_conf_t *clcf = conf;
    zg_str_t *a = cf->args;
    zg_log_target_t *t;
    char *path;
    int level = ZG_LOG_ERR;

    (void)cmd;
    if (clcf->error_log_set) {
        return zg_conf_duplicate(cf);
    }
    if (cf->nargs > 2) {
        level = zg_log_level_parse(a[2].data, a[2].len);
        if (level < 0) {
            return zg_conf_invalid(cf, &a[2]);
        }
    }
    path = zg_conf_eq(&a[1], "stderr") ? zg_conf_strdup(cf->conf, "stderr", 6)
                                       : zg_conf_path(cf, &a[1]);
    if (path == NULL) {
        return zg_conf_nomem(cf);
    }
    for (t = cmcf->error_logs; t != NULL; t = t->next) {
        if (t->level == level && strcmp(t->path, path) == 0) {
            break;
        }
    }
    if (t == NULL) {
        t = zg_conf_alloc(cf->conf, sizeof(*t));
        if (t == NULL) {
            return zg_conf_nomem(cf);
        }
        t->path = path;
        t->level = level;
        t->fd = strcmp(path, "stderr") == 0 ? STDERR_FILENO : -1;
        t->next = cmcf->error_logs;
        cmcf->error_logs = t;
    }
    clcf->error_log = t;
    clcf->error_log_set = 1;
    return ZG_OK;
}

static int zg_http_core_open_logs(zg_conf_t *conf)
{
    for (zg_log_target_t *t = zg_http_core_main_conf(conf)->error_logs; t; t = t->next) {
        if (t->fd == -1) {
            t->fd = zg_log_open_file(t->path);
            if (t->fd == -1) {
                zg_log_error(ZG_LOG_EMERG, errno, "open() \"%s\" failed", t->path);
                return ZG_ERROR;
            }
        }
    }
    return ZG_OK;
}

static void zg_http_core_close_logs(zg_conf_t *conf)
{
    for (zg_log_target_t *t = zg_http_core_main_conf(conf)->error_logs; t; t = t->next) {
        if (t->fd > STDERR_FILENO) {
            close(t->fd);
            t->fd = -1;
        }
    }
}

/* USR1: each file opened anew on its descriptor's number */
static void zg_http_core_reopen_logs(zg_conf_t *conf)
{
    for (zg_log_target_t *t = zg_http_core_main_conf(conf)->error_logs; t; t = t->next) {
        int fd;
        if (t->fd <= STDERR_FILENO) {
            continue;
        }
        fd = zg_log_open_file(t->path);
        if (fd == -1) {
            zg_log_error(ZG_LOG_ALERT, errno, "reopen() \"%s\" failed", t->path);
            continue;
        }
        if (dup3(fd, t->fd, O_CLOEXEC) == -1) {
            zg_log_error(ZG_LOG_ALERT, errno, "dup3() \"%s\" failed", t->path);
        }
        close(fd);
    }
}

static int *zg_http_core_file(zg_conf_t *conf, int i)
{
    for (zg_log_target_t *t = zg_http_core_main_conf(conf)->error_logs; t; t = t->next) {
        if (t->fd > STDERR_FILENO && i-- == 0) {
            return &t->fd;
        }
    }
    return NULL;
}

/* server_tokens on|off|build: the version in the Server header (and error pages) */
static int zg_http_core_server_tokens(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_loc_conf_t *clcf = conf;
    zg_str_t *v = &cf->args[1];

    (void)cmd;
    if (clcf->server_tokens != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    if (zg_conf_eq(v, "off")) {
        clcf->server_tokens = ZG_TOKENS_OFF;
    } else if (zg_conf_eq(v, "on")) {
        clcf->server_tokens = ZG_TOKENS_ON;
    } else if (zg_conf_eq(v, "build")) {
        clcf->server_tokens = ZG_TOKENS_BUILD;
    } else {
        return zg_conf_invalid(cf, v);
    }
    return ZG_OK;
}

/* keepalive_timeout TIMEOUT [HEADER_TIMEOUT] */
static int zg_http_core_keepalive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_loc_conf_t *clcf = conf;

    (void)cmd;
    if (clcf->keepalive_timeout != ZG_UNSET_MSEC) {
        return zg_conf_duplicate(cf);
    }
    clcf->keepalive_timeout = zg_conf_parse_time(cf->args[1].data, cf->args[1].len);
    if (clcf->keepalive_timeout == ZG_UNSET_MSEC) {
        return zg_conf_invalid(cf, &cf->args[1]);
    }
    if (cf->nargs == 3) {
        clcf->keepalive_header = zg_conf_parse_time(cf->args[2].data, cf->args[2].len);
        if (clcf->keepalive_header == ZG_UNSET_MSEC) {
            return zg_conf_invalid(cf, &cf->args[2]);
        }
    }
    return ZG_OK;
}

/* "Keep-Alive: timeout=N" (seconds) on an answer that keeps the connection */
static size_t zg_http_core_keepalive_line(zg_request_t *r, char *buf, size_t len, int rejected)
{
    zg_msec_t t = zg_http_core_loc_conf(r->loc_conf)->keepalive_header;
    int n;

    (void)rejected;
    if (t == 0 || !r->keepalive) {
        return 0;
    }
    n = snprintf(buf, len, "Keep-Alive: timeout=%llu\r\n", (unsigned long long)(t / 1000));
    return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

static int zg_http_core_internal(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_http_core_loc_conf_t *clcf = conf;

    (void)cmd;
    if (clcf->internal != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    clcf->internal = 1;
    return ZG_OK;
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

int zg_http_core_set_pass_handler(zg_cf_t *cf, zg_phase_handler_pt handler)
{
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(cf->conf);
    zg_http_core_ploc_t *pl = cf->block;

    if (zg_http_core_set_handler(cf, handler) != ZG_OK) {
        return ZG_ERROR;
    }
    if (cf->ctx == ZG_CTX_LOC && pl != NULL && pl == cmcf->cur_block && pl->loc.regex == NULL
        && !pl->loc.named && pl->loc.path_len > 0 && pl->loc.path[pl->loc.path_len - 1] == '/') {
        pl->loc.auto_redirect = 1;
    }
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
    c->internal = ZG_UNSET;
    c->tcp_nodelay = ZG_UNSET;
    c->server_tokens = ZG_UNSET;
    c->keepalive_header = ZG_UNSET_MSEC;
    c->keepalive_requests = ZG_UNSET;
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
    ZG_CONF_MERGE(c, p, internal, ZG_UNSET);
    ZG_CONF_MERGE(c, p, tcp_nodelay, ZG_UNSET);
    ZG_CONF_MERGE(c, p, server_tokens, ZG_UNSET);
    ZG_CONF_MERGE(c, p, keepalive_header, ZG_UNSET_MSEC); /* apart, as nginx */
    ZG_CONF_MERGE(c, p, keepalive_requests, ZG_UNSET);
    if (!c->error_log_set) {
        c->error_log = p->error_log;
    }
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
    if (c->internal == ZG_UNSET) {
        c->internal = 0;
    }
    if (c->keepalive_header == ZG_UNSET_MSEC) {
        c->keepalive_header = 0;
    }
    if (c->keepalive_requests == ZG_UNSET) {
        c->keepalive_requests = 1000;
    }
    if (c->server_tokens == ZG_UNSET) {
        c->server_tokens = ZG_TOKENS_ON;
    }
    if (c->tcp_nodelay == ZG_UNSET) {
        c->tcp_nodelay = 1;
    }
    if (c->large_header_buffers == ZG_UNSET) {
        c->large_header_buffers = ZG_HTTP_HEAD_MAX / ZG_HTTP_LINE_MAX;
        c->large_header_size = ZG_HTTP_LINE_MAX;
    }
    return ZG_OK;
}

/* the locations of a level (named or not) merged with their parent's conf, as arrays */
static int zg_http_core_locations(zg_cf_t *cf, zg_server_conf_t *srv, zg_location_t *parent,
                                  void **parent_conf, zg_http_core_ploc_t **pls, int n,
                                  zg_location_t **out, int *nout, int named)
{
    zg_location_t *locs;
    int k = 0;

    for (int i = 0; i < n; i++) {
        k += pls[i]->loc.named == (unsigned)named;
    }
    *out = NULL;
    *nout = k;
    if (k == 0) {
        return ZG_OK;
    }
    locs = zg_conf_alloc(cf->conf, (size_t)k * sizeof(zg_location_t));
    if (locs == NULL) {
        return zg_conf_nomem(cf);
    }
    k = 0;
    for (int i = 0; i < n; i++) {
        zg_http_core_ploc_t *pl = pls[i];
        zg_location_t *loc = &locs[k];
        if (pl->loc.named != (unsigned)named) {
            continue;
        }
        k++;
        *loc = pl->loc;
        loc->server = srv;
        loc->parent = parent;
        if (zg_conf_merge_loc_confs(cf, parent_conf, loc->loc_conf) != ZG_OK
            || zg_http_core_locations(cf, srv, loc, loc->loc_conf, pl->locs, pl->nlocs,
                                      &loc->locations, &loc->nlocations, 0) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    *out = locs;
    return ZG_OK;
}

/* longest first, and among equals in config order (a stable insertion sort) */
static void zg_http_core_names_sort(zg_server_name_t *a, int n)
{
    for (int i = 1; i < n; i++) {
        zg_server_name_t t = a[i];
        int j = i;
        while (j > 0 && a[j - 1].len < t.len) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = t;
    }
}

/* 1 if a server of ls already has the name n ("*.a" and ".a" are not the same) */
static int zg_http_core_name_taken(const zg_listen_t *ls, const char *n, size_t len)
{
    const zg_server_name_t *list = ls->exact;
    int cnt = ls->nexact, bare = n[0] == '.';

    if (n[0] == '*') {
        list = ls->head;
        cnt = ls->nhead;
        n++;
        len--;
    } else if (n[0] == '.') {
        list = ls->head;
        cnt = ls->nhead;
    } else if (len > 0 && n[len - 1] == '*') {
        list = ls->tail;
        cnt = ls->ntail;
        len--;
    }
    for (int i = 0; i < cnt; i++) {
        if (list[i].len == len && (int)list[i].bare == bare
            && strncasecmp(list[i].name, n, len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* the names of the servers of ls, by kind */
static int zg_http_core_names(zg_cf_t *cf, zg_listen_t *ls)
{
    zg_conf_t *c = cf->conf;
    char err[512];

    for (int i = 0; i < ls->nservers; i++) {
        zg_server_conf_t *srv = ls->servers[i];
        for (int k = 0; k < srv->nnames; k++) {
            const char *n = srv->names[k];
            size_t len = strlen(n);
            zg_server_name_t *sn;
            if (n[0] == '~') {
                zg_server_regex_t *sr = zg_conf_push(c, ls->regex, ls->nregex);
                if (sr == NULL) {
                    return zg_conf_nomem(cf);
                }
                sr->srv = srv;
                sr->regex = zg_regex_compile(n + 1, len - 1, ZG_REGEX_CASELESS, err,
                                             sizeof(err));
                if (sr->regex == NULL) {
                    return zg_conf_error_at(cf, srv->file, srv->line, "%s", err);
                }
                if (zg_conf_keep(c, sr->regex, (void (*)(void *))zg_regex_free) != ZG_OK) {
                    zg_regex_free(sr->regex);
                    sr->regex = NULL;
                    return zg_conf_nomem(cf);
                }
                continue;
            }
            if (zg_http_core_name_taken(ls, n, len)) {
                /* as nginx: the first server with a name keeps it */
                zg_log_error(ZG_LOG_WARN, 0, "conflicting server name \"%s\" on %s, ignored",
                             n, ls->addr.text);
                continue;
            }
            if (n[0] == '*') {
                sn = zg_conf_push(c, ls->head, ls->nhead);
                n++;
                len--;
            } else if (n[0] == '.') {
                sn = zg_conf_push(c, ls->head, ls->nhead);
                if (sn != NULL) {
                    sn->bare = 1;
                }
            } else if (len > 0 && n[len - 1] == '*') {
                sn = zg_conf_push(c, ls->tail, ls->ntail);
                len--;
            } else {
                sn = zg_conf_push(c, ls->exact, ls->nexact);
            }
            if (sn == NULL) {
                return zg_conf_nomem(cf);
            }
            sn->name = n;
            sn->len = len;
            sn->srv = srv;
        }
    }
    zg_http_core_names_sort(ls->head, ls->nhead);
    zg_http_core_names_sort(ls->tail, ls->ntail);
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
        srv->name0_len = strlen(srv->names[0]);
        if (zg_http_core_locations(cf, srv, NULL, srv->loc_conf, ps->locs, ps->nlocs,
                                   &srv->locations, &srv->nlocations, 0) != ZG_OK
            || zg_http_core_locations(cf, srv, NULL, srv->loc_conf, ps->locs, ps->nlocs,
                                      &srv->named, &srv->nnamed, 1) != ZG_OK) {
            return ZG_ERROR;
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
                ls->nfds = 0;
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
        if (zg_http_core_names(cf, &cmcf->listens[j]) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

zg_server_conf_t *zg_http_find_server(const zg_listen_t *ls, const char *host, size_t len,
                                      zg_regex_caps_t *caps)
{
    size_t n = len;

    if (ls->nservers == 1 && ls->nregex == 0) {
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
    for (int i = 0; i < ls->nexact; i++) {
        const zg_server_name_t *sn = &ls->exact[i];
        if (sn->len == n && strncasecmp(sn->name, host, n) == 0) {
            return sn->srv;
        }
    }
    for (int i = 0; i < ls->nhead; i++) {
        const zg_server_name_t *sn = &ls->head[i];
        /* ".example.com": "a.example.com", and "example.com" when bare */
        if ((n > sn->len && strncasecmp(sn->name, host + n - sn->len, sn->len) == 0)
            || (sn->bare && n == sn->len - 1 && strncasecmp(sn->name + 1, host, n) == 0)) {
            return sn->srv;
        }
    }
    for (int i = 0; i < ls->ntail; i++) {
        const zg_server_name_t *sn = &ls->tail[i];
        if (n > sn->len && strncasecmp(sn->name, host, sn->len) == 0) {
            return sn->srv;
        }
    }
    for (int i = 0; i < ls->nregex && n > 0; i++) {
        if (zg_regex_exec(ls->regex[i].regex, host, n, caps) == ZG_OK) {
            return ls->regex[i].srv;
        }
    }
    return ls->default_server;
}

/* nginx's ngx_http_core_find_location on one level: ZG_OK = exact or ^~ (done),
 * ZG_AGAIN = a prefix matched (regexes may still win), ZG_DECLINED = none */
static int zg_http_find_level(const zg_location_t *locs, int nlocs, const char *path,
                              size_t len, zg_regex_caps_t *caps, zg_location_t **found)
{
    zg_location_t *best = NULL, *redirect = NULL;
    int rc, noregex;

    for (int i = 0; i < nlocs; i++) {
        zg_location_t *loc = (zg_location_t *)&locs[i];
        if (loc->regex != NULL) {
            continue;
        }
        if (loc->exact) {
            if (loc->path_len == len && memcmp(loc->path, path, len) == 0) {
                *found = loc; /* an exact match wins over any prefix */
                return ZG_OK;
            }
        } else if (loc->path_len <= len && (best == NULL || loc->path_len > best->path_len)
                   && memcmp(loc->path, path, loc->path_len) == 0) {
            best = loc;
        }
        if (loc->auto_redirect && loc->path_len == len + 1 && memcmp(loc->path, path, len) == 0) {
            redirect = loc;
        }
    }
    /* "/x" for "/x/": unless a location is "/x" itself */
    if (redirect != NULL && (best == NULL || best->path_len != len)) {
        *found = redirect;
        return ZG_DONE;
    }
    rc = ZG_DECLINED;
    noregex = 0;
    if (best != NULL) {
        *found = best;
        noregex = best->noregex;
        rc = zg_http_find_level(best->locations, best->nlocations, path, len, caps, found);
        if (rc == ZG_OK || rc == ZG_DONE) {
            return rc;
        }
        rc = ZG_AGAIN;
    }
    if (noregex) {
        return ZG_OK;
    }
    for (int i = 0; i < nlocs; i++) {
        zg_location_t *loc = (zg_location_t *)&locs[i];
        if (loc->regex != NULL && zg_regex_exec(loc->regex, path, len, caps) == ZG_OK) {
            *found = loc;
            (void)zg_http_find_level(loc->locations, loc->nlocations, path, len, caps, found);
            return ZG_OK;
        }
    }
    return rc;
}

zg_location_t *zg_http_core_find_location(const zg_server_conf_t *srv, const char *path,
                                          size_t len, zg_regex_caps_t *caps, int *redirect)
{
    zg_location_t *found = NULL;

    *redirect = zg_http_find_level(srv->locations, srv->nlocations, path, len, caps, &found)
                == ZG_DONE;
    return found;
}

zg_location_t *zg_http_find_location(const zg_server_conf_t *srv, const char *path,
                                     size_t len, zg_regex_caps_t *caps)
{
    int redirect;

    return zg_http_core_find_location(srv, path, len, caps, &redirect);
}

zg_location_t *zg_http_core_find_named(const zg_server_conf_t *srv, const char *name,
                                       size_t len)
{
    if (len > 0 && name[0] == '@') {
        name++;
        len--;
    }
    for (int i = 0; i < srv->nnamed; i++) {
        zg_location_t *loc = &srv->named[i];
        if (loc->path_len == len + 1 && memcmp(loc->path + 1, name, len) == 0) {
            return loc;
        }
    }
    return NULL;
}

#define ZG_CORE_LOC(f) offsetof(zg_http_core_loc_conf_t, f)

static const zg_command_t zg_http_core_commands[] = {
    { "http", ZG_CTX_MAIN, 1, 0, 0, zg_http_core_http, ZG_MAIN_CONF, 0, NULL },
    { "server", ZG_CTX_HTTP, 1, 0, 0, zg_http_core_server, ZG_MAIN_CONF, 0, NULL },
    { "listen", ZG_CTX_SRV, 0, 1, -1, zg_http_core_listen, ZG_MAIN_CONF, 0, NULL },
    { "server_name", ZG_CTX_SRV, 0, 1, -1, zg_http_core_server_name, ZG_MAIN_CONF, 0, NULL },
    { "location", ZG_CTX_SRV | ZG_CTX_LOC, 1, 1, 2, zg_http_core_location, ZG_MAIN_CONF, 0,
      NULL },
    { "internal", ZG_CTX_LOC, 0, 0, 0, zg_http_core_internal, ZG_LOC_CONF, 0, NULL },
    { "server_tokens", ZG_CTX_SETTINGS, 0, 1, 1, zg_http_core_server_tokens, ZG_LOC_CONF, 0,
      NULL },
    /* no-ops, documented: zonegate keeps no static hash tables to tune */
    { "server_names_hash_max_size", ZG_CTX_HTTP, 0, 1, 1, zg_conf_set_noop_size,
      ZG_MAIN_CONF, 0, NULL },
    { "server_names_hash_bucket_size", ZG_CTX_HTTP, 0, 1, 1, zg_conf_set_noop_size,
      ZG_MAIN_CONF, 0, NULL },
    { "variables_hash_max_size", ZG_CTX_HTTP, 0, 1, 1, zg_conf_set_noop_size, ZG_MAIN_CONF,
      0, NULL },
    { "variables_hash_bucket_size", ZG_CTX_HTTP, 0, 1, 1, zg_conf_set_noop_size,
      ZG_MAIN_CONF, 0, NULL },
    { "types_hash_max_size", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_noop_size, ZG_LOC_CONF,
      0, NULL },
    { "types_hash_bucket_size", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_noop_size,
      ZG_LOC_CONF, 0, NULL },
    { "error_log", ZG_CTX_SETTINGS, 0, 1, 2, zg_http_core_error_log, ZG_LOC_CONF, 0, NULL },
    { "client_header_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_CORE_LOC(client_header_timeout), NULL },
    { "client_body_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_CORE_LOC(client_body_timeout), NULL },
    { "send_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_CORE_LOC(send_timeout), NULL },
    { "keepalive_timeout", ZG_CTX_SETTINGS, 0, 1, 2, zg_http_core_keepalive, ZG_LOC_CONF, 0,
      NULL },
    { "keepalive_requests", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_num, ZG_LOC_CONF,
      ZG_CORE_LOC(keepalive_requests), NULL },
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
    { "tcp_nodelay", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      ZG_CORE_LOC(tcp_nodelay), NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_http_core_module = {
    .name = "http_core",
    .commands = zg_http_core_commands,
    .create_main_conf = zg_http_core_create_main_conf,
    .init_main_conf = zg_http_core_init_main_conf,
    .create_loc_conf = zg_http_core_create_loc_conf,
    .merge_loc_conf = zg_http_core_merge_loc_conf,
    .init_master = zg_http_core_open_logs,
    .exit_master = zg_http_core_close_logs,
    .reopen = zg_http_core_reopen_logs,
    .headers = zg_http_core_keepalive_line,
    .file = zg_http_core_file,
};
