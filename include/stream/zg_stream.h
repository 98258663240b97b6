/* zg_stream.h — the stream (TCP) core: the stream block, its servers and listen
 * addresses, and the life of one session on a worker's loop:
 *   accept -> preaccess (limit_req, limit_conn) -> access (allow/deny)
 *          -> ssl (the TLS handshake) -> content (proxy_pass) -> finalize (release, log) -> free.
 * The content handler and the modules own their own handles; they keep the session
 * alive with zg_stream_ref and let it go with zg_stream_unref. */
#ifndef ZG_STREAM_H
#define ZG_STREAM_H

#include <uv.h>

#include "zg_conf.h"
#include "zg_queue.h"
#include "zg_vars.h"

typedef struct {
    void **conf;                   /* every module's server-level conf, merged from stream */
    zg_stream_handler_pt handler;  /* content handler (proxy_pass); NULL = none */
    const char *file;
    int line;
} zg_stream_server_t;

/* listen ADDR:PORT [backlog=N] [so_keepalive=on] — one server per address */
typedef struct {
    zg_addr_t addr;
    zg_stream_server_t *server;
    int backlog;                   /* 511, as nginx */
    unsigned so_keepalive : 1;
    unsigned proxy_protocol : 1;
    unsigned ssl : 1;              /* listen ... ssl */
    void *ssl_ctx;                 /* its server's SSL_CTX (set by the ssl module) */
    int fd;                        /* opened by the master; -1 before */
    const char *file;
    int line;
} zg_stream_listen_t;

/* set_real_ip_from CIDR */
typedef struct {
    int family;                       /* AF_INET, AF_INET6 */
    unsigned char addr[16], mask[16];
} zg_stream_cidr_t;

/* stream core settings (stream and server level) */
typedef struct {
    zg_msec_t proxy_protocol_timeout; /* 30s: to read a PROXY header */
    zg_stream_cidr_t *real_ip_from;   /* peers whose PROXY header names the client */
    int nreal_ip_from;                /* -1 = unset */
} zg_stream_core_conf_t;

typedef struct {
    void **stream_conf;            /* every module's stream-level conf */
    zg_stream_server_t **servers;
    int nservers;
    zg_stream_listen_t *listens;
    int nlistens;
    int seen;
} zg_stream_core_main_conf_t;

/* nginx's stream statuses ($status) */
#define ZG_STREAM_OK 200
#define ZG_STREAM_BAD_REQUEST 400
#define ZG_STREAM_FORBIDDEN 403
#define ZG_STREAM_INTERNAL_SERVER_ERROR 500
#define ZG_STREAM_BAD_GATEWAY 502
#define ZG_STREAM_SERVICE_UNAVAILABLE 503

struct zg_stream_session_s {
    uv_tcp_t tcp;                  /* the client; first member, its data is the session */
    zg_worker_t *w;
    uv_loop_t *loop;
    zg_stream_listen_t *ls;
    zg_stream_server_t *srv;
    struct sockaddr_storage peer;  /* the client's address */
    struct sockaddr_storage local; /* the address the client connected to */
    /* listen ... proxy_protocol: the header as read, and what followed it */
    unsigned char *pp_buf;
    size_t pp_len;
    uv_timer_t *pp_timer;
    const unsigned char *preread;  /* bytes from the client after the header, to be sent on */
    size_t preread_len;
    char pp_addr[108];             /* $proxy_protocol_addr (ZG_PP_V1_MAX + 1) */
    struct zg_tls_s *tls;          /* listen ... ssl: the TLS connection (zg_tls.h) */
    zg_var_ctx_t vars;             /* what variables read: remote, limit statuses, ... */
    uint64_t serial;
    zg_msec_t start;               /* zg_time_msec() at accept */
    int status;                    /* $status, 200 until something else happens */
    uint64_t bytes_received;       /* from the client */
    uint64_t bytes_sent;           /* to the client */
    void *ctx[ZG_MAX_MODULES];     /* each module's state: malloc'd, freed with the session */
    zg_queue_t link;               /* in the stream core's list of sessions */
    int refs;                      /* the client handle and the modules' handles */
    int phase;                     /* ZG_STREAM_PHASE_* being run */
    int mod;                       /* the next module whose handler runs in it */
    unsigned finalized : 1;
};

extern zg_module_t zg_stream_core_module;

#define zg_stream_core_main_conf(conf)                                                 \
    ((zg_stream_core_main_conf_t *)zg_main_conf_of(conf, zg_stream_core_module))
#define zg_stream_conf(s, m) ((s)->srv->conf[(m).index])

/* Sets the content handler of the stream server being read (proxy_pass); a second
 * one is a "duplicate" error. */
int zg_stream_set_handler(zg_cf_t *cf, zg_stream_handler_pt handler);

/* Goes on with the phases after a handler returned ZG_AGAIN. */
void zg_stream_resume(zg_stream_session_t *s);

/* Ends the session with status (the first status set stays): the modules'
 * stream_release and stream_log hooks run once, the client is closed; the memory
 * goes when the last reference is given back.  Safe to call more than once. */
void zg_stream_finalize(zg_stream_session_t *s, int status);

/* a module's handle of the session is open / was closed (its close callback) */
void zg_stream_ref(zg_stream_session_t *s);
void zg_stream_unref(zg_stream_session_t *s);

/* the client's address text ($remote_addr) */
const char *zg_stream_addr_text(zg_stream_session_t *s, char *buf, size_t len);

#endif
