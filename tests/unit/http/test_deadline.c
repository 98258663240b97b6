/* test_deadline.c — the lazy deadline: it expires once, at the latest time it was
 * moved to, never when cleared, and moving it later does not re-arm the timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zg_deadline.h"

static int expired;
static uint64_t expired_at;

static void on_expired(zg_deadline_t *d)
{
    expired++;
    expired_at = uv_now(d->timer.loop);
    assert_int_equal(d->at, 0);
}

static void run(uv_loop_t *loop, zg_deadline_t *d)
{
    uv_close((uv_handle_t *)&d->timer, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
}

static void test_expires_once(void **state)
{
    uv_loop_t loop;
    zg_deadline_t d;
    uint64_t t0;

    (void)state;
    uv_loop_init(&loop);
    zg_deadline_init(&loop, &d, on_expired, NULL);
    expired = 0;
    t0 = uv_now(&loop);
    zg_deadline_set(&d, 20);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(expired, 1);
    assert_true(expired_at >= t0 + 20);
    run(&loop, &d);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_moved_later_and_cleared(void **state)
{
    uv_loop_t loop;
    zg_deadline_t d;
    uint64_t t0, due;

    (void)state;
    uv_loop_init(&loop);
    zg_deadline_init(&loop, &d, on_expired, NULL);
    expired = 0;
    t0 = uv_now(&loop);
    zg_deadline_set(&d, 10);
    due = d.due;
    zg_deadline_set(&d, 60); /* later: a store, the timer stays armed for the first */
    assert_int_equal(d.due, due);
    assert_true(d.at >= t0 + 60);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(expired, 1);
    assert_true(expired_at >= t0 + 60);

    zg_deadline_set(&d, 10);
    zg_deadline_set(&d, 0); /* cleared: the timer fires and finds nothing to do */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(expired, 1);
    run(&loop, &d);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expires_once),
        cmocka_unit_test(test_moved_later_and_cleared),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
