/* zg_process.c — the master process: maps zones, opens listeners, forks and
 * supervises workers, handles signals (HUP reload, TERM/INT stop, QUIT graceful
 * stop, USR1 reopen, CHLD reap + respawn) and gives back what a dead worker held. */
#include "zg_process.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zg_core_module.h"
#include "zg_http_core.h"
#include "zg_log.h"
#include "zg_priv.h"
#include "zg_proc.h"
#include "zg_stream.h"
#include "zg_worker.h"
#include "zg_zone.h"

#define ZG_LISTEN_BACKLOG 4096

typedef struct zg_gen_s {
    zg_conf_t *conf;
    int live;                   /* workers of this generation still running */
    struct zg_gen_s *next;
} zg_gen_t;

typedef struct {
    pid_t pid;                  /* 0: slot free */
    zg_gen_t *gen;
    int chan;                   /* our end of the worker's log channel */
    unsigned quitting : 1;      /* told to stop: do not respawn */
    int idx;                    /* index in its generation: which listening sockets it
                                   accepts on; index 0 runs the Redis sync */
} zg_wproc_t;

static zg_wproc_t zg_procs[ZG_MAX_WORKERS];

/* what a worker asks of the process layer (zg_priv.c) */
static const zg_worker_setup_t zg_worker_setup = {
    zg_priv_drop, zg_sandbox_enter, zg_chan_recv_logs
};
static zg_gen_t *zg_gens;       /* current first */
static char zg_master_conf_file[PATH_MAX];

static volatile sig_atomic_t zg_sig_reap, zg_sig_terminate, zg_sig_quit, zg_sig_reload,
    zg_sig_reopen, zg_sig_alarm;

static void zg_master_signal(int sig)
{
    switch (sig) {
    case SIGCHLD:
        zg_sig_reap = 1;
        break;
    case SIGTERM:
    case SIGINT:
        zg_sig_terminate = 1;
        break;
    case SIGQUIT:
        zg_sig_quit = 1;
        break;
    case SIGHUP:
        zg_sig_reload = 1;
        break;
    case SIGUSR1:
        zg_sig_reopen = 1;
        break;
    case SIGALRM:
        zg_sig_alarm = 1;
        break;
    }
}

/* One socket for addr.  With reuseport it is one of the address's SO_REUSEPORT
 * group (http: one per worker index); the kernel spreads new connections over the
 * group's sockets by a hash of the client's address and port.  backlog < 0: bound
 * only, not listening (the probe of a new http address). */
static int zg_listen_sock(const zg_addr_t *addr, int reuseport, int backlog, int keepalive)
{
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        zg_log_error(ZG_LOG_EMERG, errno, "socket() %s failed", addr->text);
        return -1;
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) {
        zg_log_error(ZG_LOG_EMERG, errno, "setsockopt(SO_REUSEPORT) %s failed", addr->text);
        close(fd);
        return -1;
    }
    if (addr->sa.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    /* accepted sockets inherit it (so_keepalive=on) */
    if (keepalive && setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0) {
        zg_log_error(ZG_LOG_EMERG, errno, "setsockopt(SO_KEEPALIVE) %s failed", addr->text);
        close(fd);
        return -1;
    }
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->socklen) != 0) {
        zg_log_error(ZG_LOG_EMERG, errno, "bind() to %s failed", addr->text);
        close(fd);
        return -1;
    }
    if (backlog < 0) {
        return fd;
    }
    if (listen(fd, backlog) != 0) {
        zg_log_error(ZG_LOG_EMERG, errno, "listen() to %s failed", addr->text);
        close(fd);
        return -1;
    }
    /* workers inherit it across fork, but not across exec */
    return fd;
}

/* A unix socket of listen unix:PATH, shared by every worker (a path has no
 * SO_REUSEPORT group).  A socket file left by a process that is gone (nothing
 * accepts on it) is removed first; one something still listens on is refused.  The
 * file is made 0666, as nginx does, so that clients of any user can connect. */
static int zg_listen_unix_sock(const zg_addr_t *addr, int backlog)
{
    const char *path = ((const struct sockaddr_un *)&addr->sa)->sun_path;
    struct stat st;

    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        /* non-blocking: a live listener with a full queue answers EAGAIN */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (probe == -1) {
            zg_log_error(ZG_LOG_EMERG, errno, "socket() %s failed", addr->text);
            return -1;
        }
        int err = connect(probe, (const struct sockaddr *)&addr->sa, addr->socklen) == 0
                      ? 0 : errno;
        close(probe);
        if (err != ECONNREFUSED) {
            zg_log_error(ZG_LOG_EMERG, err == 0 || err == EAGAIN ? EADDRINUSE : err,
                         "bind() to %s failed", addr->text);
            return -1;
        }
        if (unlink(path) != 0) {
            zg_log_error(ZG_LOG_EMERG, errno, "unlink() stale socket %s failed", path);
            return -1;
        }
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        zg_log_error(ZG_LOG_EMERG, errno, "socket() %s failed", addr->text);
        return -1;
    }
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->socklen) != 0) {
        zg_log_error(ZG_LOG_EMERG, errno, "bind() to %s failed", addr->text);
        close(fd);
        return -1;
    }
    if (chmod(path, 0666) != 0) {
        zg_log_error(ZG_LOG_EMERG, errno, "chmod() %s failed", path);
        goto failed;
    }
    if (listen(fd, backlog) != 0) {
        zg_log_error(ZG_LOG_EMERG, errno, "listen() to %s failed", addr->text);
        goto failed;
    }
    return fd;

failed:
    close(fd);
    unlink(path);
    return -1;
}

/* closes a listening socket: with unlink_unix (the master letting the address go),
 * a unix socket's file goes too */
static void zg_listen_fd_close(const zg_addr_t *addr, int fd, int unlink_unix)
{
    close(fd);
    if (unlink_unix && addr->sa.ss_family == AF_UNIX) {
        unlink(((const struct sockaddr_un *)&addr->sa)->sun_path);
    }
}

/* Sockets of ls a configuration with `workers` workers needs: what `from` (the same
 * address in the running configuration) has, plus new ones up to one per worker.
 * A new address is first bound without SO_REUSEPORT, so that an address some other
 * process listens on (even another zonegate, whose sockets would otherwise accept
 * ours into their group) is refused as before.  Fewer workers than sockets keep
 * every socket: closing one would reset the connections in its accept queue. */
static int zg_listen_fill(zg_listen_t *ls, const zg_listen_t *from, int workers)
{
    ls->nfds = 0;
    if (from != NULL) {
        memcpy(ls->fds, from->fds, (size_t)from->nfds * sizeof(int));
        ls->nfds = from->nfds;
    }
    if (ls->addr.sa.ss_family == AF_UNIX) {
        if (ls->nfds == 0) {
            ls->fds[0] = zg_listen_unix_sock(&ls->addr, ZG_LISTEN_BACKLOG);
            ls->nfds = ls->fds[0] != -1;
        }
        return ls->nfds ? ZG_OK : ZG_ERROR;
    }
    if (from == NULL) {
        int probe = zg_listen_sock(&ls->addr, 0, -1, 0);
        if (probe == -1) {
            return ZG_ERROR;
        }
        close(probe);
    }
    while (ls->nfds < workers) {
        int fd = zg_listen_sock(&ls->addr, 1, ZG_LISTEN_BACKLOG, 0);
        if (fd == -1) {
            return ZG_ERROR;
        }
        ls->fds[ls->nfds++] = fd;
    }
    return ZG_OK;
}

static zg_listen_t *zg_listen_find(zg_http_core_main_conf_t *om, const zg_listen_t *ls)
{
    for (int j = 0; om && j < om->nlistens; j++) {
        zg_listen_t *o = &om->listens[j];
        if (o->nfds > 0 && o->addr.socklen == ls->addr.socklen &&
            memcmp(&o->addr.sa, &ls->addr.sa, ls->addr.socklen) == 0) {
            return o;
        }
    }
    return NULL;
}

/* closes what zg_listen_fill opened for cm->listens[0..n); what the old
 * configuration has stays with it */
static void zg_listen_unfill(zg_http_core_main_conf_t *cm, zg_http_core_main_conf_t *om,
                             int n)
{
    for (int i = n - 1; i >= 0; i--) {
        zg_listen_t *l = &cm->listens[i], *o = zg_listen_find(om, l);
        for (int k = o ? o->nfds : 0; k < l->nfds; k++) {
            zg_listen_fd_close(&l->addr, l->fds[k], 1);
        }
        l->nfds = 0;
    }
}

/* a listening socket of the stream block: one socket shared by the workers */
typedef struct {
    zg_addr_t *addr;
    int *fd;
    int backlog;
    int keepalive;
} zg_lsock_t;

/* every listening socket of conf's stream block (malloc'd; *n set) */
static zg_lsock_t *zg_lsocks(zg_conf_t *conf, int *n)
{
    zg_stream_core_main_conf_t *sm = zg_stream_core_main_conf(conf);
    zg_lsock_t *l = calloc((size_t)sm->nlistens + 1, sizeof(*l));
    int k = 0;

    if (l == NULL) {
        zg_log_error(ZG_LOG_EMERG, errno, "calloc() failed");
        return NULL;
    }
    for (int i = 0; i < sm->nlistens; i++, k++) {
        l[k].addr = &sm->listens[i].addr;
        l[k].fd = &sm->listens[i].fd;
        l[k].backlog = sm->listens[i].backlog;
        l[k].keepalive = sm->listens[i].so_keepalive;
    }
    *n = k;
    return l;
}

static int zg_lsock_same(const zg_lsock_t *a, const zg_lsock_t *b)
{
    return a->addr->socklen == b->addr->socklen
           && memcmp(&a->addr->sa, &b->addr->sa, a->addr->socklen) == 0;
}

/* opens conf's stream listening sockets, taking over old's of the same address */
static int zg_stream_listen_open(zg_conf_t *conf, zg_conf_t *old)
{
    int n, on = 0, rc = ZG_OK;
    zg_lsock_t *ls = zg_lsocks(conf, &n), *os = NULL;

    if (ls == NULL || (old != NULL && (os = zg_lsocks(old, &on)) == NULL)) {
        free(ls);
        return ZG_ERROR;
    }
    for (int i = 0; i < n; i++) {
        *ls[i].fd = -1;
        for (int j = 0; j < on; j++) {
            if (*os[j].fd != -1 && zg_lsock_same(&os[j], &ls[i])) {
                *ls[i].fd = *os[j].fd;
                *os[j].fd = -1;
                break;
            }
        }
        if (*ls[i].fd == -1) {
            *ls[i].fd = ls[i].addr->sa.ss_family == AF_UNIX
                            ? zg_listen_unix_sock(ls[i].addr, ls[i].backlog)
                            : zg_listen_sock(ls[i].addr, 0, ls[i].backlog, ls[i].keepalive);
        }
        if (*ls[i].fd == -1) {
            /* give back what was taken over, close what was opened */
            for (int k = 0; k < i; k++) {
                int taken = 0;
                for (int j = 0; j < on; j++) {
                    if (*os[j].fd == -1 && zg_lsock_same(&os[j], &ls[k])) {
                        *os[j].fd = *ls[k].fd;
                        taken = 1;
                        break;
                    }
                }
                if (!taken) {
                    zg_listen_fd_close(ls[k].addr, *ls[k].fd, 1);
                }
                *ls[k].fd = -1;
            }
            rc = ZG_ERROR;
            break;
        }
    }
    free(ls);
    free(os);
    return rc;
}

/* Opens conf's listening sockets, taking over old's of the same address: http's
 * SO_REUSEPORT sockets per worker index, then stream's shared sockets. */
int zg_listen_open(zg_conf_t *conf, zg_conf_t *old)
{
    zg_http_core_main_conf_t *cm = zg_http_core_main_conf(conf);
    zg_http_core_main_conf_t *om = old ? zg_http_core_main_conf(old) : NULL;
    int workers = zg_core_conf(conf)->worker_processes;
    int i;

    for (i = 0; i < cm->nlistens; i++) {
        if (zg_listen_fill(&cm->listens[i], zg_listen_find(om, &cm->listens[i]), workers)
            != ZG_OK) {
            zg_listen_unfill(cm, om, i + 1);
            return ZG_ERROR;
        }
    }
    if (zg_stream_listen_open(conf, old) != ZG_OK) {
        zg_listen_unfill(cm, om, cm->nlistens);
        return ZG_ERROR;
    }
    /* the http sockets taken over now belong to the new configuration */
    for (i = 0; i < cm->nlistens; i++) {
        zg_listen_t *o = zg_listen_find(om, &cm->listens[i]);
        if (o != NULL) {
            o->nfds = 0;
        }
    }
    return ZG_OK;
}

/* closes conf's listening sockets; unlink_unix: in the master, which lets them go
 * (a worker closing the ones it does not use keeps the files) */
static void zg_listen_close(zg_conf_t *conf, int unlink_unix)
{
    zg_http_core_main_conf_t *cm = zg_http_core_main_conf(conf);
    zg_stream_core_main_conf_t *sm = zg_stream_core_main_conf(conf);

    for (int i = 0; i < cm->nlistens; i++) {
        for (int k = 0; k < cm->listens[i].nfds; k++) {
            zg_listen_fd_close(&cm->listens[i].addr, cm->listens[i].fds[k], unlink_unix);
        }
        cm->listens[i].nfds = 0;
    }
    for (int i = 0; i < sm->nlistens; i++) {
        if (sm->listens[i].fd != -1) {
            zg_listen_fd_close(&sm->listens[i].addr, sm->listens[i].fd, unlink_unix);
            sm->listens[i].fd = -1;
        }
    }
}

/* In a new worker: keep its own socket of each http address (fds[idx]) and every
 * socket beyond the worker count (left over from a reload to fewer workers: shared,
 * so that no accept queue is left unread); close the other workers' sockets.  The
 * stream sockets are shared by every worker and all kept. */
static void zg_listen_keep(zg_conf_t *conf, int idx)
{
    zg_http_core_main_conf_t *cm = zg_http_core_main_conf(conf);
    int workers = zg_core_conf(conf)->worker_processes;

    for (int i = 0; i < cm->nlistens; i++) {
        if (cm->listens[i].addr.sa.ss_family == AF_UNIX) {
            continue; /* one socket, shared */
        }
        for (int k = 0; k < cm->listens[i].nfds; k++) {
            if (k != idx && k < workers) {
                close(cm->listens[i].fds[k]);
                cm->listens[i].fds[k] = -1;
            }
        }
    }
}

/* worker_rlimit_nofile, in a new worker before it runs */
static void zg_worker_rlimit(zg_conf_t *conf)
{
    int n = zg_core_conf(conf)->worker_rlimit_nofile;

    if (n > 0) {
        struct rlimit rl = { (rlim_t)n, (rlim_t)n };
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            zg_log_error(ZG_LOG_ALERT, errno, "setrlimit(RLIMIT_NOFILE) failed");
        }
    }
}

/* the modules' files (access logs) of a configuration that starts serving */
static void zg_modules_open(zg_conf_t *conf)
{
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->init_master != NULL) {
            zg_modules[i]->init_master(conf);
        }
    }
}

static void zg_modules_tick(zg_conf_t *conf)
{
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->tick != NULL) {
            zg_modules[i]->tick(conf);
        }
    }
}

static void zg_modules_close(zg_conf_t *conf)
{
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->exit_master != NULL) {
            zg_modules[i]->exit_master(conf);
        }
    }
}

static void zg_modules_reopen(zg_conf_t *conf)
{
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->reopen != NULL) {
            zg_modules[i]->reopen(conf);
        }
    }
}

/* In a new worker: the master's handlers are gone, and its signals stay blocked
 * (as the master's mask left them) until the worker has its own watchers: a QUIT
 * that arrives meanwhile waits instead of killing it (zg_worker_run unblocks). */
static void zg_signals_default(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGALRM};
    for (size_t i = 0; i < zg_nelems(sigs); i++) {
        sigaction(sigs[i], &sa, NULL);
    }
}

static int zg_spawn(zg_gen_t *gen, int slot, int idx)
{
    pid_t master = getpid();
    int chan[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, chan) == -1) {
        zg_log_error(ZG_LOG_ALERT, errno, "socketpair() failed");
        return ZG_ERROR;
    }
    pid_t pid = fork();
    if (pid == -1) {
        zg_log_error(ZG_LOG_ALERT, errno, "fork() failed");
        close(chan[0]);
        close(chan[1]);
        return ZG_ERROR;
    }
    if (pid == 0) {
        zg_signals_default();
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != master) {
            _exit(0);
        }
        close(chan[0]);
        for (int i = 0; i < ZG_MAX_WORKERS; i++) {
            if (zg_procs[i].pid && zg_procs[i].chan >= 0) {
                close(zg_procs[i].chan);
            }
        }
        /* listeners of older generations stay with the master only */
        for (zg_gen_t *g = zg_gens; g; g = g->next) {
            if (g != gen) {
                zg_listen_close(g->conf, 0);
            }
        }
        zg_listen_keep(gen->conf, idx);
        zg_worker_first = idx == 0;
        zg_worker_index = idx;
        zg_worker_rlimit(gen->conf);
        int rc = zg_worker_run(gen->conf, slot, chan[1], &zg_worker_setup);
        _exit(rc);
    }
    close(chan[1]);
    zg_procs[slot].chan = chan[0];
    zg_log_error(ZG_LOG_NOTICE, 0, "start worker process %d", (int)pid);
    zg_procs[slot].pid = pid;
    zg_procs[slot].gen = gen;
    zg_procs[slot].quitting = 0;
    zg_procs[slot].idx = idx;
    zg_proc_worker_start(slot, idx, pid);
    gen->live++;
    return ZG_OK;
}

static int zg_free_slot(void)
{
    for (int i = 0; i < ZG_MAX_WORKERS; i++) {
        if (zg_procs[i].pid == 0) {
            return i;
        }
    }
    return -1;
}

static void zg_spawn_workers(zg_gen_t *gen)
{
    for (int i = 0; i < zg_core_conf(gen->conf)->worker_processes; i++) {
        int slot = zg_free_slot();
        if (slot == -1) {
            zg_log_error(ZG_LOG_ALERT, 0, "no free worker slot (max %d)", ZG_MAX_WORKERS);
            return;
        }
        zg_spawn(gen, slot, i);
    }
}

static void zg_signal_workers(zg_gen_t *gen, int sig)
{
    for (int i = 0; i < ZG_MAX_WORKERS; i++) {
        if (zg_procs[i].pid && (gen == NULL || zg_procs[i].gen == gen)) {
            if (sig == SIGQUIT && zg_procs[i].quitting) {
                continue; /* told already: it is finishing its requests */
            }
            if (sig == SIGQUIT || sig == SIGTERM) {
                zg_procs[i].quitting = 1;
            }
            kill(zg_procs[i].pid, sig);
        }
    }
}

static int zg_live_workers(void)
{
    int n = 0;
    for (int i = 0; i < ZG_MAX_WORKERS; i++) {
        n += zg_procs[i].pid != 0;
    }
    return n;
}

static void zg_gen_release(zg_gen_t *gen)
{
    if (gen->live > 0 || gen == zg_gens) {
        return;
    }
    zg_gen_t **pp = &zg_gens;
    while (*pp && *pp != gen) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = gen->next;
    }
    zg_modules_close(gen->conf);
    zg_zone_unmap_unused(&gen->conf->zones, zg_gens ? &zg_gens->conf->zones : NULL);
    zg_listen_close(gen->conf, 1);
    zg_conf_free(gen->conf);
    free(gen);
}

/* gives back what a dead worker held in every zone it could reach */
static void zg_worker_cleanup(zg_gen_t *gen, pid_t pid, int slot)
{
    for (zg_gen_t *g = zg_gens; g; g = g->next) {
        zg_zone_recover_locks(&g->conf->zones, pid);
    }
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->worker_gone != NULL) {
            zg_modules[i]->worker_gone(gen->conf, slot);
        }
    }
}

/* Once a second: a worker that has held a zone lock for ZG_LOCK_STUCK seconds without
 * releasing it (frozen, stopped, looping) would wedge every other worker; kill it, so
 * that the reaper recovers the lock and respawns the worker. */
#define ZG_LOCK_STUCK 3

static void zg_watchdog(void)
{
    for (zg_gen_t *g = zg_gens; g; g = g->next) {
        for (zg_zone_t *z = g->conf->zones.head; z; z = z->next) {
            if (z->pool == NULL) {
                continue;
            }
            pid_t pid = zg_shmtx_stuck(&z->pool->mutex, &z->watch, ZG_LOCK_STUCK);
            if (pid <= 0) {
                continue;
            }
            for (int i = 0; i < ZG_MAX_WORKERS; i++) {
                if (zg_procs[i].pid == pid) {
                    zg_log_error(ZG_LOG_ALERT, 0,
                                 "worker process %d has held the lock of zone \"%s\" for "
                                 "%ds: killing it",
                                 (int)pid, z->name, ZG_LOCK_STUCK);
                    kill(pid, SIGKILL);
                    z->watch.ticks = 0;
                }
            }
        }
    }
}

static void zg_reap(int shutting_down)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int slot = -1;
        for (int i = 0; i < ZG_MAX_WORKERS; i++) {
            if (zg_procs[i].pid == pid) {
                slot = i;
                break;
            }
        }
        if (slot == -1) {
            continue;
        }
        zg_wproc_t *p = &zg_procs[slot];
        zg_gen_t *gen = p->gen;
        int crashed = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status));
        if (WIFSIGNALED(status)) {
            zg_log_error(p->quitting ? ZG_LOG_NOTICE : ZG_LOG_ALERT, 0,
                         "worker process %d exited on signal %d", (int)pid, WTERMSIG(status));
        } else {
            zg_log_error(crashed ? ZG_LOG_ALERT : ZG_LOG_NOTICE, 0,
                         "worker process %d exited with code %d", (int)pid,
                         WEXITSTATUS(status));
        }
        zg_worker_cleanup(gen, pid, slot);
        int respawn = !p->quitting && !shutting_down && gen == zg_gens;
        int idx = p->idx;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 2 && respawn) {
            /* as nginx: a worker that could not set itself up would fail again */
            zg_log_error(ZG_LOG_ALERT, 0,
                         "worker process %d exited with fatal code 2 and cannot be "
                         "respawned", (int)pid);
            respawn = 0;
        }
        close(p->chan);
        p->chan = -1;
        p->pid = 0;
        zg_proc_worker_gone(slot);
        p->gen = NULL;
        gen->live--;
        if (respawn) {
            zg_proc_count(worker_restarts);
            zg_spawn(gen, slot, idx);
        } else {
            zg_gen_release(gen);
        }
    }
}

static void zg_reload(void)
{
    static char err[16384];
    zg_gen_t *cur = zg_gens;
    zg_log_error(ZG_LOG_NOTICE, 0, "reconfiguring");
    zg_conf_t *conf = zg_conf_load(zg_master_conf_file, err, sizeof(err));
    if (conf == NULL) {
        /* every error of the config, a log line each */
        for (char *line = err, *nl; line != NULL; line = nl) {
            nl = strchr(line, '\n');
            if (nl != NULL) {
                *nl++ = '\0';
            }
            zg_log_error(ZG_LOG_EMERG, 0, "%s", line);
        }
        goto failed;
    }
    if (zg_priv_conf(conf) != ZG_OK) {
        zg_conf_free(conf);
        goto failed;
    }
    if (zg_zone_map_all(&conf->zones, &cur->conf->zones, err, sizeof(err)) != ZG_OK) {
        zg_log_error(ZG_LOG_EMERG, 0, "%s", err);
        zg_zone_unmap_unused(&conf->zones, &cur->conf->zones);
        zg_conf_free(conf);
        goto failed;
    }
    if (zg_listen_open(conf, cur->conf) != ZG_OK) {
        zg_zone_unmap_unused(&conf->zones, &cur->conf->zones);
        zg_conf_free(conf);
        goto failed;
    }
    /* what the running configuration has not saved yet (keyval state files) is saved
     * before the new one loads it */
    zg_modules_tick(cur->conf);
    zg_modules_open(conf);
    zg_gen_t *gen = calloc(1, sizeof(*gen));
    if (gen == NULL) {
        zg_log_error(ZG_LOG_EMERG, errno, "calloc() failed");
        zg_listen_close(conf, 1);
        zg_zone_unmap_unused(&conf->zones, &cur->conf->zones);
        zg_conf_free(conf);
        goto failed;
    }
    gen->conf = conf;
    gen->next = zg_gens;
    zg_gens = gen;
    /* sockets the new configuration no longer listens on */
    zg_listen_close(cur->conf, 1);
    zg_spawn_workers(gen);
    for (zg_gen_t *g = gen->next; g; g = g->next) {
        zg_signal_workers(g, SIGQUIT);
    }
    zg_proc_count(reloads);
    for (zg_gen_t *g = gen->next, *next; g; g = next) {
        next = g->next;
        zg_gen_release(g);
    }
    return;
failed:
    zg_log_error(ZG_LOG_ERR, 0, "reload failed: the previous configuration keeps serving");
    zg_proc_count(reload_failures);
}

/* as nginx: a reopened (maybe new) log file belongs to the workers' user */
static void zg_log_chown(int fd, const zg_conf_t *conf)
{
    const zg_core_conf_t *ccf = zg_core_conf(conf);

    if (fd >= 0 && ccf->drop_privileges && fchown(fd, ccf->user_uid, (gid_t)-1) == -1) {
        zg_log_error(ZG_LOG_ALERT, errno, "fchown() of a log file to uid %d failed",
                     (int)ccf->user_uid);
    }
}

/* The master opens the files anew and hands each worker the new descriptors over
 * its channel: a worker, running as "user" inside its sandbox, opens no file. */
static void zg_reopen(void)
{
    int *fd;

    zg_log_reopen();
    zg_log_chown(zg_log_fileno(), zg_gens->conf);
    for (zg_gen_t *g = zg_gens; g; g = g->next) {
        zg_modules_reopen(g->conf);
        for (int k = 0; (fd = zg_modules_file(g->conf, k)) != NULL; k++) {
            zg_log_chown(*fd, g->conf);
        }
    }
    for (int i = 0; i < ZG_MAX_WORKERS; i++) {
        if (zg_procs[i].pid && zg_procs[i].chan >= 0) {
            zg_chan_send_logs(zg_procs[i].chan, zg_procs[i].gen->conf);
        }
    }
}

static int zg_write_pid(const char *file)
{
    char buf[32];
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        zg_log_error(ZG_LOG_EMERG, errno, "open() \"%s\" failed", file);
        return ZG_ERROR;
    }
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (write(fd, buf, (size_t)n) != n) {
        zg_log_error(ZG_LOG_EMERG, errno, "write() \"%s\" failed", file);
        close(fd);
        return ZG_ERROR;
    }
    close(fd);
    return ZG_OK;
}

static int zg_daemonize(void)
{
    pid_t pid = fork();
    if (pid == -1) {
        zg_log_error(ZG_LOG_EMERG, errno, "fork() failed");
        return ZG_ERROR;
    }
    if (pid > 0) {
        _exit(0);
    }
    setsid();
    int fd = open("/dev/null", O_RDWR);
    if (fd != -1) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        if (strcmp(zg_core_conf(zg_gens->conf)->error_log_file, "stderr") != 0) {
            dup2(fd, STDERR_FILENO);
        }
        if (fd > STDERR_FILENO) {
            close(fd);
        }
    }
    return ZG_OK;
}

int zg_master_run(zg_conf_t *conf, const char *conf_file)
{
    char err[1024];
    if (realpath(conf_file, zg_master_conf_file) == NULL) {
        snprintf(zg_master_conf_file, sizeof(zg_master_conf_file), "%s", conf_file);
    }
    zg_core_conf_t *ccf = zg_core_conf(conf);
    if (zg_log_open(ccf->error_log_file, ccf->error_log_level) != ZG_OK) {
        return 1;
    }
    if (zg_priv_conf(conf) != ZG_OK) {
        return 1;
    }
    if (zg_proc_stats_init() != ZG_OK) {
        return 1;
    }
    if (zg_zone_map_all(&conf->zones, NULL, err, sizeof(err)) != ZG_OK) {
        zg_log_error(ZG_LOG_EMERG, 0, "%s", err);
        return 1;
    }
    if (zg_listen_open(conf, NULL) != ZG_OK) {
        return 1;
    }
    zg_modules_open(conf);

    zg_gens = calloc(1, sizeof(zg_gen_t));
    if (zg_gens == NULL) {
        return 1;
    }
    zg_gens->conf = conf;
    for (int i = 0; i < ZG_MAX_WORKERS; i++) {
        zg_procs[i].chan = -1;
    }

    if (zg_core_conf(conf)->daemon && zg_daemonize() != ZG_OK) {
        return 1;
    }
    if (zg_core_conf(conf)->pid_file && zg_write_pid(zg_core_conf(conf)->pid_file) != ZG_OK) {
        return 1;
    }

    sigset_t set, empty;
    sigemptyset(&set);
    int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGALRM};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = zg_master_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < zg_nelems(sigs); i++) {
        sigaddset(&set, sigs[i]);
        sigaction(sigs[i], &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sigemptyset(&empty);

    zg_log_error(ZG_LOG_NOTICE, 0, "zonegate/" ZG_VERSION " started, %d workers",
                 zg_core_conf(conf)->worker_processes);
    zg_spawn_workers(zg_gens);
    alarm(1);

    int stopping = 0, killed = 0;
    for (;;) {
        if (zg_live_workers() > 0 || !stopping) {
            sigsuspend(&empty);
        }
        if (zg_sig_reap) {
            zg_sig_reap = 0;
            zg_reap(stopping);
        }
        if (stopping && zg_live_workers() == 0) {
            break;
        }
        if (zg_sig_terminate && stopping != 2) {
            stopping = 2;
            zg_signal_workers(NULL, SIGTERM);
            alarm(5);
            continue;
        }
        if (zg_sig_quit && !stopping) {
            zg_sig_quit = 0;
            stopping = 1;
            zg_signal_workers(NULL, SIGQUIT);
            continue;
        }
        if (zg_sig_alarm) {
            zg_sig_alarm = 0;
            if (stopping == 2 && !killed) {
                killed = 1;
                zg_signal_workers(NULL, SIGKILL);
            } else if (!stopping) {
                zg_watchdog();
                zg_modules_tick(zg_gens->conf);
                alarm(1);
            }
        }
        if (stopping) {
            continue;
        }
        if (zg_sig_reload) {
            zg_sig_reload = 0;
            zg_reload();
        }
        if (zg_sig_reopen) {
            zg_sig_reopen = 0;
            zg_reopen();
        }
    }

    zg_log_error(ZG_LOG_NOTICE, 0, "exit");
    if (zg_core_conf(zg_gens->conf)->pid_file) {
        unlink(zg_core_conf(zg_gens->conf)->pid_file);
    }
    while (zg_gens) {
        zg_gen_t *g = zg_gens;
        zg_gens = g->next;
        zg_modules_close(g->conf);
        zg_zone_unmap_all(&g->conf->zones);
        zg_listen_close(g->conf, 1);
        zg_conf_free(g->conf);
        free(g);
    }
    return 0;
}
