/* zg_shmtx.c — process-shared robust mutex. */
#include "zg_shmtx.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ZG_SHMTX_SPIN 64 /* the longest pause run of the spin (127 pauses in all) */

/* online CPUs, read when the master creates the locks (workers inherit it) */
static long zg_shmtx_ncpu = 2;

/* getpid() is a system call since glibc 2.25: cache it, reset in a fork child */
static pid_t zg_shmtx_pid;
static pthread_once_t zg_shmtx_once = PTHREAD_ONCE_INIT;

#ifdef ZG_DEBUG
static int zg_shmtx_child;      /* a forked process (a worker), not the master */
#endif

static void zg_shmtx_forked(void)
{
    zg_shmtx_pid = getpid();
#ifdef ZG_DEBUG
    zg_shmtx_child = 1;
#endif
}

#ifdef ZG_DEBUG
/* Fault injection for the chaos tests: with ZG_DEBUG_LOCK_KILL=FILE in the
 * environment, the first worker that takes any lock after FILE appears removes
 * FILE and dies by SIGKILL while holding that lock. */
static void zg_shmtx_debug_kill(void)
{
    static const char *path;
    static int checked;

    if (!checked) {
        path = getenv("ZG_DEBUG_LOCK_KILL");
        checked = 1;
    }
    if (path != NULL && zg_shmtx_child && unlink(path) == 0) {
        raise(SIGKILL);
    }
}

/* ZG_DEBUG_LOCK_STOP=FILE: the same, but the worker stops (SIGSTOP) holding the
 * lock: a frozen holder, for the master's watchdog */
static void zg_shmtx_debug_stop(void)
{
    static const char *path;
    static int checked;

    if (!checked) {
        path = getenv("ZG_DEBUG_LOCK_STOP");
        checked = 1;
    }
    if (path != NULL && zg_shmtx_child && unlink(path) == 0) {
        raise(SIGSTOP);
    }
}
#else
#define zg_shmtx_debug_kill()
#define zg_shmtx_debug_stop()
#endif

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

long zg_shmtx_cpus(void)
{
    cpu_set_t set;
    long n;

    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && (n = CPU_COUNT(&set)) > 0) {
        return n;
    }
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

int zg_shmtx_init(zg_shmtx_sh_t *m)
{
    pthread_mutexattr_t attr;
    int rc;

    zg_shmtx_ncpu = zg_shmtx_cpus();
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
    m->contended = 0;
    m->wait_ns = 0;
    m->spins = 0;
    return ZG_OK;
}

/* rc of a lock call -> 1 taken, 0 busy */
static int zg_shmtx_taken(zg_shmtx_sh_t *m, int rc)
{
    switch (rc) {
    case 0:
        break;
    case EOWNERDEAD:
        /* the state it protected may be half-updated: counted in m->recovered
         * (debug builds check a zone's slab pool when the master recovers a lock) */
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
    m->taken++;
    zg_shmtx_debug_kill();
    zg_shmtx_debug_stop();
    return 1;
}

static inline void zg_cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static uint64_t zg_shmtx_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* the lock was held: wait for it, and count the wait (only this path reads a clock) */
static __attribute__((noinline)) int zg_shmtx_wait(zg_shmtx_sh_t *m)
{
    uint64_t t0 = zg_shmtx_now_ns();
    uint64_t spins = 0;
    int rc = EBUSY;

    /* Critical sections are a few hundred instructions: when the holder runs on
     * another CPU it is out within a microsecond or two, so spin that long, backing
     * off (1, 2, 4 ... 64 pauses), as nginx's shmtx does.  Longer means the holder
     * was descheduled, and spinning only keeps it off a CPU: sleep in the kernel
     * until it unlocks.  With one CPU the holder cannot run while we spin at all. */
    if (zg_shmtx_ncpu > 1) {
        for (int n = 1; n <= ZG_SHMTX_SPIN && rc == EBUSY; n <<= 1) {
            for (int k = 0; k < n; k++) {
                zg_cpu_pause();
            }
            spins++;
            if (__atomic_load_n(&m->owner, __ATOMIC_RELAXED) == 0) {
                rc = pthread_mutex_trylock(&m->mutex);
            }
        }
    }
    if (rc == EBUSY) {
        rc = pthread_mutex_lock(&m->mutex);
    }
    /* under the lock now: plain updates, read by /metrics without it */
    __atomic_store_n(&m->contended, m->contended + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&m->wait_ns, m->wait_ns + (zg_shmtx_now_ns() - t0), __ATOMIC_RELAXED);
    if (spins != 0) {
        __atomic_store_n(&m->spins, m->spins + spins, __ATOMIC_RELAXED);
    }
    return rc;
}

void zg_shmtx_lock(zg_shmtx_sh_t *m)
{
    int rc = pthread_mutex_trylock(&m->mutex);

    if (rc == EBUSY) {
        rc = zg_shmtx_wait(m);
    }
    zg_shmtx_taken(m, rc);
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

pid_t zg_shmtx_stuck(zg_shmtx_sh_t *m, zg_shmtx_watch_t *w, int ticks)
{
    pid_t owner = m->owner;
    uint32_t taken = m->taken;

    if (owner == 0 || owner != w->owner || taken != w->taken) {
        w->owner = owner;
        w->taken = taken;
        w->ticks = 0;
        return 0;
    }
    return ++w->ticks >= ticks ? owner : 0;
}
