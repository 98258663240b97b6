/* fuzz_route.c — libFuzzer: bytes to the chosen location, the way a worker routes a
 * request: the http parser reads a head (its path normalised there, once), the
 * server is found by host and the location by path on a fixed small config.  The
 * first input byte picks the parser options.  Invariants:
 *   - the path handed to location lookup starts with '/', has no "." or ".."
 *     segment, and no "//" when slashes are merged;
 *   - the chosen location really matches that path (exact, its prefix, or its regex
 *     with the captures inside the path); a server-level prefix is the longest one,
 *     and was chosen only if no server-level regex matches (unless it is ^~);
 *   - the same path normalised again is routed to the same location. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zg_conf.h"
#include "zg_http.h"
#include "zg_http_core.h"

static const char fz_conf_text[] =
    "http {\n"
    "  limit_req_zone $binary_remote_addr zone=login:1m rate=1r/m;\n"
    "  server {\n"
    "    listen 127.0.0.1:1;\n"
    "    location /login { limit_req zone=login; return 200; }\n"
    "    location /admin { deny all; return 200; }\n"
    "    location /admin/api/ { return 204; }\n"
    "    location = /secret { return 403; }\n"
    "    location / { return 404; }\n"
    "    location ~ ^/admin/(\\d+)$ { return 200; }\n"
    "    location ~* \\.(php|cgi)$ { return 403; }\n"
    "    location ^~ /static/ { location ~ \\.css$ { return 200; } }\n"
    "    location /api/ { location ~ ^/api/v(\\d)/ { } location /api/x/ { } }\n"
    "  }\n"
    "  server {\n"
    "    listen 127.0.0.1:1;\n"
    "    server_name public.example *.wild.example www.trail.* .dot.example\n"
    "                ~^re(?<n>\\d+)\\.example$;\n"
    "    location /pub { return 200; }\n"
    "  }\n"
    "}\n";

static zg_conf_t *fz_conf;

typedef struct {
    zg_http_in_t *in;
    int merge;
    int stopped;
} fz_t;

static int fz_dot_segment(const char *p, size_t n)
{
    size_t s = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '/') {
            size_t len = i - s;

            if ((len == 1 && p[s] == '.') || (len == 2 && p[s] == '.' && p[s + 1] == '.')) {
                return 1;
            }
            s = i + 1;
        }
    }
    return 0;
}

static void fz_head(void *data, zg_http_req_t *r)
{
    fz_t *f = data;
    const zg_str_t *p = &r->path;
    zg_server_conf_t *srv = zg_http_find_server(&zg_http_core_main_conf(fz_conf)->listens[0],
                                                r->host.data, r->host.len, NULL);
    zg_location_t *loc;
    zg_regex_caps_t caps;

    memset(&caps, 0, sizeof(caps));
    f->stopped = 1;
    if (srv == NULL || p->len == 0 || p->data[0] != '/' || fz_dot_segment(p->data, p->len) ||
        (f->merge && memmem(p->data, p->len, "//", 2) != NULL)) {
        abort();
    }
    loc = zg_http_find_location(srv, p->data, p->len, &caps);
    if (loc != NULL && loc->regex != NULL) {
        zg_str_t c1 = zg_regex_cap(&caps, 1);
        if (zg_regex_exec(loc->regex, p->data, p->len, NULL) != ZG_OK ||
            (c1.data != NULL && (c1.data < p->data || c1.data + c1.len > p->data + p->len))) {
            abort();
        }
    } else if (loc != NULL) {
        if (loc->exact ? (loc->path_len != p->len || memcmp(loc->path, p->data, p->len))
                       : (loc->path_len > p->len || memcmp(loc->path, p->data, loc->path_len))) {
            abort();
        }
        for (int i = 0; i < srv->nlocations && !loc->exact && loc->parent == NULL; i++) {
            zg_location_t *o = &srv->locations[i];

            if (o->regex != NULL) {
                if (!loc->noregex && zg_regex_exec(o->regex, p->data, p->len, NULL) == ZG_OK) {
                    abort();
                }
            } else if (!o->exact && o->path_len > loc->path_len && o->path_len <= p->len &&
                       memcmp(o->path, p->data, o->path_len) == 0) {
                abort();
            }
        }
    }
    /* a normalised path is a fixed point unless it holds a decoded '%', '?', '#' */
    if (memchr(p->data, '%', p->len) == NULL && memchr(p->data, '?', p->len) == NULL &&
        memchr(p->data, '#', p->len) == NULL) {
        char *again = malloc(p->len + 1);
        zg_http_uri_t u;

        if (again == NULL || zg_http_parse_uri(p->data, p->len, f->merge, again, &u) != ZG_OK ||
            zg_http_find_location(srv, again, u.path_len, NULL) != loc) {
            abort();
        }
        free(again);
    }
}

static void fz_body(void *data, const char *p, size_t n)
{
    (void)data;
    (void)p;
    (void)n;
}

static void fz_done(void *data)
{
    fz_t *f = data;

    f->stopped = 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const zg_http_in_handlers_t h = {fz_head, fz_body, fz_done};
    zg_http_limits_t lim = {.line_max = 512, .head_max = 2048, .body_max = 64};
    fz_t f;
    size_t len;
    char *b;
    int rc, guard = 0;

    if (fz_conf == NULL) {
        char err[512];

        zg_conf_no_resolve = 1;
        fz_conf = zg_conf_load_string("fuzz_route.conf", fz_conf_text, sizeof(fz_conf_text) - 1,
                                      err, sizeof(err));
        if (fz_conf == NULL || zg_http_core_main_conf(fz_conf)->nlistens != 1) {
            abort();
        }
    }
    if (size < 1) {
        return 0;
    }
    lim.no_merge_slashes = data[0] & 1;
    lim.underscores = (data[0] >> 1) & 1;
    lim.keep_invalid = (data[0] >> 2) & 1;
    lim.max_headers = (data[0] >> 3) & 7;
    data++;
    size--;

    memset(&f, 0, sizeof(f));
    f.merge = !lim.no_merge_slashes;
    f.in = zg_http_in_create(&lim, &h, &f);
    if (f.in == NULL) {
        return 0;
    }
    b = zg_http_in_buffer(f.in, &len);
    if (b != NULL && len > 0) {
        size = size < len ? size : len;
        memcpy(b, data, size);
        rc = zg_http_in_feed(f.in, size);
        while (rc == ZG_AGAIN && guard++ < 1000) {
            if (f.stopped == 1) {
                f.stopped = 0;
                rc = zg_http_in_resume(f.in);
            } else if (f.stopped == 2) {
                f.stopped = 0;
                rc = zg_http_in_next(f.in);
            } else {
                break;
            }
        }
    }
    zg_http_in_destroy(f.in);
    return 0;
}
