/* test_rewrite.c — the rewrite module: args of a rewritten URI, and its config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "zg_conf.h"
#include "zg_http_core.h"
#include "zg_rewrite.h"

static void split(const char *result, const char *old, const char *uri, const char *args,
                  int join)
{
    zg_str_t r = { strlen(result), result }, o = { strlen(old), old }, u, a;
    int j;

    zg_rewrite_split(&r, &o, &u, &a, &j);
    assert_int_equal(u.len, strlen(uri));
    assert_memory_equal(u.data, uri, u.len);
    assert_int_equal(a.len, strlen(args));
    if (a.len) {
        assert_memory_equal(a.data, args, a.len);
    }
    assert_int_equal(j, join);
}

static void test_split(void **state)
{
    (void)state;
    split("/new", "a=1", "/new", "a=1", 0);       /* the request's args stay */
    split("/new?b=2", "a=1", "/new", "b=2", 1);   /* "b=2&a=1" */
    split("/new?b=2", "", "/new", "b=2", 0);
    split("/new?b=2?", "a=1", "/new", "b=2", 0);  /* a final '?' drops the old args */
    split("/new?", "a=1", "/new", "", 0);
}

static void test_conf_lists(void **state)
{
    static const char text[] =
        "http { server { listen 127.0.0.1:1;\n"
        "  set $x 1;\n"
        "  if ($http_a ~* \"^x(y)\") { return 403; }\n"
        "  if ($x) { set $y 2; break; }\n"
        "  location / { rewrite ^/(.*)$ /b/$1 last; rewrite ^ http://e/ permanent; }\n"
        "  location /j { default_type application/json; }\n"
        "} }\n";
    char err[256];
    zg_conf_t *conf;
    zg_http_core_main_conf_t *cmcf;
    zg_rewrite_loc_conf_t *srv, *loc;

    (void)state;
    zg_conf_no_resolve = 1;
    conf = zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err));
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    cmcf = zg_http_core_main_conf(conf);
    srv = zg_rewrite_loc_conf(cmcf->servers[0].loc_conf);
    assert_int_equal(srv->list.n, 3);
    assert_int_equal(srv->list.codes[0].op, ZG_RW_SET);
    assert_int_equal(srv->list.codes[1].op, ZG_RW_IF);
    assert_int_equal(srv->list.codes[1].cond, ZG_RW_IF_RE);
    assert_int_equal(srv->list.codes[1].body->n, 1);
    assert_int_equal(srv->list.codes[1].body->codes[0].code, 403);
    assert_int_equal(srv->list.codes[2].cond, ZG_RW_IF_TRUE);
    assert_int_equal(srv->list.codes[2].body->n, 2);
    assert_int_equal(srv->list.codes[2].body->codes[1].op, ZG_RW_BREAK);
    /* a location's list is its own: the server's is not inherited */
    loc = zg_rewrite_loc_conf(cmcf->servers[0].locations[0].loc_conf);
    assert_int_equal(loc->list.n, 2);
    assert_int_equal(loc->list.codes[0].code, ZG_RW_FLAG_LAST);
    assert_false(loc->list.codes[0].redirect);
    assert_int_equal(loc->list.codes[1].code, ZG_RW_FLAG_PERMANENT);
    assert_true(loc->list.codes[1].redirect);
    assert_string_equal(loc->default_type.data, "text/plain");
    loc = zg_rewrite_loc_conf(cmcf->servers[0].locations[1].loc_conf);
    assert_string_equal(loc->default_type.data, "application/json");
    zg_conf_free(conf);
}

static void test_if_in_location(void **state)
{
    static const char text[] =
        "http { server { listen 127.0.0.1:1;\n"
        "  location / { if ($request_method = OPTIONS) { add_header A a; return 204; }\n"
        "    add_header B b; proxy_pass http://127.0.0.1:2; }\n"
        "} }\n";
    static const struct {
        const char *text, *err;
    } bad[] = {
        { "http { server { if ($a) { add_header A a; } } }",
          "\"add_header\" directive is not allowed here in /x/z.conf:1" },
        { "http { server { location / { if ($a) { proxy_pass http://a:1/x; } } } }",
          "\"proxy_pass\" cannot have URI part in location given by regular expression, or "
          "inside named location, or inside \"if\" statement, or inside \"limit_except\" "
          "block in /x/z.conf:1" },
        { "http { server { location / { if ($a) { if ($b) { } } } } }",
          "\"if\" directive is not allowed here in /x/z.conf:1" },
    };
    char err[512];
    zg_conf_t *conf;
    zg_http_core_main_conf_t *cmcf;
    zg_rewrite_loc_conf_t *loc;
    const zg_rw_code_t *c;

    (void)state;
    zg_conf_no_resolve = 1;
    conf = zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err));
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    cmcf = zg_http_core_main_conf(conf);
    loc = zg_rewrite_loc_conf(cmcf->servers[0].locations[0].loc_conf);
    assert_int_equal(loc->list.n, 1);
    c = &loc->list.codes[0];
    assert_non_null(c->confs);               /* a location of its own */
    assert_int_equal(c->body->n, 1);
    assert_int_equal(c->body->codes[0].code, 204);
    /* it answers as its location does, with its own add_header list */
    assert_non_null(zg_http_core_loc_conf(c->confs)->handler);
    assert_ptr_equal(zg_http_core_loc_conf(c->confs)->handler,
                     zg_http_core_loc_conf(cmcf->servers[0].locations[0].loc_conf)->handler);
    zg_conf_free(conf);

    for (size_t i = 0; i < zg_nelems(bad); i++) {
        assert_null(zg_conf_load_string("/x/z.conf", bad[i].text, strlen(bad[i].text), err,
                                        sizeof(err)));
        assert_string_equal(err, bad[i].err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_conf_lists),
        cmocka_unit_test(test_if_in_location),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
