/* zg_core_module.h — the main and events contexts: processes, pid file, error log. */
#ifndef ZG_CORE_MODULE_H
#define ZG_CORE_MODULE_H

#include <sys/types.h>

#include "zg_conf.h"

typedef struct {
    int worker_processes;     /* "auto" = number of CPUs; default 1 */
    int worker_connections;   /* 10240 */
    int worker_rlimit_nofile; /* 0 = unchanged */
    char *pid_file;           /* NULL = none */
    char *error_log_file;     /* "stderr" or a path */
    int error_log_level;
    int daemon;               /* default off (foreground) */
    char *user;               /* "user USER [GROUP];" NULL = none given (nobody when root) */
    char *group;              /* NULL = the user's primary group */
    uid_t user_uid;           /* resolved at load when "user" is given */
    gid_t user_gid;
    int worker_sandbox;       /* seccomp allow-list in workers; default on */
    int drop_privileges;      /* set by the master: it is root, workers become user */
    int events_seen;
} zg_core_conf_t;

extern zg_module_t zg_core_module;

#define zg_core_conf(conf) ((zg_core_conf_t *)zg_main_conf_of(conf, zg_core_module))

#endif
