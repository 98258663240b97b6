/* zg_proc.h — this process's identity and the process-wide counters that every
 * process bumps in one shared page (mapped by the master before fork). */
#ifndef ZG_PROC_H
#define ZG_PROC_H

#include "zg_core.h"

/* One shared page; bumped with __atomic builtins. */
typedef struct {
    uint64_t worker_restarts;   /* workers respawned after dying */
    uint64_t reloads;           /* successful reloads */
    uint64_t reload_failures;
    uint64_t connections;       /* accepted, all workers */
    uint64_t requests;          /* finalized requests, all workers */
    uint64_t responses[6];      /* by status class: [1]=1xx ... [5]=5xx, [0]=other */
    uint64_t accept_errors;
} zg_proc_stats_sh_t;

extern zg_proc_stats_sh_t *zg_proc_stats; /* NULL until mapped */

/* this worker's slot (0 .. ZG_MAX_WORKERS-1; limit_conn counts per slot) */
extern int zg_worker_slot;
/* 1 in the master and in the first worker of a generation (it runs the sync) */
extern int zg_worker_first;

/* maps the shared counters page (master, before fork; a second call keeps the
 * page, so counters survive reloads); ZG_OK / ZG_ERROR */
int zg_proc_stats_init(void);

#define zg_proc_count(field)                                                           \
    do {                                                                               \
        if (zg_proc_stats != NULL) {                                                   \
            __atomic_add_fetch(&zg_proc_stats->field, 1, __ATOMIC_RELAXED);            \
        }                                                                              \
    } while (0)

static inline void zg_proc_count_request(int status)
{
    if (zg_proc_stats != NULL) {
        int cls = status / 100;
        __atomic_add_fetch(&zg_proc_stats->requests, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&zg_proc_stats->responses[cls >= 1 && cls <= 5 ? cls : 0], 1,
                           __ATOMIC_RELAXED);
    }
}

#endif
