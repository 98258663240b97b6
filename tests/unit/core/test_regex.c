/* test_regex.c — the PCRE2 wrapper: flags, captures, named captures, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "zg_regex.h"

static zg_regex_t *compile(const char *p, int flags)
{
    char err[256];
    zg_regex_t *re = zg_regex_compile(p, strlen(p), flags, err, sizeof(err));

    if (re == NULL) {
        fail_msg("%s", err);
    }
    return re;
}

static void assert_cap(const zg_regex_caps_t *caps, int i, const char *want)
{
    zg_str_t s = zg_regex_cap(caps, i);

    if (want == NULL) {
        assert_null(s.data);
        assert_int_equal(s.len, 0);
        return;
    }
    assert_non_null(s.data);
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.data, want, s.len);
}

static void test_match_and_case(void **state)
{
    zg_regex_t *re = compile("\\.php$", 0), *ci = compile("\\.php$", ZG_REGEX_CASELESS);

    (void)state;
    assert_int_equal(zg_regex_exec(re, "/a.php", 6, NULL), ZG_OK);
    assert_int_equal(zg_regex_exec(re, "/a.PHP", 6, NULL), ZG_DECLINED);
    assert_int_equal(zg_regex_exec(ci, "/a.PHP", 6, NULL), ZG_OK);
    /* the length counts, not a NUL: "/a.php" is not a match of its first 5 bytes */
    assert_int_equal(zg_regex_exec(re, "/a.php", 5, NULL), ZG_DECLINED);
    assert_string_equal(zg_regex_pattern(re), "\\.php$");
    zg_regex_free(re);
    zg_regex_free(ci);
    zg_regex_free(NULL);
}

static void test_captures(void **state)
{
    zg_regex_t *re = compile("^(www\\.)?(.+)$", 0), *other = compile("^/x/(\\d+)$", 0);
    zg_regex_caps_t caps;

    (void)state;
    memset(&caps, 0, sizeof(caps));
    assert_int_equal(zg_regex_ncaptures(re), 2);
    assert_int_equal(zg_regex_exec(re, "www.example.com", 15, &caps), ZG_OK);
    assert_cap(&caps, 0, "www.example.com");
    assert_cap(&caps, 1, "www.");
    assert_cap(&caps, 2, "example.com");
    assert_cap(&caps, 3, NULL);

    /* an optional group that did not take part is empty */
    assert_int_equal(zg_regex_exec(re, "example.org", 11, &caps), ZG_OK);
    assert_cap(&caps, 1, NULL);
    assert_cap(&caps, 2, "example.org");

    /* no match leaves the captures of the last match */
    assert_int_equal(zg_regex_exec(other, "/y/1", 4, &caps), ZG_DECLINED);
    assert_cap(&caps, 2, "example.org");
    assert_int_equal(zg_regex_exec(other, "/x/42", 5, &caps), ZG_OK);
    assert_cap(&caps, 1, "42");
    assert_cap(&caps, 2, NULL);

    zg_regex_caps_clear(&caps);
    assert_cap(&caps, 0, NULL);
    assert_cap(NULL, 1, NULL);
    zg_regex_free(re);
    zg_regex_free(other);
}

static void test_named(void **state)
{
    zg_regex_t *re = compile("^/(?<user>[a-z]+)/(?<id>\\d+)?$", 0);
    zg_regex_caps_t caps;
    zg_str_t name, s;
    int group;

    (void)state;
    memset(&caps, 0, sizeof(caps));
    assert_int_equal(zg_regex_named(re, 0, &name, &group), ZG_OK);
    assert_int_equal(zg_regex_named(re, 2, &name, &group), ZG_DECLINED);
    assert_int_equal(zg_regex_exec(re, "/bob/7", 6, &caps), ZG_OK);
    s = zg_regex_cap_named(&caps, "user", 4);
    assert_int_equal(s.len, 3);
    assert_memory_equal(s.data, "bob", 3);
    s = zg_regex_cap_named(&caps, "id", 2);
    assert_int_equal(s.len, 1);
    assert_memory_equal(s.data, "7", 1);
    assert_null(zg_regex_cap_named(&caps, "nope", 4).data);
    assert_int_equal(zg_regex_exec(re, "/bob/", 5, &caps), ZG_OK);
    assert_null(zg_regex_cap_named(&caps, "id", 2).data);
    /* named groups are numbered too */
    assert_cap(&caps, 1, "bob");
    zg_regex_free(re);
}

static void test_many_groups(void **state)
{
    char p[512] = "^", s[64];
    zg_regex_t *re;
    zg_regex_caps_t caps;
    int i;

    (void)state;
    for (i = 0; i < 40; i++) {
        strcat(p, "(.)");
        s[i] = (char)('a' + i % 26);
    }
    re = compile(p, 0);
    assert_int_equal(zg_regex_ncaptures(re), 40);
    assert_int_equal(zg_regex_exec(re, s, 40, &caps), ZG_OK);
    assert_int_equal(caps.n, ZG_REGEX_MAX_CAPS + 1);
    assert_cap(&caps, 9, "i");
    assert_cap(&caps, ZG_REGEX_MAX_CAPS + 1, NULL);
    zg_regex_free(re);
}

static void test_errors(void **state)
{
    char err[256];

    (void)state;
    assert_null(zg_regex_compile("^(foo", 5, 0, err, sizeof(err)));
    assert_string_equal(err,
                        "pcre2_compile() failed: missing closing parenthesis in \"^(foo\"");
    assert_null(zg_regex_compile("a**b", 4, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "pcre2_compile() failed: "));
    assert_non_null(strstr(err, " in \"a**b\" at \""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_and_case), cmocka_unit_test(test_captures),
        cmocka_unit_test(test_named),          cmocka_unit_test(test_many_groups),
        cmocka_unit_test(test_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
