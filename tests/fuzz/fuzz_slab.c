/* fuzz_slab.c — libFuzzer: the input is a zone size and a sequence of slab
 * alloc / calloc / free / bad-free operations, replayed against a model of the
 * live allocations.  After every operation: no two live allocations overlap,
 * each is aligned (its slot size, or a page) and inside the pages, every live
 * allocation still holds the bytes written into it, zg_slab_validate() passes,
 * and (every 8th operation, and at the end) the page accounting printed by
 * zg_slab_stat_render() adds up to the pool.
 *
 * Input: byte 0-1 zone size; then 3 bytes per operation:
 *   op & 7: 0-2 alloc, 3 calloc, 4-5 free live[arg], 6 free a bad pointer, 7 free all
 *   op >> 3 with the next two bytes picks the size: tiny, a power of two, any
 *   size up to a half page, or one to six pages. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_slab.h"

#define FZ_MAX_PAGES 72
#define FZ_ZONE_MAX  ((FZ_MAX_PAGES + 2) * ZG_SLAB_PAGE_SIZE)
#define FZ_MAX_LIVE  2048

typedef struct {
    unsigned char *ptr;
    size_t size;        /* requested */
    size_t usable;      /* slot size or pages */
    unsigned char tag;
} fz_alloc_t;

static unsigned char fz_zone[FZ_ZONE_MAX] __attribute__((aligned(ZG_SLAB_PAGE_SIZE)));
static fz_alloc_t fz_live[FZ_MAX_LIVE];
static size_t fz_nlive;
static char fz_text[16384];
/* fz_pat[tag + i] == (unsigned char)(tag + i): the bytes written into an allocation */
static unsigned char fz_pat[256 + 6 * ZG_SLAB_PAGE_SIZE];
static const unsigned char fz_zero[ZG_SLAB_MAX_SIZE];

#define FZ_CHECK(cond)                                                               \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "fuzz_slab: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

static unsigned fz_shift(size_t size)
{
    unsigned s = ZG_SLAB_MIN_SHIFT;

    while (((size_t)1 << s) < size) {
        s++;
    }
    return s;
}

/* usable slots in a page of 1 << shift byte slots (the bitmap of 8..32-byte
 * slots takes the first slots of the page) */
static uint64_t fz_cap(unsigned shift)
{
    size_t n = (size_t)ZG_SLAB_PAGE_SIZE >> shift, reserved = 0;

    if (shift < 6) {
        reserved = (n / 8 + ((size_t)1 << shift) - 1) >> shift;
    }
    return n - reserved;
}

static size_t fz_size(unsigned kind, unsigned a, unsigned b)
{
    unsigned v = a | (b << 8);

    switch (kind % 6) {
    case 0:
        return v % 9;                                   /* 0..8, 0 counts as 1 */
    case 1:
        return (size_t)1 << (v % 12);                   /* 1 .. 2048 exactly */
    case 2:
        return 1 + v % ZG_SLAB_MAX_SIZE;                /* any slot size */
    case 3:
        return ((size_t)1 << (3 + v % 9)) + 1;          /* just over a slot size */
    case 4:
        return ZG_SLAB_MAX_SIZE + 1 + v % (ZG_SLAB_PAGE_SIZE * 2); /* 1-3 pages */
    default:
        return (size_t)ZG_SLAB_PAGE_SIZE * (1 + v % 6) - (v & 1); /* up to 6 pages */
    }
}

static void fz_check_alloc(zg_slab_pool_t *p, const fz_alloc_t *a)
{
    uintptr_t u = (uintptr_t)a->ptr;

    FZ_CHECK(a->ptr >= p->pages_start);
    FZ_CHECK(a->ptr + a->usable <= p->pages_start
                                   + (p->pages_total << ZG_SLAB_PAGE_SHIFT));
    FZ_CHECK(a->ptr + a->usable <= p->end);
    if (a->size > ZG_SLAB_MAX_SIZE) {
        FZ_CHECK((u & (ZG_SLAB_PAGE_SIZE - 1)) == 0);
        FZ_CHECK(a->usable >= a->size && a->usable - a->size < ZG_SLAB_PAGE_SIZE);
    } else {
        FZ_CHECK((u & (a->usable - 1)) == 0);
        FZ_CHECK(a->usable == ((size_t)1 << fz_shift(a->size ? a->size : 1)));
    }
    for (size_t i = 0; i < fz_nlive; i++) {
        const fz_alloc_t *o = &fz_live[i];

        if (o != a) {
            FZ_CHECK(a->ptr + a->usable <= o->ptr || o->ptr + o->usable <= a->ptr);
        }
    }
}

static void fz_check_contents(const fz_alloc_t *a)
{
    FZ_CHECK(memcmp(a->ptr, fz_pat + a->tag, a->size ? a->size : 1) == 0);
}

static uint64_t fz_num(const char *s, const char *key)
{
    const char *k = strstr(s, key);

    FZ_CHECK(k != NULL);
    return strtoull(k + strlen(key), NULL, 10);
}

/* the text /slab_stat shows agrees with the pool and the model */
static void fz_check_render(zg_slab_pool_t *p)
{
    uint64_t used[ZG_SLAB_NSLOTS] = { 0 }, run_kb = 0, free_kb, slot_pages = 0;
    size_t len, page_alloc_pages = 0, nslot_lines = 0;
    char *line, *save;

    for (size_t i = 0; i < fz_nlive; i++) {
        if (fz_live[i].size > ZG_SLAB_MAX_SIZE) {
            page_alloc_pages += fz_live[i].usable / ZG_SLAB_PAGE_SIZE;
        } else {
            used[fz_shift(fz_live[i].usable) - ZG_SLAB_MIN_SHIFT]++;
        }
    }

    len = zg_slab_stat_render(p, "fuzz", fz_text, sizeof(fz_text));
    FZ_CHECK(len < sizeof(fz_text));
    FZ_CHECK(strncmp(fz_text, "* shared memory: fuzz\n", 22) == 0);
    free_kb = fz_num(fz_text, "free:");
    FZ_CHECK(fz_num(fz_text, "total:") == (uint64_t)(p->end - p->start) / 1024);
    FZ_CHECK(free_kb == p->pages_free * (ZG_SLAB_PAGE_SIZE / 1024));

    for (line = strtok_r(fz_text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "pages:", 6) == 0) {
            run_kb += fz_num(line, "pages:");
        } else if (strncmp(line, "slot:", 5) == 0) {
            uint64_t size = fz_num(line, "slot:"), total = fz_num(line, "total:");
            uint64_t u = fz_num(line, "used:");
            unsigned shift = fz_shift(size), s = shift - ZG_SLAB_MIN_SHIFT;

            FZ_CHECK(s == nslot_lines && size == (uint64_t)1 << shift);
            FZ_CHECK(u == used[s] && u <= total);
            FZ_CHECK(total % fz_cap(shift) == 0);
            FZ_CHECK(fz_num(line, "fails:") <= fz_num(line, "reqs:"));
            slot_pages += total / fz_cap(shift);
            nslot_lines++;
        }
    }
    FZ_CHECK(nslot_lines == ZG_SLAB_NSLOTS);
    FZ_CHECK(run_kb == free_kb);
    /* every page is free, a slot page or part of a page allocation */
    FZ_CHECK(p->pages_free + slot_pages + page_alloc_pages == p->pages_total);
}

static void fz_free_at(zg_slab_pool_t *p, size_t i)
{
    fz_check_contents(&fz_live[i]);
    zg_slab_free(p, fz_live[i].ptr);
    fz_live[i] = fz_live[--fz_nlive];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zg_slab_pool_t *p;
    size_t zsize, i, n = 0;
    uint64_t bad;

    if (size < 2) {
        return 0;
    }
    /* 8 .. FZ_MAX_PAGES pages plus the header, not always a page multiple */
    zsize = (8 + data[0] % (FZ_MAX_PAGES - 8)) * (size_t)ZG_SLAB_PAGE_SIZE
            + (size_t)data[1] * 8;
    if (zsize > FZ_ZONE_MAX) {
        zsize = FZ_ZONE_MAX;
    }
    if (fz_pat[1] == 0) {
        for (i = 0; i < sizeof(fz_pat); i++) {
            fz_pat[i] = (unsigned char)i;
        }
    }
    p = zg_slab_init(fz_zone, zsize);
    FZ_CHECK(p != NULL);
    fz_nlive = 0;

    for (i = 2; i + 3 <= size; i += 3, n++) {
        unsigned op = data[i] & 7, kind = data[i] >> 3;
        unsigned a = data[i + 1], b = data[i + 2];

        if (op <= 3 && fz_nlive < FZ_MAX_LIVE) {
            size_t want = fz_size(kind, a, b);
            unsigned char *ptr = op == 3 ? zg_slab_calloc(p, want) : zg_slab_alloc(p, want);

            if (ptr != NULL) {
                fz_alloc_t *al = &fz_live[fz_nlive++];
                size_t fill = want ? want : 1;

                al->ptr = ptr;
                al->size = want;
                zg_shmtx_lock(&p->mutex);
                al->usable = zg_slab_size_locked(p, ptr);
                zg_shmtx_unlock(&p->mutex);
                al->tag = (unsigned char)(a ^ n);
                if (op == 3) {
                    for (size_t k = 0; k < want; k += sizeof(fz_zero)) {
                        size_t m = want - k < sizeof(fz_zero) ? want - k : sizeof(fz_zero);
                        FZ_CHECK(memcmp(ptr + k, fz_zero, m) == 0);
                    }
                }
                fz_check_alloc(p, al);
                memcpy(ptr, fz_pat + al->tag, fill);
            } else {
                /* only a pool without room says no: a free page means a slot fits */
                FZ_CHECK(want > ZG_SLAB_MAX_SIZE || p->pages_free == 0);
            }
        } else if ((op == 4 || op == 5) && fz_nlive > 0) {
            fz_free_at(p, (a | (b << 8)) % fz_nlive);
        } else if (op == 6) {
            /* pointers the pool did not hand out are counted and ignored */
            unsigned char *q;

            bad = p->bad_frees;
            if (fz_nlive > 0 && (a & 1)) {
                fz_alloc_t *al = &fz_live[b % fz_nlive];
                q = al->ptr + 1 + (a >> 1) % al->usable;
                if (q >= al->ptr + al->usable) {
                    q = al->ptr + 1;
                }
            } else {
                q = fz_zone + (size_t)(a | (b << 8)) % zsize;
                for (size_t k = 0; k < fz_nlive; k++) {
                    if (q == fz_live[k].ptr) {
                        q = NULL;   /* a live allocation: not a bad pointer */
                        break;
                    }
                }
                if (q == NULL) {
                    continue;
                }
            }
            zg_slab_free(p, q);
            FZ_CHECK(p->bad_frees == bad + 1);
        } else if (op == 7 && (a & 0xf) == 0) {
            while (fz_nlive > 0) {
                fz_free_at(p, fz_nlive - 1);
            }
            FZ_CHECK(p->pages_free == p->pages_total);
        }

        zg_shmtx_lock(&p->mutex);
        FZ_CHECK(zg_slab_validate(p) == ZG_OK);
        zg_shmtx_unlock(&p->mutex);
        if ((n & 7) == 0 || op >= 6) {
            fz_check_render(p);
        }
    }

    /* a freed allocation can be freed no more: a double free is refused */
    if (fz_nlive > 0) {
        unsigned char *q = fz_live[0].ptr;

        fz_free_at(p, 0);
        bad = p->bad_frees;
        zg_slab_free(p, q);
        FZ_CHECK(p->bad_frees == bad + 1);
    }
    while (fz_nlive > 0) {
        fz_free_at(p, fz_nlive - 1);
    }
    zg_shmtx_lock(&p->mutex);
    FZ_CHECK(zg_slab_validate(p) == ZG_OK);
    zg_shmtx_unlock(&p->mutex);
    FZ_CHECK(p->pages_free == p->pages_total);
    fz_check_render(p);
    return 0;
}
