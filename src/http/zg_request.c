/* zg_request.c — the data path of one request, in nginx's phase order:
 *   server/location -> client_max_body_size -> `return` (rewrite phase: before any
 *   limit) -> limit_req (pass, delay, reject) -> limit_conn -> allow/deny ->
 *   handler (slab_stat, metrics, proxy) -> finalize.
 * zg_request_finalize is the one exit: it runs once, however the request ended. */
#include "zg_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zg_admin.h"
#include "zg_log.h"
#include "zg_proxy.h"

static void zg_request_handler(zg_request_t *r);
static void zg_request_finalize(zg_request_t *r);

static zg_settings_t *zg_request_settings(zg_request_t *r)
{
    return r->loc ? &r->loc->s : &r->srv->s;
}

/* 1 if allowed by the location's allow/deny rules (first match wins) */
static int zg_request_access(zg_request_t *r)
{
    zg_settings_t *s = zg_request_settings(r);
    const struct sockaddr *sa = (const struct sockaddr *)&r->c->peer;
    const unsigned char *a = NULL;
    size_t alen = 0;
    int family = sa->sa_family;
    if (family == AF_INET) {
        a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        alen = 4;
    } else if (family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        a = s6->sin6_addr.s6_addr;
        alen = 16;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            family = AF_INET;
            a += 12;
            alen = 4;
        }
    }
    for (int i = 0; i < s->nrules; i++) {
        zg_access_rule_t *rule = &s->rules[i];
        if (rule->family != 0) {
            if (rule->family != family || a == NULL) {
                continue;
            }
            size_t k;
            for (k = 0; k < alen; k++) {
                if ((a[k] & rule->mask[k]) != rule->addr[k]) {
                    break;
                }
            }
            if (k < alen) {
                continue;
            }
        }
        return !rule->deny;
    }
    return 1;
}

static size_t zg_request_ratelimit_text(zg_request_t *r, char *buf, size_t len, int rejected)
{
    zg_settings_t *s = zg_request_settings(r);
    if (!s->limit_req_headers || r->lr.zone_name == NULL) {
        return 0;
    }
    int n = snprintf(buf, len,
                     "RateLimit-Policy: \"%s\";q=%llu;w=%llu\r\n"
                     "RateLimit: \"%s\";r=%llu;t=%llu\r\n",
                     r->lr.zone_name, (unsigned long long)r->lr.policy_q,
                     (unsigned long long)r->lr.policy_w, r->lr.zone_name,
                     (unsigned long long)r->lr.remaining, (unsigned long long)r->lr.reset);
    if (n < 0 || (size_t)n >= len) {
        return 0;
    }
    if (rejected) {
        int m = snprintf(buf + n, len - (size_t)n, "Retry-After: %llu\r\n",
                         (unsigned long long)zg_max(r->lr.retry_after, 1));
        if (m > 0 && (size_t)m < len - (size_t)n) {
            n += m;
        }
    }
    return (size_t)n;
}

void zg_request_ratelimit_headers(zg_request_t *r, zg_outq_t *q)
{
    char buf[512];
    size_t n = zg_request_ratelimit_text(r, buf, sizeof(buf), 0);
    if (n) {
        zg_outq_append(q, buf, n);
    }
}

void zg_request_respond(zg_request_t *r, int status, const char *extra, const char *ctype,
                        const char *body, size_t len)
{
    zg_conn_t *c = r->c;
    char stack[4096];
    if (r->resp_started || c->closing) {
        return;
    }
    r->resp_started = 1;
    /* a body we did not read and the client may not send: close after answering */
    if (r->h->has_body && !r->body_done && r->h->expect_continue && !r->sent_continue) {
        r->keepalive = 0;
    }
    if (zg_worker->quitting) {
        r->keepalive = 0;
    }
    char rl[1024];
    if (extra == NULL || !r->rl_done) {
        /* limit_req_headers on answers zonegate makes itself, too */
        size_t m = zg_request_ratelimit_text(r, rl, sizeof(rl), 0);
        if (m) {
            size_t e = extra ? strlen(extra) : 0;
            if (e + m < sizeof(rl)) {
                memmove(rl + e, rl, m + 1);
                if (e) {
                    memcpy(rl, extra, e);
                }
                extra = rl;
            }
        }
    }
    int head = r->h->method_id == 2; /* HTTP_HEAD */
    size_t n = zg_http_write_response(stack, sizeof(stack), status, r->keepalive, extra, ctype,
                                      body, len, head);
    if (n < sizeof(stack)) {
        zg_outq_append(&c->out, stack, n);
    } else {
        char *big = malloc(n + 1);
        if (big) {
            zg_http_write_response(big, n + 1, status, r->keepalive, extra, ctype, body, len,
                                   head);
            zg_outq_append(&c->out, big, n);
            free(big);
        }
    }
    r->ctx.status = status;
    r->ctx.bytes_sent = n;
    /* the slots are free before the client can see the answer and come back */
    zg_request_release(r);
    /* the generated error page counts as body, as nginx counts it */
    r->ctx.body_bytes_sent = zg_http_response_body_len(status, body, len, head);
    if (zg_outq_flush(&c->out) != ZG_OK) {
        r->keepalive = 0;
    }
    zg_request_response_done(r, r->keepalive);
}

static void zg_request_error(zg_request_t *r, int status)
{
    zg_request_respond(r, status, NULL, NULL, NULL, 0);
}

void zg_request_release(zg_request_t *r)
{
    if (r->nholds) {
        zg_limit_conn_release(r->holds, r->nholds);
        r->nholds = 0;
    }
}

void zg_request_response_done(zg_request_t *r, int keepalive)
{
    zg_conn_t *c = r->c;
    r->resp_done = 1;
    if (!keepalive) {
        r->keepalive = 0;
    }
    if (r->body_done || c->closing) {
        zg_request_finalize(r);
        return;
    }
    if (!r->keepalive) {
        /* no need to read what is left of the body */
        c->close_after = 1;
        r->body_done = 1;
        zg_request_finalize(r);
        return;
    }
    /* read and drop the rest of the body, then go on with the connection */
    r->discard_body = 1;
    zg_conn_timer(c, zg_request_settings(r)->client_body_timeout);
    zg_conn_body(c);
}

void zg_request_response_abort(zg_request_t *r)
{
    r->keepalive = 0;
    r->c->close_after = 1;
    r->resp_done = 1;
    r->body_done = 1;
    zg_request_finalize(r);
}

void zg_request_body(zg_request_t *r, const char *p, size_t n)
{
    zg_settings_t *s = zg_request_settings(r);
    r->ctx.request_length += n;
    if (s->client_max_body_size && r->h->chunked &&
        r->ctx.request_length - r->h->head_len > (uint64_t)s->client_max_body_size) {
        if (!r->resp_started) {
            if (r->proxy) {
                zg_proxy_abort(r->proxy);
                r->proxy = NULL;
            }
            r->keepalive = 0;
            zg_request_error(r, 413);
        }
        return;
    }
    zg_conn_timer(r->c, s->client_body_timeout);
    if (r->discard_body) {
        return;
    }
    if (r->proxy) {
        zg_proxy_body(r->proxy, p, n);
    }
}

void zg_request_body_done(zg_request_t *r)
{
    r->body_done = 1;
    zg_conn_timer(r->c, 0);
    if (r->discard_body || r->resp_done) {
        zg_request_finalize(r);
        return;
    }
    if (r->proxy) {
        zg_proxy_body_done(r->proxy);
    }
}

void zg_request_abort(zg_request_t *r)
{
    if (r->proxy) {
        zg_proxy_abort(r->proxy);
        r->proxy = NULL;
    }
    if (!r->resp_started) {
        r->ctx.status = 499;
    }
    r->keepalive = 0;
    zg_request_finalize(r);
}

static void zg_request_finalize(zg_request_t *r)
{
    zg_conn_t *c = r->c;
    if (r->finalized) {
        return;
    }
    r->finalized = 1;
    if (r->proxy) {
        zg_proxy_abort(r->proxy);
        r->proxy = NULL;
    }
    zg_request_release(r);
    zg_settings_t *s = zg_request_settings(r);
    if (s->access_log) {
        zg_access_log_write(s->access_log, &r->ctx);
    }
    if (zg_proc_stats) {
        int cls = r->ctx.status / 100;
        __atomic_add_fetch(&zg_proc_stats->requests, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&zg_proc_stats->responses[cls >= 1 && cls <= 5 ? cls : 0], 1,
                           __ATOMIC_RELAXED);
    }
    int keepalive = r->keepalive && !c->closing;
    if (r->delayed) {
        r->delayed = 0;
        uv_timer_stop(&r->delay_timer);
    }
    zg_conn_request_done(c, keepalive);
}

/* ---- the pipeline ---- */

static void zg_request_delayed(uv_timer_t *t)
{
    zg_conn_t *c = t->data;
    zg_request_t *r = c->req;
    if (r == NULL || !r->delayed) {
        return;
    }
    r->delayed = 0;
    zg_conn_read(r->c, 1);
    zg_request_handler(r);
}

static void zg_request_limits(zg_request_t *r)
{
    zg_settings_t *s = zg_request_settings(r);
    zg_conn_t *c = r->c;
    char extra[512];

    if (s->nlimit_req > 0) {
        int rc = zg_limit_req_check(s->limit_req, s->nlimit_req, s->limit_req_dry_run,
                                    s->limit_req_log_level, &r->ctx, zg_time_msec(), &r->lr);
        r->ctx.limit_req_status = r->lr.status;
        if (rc == ZG_BUSY || rc == ZG_ERROR) {
            size_t n = zg_request_ratelimit_text(r, extra, sizeof(extra), 1);
            r->rl_done = 1;
            zg_request_respond(r, s->limit_req_status, n ? extra : NULL, NULL, NULL, 0);
            return;
        }
        if (r->lr.delay > 0) {
            r->delayed = 1;
            uv_timer_start(&r->delay_timer, zg_request_delayed, r->lr.delay, 0);
            zg_conn_read(c, 0);
            return;
        }
    }
    zg_request_handler(r);
}

/* `return`, as nginx's rewrite phase: before limits and access rules */
static void zg_request_return(zg_request_t *r)
{
    zg_location_t *loc = r->loc;
    char tmp[2048];
    size_t n = 0;
    int code = loc->return_code;
    if (loc->return_text) {
        n = zg_cv_eval(loc->return_text, &r->ctx, 0, tmp, sizeof(tmp));
        n = zg_min(n, sizeof(tmp) - 1);
    }
    if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
        char extra[2200];
        snprintf(extra, sizeof(extra), "Location: %.*s\r\n", (int)n, tmp);
        zg_request_respond(r, code, loc->return_text ? extra : NULL, NULL, NULL, 0);
    } else if (loc->return_text) {
        zg_request_respond(r, code, NULL, "text/plain", tmp, n);
    } else if (code < 300) {
        zg_request_respond(r, code, NULL, "text/plain", "", 0);
    } else {
        zg_request_error(r, code);
    }
}

static void zg_request_handler(zg_request_t *r)
{
    zg_settings_t *s = zg_request_settings(r);

    if (s->nlimit_conn > 0) {
        int status = 0;
        int rc = zg_limit_conn_acquire(s->limit_conn, s->nlimit_conn, s->limit_conn_dry_run,
                                       s->limit_conn_log_level, &r->ctx, r->holds,
                                       &r->nholds, &status);
        r->ctx.limit_conn_status = status;
        if (rc == ZG_BUSY || rc == ZG_ERROR) {
            zg_request_error(r, s->limit_conn_status);
            return;
        }
    }

    /* allow/deny after the limits, as nginx's access phase follows preaccess */
    if (!zg_request_access(r)) {
        zg_log(ZG_LOG_ERR, "access forbidden by rule, client: %s", zg_conn_addr_text(r->c));
        zg_request_error(r, 403);
        return;
    }

    zg_location_t *loc = r->loc;
    switch (loc ? loc->handler : ZG_HANDLER_NONE) {
    case ZG_HANDLER_PROXY:
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
        if (r->c->nrequests == serial && !r->finalized && !r->body_done && r->proxy) {
            zg_conn_timer(r->c, s->client_body_timeout);
            zg_conn_body(r->c);
        }
        return;
    case ZG_HANDLER_SLAB_STAT:
    case ZG_HANDLER_METRICS: {
        size_t len = 0;
        int slab = loc->handler == ZG_HANDLER_SLAB_STAT;
        char *text = slab ? zg_admin_slab_stat(zg_worker->conf, &len)
                          : zg_admin_metrics(zg_worker->conf, &len);
        if (text == NULL) {
            zg_request_error(r, 500);
            return;
        }
        zg_request_respond(r, 200, NULL,
                           slab ? "text/plain" : "text/plain; version=0.0.4; charset=utf-8",
                           text, len);
        free(text);
        return;
    }
    default:
        zg_request_error(r, 404);
        return;
    }
}

void zg_request_start(zg_conn_t *c, zg_http_req_t *h)
{
    zg_request_t *r = c->rmem;
    if (r == NULL) {
        r = malloc(sizeof(*r));
        if (r == NULL) {
            zg_conn_close(c);
            return;
        }
        uv_timer_init(c->w->loop, &r->delay_timer);
        r->delay_timer.data = c;
        c->rmem = r;
        c->handles++;
    }
    memset((char *)r + offsetof(zg_request_t, c), 0, sizeof(*r) - offsetof(zg_request_t, c));
    r->c = c;
    r->h = h;
    c->req = r;
    zg_conn_timer(c, 0);

    zg_var_ctx_t *x = &r->ctx;
    x->remote = (const struct sockaddr *)&c->peer;
    x->method = h->method;
    x->uri = h->path;
    x->args = h->args;
    x->request_line = h->request_line;
    x->host = h->host;
    x->protocol.data = h->http_minor ? "HTTP/1.1" : "HTTP/1.0";
    x->protocol.len = 8;
    x->hdr_names = h->names;
    x->hdr_values = h->values;
    x->nhdrs = h->nhdrs;
    x->start_msec = zg_time_msec();
    x->start_time = time(NULL);
    x->connection = c->serial;
    x->connection_requests = c->nrequests;
    x->request_length = h->head_len;
    r->body_done = !h->has_body;
    if (!h->has_body) {
        /* let the parser reach the end of this bodiless message */
        zg_conn_body(c);
    }

    r->srv = zg_conf_find_server(c->ls, h->host.data, h->host.len);
    if (r->srv->nnames > 0) {
        x->server_name.data = r->srv->names[0];
        x->server_name.len = strlen(r->srv->names[0]);
    }
    r->loc = zg_conf_find_location(r->srv, h->path.data, h->path.len);
    zg_settings_t *s = zg_request_settings(r);
    r->keepalive = h->keepalive && s->keepalive_timeout > 0 && !zg_worker->quitting;

    if (s->client_max_body_size && h->content_length > s->client_max_body_size) {
        zg_log(ZG_LOG_ERR, "client intended to send too large body: %lld bytes",
               (long long)h->content_length);
        r->keepalive = 0;
        zg_request_error(r, 413);
        return;
    }
    if (r->loc && r->loc->handler == ZG_HANDLER_RETURN) {
        zg_request_return(r);
        return;
    }
    zg_request_limits(r);
}
