/* zg_realip.h — nginx's realip: the client address from a header sent by trusted
 * proxies (set_real_ip_from, real_ip_header, real_ip_recursive). */
#ifndef ZG_REALIP_H
#define ZG_REALIP_H

#include <sys/socket.h>

#include "zg_conf.h"

typedef struct {
    int family;
    unsigned char addr[16];
    int bits;
} zg_realip_from_t;

typedef struct {
    zg_realip_from_t *from; /* NULL: inherited */
    int nfrom;
    zg_str_t header;        /* lowercased, '-' as '_' as $http_ sees it; data NULL = unset */
    int recursive;          /* ZG_UNSET, 0, 1 */
} zg_realip_loc_conf_t;

extern zg_module_t zg_realip_module;

/* The client address in the header value v (a list "a, b, c") for a connection from
 * peer, as nginx's ngx_http_get_forwarded_addr: ZG_OK with *out set when peer is
 * trusted and an address was found (the last one; with recursive, the last one
 * that is not trusted), else ZG_DECLINED. */
int zg_realip_find(const zg_realip_loc_conf_t *rlcf, const struct sockaddr *peer,
                   const zg_str_t *values, size_t nvalues, struct sockaddr_storage *out);

#endif
