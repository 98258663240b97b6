/* test_upstream.c — smooth weighted round-robin, failures, backups, max_conns,
 * shared state across processes and zone reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zg_upstream.h"

#define ZONE_SIZE (64 * 1024)
#define T0 1000000 /* a "now" well past every fail_timeout of a fresh peer */

typedef struct {
    zg_upstream_conf_t u;
    zg_upstream_server_t servers[8];
    zg_zone_t zone;
} ups_t;

static void server(ups_t *t, int port, int weight)
{
    zg_upstream_server_t *s = &t->servers[t->u.nservers++];
    struct sockaddr_in *sin = (struct sockaddr_in *)&s->addr.sa;

    memset(s, 0, sizeof(*s));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->addr.socklen = sizeof(*sin);
    snprintf(s->addr.text, sizeof(s->addr.text), "127.0.0.1:%d", port);
    s->weight = weight;
    s->max_fails = 1;
    s->fail_timeout = 10000;
}

static ups_t *ups_new(void)
{
    ups_t *t = calloc(1, sizeof(*t));

    assert_non_null(t);
    snprintf(t->u.name, sizeof(t->u.name), "backend");
    t->u.servers = t->servers;
    return t;
}

static void ups_local(ups_t *t)
{
    assert_int_equal(zg_upstream_init(&t->u), ZG_OK);
}

static void *zone_map(void)
{
    void *addr = mmap(NULL, ZONE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                      -1, 0);

    assert_true(addr != MAP_FAILED);
    assert_non_null(zg_slab_init(addr, ZONE_SIZE));
    return addr;
}

/* a zone over addr, as zg_zone_map_all would hand it to the init */
static int ups_zone(ups_t *t, void *addr, void *old_data)
{
    zg_zone_t *z = &t->zone;

    memset(z, 0, sizeof(*z));
    snprintf(z->name, sizeof(z->name), "ups");
    z->kind = ZG_ZONE_UPSTREAM;
    z->size = ZONE_SIZE;
    z->addr = addr;
    z->pool = addr;
    z->conf = &t->u;
    z->init = zg_upstream_zone_init;
    z->reused = old_data != NULL;
    t->u.zone = z;
    return zg_upstream_zone_init(z, old_data);
}

static void ups_free(ups_t *t)
{
    zg_upstream_cleanup(&t->u);
    free(t);
}

/* one whole request that succeeds at once; returns the peer */
static int pick_ok(ups_t *t, zg_msec_t now)
{
    zg_upstream_pick_t pk;
    int peer;

    zg_upstream_pick_init(&pk);
    assert_int_equal(zg_upstream_get(&t->u, &pk, now), ZG_OK);
    peer = pk.peer;
    assert_ptr_equal(pk.addr, &t->servers[peer].addr);
    zg_upstream_free(&t->u, &pk, 0, now);
    assert_int_equal(pk.peer, -1);
    return peer;
}

/* a request that fails on its first peer and tries no other */
static int pick_fail(ups_t *t, zg_msec_t now)
{
    zg_upstream_pick_t pk;
    int peer;

    zg_upstream_pick_init(&pk);
    assert_int_equal(zg_upstream_get(&t->u, &pk, now), ZG_OK);
    peer = pk.peer;
    zg_upstream_free(&t->u, &pk, 1, now);
    return peer;
}

static zg_upstream_peer_stats_t stats(ups_t *t, int i, zg_msec_t now)
{
    zg_upstream_peer_stats_t st;

    assert_int_equal(zg_upstream_peer_stats(&t->u, i, &st, now), ZG_OK);
    return st;
}

static void test_swrr_nginx_sequence(void **state)
{
    static const char expect[] = "aabacaa";
    ups_t *t = ups_new();
    char seq[15];
    int i;

    (void)state;
    server(t, 8001, 5);
    server(t, 8002, 1);
    server(t, 8003, 1);
    ups_local(t);

    for (i = 0; i < 14; i++) {
        seq[i] = (char)('a' + pick_ok(t, T0));
    }
    seq[14] = '\0';
    assert_memory_equal(seq, expect, 7);
    assert_memory_equal(seq + 7, expect, 7);

    assert_int_equal(stats(t, 0, T0).requests, 10);
    assert_int_equal(stats(t, 1, T0).requests, 2);
    assert_int_equal(stats(t, 2, T0).requests, 2);
    assert_int_equal(stats(t, 0, T0).active, 0);
    ups_free(t);
}

static void test_weights_3_1(void **state)
{
    ups_t *t = ups_new();
    int i, n[2] = { 0, 0 };

    (void)state;
    server(t, 8001, 3);
    server(t, 8002, 1);
    ups_local(t);

    for (i = 0; i < 400; i++) {
        n[pick_ok(t, T0 + i)]++;
    }
    assert_int_equal(n[0], 300);
    assert_int_equal(n[1], 100);
    ups_free(t);
}

static void test_uninitialised(void **state)
{
    ups_t *t = ups_new();
    zg_upstream_pick_t pk;
    zg_upstream_peer_stats_t st;

    (void)state;
    server(t, 8001, 1);
    zg_upstream_pick_init(&pk);
    assert_int_equal(zg_upstream_get(&t->u, &pk, T0), ZG_ERROR);
    assert_int_equal(zg_upstream_peer_stats(&t->u, 0, &st, T0), ZG_ERROR);
    ups_local(t);
    assert_int_equal(zg_upstream_peer_stats(&t->u, 1, &st, T0), ZG_ERROR);
    assert_int_equal(zg_upstream_peer_stats(&t->u, -1, &st, T0), ZG_ERROR);
    /* free without a pick is a no-op */
    zg_upstream_free(&t->u, &pk, 1, T0);
    assert_int_equal(stats(t, 0, T0).fails, 0);
    ups_free(t);
}

static void test_zone_cross_process(void **state)
{
    ups_t *t = ups_new();
    void *addr = zone_map();
    int fd[2], i, k, status, n[2] = { 0, 0 }, c[2];
    pid_t pid[4];

    (void)state;
    server(t, 8001, 3);
    server(t, 8002, 1);
    assert_int_equal(ups_zone(t, addr, NULL), ZG_OK);
    assert_ptr_equal(t->u.peers, t->zone.pool->data);
    assert_int_equal(zg_upstream_init(&t->u), ZG_OK); /* attaches to the zone */
    assert_int_equal(pipe(fd), 0);

    for (k = 0; k < 4; k++) {
        pid[k] = fork();
        assert_true(pid[k] >= 0);
        if (pid[k] == 0) {
            close(fd[0]);
            c[0] = c[1] = 0;
            for (i = 0; i < 100; i++) {
                zg_upstream_pick_t pk;

                zg_upstream_pick_init(&pk);
                if (zg_upstream_get(&t->u, &pk, zg_time_msec()) != ZG_OK) {
                    _exit(2);
                }
                c[pk.peer]++;
                if (i % 7 == 0) {
                    usleep(100); /* let the others interleave */
                }
                zg_upstream_free(&t->u, &pk, 0, zg_time_msec());
            }
            _exit(write(fd[1], c, sizeof(c)) == sizeof(c) ? 0 : 1);
        }
    }
    close(fd[1]);
    for (k = 0; k < 4; k++) {
        assert_int_equal(read(fd[0], c, sizeof(c)), sizeof(c));
        n[0] += c[0];
        n[1] += c[1];
    }
    close(fd[0]);
    for (k = 0; k < 4; k++) {
        assert_int_equal(waitpid(pid[k], &status, 0), pid[k]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    assert_int_equal(n[0], 300);
    assert_int_equal(n[1], 100);
    assert_int_equal(stats(t, 0, T0).requests, 300);
    assert_int_equal(stats(t, 1, T0).requests, 100);
    assert_int_equal(stats(t, 0, T0).active, 0);
    ups_free(t);
    munmap(addr, ZONE_SIZE);
}

/* many workers hammering one zone: nothing lost, the ratio exact */
static void test_zone_contention(void **state)
{
    ups_t *t = ups_new();
    void *addr = zone_map();
    int i, k, status, go[2];
    char c;
    pid_t pid[4];

    (void)state;
    server(t, 8001, 3);
    server(t, 8002, 1);
    assert_int_equal(ups_zone(t, addr, NULL), ZG_OK);
    assert_int_equal(pipe(go), 0);

    for (k = 0; k < 4; k++) {
        pid[k] = fork();
        assert_true(pid[k] >= 0);
        if (pid[k] == 0) {
            close(go[1]);
            if (read(go[0], &c, 1) != 0) { /* all start together at EOF */
                _exit(3);
            }
            for (i = 0; i < 50000; i++) {
                zg_upstream_pick_t pk;

                zg_upstream_pick_init(&pk);
                if (zg_upstream_get(&t->u, &pk, T0) != ZG_OK) {
                    _exit(2);
                }
                zg_upstream_free(&t->u, &pk, 0, T0);
            }
            _exit(0);
        }
    }
    close(go[0]);
    close(go[1]);
    for (k = 0; k < 4; k++) {
        assert_int_equal(waitpid(pid[k], &status, 0), pid[k]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    assert_int_equal(stats(t, 0, T0).requests, 150000);
    assert_int_equal(stats(t, 1, T0).requests, 50000);
    assert_int_equal(stats(t, 0, T0).active, 0);
    assert_int_equal(stats(t, 1, T0).active, 0);
    ups_free(t);
    munmap(addr, ZONE_SIZE);
}

static void test_zone_max_conns_cross_process(void **state)
{
    ups_t *t = ups_new();
    void *addr = zone_map();
    int up[2], down[2], status, held;
    zg_upstream_pick_t pk, pk2;
    char go = 'x';
    pid_t pid;

    (void)state;
    server(t, 8001, 1);
    server(t, 8002, 1);
    t->servers[0].max_conns = 1;
    t->servers[1].max_conns = 1;
    assert_int_equal(ups_zone(t, addr, NULL), ZG_OK);
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        zg_upstream_pick_init(&pk);
        if (zg_upstream_get(&t->u, &pk, T0) != ZG_OK) {
            _exit(2);
        }
        held = pk.peer;
        if (write(up[1], &held, sizeof(held)) != sizeof(held) || read(down[0], &go, 1) != 1) {
            _exit(3);
        }
        zg_upstream_free(&t->u, &pk, 0, T0);
        _exit(0);
    }

    assert_int_equal(read(up[0], &held, sizeof(held)), sizeof(held));
    assert_int_equal(stats(t, held, T0).active, 1);

    zg_upstream_pick_init(&pk);
    assert_int_equal(zg_upstream_get(&t->u, &pk, T0), ZG_OK);
    assert_int_equal(pk.peer, 1 - held);
    zg_upstream_pick_init(&pk2);
    assert_int_equal(zg_upstream_get(&t->u, &pk2, T0), ZG_BUSY);

    assert_int_equal(write(down[1], &go, 1), 1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    assert_int_equal(zg_upstream_get(&t->u, &pk2, T0), ZG_OK);
    assert_int_equal(pk2.peer, held);
    zg_upstream_free(&t->u, &pk2, 0, T0);
    zg_upstream_free(&t->u, &pk, 0, T0);
    assert_int_equal(stats(t, 0, T0).active, 0);
    assert_int_equal(stats(t, 1, T0).active, 0);

    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
    ups_free(t);
    munmap(addr, ZONE_SIZE);
}

static void test_down_never_picked(void **state)
{
    ups_t *t = ups_new();
    int i, n[3] = { 0, 0, 0 };
    zg_upstream_pick_t pk;

    (void)state;
    server(t, 8001, 1);
    server(t, 8002, 10);
    server(t, 8003, 1);
    t->servers[1].down = 1;
    ups_local(t);

    for (i = 0; i < 100; i++) {
        n[pick_ok(t, T0)]++;
    }
    assert_int_equal(n[0], 50);
    assert_int_equal(n[1], 0);
    assert_int_equal(n[2], 50);
    assert_true(stats(t, 1, T0).down);

    /* a request that fails everywhere still never reaches the down peer */
    zg_upstream_pick_init(&pk);
    for (i = 0; i < 2; i++) {
        assert_int_equal(zg_upstream_get(&t->u, &pk, T0), ZG_OK);
        assert_int_not_equal(pk.peer, 1);
        zg_upstream_free(&t->u, &pk, 1, T0);
    }
    assert_int_equal(zg_upstream_get(&t->u, &pk, T0), ZG_BUSY);
    ups_free(t);

    /* every server down: busy */
    t = ups_new();
    server(t, 8001, 1);
    server(t, 8002, 1);
    t->servers[0].down = 1;
    t->servers[1].down = 1;
    ups_local(t);
    zg_upstream_pick_init(&pk);
    assert_int_equal(zg_upstream_get(&t->u, &pk, T0), ZG_BUSY);
    ups_free(t);
}

static void test_backup(void **state)
{
    ups_t *t = ups_new();
    zg_upstream_pick_t pk;
    int i, seen[3] = { 0, 0, 0 };

    (void)state;
    server(t, 8001, 1);
    server(t, 8002, 1);
    server(t, 8003, 1);
    t->servers[2].backup = 1;
    ups_local(t);

    for (i = 0; i < 20; i++) {
        assert_int_not_equal(pick_ok(t, T0), 2);
    }
    assert_int_equal(stats(t, 2, T0).requests, 0);
    assert_true(stats(t, 2, T0).backup);

    /* within one request: both primaries fail, then the backup */
    zg_upstream_pick_init(&pk);
    for (i = 0; i < 2; i++) {
        assert_int_equal(zg_upstream_get(&t->u, &pk, T0), ZG_OK);
        assert_int_not_equal(pk.peer, 2);
        seen[pk.peer]++;
        zg_upstream_free(&t->u, &pk, 1, T0);
    }
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);
    assert_int_equal(zg_upstream_get(&t->u, &pk, T0), ZG_OK);
    assert_int_equal(pk.peer, 2);
    assert_int_equal(pk.tries, 3);
    zg_upstream_free(&t->u, &pk, 0, T0);

    /* both primaries are unavailable now: new requests go to the backup */
    assert_true(stats(t, 0, T0).unavailable);
    assert_true(stats(t, 1, T0).unavailable);
    for (i = 0; i < 5; i++) {
        assert_int_equal(pick_ok(t, T0 + 1 + i), 2);
    }
    /* the backup failing too: nothing left */
    zg_upstream_pick_init(&pk);
    assert_int_equal(zg_upstream_get(&t->u, &pk, T0 + 10), ZG_OK);
    assert_int_equal(pk.peer, 2);
    zg_upstream_free(&t->u, &pk, 1, T0 + 10);
    assert_int_equal(zg_upstream_get(&t->u, &pk, T0 + 10), ZG_BUSY);

    /* after fail_timeout the primaries are tried again before the backup */
    assert_int_not_equal(pick_ok(t, T0 + 10002), 2);
    ups_free(t);
}

static void test_max_fails_fail_timeout(void **state)
{
    ups_t *t = ups_new();
    zg_upstream_pick_t pk, other;
    zg_upstream_peer_stats_t st;
    zg_msec_t now = T0, back;
    int i, p;

    (void)state;
    server(t, 8001, 1);
    server(t, 8002, 1);
    t->servers[0].max_fails = 2;
    t->servers[0].fail_timeout = 10000;
    ups_local(t);

    /* equal weights alternate a b a b: fail a twice */
    assert_int_equal(pick_fail(t, now), 0);
    st = stats(t, 0, now);
    assert_int_equal(st.recent_fails, 1);
    assert_false(st.unavailable);
    assert_int_equal(pick_ok(t, now), 1);
    assert_int_equal(pick_fail(t, now + 1), 0);
    st = stats(t, 0, now + 1);
    assert_int_equal(st.recent_fails, 2);
    assert_int_equal(st.fails, 2);
    assert_true(st.unavailable);

    /* within fail_timeout: only b */
    for (i = 0; i < 10; i++) {
        assert_int_equal(pick_ok(t, now + 2 + i * 1000), 1);
    }
    assert_true(stats(t, 0, now + 10001).unavailable);

    /* past fail_timeout: a gets one request (the check); meanwhile others go to b */
    back = now + 1 + 10000 + 1;
    assert_false(stats(t, 0, back).unavailable);
    for (i = 0; i < 3; i++) {
        zg_upstream_pick_init(&pk);
        assert_int_equal(zg_upstream_get(&t->u, &pk, back), ZG_OK);
        if (pk.peer == 0) {
            break;
        }
        zg_upstream_free(&t->u, &pk, 0, back);
    }
    assert_int_equal(pk.peer, 0);
    for (i = 0; i < 4; i++) {
        zg_upstream_pick_init(&other);
        assert_int_equal(zg_upstream_get(&t->u, &other, back + 1 + i), ZG_OK);
        assert_int_equal(other.peer, 1);
        zg_upstream_free(&t->u, &other, 0, back + 1 + i);
    }
    /* the check passes: a is back */
    zg_upstream_free(&t->u, &pk, 0, back + 5);
    st = stats(t, 0, back + 5);
    assert_int_equal(st.recent_fails, 0);
    assert_false(st.unavailable);
    for (i = 0, p = 0; i < 10; i++) {
        p += pick_ok(t, back + 6) == 0;
    }
    assert_int_equal(p, 5);
    ups_free(t);
}

static void test_failed_check_disables_again(void **state)
{
    ups_t *t = ups_new();
    zg_upstream_pick_t pk;
    zg_msec_t now = T0, back;
    int i, p;

    (void)state;
    server(t, 8001, 1);
    server(t, 8002, 1);
    ups_local(t);

    assert_int_equal(pick_fail(t, now), 0); /* max_fails=1 */
    assert_true(stats(t, 0, now).unavailable);
    back = now + 10001;
    for (i = 0; i < 10; i++) {
        zg_upstream_pick_init(&pk);
        assert_int_equal(zg_upstream_get(&t->u, &pk, back), ZG_OK);
        p = pk.peer;
        zg_upstream_free(&t->u, &pk, p == 0, back);
        if (p == 0) {
            break;
        }
    }
    assert_true(i < 10);
    assert_true(stats(t, 0, back).unavailable);
    assert_int_equal(stats(t, 0, back).fails, 2);
    for (i = 0; i < 5; i++) {
        assert_int_equal(pick_ok(t, back + 9000), 1);
    }
    ups_free(t);
}

static void test_effective_weight(void **state)
{
    ups_t *t = ups_new();
    zg_upstream_peer_stats_t st;
    int i;

    (void)state;
    server(t, 8001, 10);
    server(t, 8002, 1);
    t->servers[0].max_fails = 5;
    t->servers[0].fail_timeout = 10000;
    ups_local(t);

    assert_int_equal(pick_fail(t, T0), 0);
    st = stats(t, 0, T0);
    assert_int_equal(st.effective_weight, 8); /* 10 - 10 / 5 */
    assert_false(st.unavailable);
    /* it climbs back by one per selection round */
    for (i = 0; i < 2; i++) {
        pick_ok(t, T0 + 1);
    }
    assert_int_equal(stats(t, 0, T0 + 1).effective_weight, 10);
    ups_free(t);
}

static void test_max_conns(void **state)
{
    ups_t *t = ups_new();
    zg_upstream_pick_t a, b, c;

    (void)state;
    server(t, 8001, 5);
    server(t, 8002, 1);
    t->servers[0].max_conns = 1;
    t->servers[1].max_conns = 1;
    ups_local(t);

    zg_upstream_pick_init(&a);
    zg_upstream_pick_init(&b);
    zg_upstream_pick_init(&c);
    assert_int_equal(zg_upstream_get(&t->u, &a, T0), ZG_OK);
    assert_int_equal(a.peer, 0);
    assert_int_equal(stats(t, 0, T0).active, 1);
    assert_int_equal(zg_upstream_get(&t->u, &b, T0), ZG_OK);
    assert_int_equal(b.peer, 1); /* a is busy despite its weight */
    assert_int_equal(zg_upstream_get(&t->u, &c, T0), ZG_BUSY);
    zg_upstream_free(&t->u, &a, 0, T0);
    assert_int_equal(zg_upstream_get(&t->u, &c, T0), ZG_OK);
    assert_int_equal(c.peer, 0);
    zg_upstream_free(&t->u, &b, 0, T0);
    zg_upstream_free(&t->u, &c, 0, T0);
    assert_int_equal(stats(t, 0, T0).active, 0);
    assert_int_equal(stats(t, 1, T0).active, 0);
    ups_free(t);

    /* a single server at max_conns: busy */
    t = ups_new();
    server(t, 8001, 1);
    t->servers[0].max_conns = 1;
    ups_local(t);
    zg_upstream_pick_init(&a);
    zg_upstream_pick_init(&b);
    assert_int_equal(zg_upstream_get(&t->u, &a, T0), ZG_OK);
    assert_int_equal(zg_upstream_get(&t->u, &b, T0), ZG_BUSY);
    zg_upstream_free(&t->u, &a, 0, T0);
    assert_int_equal(zg_upstream_get(&t->u, &b, T0), ZG_OK);
    zg_upstream_free(&t->u, &b, 0, T0);
    ups_free(t);
}

static void test_tried_bitmap(void **state)
{
    ups_t *t = ups_new();
    zg_upstream_pick_t pk;
    int i, r, seen[4];

    (void)state;
    server(t, 8001, 10);
    server(t, 8002, 1);
    server(t, 8003, 3);
    server(t, 8004, 1);
    for (i = 0; i < 4; i++) {
        t->servers[i].max_fails = 0; /* failures do not disable: only the bitmap acts */
    }
    ups_local(t);

    for (r = 0; r < 20; r++) {
        memset(seen, 0, sizeof(seen));
        zg_upstream_pick_init(&pk);
        for (i = 0; i < 4; i++) {
            assert_int_equal(zg_upstream_get(&t->u, &pk, T0), ZG_OK);
            assert_int_equal(seen[pk.peer], 0);
            seen[pk.peer] = 1;
            zg_upstream_free(&t->u, &pk, 1, T0);
        }
        assert_int_equal(pk.tries, 4);
        assert_int_equal(zg_upstream_get(&t->u, &pk, T0), ZG_BUSY);
    }
    for (i = 0; i < 4; i++) {
        assert_false(stats(t, i, T0).unavailable);
        assert_int_equal(stats(t, i, T0).fails, 20);
    }
    ups_free(t);
}

static void test_single_never_down(void **state)
{
    ups_t *t = ups_new();
    zg_upstream_pick_t pk;
    zg_upstream_peer_stats_t st;
    int i;

    (void)state;
    server(t, 8001, 1);
    t->servers[0].max_fails = 1;
    ups_local(t);

    for (i = 0; i < 10; i++) {
        zg_upstream_pick_init(&pk);
        assert_int_equal(zg_upstream_get(&t->u, &pk, T0 + i), ZG_OK);
        assert_int_equal(pk.peer, 0);
        zg_upstream_free(&t->u, &pk, 1, T0 + i);
        /* the request gets it once */
        assert_int_equal(zg_upstream_get(&t->u, &pk, T0 + i), ZG_BUSY);
    }
    st = stats(t, 0, T0 + 10);
    assert_false(st.unavailable);
    assert_int_equal(st.recent_fails, 0);
    assert_int_equal(st.fails, 10);
    assert_int_equal(st.requests, 10);
    assert_int_equal(st.active, 0);
    ups_free(t);

    /* single and down */
    t = ups_new();
    server(t, 8001, 1);
    t->servers[0].down = 1;
    ups_local(t);
    zg_upstream_pick_init(&pk);
    assert_int_equal(zg_upstream_get(&t->u, &pk, T0), ZG_BUSY);
    ups_free(t);

    /* one primary plus a backup is not "single": it is marked failed */
    t = ups_new();
    server(t, 8001, 1);
    server(t, 8002, 1);
    t->servers[1].backup = 1;
    ups_local(t);
    assert_int_equal(pick_fail(t, T0), 0);
    assert_true(stats(t, 0, T0).unavailable);
    assert_int_equal(pick_ok(t, T0), 1);
    ups_free(t);
}

static ups_t *ups_two(int w0, int w1)
{
    ups_t *t = ups_new();

    server(t, 8001, w0);
    server(t, 8002, w1);
    return t;
}

static void test_zone_reuse(void **state)
{
    void *addr = zone_map();
    zg_slab_pool_t *pool = addr;
    ups_t *t1 = ups_two(3, 1), *t2, *t3, *t4;
    size_t free0;
    int i;

    (void)state;
    assert_int_equal(ups_zone(t1, addr, NULL), ZG_OK);
    free0 = pool->pages_free;
    assert_int_equal(pick_ok(t1, T0), 0);
    assert_int_equal(pick_ok(t1, T0), 0);
    assert_int_equal(pick_fail(t1, T0), 1);
    assert_true(stats(t1, 1, T0).unavailable);

    /* reload with the same list: state adopted */
    t2 = ups_two(3, 1);
    assert_int_equal(ups_zone(t2, addr, pool->data), ZG_OK);
    assert_ptr_equal(t2->u.peers, t1->u.peers);
    assert_int_equal(stats(t2, 0, T0).requests, 2);
    assert_int_equal(stats(t2, 1, T0).requests, 1);
    assert_true(stats(t2, 1, T0).unavailable);
    /* and it goes on where it was: b is out, so a */
    assert_int_equal(pick_ok(t2, T0), 0);
    assert_int_equal(stats(t1, 0, T0).requests, 3);

    /* a changed weight: fresh state; the old one stays for old workers */
    t3 = ups_two(3, 2);
    assert_int_equal(ups_zone(t3, addr, pool->data), ZG_OK);
    assert_ptr_not_equal(t3->u.peers, t2->u.peers);
    assert_int_equal(stats(t3, 0, T0).requests, 0);
    assert_false(stats(t3, 1, T0).unavailable);
    assert_int_equal(stats(t2, 0, T0).requests, 3);
    pick_ok(t2, T0);
    assert_int_equal(stats(t2, 0, T0).requests, 4);
    assert_int_equal(stats(t3, 0, T0).requests, 0);

    /* other changes reinitialise too: address, flags, count */
    t4 = ups_two(3, 2);
    snprintf(t4->servers[1].addr.text, sizeof(t4->servers[1].addr.text), "127.0.0.1:9");
    pick_ok(t3, T0);
    assert_int_equal(ups_zone(t4, addr, pool->data), ZG_OK);
    assert_ptr_not_equal(t4->u.peers, t3->u.peers);
    assert_int_equal(stats(t4, 0, T0).requests + stats(t4, 1, T0).requests, 0);

    /* many reloads with changes keep at most two generations: no leak */
    for (i = 0; i < 50; i++) {
        ups_t *t = ups_two(1 + i % 2, 1);

        t->servers[0].down = i % 3 == 0;
        assert_int_equal(ups_zone(t, addr, pool->data), ZG_OK);
        ups_free(t);
    }
    assert_true(pool->pages_free + 2 >= free0);

    /* a list that does not fit the zone */
    {
        ups_t *big = ups_new();
        void *small = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);

        assert_true(small != MAP_FAILED);
        assert_non_null(zg_slab_init(small, 4 * 4096));
        for (i = 0; i < 8; i++) {
            server(big, 8000 + i, 1);
        }
        assert_int_equal(ups_zone(big, small, NULL), ZG_OK);
        ups_free(big);
        munmap(small, 4 * 4096);
    }

    ups_free(t1);
    ups_free(t2);
    ups_free(t3);
    ups_free(t4);
    munmap(addr, ZONE_SIZE);
}

static void test_zone_too_small(void **state)
{
    ups_t *t = calloc(1, sizeof(ups_t) + 0);
    zg_upstream_server_t *many = calloc(ZG_MAX_PEERS, sizeof(*many));
    void *small = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                       -1, 0);
    int i;

    (void)state;
    assert_non_null(t);
    assert_non_null(many);
    assert_true(small != MAP_FAILED);
    assert_non_null(zg_slab_init(small, 2 * 4096));
    for (i = 0; i < ZG_MAX_PEERS; i++) {
        many[i].weight = 1;
        snprintf(many[i].addr.text, sizeof(many[i].addr.text), "127.0.0.1:%d", 1000 + i);
    }
    t->u.servers = many;
    t->u.nservers = ZG_MAX_PEERS;
    assert_int_equal(ups_zone(t, small, NULL), ZG_ERROR);

    /* only backups, or nothing: refused as nginx */
    t->u.nservers = 1;
    many[0].backup = 1;
    t->u.zone = NULL;
    assert_int_equal(zg_upstream_init(&t->u), ZG_ERROR);
    t->u.nservers = 0;
    assert_int_equal(zg_upstream_init(&t->u), ZG_ERROR);

    free(many);
    free(t);
    munmap(small, 2 * 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swrr_nginx_sequence),
        cmocka_unit_test(test_weights_3_1),
        cmocka_unit_test(test_uninitialised),
        cmocka_unit_test(test_zone_cross_process),
        cmocka_unit_test(test_zone_contention),
        cmocka_unit_test(test_zone_max_conns_cross_process),
        cmocka_unit_test(test_down_never_picked),
        cmocka_unit_test(test_backup),
        cmocka_unit_test(test_max_fails_fail_timeout),
        cmocka_unit_test(test_failed_check_disables_again),
        cmocka_unit_test(test_effective_weight),
        cmocka_unit_test(test_max_conns),
        cmocka_unit_test(test_tried_bitmap),
        cmocka_unit_test(test_single_never_down),
        cmocka_unit_test(test_zone_reuse),
        cmocka_unit_test(test_zone_too_small),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
