/* zg_geo.c — nginx's geo: `geo [$address] $var { default V; CIDR V; ... }` defines
 * $var from the client address (or from the address in $address), computed when a
 * request first reads it.  `ranges` takes "A-B V" entries instead of networks;
 * `proxy` lists trusted addresses whose X-Forwarded-For names the client
 * (`proxy_recursive`: the last untrusted one in it); `delete` removes a network. */
#include "zg_geo.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "zg_vars.h"

static int zg_geo_addr(const char *s, size_t len, int *family, unsigned char *out)
{
    char buf[64];

    if (len == 0 || len >= sizeof(buf)) {
        return ZG_ERROR;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, out) == 1) {
        *family = AF_INET;
        return ZG_OK;
    }
    if (inet_pton(AF_INET6, buf, out) == 1) {
        *family = AF_INET6;
        return ZG_OK;
    }
    return ZG_ERROR;
}

int zg_geo_parse_cidr(const char *s, size_t len, zg_geo_entry_t *e)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    int bits, n;

    memset(e->lo, 0, sizeof(e->lo));
    if (zg_geo_addr(s, alen, &e->family, e->lo) != ZG_OK) {
        return ZG_ERROR;
    }
    n = e->family == AF_INET ? 4 : 16;
    bits = 8 * n;
    if (slash != NULL) {
        bits = zg_conf_atoi(slash + 1, len - alen - 1);
        if (bits < 0 || bits > 8 * n) {
            return ZG_ERROR;
        }
    }
    /* as nginx: the address is masked to the network (nginx warns about low bits) */
    for (int i = 0; i < n; i++) {
        int keep = bits - 8 * i;
        unsigned char mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
        e->lo[i] &= mask;
        e->hi[i] = (unsigned char)(e->lo[i] | (unsigned char)~mask);
    }
    e->bits = bits;
    return ZG_OK;
}

static int zg_geo_in(const zg_geo_entry_t *e, int family, const unsigned char *a)
{
    int n = family == AF_INET ? 4 : 16;

    return e->family == family && memcmp(a, e->lo, (size_t)n) >= 0
           && memcmp(a, e->hi, (size_t)n) <= 0;
}

static uint32_t zg_geo_node(zg_geo_t *geo)
{
    if (geo->nnodes == geo->cap) {
        uint32_t cap = geo->cap ? geo->cap * 2 : 64;
        zg_geo_node_t *n = realloc(geo->nodes, cap * sizeof(*n));
        if (n == NULL) {
            return 0;
        }
        geo->nodes = n;
        geo->cap = cap;
    }
    geo->nodes[geo->nnodes].child[0] = geo->nodes[geo->nnodes].child[1] = 0;
    geo->nodes[geo->nnodes].value = -1;
    return geo->nnodes++;
}

int zg_geo_build(zg_geo_t *geo)
{
    if (geo->ranges || zg_geo_node(geo) != 0 || zg_geo_node(geo) != 1) {
        goto failed;
    }
    for (int i = 0; i < geo->nentries; i++) {
        const zg_geo_entry_t *e = &geo->entries[i];
        uint32_t n = e->family == AF_INET ? 0 : 1;
        for (int b = 0; b < e->bits; b++) {
            int bit = e->lo[b / 8] >> (7 - b % 8) & 1;
            if (geo->nodes[n].child[bit] == 0) {
                uint32_t k = zg_geo_node(geo);
                if (k == 0) {
                    goto failed;
                }
                geo->nodes[n].child[bit] = k;
            }
            n = geo->nodes[n].child[bit];
        }
        geo->nodes[n].value = i;
    }
    return ZG_OK;
failed:
    free(geo->nodes);
    geo->nodes = NULL;
    geo->nnodes = geo->cap = 0;
    return ZG_ERROR;
}

zg_str_t zg_geo_find(const zg_geo_t *geo, int family, const unsigned char *addr)
{
    const zg_geo_entry_t *best = NULL;

    if (geo->nodes != NULL) {
        uint32_t n = family == AF_INET ? 0 : 1;
        int bits = family == AF_INET ? 32 : 128, found = geo->nodes[n].value;
        for (int b = 0; b < bits; b++) {
            n = geo->nodes[n].child[addr[b / 8] >> (7 - b % 8) & 1];
            if (n == 0) {
                break;
            }
            if (geo->nodes[n].value >= 0) {
                found = geo->nodes[n].value;
            }
        }
        return found >= 0 ? geo->entries[found].value : geo->deflt;
    }

    for (int i = 0; i < geo->nentries; i++) {
        const zg_geo_entry_t *e = &geo->entries[i];
        if (!zg_geo_in(e, family, addr)) {
            continue;
        }
        if (geo->ranges || best == NULL || e->bits >= best->bits) {
            best = e;
        }
    }
    return best != NULL ? best->value : geo->deflt;
}

static int zg_geo_trusted(const zg_geo_t *geo, int family, const unsigned char *a)
{
    for (int i = 0; i < geo->nproxies; i++) {
        if (zg_geo_in(&geo->proxies[i], family, a)) {
            return 1;
        }
    }
    return 0;
}

/* the client address, through trusted proxies' X-Forwarded-For (as nginx's
 * ngx_http_get_forwarded_addr: from the last address back) */
static void zg_geo_forwarded(const zg_geo_t *geo, const zg_var_ctx_t *ctx, int *family,
                             unsigned char *addr)
{
    for (size_t i = ctx->nhdrs; i-- > 0;) {
        const zg_str_t *n = &ctx->hdr_names[i], *v = &ctx->hdr_values[i];
        if (n->len != 15 || strncasecmp(n->data, "x-forwarded-for", 15) != 0) {
            continue;
        }
        size_t end = v->len;
        while (end > 0) {
            size_t start = end;
            while (start > 0 && v->data[start - 1] != ',') {
                start--;
            }
            size_t a = start, b = end;
            while (a < b && (v->data[a] == ' ' || v->data[a] == '\t')) {
                a++;
            }
            while (b > a && (v->data[b - 1] == ' ' || v->data[b - 1] == '\t')) {
                b--;
            }
            unsigned char tmp[16];
            int fam;
            if (zg_geo_addr(v->data + a, b - a, &fam, tmp) != ZG_OK) {
                return;
            }
            *family = fam;
            memcpy(addr, tmp, 16);
            if (!geo->proxy_recursive || !zg_geo_trusted(geo, fam, tmp)) {
                return;
            }
            end = start > 0 ? start - 1 : 0;
        }
        return; /* only the last X-Forwarded-For line, as nginx 1.22 */
    }
}

static int zg_geo_get(zg_var_ctx_t *ctx, const void *data, zg_str_t *out)
{
    const zg_geo_t *geo = data;
    unsigned char addr[16];
    int family = 0;

    memset(addr, 0, sizeof(addr));
    if (geo->source != NULL) {
        zg_str_t v;
        if (zg_cv_eval_str(geo->source, ctx, &v) != ZG_OK
            || zg_geo_addr(v.data, v.len, &family, addr) != ZG_OK) {
            family = AF_INET; /* as nginx: an invalid address is 255.255.255.255 */
            memset(addr, 0xff, 4);
        }
    } else if (ctx->remote != NULL && ctx->remote->sa_family == AF_INET) {
        family = AF_INET;
        memcpy(addr, &((const struct sockaddr_in *)ctx->remote)->sin_addr, 4);
    } else if (ctx->remote != NULL && ctx->remote->sa_family == AF_INET6) {
        family = AF_INET6;
        memcpy(addr, &((const struct sockaddr_in6 *)ctx->remote)->sin6_addr, 16);
        if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
            family = AF_INET;
            memmove(addr, addr + 12, 4);
        }
    }
    if (family == 0) {
        *out = geo->deflt;
        return ZG_OK;
    }
    if (geo->source == NULL && geo->nproxies && zg_geo_trusted(geo, family, addr)) {
        zg_geo_forwarded(geo, ctx, &family, addr);
    }
    *out = zg_geo_find(geo, family, addr);
    return ZG_OK;
}

static int zg_geo_entry(zg_cf_t *cf, void *data)
{
    zg_geo_t *geo = data;
    zg_str_t *a = cf->args;
    zg_geo_entry_t e, *slot;

    memset(&e, 0, sizeof(e));
    if (cf->nargs == 1 && zg_conf_eq(&a[0], "ranges")) {
        if (geo->nlines) {
            return zg_conf_error(cf, "the \"ranges\" directive must be the first directive "
                                     "inside \"geo\" block");
        }
        geo->ranges = 1;
        return ZG_OK;
    }
    geo->nlines++;
    if (cf->nargs == 1 && zg_conf_eq(&a[0], "proxy_recursive")) {
        geo->proxy_recursive = 1;
        return ZG_OK;
    }
    if (cf->nargs != 2) {
        return zg_conf_error(cf, "invalid number of the geo parameters");
    }
    if (zg_conf_eq(&a[0], "default")) {
        geo->deflt = a[1];
        return ZG_OK;
    }
    if (zg_conf_eq(&a[0], "proxy")) {
        if (zg_geo_parse_cidr(a[1].data, a[1].len, &e) != ZG_OK) {
            return zg_conf_error(cf, "invalid parameter \"%s\"", a[1].data);
        }
        if ((slot = zg_conf_push(cf->conf, geo->proxies, geo->nproxies)) == NULL) {
            return zg_conf_nomem(cf);
        }
        *slot = e;
        return ZG_OK;
    }
    if (zg_conf_eq(&a[0], "delete")) {
        if (zg_geo_parse_cidr(a[1].data, a[1].len, &e) != ZG_OK) {
            return zg_conf_error(cf, "invalid parameter \"%s\"", a[1].data);
        }
        for (int i = 0; i < geo->nentries; i++) {
            zg_geo_entry_t *x = &geo->entries[i];
            if (x->family == e.family && x->bits == e.bits && !memcmp(x->lo, e.lo, 16)) {
                memmove(x, x + 1, (size_t)(geo->nentries - i - 1) * sizeof(*x));
                geo->nentries--;
                i--;
            }
        }
        return ZG_OK;
    }
    if (geo->ranges) {
        const char *dash = memchr(a[0].data, '-', a[0].len);
        int f2;
        if (dash == NULL
            || zg_geo_addr(a[0].data, (size_t)(dash - a[0].data), &e.family, e.lo) != ZG_OK
            || zg_geo_addr(dash + 1, a[0].len - (size_t)(dash - a[0].data) - 1, &f2, e.hi)
                   != ZG_OK
            || e.family != AF_INET || f2 != AF_INET || memcmp(e.lo, e.hi, 4) > 0) {
            return zg_conf_error(cf, "invalid range \"%s\"", a[0].data);
        }
        e.bits = -1;
    } else if (zg_geo_parse_cidr(a[0].data, a[0].len, &e) != ZG_OK) {
        return zg_conf_error(cf, "invalid network \"%s\"", a[0].data);
    }
    e.value = a[1];
    for (int i = 0; !geo->ranges && i < geo->nentries; i++) {
        zg_geo_entry_t *x = &geo->entries[i];
        if (x->family == e.family && x->bits == e.bits && !memcmp(x->lo, e.lo, 16)) {
            x->value = e.value; /* nginx warns "duplicate network" and takes the last */
            return ZG_OK;
        }
    }
    if ((slot = zg_conf_push(cf->conf, geo->entries, geo->nentries)) == NULL) {
        return zg_conf_nomem(cf);
    }
    *slot = e;
    return ZG_OK;
}

/* geo [$address] $variable { ... } */
static int zg_geo_block(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_str_t *a = cf->args, target;
    zg_vars_t *vs = zg_conf_vars(cf->conf);
    zg_geo_t *geo;
    int rc;

    (void)cmd;
    (void)conf;
    geo = zg_conf_alloc(cf->conf, sizeof(*geo));
    if (geo == NULL || vs == NULL) {
        return zg_conf_nomem(cf);
    }
    geo->deflt.data = "";
    target = a[cf->nargs - 1];
    if (cf->nargs == 3 && (geo->source = zg_conf_cv(cf, a[1].data, a[1].len)) == NULL) {
        return ZG_ERROR;
    }
    if (target.len < 2 || target.data[0] != '$') {
        return zg_conf_error(cf, "invalid variable name \"%s\"", target.data);
    }
    target.data++;
    target.len--;
    if (zg_var_builtin(target.data, target.len)) {
        return zg_conf_error(cf, "the \"%s\" variable is built in", target.data);
    }
    if (zg_conf_block_raw(cf, zg_geo_entry, geo) != ZG_OK) {
        return ZG_ERROR;
    }
    if (!geo->ranges && zg_geo_build(geo) == ZG_OK
        && zg_conf_keep(cf->conf, geo->nodes, free) != ZG_OK) {
        free(geo->nodes);
        return zg_conf_nomem(cf);
    }
    rc = zg_vars_define(vs, target.data, target.len, zg_geo_get, geo, 0, NULL);
    if (rc == ZG_ERROR) {
        return zg_conf_nomem(cf);
    }
    if (rc == ZG_DECLINED) {
        return zg_conf_error(cf, "the duplicate \"%s\" variable", target.data);
    }
    return ZG_OK;
}

static const zg_command_t zg_geo_commands[] = {
    { "geo", ZG_CTX_HTTP, 1, 1, 2, zg_geo_block, ZG_MAIN_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_geo_module = {
    .name = "geo",
    .commands = zg_geo_commands,
};
