/* zg_http_core.h — the core http module: the http block, servers, listen
 * addresses, locations, `return`, client timeouts and limits; and the lookup of a
 * request's server and location. */
#ifndef ZG_HTTP_CORE_H
#define ZG_HTTP_CORE_H

#include "zg_conf.h"
#include "zg_log.h"
#include "zg_regex.h"

typedef struct zg_server_conf_s zg_server_conf_t;
typedef struct zg_location_s zg_location_t;

/* satisfy all|any */
#define ZG_SATISFY_ALL 0
#define ZG_SATISFY_ANY 1

/* `location [=|^~|~|~*] PATH { ... }` and `location @NAME { ... }` */
struct zg_location_s {
    char *path;           /* prefix, the exact URI, the regex, or "@name" */
    size_t path_len;
    unsigned exact : 1;   /* = */
    unsigned noregex : 1; /* ^~: a longest-prefix match skips the regexes */
    unsigned named : 1;   /* @name: only reached internally (zg_http_core_find_named) */
    unsigned auto_redirect : 1; /* proxy_pass in "/x/": a request for "/x" gets a 301 */
    zg_regex_t *regex;    /* ~ and ~*; NULL for the others */
    zg_location_t *locations; /* nested locations, in config order */
    int nlocations;
    zg_location_t *parent; /* the enclosing location; NULL at server level */
    void **loc_conf;      /* every module's conf of this location, merged */
    zg_server_conf_t *server;
    const char *file;
    int line;
};

struct zg_server_conf_s {
    char **names;         /* server_name list as written (lowercased); "" matches a
                             missing Host; names[0] is $server_name */
    int nnames;
    size_t name0_len;     /* strlen(names[0]) */
    zg_location_t *locations; /* server-level locations, in config order (not named) */
    int nlocations;
    zg_location_t *named; /* @name locations */
    int nnamed;
    void **loc_conf;      /* every module's server-level conf, merged from http */
    const char *file;
    int line;
};

#define ZG_LISTEN_MAX_FDS (ZG_MAX_WORKERS / 2) /* worker_processes' limit */

/* a server name of a listen address: an exact name, or a wildcard's fixed part */
typedef struct {
    const char *name;     /* "example.com"; ".example.com" for *.example.com and
                             .example.com; "www.example." for www.example.* */
    size_t len;
    unsigned bare : 1;    /* .example.com: "example.com" matches too */
    zg_server_conf_t *srv;
} zg_server_name_t;

typedef struct {
    zg_regex_t *regex;
    zg_server_conf_t *srv;
} zg_server_regex_t;

/* one listening address, shared by the servers that listen on it */
typedef struct {
    zg_addr_t addr;
    zg_server_conf_t **servers;
    int nservers;
    zg_server_conf_t *default_server; /* first, or the one with `default_server` */
    /* the names of its servers, by kind; the first of a name wins */
    zg_server_name_t *exact;
    int nexact;
    zg_server_name_t *head; /* leading wildcards, longest first */
    int nhead;
    zg_server_name_t *tail; /* trailing wildcards, longest first */
    int ntail;
    zg_server_regex_t *regex; /* in config order */
    int nregex;
    /* Sockets opened by the master (-1 before): one SO_REUSEPORT socket per worker
     * index, so that the kernel spreads connections evenly over the workers.  A
     * socket belongs to a worker index, not to a process: the worker that replaces
     * one (respawn, reload) accepts on the same socket. */
    int fds[ZG_LISTEN_MAX_FDS];
    int nfds;
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
    zg_log_target_t *error_logs;     /* every error_log of http/server/location */
    /* private: while parsing */
    zg_http_core_srv_t **srvs;
    int nsrvs;
    void *cur_block;      /* the server or location being read */
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
    int tcp_nodelay;                 /* on: TCP_NODELAY (the default server's at accept,
                                        the location's once it is found) */
    int server_tokens;               /* ZG_TOKENS_ON: "Server: zonegate/VERSION" */
    zg_msec_t keepalive_header;      /* keepalive_timeout's 2nd: "Keep-Alive: timeout=N";
                                        0 = none */
    int keepalive_requests;          /* 1000: a connection closes after so many */
    /* location level only */
    zg_phase_handler_pt handler;     /* content handler; NULL = 404 */
    unsigned has_handler : 1;        /* a handler or `return` is set */
    int return_code;                 /* `return`; 0 = none */
    zg_cv_t *return_text;            /* body, or the Location for 301/302/303/307/308 */
    int internal;                    /* `internal`: 404 for a request from a client */
    zg_log_target_t *error_log;      /* error_log of this level; NULL = the main one */
    int error_log_set;
    /* set by the first response of a process (zg_response_filters): 1 = no module
     * filters responses here, 2 = some do; 0 = not known yet */
    int filters;
} zg_http_core_loc_conf_t;

extern zg_module_t zg_http_core_module;

#define zg_http_core_main_conf(conf)                                                   \
    ((zg_http_core_main_conf_t *)zg_main_conf_of(conf, zg_http_core_module))
#define zg_http_core_loc_conf(confs)                                                   \
    ((zg_http_core_loc_conf_t *)zg_conf_module(confs, zg_http_core_module))

/* Sets the content handler of the location being read (proxy_pass, slab_stat, ...);
 * a second handler in one location is a "duplicate" error. */
int zg_http_core_set_handler(zg_cf_t *cf, zg_phase_handler_pt handler);
/* the same for a handler that passes requests on (proxy_pass): a location whose path
 * ends in "/" then redirects the path without it, as nginx's auto_redirect */
int zg_http_core_set_pass_handler(zg_cf_t *cf, zg_phase_handler_pt handler);

/* The server for a Host on a listen address, with nginx's priority: an exact name,
 * the longest leading wildcard (*.example.com, .example.com), the longest trailing
 * wildcard (www.example.*), the first regex (~...) in config order; none: the
 * default server.  A ":port" suffix of host is ignored.  A regex that matches
 * leaves its captures in caps (may be NULL). */
zg_server_conf_t *zg_http_find_server(const zg_listen_t *ls, const char *host, size_t len,
                                      zg_regex_caps_t *caps);
/* The location for a path, in nginx's order: an exact (=) match; else the longest
 * prefix (looking into its nested locations); then, unless that prefix is ^~, the
 * regex locations (~, ~*) in config order — the first match wins (and its nested
 * locations are looked into); else the longest prefix.  NULL = none.  A regex
 * location that matches leaves its captures ($1..$9) in caps (may be NULL). */
zg_location_t *zg_http_find_location(const zg_server_conf_t *srv, const char *path,
                                     size_t len, zg_regex_caps_t *caps);
/* The same, with nginx's auto redirect: when no location has the path itself and one
 * that ends in "/" is the path plus "/" and proxies (auto_redirect), *redirect is set
 * to 1 and that location returned: the request gets a 301 to it, no regex is tried. */
zg_location_t *zg_http_core_find_location(const zg_server_conf_t *srv, const char *path,
                                          size_t len, zg_regex_caps_t *caps, int *redirect);
/* The named location "@name" of srv (name with or without its '@'); NULL = none.
 * For internal redirects: error_page, try_files. */
zg_location_t *zg_http_core_find_named(const zg_server_conf_t *srv, const char *name,
                                       size_t len);

/* server_tokens off|on|build (build shows as on: zonegate has no build name) */
#define ZG_TOKENS_OFF 0
#define ZG_TOKENS_ON 1
#define ZG_TOKENS_BUILD 2
static inline zg_str_t zg_http_server_token(const zg_http_core_loc_conf_t *c)
{
    zg_str_t s = {8, "zonegate"};
    if (c->server_tokens != ZG_TOKENS_OFF) {
        s.data = "zonegate/" ZG_VERSION;
        s.len = sizeof("zonegate/" ZG_VERSION) - 1;
    }
    return s;
}

#endif
