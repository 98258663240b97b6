/* zg_slab.c — slab allocator in a shared zone. */
#include "zg_slab.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ZG_SLAB_MAGIC   0x7a67736cu     /* "zgsl" */

/* page descriptor types */
#define ZG_SLAB_FREE    0               /* in a free run */
#define ZG_SLAB_PAGE    1               /* first page of a page allocation */
#define ZG_SLAB_BUSY    2               /* further page of a page allocation */
#define ZG_SLAB_SLOT    3               /* page of slots of one size */

/* below this shift the used-bitmap lives in the page's first slots */
#define ZG_SLAB_MAP_SHIFT 6

#ifdef ZG_DEBUG
#define zg_slab_junk(ptr, n) memset((ptr), 0xA5, (n))
#else
#define zg_slab_junk(ptr, n)
#endif

static zg_slab_page_t *zg_slab_alloc_pages(zg_slab_pool_t *p, size_t n);
static void zg_slab_free_pages(zg_slab_pool_t *p, zg_slab_page_t *page, size_t n);

/* slots per page of slot size 1 << shift */
static inline unsigned zg_slab_nslots(unsigned shift)
{
    return ZG_SLAB_PAGE_SIZE >> shift;
}

/* slots at the page start that hold the bitmap */
static inline unsigned zg_slab_reserved(unsigned shift)
{
    unsigned map_bytes;

    if (shift >= ZG_SLAB_MAP_SHIFT) {
        return 0;
    }
    map_bytes = zg_slab_nslots(shift) / 8;
    return (map_bytes + (1u << shift) - 1) >> shift;
}

/* usable slots per page */
static inline unsigned zg_slab_cap(unsigned shift)
{
    return zg_slab_nslots(shift) - zg_slab_reserved(shift);
}

static inline size_t zg_slab_index(zg_slab_pool_t *p, zg_slab_page_t *page)
{
    return (size_t)(page - p->pages);
}

static inline unsigned char *zg_slab_page_addr(zg_slab_pool_t *p, zg_slab_page_t *page)
{
    return p->pages_start + (zg_slab_index(p, page) << ZG_SLAB_PAGE_SHIFT);
}

static inline void zg_slab_link(zg_slab_page_t *head, zg_slab_page_t *page)
{
    page->next = head->next;
    page->prev = head;
    head->next->prev = page;
    head->next = page;
}

static inline void zg_slab_unlink(zg_slab_page_t *page)
{
    page->prev->next = page->next;
    page->next->prev = page->prev;
    page->next = NULL;
    page->prev = NULL;
}

zg_slab_pool_t *zg_slab_init(void *addr, size_t size)
{
    zg_slab_pool_t *p = addr;
    unsigned char *base, *end, *pages_start;
    size_t n, i;

    if (addr == NULL || ((uintptr_t)addr & 7) != 0 || size < sizeof(zg_slab_pool_t)) {
        return NULL;
    }
    end = (unsigned char *)addr + size;
    base = (unsigned char *)zg_align((uintptr_t)addr + sizeof(zg_slab_pool_t), 8);
    if (base >= end) {
        return NULL;
    }
    n = (size_t)(end - base) / (ZG_SLAB_PAGE_SIZE + sizeof(zg_slab_page_t));
    for (;;) {
        if (n == 0) {
            return NULL;
        }
        pages_start = (unsigned char *)zg_align((uintptr_t)(base + n * sizeof(zg_slab_page_t)),
                                                ZG_SLAB_PAGE_SIZE);
        if (pages_start < end && (size_t)(end - pages_start) / ZG_SLAB_PAGE_SIZE >= n) {
            break;
        }
        n--;
    }

    memset(p, 0, sizeof(zg_slab_pool_t));
    if (zg_shmtx_init(&p->mutex) != ZG_OK) {
        return NULL;
    }
    p->start = addr;
    p->end = end;
    p->pages_start = pages_start;
    p->pages = (zg_slab_page_t *)base;
    p->pages_total = n;
    p->pages_free = n;
    p->data = NULL;

    memset(p->pages, 0, n * sizeof(zg_slab_page_t));
    p->free.next = p->free.prev = &p->free;
    for (i = 0; i < ZG_SLAB_NSLOTS; i++) {
        p->slots[i].next = p->slots[i].prev = &p->slots[i];
        p->slots[i].shift = (uint8_t)(i + ZG_SLAB_MIN_SHIFT);
    }
    p->pages[0].npages = (uint32_t)n;
    p->pages[n - 1].npages = (uint32_t)n;
    zg_slab_link(&p->free, &p->pages[0]);
    p->magic = ZG_SLAB_MAGIC;
    return p;
}

void *zg_slab_alloc(zg_slab_pool_t *p, size_t size)
{
    void *ptr;

    zg_shmtx_lock(&p->mutex);
    ptr = zg_slab_alloc_locked(p, size);
    zg_shmtx_unlock(&p->mutex);
    return ptr;
}

void *zg_slab_calloc(zg_slab_pool_t *p, size_t size)
{
    void *ptr;

    zg_shmtx_lock(&p->mutex);
    ptr = zg_slab_calloc_locked(p, size);
    zg_shmtx_unlock(&p->mutex);
    return ptr;
}

void *zg_slab_calloc_locked(zg_slab_pool_t *p, size_t size)
{
    void *ptr = zg_slab_alloc_locked(p, size);

    if (ptr != NULL) {
        memset(ptr, 0, size);
    }
    return ptr;
}

/* first free slot of a page with at least one */
static unsigned zg_slab_take_slot(zg_slab_pool_t *p, zg_slab_page_t *page)
{
    unsigned shift = page->shift, i, nwords;
    uint64_t *map;

    if (shift >= ZG_SLAB_MAP_SHIFT) {
        i = (unsigned)__builtin_ctzll(~page->map);
        page->map |= (uint64_t)1 << i;
        return i;
    }
    map = (uint64_t *)(void *)zg_slab_page_addr(p, page);
    nwords = zg_slab_nslots(shift) / 64;
    for (i = 0; i < nwords; i++) {
        if (map[i] != ~(uint64_t)0) {
            unsigned bit = (unsigned)__builtin_ctzll(~map[i]);
            map[i] |= (uint64_t)1 << bit;
            return i * 64 + bit;
        }
    }
    return 0; /* unreachable: the page is on the partial list */
}

void *zg_slab_alloc_locked(zg_slab_pool_t *p, size_t size)
{
    zg_slab_page_t *page, *head;
    unsigned shift, slot, idx, cap;
    size_t n;

    if (size > ZG_SLAB_MAX_SIZE) {
        p->page_reqs++;
        n = (size >> ZG_SLAB_PAGE_SHIFT) + ((size & (ZG_SLAB_PAGE_SIZE - 1)) != 0);
        page = zg_slab_alloc_pages(p, n);
        if (page == NULL) {
            p->page_fails++;
            return NULL;
        }
        page->type = ZG_SLAB_PAGE;
        page->npages = (uint32_t)n;
        for (size_t i = 1; i < n; i++) {
            page[i].type = ZG_SLAB_BUSY;
        }
        return zg_slab_page_addr(p, page);
    }

    shift = size <= ZG_SLAB_MIN_SIZE ? ZG_SLAB_MIN_SHIFT
                                     : (unsigned)(64 - __builtin_clzll((uint64_t)size - 1));
    slot = shift - ZG_SLAB_MIN_SHIFT;
    head = &p->slots[slot];
    cap = zg_slab_cap(shift);
    p->stats[slot].reqs++;

    page = head->next;
    if (page == head) {
        page = zg_slab_alloc_pages(p, 1);
        if (page == NULL) {
            p->stats[slot].fails++;
            return NULL;
        }
        page->type = ZG_SLAB_SLOT;
        page->shift = (uint8_t)shift;
        page->npages = 1;
        page->inuse = 0;
        page->map = 0;
        if (shift < ZG_SLAB_MAP_SHIFT) {
            uint64_t *map = (uint64_t *)(void *)zg_slab_page_addr(p, page);
            unsigned nwords = zg_slab_nslots(shift) / 64, r = zg_slab_reserved(shift);

            memset(map, 0, nwords * sizeof(uint64_t));
            map[0] = ((uint64_t)1 << r) - 1;    /* r < 64 */
        }
        p->stats[slot].total += cap;
        zg_slab_link(head, page);
    }

    idx = zg_slab_take_slot(p, page);
    page->inuse++;
    if (page->inuse == cap) {
        zg_slab_unlink(page);
    }
    p->stats[slot].used++;
    return zg_slab_page_addr(p, page) + ((size_t)idx << shift);
}

void zg_slab_free(zg_slab_pool_t *p, void *ptr)
{
    zg_shmtx_lock(&p->mutex);
    zg_slab_free_locked(p, ptr);
    zg_shmtx_unlock(&p->mutex);
}

/* descriptor of the page holding ptr, NULL if outside the pages */
static zg_slab_page_t *zg_slab_page_of(zg_slab_pool_t *p, const void *ptr)
{
    const unsigned char *c = ptr;

    if (c < p->pages_start
        || c >= p->pages_start + (p->pages_total << ZG_SLAB_PAGE_SHIFT)) {
        return NULL;
    }
    return &p->pages[(size_t)(c - p->pages_start) >> ZG_SLAB_PAGE_SHIFT];
}

void zg_slab_free_locked(zg_slab_pool_t *p, void *ptr)
{
    zg_slab_page_t *page;
    unsigned char *addr;
    unsigned shift, slot, idx, cap;
    uint64_t *word, bit;
    size_t off;

    if (ptr == NULL) {
        return;
    }
    page = zg_slab_page_of(p, ptr);
    if (page == NULL) {
        goto bad;
    }
    addr = zg_slab_page_addr(p, page);
    off = (size_t)((unsigned char *)ptr - addr);

    switch (page->type) {

    case ZG_SLAB_PAGE:
        if (off != 0) {
            goto bad;
        }
        zg_slab_junk(ptr, (size_t)page->npages << ZG_SLAB_PAGE_SHIFT);
        zg_slab_free_pages(p, page, page->npages);
        return;

    case ZG_SLAB_SLOT:
        shift = page->shift;
        if ((off & ((1u << shift) - 1)) != 0) {
            goto bad;
        }
        idx = (unsigned)(off >> shift);
        if (idx < zg_slab_reserved(shift)) {
            goto bad;
        }
        if (shift >= ZG_SLAB_MAP_SHIFT) {
            word = &page->map;
        } else {
            word = (uint64_t *)(void *)addr + idx / 64;
        }
        bit = (uint64_t)1 << (idx % 64);
        if ((*word & bit) == 0) {
            goto bad;
        }
        *word &= ~bit;
        zg_slab_junk(ptr, (size_t)1 << shift);

        slot = shift - ZG_SLAB_MIN_SHIFT;
        cap = zg_slab_cap(shift);
        if (page->inuse == cap) {
            zg_slab_link(&p->slots[slot], page);
        }
        page->inuse--;
        p->stats[slot].used--;
        if (page->inuse == 0) {
            zg_slab_unlink(page);
            p->stats[slot].total -= cap;
            zg_slab_free_pages(p, page, 1);
        }
        return;

    default:
        goto bad;
    }

bad:
    p->bad_frees++;
}

size_t zg_slab_size_locked(zg_slab_pool_t *p, void *ptr)
{
    zg_slab_page_t *page = zg_slab_page_of(p, ptr);
    size_t off;
    unsigned idx;

    if (page == NULL) {
        return 0;
    }
    off = (size_t)((unsigned char *)ptr - zg_slab_page_addr(p, page));
    if (page->type == ZG_SLAB_PAGE) {
        return off == 0 ? (size_t)page->npages << ZG_SLAB_PAGE_SHIFT : 0;
    }
    if (page->type != ZG_SLAB_SLOT || (off & (((size_t)1 << page->shift) - 1)) != 0) {
        return 0;
    }
    idx = (unsigned)(off >> page->shift);
    if (idx < zg_slab_reserved(page->shift)) {
        return 0;
    }
    if (page->shift >= ZG_SLAB_MAP_SHIFT) {
        if ((page->map & ((uint64_t)1 << idx)) == 0) {
            return 0;
        }
    } else {
        uint64_t *map = (uint64_t *)(void *)zg_slab_page_addr(p, page);
        if ((map[idx / 64] & ((uint64_t)1 << (idx % 64))) == 0) {
            return 0;
        }
    }
    return (size_t)1 << page->shift;
}

/* first fit; the rest of the run stays free */
static zg_slab_page_t *zg_slab_alloc_pages(zg_slab_pool_t *p, size_t n)
{
    zg_slab_page_t *page, *rest;
    size_t len;

    if (n > p->pages_free) {
        return NULL;
    }
    for (page = p->free.next; page != &p->free; page = page->next) {
        len = page->npages;
        if (len < n) {
            continue;
        }
        zg_slab_unlink(page);
        if (len > n) {
            rest = page + n;
            rest->type = ZG_SLAB_FREE;
            rest->npages = (uint32_t)(len - n);
            page[len - 1].npages = (uint32_t)(len - n);
            zg_slab_link(&p->free, rest);
        }
        p->pages_free -= n;
        page->npages = (uint32_t)n;
        return page;
    }
    return NULL;
}

static void zg_slab_free_pages(zg_slab_pool_t *p, zg_slab_page_t *page, size_t n)
{
    zg_slab_page_t *nb;
    size_t i, len;

    p->pages_free += n;
    for (i = 0; i < n; i++) {
        page[i].type = ZG_SLAB_FREE;
        page[i].shift = 0;
        page[i].inuse = 0;
        page[i].map = 0;
        page[i].npages = 0;
    }

    nb = page + n;
    if (zg_slab_index(p, nb) < p->pages_total && nb->type == ZG_SLAB_FREE) {
        /* the run after us starts at nb */
        len = nb->npages;
        zg_slab_unlink(nb);
        nb->npages = 0;
        n += len;
    }
    if (page > p->pages && page[-1].type == ZG_SLAB_FREE) {
        /* page[-1] ends a run */
        len = page[-1].npages;
        page[-1].npages = 0;
        page -= len;
        zg_slab_unlink(page);
        n += len;
    }
    page->npages = (uint32_t)n;
    page[n - 1].npages = (uint32_t)n;
    zg_slab_link(&p->free, page);
}

int zg_slab_validate(zg_slab_pool_t *p)
{
    zg_slab_page_t *page, *head;
    uint64_t total[ZG_SLAB_NSLOTS] = { 0 }, used[ZG_SLAB_NSLOTS] = { 0 };
    size_t partial[ZG_SLAB_NSLOTS] = { 0 };
    size_t i, j, n, runs = 0, nfree = 0, steps;
    unsigned shift, cap, bits, s;

    if (p == NULL || p->magic != ZG_SLAB_MAGIC || p->pages_free > p->pages_total
        || (unsigned char *)p != p->start
        || p->pages_start + (p->pages_total << ZG_SLAB_PAGE_SHIFT) > p->end) {
        return ZG_ERROR;
    }

    for (i = 0; i < p->pages_total; /* void */) {
        page = &p->pages[i];
        switch (page->type) {

        case ZG_SLAB_FREE:
            n = page->npages;
            if (n == 0 || i + n > p->pages_total || page->next == NULL
                || page->next->prev != page || page->prev->next != page
                || page[n - 1].npages != n) {
                return ZG_ERROR;
            }
            for (j = 1; j < n; j++) {
                if (page[j].type != ZG_SLAB_FREE || page[j].next != NULL) {
                    return ZG_ERROR;
                }
            }
            if (i + n < p->pages_total && page[n].type == ZG_SLAB_FREE) {
                return ZG_ERROR;        /* not coalesced */
            }
            runs++;
            nfree += n;
            i += n;
            break;

        case ZG_SLAB_PAGE:
            n = page->npages;
            if (n == 0 || i + n > p->pages_total || page->next != NULL) {
                return ZG_ERROR;
            }
            for (j = 1; j < n; j++) {
                if (page[j].type != ZG_SLAB_BUSY) {
                    return ZG_ERROR;
                }
            }
            i += n;
            break;

        case ZG_SLAB_SLOT:
            shift = page->shift;
            if (shift < ZG_SLAB_MIN_SHIFT || shift >= ZG_SLAB_PAGE_SHIFT) {
                return ZG_ERROR;
            }
            s = shift - ZG_SLAB_MIN_SHIFT;
            cap = zg_slab_cap(shift);
            if (shift >= ZG_SLAB_MAP_SHIFT) {
                if (cap < 64 && (page->map >> cap) != 0) {
                    return ZG_ERROR;
                }
                bits = (unsigned)__builtin_popcountll(page->map);
            } else {
                uint64_t *map = (uint64_t *)(void *)zg_slab_page_addr(p, page);
                unsigned r = zg_slab_reserved(shift);

                if ((map[0] & (((uint64_t)1 << r) - 1)) != (((uint64_t)1 << r) - 1)) {
                    return ZG_ERROR;
                }
                bits = 0;
                for (j = 0; j < zg_slab_nslots(shift) / 64; j++) {
                    bits += (unsigned)__builtin_popcountll(map[j]);
                }
                bits -= r;
            }
            if (page->inuse == 0 || page->inuse > cap || bits != page->inuse) {
                return ZG_ERROR;
            }
            if ((page->inuse < cap) != (page->next != NULL)) {
                return ZG_ERROR;
            }
            if (page->next != NULL) {
                if (page->next->prev != page || page->prev->next != page) {
                    return ZG_ERROR;
                }
                partial[s]++;
            }
            total[s] += cap;
            used[s] += page->inuse;
            i++;
            break;

        default:
            return ZG_ERROR;            /* BUSY without its PAGE, or garbage */
        }
    }

    if (nfree != p->pages_free) {
        return ZG_ERROR;
    }
    steps = 0;
    for (page = p->free.next; page != &p->free; page = page->next) {
        if (++steps > runs || page < p->pages || page >= p->pages + p->pages_total
            || page->type != ZG_SLAB_FREE
            || (page > p->pages && page[-1].type == ZG_SLAB_FREE)) {
            return ZG_ERROR;
        }
    }
    if (steps != runs) {
        return ZG_ERROR;
    }

    for (s = 0; s < ZG_SLAB_NSLOTS; s++) {
        if (total[s] != p->stats[s].total || used[s] != p->stats[s].used) {
            return ZG_ERROR;
        }
        head = &p->slots[s];
        steps = 0;
        for (page = head->next; page != head; page = page->next) {
            if (++steps > partial[s] || page < p->pages
                || page >= p->pages + p->pages_total || page->type != ZG_SLAB_SLOT
                || page->shift != s + ZG_SLAB_MIN_SHIFT) {
                return ZG_ERROR;
            }
        }
        if (steps != partial[s]) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

static void zg_slab_append(char *buf, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void zg_slab_append(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    if (*off < len) {
        n = vsnprintf(buf + *off, len - *off, fmt, ap);
    } else {
        n = vsnprintf(NULL, 0, fmt, ap);
    }
    va_end(ap);
    if (n > 0) {
        *off += (size_t)n;
    }
}

size_t zg_slab_stat_render(zg_slab_pool_t *p, const char *name, char *buf, size_t len)
{
    zg_slab_page_t *page;
    size_t off = 0, kb = ZG_SLAB_PAGE_SIZE / 1024;
    unsigned s;

    if (len > 0) {
        buf[0] = '\0';
    }
    zg_slab_append(buf, len, &off, "* shared memory: %s\n", name);

    zg_shmtx_lock(&p->mutex);

    zg_slab_append(buf, len, &off, "total:%12zu(KB) free:%12zu(KB) size:%12zu(KB)\n",
                   (size_t)(p->end - p->start) / 1024, p->pages_free * kb, kb);

    for (page = p->free.next; page != &p->free; page = page->next) {
        zg_slab_append(buf, len, &off, "pages:%12zu(KB) start:%016" PRIXPTR " end:%016" PRIXPTR "\n",
                       (size_t)page->npages * kb, (uintptr_t)p->pages_start,
                       (uintptr_t)p->end);
    }

    for (s = 0; s < ZG_SLAB_NSLOTS; s++) {
        zg_slab_append(buf, len, &off,
                       "slot:%12zu(Bytes) total:%12" PRIu64 " used:%12" PRIu64
                       " reqs:%12" PRIu64 " fails:%12" PRIu64 "\n",
                       (size_t)1 << (s + ZG_SLAB_MIN_SHIFT), p->stats[s].total,
                       p->stats[s].used, p->stats[s].reqs, p->stats[s].fails);
    }

    zg_shmtx_unlock(&p->mutex);
    return off;
}
