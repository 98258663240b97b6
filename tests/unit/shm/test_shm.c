/* test_shm.c — one zone shared by forked processes: slab + rbtree under the
 * zone lock, and a lock holder killed with SIGKILL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zg_queue.h"
#include "zg_rbtree.h"
#include "zg_zone.h"

/* a zone kind as a module defines it */
static const zg_zone_kind_t kind_req = { "limit_req", NULL };
#define KIND_REQ (&kind_req)

#define NCHILD 4
#define ITERS  20000
#define GUARD  20               /* seconds before a hang kills the test */

typedef struct {
    zg_rbtree_t tree;
    zg_rbtree_node_t sentinel;
    zg_queue_t lru;
    uint64_t counter;
    uint64_t inserted[NCHILD];
    uint64_t deleted[NCHILD];
    uint64_t in_tree;
    int failed;
} shared_root_sh_t;

typedef struct {
    zg_rbtree_node_t node;
    zg_queue_t link;
    uint32_t child;
    uint32_t seq;
    uint32_t fill_len;
    unsigned char fill[];       /* child's byte, to catch overlap */
} entry_sh_t;

static int root_init(zg_zone_t *zone, void *old_data)
{
    shared_root_sh_t *r;

    if (old_data != NULL) {
        zone->data = old_data;
        return ZG_OK;
    }
    r = zg_slab_calloc(zone->pool, sizeof(shared_root_sh_t));
    if (r == NULL) {
        return ZG_ERROR;
    }
    zg_rbtree_init(&r->tree, &r->sentinel, zg_rbtree_insert_value);
    zg_queue_init(&r->lru);
    zone->data = r;
    return ZG_OK;
}

static void on_alarm(int sig)
{
    static const char msg[] = "test_shm: timed out (a lock is wedged?)\n";

    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0) {
        /* nothing to do */
    }
    _exit(99);
}

static void guard(unsigned seconds)
{
    signal(SIGALRM, on_alarm);
    alarm(seconds);
}

static zg_zone_t *map_zone(zg_zone_list_t *l, size_t size)
{
    char err[256];
    zg_zone_t *z;

    l->head = NULL;
    z = zg_zone_declare(l, "shared", KIND_REQ, size, err, sizeof(err));
    assert_non_null(z);
    z->init = root_init;
    assert_int_equal(zg_zone_map_all(l, NULL, err, sizeof(err)), ZG_OK);
    assert_non_null(z->data);
    return z;
}

#define CHILD_CHECK(c)                                                        \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "child %u: %s:%d: %s\n", id, __FILE__, __LINE__, #c); \
            _exit(2);                                                         \
        }                                                                     \
    } while (0)

static uint32_t child_rng(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void child_delete(zg_slab_pool_t *pool, shared_root_sh_t *r, entry_sh_t *e, unsigned id)
{
    size_t i;

    CHILD_CHECK(e->child == id);
    CHILD_CHECK(zg_slab_size_locked(pool, e) >= sizeof(entry_sh_t) + e->fill_len);
    for (i = 0; i < e->fill_len; i++) {
        CHILD_CHECK(e->fill[i] == (unsigned char)(id + 1));
    }
    zg_rbtree_delete(&r->tree, &e->node);
    zg_queue_remove(&e->link);
    zg_slab_free_locked(pool, e);
    r->deleted[id]++;
    r->in_tree--;
}

static void child_run(zg_zone_t *z, unsigned id)
{
    zg_slab_pool_t *pool = z->pool;
    shared_root_sh_t *r = z->data;
    entry_sh_t *mine[256], *e;
    size_t n = 0, i, size;
    uint32_t seed = 2463534242u + id * 7919u, k;

    alarm(GUARD);
    for (k = 0; k < ITERS; k++) {
        zg_shmtx_lock(&pool->mutex);
        CHILD_CHECK(pool->mutex.owner == getpid());
        if (n == zg_nelems(mine) || (n > 0 && child_rng(&seed) % 3 == 0)) {
            i = child_rng(&seed) % n;
            child_delete(pool, r, mine[i], id);
            mine[i] = mine[--n];
        }
        size = sizeof(entry_sh_t) + 8 + child_rng(&seed) % 300;
        e = zg_slab_alloc_locked(pool, size);
        CHILD_CHECK(e != NULL);
        memset(e->fill, (int)(id + 1), size - sizeof(entry_sh_t));
        e->child = id;
        e->seq = k;
        e->fill_len = (uint32_t)(size - sizeof(entry_sh_t));
        e->node.key = child_rng(&seed) % 1000;
        zg_rbtree_insert(&r->tree, &e->node);
        zg_queue_insert_head(&r->lru, &e->link);
        mine[n++] = e;
        r->inserted[id]++;
        r->in_tree++;
        r->counter++;
        if (k % 1000 == 0) {
            CHILD_CHECK(zg_rbtree_validate(&r->tree) == ZG_OK);
            CHILD_CHECK(zg_slab_validate(pool) == ZG_OK);
        }
        zg_shmtx_unlock(&pool->mutex);
        if (k % 64 == 0) {
            sched_yield();
        }
    }

    zg_shmtx_lock(&pool->mutex);
    while (n > 0) {
        child_delete(pool, r, mine[--n], id);
    }
    zg_shmtx_unlock(&pool->mutex);
    _exit(0);
}

static void wait_ok(pid_t pid)
{
    int status;

    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail_msg("child %d: status 0x%x", (int)pid, status);
    }
}

static void test_hammer(void **state)
{
    zg_zone_list_t l;
    zg_zone_t *z = map_zone(&l, 4 * 1024 * 1024);
    zg_slab_pool_t *pool = z->pool;
    shared_root_sh_t *r = z->data;
    zg_slab_stat_t before[ZG_SLAB_NSLOTS];
    size_t pages_free = pool->pages_free;
    pid_t pids[NCHILD];
    uint64_t reqs = 0;
    unsigned i;

    (void)state;
    guard(GUARD);
    memcpy(before, pool->stats, sizeof(before));

    for (i = 0; i < NCHILD; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            child_run(z, i);
        }
    }
    for (i = 0; i < NCHILD; i++) {
        wait_ok(pids[i]);
    }

    assert_int_equal(r->counter, (uint64_t)NCHILD * ITERS);
    for (i = 0; i < NCHILD; i++) {
        assert_int_equal(r->inserted[i], ITERS);
        assert_int_equal(r->deleted[i], ITERS);
    }
    assert_int_equal(r->in_tree, 0);
    assert_null(zg_rbtree_min(&r->tree));
    assert_true(zg_queue_empty(&r->lru));
    assert_int_equal(zg_rbtree_validate(&r->tree), ZG_OK);
    assert_int_equal(pool->mutex.owner, 0);
    assert_int_equal(pool->mutex.recovered, 0);

    /* no leak: back to the state before the children */
    assert_int_equal(zg_slab_validate(pool), ZG_OK);
    assert_int_equal(pool->pages_free, pages_free);
    for (i = 0; i < ZG_SLAB_NSLOTS; i++) {
        assert_int_equal(pool->stats[i].used, before[i].used);
        assert_int_equal(pool->stats[i].total, before[i].total);
        assert_int_equal(pool->stats[i].fails, 0);
        reqs += pool->stats[i].reqs - before[i].reqs;
    }
    assert_int_equal(reqs, (uint64_t)NCHILD * ITERS);
    assert_int_equal(pool->bad_frees, 0);

    alarm(0);
    zg_zone_unmap_all(&l);
    zg_zone_list_free(&l);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        /* void */
    }
}

/* a child that takes the lock, reports through the pipe and waits to die */
static pid_t fork_holder(zg_slab_pool_t *pool)
{
    int fd[2];
    char c;
    pid_t pid;

    assert_int_equal(pipe(fd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        alarm(GUARD);
        zg_shmtx_lock(&pool->mutex);
        if (write(fd[1], "L", 1) != 1) {
            _exit(3);
        }
        for (;;) {
            pause();
        }
    }
    close(fd[1]);
    assert_int_equal(read(fd[0], &c, 1), 1);
    close(fd[0]);
    assert_int_equal(pool->mutex.owner, pid);
    return pid;
}

static void kill_holder(pid_t pid)
{
    int status;

    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void test_killed_holder(void **state)
{
    zg_zone_list_t l;
    zg_zone_t *z = map_zone(&l, 64 * 1024);
    zg_slab_pool_t *pool = z->pool;
    shared_root_sh_t *r = z->data;
    pid_t holder, waiters[3];
    unsigned i, id = 0;
    zg_msec_t t0;

    (void)state;
    guard(GUARD);
    holder = fork_holder(pool);

    /* the others block on the lock meanwhile */
    for (i = 0; i < 3; i++) {
        waiters[i] = fork();
        assert_true(waiters[i] >= 0);
        if (waiters[i] == 0) {
            void *p;

            id = i;
            alarm(GUARD);
            zg_shmtx_lock(&pool->mutex);
            p = zg_slab_alloc_locked(pool, 100);
            CHILD_CHECK(p != NULL);
            zg_slab_free_locked(pool, p);
            r->counter++;
            zg_shmtx_unlock(&pool->mutex);
            _exit(0);
        }
    }
    sleep_ms(100);
    assert_int_equal(r->counter, 0);
    assert_int_equal(zg_shmtx_trylock(&pool->mutex), 0);

    t0 = zg_time_msec();
    kill_holder(holder);
    for (i = 0; i < 3; i++) {
        wait_ok(waiters[i]);
    }
    assert_true(zg_time_msec() - t0 < 5000);
    assert_int_equal(r->counter, 3);
    assert_int_equal(pool->mutex.recovered, 1);
    assert_int_equal(pool->mutex.owner, 0);

    /* trylock takes over from a dead holder too */
    holder = fork_holder(pool);
    kill_holder(holder);
    assert_int_equal(zg_shmtx_trylock(&pool->mutex), 1);
    assert_int_equal(pool->mutex.owner, getpid());
    assert_int_equal(pool->mutex.recovered, 2);
    zg_shmtx_unlock(&pool->mutex);
    assert_int_equal(zg_slab_validate(pool), ZG_OK);

    alarm(0);
    zg_zone_unmap_all(&l);
    zg_zone_list_free(&l);
}

static void test_master_recover(void **state)
{
    zg_zone_list_t l;
    zg_zone_t *z = map_zone(&l, 64 * 1024);
    zg_shmtx_sh_t *m = &z->pool->mutex;
    pid_t holder, other;

    (void)state;
    guard(GUARD);

    /* a live holder is never taken over */
    holder = fork_holder(z->pool);
    assert_int_equal(zg_shmtx_recover(m, holder + 100000), 0);
    assert_int_equal(zg_shmtx_recover(m, holder), 0);
    assert_int_equal(m->owner, holder);
    assert_int_equal(zg_shmtx_trylock(m), 0);

    /* the master reaps it and recovers the lock */
    kill_holder(holder);
    assert_int_equal(zg_shmtx_recover(m, holder), 1);
    assert_int_equal(m->owner, 0);
    assert_int_equal(m->recovered, 1);
    assert_int_equal(zg_shmtx_recover(m, holder), 0);
    assert_int_equal(zg_shmtx_trylock(m), 1);
    assert_int_equal(m->recovered, 1);          /* no second EOWNERDEAD */
    zg_shmtx_unlock(m);

    /* the same through the zone list, then a waiter gets in */
    holder = fork_holder(z->pool);
    kill_holder(holder);
    zg_zone_recover_locks(&l, holder);
    assert_int_equal(m->owner, 0);
    assert_int_equal(m->recovered, 2);
    other = fork();
    assert_true(other >= 0);
    if (other == 0) {
        alarm(GUARD);
        zg_shmtx_lock(m);
        zg_shmtx_unlock(m);
        _exit(m->recovered == 2 ? 0 : 4);
    }
    wait_ok(other);

    /* a free lock: nothing to recover */
    assert_int_equal(zg_shmtx_recover(m, other), 0);
    zg_shmtx_lock(m);
    zg_shmtx_unlock(m);

    alarm(0);
    zg_zone_unmap_all(&l);
    zg_zone_list_free(&l);
}

/* the master's watchdog: a lock held without release for N ticks names its holder;
 * any release and re-take (or no holder) starts the count again */
static void test_stuck_holder(void **state)
{
    zg_shmtx_sh_t m;
    zg_shmtx_watch_t w = {0, 0, 0};
    (void)state;

    assert_int_equal(zg_shmtx_init(&m), ZG_OK);
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0); /* free */
    zg_shmtx_lock(&m);
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0); /* first sight */
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0);
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0);
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), getpid()); /* held 3 ticks */
    zg_shmtx_unlock(&m);
    zg_shmtx_lock(&m);  /* released and taken again: a busy holder, not a stuck one */
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0);
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0);
    zg_shmtx_unlock(&m);
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0);
    pthread_mutex_destroy(&m.mutex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hammer),
        cmocka_unit_test(test_killed_holder),
        cmocka_unit_test(test_master_recover),
        cmocka_unit_test(test_stuck_holder),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
