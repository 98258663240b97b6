/* zg_unix.h — connecting a libuv TCP handle to a unix domain socket.  libuv's
 * uv_tcp_t works on any stream socket once open, but uv_tcp_connect takes IP
 * addresses only; a unix socket's connect() completes (or fails) at once. */
#ifndef ZG_UNIX_H
#define ZG_UNIX_H

#include <uv.h>

#include "zg_conf.h"

/* Connects t (initialised, not open) to the AF_UNIX addr.  0: t is open and
 * connected; a negative libuv error otherwise (t stays unopened).  A full listen
 * queue (EAGAIN) is a failure, as nginx counts it. */
int zg_unix_connect(uv_tcp_t *t, const zg_addr_t *addr);

#endif
