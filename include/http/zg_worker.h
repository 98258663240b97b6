/* zg_worker.h — one worker process: a libuv loop, the client connections it
 * accepted, and the output queues both sides of a proxied request write through. */
#ifndef ZG_WORKER_H
#define ZG_WORKER_H

#include <string.h>
#include <uv.h>

#include "zg_buf.h"
#include "zg_conf.h"
#include "zg_deadline.h"
#include "zg_http.h"
#include "zg_http_core.h"
#include "zg_queue.h"
#include "zg_tls.h"


typedef struct zg_outq_poll_s zg_outq_poll_t;
typedef struct zg_outq_rate_s zg_outq_rate_t; /* http/zg_outq_rate.c */

/* Bytes to write to a stream, in order.  Appends go to `buf`; zg_outq_flush writes
 * what it can at once (uv_try_write) and queues a copy of the rest.
 *
 * A plain TCP stream may end its queue with a file segment (zg_outq_sendfile):
 * the kernel copies it with sendfile(2) once the bytes before it are written; bytes
 * appended after it wait in `b` until it is sent.  zg_outq_flush and the socket's
 * writability drive it (zg_outq_file_send).
 *
 * A send budget (limit_rate, `rate`: NULL = none) holds the bytes flushed beyond it
 * back (counted in `inflight`, so that `drained` waits for them) and caps the count
 * handed to sendfile; its timer sends more as the budget grows. */
typedef struct {
    zg_buf_t b;           /* bytes not yet handed to the stream */
    size_t inflight;      /* bytes queued in uv_write requests not yet done */
    uv_stream_t *stream;
    void (*drained)(void *data); /* called when inflight drops to 0 (may be NULL) */
    void (*failed)(void *data, int status); /* a queued write failed */
    void *data;
    zg_tls_t *tls;        /* set: appends are plaintext, sealed into records by flush */
    int file_fd;          /* the file segment's descriptor (owned, while `file`) */
    int64_t file_off;     /* where the rest of it starts */
    int64_t file_left;    /* bytes of it not yet sent */
    zg_outq_poll_t *poll; /* waits for the socket to take more of the file */
    zg_outq_rate_t *rate; /* the send budget (limit_rate); NULL = none */
    unsigned file : 1;    /* a file segment is queued */
    unsigned cork : 1;    /* TCP_CORK is set until the file segment is sent (tcp_nopush) */
} zg_outq_t;

void zg_outq_init(zg_outq_t *q, uv_stream_t *s, void *data);

static inline int zg_outq_append(zg_outq_t *q, const void *p, size_t n)
{
    return zg_buf_append(&q->b, p, n);
}
int zg_outq_printf(zg_outq_t *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* fast appends for the hot path (no printf) */
int zg_outq_str(zg_outq_t *q, const char *s);
int zg_outq_num(zg_outq_t *q, uint64_t n);
int zg_outq_hex(zg_outq_t *q, uint64_t n);
/* ZG_OK (all written or queued) or ZG_ERROR (write error: the stream is broken) */
int zg_outq_flush(zg_outq_t *q);
/* what is not yet written: queued memory and the file segment's rest */
size_t zg_outq_pending(const zg_outq_t *q);
void zg_outq_free(zg_outq_t *q);
/* Queues len bytes of the file fd from off, after what is in the queue (plain TCP
 * streams only, one segment at a time); the queue owns fd from then on and closes
 * it when sent or freed.  cork: TCP_CORK the socket until the segment is sent
 * (tcp_nopush), so that the head and the file's first bytes share packets.
 * ZG_OK (sent or queued: zg_outq_pending tells) or ZG_ERROR (fd closed). */
int zg_outq_sendfile(zg_outq_t *q, int fd, int64_t off, int64_t len, int cork);
/* Drops a file segment not yet sent (the stream is closing). */
void zg_outq_file_stop(zg_outq_t *q);

/* ---- the send budget (http/zg_outq_rate.c) ---- */
/* Limits what is written from now on to `after` bytes, then rate bytes a second
 * (limit_rate, limit_rate_after); a budget already set starts again.  ZG_OK or
 * ZG_ERROR (no memory: no limit). */
int zg_outq_rate_start(zg_outq_t *q, uint64_t rate, uint64_t after);
/* The response it limits is queued whole: the budget ends once the queue drained. */
void zg_outq_rate_end(zg_outq_t *q);
/* Drops the budget and the bytes it holds back (the stream is closing). */
void zg_outq_rate_stop(zg_outq_t *q);
/* 1 while it holds bytes back */
int zg_outq_rate_held(const zg_outq_t *q);
/* the budget's arithmetic: what may go now, elapsed_ms after the start with sent
 * bytes gone (8 KB at once, then rate bytes a second, after `after` bytes) */
uint64_t zg_rate_budget(uint64_t rate, uint64_t after, uint64_t elapsed_ms, uint64_t sent);
/* for zg_worker.c: zg_outq_flush through the budget (b is not empty, no file);
 * the bytes the budget allows now (0: wait); n of them were sent; the budget is
 * spent: its timer goes on (ZG_OK or ZG_ERROR); the queue drained */
int zg_outq_rate_flush(zg_outq_t *q);
size_t zg_outq_rate_budget(zg_outq_t *q);
void zg_outq_rate_sent(zg_outq_t *q, size_t n);
int zg_outq_rate_wait(zg_outq_t *q);
void zg_outq_rate_idle(zg_outq_t *q);
/* internals zg_outq_rate.c shares: writes n bytes now or queues a copy (not
 * counted in inflight: the caller counted them); ZG_OK or ZG_ERROR.  *now: how
 * many were written at once */
int zg_outq_write_raw(zg_outq_t *q, const char *p, size_t n, size_t *now);
void zg_outq_file_send(zg_outq_t *q);


typedef struct zg_conn_s {
    uv_tcp_t tcp;
    zg_deadline_t timer;        /* header / keep-alive / body / send deadline */
    uv_shutdown_t shutdown;
    zg_worker_t *w;
    zg_listen_t *ls;
    struct sockaddr_storage peer;
    zg_http_in_t *in;
    zg_request_t *req;          /* the request being served (one at a time) */
    zg_request_t *rmem;         /* its memory, reused by the next request */
    zg_outq_t out;
    zg_tls_t *tls;              /* a TLS connection (listen ... ssl); NULL = plain */
    zg_queue_t link;            /* in the worker's list of connections */
    uint64_t serial;
    uint64_t nrequests;
    int handles;                /* open uv handles; freed when 0 */
    unsigned reading : 1;       /* uv_read_start active */
    unsigned closing : 1;
    unsigned close_after : 1;   /* close once the output is written */
    unsigned idle : 1;          /* between requests */
    unsigned lingering : 1;     /* write side shut, draining the client's bytes */
    unsigned in_parser : 1;     /* inside zg_http_in_* (handlers must not re-enter) */
    unsigned want_resume : 1;
    unsigned want_next : 1;
    unsigned tls_pumping : 1;   /* inside zg_conn_tls_pump */
    unsigned nodelay : 1;       /* TCP_NODELAY is set (tcp_nodelay) */
    char addr_text[64];
} zg_conn_t;

struct zg_worker_s {
    uv_loop_t *loop;
    zg_conf_t *conf;
    int slot;
    uv_tcp_t *listeners;
    int nlisteners;
    uv_signal_t sig_term, sig_int, sig_quit, sig_usr1, sig_hup;
#ifdef ZG_DEBUG
    uv_signal_t sig_debug;
#endif
    int chan;                   /* the master's log channel */
    const struct zg_worker_setup_s *setup;
    uv_poll_t chan_poll;
    uv_timer_t quit_timer;
    zg_queue_t conns;
    int nconns;
    uint64_t serial;
    uint64_t fd_limit;          /* RLIMIT_NOFILE, 0 = unknown */
    unsigned quitting : 1;
};

/* What the process layer does inside a worker, at the points the worker reaches
 * them (privilege drop and sandbox: process/zg_priv.c).  Each returns ZG_OK or
 * ZG_ERROR (logged; the worker then exits with 2). */
typedef struct zg_worker_setup_s {
    int (*drop)(const zg_conf_t *conf);         /* first: give up privileges */
    int (*sandbox)(const zg_conf_t *conf);      /* set up, before the loop runs */
    int (*logs)(int chan, const zg_conf_t *conf); /* the master sent reopened logs */
} zg_worker_setup_t;

/* Runs a worker on conf's already-open listening sockets, chan being its end of the
 * master's log channel.  The modules' init_worker hooks run once the loop and the
 * listeners are ready, quit_worker when a graceful stop begins, exit_worker after
 * the loop stopped.  Returns the exit code: 2 = could not set up, not to be
 * respawned. */
int zg_worker_run(zg_conf_t *conf, int slot, int chan, const zg_worker_setup_t *setup);

/* Reading from the client on/off (backpressure, delays). */
void zg_conn_read(zg_conn_t *c, int on);
/* Closes the connection (aborting its request if any). */
void zg_conn_close(zg_conn_t *c);
/* The request finished and its response is queued: keep-alive or close. */
void zg_conn_request_done(zg_conn_t *c, int keepalive);
/* Go on parsing the request body (after on_head); safe inside parser handlers. */
void zg_conn_body(zg_conn_t *c);
/* the client's address as text */
const char *zg_conn_addr_text(zg_conn_t *c);
/* TCP_NODELAY on or off, if not so already (tcp_nodelay) */
static inline void zg_conn_nodelay(zg_conn_t *c, int on)
{
    if ((unsigned)on != c->nodelay) {
        c->nodelay = on ? 1 : 0;
        uv_tcp_nodelay(&c->tcp, on);
    }
}
/* (Re)arms the connection deadline; 0 stops it. */
void zg_conn_timer(zg_conn_t *c, zg_msec_t ms);

#endif
