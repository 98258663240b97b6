/* zg_proxy.h — forwards a request to an upstream peer and streams the response back;
 * next peer on error, 502 when none answers, 504 on timeout; keep-alive pool. */
#ifndef ZG_PROXY_H
#define ZG_PROXY_H

#include "zg_request.h"

/* Starts proxying r to r->loc->upstream. */
void zg_proxy_start(zg_request_t *r);
/* Request body piece from the client (decoded) / end of the body. */
void zg_proxy_body(zg_proxy_t *p, const char *data, size_t n);
void zg_proxy_body_done(zg_proxy_t *p);
/* The client went away or the request ends: release everything now. */
void zg_proxy_abort(zg_proxy_t *p);
/* Client output drained below the mark: resume reading the upstream. */
void zg_proxy_client_drained(zg_proxy_t *p);

/* per-worker keep-alive pool; closes idle connections on shutdown */
void zg_proxy_pool_init(zg_worker_t *w);
void zg_proxy_pool_close(zg_worker_t *w);

#endif
