/* zg_stream_proxy.c — the stream proxy module: proxy_pass and its timeouts; picks a
 * peer of the upstream (the round-robin and peer state HTTP uses), connects, tries
 * the next peer on a failed connect within the tries/timeout budget, then relays
 * bytes both ways on the worker's loop.  A direction whose writes queue more than
 * ZG_STREAM_PROXY_HIGH bytes stops reading its source until they drain, so a
 * session holds a bounded amount of memory.  With proxy_splice a bulk flow (a read
 * that fills a whole chunk) moves on to the splice(2) relay of zg_splice.h. */
#include "zg_stream_proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_admin.h"
#include "zg_log.h"
#include "zg_proc.h"
#include "zg_proxy_protocol.h"
#include "zg_splice.h"
#include "zg_stream.h"
#include "zg_tls.h"
#include "zg_unix.h"

typedef struct zg_sp_s zg_sp_t;

/* one direction: bytes read from src are written to dst */
typedef struct {
    uv_stream_t *src, *dst;
    size_t pending;            /* bytes in uv_write requests not done yet */
    uint64_t bytes;            /* relayed */
    char *spare;               /* a chunk to read into next */
    uv_shutdown_t shut;
    int64_t rate;              /* proxy_upload_rate / proxy_download_rate, bytes/s; 0 = no limit */
    uv_timer_t *wait;          /* reading paused for the rate, NULL before the first pause */
    unsigned eof : 1;          /* src ended */
    unsigned limited : 1;      /* paused for the rate */
    unsigned reading : 1;
    unsigned shut_sent : 1;
    zg_sp_t *p;
} zg_sp_dir_t;

/* one connect attempt: freed when its handle is closed */
typedef struct {
    uv_tcp_t tcp;
    uv_connect_t req;
    zg_sp_t *p;
} zg_sp_peer_t;

struct zg_sp_s {
    zg_stream_session_t *s;
    zg_stream_proxy_conf_t *pc;
    zg_upstream_pick_t pick;
    zg_sp_peer_t *peer;        /* the current attempt, NULL none */
    uv_timer_t timer;          /* connect timeout, then proxy_timeout */
    uint64_t active;           /* uv_now() of the last read or write */
    uint64_t started;          /* uv_now() when the relay began */
    zg_msec_t attempt_start;
    zg_msec_t connect_time;
    zg_sp_dir_t up, down;      /* client -> upstream, upstream -> client */
    char addrs[256];           /* $upstream_addr */
    size_t addrs_len;
    char ct[128];              /* $upstream_connect_time */
    size_t ct_len;
    char bsent[96], brecv[96]; /* $upstream_bytes_sent, $upstream_bytes_received */
    int attempts;
    zg_splice_t *sp;           /* proxy_splice: the relay, NULL = buffered */
    unsigned splice_wait : 1;  /* reads stopped: splice starts once every write is out */
    unsigned splice_failed : 1;
    unsigned timed : 1;        /* the current attempt's connect time is in ct */
    unsigned connected : 1;
    unsigned timer_open : 1;
};

/* a write of part of a chunk; the chunk's memory follows */
typedef struct {
    uv_write_t req;
    zg_sp_dir_t *d;
    size_t len;
    size_t cap;                /* ZG_STREAM_PROXY_CHUNK, or a one-off's size */
    char data[];
} zg_sp_chunk_t;

#define zg_sp_of(s) ((zg_sp_t *)(s)->ctx[zg_stream_proxy_module.index])

/* appends ", text" (or text first) to a per-attempt list; a full list stays as is */
static void zg_sp_list(char *buf, size_t cap, size_t *len, const char *text)
{
    int n = snprintf(buf + *len, cap - *len, "%s%s", *len ? ", " : "", text);

    if (n > 0 && *len + (size_t)n < cap) {
        *len += (size_t)n;
    } else {
        buf[*len] = '\0';
    }
}

/* the current attempt's connect time: "0.002", or "-" when it did not connect */
static void zg_sp_timed(zg_sp_t *p, int connected)
{
    char t[32];

    if (p->timed || p->attempts == 0) {
        return;
    }
    p->timed = 1;
    if (connected) {
        snprintf(t, sizeof(t), "%llu.%03llu", (unsigned long long)(p->connect_time / 1000),
                 (unsigned long long)(p->connect_time % 1000));
    } else {
        snprintf(t, sizeof(t), "-");
    }
    zg_sp_list(p->ct, sizeof(p->ct), &p->ct_len, t);
}

static void zg_sp_connect_next(zg_sp_t *p);

/* ---------------------------------------------------------------- relay */

static zg_sp_chunk_t *zg_sp_chunk(zg_sp_dir_t *d)
{
    zg_sp_chunk_t *c;

    if (d->spare != NULL) {
        c = (zg_sp_chunk_t *)d->spare;
        d->spare = NULL;
        return c;
    }
    c = malloc(sizeof(zg_sp_chunk_t) + ZG_STREAM_PROXY_CHUNK);
    if (c != NULL) {
        c->cap = ZG_STREAM_PROXY_CHUNK;
    }
    return c;
}

static void zg_sp_chunk_free(zg_sp_dir_t *d, zg_sp_chunk_t *c)
{
    if (d->spare == NULL && !d->p->s->finalized && c->cap == ZG_STREAM_PROXY_CHUNK) {
        d->spare = (char *)c;
    } else {
        free(c);
    }
}

/* The client's handle is the first member of its session and has the session as
 * data, so its data is itself; an upstream's handle has the zg_sp_t as data. */
static zg_sp_dir_t *zg_sp_dir_of(uv_stream_t *src)
{
    if (src->data == (void *)src) {
        return &zg_sp_of((zg_stream_session_t *)src->data)->up;
    }
    return &((zg_sp_t *)src->data)->down;
}

static void zg_sp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    zg_sp_dir_t *d = zg_sp_dir_of((uv_stream_t *)h);
    zg_sp_chunk_t *c;

    (void)hint;
    if (d->p->s->tls != NULL && d == &d->p->up) {
        /* listen ... ssl: records, decrypted by zg_sp_tls_read */
        *buf = uv_buf_init(zg_tls_inbuf(d->p->s->tls), ZG_TLS_READ_SIZE);
        return;
    }
    c = zg_sp_chunk(d);
    if (c == NULL) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    /* with a rate, no read takes more than a second's worth */
    *buf = uv_buf_init(c->data, d->rate > 0 && d->rate < ZG_STREAM_PROXY_CHUNK
                                    ? (unsigned)d->rate : ZG_STREAM_PROXY_CHUNK);
}

static void zg_sp_done_check(zg_sp_t *p)
{
    zg_stream_session_t *s = p->s;

    if (s->finalized) {
        return;
    }
    if (p->pc->half_close) {
        if (p->up.eof && p->down.eof && p->up.pending == 0 && p->down.pending == 0) {
            zg_stream_finalize(s, ZG_STREAM_OK);
        }
        return;
    }
    /* as nginx without proxy_half_close: one side ended and its bytes went out */
    if ((p->up.eof && p->up.pending == 0) || (p->down.eof && p->down.pending == 0)) {
        zg_stream_finalize(s, ZG_STREAM_OK);
    }
}

static void zg_sp_shut_done(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

static void zg_sp_read(uv_stream_t *src, ssize_t nread, const uv_buf_t *buf);
static void zg_sp_tls_read(zg_sp_dir_t *d, ssize_t nread);
static void zg_sp_tls_write(zg_sp_dir_t *d, zg_sp_chunk_t *c, size_t n);
static int zg_sp_tls_flush(zg_sp_t *p);

static void zg_sp_read_on(zg_sp_dir_t *d, int on)
{
    if (on && !d->reading && !d->eof && !d->limited && !d->p->splice_wait && d->p->sp == NULL) {
        if (uv_read_start(d->src, zg_sp_alloc, zg_sp_read) == 0) {
            d->reading = 1;
        }
    } else if (!on && d->reading) {
        uv_read_stop(d->src);
        d->reading = 0;
    }
}

static void zg_sp_wait_closed(uv_handle_t *h)
{
    zg_sp_dir_t *d = h->data;

    zg_stream_unref(d->p->s);
}

static void zg_sp_rate_wake(uv_timer_t *t)
{
    zg_sp_dir_t *d = t->data;

    d->limited = 0;
    if (!d->p->s->finalized && d->pending < ZG_STREAM_PROXY_HIGH) {
        zg_sp_read_on(d, 1);
    }
}

/* pauses reading d's source while it is ahead of its rate (nginx's limit_rate:
 * the bytes so far may not exceed rate * elapsed time) */
static void zg_sp_rate(zg_sp_dir_t *d)
{
    zg_sp_t *p = d->p;
    uint64_t now, due, elapsed;

    if (d->rate <= 0) {
        return;
    }
    now = uv_now(p->s->loop);
    elapsed = now - p->started;
    due = d->bytes * 1000 / (uint64_t)d->rate;
    if (due <= elapsed) {
        return;
    }
    if (d->wait == NULL) {
        d->wait = malloc(sizeof(uv_timer_t));
        if (d->wait == NULL) {
            return;
        }
        uv_timer_init(p->s->loop, d->wait);
        d->wait->data = d;
        zg_stream_ref(p->s);
    }
    zg_sp_read_on(d, 0);
    d->limited = 1;
    uv_timer_start(d->wait, zg_sp_rate_wake, due - elapsed, 0);
}

static void zg_sp_splice_ready(zg_sp_t *p);
static void zg_sp_bulk(zg_sp_t *p);

static void zg_sp_written(uv_write_t *req, int status)
{
    zg_sp_chunk_t *c = zg_data_of(req, zg_sp_chunk_t, req);
    zg_sp_dir_t *d = c->d;
    zg_sp_t *p = d->p;

    d->pending -= c->len;
    zg_sp_chunk_free(d, c);
    if (p->s->finalized) {
        return;
    }
    if (status < 0) {
        zg_log_error(ZG_LOG_INFO, 0, "writing to %s failed (%s) while proxying",
                     d == &p->up ? "upstream" : "client", uv_strerror(status));
        zg_stream_finalize(p->s, ZG_STREAM_OK);
        return;
    }
    p->active = uv_now(p->s->loop);
    if (p->splice_wait) {
        zg_sp_splice_ready(p);
        return;
    }
    if (d->pending < ZG_STREAM_PROXY_HIGH) {
        zg_sp_read_on(d, 1);
    }
    zg_sp_done_check(p);
}

static void zg_sp_eof(zg_sp_dir_t *d)
{
    zg_sp_t *p = d->p;

    d->eof = 1;
    zg_sp_read_on(d, 0);
    if (p->s->tls != NULL && d == &p->down) {
        /* the upstream ended: a close_notify goes after its last bytes */
        zg_tls_shutdown(p->s->tls);
        if (zg_sp_tls_flush(p) != ZG_OK) {
            return;
        }
    }
    if (p->pc->half_close && !d->shut_sent) {
        /* libuv sends the FIN once the queued writes are out */
        d->shut_sent = 1;
        if (uv_shutdown(&d->shut, d->dst, zg_sp_shut_done) != 0) {
            zg_stream_finalize(p->s, ZG_STREAM_OK);
            return;
        }
    }
    zg_sp_done_check(p);
}

/* writes the n bytes of c to d's destination (c is d's from then on): ZG_OK, or
 * ZG_ERROR (the session was finalized) */
static int zg_sp_send(zg_sp_dir_t *d, zg_sp_chunk_t *c, size_t len)
{
    zg_sp_t *p = d->p;
    uv_buf_t b = uv_buf_init(c->data, (unsigned)len);
    int n = uv_try_write(d->dst, &b, 1);

    if (n >= 0 && (size_t)n == len) {
        zg_sp_chunk_free(d, c);
        return ZG_OK;
    }
    if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
        zg_sp_chunk_free(d, c);
        zg_log_error(ZG_LOG_INFO, 0, "writing to %s failed (%s) while proxying",
                     d == &p->up ? "upstream" : "client", uv_strerror(n));
        zg_stream_finalize(p->s, ZG_STREAM_OK);
        return ZG_ERROR;
    }
    if (n < 0) {
        n = 0;
    }
    c->d = d;
    c->len = len - (size_t)n;
    b = uv_buf_init(c->data + n, (unsigned)c->len);
    if (uv_write(&c->req, d->dst, &b, 1, zg_sp_written) != 0) {
        free(c);
        zg_stream_finalize(p->s, ZG_STREAM_OK);
        return ZG_ERROR;
    }
    d->pending += c->len;
    if (d->pending >= ZG_STREAM_PROXY_HIGH) {
        zg_sp_read_on(d, 0); /* back-pressure: resumed by zg_sp_written */
    }
    return ZG_OK;
}

static void zg_sp_read(uv_stream_t *src, ssize_t nread, const uv_buf_t *buf)
{
    zg_sp_dir_t *d = zg_sp_dir_of(src);
    zg_sp_t *p = d->p;
    zg_sp_chunk_t *c;

    if (p->s->tls != NULL && d == &p->up) {
        zg_sp_tls_read(d, nread);
        return;
    }
    c = buf->base ? zg_data_of(buf->base, zg_sp_chunk_t, data) : NULL;
    if (nread <= 0) {
        if (c != NULL) {
            zg_sp_chunk_free(d, c);
        }
        if (nread == 0) {
            return;
        }
        if (nread == UV_EOF) {
            zg_sp_eof(d);
            return;
        }
        zg_log_error(ZG_LOG_INFO, 0, "reading from %s failed (%s) while proxying",
                     d == &p->up ? "client" : "upstream", uv_strerror((int)nread));
        zg_stream_finalize(p->s, ZG_STREAM_OK);
        return;
    }
    p->active = uv_now(p->s->loop);
    d->bytes += (uint64_t)nread;
    zg_sp_rate(d);
    if (p->s->tls != NULL) {
        zg_sp_tls_write(d, c, (size_t)nread);
        return;
    }
    if (nread == ZG_STREAM_PROXY_CHUNK) {
        zg_sp_bulk(p);
    }
    if (zg_sp_send(d, c, (size_t)nread) == ZG_OK) {
        zg_sp_splice_ready(p);
    }
}

/* ------------------------------------------ TLS (listen ... ssl): buffered path
 * The client's records are read into the TLS input buffer and decrypted into
 * chunks for the upstream; the upstream's bytes are sealed into records for the
 * client.  Plain sessions never come here. */

/* writes what TLS has for the client (records, alerts) after what is queued:
 * ZG_OK, or ZG_ERROR (the session was finalized) */
static int zg_sp_tls_out(zg_sp_t *p, zg_buf_t *b)
{
    zg_sp_chunk_t *c;

    if (zg_tls_seal(p->s->tls, b) != ZG_OK) {
        zg_buf_free(b);
        zg_stream_finalize(p->s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return ZG_ERROR;
    }
    if (b->len == 0) {
        zg_buf_free(b);
        return ZG_OK;
    }
    c = malloc(sizeof(*c) + b->len);
    if (c == NULL) {
        zg_buf_free(b);
        zg_stream_finalize(p->s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return ZG_ERROR;
    }
    c->cap = b->len; /* a one-off: freed, never kept as the spare */
    memcpy(c->data, b->data, b->len);
    size_t len = b->len;
    zg_buf_free(b);
    return zg_sp_send(&p->down, c, len);
}

static int zg_sp_tls_flush(zg_sp_t *p)
{
    zg_buf_t b = ZG_BUF_INIT;

    return zg_sp_tls_out(p, &b);
}

/* the upstream's n bytes in c, sealed for the client */
static void zg_sp_tls_write(zg_sp_dir_t *d, zg_sp_chunk_t *c, size_t n)
{
    zg_buf_t b = ZG_BUF_INIT;
    int rc = zg_buf_append(&b, c->data, n);

    zg_sp_chunk_free(d, c);
    if (rc != ZG_OK) {
        zg_buf_free(&b);
        zg_stream_finalize(d->p->s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }
    (void)zg_sp_tls_out(d->p, &b);
}

/* decrypts what the TLS connection holds into chunks for the upstream */
static void zg_sp_tls_drain(zg_sp_dir_t *d)
{
    zg_sp_t *p = d->p;

    while (!p->s->finalized && !d->eof) {
        zg_sp_chunk_t *c = zg_sp_chunk(d);
        if (c == NULL) {
            zg_stream_finalize(p->s, ZG_STREAM_INTERNAL_SERVER_ERROR);
            return;
        }
        ssize_t n = zg_tls_read(p->s->tls, c->data, ZG_STREAM_PROXY_CHUNK);
        if (n > 0) {
            d->bytes += (uint64_t)n;
            if (zg_sp_send(d, c, (size_t)n) != ZG_OK) {
                return;
            }
            continue;
        }
        zg_sp_chunk_free(d, c);
        if (n < 0) {
            zg_sp_eof(d); /* close_notify, or a broken record */
            return;
        }
        break;
    }
    if (!p->s->finalized) {
        (void)zg_sp_tls_flush(p); /* a KeyUpdate's answer, say */
    }
}

/* nread bytes of the client's records arrived in the TLS input buffer */
static void zg_sp_tls_read(zg_sp_dir_t *d, ssize_t nread)
{
    zg_sp_t *p = d->p;

    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        if (nread == UV_EOF) {
            zg_sp_eof(d);
            return;
        }
        zg_log_error(ZG_LOG_INFO, 0, "reading from client failed (%s) while proxying",
                     uv_strerror((int)nread));
        zg_stream_finalize(p->s, ZG_STREAM_OK);
        return;
    }
    p->active = uv_now(p->s->loop);
    if (zg_tls_feed(p->s->tls, (size_t)nread) != ZG_OK) {
        zg_stream_finalize(p->s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }
    zg_sp_tls_drain(d);
    if (!p->s->finalized && !d->eof) {
        zg_sp_rate(d); /* proxy_upload_rate, on the decrypted bytes */
    }
}

/* ---------------------------------------------------------------- splice */

/* The one condition under which the relay may go through splice(2): bytes that
 * must be seen or paced in user space (a rate, TLS) keep the buffered relay. */
static int zg_sp_splice_usable(zg_sp_t *p)
{
    return p->pc->splice && !p->splice_failed && p->up.rate == 0 && p->down.rate == 0
           && p->s->tls == NULL;
}

static void zg_sp_splice_done(void *data, int rc, int dir, int writing)
{
    zg_sp_t *p = data;

    if (rc < 0) {
        /* direction 0 reads the client and writes the upstream */
        zg_log_error(ZG_LOG_INFO, 0, "%s %s failed (%s) while proxying",
                     writing ? "writing to" : "reading from",
                     (dir == 0) == (writing != 0) ? "upstream" : "client", uv_strerror(rc));
    }
    zg_stream_finalize(p->s, ZG_STREAM_OK);
}

static void zg_sp_splice_closed(void *data)
{
    zg_sp_t *p = data;

    zg_stream_unref(p->s); /* the relay's reference: p lives until here */
}

/* A read filled a whole chunk: a bulk flow, which splice relays at a fraction of
 * the CPU (small messages are cheaper buffered: one recv and one send where splice
 * makes two calls and a pipe).  Reads stop both ways; the splice relay starts once
 * the bytes already read are out (zg_sp_splice_ready), the PROXY header and bytes
 * read behind an incoming one included. */
static void zg_sp_bulk(zg_sp_t *p)
{
    if (p->splice_wait || p->sp != NULL || p->up.eof || p->down.eof
        || !zg_sp_splice_usable(p)) {
        return;
    }
    p->splice_wait = 1;
    zg_sp_read_on(&p->up, 0);
    zg_sp_read_on(&p->down, 0);
}

static void zg_sp_relay(zg_sp_t *p);

static void zg_sp_splice_ready(zg_sp_t *p)
{
    if (p->splice_wait && !p->s->finalized && p->up.pending == 0 && p->down.pending == 0) {
        zg_sp_relay(p);
    }
}

/* the relay from here on: splice(2) when usable and it starts, else buffered */
static void zg_sp_relay(zg_sp_t *p)
{
    uv_os_fd_t a, b;
    int rc;

    p->splice_wait = 0;
    if (zg_sp_splice_usable(p) && uv_fileno((uv_handle_t *)p->up.src, &a) == 0
        && uv_fileno((uv_handle_t *)p->up.dst, &b) == 0) {
        zg_stream_ref(p->s);
        rc = zg_splice_start(&p->sp, p->s->loop, a, b, p->pc->half_close, zg_sp_splice_done,
                             p);
        if (rc == 0) {
            if (zg_proc_stats != NULL) {
                zg_proc_bump(&zg_proc_stats->workers[zg_worker_slot].stream_spliced);
            }
            return;
        }
        p->sp = NULL;
        p->splice_failed = 1;
        zg_stream_unref(p->s);
        zg_log_error(ZG_LOG_WARN, 0, "splice relay not started (%s), relaying through buffers",
                     uv_strerror(rc));
    }
    zg_sp_read_on(&p->up, 1);
    zg_sp_read_on(&p->down, 1);
}

/* ---------------------------------------------------------------- connect */

static void zg_sp_peer_closed(uv_handle_t *h)
{
    zg_sp_peer_t *pe = zg_data_of(h, zg_sp_peer_t, tcp);
    zg_stream_session_t *s = pe->p->s;

    free(pe);
    zg_stream_unref(s);
}

static void zg_sp_peer_close(zg_sp_t *p)
{
    zg_sp_peer_t *pe = p->peer;

    if (pe != NULL) {
        p->peer = NULL;
        uv_close((uv_handle_t *)&pe->tcp, zg_sp_peer_closed);
    }
}

static void zg_sp_timer(uv_timer_t *t);

static void zg_sp_connect_failed(zg_sp_t *p, const char *what)
{
    zg_stream_session_t *s = p->s;
    zg_stream_proxy_conf_t *pc = p->pc;
    zg_msec_t now = zg_time_msec();
    char addr[64];

    zg_log_error(ZG_LOG_ERR, 0,
                 "%s while connecting to upstream, client: %s, server: %s, upstream: \"%s\"",
                 what, zg_stream_addr_text(s, addr, sizeof(addr)), s->ls->addr.text,
                 p->pick.addr ? p->pick.addr->text : "-");
    zg_sp_timed(p, 0);
    zg_sp_peer_close(p);
    zg_upstream_free(pc->upstream, &p->pick, 1, now);
    if (!pc->next_upstream
        || (pc->next_upstream_tries > 0 && p->pick.tries >= pc->next_upstream_tries)
        || (pc->next_upstream_timeout > 0 && now - s->start >= pc->next_upstream_timeout)) {
        zg_stream_finalize(s, ZG_STREAM_BAD_GATEWAY);
        return;
    }
    zg_sp_connect_next(p);
}

/* what goes to the upstream before the relay: the PROXY header (proxy_protocol on)
 * and the client's bytes read behind an incoming PROXY header */
static int zg_sp_send_first(zg_sp_t *p)
{
    zg_stream_session_t *s = p->s;
    zg_sp_chunk_t *c;
    size_t hl = 0;
    uv_buf_t b;

    if (!p->pc->proxy_protocol && s->preread_len == 0) {
        return ZG_OK;
    }
    c = malloc(sizeof(*c) + 128 + s->preread_len);
    if (c == NULL) {
        return ZG_ERROR;
    }
    c->cap = 128 + s->preread_len;
    if (p->pc->proxy_protocol) {
        hl = zg_pp_write(p->pc->proxy_protocol, s->vars.remote,
                         (const struct sockaddr *)&s->local, (unsigned char *)c->data, 128);
    }
    if (s->preread_len > 0) {
        memcpy(c->data + hl, s->preread, s->preread_len);
    }
    c->d = &p->up;
    c->len = hl + s->preread_len;
    p->up.bytes += s->preread_len;
    b = uv_buf_init(c->data, (unsigned)c->len);
    if (uv_write(&c->req, p->up.dst, &b, 1, zg_sp_written) != 0) {
        free(c);
        return ZG_ERROR;
    }
    p->up.pending += c->len;
    return ZG_OK;
}

static void zg_sp_connected(uv_connect_t *req, int status)
{
    zg_sp_peer_t *pe = req->data;
    zg_sp_t *p = pe->p;

    if (p->peer != pe || p->s->finalized) {
        return; /* an attempt given up (its handle is closing) */
    }
    if (status < 0) {
        char what[96];
        snprintf(what, sizeof(what), "connect() failed (%d: %s)", -status, uv_strerror(status));
        zg_sp_connect_failed(p, what);
        return;
    }
    p->connected = 1;
    p->connect_time = zg_time_msec() - p->attempt_start;
    zg_sp_timed(p, 1);
    uv_tcp_nodelay(&pe->tcp, 1);
    p->up.src = (uv_stream_t *)&p->s->tcp;
    p->up.dst = (uv_stream_t *)&pe->tcp;
    p->down.src = (uv_stream_t *)&pe->tcp;
    p->down.dst = (uv_stream_t *)&p->s->tcp;
    p->active = uv_now(p->s->loop);
    p->started = p->active;
    p->up.rate = p->pc->upload_rate;
    p->down.rate = p->pc->download_rate;
    if (p->pc->timeout > 0) {
        uv_timer_start(&p->timer, zg_sp_timer, p->pc->timeout, 0);
    } else {
        uv_timer_stop(&p->timer);
    }
    if (zg_sp_send_first(p) != ZG_OK) {
        zg_stream_finalize(p->s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }
    /* buffered first: a bulk flow switches to splice (zg_sp_bulk) */
    zg_sp_read_on(&p->up, 1);
    zg_sp_read_on(&p->down, 1);
    if (p->s->tls != NULL && zg_tls_pending(p->s->tls)) {
        zg_sp_tls_drain(&p->up); /* records that came with the end of the handshake */
    }
}

static void zg_sp_timer(uv_timer_t *t)
{
    zg_sp_t *p = t->data;
    uint64_t now, idle;

    if (p->s->finalized) {
        return;
    }
    if (!p->connected) {
        zg_sp_connect_failed(p, "upstream timed out (110: Connection timed out)");
        return;
    }
    now = uv_now(p->s->loop);
    if (p->sp != NULL && p->sp->active > p->active) {
        p->active = p->sp->active;
    }
    idle = now - p->active;
    if (idle < p->pc->timeout) {
        uv_timer_start(&p->timer, zg_sp_timer, p->pc->timeout - idle, 0);
        return;
    }
    zg_log_error(ZG_LOG_INFO, 0, "connection timed out (proxy_timeout) while proxying");
    zg_stream_finalize(p->s, ZG_STREAM_OK);
}

static void zg_sp_connect_next(zg_sp_t *p)
{
    zg_stream_session_t *s = p->s;
    zg_upstream_conf_t *u = p->pc->upstream;
    zg_sp_peer_t *pe;
    int rc;

    if (zg_upstream_get(u, &p->pick, zg_time_msec()) != ZG_OK) {
        if (p->pick.tries == 0) {
            zg_log_error(ZG_LOG_ERR, 0, "no live upstreams while connecting to upstream \"%s\"",
                         u->name);
        }
        zg_stream_finalize(s, ZG_STREAM_BAD_GATEWAY);
        return;
    }
    zg_sp_list(p->addrs, sizeof(p->addrs), &p->addrs_len, p->pick.addr->text);
    p->attempts++;
    p->timed = 0;
    pe = calloc(1, sizeof(*pe));
    if (pe == NULL) {
        zg_upstream_free(u, &p->pick, 0, zg_time_msec());
        zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }
    pe->p = p;
    uv_tcp_init(s->loop, &pe->tcp);
    pe->tcp.data = p;
    pe->req.data = pe;
    zg_stream_ref(s);
    p->peer = pe;
    p->attempt_start = zg_time_msec();
    uv_timer_start(&p->timer, zg_sp_timer, p->pc->connect_timeout > 0 ? p->pc->connect_timeout : 1, 0);
    if (p->pick.addr->sa.ss_family == AF_UNIX) {
        /* connected (or refused) at once; libuv's uv_tcp_connect is for IP only */
        zg_sp_connected(&pe->req, zg_unix_connect(&pe->tcp, p->pick.addr));
        return;
    }
    rc = uv_tcp_connect(&pe->req, &pe->tcp, (const struct sockaddr *)&p->pick.addr->sa,
                        zg_sp_connected);
    if (rc != 0) {
        char what[96];
        snprintf(what, sizeof(what), "connect() failed (%d: %s)", -rc, uv_strerror(rc));
        zg_sp_connect_failed(p, what);
    }
}

static void zg_sp_timer_closed(uv_handle_t *h)
{
    zg_sp_t *p = h->data;

    zg_stream_unref(p->s);
}

/* the content handler */
static int zg_sp_handler(zg_stream_session_t *s)
{
    zg_stream_proxy_conf_t *pc = zg_stream_conf(s, zg_stream_proxy_module);
    zg_sp_t *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return ZG_DONE;
    }
    s->ctx[zg_stream_proxy_module.index] = p; /* freed with the session */
    p->s = s;
    p->pc = pc;
    p->up.p = p;
    p->down.p = p;
    p->connect_time = ZG_UNSET_MSEC;
    zg_upstream_pick_init(&p->pick);
    uv_timer_init(s->loop, &p->timer);
    p->timer.data = p;
    p->timer_open = 1;
    zg_stream_ref(s);
    zg_sp_connect_next(p);
    return ZG_DONE;
}

static void zg_sp_release(zg_stream_session_t *s)
{
    zg_sp_t *p = zg_sp_of(s);

    if (p == NULL) {
        return;
    }
    if (p->sp != NULL) {
        p->up.bytes += p->sp->bytes[0];
        p->down.bytes += p->sp->bytes[1];
        zg_splice_close(p->sp, zg_sp_splice_closed);
        p->sp = NULL;
    }
    if (p->pick.peer >= 0) {
        zg_upstream_bytes(p->pc->upstream, p->pick.peer, p->up.bytes, p->down.bytes);
        zg_upstream_free(p->pc->upstream, &p->pick, 0, zg_time_msec());
    }
    zg_sp_peer_close(p);
    if (p->timer_open) {
        p->timer_open = 0;
        uv_close((uv_handle_t *)&p->timer, zg_sp_timer_closed);
    }
    free(p->up.spare);
    free(p->down.spare);
    p->up.spare = p->down.spare = NULL;
    if (p->up.wait != NULL) {
        uv_close((uv_handle_t *)p->up.wait, zg_sp_wait_closed);
    }
    if (p->down.wait != NULL) {
        uv_close((uv_handle_t *)p->down.wait, zg_sp_wait_closed);
    }
    s->bytes_received = p->up.bytes;
    s->bytes_sent = p->down.bytes;

    /* for the log phase, which runs next: every attempt but the last moved no bytes */
    zg_sp_timed(p, 0);
    s->vars.bytes_received = p->up.bytes;
    s->vars.bytes_sent = p->down.bytes;
    if (p->attempts > 0) {
        size_t ls = 0, lr = 0;
        char n[24];
        for (int i = 0; i < p->attempts - 1; i++) {
            zg_sp_list(p->bsent, sizeof(p->bsent), &ls, "0");
            zg_sp_list(p->brecv, sizeof(p->brecv), &lr, "0");
        }
        snprintf(n, sizeof(n), "%llu", (unsigned long long)p->up.bytes);
        zg_sp_list(p->bsent, sizeof(p->bsent), &ls, n);
        snprintf(n, sizeof(n), "%llu", (unsigned long long)p->down.bytes);
        zg_sp_list(p->brecv, sizeof(p->brecv), &lr, n);
        s->vars.upstream_addr = (zg_str_t){ .data = p->addrs, .len = p->addrs_len };
        s->vars.upstream_connect_time = (zg_str_t){ .data = p->ct, .len = p->ct_len };
        s->vars.upstream_bytes_sent = (zg_str_t){ .data = p->bsent, .len = ls };
        s->vars.upstream_bytes_received = (zg_str_t){ .data = p->brecv, .len = lr };
    }
}

/* ---------------------------------------------------------------- config */

static int zg_sp_pass(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_stream_proxy_conf_t *pc = conf;

    (void)cmd;
    if (pc->pass.data != NULL) {
        return zg_conf_duplicate(cf);
    }
    pc->pass = cf->args[1];
    pc->pass_file = cf->file;
    pc->pass_line = cf->line;
    return zg_stream_set_handler(cf, zg_sp_handler);
}

/* proxy_pass names an upstream of the stream block (declared anywhere in it), else
 * an address with its port */
static int zg_sp_init_main_conf(zg_cf_t *cf, void *conf)
{
    zg_stream_core_main_conf_t *scf = zg_stream_core_main_conf(cf->conf);
    zg_addr_t addr;
    int rc;

    (void)conf;
    for (int i = 0; i < scf->nservers; i++) {
        zg_stream_proxy_conf_t *pc = zg_conf_module(scf->servers[i]->conf, zg_stream_proxy_module);
        zg_str_t *v = &pc->pass;
        if (v->data == NULL) {
            continue;
        }
        pc->upstream = zg_upstream_find_in(cf->conf, v->data, 0, 1);
        if (pc->upstream != NULL) {
            continue;
        }
        rc = zg_conf_parse_addr(v->data, v->len, 0, &addr);
        if (rc == ZG_ERROR && zg_conf_parse_addr(v->data, v->len, 1, &addr) != ZG_ERROR) {
            return zg_conf_error_at(cf, pc->pass_file, pc->pass_line,
                                    "no port in upstream \"%s\"", v->data);
        }
        if (rc == ZG_DECLINED) {
            return zg_conf_error_at(cf, pc->pass_file, pc->pass_line,
                                    "host not found in upstream \"%s\"", v->data);
        }
        if (rc != ZG_OK) {
            return zg_conf_error_at(cf, pc->pass_file, pc->pass_line,
                                    "invalid URL prefix in \"%s\"", v->data);
        }
        pc->upstream = zg_upstream_implicit_in(cf, v->data, &addr, pc->pass_file,
                                               pc->pass_line, 1);
        if (pc->upstream == NULL) {
            return zg_conf_nomem(cf);
        }
    }
    return ZG_OK;
}

static void *zg_sp_create_conf(zg_conf_t *conf)
{
    zg_stream_proxy_conf_t *pc = zg_conf_alloc(conf, sizeof(*pc));

    if (pc != NULL) {
        pc->connect_timeout = ZG_UNSET_MSEC;
        pc->timeout = ZG_UNSET_MSEC;
        pc->next_upstream = ZG_UNSET;
        pc->next_upstream_tries = ZG_UNSET;
        pc->next_upstream_timeout = ZG_UNSET_MSEC;
        pc->half_close = ZG_UNSET;
        pc->proxy_protocol = ZG_UNSET;
        pc->upload_rate = ZG_UNSET_SIZE;
        pc->download_rate = ZG_UNSET_SIZE;
        pc->splice = ZG_UNSET;
    }
    return pc;
}

static int zg_sp_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_stream_proxy_conf_t *p = parent, *c = child;

    (void)cf;
    ZG_CONF_MERGE(c, p, connect_timeout, ZG_UNSET_MSEC);
    ZG_CONF_MERGE(c, p, timeout, ZG_UNSET_MSEC);
    ZG_CONF_MERGE(c, p, next_upstream, ZG_UNSET);
    ZG_CONF_MERGE(c, p, next_upstream_tries, ZG_UNSET);
    ZG_CONF_MERGE(c, p, next_upstream_timeout, ZG_UNSET_MSEC);
    ZG_CONF_MERGE(c, p, half_close, ZG_UNSET);
    ZG_CONF_MERGE(c, p, proxy_protocol, ZG_UNSET);
    ZG_CONF_MERGE(c, p, upload_rate, ZG_UNSET_SIZE);
    ZG_CONF_MERGE(c, p, download_rate, ZG_UNSET_SIZE);
    ZG_CONF_MERGE(c, p, splice, ZG_UNSET);
    if (c->splice == ZG_UNSET) {
        c->splice = 1;
    }
    if (c->upload_rate == ZG_UNSET_SIZE) {
        c->upload_rate = 0;
    }
    if (c->download_rate == ZG_UNSET_SIZE) {
        c->download_rate = 0;
    }
    /* the stream level's defaults (it is merged into its servers only) */
    if (c->connect_timeout == ZG_UNSET_MSEC) {
        c->connect_timeout = 60000;
    }
    if (c->timeout == ZG_UNSET_MSEC) {
        c->timeout = 600000;
    }
    if (c->next_upstream == ZG_UNSET) {
        c->next_upstream = 1;
    }
    if (c->next_upstream_tries == ZG_UNSET) {
        c->next_upstream_tries = 0;
    }
    if (c->next_upstream_timeout == ZG_UNSET_MSEC) {
        c->next_upstream_timeout = 0;
    }
    if (c->half_close == ZG_UNSET) {
        c->half_close = 0;
    }
    if (c->proxy_protocol == ZG_UNSET) {
        c->proxy_protocol = 0;
    }
    return ZG_OK;
}

/* proxy_protocol on|off (nginx: on sends version 1); zonegate also takes v1 | v2 */
static int zg_sp_proxy_protocol(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_stream_proxy_conf_t *pc = conf;
    zg_str_t *v = &cf->args[1];

    (void)cmd;
    if (pc->proxy_protocol != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    if (zg_conf_eq(v, "on") || zg_conf_eq(v, "v1")) {
        pc->proxy_protocol = 1;
    } else if (zg_conf_eq(v, "v2")) {
        pc->proxy_protocol = 2;
    } else if (zg_conf_eq(v, "off")) {
        pc->proxy_protocol = 0;
    } else {
        return zg_conf_error(cf, "invalid value \"%s\" in \"%s\" directive, it must be "
                             "\"on\", \"off\", \"v1\" or \"v2\"", v->data, cf->name);
    }
    return ZG_OK;
}

static void zg_sp_metrics(zg_buf_t *b, const zg_conf_t *conf)
{
    uint64_t n = 0;

    if (zg_stream_core_main_conf(conf) == NULL || zg_stream_core_main_conf(conf)->nlistens == 0) {
        return;
    }
    for (int i = 0; zg_proc_stats != NULL && i < ZG_PROC_SLOTS; i++) {
        n += __atomic_load_n(&zg_proc_stats->workers[i].stream_spliced, __ATOMIC_RELAXED);
    }
    zg_admin_family(b, "zonegate_stream_splice_sessions_total", "counter",
                    "Stream sessions relayed with splice(2) (proxy_splice).");
    zg_admin_sample(b, "zonegate_stream_splice_sessions_total", n, NULL);
}

#define ZG_SP(f) offsetof(zg_stream_proxy_conf_t, f)

static const zg_command_t zg_sp_commands[] = {
    { "proxy_pass", ZG_CTX_STREAM_SRV, 0, 1, 1, zg_sp_pass, ZG_LOC_CONF, 0, NULL },
    { "proxy_connect_timeout", ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_SP(connect_timeout), NULL },
    { "proxy_timeout", ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_SP(timeout), NULL },
    { "proxy_next_upstream", ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      ZG_SP(next_upstream), NULL },
    { "proxy_next_upstream_tries", ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_conf_set_num,
      ZG_LOC_CONF, ZG_SP(next_upstream_tries), NULL },
    { "proxy_next_upstream_timeout", ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_conf_set_msec,
      ZG_LOC_CONF, ZG_SP(next_upstream_timeout), NULL },
    { "proxy_half_close", ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      ZG_SP(half_close), NULL },
    { "proxy_upload_rate", ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_conf_set_size, ZG_LOC_CONF,
      ZG_SP(upload_rate), NULL },
    { "proxy_download_rate", ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_conf_set_size, ZG_LOC_CONF,
      ZG_SP(download_rate), NULL },
    { "proxy_protocol", ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_sp_proxy_protocol, ZG_LOC_CONF,
      0, NULL },
    { "proxy_splice", ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      ZG_SP(splice), NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_stream_proxy_module = {
    .name = "stream_proxy",
    .commands = zg_sp_commands,
    .init_main_conf = zg_sp_init_main_conf,
    .create_loc_conf = zg_sp_create_conf,
    .merge_loc_conf = zg_sp_merge_conf,
    .stream_release = zg_sp_release,
    .metrics = zg_sp_metrics,
};
