/* zg_core_module.h — the main and events contexts: processes, pid file, error log. */
#ifndef ZG_CORE_MODULE_H
#define ZG_CORE_MODULE_H

#include "zg_conf.h"

typedef struct {
    int worker_processes;     /* "auto" = number of CPUs; default 1 */
    int worker_connections;   /* 10240 */
    int worker_rlimit_nofile; /* 0 = unchanged */
    char *pid_file;           /* NULL = none */
    char *error_log_file;     /* "stderr" or a path */
    int error_log_level;
    int daemon;               /* default off (foreground) */
    int events_seen;
} zg_core_conf_t;

extern zg_module_t zg_core_module;

#define zg_core_conf(conf) ((zg_core_conf_t *)zg_main_conf_of(conf, zg_core_module))

#endif
