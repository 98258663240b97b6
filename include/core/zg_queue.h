/* zg_queue.h — intrusive circular doubly linked list (ngx_queue's shape).
 *
 * A list is a sentinel zg_queue_t; entries embed a zg_queue_t link and are
 * reached back with zg_queue_data(q, type, link).  The head is the newest
 * entry when inserting at the head: an LRU inserts at the head on every use
 * and expires from zg_queue_last. */
#ifndef ZG_QUEUE_H
#define ZG_QUEUE_H

#include <stddef.h>

typedef struct zg_queue_s zg_queue_t;

struct zg_queue_s {
    zg_queue_t *prev;
    zg_queue_t *next;
};

/* Makes h an empty list (or a detached link). */
static inline void zg_queue_init(zg_queue_t *h)
{
    h->prev = h;
    h->next = h;
}

/* 1 if the list h has no entries. */
static inline int zg_queue_empty(const zg_queue_t *h)
{
    return h == h->prev;
}

/* Links x first in h. */
static inline void zg_queue_insert_head(zg_queue_t *h, zg_queue_t *x)
{
    x->next = h->next;
    x->next->prev = x;
    x->prev = h;
    h->next = x;
}

/* Links x after the link q (q may be an entry or the sentinel). */
static inline void zg_queue_insert_after(zg_queue_t *q, zg_queue_t *x)
{
    zg_queue_insert_head(q, x);
}

/* Links x last in h. */
static inline void zg_queue_insert_tail(zg_queue_t *h, zg_queue_t *x)
{
    x->prev = h->prev;
    x->prev->next = x;
    x->next = h;
    h->prev = x;
}

/* First entry of h; h itself (the sentinel) if empty. */
static inline zg_queue_t *zg_queue_head(const zg_queue_t *h)
{
    return h->next;
}

/* Last entry of h; h itself (the sentinel) if empty. */
static inline zg_queue_t *zg_queue_last(const zg_queue_t *h)
{
    return h->prev;
}

/* The end marker of h: iteration stops when it reaches it. */
static inline zg_queue_t *zg_queue_sentinel(zg_queue_t *h)
{
    return h;
}

static inline zg_queue_t *zg_queue_next(const zg_queue_t *q)
{
    return q->next;
}

static inline zg_queue_t *zg_queue_prev(const zg_queue_t *q)
{
    return q->prev;
}

/* Unlinks x from its list; x is left pointing at itself (detached), so a
 * second remove is harmless. */
static inline void zg_queue_remove(zg_queue_t *x)
{
    x->next->prev = x->prev;
    x->prev->next = x->next;
    x->prev = x;
    x->next = x;
}

/* The entry of type `type` whose member `link` is q. */
#define zg_queue_data(q, type, link) ((type *)((char *)(q) - offsetof(type, link)))

#endif
