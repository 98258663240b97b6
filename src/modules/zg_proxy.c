/* zg_proxy.c — one proxied request: pick a peer, connect (or reuse a kept-alive
 * connection), send the rewritten head and stream the body up, stream the response
 * down; on error or timeout go to the next peer while nothing was sent to the
 * client, else 502 / 504; give the connection back to the per-worker pool. */
#include "zg_proxy.h"
#include "zg_proxy_ignore.h"
#include "zg_proxy_shape.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <unistd.h>

#include "zg_access_log.h"
#include "zg_error_page.h"
#include "zg_limit_rate.h"
#include "zg_proxy_buffer.h"
#include "zg_log.h"
#include "zg_proc.h"
#include "zg_request.h"
#include "zg_response.h"
#include "zg_unix.h"
#include "zg_upstream.h"

#define ZG_PROXY_RETAIN (64 * 1024)   /* request body kept for a retry */
#define ZG_PROXY_HIGH (256 * 1024)    /* queued bytes that pause the other side */
#define ZG_PROXY_HEAD_MAX (64 * 1024) /* upstream response head */
#define ZG_PROXY_IDLE_MSEC 60000      /* idle kept-alive upstream connection */
/* idle connections beyond `keepalive N` are closed once idle this long (at most
 * ZG_PROXY_SURPLUS x N idle at any time): the responses of one burst return their
 * connections a moment before the clients' next requests want them again */
#define ZG_PROXY_TRIM_MSEC 1000
#define ZG_PROXY_SURPLUS 4
#define ZG_PROXY_KEEP_HEAD (16 * 1024) /* a recycled proxy keeps a head buffer up to this */

typedef struct zg_upconn_s zg_upconn_t;
typedef struct zg_proxy_s zg_proxy_t;

struct zg_upconn_s {
    uv_tcp_t tcp;
    zg_deadline_t timer;        /* connect / read timeout */
    uv_connect_t connect;
    zg_proxy_t *p;              /* owner; NULL while idle in the pool */
    zg_worker_t *w;
    zg_upstream_conf_t *u;
    int peer;
    zg_outq_t out;
    zg_http_resp_t *resp;
    zg_queue_t link;            /* in its upstream's idle LRU while idle */
    zg_queue_t plink;           /* in its peer's idle list while idle */
    uint64_t idle_since;        /* uv_now() when it went idle */
    zg_msec_t read_timeout;     /* re-armed by every read */
    uint64_t received;          /* response bytes on this use */
    uint64_t connect_start;     /* uv_hrtime() when connect() was called */
    int handles;
    unsigned connected : 1;
    unsigned closing : 1;
    unsigned reused : 1;        /* came from the pool */
    unsigned reading : 1;
    unsigned pooled : 1;        /* idle in the keep-alive pool */
};

/* the idle connections of one upstream in this worker */
typedef struct {
    zg_queue_t lru;             /* newest first */
    zg_queue_t *peer_idle;      /* per peer, newest first */
    int nidle;
    zg_queue_t link;            /* in the worker's list of pools */
} zg_upool_t;

typedef struct {
    zg_queue_t pools;
    uv_timer_t sweep;           /* closes connections idle for too long */
    uv_timer_t trim;            /* closes the surplus over keepalive N (lazily) */
} zg_proxy_pool_t;

struct zg_proxy_s {
    zg_str_t uri_var;           /* proxy_pass with variables: the target, sent as is */
    zg_request_t *r;
    zg_upstream_conf_t *u;
    zg_upstream_pick_t pick;
    zg_upconn_t *uc;
    char *head;
    size_t head_len, head_cap;
    zg_buf_t body;              /* body bytes (encoded for upstream) not yet dropped */
    zg_spool_t *spool;          /* proxy_buffering: what the client is not ready for */
    struct zg_proxy_rate_s *up_timer; /* proxy_limit_rate's pause; NULL = none yet */
    zg_spool_t *req_spool;      /* proxy_request_buffering: the body past
                                   client_body_buffer_size, in a temp file */
    int64_t req_sent;           /* of it sent up (again from 0 on a retry) */
    uint64_t up_rate;           /* proxy_limit_rate, bytes a second; 0 = none */
    uint64_t up_start;          /* uv_now() when the request went up */
    size_t body_off;            /* sent up to here */
    zg_msec_t attempt_start;
    int error_status;           /* 502 or 504 of the last failed attempt */
    unsigned body_done : 1;     /* the client's body is complete */
    unsigned body_end_sent : 1;
    unsigned body_overflow : 1; /* retained copy dropped: no retry after sending */
    unsigned chunked_up : 1;
    unsigned chunked_out : 1;
    unsigned resp_head_sent : 1;
    unsigned resp_keepalive : 1;/* the client may keep the connection */
    unsigned retried_stale : 1; /* a stale pooled connection was replaced once */
    unsigned client_paused : 1;
    unsigned up_paused : 1;
    unsigned done : 1;
    unsigned waiting_body : 1;  /* not connected yet: the body is being buffered */
    unsigned retry_status : 1;  /* this attempt's response asks for the next peer */
    unsigned filtered : 1;      /* the response goes through the filters (zg_response.h) */
    unsigned drop_body : 1;     /* the client's body is not sent (proxy_set_body,
                                   proxy_pass_request_body off) */
    unsigned head_up : 1;       /* the request sent up is a HEAD */
    unsigned accel_buffering : 2; /* X-Accel-Buffering: 0 none, 1 yes, 2 no */
    unsigned spooling : 1;      /* the client is behind: new bytes go to the spool */
    unsigned up_done : 1;       /* the upstream is let go: the spool drains to the client */
    unsigned up_limited : 1;    /* reading paused by proxy_limit_rate */
    unsigned req_buffering : 1; /* proxy_request_buffering: the whole body first */
    int intercept_status;       /* proxy_intercept_errors: the error_page for this status
                                   answers instead of the upstream's response */
};

/* per request: the proxy state while it runs (zeroed); the $upstream_* texts
 * (scratch, emptied when the proxy starts) */
typedef struct {
    zg_proxy_t *p;
} zg_proxy_ctx_t;

typedef struct {
    char upstream_addr[256], upstream_status[64], upstream_time[64];
} zg_proxy_scratch_t;

static const zg_content_ops_t zg_proxy_content_ops;

static zg_proxy_t *zg_proxy_of(zg_request_t *r)
{
    return ((zg_proxy_ctx_t *)zg_request_ctx(r, zg_proxy_module))->p;
}

static void zg_proxy_attach(zg_request_t *r, zg_proxy_t *p)
{
    ((zg_proxy_ctx_t *)zg_request_ctx(r, zg_proxy_module))->p = p;
    r->content = &zg_proxy_content_ops;
}

/* the request no longer talks to the proxy state */
static void zg_proxy_detach(zg_request_t *r)
{
    ((zg_proxy_ctx_t *)zg_request_ctx(r, zg_proxy_module))->p = NULL;
    r->content = NULL;
}

static void zg_proxy_connect(zg_proxy_t *p);
static void zg_proxy_fail(zg_proxy_t *p, int timeout, const char *what);
static void zg_upconn_read(zg_upconn_t *uc, int on);

/* ---- upstream connections ---- */

static void zg_upconn_free_cb(uv_handle_t *h)
{
    zg_upconn_t *uc = h->data;
    if (--uc->handles == 0) {
        zg_http_resp_destroy(uc->resp);
        zg_outq_free(&uc->out);
        free(uc);
    }
}

static void zg_upconn_close(zg_upconn_t *uc)
{
    if (uc->closing) {
        return;
    }
    uc->closing = 1;
    uc->p = NULL;
    uc->out.drained = NULL;
    uc->out.failed = NULL;
    uv_close((uv_handle_t *)&uc->timer.timer, zg_upconn_free_cb);
    uv_close((uv_handle_t *)&uc->tcp, zg_upconn_free_cb);
}

static void zg_pool_idle_close(zg_upconn_t *uc)
{
    zg_upool_t *up = uc->u->pool;
    zg_queue_remove(&uc->link);
    zg_queue_remove(&uc->plink);
    up->nidle--;
    uc->pooled = 0;
    zg_upconn_close(uc);
}

static void zg_pool_sweep(uv_timer_t *t)
{
    zg_proxy_pool_t *pool = t->data;
    uint64_t now = uv_now(t->loop);
    for (zg_queue_t *q = zg_queue_head(&pool->pools); q != zg_queue_sentinel(&pool->pools);
         q = zg_queue_next(q)) {
        zg_upool_t *up = zg_queue_data(q, zg_upool_t, link);
        while (!zg_queue_empty(&up->lru)) {
            zg_upconn_t *uc = zg_queue_data(zg_queue_last(&up->lru), zg_upconn_t, link);
            if (now - uc->idle_since < ZG_PROXY_IDLE_MSEC) {
                break;
            }
            zg_pool_idle_close(uc);
        }
    }
}

/* this worker's keep-alive pool (one worker per process) */
static zg_proxy_pool_t *zg_proxy_pool;

/* closes the idle connections over each upstream's keepalive N that have been idle
 * ZG_PROXY_TRIM_MSEC, least recently used first; runs again while a surplus is left */
static void zg_pool_trim(uv_timer_t *t)
{
    zg_proxy_pool_t *pool = t->data;
    uint64_t now = uv_now(t->loop), next = 0;

    for (zg_queue_t *q = zg_queue_head(&pool->pools); q != zg_queue_sentinel(&pool->pools);
         q = zg_queue_next(q)) {
        zg_upool_t *up = zg_queue_data(q, zg_upool_t, link);
        while (!zg_queue_empty(&up->lru)) {
            zg_upconn_t *uc = zg_queue_data(zg_queue_last(&up->lru), zg_upconn_t, link);
            if (up->nidle <= uc->u->keepalive) {
                break;
            }
            if (now - uc->idle_since < ZG_PROXY_TRIM_MSEC) {
                uint64_t d = uc->idle_since + ZG_PROXY_TRIM_MSEC - now;
                next = next == 0 ? d : zg_min(next, d);
                break;
            }
            zg_pool_idle_close(uc);
        }
    }
    if (next != 0) {
        uv_timer_start(t, zg_pool_trim, next, 0);
    }
}

static zg_upool_t *zg_pool_of(zg_upstream_conf_t *u)
{
    zg_proxy_pool_t *pool = zg_proxy_pool;
    if (u->pool == NULL) {
        zg_upool_t *up = calloc(1, sizeof(*up));
        if (up == NULL) {
            return NULL;
        }
        up->peer_idle = calloc((size_t)u->nservers, sizeof(zg_queue_t));
        if (up->peer_idle == NULL) {
            free(up);
            return NULL;
        }
        zg_queue_init(&up->lru);
        for (int i = 0; i < u->nservers; i++) {
            zg_queue_init(&up->peer_idle[i]);
        }
        zg_queue_insert_tail(&pool->pools, &up->link);
        u->pool = up;
    }
    return u->pool;
}

static void zg_pool_put(zg_upconn_t *uc)
{
    zg_upool_t *up;
    if (uc->w->quitting || uc->u->keepalive <= 0 || (up = zg_pool_of(uc->u)) == NULL) {
        zg_upconn_close(uc);
        return;
    }
    if (up->nidle >= uc->u->keepalive) {
        if (up->nidle >= ZG_PROXY_SURPLUS * uc->u->keepalive) {
            zg_pool_idle_close(zg_queue_data(zg_queue_last(&up->lru), zg_upconn_t, link));
        } else if (!uv_is_active((uv_handle_t *)&zg_proxy_pool->trim)) {
            uv_timer_start(&zg_proxy_pool->trim, zg_pool_trim, ZG_PROXY_TRIM_MSEC, 0);
        }
    }
    /* it keeps reading while idle (no epoll changes per request): the read
     * callback closes it if the upstream closes or sends anything */
    uc->p = NULL;
    uc->pooled = 1;
    uc->idle_since = uv_now(uc->w->loop);
    zg_upconn_read(uc, 1);
    zg_queue_insert_head(&up->lru, &uc->link);
    zg_queue_insert_head(&up->peer_idle[uc->peer], &uc->plink);
    up->nidle++;
}

static zg_upconn_t *zg_pool_get(zg_upstream_conf_t *u, int peer)
{
    zg_upool_t *up = u->pool;
    if (up == NULL || zg_queue_empty(&up->peer_idle[peer])) {
        return NULL;
    }
    zg_upconn_t *uc = zg_queue_data(zg_queue_head(&up->peer_idle[peer]), zg_upconn_t, plink);
    zg_queue_remove(&uc->link);
    zg_queue_remove(&uc->plink);
    up->nidle--;
    uc->pooled = 0;
    uc->reused = 1;
    return uc;
}

static int zg_proxy_pool_init(zg_worker_t *w)
{
    zg_proxy_pool_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL) {
        return ZG_ERROR;
    }
    zg_queue_init(&pool->pools);
    uv_timer_init(w->loop, &pool->sweep);
    pool->sweep.data = pool;
    uv_timer_start(&pool->sweep, zg_pool_sweep, 5000, 5000);
    uv_unref((uv_handle_t *)&pool->sweep);
    uv_timer_init(w->loop, &pool->trim);
    pool->trim.data = pool;
    uv_unref((uv_handle_t *)&pool->trim);
    zg_proxy_pool = pool;
    return ZG_OK;
}

static void zg_proxy_pool_close(zg_worker_t *w)
{
    zg_proxy_pool_t *pool = zg_proxy_pool;

    (void)w;
    if (pool == NULL) {
        return;
    }
    uv_timer_stop(&pool->trim);
    for (zg_queue_t *q = zg_queue_head(&pool->pools); q != zg_queue_sentinel(&pool->pools);
         q = zg_queue_next(q)) {
        zg_upool_t *up = zg_queue_data(q, zg_upool_t, link);
        while (!zg_queue_empty(&up->lru)) {
            zg_pool_idle_close(zg_queue_data(zg_queue_head(&up->lru), zg_upconn_t, link));
        }
    }
}

/* ---- the request head for the upstream ---- */

/* a Connection value that names no other header ("keep-alive", "close") */
static int zg_proxy_plain_connection(const zg_str_t *v)
{
    zg_str_t ka = {10, "keep-alive"}, cl = {5, "close"};
    return (v->len == 10 && zg_http_name_eq(&ka, v->data, v->len)) ||
           (v->len == 5 && zg_http_name_eq(&cl, v->data, v->len));
}

/* X-Accel-Limit-Rate and X-Accel-Buffering (taken, not passed on, as nginx);
 * 1 = not passed on */
static int zg_proxy_accel(zg_proxy_t *p, const zg_str_t *n, const zg_str_t *v)
{
    /* proxy_ignore_headers turns the processing off; the header stays hidden */
    if (n->len == 18 && zg_http_name_eq(n, "x-accel-limit-rate", 18)) {
        if (!(zg_proxy_ignore(p->r->loc_conf) & ZG_IGNORE_X_ACCEL_LIMIT_RATE)) {
            zg_limit_rate_accel(p->r, v->data, v->len);
        }
        return 1;
    }
    if (n->len == 17 && zg_http_name_eq(n, "x-accel-buffering", 17)) {
        if (zg_proxy_ignore(p->r->loc_conf) & ZG_IGNORE_X_ACCEL_BUFFERING) {
            return 1;
        }
        if (v->len == 3 && strncasecmp(v->data, "yes", 3) == 0) {
            p->accel_buffering = 1;
        } else if (v->len == 2 && strncasecmp(v->data, "no", 2) == 0) {
            p->accel_buffering = 2;
        }
        return 1;
    }
    return 0;
}

/* a response header the client does not get: hop-by-hop, X-Accel-* zonegate takes */
static inline int zg_proxy_drop_header(zg_proxy_t *p, const zg_str_t *n, const zg_str_t *v)
{
    if (n->len >= 17 && n->len <= 18 && (n->data[0] | 0x20) == 'x') {
        return zg_proxy_accel(p, n, v);
    }
    return zg_http_hop_by_hop(n);
}

static int zg_proxy_token_in(const zg_str_t *list, const zg_str_t *name)
{
    const char *p = list->data, *end = list->data + list->len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }
        const char *s = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t') {
            p++;
        }
        zg_str_t tok = {(size_t)(p - s), s};
        if (tok.len && zg_http_name_eq(name, tok.data, tok.len)) {
            return 1;
        }
    }
    return 0;
}

static int zg_proxy_build_head(zg_proxy_t *p)
{
    zg_request_t *r = p->r;
    zg_http_req_t *h = r->h;
    zg_proxy_loc_conf_t *s = zg_proxy_loc_conf(r->loc_conf);
    zg_proxy_shape_loc_conf_t *sc = zg_proxy_shape_loc_conf(r->loc_conf);
    zg_outq_t q;
    char tmp[4096];
    zg_outq_init(&q, NULL, NULL);
    q.b.data = p->head;         /* reuse the buffer of a recycled proxy */
    q.b.cap = p->head_cap;

    zg_str_t method = zg_proxy_shape_method(r, sc); /* GET after error_page */
    zg_outq_append(&q, method.data, method.len);
    /* the answer to a HEAD has no body: the one sent decides (proxy_method) */
    p->head_up = sc->method != NULL ? method.len == 4 && memcmp(method.data, "HEAD", 4) == 0
                                    : r->h->head;
    zg_outq_append(&q, " ", 1);
    if (p->uri_var.data != NULL) {
        /* as nginx: a URI with variables replaces the request's, args and all */
        zg_outq_append(&q, p->uri_var.data, p->uri_var.len);
    } else if (s->uri && !r->invalid_location) {
        /* as nginx: the normalised path with the location's prefix replaced,
         * escaped again if it was sent escaped (a decoded '?' stays in the path) */
        const zg_str_t *path = &r->ctx.uri;
        size_t skip = zg_min(r->loc->path_len, path->len);
        const char *rest = path->data + skip;
        size_t rlen = path->len - skip;
        zg_outq_append(&q, s->uri, s->uri_len);
        if (h->quoted || r->uri_rewritten) {
            for (size_t k = 0; k < rlen; k += sizeof(tmp) / 3) {
                size_t m = zg_min(rlen - k, sizeof(tmp) / 3);
                zg_outq_append(&q, tmp, zg_http_escape_uri(tmp, rest + k, m));
            }
        } else {
            zg_outq_append(&q, rest, rlen);
        }
        if (r->ctx.args.len) {
            zg_outq_append(&q, "?", 1);
            zg_outq_append(&q, r->ctx.args.data, r->ctx.args.len);
        }
    } else if (r->uri_rewritten) {
        /* as nginx: a rewritten URI is sent escaped, with its args */
        const zg_str_t *path = &r->ctx.uri;
        for (size_t k = 0; k < path->len; k += sizeof(tmp) / 3) {
            size_t m = zg_min(path->len - k, sizeof(tmp) / 3);
            zg_outq_append(&q, tmp, zg_http_escape_uri(tmp, path->data + k, m));
        }
        if (r->ctx.args.len) {
            zg_outq_append(&q, "?", 1);
            zg_outq_append(&q, r->ctx.args.data, r->ctx.args.len);
        }
    } else {
        /* as nginx: the target as received ("http://h?q" has no path: "/?q") */
        if (h->target.data[0] == '?') {
            zg_outq_append(&q, "/", 1);
        }
        zg_outq_append(&q, h->target.data, h->target.len);
    }
    zg_outq_append(&q, sc->http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n", 11);

    /* the client's headers, less hop-by-hop ones and those zonegate sets */
    zg_str_t conn_tokens = {0, ""};
    const zg_str_t *xff = NULL, *host = NULL;
    size_t nhdrs = sc->pass_headers ? h->nhdrs : 0; /* proxy_pass_request_headers */
    for (size_t i = 0; i < nhdrs; i++) {
        if (zg_http_name_eq(&h->names[i], "connection", 10) &&
            !zg_proxy_plain_connection(&h->values[i])) {
            conn_tokens = h->values[i];
        }
    }
    for (size_t i = 0; i < nhdrs; i++) {
        const zg_str_t *n = &h->names[i];
        if (zg_proxy_header_not_passed(n) ||
            (conn_tokens.len && zg_proxy_token_in(&conn_tokens, n))) {
            continue;
        }
        if (zg_http_name_eq(n, "x-forwarded-for", 15)) {
            xff = &h->values[i];
            continue;
        }
        if (zg_http_name_eq(n, "host", 4)) {
            host = &h->values[i];
            continue;
        }
        int overridden = 0;
        for (int k = 0; k < s->nset_headers; k++) {
            if (zg_http_name_eq(n, s->set_headers[k].name.data, s->set_headers[k].name.len)) {
                overridden = 1;
                break;
            }
        }
        if (overridden) {
            continue;
        }
        zg_outq_append(&q, n->data, n->len);
        zg_outq_append(&q, ": ", 2);
        zg_outq_append(&q, h->values[i].data, h->values[i].len);
        zg_outq_append(&q, "\r\n", 2);
    }

    int host_set = 0, xff_set = 0, xri_set = 0, cl_set = 0;
    for (int k = 0; k < s->nset_headers; k++) {
        zg_proxy_header_t *hc = &s->set_headers[k];
        size_t n = zg_cv_eval(hc->value, &r->ctx, 0, tmp, sizeof(tmp));
        n = zg_http_header_safe(tmp, zg_min(n, sizeof(tmp)), sizeof(tmp));
        if (zg_http_name_eq(&hc->name, "host", 4)) {
            host_set = 1;
        } else if (zg_http_name_eq(&hc->name, "x-forwarded-for", 15)) {
            xff_set = 1;
        } else if (zg_http_name_eq(&hc->name, "x-real-ip", 9)) {
            xri_set = 1;
        } else if (zg_http_name_eq(&hc->name, "content-length", 14)) {
            cl_set = 1; /* as nginx: it replaces the body's length ("" removes it) */
        }
        if (n == 0) {
            continue; /* an empty value removes the header */
        }
        zg_outq_append(&q, hc->name.data, hc->name.len);
        zg_outq_append(&q, ": ", 2);
        zg_outq_append(&q, tmp, n);
        zg_outq_append(&q, "\r\n", 2);
    }
    if (!host_set) {
        if (h->authority.len) {
            /* an absolute-form target's authority replaces Host (RFC 9112 3.2.2) */
            zg_outq_append(&q, "Host: ", 6);
            zg_outq_append(&q, h->authority.data, h->authority.len);
            zg_outq_append(&q, "\r\n", 2);
        } else if (host) {
            zg_outq_append(&q, "Host: ", 6);
            zg_outq_append(&q, host->data, host->len);
            zg_outq_append(&q, "\r\n", 2);
        } else {
            /* as nginx's $proxy_host: "localhost" for a unix socket */
            zg_outq_printf(&q, "Host: %s\r\n",
                           !p->u->implicit ? p->u->name
                           : p->u->servers[0].addr.sa.ss_family == AF_UNIX
                               ? "localhost"
                               : p->u->servers[0].addr.text);
        }
    }
    char abuf[64];
    /* the connection's text (made once per connection), or the real_ip address */
    const char *addr = r->ctx.realip == NULL ? zg_conn_addr_text(r->c)
                                             : zg_var_client(&r->ctx, abuf, sizeof(abuf));
    if (!xff_set) {
        if (xff) {
            zg_outq_append(&q, "X-Forwarded-For: ", 17);
            zg_outq_append(&q, xff->data, xff->len);
            zg_outq_append(&q, ", ", 2);
            zg_outq_str(&q, addr);
            zg_outq_append(&q, "\r\n", 2);
        } else {
            zg_outq_append(&q, "X-Forwarded-For: ", 17);
            zg_outq_str(&q, addr);
            zg_outq_append(&q, "\r\n", 2);
        }
    }
    if (!xri_set) {
        zg_outq_append(&q, "X-Real-IP: ", 11);
        zg_outq_str(&q, addr);
        zg_outq_append(&q, "\r\n", 2);
    }
    zg_str_t set_body = {0, NULL};
    if (sc->body != NULL) {
        /* proxy_set_body: this body instead of the client's */
        if (zg_proxy_shape_body(r, sc, &set_body) != ZG_OK) {
            set_body.len = 0;
        }
        p->drop_body = 1;
        if (!cl_set) {
            zg_outq_append(&q, "Content-Length: ", 16);
            zg_outq_num(&q, (uint64_t)set_body.len);
            zg_outq_append(&q, "\r\n", 2);
        }
    } else if (h->chunked && sc->pass_body) {
        p->chunked_up = 1;
        zg_outq_append(&q, "Transfer-Encoding: chunked\r\n", 28);
    } else if (h->content_length >= 0 && !cl_set) {
        zg_outq_append(&q, "Content-Length: ", 16);
        zg_outq_num(&q, (uint64_t)h->content_length);
        zg_outq_append(&q, "\r\n", 2);
    }
    if (!sc->pass_body) {
        p->drop_body = 1; /* proxy_pass_request_body off: the client's body is read, not sent */
    }
    if (p->u->keepalive > 0 && !sc->http10) {
        zg_outq_append(&q, "Connection: keep-alive\r\n\r\n", 26);
    } else {
        zg_outq_append(&q, "Connection: close\r\n\r\n", 21);
    }
    if (set_body.len) {
        zg_outq_append(&q, set_body.data, set_body.len);
    }
    p->head = q.b.data;         /* kept even when incomplete: freed with p */
    p->head_len = q.b.len;
    p->head_cap = q.b.cap;
    return q.b.data != NULL && !q.b.failed ? ZG_OK : ZG_ERROR;
}

/* ---- the response, down to the client ---- */

/* appends to a ", "-separated list in buf (cap bytes, NUL-terminated) */
static void zg_proxy_list_add(char *buf, size_t cap, const char *item, size_t n)
{
    size_t len = strlen(buf);
    size_t need = (len ? 2 : 0) + n;
    if (len + need + 1 > cap) {
        return;
    }
    if (len) {
        buf[len++] = ',';
        buf[len++] = ' ';
    }
    memcpy(buf + len, item, n);
    buf[len + n] = '\0';
}

static void zg_proxy_note_upstream(zg_proxy_t *p, int status)
{
    zg_request_t *r = p->r;
    if (!zg_access_log_enabled(r->loc_conf) && !zg_vars_upstream(r->ctx.vars)) {
        return; /* nothing reads $upstream_* */
    }
    zg_proxy_scratch_t *x = zg_request_scratch(r, zg_proxy_module);
    char tmp[48];
    size_t n;
    zg_msec_t ms = zg_time_msec() - p->attempt_start;
    const char *addr = p->pick.addr ? p->pick.addr->text : "-";
    zg_proxy_list_add(x->upstream_addr, sizeof(x->upstream_addr), addr, strlen(addr));
    if (status) {
        n = zg_fmt_u64(tmp, (uint64_t)status);
    } else {
        tmp[0] = '-';
        n = 1;
    }
    zg_proxy_list_add(x->upstream_status, sizeof(x->upstream_status), tmp, n);
    n = zg_fmt_u64(tmp, ms / 1000);
    tmp[n++] = '.';
    tmp[n++] = (char)('0' + ms % 1000 / 100);
    tmp[n++] = (char)('0' + ms % 100 / 10);
    tmp[n++] = (char)('0' + ms % 10);
    zg_proxy_list_add(x->upstream_time, sizeof(x->upstream_time), tmp, n);
    r->ctx.upstream_addr.data = x->upstream_addr;
    r->ctx.upstream_addr.len = strlen(x->upstream_addr);
    r->ctx.upstream_status.data = x->upstream_status;
    r->ctx.upstream_status.len = strlen(x->upstream_status);
    r->ctx.upstream_response_time.data = x->upstream_time;
    r->ctx.upstream_response_time.len = strlen(x->upstream_time);
}

/* as nginx: a method that is not idempotent, once the request went out, needs
 * non_idempotent in proxy_next_upstream to go to the next peer */
static int zg_proxy_non_idempotent(const zg_request_t *r)
{
    const zg_str_t *m = &r->ctx.method;
    return (m->len == 4 && (memcmp(m->data, "POST", 4) == 0 || memcmp(m->data, "LOCK", 4) == 0))
           || (m->len == 5 && memcmp(m->data, "PATCH", 5) == 0);
}

/* proxy_next_upstream http_XXX: this status goes to the next peer if one is left
 * (as nginx: otherwise the last peer's answer is passed on) */
static int zg_proxy_next_on(zg_proxy_t *p, int status)
{
    zg_proxy_loc_conf_t *s = zg_proxy_loc_conf(p->r->loc_conf);
    int bit;
    switch (status) {
    case 500: bit = ZG_NEXT_HTTP_500; break;
    case 502: bit = ZG_NEXT_HTTP_502; break;
    case 503: bit = ZG_NEXT_HTTP_503; break;
    case 504: bit = ZG_NEXT_HTTP_504; break;
    case 403: bit = ZG_NEXT_HTTP_403; break;
    case 404: bit = ZG_NEXT_HTTP_404; break;
    case 429: bit = ZG_NEXT_HTTP_429; break;
    default: return 0;
    }
    if (!(s->next_upstream & bit)) {
        return 0;
    }
    if (zg_proxy_non_idempotent(p->r) && !(s->next_upstream & ZG_NEXT_NON_IDEMPOTENT)) {
        return 0;
    }
    return p->pick.tries < p->u->nservers;
}

static int zg_proxy_can_retry(zg_proxy_t *p)
{
    zg_proxy_loc_conf_t *s = zg_proxy_loc_conf(p->r->loc_conf);
    if (p->resp_head_sent || p->body_overflow || (s->next_upstream & ZG_NEXT_OFF)) {
        return 0;
    }
    if (s->next_upstream_tries && p->pick.tries >= s->next_upstream_tries) {
        return 0;
    }
    return 1;
}

size_t zg_proxy_copy_headers(zg_var_ctx_t *x, const zg_http_resp_head_t *rh,
                             zg_str_t **names, zg_str_t **values)
{
    zg_str_t *nv = zg_var_alloc(x, 2 * rh->nhdrs * sizeof(zg_str_t) + 1);
    size_t i;

    *names = *values = NULL;
    if (nv == NULL) {
        return 0;
    }
    *names = nv;
    *values = nv + rh->nhdrs;
    for (i = 0; i < rh->nhdrs; i++) {
        char *n = zg_var_alloc(x, rh->names[i].len + rh->values[i].len + 1);
        if (n == NULL) {
            break;
        }
        memcpy(n, rh->names[i].data, rh->names[i].len);
        if (rh->values[i].len) {
            memcpy(n + rh->names[i].len, rh->values[i].data, rh->values[i].len);
        }
        nv[i].data = n;
        nv[i].len = rh->names[i].len;
        nv[rh->nhdrs + i].data = n + rh->names[i].len;
        nv[rh->nhdrs + i].len = rh->values[i].len;
    }
    return i;
}

/* copies the upstream's response headers for $upstream_http_NAME and
 * $sent_http_NAME (only when the config uses them) */
static void zg_proxy_keep_headers(zg_request_t *r, const zg_http_resp_head_t *rh)
{
    zg_var_ctx_t *x = &r->ctx;
    zg_str_t *names, *values;
    size_t n = zg_proxy_copy_headers(x, rh, &names, &values);

    if (n < rh->nhdrs) {
        return; /* out of memory: none, as before */
    }
    x->up_names = x->sent_names = names;
    x->up_values = x->sent_values = values;
    x->nup = x->nsent = n;
}

/* the upstream's head through the response filters */
static void zg_proxy_head_filtered(zg_proxy_t *p, zg_http_resp_head_t *rh)
{
    zg_request_t *r = p->r;
    zg_resp_t h;
    zg_str_t conn_tokens = {0, ""};

    memset(&h, 0, sizeof(h));
    p->filtered = 1;
    h.from_upstream = 1;
    h.keepalive = r->keepalive && !r->c->w->quitting;
    h.no_body = rh->no_body;
    h.content_length = rh->chunked ? -1 : rh->content_length;
    if (r->err_status) {
        h.status = r->err_status; /* error_page CODE URI: the original status */
    } else {
        h.status = rh->status;
        h.reason = rh->reason;
    }
    for (size_t i = 0; i < rh->nhdrs; i++) {
        if (zg_http_name_eq(&rh->names[i], "connection", 10) &&
            !zg_proxy_plain_connection(&rh->values[i])) {
            conn_tokens = rh->values[i];
        }
    }
    zg_proxy_shape_loc_conf_t *sc = zg_proxy_shape_loc_conf(r->loc_conf);
    if (zg_proxy_shape_own_resp(r, sc, &h) != ZG_OK) {
        h.keepalive = 0;
    }
    for (size_t i = 0; i < rh->nhdrs; i++) {
        const zg_str_t *n = &rh->names[i], *v = &rh->values[i];
        zg_str_t nv;
        if (zg_proxy_drop_header(p, n, v) || (conn_tokens.len && zg_proxy_token_in(&conn_tokens, n))
            || (n->len == 14 && zg_http_name_eq(n, "content-length", 14))) {
            continue;
        }
        if (n->len == 15 && zg_http_name_eq(n, "x-accel-expires", 15)) {
            h.accel_expires = v; /* rh outlives the header filters */
        }
        int rc = zg_proxy_shape_header(r, sc, n, v, &nv);
        if (rc == ZG_DECLINED) {
            continue; /* proxy_hide_header */
        }
        if (rc == ZG_AGAIN) {
            v = &nv; /* proxy_redirect */
        }
        if (zg_resp_add(r, &h, n->data, n->len, v->data, v->len) != ZG_OK) {
            h.keepalive = 0;
            break;
        }
    }
    if (zg_vars_resp_headers(r->ctx.vars)) {
        zg_proxy_keep_headers(r, rh); /* $upstream_http_NAME */
    }
    if (zg_response_head(r, &h) != ZG_OK) {
        zg_log_error(ZG_LOG_ERR, 0, "a response filter failed on the upstream's head");
        h.keepalive = 0;
    }
    p->resp_keepalive = h.keepalive;
    r->ctx.status = h.status;
}

static void zg_resp_on_head(void *data, zg_http_resp_head_t *rh)
{
    zg_upconn_t *uc = data;
    zg_proxy_t *p = uc->p;
    if (p == NULL || p->done) {
        return;
    }
    zg_request_t *r = p->r;
    zg_outq_t *q = &r->c->out;

    if (zg_proxy_next_on(p, rh->status) && zg_proxy_can_retry(p)) {
        p->error_status = rh->status;
        p->retry_status = 1;
        return; /* the caller sees no head sent and fails the attempt */
    }
    if (rh->status >= 300 && zg_proxy_loc_conf(r->loc_conf)->intercept_errors
        && zg_error_page_find(zg_request_conf(r, zg_error_page_module), rh->status) != NULL) {
        p->intercept_status = rh->status;
        return; /* zg_upconn_on_read lets the error page answer */
    }
    zg_proxy_note_upstream(p, rh->status);
    p->resp_head_sent = 1;
    r->resp_started = 1;
    r->ctx.status = rh->status;
    if (zg_response_filters(r)) {
        zg_proxy_head_filtered(p, rh);
        return;
    }

    int client11 = r->h->http_minor >= 1;
    int keepalive = r->keepalive && !r->c->w->quitting;
    p->chunked_out = 0;
    if (!rh->no_body) {
        if (rh->chunked) {
            if (client11) {
                p->chunked_out = 1;
            } else {
                keepalive = 0;
            }
        } else if (rh->content_length < 0) {
            keepalive = 0; /* until close */
        }
    }
    p->resp_keepalive = keepalive;

    size_t start = q->b.len;
    zg_outq_append(q, "HTTP/1.1 ", 9);
    if (r->err_status) {
        /* error_page CODE URI (no "="): the answer keeps the original status */
        r->ctx.status = r->err_status;
        zg_outq_num(q, (uint64_t)r->err_status);
        zg_outq_append(q, " ", 1);
        zg_outq_str(q, zg_http_reason(r->err_status));
    } else {
        zg_outq_num(q, (uint64_t)rh->status);
        zg_outq_append(q, " ", 1);
        zg_outq_append(q, rh->reason.data, rh->reason.len);
    }
    zg_outq_append(q, "\r\n", 2);
    zg_proxy_shape_loc_conf_t *sc = zg_proxy_shape_loc_conf(r->loc_conf);
    zg_proxy_shape_own_lines(r, sc, q); /* Server, Date */
    zg_str_t conn_tokens = {0, ""};
    for (size_t i = 0; i < rh->nhdrs; i++) {
        if (zg_http_name_eq(&rh->names[i], "connection", 10) &&
            !zg_proxy_plain_connection(&rh->values[i])) {
            conn_tokens = rh->values[i];
        }
    }
    for (size_t i = 0; i < rh->nhdrs; i++) {
        const zg_str_t *n = &rh->names[i], *v = &rh->values[i];
        zg_str_t nv;
        if (zg_proxy_drop_header(p, n, v) || (conn_tokens.len && zg_proxy_token_in(&conn_tokens, n))) {
            continue;
        }
        int rc = zg_proxy_shape_header(r, sc, n, v, &nv);
        if (rc == ZG_DECLINED) {
            continue; /* proxy_hide_header */
        }
        if (rc == ZG_AGAIN) {
            v = &nv; /* proxy_redirect */
        }
        zg_outq_append(q, n->data, n->len);
        zg_outq_append(q, ": ", 2);
        zg_outq_append(q, v->data, v->len);
        zg_outq_append(q, "\r\n", 2);
    }
    if (p->chunked_out) {
        zg_outq_append(q, "Transfer-Encoding: chunked\r\n", 28);
    }
    if (!keepalive) {
        r->keepalive = 0; /* the header hooks see it (Keep-Alive: timeout=N) */
    }
    zg_request_extra_headers(r, q);
    if (keepalive) {
        zg_outq_append(q, "Connection: keep-alive\r\n\r\n", 26);
    } else {
        zg_outq_append(q, "Connection: close\r\n\r\n", 21);
    }
    r->ctx.bytes_sent += q->b.len - start;
    if (zg_vars_resp_headers(r->ctx.vars)) {
        zg_proxy_keep_headers(r, rh);
    }
}

static void zg_resp_on_body(void *data, const char *b, size_t n)
{
    zg_upconn_t *uc = data;
    zg_proxy_t *p = uc->p;
    if (p == NULL || !p->resp_head_sent || p->done) {
        return;
    }
    zg_request_t *r = p->r;
    zg_outq_t *q = &r->c->out;
    if (p->filtered) {
        zg_response_body(r, b, n, 0);
        return;
    }
    if (p->chunked_out) {
        zg_outq_hex(q, n);
        zg_outq_append(q, "\r\n", 2);
        zg_outq_append(q, b, n);
        zg_outq_append(q, "\r\n", 2);
    } else {
        zg_outq_append(q, b, n);
    }
    r->ctx.body_bytes_sent += n;
    r->ctx.bytes_sent += n;
}

static void zg_resp_on_done(void *data)
{
    zg_upconn_t *uc = data;
    zg_proxy_t *p = uc->p;
    if (p == NULL || !p->resp_head_sent || p->done) {
        return;
    }
    if (p->filtered) {
        zg_response_body(p->r, NULL, 0, 1);
        return;
    }
    if (p->chunked_out) {
        zg_outq_append(&p->r->c->out, "0\r\n\r\n", 5);
        p->r->ctx.bytes_sent += 5;
    }
}

static const zg_http_resp_handlers_t zg_resp_handlers = {zg_resp_on_head, zg_resp_on_body,
                                                         zg_resp_on_done};

/* finished proxies are kept (with their head buffer) for the next request */
#define ZG_PROXY_CACHE 64
static zg_proxy_t *zg_proxy_cache[ZG_PROXY_CACHE];
static int zg_proxy_ncache;

static zg_proxy_t *zg_proxy_alloc(void)
{
    if (zg_proxy_ncache == 0) {
        return calloc(1, sizeof(zg_proxy_t));
    }
    zg_proxy_t *p = zg_proxy_cache[--zg_proxy_ncache];
    char *head = p->head;
    size_t cap = p->head_cap;
    memset(p, 0, sizeof(*p));
    p->head = head;
    p->head_cap = cap;
    return p;
}

/* proxy_limit_rate's timer: outlives the proxy until closed */
typedef struct zg_proxy_rate_s {
    uv_timer_t timer;
    zg_proxy_t *p;              /* NULL once the proxy let go of it */
} zg_proxy_rate_t;

static void zg_proxy_rate_closed(uv_handle_t *h)
{
    free(h->data);
}

static __attribute__((noinline)) void zg_proxy_free_buffers(zg_proxy_t *p)
{
    if (p->up_timer != NULL) {
        p->up_timer->p = NULL;
        uv_close((uv_handle_t *)&p->up_timer->timer, zg_proxy_rate_closed);
        p->up_timer = NULL;
    }
    if (p->spool != NULL) {
        zg_spool_free(p->spool);
        free(p->spool);
        p->spool = NULL;
    }
    if (p->req_spool != NULL) {
        zg_spool_free(p->req_spool);
        free(p->req_spool);
        p->req_spool = NULL;
    }
}

static void zg_proxy_free(zg_proxy_t *p)
{
    zg_buf_free(&p->body);
    if (p->spool != NULL || p->req_spool != NULL || p->up_timer != NULL) {
        zg_proxy_free_buffers(p);
    }
    if (zg_proxy_ncache < ZG_PROXY_CACHE && p->head_cap <= ZG_PROXY_KEEP_HEAD) {
        zg_proxy_cache[zg_proxy_ncache++] = p;
        return;
    }
    free(p->head);
    free(p);
}

static int zg_proxy_spool(zg_proxy_t *p);
static void zg_proxy_finish_client(zg_proxy_t *p);

/* the response is complete: the connection goes back to the pool if it can; the
 * client gets what the spool holds, then the request ends */
static void zg_proxy_finish(zg_proxy_t *p, int upstream_keepalive)
{
    zg_upconn_t *uc = p->uc;
    p->done = 1;
    p->uc = NULL;
    if (uc) {
        uc->timer.at = 0;
        if (upstream_keepalive && p->body_end_sent && uc->out.inflight == 0 && !uc->closing) {
            zg_pool_put(uc);
        } else {
            zg_upconn_close(uc);
        }
    }
    zg_upstream_free(p->u, &p->pick, 0, zg_time_msec());
    if (p->spooling) {
        if (zg_proxy_spool(p) == ZG_ERROR) {
            zg_request_t *r = p->r;
            zg_proxy_detach(r);
            zg_proxy_free(p);
            zg_request_response_abort(r);
            return;
        }
        if (zg_spool_len(p->spool) > 0) {
            p->up_done = 1; /* zg_proxy_drained goes on */
            return;
        }
    }
    zg_proxy_finish_client(p);
}

static void zg_proxy_finish_client(zg_proxy_t *p)
{
    zg_request_t *r = p->r;
    int keepalive = p->resp_keepalive;
    zg_proxy_detach(r);
    zg_proxy_free(p);
    zg_request_release(r);
    if (zg_outq_flush(&r->c->out) != ZG_OK) {
        keepalive = 0;
    }
    zg_request_response_done(r, keepalive);
}

/* ---- reading the upstream ---- */

static void zg_upconn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[512];
    (void)suggested;
    zg_upconn_t *uc = h->data;
    size_t len = 0;
    if (uc->p == NULL) {
        *buf = uv_buf_init(scratch, sizeof(scratch));
        return;
    }
    char *b = zg_http_resp_buffer(uc->resp, &len);
    *buf = uv_buf_init(b, (unsigned)len);
}

/* proxy_buffering for this response (X-Accel-Buffering decides where it came) */
static int zg_proxy_buffering(zg_proxy_t *p)
{
    if (p->accel_buffering) {
        return p->accel_buffering == 1;
    }
    return zg_proxy_buffer_loc_conf(p->r->loc_conf)->buffering;
}

/* the client has not taken all that is queued: past proxy_busy_buffers_size the
 * rest goes to the spool (proxy_buffering), or past 256 KB reading pauses */
static __attribute__((noinline)) void zg_proxy_behind(zg_proxy_t *p, zg_upconn_t *uc)
{
    zg_request_t *r = p->r;
    size_t pending = zg_outq_pending(&r->c->out);

    if (zg_proxy_buffering(p)) {
        if (pending > (size_t)zg_proxy_buffer_loc_conf(r->loc_conf)->busy) {
            p->spooling = 1;
            zg_conn_timer(r->c, zg_http_core_loc_conf(r->loc_conf)->send_timeout);
        }
    } else if (pending > ZG_PROXY_HIGH) {
        /* the client reads slower than the upstream sends */
        p->up_paused = 1;
        zg_upconn_read(uc, 0);
        zg_conn_timer(r->c, zg_http_core_loc_conf(r->loc_conf)->send_timeout);
    }
}

static void zg_proxy_up_tick(uv_timer_t *t)
{
    zg_proxy_rate_t *pr = t->data;
    zg_proxy_t *p = pr->p;

    if (p != NULL && p->up_limited) {
        p->up_limited = 0;
        if (p->uc != NULL && !p->up_paused) {
            zg_upconn_read(p->uc, 1);
        }
    }
}

/* proxy_limit_rate: read no faster than up_rate bytes a second (a tenth of a
 * second's worth ahead at most) */
static void zg_proxy_up_limit(zg_proxy_t *p, zg_upconn_t *uc)
{
    uint64_t now = uv_now(uc->w->loop), burst = zg_max(p->up_rate / 10, 1);
    uint64_t allowed = p->up_rate * (now - p->up_start) / 1000 + burst;

    if (uc->received <= allowed) {
        return;
    }
    if (p->up_timer == NULL) {
        if ((p->up_timer = malloc(sizeof(*p->up_timer))) == NULL) {
            return;
        }
        uv_timer_init(uc->w->loop, &p->up_timer->timer);
        p->up_timer->timer.data = p->up_timer;
        p->up_timer->p = p;
    }
    zg_upconn_read(uc, 0);
    p->up_limited = 1;
    uv_timer_start(&p->up_timer->timer, zg_proxy_up_tick,
                   (uc->received - allowed) * 1000 / p->up_rate + 1, 0);
}

static void zg_upconn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    zg_upconn_t *uc = s->data;
    zg_proxy_t *p = uc->p;
    if (nread == 0) {
        return;
    }
    if (p == NULL) {
        if (uc->pooled) {
            /* the upstream closed an idle connection, or sent bytes nobody asked for */
            zg_pool_idle_close(uc);
        }
        return;
    }
    int rc;
    if (nread < 0) {
        rc = nread == UV_EOF ? zg_http_resp_eof(uc->resp) : ZG_ERROR;
        if (rc != ZG_DONE) {
            zg_proxy_fail(p, 0, nread == UV_EOF ? "upstream prematurely closed connection"
                                                : "recv() failed");
            return;
        }
        if (zg_outq_flush(&p->r->c->out) != ZG_OK) {
            /* the client is gone: finish anyway, the close follows */
        }
        zg_proxy_finish(p, 0);
        return;
    }
    uc->received += (uint64_t)nread;
    rc = zg_http_resp_feed(uc->resp, (size_t)nread);
    if (p->retry_status) {
        /* proxy_next_upstream http_5xx */
        p->retry_status = 0;
        zg_proxy_note_upstream(p, p->error_status);
        zg_upstream_free(p->u, &p->pick, p->error_status != 403 && p->error_status != 404,
                         zg_time_msec());
        zg_upconn_close(uc);
        p->uc = NULL;
        zg_proxy_connect(p);
        return;
    }
    if (p->intercept_status) {
        /* proxy_intercept_errors: the upstream's answer is dropped, the error page
         * answers (the peer did not fail) */
        zg_request_t *ir = p->r;
        int st = p->intercept_status;
        zg_proxy_note_upstream(p, st);
        zg_upstream_free(p->u, &p->pick, 0, zg_time_msec());
        zg_upconn_close(uc);
        p->uc = NULL;
        zg_proxy_detach(ir);
        zg_proxy_free(p);
        zg_request_respond(ir, st, NULL, NULL, NULL, 0);
        return;
    }
    if (rc == ZG_ERROR) {
        zg_proxy_fail(p, 0, "upstream sent an invalid response");
        return;
    }
    zg_request_t *r = p->r;
    if (rc == ZG_DONE) {
        zg_proxy_finish(p, zg_http_resp_reusable(uc->resp));
        return;
    }
    uc->timer.at = uv_now(uc->w->loop) + uc->read_timeout; /* moved later: a store */
    if (p->up_rate != 0 && zg_proxy_buffering(p)) {
        zg_proxy_up_limit(p, uc);
    }
    if (p->spooling) {
        /* proxy_buffering: the client is behind, the upstream is read on */
        rc = zg_proxy_spool(p);
        if (rc == ZG_BUSY) {
            p->up_paused = 1; /* the buffers and the temp file are full */
            zg_upconn_read(uc, 0);
        } else if (rc == ZG_ERROR) {
            zg_proxy_fail(p, 0, "buffering the response failed");
        }
        return;
    }
    if (zg_outq_flush(&r->c->out) != ZG_OK) {
        return; /* the connection's write failure closes everything */
    }
    if (zg_outq_pending(&r->c->out) > 0) {
        zg_proxy_behind(p, uc);
    }
}

/* What the response added to the client's queue goes to the spool instead
 * (proxy_buffering, the client behind): ZG_OK, ZG_BUSY (full: pause the upstream),
 * ZG_ERROR. */
static int zg_proxy_spool(zg_proxy_t *p)
{
    zg_outq_t *q = &p->r->c->out;
    int rc;

    if (p->spool == NULL) {
        zg_proxy_buffer_loc_conf_t *b = zg_proxy_buffer_loc_conf(p->r->loc_conf);
        if ((p->spool = malloc(sizeof(*p->spool))) == NULL) {
            return ZG_ERROR;
        }
        zg_spool_init(p->spool, (size_t)b->nbufs * (size_t)b->bufsize, b->max_temp,
                      b->temp_path);
    }
    if (q->b.len == 0) {
        return zg_spool_full(p->spool) ? ZG_BUSY : ZG_OK;
    }
    rc = zg_spool_put(p->spool, q->b.data, q->b.len);
    q->b.len = 0;
    return rc;
}

/* the client took what was queued: the next part of the spool */
static int zg_proxy_unspool(zg_proxy_t *p)
{
    zg_request_t *r = p->r;
    zg_outq_t *q = &r->c->out;
    size_t max = (size_t)zg_max(zg_proxy_buffer_loc_conf(r->loc_conf)->busy, 64 * 1024);

    /* until the socket is full (a write waits: `drained` comes again) or it is empty */
    do {
        if (zg_spool_take(p->spool, &q->b, max) != ZG_OK || zg_outq_flush(q) != ZG_OK) {
            return ZG_ERROR;
        }
    } while (zg_outq_pending(q) == 0 && zg_spool_len(p->spool) > 0);
    if (zg_spool_len(p->spool) == 0 && !p->up_done) {
        p->spooling = 0; /* caught up: the next bytes go straight out */
    }
    if (p->up_paused && p->uc && !zg_spool_full(p->spool)) {
        p->up_paused = 0;
        zg_upconn_read(p->uc, 1);
    }
    zg_conn_timer(r->c, zg_http_core_loc_conf(r->loc_conf)->send_timeout);
    return ZG_OK;
}

static void zg_upconn_read(zg_upconn_t *uc, int on)
{
    if (on && uc->p != NULL && uc->p->up_limited) {
        return; /* proxy_limit_rate's timer reads on */
    }
    if (on && !uc->reading) {
        uc->reading = 1;
        uv_read_start((uv_stream_t *)&uc->tcp, zg_upconn_alloc, zg_upconn_on_read);
    } else if (!on && uc->reading) {
        uc->reading = 0;
        uv_read_stop((uv_stream_t *)&uc->tcp);
    }
}

static void zg_proxy_drained(zg_request_t *r)
{
    zg_proxy_t *p = zg_proxy_of(r);

    if (p->spooling) {
        if (zg_proxy_unspool(p) != ZG_OK) {
            zg_proxy_detach(r);
            zg_proxy_free(p);
            zg_request_response_abort(r);
            return;
        }
        if (p->up_done && zg_spool_len(p->spool) == 0) {
            zg_proxy_finish_client(p);
        }
        return;
    }
    if (p->up_paused && p->uc) {
        p->up_paused = 0;
        zg_upconn_read(p->uc, 1);
        if (p->r->body_done) {
            zg_conn_timer(p->r->c, 0);
        }
    }
}

/* the connect or read timeout passed */
static void zg_upconn_timeout(zg_deadline_t *d)
{
    zg_upconn_t *uc = d->timer.data;
    if (uc->p) {
        zg_proxy_fail(uc->p, 1, uc->connected ? "upstream timed out" : "connect timed out");
    }
}

/* ---- sending the request ---- */

static void zg_proxy_send_body(zg_proxy_t *p);

static void zg_upconn_drained(void *data)
{
    zg_upconn_t *uc = data;
    zg_proxy_t *p = uc->p;
    if (p && p->req_spool && p->req_sent < p->req_spool->file_wr) {
        zg_proxy_send_body(p);
        return;
    }
    if (p && p->client_paused) {
        p->client_paused = 0;
        zg_conn_body(p->r->c);
    }
}

static void zg_upconn_write_failed(void *data, int status)
{
    zg_upconn_t *uc = data;
    (void)status;
    if (uc->p) {
        zg_proxy_fail(uc->p, 0, "send() failed");
    }
}

/* proxy_request_buffering: the body past client_body_buffer_size goes to a temp
 * file while it is read; ZG_OK or ZG_ERROR */
static int zg_proxy_req_spill(zg_proxy_t *p)
{
    zg_proxy_buffer_loc_conf_t *b = zg_proxy_buffer_loc_conf(p->r->loc_conf);
    size_t keep = (size_t)b->body_buf;

    if (p->body.len <= keep) {
        return ZG_OK;
    }
    if (p->req_spool == NULL) {
        if ((p->req_spool = malloc(sizeof(*p->req_spool))) == NULL) {
            return ZG_ERROR;
        }
        zg_spool_init(p->req_spool, 0, INT64_MAX, b->body_temp_path);
    }
    if (zg_spool_put(p->req_spool, p->body.data + keep, p->body.len - keep) == ZG_ERROR
        || p->req_spool->mem.len > 0) {
        return ZG_ERROR; /* no temp file (logged) */
    }
    p->body.len = keep;
    return ZG_OK;
}

/* sends the temp file's part of the body while the upstream takes it; ZG_OK or
 * ZG_ERROR (logged) */
static int zg_proxy_req_file(zg_proxy_t *p, zg_upconn_t *uc)
{
    zg_spool_t *sp = p->req_spool;

    while (p->req_sent < sp->file_wr && zg_outq_pending(&uc->out) <= ZG_PROXY_HIGH) {
        size_t want = (size_t)zg_min(sp->file_wr - p->req_sent, 64 * 1024);
        if (zg_buf_reserve(&uc->out.b, want) != ZG_OK) {
            return ZG_ERROR;
        }
        ssize_t n = pread(sp->fd, uc->out.b.data + uc->out.b.len, want, (off_t)p->req_sent);
        if (n <= 0) {
            zg_log_error(ZG_LOG_CRIT, errno, "pread() from a temporary file failed");
            return ZG_ERROR;
        }
        uc->out.b.len += (size_t)n;
        p->req_sent += n;
        if (zg_outq_flush(&uc->out) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

static void zg_proxy_send_body(zg_proxy_t *p)
{
    zg_upconn_t *uc = p->uc;
    if (uc == NULL || !uc->connected) {
        if (p->body.len > ZG_PROXY_HIGH && !p->client_paused) {
            p->client_paused = 1;
            zg_conn_read(p->r->c, 0);
        }
        return;
    }
    if (p->body_off < p->body.len) {
        zg_outq_append(&uc->out, p->body.data + p->body_off, p->body.len - p->body_off);
        p->body_off = p->body.len;
    }
    if (p->req_spool != NULL && p->req_sent < p->req_spool->file_wr) {
        if (zg_proxy_req_file(p, uc) != ZG_OK) {
            zg_proxy_fail(p, 0, "sending the buffered request body failed");
            return;
        }
        if (p->req_sent < p->req_spool->file_wr) {
            return; /* zg_upconn_drained goes on */
        }
    }
    if (p->body_done && !p->body_end_sent) {
        if (p->chunked_up) {
            zg_outq_append(&uc->out, "0\r\n\r\n", 5);
        }
        p->body_end_sent = 1;
    }
    if (p->body.len > ZG_PROXY_RETAIN) {
        p->body_overflow = 1;
        p->body.len = p->body_off = 0;
    }
    if (zg_outq_flush(&uc->out) != ZG_OK) {
        zg_proxy_fail(p, 0, "send() failed");
        return;
    }
    if (zg_outq_pending(&uc->out) > ZG_PROXY_HIGH) {
        if (!p->client_paused && !p->body_done) {
            p->client_paused = 1;
            zg_conn_read(p->r->c, 0);
        }
    } else if (p->client_paused) {
        /* paused while connecting, and all of it went out at once: no drain
         * callback will come */
        p->client_paused = 0;
        zg_conn_body(p->r->c);
    }
}

static void zg_proxy_body(zg_request_t *r, const char *data, size_t n)
{
    zg_proxy_t *p = zg_proxy_of(r);

    if (n == 0 || p->done || p->drop_body) {
        return;
    }
    if (p->chunked_up) {
        static const char digits[] = "0123456789abcdef";
        char line[24];
        size_t l = sizeof(line) - 2, v = n;
        line[sizeof(line) - 2] = '\r';
        line[sizeof(line) - 1] = '\n';
        do {
            line[--l] = digits[v & 15];
            v >>= 4;
        } while (v);
        zg_buf_append(&p->body, line + l, sizeof(line) - l);
        zg_buf_append(&p->body, data, n);
        zg_buf_append(&p->body, "\r\n", 2);
    } else {
        zg_buf_append(&p->body, data, n);
    }
    if (p->waiting_body) {
        if (p->req_buffering) {
            if (zg_proxy_req_spill(p) != ZG_OK) {
                zg_proxy_detach(r);
                zg_proxy_free(p);
                r->keepalive = 0;
                zg_request_respond(r, 500, NULL, NULL, NULL, 0);
            }
            return; /* all of it first */
        }
        if (p->body.len >= ZG_PROXY_RETAIN) {
            p->waiting_body = 0;
            zg_proxy_connect(p);
        }
        return;
    }
    zg_proxy_send_body(p);
}

static void zg_proxy_body_done(zg_request_t *r)
{
    zg_proxy_t *p = zg_proxy_of(r);

    p->body_done = 1;
    if (p->waiting_body) {
        p->waiting_body = 0;
        zg_proxy_connect(p);
        return;
    }
    if (!p->done) {
        zg_proxy_send_body(p);
    }
}

static void zg_proxy_send(zg_proxy_t *p)
{
    zg_upconn_t *uc = p->uc;
    zg_proxy_loc_conf_t *s = zg_proxy_loc_conf(p->r->loc_conf);
    zg_outq_append(&uc->out, p->head, p->head_len);
    p->body_off = 0;
    p->req_sent = 0;
    p->body_end_sent = 0;
    zg_http_resp_reset(uc->resp, p->head_up);
    uc->received = 0;
    p->up_rate = (uint64_t)zg_limit_rate_proxy(p->r->loc_conf);
    if (p->up_rate != 0) {
        p->up_start = uv_now(uc->w->loop);
    }
    uc->read_timeout = zg_max(s->read_timeout, 1);
    zg_deadline_set(&uc->timer, uc->read_timeout);
    zg_upconn_read(uc, 1);
    zg_proxy_send_body(p);
}

static void zg_upconn_connected(uv_connect_t *req, int status)
{
    zg_upconn_t *uc = req->data;
    zg_proxy_t *p = uc->p;
    if (status == UV_ECANCELED || p == NULL) {
        return;
    }
    if (status < 0) {
        char what[128];
        snprintf(what, sizeof(what), "connect() failed (%s)", uv_strerror(status));
        zg_proxy_fail(p, 0, what);
        return;
    }
    uc->connected = 1;
    if (zg_proc_stats != NULL) {
        zg_proc_worker_sh_t *ws = &zg_proc_stats->workers[zg_worker_slot];
        __atomic_store_n(&ws->upstream_connect_ns,
                         ws->upstream_connect_ns + (uv_hrtime() - uc->connect_start),
                         __ATOMIC_RELAXED);
    }
    uv_tcp_nodelay(&uc->tcp, 1);
    zg_proxy_send(p);
}

/* a new upstream connection (a pooled one is not counted): the connects and the
 * time until they are established show how often requests wait for one */
static void zg_upconn_count_connect(zg_upconn_t *uc)
{
    uc->connect_start = uv_hrtime();
    if (zg_proc_stats != NULL) {
        zg_proc_bump(&zg_proc_stats->workers[zg_worker_slot].upstream_connects);
    }
}

static zg_upconn_t *zg_upconn_new(zg_proxy_t *p)
{
    zg_upconn_t *uc = calloc(1, sizeof(*uc));
    if (uc == NULL) {
        return NULL;
    }
    uc->resp = zg_http_resp_create(ZG_PROXY_HEAD_MAX, &zg_resp_handlers, uc);
    if (uc->resp == NULL) {
        free(uc);
        return NULL;
    }
    uc->w = p->r->c->w;
    uv_tcp_init(uc->w->loop, &uc->tcp);
    zg_deadline_init(uc->w->loop, &uc->timer, zg_upconn_timeout, uc);
    uc->tcp.data = uc->connect.data = uc;
    uc->handles = 2;
    uc->u = p->u;
    uc->peer = p->pick.peer;
    uc->p = p;
    zg_outq_init(&uc->out, (uv_stream_t *)&uc->tcp, uc);
    uc->out.drained = zg_upconn_drained;
    uc->out.failed = zg_upconn_write_failed;
    return uc;
}

static void zg_proxy_connect(zg_proxy_t *p)
{
    zg_request_t *r = p->r;
    zg_proxy_loc_conf_t *s = zg_proxy_loc_conf(r->loc_conf);
    zg_msec_t now = zg_time_msec();

    if (zg_upstream_get(p->u, &p->pick, now) != ZG_OK) {
        if (p->pick.tries == 0) {
            const zg_log_target_t *log = zg_request_log_scope(r);
            zg_log_error(ZG_LOG_ERR, 0, "no live upstreams while connecting to upstream \"%s\"",
                         p->u->name);
            zg_log_scope(log);
        }
        goto no_peer;
    }
    p->attempt_start = now;
    p->retried_stale = 0;
    p->uc = zg_pool_get(p->u, p->pick.peer);
    if (p->uc) {
        p->uc->p = p;
        p->uc->connected = 1;
        zg_proxy_send(p);
        return;
    }
    p->uc = zg_upconn_new(p);
    if (p->uc == NULL) {
        zg_proxy_fail(p, 0, "out of memory");
        return;
    }
    zg_deadline_set(&p->uc->timer, zg_max(s->connect_timeout, 1));
    zg_upconn_count_connect(p->uc);
    if (p->pick.addr->sa.ss_family == AF_UNIX) {
        /* connected (or refused) at once; libuv's uv_tcp_connect is for IP only */
        zg_upconn_connected(&p->uc->connect, zg_unix_connect(&p->uc->tcp, p->pick.addr));
        return;
    }
    int rc = uv_tcp_connect(&p->uc->connect, &p->uc->tcp,
                            (const struct sockaddr *)&p->pick.addr->sa, zg_upconn_connected);
    if (rc != 0) {
        zg_proxy_fail(p, 0, uv_strerror(rc));
    }
    return;

no_peer:;
    int status = p->error_status ? p->error_status : 502;
    zg_proxy_detach(r);
    zg_proxy_free(p);
    zg_request_respond(r, status, NULL, NULL, NULL, 0);
}

/* An attempt failed.  Before the response head went out: the next peer, or 502/504.
 * After: the client's response cannot be completed, close it. */
static void zg_proxy_fail(zg_proxy_t *p, int timeout, const char *what)
{
    zg_request_t *r = p->r;
    zg_upconn_t *uc = p->uc;
    int stale = uc && uc->reused && uc->received == 0 && !timeout && !p->retried_stale;
    int connected = uc && uc->connected;
    if (uc) {
        zg_upconn_close(uc);
        p->uc = NULL;
    }
    if (stale && !p->resp_head_sent && !p->body_overflow) {
        /* a kept-alive connection the upstream had closed: once more, fresh */
        p->retried_stale = 1;
        p->uc = zg_upconn_new(p);
        if (p->uc) {
            zg_proxy_loc_conf_t *s = zg_proxy_loc_conf(r->loc_conf);
            zg_deadline_set(&p->uc->timer, zg_max(s->connect_timeout, 1));
            zg_upconn_count_connect(p->uc);
            if (uv_tcp_connect(&p->uc->connect, &p->uc->tcp,
                               (const struct sockaddr *)&p->pick.addr->sa,
                               zg_upconn_connected) == 0) {
                return;
            }
            zg_upconn_close(p->uc);
            p->uc = NULL;
        }
    }
    const zg_log_target_t *log = zg_request_log_scope(r);
    zg_log_error(ZG_LOG_ERR, 0, "%s while %s upstream, client: %s, upstream: \"%s\"", what,
                 connected ? (p->resp_head_sent ? "reading" : "reading response header from")
                           : "connecting to",
                 zg_conn_addr_text(r->c), p->pick.addr ? p->pick.addr->text : "-");
    zg_log_scope(log);
    zg_proxy_note_upstream(p, p->resp_head_sent ? 0 : (timeout ? 504 : 502));
    zg_upstream_free(p->u, &p->pick, 1, zg_time_msec());
    if (p->resp_head_sent) {
        p->done = 1;
        zg_proxy_detach(r);
        zg_proxy_free(p);
        zg_outq_flush(&r->c->out);
        zg_request_response_abort(r);
        return;
    }
    p->error_status = timeout ? 504 : 502;
    int mask = zg_proxy_loc_conf(r->loc_conf)->next_upstream;
    if ((timeout && !(mask & ZG_NEXT_TIMEOUT)) || (!timeout && !(mask & ZG_NEXT_ERROR)) ||
        (connected && !(mask & ZG_NEXT_NON_IDEMPOTENT) && zg_proxy_non_idempotent(r)) ||
        !zg_proxy_can_retry(p)) {
        zg_proxy_detach(r);
        zg_proxy_free(p);
        zg_request_respond(r, timeout ? 504 : 502, NULL, NULL, NULL, 0);
        return;
    }
    zg_proxy_connect(p);
}

/* proxy_pass with variables: the URI (and the upstream, when the host has
 * variables: a name among the upstreams; zonegate has no resolver) */
static int zg_proxy_eval_url(zg_request_t *r, zg_proxy_t *p, const zg_proxy_loc_conf_t *plcf)
{
    zg_str_t v;
    const char *slash;
    char host[256];
    size_t hlen;

    if (zg_cv_eval_str(plcf->url_cv, &r->ctx, &v) != ZG_OK) {
        return ZG_ERROR;
    }
    if (!plcf->host_var) {
        p->uri_var = v;
        return ZG_OK;
    }
    slash = memchr(v.data, '/', v.len);
    hlen = slash ? (size_t)(slash - v.data) : v.len;
    if (hlen == 0 || hlen >= sizeof(host)) {
        zg_log(ZG_LOG_ERR, "invalid URL prefix in \"http://%.*s\"", (int)zg_min(v.len, 256),
               v.data);
        return ZG_ERROR;
    }
    memcpy(host, v.data, hlen);
    host[hlen] = '\0';
    p->u = zg_upstream_find(r->c->w->conf, host, 0);
    if (p->u == NULL) {
        p->u = zg_upstream_find(r->c->w->conf, host, 1);
    }
    if (p->u == NULL) {
        zg_log(ZG_LOG_ERR, "no resolver defined to resolve %s, client: %s", host,
               zg_conn_addr_text(r->c));
        return ZG_ERROR;
    }
    if (slash != NULL) {
        p->uri_var.data = slash;
        p->uri_var.len = v.len - hlen;
    }
    return ZG_OK;
}

static void zg_proxy_start(zg_request_t *r)
{
    zg_proxy_t *p = zg_proxy_alloc();
    if (p == NULL) {
        zg_request_respond(r, 500, NULL, NULL, NULL, 0);
        return;
    }
    p->r = r;
    zg_proxy_scratch_t *x = zg_request_scratch(r, zg_proxy_module);
    x->upstream_addr[0] = x->upstream_status[0] = x->upstream_time[0] = '\0';
    zg_proxy_loc_conf_t *plcf = zg_proxy_loc_conf(r->loc_conf);
    p->u = plcf->upstream;
    if (plcf->url_cv != NULL && zg_proxy_eval_url(r, p, plcf) != ZG_OK) {
        zg_proxy_detach(r);
        zg_proxy_free(p);
        zg_request_respond(r, 502, NULL, NULL, NULL, 0);
        return;
    }
    zg_upstream_pick_init(&p->pick);
    zg_proxy_attach(r, p);
    p->body_done = r->body_done;
    if (zg_proxy_build_head(p) != ZG_OK) {
        zg_proxy_detach(r);
        zg_proxy_free(p);
        zg_request_respond(r, 500, NULL, NULL, NULL, 0);
        return;
    }
    if (p->chunked_up && zg_proxy_shape_loc_conf(r->loc_conf)->http10) {
        /* HTTP/1.0 has no chunked body and zonegate streams it: as nginx with
         * proxy_request_buffering off */
        zg_proxy_detach(r);
        zg_proxy_free(p);
        r->keepalive = 0;
        zg_request_respond(r, 411, NULL, NULL, NULL, 0);
        return;
    }
    if (!r->body_done && !p->drop_body) {
        /* a body up to ZG_PROXY_RETAIN is read (and its framing checked) before the
         * upstream sees anything; a larger one streams from there on */
        p->waiting_body = 1;
        p->req_buffering = zg_proxy_buffer_loc_conf(r->loc_conf)->request_buffering;
        return;
    }
    zg_proxy_connect(p);
}

static void zg_proxy_abort(zg_request_t *r)
{
    zg_proxy_t *p = zg_proxy_of(r);

    zg_proxy_detach(r);
    if (p->uc) {
        zg_upconn_close(p->uc);
        p->uc = NULL;
        zg_upstream_free(p->u, &p->pick, 0, zg_time_msec());
    }
    zg_proxy_free(p);
}

/* ---------------------------------------------------------------- module */

static const zg_content_ops_t zg_proxy_content_ops = {
    zg_proxy_body, zg_proxy_body_done, zg_proxy_abort, zg_proxy_drained
};

/* the content handler of a location with proxy_pass */
static int zg_proxy_handler(zg_request_t *r)
{
    if (r->h->expect_continue && r->h->has_body) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        zg_outq_append(&r->c->out, cont, sizeof(cont) - 1);
        zg_outq_flush(&r->c->out);
        r->sent_continue = 1;
    }
    uint64_t serial = r->c->nrequests;
    zg_proxy_start(r);
    /* the proxy may have answered already (no live peer), and a pipelined
     * request may have taken the request memory since */
    if (r->c->nrequests == serial && !r->finalized && !r->body_done && r->content != NULL) {
        zg_conn_timer(r->c, zg_http_core_loc_conf(r->loc_conf)->client_body_timeout);
        zg_conn_body(r->c);
    }
    return ZG_DONE;
}

/* a proxy_pass whose upstream may be declared later */
typedef struct {
    zg_proxy_loc_conf_t *plcf;
    const char *url;     /* as written */
    const char *host;    /* "name" or "host:port" */
    const char *file;
    int line;
} zg_proxy_pass_t;

typedef struct {
    zg_proxy_pass_t *passes;
    int npasses;
} zg_proxy_main_conf_t;

static int zg_proxy_pass(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_proxy_main_conf_t *pmcf = zg_main_conf_of(cf->conf, zg_proxy_module);
    zg_proxy_loc_conf_t *plcf = conf;
    zg_str_t *a = cf->args;
    zg_proxy_pass_t *pp;
    const char *h, *slash, *hostend, *end = a[1].data + a[1].len;

    (void)cmd;
    if (a[1].len < 7 || strncasecmp(a[1].data, "http://", 7) != 0) {
        return zg_conf_error(cf, "invalid URL prefix in \"%s\"", a[1].data);
    }
    h = a[1].data + 7;
    if (end - h > 5 && strncasecmp(h, "unix:", 5) == 0) {
        /* http://unix:/path/to.sock[:/uri], as nginx: the path ends at a ':' */
        hostend = memchr(h + 5, ':', (size_t)(end - h - 5));
        slash = hostend != NULL ? hostend + 1 : end;
        hostend = hostend != NULL ? hostend : end;
        if (slash < end && *slash != '/') {
            return zg_conf_error(cf, "invalid URL \"%s\"", a[1].data);
        }
    } else {
        slash = memchr(h, '/', (size_t)(end - h));
        if (slash == NULL) {
            slash = end;
        }
        hostend = slash;
    }
    if (slash == h) {
        return zg_conf_error(cf, "invalid host in \"%s\"", a[1].data);
    }
    if (zg_http_core_set_pass_handler(cf, zg_proxy_handler) != ZG_OK) {
        return ZG_ERROR;
    }
    plcf->pass = 1;
    if (memchr(h, '$', (size_t)(hostend - h)) != NULL) {
        /* the upstream is chosen per request among the upstreams' names */
        plcf->host_var = 1;
        plcf->url_cv = zg_conf_cv(cf, h, (size_t)(end - h));
        return plcf->url_cv != NULL ? ZG_OK : ZG_ERROR;
    }
    if (memchr(slash, '$', (size_t)(end - slash)) != NULL) {
        plcf->url_cv = zg_conf_cv(cf, slash, (size_t)(end - slash));
        if (plcf->url_cv == NULL) {
            return ZG_ERROR;
        }
        end = slash; /* no static URI */
    }
    if (slash < end && (cf->ctx & ZG_CTX_IF)) {
        return zg_conf_error(cf, "\"proxy_pass\" cannot have URI part in location given by "
                                 "regular expression, or inside named location, or inside "
                                 "\"if\" statement, or inside \"limit_except\" block");
    }
    if (slash < end) {
        plcf->uri = (char *)slash;
        plcf->uri_len = (size_t)(end - slash);
    }
    pp = zg_conf_push(cf->conf, pmcf->passes, pmcf->npasses);
    if (pp == NULL || (pp->host = zg_conf_strdup(cf->conf, h, (size_t)(hostend - h))) == NULL) {
        return zg_conf_nomem(cf);
    }
    pp->plcf = plcf;
    pp->url = a[1].data;
    pp->file = cf->file;
    pp->line = cf->line;
    return ZG_OK;
}

static int zg_proxy_set_header(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_proxy_loc_conf_t *plcf = conf;
    zg_str_t *a = cf->args;
    zg_proxy_header_t *h;

    (void)cmd;
    if (a[1].len == 0) {
        return zg_conf_invalid(cf, &a[1]);
    }
    h = zg_conf_push(cf->conf, plcf->set_headers, plcf->nset_headers);
    if (h == NULL) {
        return zg_conf_nomem(cf);
    }
    h->name.data = a[1].data;
    h->name.len = a[1].len;
    h->value = zg_conf_cv(cf, a[2].data, a[2].len);
    return h->value != NULL ? ZG_OK : ZG_ERROR;
}

static int zg_proxy_next_upstream(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    static const struct {
        const char *name;
        int bit;
    } vals[] = { { "error", ZG_NEXT_ERROR },       { "timeout", ZG_NEXT_TIMEOUT },
                 { "http_502", ZG_NEXT_HTTP_502 }, { "http_503", ZG_NEXT_HTTP_503 },
                 { "http_504", ZG_NEXT_HTTP_504 }, { "http_500", ZG_NEXT_HTTP_500 },
                 { "http_403", ZG_NEXT_HTTP_403 }, { "http_404", ZG_NEXT_HTTP_404 },
                 { "http_429", ZG_NEXT_HTTP_429 },
                 { "non_idempotent", ZG_NEXT_NON_IDEMPOTENT }, { "off", ZG_NEXT_OFF } };
    zg_proxy_loc_conf_t *plcf = conf;
    zg_str_t *a = cf->args;
    int mask = 0, n = cf->nargs;
    size_t k;

    (void)cmd;
    if (plcf->next_upstream != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    for (int i = 1; i < n; i++) {
        for (k = 0; k < zg_nelems(vals); k++) {
            if (zg_conf_eq(&a[i], vals[k].name)) {
                break;
            }
        }
        if (k == zg_nelems(vals) || (vals[k].bit == ZG_NEXT_OFF && n > 2)) {
            return zg_conf_invalid(cf, &a[i]);
        }
        mask |= vals[k].bit;
    }
    plcf->next_upstream = mask;
    return ZG_OK;
}

static void *zg_proxy_create_main_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_proxy_main_conf_t));
}

/* every proxy_pass gets its upstream: a named one, else one made for HOST:PORT */
static int zg_proxy_init_main_conf(zg_cf_t *cf, void *conf)
{
    zg_proxy_main_conf_t *pmcf = conf;
    zg_upstream_conf_t *u;
    zg_addr_t addr;
    int rc;

    for (int i = 0; i < pmcf->npasses; i++) {
        zg_proxy_pass_t *pp = &pmcf->passes[i];
        u = strchr(pp->host, ':') == NULL ? zg_upstream_find(cf->conf, pp->host, 0) : NULL;
        if (u == NULL) {
            rc = zg_conf_parse_addr(pp->host, strlen(pp->host), 80, &addr);
            if (rc == ZG_DECLINED) {
                return zg_conf_error_at(cf, pp->file, pp->line,
                                        "host not found in upstream \"%s\"", pp->host);
            }
            if (rc != ZG_OK) {
                return zg_conf_error_at(cf, pp->file, pp->line, "invalid host in \"%s\"",
                                        pp->url);
            }
            u = zg_upstream_implicit(cf, pp->host, &addr, pp->file, pp->line);
            if (u == NULL) {
                return zg_conf_error_at(cf, pp->file, pp->line, "out of memory");
            }
        }
        pp->plcf->upstream = u;
    }
    return ZG_OK;
}

static void *zg_proxy_create_loc_conf(zg_conf_t *conf)
{
    zg_proxy_loc_conf_t *c = zg_conf_alloc(conf, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->nset_headers = -1;
    c->connect_timeout = ZG_UNSET_MSEC;
    c->read_timeout = ZG_UNSET_MSEC;
    c->send_timeout = ZG_UNSET_MSEC;
    c->next_upstream = ZG_UNSET;
    c->next_upstream_tries = ZG_UNSET;
    c->intercept_errors = ZG_UNSET;
    return c;
}

static int zg_proxy_merge_loc_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_proxy_loc_conf_t *p = parent, *c = child;

    (void)cf;
    if (!c->pass) {
        /* an `if` block without proxy_pass proxies as its location does (a location's
         * own children have no content handler of it: this changes nothing there) */
        c->upstream = p->upstream;
        c->uri = p->uri;
        c->uri_len = p->uri_len;
        c->url_cv = p->url_cv;
        c->host_var = p->host_var;
    }
    if (c->nset_headers < 0) {
        c->set_headers = p->set_headers;
        c->nset_headers = p->nset_headers;
    }
    ZG_CONF_MERGE(c, p, connect_timeout, ZG_UNSET_MSEC);
    ZG_CONF_MERGE(c, p, read_timeout, ZG_UNSET_MSEC);
    ZG_CONF_MERGE(c, p, send_timeout, ZG_UNSET_MSEC);
    ZG_CONF_MERGE(c, p, next_upstream, ZG_UNSET);
    ZG_CONF_MERGE(c, p, next_upstream_tries, ZG_UNSET);
    ZG_CONF_MERGE(c, p, intercept_errors, ZG_UNSET);
    if (c->intercept_errors == ZG_UNSET) {
        c->intercept_errors = 0;
    }
    if (c->nset_headers < 0) {
        c->set_headers = NULL;
        c->nset_headers = 0;
    }
    if (c->connect_timeout == ZG_UNSET_MSEC) {
        c->connect_timeout = 60000;
    }
    if (c->read_timeout == ZG_UNSET_MSEC) {
        c->read_timeout = 60000;
    }
    if (c->send_timeout == ZG_UNSET_MSEC) {
        c->send_timeout = 60000;
    }
    if (c->next_upstream == ZG_UNSET) {
        c->next_upstream = ZG_NEXT_ERROR | ZG_NEXT_TIMEOUT;
    }
    if (c->next_upstream_tries == ZG_UNSET) {
        c->next_upstream_tries = 0;
    }
    return ZG_OK;
}

#define ZG_PX(f) offsetof(zg_proxy_loc_conf_t, f)

static const zg_command_t zg_proxy_commands[] = {
    { "proxy_pass", ZG_CTX_LOC | ZG_CTX_LIF, 0, 1, 1, zg_proxy_pass, ZG_LOC_CONF, 0, NULL },
    { "proxy_set_header", ZG_CTX_SETTINGS, 0, 2, 2, zg_proxy_set_header, ZG_LOC_CONF, 0,
      NULL },
    { "proxy_connect_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_PX(connect_timeout), NULL },
    { "proxy_read_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_PX(read_timeout), NULL },
    { "proxy_send_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_PX(send_timeout), NULL },
    { "proxy_next_upstream", ZG_CTX_SETTINGS, 0, 1, -1, zg_proxy_next_upstream, ZG_LOC_CONF,
      0, NULL },
    { "proxy_intercept_errors", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      offsetof(zg_proxy_loc_conf_t, intercept_errors), NULL },
    { "proxy_next_upstream_tries", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_num, ZG_LOC_CONF,
      ZG_PX(next_upstream_tries), NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_proxy_module = {
    .name = "proxy",
    .commands = zg_proxy_commands,
    .create_main_conf = zg_proxy_create_main_conf,
    .init_main_conf = zg_proxy_init_main_conf,
    .create_loc_conf = zg_proxy_create_loc_conf,
    .merge_loc_conf = zg_proxy_merge_loc_conf,
    .init_worker = zg_proxy_pool_init,
    .quit_worker = zg_proxy_pool_close,
    .exit_worker = zg_proxy_pool_close,
    .ctx_size = sizeof(zg_proxy_ctx_t),
    .scratch_size = sizeof(zg_proxy_scratch_t),
};
