/* zg_headers.c — add_header NAME VALUE [always], as nginx's headers module: the
 * lines go on proxied and local answers; without `always` only on 200 201 204 206
 * 301 302 303 304 307 308; a level with any add_header replaces the whole list of
 * the level around it. */
#include "zg_headers.h"

#include <stdio.h>
#include <string.h>

#include "zg_http.h"
#include "zg_request.h"
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

static const zg_command_t zg_headers_commands[] = {
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
};
