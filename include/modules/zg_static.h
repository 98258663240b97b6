/* zg_static.h — static files, as nginx's static, index and try_files handlers with
 * the core module's root, alias, types and the not_modified and range filters'
 * answers: root, alias, index, try_files, types {}, etag, if_modified_since,
 * log_not_found, sendfile, tcp_nopush, disable_symlinks, gzip_static, max_ranges,
 * open_file_cache* (accepted, no effect).  It is the content handler of every level (location, or
 * server for requests no location takes) that has no other and has a root or an
 * alias (there or above) or a try_files. */
#ifndef ZG_STATIC_H
#define ZG_STATIC_H

#include <stdint.h>

#include "zg_conf.h"

typedef struct {
    zg_str_t ext;        /* lowercase, no dot */
    zg_str_t type;
} zg_static_type_t;

/* disable_symlinks */
enum { ZG_SYMLINKS_FOLLOW = 0, ZG_SYMLINKS_OFF, ZG_SYMLINKS_NOT_OWNER };

/* try_files' last argument */
enum { ZG_TRY_URI = 0, ZG_TRY_CODE, ZG_TRY_NAMED };

typedef struct {
    zg_cv_t *root;            /* root or alias, made absolute; NULL = not set here */
    int alias;                /* the value is an alias */
    size_t alias_len;         /* the prefix of the URI the alias replaces */
    int alias_regex;          /* alias of a regex location: the whole path */
    zg_cv_t **index;          /* NULL = inherited ("index.html" at the top) */
    int nindex;
    zg_cv_t **try_files;      /* this level's only (not inherited, as nginx) */
    int ntry;
    int try_last;             /* ZG_TRY_*: what the last argument is */
    int try_code;
    zg_static_type_t *types;  /* sorted by ext once merged; NULL = inherited */
    int ntypes;
    int types_sorted;
    int etag;                 /* on */
    int ims;                  /* if_modified_since: 0 off, 1 exact, 2 before */
    int log_not_found;        /* on */
    int sendfile;             /* off, as nginx */
    int tcp_nopush;           /* off */
    int symlinks;             /* ZG_SYMLINKS_*: follow (nginx's default) */
    int ofc_min_uses;         /* open_file_cache_min_uses: checked, not used */
    int gzip_static;          /* ZG_GZIP_STATIC_*: off */
    int max_ranges;           /* INT32_MAX: no limit of its own (nginx's default) */
} zg_static_loc_conf_t;

/* gzip_static */
enum { ZG_GZIP_STATIC_OFF = 0, ZG_GZIP_STATIC_ON, ZG_GZIP_STATIC_ALWAYS };

typedef struct {
    int64_t start, end;       /* [start, end) */
} zg_static_range_t;

extern zg_module_t zg_static_module;

#define zg_static_loc_conf(confs)                                                      \
    ((zg_static_loc_conf_t *)zg_conf_module(confs, zg_static_module))

/* Parses the value of a Range header against a body of size bytes as nginx's range
 * filter does (ngx_http_range_parse, "bytes=" included): ZG_OK and the number of
 * satisfiable ranges in *n, the first cap of them in out (out may be NULL);
 * ZG_DECLINED to answer with the whole body: not a byte range, a first range that
 * starts at 0 and is empty, more than max ranges, several that add up to more than
 * the body, or (max == INT32_MAX, nginx 1.29.5's limit) whose parts with 256 bytes
 * each for their heads exceed the body by more than 4096; 416 when nothing of it is
 * satisfiable. */
int zg_static_range_parse(const char *p, size_t len, int64_t size, int max,
                          zg_static_range_t *out, int cap, int *n);

/* nginx's ngx_http_test_if_match: 1 if the If-Match / If-None-Match list has etag
 * ("*" has every one; weak: a W/ before an entry is ignored) */
int zg_static_etag_match(const zg_str_t *list, const char *etag, size_t elen, int weak);

/* the content type of an extension in a level's sorted types, NULL if none */
const zg_str_t *zg_static_type(const zg_static_loc_conf_t *slcf, const char *ext,
                               size_t len);

#endif
