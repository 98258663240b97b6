/* zg_auth_request.h — nginx's ngx_http_auth_request_module:
 *   auth_request URI | off;          (http, server, location)
 *   auth_request_set $variable VALUE; (http, server, location)
 * In the access phase (after allow/deny and auth_basic, so `satisfy any` combines
 * them as nginx does), a subrequest to URI (zg_proxy_sub.h: the request's headers, no
 * body) decides: a 2xx answer lets the request go on, 401 and 403 are the client's
 * answer (401 with the subrequest's WWW-Authenticate), anything else, the auth
 * service down or timing out included, is 500.  auth_request_set evaluates VALUE
 * once the subrequest answered, with $upstream_http_NAME, $upstream_status,
 * $upstream_addr and $upstream_response_time of the subrequest. */
#ifndef ZG_AUTH_REQUEST_H
#define ZG_AUTH_REQUEST_H

#include "zg_conf.h"

extern zg_module_t zg_auth_request_module;

#endif
