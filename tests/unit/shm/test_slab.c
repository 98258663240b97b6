/* test_slab.c — the slab allocator: exhaustion, accounting, a random model, rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "zg_slab.h"

#define ZONE_SIZE (1024 * 1024)

static void *zone_map(size_t size)
{
    void *addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    assert_true(addr != MAP_FAILED);
    return addr;
}

static unsigned slot_cap(unsigned shift)
{
    static const unsigned cap[] = { 504, 254, 127, 64, 32, 16, 8, 4, 2 };

    return cap[shift - ZG_SLAB_MIN_SHIFT];
}

static void test_init_sizes(void **state)
{
    unsigned char *addr = zone_map(ZONE_SIZE);
    zg_slab_pool_t *p;

    (void)state;
    assert_null(zg_slab_init(addr, 64));
    assert_null(zg_slab_init(addr, sizeof(zg_slab_pool_t) + 100));
    assert_null(zg_slab_init(addr + 1, ZONE_SIZE - 8));

    p = zg_slab_init(addr, ZONE_SIZE);
    assert_non_null(p);
    assert_ptr_equal(p, addr);
    assert_ptr_equal(p->start, addr);
    assert_ptr_equal(p->end, addr + ZONE_SIZE);
    assert_null(p->data);
    assert_true(p->pages_total > 0);
    assert_int_equal(p->pages_total, p->pages_free);
    assert_int_equal((uintptr_t)p->pages_start % ZG_SLAB_PAGE_SIZE, 0);
    assert_true(p->pages_start + p->pages_total * ZG_SLAB_PAGE_SIZE <= p->end);
    /* header + 32-byte descriptors of a 256-page zone take 3 pages */
    assert_int_equal(sizeof(zg_slab_page_t), 32);
    assert_int_equal(p->pages_total, ZONE_SIZE / ZG_SLAB_PAGE_SIZE - 3);
    assert_int_equal(zg_slab_validate(p), ZG_OK);

    /* the smallest pool: one page */
    p = zg_slab_init(addr, 2 * ZG_SLAB_PAGE_SIZE);
    assert_non_null(p);
    assert_int_equal(p->pages_total, 1);
    assert_non_null(zg_slab_alloc(p, 3000));
    assert_null(zg_slab_alloc(p, 8));
    assert_int_equal(p->stats[0].fails, 1);
    assert_int_equal(zg_slab_validate(p), ZG_OK);

    munmap(addr, ZONE_SIZE);
}

/* fills the pool with one size, checks, frees in an odd order */
static void exhaust(zg_slab_pool_t *p, size_t size)
{
    size_t max = p->pages_total * ZG_SLAB_PAGE_SIZE / 8 + 1, n = 0, i, align;
    void **ptrs = malloc(max * sizeof(void *));
    zg_slab_stat_t before[ZG_SLAB_NSLOTS];
    uint64_t page_fails = p->page_fails;
    unsigned shift = 0, s = 0;

    assert_non_null(ptrs);
    memcpy(before, p->stats, sizeof(before));
    if (size <= ZG_SLAB_MAX_SIZE) {
        shift = ZG_SLAB_MIN_SHIFT;
        while (((size_t)1 << shift) < size) {
            shift++;
        }
        s = shift - ZG_SLAB_MIN_SHIFT;
        align = (size_t)1 << shift;
    } else {
        align = ZG_SLAB_PAGE_SIZE;
    }

    for (;;) {
        void *ptr = zg_slab_alloc(p, size);
        if (ptr == NULL) {
            break;
        }
        assert_true(n < max);
        assert_int_equal((uintptr_t)ptr % align, 0);
        assert_true((unsigned char *)ptr >= p->pages_start);
        assert_true((unsigned char *)ptr + size <= p->end);
        memset(ptr, 0x5a, size);
        ptrs[n++] = ptr;
    }

    if (size <= ZG_SLAB_MAX_SIZE) {
        size_t pages = p->pages_total;
        assert_int_equal(p->pages_free, 0);
        assert_int_equal(n, pages * slot_cap(shift));
        assert_int_equal(p->stats[s].used, before[s].used + n);
        assert_int_equal(p->stats[s].total, pages * slot_cap(shift));
        assert_int_equal(p->stats[s].reqs, before[s].reqs + n + 1);
        assert_int_equal(p->stats[s].fails, before[s].fails + 1);
    } else {
        size_t per = (size + ZG_SLAB_PAGE_SIZE - 1) / ZG_SLAB_PAGE_SIZE;
        assert_int_equal(n, p->pages_total / per);
        assert_int_equal(p->pages_free, p->pages_total % per);
        assert_int_equal(p->page_fails, page_fails + 1);
    }
    assert_int_equal(zg_slab_validate(p), ZG_OK);

    /* free even indexes forward, then odd ones backward */
    for (i = 0; i < n; i += 2) {
        zg_slab_free(p, ptrs[i]);
    }
    assert_int_equal(zg_slab_validate(p), ZG_OK);
    for (i = n; i-- > 0;) {
        if (i % 2 == 1) {
            zg_slab_free(p, ptrs[i]);
        }
    }

    assert_int_equal(p->pages_free, p->pages_total);
    for (i = 0; i < ZG_SLAB_NSLOTS; i++) {
        assert_int_equal(p->stats[i].used, 0);
        assert_int_equal(p->stats[i].total, 0);
    }
    assert_int_equal(p->bad_frees, 0);
    assert_int_equal(zg_slab_validate(p), ZG_OK);
    free(ptrs);
}

static void test_exhaust_every_size(void **state)
{
    static const size_t sizes[] = { 1, 8, 9, 16, 24, 32, 33, 64, 100, 128, 200, 256,
                                    512, 1000, 1024, 2000, 2048, 2049, 4096, 4097,
                                    8192, 12288, 40000 };
    unsigned char *addr = zone_map(ZONE_SIZE);
    zg_slab_pool_t *p = zg_slab_init(addr, ZONE_SIZE);
    size_t i, pages;

    (void)state;
    assert_non_null(p);
    pages = p->pages_free;
    for (i = 0; i < zg_nelems(sizes); i++) {
        exhaust(p, sizes[i]);
        assert_int_equal(p->pages_free, pages);
    }
    /* a single free run again */
    assert_ptr_equal(p->free.next, &p->pages[0]);
    assert_int_equal(p->pages[0].npages, pages);
    munmap(addr, ZONE_SIZE);
}

static void test_bad_frees(void **state)
{
    unsigned char *addr = zone_map(ZONE_SIZE);
    zg_slab_pool_t *p = zg_slab_init(addr, ZONE_SIZE);
    unsigned char *a, *b, *c;
    int outside;

    (void)state;
    a = zg_slab_alloc(p, 32);
    b = zg_slab_alloc(p, 8192);
    c = zg_slab_alloc(p, 128);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(zg_slab_size_locked(p, a), 32);
    assert_int_equal(zg_slab_size_locked(p, b), 8192);
    assert_int_equal(zg_slab_size_locked(p, c), 128);
    assert_int_equal(zg_slab_size_locked(p, a + 8), 0);

    zg_slab_free(p, NULL);
    zg_slab_free(p, &outside);
    zg_slab_free(p, a + 8);                     /* inside a slot */
    zg_slab_free(p, a - (uintptr_t)a % ZG_SLAB_PAGE_SIZE); /* the bitmap slot */
    zg_slab_free(p, b + ZG_SLAB_PAGE_SIZE);      /* second page of a run */
    zg_slab_free(p, p->pages_start + (p->pages_total - 1) * ZG_SLAB_PAGE_SIZE); /* free page */
    assert_int_equal(p->bad_frees, 5);
    assert_int_equal(zg_slab_validate(p), ZG_OK);

    /* validate notices corruption */
    p->stats[2].used++;
    assert_int_equal(zg_slab_validate(p), ZG_ERROR);
    p->stats[2].used--;
    p->pages_free--;
    assert_int_equal(zg_slab_validate(p), ZG_ERROR);
    p->pages_free++;
    ((uint64_t *)(void *)(a - (uintptr_t)a % ZG_SLAB_PAGE_SIZE))[1] |= 1;  /* a bitmap bit */
    assert_int_equal(zg_slab_validate(p), ZG_ERROR);
    ((uint64_t *)(void *)(a - (uintptr_t)a % ZG_SLAB_PAGE_SIZE))[1] &= ~(uint64_t)1;
    assert_int_equal(zg_slab_validate(p), ZG_OK);

    zg_slab_free(p, a);
    zg_slab_free(p, c);
    zg_slab_free(p, b);
    assert_int_equal(p->bad_frees, 5);
    zg_slab_free(p, b);                          /* double frees */
    assert_int_equal(p->bad_frees, 6);
    assert_int_equal(p->pages_free, p->pages_total);
    assert_int_equal(zg_slab_validate(p), ZG_OK);

    a = zg_slab_calloc(p, 100);
    assert_non_null(a);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(a[i], 0);
    }
    zg_slab_free(p, a);
#ifdef ZG_DEBUG
    /* junk-filled, except the page went back whole: still junk */
    assert_int_equal(a[0], 0xA5);
#endif
    assert_int_equal(zg_slab_validate(p), ZG_OK);
    munmap(addr, ZONE_SIZE);
}

/* a simple xorshift so runs repeat */
static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

typedef struct {
    unsigned char *ptr;
    size_t size;
    unsigned char fill;
} chunk_t;

static int chunk_cmp(const void *a, const void *b)
{
    const chunk_t *x = a, *y = b;

    return x->ptr < y->ptr ? -1 : x->ptr > y->ptr;
}

static void check_model(zg_slab_pool_t *p, chunk_t *c, size_t n)
{
    chunk_t *s = malloc((n + 1) * sizeof(chunk_t));
    size_t i, j;

    assert_non_null(s);
    memcpy(s, c, n * sizeof(chunk_t));
    qsort(s, n, sizeof(chunk_t), chunk_cmp);
    for (i = 0; i < n; i++) {
        assert_true(s[i].ptr >= p->pages_start && s[i].ptr + s[i].size <= p->end);
        if (i > 0) {
            assert_true(s[i - 1].ptr + s[i - 1].size <= s[i].ptr);
        }
        for (j = 0; j < s[i].size; j += 7) {
            assert_int_equal(s[i].ptr[j], s[i].fill);
        }
    }
    free(s);
}

static size_t random_size(void)
{
    uint64_t r = rng();

    switch (r % 8) {
    case 0:
        return 1 + (r >> 8) % 8;
    case 1:
    case 2:
        return 1 + (r >> 8) % 64;
    case 3:
    case 4:
        return 1 + (r >> 8) % 512;
    case 5:
        return 1 + (r >> 8) % 2048;
    case 6:
        return 2049 + (r >> 8) % 6000;
    default:
        return 1 + (r >> 8) % 20000;
    }
}

static void run_random(uint64_t seed, size_t zone_size, size_t steps)
{
    unsigned char *addr = zone_map(zone_size);
    zg_slab_pool_t *p = zg_slab_init(addr, zone_size);
    size_t cap = 100000, n = 0, i, step, failed = 0, nreqs = 0;
    chunk_t *c = malloc(cap * sizeof(chunk_t));
    uint64_t reqs;

    assert_non_null(p);
    assert_non_null(c);
    rng_state = seed;
    for (step = 0; step < steps; step++) {
        uint64_t r = rng();
        if (n > 0 && (r % 100 < 45 || n == cap)) {
            i = (size_t)(rng() % n);
            zg_slab_free(p, c[i].ptr);
            c[i] = c[--n];
        } else {
            size_t size = random_size(), align;
            unsigned char *ptr = zg_slab_alloc(p, size);

            nreqs++;
            if (ptr == NULL) {
                failed++;
                continue;
            }
            align = size > ZG_SLAB_MAX_SIZE ? ZG_SLAB_PAGE_SIZE : 8;
            while (size <= ZG_SLAB_MAX_SIZE && align < size) {
                align <<= 1;
            }
            assert_int_equal((uintptr_t)ptr % align, 0);
            assert_true(zg_slab_size_locked(p, ptr) >= size);
            c[n].ptr = ptr;
            c[n].size = size;
            c[n].fill = (unsigned char)(r >> 32);
            memset(ptr, c[n].fill, size);
            n++;
        }
        if (step % 97 == 0) {
            assert_int_equal(zg_slab_validate(p), ZG_OK);
        }
        if (step % 997 == 0) {
            check_model(p, c, n);
        }
    }
    assert_int_equal(zg_slab_validate(p), ZG_OK);
    check_model(p, c, n);

    reqs = p->page_reqs;
    for (i = 0; i < ZG_SLAB_NSLOTS; i++) {
        reqs += p->stats[i].reqs;
    }
    assert_int_equal(reqs, nreqs);

    while (n > 0) {
        zg_slab_free(p, c[--n].ptr);
    }
    assert_int_equal(p->pages_free, p->pages_total);
    for (i = 0; i < ZG_SLAB_NSLOTS; i++) {
        assert_int_equal(p->stats[i].used, 0);
        assert_int_equal(p->stats[i].total, 0);
    }
    assert_int_equal(p->bad_frees, 0);
    assert_int_equal(zg_slab_validate(p), ZG_OK);
    print_message("seed %" PRIu64 ": %zu steps, %zu allocation failures\n", seed, steps, failed);
    free(c);
    munmap(addr, zone_size);
}

static void test_random_model(void **state)
{
    (void)state;
    run_random(0x9e3779b97f4a7c15ull, 4 * 1024 * 1024, 200000);
    /* a small zone: many failures and coalescing under pressure */
    run_random(12345, 128 * 1024, 100000);
    run_random(777, 64 * 1024, 100000);
}

static size_t render(zg_slab_pool_t *p, const char *name, char *buf, size_t len)
{
    size_t n = zg_slab_stat_render(p, name, buf, len);

    assert_true(n < len);
    assert_int_equal(strlen(buf), n);
    return n;
}

static void test_render(void **state)
{
    size_t size = 10240 * 1024, n, off, i, total_pages;
    unsigned char *addr = zone_map(size);
    zg_slab_pool_t *p = zg_slab_init(addr, size);
    char buf[4096], line[256], small[40];
    char *text, *nl;
    void *a, *b, *c[3];

    (void)state;
    assert_non_null(p);
    total_pages = p->pages_total;

    a = zg_slab_alloc(p, 32);
    b = zg_slab_alloc(p, 3 * 4096);
    for (i = 0; i < 3; i++) {
        c[i] = zg_slab_alloc(p, 2048);
    }
    assert_null(zg_slab_alloc(p, size));
    assert_non_null(a);
    assert_non_null(b);
    /* 1 page of 32-byte slots, 3 pages, 2 pages of 2048-byte slots */
    assert_int_equal(p->pages_free, total_pages - 6);

    n = render(p, "dogs", buf, sizeof(buf));
    /* literal text of a line, independent of printf */
    assert_non_null(strstr(buf, "slot:          32(Bytes) total:         127 used:           1 reqs:           1 fails:           0"));
    assert_non_null(strstr(buf, "size:           4(KB)"));
    assert_non_null(strstr(buf, "total:       10240(KB)"));
    text = buf;
    off = 0;

#define EXPECT_LINE(...)                                                     \
    do {                                                                     \
        snprintf(line, sizeof(line), __VA_ARGS__);                           \
        nl = strchr(text + off, '\n');                                       \
        assert_non_null(nl);                                                 \
        *nl = '\0';                                                          \
        assert_string_equal(text + off, line);                               \
        off = (size_t)(nl - text) + 1;                                       \
    } while (0)

    EXPECT_LINE("* shared memory: dogs");
    EXPECT_LINE("total:%12zu(KB) free:%12zu(KB) size:%12zu(KB)", (size_t)10240,
                (total_pages - 6) * 4, (size_t)4);
    EXPECT_LINE("pages:%12zu(KB) start:%016" PRIXPTR " end:%016" PRIXPTR,
                (total_pages - 6) * 4, (uintptr_t)p->pages_start,
                (uintptr_t)(addr + size));
    EXPECT_LINE("slot:%12d(Bytes) total:%12d used:%12d reqs:%12d fails:%12d", 8, 0, 0, 0, 0);
    EXPECT_LINE("slot:%12d(Bytes) total:%12d used:%12d reqs:%12d fails:%12d", 16, 0, 0, 0, 0);
    EXPECT_LINE("slot:%12d(Bytes) total:%12d used:%12d reqs:%12d fails:%12d", 32, 127, 1, 1, 0);
    EXPECT_LINE("slot:%12d(Bytes) total:%12d used:%12d reqs:%12d fails:%12d", 64, 0, 0, 0, 0);
    EXPECT_LINE("slot:%12d(Bytes) total:%12d used:%12d reqs:%12d fails:%12d", 128, 0, 0, 0, 0);
    EXPECT_LINE("slot:%12d(Bytes) total:%12d used:%12d reqs:%12d fails:%12d", 256, 0, 0, 0, 0);
    EXPECT_LINE("slot:%12d(Bytes) total:%12d used:%12d reqs:%12d fails:%12d", 512, 0, 0, 0, 0);
    EXPECT_LINE("slot:%12d(Bytes) total:%12d used:%12d reqs:%12d fails:%12d", 1024, 0, 0, 0, 0);
    EXPECT_LINE("slot:%12d(Bytes) total:%12d used:%12d reqs:%12d fails:%12d", 2048, 4, 3, 3, 0);
    assert_int_equal(off, n);


    /* free runs after this: [1..4] (the 3 pages + an emptied 2048 page,
     * coalesced, newest so listed first) and [6..] */
    zg_slab_free(p, b);
    zg_slab_free(p, c[0]);
    zg_slab_free(p, c[1]);                      /* a 2048 page goes back */
    assert_null(zg_slab_alloc(p, 1u << 30));    /* counts in page_fails only */
    n = render(p, "x", buf, sizeof(buf));
    {
        size_t lines = 0, pages_lines = 0, slot_lines = 0, expect = 8;

        for (char *q = buf; (nl = strchr(q, '\n')) != NULL; q = nl + 1) {
            lines++;
            if (strncmp(q, "pages:", 6) == 0) {
                pages_lines++;
            }
            if (strncmp(q, "slot:", 5) == 0) {
                snprintf(line, sizeof(line), "slot:%12zu(Bytes)", expect);
                assert_memory_equal(q, line, strlen(line));
                expect <<= 1;
                slot_lines++;
            }
        }
        assert_int_equal(slot_lines, 9);
        assert_int_equal(expect, 4096);
        assert_int_equal(pages_lines, 2);
        assert_int_equal(lines, 2 + 2 + 9);
        snprintf(line, sizeof(line), "pages:%12d(KB) start:", 16);
        assert_memory_equal(strchr(buf, '\n') + 1 + strcspn(strchr(buf, '\n') + 1, "\n") + 1,
                            line, strlen(line));
    }
    assert_int_equal(zg_slab_validate(p), ZG_OK);

    /* snprintf semantics on a short buffer */
    memset(small, 'x', sizeof(small));
    assert_int_equal(zg_slab_stat_render(p, "x", small, sizeof(small)), n);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, buf, sizeof(small) - 1);
    assert_int_equal(zg_slab_stat_render(p, "x", NULL, 0), n);

    zg_slab_free(p, a);
    zg_slab_free(p, c[2]);
    assert_int_equal(p->pages_free, total_pages);
    n = render(p, "dogs", buf, sizeof(buf));
    snprintf(line, sizeof(line), "pages:%12zu(KB) start:", total_pages * 4);
    assert_non_null(strstr(buf, line));
    snprintf(line, sizeof(line), "slot:%12d(Bytes) total:%12d used:%12d reqs:%12d fails:%12d\n",
             32, 0, 0, 1, 0);
    assert_non_null(strstr(buf, line));
    munmap(addr, size);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_sizes),
        cmocka_unit_test(test_exhaust_every_size),
        cmocka_unit_test(test_bad_frees),
        cmocka_unit_test(test_random_model),
        cmocka_unit_test(test_render),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
