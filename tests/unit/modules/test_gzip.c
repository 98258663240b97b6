/* test_gzip.c — gzip's Accept-Encoding reading (q-values, tokens, case) and its
 * directives: defaults, inheritance, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "zg_conf.h"
#include "zg_gzip.h"
#include "zg_http_core.h"

static int acc(const char *v)
{
    return zg_gzip_accepts(v, strlen(v));
}

static void test_accept_encoding(void **state)
{
    (void)state;
    assert_true(acc("gzip"));
    assert_true(acc("GZip"));
    assert_true(acc("deflate, gzip"));
    assert_true(acc("br;q=1.0, gzip;q=0.5"));
    assert_true(acc("gzip; q=0.001"));
    assert_true(acc("gzip;q=1"));
    assert_false(acc(""));
    assert_false(acc("deflate, br"));
    assert_false(acc("gzip;q=0"));
    assert_false(acc("gzip;q=0.000"));
    assert_false(acc("gzip ; q=0"));
    assert_false(acc("x-gzip2"));
    assert_false(acc("gzipx"));
    assert_false(acc("notgzip"));
    assert_true(acc("identity,gzip"));
}

static zg_conf_t *load(const char *text, char *err, size_t errlen)
{
    zg_conf_no_resolve = 1;
    return zg_conf_load_string("/x/z.conf", text, strlen(text), err, errlen);
}

static void test_directives(void **state)
{
    static const char text[] =
        "http { gzip on; gzip_types application/json; gzip_comp_level 5;\n"
        " server { listen 127.0.0.1:1;\n"
        "  location /i { }\n"
        "  location /o { gzip off; gzip_min_length 1k; gzip_types *; gzip_vary on;\n"
        "    gzip_proxied expired no-cache; gzip_http_version 1.0; gzip_disable msie6 \"^curl\";\n"
        "    gzip_buffers 16 8k; }\n"
        " }\n"
        "}\n";
    char err[256];
    zg_conf_t *conf;
    zg_gzip_loc_conf_t *g;

    (void)state;
    conf = load(text, err, sizeof(err));
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(conf);
    g = zg_gzip_loc_conf(cmcf->servers[0].locations[0].loc_conf);
    assert_int_equal(g->enable, 1);
    assert_int_equal(g->level, 5);
    assert_int_equal(g->min_length, 20);
    assert_int_equal(g->http_minor, 1);
    assert_int_equal(g->vary, 0);
    assert_int_equal(g->ntypes, 1);
    assert_false(g->any_type);
    g = zg_gzip_loc_conf(cmcf->servers[0].locations[1].loc_conf);
    assert_int_equal(g->enable, 0);
    assert_int_equal(g->min_length, 1024);
    assert_true(g->any_type);
    assert_int_equal(g->vary, 1);
    assert_int_equal(g->http_minor, 0);
    assert_int_equal(g->proxied, ZG_GZIP_PROXIED_EXPIRED | ZG_GZIP_PROXIED_NO_CACHE);
    assert_true(g->msie6);
    assert_int_equal(g->ndisable, 1);
    zg_conf_free(conf);
}

static void test_errors(void **state)
{
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"http { gzip maybe; }", "invalid value \"maybe\" in \"gzip\" directive"},
        {"http { gzip_comp_level 10; }", "value must be between 1 and 9"},
        {"http { gzip_proxied sometimes; }", "invalid value \"sometimes\""},
        {"http { gzip_http_version 2.0; }", "invalid value \"2.0\""},
        {"http { gzip_disable \"(\"; }", "pcre2_compile() failed"},
        {"http { gzip_buffers 0 8k; }", "invalid value \"0\""},
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        zg_conf_t *conf = load(bad[i].text, err, sizeof(err));
        assert_null(conf);
        if (strstr(err, bad[i].want) == NULL || strstr(err, "/x/z.conf:1") == NULL) {
            fail_msg("%s: got %s", bad[i].text, err);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_encoding),
        cmocka_unit_test(test_directives),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
