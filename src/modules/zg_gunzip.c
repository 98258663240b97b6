/* zg_gunzip.c — gunzip on|off and gunzip_buffers (accepted: the inflated bytes go to
 * the next filter in 16 KB steps), as nginx's gunzip module: an answer with
 * `Content-Encoding: gzip` for a client that does not take gzip (nginx's test, the
 * gzip module's settings: zg_gzip_client_ok) loses that header, its length and
 * Accept-Ranges, its ETag becomes weak, and the body is inflated on the way.  Runs
 * before the gzip filter, as in nginx. */
#include "zg_gunzip.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "zg_gzip.h"
#include "zg_log.h"
#include "zg_request.h"
#include "zg_response.h"

typedef struct {
    z_stream *z;
    unsigned done : 1; /* the gzip stream ended: bytes after it are dropped */
} zg_gunzip_ctx_t;

static void *zg_gunzip_create_conf(zg_conf_t *conf)
{
    zg_gunzip_loc_conf_t *g = zg_conf_alloc(conf, sizeof(*g));

    if (g != NULL) {
        g->enable = ZG_UNSET;
    }
    return g;
}

static int zg_gunzip_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_gunzip_loc_conf_t *p = parent, *c = child;

    (void)cf;
    ZG_CONF_MERGE(c, p, enable, ZG_UNSET);
    if (c->enable == ZG_UNSET) {
        c->enable = 0;
    }
    return ZG_OK;
}

static int zg_gunzip_set_buffers(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
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

static int zg_gunzip_filter_on(void **loc_conf)
{
    return zg_gunzip_loc_conf(loc_conf)->enable == 1;
}

static int zg_gunzip_header_filter(zg_request_t *r, zg_resp_t *h)
{
    zg_resp_header_t *ce;

    if (zg_gunzip_loc_conf(r->loc_conf)->enable != 1 ||
        (ce = zg_resp_get(h, "Content-Encoding", 16)) == NULL || ce->value.len != 4 ||
        strncasecmp(ce->value.data, "gzip", 4) != 0) {
        return ZG_OK;
    }
    const zg_gzip_loc_conf_t *g = zg_gzip_loc_conf(r->loc_conf);
    if (zg_gzip_vary(r, h) != ZG_OK) {
        return ZG_ERROR;
    }
    if (zg_gzip_client_ok(r, g, h)) {
        return ZG_OK; /* it takes the gzip bytes as they are */
    }
    /* a head without a body (HEAD) gets the same headers as nginx, and no inflater */
    if (!h->no_body) {
        zg_gunzip_ctx_t *x = zg_request_ctx(r, zg_gunzip_module);
        z_stream *z = calloc(1, sizeof(*z));
        if (z == NULL) {
            return ZG_ERROR;
        }
        if (inflateInit2(z, MAX_WBITS + 16) != Z_OK) {
            free(z);
            zg_log_error(ZG_LOG_ALERT, 0, "inflateInit2() failed");
            return ZG_ERROR;
        }
        x->z = z;
        r->holding = 1;
    }
    zg_resp_del(h, "Content-Encoding", 16);
    zg_resp_del(h, "Accept-Ranges", 13);
    h->content_length = -1;
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
    if (!h->no_body) {
        zg_response_filter_body(r, &zg_gunzip_module);
    }
    return ZG_OK;
}

static void zg_gunzip_body_filter(zg_request_t *r, const char *p, size_t n, int last)
{
    zg_gunzip_ctx_t *x = zg_request_ctx(r, zg_gunzip_module);
    unsigned char out[16384];
    z_stream *z = x->z;

    if (z != NULL && !x->done && n) {
        z->next_in = (unsigned char *)(uintptr_t)p;
        z->avail_in = (uInt)n;
        while (z->avail_in) {
            z->next_out = out;
            z->avail_out = sizeof(out);
            int rc = inflate(z, Z_NO_FLUSH);
            size_t made = sizeof(out) - z->avail_out;
            if (made) {
                zg_response_next(r, &zg_gunzip_module, (const char *)out, made, 0);
            }
            if (rc == Z_STREAM_END) {
                x->done = 1;
                break;
            }
            if (rc != Z_OK) {
                /* as nginx: the error is logged, the answer ends where it broke */
                zg_log_error(ZG_LOG_ERR, 0, "inflate() failed: %d (%s)", rc,
                             z->msg ? z->msg : "no message");
                x->done = 1;
                break;
            }
            if (z->avail_out != 0 && z->avail_in == 0) {
                break;
            }
        }
    }
    if (last) {
        if (z != NULL) {
            inflateEnd(z);
            free(z);
            x->z = NULL;
        }
        zg_response_next(r, &zg_gunzip_module, NULL, 0, 1);
    }
}

static void zg_gunzip_release(zg_request_t *r)
{
    zg_gunzip_ctx_t *x = zg_request_ctx(r, zg_gunzip_module);

    if (x->z != NULL) {
        inflateEnd(x->z);
        free(x->z);
        x->z = NULL;
    }
}

static const zg_command_t zg_gunzip_commands[] = {
    { "gunzip", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      offsetof(zg_gunzip_loc_conf_t, enable), NULL },
    { "gunzip_buffers", ZG_CTX_SETTINGS, 0, 2, 2, zg_gunzip_set_buffers, ZG_LOC_CONF, 0,
      NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_gunzip_module = {
    .name = "gunzip",
    .commands = zg_gunzip_commands,
    .create_loc_conf = zg_gunzip_create_conf,
    .merge_loc_conf = zg_gunzip_merge_conf,
    .filter_on = zg_gunzip_filter_on,
    .header_filter = zg_gunzip_header_filter,
    .body_filter = zg_gunzip_body_filter,
    .release = zg_gunzip_release,
    .ctx_size = sizeof(zg_gunzip_ctx_t),
};
