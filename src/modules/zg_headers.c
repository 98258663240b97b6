/* zg_headers.c — add_header NAME VALUE [always] and expires, as nginx's headers
 * module: the lines go on proxied and local answers; without `always` only on 200
 * 201 204 206 301 302 303 304 307 308; a level with any add_header replaces the
 * whole list of the level around it.  expires is a response filter
 * (zg_response.h): Expires and Cache-Control on the same statuses. */
#include "zg_headers.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "zg_http.h"
#include "zg_request.h"
#include "zg_response.h"
#include "zg_vars.h"

int zg_headers_status_ok(int status)
{
    switch (status) {
    case 200: case 201: case 204: case 206:
    case 301: case 302: case 303: case 304: case 307: case 308:
        return 1;
    }
    return 0;
}

static int zg_headers_add(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_headers_loc_conf_t *hlcf = conf;
    zg_str_t *a = cf->args;
    zg_add_header_t *h;

    (void)cmd;
    if (cf->nargs == 4 && !zg_conf_eq(&a[3], "always")) {
        return zg_conf_error(cf, "invalid value \"%s\"", a[3].data);
    }
    if (a[1].len == 0) {
        return zg_conf_invalid(cf, &a[1]);
    }
    for (size_t i = 0; i < a[1].len; i++) {
        unsigned char c = (unsigned char)a[1].data[i];
        if (c <= ' ' || c == ':' || c >= 0x7f) {
            return zg_conf_error(cf, "invalid header name \"%s\"", a[1].data);
        }
    }
    if ((h = zg_conf_push(cf->conf, hlcf->headers, hlcf->nheaders)) == NULL) {
        return zg_conf_nomem(cf);
    }
    hlcf->set = 1;
    h->name = a[1];
    h->always = cf->nargs == 4;
    h->value = zg_conf_cv(cf, a[2].data, a[2].len);
    return h->value != NULL ? ZG_OK : ZG_ERROR;
}

/* expires [modified] TIME | epoch | max | off; TIME may be @HhMm (a time of day)
 * or negative */
static int zg_headers_expires(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_headers_loc_conf_t *hlcf = conf;
    zg_str_t v = cf->args[cf->nargs - 1];
    int neg = 0;

    (void)cmd;
    if (hlcf->expires != ZG_EXPIRES_UNSET) {
        return zg_conf_duplicate(cf);
    }
    if (cf->nargs == 3) {
        if (!zg_conf_eq(&cf->args[1], "modified")) {
            return zg_conf_invalid(cf, &cf->args[1]);
        }
        hlcf->expires = ZG_EXPIRES_MODIFIED;
    } else if (zg_conf_eq(&v, "off")) {
        hlcf->expires = ZG_EXPIRES_OFF;
        return ZG_OK;
    } else if (zg_conf_eq(&v, "epoch")) {
        hlcf->expires = ZG_EXPIRES_EPOCH;
        return ZG_OK;
    } else if (zg_conf_eq(&v, "max")) {
        hlcf->expires = ZG_EXPIRES_MAX;
        return ZG_OK;
    } else {
        hlcf->expires = ZG_EXPIRES_ACCESS;
    }
    if (memchr(v.data, '$', v.len) != NULL) {
        return zg_conf_error(cf, "variables in \"expires\" are not supported");
    }
    if (v.len > 1 && v.data[0] == '@') {
        if (hlcf->expires == ZG_EXPIRES_MODIFIED) {
            return zg_conf_error(cf, "daily time cannot be used with \"modified\" parameter");
        }
        hlcf->expires = ZG_EXPIRES_DAILY;
        v.data++;
        v.len--;
    } else if (v.len > 1 && v.data[0] == '-') {
        neg = 1;
        v.data++;
        v.len--;
    } else if (v.len > 1 && v.data[0] == '+') {
        v.data++;
        v.len--;
    }
    zg_msec_t ms = zg_conf_parse_time(v.data, v.len);
    if (ms == ZG_UNSET_MSEC) {
        return zg_conf_invalid(cf, &cf->args[cf->nargs - 1]);
    }
    hlcf->expires_time = (long)(ms / 1000) * (neg ? -1 : 1);
    if (hlcf->expires == ZG_EXPIRES_DAILY && hlcf->expires_time > 24 * 60 * 60) {
        return zg_conf_error(cf, "daily time value must be less than 24 hours");
    }
    return ZG_OK;
}

static void *zg_headers_create_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_headers_loc_conf_t));
}

static int zg_headers_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_headers_loc_conf_t *prev = parent, *conf = child;

    (void)cf;
    if (!conf->set) {
        conf->headers = prev->headers;
        conf->nheaders = prev->nheaders;
    }
    if (conf->expires == ZG_EXPIRES_UNSET) {
        conf->expires = prev->expires;
        conf->expires_time = prev->expires_time;
    }
    return ZG_OK;
}

/* the rewrite phase (server, then location): a request whose conf has headers
 * wants the header hook */
static int zg_headers_handler(zg_request_t *r)
{
    if (zg_headers_loc_conf(r->loc_conf)->nheaders) {
        r->want_headers = 1;
    }
    return ZG_DECLINED;
}

static size_t zg_headers_lines(zg_request_t *r, char *buf, size_t len, int rejected)
{
    const zg_headers_loc_conf_t *hlcf = zg_headers_loc_conf(r->loc_conf);
    int ok = zg_headers_status_ok(r->ctx.status);
    size_t n = 0, vlen, need;
    char tmp[4096];

    (void)rejected;
    for (int i = 0; i < hlcf->nheaders; i++) {
        const zg_add_header_t *h = &hlcf->headers[i];
        if (!ok && !h->always) {
            continue;
        }
        vlen = zg_cv_eval(h->value, &r->ctx, 0, tmp, sizeof(tmp));
        if (vlen == 0 || vlen > sizeof(tmp)) {
            continue; /* as nginx: an empty value adds nothing */
        }
        vlen = zg_http_header_safe(tmp, vlen, sizeof(tmp));
        need = h->name.len + 2 + vlen + 2;
        if (n + need >= len) {
            break;
        }
        memcpy(buf + n, h->name.data, h->name.len);
        n += h->name.len;
        memcpy(buf + n, ": ", 2);
        memcpy(buf + n + 2, tmp, vlen);
        n += 2 + vlen;
        memcpy(buf + n, "\r\n", 2);
        n += 2;
    }
    return n;
}

static int zg_headers_filter_on(void **loc_conf)
{
    int e = zg_headers_loc_conf(loc_conf)->expires;

    return e != ZG_EXPIRES_UNSET && e != ZG_EXPIRES_OFF;
}

/* Expires and Cache-Control, as ngx_http_set_expires */
static int zg_headers_filter(zg_request_t *r, zg_resp_t *h)
{
    const zg_headers_loc_conf_t *hlcf = zg_headers_loc_conf(r->loc_conf);
    const char *exp, *cc;
    char ebuf[32], cbuf[48];
    time_t now = time(NULL), t;
    long max_age;

    if (hlcf->expires == ZG_EXPIRES_UNSET || hlcf->expires == ZG_EXPIRES_OFF ||
        !zg_headers_status_ok(h->status)) {
        return ZG_OK;
    }
    switch (hlcf->expires) {
    case ZG_EXPIRES_EPOCH:
        exp = "Thu, 01 Jan 1970 00:00:01 GMT";
        cc = "no-cache";
        break;
    case ZG_EXPIRES_MAX:
        exp = "Thu, 31 Dec 2037 23:55:55 GMT";
        cc = "max-age=315360000";
        break;
    default:
        if (hlcf->expires == ZG_EXPIRES_DAILY) {
            struct tm tm;
            gmtime_r(&now, &tm);
            tm.tm_hour = (int)(hlcf->expires_time / 3600);
            tm.tm_min = (int)(hlcf->expires_time / 60 % 60);
            tm.tm_sec = (int)(hlcf->expires_time % 60);
            t = timegm(&tm);
            if (t <= now) {
                t += 24 * 60 * 60;
            }
            max_age = (long)(t - now);
        } else {
            zg_resp_header_t *lm = hlcf->expires == ZG_EXPIRES_MODIFIED
                                       ? zg_resp_get(h, "Last-Modified", 13) : NULL;
            time_t base = lm != NULL ? zg_http_parse_time(lm->value.data, lm->value.len)
                                     : (time_t)-1;
            if (base == (time_t)-1) {
                t = now + hlcf->expires_time;
                max_age = hlcf->expires_time;
            } else {
                t = base + hlcf->expires_time;
                max_age = (long)(t - now);
            }
        }
        zg_http_time(ebuf, t);
        exp = ebuf;
        if (max_age < 0) {
            cc = "no-cache";
        } else {
            snprintf(cbuf, sizeof(cbuf), "max-age=%ld", max_age);
            cc = cbuf;
        }
    }
    char *e = zg_resp_dup(r, exp, strlen(exp)), *c = zg_resp_dup(r, cc, strlen(cc));
    if (e == NULL || c == NULL ||
        zg_resp_set(r, h, "Expires", 7, e, strlen(e)) != ZG_OK ||
        zg_resp_set(r, h, "Cache-Control", 13, c, strlen(c)) != ZG_OK) {
        return ZG_ERROR;
    }
    return ZG_OK;
}

static const zg_command_t zg_headers_commands[] = {
    { "expires", ZG_CTX_SETTINGS | ZG_CTX_LIF, 0, 1, 2, zg_headers_expires, ZG_LOC_CONF, 0, NULL },
    { "add_header", ZG_CTX_SETTINGS | ZG_CTX_LIF, 0, 2, 3, zg_headers_add, ZG_LOC_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_headers_module = {
    .name = "headers",
    .commands = zg_headers_commands,
    .create_loc_conf = zg_headers_create_conf,
    .merge_loc_conf = zg_headers_merge_conf,
    .phase = ZG_PHASE_REWRITE,
    .handler = zg_headers_handler,
    .headers = zg_headers_lines,
    .filter_on = zg_headers_filter_on,
    .header_filter = zg_headers_filter,
};
