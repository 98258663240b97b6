/* zg_static.c — static files with nginx's meaning (zg_static.h).
 *
 * A request's path is root + $uri, or, under alias, the alias + what follows the
 * location's prefix (a regex location's alias is the whole path).  $uri is
 * normalised by the parser ("..", "." and %XX resolved; ".." above "/" is a 400),
 * and a path built from try_files' or index's variables that has a ".." segment
 * after the root is refused (404), so a path never leaves its root.  Symbolic links
 * are followed, as nginx does by default; with `disable_symlinks on` every
 * component after the root is opened with O_NOFOLLOW relative to the one before
 * (openat), and a link answers 403; `if_not_owner` follows a link only when it and
 * its target have the same owner.
 *
 * The answer goes through the response filters (zg_response.h): a 200 with
 * Last-Modified, ETag ("%xT-%xO" of mtime and size), Accept-Ranges; 304 for
 * If-None-Match / If-Modified-Since; 412 for If-Match / If-Unmodified-Since; one
 * byte range as a 206 with Content-Range, several as a multipart/byteranges 206, 416
 * with "Content-Range: bytes *\/SIZE" — decided by this module's header filter,
 * after gzip's (a compressed answer gets no range), as nginx's range filter.
 * gzip_static answers with FILE.gz.  The body goes out with sendfile(2) as a file
 * segment of the output queue when sendfile is on, the connection is plain TCP and
 * no body filter is on (several ranges: one segment per part, after its head); else
 * it is read in pieces into the body filters, the next piece once the client took
 * the last. */
#include "zg_static.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "zg_gzip.h"
#include "zg_http.h"
#include "zg_http_core.h"
#include "zg_log.h"
#include "zg_request.h"
#include "zg_response.h"
#include "zg_rewrite.h"
#include "zg_vars.h"

#define ZG_STATIC_PIECE (64 * 1024) /* what the read path reads at a time */
#define ZG_STATIC_DIRECT (32 * 1024) /* the same into the output queue: its buffer stays
                                        under the size it keeps between flushes */

/* a multipart/byteranges answer: its parts */
typedef struct {
    zg_static_range_t *r;
    int n, cur;               /* cur: the next part to start */
    const char *head;         /* CRLF "--" BOUNDARY CRLF "Content-Type: T" CRLF
                                 "Content-Range: bytes " */
    size_t hlen;
    int64_t size;             /* the file's, for each part's Content-Range */
    char boundary[24];
} zg_static_mp_t;

/* the request's state: the file being read into the body filters */
typedef struct {
    int fd;                   /* valid while `open` */
    unsigned open : 1;
    unsigned ranges_ok : 1;   /* the answer being made may become a 206 (the range
                                 filter, after the others, as nginx's) */
    unsigned range_416 : 1;   /* the range filter found nothing satisfiable */
    unsigned gzip : 1;        /* gzip_static: the file is FILE.gz */
    unsigned gzip_vary : 1;   /* gzip_static on found FILE.gz: Vary with gzip_vary */
    time_t mtime;             /* the file's, for If-Range */
    int64_t off, left;        /* what is left of the range being sent */
    zg_static_mp_t *mp;       /* several ranges, else NULL */
} zg_static_ctx_t;

static int zg_static_handler(zg_request_t *r);
static int zg_static_range_filter(zg_request_t *r, zg_resp_t *h);

/* ---- config ---- */

static void *zg_static_create_conf(zg_conf_t *conf)
{
    zg_static_loc_conf_t *c = zg_conf_alloc(conf, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->alias = ZG_UNSET;
    c->etag = ZG_UNSET;
    c->ims = ZG_UNSET;
    c->log_not_found = ZG_UNSET;
    c->sendfile = ZG_UNSET;
    c->tcp_nopush = ZG_UNSET;
    c->symlinks = ZG_UNSET;
    c->ofc_min_uses = ZG_UNSET;
    c->gzip_static = ZG_UNSET;
    c->max_ranges = ZG_UNSET;
    return c;
}

static int zg_static_type_cmp(const void *a, const void *b)
{
    const zg_static_type_t *x = a, *y = b;
    size_t n = zg_min(x->ext.len, y->ext.len);
    int c = memcmp(x->ext.data, y->ext.data, n);

    return c != 0 ? c : (x->ext.len > y->ext.len) - (x->ext.len < y->ext.len);
}

static const zg_static_type_t zg_static_default_types[] = {
    /* nginx's types when no `types` is given anywhere */
    { zg_string("gif"), zg_string("image/gif") },
    { zg_string("html"), zg_string("text/html") },
    { zg_string("jpg"), zg_string("image/jpeg") },
};

static int zg_static_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_static_loc_conf_t *p = parent, *c = child;

    (void)cf;
    if (c->root == NULL) {
        c->root = p->root;
        c->alias = p->alias;
        c->alias_len = p->alias_len;
        c->alias_regex = p->alias_regex;
    }
    if (c->index == NULL) {
        c->index = p->index;
        c->nindex = p->nindex;
    }
    if (c->types == NULL) {
        c->types = p->types;
        c->ntypes = p->ntypes;
        c->types_sorted = p->types_sorted;
    }
    if (c->types == NULL) {
        c->types = (zg_static_type_t *)zg_static_default_types;
        c->ntypes = (int)zg_nelems(zg_static_default_types);
        c->types_sorted = 1;
    }
    if (!c->types_sorted) {
        qsort(c->types, (size_t)c->ntypes, sizeof(*c->types), zg_static_type_cmp);
        c->types_sorted = 1;
    }
    ZG_CONF_MERGE(c, p, etag, ZG_UNSET);
    ZG_CONF_MERGE(c, p, ims, ZG_UNSET);
    ZG_CONF_MERGE(c, p, log_not_found, ZG_UNSET);
    ZG_CONF_MERGE(c, p, sendfile, ZG_UNSET);
    ZG_CONF_MERGE(c, p, tcp_nopush, ZG_UNSET);
    ZG_CONF_MERGE(c, p, symlinks, ZG_UNSET);
    ZG_CONF_MERGE(c, p, gzip_static, ZG_UNSET);
    ZG_CONF_MERGE(c, p, max_ranges, ZG_UNSET);
    if (c->gzip_static == ZG_UNSET) {
        c->gzip_static = ZG_GZIP_STATIC_OFF;
    }
    if (c->max_ranges == ZG_UNSET) {
        c->max_ranges = INT32_MAX;
    }
    if (c->etag == ZG_UNSET) {
        c->etag = 1;
    }
    if (c->ims == ZG_UNSET) {
        c->ims = 1;
    }
    if (c->log_not_found == ZG_UNSET) {
        c->log_not_found = 1;
    }
    if (c->sendfile == ZG_UNSET) {
        c->sendfile = 0;
    }
    if (c->tcp_nopush == ZG_UNSET) {
        c->tcp_nopush = 0;
    }
    if (c->symlinks == ZG_UNSET) {
        c->symlinks = ZG_SYMLINKS_FOLLOW;
    }
    return ZG_OK;
}

/* a path value: absolute as written, else under the config's directory (nginx's
 * prefix), variables allowed */
static zg_cv_t *zg_static_path_cv(zg_cf_t *cf, const zg_str_t *v)
{
    if (v->data[0] == '/' || v->data[0] == '$' || cf->conf->prefix == NULL) {
        return zg_conf_cv(cf, v->data, v->len);
    }
    char *p = zg_conf_path(cf, v);
    return p != NULL ? zg_conf_cv(cf, p, strlen(p)) : NULL;
}

/* root PATH / alias PATH */
static int zg_static_root(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_static_loc_conf_t *slcf = conf;
    int alias = cmd->name[0] == 'a';
    zg_str_t *v = &cf->args[1];

    if (slcf->root != NULL) {
        if (slcf->alias == alias) {
            return zg_conf_duplicate(cf);
        }
        return zg_conf_error(cf, "\"%s\" directive is duplicate, \"%s\" directive was "
                             "specified earlier", cf->name, alias ? "root" : "alias");
    }
    if (v->len == 0) {
        return zg_conf_invalid(cf, v);
    }
    if (memmem(v->data, v->len, "$realpath_root", 14) != NULL) {
        return zg_conf_error(cf, "the $realpath_root variable cannot be used in the \"%s\" "
                             "directive", cf->name);
    }
    if (alias) {
        /* the location being read is the block (its zg_location_t comes first) */
        const zg_location_t *loc = cf->block;
        if (cf->ctx != ZG_CTX_LOC || loc == NULL) {
            return zg_conf_error(cf, "\"alias\" directive is not allowed here");
        }
        if (loc->named) {
            return zg_conf_error(cf, "\"alias\" directive cannot be used inside the named "
                                 "location");
        }
        slcf->alias_len = loc->path_len;
        slcf->alias_regex = loc->regex != NULL;
    }
    if (v->data[v->len - 1] == '/' && !alias && v->len > 1) {
        v->len--; /* root "/srv/www/" + "/a" */
    }
    slcf->alias = alias;
    slcf->root = zg_static_path_cv(cf, v);
    return slcf->root != NULL ? ZG_OK : ZG_ERROR;
}

static int zg_static_index(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_static_loc_conf_t *slcf = conf;

    (void)cmd;
    /* a second `index` of the level adds its names, as nginx */
    zg_cv_t **list = zg_conf_alloc(cf->conf,
                                   (size_t)(slcf->nindex + cf->nargs - 1) * sizeof(zg_cv_t *));
    if (list == NULL) {
        return zg_conf_nomem(cf);
    }
    if (slcf->nindex > 0) {
        memcpy(list, slcf->index, (size_t)slcf->nindex * sizeof(zg_cv_t *));
    }
    slcf->index = list;
    for (int i = 1; i < cf->nargs; i++) {
        zg_str_t *v = &cf->args[i];
        if (v->len == 0) {
            return zg_conf_error(cf, "index \"\" in \"index\" directive is invalid");
        }
        if (v->data[0] == '/' && i != cf->nargs - 1) {
            return zg_conf_error(cf, "only the last index in \"index\" directive should be "
                                 "absolute");
        }
        if ((slcf->index[slcf->nindex++] = zg_conf_cv(cf, v->data, v->len)) == NULL) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

static int zg_static_try_files(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_static_loc_conf_t *slcf = conf;
    zg_str_t *last = &cf->args[cf->nargs - 1];

    (void)cmd;
    if (slcf->try_files != NULL) {
        return zg_conf_duplicate(cf);
    }
    slcf->try_files = zg_conf_alloc(cf->conf, (size_t)(cf->nargs - 1) * sizeof(zg_cv_t *));
    if (slcf->try_files == NULL) {
        return zg_conf_nomem(cf);
    }
    for (int i = 1; i < cf->nargs; i++) {
        if (cf->args[i].len == 0) {
            return zg_conf_invalid(cf, &cf->args[i]);
        }
        if ((slcf->try_files[i - 1] = zg_conf_cv(cf, cf->args[i].data, cf->args[i].len))
            == NULL) {
            return ZG_ERROR;
        }
    }
    slcf->ntry = cf->nargs - 1;
    if (last->data[0] == '=') {
        int code = zg_conf_atoi(last->data + 1, last->len - 1);
        if (code < 100 || code > 999) {
            return zg_conf_error(cf, "invalid code \"%s\"", last->data);
        }
        slcf->try_last = ZG_TRY_CODE;
        slcf->try_code = code;
    } else if (last->data[0] == '@') {
        slcf->try_last = ZG_TRY_NAMED;
    }
    return ZG_OK;
}

/* types { TYPE EXT...; } lines */
static int zg_static_type_line(zg_cf_t *cf, void *data)
{
    zg_static_loc_conf_t *slcf = data;
    zg_str_t *a = cf->args;

    if (cf->nargs < 2) {
        return zg_conf_error(cf, "invalid number of arguments in \"types\" block");
    }
    char *type = zg_conf_strdup(cf->conf, a[0].data, a[0].len);
    if (type == NULL) {
        return zg_conf_nomem(cf);
    }
    for (int i = 1; i < cf->nargs; i++) {
        zg_static_type_t *t = NULL;
        char *ext = zg_conf_strdup(cf->conf, a[i].data, a[i].len);
        if (ext == NULL) {
            return zg_conf_nomem(cf);
        }
        for (size_t k = 0; k < a[i].len; k++) {
            ext[k] = (char)tolower((unsigned char)ext[k]);
        }
        for (int k = 0; k < slcf->ntypes; k++) {
            if (slcf->types[k].ext.len == a[i].len
                && memcmp(slcf->types[k].ext.data, ext, a[i].len) == 0) {
                t = &slcf->types[k]; /* as nginx: the later type wins */
                break;
            }
        }
        if (t == NULL && (t = zg_conf_push(cf->conf, slcf->types, slcf->ntypes)) == NULL) {
            return zg_conf_nomem(cf);
        }
        t->ext.data = ext;
        t->ext.len = a[i].len;
        t->type.data = type;
        t->type.len = a[0].len;
    }
    return ZG_OK;
}

static int zg_static_types(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_static_loc_conf_t *slcf = conf;

    (void)cmd;
    if (slcf->types == NULL) {
        /* an empty block empties the list too */
        slcf->types = zg_conf_alloc(cf->conf, sizeof(zg_static_type_t));
        if (slcf->types == NULL) {
            return zg_conf_nomem(cf);
        }
    }
    return zg_conf_block_raw(cf, zg_static_type_line, slcf);
}

static int zg_static_ims(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_static_loc_conf_t *slcf = conf;
    zg_str_t *v = &cf->args[1];

    (void)cmd;
    if (slcf->ims != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    if (zg_conf_eq(v, "off")) {
        slcf->ims = 0;
    } else if (zg_conf_eq(v, "exact")) {
        slcf->ims = 1;
    } else if (zg_conf_eq(v, "before")) {
        slcf->ims = 2;
    } else {
        return zg_conf_invalid(cf, v);
    }
    return ZG_OK;
}

/* disable_symlinks off | on | if_not_owner [from=$document_root] */
static int zg_static_symlinks(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_static_loc_conf_t *slcf = conf;
    zg_str_t *v = &cf->args[1];

    (void)cmd;
    if (slcf->symlinks != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    if (cf->nargs == 3 && !zg_conf_eq(&cf->args[2], "from=$document_root")) {
        return zg_conf_error(cf, "\"%s\" is not implemented: zonegate checks the components "
                             "after the root, as \"from=$document_root\"", cf->args[2].data);
    }
    if (zg_conf_eq(v, "off")) {
        slcf->symlinks = ZG_SYMLINKS_FOLLOW;
    } else if (zg_conf_eq(v, "on")) {
        slcf->symlinks = ZG_SYMLINKS_OFF;
    } else if (zg_conf_eq(v, "if_not_owner")) {
        slcf->symlinks = ZG_SYMLINKS_NOT_OWNER;
    } else {
        return zg_conf_invalid(cf, v);
    }
    if (cf->nargs == 3 && slcf->symlinks == ZG_SYMLINKS_FOLLOW) {
        return zg_conf_error(cf, "\"from=\" cannot be used with \"off\"");
    }
    return ZG_OK;
}

/* gzip_static on | off | always */
static int zg_static_gzip_static(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_static_loc_conf_t *slcf = conf;
    zg_str_t *v = &cf->args[1];

    (void)cmd;
    if (slcf->gzip_static != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    if (zg_conf_eq(v, "off")) {
        slcf->gzip_static = ZG_GZIP_STATIC_OFF;
    } else if (zg_conf_eq(v, "on")) {
        slcf->gzip_static = ZG_GZIP_STATIC_ON;
    } else if (zg_conf_eq(v, "always")) {
        slcf->gzip_static = ZG_GZIP_STATIC_ALWAYS;
    } else {
        return zg_conf_error(cf, "invalid value \"%s\" in \"gzip_static\" directive, it "
                             "must be \"on\", \"off\" or \"always\"", v->data);
    }
    return ZG_OK;
}

/* open_file_cache off | max=N [inactive=TIME]: zonegate opens a file per request;
 * the value is checked and has no effect (documented) */
static int zg_static_ofc(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    (void)cmd;
    (void)conf;
    for (int i = 1; i < cf->nargs; i++) {
        zg_str_t *v = &cf->args[i];
        if (zg_conf_eq(v, "off") && cf->nargs == 2) {
            continue;
        }
        if (zg_conf_prefix(v, "max=") && zg_conf_atoi(v->data + 4, v->len - 4) > 0) {
            continue;
        }
        if (zg_conf_prefix(v, "inactive=")
            && zg_conf_parse_time(v->data + 9, v->len - 9) != ZG_UNSET_MSEC) {
            continue;
        }
        return zg_conf_bad_param(cf, v);
    }
    return ZG_OK;
}

/* open_file_cache_valid TIME: checked, no effect */
static int zg_static_noop_time(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    (void)cmd;
    (void)conf;
    if (zg_conf_parse_time(cf->args[1].data, cf->args[1].len) == ZG_UNSET_MSEC) {
        return zg_conf_invalid(cf, &cf->args[1]);
    }
    return ZG_OK;
}

#define ZG_STATIC_OFF(f) offsetof(zg_static_loc_conf_t, f)

/* Every level with no content handler serves files when it has a root or alias (its
 * own or inherited) or a try_files; a try_files beside another handler is refused
 * rather than ignored. */
static int zg_static_level(zg_cf_t *cf, void **confs, const char *file, int line)
{
    zg_http_core_loc_conf_t *clcf = zg_http_core_loc_conf(confs);
    zg_static_loc_conf_t *slcf = zg_static_loc_conf(confs);

    if (clcf->handler == NULL && (slcf->root != NULL || slcf->try_files != NULL)) {
        clcf->handler = zg_static_handler;
    }
    if (slcf->try_files != NULL && clcf->handler != zg_static_handler) {
        return zg_conf_error_at(cf, file, line, "\"try_files\" beside another content "
                                "handler (proxy_pass, ...) is not implemented");
    }
    return ZG_OK;
}

static int zg_static_locations(zg_cf_t *cf, zg_location_t *locs, int n)
{
    for (int i = 0; i < n; i++) {
        if (zg_static_level(cf, locs[i].loc_conf, locs[i].file, locs[i].line) != ZG_OK
            || zg_static_locations(cf, locs[i].locations, locs[i].nlocations) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

static int zg_static_var_document_root(zg_var_ctx_t *x, const void *data, zg_str_t *out);
static int zg_static_var_realpath_root(zg_var_ctx_t *x, const void *data, zg_str_t *out);
static int zg_static_var_request_filename(zg_var_ctx_t *x, const void *data, zg_str_t *out);

/* after the http module merged every level (it comes first in zg_modules.c) */
static int zg_static_init_main_conf(zg_cf_t *cf, void *conf)
{
    static const struct {
        const char *name;
        zg_var_get_pt get;
    } vars[] = {
        { "document_root", zg_static_var_document_root },
        { "realpath_root", zg_static_var_realpath_root },
        { "request_filename", zg_static_var_request_filename },
    };
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(cf->conf);
    zg_vars_t *vs = zg_conf_vars(cf->conf);

    (void)conf;
    if (vs == NULL) {
        return zg_conf_nomem(cf);
    }
    for (size_t i = 0; i < zg_nelems(vars); i++) {
        int rc = zg_vars_define(vs, vars[i].name, strlen(vars[i].name), vars[i].get, NULL,
                                0, NULL);
        if (rc == ZG_DECLINED) {
            return zg_conf_error(cf, "the duplicate \"%s\" variable", vars[i].name);
        }
        if (rc != ZG_OK) {
            return zg_conf_nomem(cf);
        }
    }
    for (int i = 0; i < cmcf->nservers; i++) {
        zg_server_conf_t *srv = &cmcf->servers[i];
        if (zg_static_level(cf, srv->loc_conf, srv->file, srv->line) != ZG_OK
            || zg_static_locations(cf, srv->locations, srv->nlocations) != ZG_OK
            || zg_static_locations(cf, srv->named, srv->nnamed) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

/* ---- types ---- */

const zg_str_t *zg_static_type(const zg_static_loc_conf_t *slcf, const char *ext, size_t len)
{
    char low[32];
    zg_static_type_t key;
    const zg_static_type_t *t;

    if (len == 0 || len > sizeof(low)) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        low[i] = (char)tolower((unsigned char)ext[i]);
    }
    key.ext.data = low;
    key.ext.len = len;
    t = bsearch(&key, slcf->types, (size_t)slcf->ntypes, sizeof(*t), zg_static_type_cmp);
    return t != NULL ? &t->type : NULL;
}

/* the Content-Type of a URI: its extension's type, else default_type */
static zg_str_t zg_static_content_type(zg_request_t *r, const zg_str_t *uri)
{
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);
    const zg_str_t *t = NULL;

    for (size_t i = uri->len; i > 0; i--) {
        char ch = uri->data[i - 1];
        if (ch == '.') {
            t = zg_static_type(slcf, uri->data + i, uri->len - i);
            break;
        }
        if (ch == '/') {
            break;
        }
    }
    return t != NULL ? *t : zg_rewrite_loc_conf(r->loc_conf)->default_type;
}

/* ---- ranges ---- */

int zg_static_range_parse(const char *p, size_t len, int64_t size, int max,
                          zg_static_range_t *out, int cap, int *nranges)
{
    const char *e = p + len;
    const int64_t cutoff = INT64_MAX / 10, cutlim = INT64_MAX % 10;
    int64_t start, end, total = 0;
    int n = 0;

    *nranges = 0;
    if (len < 7 || strncasecmp(p, "bytes=", 6) != 0) {
        return ZG_DECLINED;
    }
    p += 6;
    for (;;) {
        int suffix = 0;
        start = 0;
        end = 0;
        while (p < e && *p == ' ') {
            p++;
        }
        if (p < e && *p != '-') {
            if (*p < '0' || *p > '9') {
                return 416;
            }
            while (p < e && *p >= '0' && *p <= '9') {
                if (start >= cutoff && (start > cutoff || *p - '0' > cutlim)) {
                    return 416;
                }
                start = start * 10 + (*p++ - '0');
            }
            while (p < e && *p == ' ') {
                p++;
            }
            if (p >= e || *p++ != '-') {
                return 416;
            }
            while (p < e && *p == ' ') {
                p++;
            }
            if (p == e || *p == ',') {
                end = size;
                goto found;
            }
        } else {
            if (p >= e) {
                return 416;
            }
            suffix = 1;
            p++;
        }
        if (p >= e || *p < '0' || *p > '9') {
            return 416;
        }
        while (p < e && *p >= '0' && *p <= '9') {
            if (end >= cutoff && (end > cutoff || *p - '0' > cutlim)) {
                return 416;
            }
            end = end * 10 + (*p++ - '0');
        }
        while (p < e && *p == ' ') {
            p++;
        }
        if (p != e && *p != ',') {
            return 416;
        }
        if (suffix) {
            start = end < size ? size - end : 0;
            end = size - 1;
        }
        if (end >= size) {
            end = size;
        } else {
            end++;
        }
    found:
        if (start < end) {
            if (out != NULL && n < cap) {
                out[n].start = start;
                out[n].end = end;
            }
            if (total > INT64_MAX - (end - start)) {
                return 416;
            }
            total += end - start;
            if (n++ == max) {
                return ZG_DECLINED; /* more than max_ranges */
            }
        } else if (start == 0) {
            return ZG_DECLINED;
        }
        if (p == e || *p++ != ',') {
            break;
        }
    }
    if (n == 0) {
        return 416;
    }
    *nranges = n;
    if (n == 1) {
        return ZG_OK;
    }
    if (total > size) {
        return ZG_DECLINED; /* more than the body: the whole body instead */
    }
    /* the parts' heads count too (nginx 1.29.5): no answer many times the file */
    if (max == INT32_MAX && total + (int64_t)n * 256 > size + 4096) {
        return ZG_DECLINED;
    }
    return ZG_OK;
}

/* ---- paths ---- */

static const zg_str_t *zg_static_header(zg_request_t *r, const char *name, size_t len)
{
    const zg_http_req_t *h = r->h;

    for (size_t i = 0; i < h->nhdrs; i++) {
        if (h->names[i].len == len && zg_http_name_eq(&h->names[i], name, len)) {
            return &h->values[i];
        }
    }
    return NULL;
}

/* root + uri (alias: + what follows the location's prefix) into buf; the length of
 * the root part in *root; 0 if it does not fit or is not a path */
static size_t zg_static_map(zg_request_t *r, const zg_str_t *uri, char *buf, size_t cap,
                            size_t *root)
{
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);
    size_t n;

    if (slcf->root == NULL) {
        /* try_files without root: nginx's default root, "html" under the prefix */
        const char *pfx = r->c->w->conf->prefix;
        n = (size_t)snprintf(buf, cap, "%s/html", pfx != NULL ? pfx : ".");
        if (n >= cap) {
            return 0;
        }
    } else {
        n = zg_cv_eval(slcf->root, &r->ctx, 0, buf, cap);
        if (n >= cap) {
            return 0;
        }
    }
    *root = n;
    const char *u = uri->data;
    size_t ulen = uri->len;
    if (slcf->alias) {
        if (slcf->alias_regex) {
            ulen = 0;
        } else {
            size_t skip = zg_min(slcf->alias_len, ulen);
            u += skip;
            ulen -= skip;
        }
    }
    if (n + ulen + 1 > cap) {
        return 0;
    }
    memcpy(buf + n, u, ulen);
    n += ulen;
    buf[n] = '\0';
    if (memchr(buf, '\0', n) != NULL) {
        return 0;
    }
    /* a ".." segment after the root (from a variable): never above the root */
    for (size_t i = *root; i + 2 < n + 1; i++) {
        if ((i == *root || buf[i - 1] == '/') && buf[i] == '.' && buf[i + 1] == '.'
            && (i + 2 == n || buf[i + 2] == '/')) {
            return 0;
        }
    }
    return n;
}

/* Opens path (flags O_RDONLY plus these) under the symlink policy: the components
 * after the first `root` bytes one by one, without following links.  -1 with errno
 * on failure (ELOOP: a link the policy refuses). */
static int zg_static_open(zg_request_t *r, const char *path, size_t root, int flags)
{
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);
    char dir[PATH_MAX];
    int fd, next;

    flags |= O_RDONLY | O_CLOEXEC | O_NONBLOCK;
    if (slcf->symlinks == ZG_SYMLINKS_FOLLOW) {
        return open(path, flags);
    }
    if (root == 0 || root >= sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, path, root);
    dir[root] = '\0';
    fd = open(dir, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    if (fd == -1) {
        return -1;
    }
    const char *p = path + root;
    for (;;) {
        while (*p == '/') {
            p++;
        }
        if (*p == '\0') {
            /* the root itself (a directory) */
            return fd;
        }
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        char name[NAME_MAX + 1];
        if (len > NAME_MAX) {
            close(fd);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        int last = 1;
        for (const char *s = p + len; *s != '\0'; s++) {
            if (*s != '/') {
                last = 0;
                break;
            }
        }
        int f = last ? flags : (O_RDONLY | O_CLOEXEC | O_DIRECTORY);
        next = openat(fd, name, f | O_NOFOLLOW);
        if (next == -1 && (errno == ELOOP || errno == ENOTDIR) &&
            slcf->symlinks == ZG_SYMLINKS_NOT_OWNER) {
            /* a link: followed if it and its target have the same owner */
            struct stat ls, ts;
            int saved = errno;
            if (fstatat(fd, name, &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ls.st_mode)) {
                next = openat(fd, name, f);
                if (next != -1 && (fstat(next, &ts) != 0 || ts.st_uid != ls.st_uid)) {
                    close(next);
                    next = -1;
                    saved = ELOOP;
                } else if (next == -1) {
                    saved = errno;
                }
            }
            errno = saved;
        } else if (next == -1 && errno == ENOTDIR && !last) {
            /* O_DIRECTORY on a link to a directory says ENOTDIR: is it a link? */
            struct stat ls;
            if (fstatat(fd, name, &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ls.st_mode)) {
                errno = ELOOP;
            } else {
                errno = ENOTDIR;
            }
        }
        int saved = errno;
        close(fd);
        errno = saved;
        if (next == -1) {
            return -1;
        }
        fd = next;
        if (last) {
            return fd;
        }
        p += len;
    }
}

/* the status and log line of a failed open, as nginx's static handler */
static int zg_static_open_error(zg_request_t *r, const char *path, int err)
{
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);

    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        if (slcf->log_not_found) {
            zg_log(ZG_LOG_ERR, "open() \"%s\" failed (%d: %s), client: %s, request: \"%.*s\"",
                   path, err, strerror(err), zg_conn_addr_text(r->c),
                   (int)zg_min(r->ctx.request_line.len, 512), r->ctx.request_line.data);
        }
        return 404;
    case EACCES:
    case EMLINK:
    case ELOOP:
        zg_log(ZG_LOG_ERR, "open() \"%s\" failed (%d: %s), client: %s", path, err,
               strerror(err), zg_conn_addr_text(r->c));
        return 403;
    default:
        zg_log(ZG_LOG_CRIT, "open() \"%s\" failed (%d: %s), client: %s", path, err,
               strerror(err), zg_conn_addr_text(r->c));
        return 500;
    }
}

/* ---- conditions: nginx's not_modified filter ---- */

int zg_static_etag_match(const zg_str_t *list, const char *etag, size_t elen, int weak)
{
    const char *s = list->data, *e = list->data + list->len;

    if (list->len == 1 && s[0] == '*') {
        return 1;
    }
    if (elen == 0) {
        return 0;
    }
    while (s < e) {
        if (weak && e - s > 2 && s[0] == 'W' && s[1] == '/') {
            s += 2;
        }
        if (elen > (size_t)(e - s)) {
            return 0;
        }
        if (memcmp(s, etag, elen) == 0) {
            s += elen;
            while (s < e && (*s == ' ' || *s == '\t')) {
                s++;
            }
            if (s == e || *s == ',') {
                return 1;
            }
        }
        while (s < e && *s != ',') {
            s++;
        }
        while (s < e && (*s == ' ' || *s == '\t' || *s == ',')) {
            s++;
        }
    }
    return 0;
}

/* 200, 304 or 412 for the request's conditions */
static int zg_static_conditions(zg_request_t *r, time_t mtime, const char *etag, size_t elen)
{
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);
    const zg_str_t *ius = zg_static_header(r, "If-Unmodified-Since", 19);
    const zg_str_t *im = zg_static_header(r, "If-Match", 8);
    const zg_str_t *ims = zg_static_header(r, "If-Modified-Since", 17);
    const zg_str_t *inm = zg_static_header(r, "If-None-Match", 13);

    if (ius != NULL) {
        time_t t = zg_http_parse_time(ius->data, ius->len);
        if (t == (time_t)-1 || mtime > t) {
            return 412;
        }
    }
    if (im != NULL && !zg_static_etag_match(im, etag, elen, 0)) {
        return 412;
    }
    if (ims == NULL && inm == NULL) {
        return 200;
    }
    if (ims != NULL) {
        if (slcf->ims == 0) {
            return 200;
        }
        time_t t = zg_http_parse_time(ims->data, ims->len);
        if (t != mtime && (slcf->ims == 1 || t < mtime)) {
            return 200;
        }
    }
    if (inm != NULL && !zg_static_etag_match(inm, etag, elen, 1)) {
        return 200;
    }
    return 304;
}

/* ---- the body ---- */

static void zg_static_ctx_close(zg_static_ctx_t *ctx)
{
    if (ctx->open) {
        ctx->open = 0;
        close(ctx->fd);
    }
}

static void zg_static_ignore_body(zg_request_t *r, const char *p, size_t n)
{
    (void)r;
    (void)p;
    (void)n;
}

static void zg_static_nothing(zg_request_t *r)
{
    (void)r;
}

static void zg_static_wait(zg_request_t *r);

/* the request's end was read (which stops the connection's timer): the body being
 * sent keeps its send_timeout */
static void zg_static_body_done(zg_request_t *r)
{
    if (zg_outq_pending(&r->c->out) > 0) {
        zg_static_wait(r);
    }
}

static void zg_static_abort(zg_request_t *r)
{
    zg_static_ctx_close(zg_request_ctx(r, zg_static_module));
}

static void zg_static_pump(zg_request_t *r);

static const zg_content_ops_t zg_static_ops = {
    zg_static_ignore_body, zg_static_body_done, zg_static_abort, zg_static_pump
};

/* the response is queued: what the request holds is given back, and then it ends */
static void zg_static_done(zg_request_t *r)
{
    r->content = NULL;
    zg_request_release(r);
    zg_request_response_done(r, r->keepalive);
}

/* the client has not taken all of it: wait, send_timeout at most */
static void zg_static_wait(zg_request_t *r)
{
    zg_conn_timer(r->c, zg_http_core_loc_conf(r->loc_conf)->send_timeout);
}

/* the file segment went out (sendfile): the request ends once the client took it all,
 * so that the connection is not idle (keepalive_timeout) while it is being sent */
static void zg_static_sent(zg_request_t *r)
{
    if (zg_outq_pending(&r->c->out) > 0) {
        zg_static_wait(r);
        return;
    }
    zg_static_done(r);
}

static const zg_content_ops_t zg_static_file_ops = {
    zg_static_ignore_body, zg_static_body_done, zg_static_nothing, zg_static_sent
};

static int zg_static_next_part(zg_request_t *r, zg_static_ctx_t *ctx, int direct);

/* several ranges with sendfile: the next part's head, then its bytes as a file
 * segment (a duplicate of the file's descriptor: the queue closes what it sends), or
 * the closing boundary; 1 when the request went on to its end (or failed) */
static int zg_static_part_out(zg_request_t *r)
{
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);
    zg_static_ctx_t *ctx = zg_request_ctx(r, zg_static_module);
    zg_outq_t *q = &r->c->out;

    if (zg_static_next_part(r, ctx, 1)) {
        /* the closing boundary is queued: the end, once it is written */
        zg_static_ctx_close(ctx);
        r->content = &zg_static_file_ops;
        if (zg_outq_flush(q) != ZG_OK) {
            r->keepalive = 0;
        }
        zg_static_sent(r);
        return 1;
    }
    int fd = fcntl(ctx->fd, F_DUPFD_CLOEXEC, 0);
    r->ctx.body_bytes_sent += (uint64_t)ctx->left;
    r->ctx.bytes_sent += (uint64_t)ctx->left;
    if (fd == -1 || zg_outq_sendfile(q, fd, ctx->off, ctx->left, slcf->tcp_nopush) != ZG_OK) {
        if (fd == -1) {
            zg_log(ZG_LOG_CRIT, "fcntl(F_DUPFD_CLOEXEC) failed (%s)", strerror(errno));
        }
        zg_static_ctx_close(ctx);
        r->keepalive = 0;
        r->c->close_after = 1;
        zg_static_done(r);
        return 1;
    }
    ctx->left = 0;
    return 0;
}

/* the client took what was queued: the next parts */
static void zg_static_parts_sent(zg_request_t *r)
{
    while (zg_outq_pending(&r->c->out) == 0) {
        if (zg_static_part_out(r)) {
            return;
        }
    }
    zg_static_wait(r);
}

static const zg_content_ops_t zg_static_parts_ops = {
    zg_static_ignore_body, zg_static_body_done, zg_static_abort, zg_static_parts_sent
};

/* bytes made here (a part's head, the last boundary) into the body: straight into
 * the output queue, or into the body filters */
static void zg_static_emit(zg_request_t *r, int direct, const char *p, size_t n, int last)
{
    if (direct) {
        zg_outq_append(&r->c->out, p, n);
        r->ctx.body_bytes_sent += (uint64_t)n;
        r->ctx.bytes_sent += (uint64_t)n;
    } else {
        zg_response_body(r, p, n, last);
    }
}

/* multipart/byteranges between two parts: the next part's head and its range, or,
 * after the last, the closing boundary; 1 when the body is complete */
static int zg_static_next_part(zg_request_t *r, zg_static_ctx_t *ctx, int direct)
{
    zg_static_mp_t *mp = ctx->mp;
    char cr[80];

    if (mp->cur == mp->n) {
        int n = snprintf(cr, sizeof(cr), "\r\n--%s--\r\n", mp->boundary);
        zg_static_emit(r, direct, cr, (size_t)n, 1);
        return 1;
    }
    const zg_static_range_t *x = &mp->r[mp->cur++];
    int n = snprintf(cr, sizeof(cr), "%lld-%lld/%lld\r\n\r\n", (long long)x->start,
                     (long long)x->end - 1, (long long)mp->size);
    zg_static_emit(r, direct, mp->head, mp->hlen, 0);
    zg_static_emit(r, direct, cr, (size_t)n, 0);
    ctx->off = x->start;
    ctx->left = x->end - x->start;
    return 0;
}

/* reads the file into the body filters, a piece each time the client took the last */
static void zg_static_pump(zg_request_t *r)
{
    static char buf[ZG_STATIC_PIECE];
    zg_static_ctx_t *ctx = zg_request_ctx(r, zg_static_module);
    zg_outq_t *q = &r->c->out;

    if (zg_outq_pending(q) > 0) {
        zg_static_wait(r);
        return;
    }
    /* no body filter: read straight into the output queue (one copy less) */
    int direct = r->body_filters == 0 && !r->resp_chunked;
    while (zg_outq_pending(q) == 0) {
        int complete = 0;
        if (ctx->left == 0) {
            /* several ranges: between two parts */
            complete = zg_static_next_part(r, ctx, direct);
        } else {
            size_t want = (size_t)zg_min(ctx->left, (int64_t)sizeof(buf));
            char *to = buf;
            if (direct) {
                want = zg_min(want, ZG_STATIC_DIRECT);
                if (zg_buf_reserve(&q->b, want) != ZG_OK) {
                    direct = 0;
                    q->b.failed = 0;
                } else {
                    to = q->b.data + q->b.len;
                }
            }
            ssize_t n = pread(ctx->fd, to, want, (off_t)ctx->off);
            if (n <= 0) {
                if (n == -1 && errno == EINTR) {
                    continue;
                }
                zg_log(ZG_LOG_CRIT, "pread() of a static file failed (%s)",
                       n == 0 ? "it was truncated" : strerror(errno));
                zg_static_ctx_close(ctx);
                r->content = NULL;
                zg_request_response_abort(r);
                return;
            }
            ctx->off += n;
            ctx->left -= n;
            complete = ctx->left == 0 && ctx->mp == NULL;
            if (to != buf) {
                q->b.len += (size_t)n;
                r->ctx.body_bytes_sent += (uint64_t)n;
                r->ctx.bytes_sent += (uint64_t)n;
            } else {
                zg_response_body(r, buf, (size_t)n, complete);
            }
        }
        if (zg_outq_flush(q) != ZG_OK) {
            zg_static_ctx_close(ctx);
            r->content = NULL;
            zg_request_response_abort(r);
            return;
        }
        if (complete) {
            zg_static_ctx_close(ctx);
            zg_static_done(r);
            return;
        }
    }
    zg_static_wait(r);
}

/* v lives until zg_response_head returns (a literal, or this function's stack:
 * the head is written at once, and the filters copy what they keep) */
static int zg_static_add(zg_request_t *r, zg_resp_t *h, const char *name, const char *v,
                         size_t len)
{
    return zg_resp_add(r, h, name, strlen(name), v, len);
}

/* a multipart/byteranges boundary: 20 digits, as nginx's (a per-process number
 * that goes up by one per answer, from a random start) */
static void zg_static_boundary(char *out, size_t cap)
{
    static uint64_t next;

    if (next == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        next = ((uint64_t)ts.tv_nsec << 16 ^ (uint64_t)ts.tv_sec << 24 ^ (uint64_t)getpid())
               % 10000000000ULL + 1;
    }
    snprintf(out, cap, "%020llu", (unsigned long long)next++);
}

/* several ranges: the answer becomes multipart/byteranges, each part with the
 * type of the whole (charset included) and its Content-Range, as nginx */
static int zg_static_multipart(zg_request_t *r, zg_resp_t *h, zg_static_ctx_t *ctx,
                               const zg_str_t *range, int max, int n)
{
    zg_static_mp_t *mp = zg_var_alloc(&r->ctx, sizeof(*mp));
    int got;

    if (mp == NULL || (mp->r = zg_var_alloc(&r->ctx, (size_t)n * sizeof(*mp->r))) == NULL) {
        return ZG_ERROR;
    }
    zg_static_range_parse(range->data, range->len, h->content_length, max, mp->r, n, &got);
    mp->n = got;
    mp->cur = 0;
    mp->size = h->content_length;
    zg_static_boundary(mp->boundary, sizeof(mp->boundary));
    zg_resp_header_t *ct = zg_resp_get(h, "Content-Type", 12);
    size_t cap = 96 + (ct != NULL ? ct->value.len : 0);
    char *head = zg_var_alloc(&r->ctx, cap);
    char *type = zg_var_alloc(&r->ctx, 64);
    if (head == NULL || type == NULL) {
        return ZG_ERROR;
    }
    if (ct != NULL && ct->value.len > 0) {
        mp->hlen = (size_t)snprintf(head, cap, "\r\n--%s\r\nContent-Type: %.*s\r\n"
                                    "Content-Range: bytes ", mp->boundary,
                                    (int)ct->value.len, ct->value.data);
    } else {
        mp->hlen = (size_t)snprintf(head, cap, "\r\n--%s\r\nContent-Range: bytes ",
                                    mp->boundary);
    }
    mp->head = head;
    int tlen = snprintf(type, 64, "multipart/byteranges; boundary=%s", mp->boundary);
    if (zg_resp_set(r, h, "Content-Type", 12, type, (size_t)tlen) != ZG_OK) {
        return ZG_ERROR;
    }
    /* the length: each part's head, range line and bytes, and the last boundary */
    int64_t len = 2 + 2 + 20 + 2 + 2;
    for (int i = 0; i < got; i++) {
        char cr[80];
        len += (int64_t)mp->hlen
               + snprintf(cr, sizeof(cr), "%lld-%lld/%lld\r\n\r\n", (long long)mp->r[i].start,
                          (long long)mp->r[i].end - 1, (long long)mp->size)
               + mp->r[i].end - mp->r[i].start;
    }
    h->content_length = len;
    ctx->mp = mp;
    ctx->left = 0;
    return ZG_OK;
}

/* nginx's range filter, after the other header filters (a compressed answer has no
 * length by then, and gets no range): 206 with one range or multipart/byteranges
 * with several; 416 (range_416, ZG_ERROR: the handler answers it); else the whole
 * body and Accept-Ranges */
static int zg_static_range_filter(zg_request_t *r, zg_resp_t *h)
{
    zg_static_ctx_t *ctx = zg_request_ctx(r, zg_static_module);

    /* gzip_static on found FILE.gz: Vary with gzip_vary, whatever answers (an error
     * page too, as nginx's r->gzip_vary) */
    if (ctx->gzip_vary && zg_gzip_vary(r, h) != ZG_OK) {
        return ZG_ERROR;
    }
    if (!ctx->ranges_ok) {
        return ZG_OK;
    }
    ctx->ranges_ok = 0;
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);
    if (h->status != 200 || h->content_length < 0 || r->h->http_major < 1
        || slcf->max_ranges == 0) {
        return ZG_OK;
    }
    const zg_str_t *range = zg_static_header(r, "Range", 5);
    if (range == NULL || range->len < 7 || strncasecmp(range->data, "bytes=", 6) != 0) {
        goto whole;
    }
    const zg_str_t *ifr = zg_static_header(r, "If-Range", 8);
    if (ifr != NULL) {
        if (ifr->len >= 2 && ifr->data[ifr->len - 1] == '"') {
            zg_resp_header_t *etag = zg_resp_get(h, "ETag", 4);
            if (etag == NULL || etag->value.len != ifr->len
                || memcmp(etag->value.data, ifr->data, ifr->len) != 0) {
                goto whole;
            }
        } else if (zg_resp_get(h, "Last-Modified", 13) == NULL
                   || zg_http_parse_time(ifr->data, ifr->len) != ctx->mtime) {
            goto whole;
        }
    }
    zg_static_range_t one;
    int n;
    int rc = zg_static_range_parse(range->data, range->len, h->content_length,
                                   slcf->max_ranges, &one, 1, &n);
    if (rc == 416) {
        ctx->range_416 = 1;
        return ZG_ERROR;
    }
    if (rc != ZG_OK) {
        goto whole;
    }
    h->status = 206;
    h->reason.len = 0;
    if (n > 1) {
        return zg_static_multipart(r, h, ctx, range, slcf->max_ranges, n);
    }
    char *cr = zg_var_alloc(&r->ctx, 80);
    if (cr == NULL) {
        return ZG_ERROR;
    }
    int len = snprintf(cr, 80, "bytes %lld-%lld/%lld", (long long)one.start,
                       (long long)one.end - 1, (long long)h->content_length);
    if (zg_resp_add(r, h, "Content-Range", 13, cr, (size_t)len) != ZG_OK) {
        return ZG_ERROR;
    }
    h->content_length = one.end - one.start;
    ctx->off = one.start;
    ctx->left = one.end - one.start;
    return ZG_OK;
whole:
    return zg_resp_add(r, h, "Accept-Ranges", 13, "bytes", 5);
}

/* the HTTP date of t into buf (>= 30 bytes): the last one made is kept, most answers
 * are of files of the same age */
static void zg_static_date(char *buf, time_t t)
{
    static time_t last = (time_t)-1;
    static char text[32];

    if (t != last || t == (time_t)-1) {
        zg_http_time(text, t);
        last = t;
    }
    memcpy(buf, text, 30);
}

/* n in lowercase hex at p; returns the end */
static char *zg_static_hex(char *p, uint64_t n)
{
    char tmp[16];
    int k = 0;

    do {
        tmp[k++] = "0123456789abcdef"[n & 15];
        n >>= 4;
    } while (n != 0);
    while (k > 0) {
        *p++ = tmp[--k];
    }
    return p;
}

/* nginx's ETag, "\"%xT-%xO\"" of mtime and size, into buf (>= 36 bytes) by hand: it is
 * made per request */
static size_t zg_static_etag(char *buf, uint64_t mtime, uint64_t size)
{
    char *p = buf;

    *p++ = '"';
    p = zg_static_hex(p, mtime);
    *p++ = '-';
    p = zg_static_hex(p, size);
    *p++ = '"';
    *p = '\0';
    return (size_t)(p - buf);
}

/* answers with the open regular file fd of st for uri */
static void zg_static_send(zg_request_t *r, int fd, const struct stat *st, const zg_str_t *uri)
{
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);
    zg_static_ctx_t *ctx = zg_request_ctx(r, zg_static_module);
    char etag[64], lm[32], extra[96];
    zg_resp_header_t hv[8];
    size_t elen = 0;
    int64_t size = (int64_t)st->st_size;
    zg_resp_t h;
    int status;

    if (slcf->etag) {
        elen = zg_static_etag(etag, (uint64_t)st->st_mtime, (uint64_t)size);
    }
    /* a page error_page redirected to keeps the error's status (nginx's err_status):
     * no conditions, no ranges — unless that status is 200 (`=200`), which nginx's
     * filters see as any 200 */
    int err = r->err_status != 0 && r->err_status != 200;
    status = err ? 200 : zg_static_conditions(r, st->st_mtime, etag, elen);
    if (status == 412) {
        close(fd);
        zg_request_respond(r, 412, NULL, NULL, NULL, 0);
        return;
    }
    if (err) {
        status = r->err_status;
    }
    memset(&h, 0, sizeof(h));
    h.h = hv; /* no request memory for the usual head: a filter that adds more grows it */
    h.cap = (int)zg_nelems(hv);
    h.status = status;
    h.keepalive = r->keepalive;
    h.content_length = status == 304 ? -1 : size;
    h.no_body = status == 304 || r->h->head;
    zg_static_date(lm, st->st_mtime);
    zg_str_t token = zg_http_server_token(zg_http_core_loc_conf(r->loc_conf));
    if (zg_static_add(r, &h, "Server", token.data, token.len) != ZG_OK
        || zg_static_add(r, &h, "Date", zg_http_date(), 29) != ZG_OK) {
        goto failed;
    }
    if (status != 304) {
        zg_str_t ct = zg_static_content_type(r, uri);
        if (zg_resp_add(r, &h, "Content-Type", 12, ct.data, ct.len) != ZG_OK) {
            goto failed;
        }
    }
    /* as nginx's header filter: Last-Modified only on 200, 206 and 304 */
    if (((status == 200 || status == 304)
         && zg_static_add(r, &h, "Last-Modified", lm, 29) != ZG_OK)
        || (elen > 0 && zg_static_add(r, &h, "ETag", etag, elen) != ZG_OK)) {
        goto failed;
    }
    /* a 304 has none, as nginx's not_modified filter */
    if (ctx->gzip && status != 304
        && zg_static_add(r, &h, "Content-Encoding", "gzip", 4) != ZG_OK) {
        goto failed;
    }
    ctx->mtime = st->st_mtime;
    ctx->off = 0;
    ctx->left = size;
    ctx->ranges_ok = status == 200;
    ctx->range_416 = 0;
    int rc = zg_response_head(r, &h);
    ctx->ranges_ok = 0;
    if (rc != ZG_OK) {
        if (!ctx->range_416) {
            goto failed;
        }
        /* nothing satisfiable: nginx's 416 (what the filters turned on is undone) */
        close(fd);
        zg_response_release(r);
        r->body_filters = 0;
        snprintf(extra, sizeof(extra), "Content-Range: bytes */%lld\r\n", (long long)size);
        zg_request_respond(r, 416, extra, NULL, NULL, 0);
        return;
    }
    r->keepalive = h.keepalive;
    zg_outq_t *q = &r->c->out;
    if (h.no_body || (ctx->left == 0 && ctx->mp == NULL)) {
        close(fd);
        if (!h.no_body) {
            zg_response_body(r, NULL, 0, 1);
        }
        if (zg_outq_flush(q) != ZG_OK) {
            r->keepalive = 0;
        }
        zg_static_done(r);
        return;
    }
    if (slcf->sendfile && q->tls == NULL && r->body_filters == 0 && !r->resp_chunked
        && ctx->mp != NULL) {
        ctx->fd = fd;
        ctx->open = 1;
        r->content = &zg_static_parts_ops;
        if (!zg_static_part_out(r)) { /* the first part behind the head, at once */
            zg_static_parts_sent(r);
        }
        return;
    }
    if (slcf->sendfile && q->tls == NULL && r->body_filters == 0 && !r->resp_chunked
        && ctx->mp == NULL) {
        r->ctx.body_bytes_sent += (uint64_t)ctx->left;
        r->ctx.bytes_sent += (uint64_t)ctx->left;
        if (zg_outq_sendfile(q, fd, ctx->off, ctx->left, slcf->tcp_nopush) != ZG_OK) {
            r->keepalive = 0;
            r->c->close_after = 1;
            zg_static_done(r);
            return;
        }
        r->content = &zg_static_file_ops;
        zg_static_sent(r);
        return;
    }
    ctx->fd = fd;
    ctx->open = 1;
    r->content = &zg_static_ops;
    if (zg_outq_flush(q) != ZG_OK) {
        zg_static_ctx_close(ctx);
        r->content = NULL;
        zg_request_response_abort(r);
        return;
    }
    zg_static_pump(r);
    return;
failed:
    close(fd);
    if (!r->resp_started) {
        zg_request_respond(r, 500, NULL, NULL, NULL, 0);
    } else {
        zg_request_response_abort(r);
    }
}

/* ---- variables ---- */

/* the request whose variables x are: named variables are read by requests only
 * (a stream session's context has no named variables), and r->ctx is x */
static zg_request_t *zg_static_var_request(zg_var_ctx_t *x)
{
    return (zg_request_t *)(void *)((char *)x - offsetof(zg_request_t, ctx));
}

/* the root (or alias) of the request's level into buf, NUL-terminated; 0 if it does
 * not fit */
static size_t zg_static_docroot(zg_request_t *r, char *buf, size_t cap)
{
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);
    size_t n;

    if (slcf->root == NULL) {
        const char *pfx = r->c->w->conf->prefix;
        n = (size_t)snprintf(buf, cap, "%s/html", pfx != NULL ? pfx : ".");
    } else {
        n = zg_cv_eval(slcf->root, &r->ctx, 0, buf, cap);
        if (n < cap) {
            buf[n] = '\0';
        }
    }
    return n < cap && memchr(buf, '\0', n) == NULL ? n : 0;
}

static int zg_static_var_copy(zg_var_ctx_t *x, const char *p, size_t n, zg_str_t *out)
{
    char *v = zg_var_alloc(x, n + 1);

    if (v == NULL) {
        return ZG_DECLINED;
    }
    memcpy(v, p, n);
    out->data = v;
    out->len = n;
    return ZG_OK;
}

/* $document_root: the root or alias of the request's location, variables evaluated */
static int zg_static_var_document_root(zg_var_ctx_t *x, const void *data, zg_str_t *out)
{
    char buf[PATH_MAX];
    size_t n = zg_static_docroot(zg_static_var_request(x), buf, sizeof(buf));

    (void)data;
    return n > 0 ? zg_static_var_copy(x, buf, n, out) : ZG_DECLINED;
}

/* $realpath_root: $document_root with every symlink resolved (realpath(3)) */
static int zg_static_var_realpath_root(zg_var_ctx_t *x, const void *data, zg_str_t *out)
{
    char buf[PATH_MAX], real[PATH_MAX];

    (void)data;
    if (zg_static_docroot(zg_static_var_request(x), buf, sizeof(buf)) == 0) {
        return ZG_DECLINED;
    }
    if (realpath(buf, real) == NULL) {
        zg_log(ZG_LOG_ERR, "realpath() \"%s\" failed (%d: %s)", buf, errno, strerror(errno));
        return ZG_DECLINED;
    }
    return zg_static_var_copy(x, real, strlen(real), out);
}

/* $request_filename: the file $uri maps to under root or alias */
static int zg_static_var_request_filename(zg_var_ctx_t *x, const void *data, zg_str_t *out)
{
    zg_request_t *r = zg_static_var_request(x);
    char buf[PATH_MAX];
    size_t root;

    (void)data;
    size_t n = zg_static_map(r, &r->ctx.uri, buf, sizeof(buf), &root);
    return n > 0 ? zg_static_var_copy(x, buf, n, out) : ZG_DECLINED;
}

/* ---- the handlers ---- */

/* a URI (uri + "/" for a directory) made in request memory */
static int zg_static_dir_redirect(zg_request_t *r, const zg_str_t *uri)
{
    char *p = zg_var_alloc(&r->ctx, uri->len + 2);

    if (p == NULL) {
        return 500;
    }
    memcpy(p, uri->data, uri->len);
    p[uri->len] = '/';
    zg_request_redirect_to(r, 301, p, uri->len + 1, 0);
    return ZG_DONE;
}

/* gzip_static, as nginx's handler: FILE.gz (n: the length of FILE in path) answers
 * with Content-Encoding: gzip for a client that takes gzip, or any client with
 * `always`; ZG_DECLINED to serve FILE itself */
static int zg_static_gz(zg_request_t *r, const zg_str_t *uri, char *path, size_t n,
                        size_t root)
{
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);
    zg_gzip_loc_conf_t *g = zg_gzip_loc_conf(r->loc_conf);
    zg_static_ctx_t *ctx = zg_request_ctx(r, zg_static_module);
    struct stat st;
    int ok = 1;

    if (slcf->gzip_static == ZG_GZIP_STATIC_ON) {
        /* the client's side only: the answer's headers are not made yet */
        zg_resp_t none;
        memset(&none, 0, sizeof(none));
        ok = zg_gzip_client_ok(r, g, &none);
        if (!ok && !g->vary) {
            return ZG_DECLINED;
        }
    }
    if (n + 4 > PATH_MAX) {
        return ZG_DECLINED;
    }
    memcpy(path + n, ".gz", 4);
    int fd = zg_static_open(r, path, root, 0);
    if (fd == -1) {
        int err = errno;
        if (err != ENOENT && err != ENOTDIR && err != ENAMETOOLONG) {
            zg_log(err == EACCES || err == EMLINK || err == ELOOP ? ZG_LOG_ERR : ZG_LOG_CRIT,
                   "open() \"%s\" failed (%d: %s)", path, err, strerror(err));
        }
        path[n] = '\0';
        return ZG_DECLINED;
    }
    if (slcf->gzip_static == ZG_GZIP_STATIC_ON) {
        ctx->gzip_vary = 1; /* whichever file answers */
    }
    if (!ok || fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        close(fd);
        path[n] = '\0';
        return ZG_DECLINED;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        zg_log(ZG_LOG_CRIT, "\"%s\" is not a regular file", path);
        return 404;
    }
    ctx->gzip = 1;
    zg_static_send(r, fd, &st, uri);
    return ZG_DONE;
}

/* a file (the URI does not end in "/") */
static int zg_static_file(zg_request_t *r, const zg_str_t *uri)
{
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);
    char path[PATH_MAX];
    size_t root, n;
    struct stat st;

    if ((n = zg_static_map(r, uri, path, sizeof(path), &root)) == 0) {
        return zg_static_open_error(r, "(too long or not a path)", ENAMETOOLONG);
    }
    if (slcf->gzip_static != ZG_GZIP_STATIC_OFF
        && !(r->ctx.method.len == 4 && memcmp(r->ctx.method.data, "POST", 4) == 0)) {
        int rc = zg_static_gz(r, uri, path, n, root);
        if (rc != ZG_DECLINED) {
            return rc;
        }
    }
    int fd = zg_static_open(r, path, root, 0);
    if (fd == -1) {
        return zg_static_open_error(r, path, errno);
    }
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        zg_log(ZG_LOG_CRIT, "fstat() \"%s\" failed (%s)", path, strerror(err));
        return 500;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return zg_static_dir_redirect(r, uri);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        zg_log(ZG_LOG_CRIT, "\"%s\" is not a regular file", path);
        return 404;
    }
    if (r->ctx.method.len == 4 && memcmp(r->ctx.method.data, "POST", 4) == 0) {
        close(fd);
        return 405;
    }
    zg_static_send(r, fd, &st, uri);
    return ZG_DONE;
}

/* a directory: the first index file that exists is an internal redirect; none is
 * 403, and a directory that is not there is 404 */
static int zg_static_dir(zg_request_t *r, const zg_str_t *uri)
{
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);
    char path[PATH_MAX];
    size_t root, n;
    int nindex = slcf->nindex, dir_tested = 0;
    zg_cv_t *const *index = slcf->index;

    if (index == NULL) {
        nindex = 1;
    }
    n = zg_static_map(r, uri, path, sizeof(path), &root);
    if (n == 0) {
        return zg_static_open_error(r, "(too long or not a path)", ENAMETOOLONG);
    }
    for (int i = 0; i < nindex; i++) {
        zg_str_t name;
        if (index == NULL) {
            name.data = "index.html";
            name.len = 10;
        } else if (zg_cv_eval_str(index[i], &r->ctx, &name) != ZG_OK || name.len == 0) {
            continue;
        }
        zg_str_t to, args = r->ctx.args;
        if (name.data[0] == '/') {
            to = name;
            const char *qm = memchr(name.data, '?', name.len);
            if (qm != NULL) {
                to.len = (size_t)(qm - name.data);
                args.data = qm + 1;
                args.len = name.len - to.len - 1;
            }
            zg_request_uri_redirect(r, &to, &args);
            return ZG_DONE;
        }
        if (n + name.len + 1 > sizeof(path) || memchr(name.data, '/', name.len) != NULL) {
            continue;
        }
        memcpy(path + n, name.data, name.len);
        path[n + name.len] = '\0';
        int fd = zg_static_open(r, path, root, 0);
        int err = errno;
        path[n] = '\0';
        if (fd == -1) {
            if (err == ENOENT) {
                if (!dir_tested) {
                    int d = zg_static_open(r, path, root, O_DIRECTORY);
                    if (d == -1) {
                        if (errno == EACCES || errno == ELOOP) {
                            return zg_static_open_error(r, path, errno);
                        }
                        if (slcf->log_not_found) {
                            zg_log(ZG_LOG_ERR, "\"%s\" is not found (%d: %s), client: %s",
                                   path, errno, strerror(errno), zg_conn_addr_text(r->c));
                        }
                        return 404;
                    }
                    close(d);
                    dir_tested = 1;
                }
                continue;
            }
            if (err == EACCES || err == ELOOP) {
                zg_log(ZG_LOG_ERR, "\"%s%.*s\" is forbidden (%d: %s), client: %s", path,
                       (int)name.len, name.data, err, strerror(err), zg_conn_addr_text(r->c));
                return 403;
            }
            if (slcf->log_not_found) {
                zg_log(ZG_LOG_ERR, "\"%s%.*s\" is not found (%d: %s), client: %s", path,
                       (int)name.len, name.data, err, strerror(err), zg_conn_addr_text(r->c));
            }
            return 404;
        }
        close(fd);
        char *u = zg_var_alloc(&r->ctx, uri->len + name.len + 1);
        if (u == NULL) {
            return 500;
        }
        memcpy(u, uri->data, uri->len);
        memcpy(u + uri->len, name.data, name.len);
        to.data = u;
        to.len = uri->len + name.len;
        zg_request_uri_redirect(r, &to, &args);
        return ZG_DONE;
    }
    if (!dir_tested) {
        int d = zg_static_open(r, path, root, O_DIRECTORY);
        if (d == -1) {
            return zg_static_open_error(r, path, errno);
        }
        close(d);
    }
    zg_log(ZG_LOG_ERR, "directory index of \"%s\" is forbidden, client: %s", path,
           zg_conn_addr_text(r->c));
    return 403;
}

/* try_files: the first name that exists (a directory for "name/") becomes $uri and
 * is served here; else the last argument: =CODE, @named, or a URI */
static int zg_static_try(zg_request_t *r)
{
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);
    char path[PATH_MAX];
    size_t root;
    zg_str_t v;

    for (int i = 0; i < slcf->ntry - 1; i++) {
        if (zg_cv_eval_str(slcf->try_files[i], &r->ctx, &v) != ZG_OK || v.len == 0) {
            continue;
        }
        int want_dir = v.data[v.len - 1] == '/';
        zg_str_t name = v;
        if (want_dir && name.len > 1) {
            name.len--;
        }
        if (zg_static_map(r, &name, path, sizeof(path), &root) == 0) {
            continue;
        }
        int fd = zg_static_open(r, path, root, 0);
        if (fd == -1) {
            continue;
        }
        struct stat st;
        int ok = fstat(fd, &st) == 0 && (want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
        close(fd);
        if (!ok) {
            continue;
        }
        /* nginx keeps the trailing "/" of a directory: the index answers then */
        char *u = zg_var_alloc(&r->ctx, v.len + 1);
        if (u == NULL) {
            return 500;
        }
        memcpy(u, v.data, v.len);
        r->ctx.uri.data = u;
        r->ctx.uri.len = v.len;
        return ZG_DECLINED;
    }
    if (zg_cv_eval_str(slcf->try_files[slcf->ntry - 1], &r->ctx, &v) != ZG_OK) {
        return 500;
    }
    if (slcf->try_last == ZG_TRY_CODE) {
        return slcf->try_code;
    }
    if (slcf->try_last == ZG_TRY_NAMED) {
        zg_location_t *loc = zg_http_core_find_named(r->srv, v.data, v.len);
        if (loc == NULL) {
            zg_log(ZG_LOG_ERR, "could not find named location \"%.*s\"", (int)v.len, v.data);
            return 500;
        }
        zg_request_uri_named(r, loc);
        return ZG_DONE;
    }
    zg_str_t uri = v, args = r->ctx.args;
    const char *qm = memchr(v.data, '?', v.len);
    if (qm != NULL) {
        uri.len = (size_t)(qm - v.data);
        args.data = qm + 1;
        args.len = v.len - uri.len - 1;
    }
    if (uri.len == 0 || uri.data[0] != '/') {
        return 500;
    }
    zg_request_uri_redirect(r, &uri, &args);
    return ZG_DONE;
}

static int zg_static_method(const zg_str_t *m)
{
    return (m->len == 3 && memcmp(m->data, "GET", 3) == 0)
           || (m->len == 4 && (memcmp(m->data, "HEAD", 4) == 0
                               || memcmp(m->data, "POST", 4) == 0));
}

static int zg_static_handler(zg_request_t *r)
{
    const zg_static_loc_conf_t *slcf = zg_request_conf(r, zg_static_module);
    int rc;

    if (slcf->try_files != NULL) {
        rc = zg_static_try(r);
        if (rc == ZG_DONE) {
            return ZG_DONE;
        }
        if (rc != ZG_DECLINED) {
            zg_request_respond(r, rc, NULL, NULL, NULL, 0);
            return ZG_DONE;
        }
    }
    zg_str_t uri = r->ctx.uri;
    if (!zg_static_method(&r->ctx.method)) {
        rc = 405;
    } else if (uri.len > 0 && uri.data[uri.len - 1] == '/') {
        rc = zg_static_dir(r, &uri);
    } else {
        rc = zg_static_file(r, &uri);
    }
    if (rc != ZG_DONE) {
        zg_request_respond(r, rc, NULL, NULL, NULL, 0);
    }
    return ZG_DONE;
}

/* the answers of a level with gzip_static on and gzip_vary go through the header
 * filters, error pages included: Vary (the range filter needs no more, a file's
 * answer always takes the filters) */
static int zg_static_filter_on(void **loc_conf)
{
    return zg_static_loc_conf(loc_conf)->gzip_static == ZG_GZIP_STATIC_ON
           && zg_gzip_loc_conf(loc_conf)->vary;
}

static const zg_command_t zg_static_commands[] = {
    { "root", ZG_CTX_SETTINGS | ZG_CTX_LIF, 0, 1, 1, zg_static_root, ZG_LOC_CONF, 0, NULL },
    { "alias", ZG_CTX_LOC, 0, 1, 1, zg_static_root, ZG_LOC_CONF, 0, NULL },
    { "index", ZG_CTX_SETTINGS, 0, 1, -1, zg_static_index, ZG_LOC_CONF, 0, NULL },
    { "try_files", ZG_CTX_SRV | ZG_CTX_LOC, 0, 2, -1, zg_static_try_files, ZG_LOC_CONF, 0,
      NULL },
    { "types", ZG_CTX_SETTINGS, 1, 0, 0, zg_static_types, ZG_LOC_CONF, 0, NULL },
    { "etag", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF, ZG_STATIC_OFF(etag),
      NULL },
    { "if_modified_since", ZG_CTX_SETTINGS, 0, 1, 1, zg_static_ims, ZG_LOC_CONF, 0, NULL },
    { "log_not_found", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      ZG_STATIC_OFF(log_not_found), NULL },
    { "sendfile", ZG_CTX_SETTINGS | ZG_CTX_LIF, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      ZG_STATIC_OFF(sendfile), NULL },
    { "tcp_nopush", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      ZG_STATIC_OFF(tcp_nopush), NULL },
    { "disable_symlinks", ZG_CTX_SETTINGS, 0, 1, 2, zg_static_symlinks, ZG_LOC_CONF, 0,
      NULL },
    /* accepted, no effect (documented): a file is opened per request */
    { "open_file_cache", ZG_CTX_SETTINGS, 0, 1, 2, zg_static_ofc, ZG_LOC_CONF, 0, NULL },
    { "open_file_cache_valid", ZG_CTX_SETTINGS, 0, 1, 1, zg_static_noop_time, ZG_LOC_CONF,
      0, NULL },
    { "open_file_cache_min_uses", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_count, ZG_LOC_CONF,
      ZG_STATIC_OFF(ofc_min_uses), NULL },
    { "open_file_cache_errors", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_noop_flag, ZG_LOC_CONF,
      0, NULL },
    { "open_file_cache_events", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_noop_flag, ZG_LOC_CONF,
      0, NULL },
    { "gzip_static", ZG_CTX_SETTINGS, 0, 1, 1, zg_static_gzip_static, ZG_LOC_CONF, 0, NULL },
    { "max_ranges", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_num, ZG_LOC_CONF,
      ZG_STATIC_OFF(max_ranges), NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_static_module = {
    .name = "static",
    .commands = zg_static_commands,
    .init_main_conf = zg_static_init_main_conf,
    .create_loc_conf = zg_static_create_conf,
    .merge_loc_conf = zg_static_merge_conf,
    .filter_on = zg_static_filter_on,
    .header_filter = zg_static_range_filter,
    .ctx_size = sizeof(zg_static_ctx_t),
};
