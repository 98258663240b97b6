/* zg_access.h — allow / deny: the access phase. */
#ifndef ZG_ACCESS_H
#define ZG_ACCESS_H

#include "zg_conf.h"

typedef struct {
    int family;          /* AF_INET, AF_INET6, or 0 for "all" */
    unsigned char addr[16];
    unsigned char mask[16];
    unsigned deny : 1;
} zg_access_rule_t;

typedef struct {
    zg_access_rule_t *rules;
    int nrules;          /* -1 = unset (inherit) */
} zg_access_loc_conf_t;

extern zg_module_t zg_access_module;

#define zg_access_loc_conf(confs)                                                      \
    ((zg_access_loc_conf_t *)zg_conf_module(confs, zg_access_module))

#endif
