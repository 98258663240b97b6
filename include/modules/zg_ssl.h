/* zg_ssl.h — TLS termination, as nginx's ngx_http_ssl_module (http, server):
 *   listen ADDR:PORT ssl;  ssl_certificate FILE;  ssl_certificate_key FILE;
 *   ssl_protocols ...;  ssl_ciphers LIST;  ssl_prefer_server_ciphers on|off;
 *   ssl_session_cache off|none|[builtin[:SIZE]] [shared:NAME:SIZE];
 *   ssl_session_timeout TIME;  ssl_session_tickets on|off;  ssl_session_ticket_key FILE;
 *   ssl_client_certificate FILE;  ssl_verify_client on|off|optional|optional_no_ca;
 *   ssl_verify_depth N;  ssl_stapling on|off;  ssl_stapling_file FILE;
 *   ssl_stapling_verify on|off;  http2 on|off (accepted, with a warning);
 *   ssl_ecdh_curve;  ssl_dhparam FILE;  ssl_password_file FILE;  ssl_conf_command;
 *   ssl_trusted_certificate FILE;  ssl_crl FILE;  ssl_reject_handshake;
 *   ssl_buffer_size;  ssl_session_ticket_rotate TIME (beyond nginx: the master makes
 *   a new key in the shared zone each period, the previous ones still decrypt).
 * Stream servers (listen ... ssl) take the same directives but stapling, plus
 * ssl_alpn and ssl_handshake_timeout: see zg_ssl_stream.h.
 * The shared session cache is a zone (rbtree by session id + LRU queue); without a
 * ticket key file the ticket keys are a zone too, kept over reloads.  SNI picks the
 * server's SSL_CTX; the client certificate check runs first in the rewrite phase.
 * Certificates and keys are read by the master when the configuration is loaded
 * (workers cannot open files), into one SSL_CTX per server that the workers inherit
 * across fork.  The connection side (memory BIOs on the loop) is http/zg_tls.c. */
#ifndef ZG_SSL_H
#define ZG_SSL_H

#include "zg_conf.h"

extern zg_module_t zg_ssl_module;

#endif
