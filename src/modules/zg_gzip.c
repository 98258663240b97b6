/* zg_gzip.c — gzip, gzip_types, gzip_min_length, gzip_comp_level, gzip_proxied,
 * gzip_vary, gzip_disable, gzip_http_version (and gzip_buffers, accepted: zlib's
 * output goes straight to the client's queue), as nginx's gzip module.
 *
 * The header filter decides, as ngx_http_gzip_header_filter: gzip on, status 200,
 * 403 or 404, no Content-Encoding yet, a length unknown or at least gzip_min_length,
 * a type of gzip_types, a body; then Vary (gzip_vary) whatever the client accepts;
 * then the client: Accept-Encoding with gzip, HTTP version, gzip_disable, and for a
 * request with Via gzip_proxied.  A compressed answer loses Content-Length (chunked
 * to HTTP/1.1 clients) and its ETag becomes weak.  The body filter streams through
 * one zlib deflate state per response (window and memory sized down for short
 * known lengths, as nginx), freed when the request releases what it holds. */
#include "zg_gzip.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "zg_http.h"
#include "zg_log.h"
#include "zg_request.h"
#include "zg_response.h"

typedef struct {
    z_stream *z;
    int key;        /* level, window and memory it was made with */
} zg_gzip_ctx_t;

/* deflate states kept for the next response with the same settings: deflateReset
 * instead of allocating and initialising ~100-250 KB of zlib state each time */
#define ZG_GZIP_KEEP 8
static struct {
    z_stream *z;
    int key;
} zg_gzip_idle[ZG_GZIP_KEEP];
static int zg_gzip_nidle;

static z_stream *zg_gzip_get(int level, int wbits, int memlevel, int key)
{
    for (int i = 0; i < zg_gzip_nidle; i++) {
        if (zg_gzip_idle[i].key == key) {
            z_stream *z = zg_gzip_idle[i].z;
            zg_gzip_idle[i] = zg_gzip_idle[--zg_gzip_nidle];
            if (deflateReset(z) == Z_OK) {
                return z;
            }
            deflateEnd(z);
            free(z);
            break;
        }
    }
    z_stream *z = calloc(1, sizeof(*z));
    if (z == NULL) {
        return NULL;
    }
    if (deflateInit2(z, level, Z_DEFLATED, wbits + 16, memlevel, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(z);
        zg_log_error(ZG_LOG_ALERT, 0, "deflateInit2() failed");
        return NULL;
    }
    return z;
}

static void zg_gzip_put(z_stream *z, int key)
{
    if (zg_gzip_nidle == ZG_GZIP_KEEP) {
        /* the oldest goes */
        deflateEnd(zg_gzip_idle[0].z);
        free(zg_gzip_idle[0].z);
        zg_gzip_idle[0] = zg_gzip_idle[--zg_gzip_nidle];
    }
    zg_gzip_idle[zg_gzip_nidle].z = z;
    zg_gzip_idle[zg_gzip_nidle].key = key;
    zg_gzip_nidle++;
}

/* ---- config ---- */

static int zg_gzip_set_types(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_gzip_loc_conf_t *g = conf;

    (void)cmd;
    if (g->types != NULL || g->any_type) {
        return zg_conf_duplicate(cf);
    }
    for (int i = 1; i < cf->nargs; i++) {
        zg_str_t *t;
        if (zg_conf_eq(&cf->args[i], "*")) {
            g->any_type = 1;
            continue;
        }
        if ((t = zg_conf_push(cf->conf, g->types, g->ntypes)) == NULL) {
            return zg_conf_nomem(cf);
        }
        *t = cf->args[i];
    }
    if (g->types == NULL && !g->any_type) {
        /* only "*"... cannot happen; keep "set" distinct from unset */
        g->any_type = 1;
    }
    return ZG_OK;
}

static int zg_gzip_set_level(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_gzip_loc_conf_t *g = conf;
    int v = zg_conf_atoi(cf->args[1].data, cf->args[1].len);

    (void)cmd;
    if (g->level != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    if (v < 1 || v > 9) {
        return zg_conf_error(cf, "value must be between 1 and 9");
    }
    g->level = v;
    return ZG_OK;
}

static int zg_gzip_set_http_version(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_gzip_loc_conf_t *g = conf;

    (void)cmd;
    if (g->http_minor != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    if (zg_conf_eq(&cf->args[1], "1.0")) {
        g->http_minor = 0;
    } else if (zg_conf_eq(&cf->args[1], "1.1")) {
        g->http_minor = 1;
    } else {
        return zg_conf_invalid(cf, &cf->args[1]);
    }
    return ZG_OK;
}

static int zg_gzip_set_proxied(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    static const struct {
        const char *name;
        int flag;
    } names[] = {
        {"off", ZG_GZIP_PROXIED_OFF}, {"expired", ZG_GZIP_PROXIED_EXPIRED},
        {"no-cache", ZG_GZIP_PROXIED_NO_CACHE}, {"no-store", ZG_GZIP_PROXIED_NO_STORE},
        {"private", ZG_GZIP_PROXIED_PRIVATE}, {"no_last_modified", ZG_GZIP_PROXIED_NO_LM},
        {"no_etag", ZG_GZIP_PROXIED_NO_ETAG}, {"auth", ZG_GZIP_PROXIED_AUTH},
        {"any", ZG_GZIP_PROXIED_ANY},
    };
    zg_gzip_loc_conf_t *g = conf;

    (void)cmd;
    if (g->proxied != 0) {
        return zg_conf_duplicate(cf);
    }
    for (int i = 1; i < cf->nargs; i++) {
        size_t k;
        for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            if (zg_conf_eq(&cf->args[i], names[k].name)) {
                break;
            }
        }
        if (k == sizeof(names) / sizeof(names[0])) {
            return zg_conf_invalid(cf, &cf->args[i]);
        }
        g->proxied |= names[k].flag;
    }
    return ZG_OK;
}

static void zg_gzip_regex_free(void *p)
{
    zg_regex_free(p);
}

static int zg_gzip_set_disable(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_gzip_loc_conf_t *g = conf;
    char err[256];

    (void)cmd;
    g->disable_set = 1;
    for (int i = 1; i < cf->nargs; i++) {
        zg_regex_t **slot;
        if (zg_conf_eq(&cf->args[i], "msie6")) {
            g->msie6 = 1;
            continue;
        }
        zg_regex_t *re = zg_regex_compile(cf->args[i].data, cf->args[i].len,
                                          ZG_REGEX_CASELESS, err, sizeof(err));
        if (re == NULL) {
            return zg_conf_error(cf, "%s", err);
        }
        if (zg_conf_keep(cf->conf, re, zg_gzip_regex_free) != ZG_OK ||
            (slot = zg_conf_push(cf->conf, g->disable, g->ndisable)) == NULL) {
            return zg_conf_nomem(cf);
        }
        *slot = re;
    }
    return ZG_OK;
}

static void *zg_gzip_create_conf(zg_conf_t *conf)
{
    zg_gzip_loc_conf_t *g = zg_conf_alloc(conf, sizeof(*g));

    if (g != NULL) {
        g->enable = ZG_UNSET;
        g->level = ZG_UNSET;
        g->min_length = ZG_UNSET;
        g->http_minor = ZG_UNSET;
        g->vary = ZG_UNSET;
    }
    return g;
}

static int zg_gzip_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_gzip_loc_conf_t *p = parent, *c = child;

    (void)cf;
    ZG_CONF_MERGE(c, p, enable, ZG_UNSET);
    ZG_CONF_MERGE(c, p, level, ZG_UNSET);
    ZG_CONF_MERGE(c, p, min_length, ZG_UNSET);
    ZG_CONF_MERGE(c, p, http_minor, ZG_UNSET);
    ZG_CONF_MERGE(c, p, vary, ZG_UNSET);
    ZG_CONF_MERGE(c, p, proxied, 0);
    /* nginx's defaults */
    if (c->enable == ZG_UNSET) {
        c->enable = 0;
    }
    if (c->level == ZG_UNSET) {
        c->level = 1;
    }
    if (c->min_length == ZG_UNSET_SIZE) {
        c->min_length = 20;
    }
    if (c->http_minor == ZG_UNSET) {
        c->http_minor = 1;
    }
    if (c->vary == ZG_UNSET) {
        c->vary = 0;
    }
    if (c->types == NULL && !c->any_type) {
        c->types = p->types;
        c->ntypes = p->ntypes;
        c->any_type = p->any_type;
    }
    if (!c->disable_set) {
        c->disable = p->disable;
        c->ndisable = p->ndisable;
        c->msie6 = p->msie6;
        c->disable_set = p->disable_set;
    }
    return ZG_OK;
}

/* the defaults, for a merged level that set nothing */
static int zg_gzip_enabled(const zg_gzip_loc_conf_t *g)
{
    return g->enable == 1;
}

/* ---- the request ---- */

static const zg_str_t *zg_gzip_req_header(zg_request_t *r, const char *name, size_t len)
{
    const zg_http_req_t *h = r->h;

    for (size_t i = 0; i < h->nhdrs; i++) {
        if (h->names[i].len == len && zg_http_name_eq(&h->names[i], name, len)) {
            return &h->values[i];
        }
    }
    return NULL;
}

static int zg_gzip_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* finds "gzip" as a token of v, and then its q-value */
int zg_gzip_accepts(const char *v, size_t n)
{
    size_t i = 0;

    while (i + 4 <= n) {
        /* a token starts at i? */
        size_t s = i;
        while (s < n && (v[s] == ' ' || v[s] == '\t' || v[s] == ',')) {
            s++;
        }
        size_t e = s;
        while (e < n && v[e] != ',' && v[e] != ';' && v[e] != ' ' && v[e] != '\t') {
            e++;
        }
        int is_gzip = e - s == 4 && zg_gzip_lower(v[s]) == 'g' && zg_gzip_lower(v[s + 1]) == 'z'
                      && zg_gzip_lower(v[s + 2]) == 'i' && zg_gzip_lower(v[s + 3]) == 'p';
        /* the parameters up to the next comma */
        size_t c = e;
        while (c < n && v[c] != ',') {
            c++;
        }
        if (is_gzip) {
            /* q=0, q=0.0, q=0.00, q=0.000 refuse it */
            for (size_t k = e; k < c; k++) {
                if (v[k] == ';') {
                    size_t q = k + 1;
                    while (q < c && (v[q] == ' ' || v[q] == '\t')) {
                        q++;
                    }
                    if (q + 1 < c && zg_gzip_lower(v[q]) == 'q' && v[q + 1] == '=') {
                        q += 2;
                        int nonzero = 0;
                        for (; q < c && v[q] != ';' && v[q] != ' '; q++) {
                            if (v[q] >= '1' && v[q] <= '9') {
                                nonzero = 1;
                            }
                        }
                        return nonzero;
                    }
                }
            }
            return 1;
        }
        if (c == i) {
            c++;
        }
        i = c;
    }
    return 0;
}

static int zg_gzip_type_ok(const zg_gzip_loc_conf_t *g, zg_resp_t *h)
{
    zg_resp_header_t *ct = zg_resp_get(h, "Content-Type", 12);
    size_t n;

    if (ct == NULL) {
        return 0;
    }
    if (g->any_type) {
        return 1;
    }
    for (n = 0; n < ct->value.len && ct->value.data[n] != ';' && ct->value.data[n] != ' ';
         n++) {
    }
    zg_str_t t = {n, ct->value.data};
    if (n == 9 && zg_http_name_eq(&t, "text/html", 9)) {
        return 1;
    }
    for (int i = 0; i < g->ntypes; i++) {
        if (g->types[i].len == n && zg_http_name_eq(&t, g->types[i].data, n)) {
            return 1;
        }
    }
    return 0;
}

static int zg_gzip_has_token(zg_resp_t *h, const char *name, size_t nlen, const char *tok)
{
    size_t tl = strlen(tok);

    for (int i = 0; i < h->n; i++) {
        const zg_resp_header_t *x = &h->h[i];
        if (x->name.len != nlen || !zg_http_name_eq(&x->name, name, nlen)) {
            continue;
        }
        for (size_t k = 0; k + tl <= x->value.len; k++) {
            zg_str_t s = {tl, x->value.data + k};
            if (zg_http_name_eq(&s, tok, tl)) {
                return 1;
            }
        }
    }
    return 0;
}

/* gzip_proxied for a request with Via, as ngx_http_gzip_ok */
static int zg_gzip_proxied_ok(zg_request_t *r, const zg_gzip_loc_conf_t *g, zg_resp_t *h)
{
    int p = g->proxied;

    if (p == 0 || (p & ZG_GZIP_PROXIED_OFF)) {
        return 0;
    }
    if (p & ZG_GZIP_PROXIED_ANY) {
        return 1;
    }
    if ((p & ZG_GZIP_PROXIED_AUTH) && zg_gzip_req_header(r, "authorization", 13) != NULL) {
        return 1;
    }
    if ((p & ZG_GZIP_PROXIED_EXPIRED) && zg_resp_get(h, "Expires", 7) != NULL) {
        return 1;
    }
    if ((p & ZG_GZIP_PROXIED_NO_CACHE) && zg_gzip_has_token(h, "cache-control", 13, "no-cache")) {
        return 1;
    }
    if ((p & ZG_GZIP_PROXIED_NO_STORE) && zg_gzip_has_token(h, "cache-control", 13, "no-store")) {
        return 1;
    }
    if ((p & ZG_GZIP_PROXIED_PRIVATE) && zg_gzip_has_token(h, "cache-control", 13, "private")) {
        return 1;
    }
    if ((p & ZG_GZIP_PROXIED_NO_LM) && zg_resp_get(h, "Last-Modified", 13) == NULL) {
        return 1;
    }
    if ((p & ZG_GZIP_PROXIED_NO_ETAG) && zg_resp_get(h, "ETag", 4) == NULL) {
        return 1;
    }
    return 0;
}

/* the client's side of ngx_http_gzip_ok */
int zg_gzip_client_ok(zg_request_t *r, const zg_gzip_loc_conf_t *g, zg_resp_t *h)
{
    const zg_str_t *ae = zg_gzip_req_header(r, "accept-encoding", 15);

    if (ae == NULL || !zg_gzip_accepts(ae->data, ae->len)) {
        return 0;
    }
    if (r->h->http_major < 1 || (r->h->http_major == 1 && r->h->http_minor < g->http_minor)) {
        return 0;
    }
    if (g->ndisable || g->msie6) {
        const zg_str_t *ua = zg_gzip_req_header(r, "user-agent", 10);
        if (ua != NULL) {
            if (g->msie6) {
                /* MSIE 4, 5, 6 without SV1 */
                const char *m = memmem(ua->data, ua->len, "MSIE ", 5);
                if (m != NULL && (size_t)(m - ua->data) + 6 <= ua->len && m[5] >= '4' &&
                    m[5] <= '6' && memmem(ua->data, ua->len, "SV1", 3) == NULL) {
                    return 0;
                }
            }
            for (int i = 0; i < g->ndisable; i++) {
                if (zg_regex_exec(g->disable[i], ua->data, ua->len, NULL) == ZG_OK) {
                    return 0;
                }
            }
        }
    }
    if (zg_gzip_req_header(r, "via", 3) != NULL && !zg_gzip_proxied_ok(r, g, h)) {
        return 0;
    }
    return 1;
}

int zg_gzip_vary(zg_request_t *r, zg_resp_t *h)
{
    if (!zg_gzip_loc_conf(r->loc_conf)->vary || h->vary_ae) {
        return ZG_OK;
    }
    h->vary_ae = 1;
    return zg_resp_add(r, h, "Vary", 4, "Accept-Encoding", 15);
}

static int zg_gzip_filter_on(void **loc_conf)
{
    return zg_gzip_enabled(zg_gzip_loc_conf(loc_conf));
}

static int zg_gzip_header_filter(zg_request_t *r, zg_resp_t *h)
{
    const zg_gzip_loc_conf_t *g = zg_gzip_loc_conf(r->loc_conf);

    if (!zg_gzip_enabled(g) || (h->status != 200 && h->status != 403 && h->status != 404)
        || h->no_body) {
        return ZG_OK;
    }
    zg_resp_header_t *ce = zg_resp_get(h, "Content-Encoding", 16);
    if ((ce != NULL && ce->value.len) ||
        (h->content_length >= 0 && h->content_length < g->min_length) ||
        !zg_gzip_type_ok(g, h)) {
        return ZG_OK;
    }
    if (zg_gzip_vary(r, h) != ZG_OK) {
        return ZG_ERROR;
    }
    if (!zg_gzip_client_ok(r, g, h)) {
        return ZG_OK;
    }

    /* window and memory for the length, as nginx: smaller for short bodies */
    int wbits = 15, memlevel = 8;
    if (h->content_length > 0) {
        while (h->content_length < (1 << (wbits - 1)) && wbits > 9) {
            wbits--;
            if (memlevel > 1) {
                memlevel--;
            }
        }
    }
    zg_gzip_ctx_t *x = zg_request_ctx(r, zg_gzip_module);
    int key = g->level << 8 | wbits << 4 | memlevel;
    z_stream *z = zg_gzip_get(g->level, wbits, memlevel, key);
    if (z == NULL) {
        return ZG_ERROR;
    }
    x->z = z;
    x->key = key;
    r->holding = 1;
    if (zg_resp_add(r, h, "Content-Encoding", 16, "gzip", 4) != ZG_OK) {
        return ZG_ERROR;
    }
    h->content_length = -1;
    /* the bytes change: a strong validator becomes a weak one */
    zg_resp_header_t *etag = zg_resp_get(h, "ETag", 4);
    if (etag != NULL && etag->value.len && etag->value.data[0] == '"') {
        char *w = zg_var_alloc(&r->ctx, etag->value.len + 2);
        if (w == NULL) {
            return ZG_ERROR;
        }
        memcpy(w, "W/", 2);
        memcpy(w + 2, etag->value.data, etag->value.len);
        etag->value.data = w;
        etag->value.len += 2;
    } else if (etag != NULL && !(etag->value.len > 2 && etag->value.data[0] == 'W' &&
                                 etag->value.data[1] == '/')) {
        zg_resp_del(h, "ETag", 4);
    }
    zg_resp_del(h, "Accept-Ranges", 13);
    zg_response_filter_body(r, &zg_gzip_module);
    return ZG_OK;
}

static void zg_gzip_body_filter(zg_request_t *r, const char *p, size_t n, int last)
{
    zg_gzip_ctx_t *x = zg_request_ctx(r, zg_gzip_module);
    unsigned char out[16384];
    z_stream *z = x->z;

    if (z == NULL) {
        zg_response_next(r, &zg_gzip_module, p, n, last);
        return;
    }
    z->next_in = (unsigned char *)(uintptr_t)p;
    z->avail_in = (uInt)n;
    for (;;) {
        z->next_out = out;
        z->avail_out = sizeof(out);
        int rc = deflate(z, last ? Z_FINISH : Z_NO_FLUSH);
        size_t made = sizeof(out) - z->avail_out;
        if (rc == Z_STREAM_ERROR) {
            zg_log_error(ZG_LOG_ALERT, 0, "deflate() failed");
            break;
        }
        if (made) {
            zg_response_next(r, &zg_gzip_module, (const char *)out, made, 0);
        }
        if (last ? rc == Z_STREAM_END : z->avail_in == 0 && z->avail_out != 0) {
            break;
        }
    }
    if (last) {
        x->z = NULL;
        zg_gzip_put(z, x->key);
        zg_response_next(r, &zg_gzip_module, NULL, 0, 1);
    }
}

static void zg_gzip_release(zg_request_t *r)
{
    zg_gzip_ctx_t *x = zg_request_ctx(r, zg_gzip_module);

    if (x->z != NULL) {
        /* a response cut short: its state is reset before the next use */
        zg_gzip_put(x->z, x->key);
        x->z = NULL;
    }
}

#define ZG_GZIP_CTX (ZG_CTX_SETTINGS | ZG_CTX_LIF)

/* gzip_buffers NUMBER SIZE: checked and dropped — zlib's output goes to the client's
 * queue in 16 KB steps, there are no fixed buffers to size */
static int zg_gzip_set_buffers(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    (void)cmd;
    (void)conf;
    if (zg_conf_atoi(cf->args[1].data, cf->args[1].len) < 1) {
        return zg_conf_invalid(cf, &cf->args[1]);
    }
    if (zg_conf_parse_size(cf->args[2].data, cf->args[2].len) <= 0) {
        return zg_conf_invalid(cf, &cf->args[2]);
    }
    return ZG_OK;
}

static const zg_command_t zg_gzip_commands[] = {
    { "gzip", ZG_GZIP_CTX, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      offsetof(zg_gzip_loc_conf_t, enable), NULL },
    { "gzip_comp_level", ZG_CTX_SETTINGS, 0, 1, 1, zg_gzip_set_level, ZG_LOC_CONF, 0, NULL },
    { "gzip_min_length", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_size, ZG_LOC_CONF,
      offsetof(zg_gzip_loc_conf_t, min_length), NULL },
    { "gzip_http_version", ZG_CTX_SETTINGS, 0, 1, 1, zg_gzip_set_http_version, ZG_LOC_CONF, 0,
      NULL },
    { "gzip_proxied", ZG_CTX_SETTINGS, 0, 1, -1, zg_gzip_set_proxied, ZG_LOC_CONF, 0, NULL },
    { "gzip_vary", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      offsetof(zg_gzip_loc_conf_t, vary), NULL },
    { "gzip_types", ZG_CTX_SETTINGS, 0, 1, -1, zg_gzip_set_types, ZG_LOC_CONF, 0, NULL },
    { "gzip_disable", ZG_CTX_SETTINGS, 0, 1, -1, zg_gzip_set_disable, ZG_LOC_CONF, 0, NULL },
    { "gzip_buffers", ZG_CTX_SETTINGS, 0, 2, 2, zg_gzip_set_buffers, ZG_LOC_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_gzip_module = {
    .name = "gzip",
    .commands = zg_gzip_commands,
    .create_loc_conf = zg_gzip_create_conf,
    .merge_loc_conf = zg_gzip_merge_conf,
    .filter_on = zg_gzip_filter_on,
    .header_filter = zg_gzip_header_filter,
    .body_filter = zg_gzip_body_filter,
    .release = zg_gzip_release,
    .ctx_size = sizeof(zg_gzip_ctx_t),
};
