/* zg_access_log.c — log_format, access_log: the log phase of every request. */
#include "zg_access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zg_log.h"
#include "zg_request.h"
#include "zg_stream.h"

#define ZG_ACCESS_LOG_BUF 4096

const char zg_log_combined[] =
    "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent "
    "\"$http_referer\" \"$http_user_agent\"";

/* Opens log->path for appending.  ZG_OK, or ZG_ERROR (logged). */
int zg_access_log_open(zg_access_log_t *log)
{
    int fd;

    fd = zg_log_open_file(log->path);
    if (fd == -1) {
        zg_log_error(ZG_LOG_EMERG, errno, "open() \"%s\" failed", log->path);
        return ZG_ERROR;
    }
    if (log->fd >= 0) {
        close(log->fd);
    }
    log->fd = fd;
    return ZG_OK;
}

/* Opens log->path anew and puts it on log->fd's number (dup3), so a writer never
 * sees a closed descriptor.  ZG_OK, or ZG_ERROR (logged) keeping the old file. */
int zg_access_log_reopen(zg_access_log_t *log)
{
    int fd, err;

    if (log->fd < 0) {
        return zg_access_log_open(log);
    }
    fd = zg_log_open_file(log->path);
    if (fd == -1) {
        zg_log_error(ZG_LOG_ALERT, errno, "reopen() \"%s\" failed", log->path);
        return ZG_ERROR;
    }
    if (dup3(fd, log->fd, O_CLOEXEC) == -1) {
        err = errno;
        close(fd);
        zg_log_error(ZG_LOG_ALERT, err, "dup3() \"%s\" failed", log->path);
        return ZG_ERROR;
    }
    close(fd);
    return ZG_OK;
}

/* Closes the log's descriptor, if open. */
void zg_access_log_close(zg_access_log_t *log)
{
    if (log->fd >= 0) {
        close(log->fd);
        log->fd = -1;
    }
}

/* Formats one line for ctx (escaped as nginx does) and appends it with one
 * write(2), so lines of concurrent workers never interleave. */
void zg_access_log_write(zg_access_log_t *log, const zg_var_ctx_t *ctx)
{
    char stack[ZG_ACCESS_LOG_BUF], *p;
    size_t n, total;
    ssize_t rc;

    if (log == NULL || log->fd < 0 || log->format == NULL || log->format->cv == NULL) {
        return;
    }

    p = stack;
    n = zg_cv_eval(log->format->cv, ctx, 1, p, sizeof(stack) - 1);
    if (n > sizeof(stack) - 1) {
        p = malloc(n + 1);
        if (p == NULL) {
            zg_log_error(ZG_LOG_ALERT, ENOMEM, "access log line of %zu bytes dropped", n);
            return;
        }
        total = zg_cv_eval(log->format->cv, ctx, 1, p, n);
        n = zg_min(n, total); /* $msec and $request_time may change length */
    }
    p[n] = '\n';
    total = n + 1;

    do {
        rc = write(log->fd, p, total);
    } while (rc == -1 && errno == EINTR);

    if (rc == -1) {
        zg_log_error(ZG_LOG_ALERT, errno, "write() to \"%s\" failed", log->path);
    } else if ((size_t)rc != total) {
        zg_log_error(ZG_LOG_ALERT, 0, "write() to \"%s\" was incomplete: %zd of %zu",
                     log->path, rc, total);
    }

    if (p != stack) {
        free(p);
    }
}

/* ---------------------------------------------------------------- config */

static zg_log_format_t *zg_access_log_find_format(zg_access_log_main_conf_t *amcf,
                                                  const char *name, int stream)
{
    for (zg_log_format_t *f = amcf->formats; f != NULL; f = f->next) {
        if (f->stream == stream && strcmp(f->name, name) == 0) {
            return f;
        }
    }
    return NULL;
}

static int zg_access_log_add_format(zg_cf_t *cf, zg_access_log_main_conf_t *amcf,
                                    const char *name, const char *text, size_t len,
                                    int stream)
{
    zg_log_format_t *f = zg_conf_alloc(cf->conf, sizeof(*f)), **tail;

    if (f == NULL) {
        return zg_conf_nomem(cf);
    }
    f->stream = stream;
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->cv = zg_conf_cv(cf, text, len);
    if (f->cv == NULL) {
        return ZG_ERROR;
    }
    for (tail = &amcf->formats; *tail != NULL; tail = &(*tail)->next) {
        /* void */
    }
    *tail = f;
    return ZG_OK;
}

static int zg_access_log_format(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_access_log_main_conf_t *amcf = conf;
    zg_str_t *a = cf->args;
    size_t len = 0;
    char *text, *p;

    (void)cmd;
    if (amcf->formats == NULL
        && zg_access_log_add_format(cf, amcf, "combined", zg_log_combined,
                                    strlen(zg_log_combined), 0) != ZG_OK) {
        return ZG_ERROR;
    }
    if (a[1].len == 0 || a[1].len >= sizeof(((zg_log_format_t *)0)->name)) {
        return zg_conf_invalid(cf, &a[1]);
    }
    if (zg_access_log_find_format(amcf, a[1].data, cf->ctx == ZG_CTX_STREAM) != NULL) {
        return zg_conf_error(cf, "duplicate \"log_format\" name \"%s\"", a[1].data);
    }
    for (int i = 2; i < cf->nargs; i++) {
        len += a[i].len;
    }
    text = p = zg_conf_alloc(cf->conf, len + 1);
    if (text == NULL) {
        return zg_conf_nomem(cf);
    }
    for (int i = 2; i < cf->nargs; i++) {
        memcpy(p, a[i].data, a[i].len);
        p += a[i].len;
    }
    return zg_access_log_add_format(cf, amcf, a[1].data, text, len, cf->ctx == ZG_CTX_STREAM);
}

static int zg_access_log_set(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_access_log_main_conf_t *amcf = zg_access_log_main_conf(cf->conf);
    zg_access_log_conf_t *alcf = conf;
    zg_str_t *a = cf->args;
    zg_log_format_t *fmt;
    zg_access_log_t *l, **tail;
    char *path;
    int stream;

    (void)cmd;
    if (alcf->set) {
        return zg_conf_duplicate(cf);
    }
    alcf->set = 1;
    if (zg_conf_eq(&a[1], "off")) {
        if (cf->nargs > 2) {
            return zg_conf_error(cf, "invalid number of arguments in \"access_log\" directive");
        }
        alcf->log = NULL;
        return ZG_OK;
    }
    if (amcf->formats == NULL
        && zg_access_log_add_format(cf, amcf, "combined", zg_log_combined,
                                    strlen(zg_log_combined), 0) != ZG_OK) {
        return ZG_ERROR;
    }
    /* stream has no predefined format: nginx's stream access_log names one */
    stream = (cf->ctx & ZG_CTX_STREAM_SETTINGS) != 0;
    if (stream && cf->nargs < 3) {
        return zg_conf_error(cf, "invalid number of arguments in \"access_log\" directive");
    }
    fmt = zg_access_log_find_format(amcf, cf->nargs > 2 ? a[2].data : "combined", stream);
    if (fmt == NULL) {
        return zg_conf_error(cf, "unknown log format \"%s\"", a[2].data);
    }
    path = zg_conf_path(cf, &a[1]);
    if (path == NULL) {
        return zg_conf_nomem(cf);
    }
    for (tail = &amcf->logs; *tail != NULL; tail = &(*tail)->next) {
        if ((*tail)->format == fmt && strcmp((*tail)->path, path) == 0) {
            alcf->log = *tail;
            return ZG_OK;
        }
    }
    l = zg_conf_alloc(cf->conf, sizeof(*l));
    if (l == NULL) {
        return zg_conf_nomem(cf);
    }
    l->path = path;
    l->format = fmt;
    l->fd = -1;
    *tail = l;
    alcf->log = l;
    return ZG_OK;
}

static void *zg_access_log_create_main_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_access_log_main_conf_t));
}

static int zg_access_log_init_main_conf(zg_cf_t *cf, void *conf)
{
    zg_access_log_main_conf_t *amcf = conf;

    if (amcf->formats == NULL) {
        return zg_access_log_add_format(cf, amcf, "combined", zg_log_combined,
                                        strlen(zg_log_combined), 0);
    }
    return ZG_OK;
}

static void *zg_access_log_create_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_access_log_conf_t));
}

static int zg_access_log_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_access_log_conf_t *p = parent, *c = child;

    (void)cf;
    if (!c->set) {
        /* off unless configured (nginx would write logs/access.log) */
        c->log = p->set ? p->log : NULL;
        c->set = 1;
    }
    return ZG_OK;
}

/* -------------------------------------------------------------- runtime */

int zg_access_log_enabled(void **loc_conf)
{
    return zg_access_log_conf(loc_conf)->log != NULL;
}

static void zg_access_log_handler(zg_request_t *r)
{
    zg_access_log_t *log = zg_access_log_conf(r->loc_conf)->log;

    if (log != NULL) {
        zg_access_log_write(log, &r->ctx);
    }
}

static void zg_access_log_stream(zg_stream_session_t *s)
{
    zg_access_log_t *log = zg_access_log_conf(s->srv->conf)->log;

    if (log != NULL) {
        zg_access_log_write(log, &s->vars);
    }
}

static int zg_access_log_open_all(zg_conf_t *conf)
{
    for (zg_access_log_t *l = zg_access_log_main_conf(conf)->logs; l; l = l->next) {
        zg_access_log_open(l);
    }
    return ZG_OK;
}

static void zg_access_log_close_all(zg_conf_t *conf)
{
    for (zg_access_log_t *l = zg_access_log_main_conf(conf)->logs; l; l = l->next) {
        zg_access_log_close(l);
    }
}

static void zg_access_log_reopen_all(zg_conf_t *conf)
{
    for (zg_access_log_t *l = zg_access_log_main_conf(conf)->logs; l; l = l->next) {
        zg_access_log_reopen(l);
    }
}

static int *zg_access_log_file(zg_conf_t *conf, int i)
{
    zg_access_log_t *l = zg_access_log_main_conf(conf)->logs;

    while (l != NULL && i-- > 0) {
        l = l->next;
    }
    return l != NULL ? &l->fd : NULL;
}

static const zg_command_t zg_access_log_commands[] = {
    { "log_format", ZG_CTX_HTTP | ZG_CTX_STREAM, 0, 2, -1, zg_access_log_format, ZG_MAIN_CONF,
      0, NULL },
    { "access_log", ZG_CTX_SETTINGS | ZG_CTX_STREAM_SETTINGS, 0, 1, 2, zg_access_log_set,
      ZG_LOC_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_access_log_module = {
    .name = "access_log",
    .commands = zg_access_log_commands,
    .create_main_conf = zg_access_log_create_main_conf,
    .init_main_conf = zg_access_log_init_main_conf,
    .create_loc_conf = zg_access_log_create_conf,
    .merge_loc_conf = zg_access_log_merge_conf,
    .init_master = zg_access_log_open_all,
    .exit_master = zg_access_log_close_all,
    .reopen = zg_access_log_reopen_all,
    .file = zg_access_log_file,
    .log = zg_access_log_handler,
    .stream_log = zg_access_log_stream,
};
