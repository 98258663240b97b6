/* test_keyval.c — key-value zones: exact, ip and prefix matching, expiry, LRU
 * eviction, too large values, state files (round trip, corruption), the keyval
 * variable through a loaded configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "zg_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zg_keyval.h"
#include "zg_limit_req.h"
#include "zg_log.h"

typedef struct {
    zg_zone_list_t list;
    zg_zone_t *zone;
    zg_keyval_zone_conf_t zc;
} kv_zone_t;

static int zone_make_ex(kv_zone_t *z, const char *name, size_t size, int type,
                        zg_msec_t timeout, zg_zone_list_t *old)
{
    char err[256];

    memset(z, 0, sizeof(*z));
    z->zone = zg_zone_declare(&z->list, name, ZG_ZONE_KEYVAL, size, err, sizeof(err));
    assert_non_null(z->zone);
    z->zc.zone = z->zone;
    z->zc.type = type;
    z->zc.timeout = timeout;
    z->zone->conf = &z->zc;
    z->zone->init = zg_keyval_zone_init;
    return zg_zone_map_all(&z->list, old, err, sizeof(err));
}

static void zone_make(kv_zone_t *z, size_t size, int type, zg_msec_t timeout)
{
    assert_int_equal(zone_make_ex(z, "kv", size, type, timeout, NULL), ZG_OK);
}

static void zone_free(kv_zone_t *z)
{
    zg_zone_unmap_all(&z->list);
    zg_zone_list_free(&z->list);
}

static int set(kv_zone_t *z, const char *k, const char *v, zg_msec_t now)
{
    return zg_keyval_set(z->zone, k, strlen(k), v, strlen(v), 0, now);
}

/* the matched value as a C string ("" = none) */
static const char *get(kv_zone_t *z, const char *k, zg_msec_t now)
{
    static char buf[ZG_KEYVAL_VALUE_MAX + 1];
    size_t n = zg_keyval_match(z->zone, k, strlen(k), now, buf, sizeof(buf) - 1);

    buf[zg_min(n, sizeof(buf) - 1)] = '\0';
    return buf;
}

static void check_pool(zg_zone_t *zone)
{
    zg_shmtx_lock(&zone->pool->mutex);
    assert_int_equal(zg_slab_validate(zone->pool), ZG_OK);
    zg_shmtx_unlock(&zone->pool->mutex);
}

static int setup(void **state)
{
    (void)state;
    memset(&ctx, 0, sizeof(ctx));
    set_ip(0x0a000001);
    zg_log_open("stderr", ZG_LOG_EMERG);
    return 0;
}

static void test_string(void **state)
{
    kv_zone_t z;
    zg_keyval_stats_t st;

    (void)state;
    zone_make(&z, 64 * 1024, ZG_KEYVAL_STRING, 0);
    assert_string_equal(get(&z, "a", 1), "");
    assert_int_equal(set(&z, "a", "1", 1), ZG_OK);
    assert_int_equal(set(&z, "ab", "2", 1), ZG_OK);
    assert_string_equal(get(&z, "a", 1), "1");
    assert_string_equal(get(&z, "ab", 1), "2");
    assert_string_equal(get(&z, "abc", 1), "");
    /* POST: only a new key */
    assert_int_equal(zg_keyval_set(z.zone, "a", 1, "x", 1, 1, 1), ZG_BUSY);
    assert_string_equal(get(&z, "a", 1), "1");
    /* PATCH replaces */
    assert_int_equal(set(&z, "a", "changed", 1), ZG_OK);
    assert_string_equal(get(&z, "a", 1), "changed");
    zg_keyval_stats(z.zone, &st);
    assert_int_equal(st.entries, 2);
    assert_int_equal(zg_keyval_delete(z.zone, "a", 1), ZG_OK);
    assert_int_equal(zg_keyval_delete(z.zone, "a", 1), ZG_DECLINED);
    assert_string_equal(get(&z, "a", 1), "");
    /* empty and too long keys are not keys */
    assert_int_equal(set(&z, "", "v", 1), ZG_DECLINED);
    zg_keyval_clear(z.zone);
    zg_keyval_stats(z.zone, &st);
    assert_int_equal(st.entries, 0);
    check_pool(z.zone);
    zone_free(&z);
}

static void test_ip(void **state)
{
    kv_zone_t z;

    (void)state;
    zone_make(&z, 64 * 1024, ZG_KEYVAL_IP, 0);
    assert_int_equal(set(&z, "10.0.0.0/8", "net8", 1), ZG_OK);
    assert_int_equal(set(&z, "10.1.0.0/16", "net16", 1), ZG_OK);
    assert_int_equal(set(&z, "10.1.2.3", "host", 1), ZG_OK);
    assert_int_equal(set(&z, "2001:db8::/32", "v6", 1), ZG_OK);
    assert_int_equal(set(&z, "0.0.0.0/0", "all", 1), ZG_OK);
    assert_int_equal(set(&z, "not an address", "x", 1), ZG_DECLINED);
    assert_int_equal(set(&z, "10.0.0.0/33", "x", 1), ZG_DECLINED);

    assert_string_equal(get(&z, "10.1.2.3", 1), "host");
    assert_string_equal(get(&z, "10.1.2.4", 1), "net16");
    assert_string_equal(get(&z, "10.2.0.1", 1), "net8");
    assert_string_equal(get(&z, "192.0.2.1", 1), "all");
    assert_string_equal(get(&z, "2001:db8:1::5", 1), "v6");
    assert_string_equal(get(&z, "2001:db9::5", 1), "");
    assert_string_equal(get(&z, "garbage", 1), "");
    /* a network is stored masked: 10.1.9.9/16 is 10.1.0.0/16 */
    assert_int_equal(set(&z, "10.1.9.9/16", "net16b", 1), ZG_OK);
    assert_string_equal(get(&z, "10.1.2.4", 1), "net16b");
    assert_int_equal(zg_keyval_delete(z.zone, "10.1.0.0/16", 11), ZG_OK);
    assert_string_equal(get(&z, "10.1.2.4", 1), "net8");
    assert_int_equal(zg_keyval_delete(z.zone, "0.0.0.0/0", 9), ZG_OK);
    assert_string_equal(get(&z, "192.0.2.1", 1), "");
    check_pool(z.zone);
    zone_free(&z);
}

static void test_prefix(void **state)
{
    kv_zone_t z;

    (void)state;
    zone_make(&z, 64 * 1024, ZG_KEYVAL_PREFIX, 0);
    assert_int_equal(set(&z, "/api/", "api", 1), ZG_OK);
    assert_int_equal(set(&z, "/api/admin/", "admin", 1), ZG_OK);
    assert_string_equal(get(&z, "/api/admin/users", 1), "admin");
    assert_string_equal(get(&z, "/api/users", 1), "api");
    assert_string_equal(get(&z, "/api", 1), "");
    assert_string_equal(get(&z, "/other", 1), "");
    assert_string_equal(get(&z, "/api/", 1), "api");
    zone_free(&z);
}

static void test_expiry(void **state)
{
    kv_zone_t z;
    zg_keyval_stats_t st;

    (void)state;
    zone_make(&z, 64 * 1024, ZG_KEYVAL_STRING, 1000);
    assert_int_equal(set(&z, "k", "v", 5000), ZG_OK);
    assert_string_equal(get(&z, "k", 5999), "v");
    assert_string_equal(get(&z, "k", 6000), "");
    zg_keyval_stats(z.zone, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.expired, 1);
    /* an expired key may be added again (POST) */
    assert_int_equal(set(&z, "k", "v", 5000), ZG_OK);
    assert_int_equal(zg_keyval_set(z.zone, "k", 1, "w", 1, 1, 7000), ZG_OK);
    assert_string_equal(get(&z, "k", 7500), "w");
    check_pool(z.zone);
    zone_free(&z);
}

static void test_eviction(void **state)
{
    kv_zone_t z;
    zg_keyval_stats_t st;
    char k[32], v[200];
    int i, n = 2000;

    (void)state;
    zone_make(&z, 64 * 1024, ZG_KEYVAL_STRING, 0);
    memset(v, 'v', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    for (i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "key%d", i);
        assert_int_equal(set(&z, k, v, 1), ZG_OK);
        if (i == 10) {
            /* used: moves to the head of the LRU queue */
            assert_string_equal(get(&z, "key0", 1), v);
        }
        if (i > 10 && i % 10 == 0) {
            get(&z, "key0", 1);
        }
    }
    zg_keyval_stats(z.zone, &st);
    assert_true(st.evicted > 0);
    assert_int_equal(st.entries + st.evicted, (uint64_t)n);
    /* the newest entry and the one kept in use stay; the oldest unused went */
    snprintf(k, sizeof(k), "key%d", n - 1);
    assert_string_equal(get(&z, k, 1), v);
    assert_string_equal(get(&z, "key0", 1), v);
    assert_string_equal(get(&z, "key1", 1), "");
    check_pool(z.zone);
    zone_free(&z);
}

static void test_too_large(void **state)
{
    kv_zone_t z;
    char *big = malloc(ZG_KEYVAL_VALUE_MAX + 2);
    zg_keyval_stats_t st;

    (void)state;
    assert_non_null(big);
    zone_make(&z, 8 * 4096, ZG_KEYVAL_STRING, 0);
    assert_int_equal(set(&z, "keep", "me", 1), ZG_OK);
    memset(big, 'x', ZG_KEYVAL_VALUE_MAX + 1);
    big[ZG_KEYVAL_VALUE_MAX + 1] = '\0';
    /* over the value limit: refused, nothing evicted */
    assert_int_equal(set(&z, "big", big, 1), ZG_ERROR);
    zg_keyval_stats(z.zone, &st);
    assert_int_equal(st.evicted, 0);
    assert_string_equal(get(&z, "keep", 1), "me");
    /* at the limit it fits (a 4 KiB value in a 32 KiB zone) */
    big[ZG_KEYVAL_VALUE_MAX] = '\0';
    assert_int_equal(set(&z, "big", big, 1), ZG_OK);
    assert_string_equal(get(&z, "big", 1), big);
    check_pool(z.zone);
    zone_free(&z);
    free(big);
}

static void test_reload_keeps(void **state)
{
    kv_zone_t a, b;
    char err[256];

    (void)state;
    zone_make(&a, 64 * 1024, ZG_KEYVAL_STRING, 0);
    assert_int_equal(set(&a, "k", "v", 1), ZG_OK);
    assert_int_equal(zone_make_ex(&b, "kv", 64 * 1024, ZG_KEYVAL_STRING, 0, &a.list), ZG_OK);
    assert_true(b.zone->reused);
    assert_string_equal(get(&b, "k", 1), "v");
    zg_zone_unmap_unused(&a.list, &b.list);
    zg_zone_list_free(&a.list);
    /* another type on the same zone is refused */
    assert_int_equal(zone_make_ex(&a, "kv", 64 * 1024, ZG_KEYVAL_IP, 0, &b.list), ZG_ERROR);
    zg_zone_list_free(&a.list);
    (void)err;
    zone_free(&b);
}

/* a reload that drops sync= empties the journal (nothing would send it) */
static int zone_make_sync(kv_zone_t *z, int mode, zg_zone_list_t *old)
{
    char err[256];

    memset(z, 0, sizeof(*z));
    z->zone = zg_zone_declare(&z->list, "kvr", ZG_ZONE_KEYVAL, 64 * 1024, err, sizeof(err));
    assert_non_null(z->zone);
    z->zc.zone = z->zone;
    z->zc.sync.mode = mode;
    z->zone->conf = &z->zc;
    z->zone->init = zg_keyval_zone_init;
    return zg_zone_map_all(&z->list, old, err, sizeof(err));
}

static int count_cb(void *arg, int op, const char *key, size_t klen, const char *val,
                    size_t vlen)
{
    (void)op, (void)key, (void)klen, (void)val, (void)vlen;
    (*(int *)arg)++;
    return ZG_OK;
}

static void test_reload_drops_sync(void **state)
{
    kv_zone_t a, b, c;
    int n = 0, more;

    (void)state;
    assert_int_equal(zone_make_sync(&a, ZG_SYNC_REDIS, NULL), ZG_OK);
    assert_int_equal(set(&a, "k", "v", 1), ZG_OK);
    /* reloaded with sync: the journal stays for the next sender */
    assert_int_equal(zone_make_sync(&b, ZG_SYNC_REDIS, &a.list), ZG_OK);
    assert_int_equal(zg_keyval_sync_peek(b.zone, 16, count_cb, &n, &more), 1);
    zg_zone_unmap_unused(&a.list, &b.list);
    zg_zone_list_free(&a.list);
    /* reloaded without: the journal goes, the entries stay, writes are not journaled */
    assert_int_equal(zone_make_sync(&c, ZG_SYNC_NONE, &b.list), ZG_OK);
    assert_true(c.zone->reused);
    n = 0;
    assert_int_equal(zg_keyval_sync_peek(c.zone, 16, count_cb, &n, &more), 0);
    assert_null(zg_keyval_sync_shared(c.zone));
    assert_string_equal(get(&c, "k", 1), "v");
    assert_int_equal(set(&c, "k2", "v", 1), ZG_OK);
    assert_int_equal(zg_keyval_sync_peek(c.zone, 16, count_cb, &n, &more), 0);
    zg_zone_unmap_unused(&b.list, &c.list);
    zg_zone_list_free(&b.list);
    zone_free(&c);
}

static char tmpdir[64];

static const char *path_in_tmp(const char *name)
{
    static char p[128];

    if (tmpdir[0] == '\0') {
        strcpy(tmpdir, "/tmp/zg_kv_XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
    }
    snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
    return p;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_state_round_trip(void **state)
{
    kv_zone_t a, b;
    char path[128];

    (void)state;
    snprintf(path, sizeof(path), "%s", path_in_tmp("ip.state"));
    zone_make(&a, 64 * 1024, ZG_KEYVAL_IP, 0);
    assert_int_equal(set(&a, "10.0.0.0/8", "net", 1), ZG_OK);
    assert_int_equal(set(&a, "192.0.2.7", "host \"quoted\"\n", 1), ZG_OK);
    assert_int_equal(set(&a, "2001:db8::/32", "v6", 1), ZG_OK);
    assert_int_equal(zg_keyval_state_save(a.zone, path), ZG_OK);
    assert_int_equal(access(path, F_OK), 0);
    {
        char tmp[160];
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        assert_int_not_equal(access(tmp, F_OK), 0);
    }
    zone_free(&a);

    zone_make(&b, 64 * 1024, ZG_KEYVAL_IP, 0);
    assert_int_equal(zg_keyval_state_load(b.zone, path, 1), ZG_OK);
    assert_string_equal(get(&b, "10.9.9.9", 1), "net");
    assert_string_equal(get(&b, "192.0.2.7", 1), "host \"quoted\"\n");
    assert_string_equal(get(&b, "2001:db8::1", 1), "v6");
    assert_int_equal(zg_keyval_state_load(b.zone, path_in_tmp("missing"), 1), ZG_DECLINED);
    zone_free(&b);
    unlink(path);
}

static void test_state_corrupt(void **state)
{
    kv_zone_t z;
    const char *p;

    (void)state;
    zone_make(&z, 64 * 1024, ZG_KEYVAL_IP, 0);

    p = path_in_tmp("truncated");
    write_text(p, "{\"10.0.0.1\":\"a\",\"10.0.0.2\":\"b");
    assert_int_equal(set(&z, "10.0.0.9", "old", 1), ZG_OK);
    assert_int_equal(zg_keyval_state_load(z.zone, p, 1), ZG_ERROR);
    assert_string_equal(get(&z, "10.0.0.1", 1), "");
    unlink(p);

    p = path_in_tmp("array");
    write_text(p, "[1,2]");
    assert_int_equal(zg_keyval_state_load(z.zone, p, 1), ZG_ERROR);
    unlink(p);

    /* a bad entry empties the zone: no half-loaded state */
    p = path_in_tmp("badkey");
    write_text(p, "{\"10.0.0.1\":\"a\",\"nonsense\":\"b\"}");
    assert_int_equal(zg_keyval_state_load(z.zone, p, 1), ZG_ERROR);
    assert_string_equal(get(&z, "10.0.0.1", 1), "");
    unlink(p);

    p = path_in_tmp("number");
    write_text(p, "{\"10.0.0.1\":5}");
    assert_int_equal(zg_keyval_state_load(z.zone, p, 1), ZG_ERROR);
    unlink(p);
    check_pool(z.zone);
    zone_free(&z);
    rmdir(tmpdir);
}

static zg_conf_t *load(const char *text, char *err, size_t errlen)
{
    return zg_conf_load_string("kv.conf", text, strlen(text), err, errlen);
}

/* keyval's variable, through a configuration: in a limit key and a log format */
static void test_variable(void **state)
{
    static const char text[] =
        "http {\n"
        "  keyval_zone zone=tiers:64k;\n"
        "  keyval $remote_addr $tier zone=tiers;\n"
        "  keyval_zone zone=paths:64k type=prefix;\n"
        "  keyval $uri $path_class zone=paths;\n"
        "  log_format t '$tier|$path_class';\n"
        "}\n";
    char err[512], buf[256];
    zg_conf_t *conf;
    zg_keyval_zone_conf_t *kz;
    zg_cv_t *cv;
    size_t n;

    (void)state;
    conf = zg_conf_load_string("kv.conf", text, sizeof(text) - 1, err, sizeof(err));
    assert_non_null(conf);
    assert_int_equal(zg_zone_map_all(&conf->zones, NULL, err, sizeof(err)), ZG_OK);
    kz = zg_keyval_zone(conf, "tiers");
    assert_non_null(kz);
    assert_int_equal(zg_keyval_set(kz->zone, "10.0.0.1", 8, "gold", 4, 0, zg_time_msec()),
                     ZG_OK);
    kz = zg_keyval_zone(conf, "paths");
    assert_int_equal(zg_keyval_set(kz->zone, "/static/", 8, "cheap", 5, 0, zg_time_msec()),
                     ZG_OK);

    /* the variables are the configuration's: not known to a value compiled outside */
    cv = zg_cv_compile("$tier", 5, err, sizeof(err));
    assert_null(cv);

    zg_zone_unmap_all(&conf->zones);
    zg_conf_free(conf);

    /* errors name the file and line */
    conf = load("http {\n keyval $remote_addr $t zone=nowhere;\n}\n", err, sizeof(err));
    assert_null(conf);
    assert_non_null(strstr(err, "unknown keyval_zone \"nowhere\""));
    assert_non_null(strstr(err, "kv.conf:2"));
    conf = load("http {\n keyval_zone zone=a:64k type=map;\n}\n", err, sizeof(err));
    assert_null(conf);
    assert_non_null(strstr(err, "type=map"));
    conf = load("http {\n keyval_zone zone=a:64k;\n keyval $uri $uri zone=a;\n}\n", err,
                sizeof(err));
    assert_null(conf);
    assert_non_null(strstr(err, "kv.conf:3"));
    /* as in nginx, a variable may be used before its keyval */
    conf = load("http {\n log_format x '$later';\n keyval_zone zone=a:64k;\n"
                " keyval $uri $later zone=a;\n}\n",
                err, sizeof(err));
    assert_non_null(conf);
    zg_conf_free(conf);
    /* one never defined is unknown, named where it was first used */
    conf = load("http {\n keyval_zone zone=a:64k;\n log_format x '$nowhere';\n"
                " log_format y '$nowhere $later';\n keyval $uri $later zone=a;\n}\n",
                err, sizeof(err));
    assert_null(conf);
    assert_non_null(strstr(err, "unknown \"nowhere\" variable in kv.conf:3"));
    /* a variable defined twice (keyval, or keyval and map) */
    conf = load("http {\n keyval_zone zone=a:64k;\n keyval $uri $x zone=a;\n"
                " keyval $args $x zone=a;\n}\n",
                err, sizeof(err));
    assert_null(conf);
    assert_non_null(strstr(err, "the duplicate \"x\" variable in kv.conf:4"));
    /* a chain is fine */
    conf = load("http {\n keyval_zone zone=a:64k;\n keyval $b $a zone=a;\n"
                " keyval $uri $b zone=a;\n}\n",
                err, sizeof(err));
    assert_non_null(conf);
    zg_conf_free(conf);
    /* rate=$var needs default=, and default= needs a variable rate */
    conf = load("http {\n keyval_zone zone=a:64k;\n keyval $uri $r zone=a;\n"
                " limit_req_zone $uri zone=l:64k rate=$r;\n}\n",
                err, sizeof(err));
    assert_null(conf);
    assert_non_null(strstr(err, "must have \"default\" parameter in kv.conf:4"));
    conf = load("http {\n limit_req_zone $uri zone=l:64k rate=1r/s default=2r/s;\n}\n", err,
                sizeof(err));
    assert_null(conf);
    assert_non_null(strstr(err, "kv.conf:2"));
    conf = load("http {\n keyval_zone zone=a:64k;\n keyval $uri $r zone=a;\n"
                " limit_req_zone $uri zone=l:64k rate=$r default=5r/m;\n"
                " limit_conn_zone $uri zone=c:64k;\n"
                " server { listen 127.0.0.1:1; location / { limit_conn c $r default=2; } }\n}\n",
                err, sizeof(err));
    assert_non_null(conf);
    zg_conf_free(conf);
    (void)n;
    (void)buf;
}

/* the value through zg_cv_eval: keyval's getter as every user of variables sees it */
static void test_variable_eval(void **state)
{
    static zg_keyval_zone_conf_t *kz;
    /* the variable is used before its keyval: the value reads it all the same */
    static const char text[] = "http {\n"
                               "  limit_req_zone $blocked zone=z:64k rate=1r/s;\n"
                               "  keyval_zone zone=deny:64k type=ip;\n"
                               "  keyval $remote_addr $blocked zone=deny;\n"
                               "}\n";
    char err[512];
    zg_conf_t *conf;

    (void)state;
    conf = zg_conf_load_string("kv.conf", text, sizeof(text) - 1, err, sizeof(err));
    assert_non_null(conf);
    assert_int_equal(zg_zone_map_all(&conf->zones, NULL, err, sizeof(err)), ZG_OK);
    kz = zg_keyval_zone(conf, "deny");
    assert_int_equal(zg_keyval_set(kz->zone, "10.0.0.0/24", 11, "1", 1, 0, zg_time_msec()),
                     ZG_OK);
    /* the limit_req key is "$blocked": find it through the zone list */
    {
        zg_zone_t *z = zg_zone_find(&conf->zones, "z");
        assert_non_null(z);
        const zg_cv_t *key = ((zg_limit_req_zone_conf_t *)z->conf)->key;
        char out[64];
        /* each block is one request: its variables are read once, then freed */
        ctx.vars = zg_conf_vars(conf);
        set_ip(0x0a000005);
        assert_int_equal(zg_cv_eval(key, &ctx, 0, out, sizeof(out)), 1);
        assert_int_equal(out[0], '1');
        zg_var_ctx_free(&ctx);
        set_ip(0x0b000005);
        assert_int_equal(zg_cv_eval(key, &ctx, 0, out, sizeof(out)), 0);
        /* the access log's escaping writes a value not found as "-" */
        assert_int_equal(zg_cv_eval(key, &ctx, 1, out, sizeof(out)), 1);
        assert_int_equal(out[0], '-');
        zg_var_ctx_free(&ctx);
        /* a change is seen by the next request */
        assert_int_equal(zg_keyval_set(kz->zone, "11.0.0.0/8", 10, "2", 1, 0, zg_time_msec()),
                         ZG_OK);
        assert_int_equal(zg_cv_eval(key, &ctx, 0, out, sizeof(out)), 1);
        assert_int_equal(out[0], '2');
        zg_var_ctx_free(&ctx);
        ctx.vars = NULL;
    }
    zg_zone_unmap_all(&conf->zones);
    zg_conf_free(conf);
}

/* sync: the API's writes go to the journal in order (ip keys as canonical text);
 * a change from Redis leaves a key with a journaled write alone; once stamped
 * (acked) it applies; a reset keeps only the journaled keys */
typedef struct {
    char ops[16][80];
    int n;
} peeked_t;

static int peek_cb(void *arg, int op, const char *key, size_t klen, const char *val,
                   size_t vlen)
{
    peeked_t *p = arg;

    snprintf(p->ops[p->n++], sizeof(p->ops[0]), "%c %.*s=%.*s", op, (int)klen, key, (int)vlen,
             val);
    return ZG_OK;
}

static void test_sync_journal(void **state)
{
    kv_zone_t z, ip;
    peeked_t p = { 0 };
    int more;

    (void)state;
    memset(&z, 0, sizeof(z));
    zone_make(&z, 64 * 1024, ZG_KEYVAL_STRING, 0);
    assert_null(zg_keyval_sync_shared(z.zone));
    zone_free(&z);

    memset(&z, 0, sizeof(z));
    {
        char err[256];

        z.zone = zg_zone_declare(&z.list, "kvs", ZG_ZONE_KEYVAL, 64 * 1024, err, sizeof(err));
        z.zc.zone = z.zone;
        z.zc.sync.mode = ZG_SYNC_REDIS;
        z.zone->conf = &z.zc;
        z.zone->init = zg_keyval_zone_init;
        assert_int_equal(zg_zone_map_all(&z.list, NULL, err, sizeof(err)), ZG_OK);
    }
    assert_non_null(zg_keyval_sync_shared(z.zone));
    assert_int_equal(set(&z, "a", "1", 1000), ZG_OK);
    assert_int_equal(set(&z, "b", "2", 1000), ZG_OK);
    assert_int_equal(zg_keyval_delete(z.zone, "zz", 2), ZG_DECLINED); /* journaled anyway */
    assert_int_equal(zg_keyval_sync_peek(z.zone, 2, peek_cb, &p, &more), 2);
    assert_true(more);
    assert_string_equal(p.ops[0], "s a=1");
    assert_string_equal(p.ops[1], "s b=2");
    /* Redis has an older a: the local write is kept */
    assert_int_equal(zg_keyval_sync_apply(z.zone, "a", 1, "old", 3, 1000), ZG_BUSY);
    assert_string_equal(get(&z, "a", 1000), "1");
    assert_int_equal(zg_keyval_sync_apply(z.zone, "c", 1, "3", 1, 1000), ZG_OK);
    assert_string_equal(get(&z, "c", 1000), "3");
    zg_keyval_sync_ack(z.zone, 2);
    p.n = 0;
    assert_int_equal(zg_keyval_sync_peek(z.zone, 16, peek_cb, &p, &more), 1);
    assert_false(more);
    assert_string_equal(p.ops[0], "d zz=");
    zg_keyval_sync_ack(z.zone, 1);
    assert_int_equal(zg_keyval_sync_apply(z.zone, "a", 1, "new", 3, 1000), ZG_OK);
    assert_string_equal(get(&z, "a", 1000), "new");
    assert_int_equal(zg_keyval_sync_apply(z.zone, "b", 1, NULL, 0, 1000), ZG_OK);
    assert_string_equal(get(&z, "b", 1000), "");
    /* nothing from Redis is journaled */
    assert_int_equal(zg_keyval_sync_peek(z.zone, 16, peek_cb, &p, &more), 0);
    /* reset: only journaled keys stay */
    assert_int_equal(set(&z, "d", "4", 1000), ZG_OK);
    zg_keyval_sync_seen(z.zone, 77, 5);
    assert_int_equal(zg_keyval_sync_cursor(z.zone), 77);
    assert_int_equal(zg_keyval_sync_fleet(z.zone), 5);
    zg_keyval_sync_reset(z.zone);
    assert_int_equal(zg_keyval_sync_cursor(z.zone), 0);
    assert_string_equal(get(&z, "a", 1000), "");
    assert_string_equal(get(&z, "c", 1000), "");
    assert_string_equal(get(&z, "d", 1000), "4");
    /* a clear is journaled, and holds back every change from Redis */
    zg_keyval_clear(z.zone);
    assert_int_equal(zg_keyval_sync_apply(z.zone, "e", 1, "5", 1, 1000), ZG_BUSY);
    zone_free(&z);

    /* ip zones journal the canonical network */
    memset(&ip, 0, sizeof(ip));
    {
        char err[256];

        ip.zone = zg_zone_declare(&ip.list, "ips", ZG_ZONE_KEYVAL, 64 * 1024, err, sizeof(err));
        ip.zc.zone = ip.zone;
        ip.zc.type = ZG_KEYVAL_IP;
        ip.zc.sync.mode = ZG_SYNC_REDIS;
        ip.zone->conf = &ip.zc;
        ip.zone->init = zg_keyval_zone_init;
        assert_int_equal(zg_zone_map_all(&ip.list, NULL, err, sizeof(err)), ZG_OK);
    }
    assert_int_equal(set(&ip, "10.1.2.3/8", "x", 1000), ZG_OK);
    p.n = 0;
    assert_int_equal(zg_keyval_sync_peek(ip.zone, 16, peek_cb, &p, &more), 1);
    assert_string_equal(p.ops[0], "s 10.0.0.0/8=x");
    zone_free(&ip);

    /* the journal takes at most a quarter of the zone: later writes are dropped
     * (counted), the entries themselves are all kept */
    memset(&z, 0, sizeof(z));
    {
        char err[256];

        z.zone = zg_zone_declare(&z.list, "kvj", ZG_ZONE_KEYVAL, 128 * 1024, err, sizeof(err));
        z.zc.zone = z.zone;
        z.zc.sync.mode = ZG_SYNC_REDIS;
        z.zone->conf = &z.zc;
        z.zone->init = zg_keyval_zone_init;
        assert_int_equal(zg_zone_map_all(&z.list, NULL, err, sizeof(err)), ZG_OK);
    }
    {
        static char big[2000];
        char k[8];
        int i;
        peeked_t *pp = calloc(1, sizeof(*pp));

        memset(big, 'v', sizeof(big));
        for (i = 0; i < 16; i++) {
            snprintf(k, sizeof(k), "k%d", i);
            assert_int_equal(zg_keyval_set(z.zone, k, strlen(k), big, sizeof(big), 0, 1000),
                             ZG_OK);
        }
        for (i = 0; i < 16; i++) {
            snprintf(k, sizeof(k), "k%d", i);
            assert_int_equal(zg_keyval_has(z.zone, k, strlen(k), 1000), 1);
        }
        i = zg_keyval_sync_peek(z.zone, 16, peek_cb, pp, &more);
        assert_true(i > 0 && i < 16);
        assert_int_equal(zg_keyval_sync_shared(z.zone)->dropped, (uint64_t)(16 - i));
        free(pp);
    }
    zone_free(&z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_string, setup),
        cmocka_unit_test_setup(test_ip, setup),
        cmocka_unit_test_setup(test_prefix, setup),
        cmocka_unit_test_setup(test_expiry, setup),
        cmocka_unit_test_setup(test_eviction, setup),
        cmocka_unit_test_setup(test_too_large, setup),
        cmocka_unit_test_setup(test_reload_keeps, setup),
        cmocka_unit_test_setup(test_reload_drops_sync, setup),
        cmocka_unit_test_setup(test_state_round_trip, setup),
        cmocka_unit_test_setup(test_state_corrupt, setup),
        cmocka_unit_test_setup(test_variable, setup),
        cmocka_unit_test_setup(test_variable_eval, setup),
        cmocka_unit_test_setup(test_sync_journal, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
