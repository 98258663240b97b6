/* zg_unix.c — connecting a libuv TCP handle to a unix domain socket. */
#include "zg_unix.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

int zg_unix_connect(uv_tcp_t *t, const zg_addr_t *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc;

    if (fd == -1) {
        return -errno;
    }
    if (connect(fd, (const struct sockaddr *)&addr->sa, addr->socklen) != 0) {
        rc = errno == EAGAIN ? UV_ECONNREFUSED : -errno;
        close(fd);
        return rc;
    }
    rc = uv_tcp_open(t, fd);
    if (rc != 0) {
        close(fd);
    }
    return rc;
}
