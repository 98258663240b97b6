/* zg_sync_api.h — the JSON API's view of the Redis sync (GET /api/1/sync): per zone
 * with sync=..., its kind, URL (password masked), link state, last successful sync,
 * counters, and the fleet's figure beside the local one. */
#ifndef ZG_SYNC_API_H
#define ZG_SYNC_API_H

#include <jansson.h>

#include "zg_conf.h"

/* {"ZONE": {...}, ...}; NULL: no memory */
json_t *zg_sync_api_json(const zg_conf_t *conf);

#endif
