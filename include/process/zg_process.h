/* zg_process.h — the master: zones, listeners, workers, signals, reload. */
#ifndef ZG_PROCESS_H
#define ZG_PROCESS_H

#include "zg_conf.h"

/* Runs the master on a loaded configuration; returns the exit code. */
int zg_master_run(zg_conf_t *conf, const char *conf_file);

/* Opens conf's listening sockets, reusing fds of `old` (may be NULL) for equal
 * addresses; ZG_OK or ZG_ERROR (logged). */
int zg_listen_open(zg_conf_t *conf, zg_conf_t *old);

#endif
