/* zg_proc.c — process identity and the shared process counters page. */
#include "zg_proc.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zg_log.h"

zg_proc_stats_sh_t *zg_proc_stats;
int zg_worker_slot = 0;
int zg_worker_first = 1;
int zg_worker_index = 0;

int zg_proc_stats_init(void)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t size = page > 0 ? (size_t)page : 4096;
    void *p;

    if (zg_proc_stats != NULL) {
        return ZG_OK;
    }
    size = zg_align(sizeof(zg_proc_stats_sh_t), size);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        zg_log_error(ZG_LOG_EMERG, errno, "mmap(%zu) for the process counters failed",
                     size);
        return ZG_ERROR;
    }
    zg_proc_stats = p;
    return ZG_OK;
}

void zg_proc_worker_start(int slot, int index, pid_t pid)
{
    if (zg_proc_stats != NULL && slot >= 0 && slot < ZG_PROC_SLOTS) {
        zg_proc_stats->index[slot] = index;
        zg_proc_stats->used[slot] = 1;
        __atomic_store_n(&zg_proc_stats->pid[slot], (int32_t)pid, __ATOMIC_RELEASE);
    }
}

void zg_proc_worker_gone(int slot)
{
    if (zg_proc_stats != NULL && slot >= 0 && slot < ZG_PROC_SLOTS) {
        __atomic_store_n(&zg_proc_stats->pid[slot], 0, __ATOMIC_RELEASE);
    }
}
