/* test_api.c — the JSON API without HTTP (zg_api_call): routes, methods, write=on,
 * error bodies, keyvals through POST/PATCH/DELETE, limit_req keys and forgiving. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zg_test.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "zg_api.h"
#include "zg_keyval.h"
#include "zg_limit_req.h"
#include "zg_log.h"
#include "zg_upstream.h"

static const char conf_text[] =
    "http {\n"
    "  keyval_zone zone=kv:32k;\n"
    "  keyval_zone zone=ips:32k type=ip;\n"
    "  limit_req_zone $binary_remote_addr zone=perip:64k rate=1r/m;\n"
    "  upstream app { zone app 32k; server 127.0.0.1:1; server 127.0.0.1:2; }\n"
    "  upstream plain { server 127.0.0.1:3; }\n"
    "}\n";

static zg_conf_t *conf;

/* one call; the answer parsed (NULL when empty) into *doc */
static int call(int write, const char *method, const char *path, const char *body,
                json_t **doc)
{
    zg_buf_t out = ZG_BUF_INIT;
    const char *q = strchr(path, '?');
    size_t plen = q ? (size_t)(q - path) : strlen(path);
    int st = zg_api_call(conf, write, method, path, plen, q ? q + 1 : NULL,
                         q ? strlen(q + 1) : 0, body, body ? strlen(body) : 0, &out);

    *doc = out.len ? json_loadb(out.data, out.len, 0, NULL) : NULL;
    if (out.len) {
        assert_non_null(*doc);
    }
    zg_buf_free(&out);
    return st;
}

static int call0(int write, const char *method, const char *path, const char *body)
{
    json_t *doc;
    int st = call(write, method, path, body, &doc);

    json_decref(doc);
    return st;
}

/* the "code" of an error answer */
static const char *code_of(json_t *doc)
{
    static char code[64];

    snprintf(code, sizeof(code), "%s",
             json_string_value(json_object_get(json_object_get(doc, "error"), "code")));
    json_decref(doc);
    return code;
}

static int setup_conf(void **state)
{
    char err[256];

    (void)state;
    zg_log_open("stderr", ZG_LOG_EMERG);
    zg_conf_no_resolve = 1;
    conf = zg_conf_load_string("api.conf", conf_text, sizeof(conf_text) - 1, err, sizeof(err));
    assert_non_null(conf);
    assert_int_equal(zg_zone_map_all(&conf->zones, NULL, err, sizeof(err)), ZG_OK);
    for (zg_upstream_conf_t *u = zg_upstream_main_conf(conf)->upstreams; u; u = u->next) {
        assert_int_equal(zg_upstream_init(u), ZG_OK);
    }
    memset(&ctx, 0, sizeof(ctx));
    set_ip(0x0a000001);
    return 0;
}

static int teardown_conf(void **state)
{
    (void)state;
    for (zg_upstream_conf_t *u = zg_upstream_main_conf(conf)->upstreams; u; u = u->next) {
        zg_upstream_cleanup(u);
    }
    zg_zone_unmap_all(&conf->zones);
    zg_conf_free(conf);
    return 0;
}

static void test_routes_and_methods(void **state)
{
    json_t *doc;

    (void)state;
    assert_int_equal(call(0, "GET", "/", NULL, &doc), 200);
    assert_true(json_is_array(doc) && json_integer_value(json_array_get(doc, 0)) == 1);
    json_decref(doc);
    assert_int_equal(call(0, "GET", "/1/http/", NULL, &doc), 200);
    assert_int_equal(json_array_size(doc), 5); /* ... upstreams, caches */
    json_decref(doc);
    assert_int_equal(call(0, "GET", "/9/http", NULL, &doc), 404);
    assert_string_equal(code_of(doc), "UnknownVersion");
    assert_int_equal(call(0, "GET", "/1/nothing", NULL, &doc), 404);
    assert_string_equal(code_of(doc), "PathNotFound");
    assert_int_equal(call(0, "GET", "/1/a/b/c/d/e/f/g/h/i", NULL, &doc), 404);
    json_decref(doc);
    /* writes without write=on: 405 MethodDisabled; with it, a method a path does
     * not take: 405 MethodNotSupported */
    assert_int_equal(call(0, "DELETE", "/1/http/keyvals/kv", NULL, &doc), 405);
    assert_string_equal(code_of(doc), "MethodDisabled");
    assert_int_equal(call(1, "PUT", "/1/http/keyvals/kv", "{}", &doc), 405);
    assert_string_equal(code_of(doc), "MethodNotSupported");
    assert_int_equal(call(1, "POST", "/1/slabs", "{}", &doc), 405);
    json_decref(doc);
    assert_int_equal(call(0, "GET", "/1/slabs/kv", NULL, &doc), 200);
    assert_string_equal(json_string_value(json_object_get(doc, "kind")), "keyval");
    json_decref(doc);
}

static void test_keyvals(void **state)
{
    json_t *doc;

    (void)state;
    assert_int_equal(call0(1, "POST", "/1/http/keyvals/kv", "{\"a\":\"1\",\"b\":\"2\"}"), 201);
    assert_int_equal(call(1, "POST", "/1/http/keyvals/kv", "{\"c\":\"3\",\"a\":\"x\"}", &doc),
                     409);
    assert_string_equal(code_of(doc), "KeyvalKeyExists");
    /* the 409 changed nothing: c was not added */
    assert_int_equal(call(0, "GET", "/1/http/keyvals/kv", NULL, &doc), 200);
    assert_int_equal(json_object_size(doc), 2);
    json_decref(doc);
    assert_int_equal(call0(1, "PATCH", "/1/http/keyvals/kv", "{\"a\":null,\"b\":\"22\"}"),
                     204);
    assert_int_equal(call(0, "GET", "/1/http/keyvals/kv?key=b", NULL, &doc), 200);
    assert_string_equal(json_string_value(json_object_get(doc, "b")), "22");
    json_decref(doc);
    assert_int_equal(call(0, "GET", "/1/http/keyvals/kv?key=a", NULL, &doc), 404);
    json_decref(doc);
    /* bad bodies */
    assert_int_equal(call(1, "PATCH", "/1/http/keyvals/kv", "", &doc), 400);
    json_decref(doc);
    assert_int_equal(call(1, "PATCH", "/1/http/keyvals/kv", "{\"a\":1}", &doc), 400);
    assert_string_equal(code_of(doc), "KeyvalFormatError");
    assert_int_equal(call(1, "POST", "/1/http/keyvals/kv", "{\"a\":null}", &doc), 400);
    json_decref(doc);
    assert_int_equal(call(1, "PATCH", "/1/http/keyvals/kv", "{\"a\":\"1\",\"a\":\"2\"}", &doc),
                     400);
    assert_string_equal(code_of(doc), "JsonError");
    assert_int_equal(call(1, "PATCH", "/1/http/keyvals/ips", "{\"10.0.0.300\":\"1\"}", &doc),
                     400);
    assert_string_equal(code_of(doc), "KeyvalKeyError");
    assert_int_equal(call(1, "PATCH", "/1/http/keyvals/nope", "{}", &doc), 404);
    assert_string_equal(code_of(doc), "KeyvalNotFound");
    /* a refused POST adds nothing, on ip zones too */
    assert_int_equal(call0(1, "POST", "/1/http/keyvals/ips", "{\"10.0.0.0/8\":\"a\"}"), 201);
    assert_int_equal(call(1, "POST", "/1/http/keyvals/ips",
                          "{\"192.0.2.0/24\":\"b\",\"10.9.9.9/8\":\"c\"}", &doc),
                     409);
    assert_string_equal(code_of(doc), "KeyvalKeyExists");
    assert_int_equal(call(0, "GET", "/1/http/keyvals/ips", NULL, &doc), 200);
    assert_int_equal(json_object_size(doc), 1);
    assert_string_equal(json_string_value(json_object_get(doc, "10.0.0.0/8")), "a");
    json_decref(doc);
    assert_int_equal(call0(1, "DELETE", "/1/http/keyvals/kv", NULL), 204);
    assert_int_equal(call(0, "GET", "/1/http/keyvals", NULL, &doc), 200);
    assert_int_equal(json_object_size(json_object_get(doc, "kv")), 0);
    json_decref(doc);
}

static void test_limit_req_keys(void **state)
{
    zg_limit_req_zone_conf_t *zc = zg_zone_find(&conf->zones, "perip")->conf;
    zg_limit_req_conf_t l = { zc, 3000, ZG_LIMIT_REQ_NODELAY };
    zg_limit_req_result_t res;
    json_t *doc, *k;
    int i;

    (void)state;
    for (i = 0; i < 3; i++) {
        assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, zg_time_msec(), &res),
                         ZG_OK);
    }
    assert_int_equal(call(0, "GET", "/1/http/limit_reqs/perip/keys?top=3", NULL, &doc), 200);
    assert_int_equal(json_array_size(doc), 1);
    k = json_array_get(doc, 0);
    assert_string_equal(json_string_value(json_object_get(k, "key")), "10.0.0.1");
    assert_string_equal(json_string_value(json_object_get(k, "rate")), "1r/m");
    assert_true(json_real_value(json_object_get(k, "excess")) > 1.9);
    json_decref(doc);
    assert_int_equal(call(0, "GET", "/1/http/limit_reqs/perip", NULL, &doc), 200);
    assert_int_equal(json_integer_value(json_object_get(doc, "passed")), 3);
    json_decref(doc);
    assert_int_equal(call0(0, "GET", "/1/http/limit_reqs/perip/keys?top=x", NULL), 400);
    assert_int_equal(call0(0, "DELETE", "/1/http/limit_reqs/perip/keys/10.0.0.1", NULL), 405);
    assert_int_equal(call0(1, "DELETE", "/1/http/limit_reqs/perip/keys/10.0.0.1", NULL), 204);
    assert_int_equal(call0(1, "DELETE", "/1/http/limit_reqs/perip/keys/10.0.0.1", NULL), 404);
    assert_int_equal(call(0, "GET", "/1/http/limit_reqs/perip/keys", NULL, &doc), 200);
    assert_int_equal(json_array_size(doc), 0);
    json_decref(doc);
}

static void test_upstreams(void **state)
{
    json_t *doc;

    (void)state;
    assert_int_equal(call(1, "PATCH", "/1/http/upstreams/app/servers/1", "{\"weight\":4}",
                          &doc),
                     200);
    assert_int_equal(json_integer_value(json_object_get(doc, "weight")), 4);
    json_decref(doc);
    assert_int_equal(call(1, "PATCH", "/1/http/upstreams/app/servers/1", "{\"weight\":0}",
                          &doc),
                     400);
    assert_string_equal(code_of(doc), "UpstreamFormatError");
    /* an upstream without a zone is per worker: no run-time changes */
    assert_int_equal(call(1, "PATCH", "/1/http/upstreams/plain/servers/0", "{\"down\":true}",
                          &doc),
                     400);
    assert_string_equal(code_of(doc), "UpstreamStatic");
    assert_int_equal(call(0, "GET", "/1/http/upstreams", NULL, &doc), 200);
    assert_non_null(json_object_get(doc, "app"));
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_and_methods),
        cmocka_unit_test(test_keyvals),
        cmocka_unit_test(test_limit_req_keys),
        cmocka_unit_test(test_upstreams),
    };
    return cmocka_run_group_tests(tests, setup_conf, teardown_conf);
}
