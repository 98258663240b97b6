/* zg_response.c — the response pipeline (zg_response.h): header filters, the head
 * written once, body filters in module order, chunked framing after the last. */
#include "zg_response.h"

#include <stdio.h>
#include <string.h>

#include "zg_http.h"
#include "zg_log.h"

static zg_module_t *zg_response_hfilters[64];
static int zg_response_nhfilters = -1;
static zg_module_t *zg_response_bfilters[32]; /* by filter_slot */

static void zg_response_init(void)
{
    zg_modules_init();
    zg_response_nhfilters = 0;
    for (int i = 0; zg_modules[i] != NULL; i++) {
        zg_module_t *m = zg_modules[i];
        if (m->header_filter != NULL && zg_response_nhfilters < 64) {
            zg_response_hfilters[zg_response_nhfilters++] = m;
        }
        if (m->filter_slot >= 0) {
            zg_response_bfilters[m->filter_slot] = m;
        }
    }
}

int zg_response_filters_compute(zg_request_t *r)
{
    zg_http_core_loc_conf_t *clcf = zg_http_core_loc_conf(r->loc_conf);
    int on = 0;

    if (zg_response_nhfilters < 0) {
        zg_response_init();
    }
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->filter_on != NULL && zg_modules[i]->filter_on(r->loc_conf)) {
            on = 1;
        }
    }
    clcf->filters = on + 1;
    return on;
}

/* ---- headers ---- */

static int zg_resp_name_is(const zg_str_t *n, const char *name, size_t len)
{
    return n->len == len && zg_http_name_eq(n, name, len);
}

zg_resp_header_t *zg_resp_get(zg_resp_t *h, const char *name, size_t len)
{
    for (int i = 0; i < h->n; i++) {
        if (zg_resp_name_is(&h->h[i].name, name, len)) {
            return &h->h[i];
        }
    }
    return NULL;
}

void zg_resp_del(zg_resp_t *h, const char *name, size_t len)
{
    int k = 0;

    for (int i = 0; i < h->n; i++) {
        if (!zg_resp_name_is(&h->h[i].name, name, len)) {
            h->h[k++] = h->h[i];
        }
    }
    h->n = k;
}

char *zg_resp_dup(zg_request_t *r, const char *s, size_t n)
{
    char *p = zg_var_alloc(&r->ctx, n + 1);

    if (p != NULL) {
        if (n) {
            memcpy(p, s, n);
        }
        p[n] = '\0';
    }
    return p;
}

int zg_resp_add(zg_request_t *r, zg_resp_t *h, const char *name, size_t nlen,
                const char *value, size_t vlen)
{
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 16;
        zg_resp_header_t *a = zg_var_alloc(&r->ctx, (size_t)cap * sizeof(*a));
        if (a == NULL) {
            return ZG_ERROR;
        }
        if (h->n) {
            memcpy(a, h->h, (size_t)h->n * sizeof(*a));
        }
        h->h = a;
        h->cap = cap;
    }
    h->h[h->n].name.data = name;
    h->h[h->n].name.len = nlen;
    h->h[h->n].value.data = value;
    h->h[h->n].value.len = vlen;
    h->n++;
    return ZG_OK;
}

int zg_resp_set(zg_request_t *r, zg_resp_t *h, const char *name, size_t nlen,
                const char *value, size_t vlen)
{
    zg_resp_header_t *x = zg_resp_get(h, name, nlen);

    if (x == NULL) {
        return zg_resp_add(r, h, name, nlen, value, vlen);
    }
    x->value.data = value;
    x->value.len = vlen;
    /* drop the later ones of the same name */
    int k = 0, seen = 0;
    for (int i = 0; i < h->n; i++) {
        if (zg_resp_name_is(&h->h[i].name, name, nlen)) {
            if (seen++) {
                continue;
            }
        }
        h->h[k++] = h->h[i];
    }
    h->n = k;
    return ZG_OK;
}

/* $sent_http_NAME: the head as written, in request memory (the log reads it later) */
static void zg_response_sent_vars(zg_request_t *r, const zg_resp_t *h)
{
    zg_var_ctx_t *x = &r->ctx;
    size_t n = (size_t)h->n + 1;
    zg_str_t *names = zg_var_alloc(x, 2 * n * sizeof(zg_str_t));
    char num[24];

    if (names == NULL) {
        return;
    }
    zg_str_t *values = names + n;
    size_t k = 0;
    for (int i = 0; i < h->n; i++) {
        char *nm = zg_resp_dup(r, h->h[i].name.data, h->h[i].name.len);
        char *v = zg_resp_dup(r, h->h[i].value.data, h->h[i].value.len);
        if (nm == NULL || v == NULL) {
            return;
        }
        names[k] = (zg_str_t){h->h[i].name.len, nm};
        values[k] = (zg_str_t){h->h[i].value.len, v};
        k++;
    }
    if (h->content_length >= 0) {
        int len = snprintf(num, sizeof(num), "%lld", (long long)h->content_length);
        char *v = zg_resp_dup(r, num, (size_t)len);
        if (v != NULL) {
            names[k] = (zg_str_t)zg_string("Content-Length");
            values[k] = (zg_str_t){(size_t)len, v};
            k++;
        }
    }
    x->sent_names = names;
    x->sent_values = values;
    x->nsent = k;
}

int zg_response_head(zg_request_t *r, zg_resp_t *h)
{
    zg_outq_t *q = &r->c->out;

    if (zg_response_nhfilters < 0) {
        zg_response_init();
    }
    r->ctx.status = h->status; /* the filters look at it, as the header hooks do */
    for (int i = 0; i < zg_response_nhfilters; i++) {
        if (zg_response_hfilters[i]->header_filter(r, h) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    if (r->c->w->quitting) {
        h->keepalive = 0;
    }
    size_t start = q->b.len;
    zg_outq_append(q, "HTTP/1.1 ", 9);
    zg_outq_num(q, (uint64_t)h->status);
    zg_outq_append(q, " ", 1);
    if (h->reason.len) {
        zg_outq_append(q, h->reason.data, h->reason.len);
    } else {
        zg_outq_str(q, zg_http_reason(h->status));
    }
    zg_outq_append(q, "\r\n", 2);
    for (int i = 0; i < h->n; i++) {
        zg_outq_append(q, h->h[i].name.data, h->h[i].name.len);
        zg_outq_append(q, ": ", 2);
        zg_outq_append(q, h->h[i].value.data, h->h[i].value.len);
        zg_outq_append(q, "\r\n", 2);
    }
    r->resp_chunked = 0;
    if (h->content_length >= 0) {
        zg_outq_append(q, "Content-Length: ", 16);
        zg_outq_num(q, (uint64_t)h->content_length);
        zg_outq_append(q, "\r\n", 2);
    } else if (!h->no_body) {
        if (r->h->http_minor >= 1 && r->h->http_major == 1) {
            r->resp_chunked = 1;
            zg_outq_append(q, "Transfer-Encoding: chunked\r\n", 28);
        } else {
            h->keepalive = 0; /* the body ends when the connection closes */
        }
    }
    if (!h->keepalive) {
        r->keepalive = 0; /* the header hooks see it (Keep-Alive: timeout=N) */
    }
    if (h->extra != NULL) {
        zg_outq_str(q, h->extra);
    } else {
        zg_request_extra_headers(r, q);
    }
    if (h->keepalive) {
        zg_outq_append(q, "Connection: keep-alive\r\n\r\n", 26);
    } else {
        zg_outq_append(q, "Connection: close\r\n\r\n", 21);
    }
    r->ctx.bytes_sent += q->b.len - start;
    r->resp_started = 1;
    if (h->no_body) {
        r->body_filters = 0;
    }
    if (zg_vars_resp_headers(r->ctx.vars)) {
        zg_response_sent_vars(r, h);
    }
    return ZG_OK;
}

/* ---- body ---- */

void zg_response_filter_body(zg_request_t *r, const zg_module_t *m)
{
    if (m->filter_slot >= 0) {
        r->body_filters |= 1u << m->filter_slot;
    }
}

static void zg_response_write(zg_request_t *r, const char *p, size_t n, int last)
{
    zg_outq_t *q = &r->c->out;
    size_t start = q->b.len;

    if (n) {
        if (r->resp_chunked) {
            zg_outq_hex(q, n);
            zg_outq_append(q, "\r\n", 2);
            zg_outq_append(q, p, n);
            zg_outq_append(q, "\r\n", 2);
        } else {
            zg_outq_append(q, p, n);
        }
        r->ctx.body_bytes_sent += n;
    }
    if (last && r->resp_chunked) {
        zg_outq_append(q, "0\r\n\r\n", 5);
        r->resp_chunked = 0;
    }
    r->ctx.bytes_sent += q->b.len - start;
}

static void zg_response_from(zg_request_t *r, uint32_t mask, const char *p, size_t n,
                             int last)
{
    if (mask) {
        zg_module_t *m = zg_response_bfilters[__builtin_ctz(mask)];
        m->body_filter(r, p, n, last);
        return;
    }
    zg_response_write(r, p, n, last);
}

void zg_response_body(zg_request_t *r, const char *p, size_t n, int last)
{
    zg_response_from(r, r->body_filters, p, n, last);
}

void zg_response_next(zg_request_t *r, const zg_module_t *m, const char *p, size_t n,
                      int last)
{
    uint32_t after = m->filter_slot >= 31 ? 0 : ~((2u << m->filter_slot) - 1);

    zg_response_from(r, r->body_filters & after, p, n, last);
}

void zg_response_release(zg_request_t *r)
{
    for (uint32_t m = r->body_filters; m; m &= m - 1) {
        zg_module_t *f = zg_response_bfilters[__builtin_ctz(m)];
        if (f->release != NULL) {
            f->release(r);
        }
    }
}

/* ---- local answers ---- */

void zg_response_local(zg_request_t *r, int status, const char *extra, const char *ctype,
                       const char *body, size_t len)
{
    int empty = status == 204 || status == 304 || (status >= 100 && status < 200);
    zg_resp_t h;

    memset(&h, 0, sizeof(h));
    h.status = status;
    h.keepalive = r->keepalive;
    h.extra = extra != NULL ? extra : "";
    h.content_length = -1;
    if (body == NULL && !empty) {
        body = zg_http_status_page(status,
                                   zg_http_core_loc_conf(r->loc_conf)->server_tokens, &len);
    }
    const char *date = zg_resp_dup(r, zg_http_date(), 29);
    zg_str_t token = zg_http_server_token(zg_http_core_loc_conf(r->loc_conf));
    if (date == NULL || zg_resp_add(r, &h, "Server", 6, token.data, token.len) != ZG_OK ||
        zg_resp_add(r, &h, "Date", 4, date, 29) != ZG_OK) {
        goto fail;
    }
    if (!empty || body != NULL) {
        const char *ct = ctype ? ctype : "text/html";
        if (zg_resp_add(r, &h, "Content-Type", 12, ct, strlen(ct)) != ZG_OK) {
            goto fail;
        }
        h.content_length = body != NULL ? (int64_t)len : 0;
    } else {
        body = NULL;
        h.no_body = 1;
    }
    if (r->h->head) {
        h.no_body = 1;
    }
    if (zg_response_head(r, &h) != ZG_OK) {
        goto fail;
    }
    r->keepalive = h.keepalive;
    if (!h.no_body) {
        zg_response_body(r, body, body != NULL ? len : 0, 1);
    }
    return;
fail:
    zg_log_error(ZG_LOG_ERR, 0, "no memory for a response");
    r->keepalive = 0;
    r->resp_started = 1;
}
