/* zg_shmtx.c — process-shared robust mutex. */
#include "zg_shmtx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* getpid() is a system call since glibc 2.25: cache it, reset in a fork child */
static pid_t zg_shmtx_pid;
static pthread_once_t zg_shmtx_once = PTHREAD_ONCE_INIT;

static void zg_shmtx_forked(void)
{
    zg_shmtx_pid = getpid();
}

static void zg_shmtx_setup(void)
{
    zg_shmtx_pid = getpid();
    pthread_atfork(NULL, NULL, zg_shmtx_forked);
}

static inline pid_t zg_shmtx_self(void)
{
    if (zg_shmtx_pid == 0) {
        pthread_once(&zg_shmtx_once, zg_shmtx_setup);
    }
    return zg_shmtx_pid;
}

int zg_shmtx_init(zg_shmtx_sh_t *m)
{
    pthread_mutexattr_t attr;
    int rc;

    if (pthread_mutexattr_init(&attr) != 0) {
        return ZG_ERROR;
    }
    rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (rc == 0) {
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    }
    if (rc == 0) {
        rc = pthread_mutex_init(&m->mutex, &attr);
    }
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        return ZG_ERROR;
    }
    m->owner = 0;
    m->recovered = 0;
    return ZG_OK;
}

/* rc of a lock call -> 1 taken, 0 busy */
static int zg_shmtx_taken(zg_shmtx_sh_t *m, int rc)
{
    switch (rc) {
    case 0:
        break;
    case EOWNERDEAD:
        /* the state it protected may be half-updated: callers that care
         * check it (zg_slab_validate) when m->recovered changes */
        pthread_mutex_consistent(&m->mutex);
        __atomic_add_fetch(&m->recovered, 1, __ATOMIC_RELAXED);
        break;
    case EBUSY:
        return 0;
    default:
        /* ENOTRECOVERABLE cannot happen: every EOWNERDEAD is made consistent */
        fprintf(stderr, "zg_shmtx: pthread_mutex_lock() failed: %s\n", strerror(rc));
        abort();
    }
    m->owner = zg_shmtx_self();
    return 1;
}

void zg_shmtx_lock(zg_shmtx_sh_t *m)
{
    zg_shmtx_taken(m, pthread_mutex_lock(&m->mutex));
}

int zg_shmtx_trylock(zg_shmtx_sh_t *m)
{
    return zg_shmtx_taken(m, pthread_mutex_trylock(&m->mutex));
}

void zg_shmtx_unlock(zg_shmtx_sh_t *m)
{
    m->owner = 0;
    pthread_mutex_unlock(&m->mutex);
}

int zg_shmtx_recover(zg_shmtx_sh_t *m, pid_t dead)
{
    int rc;

    if (dead <= 0 || m->owner != dead) {
        return 0;
    }
    rc = pthread_mutex_trylock(&m->mutex);
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(&m->mutex);
        __atomic_add_fetch(&m->recovered, 1, __ATOMIC_RELAXED);
        m->owner = 0;
        pthread_mutex_unlock(&m->mutex);
        return 1;
    }
    if (rc == 0) {
        /* dead released the mutex but died before clearing owner */
        m->owner = 0;
        pthread_mutex_unlock(&m->mutex);
        return 0;
    }
    return 0;
}
