/* zg_request.c — the data path of one request, in nginx's phase order:
 *   server -> server rewrite (real_ip, return, rewrite, set, if) -> location (and
 *   client_max_body_size) -> location rewrite (a changed URI finds the location
 *   again, 10 times at most) -> preaccess (limit_req: pass, delay, reject;
 *   limit_conn) -> access (allow/deny, auth_basic; satisfy all|any) -> the
 *   location's content handler (slab_stat, metrics, proxy) -> finalize.  A status
 *   page of the phases may become an internal redirect (error_page), which starts
 *   the phases again from the server rewrite.
 * The phase handlers are the modules' (zg_modules.c order within a phase); this
 * file names none of them.  zg_request_finalize is the one exit: it runs once,
 * however the request ended. */
#include "zg_request.h"

#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zg_log.h"
#include "zg_proc.h"
#include "zg_response.h"

static void zg_request_finalize(zg_request_t *r);

/* the modules' hooks, gathered once from zg_modules */
static struct {
    int ready;
    zg_phase_handler_pt phase[2 * ZG_MAX_MODULES + 2];
    int nphase;
    int find_location;            /* the core's handler that finds the location */
    int access_first, access_end; /* the access phase's handlers: [first, end) */
    zg_module_t *release[ZG_MAX_MODULES];
    int nrelease;
    zg_module_t *log[ZG_MAX_MODULES];
    int nlog;
    zg_module_t *headers[ZG_MAX_MODULES];
    int nheaders;
    zg_module_t *error_page;       /* the module that answers status pages instead */
} zg_hooks;

/* a core handler's answer: go on from r->phase */
#define ZG_REQUEST_JUMP 100

static void zg_request_error(zg_request_t *r, int status);
static void zg_request_slash_redirect(zg_request_t *r);

/* Finds the location for ctx.uri (after the server rewrite, and again after a
 * rewrite changed the URI); its settings then apply. */
static int zg_request_find_location(zg_request_t *r)
{
    zg_var_ctx_t *x = &r->ctx;
    zg_http_req_t *h = r->h;
    zg_http_core_loc_conf_t *clcf;

    r->located = 1;
    r->uri_changed = 0;
    r->invalid_location = 0;
    int redirect;
    r->loc = zg_http_core_find_location(r->srv, x->uri.data, x->uri.len, &r->caps, &redirect);
    r->loc_conf = r->loc ? r->loc->loc_conf : r->srv->loc_conf;
    clcf = zg_http_core_loc_conf(r->loc_conf);
    if (clcf->error_log != NULL) {
        zg_log_scope(clcf->error_log); /* zg_request_run_phases puts the outer one back */
    }
    if (redirect) {
        zg_request_slash_redirect(r);
        return ZG_DONE;
    }
    if (clcf->internal && !r->internal) {
        zg_request_error(r, 404); /* reached only by internal redirects */
        return ZG_DONE;
    }
    r->keepalive = h->keepalive && clcf->keepalive_timeout > 0 && !r->c->w->quitting &&
                   r->c->nrequests < (uint64_t)clcf->keepalive_requests;
    if (clcf->keepalive_header) {
        r->want_headers = 1; /* Keep-Alive: timeout=N */
    }
    zg_conn_nodelay(r->c, clcf->tcp_nodelay);
    if (clcf->client_max_body_size && h->content_length > clcf->client_max_body_size) {
        zg_log(ZG_LOG_ERR, "client intended to send too large body: %lld bytes",
               (long long)h->content_length);
        r->keepalive = 0;
        zg_request_error(r, 413);
        return ZG_DONE;
    }
    return ZG_DECLINED;
}

/* a rewrite changed the URI: find the location again, 10 times at most */
static int zg_request_post_rewrite(zg_request_t *r)
{
    if (!r->uri_changed) {
        return ZG_DECLINED;
    }
    if (++r->uri_changes > 10) {
        zg_log(ZG_LOG_ERR, "rewrite or internal redirection cycle while processing \"%.*s\"",
               (int)zg_min(r->ctx.uri.len, 256), r->ctx.uri.data);
        return ZG_ERROR;
    }
    r->phase = zg_hooks.find_location;
    return ZG_REQUEST_JUMP;
}

static void zg_request_hooks_init(void)
{
    zg_modules_init();
    if (zg_modules_ctx_size > ZG_REQUEST_CTX_MAX) {
        zg_log_error(ZG_LOG_EMERG, 0, "modules' request state of %zu bytes exceeds %d",
                     zg_modules_ctx_size, ZG_REQUEST_CTX_MAX);
        abort();
    }
    for (int p = ZG_PHASE_NONE + 1; p < ZG_PHASE_LAST; p++) {
        if (p == ZG_PHASE_ACCESS) {
            zg_hooks.access_first = zg_hooks.nphase;
        }
        /* the rewrite phase runs for the server, then the location is found, then
         * it runs for the location, then a changed URI finds the location again */
        for (int pass = 0; pass < (p == ZG_PHASE_REWRITE ? 2 : 1); pass++) {
            if (pass == 1) {
                zg_hooks.find_location = zg_hooks.nphase;
                zg_hooks.phase[zg_hooks.nphase++] = zg_request_find_location;
            }
            for (int i = 0; zg_modules[i] != NULL; i++) {
                if (zg_modules[i]->phase == p && zg_modules[i]->handler != NULL) {
                    zg_hooks.phase[zg_hooks.nphase++] = zg_modules[i]->handler;
                }
            }
            if (pass == 1) {
                zg_hooks.phase[zg_hooks.nphase++] = zg_request_post_rewrite;
            }
        }
        if (p == ZG_PHASE_ACCESS) {
            zg_hooks.access_end = zg_hooks.nphase;
        }
    }
    for (int i = 0; zg_modules[i] != NULL; i++) {
        zg_module_t *m = zg_modules[i];
        /* a body filter's state is given back through the response pipeline, only
         * for the requests that turned the filter on */
        if (m->release != NULL && m->body_filter == NULL) {
            zg_hooks.release[zg_hooks.nrelease++] = m;
        }
        if (m->log != NULL) {
            zg_hooks.log[zg_hooks.nlog++] = m;
        }
        if (m->headers != NULL) {
            zg_hooks.headers[zg_hooks.nheaders++] = m;
        }
        if (m->error_page != NULL && zg_hooks.error_page == NULL) {
            zg_hooks.error_page = m;
        }
    }
    zg_hooks.ready = 1;
}

static zg_http_core_loc_conf_t *zg_request_core(zg_request_t *r)
{
    return zg_http_core_loc_conf(r->loc_conf);
}

static size_t zg_request_headers_text(zg_request_t *r, char *buf, size_t len, int rejected)
{
    size_t n = 0;

    for (int i = 0; i < zg_hooks.nheaders; i++) {
        n += zg_hooks.headers[i]->headers(r, buf + n, len - n, rejected);
    }
    return n;
}

void zg_request_headers_add(zg_request_t *r, zg_outq_t *q)
{
    char buf[ZG_REQUEST_HEADERS_MAX];
    size_t n = zg_request_headers_text(r, buf, sizeof(buf), 0);
    if (n) {
        zg_outq_append(q, buf, n);
    }
}

/* $sent_http_NAME of an answer zonegate makes: its Content-Type and the extra lines
 * (Location, add_header, RateLimit ...), in request memory (only when some value
 * of the config reads $sent_http_ or $upstream_http_) */
static void zg_request_sent_headers(zg_request_t *r, int status, const char *extra,
                                    const char *ctype, const char *body)
{
    zg_var_ctx_t *x = &r->ctx;
    size_t n = 1, k = 0;
    const char *p, *e;
    zg_str_t *names, *values;
    char *copy;

    if (extra != NULL) {
        /* the lines live on the caller's stack: the log reads them later */
        size_t len = strlen(extra);
        if ((copy = zg_var_alloc(x, len + 1)) == NULL) {
            return;
        }
        memcpy(copy, extra, len + 1);
        extra = copy;
    }
    for (p = extra; p != NULL && (p = strstr(p, "\r\n")) != NULL; p += 2) {
        n++;
    }
    names = zg_var_alloc(x, 2 * n * sizeof(zg_str_t));
    if (names == NULL) {
        return;
    }
    values = names + n;
    if (!(status == 204 || status == 304 || (status >= 100 && status < 200)) || body) {
        names[k] = (zg_str_t)zg_string("Content-Type");
        values[k].data = ctype ? ctype : "text/html";
        values[k].len = strlen(values[k].data);
        k++;
    }
    for (p = extra; p != NULL && *p && (e = strstr(p, "\r\n")) != NULL; p = e + 2) {
        const char *colon = memchr(p, ':', (size_t)(e - p));
        if (colon == NULL || k >= n) {
            continue;
        }
        names[k].data = p;
        names[k].len = (size_t)(colon - p);
        values[k].data = colon + 1 + (colon + 1 < e && colon[1] == ' ');
        values[k].len = (size_t)(e - values[k].data);
        k++;
    }
    x->sent_names = names;
    x->sent_values = values;
    x->nsent = k;
}

void zg_request_respond(zg_request_t *r, int status, const char *extra, const char *ctype,
                        const char *body, size_t len)
{
    zg_conn_t *c = r->c;
    char stack[4096];
    if (r->resp_started || c->closing) {
        return;
    }
    /* a status page from a phase handler may be an error_page instead */
    if (body == NULL && extra == NULL && status >= 300 && !r->error_page && r->content == NULL
        && zg_hooks.error_page != NULL && zg_hooks.error_page->error_page(r, status) == ZG_DONE) {
        return;
    }
    if (body == NULL && status >= 300) {
        r->err_status = 0; /* a status page has its own status, as nginx's */
    }
    if (r->err_status) {
        status = r->err_status;
    }
    r->resp_started = 1;
    /* a body we did not read and the client may not send: close after answering */
    if (r->h->has_body && !r->body_done && r->h->expect_continue && !r->sent_continue) {
        r->keepalive = 0;
    }
    if (c->w->quitting) {
        r->keepalive = 0;
    }
    char rl[ZG_REQUEST_HEADERS_MAX];
    r->ctx.status = status; /* the header hooks look at it (add_header) */
    if (r->want_headers && (extra == NULL || !r->headers_done)) {
        /* the modules' headers go on answers zonegate makes itself, too */
        size_t m = zg_request_headers_text(r, rl, sizeof(rl) - 1, 0);
        if (m) {
            rl[m] = '\0';
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
    if (zg_response_filters(r)) {
        /* a module filters the responses here: the answer goes through them */
        zg_response_local(r, status, extra, ctype, body, len);
        size_t body_sent = r->ctx.body_bytes_sent;
        zg_request_release(r);
        r->ctx.body_bytes_sent = body_sent;
        if (zg_outq_flush(&c->out) != ZG_OK) {
            r->keepalive = 0;
        }
        zg_request_response_done(r, r->keepalive);
        return;
    }
    if (zg_vars_resp_headers(r->ctx.vars)) {
        zg_request_sent_headers(r, status, extra, ctype, body);
    }
    int head = r->h->head;
    int flags = (r->keepalive ? 1 : 0) |
                (zg_request_core(r)->server_tokens ? ZG_HTTP_TOKENS : 0);
    size_t n = zg_http_write_response(stack, sizeof(stack), status, flags, extra, ctype,
                                      body, len, head);
    if (n < sizeof(stack)) {
        zg_outq_append(&c->out, stack, n);
    } else {
        char *big = malloc(n + 1);
        if (big) {
            zg_http_write_response(big, n + 1, status, flags, extra, ctype, body, len, head);
            zg_outq_append(&c->out, big, n);
            free(big);
        }
    }
    r->ctx.status = status;
    r->ctx.bytes_sent = n;
    /* what the request holds is given back before the client can see the answer
     * and come back */
    zg_request_release(r);
    /* the generated error page counts as body, as nginx counts it */
    r->ctx.body_bytes_sent = zg_http_response_body_len(status, body, len, head,
                                                       flags & ZG_HTTP_TOKENS);
    if (zg_outq_flush(&c->out) != ZG_OK) {
        r->keepalive = 0;
    }
    zg_request_response_done(r, r->keepalive);
}

static void zg_request_error(zg_request_t *r, int status)
{
    zg_request_respond(r, status, NULL, NULL, NULL, 0);
}

/* nginx's auto redirect: "/x" to the location "/x/" that proxies, 301 with an absolute
 * Location (absolute_redirect, port_in_redirect) */
static __attribute__((noinline)) void zg_request_slash_redirect(zg_request_t *r)
{
    zg_request_redirect_to(r, 301, r->loc->path, r->loc->path_len, 1);
}

size_t zg_request_origin(zg_request_t *r, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN + 2];
    struct sockaddr_storage ss;
    int sslen = sizeof(ss), port = 0;
    const zg_str_t *h = &r->ctx.host;
    size_t n;

    host[0] = '\0';
    if (uv_tcp_getsockname(&r->c->tcp, (struct sockaddr *)&ss, &sslen) == 0) {
        if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
            host[0] = '[';
            inet_ntop(AF_INET6, &s6->sin6_addr, host + 1, INET6_ADDRSTRLEN);
            strcat(host, "]");
            port = ntohs(s6->sin6_port);
        } else if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
            port = ntohs(s4->sin_port);
        }
    }
    n = (size_t)snprintf(buf, cap, "http%s://%.*s", r->c->tls ? "s" : "",
                         (int)zg_min(h->len, 1024), h->len > 0 ? h->data : host);
    if (port != (r->c->tls ? 443 : 80) && port != 0 && n < cap) {
        n += (size_t)snprintf(buf + n, cap - n, ":%d", port);
    }
    return zg_min(n, cap - 1);
}

/* http://HOST[:PORT]PATH[?ARGS], PATH %-escaped as nginx's ngx_escape_uri does a URI
 * when escape is set */
void zg_request_redirect_to(zg_request_t *r, int status, const char *path, size_t len,
                            int escape)
{
    static const char hex[] = "0123456789ABCDEF";
    char extra[4096];
    const zg_str_t *args = &r->ctx.args;
    size_t n, cap = sizeof(extra) - 3;

    memcpy(extra, "Location: ", 10);
    n = 10 + zg_request_origin(r, extra + 10, cap - 10);
    for (size_t i = 0; i < len && n + 3 < cap; i++) {
        unsigned char ch = (unsigned char)path[i];
        if (escape && (ch <= ' ' || ch >= 0x7f || ch == '"' || ch == '#' || ch == '%' ||
                       ch == '?')) {
            extra[n++] = '%';
            extra[n++] = hex[ch >> 4];
            extra[n++] = hex[ch & 0xf];
        } else {
            extra[n++] = (char)ch;
        }
    }
    if (args->len > 0 && n + 1 + args->len < cap) {
        extra[n++] = '?';
        memcpy(extra + n, args->data, args->len);
        n += args->len;
    }
    n = zg_http_header_safe(extra, n, cap);
    memcpy(extra + n, "\r\n", 3);
    zg_request_respond(r, status, extra, NULL, NULL, 0);
}

void zg_request_release_hooks(zg_request_t *r)
{
    r->holding = 0;
    for (int i = 0; i < zg_hooks.nrelease; i++) {
        zg_hooks.release[i]->release(r);
    }
    if (r->body_filters) {
        zg_response_release(r);
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
    zg_conn_timer(c, zg_request_core(r)->client_body_timeout);
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

/* the content handler stops: it is told once, and no more */
static void zg_request_content_abort(zg_request_t *r)
{
    const zg_content_ops_t *ops = r->content;

    if (ops != NULL) {
        r->content = NULL;
        ops->abort(r);
    }
}

void zg_request_body(zg_request_t *r, const char *p, size_t n)
{
    zg_http_core_loc_conf_t *clcf = zg_request_core(r);
    r->ctx.request_length += n;
    if (clcf->client_max_body_size && r->h->chunked &&
        r->ctx.request_length - r->h->head_len > (uint64_t)clcf->client_max_body_size) {
        if (!r->resp_started) {
            zg_request_content_abort(r);
            r->keepalive = 0;
            r->error_page = 1; /* the body is half read: no internal redirect */
            zg_request_error(r, 413);
        }
        return;
    }
    zg_conn_timer(r->c, clcf->client_body_timeout);
    if (r->discard_body) {
        return;
    }
    if (r->content) {
        r->content->body(r, p, n);
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
    if (r->content) {
        r->content->body_done(r);
    }
}

void zg_request_abort(zg_request_t *r)
{
    zg_request_content_abort(r);
    if (!r->resp_started) {
        r->ctx.status = 499;
    }
    r->keepalive = 0;
    zg_request_finalize(r);
}

int zg_request_timeout(zg_request_t *r)
{
    if (r->resp_started || r->finalized || r->sleeping) {
        return ZG_DECLINED;
    }
    /* the body stalled before an answer: 408, and the content handler is let go */
    zg_request_content_abort(r);
    zg_log(ZG_LOG_INFO, "client timed out reading the request body, client: %s",
           zg_conn_addr_text(r->c));
    r->keepalive = 0;
    r->body_done = 1;
    r->c->close_after = 1;
    r->error_page = 1; /* the body stalled: no internal redirect */
    zg_request_respond(r, 408, NULL, NULL, NULL, 0);
    return ZG_OK;
}

void zg_request_bad(zg_request_t *r, int status)
{
    if (r->finalized) {
        return;
    }
    r->c->close_after = 1;
    r->keepalive = 0;
    if (!r->resp_started) {
        r->body_done = 1;
        r->error_page = 1; /* a broken body: no internal redirect */
        zg_request_respond(r, status, NULL, NULL, NULL, 0);
    } else {
        zg_request_response_abort(r);
    }
}

void zg_request_drained(zg_request_t *r)
{
    if (r->content && r->content->drained) {
        r->content->drained(r);
    }
}

int zg_request_sleeping(const zg_request_t *r)
{
    return r->sleeping;
}

static void zg_request_finalize(zg_request_t *r)
{
    zg_conn_t *c = r->c;
    if (r->finalized) {
        return;
    }
    r->finalized = 1;
    zg_request_content_abort(r);
    zg_request_release(r);
    for (int i = 0; i < zg_hooks.nlog; i++) {
        zg_hooks.log[i]->log(r);
    }
    zg_var_ctx_free(&r->ctx);
    zg_proc_count_request(r->ctx.status);
    int keepalive = r->keepalive && !c->closing;
    if (r->sleeping) {
        r->sleeping = 0;
        uv_timer_stop(&r->sleep_timer);
    }
    zg_conn_request_done(c, keepalive);
}

/* ---- the phases ---- */

/* the access phase refuses the request: 403 (allow/deny) or 401 (auth_basic,
 * whose header hook adds WWW-Authenticate) */
static void zg_request_forbid(zg_request_t *r, int status)
{
    if (status == 403) {
        zg_log(ZG_LOG_ERR, "access forbidden by rule, client: %s", zg_conn_addr_text(r->c));
    }
    zg_request_error(r, status);
}

/* An access handler answers ZG_OK (allowed), ZG_DECLINED (nothing to say), or a
 * refusal (401, 403) that the request core answers, as nginx's access phase: with
 * `satisfy all` the first refusal answers; with `satisfy any` one ZG_OK is enough,
 * and if none comes a 401 wins over a 403.  1 = go on, 0 = answered. */
static int zg_request_access(zg_request_t *r, int rc)
{
    int any = zg_request_core(r)->satisfy == ZG_SATISFY_ANY;

    if (rc == ZG_OK && any) {
        r->access_code = 0;
        r->phase = zg_hooks.access_end;
        return 1;
    }
    if (rc == 401 || rc == 403) {
        if (!any) {
            zg_request_forbid(r, rc);
            return 0;
        }
        if (r->access_code != 401) {
            r->access_code = rc;
        }
    }
    if (r->phase == zg_hooks.access_end && r->access_code != 0) {
        zg_request_forbid(r, r->access_code);
        return 0;
    }
    return 1;
}

/* Runs the phase handlers from r->phase on.  A handler that answered (ZG_DONE) may
 * have finalized the request and a pipelined one may have taken its memory: r is
 * not touched after that. */
static void zg_request_phases(zg_request_t *r)
{
    zg_phase_handler_pt *h = zg_hooks.phase;
    int i = r->phase, end = zg_hooks.access_first, rc;

    for (; i < end; i++) {
        rc = h[i](r);
        if (rc == ZG_DECLINED || rc == ZG_OK) {
            continue;
        }
        if (rc == ZG_REQUEST_JUMP) {
            i = r->phase - 1;
            continue;
        }
        if (rc == ZG_AGAIN) {
            r->phase = i + 1; /* zg_request_wake goes on from there */
        } else if (rc == ZG_ERROR) {
            zg_request_error(r, 500);
        }
        return;
    }
    for (end = zg_hooks.access_end; i < end; i++) {
        r->phase = i + 1;
        rc = h[i](r);
        if (rc == ZG_DECLINED && r->access_code == 0) {
            continue; /* nothing to say, no refusal pending: zg_request_access's answer */
        }
        if (rc == ZG_DONE || rc == ZG_AGAIN) {
            return;
        }
        if (!zg_request_access(r, rc)) {
            return;
        }
        i = r->phase - 1; /* satisfy any may skip the rest of the phase */
    }
    for (end = zg_hooks.nphase; i < end; i++) {
        rc = h[i](r);
        if (rc == ZG_DECLINED || rc == ZG_OK) {
            continue;
        }
        if (rc == ZG_AGAIN) {
            r->phase = i + 1;
        } else if (rc == ZG_ERROR) {
            zg_request_error(r, 500);
        }
        return;
    }
    /* a location's handler; at server level only static files set one (root) */
    zg_phase_handler_pt content = zg_request_core(r)->handler;
    if (content == NULL) {
        zg_request_error(r, 404);
        return;
    }
    content(r);
}

/* the phases, with the error log of the request's level in scope (error_log) */
static void zg_request_run_phases(zg_request_t *r)
{
    const zg_log_target_t *log = zg_request_core(r)->error_log, *saved;

    /* the location found in the phases may put its own in scope: always put back */
    saved = log != NULL ? zg_log_scope(log) : zg_log_cur;
    zg_request_phases(r);
    zg_log_scope(saved);
}

void zg_request_access_done(zg_request_t *r, int rc)
{
    const zg_log_target_t *log = zg_request_core(r)->error_log, *saved;

    saved = log != NULL ? zg_log_scope(log) : zg_log_cur;
    if (rc == ZG_ERROR) {
        zg_request_error(r, 500);
    } else if (zg_request_access(r, rc)) {
        zg_request_phases(r);
    }
    zg_log_scope(saved);
}

static int zg_request_redirect_count(zg_request_t *r, int error_page)
{
    if (++r->uri_changes > 10) {
        zg_log(ZG_LOG_ERR, "rewrite or internal redirection cycle while internally "
               "redirecting to \"%.*s\"", (int)zg_min(r->ctx.uri.len, 256), r->ctx.uri.data);
        r->error_page = 1;
        r->err_status = 0;
        zg_request_error(r, 500);
        return 0;
    }
    r->internal = 1;
    r->uri_changed = 0;
    r->invalid_location = 0;
    if (!error_page) {
        return 1;
    }
    r->error_page = 1;
    if (r->ctx.method.len != 4 || memcmp(r->ctx.method.data, "HEAD", 4) != 0) {
        r->ctx.method.data = "GET";
        r->ctx.method.len = 3;
    }
    return 1;
}

static void zg_request_redirect(zg_request_t *r, const zg_str_t *uri, const zg_str_t *args,
                                int error_page)
{
    if (!zg_request_redirect_count(r, error_page)) {
        return;
    }
    r->ctx.uri = *uri;
    r->ctx.args = *args;
    r->uri_rewritten = 1;
    r->loc = NULL;
    r->located = 0;
    r->loc_conf = r->srv->loc_conf;
    r->phase = 0;
    zg_request_run_phases(r);
}

void zg_request_internal_redirect(zg_request_t *r, const zg_str_t *uri, const zg_str_t *args)
{
    zg_request_redirect(r, uri, args, 1);
}

void zg_request_uri_redirect(zg_request_t *r, const zg_str_t *uri, const zg_str_t *args)
{
    zg_request_redirect(r, uri, args, 0);
}

static void zg_request_named(zg_request_t *r, zg_location_t *loc, int error_page)
{
    if (!zg_request_redirect_count(r, error_page)) {
        return;
    }
    r->loc = loc;
    r->located = 1;
    r->loc_conf = loc->loc_conf;
    r->phase = zg_hooks.find_location + 1;
    zg_request_run_phases(r);
}

void zg_request_named_location(zg_request_t *r, zg_location_t *loc)
{
    zg_request_named(r, loc, 1);
}

void zg_request_uri_named(zg_request_t *r, zg_location_t *loc)
{
    zg_request_named(r, loc, 0);
}

static void zg_request_wake(uv_timer_t *t)
{
    zg_conn_t *c = t->data;
    zg_request_t *r = c->req;
    if (r == NULL || !r->sleeping) {
        return;
    }
    r->sleeping = 0;
    zg_conn_read(r->c, 1);
    zg_request_run_phases(r);
}

int zg_request_sleep(zg_request_t *r, zg_msec_t ms)
{
    r->sleeping = 1;
    uv_timer_start(&r->sleep_timer, zg_request_wake, ms, 0);
    zg_conn_read(r->c, 0);
    return ZG_AGAIN;
}

void zg_request_close(zg_request_t *r, uv_close_cb cb)
{
    zg_var_ctx_free(&r->ctx);
    uv_close((uv_handle_t *)&r->sleep_timer, cb);
}

void zg_request_start(zg_conn_t *c, zg_http_req_t *h)
{
    zg_request_t *r = c->rmem;
    if (r == NULL) {
        if (!zg_hooks.ready) {
            zg_request_hooks_init();
        }
        r = malloc(sizeof(*r) + zg_modules_scratch_size);
        if (r == NULL) {
            zg_conn_close(c);
            return;
        }
        uv_timer_init(c->w->loop, &r->sleep_timer);
        r->sleep_timer.data = c;
        c->rmem = r;
        c->handles++;
    } else {
        zg_var_ctx_free(&r->ctx);
    }
    /* the fields from c on and the state the modules have (not all of mctx) */
    memset((char *)r + offsetof(zg_request_t, c), 0,
           offsetof(zg_request_t, mctx) - offsetof(zg_request_t, c) + zg_modules_ctx_size);
    r->c = c;
    r->h = h;
    c->req = r;
    zg_conn_timer(c, 0);

    zg_var_ctx_t *x = &r->ctx;
    x->remote = (const struct sockaddr *)&c->peer;
    x->local = (const struct sockaddr *)&c->ls->addr.sa;
    uv_os_fd_t lfd;
    x->local_fd = uv_fileno((uv_handle_t *)&c->tcp, &lfd) == 0 ? lfd : -1;
    x->vars = zg_conf_vars(c->w->conf);
    x->method = h->method;
    x->uri = h->path;
    x->args = h->args;
    x->request_uri = h->target;
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
    x->ssl = c->tls != NULL ? zg_tls_ssl(c->tls) : NULL;
    x->request_length = h->head_len;
    r->body_done = !h->has_body;
    if (!h->has_body) {
        /* let the parser reach the end of this bodiless message */
        zg_conn_body(c);
    }

    r->caps.n = 0;
    r->caps.re = NULL;
    x->caps = &r->caps;
    r->srv = zg_http_find_server(c->ls, h->host.data, h->host.len, &r->caps);
    if (r->srv->nnames > 0) {
        x->server_name.data = r->srv->names[0];
        x->server_name.len = r->srv->name0_len;
    }
    /* the server's conf until the location is found (after the server rewrite) */
    r->loc_conf = r->srv->loc_conf;
    zg_http_core_loc_conf_t *clcf = zg_request_core(r);
    r->keepalive = h->keepalive && clcf->keepalive_timeout > 0 && !c->w->quitting &&
                   c->nrequests < (uint64_t)clcf->keepalive_requests;
    if (clcf->keepalive_header) {
        r->want_headers = 1; /* Keep-Alive: timeout=N */
    }
    zg_request_run_phases(r);
}
