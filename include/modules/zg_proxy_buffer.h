/* zg_proxy_buffer.h — nginx's buffering of proxied responses and request bodies:
 * proxy_buffering, proxy_buffers, proxy_buffer_size, proxy_busy_buffers_size,
 * proxy_max_temp_file_size, proxy_temp_file_write_size, proxy_temp_path,
 * proxy_request_buffering, client_body_buffer_size, client_body_temp_path; and the
 * spool the proxy keeps what the client is not ready for in (memory, then an
 * anonymous temp file). */
#ifndef ZG_PROXY_BUFFER_H
#define ZG_PROXY_BUFFER_H

#include "zg_buf.h"
#include "zg_conf.h"

typedef struct {
    int buffering;          /* proxy_buffering on|off */
    int nbufs;              /* proxy_buffers N SIZE: memory for a response, N * SIZE */
    int64_t bufsize;
    int64_t buffer_size;    /* proxy_buffer_size (accepted: the head's limit stays 64k) */
    int64_t busy;           /* proxy_busy_buffers_size: queued for the client before
                               what follows is spooled */
    int64_t max_temp;       /* proxy_max_temp_file_size; 0 = no temp file */
    int64_t temp_write;     /* proxy_temp_file_write_size */
    const char *temp_path;  /* proxy_temp_path */
    int request_buffering;  /* proxy_request_buffering on|off */
    int64_t body_buf;       /* client_body_buffer_size */
    const char *body_temp_path; /* client_body_temp_path */
} zg_proxy_buffer_loc_conf_t;

extern zg_module_t zg_proxy_buffer_module;

#define zg_proxy_buffer_loc_conf(confs)                                               \
    ((zg_proxy_buffer_loc_conf_t *)zg_conf_module(confs, zg_proxy_buffer_module))

/* ---- the spool: bytes in order, memory first (up to mem_max), then a temp file
 * (up to file_max; an O_TMPFILE in dir, which no path ever names) ---- */
typedef struct {
    zg_buf_t mem;
    size_t mem_off;         /* taken up to here */
    size_t mem_max;
    int fd;                 /* -1 until the file is needed */
    int64_t file_wr, file_rd; /* written / taken up to */
    int64_t file_max;
    int64_t file_total;     /* bytes ever written to the file (tests, logs) */
    const char *dir;
    unsigned file_failed : 1; /* the file could not be made or written: memory only */
} zg_spool_t;

void zg_spool_init(zg_spool_t *s, size_t mem_max, int64_t file_max, const char *dir);
/* Appends n bytes (always kept: memory past its limit when the file cannot take
 * them).  Returns ZG_OK, or ZG_BUSY when full: the producer pauses until
 * zg_spool_take made room.  ZG_ERROR: no memory. */
int zg_spool_put(zg_spool_t *s, const char *p, size_t n);
/* bytes in it */
static inline uint64_t zg_spool_len(const zg_spool_t *s)
{
    return (uint64_t)(s->mem.len - s->mem_off) + (uint64_t)(s->file_wr - s->file_rd);
}
/* 1 while put would say ZG_BUSY */
int zg_spool_full(const zg_spool_t *s);
/* Moves up to max of its oldest bytes to the end of out: ZG_OK or ZG_ERROR (a
 * read failed, logged). */
int zg_spool_take(zg_spool_t *s, zg_buf_t *out, size_t max);
void zg_spool_free(zg_spool_t *s);

#endif
