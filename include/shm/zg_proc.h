/* zg_proc.h — this process's identity and the process-wide counters that every
 * process bumps in one shared page (mapped by the master before fork). */
#ifndef ZG_PROC_H
#define ZG_PROC_H

#include "zg_core.h"

#include <sys/types.h>

#define ZG_PROC_SLOTS 64 /* worker slots (ZG_MAX_WORKERS), both generations in a reload */

/* One worker slot's traffic: written only by the worker in the slot (one at a time),
 * one cache line each, so that workers never write the same line per request. */
typedef struct {
    uint64_t connections;       /* accepted */
    uint64_t requests;          /* finalized */
    uint64_t responses[6];      /* by status class: [1]=1xx ... [5]=5xx, [0]=other */
    uint64_t upstream_connects; /* new upstream connections (not taken from the pool) */
    uint64_t upstream_connect_ns; /* time from connect() to established, summed */
    uint64_t stream_spliced;    /* stream sessions relayed with splice(2) */
} __attribute__((aligned(64))) zg_proc_worker_sh_t;

/* Shared pages, mapped by the master before fork; the process-wide counters are
 * bumped with __atomic builtins, the per-slot ones by their only writer. */
typedef struct {
    uint64_t worker_restarts;   /* workers respawned after dying */
    uint64_t reloads;           /* successful reloads */
    uint64_t reload_failures;
    uint64_t accept_errors;
    int32_t pid[ZG_PROC_SLOTS];   /* the slot's worker now; 0: none (the master clears it) */
    int32_t index[ZG_PROC_SLOTS]; /* its index in its generation (its listening sockets) */
    uint8_t used[ZG_PROC_SLOTS];  /* the slot has had a worker since the start */
    zg_proc_worker_sh_t workers[ZG_PROC_SLOTS]; /* traffic per slot, summed for totals */
} zg_proc_stats_sh_t;

extern zg_proc_stats_sh_t *zg_proc_stats; /* NULL until mapped */

/* this worker's slot (0 .. ZG_MAX_WORKERS-1; limit_conn counts per slot) */
extern int zg_worker_slot;
/* 1 in the master and in the first worker of a generation (it runs the sync) */
extern int zg_worker_first;
/* this worker's index in its generation (0 .. worker_processes-1): its listening
 * sockets; the same index survives a respawn and is taken by a reload's new worker */
extern int zg_worker_index;

/* maps the shared counters page (master, before fork; a second call keeps the
 * page, so counters survive reloads); ZG_OK / ZG_ERROR */
int zg_proc_stats_init(void);

#define zg_proc_count(field)                                                           \
    do {                                                                               \
        if (zg_proc_stats != NULL) {                                                   \
            __atomic_add_fetch(&zg_proc_stats->field, 1, __ATOMIC_RELAXED);            \
        }                                                                              \
    } while (0)

/* a counter of this worker's slot; one writer, so no locked instruction (readers in
 * other processes load it whole: an aligned 64-bit store is atomic on every target) */
static inline void zg_proc_bump(uint64_t *p)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static inline void zg_proc_count_request(int status)
{
    if (zg_proc_stats != NULL) {
        zg_proc_worker_sh_t *w = &zg_proc_stats->workers[zg_worker_slot];
        int cls = status / 100;
        zg_proc_bump(&w->requests);
        zg_proc_bump(&w->responses[cls >= 1 && cls <= 5 ? cls : 0]);
    }
}

static inline void zg_proc_count_connection(void)
{
    if (zg_proc_stats != NULL) {
        zg_proc_bump(&zg_proc_stats->workers[zg_worker_slot].connections);
    }
}

/* in a new worker: its slot now shows its pid and index */
void zg_proc_worker_start(int slot, int index, pid_t pid);
/* in the master, once it has reaped the slot's worker */
void zg_proc_worker_gone(int slot);

#endif
