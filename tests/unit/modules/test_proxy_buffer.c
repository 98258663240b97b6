/* test_proxy_buffer.c — the spool of proxy_buffering: bytes come out in the order
 * they went in across memory and the temp file, "full" when both are, memory only
 * without a file, the file written from its start again once read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zg_proxy_buffer.h"

static void fill(char *p, size_t n, size_t from)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (char)((from + i) * 7 + 3);
    }
}

/* puts `total` bytes in pieces of `piece`, taking `take` after each put; checks the
 * order of everything that comes out */
static void roundtrip(size_t mem, int64_t file, size_t total, size_t piece, size_t take)
{
    zg_spool_t s;
    zg_buf_t out = ZG_BUF_INIT;
    char *in = malloc(total), *buf = malloc(piece);
    size_t put = 0, got = 0;

    fill(in, total, 0);
    zg_spool_init(&s, mem, file, "/tmp");
    while (put < total) {
        size_t n = total - put < piece ? total - put : piece;
        memcpy(buf, in + put, n);
        assert_int_not_equal(zg_spool_put(&s, buf, n), ZG_ERROR);
        put += n;
        assert_int_equal(zg_spool_take(&s, &out, take), ZG_OK);
    }
    while (zg_spool_len(&s) > 0) {
        assert_int_equal(zg_spool_take(&s, &out, take ? take : 4096), ZG_OK);
    }
    got = out.len;
    assert_int_equal(got, total);
    assert_memory_equal(out.data, in, total);
    zg_spool_free(&s);
    zg_buf_free(&out);
    free(in);
    free(buf);
}

static void test_order_across_memory_and_file(void **state)
{
    (void)state;
    roundtrip(32 * 1024, 1 << 30, 1000 * 1000, 8000, 0);     /* all in, then out */
    roundtrip(32 * 1024, 1 << 30, 1000 * 1000, 8000, 5000);  /* out slower than in */
    roundtrip(32 * 1024, 1 << 30, 1000 * 1000, 65536, 70000); /* out faster */
    roundtrip(4096, 1 << 30, 300 * 1000, 4097, 3000);
    roundtrip(0, 1 << 30, 100 * 1000, 1000, 999);            /* file only */
}

static void test_full_when_memory_and_file_are(void **state)
{
    zg_spool_t s;
    char b[4096];
    zg_buf_t out = ZG_BUF_INIT;

    (void)state;
    memset(b, 'x', sizeof(b));
    zg_spool_init(&s, 8192, 8192, "/tmp");
    assert_int_equal(zg_spool_put(&s, b, 4096), ZG_OK);
    assert_int_equal(zg_spool_put(&s, b, 4096), ZG_OK);    /* memory full, file empty */
    assert_false(zg_spool_full(&s));
    assert_int_equal(zg_spool_put(&s, b, 4096), ZG_OK);    /* into the file */
    assert_int_equal(zg_spool_put(&s, b, 4096), ZG_BUSY);  /* the file at its max */
    assert_true(zg_spool_full(&s));
    assert_int_equal(zg_spool_len(&s), 16384);
    assert_int_equal(zg_spool_take(&s, &out, 16384), ZG_OK);
    assert_int_equal(zg_spool_len(&s), 0);
    assert_false(zg_spool_full(&s));
    assert_int_equal(s.file_wr, 0); /* read whole: written from its start again */
    assert_int_equal(s.file_total, 8192);
    zg_spool_free(&s);
    zg_buf_free(&out);
}

static void test_memory_only_without_a_file(void **state)
{
    zg_spool_t s;
    char b[4096];
    zg_buf_t out = ZG_BUF_INIT;

    (void)state;
    fill(b, sizeof(b), 0);
    zg_spool_init(&s, 4096, 0, "/tmp"); /* proxy_max_temp_file_size 0 */
    assert_int_equal(zg_spool_put(&s, b, 4096), ZG_BUSY);
    assert_int_equal(zg_spool_put(&s, b, 100), ZG_BUSY);   /* kept, past the limit */
    assert_int_equal(s.fd, -1);
    assert_int_equal(zg_spool_len(&s), 4196);
    zg_spool_free(&s);

    /* a directory where no file can be made: memory, logged once */
    zg_spool_init(&s, 4096, 1 << 20, "/nonexistent-zg-dir");
    assert_int_equal(zg_spool_put(&s, b, 4096), ZG_OK);
    assert_int_equal(zg_spool_put(&s, b, 4096), ZG_BUSY);
    assert_true(s.file_failed);
    assert_int_equal(zg_spool_take(&s, &out, 1 << 20), ZG_OK);
    assert_int_equal(out.len, 8192);
    assert_memory_equal(out.data + 4096, b, 4096);
    zg_spool_free(&s);
    zg_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_across_memory_and_file),
        cmocka_unit_test(test_full_when_memory_and_file_are),
        cmocka_unit_test(test_memory_only_without_a_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
