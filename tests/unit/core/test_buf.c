/* test_buf.c — the growable buffer: appends, numbers, printf, consume, detach,
 * exact resize, and a failed allocation that makes later appends no-ops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zg_buf.h"

static void test_append_and_text(void **state)
{
    zg_buf_t b = ZG_BUF_INIT;

    (void)state;
    assert_int_equal(zg_buf_str(&b, "limit"), ZG_OK);
    assert_int_equal(zg_buf_append(&b, "_req ", 5), ZG_OK);
    assert_int_equal(zg_buf_num(&b, 0), ZG_OK);
    assert_int_equal(zg_buf_str(&b, " "), ZG_OK);
    assert_int_equal(zg_buf_num(&b, UINT64_MAX), ZG_OK);
    assert_int_equal(zg_buf_printf(&b, " %s=%d", "x", -3), ZG_OK);
    assert_string_equal(zg_buf_cstr(&b), "limit_req 0 18446744073709551615 x=-3");
    assert_true(b.cap > b.len);
    zg_buf_consume(&b, 6);
    assert_string_equal(zg_buf_cstr(&b), "req 0 18446744073709551615 x=-3");
    zg_buf_consume(&b, 1000);
    assert_int_equal(b.len, 0);
    zg_buf_free(&b);
    assert_null(b.data);
}

static void test_grows_by_doubling(void **state)
{
    zg_buf_t b = ZG_BUF_INIT;
    char chunk[1000];
    size_t caps = 0, last = 0;

    (void)state;
    memset(chunk, 'a', sizeof(chunk));
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(zg_buf_append(&b, chunk, sizeof(chunk)), ZG_OK);
        if (b.cap != last) {
            caps++;
            last = b.cap;
        }
    }
    assert_int_equal(b.len, 1000 * sizeof(chunk));
    assert_true(caps < 20); /* a million bytes in fewer than 20 reallocations */
    assert_int_equal(b.data[b.len - 1], 'a');
    zg_buf_free(&b);
}

static void test_detach(void **state)
{
    zg_buf_t b = ZG_BUF_INIT;
    size_t len;
    char *p;

    (void)state;
    p = zg_buf_detach(&b, &len);
    assert_non_null(p); /* an empty text is "" */
    assert_int_equal(len, 0);
    assert_string_equal(p, "");
    free(p);
    zg_buf_str(&b, "slab_stat");
    p = zg_buf_detach(&b, &len);
    assert_string_equal(p, "slab_stat");
    assert_int_equal(len, 9);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(p);
}

static void test_resize(void **state)
{
    zg_buf_t b = ZG_BUF_INIT;

    (void)state;
    assert_int_equal(zg_buf_resize(&b, 8192), ZG_OK);
    assert_int_equal(b.cap, 8192);
    memcpy(b.data, "GET / HTTP/1.1\r\n", 16);
    b.len = 16;
    assert_int_equal(zg_buf_resize(&b, 8), ZG_ERROR); /* below len: refused, kept */
    assert_int_equal(b.cap, 8192);
    assert_int_equal(zg_buf_resize(&b, 16), ZG_OK);
    assert_memory_equal(b.data, "GET / HTTP/1.1\r\n", 16);
    zg_buf_free(&b);
}

static void test_failure_is_sticky(void **state)
{
    zg_buf_t b = ZG_BUF_INIT;
    size_t len = 1;

    (void)state;
    zg_buf_str(&b, "kept");
    assert_int_equal(zg_buf_reserve(&b, SIZE_MAX - 4), ZG_ERROR);
    assert_true(b.failed);
    assert_int_equal(zg_buf_str(&b, "lost"), ZG_ERROR);
    assert_int_equal(b.len, 4);
    assert_null(zg_buf_cstr(&b));
    assert_null(zg_buf_detach(&b, &len)); /* and the memory is freed */
    assert_int_equal(len, 0);
    assert_false(b.failed);
    assert_int_equal(zg_buf_str(&b, "again"), ZG_OK);
    assert_string_equal(zg_buf_cstr(&b), "again");
    zg_buf_free(&b);
}

static void test_fmt_u64(void **state)
{
    char p[20];

    (void)state;
    assert_int_equal(zg_fmt_u64(p, 0), 1);
    assert_memory_equal(p, "0", 1);
    assert_int_equal(zg_fmt_u64(p, 4096), 4);
    assert_memory_equal(p, "4096", 4);
    assert_int_equal(zg_fmt_u64(p, UINT64_MAX), 20);
    assert_memory_equal(p, "18446744073709551615", 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_text),  cmocka_unit_test(test_grows_by_doubling),
        cmocka_unit_test(test_detach),           cmocka_unit_test(test_resize),
        cmocka_unit_test(test_failure_is_sticky), cmocka_unit_test(test_fmt_u64),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
