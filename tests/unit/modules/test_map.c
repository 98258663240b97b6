/* test_map.c — map: exact (ignoring case), hostnames, regexes, default, volatile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zg_conf.h"
#include "zg_map.h"
#include "zg_vars.h"

static const char *eval(zg_conf_t *conf, const char *text, zg_var_ctx_t *ctx)
{
    static char buf[256];
    char err[256];
    zg_cv_t *cv = zg_cv_compile_vars(zg_conf_vars(conf), text, strlen(text), NULL, 0, err,
                                     sizeof(err));
    size_t n;

    assert_non_null(cv);
    n = zg_cv_eval(cv, ctx, 0, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    zg_cv_free(cv);
    return buf;
}

static void test_map(void **state)
{
    static const char text[] =
        "http {\n"
        " map $arg_h $m { hostnames; default d; A.com a; *.b.com wb; .c.com dc; www.d.* pd;\n"
        "   ~^x(?<n>\\d+)$ x$n; ~*^Y y$1; }\n"
        " map $arg_v $e { 1 one; }\n"
        " map $arg_v $vol { volatile; default $arg_v; }\n"
        "}\n";
    char err[256];
    zg_conf_t *conf;
    zg_var_ctx_t ctx;
    zg_regex_caps_t caps;

    (void)state;
    conf = zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err));
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    memset(&ctx, 0, sizeof(ctx));
    memset(&caps, 0, sizeof(caps));
    ctx.vars = zg_conf_vars(conf);
    ctx.caps = &caps;
#define M(q, want)                                                                  \
    do {                                                                               \
        ctx.args = (zg_str_t)zg_string(q);                                             \
        assert_string_equal(eval(conf, "$m", &ctx), want);                             \
        zg_var_ctx_free(&ctx);                                                         \
    } while (0)
    M("h=a.COM", "a");
    M("h=a.com.", "a");
    M("h=x.b.com", "wb");
    M("h=b.com", "d");
    M("h=c.com", "dc");
    M("h=q.c.com", "dc");
    M("h=www.d.org", "pd");
    M("h=x12", "x12");
    M("h=yes", "y");
    M("h=zzz", "d");
    ctx.args = (zg_str_t)zg_string("v=2");
    assert_string_equal(eval(conf, "[$e]", &ctx), "[]"); /* no default: empty */
    assert_string_equal(eval(conf, "$vol", &ctx), "2");
    ctx.args = (zg_str_t)zg_string("v=3");
    assert_string_equal(eval(conf, "$vol", &ctx), "3");  /* volatile: computed again */
    assert_string_equal(eval(conf, "[$e]", &ctx), "[]");
    zg_var_ctx_free(&ctx);
    zg_conf_free(conf);
}

static void test_map_errors(void **state)
{
    static const struct {
        const char *text, *err;
    } bad[] = {
        { "http { map $a $b { a; } }", "invalid number of the map parameters in /x/z.conf:1" },
        { "http { map $a $b { default 1; default 2; } }",
          "duplicate default map parameter in /x/z.conf:1" },
        { "http { map $a $uri { } }", "the \"uri\" variable is built in in /x/z.conf:1" },
        { "http { map $a $b { ~( x; } }",
          "pcre2_compile() failed: missing closing parenthesis in \"(\" in /x/z.conf:1" },
        { "http { map $a $b { x 1; } map $a $b { y 1; } }",
          "the duplicate \"b\" variable in /x/z.conf:1" },
        { "http { map $a $b { x { } } }", "unexpected \"{\" in /x/z.conf:1" },
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < zg_nelems(bad); i++) {
        assert_null(zg_conf_load_string("/x/z.conf", bad[i].text, strlen(bad[i].text), err,
                                        sizeof(err)));
        assert_string_equal(err, bad[i].err);
    }
}

static void test_map_include(void **state)
{
    char path[] = "/tmp/zg-map-XXXXXX", text[512], err[256];
    zg_conf_t *conf;
    zg_var_ctx_t ctx;
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "one 1;\ntwo 2;\n", 14), 14);
    close(fd);
    snprintf(text, sizeof(text), "http { map $arg_k $v { default 0; include %s; } }", path);
    conf = zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err));
    unlink(path);
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.vars = zg_conf_vars(conf);
    ctx.args = (zg_str_t)zg_string("k=two");
    assert_string_equal(eval(conf, "$v", &ctx), "2");
    zg_var_ctx_free(&ctx);
    ctx.args = (zg_str_t)zg_string("k=three");
    assert_string_equal(eval(conf, "$v", &ctx), "0");
    zg_var_ctx_free(&ctx);
    zg_conf_free(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_map_errors),
        cmocka_unit_test(test_map_include),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
