/* test_zone.c — declaring zones, mapping them, reuse on reload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "zg_zone.h"
#include "zg_shm_test.h"

/* zone kinds as modules define them (the names show in errors) */
static const zg_zone_kind_t kind_req = { "limit_req", NULL };
static const zg_zone_kind_t kind_conn = { "limit_conn", NULL };
static const zg_zone_kind_t kind_ups = { "upstream", NULL };
#define KIND_REQ (&kind_req)
#define KIND_CONN (&kind_conn)
#define KIND_UPS (&kind_ups)

#define PAGE ZG_SLAB_PAGE_SIZE

static void test_declare(void **state)
{
    zg_zone_list_t l = { NULL };
    zg_zone_t *a, *b, *u;
    char err[256], name[100];

    (void)state;
    err[0] = '\0';
    a = zg_zone_declare(&l, "one", KIND_REQ, 10 * PAGE + 1, err, sizeof(err));
    assert_non_null(a);
    assert_string_equal(a->name, "one");
    assert_int_equal(a->kind, KIND_REQ);
    assert_int_equal(a->size, 11 * PAGE);          /* rounded up */
    assert_null(a->addr);
    assert_int_equal(a->reused, 0);

    /* same name: the same zone, sizes compared after rounding */
    assert_ptr_equal(zg_zone_declare(&l, "one", KIND_REQ, 11 * PAGE, err, sizeof(err)), a);
    assert_ptr_equal(zg_zone_declare(&l, "one", KIND_REQ, 10 * PAGE + 100, err,
                                     sizeof(err)), a);
    assert_ptr_equal(zg_zone_declare(&l, "one", KIND_REQ, 0, err, sizeof(err)), a);
    assert_int_equal(a->size, 11 * PAGE);

    /* conflicts */
    err[0] = '\0';
    assert_null(zg_zone_declare(&l, "one", KIND_CONN, 11 * PAGE, err, sizeof(err)));
    assert_non_null(strstr(err, "one"));
    assert_non_null(strstr(err, "limit_req"));
    err[0] = '\0';
    assert_null(zg_zone_declare(&l, "one", KIND_REQ, 12 * PAGE, err, sizeof(err)));
    assert_non_null(strstr(err, "one"));

    /* too small, bad names */
    err[0] = '\0';
    assert_null(zg_zone_declare(&l, "small", KIND_CONN, 7 * PAGE, err, sizeof(err)));
    assert_non_null(strstr(err, "too small"));
    assert_null(zg_zone_find(&l, "small"));
    assert_non_null(zg_zone_declare(&l, "eight", KIND_CONN, 7 * PAGE + 1, err,
                                    sizeof(err)));
    assert_int_equal(zg_zone_find(&l, "eight")->size, 8 * PAGE);
    assert_null(zg_zone_declare(&l, "", KIND_CONN, 8 * PAGE, err, sizeof(err)));
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_null(zg_zone_declare(&l, name, KIND_CONN, 8 * PAGE, err, sizeof(err)));
    assert_null(zg_zone_declare(&l, "x", KIND_CONN, SIZE_MAX, err, sizeof(err)));
    /* a NULL err is fine */
    assert_null(zg_zone_declare(&l, "one", KIND_UPS, 0, NULL, 0));

    /* an upstream's zone: declared by use before its size is known */
    u = zg_zone_declare(&l, "backend", KIND_UPS, 0, err, sizeof(err));
    assert_non_null(u);
    assert_int_equal(u->size, 0);
    assert_ptr_equal(zg_zone_declare(&l, "backend", KIND_UPS, 64 * 1024, err,
                                     sizeof(err)), u);
    assert_int_equal(u->size, 64 * 1024);

    b = zg_zone_find(&l, "eight");
    assert_non_null(b);
    assert_ptr_equal(zg_zone_find(&l, "one"), a);
    assert_ptr_equal(zg_zone_find(&l, "backend"), u);
    assert_null(zg_zone_find(&l, "none"));
    /* declaration order is kept */
    assert_ptr_equal(l.head, a);
    assert_ptr_equal(a->next, b);
    assert_ptr_equal(b->next, u);
    assert_null(u->next);

    zg_zone_list_free(&l);
    assert_null(l.head);
}

typedef struct {
    uint64_t generation;
    uint64_t counter;
} root_t;

static int init_calls;
static void *init_old[8];

static int root_init(zg_zone_t *zone, void *old_data)
{
    root_t *r;

    init_old[init_calls++ % 8] = old_data;
    if (old_data != NULL) {
        r = old_data;
        r->generation++;
        zone->data = r;
        return ZG_OK;
    }
    r = zg_slab_calloc(zone->pool, sizeof(root_t));
    if (r == NULL) {
        return ZG_ERROR;
    }
    r->generation = 1;
    zone->data = r;
    return ZG_OK;
}

static int failing_init(zg_zone_t *zone, void *old_data)
{
    (void)zone;
    (void)old_data;
    return ZG_ERROR;
}

static void test_map_and_reuse(void **state)
{
    zg_zone_list_t one = { NULL }, two = { NULL };
    zg_zone_t *a, *b, *c, *a2, *b2, *c2, *d2;
    root_t *ra, *rb, *rc;
    char err[256];

    (void)state;
    a = zg_zone_declare(&one, "a", KIND_REQ, 16 * PAGE, err, sizeof(err));
    b = zg_zone_declare(&one, "b", KIND_CONN, 16 * PAGE, err, sizeof(err));
    c = zg_zone_declare(&one, "c", KIND_UPS, 16 * PAGE, err, sizeof(err));
    a->init = b->init = c->init = root_init;
    init_calls = 0;
    assert_int_equal(zg_zone_map_all(&one, NULL, err, sizeof(err)), ZG_OK);
    assert_int_equal(init_calls, 3);
    assert_null(init_old[0]);
    for (zg_zone_t *z = one.head; z != NULL; z = z->next) {
        assert_non_null(z->addr);
        assert_ptr_equal(z->pool, z->addr);
        assert_int_equal(z->reused, 0);
        assert_non_null(z->data);
        assert_ptr_equal(z->pool->data, z->data);
        assert_ptr_equal(z->pool->end, (unsigned char *)z->addr + z->size);
        assert_int_equal(zg_slab_validate(z->pool), ZG_OK);
    }
    ra = a->data;
    rb = b->data;
    rc = c->data;
    ra->counter = 11;
    rb->counter = 22;
    rc->counter = 33;

    /* reload: a unchanged, b resized, c changes kind, d new */
    a2 = zg_zone_declare(&two, "a", KIND_REQ, 16 * PAGE, err, sizeof(err));
    b2 = zg_zone_declare(&two, "b", KIND_CONN, 32 * PAGE, err, sizeof(err));
    c2 = zg_zone_declare(&two, "c", KIND_CONN, 16 * PAGE, err, sizeof(err));
    d2 = zg_zone_declare(&two, "d", KIND_REQ, 8 * PAGE, err, sizeof(err));
    a2->init = b2->init = c2->init = d2->init = root_init;
    init_calls = 0;
    assert_int_equal(zg_zone_map_all(&two, &one, err, sizeof(err)), ZG_OK);
    assert_int_equal(init_calls, 4);
    assert_ptr_equal(init_old[0], ra);
    assert_null(init_old[1]);
    assert_null(init_old[2]);
    assert_null(init_old[3]);

    assert_int_equal(a2->reused, 1);
    assert_ptr_equal(a2->addr, a->addr);
    assert_ptr_equal(a2->data, ra);
    assert_int_equal(ra->counter, 11);          /* contents kept */
    assert_int_equal(ra->generation, 2);
    assert_int_equal(zg_slab_validate(a2->pool), ZG_OK);
    assert_int_equal(a2->pool->stats[1].used, 1);   /* the root, a 16-byte slot */

    assert_int_equal(b2->reused, 0);
    assert_ptr_not_equal(b2->addr, b->addr);
    assert_int_equal(((root_t *)b2->data)->counter, 0);
    assert_int_equal(((root_t *)b2->data)->generation, 1);
    assert_int_equal(c2->reused, 0);
    assert_ptr_not_equal(c2->addr, c->addr);
    assert_int_equal(d2->reused, 0);

    /* the old zones are still mapped and intact */
    assert_int_equal(rb->counter, 22);
    assert_int_equal(rc->counter, 33);

    zg_zone_unmap_unused(&one, &two);
    assert_null(a->addr);
    assert_null(b->addr);
    /* a's mapping is alive through two */
    assert_int_equal(ra->counter, 11);
    ra->counter++;

    zg_zone_recover_locks(&two, 12345);         /* nobody holds them: no-op */
    zg_shmtx_lock(&a2->pool->mutex);
    zg_shmtx_unlock(&a2->pool->mutex);

    zg_zone_unmap_all(&two);
    assert_null(a2->addr);
    zg_zone_list_free(&one);
    zg_zone_list_free(&two);
}

static void test_map_errors(void **state)
{
    zg_zone_list_t one = { NULL }, two = { NULL };
    zg_zone_t *a, *a2, *b2;
    root_t *ra;
    char err[256];

    (void)state;
    /* a zone without size */
    zg_zone_declare(&one, "up", KIND_UPS, 0, err, sizeof(err));
    err[0] = '\0';
    assert_int_equal(zg_zone_map_all(&one, NULL, err, sizeof(err)), ZG_ERROR);
    assert_non_null(strstr(err, "up"));
    assert_null(one.head->addr);
    zg_zone_list_free(&one);

    a = zg_zone_declare(&one, "a", KIND_REQ, 8 * PAGE, err, sizeof(err));
    a->init = root_init;
    assert_int_equal(zg_zone_map_all(&one, NULL, err, sizeof(err)), ZG_OK);
    ra = a->data;
    ra->counter = 5;

    /* a failing init: nothing of the new list stays mapped, old untouched */
    a2 = zg_zone_declare(&two, "a", KIND_REQ, 8 * PAGE, err, sizeof(err));
    b2 = zg_zone_declare(&two, "b", KIND_REQ, 8 * PAGE, err, sizeof(err));
    a2->init = root_init;
    b2->init = failing_init;
    err[0] = '\0';
    assert_int_equal(zg_zone_map_all(&two, &one, err, sizeof(err)), ZG_ERROR);
    assert_non_null(strstr(err, "\"b\""));
    assert_null(a2->addr);
    assert_null(b2->addr);
    assert_non_null(a->addr);
    assert_int_equal(ra->counter, 5);
    zg_zone_list_free(&two);

    /* a zone without init callback is mapped with an empty pool */
    b2 = zg_zone_declare(&two, "plain", KIND_CONN, 8 * PAGE, err, sizeof(err));
    assert_int_equal(zg_zone_map_all(&two, &one, err, sizeof(err)), ZG_OK);
    assert_non_null(b2->pool);
    assert_null(b2->data);
    assert_int_equal(b2->pool->pages_free, b2->pool->pages_total);

    zg_zone_unmap_unused(&one, &two);           /* a is not taken over: unmapped */
    assert_null(a->addr);
    zg_zone_unmap_all(&two);
    zg_zone_list_free(&one);
    zg_zone_list_free(&two);
}

static void test_hammer(void **state)
{
    zg_zone_list_t l;
    zg_zone_t *z = map_shared_zone(&l, 4 * 1024 * 1024);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_declare),
        cmocka_unit_test(test_map_and_reuse),
        cmocka_unit_test(test_map_errors),
        cmocka_unit_test(test_hammer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
