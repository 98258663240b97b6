/* zg_splice.h — relays bytes between two connected, non-blocking sockets with
 * splice(2) through one pipe per direction (SPLICE_F_NONBLOCK | SPLICE_F_MOVE): the
 * bytes never reach user space.  A direction reads its source only while its pipe
 * has room, so a slow reader holds back a fast sender with at most a pipe's worth
 * (ZG_SPLICE_PIPE) in flight.  The relay polls dups of the two descriptors, so the
 * libuv handles that own them stay as they are (closed by their owner). */
#ifndef ZG_SPLICE_H
#define ZG_SPLICE_H

#include <stdint.h>
#include <uv.h>

#define ZG_SPLICE_PIPE (256 * 1024) /* asked pipe size (the kernel's default is 64 KB) */

typedef struct zg_splice_s zg_splice_t;

/* The relay ended: rc 0 when it is done (half_close: both sources ended and every
 * byte went out, each end passed on as shutdown(SHUT_WR) of the other side; else
 * the first source that ended, its bytes out); rc < 0 (a negated errno) when
 * reading the source of direction dir (writing = 0) or writing its destination
 * failed.  Called once; the relay does nothing more until zg_splice_close. */
typedef void (*zg_splice_done_pt)(void *data, int rc, int dir, int writing);

struct zg_splice_s {
    /* read-only */
    uint64_t bytes[2];       /* moved in from the source: [0] a -> b, [1] b -> a */
    uint64_t active;         /* uv_now() when bytes last moved */
    /* private */
    uv_loop_t *loop;
    uv_poll_t poll[2];       /* on fd[0], fd[1] */
    int fd[2];               /* dups of a and b */
    int pipe[2][2];          /* per direction: [0] read end, [1] write end */
    size_t piped[2];         /* bytes in the direction's pipe */
    int events[2];           /* what poll[i] waits for now */
    unsigned eof[2];         /* the direction's source ended */
    unsigned shut[2];        /* its destination was shut down for writing */
    int half_close;
    int ended;               /* done was called */
    int closing;
    int open;                /* poll handles not closed yet */
    zg_splice_done_pt done;
    void (*closed)(void *data);
    void *data;
};

/* Starts relaying between a and b (descriptors of connected non-blocking sockets);
 * 0 and *out set, or a negated errno (nothing is left open: relay otherwise). */
int zg_splice_start(zg_splice_t **out, uv_loop_t *loop, int a, int b, int half_close,
                    zg_splice_done_pt done, void *data);

/* Stops the relay; closed(data) runs once its handles are closed and its
 * descriptors and memory freed (a and b are left open). */
void zg_splice_close(zg_splice_t *sp, void (*closed)(void *data));

#endif
