/* zg_outq_rate.c — the send budget of an output queue (limit_rate,
 * limit_rate_after): `after` bytes at once, then `rate` bytes a second.  What a
 * flush brings beyond the budget is held back (counted in the queue's inflight, so
 * that `drained` waits for it, and a file segment behind it too) and sent by a
 * timer as the budget grows; a file segment's sendfile counts are capped by it. */
#include "zg_worker.h"

#include <stdlib.h>

#define ZG_RATE_QUANTUM_MAX (64 * 1024) /* bytes per timer tick at most */
#define ZG_RATE_TICKS 10                /* ticks a second at most */
#define ZG_RATE_START 8192              /* bytes at once when it starts */

struct zg_outq_rate_s {
    uv_timer_t timer;
    zg_outq_t *q;         /* NULL once the queue let go of it */
    zg_buf_t held;        /* bytes beyond the budget, sealed if TLS */
    size_t off;           /* sent up to here */
    uint64_t rate;        /* bytes a second */
    uint64_t after;       /* bytes before the rate applies */
    uint64_t sent;        /* since the start */
    uint64_t start;       /* uv_now() at the start, msec */
    unsigned waiting : 1; /* the timer runs */
    unsigned ending : 1;  /* its response is queued whole */
};

/* the bytes one tick sends: a tenth of a second's worth */
static uint64_t zg_rate_quantum(const zg_outq_rate_t *rt)
{
    uint64_t qn = rt->rate / ZG_RATE_TICKS;
    return qn == 0 ? 1 : qn > ZG_RATE_QUANTUM_MAX ? ZG_RATE_QUANTUM_MAX : qn;
}

uint64_t zg_rate_budget(uint64_t rate, uint64_t after, uint64_t elapsed_ms, uint64_t sent)
{
    uint64_t qn = rate / ZG_RATE_TICKS;
    /* a little at once (the head, the first bytes), then no more than the rate */
    uint64_t allowed = after + zg_min(qn == 0 ? 1 : qn, ZG_RATE_START) + rate * elapsed_ms / 1000;

    return allowed > sent ? allowed - sent : 0;
}

size_t zg_outq_rate_budget(zg_outq_t *q)
{
    zg_outq_rate_t *rt = q->rate;
    uint64_t b = zg_rate_budget(rt->rate, rt->after, uv_now(q->stream->loop) - rt->start,
                                rt->sent);

    return (size_t)zg_min(b, SIZE_MAX / 2);
}

void zg_outq_rate_sent(zg_outq_t *q, size_t n)
{
    q->rate->sent += n;
}

static void zg_rate_tick(uv_timer_t *t);

/* arms the timer for when the budget has grown by a tick's worth (or what is left) */
int zg_outq_rate_wait(zg_outq_t *q)
{
    zg_outq_rate_t *rt = q->rate;
    uint64_t need = zg_rate_quantum(rt), have = zg_outq_rate_budget(q), ms;
    uint64_t left = rt->held.len - rt->off;

    if (left == 0 && q->file) {
        left = (uint64_t)q->file_left;
    }
    if (left > 0 && left < need) {
        need = left;
    }
    ms = need > have ? ((need - have) * 1000 + rt->rate - 1) / rt->rate : 1;
    rt->waiting = 1;
    return uv_timer_start(&rt->timer, zg_rate_tick, ms ? ms : 1, 0) == 0 ? ZG_OK : ZG_ERROR;
}

/* sends what the budget allows of the held bytes; ZG_OK or ZG_ERROR */
static int zg_rate_send(zg_outq_t *q)
{
    zg_outq_rate_t *rt = q->rate;
    size_t left = rt->held.len - rt->off, n, now;

    if (left == 0) {
        return ZG_OK;
    }
    n = zg_min(zg_outq_rate_budget(q), left);
    if (n > 0) {
        if (zg_outq_write_raw(q, rt->held.data + rt->off, n, &now) != ZG_OK) {
            return ZG_ERROR;
        }
        q->inflight -= now;
        rt->sent += n;
        rt->off += n;
        if (rt->off == rt->held.len) {
            rt->off = rt->held.len = 0;
            if (rt->held.cap > ZG_RATE_QUANTUM_MAX * 4) {
                zg_buf_free(&rt->held);
            }
        }
    }
    if (rt->off < rt->held.len && !rt->waiting) {
        return zg_outq_rate_wait(q);
    }
    return ZG_OK;
}

int zg_outq_rate_flush(zg_outq_t *q)
{
    zg_outq_rate_t *rt = q->rate;

    if (rt->off > 0 && rt->off >= rt->held.len / 2) {
        memmove(rt->held.data, rt->held.data + rt->off, rt->held.len - rt->off);
        rt->held.len -= rt->off;
        rt->off = 0;
    }
    if (zg_buf_append(&rt->held, q->b.data, q->b.len) != ZG_OK) {
        q->b.len = 0;
        return ZG_ERROR;
    }
    q->inflight += q->b.len;
    q->b.len = 0;
    q->b.failed = 0;
    if (q->b.cap > ZG_RATE_QUANTUM_MAX) {
        zg_buf_free(&q->b); /* as zg_outq_flush does with a big drained buffer */
    }
    return zg_rate_send(q);
}

static void zg_rate_tick(uv_timer_t *t)
{
    zg_outq_rate_t *rt = t->data;
    zg_outq_t *q = rt->q;

    rt->waiting = 0;
    if (q == NULL) {
        return;
    }
    if (zg_rate_send(q) != ZG_OK) {
        if (q->failed) {
            q->failed(q->data, UV_EIO);
        }
        return;
    }
    if (q->inflight > 0) {
        return; /* zg_outq_written or the next tick goes on */
    }
    zg_outq_rate_idle(q);
    if (q->file) {
        zg_outq_file_send(q);
    } else if (q->drained) {
        q->drained(q->data);
    }
}

static void zg_rate_closed(uv_handle_t *h)
{
    zg_outq_rate_t *rt = h->data;

    zg_buf_free(&rt->held);
    free(rt);
}

int zg_outq_rate_start(zg_outq_t *q, uint64_t rate, uint64_t after)
{
    zg_outq_rate_t *rt = q->rate;

    if (rt == NULL) {
        if ((rt = calloc(1, sizeof(*rt))) == NULL) {
            return ZG_ERROR;
        }
        if (uv_timer_init(q->stream->loop, &rt->timer) != 0) {
            free(rt);
            return ZG_ERROR;
        }
        rt->timer.data = rt;
        rt->q = q;
        q->rate = rt;
    }
    rt->rate = rate;
    rt->after = after;
    rt->sent = 0;
    rt->start = uv_now(q->stream->loop);
    rt->ending = 0;
    return ZG_OK;
}

void zg_outq_rate_stop(zg_outq_t *q)
{
    zg_outq_rate_t *rt = q->rate;

    if (rt == NULL) {
        return;
    }
    q->rate = NULL;
    /* bytes held back are dropped with the stream: they are no longer in flight */
    q->inflight -= rt->held.len - rt->off;
    rt->q = NULL;
    uv_close((uv_handle_t *)&rt->timer, zg_rate_closed);
}

void zg_outq_rate_idle(zg_outq_t *q)
{
    if (q->rate->ending && q->inflight == 0 && q->b.len == 0 && !q->file) {
        zg_outq_rate_stop(q);
    }
}

void zg_outq_rate_end(zg_outq_t *q)
{
    if (q->rate != NULL) {
        q->rate->ending = 1;
        zg_outq_rate_idle(q);
    }
}

int zg_outq_rate_held(const zg_outq_t *q)
{
    return q->rate != NULL && q->rate->held.len > q->rate->off;
}
