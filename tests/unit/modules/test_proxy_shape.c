/* test_proxy_shape.c — proxy_redirect's rewriting of an upstream's Location and
 * Refresh bytes, the merged hidden set (nginx's defaults + proxy_hide_header -
 * proxy_pass_header) and the inheritance of the shaping directives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "zg_conf.h"
#include "zg_http_core.h"
#include "zg_proxy_shape.h"

static zg_str_t S(const char *s)
{
    zg_str_t v = {strlen(s), s};
    return v;
}

static void test_rewrite(void **state)
{
    char out[64];
    zg_str_t v = S("http://app/a/b"), from = S("http://app/"), to = S("/x/"), none = S(""),
             pre = S("http://h:8");
    (void)state;
    assert_int_equal(zg_proxy_rewrite(&v, 0, &from, &none, &to, out, sizeof(out)), 6);
    assert_memory_equal(out, "/x/a/b", 6);
    assert_int_equal(zg_proxy_rewrite(&v, 0, &from, &pre, &to, out, sizeof(out)), 16);
    assert_memory_equal(out, "http://h:8/x/a/b", 16);
    /* no match: case matters, as nginx; a FROM longer than the value */
    zg_str_t up = S("HTTP://app/"), longer = S("http://app/a/b/c");
    assert_int_equal(zg_proxy_rewrite(&v, 0, &up, &none, &to, out, sizeof(out)), 0);
    assert_int_equal(zg_proxy_rewrite(&v, 0, &longer, &none, &to, out, sizeof(out)), 0);
    /* too small an output */
    assert_int_equal(zg_proxy_rewrite(&v, 0, &from, &pre, &to, out, 10), -1);
    /* Refresh: the part before the URL stays */
    zg_str_t r = S("5; URL=http://app/z");
    long off = zg_proxy_refresh_url(&r);
    assert_int_equal(off, 7);
    assert_int_equal(zg_proxy_rewrite(&r, (size_t)off, &from, &none, &to, out, sizeof(out)), 11);
    assert_memory_equal(out, "5; URL=/x/z", 11);
    zg_str_t norefresh = S("5"), tail = S("5; url=");
    assert_int_equal(zg_proxy_refresh_url(&norefresh), -1);
    assert_int_equal(zg_proxy_refresh_url(&tail), 7);
    assert_int_equal(zg_proxy_rewrite(&tail, 7, &from, &none, &to, out, sizeof(out)), 0);
}

static int hidden(const zg_proxy_shape_loc_conf_t *sc, const char *name)
{
    zg_str_t n = S(name);
    for (int i = 0; i < sc->nhidden; i++) {
        if (zg_http_name_eq(&n, sc->hidden[i].data, sc->hidden[i].len)) {
            return 1;
        }
    }
    return 0;
}

static void test_hidden_set_and_inheritance(void **state)
{
    static const char text[] =
        "http { proxy_hide_header X-A; proxy_http_version 1.0;\n"
        " server { listen 127.0.0.1:1;\n"
        "  location /i { }\n"
        "  location /p { proxy_pass_header Server; proxy_pass_header X-Pad;\n"
        "               proxy_redirect off; proxy_pass_request_body off; }\n"
        "  location /d { proxy_http_version 1.1; proxy_method POST; proxy_set_body b; }\n"
        " }\n"
        "}\n";
    char err[256];
    zg_conf_t *conf;
    zg_http_core_main_conf_t *cmcf;
    zg_proxy_shape_loc_conf_t *sc;

    (void)state;
    zg_conf_no_resolve = 1;
    conf = zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err));
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    cmcf = zg_http_core_main_conf(conf);
    sc = zg_proxy_shape_loc_conf(cmcf->servers[0].locations[0].loc_conf);
    assert_true(hidden(sc, "date") && hidden(sc, "Server") && hidden(sc, "X-A"));
    assert_true(hidden(sc, "x-accel-expires") && !hidden(sc, "X-Other"));
    assert_true(sc->own_server && sc->own_date && sc->http10 && sc->pass_body);
    assert_int_equal(sc->nredirects, 1); /* default */
    assert_null(sc->redirects[0].from);
    sc = zg_proxy_shape_loc_conf(cmcf->servers[0].locations[1].loc_conf);
    assert_true(!hidden(sc, "server") && !hidden(sc, "x-pad") && hidden(sc, "x-a"));
    assert_true(!sc->own_server && sc->own_date && !sc->pass_body);
    assert_int_equal(sc->nredirects, 0);
    sc = zg_proxy_shape_loc_conf(cmcf->servers[0].locations[2].loc_conf);
    assert_true(!sc->http10 && sc->method != NULL && sc->body != NULL);
    zg_conf_free(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite),
        cmocka_unit_test(test_hidden_set_and_inheritance),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
