/* zg_rewrite.c — `return`, as nginx's rewrite phase: it answers before any limit
 * or access rule runs. */
#include "zg_rewrite.h"

#include <stdio.h>

#include "zg_request.h"
#include "zg_vars.h"

static int zg_rewrite_return(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_rewrite_loc_conf_t *rlcf = conf;
    zg_str_t *a = cf->args, *text = NULL;
    int code;

    (void)cmd;
    code = zg_conf_atoi(a[1].data, a[1].len);
    if (code < 0) {
        if (cf->nargs == 2
            && (zg_conf_prefix(&a[1], "http://") || zg_conf_prefix(&a[1], "https://")
                || zg_conf_prefix(&a[1], "$scheme"))) {
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
    /* a location has one way to answer: `return` or a content handler */
    if (zg_http_core_set_handler(cf, NULL) != ZG_OK) {
        return ZG_ERROR;
    }
    rlcf->code = code;
    if (text != NULL) {
        rlcf->text = zg_conf_cv(cf, text->data, text->len);
        if (rlcf->text == NULL) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

static void *zg_rewrite_create_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_rewrite_loc_conf_t));
}

static __attribute__((noinline)) int zg_rewrite_answer(zg_request_t *r,
                                                        const zg_rewrite_loc_conf_t *rlcf)
{
    char tmp[2048];
    size_t n = 0;
    int code = rlcf->code;

    if (rlcf->text) {
        n = zg_cv_eval(rlcf->text, &r->ctx, 0, tmp, sizeof(tmp));
        n = zg_min(n, sizeof(tmp) - 1);
    }
    if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
        char extra[2200];
        n = zg_http_header_safe(tmp, n, sizeof(tmp) - 1);
        snprintf(extra, sizeof(extra), "Location: %.*s\r\n", (int)n, tmp);
        zg_request_respond(r, code, rlcf->text ? extra : NULL, NULL, NULL, 0);
    } else if (rlcf->text) {
        zg_request_respond(r, code, NULL, "text/plain", tmp, n);
    } else if (code < 300) {
        zg_request_respond(r, code, NULL, "text/plain", "", 0);
    } else {
        zg_request_respond(r, code, NULL, NULL, NULL, 0);
    }
    return ZG_DONE;
}

static int zg_rewrite_handler(zg_request_t *r)
{
    const zg_rewrite_loc_conf_t *rlcf;

    if (r->loc == NULL) {
        return ZG_DECLINED;
    }
    rlcf = zg_request_conf(r, zg_rewrite_module);
    return rlcf->code == 0 ? ZG_DECLINED : zg_rewrite_answer(r, rlcf);
}

static const zg_command_t zg_rewrite_commands[] = {
    { "return", ZG_CTX_LOC, 0, 1, 2, zg_rewrite_return, ZG_LOC_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_rewrite_module = {
    .name = "rewrite",
    .commands = zg_rewrite_commands,
    .create_loc_conf = zg_rewrite_create_conf,
    .phase = ZG_PHASE_REWRITE,
    .handler = zg_rewrite_handler,
};
