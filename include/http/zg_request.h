/* zg_request.h — one request through the pipeline, in nginx's phase order:
 *   find server/location -> `return` -> limit_req -> limit_conn -> allow/deny ->
 *   handler (slab_stat, metrics, proxy) -> finalize.
 * Finalize runs exactly once whatever ends the request; it gives back the
 * limit_conn slots, reports the peer, writes the access log. */
#ifndef ZG_REQUEST_H
#define ZG_REQUEST_H

#include <uv.h>

#include "zg_limit_conn.h"
#include "zg_limit_req.h"
#include "zg_vars.h"
#include "zg_worker.h"

#define ZG_MAX_LIMITS 16

typedef struct zg_proxy_s zg_proxy_t;

/* One per connection, reused by each of its requests (so a pointer to it stays valid
 * for as long as the connection's callbacks run); everything after `c` is zeroed
 * when a request starts. */
struct zg_request_s {
    uv_timer_t delay_timer;     /* data = the connection */
    zg_conn_t *c;
    zg_http_req_t *h;
    zg_server_conf_t *srv;
    zg_location_t *loc;
    zg_var_ctx_t ctx;
    zg_limit_req_result_t lr;
    zg_limit_conn_hold_t holds[ZG_MAX_LIMITS];
    int nholds;
    zg_proxy_t *proxy;          /* set while proxying */
    char upstream_addr[256], upstream_status[64], upstream_time[64];
    unsigned delayed : 1;       /* waiting on delay_timer */
    unsigned body_done : 1;     /* the client's request body fully read */
    unsigned resp_done : 1;     /* the response fully queued to the client */
    unsigned resp_started : 1;  /* response bytes were queued to the client */
    unsigned discard_body : 1;  /* answered locally: read and drop the body */
    unsigned keepalive : 1;     /* the connection may serve another request */
    unsigned finalized : 1;
    unsigned sent_continue : 1;
    unsigned rl_done : 1;       /* RateLimit headers already in the extra headers */
};

/* called by the connection when a head arrived */
void zg_request_start(zg_conn_t *c, zg_http_req_t *h);
/* body piece / end of the client's request */
void zg_request_body(zg_request_t *r, const char *p, size_t n);
void zg_request_body_done(zg_request_t *r);
/* the client connection is going away: end the request now */
void zg_request_abort(zg_request_t *r);

/* Queues a complete local response (status page, or body) and ends the response. */
void zg_request_respond(zg_request_t *r, int status, const char *extra,
                        const char *ctype, const char *body, size_t len);
/* The response was fully queued (proxy or local): finalize when the body is read. */
void zg_request_response_done(zg_request_t *r, int keepalive);
/* The response cannot be completed: close the client connection after what is queued. */
void zg_request_response_abort(zg_request_t *r);
/* Gives back the request's limit_conn slots now (finalize does it too, once). */
void zg_request_release(zg_request_t *r);
/* Adds limit_req_headers (RateLimit-*) to the head being written, if enabled. */
void zg_request_ratelimit_headers(zg_request_t *r, zg_outq_t *q);

#endif
