/* test_vars.c — complex values and every variable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zg_vars.h"

static struct sockaddr_in sin4;
static struct sockaddr_in6 sin6;

static const zg_str_t hdr_names[] = {
    zg_string("Host"), zg_string("User-Agent"), zg_string("X-Forwarded-For"),
    zg_string("x-forwarded-for"), zg_string("Referer"), zg_string("X-Evil"),
};
static const zg_str_t hdr_values[] = {
    zg_string("example.com"), zg_string("curl/8.0"), zg_string("10.0.0.1"),
    zg_string("10.0.0.2"), zg_string("http://r/"), zg_string("a\"b\\c\x01\xff"),
};

static void ctx_init(zg_var_ctx_t *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    memset(&sin4, 0, sizeof(sin4));
    sin4.sin_family = AF_INET;
    sin4.sin_port = htons(54321);
    inet_pton(AF_INET, "192.168.1.20", &sin4.sin_addr);

    ctx->remote = (const struct sockaddr *)&sin4;
    ctx->method = (zg_str_t)zg_string("GET");
    ctx->uri = (zg_str_t)zg_string("/a/b");
    ctx->args = (zg_str_t)zg_string("ab=1&a=2&A=3&c=&d");
    ctx->request_line = (zg_str_t)zg_string("GET /a/b?ab=1&a=2&A=3&c=&d HTTP/1.1");
    ctx->host = (zg_str_t)zg_string("example.com");
    ctx->server_name = (zg_str_t)zg_string("srv");
    ctx->protocol = (zg_str_t)zg_string("HTTP/1.1");
    ctx->hdr_names = hdr_names;
    ctx->hdr_values = hdr_values;
    ctx->nhdrs = zg_nelems(hdr_names);
    ctx->status = 200;
    ctx->bytes_sent = 1234;
    ctx->body_bytes_sent = 1000;
    ctx->request_length = 77;
    ctx->start_msec = zg_time_msec();
    ctx->start_time = 1764051121; /* 2025-11-25 06:12:01 UTC */
    ctx->upstream_addr = (zg_str_t)zg_string("127.0.0.1:9000");
    ctx->upstream_status = (zg_str_t)zg_string("200");
    ctx->upstream_response_time = (zg_str_t)zg_string("0.004");
    ctx->limit_req_status = ZG_LIMIT_PASSED;
    ctx->limit_conn_status = ZG_LIMIT_REJECTED_DRY_RUN;
    ctx->connection = 42;
    ctx->connection_requests = 3;
}

static zg_cv_t *compile_ok(const char *s)
{
    char err[256];
    zg_cv_t *cv = zg_cv_compile(s, strlen(s), err, sizeof(err));

    if (cv == NULL) {
        fail_msg("compile \"%s\": %s", s, err);
    }
    return cv;
}

/* evaluates s into a static buffer, NUL-terminated */
static const char *eval_esc(const char *s, const zg_var_ctx_t *ctx, int escape,
                            size_t *lenp)
{
    static char buf[1024];
    zg_cv_t *cv = compile_ok(s);
    size_t n = zg_cv_eval(cv, ctx, escape, buf, sizeof(buf) - 1);

    assert_true(n < sizeof(buf));
    buf[n] = '\0';
    if (lenp) {
        *lenp = n;
    }
    zg_cv_free(cv);
    return buf;
}

static const char *eval(const char *s, const zg_var_ctx_t *ctx)
{
    return eval_esc(s, ctx, 0, NULL);
}

static void test_const(void **state)
{
    zg_cv_t *cv;
    zg_str_t s;

    (void)state;
    cv = compile_ok("plain text");
    assert_true(zg_cv_is_const(cv));
    s = zg_cv_const(cv);
    assert_int_equal(s.len, 10);
    assert_memory_equal(s.data, "plain text", 10);
    zg_cv_free(cv);

    cv = compile_ok("");
    assert_true(zg_cv_is_const(cv));
    assert_int_equal(zg_cv_const(cv).len, 0);
    zg_cv_free(cv);

    cv = compile_ok("a$uri");
    assert_false(zg_cv_is_const(cv));
    zg_cv_free(cv);
}

static void test_compile_errors(void **state)
{
    char err[256];

    (void)state;
    assert_null(zg_cv_compile("$foo", 4, err, sizeof(err)));
    assert_string_equal(err, "unknown \"foo\" variable");
    assert_null(zg_cv_compile("x ${nope}y", 10, err, sizeof(err)));
    assert_string_equal(err, "unknown \"nope\" variable");
    assert_null(zg_cv_compile("a$", 2, err, sizeof(err)));
    assert_non_null(strstr(err, "invalid variable name"));
    assert_null(zg_cv_compile("$ x", 3, err, sizeof(err)));
    assert_null(zg_cv_compile("${uri", 5, err, sizeof(err)));
    assert_non_null(strstr(err, "closing bracket"));
    assert_null(zg_cv_compile("${}", 3, err, sizeof(err)));
    assert_null(zg_cv_compile("$http_", 6, err, sizeof(err)));
    assert_null(zg_cv_compile("$arg_", 5, err, sizeof(err)));
    /* len is honoured: the text past it is not read */
    assert_null(zg_cv_compile("$urix", 5, err, sizeof(err)));
    zg_cv_free(compile_ok("$uri"));
}

static void test_binary_remote_addr(void **state)
{
    zg_var_ctx_t ctx;
    zg_cv_t *cv;
    char buf[32];
    size_t n;

    (void)state;
    ctx_init(&ctx);
    cv = compile_ok("$binary_remote_addr");
    n = zg_cv_eval(cv, &ctx, 0, buf, sizeof(buf));
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "\xc0\xa8\x01\x14", 4);

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(443);
    inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
    ctx.remote = (const struct sockaddr *)&sin6;
    n = zg_cv_eval(cv, &ctx, 0, buf, sizeof(buf));
    assert_int_equal(n, 16);
    assert_memory_equal(buf, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);

    /* truncated: full length returned, only len bytes written */
    memset(buf, 'Z', sizeof(buf));
    n = zg_cv_eval(cv, &ctx, 0, buf, 3);
    assert_int_equal(n, 16);
    assert_memory_equal(buf, "\x20\x01\x0d" "ZZ", 5);

    /* with a prefix the generic path is taken */
    zg_cv_free(cv);
    cv = compile_ok("k:$binary_remote_addr");
    n = zg_cv_eval(cv, &ctx, 0, buf, sizeof(buf));
    assert_int_equal(n, 18);
    assert_memory_equal(buf, "k:\x20\x01", 4);

    /* escaped as in the access log */
    ctx.remote = (const struct sockaddr *)&sin4;
    n = zg_cv_eval(cv, &ctx, 1, buf, sizeof(buf));
    assert_int_equal(n, 2 + 4 * 4);
    assert_memory_equal(buf, "k:\\xC0\\xA8\\x01\\x14", 18);

    ctx.remote = NULL;
    assert_int_equal(zg_cv_eval(cv, &ctx, 0, buf, sizeof(buf)), 2);
    zg_cv_free(cv);
}

static void test_remote_addr_port(void **state)
{
    zg_var_ctx_t ctx;

    (void)state;
    ctx_init(&ctx);
    assert_string_equal(eval("$remote_addr:$remote_port", &ctx), "192.168.1.20:54321");

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(443);
    inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
    ctx.remote = (const struct sockaddr *)&sin6;
    assert_string_equal(eval("[$remote_addr]:$remote_port", &ctx), "[2001:db8::1]:443");

    ctx.remote = NULL;
    assert_string_equal(eval("<$remote_addr><$remote_port>", &ctx), "<><>");
}

static void test_http(void **state)
{
    zg_var_ctx_t ctx;

    (void)state;
    ctx_init(&ctx);
    assert_string_equal(eval("$http_user_agent", &ctx), "curl/8.0");
    assert_string_equal(eval("$http_USER_AGENT", &ctx), "curl/8.0");
    assert_string_equal(eval("${http_User_Agent}", &ctx), "curl/8.0");
    /* two X-Forwarded-For lines joined, as nginx 1.22 does (and Cookie with "; ");
     * of other names the first line */
    assert_string_equal(eval("$http_x_forwarded_for", &ctx), "10.0.0.1, 10.0.0.2");
    zg_var_ctx_free(&ctx);
    assert_string_equal(eval("$http_host", &ctx), "example.com");
    assert_string_equal(eval("[$http_missing]", &ctx), "[]");
    /* a prefix of a header name does not match */
    assert_string_equal(eval("[$http_user]", &ctx), "[]");
    assert_string_equal(eval("[$http_user_agent_x]", &ctx), "[]");
}

static void test_arg(void **state)
{
    zg_var_ctx_t ctx;

    (void)state;
    ctx_init(&ctx); /* ab=1&a=2&A=3&c=&d */
    assert_string_equal(eval("$arg_ab", &ctx), "1");
    assert_string_equal(eval("$arg_a", &ctx), "2");   /* "ab" is not "a" */
    assert_string_equal(eval("$arg_A", &ctx), "2");   /* names are caseless, first wins */
    assert_string_equal(eval("[$arg_c]", &ctx), "[]");
    assert_string_equal(eval("[$arg_d]", &ctx), "[]"); /* no '=': not found, as nginx */
    assert_string_equal(eval("[$arg_b]", &ctx), "[]"); /* "ab" does not end in "b=" match */
    assert_string_equal(eval("[$arg_zz]", &ctx), "[]");

    ctx.args = (zg_str_t)zg_string("x=%20y&b=2");
    assert_string_equal(eval("$arg_x|$arg_b", &ctx), "%20y|2"); /* raw, not decoded */
    ctx.args = (zg_str_t)zg_string("a=");
    assert_string_equal(eval("[$arg_a]", &ctx), "[]");
    ctx.args = (zg_str_t)zg_string("xa=1&a");
    assert_string_equal(eval("[$arg_a]", &ctx), "[]");
    ctx.args = (zg_str_t){ 0, NULL };
    assert_string_equal(eval("[$arg_a]", &ctx), "[]");
}

static void test_request_vars(void **state)
{
    zg_var_ctx_t ctx;

    (void)state;
    ctx_init(&ctx);
    assert_string_equal(eval("$uri", &ctx), "/a/b");
    assert_string_equal(eval("$args", &ctx), "ab=1&a=2&A=3&c=&d");
    assert_string_equal(eval("$request_uri", &ctx), "/a/b?ab=1&a=2&A=3&c=&d");
    assert_string_equal(eval("$request_method", &ctx), "GET");
    assert_string_equal(eval("$request", &ctx), "GET /a/b?ab=1&a=2&A=3&c=&d HTTP/1.1");
    assert_string_equal(eval("$server_protocol", &ctx), "HTTP/1.1");
    assert_string_equal(eval("$host|$server_name", &ctx), "example.com|srv");

    ctx.host = (zg_str_t){ 0, NULL };
    assert_string_equal(eval("$host", &ctx), "srv");

    /* raw request target kept from the request line ("?" with empty args) */
    ctx.request_line = (zg_str_t)zg_string("GET /a/b? HTTP/1.1");
    ctx.args = (zg_str_t){ 0, "" };
    assert_string_equal(eval("$request_uri", &ctx), "/a/b?");

    /* without a request line: uri + "?" + args */
    ctx.request_line = (zg_str_t){ 0, NULL };
    assert_string_equal(eval("$request_uri", &ctx), "/a/b");
    ctx.args = (zg_str_t)zg_string("q=1");
    assert_string_equal(eval("$request_uri", &ctx), "/a/b?q=1");
}

static void test_numbers(void **state)
{
    zg_var_ctx_t ctx;

    (void)state;
    ctx_init(&ctx);
    assert_string_equal(eval("$status $body_bytes_sent $bytes_sent $request_length", &ctx),
                        "200 1000 1234 77");
    assert_string_equal(eval("$connection $connection_requests", &ctx), "42 3");
    ctx.status = 0;
    assert_string_equal(eval("$status", &ctx), "000");
    ctx.status = 5;
    assert_string_equal(eval("$status", &ctx), "005");
    ctx.status = 503;
    ctx.bytes_sent = UINT64_MAX;
    ctx.body_bytes_sent = 0;
    assert_string_equal(eval("$status $bytes_sent $body_bytes_sent", &ctx),
                        "503 18446744073709551615 0");
}

static void test_upstream_and_limits(void **state)
{
    zg_var_ctx_t ctx;
    static const char *names[] = { "", "PASSED", "DELAYED", "REJECTED",
                                   "DELAYED_DRY_RUN", "REJECTED_DRY_RUN" };
    char want[64];
    int i;

    (void)state;
    ctx_init(&ctx);
    assert_string_equal(eval("$upstream_addr $upstream_status $upstream_response_time", &ctx),
                        "127.0.0.1:9000 200 0.004");
    for (i = ZG_LIMIT_NONE; i <= ZG_LIMIT_REJECTED_DRY_RUN; i++) {
        ctx.limit_req_status = i;
        ctx.limit_conn_status = i;
        snprintf(want, sizeof(want), "<%s|%s>", names[i], names[i]);
        assert_string_equal(eval("<$limit_req_status|$limit_conn_status>", &ctx), want);
    }

    /* empty upstream values: empty for keys, "-" in logs */
    ctx.upstream_addr = (zg_str_t){ 0, NULL };
    ctx.upstream_status = (zg_str_t){ 0, NULL };
    ctx.upstream_response_time = (zg_str_t){ 0, NULL };
    assert_string_equal(eval("[$upstream_addr$upstream_status$upstream_response_time]", &ctx),
                        "[]");
    assert_string_equal(
        eval_esc("$upstream_addr $upstream_status $upstream_response_time", &ctx, 1, NULL),
        "- - -");
}

static void test_times(void **state)
{
    zg_var_ctx_t ctx;
    const char *s;
    struct timespec ts;
    double msec, now;

    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    ctx_init(&ctx);
    assert_string_equal(eval("$time_local", &ctx), "25/Nov/2025:06:12:01 +0000");
    assert_string_equal(eval("$time_iso8601", &ctx), "2025-11-25T06:12:01+00:00");

    ctx.start_time = 1764051121 + 86400 * 40; /* another second: not the cached text */
    setenv("TZ", "XYZ+05:30", 1);
    tzset();
    assert_string_equal(eval("$time_local", &ctx), "04/Jan/2026:00:42:01 -0530");
    assert_string_equal(eval("$time_iso8601", &ctx), "2026-01-04T00:42:01-05:30");
    setenv("TZ", "UTC", 1);
    tzset();

    /* request_time: a start 1234 ms ago */
    ctx.start_msec = zg_time_msec() - 1234;
    s = eval("$request_time", &ctx);
    assert_int_equal(strlen(s), 5);
    assert_memory_equal(s, "1.2", 3);
    assert_true(strcmp(s, "1.234") >= 0 && strcmp(s, "1.300") < 0);

    ctx.start_msec = zg_time_msec() + 5000; /* never negative */
    assert_string_equal(eval("$request_time", &ctx), "0.000");
    ctx.start_msec = zg_time_msec();
    s = eval("$request_time", &ctx);
    assert_memory_equal(s, "0.0", 3);

    /* msec: wall clock, with three decimals */
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    s = eval("$msec", &ctx);
    assert_int_equal(s[strlen(s) - 4], '.');
    msec = strtod(s, NULL);
    assert_true(msec >= now - 1 && msec <= now + 2);
}

static void test_mixed_and_braces(void **state)
{
    zg_var_ctx_t ctx;

    (void)state;
    ctx_init(&ctx);
    assert_string_equal(eval("uri=$uri, m=${request_method}X, $status.", &ctx),
                        "uri=/a/b, m=GETX, 200.");
    assert_string_equal(eval("${uri}suffix", &ctx), "/a/bsuffix");
    assert_string_equal(eval("$uri-suffix", &ctx), "/a/b-suffix");
    assert_string_equal(eval("$uri$args", &ctx), "/a/bab=1&a=2&A=3&c=&d");
    assert_string_equal(eval("$REQUEST_METHOD", &ctx), "GET");
}

static void test_truncation(void **state)
{
    zg_var_ctx_t ctx;
    zg_cv_t *cv;
    char buf[64];
    size_t n, i;
    const char *want = "m=GET uri=/a/b s=200";

    (void)state;
    ctx_init(&ctx);
    cv = compile_ok("m=$request_method uri=$uri s=$status");
    for (i = 0; i <= strlen(want); i++) {
        memset(buf, 'Z', sizeof(buf));
        n = zg_cv_eval(cv, &ctx, 0, buf, i);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(buf, want, i);
        assert_int_equal(buf[i], 'Z');
    }
    assert_int_equal(zg_cv_eval(cv, &ctx, 0, NULL, 0), strlen(want));
    zg_cv_free(cv);

    /* escaped output truncated in the middle of a \xXX */
    cv = compile_ok("<$http_x_evil>");
    n = zg_cv_eval(cv, &ctx, 1, buf, sizeof(buf));
    assert_int_equal(n, 21);
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(zg_cv_eval(cv, &ctx, 1, buf, 4), 21);
    assert_memory_equal(buf, "<a\\xZ", 5);
    zg_cv_free(cv);
}

static void test_escape(void **state)
{
    zg_var_ctx_t ctx;
    size_t n;

    (void)state;
    ctx_init(&ctx);
    /* a"b\c\x01\xff */
    assert_string_equal(eval_esc("\"$http_x_evil\"", &ctx, 1, &n),
                        "\"a\\x22b\\x5Cc\\x01\\xFF\"");
    /* literals are not escaped; without escape values are raw */
    assert_string_equal(eval_esc("\"\\$uri", &ctx, 1, NULL), "\"\\/a/b");
    eval_esc("$http_x_evil", &ctx, 0, &n);
    assert_int_equal(n, 7);
    ctx.uri = (zg_str_t)zg_string("/\x7f~ \t");
    assert_string_equal(eval_esc("$uri", &ctx, 1, NULL), "/\\x7F~ \\x09");

    /* empty values are "-" with escape, empty without */
    ctx.limit_req_status = ZG_LIMIT_NONE;
    assert_string_equal(eval_esc("[$http_nothing] [$arg_no] [$limit_req_status]", &ctx, 1,
                                 NULL),
                        "[-] [-] [-]");
    assert_string_equal(eval_esc("[$http_nothing]", &ctx, 0, NULL), "[]");
    ctx.remote = NULL;
    assert_string_equal(eval_esc("$remote_addr", &ctx, 1, NULL), "-");
    ctx.uri = (zg_str_t){ 0, NULL };
    ctx.args = (zg_str_t){ 0, NULL };
    ctx.request_line = (zg_str_t){ 0, NULL };
    assert_string_equal(eval_esc("$request_uri", &ctx, 1, NULL), "-");
}

static void test_nginx_vars(void **state)
{
    static const zg_str_t names[] = { zg_string("X-Forwarded-For"),
                                      zg_string("Cookie"), zg_string("cookie") };
    static const zg_str_t values[] = { zg_string("1.1.1.1, 2.2.2.2"),
                                       zg_string("a=1; sid=abc; b=2"), zg_string("z=9") };
    static const zg_str_t up_names[] = { zg_string("X-App"), zg_string("Content-Type") };
    static const zg_str_t up_values[] = { zg_string("yes"), zg_string("text/html") };
    struct sockaddr_in local;
    zg_var_ctx_t ctx;
    const char *id;

    (void)state;
    ctx_init(&ctx);
    /* two X-Forwarded-For lines are joined, as nginx */
    assert_string_equal(eval("$proxy_add_x_forwarded_for", &ctx),
                        "10.0.0.1, 10.0.0.2, 192.168.1.20");
    ctx.nhdrs = 0;
    assert_string_equal(eval("$proxy_add_x_forwarded_for", &ctx), "192.168.1.20");
    ctx.hdr_names = names;
    ctx.hdr_values = values;
    ctx.nhdrs = zg_nelems(names);
    assert_string_equal(eval("$proxy_add_x_forwarded_for", &ctx),
                        "1.1.1.1, 2.2.2.2, 192.168.1.20");
    assert_string_equal(eval("[$cookie_sid][$cookie_A][$cookie_z][$cookie_none]", &ctx),
                        "[abc][1][9][]");
    assert_string_equal(eval("$http_cookie", &ctx), "a=1; sid=abc; b=2; z=9");
    assert_string_equal(eval("$scheme|$https|$is_args", &ctx), "http||?");
    assert_string_equal(eval("$zonegate_version", &ctx), ZG_VERSION);
    memset(&local, 0, sizeof(local));
    local.sin_family = AF_INET;
    local.sin_port = htons(8080);
    inet_pton(AF_INET, "127.0.0.2", &local.sin_addr);
    ctx.local = (const struct sockaddr *)&local;
    ctx.local_fd = -1;
    assert_string_equal(eval("$server_addr:$server_port", &ctx), "127.0.0.2:8080");
    ctx.up_names = up_names;
    ctx.up_values = up_values;
    ctx.nup = 2;
    assert_string_equal(eval("$upstream_http_x_app $upstream_http_content_type", &ctx),
                        "yes text/html");
    ctx.sent_names = up_names;
    ctx.sent_values = up_values;
    ctx.nsent = 1;
    assert_string_equal(eval("[$sent_http_x_app][$sent_http_content_type]", &ctx),
                        "[yes][]");
    assert_string_equal(eval("$realip_remote_addr", &ctx), "192.168.1.20");
    id = eval("$request_id", &ctx);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
    /* the same id for the whole request */
    char first[33];
    strcpy(first, id);
    assert_string_equal(eval("$request_id", &ctx), first);
    zg_var_ctx_free(&ctx);
    assert_null(ctx.st);
}

static int calls;

static int get_counted(zg_var_ctx_t *ctx, const void *data, zg_str_t *out)
{
    (void)ctx;
    calls++;
    out->data = data;
    out->len = strlen(data);
    return ZG_OK;
}

static void test_named(void **state)
{
    char err[256], buf[64];
    zg_vars_t *vs = zg_vars_new();
    zg_var_ctx_t ctx;
    const char *f;
    int line, idx, set_idx;
    zg_cv_t *cv;
    size_t n;

    (void)state;
    /* used before it is defined: fine until the end of the config */
    cv = zg_cv_compile_vars(vs, "<$later|$x>", 11, "a.conf", 7, err, sizeof(err));
    assert_non_null(cv);
    assert_string_equal(zg_vars_undefined(vs, &f, &line), "later");
    assert_string_equal(f, "a.conf");
    assert_int_equal(line, 7);
    assert_int_equal(zg_vars_define(vs, "later", 5, get_counted, "L", 0, &idx), ZG_OK);
    assert_int_equal(zg_vars_define(vs, "LATER", 5, get_counted, "L", 0, NULL), ZG_DECLINED);
    assert_int_equal(zg_vars_define(vs, "x", 1, get_counted, "", ZG_VAR_CHANGEABLE, &set_idx),
                     ZG_OK);
    assert_int_equal(zg_vars_define(vs, "x", 1, get_counted, "", ZG_VAR_CHANGEABLE, NULL),
                     ZG_OK);
    assert_null(zg_vars_undefined(vs, &f, &line));
    assert_false(zg_var_builtin("later", 5));
    assert_true(zg_var_builtin("cookie_a", 8));

    ctx_init(&ctx);
    ctx.vars = vs;
    calls = 0;
    /* lazily, once per request */
    assert_null(ctx.st);
    n = zg_cv_eval(cv, &ctx, 0, buf, sizeof(buf));
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "<L|>", 4);
    n = zg_cv_eval(cv, &ctx, 0, buf, sizeof(buf));
    assert_int_equal(calls, 2); /* later once, x once (empty) */
    assert_int_equal(zg_var_set(&ctx, set_idx, "val", 3), ZG_OK);
    n = zg_cv_eval(cv, &ctx, 0, buf, sizeof(buf));
    assert_memory_equal(buf, "<L|val>", n);
    assert_int_equal(calls, 2);
    zg_var_ctx_free(&ctx);
    /* the next request computes again */
    n = zg_cv_eval(cv, &ctx, 0, buf, sizeof(buf));
    assert_int_equal(calls, 4);
    zg_var_ctx_free(&ctx);
    zg_cv_free(cv);
    zg_vars_free(vs);
}

/* $1..$9: the captures of the last regex match; one digit each, as nginx */
static void test_captures(void **state)
{
    zg_var_ctx_t ctx;
    zg_regex_caps_t caps;
    char err[256];
    const char *pat = "^/(\\w+)/(\\d+)?(x)?";
    zg_regex_t *re = zg_regex_compile(pat, strlen(pat), 0, err, sizeof(err));

    (void)state;
    assert_non_null(re);
    ctx_init(&ctx);
    /* no match yet: empty */
    assert_string_equal(eval("[$1|${2}]", &ctx), "[|]");
    memset(&caps, 0, sizeof(caps));
    ctx.caps = &caps;
    assert_string_equal(eval("[$1]", &ctx), "[]");
    assert_int_equal(zg_regex_exec(re, "/user/42", 8, &caps), ZG_OK);
    assert_string_equal(eval("$1-$2-$3-$9", &ctx), "user-42--");
    assert_string_equal(eval("$12", &ctx), "user2");
    assert_string_equal(eval("${1}2", &ctx), "user2");
    zg_regex_free(re);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_const),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_binary_remote_addr),
        cmocka_unit_test(test_remote_addr_port),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_arg),
        cmocka_unit_test(test_request_vars),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_upstream_and_limits),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_mixed_and_braces),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_nginx_vars),
        cmocka_unit_test(test_named),
        cmocka_unit_test(test_captures),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
