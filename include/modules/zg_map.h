/* zg_map.h — nginx's map: a variable whose value depends on another's. */
#ifndef ZG_MAP_H
#define ZG_MAP_H

#include "zg_conf.h"
#include "zg_regex.h"
#include "zg_vars.h"

typedef struct {
    zg_str_t key;          /* lowercased; for a regex, its pattern */
    zg_regex_t *re;        /* ~ and ~* entries */
    zg_cv_t *value;
} zg_map_entry_t;

typedef struct {
    zg_cv_t *source;
    zg_cv_t *deflt;        /* NULL: empty */
    zg_map_entry_t *exact; /* sorted by key */
    int nexact;
    zg_map_entry_t *wild;  /* hostnames: *.x.com, .x.com, www.x.* */
    int nwild;
    zg_map_entry_t *regex; /* in config order */
    int nregex;
    unsigned hostnames : 1;
    unsigned volatile_ : 1;
} zg_map_t;

extern zg_module_t zg_map_module;

/* The entry's value for the source value src (exact, wildcard, then regex; a regex
 * match sets ctx->caps): ZG_OK, or ZG_DECLINED with *value the default (NULL =
 * empty).  ZG_ERROR = no memory. */
int zg_map_find(const zg_map_t *map, zg_var_ctx_t *ctx, const zg_str_t *src,
                const zg_cv_t **value);

#endif
