/* test_rbtree.c — the red-black tree against a sorted-array model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_rbtree.h"

typedef struct {
    zg_rbtree_node_t node;
    char name[16];              /* tie-break bytes */
    int in_tree;
} entry_t;

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int entry_cmp(const zg_rbtree_node_t *n, const void *arg)
{
    const entry_t *e = zg_data_of(n, entry_t, node);

    return strcmp(e->name, arg);
}

/* model: entries sorted by (key, name), as pointers */
static int model_cmp(const void *a, const void *b)
{
    const entry_t *x = *(entry_t *const *)a, *y = *(entry_t *const *)b;

    if (x->node.key != y->node.key) {
        return x->node.key < y->node.key ? -1 : 1;
    }
    return strcmp(x->name, y->name);
}

static void check_iteration(zg_rbtree_t *t, entry_t **model, size_t n, int by_name)
{
    zg_rbtree_node_t *node;
    size_t i = 0;

    if (by_name) {
        qsort(model, n, sizeof(entry_t *), model_cmp);
    }
    for (node = zg_rbtree_min(t); node != NULL; node = zg_rbtree_next(t, node)) {
        assert_true(i < n);
        if (by_name) {
            assert_ptr_equal(node, &model[i]->node);
        } else {
            assert_int_equal(node->key, model[i]->node.key);
        }
        i++;
    }
    assert_int_equal(i, n);
}

static void test_empty(void **state)
{
    zg_rbtree_t t;
    zg_rbtree_node_t s, a;

    (void)state;
    zg_rbtree_init(&t, &s, zg_rbtree_insert_value);
    assert_null(zg_rbtree_min(&t));
    assert_null(zg_rbtree_lookup(&t, 1, NULL, NULL));
    assert_int_equal(zg_rbtree_validate(&t), ZG_OK);

    a.key = 5;
    zg_rbtree_insert(&t, &a);
    assert_ptr_equal(zg_rbtree_min(&t), &a);
    assert_null(zg_rbtree_next(&t, &a));
    assert_ptr_equal(zg_rbtree_lookup(&t, 5, NULL, NULL), &a);
    assert_int_equal(zg_rbtree_validate(&t), ZG_OK);
    zg_rbtree_delete(&t, &a);
    assert_null(zg_rbtree_min(&t));
    assert_int_equal(zg_rbtree_validate(&t), ZG_OK);

    /* validate notices a broken tree */
    a.key = 5;
    zg_rbtree_insert(&t, &a);
    zg_rbt_red(&a);
    assert_int_equal(zg_rbtree_validate(&t), ZG_ERROR);
}

/* keys only, many duplicates: insert_value + delete against a multiset */
static void test_random_values(void **state)
{
    enum { N = 3000, STEPS = 30000 };
    entry_t *e = calloc(N, sizeof(entry_t));
    entry_t **model = malloc(N * sizeof(entry_t *));
    zg_rbtree_t t;
    zg_rbtree_node_t s;
    size_t n = 0, step, i, j;

    (void)state;
    assert_non_null(e);
    assert_non_null(model);
    rng_state = 42;
    zg_rbtree_init(&t, &s, zg_rbtree_insert_value);

    for (step = 0; step < STEPS; step++) {
        uint64_t r = rng();
        if (n < N && (n == 0 || r % 100 < 55)) {
            for (i = r % N; e[i].in_tree; i = (i + 1) % N) {
                /* void */
            }
            e[i].node.key = (zg_rbtree_key_t)(rng() % 500);   /* duplicates */
            zg_rbtree_insert(&t, &e[i].node);
            e[i].in_tree = 1;
            /* insertion sort keeps the model sorted by key */
            for (j = n; j > 0 && model[j - 1]->node.key > e[i].node.key; j--) {
                model[j] = model[j - 1];
            }
            model[j] = &e[i];
            n++;
        } else {
            j = (size_t)(rng() % n);
            zg_rbtree_delete(&t, &model[j]->node);
            model[j]->in_tree = 0;
            memmove(&model[j], &model[j + 1], (n - j - 1) * sizeof(entry_t *));
            n--;
        }
        assert_int_equal(zg_rbtree_validate(&t), ZG_OK);
        if (step % 50 == 0) {
            check_iteration(&t, model, n, 0);
        }
        if (n > 0) {
            j = (size_t)(rng() % n);
            assert_non_null(zg_rbtree_lookup(&t, model[j]->node.key, NULL, NULL));
        }
    }
    check_iteration(&t, model, n, 0);

    /* a key not in the tree */
    for (i = 0; i < 20; i++) {
        zg_rbtree_key_t k = (zg_rbtree_key_t)(1000 + i);
        assert_null(zg_rbtree_lookup(&t, k, NULL, NULL));
    }
    while (n > 0) {
        zg_rbtree_delete(&t, &model[--n]->node);
        assert_int_equal(zg_rbtree_validate(&t), ZG_OK);
    }
    assert_null(zg_rbtree_min(&t));
    free(model);
    free(e);
}

/* hash + key bytes: insert_keyed, lookup with tie-break cmp */
static void test_random_keyed(void **state)
{
    enum { N = 4000, STEPS = 40000 };
    entry_t *e = calloc(N, sizeof(entry_t));
    entry_t **model = malloc(N * sizeof(entry_t *));
    zg_rbtree_t t;
    zg_rbtree_node_t s;
    size_t n = 0, step, i, j;
    char name[16];

    (void)state;
    assert_non_null(e);
    assert_non_null(model);
    rng_state = 7;
    zg_rbtree_init(&t, &s, zg_rbtree_insert_value);
    for (i = 0; i < N; i++) {
        /* unique names; only 64 distinct hashes, so many collisions */
        snprintf(e[i].name, sizeof(e[i].name), "k%zu", i);
        e[i].node.key = (zg_rbtree_key_t)(i * 2654435761u) % 64;
    }

    for (step = 0; step < STEPS; step++) {
        uint64_t r = rng();
        i = (size_t)(r % N);
        if (!e[i].in_tree) {
            assert_null(zg_rbtree_lookup(&t, e[i].node.key, entry_cmp, e[i].name));
            zg_rbtree_insert_keyed(&t, &e[i].node, entry_cmp, e[i].name);
            e[i].in_tree = 1;
            model[n++] = &e[i];
        } else {
            assert_ptr_equal(zg_rbtree_lookup(&t, e[i].node.key, entry_cmp, e[i].name),
                             &e[i].node);
            zg_rbtree_delete(&t, &e[i].node);
            e[i].in_tree = 0;
            for (j = 0; model[j] != &e[i]; j++) {
                /* void */
            }
            model[j] = model[--n];
        }
        assert_int_equal(zg_rbtree_validate(&t), ZG_OK);
        if (step % 200 == 0) {
            check_iteration(&t, model, n, 1);
        }
    }
    check_iteration(&t, model, n, 1);

    /* same hash, bytes that are not there */
    for (i = 0; i < 64; i++) {
        snprintf(name, sizeof(name), "absent%zu", i);
        assert_null(zg_rbtree_lookup(&t, (zg_rbtree_key_t)i, entry_cmp, name));
    }
    for (i = 0; i < N; i++) {
        zg_rbtree_node_t *f = zg_rbtree_lookup(&t, e[i].node.key, entry_cmp, e[i].name);
        assert_ptr_equal(f, e[i].in_tree ? &e[i].node : NULL);
    }
    free(model);
    free(e);
}

/* sequential keys: the worst case for an unbalanced tree */
static void test_sequential(void **state)
{
    enum { N = 100000 };
    entry_t *e = calloc(N, sizeof(entry_t));
    zg_rbtree_t t;
    zg_rbtree_node_t s, *node;
    size_t i;

    (void)state;
    assert_non_null(e);
    zg_rbtree_init(&t, &s, zg_rbtree_insert_value);
    for (i = 0; i < N; i++) {
        e[i].node.key = (zg_rbtree_key_t)i;
        zg_rbtree_insert(&t, &e[i].node);
    }
    assert_int_equal(zg_rbtree_validate(&t), ZG_OK);
    for (i = 0, node = zg_rbtree_min(&t); node != NULL; node = zg_rbtree_next(&t, node), i++) {
        assert_int_equal(node->key, i);
    }
    assert_int_equal(i, N);
    for (i = 0; i < N; i += 2) {
        zg_rbtree_delete(&t, &e[i].node);
    }
    assert_int_equal(zg_rbtree_validate(&t), ZG_OK);
    for (i = 0; i < N; i++) {
        node = zg_rbtree_lookup(&t, (zg_rbtree_key_t)i, NULL, NULL);
        assert_ptr_equal(node, i % 2 ? &e[i].node : NULL);
    }
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_random_values),
        cmocka_unit_test(test_random_keyed),
        cmocka_unit_test(test_sequential),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
