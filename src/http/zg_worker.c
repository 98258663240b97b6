/* zg_worker.c — a worker process: libuv loop (created after fork), accepting on the
 * master's listening sockets, client connection lifetime and deadlines, output
 * queues, and graceful / fast shutdown. */
#include "zg_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zg_http_core.h"
#include "zg_log.h"
#include "zg_proc.h"
#include "zg_request.h"

#define ZG_LISTEN_BACKLOG 4096
#define ZG_OUTQ_KEEP_MAX (64 * 1024) /* a drained output buffer larger than this is freed */
#define ZG_LINGER_READ (16 * 1024)   /* what a lingering close reads (and drops) at a time */
#define ZG_LINGER_MSEC 2000          /* how long a lingering close reads */
#define ZG_SENDFILE_MAX (2 * 1024 * 1024) /* one sendfile(2) call at most (as nginx's
                                             sendfile_max_chunk), so that one fast
                                             client does not hold the loop */

/* the default server's settings: they apply until a request has found its server */
static zg_http_core_loc_conf_t *zg_conn_core(zg_conn_t *c)
{
    return zg_http_core_loc_conf(c->ls->default_server->loc_conf);
}

/* ---- output queue ---- */

typedef struct {
    uv_write_t req;
    zg_outq_t *q;
    size_t len;
    char data[];
} zg_outq_write_t;

void zg_outq_init(zg_outq_t *q, uv_stream_t *s, void *data)
{
    memset(q, 0, sizeof(*q));
    q->stream = s;
    q->data = data;
}

int zg_outq_str(zg_outq_t *q, const char *s)
{
    return zg_outq_append(q, s, strlen(s));
}

int zg_outq_num(zg_outq_t *q, uint64_t n)
{
    char tmp[24];
    return zg_outq_append(q, tmp, zg_fmt_u64(tmp, n));
}

int zg_outq_hex(zg_outq_t *q, uint64_t n)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[20];
    size_t len = sizeof(tmp);
    do {
        tmp[--len] = digits[n & 15];
        n >>= 4;
    } while (n);
    return zg_outq_append(q, tmp + len, sizeof(tmp) - len);
}

int zg_outq_printf(zg_outq_t *q, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return ZG_ERROR;
    }
    if ((size_t)n < sizeof(tmp)) {
        return zg_outq_append(q, tmp, (size_t)n);
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
        return ZG_ERROR;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = zg_outq_append(q, big, (size_t)n);
    free(big);
    return rc;
}


static void zg_outq_written(uv_write_t *req, int status)
{
    zg_outq_write_t *w = zg_data_of(req, zg_outq_write_t, req);
    zg_outq_t *q = w->q;
    size_t len = w->len;
    free(w);
    if (q == NULL) {
        return; /* the queue was freed while the write was in flight */
    }
    q->inflight -= len;
    if (status < 0) {
        if (q->failed) {
            q->failed(q->data, status);
        }
        return;
    }
    if (q->inflight == 0 && q->rate != NULL) {
        zg_outq_rate_idle(q);
    }
    if (q->inflight == 0 && q->file) {
        zg_outq_file_send(q);
        return;
    }
    if (q->inflight == 0 && q->drained) {
        q->drained(q->data);
    }
}

int zg_outq_flush(zg_outq_t *q)
{
    if (q->tls != NULL && zg_tls_seal(q->tls, &q->b) != ZG_OK) {
        q->b.len = 0;
        return ZG_ERROR;
    }
    if (q->b.len == 0 || q->file) {
        /* bytes appended after a file segment wait until it is sent */
        return ZG_OK;
    }
    if (q->rate != NULL) {
        return zg_outq_rate_flush(q);
    }
    size_t off = 0;
    if (q->inflight == 0) {
        uv_buf_t b = uv_buf_init(q->b.data, (unsigned)q->b.len);
        int n = uv_try_write(q->stream, &b, 1);
        if (n > 0) {
            off = (size_t)n;
        } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            q->b.len = 0;
            return ZG_ERROR;
        }
    }
    if (off < q->b.len) {
        size_t rest = q->b.len - off;
        zg_outq_write_t *w = malloc(sizeof(*w) + rest);
        if (w == NULL) {
            return ZG_ERROR;
        }
        memcpy(w->data, q->b.data + off, rest);
        w->q = q;
        w->len = rest;
        uv_buf_t b = uv_buf_init(w->data, (unsigned)rest);
        if (uv_write(&w->req, q->stream, &b, 1, zg_outq_written) != 0) {
            free(w);
            q->b.len = 0;
            return ZG_ERROR;
        }
        q->inflight += rest;
    }
    q->b.len = 0;
    q->b.failed = 0; /* an append that failed is dropped with what was written */
    if (q->b.cap > ZG_OUTQ_KEEP_MAX) {
        zg_buf_free(&q->b);
    }
    return ZG_OK;
}

int zg_outq_write_raw(zg_outq_t *q, const char *p, size_t n, size_t *now)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int k = uv_try_write(q->stream, &b, 1);

    *now = 0;
    if (k > 0) {
        *now = (size_t)k;
    } else if (k != UV_EAGAIN && k != UV_ENOSYS) {
        return ZG_ERROR;
    }
    if (*now < n) {
        size_t rest = n - *now;
        zg_outq_write_t *w = malloc(sizeof(*w) + rest);
        if (w == NULL) {
            return ZG_ERROR;
        }
        memcpy(w->data, p + *now, rest);
        w->q = q;
        w->len = rest;
        b = uv_buf_init(w->data, (unsigned)rest);
        if (uv_write(&w->req, q->stream, &b, 1, zg_outq_written) != 0) {
            free(w);
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

size_t zg_outq_pending(const zg_outq_t *q)
{
    return q->inflight + q->b.len + (size_t)q->file_left; /* file_left: 0 without a file */
}

/* ---- the file segment ---- */

struct zg_outq_poll_s {
    uv_poll_t poll;       /* on fd, a duplicate of the stream's socket: libuv keeps one
                             watcher per descriptor, and the stream has the socket's */
    int fd;
    zg_outq_t *q;         /* NULL once the queue let go of it */
};

static void zg_outq_poll_closed(uv_handle_t *h)
{
    zg_outq_poll_t *p = h->data;
    close(p->fd);
    free(p);
}

static void zg_outq_cork(zg_outq_t *q, int on)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)q->stream, &fd) == 0) {
        (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
    }
    q->cork = on ? 1 : 0;
}

void zg_outq_file_stop(zg_outq_t *q)
{
    if (q->file) {
        q->file = 0;
        q->file_left = 0;
        close(q->file_fd);
    }
    if (q->poll != NULL) {
        q->poll->q = NULL;
        uv_close((uv_handle_t *)&q->poll->poll, zg_outq_poll_closed);
        q->poll = NULL;
    }
}

static void zg_outq_writable(uv_poll_t *h, int status, int events)
{
    zg_outq_poll_t *p = h->data;
    (void)events;
    uv_poll_stop(h);
    if (p->q == NULL) {
        return;
    }
    if (status < 0) {
        zg_outq_t *q = p->q;
        zg_outq_file_stop(q);
        if (q->failed) {
            q->failed(q->data, status);
        }
        return;
    }
    zg_outq_file_send(p->q);
}

/* the socket is full: wait until it takes more */
static int zg_outq_file_wait(zg_outq_t *q)
{
    uv_os_fd_t sock;

    if (q->poll == NULL) {
        zg_outq_poll_t *p = malloc(sizeof(*p));
        if (p == NULL || uv_fileno((uv_handle_t *)q->stream, &sock) != 0) {
            free(p);
            return ZG_ERROR;
        }
        p->fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
        if (p->fd == -1 || uv_poll_init(q->stream->loop, &p->poll, p->fd) != 0) {
            if (p->fd != -1) {
                close(p->fd);
            }
            free(p);
            return ZG_ERROR;
        }
        p->poll.data = p;
        p->q = q;
        q->poll = p;
    }
    return uv_poll_start(&q->poll->poll, UV_WRITABLE, zg_outq_writable) == 0 ? ZG_OK
                                                                              : ZG_ERROR;
}

/* sendfile(2) until the segment is sent (ZG_OK), the socket is full or a big piece
 * went (ZG_AGAIN: wait for it to be writable, so that one fast client does not hold
 * the loop), the send budget is spent (ZG_BUSY: wait for its timer), or an error
 * (ZG_ERROR, logged; *err its libuv code). */
static int zg_outq_file_push(zg_outq_t *q, int *err)
{
    uv_os_fd_t sock;
    size_t sent_now = 0, max = ZG_SENDFILE_MAX;

    if (uv_fileno((uv_handle_t *)q->stream, &sock) != 0) {
        *err = UV_EBADF;
        return ZG_ERROR;
    }
    if (q->rate != NULL && q->file_left > 0
        && (max = zg_min(zg_outq_rate_budget(q), ZG_SENDFILE_MAX)) == 0) {
        return ZG_BUSY;
    }
    while (q->file_left > 0) {
        if (sent_now >= max) {
            return max < ZG_SENDFILE_MAX ? ZG_BUSY : ZG_AGAIN;
        }
        off_t off = (off_t)q->file_off;
        ssize_t n = sendfile(sock, q->file_fd, &off,
                             (size_t)zg_min(q->file_left, (int64_t)(max - sent_now)));
        if (n > 0) {
            q->file_off += n;
            q->file_left -= n;
            sent_now += (size_t)n;
            if (q->rate != NULL) {
                zg_outq_rate_sent(q, (size_t)n);
            }
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return ZG_AGAIN;
        }
        if (n == -1) {
            *err = uv_translate_sys_error(errno);
            if (errno != EPIPE && errno != ECONNRESET) {
                zg_log_error(ZG_LOG_ERR, errno, "sendfile() failed");
            }
        } else {
            /* the file shrank under us: the length announced cannot be kept */
            zg_log_error(ZG_LOG_ALERT, 0, "a file was truncated while being sent");
            *err = UV_EIO;
        }
        return ZG_ERROR;
    }
    return ZG_OK;
}

/* the segment is sent: uncork, flush what waited behind it */
static int zg_outq_file_end(zg_outq_t *q)
{
    zg_outq_file_stop(q);
    if (q->cork) {
        zg_outq_cork(q, 0);
    }
    return zg_outq_flush(q);
}

/* Sends what the socket takes of the file segment (no write in flight); at its end
 * `drained` is told once nothing is left. */
void zg_outq_file_send(zg_outq_t *q)
{
    int err = UV_EIO;
    int rc = zg_outq_file_push(q, &err);

    if (rc == ZG_AGAIN || rc == ZG_BUSY) {
        if ((rc == ZG_AGAIN ? zg_outq_file_wait(q) : zg_outq_rate_wait(q)) == ZG_OK) {
            return;
        }
        rc = ZG_ERROR;
    }
    if (rc == ZG_OK && zg_outq_file_end(q) == ZG_OK) {
        if (q->inflight == 0 && q->drained) {
            q->drained(q->data);
        }
        return;
    }
    zg_outq_file_stop(q);
    if (q->failed) {
        q->failed(q->data, err);
    }
}

int zg_outq_sendfile(zg_outq_t *q, int fd, int64_t off, int64_t len, int cork)
{
    int err, rc;

    if (q->file || q->tls != NULL) {
        close(fd);
        return ZG_ERROR;
    }
    if (cork && !q->cork && len > 0) {
        zg_outq_cork(q, 1);
    }
    if (zg_outq_flush(q) != ZG_OK) {
        close(fd);
        return ZG_ERROR;
    }
    q->file = 1;
    q->file_fd = fd;
    q->file_off = off;
    q->file_left = len;
    if (q->inflight > 0) {
        return ZG_OK; /* zg_outq_written goes on with it */
    }
    /* at once; `drained` is not called from inside this call */
    rc = zg_outq_file_push(q, &err);
    if (rc == ZG_OK) {
        return zg_outq_file_end(q);
    }
    if ((rc == ZG_AGAIN && zg_outq_file_wait(q) == ZG_OK)
        || (rc == ZG_BUSY && zg_outq_rate_wait(q) == ZG_OK)) {
        return ZG_OK;
    }
    zg_outq_file_stop(q);
    return ZG_ERROR;
}

void zg_outq_free(zg_outq_t *q)
{
    zg_outq_file_stop(q);
    zg_outq_rate_stop(q);
    zg_buf_free(&q->b);
    q->drained = NULL;
    q->failed = NULL;
}

/* ---- connections ---- */

static void zg_conn_free_cb(uv_handle_t *h)
{
    zg_conn_t *c = h->data;
    if (--c->handles == 0) {
        zg_worker_t *w = c->w;
        zg_queue_remove(&c->link);
        w->nconns--;
        zg_http_in_destroy(c->in);
        zg_outq_free(&c->out);
        zg_tls_free(c->tls);
        free(c->rmem);
        free(c);
        if (w->quitting && w->nconns == 0) {
            uv_stop(w->loop);
        }
    }
}

void zg_conn_close(zg_conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    if (c->req) {
        zg_request_abort(c->req);
    }
    /* queued writes are cancelled by the close: they must not touch c->out */
    c->out.drained = NULL;
    c->out.failed = NULL;
    zg_outq_file_stop(&c->out);
    zg_outq_rate_stop(&c->out);
    uv_close((uv_handle_t *)&c->timer.timer, zg_conn_free_cb);
    uv_close((uv_handle_t *)&c->tcp, zg_conn_free_cb);
    if (c->rmem) {
        /* the request's timer (zg_request_start counted it in c->handles) */
        zg_request_close(c->rmem, zg_conn_free_cb);
    }
}

/* Lingering close: shut our side once the output is sent, then read and drop what
 * the client still sends for a moment, so that closing with unread bytes does not
 * reset the connection before the client has read our answer. */
static void zg_linger_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[ZG_LINGER_READ];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void zg_linger_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0) {
        zg_conn_close(s->data);
    }
}

static void zg_linger_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

static void zg_linger_timeout(uv_timer_t *t)
{
    zg_conn_close(t->data);
}

static void zg_conn_linger(zg_conn_t *c);

static void zg_conn_linger_later(void *data)
{
    zg_conn_linger(data);
}

static void zg_conn_linger(zg_conn_t *c)
{
    if (c->closing || c->lingering) {
        return;
    }
    if (c->out.rate != NULL && zg_outq_rate_held(&c->out)) {
        c->out.drained = zg_conn_linger_later; /* after what limit_rate holds back */
        return;
    }
    c->lingering = 1;
    c->out.drained = NULL;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
    if (c->tls != NULL) {
        zg_tls_shutdown(c->tls);
        if (zg_outq_flush(&c->out) != ZG_OK) {
            zg_conn_close(c);
            return;
        }
    }
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, zg_linger_shutdown) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, zg_linger_alloc, zg_linger_read) != 0) {
        zg_conn_close(c);
        return;
    }
    c->timer.at = 0;
    c->timer.due = 0;
    uv_timer_start(&c->timer.timer, zg_linger_timeout, ZG_LINGER_MSEC, 0);
}

/* the connection's deadline passed */
static void zg_conn_timeout(zg_deadline_t *d)
{
    zg_conn_t *c = d->timer.data;
    zg_request_t *r = c->req;
    if (c->out.rate != NULL && zg_outq_rate_held(&c->out)) {
        /* limit_rate still sends an answer queued whole: not idle yet */
        zg_conn_timer(c, zg_conn_core(c)->send_timeout);
        return;
    }
    if (r && zg_request_timeout(r) == ZG_OK) {
        return;
    }
    if (r == NULL && !c->idle) {
        /* the head did not arrive in time: 408 as nginx closes, but say why (not
         * to a TLS handshake that did not finish) */
        char buf[512];
        size_t n = zg_http_write_response(buf, sizeof(buf), 408,
                                          zg_conn_core(c)->server_tokens ? ZG_HTTP_TOKENS : 0,
                                          NULL, NULL, NULL, 0, 0);
        if (c->tls == NULL) {
            uv_buf_t b = uv_buf_init(buf, (unsigned)zg_min(n, sizeof(buf)));
            uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        } else if (zg_tls_done(c->tls)) {
            zg_outq_append(&c->out, buf, zg_min(n, sizeof(buf)));
            (void)zg_outq_flush(&c->out);
        }
    }
    zg_conn_close(c);
}

void zg_conn_timer(zg_conn_t *c, zg_msec_t ms)
{
    if (c->closing) {
        return;
    }
    zg_deadline_set(&c->timer, ms);
}

static void zg_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    zg_conn_t *c = h->data;
    size_t len = 0;
    if (c->tls != NULL) {
        *buf = uv_buf_init(zg_tls_inbuf(c->tls), ZG_TLS_READ_SIZE);
        return;
    }
    char *p = zg_http_in_buffer(c->in, &len);
    *buf = uv_buf_init(p, (unsigned)len);
}

static void zg_conn_bad_request(zg_conn_t *c, int status)
{
    zg_log(ZG_LOG_INFO, "client sent invalid request (%d: %s)", status,
           zg_http_in_error(c->in));
    zg_conn_read(c, 0);
    if (c->req) {
        zg_request_bad(c->req, status);
        return;
    }
    char buf[1024];
    size_t n = zg_http_write_response(buf, sizeof(buf), status,
                                      zg_conn_core(c)->server_tokens ? ZG_HTTP_TOKENS : 0,
                                      NULL, NULL, NULL, 0, 0);
    zg_outq_append(&c->out, buf, zg_min(n, sizeof(buf)));
    c->close_after = 1;
    if (zg_outq_flush(&c->out) != ZG_OK) {
        zg_conn_close(c);
        return;
    }
    zg_conn_linger(c);
}

enum { ZG_PARSE_FEED, ZG_PARSE_RESUME, ZG_PARSE_NEXT };

static void zg_conn_tls_pump(zg_conn_t *c);

/* Every call into the parser goes through here, so that handlers that want to
 * resume or go to the next request while the parser is running only leave a note. */
static void zg_conn_parse(zg_conn_t *c, int op, size_t n)
{
    if (c->in_parser) {
        if (op == ZG_PARSE_NEXT) {
            c->want_next = 1;
        } else if (op == ZG_PARSE_RESUME) {
            c->want_resume = 1;
        }
        return;
    }
    c->in_parser = 1;
    int rc = op == ZG_PARSE_FEED     ? zg_http_in_feed(c->in, n)
             : op == ZG_PARSE_RESUME ? zg_http_in_resume(c->in)
                                     : zg_http_in_next(c->in);
    while (rc == ZG_OK || rc == ZG_AGAIN) {
        if (c->closing) {
            break;
        }
        if (c->want_resume) {
            /* first let the parser reach the end of the message (a handler that
             * answered at once asked for both) */
            c->want_resume = 0;
            rc = zg_http_in_resume(c->in);
        } else if (c->want_next) {
            c->want_next = 0;
            rc = zg_http_in_next(c->in);
        } else {
            break;
        }
    }
    c->in_parser = 0;
    if (rc >= 400 && !c->closing) {
        zg_conn_bad_request(c, rc);
        return;
    }
    if (c->tls != NULL) {
        /* records already decrypted wait for room in the parser's buffer */
        zg_conn_tls_pump(c);
    }
}

/* Decrypts what the client sent into the parser's buffer, as long as it is read.
 * A request split across records is fed as the same bytes. */
static void zg_conn_tls_pump(zg_conn_t *c)
{
    if (c->tls_pumping) {
        return;
    }
    c->tls_pumping = 1;
    while (!c->closing && c->reading && !c->in_parser) {
        size_t len = 0;
        char *p = zg_http_in_buffer(c->in, &len);
        if (len == 0) {
            /* as UV_ENOBUFS: read again when this request is done */
            zg_conn_read(c, 0);
            break;
        }
        ssize_t n = zg_tls_read(c->tls, p, len);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            c->tls_pumping = 0;
            zg_conn_close(c);
            return;
        }
        zg_conn_parse(c, ZG_PARSE_FEED, (size_t)n);
    }
    c->tls_pumping = 0;
    if (!c->closing && zg_outq_flush(&c->out) != ZG_OK) {
        zg_conn_close(c);
    }
}

static void zg_conn_tls_read(zg_conn_t *c, size_t n)
{
    if (zg_tls_feed(c->tls, n) != ZG_OK) {
        zg_conn_close(c);
        return;
    }
    if (!zg_tls_done(c->tls)) {
        int rc = zg_tls_handshake(c->tls);
        if (zg_outq_flush(&c->out) != ZG_OK || rc == ZG_ERROR) {
            zg_conn_close(c);
            return;
        }
        if (rc == ZG_AGAIN) {
            return;
        }
    }
    zg_conn_tls_pump(c);
}

void zg_conn_body(zg_conn_t *c)
{
    zg_conn_read(c, 1);
    zg_conn_parse(c, ZG_PARSE_RESUME, 0);
}

const char *zg_conn_addr_text(zg_conn_t *c)
{
    if (c->addr_text[0] == '\0') {
        if (c->peer.ss_family == AF_UNIX) {
            memcpy(c->addr_text, "unix:", 6);
        } else if (c->peer.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&c->peer, c->addr_text, sizeof(c->addr_text));
        } else {
            uv_ip4_name((struct sockaddr_in *)&c->peer, c->addr_text, sizeof(c->addr_text));
        }
    }
    return c->addr_text;
}

static void zg_conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    zg_conn_t *c = s->data;
    if (nread == 0) {
        return;
    }
    if (nread == UV_ENOBUFS) {
        /* pipelined bytes fill the buffer: read again when this request is done */
        zg_conn_read(c, 0);
        return;
    }
    if (nread < 0) {
        /* EOF or error: a request being proxied is aborted (nginx's 499) */
        zg_conn_close(c);
        return;
    }
    if (c->idle) {
        c->idle = 0;
        zg_conn_timer(c, zg_conn_core(c)->client_header_timeout);
    }
    if (c->tls != NULL) {
        zg_conn_tls_read(c, (size_t)nread);
        return;
    }
    zg_conn_parse(c, ZG_PARSE_FEED, (size_t)nread);
}

void zg_conn_read(zg_conn_t *c, int on)
{
    if (c->closing || c->close_after) {
        return;
    }
    if (on && !c->reading) {
        c->reading = 1;
        uv_read_start((uv_stream_t *)&c->tcp, zg_conn_alloc, zg_conn_on_read);
    } else if (!on && c->reading) {
        c->reading = 0;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

static void zg_conn_set_idle(zg_conn_t *c)
{
    zg_http_core_loc_conf_t *s = zg_conn_core(c);
    c->idle = 1;
    zg_msec_t t = s->keepalive_timeout;
    if (c->w->quitting) {
        t = zg_min(t, 1000);
    }
    zg_conn_timer(c, t);
}

void zg_conn_request_done(zg_conn_t *c, int keepalive)
{
    c->req = NULL;
    if (c->closing) {
        return;
    }
    if (!keepalive || c->close_after) {
        c->close_after = 1;
        zg_conn_linger(c);
        return;
    }
    if (zg_http_in_pending(c->in)) {
        zg_conn_timer(c, zg_conn_core(c)->client_header_timeout);
        c->idle = 0;
    } else {
        zg_conn_set_idle(c);
    }
    zg_conn_read(c, 1);
    zg_conn_parse(c, ZG_PARSE_NEXT, 0);
}

static void zg_conn_drained(void *data)
{
    zg_conn_t *c = data;
    if (c->req) {
        zg_request_drained(c->req);
    }
}

static void zg_conn_write_failed(void *data, int status)
{
    (void)status;
    zg_conn_close(data);
}

static void zg_on_head(void *data, zg_http_req_t *req)
{
    zg_conn_t *c = data;
    c->nrequests++;
    zg_request_start(c, req);
}

static void zg_on_body(void *data, const char *p, size_t n)
{
    zg_conn_t *c = data;
    if (c->req) {
        zg_request_body(c->req, p, n);
    }
}

static void zg_on_done(void *data)
{
    zg_conn_t *c = data;
    if (c->req) {
        zg_request_body_done(c->req);
    }
}

static const zg_http_in_handlers_t zg_conn_handlers = {zg_on_head, zg_on_body, zg_on_done};

/* libuv sheds connections silently when accept() hits EMFILE; warn (once a second)
 * while this worker's descriptors are nearly all in use, so that it is seen */
static void zg_worker_fd_check(zg_worker_t *w, zg_conn_t *c)
{
    static uint64_t last;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || w->fd_limit == 0 ||
        (uint64_t)fd + 16 < w->fd_limit) {
        return;
    }
    uint64_t now = uv_now(w->loop);
    if (now - last >= 1000 || last == 0) {
        last = now;
        zg_log_error(ZG_LOG_WARN, 0,
                     "%d worker connections use descriptors up to %d of %llu: new "
                     "connections will be refused (accept: too many open files)",
                     w->nconns, fd, (unsigned long long)w->fd_limit);
        zg_proc_count(accept_errors);
    }
}

static void zg_on_connection(uv_stream_t *server, int status)
{
    zg_worker_t *w = server->loop->data;
    zg_listen_t *ls = server->data;
    if (status < 0) {
        zg_log_error(ZG_LOG_ERR, 0, "accept() failed (%s)", uv_strerror(status));
        zg_proc_count(accept_errors);
        return;
    }
    zg_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return;
    }
    uv_tcp_init(w->loop, &c->tcp);
    c->tcp.data = c;
    c->w = w;
    c->ls = ls;
    c->handles = 2;
    zg_deadline_init(w->loop, &c->timer, zg_conn_timeout, c);
    zg_queue_insert_tail(&w->conns, &c->link);
    w->nconns++;
    int arc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (arc != 0) {
        /* another worker took it, or out of descriptors */
        if (arc != UV_EAGAIN) {
            zg_log_error(ZG_LOG_ERR, 0, "accept() failed (%s)", uv_strerror(arc));
            zg_proc_count(accept_errors);
        }
        c->closing = 1;
        uv_close((uv_handle_t *)&c->timer.timer, zg_conn_free_cb);
        uv_close((uv_handle_t *)&c->tcp, zg_conn_free_cb);
        return;
    }
    zg_proc_count_connection();
    zg_worker_fd_check(w, c);
    int len = sizeof(c->peer);
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len);
    c->serial = ++w->serial;
    zg_http_core_loc_conf_t *s = zg_http_core_loc_conf(ls->default_server->loc_conf);
    zg_conn_nodelay(c, s->tcp_nodelay); /* a new socket has it off */
    /* the default server's, as nginx reads the head before it knows the server */
    zg_http_limits_t lim = {
        .line_max = (size_t)s->large_header_size,
        .head_max = (size_t)s->large_header_size * (size_t)s->large_header_buffers,
        .max_headers = (size_t)s->max_headers,
        .no_merge_slashes = !s->merge_slashes,
        .underscores = s->underscores_in_headers ? 1 : 0,
        .keep_invalid = !s->ignore_invalid_headers,
    };
    c->in = zg_http_in_create(&lim, &zg_conn_handlers, c);
    if (c->in == NULL) {
        zg_conn_close(c);
        return;
    }
    zg_outq_init(&c->out, (uv_stream_t *)&c->tcp, c);
    c->out.drained = zg_conn_drained;
    c->out.failed = zg_conn_write_failed;
    if (ls->ssl_ctx != NULL) {
        c->tls = zg_tls_create(ls->ssl_ctx, c);
        if (c->tls == NULL) {
            zg_conn_close(c);
            return;
        }
        c->out.tls = c->tls;
    }
    zg_conn_timer(c, s->client_header_timeout);
    zg_conn_read(c, 1);
}

/* ---- shutdown ---- */

static void zg_close_listeners(zg_worker_t *w)
{
    for (int i = 0; i < w->nlisteners; i++) {
        if (!uv_is_closing((uv_handle_t *)&w->listeners[i])) {
            uv_close((uv_handle_t *)&w->listeners[i], NULL);
        }
    }
}

static void zg_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static void zg_worker_quit(uv_signal_t *s, int sig)
{
    zg_worker_t *w = s->data;
    (void)sig;
    if (w->quitting) {
        return;
    }
    w->quitting = 1;
    zg_close_listeners(w);
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->quit_worker != NULL) {
            zg_modules[i]->quit_worker(w);
        }
    }
    /* idle keep-alive connections get a short grace, busy ones finish their request
     * and are answered with "Connection: close" */
    zg_queue_t *q = zg_queue_head(&w->conns);
    while (q != zg_queue_sentinel(&w->conns)) {
        zg_conn_t *c = zg_queue_data(q, zg_conn_t, link);
        q = zg_queue_next(q);
        if (c->idle && c->req == NULL) {
            zg_conn_timer(c, 200);
        }
    }
    /* unref, not close: closing the last watcher of a signal restores its default
     * action, and a second SIGQUIT (the master signals every old generation again
     * at each reload) would then kill this worker with its requests in flight */
    uv_unref((uv_handle_t *)&w->sig_quit);
    uv_unref((uv_handle_t *)&w->sig_hup);
    if (w->nconns == 0) {
        uv_stop(w->loop);
    }
}

static void zg_worker_term(uv_signal_t *s, int sig)
{
    zg_worker_t *w = s->data;
    (void)sig;
    w->quitting = 1;
    uv_stop(w->loop);
}

/* the master reopened the logs: its new descriptors arrive on the channel */
static void zg_worker_channel(uv_poll_t *p, int status, int events)
{
    zg_worker_t *w = p->data;
    (void)events;
    if (status < 0 || w->setup->logs(w->chan, w->conf) != ZG_OK) {
        uv_poll_stop(p);
    }
}

#ifdef ZG_DEBUG
/* Test hook: with ZG_DEBUG_USR2="write:PATH" a SIGUSR2 makes the worker try to open
 * PATH for writing, "exec:PATH" to execve PATH; the outcome is logged (or, inside the
 * sandbox, the worker is killed by SIGSYS).  "overflow" reads past a heap block, for
 * an ASan report from inside the sandbox. */
static void zg_worker_debug_usr2(uv_signal_t *s, int sig)
{
    const char *what = getenv("ZG_DEBUG_USR2");
    (void)s;
    (void)sig;
    if (what == NULL) {
        return;
    }
    if (strncmp(what, "write:", 6) == 0) {
        int fd = open(what + 6, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd == -1) {
            zg_log_error(ZG_LOG_ALERT, errno, "debug: open() \"%s\" for writing failed",
                         what + 6);
        } else {
            zg_log_error(ZG_LOG_ALERT, 0, "debug: open() \"%s\" for writing succeeded",
                         what + 6);
            close(fd);
        }
    } else if (strcmp(what, "overflow") == 0) {
        volatile char *p = malloc(8);
        zg_log_error(ZG_LOG_ALERT, 0, "debug: read past a heap block: %d", p[8]);
        free((void *)p);
    } else if (strncmp(what, "exec:", 5) == 0) {
        char *argv[] = {(char *)(what + 5), NULL};
        char *envp[] = {NULL};
        zg_log_error(ZG_LOG_ALERT, 0, "debug: execve(\"%s\")", what + 5);
        execve(what + 5, argv, envp);
        zg_log_error(ZG_LOG_ALERT, errno, "debug: execve(\"%s\") failed", what + 5);
    }
}
#endif

static void zg_worker_ignore(uv_signal_t *s, int sig)
{
    (void)s;
    (void)sig;
}

/* listens on the sockets the master left open for this worker (the others are -1) */
static int zg_worker_listen(zg_worker_t *w, zg_http_core_main_conf_t *cmcf)
{
    int i, k, n = 0;

    for (i = 0; i < cmcf->nlistens; i++) {
        for (k = 0; k < cmcf->listens[i].nfds; k++) {
            n += cmcf->listens[i].fds[k] != -1;
        }
    }
    w->listeners = calloc((size_t)(n ? n : 1), sizeof(uv_tcp_t));
    if (w->listeners == NULL) {
        return ZG_ERROR;
    }
    for (i = 0; i < cmcf->nlistens; i++) {
        zg_listen_t *ls = &cmcf->listens[i];
        for (k = 0; k < ls->nfds; k++) {
            if (ls->fds[k] == -1) {
                continue;
            }
            uv_tcp_t *t = &w->listeners[w->nlisteners++];
            uv_tcp_init(w->loop, t);
            t->data = ls;
            if (uv_tcp_open(t, ls->fds[k]) != 0 ||
                uv_listen((uv_stream_t *)t, ZG_LISTEN_BACKLOG, zg_on_connection) != 0) {
                zg_log_error(ZG_LOG_EMERG, 0, "cannot listen on %s", ls->addr.text);
                return ZG_ERROR;
            }
        }
    }
    return ZG_OK;
}

int zg_worker_run(zg_conf_t *conf, int slot, int chan, const zg_worker_setup_t *setup)
{
    static zg_worker_t w;
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(conf);
    int i;

    w.conf = conf;
    w.slot = slot;
    w.chan = chan;
    w.setup = setup;
    zg_worker_slot = slot;
    zg_queue_init(&w.conns);
    signal(SIGPIPE, SIG_IGN);

    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
        w.fd_limit = (uint64_t)nofile.rlim_cur;
    }
    /* the master raised the descriptor limit (which may need root) before */
    if (setup->drop(conf) != ZG_OK) {
        return 2;
    }

    w.loop = malloc(sizeof(uv_loop_t));
    if (w.loop == NULL || uv_loop_init(w.loop) != 0) {
        zg_log_error(ZG_LOG_EMERG, 0, "uv_loop_init() failed");
        return 2;
    }
    w.loop->data = &w;

    uv_signal_init(w.loop, &w.sig_term);
    uv_signal_init(w.loop, &w.sig_int);
    uv_signal_init(w.loop, &w.sig_quit);
    uv_signal_init(w.loop, &w.sig_usr1);
    uv_signal_init(w.loop, &w.sig_hup);
    w.sig_term.data = w.sig_int.data = w.sig_quit.data = w.sig_usr1.data = w.sig_hup.data = &w;
    uv_signal_start(&w.sig_term, zg_worker_term, SIGTERM);
    uv_signal_start(&w.sig_int, zg_worker_term, SIGINT);
    uv_signal_start(&w.sig_quit, zg_worker_quit, SIGQUIT);
    uv_signal_start(&w.sig_usr1, zg_worker_ignore, SIGUSR1);
#ifdef ZG_DEBUG
    uv_signal_init(w.loop, &w.sig_debug);
    uv_signal_start(&w.sig_debug, zg_worker_debug_usr2, SIGUSR2);
#endif
    uv_poll_init(w.loop, &w.chan_poll, chan);
    w.chan_poll.data = &w;
    uv_poll_start(&w.chan_poll, UV_READABLE, zg_worker_channel);
    uv_signal_start(&w.sig_hup, zg_worker_ignore, SIGHUP);
    /* the watchers are set: signals that came while the master's mask held them
     * are delivered now */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (zg_worker_listen(&w, cmcf) != ZG_OK) {
        return 2;
    }

    for (i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->init_worker != NULL && zg_modules[i]->init_worker(&w) != ZG_OK) {
            return 2;
        }
    }
    if (setup->sandbox(conf) != ZG_OK) {
        return 2;
    }
#ifdef ZG_DEBUG
    if (getenv("ZG_DEBUG_USR2") != NULL) {
        /* tests send SIGUSR2 only after this line: handlers set, sandbox on */
        zg_log_error(ZG_LOG_NOTICE, 0, "debug: worker %d ready for SIGUSR2", (int)getpid());
    }
#endif

    uv_run(w.loop, UV_RUN_DEFAULT);

    /* fast stop, or graceful stop done: close everything and exit */
    zg_queue_t *q = zg_queue_head(&w.conns);
    while (q != zg_queue_sentinel(&w.conns)) {
        zg_conn_t *c = zg_queue_data(q, zg_conn_t, link);
        q = zg_queue_next(q);
        zg_conn_close(c);
    }
    for (i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->exit_worker != NULL) {
            zg_modules[i]->exit_worker(&w);
        }
    }
    uv_walk(w.loop, zg_walk_close, NULL);
    uv_run(w.loop, UV_RUN_DEFAULT);
    uv_loop_close(w.loop);
    free(w.loop);
    free(w.listeners);
    return 0;
}
