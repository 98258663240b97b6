/* zg_api.h — the JSON API (in the shape of nginx Plus's /api): keyval zones read
 * and written, limit_req / limit_conn / upstream / slab figures read, the keys of a
 * limit_req or limit_conn zone with the most excess or connections, one key
 * forgiven, upstream peers taken out or back.
 *
 *   location /api/ { api [write=on]; allow 127.0.0.1; deny all; }
 *
 * Paths are relative to the location's prefix, versioned: /api/1/http/keyvals/NAME.
 * Without write=on every method but GET and HEAD answers 405.  Errors answer
 * {"error": {"status": N, "code": "...", "text": "..."}}. */
#ifndef ZG_API_H
#define ZG_API_H

#include "zg_buf.h"
#include "zg_conf.h"

extern zg_module_t zg_api_module;

typedef struct {
    int write;          /* write=on */
} zg_api_loc_conf_t;

/* One API call, independent of HTTP (the handler and the fuzz target use it):
 * method ("GET", "POST", "PATCH", "DELETE", "HEAD"), path below the location
 * ("/1/http/keyvals/one"), args (the query string, may be empty), the request body.
 * Writes the JSON answer into out and returns the HTTP status (204: out empty). */
int zg_api_call(const zg_conf_t *conf, int write, const char *method, const char *path,
                size_t path_len, const char *args, size_t args_len, const char *body,
                size_t body_len, zg_buf_t *out);

#endif
