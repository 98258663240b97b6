/* test_splice.c — the splice(2) relay between two real loopback TCP connections:
 * bytes both ways in order, back-pressure (a full pipe stops reading its source),
 * half-close passed on as shutdown, the first EOF ending the relay without
 * half-close, a reset reported as an error of the direction it hit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zg_splice.h"

/* c1 -> a1 =relay= c2 -> a2: the test drives c1 (the client) and a2 (the upstream) */
typedef struct {
    uv_loop_t loop;
    int c1, a1, c2, a2;
    zg_splice_t *sp;
    int done, rc, dir, writing, closed;
} fx_t;

static void pair(int l, int *c, int *a)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*c, (struct sockaddr *)&sa, len), 0);
    *a = accept(l, NULL, NULL);
    assert_true(*a >= 0);
}

static void on_done(void *data, int rc, int dir, int writing)
{
    fx_t *f = data;

    f->done++;
    f->rc = rc;
    f->dir = dir;
    f->writing = writing;
}

static void on_closed(void *data)
{
    ((fx_t *)data)->closed = 1;
}

static void setup(fx_t *f, int half_close)
{
    struct sockaddr_in sa;
    int l = socket(AF_INET, SOCK_STREAM, 0);

    memset(f, 0, sizeof(*f));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 4), 0);
    pair(l, &f->c1, &f->a1);
    pair(l, &f->c2, &f->a2);
    close(l);
    fcntl(f->a1, F_SETFL, O_NONBLOCK);
    fcntl(f->c2, F_SETFL, O_NONBLOCK);
    fcntl(f->c1, F_SETFL, O_NONBLOCK);
    fcntl(f->a2, F_SETFL, O_NONBLOCK);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(zg_splice_start(&f->sp, &f->loop, f->a1, f->c2, half_close, on_done, f), 0);
}

static void teardown(fx_t *f)
{
    zg_splice_close(f->sp, on_closed);
    while (!f->closed) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(uv_loop_close(&f->loop), 0);
    close(f->c1);
    close(f->a1);
    close(f->c2);
    close(f->a2);
}

/* runs the loop until fd has n bytes (or EOF: returns what came) */
static size_t drain(fx_t *f, int fd, char *buf, size_t n)
{
    size_t got = 0;

    for (int i = 0; i < 200000 && got < n; i++) {
        ssize_t k = recv(fd, buf + got, n - got, 0);
        if (k > 0) {
            got += (size_t)k;
            continue;
        }
        if (k == 0) {
            break;
        }
        uv_run(&f->loop, UV_RUN_NOWAIT);
        poll(NULL, 0, 0);
    }
    return got;
}

static void turn(fx_t *f, int n)
{
    for (int i = 0; i < n; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
}

static void test_both_ways(void **state)
{
    fx_t f;
    char buf[64];

    (void)state;
    setup(&f, 1);
    assert_int_equal(send(f.c1, "hello", 5, 0), 5);
    assert_int_equal(drain(&f, f.a2, buf, 5), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(send(f.a2, "world!", 6, 0), 6);
    assert_int_equal(drain(&f, f.c1, buf, 6), 6);
    assert_memory_equal(buf, "world!", 6);
    assert_int_equal(f.sp->bytes[0], 5);
    assert_int_equal(f.sp->bytes[1], 6);
    assert_int_equal(f.done, 0);
    teardown(&f);
}

static void test_back_pressure(void **state)
{
    static char chunk[65536], got[65536];
    fx_t f;
    uint64_t sent = 0, recvd = 0, sum_in = 0, sum_out = 0;

    (void)state;
    setup(&f, 1);
    for (size_t i = 0; i < sizeof(chunk); i++) {
        chunk[i] = (char)(i * 7 + 3);
    }
    /* the upstream reads nothing: the client's bytes fill the sockets and the pipe,
     * then the relay stops reading the client */
    for (int i = 0; i < 4000; i++) {
        ssize_t k = send(f.c1, chunk, sizeof(chunk), 0);
        if (k > 0) {
            for (ssize_t j = 0; j < k; j++) {
                sum_in = sum_in * 31 + (unsigned char)chunk[j];
            }
            sent += (uint64_t)k;
        }
        turn(&f, 1);
    }
    assert_true(f.sp->piped[0] > 0);
    assert_true(f.sp->piped[0] <= ZG_SPLICE_PIPE);
    assert_false(f.sp->events[0] & UV_READABLE);   /* not reading the client */
    assert_true(f.sp->events[1] & UV_WRITABLE);    /* waiting for the upstream's room */
    assert_true(sent < 64u * 1024 * 1024);         /* bounded: sockets + one pipe */
    assert_int_equal(f.done, 0);
    /* the upstream reads: everything arrives, in order */
    while (recvd < sent) {
        size_t k = drain(&f, f.a2, got, sizeof(got));
        assert_true(k > 0);
        for (size_t j = 0; j < k; j++) {
            sum_out = sum_out * 31 + (unsigned char)got[j];
        }
        recvd += k;
    }
    assert_int_equal(recvd, sent);
    assert_true(sum_in == sum_out);
    assert_int_equal(f.sp->bytes[0], sent);
    teardown(&f);
}

static void test_half_close(void **state)
{
    fx_t f;
    char buf[16];

    (void)state;
    setup(&f, 1);
    assert_int_equal(send(f.c1, "ab", 2, 0), 2);
    shutdown(f.c1, SHUT_WR);
    /* the upstream sees the bytes then EOF, and may still answer */
    assert_int_equal(drain(&f, f.a2, buf, sizeof(buf)), 2);
    assert_int_equal(f.done, 0);
    assert_int_equal(send(f.a2, "xyz", 3, 0), 3);
    assert_int_equal(drain(&f, f.c1, buf, 3), 3);
    assert_memory_equal(buf, "xyz", 3);
    shutdown(f.a2, SHUT_WR);
    for (int i = 0; i < 100000 && f.done == 0; i++) {
        turn(&f, 1);
    }
    assert_int_equal(f.done, 1);
    assert_int_equal(f.rc, 0);
    assert_int_equal(drain(&f, f.c1, buf, sizeof(buf)), 0); /* the client sees EOF */
    teardown(&f);
}

static void test_first_eof_ends_without_half_close(void **state)
{
    fx_t f;
    char buf[16];

    (void)state;
    setup(&f, 0);
    assert_int_equal(send(f.c1, "ab", 2, 0), 2);
    shutdown(f.c1, SHUT_WR);
    assert_int_equal(drain(&f, f.a2, buf, 2), 2);
    for (int i = 0; i < 100000 && f.done == 0; i++) {
        turn(&f, 1);
    }
    assert_int_equal(f.done, 1);
    assert_int_equal(f.rc, 0);
    teardown(&f);
}

static void test_reset_is_an_error(void **state)
{
    fx_t f;
    struct linger lg = { 1, 0 };

    (void)state;
    setup(&f, 1);
    setsockopt(f.c1, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(f.c1);
    f.c1 = socket(AF_INET, SOCK_STREAM, 0); /* something for teardown to close */
    for (int i = 0; i < 100000 && f.done == 0; i++) {
        turn(&f, 1);
    }
    assert_int_equal(f.done, 1);
    assert_int_equal(f.rc, -ECONNRESET);
    assert_int_equal(f.dir, 0);
    assert_int_equal(f.writing, 0);
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_ways),
        cmocka_unit_test(test_back_pressure),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_first_eof_ends_without_half_close),
        cmocka_unit_test(test_reset_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
