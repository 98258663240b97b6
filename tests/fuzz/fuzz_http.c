/* fuzz_http.c — libFuzzer: any bytes as a client connection (split at a point taken
 * from the input, every pipelined request driven through resume/next, sometimes from
 * inside the handlers) and as an upstream response stream.  ASan/UBSan/LSan catch
 * overflows and leaks; the asserts check the head strings stay inside the input.
 * Each client stream is parsed twice, with the fast head path and with llhttp alone
 * (no_fast): a digest of everything reported must be the same. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zg_http.h"

typedef struct {
    zg_http_in_t *in;
    int stopped; /* 1 after on_head, 2 after on_done */
    int nested;
    uint64_t sum; /* FNV-1a of all the parser reported */
} fz_t;

static void fz_mix(fz_t *f, uint64_t v)
{
    f->sum = (f->sum ^ v) * 0x100000001b3ULL;
}

static void fz_touch(fz_t *f, const zg_str_t *s)
{
    fz_mix(f, s->len);
    for (size_t i = 0; i < s->len; i++) {
        fz_mix(f, (unsigned char)s->data[i]);
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
    fz_touch(f, &r->authority);
    fz_mix(f, (uint64_t)r->method_id);
    fz_mix(f, (uint64_t)r->http_minor);
    fz_mix(f, (uint64_t)r->content_length);
    fz_mix(f, (uint64_t)r->head_len);
    fz_mix(f, (uint64_t)(r->keepalive | r->chunked << 1 | r->has_body << 2 |
                         r->expect_continue << 3 | r->head << 4 | r->quoted << 5));
    fz_mix(f, r->nhdrs);
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

    fz_mix(f, 0x100 + n);
    for (size_t i = 0; i < n; i++) {
        fz_mix(f, (unsigned char)p[i]);
    }
}

static void fz_done(void *data)
{
    fz_t *f = data;

    f->stopped = 2;
    fz_mix(f, 0x200);
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

static uint64_t fz_requests(const uint8_t *data, size_t size, size_t split, int nested,
                            int no_fast)
{
    static const zg_http_in_handlers_t h = {fz_head, fz_body, fz_done};
    zg_http_limits_t lim = {.line_max = 256, .head_max = 1024, .body_max = 4096,
                            .max_headers = 40, .no_fast = (unsigned)no_fast};
    fz_t f;
    size_t off = 0;
    int rc = ZG_OK;

    memset(&f, 0, sizeof(f));
    f.sum = 0xcbf29ce484222325ULL;
    f.nested = nested;
    f.in = zg_http_in_create(&lim, &h, &f);
    if (f.in == NULL) {
        abort();
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
        fz_mix(&f, 0x300 + (uint64_t)(rc + 10));
        if (rc >= 400) {
            const char *e = zg_http_in_error(f.in);

            if (e[0] == '\0') {
                abort();
            }
            for (; *e; e++) {
                fz_mix(&f, (unsigned char)*e);
            }
            break;
        }
        if (rc != ZG_OK && rc != ZG_AGAIN) {
            abort();
        }
    }
    fz_mix(&f, 0x400 + (uint64_t)zg_http_in_pending(f.in));
    fz_mix(&f, 0x500 + (uint64_t)zg_http_in_eof(f.in));
    zg_http_in_destroy(f.in);
    return f.sum;
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

    if (fz_requests(data, size, split, flags & 1, 0) !=
        fz_requests(data, size, split, flags & 1, 1)) {
        abort(); /* the fast head path and llhttp disagree */
    }
    fz_responses(data, size, split, (flags >> 1) & 1);
    return 0;
}
