/* zg_error_page.h — error_page CODE ... [=[CODE]] URI|@name|URL. */
#ifndef ZG_ERROR_PAGE_H
#define ZG_ERROR_PAGE_H

#include "zg_conf.h"

typedef struct {
    int status;            /* the status it catches */
    int overwrite;         /* "=CODE": CODE; "=": 0 (the page's own); none: -1 */
    zg_cv_t *target;       /* URI, "@name" or URL */
} zg_error_page_t;

typedef struct {
    zg_error_page_t *pages; /* NULL: inherited */
    int npages;
} zg_error_page_loc_conf_t;

extern zg_module_t zg_error_page_module;

/* the page for status in a level's list; NULL = none */
const zg_error_page_t *zg_error_page_find(const zg_error_page_loc_conf_t *c, int status);

#endif
