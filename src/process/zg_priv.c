/* zg_priv.c — what a worker may do: it runs as "user" (default nobody) when the
 * master is root, inside a seccomp allow-list unless "worker_sandbox off", and it
 * gets reopened log files from the master over a socketpair (it never opens a
 * file for writing itself). */
#include "zg_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zg_core_module.h"
#include "zg_log.h"

#if defined(__SANITIZE_ADDRESS__)
#define ZG_SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZG_SANDBOX_ASAN 1
#endif
#endif

#define ZG_USER_DEFAULT "nobody"

int zg_priv_conf(zg_conf_t *conf)
{
    zg_core_conf_t *ccf = zg_core_conf(conf);
    struct passwd *pw;
    struct group *gr;
    char gbuf[32];
    const char *gname;

    ccf->drop_privileges = 0;
    if (geteuid() != 0) {
        if (ccf->user != NULL) {
            zg_log_error(ZG_LOG_NOTICE, 0,
                         "the \"user\" directive makes sense only if the master process "
                         "runs with super-user privileges, ignored");
        }
        zg_log_error(ZG_LOG_NOTICE, 0, "workers run as uid %d, sandbox %s", (int)geteuid(),
                     ccf->worker_sandbox ? "on" : "off");
        return ZG_OK;
    }
    if (ccf->user == NULL) {
        pw = getpwnam(ZG_USER_DEFAULT);
        if (pw == NULL) {
            zg_log_error(ZG_LOG_EMERG, errno,
                         "getpwnam(\"" ZG_USER_DEFAULT "\") failed: no \"user\" directive "
                         "and no user \"" ZG_USER_DEFAULT "\" to run workers as");
            return ZG_ERROR;
        }
        ccf->user = zg_conf_strdup(conf, ZG_USER_DEFAULT, sizeof(ZG_USER_DEFAULT) - 1);
        if (ccf->user == NULL) {
            return ZG_ERROR;
        }
        ccf->user_uid = pw->pw_uid;
        ccf->user_gid = pw->pw_gid;
    }
    ccf->drop_privileges = 1;
    gname = ccf->group;
    if (gname == NULL) {
        gr = getgrgid(ccf->user_gid);
        if (gr != NULL) {
            gname = gr->gr_name;
        } else {
            snprintf(gbuf, sizeof(gbuf), "%d", (int)ccf->user_gid);
            gname = gbuf;
        }
    }
    zg_log_error(ZG_LOG_NOTICE, 0, "workers run as %s:%s (uid %d, gid %d), sandbox %s",
                 ccf->user, gname, (int)ccf->user_uid, (int)ccf->user_gid,
                 ccf->worker_sandbox ? "on" : "off");
    return ZG_OK;
}

int zg_priv_drop(const zg_conf_t *conf)
{
    const zg_core_conf_t *ccf = zg_core_conf(conf);
    uid_t uid = ccf->user_uid;
    gid_t gid = ccf->user_gid;

    if (!ccf->drop_privileges) {
        return ZG_OK;
    }
    if (setgid(gid) == -1) {
        zg_log_error(ZG_LOG_EMERG, errno, "setgid(%d) failed", (int)gid);
        return ZG_ERROR;
    }
    if (initgroups(ccf->user, gid) == -1) {
        zg_log_error(ZG_LOG_EMERG, errno, "initgroups(%s, %d) failed", ccf->user,
                     (int)gid);
        return ZG_ERROR;
    }
    if (setuid(uid) == -1) {
        zg_log_error(ZG_LOG_EMERG, errno, "setuid(%d) failed", (int)uid);
        return ZG_ERROR;
    }
    if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid) {
        zg_log_error(ZG_LOG_EMERG, 0,
                     "privileges not dropped: uid %d euid %d gid %d egid %d, wanted %d:%d",
                     (int)getuid(), (int)geteuid(), (int)getgid(), (int)getegid(), (int)uid,
                     (int)gid);
        return ZG_ERROR;
    }
    if (uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
        zg_log_error(ZG_LOG_EMERG, 0, "privileges not dropped: setuid(0) still succeeds");
        return ZG_ERROR;
    }
    return ZG_OK;
}

/* ---- seccomp ---- */

/* what every worker does once set up (libuv loop, sockets, timers, malloc, robust
 * futexes of the zone locks, libuv's getaddrinfo threads for the Redis link) */
static const char *const zg_sandbox_allow[] = {
    /* descriptors and I/O */
    "read", "write", "readv", "writev", "pread64", "pwrite64", "close", "dup", "dup3",
    "fcntl", "lseek", "fstat", "newfstatat", "statx", "stat", "lstat", "pipe2",
    "eventfd2",
    /* static files: bodies with sendfile (opens are read-only, below); realpath(3)
     * for $realpath_root reads symlinks */
    "sendfile", "readlink", "readlinkat",
    /* the stream relay (proxy_splice) */
    "splice",
    /* event loop and time */
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "poll", "ppoll",
    "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep",
    "clock_nanosleep", "timerfd_create", "timerfd_settime",
    /* sockets */
    "accept", "accept4", "connect", "getsockname", "getpeername", "setsockopt",
    "getsockopt", "shutdown", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg",
    "recvmmsg", "bind",
    /* memory */
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
    /* signals */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
    /* threads, locks, identity */
    "futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "gettid",
    "getpid", "getppid", "getuid", "geteuid", "getgid", "getegid", "sched_yield",
    "sched_getaffinity", "getrandom", "getrlimit", "prlimit64", "uname",
    "exit", "exit_group",
    /* getaddrinfo (read-only opens are allowed below) */
    "access", "faccessat", "faccessat2",
#ifdef ZG_DEBUG
    /* the lock fault triggers of the chaos tests */
    "unlink", "unlinkat",
#endif
};

static struct scmp_arg_cmp zg_arg(unsigned arg, enum scmp_compare op, scmp_datum_t a,
                                  scmp_datum_t b)
{
    struct scmp_arg_cmp c = {arg, op, a, b};
    return c;
}

static int zg_sandbox_rule(scmp_filter_ctx ctx, uint32_t action, const char *name,
                           unsigned n, const struct scmp_arg_cmp *args)
{
    int nr = seccomp_syscall_resolve_name(name);
    int rc;

    if (nr == __NR_SCMP_ERROR) {
        return 0; /* not on this architecture */
    }
    rc = seccomp_rule_add_array(ctx, action, nr, n, args);
    if (rc < 0) {
        zg_log_error(ZG_LOG_EMERG, -rc, "seccomp_rule_add(%s) failed", name);
        return -1;
    }
    return 0;
}

static int zg_sandbox_dirs[16];
static int zg_sandbox_ndirs;

int zg_sandbox_dir(int fd)
{
    if (zg_sandbox_ndirs == (int)zg_nelems(zg_sandbox_dirs)) {
        zg_log_error(ZG_LOG_EMERG, 0, "too many writable directories for the sandbox");
        return ZG_ERROR;
    }
    zg_sandbox_dirs[zg_sandbox_ndirs++] = fd;
    return ZG_OK;
}

/* writes relative to the directories of zg_sandbox_dir only */
static int zg_sandbox_dir_rules(scmp_filter_ctx ctx)
{
    for (int i = 0; i < zg_sandbox_ndirs; i++) {
        scmp_datum_t fd = (scmp_datum_t)zg_sandbox_dirs[i];
        struct scmp_arg_cmp a0 = zg_arg(0, SCMP_CMP_EQ, fd, 0);
        struct scmp_arg_cmp two[2] = { zg_arg(0, SCMP_CMP_EQ, fd, 0),
                                       zg_arg(2, SCMP_CMP_EQ, fd, 0) };
        if (zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "openat", 1, &a0) != 0 ||
            zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "mkdirat", 1, &a0) != 0 ||
            zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "unlinkat", 1, &a0) != 0 ||
            zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "renameat", 2, two) != 0 ||
            zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "renameat2", 2, two) != 0) {
            return -1;
        }
    }
    return 0;
}

int zg_sandbox_enter(const zg_conf_t *conf)
{
    scmp_filter_ctx ctx;
    pid_t self = getpid();
    int rc;

    if (!((const zg_core_conf_t *)zg_core_conf(conf))->worker_sandbox) {
        return ZG_OK;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
        zg_log_error(ZG_LOG_EMERG, errno, "prctl(PR_SET_NO_NEW_PRIVS) failed");
        return ZG_ERROR;
    }
    ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL) {
        zg_log_error(ZG_LOG_EMERG, 0, "seccomp_init() failed");
        return ZG_ERROR;
    }
    /* every thread of the worker, should one exist already */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc < 0) {
        zg_log_error(ZG_LOG_EMERG, -rc, "seccomp_attr_set(TSYNC) failed");
        goto failed;
    }
    for (size_t i = 0; i < zg_nelems(zg_sandbox_allow); i++) {
        if (zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, zg_sandbox_allow[i], 0, NULL) != 0) {
            goto failed;
        }
    }

    /* files: read-only opens (resolver configuration); never write or create */
    const scmp_datum_t wr = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND;
    struct scmp_arg_cmp open_ro = zg_arg(1, SCMP_CMP_MASKED_EQ, wr, 0);
    struct scmp_arg_cmp openat_ro = zg_arg(2, SCMP_CMP_MASKED_EQ, wr, 0);
    /* threads only: a clone without CLONE_THREAD is a fork */
    struct scmp_arg_cmp thread = zg_arg(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
    /* signals to itself only (raise, abort) */
    struct scmp_arg_cmp to_self = zg_arg(0, SCMP_CMP_EQ, (scmp_datum_t)self, 0);
    /* sockets: IP (clients, upstreams, Redis, DNS), unix (nscd) and netlink
     * (getaddrinfo's address configuration) */
    static const int domains[] = {AF_INET, AF_INET6, AF_UNIX, AF_NETLINK};
    static const unsigned long ioctls[] = {
        FIONBIO, FIOCLEX, FIONCLEX, FIONREAD,
#ifdef ZG_SANDBOX_ASAN
        TCGETS, /* isatty(2), for every line of a report */
#endif
    };

    /* ... but the proxy's anonymous temp files (proxy_buffering): O_TMPFILE | O_EXCL
     * makes a file no path names, now or ever (linkat refuses it) */
    const scmp_datum_t tmp = O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC;
    struct scmp_arg_cmp open_tmp = zg_arg(1, SCMP_CMP_EQ, tmp, 0);
    struct scmp_arg_cmp openat_tmp = zg_arg(2, SCMP_CMP_EQ, tmp, 0);

    if (zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "open", 1, &open_ro) != 0 ||
        zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "openat", 1, &openat_ro) != 0 ||
        zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "open", 1, &open_tmp) != 0 ||
        zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "openat", 1, &openat_tmp) != 0 ||
        zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &thread) != 0 ||
        zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "kill", 1, &to_self) != 0 ||
        zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "tgkill", 1, &to_self) != 0 ||
        /* glibc falls back to clone, whose flags a filter can see */
        zg_sandbox_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL) != 0 ||
        zg_sandbox_dir_rules(ctx) != 0) {
        goto failed;
    }
    for (size_t i = 0; i < zg_nelems(domains); i++) {
        struct scmp_arg_cmp d = zg_arg(0, SCMP_CMP_EQ, (scmp_datum_t)domains[i], 0);
        if (zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &d) != 0) {
            goto failed;
        }
    }
    for (size_t i = 0; i < zg_nelems(ioctls); i++) {
        struct scmp_arg_cmp d = zg_arg(1, SCMP_CMP_EQ, (scmp_datum_t)ioctls[i], 0);
        if (zg_sandbox_rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1, &d) != 0) {
            goto failed;
        }
    }
#ifdef ZG_SANDBOX_ASAN
    /* ASan's symbolizer is a child process: let the fork fail, not kill the worker
     * in the middle of a report (execve stays denied) */
    struct scmp_arg_cmp fork_ = zg_arg(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0);
    if (zg_sandbox_rule(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 1, &fork_) != 0 ||
        zg_sandbox_rule(ctx, SCMP_ACT_ERRNO(EPERM), "fork", 0, NULL) != 0 ||
        zg_sandbox_rule(ctx, SCMP_ACT_ERRNO(EPERM), "vfork", 0, NULL) != 0) {
        goto failed;
    }
#endif

    rc = seccomp_load(ctx);
    if (rc < 0) {
        zg_log_error(ZG_LOG_EMERG, -rc, "seccomp_load() failed");
        goto failed;
    }
    seccomp_release(ctx);
    return ZG_OK;

failed:
    seccomp_release(ctx);
    return ZG_ERROR;
}

/* ---- log channel ---- */

#define ZG_CHAN_FDS 32

typedef struct {
    int n;
    int index[ZG_CHAN_FDS]; /* 0: the error log, k: the modules' k-th file (from 1) */
} zg_chan_msg_t;

static int zg_chan_send(int fd, zg_chan_msg_t *m, const int *fds)
{
    char cbuf[CMSG_SPACE(sizeof(int) * ZG_CHAN_FDS)];
    struct iovec iov = {m, sizeof(*m)};
    struct msghdr mh;
    struct cmsghdr *cm;
    ssize_t rc;

    memset(&mh, 0, sizeof(mh));
    memset(cbuf, 0, sizeof(cbuf));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)m->n);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)m->n);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)m->n);
    do {
        rc = sendmsg(fd, &mh, MSG_NOSIGNAL);
    } while (rc == -1 && errno == EINTR);
    if (rc == -1) {
        zg_log_error(ZG_LOG_ALERT, errno, "sendmsg() of log descriptors failed");
        return ZG_ERROR;
    }
    m->n = 0;
    return ZG_OK;
}

int zg_chan_send_logs(int fd, zg_conf_t *conf)
{
    zg_chan_msg_t m;
    int fds[ZG_CHAN_FDS], *slot;

    memset(&m, 0, sizeof(m));
    if (zg_log_fileno() >= 0) {
        m.index[m.n] = 0;
        fds[m.n++] = zg_log_fileno();
    }
    for (int k = 0; (slot = zg_modules_file(conf, k)) != NULL; k++) {
        if (*slot < 0) {
            continue;
        }
        m.index[m.n] = k + 1;
        fds[m.n++] = *slot;
        if (m.n == ZG_CHAN_FDS && zg_chan_send(fd, &m, fds) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    if (m.n > 0) {
        return zg_chan_send(fd, &m, fds);
    }
    return ZG_OK;
}

static void zg_chan_place(zg_conf_t *conf, int index, int fd)
{
    int target = -1, *slot;

    if (index == 0) {
        target = zg_log_fileno();
    } else {
        slot = zg_modules_file(conf, index - 1);
        if (slot == NULL) {
            close(fd);
            return;
        }
        if (*slot < 0) {
            *slot = fd; /* it could not be opened at start; now it is */
            return;
        }
        target = *slot;
    }
    if (target < 0 || dup3(fd, target, O_CLOEXEC) == -1) {
        if (target >= 0) {
            zg_log_error(ZG_LOG_ALERT, errno, "dup3() of a reopened log failed");
        }
    }
    close(fd);
}

int zg_chan_recv_logs(int fd, const zg_conf_t *cconf)
{
    char cbuf[CMSG_SPACE(sizeof(int) * ZG_CHAN_FDS)];
    zg_chan_msg_t m;
    struct iovec iov = {&m, sizeof(m)};
    struct msghdr mh;
    struct cmsghdr *cm;
    ssize_t rc;

    for (;;) {
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof(cbuf);
        rc = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (rc == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return ZG_OK;
            }
            zg_log_error(ZG_LOG_ALERT, errno, "recvmsg() on the master's channel failed");
            return ZG_ERROR;
        }
        if (rc == 0) {
            return ZG_ERROR; /* the master is gone */
        }
        int fds[ZG_CHAN_FDS], nfds = 0;
        for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                int n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                n = n > ZG_CHAN_FDS - nfds ? ZG_CHAN_FDS - nfds : n;
                memcpy(fds + nfds, CMSG_DATA(cm), sizeof(int) * (size_t)n);
                nfds += n;
            }
        }
        if ((size_t)rc != sizeof(m) || m.n != nfds || (mh.msg_flags & MSG_CTRUNC)) {
            zg_log_error(ZG_LOG_ALERT, 0, "bad message on the master's channel");
            for (int i = 0; i < nfds; i++) {
                close(fds[i]);
            }
            continue;
        }
        for (int i = 0; i < nfds; i++) {
            zg_chan_place((zg_conf_t *)cconf, m.index[i], fds[i]);
        }
    }
}
