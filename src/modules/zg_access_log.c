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

static void zg_access_log_put(zg_access_log_t *log, const char *p, size_t total)
{
    ssize_t rc;

    do {
        rc = write(log->fd, p, total);
    } while (rc == -1 && errno == EINTR);

    if (rc == -1) {
        zg_log_error(ZG_LOG_ALERT, errno, "write() to \"%s\" failed", log->path);
    } else if ((size_t)rc != total) {
        zg_log_error(ZG_LOG_ALERT, 0, "write() to \"%s\" was incomplete: %zd of %zu",
                     log->path, rc, total);
    }
}

void zg_access_log_flush(zg_access_log_t *log)
{
    if (log->timer_on) {
        uv_timer_stop(&log->timer);
    }
    if (log->buf_len == 0) {
        return;
    }
    if (log->fd >= 0) {
        zg_access_log_put(log, log->buf, log->buf_len);
    }
    log->buf_len = 0;
}

static void zg_access_log_flush_timer(uv_timer_t *t)
{
    zg_access_log_flush(t->data);
}

/* buffer=: the line joins the buffer (written first if the line does not fit);
 * 0 = not buffered (the buffer cannot be had, or the line is larger than it) */
static int zg_access_log_buffer(zg_access_log_t *log, const char *p, size_t n)
{
    if (log->buf == NULL && (log->buf = malloc(log->buf_size)) == NULL) {
        return 0;
    }
    if (log->buf_len + n > log->buf_size) {
        zg_access_log_flush(log);
    }
    if (n > log->buf_size) {
        return 0;
    }
    if (log->buf_len == 0 && log->timer_on) {
        uv_timer_start(&log->timer, zg_access_log_flush_timer, log->flush, 0);
    }
    memcpy(log->buf + log->buf_len, p, n);
    log->buf_len += n;
    return 1;
}

/* Formats one line for ctx (escaped as nginx does) and appends it with one
 * write(2), so lines of concurrent workers never interleave. */
void zg_access_log_write(zg_access_log_t *log, const zg_var_ctx_t *ctx)
{
    char stack[ZG_ACCESS_LOG_BUF], *p;
    size_t n, total;

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

    if (log->buf_size == 0 || !zg_access_log_buffer(log, p, total)) {
        zg_access_log_put(log, p, total);
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
    int64_t size = 0;
    zg_msec_t flush = 0;

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
    for (int i = 3; i < cf->nargs; i++) {
        if (strncmp(a[i].data, "buffer=", 7) == 0) {
            size = zg_conf_parse_size(a[i].data + 7, a[i].len - 7);
            if (size <= 0) {
                return zg_conf_error(cf, "invalid buffer size \"%s\"", a[i].data + 7);
            }
        } else if (strncmp(a[i].data, "flush=", 6) == 0) {
            flush = zg_conf_parse_time(a[i].data + 6, a[i].len - 6);
            if (flush == ZG_UNSET_MSEC || flush == 0) {
                return zg_conf_error(cf, "invalid flush time \"%s\"", a[i].data + 6);
            }
        } else if (strncmp(a[i].data, "if=", 3) == 0) {
            alcf->cond = zg_conf_cv(cf, a[i].data + 3, a[i].len - 3);
            if (alcf->cond == NULL) {
                return ZG_ERROR;
            }
        } else if (strncmp(a[i].data, "gzip", 4) == 0) {
            return zg_conf_error(cf, "\"gzip\" of \"access_log\" is not supported by zonegate");
        } else {
            return zg_conf_invalid(cf, &a[i]);
        }
    }
    if (flush && size == 0) {
        return zg_conf_error(cf, "no buffer is defined for access_log \"%s\"", a[1].data);
    }
    path = zg_conf_path(cf, &a[1]);
    if (path == NULL) {
        return zg_conf_nomem(cf);
    }
    for (tail = &amcf->logs; *tail != NULL; tail = &(*tail)->next) {
        if ((*tail)->format == fmt && strcmp((*tail)->path, path) == 0) {
            if ((*tail)->buf_size != (size_t)size || (*tail)->flush != flush) {
                return zg_conf_error(cf, "access_log \"%s\" already defined with conflicting "
                                         "parameters", a[1].data);
            }
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
    l->buf_size = (size_t)size;
    l->flush = flush;
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
        c->cond = p->set ? p->cond : NULL;
        c->set = 1;
    }
    return ZG_OK;
}

/* -------------------------------------------------------------- runtime */

int zg_access_log_enabled(void **loc_conf)
{
    return zg_access_log_conf(loc_conf)->log != NULL;
}

/* if=COND: "" and "0" are false */
static int zg_access_log_cond(const zg_access_log_conf_t *alcf, zg_var_ctx_t *ctx)
{
    zg_str_t v;
    if (alcf->cond == NULL) {
        return 1;
    }
    if (zg_cv_eval_str(alcf->cond, ctx, &v) != ZG_OK) {
        return 0;
    }
    return !(v.len == 0 || (v.len == 1 && v.data[0] == '0'));
}

static void zg_access_log_handler(zg_request_t *r)
{
    zg_access_log_conf_t *alcf = zg_access_log_conf(r->loc_conf);

    if (alcf->log != NULL && zg_access_log_cond(alcf, &r->ctx)) {
        zg_access_log_write(alcf->log, &r->ctx);
    }
}

static void zg_access_log_stream(zg_stream_session_t *s)
{
    zg_access_log_conf_t *alcf = zg_access_log_conf(s->srv->conf);

    if (alcf->log != NULL && zg_access_log_cond(alcf, &s->vars)) {
        zg_access_log_write(alcf->log, &s->vars);
    }
}

/* in a worker: the flush timers on its loop (unreferenced: they keep nothing alive) */
static int zg_access_log_init_worker(zg_worker_t *w)
{
    for (zg_access_log_t *l = zg_access_log_main_conf(w->conf)->logs; l; l = l->next) {
        l->buf = NULL;
        l->buf_len = 0;
        l->timer_on = 0;
        if (l->buf_size && l->flush) {
            uv_timer_init(w->loop, &l->timer);
            uv_unref((uv_handle_t *)&l->timer);
            l->timer.data = l;
            l->timer_on = 1;
        }
    }
    return ZG_OK;
}

/* graceful stop and exit: what the buffers hold is written */
static void zg_access_log_quit_worker(zg_worker_t *w)
{
    for (zg_access_log_t *l = zg_access_log_main_conf(w->conf)->logs; l; l = l->next) {
        zg_access_log_flush(l);
    }
}

static void zg_access_log_exit_worker(zg_worker_t *w)
{
    for (zg_access_log_t *l = zg_access_log_main_conf(w->conf)->logs; l; l = l->next) {
        zg_access_log_flush(l);
        if (l->timer_on) {
            uv_close((uv_handle_t *)&l->timer, NULL);
            l->timer_on = 0;
        }
        free(l->buf);
        l->buf = NULL;
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
    if (l != NULL) {
        zg_access_log_flush(l); /* before a reopened file takes the descriptor */
    }
    return l != NULL ? &l->fd : NULL;
}

static const zg_command_t zg_access_log_commands[] = {
    { "log_format", ZG_CTX_HTTP | ZG_CTX_STREAM, 0, 2, -1, zg_access_log_format, ZG_MAIN_CONF,
      0, NULL },
    { "access_log", ZG_CTX_SETTINGS | ZG_CTX_STREAM_SETTINGS, 0, 1, 5, zg_access_log_set,
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
    .init_worker = zg_access_log_init_worker,
    .quit_worker = zg_access_log_quit_worker,
    .exit_worker = zg_access_log_exit_worker,
    .log = zg_access_log_handler,
    .stream_log = zg_access_log_stream,
};
