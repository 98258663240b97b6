/* test_error_page.c — error_page: codes, "=", "=CODE", inheritance, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "zg_conf.h"
#include "zg_error_page.h"
#include "zg_http_core.h"

static void test_parse_and_inherit(void **state)
{
    static const char text[] =
        "http { error_page 502 503 /50x.html;\n"
        " server { listen 127.0.0.1:1;\n"
        "  location /a { }\n"
        "  location /b { error_page 429 = @too; error_page 403 =200 /x; }\n"
        "  location @too { }\n"
        " } }\n";
    char err[256];
    zg_conf_t *conf;
    zg_http_core_main_conf_t *cmcf;
    const zg_error_page_loc_conf_t *e;

    (void)state;
    zg_conf_no_resolve = 1;
    conf = zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err));
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    cmcf = zg_http_core_main_conf(conf);
    e = zg_conf_module(cmcf->servers[0].locations[0].loc_conf, zg_error_page_module);
    assert_int_equal(e->npages, 2);
    assert_non_null(zg_error_page_find(e, 503));
    assert_int_equal(zg_error_page_find(e, 503)->overwrite, -1);
    assert_null(zg_error_page_find(e, 429));
    e = zg_conf_module(cmcf->servers[0].locations[1].loc_conf, zg_error_page_module);
    assert_int_equal(e->npages, 2);           /* its own list replaces the outer one */
    assert_null(zg_error_page_find(e, 503));
    assert_int_equal(zg_error_page_find(e, 429)->overwrite, 0);
    assert_int_equal(zg_error_page_find(e, 403)->overwrite, 200);
    zg_conf_free(conf);
}

static void test_errors(void **state)
{
    static const struct {
        const char *text, *err;
    } bad[] = {
        { "http { error_page 200 /x; }",
          "value \"200\" must be between 300 and 599 in /x/z.conf:1" },
        { "http { error_page 404 =abc /x; }", "invalid value \"=abc\" in /x/z.conf:1" },
        { "http { error_page =200 /x; }",
          "invalid number of arguments in \"error_page\" directive in /x/z.conf:1" },
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < zg_nelems(bad); i++) {
        assert_null(zg_conf_load_string("/x/z.conf", bad[i].text, strlen(bad[i].text), err,
                                        sizeof(err)));
        assert_string_equal(err, bad[i].err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_inherit),
        cmocka_unit_test(test_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
