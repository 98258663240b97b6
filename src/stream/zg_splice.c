/* zg_splice.c — the splice(2) relay of zg_splice.h.  Direction d moves bytes from
 * fd[d] to fd[1 - d] through pipe[d]; socket i is the source of direction i and the
 * destination of direction 1 - i, so poll[i] waits for what either needs of it. */
#include "zg_splice.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define ZG_SPLICE_ROUNDS 16 /* moves per direction and event: the loop's other work goes on */

static void zg_splice_poll_cb(uv_poll_t *h, int status, int events);

static void zg_splice_end(zg_splice_t *sp, int rc, int dir, int writing)
{
    if (sp->ended) {
        return;
    }
    sp->ended = 1;
    for (int i = 0; i < 2; i++) {
        if (sp->events[i] != 0) {
            uv_poll_stop(&sp->poll[i]);
            sp->events[i] = 0;
        }
    }
    sp->done(sp->data, rc, dir, writing);
}

/* moves what it can in direction d: 0, or a negated errno (*writing set) */
static int zg_splice_pump(zg_splice_t *sp, int d, int *writing)
{
    int src = sp->fd[d], dst = sp->fd[1 - d];
    ssize_t n;
    int moved;

    for (int round = 0; round < ZG_SPLICE_ROUNDS; round++) {
        moved = 0;
        if (!sp->eof[d] && sp->piped[d] < ZG_SPLICE_PIPE) {
            n = splice(src, NULL, sp->pipe[d][1], NULL, ZG_SPLICE_PIPE - sp->piped[d],
                       SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (n > 0) {
                sp->piped[d] += (size_t)n;
                sp->bytes[d] += (uint64_t)n;
                moved = 1;
            } else if (n == 0) {
                sp->eof[d] = 1;
            } else if (errno != EAGAIN && errno != EINTR) {
                *writing = 0;
                return -errno;
            }
        }
        if (sp->piped[d] > 0) {
            n = splice(sp->pipe[d][0], NULL, dst, NULL, sp->piped[d],
                       SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (n > 0) {
                sp->piped[d] -= (size_t)n;
                moved = 1;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                *writing = 1;
                return -errno;
            }
        }
        if (!moved) {
            break;
        }
        sp->active = uv_now(sp->loop);
    }
    return 0;
}

/* what poll[i] waits for: its socket's bytes while the pipe they go to is empty
 * (with bytes in it, the other side's room comes first: waiting for readable then
 * would spin on a socket whose bytes cannot move), room while bytes wait for it */
static int zg_splice_events(zg_splice_t *sp, int i)
{
    int ev = 0;

    if (!sp->eof[i] && sp->piped[i] == 0) {
        ev |= UV_READABLE;
    }
    if (sp->piped[1 - i] > 0) {
        ev |= UV_WRITABLE;
    }
    return ev;
}

static void zg_splice_run(zg_splice_t *sp)
{
    int rc, writing = 0, finished[2];

    for (int d = 0; d < 2; d++) {
        rc = zg_splice_pump(sp, d, &writing);
        if (rc < 0) {
            zg_splice_end(sp, rc, d, writing);
            return;
        }
    }
    for (int d = 0; d < 2; d++) {
        finished[d] = sp->eof[d] && sp->piped[d] == 0;
        if (finished[d] && sp->half_close && !sp->shut[d]) {
            sp->shut[d] = 1;
            if (shutdown(sp->fd[1 - d], SHUT_WR) != 0 && errno != ENOTCONN) {
                zg_splice_end(sp, -errno, d, 1);
                return;
            }
        }
    }
    if (sp->half_close ? (finished[0] && finished[1]) : (finished[0] || finished[1])) {
        zg_splice_end(sp, 0, 0, 0);
        return;
    }
    for (int i = 0; i < 2; i++) {
        int ev = zg_splice_events(sp, i);
        if (ev == sp->events[i]) {
            continue;
        }
        sp->events[i] = ev;
        if (ev == 0) {
            uv_poll_stop(&sp->poll[i]);
        } else if (uv_poll_start(&sp->poll[i], ev, zg_splice_poll_cb) != 0) {
            zg_splice_end(sp, -EIO, i, 0);
            return;
        }
    }
}

static void zg_splice_poll_cb(uv_poll_t *h, int status, int events)
{
    zg_splice_t *sp = h->data;

    (void)events;
    if (sp->ended || sp->closing) {
        return;
    }
    if (status < 0) {
        /* libuv says EBADF for any EPOLLERR and stops the handle: the socket's own
         * error (a reset) is the one to report */
        int i = h == &sp->poll[0] ? 0 : 1, err = 0;
        socklen_t len = sizeof(err);

        sp->events[i] = 0;
        if (getsockopt(sp->fd[i], SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
            zg_splice_end(sp, -err, i, 0);
            return;
        }
    }
    zg_splice_run(sp);
}

static void zg_splice_free(zg_splice_t *sp)
{
    for (int d = 0; d < 2; d++) {
        if (sp->fd[d] >= 0) {
            close(sp->fd[d]);
        }
        for (int k = 0; k < 2; k++) {
            if (sp->pipe[d][k] >= 0) {
                close(sp->pipe[d][k]);
            }
        }
    }
    free(sp);
}

int zg_splice_start(zg_splice_t **out, uv_loop_t *loop, int a, int b, int half_close,
                    zg_splice_done_pt done, void *data)
{
    zg_splice_t *sp = calloc(1, sizeof(*sp));
    int rc;

    if (sp == NULL) {
        return -ENOMEM;
    }
    sp->loop = loop;
    sp->half_close = half_close;
    sp->done = done;
    sp->data = data;
    sp->active = uv_now(loop);
    sp->fd[0] = sp->fd[1] = -1;
    sp->pipe[0][0] = sp->pipe[0][1] = sp->pipe[1][0] = sp->pipe[1][1] = -1;
    for (int d = 0; d < 2; d++) {
        if (pipe2(sp->pipe[d], O_NONBLOCK | O_CLOEXEC) != 0) {
            rc = -errno;
            zg_splice_free(sp);
            return rc;
        }
        /* a larger pipe moves more per call; the default size serves if refused */
        (void)fcntl(sp->pipe[d][1], F_SETPIPE_SZ, ZG_SPLICE_PIPE);
    }
    sp->fd[0] = fcntl(a, F_DUPFD_CLOEXEC, 0);
    sp->fd[1] = sp->fd[0] < 0 ? -1 : fcntl(b, F_DUPFD_CLOEXEC, 0);
    if (sp->fd[0] < 0 || sp->fd[1] < 0) {
        rc = -errno;
        zg_splice_free(sp);
        return rc;
    }
    for (int i = 0; i < 2; i++) {
        rc = uv_poll_init(loop, &sp->poll[i], sp->fd[i]);
        if (rc != 0) {
            /* the handles opened so far are closed, then the rest freed */
            if (i == 1) {
                sp->closing = 1;
                sp->open = 1;
                sp->closed = NULL;
                zg_splice_close(sp, NULL);
            } else {
                zg_splice_free(sp);
            }
            return rc;
        }
        sp->poll[i].data = sp;
        sp->open++;
    }
    *out = sp;
    zg_splice_run(sp);
    return 0;
}

static void zg_splice_closed(uv_handle_t *h)
{
    zg_splice_t *sp = h->data;
    void (*closed)(void *) = sp->closed;
    void *data = sp->data;

    if (--sp->open > 0) {
        return;
    }
    zg_splice_free(sp);
    if (closed != NULL) {
        closed(data);
    }
}

void zg_splice_close(zg_splice_t *sp, void (*closed)(void *data))
{
    int n = sp->open;

    sp->closing = 1;
    sp->ended = 1;
    sp->closed = closed;
    for (int i = 0; i < n; i++) {
        uv_close((uv_handle_t *)&sp->poll[i], zg_splice_closed);
    }
}
