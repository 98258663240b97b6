/* zg_tls.h — one TLS connection driven through memory BIOs: the worker reads the
 * client's bytes into a buffer and feeds them here, and writes what comes out; no
 * OpenSSL call ever touches the socket, so nothing blocks the loop but CPU.
 * The SSL_CTX comes from the listen address (zg_listen_t.ssl_ctx), made by the
 * master before the workers fork. */
#ifndef ZG_TLS_H
#define ZG_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "zg_buf.h"

typedef struct zg_tls_s zg_tls_t;

#define ZG_TLS_READ_SIZE (16 * 1024 + 512) /* one TLS record and its header */

/* a new server side connection of ctx (an SSL_CTX *), with data as its app data
 * (SSL_get_app_data); NULL = no memory */
zg_tls_t *zg_tls_create(void *ctx, void *data);
void zg_tls_free(zg_tls_t *t);
/* the SSL * */
void *zg_tls_ssl(zg_tls_t *t);
/* the buffer the client's bytes are read into (ZG_TLS_READ_SIZE) */
char *zg_tls_inbuf(zg_tls_t *t);
/* n bytes read into the buffer: ZG_OK, or ZG_ERROR (no memory) */
int zg_tls_feed(zg_tls_t *t, size_t n);
/* ZG_OK (done), ZG_AGAIN (needs more bytes from the client) or ZG_ERROR (logged) */
int zg_tls_handshake(zg_tls_t *t);
int zg_tls_done(const zg_tls_t *t);
/* decrypted bytes into p: > 0, 0 (needs more from the client), -1 (closed or error) */
ssize_t zg_tls_read(zg_tls_t *t, char *p, size_t len);
/* 1 when decrypted or undecrypted bytes wait */
int zg_tls_pending(zg_tls_t *t);
/* Encrypts the plaintext in b and replaces it with what is to be sent (records,
 * handshake messages, alerts): ZG_OK or ZG_ERROR. */
int zg_tls_seal(zg_tls_t *t, zg_buf_t *b);
/* queues a close_notify alert (sent by the next zg_tls_seal) */
void zg_tls_shutdown(zg_tls_t *t);

#endif
