/* zg_dashboard.h — `location = /dashboard { dashboard [api=/api/]; }`: a live HTML page
 * over the JSON API (zg_api.h).  api= is the location of `api` (default /api/). */
#ifndef ZG_DASHBOARD_H
#define ZG_DASHBOARD_H

#include "zg_conf.h"

extern zg_module_t zg_dashboard_module;

typedef struct {
    const char *page;   /* the HTML with the API path in it; NULL unless `dashboard` */
    size_t len;
} zg_dashboard_loc_conf_t;

#endif
