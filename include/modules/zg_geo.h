/* zg_geo.h — nginx's geo: a variable whose value depends on the client address. */
#ifndef ZG_GEO_H
#define ZG_GEO_H

#include <netinet/in.h>

#include "zg_conf.h"
#include "zg_vars.h"

typedef struct {
    int family;            /* AF_INET, AF_INET6 */
    unsigned char lo[16];  /* network address, or the first of a range */
    unsigned char hi[16];  /* the last address of the network or range */
    int bits;              /* prefix length; a range: -1 */
    zg_str_t value;
} zg_geo_entry_t;

/* a node of the networks' binary radix tree (as nginx's ngx_radix_tree): children
 * by index, 0 = none; value: index of the entry, -1 = none */
typedef struct {
    uint32_t child[2];
    int32_t value;
} zg_geo_node_t;

typedef struct {
    zg_cv_t *source;       /* NULL: the client address ($remote_addr) */
    zg_str_t deflt;
    zg_geo_entry_t *entries;
    int nentries;
    zg_geo_entry_t *proxies; /* `proxy`: trusted addresses (value unused) */
    int nproxies;
    int nlines;            /* lines read so far but `ranges` */
    unsigned ranges : 1;
    unsigned proxy_recursive : 1;
    zg_geo_node_t *nodes;  /* networks: [0] the IPv4 root, [1] the IPv6 root; NULL =
                              none built (zg_geo_find scans the entries) */
    uint32_t nnodes, cap;
} zg_geo_t;

extern zg_module_t zg_geo_module;

/* "10.0.0.0/8", "::1", "1.2.3.4" into e (lo, hi, bits); ZG_OK or ZG_ERROR */
int zg_geo_parse_cidr(const char *s, size_t len, zg_geo_entry_t *e);
/* the value for an address (4 or 16 bytes): the most specific network holding it
 * (with `ranges`, the last range added that holds it), else the default */
zg_str_t zg_geo_find(const zg_geo_t *geo, int family, const unsigned char *addr);
/* builds the radix tree of the networks (not for `ranges`), so that a lookup takes
 * at most 32 / 128 steps however many networks there are; geo->nodes is malloc'd.
 * ZG_OK or ZG_ERROR (no memory: lookups scan the entries). */
int zg_geo_build(zg_geo_t *geo);

#endif
