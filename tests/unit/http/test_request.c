/* test_request.c — a worker (forked, on a real socket) runs requests through the
 * phases in nginx's order: `return` before any limit, limit_req before allow/deny,
 * the content handler last, 404 without one; keep-alive and HEAD on local answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zg_http_core.h"
#include "zg_log.h"
#include "zg_process.h"
#include "zg_worker.h"

static zg_conf_t *conf;
static pid_t worker;
static int port;

static int nothing(const zg_conf_t *c)
{
    (void)c;
    return ZG_OK;
}

static int no_logs(int chan, const zg_conf_t *c)
{
    (void)chan;
    (void)c;
    return ZG_OK;
}

static const zg_worker_setup_t setup_none = { nothing, nothing, no_logs };

static int free_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0), p;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        return -1;
    }
    p = ntohs(sin.sin_port);
    close(fd);
    return p;
}

static int setup(void **state)
{
    char text[2048], err[512];
    int chan[2];

    (void)state;
    zg_log_open("stderr", ZG_LOG_EMERG);
    port = free_port();
    snprintf(text, sizeof(text),
             "http {\n"
             " limit_req_zone $remote_addr zone=z:64k rate=1r/m;\n"
             " limit_req_status 429;\n"
             " server {\n"
             "  listen 127.0.0.1:%d;\n"
             "  location = /ret { limit_req zone=z; deny all; return 204; }\n"
             "  location /deny { limit_req zone=z; deny all; }\n"
             "  location /none { }\n"
             "  location = /text { return 200 \"ok\"; }\n"
             "  location = /slab { slab_stat; }\n"
             " }\n"
             "}\n", port);
    conf = zg_conf_load_string("/x/request.conf", text, strlen(text), err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if (zg_zone_map_all(&conf->zones, NULL, err, sizeof(err)) != ZG_OK ||
        zg_listen_open(conf, NULL) != ZG_OK || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, chan)) {
        return -1;
    }
    worker = fork();
    if (worker == 0) {
        close(chan[0]);
        alarm(30);
        _exit(zg_worker_run(conf, 0, chan[1], &setup_none));
    }
    close(chan[1]);
    return worker > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    int status;

    (void)state;
    kill(worker, SIGTERM);
    waitpid(worker, &status, 0);
    zg_zone_unmap_all(&conf->zones);
    zg_conf_free(conf);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int connect_worker(void)
{
    struct sockaddr_in sin;
    int fd;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 100; i++) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
            return fd;
        }
        close(fd);
        usleep(20000);
    }
    fail_msg("the worker does not accept");
    return -1;
}

/* one request on fd; the whole response head (and body when len says so) in buf */
static int request(int fd, const char *method, const char *path, char *buf, size_t len)
{
    char req[256];
    size_t got = 0;
    int n, status = 0;

    n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\n\r\n", method, path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    while (got < len - 1) {
        ssize_t r = read(fd, buf + got, len - 1 - got);
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            char *cl = strstr(buf, "Content-Length: ");
            size_t body = cl != NULL && strcmp(method, "HEAD") != 0 ? strtoul(cl + 16, NULL, 10)
                                                                    : 0;
            if (got >= (size_t)(end + 4 - buf) + body) {
                break;
            }
        }
    }
    buf[got] = '\0';
    sscanf(buf, "HTTP/1.1 %d", &status);
    return status;
}

static void test_phase_order(void **state)
{
    char buf[8192];
    int fd = connect_worker();

    (void)state;
    /* rewrite: `return` answers before limit_req and deny, and charges nothing */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(request(fd, "GET", "/ret", buf, sizeof(buf)), 204);
    }
    /* preaccess before access: the first request passes the limit and is denied,
     * the second is rejected by the limit before the access rules are looked at */
    assert_int_equal(request(fd, "GET", "/deny", buf, sizeof(buf)), 403);
    assert_int_equal(request(fd, "GET", "/deny/x", buf, sizeof(buf)), 429);
    /* no content handler */
    assert_int_equal(request(fd, "GET", "/none", buf, sizeof(buf)), 404);
    /* a content handler of the admin module */
    assert_int_equal(request(fd, "GET", "/slab", buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "* shared memory: z\n"));
    close(fd);
}

static void test_keepalive_and_head(void **state)
{
    char buf[4096];
    int fd = connect_worker();

    (void)state;
    assert_int_equal(request(fd, "GET", "/text", buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "Connection: keep-alive"));
    assert_non_null(strstr(buf, "\r\n\r\nok"));
    /* HEAD: the same head, no body, the connection still usable */
    assert_int_equal(request(fd, "HEAD", "/text", buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "Content-Length: 2"));
    assert_null(strstr(buf, "\r\n\r\nok"));
    assert_int_equal(request(fd, "GET", "/text", buf, sizeof(buf)), 200);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phase_order),
        cmocka_unit_test(test_keepalive_and_head),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
