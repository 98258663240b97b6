/* zg_log.c — the error log and access logs. */
#include "zg_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ZG_LOG_MAX_LINE    2048

static const char *zg_log_levels[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
};

static int zg_log_fd = STDERR_FILENO;
static int zg_log_cur_level = ZG_LOG_ERR;
static char *zg_log_path; /* NULL: stderr */

const zg_log_target_t *zg_log_cur;

/* ZG_LOG_* for "emerg" ... "debug"; -1 if unknown. */
int zg_log_level_parse(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < zg_nelems(zg_log_levels); i++) {
        if (strlen(zg_log_levels[i]) == len && strncmp(zg_log_levels[i], s, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* "error" for ZG_LOG_ERR ...; "unknown" out of range. */
const char *zg_log_level_name(int level)
{
    if (level < 0 || level >= (int)zg_nelems(zg_log_levels)) {
        return "unknown";
    }
    return zg_log_levels[level];
}

int zg_log_open_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

/* Moves fd onto *slot (keeping the descriptor number stable once it is a file of
 * ours, so another thread or a forked writer never sees it closed). */
static int zg_log_swap_fd(int *slot, int fd)
{
    if (*slot > STDERR_FILENO) {
        if (dup3(fd, *slot, O_CLOEXEC) == -1) {
            return -1;
        }
        close(fd);
        return 0;
    }
    *slot = fd;
    return 0;
}

/* Switches the error log to path ("stderr" or a file, O_APPEND) and sets the level.
 * ZG_OK, or ZG_ERROR (reported on the current log) leaving the log unchanged. */
int zg_log_open(const char *path, int level)
{
    char *copy;
    int fd, err;

    if (level >= ZG_LOG_EMERG && level <= ZG_LOG_DEBUG) {
        zg_log_cur_level = level;
    }

    if (path == NULL || strcmp(path, "stderr") == 0) {
        if (zg_log_fd > STDERR_FILENO) {
            close(zg_log_fd);
        }
        zg_log_fd = STDERR_FILENO;
        free(zg_log_path);
        zg_log_path = NULL;
        return ZG_OK;
    }

    copy = strdup(path);
    if (copy == NULL) {
        zg_log_error(ZG_LOG_EMERG, ENOMEM, "strdup() failed");
        return ZG_ERROR;
    }
    fd = zg_log_open_file(path);
    if (fd == -1) {
        err = errno;
        free(copy);
        zg_log_error(ZG_LOG_EMERG, err, "open() \"%s\" failed", path);
        return ZG_ERROR;
    }
    if (zg_log_swap_fd(&zg_log_fd, fd) == -1) {
        err = errno;
        close(fd);
        free(copy);
        zg_log_error(ZG_LOG_EMERG, err, "dup3() \"%s\" failed", path);
        return ZG_ERROR;
    }
    free(zg_log_path);
    zg_log_path = copy;
    return ZG_OK;
}

/* Opens the error log's path anew (after rotation) on the same descriptor.
 * ZG_OK (also for stderr), or ZG_ERROR (logged) keeping the old file. */
int zg_log_reopen(void)
{
    int fd, err;

    if (zg_log_path == NULL) {
        return ZG_OK;
    }
    fd = zg_log_open_file(zg_log_path);
    if (fd == -1) {
        zg_log_error(ZG_LOG_ALERT, errno, "reopen() \"%s\" failed", zg_log_path);
        return ZG_ERROR;
    }
    if (zg_log_swap_fd(&zg_log_fd, fd) == -1) {
        err = errno;
        close(fd);
        zg_log_error(ZG_LOG_ALERT, err, "dup3() \"%s\" failed", zg_log_path);
        return ZG_ERROR;
    }
    return ZG_OK;
}

/* The error log's descriptor, or -1 while it is stderr. */
int zg_log_fileno(void)
{
    return zg_log_fd > STDERR_FILENO ? zg_log_fd : -1;
}

/* The current error log level. */
int zg_log_level(void)
{
    return zg_log_cur != NULL ? zg_log_cur->level : zg_log_cur_level;
}

static void zg_log_write_fd(int fd, const char *p, size_t n)
{
    ssize_t rc;

    do {
        rc = write(fd, p, n);
    } while (rc == -1 && errno == EINTR);
}

/* Writes one line at level (dropped above the log level) with one write(2);
 * err != 0 appends " (err: strerror)".  The line is cut at 2048 bytes, "..."
 * marking the cut; errno is preserved. */
void zg_log_error(int level, int err, const char *fmt, ...)
{
    char line[ZG_LOG_MAX_LINE], suffix[160], ebuf[128];
    size_t n, room, slen;
    struct tm tm;
    time_t now;
    va_list ap;
    int saved, rc, fd = zg_log_fd;

    if (zg_log_cur != NULL && zg_log_cur->fd >= 0) {
        if (level > zg_log_cur->level) {
            return;
        }
        fd = zg_log_cur->fd;
    } else if (level > zg_log_cur_level) {
        return;
    }
    saved = errno;

    now = time(NULL);
    localtime_r(&now, &tm);
    n = (size_t)snprintf(line, sizeof(line), "%d/%02d/%02d %02d:%02d:%02d [%s] %d#0: ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                         tm.tm_min, tm.tm_sec, zg_log_level_name(level), (int)getpid());

    slen = 0;
    if (err) {
        slen = (size_t)snprintf(suffix, sizeof(suffix), " (%d: %s)", err,
                                strerror_r(err, ebuf, sizeof(ebuf)));
        if (slen >= sizeof(suffix)) {
            slen = sizeof(suffix) - 1;
        }
    }

    /* message, then suffix and '\n', all within the line */
    room = sizeof(line) - n - slen - 1;
    va_start(ap, fmt);
    rc = vsnprintf(line + n, room + 1, fmt, ap);
    va_end(ap);
    if (rc < 0) {
        rc = 0;
    }
    if ((size_t)rc > room) {
        memcpy(line + n + room - 3, "...", 3);
        rc = (int)room;
    }
    n += (size_t)rc;
    memcpy(line + n, suffix, slen);
    n += slen;
    line[n++] = '\n';

    zg_log_write_fd(fd, line, n);
    errno = saved;
}
