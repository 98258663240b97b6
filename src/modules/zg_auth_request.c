/* zg_auth_request.c — auth_request and auth_request_set (see zg_auth_request.h). */
#include "zg_auth_request.h"

#include <string.h>

#include "zg_http.h"
#include "zg_log.h"
#include "zg_proxy_sub.h"
#include "zg_request.h"
#include "zg_vars.h"

/* auth_request_set $var VALUE */
typedef struct {
    int index;
    zg_cv_t *value;
} zg_auth_request_var_t;

typedef struct {
    zg_str_t uri;                /* data NULL: unset; len 0: off */
    zg_auth_request_var_t *vars;
    int nvars;                   /* -1 = unset (inherits) */
} zg_auth_request_conf_t;

typedef struct {
    zg_proxy_sub_t *sub;         /* the subrequest in flight */
    zg_str_t www;                /* WWW-Authenticate of a 401; data NULL = none */
} zg_auth_request_ctx_t;

#define zg_auth_request_conf(confs)                                                    \
    ((zg_auth_request_conf_t *)zg_conf_module(confs, zg_auth_request_module))

static int zg_auth_request_set_var(zg_var_ctx_t *ctx, const void *data, zg_str_t *out)
{
    (void)ctx;
    (void)data;
    out->data = "";
    out->len = 0;
    return ZG_OK; /* not set (no subrequest ran): empty */
}

/* the auth_request_set values, with the subrequest's $upstream_* in view */
static int zg_auth_request_vars(zg_request_t *r, const zg_auth_request_conf_t *arcf,
                                const zg_proxy_sub_result_t *res)
{
    zg_var_ctx_t *x = &r->ctx;
    zg_var_ctx_t saved = *x;
    zg_str_t v;
    int rc = ZG_OK;

    x->up_names = res->names;
    x->up_values = res->values;
    x->nup = res->nhdrs;
    x->upstream_addr = res->upstream_addr;
    x->upstream_status = res->upstream_status;
    x->upstream_response_time = res->upstream_response_time;
    for (int i = 0; i < arcf->nvars && rc == ZG_OK; i++) {
        if (zg_cv_eval_str(arcf->vars[i].value, x, &v) != ZG_OK
            || zg_var_set(x, arcf->vars[i].index, v.data, v.len) != ZG_OK) {
            rc = ZG_ERROR;
        }
    }
    /* the request's own upstream variables are the proxy's, later */
    x->up_names = saved.up_names;
    x->up_values = saved.up_values;
    x->nup = saved.nup;
    x->upstream_addr = saved.upstream_addr;
    x->upstream_status = saved.upstream_status;
    x->upstream_response_time = saved.upstream_response_time;
    return rc;
}

static void zg_auth_request_done(zg_request_t *r, void *data, const zg_proxy_sub_result_t *res)
{
    zg_auth_request_ctx_t *ctx = data;
    const zg_auth_request_conf_t *arcf = zg_auth_request_conf(r->loc_conf);
    int rc, st = res->status;

    ctx->sub = NULL;
    zg_conn_read(r->c, 1);
    if (arcf->nvars > 0 && zg_auth_request_vars(r, arcf, res) != ZG_OK) {
        zg_request_access_done(r, ZG_ERROR);
        return;
    }
    if (st >= 200 && st < 300) {
        rc = ZG_OK;
    } else if (st == 401 || st == 403) {
        rc = st;
        for (size_t i = 0; st == 401 && i < res->nhdrs; i++) {
            if (zg_http_name_eq(&res->names[i], "www-authenticate", 16)) {
                ctx->www = res->values[i];
                r->want_headers = 1;
                break;
            }
        }
    } else {
        const zg_log_target_t *log = zg_request_log_scope(r);
        zg_log_error(ZG_LOG_ERR, 0, "auth request unexpected status: %d while sending to "
                     "client, client: %s", st, zg_conn_addr_text(r->c));
        zg_log_scope(log);
        rc = ZG_ERROR;
    }
    zg_request_access_done(r, rc);
}

/* access phase: ZG_DECLINED (no auth_request here), else the subrequest runs and the
 * request waits (ZG_AGAIN) for zg_auth_request_done */
static int zg_auth_request_handler(zg_request_t *r)
{
    const zg_auth_request_conf_t *arcf = zg_auth_request_conf(r->loc_conf);
    zg_auth_request_ctx_t *ctx;

    if (arcf->uri.len == 0) {
        return ZG_DECLINED;
    }
    ctx = zg_request_ctx(r, zg_auth_request_module);
    ctx->sub = zg_proxy_sub_start(r, &arcf->uri, zg_auth_request_done, ctx);
    if (ctx->sub == NULL) {
        zg_request_access_done(r, ZG_ERROR);
        return ZG_DONE;
    }
    r->holding = 1;
    zg_conn_read(r->c, 0); /* as a delayed request: the client waits, unread */
    return ZG_AGAIN;
}

/* the request ends while the subrequest runs (the client went away) */
static void zg_auth_request_release(zg_request_t *r)
{
    zg_auth_request_ctx_t *ctx = zg_request_ctx(r, zg_auth_request_module);

    if (ctx->sub != NULL) {
        zg_proxy_sub_cancel(ctx->sub);
        ctx->sub = NULL;
    }
}

static size_t zg_auth_request_headers(zg_request_t *r, char *buf, size_t len, int rejected)
{
    zg_auth_request_ctx_t *ctx = zg_request_ctx(r, zg_auth_request_module);
    size_t n;

    (void)rejected;
    if (ctx->www.data == NULL) {
        return 0;
    }
    n = 18 + ctx->www.len + 2;
    if (n >= len) {
        return 0;
    }
    memcpy(buf, "WWW-Authenticate: ", 18);
    memcpy(buf + 18, ctx->www.data, ctx->www.len);
    memcpy(buf + 18 + ctx->www.len, "\r\n", 2);
    return n;
}

/* the subrequests' idle upstream connections must not hold a stopping worker */
static void zg_auth_request_quit(zg_worker_t *w)
{
    (void)w;
    zg_proxy_sub_pool_close();
}

/* ---------------------------------------------------------------- config */

static int zg_auth_request_uri(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_auth_request_conf_t *arcf = conf;
    zg_str_t *a = cf->args;

    (void)cmd;
    if (arcf->uri.data != NULL) {
        return zg_conf_duplicate(cf);
    }
    if (zg_conf_eq(&a[1], "off")) {
        arcf->uri.data = "";
        arcf->uri.len = 0;
        return ZG_OK;
    }
    if (a[1].len == 0 || a[1].data[0] != '/') {
        return zg_conf_invalid(cf, &a[1]);
    }
    arcf->uri.data = a[1].data;
    arcf->uri.len = a[1].len;
    return ZG_OK;
}

static int zg_auth_request_set(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_auth_request_conf_t *arcf = conf;
    zg_str_t *a = cf->args;
    zg_auth_request_var_t *v;
    int index;

    (void)cmd;
    if (zg_conf_settable_var(cf, &a[1], zg_auth_request_set_var, &index) != ZG_OK) {
        return ZG_ERROR;
    }
    if (arcf->nvars < 0) {
        arcf->nvars = 0;
    }
    v = zg_conf_push(cf->conf, arcf->vars, arcf->nvars);
    if (v == NULL) {
        return zg_conf_nomem(cf);
    }
    v->index = index;
    v->value = zg_conf_cv(cf, a[2].data, a[2].len);
    return v->value != NULL ? ZG_OK : ZG_ERROR;
}

static void *zg_auth_request_create_conf(zg_conf_t *conf)
{
    zg_auth_request_conf_t *c = zg_conf_alloc(conf, sizeof(*c));

    if (c != NULL) {
        c->nvars = -1;
    }
    return c;
}

static int zg_auth_request_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_auth_request_conf_t *p = parent, *c = child;

    (void)cf;
    if (c->uri.data == NULL) {
        c->uri = p->uri;
    }
    if (c->nvars < 0) {
        c->vars = p->vars;
        c->nvars = p->nvars;
    }
    return ZG_OK;
}

static const zg_command_t zg_auth_request_commands[] = {
    { "auth_request", ZG_CTX_SETTINGS, 0, 1, 1, zg_auth_request_uri, ZG_LOC_CONF, 0, NULL },
    { "auth_request_set", ZG_CTX_SETTINGS, 0, 2, 2, zg_auth_request_set, ZG_LOC_CONF, 0,
      NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_auth_request_module = {
    .name = "auth_request",
    .commands = zg_auth_request_commands,
    .create_loc_conf = zg_auth_request_create_conf,
    .merge_loc_conf = zg_auth_request_merge_conf,
    .phase = ZG_PHASE_ACCESS,
    .handler = zg_auth_request_handler,
    .release = zg_auth_request_release,
    .headers = zg_auth_request_headers,
    .quit_worker = zg_auth_request_quit,
    .exit_worker = zg_auth_request_quit,
    .ctx_size = sizeof(zg_auth_request_ctx_t),
};
