/* zg_proc_tune.h — worker_cpu_affinity, worker_shutdown_timeout, working_directory,
 * worker_rlimit_core, and the events/http tuning directives with no meaning for
 * zonegate (accepted, values checked). */
#ifndef ZG_PROC_TUNE_H
#define ZG_PROC_TUNE_H

#include "zg_conf.h"

extern zg_module_t zg_proc_tune_module;

#endif
