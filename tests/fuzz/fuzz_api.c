/* fuzz_api.c — libFuzzer: the JSON API's untrusted bytes (method, path, query and
 * body) against a fixed config whose zones are mapped.  Input: a method byte, then
 * "PATH\nBODY" (the part after '?' in PATH is the query string).  Invariants:
 *   - every call answers a status from 200 to 599;
 *   - a status >= 400 comes with a JSON object {"error": {"status": S, ...}};
 *   - a 200 answer is valid JSON;
 *   - the zones stay consistent (zg_slab_validate) whatever was written. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zg_api.h"
#include "zg_conf.h"
#include "zg_log.h"
#include "zg_upstream.h"

static const char fz_conf_text[] =
    "http {\n"
    "  keyval_zone zone=kv:32k;\n"
    "  keyval_zone zone=ips:32k type=ip timeout=1h;\n"
    "  keyval_zone zone=pre:32k type=prefix;\n"
    "  limit_req_zone $binary_remote_addr zone=perip:32k rate=1r/s;\n"
    "  limit_req_zone $arg_k zone=bykey:32k rate=10r/m;\n"
    "  limit_conn_zone $binary_remote_addr zone=conns:32k;\n"
    "  upstream app { zone app 32k; server 127.0.0.1:1; server 127.0.0.1:2; }\n"
    "  server { listen 127.0.0.1:1; location /api/ { api write=on; } }\n"
    "}\n"
    "stream {\n"
    "  limit_conn_zone $binary_remote_addr zone=sconns:32k;\n"
    "  limit_req_zone $binary_remote_addr zone=sreq:32k rate=5r/s;\n"
    "  upstream db { zone db 32k; server 127.0.0.1:3; }\n"
    "  server { listen 127.0.0.1:4; status_zone front; proxy_pass db; }\n"
    "}\n";

static zg_conf_t *fz_conf;

static const char *const fz_methods[] = { "GET", "POST", "PATCH", "DELETE", "HEAD", "PUT" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    const char *path, *nl, *q, *body;
    size_t plen, blen;
    zg_buf_t out = ZG_BUF_INIT;
    json_t *doc;
    int st;

    if (fz_conf == NULL) {
        zg_log_open("stderr", ZG_LOG_EMERG);
        zg_conf_no_resolve = 1;
        fz_conf = zg_conf_load_string("fuzz.conf", fz_conf_text, sizeof(fz_conf_text) - 1,
                                      err, sizeof(err));
        if (fz_conf == NULL || zg_zone_map_all(&fz_conf->zones, NULL, err, sizeof(err))
                                   != ZG_OK) {
            abort();
        }
        for (zg_upstream_conf_t *u = zg_upstream_main_conf(fz_conf)->upstreams; u != NULL;
             u = u->next) {
            zg_upstream_init(u);
        }
    }
    if (size < 1) {
        return 0;
    }
    path = (const char *)data + 1;
    nl = memchr(path, '\n', size - 1);
    plen = nl ? (size_t)(nl - path) : size - 1;
    body = nl ? nl + 1 : NULL;
    blen = nl ? size - 1 - plen - 1 : 0;
    q = memchr(path, '?', plen);
    st = zg_api_call(fz_conf, data[0] & 0x80, fz_methods[data[0] % 6], path,
                     q ? (size_t)(q - path) : plen, q ? q + 1 : NULL,
                     q ? plen - (size_t)(q - path) - 1 : 0, body, blen, &out);
    if (st < 200 || st > 599) {
        abort();
    }
    if (st != 204 && out.len > 0) {
        doc = json_loadb(out.data, out.len, 0, NULL);
        if (doc == NULL) {
            abort();
        }
        if (st >= 400 && json_integer_value(json_object_get(json_object_get(doc, "error"),
                                                            "status")) != st) {
            abort();
        }
        json_decref(doc);
    } else if (st >= 400) {
        abort();
    }
    zg_buf_free(&out);
    for (zg_zone_t *z = fz_conf->zones.head; z != NULL; z = z->next) {
        zg_shmtx_lock(&z->pool->mutex);
        if (zg_slab_validate(z->pool) != ZG_OK) {
            abort();
        }
        zg_shmtx_unlock(&z->pool->mutex);
    }
    return 0;
}
