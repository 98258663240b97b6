/* zg_gunzip.h — gunzip: gzip-encoded answers decompressed for clients that do not
 * take gzip, as nginx's gunzip module (a response filter). */
#ifndef ZG_GUNZIP_H
#define ZG_GUNZIP_H

#include "zg_conf.h"

typedef struct {
    int enable; /* gunzip on|off */
} zg_gunzip_loc_conf_t;

extern zg_module_t zg_gunzip_module;

#define zg_gunzip_loc_conf(confs)                                                      \
    ((zg_gunzip_loc_conf_t *)zg_conf_module(confs, zg_gunzip_module))

#endif
