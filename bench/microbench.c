/* microbench.c — ns/op of the ground floor: slab vs malloc, rbtree vs bsearch, a
 * request head read by the fast path vs llhttp.  Built and run by `make microbench`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "zg_http.h"
#include "zg_rbtree.h"
#include "zg_slab.h"

#define BATCH 256

static volatile uintptr_t sink;

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

enum { USE_SLAB, USE_SLAB_LOCKED, USE_MALLOC };

/* ns per alloc+free pair: BATCH allocations, then their frees, in a shuffled order */
static double bench_alloc(zg_slab_pool_t *pool, int how, size_t size, size_t rounds)
{
    void *ptrs[BATCH];
    size_t order[BATCH], r, i;
    double t0, t1;

    for (i = 0; i < BATCH; i++) {
        order[i] = i;
    }
    for (i = BATCH - 1; i > 0; i--) {
        size_t j = (size_t)(rng() % (i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }

    t0 = now_ns();
    for (r = 0; r < rounds; r++) {
        for (i = 0; i < BATCH; i++) {
            switch (how) {
            case USE_SLAB:
                ptrs[i] = zg_slab_alloc(pool, size);
                break;
            case USE_SLAB_LOCKED:
                ptrs[i] = zg_slab_alloc_locked(pool, size);
                break;
            default:
                ptrs[i] = malloc(size);
            }
            *(volatile char *)ptrs[i] = 1;
        }
        for (i = 0; i < BATCH; i++) {
            void *p = ptrs[order[i]];
            switch (how) {
            case USE_SLAB:
                zg_slab_free(pool, p);
                break;
            case USE_SLAB_LOCKED:
                zg_slab_free_locked(pool, p);
                break;
            default:
                free(p);
            }
        }
    }
    t1 = now_ns();
    return (t1 - t0) / (double)(rounds * BATCH);
}

typedef struct {
    zg_rbtree_node_t node;
    uint64_t value;
} item_t;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static void bench_rbtree(size_t n, size_t lookups)
{
    item_t *items = calloc(n, sizeof(item_t));
    uint32_t *keys = malloc(n * sizeof(uint32_t)), *probe = malloc(lookups * sizeof(uint32_t));
    zg_rbtree_t tree;
    zg_rbtree_node_t sentinel;
    double t0, t_ins, t_rb, t_bs;
    size_t i;
    uintptr_t acc = 0;

    if (items == NULL || keys == NULL || probe == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    zg_rbtree_init(&tree, &sentinel, zg_rbtree_insert_value);
    for (i = 0; i < n; i++) {
        keys[i] = (uint32_t)rng();
        items[i].node.key = keys[i];
    }
    for (i = 0; i < lookups; i++) {
        probe[i] = keys[rng() % n];
    }

    t0 = now_ns();
    for (i = 0; i < n; i++) {
        zg_rbtree_insert(&tree, &items[i].node);
    }
    t_ins = (now_ns() - t0) / (double)n;

    t0 = now_ns();
    for (i = 0; i < lookups; i++) {
        acc += (uintptr_t)zg_rbtree_lookup(&tree, probe[i], NULL, NULL);
    }
    t_rb = (now_ns() - t0) / (double)lookups;

    qsort(keys, n, sizeof(uint32_t), cmp_u32);
    t0 = now_ns();
    for (i = 0; i < lookups; i++) {
        acc += (uintptr_t)bsearch(&probe[i], keys, n, sizeof(uint32_t), cmp_u32);
    }
    t_bs = (now_ns() - t0) / (double)lookups;
    sink = acc;

    printf("%10zu %14.1f %14.1f %16.1f\n", n, t_ins, t_rb, t_bs);
    free(items);
    free(keys);
    free(probe);
}

static void mb_head(void *data, zg_http_req_t *r)
{
    sink += r->nhdrs;
    *(int *)data = 1;
}

static void mb_body(void *data, const char *p, size_t n)
{
    (void)data;
    sink += (uintptr_t)p[0] + n;
}

static void mb_done(void *data)
{
    *(int *)data = 2;
}

/* ns per request: the same head fed n times on one connection (feed, resume, next).
 * Instructions: MB_HEADS=N MB_HEAD=i MB_MODE=0|1 valgrind --tool=callgrind for two N,
 * subtracted (bench/README.md). */
static double bench_head(const char *head, int no_fast, size_t n)
{
    static const zg_http_in_handlers_t h = {mb_head, mb_body, mb_done};
    zg_http_limits_t lim = {.no_fast = (unsigned)no_fast};
    size_t len = strlen(head), room;
    int stop = 0;
    zg_http_in_t *in = zg_http_in_create(&lim, &h, &stop);
    double t0 = now_ns();

    for (size_t i = 0; i < n; i++) {
        char *b = zg_http_in_buffer(in, &room);

        memcpy(b, head, len);
        zg_http_in_feed(in, len);
        zg_http_in_resume(in);
        if (stop != 2) {
            fprintf(stderr, "head not parsed: %s\n", zg_http_in_error(in));
            exit(1);
        }
        zg_http_in_next(in);
        stop = 0;
    }
    t0 = (now_ns() - t0) / (double)n;
    zg_http_in_destroy(in);
    return t0;
}

static void bench_heads(void)
{
    static const struct {
        const char *name, *head;
    } heads[] = {
        {"GET, 2 headers (bench/)", "GET /limited HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                                    "X-Key: 12345\r\n\r\n"},
        {"GET, browser, 8 headers",
         "GET /app/page?id=42&x=y HTTP/1.1\r\nHost: app.example.com\r\n"
         "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
         "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
         "Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
         "Connection: keep-alive\r\nCookie: session=abcdef0123456789; theme=dark\r\n"
         "Upgrade-Insecure-Requests: 1\r\n\r\n"},
        {"POST, Content-Length 13 body", "POST /api HTTP/1.1\r\nHost: h\r\nX-Key: 1\r\n"
                                         "Content-Length: 13\r\n\r\n{\"a\":\"hello\"}"},
        {"POST, chunked (always llhttp)", "POST /api HTTP/1.1\r\nHost: h\r\nX-Key: 1\r\n"
                                          "Transfer-Encoding: chunked\r\n\r\n"
                                          "d\r\n{\"a\":\"hello\"}\r\n0\r\n\r\n"},
    };

    const char *e = getenv("MB_HEADS");
    size_t n = e ? (size_t)strtoul(e, NULL, 10) : 1000000;

    printf("\nrequest heads, ns per request (feed, resume, next), %zu each\n", n);
    printf("%-34s %12s %12s\n", "head", "fast path", "llhttp only");
    const char *only = getenv("MB_HEAD"); /* one head's index, for callgrind */
    const char *mode = getenv("MB_MODE");

    for (size_t i = 0; i < zg_nelems(heads); i++) {
        double f, l;

        if (only != NULL && strtoul(only, NULL, 10) != i) {
            continue;
        }
        if (mode != NULL) { /* MB_MODE=0: the fast path, 1: llhttp only */
            bench_head(heads[i].head, (int)strtol(mode, NULL, 10), n);
            continue;
        }
        bench_head(heads[i].head, 0, n / 10 + 1); /* warm up */
        f = bench_head(heads[i].head, 0, n);
        l = bench_head(heads[i].head, 1, n);
        printf("%-34s %12.1f %12.1f\n", heads[i].name, f, l);
    }
}

int main(void)
{
    if (getenv("MB_HEADS") != NULL) { /* MB_HEADS=N: only the heads, N times each */
        bench_heads();
        return 0;
    }
    static const size_t sizes[] = { 16, 64, 128, 512, 2048, 8192 };
    size_t zone = 64 * 1024 * 1024, i, rounds;
    void *addr = mmap(NULL, zone, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    zg_slab_pool_t *pool;

    if (addr == MAP_FAILED || (pool = zg_slab_init(addr, zone)) == NULL) {
        perror("zone");
        return 1;
    }

    printf("slab alloc+free, batches of %d, shuffled frees (ns per alloc+free)\n", BATCH);
    printf("%6s %14s %14s %14s\n", "size", "zg_slab_alloc", "..._locked", "malloc/free");
    for (i = 0; i < zg_nelems(sizes); i++) {
        double a, b, c;

        rounds = 4000;
        bench_alloc(pool, USE_SLAB, sizes[i], rounds / 10);    /* warm up */
        bench_alloc(pool, USE_MALLOC, sizes[i], rounds / 10);
        a = bench_alloc(pool, USE_SLAB, sizes[i], rounds);
        b = bench_alloc(pool, USE_SLAB_LOCKED, sizes[i], rounds);
        c = bench_alloc(pool, USE_MALLOC, sizes[i], rounds);
        printf("%6zu %14.1f %14.1f %14.1f\n", sizes[i], a, b, c);
    }
    if (zg_slab_validate(pool) != ZG_OK || pool->pages_free != pool->pages_total) {
        fprintf(stderr, "slab pool inconsistent after the run\n");
        return 1;
    }

    printf("\nrbtree (random 32-bit keys), ns per op, 1M lookups of present keys\n");
    printf("%10s %14s %14s %16s\n", "nodes", "insert", "rbtree lookup", "sorted bsearch");
    bench_rbtree(1000, 1000000);
    bench_rbtree(100000, 1000000);
    bench_rbtree(1000000, 1000000);

    munmap(addr, zone);
    bench_heads();
    return 0;
}
