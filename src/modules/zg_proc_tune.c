/* zg_proc_tune.c — the main and events directives that tune worker processes, as
 * nginx's: worker_cpu_affinity, worker_shutdown_timeout, working_directory,
 * worker_rlimit_core; and those with no meaning for zonegate, accepted with their
 * values checked (multi_accept, accept_mutex, accept_mutex_delay,
 * worker_aio_requests, client_header_buffer_size: see README). */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zg_proc_tune.h"
#include "zg_core_module.h"
#include "zg_log.h"
#include "zg_proc.h"
#include "zg_worker.h"

#define ZG_AFFINITY_MAX 64 /* masks, and CPUs in a mask (nginx's limit too) */

typedef struct {
    int affinity;               /* 0 none, 1 masks, 2 auto */
    uint64_t masks[ZG_AFFINITY_MAX];
    int nmasks;                 /* auto: 0 or 1 (the CPUs auto may use) */
    zg_msec_t shutdown_timeout; /* worker_shutdown_timeout; 0 = none */
    char *working_directory;
    int64_t rlimit_core;        /* -1 = unchanged */
} zg_proc_tune_conf_t;

static uv_timer_t zg_proc_shutdown_timer;

/* "0101": the rightmost digit is CPU 0, as nginx */
static int zg_proc_mask(const zg_str_t *s, uint64_t *out)
{
    uint64_t m = 0;
    if (s->len == 0 || s->len > ZG_AFFINITY_MAX) {
        return ZG_ERROR;
    }
    for (size_t i = 0; i < s->len; i++) {
        if (s->data[i] != '0' && s->data[i] != '1') {
            return ZG_ERROR;
        }
        m = (m << 1) | (uint64_t)(s->data[i] == '1');
    }
    *out = m;
    return m != 0 ? ZG_OK : ZG_ERROR;
}

static int zg_proc_affinity(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_proc_tune_conf_t *pc = conf;
    zg_str_t *a = cf->args;
    int i = 1;

    (void)cmd;
    if (pc->affinity) {
        return zg_conf_duplicate(cf);
    }
    pc->affinity = 1;
    if (zg_conf_eq(&a[1], "auto")) {
        pc->affinity = 2;
        if (cf->nargs > 3) {
            return zg_conf_error(cf, "invalid number of arguments in \"%s\" directive",
                                 cf->name);
        }
        i = 2;
    }
    for (; i < cf->nargs; i++) {
        if (pc->nmasks == ZG_AFFINITY_MAX || zg_proc_mask(&a[i], &pc->masks[pc->nmasks]) != ZG_OK) {
            return zg_conf_error(cf, "invalid character \"%s\" in \"%s\" directive: a mask is "
                                     "1 to 64 digits 0 and 1, not all 0", a[i].data, cf->name);
        }
        pc->nmasks++;
    }
    return ZG_OK;
}

static int zg_proc_workdir(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_proc_tune_conf_t *pc = conf;
    struct stat st;

    (void)cmd;
    if (pc->working_directory != NULL) {
        return zg_conf_duplicate(cf);
    }
    pc->working_directory = zg_conf_path(cf, &cf->args[1]);
    if (pc->working_directory == NULL) {
        return zg_conf_nomem(cf);
    }
    if (stat(pc->working_directory, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return zg_conf_error(cf, "\"%s\" is not a directory in \"%s\" directive",
                             pc->working_directory, cf->name);
    }
    return ZG_OK;
}

static int zg_proc_count_noop(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    (void)cmd;
    (void)conf;
    if (zg_conf_atoi(cf->args[1].data, cf->args[1].len) < 1) {
        return zg_conf_invalid(cf, &cf->args[1]);
    }
    return ZG_OK;
}

static int zg_proc_time_noop(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    (void)cmd;
    (void)conf;
    if (zg_conf_parse_time(cf->args[1].data, cf->args[1].len) == ZG_UNSET_MSEC) {
        return zg_conf_invalid(cf, &cf->args[1]);
    }
    return ZG_OK;
}

static void *zg_proc_create_conf(zg_conf_t *conf)
{
    zg_proc_tune_conf_t *pc = zg_conf_alloc(conf, sizeof(*pc));
    if (pc == NULL) {
        return NULL;
    }
    pc->shutdown_timeout = ZG_UNSET_MSEC;
    pc->rlimit_core = ZG_UNSET_SIZE;
    return pc;
}

static int zg_proc_init_conf(zg_cf_t *cf, void *conf)
{
    zg_proc_tune_conf_t *pc = conf;
    (void)cf;
    if (pc->shutdown_timeout == ZG_UNSET_MSEC) {
        pc->shutdown_timeout = 0;
    }
    return ZG_OK;
}

/* the CPUs of worker `n` (of `workers`): its mask (the last for the rest), or with
 * auto the n-th CPU this process may run on (among those of auto's mask) */
static int zg_proc_cpus(const zg_proc_tune_conf_t *pc, int n, cpu_set_t *set)
{
    CPU_ZERO(set);
    if (pc->affinity == 1) {
        uint64_t m = pc->masks[zg_min(n, pc->nmasks - 1)];
        for (int i = 0; i < ZG_AFFINITY_MAX; i++) {
            if (m & ((uint64_t)1 << i)) {
                CPU_SET(i, set);
            }
        }
        return ZG_OK;
    }
    cpu_set_t avail;
    if (sched_getaffinity(0, sizeof(avail), &avail) != 0) {
        return ZG_ERROR;
    }
    int cpus[ZG_AFFINITY_MAX], ncpus = 0;
    for (int i = 0; i < ZG_AFFINITY_MAX; i++) {
        if (CPU_ISSET(i, &avail) && (pc->nmasks == 0 || (pc->masks[0] & ((uint64_t)1 << i)))) {
            cpus[ncpus++] = i;
        }
    }
    if (ncpus == 0) {
        return ZG_ERROR;
    }
    CPU_SET(cpus[n % ncpus], set);
    return ZG_OK;
}

static void zg_proc_shutdown(uv_timer_t *t)
{
    zg_worker_t *w = t->data;
    zg_log_error(ZG_LOG_NOTICE, 0, "worker_shutdown_timeout: closing %d connections",
                 w->nconns);
    uv_stop(w->loop); /* the worker's exit path closes every connection and session */
}

static int zg_proc_init_worker(zg_worker_t *w)
{
    zg_proc_tune_conf_t *pc = zg_main_conf_of(w->conf, zg_proc_tune_module);
    int workers = zg_core_conf(w->conf)->worker_processes;

    if (pc->working_directory != NULL && chdir(pc->working_directory) != 0) {
        zg_log_error(ZG_LOG_ALERT, errno, "chdir(\"%s\") failed", pc->working_directory);
        return ZG_ERROR;
    }
    if (pc->rlimit_core != ZG_UNSET_SIZE) {
        struct rlimit rl = {(rlim_t)pc->rlimit_core, (rlim_t)pc->rlimit_core};
        if (setrlimit(RLIMIT_CORE, &rl) != 0) {
            zg_log_error(ZG_LOG_ALERT, errno, "setrlimit(RLIMIT_CORE, %lld) failed",
                         (long long)pc->rlimit_core);
        }
        /* a process that changed its user writes no core file unless made dumpable
         * again (nginx always does this; zonegate only when asked for core files) */
        if (pc->rlimit_core > 0 && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
            zg_log_error(ZG_LOG_ALERT, errno, "prctl(PR_SET_DUMPABLE) failed");
        }
    }
    if (pc->affinity) {
        cpu_set_t set;
        int n = zg_worker_slot % zg_max(workers, 1);
        if (zg_proc_cpus(pc, n, &set) != ZG_OK || sched_setaffinity(0, sizeof(set), &set) != 0) {
            zg_log_error(ZG_LOG_ALERT, errno, "sched_setaffinity() of worker %d failed", n);
        }
    }
    if (pc->shutdown_timeout) {
        uv_timer_init(w->loop, &zg_proc_shutdown_timer);
        uv_unref((uv_handle_t *)&zg_proc_shutdown_timer);
        zg_proc_shutdown_timer.data = w;
    }
    return ZG_OK;
}

/* graceful stop: what is still open after worker_shutdown_timeout is closed */
static void zg_proc_quit_worker(zg_worker_t *w)
{
    zg_proc_tune_conf_t *pc = zg_main_conf_of(w->conf, zg_proc_tune_module);
    if (pc->shutdown_timeout) {
        uv_timer_start(&zg_proc_shutdown_timer, zg_proc_shutdown, pc->shutdown_timeout, 0);
    }
}

#define ZG_PT(f) offsetof(zg_proc_tune_conf_t, f)

static const zg_command_t zg_proc_tune_commands[] = {
    { "worker_cpu_affinity", ZG_CTX_MAIN, 0, 1, ZG_AFFINITY_MAX, zg_proc_affinity, ZG_MAIN_CONF,
      0, NULL },
    { "worker_shutdown_timeout", ZG_CTX_MAIN, 0, 1, 1, zg_conf_set_msec, ZG_MAIN_CONF,
      ZG_PT(shutdown_timeout), NULL },
    { "working_directory", ZG_CTX_MAIN, 0, 1, 1, zg_proc_workdir, ZG_MAIN_CONF, 0, NULL },
    { "worker_rlimit_core", ZG_CTX_MAIN, 0, 1, 1, zg_conf_set_size, ZG_MAIN_CONF,
      ZG_PT(rlimit_core), NULL },
    /* no meaning for zonegate (README): values are checked */
    { "worker_aio_requests", ZG_CTX_EVENTS, 0, 1, 1, zg_proc_count_noop, ZG_MAIN_CONF, 0,
      NULL },
    { "multi_accept", ZG_CTX_EVENTS, 0, 1, 1, zg_conf_set_noop_flag, ZG_MAIN_CONF, 0, NULL },
    { "accept_mutex", ZG_CTX_EVENTS, 0, 1, 1, zg_conf_set_noop_flag, ZG_MAIN_CONF, 0, NULL },
    { "accept_mutex_delay", ZG_CTX_EVENTS, 0, 1, 1, zg_proc_time_noop, ZG_MAIN_CONF, 0,
      NULL },
    { "client_header_buffer_size", ZG_CTX_HTTP | ZG_CTX_SRV, 0, 1, 1, zg_conf_set_noop_size,
      ZG_MAIN_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_proc_tune_module = {
    .name = "proc_tune",
    .commands = zg_proc_tune_commands,
    .create_main_conf = zg_proc_create_conf,
    .init_main_conf = zg_proc_init_conf,
    .init_worker = zg_proc_init_worker,
    .quit_worker = zg_proc_quit_worker,
};
