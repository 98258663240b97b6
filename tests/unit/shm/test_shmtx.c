/* test_shmtx.c — the zone lock: a holder killed with SIGKILL (robust recovery by a
 * waiter, or by the master), and a holder that stops. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zg_shm_test.h"

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        /* void */
    }
}

/* a child that takes the lock, reports through the pipe and waits to die */
static pid_t fork_holder(zg_slab_pool_t *pool)
{
    int fd[2];
    char c;
    pid_t pid;

    assert_int_equal(pipe(fd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        alarm(GUARD);
        zg_shmtx_lock(&pool->mutex);
        if (write(fd[1], "L", 1) != 1) {
            _exit(3);
        }
        for (;;) {
            pause();
        }
    }
    close(fd[1]);
    assert_int_equal(read(fd[0], &c, 1), 1);
    close(fd[0]);
    assert_int_equal(pool->mutex.owner, pid);
    return pid;
}

static void kill_holder(pid_t pid)
{
    int status;

    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void test_killed_holder(void **state)
{
    zg_zone_list_t l;
    zg_zone_t *z = map_shared_zone(&l, 64 * 1024);
    zg_slab_pool_t *pool = z->pool;
    shared_root_sh_t *r = z->data;
    pid_t holder, waiters[3];
    unsigned i, id = 0;
    zg_msec_t t0;

    (void)state;
    guard(GUARD);
    holder = fork_holder(pool);

    /* the others block on the lock meanwhile */
    for (i = 0; i < 3; i++) {
        waiters[i] = fork();
        assert_true(waiters[i] >= 0);
        if (waiters[i] == 0) {
            void *p;

            id = i;
            alarm(GUARD);
            zg_shmtx_lock(&pool->mutex);
            p = zg_slab_alloc_locked(pool, 100);
            CHILD_CHECK(p != NULL);
            zg_slab_free_locked(pool, p);
            r->counter++;
            zg_shmtx_unlock(&pool->mutex);
            _exit(0);
        }
    }
    sleep_ms(100);
    assert_int_equal(r->counter, 0);
    assert_int_equal(zg_shmtx_trylock(&pool->mutex), 0);

    t0 = zg_time_msec();
    kill_holder(holder);
    for (i = 0; i < 3; i++) {
        wait_ok(waiters[i]);
    }
    assert_true(zg_time_msec() - t0 < 5000);
    assert_int_equal(r->counter, 3);
    assert_int_equal(pool->mutex.recovered, 1);
    assert_int_equal(pool->mutex.owner, 0);

    /* trylock takes over from a dead holder too */
    holder = fork_holder(pool);
    kill_holder(holder);
    assert_int_equal(zg_shmtx_trylock(&pool->mutex), 1);
    assert_int_equal(pool->mutex.owner, getpid());
    assert_int_equal(pool->mutex.recovered, 2);
    zg_shmtx_unlock(&pool->mutex);
    assert_int_equal(zg_slab_validate(pool), ZG_OK);

    alarm(0);
    zg_zone_unmap_all(&l);
    zg_zone_list_free(&l);
}

static void test_master_recover(void **state)
{
    zg_zone_list_t l;
    zg_zone_t *z = map_shared_zone(&l, 64 * 1024);
    zg_shmtx_sh_t *m = &z->pool->mutex;
    pid_t holder, other;

    (void)state;
    guard(GUARD);

    /* a live holder is never taken over */
    holder = fork_holder(z->pool);
    assert_int_equal(zg_shmtx_recover(m, holder + 100000), 0);
    assert_int_equal(zg_shmtx_recover(m, holder), 0);
    assert_int_equal(m->owner, holder);
    assert_int_equal(zg_shmtx_trylock(m), 0);

    /* the master reaps it and recovers the lock */
    kill_holder(holder);
    assert_int_equal(zg_shmtx_recover(m, holder), 1);
    assert_int_equal(m->owner, 0);
    assert_int_equal(m->recovered, 1);
    assert_int_equal(zg_shmtx_recover(m, holder), 0);
    assert_int_equal(zg_shmtx_trylock(m), 1);
    assert_int_equal(m->recovered, 1);          /* no second EOWNERDEAD */
    zg_shmtx_unlock(m);

    /* the same through the zone list, then a waiter gets in */
    holder = fork_holder(z->pool);
    kill_holder(holder);
    zg_zone_recover_locks(&l, holder);
    assert_int_equal(m->owner, 0);
    assert_int_equal(m->recovered, 2);
    other = fork();
    assert_true(other >= 0);
    if (other == 0) {
        alarm(GUARD);
        zg_shmtx_lock(m);
        zg_shmtx_unlock(m);
        _exit(m->recovered == 2 ? 0 : 4);
    }
    wait_ok(other);

    /* a free lock: nothing to recover */
    assert_int_equal(zg_shmtx_recover(m, other), 0);
    zg_shmtx_lock(m);
    zg_shmtx_unlock(m);

    alarm(0);
    zg_zone_unmap_all(&l);
    zg_zone_list_free(&l);
}

/* a wait is counted: a child blocks on a lock we hold; we release it only once the
 * child sleeps in the kernel on it (glibc sets FUTEX_WAITERS in the lock word), so
 * the child surely found the lock held */
static void test_wait_counted(void **state)
{
    zg_zone_list_t l;
    zg_zone_t *z = map_shared_zone(&l, 64 * 1024);
    zg_shmtx_sh_t *m = &z->pool->mutex;
    pid_t child;

    (void)state;
    guard(GUARD);
    zg_shmtx_lock(m);
    zg_shmtx_unlock(m);
    assert_int_equal(m->contended, 0);          /* a free lock is no wait */
    assert_int_equal(m->wait_ns, 0);

    zg_shmtx_lock(m);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        alarm(GUARD);
        zg_shmtx_lock(m);
        zg_shmtx_unlock(m);
        _exit(0);
    }
    while ((__atomic_load_n((unsigned *)&m->mutex.__data.__lock, __ATOMIC_RELAXED) &
            0x80000000u) == 0) {
        sleep_ms(1);
    }
    sleep_ms(5);
    zg_shmtx_unlock(m);
    wait_ok(child);
    assert_int_equal(m->contended, 1);
    assert_true(m->wait_ns >= 5000000u);

    alarm(0);
    zg_zone_unmap_all(&l);
    zg_zone_list_free(&l);
}

/* one contended acquisition of m by a child while we hold it; returns m->spins */
static uint64_t contend_once(zg_shmtx_sh_t *m)
{
    pid_t child;

    zg_shmtx_lock(m);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        alarm(GUARD);
        zg_shmtx_lock(m);
        zg_shmtx_unlock(m);
        _exit(0);
    }
    while ((__atomic_load_n((unsigned *)&m->mutex.__data.__lock, __ATOMIC_RELAXED) &
            0x80000000u) == 0) {
        sleep_ms(1);
    }
    zg_shmtx_unlock(m);
    wait_ok(child);
    assert_int_equal(m->contended, 1);
    return m->spins;
}

/* nginx spins only with more than one CPU: a process allowed one CPU (taskset,
 * worker_cpu_affinity of the master) sleeps at once; with two it spins a bounded
 * number of rounds first (the holder stays in for all of them) */
static void test_no_spin_on_one_cpu(void **state)
{
    zg_zone_list_t l;
    zg_zone_t *z;
    cpu_set_t all, one;

    (void)state;
    guard(GUARD);
    assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (CPU_ISSET(c, &all)) {
            CPU_SET(c, &one);
            break;
        }
    }
    assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
    assert_int_equal(zg_shmtx_cpus(), 1);
    z = map_shared_zone(&l, 64 * 1024);
    assert_int_equal(contend_once(&z->pool->mutex), 0);
    zg_zone_unmap_all(&l);
    zg_zone_list_free(&l);

    assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
    if (CPU_COUNT(&all) > 1) {
        assert_int_equal(zg_shmtx_cpus(), CPU_COUNT(&all));
        z = map_shared_zone(&l, 64 * 1024);
        assert_int_equal(contend_once(&z->pool->mutex), 7); /* 1, 2, 4 ... 64 pauses */
        zg_zone_unmap_all(&l);
        zg_zone_list_free(&l);
    }
    alarm(0);
}

/* the master's watchdog: a lock held without release for N ticks names its holder;
 * any release and re-take (or no holder) starts the count again */
static void test_stuck_holder(void **state)
{
    zg_shmtx_sh_t m;
    zg_shmtx_watch_t w = {0, 0, 0};
    (void)state;

    assert_int_equal(zg_shmtx_init(&m), ZG_OK);
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0); /* free */
    zg_shmtx_lock(&m);
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0); /* first sight */
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0);
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0);
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), getpid()); /* held 3 ticks */
    zg_shmtx_unlock(&m);
    zg_shmtx_lock(&m);  /* released and taken again: a busy holder, not a stuck one */
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0);
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0);
    zg_shmtx_unlock(&m);
    assert_int_equal(zg_shmtx_stuck(&m, &w, 3), 0);
    pthread_mutex_destroy(&m.mutex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_holder),
        cmocka_unit_test(test_master_recover),
        cmocka_unit_test(test_stuck_holder),
        cmocka_unit_test(test_wait_counted),
        cmocka_unit_test(test_no_spin_on_one_cpu),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
