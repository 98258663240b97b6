/* test_limit_req.c — limit_req against hand-computed nginx answers; the shared-memory
 * side of cluster sync (dirty list, admitted counts, the fleet's answer, layout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zg_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zg_limit_req.h"
#include "zg_log.h"
#include "zg_rbtree.h"

#define T0 1000000ull
#define RPS(n) ((uint64_t)(n) * 1000)
#define RPM(n) ((uint64_t)(n) * 1000 / 60)
#define NODELAY ZG_LIMIT_REQ_NODELAY

typedef struct {
    zg_zone_list_t list;
    zg_zone_t *zone;
    zg_limit_req_zone_conf_t zc;
} lr_zone_t;

static void set_args(const char *args)
{
    ctx.args.data = args;
    ctx.args.len = strlen(args);
}

/* zone_make_ex makes a zone created with sync=... (a cluster-synced layout) */
static int make_synced;

/* declares, maps and initialises a zone in its own list; old = previous list or NULL */
/* zones made while set take their rate from this variable (rate=$var) */
static const char *make_rate_var;

static int zone_make_ex(lr_zone_t *z, const char *name, size_t size, const char *key,
                        uint64_t rate, zg_zone_list_t *old)
{
    char err[256];

    memset(z, 0, sizeof(*z));
    z->zone = zg_zone_declare(&z->list, name, ZG_ZONE_LIMIT_REQ, size, err, sizeof(err));
    assert_non_null(z->zone);
    z->zc.zone = z->zone;
    z->zc.key = zg_cv_compile(key, strlen(key), err, sizeof(err));
    assert_non_null(z->zc.key);
    z->zc.key_text = strdup(key);
    z->zc.rate = rate;
    z->zc.sync.interval = 100;
    if (make_rate_var != NULL) {
        z->zc.rate_cv = zg_cv_compile(make_rate_var, strlen(make_rate_var), err, sizeof(err));
        assert_non_null(z->zc.rate_cv);
    }
    if (make_synced) {
        z->zc.sync.mode = ZG_SYNC_REDIS;
        z->zc.sync.url = "redis://127.0.0.1:6379";
        strcpy(z->zc.sync.host, "127.0.0.1");
        z->zc.sync.port = 6379;
    }
    z->zone->conf = &z->zc;
    z->zone->init = zg_limit_req_zone_init;
    return zg_zone_map_all(&z->list, old, err, sizeof(err));
}

static void zone_make(lr_zone_t *z, const char *name, size_t size, const char *key,
                      uint64_t rate)
{
    assert_int_equal(zone_make_ex(z, name, size, key, rate, NULL), ZG_OK);
}

static void zone_free(lr_zone_t *z, int unmap)
{
    if (unmap) {
        zg_zone_unmap_all(&z->list);
    }
    zg_zone_list_free(&z->list);
    zg_cv_free(z->zc.key);
    free(z->zc.key_text);
}

static zg_limit_req_conf_t limit(lr_zone_t *z, uint64_t burst, uint64_t delay)
{
    zg_limit_req_conf_t l = { &z->zc, burst * 1000, delay };

    if (delay != NODELAY) {
        l.delay = delay * 1000;
    }
    return l;
}

typedef struct {
    zg_msec_t at;      /* offset from T0 */
    int rc;
    int status;
    zg_msec_t delay;
} step_t;

static void run_steps(const zg_limit_req_conf_t *limits, int n, int dry, const step_t *s,
                      size_t nsteps)
{
    zg_limit_req_result_t res;
    size_t i;
    int rc;

    for (i = 0; i < nsteps; i++) {
        rc = zg_limit_req_check(limits, n, dry, ZG_LOG_ERR, &ctx, T0 + s[i].at, &res);
        if (rc != s[i].rc || res.status != s[i].status || res.delay != s[i].delay) {
            fail_msg("step %zu (t=%llu): rc %d status %d delay %llu, expected %d %d %llu", i,
                     (unsigned long long)s[i].at, rc, res.status,
                     (unsigned long long)res.delay, s[i].rc, s[i].status,
                     (unsigned long long)s[i].delay);
        }
    }
}

#define PASS(t) { t, ZG_OK, ZG_LIMIT_PASSED, 0 }
#define DELAY(t, d) { t, ZG_OK, ZG_LIMIT_DELAYED, d }
#define BUSY(t) { t, ZG_BUSY, ZG_LIMIT_REJECTED, 0 }

static int setup(void **state)
{
    (void)state;
    memset(&ctx, 0, sizeof(ctx));
    set_ip(0x0a000001);
    zg_log_open("stderr", ZG_LOG_EMERG);
    return 0;
}

/* rate=1r/s burst=0: one request per second, the excess drains at 1 per ms */
static void test_rate_1rs_burst0(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    zg_limit_req_stats_t st;
    static const step_t steps[] = {
        PASS(0),       /* new entry, excess 0 */
        BUSY(0),       /* 0 - 0 + 1000 = 1000 > 0 */
        BUSY(500),     /* 0 - 500 + 1000 = 500 */
        BUSY(999),     /* 1 */
        PASS(1000),    /* 0 */
        BUSY(1500),
        PASS(2000),
        PASS(5000),
        BUSY(5999),
    };

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr", RPS(1));
    l = limit(&z, 0, 0);
    run_steps(&l, 1, 0, steps, zg_nelems(steps));
    zg_limit_req_stats(z.zone, &st);
    assert_int_equal(st.passed, 4);
    assert_int_equal(st.rejected, 5);
    assert_int_equal(st.delayed, 0);
    assert_int_equal(st.entries, 1);
    zone_free(&z, 1);
}

/* burst=5, delay all (nginx's default): delay = excess * 1000 / rate */
static void test_burst5_delay_all(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    zg_limit_req_stats_t st;
    static const step_t steps[] = {
        PASS(0), DELAY(0, 1000), DELAY(0, 2000), DELAY(0, 3000), DELAY(0, 4000),
        DELAY(0, 5000), BUSY(0),  /* 6000 > 5000 */
        DELAY(1000, 5000),        /* 5000 - 1000 + 1000 */
        BUSY(1500),               /* 5500 */
        DELAY(3000, 4000),        /* 5000 - 2000 + 1000 */
    };

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr", RPS(1));
    l = limit(&z, 5, 0);
    run_steps(&l, 1, 0, steps, zg_nelems(steps));
    zg_limit_req_stats(z.zone, &st);
    assert_int_equal(st.passed, 1);
    assert_int_equal(st.delayed, 7);
    assert_int_equal(st.rejected, 2);
    zone_free(&z, 1);
}

static void test_burst5_nodelay(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    static const step_t steps[] = {
        PASS(0), PASS(0), PASS(0), PASS(0), PASS(0), PASS(0), BUSY(0), BUSY(0),
        PASS(1000), BUSY(1000), PASS(2500), /* 5000-1500+1000 = 4500 */
        BUSY(2500),                         /* 5500 */
        PASS(3000),                         /* 4500 - 500 + 1000 = 5000 */
    };

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr", RPS(1));
    l = limit(&z, 5, NODELAY);
    run_steps(&l, 1, 0, steps, zg_nelems(steps));
    zone_free(&z, 1);
}

/* rate=2r/s burst=5 delay=2: the first 3 go at once, then (excess - 2000) * 1000 / 2000 */
static void test_burst5_delay2(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    static const step_t steps[] = {
        PASS(0),                       /* 0 */
        PASS(0),                       /* 1000 */
        PASS(0),                       /* 2000 <= delay */
        DELAY(0, 500),                 /* 3000 */
        DELAY(0, 1000),                /* 4000 */
        DELAY(0, 1500),                /* 5000 */
        BUSY(0),                       /* 6000 */
        BUSY(250),                     /* 5000 - 500 + 1000 = 5500 */
        DELAY(500, 1500),              /* 5000 - 1000 + 1000 = 5000 */
        DELAY(1750, 750),              /* 5000 - 2500 + 1000 = 3500 */
        PASS(5000),                    /* 3500 - 6500 + 1000 < 0: 0 */
    };

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr", RPS(2));
    l = limit(&z, 5, 2);
    run_steps(&l, 1, 0, steps, zg_nelems(steps));
    zone_free(&z, 1);
}

/* 30r/m = 500 thousandths per second: one request every 2 s */
static void test_rate_per_minute(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    static const step_t steps[] = {
        PASS(0), BUSY(1000),  /* 0 - 500 + 1000 = 500 */
        BUSY(1999),           /* 0 - 999 + 1000 = 1 */
        PASS(2000), BUSY(3000), PASS(4000), PASS(6000),
    };
    static const step_t steps_burst[] = {
        /* 30r/m burst=2 delay all: delay = excess * 1000 / 500 */
        PASS(0), DELAY(0, 2000), DELAY(0, 4000), BUSY(0),
        BUSY(1000),           /* 2000 - 500 + 1000 = 2500 */
        DELAY(2000, 4000),    /* 2000 - 1000 + 1000 = 2000 */
    };

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr", RPM(30));
    assert_int_equal(z.zc.rate, 500);
    l = limit(&z, 0, 0);
    run_steps(&l, 1, 0, steps, zg_nelems(steps));
    set_ip(0x0a000002);
    l = limit(&z, 2, 0);
    run_steps(&l, 1, 0, steps_burst, zg_nelems(steps_burst));
    zone_free(&z, 1);
}

/* the excess drains over time: fill the bucket, wait, see exactly what is left */
static void test_excess_decay(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    zg_limit_req_result_t res;
    int i;

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr", RPS(1));
    l = limit(&z, 5, NODELAY);
    for (i = 0; i < 6; i++) {
        assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    }
    assert_int_equal(res.remaining, 0);                      /* excess 5000 */
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 2500, &res), ZG_OK);
    assert_int_equal(res.remaining, 1);                      /* 3500: 1.5 left */
    assert_int_equal(res.reset, 4);                          /* ceil(3.5 s) */
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 2500, &res), ZG_OK);
    assert_int_equal(res.remaining, 0);                      /* 4500 */
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 2500, &res), ZG_BUSY);
    /* long idle: the bucket is empty again, excess 0 */
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 60000, &res), ZG_OK);
    assert_int_equal(res.remaining, 5);
    assert_int_equal(res.reset, 0);
    zone_free(&z, 1);
}

/* a clock that went back: up to 60 s counts as 0 ms, further as 1 ms (nginx) */
static void test_clock_back(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    static const step_t steps[] = {
        PASS(100000),
        DELAY(70000, 1000),    /* 30 s back: ms = 0, excess 1000, last kept */
        DELAY(99000, 2000),    /* 1 s back: ms = 0 */
        DELAY(20000, 2999),    /* 80 s back: ms = 1, 2000 - 1 + 1000; last = 20000 */
        DELAY(21000, 2999),    /* 2999 - 1000 + 1000 */
    };

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr", RPS(1));
    l = limit(&z, 10, 0);
    run_steps(&l, 1, 0, steps, zg_nelems(steps));
    zone_free(&z, 1);
}

/* node->last is 32 bits from a zone epoch that moves: gaps stay exact across it */
static void test_epoch_rebase(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    zg_limit_req_result_t res;
    zg_msec_t t1 = (1ull << 31) - 1000, t2 = (1ull << 31) + 200, t3 = 40ull * 86400 * 1000;

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr", RPS(1));
    l = limit(&z, 0, 0);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, t1, &res), ZG_OK);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, t1 + 10, &res), ZG_BUSY);
    /* the epoch moves here; 1200 ms since t1 */
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, t2, &res), ZG_OK);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, t2 + 500, &res), ZG_BUSY);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, t2 + 1000, &res), ZG_OK);
    /* 40 days later (several epochs): still one entry, exact again */
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, t3, &res), ZG_OK);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, t3 + 999, &res), ZG_BUSY);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, t3 + 1000, &res), ZG_OK);
    zone_free(&z, 1);
}

/* two limits: the stricter one rejects, the other is not charged */
static void test_two_limits_reject_charges_none(void **state)
{
    lr_zone_t lenient, strict;
    zg_limit_req_conf_t l[2], only;
    zg_limit_req_result_t res;
    zg_limit_req_stats_t st;
    int i;

    (void)state;
    zone_make(&lenient, "lenient", 64 * 1024, "$binary_remote_addr", RPS(1));
    zone_make(&strict, "strict", 64 * 1024, "$binary_remote_addr", RPS(1));
    l[0] = limit(&lenient, 5, NODELAY);
    l[1] = limit(&strict, 0, 0);

    assert_int_equal(zg_limit_req_check(l, 2, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_int_equal(res.status, ZG_LIMIT_PASSED);
    for (i = 0; i < 9; i++) {
        assert_int_equal(zg_limit_req_check(l, 2, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_BUSY);
        assert_int_equal(res.limit, 1);
        assert_string_equal(res.zone_name, "strict");
    }
    /* lenient was charged once (excess 0): 5 more fit, the 6th does not */
    only = l[0];
    for (i = 0; i < 5; i++) {
        assert_int_equal(zg_limit_req_check(&only, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    }
    assert_int_equal(zg_limit_req_check(&only, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_BUSY);

    zg_limit_req_stats(lenient.zone, &st);
    assert_int_equal(st.passed, 6);
    assert_int_equal(st.rejected, 1);
    zg_limit_req_stats(strict.zone, &st);
    assert_int_equal(st.passed, 1);
    assert_int_equal(st.rejected, 9);

    /* a rejection by the first limit never looks at the second */
    l[0] = limit(&strict, 0, 0);
    l[1] = limit(&lenient, 5, NODELAY);
    set_ip(0x0a000009);
    assert_int_equal(zg_limit_req_check(l, 2, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_int_equal(zg_limit_req_check(l, 2, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_BUSY);
    assert_int_equal(res.limit, 0);
    zg_limit_req_stats(lenient.zone, &st);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.passed, 7);
    zone_free(&lenient, 1);
    zone_free(&strict, 1);
}

/* the longest delay over all limits wins; its limit is reported */
static void test_two_limits_longest_delay(void **state)
{
    lr_zone_t a, b;
    zg_limit_req_conf_t l[2];
    zg_limit_req_result_t res;

    (void)state;
    zone_make(&a, "a", 64 * 1024, "$binary_remote_addr", RPS(1));
    zone_make(&b, "b", 64 * 1024, "$binary_remote_addr", RPS(4));
    l[0] = limit(&a, 10, 0);
    l[1] = limit(&b, 10, 0);

    assert_int_equal(zg_limit_req_check(l, 2, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_int_equal(res.status, ZG_LIMIT_PASSED);
    assert_int_equal(zg_limit_req_check(l, 2, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_int_equal(res.status, ZG_LIMIT_DELAYED);
    assert_int_equal(res.delay, 1000);  /* a: 1000 * 1000 / 1000; b: 1000 * 1000 / 4000 */
    assert_int_equal(res.limit, 0);

    l[0] = limit(&a, 10, NODELAY);
    assert_int_equal(zg_limit_req_check(l, 2, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_int_equal(res.delay, 500);   /* only b delays: 2000 * 1000 / 4000 */
    assert_int_equal(res.limit, 1);
    zone_free(&a, 1);
    zone_free(&b, 1);
}

static void test_dry_run(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    zg_limit_req_stats_t st;
    static const step_t strict[] = {
        PASS(0),
        { 0, ZG_OK, ZG_LIMIT_REJECTED_DRY_RUN, 0 },
        { 0, ZG_OK, ZG_LIMIT_REJECTED_DRY_RUN, 0 },
        PASS(1000),   /* not charged by the dry rejections: excess 0 */
    };
    static const step_t delaying[] = {
        PASS(0),
        { 0, ZG_OK, ZG_LIMIT_DELAYED_DRY_RUN, 0 },  /* charged: 1000 */
        { 0, ZG_OK, ZG_LIMIT_DELAYED_DRY_RUN, 0 },  /* 2000 */
        { 0, ZG_OK, ZG_LIMIT_REJECTED_DRY_RUN, 0 }, /* 3000 > 2000 */
    };

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr", RPS(1));
    l = limit(&z, 0, 0);
    run_steps(&l, 1, 1, strict, zg_nelems(strict));
    set_ip(0x0a000002);
    l = limit(&z, 2, 0);
    run_steps(&l, 1, 1, delaying, zg_nelems(delaying));
    zg_limit_req_stats(z.zone, &st);
    assert_int_equal(st.passed, 3);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.delayed, 0);
    assert_int_equal(st.rejected_dry_run, 3);
    assert_int_equal(st.delayed_dry_run, 2);
    zone_free(&z, 1);
}

/* an empty key is not limited; a later empty key still lets earlier ones be charged */
static void test_empty_key(void **state)
{
    lr_zone_t z, ip;
    zg_limit_req_conf_t l[2];
    zg_limit_req_result_t res;
    zg_limit_req_stats_t st;
    int i;

    (void)state;
    zone_make(&z, "args", 64 * 1024, "$arg_k", RPS(1));
    zone_make(&ip, "ip", 64 * 1024, "$binary_remote_addr", RPS(1));
    l[0] = limit(&z, 0, 0);
    set_args("");
    for (i = 0; i < 5; i++) {
        assert_int_equal(zg_limit_req_check(l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
        assert_int_equal(res.status, ZG_LIMIT_NONE);
        assert_int_equal(res.limit, -1);
        assert_null(res.zone_name);
    }
    zg_limit_req_stats(z.zone, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.passed, 0);

    set_args("k=abc");
    assert_int_equal(zg_limit_req_check(l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_int_equal(zg_limit_req_check(l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_BUSY);

    /* [ip, args(empty)]: ip is looked up without accounting, then charged */
    set_args("");
    l[0] = limit(&ip, 0, 0);
    l[1] = limit(&z, 0, 0);
    assert_int_equal(zg_limit_req_check(l, 2, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_int_equal(res.status, ZG_LIMIT_PASSED);
    assert_int_equal(zg_limit_req_check(l, 2, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_BUSY);
    assert_int_equal(zg_limit_req_check(l, 2, 0, ZG_LOG_ERR, &ctx, T0 + 1000, &res), ZG_OK);
    zone_free(&z, 1);
    zone_free(&ip, 1);
}

static void test_keys_independent(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    zg_limit_req_result_t res;
    zg_limit_req_stats_t st;
    uint32_t ip;

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr", RPS(1));
    l = limit(&z, 0, 0);
    for (ip = 1; ip <= 50; ip++) {
        set_ip(0x0a000000 + ip);
        assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    }
    for (ip = 1; ip <= 50; ip++) {
        set_ip(0x0a000000 + ip);
        assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_BUSY);
    }
    zg_limit_req_stats(z.zone, &st);
    assert_int_equal(st.entries, 50);
    zone_free(&z, 1);
}

/* nginx's _expire: on each new entry free one or two LRU entries idle >= 60 s
 * whose excess has drained; never one still holding excess */
static void test_expire_stale(void **state)
{
    lr_zone_t z, slow;
    zg_limit_req_conf_t l;
    zg_limit_req_result_t res;
    zg_limit_req_stats_t st;
    int i;

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr", RPS(1));
    l = limit(&z, 5, NODELAY);
    set_ip(1);
    for (i = 0; i < 3; i++) { /* excess 2000, last T0 */
        assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    }
    set_ip(2);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 30000, &res), ZG_OK);
    zg_limit_req_stats(z.zone, &st);
    assert_int_equal(st.entries, 2);  /* ip 1 idle 30 s: kept */
    assert_int_equal(st.evicted, 0);

    set_ip(3);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 70000, &res), ZG_OK);
    zg_limit_req_stats(z.zone, &st);
    assert_int_equal(st.entries, 2);  /* ip 1 (70 s, drained) freed; ip 2 (40 s) kept */
    assert_int_equal(st.evicted, 1);

    set_ip(4);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 200000, &res), ZG_OK);
    zg_limit_req_stats(z.zone, &st);
    assert_int_equal(st.entries, 1);  /* ip 2 and ip 3 both stale: two per lookup */
    assert_int_equal(st.evicted, 3);
    zone_free(&z, 1);

    /* 1r/m with 50 requests of excess: 61 s later still not drained, kept */
    zone_make(&slow, "slow", 64 * 1024, "$binary_remote_addr", RPM(1));
    l = limit(&slow, 100, NODELAY);
    set_ip(1);
    for (i = 0; i < 50; i++) {
        assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    }
    set_ip(2);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 61000, &res), ZG_OK);
    zg_limit_req_stats(slow.zone, &st);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.evicted, 0);
    zone_free(&slow, 1);
}

static void check_pool(zg_zone_t *zone)
{
    zg_shmtx_lock(&zone->pool->mutex);
    assert_int_equal(zg_slab_validate(zone->pool), ZG_OK);
    zg_shmtx_unlock(&zone->pool->mutex);
}

/* a minimum zone under 100k distinct keys: always an answer, the pool intact */
static void test_flood_tiny_zone(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    zg_limit_req_result_t res;
    zg_limit_req_stats_t st;
    uint32_t i, ok = 0, err = 0;
    int rc;

    (void)state;
    zone_make(&z, "tiny", ZG_ZONE_MIN_PAGES * ZG_SLAB_PAGE_SIZE, "$binary_remote_addr",
              RPS(1));
    l = limit(&z, 0, 0);
    for (i = 0; i < 100000; i++) {
        set_ip(0x0b000000 + i);
        rc = zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + i / 10, &res);
        if (rc == ZG_OK) {
            ok++;
        } else {
            assert_int_equal(rc, ZG_ERROR);
            err++;
        }
    }
    zg_limit_req_stats(z.zone, &st);
    assert_int_equal(ok + err, 100000);
    assert_int_equal(st.passed, ok);
    assert_int_equal(st.alloc_fails, err);
    assert_true(st.entries > 100);
    assert_int_equal(st.entries + st.evicted, ok);
    check_pool(z.zone);
    zg_shmtx_lock(&z.zone->pool->mutex);
    assert_int_equal(zg_rbtree_validate(&((zg_rbtree_t *)z.zone->data)[0]), ZG_OK);
    zg_shmtx_unlock(&z.zone->pool->mutex);
    /* still answering: the newest key is known, a fresh one gets in */
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 10000, &res), ZG_BUSY);
    set_ip(1);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 10000, &res), ZG_OK);
    zone_free(&z, 1);
}

/* a 1 MB zone holds >= 16000 IPv4 keys before the first eviction */
static void test_capacity_1m(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    zg_limit_req_result_t res;
    zg_limit_req_stats_t st;
    uint32_t i;

    (void)state;
    assert_int_equal(zg_limit_req_node_size(4), 64);
    assert_int_equal(zg_limit_req_node_size(16), 76);
    zone_make(&z, "big", 1024 * 1024, "$binary_remote_addr", RPS(1));
    l = limit(&z, 0, 0);
    for (i = 0;; i++) {
        set_ip(0x0c000000 + i);
        assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
        zg_limit_req_stats(z.zone, &st);
        if (st.evicted > 0) {
            break;
        }
    }
    print_message("limit_req node: %zu bytes for a 4-byte key; 1 MB zone holds %u keys\n",
                  zg_limit_req_node_size(4), i);
    assert_true(i >= 16000);
    check_pool(z.zone);
    zone_free(&z, 1);
}

/* a key that cannot fit the zone even after expiry: "could not allocate node" */
static void test_alloc_failure(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    zg_limit_req_result_t res;
    zg_limit_req_stats_t st;
    char *args;

    (void)state;
    zone_make(&z, "tiny", ZG_ZONE_MIN_PAGES * ZG_SLAB_PAGE_SIZE, "$arg_k", RPS(1));
    l = limit(&z, 0, 0);
    args = malloc(70010);
    memcpy(args, "k=", 2);
    memset(args + 2, 'x', 70000);
    args[40002] = '\0';
    set_args(args);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_ERROR);
    assert_int_equal(res.status, ZG_LIMIT_REJECTED);
    assert_int_equal(res.retry_after, 1);
    assert_int_equal(zg_limit_req_check(&l, 1, 1, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_int_equal(res.status, ZG_LIMIT_REJECTED_DRY_RUN);
    zg_limit_req_stats(z.zone, &st);
    assert_int_equal(st.alloc_fails, 2);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.rejected_dry_run, 1);
    assert_int_equal(st.entries, 0);

    /* over 65535 bytes: not limited (nginx logs and skips the limit) */
    args[40002] = 'x';
    args[70002] = '\0';
    set_args(args);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_int_equal(res.status, ZG_LIMIT_NONE);

    /* a 300-byte key (beyond the stack buffer) works as any other */
    args[302] = '\0';
    set_args(args);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_BUSY);
    args[301] = '\0';
    set_args(args);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    check_pool(z.zone);
    free(args);
    set_args("");
    zone_free(&z, 1);
}

/* reload: same key and rate keep the state; another key or rate is refused */
static void test_reload(void **state)
{
    lr_zone_t z1, z2, z3, z4;
    zg_limit_req_conf_t l;
    zg_limit_req_result_t res;

    (void)state;
    zone_make(&z1, "one", 64 * 1024, "$binary_remote_addr", RPS(1));
    l = limit(&z1, 0, 0);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);

    assert_int_equal(zone_make_ex(&z2, "one", 64 * 1024, "$binary_remote_addr", RPS(1),
                                  &z1.list),
                     ZG_OK);
    assert_int_equal(z2.zone->reused, 1);
    assert_ptr_equal(z2.zone->data, z1.zone->data);
    l = limit(&z2, 0, 0);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_BUSY);

    assert_int_equal(zone_make_ex(&z3, "one", 64 * 1024, "$remote_addr", RPS(1), &z2.list),
                     ZG_ERROR);
    assert_int_equal(zone_make_ex(&z4, "one", 64 * 1024, "$binary_remote_addr", RPS(2),
                                  &z2.list),
                     ZG_ERROR);
    zone_free(&z4, 0);
    zone_free(&z3, 0);
    zone_free(&z2, 0);
    zone_free(&z1, 1);
}

static void test_ratelimit_fields(void **state)
{
    lr_zone_t z, m, tight;
    zg_limit_req_conf_t l, two[2];
    zg_limit_req_result_t res;
    int i;

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr", RPS(1));
    l = limit(&z, 5, NODELAY);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_string_equal(res.zone_name, "one");
    assert_int_equal(res.policy_q, 1); /* 1r/s: q=1;w=1 */
    assert_int_equal(res.policy_w, 1);
    assert_int_equal(res.remaining, 5);
    assert_int_equal(res.reset, 0);
    assert_int_equal(res.retry_after, 0);
    for (i = 0; i < 5; i++) {
        assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
        assert_int_equal(res.remaining, (uint64_t)(4 - i));
        assert_int_equal(res.reset, (uint64_t)(i + 1));
    }
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_BUSY);
    assert_int_equal(res.remaining, 0);
    assert_int_equal(res.reset, 6);
    assert_int_equal(res.retry_after, 1);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 700, &res), ZG_BUSY);
    assert_int_equal(res.retry_after, 1); /* 5300: 0.3 s, at least 1 */

    zone_make(&m, "perminute", 64 * 1024, "$binary_remote_addr", RPM(30));
    l = limit(&m, 0, 0);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_int_equal(res.policy_q, 30); /* 30r/m: q=30;w=60 */
    assert_int_equal(res.policy_w, 60);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_BUSY);
    assert_int_equal(res.retry_after, 2);  /* 1000 over at 500 per second */
    assert_int_equal(res.reset, 2);

    /* the limit with the least remaining speaks */
    zone_make(&tight, "tight", 64 * 1024, "$binary_remote_addr", RPS(10));
    set_ip(0x0a0000ff);
    two[0] = limit(&z, 10, NODELAY);
    two[1] = limit(&tight, 2, NODELAY);
    assert_int_equal(zg_limit_req_check(two, 2, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_int_equal(zg_limit_req_check(two, 2, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_string_equal(res.zone_name, "tight");
    assert_int_equal(res.remaining, 1);
    assert_int_equal(res.policy_q, 10);
    assert_int_equal(res.policy_w, 1);
    two[0] = limit(&z, 1, NODELAY);
    assert_int_equal(zg_limit_req_check(two, 2, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_BUSY);
    assert_string_equal(res.zone_name, "one");   /* 2000 > 1000: rejected by "one" */
    assert_int_equal(res.limit, 0);
    zone_free(&z, 1);
    zone_free(&m, 1);
    zone_free(&tight, 1);
}

static void test_log_lines(void **state)
{
    lr_zone_t z, tiny;
    zg_limit_req_conf_t l;
    zg_limit_req_result_t res;
    char path[] = "/tmp/zg_test_limit_req_XXXXXX", *text, *args, *p;
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(zg_log_open(path, ZG_LOG_WARN), ZG_OK);

    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr", RPS(1));
    set_ip(0xc0a80107);
    l = limit(&z, 1, 0);
    zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res);
    zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res);      /* delay: warn */
    zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 766, &res); /* 1234 > 1000 */
    zg_limit_req_check(&l, 1, 1, ZG_LOG_ERR, &ctx, T0 + 766, &res);
    zg_limit_req_check(&l, 1, 0, ZG_LOG_WARN, &ctx, T0 + 1000, &res); /* delay at notice: dropped */

    zone_make(&tiny, "tiny", ZG_ZONE_MIN_PAGES * ZG_SLAB_PAGE_SIZE, "$arg_k", RPS(1));
    args = malloc(40010);
    memcpy(args, "k=", 2);
    memset(args + 2, 'x', 40000);
    args[40002] = '\0';
    set_args(args);
    l = limit(&tiny, 0, 0);
    zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res);
    set_args("");
    free(args);

    text = read_file(path);
    assert_non_null(strstr(text, "[warn] "));
    assert_non_null(strstr(text, "delaying request, excess: 1.000, by zone \"one\", "
                                 "client: 192.168.1.7\n"));
    assert_non_null(strstr(text, "[error] "));
    assert_non_null(strstr(text, "limiting requests, excess: 1.234 by zone \"one\", "
                                 "client: 192.168.1.7\n"));
    assert_non_null(strstr(text, "limiting requests, dry run, excess: 1.234 by zone \"one\", "
                                 "client: 192.168.1.7\n"));
    assert_non_null(strstr(text, "[alert] "));
    assert_non_null(strstr(text, "could not allocate node in limit_req zone \"tiny\""));
    p = strstr(text, "delaying request");
    assert_non_null(p);
    assert_null(strstr(p + 1, "delaying request")); /* the notice-level one is dropped */

    zg_log_open("stderr", ZG_LOG_EMERG);
    unlink(path);
    zone_free(&z, 1);
    zone_free(&tiny, 1);
}

static void test_reload_log_line(void **state)
{
    lr_zone_t z1, z2;
    char path[] = "/tmp/zg_test_limit_req_XXXXXX", *text;
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(zg_log_open(path, ZG_LOG_ERR), ZG_OK);
    zone_make(&z1, "one", 64 * 1024, "$binary_remote_addr", RPS(1));
    assert_int_equal(zone_make_ex(&z2, "one", 64 * 1024, "$remote_addr", RPS(1), &z1.list),
                     ZG_ERROR);
    text = read_file(path);
    assert_non_null(strstr(text, "limit_req_zone \"one\" uses the \"$remote_addr\" key while "
                                 "previously it used the \"$binary_remote_addr\" key"));
    zg_log_open("stderr", ZG_LOG_EMERG);
    unlink(path);
    zone_free(&z2, 0);
    zone_free(&z1, 1);
}

/* four processes charge one key at once: every request is accounted exactly once */
static void test_processes(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l[2];
    zg_limit_req_result_t res;
    zg_limit_req_stats_t st;
    lr_zone_t other;
    pid_t pids[4];
    int c, wstatus;

    (void)state;
    zone_make(&z, "shared", 256 * 1024, "$binary_remote_addr", RPS(1));
    zone_make(&other, "other", 256 * 1024, "$binary_remote_addr", RPS(1));
    l[0] = limit(&other, 100000, NODELAY);
    l[1] = limit(&z, 100000, NODELAY);
    for (c = 0; c < 4; c++) {
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            int i, bad = 0;

            for (i = 0; i < 5000; i++) {
                if (zg_limit_req_check(l, 2, 0, ZG_LOG_ERR, &ctx, T0, &res) != ZG_OK) {
                    bad = 1;
                }
            }
            _exit(bad);
        }
    }
    for (c = 0; c < 4; c++) {
        assert_int_equal(waitpid(pids[c], &wstatus, 0), pids[c]);
        assert_true(WIFEXITED(wstatus));
        assert_int_equal(WEXITSTATUS(wstatus), 0);
    }
    /* 20000 charged: the first at 0, then 1000 each */
    assert_int_equal(zg_limit_req_check(l, 2, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    assert_int_equal(res.remaining, 100000 - 20000);
    zg_limit_req_stats(z.zone, &st);
    assert_int_equal(st.passed, 20001);
    assert_int_equal(st.entries, 1);
    zg_limit_req_stats(other.zone, &st);
    assert_int_equal(st.passed, 20001);
    zone_free(&z, 1);
    zone_free(&other, 1);
}

/* ---- cluster sync: the shared-memory side (the sync module drives it) ---- */

/* a zone for "$binary_remote_addr" at 10r/s, created with sync=... or without */
static int sync_zone_make(lr_zone_t *z, const char *name, size_t size, int sync,
                          zg_zone_list_t *old)
{
    make_synced = sync;
    int rc = zone_make_ex(z, name, size, "$binary_remote_addr", 10000, old);
    make_synced = 0;
    return rc;
}

typedef struct {
    int n;
    unsigned char key[8][16];
    size_t len[8];
    uint32_t admitted[8];
} taken_t;

static int take_cb(void *arg, const unsigned char *key, size_t len, uint32_t admitted)
{
    taken_t *t = arg;

    if (t->n == 8) {
        return ZG_ERROR;
    }
    memcpy(t->key[t->n], key, len);
    t->len[t->n] = len;
    t->admitted[t->n] = admitted;
    t->n++;
    return ZG_OK;
}

static int sync_check(zg_limit_req_conf_t *l, zg_msec_t at)
{
    zg_limit_req_result_t res;

    zg_limit_req_check(l, 1, 0, ZG_LOG_EMERG, &ctx, T0 + at, &res);
    return res.status;
}

/* admitted requests are counted per key, listed once, taken in order */
static void test_take_counts(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    taken_t t;
    uint32_t ip;

    (void)state;
    sync_zone_make(&z, "s", 64 * 1024, 1, NULL);
    l = (zg_limit_req_conf_t){ &z.zc, 5000, NODELAY };
    set_ip(0x0a000001);
    for (int i = 0; i < 8; i++) {
        sync_check(&l, 0); /* 6 pass (burst 5), 2 rejected */
    }
    set_ip(0x0a000002);
    sync_check(&l, 0);

    memset(&t, 0, sizeof(t));
    assert_int_equal(zg_limit_req_sync_take(z.zone, 512, take_cb, &t), 2);
    assert_int_equal(t.n, 2);
    memcpy(&ip, t.key[0], 4);
    assert_int_equal(ntohl(ip), 0x0a000001);
    assert_int_equal(t.admitted[0], 6);
    assert_int_equal(t.admitted[1], 1);
    /* nothing more until traffic comes back */
    memset(&t, 0, sizeof(t));
    assert_int_equal(zg_limit_req_sync_take(z.zone, 512, take_cb, &t), 0);
    /* a rejection lists the key too (to pull the fleet's view), with 0 admitted */
    set_ip(0x0a000001);
    assert_int_equal(sync_check(&l, 1), ZG_LIMIT_REJECTED);
    assert_int_equal(zg_limit_req_sync_take(z.zone, 512, take_cb, &t), 1);
    assert_int_equal(t.admitted[0], 0);
    /* budget: at most max per take */
    for (uint32_t i = 0; i < 5; i++) {
        set_ip(0x0b000000 + i);
        sync_check(&l, 2);
    }
    memset(&t, 0, sizeof(t));
    assert_int_equal(zg_limit_req_sync_take(z.zone, 3, take_cb, &t), 3);
    assert_int_equal(zg_limit_req_sync_take(z.zone, 3, NULL, NULL), 2); /* dropped */
    zg_limit_req_sync_stats_t st;
    assert_int_equal(zg_limit_req_sync_stats(z.zone, &st), ZG_OK);
    assert_int_equal(st.dropped, 2);
    zone_free(&z, 1);
}

/* the fleet's excess becomes the key's bucket (plus what was admitted since) */
static void test_apply(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    unsigned char key[4];
    uint32_t ip = htonl(0x0a000003);
    taken_t t;

    (void)state;
    sync_zone_make(&z, "s", 64 * 1024, 1, NULL);
    l = (zg_limit_req_conf_t){ &z.zc, 5000, NODELAY };
    memcpy(key, &ip, 4);
    set_ip(0x0a000003);
    assert_int_equal(sync_check(&l, 0), ZG_LIMIT_PASSED);
    memset(&t, 0, sizeof(t));
    assert_int_equal(zg_limit_req_sync_take(z.zone, 512, take_cb, &t), 1);
    assert_int_equal(sync_check(&l, 0), ZG_LIMIT_PASSED); /* admitted after the take */
    /* other hosts used 5 more: fleet excess 6000 (ours 1 + theirs 5) + our 1 since = 7000 */
    zg_limit_req_sync_apply(z.zone, key, 4, 6000, T0, T0);
    assert_int_equal(sync_check(&l, 0), ZG_LIMIT_REJECTED);
    /* 300 ms later 3 requests have drained: 4000 + 1000 <= burst again */
    assert_int_equal(sync_check(&l, 299), ZG_LIMIT_REJECTED);
    assert_int_equal(sync_check(&l, 300), ZG_LIMIT_PASSED);
    assert_int_equal(sync_check(&l, 300), ZG_LIMIT_REJECTED);
    /* what was admitted since the take drains from the take on: 3 requests
     * admitted, the answer comes 200 ms (2 drained) after the take */
    assert_int_equal(sync_check(&l, 2000), ZG_LIMIT_PASSED);
    memset(&t, 0, sizeof(t));
    assert_int_equal(zg_limit_req_sync_take(z.zone, 512, take_cb, &t), 1);
    assert_int_equal(sync_check(&l, 2000), ZG_LIMIT_PASSED);
    assert_int_equal(sync_check(&l, 2000), ZG_LIMIT_PASSED);
    assert_int_equal(sync_check(&l, 2000), ZG_LIMIT_PASSED);
    zg_limit_req_sync_apply(z.zone, key, 4, 3000, T0 + 2000, T0 + 2200);
    /* 3000 + (3000 - 2000) = 4000: one more fits (5000), not two */
    assert_int_equal(sync_check(&l, 2200), ZG_LIMIT_PASSED);
    assert_int_equal(sync_check(&l, 2200), ZG_LIMIT_REJECTED);
    /* an unknown key is ignored */
    key[0] ^= 0xff;
    zg_limit_req_sync_apply(z.zone, key, 4, 99000, T0, T0);
    zone_free(&z, 1);
}

/* only sync zones grow their nodes; a non-sync zone reports no sync */
static void test_layout_and_reload(void **state)
{
    lr_zone_t a, b;
    zg_limit_req_conf_t l;
    zg_limit_req_sync_stats_t st;
    uint64_t used3, used4;

    (void)state;
    sync_zone_make(&a, "plain", 64 * 1024, 0, NULL);
    assert_null(zg_limit_req_sync_shared(a.zone));
    assert_int_equal(zg_limit_req_sync_stats(a.zone, &st), ZG_DECLINED);
    l = (zg_limit_req_conf_t){ &a.zc, 0, NODELAY };
    set_ip(1);
    used3 = a.zone->pool->stats[3].used;
    sync_check(&l, 0);
    assert_int_equal(zg_limit_req_sync_take(a.zone, 10, NULL, NULL), 0);
    assert_int_equal(a.zone->pool->stats[3].used, used3 + 1); /* one 64-byte slot */

    /* a reload cannot add sync to a zone made without it */
    assert_int_equal(sync_zone_make(&b, "plain", 64 * 1024, 1, &a.list), ZG_ERROR);
    zone_free(&b, 0);
    zone_free(&a, 1);

    sync_zone_make(&a, "synced", 64 * 1024, 1, NULL);
    assert_non_null(zg_limit_req_sync_shared(a.zone));
    l = (zg_limit_req_conf_t){ &a.zc, 0, NODELAY };
    used3 = a.zone->pool->stats[3].used;
    used4 = a.zone->pool->stats[4].used;
    sync_check(&l, 0);
    assert_int_equal(a.zone->pool->stats[3].used, used3);
    assert_int_equal(a.zone->pool->stats[4].used, used4 + 1); /* 128-byte slot with the extension */
    /* ... but may drop it: the zone keeps its layout */
    assert_int_equal(sync_zone_make(&b, "synced", 64 * 1024, 0, &a.list), ZG_OK);
    assert_non_null(zg_limit_req_sync_shared(b.zone));
    zone_free(&b, 0);
    zone_free(&a, 1);
}

/* top=N: the keys with most excess, most first, walked in chunks that resume after
 * the last key seen even when keys come and go between chunks; forgive */
static void test_top_and_forgive(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    zg_limit_req_result_t res;
    zg_limit_req_top_t top[5];
    zg_limit_req_top_walk_t *w;
    char args[32];
    int i, k, n = 3 * ZG_LIMIT_REQ_TOP_CHUNK;
    size_t got;

    (void)state;
    zone_make(&z, "top", 1024 * 1024, "$arg_k", 1); /* 1r/1000s: nothing drains */
    l = limit(&z, 100, NODELAY);
    /* key i gets i % 50 + 1 requests: excess i % 50 (thousandths x 1000) */
    for (i = 0; i < n; i++) {
        ctx.args.len = (size_t)snprintf(args, sizeof(args), "k=key%d", i);
        ctx.args.data = args;
        for (k = 0; k <= i % 50; k++) {
            assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
        }
    }
    got = zg_limit_req_top(z.zone, top, 5, T0);
    assert_int_equal(got, 5);
    for (i = 0; i < 5; i++) {
        assert_int_equal(top[i].excess, 49000);
        assert_int_equal(top[i].rate, 1);
        assert_memory_equal(top[i].key, "key", 3);
    }
    /* chunked: forgive every key with excess 49 between chunks but one; the walk
     * still ends, and finds the one left */
    w = malloc(sizeof(*w));
    assert_non_null(w);
    zg_limit_req_top_init(w, top, 5);
    assert_int_equal(zg_limit_req_top_step(z.zone, w, T0), ZG_AGAIN);
    for (i = 49; i < n; i += 50) {
        char key[32];
        int len = snprintf(key, sizeof(key), "key%d", i);
        if (i != 149) {
            assert_int_equal(zg_limit_req_forgive(z.zone, key, (size_t)len), ZG_OK);
            assert_int_equal(zg_limit_req_forgive(z.zone, key, (size_t)len), ZG_DECLINED);
        }
    }
    while (zg_limit_req_top_step(z.zone, w, T0) == ZG_AGAIN) {
    }
    /* the chunk already walked may have kept forgiven keys; what follows has only
     * key149 at 49, then keys at 48 */
    assert_int_equal(w->have, 5);
    assert_true(top[0].excess >= top[1].excess && top[1].excess >= top[4].excess);
    assert_true(top[4].excess >= 48000);
    free(w);
    /* a forgiven key starts afresh */
    ctx.args.data = "k=key99";
    ctx.args.len = 7;
    assert_int_equal(zg_limit_req_forgive(z.zone, "key98", 5), ZG_OK);
    assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0, &res), ZG_OK);
    ctx.args.len = 0;
    zone_free(&z, 1);
}

/* rate=$arg_r default=1r/s: the rate is read per request; the excess (thousandths)
 * carries over, and the time since the key's last request drains at the rate of the
 * request being checked; empty or invalid values take the default */
static void test_variable_rate(void **state)
{
    lr_zone_t z;
    zg_limit_req_conf_t l;
    zg_limit_req_result_t res;

    (void)state;
    make_rate_var = "$arg_r";
    zone_make(&z, "var", 64 * 1024, "$binary_remote_addr", 1000);
    make_rate_var = NULL;
    l = limit(&z, 0, NODELAY);
    {
        /* 10r/s: one request every 100 ms */
        ctx.args.data = "r=10r/s";
        ctx.args.len = 7;
        step_t s[] = { PASS(0), BUSY(50), PASS(100), BUSY(150) };
        run_steps(&l, 1, 0, s, zg_nelems(s));
    }
    {
        /* the key's excess is 1000 after t=100; at 1r/s the next may come at t=1100,
         * at 10r/s it could have come at t=200: the new rate drains the interval */
        ctx.args.data = "r=1r/s";
        ctx.args.len = 6;
        step_t s[] = { BUSY(300), BUSY(1099), PASS(1100), BUSY(1500) };
        run_steps(&l, 1, 0, s, zg_nelems(s));
    }
    {
        /* empty, junk or zero: the default (1r/s) */
        ctx.args.data = "r=fast";
        ctx.args.len = 6;
        step_t s[] = { BUSY(2000), PASS(2100) };
        run_steps(&l, 1, 0, s, zg_nelems(s));
        ctx.args.data = "r=0r/s";
        step_t s2[] = { BUSY(2500), PASS(3100) };
        run_steps(&l, 1, 0, s2, zg_nelems(s2));
    }
    {
        /* a much higher rate forgives the backlog at once */
        ctx.args.data = "r=1000r/s";
        ctx.args.len = 9;
        step_t s[] = { PASS(3101), PASS(3102), PASS(3103) };
        run_steps(&l, 1, 0, s, zg_nelems(s));
    }
    {
        /* top=N shows the rate each key was last checked with */
        zg_limit_req_top_t top[1];
        ctx.args.data = "r=30r/m";
        ctx.args.len = 7;
        l.burst = 5000;
        assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 9000, &res),
                         ZG_OK);
        assert_int_equal(zg_limit_req_check(&l, 1, 0, ZG_LOG_ERR, &ctx, T0 + 9001, &res),
                         ZG_OK);
        assert_int_equal(zg_limit_req_top(z.zone, top, 1, T0 + 9001), 1);
        assert_int_equal(top[0].excess, 1000);
        assert_int_equal(top[0].rate, 500);
    }
    zg_cv_free(z.zc.rate_cv);
    ctx.args.len = 0;
    zone_free(&z, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_variable_rate, setup),
        cmocka_unit_test_setup(test_top_and_forgive, setup),
        cmocka_unit_test(test_take_counts),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_layout_and_reload),
        cmocka_unit_test_setup(test_rate_1rs_burst0, setup),
        cmocka_unit_test_setup(test_burst5_delay_all, setup),
        cmocka_unit_test_setup(test_burst5_nodelay, setup),
        cmocka_unit_test_setup(test_burst5_delay2, setup),
        cmocka_unit_test_setup(test_rate_per_minute, setup),
        cmocka_unit_test_setup(test_excess_decay, setup),
        cmocka_unit_test_setup(test_clock_back, setup),
        cmocka_unit_test_setup(test_epoch_rebase, setup),
        cmocka_unit_test_setup(test_two_limits_reject_charges_none, setup),
        cmocka_unit_test_setup(test_two_limits_longest_delay, setup),
        cmocka_unit_test_setup(test_dry_run, setup),
        cmocka_unit_test_setup(test_empty_key, setup),
        cmocka_unit_test_setup(test_keys_independent, setup),
        cmocka_unit_test_setup(test_expire_stale, setup),
        cmocka_unit_test_setup(test_flood_tiny_zone, setup),
        cmocka_unit_test_setup(test_capacity_1m, setup),
        cmocka_unit_test_setup(test_alloc_failure, setup),
        cmocka_unit_test_setup(test_reload, setup),
        cmocka_unit_test_setup(test_ratelimit_fields, setup),
        cmocka_unit_test_setup(test_log_lines, setup),
        cmocka_unit_test_setup(test_reload_log_line, setup),
        cmocka_unit_test_setup(test_processes, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
