/* fuzz_http.c — libFuzzer: any bytes as a client connection (split at a point taken
 * from the input, every pipelined request driven through resume/next, sometimes from
 * inside the handlers) and as an upstream response stream.  ASan/UBSan/LSan catch
 * overflows and leaks; the asserts check the head strings stay inside the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zg_http.h"

typedef struct {
    zg_http_in_t *in;
    int stopped; /* 1 after on_head, 2 after on_done */
    int nested;
    size_t sum;
} fz_t;

static void fz_touch(fz_t *f, const zg_str_t *s)
{
    for (size_t i = 0; i < s->len; i++) {
        f->sum += (unsigned char)s->data[i];
    }
}

static void fz_head(void *data, zg_http_req_t *r)
{
    fz_t *f = data;

    if (r->method.len == 0 || r->host.len > 255 || r->nhdrs > ZG_HTTP_MAX_HEADERS ||
        (r->http_major != 1) || r->http_minor > 1) {
        abort();
    }
    fz_touch(f, &r->method);
    fz_touch(f, &r->target);
    fz_touch(f, &r->path);
    fz_touch(f, &r->args);
    fz_touch(f, &r->request_line);
    fz_touch(f, &r->host);
    for (size_t i = 0; i < r->nhdrs; i++) {
        fz_touch(f, &r->names[i]);
        fz_touch(f, &r->values[i]);
    }
    f->stopped = 1;
    if (f->nested) {
        zg_http_in_resume(f->in);
    }
}

static void fz_body(void *data, const char *p, size_t n)
{
    fz_t *f = data;

    for (size_t i = 0; i < n; i++) {
        f->sum += (unsigned char)p[i];
    }
}

static void fz_done(void *data)
{
    fz_t *f = data;

    f->stopped = 2;
    if (f->nested) {
        zg_http_in_next(f->in);
    }
}

static void fz_rhead(void *data, zg_http_resp_head_t *h)
{
    size_t *sum = data;

    for (size_t i = 0; i < h->nhdrs; i++) {
        *sum += h->names[i].len + h->values[i].len;
        if (h->values[i].len) {
            *sum += (unsigned char)h->values[i].data[h->values[i].len - 1];
        }
    }
}

static void fz_rbody(void *data, const char *p, size_t n)
{
    size_t *sum = data;

    if (n) {
        *sum += (unsigned char)p[0] + (unsigned char)p[n - 1];
    }
}

static void fz_rdone(void *data)
{
    (void)data;
}

static int fz_settle(fz_t *f, int rc)
{
    int guard = 0;

    while (rc == ZG_AGAIN && guard++ < 100000) {
        if (f->stopped == 1) {
            f->stopped = 0;
            rc = zg_http_in_resume(f->in);
        } else if (f->stopped == 2) {
            f->stopped = 0;
            rc = zg_http_in_next(f->in);
        } else {
            abort();
        }
    }
    return rc;
}

static void fz_requests(const uint8_t *data, size_t size, size_t split, int nested)
{
    static const zg_http_in_handlers_t h = {fz_head, fz_body, fz_done};
    zg_http_limits_t lim = {.line_max = 256, .head_max = 1024, .body_max = 4096};
    fz_t f;
    size_t off = 0;
    int rc = ZG_OK;

    memset(&f, 0, sizeof(f));
    f.nested = nested;
    f.in = zg_http_in_create(&lim, &h, &f);
    if (f.in == NULL) {
        return;
    }
    while (off < size) {
        size_t len, k;
        char *b = zg_http_in_buffer(f.in, &len);

        if (b == NULL || len == 0) {
            break;
        }
        k = size - off;
        if (off < split) {
            k = split - off;
        }
        k = k < len ? k : len;
        memcpy(b, data + off, k);
        off += k;
        rc = fz_settle(&f, zg_http_in_feed(f.in, k));
        if (rc >= 400) {
            if (zg_http_in_error(f.in)[0] == '\0') {
                abort();
            }
            break;
        }
        if (rc != ZG_OK && rc != ZG_AGAIN) {
            abort();
        }
    }
    (void)zg_http_in_pending(f.in);
    (void)zg_http_in_eof(f.in);
    zg_http_in_destroy(f.in);
}

static void fz_responses(const uint8_t *data, size_t size, size_t split, int head_request)
{
    static const zg_http_resp_handlers_t h = {fz_rhead, fz_rbody, fz_rdone};
    size_t sum = 0, off = 0;
    zg_http_resp_t *r = zg_http_resp_create(1024, &h, &sum);
    int rc = ZG_OK;

    if (r == NULL) {
        return;
    }
    zg_http_resp_reset(r, head_request);
    while (off < size) {
        size_t len, k;
        char *b = zg_http_resp_buffer(r, &len);

        if (b == NULL || len == 0) {
            break;
        }
        k = size - off;
        if (off < split) {
            k = split - off;
        }
        k = k < len ? k : len;
        memcpy(b, data + off, k);
        off += k;
        rc = zg_http_resp_feed(r, k);
        if (rc == ZG_DONE) {
            (void)zg_http_resp_reusable(r);
            zg_http_resp_reset(r, head_request);
        } else if (rc != ZG_OK) {
            break;
        }
    }
    if (rc == ZG_OK) {
        (void)zg_http_resp_eof(r);
    }
    zg_http_resp_destroy(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t split;
    int flags;

    if (size < 2) {
        return 0;
    }
    split = data[0] % (size - 1) + 1;
    flags = data[1];
    data += 2;
    size -= 2;
    split = split <= size ? split : size;

    fz_requests(data, size, split, flags & 1);
    fz_responses(data, size, split, (flags >> 1) & 1);
    return 0;
}
