/* test_log.c — error log lines, levels, reopen. */
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

#include "zg_test_logs.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_error_line_format),
        cmocka_unit_test(test_error_line_time),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_reopen_after_rename),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
