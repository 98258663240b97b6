/* zg_proxy_shape.h — how the proxy shapes the request it sends up and the answer it
 * passes down, as nginx's proxy module: proxy_http_version, proxy_method,
 * proxy_set_body, proxy_pass_request_headers, proxy_pass_request_body (the request);
 * proxy_hide_header, proxy_pass_header, proxy_redirect and zonegate's own Server
 * and Date in place of the upstream's (the answer).  zg_proxy.c calls these. */
#ifndef ZG_PROXY_SHAPE_H
#define ZG_PROXY_SHAPE_H

#include <stdint.h>

#include "zg_conf.h"
#include "zg_regex.h"
#include "zg_request.h"
#include "zg_response.h"

/* proxy_redirect FROM TO (from and re NULL: "default", resolved from proxy_pass per
 * request; re: "~REGEX" or "~*REGEX", TO may use its captures) */
typedef struct {
    zg_cv_t *from, *to;
    zg_regex_t *re;
} zg_proxy_redirect_t;

typedef struct {
    zg_str_t *hide;             /* proxy_hide_header as written (nhide -1: unset) */
    int nhide;
    zg_str_t *pass;             /* proxy_pass_header (npass -1: unset) */
    int npass;
    const zg_str_t *hidden;     /* merged: nginx's default set + hide - pass */
    int nhidden;
    zg_proxy_redirect_t *redirects; /* nredirects -1: unset (= default), 0: off */
    int nredirects;
    uint8_t special[32];        /* first letters (lower case) of hidden names, and of
                                   Location and Refresh while proxy_redirect is on */
    int http10;                 /* proxy_http_version 1.0 */
    zg_cv_t *method;            /* proxy_method; NULL = the client's */
    zg_cv_t *body;              /* proxy_set_body; NULL = the client's body */
    int body_set;               /* proxy_set_body seen at this level */
    int pass_body;              /* proxy_pass_request_body on */
    int pass_headers;           /* proxy_pass_request_headers on */
    unsigned own_server : 1;    /* the upstream's Server is hidden: zonegate's is sent */
    unsigned own_date : 1;
} zg_proxy_shape_loc_conf_t;

extern zg_module_t zg_proxy_shape_module;

#define zg_proxy_shape_loc_conf(confs)                                                 \
    ((zg_proxy_shape_loc_conf_t *)zg_conf_module(confs, zg_proxy_shape_module))

/* the upstream's header name is hidden or rewritten: ZG_OK pass it on as it is,
 * ZG_DECLINED drop it, ZG_AGAIN send *out instead (request memory) */
int zg_proxy_shape_header_slow(zg_request_t *r, const zg_proxy_shape_loc_conf_t *sc,
                               const zg_str_t *name, const zg_str_t *value, zg_str_t *out);
static inline int zg_proxy_shape_header(zg_request_t *r, const zg_proxy_shape_loc_conf_t *sc,
                                        const zg_str_t *name, const zg_str_t *value,
                                        zg_str_t *out)
{
    unsigned c = (unsigned char)name->data[0] | 0x20;
    if (name->len == 0 || !(sc->special[c >> 3] & (1u << (c & 7)))) {
        return ZG_OK;
    }
    return zg_proxy_shape_header_slow(r, sc, name, value, out);
}

/* The pure parts of proxy_redirect, on an upstream's bytes.
 * zg_proxy_refresh_url: the offset of the URL in a Refresh value (after the first
 * "url=", any case), or -1.
 * zg_proxy_rewrite: if value starts with from at off, writes value[0, off) prefix to
 * value[off + from.len, ...) into out (cap bytes) and returns its length; returns 0
 * when from does not start there, and -1 when out is too small. */
long zg_proxy_refresh_url(const zg_str_t *value);
long zg_proxy_rewrite(const zg_str_t *value, size_t off, const zg_str_t *from,
                      const zg_str_t *prefix, const zg_str_t *to, char *out, size_t cap);

/* zonegate's Server and Date lines (unless proxy_pass_header passes the upstream's) */
void zg_proxy_shape_own_lines(zg_request_t *r, const zg_proxy_shape_loc_conf_t *sc,
                              zg_outq_t *q);
int zg_proxy_shape_own_resp(zg_request_t *r, const zg_proxy_shape_loc_conf_t *sc,
                            zg_resp_t *h);

/* the request line's method: proxy_method's, else the request's */
zg_str_t zg_proxy_shape_method_slow(zg_request_t *r, const zg_proxy_shape_loc_conf_t *sc);
static inline zg_str_t zg_proxy_shape_method(zg_request_t *r,
                                             const zg_proxy_shape_loc_conf_t *sc)
{
    return sc->method == NULL ? r->ctx.method : zg_proxy_shape_method_slow(r, sc);
}
/* proxy_set_body's value (request memory); ZG_OK or ZG_ERROR */
int zg_proxy_shape_body(zg_request_t *r, const zg_proxy_shape_loc_conf_t *sc, zg_str_t *out);

#endif
