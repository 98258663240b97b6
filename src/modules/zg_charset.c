/* zg_charset.c — charset and charset_types (zg_charset.h): a header filter that
 * appends "; charset=NAME" to the Content-Type of the types listed, as nginx's
 * charset filter does for a response with no charset of its own. */
#include "zg_charset.h"

#include <string.h>
#include <strings.h>

#include "zg_request.h"
#include "zg_response.h"

static const zg_str_t zg_charset_default_types[] = {
    zg_string("text/html"), zg_string("text/xml"), zg_string("text/plain"),
    zg_string("text/vnd.wap.wml"), zg_string("application/javascript"),
    zg_string("application/rss+xml"),
};

#define zg_charset_conf(confs)                                                         \
    ((zg_charset_loc_conf_t *)zg_conf_module(confs, zg_charset_module))

static void *zg_charset_create_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_charset_loc_conf_t));
}

static int zg_charset_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_charset_loc_conf_t *p = parent, *c = child;

    (void)cf;
    if (c->charset.data == NULL) {
        c->charset = p->charset;
    }
    if (c->types == NULL) {
        c->types = p->types;
        c->ntypes = p->ntypes;
        c->any = p->any;
    }
    if (c->types == NULL) {
        c->types = (zg_str_t *)zg_charset_default_types;
        c->ntypes = (int)zg_nelems(zg_charset_default_types);
    }
    return ZG_OK;
}

static int zg_charset_set(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_charset_loc_conf_t *clcf = conf;
    zg_str_t *v = &cf->args[1];

    (void)cmd;
    if (clcf->charset.data != NULL) {
        return zg_conf_duplicate(cf);
    }
    if (memchr(v->data, '$', v->len) != NULL) {
        return zg_conf_error(cf, "variables in \"charset\" are not implemented");
    }
    for (size_t i = 0; i < v->len; i++) {
        unsigned char ch = (unsigned char)v->data[i];
        if (ch <= ' ' || ch >= 0x7f || ch == ';' || ch == '"' || ch == ',') {
            return zg_conf_invalid(cf, v);
        }
    }
    clcf->charset = *v;
    if (zg_conf_eq(v, "off")) {
        clcf->charset.len = 0;
    }
    return ZG_OK;
}

static int zg_charset_types(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_charset_loc_conf_t *clcf = conf;

    (void)cmd;
    if (clcf->types != NULL) {
        return zg_conf_duplicate(cf);
    }
    clcf->types = zg_conf_alloc(cf->conf, (size_t)cf->nargs * sizeof(zg_str_t));
    if (clcf->types == NULL) {
        return zg_conf_nomem(cf);
    }
    for (int i = 1; i < cf->nargs; i++) {
        if (zg_conf_eq(&cf->args[i], "*")) {
            clcf->any = 1;
        }
        clcf->types[clcf->ntypes++] = cf->args[i];
    }
    return ZG_OK;
}

static int zg_charset_filter_on(void **loc_conf)
{
    return zg_charset_conf(loc_conf)->charset.len > 0;
}

static int zg_charset_header_filter(zg_request_t *r, zg_resp_t *h)
{
    const zg_charset_loc_conf_t *clcf = zg_charset_conf(r->loc_conf);
    zg_resp_header_t *ct;
    size_t tlen;

    if (clcf->charset.len == 0 || (ct = zg_resp_get(h, "Content-Type", 12)) == NULL) {
        return ZG_OK;
    }
    /* the type without parameters; one that names a charset already is left */
    for (tlen = 0; tlen < ct->value.len && ct->value.data[tlen] != ';'
                   && ct->value.data[tlen] != ' '; tlen++) {
    }
    for (size_t i = tlen; i + 8 <= ct->value.len; i++) {
        if (strncasecmp(ct->value.data + i, "charset=", 8) == 0) {
            return ZG_OK;
        }
    }
    int match = clcf->any;
    for (int i = 0; i < clcf->ntypes && !match; i++) {
        match = clcf->types[i].len == tlen
                && strncasecmp(clcf->types[i].data, ct->value.data, tlen) == 0;
    }
    if (!match) {
        return ZG_OK;
    }
    size_t n = ct->value.len + 10 + clcf->charset.len;
    char *v = zg_var_alloc(&r->ctx, n + 1);
    if (v == NULL) {
        return ZG_ERROR;
    }
    memcpy(v, ct->value.data, ct->value.len);
    memcpy(v + ct->value.len, "; charset=", 10);
    memcpy(v + ct->value.len + 10, clcf->charset.data, clcf->charset.len);
    ct->value.data = v;
    ct->value.len = n;
    return ZG_OK;
}

static const zg_command_t zg_charset_commands[] = {
    { "charset", ZG_CTX_SETTINGS | ZG_CTX_LIF, 0, 1, 1, zg_charset_set, ZG_LOC_CONF, 0, NULL },
    { "charset_types", ZG_CTX_SETTINGS, 0, 1, -1, zg_charset_types, ZG_LOC_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_charset_module = {
    .name = "charset",
    .commands = zg_charset_commands,
    .create_loc_conf = zg_charset_create_conf,
    .merge_loc_conf = zg_charset_merge_conf,
    .filter_on = zg_charset_filter_on,
    .header_filter = zg_charset_header_filter,
};
