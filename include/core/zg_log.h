/* zg_log.h — the error log. */
#ifndef ZG_LOG_H
#define ZG_LOG_H

#include "zg_core.h"

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
/* The error log file's descriptor; -1 while the log is stderr. */
int zg_log_fileno(void);

/* One line: "2026/11/25 06:12:01 [error] 1234#0: message (errno text)\n" —
 * written with one write(2).  err = errno to append, 0 for none. */
void zg_log_error(int level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define zg_log(level, ...)                                                             \
    do {                                                                               \
        if ((level) <= zg_log_level())                                                 \
            zg_log_error(level, 0, __VA_ARGS__);                                       \
    } while (0)

/* opens path for appending (O_APPEND|O_CLOEXEC, 0644); -1 with errno on error */
int zg_log_open_file(const char *path);

#endif
