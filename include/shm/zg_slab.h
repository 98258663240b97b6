/* zg_slab.h — the slab allocator inside a shared zone (nginx's ngx_slab design).
 *
 * The zone is: pool header | one page descriptor per page | pages (4 KiB,
 * page aligned).  Requests up to ZG_SLAB_MAX_SIZE (half a page) get a slot of
 * the next power of two, 8 .. 2048 bytes; slots of one size share pages.
 * Pages of 8/16/32-byte slots keep their used-bitmap in their own first slots
 * (so 504/254/127 usable slots), pages of 64..2048-byte slots in their
 * descriptor (64/32/16/8/4/2 slots).  Larger requests take whole contiguous
 * pages; freed pages coalesce with free neighbours; a slot page whose last
 * slot is freed goes back to the free pages. */
#ifndef ZG_SLAB_H
#define ZG_SLAB_H

#include "zg_core.h"
#include "zg_shmtx.h"

#define ZG_SLAB_PAGE_SHIFT 12
#define ZG_SLAB_PAGE_SIZE  4096
#define ZG_SLAB_MIN_SHIFT  3
#define ZG_SLAB_MIN_SIZE   8
#define ZG_SLAB_MAX_SIZE   (ZG_SLAB_PAGE_SIZE / 2)
#define ZG_SLAB_NSLOTS     (ZG_SLAB_PAGE_SHIFT - ZG_SLAB_MIN_SHIFT)

/* per slot size: total = slots in pages given to that size, used = slots
 * handed out, reqs = requests of that size, fails = requests that got NULL */
typedef struct {
    uint64_t total;
    uint64_t used;
    uint64_t reqs;
    uint64_t fails;
} zg_slab_stat_t;

typedef struct zg_slab_page_s zg_slab_page_t;

/* one per page; private to zg_slab.c */
struct zg_slab_page_s {
    uint64_t map;           /* slot page, 64..2048-byte slots: used bitmap */
    zg_slab_page_t *next;   /* free run list or partial slot page list */
    zg_slab_page_t *prev;
    uint32_t npages;        /* free run: length (first and last page); page alloc: length */
    uint16_t inuse;         /* slot page: slots handed out */
    uint8_t type;
    uint8_t shift;          /* slot page: log2(slot size) */
};

typedef struct zg_slab_pool_s {
    zg_shmtx_sh_t mutex;

    zg_slab_stat_t stats[ZG_SLAB_NSLOTS];
    size_t pages_total;             /* pages of the pool */
    size_t pages_free;              /* of them, not allocated */

    unsigned char *start;           /* whole zone: [start, end) */
    unsigned char *end;
    void *data;                     /* owner module's root, NULL at init */

    /* read-only */
    unsigned char *pages_start;     /* first page (page aligned); pages_start .. end */
    uint64_t page_reqs;             /* requests larger than ZG_SLAB_MAX_SIZE */
    uint64_t page_fails;
    uint64_t bad_frees;             /* frees of pointers the pool did not hand out */

    /* private */
    uint32_t magic;
    zg_slab_page_t *pages;          /* descriptors, pages_total of them */
    zg_slab_page_t free;            /* sentinel of the free runs (newest first) */
    zg_slab_page_t slots[ZG_SLAB_NSLOTS]; /* sentinels of slot pages with free slots */
} zg_slab_pool_t;

/* Lays a pool over [addr, addr + size): header at addr, the pages after it.
 * addr must be 8-byte aligned (a mapping is page aligned).  Initialises the
 * mutex.  Returns the pool (== addr), or NULL if size holds no page. */
zg_slab_pool_t *zg_slab_init(void *addr, size_t size);

/* Returns size bytes (size 0 counts as 1) or NULL when the pool is full;
 * never aborts.  Alignment: the slot size for small requests, a page for
 * larger ones.  Takes the pool lock; the _locked variant expects it held. */
void *zg_slab_alloc(zg_slab_pool_t *p, size_t size);
void *zg_slab_alloc_locked(zg_slab_pool_t *p, size_t size);

/* zg_slab_alloc with the memory zero-filled. */
void *zg_slab_calloc(zg_slab_pool_t *p, size_t size);
void *zg_slab_calloc_locked(zg_slab_pool_t *p, size_t size);

/* Returns ptr (from this pool) to it; NULL is ignored.  A pointer the pool
 * did not hand out, or a double free, is ignored and counted in bad_frees.
 * With ZG_DEBUG freed memory is filled with 0xA5. */
void zg_slab_free(zg_slab_pool_t *p, void *ptr);
void zg_slab_free_locked(zg_slab_pool_t *p, void *ptr);

/* Usable bytes of the allocation at ptr (its slot size or its pages), 0 if
 * ptr is not allocated.  Caller holds the lock. */
size_t zg_slab_size_locked(zg_slab_pool_t *p, void *ptr);

/* Caller holds the lock.  Checks page accounting, free runs (maximal, listed
 * once), slot pages (bitmaps vs counts vs stats, partial lists).  Returns
 * ZG_OK if consistent, ZG_ERROR otherwise. */
int zg_slab_validate(zg_slab_pool_t *p);

/* Renders the pool as Tengine's slab_stat module does:
 *   "* shared memory: NAME"
 *   "total:%12z(KB) free:%12z(KB) size:%12z(KB)"   zone size, free pages, page size
 *   "pages:%12z(KB) start:%p end:%p"               one per free run; first page, zone end
 *   "slot:%12z(Bytes) total:%12z used:%12z reqs:%12z fails:%12z"  x 9, 8 .. 2048
 * (%p = 16 upper-case hex digits).  Takes the lock.  snprintf semantics:
 * writes at most len bytes (NUL-terminated if len > 0) and returns the
 * length of the whole text. */
size_t zg_slab_stat_render(zg_slab_pool_t *p, const char *name, char *buf, size_t len);

#endif
