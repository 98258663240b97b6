/* zg_ssl_stream.c — the TLS handshake of a stream session (see zg_ssl_stream.h),
 * driven through the memory BIOs of http/zg_tls.c on the worker's loop. */
#include "zg_ssl_stream.h"

#include <stdlib.h>
#include <string.h>

#include "zg_log.h"
#include "zg_ssl.h"
#include "zg_tls.h"

typedef struct {
    uv_timer_t timer;              /* ssl_handshake_timeout */
    zg_stream_session_t *s;
    int verify;                    /* ssl_verify_client */
    unsigned timer_open : 1;
} zg_ssl_hs_t;

typedef struct {
    uv_write_t req;
    zg_stream_session_t *s;
    char data[];
} zg_ssl_wr_t;

#define zg_ssl_hs_of(s) ((zg_ssl_hs_t *)(s)->ctx[zg_ssl_module.index])

static void zg_ssl_hs_written(uv_write_t *req, int status)
{
    zg_ssl_wr_t *wr = zg_data_of(req, zg_ssl_wr_t, req);
    zg_stream_session_t *s = wr->s;

    free(wr);
    if (status < 0 && !s->finalized) {
        zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
    }
}

/* sends what the handshake has for the client: ZG_OK or ZG_ERROR */
static int zg_ssl_hs_send(zg_stream_session_t *s)
{
    zg_buf_t b = ZG_BUF_INIT;
    zg_ssl_wr_t *wr;
    uv_buf_t ub;

    if (zg_tls_seal(s->tls, &b) != ZG_OK) {
        zg_buf_free(&b);
        return ZG_ERROR;
    }
    if (b.len == 0) {
        zg_buf_free(&b);
        return ZG_OK;
    }
    wr = malloc(sizeof(*wr) + b.len);
    if (wr == NULL) {
        zg_buf_free(&b);
        return ZG_ERROR;
    }
    wr->s = s;
    memcpy(wr->data, b.data, b.len);
    ub = uv_buf_init(wr->data, (unsigned)b.len);
    zg_buf_free(&b);
    if (uv_write(&wr->req, (uv_stream_t *)&s->tcp, &ub, 1, zg_ssl_hs_written) != 0) {
        free(wr);
        return ZG_ERROR;
    }
    return ZG_OK;
}

static void zg_ssl_hs_timer_closed(uv_handle_t *h)
{
    zg_ssl_hs_t *hs = h->data;

    zg_stream_unref(hs->s);
}

static void zg_ssl_hs_timer_close(zg_ssl_hs_t *hs)
{
    if (hs->timer_open) {
        hs->timer_open = 0;
        uv_close((uv_handle_t *)&hs->timer, zg_ssl_hs_timer_closed);
    }
}

static void zg_ssl_hs_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    zg_stream_session_t *s = h->data;

    (void)hint;
    *buf = uv_buf_init(zg_tls_inbuf(s->tls), ZG_TLS_READ_SIZE);
}

/* n more bytes in the input buffer: on with the handshake */
static void zg_ssl_hs_step(zg_stream_session_t *s, size_t n)
{
    zg_ssl_hs_t *hs = zg_ssl_hs_of(s);
    char addr[64], why[256];
    const char *fails;
    int rc;

    if (zg_tls_feed(s->tls, n) != ZG_OK) {
        zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }
    rc = zg_tls_handshake(s->tls);
    if (zg_ssl_hs_send(s) != ZG_OK || rc == ZG_ERROR) {
        zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }
    if (rc == ZG_AGAIN) {
        return;
    }
    uv_read_stop((uv_stream_t *)&s->tcp);
    zg_ssl_hs_timer_close(hs);
    fails = zg_ssl_verify_fails(s->vars.ssl, hs->verify, why, sizeof(why));
    if (fails != NULL) {
        zg_log_error(ZG_LOG_INFO, 0, "%s while SSL handshaking, client: %s, server: %s", fails,
                     zg_stream_addr_text(s, addr, sizeof(addr)), s->ls->addr.text);
        zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }
    zg_stream_resume(s);
}

static void zg_ssl_hs_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    zg_stream_session_t *s = h->data;
    char addr[64];

    (void)buf;
    if (nread == 0 || s->finalized) {
        return;
    }
    if (nread < 0) {
        zg_log_error(ZG_LOG_INFO, 0, "client closed connection while SSL handshaking, "
                     "client: %s, server: %s", zg_stream_addr_text(s, addr, sizeof(addr)),
                     s->ls->addr.text);
        zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }
    zg_ssl_hs_step(s, (size_t)nread);
}

static void zg_ssl_hs_timeout(uv_timer_t *t)
{
    zg_ssl_hs_t *hs = t->data;
    char addr[64];

    zg_log_error(ZG_LOG_INFO, 0, "client timed out while SSL handshaking, client: %s, "
                 "server: %s", zg_stream_addr_text(hs->s, addr, sizeof(addr)),
                 hs->s->ls->addr.text);
    zg_stream_finalize(hs->s, ZG_STREAM_INTERNAL_SERVER_ERROR);
}

int zg_ssl_stream_handler(zg_stream_session_t *s)
{
    zg_msec_t timeout;
    zg_ssl_hs_t *hs;

    if (s->ls->ssl_ctx == NULL) {
        return ZG_DECLINED;
    }
    hs = calloc(1, sizeof(*hs));
    s->tls = hs ? zg_tls_create(s->ls->ssl_ctx, s) : NULL;
    if (s->tls == NULL) {
        free(hs);
        zg_log_error(ZG_LOG_CRIT, 0, "no memory for a TLS connection");
        zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return ZG_DONE;
    }
    s->ctx[zg_ssl_module.index] = hs; /* freed with the session */
    s->vars.ssl = zg_tls_ssl(s->tls); /* a failed handshake logs what it got, as nginx */
    hs->s = s;
    zg_ssl_stream_conf(s->srv->conf, &timeout, &hs->verify);
    uv_timer_init(s->loop, &hs->timer);
    hs->timer.data = hs;
    hs->timer_open = 1;
    zg_stream_ref(s);
    uv_timer_start(&hs->timer, zg_ssl_hs_timeout, timeout, 0);
    if (uv_read_start((uv_stream_t *)&s->tcp, zg_ssl_hs_alloc, zg_ssl_hs_read) != 0) {
        zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return ZG_DONE;
    }
    if (s->preread_len > 0) {
        /* the bytes behind a PROXY header are the first of the handshake */
        size_t n = zg_min(s->preread_len, (size_t)ZG_TLS_READ_SIZE);
        memcpy(zg_tls_inbuf(s->tls), s->preread, n);
        s->preread_len = 0;
        zg_ssl_hs_step(s, n);
    }
    return ZG_AGAIN;
}

void zg_ssl_stream_release(zg_stream_session_t *s)
{
    zg_ssl_hs_t *hs = zg_ssl_hs_of(s);

    if (hs != NULL) {
        zg_ssl_hs_timer_close(hs);
    }
}
