/* zg_proxy_sub.h — subrequests through the proxy, for what auth_request needs (as
 * nginx's ngx_http_subrequest with a header-only answer): a GET of URI ("/path" or
 * "/path?args") in a location of the request's server, sent with the request's
 * headers and no body, to the location's proxy_pass upstream (its URI, proxy_set_header,
 * timeouts and proxy_next_upstream error|timeout apply); the answer is the status and
 * headers of the response, whose body is not read.  A location whose first rewrite
 * directive is `return CODE` answers CODE without an upstream.  Unlike nginx, the subrequest's location runs no
 * phase handlers of its own (rewrite, limits, access): it is used for its proxy_pass
 * (or return) only; any other location answers 500.  With `keepalive N` in the
 * upstream, a connection whose answer was complete and reusable waits idle for the
 * next subrequest to its peer (N per upstream and worker, 60 s); else each
 * subrequest opens a new one ("Connection: close"). */
#ifndef ZG_PROXY_SUB_H
#define ZG_PROXY_SUB_H

#include "zg_conf.h"
#include "zg_vars.h"
#include "zg_proxy.h"
#include "zg_upstream.h"

typedef struct zg_proxy_sub_s zg_proxy_sub_t;

/* what the subrequest got; memory of the request (lives until it is finalized) */
typedef struct {
    int status;                        /* the upstream's; else 502 (no peer answered, an
                                          invalid answer), 504 (timed out), 404 (no
                                          location), 500 (no proxy_pass, no memory) */
    const zg_str_t *names, *values;    /* the response's headers ($upstream_http_NAME) */
    size_t nhdrs;
    zg_str_t upstream_addr;            /* "unix:/run/auth.sock", "10.0.0.1:80, 10.0.0.2:80" */
    zg_str_t upstream_status;          /* "502, 200" */
    zg_str_t upstream_response_time;   /* "0.002" */
} zg_proxy_sub_result_t;

/* called once with the result, never from inside zg_proxy_sub_start */
typedef void (*zg_proxy_sub_done_pt)(zg_request_t *r, void *data,
                                     const zg_proxy_sub_result_t *res);

/* Starts a subrequest of r; NULL = no memory (nothing started). */
zg_proxy_sub_t *zg_proxy_sub_start(zg_request_t *r, const zg_str_t *uri,
                                   zg_proxy_sub_done_pt done, void *data);
/* Ends a subrequest whose done has not been called (the request is going away);
 * done is then never called. */
void zg_proxy_sub_cancel(zg_proxy_sub_t *sr);
/* The upstream of URI's location and the head of the GET a subrequest would send it
 * (for a request made without a client: the cache's background update); ZG_OK, or
 * the status the subrequest would answer (head then untouched). */
int zg_proxy_sub_head(zg_request_t *r, const zg_str_t *uri, zg_upstream_conf_t **u,
                      const zg_proxy_loc_conf_t **plcf, zg_buf_t *head);
/* Closes this worker's idle subrequest connections (graceful stop, exit). */
void zg_proxy_sub_pool_close(void);

#endif
