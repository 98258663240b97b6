/* zg_error_page.c — error_page, as nginx: a status page that a phase handler is
 * about to send (a limit's 429 or 503, allow/deny's 403, `return 404`, no location)
 * becomes an internal redirect to a URI or a named location, or a redirect to a URL
 * (302, or "=CODE").  Without "=" the answer keeps the original status; with "="
 * alone it is the page's own; "=CODE" forces CODE.  A request is redirected by
 * error_page once (nginx's recursive_error_pages off).  A level with error_page
 * replaces the outer level's list. */
#include "zg_error_page.h"

#include <stdio.h>
#include <string.h>

#include "zg_http.h"
#include "zg_log.h"
#include "zg_request.h"
#include "zg_vars.h"

const zg_error_page_t *zg_error_page_find(const zg_error_page_loc_conf_t *c, int status)
{
    for (int i = 0; i < c->npages; i++) {
        if (c->pages[i].status == status) {
            return &c->pages[i];
        }
    }
    return NULL;
}

static int zg_error_page_set(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_error_page_loc_conf_t *elcf = conf;
    zg_str_t *a = cf->args, *target = &a[cf->nargs - 1];
    int last = cf->nargs - 1, overwrite = -1;
    zg_error_page_t *p;
    zg_cv_t *cv;

    (void)cmd;
    if (a[last - 1].data[0] == '=') {
        const zg_str_t *o = &a[last - 1];
        if (o->len == 1) {
            overwrite = 0;
        } else {
            overwrite = zg_conf_atoi(o->data + 1, o->len - 1);
            if (overwrite < 100 || overwrite > 999) {
                return zg_conf_error(cf, "invalid value \"%s\"", o->data);
            }
        }
        last--;
    }
    if (last < 2) {
        return zg_conf_error(cf, "invalid number of arguments in \"error_page\" directive");
    }
    if ((cv = zg_conf_cv(cf, target->data, target->len)) == NULL) {
        return ZG_ERROR;
    }
    for (int i = 1; i < last; i++) {
        int code = zg_conf_atoi(a[i].data, a[i].len);
        if (code < 300 || code > 599) {
            return zg_conf_error(cf, "value \"%s\" must be between 300 and 599", a[i].data);
        }
        if ((p = zg_conf_push(cf->conf, elcf->pages, elcf->npages)) == NULL) {
            return zg_conf_nomem(cf);
        }
        p->status = code;
        p->overwrite = overwrite;
        p->target = cv;
    }
    return ZG_OK;
}

static void *zg_error_page_create_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_error_page_loc_conf_t));
}

static int zg_error_page_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_error_page_loc_conf_t *prev = parent, *conf = child;

    (void)cf;
    if (conf->pages == NULL) {
        conf->pages = prev->pages;
        conf->npages = prev->npages;
    }
    return ZG_OK;
}

static int zg_error_page_hook(zg_request_t *r, int status)
{
    const zg_error_page_loc_conf_t *elcf = zg_request_conf(r, zg_error_page_module);
    const zg_error_page_t *p;
    zg_str_t t, uri, args = { 0, "" };
    const char *q;

    if (elcf->npages == 0 || (p = zg_error_page_find(elcf, status)) == NULL) {
        return ZG_DECLINED;
    }
    if (zg_cv_eval_str(p->target, &r->ctx, &t) != ZG_OK || t.len == 0) {
        return ZG_DECLINED;
    }
    r->err_status = p->overwrite >= 0 ? p->overwrite : status;
    if (t.data[0] == '@') {
        zg_location_t *loc = zg_http_core_find_named(r->srv, t.data, t.len);
        if (loc == NULL) {
            zg_log(ZG_LOG_ERR, "could not find named location \"%.*s\"", (int)t.len, t.data);
            r->error_page = 1;
            r->err_status = 0;
            zg_request_respond(r, 500, NULL, NULL, NULL, 0);
            return ZG_DONE;
        }
        zg_request_named_location(r, loc);
        return ZG_DONE;
    }
    if (t.data[0] != '/') {
        /* a URL: a redirect, 302 unless "=301|302|303|307|308" */
        char extra[2200];
        int code = p->overwrite;
        if (code != 301 && code != 302 && code != 303 && code != 307 && code != 308) {
            code = 302;
        }
        r->error_page = 1;
        r->err_status = 0;
        size_t n = zg_min(t.len, sizeof(extra) - 16);
        char *loc = zg_var_alloc(&r->ctx, n + 1);
        if (loc == NULL) {
            return ZG_DECLINED;
        }
        memcpy(loc, t.data, n);
        n = zg_http_header_safe(loc, n, n);
        snprintf(extra, sizeof(extra), "Location: %.*s\r\n", (int)n, loc);
        zg_request_respond(r, code, extra, NULL, NULL, 0);
        return ZG_DONE;
    }
    uri = t;
    if ((q = memchr(t.data, '?', t.len)) != NULL) {
        uri.len = (size_t)(q - t.data);
        args.data = q + 1;
        args.len = t.len - uri.len - 1;
    }
    zg_request_internal_redirect(r, &uri, &args);
    return ZG_DONE;
}

static const zg_command_t zg_error_page_commands[] = {
    { "error_page", ZG_CTX_SETTINGS | ZG_CTX_LIF, 0, 2, -1, zg_error_page_set, ZG_LOC_CONF, 0,
      NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_error_page_module = {
    .name = "error_page",
    .commands = zg_error_page_commands,
    .create_loc_conf = zg_error_page_create_conf,
    .merge_loc_conf = zg_error_page_merge_conf,
    .error_page = zg_error_page_hook,
};
