/* zg_access_log.h — log_format and access_log: one line per finalized request. */
#ifndef ZG_ACCESS_LOG_H
#define ZG_ACCESS_LOG_H

#include <uv.h>

#include "zg_conf.h"
#include "zg_vars.h"

/* log_format NAME '...' ; the predefined "combined" exists in every config */
typedef struct zg_log_format_s zg_log_format_t;
struct zg_log_format_s {
    char name[64];
    zg_cv_t *cv;
    int stream;                /* of the stream block: a name space of its own */
    zg_log_format_t *next;
};

/* access_log PATH [FORMAT]; one per distinct path+format */
typedef struct zg_access_log_s zg_access_log_t;
struct zg_access_log_s {
    char *path;
    zg_log_format_t *format;
    int fd;                    /* -1 until opened */
    zg_access_log_t *next;
    /* access_log ... buffer=SIZE [flush=TIME]: lines gathered per worker, written
     * whole when the next would not fit, after flush, on reopen and at exit */
    size_t buf_size;           /* 0 = a write(2) per line */
    zg_msec_t flush;           /* 0 = none */
    char *buf;                 /* this process's, allocated on first use */
    size_t buf_len;
    uv_timer_t timer;          /* flush (a worker's loop) */
    unsigned timer_on : 1;
};

typedef struct {
    zg_log_format_t *formats;
    zg_access_log_t *logs;     /* every distinct access log, for open and reopen */
} zg_access_log_main_conf_t;

typedef struct {
    zg_access_log_t *log;      /* NULL = off */
    zg_cv_t *cond;             /* if=COND: logged unless "" or "0" */
    int set;                   /* 0 = inherit */
} zg_access_log_conf_t;

extern zg_module_t zg_access_log_module;

#define zg_access_log_main_conf(conf)                                                  \
    ((zg_access_log_main_conf_t *)zg_main_conf_of(conf, zg_access_log_module))
#define zg_access_log_conf(confs)                                                      \
    ((zg_access_log_conf_t *)zg_conf_module(confs, zg_access_log_module))

/* combined: $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
 *           "$http_referer" "$http_user_agent" */
extern const char zg_log_combined[];

/* 1 if requests of this location are logged (so $upstream_* are worth filling) */
int zg_access_log_enabled(void **loc_conf);

int zg_access_log_open(zg_access_log_t *log);   /* ZG_OK / ZG_ERROR (logged) */
int zg_access_log_reopen(zg_access_log_t *log); /* opens the path anew, swaps fds */
void zg_access_log_close(zg_access_log_t *log);
/* Formats one line for ctx and appends it with a single write(2), or to the log's
 * buffer (buffer=). */
void zg_access_log_write(zg_access_log_t *log, const zg_var_ctx_t *ctx);
/* writes what the log's buffer holds (whole lines, one write(2)) */
void zg_access_log_flush(zg_access_log_t *log);

#endif
