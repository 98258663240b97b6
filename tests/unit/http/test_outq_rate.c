/* test_outq_rate.c — the send budget's arithmetic (limit_rate, limit_rate_after):
 * what may go at a given time, deterministic in `now`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>

#include "zg_worker.h"

static void test_starts_small_then_follows_the_rate(void **state)
{
    (void)state;
    /* 1m a second: 8 KB at once, then 1048.576 bytes a millisecond */
    assert_int_equal(zg_rate_budget(1048576, 0, 0, 0), 8192);
    assert_int_equal(zg_rate_budget(1048576, 0, 1000, 0), 8192 + 1048576);
    assert_int_equal(zg_rate_budget(1048576, 0, 500, 8192 + 524288), 0);
    assert_int_equal(zg_rate_budget(1048576, 0, 501, 8192 + 524288), 1048);
    /* sent ahead of the budget: nothing, never negative */
    assert_int_equal(zg_rate_budget(1048576, 0, 10, 1 << 20), 0);
    /* a low rate starts with a tenth of a second's worth */
    assert_int_equal(zg_rate_budget(10240, 0, 0, 0), 1024);
    assert_int_equal(zg_rate_budget(5, 0, 0, 0), 1);
}

static void test_after_goes_at_once(void **state)
{
    (void)state;
    /* limit_rate_after 1m: 1m plus the start at once, the rate past it */
    assert_int_equal(zg_rate_budget(1048576, 1048576, 0, 0), 1048576 + 8192);
    assert_int_equal(zg_rate_budget(1048576, 1048576, 2000, 1048576 + 8192), 2097152);
}

static void test_long_transfers_do_not_drift(void **state)
{
    uint64_t sent = 0, now = 0, rate = 524288;

    (void)state;
    /* a tick every 7 ms sends all it may: after 60 s, 60 x rate (+ the start) */
    for (now = 0; now <= 60000; now += 7) {
        sent += zg_rate_budget(rate, 0, now, sent);
    }
    now -= 7;
    assert_int_equal(sent, 8192 + rate * now / 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_small_then_follows_the_rate),
        cmocka_unit_test(test_after_goes_at_once),
        cmocka_unit_test(test_long_transfers_do_not_drift),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
