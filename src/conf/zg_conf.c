/* zg_conf.c — the config core: tokenizer, dispatch by the modules' command
 * tables, merge of the http -> server -> location levels, errors. */
#include "zg_conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <netdb.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "zg_log.h"
#include "zg_vars.h"

#define ZG_CONF_MAX_INCLUDE_DEPTH 16
#define ZG_CONF_MAX_FILE (16 * 1024 * 1024)

enum { ZG_TK_WORD = 1, ZG_TK_SEMI, ZG_TK_LBRACE, ZG_TK_RBRACE, ZG_TK_EOF };

int zg_conf_no_resolve;

typedef struct zg_conf_mem_s zg_conf_mem_t;
struct zg_conf_mem_s {
    zg_conf_mem_t *next;
    max_align_t data[];
};

typedef struct zg_conf_cvs_s zg_conf_cvs_t;
struct zg_conf_cvs_s {
    zg_cv_t *cv;
    zg_conf_cvs_t *next;
};

typedef struct zg_conf_kept_s zg_conf_kept_t;
struct zg_conf_kept_s {
    void *p;
    void (*free)(void *p);
    zg_conf_kept_t *next;
};

typedef struct {
    zg_conf_mem_t *mem;
    zg_conf_cvs_t *cvs;
    zg_vars_t *vars;      /* named variables (map, geo, set, captures) */
    zg_conf_kept_t *kept;
} zg_conf_arena_t;

/* one file being read */
typedef struct {
    const char *file;
    const char *p, *end;
    int line;
} zg_cfile_t;

/* the parse state only the core sees */
typedef struct {
    char *err;           /* every error, one a line */
    size_t errlen;
    size_t errpos;
    int nerrors;
    int fatal;           /* ZG_CP_* : the file or the whole parse cannot go on */
    unsigned blocks;     /* blocks entered so far: did a block directive read its block? */
    zg_cfile_t *in;      /* the file being read */
    int depth;           /* of includes */
    zg_conf_raw_pt raw;  /* a block of entries (map, geo): each line goes here */
    void *raw_data;
} zg_cp_priv_t;

#define ZG_CP_SYNTAX 1 /* the rest of this file cannot be read */
#define ZG_CP_NOMEM 2  /* nothing more can be done */

#define zg_cp_priv(cp) ((zg_cp_priv_t *)(cp)->priv)
#define zg_cp_in(cp) (zg_cp_priv(cp)->in)

/* ---------------------------------------------------------------- modules */

int *zg_modules_file(zg_conf_t *conf, int k)
{
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->file == NULL) {
            continue;
        }
        for (int j = 0;; j++) {
            int *fd = zg_modules[i]->file(conf, j);
            if (fd == NULL) {
                break;
            }
            if (k-- == 0) {
                return fd;
            }
        }
    }
    return NULL;
}

size_t zg_modules_ctx_size, zg_modules_scratch_size;

void zg_modules_init(void)
{
    static int done;
    size_t off = 0;

    if (done) {
        return;
    }
    done = 1;
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (i >= ZG_MAX_MODULES) {
            zg_log_error(ZG_LOG_EMERG, 0, "more than %d modules: raise ZG_MAX_MODULES",
                         ZG_MAX_MODULES);
            abort();
        }
        zg_modules[i]->index = i;
        zg_modules[i]->ctx_offset = off;
        off += zg_align(zg_modules[i]->ctx_size, sizeof(void *));
    }
    zg_modules_ctx_size = off;
    off = 0;
    for (int i = 0; zg_modules[i] != NULL; i++) {
        zg_modules[i]->scratch_offset = off;
        off += zg_align(zg_modules[i]->scratch_size, sizeof(void *));
    }
    zg_modules_scratch_size = off;
    int slot = 0;
    for (int i = 0; zg_modules[i] != NULL; i++) {
        zg_modules[i]->filter_slot = zg_modules[i]->body_filter != NULL ? slot++ : -1;
    }
    if (slot > 32) {
        abort(); /* a request's mask of body filters is 32 bits */
    }
}

/* ---------------------------------------------------------------- arena */

void *zg_conf_alloc(zg_conf_t *conf, size_t size)
{
    zg_conf_arena_t *a = conf->arena;
    zg_conf_mem_t *m;

    if (size > SIZE_MAX / 2) {
        return NULL;
    }
    m = calloc(1, sizeof(zg_conf_mem_t) + size);
    if (m == NULL) {
        return NULL;
    }
    m->next = a->mem;
    a->mem = m;
    return m->data;
}

char *zg_conf_strdup(zg_conf_t *conf, const char *s, size_t len)
{
    char *p = zg_conf_alloc(conf, len + 1);

    if (p != NULL && len > 0) {
        memcpy(p, s, len);
    }
    return p;
}

int zg_conf_keep(zg_conf_t *conf, void *p, void (*free_fn)(void *p))
{
    zg_conf_arena_t *a = conf->arena;
    zg_conf_kept_t *k = zg_conf_alloc(conf, sizeof(*k));

    if (k == NULL) {
        return ZG_ERROR;
    }
    k->p = p;
    k->free = free_fn;
    k->next = a->kept;
    a->kept = k;
    return ZG_OK;
}

static zg_conf_t *zg_conf_create(void)
{
    zg_conf_t *conf = calloc(1, sizeof(zg_conf_t));

    if (conf == NULL) {
        return NULL;
    }
    conf->arena = calloc(1, sizeof(zg_conf_arena_t));
    if (conf->arena == NULL) {
        free(conf);
        return NULL;
    }
    return conf;
}

void zg_conf_free(zg_conf_t *conf)
{
    zg_conf_arena_t *a;
    zg_conf_mem_t *m, *mn;
    zg_conf_cvs_t *c;

    if (conf == NULL) {
        return;
    }
    a = conf->arena;
    if (a != NULL) {
        for (c = a->cvs; c != NULL; c = c->next) {
            zg_cv_free(c->cv);
        }
        zg_vars_free(a->vars);
        for (zg_conf_kept_t *k = a->kept; k != NULL; k = k->next) {
            k->free(k->p);
        }
        for (m = a->mem; m != NULL; m = mn) {
            mn = m->next;
            free(m);
        }
        free(a);
    }
    zg_zone_list_free(&conf->zones);
    free(conf);
}

/* grows arr (of *n elements) so one more fits, counts it; NULL if no memory */
void *zg_conf_grow(zg_conf_t *conf, void *arr, int *n, size_t size)
{
    void *na;
    int cnt = *n < 0 ? 0 : *n;

    if (cnt == 0 || (cnt & (cnt - 1)) == 0) {
        if (cnt > INT_MAX / 4) {
            return NULL;
        }
        na = zg_conf_alloc(conf, (size_t)(cnt ? cnt * 2 : 1) * size);
        if (na == NULL) {
            return NULL;
        }
        if (cnt > 0) {
            memcpy(na, arr, (size_t)cnt * size);
        }
        arr = na;
    }
    *n = cnt + 1;
    return arr;
}


/* --------------------------------------------------------------- errors */

static int zg_cp_verr_at(zg_cf_t *cp, const char *file, int line, const char *fmt,
                         va_list ap)
{
    zg_cp_priv_t *priv = zg_cp_priv(cp);
    char *e = priv->err;
    size_t cap = priv->errlen, pos = priv->errpos;
    int k;

    priv->nerrors++;
    if (e == NULL || cap == 0 || pos + 1 >= cap) {
        return ZG_ERROR;
    }
    if (pos > 0) {
        e[pos++] = '\n';
        e[pos] = '\0';
    }
    k = vsnprintf(e + pos, cap - pos, fmt, ap);
    if (k >= 0 && pos + (size_t)k < cap && file != NULL) {
        k += snprintf(e + pos + k, cap - pos - (size_t)k, " in %s:%d", file, line);
    }
    priv->errpos = k < 0 ? pos : zg_min(pos + (size_t)k, cap - 1);
    return ZG_ERROR;
}

/* error at the directive being handled */
int zg_conf_error(zg_cf_t *cp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    zg_cp_verr_at(cp, cp->file, cp->line, fmt, ap);
    va_end(ap);
    return ZG_ERROR;
}

int zg_conf_error_at(zg_cf_t *cp, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    zg_cp_verr_at(cp, file, line, fmt, ap);
    va_end(ap);
    return ZG_ERROR;
}

int zg_conf_nomem(zg_cf_t *cp)
{
    zg_cp_priv(cp)->fatal = ZG_CP_NOMEM;
    return zg_conf_error(cp, "out of memory");
}

int zg_conf_settable_var(zg_cf_t *cf, const zg_str_t *arg, zg_var_get_pt get, int *index)
{
    zg_vars_t *vs = zg_conf_vars(cf->conf);
    int rc;

    if (arg->len < 2 || arg->data[0] != '$') {
        return zg_conf_error(cf, "invalid variable name \"%s\"", arg->data);
    }
    if (vs == NULL) {
        return zg_conf_nomem(cf);
    }
    if (zg_var_builtin(arg->data + 1, arg->len - 1)) {
        return zg_conf_error(cf, "the \"%s\" variable is built in and cannot be set",
                             arg->data + 1);
    }
    rc = zg_vars_define(vs, arg->data + 1, arg->len - 1, get, NULL, ZG_VAR_CHANGEABLE, index);
    if (rc == ZG_ERROR) {
        return zg_conf_nomem(cf);
    }
    if (rc == ZG_DECLINED) {
        return zg_conf_error(cf, "the duplicate \"%s\" variable", arg->data + 1);
    }
    return ZG_OK;
}

/* a syntax error: the rest of the file cannot be read */
static int zg_cp_syntax(zg_cf_t *cp, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int zg_cp_syntax(zg_cf_t *cp, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    if (zg_cp_priv(cp)->fatal == 0) {
        zg_cp_priv(cp)->fatal = ZG_CP_SYNTAX;
    }
    va_start(ap, fmt);
    zg_cp_verr_at(cp, file, line, fmt, ap);
    va_end(ap);
    return ZG_ERROR;
}

int zg_conf_invalid(zg_cf_t *cp, const zg_str_t *v)
{
    return zg_conf_error(cp, "invalid value \"%s\" in \"%s\" directive", v->data, cp->name);
}

int zg_conf_duplicate(zg_cf_t *cp)
{
    return zg_conf_error(cp, "\"%s\" directive is duplicate", cp->name);
}

int zg_conf_bad_param(zg_cf_t *cp, const zg_str_t *v)
{
    return zg_conf_error(cp, "invalid parameter \"%s\" in \"%s\" directive", v->data, cp->name);
}

/* -------------------------------------------------------------- values */

int zg_conf_prefix(const zg_str_t *v, const char *p)
{
    size_t n = strlen(p);
    return v->len >= n && memcmp(v->data, p, n) == 0;
}

int zg_conf_eq(const zg_str_t *v, const char *p)
{
    return v->len == strlen(p) && memcmp(v->data, p, v->len) == 0;
}

/* non-negative decimal up to INT_MAX; -1 on error */
int zg_conf_atoi(const char *s, size_t len)
{
    int64_t v = 0;

    if (len == 0) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
        if (v > INT_MAX) {
            return -1;
        }
    }
    return (int)v;
}

int64_t zg_conf_parse_size(const char *s, size_t len)
{
    int64_t v = 0, scale = 1;

    if (len == 0) {
        return -1;
    }
    switch (s[len - 1]) {
    case 'k':
    case 'K':
        scale = 1024;
        len--;
        break;
    case 'm':
    case 'M':
        scale = 1024 * 1024;
        len--;
        break;
    case 'g':
    case 'G':
        scale = 1024 * 1024 * 1024;
        len--;
        break;
    }
    if (len == 0) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
        if (v > ((int64_t)1 << 50) / scale) {
            return -1;
        }
    }
    return v * scale;
}

zg_msec_t zg_conf_parse_time(const char *s, size_t len)
{
    zg_msec_t total = 0, v, unit;
    size_t i = 0;
    int digits, last_bare = 0;

    if (len == 0) {
        return ZG_UNSET_MSEC;
    }
    while (i < len) {
        if (last_bare) {
            return ZG_UNSET_MSEC; /* a bare number only at the end */
        }
        v = 0;
        digits = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (zg_msec_t)(s[i] - '0');
            if (v > ((zg_msec_t)1 << 40)) {
                return ZG_UNSET_MSEC;
            }
            digits++;
            i++;
        }
        if (digits == 0) {
            return ZG_UNSET_MSEC;
        }
        if (i == len) {
            unit = 1000;
            last_bare = 1;
        } else if (s[i] == 'm' && i + 1 < len && s[i + 1] == 's') {
            unit = 1;
            i += 2;
        } else {
            switch (s[i]) {
            case 's':
                unit = 1000;
                break;
            case 'm':
                unit = 60 * 1000;
                break;
            case 'h':
                unit = 3600 * 1000;
                break;
            case 'd':
                unit = 86400 * 1000;
                break;
            case 'w':
                unit = 7 * 86400 * 1000;
                break;
            default:
                return ZG_UNSET_MSEC;
            }
            i++;
        }
        if (v > ((zg_msec_t)1 << 50) / unit) {
            return ZG_UNSET_MSEC;
        }
        total += v * unit;
        if (total > ((zg_msec_t)1 << 50)) {
            return ZG_UNSET_MSEC;
        }
    }
    return total;
}

static void zg_addr_text(zg_addr_t *a)
{
    char ip[INET6_ADDRSTRLEN];

    if (a->sa.ss_family == AF_UNIX) {
        snprintf(a->text, sizeof(a->text), "unix:%s",
                 ((struct sockaddr_un *)&a->sa)->sun_path);
    } else if (a->sa.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(a->text, sizeof(a->text), "[%s]:%d", ip, ntohs(sin6->sin6_port));
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(a->text, sizeof(a->text), "%s:%d", ip, ntohs(sin->sin_port));
    }
}

int zg_addr_set(zg_addr_t *out, int family, const void *ip, int port)
{
    memset(out, 0, sizeof(*out));
    if (family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->sa;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        memcpy(&sin6->sin6_addr, ip, 16);
        out->socklen = sizeof(struct sockaddr_in6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        memcpy(&sin->sin_addr, ip, 4);
        out->socklen = sizeof(struct sockaddr_in);
    }
    zg_addr_text(out);
    return ZG_OK;
}

static int zg_addr_resolve(const char *host, int port, zg_addr_t *out)
{
    static const int families[] = { AF_INET, AF_INET6 };
    unsigned char ip[16];
    struct addrinfo hints, *res;
    int rc;

    if (strcmp(host, "*") == 0) {
        memset(ip, 0, sizeof(ip));
        return zg_addr_set(out, AF_INET, ip, port);
    }
    if (inet_pton(AF_INET, host, ip) == 1) {
        return zg_addr_set(out, AF_INET, ip, port);
    }
    if (inet_pton(AF_INET6, host, ip) == 1) {
        return zg_addr_set(out, AF_INET6, ip, port);
    }
    if (zg_conf_no_resolve && strcasecmp(host, "localhost") != 0) {
        return ZG_DECLINED;
    }
    /* IPv4 first: "localhost" is 127.0.0.1, where sidecar backends listen */
    for (size_t i = 0; i < zg_nelems(families); i++) {
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = families[i];
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(host, NULL, &hints, &res) != 0) {
            continue;
        }
        rc = ZG_DECLINED;
        if (res != NULL && res->ai_family == AF_INET) {
            rc = zg_addr_set(out, AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr,
                             port);
        } else if (res != NULL && res->ai_family == AF_INET6) {
            rc = zg_addr_set(out, AF_INET6,
                             &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, port);
        }
        freeaddrinfo(res);
        if (rc == ZG_OK) {
            return ZG_OK;
        }
    }
    return ZG_DECLINED;
}

/* "unix:/path": the path (relative ones as given, as nginx) */
static int zg_addr_unix(const char *s, size_t len, zg_addr_t *out)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&out->sa;

    if (len == 0 || len >= sizeof(sun->sun_path) || memchr(s, '\0', len) != NULL) {
        return ZG_ERROR;
    }
    memset(out, 0, sizeof(*out));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, s, len);
    out->socklen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    zg_addr_text(out);
    return ZG_OK;
}

int zg_conf_parse_addr(const char *s, size_t len, int default_port, zg_addr_t *out)
{
    char host[256];
    const char *h, *colon = NULL, *ps = NULL;
    size_t hlen;
    int port, all_digits = len > 0;

    if (len >= 5 && strncasecmp(s, "unix:", 5) == 0) {
        return zg_addr_unix(s + 5, len - 5, out);
    }

    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            all_digits = 0;
        }
        if (s[i] == '\0') {
            return ZG_ERROR;
        }
    }
    if (all_digits) {
        port = zg_conf_atoi(s, len);
        if (port < 1 || port > 65535) {
            return ZG_ERROR;
        }
        memset(host, 0, 4);
        return zg_addr_set(out, AF_INET, host, port);
    }
    if (len > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (rb == NULL) {
            return ZG_ERROR;
        }
        h = s + 1;
        hlen = (size_t)(rb - h);
        if ((size_t)(rb + 1 - s) < len) {
            if (rb[1] != ':') {
                return ZG_ERROR;
            }
            ps = rb + 2;
        }
    } else {
        for (size_t i = 0; i < len; i++) {
            if (s[i] == ':') {
                if (colon != NULL) {
                    return ZG_ERROR; /* IPv6 needs [brackets] */
                }
                colon = s + i;
            }
        }
        h = s;
        hlen = colon != NULL ? (size_t)(colon - s) : len;
        ps = colon != NULL ? colon + 1 : NULL;
    }
    if (ps != NULL) {
        port = zg_conf_atoi(ps, (size_t)(s + len - ps));
        if (port < 1 || port > 65535) {
            return ZG_ERROR;
        }
    } else {
        port = default_port;
        if (port < 1 || port > 65535) {
            return ZG_ERROR;
        }
    }
    if (hlen == 0 || hlen >= sizeof(host)) {
        return ZG_ERROR;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (s[0] == '[') {
        unsigned char ip[16];
        if (inet_pton(AF_INET6, host, ip) != 1) {
            return ZG_ERROR;
        }
        return zg_addr_set(out, AF_INET6, ip, port);
    }
    return zg_addr_resolve(host, port, out);
}

int zg_addr_eq(const zg_addr_t *a, const zg_addr_t *b)
{
    if (a->sa.ss_family != b->sa.ss_family) {
        return 0;
    }
    if (a->sa.ss_family == AF_UNIX) {
        return strcmp(((const struct sockaddr_un *)&a->sa)->sun_path,
                      ((const struct sockaddr_un *)&b->sa)->sun_path) == 0;
    }
    if (a->sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&a->sa, *y = (const void *)&b->sa;
        return x->sin6_port == y->sin6_port
               && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
    }
    const struct sockaddr_in *x = (const void *)&a->sa, *y = (const void *)&b->sa;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

/* PATH made absolute against the main file's directory */
char *zg_conf_path(zg_cf_t *cp, const zg_str_t *v)
{
    const char *prefix = cp->conf->prefix;
    size_t plen;
    char *p;

    if (v->data[0] == '/' || prefix == NULL) {
        return zg_conf_strdup(cp->conf, v->data, v->len);
    }
    plen = strlen(prefix);
    p = zg_conf_alloc(cp->conf, plen + 1 + v->len + 1);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, prefix, plen);
    p[plen] = '/';
    memcpy(p + plen + 1, v->data, v->len);
    return p;
}

zg_vars_t *zg_conf_vars(zg_conf_t *conf)
{
    zg_conf_arena_t *a = conf->arena;

    if (a->vars == NULL) {
        a->vars = zg_vars_new();
    }
    return a->vars;
}

zg_cv_t *zg_conf_cv(zg_cf_t *cp, const char *text, size_t len)
{
    char cerr[256];
    zg_conf_arena_t *a = cp->conf->arena;
    zg_conf_cvs_t *c;
    zg_cv_t *cv;

    c = zg_conf_alloc(cp->conf, sizeof(*c));
    if (c == NULL) {
        zg_conf_nomem(cp);
        return NULL;
    }
    cerr[0] = '\0';
    if (a->vars == NULL && (a->vars = zg_vars_new()) == NULL) {
        zg_conf_nomem(cp);
        return NULL;
    }
    cv = zg_cv_compile_vars(a->vars, text, len, cp->file, cp->line, cerr, sizeof(cerr));
    if (cv == NULL) {
        zg_conf_error(cp, "%s", cerr[0] ? cerr : "invalid value");
        return NULL;
    }
    c->cv = cv;
    c->next = a->cvs;
    a->cvs = c;
    return cv;
}

/* ------------------------------------------------------------ tokenizer */

static int zg_cf_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int zg_cf_copy(zg_cf_t *cp, const char *s, size_t len, zg_str_t *out)
{
    char *d = zg_conf_alloc(cp->conf, len + 1);
    size_t k = 0;

    if (d == NULL) {
        return zg_conf_nomem(cp);
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0') {
            return zg_cp_syntax(cp, zg_cp_in(cp)->file, zg_cp_in(cp)->line,
                                "unexpected NUL byte");
        }
        if (s[i] == '\\' && i + 1 < len) {
            switch (s[i + 1]) {
            case '"':
            case '\'':
            case '\\':
                d[k++] = s[++i];
                continue;
            case 'n':
                d[k++] = '\n';
                i++;
                continue;
            case 't':
                d[k++] = '\t';
                i++;
                continue;
            case 'r':
                d[k++] = '\r';
                i++;
                continue;
            }
        }
        d[k++] = s[i];
    }
    d[k] = '\0';
    out->data = d;
    out->len = k;
    return ZG_OK;
}

/* next token of cf: ZG_TK_* (a word in *out), or ZG_ERROR */
static int zg_cfile_token(zg_cf_t *cp, zg_cfile_t *cf, zg_str_t *out, int *line)
{
    const char *start;
    char q;
    int var;

    for (;;) {
        while (cf->p < cf->end && zg_cf_space(*cf->p)) {
            if (*cf->p == '\n') {
                cf->line++;
            }
            cf->p++;
        }
        if (cf->p == cf->end) {
            return ZG_TK_EOF;
        }
        if (*cf->p != '#') {
            break;
        }
        while (cf->p < cf->end && *cf->p != '\n') {
            cf->p++;
        }
    }
    *line = cf->line;
    switch (*cf->p) {
    case ';':
        cf->p++;
        return ZG_TK_SEMI;
    case '{':
        cf->p++;
        return ZG_TK_LBRACE;
    case '}':
        cf->p++;
        return ZG_TK_RBRACE;
    case '"':
    case '\'':
        q = *cf->p++;
        start = cf->p;
        while (cf->p < cf->end && *cf->p != q) {
            if (*cf->p == '\\' && cf->p + 1 < cf->end) {
                cf->p++;
            }
            if (*cf->p == '\n') {
                cf->line++;
            }
            cf->p++;
        }
        if (cf->p == cf->end) {
            return zg_cp_syntax(cp, cf->file, cf->line,
                                "unexpected end of file, expecting \";\" or \"}\"");
        }
        if (zg_cf_copy(cp, start, (size_t)(cf->p - start), out) != ZG_OK) {
            return ZG_ERROR;
        }
        cf->p++;
        /* as nginx: a ")" may follow a quoted word (`if ($a = "b")`); it starts
         * the next word */
        if (cf->p < cf->end && !zg_cf_space(*cf->p) && *cf->p != ';' && *cf->p != '{'
            && *cf->p != ')') {
            if (*cf->p == '\0') {
                return zg_cp_syntax(cp, cf->file, cf->line, "unexpected NUL byte");
            }
            return zg_cp_syntax(cp, cf->file, cf->line, "unexpected \"%c\"", *cf->p);
        }
        return ZG_TK_WORD;
    }
    start = cf->p;
    var = 0;
    while (cf->p < cf->end) {
        char c = *cf->p;
        if (c == '{' && var) {
            cf->p++;
            continue;
        }
        if (c == '\\' && cf->p + 1 < cf->end) {
            if (cf->p[1] == '\n') {
                cf->line++;
            }
            cf->p += 2;
            var = 0;
            continue;
        }
        if (zg_cf_space(c) || c == ';' || c == '{') {
            break;
        }
        var = c == '$';
        cf->p++;
    }
    return zg_cf_copy(cp, start, (size_t)(cf->p - start), out) == ZG_OK ? ZG_TK_WORD
                                                                         : ZG_ERROR;
}

/* --------------------------------------------------------------- parser */

static int zg_cp_block(zg_cf_t *cp, zg_cfile_t *cf, int in_block);

static int zg_cp_include(zg_cf_t *cp);

static int zg_cp_dispatch(zg_cf_t *cp, zg_str_t *a, int n, int term)
{
    const zg_command_t *cmd, *found = NULL;
    const zg_module_t *m = NULL;
    void *conf;
    int known = 0;

    cp->name = a[0].data;
    cp->args = a;
    cp->nargs = n;
    if (zg_conf_eq(&a[0], "include")) {
        if (term != ZG_TK_SEMI) {
            return zg_conf_error(cp, "directive \"%s\" is not terminated by \";\"", a[0].data);
        }
        if (n != 2) {
            return zg_conf_error(cp, "invalid number of arguments in \"%s\" directive",
                                 a[0].data);
        }
        return zg_cp_include(cp);
    }
    if (zg_cp_priv(cp)->raw != NULL) {
        if (term != ZG_TK_SEMI) {
            return zg_conf_error(cp, "unexpected \"{\"");
        }
        return zg_cp_priv(cp)->raw(cp, zg_cp_priv(cp)->raw_data);
    }
    for (int i = 0; found == NULL && zg_modules[i] != NULL; i++) {
        for (cmd = zg_modules[i]->commands; cmd != NULL && cmd->name != NULL; cmd++) {
            if (!zg_conf_eq(&a[0], cmd->name)) {
                continue;
            }
            known = 1;
            if (cmd->ctx & cp->ctx) {
                found = cmd;
                m = zg_modules[i];
                break;
            }
        }
    }
    if (!known) {
        const char *module = zg_conf_nginx_module(a[0].data, a[0].len);
        if (module != NULL) {
            return zg_conf_error(cp, "directive \"%s\" belongs to nginx's %s, which zonegate "
                                 "does not implement", a[0].data, module);
        }
        return zg_conf_error(cp, "unknown directive \"%s\"", a[0].data);
    }
    if (found == NULL) {
        return zg_conf_error(cp, "\"%s\" directive is not allowed here", a[0].data);
    }
    if (found->block && term != ZG_TK_LBRACE) {
        return zg_conf_error(cp, "directive \"%s\" has no opening \"{\"", a[0].data);
    }
    if (!found->block && term != ZG_TK_SEMI) {
        return zg_conf_error(cp, "directive \"%s\" is not terminated by \";\"", a[0].data);
    }
    if (n - 1 < found->min || (found->max >= 0 && n - 1 > found->max)) {
        return zg_conf_error(cp, "invalid number of arguments in \"%s\" directive",
                             a[0].data);
    }
    if (found->conf == ZG_LOC_CONF) {
        conf = cp->loc_conf != NULL ? cp->loc_conf[m->index] : NULL;
    } else {
        conf = cp->conf->main_conf[m->index];
    }
    return found->set(cp, found, conf);
}

/* reads past the block whose "{" was just read */
static int zg_cp_skip_block(zg_cf_t *cp, zg_cfile_t *cf)
{
    zg_str_t w;
    int depth = 1, t, tline;

    while (depth > 0) {
        t = zg_cfile_token(cp, cf, &w, &tline);
        if (t == ZG_ERROR) {
            return ZG_ERROR;
        }
        if (t == ZG_TK_EOF) {
            return zg_cp_syntax(cp, cf->file, cf->line, "unexpected end of file, expecting \"}\"");
        }
        depth += t == ZG_TK_LBRACE ? 1 : t == ZG_TK_RBRACE ? -1 : 0;
    }
    return ZG_OK;
}

static int zg_cp_block(zg_cf_t *cp, zg_cfile_t *cf, int in_block)
{
    zg_cfile_t *saved = zg_cp_in(cp);
    zg_str_t *args = NULL, w;
    int nargs, t, line = 0, tline = 0, rc;
    unsigned blocks;

    for (;;) {
        nargs = 0;
        for (;;) {
            zg_cp_in(cp) = cf;
            t = zg_cfile_token(cp, cf, &w, &tline);
            if (t == ZG_ERROR) {
                return ZG_ERROR;
            }
            if (t != ZG_TK_WORD) {
                break;
            }
            if (nargs == 0) {
                line = tline;
            }
            if (zg_conf_push(cp->conf, args, nargs) == NULL) {
                return zg_conf_nomem(cp);
            }
            args[nargs - 1] = w;
        }
        switch (t) {
        case ZG_TK_EOF:
            if (nargs > 0) {
                return zg_cp_syntax(cp, cf->file, cf->line,
                                    "unexpected end of file, expecting \";\" or \"}\"");
            }
            if (in_block) {
                return zg_cp_syntax(cp, cf->file, cf->line,
                                    "unexpected end of file, expecting \"}\"");
            }
            zg_cp_in(cp) = saved;
            return ZG_OK;
        case ZG_TK_RBRACE:
            if (nargs > 0 || !in_block) {
                return zg_cp_syntax(cp, cf->file, tline, "unexpected \"}\"");
            }
            zg_cp_in(cp) = saved;
            return ZG_OK;
        default:
            if (nargs == 0) {
                return zg_cp_syntax(cp, cf->file, tline, "unexpected \"%c\"",
                                    t == ZG_TK_SEMI ? ';' : '{');
            }
            cp->line = line;
            cp->file = cf->file;
            blocks = zg_cp_priv(cp)->blocks;
            rc = zg_cp_dispatch(cp, args, nargs, t);
            args = NULL; /* the handler may keep the strings, not the array */
            if (rc == ZG_OK) {
                continue;
            }
            /* the error is recorded: go on with the next directive, after the
             * directive's block if it did not read it */
            if (zg_cp_priv(cp)->fatal) {
                return ZG_ERROR;
            }
            if (t == ZG_TK_LBRACE && zg_cp_priv(cp)->blocks == blocks
                && zg_cp_skip_block(cp, cf) != ZG_OK) {
                return ZG_ERROR;
            }
        }
    }
}

/* reads FILE (already a full path) into the arena */
/* reads FILE (already a full path) into text, which the caller frees once the file
 * is parsed (tokens are copied into the arena) */
static int zg_cp_read_file(zg_cf_t *cp, const char *path, zg_cfile_t *cf, zg_buf_t *text)
{
    struct stat st;
    ssize_t r;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1 || fstat(fd, &st) == -1) {
        int e = errno;
        if (fd != -1) {
            close(fd);
        }
        if (zg_cp_in(cp) == NULL) {
            zg_conf_error_at(cp, NULL, 0, "open() \"%s\" failed (%d: %s)", path, e, strerror(e));
        } else {
            zg_conf_error(cp, "open() \"%s\" failed (%d: %s)", path, e, strerror(e));
        }
        return ZG_ERROR;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > ZG_CONF_MAX_FILE) {
        close(fd);
        goto too_big;
    }
    while (text->len <= ZG_CONF_MAX_FILE) {
        if (zg_buf_reserve(text, (size_t)st.st_size + 4096) != ZG_OK) {
            close(fd);
            return zg_conf_nomem(cp);
        }
        r = read(fd, text->data + text->len,
                 zg_min(text->cap - text->len - 1, ZG_CONF_MAX_FILE + 1 - text->len));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        text->len += (size_t)r;
    }
    close(fd);
    if (text->len > ZG_CONF_MAX_FILE) {
        goto too_big;
    }
    cf->file = zg_conf_strdup(cp->conf, path, strlen(path));
    if (cf->file == NULL) {
        return zg_conf_nomem(cp);
    }
    cf->p = text->data;
    cf->end = text->data + text->len;
    cf->line = 1;
    return ZG_OK;
too_big:
    return zg_cp_in(cp) == NULL
               ? zg_conf_error_at(cp, NULL, 0, "\"%s\" is not a regular file of at most 16M", path)
               : zg_conf_error(cp, "\"%s\" is not a regular file of at most 16M", path);
}

/* --------------------------------------------------------------- blocks */

static int zg_cp_include_file(zg_cf_t *cp, const char *path)
{
    zg_buf_t text = ZG_BUF_INIT;
    zg_cfile_t cf;
    const char *file = cp->file;
    int line = cp->line, rc;

    if (zg_cp_read_file(cp, path, &cf, &text) != ZG_OK) {
        zg_buf_free(&text);
        return ZG_ERROR;
    }
    zg_cp_priv(cp)->depth++;
    rc = zg_cp_block(cp, &cf, 0);
    zg_cp_priv(cp)->depth--;
    zg_buf_free(&text);
    cp->file = file;
    cp->line = line;
    /* a syntax error ends its file, not the one that includes it */
    if (zg_cp_priv(cp)->fatal == ZG_CP_SYNTAX) {
        zg_cp_priv(cp)->fatal = 0;
    }
    return rc;
}

/* include FILE | GLOB: a glob's files in sorted order, as nginx (no match is fine) */
static int zg_cp_include(zg_cf_t *cp)
{
    zg_str_t *a = cp->args;
    glob_t g;
    char *path;
    int rc = ZG_OK, grc;

    if (zg_cp_priv(cp)->depth >= ZG_CONF_MAX_INCLUDE_DEPTH) {
        return zg_conf_error(cp, "too deep include nesting (more than %d) in \"include\" directive",
                             ZG_CONF_MAX_INCLUDE_DEPTH);
    }
    path = zg_conf_path(cp, &a[1]);
    if (path == NULL) {
        return zg_conf_nomem(cp);
    }
    if (strpbrk(path, "*?[") == NULL) {
        return zg_cp_include_file(cp, path);
    }
    grc = glob(path, 0, NULL, &g);
    if (grc == GLOB_NOMATCH) {
        return ZG_OK;
    }
    if (grc != 0) {
        return grc == GLOB_NOSPACE ? zg_conf_nomem(cp)
                                   : zg_conf_error(cp, "glob() \"%s\" failed", path);
    }
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (zg_cp_include_file(cp, g.gl_pathv[i]) != ZG_OK) {
            rc = ZG_ERROR;
            if (zg_cp_priv(cp)->fatal) {
                break;
            }
        }
    }
    globfree(&g);
    return rc;
}

int zg_conf_block(zg_cf_t *cf, int ctx, void **loc_conf, void *block)
{
    int saved_ctx = cf->ctx, line = cf->line, rc;
    void **saved_loc = cf->loc_conf, *saved_block = cf->block;
    const char *file = cf->file, *name = cf->name;
    zg_str_t *args = cf->args;
    int nargs = cf->nargs;

    cf->ctx = ctx;
    cf->loc_conf = loc_conf;
    cf->block = block;
    zg_cp_priv(cf)->blocks++;
    rc = zg_cp_block(cf, zg_cp_in(cf), 1);
    cf->ctx = saved_ctx;
    cf->loc_conf = saved_loc;
    cf->block = saved_block;
    /* the block directive is the one being handled again */
    cf->file = file;
    cf->line = line;
    cf->name = name;
    cf->args = args;
    cf->nargs = nargs;
    return rc;
}

int zg_conf_block_raw(zg_cf_t *cf, zg_conf_raw_pt handler, void *data)
{
    zg_cp_priv_t *priv = zg_cp_priv(cf);
    zg_conf_raw_pt saved = priv->raw;
    void *saved_data = priv->raw_data;
    int rc;

    priv->raw = handler;
    priv->raw_data = data;
    rc = zg_conf_block(cf, cf->ctx, cf->loc_conf, cf->block);
    priv->raw = saved;
    priv->raw_data = saved_data;
    return rc;
}

void **zg_conf_create_loc_confs(zg_cf_t *cf)
{
    void **confs = zg_conf_alloc(cf->conf, ZG_MAX_MODULES * sizeof(void *));

    if (confs == NULL) {
        return NULL;
    }
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->create_loc_conf != NULL) {
            confs[i] = zg_modules[i]->create_loc_conf(cf->conf);
            if (confs[i] == NULL) {
                return NULL;
            }
        }
    }
    return confs;
}

int zg_conf_merge_loc_confs(zg_cf_t *cf, void **parent, void **child)
{
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->merge_loc_conf != NULL
            && zg_modules[i]->merge_loc_conf(cf, parent[i], child[i]) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

int zg_conf_flag(zg_cf_t *cp, const zg_str_t *v, int *out)
{
    if (zg_conf_eq(v, "on")) {
        *out = 1;
    } else if (zg_conf_eq(v, "off")) {
        *out = 0;
    } else {
        return zg_conf_error(cp, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"",
                             v->data, cp->name);
    }
    return ZG_OK;
}

/* ----------------------------------------------------------------- zones */

int zg_conf_zone_ref_add(zg_cf_t *cf, zg_conf_zone_ref_t **refs, int *nrefs,
                         const char *name, size_t len, void *level, int idx)
{
    zg_conf_zone_ref_t *r = zg_conf_grow(cf->conf, *refs, nrefs, sizeof(**refs));

    if (r == NULL) {
        return zg_conf_nomem(cf);
    }
    *refs = r;
    r = &r[*nrefs - 1];
    r->name = zg_conf_strdup(cf->conf, name, len);
    if (r->name == NULL) {
        return zg_conf_nomem(cf);
    }
    r->directive = cf->name;
    r->file = cf->file;
    r->line = cf->line;
    r->level = level;
    r->idx = idx;
    return ZG_OK;
}

void *zg_conf_zone_ref_conf(zg_cf_t *cf, const zg_conf_zone_ref_t *r,
                            const zg_zone_kind_t *kind)
{
    zg_zone_t *z = zg_zone_find(&cf->conf->zones, r->name);

    if (z == NULL || z->kind != kind) {
        zg_conf_error_at(cf, r->file, r->line, "unknown %s_zone \"%s\" in \"%s\" directive",
                         kind->name, r->name, r->directive);
        return NULL;
    }
    return z->conf;
}

/* "zone=NAME:SIZE" -> name, size; declares the zone */
int zg_conf_zone(zg_cf_t *cp, const char *name, size_t nlen, const zg_str_t *name_arg,
                      const char *size_text, size_t size_len, const zg_str_t *size_arg,
                      const zg_zone_kind_t *kind, zg_zone_t **out)
{
    char zname[64], zerr[256];
    int64_t size;
    size_t rounded;
    zg_zone_t *z;

    if (nlen == 0 || nlen >= sizeof(zname)) {
        return zg_conf_error(cp, "invalid zone name \"%s\"", name_arg->data);
    }
    memcpy(zname, name, nlen);
    zname[nlen] = '\0';
    /* nginx 1.22 sizes zones with ngx_parse_size: k and m, no g */
    size = size_len > 0 && (size_text[size_len - 1] == 'g' || size_text[size_len - 1] == 'G')
               ? -1
               : zg_conf_parse_size(size_text, size_len);
    if (size < 0) {
        return zg_conf_error(cp, "invalid zone size \"%s\" in \"%s\" directive", size_arg->data,
                         cp->name);
    }
    if (size < ZG_ZONE_MIN_PAGES * ZG_SLAB_PAGE_SIZE) {
        /* nginx's words: the parameter for limit_*_zone, the name for upstream zone */
        return zg_conf_error(cp, "zone \"%s\" is too small", name_arg->data);
    }
    rounded = zg_align((size_t)size, ZG_SLAB_PAGE_SIZE);
    z = zg_zone_find(&cp->conf->zones, zname);
    if (z != NULL && z->kind != kind) {
        return zg_conf_error(cp, "the shared memory zone \"%s\" is already declared for a different use",
                         zname);
    }
    if (z != NULL && z->size != 0 && z->size != rounded) {
        return zg_conf_error(cp,
                         "the size %zu of shared memory zone \"%s\" conflicts with already declared size %zu",
                         rounded, zname, z->size);
    }
    if (z != NULL) {
        return zg_conf_error(cp, "duplicate zone \"%s\"", zname);
    }
    zerr[0] = '\0';
    z = zg_zone_declare(&cp->conf->zones, zname, kind, (size_t)size, zerr, sizeof(zerr));
    if (z == NULL) {
        return zg_conf_error(cp, "%s", zerr[0] ? zerr : "invalid zone");
    }
    *out = z;
    return ZG_OK;
}

int zg_conf_zone_param(zg_cf_t *cp, const zg_str_t *v, const zg_zone_kind_t *kind,
                       zg_zone_t **out)
{
    const char *name = v->data + 5, *colon;

    colon = memchr(name, ':', v->len - 5);
    if (colon == NULL) {
        return zg_conf_error(cp, "invalid zone size \"%s\" in \"%s\" directive", v->data,
                         cp->name);
    }
    return zg_conf_zone(cp, name, (size_t)(colon - name), v, colon + 1,
                      (size_t)(v->data + v->len - colon - 1), v, kind, out);
}

/* ----------------------------------------------------- settings setters */

#define ZG_FIELD(conf, cmd, type) ((type *)((char *)(conf) + (cmd)->offset))

int zg_conf_set_msec(zg_cf_t *cp, const zg_command_t *cmd, void *conf)
{
    zg_msec_t *f = ZG_FIELD(conf, cmd, zg_msec_t), v;

    if (*f != ZG_UNSET_MSEC) {
        return zg_conf_duplicate(cp);
    }
    v = zg_conf_parse_time(cp->args[1].data, cp->args[1].len);
    if (v == ZG_UNSET_MSEC) {
        return zg_conf_invalid(cp, &cp->args[1]);
    }
    *f = v;
    return ZG_OK;
}

int zg_conf_set_size(zg_cf_t *cp, const zg_command_t *cmd, void *conf)
{
    int64_t *f = ZG_FIELD(conf, cmd, int64_t), v;

    if (*f != ZG_UNSET_SIZE) {
        return zg_conf_duplicate(cp);
    }
    v = zg_conf_parse_size(cp->args[1].data, cp->args[1].len);
    if (v < 0) {
        return zg_conf_invalid(cp, &cp->args[1]);
    }
    *f = v;
    return ZG_OK;
}

/* an int field: v is the value read, valid the verdict on it */
static int zg_conf_set_int(zg_cf_t *cp, const zg_command_t *cmd, void *conf, int v, int valid)
{
    int *f = ZG_FIELD(conf, cmd, int);

    if (*f != ZG_UNSET) {
        return zg_conf_duplicate(cp);
    }
    if (!valid) {
        return zg_conf_invalid(cp, &cp->args[1]);
    }
    *f = v;
    return ZG_OK;
}

int zg_conf_set_num(zg_cf_t *cp, const zg_command_t *cmd, void *conf)
{
    int v = zg_conf_atoi(cp->args[1].data, cp->args[1].len);

    return zg_conf_set_int(cp, cmd, conf, v, v >= 0);
}

int zg_conf_set_count(zg_cf_t *cp, const zg_command_t *cmd, void *conf)
{
    int v = zg_conf_atoi(cp->args[1].data, cp->args[1].len);

    return zg_conf_set_int(cp, cmd, conf, v, v >= 1);
}

int zg_conf_set_status(zg_cf_t *cp, const zg_command_t *cmd, void *conf)
{
    int v = zg_conf_atoi(cp->args[1].data, cp->args[1].len);

    return zg_conf_set_int(cp, cmd, conf, v, v >= 400 && v <= 599);
}

int zg_conf_set_level(zg_cf_t *cp, const zg_command_t *cmd, void *conf)
{
    int v = zg_log_level_parse(cp->args[1].data, cp->args[1].len);

    return zg_conf_set_int(cp, cmd, conf, v,
                           v == ZG_LOG_INFO || v == ZG_LOG_NOTICE || v == ZG_LOG_WARN
                               || v == ZG_LOG_ERR);
}

int zg_conf_set_flag(zg_cf_t *cp, const zg_command_t *cmd, void *conf)
{
    int *f = ZG_FIELD(conf, cmd, int);

    if (*f != ZG_UNSET) {
        return zg_conf_duplicate(cp);
    }
    return zg_conf_flag(cp, &cp->args[1], f);
}

int zg_conf_set_noop_flag(zg_cf_t *cp, const zg_command_t *cmd, void *conf)
{
    int f;

    (void)cmd;
    (void)conf;
    return zg_conf_flag(cp, &cp->args[1], &f);
}

int zg_conf_set_noop_size(zg_cf_t *cp, const zg_command_t *cmd, void *conf)
{
    (void)cmd;
    (void)conf;
    if (zg_conf_parse_size(cp->args[1].data, cp->args[1].len) < 0) {
        return zg_conf_error(cp, "invalid value \"%s\" in \"%s\" directive", cp->args[1].data,
                             cp->name);
    }
    return ZG_OK;
}

int zg_conf_set_noop_word(zg_cf_t *cp, const zg_command_t *cmd, void *conf)
{
    (void)conf;
    for (const char *const *w = cmd->post; *w != NULL; w++) {
        if (zg_conf_eq(&cp->args[1], *w)) {
            return ZG_OK;
        }
    }
    return zg_conf_error(cp, "invalid value \"%s\" in \"%s\" directive", cp->args[1].data,
                         cp->name);
}

/* ----------------------------------------------------------------- load */

static zg_conf_t *zg_conf_parse(zg_conf_t *conf, zg_cfile_t *cf, char *err, size_t errlen)
{
    zg_cp_priv_t priv;
    zg_cf_t cp;

    memset(&priv, 0, sizeof(priv));
    memset(&cp, 0, sizeof(cp));
    priv.err = err;
    priv.errlen = errlen;
    cp.priv = &priv;
    cp.conf = conf;
    cp.ctx = ZG_CTX_MAIN;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->create_main_conf != NULL) {
            conf->main_conf[i] = zg_modules[i]->create_main_conf(conf);
            if (conf->main_conf[i] == NULL) {
                zg_conf_nomem(&cp);
                goto failed;
            }
        }
    }
    /* every error of the files is reported; the checks after reading only run
     * on a config that read without error */
    if (zg_cp_block(&cp, cf, 0) != ZG_OK || priv.nerrors > 0) {
        goto failed;
    }
    /* after parsing: errors name their own file and line */
    cp.file = NULL;
    cp.line = 0;
    cp.ctx = 0;
    cp.loc_conf = NULL;
    cp.block = NULL;
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->init_main_conf != NULL
            && zg_modules[i]->init_main_conf(&cp, conf->main_conf[i]) != ZG_OK) {
            goto failed;
        }
    }
    {
        const char *vfile = NULL, *vname;
        int vline = 0;
        vname = zg_vars_undefined(((zg_conf_arena_t *)conf->arena)->vars, &vfile, &vline);
        if (vname != NULL) {
            zg_conf_error_at(&cp, vfile, vline, "unknown \"%s\" variable", vname);
            goto failed;
        }
    }
    return conf;
failed:
    zg_conf_free(conf);
    return NULL;
}

static char *zg_conf_dirname(zg_conf_t *conf, const char *file)
{
    const char *slash = strrchr(file, '/');

    if (slash == NULL) {
        return zg_conf_strdup(conf, ".", 1);
    }
    if (slash == file) {
        return zg_conf_strdup(conf, "/", 1);
    }
    return zg_conf_strdup(conf, file, (size_t)(slash - file));
}

zg_conf_t *zg_conf_load(const char *file, char *err, size_t errlen)
{
    zg_buf_t text = ZG_BUF_INIT;
    zg_conf_t *conf;
    zg_cp_priv_t priv;
    zg_cf_t cp;
    zg_cfile_t cf;
    char *abs;

    zg_modules_init();
    conf = zg_conf_create();
    if (conf == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    abs = realpath(file, NULL);
    conf->file = zg_conf_strdup(conf, abs != NULL ? abs : file, strlen(abs != NULL ? abs : file));
    free(abs);
    if (conf->file == NULL || (conf->prefix = zg_conf_dirname(conf, conf->file)) == NULL) {
        snprintf(err, errlen, "out of memory");
        zg_conf_free(conf);
        return NULL;
    }
    memset(&priv, 0, sizeof(priv));
    memset(&cp, 0, sizeof(cp));
    priv.err = err;
    priv.errlen = errlen;
    cp.priv = &priv;
    cp.conf = conf;
    if (zg_cp_read_file(&cp, conf->file, &cf, &text) != ZG_OK) {
        zg_buf_free(&text);
        zg_conf_free(conf);
        return NULL;
    }
    conf = zg_conf_parse(conf, &cf, err, errlen);
    zg_buf_free(&text);
    return conf;
}

zg_conf_t *zg_conf_load_string(const char *name, const char *text, size_t len, char *err,
                               size_t errlen)
{
    zg_conf_t *conf;
    zg_cfile_t cf;

    zg_modules_init();
    conf = zg_conf_create();
    if (conf == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    conf->file = zg_conf_strdup(conf, name, strlen(name));
    if (conf->file == NULL || (conf->prefix = zg_conf_dirname(conf, conf->file)) == NULL) {
        snprintf(err, errlen, "out of memory");
        zg_conf_free(conf);
        return NULL;
    }
    cf.file = conf->file;
    cf.p = text;
    cf.end = text + len;
    cf.line = 1;
    return zg_conf_parse(conf, &cf, err, errlen);
}
