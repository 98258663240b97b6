/* zg_shm_test.h — one zone shared by forked processes (slab + rbtree under the
 * zone lock), for test_shmtx.c and test_zone.c (include after cmocka.h). */
#ifndef ZG_SHM_TEST_H
#define ZG_SHM_TEST_H

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
static const zg_zone_kind_t shm_kind __attribute__((unused)) = { "limit_req", NULL };

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

static inline int shared_root_init(zg_zone_t *zone, void *old_data)
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

static void on_alarm(int sig) __attribute__((unused));
static void on_alarm(int sig)
{
    static const char msg[] = "test_shm: timed out (a lock is wedged?)\n";

    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0) {
        /* nothing to do */
    }
    _exit(99);
}

static inline void guard(unsigned seconds)
{
    signal(SIGALRM, on_alarm);
    alarm(seconds);
}

static inline zg_zone_t *map_shared_zone(zg_zone_list_t *l, size_t size)
{
    char err[256];
    zg_zone_t *z;

    l->head = NULL;
    z = zg_zone_declare(l, "shared", &shm_kind, size, err, sizeof(err));
    assert_non_null(z);
    z->init = shared_root_init;
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

static inline uint32_t child_rng(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static inline void child_delete(zg_slab_pool_t *pool, shared_root_sh_t *r, entry_sh_t *e, unsigned id)
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

static inline void child_run(zg_zone_t *z, unsigned id)
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

static inline void wait_ok(pid_t pid)
{
    int status;

    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail_msg("child %d: status 0x%x", (int)pid, status);
    }
}

#endif
