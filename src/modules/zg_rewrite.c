/* zg_rewrite.c — nginx's rewrite module: return, rewrite, set, if, break.
 *
 * Each level (server, location) keeps its own list of directives, never inherited.
 * The request core runs the handler twice: before the location is found (the
 * server's list) and after (the location's); a rewrite that changed the URI without
 * `break` makes the core find the location again (at most 10 times, then 500). */
#include "zg_rewrite.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "zg_http_core.h"
#include "zg_log.h"
#include "zg_request.h"
#include "zg_vars.h"

/* what running a list ends with */
enum { ZG_RW_GO_ON = 0, ZG_RW_STOP, ZG_RW_ANSWERED };

static zg_rw_code_t *zg_rw_push(zg_cf_t *cf, zg_rewrite_loc_conf_t *rlcf, int op)
{
    zg_rw_list_t *l = rlcf->cur != NULL ? rlcf->cur : &rlcf->list;
    zg_rw_code_t *c = zg_conf_push(cf->conf, l->codes, l->n);

    if (c == NULL) {
        zg_conf_nomem(cf);
        return NULL;
    }
    memset(c, 0, sizeof(*c));
    c->op = op;
    return c;
}

static void zg_rw_regex_free(void *p)
{
    zg_regex_free(p);
}

static zg_regex_t *zg_rw_regex(zg_cf_t *cf, const zg_str_t *v, int flags)
{
    char err[512];
    zg_regex_t *re = zg_regex_compile(v->data, v->len, flags, err, sizeof(err));
    zg_vars_t *vs = zg_conf_vars(cf->conf);
    int rc;

    if (re == NULL) {
        zg_conf_error(cf, "%s", err);
        return NULL;
    }
    if (zg_conf_keep(cf->conf, re, zg_rw_regex_free) != ZG_OK || vs == NULL) {
        zg_regex_free(re);
        zg_conf_nomem(cf);
        return NULL;
    }
    if ((rc = zg_vars_define_captures(vs, re)) != ZG_OK) {
        return rc == ZG_ERROR ? (zg_conf_nomem(cf), NULL)
                              : (zg_conf_error(cf, "a named capture of \"%s\" is another "
                                                   "variable", v->data), NULL);
    }
    return re;
}

static int zg_rw_is_url(const zg_str_t *v)
{
    return zg_conf_prefix(v, "http://") || zg_conf_prefix(v, "https://")
           || zg_conf_prefix(v, "$scheme");
}

/* return code [text] | return URL */
static int zg_rewrite_return(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_str_t *a = cf->args, *text = NULL;
    zg_rw_code_t *c;
    int code;

    (void)cmd;
    code = zg_conf_atoi(a[1].data, a[1].len);
    if (code < 0) {
        if (cf->nargs == 2 && zg_rw_is_url(&a[1])) {
            code = 302;
            text = &a[1];
        } else {
            return zg_conf_error(cf, "invalid return code \"%s\"", a[1].data);
        }
    } else if (code > 999) {
        return zg_conf_error(cf, "invalid return code \"%s\"", a[1].data);
    } else if (cf->nargs == 3) {
        text = &a[2];
    }
    if ((c = zg_rw_push(cf, conf, ZG_RW_RETURN)) == NULL) {
        return ZG_ERROR;
    }
    c->code = code;
    if (text != NULL && (c->value = zg_conf_cv(cf, text->data, text->len)) == NULL) {
        return ZG_ERROR;
    }
    return ZG_OK;
}

static int zg_rw_set_get(zg_var_ctx_t *ctx, const void *data, zg_str_t *out)
{
    (void)ctx;
    (void)data;
    out->data = "";
    out->len = 0;
    return ZG_OK; /* not set yet: empty, as nginx (which warns) */
}

/* set $variable value */
static int zg_rewrite_set(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_str_t *a = cf->args;
    zg_rw_code_t *c;
    int index;

    (void)cmd;
    if (zg_conf_settable_var(cf, &a[1], zg_rw_set_get, &index) != ZG_OK) {
        return ZG_ERROR;
    }
    if ((c = zg_rw_push(cf, conf, ZG_RW_SET)) == NULL) {
        return ZG_ERROR;
    }
    c->var = index;
    c->value = zg_conf_cv(cf, a[2].data, a[2].len);
    return c->value != NULL ? ZG_OK : ZG_ERROR;
}

/* rewrite regex replacement [last|break|redirect|permanent] */
static int zg_rewrite_rewrite(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_str_t *a = cf->args;
    zg_rw_code_t *c;
    int flag = ZG_RW_FLAG_NONE;

    (void)cmd;
    if (cf->nargs == 4) {
        if (zg_conf_eq(&a[3], "last")) {
            flag = ZG_RW_FLAG_LAST;
        } else if (zg_conf_eq(&a[3], "break")) {
            flag = ZG_RW_FLAG_BREAK;
        } else if (zg_conf_eq(&a[3], "redirect")) {
            flag = ZG_RW_FLAG_REDIRECT;
        } else if (zg_conf_eq(&a[3], "permanent")) {
            flag = ZG_RW_FLAG_PERMANENT;
        } else {
            return zg_conf_error(cf, "invalid parameter \"%s\"", a[3].data);
        }
    }
    if ((c = zg_rw_push(cf, conf, ZG_RW_REWRITE)) == NULL) {
        return ZG_ERROR;
    }
    c->code = flag;
    c->redirect = zg_rw_is_url(&a[2]);
    if ((c->re = zg_rw_regex(cf, &a[1], 0)) == NULL) {
        return ZG_ERROR;
    }
    c->value = zg_conf_cv(cf, a[2].data, a[2].len);
    return c->value != NULL ? ZG_OK : ZG_ERROR;
}

static int zg_rewrite_break(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    (void)cmd;
    return zg_rw_push(cf, conf, ZG_RW_BREAK) != NULL ? ZG_OK : ZG_ERROR;
}

/* if (condition) { ... }: the parentheses as nginx strips them */
static int zg_rewrite_if(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_rewrite_loc_conf_t *rlcf = conf;
    zg_str_t v[4], *last;
    zg_rw_list_t *saved, *body;
    zg_rw_code_t *c;
    int n = 0, rc;

    (void)cmd;
    for (int i = 1; i < cf->nargs && n < 4; i++) {
        v[n++] = cf->args[i];
    }
    if (cf->nargs - 1 > 4 || v[0].data[0] != '(') {
        return zg_conf_error(cf, "invalid condition \"%s\"", cf->args[1].data);
    }
    v[0].data++;
    v[0].len--;
    if (v[0].len == 0) {
        memmove(v, v + 1, (size_t)(n - 1) * sizeof(v[0]));
        n--;
    }
    last = &v[n - 1];
    if (n < 1 || last->len == 0 || last->data[last->len - 1] != ')') {
        return zg_conf_error(cf, "invalid condition \"%s\"", cf->args[cf->nargs - 1].data);
    }
    last->len--;
    if (last->len == 0) {
        n--;
    }
    if (n < 1 || n > 3) {
        return zg_conf_error(cf, "invalid condition \"%s\"", cf->args[1].data);
    }
    if (v[0].data[0] == '-' || (v[0].len > 1 && v[0].data[0] == '!' && v[0].data[1] == '-')) {
        return zg_conf_error(cf, "file tests (\"%.*s\") in \"if\" are not supported by "
                                 "zonegate", (int)v[0].len, v[0].data);
    }
    if (v[0].len < 2 || v[0].data[0] != '$') {
        return zg_conf_error(cf, "invalid condition \"%.*s\"", (int)v[0].len, v[0].data);
    }
    if ((c = zg_rw_push(cf, conf, ZG_RW_IF)) == NULL) {
        return ZG_ERROR;
    }
    if ((c->left = zg_conf_cv(cf, v[0].data, v[0].len)) == NULL) {
        return ZG_ERROR;
    }
    if (n == 1) {
        c->cond = ZG_RW_IF_TRUE;
    } else if (n == 2) {
        return zg_conf_error(cf, "invalid condition \"%.*s\"", (int)v[1].len, v[1].data);
    } else if (zg_conf_eq(&v[1], "=") || zg_conf_eq(&v[1], "!=")) {
        c->cond = v[1].data[0] == '=' ? ZG_RW_IF_EQ : ZG_RW_IF_NE;
        if ((c->value = zg_conf_cv(cf, v[2].data, v[2].len)) == NULL) {
            return ZG_ERROR;
        }
    } else if (zg_conf_eq(&v[1], "~") || zg_conf_eq(&v[1], "~*") || zg_conf_eq(&v[1], "!~")
               || zg_conf_eq(&v[1], "!~*")) {
        c->cond = v[1].data[0] == '!' ? ZG_RW_IF_NRE : ZG_RW_IF_RE;
        c->re = zg_rw_regex(cf, &v[2],
                            v[1].data[v[1].len - 1] == '*' ? ZG_REGEX_CASELESS : 0);
        if (c->re == NULL) {
            return ZG_ERROR;
        }
    } else {
        return zg_conf_error(cf, "unexpected \"%.*s\" in condition", (int)v[1].len, v[1].data);
    }

    if (cf->ctx & ZG_CTX_LOC) {
        /* as nginx: an `if` in a location is a location of its own, whose settings
         * (merged with the location's) apply once it matched */
        zg_rewrite_main_conf_t *rmcf = zg_main_conf_of(cf->conf, zg_rewrite_module);
        zg_rw_if_conf_t *ic = zg_conf_push(cf->conf, rmcf->ifs, rmcf->nifs);
        void **confs = zg_conf_create_loc_confs(cf);
        if (ic == NULL || confs == NULL) {
            return zg_conf_nomem(cf);
        }
        ic->confs = confs;
        ic->parent = cf->loc_conf;
        c->confs = confs;
        c->body = &zg_rewrite_loc_conf(confs)->list;
        return zg_conf_block(cf, ZG_CTX_IF | ZG_CTX_LIF, confs, cf->block);
    }
    body = zg_conf_alloc(cf->conf, sizeof(*body));
    if (body == NULL) {
        return zg_conf_nomem(cf);
    }
    c->body = body;
    saved = rlcf->cur;
    rlcf->cur = body;
    rc = zg_conf_block(cf, ZG_CTX_IF, cf->loc_conf, cf->block);
    rlcf->cur = saved;
    return rc;
}

static void *zg_rewrite_create_main_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_rewrite_main_conf_t));
}

/* the `if` blocks of locations take what they do not set from their location; one
 * that sets no content handler answers as its location does */
static int zg_rewrite_init_main_conf(zg_cf_t *cf, void *conf)
{
    zg_rewrite_main_conf_t *rmcf = conf;

    for (int i = 0; i < rmcf->nifs; i++) {
        zg_rw_if_conf_t *ic = &rmcf->ifs[i];
        zg_http_core_loc_conf_t *c = zg_http_core_loc_conf(ic->confs);
        zg_http_core_loc_conf_t *p = zg_http_core_loc_conf(ic->parent);
        if (zg_conf_merge_loc_confs(cf, ic->parent, ic->confs) != ZG_OK) {
            return ZG_ERROR;
        }
        if (!c->has_handler) {
            c->handler = p->handler;
        }
    }
    return ZG_OK;
}

static void *zg_rewrite_create_conf(zg_conf_t *conf)
{
    zg_rewrite_loc_conf_t *rlcf = zg_conf_alloc(conf, sizeof(zg_rewrite_loc_conf_t));

    if (rlcf != NULL) {
        rlcf->log = ZG_UNSET;
    }
    return rlcf;
}

static int zg_rewrite_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_rewrite_loc_conf_t *prev = parent, *conf = child;

    (void)cf;
    if (conf->default_type.data == NULL) {
        conf->default_type = prev->default_type;
    }
    if (conf->default_type.data == NULL) {
        conf->default_type.data = "text/plain";
        conf->default_type.len = 10;
    }
    ZG_CONF_MERGE(conf, prev, log, ZG_UNSET);
    if (conf->log == ZG_UNSET) {
        conf->log = 0;
    }
    return ZG_OK;
}

/* default_type MIME: the Content-Type of `return CODE TEXT` (zonegate serves no
 * files, so this is all it types) */
static int zg_rewrite_default_type(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_rewrite_loc_conf_t *rlcf = conf;
    zg_str_t *v = &cf->args[1];

    (void)cmd;
    if (rlcf->default_type.data != NULL) {
        return zg_conf_duplicate(cf);
    }
    for (size_t i = 0; i < v->len; i++) {
        if ((unsigned char)v->data[i] < 0x20 || v->data[i] == 0x7f) {
            return zg_conf_invalid(cf, v);
        }
    }
    rlcf->default_type = *v;
    return ZG_OK;
}

/* ---- running ---- */

void zg_rewrite_split(const zg_str_t *result, const zg_str_t *old_args, zg_str_t *uri,
                      zg_str_t *args, int *join)
{
    const char *q = memchr(result->data, '?', result->len);

    *join = 0;
    if (q == NULL) {
        *uri = *result;
        *args = *old_args;
        return;
    }
    uri->data = result->data;
    uri->len = (size_t)(q - result->data);
    args->data = q + 1;
    args->len = result->len - uri->len - 1;
    if (args->len > 0 && args->data[args->len - 1] == '?') {
        args->len--; /* "...?" drops the request's args */
    } else if (args->len > 0 && old_args->len > 0) {
        *join = 1;   /* "new&old" */
    } else if (args->len == 0) {
        /* "/x?" : no args at all */
    }
}

/* Location for a redirect: a relative one is made absolute as nginx's
 * absolute_redirect does it, from the Host (or the server's name) and port */
static size_t zg_rw_location(zg_request_t *r, const char *v, size_t n, char *out, size_t cap)
{
    zg_var_ctx_t *x = &r->ctx;
    const zg_str_t *host = x->host.len ? &x->host : &x->server_name;
    int port = 0;
    size_t k;

    if (n == 0 || v[0] != '/') {
        k = zg_min(n, cap);
        memcpy(out, v, k);
        return k;
    }
    if (x->local != NULL && x->local->sa_family == AF_INET) {
        port = ntohs(((const struct sockaddr_in *)x->local)->sin_port);
    } else if (x->local != NULL && x->local->sa_family == AF_INET6) {
        port = ntohs(((const struct sockaddr_in6 *)x->local)->sin6_port);
    }
    if (port == 80 || port == 0) {
        k = (size_t)snprintf(out, cap, "http://%.*s%.*s", (int)host->len, host->data, (int)n, v);
    } else {
        k = (size_t)snprintf(out, cap, "http://%.*s:%d%.*s", (int)host->len, host->data, port,
                             (int)n, v);
    }
    return zg_min(k, cap - 1);
}

static void zg_rw_redirect(zg_request_t *r, int code, const char *v, size_t n)
{
    char loc[2200], extra[2300];
    size_t k = zg_rw_location(r, v, n, loc, sizeof(loc));

    k = zg_http_header_safe(loc, k, sizeof(loc));
    snprintf(extra, sizeof(extra), "Location: %.*s\r\n", (int)k, loc);
    zg_request_respond(r, code, extra, NULL, NULL, 0);
}

static int zg_rw_return(zg_request_t *r, const zg_rw_code_t *c)
{
    zg_str_t v = { 0, "" };
    int code = c->code;

    if (code == 444) {
        /* as nginx: close the connection without an answer */
        r->ctx.status = 444;
        zg_request_response_abort(r);
        return ZG_RW_ANSWERED;
    }
    if (c->value != NULL && zg_cv_eval_str(c->value, &r->ctx, &v) != ZG_OK) {
        return ZG_ERROR;
    }
    if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
        if (c->value != NULL) {
            zg_rw_redirect(r, code, v.data, v.len);
        } else {
            zg_request_respond(r, code, NULL, NULL, NULL, 0);
        }
    } else if (c->value != NULL) {
        const zg_rewrite_loc_conf_t *rlcf = zg_request_conf(r, zg_rewrite_module);
        zg_request_respond(r, code, NULL, rlcf->default_type.data, v.data, v.len);
    } else if (code == 204) {
        zg_request_respond(r, code, NULL, NULL, NULL, 0); /* as nginx: no Content-Type */
    } else if (code < 300) {
        const zg_rewrite_loc_conf_t *rlcf = zg_request_conf(r, zg_rewrite_module);
        zg_request_respond(r, code, NULL, rlcf->default_type.data, "", 0);
    } else {
        zg_request_respond(r, code, NULL, NULL, NULL, 0);
    }
    return ZG_RW_ANSWERED;
}

/* rewrite_log on: as nginx, at notice */
static void zg_rw_log_match(zg_request_t *r, const zg_regex_t *re, const zg_str_t *s, int rc)
{
    const zg_rewrite_loc_conf_t *rlcf = zg_request_conf(r, zg_rewrite_module);

    if (rlcf->log) {
        zg_log(ZG_LOG_NOTICE, "\"%s\" %s \"%.*s\", client: %s", zg_regex_pattern(re),
               rc == ZG_OK ? "matches" : "does not match", (int)zg_min(s->len, 1024),
               s->data, zg_conn_addr_text(r->c));
    }
}

/* truth of an if condition */
static int zg_rw_cond(zg_request_t *r, const zg_rw_code_t *c)
{
    zg_var_ctx_t *x = &r->ctx;
    zg_str_t left, right;
    int rc;

    if (zg_cv_eval_str(c->left, x, &left) != ZG_OK) {
        return -1;
    }
    switch (c->cond) {
    case ZG_RW_IF_TRUE:
        return !(left.len == 0 || (left.len == 1 && left.data[0] == '0'));
    case ZG_RW_IF_EQ:
    case ZG_RW_IF_NE:
        if (zg_cv_eval_str(c->value, x, &right) != ZG_OK) {
            return -1;
        }
        rc = left.len == right.len && memcmp(left.data, right.data, left.len) == 0;
        return c->cond == ZG_RW_IF_EQ ? rc : !rc;
    default:
        rc = zg_regex_exec(c->re, left.data, left.len, &r->caps);
        zg_rw_log_match(r, c->re, &left, rc);
        if (rc == ZG_ERROR) {
            zg_log(ZG_LOG_ERR, "regex \"%s\" failed on \"%.*s\"", zg_regex_pattern(c->re),
                   (int)zg_min(left.len, 256), left.data);
            return -1;
        }
        return c->cond == ZG_RW_IF_RE ? rc == ZG_OK : rc != ZG_OK;
    }
}

static int zg_rw_rewrite(zg_request_t *r, const zg_rw_code_t *c)
{
    zg_var_ctx_t *x = &r->ctx;
    zg_str_t result, uri, args;
    int rc, join;
    char *p;

    rc = zg_regex_exec(c->re, x->uri.data, x->uri.len, &r->caps);
    zg_rw_log_match(r, c->re, &x->uri, rc);
    if (rc == ZG_ERROR) {
        zg_log(ZG_LOG_ERR, "regex \"%s\" failed on \"%.*s\"", zg_regex_pattern(c->re),
               (int)zg_min(x->uri.len, 256), x->uri.data);
        return ZG_ERROR;
    }
    if (rc != ZG_OK) {
        return ZG_RW_GO_ON;
    }
    if (zg_cv_eval_str(c->value, x, &result) != ZG_OK) {
        return ZG_ERROR;
    }
    zg_rewrite_split(&result, &x->args, &uri, &args, &join);
    if (c->redirect || c->code == ZG_RW_FLAG_REDIRECT || c->code == ZG_RW_FLAG_PERMANENT) {
        /* the Location: the result, with the request's args unless it has its own */
        size_t n = result.len;
        p = zg_var_alloc(x, n + 1 + x->args.len);
        if (p == NULL) {
            return ZG_ERROR;
        }
        memcpy(p, result.data, n);
        if (n && p[n - 1] == '?') {
            n--;
        } else if (memchr(result.data, '?', result.len) == NULL && x->args.len) {
            p[n++] = '?';
            memcpy(p + n, x->args.data, x->args.len);
            n += x->args.len;
        }
        zg_rw_redirect(r, c->code == ZG_RW_FLAG_PERMANENT ? 301 : 302, p, n);
        return ZG_RW_ANSWERED;
    }
    if (join) {
        p = zg_var_alloc(x, args.len + 1 + x->args.len);
        if (p == NULL) {
            return ZG_ERROR;
        }
        memcpy(p, args.data, args.len);
        p[args.len] = '&';
        memcpy(p + args.len + 1, x->args.data, x->args.len);
        args.data = p;
        args.len += 1 + x->args.len;
    }
    x->uri = uri;
    x->args = args;
    r->uri_rewritten = 1;
    if (((const zg_rewrite_loc_conf_t *)zg_request_conf(r, zg_rewrite_module))->log) {
        zg_log(ZG_LOG_NOTICE, "rewritten data: \"%.*s\", args: \"%.*s\", client: %s",
               (int)zg_min(uri.len, 1024), uri.data, (int)zg_min(args.len, 1024),
               args.data ? args.data : "", zg_conn_addr_text(r->c));
    }
    if (c->code == ZG_RW_FLAG_BREAK) {
        r->uri_changed = 0;
        r->invalid_location = 1;
        return ZG_RW_STOP;
    }
    r->uri_changed = 1;
    return c->code == ZG_RW_FLAG_LAST ? ZG_RW_STOP : ZG_RW_GO_ON;
}

/* ZG_RW_GO_ON, ZG_RW_STOP (break, last), ZG_RW_ANSWERED or ZG_ERROR */
static int zg_rw_run(zg_request_t *r, const zg_rw_list_t *l)
{
    const zg_rw_code_t *c;
    zg_str_t v;
    int rc;

    for (int i = 0; i < l->n; i++) {
        c = &l->codes[i];
        switch (c->op) {
        case ZG_RW_RETURN:
            return zg_rw_return(r, c);
        case ZG_RW_SET:
            if (zg_cv_eval_str(c->value, &r->ctx, &v) != ZG_OK
                || zg_var_set(&r->ctx, c->var, v.data, v.len) != ZG_OK) {
                return ZG_ERROR;
            }
            break;
        case ZG_RW_BREAK:
            return ZG_RW_STOP;
        case ZG_RW_IF:
            rc = zg_rw_cond(r, c);
            if (rc < 0) {
                return ZG_ERROR;
            }
            if (rc && c->confs != NULL) {
                r->loc_conf = c->confs;
                r->want_headers = 1; /* the block may add headers */
            }
            if (rc && (rc = zg_rw_run(r, c->body)) != ZG_RW_GO_ON) {
                return rc;
            }
            break;
        case ZG_RW_REWRITE:
            rc = zg_rw_rewrite(r, c);
            if (rc != ZG_RW_GO_ON) {
                return rc;
            }
            break;
        }
    }
    return ZG_RW_GO_ON;
}

static int zg_rewrite_handler(zg_request_t *r)
{
    const zg_rewrite_loc_conf_t *rlcf;
    int rc;

    if (r->located && r->loc == NULL) {
        return ZG_DECLINED; /* no location: the server's list ran already */
    }
    rlcf = zg_request_conf(r, zg_rewrite_module);
    if (rlcf->list.n == 0) {
        return ZG_DECLINED;
    }
    rc = zg_rw_run(r, &rlcf->list);
    if (rc == ZG_RW_ANSWERED) {
        return ZG_DONE;
    }
    return rc == ZG_ERROR ? ZG_ERROR : ZG_DECLINED;
}

static const zg_command_t zg_rewrite_commands[] = {
    { "return", ZG_CTX_SRV | ZG_CTX_LOC | ZG_CTX_IF, 0, 1, 2, zg_rewrite_return, ZG_LOC_CONF,
      0, NULL },
    { "rewrite", ZG_CTX_SRV | ZG_CTX_LOC | ZG_CTX_IF, 0, 2, 3, zg_rewrite_rewrite,
      ZG_LOC_CONF, 0, NULL },
    { "set", ZG_CTX_SRV | ZG_CTX_LOC | ZG_CTX_IF, 0, 2, 2, zg_rewrite_set, ZG_LOC_CONF, 0,
      NULL },
    { "break", ZG_CTX_SRV | ZG_CTX_LOC | ZG_CTX_IF, 0, 0, 0, zg_rewrite_break, ZG_LOC_CONF, 0,
      NULL },
    { "if", ZG_CTX_SRV | ZG_CTX_LOC, 1, 1, -1, zg_rewrite_if, ZG_LOC_CONF, 0, NULL },
    { "default_type", ZG_CTX_SETTINGS | ZG_CTX_LIF, 0, 1, 1, zg_rewrite_default_type,
      ZG_LOC_CONF, 0, NULL },
    { "rewrite_log", ZG_CTX_SETTINGS | ZG_CTX_LIF, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      offsetof(zg_rewrite_loc_conf_t, log), NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_rewrite_module = {
    .name = "rewrite",
    .commands = zg_rewrite_commands,
    .create_main_conf = zg_rewrite_create_main_conf,
    .init_main_conf = zg_rewrite_init_main_conf,
    .create_loc_conf = zg_rewrite_create_conf,
    .merge_loc_conf = zg_rewrite_merge_conf,
    .phase = ZG_PHASE_REWRITE,
    .handler = zg_rewrite_handler,
};
