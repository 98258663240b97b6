/* zg_conf.h — the parsed configuration: nginx syntax in, these structs out.
 * Everything hangs off one zg_conf_t and is freed with it.  Settings inherit
 * http -> server -> location (scalars when unset, lists when the level has none). */
#ifndef ZG_CONF_H
#define ZG_CONF_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "zg_core.h"
#include "zg_zone.h"

#define ZG_MAX_WORKERS 64 /* worker slots, both generations during a reload */
#define ZG_MAX_PEERS 256  /* servers in one upstream */

typedef struct zg_cv_s zg_cv_t; /* compiled "text with $variables" (zg_vars.h) */
typedef struct zg_log_format_s zg_log_format_t;
typedef struct zg_access_log_s zg_access_log_t;

typedef struct {
    struct sockaddr_storage sa;
    socklen_t socklen;
    char text[64]; /* "127.0.0.1:8080", "[::1]:80" */
} zg_addr_t;

/* upstream { server ...; } */
typedef struct {
    zg_addr_t addr;
    int weight;          /* default 1 */
    int max_fails;       /* default 1; 0 = never mark down */
    zg_msec_t fail_timeout; /* default 10000 */
    int max_conns;       /* 0 = unlimited */
    unsigned backup : 1;
    unsigned down : 1;
} zg_upstream_server_t;

typedef struct zg_upstream_conf_s zg_upstream_conf_t;
struct zg_upstream_conf_s {
    char name[64];
    zg_upstream_server_t *servers;
    int nservers;
    int keepalive;     /* idle upstream connections cached per worker; 0 = none */
    zg_zone_t *zone;   /* `zone NAME SIZE;` — shared peer state; NULL = per worker */
    unsigned implicit : 1; /* made from proxy_pass http://HOST:PORT */
    const char *file;
    int line;
    void *peers;       /* runtime state, owned by zg_upstream.c */
    void *pool;        /* this worker's idle keep-alive connections, owned by zg_proxy.c */
    zg_upstream_conf_t *next;
};

/* limit_req_zone KEY zone=NAME:SIZE rate=R [sync=redis://H:P[/DB]] [sync_interval=T] */
typedef struct {
    zg_zone_t *zone;
    zg_cv_t *key;
    char *key_text;      /* as written, e.g. "$binary_remote_addr": a reload must keep it */
    uint64_t rate;       /* requests per 1000 s: 1 corresponds to 0.001 r/s */
    char *rate_text;     /* "10r/s" */
    char *sync_url;      /* NULL = local only */
    char sync_host[256];
    int sync_port;
    int sync_db;
    zg_msec_t sync_interval; /* default 100 */
} zg_limit_req_zone_conf_t;

typedef struct {
    zg_limit_req_zone_conf_t *zone;
    uint64_t burst;      /* thousandths of a request (burst=5 -> 5000) */
    uint64_t delay;      /* thousandths; UINT64_MAX = nodelay; 0 = delay everything (default) */
} zg_limit_req_conf_t;

/* limit_conn_zone KEY zone=NAME:SIZE */
typedef struct {
    zg_zone_t *zone;
    zg_cv_t *key;
    char *key_text;
} zg_limit_conn_zone_conf_t;

typedef struct {
    zg_limit_conn_zone_conf_t *zone;
    uint32_t conn;
} zg_limit_conn_conf_t;

/* allow / deny */
typedef struct {
    int family;          /* AF_INET, AF_INET6, or 0 for "all" */
    unsigned char addr[16];
    unsigned char mask[16];
    unsigned deny : 1;
} zg_access_rule_t;

/* proxy_set_header NAME VALUE (an empty VALUE removes the header) */
typedef struct {
    zg_str_t name;
    zg_cv_t *value;
} zg_header_conf_t;

enum {
    ZG_HANDLER_NONE = 0, /* no handler: 404 */
    ZG_HANDLER_PROXY,
    ZG_HANDLER_RETURN,
    ZG_HANDLER_SLAB_STAT,
    ZG_HANDLER_METRICS,
};

/* proxy_next_upstream bits */
#define ZG_NEXT_ERROR 0x01
#define ZG_NEXT_TIMEOUT 0x02
#define ZG_NEXT_HTTP_502 0x04
#define ZG_NEXT_HTTP_503 0x08
#define ZG_NEXT_HTTP_504 0x10
#define ZG_NEXT_OFF 0x80

#define ZG_UNSET -1
#define ZG_UNSET_MSEC ((zg_msec_t)-1)
#define ZG_UNSET_SIZE ((int64_t)-1)
#define ZG_LIMIT_REQ_NODELAY UINT64_MAX

/* Settings valid at http, server and location level.  After loading, every
 * field of every location is merged (no ZG_UNSET left). */
typedef struct {
    /* proxy */
    zg_header_conf_t *set_headers;
    int nset_headers;            /* -1 = unset (inherit) */
    zg_msec_t proxy_connect_timeout; /* 60000 */
    zg_msec_t proxy_read_timeout;    /* 60000 */
    zg_msec_t proxy_send_timeout;    /* 60000 */
    int proxy_next_upstream;         /* ZG_NEXT_*; default ERROR|TIMEOUT */
    int proxy_next_upstream_tries;   /* 0 = unlimited */
    /* client */
    zg_msec_t client_header_timeout; /* 60000 */
    zg_msec_t client_body_timeout;   /* 60000 */
    zg_msec_t send_timeout;          /* 60000: a client that reads nothing for so long is closed */
    zg_msec_t keepalive_timeout;     /* 75000; 0 disables keep-alive */
    int64_t client_max_body_size;    /* 1m; 0 = unlimited */
    int large_header_buffers;        /* large_client_header_buffers 4 8k */
    int64_t large_header_size;
    /* limit_req */
    zg_limit_req_conf_t *limit_req;
    int nlimit_req;                  /* -1 = unset */
    int limit_req_status;            /* 503 */
    int limit_req_log_level;         /* ZG_LOG_ERR; delays logged one level lower */
    int limit_req_dry_run;           /* 0 */
    int limit_req_headers;           /* 0; zonegate extension */
    /* limit_conn */
    zg_limit_conn_conf_t *limit_conn;
    int nlimit_conn;
    int limit_conn_status;           /* 503 */
    int limit_conn_log_level;        /* ZG_LOG_ERR */
    int limit_conn_dry_run;
    /* access */
    zg_access_rule_t *rules;
    int nrules;                      /* -1 = unset */
    /* logs */
    zg_access_log_t *access_log;     /* NULL = off */
    int access_log_set;              /* 0 = inherit */
} zg_settings_t;

typedef struct zg_server_conf_s zg_server_conf_t;

typedef struct {
    char *path;           /* prefix, or the exact URI when exact */
    size_t path_len;
    unsigned exact : 1;
    int handler;          /* ZG_HANDLER_* */
    zg_upstream_conf_t *upstream;
    char *proxy_uri;      /* proxy_pass http://up/URI: replaces the matched prefix; NULL = pass URI as is */
    size_t proxy_uri_len;
    int return_code;
    zg_cv_t *return_text; /* body, or the Location for 301/302/303/307/308; NULL = none */
    zg_settings_t s;
    zg_server_conf_t *server;
    const char *file;
    int line;
} zg_location_t;

struct zg_server_conf_s {
    char **names;         /* server_name list; "" matches a missing Host */
    int nnames;
    zg_location_t *locations; /* in config order */
    int nlocations;
    zg_settings_t s;      /* server-level settings, merged from http */
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
} zg_listen_t;

typedef struct zg_conf_s {
    char *file;
    char *prefix;         /* directory of the main file: relative paths resolve here */
    int worker_processes; /* "auto" = number of CPUs */
    int worker_connections; /* 10240 */
    char *pid_file;       /* NULL = none */
    char *error_log_file; /* "stderr" or a path */
    int error_log_level;
    int daemon;           /* default off (foreground) */
    int worker_rlimit_nofile; /* 0 = unchanged */

    zg_settings_t http;   /* http-level settings */
    zg_server_conf_t *servers;
    int nservers;
    zg_listen_t *listens;
    int nlistens;
    zg_upstream_conf_t *upstreams;
    zg_limit_req_zone_conf_t **limit_req_zones;
    int nlimit_req_zones;
    zg_limit_conn_zone_conf_t **limit_conn_zones;
    int nlimit_conn_zones;
    zg_log_format_t *log_formats;
    zg_access_log_t *access_logs; /* every distinct open access log, for reopen */
    zg_zone_list_t zones;

    void *arena;          /* private: allocations of this config */
} zg_conf_t;

/* Reads FILE (and its includes) into a new configuration.  On error returns
 * NULL and writes one line to err, naming file, line and directive:
 *   unknown directive "foo" in /etc/zonegate.conf:12
 * Zones are declared (zg_zone_declare) but not mapped; access logs are not
 * opened.  Listen sockets are not opened. */
zg_conf_t *zg_conf_load(const char *file, char *err, size_t errlen);

/* Parses a configuration held in memory (tests, fuzzing); name is the "file" in errors. */
zg_conf_t *zg_conf_load_string(const char *name, const char *text, size_t len, char *err,
                               size_t errlen);

void zg_conf_free(zg_conf_t *conf);

/* allocation from the config's arena (zeroed; freed with the config) */
void *zg_conf_alloc(zg_conf_t *conf, size_t size);
char *zg_conf_strdup(zg_conf_t *conf, const char *s, size_t len);

/* "10k" -> 10240, "1m" ...; -1 on error */
int64_t zg_conf_parse_size(const char *s, size_t len);
/* "500ms" "10s" "1m" "2h" "1d", bare number = seconds; ZG_UNSET_MSEC on error */
zg_msec_t zg_conf_parse_time(const char *s, size_t len);
/* "127.0.0.1:8080", "localhost:80", "[::1]:81", "8080" (= 0.0.0.0:8080 for listen),
 * "*:80"; a name takes its first IPv4 address, else its first IPv6 one.  Without a
 * port, default_port (< 1 = a port is required).  ZG_OK, ZG_DECLINED (host not
 * found) or ZG_ERROR (bad syntax or port). */
int zg_conf_parse_addr(const char *s, size_t len, int default_port, zg_addr_t *out);

/* tests and fuzzing: when set, names other than "localhost" are not looked up
 * (they are "host not found") */
extern int zg_conf_no_resolve;

/* server for a Host on a listen address (exact name, then the default server) */
zg_server_conf_t *zg_conf_find_server(const zg_listen_t *ls, const char *host, size_t len);
/* location for a path: an exact match first, else the longest matching prefix; NULL = none */
zg_location_t *zg_conf_find_location(const zg_server_conf_t *srv, const char *path,
                                     size_t len);

#endif
