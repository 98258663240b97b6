/* zg_proxy_shape.c — the request the proxy sends up and the answer it passes down,
 * shaped as nginx's proxy module does (zg_proxy_shape.h). */
#include "zg_proxy_shape.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "zg_http_core.h"
#include "zg_proxy.h"

/* nginx's ngx_http_proxy_hide_headers (lower case) */
static const zg_str_t zg_proxy_default_hidden[] = {
    {4, "date"},
    {6, "server"},
    {5, "x-pad"},
    {15, "x-accel-expires"},
    {16, "x-accel-redirect"},
    {18, "x-accel-limit-rate"},
    {17, "x-accel-buffering"},
    {15, "x-accel-charset"},
};

static int zg_proxy_name_in(const zg_str_t *list, int n, const zg_str_t *name)
{
    for (int i = 0; i < n; i++) {
        if (zg_http_name_eq(name, list[i].data, list[i].len)) {
            return 1;
        }
    }
    return 0;
}

static void zg_proxy_special(uint8_t *set, char ch)
{
    unsigned c = (unsigned char)ch | 0x20;
    set[c >> 3] |= (uint8_t)(1u << (c & 7));
}

/* ---- the answer ---- */

/* proxy_redirect default: "http://" HOST URI (or "/") of proxy_pass -> the location
 * (or "/"); 0 when proxy_pass has variables */
static int zg_proxy_default_rule(zg_request_t *r, char *from, size_t cap, zg_str_t *f,
                                 zg_str_t *t)
{
    zg_proxy_loc_conf_t *plcf = zg_proxy_loc_conf(r->loc_conf);
    if (plcf->upstream == NULL || plcf->url_cv != NULL) {
        return 0;
    }
    int n = snprintf(from, cap, "http://%s%.*s", plcf->upstream->name,
                     plcf->uri ? (int)plcf->uri_len : 1, plcf->uri ? plcf->uri : "/");
    if (n < 0 || (size_t)n >= cap) {
        return 0;
    }
    f->data = from;
    f->len = (size_t)n;
    if (plcf->uri && r->loc != NULL) {
        t->data = r->loc->path;
        t->len = r->loc->path_len;
    } else {
        t->data = "/";
        t->len = 1;
    }
    return 1;
}

long zg_proxy_refresh_url(const zg_str_t *value)
{
    for (size_t i = 0; i + 4 <= value->len; i++) {
        if (strncasecmp(value->data + i, "url=", 4) == 0) {
            return (long)(i + 4);
        }
    }
    return -1;
}

long zg_proxy_rewrite(const zg_str_t *value, size_t off, const zg_str_t *from,
                      const zg_str_t *prefix, const zg_str_t *to, char *out, size_t cap)
{
    if (off > value->len || from->len > value->len - off ||
        (from->len && memcmp(value->data + off, from->data, from->len) != 0)) {
        return 0;
    }
    size_t rest = value->len - off - from->len;
    size_t n = off + prefix->len + to->len + rest;
    if (n > cap) {
        return -1;
    }
    char *p = out;
    if (off) {
        memcpy(p, value->data, off);
        p += off;
    }
    if (prefix->len) {
        memcpy(p, prefix->data, prefix->len);
        p += prefix->len;
    }
    if (to->len) {
        memcpy(p, to->data, to->len);
        p += to->len;
    }
    if (rest) {
        memcpy(p, value->data + off + from->len, rest);
    }
    return (long)n;
}

/* the first rule whose FROM starts value+off replaces it: ZG_AGAIN with *out, or ZG_OK */
static int zg_proxy_redirect(zg_request_t *r, const zg_proxy_shape_loc_conf_t *sc,
                             const zg_str_t *value, size_t off, int location, zg_str_t *out)
{
    char dfrom[320];
    for (int i = 0; i < sc->nredirects; i++) {
        const zg_proxy_redirect_t *rd = &sc->redirects[i];
        zg_str_t from, to;
        if (rd->re != NULL) {
            /* as nginx: the regex matches the rest of the value, which TO replaces
             * whole; TO sees the captures of this match */
            zg_regex_caps_t caps;
            from.data = value->data + off;
            from.len = value->len - off;
            if (zg_regex_exec(rd->re, from.data, from.len, &caps) != ZG_OK) {
                continue;
            }
            const zg_regex_caps_t *saved = r->ctx.caps;
            r->ctx.caps = &caps;
            int rc = zg_cv_eval_str(rd->to, &r->ctx, &to);
            r->ctx.caps = saved;
            if (rc != ZG_OK) {
                return ZG_OK;
            }
        } else if (rd->from == NULL) {
            if (!zg_proxy_default_rule(r, dfrom, sizeof(dfrom), &from, &to)) {
                continue;
            }
        } else if (zg_cv_eval_str(rd->from, &r->ctx, &from) != ZG_OK ||
                   zg_cv_eval_str(rd->to, &r->ctx, &to) != ZG_OK) {
            return ZG_OK;
        }
        if (from.len > value->len - off || memcmp(value->data + off, from.data, from.len) != 0) {
            continue;
        }
        char abs[1100];
        zg_str_t prefix = {0, abs};
        if (location && off == 0 && to.len > 0 && to.data[0] == '/') {
            prefix.len = zg_request_origin(r, abs, sizeof(abs));
        }
        size_t cap = value->len + prefix.len + to.len + 1;
        char *p = zg_var_alloc(&r->ctx, cap);
        long n = p != NULL ? zg_proxy_rewrite(value, off, &from, &prefix, &to, p, cap) : -1;
        if (n <= 0) {
            return ZG_OK;
        }
        out->data = p;
        out->len = (size_t)n;
        return ZG_AGAIN;
    }
    return ZG_OK;
}

int zg_proxy_shape_header_slow(zg_request_t *r, const zg_proxy_shape_loc_conf_t *sc,
                               const zg_str_t *name, const zg_str_t *value, zg_str_t *out)
{
    if (zg_proxy_name_in(sc->hidden, sc->nhidden, name)) {
        return ZG_DECLINED;
    }
    if (sc->nredirects <= 0 || value->len == 0) {
        return ZG_OK;
    }
    if (zg_http_name_eq(name, "location", 8)) {
        return zg_proxy_redirect(r, sc, value, 0, 1, out);
    }
    if (zg_http_name_eq(name, "refresh", 7)) {
        long off = zg_proxy_refresh_url(value); /* as nginx: the URL after "url=" */
        if (off >= 0) {
            return zg_proxy_redirect(r, sc, value, (size_t)off, 0, out);
        }
    }
    return ZG_OK;
}

static zg_str_t zg_proxy_server_token(zg_request_t *r)
{
    return zg_http_server_token(zg_http_core_loc_conf(r->loc_conf));
}

void zg_proxy_shape_own_lines(zg_request_t *r, const zg_proxy_shape_loc_conf_t *sc,
                              zg_outq_t *q)
{
    static const char on[] = "Server: zonegate/" ZG_VERSION "\r\n", off[] = "Server: zonegate\r\n";
    char buf[sizeof(on) + 40];
    size_t n = 0;

    /* one append: this is on every proxied answer */
    if (sc->own_server) {
        if (zg_http_core_loc_conf(r->loc_conf)->server_tokens != ZG_TOKENS_OFF) {
            memcpy(buf, on, sizeof(on) - 1);
            n = sizeof(on) - 1;
        } else {
            memcpy(buf, off, sizeof(off) - 1);
            n = sizeof(off) - 1;
        }
    }
    if (sc->own_date) {
        memcpy(buf + n, "Date: ", 6);
        memcpy(buf + n + 6, zg_http_date(), 29);
        memcpy(buf + n + 35, "\r\n", 2);
        n += 37;
    }
    zg_outq_append(q, buf, n);
}

int zg_proxy_shape_own_resp(zg_request_t *r, const zg_proxy_shape_loc_conf_t *sc,
                            zg_resp_t *h)
{
    if (sc->own_server) {
        zg_str_t s = zg_proxy_server_token(r);
        if (zg_resp_add(r, h, "Server", 6, s.data, s.len) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    if (sc->own_date) {
        const char *date = zg_resp_dup(r, zg_http_date(), 29);
        if (date == NULL || zg_resp_add(r, h, "Date", 4, date, 29) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

/* ---- the request ---- */

zg_str_t zg_proxy_shape_method_slow(zg_request_t *r, const zg_proxy_shape_loc_conf_t *sc)
{
    zg_str_t m;
    if (zg_cv_eval_str(sc->method, &r->ctx, &m) != ZG_OK || m.len == 0) {
        return r->ctx.method;
    }
    return m;
}

int zg_proxy_shape_body(zg_request_t *r, const zg_proxy_shape_loc_conf_t *sc, zg_str_t *out)
{
    return zg_cv_eval_str(sc->body, &r->ctx, out);
}

/* ---- directives ---- */

static int zg_proxy_shape_version(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_proxy_shape_loc_conf_t *sc = conf;

    (void)cmd;
    if (sc->http10 != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    if (zg_conf_eq(&cf->args[1], "1.1")) {
        sc->http10 = 0;
    } else if (zg_conf_eq(&cf->args[1], "1.0")) {
        sc->http10 = 1;
    } else {
        return zg_conf_error(cf, "invalid value \"%s\" in \"%s\" directive", cf->args[1].data,
                             cf->name);
    }
    return ZG_OK;
}

static int zg_proxy_shape_name_list(zg_cf_t *cf, zg_str_t **arr, int *n)
{
    if (*n < 0) {
        *n = 0;
    }
    zg_str_t *s = zg_conf_push(cf->conf, *arr, *n);
    if (s == NULL) {
        return zg_conf_nomem(cf);
    }
    *s = cf->args[1];
    return ZG_OK;
}

static int zg_proxy_shape_hide(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_proxy_shape_loc_conf_t *sc = conf;
    (void)cmd;
    return zg_proxy_shape_name_list(cf, &sc->hide, &sc->nhide);
}

static int zg_proxy_shape_pass(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_proxy_shape_loc_conf_t *sc = conf;
    (void)cmd;
    return zg_proxy_shape_name_list(cf, &sc->pass, &sc->npass);
}

static void zg_proxy_regex_free(void *p)
{
    zg_regex_free(p);
}

static int zg_proxy_shape_redirect_set(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_proxy_shape_loc_conf_t *sc = conf;
    zg_str_t *a = cf->args;
    zg_proxy_redirect_t *rd;

    (void)cmd;
    if (cf->nargs == 2 && zg_conf_eq(&a[1], "off")) {
        if (sc->nredirects > 0) {
            return zg_conf_invalid(cf, &a[1]);
        }
        sc->nredirects = 0;
        sc->redirects = NULL;
        return ZG_OK;
    }
    if (sc->nredirects == 0 && sc->redirects == NULL && sc->nredirects != ZG_UNSET) {
        return zg_conf_error(cf, "\"proxy_redirect off\" cannot be used with other rules");
    }
    if (sc->nredirects < 0) {
        sc->nredirects = 0;
    }
    if (cf->nargs == 2) {
        if (!zg_conf_eq(&a[1], "default")) {
            return zg_conf_invalid(cf, &a[1]);
        }
        rd = zg_conf_push(cf->conf, sc->redirects, sc->nredirects);
        if (rd == NULL) {
            return zg_conf_nomem(cf);
        }
        rd->from = rd->to = NULL;
        rd->re = NULL;
        return ZG_OK;
    }
    rd = zg_conf_push(cf->conf, sc->redirects, sc->nredirects);
    if (rd == NULL) {
        return zg_conf_nomem(cf);
    }
    rd->re = NULL;
    if (a[1].len > 0 && a[1].data[0] == '~') {
        char err[256];
        int caseless = a[1].len > 1 && a[1].data[1] == '*';
        size_t skip = caseless ? 2 : 1;
        rd->re = zg_regex_compile(a[1].data + skip, a[1].len - skip,
                                  caseless ? ZG_REGEX_CASELESS : 0, err, sizeof(err));
        if (rd->re == NULL) {
            return zg_conf_error(cf, "%s", err);
        }
        if (zg_conf_keep(cf->conf, rd->re, zg_proxy_regex_free) != ZG_OK) {
            return zg_conf_nomem(cf);
        }
        rd->from = NULL;
        rd->to = zg_conf_cv(cf, a[2].data, a[2].len);
        return rd->to != NULL ? ZG_OK : ZG_ERROR;
    }
    rd->from = zg_conf_cv(cf, a[1].data, a[1].len);
    rd->to = zg_conf_cv(cf, a[2].data, a[2].len);
    return rd->from != NULL && rd->to != NULL ? ZG_OK : ZG_ERROR;
}

static int zg_proxy_shape_method_set(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_proxy_shape_loc_conf_t *sc = conf;
    (void)cmd;
    if (sc->method != NULL) {
        return zg_conf_duplicate(cf);
    }
    sc->method = zg_conf_cv(cf, cf->args[1].data, cf->args[1].len);
    return sc->method != NULL ? ZG_OK : ZG_ERROR;
}

static int zg_proxy_shape_body_set(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_proxy_shape_loc_conf_t *sc = conf;
    (void)cmd;
    if (sc->body_set) {
        return zg_conf_duplicate(cf);
    }
    sc->body_set = 1;
    sc->body = zg_conf_cv(cf, cf->args[1].data, cf->args[1].len);
    return sc->body != NULL ? ZG_OK : ZG_ERROR;
}

static void *zg_proxy_shape_create_loc_conf(zg_conf_t *conf)
{
    zg_proxy_shape_loc_conf_t *c = zg_conf_alloc(conf, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->nhide = c->npass = c->nredirects = ZG_UNSET;
    c->http10 = c->pass_body = c->pass_headers = ZG_UNSET;
    return c;
}

static int zg_proxy_shape_merge_loc_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_proxy_shape_loc_conf_t *p = parent, *c = child;

    if (c->nhide < 0) {
        c->hide = p->hide;
        c->nhide = p->nhide;
    }
    if (c->npass < 0) {
        c->pass = p->pass;
        c->npass = p->npass;
    }
    if (c->nredirects == ZG_UNSET) {
        c->redirects = p->redirects;
        c->nredirects = p->nredirects;
    }
    ZG_CONF_MERGE(c, p, http10, ZG_UNSET);
    ZG_CONF_MERGE(c, p, pass_body, ZG_UNSET);
    ZG_CONF_MERGE(c, p, pass_headers, ZG_UNSET);
    if (c->method == NULL) {
        c->method = p->method;
    }
    if (!c->body_set) {
        c->body = p->body;
        c->body_set = p->body_set;
    }

    /* defaults (the parent's are merged already, except at the http level) */
    if (c->nredirects == ZG_UNSET) {
        static zg_proxy_redirect_t dflt = {NULL, NULL, NULL};
        c->redirects = &dflt;
        c->nredirects = 1;
    }
    if (c->http10 == ZG_UNSET) {
        c->http10 = 0;
    }
    if (c->pass_body == ZG_UNSET) {
        c->pass_body = 1;
    }
    if (c->pass_headers == ZG_UNSET) {
        c->pass_headers = 1;
    }
    int nhide = c->nhide > 0 ? c->nhide : 0, npass = c->npass > 0 ? c->npass : 0;
    if (nhide == 0 && npass == 0) {
        c->hidden = zg_proxy_default_hidden;
        c->nhidden = (int)zg_nelems(zg_proxy_default_hidden);
    } else {
        zg_str_t *h = NULL;
        int n = 0;
        for (size_t i = 0; i < zg_nelems(zg_proxy_default_hidden) + (size_t)nhide; i++) {
            const zg_str_t *s = i < zg_nelems(zg_proxy_default_hidden)
                                    ? &zg_proxy_default_hidden[i]
                                    : &c->hide[i - zg_nelems(zg_proxy_default_hidden)];
            if (zg_proxy_name_in(c->pass, npass, s) || zg_proxy_name_in(h, n, s)) {
                continue;
            }
            zg_str_t *d = zg_conf_push(cf->conf, h, n);
            if (d == NULL) {
                return zg_conf_nomem(cf);
            }
            *d = *s;
        }
        c->hidden = h;
        c->nhidden = n;
    }
    memset(c->special, 0, sizeof(c->special));
    c->own_server = c->own_date = 0;
    zg_str_t srv = {6, "server"}, date = {4, "date"};
    for (int i = 0; i < c->nhidden; i++) {
        if (c->hidden[i].len > 0) {
            zg_proxy_special(c->special, c->hidden[i].data[0]);
        }
    }
    c->own_server = zg_proxy_name_in(c->hidden, c->nhidden, &srv);
    c->own_date = zg_proxy_name_in(c->hidden, c->nhidden, &date);
    if (c->nredirects > 0) {
        zg_proxy_special(c->special, 'l');
        zg_proxy_special(c->special, 'r');
    }
    return ZG_OK;
}

#define ZG_PS(f) offsetof(zg_proxy_shape_loc_conf_t, f)

static const zg_command_t zg_proxy_shape_commands[] = {
    { "proxy_http_version", ZG_CTX_SETTINGS, 0, 1, 1, zg_proxy_shape_version, ZG_LOC_CONF, 0,
      NULL },
    { "proxy_hide_header", ZG_CTX_SETTINGS, 0, 1, 1, zg_proxy_shape_hide, ZG_LOC_CONF, 0,
      NULL },
    { "proxy_pass_header", ZG_CTX_SETTINGS, 0, 1, 1, zg_proxy_shape_pass, ZG_LOC_CONF, 0,
      NULL },
    { "proxy_redirect", ZG_CTX_SETTINGS, 0, 1, 2, zg_proxy_shape_redirect_set, ZG_LOC_CONF, 0,
      NULL },
    { "proxy_method", ZG_CTX_SETTINGS, 0, 1, 1, zg_proxy_shape_method_set, ZG_LOC_CONF, 0,
      NULL },
    { "proxy_set_body", ZG_CTX_SETTINGS, 0, 1, 1, zg_proxy_shape_body_set, ZG_LOC_CONF, 0,
      NULL },
    { "proxy_pass_request_body", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      ZG_PS(pass_body), NULL },
    { "proxy_pass_request_headers", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      ZG_PS(pass_headers), NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_proxy_shape_module = {
    .name = "proxy_shape",
    .commands = zg_proxy_shape_commands,
    .create_loc_conf = zg_proxy_shape_create_loc_conf,
    .merge_loc_conf = zg_proxy_shape_merge_loc_conf,
};
