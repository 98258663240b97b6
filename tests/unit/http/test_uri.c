/* test_uri.c — zg_http_parse_uri: the request path as nginx 1.22 normalises it
 * (every expectation below was checked against /usr/sbin/nginx's $uri and $args),
 * the fast-path test and the escaping used when a path is forwarded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_http.h"

typedef struct {
    const char *in;
    const char *path; /* NULL: refused (400) */
    const char *args; /* NULL: no '?' */
} uri_case_t;

static const uri_case_t merged[] = {
    {"/", "/", NULL},
    {"/login", "/login", NULL},
    {"//login", "/login", NULL},
    {"///a////b//", "/a/b/", NULL},
    {"/%6cogin", "/login", NULL},
    {"/%6Cogin", "/login", NULL},
    {"/%4C%4f%47", "/LOG", NULL},
    {"/x/../login", "/login", NULL},
    {"/./login", "/login", NULL},
    {"/a/b/../../admin/", "/admin/", NULL},
    {"/x/..%2fadmin", "/admin", NULL},
    {"/x/..%2Fadmin", "/admin", NULL},
    {"/a/%2e%2e/b", "/b", NULL},
    {"/a/%2E%2e/b", "/b", NULL},
    {"/a/.%2e/b", "/b", NULL},
    {"/%2e/a", "/a", NULL},
    {"/%2F%2Fx", "/x", NULL},
    {"//./", "/", NULL},
    {"/a/.", "/a/", NULL},
    {"/a/..", "/", NULL},
    {"/a/b/..", "/a/", NULL},
    {"/.", "/", NULL},
    {"/secret#f", "/secret", NULL},
    {"/secret#f?x", "/secret", NULL},
    {"/a/.#f", "/a/", NULL},
    {"/a/b/..#f", "/a/", NULL},
    {"/a?b#c?d", "/a", "b"},
    {"/a?x=%41&y=/../", "/a", "x=%41&y=/../"},
    {"/a/b/..?", "/a/", ""},
    {"/a/.?q", "/a/", "q"},
    {"/a%3fb?c=%41#x", "/a?b", "c=%41"},
    {"/a%23b%25c", "/a#b%c", NULL},
    {"/a%2523", "/a%23", NULL},
    {"/a/..%3fx", "/a/..?x", NULL},
    {"/a/.%23", "/a/.#", NULL},
    {"/...", "/...", NULL},
    {"/.a/..b/", "/.a/..b/", NULL},
    {"/a./b../", "/a./b../", NULL},
    {"/a%20b", "/a b", NULL},
    {"/%ff", "/\xff", NULL},
    {"?q", "/", "q"},
    {"/../x", NULL, NULL},
    {"/..", NULL, NULL},
    {"/%2e%2e", NULL, NULL},
    {"/%2E%2E/x", NULL, NULL},
    {"/a/../../x", NULL, NULL},
    {"/a/..%2f..%2fx", NULL, NULL},
    {"/..?x", NULL, NULL},
    {"/..#x", NULL, NULL},
    {"/a%00b", NULL, NULL},
    {"/a%0", NULL, NULL},
    {"/a%", NULL, NULL},
    {"/a%zz", NULL, NULL},
    {"/a%g0", NULL, NULL},
    {"a", NULL, NULL},
    {"", NULL, NULL},
};

static const uri_case_t unmerged[] = {
    {"//login", "//login", NULL},
    {"/a//b/", "/a//b/", NULL},
    {"//./", "//", NULL},
    {"//..", "/", NULL},
    {"/a//../", "/a/", NULL},
    {"/x/..%2f%2fadmin", "//admin", NULL},
    {"/../x", NULL, NULL},
};

static void check(const uri_case_t *t, size_t n, int merge)
{
    char out[256];

    for (size_t i = 0; i < n; i++) {
        zg_http_uri_t u;
        size_t len = strlen(t[i].in);

        memset(out, 0x55, sizeof(out));
        int rc = zg_http_parse_uri(t[i].in, len, merge, out, &u);

        if (t[i].path == NULL) {
            if (rc != ZG_ERROR) {
                fail_msg("%s: want an error, got \"%.*s\"", t[i].in, (int)u.path_len, out);
            }
            continue;
        }
        if (rc != ZG_OK) {
            fail_msg("%s: refused", t[i].in);
        }
        if (u.path_len != strlen(t[i].path) || memcmp(out, t[i].path, u.path_len) != 0) {
            fail_msg("%s: want \"%s\" got \"%.*s\"", t[i].in, t[i].path, (int)u.path_len, out);
        }
        assert_true(u.path_len <= (len ? len : 1));
        if (t[i].args == NULL) {
            assert_int_equal(u.has_args, 0);
            assert_int_equal(u.args_len, 0);
        } else {
            assert_int_equal(u.has_args, 1);
            assert_int_equal(u.args_len, strlen(t[i].args));
            assert_memory_equal(t[i].in + u.args_off, t[i].args, u.args_len);
        }
        assert_int_equal(u.quoted, strchr(t[i].in, '%') != NULL &&
                                       (strchr(t[i].in, '?') == NULL ||
                                        strchr(t[i].in, '%') < strchr(t[i].in, '?')) &&
                                       (strchr(t[i].in, '#') == NULL ||
                                        strchr(t[i].in, '%') < strchr(t[i].in, '#')));
    }
}

static void test_merged(void **state)
{
    (void)state;
    check(merged, zg_nelems(merged), 1);
}

static void test_unmerged(void **state)
{
    (void)state;
    check(unmerged, zg_nelems(unmerged), 0);
}

/* the fast path is taken only where the normaliser would change nothing */
static void test_complex(void **state)
{
    static const char *simple[] = {"/", "/a/b.c", "/a?x=//./%#", "/a.", "/a/b/", "/~u/x+y"};
    static const char *complex[] = {"//", "/./", "/.", "/a%41", "/a#", "/a?b#c", "/a/..",
                                    "/.x"};
    char out[64];
    zg_http_uri_t u;

    (void)state;
    for (size_t i = 0; i < zg_nelems(simple); i++) {
        const char *s = simple[i];
        const char *q = strchr(s, '?');
        size_t plen = q ? (size_t)(q - s) : strlen(s);

        if (strchr(simple[i], '#') && strchr(simple[i], '?') == NULL) {
            continue;
        }
        assert_false(zg_http_uri_complex(s, strlen(s)) && strchr(s, '#') == NULL);
        if (!zg_http_uri_complex(s, strlen(s))) {
            assert_int_equal(zg_http_parse_uri(s, strlen(s), 1, out, &u), ZG_OK);
            assert_int_equal(u.path_len, plen);
            assert_memory_equal(out, s, plen);
        }
    }
    for (size_t i = 0; i < zg_nelems(complex); i++) {
        assert_true(zg_http_uri_complex(complex[i], strlen(complex[i])));
    }
}

static void test_escape(void **state)
{
    char out[64];
    const char in[] = "/a b#c%d?e\x01\x7f\xff/~+";
    size_t n = zg_http_escape_uri(NULL, in, sizeof(in) - 1);

    (void)state;
    assert_int_equal(n, zg_http_escape_uri(out, in, sizeof(in) - 1));
    assert_memory_equal(out, "/a%20b%23c%25d%3Fe%01%7F%FF/~+", n);
    assert_int_equal(n, strlen("/a%20b%23c%25d%3Fe%01%7F%FF/~+"));
}

/* a decoded CR LF in $uri must not start a header line of its own */
static void test_header_safe(void **state)
{
    char b[64] = "/a\r\nSet-Cookie: x\t\x7f";
    size_t n = zg_http_header_safe(b, strlen(b), sizeof(b));

    (void)state;
    assert_int_equal(n, strlen("/a%0D%0ASet-Cookie: x\t%7F"));
    assert_memory_equal(b, "/a%0D%0ASet-Cookie: x\t%7F", n);
    strcpy(b, "plain");
    assert_int_equal(zg_http_header_safe(b, 5, sizeof(b)), 5);
    /* cut at the buffer's end, never past it */
    memcpy(b, "ab\ncd", 5);
    memset(b + 5, '#', 4);
    assert_int_equal(zg_http_header_safe(b, 5, 6), 6);
    assert_memory_equal(b, "ab%0Ac###", 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merged),
        cmocka_unit_test(test_unmerged),
        cmocka_unit_test(test_complex),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_header_safe),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
