/* zg_request.h — one request through nginx's phases:
 *   find server -> server rewrite -> find location -> location rewrite (again
 *   after a rewrite changed the URI) -> preaccess (limit_req, limit_conn) -> access
 *   (allow/deny, auth_basic; satisfy all|any) -> the location's content handler ->
 *   finalize.
 * Modules register the phase handlers (zg_module_t.phase/handler, in the order of
 * zg_modules.c); the request core runs them and owns the one finalize path, which
 * runs exactly once whatever ends the request: it calls every module's release and
 * log hooks. */
#ifndef ZG_REQUEST_H
#define ZG_REQUEST_H

#include <uv.h>

#include "zg_http_core.h"
#include "zg_vars.h"
#include "zg_worker.h"

/* room for every module's zeroed per-request state (zg_modules_init checks it) */
#define ZG_REQUEST_CTX_MAX 512
/* room for the modules' extra response header lines (add_header, RateLimit) */
#define ZG_REQUEST_HEADERS_MAX 8192

/* what a content handler that keeps running (proxy) gets told by the request */
typedef struct {
    void (*body)(zg_request_t *r, const char *p, size_t n); /* a piece of the request body */
    void (*body_done)(zg_request_t *r);                    /* the request body is complete */
    void (*abort)(zg_request_t *r);   /* the request ends before the handler finished */
    void (*drained)(zg_request_t *r); /* the client took all queued output */
} zg_content_ops_t;

/* One per connection, reused by each of its requests (so a pointer to it stays valid
 * for as long as the connection's callbacks run); everything after `c`, the modules'
 * per-request state included (zg_modules_ctx_size bytes of mctx; not their scratch
 * memory behind the struct), is zeroed when a request starts.  A module that holds something for the request
 * sets `holding`, one that has response headers `want_headers`: the release and
 * header hooks only run then. */
struct zg_request_s {
    uv_timer_t sleep_timer;     /* zg_request_sleep; data = the connection */
    zg_regex_caps_t caps;       /* the last regex match's captures ($1..$9); not
                                   zeroed: caps.n = 0 when a request starts */
    zg_conn_t *c;
    zg_http_req_t *h;
    zg_server_conf_t *srv;
    zg_location_t *loc;
    void **loc_conf;            /* every module's conf: of loc, else of srv */
    zg_var_ctx_t ctx;
    const zg_content_ops_t *content; /* set while a content handler runs */
    int phase;                  /* next phase handler to run */
    int access_code;            /* satisfy any: the refusal so far (401 or 403), 0 = none */
    unsigned sleeping : 1;      /* suspended by zg_request_sleep */
    unsigned body_done : 1;     /* the client's request body fully read */
    unsigned resp_done : 1;     /* the response fully queued to the client */
    unsigned resp_started : 1;  /* response bytes were queued to the client */
    unsigned discard_body : 1;  /* answered locally: read and drop the body */
    unsigned keepalive : 1;     /* the connection may serve another request */
    unsigned finalized : 1;
    unsigned sent_continue : 1;
    unsigned headers_done : 1;  /* the modules' extra headers are in `extra` already */
    unsigned want_headers : 1;  /* a module has extra headers for the response */
    unsigned holding : 1;       /* a module holds something its release hook gives back */
    unsigned internal : 1;      /* an internal redirect (error_page): internal locations */
    unsigned located : 1;       /* the location was looked up (after the server rewrite) */
    unsigned uri_changed : 1;   /* a rewrite changed ctx.uri: find the location again */
    unsigned uri_rewritten : 1; /* ctx.uri/args are not the request's: the proxy sends them */
    unsigned invalid_location : 1; /* rewrite ... break: proxy_pass's URI is not applied */
    unsigned error_page : 1;    /* redirected by error_page once: no more (nginx's
                                   recursive_error_pages off) */
    unsigned resp_chunked : 1;  /* the body goes out in chunks (zg_response.c) */
    uint32_t body_filters;      /* the body filters turned on (zg_response.h) */
    int uri_changes;            /* rewrites with `last` and internal redirects (<= 10) */
    int err_status;             /* error_page's status for the final answer; 0 = its own */
    /* the modules' per-request state (zg_module_t.ctx_size), zeroed with the rest */
    max_align_t mctx[ZG_REQUEST_CTX_MAX / sizeof(max_align_t)];
};

/* a module's per-request state (zg_module_t.ctx_size bytes, zeroed per request) */
#define zg_request_ctx(r, m) ((void *)((char *)(r)->mctx + (m).ctx_offset))
/* a module's per-request memory (zg_module_t.scratch_size bytes behind the request,
 * not zeroed) */
#define zg_request_scratch(r, m) ((void *)((char *)((r) + 1) + (m).scratch_offset))
/* a module's conf for the request's location */
#define zg_request_conf(r, m) ((r)->loc_conf[(m).index])

/* Internal redirects (error_page): the request starts again from the server rewrite
 * with uri and args (in memory that lives as long as the request), method GET
 * (HEAD stays), internal locations allowed; or goes on at the named location's
 * rewrite phase.  At most 10 per request, then 500.  The request may be finished
 * when they return. */
void zg_request_internal_redirect(zg_request_t *r, const zg_str_t *uri, const zg_str_t *args);
void zg_request_named_location(zg_request_t *r, zg_location_t *loc);
/* The same for index and try_files (nginx's ngx_http_internal_redirect and named
 * location): the method stays, and error_page may still redirect the answer. */
void zg_request_uri_redirect(zg_request_t *r, const zg_str_t *uri, const zg_str_t *args);
void zg_request_uri_named(zg_request_t *r, zg_location_t *loc);
/* Writes "http[s]://HOST[:PORT]" (HOST the request's, else the address it came to;
 * PORT unless the scheme's default, as nginx's absolute_redirect and port_in_redirect)
 * into buf, NUL-terminated; returns its length (at most cap - 1). */
size_t zg_request_origin(zg_request_t *r, char *buf, size_t cap);
/* Answers status with "Location: http[s]://HOST[:PORT]PATH[?ARGS]" (nginx's
 * absolute_redirect and port_in_redirect), PATH %-escaped if escape. */
void zg_request_redirect_to(zg_request_t *r, int status, const char *path, size_t len,
                            int escape);

/* Puts the error log of the request's http/server/location level (error_log) in
 * scope, for a message logged outside the phases (a proxy's upstream error); returns
 * the log that was in scope, to be put back with zg_log_scope. */
static inline const zg_log_target_t *zg_request_log_scope(zg_request_t *r)
{
    const zg_http_core_loc_conf_t *clcf = zg_http_core_loc_conf(r->loc_conf);

    return clcf->error_log != NULL ? zg_log_scope(clcf->error_log) : zg_log_cur;
}

/* called by the connection when a head arrived */
void zg_request_start(zg_conn_t *c, zg_http_req_t *h);
/* body piece / end of the client's request */
void zg_request_body(zg_request_t *r, const char *p, size_t n);
void zg_request_body_done(zg_request_t *r);
/* the client connection is going away: end the request now */
void zg_request_abort(zg_request_t *r);
/* the client's request body stalled (client_body_timeout): 408 unless answered;
 * returns 0 if the request took care of it, 1 if the connection should close */
int zg_request_timeout(zg_request_t *r);
/* the client sent something invalid mid-request: status unless answered */
void zg_request_bad(zg_request_t *r, int status);
/* the client took all queued output */
void zg_request_drained(zg_request_t *r);
/* Closes the request memory's handles (the connection is closing). */
void zg_request_close(zg_request_t *r, uv_close_cb cb);
/* 1 while the request is suspended (zg_request_sleep) */
int zg_request_sleeping(const zg_request_t *r);

/* For a phase handler: suspends the request for ms (reading from the client
 * stops), then goes on with the next phase handler.  Returns ZG_AGAIN. */
int zg_request_sleep(zg_request_t *r, zg_msec_t ms);

/* For an access handler that answered ZG_AGAIN (it waits for something, e.g. an
 * auth_request subrequest): its answer once known, as it would have returned it
 * (ZG_OK, ZG_DECLINED, 401, 403; ZG_ERROR = 500); the phases go on from there. */
void zg_request_access_done(zg_request_t *r, int rc);

/* Queues a complete local response (status page, or body) and ends the response. */
void zg_request_respond(zg_request_t *r, int status, const char *extra,
                        const char *ctype, const char *body, size_t len);
/* The response was fully queued (proxy or local): finalize when the body is read. */
void zg_request_response_done(zg_request_t *r, int keepalive);
/* The response cannot be completed: close the client connection after what is queued. */
void zg_request_response_abort(zg_request_t *r);
void zg_request_release_hooks(zg_request_t *r);
void zg_request_headers_add(zg_request_t *r, zg_outq_t *q);

/* Gives back what the request holds (every module's release hook) now; finalize
 * does it too. */
static inline void zg_request_release(zg_request_t *r)
{
    if (r->holding) {
        zg_request_release_hooks(r);
    }
}

/* Adds the modules' extra header lines (limit_req_headers) to a head being written. */
static inline void zg_request_extra_headers(zg_request_t *r, zg_outq_t *q)
{
    if (r->want_headers) {
        zg_request_headers_add(r, q);
    }
}

#endif
