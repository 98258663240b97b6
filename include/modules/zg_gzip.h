/* zg_gzip.h — gzip compression of responses with zlib, as nginx's gzip module: a
 * response filter (http/zg_response.h). */
#ifndef ZG_GZIP_H
#define ZG_GZIP_H

#include "zg_conf.h"
#include "zg_regex.h"

/* gzip_proxied flags */
enum {
    ZG_GZIP_PROXIED_OFF = 0x0001,
    ZG_GZIP_PROXIED_EXPIRED = 0x0002,
    ZG_GZIP_PROXIED_NO_CACHE = 0x0004,
    ZG_GZIP_PROXIED_NO_STORE = 0x0008,
    ZG_GZIP_PROXIED_PRIVATE = 0x0010,
    ZG_GZIP_PROXIED_NO_LM = 0x0020,
    ZG_GZIP_PROXIED_NO_ETAG = 0x0040,
    ZG_GZIP_PROXIED_AUTH = 0x0080,
    ZG_GZIP_PROXIED_ANY = 0x0100
};

typedef struct {
    int enable;            /* gzip on|off */
    int level;             /* gzip_comp_level 1 */
    int64_t min_length;    /* gzip_min_length 20 */
    int http_minor;        /* gzip_http_version 1.1 -> 1, 1.0 -> 0 */
    int proxied;           /* ZG_GZIP_PROXIED_*; 0 = unset */
    int vary;              /* gzip_vary off */
    zg_str_t *types;       /* gzip_types (text/html always); NULL = unset */
    int ntypes;
    int any_type;          /* gzip_types * */
    zg_regex_t **disable;  /* gzip_disable regexes on User-Agent; NULL = unset */
    int ndisable;
    int msie6;             /* gzip_disable msie6 */
    int disable_set;
} zg_gzip_loc_conf_t;

extern zg_module_t zg_gzip_module;

#define zg_gzip_loc_conf(confs) ((zg_gzip_loc_conf_t *)zg_conf_module(confs, zg_gzip_module))

/* 1 if an Accept-Encoding value accepts gzip (a q-value of 0 refuses it), as
 * nginx's ngx_http_gzip_accept_encoding */
int zg_gzip_accepts(const char *v, size_t n);

/* 1 if the client of r takes a gzip answer, as nginx's ngx_http_gzip_ok: it
 * accepts gzip, speaks gzip_http_version, does not match gzip_disable, and a
 * request with Via qualifies under gzip_proxied (h: the answer's head) */
int zg_gzip_client_ok(zg_request_t *r, const zg_gzip_loc_conf_t *g, zg_resp_t *h);

/* gzip_vary: "Vary: Accept-Encoding" in h once (gzip, gunzip and gzip_static all
 * ask for it, as nginx's r->gzip_vary); ZG_OK or ZG_ERROR (no memory) */
int zg_gzip_vary(zg_request_t *r, zg_resp_t *h);

#endif
