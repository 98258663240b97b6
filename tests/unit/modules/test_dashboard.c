/* test_dashboard.c — the dashboard directive: where it may appear, its api= parameter
 * and the errors that name the file and line.  (The page itself is tested in headless
 * Chromium: tests/integration/test_dashboard.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "zg_conf.h"
#include "zg_log.h"

static zg_conf_t *load(const char *loc, char *err, size_t errlen)
{
    char text[512];

    snprintf(text, sizeof(text),
             "http {\n server {\n  listen 127.0.0.1:1;\n  location = /d { %s }\n }\n}\n", loc);
    return zg_conf_load_string("d.conf", text, strlen(text), err, errlen);
}

static void test_directive(void **state)
{
    char err[512];
    zg_conf_t *conf;

    (void)state;
    zg_log_open("stderr", ZG_LOG_EMERG);
    zg_conf_no_resolve = 1;
    conf = load("dashboard;", err, sizeof(err));
    assert_non_null(conf);
    zg_conf_free(conf);
    conf = load("dashboard api=/admin/api/;", err, sizeof(err));
    assert_non_null(conf);
    zg_conf_free(conf);
    /* api= must be an absolute path ending in '/', with nothing to escape in HTML */
    assert_null(load("dashboard api=admin/;", err, sizeof(err)));
    assert_non_null(strstr(err, "invalid parameter \"api=admin/\" in \"dashboard\" directive"));
    assert_non_null(strstr(err, "d.conf:4"));
    assert_null(load("dashboard api=/x;", err, sizeof(err)));
    assert_null(load("dashboard api=/x\"/;", err, sizeof(err)));
    assert_null(load("dashboard one two;", err, sizeof(err)));
    /* one content handler a location */
    assert_null(load("dashboard; api;", err, sizeof(err)));
    assert_non_null(strstr(err, "is duplicate"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
