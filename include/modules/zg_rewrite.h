/* zg_rewrite.h — `return`, run in the rewrite phase (before any limit). */
#ifndef ZG_REWRITE_H
#define ZG_REWRITE_H

#include "zg_conf.h"

typedef struct {
    int code;            /* 0 = no `return` */
    zg_cv_t *text;       /* body, or the Location for 301/302/303/307/308; NULL = none */
} zg_rewrite_loc_conf_t;

extern zg_module_t zg_rewrite_module;

#define zg_rewrite_loc_conf(confs)                                                     \
    ((zg_rewrite_loc_conf_t *)zg_conf_module(confs, zg_rewrite_module))

#endif
