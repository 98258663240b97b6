/* zg_http.c — llhttp glue, zonegate's own head checks, response writers.
 *
 * A head lives in one buffer that grows (realloc) only while the head is being read;
 * llhttp callbacks record offsets, and the zg_str_t of a head are made once the head
 * is complete.  Before they are made the buffer is grown if needed so that at least
 * ZG_HTTP_READ_MIN bytes are free after the head: the body (and pipelined requests)
 * are then read into the space after the head, which never moves the head. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llhttp.h>

#include "zg_http.h"

#include "zg_buf.h"

#define ZG_HTTP_READ_MIN 4096
#define ZG_HTTP_BUF_INIT 8192

enum { ZG_IN_HEAD, ZG_IN_HEAD_STOP, ZG_IN_BODY, ZG_IN_DONE, ZG_IN_ERROR };
enum { ZG_PAUSE_NONE, ZG_PAUSE_HEAD, ZG_PAUSE_DONE };

typedef struct {
    uint32_t off, len;
} zg_http_span_t;

struct zg_http_in_s {
    llhttp_t p;
    zg_http_in_handlers_t h;
    void *data;
    zg_http_limits_t lim;
    zg_buf_t b;           /* the bytes read; unparsed: [pos, b.len) */
    size_t pos;
    size_t he;            /* end of the head (0 while reading it) */
    int state;
    int paused;
    int status;
    const char *err;
    int busy;             /* inside a handler called by feed/resume/next */
    unsigned dead : 1;    /* destroyed from a handler */
    unsigned started : 1; /* method seen */
    unsigned rl_done : 1;
    unsigned in_value : 1;
    unsigned have_version : 1;
    unsigned ll_used : 1; /* llhttp has seen bytes of this request */
    unsigned fast : 1;    /* this head was read by zg_http_in_fast (no body) */
    uint8_t major, minor; /* of the head: llhttp's, or the fast path's */
    uint8_t cflags;       /* F_CONNECTION_* */
    uint8_t method_id;    /* llhttp_method_t */
    int64_t fast_left;    /* a fast head's Content-Length body: bytes still to come */
    zg_http_span_t method, url, version;
    size_t nh, hcap;      /* header lines seen; room in hn, hv, req.names, req.values */
    zg_http_span_t *hn, *hv;
    int64_t body_total;
    size_t trailer_bytes;
    char *ubuf;           /* the normalised path when it differs from the target */
    size_t ucap;
    char host[256];
    zg_http_req_t req;
};

static const char zg_http_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1,
    ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1,  ['|'] = 1,
    ['~'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,  ['5'] = 1,
    ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1,  ['C'] = 1,
    ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,  ['J'] = 1,
    ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,  ['Q'] = 1,
    ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1,  ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1,  ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,  ['s'] = 1,
    ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1,  ['z'] = 1,
};

static int zg_http_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c | 0x20 : c;
}

static int zg_http_ieq(const char *a, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (zg_http_lower((unsigned char)a[i]) != lit[i]) {
            return 0;
        }
    }
    return 1;
}

int zg_http_name_eq_n(const char *a, const char *lit, size_t litlen)
{
    for (size_t i = 0; i < litlen; i++) {
        if (zg_http_lower((unsigned char)a[i]) != zg_http_lower((unsigned char)lit[i])) {
            return 0;
        }
    }
    return 1;
}

#define zg_http_is(s, lit)                                                               \
    ((s)->len == sizeof(lit) - 1 && zg_http_ieq((s)->data, lit, sizeof(lit) - 1))

static void zg_http_span(zg_http_span_t *s, const char *base, const char *at, size_t n)
{
    if (s->len == 0) {
        s->off = (uint32_t)(at - base);
    }
    s->len = (uint32_t)(at + n - base - s->off);
}

/* The raw head, line ends only: bare LF and obs-fold (CVE-2024-27982), which llhttp
 * 8.1.0 in its default mode lets through.  Control bytes, NUL and a CR without LF in
 * the request line, names and values llhttp rejects itself (test_http checks each).
 * Returns NULL or the reason. */
static const char *zg_http_scan_head(const char *p, size_t n, int allow_bare_lf)
{
    const char *s = p, *e = p + n, *lf;

    while ((lf = memchr(s, '\n', (size_t)(e - s))) != NULL) {
        if (!allow_bare_lf && (lf == p || lf[-1] != '\r')) {
            return "bare LF in head";
        }
        s = lf + 1;
        if (s < e && (*s == ' ' || *s == '\t')) {
            return "obs-fold in head";
        }
    }
    return NULL;
}

static zg_str_t zg_http_trim(const char *p, size_t n)
{
    zg_str_t s;

    while (n && (p[0] == ' ' || p[0] == '\t')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) {
        n--;
    }
    s.data = p;
    s.len = n;
    return s;
}

/* ---- request targets ---- */

/* bytes that end the fast path's plain run: '/', '%', '#', '?' */
static const unsigned char zg_uri_stop[256] = {
    ['/'] = 1, ['%'] = 1, ['#'] = 1, ['?'] = 1,
};

/* 1 if in[0, n) needs the normaliser; else 0 and *q = the offset of '?' (n if none) */
static int zg_http_uri_scan(const char *in, size_t n, size_t *q)
{
    const unsigned char *p = (const unsigned char *)in;

    for (size_t i = 0; i < n; i++) {
        if (!zg_uri_stop[p[i]]) {
            continue;
        }
        switch (p[i]) {
        case '/':
            if (i + 1 < n && (p[i + 1] == '/' || p[i + 1] == '.')) {
                return 1;
            }
            break;
        case '?':
            *q = i;
            return memchr(p + i + 1, '#', n - i - 1) != NULL;
        default: /* '%', '#' */
            return 1;
        }
    }
    *q = n;
    return 0;
}

int zg_http_uri_complex(const char *in, size_t n)
{
    size_t q;

    return zg_http_uri_scan(in, n, &q);
}

static int zg_http_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

enum { ZG_URI_USUAL, ZG_URI_SLASH, ZG_URI_DOT, ZG_URI_DOT_DOT };

/* ".." just written after a '/' at out[len - 3]: drop it with the segment before it;
 * the new length, or -1 if that climbs above the root */
static ptrdiff_t zg_http_uri_up(const char *out, ptrdiff_t len)
{
    ptrdiff_t i = len - 4;

    while (i >= 0 && out[i] != '/') {
        i--;
    }
    return i < 0 ? -1 : i + 1;
}

/* the end of the path: a pending "." or ".." segment is resolved */
static ptrdiff_t zg_http_uri_end(const char *out, ptrdiff_t len, int state)
{
    if (state == ZG_URI_DOT) {
        return len - 1;
    }
    if (state == ZG_URI_DOT_DOT) {
        return zg_http_uri_up(out, len);
    }
    return len;
}

int zg_http_parse_uri(const char *in, size_t n, int merge_slashes, char *out,
                      zg_http_uri_t *u)
{
    const unsigned char *p = (const unsigned char *)in, *end = p + n;
    ptrdiff_t o = 0;
    int state = ZG_URI_USUAL, c, hi, lo;

    u->path_len = 0;
    u->args_off = n;
    u->args_len = 0;
    u->quoted = 0;
    u->has_args = 0;
    if (n == 0 || (p[0] != '/' && p[0] != '?')) {
        return ZG_ERROR;
    }
    if (p[0] == '?') {
        out[o++] = '/'; /* absolute-form without a path: "http://h?q" */
        state = ZG_URI_SLASH;
    }

    while (p < end) {
        c = *p++;

        if (c == '%') {
            if (end - p < 2 || (hi = zg_http_hex(p[0])) < 0 || (lo = zg_http_hex(p[1])) < 0) {
                return ZG_ERROR;
            }
            p += 2;
            u->quoted = 1;
            c = hi << 4 | lo;
            if (c == 0) {
                return ZG_ERROR;
            }
            if (c == '%' || c == '#' || c == '?') {
                /* a path byte, and no "." or ".." segment goes on through it */
                out[o++] = (char)c;
                state = ZG_URI_USUAL;
                continue;
            }
            /* any other decoded byte is taken as if sent as it is */

        } else if (c == '?' || c == '#') {
            o = zg_http_uri_end(out, o, state);
            if (o < 0) {
                return ZG_ERROR;
            }
            u->path_len = (size_t)o;
            if (c == '?') {
                const unsigned char *h = memchr(p, '#', (size_t)(end - p));

                u->has_args = 1;
                u->args_off = (size_t)(p - (const unsigned char *)in);
                u->args_len = (size_t)((h ? h : end) - p);
            }
            return ZG_OK;
        }

        switch (state) {
        case ZG_URI_USUAL:
            if (c == '/') {
                state = ZG_URI_SLASH;
            }
            out[o++] = (char)c;
            break;

        case ZG_URI_SLASH:
            if (c == '/') {
                if (!merge_slashes) {
                    out[o++] = '/';
                }
                break;
            }
            state = c == '.' ? ZG_URI_DOT : ZG_URI_USUAL;
            out[o++] = (char)c;
            break;

        case ZG_URI_DOT:
            if (c == '/') {
                o--; /* "/./" is "/" */
                state = ZG_URI_SLASH;
                break;
            }
            state = c == '.' ? ZG_URI_DOT_DOT : ZG_URI_USUAL;
            out[o++] = (char)c;
            break;

        default: /* ZG_URI_DOT_DOT */
            if (c == '/') {
                o = zg_http_uri_up(out, o);
                if (o < 0) {
                    return ZG_ERROR;
                }
                state = ZG_URI_SLASH;
                break;
            }
            state = ZG_URI_USUAL;
            out[o++] = (char)c;
            break;
        }
    }

    o = zg_http_uri_end(out, o, state);
    if (o < 0) {
        return ZG_ERROR;
    }
    u->path_len = (size_t)o;
    return ZG_OK;
}

/* " ", "#", "%", "?", controls, 0x7f and above */
static int zg_http_uri_escaped(unsigned char c)
{
    return c <= 0x20 || c >= 0x7f || c == '#' || c == '%' || c == '?';
}

size_t zg_http_escape_uri(char *out, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (!zg_http_uri_escaped(c)) {
            if (out) {
                out[k] = (char)c;
            }
            k++;
            continue;
        }
        if (out) {
            out[k] = '%';
            out[k + 1] = hex[c >> 4];
            out[k + 2] = hex[c & 0xf];
        }
        k += 3;
    }
    return k;
}

size_t zg_http_header_safe(char *p, size_t n, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t bad = 0, len, i, o;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        bad += (c < 0x20 && c != '\t') || c == 0x7f;
    }
    if (bad == 0) {
        return n;
    }
    /* from the end, so that nothing is overwritten before it is read */
    len = zg_min(n + 2 * bad, cap);
    o = n + 2 * bad;
    for (i = n; i-- > 0;) {
        unsigned char c = (unsigned char)p[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            o -= 3;
            if (o + 2 < cap) {
                p[o + 2] = hex[c & 0xf];
            }
            if (o + 1 < cap) {
                p[o + 1] = hex[c >> 4];
            }
            if (o < cap) {
                p[o] = '%';
            }
        } else {
            o--;
            if (o < cap) {
                p[o] = (char)c;
            }
        }
    }
    return len;
}

/* ---- client side ---- */

static int zg_http_in_on_method(llhttp_t *p, const char *at, size_t n);
static int zg_http_in_on_url(llhttp_t *p, const char *at, size_t n);
static int zg_http_in_on_version(llhttp_t *p, const char *at, size_t n);
static int zg_http_in_on_version_complete(llhttp_t *p);
static int zg_http_in_on_header_field(llhttp_t *p, const char *at, size_t n);
static int zg_http_in_on_header_value(llhttp_t *p, const char *at, size_t n);
static int zg_http_in_on_headers_complete(llhttp_t *p);
static int zg_http_in_on_body(llhttp_t *p, const char *at, size_t n);
static int zg_http_in_on_chunk_header(llhttp_t *p);
static int zg_http_in_on_message_complete(llhttp_t *p);

static const llhttp_settings_t zg_http_in_settings = {
    .on_method = zg_http_in_on_method,
    .on_url = zg_http_in_on_url,
    .on_version = zg_http_in_on_version,
    .on_version_complete = zg_http_in_on_version_complete,
    .on_header_field = zg_http_in_on_header_field,
    .on_header_value = zg_http_in_on_header_value,
    .on_headers_complete = zg_http_in_on_headers_complete,
    .on_body = zg_http_in_on_body,
    .on_chunk_header = zg_http_in_on_chunk_header,
    .on_message_complete = zg_http_in_on_message_complete,
};

static int zg_http_in_fail(zg_http_in_t *in, int status, const char *reason)
{
    if (in->status == 0) {
        in->status = status;
        in->err = reason;
    }
    return -1;
}

static int zg_http_in_bad(zg_http_in_t *in, int status, const char *reason)
{
    zg_http_in_fail(in, status, reason);
    return in->status;
}

static int zg_http_in_on_method(llhttp_t *p, const char *at, size_t n)
{
    zg_http_in_t *in = p->data;

    if (in->state != ZG_IN_HEAD) {
        return 0;
    }
    in->started = 1;
    zg_http_span(&in->method, in->b.data, at, n);
    return 0;
}

static int zg_http_in_on_url(llhttp_t *p, const char *at, size_t n)
{
    zg_http_in_t *in = p->data;

    zg_http_span(&in->url, in->b.data, at, n);
    return 0;
}

static int zg_http_in_on_version(llhttp_t *p, const char *at, size_t n)
{
    zg_http_in_t *in = p->data;

    in->have_version = 1;
    zg_http_span(&in->version, in->b.data, at, n);
    return 0;
}

static int zg_http_in_on_version_complete(llhttp_t *p)
{
    zg_http_in_t *in = p->data;

    in->rl_done = 1;
    return 0;
}

/* trailers of a chunked body are counted (bounded) and dropped: 0 or -1 (error) for
 * trailer bytes, 1 for bytes of the head */
static int zg_http_in_trailer(zg_http_in_t *in, size_t n)
{
    if (in->state == ZG_IN_HEAD) {
        return 1;
    }
    in->trailer_bytes += n;
    if (in->trailer_bytes > in->lim.head_max) {
        return zg_http_in_fail(in, 400, "trailer too large");
    }
    return 0;
}

/* room for more header lines: doubles up to lim.max_headers; ZG_OK or ZG_ERROR
 * (status set) */
static int zg_http_in_more_headers(zg_http_in_t *in)
{
    size_t cap = in->hcap ? in->hcap * 2 : 32;
    zg_http_span_t *sp;
    zg_str_t *st;

    if (in->hcap >= in->lim.max_headers) {
        zg_http_in_fail(in, 431, "too many headers");
        return ZG_ERROR;
    }
    cap = zg_min(cap, in->lim.max_headers);
    sp = malloc(cap * 2 * sizeof(*sp));
    st = malloc(cap * 2 * sizeof(*st));
    if (sp == NULL || st == NULL) {
        free(sp);
        free(st);
        zg_http_in_fail(in, 500, "out of memory");
        return ZG_ERROR;
    }
    if (in->nh) {
        memcpy(sp, in->hn, in->nh * sizeof(*sp));
        memcpy(sp + cap, in->hv, in->nh * sizeof(*sp));
    }
    free(in->hn);
    free(in->req.names);
    in->hn = sp;
    in->hv = sp + cap;
    in->req.names = st;
    in->req.values = st + cap;
    in->hcap = cap;
    return ZG_OK;
}

static int zg_http_in_on_header_field(llhttp_t *p, const char *at, size_t n)
{
    zg_http_in_t *in = p->data;
    int rc = zg_http_in_trailer(in, n);

    if (rc != 1) {
        return rc;
    }
    in->rl_done = 1;
    if (in->nh == 0 || in->in_value) {
        if (in->nh == in->hcap && zg_http_in_more_headers(in) != ZG_OK) {
            return -1;
        }
        in->in_value = 0;
        in->hn[in->nh].len = 0;
        in->hv[in->nh].len = 0;
        in->nh++;
    }
    zg_http_span(&in->hn[in->nh - 1], in->b.data, at, n);
    return 0;
}

static int zg_http_in_on_header_value(llhttp_t *p, const char *at, size_t n)
{
    zg_http_in_t *in = p->data;
    int rc = zg_http_in_trailer(in, n);

    if (rc != 1) {
        return rc;
    }
    in->in_value = 1;
    zg_http_span(&in->hv[in->nh - 1], in->b.data, at, n);
    return 0;
}

static int zg_http_in_on_headers_complete(llhttp_t *p)
{
    zg_http_in_t *in = p->data;

    if (in->state != ZG_IN_HEAD) {
        return 0; /* end of trailers */
    }
    /* no protocol switch: Upgrade is a hop-by-hop header the proxy drops */
    p->upgrade = 0;
    in->major = p->http_major;
    in->minor = p->http_minor;
    in->cflags = (uint8_t)(p->flags & (F_CONNECTION_KEEP_ALIVE | F_CONNECTION_CLOSE));
    in->method_id = p->method;
    in->paused = ZG_PAUSE_HEAD;
    return HPE_PAUSED;
}

static void zg_http_in_body(zg_http_in_t *in, const char *at, size_t n)
{
    in->body_total += (int64_t)n;
    if (in->h.on_body) {
        in->busy++;
        in->h.on_body(in->data, at, n);
        in->busy--;
    }
}

static int zg_http_in_on_body(llhttp_t *p, const char *at, size_t n)
{
    zg_http_in_t *in = p->data;

    if (in->dead) {
        return -1;
    }
    zg_http_in_body(in, at, n);
    return 0;
}

static int zg_http_in_on_chunk_header(llhttp_t *p)
{
    zg_http_in_t *in = p->data;

    if (in->lim.body_max > 0 &&
        (p->content_length > (uint64_t)in->lim.body_max ||
         in->body_total + (int64_t)p->content_length > in->lim.body_max)) {
        return zg_http_in_fail(in, 413, "chunked body too large");
    }
    return 0;
}

static int zg_http_in_on_message_complete(llhttp_t *p)
{
    zg_http_in_t *in = p->data;

    in->paused = ZG_PAUSE_DONE;
    return HPE_PAUSED;
}

static void zg_http_in_clear(zg_http_in_t *in)
{
    if (in->ll_used) {
        llhttp_reset(&in->p);
    }
    in->ll_used = 0;
    in->fast = 0;
    in->fast_left = 0;
    in->he = 0;
    in->state = ZG_IN_HEAD;
    in->paused = ZG_PAUSE_NONE;
    in->started = 0;
    in->rl_done = 0;
    in->in_value = 0;
    in->have_version = 0;
    in->method.len = in->url.len = in->version.len = 0;
    in->nh = 0;
    in->body_total = 0;
    in->trailer_bytes = 0;
}

zg_http_in_t *zg_http_in_create(const zg_http_limits_t *limits,
                                const zg_http_in_handlers_t *h, void *data)
{
    zg_http_in_t *in = malloc(sizeof(*in));

    if (in == NULL) {
        return NULL;
    }
    in->lim = *limits;
    if (in->lim.line_max == 0) {
        in->lim.line_max = ZG_HTTP_LINE_MAX;
    }
    if (in->lim.head_max == 0) {
        in->lim.head_max = ZG_HTTP_HEAD_MAX;
    }
    if (in->lim.max_headers == 0) {
        in->lim.max_headers = ZG_HTTP_MAX_HEADERS;
    }
    in->hn = in->hv = NULL;
    in->hcap = 0;
    in->req.names = in->req.values = NULL;
    in->ubuf = NULL;
    in->ucap = 0;
    in->h = *h;
    in->data = data;
    in->b = (zg_buf_t)ZG_BUF_INIT;
    in->pos = 0;
    in->status = 0;
    in->err = NULL;
    in->busy = 0;
    in->dead = 0;
    llhttp_init(&in->p, HTTP_REQUEST, &zg_http_in_settings);
    /* HTTP/1.2 is served as 1.1 (nginx); other versions are refused after the head */
    in->p.lenient_flags |= LENIENT_VERSION;
    in->p.data = in;
    in->ll_used = 0;
    zg_http_in_clear(in);
    return in;
}

static void zg_http_in_free(zg_http_in_t *in)
{
    free(in->hn);
    free(in->req.names);
    free(in->ubuf);
    free(in->b.data);
    free(in);
}

void zg_http_in_destroy(zg_http_in_t *in)
{
    if (in == NULL) {
        return;
    }
    if (in->busy) {
        in->dead = 1;
        return;
    }
    zg_http_in_free(in);
}

char *zg_http_in_buffer(zg_http_in_t *in, size_t *len)
{
    size_t cap_max = in->lim.head_max + ZG_HTTP_READ_MIN;

    if (in->state == ZG_IN_HEAD) {
        if (in->b.cap - in->b.len < ZG_HTTP_READ_MIN && in->b.cap < cap_max) {
            size_t want = in->b.cap ? in->b.cap * 2 : ZG_HTTP_BUF_INIT;

            want = zg_min(want, cap_max);
            if (want < in->b.len + ZG_HTTP_READ_MIN) {
                want = in->b.len + ZG_HTTP_READ_MIN;
            }
            if (zg_buf_resize(&in->b, want) != ZG_OK && in->b.cap == in->b.len) {
                *len = 0;
                return NULL;
            }
        }

    } else {
        /* the head [0, he) stays; unparsed bytes move down to it */
        if (in->pos == in->b.len || in->state == ZG_IN_ERROR) {
            in->pos = in->b.len = in->he;
        } else if (in->b.cap - in->b.len < ZG_HTTP_READ_MIN && in->pos > in->he) {
            memmove(in->b.data + in->he, in->b.data + in->pos, in->b.len - in->pos);
            in->b.len -= in->pos - in->he;
            in->pos = in->he;
        }
    }
    *len = in->b.cap - in->b.len;
    return in->b.data + in->b.len;
}

/* absolute-form "http://host[:port]/path": host taken from it, target made the
 * origin-form part */
static int zg_http_in_host(zg_http_in_t *in, const char *s, size_t n)
{
    size_t i = 0, d = 0;
    int dot = 0;

    if (n == 0) {
        in->req.host.data = in->host;
        in->req.host.len = 0;
        return ZG_OK;
    }
    if (s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++) {
            int c = zg_http_lower((unsigned char)s[i]);

            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' ||
                  c == '.')) {
                return ZG_ERROR;
            }
        }
        if (i == n || i == 1 || i + 1 > sizeof(in->host)) {
            return ZG_ERROR;
        }
        for (d = 0; d <= i; d++) {
            in->host[d] = (char)zg_http_lower((unsigned char)s[d]);
        }
        i++;

    } else {
        for (; i < n && s[i] != ':'; i++) {
            int c = zg_http_lower((unsigned char)s[i]);

            if (c == '.') {
                if (dot || d == 0) {
                    return ZG_ERROR;
                }
                dot = 1;
            } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                       c == '_') {
                dot = 0;
            } else {
                return ZG_ERROR;
            }
            if (d == sizeof(in->host)) {
                return ZG_ERROR;
            }
            in->host[d++] = (char)c;
        }
        if (dot) {
            d--;
        }
        if (d == 0) {
            return ZG_ERROR;
        }
    }
    if (i < n) {
        if (s[i] != ':') {
            return ZG_ERROR;
        }
        for (i++; i < n; i++) {
            if (s[i] < '0' || s[i] > '9') {
                return ZG_ERROR;
            }
        }
    }
    in->req.host.data = in->host;
    in->req.host.len = d;
    return ZG_OK;
}

/* nginx's header name rule: letters, digits and '-', and '_' when allowed */
static int zg_http_name_valid(const zg_str_t *n, int underscores)
{
    for (size_t i = 0; i < n->len; i++) {
        int c = zg_http_lower((unsigned char)n->data[i]);

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              (c == '_' && underscores))) {
            return 0;
        }
    }
    return 1;
}

static int zg_http_in_te(zg_http_in_t *in, const zg_str_t *v, int *chunked, int *other)
{
    size_t i = 0;

    while (i <= v->len) {
        size_t j = i;

        while (j < v->len && v->data[j] != ',') {
            j++;
        }
        zg_str_t tok = zg_http_trim(v->data + i, j - i);

        if (tok.len) {
            if (*chunked) {
                zg_http_in_fail(in, 400, "chunked is not the final transfer coding");
                return ZG_ERROR;
            }
            if (zg_http_is(&tok, "chunked")) {
                *chunked = 1;
            } else {
                for (size_t k = 0; k < tok.len; k++) {
                    unsigned char c = (unsigned char)tok.data[k];

                    if (!zg_http_tchar[c] && c != ';' && c != '=' && c != ' ' &&
                        c != '\t' && c != '"') {
                        zg_http_in_fail(in, 400, "bad Transfer-Encoding");
                        return ZG_ERROR;
                    }
                }
                *other = 1;
            }
        }
        i = j + 1;
    }
    return ZG_OK;
}

/* checks a complete head [0, he) and fills in->req; 0 or an error status */
static int zg_http_in_head(zg_http_in_t *in)
{
    zg_http_req_t *r = &in->req;
    const char *b, *reason;
    size_t i, hs, rl_end, q, nhost = 0, ncl = 0, nte = 0, nauth = 0;
    int chunked = 0, other = 0, minor;
    int64_t cl = -1;
    const zg_str_t *host = NULL;

    hs = in->method.off;
    rl_end =
        in->have_version ? in->version.off + in->version.len : in->url.off + in->url.len;
    if (rl_end - hs > in->lim.line_max) {
        return zg_http_in_bad(in, 414, "request line too long");
    }
    if (in->he > in->lim.head_max) {
        return zg_http_in_bad(in, 431, "request head too large");
    }
    if (!in->have_version || in->major == 0) {
        return zg_http_in_bad(in, 400, "HTTP/0.9 request");
    }
    if (in->major != 1) {
        return zg_http_in_bad(in, 505, "unsupported HTTP version");
    }
    minor = in->minor > 1 ? 1 : in->minor;
    /* a fast head has CRLF line ends and no folding: it was read to that rule */
    reason = in->fast ? NULL : zg_http_scan_head(in->b.data + hs, in->he - hs, 0);
    if (reason) {
        return zg_http_in_bad(in, 400, reason);
    }
    if (in->method_id == HTTP_CONNECT) {
        return zg_http_in_bad(in, 405, "CONNECT method");
    }
    if (in->b.cap - in->he < ZG_HTTP_READ_MIN) {
        if (zg_buf_resize(&in->b, zg_max(in->b.len, in->he) + ZG_HTTP_READ_MIN) != ZG_OK) {
            return zg_http_in_bad(in, 500, "out of memory");
        }
    }

    b = in->b.data;
    r->method.data = b + in->method.off;
    r->method.len = in->method.len;
    r->method_id = in->method_id;
    r->head = in->method_id == HTTP_HEAD;
    r->target.data = b + in->url.off;
    r->target.len = in->url.len;
    r->request_line.data = b + hs;
    r->request_line.len = rl_end - hs;
    r->http_major = in->major;
    r->http_minor = minor;
    r->head_len = in->he - hs;
    r->host.data = in->host;
    r->host.len = 0;
    r->nhdrs = 0;
    r->expect_continue = 0;
    r->authority.data = b;
    r->authority.len = 0;
    r->quoted = 0;

    for (i = 0; i < in->nh; i++) {
        zg_str_t *n = &r->names[r->nhdrs], *v = &r->values[r->nhdrs];

        n->data = b + in->hn[i].off;
        n->len = in->hn[i].len;
        *v = zg_http_trim(b + in->hv[i].off, in->hv[i].len);
        if (in->hv[i].len == 0) {
            v->data = n->data + n->len;
        }
        /* one header line must fit one large_client_header_buffers buffer */
        if (in->hn[i].len + in->hv[i].len + 4 > in->lim.line_max) {
            return zg_http_in_bad(in, 431, "header line too long");
        }
        /* llhttp checked the name's characters but lets "Name :" through, with the
         * space in the name */
        if (n->len == 0 || !zg_http_tchar[(unsigned char)n->data[n->len - 1]]) {
            return zg_http_in_bad(in, 400, "bad header name");
        }
        /* ignore_invalid_headers: a name with bytes other than letters, digits, '-'
         * (and '_' with underscores_in_headers) is dropped before it means anything
         * ("Transfer_Encoding: chunked" is no header at all), as nginx does */
        if (!in->lim.keep_invalid && !zg_http_name_valid(n, in->lim.underscores)) {
            continue;
        }
        r->nhdrs++;

        switch (n->len) {
        case 4:
            if (zg_http_is(n, "host")) {
                nhost++;
                host = v;
            }
            break;
        case 6:
            if (zg_http_is(n, "expect") && zg_http_is(v, "100-continue") && minor == 1) {
                r->expect_continue = 1;
            }
            break;
        case 13:
            /* as nginx: auth_basic must not check one and the upstream use another */
            if (zg_http_is(n, "authorization") && ++nauth > 1) {
                return zg_http_in_bad(in, 400, "duplicate Authorization");
            }
            break;
        case 14:
            if (zg_http_is(n, "content-length")) {
                if (++ncl > 1) {
                    return zg_http_in_bad(in, 400, "duplicate Content-Length");
                }
                if (v->len == 0) {
                    return zg_http_in_bad(in, 400, "bad Content-Length");
                }
                cl = 0;
                for (size_t k = 0; k < v->len; k++) {
                    unsigned d = (unsigned char)v->data[k] - '0';

                    if (d > 9) {
                        return zg_http_in_bad(in, 400, "bad Content-Length");
                    }
                    if (cl > (INT64_MAX - (int64_t)d) / 10) {
                        return zg_http_in_bad(in, 400, "Content-Length overflow");
                    }
                    cl = cl * 10 + d;
                }
            }
            break;
        case 17:
            if (zg_http_is(n, "transfer-encoding")) {
                nte++;
                if (zg_http_in_te(in, v, &chunked, &other) != ZG_OK) {
                    return in->status;
                }
            }
            break;
        }
    }

    if (nte) {
        if (minor == 0) {
            return zg_http_in_bad(in, 400, "Transfer-Encoding in HTTP/1.0");
        }
        if (ncl) {
            return zg_http_in_bad(in, 400, "Content-Length with Transfer-Encoding");
        }
        if (!chunked) {
            return zg_http_in_bad(in, 400, "chunked is not the final transfer coding");
        }
        if (other) {
            return zg_http_in_bad(in, 501, "unsupported transfer coding");
        }
    }
    if (nhost > 1) {
        return zg_http_in_bad(in, 400, "duplicate Host");
    }
    if (nhost == 0 && minor == 1) {
        return zg_http_in_bad(in, 400, "missing Host");
    }
    if (host && zg_http_in_host(in, host->data, host->len) != ZG_OK) {
        return zg_http_in_bad(in, 400, "invalid Host");
    }

    /* target: origin-form or absolute-form ("OPTIONS *" is refused, as nginx does) */
    if (r->target.len == 0 || r->target.data[0] != '/') {
        const char *t = r->target.data, *e = t + r->target.len, *a;

        if (r->target.len > 7 && zg_http_ieq(t, "http://", 7)) {
            t += 7;
        } else if (r->target.len > 8 && zg_http_ieq(t, "https://", 8)) {
            t += 8;
        } else {
            return zg_http_in_bad(in, 400, "bad request target");
        }
        a = t;
        while (t < e && *t != '/' && *t != '?') {
            if (*t == '@' || *t == '#') {
                return zg_http_in_bad(in, 400, "bad request target");
            }
            t++;
        }
        if (zg_http_in_host(in, a, (size_t)(t - a)) != ZG_OK || r->host.len == 0) {
            return zg_http_in_bad(in, 400, "invalid host in request target");
        }
        /* the target's authority replaces Host (RFC 9112 3.2.2) */
        r->authority.data = a;
        r->authority.len = (size_t)(t - a);
        if (t == e) {
            static const char slash[] = "/";

            r->target.data = slash;
            r->target.len = 1;
        } else {
            r->target.data = t;
            r->target.len = (size_t)(e - t);
        }
    }
    if (r->target.data[0] == '/' && !zg_http_uri_scan(r->target.data, r->target.len, &q)) {
        /* the fast path: the path is the target up to '?' */
        r->path.data = r->target.data;
        r->path.len = q;
        r->args.data = r->target.data + zg_min(q + 1, r->target.len);
        r->args.len = q < r->target.len ? r->target.len - q - 1 : 0;
    } else {
        zg_http_uri_t u;

        if (in->ucap < r->target.len + 1) {
            char *nb = realloc(in->ubuf, r->target.len + 1);

            if (nb == NULL) {
                return zg_http_in_bad(in, 500, "out of memory");
            }
            in->ubuf = nb;
            in->ucap = r->target.len + 1;
        }
        if (zg_http_parse_uri(r->target.data, r->target.len, !in->lim.no_merge_slashes,
                              in->ubuf, &u) != ZG_OK) {
            return zg_http_in_bad(in, 400, "invalid request path");
        }
        r->path.data = in->ubuf;
        r->path.len = u.path_len;
        r->args.data = r->target.data + u.args_off;
        r->args.len = u.args_len;
        r->quoted = u.quoted;
    }


    if (in->lim.body_max > 0 && cl > in->lim.body_max) {
        return zg_http_in_bad(in, 413, "request body too large");
    }
    r->content_length = cl;
    r->chunked = chunked;
    r->has_body = chunked || cl > 0;
    if (minor == 1) {
        r->keepalive = !(in->cflags & F_CONNECTION_CLOSE);
    } else {
        r->keepalive =
            (in->cflags & F_CONNECTION_KEEP_ALIVE) && !(in->cflags & F_CONNECTION_CLOSE);
    }
    return 0;
}

/* ---- the common head without llhttp ----
 *
 * Most requests are "METHOD /target HTTP/1.x" and a few "Name: value" lines, with no
 * body or a Content-Length one, read in one piece.  zg_http_in_fast reads exactly that
 * subset, which llhttp reads the same way:
 *   - the method GET, HEAD, POST, PUT, DELETE, OPTIONS or PATCH, one space, a target
 *     of '/' and bytes 0x21-0x7e, one space, "HTTP/1.0" or "HTTP/1.1", CRLF;
 *   - header lines: a name of token bytes, ':', a value of HTAB and 0x20-0x7e, CRLF;
 *   - no Transfer-Encoding or Proxy-Connection, at most one Content-Length of 1 to
 *     18 digits (its body is then passed on here too), and a Connection of only
 *     "close" or "keep-alive";
 *   - the whole head, up to its empty line, already in the buffer.
 * For anything else it returns 0 having changed nothing the request depends on (the
 * header arrays may have grown), and llhttp parses the request
 * from its first byte as before: every refusal and every unusual head is llhttp's and
 * zg_http_in_head's, never this code's.  On 1 it has recorded what llhttp's callbacks
 * would have (spans, version, method, Connection flags) and the end of the head.
 * tests/fuzz/fuzz_http.c and test_http.c compare the two on every input. */

/* bytes of a target the fast path takes: VCHAR, 0x21-0x7e */
#define ZG_R2(c) [c] = 1, [(c) + 1] = 1
#define ZG_R4(c) ZG_R2(c), ZG_R2((c) + 2)
#define ZG_R8(c) ZG_R4(c), ZG_R4((c) + 4)
#define ZG_R16(c) ZG_R8(c), ZG_R8((c) + 8)
static const unsigned char zg_fast_target[256] = {
    [0x21] = 1,   ZG_R2(0x22),  ZG_R4(0x24),  ZG_R8(0x28),  ZG_R16(0x30), ZG_R16(0x40),
    ZG_R16(0x50), ZG_R16(0x60), ZG_R8(0x70),  ZG_R4(0x78),  ZG_R2(0x7c),  [0x7e] = 1,
};
#undef ZG_R2
#undef ZG_R4
#undef ZG_R8
#undef ZG_R16

/* the end of a run of bytes in [lo, 0x7e] (value: also HTAB) from i: eight bytes at a
 * time, then byte by byte.  In a word, a byte below lo, a DEL or a byte above sets its
 * high bit in m; a borrow can set it in a byte after a stop too, never before one, so
 * the lowest bit set is the first stop (little-endian). */
#define ZG_ONES 0x0101010101010101ULL
#define ZG_HIGHS 0x8080808080808080ULL

static inline size_t zg_http_fast_run(const unsigned char *b, size_t i, size_t end, unsigned lo)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - i >= 8) {
        uint64_t w, del, m;

        memcpy(&w, b + i, 8);
        del = w ^ (ZG_ONES * 0x7f); /* a zero byte where w has DEL */
        m = (((w - ZG_ONES * lo) & ~w) | w | ((del - ZG_ONES) & ~del)) & ZG_HIGHS;
        if (m == 0) {
            i += 8;
            continue;
        }
        i += (size_t)__builtin_ctzll(m) >> 3;
        if (b[i] != '\t' || lo != 0x20) {
            return i;
        }
        i++;
    }
#endif
    if (lo == 0x21) {
        while (i < end && zg_fast_target[b[i]]) {
            i++;
        }
    } else {
        while (i < end && (zg_fast_target[b[i]] || b[i] == ' ' || b[i] == '\t')) {
            i++;
        }
    }
    return i;
}

static const struct {
    const char *name;
    size_t len;
    int id;
} zg_http_fast_methods[] = {
    { "GET", 3, HTTP_GET },       { "HEAD", 4, HTTP_HEAD },     { "POST", 4, HTTP_POST },
    { "PUT", 3, HTTP_PUT },       { "DELETE", 6, HTTP_DELETE }, { "PATCH", 5, HTTP_PATCH },
    { "OPTIONS", 7, HTTP_OPTIONS },
};

/* llhttp's id of a method the fast path takes, or -1 */
static int zg_http_fast_method(const unsigned char *m, size_t n)
{
    for (size_t k = 0; k < sizeof(zg_http_fast_methods) / sizeof(zg_http_fast_methods[0]);
         k++) {
        if (zg_http_fast_methods[k].len == n && memcmp(m, zg_http_fast_methods[k].name, n) == 0) {
            return zg_http_fast_methods[k].id;
        }
    }
    return -1;
}

/* a header llhttp gives a meaning: 0 = none, 1 = Connection, 2 = Content-Length,
 * -1 = leave it to llhttp */
static int zg_http_fast_special(const unsigned char *n, size_t len)
{
    const char *s = (const char *)n;

    /* Upgrade alone means nothing: llhttp switches only with "Connection: upgrade" */
    switch (len) {
    case 10:
        return zg_http_ieq(s, "connection", 10) ? 1 : 0;
    case 14:
        return zg_http_ieq(s, "content-length", 14) ? 2 : 0;
    case 16:
        return zg_http_ieq(s, "proxy-connection", 16) ? -1 : 0;
    case 17:
        return zg_http_ieq(s, "transfer-encoding", 17) ? -1 : 0;
    }
    return 0;
}

static int zg_http_in_fast(zg_http_in_t *in)
{
    const unsigned char *b = (const unsigned char *)in->b.data;
    size_t i = in->pos, end = in->b.len, ms = i, ts, te, nh = 0;
    int mid;
    uint8_t cflags = 0;
    int64_t cl = -1;

    while (i < end && b[i] >= 'A' && b[i] <= 'Z') {
        i++;
    }
    if (i == end || b[i] != ' ' || (mid = zg_http_fast_method(b + ms, i - ms)) < 0) {
        return 0;
    }
    ts = ++i;
    if (i == end || b[i] != '/') {
        return 0;
    }
    i = zg_http_fast_run(b, i, end, 0x21);
    te = i;
    if (end - i < 11 || memcmp(b + i, " HTTP/1.", 8) != 0 ||
        (b[i + 8] != '0' && b[i + 8] != '1') || b[i + 9] != '\r' || b[i + 10] != '\n') {
        return 0;
    }
    i += 11;

    for (;;) {
        size_t ns, ne, vs, ve;
        int sp;

        if (i == end) {
            return 0;
        }
        if (b[i] == '\r') {
            if (end - i < 2 || b[i + 1] != '\n') {
                return 0;
            }
            i += 2;
            break;
        }
        ns = i;
        while (end - i >= 4 && (zg_http_tchar[b[i]] & zg_http_tchar[b[i + 1]] &
                                zg_http_tchar[b[i + 2]] & zg_http_tchar[b[i + 3]])) {
            i += 4;
        }
        while (i < end && zg_http_tchar[b[i]]) {
            i++;
        }
        if (i == end || b[i] != ':' || i == ns) {
            return 0;
        }
        ne = i;
        sp = zg_http_fast_special(b + ns, ne - ns);
        if (sp < 0) {
            return 0;
        }
        i++;
        while (i < end && (b[i] == ' ' || b[i] == '\t')) {
            i++;
        }
        vs = i;
        i = zg_http_fast_run(b, i, end, 0x20);
        ve = i;
        if (end - i < 2 || b[i] != '\r' || b[i + 1] != '\n') {
            return 0;
        }
        i += 2;
        if (sp == 1) {
            zg_str_t v = zg_http_trim((const char *)b + vs, ve - vs);

            if (zg_http_is(&v, "close")) {
                cflags |= F_CONNECTION_CLOSE;
            } else if (zg_http_is(&v, "keep-alive")) {
                cflags |= F_CONNECTION_KEEP_ALIVE;
            } else {
                return 0;
            }
        } else if (sp == 2) {
            /* one Content-Length of 1 to 18 digits: the body is read here too */
            size_t k = vs;

            if (cl >= 0 || ve == vs || ve - vs > 18) {
                return 0;
            }
            for (cl = 0; k < ve; k++) {
                if (b[k] < '0' || b[k] > '9') {
                    return 0;
                }
                cl = cl * 10 + (b[k] - '0');
            }
        }
        if (nh == in->hcap) {
            int rc;

            in->nh = nh; /* the spans so far move with it */
            rc = zg_http_in_more_headers(in);
            in->nh = 0;
            if (rc != ZG_OK) {
                in->status = 0; /* llhttp's path says why */
                in->err = NULL;
                return 0;
            }
        }
        in->hn[nh].off = (uint32_t)ns;
        in->hn[nh].len = (uint32_t)(ne - ns);
        in->hv[nh].off = (uint32_t)vs;
        in->hv[nh].len = (uint32_t)(ve - vs);
        nh++;
    }

    in->nh = nh;
    in->method.off = (uint32_t)ms;
    in->method.len = (uint32_t)(ts - 1 - ms);
    in->url.off = (uint32_t)ts;
    in->url.len = (uint32_t)(te - ts);
    in->version.off = (uint32_t)(te + 6);
    in->version.len = 3;
    in->started = in->rl_done = in->have_version = 1;
    in->major = 1;
    in->minor = (uint8_t)(b[te + 8] - '0');
    in->method_id = (uint8_t)mid;
    in->cflags = cflags;
    in->fast = 1;
    in->fast_left = cl > 0 ? cl : 0;
    in->pos = i;
    return 1;
}

static int zg_http_in_llhttp_status(zg_http_in_t *in, llhttp_errno_t e)
{
    const char *reason = llhttp_get_error_reason(&in->p);

    if (in->status) {
        return in->status;
    }
    in->err = reason ? reason : llhttp_errno_name(e);
    if (e == HPE_PAUSED_H2_UPGRADE) {
        in->err = "HTTP/2 connection preface";
        in->status = 505;
    } else if (e == HPE_INVALID_VERSION && reason &&
               (strcmp(reason, "Invalid HTTP version") == 0 ||
                strcmp(reason, "Invalid major version") == 0 ||
                strcmp(reason, "Invalid minor version") == 0)) {
        in->status = 505;
    } else {
        in->status = 400;
    }
    return in->status;
}

static int zg_http_in_error_state(zg_http_in_t *in, int status)
{
    in->state = ZG_IN_ERROR;
    if (in->status == 0) {
        in->status = status;
    }
    return in->status;
}

/* destroyed from a handler: free once the outermost call unwinds */
static int zg_http_in_reap(zg_http_in_t *in)
{
    if (in->busy == 0) {
        zg_http_in_free(in);
    }
    return ZG_ERROR;
}

/* the head ends at pos: checks it and calls on_head; 0, or what parse returns */
static int zg_http_in_got_head(zg_http_in_t *in)
{
    int rc;

    in->he = in->pos;
    rc = zg_http_in_head(in);
    if (rc) {
        return zg_http_in_error_state(in, rc);
    }
    in->state = ZG_IN_HEAD_STOP;
    in->busy++;
    in->h.on_head(in->data, &in->req);
    in->busy--;
    if (in->dead) {
        return zg_http_in_reap(in);
    }
    return 0;
}

/* the message is complete: calls on_done; 0, or what parse returns */
static int zg_http_in_got_done(zg_http_in_t *in)
{
    in->state = ZG_IN_DONE;
    in->busy++;
    in->h.on_done(in->data);
    in->busy--;
    if (in->dead) {
        return zg_http_in_reap(in);
    }
    return 0;
}

/* returns a feed result; on_head and on_done are called from here, outside llhttp,
 * so that they may call resume/next (which then only mark the parser to go on) */
static int zg_http_in_parse(zg_http_in_t *in)
{
    llhttp_errno_t e;
    int rc;

    for (;;) {
        if (in->state != ZG_IN_HEAD && in->state != ZG_IN_BODY) {
            return in->state == ZG_IN_ERROR ? in->status : ZG_AGAIN;
        }

        if (in->fast) {
            /* resumed after a fast head: its Content-Length body, if any */
            if (in->fast_left > 0) {
                size_t n = (size_t)zg_min((uint64_t)in->fast_left, in->b.len - in->pos);

                if (n == 0) {
                    return ZG_OK;
                }
                zg_http_in_body(in, in->b.data + in->pos, n);
                if (in->dead) {
                    return zg_http_in_reap(in);
                }
                in->pos += n;
                in->fast_left -= (int64_t)n;
                if (in->fast_left > 0) {
                    return ZG_OK;
                }
            }
            rc = zg_http_in_got_done(in);
            if (rc) {
                return rc;
            }
            continue;
        }
        if (in->state == ZG_IN_HEAD && !in->ll_used) {
            if (in->pos == in->b.len) {
                return ZG_OK; /* nothing of the next request yet */
            }
            if (!in->lim.no_fast && zg_http_in_fast(in)) {
                rc = zg_http_in_got_head(in);
                if (rc) {
                    return rc;
                }
                continue;
            }
            in->ll_used = 1;
        }

        e = llhttp_execute(&in->p, in->b.data + in->pos, in->b.len - in->pos);

        if (in->dead) {
            return zg_http_in_reap(in);
        }

        if (e == HPE_OK) {
            in->pos = in->b.len;
            if (in->state == ZG_IN_HEAD) {
                size_t hs = in->started ? in->method.off : 0;

                /* "GET /g\r\n" is HTTP/0.9: llhttp waits for one more byte
                 * before it says so; answer now, not after client_header_timeout */
                if (in->started && !in->rl_done && in->url.len &&
                    in->url.off + in->url.len < in->b.len &&
                    in->b.data[in->url.off + in->url.len] != ' ') {
                    zg_http_in_fail(in, 400, "HTTP/0.9 request");
                    return zg_http_in_error_state(in, 400);
                }
                if (!in->rl_done && in->b.len - hs > in->lim.line_max + 2) {
                    zg_http_in_fail(in, 414, "request line too long");
                    return zg_http_in_error_state(in, 414);
                }
                if (in->b.len > in->lim.head_max) {
                    zg_http_in_fail(in, 431, "request head too large");
                    return zg_http_in_error_state(in, 431);
                }
            }
            return ZG_OK;
        }

        if (e != HPE_PAUSED || in->paused == ZG_PAUSE_NONE) {
            return zg_http_in_error_state(in, zg_http_in_llhttp_status(in, e));
        }

        in->pos = (size_t)(llhttp_get_error_pos(&in->p) - in->b.data);
        llhttp_resume(&in->p);

        if (in->paused == ZG_PAUSE_HEAD) {
            in->paused = ZG_PAUSE_NONE;
            rc = zg_http_in_got_head(in);
            if (rc) {
                return rc;
            }
            continue;

        } else {
            in->paused = ZG_PAUSE_NONE;
            rc = zg_http_in_got_done(in);
            if (rc) {
                return rc;
            }
        }
    }
}

int zg_http_in_feed(zg_http_in_t *in, size_t n)
{
    in->b.len += n;
    if (in->b.len > in->b.cap) {
        in->b.len = in->b.cap;
    }
    if (in->busy) {
        return ZG_OK;
    }
    return zg_http_in_parse(in);
}

int zg_http_in_resume(zg_http_in_t *in)
{
    if (in->state != ZG_IN_HEAD_STOP) {
        return in->state == ZG_IN_ERROR ? in->status : ZG_AGAIN;
    }
    in->state = ZG_IN_BODY;
    if (in->busy) {
        return ZG_OK;
    }
    return zg_http_in_parse(in);
}

int zg_http_in_next(zg_http_in_t *in)
{
    size_t rest;

    if (in->state != ZG_IN_DONE) {
        return ZG_ERROR;
    }
    rest = in->b.len - in->pos;
    if (rest) {
        memmove(in->b.data, in->b.data + in->pos, rest);
    }
    in->b.len = rest;
    in->pos = 0;
    zg_http_in_clear(in);
    if (in->busy) {
        return ZG_OK;
    }
    return zg_http_in_parse(in);
}

int zg_http_in_pending(const zg_http_in_t *in)
{
    return in->state == ZG_IN_DONE && in->pos < in->b.len;
}

int zg_http_in_eof(zg_http_in_t *in)
{
    switch (in->state) {
    case ZG_IN_HEAD:
        return in->b.len > 0;
    case ZG_IN_HEAD_STOP:
    case ZG_IN_BODY:
        return 1;
    case ZG_IN_DONE:
        return in->pos < in->b.len;
    default:
        return 0;
    }
}

const char *zg_http_in_error(const zg_http_in_t *in)
{
    return in->err ? in->err : "";
}

/* ---- upstream responses ---- */

enum { ZG_RESP_HEAD, ZG_RESP_BODY, ZG_RESP_DONE, ZG_RESP_ERROR };

struct zg_http_resp_s {
    llhttp_t p;
    zg_http_resp_handlers_t h;
    void *data;
    size_t head_max;
    zg_buf_t b;           /* the bytes read; unparsed: [pos, b.len) */
    size_t pos;
    size_t hs, he; /* current head [hs, he); spans are relative to hs */
    int state;
    int paused;
    int busy;
    unsigned dead : 1;
    unsigned head_request : 1;
    unsigned in_value : 1;
    unsigned fail : 1;
    zg_http_span_t reason;
    size_t nh;
    zg_http_span_t hn[ZG_HTTP_MAX_HEADERS], hv[ZG_HTTP_MAX_HEADERS];
    size_t trailer_bytes;
    zg_http_resp_head_t head;
};

static int zg_http_resp_on_status(llhttp_t *p, const char *at, size_t n)
{
    zg_http_resp_t *r = p->data;

    zg_http_span(&r->reason, r->b.data + r->hs, at, n);
    return 0;
}

static int zg_http_resp_on_header_field(llhttp_t *p, const char *at, size_t n)
{
    zg_http_resp_t *r = p->data;

    if (r->state != ZG_RESP_HEAD) {
        r->trailer_bytes += n;
        return r->trailer_bytes > r->head_max ? -1 : 0;
    }
    if (r->nh == 0 || r->in_value) {
        if (r->nh == ZG_HTTP_MAX_HEADERS) {
            return -1;
        }
        r->in_value = 0;
        r->hn[r->nh].len = 0;
        r->hv[r->nh].len = 0;
        r->nh++;
    }
    zg_http_span(&r->hn[r->nh - 1], r->b.data + r->hs, at, n);
    return 0;
}

static int zg_http_resp_on_header_value(llhttp_t *p, const char *at, size_t n)
{
    zg_http_resp_t *r = p->data;

    if (r->state != ZG_RESP_HEAD) {
        r->trailer_bytes += n;
        return r->trailer_bytes > r->head_max ? -1 : 0;
    }
    r->in_value = 1;
    zg_http_span(&r->hv[r->nh - 1], r->b.data + r->hs, at, n);
    return 0;
}

static int zg_http_resp_on_headers_complete(llhttp_t *p)
{
    zg_http_resp_t *r = p->data;
    int st = p->status_code;

    if (r->state != ZG_RESP_HEAD) {
        return 0;
    }
    if (r->head_request || (st >= 100 && st < 200) || st == 204 || st == 304) {
        p->flags |= F_SKIPBODY;
    }
    p->upgrade = 0;
    r->paused = ZG_PAUSE_HEAD;
    return HPE_PAUSED;
}

static int zg_http_resp_on_body(llhttp_t *p, const char *at, size_t n)
{
    zg_http_resp_t *r = p->data;

    if (r->dead) {
        return -1;
    }
    if (r->h.on_body) {
        r->busy++;
        r->h.on_body(r->data, at, n);
        r->busy--;
    }
    return 0;
}

static int zg_http_resp_on_message_complete(llhttp_t *p)
{
    zg_http_resp_t *r = p->data;

    r->paused = ZG_PAUSE_DONE;
    return HPE_PAUSED;
}

static const llhttp_settings_t zg_http_resp_settings = {
    .on_status = zg_http_resp_on_status,
    .on_header_field = zg_http_resp_on_header_field,
    .on_header_value = zg_http_resp_on_header_value,
    .on_headers_complete = zg_http_resp_on_headers_complete,
    .on_body = zg_http_resp_on_body,
    .on_message_complete = zg_http_resp_on_message_complete,
};

static void zg_http_resp_clear(zg_http_resp_t *r)
{
    llhttp_reset(&r->p);
    r->paused = ZG_PAUSE_NONE;
    r->in_value = 0;
    r->reason.len = 0;
    r->nh = 0;
    r->trailer_bytes = 0;
}

zg_http_resp_t *zg_http_resp_create(size_t head_max, const zg_http_resp_handlers_t *h,
                                    void *data)
{
    zg_http_resp_t *r = malloc(sizeof(*r));

    if (r == NULL) {
        return NULL;
    }
    r->h = *h;
    r->data = data;
    r->head_max = head_max ? head_max : ZG_HTTP_HEAD_MAX;
    r->b = (zg_buf_t)ZG_BUF_INIT;
    r->busy = 0;
    r->dead = 0;
    llhttp_init(&r->p, HTTP_RESPONSE, &zg_http_resp_settings);
    r->p.data = r;
    zg_http_resp_reset(r, 0);
    return r;
}

void zg_http_resp_destroy(zg_http_resp_t *r)
{
    if (r == NULL) {
        return;
    }
    if (r->busy) {
        r->dead = 1;
        return;
    }
    free(r->b.data);
    free(r);
}

void zg_http_resp_reset(zg_http_resp_t *r, int head_request)
{
    zg_http_resp_clear(r);
    r->head_request = head_request ? 1 : 0;
    r->b.len = r->pos = r->hs = r->he = 0;
    r->state = ZG_RESP_HEAD;
    r->fail = 0;
}

char *zg_http_resp_buffer(zg_http_resp_t *r, size_t *len)
{
    if (r->state == ZG_RESP_HEAD) {
        if (r->b.cap - r->b.len < ZG_HTTP_READ_MIN && r->hs > 0) {
            memmove(r->b.data, r->b.data + r->hs, r->b.len - r->hs);
            r->b.len -= r->hs;
            r->pos -= r->hs;
            r->hs = 0;
        }
        if (r->b.cap - r->b.len < ZG_HTTP_READ_MIN) {
            size_t want = r->b.cap ? r->b.cap * 2 : ZG_HTTP_BUF_INIT;

            want = zg_min(want, r->head_max + ZG_HTTP_READ_MIN);
            want = zg_max(want, r->b.len + ZG_HTTP_READ_MIN);
            if (zg_buf_resize(&r->b, want) != ZG_OK && r->b.cap == r->b.len) {
                *len = 0;
                return NULL;
            }
        }
    } else if (r->pos == r->b.len) {
        r->pos = r->b.len = r->he;
    }
    *len = r->b.cap - r->b.len;
    return r->b.data + r->b.len;
}

static int zg_http_resp_head(zg_http_resp_t *r)
{
    zg_http_resp_head_t *hd = &r->head;
    llhttp_t *p = &r->p;
    const char *b;

    if (r->he - r->hs > r->head_max) {
        return ZG_ERROR;
    }
    if (p->http_major != 1 || p->status_code == 101) {
        return ZG_ERROR;
    }
    if (zg_http_scan_head(r->b.data + r->hs, r->he - r->hs, 1)) {
        return ZG_ERROR;
    }
    if (r->b.cap - r->he < ZG_HTTP_READ_MIN) {
        if (zg_buf_resize(&r->b, zg_max(r->b.len, r->he) + ZG_HTTP_READ_MIN) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    b = r->b.data + r->hs;
    hd->status = p->status_code;
    hd->http_major = p->http_major;
    hd->http_minor = p->http_minor;
    hd->reason.data = b + r->reason.off;
    hd->reason.len = r->reason.len;
    hd->nhdrs = r->nh;
    for (size_t i = 0; i < r->nh; i++) {
        hd->names[i].data = b + r->hn[i].off;
        hd->names[i].len = r->hn[i].len;
        hd->values[i] = zg_http_trim(b + r->hv[i].off, r->hv[i].len);
    }
    hd->no_body = (p->flags & F_SKIPBODY) ? 1 : 0;
    hd->chunked = (!hd->no_body && (p->flags & F_CHUNKED)) ? 1 : 0;
    hd->content_length =
        (p->flags & F_CONTENT_LENGTH) && !hd->chunked ? (int64_t)p->content_length : -1;
    if (hd->content_length < -1) {
        return ZG_ERROR;
    }
    hd->until_close = !hd->no_body && !hd->chunked && hd->content_length < 0;
    if (p->http_minor >= 1) {
        hd->keepalive = !(p->flags & F_CONNECTION_CLOSE);
    } else {
        hd->keepalive =
            (p->flags & F_CONNECTION_KEEP_ALIVE) && !(p->flags & F_CONNECTION_CLOSE);
    }
    if (hd->until_close) {
        hd->keepalive = 0;
    }
    return ZG_OK;
}

/* after a handler: 1 if the parser was destroyed from it */
static int zg_http_resp_gone(zg_http_resp_t *r)
{
    if (r->dead && r->busy == 0) {
        free(r->b.data);
        free(r);
        return 1;
    }
    return 0;
}

static int zg_http_resp_done(zg_http_resp_t *r)
{
    r->state = ZG_RESP_DONE;
    if (r->h.on_done) {
        r->busy++;
        r->h.on_done(r->data);
        r->busy--;
        if (zg_http_resp_gone(r)) {
            return ZG_DONE;
        }
    }
    return ZG_DONE;
}

int zg_http_resp_feed(zg_http_resp_t *r, size_t n)
{
    llhttp_errno_t e;

    r->b.len = zg_min(r->b.len + n, r->b.cap);
    if (r->state == ZG_RESP_DONE || r->state == ZG_RESP_ERROR) {
        r->state = ZG_RESP_ERROR;
        return ZG_ERROR;
    }

    for (;;) {
        e = llhttp_execute(&r->p, r->b.data + r->pos, r->b.len - r->pos);

        if (e == HPE_OK) {
            r->pos = r->b.len;
            if (r->state == ZG_RESP_HEAD && r->b.len - r->hs > r->head_max) {
                r->state = ZG_RESP_ERROR;
                return ZG_ERROR;
            }
            return ZG_OK;
        }
        if (e != HPE_PAUSED || r->paused == ZG_PAUSE_NONE) {
            r->state = ZG_RESP_ERROR;
            return ZG_ERROR;
        }
        r->pos = (size_t)(llhttp_get_error_pos(&r->p) - r->b.data);
        llhttp_resume(&r->p);

        if (r->paused == ZG_PAUSE_DONE) {
            r->paused = ZG_PAUSE_NONE;
            if (r->pos < r->b.len) {
                r->head.keepalive = 0; /* more than one response */
            }
            return zg_http_resp_done(r);
        }

        r->paused = ZG_PAUSE_NONE;
        r->he = r->pos;
        if (r->p.status_code >= 100 && r->p.status_code < 200 &&
            r->p.status_code != 101) {
            /* interim response: skip it, parse the real one */
            if (r->he - r->hs > r->head_max) {
                r->state = ZG_RESP_ERROR;
                return ZG_ERROR;
            }
            zg_http_resp_clear(r);
            r->hs = r->pos;
            continue;
        }
        if (zg_http_resp_head(r) != ZG_OK) {
            r->state = ZG_RESP_ERROR;
            return ZG_ERROR;
        }
        r->state = ZG_RESP_BODY;
        if (r->h.on_head) {
            r->busy++;
            r->h.on_head(r->data, &r->head);
            r->busy--;
            if (zg_http_resp_gone(r)) {
                return ZG_ERROR;
            }
        }
    }
}

int zg_http_resp_eof(zg_http_resp_t *r)
{
    llhttp_errno_t e;

    if (r->state == ZG_RESP_DONE) {
        return ZG_DONE;
    }
    if (r->state != ZG_RESP_BODY || !r->head.until_close) {
        r->state = ZG_RESP_ERROR;
        return ZG_ERROR;
    }
    e = llhttp_finish(&r->p);
    if (e != HPE_OK && e != HPE_PAUSED) {
        r->state = ZG_RESP_ERROR;
        return ZG_ERROR;
    }
    r->paused = ZG_PAUSE_NONE;
    return zg_http_resp_done(r);
}

int zg_http_resp_reusable(const zg_http_resp_t *r)
{
    return r->state == ZG_RESP_DONE && r->head.keepalive;
}

/* ---- writers ---- */

const char *zg_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 203:
        return "Non-Authoritative Information";
    case 204:
        return "No Content";
    case 205:
        return "Reset Content";
    case 206:
        return "Partial Content";
    case 300:
        return "Multiple Choices";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Moved Temporarily";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Not Allowed";
    case 406:
        return "Not Acceptable";
    case 407:
        return "Proxy Authentication Required";
    case 408:
        return "Request Time-out";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Request Entity Too Large";
    case 414:
        return "Request-URI Too Large";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Requested Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Entity";
    case 423:
        return "Locked";
    case 424:
        return "Failed Dependency";
    case 425:
        return "Too Early";
    case 426:
        return "Upgrade Required";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Temporarily Unavailable";
    case 504:
        return "Gateway Time-out";
    case 505:
        return "HTTP Version Not Supported";
    case 507:
        return "Insufficient Storage";
    default:
        if (status >= 500) {
            return "Internal Server Error";
        }
        if (status >= 400) {
            return "Bad Request";
        }
        if (status >= 300) {
            return "Multiple Choices";
        }
        if (status >= 200) {
            return "OK";
        }
        return "Continue";
    }
}

typedef struct {
    char *p;
    size_t len, n;
} zg_http_out_t;

static void zg_http_put(zg_http_out_t *o, const char *s, size_t n)
{
    if (o->n < o->len) {
        size_t room = o->len - o->n;

        memcpy(o->p + o->n, s, zg_min(n, room));
    }
    o->n += n;
}

static void zg_http_puts(zg_http_out_t *o, const char *s)
{
    zg_http_put(o, s, strlen(s));
}

static void zg_http_putn(zg_http_out_t *o, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    zg_http_put(o, tmp + i, sizeof(tmp) - i);
}

/* the nginx-like error page and the status line of a status, built once */
typedef struct {
    char *line;                 /* "HTTP/1.1 503 Service Temporarily Unavailable\r\n" */
    size_t line_len;
    char *page;                 /* signed "zonegate" (server_tokens off) */
    size_t page_len;
    char *page_v;               /* signed "zonegate/VERSION" */
    size_t page_v_len;
    /* the whole error answer (no extra headers, default type, a body), keep-alive or
     * close, as of the second `sec`: a rejection copies it in one go */
    char *whole[4];             /* [keepalive | ZG_HTTP_TOKENS] */
    size_t whole_len[4];
    time_t whole_sec[4];
} zg_http_status_cache_t;

static time_t zg_http_date_sec = (time_t)-1; /* the second zg_http_date() shows */

static zg_http_status_cache_t zg_http_cache[500];

static const zg_http_status_cache_t *zg_http_status_cache(int status)
{
    static zg_http_status_cache_t none;
    if (status < 100 || status > 599) {
        return &none;
    }
    zg_http_status_cache_t *c = &zg_http_cache[status - 100];
    if (c->line == NULL) {
        const char *reason = zg_http_reason(status);
        /* nginx's pages use its status texts, except 401's page title */
        const char *title = status == 401 ? "Authorization Required" : reason;
        char line[128], page[512], page_v[512];
        int ln = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, reason);
        int pn = snprintf(page, sizeof(page),
                          "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n"
                          "<center><h1>%d %s</h1></center>\r\n<hr><center>zonegate</center>\r\n"
                          "</body>\r\n</html>\r\n",
                          status, title, status, title);
        int vn = snprintf(page_v, sizeof(page_v),
                          "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n"
                          "<center><h1>%d %s</h1></center>\r\n"
                          "<hr><center>zonegate/" ZG_VERSION "</center>\r\n"
                          "</body>\r\n</html>\r\n",
                          status, title, status, title);
        char *l = malloc((size_t)ln + 1), *pg = malloc((size_t)pn + 1);
        char *pv = malloc((size_t)vn + 1);
        if (l == NULL || pg == NULL || pv == NULL) {
            free(l);
            free(pg);
            free(pv);
            return &none;
        }
        memcpy(l, line, (size_t)ln + 1);
        memcpy(pg, page, (size_t)pn + 1);
        memcpy(pv, page_v, (size_t)vn + 1);
        c->line_len = (size_t)ln;
        c->page = pg;
        c->page_len = (size_t)pn;
        c->page_v = pv;
        c->page_v_len = (size_t)vn;
        c->line = l;
    }
    return c;
}

const char *zg_http_status_page(int status, int tokens, size_t *len)
{
    const zg_http_status_cache_t *c = zg_http_status_cache(status);

    *len = tokens ? c->page_v_len : c->page_len;
    return tokens ? c->page_v : c->page;
}

size_t zg_http_response_body_len(int status, const char *body, size_t body_len,
                                 int head_request, int tokens)
{
    int empty = status == 204 || status == 304 || (status >= 100 && status < 200);
    if (head_request || (body == NULL && empty)) {
        return 0;
    }
    if (body) {
        return body_len;
    }
    return tokens ? zg_http_status_cache(status)->page_v_len
                  : zg_http_status_cache(status)->page_len;
}

static size_t zg_http_build_response(char *buf, size_t len, int status, int keepalive,
                                     const char *extra, const char *content_type,
                                     const char *body, size_t body_len, int head_request)
{
    zg_http_out_t o = {buf, len, 0};
    int empty = status == 204 || status == 304 || (status >= 100 && status < 200);
    int page = body == NULL && !empty;
    const zg_http_status_cache_t *c = zg_http_status_cache(status);
    const char *pg = keepalive & ZG_HTTP_TOKENS ? c->page_v : c->page;

    if (page) {
        body_len = keepalive & ZG_HTTP_TOKENS ? c->page_v_len : c->page_len;
    } else if (body == NULL) {
        body_len = 0;
    }

    if (c->line) {
        zg_http_put(&o, c->line, c->line_len);
    } else {
        zg_http_puts(&o, "HTTP/1.1 ");
        zg_http_putn(&o, (uint64_t)status);
        zg_http_put(&o, " ", 1);
        zg_http_puts(&o, zg_http_reason(status));
        zg_http_put(&o, "\r\n", 2);
    }
    if (keepalive & ZG_HTTP_TOKENS) {
        zg_http_put(&o, "Server: zonegate/" ZG_VERSION "\r\nDate: ",
                    sizeof("Server: zonegate/" ZG_VERSION "\r\nDate: ") - 1);
    } else {
        zg_http_put(&o, "Server: zonegate\r\nDate: ", 24);
    }
    zg_http_put(&o, zg_http_date(), 29);
    zg_http_put(&o, "\r\n", 2);
    if (!empty || body) {
        zg_http_put(&o, "Content-Type: ", 14);
        zg_http_puts(&o, content_type ? content_type : "text/html");
        zg_http_put(&o, "\r\nContent-Length: ", 18);
        zg_http_putn(&o, body_len);
        zg_http_put(&o, "\r\n", 2);
    }
    if (keepalive & 1) {
        zg_http_put(&o, "Connection: keep-alive\r\n", 24);
    } else {
        zg_http_put(&o, "Connection: close\r\n", 19);
    }
    if (extra) {
        zg_http_puts(&o, extra);
    }
    zg_http_put(&o, "\r\n", 2);
    if (!head_request) {
        if (page) {
            zg_http_put(&o, pg, body_len);
        } else if (body) {
            zg_http_put(&o, body, body_len);
        }
    }
    if (len) {
        buf[o.n < len ? o.n : len - 1] = '\0';
    }
    return o.n;
}

#define ZG_HTTP_WHOLE_MAX 1024

size_t zg_http_write_response(char *buf, size_t len, int status, int keepalive,
                              const char *extra, const char *content_type,
                              const char *body, size_t body_len, int head_request)
{
    if (body == NULL && extra == NULL && content_type == NULL && !head_request &&
        status >= 300 && status <= 599 && status != 304) {
        zg_http_status_cache_t *c = &zg_http_cache[status - 100];
        int k = keepalive & (1 | ZG_HTTP_TOKENS);

        zg_http_date();
        if (c->whole_sec[k] != zg_http_date_sec || c->whole[k] == NULL) {
            if (c->whole[k] == NULL && (c->whole[k] = malloc(ZG_HTTP_WHOLE_MAX)) == NULL) {
                goto build;
            }
            c->whole_len[k] = zg_http_build_response(c->whole[k], ZG_HTTP_WHOLE_MAX, status,
                                                     keepalive, NULL, NULL, NULL, 0, 0);
            c->whole_sec[k] = c->whole_len[k] < ZG_HTTP_WHOLE_MAX ? zg_http_date_sec
                                                                  : (time_t)-1;
        }
        if (c->whole_sec[k] == zg_http_date_sec && c->whole_len[k] < len) {
            memcpy(buf, c->whole[k], c->whole_len[k] + 1);
            return c->whole_len[k];
        }
    }
build:
    return zg_http_build_response(buf, len, status, keepalive, extra, content_type, body,
                                  body_len, head_request);
}

const char *zg_http_date(void)
{
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static char cached[32];
    static time_t cached_sec = (time_t)-1;
    time_t now = time(NULL);
    struct tm tm;

    if (now != cached_sec) {
        gmtime_r(&now, &tm);
        snprintf(cached, sizeof(cached), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = now;
        zg_http_date_sec = now;
    }
    return cached;
}

size_t zg_http_time(char *buf, time_t t)
{
    static const char days[] = "ThuFriSatSunMonTueWed"; /* 1970-01-01 was a Thursday */
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t d = (int64_t)t / 86400, s = (int64_t)t % 86400;

    /* by hand, not gmtime_r + snprintf: a static file's Last-Modified is made per
     * request (days to a civil date: H. Hinnant's days_from_civil, inverted) */
    if (s < 0) {
        s += 86400;
        d--;
    }
    int64_t wd = d % 7;
    if (wd < 0) {
        wd += 7;
    }
    int64_t z = d + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int mday = (int)(doy - (153 * mp + 2) / 5 + 1);
    int mon = (int)(mp < 10 ? mp + 3 : mp - 9); /* 1..12 */
    int64_t year = yoe + era * 400 + (mon <= 2);
    if (year < 0 || year > 9999) {
        year = year < 0 ? 0 : 9999;
    }
    int hh = (int)(s / 3600), mm = (int)(s / 60 % 60), ss = (int)(s % 60);
    char *p = buf;
    memcpy(p, days + 3 * wd, 3);
    p[3] = ',';
    p[4] = ' ';
    p[5] = (char)('0' + mday / 10);
    p[6] = (char)('0' + mday % 10);
    p[7] = ' ';
    memcpy(p + 8, months + 3 * (mon - 1), 3);
    p[11] = ' ';
    p[12] = (char)('0' + year / 1000);
    p[13] = (char)('0' + year / 100 % 10);
    p[14] = (char)('0' + year / 10 % 10);
    p[15] = (char)('0' + year % 10);
    p[16] = ' ';
    p[17] = (char)('0' + hh / 10);
    p[18] = (char)('0' + hh % 10);
    p[19] = ':';
    p[20] = (char)('0' + mm / 10);
    p[21] = (char)('0' + mm % 10);
    p[22] = ':';
    p[23] = (char)('0' + ss / 10);
    p[24] = (char)('0' + ss % 10);
    memcpy(p + 25, " GMT", 5); /* with the NUL */
    return 29;
}

time_t zg_http_parse_time(const char *s, size_t n)
{
    /* RFC 1123, RFC 850 and asctime, as nginx's ngx_parse_http_time */
    static const char *fmts[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                 "%a %b %e %H:%M:%S %Y"};
    char tmp[64];

    if (n == 0 || n >= sizeof(tmp)) {
        return (time_t)-1;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *end = strptime(tmp, fmts[i], &tm);
        if (end != NULL && *end == '\0') {
            return timegm(&tm);
        }
    }
    return (time_t)-1;
}

int zg_http_hop_by_hop(const zg_str_t *name)
{
    switch (name->len) {
    case 2:
        return zg_http_name_eq(name, "te", 2);
    case 7:
        return zg_http_name_eq(name, "trailer", 7) || zg_http_name_eq(name, "upgrade", 7);
    case 10:
        return zg_http_name_eq(name, "connection", 10) ||
               zg_http_name_eq(name, "keep-alive", 10);
    case 16:
        return zg_http_name_eq(name, "proxy-connection", 16);
    case 17:
        return zg_http_name_eq(name, "transfer-encoding", 17);
    default:
        return 0;
    }
}
