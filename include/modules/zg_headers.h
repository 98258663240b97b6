/* zg_headers.h — add_header: response header lines set by the config. */
#ifndef ZG_HEADERS_H
#define ZG_HEADERS_H

#include "zg_conf.h"

typedef struct {
    zg_str_t name;
    zg_cv_t *value;      /* an empty value adds no header */
    int always;          /* on every status, not only 2xx/3xx */
} zg_add_header_t;

/* expires: what kind of time, as nginx's */
enum {
    ZG_EXPIRES_UNSET = 0,
    ZG_EXPIRES_OFF,
    ZG_EXPIRES_EPOCH,
    ZG_EXPIRES_MAX,
    ZG_EXPIRES_ACCESS,   /* now + time */
    ZG_EXPIRES_MODIFIED, /* Last-Modified + time (now + time without one) */
    ZG_EXPIRES_DAILY     /* @HhMm: the next such time of day */
};

typedef struct {
    zg_add_header_t *headers; /* NULL: inherited; a level with any replaces the outer list */
    int nheaders;
    int set;             /* this level has add_header */
    int expires;         /* ZG_EXPIRES_* */
    long expires_time;   /* seconds (of the day for DAILY) */
} zg_headers_loc_conf_t;

extern zg_module_t zg_headers_module;

#define zg_headers_loc_conf(confs)                                                     \
    ((zg_headers_loc_conf_t *)zg_conf_module(confs, zg_headers_module))

/* 1 when add_header without `always` applies to status, as nginx: 200 201 204 206
 * 301 302 303 304 307 308 */
int zg_headers_status_ok(int status);

#endif
