/* zg_proxy_sub.c — subrequests through the proxy (see zg_proxy_sub.h). */
#include "zg_proxy_sub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_http.h"
#include "zg_http_core.h"
#include "zg_log.h"
#include "zg_proxy.h"
#include "zg_proxy_shape.h"
#include "zg_request.h"
#include "zg_rewrite.h"
#include "zg_unix.h"
#include "zg_upstream.h"

#define ZG_SUB_HEAD_MAX (16 * 1024) /* the auth service's response head */
#define ZG_SUB_IDLE_MSEC 60000      /* an idle kept-alive connection (as the proxy's) */

enum {
    ZG_SUB_IDLE = 0,
    ZG_SUB_ANSWER,   /* a status known without an upstream: answer on the next tick */
    ZG_SUB_CONNECT,  /* a connect that failed at once: report it on the next tick */
    ZG_SUB_WAIT,     /* waiting for the upstream (connect, send, head) */
};

/* one upstream connection; outlives the subrequest until its handle is closed, or
 * waits idle for the next subrequest to its peer (upstream `keepalive N`) */
typedef struct zg_sub_conn_s zg_sub_conn_t;
struct zg_sub_conn_s {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t wr;
    zg_proxy_sub_t *sr;  /* NULL once given up, or idle */
    /* idle: the worker's list of kept connections */
    zg_upstream_conf_t *u;
    int peer;
    zg_msec_t idle_since;
    zg_sub_conn_t *next;
    unsigned writing : 1;  /* the request head is being written */
    unsigned reused : 1;   /* taken from the idle list */
    unsigned got_bytes : 1;
};

static zg_sub_conn_t *zg_sub_idle; /* this worker's idle connections */

struct zg_proxy_sub_s {
    uv_timer_t timer;    /* deadlines, and the next tick for answers known at once */
    zg_request_t *r;     /* NULL once cancelled or done */
    zg_proxy_sub_done_pt done;
    void *data;
    zg_upstream_conf_t *u;
    const zg_proxy_loc_conf_t *plcf;
    zg_upstream_pick_t pick;
    zg_sub_conn_t *conn;
    zg_http_resp_t *resp;
    zg_buf_t head;       /* the request head */
    zg_buf_t addrs, statuses, times;
    zg_proxy_sub_result_t res;
    zg_msec_t attempt_start;
    int state;
    int status;          /* ZG_SUB_ANSWER's status */
    int last_status;     /* of the last failed attempt: 502, 504 */
    int connect_rc;      /* ZG_SUB_CONNECT's error */
    unsigned got_head : 1;
    unsigned timed_out : 1;
    unsigned pass_headers : 1; /* the auth location's proxy_pass_request_headers */
};

static void zg_sub_attempt(zg_proxy_sub_t *sr);
static void zg_sub_open(zg_proxy_sub_t *sr, int reuse);
static void zg_sub_timer(uv_timer_t *t);

/* the connect deadline, then the read deadline once connected */
static void zg_sub_deadline(zg_proxy_sub_t *sr, zg_msec_t ms)
{
    uv_timer_start(&sr->timer, zg_sub_timer, zg_max(ms, 1), 0);
}

/* a status known now, answered on the next tick (done never runs inside start) */
static void zg_sub_answer(zg_proxy_sub_t *sr, int status)
{
    sr->state = ZG_SUB_ANSWER;
    sr->status = status;
    uv_timer_start(&sr->timer, zg_sub_timer, 0, 0);
}

static void zg_sub_conn_closed(uv_handle_t *h)
{
    free(h->data);
}

/* gives the attempt's connection up (its callbacks see sr NULL) */
static void zg_sub_conn_close(zg_proxy_sub_t *sr)
{
    zg_sub_conn_t *c = sr->conn;

    if (c != NULL) {
        c->sr = NULL;
        sr->conn = NULL;
        uv_close((uv_handle_t *)&c->tcp, zg_sub_conn_closed);
    }
}

static void zg_sub_freed(uv_handle_t *h)
{
    zg_proxy_sub_t *sr = h->data;

    zg_http_resp_destroy(sr->resp);
    zg_buf_free(&sr->head);
    zg_buf_free(&sr->addrs);
    zg_buf_free(&sr->statuses);
    zg_buf_free(&sr->times);
    free(sr);
}

static void zg_sub_free(zg_proxy_sub_t *sr)
{
    zg_sub_conn_close(sr);
    if (sr->pick.peer >= 0) {
        zg_upstream_free(sr->u, &sr->pick, 0, zg_time_msec());
    }
    sr->r = NULL;
    uv_close((uv_handle_t *)&sr->timer, zg_sub_freed);
}

/* a copy of b's bytes in request memory */
static zg_str_t zg_sub_str(zg_request_t *r, const zg_buf_t *b)
{
    zg_str_t s = { 0, "" };
    char *p;

    if (b->len > 0 && !b->failed && (p = zg_var_alloc(&r->ctx, b->len)) != NULL) {
        memcpy(p, b->data, b->len);
        s.data = p;
        s.len = b->len;
    }
    return s;
}

static void zg_sub_finish(zg_proxy_sub_t *sr, int status)
{
    zg_request_t *r = sr->r;
    zg_proxy_sub_done_pt done = sr->done;
    void *data = sr->data;
    zg_proxy_sub_result_t res = sr->res;

    res.status = status;
    res.upstream_addr = zg_sub_str(r, &sr->addrs);
    res.upstream_status = zg_sub_str(r, &sr->statuses);
    res.upstream_response_time = zg_sub_str(r, &sr->times);
    zg_sub_free(sr);
    done(r, data, &res);
}

/* the end of an attempt: its status and time in $upstream_status and _response_time */
static void zg_sub_note(zg_proxy_sub_t *sr, int status)
{
    zg_msec_t t = zg_time_msec() - sr->attempt_start;

    if (sr->statuses.len > 0) {
        zg_buf_append(&sr->statuses, ", ", 2);
        zg_buf_append(&sr->times, ", ", 2);
    }
    zg_buf_num(&sr->statuses, (uint64_t)status);
    zg_buf_printf(&sr->times, "%llu.%03llu", (unsigned long long)(t / 1000),
                  (unsigned long long)(t % 1000));
}

/* an attempt failed: the next peer (proxy_next_upstream error|timeout), else status */
static void zg_sub_fail(zg_proxy_sub_t *sr, int timeout, const char *what)
{
    const zg_proxy_loc_conf_t *s = sr->plcf;
    int status = timeout ? 504 : 502;
    int next = s->next_upstream & (timeout ? ZG_NEXT_TIMEOUT : ZG_NEXT_ERROR);
    const zg_log_target_t *log;

    if (!timeout && sr->conn != NULL && sr->conn->reused && !sr->conn->got_bytes) {
        /* a kept-alive connection the upstream closed meanwhile: a new one, same peer */
        zg_sub_conn_close(sr);
        zg_sub_open(sr, 0);
        return;
    }
    log = zg_request_log_scope(sr->r);
    zg_log_error(ZG_LOG_ERR, 0, "%s while reading the auth subrequest's response header, "
                 "client: %s, upstream: \"%s\"", what, zg_conn_addr_text(sr->r->c),
                 sr->pick.addr ? sr->pick.addr->text : "-");
    zg_log_scope(log);
    zg_sub_note(sr, status);
    sr->last_status = status;
    zg_sub_conn_close(sr);
    zg_upstream_free(sr->u, &sr->pick, 1, zg_time_msec());
    if (next && !(s->next_upstream & ZG_NEXT_OFF)
        && (s->next_upstream_tries == 0 || sr->pick.tries < s->next_upstream_tries)) {
        zg_sub_attempt(sr);
        return;
    }
    zg_sub_finish(sr, status);
}

/* ---- the response head ---- */

static void zg_sub_on_head(void *data, zg_http_resp_head_t *rh)
{
    zg_proxy_sub_t *sr = data;
    zg_str_t *names, *values;

    sr->got_head = 1;
    sr->res.status = rh->status;
    sr->res.nhdrs = zg_proxy_copy_headers(&sr->r->ctx, rh, &names, &values);
    sr->res.names = names;
    sr->res.values = values;
}

static void zg_sub_on_body(void *data, const char *p, size_t n)
{
    (void)data;
    (void)p;
    (void)n;
}

static void zg_sub_on_done(void *data)
{
    (void)data;
}

static const zg_http_resp_handlers_t zg_sub_resp_handlers = {
    zg_sub_on_head, zg_sub_on_body, zg_sub_on_done
};

/* ---- the connection ---- */

static void zg_sub_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[512];
    zg_sub_conn_t *c = h->data;
    size_t len = 0;
    char *b;

    (void)suggested;
    if (c->sr == NULL) {
        *buf = uv_buf_init(scratch, sizeof(scratch));
        return;
    }
    b = zg_http_resp_buffer(c->sr->resp, &len);
    *buf = uv_buf_init(b, (unsigned)len);
}

static void zg_sub_idle_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[64];

    (void)h;
    (void)suggested;
    *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void zg_sub_idle_drop(zg_sub_conn_t *c)
{
    for (zg_sub_conn_t **pp = &zg_sub_idle; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    uv_close((uv_handle_t *)&c->tcp, zg_sub_conn_closed);
}

/* an idle connection: the upstream closed it or sent bytes nobody asked for */
static void zg_sub_idle_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread != 0) {
        zg_sub_idle_drop(s->data);
    }
}

/* keeps the connection of a complete, reusable answer for the next subrequest to
 * its peer (upstream `keepalive N`: at most N idle per upstream and worker); 1 =
 * kept, 0 = the caller closes it */
static int zg_sub_keep(zg_proxy_sub_t *sr)
{
    zg_sub_conn_t *c = sr->conn;
    int n = 0;

    if (c == NULL || sr->u->keepalive <= 0 || c->writing || sr->r->c->w->quitting
        || !zg_http_resp_reusable(sr->resp)) {
        return 0;
    }
    for (zg_sub_conn_t *i = zg_sub_idle; i != NULL; i = i->next) {
        n += i->u == sr->u;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (n >= sr->u->keepalive
        || uv_read_start((uv_stream_t *)&c->tcp, zg_sub_idle_alloc, zg_sub_idle_read) != 0) {
        return 0;
    }
    c->sr = NULL;
    c->u = sr->u;
    c->peer = sr->pick.peer;
    c->idle_since = zg_time_msec();
    c->next = zg_sub_idle;
    zg_sub_idle = c;
    sr->conn = NULL;
    return 1;
}

/* an idle connection to peer of u (the expired ones closed on the way); NULL = none */
static zg_sub_conn_t *zg_sub_idle_get(zg_upstream_conf_t *u, int peer)
{
    zg_msec_t now = zg_time_msec();

    for (zg_sub_conn_t **pp = &zg_sub_idle; *pp != NULL;) {
        zg_sub_conn_t *c = *pp;
        if (now - c->idle_since >= ZG_SUB_IDLE_MSEC) {
            *pp = c->next;
            uv_close((uv_handle_t *)&c->tcp, zg_sub_conn_closed);
            continue;
        }
        if (c->u == u && c->peer == peer) {
            *pp = c->next;
            uv_read_stop((uv_stream_t *)&c->tcp);
            return c;
        }
        pp = &c->next;
    }
    return NULL;
}

void zg_proxy_sub_pool_close(void)
{
    while (zg_sub_idle != NULL) {
        zg_sub_conn_t *c = zg_sub_idle;
        zg_sub_idle = c->next;
        uv_close((uv_handle_t *)&c->tcp, zg_sub_conn_closed);
    }
}

/* complete: the whole answer was read (it may be kept alive) */
static void zg_sub_got_head(zg_proxy_sub_t *sr, int complete)
{
    int status = sr->res.status;

    zg_sub_note(sr, status);
    if (!complete || !zg_sub_keep(sr)) {
        zg_sub_conn_close(sr);
    }
    zg_upstream_free(sr->u, &sr->pick, 0, zg_time_msec());
    zg_sub_finish(sr, status);
}

static void zg_sub_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    zg_sub_conn_t *c = s->data;
    zg_proxy_sub_t *sr = c->sr;
    int rc;

    (void)buf;
    if (sr == NULL || nread == 0) {
        return;
    }
    if (nread < 0) {
        if (sr->got_head) {
            zg_sub_got_head(sr, 0);
        } else {
            zg_sub_fail(sr, 0, nread == UV_EOF ? "upstream prematurely closed connection"
                                               : "recv() failed");
        }
        return;
    }
    c->got_bytes = 1;
    rc = zg_http_resp_feed(sr->resp, (size_t)nread);
    if (sr->got_head) {
        if (rc == ZG_OK && sr->u->keepalive > 0) {
            return; /* the rest of the answer is read (discarded), to keep the connection */
        }
        /* without keepalive the body is not waited for (header only) */
        zg_sub_got_head(sr, rc == ZG_DONE);
        return;
    }
    if (rc != ZG_OK) {
        zg_sub_fail(sr, 0, "upstream sent an invalid response");
    }
}

static void zg_sub_written(uv_write_t *req, int status)
{
    zg_sub_conn_t *c = req->data;

    c->writing = 0;
    if (c->sr != NULL && status < 0) {
        zg_sub_fail(c->sr, 0, "send() failed");
    }
}

static void zg_sub_connected(uv_connect_t *req, int status)
{
    zg_sub_conn_t *c = req->data;
    zg_proxy_sub_t *sr = c->sr;
    uv_buf_t b;
    char what[128];

    if (sr == NULL || status == UV_ECANCELED) {
        return;
    }
    if (status < 0) {
        snprintf(what, sizeof(what), "connect() failed (%s)", uv_strerror(status));
        zg_sub_fail(sr, 0, what);
        return;
    }
    zg_sub_deadline(sr, sr->plcf->read_timeout);
    b = uv_buf_init(sr->head.data, (unsigned)sr->head.len);
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, zg_sub_written) != 0) {
        zg_sub_fail(sr, 0, "send() failed");
        return;
    }
    c->writing = 1;
    if (uv_read_start((uv_stream_t *)&c->tcp, zg_sub_alloc, zg_sub_on_read) != 0) {
        zg_sub_fail(sr, 0, "recv() failed");
    }
}

static void zg_sub_timer(uv_timer_t *t)
{
    zg_proxy_sub_t *sr = t->data;

    switch (sr->state) {
    case ZG_SUB_ANSWER:
        zg_sub_finish(sr, sr->status);
        return;
    case ZG_SUB_CONNECT:
        sr->state = ZG_SUB_WAIT;
        zg_sub_connected(&sr->conn->connect, sr->connect_rc);
        return;
    case ZG_SUB_WAIT:
        zg_sub_fail(sr, 1, "upstream timed out");
        return;
    }
}

static void zg_sub_attempt(zg_proxy_sub_t *sr)
{
    zg_request_t *r = sr->r;

    if (zg_upstream_get(sr->u, &sr->pick, zg_time_msec()) != ZG_OK) {
        if (sr->pick.tries == 0) {
            const zg_log_target_t *log = zg_request_log_scope(r);
            zg_log_error(ZG_LOG_ERR, 0, "no live upstreams while connecting to upstream \"%s\"",
                         sr->u->name);
            zg_log_scope(log);
        }
        zg_sub_answer(sr, sr->last_status ? sr->last_status : 502);
        return;
    }
    if (sr->addrs.len > 0) {
        zg_buf_append(&sr->addrs, ", ", 2);
    }
    zg_buf_str(&sr->addrs, sr->pick.addr->text);
    sr->attempt_start = zg_time_msec();
    zg_sub_open(sr, 1);
}

/* a connection to the picked peer: a kept-alive one (reuse), else a new one */
static void zg_sub_open(zg_proxy_sub_t *sr, int reuse)
{
    zg_request_t *r = sr->r;
    zg_sub_conn_t *c = NULL;
    int rc;

    sr->got_head = 0;
    zg_http_resp_reset(sr->resp, 0);
    if (reuse && sr->u->keepalive > 0
        && (c = zg_sub_idle_get(sr->u, sr->pick.peer)) != NULL) {
        c->sr = sr;
        c->reused = 1;
        c->got_bytes = 0;
        sr->conn = c;
        sr->state = ZG_SUB_CONNECT; /* "connected", on the next tick */
        sr->connect_rc = 0;
        uv_timer_start(&sr->timer, zg_sub_timer, 0, 0);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        zg_upstream_free(sr->u, &sr->pick, 0, zg_time_msec());
        zg_sub_answer(sr, 500);
        return;
    }
    uv_tcp_init(r->c->w->loop, &c->tcp);
    c->tcp.data = c->connect.data = c->wr.data = c;
    c->sr = sr;
    sr->conn = c;
    sr->state = ZG_SUB_WAIT;
    if (sr->pick.addr->sa.ss_family == AF_UNIX) {
        rc = zg_unix_connect(&c->tcp, sr->pick.addr);
    } else {
        rc = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&sr->pick.addr->sa,
                            zg_sub_connected);
    }
    if (rc != 0 || sr->pick.addr->sa.ss_family == AF_UNIX) {
        /* known now; reported on the next tick (done never runs inside start) */
        sr->state = ZG_SUB_CONNECT;
        sr->connect_rc = rc;
        uv_timer_start(&sr->timer, zg_sub_timer, 0, 0);
        return;
    }
    zg_sub_deadline(sr, sr->plcf->connect_timeout);
}

/* ---- the request head ---- */

static int zg_sub_build_head(zg_proxy_sub_t *sr, const char *uri, size_t len)
{
    zg_request_t *r = sr->r;
    zg_http_req_t *h = r->h;
    const zg_proxy_loc_conf_t *s = sr->plcf;
    zg_buf_t *b = &sr->head;
    const zg_str_t *xff = NULL, *host = NULL;
    int host_set = 0, xff_set = 0, xri_set = 0;
    char tmp[4096], abuf[64];
    const char *addr;

    zg_buf_append(b, "GET ", 4);
    zg_buf_append(b, uri, len);
    zg_buf_append(b, " HTTP/1.1\r\n", 11);
    /* the request's headers, less hop-by-hop ones and what has no body; none with
     * proxy_pass_request_headers off (then only proxy_set_header's, as nginx) */
    size_t nhdrs = sr->pass_headers ? h->nhdrs : 0;
    for (size_t i = 0; i < nhdrs; i++) {
        const zg_str_t *n = &h->names[i];
        int overridden = 0;
        if (zg_proxy_header_not_passed(n)) {
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
        for (int k = 0; k < s->nset_headers; k++) {
            if (zg_http_name_eq(n, s->set_headers[k].name.data, s->set_headers[k].name.len)) {
                overridden = 1;
                break;
            }
        }
        if (!overridden) {
            zg_buf_append(b, n->data, n->len);
            zg_buf_append(b, ": ", 2);
            zg_buf_append(b, h->values[i].data, h->values[i].len);
            zg_buf_append(b, "\r\n", 2);
        }
    }
    for (int k = 0; k < s->nset_headers; k++) {
        const zg_proxy_header_t *hc = &s->set_headers[k];
        size_t n = zg_cv_eval(hc->value, &r->ctx, 0, tmp, sizeof(tmp));
        n = zg_http_header_safe(tmp, zg_min(n, sizeof(tmp)), sizeof(tmp));
        host_set |= zg_http_name_eq(&hc->name, "host", 4);
        xff_set |= zg_http_name_eq(&hc->name, "x-forwarded-for", 15);
        xri_set |= zg_http_name_eq(&hc->name, "x-real-ip", 9);
        if (n > 0) {
            zg_buf_append(b, hc->name.data, hc->name.len);
            zg_buf_append(b, ": ", 2);
            zg_buf_append(b, tmp, n);
            zg_buf_append(b, "\r\n", 2);
        }
    }
    if (!host_set) {
        if (host != NULL) {
            zg_buf_append(b, "Host: ", 6);
            zg_buf_append(b, host->data, host->len);
            zg_buf_append(b, "\r\n", 2);
        } else {
            zg_buf_printf(b, "Host: %s\r\n",
                          !sr->u->implicit ? sr->u->name
                          : sr->u->servers[0].addr.sa.ss_family == AF_UNIX
                              ? "localhost"
                              : sr->u->servers[0].addr.text);
        }
    }
    addr = r->ctx.realip == NULL ? zg_conn_addr_text(r->c)
                                 : zg_var_client(&r->ctx, abuf, sizeof(abuf));
    if (!xff_set) {
        zg_buf_append(b, "X-Forwarded-For: ", 17);
        if (xff != NULL) {
            zg_buf_append(b, xff->data, xff->len);
            zg_buf_append(b, ", ", 2);
        }
        zg_buf_str(b, addr);
        zg_buf_append(b, "\r\n", 2);
    }
    if (!xri_set) {
        zg_buf_append(b, "X-Real-IP: ", 11);
        zg_buf_str(b, addr);
        zg_buf_append(b, "\r\n", 2);
    }
    if (sr->u->keepalive > 0) {
        zg_buf_append(b, "Connection: keep-alive\r\n\r\n", 26);
    } else {
        zg_buf_append(b, "Connection: close\r\n\r\n", 21);
    }
    return b->failed ? ZG_ERROR : ZG_OK;
}

/* the location's upstream and the URI to send; ZG_OK, or a status to answer */
static int zg_sub_target(zg_proxy_sub_t *sr, const zg_str_t *uri, zg_buf_t *target)
{
    zg_request_t *r = sr->r;
    const char *q = memchr(uri->data, '?', uri->len);
    size_t plen = q ? (size_t)(q - uri->data) : uri->len;
    zg_location_t *loc = zg_http_find_location(r->srv, uri->data, plen, NULL);
    const zg_rewrite_loc_conf_t *rw;
    const zg_proxy_loc_conf_t *plcf;
    zg_str_t v;

    if (loc == NULL) {
        return 404;
    }
    rw = zg_rewrite_loc_conf(loc->loc_conf);
    plcf = zg_proxy_loc_conf(loc->loc_conf);
    if (rw->list.n > 0 && rw->list.codes[0].op == ZG_RW_RETURN) {
        return rw->list.codes[0].code; /* `return CODE` first: the answer */
    }
    if (!plcf->pass || plcf->host_var || plcf->upstream == NULL) {
        zg_log(ZG_LOG_ERR, "auth subrequest to \"%.*s\": its location has no proxy_pass to "
               "an upstream (nor a return first)", (int)zg_min(uri->len, 256), uri->data);
        return 500;
    }
    sr->plcf = plcf;
    sr->u = plcf->upstream;
    sr->pass_headers = zg_proxy_shape_loc_conf(loc->loc_conf)->pass_headers != 0;
    if (plcf->url_cv != NULL) {
        if (zg_cv_eval_str(plcf->url_cv, &r->ctx, &v) != ZG_OK) {
            return 500;
        }
        zg_buf_append(target, v.data, v.len);
    } else if (plcf->uri != NULL) {
        size_t skip = zg_min(loc->path_len, plen);
        zg_buf_append(target, plcf->uri, plcf->uri_len);
        zg_buf_append(target, uri->data + skip, uri->len - skip);
    } else {
        zg_buf_append(target, uri->data, uri->len);
    }
    if (target->len == 0) {
        zg_buf_append(target, "/", 1);
    }
    return target->failed ? 500 : ZG_OK;
}

zg_proxy_sub_t *zg_proxy_sub_start(zg_request_t *r, const zg_str_t *uri,
                                   zg_proxy_sub_done_pt done, void *data)
{
    zg_proxy_sub_t *sr = calloc(1, sizeof(*sr));
    zg_buf_t target = ZG_BUF_INIT;
    int rc;

    if (sr == NULL) {
        return NULL;
    }
    sr->resp = zg_http_resp_create(ZG_SUB_HEAD_MAX, &zg_sub_resp_handlers, sr);
    if (sr->resp == NULL) {
        free(sr);
        return NULL;
    }
    sr->r = r;
    sr->done = done;
    sr->data = data;
    zg_upstream_pick_init(&sr->pick);
    uv_timer_init(r->c->w->loop, &sr->timer);
    sr->timer.data = sr;
    rc = zg_sub_target(sr, uri, &target);
    if (rc == ZG_OK && zg_sub_build_head(sr, target.data, target.len) != ZG_OK) {
        rc = 500;
    }
    zg_buf_free(&target);
    if (rc != ZG_OK) {
        zg_sub_answer(sr, rc);
        return sr;
    }
    zg_sub_attempt(sr);
    return sr;
}

int zg_proxy_sub_head(zg_request_t *r, const zg_str_t *uri, zg_upstream_conf_t **u,
                      const zg_proxy_loc_conf_t **plcf, zg_buf_t *head)
{
    zg_proxy_sub_t sr;
    zg_buf_t target = ZG_BUF_INIT;
    int rc;

    memset(&sr, 0, sizeof(sr));
    sr.r = r;
    rc = zg_sub_target(&sr, uri, &target);
    if (rc == ZG_OK && zg_sub_build_head(&sr, target.data, target.len) != ZG_OK) {
        rc = 500;
    }
    zg_buf_free(&target);
    if (rc != ZG_OK) {
        zg_buf_free(&sr.head);
        return rc;
    }
    *u = sr.u;
    *plcf = sr.plcf;
    *head = sr.head;
    return ZG_OK;
}

void zg_proxy_sub_cancel(zg_proxy_sub_t *sr)
{
    zg_sub_free(sr);
}
