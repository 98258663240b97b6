/* zg_http.h — HTTP/1.x parsing (llhttp) plus zonegate's own strictness checks, and
 * small response writers.  A zg_http_in_t turns the bytes of one client connection
 * into requests: heads (kept in memory while the request lives), body pieces
 * (decoded: chunked framing removed), and ends of messages.  zg_http_resp_t does the
 * same for an upstream's responses. */
#ifndef ZG_HTTP_H
#define ZG_HTTP_H

#include <time.h>

#include "zg_core.h"

/* request headers kept by default (client_max_headers); the most an upstream's
 * response head may have */
#define ZG_HTTP_MAX_HEADERS 128
#define ZG_HTTP_LINE_MAX 8192       /* default request line limit (one 8k buffer, as nginx) */
#define ZG_HTTP_HEAD_MAX 32768      /* default head limit (4 x 8k) */

typedef struct {
    zg_str_t method;            /* "GET" */
    int method_id;              /* llhttp_method_t */
    zg_str_t target;            /* request-target as received: "/a/b?x=1#f" ($request_uri);
                                   for an absolute-form target ("http://h:81/p?q") its
                                   origin-form part "/p?q" ("/" when it has no path) */
    zg_str_t path;              /* the normalised path ($uri): %XX decoded, "//"
                                   merged, "." and ".." resolved, "#..." dropped, as
                                   nginx's ngx_http_parse_complex_uri; may point into
                                   a private copy */
    zg_str_t args;              /* "x=1" as received (empty when no '?'), up to '#' */
    zg_str_t authority;         /* "Public.Example:81" of an absolute-form target: the
                                   Host to forward; empty for other targets */
    zg_str_t request_line;      /* without CRLF */
    int http_major, http_minor; /* HTTP/1.2 .. 1.9 are reported as 1.1 */
    zg_str_t *names;            /* the headers kept (see underscores_in_headers, */
    zg_str_t *values;           /* ignore_invalid_headers); values OWS trimmed */
    size_t nhdrs;
    zg_str_t host;              /* Host lowercased, port stripped: from an absolute-form
                                   target, else the Host header (points into a
                                   private copy); empty if none */
    int64_t content_length;     /* -1: none */
    size_t head_len;            /* bytes of request line + headers + CRLF */
    unsigned chunked : 1;       /* Transfer-Encoding: chunked */
    unsigned keepalive : 1;     /* connection may be reused after this request */
    unsigned expect_continue : 1;
    unsigned has_body : 1;      /* content_length > 0 or chunked */
    unsigned head : 1;          /* a HEAD request: answers carry no body */
    unsigned quoted : 1;        /* the path had %XX: forward it re-escaped */
} zg_http_req_t;

typedef struct zg_http_in_s zg_http_in_t;

typedef struct {
    /* head parsed and checked; req valid until zg_http_in_next() */
    void (*on_head)(void *data, zg_http_req_t *req);
    /* a piece of the request body (decoded); p valid only during the call */
    void (*on_body)(void *data, const char *p, size_t n);
    /* the request (head and body) is complete */
    void (*on_done)(void *data);
} zg_http_in_handlers_t;

/* Limits and options of a client connection; zero values are the defaults. */
typedef struct {
    size_t line_max;            /* request line longer -> 414 (large_client_header_buffers size) */
    size_t head_max;            /* whole head larger -> 431 (number * size) */
    int64_t body_max;           /* Content-Length or chunked total over -> 413; 0 = no limit */
    size_t max_headers;         /* more header lines -> 431 (client_max_headers);
                                   0 = ZG_HTTP_MAX_HEADERS */
    unsigned no_merge_slashes : 1;  /* merge_slashes off */
    unsigned underscores : 1;       /* underscores_in_headers on */
    unsigned keep_invalid : 1;      /* ignore_invalid_headers off */
    unsigned no_fast : 1;           /* every head through llhttp (tests compare the two) */
} zg_http_limits_t;

/* ---- request targets ---- */

typedef struct {
    size_t path_len;            /* bytes of normalised path written to out */
    size_t args_off, args_len;  /* the raw args, in the input: after '?', up to '#' */
    unsigned quoted : 1;        /* a %XX was decoded in the path */
    unsigned has_args : 1;      /* a '?' ended the path */
} zg_http_uri_t;

/* Normalises the request target in[0, n) (origin-form: "/..." or "?..." for an
 * absolute-form target without path) as nginx 1.22's ngx_http_parse_complex_uri:
 * %XX decoded (either case; a decoded '%', '#' or '?' is a path byte, any other
 * decoded byte counts as if sent raw), "//" merged unless merge_slashes is 0,
 * "/./" and "/../" (and a trailing "/." or "/..") resolved, '?' starts the args and
 * '#' the fragment, which is dropped.  Writes the path to out (room for n + 1 bytes;
 * it is never longer than max(n, 1)) and fills *u.  ZG_OK, or ZG_ERROR (answer 400)
 * for a bad or truncated %XX, %00, a ".." above the root, or an input that does not
 * start with '/' or '?'. */
int zg_http_parse_uri(const char *in, size_t n, int merge_slashes, char *out,
                      zg_http_uri_t *u);

/* 1 if in[0, n) needs zg_http_parse_uri: it has '%', '#', "//" or "/." (the fast
 * path otherwise: the path is the bytes before '?') */
int zg_http_uri_complex(const char *in, size_t n);

/* Writes p[0, n) to out escaping ' ', '#', '%', '?', controls and bytes >= 0x7f as
 * %XX (nginx's NGX_ESCAPE_URI); out NULL: only counts.  Returns the length. */
size_t zg_http_escape_uri(char *out, const char *p, size_t n);

/* Makes p[0, n) (in a buffer of cap bytes) safe as a header value: control bytes
 * but HTAB (a decoded "%0d%0a" in $uri) become %XX, so no variable can add a
 * header line.  Returns the new length, at most cap (the end may be cut). */
size_t zg_http_header_safe(char *p, size_t n, size_t cap);

/* Creates the parser of one client connection.  NULL on malloc failure. */
zg_http_in_t *zg_http_in_create(const zg_http_limits_t *limits,
                                const zg_http_in_handlers_t *h, void *data);
void zg_http_in_destroy(zg_http_in_t *in);

/* Buffer for the next read (libuv alloc_cb): returns where to read, *len its size
 * (at least 4 KiB, except: while stopped (see feed) bytes are only buffered, and
 * once that space is full *len is 0 (libuv then reports UV_ENOBUFS): stop reading
 * until resume/next).  No allocation once the buffer has grown to fit the heads. */
char *zg_http_in_buffer(zg_http_in_t *in, size_t *len);

/* Parses n bytes just read into that buffer, calling the handlers.  After on_head
 * and after on_done the parser stops (does not parse further bytes, which stay
 * buffered) until zg_http_in_resume() (after on_head: go on with the body) or
 * zg_http_in_next() (after on_done: the request is finished, drop its head and go
 * on with the next pipelined request).  Returns ZG_OK (wants more bytes), ZG_AGAIN
 * (stopped as above), or an HTTP status >= 400 for bad input: answer it and close.
 * The error sticks: later calls return it again.  Statuses:
 *   400 malformed (llhttp errors, obs-fold, bare LF or CR, control bytes, space
 *       before ':', Content-Length bad/duplicate/with Transfer-Encoding, chunked not
 *       the final coding or twice, Transfer-Encoding in HTTP/1.0, Host missing in
 *       HTTP/1.1 / duplicate / invalid, HTTP/0.9 (as soon as its line ends), target
 *       not origin- or absolute-form (so "OPTIONS *" too, as nginx), a path
 *       zg_http_parse_uri refuses, bad chunk size or overflow, trailers over head_max),
 *   405 CONNECT, 413 body over body_max (Content-Length: before on_head; chunked:
 *       when the chunk that crosses it starts), 414 request line over line_max,
 *   431 head over head_max (counted as bytes arrive) or more than max_headers lines,
 *   501 a coding before the final chunked ("gzip, chunked"),
 *   505 HTTP major version not 1 (HTTP/1.2 .. 1.9 are served as 1.1), HTTP/2
 *       preface; 500 out of memory.
 * Header lines whose name has a byte other than letters, digits and '-' (and '_'
 * with underscores) are dropped before any is interpreted, unless keep_invalid:
 * they are not in req->names, so neither forwarded nor seen by $http_NAME.
 * zg_http_in_error() gives the reason.  The handlers may call resume/next (and
 * destroy): from inside a handler these only note what to do and return ZG_OK; the
 * outer feed/resume/next then goes on and returns the result. */
int zg_http_in_feed(zg_http_in_t *in, size_t n);

/* Continue parsing buffered bytes after the stop at on_head.  Same returns as feed
 * (ZG_AGAIN also when not stopped at on_head). */
int zg_http_in_resume(zg_http_in_t *in);
/* After on_done: drops the finished request (its zg_http_req_t is invalid from now
 * on), moves pipelined bytes to the start and parses them, so it may call on_head
 * (and, for a request without body, nothing more) before returning.  Same returns
 * as feed; ZG_ERROR if on_done was not called yet. */
int zg_http_in_next(zg_http_in_t *in);

/* 1 if the client sent bytes of a next request already (pipelining) */
int zg_http_in_pending(const zg_http_in_t *in);
/* the connection closed (EOF) while a request was partly read: 1; idle EOF: 0 */
int zg_http_in_eof(zg_http_in_t *in);
/* reason text of the last error status (for the error log) */
const char *zg_http_in_error(const zg_http_in_t *in);

/* ---- upstream responses ---- */

typedef struct {
    int status;
    int http_major, http_minor;
    zg_str_t reason;
    zg_str_t names[ZG_HTTP_MAX_HEADERS];
    zg_str_t values[ZG_HTTP_MAX_HEADERS];
    size_t nhdrs;
    int64_t content_length;     /* -1: none */
    unsigned chunked : 1;
    unsigned keepalive : 1;     /* upstream connection reusable after the body */
    unsigned no_body : 1;       /* HEAD request, 1xx, 204, 304 */
    unsigned until_close : 1;   /* body ends when the upstream closes */
} zg_http_resp_head_t;

typedef struct zg_http_resp_s zg_http_resp_t;

typedef struct {
    void (*on_head)(void *data, zg_http_resp_head_t *head); /* valid until next head */
    void (*on_body)(void *data, const char *p, size_t n);   /* decoded body piece */
    void (*on_done)(void *data);                            /* response complete */
} zg_http_resp_handlers_t;

/* head_max: response head larger -> error.  Returns NULL on malloc failure. */
zg_http_resp_t *zg_http_resp_create(size_t head_max, const zg_http_resp_handlers_t *h,
                                    void *data);
void zg_http_resp_destroy(zg_http_resp_t *r);
/* Ready for a new response; head_request = the request was HEAD (no body). */
void zg_http_resp_reset(zg_http_resp_t *r, int head_request);
char *zg_http_resp_buffer(zg_http_resp_t *r, size_t *len);
/* Parses n bytes just read.  ZG_OK (more wanted), ZG_DONE (response complete; bytes
 * after it are an error: the upstream sent more than one response, so the
 * connection is not reusable: see zg_http_resp_reusable), ZG_ERROR (malformed,
 * head over head_max, 101, or bytes fed after ZG_DONE without a reset: 502 if no
 * head was passed on, else abort).  1xx interim responses (100, 102, 103) are
 * skipped; on_head sees the final response only.  Obs-fold in a head is an error. */
int zg_http_resp_feed(zg_http_resp_t *r, size_t n);
/* 1 if the response completed (ZG_DONE), its head allowed keep-alive, and no bytes
 * followed it: the upstream connection may go back to the keepalive pool. */
int zg_http_resp_reusable(const zg_http_resp_t *r);
/* the upstream closed: ZG_DONE if that ends the body (until_close), else ZG_ERROR */
int zg_http_resp_eof(zg_http_resp_t *r);

/* ---- writers ---- */

const char *zg_http_reason(int status);

/* Writes a complete response with a small body into buf (snprintf semantics):
 * "HTTP/1.1 429 Too Many Requests\r\nServer: zonegate\r\nDate: ...\r\n
 * Content-Type: text/html\r\nContent-Length: N\r\nConnection: keep-alive|close\r\n
 * <extra>\r\n<body>".  extra: extra header lines, each ending in CRLF, may be NULL.
 * body NULL: nginx-like HTML error page for the status (none for 204/304). */
#define ZG_HTTP_TOKENS 2 /* or-ed into keepalive: "Server: zonegate/VERSION" */
size_t zg_http_write_response(char *buf, size_t len, int status, int keepalive,
                              const char *extra, const char *content_type,
                              const char *body, size_t body_len, int head_request);

/* the status page (nginx-like) of an answer without a body, and its length */
const char *zg_http_status_page(int status, int tokens, size_t *len);
/* bytes of body zg_http_write_response writes for these arguments */
size_t zg_http_response_body_len(int status, const char *body, size_t body_len,
                                 int head_request, int tokens);

/* t as an HTTP date ("Wed, 25 Nov 2026 06:12:01 GMT", 29 bytes) into buf (>= 30
 * bytes); returns its length */
size_t zg_http_time(char *buf, time_t t);
/* an HTTP date (RFC 1123, RFC 850, asctime) as seconds; -1 if it is none */
time_t zg_http_parse_time(const char *s, size_t n);

/* current "Date" value, "Wed, 25 Nov 2026 06:12:01 GMT", cached per second */
const char *zg_http_date(void);

/* 1 if the header is hop-by-hop (Connection, Keep-Alive, Proxy-Connection, TE,
 * Trailer, Transfer-Encoding, Upgrade, Proxy-Authenticate? no) */
int zg_http_hop_by_hop(const zg_str_t *name);
/* case-insensitive header name equality; the length test inline (most names a
 * request's headers are compared with differ in length: no call) */
int zg_http_name_eq_n(const char *a, const char *lit, size_t litlen);
static inline int zg_http_name_eq(const zg_str_t *name, const char *lit, size_t litlen)
{
    return name->len == litlen && zg_http_name_eq_n(name->data, lit, litlen);
}

#endif
