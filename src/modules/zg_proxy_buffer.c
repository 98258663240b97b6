/* zg_proxy_buffer.c — the buffering directives (nginx's meaning, read by the proxy)
 * and the spool: memory up to proxy_buffers, then an anonymous temp file
 * (O_TMPFILE | O_EXCL in proxy_temp_path: never linked, gone with its descriptor;
 * the worker sandbox allows exactly that open). */
#include "zg_proxy_buffer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zg_log.h"

#define ZG_SPOOL_READ (64 * 1024) /* read back from the file at most at a time */

static void *zg_proxy_buffer_create_conf(zg_conf_t *conf)
{
    zg_proxy_buffer_loc_conf_t *c = zg_conf_alloc(conf, sizeof(*c));

    if (c != NULL) {
        c->buffering = ZG_UNSET;
        c->nbufs = ZG_UNSET;
        c->bufsize = ZG_UNSET_SIZE;
        c->buffer_size = ZG_UNSET_SIZE;
        c->busy = ZG_UNSET_SIZE;
        c->max_temp = ZG_UNSET_SIZE;
        c->temp_write = ZG_UNSET_SIZE;
        c->request_buffering = ZG_UNSET;
        c->body_buf = ZG_UNSET_SIZE;
    }
    return c;
}

static int zg_proxy_buffer_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_proxy_buffer_loc_conf_t *p = parent, *c = child;
    int64_t page = 4096;

    ZG_CONF_MERGE(c, p, buffering, ZG_UNSET);
    if (c->nbufs == ZG_UNSET) {
        c->nbufs = p->nbufs;
        c->bufsize = p->bufsize;
    }
    ZG_CONF_MERGE(c, p, buffer_size, ZG_UNSET_SIZE);
    ZG_CONF_MERGE(c, p, busy, ZG_UNSET_SIZE);
    ZG_CONF_MERGE(c, p, max_temp, ZG_UNSET_SIZE);
    ZG_CONF_MERGE(c, p, temp_write, ZG_UNSET_SIZE);
    ZG_CONF_MERGE(c, p, temp_path, NULL);
    ZG_CONF_MERGE(c, p, request_buffering, ZG_UNSET);
    ZG_CONF_MERGE(c, p, body_buf, ZG_UNSET_SIZE);
    ZG_CONF_MERGE(c, p, body_temp_path, NULL);
    /* nginx's defaults: one memory page */
    if (c->buffering == ZG_UNSET) {
        c->buffering = 1;
    }
    if (c->nbufs == ZG_UNSET) {
        c->nbufs = 8;
        c->bufsize = page;
    }
    if (c->buffer_size == ZG_UNSET_SIZE) {
        c->buffer_size = page;
    }
    if (c->busy == ZG_UNSET_SIZE) {
        c->busy = 2 * zg_max(c->buffer_size, c->bufsize);
    }
    if (c->max_temp == ZG_UNSET_SIZE) {
        c->max_temp = 1024 * 1024 * 1024;
    }
    if (c->temp_write == ZG_UNSET_SIZE) {
        c->temp_write = 2 * zg_max(c->buffer_size, c->bufsize);
    }
    if (c->temp_path == NULL) {
        c->temp_path = "/tmp";
    }
    if (c->request_buffering == ZG_UNSET) {
        c->request_buffering = 1;
    }
    if (c->body_buf == ZG_UNSET_SIZE) {
        c->body_buf = 2 * page;
    }
    if (c->body_temp_path == NULL) {
        c->body_temp_path = "/tmp";
    }
    /* nginx's checks */
    if (c->busy < zg_max(c->buffer_size, c->bufsize)) {
        return zg_conf_error(cf, "\"proxy_busy_buffers_size\" must be equal to or greater "
                                 "than the maximum of the value of \"proxy_buffer_size\" "
                                 "and one of the \"proxy_buffers\"");
    }
    if (c->busy > (int64_t)(c->nbufs - 1) * c->bufsize) {
        return zg_conf_error(cf, "\"proxy_busy_buffers_size\" must be less than the size "
                                 "of all \"proxy_buffers\" minus one buffer");
    }
    if (c->max_temp != 0 && c->max_temp < zg_max(c->buffer_size, c->bufsize)) {
        return zg_conf_error(cf, "\"proxy_max_temp_file_size\" must be equal to zero to "
                                 "disable temporary files usage or must be equal to or "
                                 "greater than the maximum of the value of "
                                 "\"proxy_buffer_size\" and one of the \"proxy_buffers\"");
    }
    return ZG_OK;
}

/* proxy_buffers NUMBER SIZE */
static int zg_proxy_buffer_bufs(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_proxy_buffer_loc_conf_t *c = conf;
    zg_str_t *a = cf->args;

    (void)cmd;
    if (c->nbufs != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    c->nbufs = zg_conf_atoi(a[1].data, a[1].len);
    c->bufsize = zg_conf_parse_size(a[2].data, a[2].len);
    if (c->nbufs < 2 || c->bufsize <= 0) {
        return zg_conf_invalid(cf, c->nbufs < 2 ? &a[1] : &a[2]);
    }
    return ZG_OK;
}

/* proxy_temp_path / client_body_temp_path PATH [L1 [L2 [L3]]]: an existing
 * directory (levels mean nothing for files that have no name) */
static int zg_proxy_buffer_path(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    const char **field = (const char **)((char *)conf + cmd->offset);
    struct stat st;
    char *path;

    if (*field != NULL) {
        return zg_conf_duplicate(cf);
    }
    for (int i = 2; i < cf->nargs; i++) {
        int l = zg_conf_atoi(cf->args[i].data, cf->args[i].len);
        if (l < 1 || l > 2) {
            return zg_conf_invalid(cf, &cf->args[i]);
        }
    }
    if ((path = zg_conf_path(cf, &cf->args[1])) == NULL) {
        return zg_conf_nomem(cf);
    }
    if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode)) {
        return zg_conf_error(cf, "\"%s\" is not a directory", path);
    }
    *field = path;
    return ZG_OK;
}

static const zg_command_t zg_proxy_buffer_commands[] = {
    { "proxy_buffering", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      offsetof(zg_proxy_buffer_loc_conf_t, buffering), NULL },
    { "proxy_buffers", ZG_CTX_SETTINGS, 0, 2, 2, zg_proxy_buffer_bufs, ZG_LOC_CONF, 0, NULL },
    { "proxy_buffer_size", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_size, ZG_LOC_CONF,
      offsetof(zg_proxy_buffer_loc_conf_t, buffer_size), NULL },
    { "proxy_busy_buffers_size", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_size, ZG_LOC_CONF,
      offsetof(zg_proxy_buffer_loc_conf_t, busy), NULL },
    { "proxy_max_temp_file_size", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_size, ZG_LOC_CONF,
      offsetof(zg_proxy_buffer_loc_conf_t, max_temp), NULL },
    { "proxy_temp_file_write_size", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_size, ZG_LOC_CONF,
      offsetof(zg_proxy_buffer_loc_conf_t, temp_write), NULL },
    { "proxy_temp_path", ZG_CTX_SETTINGS, 0, 1, 4, zg_proxy_buffer_path, ZG_LOC_CONF,
      offsetof(zg_proxy_buffer_loc_conf_t, temp_path), NULL },
    { "proxy_request_buffering", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      offsetof(zg_proxy_buffer_loc_conf_t, request_buffering), NULL },
    { "client_body_buffer_size", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_size, ZG_LOC_CONF,
      offsetof(zg_proxy_buffer_loc_conf_t, body_buf), NULL },
    { "client_body_temp_path", ZG_CTX_SETTINGS, 0, 1, 4, zg_proxy_buffer_path, ZG_LOC_CONF,
      offsetof(zg_proxy_buffer_loc_conf_t, body_temp_path), NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_proxy_buffer_module = {
    .name = "proxy_buffer",
    .commands = zg_proxy_buffer_commands,
    .create_loc_conf = zg_proxy_buffer_create_conf,
    .merge_loc_conf = zg_proxy_buffer_merge_conf,
};

/* ---- the spool ---- */

void zg_spool_init(zg_spool_t *s, size_t mem_max, int64_t file_max, const char *dir)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->mem_max = mem_max;
    s->file_max = file_max;
    s->dir = dir;
}

static int zg_spool_file(zg_spool_t *s)
{
    if (s->fd != -1) {
        return ZG_OK;
    }
    if (s->file_failed || s->file_max == 0) {
        return ZG_DECLINED;
    }
    s->fd = open(s->dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    if (s->fd == -1) {
        zg_log_error(ZG_LOG_CRIT, errno, "open() of a temporary file in \"%s\" failed",
                     s->dir);
        s->file_failed = 1;
        return ZG_DECLINED;
    }
    s->file_wr = s->file_rd = 0;
    return ZG_OK;
}

int zg_spool_full(const zg_spool_t *s)
{
    if (s->mem.len - s->mem_off < s->mem_max) {
        return 0;
    }
    return s->fd == -1 ? (s->file_failed || s->file_max == 0) : s->file_wr >= s->file_max;
}

static int zg_spool_write(zg_spool_t *s, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = pwrite(s->fd, p, n, (off_t)s->file_wr);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            zg_log_error(ZG_LOG_CRIT, errno, "pwrite() to a temporary file failed");
            s->file_failed = 1;
            return ZG_ERROR;
        }
        s->file_wr += k;
        s->file_total += k;
        p += k;
        n -= (size_t)k;
    }
    return ZG_OK;
}

int zg_spool_put(zg_spool_t *s, const char *p, size_t n)
{
    /* memory while the file holds nothing: every byte in memory is older than
     * every byte in the file */
    if (s->file_wr == s->file_rd && s->mem.len - s->mem_off < s->mem_max) {
        size_t room = s->mem_max - (s->mem.len - s->mem_off), k = zg_min(room, n);
        if (s->mem_off > 0 && s->mem_off >= s->mem.len / 2) {
            memmove(s->mem.data, s->mem.data + s->mem_off, s->mem.len - s->mem_off);
            s->mem.len -= s->mem_off;
            s->mem_off = 0;
        }
        if (zg_buf_append(&s->mem, p, k) != ZG_OK) {
            return ZG_ERROR;
        }
        p += k;
        n -= k;
    }
    if (n > 0) {
        /* past proxy_max_temp_file_size by one piece at most: the producer pauses */
        if (zg_spool_file(s) == ZG_OK) {
            if (zg_spool_write(s, p, n) != ZG_OK) {
                return ZG_ERROR;
            }
        } else if (zg_buf_append(&s->mem, p, n) != ZG_OK) {
            return ZG_ERROR; /* no file: memory, past proxy_buffers by one piece */
        }
    }
    return zg_spool_full(s) ? ZG_BUSY : ZG_OK;
}

int zg_spool_take(zg_spool_t *s, zg_buf_t *out, size_t max)
{
    size_t k = zg_min(max, s->mem.len - s->mem_off);

    if (k > 0) {
        if (zg_buf_append(out, s->mem.data + s->mem_off, k) != ZG_OK) {
            return ZG_ERROR;
        }
        s->mem_off += k;
        max -= k;
        if (s->mem_off == s->mem.len) {
            s->mem.len = s->mem_off = 0;
        }
    }
    while (max > 0 && s->file_rd < s->file_wr) {
        size_t want = (size_t)zg_min((int64_t)zg_min(max, ZG_SPOOL_READ), s->file_wr - s->file_rd);
        if (zg_buf_reserve(out, want) != ZG_OK) {
            return ZG_ERROR;
        }
        ssize_t r = pread(s->fd, out->data + out->len, want, (off_t)s->file_rd);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            zg_log_error(ZG_LOG_CRIT, errno, "pread() from a temporary file failed");
            return ZG_ERROR;
        }
        out->len += (size_t)r;
        s->file_rd += r;
        max -= (size_t)r;
    }
    if (s->file_rd == s->file_wr) {
        s->file_rd = s->file_wr = 0; /* the file is written from its start again */
    }
    return ZG_OK;
}

void zg_spool_free(zg_spool_t *s)
{
    zg_buf_free(&s->mem);
    s->mem_off = 0;
    if (s->fd != -1) {
        close(s->fd);
        s->fd = -1;
    }
}
