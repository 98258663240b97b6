/* test_http.c — zg_http: request parsing (whole, split, pipelined), zonegate's own
 * strictness checks with their statuses, upstream responses, writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llhttp.h>

#include "zg_http.h"

/* ---- request driver: records a transcript of everything the parser reports ---- */

typedef struct {
    zg_http_in_t *in;
    char out[16384];
    size_t olen;
    char body[32768];
    size_t blen;
    int stopped; /* 1 after on_head, 2 after on_done */
    int nested;  /* resume/next from inside the handlers */
    int heads;
    zg_http_req_t *req;
} rec_t;

static void rec_printf(rec_t *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(r->out + r->olen, sizeof(r->out) - r->olen, fmt, ap);
    va_end(ap);
    if (n > 0) {
        r->olen = zg_min(r->olen + (size_t)n, sizeof(r->out) - 1);
    }
}

static void rec_str(rec_t *r, const zg_str_t *s)
{
    rec_printf(r, "%.*s", (int)s->len, s->data);
}

static void on_head(void *data, zg_http_req_t *q)
{
    rec_t *r = data;

    r->heads++;
    r->req = q;
    rec_printf(r, "HEAD ");
    rec_str(r, &q->method);
    rec_printf(r, "(%d) t=", q->method_id);
    rec_str(r, &q->target);
    rec_printf(r, " p=");
    rec_str(r, &q->path);
    rec_printf(r, " a=");
    rec_str(r, &q->args);
    rec_printf(r, " rl=");
    rec_str(r, &q->request_line);
    rec_printf(r, " v=%d.%d host=", q->http_major, q->http_minor);
    rec_str(r, &q->host);
    rec_printf(r, " cl=%lld ch=%u ka=%u ex=%u hb=%u hl=%zu [",
               (long long)q->content_length, q->chunked, q->keepalive, q->expect_continue,
               q->has_body, q->head_len);
    for (size_t i = 0; i < q->nhdrs; i++) {
        rec_str(r, &q->names[i]);
        rec_printf(r, "=");
        rec_str(r, &q->values[i]);
        rec_printf(r, ";");
    }
    rec_printf(r, "]\n");
    r->stopped = 1;
    r->blen = 0;
    if (r->nested) {
        assert_int_equal(zg_http_in_resume(r->in), ZG_OK);
    }
}

static void on_body(void *data, const char *p, size_t n)
{
    rec_t *r = data;

    assert_true(r->blen + n <= sizeof(r->body));
    memcpy(r->body + r->blen, p, n);
    r->blen += n;
}

static void on_done(void *data)
{
    rec_t *r = data;

    rec_printf(r, "BODY=%.*s|DONE\n", (int)r->blen, r->body);
    r->stopped = 2;
    if (r->nested) {
        assert_int_equal(zg_http_in_next(r->in), ZG_OK);
    }
}

static const zg_http_in_handlers_t handlers = {on_head, on_body, on_done};

static zg_http_limits_t deflim = {.line_max = 4096, .head_max = 16384, .body_max = 100000};

/* resume/next as the connection code would, until the parser wants bytes */
static int settle(rec_t *r, int rc)
{
    while (rc == ZG_AGAIN) {
        if (r->stopped == 1) {
            r->stopped = 0;
            rc = zg_http_in_resume(r->in);
        } else if (r->stopped == 2) {
            r->stopped = 0;
            rc = zg_http_in_next(r->in);
        } else {
            fail_msg("ZG_AGAIN without a stop");
        }
    }
    return rc;
}

/* Feeds data in pieces of `step` bytes (0: whole), or split once at `split`.
 * Writes the transcript into out. */
static void drive(const char *data, size_t n, size_t step, size_t split,
                  const zg_http_limits_t *lim, int nested, char *out, size_t outlen)
{
    static rec_t r;
    size_t off = 0;
    int rc = ZG_OK;

    memset(&r, 0, sizeof(r));
    r.nested = nested;
    r.in = zg_http_in_create(lim ? lim : &deflim, &handlers, &r);
    assert_non_null(r.in);

    while (off < n) {
        size_t len, k;
        char *b = zg_http_in_buffer(r.in, &len);

        assert_non_null(b);
        assert_true(len > 0);
        k = n - off;
        if (step) {
            k = zg_min(k, step);
        } else if (split && off < split) {
            k = split - off;
        }
        k = zg_min(k, len);
        memcpy(b, data + off, k);
        off += k;
        rc = settle(&r, zg_http_in_feed(r.in, k));
        if (rc >= 400) {
            rec_printf(&r, "ERR %d\n", rc);
            assert_true(strlen(zg_http_in_error(r.in)) > 0);
            break;
        }
        assert_int_equal(rc, ZG_OK);
    }
    if (rc < 400) {
        rec_printf(&r, "EOF %d\n", zg_http_in_eof(r.in));
    }
    zg_http_in_destroy(r.in);
    snprintf(out, outlen, "%s", r.out);
}

static char *run(const char *data, size_t n, size_t step, const zg_http_limits_t *lim)
{
    static char out[16384];

    drive(data, n, step, 0, lim, 0, out, sizeof(out));
    return out;
}

/* the fast head path and llhttp alone report the same, whole and nested */
static void check_fast_same(const char *data, size_t n, const zg_http_limits_t *lim,
                            const char *a)
{
    static char b[16384];
    zg_http_limits_t ll = lim ? *lim : deflim;

    ll.no_fast = 1;
    drive(data, n, 0, 0, &ll, 0, b, sizeof(b));
    assert_string_equal(a, b);
    drive(data, n, 0, 0, &ll, 1, b, sizeof(b));
    assert_string_equal(a, b);
}

/* whole, nested handlers, byte by byte, every split point, and llhttp alone agree */
static void check_all_ways(const char *data, size_t n, const zg_http_limits_t *lim,
                           const char *expect)
{
    static char a[16384], b[16384];

    drive(data, n, 0, 0, lim, 0, a, sizeof(a));
    if (expect) {
        assert_string_equal(a, expect);
    }
    check_fast_same(data, n, lim, a);
    drive(data, n, 0, 0, lim, 1, b, sizeof(b));
    assert_string_equal(a, b);
    drive(data, n, 1, 0, lim, 0, b, sizeof(b));
    assert_string_equal(a, b);
    for (size_t i = 1; i < n; i++) {
        drive(data, n, 0, i, lim, i & 1, b, sizeof(b));
        assert_string_equal(a, b);
    }
}

#define S(lit) lit, sizeof(lit) - 1

static void test_simple_get(void **state)
{
    (void)state;
    check_all_ways(S("GET /a/b?x=1&y HTTP/1.1\r\nHost: Example.COM:8080\r\n"
                     "User-Agent: t  \r\nAccept:*/*\r\nX-Empty:\r\n\r\n"),
                   NULL,
                   "HEAD GET(1) t=/a/b?x=1&y p=/a/b a=x=1&y rl=GET /a/b?x=1&y HTTP/1.1 "
                   "v=1.1 host=example.com cl=-1 ch=0 ka=1 ex=0 hb=0 hl=90 "
                   "[Host=Example.COM:8080;User-Agent=t;Accept=*/*;X-Empty=;]\n"
                   "BODY=|DONE\nEOF 0\n");
}

static void test_pipelined(void **state)
{
    static const char in[] =
        "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
        "POST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\n\r\nhello"
        "GET /3 HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n";
    const char *out;

    (void)state;
    check_all_ways(in, sizeof(in) - 1, NULL, NULL);
    out = run(in, sizeof(in) - 1, 0, NULL);
    const char *h1 = strstr(out, "t=/1"), *h2 = strstr(out, "t=/2"),
               *h3 = strstr(out, "t=/3");
    assert_non_null(h1);
    assert_non_null(h2);
    assert_non_null(h3);
    assert_true(h1 < h2 && h2 < h3);
    assert_non_null(strstr(out, "BODY=hello|DONE"));
    assert_non_null(strstr(out, "host=c cl=-1 ch=0 ka=0"));
    assert_non_null(strstr(out, "EOF 0"));
}

static void test_pending_and_manual_next(void **state)
{
    static const char in[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHo";
    static rec_t r;
    size_t len;
    char *b;

    (void)state;
    memset(&r, 0, sizeof(r));
    r.in = zg_http_in_create(&deflim, &handlers, &r);
    b = zg_http_in_buffer(r.in, &len);
    assert_true(len >= 4096);
    memcpy(b, in, sizeof(in) - 1);
    assert_int_equal(zg_http_in_feed(r.in, sizeof(in) - 1), ZG_AGAIN);
    assert_int_equal(r.heads, 1);
    assert_int_equal(zg_http_in_pending(r.in), 0);
    assert_int_equal(zg_http_in_next(r.in), ZG_ERROR);   /* not done yet */
    assert_int_equal(zg_http_in_resume(r.in), ZG_AGAIN); /* on_done */
    assert_int_equal(r.stopped, 2);
    assert_int_equal(zg_http_in_pending(r.in), 1);
    assert_int_equal(zg_http_in_eof(r.in), 1);
    /* bytes read while stopped are only buffered */
    b = zg_http_in_buffer(r.in, &len);
    memcpy(b, "st: b\r\n", 7);
    assert_int_equal(zg_http_in_feed(r.in, 7), ZG_AGAIN);
    assert_int_equal(r.heads, 1);
    assert_int_equal(zg_http_in_next(r.in), ZG_OK);
    b = zg_http_in_buffer(r.in, &len);
    memcpy(b, "\r\n", 2);
    assert_int_equal(zg_http_in_feed(r.in, 2), ZG_AGAIN);
    assert_int_equal(r.heads, 2);
    assert_non_null(strstr(r.out, "t=/2"));
    zg_http_in_destroy(r.in);
}

static void test_body_content_length(void **state)
{
    (void)state;
    check_all_ways(
        S("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"), NULL,
        NULL);
    assert_non_null(
        strstr(run(S("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
                     "hello world"),
                   0, NULL),
               "cl=11 ch=0 ka=1 ex=0 hb=1 hl=49 [Host=a;Content-Length=11;]\n"
               "BODY=hello world|DONE\nEOF 0\n"));
    /* incomplete body: EOF mid-request */
    assert_non_null(
        strstr(run(S("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
                     "hel"),
                   0, NULL),
               "EOF 1"));
    assert_non_null(strstr(run(S("GET / HTTP/1.1\r\nHo"), 0, NULL), "EOF 1"));
}

static void test_body_chunked(void **state)
{
    static const char in[] =
        "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"
        "5;ext;q=\"x\"\r\nhello\r\n"
        "1\r\n \r\n"
        "a\r\n0123456789\r\n"
        "0\r\nX-Trailer: t\r\nY: u\r\n\r\n"
        "GET /n HTTP/1.1\r\nHost: a\r\n\r\n";
    const char *out;

    (void)state;
    check_all_ways(in, sizeof(in) - 1, NULL, NULL);
    out = run(in, sizeof(in) - 1, 0, NULL);
    assert_non_null(strstr(out, "cl=-1 ch=1 ka=1 ex=0 hb=1"));
    assert_non_null(strstr(out, "BODY=hello 0123456789|DONE\nHEAD GET(1) t=/n"));
}

static void test_expect_keepalive(void **state)
{
    (void)state;
    assert_non_null(strstr(run(S("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
                                 "Content-Length: 1\r\n\r\nx"),
                               0, NULL),
                           "ka=1 ex=1 hb=1"));
    /* ignored on HTTP/1.0 */
    assert_non_null(strstr(run(S("POST / HTTP/1.0\r\nExpect: 100-continue\r\n"
                                 "Content-Length: 1\r\n\r\nx"),
                               0, NULL),
                           "ka=0 ex=0 hb=1"));
    assert_non_null(
        strstr(run(S("GET / HTTP/1.0\r\n\r\n"), 0, NULL), "host= cl=-1 ch=0 ka=0"));
    assert_non_null(strstr(
        run(S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 0, NULL), "ka=1"));
    assert_non_null(
        strstr(run(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), 0, NULL),
               "ka=0"));
    assert_non_null(
        strstr(run(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, Close\r\n"
                     "Upgrade: websocket\r\n\r\n"),
                   0, NULL),
               "ka=0"));
    assert_non_null(
        strstr(run(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n"
                     "Upgrade: websocket\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"),
                   0, NULL),
               "t=/2"));
}

static void test_host_and_target(void **state)
{
    (void)state;
    assert_non_null(strstr(run(S("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), 0, NULL),
                           "host=[::1] "));
    assert_non_null(
        strstr(run(S("GET / HTTP/1.1\r\nHost: WWW.Example.com.\r\n\r\n"), 0, NULL),
               "host=www.example.com "));
    assert_non_null(
        strstr(run(S("GET http://Other.ORG:81/p?q HTTP/1.1\r\nHost: a\r\n\r\n"), 0, NULL),
               "t=/p?q p=/p a=q rl=GET http://Other.ORG:81/p?q HTTP/1.1 "
               "v=1.1 host=other.org "));
    assert_non_null(strstr(run(S("GET http://h HTTP/1.1\r\nHost: a\r\n\r\n"), 0, NULL),
                           "t=/ p=/ a= "));
    /* the target's authority is the host (RFC 9112 3.2.2), Host only a header */
    assert_non_null(strstr(
        run(S("GET http://Pub.Example:81/x HTTP/1.1\r\nHost: internal\r\n\r\n"), 0, NULL),
        "host=pub.example "));
    assert_non_null(strstr(run(S("GET http://h?q#f HTTP/1.1\r\nHost: a\r\n\r\n"), 0, NULL),
                           "t=?q#f p=/ a=q "));
    /* the path is normalised, the target kept as received */
    assert_non_null(strstr(run(S("GET //a/./b/../%63?x#f HTTP/1.1\r\nHost: a\r\n\r\n"), 0,
                               NULL),
                           "t=//a/./b/../%63?x#f p=/a/c a=x "));
    assert_non_null(strstr(run(S("GET /a/b?x=/../ HTTP/1.1\r\nHost: a\r\n\r\n"), 0, NULL),
                           "t=/a/b?x=/../ p=/a/b a=x=/../ "));
    /* HTTP/1.2 is served as 1.1, as nginx does */
    assert_non_null(strstr(run(S("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 0, NULL),
                           "v=1.1 host=a cl=-1 ch=0 ka=1"));
    assert_non_null(
        strstr(run(S("\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n"), 0, NULL), "t=/x"));
}

/* ---- bad requests ---- */

typedef struct {
    const char *name;
    const char *data;
    size_t len;
    int status;
    int after_head; /* the error comes in the body, after on_head */
} bad_t;

#define BAD(name, lit, st)                                                               \
    {                                                                                    \
        name, lit, sizeof(lit) - 1, st, 0                                                \
    }
#define BAD_BODY(name, lit, st)                                                          \
    {                                                                                    \
        name, lit, sizeof(lit) - 1, st, 1                                                \
    }
#define H11 "GET / HTTP/1.1\r\nHost: a\r\n"
#define P11 "POST / HTTP/1.1\r\nHost: a\r\n"

static const bad_t bad[] = {
    BAD("obs-fold SP", H11 "X: a\r\n b\r\n\r\n", 400),
    BAD("obs-fold HT", H11 "X: a\r\n\tb\r\n\r\n", 400),
    BAD("obs-fold after request line", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    BAD("CL+TE", P11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    BAD("TE+CL", P11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
    BAD("two CL equal", P11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
    BAD("two CL different", P11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        400),
    BAD("CL list", P11 "Content-Length: 5, 5\r\n\r\nhello", 400),
    BAD("CL non-numeric", P11 "Content-Length: 5x\r\n\r\nhello", 400),
    BAD("CL negative", P11 "Content-Length: -5\r\n\r\nhello", 400),
    BAD("CL empty", P11 "Content-Length: \r\n\r\n", 400),
    BAD("CL overflow", P11 "Content-Length: 99999999999999999999999\r\n\r\n", 400),
    BAD("CL over int64", P11 "Content-Length: 9223372036854775808\r\n\r\n", 400),
    BAD("TE gzip", P11 "Transfer-Encoding: gzip\r\n\r\n", 400),
    BAD("TE chunked, gzip", P11 "Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    BAD("TE gzip, chunked", P11 "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    BAD("TE gzip then chunked",
        P11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked"
            "\r\n\r\n0\r\n\r\n",
        501),
    BAD("TE chunked twice",
        P11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
            "\r\n\r\n",
        400),
    BAD("TE chunked, chunked", P11 "Transfer-Encoding: chunked, chunked\r\n\r\n", 400),
    BAD("TE empty", P11 "Transfer-Encoding: \r\n\r\n", 400),
    BAD("TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400),
    BAD("missing Host", "GET / HTTP/1.1\r\nX: a\r\n\r\n", 400),
    BAD("missing Host absolute", "GET http://a/ HTTP/1.1\r\n\r\n", 400),
    BAD("two Host", H11 "Host: a\r\n\r\n", 400),
    BAD("bad Host char", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    BAD("bad Host dots", "GET / HTTP/1.1\r\nHost: a..b\r\n\r\n", 400),
    BAD("bad Host port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400),
    BAD("bad Host ipv6", "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", 400),
    BAD("Host userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
    BAD("bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
    BAD("bare LF header", H11 "X: a\n\r\n", 400),
    BAD("bare LF end", H11 "\n", 400),
    BAD("bare CR", H11 "X: a\rb\r\n\r\n", 400),
    BAD("HTTP/0.9", "GET /\r\n\r\n", 400),
    BAD("NUL in value", H11 "X: a\0b\r\n\r\n", 400),
    BAD("DEL in value", H11 "X: a\x7f\r\n\r\n", 400),
    BAD("control char in name", H11 "X\x01Y: a\r\n\r\n", 400),
    BAD("space before colon", H11 "X : a\r\n\r\n", 400),
    BAD("control char in target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("NUL in target", "GET /a\0 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD_BODY("bad chunk size",
             P11 "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    BAD_BODY("chunk size overflow",
             P11 "Transfer-Encoding: chunked\r\n\r\n"
                 "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
             400),
    /* llhttp 8.1.0 refuses a second extension after "name=value": stricter is safe */
    BAD_BODY("two valued chunk extensions",
             P11 "Transfer-Encoding: chunked\r\n\r\n"
                 "1;a=1;b=2\r\nx\r\n0\r\n\r\n",
             400),
    BAD_BODY("negative chunk size",
             P11 "Transfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n", 400),
    BAD("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    BAD("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("path above the root", "GET /a/../.. HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("path %00", "GET /a%00 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("path bad %", "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("absolute path above the root", "GET http://a/%2e%2e/ HTTP/1.1\r\nHost: a\r\n\r\n",
        400),
    BAD("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    BAD("HTTP/3.0", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
    BAD("CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405),
    BAD("bad method", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("bad target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("bad scheme", "GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("absolute userinfo", "GET http://u@a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BAD("trailing space version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    BAD("body over max CL", P11 "Content-Length: 101\r\n\r\n", 413),
};

static const zg_http_limits_t badlim = {.line_max = 4096, .head_max = 8192, .body_max = 100};

static void test_bad_requests(void **state)
{
    static char a[16384], b[16384], want[32];

    (void)state;
    for (size_t i = 0; i < zg_nelems(bad); i++) {
        const bad_t *t = &bad[i];

        snprintf(want, sizeof(want), "ERR %d\n", t->status);
        drive(t->data, t->len, 0, 0, &badlim, 0, a, sizeof(a));
        if (strstr(a, want) == NULL || (strstr(a, "HEAD") != NULL) != t->after_head) {
            fail_msg("%s: want %d got:\n%s", t->name, t->status, a);
        }
        drive(t->data, t->len, 1, 0, &badlim, 0, b, sizeof(b));
        if (strcmp(a, b) != 0) {
            fail_msg("%s: byte by byte differs:\n%s\n--\n%s", t->name, a, b);
        }
    }
}

/* "GET /g\r\n" alone (HTTP/0.9) is answered at once, not after a timeout */
static void test_http09_prompt(void **state)
{
    static char out[4096];

    (void)state;
    drive(S("GET /g\r\n"), 0, 0, &badlim, 0, out, sizeof(out));
    assert_non_null(strstr(out, "ERR 400"));
    drive(S("GET /g\r\n"), 1, 0, &badlim, 0, out, sizeof(out));
    assert_non_null(strstr(out, "ERR 400"));
}

/* ignore_invalid_headers / underscores_in_headers, as nginx */
static void test_invalid_header_names(void **state)
{
    const char *req = "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n"
                      "X.Dot: 1\r\nX-Ok: 2\r\n\r\n";
    zg_http_limits_t lim = deflim;

    (void)state;
    /* default: both dropped before they mean anything: no body */
    assert_non_null(strstr(run(req, strlen(req), 0, &lim), "hb=0"));
    assert_non_null(strstr(run(req, strlen(req), 0, &lim), "[Host=a;X-Ok=2;]"));
    lim.underscores = 1;
    assert_non_null(strstr(run(req, strlen(req), 0, &lim),
                           "hb=0 hl=75 [Host=a;Transfer_Encoding=chunked;X-Ok=2;]"));
    lim.underscores = 0;
    lim.keep_invalid = 1;
    assert_non_null(strstr(run(req, strlen(req), 0, &lim),
                           "[Host=a;Transfer_Encoding=chunked;X.Dot=1;X-Ok=2;]"));
    /* a dropped Host is no Host */
    assert_string_equal(run(S("GET / HTTP/1.1\r\nHost_: a\r\n\r\n"), 0, NULL), "ERR 400\n");
}

/* client_max_headers */
static void test_max_headers(void **state)
{
    static char big[8192];
    zg_http_limits_t lim = {.line_max = 1024, .head_max = 8192, .max_headers = 5};
    size_t n;

    (void)state;
    n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < 5; i++) {
        n += (size_t)snprintf(big + n, sizeof(big) - n, "X%d: v\r\n", i);
    }
    memcpy(big + n, "\r\n", 2);
    assert_non_null(strstr(run(big, n + 2, 0, &lim), "HEAD"));
    n += (size_t)snprintf(big + n, sizeof(big) - n, "X5: v\r\n\r\n");
    assert_string_equal(run(big, n, 0, &lim), "ERR 431\n");
    /* more than the first allocation holds */
    lim.max_headers = 300;
    n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < 300; i++) {
        n += (size_t)snprintf(big + n, sizeof(big) - n, "X%d: v\r\n", i);
    }
    n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
    assert_non_null(strstr(run(big, n, 0, &lim), "X299=v;]"));
    assert_non_null(strstr(run(big, n, 7, &lim), "X299=v;]"));
}

static void test_error_is_sticky(void **state)
{
    static rec_t r;
    size_t len;
    char *b;

    (void)state;
    memset(&r, 0, sizeof(r));
    r.in = zg_http_in_create(&deflim, &handlers, &r);
    b = zg_http_in_buffer(r.in, &len);
    memcpy(b, "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 28);
    assert_int_equal(zg_http_in_feed(r.in, 28), 400);
    assert_string_equal(zg_http_in_error(r.in), "obs-fold in head");
    b = zg_http_in_buffer(r.in, &len);
    assert_non_null(b);
    assert_true(len > 0);
    memcpy(b, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27);
    assert_int_equal(zg_http_in_feed(r.in, 27), 400);
    assert_int_equal(r.heads, 0);
    zg_http_in_destroy(r.in);
}

static void test_line_and_head_limits(void **state)
{
    zg_http_limits_t lim = {.line_max = 64, .head_max = 1024, .body_max = 0};
    static char big[8192];
    size_t n;

    (void)state;
    /* request line of exactly line_max passes, one more byte is 414 */
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', 64 - 5 - 9);
    n = 64 - 9;
    n += (size_t)snprintf(big + n, sizeof(big) - n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(strstr(big, "\r\n") - big, 64);
    assert_non_null(strstr(run(big, n, 0, &lim), "HEAD"));
    assert_non_null(strstr(run(big, n, 1, &lim), "HEAD"));
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', 65 - 5 - 9);
    n = 65 - 9;
    n += (size_t)snprintf(big + n, sizeof(big) - n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_string_equal(run(big, n, 0, &lim), "ERR 414\n");
    assert_string_equal(run(big, n, 1, &lim), "ERR 414\n");
    /* an endless request line is cut early */
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    assert_string_equal(run(big, 200, 0, &lim), "ERR 414\n");

    /* too many headers */
    n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < ZG_HTTP_MAX_HEADERS; i++) {
        n += (size_t)snprintf(big + n, sizeof(big) - n, "X%d: v\r\n", i);
    }
    n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
    zg_http_limits_t wide = {.line_max = 1024, .head_max = 8192, .body_max = 0};
    assert_string_equal(run(big, n, 0, &wide), "ERR 431\n");
    /* exactly ZG_HTTP_MAX_HEADERS is fine */
    n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < ZG_HTTP_MAX_HEADERS; i++) {
        n += (size_t)snprintf(big + n, sizeof(big) - n, "X%d: v\r\n", i);
    }
    n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
    assert_non_null(strstr(run(big, n, 0, &wide), "HEAD"));

    /* a complete head one byte over head_max */
    n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    while (n < 1024 - 4 + 1) {
        big[n++] = 'v';
    }
    memcpy(big + n, "\r\n\r\n", 4);
    n += 4;
    assert_int_equal(n, 1025);
    assert_string_equal(run(big, n, 0, &lim), "ERR 431\n");
    assert_string_equal(run(big, n, 7, &lim), "ERR 431\n");
    assert_non_null(strstr(run(big + 1, n - 1, 0, &lim), "ERR 400")); /* "ET / ..." */
}

static void test_endless_header(void **state)
{
    zg_http_limits_t lim = {.line_max = 1024, .head_max = 8192, .body_max = 0};
    static rec_t r;
    static char piece[1024];
    size_t total, len;
    char *b;
    int rc;

    (void)state;
    memset(&r, 0, sizeof(r));
    memset(piece, 'x', sizeof(piece));
    r.in = zg_http_in_create(&lim, &handlers, &r);
    b = zg_http_in_buffer(r.in, &len);
    total = (size_t)snprintf(b, len, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    assert_int_equal(zg_http_in_feed(r.in, total), ZG_OK);
    for (;;) {
        b = zg_http_in_buffer(r.in, &len);
        assert_true(len >= sizeof(piece));
        memcpy(b, piece, sizeof(piece));
        total += sizeof(piece);
        rc = zg_http_in_feed(r.in, sizeof(piece));
        if (total <= 8192) {
            assert_int_equal(rc, ZG_OK);
        } else {
            assert_int_equal(rc, 431);
            break;
        }
    }
    assert_true(total < 8192 + sizeof(piece) + 1);
    zg_http_in_destroy(r.in);
}

static void test_body_max_chunked(void **state)
{
    static const char in[] =
        P11 "Transfer-Encoding: chunked\r\n\r\n"
            "32\r\n01234567890123456789012345678901234567890123456789\r\n"
            "32\r\n01234567890123456789012345678901234567890123456789\r\n"
            "1\r\nx\r\n0\r\n\r\n";
    static char a[16384], b[16384];
    const char *out;

    (void)state;
    drive(in, sizeof(in) - 1, 0, 0, &badlim, 0, a, sizeof(a));
    assert_non_null(strstr(a, "HEAD POST"));
    assert_non_null(strstr(a, "ERR 413"));
    drive(in, sizeof(in) - 1, 1, 0, &badlim, 0, b, sizeof(b));
    assert_string_equal(a, b);
    /* exactly body_max is fine */
    out = run(S(P11 "Transfer-Encoding: chunked\r\n\r\n"
                    "32\r\n01234567890123456789012345678901234567890123456789\r\n"
                    "32\r\n01234567890123456789012345678901234567890123456789\r\n"
                    "0\r\n\r\n"),
              0, &badlim);
    assert_non_null(strstr(out, "DONE"));
    /* and Content-Length of exactly body_max too */
    static char cl[256];
    int n = snprintf(cl, sizeof(cl), P11 "Content-Length: 100\r\n\r\n%0100d", 0);
    assert_non_null(strstr(run(cl, (size_t)n, 0, &badlim), "DONE"));
}

static void test_big_head_then_body(void **state)
{
    /* a head that fills the initial buffer: the body still gets room after it and
     * the head's strings stay intact */
    zg_http_limits_t lim = {.line_max = 1024, .head_max = 65536, .body_max = 0};
    static char big[40000], body[20000];
    static rec_t r;
    size_t n, len, off = 0;
    char *b;
    int rc = ZG_OK;

    (void)state;
    n = (size_t)snprintf(big, sizeof(big),
                         "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n",
                         sizeof(body));
    while (n < 30000) {
        n += (size_t)snprintf(big + n, sizeof(big) - n, "X-Pad: %0400d\r\n", 7);
    }
    n += (size_t)snprintf(big + n, sizeof(big) - n, "Last: yes\r\n\r\n");
    for (size_t i = 0; i < sizeof(body); i++) {
        body[i] = (char)('a' + i % 26);
    }
    memset(&r, 0, sizeof(r));
    r.in = zg_http_in_create(&lim, &handlers, &r);
    static char all[60000];
    memcpy(all, big, n);
    memcpy(all + n, body, sizeof(body));
    n += sizeof(body);
    static zg_http_req_t *req;
    while (off < n) {
        b = zg_http_in_buffer(r.in, &len);
        assert_true(len >= 1024);
        size_t k = zg_min(len, n - off);
        memcpy(b, all + off, k);
        off += k;
        rc = zg_http_in_feed(r.in, k);
        while (rc == ZG_AGAIN && r.stopped == 1) {
            r.stopped = 0;
            rc = zg_http_in_resume(r.in);
        }
        if (rc != ZG_OK && rc != ZG_AGAIN) {
            fail_msg("rc %d: %s", rc, zg_http_in_error(r.in));
        }
    }
    assert_int_equal(r.stopped, 2);
    assert_int_equal(r.blen, sizeof(body));
    assert_memory_equal(r.body, body, sizeof(body));
    /* the head's strings survived the body reads */
    req = r.req;
    assert_int_equal(req->values[req->nhdrs - 1].len, 3);
    assert_memory_equal(req->values[req->nhdrs - 1].data, "yes", 3);
    assert_memory_equal(req->names[0].data, "Host", 4);
    assert_memory_equal(req->request_line.data, "POST / HTTP/1.1", 15);
    assert_int_equal(req->content_length, sizeof(body));
    zg_http_in_destroy(r.in);
}

static void destroy_on_done(void *data)
{
    rec_t *r = data;

    r->stopped = 2;
    zg_http_in_destroy(r->in);
}

/* The fast head path against llhttp alone, byte by byte: every byte value in the
 * method, the target, the version, a header name, a header value and the line ends,
 * and the headers llhttp gives a meaning to, whole and pipelined. */
static void test_fast_head_same_as_llhttp(void **state)
{
    static const char *const tmpl[] = {
        "GET /a%cb?x HTTP/1.1\r\nHost: h\r\n\r\n",
        "G%cT / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.%c\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-%cA: v\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: v%cw \r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A:%cv\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: v%c\r\n\r\n",
        "GET / HTTP/1.1%c\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n%c\n",
        "GET /%c HTTP/1.0\r\n\r\n",
        "%cGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    static const char *const heads[] = {
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive \r\n\r\n",
        "GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nProxy-Connection: close\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
        "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "DELETE /x HTTP/1.1\r\nHost: h\r\n\r\nOPTIONS /y HTTP/1.1\r\nHost: h\r\n\r\n",
        "PATCH / HTTP/1.1\r\nHost: h\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
        "CONNECT h:1 HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",
        "GET / HTTP/1.1\r\nX:\r\nY: \t \r\nHost:h\r\n\r\n",
        "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET //a/../b HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    char buf[256], a[16384];

    (void)state;
    for (size_t t = 0; t < sizeof(tmpl) / sizeof(tmpl[0]); t++) {
        for (int c = 0; c < 256; c++) {
            int n = snprintf(buf, sizeof(buf), tmpl[t], c ? c : 'z');

            if (c == 0) {
                /* %c of NUL: put it in by hand */
                char *z = strchr(buf, 'z');

                if (z == NULL) {
                    continue;
                }
                *z = '\0';
            }
            drive(buf, (size_t)n, 0, 0, NULL, 0, a, sizeof(a));
            check_fast_same(buf, (size_t)n, NULL, a);
        }
    }
    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        check_all_ways(heads[h], strlen(heads[h]), NULL, NULL);
    }
    /* long runs are scanned several bytes at a time: every byte value at every offset
     * of a word, in a target, a value and a name */
    for (int k = 0; k < 17; k++) {
        for (int c = 0; c < 256; c++) {
            char run[40];
            int n;

            memset(run, 'a', (size_t)k);
            run[k] = (char)c;
            memset(run + k + 1, 'b', 20);
            run[k + 21] = '\0';
            static const char *const pre[] = {
                "GET /", "GET /x HTTP/1.1\r\nHost: h\r\nX-A: ",
                "GET /x HTTP/1.1\r\nHost: h\r\nX-"};
            static const char *const post[] = {
                " HTTP/1.1\r\nHost: h\r\n\r\n", "\r\n\r\n", ": v\r\n\r\n"};

            for (int where = 0; where < 3; where++) {
                n = snprintf(buf, sizeof(buf), "%s", pre[where]);
                memcpy(buf + n, run, (size_t)k + 21);
                n += k + 21;
                n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s", post[where]);
                drive(buf, (size_t)n, 0, 0, NULL, 0, a, sizeof(a));
                check_fast_same(buf, (size_t)n, NULL, a);
            }
        }
    }
}

static void test_destroy_from_handler(void **state)
{
    static const zg_http_in_handlers_t dh = {on_head, on_body, destroy_on_done};
    static rec_t r;
    size_t len;
    char *b;

    (void)state;
    memset(&r, 0, sizeof(r));
    r.nested = 1; /* on_head resumes, on_done destroys */
    r.in = zg_http_in_create(&deflim, &dh, &r);
    b = zg_http_in_buffer(r.in, &len);
    memcpy(b, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n", 43);
    assert_int_equal(zg_http_in_feed(r.in, 43), ZG_ERROR); /* freed: ASan checks */
    assert_int_equal(r.stopped, 2);
}

/* ---- responses ---- */

typedef struct {
    char out[4096];
    size_t olen;
    char body[4096];
    size_t blen;
    int heads, dones;
} rrec_t;

static void r_head(void *data, zg_http_resp_head_t *h)
{
    rrec_t *r = data;

    r->heads++;
    r->olen += (size_t)snprintf(
        r->out + r->olen, sizeof(r->out) - r->olen,
        "H %d %d.%d %.*s cl=%lld ch=%u ka=%u nb=%u uc=%u n=%zu %.*s=%.*s\n", h->status,
        h->http_major, h->http_minor, (int)h->reason.len, h->reason.data,
        (long long)h->content_length, h->chunked, h->keepalive, h->no_body,
        h->until_close, h->nhdrs, h->nhdrs ? (int)h->names[0].len : 0,
        h->nhdrs ? h->names[0].data : "", h->nhdrs ? (int)h->values[0].len : 0,
        h->nhdrs ? h->values[0].data : "");
}

static void r_body(void *data, const char *p, size_t n)
{
    rrec_t *r = data;

    assert_true(r->blen + n <= sizeof(r->body));
    memcpy(r->body + r->blen, p, n);
    r->blen += n;
}

static void r_done(void *data)
{
    rrec_t *r = data;

    r->dones++;
}

static const zg_http_resp_handlers_t rhandlers = {r_head, r_body, r_done};

/* feeds in `step` pieces (0 whole); returns the last result; eof: call resp_eof */
static int rdrive(rrec_t *r, const char *data, size_t n, size_t step, int head_req,
                  int eof)
{
    zg_http_resp_t *p = zg_http_resp_create(8192, &rhandlers, r);
    size_t off = 0, len;
    int rc = ZG_OK;

    memset(r, 0, sizeof(*r));
    zg_http_resp_reset(p, head_req);
    while (off < n) {
        char *b = zg_http_resp_buffer(p, &len);
        size_t k = zg_min(n - off, step ? step : n);

        k = zg_min(k, len);
        memcpy(b, data + off, k);
        off += k;
        rc = zg_http_resp_feed(p, k);
        if (rc != ZG_OK) {
            break;
        }
    }
    if (eof && rc == ZG_OK) {
        rc = zg_http_resp_eof(p);
    }
    r->olen += (size_t)snprintf(r->out + r->olen, sizeof(r->out) - r->olen, "B=%.*s|%d\n",
                                (int)r->blen, r->body, r->dones);
    zg_http_resp_destroy(p);
    return rc;
}

static void rcheck(const char *data, size_t n, int head_req, int eof, int want_rc,
                   const char *want)
{
    static rrec_t a, b;

    assert_int_equal(rdrive(&a, data, n, 0, head_req, eof), want_rc);
    assert_string_equal(a.out, want);
    assert_int_equal(rdrive(&b, data, n, 1, head_req, eof), want_rc);
    assert_string_equal(a.out, b.out);
}

static void test_responses(void **state)
{
    (void)state;
    rcheck(S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello"), 0, 0,
           ZG_DONE,
           "H 200 1.1 OK cl=5 ch=0 ka=1 nb=0 uc=0 n=2 Content-Length=5\nB=hello|1\n");
    rcheck(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: "
             "chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n"
             "0\r\nT: 1\r\n\r\n"),
           0, 0, ZG_DONE,
           "H 200 1.1 OK cl=-1 ch=1 ka=1 nb=0 uc=0 n=1 Transfer-Encoding=chunked\n"
           "B=abcde|1\n");
    rcheck(S("HTTP/1.1 200 OK\r\nX: y\r\n\r\nuntil close"), 0, 1, ZG_DONE,
           "H 200 1.1 OK cl=-1 ch=0 ka=0 nb=0 uc=1 n=1 X=y\nB=until close|1\n");
    rcheck(S("HTTP/1.1 200 OK\r\nX: y\r\n\r\npartial"), 0, 0, ZG_OK,
           "H 200 1.1 OK cl=-1 ch=0 ka=0 nb=0 uc=1 n=1 X=y\nB=partial|0\n");
    rcheck(S("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"), 1, 0, ZG_DONE,
           "H 200 1.1 OK cl=50 ch=0 ka=1 nb=1 uc=0 n=1 Content-Length=50\nB=|1\n");
    rcheck(S("HTTP/1.1 204 No Content\r\nX: y\r\n\r\n"), 0, 0, ZG_DONE,
           "H 204 1.1 No Content cl=-1 ch=0 ka=1 nb=1 uc=0 n=1 X=y\nB=|1\n");
    rcheck(
        S("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"), 0, 0, ZG_DONE,
        "H 304 1.1 Not Modified cl=10 ch=0 ka=1 nb=1 uc=0 n=1 Content-Length=10\nB=|1\n");
    rcheck(S("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
             "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"),
           0, 0, ZG_DONE,
           "H 201 1.1 Created cl=2 ch=0 ka=1 nb=0 uc=0 n=1 Content-Length=2\nB=ok|1\n");
    rcheck(S("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"), 0, 0, ZG_DONE,
           "H 200 1.0 OK cl=2 ch=0 ka=0 nb=0 uc=0 n=1 Content-Length=2\nB=ok|1\n");
    rcheck(S("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"),
           0, 0, ZG_DONE,
           "H 200 1.0 OK cl=2 ch=0 ka=1 nb=0 uc=0 n=2 Connection=keep-alive\nB=ok|1\n");
    rcheck(S("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"), 0, 0,
           ZG_DONE,
           "H 200 1.1 OK cl=2 ch=0 ka=0 nb=0 uc=0 n=2 Connection=close\nB=ok|1\n");
    /* malformed */
    rcheck(S("HTTP/1.1 2x0 OK\r\n\r\n"), 0, 0, ZG_ERROR, "B=|0\n");
    rcheck(S("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"), 0, 0,
           ZG_ERROR, "B=|0\n");
    rcheck(S("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), 0, 0, ZG_ERROR, "B=|0\n");
    rcheck(S("HTTP/1.1 101 Switching Protocols\r\n\r\n"), 0, 0, ZG_ERROR, "B=|0\n");
    rcheck(
        S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), 0, 0, ZG_ERROR,
        "H 200 1.1 OK cl=-1 ch=1 ka=1 nb=0 uc=0 n=1 Transfer-Encoding=chunked\nB=|0\n");
    /* chunked cut by EOF */
    rcheck(
        S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab"), 0, 1, ZG_ERROR,
        "H 200 1.1 OK cl=-1 ch=1 ka=1 nb=0 uc=0 n=1 Transfer-Encoding=chunked\nB=ab|0\n");
}

static void test_response_extra_and_limits(void **state)
{
    static rrec_t r;
    static char big[20000];
    zg_http_resp_t *p;
    size_t n, len;
    char *b;

    (void)state;
    /* bytes after a complete response: ZG_DONE, but not reusable */
    assert_int_equal(
        rdrive(&r, S("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1"), 0, 0, 0),
        ZG_DONE);
    p = zg_http_resp_create(8192, &rhandlers, &r);
    memset(&r, 0, sizeof(r));
    b = zg_http_resp_buffer(p, &len);
    n = (size_t)snprintf(b, len, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokX");
    assert_int_equal(zg_http_resp_feed(p, n), ZG_DONE);
    assert_non_null(strstr(r.out, "ka=1")); /* as seen at head time */
    assert_int_equal(zg_http_resp_reusable(p), 0);
    /* a fresh response on the same parser after reset */
    zg_http_resp_reset(p, 0);
    b = zg_http_resp_buffer(p, &len);
    n = (size_t)snprintf(b, len, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(zg_http_resp_feed(p, n), ZG_DONE);
    assert_int_equal(zg_http_resp_reusable(p), 1);
    assert_non_null(strstr(r.out, "H 404"));
    /* feeding after DONE without reset is an error */
    b = zg_http_resp_buffer(p, &len);
    assert_int_equal(zg_http_resp_feed(p, 1), ZG_ERROR);
    assert_int_equal(zg_http_resp_reusable(p), 0);
    zg_http_resp_destroy(p);

    /* head over head_max */
    n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nX: ");
    memset(big + n, 'a', 9000);
    n += 9000;
    n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n\r\n");
    assert_int_equal(rdrive(&r, big, n, 0, 0, 0), ZG_ERROR);
    assert_int_equal(r.heads, 0);
    assert_int_equal(rdrive(&r, big, 9000, 1000, 0, 0), ZG_ERROR);
}

static void test_response_reusable(void **state)
{
    static rrec_t r;
    zg_http_resp_t *p;
    size_t len, n;
    char *b;

    (void)state;
    memset(&r, 0, sizeof(r));
    p = zg_http_resp_create(8192, &rhandlers, &r);
    assert_int_equal(zg_http_resp_reusable(p), 0);
    b = zg_http_resp_buffer(p, &len);
    n = (size_t)snprintf(b, len, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no");
    assert_int_equal(zg_http_resp_feed(p, n), ZG_OK);
    assert_int_equal(zg_http_resp_reusable(p), 0);
    b = zg_http_resp_buffer(p, &len);
    assert_true(len >= 4096);
    b[0] = 'k';
    assert_int_equal(zg_http_resp_feed(p, 1), ZG_DONE);
    assert_int_equal(zg_http_resp_reusable(p), 1);
    /* until_close and Connection: close are not reusable */
    zg_http_resp_reset(p, 0);
    b = zg_http_resp_buffer(p, &len);
    n = (size_t)snprintf(b, len, "HTTP/1.1 200 OK\r\n\r\nzz");
    assert_int_equal(zg_http_resp_feed(p, n), ZG_OK);
    assert_int_equal(zg_http_resp_eof(p), ZG_DONE);
    assert_int_equal(zg_http_resp_reusable(p), 0);
    zg_http_resp_reset(p, 0);
    b = zg_http_resp_buffer(p, &len);
    n = (size_t)snprintf(b, len,
                         "HTTP/1.1 200 OK\r\nConnection: close\r\n"
                         "Content-Length: 0\r\n\r\n");
    assert_int_equal(zg_http_resp_feed(p, n), ZG_DONE);
    assert_int_equal(zg_http_resp_reusable(p), 0);
    assert_int_equal(r.dones, 3);
    zg_http_resp_destroy(p);
}

/* ---- writers ---- */

static void strip_date(char *s)
{
    char *d = strstr(s, "Date: ");

    assert_non_null(d);
    char *e = strstr(d, "\r\n");
    assert_non_null(e);
    memmove(d, e + 2, strlen(e + 2) + 1);
}

static void test_write_503(void **state)
{
    static const char page[] =
        "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
        "<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
        "<hr><center>zonegate</center>\r\n</body>\r\n</html>\r\n";
    static char buf[2048], want[2048];
    size_t n;

    (void)state;
    n = zg_http_write_response(buf, sizeof(buf), 503, 1, NULL, NULL, NULL, 0, 0);
    assert_int_equal(n, strlen(buf));
    strip_date(buf);
    snprintf(
        want, sizeof(want),
        "HTTP/1.1 503 Service Temporarily Unavailable\r\nServer: zonegate\r\n"
        "Content-Type: text/html\r\nContent-Length: %zu\r\nConnection: keep-alive\r\n"
        "\r\n%s",
        sizeof(page) - 1, page);
    assert_string_equal(buf, want);

    /* a rejection's whole answer is kept for the second: the same bytes again, and
     * the close variant is kept apart from the keep-alive one */
    for (int i = 0; i < 2; i++) {
        static char again[2048];
        n = zg_http_write_response(again, sizeof(again), 503, 1, NULL, NULL, NULL, 0, 0);
        assert_int_equal(n, strlen(again));
        strip_date(again);
        assert_string_equal(again, want);
        zg_http_write_response(again, sizeof(again), 503, 0, NULL, NULL, NULL, 0, 0);
        assert_non_null(strstr(again, "\r\nConnection: close\r\n\r\n<html>"));
        assert_null(strstr(again, "keep-alive"));
    }

    /* server_tokens on: the version in the Server header and the page's signature, a
     * cached answer of its own */
    for (int i = 0; i < 2; i++) {
        n = zg_http_write_response(buf, sizeof(buf), 503, 1 | ZG_HTTP_TOKENS, NULL, NULL,
                                   NULL, 0, 0);
        assert_int_equal(n, strlen(buf));
        assert_non_null(strstr(buf, "\r\nServer: zonegate/" ZG_VERSION "\r\n"));
        assert_non_null(strstr(buf, "<hr><center>zonegate/" ZG_VERSION "</center>"));
        assert_non_null(strstr(buf, "Connection: keep-alive"));
        assert_int_equal(zg_http_response_body_len(503, NULL, 0, 0, 1),
                         strlen(strstr(buf, "\r\n\r\n") + 4));
        assert_int_equal(zg_http_response_body_len(503, NULL, 0, 0, 0), sizeof(page) - 1);
    }

    /* HEAD: same head, no body */
    n = zg_http_write_response(buf, sizeof(buf), 503, 0, "Retry-After: 1\r\n", NULL, NULL,
                               0, 1);
    assert_int_equal(n, strlen(buf));
    strip_date(buf);
    snprintf(want, sizeof(want),
             "HTTP/1.1 503 Service Temporarily Unavailable\r\nServer: zonegate\r\n"
             "Content-Type: text/html\r\nContent-Length: %zu\r\nConnection: close\r\n"
             "Retry-After: 1\r\n\r\n",
             sizeof(page) - 1);
    assert_string_equal(buf, want);

    /* given body and type; snprintf semantics when short */
    n = zg_http_write_response(buf, sizeof(buf), 200, 1, NULL, "text/plain", "ok\n", 3,
                               0);
    strip_date(buf);
    assert_string_equal(
        buf, "HTTP/1.1 200 OK\r\nServer: zonegate\r\nContent-Type: text/plain\r\n"
             "Content-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n");
    size_t full =
        zg_http_write_response(buf, sizeof(buf), 429, 1, NULL, NULL, NULL, 0, 0);
    n = zg_http_write_response(buf, 10, 429, 1, NULL, NULL, NULL, 0, 0);
    assert_int_equal(n, full);
    assert_int_equal(strlen(buf), 9);
    assert_memory_equal(buf, "HTTP/1.1 ", 9);

    /* 204: no body, no Content-Length */
    zg_http_write_response(buf, sizeof(buf), 204, 1, NULL, NULL, NULL, 0, 0);
    strip_date(buf);
    assert_string_equal(buf, "HTTP/1.1 204 No Content\r\nServer: zonegate\r\n"
                             "Connection: keep-alive\r\n\r\n");
}

static void test_reasons_date_names(void **state)
{
    static const int codes[] = {100, 101, 200, 201, 202, 203, 204, 205, 206, 301, 302,
                                303, 304, 307, 308, 400, 401, 402, 403, 404, 405, 406,
                                407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417,
                                429, 431, 500, 501, 502, 503, 504, 505};
    const char *d, *d2;

    (void)state;
    for (size_t i = 0; i < zg_nelems(codes); i++) {
        assert_true(strlen(zg_http_reason(codes[i])) > 1);
    }
    assert_string_equal(zg_http_reason(502), "Bad Gateway");
    assert_string_equal(zg_http_reason(504), "Gateway Time-out");
    assert_string_equal(zg_http_reason(404), "Not Found");
    assert_string_equal(zg_http_reason(403), "Forbidden");
    assert_string_equal(zg_http_reason(429), "Too Many Requests");
    assert_string_equal(zg_http_reason(413), "Request Entity Too Large");
    assert_string_equal(zg_http_reason(414), "Request-URI Too Large");
    assert_string_equal(zg_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(zg_http_reason(408), "Request Time-out");
    assert_string_equal(zg_http_reason(405), "Not Allowed");

    d = zg_http_date();
    assert_int_equal(strlen(d), 29);
    assert_memory_equal(d + 25, " GMT", 4);
    d2 = zg_http_date();
    assert_ptr_equal(d, d2);

    zg_str_t n1 = zg_string("Transfer-Encoding"), n2 = zg_string("x-te"),
             n3 = zg_string("TE"), n4 = zg_string("keep-alive"),
             n5 = zg_string("Proxy-Connection"), n6 = zg_string("Upgrade"),
             n7 = zg_string("Trailer"), n8 = zg_string("CONNECTION"),
             n9 = zg_string("Proxy-Authenticate"), n10 = zg_string("Content-Length");
    assert_true(zg_http_hop_by_hop(&n1));
    assert_false(zg_http_hop_by_hop(&n2));
    assert_true(zg_http_hop_by_hop(&n3));
    assert_true(zg_http_hop_by_hop(&n4));
    assert_true(zg_http_hop_by_hop(&n5));
    assert_true(zg_http_hop_by_hop(&n6));
    assert_true(zg_http_hop_by_hop(&n7));
    assert_true(zg_http_hop_by_hop(&n8));
    assert_false(zg_http_hop_by_hop(&n9));
    assert_false(zg_http_hop_by_hop(&n10));
    assert_true(zg_http_name_eq(&n10, "content-length", 14));
    assert_false(zg_http_name_eq(&n10, "content-lengt", 13));
    assert_false(zg_http_name_eq(&n10, "content-lengtx", 14));
}

/* zg_http_time formats by hand: the same text as gmtime_r + strftime, over leap
 * years, century rules, before 1970, and a pseudo-random spread of times */
static void test_http_time_as_strftime(void **state)
{
    static const time_t fixed[] = { 0, -1, 86399, 86400, 951782400 /* 2000-02-29 */,
                                    951868800, 4107542400 /* 2100-03-01 */, 1700000000,
                                    68256000000 /* year 4132 */, -2208988800 /* 1900 */,
                                    253402300799 /* 9999-12-31 23:59:59 */ };
    char got[32], want[64];
    uint64_t x = 88172645463325252ULL;

    (void)state;
    for (int i = 0; i < 100000 + (int)(sizeof(fixed) / sizeof(fixed[0])); i++) {
        time_t t;
        if (i < (int)(sizeof(fixed) / sizeof(fixed[0]))) {
            t = fixed[i];
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t = (time_t)(x % 253402300800ULL) - (time_t)(i % 2 ? 2208988800LL : 0);
        }
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        assert_int_equal(zg_http_time(got, t), 29);
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_time_as_strftime),
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_pending_and_manual_next),
        cmocka_unit_test(test_body_content_length),
        cmocka_unit_test(test_body_chunked),
        cmocka_unit_test(test_expect_keepalive),
        cmocka_unit_test(test_host_and_target),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_http09_prompt),
        cmocka_unit_test(test_invalid_header_names),
        cmocka_unit_test(test_max_headers),
        cmocka_unit_test(test_line_and_head_limits),
        cmocka_unit_test(test_endless_header),
        cmocka_unit_test(test_body_max_chunked),
        cmocka_unit_test(test_big_head_then_body),
        cmocka_unit_test(test_destroy_from_handler),
        cmocka_unit_test(test_fast_head_same_as_llhttp),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_response_extra_and_limits),
        cmocka_unit_test(test_response_reusable),
        cmocka_unit_test(test_write_503),
        cmocka_unit_test(test_reasons_date_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
