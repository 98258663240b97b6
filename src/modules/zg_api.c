/* zg_api.c — the api module: a JSON API over the zones, in the shape of nginx Plus's
 * /api.  Request bodies are parsed and answers written with jansson. */
#include "zg_api.h"

#include <arpa/inet.h>
#include <uv.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_cache.h"
#include "zg_http_core.h"
#include "zg_keyval.h"
#include "zg_limit_conn.h"
#include "zg_limit_req.h"
#include "zg_log.h"
#include "zg_request.h"
#include "zg_sync_api.h"
#include "zg_stream_status.h"
#include "zg_upstream.h"

#define ZG_API_VERSION 1
#define ZG_API_SEGMENTS 8
#define ZG_API_TOP_DEFAULT 10

typedef struct {
    zg_str_t seg[ZG_API_SEGMENTS];
    int n;
    const char *method;
    const char *args;
    size_t args_len;
    const zg_conf_t *conf;
    int write;
    int stream;                   /* under /stream: the stream block's zones */
    const char *body;
    size_t body_len;
    struct zg_api_defer_s *defer; /* HTTP: long walks run a chunk per loop turn */
} zg_api_req_t;

/* a top=N walk the handler runs in chunks (NULL defer: walked at once) */
typedef struct zg_api_defer_s {
    zg_zone_t *zone;
    size_t n;
    int addr;
} zg_api_defer_t;

/* a walk in progress: one chunk, then ZG_API_WALK_GAP ms with the zone's lock free
 * (a timer: the worker serves its connections meanwhile, and a worker waiting for
 * the lock gets it even on a loaded machine, where a lock taken back at once would
 * starve it) */
#define ZG_API_WALK_GAP 1

typedef struct {
    uv_timer_t timer;
    zg_request_t *r;          /* NULL once the request went away */
    zg_zone_t *zone;
    int addr;
    zg_limit_req_top_t *top;
    zg_limit_req_top_walk_t walk;
} zg_api_walk_t;

/* per request: the body read so far */
typedef struct {
    zg_buf_t body;
    zg_api_walk_t *walk;
} zg_api_ctx_t;

static int zg_api_error(zg_buf_t *out, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int zg_api_error(zg_buf_t *out, int status, const char *code, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    json_t *o;
    char *s;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    /* names and keys from the request may be any bytes: the text stays ASCII */
    for (char *p = text; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
            *p = '?';
        }
    }
    o = json_pack("{s:{s:i,s:s,s:s}}", "error", "status", status, "code", code, "text", text);
    s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    out->len = 0;
    if (s != NULL) {
        zg_buf_str(out, s);
        free(s);
    }
    json_decref(o);
    return status;
}

/* out = the JSON text of v (stolen) */
static int zg_api_json(zg_buf_t *out, json_t *v, int status)
{
    char *s;

    if (v == NULL) {
        return zg_api_error(out, 500, "NoMemory", "out of memory");
    }
    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (s == NULL) {
        return zg_api_error(out, 500, "NoMemory", "out of memory");
    }
    out->len = 0;
    zg_buf_str(out, s);
    free(s);
    return status;
}

static int zg_api_is(const zg_str_t *s, const char *p)
{
    return s->len == strlen(p) && memcmp(s->data, p, s->len) == 0;
}

static int zg_api_method(const zg_api_req_t *a, const char *m)
{
    return strcmp(a->method, m) == 0;
}

static int zg_api_reading(const zg_api_req_t *a)
{
    return zg_api_method(a, "GET") || zg_api_method(a, "HEAD");
}

/* a zone name from a path segment (NUL-terminated copy) */
static void zg_api_name(const zg_str_t *s, char *buf, size_t len)
{
    size_t n = zg_min(s->len, len - 1);

    memcpy(buf, s->data, n);
    buf[n] = '\0';
}

static int zg_api_not_allowed(zg_api_req_t *a, zg_buf_t *out)
{
    if (!a->write && !zg_api_reading(a)) {
        return zg_api_error(out, 405, "MethodDisabled", "method disabled");
    }
    return zg_api_error(out, 405, "MethodNotSupported", "method not supported");
}

/* the value of an argument of the query string, or NULL */
static const char *zg_api_arg(const zg_api_req_t *a, const char *name, size_t *len)
{
    const char *p = a->args, *end = a->args + a->args_len, *amp;
    size_t nl = strlen(name);

    while (p < end) {
        amp = memchr(p, '&', (size_t)(end - p));
        if (amp == NULL) {
            amp = end;
        }
        if ((size_t)(amp - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            *len = (size_t)(amp - p - nl - 1);
            return p + nl + 1;
        }
        p = amp + 1;
    }
    return NULL;
}

/* ---- keyvals ---- */

static void zg_api_kv_put(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    json_object_setn_new_nocheck(arg, key, klen, json_stringn_nocheck(val, vlen));
}

static json_t *zg_api_kv_zone(zg_zone_t *z)
{
    json_t *o = json_object();

    if (o != NULL) {
        zg_keyval_each(z, zg_time_msec(), zg_api_kv_put, o);
    }
    return o;
}

/* POST / PATCH body: an object of string values (PATCH: or null) */
static int zg_api_kv_body(zg_api_req_t *a, zg_buf_t *out, int patch, json_t **obj)
{
    json_error_t jerr;
    int st;
    json_t *o, *v;
    const char *key;

    if (a->body_len == 0) {
        return zg_api_error(out, 400, "KeyvalFormatError", "no request body");
    }
    o = json_loadb(a->body, a->body_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (o == NULL) {
        return zg_api_error(out, 400, "JsonError", "invalid JSON: %s at position %d",
                            jerr.text, jerr.position);
    }
    if (!json_is_object(o)) {
        st = zg_api_error(out, 400, "KeyvalFormatError", "the body must be a JSON object");
        json_decref(o);
        return st;
    }
    json_object_foreach(o, key, v) {
        if (!json_is_string(v) && !(patch && json_is_null(v))) {
            st = zg_api_error(out, 400, "KeyvalFormatError",
                                "the value of \"%.64s\" must be a string%s", key,
                                patch ? " or null" : "");
            json_decref(o);
            return st;
        }
        if (json_is_string(v) && json_string_length(v) > ZG_KEYVAL_VALUE_MAX) {
            st = zg_api_error(out, 413, "KeyvalValueTooLarge",
                                "the value of \"%.64s\" is longer than %d bytes", key,
                                ZG_KEYVAL_VALUE_MAX);
            json_decref(o);
            return st;
        }
    }
    *obj = o;
    return 0;
}

static int zg_api_kv_set_error(zg_buf_t *out, int rc, const char *key, size_t klen)
{
    if (rc == ZG_DECLINED) {
        return zg_api_error(out, 400, "KeyvalKeyError", "invalid key \"%.*s\"",
                            (int)zg_min(klen, (size_t)64), key);
    }
    return zg_api_error(out, 413, "KeyvalZoneFull",
                        "the entry \"%.*s\" does not fit in the zone",
                        (int)zg_min(klen, (size_t)64), key);
}

static int zg_api_keyvals(zg_api_req_t *a, zg_buf_t *out)
{
    zg_keyval_main_conf_t *kmcf = zg_keyval_main_conf(a->conf);
    zg_keyval_zone_conf_t *kz;
    json_t *o, *v, *body = NULL;
    const char *key, *kv;
    char name[64];
    size_t klen, n;
    int rc, st;

    if (a->n == 2) {
        if (!zg_api_reading(a)) {
            return zg_api_not_allowed(a, out);
        }
        o = json_object();
        for (int i = 0; o != NULL && i < kmcf->nzones; i++) {
            if (kmcf->zones[i]->zone->pool != NULL) {
                json_object_set_new(o, kmcf->zones[i]->zone->name,
                                    zg_api_kv_zone(kmcf->zones[i]->zone));
            }
        }
        return zg_api_json(out, o, 200);
    }
    if (a->n != 3) {
        return zg_api_error(out, 404, "PathNotFound", "path not found");
    }
    zg_api_name(&a->seg[2], name, sizeof(name));
    kz = zg_keyval_zone(a->conf, name);
    if (kz == NULL || kz->zone->pool == NULL) {
        return zg_api_error(out, 404, "KeyvalNotFound", "keyval zone \"%s\" not found", name);
    }
    if (zg_api_reading(a)) {
        kv = zg_api_arg(a, "key", &n);
        o = zg_api_kv_zone(kz->zone);
        if (kv != NULL && o != NULL) {
            /* ?key=K: that entry only (exactly as stored) */
            char k[ZG_KEYVAL_KEY_MAX + 1];
            memcpy(k, kv, zg_min(n, sizeof(k) - 1));
            k[zg_min(n, sizeof(k) - 1)] = '\0';
            v = json_object_get(o, k);
            if (v == NULL) {
                st = zg_api_error(out, 404, "KeyvalKeyNotFound", "key \"%s\" not found", k);
                json_decref(o);
                return st;
            }
            json_t *one = json_object();
            json_object_set(one, k, v);
            json_decref(o);
            o = one;
        }
        return zg_api_json(out, o, 200);
    }
    if (!a->write) {
        return zg_api_not_allowed(a, out);
    }
    if (zg_api_method(a, "DELETE")) {
        zg_keyval_clear(kz->zone);
        out->len = 0;
        return 204;
    }
    if (!zg_api_method(a, "POST") && !zg_api_method(a, "PATCH")) {
        return zg_api_not_allowed(a, out);
    }
    rc = zg_api_kv_body(a, out, zg_api_method(a, "PATCH"), &body);
    if (rc != 0) {
        return rc;
    }
    if (zg_api_method(a, "POST")) {
        /* nginx Plus: every key must be new; checked first so nothing is half done */
        json_object_keylen_foreach(body, key, klen, v) {
            (void)v;
            if (zg_keyval_has(kz->zone, key, klen, zg_time_msec())) {
                st = zg_api_error(out, 409, "KeyvalKeyExists", "key \"%.*s\" already exists",
                                    (int)zg_min(klen, (size_t)64), key);
                json_decref(body);
                return st;
            }
        }
    }
    json_object_keylen_foreach(body, key, klen, v) {
        if (json_is_null(v)) {
            zg_keyval_delete(kz->zone, key, klen);
            continue;
        }
        rc = zg_keyval_set(kz->zone, key, klen, json_string_value(v), json_string_length(v),
                           zg_api_method(a, "POST"), zg_time_msec());
        if (rc == ZG_BUSY) {
            st = zg_api_error(out, 409, "KeyvalKeyExists", "key \"%.*s\" already exists",
                                (int)zg_min(klen, (size_t)64), key);
            json_decref(body);
            return st;
        }
        if (rc != ZG_OK) {
            st = zg_api_kv_set_error(out, rc, key, klen);
            json_decref(body);
            return st;
        }
    }
    json_decref(body);
    out->len = 0;
    return zg_api_method(a, "POST") ? 201 : 204;
}

/* ---- limit_reqs, limit_conns ---- */

/* a key as text: an address for $binary_remote_addr zones, else the bytes with
 * anything unprintable as \xXX */
static json_t *zg_api_key_text(const unsigned char *key, size_t len, size_t full, int addr)
{
    char buf[4 * 256 + 8], *p = buf;
    static const char hex[] = "0123456789abcdef";

    if (addr && (len == 4 || len == 16) && full == len) {
        if (inet_ntop(len == 4 ? AF_INET : AF_INET6, key, buf, sizeof(buf)) != NULL) {
            return json_string(buf);
        }
    }
    for (size_t i = 0; i < len && i < 256; i++) {
        if (key[i] >= 0x20 && key[i] < 0x7f && key[i] != '\\') {
            *p++ = (char)key[i];
        } else {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[key[i] >> 4];
            *p++ = hex[key[i] & 15];
        }
    }
    if (full > len) {
        memcpy(p, "...", 3);
        p += 3;
    }
    return json_stringn(buf, (size_t)(p - buf));
}

/* a key from the path: an address for $binary_remote_addr zones, else as is */
static size_t zg_api_key_bytes(const zg_str_t *s, int addr, unsigned char *buf, size_t len)
{
    char t[64];

    if (addr && s->len < sizeof(t)) {
        memcpy(t, s->data, s->len);
        t[s->len] = '\0';
        if (inet_pton(AF_INET, t, buf) == 1) {
            return 4;
        }
        if (inet_pton(AF_INET6, t, buf) == 1) {
            return 16;
        }
    }
    if (s->len > len) {
        return 0;
    }
    memcpy(buf, s->data, s->len);
    return s->len;
}

static int zg_api_top_n(zg_api_req_t *a, zg_buf_t *out, size_t *n)
{
    const char *v;
    size_t len;
    int t;

    *n = ZG_API_TOP_DEFAULT;
    v = zg_api_arg(a, "top", &len);
    if (v == NULL) {
        return 0;
    }
    t = zg_conf_atoi(v, len);
    if (t <= 0 || t > ZG_LIMIT_REQ_TOP_MAX) {
        return zg_api_error(out, 400, "ArgumentError", "top must be 1 to %d",
                            ZG_LIMIT_REQ_TOP_MAX);
    }
    *n = (size_t)t;
    return 0;
}

/* a zone of kind the request's block (http or stream) declared */
static int zg_api_zone_in(const zg_api_req_t *a, const zg_zone_t *z, const zg_zone_kind_t *kind)
{
    int stream;

    if (z == NULL || z->pool == NULL || z->kind != kind || z->conf == NULL) {
        return 0;
    }
    stream = kind == ZG_ZONE_LIMIT_REQ ? ((const zg_limit_req_zone_conf_t *)z->conf)->stream
                                       : ((const zg_limit_conn_zone_conf_t *)z->conf)->stream;
    return stream == a->stream;
}

static json_t *zg_api_limit_req_zone(zg_zone_t *z)
{
    zg_limit_req_stats_t st;

    zg_limit_req_stats(z, &st);
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "passed", (json_int_t)st.passed,
                     "delayed", (json_int_t)st.delayed, "rejected", (json_int_t)st.rejected,
                     "delayed_dry_run", (json_int_t)st.delayed_dry_run, "rejected_dry_run",
                     (json_int_t)st.rejected_dry_run, "entries", (json_int_t)st.entries,
                     "evicted", (json_int_t)st.evicted);
}

static json_t *zg_api_top_json(const zg_limit_req_top_t *top, size_t got, int addr);

static int zg_api_limit_reqs(zg_api_req_t *a, zg_buf_t *out)
{
    zg_zone_t *z;
    json_t *o;
    zg_limit_req_top_t *top;
    unsigned char kb[65535];
    char name[64];
    size_t n, got, klen;
    int rc, addr;

    if (a->n == 2) {
        if (!zg_api_reading(a)) {
            return zg_api_not_allowed(a, out);
        }
        o = json_object();
        for (z = a->conf->zones.head; o != NULL && z != NULL; z = z->next) {
            if (zg_api_zone_in(a, z, ZG_ZONE_LIMIT_REQ)) {
                json_object_set_new(o, z->name, zg_api_limit_req_zone(z));
            }
        }
        return zg_api_json(out, o, 200);
    }
    zg_api_name(&a->seg[2], name, sizeof(name));
    z = zg_zone_find((zg_zone_list_t *)&a->conf->zones, name);
    if (!zg_api_zone_in(a, z, ZG_ZONE_LIMIT_REQ)) {
        return zg_api_error(out, 404, "LimitReqNotFound", "limit_req zone \"%s\" not found",
                            name);
    }
    if (a->n == 3) {
        if (!zg_api_reading(a)) {
            return zg_api_not_allowed(a, out);
        }
        return zg_api_json(out, zg_api_limit_req_zone(z), 200);
    }
    if (!zg_api_is(&a->seg[3], "keys") || a->n > 5) {
        return zg_api_error(out, 404, "PathNotFound", "path not found");
    }
    addr = zg_limit_req_key_is_addr(z);
    if (a->n == 5) {
        if (!zg_api_method(a, "DELETE")) {
            return zg_api_not_allowed(a, out);
        }
        if (!a->write) {
            return zg_api_not_allowed(a, out);
        }
        klen = zg_api_key_bytes(&a->seg[4], addr, kb, sizeof(kb));
        if (klen == 0 || zg_limit_req_forgive(z, kb, klen) != ZG_OK) {
            return zg_api_error(out, 404, "KeyNotFound", "key not found");
        }
        out->len = 0;
        return 204;
    }
    if (!zg_api_reading(a)) {
        return zg_api_not_allowed(a, out);
    }
    rc = zg_api_top_n(a, out, &n);
    if (rc != 0) {
        return rc;
    }
    if (a->defer != NULL) {
        a->defer->zone = z;
        a->defer->n = n;
        a->defer->addr = addr;
        return 0;
    }
    top = malloc(n * sizeof(*top));
    if (top == NULL) {
        return zg_api_error(out, 500, "NoMemory", "out of memory");
    }
    got = zg_limit_req_top(z, top, n, zg_time_msec());
    rc = zg_api_json(out, zg_api_top_json(top, got, addr), 200);
    free(top);
    return rc;
}

static json_t *zg_api_top_json(const zg_limit_req_top_t *top, size_t got, int addr)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < got; i++) {
        char rate[32];
        /* as limit_req_zone's rate= is written: 1r/m is 16 per 1000 s */
        if (top[i].rate % 1000 == 0) {
            snprintf(rate, sizeof(rate), "%llur/s", (unsigned long long)(top[i].rate / 1000));
        } else {
            snprintf(rate, sizeof(rate), "%llur/m",
                     (unsigned long long)((top[i].rate * 60 + 500) / 1000));
        }
        json_array_append_new(
            arr, json_pack("{s:o,s:f,s:s,s:I}", "key",
                           zg_api_key_text(top[i].key, zg_min(top[i].len, sizeof(top[i].key)),
                                           top[i].len, addr),
                           "excess", (double)top[i].excess / 1000.0, "rate", rate,
                           "last_seen_ms", (json_int_t)top[i].idle));
    }
    return arr;
}

static json_t *zg_api_limit_conn_zone(zg_zone_t *z)
{
    zg_limit_conn_stats_t st;

    zg_limit_conn_stats(z, &st);
    return json_pack("{s:I,s:I,s:I,s:I,s:I}", "passed", (json_int_t)st.passed, "rejected",
                     (json_int_t)st.rejected, "rejected_dry_run",
                     (json_int_t)st.rejected_dry_run, "active", (json_int_t)st.current,
                     "entries", (json_int_t)st.entries);
}

static int zg_api_limit_conns(zg_api_req_t *a, zg_buf_t *out)
{
    zg_zone_t *z;
    json_t *o, *arr;
    zg_limit_conn_top_t *top;
    char name[64];
    size_t n, got;
    int rc, addr;

    if (!zg_api_reading(a)) {
        return zg_api_not_allowed(a, out);
    }
    if (a->n == 2) {
        o = json_object();
        for (z = a->conf->zones.head; o != NULL && z != NULL; z = z->next) {
            if (zg_api_zone_in(a, z, ZG_ZONE_LIMIT_CONN)) {
                json_object_set_new(o, z->name, zg_api_limit_conn_zone(z));
            }
        }
        return zg_api_json(out, o, 200);
    }
    zg_api_name(&a->seg[2], name, sizeof(name));
    z = zg_zone_find((zg_zone_list_t *)&a->conf->zones, name);
    if (!zg_api_zone_in(a, z, ZG_ZONE_LIMIT_CONN)) {
        return zg_api_error(out, 404, "LimitConnNotFound", "limit_conn zone \"%s\" not found",
                            name);
    }
    if (a->n == 3) {
        return zg_api_json(out, zg_api_limit_conn_zone(z), 200);
    }
    if (a->n != 4 || !zg_api_is(&a->seg[3], "keys")) {
        return zg_api_error(out, 404, "PathNotFound", "path not found");
    }
    rc = zg_api_top_n(a, out, &n);
    if (rc != 0) {
        return rc;
    }
    top = malloc(n * sizeof(*top));
    if (top == NULL) {
        return zg_api_error(out, 500, "NoMemory", "out of memory");
    }
    got = zg_limit_conn_top(z, top, n);
    addr = zg_limit_conn_key_is_addr(z);
    arr = json_array();
    for (size_t i = 0; arr != NULL && i < got; i++) {
        json_array_append_new(arr, json_pack("{s:o,s:I}", "key",
                                             zg_api_key_text(top[i].key, top[i].len,
                                                             top[i].len, addr),
                                             "connections", (json_int_t)top[i].count));
    }
    free(top);
    return zg_api_json(out, arr, 200);
}

/* ---- upstreams ---- */

static json_t *zg_api_peer(zg_upstream_conf_t *u, int i)
{
    zg_upstream_peer_stats_t st;

    if (zg_upstream_peer_stats(u, i, &st, zg_time_msec()) != ZG_OK) {
        return json_null();
    }
    if (u->stream) {
        /* nginx Plus's stream peer fields: connections, sent, received */
        return json_pack("{s:i,s:s,s:s,s:i,s:b,s:I,s:I,s:I,s:I,s:I}", "id", i, "server",
                         st.addr->text, "state",
                         st.drain ? "draining"
                         : st.down ? "down"
                         : st.unavailable ? "unavail" : "up",
                         "weight", st.weight, "backup", (int)st.backup, "active",
                         (json_int_t)st.active, "connections", (json_int_t)st.requests, "sent",
                         (json_int_t)st.bytes_sent, "received", (json_int_t)st.bytes_received,
                         "fails", (json_int_t)st.fails);
    }
    return json_pack("{s:i,s:s,s:s,s:i,s:b,s:I,s:I,s:I}", "id", i, "server", st.addr->text,
                     "state",
                     st.drain ? "draining" : st.down ? "down" : st.unavailable ? "unavail" : "up",
                     "weight", st.weight, "backup", (int)st.backup, "active",
                     (json_int_t)st.active, "requests", (json_int_t)st.requests, "fails",
                     (json_int_t)st.fails);
}

static json_t *zg_api_upstream(zg_upstream_conf_t *u)
{
    json_t *peers = json_array();

    for (int i = 0; peers != NULL && i < u->nservers; i++) {
        json_array_append_new(peers, zg_api_peer(u, i));
    }
    return json_pack("{s:o,s:b}", "peers", peers, "zone", u->zone != NULL);
}

static int zg_api_upstreams(zg_api_req_t *a, zg_buf_t *out)
{
    zg_upstream_main_conf_t *umcf = zg_upstream_main_conf(a->conf);
    zg_upstream_conf_t *u;
    json_error_t jerr;
    json_t *o, *v;
    const char *key;
    char name[64];
    int id, st, down = -1, drain = -1, weight = -1;

    if (a->n == 2) {
        if (!zg_api_reading(a)) {
            return zg_api_not_allowed(a, out);
        }
        o = json_object();
        for (u = umcf->upstreams; o != NULL && u != NULL; u = u->next) {
            if (!u->implicit && (int)u->stream == a->stream) {
                json_object_set_new(o, u->name, zg_api_upstream(u));
            }
        }
        return zg_api_json(out, o, 200);
    }
    zg_api_name(&a->seg[2], name, sizeof(name));
    u = zg_upstream_find_in((zg_conf_t *)a->conf, name, 0, a->stream);
    if (u == NULL) {
        return zg_api_error(out, 404, "UpstreamNotFound", "upstream \"%s\" not found", name);
    }
    if (a->n == 3) {
        if (!zg_api_reading(a)) {
            return zg_api_not_allowed(a, out);
        }
        return zg_api_json(out, zg_api_upstream(u), 200);
    }
    if (a->n != 5 || !zg_api_is(&a->seg[3], "servers")) {
        return zg_api_error(out, 404, "PathNotFound", "path not found");
    }
    {
        char t[16];
        zg_api_name(&a->seg[4], t, sizeof(t));
        id = zg_conf_atoi(t, strlen(t));
    }
    if (id < 0 || id >= u->nservers) {
        return zg_api_error(out, 404, "UpstreamServerNotFound", "server not found");
    }
    if (zg_api_reading(a)) {
        return zg_api_json(out, zg_api_peer(u, id), 200);
    }
    if (!a->write || !zg_api_method(a, "PATCH")) {
        return zg_api_not_allowed(a, out);
    }
    if (u->zone == NULL) {
        return zg_api_error(out, 400, "UpstreamStatic",
                            "upstream \"%s\" has no zone: its peers cannot change at run time",
                            name);
    }
    o = json_loadb(a->body, a->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        return zg_api_error(out, 400, "JsonError", "invalid JSON: %s at position %d",
                            jerr.text, jerr.position);
    }
    if (!json_is_object(o)) {
        st = zg_api_error(out, 400, "UpstreamFormatError", "the body must be a JSON object");
        json_decref(o);
        return st;
    }
    json_object_foreach(o, key, v) {
        if (strcmp(key, "down") == 0 && json_is_boolean(v)) {
            down = json_is_true(v);
        } else if (strcmp(key, "drain") == 0 && json_is_boolean(v)) {
            drain = json_is_true(v);
        } else if (strcmp(key, "weight") == 0 && json_is_integer(v)
                   && json_integer_value(v) > 0 && json_integer_value(v) <= 1000000) {
            weight = (int)json_integer_value(v);
        } else if (strcmp(key, "down") == 0 || strcmp(key, "drain") == 0) {
            st = zg_api_error(out, 400, "UpstreamFormatError", "\"%s\" must be a boolean",
                                key);
            json_decref(o);
            return st;
        } else if (strcmp(key, "weight") == 0) {
            st = zg_api_error(out, 400, "UpstreamFormatError",
                                "\"weight\" must be an integer from 1 to 1000000");
            json_decref(o);
            return st;
        } else {
            st = zg_api_error(out, 400, "UpstreamFormatError", "unknown field \"%.64s\"",
                                key);
            json_decref(o);
            return st;
        }
    }
    json_decref(o);
    zg_upstream_peer_set(u, id, down, drain, weight);
    return zg_api_json(out, zg_api_peer(u, id), 200);
}

/* ---- stream server zones (status_zone) ---- */

static json_t *zg_api_server_zone(const zg_stream_status_t *st)
{
    return json_pack("{s:I,s:I,s:{s:I,s:I,s:I,s:I},s:I,s:I}", "processing",
                     (json_int_t)st->processing, "connections", (json_int_t)st->connections,
                     "sessions", "2xx", (json_int_t)st->sessions[0], "4xx",
                     (json_int_t)st->sessions[1], "5xx", (json_int_t)st->sessions[2], "total",
                     (json_int_t)st->total, "received", (json_int_t)st->received, "sent",
                     (json_int_t)st->sent);
}

static int zg_api_server_zones(zg_api_req_t *a, zg_buf_t *out)
{
    zg_stream_status_t st;
    json_t *o;
    char name[64];
    int i;

    if (!zg_api_reading(a)) {
        return zg_api_not_allowed(a, out);
    }
    if (a->n == 2) {
        o = json_object();
        for (i = 0; o != NULL && i < zg_stream_status_count(a->conf); i++) {
            if (zg_stream_status_get(a->conf, i, &st) == ZG_OK) {
                json_object_set_new(o, st.name, zg_api_server_zone(&st));
            }
        }
        return zg_api_json(out, o, 200);
    }
    zg_api_name(&a->seg[2], name, sizeof(name));
    i = zg_stream_status_find(a->conf, name);
    if (a->n != 3 || i < 0 || zg_stream_status_get(a->conf, i, &st) != ZG_OK) {
        return zg_api_error(out, 404, "ServerZoneNotFound", "server zone \"%s\" not found",
                            name);
    }
    return zg_api_json(out, zg_api_server_zone(&st), 200);
}

/* ---- slabs ---- */

static json_t *zg_api_slab(zg_zone_t *z)
{
    zg_slab_stat_t stats[ZG_SLAB_NSLOTS];
    size_t total, fr;
    json_t *slots;
    char size[16];

    zg_shmtx_lock(&z->pool->mutex);
    memcpy(stats, z->pool->stats, sizeof(stats));
    total = z->pool->pages_total;
    fr = z->pool->pages_free;
    zg_shmtx_unlock(&z->pool->mutex);
    slots = json_object();
    for (int s = 0; slots != NULL && s < ZG_SLAB_NSLOTS; s++) {
        snprintf(size, sizeof(size), "%u", 1u << (s + ZG_SLAB_MIN_SHIFT));
        json_object_set_new(slots, size,
                            json_pack("{s:I,s:I,s:I,s:I}", "used", (json_int_t)stats[s].used,
                                      "free", (json_int_t)(stats[s].total - stats[s].used),
                                      "reqs", (json_int_t)stats[s].reqs, "fails",
                                      (json_int_t)stats[s].fails));
    }
    return json_pack("{s:s,s:I,s:{s:I,s:I},s:o}", "kind", z->kind->name, "size",
                     (json_int_t)z->size, "pages", "used", (json_int_t)(total - fr), "free",
                     (json_int_t)fr, "slots", slots);
}

static int zg_api_slabs(zg_api_req_t *a, zg_buf_t *out)
{
    zg_zone_t *z;
    json_t *o;
    char name[64];

    if (!zg_api_reading(a)) {
        return zg_api_not_allowed(a, out);
    }
    if (a->n == 1) {
        o = json_object();
        for (z = a->conf->zones.head; o != NULL && z != NULL; z = z->next) {
            if (z->pool != NULL) {
                json_object_set_new(o, z->name, zg_api_slab(z));
            }
        }
        return zg_api_json(out, o, 200);
    }
    zg_api_name(&a->seg[1], name, sizeof(name));
    z = zg_zone_find((zg_zone_list_t *)&a->conf->zones, name);
    if (a->n != 2 || z == NULL || z->pool == NULL) {
        return zg_api_error(out, 404, "SlabNotFound", "zone \"%s\" not found", name);
    }
    return zg_api_json(out, zg_api_slab(z), 200);
}

/* ---- caches (proxy_cache): figures; DELETE ?key=K removes a key, DELETE without
 * a key sets the counters back to zero ---- */

static json_t *zg_api_cache_zone(zg_zone_t *z)
{
    zg_cache_stats_t st;

    if (zg_cache_stats(z, &st) != ZG_OK) {
        return json_null();
    }
    return json_pack("{s:I,s:I,s:I,s:b,s:{s:I},s:{s:I},s:{s:I},s:{s:I},s:{s:I},s:{s:I},"
                     "s:{s:I},s:I,s:I,s:I}",
                     "size", (json_int_t)st.size, "max_size", (json_int_t)st.max_size,
                     "entries", (json_int_t)st.entries, "cold", st.cold,
                     "hit", "responses", (json_int_t)st.hits,
                     "miss", "responses", (json_int_t)st.misses,
                     "expired", "responses", (json_int_t)st.expired,
                     "stale", "responses", (json_int_t)st.stale,
                     "updating", "responses", (json_int_t)st.updating,
                     "bypass", "responses", (json_int_t)st.bypass,
                     "revalidated", "responses", (json_int_t)st.revalidated,
                     "written_bytes", (json_int_t)st.bytes_written,
                     "stored", (json_int_t)st.stored, "evictions", (json_int_t)st.evictions);
}

static int zg_api_caches(zg_api_req_t *a, zg_buf_t *out)
{
    zg_zone_t *z;
    char name[64];
    const char *key;
    size_t n;

    if (a->n == 2) {
        if (!zg_api_reading(a)) {
            return zg_api_not_allowed(a, out);
        }
        json_t *o = json_object();
        for (z = a->conf->zones.head; o != NULL && z != NULL; z = z->next) {
            if (z->pool != NULL && z->kind == ZG_ZONE_CACHE) {
                json_object_set_new(o, z->name, zg_api_cache_zone(z));
            }
        }
        return zg_api_json(out, o, 200);
    }
    zg_api_name(&a->seg[2], name, sizeof(name));
    z = zg_zone_find((zg_zone_list_t *)&a->conf->zones, name);
    if (a->n != 3 || z == NULL || z->kind != ZG_ZONE_CACHE || z->pool == NULL) {
        return zg_api_error(out, 404, "CacheNotFound", "cache \"%s\" not found", name);
    }
    if (zg_api_reading(a)) {
        return zg_api_json(out, zg_api_cache_zone(z), 200);
    }
    if (!a->write || !zg_api_method(a, "DELETE")) {
        return zg_api_not_allowed(a, out);
    }
    key = zg_api_arg(a, "key", &n);
    if (key == NULL) {
        zg_cache_reset(z);
        return 204;
    }
    int rc = zg_cache_purge(z, key, n);
    if (rc == ZG_ERROR) {
        return zg_api_error(out, 500, "NoMemory", "out of memory");
    }
    if (rc != ZG_OK) {
        return zg_api_error(out, 404, "KeyNotFound", "key not found");
    }
    return 204;
}

/* ---- the router ---- */

static int zg_api_list(zg_api_req_t *a, zg_buf_t *out, json_t *names)
{
    if (!zg_api_reading(a)) {
        json_decref(names);
        return zg_api_not_allowed(a, out);
    }
    return zg_api_json(out, names, 200);
}

static int zg_api_route(const zg_conf_t *conf, int write, const char *method,
                        const char *path, size_t path_len, const char *args, size_t args_len,
                        const char *body, size_t body_len, zg_buf_t *out,
                        zg_api_defer_t *defer)
{
    zg_api_req_t a;
    const char *p = path, *end = path + path_len, *s;
    char ver[16];

    memset(&a, 0, sizeof(a));
    a.defer = defer;
    a.conf = conf;
    a.write = write;
    a.method = method;
    a.args = args ? args : "";
    a.args_len = args ? args_len : 0;
    a.body = body;
    a.body_len = body ? body_len : 0;
    while (p < end) {
        while (p < end && *p == '/') {
            p++;
        }
        if (p == end) {
            break;
        }
        s = p;
        while (p < end && *p != '/') {
            p++;
        }
        if (a.n == ZG_API_SEGMENTS) {
            return zg_api_error(out, 404, "PathNotFound", "path not found");
        }
        a.seg[a.n].data = s;
        a.seg[a.n].len = (size_t)(p - s);
        a.n++;
    }
    if (a.n == 0) {
        return zg_api_list(&a, out, json_pack("[i]", ZG_API_VERSION));
    }
    snprintf(ver, sizeof(ver), "%d", ZG_API_VERSION);
    if (!zg_api_is(&a.seg[0], ver)) {
        return zg_api_error(out, 404, "UnknownVersion", "unknown version");
    }
    if (a.n == 1) {
        return zg_api_list(&a, out, json_pack("[s,s,s,s]", "http", "stream", "slabs", "sync"));
    }
    if (zg_api_is(&a.seg[1], "sync")) {
        /* GET /api/1/sync: the zones with sync=... (zg_sync_api.h) */
        if (a.n != 2) {
            return zg_api_error(out, 404, "PathNotFound", "path not found");
        }
        if (!zg_api_reading(&a)) {
            return zg_api_not_allowed(&a, out);
        }
        return zg_api_json(out, zg_sync_api_json(a.conf), 200);
    }
    if (zg_api_is(&a.seg[1], "slabs")) {
        a.n--;
        memmove(&a.seg[0], &a.seg[1], (size_t)a.n * sizeof(a.seg[0]));
        return zg_api_slabs(&a, out);
    }
    a.stream = zg_api_is(&a.seg[1], "stream");
    if (!a.stream && !zg_api_is(&a.seg[1], "http")) {
        return zg_api_error(out, 404, "PathNotFound", "path not found");
    }
    /* from here the segments start at "http" or "stream" */
    a.n--;
    memmove(&a.seg[0], &a.seg[1], (size_t)a.n * sizeof(a.seg[0]));
    if (a.stream) {
        if (a.n == 1) {
            return zg_api_list(&a, out, json_pack("[s,s,s,s]", "server_zones", "limit_conns",
                                                  "limit_reqs", "upstreams"));
        }
        if (zg_api_is(&a.seg[1], "server_zones")) {
            return zg_api_server_zones(&a, out);
        }
        if (!zg_api_is(&a.seg[1], "limit_reqs") && !zg_api_is(&a.seg[1], "limit_conns")
            && !zg_api_is(&a.seg[1], "upstreams")) {
            return zg_api_error(out, 404, "PathNotFound", "path not found");
        }
    }
    if (a.n == 1) {
        return zg_api_list(&a, out,
                           json_pack("[s,s,s,s,s]", "keyvals", "limit_reqs", "limit_conns",
                                     "upstreams", "caches"));
    }
    if (zg_api_is(&a.seg[1], "keyvals")) {
        return zg_api_keyvals(&a, out);
    }
    if (zg_api_is(&a.seg[1], "limit_reqs")) {
        return zg_api_limit_reqs(&a, out);
    }
    if (zg_api_is(&a.seg[1], "limit_conns")) {
        return zg_api_limit_conns(&a, out);
    }
    if (zg_api_is(&a.seg[1], "upstreams")) {
        return zg_api_upstreams(&a, out);
    }
    if (zg_api_is(&a.seg[1], "caches")) {
        return zg_api_caches(&a, out);
    }
    return zg_api_error(out, 404, "PathNotFound", "path not found");
}

int zg_api_call(const zg_conf_t *conf, int write, const char *method, const char *path,
                size_t path_len, const char *args, size_t args_len, const char *body,
                size_t body_len, zg_buf_t *out)
{
    return zg_api_route(conf, write, method, path, path_len, args, args_len, body, body_len,
                        out, NULL);
}

/* ---- the content handler ---- */

static void zg_api_respond(zg_request_t *r, int status, zg_buf_t *out)
{
    if (out->failed) {
        zg_request_respond(r, 500, NULL, NULL, NULL, 0);
    } else if (status == 204) {
        zg_request_respond(r, status, NULL, NULL, NULL, 0);
    } else if (out->len == 0) {
        zg_request_respond(r, status, NULL, "application/json", "", 0);
    } else {
        zg_buf_append(out, "\n", 1);
        zg_request_respond(r, status, NULL, "application/json", out->data, out->len);
    }
}

static void zg_api_walk_closed(uv_handle_t *h)
{
    zg_api_walk_t *w = h->data;

    free(w->top);
    free(w);
}

static void zg_api_walk_step(uv_timer_t *t)
{
    zg_api_walk_t *w = t->data;
    zg_request_t *r = w->r;
    zg_buf_t out = ZG_BUF_INIT;
    int status;

    if (r != NULL && zg_limit_req_top_step(w->zone, &w->walk, zg_time_msec()) == ZG_AGAIN) {
        return;
    }
    uv_timer_stop(&w->timer);
    if (r != NULL) {
        ((zg_api_ctx_t *)zg_request_ctx(r, zg_api_module))->walk = NULL;
        r->content = NULL;
        status = zg_api_json(&out, zg_api_top_json(w->top, w->walk.have, w->addr), 200);
        zg_api_respond(r, status, &out);
        zg_buf_free(&out);
    }
    uv_close((uv_handle_t *)&w->timer, zg_api_walk_closed);
}

static void zg_api_walk_body(zg_request_t *r, const char *p, size_t n)
{
    (void)r;
    (void)p;
    (void)n;
}

static void zg_api_walk_body_done(zg_request_t *r)
{
    (void)r;
}

static void zg_api_walk_abort(zg_request_t *r)
{
    zg_api_ctx_t *ctx = zg_request_ctx(r, zg_api_module);

    if (ctx->walk != NULL) {
        ctx->walk->r = NULL;   /* its next turn closes and frees it */
        ctx->walk = NULL;
    }
}

static const zg_content_ops_t zg_api_walk_ops = {
    zg_api_walk_body, zg_api_walk_body_done, zg_api_walk_abort, NULL
};

/* starts the chunked top=N walk of d; 500 when out of memory */
static int zg_api_walk_start(zg_request_t *r, const zg_api_defer_t *d)
{
    zg_api_ctx_t *ctx = zg_request_ctx(r, zg_api_module);
    zg_api_walk_t *w = malloc(sizeof(*w));

    if (w == NULL || (w->top = malloc(d->n * sizeof(*w->top))) == NULL) {
        free(w);
        return 500;
    }
    uv_timer_init(r->c->w->loop, &w->timer);
    w->timer.data = w;
    w->r = r;
    w->zone = d->zone;
    w->addr = d->addr;
    zg_limit_req_top_init(&w->walk, w->top, d->n);
    ctx->walk = w;
    r->content = &zg_api_walk_ops;
    uv_timer_start(&w->timer, zg_api_walk_step, 0, ZG_API_WALK_GAP);
    return 0;
}

#define ZG_API_BODY_MAX (1024 * 1024)

static void zg_api_answer(zg_request_t *r)
{
    zg_api_loc_conf_t *alcf = zg_request_conf(r, zg_api_module);
    zg_api_ctx_t *ctx = zg_request_ctx(r, zg_api_module);
    zg_location_t *loc = r->loc;
    zg_buf_t out = ZG_BUF_INIT;
    const char *path = r->ctx.uri.data;
    size_t len = r->ctx.uri.len, skip;
    zg_api_defer_t defer;
    char method[16];
    int status;

    r->content = NULL;
    /* the path below the location's prefix */
    skip = loc != NULL && !loc->exact && loc->path_len <= len ? loc->path_len : 0;
    zg_api_name(&r->ctx.method, method, sizeof(method));
    memset(&defer, 0, sizeof(defer));
    status = zg_api_route(r->c->w->conf, alcf->write, method, path + skip, len - skip,
                          r->ctx.args.data, r->ctx.args.len, ctx->body.data, ctx->body.len,
                          &out, &defer);
    zg_buf_free(&ctx->body);
    if (status == 0) {
        status = zg_api_walk_start(r, &defer);
        if (status == 0) {
            return;
        }
        status = zg_api_error(&out, status, "NoMemory", "out of memory");
    }
    zg_api_respond(r, status, &out);
    zg_buf_free(&out);
}

static void zg_api_body(zg_request_t *r, const char *p, size_t n)
{
    zg_api_ctx_t *ctx = zg_request_ctx(r, zg_api_module);

    if (ctx->body.len + n > ZG_API_BODY_MAX) {
        ctx->body.failed = 1;
        return;
    }
    zg_buf_append(&ctx->body, p, n);
}

static void zg_api_body_done(zg_request_t *r)
{
    zg_api_ctx_t *ctx = zg_request_ctx(r, zg_api_module);

    if (ctx->body.failed) {
        zg_buf_free(&ctx->body);
        r->content = NULL;
        zg_request_respond(r, 413, NULL, NULL, NULL, 0);
        return;
    }
    zg_api_answer(r);
}

static void zg_api_abort(zg_request_t *r)
{
    zg_api_ctx_t *ctx = zg_request_ctx(r, zg_api_module);

    zg_buf_free(&ctx->body);
}

static const zg_content_ops_t zg_api_content_ops = {
    zg_api_body, zg_api_body_done, zg_api_abort, NULL
};

static int zg_api_handler(zg_request_t *r)
{
    zg_api_ctx_t *ctx = zg_request_ctx(r, zg_api_module);

    ctx->body = (zg_buf_t)ZG_BUF_INIT;
    if (r->body_done) {
        zg_api_answer(r);
        return ZG_DONE;
    }
    /* read the body first (POST, PATCH), then answer */
    r->content = &zg_api_content_ops;
    if (r->h->expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        zg_outq_append(&r->c->out, cont, sizeof(cont) - 1);
        zg_outq_flush(&r->c->out);
        r->sent_continue = 1;
    }
    zg_conn_timer(r->c, zg_http_core_loc_conf(r->loc_conf)->client_body_timeout);
    zg_conn_body(r->c);
    return ZG_DONE;
}

static int zg_api_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_api_loc_conf_t *alcf = conf;

    (void)cmd;
    for (int i = 1; i < cf->nargs; i++) {
        if (zg_conf_eq(&cf->args[i], "write=on")) {
            alcf->write = 1;
        } else if (zg_conf_eq(&cf->args[i], "write=off")) {
            alcf->write = 0;
        } else {
            return zg_conf_bad_param(cf, &cf->args[i]);
        }
    }
    return zg_http_core_set_handler(cf, zg_api_handler);
}

static void *zg_api_create_loc_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_api_loc_conf_t));
}

static const zg_command_t zg_api_commands[] = {
    { "api", ZG_CTX_LOC, 0, 0, 1, zg_api_directive, ZG_LOC_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_api_module = {
    .name = "api",
    .commands = zg_api_commands,
    .create_loc_conf = zg_api_create_loc_conf,
    .ctx_size = sizeof(zg_api_ctx_t),
};
