/* test_unix.c — zg_unix_connect: a libuv TCP handle connected to a unix socket (that
 * then reads and writes as any stream), and the failures a proxy sees as a failed
 * attempt: no such file, nothing listening (a stale socket file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zg_unix.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/zgunit-unix-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static void addr_of(zg_addr_t *a, const char *name)
{
    char path[128];

    snprintf(path, sizeof(path), "unix:%s/%s", dir, name);
    assert_int_equal(zg_conf_parse_addr(path, strlen(path), 0, a), ZG_OK);
}

static int listen_on(const zg_addr_t *a)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (const struct sockaddr *)&a->sa, a->socklen), 0);
    assert_int_equal(listen(fd, 4), 0);
    return fd;
}

static void test_connects_and_talks(void **state)
{
    uv_loop_t loop;
    uv_tcp_t t;
    zg_addr_t a;
    uv_buf_t b = uv_buf_init("ping", 4);
    char got[8] = { 0 };
    int lfd, cfd;

    (void)state;
    addr_of(&a, "live.sock");
    lfd = listen_on(&a);
    uv_loop_init(&loop);
    uv_tcp_init(&loop, &t);
    assert_int_equal(zg_unix_connect(&t, &a), 0);
    cfd = accept(lfd, NULL, NULL);
    assert_true(cfd >= 0);
    assert_int_equal(uv_try_write((uv_stream_t *)&t, &b, 1), 4);
    assert_int_equal(read(cfd, got, sizeof(got)), 4);
    assert_string_equal(got, "ping");
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(cfd);
    close(lfd);
    unlink(((struct sockaddr_un *)&a.sa)->sun_path);
}

static void test_failures(void **state)
{
    uv_loop_t loop;
    uv_tcp_t t, t2;
    zg_addr_t a;
    int fd;

    (void)state;
    uv_loop_init(&loop);
    /* no such file */
    addr_of(&a, "missing.sock");
    uv_tcp_init(&loop, &t2);
    assert_int_equal(zg_unix_connect(&t2, &a), UV_ENOENT);
    uv_close((uv_handle_t *)&t2, NULL);
    /* a socket file nothing listens on any more */
    addr_of(&a, "stale.sock");
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (const struct sockaddr *)&a.sa, a.socklen), 0);
    close(fd);
    uv_tcp_init(&loop, &t);
    assert_int_equal(zg_unix_connect(&t, &a), UV_ECONNREFUSED);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    unlink(((struct sockaddr_un *)&a.sa)->sun_path);
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connects_and_talks),
        cmocka_unit_test(test_failures),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
