/* test_headers.c — add_header: inheritance (a level with any replaces the outer
 * list), `always`, the statuses it applies to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "zg_conf.h"
#include "zg_headers.h"
#include "zg_http_core.h"

static void test_inheritance(void **state)
{
    static const char text[] =
        "http { add_header A a; add_header B b always;\n"
        " server { listen 127.0.0.1:1;\n"
        "  location /i { }\n"
        "  location /o { add_header C c; }\n"
        " }\n"
        " server { listen 127.0.0.1:2; add_header D d;\n"
        "  location /j { }\n"
        " }\n"
        "}\n";
    char err[256];
    zg_conf_t *conf;
    zg_http_core_main_conf_t *cmcf;
    zg_headers_loc_conf_t *h;

    (void)state;
    zg_conf_no_resolve = 1;
    conf = zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err));
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    cmcf = zg_http_core_main_conf(conf);
    h = zg_headers_loc_conf(cmcf->servers[0].locations[0].loc_conf);
    assert_int_equal(h->nheaders, 2);
    assert_memory_equal(h->headers[0].name.data, "A", 1);
    assert_false(h->headers[0].always);
    assert_true(h->headers[1].always);
    h = zg_headers_loc_conf(cmcf->servers[0].locations[1].loc_conf);
    assert_int_equal(h->nheaders, 1);
    assert_memory_equal(h->headers[0].name.data, "C", 1);
    h = zg_headers_loc_conf(cmcf->servers[1].locations[0].loc_conf);
    assert_int_equal(h->nheaders, 1);
    assert_memory_equal(h->headers[0].name.data, "D", 1);
    zg_conf_free(conf);

    assert_null(zg_conf_load_string("/x/z.conf", "http { add_header A a never; }", 30, err,
                                    sizeof(err)));
    assert_string_equal(err, "invalid value \"never\" in /x/z.conf:1");
}

static void test_statuses(void **state)
{
    static const int yes[] = { 200, 201, 204, 206, 301, 302, 303, 304, 307, 308 };
    static const int no[] = { 100, 202, 203, 205, 300, 305, 400, 404, 429, 500, 503 };

    (void)state;
    for (size_t i = 0; i < zg_nelems(yes); i++) {
        assert_true(zg_headers_status_ok(yes[i]));
    }
    for (size_t i = 0; i < zg_nelems(no); i++) {
        assert_false(zg_headers_status_ok(no[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inheritance),
        cmocka_unit_test(test_statuses),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
