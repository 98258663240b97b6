/* zg_deadline.h — a lazy deadline on a libuv timer (as nginx's timers): moving it
 * later costs a store; the timer fires at the earliest deadline ever scheduled and
 * re-arms itself until the deadline is reached, then calls `expired`. */
#ifndef ZG_DEADLINE_H
#define ZG_DEADLINE_H

#include <uv.h>

#include "zg_core.h"

typedef struct zg_deadline_s zg_deadline_t;
typedef void (*zg_deadline_pt)(zg_deadline_t *d);

struct zg_deadline_s {
    uv_timer_t timer;            /* timer.data: the owner's */
    uint64_t at;                 /* uv_now() ms when it expires, 0 = none */
    uint64_t due;                /* when `timer` fires, 0 = not armed */
    zg_deadline_pt expired;
};

/* the uv timer callback behind zg_deadline_set */
void zg_deadline_fire(uv_timer_t *t);

static inline void zg_deadline_init(uv_loop_t *loop, zg_deadline_t *d, zg_deadline_pt expired,
                                    void *data)
{
    uv_timer_init(loop, &d->timer);
    d->timer.data = data;
    d->at = 0;
    d->due = 0;
    d->expired = expired;
}

/* expires ms from now; 0 = never */
static inline void zg_deadline_set(zg_deadline_t *d, zg_msec_t ms)
{
    if (ms == 0) {
        d->at = 0;
        return;
    }
    d->at = uv_now(d->timer.loop) + ms;
    if (d->due == 0 || d->due > d->at) {
        d->due = d->at;
        uv_timer_start(&d->timer, zg_deadline_fire, ms, 0);
    }
}

#endif
