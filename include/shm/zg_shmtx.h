/* zg_shmtx.h — a process-shared lock that survives the death of its holder. */
#ifndef ZG_SHMTX_H
#define ZG_SHMTX_H

#include "zg_core.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

/* Lives in shared memory.  owner is the holder's pid, 0 when free;
 * recovered counts how often the lock was taken over from a dead holder. */
typedef struct {
    pthread_mutex_t mutex;
    volatile pid_t owner;
    volatile uint32_t recovered;
    volatile uint32_t taken;    /* acquisitions, for the master's watchdog */
    uint64_t contended;         /* acquisitions that found the lock held */
    uint64_t wait_ns;           /* time those waited for it, spinning or asleep */
    uint64_t spins;             /* spin rounds of those waits (none with one CPU) */
} zg_shmtx_sh_t;

/* CPUs this process may run on (sched_getaffinity, else the online CPUs), read by
 * zg_shmtx_init in the master before workers are pinned; a waiter spins only when
 * it is above 1, as nginx's ngx_ncpu. */
long zg_shmtx_cpus(void);

/* Initialises m as a PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST mutex.
 * Call once, before any process uses it.  Returns ZG_OK or ZG_ERROR. */
int zg_shmtx_init(zg_shmtx_sh_t *m);

/* Blocks until locked; a wait (the lock was held) is counted in m->contended,
 * its duration in m->wait_ns and its spin rounds (more than one CPU only) in m->spins.  If the previous holder died with the lock held
 * (EOWNERDEAD) the lock is made consistent, counted in m->recovered and
 * taken; the caller then owns whatever state the dead holder left. */
void zg_shmtx_lock(zg_shmtx_sh_t *m);

/* Returns 1 if locked (also after recovering from a dead holder), 0 if busy. */
int zg_shmtx_trylock(zg_shmtx_sh_t *m);

/* Releases a lock held by the calling process. */
void zg_shmtx_unlock(zg_shmtx_sh_t *m);

/* For the master after it reaped `dead`: if `dead` held m, takes the lock
 * over, makes it consistent and releases it.  Returns 1 if it recovered the
 * lock, 0 if `dead` did not own it (or another process already took over). */
int zg_shmtx_recover(zg_shmtx_sh_t *m, pid_t dead);

/* The master's watchdog state for one lock. */
typedef struct {
    pid_t owner;
    uint32_t taken;
    int ticks;
} zg_shmtx_watch_t;

/* Call about once a second: returns the pid that has held m, without releasing
 * it, for `ticks` calls in a row (a frozen or looping holder), else 0. */
pid_t zg_shmtx_stuck(zg_shmtx_sh_t *m, zg_shmtx_watch_t *w, int ticks);

#endif
