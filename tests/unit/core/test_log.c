/* test_log.c — error log lines, levels, reopen; access log lines. */
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

#include "zg_log.h"

static char dir[64];

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

/* whole file, NUL-terminated, malloc'd ("" if missing) */
static char *slurp(const char *path, size_t *lenp)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL) {
        buf = calloc(1, 1);
        if (lenp) {
            *lenp = 0;
        }
        return buf;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (lenp) {
        *lenp = (size_t)n;
    }
    return buf;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/zg_test_log.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    zg_log_open("stderr", ZG_LOG_ERR);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void assert_match(const char *text, const char *re)
{
    regex_t rx;
    int rc;

    assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NEWLINE), 0);
    rc = regexec(&rx, text, 0, NULL, 0);
    regfree(&rx);
    if (rc != 0) {
        fail_msg("\"%s\" does not match /%s/", text, re);
    }
}

static void test_level_names(void **state)
{
    static const char *names[] = { "emerg", "alert", "crit", "error",
                                   "warn", "notice", "info", "debug" };
    int i;

    (void)state;
    for (i = 0; i < 8; i++) {
        assert_int_equal(zg_log_level_parse(names[i], strlen(names[i])), i);
        assert_string_equal(zg_log_level_name(i), names[i]);
    }
    assert_int_equal(zg_log_level_parse("err", 3), -1);
    assert_int_equal(zg_log_level_parse("errors", 6), -1);
    assert_int_equal(zg_log_level_parse("warning", 4), ZG_LOG_WARN); /* len counts */
    assert_int_equal(zg_log_level_parse("", 0), -1);
    assert_int_equal(ZG_LOG_ERR, 3);
}

static void test_error_line_format(void **state)
{
    char path[128], re[256], *text;

    (void)state;
    path_of(path, sizeof(path), "error.log");
    assert_int_equal(zg_log_open(path, ZG_LOG_INFO), ZG_OK);
    assert_int_equal(zg_log_level(), ZG_LOG_INFO);

    errno = EAGAIN;
    zg_log_error(ZG_LOG_ERR, 0, "hello %d \"%s\"", 5, "x");
    assert_int_equal(errno, EAGAIN);
    zg_log_error(ZG_LOG_WARN, ENOENT, "open() \"%s\" failed", "/nope");
    zg_log(ZG_LOG_NOTICE, "notice %s", "n");

    text = slurp(path, NULL);
    snprintf(re, sizeof(re),
             "^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} "
             "\\[error\\] %d#0: hello 5 \"x\"\n"
             "[0-9/]{10} [0-9:]{8} \\[warn\\] %d#0: open\\(\\) \"/nope\" failed "
             "\\(2: No such file or directory\\)\n"
             "[0-9/]{10} [0-9:]{8} \\[notice\\] %d#0: notice n\n$",
             (int)getpid(), (int)getpid(), (int)getpid());
    assert_match(text, re);
    free(text);
}

static void test_error_line_time(void **state)
{
    char path[128], want[32], *text;
    time_t before, after;
    struct tm tm;

    (void)state;
    path_of(path, sizeof(path), "time.log");
    assert_int_equal(zg_log_open(path, ZG_LOG_ERR), ZG_OK);
    before = time(NULL);
    zg_log_error(ZG_LOG_ERR, 0, "t");
    after = time(NULL);
    text = slurp(path, NULL);
    gmtime_r(&before, &tm);
    strftime(want, sizeof(want), "%Y/%m/%d %H:%M:%S", &tm);
    if (strncmp(text, want, 19) != 0) {
        gmtime_r(&after, &tm);
        strftime(want, sizeof(want), "%Y/%m/%d %H:%M:%S", &tm);
        assert_memory_equal(text, want, 19);
    }
    free(text);
}

static void test_level_filter(void **state)
{
    char path[128], *text;

    (void)state;
    path_of(path, sizeof(path), "filter.log");
    assert_int_equal(zg_log_open(path, ZG_LOG_WARN), ZG_OK);
    zg_log_error(ZG_LOG_INFO, 0, "dropped info");
    zg_log_error(ZG_LOG_NOTICE, EINVAL, "dropped notice");
    zg_log(ZG_LOG_DEBUG, "dropped debug");
    zg_log_error(ZG_LOG_WARN, 0, "kept warn");
    zg_log(ZG_LOG_EMERG, "kept emerg");

    text = slurp(path, NULL);
    assert_null(strstr(text, "dropped"));
    assert_non_null(strstr(text, "[warn] "));
    assert_non_null(strstr(text, "kept warn\n"));
    assert_non_null(strstr(text, "[emerg] "));
    free(text);

    /* a bad level leaves the level alone */
    assert_int_equal(zg_log_open(path, 99), ZG_OK);
    assert_int_equal(zg_log_level(), ZG_LOG_WARN);
}

static void test_truncation(void **state)
{
    char path[128], big[5000], *text, *nl;
    size_t len;

    (void)state;
    path_of(path, sizeof(path), "long.log");
    assert_int_equal(zg_log_open(path, ZG_LOG_ERR), ZG_OK);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';

    zg_log_error(ZG_LOG_ERR, 0, "%s", big);
    zg_log_error(ZG_LOG_ERR, EACCES, "%s", big);
    zg_log_error(ZG_LOG_ERR, 0, "short");

    text = slurp(path, &len);
    nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_int_equal(nl - text + 1, 2048);
    assert_memory_equal(nl - 4, "x...", 4);

    text[2047] = '\0';
    nl = strchr(text + 2048, '\n');
    assert_non_null(nl);
    assert_int_equal(nl - (text + 2048) + 1, 2048);
    /* the errno suffix survives the cut */
    assert_memory_equal(nl - 27, "... (13: Permission denied)", 27);
    assert_string_equal(nl + 1 + strlen(nl + 1) - 6, "short\n");
    free(text);
}

static void test_reopen_after_rename(void **state)
{
    char path[128], old[128], *a, *b;

    (void)state;
    path_of(path, sizeof(path), "rot.log");
    path_of(old, sizeof(old), "rot.log.1");
    assert_int_equal(zg_log_open(path, ZG_LOG_ERR), ZG_OK);
    zg_log_error(ZG_LOG_ERR, 0, "before rotation");
    assert_int_equal(rename(path, old), 0);
    zg_log_error(ZG_LOG_ERR, 0, "still old");
    assert_int_equal(zg_log_reopen(), ZG_OK);
    zg_log_error(ZG_LOG_ERR, 0, "after rotation");

    a = slurp(old, NULL);
    b = slurp(path, NULL);
    assert_non_null(strstr(a, "before rotation\n"));
    assert_non_null(strstr(a, "still old\n"));
    assert_null(strstr(a, "after rotation"));
    assert_non_null(strstr(b, "after rotation\n"));
    assert_null(strstr(b, "before"));
    free(a);
    free(b);

    /* a failed open keeps the current file */
    path_of(old, sizeof(old), "no/such/dir.log");
    assert_int_equal(zg_log_open(old, ZG_LOG_ERR), ZG_ERROR);
    zg_log_error(ZG_LOG_ERR, 0, "after failure");
    b = slurp(path, NULL);
    assert_non_null(strstr(b, "#0: open() \""));
    assert_non_null(strstr(b, "(2: No such file or directory)\n"));
    assert_non_null(strstr(b, "after failure\n"));
    free(b);

    /* stderr has nothing to reopen */
    assert_int_equal(zg_log_open("stderr", ZG_LOG_ERR), ZG_OK);
    assert_int_equal(zg_log_reopen(), ZG_OK);
}

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
    struct zg_log_format_s fmt;
    struct zg_access_log_s log;
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
    struct zg_access_log_s log;
    struct zg_log_format_s fmt;
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
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_error_line_format),
        cmocka_unit_test(test_error_line_time),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_reopen_after_rename),
        cmocka_unit_test(test_access_combined),
        cmocka_unit_test(test_access_custom),
        cmocka_unit_test(test_access_long_line),
        cmocka_unit_test(test_access_reopen),
        cmocka_unit_test(test_access_open_fails),
        cmocka_unit_test(test_access_concurrent),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
