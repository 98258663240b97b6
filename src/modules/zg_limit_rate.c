/* zg_limit_rate.c — nginx's limit_rate, limit_rate_after and $limit_rate (settable
 * per request with set, map, geo or a keyval zone), X-Accel-Limit-Rate from an
 * upstream, and proxy_limit_rate (read by the proxy).  The limit is a send budget
 * on the client connection's output queue (zg_outq_rate_start), set when the
 * response's head is written and ended once the response is queued whole; a
 * location without a limit pays one test in the preaccess phase. */
#include "zg_limit_rate.h"

#include <string.h>
#include <strings.h>

#include "zg_log.h"
#include "zg_request.h"

typedef struct {
    int var;                /* $limit_rate's index if another module defines it, -1 */
    unsigned checked : 1;
} zg_limit_rate_main_conf_t;

typedef struct {
    int64_t accel;          /* X-Accel-Limit-Rate, bytes a second (0 = off) */
    unsigned accel_set : 1;
    unsigned started : 1;   /* the budget of this response is set */
} zg_limit_rate_ctx_t;

static void *zg_limit_rate_create_main_conf(zg_conf_t *conf)
{
    zg_limit_rate_main_conf_t *m = zg_conf_alloc(conf, sizeof(*m));

    if (m != NULL) {
        m->var = -1;
    }
    return m;
}

static void *zg_limit_rate_create_conf(zg_conf_t *conf)
{
    zg_limit_rate_loc_conf_t *lr = zg_conf_alloc(conf, sizeof(*lr));

    if (lr != NULL) {
        lr->rate_const = -1;
        lr->after = ZG_UNSET_SIZE;
        lr->proxy_rate = ZG_UNSET_SIZE;
        lr->var = -1;
    }
    return lr;
}

static int64_t zg_limit_rate_parse(const zg_str_t *v)
{
    return v->len ? zg_conf_parse_size(v->data, v->len) : -1;
}

/* the limit of the request's response: X-Accel-Limit-Rate, else a non-empty
 * $limit_rate that another module defines, else limit_rate; -1 = none */
static int64_t zg_limit_rate_of(zg_request_t *r, int with_var)
{
    zg_limit_rate_ctx_t *ctx = zg_request_ctx(r, zg_limit_rate_module);
    zg_limit_rate_loc_conf_t *lr = zg_limit_rate_loc_conf(r->loc_conf);
    int64_t rate = -1;
    zg_str_t v;

    if (ctx->accel_set) {
        return ctx->accel;
    }
    if (with_var && lr->var >= 0 && zg_var_get(&r->ctx, lr->var, &v) == ZG_OK) {
        rate = zg_limit_rate_parse(&v);
    }
    if (rate < 0 && lr->rate != NULL) {
        rate = lr->rate_const;
        if (rate < 0 && zg_cv_eval_str(lr->rate, &r->ctx, &v) == ZG_OK) {
            rate = zg_limit_rate_parse(&v);
        }
    }
    return rate;
}

/* $limit_rate when no other module defines it: the request's limit in bytes a
 * second (0 = none), as nginx's.  Only requests have one (not stream sessions, whose
 * variables have no request line). */
static int zg_limit_rate_var_get(zg_var_ctx_t *ctx, const void *data, zg_str_t *out)
{
    zg_request_t *r;
    int64_t rate;
    char *p;

    (void)data;
    if (ctx->request_line.len == 0) {
        return ZG_DECLINED;
    }
    r = zg_data_of(ctx, zg_request_t, ctx);
    if (r->loc_conf == NULL || (p = zg_var_alloc(ctx, 24)) == NULL) {
        return ZG_DECLINED;
    }
    rate = zg_limit_rate_of(r, 0);
    out->data = p;
    out->len = zg_fmt_u64(p, rate > 0 ? (uint64_t)rate : 0);
    return ZG_OK;
}

/* $limit_rate: defined by set, map, geo or keyval somewhere (the request's value
 * wins when not empty), else by this module.  Every directive is read by now. */
static int zg_limit_rate_check_var(zg_cf_t *cf, zg_limit_rate_main_conf_t *m)
{
    zg_vars_t *vs = zg_conf_vars(cf->conf);
    int rc, index;

    m->checked = 1;
    if (vs == NULL) {
        return zg_conf_nomem(cf);
    }
    rc = zg_vars_define(vs, "limit_rate", 10, zg_limit_rate_var_get, NULL, 0, &index);
    if (rc == ZG_ERROR) {
        return zg_conf_nomem(cf);
    }
    m->var = rc == ZG_DECLINED ? index : -1;
    return ZG_OK;
}

static int zg_limit_rate_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_limit_rate_loc_conf_t *p = parent, *c = child;
    zg_limit_rate_main_conf_t *m = cf->conf->main_conf[zg_limit_rate_module.index];

    if (c->rate == NULL) {
        c->rate = p->rate;
        c->rate_const = p->rate_const;
    }
    ZG_CONF_MERGE(c, p, after, ZG_UNSET_SIZE);
    ZG_CONF_MERGE(c, p, proxy_rate, ZG_UNSET_SIZE);
    if (m != NULL && !m->checked && zg_limit_rate_check_var(cf, m) != ZG_OK) {
        return ZG_ERROR;
    }
    c->var = m != NULL ? m->var : -1;
    c->on = c->var >= 0 || c->rate_const > 0 || (c->rate != NULL && c->rate_const < 0);
    return ZG_OK;
}

static int zg_limit_rate_init_main_conf(zg_cf_t *cf, void *conf)
{
    zg_limit_rate_main_conf_t *m = conf;

    /* no http block merged anything: $limit_rate may still be used */
    if (m != NULL && !m->checked) {
        return zg_limit_rate_check_var(cf, m);
    }
    return ZG_OK;
}

/* limit_rate RATE: bytes a second, with variables */
static int zg_limit_rate_set(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_limit_rate_loc_conf_t *lr = conf;
    zg_str_t *v = &cf->args[1];

    (void)cmd;
    if (lr->rate != NULL) {
        return zg_conf_duplicate(cf);
    }
    if ((lr->rate = zg_conf_cv(cf, v->data, v->len)) == NULL) {
        return ZG_ERROR;
    }
    if (zg_cv_is_const(lr->rate)) {
        if ((lr->rate_const = zg_conf_parse_size(v->data, v->len)) < 0) {
            return zg_conf_invalid(cf, v);
        }
    }
    return ZG_OK;
}

/* preaccess: a response here may be limited; its head asks for the budget */
static int zg_limit_rate_handler(zg_request_t *r)
{
    if (!zg_limit_rate_loc_conf(r->loc_conf)->on) {
        return ZG_DECLINED;
    }
    r->want_headers = 1;
    r->holding = 1;
    return ZG_DECLINED;
}

void zg_limit_rate_accel(zg_request_t *r, const char *v, size_t len)
{
    zg_limit_rate_ctx_t *ctx = zg_request_ctx(r, zg_limit_rate_module);
    int64_t n;

    if (len == 3 && strncasecmp(v, "off", 3) == 0) {
        n = 0;
    } else if ((n = zg_conf_atoi(v, len)) < 0) {
        return; /* nginx ignores what is not a number */
    }
    ctx->accel = n;
    ctx->accel_set = 1;
    r->want_headers = 1;
    r->holding = 1;
}

/* the head is being written: the budget of this response */
static size_t zg_limit_rate_headers(zg_request_t *r, char *buf, size_t len, int rejected)
{
    zg_limit_rate_ctx_t *ctx = zg_request_ctx(r, zg_limit_rate_module);
    zg_limit_rate_loc_conf_t *lr = zg_limit_rate_loc_conf(r->loc_conf);
    int64_t rate, after = lr->after > 0 ? lr->after : 0;

    (void)buf;
    (void)len;
    (void)rejected;
    if (ctx->started) {
        return 0;
    }
    ctx->started = 1;
    rate = zg_limit_rate_of(r, 1);
    if (rate > 0 && zg_outq_rate_start(&r->c->out, (uint64_t)rate, (uint64_t)after) != ZG_OK) {
        zg_log_error(ZG_LOG_ERR, 0, "limit_rate: no memory, the response is not limited");
    }
    return 0;
}

/* the response is queued whole (or the request ends): its budget ends with it */
static void zg_limit_rate_release(zg_request_t *r)
{
    if (r->c->out.rate != NULL) {
        zg_outq_rate_end(&r->c->out);
    }
}

static const zg_command_t zg_limit_rate_commands[] = {
    { "limit_rate", ZG_CTX_SETTINGS | ZG_CTX_LIF, 0, 1, 1, zg_limit_rate_set, ZG_LOC_CONF, 0,
      NULL },
    { "limit_rate_after", ZG_CTX_SETTINGS | ZG_CTX_LIF, 0, 1, 1, zg_conf_set_size,
      ZG_LOC_CONF, offsetof(zg_limit_rate_loc_conf_t, after), NULL },
    { "proxy_limit_rate", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_size, ZG_LOC_CONF,
      offsetof(zg_limit_rate_loc_conf_t, proxy_rate), NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_limit_rate_module = {
    .name = "limit_rate",
    .commands = zg_limit_rate_commands,
    .create_main_conf = zg_limit_rate_create_main_conf,
    .init_main_conf = zg_limit_rate_init_main_conf,
    .create_loc_conf = zg_limit_rate_create_conf,
    .merge_loc_conf = zg_limit_rate_merge_conf,
    .phase = ZG_PHASE_PREACCESS,
    .handler = zg_limit_rate_handler,
    .release = zg_limit_rate_release,
    .headers = zg_limit_rate_headers,
    .ctx_size = sizeof(zg_limit_rate_ctx_t),
};
