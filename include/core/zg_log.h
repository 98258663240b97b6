/* zg_log.h — the error log and access logs. */
#ifndef ZG_LOG_H
#define ZG_LOG_H

#include "zg_core.h"
#include "zg_vars.h"

enum {
    ZG_LOG_EMERG = 0,
    ZG_LOG_ALERT,
    ZG_LOG_CRIT,
    ZG_LOG_ERR,
    ZG_LOG_WARN,
    ZG_LOG_NOTICE,
    ZG_LOG_INFO,
    ZG_LOG_DEBUG,
};

/* "error" / "warn" / ... -> ZG_LOG_*; -1 if unknown */
int zg_log_level_parse(const char *s, size_t len);
const char *zg_log_level_name(int level);

/* Opens (or switches to) the error log: "stderr" or a path, O_APPEND. */
int zg_log_open(const char *path, int level);
/* Reopens the error log file (SIGUSR1). */
int zg_log_reopen(void);
int zg_log_level(void);

/* One line: "2026/11/25 06:12:01 [error] 1234#0: message (errno text)\n" —
 * written with one write(2).  err = errno to append, 0 for none. */
void zg_log_error(int level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define zg_log(level, ...)                                                             \
    do {                                                                               \
        if ((level) <= zg_log_level())                                                 \
            zg_log_error(level, 0, __VA_ARGS__);                                       \
    } while (0)

/* log_format NAME '...' ; the predefined "combined" exists in every config */
struct zg_log_format_s {
    char name[64];
    zg_cv_t *cv;
    struct zg_log_format_s *next;
};

/* access_log PATH [FORMAT]; one per distinct path+format */
struct zg_access_log_s {
    char *path;
    struct zg_log_format_s *format;
    int fd;                    /* -1 until opened */
    struct zg_access_log_s *next;
};

/* combined: $remote_addr - - [$time_local] "$request" $status $body_bytes_sent
 *           "$http_referer" "$http_user_agent" */
extern const char zg_log_combined[];

int zg_access_log_open(struct zg_access_log_s *log);   /* ZG_OK / ZG_ERROR (logged) */
int zg_access_log_reopen(struct zg_access_log_s *log); /* opens the path anew, swaps fds */
void zg_access_log_close(struct zg_access_log_s *log);
/* Formats one line for ctx and appends it with a single write(2). */
void zg_access_log_write(struct zg_access_log_s *log, const zg_var_ctx_t *ctx);

#endif
