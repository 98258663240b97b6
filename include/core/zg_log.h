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

/* An error log of the http, server or location level (`error_log` there): what is
 * logged while a request of that level is worked on goes to it, at its level. */
typedef struct zg_log_target_s zg_log_target_t;
struct zg_log_target_s {
    char *path;           /* "stderr" or a file */
    int fd;               /* -1 until opened (by the master) */
    int level;
    zg_log_target_t *next;
};

/* the error log in scope: NULL = the main one */
extern const zg_log_target_t *zg_log_cur;

/* Makes t (NULL: the main log) the error log of what follows; returns the one that
 * was in scope, to be put back. */
static inline const zg_log_target_t *zg_log_scope(const zg_log_target_t *t)
{
    const zg_log_target_t *old = zg_log_cur;

    zg_log_cur = t;
    return old;
}

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
