/* zg_http_core.h — the core http module: the http block, servers, listen
 * addresses, locations, `return`, client timeouts and limits; and the lookup of a
 * request's server and location. */
#ifndef ZG_HTTP_CORE_H
#define ZG_HTTP_CORE_H

#include "zg_conf.h"

typedef struct zg_server_conf_s zg_server_conf_t;

/* satisfy all|any */
#define ZG_SATISFY_ALL 0
#define ZG_SATISFY_ANY 1

typedef struct {
    char *path;           /* prefix, or the exact URI when exact */
    size_t path_len;
    unsigned exact : 1;
    void **loc_conf;      /* every module's conf of this location, merged */
    zg_server_conf_t *server;
    const char *file;
    int line;
} zg_location_t;

struct zg_server_conf_s {
    char **names;         /* server_name list; "" matches a missing Host */
    int nnames;
    zg_location_t *locations; /* in config order */
    int nlocations;
    void **loc_conf;      /* every module's server-level conf, merged from http */
    const char *file;
    int line;
};

/* one listening address, shared by the servers that listen on it */
typedef struct {
    zg_addr_t addr;
    zg_server_conf_t **servers;
    int nservers;
    zg_server_conf_t *default_server; /* first, or the one with `default_server` */
    int fd;               /* opened by the master; -1 before */
    unsigned ssl : 1;     /* `listen ... ssl` */
    unsigned http2 : 1;   /* `listen ... http2`: accepted, HTTP/1.1 is served */
    const char *file;     /* the first listen of the address */
    int line;
    void *ssl_ctx;        /* SSL_CTX of the default server (set by the ssl module) */
} zg_listen_t;

typedef struct zg_http_core_srv_s zg_http_core_srv_t; /* private: a server being read */

typedef struct {
    void **http_conf;     /* every module's http-level conf */
    zg_server_conf_t *servers;
    int nservers;
    zg_listen_t *listens;
    int nlistens;
    /* private: while parsing */
    zg_http_core_srv_t **srvs;
    int nsrvs;
    int http_seen;
} zg_http_core_main_conf_t;

/* settings valid at http, server and location level (merged: none unset) */
typedef struct {
    zg_msec_t client_header_timeout; /* 60000 */
    zg_msec_t client_body_timeout;   /* 60000 */
    zg_msec_t send_timeout;          /* 60000: a client that reads nothing for so long is closed */
    zg_msec_t keepalive_timeout;     /* 75000; 0 disables keep-alive */
    int64_t client_max_body_size;    /* 1m; 0 = unlimited */
    int large_header_buffers;        /* large_client_header_buffers 4 8k */
    int64_t large_header_size;
    int satisfy;                     /* ZG_SATISFY_ALL: how the access phase's answers combine */
    /* how a head is read (http and server level; the default server's apply) */
    int max_headers;                 /* client_max_headers 128 (zonegate) */
    int merge_slashes;               /* on */
    int underscores_in_headers;      /* off */
    int ignore_invalid_headers;      /* on */
    /* location level only */
    zg_phase_handler_pt handler;     /* content handler; NULL = 404 */
    unsigned has_handler : 1;        /* a handler or `return` is set */
    int return_code;                 /* `return`; 0 = none */
    zg_cv_t *return_text;            /* body, or the Location for 301/302/303/307/308 */
} zg_http_core_loc_conf_t;

extern zg_module_t zg_http_core_module;

#define zg_http_core_main_conf(conf)                                                   \
    ((zg_http_core_main_conf_t *)zg_main_conf_of(conf, zg_http_core_module))
#define zg_http_core_loc_conf(confs)                                                   \
    ((zg_http_core_loc_conf_t *)zg_conf_module(confs, zg_http_core_module))

/* Sets the content handler of the location being read (proxy_pass, slab_stat, ...);
 * a second handler in one location is a "duplicate" error. */
int zg_http_core_set_handler(zg_cf_t *cf, zg_phase_handler_pt handler);

/* server for a Host on a listen address (exact name, then the default server) */
zg_server_conf_t *zg_http_find_server(const zg_listen_t *ls, const char *host, size_t len);
/* location for a path: an exact match first, else the longest matching prefix; NULL = none */
zg_location_t *zg_http_find_location(const zg_server_conf_t *srv, const char *path,
                                     size_t len);

#endif
