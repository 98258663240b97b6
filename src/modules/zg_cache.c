/* zg_cache.c — proxy_cache (nginx's ngx_http_file_cache with the proxy's cache
 * directives): the keys zone, the lookup (wrapping the location's content handler),
 * HIT answers from the file, storing through a response filter (temp file + rename),
 * the cache lock across workers, stale answers and revalidation, the master's loader
 * and manager, and the API's figures and key removal.
 *
 * A cache file: zg_cache_file_t, the key, the Vary line, the head ("Name: value\r\n"
 * lines), the body.  A file appears under its final name only complete (rename), so
 * a worker killed while writing leaves a temp file ("t.PID.N" in the cache
 * directory), which the manager removes once PID is gone. */
#include "zg_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "zg_admin.h"
#include "zg_core_module.h"
#include "zg_http.h"
#include "zg_log.h"
#include "zg_priv.h"
#include "zg_proc.h"
#include "zg_proxy.h"
#include "zg_proxy_ignore.h"
#include "zg_proxy_shape.h"
#include "zg_proxy_sub.h"
#include "zg_unix.h"
#include "zg_upstream.h"
#include "zg_request.h"
#include "zg_response.h"

#define ZG_CACHE_MAGIC 0x3143475au /* "ZGC1" */
#define ZG_CACHE_EVICT 16          /* entries evicted at most for one new key */
#define ZG_CACHE_WAIT_MSEC 20      /* a request waiting on the cache lock looks again */
#define ZG_CACHE_MANAGE_MAX 1000   /* files removed at most per manager tick */
#define ZG_CACHE_LOAD_FILES 1000   /* files the loader looks at per tick */
#define ZG_CACHE_SENDFILE_MIN 32768 /* bodies up to this are copied with the head */
#define ZG_CACHE_BG_HEAD_MAX (64 * 1024) /* a background update's response head */

/* use_stale bits */
#define ZG_STALE_ERROR 0x01
#define ZG_STALE_TIMEOUT 0x02
#define ZG_STALE_UPDATING 0x04
#define ZG_STALE_500 0x08
#define ZG_STALE_502 0x10
#define ZG_STALE_503 0x20
#define ZG_STALE_504 0x40
#define ZG_STALE_403 0x80
#define ZG_STALE_404 0x100
#define ZG_STALE_429 0x200

#define ZG_METHOD_GET 0x01
#define ZG_METHOD_HEAD 0x02
#define ZG_METHOD_POST 0x04

typedef struct {
    uint32_t magic;
    int32_t status;
    int64_t valid_sec;
    int64_t date;
    uint64_t body_len;
    uint32_t key_len;
    uint32_t vary_len;
    uint32_t head_len;
    unsigned char md5[16];
} zg_cache_file_t;

/* proxy_cache_path */
typedef struct {
    char *path;
    int levels[3];
    int nlevels;
    zg_msec_t inactive;         /* 10 min */
    int64_t max_size;           /* 0: no limit */
    int64_t min_free;           /* free disk space kept, by removing entries; 0: none */
    int dirfd;                  /* opened by the master; -1 until then */
    char **load;                /* the loader's directories to read (master) */
    int nload, capload;
    int load_started;
    zg_zone_t *zone;
    const char *name;
} zg_cache_path_t;

typedef struct {
    zg_cache_path_t **paths;
    int npaths;
    int var_index;
} zg_cache_main_conf_t;

typedef struct {
    int status;                 /* 0: any */
    zg_msec_t time;
} zg_cache_valid_t;

typedef struct {
    zg_cache_path_t *cache;     /* NULL: off */
    char *cache_name;           /* proxy_cache NAME, resolved when merging */
    int cache_set;              /* ZG_UNSET, 0 off, 1 on */
    zg_cv_t *key;
    zg_phase_handler_pt content; /* the location's own content handler (the proxy's) */
    zg_cache_valid_t *valid;
    int nvalid;                 /* -1: unset */
    int methods;                /* ZG_UNSET or ZG_METHOD_* */
    int min_uses;
    zg_cv_t **bypass;
    int nbypass;                /* -1: unset */
    zg_cv_t **no_cache;
    int nno_cache;              /* -1: unset */
    int lock;
    int revalidate;             /* proxy_cache_revalidate */
    zg_msec_t lock_timeout;
    zg_msec_t lock_age;
    int use_stale;              /* ZG_UNSET or ZG_STALE_* */
    int background;             /* proxy_cache_background_update */
    int ignore_headers;         /* ZG_UNSET or ZG_IGNORE_* */
} zg_cache_loc_conf_t;

/* a request's cache state, malloc'ed when the location caches */
typedef struct {
    zg_cache_loc_conf_t *conf;
    zg_request_t *r;
    unsigned char md5[16];
    char *key;
    size_t key_len;
    char rel[64];               /* the file's name under the cache directory */
    char tmp[64];
    int fd;                     /* temp file being written; -1 */
    int stale_fd;               /* an expired entry's file (use_stale, revalidate); -1 */
    zg_str_t inm, ims;          /* its ETag and Last-Modified, for a revalidation */
    uint64_t body_len;
    int64_t valid_sec;
    uv_timer_t *wait;           /* waiting on the cache lock */
    zg_msec_t wait_until;
    int status;                 /* ZG_CACHE_* */
    unsigned locked : 1;        /* this request holds the entry's lock */
    unsigned store : 1;         /* may store the answer (min_uses, no bypass of it) */
    unsigned storing : 1;       /* the body goes to fd */
    unsigned substitute : 1;    /* the body filter sends stale_fd's body instead */
    unsigned failed : 1;
    unsigned revalidating : 1;  /* the upstream is asked with If-None-Match/-Modified-Since */
} zg_cache_req_t;

typedef struct {
    zg_cache_req_t *c;
    int status;                 /* $upstream_cache_status, also after c is freed */
} zg_cache_ctx_t;

static const char *const zg_cache_status_text[] = {
    "", "MISS", "BYPASS", "EXPIRED", "STALE", "UPDATING", "REVALIDATED", "HIT"
};

static unsigned zg_cache_seq;

#define zg_cache_loc_conf(confs) \
    ((zg_cache_loc_conf_t *)zg_conf_module(confs, zg_cache_module))
#define zg_cache_main_conf(conf) \
    ((zg_cache_main_conf_t *)zg_main_conf_of(conf, zg_cache_module))
#define zg_cache_ctx(r) ((zg_cache_ctx_t *)zg_request_ctx(r, zg_cache_module))

int zg_proxy_ignore(void **loc_conf)
{
    int m = zg_cache_loc_conf(loc_conf)->ignore_headers;
    return m == ZG_UNSET ? 0 : m;
}

/* ---------------------------------------------------------------- the index */

static int zg_cache_cmp(const zg_rbtree_node_t *n, const void *arg)
{
    const zg_cache_node_sh_t *e = zg_data_of(n, zg_cache_node_sh_t, node);
    return memcmp(e->md5, arg, 16);
}

static uint32_t zg_cache_hash(const unsigned char *md5)
{
    uint32_t h;
    memcpy(&h, md5, 4);
    return h;
}

zg_cache_node_sh_t *zg_cache_lookup_locked(zg_cache_sh_t *sh, const unsigned char *md5)
{
    zg_rbtree_node_t *n = zg_rbtree_lookup(&sh->tree, zg_cache_hash(md5), zg_cache_cmp, md5);
    return n == NULL ? NULL : zg_data_of(n, zg_cache_node_sh_t, node);
}

void zg_cache_touch_locked(zg_cache_sh_t *sh, zg_cache_node_sh_t *n, int64_t now)
{
    n->access = now;
    zg_queue_remove(&n->queue);
    zg_queue_insert_head(&sh->lru, &n->queue);
}

void zg_cache_delete_locked(zg_slab_pool_t *pool, zg_cache_sh_t *sh, zg_cache_node_sh_t *n)
{
    zg_rbtree_delete(&sh->tree, &n->node);
    zg_queue_remove(&n->queue);
    sh->size -= n->fs_size;
    sh->entries--;
    zg_slab_free_locked(pool, n);
}

zg_cache_node_sh_t *zg_cache_insert_locked(zg_slab_pool_t *pool, zg_cache_sh_t *sh,
                                           const unsigned char *md5, int64_t now,
                                           unsigned char (*evicted)[16], int *nevicted)
{
    zg_cache_node_sh_t *n;
    int max = *nevicted;

    *nevicted = 0;
    for (;;) {
        n = zg_slab_calloc_locked(pool, sizeof(*n));
        if (n != NULL) {
            break;
        }
        /* the least recently used entry that nobody is fetching goes */
        zg_queue_t *q = zg_queue_last(&sh->lru);
        while (q != zg_queue_sentinel(&sh->lru)) {
            zg_cache_node_sh_t *e = zg_queue_data(q, zg_cache_node_sh_t, queue);
            if (e->lock_slot == 0) {
                break;
            }
            q = zg_queue_prev(q);
        }
        if (q == zg_queue_sentinel(&sh->lru) || *nevicted >= max) {
            return NULL;
        }
        zg_cache_node_sh_t *e = zg_queue_data(q, zg_cache_node_sh_t, queue);
        if (e->exists) {
            memcpy(evicted[(*nevicted)++], e->md5, 16);
        }
        sh->evictions++;
        zg_cache_delete_locked(pool, sh, e);
    }
    memcpy(n->md5, md5, 16);
    n->node.key = zg_cache_hash(md5);
    n->access = now;
    zg_rbtree_insert_keyed(&sh->tree, &n->node, zg_cache_cmp, md5);
    zg_queue_insert_head(&sh->lru, &n->queue);
    sh->entries++;
    return n;
}

int zg_cache_expire_locked(zg_slab_pool_t *pool, zg_cache_sh_t *sh, int64_t now,
                           int64_t inactive, uint64_t max_size, unsigned char (*out)[16],
                           int max)
{
    int k = 0;
    zg_queue_t *q = zg_queue_last(&sh->lru);

    while (q != zg_queue_sentinel(&sh->lru) && k < max) {
        zg_cache_node_sh_t *e = zg_queue_data(q, zg_cache_node_sh_t, queue);
        q = zg_queue_prev(q);
        if (e->lock_slot != 0) {
            continue;
        }
        int old = e->access + inactive <= now;
        int big = max_size > 0 && sh->size > max_size;
        if (!old && !big) {
            break; /* the queue is in access order: the rest is newer */
        }
        if (e->exists) {
            memcpy(out[k++], e->md5, 16);
        }
        if (big && !old) {
            sh->evictions++;
        }
        zg_cache_delete_locked(pool, sh, e);
    }
    return k;
}

static int zg_cache_zone_init(zg_zone_t *zone, void *old_data)
{
    zg_slab_pool_t *pool = zone->pool;
    zg_cache_sh_t *sh;

    if (old_data != NULL) {
        zone->data = old_data;
        return ZG_OK;
    }
    sh = zg_slab_calloc(pool, sizeof(*sh));
    if (sh == NULL) {
        return ZG_ERROR;
    }
    zg_rbtree_init(&sh->tree, &sh->sentinel, zg_rbtree_insert_value);
    zg_queue_init(&sh->lru);
    pool->data = sh;
    zone->data = sh;
    return ZG_OK;
}

const zg_zone_kind_t zg_cache_zone_kind = { "proxy_cache", zg_cache_zone_init };

/* ---------------------------------------------------------------- validity */

static const zg_resp_header_t *zg_cache_hdr(const zg_resp_t *h, const char *name, size_t len)
{
    for (int i = 0; i < h->n; i++) {
        if (zg_http_name_eq(&h->h[i].name, name, len)) {
            return &h->h[i];
        }
    }
    return NULL;
}

/* the number after "name=" in a Cache-Control value; -1 if none or bad */
static int64_t zg_cache_cc_num(const zg_str_t *v, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl <= v->len; i++) {
        if (strncasecmp(v->data + i, name, nl) == 0
            && (i == 0 || v->data[i - 1] == ' ' || v->data[i - 1] == ',')) {
            int64_t n = 0;
            size_t j = i + nl;
            if (j >= v->len || v->data[j] < '0' || v->data[j] > '9') {
                return -1;
            }
            for (; j < v->len && v->data[j] >= '0' && v->data[j] <= '9'; j++) {
                n = n * 10 + (v->data[j] - '0');
                if (n > (int64_t)1 << 40) {
                    return -1;
                }
            }
            return n;
        }
    }
    return -1;
}

static int zg_cache_has_token(const zg_str_t *v, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i + tl <= v->len; i++) {
        if (strncasecmp(v->data + i, tok, tl) == 0
            && (i == 0 || v->data[i - 1] == ' ' || v->data[i - 1] == ',')
            && (i + tl == v->len || v->data[i + tl] == ' ' || v->data[i + tl] == ','
                || v->data[i + tl] == '=')) {
            return 1;
        }
    }
    return 0;
}

int64_t zg_cache_validity(const zg_resp_t *h, int ignore, time_t now)
{
    const zg_resp_header_t *x;

    if (!(ignore & ZG_IGNORE_SET_COOKIE) && zg_cache_hdr(h, "set-cookie", 10) != NULL) {
        return -1;
    }
    if (!(ignore & ZG_IGNORE_VARY) && (x = zg_cache_hdr(h, "vary", 4)) != NULL) {
        for (size_t i = 0; i < x->value.len; i++) {
            if (x->value.data[i] == '*') {
                return -1;
            }
        }
    }
    /* the proxy hides X-Accel-Expires from h (proxy_hide_header's default set) and
     * hands its value over apart */
    const zg_str_t *ae = h->accel_expires;
    if (ae == NULL && (x = zg_cache_hdr(h, "x-accel-expires", 15)) != NULL) {
        ae = &x->value;
    }
    if (!(ignore & ZG_IGNORE_X_ACCEL_EXPIRES) && ae != NULL) {
        const zg_str_t *v = ae;
        size_t i = 0;
        int at = v->len > 0 && v->data[0] == '@';
        int64_t n = 0;
        i = at;
        if (i >= v->len) {
            return -1;
        }
        for (; i < v->len; i++) {
            if (v->data[i] < '0' || v->data[i] > '9') {
                return -1;
            }
            n = n * 10 + (v->data[i] - '0');
            if (n > (int64_t)1 << 40) {
                return -1; /* as nginx's ngx_atoi: an overflow is no value */
            }
        }
        if (at) {
            return n > now ? n - now : -1;
        }
        return n == 0 ? -1 : n;
    }
    if (!(ignore & ZG_IGNORE_CACHE_CONTROL) && (x = zg_cache_hdr(h, "cache-control", 13)) != NULL) {
        const zg_str_t *v = &x->value;
        if (zg_cache_has_token(v, "no-cache") || zg_cache_has_token(v, "no-store")
            || zg_cache_has_token(v, "private")) {
            return -1;
        }
        int64_t n = zg_cache_cc_num(v, "s-maxage=");
        if (n < 0) {
            n = zg_cache_cc_num(v, "max-age=");
        }
        if (n == 0) {
            return -1;
        }
        if (n > 0) {
            return n;
        }
    }
    if (!(ignore & ZG_IGNORE_EXPIRES) && (x = zg_cache_hdr(h, "expires", 7)) != NULL) {
        time_t t = zg_http_parse_time(x->value.data, x->value.len);
        if (t == -1 || t <= now) {
            return -1;
        }
        return t - now;
    }
    return 0;
}

/* proxy_cache_valid's time for status, 0 if none */
static int64_t zg_cache_valid_for(const zg_cache_loc_conf_t *cl, int status)
{
    for (int i = 0; i < cl->nvalid; i++) {
        if (cl->valid[i].status == status || cl->valid[i].status == 0) {
            return (int64_t)(cl->valid[i].time / 1000);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- files */

static void zg_cache_md5(const char *p, size_t n, unsigned char *out)
{
    unsigned int len = 16;
    EVP_Digest(p, n, out, &len, EVP_md5(), NULL);
}

/* "c/29/b7f5...029c" as nginx's levels=1:2 */
static void zg_cache_rel(const zg_cache_path_t *cp, const unsigned char *md5, char *out)
{
    static const char hex[] = "0123456789abcdef";
    char h[33];
    size_t o = 0, end = 32;

    for (int i = 0; i < 16; i++) {
        h[2 * i] = hex[md5[i] >> 4];
        h[2 * i + 1] = hex[md5[i] & 15];
    }
    h[32] = '\0';
    for (int l = 0; l < cp->nlevels; l++) {
        end -= (size_t)cp->levels[l];
        memcpy(out + o, h + end, (size_t)cp->levels[l]);
        o += (size_t)cp->levels[l];
        out[o++] = '/';
    }
    memcpy(out + o, h, 33);
}

static int zg_cache_unhex(const char *s, unsigned char *md5)
{
    for (int i = 0; i < 32; i++) {
        int c = s[i], v;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else {
            return ZG_ERROR;
        }
        if (i & 1) {
            md5[i / 2] |= (unsigned char)v;
        } else {
            md5[i / 2] = (unsigned char)(v << 4);
        }
    }
    return s[32] == '\0' ? ZG_OK : ZG_ERROR;
}

static int zg_cache_mkdirs(const zg_cache_path_t *cp, const char *rel)
{
    char d[64];
    size_t o = 0;

    for (int l = 0; l < cp->nlevels; l++) {
        o += (size_t)cp->levels[l] + 1;
        memcpy(d, rel, o - 1);
        d[o - 1] = '\0';
        if (mkdirat(cp->dirfd, d, 0700) == -1 && errno != EEXIST) {
            zg_log_error(ZG_LOG_CRIT, errno, "mkdir \"%s/%s\" failed", cp->path, d);
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

static int zg_cache_write(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return ZG_ERROR;
        }
        s += w;
        n -= (size_t)w;
    }
    return ZG_OK;
}

/* ---------------------------------------------------------------- requests */

static zg_cache_sh_t *zg_cache_sh(zg_cache_path_t *cp)
{
    return cp->zone->data;
}

static const zg_str_t *zg_cache_req_header(zg_request_t *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->ctx.nhdrs; i++) {
        if (zg_http_name_eq(&r->ctx.hdr_names[i], name, len)) {
            return &r->ctx.hdr_values[i];
        }
    }
    return NULL;
}

/* 1 if one of the values is neither empty nor "0" */
static int zg_cache_test(zg_request_t *r, zg_cv_t **cvs, int n)
{
    char buf[64];
    for (int i = 0; i < n; i++) {
        size_t len = zg_cv_eval(cvs[i], &r->ctx, 0, buf, sizeof(buf));
        if (len > 0 && !(len == 1 && buf[0] == '0')) {
            return 1;
        }
    }
    return 0;
}

static void zg_cache_set_status(zg_request_t *r, int status)
{
    zg_cache_ctx_t *x = zg_cache_ctx(r);
    x->status = status;
    if (x->c != NULL) {
        x->c->status = status;
    }
}

/* gives the entry's lock back (the zone locked by the caller or not) */
static void zg_cache_unlock_entry(zg_cache_req_t *c, zg_cache_path_t *cp, int have_lock)
{
    if (!c->locked) {
        return;
    }
    c->locked = 0;
    zg_slab_pool_t *pool = cp->zone->pool;
    if (!have_lock) {
        zg_shmtx_lock(&pool->mutex);
    }
    zg_cache_node_sh_t *n = zg_cache_lookup_locked(zg_cache_sh(cp), c->md5);
    if (n != NULL && n->lock_slot == zg_worker_slot + 1) {
        n->lock_slot = 0;
    }
    if (!have_lock) {
        zg_shmtx_unlock(&pool->mutex);
    }
}

static void zg_cache_wait_closed(uv_handle_t *h)
{
    free(h);
}

static void zg_cache_req_free(zg_request_t *r)
{
    zg_cache_ctx_t *x = zg_cache_ctx(r);
    zg_cache_req_t *c = x->c;

    if (c == NULL) {
        return;
    }
    x->c = NULL;
    zg_cache_path_t *cp = c->conf->cache;
    if (c->fd >= 0) {
        close(c->fd);
        unlinkat(cp->dirfd, c->tmp, 0);
    }
    if (c->stale_fd >= 0) {
        close(c->stale_fd);
    }
    if (c->wait != NULL) {
        uv_timer_stop(c->wait);
        uv_close((uv_handle_t *)c->wait, zg_cache_wait_closed);
    }
    zg_cache_unlock_entry(c, cp, 0);
    free(c->key);
    free(c);
}

static void zg_cache_release(zg_request_t *r)
{
    zg_cache_req_free(r);
}

/* ---- answering from a file ---- */

typedef struct {
    zg_cache_file_t f;
    char *head;                 /* request memory */
    off_t body_off;
} zg_cache_entry_t;

/* reads and checks a file's header and head; ZG_OK or ZG_DECLINED (not usable) */
static int zg_cache_read_entry(zg_request_t *r, zg_cache_req_t *c, int fd, zg_cache_entry_t *e)
{
    if (pread(fd, &e->f, sizeof(e->f), 0) != (ssize_t)sizeof(e->f)
        || e->f.magic != ZG_CACHE_MAGIC || e->f.head_len > 65536 || e->f.key_len > 65536
        || e->f.vary_len > 65536 || memcmp(e->f.md5, c->md5, 16) != 0) {
        return ZG_DECLINED;
    }
    size_t n = (size_t)e->f.key_len + e->f.vary_len + e->f.head_len;
    char *p = zg_var_alloc(&r->ctx, n + 1);
    if (p == NULL || pread(fd, p, n, sizeof(e->f)) != (ssize_t)n) {
        return ZG_DECLINED;
    }
    if (e->f.key_len != c->key_len || memcmp(p, c->key, c->key_len) != 0) {
        return ZG_DECLINED; /* an md5 collision */
    }
    /* Vary: the request's values of the named headers must be those stored */
    const char *v = p + e->f.key_len, *vend = v + e->f.vary_len;
    while (v < vend) {
        const char *nl = memchr(v, '\n', (size_t)(vend - v));
        const char *colon = memchr(v, ':', (size_t)(vend - v));
        if (nl == NULL || colon == NULL || colon > nl) {
            return ZG_DECLINED;
        }
        const zg_str_t *rv = zg_cache_req_header(r, v, (size_t)(colon - v));
        size_t sl = (size_t)(nl - colon - 1);
        if ((rv == NULL && sl != 0) || (rv != NULL && (rv->len != sl
                                                       || memcmp(rv->data, colon + 1, sl)))) {
            return ZG_DECLINED;
        }
        v = nl + 1;
    }
    e->head = p + e->f.key_len + e->f.vary_len;
    e->head[e->f.head_len] = '\0';
    e->body_off = (off_t)(sizeof(e->f) + n);
    return ZG_OK;
}

/* the stored head into h */
static int zg_cache_head_of(zg_request_t *r, zg_cache_entry_t *e, zg_resp_t *h)
{
    char *p = e->head, *end = e->head + e->f.head_len;

    h->status = e->f.status;
    h->content_length = (int64_t)e->f.body_len;
    const zg_proxy_shape_loc_conf_t *sc = zg_proxy_shape_loc_conf(r->loc_conf);
    if (zg_proxy_shape_own_resp(r, sc, h) != ZG_OK) {
        return ZG_ERROR;
    }
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *colon = memchr(p, ':', (size_t)(end - p));
        if (nl == NULL || colon == NULL || colon > nl) {
            return ZG_ERROR;
        }
        char *ve = nl;
        if (ve > colon && ve[-1] == '\r') {
            ve--;
        }
        char *vs = colon + 1;
        while (vs < ve && *vs == ' ') {
            vs++;
        }
        size_t nl_len = (size_t)(colon - p);
        /* zonegate's own Server and Date (server_tokens) are written now, not replayed */
        int own = (nl_len == 6 && sc->own_server && strncasecmp(p, "server", 6) == 0)
                  || (nl_len == 4 && sc->own_date && strncasecmp(p, "date", 4) == 0);
        if (!own && zg_resp_add(r, h, p, nl_len, vs, (size_t)(ve - vs)) != ZG_OK) {
            return ZG_ERROR;
        }
        p = nl + 1;
    }
    return ZG_OK;
}

/* If-None-Match / If-Modified-Since against the entry: 1 = not modified */
static int zg_cache_not_modified(zg_request_t *r, const zg_resp_t *h)
{
    const zg_str_t *inm = zg_cache_req_header(r, "if-none-match", 13);
    const zg_str_t *ims = zg_cache_req_header(r, "if-modified-since", 17);
    const zg_resp_header_t *x;

    if (h->status != 200 || (inm == NULL && ims == NULL)) {
        return 0;
    }
    if (inm != NULL) {
        x = zg_cache_hdr(h, "etag", 4);
        if (inm->len == 1 && inm->data[0] == '*') {
            return x != NULL;
        }
        if (x == NULL) {
            return 0;
        }
        zg_str_t tag = x->value;
        if (tag.len > 2 && tag.data[0] == 'W' && tag.data[1] == '/') {
            tag.data += 2;
            tag.len -= 2;
        }
        for (size_t i = 0; i + tag.len <= inm->len; i++) {
            if (memcmp(inm->data + i, tag.data, tag.len) == 0) {
                return 1;
            }
        }
        return 0;
    }
    x = zg_cache_hdr(h, "last-modified", 13);
    if (x == NULL) {
        return 0;
    }
    time_t lm = zg_http_parse_time(x->value.data, x->value.len);
    time_t since = zg_http_parse_time(ims->data, ims->len);
    return lm != -1 && since != -1 && since >= lm;
}

static void zg_cache_ignore_body(zg_request_t *r, const char *p, size_t n)
{
    (void)r;
    (void)p;
    (void)n;
}

static void zg_cache_done(zg_request_t *r)
{
    r->content = NULL;
    zg_request_release(r);
    zg_request_response_done(r, r->keepalive);
}

static void zg_cache_sent(zg_request_t *r)
{
    if (zg_outq_pending(&r->c->out) > 0) {
        zg_conn_timer(r->c, zg_http_core_loc_conf(r->loc_conf)->send_timeout);
        return;
    }
    zg_cache_done(r);
}

static void zg_cache_body_done(zg_request_t *r)
{
    if (zg_outq_pending(&r->c->out) > 0) {
        zg_conn_timer(r->c, zg_http_core_loc_conf(r->loc_conf)->send_timeout);
    }
}

static void zg_cache_nothing(zg_request_t *r)
{
    (void)r;
}

static const zg_content_ops_t zg_cache_file_ops = {
    zg_cache_ignore_body, zg_cache_body_done, zg_cache_nothing, zg_cache_sent
};

/* body bytes of fd from off through the body filters after the cache's (or all) */
static int zg_cache_pump(zg_request_t *r, int fd, off_t off, uint64_t len, int after_cache)
{
    char buf[65536];
    while (len > 0) {
        size_t want = len < sizeof(buf) ? (size_t)len : sizeof(buf);
        ssize_t n = pread(fd, buf, want, off);
        if (n <= 0) {
            return ZG_ERROR;
        }
        if (after_cache) {
            zg_response_next(r, &zg_cache_module, buf, (size_t)n, 0);
        } else {
            zg_response_body(r, buf, (size_t)n, 0);
        }
        off += n;
        len -= (uint64_t)n;
    }
    return ZG_OK;
}

/* answers from the entry in fd (owned); ZG_OK (c is freed), or ZG_DECLINED when the
 * file is not usable (nothing was sent) */
static int zg_cache_serve(zg_request_t *r, zg_cache_req_t *c, int fd)
{
    zg_cache_entry_t e;
    zg_resp_t h;

    if (zg_cache_read_entry(r, c, fd, &e) != ZG_OK) {
        close(fd);
        return ZG_DECLINED;
    }
    memset(&h, 0, sizeof(h));
    h.keepalive = r->keepalive;
    if (zg_cache_head_of(r, &e, &h) != ZG_OK) {
        close(fd);
        return ZG_DECLINED;
    }
    if (r->err_status) {
        h.status = r->err_status;
    }
    if (zg_cache_not_modified(r, &h)) {
        h.status = 304;
        h.content_length = -1;
        h.no_body = 1;
        zg_resp_del(&h, "content-type", 12);
    }
    if (r->h->head) {
        h.no_body = 1;
    }
    /* the request needs its cache state no more: its body filter is turned off, so
     * that the file goes out with sendfile when no other filter is on */
    zg_cache_req_free(r);
    r->body_filters &= ~(1u << zg_cache_module.filter_slot);
    int rc = zg_response_head(r, &h);
    if (rc != ZG_OK) {
        close(fd);
        zg_request_respond(r, 500, NULL, NULL, NULL, 0);
        return ZG_OK;
    }
    r->keepalive = h.keepalive;
    zg_outq_t *q = &r->c->out;
    if (h.no_body) {
        close(fd);
        zg_outq_flush(q);
        zg_cache_done(r);
        return ZG_OK;
    }
    /* a small body goes out with the head in one write; a larger one with sendfile */
    if (q->tls == NULL && r->body_filters == 0 && !r->resp_chunked
        && e.f.body_len > ZG_CACHE_SENDFILE_MIN) {
        r->ctx.body_bytes_sent += e.f.body_len;
        r->ctx.bytes_sent += e.f.body_len;
        if (zg_outq_sendfile(q, fd, e.body_off, (int64_t)e.f.body_len, 0) != ZG_OK) {
            r->keepalive = 0;
            r->c->close_after = 1;
            zg_cache_done(r);
            return ZG_OK;
        }
        r->content = &zg_cache_file_ops;
        zg_cache_sent(r);
        return ZG_OK;
    }
    if (zg_cache_pump(r, fd, e.body_off, e.f.body_len, 0) != ZG_OK) {
        close(fd);
        zg_request_response_abort(r);
        return ZG_OK;
    }
    close(fd);
    zg_response_body(r, NULL, 0, 1);
    if (zg_outq_flush(q) != ZG_OK) {
        r->keepalive = 0;
    }
    r->content = &zg_cache_file_ops;
    zg_cache_sent(r);
    return ZG_OK;
}

static int zg_cache_open(zg_cache_req_t *c)
{
    return openat(c->conf->cache->dirfd, c->rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

/* ---- the lookup ---- */

enum { ZG_LOOK_FETCH, ZG_LOOK_HIT, ZG_LOOK_WAIT, ZG_LOOK_STALE, ZG_LOOK_BG };

/* looks the key up (creating its entry), counts the use and decides */
static int zg_cache_look(zg_cache_req_t *c, int bypass)
{
    zg_cache_loc_conf_t *cl = c->conf;
    zg_cache_path_t *cp = cl->cache;
    zg_slab_pool_t *pool = cp->zone->pool;
    zg_cache_sh_t *sh = zg_cache_sh(cp);
    int64_t now = time(NULL);
    zg_msec_t ms = zg_time_msec();
    unsigned char ev[ZG_CACHE_EVICT][16];
    int nev = ZG_CACHE_EVICT, rc;

    zg_shmtx_lock(&pool->mutex);
    zg_cache_node_sh_t *n = zg_cache_lookup_locked(sh, c->md5);
    if (n == NULL) {
        n = zg_cache_insert_locked(pool, sh, c->md5, now, ev, &nev);
        if (n == NULL) {
            nev = 0;
        }
    } else {
        nev = 0;
        zg_cache_touch_locked(sh, n, now);
    }
    if (n != NULL && c->wait_until == 0) {
        n->uses++;
    }
    /* as nginx: fresh through the last second of its validity */
    int fresh = n != NULL && n->exists && n->valid_sec >= now;
    int lock_free = n == NULL || n->lock_slot == 0 || ms - n->lock_time >= cl->lock_age;
    c->store = n != NULL && (int)n->uses >= cl->min_uses;
    if (bypass) {
        sh->bypass++;
        c->status = ZG_CACHE_BYPASS;
        rc = ZG_LOOK_FETCH;
    } else if (fresh) {
        sh->hits++;
        c->status = ZG_CACHE_HIT;
        rc = ZG_LOOK_HIT;
    } else if (n != NULL && lock_free && n->exists && cl->background && c->store
               && (cl->use_stale & ZG_STALE_UPDATING)) {
        /* answered from the expired entry now, refreshed in the background by this
         * worker, which holds the entry's lock meanwhile (others get UPDATING) */
        sh->stale++;
        c->status = ZG_CACHE_STALE;
        n->lock_slot = zg_worker_slot + 1;
        n->lock_time = ms;
        c->locked = 1;
        rc = ZG_LOOK_BG;
    } else if (n != NULL && !lock_free && n->exists && (cl->use_stale & ZG_STALE_UPDATING)) {
        sh->updating++;
        c->status = ZG_CACHE_UPDATING;
        rc = ZG_LOOK_STALE;
    } else if (n != NULL && !lock_free && cl->lock
               && (c->wait_until == 0 || ms < c->wait_until)) {
        rc = ZG_LOOK_WAIT;
    } else {
        if (n != NULL && n->exists) {
            sh->expired++;
            c->status = ZG_CACHE_EXPIRED;
        } else {
            sh->misses++;
            c->status = ZG_CACHE_MISS;
        }
        rc = ZG_LOOK_FETCH;
    }
    if (rc == ZG_LOOK_FETCH && !lock_free && c->wait_until != 0) {
        c->store = 0; /* as nginx: after the lock timeout, fetched but not stored */
    }
    if (rc == ZG_LOOK_FETCH && n != NULL && c->store && lock_free) {
        n->lock_slot = zg_worker_slot + 1;
        n->lock_time = ms;
        c->locked = 1;
    }
    int stale_file = rc == ZG_LOOK_FETCH && n != NULL && n->exists
                     && (cl->use_stale || (cl->revalidate && c->status == ZG_CACHE_EXPIRED));
    zg_shmtx_unlock(&pool->mutex);

    for (int i = 0; i < nev; i++) {
        char rel[64];
        zg_cache_rel(cp, ev[i], rel);
        unlinkat(cp->dirfd, rel, 0);
    }
    if (stale_file) {
        c->stale_fd = zg_cache_open(c);
    }
    return rc;
}

static void zg_cache_continue(zg_request_t *r, zg_cache_req_t *c);
static int zg_cache_bg_start(zg_request_t *r, zg_cache_req_t *c);

/* an expired entry's validators, for the upstream request (proxy_cache_revalidate) */
static void zg_cache_revalidation(zg_request_t *r, zg_cache_req_t *c)
{
    zg_cache_entry_t e;
    zg_resp_t h;

    memset(&h, 0, sizeof(h));
    if (zg_cache_read_entry(r, c, c->stale_fd, &e) != ZG_OK || zg_cache_head_of(r, &e, &h)
        != ZG_OK || h.status != 200) {
        return;
    }
    const zg_resp_header_t *x = zg_cache_hdr(&h, "etag", 4);
    if (x != NULL) {
        c->inm = x->value;
    }
    x = zg_cache_hdr(&h, "last-modified", 13);
    if (x != NULL) {
        c->ims = x->value;
    }
    c->revalidating = c->inm.len > 0 || c->ims.len > 0;
}

/* $zg_cache_if_none_match, $zg_cache_if_modified_since: the values the proxy sends
 * for a revalidation, empty otherwise (which drops the client's own, as nginx's
 * proxy_cache_headers do) */
static int zg_cache_validator_get(zg_var_ctx_t *ctx, const void *data, zg_str_t *out)
{
    zg_request_t *r = (zg_request_t *)((char *)ctx - offsetof(zg_request_t, ctx));
    zg_cache_req_t *c = zg_cache_ctx(r)->c;
    if (c == NULL || !c->revalidating) {
        return ZG_DECLINED;
    }
    *out = data != NULL ? c->inm : c->ims;
    return out->len ? ZG_OK : ZG_DECLINED;
}

static void zg_cache_wait_cb(uv_timer_t *t)
{
    zg_request_t *r = t->data;
    zg_cache_req_t *c = zg_cache_ctx(r)->c;
    r->content = NULL;
    zg_cache_continue(r, c);
}

static void zg_cache_wait_abort(zg_request_t *r)
{
    zg_cache_req_free(r);
}

static const zg_content_ops_t zg_cache_wait_ops = {
    zg_cache_ignore_body, zg_cache_nothing, zg_cache_wait_abort, NULL
};

/* after the lookup: answer, wait, or let the content handler (the proxy) fetch */
static void zg_cache_continue(zg_request_t *r, zg_cache_req_t *c)
{
    int rc = zg_cache_look(c, 0);

    if (rc == ZG_LOOK_WAIT) {
        if (c->wait == NULL) {
            c->wait = malloc(sizeof(uv_timer_t));
            if (c->wait == NULL) {
                goto fetch;
            }
            uv_timer_init(r->c->w->loop, c->wait);
            c->wait->data = r;
            c->wait_until = zg_time_msec() + c->conf->lock_timeout;
        }
        r->content = &zg_cache_wait_ops;
        uv_timer_start(c->wait, zg_cache_wait_cb, ZG_CACHE_WAIT_MSEC, 0);
        return;
    }
    if (rc == ZG_LOOK_BG) {
        int fd = zg_cache_open(c);
        if (fd >= 0 && zg_cache_bg_start(r, c) == ZG_OK) {
            /* the refresh took the lock over: the request answers and goes */
            zg_cache_set_status(r, c->status);
            if (zg_cache_serve(r, c, fd) == ZG_OK) {
                return;
            }
            c->status = ZG_CACHE_MISS; /* unusable: fetched, the refresh stores it */
            c->store = 0;
            goto fetch;
        }
        if (fd >= 0) {
            close(fd);
        }
        /* no refresh could start: fetched now, with the lock (as without it) */
        c->status = ZG_CACHE_EXPIRED;
        c->stale_fd = zg_cache_open(c);
        goto fetch;
    }
    if (rc == ZG_LOOK_HIT || rc == ZG_LOOK_STALE) {
        int fd = zg_cache_open(c);
        zg_cache_set_status(r, c->status);
        if (fd >= 0 && zg_cache_serve(r, c, fd) == ZG_OK) {
            return;
        }
        /* gone (the manager removed it) or unusable: fetch it */
        c->status = ZG_CACHE_MISS;
        if (!c->locked) {
            zg_slab_pool_t *pool = c->conf->cache->zone->pool;
            zg_shmtx_lock(&pool->mutex);
            zg_cache_node_sh_t *n = zg_cache_lookup_locked(zg_cache_sh(c->conf->cache), c->md5);
            if (n != NULL) {
                n->exists = 0;
                if (n->lock_slot == 0) {
                    n->lock_slot = zg_worker_slot + 1;
                    n->lock_time = zg_time_msec();
                    c->locked = 1;
                }
            }
            zg_shmtx_unlock(&pool->mutex);
        }
    }
fetch:
    if (c->conf->revalidate && c->status == ZG_CACHE_EXPIRED && c->stale_fd >= 0) {
        zg_cache_revalidation(r, c);
    }
    if (c->wait_until != 0 && c->status == ZG_CACHE_NONE) {
        c->status = ZG_CACHE_MISS;
    }
    zg_cache_set_status(r, c->status);
    c->conf->content(r);
}

/* the content handler of a location with proxy_cache: it wraps the location's own
 * (the proxy's), set when the configuration is loaded, so that a location without a
 * cache pays nothing */
static int zg_cache_content(zg_request_t *r)
{
    zg_cache_loc_conf_t *cl = zg_cache_loc_conf(r->loc_conf);
    zg_cache_path_t *cp = cl->cache;
    char buf[1024];
    int m;

    if (zg_cache_ctx(r)->c != NULL) {
        zg_cache_req_free(r); /* an internal redirect (error_page) to another location */
    }
    if (cp->zone->data == NULL || cp->dirfd < 0) {
        return cl->content(r); /* the directory could not be made or opened (logged) */
    }
    const zg_str_t *meth = &r->ctx.method;
    if (meth->len == 3 && memcmp(meth->data, "GET", 3) == 0) {
        m = ZG_METHOD_GET;
    } else if (meth->len == 4 && memcmp(meth->data, "HEAD", 4) == 0) {
        m = ZG_METHOD_HEAD;
    } else if (meth->len == 4 && memcmp(meth->data, "POST", 4) == 0) {
        m = ZG_METHOD_POST;
    } else {
        return cl->content(r);
    }
    if (!(cl->methods & m)) {
        return cl->content(r);
    }
    zg_cache_req_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return cl->content(r);
    }
    c->conf = cl;
    c->r = r;
    c->fd = c->stale_fd = -1;
    size_t len = zg_cv_eval(cl->key, &r->ctx, 0, buf, sizeof(buf));
    c->key = malloc(len + 1);
    if (c->key == NULL) {
        free(c);
        return cl->content(r);
    }
    if (len > sizeof(buf)) {
        zg_cv_eval(cl->key, &r->ctx, 0, c->key, len);
    } else {
        memcpy(c->key, buf, len);
    }
    c->key_len = len;
    zg_cache_md5(c->key, len, c->md5);
    zg_cache_rel(cp, c->md5, c->rel);
    zg_cache_ctx(r)->c = c;
    r->holding = 1;
    zg_response_filter_body(r, &zg_cache_module);

    if (cl->nbypass > 0 && zg_cache_test(r, cl->bypass, cl->nbypass)) {
        zg_cache_look(c, 1);
        zg_cache_set_status(r, c->status);
        return cl->content(r);
    }
    zg_cache_continue(r, c);
    return ZG_DONE;
}

/* wraps the content handler of every location that caches and passes requests on */
/* as nginx's proxy_cache_headers: the client's conditional and range headers are
 * not passed to the upstream of a caching location; a revalidation sends the
 * entry's validators instead */
static int zg_cache_up_headers(zg_cf_t *cf, zg_proxy_loc_conf_t *plcf)
{
    static const char *const names[] = {
        "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Match", "Range",
        "If-Range"
    };
    int n = plcf->nset_headers < 0 ? 0 : plcf->nset_headers;
    zg_proxy_header_t *h = zg_conf_alloc(cf->conf, (size_t)(n + 6) * sizeof(*h));

    if (h == NULL) {
        return zg_conf_nomem(cf);
    }
    if (n > 0) {
        memcpy(h, plcf->set_headers, (size_t)n * sizeof(*h));
    }
    int k = n;
    for (size_t i = 0; i < zg_nelems(names); i++) {
        int set = 0;
        for (int j = 0; j < n; j++) {
            if (plcf->set_headers[j].name.len == strlen(names[i])
                && strncasecmp(plcf->set_headers[j].name.data, names[i],
                               plcf->set_headers[j].name.len) == 0) {
                set = 1; /* the config's own proxy_set_header wins */
            }
        }
        if (set) {
            continue;
        }
        const char *v = i == 0 ? "$zg_cache_if_none_match"
                        : i == 1 ? "$zg_cache_if_modified_since" : "";
        h[k].name.data = names[i];
        h[k].name.len = strlen(names[i]);
        h[k].value = zg_conf_cv(cf, v, strlen(v));
        if (h[k].value == NULL) {
            return ZG_ERROR;
        }
        k++;
    }
    plcf->set_headers = h;
    plcf->nset_headers = k;
    return ZG_OK;
}

static int zg_cache_wrap(zg_cf_t *cf, zg_location_t *locs, int n)
{
    for (int i = 0; i < n; i++) {
        zg_cache_loc_conf_t *cl = zg_cache_loc_conf(locs[i].loc_conf);
        zg_http_core_loc_conf_t *clcf = zg_http_core_loc_conf(locs[i].loc_conf);
        if (cl->cache != NULL && clcf->handler != NULL && clcf->handler != zg_cache_content
            && zg_proxy_loc_conf(locs[i].loc_conf)->pass) {
            cl->content = clcf->handler;
            clcf->handler = zg_cache_content;
            if (zg_cache_up_headers(cf, zg_proxy_loc_conf(locs[i].loc_conf)) != ZG_OK) {
                return ZG_ERROR;
            }
        }
        if (zg_cache_wrap(cf, locs[i].locations, locs[i].nlocations) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

/* ---- storing: the response filter ---- */

static int zg_cache_filter_on(void **loc_conf)
{
    return zg_cache_loc_conf(loc_conf)->cache != NULL;
}

static int zg_cache_stale_for(int mask, const zg_resp_t *h)
{
    switch (h->status) {
    case 500: return (mask & ZG_STALE_500) != 0;
    case 502: return (mask & (h->from_upstream ? ZG_STALE_502 : ZG_STALE_ERROR)) != 0;
    case 503: return (mask & ZG_STALE_503) != 0;
    case 504: return (mask & (h->from_upstream ? ZG_STALE_504 : ZG_STALE_TIMEOUT)) != 0;
    case 403: return (mask & ZG_STALE_403) != 0;
    case 404: return (mask & ZG_STALE_404) != 0;
    case 429: return (mask & ZG_STALE_429) != 0;
    default: return 0;
    }
}

/* the upstream said 304 to a revalidation: the entry is valid again, for the time the
 * 304's headers give, else proxy_cache_valid's for the entry's status (h: the 304's
 * head, read before it is replaced) */
static void zg_cache_revalidated(zg_request_t *r, zg_cache_req_t *c, const zg_resp_t *h304,
                                 const zg_cache_entry_t *e)
{
    zg_cache_path_t *cp = c->conf->cache;
    time_t now = time(NULL);
    int64_t valid = zg_cache_validity(h304, c->conf->ignore_headers, now);
    (void)r;

    if (valid == 0) {
        valid = zg_cache_valid_for(c->conf, e->f.status);
    }
    int64_t until = valid > 0 ? now + valid : now;
    int fd = openat(cp->dirfd, c->rel, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        if (pwrite(fd, &until, sizeof(until), (off_t)offsetof(zg_cache_file_t, valid_sec))
            != (ssize_t)sizeof(until)) {
            zg_log_error(ZG_LOG_CRIT, errno, "write \"%s/%s\" failed", cp->path, c->rel);
        }
        close(fd);
    }
    zg_slab_pool_t *pool = cp->zone->pool;
    zg_shmtx_lock(&pool->mutex);
    zg_cache_node_sh_t *n = zg_cache_lookup_locked(zg_cache_sh(cp), c->md5);
    if (n != NULL && n->exists) {
        n->valid_sec = until;
    }
    zg_cache_sh(cp)->revalidated++;
    zg_shmtx_unlock(&pool->mutex);
}

/* the upstream failed: the expired entry answers instead (STALE) */
static int zg_cache_substitute(zg_request_t *r, zg_cache_req_t *c, zg_resp_t *h, int status)
{
    zg_cache_entry_t e;
    zg_resp_t s, orig = *h;

    if (zg_cache_read_entry(r, c, c->stale_fd, &e) != ZG_OK) {
        return ZG_DECLINED;
    }
    memset(&s, 0, sizeof(s));
    if (zg_cache_head_of(r, &e, &s) != ZG_OK) {
        return ZG_DECLINED;
    }
    h->status = s.status;
    h->reason.len = 0;
    h->h = s.h;
    h->n = s.n;
    h->cap = s.cap;
    h->content_length = s.content_length;
    h->extra = NULL;
    h->from_upstream = 1;
    r->ctx.status = s.status;
    c->body_len = e.f.body_len;
    c->valid_sec = (int64_t)e.body_off; /* where the body starts */
    c->substitute = 1;
    c->status = status;
    zg_cache_set_status(r, status);
    if (status == ZG_CACHE_REVALIDATED) {
        zg_cache_revalidated(r, c, &orig, &e);
        return ZG_OK;
    }
    zg_slab_pool_t *pool = c->conf->cache->zone->pool;
    zg_shmtx_lock(&pool->mutex);
    zg_cache_sh(c->conf->cache)->stale++;
    zg_shmtx_unlock(&pool->mutex);
    return ZG_OK;
}

/* a request header by name (the request's, or a copy of them) */
typedef const zg_str_t *(*zg_cache_hdr_get_pt)(void *arg, const char *name, size_t len);

static const zg_str_t *zg_cache_r_hdr(void *arg, const char *name, size_t len)
{
    return zg_cache_req_header(arg, name, len);
}

/* the Vary line: "name:value\n" for each header the upstream varies on */
static int zg_cache_vary(int ignore, const zg_resp_t *h, zg_buf_t *b, zg_cache_hdr_get_pt get,
                         void *arg)
{
    const zg_resp_header_t *x = zg_cache_hdr(h, "vary", 4);
    if (x == NULL || (ignore & ZG_IGNORE_VARY)) {
        return ZG_OK;
    }
    const char *p = x->value.data, *end = p + x->value.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ',')) {
            p++;
        }
        const char *s = p;
        while (p < end && *p != ' ' && *p != ',') {
            p++;
        }
        if (p == s) {
            break;
        }
        const zg_str_t *v = get(arg, s, (size_t)(p - s));
        zg_buf_append(b, s, (size_t)(p - s));
        zg_buf_append(b, ":", 1);
        if (v != NULL) {
            zg_buf_append(b, v->data, v->len);
        }
        zg_buf_append(b, "\n", 1);
    }
    return b->failed ? ZG_ERROR : ZG_OK;
}

static void zg_cache_open_entry(zg_cache_req_t *c, const zg_resp_t *h, int64_t valid,
                                time_t now, zg_cache_hdr_get_pt get, void *arg);

static void zg_cache_begin_store(zg_request_t *r, zg_cache_req_t *c, zg_resp_t *h)
{
    zg_cache_loc_conf_t *cl = c->conf;
    time_t now = time(NULL);
    int ignore = cl->ignore_headers;

    if (h->no_body || r->h->head || !c->store) {
        return;
    }
    int64_t valid = zg_cache_validity(h, ignore, now);
    if (valid < 0) {
        return;
    }
    if (valid == 0) {
        valid = zg_cache_valid_for(cl, h->status);
    }
    if (valid <= 0 || (cl->nno_cache > 0 && zg_cache_test(r, cl->no_cache, cl->nno_cache))) {
        return;
    }
    zg_cache_open_entry(c, h, valid, now, zg_cache_r_hdr, r);
}

/* the temp file of a new entry, with its header, key, Vary line and head (c->fd,
 * c->storing; nothing when it could not be made) */
static void zg_cache_open_entry(zg_cache_req_t *c, const zg_resp_t *h, int64_t valid,
                                time_t now, zg_cache_hdr_get_pt get, void *arg)
{
    zg_cache_path_t *cp = c->conf->cache;
    zg_buf_t b;
    memset(&b, 0, sizeof(b));
    zg_cache_file_t f;
    memset(&f, 0, sizeof(f));
    f.magic = ZG_CACHE_MAGIC;
    f.status = h->status;
    f.valid_sec = now + valid;
    f.date = now;
    f.key_len = (uint32_t)c->key_len;
    memcpy(f.md5, c->md5, 16);
    zg_buf_append(&b, (const char *)&f, sizeof(f));
    zg_buf_append(&b, c->key, c->key_len);
    size_t vstart = b.len;
    if (zg_cache_vary(c->conf->ignore_headers, h, &b, get, arg) != ZG_OK) {
        zg_buf_free(&b);
        return;
    }
    f.vary_len = (uint32_t)(b.len - vstart);
    size_t hstart = b.len;
    for (int i = 0; i < h->n; i++) {
        zg_buf_append(&b, h->h[i].name.data, h->h[i].name.len);
        zg_buf_append(&b, ": ", 2);
        zg_buf_append(&b, h->h[i].value.data, h->h[i].value.len);
        zg_buf_append(&b, "\r\n", 2);
    }
    f.head_len = (uint32_t)(b.len - hstart);
    if (b.failed || f.head_len > 65536) {
        zg_buf_free(&b);
        return;
    }
    memcpy(b.data, &f, sizeof(f));
    snprintf(c->tmp, sizeof(c->tmp), "t.%d.%u", (int)getpid(), zg_cache_seq++);
    c->fd = openat(cp->dirfd, c->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (c->fd < 0) {
        zg_log_error(ZG_LOG_CRIT, errno, "open \"%s/%s\" failed", cp->path, c->tmp);
        zg_buf_free(&b);
        return;
    }
    if (zg_cache_write(c->fd, b.data, b.len) != ZG_OK) {
        zg_log_error(ZG_LOG_CRIT, errno, "write \"%s/%s\" failed", cp->path, c->tmp);
        close(c->fd);
        c->fd = -1;
        unlinkat(cp->dirfd, c->tmp, 0);
        zg_buf_free(&b);
        return;
    }
    zg_buf_free(&b);
    c->valid_sec = f.valid_sec;
    c->body_len = 0;
    c->storing = 1;
}

static int zg_cache_header_filter(zg_request_t *r, zg_resp_t *h)
{
    zg_cache_ctx_t *x = zg_cache_ctx(r);
    zg_cache_req_t *c = x->c;

    if (c == NULL) {
        return ZG_OK;
    }
    if (c->stale_fd >= 0 && zg_cache_stale_for(c->conf->use_stale, h)
        && zg_cache_substitute(r, c, h, ZG_CACHE_STALE) == ZG_OK) {
        h->no_body = r->h->head;
    } else if (c->revalidating && h->from_upstream && h->status == 304
               && zg_cache_substitute(r, c, h, ZG_CACHE_REVALIDATED) == ZG_OK) {
        h->no_body = r->h->head;
    } else if (h->from_upstream) {
        zg_cache_begin_store(r, c, h); /* after a bypass too, as nginx */
    }
    if (!c->storing) {
        zg_cache_unlock_entry(c, c->conf->cache, 0);
    }
    if (h->no_body) {
        /* no body follows: the body filter (and its release hook) will not run */
        zg_cache_req_free(r);
    }
    return ZG_OK;
}

/* the temp file is complete: under its name, into the index */
static void zg_cache_finish_store(zg_request_t *r, zg_cache_req_t *c)
{
    zg_cache_path_t *cp = c->conf->cache;
    zg_cache_sh_t *sh = zg_cache_sh(cp);
    zg_slab_pool_t *pool = cp->zone->pool;
    struct stat st;
    off_t off = (off_t)offsetof(zg_cache_file_t, body_len);
    (void)r;

    c->storing = 0;
    if (pwrite(c->fd, &c->body_len, sizeof(c->body_len), off) != (ssize_t)sizeof(c->body_len)
        || fstat(c->fd, &st) == -1) {
        goto failed;
    }
    if (renameat(cp->dirfd, c->tmp, cp->dirfd, c->rel) == -1) {
        if (errno != ENOENT || zg_cache_mkdirs(cp, c->rel) != ZG_OK
            || renameat(cp->dirfd, c->tmp, cp->dirfd, c->rel) == -1) {
            zg_log_error(ZG_LOG_CRIT, errno, "rename \"%s/%s\" to \"%s\" failed", cp->path,
                         c->tmp, c->rel);
            goto failed;
        }
    }
    close(c->fd);
    c->fd = -1;
    int64_t now = time(NULL);
    unsigned char ev[ZG_CACHE_EVICT][16];
    int nev = ZG_CACHE_EVICT;
    zg_shmtx_lock(&pool->mutex);
    zg_cache_node_sh_t *n = zg_cache_lookup_locked(sh, c->md5);
    if (n == NULL) {
        n = zg_cache_insert_locked(pool, sh, c->md5, now, ev, &nev);
    } else {
        nev = 0;
    }
    if (n != NULL) {
        sh->size -= n->fs_size;
        n->fs_size = (uint64_t)st.st_size;
        sh->size += n->fs_size;
        n->valid_sec = c->valid_sec;
        n->exists = 1;
        if (c->locked && n->lock_slot == zg_worker_slot + 1) {
            n->lock_slot = 0;
        }
        sh->stored++;
        sh->bytes_written += (uint64_t)st.st_size;
    }
    c->locked = 0;
    zg_shmtx_unlock(&pool->mutex);
    for (int i = 0; i < nev; i++) {
        char rel[64];
        zg_cache_rel(cp, ev[i], rel);
        unlinkat(cp->dirfd, rel, 0);
    }
    if (n == NULL) {
        unlinkat(cp->dirfd, c->rel, 0);
    }
    return;
failed:
    close(c->fd);
    c->fd = -1;
    unlinkat(cp->dirfd, c->tmp, 0);
    zg_cache_unlock_entry(c, cp, 0);
}

static void zg_cache_body_filter(zg_request_t *r, const char *p, size_t n, int last)
{
    zg_cache_req_t *c = zg_cache_ctx(r)->c;

    if (c != NULL && c->substitute) {
        if (last) {
            c->substitute = 0;
            if (zg_cache_pump(r, c->stale_fd, (off_t)c->valid_sec, c->body_len, 1) != ZG_OK) {
                zg_request_response_abort(r);
                return;
            }
            zg_response_next(r, &zg_cache_module, NULL, 0, 1);
        }
        return;
    }
    if (c != NULL && c->storing && n > 0) {
        if (zg_cache_write(c->fd, p, n) != ZG_OK) {
            zg_log_error(ZG_LOG_CRIT, errno, "write \"%s/%s\" failed", c->conf->cache->path,
                         c->tmp);
            c->storing = 0;
            close(c->fd);
            c->fd = -1;
            unlinkat(c->conf->cache->dirfd, c->tmp, 0);
            zg_cache_unlock_entry(c, c->conf->cache, 0);
        } else {
            c->body_len += n;
        }
    }
    if (c != NULL && c->storing && last) {
        zg_cache_finish_store(r, c);
    }
    zg_response_next(r, &zg_cache_module, p, n, last);
}

/* ---- proxy_cache_background_update ---- */

/* A refresh of an expired entry made without a client: the request that found the
 * entry expired builds the upstream request (as a subrequest would send it), hands
 * the entry's lock over, answers from the expired entry and goes on (keepalive); the
 * refresh, owned by the worker, fetches the URL from one peer and stores the answer
 * through the same temp file + rename, then gives the lock back.  A worker that
 * exits ends its refreshes (temp file removed, lock given back); a killed one leaves
 * its lock to the master (worker_gone) and its temp file to the manager. */
typedef struct zg_cache_bg_s zg_cache_bg_t;
struct zg_cache_bg_s {
    zg_cache_req_t c;           /* the entry: md5, rel, key, lock, temp file */
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t wr;
    uv_timer_t timer;
    zg_http_resp_t *resp;
    zg_buf_t head;              /* the request to the upstream */
    zg_str_t *hdr_names;        /* a copy of the client's headers (for Vary) */
    size_t nhdrs;
    zg_upstream_conf_t *u;
    const zg_proxy_loc_conf_t *plcf;
    const zg_proxy_shape_loc_conf_t *sc; /* proxy_hide_header, proxy_redirect */
    zg_upstream_pick_t pick;
    zg_cache_bg_t *next;        /* this worker's refreshes */
    int handles;                /* open uv handles; freed at 0 */
    int connect_rc;
    unsigned connecting : 1;    /* a unix socket's connect, reported on the next tick */
    unsigned connected : 1;
    unsigned done : 1;
};

static zg_cache_bg_t *zg_cache_bgs;

static void zg_cache_bg_closed(uv_handle_t *h)
{
    zg_cache_bg_t *bg = h->data;

    if (--bg->handles > 0) {
        return;
    }
    zg_http_resp_destroy(bg->resp);
    zg_buf_free(&bg->head);
    free(bg->hdr_names);
    free(bg->c.key);
    free(bg);
}

/* the end of a refresh, stored or not (failed: the upstream's fault) */
static void zg_cache_bg_end(zg_cache_bg_t *bg, int failed, const char *what)
{
    zg_cache_path_t *cp = bg->c.conf->cache;

    if (bg->done) {
        return;
    }
    bg->done = 1;
    if (what != NULL) {
        zg_log_error(ZG_LOG_ERR, 0, "%s during the background update of \"%.*s\", upstream: \"%s\"",
                     what, (int)zg_min(bg->c.key_len, 256), bg->c.key,
                     bg->pick.addr ? bg->pick.addr->text : "-");
    }
    if (bg->c.fd >= 0) {
        close(bg->c.fd);
        bg->c.fd = -1;
        unlinkat(cp->dirfd, bg->c.tmp, 0);
    }
    zg_cache_unlock_entry(&bg->c, cp, 0);
    if (bg->pick.peer >= 0) {
        zg_upstream_free(bg->u, &bg->pick, failed, zg_time_msec());
    }
    for (zg_cache_bg_t **pp = &zg_cache_bgs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == bg) {
            *pp = bg->next;
            break;
        }
    }
    uv_timer_stop(&bg->timer);
    uv_close((uv_handle_t *)&bg->timer, zg_cache_bg_closed);
    uv_close((uv_handle_t *)&bg->tcp, zg_cache_bg_closed);
}

static const zg_str_t *zg_cache_bg_hdr(void *arg, const char *name, size_t len)
{
    zg_cache_bg_t *bg = arg;

    for (size_t i = 0; i < bg->nhdrs; i++) {
        if (zg_http_name_eq(&bg->hdr_names[i], name, len)) {
            return &bg->hdr_names[bg->nhdrs + i];
        }
    }
    return NULL;
}

static void zg_cache_bg_on_head(void *data, zg_http_resp_head_t *rh)
{
    zg_cache_bg_t *bg = data;
    zg_cache_loc_conf_t *cl = bg->c.conf;
    zg_resp_header_t hs[ZG_HTTP_MAX_HEADERS];
    zg_resp_t h;
    time_t now = time(NULL);

    if (bg->done) {
        return;
    }
    memset(&h, 0, sizeof(h));
    h.status = rh->status;
    h.from_upstream = 1;
    h.h = hs;
    h.cap = ZG_HTTP_MAX_HEADERS;
    for (size_t i = 0; i < rh->nhdrs; i++) {
        const zg_str_t *n = &rh->names[i];
        if (zg_http_hop_by_hop(n) || zg_http_name_eq(n, "content-length", 14)) {
            continue;
        }
        hs[h.n].name = *n;
        hs[h.n].value = rh->values[i];
        h.n++;
    }
    int64_t valid = rh->no_body ? -1 : zg_cache_validity(&h, cl->ignore_headers, now);
    if (valid == 0) {
        valid = zg_cache_valid_for(cl, h.status);
    }
    /* what the proxy would pass on: no X-Accel-*, no proxy_hide_header ones */
    int n = 0, redirect = 0;
    for (int i = 0; i < h.n; i++) {
        const zg_str_t *name = &hs[i].name, *v = &hs[i].value;
        zg_str_t nv;
        if (name->len >= 8 && strncasecmp(name->data, "x-accel-", 8) == 0) {
            continue;
        }
        if (bg->sc->nredirects > 0 && v->len > 0 && (zg_http_name_eq(name, "location", 8)
                                                     || zg_http_name_eq(name, "refresh", 7))) {
            redirect = 1; /* proxy_redirect needs the request */
            break;
        }
        /* hidden or not (the request is used by proxy_redirect only, ruled out above) */
        if (zg_proxy_shape_header(NULL, bg->sc, name, v, &nv) == ZG_DECLINED) {
            continue;
        }
        hs[n++] = hs[i];
    }
    h.n = n;
    if (valid > 0 && redirect) {
        /* the next request fetches it as a MISS, through the proxy */
        zg_slab_pool_t *pool = cl->cache->zone->pool;
        zg_shmtx_lock(&pool->mutex);
        zg_cache_node_sh_t *node = zg_cache_lookup_locked(zg_cache_sh(cl->cache), bg->c.md5);
        if (node != NULL) {
            node->exists = 0;
        }
        zg_shmtx_unlock(&pool->mutex);
    } else if (valid > 0) {
        zg_cache_open_entry(&bg->c, &h, valid, now, zg_cache_bg_hdr, bg);
    }
    if (!bg->c.storing) {
        zg_cache_bg_end(bg, 0, NULL); /* not to be cached: the expired entry stays */
    }
}

static void zg_cache_bg_on_body(void *data, const char *p, size_t n)
{
    zg_cache_bg_t *bg = data;

    if (bg->done || !bg->c.storing || n == 0) {
        return;
    }
    if (zg_cache_write(bg->c.fd, p, n) != ZG_OK) {
        zg_log_error(ZG_LOG_CRIT, errno, "write \"%s/%s\" failed", bg->c.conf->cache->path,
                     bg->c.tmp);
        zg_cache_bg_end(bg, 0, NULL);
        return;
    }
    bg->c.body_len += n;
}

static void zg_cache_bg_on_done(void *data)
{
    zg_cache_bg_t *bg = data;

    if (bg->done) {
        return;
    }
    if (bg->c.storing) {
        zg_cache_finish_store(NULL, &bg->c); /* the lock goes back with the new entry */
    }
    zg_cache_bg_end(bg, 0, NULL);
}

static const zg_http_resp_handlers_t zg_cache_bg_handlers = {
    zg_cache_bg_on_head, zg_cache_bg_on_body, zg_cache_bg_on_done
};

static void zg_cache_bg_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[512];
    zg_cache_bg_t *bg = h->data;
    size_t len = 0;
    char *b;

    (void)suggested;
    if (bg->done) {
        *buf = uv_buf_init(scratch, sizeof(scratch));
        return;
    }
    b = zg_http_resp_buffer(bg->resp, &len);
    *buf = uv_buf_init(b, (unsigned)len);
}

static void zg_cache_bg_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    zg_cache_bg_t *bg = s->data;
    int rc;

    (void)buf;
    if (bg->done || nread == 0) {
        return;
    }
    if (nread < 0) {
        if (nread == UV_EOF && zg_http_resp_eof(bg->resp) == ZG_DONE) {
            return; /* on_done ended it */
        }
        zg_cache_bg_end(bg, 1, nread == UV_EOF ? "upstream prematurely closed connection"
                                               : "recv() failed");
        return;
    }
    rc = zg_http_resp_feed(bg->resp, (size_t)nread);
    if (bg->done) {
        return; /* ended by its handlers (stored, or not to be cached) */
    }
    if (rc == ZG_ERROR) {
        zg_cache_bg_end(bg, 1, "upstream sent an invalid response");
    } else if (rc == ZG_OK) {
        uv_timer_again(&bg->timer); /* the read timeout, between two reads */
    }
}

static void zg_cache_bg_written(uv_write_t *req, int status)
{
    zg_cache_bg_t *bg = req->data;

    if (status < 0) {
        zg_cache_bg_end(bg, 1, "send() failed");
    }
}

static void zg_cache_bg_timer(uv_timer_t *t);

static void zg_cache_bg_connected(uv_connect_t *req, int status)
{
    zg_cache_bg_t *bg = req->data;
    char what[128];

    if (bg->done || status == UV_ECANCELED) {
        return;
    }
    if (status < 0) {
        snprintf(what, sizeof(what), "connect() failed (%s)", uv_strerror(status));
        zg_cache_bg_end(bg, 1, what);
        return;
    }
    bg->connected = 1;
    uv_timer_start(&bg->timer, zg_cache_bg_timer, zg_max(bg->plcf->read_timeout, 1),
                   zg_max(bg->plcf->read_timeout, 1));
    uv_buf_t b = uv_buf_init(bg->head.data, (unsigned)bg->head.len);
    if (uv_write(&bg->wr, (uv_stream_t *)&bg->tcp, &b, 1, zg_cache_bg_written) != 0
        || uv_read_start((uv_stream_t *)&bg->tcp, zg_cache_bg_alloc, zg_cache_bg_read) != 0) {
        zg_cache_bg_end(bg, 1, "send() failed");
    }
}

static void zg_cache_bg_timer(uv_timer_t *t)
{
    zg_cache_bg_t *bg = t->data;

    if (bg->connecting) {
        bg->connecting = 0;
        zg_cache_bg_connected(&bg->connect, bg->connect_rc);
        return;
    }
    zg_cache_bg_end(bg, 1, "upstream timed out");
}

/* starts the refresh of c's entry, whose lock it takes over; ZG_OK, or ZG_ERROR
 * (nothing started, c keeps the lock) */
static int zg_cache_bg_start(zg_request_t *r, zg_cache_req_t *c)
{
    zg_buf_t uri = ZG_BUF_INIT;
    zg_cache_bg_t *bg = calloc(1, sizeof(*bg));
    int rc;

    if (bg == NULL) {
        return ZG_ERROR;
    }
    if (r->ctx.method.len == 4 && memcmp(r->ctx.method.data, "POST", 4) == 0) {
        free(bg); /* a cached POST: the refresh would be a GET, so none */
        return ZG_ERROR;
    }
    zg_buf_append(&uri, r->ctx.uri.data, r->ctx.uri.len);
    if (r->ctx.args.len) {
        zg_buf_append(&uri, "?", 1);
        zg_buf_append(&uri, r->ctx.args.data, r->ctx.args.len);
    }
    zg_str_t u = { uri.len, uri.data };
    size_t blob = 0;
    for (size_t i = 0; i < r->ctx.nhdrs; i++) {
        blob += r->ctx.hdr_names[i].len + r->ctx.hdr_values[i].len;
    }
    bg->c.key = malloc(c->key_len + 1);
    bg->hdr_names = malloc(2 * r->ctx.nhdrs * sizeof(zg_str_t) + blob + 1);
    bg->resp = zg_http_resp_create(ZG_CACHE_BG_HEAD_MAX, &zg_cache_bg_handlers, bg);
    if (uri.failed || bg->c.key == NULL || bg->hdr_names == NULL || bg->resp == NULL
        || zg_proxy_sub_head(r, &u, &bg->u, &bg->plcf, &bg->head) != ZG_OK) {
        zg_buf_free(&uri);
        zg_http_resp_destroy(bg->resp);
        free(bg->hdr_names);
        free(bg->c.key);
        free(bg);
        return ZG_ERROR;
    }
    zg_buf_free(&uri);
    /* the client's headers (Vary), copied: the request goes away first */
    char *p = (char *)(bg->hdr_names + 2 * r->ctx.nhdrs);
    bg->nhdrs = r->ctx.nhdrs;
    for (size_t i = 0; i < bg->nhdrs; i++) {
        const zg_str_t *n = &r->ctx.hdr_names[i], *v = &r->ctx.hdr_values[i];
        memcpy(p, n->data, n->len);
        bg->hdr_names[i].data = p;
        bg->hdr_names[i].len = n->len;
        p += n->len;
        if (v->len) {
            memcpy(p, v->data, v->len);
        }
        bg->hdr_names[bg->nhdrs + i].data = p;
        bg->hdr_names[bg->nhdrs + i].len = v->len;
        p += v->len;
    }
    memcpy(bg->c.key, c->key, c->key_len);
    bg->c.key_len = c->key_len;
    bg->c.conf = c->conf;
    bg->sc = zg_proxy_shape_loc_conf(r->loc_conf);
    memcpy(bg->c.md5, c->md5, 16);
    memcpy(bg->c.rel, c->rel, sizeof(c->rel));
    bg->c.fd = bg->c.stale_fd = -1;
    bg->c.store = 1;
    zg_upstream_pick_init(&bg->pick);
    zg_http_resp_reset(bg->resp, 0);
    uv_timer_init(r->c->w->loop, &bg->timer);
    uv_tcp_init(r->c->w->loop, &bg->tcp);
    bg->timer.data = bg->tcp.data = bg->connect.data = bg->wr.data = bg;
    bg->handles = 2;
    /* the lock is the refresh's now */
    bg->c.locked = c->locked;
    c->locked = 0;
    bg->next = zg_cache_bgs;
    zg_cache_bgs = bg;
    if (zg_upstream_get(bg->u, &bg->pick, zg_time_msec()) != ZG_OK) {
        bg->pick.peer = -1;
        zg_cache_bg_end(bg, 0, "no live upstreams");
        return ZG_OK;
    }
    if (bg->pick.addr->sa.ss_family == AF_UNIX) {
        rc = zg_unix_connect(&bg->tcp, bg->pick.addr);
        bg->connecting = 1;
        bg->connect_rc = rc;
        uv_timer_start(&bg->timer, zg_cache_bg_timer, 0, 0);
        return ZG_OK;
    }
    rc = uv_tcp_connect(&bg->connect, &bg->tcp, (const struct sockaddr *)&bg->pick.addr->sa,
                        zg_cache_bg_connected);
    if (rc != 0) {
        bg->connecting = 1;
        bg->connect_rc = rc;
        uv_timer_start(&bg->timer, zg_cache_bg_timer, 0, 0);
        return ZG_OK;
    }
    uv_timer_start(&bg->timer, zg_cache_bg_timer, zg_max(bg->plcf->connect_timeout, 1), 0);
    return ZG_OK;
}

/* a worker that exits ends its refreshes: no temp file, no lock left behind */
static void zg_cache_exit_worker(zg_worker_t *w)
{
    (void)w;
    while (zg_cache_bgs != NULL) {
        zg_cache_bg_end(zg_cache_bgs, 0, NULL);
    }
}

/* $upstream_cache_status */
static int zg_cache_var_get(zg_var_ctx_t *ctx, const void *data, zg_str_t *out)
{
    (void)data;
    zg_request_t *r = (zg_request_t *)((char *)ctx - offsetof(zg_request_t, ctx));
    int s = zg_cache_ctx(r)->status;
    if (s <= ZG_CACHE_NONE || s > ZG_CACHE_HIT) {
        return ZG_DECLINED;
    }
    out->data = zg_cache_status_text[s];
    out->len = strlen(out->data);
    return ZG_OK;
}

/* ---------------------------------------------------------------- master */

static int64_t zg_cache_now(void)
{
    return time(NULL);
}

static int zg_cache_pid_alive(pid_t pid)
{
    return kill(pid, 0) == 0 || errno != ESRCH;
}

/* the loader: every file under the directory into the index (temp files of dead
 * workers are removed) */
/* the loader's directories still to read (master memory) */
static int zg_cache_load_push(zg_cache_path_t *cp, const char *rel)
{
    if (cp->nload == cp->capload) {
        int cap = cp->capload ? 2 * cp->capload : 64;
        char **d = realloc(cp->load, (size_t)cap * sizeof(*d));
        if (d == NULL) {
            return ZG_ERROR;
        }
        cp->load = d;
        cp->capload = cap;
    }
    if ((cp->load[cp->nload] = strdup(rel)) == NULL) {
        return ZG_ERROR;
    }
    cp->nload++;
    return ZG_OK;
}

/* reads one directory: its subdirectories of the levels go on the loader's list, its
 * cache files into the index; returns the number of files looked at */
static int zg_cache_load_dir(zg_cache_path_t *cp, int dfd, const char *rel, int depth)
{
    int files = 0;
    zg_slab_pool_t *pool = cp->zone->pool;
    zg_cache_sh_t *sh = zg_cache_sh(cp);
    /* a descriptor of its own: a dup would share (and move) the directory's offset */
    int fd = openat(dfd, rel[0] ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        char path[128];
        files++;
        if (name[0] == '.') {
            continue;
        }
        if (snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", name)
            >= (int)sizeof(path)) {
            continue;
        }
        if (depth == 0 && name[0] == 't' && name[1] == '.') {
            if (!zg_cache_pid_alive((pid_t)atoi(name + 2))) {
                unlinkat(cp->dirfd, path, 0);
            }
            continue;
        }
        if (depth < cp->nlevels) {
            if ((int)strlen(name) == cp->levels[depth] && zg_cache_load_push(cp, path) != ZG_OK) {
                zg_log_error(ZG_LOG_ALERT, errno, "no memory for the cache loader");
            }
            continue;
        }
        unsigned char md5[16];
        zg_cache_file_t f;
        struct stat st;
        int ffd;
        if (zg_cache_unhex(name, md5) != ZG_OK) {
            continue;
        }
        ffd = openat(cp->dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (ffd < 0) {
            continue;
        }
        int ok = fstat(ffd, &st) == 0 && pread(ffd, &f, sizeof(f), 0) == (ssize_t)sizeof(f)
                 && f.magic == ZG_CACHE_MAGIC && memcmp(f.md5, md5, 16) == 0
                 && (uint64_t)st.st_size == sizeof(f) + (uint64_t)f.key_len + f.vary_len
                                            + f.head_len + f.body_len;
        close(ffd);
        if (!ok) {
            unlinkat(cp->dirfd, path, 0);
            continue;
        }
        unsigned char ev[ZG_CACHE_EVICT][16];
        int nev = ZG_CACHE_EVICT;
        zg_shmtx_lock(&pool->mutex);
        zg_cache_node_sh_t *n = zg_cache_lookup_locked(sh, md5);
        if (n == NULL) {
            n = zg_cache_insert_locked(pool, sh, md5, (int64_t)st.st_mtime, ev, &nev);
        } else {
            nev = 0;
        }
        /* a key asked for before the loader came to its file gets the file */
        if (n != NULL && !n->exists) {
            n->valid_sec = f.valid_sec;
            n->fs_size = (uint64_t)st.st_size;
            n->exists = 1;
            sh->size += n->fs_size;
        }
        zg_shmtx_unlock(&pool->mutex);
        for (int i = 0; i < nev; i++) {
            char r2[64];
            zg_cache_rel(cp, ev[i], r2);
            unlinkat(cp->dirfd, r2, 0);
        }
    }
    closedir(d);
    return files;
}

/* temp files of workers that are gone (killed while writing an entry) */
static void zg_cache_clean_temp(zg_cache_path_t *cp)
{
    int fd = openat(cp->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;

    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == 't' && de->d_name[1] == '.'
            && !zg_cache_pid_alive((pid_t)atoi(de->d_name + 2))) {
            unlinkat(cp->dirfd, de->d_name, 0);
        }
    }
    closedir(d);
}

/* the loader, in bounded steps: directories are read one after another until
 * ZG_CACHE_LOAD_FILES files were looked at in this tick */
static void zg_cache_load_step(zg_cache_path_t *cp)
{
    zg_cache_sh_t *sh = zg_cache_sh(cp);
    int files = 0;

    if (!cp->load_started) {
        cp->load_started = 1;
        if (zg_cache_load_push(cp, "") != ZG_OK) {
            sh->loaded = 1;
            return;
        }
    }
    while (cp->nload > 0 && files < ZG_CACHE_LOAD_FILES) {
        char *rel = cp->load[--cp->nload];
        int depth = 0;
        if (rel[0] != '\0') {
            depth = 1;
            for (const char *q = rel; *q; q++) {
                depth += *q == '/';
            }
        }
        files += zg_cache_load_dir(cp, cp->dirfd, rel, depth);
        free(rel);
    }
    if (cp->nload == 0) {
        free(cp->load);
        cp->load = NULL;
        cp->capload = 0;
        sh->loaded = 1;
    }
}

static void zg_cache_manage(zg_cache_path_t *cp)
{
    static unsigned char out[ZG_CACHE_MANAGE_MAX][16];
    zg_slab_pool_t *pool = cp->zone->pool;
    zg_cache_sh_t *sh = zg_cache_sh(cp);

    if (!sh->loaded) {
        zg_cache_load_step(cp);
        return;
    }
    zg_cache_clean_temp(cp);
    uint64_t max = (uint64_t)cp->max_size;
    struct statvfs sv;
    if (cp->min_free > 0 && fstatvfs(cp->dirfd, &sv) == 0
        && (uint64_t)sv.f_bavail * sv.f_frsize < (uint64_t)cp->min_free) {
        /* min_free: the entries give back what the disk lacks */
        uint64_t need = (uint64_t)cp->min_free - (uint64_t)sv.f_bavail * sv.f_frsize;
        uint64_t size = __atomic_load_n(&sh->size, __ATOMIC_RELAXED);
        uint64_t cap = size > need ? size - need : 1;
        if (max == 0 || cap < max) {
            max = cap;
        }
    }
    zg_shmtx_lock(&pool->mutex);
    int n = zg_cache_expire_locked(pool, sh, zg_cache_now(), (int64_t)(cp->inactive / 1000),
                                   max, out, ZG_CACHE_MANAGE_MAX);
    zg_shmtx_unlock(&pool->mutex);
    for (int i = 0; i < n; i++) {
        char rel[64];
        zg_cache_rel(cp, out[i], rel);
        unlinkat(cp->dirfd, rel, 0);
    }
}

static void zg_cache_tick(zg_conf_t *conf)
{
    zg_cache_main_conf_t *cm = zg_cache_main_conf(conf);
    for (int i = 0; cm != NULL && i < cm->npaths; i++) {
        if (cm->paths[i]->dirfd >= 0 && cm->paths[i]->zone->data != NULL) {
            zg_cache_manage(cm->paths[i]);
        }
    }
}

/* master: a dead worker's cache locks are given back */
static void zg_cache_worker_gone(zg_conf_t *conf, int slot)
{
    zg_cache_main_conf_t *cm = zg_cache_main_conf(conf);
    for (int i = 0; cm != NULL && i < cm->npaths; i++) {
        zg_zone_t *z = cm->paths[i]->zone;
        if (z->data == NULL) {
            continue;
        }
        zg_cache_sh_t *sh = z->data;
        zg_shmtx_lock(&z->pool->mutex);
        for (zg_queue_t *q = zg_queue_head(&sh->lru); q != zg_queue_sentinel(&sh->lru);
             q = zg_queue_next(q)) {
            zg_cache_node_sh_t *e = zg_queue_data(q, zg_cache_node_sh_t, queue);
            if (e->lock_slot == slot + 1) {
                e->lock_slot = 0;
            }
        }
        zg_shmtx_unlock(&z->pool->mutex);
    }
}

static int zg_cache_mkpath(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0700) == -1 && errno != EEXIST) {
                return -1;
            }
            buf[i] = c;
        }
    }
    return 0;
}

/* the cache directory and its level directories go to the workers' user (their
 * files need not: a file is replaced or removed through its directory) */
static void zg_cache_chown_dirs(int dfd, uid_t uid, gid_t gid, int levels)
{
    if (fchown(dfd, uid, gid) == -1 || levels == 0) {
        return;
    }
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)) {
            continue;
        }
        int cfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (cfd >= 0) {
            zg_cache_chown_dirs(cfd, uid, gid, levels - 1);
            close(cfd);
        }
    }
    closedir(d);
}

static int zg_cache_init_master(zg_conf_t *conf)
{
    zg_cache_main_conf_t *cm = zg_cache_main_conf(conf);
    zg_core_conf_t *core = zg_core_conf(conf);

    for (int i = 0; cm != NULL && i < cm->npaths; i++) {
        zg_cache_path_t *cp = cm->paths[i];
        if (zg_cache_mkpath(cp->path) == -1) {
            zg_log_error(ZG_LOG_EMERG, errno, "mkdir \"%s\" failed", cp->path);
            return ZG_ERROR;
        }
        cp->dirfd = open(cp->path, O_RDONLY | O_DIRECTORY);
        if (cp->dirfd < 0) {
            zg_log_error(ZG_LOG_EMERG, errno, "open \"%s\" failed", cp->path);
            return ZG_ERROR;
        }
        if (geteuid() == 0) {
            uid_t uid = core->user_uid;
            gid_t gid = core->user_gid;
            if (core->user == NULL) {
                struct passwd *pw = getpwnam("nobody");
                if (pw == NULL) {
                    continue;
                }
                uid = pw->pw_uid;
                gid = pw->pw_gid;
            }
            zg_cache_chown_dirs(cp->dirfd, uid, gid, cp->nlevels);
        }
    }
    return ZG_OK;
}

static void zg_cache_exit_master(zg_conf_t *conf)
{
    zg_cache_main_conf_t *cm = zg_cache_main_conf(conf);
    for (int i = 0; cm != NULL && i < cm->npaths; i++) {
        zg_cache_path_t *cp = cm->paths[i];
        if (cp->dirfd >= 0) {
            close(cp->dirfd);
            cp->dirfd = -1;
        }
        while (cp->nload > 0) {
            free(cp->load[--cp->nload]);
        }
        free(cp->load);
        cp->load = NULL;
    }
}

static int zg_cache_init_worker(zg_worker_t *w)
{
    zg_cache_main_conf_t *cm = zg_cache_main_conf(w->conf);
    for (int i = 0; cm != NULL && i < cm->npaths; i++) {
        if (cm->paths[i]->dirfd >= 0 && zg_sandbox_dir(cm->paths[i]->dirfd) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

static void zg_cache_metrics(zg_buf_t *b, const zg_conf_t *conf)
{
    static const char *const names[] = {
        "hit", "miss", "expired", "stale", "updating", "bypass", "revalidated"
    };
    zg_zone_t *z;

    if (zg_admin_zones_of(conf, ZG_ZONE_CACHE) == 0) {
        return;
    }
    zg_admin_family(b, "zonegate_cache_responses_total", "counter",
                    "Requests that looked in a proxy_cache, by zone and cache status.");
    for (z = conf->zones.head; z != NULL; z = z->next) {
        if (z->pool == NULL || z->kind != ZG_ZONE_CACHE || z->data == NULL) {
            continue;
        }
        zg_cache_sh_t *sh = z->data;
        uint64_t v[7] = { sh->hits, sh->misses, sh->expired, sh->stale, sh->updating,
                          sh->bypass, sh->revalidated };
        for (int j = 0; j < 7; j++) {
            zg_admin_sample(b, "zonegate_cache_responses_total", v[j], "zone", z->name,
                            "status", names[j], NULL);
        }
    }
    static const struct { const char *name, *type, *help; } fam[] = {
        { "zonegate_cache_bytes", "gauge", "Bytes of the cached files." },
        { "zonegate_cache_entries", "gauge", "Keys in the cache's keys zone." },
        { "zonegate_cache_written_bytes_total", "counter", "Bytes written to cache files." },
        { "zonegate_cache_stored_total", "counter", "Responses stored in the cache." },
        { "zonegate_cache_evictions_total", "counter",
          "Entries removed to make room (keys zone full or max_size)." },
    };
    for (size_t k = 0; k < zg_nelems(fam); k++) {
        zg_admin_family(b, fam[k].name, fam[k].type, fam[k].help);
        for (z = conf->zones.head; z != NULL; z = z->next) {
            if (z->pool == NULL || z->kind != ZG_ZONE_CACHE || z->data == NULL) {
                continue;
            }
            zg_cache_sh_t *sh = z->data;
            uint64_t v[] = { sh->size, sh->entries, sh->bytes_written, sh->stored,
                             sh->evictions };
            zg_admin_sample(b, fam[k].name, v[k], "zone", z->name, NULL);
        }
    }
}

/* ---------------------------------------------------------------- the API */

int zg_cache_stats(zg_zone_t *z, zg_cache_stats_t *st)
{
    if (z == NULL || z->kind != ZG_ZONE_CACHE || z->pool == NULL || z->data == NULL) {
        return ZG_DECLINED;
    }
    zg_cache_sh_t *sh = z->data;
    zg_cache_path_t *cp = z->conf;
    memset(st, 0, sizeof(*st));
    zg_shmtx_lock(&z->pool->mutex);
    st->size = sh->size;
    st->entries = sh->entries;
    st->hits = sh->hits;
    st->misses = sh->misses;
    st->expired = sh->expired;
    st->stale = sh->stale;
    st->updating = sh->updating;
    st->bypass = sh->bypass;
    st->revalidated = sh->revalidated;
    st->bytes_written = sh->bytes_written;
    st->stored = sh->stored;
    st->evictions = sh->evictions;
    st->cold = !sh->loaded;
    zg_shmtx_unlock(&z->pool->mutex);
    st->max_size = cp != NULL ? (uint64_t)cp->max_size : 0;
    return ZG_OK;
}

void zg_cache_reset(zg_zone_t *z)
{
    zg_cache_sh_t *sh = z->data;
    zg_shmtx_lock(&z->pool->mutex);
    sh->hits = sh->misses = sh->expired = sh->stale = sh->updating = 0;
    sh->bypass = sh->revalidated = sh->bytes_written = sh->stored = sh->evictions = 0;
    zg_shmtx_unlock(&z->pool->mutex);
}

static int zg_cache_hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f'
                                                ? (c | 32) - 'a' + 10 : -1;
}

int zg_cache_purge(zg_zone_t *z, const char *key, size_t len)
{
    zg_cache_path_t *cp = z->conf;
    unsigned char md5[16];
    char *k = malloc(len + 1);
    size_t n = 0;

    if (k == NULL) {
        return ZG_ERROR;
    }
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (key[i] == '%' && i + 2 < len
            && (hi = zg_cache_hexval(key[i + 1])) >= 0 && (lo = zg_cache_hexval(key[i + 2])) >= 0) {
            k[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            k[n++] = key[i];
        }
    }
    zg_cache_md5(k, n, md5);
    free(k);
    zg_shmtx_lock(&z->pool->mutex);
    zg_cache_node_sh_t *e = zg_cache_lookup_locked(z->data, md5);
    int found = e != NULL && e->exists;
    if (e != NULL) {
        zg_cache_delete_locked(z->pool, z->data, e);
    }
    zg_shmtx_unlock(&z->pool->mutex);
    if (found && cp != NULL && cp->dirfd >= 0) {
        char rel[64];
        zg_cache_rel(cp, md5, rel);
        unlinkat(cp->dirfd, rel, 0);
    }
    return found ? ZG_OK : ZG_DECLINED;
}

/* ---------------------------------------------------------------- config */

static int zg_cache_path_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_cache_main_conf_t *cm = conf;
    zg_str_t *a = cf->args;
    zg_cache_path_t *cp = zg_conf_alloc(cf->conf, sizeof(*cp));
    (void)cmd;

    if (cp == NULL) {
        return zg_conf_nomem(cf);
    }
    cp->dirfd = -1;
    cp->inactive = 600000;
    cp->path = zg_conf_path(cf, &a[1]);
    if (cp->path == NULL) {
        return zg_conf_nomem(cf);
    }
    size_t pl = strlen(cp->path);
    while (pl > 1 && cp->path[pl - 1] == '/') {
        cp->path[--pl] = '\0';
    }
    for (int i = 2; i < cf->nargs; i++) {
        zg_str_t *v = &a[i];
        if (zg_conf_prefix(v, "levels=")) {
            const char *p = v->data + 7, *end = v->data + v->len;
            int total = 0;
            cp->nlevels = 0;
            while (p < end) {
                if (cp->nlevels == 3 || (*p != '1' && *p != '2')) {
                    return zg_conf_invalid(cf, v);
                }
                cp->levels[cp->nlevels++] = *p - '0';
                total += *p - '0';
                p++;
                if (p < end && *p++ != ':') {
                    return zg_conf_invalid(cf, v);
                }
                if (p == end && p[-1] == ':') {
                    return zg_conf_invalid(cf, v);
                }
            }
            if (cp->nlevels == 0 || total > 6) {
                return zg_conf_invalid(cf, v);
            }
        } else if (zg_conf_prefix(v, "keys_zone=")) {
            if (zg_conf_zone_param(cf, &(zg_str_t){ v->len - 5, v->data + 5 }, ZG_ZONE_CACHE,
                                   &cp->zone) != ZG_OK) {
                return ZG_ERROR;
            }
            cp->name = cp->zone->name;
        } else if (zg_conf_prefix(v, "inactive=")) {
            cp->inactive = zg_conf_parse_time(v->data + 9, v->len - 9);
            if (cp->inactive == ZG_UNSET_MSEC || cp->inactive < 1000) {
                return zg_conf_invalid(cf, v);
            }
        } else if (zg_conf_prefix(v, "max_size=")) {
            cp->max_size = zg_conf_parse_size(v->data + 9, v->len - 9);
            if (cp->max_size < 0) {
                return zg_conf_invalid(cf, v);
            }
        } else if (zg_conf_prefix(v, "min_free=")) {
            cp->min_free = zg_conf_parse_size(v->data + 9, v->len - 9);
            if (cp->min_free < 0) {
                return zg_conf_invalid(cf, v);
            }
        } else if (zg_conf_prefix(v, "manager_files=")
                   || zg_conf_prefix(v, "manager_sleep=")
                   || zg_conf_prefix(v, "manager_threshold=")
                   || zg_conf_prefix(v, "loader_files=") || zg_conf_prefix(v, "loader_sleep=")
                   || zg_conf_prefix(v, "loader_threshold=")) {
            /* accepted: the manager and loader work in their own bounded steps */
        } else if (zg_conf_eq(v, "use_temp_path=off") || zg_conf_eq(v, "use_temp_path=on")) {
            /* temp files are always in the cache directory (one rename, same fs) */
        } else {
            return zg_conf_bad_param(cf, v);
        }
    }
    if (cp->zone == NULL) {
        return zg_conf_error(cf, "\"%s\" must have \"keys_zone\" parameter", cf->name);
    }
    for (int i = 0; i < cm->npaths; i++) {
        if (strcmp(cm->paths[i]->path, cp->path) == 0) {
            return zg_conf_error(cf, "duplicate cache path \"%s\", previous cache "
                                 "with the same path is \"%s\"", cp->path, cm->paths[i]->name);
        }
    }
    zg_cache_path_t **slot = zg_conf_push(cf->conf, cm->paths, cm->npaths);
    if (slot == NULL) {
        return zg_conf_nomem(cf);
    }
    *slot = cp;
    cp->zone->conf = cp;
    return ZG_OK;
}

static int zg_cache_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_cache_loc_conf_t *cl = conf;
    (void)cmd;

    if (cl->cache_set != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    if (zg_conf_eq(&cf->args[1], "off")) {
        cl->cache_set = 0;
        return ZG_OK;
    }
    if (memchr(cf->args[1].data, '$', cf->args[1].len) != NULL) {
        return zg_conf_error(cf, "\"proxy_cache\" with variables is not supported");
    }
    cl->cache_set = 1;
    cl->cache_name = zg_conf_strdup(cf->conf, cf->args[1].data, cf->args[1].len);
    return cl->cache_name ? ZG_OK : zg_conf_nomem(cf);
}

static int zg_cache_key_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_cache_loc_conf_t *cl = conf;
    (void)cmd;

    if (cl->key != NULL) {
        return zg_conf_duplicate(cf);
    }
    cl->key = zg_conf_cv(cf, cf->args[1].data, cf->args[1].len);
    return cl->key ? ZG_OK : ZG_ERROR;
}

static int zg_cache_valid_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_cache_loc_conf_t *cl = conf;
    zg_str_t *a = cf->args;
    (void)cmd;

    if (cl->nvalid < 0) {
        cl->nvalid = 0;
    }
    zg_msec_t t = zg_conf_parse_time(a[cf->nargs - 1].data, a[cf->nargs - 1].len);
    if (t == ZG_UNSET_MSEC) {
        return zg_conf_invalid(cf, &a[cf->nargs - 1]);
    }
    static const int dflt[] = { 200, 301, 302 };
    int n = cf->nargs == 2 ? 3 : cf->nargs - 2;
    for (int i = 0; i < n; i++) {
        int status;
        if (cf->nargs == 2) {
            status = dflt[i];
        } else if (zg_conf_eq(&a[i + 1], "any")) {
            status = 0;
        } else {
            status = zg_conf_atoi(a[i + 1].data, a[i + 1].len);
            if (status < 100 || status > 599) {
                return zg_conf_invalid(cf, &a[i + 1]);
            }
        }
        zg_cache_valid_t *v = zg_conf_push(cf->conf, cl->valid, cl->nvalid);
        if (v == NULL) {
            return zg_conf_nomem(cf);
        }
        v->status = status;
        v->time = t;
    }
    return ZG_OK;
}

static int zg_cache_methods_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_cache_loc_conf_t *cl = conf;
    (void)cmd;

    if (cl->methods != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    cl->methods = ZG_METHOD_GET | ZG_METHOD_HEAD;
    for (int i = 1; i < cf->nargs; i++) {
        if (zg_conf_eq(&cf->args[i], "GET")) {
            cl->methods |= ZG_METHOD_GET;
        } else if (zg_conf_eq(&cf->args[i], "HEAD")) {
            cl->methods |= ZG_METHOD_HEAD;
        } else if (zg_conf_eq(&cf->args[i], "POST")) {
            cl->methods |= ZG_METHOD_POST;
        } else {
            return zg_conf_invalid(cf, &cf->args[i]);
        }
    }
    return ZG_OK;
}

static int zg_cache_conds(zg_cf_t *cf, zg_cv_t ***arr, int *n)
{
    if (*n < 0) {
        *n = 0;
    }
    for (int i = 1; i < cf->nargs; i++) {
        zg_cv_t **slot = zg_conf_push(cf->conf, *arr, *n);
        if (slot == NULL) {
            return zg_conf_nomem(cf);
        }
        *slot = zg_conf_cv(cf, cf->args[i].data, cf->args[i].len);
        if (*slot == NULL) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

static int zg_cache_bypass_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_cache_loc_conf_t *cl = conf;
    (void)cmd;
    return zg_cache_conds(cf, &cl->bypass, &cl->nbypass);
}

static int zg_cache_no_cache_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_cache_loc_conf_t *cl = conf;
    (void)cmd;
    return zg_cache_conds(cf, &cl->no_cache, &cl->nno_cache);
}

static int zg_cache_use_stale_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    static const struct { const char *name; int bit; } words[] = {
        { "error", ZG_STALE_ERROR }, { "timeout", ZG_STALE_TIMEOUT },
        { "updating", ZG_STALE_UPDATING }, { "http_500", ZG_STALE_500 },
        { "http_502", ZG_STALE_502 }, { "http_503", ZG_STALE_503 },
        { "http_504", ZG_STALE_504 }, { "http_403", ZG_STALE_403 },
        { "http_404", ZG_STALE_404 }, { "http_429", ZG_STALE_429 },
        { "invalid_header", 0 },
    };
    zg_cache_loc_conf_t *cl = conf;
    (void)cmd;

    if (cl->use_stale != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    cl->use_stale = 0;
    for (int i = 1; i < cf->nargs; i++) {
        size_t k;
        if (zg_conf_eq(&cf->args[i], "off")) {
            if (cf->nargs != 2) {
                return zg_conf_invalid(cf, &cf->args[i]);
            }
            continue;
        }
        for (k = 0; k < zg_nelems(words); k++) {
            if (zg_conf_eq(&cf->args[i], words[k].name)) {
                cl->use_stale |= words[k].bit;
                break;
            }
        }
        if (k == zg_nelems(words)) {
            return zg_conf_invalid(cf, &cf->args[i]);
        }
    }
    return ZG_OK;
}

static int zg_cache_ignore_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    static const struct { const char *name; int bit; } words[] = {
        { "X-Accel-Redirect", ZG_IGNORE_X_ACCEL_REDIRECT },
        { "X-Accel-Expires", ZG_IGNORE_X_ACCEL_EXPIRES },
        { "X-Accel-Limit-Rate", ZG_IGNORE_X_ACCEL_LIMIT_RATE },
        { "X-Accel-Buffering", ZG_IGNORE_X_ACCEL_BUFFERING },
        { "X-Accel-Charset", ZG_IGNORE_X_ACCEL_CHARSET },
        { "Expires", ZG_IGNORE_EXPIRES },
        { "Cache-Control", ZG_IGNORE_CACHE_CONTROL },
        { "Set-Cookie", ZG_IGNORE_SET_COOKIE },
        { "Vary", ZG_IGNORE_VARY },
    };
    zg_cache_loc_conf_t *cl = conf;
    (void)cmd;

    if (cl->ignore_headers != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    cl->ignore_headers = 0;
    for (int i = 1; i < cf->nargs; i++) {
        size_t k;
        for (k = 0; k < zg_nelems(words); k++) {
            if (cf->args[i].len == strlen(words[k].name)
                && strncasecmp(cf->args[i].data, words[k].name, cf->args[i].len) == 0) {
                cl->ignore_headers |= words[k].bit;
                break;
            }
        }
        if (k == zg_nelems(words)) {
            return zg_conf_invalid(cf, &cf->args[i]);
        }
    }
    return ZG_OK;
}

static void *zg_cache_create_main_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_cache_main_conf_t));
}

static int zg_cache_init_main_conf(zg_cf_t *cf, void *conf)
{
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(cf->conf);
    zg_vars_t *vs = zg_conf_vars(cf->conf);
    (void)conf;

    if (vs == NULL
        || zg_vars_define(vs, "upstream_cache_status", 21, zg_cache_var_get, NULL,
                          ZG_VAR_NOCACHE, NULL) == ZG_ERROR
        || zg_vars_define(vs, "zg_cache_if_none_match", 22, zg_cache_validator_get, "",
                          ZG_VAR_NOCACHE, NULL) == ZG_ERROR
        || zg_vars_define(vs, "zg_cache_if_modified_since", 26, zg_cache_validator_get,
                          NULL, ZG_VAR_NOCACHE, NULL) == ZG_ERROR) {
        return zg_conf_nomem(cf);
    }
    /* the locations are merged by now (http core's init_main_conf runs first) */
    for (int i = 0; cmcf != NULL && i < cmcf->nservers; i++) {
        if (zg_cache_wrap(cf, cmcf->servers[i].locations, cmcf->servers[i].nlocations) != ZG_OK
            || zg_cache_wrap(cf, cmcf->servers[i].named, cmcf->servers[i].nnamed) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

static void *zg_cache_create_loc_conf(zg_conf_t *conf)
{
    zg_cache_loc_conf_t *cl = zg_conf_alloc(conf, sizeof(*cl));
    if (cl == NULL) {
        return NULL;
    }
    cl->cache_set = ZG_UNSET;
    cl->nvalid = -1;
    cl->methods = ZG_UNSET;
    cl->min_uses = ZG_UNSET;
    cl->nbypass = -1;
    cl->nno_cache = -1;
    cl->lock = ZG_UNSET;
    cl->revalidate = ZG_UNSET;
    cl->lock_timeout = ZG_UNSET_MSEC;
    cl->lock_age = ZG_UNSET_MSEC;
    cl->use_stale = ZG_UNSET;
    cl->background = ZG_UNSET;
    cl->ignore_headers = ZG_UNSET;
    return cl;
}

static int zg_cache_merge_loc_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_cache_loc_conf_t *p = parent, *c = child;

    if (c->cache_set == ZG_UNSET) {
        c->cache_set = p->cache_set;
        c->cache_name = p->cache_name;
        c->cache = p->cache;
    }
    if (c->cache_set == 1 && c->cache == NULL) {
        zg_cache_main_conf_t *cm = zg_cache_main_conf(cf->conf);
        for (int i = 0; i < cm->npaths; i++) {
            if (strcmp(cm->paths[i]->name, c->cache_name) == 0) {
                c->cache = cm->paths[i];
            }
        }
        if (c->cache == NULL) {
            return zg_conf_error(cf, "\"proxy_cache\" zone \"%s\" is unknown", c->cache_name);
        }
    }
    if (c->key == NULL) {
        c->key = p->key;
    }
    if (c->key == NULL && c->cache != NULL) {
        /* nginx's $scheme$proxy_host$request_uri, with the request's Host for the
         * proxy_pass host (zonegate has no $proxy_host) */
        c->key = zg_conf_cv(cf, "$scheme$host$request_uri", 24);
        if (c->key == NULL) {
            return ZG_ERROR;
        }
    }
    if (c->nvalid < 0) {
        c->nvalid = p->nvalid;
        c->valid = p->valid;
    }
    ZG_CONF_MERGE(c, p, methods, ZG_UNSET);
    if (c->methods == ZG_UNSET) {
        c->methods = ZG_METHOD_GET | ZG_METHOD_HEAD;
    }
    ZG_CONF_MERGE(c, p, min_uses, ZG_UNSET);
    if (c->min_uses == ZG_UNSET) {
        c->min_uses = 1;
    }
    if (c->nbypass < 0) {
        c->nbypass = p->nbypass;
        c->bypass = p->bypass;
    }
    if (c->nno_cache < 0) {
        c->nno_cache = p->nno_cache;
        c->no_cache = p->no_cache;
    }
    ZG_CONF_MERGE(c, p, background, ZG_UNSET);
    if (c->background == ZG_UNSET) {
        c->background = 0;
    }
    ZG_CONF_MERGE(c, p, revalidate, ZG_UNSET);
    if (c->revalidate == ZG_UNSET) {
        c->revalidate = 0;
    }
    ZG_CONF_MERGE(c, p, lock, ZG_UNSET);
    if (c->lock == ZG_UNSET) {
        c->lock = 0;
    }
    ZG_CONF_MERGE(c, p, lock_timeout, ZG_UNSET_MSEC);
    if (c->lock_timeout == ZG_UNSET_MSEC) {
        c->lock_timeout = 5000;
    }
    ZG_CONF_MERGE(c, p, lock_age, ZG_UNSET_MSEC);
    if (c->lock_age == ZG_UNSET_MSEC) {
        c->lock_age = 5000;
    }
    ZG_CONF_MERGE(c, p, use_stale, ZG_UNSET);
    if (c->use_stale == ZG_UNSET) {
        c->use_stale = 0;
    }
    ZG_CONF_MERGE(c, p, ignore_headers, ZG_UNSET);
    if (c->ignore_headers == ZG_UNSET) {
        c->ignore_headers = 0;
    }
    return ZG_OK;
}

#define ZG_CL(f) offsetof(zg_cache_loc_conf_t, f)

static const zg_command_t zg_cache_commands[] = {
    { "proxy_cache_path", ZG_CTX_HTTP, 0, 2, -1, zg_cache_path_directive, ZG_MAIN_CONF, 0,
      NULL },
    { "proxy_cache", ZG_CTX_SETTINGS, 0, 1, 1, zg_cache_directive, ZG_LOC_CONF, 0, NULL },
    { "proxy_cache_key", ZG_CTX_SETTINGS, 0, 1, 1, zg_cache_key_directive, ZG_LOC_CONF, 0,
      NULL },
    { "proxy_cache_valid", ZG_CTX_SETTINGS, 0, 1, -1, zg_cache_valid_directive, ZG_LOC_CONF,
      0, NULL },
    { "proxy_cache_methods", ZG_CTX_SETTINGS, 0, 1, -1, zg_cache_methods_directive,
      ZG_LOC_CONF, 0, NULL },
    { "proxy_cache_min_uses", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_count, ZG_LOC_CONF,
      ZG_CL(min_uses), NULL },
    { "proxy_cache_bypass", ZG_CTX_SETTINGS, 0, 1, -1, zg_cache_bypass_directive,
      ZG_LOC_CONF, 0, NULL },
    { "proxy_no_cache", ZG_CTX_SETTINGS, 0, 1, -1, zg_cache_no_cache_directive, ZG_LOC_CONF,
      0, NULL },
    { "proxy_cache_lock", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      ZG_CL(lock), NULL },
    { "proxy_cache_lock_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_CL(lock_timeout), NULL },
    { "proxy_cache_lock_age", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      ZG_CL(lock_age), NULL },
    { "proxy_cache_revalidate", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      ZG_CL(revalidate), NULL },
    { "proxy_cache_background_update", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag,
      ZG_LOC_CONF, ZG_CL(background), NULL },
    { "proxy_cache_use_stale", ZG_CTX_SETTINGS, 0, 1, -1, zg_cache_use_stale_directive,
      ZG_LOC_CONF, 0, NULL },
    { "proxy_ignore_headers", ZG_CTX_SETTINGS, 0, 1, -1, zg_cache_ignore_directive,
      ZG_LOC_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_cache_module = {
    .name = "cache",
    .commands = zg_cache_commands,
    .create_main_conf = zg_cache_create_main_conf,
    .init_main_conf = zg_cache_init_main_conf,
    .create_loc_conf = zg_cache_create_loc_conf,
    .merge_loc_conf = zg_cache_merge_loc_conf,
    .init_master = zg_cache_init_master,
    .exit_master = zg_cache_exit_master,
    .init_worker = zg_cache_init_worker,
    .exit_worker = zg_cache_exit_worker,
    .worker_gone = zg_cache_worker_gone,
    .tick = zg_cache_tick,
    .release = zg_cache_release,
    .filter_on = zg_cache_filter_on,
    .header_filter = zg_cache_header_filter,
    .body_filter = zg_cache_body_filter,
    .ctx_size = sizeof(zg_cache_ctx_t),
    .metrics = zg_cache_metrics,
};
