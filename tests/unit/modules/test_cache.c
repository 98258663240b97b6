/* test_cache.c — proxy_cache's keys zone (lookup, LRU, eviction when full, expiry
 * by inactive and max_size) and the validity an upstream head gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_cache.h"
#include "zg_proxy_ignore.h"
#include "zg_response.h"

typedef struct {
    zg_zone_list_t list;
    zg_zone_t *zone;
} cz_t;

static void zone_make(cz_t *z, size_t size)
{
    char err[256];

    memset(z, 0, sizeof(*z));
    z->zone = zg_zone_declare(&z->list, "c", ZG_ZONE_CACHE, size, err, sizeof(err));
    assert_non_null(z->zone);
    z->zone->init = zg_cache_zone_kind.init;
    assert_int_equal(zg_zone_map_all(&z->list, NULL, err, sizeof(err)), ZG_OK);
}

static void zone_free(cz_t *z)
{
    zg_zone_unmap_all(&z->list);
    zg_zone_list_free(&z->list);
}

static void md5_of(int i, unsigned char *md5)
{
    memset(md5, 0, 16);
    /* the first four bytes are the tree's key: collisions on purpose for i % 7 */
    md5[0] = (unsigned char)(i % 7);
    memcpy(md5 + 8, &i, sizeof(i));
}

static zg_cache_node_sh_t *add(cz_t *z, int i, int64_t now, uint64_t size)
{
    unsigned char md5[16], ev[16][16];
    int nev = 16;
    zg_cache_sh_t *sh = z->zone->data;

    md5_of(i, md5);
    zg_cache_node_sh_t *n = zg_cache_insert_locked(z->zone->pool, sh, md5, now, ev, &nev);
    if (n != NULL) {
        n->exists = 1;
        n->fs_size = size;
        sh->size += size;
    }
    return n;
}

static zg_cache_node_sh_t *find(cz_t *z, int i)
{
    unsigned char md5[16];
    md5_of(i, md5);
    return zg_cache_lookup_locked(z->zone->data, md5);
}

static void test_lookup_and_collisions(void **state)
{
    cz_t z;
    (void)state;

    zone_make(&z, 64 * 4096);
    for (int i = 0; i < 100; i++) {
        assert_non_null(add(&z, i, 1000, 10));
    }
    for (int i = 0; i < 100; i++) {
        zg_cache_node_sh_t *n = find(&z, i);
        assert_non_null(n);
        unsigned char md5[16];
        md5_of(i, md5);
        assert_memory_equal(n->md5, md5, 16);
    }
    assert_null(find(&z, 100));
    zg_cache_sh_t *sh = z.zone->data;
    assert_int_equal(sh->entries, 100);
    assert_int_equal(sh->size, 1000);
    zg_cache_delete_locked(z.zone->pool, sh, find(&z, 5));
    assert_null(find(&z, 5));
    assert_non_null(find(&z, 12)); /* same tree key as 5 */
    assert_int_equal(sh->entries, 99);
    assert_int_equal(sh->size, 990);
    assert_int_equal(zg_rbtree_validate(&sh->tree), ZG_OK);
    zone_free(&z);
}

static void test_full_zone_evicts_lru_not_locked(void **state)
{
    cz_t z;
    (void)state;

    zone_make(&z, 8 * 4096);
    zg_cache_sh_t *sh = z.zone->data;
    int i;
    for (i = 0; i < 100000; i++) {
        if (sh->evictions > 0) {
            break;
        }
        zg_cache_node_sh_t *n = add(&z, i, 1000 + i, 1);
        assert_non_null(n);
        if (i == 0) {
            n->lock_slot = 1; /* being fetched: never evicted */
        }
        if (i == 2) {
            zg_cache_touch_locked(sh, find(&z, 1), 5000); /* used again: stays */
        }
    }
    assert_true(i > 10);
    assert_non_null(find(&z, 0));
    assert_non_null(find(&z, 1));
    assert_null(find(&z, 2)); /* the least recently used without a lock */
    assert_non_null(find(&z, i - 1));
    zone_free(&z);
}

/* memory per key: a 1 MB keys zone holds about as many keys as nginx's (~8,000) */
static void test_keys_per_megabyte(void **state)
{
    cz_t z;
    int i;
    (void)state;

    zone_make(&z, 1 << 20);
    zg_cache_sh_t *sh = z.zone->data;
    for (i = 0; sh->evictions == 0; i++) {
        assert_non_null(add(&z, i, 1000, 1));
    }
    print_message("keys in a 1 MB keys zone: %d (entry %zu bytes)\n", i - 1,
                  sizeof(zg_cache_node_sh_t));
    assert_true(i - 1 >= 7500);
    zone_free(&z);
}

static void test_expire_inactive_then_max_size(void **state)
{
    cz_t z;
    unsigned char out[64][16];
    (void)state;

    zone_make(&z, 64 * 4096);
    zg_cache_sh_t *sh = z.zone->data;
    for (int i = 0; i < 10; i++) {
        add(&z, i, 100 + i, 100); /* used at 100 .. 109 */
    }
    /* inactive 10s at 115: those used before 105 go */
    int n = zg_cache_expire_locked(z.zone->pool, sh, 115, 10, 0, out, 64);
    assert_int_equal(n, 6);
    assert_null(find(&z, 5));
    assert_non_null(find(&z, 6));
    assert_int_equal(sh->size, 400);
    /* max_size 250: the least recently used go until it fits */
    find(&z, 6)->lock_slot = 2;
    n = zg_cache_expire_locked(z.zone->pool, sh, 115, 1000, 250, out, 64);
    assert_int_equal(n, 2);
    assert_non_null(find(&z, 6)); /* locked */
    assert_null(find(&z, 7));
    assert_null(find(&z, 8));
    assert_non_null(find(&z, 9));
    assert_int_equal(sh->size, 200);
    assert_int_equal(sh->evictions, 2);
    /* at most max at once */
    for (int i = 20; i < 30; i++) {
        add(&z, i, 100, 1);
    }
    assert_int_equal(zg_cache_expire_locked(z.zone->pool, sh, 1000, 10, 0, out, 3), 3);
    zone_free(&z);
}

static zg_resp_t *head(const char *n1, const char *v1, const char *n2, const char *v2)
{
    static zg_resp_header_t h[2];
    static zg_resp_t r;
    memset(&r, 0, sizeof(r));
    r.h = h;
    r.status = 200;
    if (n1 != NULL) {
        h[r.n].name.data = n1;
        h[r.n].name.len = strlen(n1);
        h[r.n].value.data = v1;
        h[r.n++].value.len = strlen(v1);
    }
    if (n2 != NULL) {
        h[r.n].name.data = n2;
        h[r.n].name.len = strlen(n2);
        h[r.n].value.data = v2;
        h[r.n++].value.len = strlen(v2);
    }
    return &r;
}

static void test_validity(void **state)
{
    time_t now = 1700000000;
    (void)state;

    assert_int_equal(zg_cache_validity(head(NULL, NULL, NULL, NULL), 0, now), 0);
    assert_int_equal(zg_cache_validity(head("Cache-Control", "max-age=60", NULL, NULL), 0, now),
                     60);
    assert_int_equal(zg_cache_validity(head("Cache-Control", "public, s-maxage=5, max-age=60",
                                            NULL, NULL), 0, now), 5);
    assert_int_equal(zg_cache_validity(head("Cache-Control", "max-age=0", NULL, NULL), 0, now),
                     -1);
    assert_int_equal(zg_cache_validity(head("Cache-Control", "no-cache", NULL, NULL), 0, now),
                     -1);
    assert_int_equal(zg_cache_validity(head("cache-control", "Private", NULL, NULL), 0, now), -1);
    assert_int_equal(zg_cache_validity(head("Cache-Control", "no-store", NULL, NULL),
                                       ZG_IGNORE_CACHE_CONTROL, now), 0);
    assert_int_equal(zg_cache_validity(head("X-Accel-Expires", "30", "Cache-Control", "no-cache"),
                                       0, now), 30);
    assert_int_equal(zg_cache_validity(head("X-Accel-Expires", "0", NULL, NULL), 0, now), -1);
    assert_int_equal(zg_cache_validity(head("X-Accel-Expires", "3000083000088", NULL, NULL), 0,
                                       now), -1);
    assert_int_equal(zg_cache_validity(head("X-Accel-Expires", "@1700000100", NULL, NULL), 0,
                                       now), 100);
    assert_int_equal(zg_cache_validity(head("X-Accel-Expires", "0", "Cache-Control", "max-age=9"),
                                       ZG_IGNORE_X_ACCEL_EXPIRES, now), 9);
    assert_int_equal(zg_cache_validity(head("Expires", "Tue, 14 Nov 2023 22:14:20 GMT", NULL,
                                            NULL), 0, now), 60);
    assert_int_equal(zg_cache_validity(head("Expires", "Thu, 01 Jan 1970 00:00:01 GMT", NULL,
                                            NULL), 0, now), -1);
    assert_int_equal(zg_cache_validity(head("Set-Cookie", "a=1", "Cache-Control", "max-age=9"), 0,
                                       now), -1);
    assert_int_equal(zg_cache_validity(head("Set-Cookie", "a=1", NULL, NULL),
                                       ZG_IGNORE_SET_COOKIE, now), 0);
    assert_int_equal(zg_cache_validity(head("Vary", "*", NULL, NULL), 0, now), -1);
    assert_int_equal(zg_cache_validity(head("Vary", "Accept-Encoding", NULL, NULL), 0, now), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_and_collisions),
        cmocka_unit_test(test_full_zone_evicts_lru_not_locked),
        cmocka_unit_test(test_expire_inactive_then_max_size),
        cmocka_unit_test(test_keys_per_megabyte),
        cmocka_unit_test(test_validity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
