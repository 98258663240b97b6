/* test_static.c — static files: nginx's Range parsing (one range, several, not
 * satisfiable, overflow), the types of a level (inheritance, a later type wins,
 * case), and which levels get static files as their content handler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "zg_conf.h"
#include "zg_http_core.h"
#include "zg_static.h"

static int range(const char *v, int64_t size, int64_t *s, int64_t *e)
{
    *s = *e = -1;
    return zg_static_range_parse(v, strlen(v), size, s, e);
}

static void test_ranges(void **state)
{
    int64_t s, e;

    (void)state;
    assert_int_equal(range("bytes=0-99", 1000, &s, &e), ZG_OK);
    assert_true(s == 0 && e == 100);
    assert_int_equal(range("bytes=990-2000", 1000, &s, &e), ZG_OK);
    assert_true(s == 990 && e == 1000);
    assert_int_equal(range("bytes=500-", 1000, &s, &e), ZG_OK);
    assert_true(s == 500 && e == 1000);
    assert_int_equal(range("bytes=-10", 1000, &s, &e), ZG_OK);
    assert_true(s == 990 && e == 1000);
    assert_int_equal(range("bytes=-2000", 1000, &s, &e), ZG_OK);
    assert_true(s == 0 && e == 1000);
    assert_int_equal(range("Bytes= 1 - 2 ", 1000, &s, &e), ZG_OK);
    assert_true(s == 1 && e == 3);
    /* the whole body: not bytes, several ranges, more than the body, empty body */
    assert_int_equal(range("items=0-1", 1000, &s, &e), ZG_DECLINED);
    assert_int_equal(range("bytes=", 1000, &s, &e), ZG_DECLINED);
    assert_int_equal(range("bytes=0-1,5-6", 1000, &s, &e), ZG_DECLINED);
    assert_int_equal(range("bytes=0-999,0-999", 1000, &s, &e), ZG_DECLINED);
    assert_int_equal(range("bytes=0-", 0, &s, &e), ZG_DECLINED);
    /* not satisfiable */
    assert_int_equal(range("bytes=1000-", 1000, &s, &e), 416);
    assert_int_equal(range("bytes=-0", 1000, &s, &e), 416);
    assert_int_equal(range("bytes=5-1", 1000, &s, &e), 416);
    assert_int_equal(range("bytes=x", 1000, &s, &e), 416);
    assert_int_equal(range("bytes=1-2x", 1000, &s, &e), 416);
    assert_int_equal(range("bytes=-", 1000, &s, &e), 416);
    assert_int_equal(range("bytes=99999999999999999999-", 1000, &s, &e), 416);
    assert_int_equal(range("bytes=0-99999999999999999999", 1000, &s, &e), 416);
    assert_int_equal(range("bytes=1000-,2000-", 1000, &s, &e), 416);
    /* an unsatisfiable part beside a good one is dropped */
    assert_int_equal(range("bytes=2000-,0-1", 1000, &s, &e), ZG_OK);
    assert_true(s == 0 && e == 2);
}

static zg_conf_t *load(const char *text)
{
    char err[256];
    zg_conf_t *conf;

    zg_conf_no_resolve = 1;
    conf = zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err));
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    return conf;
}

static const char *type_of(void **confs, const char *ext)
{
    const zg_str_t *t = zg_static_type(zg_static_loc_conf(confs), ext, strlen(ext));
    return t != NULL ? t->data : NULL;
}

static void test_types_levels(void **state)
{
    static const char text[] =
        "http { types { text/a a aa; text/b b; } types { text/c c; text/new a; }\n"
        " server { listen 127.0.0.1:1;\n"
        "  location /i { }\n"
        "  location /o { types { image/x X; } }\n"
        "  location /e { types { } }\n"
        " }\n"
        " server { listen 127.0.0.1:2; }\n"
        "}\n";
    zg_conf_t *conf = load(text);
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(conf);
    void **i = cmcf->servers[0].locations[0].loc_conf;
    void **o = cmcf->servers[0].locations[1].loc_conf;
    void **e = cmcf->servers[0].locations[2].loc_conf;

    (void)state;
    assert_string_equal(type_of(i, "a"), "text/new"); /* the later one wins */
    assert_string_equal(type_of(i, "AA"), "text/a");
    assert_string_equal(type_of(i, "c"), "text/c");
    assert_null(type_of(i, "x"));
    assert_string_equal(type_of(o, "x"), "image/x"); /* lowercased */
    assert_null(type_of(o, "a"));                      /* a level's types replace */
    assert_null(type_of(e, "a"));
    zg_conf_free(conf);

    /* no types anywhere: nginx's three */
    conf = load("http { server { listen 127.0.0.1:1; } }\n");
    cmcf = zg_http_core_main_conf(conf);
    assert_string_equal(type_of(cmcf->servers[0].loc_conf, "html"), "text/html");
    assert_string_equal(type_of(cmcf->servers[0].loc_conf, "jpg"), "image/jpeg");
    assert_null(type_of(cmcf->servers[0].loc_conf, "css"));
    zg_conf_free(conf);
}

static void test_handlers(void **state)
{
    static const char text[] =
        "http { upstream u { server 127.0.0.1:9; }\n"
        " server { listen 127.0.0.1:1;\n"
        "  location /none { }\n"
        "  location /try { try_files $uri =404; }\n"
        " }\n"
        " server { listen 127.0.0.1:2; root /srv;\n"
        "  location /a { }\n"
        "  location /p { proxy_pass http://u; }\n"
        "  location /n { location /n/x { } }\n"
        " }\n"
        "}\n";
    zg_conf_t *conf = load(text);
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(conf);
    zg_server_conf_t *s0 = &cmcf->servers[0], *s1 = &cmcf->servers[1];
    zg_phase_handler_pt st;

    (void)state;
    /* no root anywhere: a location without a handler answers 404 as before */
    assert_null(zg_http_core_loc_conf(s0->loc_conf)->handler);
    assert_null(zg_http_core_loc_conf(s0->locations[0].loc_conf)->handler);
    st = zg_http_core_loc_conf(s0->locations[1].loc_conf)->handler;
    assert_non_null(st);
    /* a root: the server level and every location without a handler */
    assert_ptr_equal(zg_http_core_loc_conf(s1->loc_conf)->handler, st);
    assert_ptr_equal(zg_http_core_loc_conf(s1->locations[0].loc_conf)->handler, st);
    assert_ptr_not_equal(zg_http_core_loc_conf(s1->locations[1].loc_conf)->handler, st);
    assert_ptr_equal(zg_http_core_loc_conf(s1->locations[2].locations[0].loc_conf)->handler,
                     st);
    zg_conf_free(conf);

    /* index: a second directive of a level adds to it (nginx); a level without one
     * inherits */
    conf = load("http { index a.html; index b.html c.html;\n"
                " server { listen 127.0.0.1:1; location /x { } location /y { index y; } } }\n");
    cmcf = zg_http_core_main_conf(conf);
    assert_int_equal(zg_static_loc_conf(cmcf->servers[0].locations[0].loc_conf)->nindex, 3);
    assert_int_equal(zg_static_loc_conf(cmcf->servers[0].locations[1].loc_conf)->nindex, 1);
    zg_conf_free(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_types_levels),
        cmocka_unit_test(test_handlers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
