/* test_limit_conn.c — limit_conn: counts, rollback, dry run, dead workers, processes. */
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

#include "zg_limit_conn.h"
#include "zg_log.h"

typedef struct {
    zg_zone_list_t list;
    zg_zone_t *zone;
    zg_limit_conn_zone_conf_t zc;
} lc_zone_t;

static void set_args(const char *args)
{
    ctx.args.data = args;
    ctx.args.len = strlen(args);
}

static int make_synced;

static int zone_make_ex(lc_zone_t *z, const char *name, size_t size, const char *key,
                        zg_zone_list_t *old)
{
    char err[256];

    memset(z, 0, sizeof(*z));
    z->zone = zg_zone_declare(&z->list, name, ZG_ZONE_LIMIT_CONN, size, err, sizeof(err));
    assert_non_null(z->zone);
    z->zc.zone = z->zone;
    z->zc.key = zg_cv_compile(key, strlen(key), err, sizeof(err));
    assert_non_null(z->zc.key);
    z->zc.key_text = strdup(key);
    if (make_synced) {
        z->zc.sync.mode = ZG_SYNC_REDIS;
        z->zc.sync.interval = 100;
    }
    z->zone->conf = &z->zc;
    z->zone->init = zg_limit_conn_zone_init;
    return zg_zone_map_all(&z->list, old, err, sizeof(err));
}

static void zone_make(lc_zone_t *z, const char *name, size_t size, const char *key)
{
    assert_int_equal(zone_make_ex(z, name, size, key, NULL), ZG_OK);
}

static void zone_free(lc_zone_t *z, int unmap)
{
    if (unmap) {
        zg_zone_unmap_all(&z->list);
    }
    zg_zone_list_free(&z->list);
    zg_cv_free(z->zc.key);
    free(z->zc.key_text);
}

static uint32_t count_ip(lc_zone_t *z, uint32_t ip)
{
    uint32_t n = htonl(ip);

    return zg_limit_conn_count(z->zone, &n, 4);
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
    zg_worker_slot = 0;
    zg_log_open("stderr", ZG_LOG_EMERG);
    return 0;
}

static void test_count_and_reject(void **state)
{
    lc_zone_t z;
    zg_limit_conn_conf_t l = { 0 };
    zg_limit_conn_hold_t holds[4][1], extra[1];
    zg_limit_conn_stats_t st;
    int i, nh, status, nextra;
    size_t before;

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr");
    before = z.zone->pool->pages_free;
    l.zone = &z.zc;
    l.conn = 3;
    for (i = 0; i < 3; i++) {
        assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, holds[i], &nh,
                                               &status),
                         ZG_OK);
        assert_int_equal(nh, 1);
        assert_int_equal(status, ZG_LIMIT_PASSED);
        assert_int_equal(count_ip(&z, 0x0a000001), (uint32_t)i + 1);
    }
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, holds[3], &nh, &status),
                     ZG_BUSY);
    assert_int_equal(nh, 0);
    assert_int_equal(status, ZG_LIMIT_REJECTED);
    assert_int_equal(count_ip(&z, 0x0a000001), 3);

    /* another key is independent */
    set_ip(0x0a000002);
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, extra, &nextra,
                                           &status),
                     ZG_OK);
    set_ip(0x0a000001);

    zg_limit_conn_release(holds[0], 1);
    assert_int_equal(count_ip(&z, 0x0a000001), 2);
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, holds[0], &nh, &status),
                     ZG_OK);
    zg_limit_conn_stats(z.zone, &st);
    assert_int_equal(st.passed, 5);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.current, 4);
    assert_int_equal(st.entries, 2);

    for (i = 0; i < 3; i++) {
        zg_limit_conn_release(holds[i], 1);
    }
    zg_limit_conn_release(extra, nextra);
    assert_int_equal(count_ip(&z, 0x0a000001), 0);
    zg_limit_conn_stats(z.zone, &st);
    assert_int_equal(st.current, 0);
    assert_int_equal(st.entries, 0);
    assert_int_equal(z.zone->pool->pages_free, before);  /* nodes freed */
    check_pool(z.zone);
    zone_free(&z, 1);
}

/* a rejection by a later limit gives back what earlier limits took */
static void test_multi_limit_rollback(void **state)
{
    lc_zone_t a, b;
    zg_limit_conn_conf_t l[2] = { { 0 } };
    zg_limit_conn_hold_t h1[2], h2[2];
    zg_limit_conn_stats_t st;
    int n1, n2, status;

    (void)state;
    zone_make(&a, "perip", 64 * 1024, "$binary_remote_addr");
    zone_make(&b, "perarg", 64 * 1024, "$arg_k");
    set_args("k=v");
    l[0].zone = &a.zc;
    l[0].conn = 5;
    l[1].zone = &b.zc;
    l[1].conn = 1;

    assert_int_equal(zg_limit_conn_acquire(l, 2, 0, ZG_LOG_ERR, &ctx, h1, &n1, &status), ZG_OK);
    assert_int_equal(n1, 2);
    assert_int_equal(count_ip(&a, 0x0a000001), 1);
    assert_int_equal(zg_limit_conn_count(b.zone, "v", 1), 1);

    assert_int_equal(zg_limit_conn_acquire(l, 2, 0, ZG_LOG_ERR, &ctx, h2, &n2, &status), ZG_BUSY);
    assert_int_equal(n2, 0);
    assert_int_equal(status, ZG_LIMIT_REJECTED);
    assert_int_equal(count_ip(&a, 0x0a000001), 1);  /* rolled back */

    zg_limit_conn_stats(a.zone, &st);
    assert_int_equal(st.passed, 1);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.current, 1);
    zg_limit_conn_stats(b.zone, &st);
    assert_int_equal(st.rejected, 1);

    zg_limit_conn_release(h1, n1);
    assert_int_equal(count_ip(&a, 0x0a000001), 0);
    assert_int_equal(zg_limit_conn_count(b.zone, "v", 1), 0);
    set_args("");
    zone_free(&a, 1);
    zone_free(&b, 1);
}

static void test_dry_run(void **state)
{
    lc_zone_t a, b;
    zg_limit_conn_conf_t l[2] = { { 0 } };
    zg_limit_conn_hold_t h1[2], h2[2];
    zg_limit_conn_stats_t st;
    int n1, n2, status;

    (void)state;
    zone_make(&a, "perip", 64 * 1024, "$binary_remote_addr");
    zone_make(&b, "perarg", 64 * 1024, "$arg_k");
    set_args("k=v");
    l[0].zone = &a.zc;
    l[0].conn = 5;
    l[1].zone = &b.zc;
    l[1].conn = 1;

    assert_int_equal(zg_limit_conn_acquire(l, 2, 1, ZG_LOG_ERR, &ctx, h1, &n1, &status), ZG_OK);
    assert_int_equal(status, ZG_LIMIT_PASSED);
    assert_int_equal(n1, 2);
    /* over the second limit: passes, holding nothing (nginx gives back all it took) */
    assert_int_equal(zg_limit_conn_acquire(l, 2, 1, ZG_LOG_ERR, &ctx, h2, &n2, &status), ZG_OK);
    assert_int_equal(status, ZG_LIMIT_REJECTED_DRY_RUN);
    assert_int_equal(n2, 0);
    assert_int_equal(count_ip(&a, 0x0a000001), 1);
    assert_int_equal(zg_limit_conn_count(b.zone, "v", 1), 1);
    zg_limit_conn_stats(b.zone, &st);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.rejected_dry_run, 1);

    zg_limit_conn_release(h1, n1);
    zg_limit_conn_stats(a.zone, &st);
    assert_int_equal(st.current, 0);
    assert_int_equal(st.entries, 0);
    set_args("");
    zone_free(&a, 1);
    zone_free(&b, 1);
}

static void test_empty_and_long_key(void **state)
{
    lc_zone_t z;
    zg_limit_conn_conf_t l = { 0 };
    zg_limit_conn_hold_t h[1];
    zg_limit_conn_stats_t st;
    char args[300];
    int i, nh, status;

    (void)state;
    zone_make(&z, "perarg", 64 * 1024, "$arg_k");
    l.zone = &z.zc;
    l.conn = 1;
    set_args("");
    for (i = 0; i < 3; i++) {
        assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h, &nh, &status),
                         ZG_OK);
        assert_int_equal(nh, 0);
        assert_int_equal(status, ZG_LIMIT_NONE);
    }
    /* 256 bytes: over nginx's 255, logged and not limited */
    memcpy(args, "k=", 2);
    memset(args + 2, 'a', 256);
    args[258] = '\0';
    set_args(args);
    for (i = 0; i < 3; i++) {
        assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h, &nh, &status),
                         ZG_OK);
        assert_int_equal(nh, 0);
        assert_int_equal(status, ZG_LIMIT_NONE);
    }
    /* 255 bytes: limited */
    args[257] = '\0';
    set_args(args);
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h, &nh, &status), ZG_OK);
    assert_int_equal(nh, 1);
    assert_int_equal(zg_limit_conn_count(z.zone, args + 2, 255), 1);
    zg_limit_conn_release(h, nh);
    zg_limit_conn_stats(z.zone, &st);
    assert_int_equal(st.entries, 0);
    set_args("");
    zone_free(&z, 1);
}

/* the master gives back a dead worker's share only */
static void test_forget_worker(void **state)
{
    lc_zone_t z;
    zg_limit_conn_conf_t l = { 0 };
    zg_limit_conn_hold_t h[5][1];
    zg_limit_conn_stats_t st;
    int i, nh, status;

    (void)state;
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr");
    l.zone = &z.zc;
    l.conn = 10;

    zg_worker_slot = 1;
    for (i = 0; i < 2; i++) {
        assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[i], &nh, &status),
                         ZG_OK);
    }
    set_ip(0x0a000002);
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[2], &nh, &status),
                     ZG_OK);
    set_ip(0x0a000001);
    zg_worker_slot = 2;
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[3], &nh, &status),
                     ZG_OK);
    zg_worker_slot = 63;
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[4], &nh, &status),
                     ZG_OK);
    assert_int_equal(count_ip(&z, 0x0a000001), 4);
    assert_int_equal(count_ip(&z, 0x0a000002), 1);

    zg_limit_conn_forget_worker(z.zone, 1);
    assert_int_equal(count_ip(&z, 0x0a000001), 2);
    assert_int_equal(count_ip(&z, 0x0a000002), 0);
    zg_limit_conn_stats(z.zone, &st);
    assert_int_equal(st.current, 2);
    assert_int_equal(st.entries, 1);

    zg_limit_conn_forget_worker(z.zone, 7);  /* held nothing */
    assert_int_equal(count_ip(&z, 0x0a000001), 2);

    zg_limit_conn_release(h[3], 1);          /* slot 2's own release */
    assert_int_equal(count_ip(&z, 0x0a000001), 1);
    zg_limit_conn_release(h[4], 1);
    zg_limit_conn_stats(z.zone, &st);
    assert_int_equal(st.current, 0);
    assert_int_equal(st.entries, 0);
    check_pool(z.zone);
    zone_free(&z, 1);
}

static void test_alloc_failure(void **state)
{
    lc_zone_t z;
    zg_limit_conn_conf_t l = { 0 };
    zg_limit_conn_hold_t *h;
    zg_limit_conn_stats_t st;
    int i, n, nh, status, rc;

    (void)state;
    zone_make(&z, "tiny", ZG_ZONE_MIN_PAGES * ZG_SLAB_PAGE_SIZE, "$binary_remote_addr");
    l.zone = &z.zc;
    l.conn = 100;
    h = calloc(1000, sizeof(*h));
    for (n = 0; n < 1000; n++) {
        set_ip(0x0d000000 + (uint32_t)n);
        rc = zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, &h[n], &nh, &status);
        if (rc != ZG_OK) {
            assert_int_equal(rc, ZG_ERROR);
            assert_int_equal(status, ZG_LIMIT_REJECTED);
            assert_int_equal(nh, 0);
            break;
        }
    }
    assert_true(n > 10 && n < 1000);
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 1, ZG_LOG_ERR, &ctx, &h[n], &nh, &status),
                     ZG_OK);
    assert_int_equal(status, ZG_LIMIT_REJECTED_DRY_RUN);
    zg_limit_conn_stats(z.zone, &st);
    assert_int_equal(st.alloc_fails, 2);
    assert_int_equal(st.entries, (uint64_t)n);
    /* a known key still counts */
    set_ip(0x0d000000);
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, &h[n], &nh, &status),
                     ZG_OK);
    zg_limit_conn_release(&h[n], 1);
    for (i = 0; i < n; i++) {
        zg_limit_conn_release(&h[i], 1);
    }
    zg_limit_conn_stats(z.zone, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.current, 0);
    check_pool(z.zone);
    free(h);
    zone_free(&z, 1);
}

static void test_reload(void **state)
{
    lc_zone_t z1, z2, z3;
    zg_limit_conn_conf_t l = { 0 };
    zg_limit_conn_hold_t h[1];
    int nh, status;

    (void)state;
    zone_make(&z1, "one", 64 * 1024, "$binary_remote_addr");
    l.zone = &z1.zc;
    l.conn = 1;
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h, &nh, &status), ZG_OK);
    assert_int_equal(zone_make_ex(&z2, "one", 64 * 1024, "$binary_remote_addr", &z1.list),
                     ZG_OK);
    assert_int_equal(count_ip(&z2, 0x0a000001), 1);
    assert_int_equal(zone_make_ex(&z3, "one", 64 * 1024, "$remote_addr", &z2.list), ZG_ERROR);
    zg_limit_conn_release(h, nh);
    assert_int_equal(count_ip(&z2, 0x0a000001), 0);
    zone_free(&z3, 0);
    zone_free(&z2, 0);
    zone_free(&z1, 1);
}

static void test_log_lines(void **state)
{
    lc_zone_t z;
    zg_limit_conn_conf_t l = { 0 };
    zg_limit_conn_hold_t h[3][1];
    char path[] = "/tmp/zg_test_limit_conn_XXXXXX", *text;
    int fd, nh, status;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(zg_log_open(path, ZG_LOG_WARN), ZG_OK);
    zone_make(&z, "one", 64 * 1024, "$binary_remote_addr");
    set_ip(0xc0a80107);
    l.zone = &z.zc;
    l.conn = 1;
    zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[0], &nh, &status);
    zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[1], &nh, &status);
    zg_limit_conn_acquire(&l, 1, 1, ZG_LOG_WARN, &ctx, h[2], &nh, &status);
    zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_INFO, &ctx, h[2], &nh, &status); /* dropped */
    zg_limit_conn_release(h[0], 1);
    text = read_file(path);
    assert_non_null(strstr(text, "[error] "));
    assert_non_null(strstr(text, "limiting connections by zone \"one\", client: 192.168.1.7\n"));
    assert_non_null(strstr(text, "[warn] "));
    assert_non_null(strstr(text, "limiting connections, dry run, by zone \"one\", "
                                 "client: 192.168.1.7\n"));
    assert_null(strstr(text, "[info] "));
    zg_log_open("stderr", ZG_LOG_EMERG);
    unlink(path);
    zone_free(&z, 1);
}

/* four processes hold and give back concurrently; nothing leaks */
static void test_processes(void **state)
{
    lc_zone_t z;
    zg_limit_conn_conf_t l = { 0 };
    zg_limit_conn_stats_t st;
    pid_t pids[4];
    int c, wstatus;

    (void)state;
    zone_make(&z, "shared", 256 * 1024, "$binary_remote_addr");
    l.zone = &z.zc;
    l.conn = 3;

    for (c = 0; c < 4; c++) {
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            zg_limit_conn_hold_t h[8][1];
            int nh[8], status, i, j, rc, bad = 0;

            zg_worker_slot = c + 1;
            for (i = 0; i < 20000; i++) {
                set_ip(0x0e000000 + (uint32_t)(i % 5));
                for (j = 0; j < 2; j++) {
                    rc = zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[j], &nh[j],
                                               &status);
                    if (rc != ZG_OK && rc != ZG_BUSY) {
                        bad = 1;
                    }
                    if (rc == ZG_BUSY) {
                        nh[j] = 0;
                    }
                }
                for (j = 0; j < 2; j++) {
                    zg_limit_conn_release(h[j], nh[j]);
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
    zg_limit_conn_stats(z.zone, &st);
    assert_int_equal(st.current, 0);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.passed + st.rejected, 4 * 20000 * 2);
    assert_true(st.rejected > 0 || st.passed == 4 * 20000 * 2);
    for (c = 0; c < 5; c++) {
        assert_int_equal(count_ip(&z, 0x0e000000 + (uint32_t)c), 0);
    }
    check_pool(z.zone);
    zone_free(&z, 1);
}

/* limit_conn NAME $VAR [default=N]: the limit of each request from a variable */
static void test_variable_limit(void **state)
{
    lc_zone_t z;
    zg_limit_conn_conf_t l = { 0 };
    zg_limit_conn_hold_t holds[6][1];
    char err[128];
    int i, nh, status;

    (void)state;
    zone_make(&z, "var", 64 * 1024, "$binary_remote_addr");
    l.zone = &z.zc;
    l.conn_cv = zg_cv_compile("$arg_n", 6, err, sizeof(err));
    assert_non_null(l.conn_cv);
    /* n=2: the third is refused */
    set_args("n=2");
    for (i = 0; i < 2; i++) {
        assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, holds[i], &nh,
                                               &status),
                         ZG_OK);
    }
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, holds[2], &nh, &status),
                     ZG_BUSY);
    /* a larger value for the next request lets it in: the count carries over */
    set_args("n=3");
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, holds[2], &nh, &status),
                     ZG_OK);
    assert_int_equal(count_ip(&z, 0x0a000001), 3);
    /* empty or invalid, no default: not limited (nothing counted) */
    set_args("n=x");
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, holds[3], &nh, &status),
                     ZG_OK);
    assert_int_equal(nh, 0);
    /* with default=1 an invalid value means 1: refused (3 held) */
    l.conn = 1;
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, holds[3], &nh, &status),
                     ZG_BUSY);
    for (i = 0; i < 3; i++) {
        zg_limit_conn_release(holds[i], 1);
    }
    assert_int_equal(count_ip(&z, 0x0a000001), 0);
    zg_cv_free(l.conn_cv);
    set_args("");
    zone_free(&z, 1);
}

typedef struct {
    int n;
    uint32_t count[8];
} taken_t;

static int take_cb(void *arg, const unsigned char *key, size_t len, uint32_t count)
{
    taken_t *t = arg;

    (void)key;
    assert_int_equal(len, 4);
    t->count[t->n++] = count;
    return ZG_OK;
}

/* a synced zone: the other hosts' leases count against N; an entry whose count
 * falls to 0 stays until its 0 is pushed and nobody else holds the key; losing
 * Redis forgets the other hosts */
static void test_sync_leases(void **state)
{
    lc_zone_t z;
    zg_limit_conn_conf_t l = { 0 };
    zg_limit_conn_hold_t h[4][1];
    zg_limit_conn_stats_t st;
    uint32_t key = htonl(0x0a000001);
    taken_t t;
    int nh, status;

    (void)state;
    make_synced = 1;
    zone_make(&z, "fleet", 64 * 1024, "$binary_remote_addr");
    make_synced = 0;
    assert_non_null(zg_limit_conn_sync_shared(z.zone));
    assert_int_equal(strlen(zg_limit_conn_sync_host(z.zone)), 16);
    l.zone = &z.zc;
    l.conn = 3;
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[0], &nh, &status),
                     ZG_OK);
    memset(&t, 0, sizeof(t));
    assert_int_equal(zg_limit_conn_sync_take(z.zone, 512, take_cb, &t), 1);
    assert_int_equal(t.count[0], 1);
    /* two more held elsewhere: 1 + 2 = 3 is the limit */
    zg_limit_conn_sync_apply(z.zone, (const unsigned char *)&key, 4, 2);
    assert_int_equal(zg_limit_conn_sync_fleet(z.zone), 3);
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[1], &nh, &status),
                     ZG_BUSY);
    /* released here: the entry stays (its 1 was pushed, others hold the key) */
    zg_limit_conn_release(h[0], 1);
    zg_limit_conn_stats(z.zone, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.current, 0);
    memset(&t, 0, sizeof(t));
    assert_int_equal(zg_limit_conn_sync_take(z.zone, 512, take_cb, &t), 1);
    assert_int_equal(t.count[0], 0); /* the fleet learns of the release */
    /* the others' leases ended: nothing left to tell, the next take frees it */
    zg_limit_conn_sync_apply(z.zone, (const unsigned char *)&key, 4, 0);
    memset(&t, 0, sizeof(t));
    assert_int_equal(zg_limit_conn_sync_take(z.zone, 512, take_cb, &t), 0);
    zg_limit_conn_stats(z.zone, &st);
    assert_int_equal(st.entries, 0);

    /* Redis lost: the others' counts are forgotten, limits are per host */
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[0], &nh, &status),
                     ZG_OK);
    zg_limit_conn_sync_apply(z.zone, (const unsigned char *)&key, 4, 5);
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[1], &nh, &status),
                     ZG_BUSY);
    zg_limit_conn_sync_local(z.zone);
    assert_int_equal(zg_limit_conn_sync_fleet(z.zone), 1);
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[1], &nh, &status),
                     ZG_OK);
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[2], &nh, &status),
                     ZG_OK);
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[3], &nh, &status),
                     ZG_BUSY);
    zg_limit_conn_release(h[0], 1);
    zg_limit_conn_release(h[1], 1);
    zg_limit_conn_release(h[2], 1);
    zg_limit_conn_sync_local(z.zone);
    zg_limit_conn_stats(z.zone, &st);
    assert_int_equal(st.entries, 0);
    check_pool(z.zone);
    zone_free(&z, 1);
}

/* a reload that drops sync= forgets the other hosts' leases at once */
static void test_sync_dropped_by_reload(void **state)
{
    lc_zone_t z1, z2;
    zg_limit_conn_conf_t l = { 0 };
    zg_limit_conn_hold_t h[2][1];
    uint32_t key = htonl(0x0a000001);
    taken_t t;
    int nh, status;

    (void)state;
    make_synced = 1;
    zone_make(&z1, "fleet", 64 * 1024, "$binary_remote_addr");
    make_synced = 0;
    l.zone = &z1.zc;
    l.conn = 2;
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[0], &nh, &status),
                     ZG_OK);
    memset(&t, 0, sizeof(t));
    zg_limit_conn_sync_take(z1.zone, 512, take_cb, &t);
    zg_limit_conn_sync_apply(z1.zone, (const unsigned char *)&key, 4, 1);
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[1], &nh, &status),
                     ZG_BUSY);
    assert_int_equal(zone_make_ex(&z2, "fleet", 64 * 1024, "$binary_remote_addr", &z1.list),
                     ZG_OK);
    assert_null(zg_limit_conn_sync_shared(z2.zone));
    l.zone = &z2.zc;
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h[1], &nh, &status),
                     ZG_OK);
    zg_limit_conn_release(h[1], 1);
    zg_limit_conn_release(h[0], 1);
    assert_int_equal(count_ip(&z2, 0x0a000001), 0);
    zone_free(&z2, 0);
    zone_free(&z1, 1);
}

/* without sync an entry goes with its last hold, and the zone has no sync side */
static void test_unsynced_has_no_leases(void **state)
{
    lc_zone_t z;
    zg_limit_conn_conf_t l = { 0 };
    zg_limit_conn_hold_t h[1];
    zg_limit_conn_stats_t st;
    int nh, status;

    (void)state;
    zone_make(&z, "plain", 64 * 1024, "$binary_remote_addr");
    assert_null(zg_limit_conn_sync_shared(z.zone));
    l.zone = &z.zc;
    l.conn = 1;
    assert_int_equal(zg_limit_conn_acquire(&l, 1, 0, ZG_LOG_ERR, &ctx, h, &nh, &status), ZG_OK);
    zg_limit_conn_release(h, 1);
    zg_limit_conn_stats(z.zone, &st);
    assert_int_equal(st.entries, 0);
    zone_free(&z, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_count_and_reject, setup),
        cmocka_unit_test_setup(test_multi_limit_rollback, setup),
        cmocka_unit_test_setup(test_dry_run, setup),
        cmocka_unit_test_setup(test_empty_and_long_key, setup),
        cmocka_unit_test_setup(test_forget_worker, setup),
        cmocka_unit_test_setup(test_alloc_failure, setup),
        cmocka_unit_test_setup(test_reload, setup),
        cmocka_unit_test_setup(test_log_lines, setup),
        cmocka_unit_test_setup(test_processes, setup),
        cmocka_unit_test_setup(test_variable_limit, setup),
        cmocka_unit_test_setup(test_sync_leases, setup),
        cmocka_unit_test_setup(test_unsynced_has_no_leases, setup),
        cmocka_unit_test_setup(test_sync_dropped_by_reload, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
