/* test_access_log.c — access log lines: formats, escaping, reopen, concurrent writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zg_access_log.h"
#include "zg_limit_req.h"
#include "zg_log.h"

#include "zg_test_logs.h"

/* ---- access logs ---- */

static struct sockaddr_in sin4;
static const zg_str_t hdr_names[] = { zg_string("Referer"), zg_string("User-Agent") };
static const zg_str_t hdr_values[] = { zg_string("http://ref.example/"),
                                       zg_string("Mozilla/5.0 \"quoted\"") };

static void ctx_init(zg_var_ctx_t *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    memset(&sin4, 0, sizeof(sin4));
    sin4.sin_family = AF_INET;
    sin4.sin_port = htons(40000);
    inet_pton(AF_INET, "10.1.2.3", &sin4.sin_addr);
    ctx->remote = (const struct sockaddr *)&sin4;
    ctx->method = (zg_str_t)zg_string("GET");
    ctx->uri = (zg_str_t)zg_string("/index.html");
    ctx->args = (zg_str_t)zg_string("q=1");
    ctx->request_line = (zg_str_t)zg_string("GET /index.html?q=1 HTTP/1.1");
    ctx->protocol = (zg_str_t)zg_string("HTTP/1.1");
    ctx->hdr_names = hdr_names;
    ctx->hdr_values = hdr_values;
    ctx->nhdrs = 2;
    ctx->status = 200;
    ctx->body_bytes_sent = 612;
    ctx->bytes_sent = 850;
    ctx->start_msec = zg_time_msec();
    ctx->start_time = 1764051121; /* 2025-11-25 06:12:01 UTC */
}

typedef struct {
    zg_log_format_t fmt;
    zg_access_log_t log;
    char path[128];
} alog_t;

static void alog_init(alog_t *a, const char *name, const char *format)
{
    char err[256];

    memset(a, 0, sizeof(*a));
    path_of(a->path, sizeof(a->path), name);
    snprintf(a->fmt.name, sizeof(a->fmt.name), "f");
    a->fmt.cv = zg_cv_compile(format, strlen(format), err, sizeof(err));
    if (a->fmt.cv == NULL) {
        fail_msg("%s", err);
    }
    a->log.path = a->path;
    a->log.format = &a->fmt;
    a->log.fd = -1;
    assert_int_equal(zg_access_log_open(&a->log), ZG_OK);
    assert_true(a->log.fd >= 0);
}

static void alog_free(alog_t *a)
{
    zg_access_log_close(&a->log);
    assert_int_equal(a->log.fd, -1);
    zg_cv_free(a->fmt.cv);
}

static void test_access_combined(void **state)
{
    zg_var_ctx_t ctx;
    alog_t a;
    char *text;
    struct stat st;
    mode_t mask;
    int flags;

    (void)state;
    ctx_init(&ctx);
    alog_init(&a, "access.log", zg_log_combined);
    zg_access_log_write(&a.log, &ctx);
    ctx.hdr_names = NULL;
    ctx.nhdrs = 0;
    ctx.status = 404;
    ctx.body_bytes_sent = 0;
    zg_access_log_write(&a.log, &ctx);

    text = slurp(a.path, NULL);
    assert_string_equal(text,
                        "10.1.2.3 - - [25/Nov/2025:06:12:01 +0000] "
                        "\"GET /index.html?q=1 HTTP/1.1\" 200 612 \"http://ref.example/\" "
                        "\"Mozilla/5.0 \\x22quoted\\x22\"\n"
                        "10.1.2.3 - - [25/Nov/2025:06:12:01 +0000] "
                        "\"GET /index.html?q=1 HTTP/1.1\" 404 0 \"-\" \"-\"\n");
    free(text);

    assert_int_equal(stat(a.path, &st), 0);
    mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0644 & ~mask);
    flags = fcntl(a.log.fd, F_GETFD);
    assert_true(flags & FD_CLOEXEC);
    flags = fcntl(a.log.fd, F_GETFL);
    assert_true(flags & O_APPEND);
    alog_free(&a);
}

static void test_access_custom(void **state)
{
    zg_var_ctx_t ctx;
    alog_t a;
    char *text;

    (void)state;
    ctx_init(&ctx);
    ctx.limit_req_status = ZG_LIMIT_DELAYED;
    ctx.upstream_addr = (zg_str_t)zg_string("127.0.0.1:9000");
    ctx.uri = (zg_str_t)zg_string("/caf\xc3\xa9");
    alog_init(&a, "custom.log",
              "$remote_addr:$remote_port $uri rl=$limit_req_status lc=$limit_conn_status "
              "up=$upstream_addr/$upstream_status \"$arg_q\" \\literal\"");
    zg_access_log_write(&a.log, &ctx);
    text = slurp(a.path, NULL);
    assert_string_equal(text, "10.1.2.3:40000 /caf\\xC3\\xA9 rl=DELAYED lc=- "
                              "up=127.0.0.1:9000/- \"1\" \\literal\"\n");
    free(text);
    alog_free(&a);

    /* a constant format */
    alog_init(&a, "const.log", "hit");
    zg_access_log_write(&a.log, &ctx);
    zg_access_log_write(&a.log, &ctx);
    text = slurp(a.path, NULL);
    assert_string_equal(text, "hit\nhit\n");
    free(text);
    alog_free(&a);
}

static void test_access_long_line(void **state)
{
    static zg_str_t names[1] = { zg_string("X-Big") };
    static zg_str_t values[1];
    static char big[10000];
    zg_var_ctx_t ctx;
    alog_t a;
    char *text;
    size_t len;

    (void)state;
    ctx_init(&ctx);
    memset(big, 'b', sizeof(big));
    values[0].data = big;
    values[0].len = sizeof(big);
    ctx.hdr_names = names;
    ctx.hdr_values = values;
    ctx.nhdrs = 1;
    alog_init(&a, "alog_long.log", "<$http_x_big>");
    zg_access_log_write(&a.log, &ctx);
    values[0].len = 4093; /* the stack buffer exactly, with '\n' */
    zg_access_log_write(&a.log, &ctx);
    values[0].len = 4094; /* one byte more: on the heap */
    zg_access_log_write(&a.log, &ctx);
    text = slurp(a.path, &len);
    assert_int_equal(len, 10003 + 4096 + 4097);
    assert_memory_equal(text, "<bbb", 4);
    assert_memory_equal(text + 9999, "bb>\n<b", 6);
    assert_memory_equal(text + 10003 + 4096 - 3, "b>\n<b", 5);
    assert_memory_equal(text + len - 3, "b>\n", 3);
    free(text);
    alog_free(&a);
}

static void test_access_reopen(void **state)
{
    zg_var_ctx_t ctx;
    alog_t a;
    char old[128], *t1, *t2;
    int fd;

    (void)state;
    ctx_init(&ctx);
    alog_init(&a, "rot_access.log", "$status");
    path_of(old, sizeof(old), "rot_access.log.1");
    zg_access_log_write(&a.log, &ctx);
    assert_int_equal(rename(a.path, old), 0);
    ctx.status = 201;
    zg_access_log_write(&a.log, &ctx);

    fd = a.log.fd;
    assert_int_equal(zg_access_log_reopen(&a.log), ZG_OK);
    assert_int_equal(a.log.fd, fd); /* same number: writers never see it closed */
    assert_true(fcntl(a.log.fd, F_GETFD) & FD_CLOEXEC);
    ctx.status = 202;
    zg_access_log_write(&a.log, &ctx);

    t1 = slurp(old, NULL);
    t2 = slurp(a.path, NULL);
    assert_string_equal(t1, "200\n201\n");
    assert_string_equal(t2, "202\n");
    free(t1);
    free(t2);

    /* a failing reopen keeps the file open */
    a.log.path = "/nonexistent-dir/zg/access.log";
    assert_int_equal(zg_access_log_reopen(&a.log), ZG_ERROR);
    assert_int_equal(a.log.fd, fd);
    a.log.path = a.path;
    zg_access_log_write(&a.log, &ctx);
    t2 = slurp(a.path, NULL);
    assert_string_equal(t2, "202\n202\n");
    free(t2);
    alog_free(&a);

    /* reopen of a closed log opens it */
    a.log.fd = -1;
    assert_int_equal(zg_access_log_reopen(&a.log), ZG_OK);
    assert_true(a.log.fd >= 0);
    zg_access_log_close(&a.log);
    zg_access_log_write(&a.log, &ctx); /* closed: nothing happens */
}

static void test_access_open_fails(void **state)
{
    zg_access_log_t log;
    zg_log_format_t fmt;
    char path[128], *text;

    (void)state;
    path_of(path, sizeof(path), "err_for_access.log");
    assert_int_equal(zg_log_open(path, ZG_LOG_ERR), ZG_OK);
    memset(&fmt, 0, sizeof(fmt));
    memset(&log, 0, sizeof(log));
    log.path = "/nonexistent-dir/zg/access.log";
    log.format = &fmt;
    log.fd = -1;
    assert_int_equal(zg_access_log_open(&log), ZG_ERROR);
    assert_int_equal(log.fd, -1);
    text = slurp(path, NULL);
    assert_non_null(strstr(text, "[emerg] "));
    assert_non_null(strstr(text, "open() \"/nonexistent-dir/zg/access.log\" failed (2: "));
    free(text);
    zg_log_open("stderr", ZG_LOG_ERR);
}

/* lines of several processes, each longer than a pipe buffer page, never mix */
static void test_access_concurrent(void **state)
{
    static zg_str_t names[1] = { zg_string("X-Fill") };
    static zg_str_t values[1];
    static char fill[6000];
    zg_var_ctx_t ctx;
    alog_t a;
    char *text, *p, *nl;
    pid_t pids[4];
    int i, j, status, lines;

    (void)state;
    ctx_init(&ctx);
    alog_init(&a, "conc.log", "$connection $http_x_fill $connection");
    ctx.hdr_names = names;
    ctx.hdr_values = values;
    ctx.nhdrs = 1;

    for (i = 0; i < 4; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            memset(fill, 'a' + i, sizeof(fill));
            values[0].data = fill;
            values[0].len = sizeof(fill);
            ctx.connection = (uint64_t)i;
            for (j = 0; j < 200; j++) {
                zg_access_log_write(&a.log, &ctx);
            }
            _exit(0);
        }
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    text = slurp(a.path, NULL);
    lines = 0;
    for (p = text; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        assert_non_null(nl);
        assert_int_equal(nl - p, 6004);
        i = p[0] - '0';
        assert_true(i >= 0 && i < 4);
        assert_int_equal(p[2], 'a' + i);
        assert_int_equal(p[6001], 'a' + i);
        assert_int_equal(p[6003], '0' + i);
        assert_null(memchr(p + 2, 'a' + ((i + 1) % 4), 6000));
        lines++;
    }
    assert_int_equal(lines, 800);
    free(text);
    alog_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_combined),
        cmocka_unit_test(test_access_custom),
        cmocka_unit_test(test_access_long_line),
        cmocka_unit_test(test_access_reopen),
        cmocka_unit_test(test_access_open_fails),
        cmocka_unit_test(test_access_concurrent),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
