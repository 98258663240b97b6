/* zg_ssl_stream.h — TLS on stream servers (listen ... ssl), as nginx's
 * ngx_stream_ssl_module; the directives are the ssl module's (zg_ssl.h).  The
 * handshake is the ZG_STREAM_PHASE_SSL handler: after limit_conn, limit_req and
 * allow/deny, so a rejected client costs no handshake CPU.  A missing or bad client
 * certificate with ssl_verify_client on ends the session (status 500, as nginx).
 * The proxy relays the session's bytes through s->tls (zg_stream_proxy.c). */
#ifndef ZG_SSL_STREAM_H
#define ZG_SSL_STREAM_H

#include "zg_stream.h"

int zg_ssl_stream_handler(zg_stream_session_t *s);
void zg_ssl_stream_release(zg_stream_session_t *s);

/* zg_ssl.c: a stream server's ssl_handshake_timeout and ssl_verify_client */
void zg_ssl_stream_conf(void **srv_conf, zg_msec_t *timeout, int *verify);
/* zg_ssl.c: NULL when the client certificate of a finished handshake passes the
 * verify mode, else why not (nginx's log text) */
const char *zg_ssl_verify_fails(void *ssl, int verify, char *buf, size_t len);

#endif
