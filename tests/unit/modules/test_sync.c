/* test_sync.c — the shared-memory side of cluster sync: dirty list, admitted
 * counts, the fleet's answer applied to a key, layout and reload rules. */
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

#include "zg_limit_req.h"
#include "zg_log.h"
#include "zg_slab.h"

#define T0 1000000ull
#define NODELAY ZG_LIMIT_REQ_NODELAY

typedef struct {
    zg_zone_list_t list;
    zg_zone_t *zone;
    zg_limit_req_zone_conf_t zc;
} lr_zone_t;

static int zone_make_ex(lr_zone_t *z, const char *name, size_t size, int sync,
                        zg_zone_list_t *old)
{
    char err[256];

    memset(z, 0, sizeof(*z));
    z->zone = zg_zone_declare(&z->list, name, ZG_ZONE_LIMIT_REQ, size, err, sizeof(err));
    assert_non_null(z->zone);
    z->zc.zone = z->zone;
    z->zc.key = zg_cv_compile("$binary_remote_addr", 19, err, sizeof(err));
    assert_non_null(z->zc.key);
    z->zc.key_text = strdup("$binary_remote_addr");
    z->zc.rate = 10000; /* 10r/s */
    z->zc.sync_interval = 100;
    if (sync) {
        z->zc.sync_url = "redis://127.0.0.1:6379";
        strcpy(z->zc.sync_host, "127.0.0.1");
        z->zc.sync_port = 6379;
    }
    z->zone->conf = &z->zc;
    z->zone->init = zg_limit_req_zone_init;
    return zg_zone_map_all(&z->list, old, err, sizeof(err));
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

static int check(zg_limit_req_conf_t *l, zg_msec_t at)
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
    zone_make_ex(&z, "s", 64 * 1024, 1, NULL);
    l = (zg_limit_req_conf_t){ &z.zc, 5000, NODELAY };
    set_ip(0x0a000001);
    for (int i = 0; i < 8; i++) {
        check(&l, 0); /* 6 pass (burst 5), 2 rejected */
    }
    set_ip(0x0a000002);
    check(&l, 0);

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
    assert_int_equal(check(&l, 1), ZG_LIMIT_REJECTED);
    assert_int_equal(zg_limit_req_sync_take(z.zone, 512, take_cb, &t), 1);
    assert_int_equal(t.admitted[0], 0);
    /* budget: at most max per take */
    for (uint32_t i = 0; i < 5; i++) {
        set_ip(0x0b000000 + i);
        check(&l, 2);
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
    zone_make_ex(&z, "s", 64 * 1024, 1, NULL);
    l = (zg_limit_req_conf_t){ &z.zc, 5000, NODELAY };
    memcpy(key, &ip, 4);
    set_ip(0x0a000003);
    assert_int_equal(check(&l, 0), ZG_LIMIT_PASSED);
    memset(&t, 0, sizeof(t));
    assert_int_equal(zg_limit_req_sync_take(z.zone, 512, take_cb, &t), 1);
    assert_int_equal(check(&l, 0), ZG_LIMIT_PASSED); /* admitted after the take */
    /* other hosts used 5 more: fleet excess 6000 (ours 1 + theirs 5) + our 1 since = 7000 */
    zg_limit_req_sync_apply(z.zone, key, 4, 6000, T0, T0);
    assert_int_equal(check(&l, 0), ZG_LIMIT_REJECTED);
    /* 300 ms later 3 requests have drained: 4000 + 1000 <= burst again */
    assert_int_equal(check(&l, 299), ZG_LIMIT_REJECTED);
    assert_int_equal(check(&l, 300), ZG_LIMIT_PASSED);
    assert_int_equal(check(&l, 300), ZG_LIMIT_REJECTED);
    /* what was admitted since the take drains from the take on: 3 requests
     * admitted, the answer comes 200 ms (2 drained) after the take */
    assert_int_equal(check(&l, 2000), ZG_LIMIT_PASSED);
    memset(&t, 0, sizeof(t));
    assert_int_equal(zg_limit_req_sync_take(z.zone, 512, take_cb, &t), 1);
    assert_int_equal(check(&l, 2000), ZG_LIMIT_PASSED);
    assert_int_equal(check(&l, 2000), ZG_LIMIT_PASSED);
    assert_int_equal(check(&l, 2000), ZG_LIMIT_PASSED);
    zg_limit_req_sync_apply(z.zone, key, 4, 3000, T0 + 2000, T0 + 2200);
    /* 3000 + (3000 - 2000) = 4000: one more fits (5000), not two */
    assert_int_equal(check(&l, 2200), ZG_LIMIT_PASSED);
    assert_int_equal(check(&l, 2200), ZG_LIMIT_REJECTED);
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
    zone_make_ex(&a, "plain", 64 * 1024, 0, NULL);
    assert_null(zg_limit_req_sync_shared(a.zone));
    assert_int_equal(zg_limit_req_sync_stats(a.zone, &st), ZG_DECLINED);
    l = (zg_limit_req_conf_t){ &a.zc, 0, NODELAY };
    set_ip(1);
    used3 = a.zone->pool->stats[3].used;
    check(&l, 0);
    assert_int_equal(zg_limit_req_sync_take(a.zone, 10, NULL, NULL), 0);
    assert_int_equal(a.zone->pool->stats[3].used, used3 + 1); /* one 64-byte slot */

    /* a reload cannot add sync to a zone made without it */
    assert_int_equal(zone_make_ex(&b, "plain", 64 * 1024, 1, &a.list), ZG_ERROR);
    zone_free(&b, 0);
    zone_free(&a, 1);

    zone_make_ex(&a, "synced", 64 * 1024, 1, NULL);
    assert_non_null(zg_limit_req_sync_shared(a.zone));
    l = (zg_limit_req_conf_t){ &a.zc, 0, NODELAY };
    used3 = a.zone->pool->stats[3].used;
    used4 = a.zone->pool->stats[4].used;
    check(&l, 0);
    assert_int_equal(a.zone->pool->stats[3].used, used3);
    assert_int_equal(a.zone->pool->stats[4].used, used4 + 1); /* 128-byte slot with the extension */
    /* ... but may drop it: the zone keeps its layout */
    assert_int_equal(zone_make_ex(&b, "synced", 64 * 1024, 0, &a.list), ZG_OK);
    assert_non_null(zg_limit_req_sync_shared(b.zone));
    zone_free(&b, 0);
    zone_free(&a, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_counts),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_layout_and_reload),
    };

    zg_log_open("stderr", ZG_LOG_EMERG);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
