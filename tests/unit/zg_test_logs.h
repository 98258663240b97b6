/* zg_test_logs.h — a scratch directory and whole-file reads for the error log and
 * access log tests (include after cmocka.h and zg_log.h). */
#ifndef ZG_TEST_LOGS_H
#define ZG_TEST_LOGS_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static char dir[64];

static inline void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

/* whole file, NUL-terminated, malloc'd ("" if missing) */
static inline char *slurp(const char *path, size_t *lenp)
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

static inline int setup(void **state)
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

static inline int teardown(void **state)
{
    char cmd[128];

    (void)state;
    zg_log_open("stderr", ZG_LOG_ERR);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
