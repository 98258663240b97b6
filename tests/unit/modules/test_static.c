/* test_static.c — static files: nginx's Range parsing (one range, several, not
 * satisfiable, overflow), the types of a level (inheritance, a later type wins,
 * case), and which levels get static files as their content handler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "zg_conf.h"
#include "zg_http_core.h"
#include "zg_static.h"

static int nranges;
static zg_static_range_t got[8];

static int range_max(const char *v, int64_t size, int max)
{
    memset(got, 0xff, sizeof(got));
    return zg_static_range_parse(v, strlen(v), size, max, got, 8, &nranges);
}

static int range(const char *v, int64_t size, int64_t *s, int64_t *e)
{
    int rc = range_max(v, size, INT32_MAX);

    *s = got[0].start;
    *e = got[0].end;
    return rc == ZG_OK && nranges > 1 ? ZG_AGAIN : rc;
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
    /* the whole body: not bytes, ranges that add up to more than the body, empty body */
    assert_int_equal(range("items=0-1", 1000, &s, &e), ZG_DECLINED);
    assert_int_equal(range("bytes=", 1000, &s, &e), ZG_DECLINED);
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

static void test_ranges_several(void **state)
{
    (void)state;
    /* several: each kept in order, overlapping ones as they are (nginx) */
    assert_int_equal(range_max("bytes=0-1,5-6,-2", 1000, INT32_MAX), ZG_OK);
    assert_int_equal(nranges, 3);
    assert_true(got[0].start == 0 && got[0].end == 2 && got[1].start == 5 && got[1].end == 7);
    assert_true(got[2].start == 998 && got[2].end == 1000);
    assert_int_equal(range_max("bytes=0-499,250-749", 1000, INT32_MAX), ZG_OK);
    assert_int_equal(nranges, 2);
    /* unsatisfiable parts dropped */
    assert_int_equal(range_max("bytes=0-1,5000-,7-8", 1000, INT32_MAX), ZG_OK);
    assert_int_equal(nranges, 2);
    assert_true(got[1].start == 7 && got[1].end == 9);
    /* more than the body: the whole body */
    assert_int_equal(range_max("bytes=0-600,200-800", 1000, INT32_MAX), ZG_DECLINED);
    /* max_ranges: one more than it asks for the whole body */
    assert_int_equal(range_max("bytes=0-1,5-6", 1000, 2), ZG_OK);
    assert_int_equal(range_max("bytes=0-1,5-6,9-10", 1000, 2), ZG_DECLINED);
    assert_int_equal(range_max("bytes=0-1,5-6", 1000, 1), ZG_DECLINED);
    assert_int_equal(range_max("bytes=0-1", 1000, 1), ZG_OK);
    /* without max_ranges: 256 bytes per part beyond the body + 4096 is too much */
    char v[4096] = "bytes=0-0";
    for (int i = 1; i < 19; i++) {
        snprintf(v + strlen(v), sizeof(v) - strlen(v), ",%d-%d", i * 2, i * 2);
    }
    assert_int_equal(range_max(v, 1000, INT32_MAX), ZG_OK); /* 19*257 <= 5096 */
    assert_int_equal(nranges, 19);
    for (int i = 19; i < 40; i++) {
        snprintf(v + strlen(v), sizeof(v) - strlen(v), ",%d-%d", i * 2, i * 2);
    }
    assert_int_equal(range_max(v, 1000, INT32_MAX), ZG_DECLINED);
    assert_int_equal(range_max(v, 1000, 100), ZG_OK); /* max_ranges set: its limit only */
    assert_int_equal(nranges, 40);
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

/* gzip_static and max_ranges: off and no limit by default, inherited, overridden */
static void test_gzip_static_max_ranges_levels(void **state)
{
    static const char text[] =
        "http { gzip_static on; max_ranges 3;\n"
        " server { listen 127.0.0.1:1;\n"
        "  location /i { }\n"
        "  location /o { gzip_static always; max_ranges 0; }\n"
        "  location /f { gzip_static off; }\n"
        " }\n"
        "}\n";
    zg_conf_t *conf = load(text);
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(conf);
    zg_static_loc_conf_t *i = zg_static_loc_conf(cmcf->servers[0].locations[0].loc_conf);
    zg_static_loc_conf_t *o = zg_static_loc_conf(cmcf->servers[0].locations[1].loc_conf);
    zg_static_loc_conf_t *f = zg_static_loc_conf(cmcf->servers[0].locations[2].loc_conf);

    (void)state;
    assert_int_equal(i->gzip_static, ZG_GZIP_STATIC_ON);
    assert_int_equal(i->max_ranges, 3);
    assert_int_equal(o->gzip_static, ZG_GZIP_STATIC_ALWAYS);
    assert_int_equal(o->max_ranges, 0);
    assert_int_equal(f->gzip_static, ZG_GZIP_STATIC_OFF);
    assert_int_equal(f->max_ranges, 3);
    zg_conf_free(conf);

    conf = load("http { server { listen 127.0.0.1:1; } }\n");
    cmcf = zg_http_core_main_conf(conf);
    zg_static_loc_conf_t *d = zg_static_loc_conf(cmcf->servers[0].loc_conf);
    assert_int_equal(d->gzip_static, ZG_GZIP_STATIC_OFF);
    assert_int_equal(d->max_ranges, INT32_MAX);
    zg_conf_free(conf);
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
        cmocka_unit_test(test_ranges_several),
        cmocka_unit_test(test_gzip_static_max_ranges_levels),
        cmocka_unit_test(test_types_levels),
        cmocka_unit_test(test_handlers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
