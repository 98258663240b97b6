/* zg_proxy.h — the proxy module: proxy_pass and proxy_* directives; its content
 * handler forwards a request to an upstream peer and streams the response back;
 * next peer on error, 502 when none answers, 504 on timeout; keep-alive pool. */
#ifndef ZG_PROXY_H
#define ZG_PROXY_H

#include "zg_conf.h"
#include "zg_http.h"
#include "zg_upstream.h"
#include "zg_vars.h"

/* proxy_next_upstream bits */
#define ZG_NEXT_ERROR 0x01
#define ZG_NEXT_TIMEOUT 0x02
#define ZG_NEXT_HTTP_502 0x04
#define ZG_NEXT_HTTP_503 0x08
#define ZG_NEXT_HTTP_504 0x10
#define ZG_NEXT_HTTP_500 0x20
#define ZG_NEXT_HTTP_403 0x40
#define ZG_NEXT_OFF 0x80
#define ZG_NEXT_HTTP_404 0x100
#define ZG_NEXT_HTTP_429 0x200
#define ZG_NEXT_NON_IDEMPOTENT 0x400 /* POST, LOCK, PATCH may go to the next peer once sent */

/* proxy_set_header NAME VALUE (an empty VALUE removes the header) */
typedef struct {
    zg_str_t name;
    zg_cv_t *value;
} zg_proxy_header_t;

typedef struct {
    zg_upstream_conf_t *upstream; /* proxy_pass (location level) */
    char *uri;            /* proxy_pass http://up/URI: replaces the matched prefix;
                             NULL = pass the URI as it is */
    size_t uri_len;
    zg_cv_t *url_cv;      /* with variables: the URI, or with host_var "HOST/URI" */
    unsigned host_var : 1;
    unsigned pass : 1;    /* this level has proxy_pass */
    zg_proxy_header_t *set_headers;
    int nset_headers;     /* -1 = unset (inherit) */
    zg_msec_t connect_timeout; /* 60000 */
    zg_msec_t read_timeout;    /* 60000 */
    zg_msec_t send_timeout;    /* 60000 */
    int next_upstream;         /* ZG_NEXT_*; default ERROR|TIMEOUT */
    int next_upstream_tries;   /* 0 = unlimited */
    int intercept_errors;      /* proxy_intercept_errors: off */
} zg_proxy_loc_conf_t;

extern zg_module_t zg_proxy_module;

#define zg_proxy_loc_conf(confs)                                                       \
    ((zg_proxy_loc_conf_t *)zg_conf_module(confs, zg_proxy_module))

/* A client header the proxy never passes as it came: hop-by-hop ones,
 * Content-Length, Expect and X-Real-IP (the proxy writes its own). */
static inline int zg_proxy_header_not_passed(const zg_str_t *n)
{
    return zg_http_hop_by_hop(n) || zg_http_name_eq(n, "content-length", 14) ||
           zg_http_name_eq(n, "expect", 6) || zg_http_name_eq(n, "x-real-ip", 9);
}

/* Copies an upstream head's headers into the request's memory (zg_var_alloc):
 * (*names)[i] and (*values)[i]; returns how many (fewer if memory ran out). */
size_t zg_proxy_copy_headers(zg_var_ctx_t *x, const zg_http_resp_head_t *rh,
                             zg_str_t **names, zg_str_t **values);

#endif
