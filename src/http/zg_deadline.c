/* zg_deadline.c — the lazy deadline's timer callback. */
#include "zg_deadline.h"

void zg_deadline_fire(uv_timer_t *t)
{
    zg_deadline_t *d = zg_data_of(t, zg_deadline_t, timer);
    uint64_t now;

    d->due = 0;
    if (d->at == 0) {
        return;
    }
    now = uv_now(t->loop);
    if (now < d->at) {
        d->due = d->at;
        uv_timer_start(&d->timer, zg_deadline_fire, d->at - now, 0);
        return;
    }
    d->at = 0;
    d->expired(d);
}
