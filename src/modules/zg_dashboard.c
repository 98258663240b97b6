/* zg_dashboard.c — the dashboard module: `dashboard [api=PATH];` serves one
 * self-contained HTML page (inline CSS and script, no external assets) that polls the
 * JSON API (zg_api.c) every second and shows zone memory, limit_req counters as rates
 * over the last minute, the top throttled keys (with a "forgive" button when the API
 * is writable), limit_conn zones and upstream peers.  The page's source is
 * zg_dashboard.html beside this file, made into a C string at build time. */
#include "zg_dashboard.h"

#include <stdio.h>
#include <string.h>

#include "zg_http_core.h"
#include "zg_request.h"

static const char zg_dashboard_html[] =
#include "zg_dashboard.inc"
    ;

#define ZG_DASHBOARD_MARK "<html lang=\"en\">"

static int zg_dashboard_handler(zg_request_t *r)
{
    zg_dashboard_loc_conf_t *dlcf = zg_request_conf(r, zg_dashboard_module);

    zg_request_respond(r, 200, "Cache-Control: no-store\r\n", "text/html; charset=utf-8",
                       dlcf->page, dlcf->len);
    return ZG_DONE;
}

static int zg_dashboard_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_dashboard_loc_conf_t *dlcf = conf;
    const char *api = "/api/", *mark;
    size_t alen = 5, head, len;
    char *page;

    (void)cmd;
    if (cf->nargs == 2) {
        if (!zg_conf_prefix(&cf->args[1], "api=") || cf->args[1].len == 4
            || cf->args[1].data[4] != '/' || cf->args[1].data[cf->args[1].len - 1] != '/'
            || strpbrk(cf->args[1].data, "\"<>&'") != NULL) {
            return zg_conf_error(cf, "invalid parameter \"%s\" in \"%s\" directive (api=/PATH/)",
                                 cf->args[1].data, cf->name);
        }
        api = cf->args[1].data + 4;
        alen = cf->args[1].len - 4;
    }
    /* the API's versioned root goes into the page: <html lang="en" data-api="/api/1/"> */
    mark = strstr(zg_dashboard_html, ZG_DASHBOARD_MARK);
    if (mark == NULL) {
        return zg_conf_error(cf, "the dashboard page has no <html> element");
    }
    head = (size_t)(mark - zg_dashboard_html) + sizeof(ZG_DASHBOARD_MARK) - 2;
    len = sizeof(zg_dashboard_html) - 1 + alen + 20;
    page = zg_conf_alloc(cf->conf, len + 1);
    if (page == NULL) {
        return zg_conf_nomem(cf);
    }
    memcpy(page, zg_dashboard_html, head);
    dlcf->len = head + (size_t)snprintf(page + head, len + 1 - head, " data-api=\"%.*s1/\"",
                                        (int)alen, api);
    memcpy(page + dlcf->len, zg_dashboard_html + head, sizeof(zg_dashboard_html) - 1 - head);
    dlcf->len += sizeof(zg_dashboard_html) - 1 - head;
    dlcf->page = page;
    return zg_http_core_set_handler(cf, zg_dashboard_handler);
}

static void *zg_dashboard_create_loc_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_dashboard_loc_conf_t));
}

static const zg_command_t zg_dashboard_commands[] = {
    { "dashboard", ZG_CTX_LOC, 0, 0, 1, zg_dashboard_directive, ZG_LOC_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_dashboard_module = {
    .name = "dashboard",
    .commands = zg_dashboard_commands,
    .create_loc_conf = zg_dashboard_create_loc_conf,
};
