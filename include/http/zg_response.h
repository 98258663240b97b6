/* zg_response.h — the response pipeline: nginx's header and body filters.
 *
 * A content handler (the proxy, a local answer, and next static files and the
 * cache) describes its response head in a zg_resp_t and calls zg_response_head():
 * the modules whose filter_on hook says they filter responses of the request's
 * location see the head first, in module order (zg_modules.c), through their
 * header_filter hook, and may change it: status, headers, the length; a module
 * that has to see or change the body turns its body filter on for the request
 * (zg_response_filter_body).  Then the head is written to the client.
 *
 * The body goes through zg_response_body(): each body filter turned on, in module
 * order, gets the bytes and hands what it makes to the next with
 * zg_response_next(); after the last the bytes go to the client, in chunks when
 * the length is unknown and the client speaks HTTP/1.1 (else until close).
 * `last` marks the end of the body (p may be NULL then): a filter flushes what
 * it holds and passes `last` on.  A filter that keeps state for the request
 * allocates it in its request context and frees it in its release hook (it sets
 * r->holding); a module with a body filter has its release hook called only for
 * the requests that turned that filter on.
 *
 * When no module filters responses of a location — the usual case — none of this
 * runs: zg_response_filters() is 0 and the proxy and local answers write their
 * heads directly, as before (features that are off cost one load and a branch). */
#ifndef ZG_RESPONSE_H
#define ZG_RESPONSE_H

#include <stdint.h>

#include "zg_request.h"

typedef struct {
    zg_str_t name, value;
} zg_resp_header_t;

struct zg_resp_s {
    int status;
    zg_str_t reason;            /* empty: the standard text of status */
    zg_resp_header_t *h;        /* the header lines in order (no Content-Length, no
                                   hop-by-hop ones); memory of the request */
    int n, cap;
    int64_t content_length;     /* -1: unknown (a filter that changes the body sets it) */
    /* raw header lines ("Name: value\r\n"...) written after h, NULL = the modules'
     * header hooks' lines (add_header, RateLimit) are written there instead */
    const char *extra;
    const zg_str_t *accel_expires; /* the upstream's X-Accel-Expires (hidden from h), or
                                      NULL: for the cache's header filter */
    unsigned no_body : 1;       /* HEAD, 1xx, 204, 304: no body follows the head */
    unsigned from_upstream : 1; /* the proxy's (vs an answer zonegate makes) */
    unsigned keepalive : 1;     /* in: the connection may be kept; out: it will be */
    unsigned vary_ae : 1;       /* "Vary: Accept-Encoding" is in h (nginx's gzip_vary) */
};

/* 1 if some module filters the responses of the request's location (computed once
 * per location and process, from the modules' filter_on hooks) */
int zg_response_filters_compute(zg_request_t *r);
static inline int zg_response_filters(zg_request_t *r)
{
    int f = zg_http_core_loc_conf(r->loc_conf)->filters;
    return f ? f - 1 : zg_response_filters_compute(r);
}

/* headers: names compare case-insensitively; values and names must live as long as
 * the request (request memory: zg_var_alloc, config memory, or the upstream's head
 * buffer until zg_response_head returns).  get: the first, NULL if none; set:
 * replaces the first and drops the others, or adds; del: drops every one; add:
 * appends.  ZG_OK or ZG_ERROR (no memory). */
zg_resp_header_t *zg_resp_get(zg_resp_t *h, const char *name, size_t len);
int zg_resp_set(zg_request_t *r, zg_resp_t *h, const char *name, size_t nlen,
                const char *value, size_t vlen);
void zg_resp_del(zg_resp_t *h, const char *name, size_t len);
int zg_resp_add(zg_request_t *r, zg_resp_t *h, const char *name, size_t nlen,
                const char *value, size_t vlen);
/* a copy of s in request memory; NULL if none left */
char *zg_resp_dup(zg_request_t *r, const char *s, size_t n);

/* runs the header filters and writes the head; ZG_OK, or ZG_ERROR: a filter failed
 * (the caller answers 500 if nothing was sent: r->resp_started is still 0) */
int zg_response_head(zg_request_t *r, zg_resp_t *h);

/* a header filter turns its module's body filter on for the request */
void zg_response_filter_body(zg_request_t *r, const zg_module_t *m);

/* a piece of the body (last: the end of it) into the body filters */
void zg_response_body(zg_request_t *r, const char *p, size_t n, int last);
/* for module m's body filter: what it made, to the filters after it */
void zg_response_next(zg_request_t *r, const zg_module_t *m, const char *p, size_t n,
                      int last);

/* the release hooks of the body filters turned on for r (called when the request
 * gives back what it holds: a module with a body filter gets its release hook
 * called only then) */
void zg_response_release(zg_request_t *r);

/* A local answer (zg_request_respond's arguments) through the filters: the head and
 * the whole body are queued; the caller flushes and ends the response. */
void zg_response_local(zg_request_t *r, int status, const char *extra, const char *ctype,
                       const char *body, size_t len);

#endif
