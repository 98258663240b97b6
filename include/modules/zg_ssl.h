/* zg_ssl.h — TLS termination, as nginx's ngx_http_ssl_module:
 *   listen ADDR:PORT ssl;  ssl_certificate FILE;  ssl_certificate_key FILE;
 *   ssl_protocols ...;  ssl_ciphers LIST;  ssl_prefer_server_ciphers on|off;
 *   ssl_session_timeout TIME;  (http, server)
 * Certificates and keys are read by the master when the configuration is loaded
 * (workers cannot open files), into one SSL_CTX per server that the workers inherit
 * across fork.  The connection side (memory BIOs on the loop) is http/zg_tls.c. */
#ifndef ZG_SSL_H
#define ZG_SSL_H

#include "zg_conf.h"

extern zg_module_t zg_ssl_module;

#endif
