/* test_sync.c — the sync module: which zones it takes on, its /metrics families, and
 * a Redis that does not answer (the link is counted down, requests never wait). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "zg_admin.h"
#include "zg_conf.h"
#include "zg_limit_conn.h"
#include "zg_limit_req.h"
#include "zg_log.h"
#include "zg_sync.h"

static zg_conf_t *load(const char *text)
{
    char err[512];
    zg_conf_t *conf = zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err));

    if (conf == NULL) {
        fail_msg("unexpected error: %s", err);
    }
    if (zg_zone_map_all(&conf->zones, NULL, err, sizeof(err)) != ZG_OK) {
        fail_msg("zg_zone_map_all: %s", err);
    }
    return conf;
}

static void unload(zg_conf_t *conf)
{
    zg_zone_unmap_all(&conf->zones);
    zg_conf_free(conf);
}

/* a configuration without sync=... gives the module nothing to do */
static void test_nothing_to_sync(void **state)
{
    zg_conf_t *conf = load("http { limit_req_zone $binary_remote_addr zone=a:64k rate=1r/s; }");
    uv_loop_t loop;
    size_t len;
    char *out;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(zg_sync_start(&loop, conf), ZG_DECLINED);
    zg_sync_stop();
    out = zg_admin_metrics(conf, &len);
    assert_non_null(out);
    assert_null(strstr(out, "zonegate_sync_"));
    free(out);
    assert_int_equal(uv_loop_close(&loop), 0);
    unload(conf);
}

/* port 1 refuses: the error is counted, the zone is "down", and stop frees it all */
static void test_unreachable_redis(void **state)
{
    zg_conf_t *conf = load("http {\n"
                           " limit_req_zone $binary_remote_addr zone=s:64k rate=1r/s\n"
                           "   sync=redis://127.0.0.1:1 sync_interval=10ms;\n"
                           " limit_req_zone $binary_remote_addr zone=plain:64k rate=1r/s;\n"
                           "}");
    zg_limit_req_main_conf_t *lmcf = zg_limit_req_main_conf(conf);
    zg_limit_req_sync_stats_t st;
    uv_loop_t loop;
    size_t len;
    char *out;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(zg_sync_start(&loop, conf), ZG_OK);
    for (int i = 0; i < 200; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        assert_int_equal(zg_limit_req_sync_stats(lmcf->zones[0]->zone, &st), ZG_OK);
        if (st.errors > 0) {
            break;
        }
        nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
    }
    assert_true(st.errors > 0);
    assert_int_equal(st.up, ZG_SYNC_DOWN);
    assert_int_equal(zg_limit_req_sync_stats(lmcf->zones[1]->zone, &st), ZG_DECLINED);

    out = zg_admin_metrics(conf, &len);
    assert_non_null(out);
    assert_non_null(strstr(out, "# TYPE zonegate_sync_up gauge\n"));
    assert_non_null(strstr(out, "zonegate_sync_up{zone=\"s\"} 0\n"));
    assert_null(strstr(out, "zonegate_sync_up{zone=\"plain\"}"));
    free(out);

    zg_sync_stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    unload(conf);
}

/* a limit_conn zone with sync: the sync module takes it on (a refused Redis puts it
 * down) and /metrics shows its sync families with the fleet count; a limit_conn
 * zone without sync shows none; sentinels that refuse put their zone down too */
static void test_limit_conn_and_sentinel_zones(void **state)
{
    zg_conf_t *conf = load("http {\n"
                           " limit_conn_zone $binary_remote_addr zone=c:64k\n"
                           "   sync=redis://127.0.0.1:1 sync_interval=10ms;\n"
                           " limit_conn_zone $binary_remote_addr zone=cplain:64k;\n"
                           " limit_req_zone $binary_remote_addr zone=s:64k rate=1r/s\n"
                           "   sync=redis-sentinel://127.0.0.1:1,127.0.0.1:2/m\n"
                           "   sync_interval=10ms;\n"
                           "}");
    zg_limit_conn_main_conf_t *cmcf = zg_limit_conn_main_conf(conf);
    zg_limit_req_main_conf_t *lmcf = zg_limit_req_main_conf(conf);
    zg_sync_stats_t *cst;
    zg_limit_req_sync_stats_t st;
    uv_loop_t loop;
    size_t len;
    char *out;

    (void)state;
    cst = zg_limit_conn_sync_shared(cmcf->zones[0]->zone);
    assert_non_null(cst);
    assert_null(zg_limit_conn_sync_shared(cmcf->zones[1]->zone));
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(zg_sync_start(&loop, conf), ZG_OK);
    for (int i = 0; i < 300; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        assert_int_equal(zg_limit_req_sync_stats(lmcf->zones[0]->zone, &st), ZG_OK);
        if (cst->errors > 0 && st.errors > 0) {
            break;
        }
        nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
    }
    assert_true(cst->errors > 0);
    assert_int_equal(cst->up, ZG_SYNC_DOWN);
    assert_true(st.errors > 0);
    assert_int_equal(st.up, ZG_SYNC_DOWN);

    out = zg_admin_metrics(conf, &len);
    assert_non_null(out);
    assert_non_null(strstr(out, "zonegate_sync_up{zone=\"c\"} 0\n"));
    assert_non_null(strstr(out, "zonegate_sync_up{zone=\"s\"} 0\n"));
    assert_non_null(strstr(out, "zonegate_sync_fleet_current{zone=\"c\"} 0\n"));
    assert_null(strstr(out, "zonegate_sync_fleet_current{zone=\"s\"}"));
    assert_null(strstr(out, "zone=\"cplain\"} 0\nzonegate_sync"));
    assert_null(strstr(out, "zonegate_sync_up{zone=\"cplain\"}"));
    assert_non_null(strstr(out, "zonegate_sync_last_success_seconds{zone=\"c\"} 0\n"));
    assert_non_null(strstr(out, "zonegate_sync_budget_full_total{zone=\"s\"} 0\n"));
    assert_non_null(strstr(out, "zonegate_sync_redirects_total{zone=\"s\"} 0\n"));
    free(out);

    zg_sync_stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    unload(conf);
}

/* the URL forms: user and password kept apart, the password masked in what is shown */
static void test_sync_urls(void **state)
{
    zg_conf_t *conf = load("http {\n"
                           " limit_req_zone $uri zone=a:64k rate=1r/s sync=redis://:pw@h1:6379;\n"
                           " limit_req_zone $uri zone=b:64k rate=1r/s\n"
                           "   sync=redis://zg:p:w@[::1]:6380/4;\n"
                           " limit_req_zone $uri zone=c:64k rate=1r/s\n"
                           "   sync=redis-sentinel://127.0.0.1:26379,[::1]:26380/mymaster;\n"
                           "}");
    zg_limit_req_main_conf_t *lmcf = zg_limit_req_main_conf(conf);
    const zg_sync_conf_t *a = &lmcf->zones[0]->sync, *b = &lmcf->zones[1]->sync;
    const zg_sync_conf_t *c = &lmcf->zones[2]->sync;

    (void)state;
    assert_int_equal(a->mode, ZG_SYNC_REDIS);
    assert_null(a->user);
    assert_string_equal(a->password, "pw");
    assert_string_equal(a->host, "h1");
    assert_string_equal(a->url, "redis://:***@h1:6379");
    assert_string_equal(b->user, "zg");
    assert_string_equal(b->password, "p:w");
    assert_string_equal(b->host, "::1");
    assert_int_equal(b->port, 6380);
    assert_int_equal(b->db, 4);
    assert_string_equal(b->url, "redis://zg:***@[::1]:6380/4");
    assert_int_equal(c->mode, ZG_SYNC_SENTINEL);
    assert_int_equal(c->nnodes, 2);
    assert_string_equal(c->nodes[0].text, "127.0.0.1:26379");
    assert_string_equal(c->master, "mymaster");
    assert_null(c->password);
    assert_string_equal(c->url, "redis-sentinel://127.0.0.1:26379,[::1]:26380/mymaster");
    unload(conf);
}

/* Redis Cluster's key slots (values from the cluster specification / CLUSTER KEYSLOT) */
static void test_key_slot(void **state)
{
    (void)state;
    assert_int_equal(zg_sync_key_slot("foo", 3), 12182);
    assert_int_equal(zg_sync_key_slot("123456789", 9), 0x31c3 & 16383);
    assert_int_equal(zg_sync_key_slot("{user1000}.following", 20),
                     zg_sync_key_slot("user1000", 8));
    assert_int_equal(zg_sync_key_slot("zg:{fleet}:abc", 14), zg_sync_key_slot("fleet", 5));
    /* an empty tag "{}" is no tag: the whole key counts */
    assert_int_equal(zg_sync_key_slot("{}x", 3), zg_sync_key_slot("{}x", 3));
    assert_true(zg_sync_key_slot("{}x", 3) != zg_sync_key_slot("x", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_to_sync),
        cmocka_unit_test(test_unreachable_redis),
        cmocka_unit_test(test_sync_urls),
        cmocka_unit_test(test_limit_conn_and_sentinel_zones),
        cmocka_unit_test(test_key_slot),
    };

    zg_log_open("stderr", ZG_LOG_EMERG);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
