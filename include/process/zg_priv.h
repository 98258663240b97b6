/* zg_priv.h — what a worker may do: the user it runs as (privilege drop), its
 * seccomp sandbox, and the channel on which the master hands it reopened logs. */
#ifndef ZG_PRIV_H
#define ZG_PRIV_H

#include "zg_conf.h"

/* Master, for a freshly loaded configuration: decides whether workers drop
 * privileges (only when the master runs as root; "user" is then nobody unless
 * given) and logs the choice.  ZG_OK, or ZG_ERROR (logged) when the default user
 * does not exist. */
int zg_priv_conf(zg_conf_t *conf);

/* Worker: setgid, initgroups, setuid to conf's user, then checks that the ids
 * changed and that root cannot be regained.  ZG_OK (also when there is nothing to
 * drop), or ZG_ERROR (logged): the worker must exit. */
int zg_priv_drop(const zg_conf_t *conf);

/* Worker, once set up: PR_SET_NO_NEW_PRIVS and the seccomp allow-list, unless
 * "worker_sandbox off".  A system call outside the list kills the worker (SIGSYS).
 * ZG_OK, or ZG_ERROR (logged): the worker must exit. */
int zg_sandbox_enter(const zg_conf_t *conf);

/* Worker, before zg_sandbox_enter (an init_worker hook): the directory open as fd
 * (a cache directory) may be written in: openat with any flags, mkdirat, unlinkat
 * and renameat relative to fd are allowed (the paths are the caller's to keep
 * inside it).  ZG_OK, or ZG_ERROR when too many were given. */
int zg_sandbox_dir(int fd);

/* Log channel (a socketpair per worker).  The master sends, after a reopen, the
 * error log (when it is a file) and the modules' files (zg_module_t.file: the
 * access logs), in order; the worker
 * puts each received descriptor on the number of the one it replaces (dup3).
 * Both return ZG_OK or ZG_ERROR (logged). */
int zg_chan_send_logs(int fd, zg_conf_t *conf);
int zg_chan_recv_logs(int fd, const zg_conf_t *conf);

#endif
