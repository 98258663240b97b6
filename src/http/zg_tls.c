/* zg_tls.c — a TLS connection over memory BIOs (see zg_tls.h). */
#include "zg_tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include "zg_core.h"
#include "zg_log.h"

struct zg_tls_s {
    SSL *ssl;
    BIO *rbio; /* the client's bytes, read by OpenSSL */
    BIO *wbio; /* OpenSSL's output, to be sent */
    unsigned done : 1;
    unsigned failed : 1;
    char in[ZG_TLS_READ_SIZE];
};

zg_tls_t *zg_tls_create(void *ctx, void *data)
{
    zg_tls_t *t = malloc(sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->done = 0;
    t->failed = 0;
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_accept_state(t->ssl);
    SSL_set_app_data(t->ssl, data);
    return t;
}

void zg_tls_free(zg_tls_t *t)
{
    if (t != NULL) {
        if (t->done && !t->failed) {
            /* a clean end (whoever closed): the session stays resumable, as nginx's
             * quiet shutdown; a failed connection's session is dropped by SSL_free */
            SSL_set_quiet_shutdown(t->ssl, 1);
            (void)SSL_shutdown(t->ssl);
            ERR_clear_error();
        }
        SSL_free(t->ssl); /* frees the BIOs */
        free(t);
    }
}

void *zg_tls_ssl(zg_tls_t *t)
{
    return t->ssl;
}

char *zg_tls_inbuf(zg_tls_t *t)
{
    return t->in;
}

int zg_tls_feed(zg_tls_t *t, size_t n)
{
    if (n > 0 && BIO_write(t->rbio, t->in, (int)n) != (int)n) {
        return ZG_ERROR;
    }
    return ZG_OK;
}

static void zg_tls_log(int level, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char msg[256];
    if (e != 0) {
        ERR_error_string_n(e, msg, sizeof(msg));
        zg_log(level, "%s failed (SSL: %s) while SSL handshaking", what, msg);
    } else {
        zg_log(level, "%s failed while SSL handshaking", what);
    }
    ERR_clear_error();
}

int zg_tls_handshake(zg_tls_t *t)
{
    if (t->done) {
        return ZG_OK;
    }
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->done = 1;
        return ZG_OK;
    }
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
        return ZG_AGAIN;
    }
    t->failed = 1;
    zg_tls_log(ZG_LOG_INFO, "SSL_do_handshake()");
    return ZG_ERROR;
}

int zg_tls_done(const zg_tls_t *t)
{
    return t->done;
}

ssize_t zg_tls_read(zg_tls_t *t, char *p, size_t len)
{
    if (len == 0) {
        return 0;
    }
    int n = SSL_read(t->ssl, p, (int)zg_min(len, (size_t)1 << 30));
    if (n > 0) {
        return n;
    }
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ) {
        return 0;
    }
    if (e != SSL_ERROR_ZERO_RETURN) {
        t->failed = 1;
        ERR_clear_error();
    }
    return -1;
}

int zg_tls_pending(zg_tls_t *t)
{
    /* SSL_has_pending: also records read ahead into OpenSSL's buffer, not yet
     * decrypted */
    return SSL_has_pending(t->ssl) || BIO_ctrl_pending(t->rbio) > 0;
}

int zg_tls_seal(zg_tls_t *t, zg_buf_t *b)
{
    size_t off = 0;
    while (t->done && off < b->len) {
        size_t chunk = zg_min(b->len - off, (size_t)1 << 30);
        int n = SSL_write(t->ssl, b->data + off, (int)chunk);
        if (n <= 0) {
            ERR_clear_error();
            return ZG_ERROR;
        }
        off += (size_t)n;
    }
    b->len = 0;
    char *p;
    long n = BIO_get_mem_data(t->wbio, &p);
    if (n > 0) {
        if (zg_buf_append(b, p, (size_t)n) != ZG_OK) {
            return ZG_ERROR;
        }
        (void)BIO_reset(t->wbio);
    }
    return ZG_OK;
}

void zg_tls_shutdown(zg_tls_t *t)
{
    if (t->done && !t->failed) {
        SSL_set_quiet_shutdown(t->ssl, 0);
        (void)SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
}
