/* zg_conf.c — nginx-syntax configuration: tokenizer, directive table, merge. */
#include "zg_conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zg_limit_conn.h"
#include "zg_limit_req.h"
#include "zg_log.h"
#include "zg_upstream.h"
#include "zg_vars.h"

#define ZG_CONF_MAX_INCLUDE_DEPTH 16
#define ZG_CONF_MAX_FILE (16 * 1024 * 1024)
#define ZG_CONF_DEFAULT_PORT 80 /* a server without `listen` listens on *:80, as nginx */

/* contexts */
#define ZG_CTX_MAIN 0x01
#define ZG_CTX_EVENTS 0x02
#define ZG_CTX_HTTP 0x04
#define ZG_CTX_SRV 0x08
#define ZG_CTX_LOC 0x10
#define ZG_CTX_UPS 0x20
#define ZG_CTX_SETTINGS (ZG_CTX_HTTP | ZG_CTX_SRV | ZG_CTX_LOC)
#define ZG_CTX_ANY 0x3f

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

typedef struct {
    zg_conf_mem_t *mem;
    zg_conf_cvs_t *cvs;
} zg_conf_arena_t;

/* one file being read */
typedef struct {
    const char *file;
    const char *p, *end;
    int line;
} zg_cf_t;

typedef struct {
    zg_addr_t addr;
    int default_server;
    const char *file;
    int line;
} zg_cp_listen_t;

typedef struct {
    zg_server_conf_t srv;
    zg_location_t **locs;
    int nlocs;
    zg_cp_listen_t *listens;
    int nlistens;
    char **names;
    int nnames;
} zg_cp_srv_t;

/* a limit_req / limit_conn naming a zone that may be declared later */
typedef struct {
    zg_settings_t *s;
    int idx;
    int conn;
    const char *name;
    const char *file;
    int line;
} zg_cp_zone_ref_t;

typedef struct {
    zg_location_t *loc;
    const char *url;     /* as written */
    const char *host;    /* "name" or "host:port" */
    const char *file;
    int line;
} zg_cp_proxy_t;

typedef struct {
    zg_conf_t *conf;
    char *err;
    size_t errlen;
    zg_cf_t *cf;
    int line;            /* of the directive being handled */
    const char *name;    /* of the directive being handled */
    int ctx;
    int depth;
    zg_settings_t *s;
    zg_cp_srv_t *srv;
    zg_location_t *loc;
    zg_upstream_conf_t *ups;
    zg_upstream_conf_t **ups_tail;
    zg_cp_srv_t **srvs;
    int nsrvs;
    zg_cp_zone_ref_t *refs;
    int nrefs;
    zg_cp_proxy_t *proxies;
    int nproxies;
    int http_seen;
    int events_seen;
} zg_cp_t;

typedef struct zg_cp_cmd_s zg_cp_cmd_t;
typedef int (*zg_cp_handler_pt)(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n);

struct zg_cp_cmd_s {
    const char *name;
    int ctx;
    int block;
    int min, max;        /* arguments after the name; max -1 = any */
    zg_cp_handler_pt handler;
    size_t offset;       /* into zg_settings_t, for the generic setters */
};

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
static void *zg_cp_grow(zg_conf_t *conf, void *arr, int *n, size_t size)
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

#define zg_cp_push(cp, arr, n)                                                         \
    (((arr) = zg_cp_grow((cp)->conf, (arr), &(n), sizeof(*(arr)))) == NULL            \
         ? NULL                                                                        \
         : &(arr)[(n) - 1])

/* --------------------------------------------------------------- errors */

static int zg_cp_verr_at(zg_cp_t *cp, const char *file, int line, const char *fmt,
                         va_list ap)
{
    int k;

    if (cp->err == NULL || cp->errlen == 0) {
        return ZG_ERROR;
    }
    k = vsnprintf(cp->err, cp->errlen, fmt, ap);
    if (k >= 0 && (size_t)k < cp->errlen && file != NULL) {
        snprintf(cp->err + k, cp->errlen - (size_t)k, " in %s:%d", file, line);
    }
    return ZG_ERROR;
}

static int zg_cp_err(zg_cp_t *cp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int zg_cp_err_at(zg_cp_t *cp, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* error at the directive being handled */
static int zg_cp_err(zg_cp_t *cp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    zg_cp_verr_at(cp, cp->cf != NULL ? cp->cf->file : NULL, cp->line, fmt, ap);
    va_end(ap);
    return ZG_ERROR;
}

static int zg_cp_err_at(zg_cp_t *cp, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    zg_cp_verr_at(cp, file, line, fmt, ap);
    va_end(ap);
    return ZG_ERROR;
}

static int zg_cp_nomem(zg_cp_t *cp)
{
    return zg_cp_err(cp, "out of memory");
}

static int zg_cp_invalid(zg_cp_t *cp, const zg_str_t *v)
{
    return zg_cp_err(cp, "invalid value \"%s\" in \"%s\" directive", v->data, cp->name);
}

static int zg_cp_duplicate(zg_cp_t *cp)
{
    return zg_cp_err(cp, "\"%s\" directive is duplicate", cp->name);
}

static int zg_cp_bad_param(zg_cp_t *cp, const zg_str_t *v)
{
    return zg_cp_err(cp, "invalid parameter \"%s\" in \"%s\" directive", v->data, cp->name);
}

/* -------------------------------------------------------------- values */

static int zg_cp_prefix(const zg_str_t *v, const char *p)
{
    size_t n = strlen(p);
    return v->len >= n && memcmp(v->data, p, n) == 0;
}

static int zg_cp_eq(const zg_str_t *v, const char *p)
{
    return v->len == strlen(p) && memcmp(v->data, p, v->len) == 0;
}

/* non-negative decimal up to INT_MAX; -1 on error */
static int zg_cp_atoi(const char *s, size_t len)
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

    if (a->sa.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(a->text, sizeof(a->text), "[%s]:%d", ip, ntohs(sin6->sin6_port));
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(a->text, sizeof(a->text), "%s:%d", ip, ntohs(sin->sin_port));
    }
}

static int zg_addr_set(zg_addr_t *out, int family, const void *ip, int port)
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

int zg_conf_parse_addr(const char *s, size_t len, int default_port, zg_addr_t *out)
{
    char host[256];
    const char *h, *colon = NULL, *ps = NULL;
    size_t hlen;
    int port, all_digits = len > 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            all_digits = 0;
        }
        if (s[i] == '\0') {
            return ZG_ERROR;
        }
    }
    if (all_digits) {
        port = zg_cp_atoi(s, len);
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
        port = zg_cp_atoi(ps, (size_t)(s + len - ps));
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

static int zg_addr_eq(const zg_addr_t *a, const zg_addr_t *b)
{
    if (a->sa.ss_family != b->sa.ss_family) {
        return 0;
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
static char *zg_cp_path(zg_cp_t *cp, const zg_str_t *v)
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

static zg_cv_t *zg_cp_cv(zg_cp_t *cp, const char *text, size_t len)
{
    char cerr[256];
    zg_conf_arena_t *a = cp->conf->arena;
    zg_conf_cvs_t *c;
    zg_cv_t *cv;

    c = zg_conf_alloc(cp->conf, sizeof(*c));
    if (c == NULL) {
        zg_cp_nomem(cp);
        return NULL;
    }
    cerr[0] = '\0';
    cv = zg_cv_compile(text, len, cerr, sizeof(cerr));
    if (cv == NULL) {
        zg_cp_err(cp, "%s", cerr[0] ? cerr : "invalid value");
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

static int zg_cf_copy(zg_cp_t *cp, const char *s, size_t len, zg_str_t *out)
{
    char *d = zg_conf_alloc(cp->conf, len + 1);
    size_t k = 0;

    if (d == NULL) {
        return zg_cp_nomem(cp);
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0') {
            return zg_cp_err_at(cp, cp->cf->file, cp->cf->line, "unexpected NUL byte");
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
static int zg_cf_token(zg_cp_t *cp, zg_cf_t *cf, zg_str_t *out, int *line)
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
            return zg_cp_err_at(cp, cf->file, cf->line,
                                "unexpected end of file, expecting \";\" or \"}\"");
        }
        if (zg_cf_copy(cp, start, (size_t)(cf->p - start), out) != ZG_OK) {
            return ZG_ERROR;
        }
        cf->p++;
        if (cf->p < cf->end && !zg_cf_space(*cf->p) && *cf->p != ';' && *cf->p != '{') {
            if (*cf->p == '\0') {
                return zg_cp_err_at(cp, cf->file, cf->line, "unexpected NUL byte");
            }
            return zg_cp_err_at(cp, cf->file, cf->line, "unexpected \"%c\"", *cf->p);
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

static int zg_cp_block(zg_cp_t *cp, zg_cf_t *cf, int in_block);
static const zg_cp_cmd_t zg_cp_cmds[];

static int zg_cp_dispatch(zg_cp_t *cp, zg_str_t *a, int n, int term)
{
    const zg_cp_cmd_t *cmd, *found = NULL;
    int known = 0;

    for (cmd = zg_cp_cmds; cmd->name != NULL; cmd++) {
        if (!zg_cp_eq(&a[0], cmd->name)) {
            continue;
        }
        known = 1;
        if (cmd->ctx & cp->ctx) {
            found = cmd;
            break;
        }
    }
    cp->name = a[0].data;
    if (!known) {
        return zg_cp_err(cp, "unknown directive \"%s\"", a[0].data);
    }
    if (found == NULL) {
        return zg_cp_err(cp, "\"%s\" directive is not allowed here", a[0].data);
    }
    if (found->block && term != ZG_TK_LBRACE) {
        return zg_cp_err(cp, "directive \"%s\" has no opening \"{\"", a[0].data);
    }
    if (!found->block && term != ZG_TK_SEMI) {
        return zg_cp_err(cp, "directive \"%s\" is not terminated by \";\"", a[0].data);
    }
    if (n - 1 < found->min || (found->max >= 0 && n - 1 > found->max)) {
        return zg_cp_err(cp, "invalid number of arguments in \"%s\" directive", a[0].data);
    }
    return found->handler(cp, found, a, n);
}

static int zg_cp_block(zg_cp_t *cp, zg_cf_t *cf, int in_block)
{
    zg_cf_t *saved = cp->cf;
    zg_str_t *args = NULL, w;
    int nargs, t, line = 0, tline = 0, rc;

    for (;;) {
        nargs = 0;
        for (;;) {
            cp->cf = cf;
            t = zg_cf_token(cp, cf, &w, &tline);
            if (t == ZG_ERROR) {
                return ZG_ERROR;
            }
            if (t != ZG_TK_WORD) {
                break;
            }
            if (nargs == 0) {
                line = tline;
            }
            if (zg_cp_push(cp, args, nargs) == NULL) {
                return zg_cp_nomem(cp);
            }
            args[nargs - 1] = w;
        }
        switch (t) {
        case ZG_TK_EOF:
            if (nargs > 0) {
                return zg_cp_err_at(cp, cf->file, cf->line,
                                    "unexpected end of file, expecting \";\" or \"}\"");
            }
            if (in_block) {
                return zg_cp_err_at(cp, cf->file, cf->line,
                                    "unexpected end of file, expecting \"}\"");
            }
            cp->cf = saved;
            return ZG_OK;
        case ZG_TK_RBRACE:
            if (nargs > 0 || !in_block) {
                return zg_cp_err_at(cp, cf->file, tline, "unexpected \"}\"");
            }
            cp->cf = saved;
            return ZG_OK;
        default:
            if (nargs == 0) {
                return zg_cp_err_at(cp, cf->file, tline, "unexpected \"%c\"",
                                    t == ZG_TK_SEMI ? ';' : '{');
            }
            cp->line = line;
            rc = zg_cp_dispatch(cp, args, nargs, t);
            if (rc != ZG_OK) {
                return rc;
            }
            args = NULL; /* the handler may keep the strings, not the array */
        }
    }
}

/* reads FILE (already a full path) into the arena */
static int zg_cp_read_file(zg_cp_t *cp, const char *path, zg_cf_t *cf)
{
    struct stat st;
    char *buf;
    ssize_t r;
    size_t len = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1 || fstat(fd, &st) == -1) {
        int e = errno;
        if (fd != -1) {
            close(fd);
        }
        if (cp->cf == NULL) {
            zg_cp_err_at(cp, NULL, 0, "open() \"%s\" failed (%d: %s)", path, e, strerror(e));
        } else {
            zg_cp_err(cp, "open() \"%s\" failed (%d: %s)", path, e, strerror(e));
        }
        return ZG_ERROR;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > ZG_CONF_MAX_FILE) {
        close(fd);
        return cp->cf == NULL
                   ? zg_cp_err_at(cp, NULL, 0, "\"%s\" is not a regular file of at most 16M", path)
                   : zg_cp_err(cp, "\"%s\" is not a regular file of at most 16M", path);
    }
    buf = zg_conf_alloc(cp->conf, ZG_CONF_MAX_FILE + 1 < (size_t)st.st_size + 4096
                                      ? ZG_CONF_MAX_FILE + 1
                                      : (size_t)st.st_size + 4096);
    if (buf == NULL) {
        close(fd);
        return zg_cp_nomem(cp);
    }
    for (;;) {
        size_t cap = (size_t)st.st_size + 4096;
        if (cap > ZG_CONF_MAX_FILE + 1) {
            cap = ZG_CONF_MAX_FILE + 1;
        }
        if (len == cap) {
            break;
        }
        r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    if (len > ZG_CONF_MAX_FILE) {
        return cp->cf == NULL
                   ? zg_cp_err_at(cp, NULL, 0, "\"%s\" is not a regular file of at most 16M", path)
                   : zg_cp_err(cp, "\"%s\" is not a regular file of at most 16M", path);
    }
    cf->file = zg_conf_strdup(cp->conf, path, strlen(path));
    if (cf->file == NULL) {
        return zg_cp_nomem(cp);
    }
    cf->p = buf;
    cf->end = buf + len;
    cf->line = 1;
    return ZG_OK;
}

/* --------------------------------------------------------- main context */

static int zg_cp_include(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_cf_t cf;
    char *path;
    int rc;

    (void)cmd;
    (void)n;
    if (cp->depth >= ZG_CONF_MAX_INCLUDE_DEPTH) {
        return zg_cp_err(cp, "too deep include nesting (more than %d) in \"include\" directive",
                         ZG_CONF_MAX_INCLUDE_DEPTH);
    }
    path = zg_cp_path(cp, &a[1]);
    if (path == NULL) {
        return zg_cp_nomem(cp);
    }
    if (zg_cp_read_file(cp, path, &cf) != ZG_OK) {
        return ZG_ERROR;
    }
    cp->depth++;
    rc = zg_cp_block(cp, &cf, 0);
    cp->depth--;
    return rc;
}

static int zg_cp_worker_processes(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    int v;

    (void)cmd;
    (void)n;
    if (cp->conf->worker_processes != ZG_UNSET) {
        return zg_cp_duplicate(cp);
    }
    if (zg_cp_eq(&a[1], "auto")) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        v = (int)zg_max(1, zg_min(c, ZG_MAX_WORKERS / 2));
    } else {
        v = zg_cp_atoi(a[1].data, a[1].len);
        if (v < 1 || v > ZG_MAX_WORKERS / 2) {
            return zg_cp_invalid(cp, &a[1]);
        }
    }
    cp->conf->worker_processes = v;
    return ZG_OK;
}

static int zg_cp_main_num(zg_cp_t *cp, int *field, zg_str_t *v, int min)
{
    int k;

    if (*field != ZG_UNSET) {
        return zg_cp_duplicate(cp);
    }
    k = zg_cp_atoi(v->data, v->len);
    if (k < min) {
        return zg_cp_invalid(cp, v);
    }
    *field = k;
    return ZG_OK;
}

static int zg_cp_worker_connections(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a,
                                    int n)
{
    (void)cmd;
    (void)n;
    return zg_cp_main_num(cp, &cp->conf->worker_connections, &a[1], 1);
}

static int zg_cp_worker_rlimit_nofile(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a,
                                      int n)
{
    (void)cmd;
    (void)n;
    return zg_cp_main_num(cp, &cp->conf->worker_rlimit_nofile, &a[1], 1);
}

static int zg_cp_flag(zg_cp_t *cp, zg_str_t *v, int *out)
{
    if (zg_cp_eq(v, "on")) {
        *out = 1;
    } else if (zg_cp_eq(v, "off")) {
        *out = 0;
    } else {
        return zg_cp_err(cp, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"",
                         v->data, cp->name);
    }
    return ZG_OK;
}

static int zg_cp_daemon(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    (void)cmd;
    (void)n;
    if (cp->conf->daemon != ZG_UNSET) {
        return zg_cp_duplicate(cp);
    }
    return zg_cp_flag(cp, &a[1], &cp->conf->daemon);
}

static int zg_cp_pid(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    (void)cmd;
    (void)n;
    if (cp->conf->pid_file != NULL) {
        return zg_cp_duplicate(cp);
    }
    cp->conf->pid_file = zg_cp_path(cp, &a[1]);
    return cp->conf->pid_file != NULL ? ZG_OK : zg_cp_nomem(cp);
}

static int zg_cp_error_log(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    int level = ZG_LOG_ERR;

    (void)cmd;
    if (cp->conf->error_log_file != NULL) {
        return zg_cp_duplicate(cp);
    }
    if (n > 2) {
        level = zg_log_level_parse(a[2].data, a[2].len);
        if (level < 0) {
            return zg_cp_invalid(cp, &a[2]);
        }
    }
    if (zg_cp_eq(&a[1], "stderr")) {
        cp->conf->error_log_file = zg_conf_strdup(cp->conf, "stderr", 6);
    } else {
        cp->conf->error_log_file = zg_cp_path(cp, &a[1]);
    }
    if (cp->conf->error_log_file == NULL) {
        return zg_cp_nomem(cp);
    }
    cp->conf->error_log_level = level;
    return ZG_OK;
}

static int zg_cp_enter(zg_cp_t *cp, int ctx)
{
    int saved = cp->ctx, rc;

    cp->ctx = ctx;
    rc = zg_cp_block(cp, cp->cf, 1);
    cp->ctx = saved;
    return rc;
}

static int zg_cp_events(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    (void)cmd;
    (void)a;
    (void)n;
    if (cp->events_seen) {
        return zg_cp_duplicate(cp);
    }
    cp->events_seen = 1;
    return zg_cp_enter(cp, ZG_CTX_EVENTS);
}

static int zg_cp_http(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    int rc;

    (void)cmd;
    (void)a;
    (void)n;
    if (cp->http_seen) {
        return zg_cp_duplicate(cp);
    }
    cp->http_seen = 1;
    cp->s = &cp->conf->http;
    rc = zg_cp_enter(cp, ZG_CTX_HTTP);
    cp->s = NULL;
    return rc;
}

/* --------------------------------------------------------- http context */

static void zg_settings_init(zg_settings_t *s)
{
    memset(s, 0, sizeof(*s));
    s->nset_headers = -1;
    s->proxy_connect_timeout = ZG_UNSET_MSEC;
    s->proxy_read_timeout = ZG_UNSET_MSEC;
    s->proxy_send_timeout = ZG_UNSET_MSEC;
    s->proxy_next_upstream = ZG_UNSET;
    s->proxy_next_upstream_tries = ZG_UNSET;
    s->client_header_timeout = ZG_UNSET_MSEC;
    s->client_body_timeout = ZG_UNSET_MSEC;
    s->send_timeout = ZG_UNSET_MSEC;
    s->keepalive_timeout = ZG_UNSET_MSEC;
    s->client_max_body_size = ZG_UNSET_SIZE;
    s->large_header_buffers = ZG_UNSET;
    s->large_header_size = ZG_UNSET_SIZE;
    s->nlimit_req = -1;
    s->limit_req_status = ZG_UNSET;
    s->limit_req_log_level = ZG_UNSET;
    s->limit_req_dry_run = ZG_UNSET;
    s->limit_req_headers = ZG_UNSET;
    s->nlimit_conn = -1;
    s->limit_conn_status = ZG_UNSET;
    s->limit_conn_log_level = ZG_UNSET;
    s->limit_conn_dry_run = ZG_UNSET;
    s->nrules = -1;
}

static int zg_cp_server(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_cp_srv_t *ps, **slot;
    int rc;

    (void)cmd;
    (void)a;
    (void)n;
    ps = zg_conf_alloc(cp->conf, sizeof(*ps));
    slot = zg_cp_push(cp, cp->srvs, cp->nsrvs);
    if (ps == NULL || slot == NULL) {
        return zg_cp_nomem(cp);
    }
    *slot = ps;
    zg_settings_init(&ps->srv.s);
    ps->srv.file = cp->cf->file;
    ps->srv.line = cp->line;
    cp->srv = ps;
    cp->s = &ps->srv.s;
    rc = zg_cp_enter(cp, ZG_CTX_SRV);
    cp->srv = NULL;
    cp->s = &cp->conf->http;
    return rc;
}

static zg_upstream_conf_t *zg_cp_find_upstream(zg_cp_t *cp, const char *name, int implicit)
{
    for (zg_upstream_conf_t *u = cp->conf->upstreams; u != NULL; u = u->next) {
        if ((int)u->implicit == implicit && strcmp(u->name, name) == 0) {
            return u;
        }
    }
    return NULL;
}

static zg_upstream_conf_t *zg_cp_new_upstream(zg_cp_t *cp, const char *name)
{
    zg_upstream_conf_t *u = zg_conf_alloc(cp->conf, sizeof(*u));

    if (u == NULL) {
        return NULL;
    }
    snprintf(u->name, sizeof(u->name), "%s", name);
    u->file = cp->cf != NULL ? cp->cf->file : NULL;
    u->line = cp->line;
    if (cp->ups_tail == NULL) {
        cp->ups_tail = &cp->conf->upstreams;
    }
    *cp->ups_tail = u;
    cp->ups_tail = &u->next;
    return u;
}

static int zg_cp_upstream(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_upstream_conf_t *u;
    int rc;

    (void)cmd;
    (void)n;
    if (a[1].len == 0 || a[1].len >= sizeof(u->name)) {
        return zg_cp_invalid(cp, &a[1]);
    }
    if (zg_cp_find_upstream(cp, a[1].data, 0) != NULL) {
        return zg_cp_err(cp, "duplicate upstream \"%s\"", a[1].data);
    }
    u = zg_cp_new_upstream(cp, a[1].data);
    if (u == NULL) {
        return zg_cp_nomem(cp);
    }
    cp->ups = u;
    rc = zg_cp_enter(cp, ZG_CTX_UPS);
    cp->ups = NULL;
    if (rc == ZG_OK && u->nservers == 0) {
        return zg_cp_err_at(cp, u->file, u->line, "no servers are inside upstream");
    }
    return rc;
}

/* "zone=NAME:SIZE" -> name, size; declares the zone */
static int zg_cp_zone(zg_cp_t *cp, const char *name, size_t nlen, const zg_str_t *name_arg,
                      const char *size_text, size_t size_len, const zg_str_t *size_arg,
                      int kind, zg_zone_t **out)
{
    char zname[64], zerr[256];
    int64_t size;
    size_t rounded;
    zg_zone_t *z;

    if (nlen == 0 || nlen >= sizeof(zname)) {
        return zg_cp_err(cp, "invalid zone name \"%s\"", name_arg->data);
    }
    memcpy(zname, name, nlen);
    zname[nlen] = '\0';
    size = zg_conf_parse_size(size_text, size_len);
    if (size < 0) {
        return zg_cp_err(cp, "invalid zone size \"%s\" in \"%s\" directive", size_arg->data,
                         cp->name);
    }
    if (size == 0) {
        return zg_cp_err(cp, "zero size shared memory zone \"%s\"", zname);
    }
    rounded = zg_align((size_t)size, ZG_SLAB_PAGE_SIZE);
    z = zg_zone_find(&cp->conf->zones, zname);
    if (z != NULL && z->kind != kind) {
        return zg_cp_err(cp, "the shared memory zone \"%s\" is already declared for a different use",
                         zname);
    }
    if (z != NULL && z->size != 0 && z->size != rounded) {
        return zg_cp_err(cp,
                         "the size %zu of shared memory zone \"%s\" conflicts with already declared size %zu",
                         rounded, zname, z->size);
    }
    if (z != NULL) {
        return zg_cp_err(cp, "duplicate zone \"%s\"", zname);
    }
    zerr[0] = '\0';
    z = zg_zone_declare(&cp->conf->zones, zname, kind, (size_t)size, zerr, sizeof(zerr));
    if (z == NULL) {
        return zg_cp_err(cp, "%s", zerr[0] ? zerr : "invalid zone");
    }
    *out = z;
    return ZG_OK;
}

static int zg_cp_zone_param(zg_cp_t *cp, const zg_str_t *v, int kind, zg_zone_t **out)
{
    const char *name = v->data + 5, *colon;

    colon = memchr(name, ':', v->len - 5);
    if (colon == NULL) {
        return zg_cp_err(cp, "invalid zone size \"%s\" in \"%s\" directive", v->data,
                         cp->name);
    }
    return zg_cp_zone(cp, name, (size_t)(colon - name), v, colon + 1,
                      (size_t)(v->data + v->len - colon - 1), v, kind, out);
}

/* redis://HOST:PORT[/DB] */
static int zg_cp_sync_url(zg_cp_t *cp, const zg_str_t *v, zg_limit_req_zone_conf_t *lz)
{
    const char *u = v->data + 5, *end = v->data + v->len, *h, *he, *ps, *pe;
    int port, db = 0;

    if (strncmp(u, "redis://", 8) != 0) {
        goto bad;
    }
    h = u + 8;
    if (h < end && *h == '[') {
        he = memchr(h, ']', (size_t)(end - h));
        if (he == NULL) {
            goto bad;
        }
        h++;
        ps = he + 1;
    } else {
        he = h;
        while (he < end && *he != ':' && *he != '/') {
            he++;
        }
        ps = he;
    }
    if (he == h || (size_t)(he - h) >= sizeof(lz->sync_host) || ps >= end || *ps != ':') {
        goto bad;
    }
    ps++;
    pe = ps;
    while (pe < end && *pe != '/') {
        pe++;
    }
    port = zg_cp_atoi(ps, (size_t)(pe - ps));
    if (port < 1 || port > 65535) {
        goto bad;
    }
    if (pe < end) {
        db = zg_cp_atoi(pe + 1, (size_t)(end - pe - 1));
        if (db < 0) {
            goto bad;
        }
    }
    memcpy(lz->sync_host, h, (size_t)(he - h));
    lz->sync_host[he - h] = '\0';
    lz->sync_port = port;
    lz->sync_db = db;
    lz->sync_url = zg_conf_strdup(cp->conf, u, (size_t)(end - u));
    return lz->sync_url != NULL ? ZG_OK : zg_cp_nomem(cp);
bad:
    return zg_cp_err(cp, "invalid sync URL \"%s\" in \"%s\" directive", u, cp->name);
}

static int zg_cp_limit_req_zone(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_limit_req_zone_conf_t *lz, **slot;
    zg_zone_t *z = NULL;
    zg_str_t *zone_arg = NULL;
    int64_t rate = 1, scale = 1;
    const char *rate_text = "1r/s";

    (void)cmd;
    lz = zg_conf_alloc(cp->conf, sizeof(*lz));
    if (lz == NULL) {
        return zg_cp_nomem(cp);
    }
    lz->sync_interval = 100;
    for (int i = 2; i < n; i++) {
        if (zg_cp_prefix(&a[i], "zone=")) {
            zone_arg = &a[i];
        } else if (zg_cp_prefix(&a[i], "rate=")) {
            size_t len = a[i].len - 5;
            const char *r = a[i].data + 5;
            if (len > 3 && memcmp(r + len - 3, "r/s", 3) == 0) {
                scale = 1;
            } else if (len > 3 && memcmp(r + len - 3, "r/m", 3) == 0) {
                scale = 60;
            } else {
                return zg_cp_err(cp, "invalid rate \"%s\" in \"%s\" directive", a[i].data,
                                 cp->name);
            }
            rate = zg_cp_atoi(r, len - 3);
            if (rate <= 0) {
                return zg_cp_err(cp, "invalid rate \"%s\" in \"%s\" directive", a[i].data,
                                 cp->name);
            }
            rate_text = r;
        } else if (zg_cp_prefix(&a[i], "sync=")) {
            if (zg_cp_sync_url(cp, &a[i], lz) != ZG_OK) {
                return ZG_ERROR;
            }
        } else if (zg_cp_prefix(&a[i], "sync_interval=")) {
            lz->sync_interval = zg_conf_parse_time(a[i].data + 14, a[i].len - 14);
            if (lz->sync_interval == ZG_UNSET_MSEC || lz->sync_interval == 0) {
                return zg_cp_bad_param(cp, &a[i]);
            }
        } else {
            return zg_cp_bad_param(cp, &a[i]);
        }
    }
    if (zone_arg == NULL) {
        return zg_cp_err(cp, "\"%s\" must have \"zone\" parameter", cp->name);
    }
    if (a[1].len == 0) {
        return zg_cp_invalid(cp, &a[1]);
    }
    lz->rate = (uint64_t)(rate * 1000 / scale);
    lz->rate_text = zg_conf_strdup(cp->conf, rate_text, strlen(rate_text));
    lz->key_text = zg_conf_strdup(cp->conf, a[1].data, a[1].len);
    if (lz->rate_text == NULL || lz->key_text == NULL) {
        return zg_cp_nomem(cp);
    }
    if (zg_cp_zone_param(cp, zone_arg, ZG_ZONE_LIMIT_REQ, &z) != ZG_OK) {
        return ZG_ERROR;
    }
    lz->zone = z;
    z->init = zg_limit_req_zone_init;
    z->conf = lz;
    lz->key = zg_cp_cv(cp, a[1].data, a[1].len);
    if (lz->key == NULL) {
        return ZG_ERROR;
    }
    slot = zg_cp_push(cp, cp->conf->limit_req_zones, cp->conf->nlimit_req_zones);
    if (slot == NULL) {
        return zg_cp_nomem(cp);
    }
    *slot = lz;
    return ZG_OK;
}

static int zg_cp_limit_conn_zone(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_limit_conn_zone_conf_t *lz, **slot;
    zg_zone_t *z = NULL;
    zg_str_t *zone_arg = NULL;

    (void)cmd;
    for (int i = 2; i < n; i++) {
        if (zg_cp_prefix(&a[i], "zone=")) {
            zone_arg = &a[i];
        } else {
            return zg_cp_bad_param(cp, &a[i]);
        }
    }
    if (zone_arg == NULL) {
        return zg_cp_err(cp, "\"%s\" must have \"zone\" parameter", cp->name);
    }
    if (a[1].len == 0) {
        return zg_cp_invalid(cp, &a[1]);
    }
    lz = zg_conf_alloc(cp->conf, sizeof(*lz));
    if (lz == NULL || (lz->key_text = zg_conf_strdup(cp->conf, a[1].data, a[1].len)) == NULL) {
        return zg_cp_nomem(cp);
    }
    if (zg_cp_zone_param(cp, zone_arg, ZG_ZONE_LIMIT_CONN, &z) != ZG_OK) {
        return ZG_ERROR;
    }
    lz->zone = z;
    z->init = zg_limit_conn_zone_init;
    z->conf = lz;
    lz->key = zg_cp_cv(cp, a[1].data, a[1].len);
    if (lz->key == NULL) {
        return ZG_ERROR;
    }
    slot = zg_cp_push(cp, cp->conf->limit_conn_zones, cp->conf->nlimit_conn_zones);
    if (slot == NULL) {
        return zg_cp_nomem(cp);
    }
    *slot = lz;
    return ZG_OK;
}

static zg_log_format_t *zg_cp_find_format(zg_cp_t *cp, const char *name)
{
    for (zg_log_format_t *f = cp->conf->log_formats; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            return f;
        }
    }
    return NULL;
}

static int zg_cp_add_format(zg_cp_t *cp, const char *name, const char *text, size_t len)
{
    zg_log_format_t *f = zg_conf_alloc(cp->conf, sizeof(*f)), **tail;

    if (f == NULL) {
        return zg_cp_nomem(cp);
    }
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->cv = zg_cp_cv(cp, text, len);
    if (f->cv == NULL) {
        return ZG_ERROR;
    }
    for (tail = &cp->conf->log_formats; *tail != NULL; tail = &(*tail)->next) {
        /* void */
    }
    *tail = f;
    return ZG_OK;
}

static int zg_cp_log_format(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    size_t len = 0;
    char *text, *p;

    (void)cmd;
    if (a[1].len == 0 || a[1].len >= sizeof(((zg_log_format_t *)0)->name)) {
        return zg_cp_invalid(cp, &a[1]);
    }
    if (zg_cp_find_format(cp, a[1].data) != NULL) {
        return zg_cp_err(cp, "duplicate \"log_format\" name \"%s\"", a[1].data);
    }
    for (int i = 2; i < n; i++) {
        len += a[i].len;
    }
    text = p = zg_conf_alloc(cp->conf, len + 1);
    if (text == NULL) {
        return zg_cp_nomem(cp);
    }
    for (int i = 2; i < n; i++) {
        memcpy(p, a[i].data, a[i].len);
        p += a[i].len;
    }
    return zg_cp_add_format(cp, a[1].data, text, len);
}

/* ------------------------------------------------------- server context */

static int zg_cp_listen(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_cp_listen_t *l;
    zg_addr_t addr;
    int rc, def = 0;

    (void)cmd;
    for (int i = 2; i < n; i++) {
        if (zg_cp_eq(&a[i], "default_server") || zg_cp_eq(&a[i], "default")) {
            def = 1;
        } else {
            return zg_cp_bad_param(cp, &a[i]);
        }
    }
    rc = zg_conf_parse_addr(a[1].data, a[1].len, ZG_CONF_DEFAULT_PORT, &addr);
    if (rc == ZG_DECLINED) {
        return zg_cp_err(cp, "host not found in \"%s\" of the \"listen\" directive", a[1].data);
    }
    if (rc != ZG_OK) {
        return zg_cp_err(cp, "invalid address \"%s\" of the \"listen\" directive", a[1].data);
    }
    for (int i = 0; i < cp->srv->nlistens; i++) {
        if (zg_addr_eq(&cp->srv->listens[i].addr, &addr)) {
            return zg_cp_err(cp, "a duplicate listen %s", addr.text);
        }
    }
    l = zg_cp_push(cp, cp->srv->listens, cp->srv->nlistens);
    if (l == NULL) {
        return zg_cp_nomem(cp);
    }
    l->addr = addr;
    l->default_server = def;
    l->file = cp->cf->file;
    l->line = cp->line;
    return ZG_OK;
}

static int zg_cp_server_name(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    char **slot, *name;

    (void)cmd;
    for (int i = 1; i < n; i++) {
        name = zg_conf_strdup(cp->conf, a[i].data, a[i].len);
        slot = zg_cp_push(cp, cp->srv->names, cp->srv->nnames);
        if (name == NULL || slot == NULL) {
            return zg_cp_nomem(cp);
        }
        for (size_t k = 0; k < a[i].len; k++) {
            name[k] = (char)tolower((unsigned char)name[k]);
        }
        *slot = name;
    }
    return ZG_OK;
}

static int zg_cp_location(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_location_t *loc, **slot;
    zg_str_t *path = &a[1];
    int exact = 0, rc;

    (void)cmd;
    if (n == 3) {
        if (zg_cp_eq(&a[1], "=")) {
            exact = 1;
        } else if (zg_cp_eq(&a[1], "~") || zg_cp_eq(&a[1], "~*")) {
            return zg_cp_err(cp, "regex locations are not supported");
        } else if (!zg_cp_eq(&a[1], "^~")) {
            return zg_cp_err(cp, "invalid location modifier \"%s\"", a[1].data);
        }
        path = &a[2];
    } else if (a[1].data[0] == '~') {
        return zg_cp_err(cp, "regex locations are not supported");
    } else if (a[1].data[0] == '=' && a[1].len > 1) {
        exact = 1;
        a[1].data++;
        a[1].len--;
    } else if (a[1].data[0] == '@') {
        return zg_cp_err(cp, "named locations are not supported");
    }
    if (path->len == 0) {
        return zg_cp_err(cp, "invalid number of arguments in \"location\" directive");
    }
    for (int i = 0; i < cp->srv->nlocs; i++) {
        zg_location_t *o = cp->srv->locs[i];
        if (o->exact == (unsigned)exact && o->path_len == path->len
            && memcmp(o->path, path->data, path->len) == 0) {
            return zg_cp_err(cp, "duplicate location \"%s\"", path->data);
        }
    }
    loc = zg_conf_alloc(cp->conf, sizeof(*loc));
    slot = zg_cp_push(cp, cp->srv->locs, cp->srv->nlocs);
    if (loc == NULL || slot == NULL) {
        return zg_cp_nomem(cp);
    }
    *slot = loc;
    loc->path = (char *)path->data;
    loc->path_len = path->len;
    loc->exact = (unsigned)exact;
    loc->file = cp->cf->file;
    loc->line = cp->line;
    zg_settings_init(&loc->s);
    cp->loc = loc;
    cp->s = &loc->s;
    rc = zg_cp_enter(cp, ZG_CTX_LOC);
    cp->loc = NULL;
    cp->s = &cp->srv->srv.s;
    return rc;
}

/* ----------------------------------------------------- location context */

static int zg_cp_handler_set(zg_cp_t *cp, int handler)
{
    if (cp->loc->handler != ZG_HANDLER_NONE) {
        return zg_cp_duplicate(cp);
    }
    cp->loc->handler = handler;
    return ZG_OK;
}

static int zg_cp_proxy_pass(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_cp_proxy_t *pp;
    const char *h, *slash, *end = a[1].data + a[1].len;

    (void)cmd;
    (void)n;
    if (a[1].len < 7 || strncasecmp(a[1].data, "http://", 7) != 0) {
        return zg_cp_err(cp, "invalid URL prefix in \"%s\"", a[1].data);
    }
    h = a[1].data + 7;
    slash = memchr(h, '/', (size_t)(end - h));
    if (slash == NULL) {
        slash = end;
    }
    if (slash == h || memchr(h, '$', (size_t)(slash - h)) != NULL) {
        return zg_cp_err(cp, "invalid host in \"%s\"", a[1].data);
    }
    if (zg_cp_handler_set(cp, ZG_HANDLER_PROXY) != ZG_OK) {
        return ZG_ERROR;
    }
    if (slash < end) {
        cp->loc->proxy_uri = (char *)slash;
        cp->loc->proxy_uri_len = (size_t)(end - slash);
    }
    pp = zg_cp_push(cp, cp->proxies, cp->nproxies);
    if (pp == NULL || (pp->host = zg_conf_strdup(cp->conf, h, (size_t)(slash - h))) == NULL) {
        return zg_cp_nomem(cp);
    }
    pp->loc = cp->loc;
    pp->url = a[1].data;
    pp->file = cp->cf->file;
    pp->line = cp->line;
    return ZG_OK;
}

static int zg_cp_return(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_str_t *text = NULL;
    int code;

    (void)cmd;
    code = zg_cp_atoi(a[1].data, a[1].len);
    if (code < 0) {
        if (n == 2
            && (zg_cp_prefix(&a[1], "http://") || zg_cp_prefix(&a[1], "https://")
                || zg_cp_prefix(&a[1], "$scheme"))) {
            code = 302;
            text = &a[1];
        } else {
            return zg_cp_err(cp, "invalid return code \"%s\"", a[1].data);
        }
    } else if (code > 999) {
        return zg_cp_err(cp, "invalid return code \"%s\"", a[1].data);
    } else if (n == 3) {
        text = &a[2];
    }
    if (zg_cp_handler_set(cp, ZG_HANDLER_RETURN) != ZG_OK) {
        return ZG_ERROR;
    }
    cp->loc->return_code = code;
    if (text != NULL) {
        cp->loc->return_text = zg_cp_cv(cp, text->data, text->len);
        if (cp->loc->return_text == NULL) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

static int zg_cp_slab_stat(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    (void)cmd;
    (void)a;
    (void)n;
    return zg_cp_handler_set(cp, ZG_HANDLER_SLAB_STAT);
}

static int zg_cp_metrics(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    (void)cmd;
    (void)a;
    (void)n;
    return zg_cp_handler_set(cp, ZG_HANDLER_METRICS);
}

/* ----------------------------------------------------- upstream context */

static int zg_cp_ups_server(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_upstream_conf_t *u = cp->ups;
    zg_upstream_server_t *s;
    zg_addr_t addr;
    int rc, v;

    (void)cmd;
    if (u->nservers >= ZG_MAX_PEERS) {
        return zg_cp_err(cp, "too many servers in upstream \"%s\" (the limit is %d)", u->name,
                         ZG_MAX_PEERS);
    }
    rc = zg_conf_parse_addr(a[1].data, a[1].len, 80, &addr);
    if (rc == ZG_DECLINED) {
        return zg_cp_err(cp, "host not found in upstream \"%s\"", a[1].data);
    }
    if (rc != ZG_OK) {
        return zg_cp_err(cp, "invalid address in upstream \"%s\"", a[1].data);
    }
    s = zg_cp_push(cp, u->servers, u->nservers);
    if (s == NULL) {
        return zg_cp_nomem(cp);
    }
    s->addr = addr;
    s->weight = 1;
    s->max_fails = 1;
    s->fail_timeout = 10000;
    for (int i = 2; i < n; i++) {
        if (zg_cp_prefix(&a[i], "weight=")) {
            v = zg_cp_atoi(a[i].data + 7, a[i].len - 7);
            if (v <= 0) {
                return zg_cp_bad_param(cp, &a[i]);
            }
            s->weight = v;
        } else if (zg_cp_prefix(&a[i], "max_fails=")) {
            v = zg_cp_atoi(a[i].data + 10, a[i].len - 10);
            if (v < 0) {
                return zg_cp_bad_param(cp, &a[i]);
            }
            s->max_fails = v;
        } else if (zg_cp_prefix(&a[i], "fail_timeout=")) {
            s->fail_timeout = zg_conf_parse_time(a[i].data + 13, a[i].len - 13);
            if (s->fail_timeout == ZG_UNSET_MSEC) {
                return zg_cp_bad_param(cp, &a[i]);
            }
        } else if (zg_cp_prefix(&a[i], "max_conns=")) {
            v = zg_cp_atoi(a[i].data + 10, a[i].len - 10);
            if (v < 0) {
                return zg_cp_bad_param(cp, &a[i]);
            }
            s->max_conns = v;
        } else if (zg_cp_eq(&a[i], "backup")) {
            s->backup = 1;
        } else if (zg_cp_eq(&a[i], "down")) {
            s->down = 1;
        } else {
            return zg_cp_bad_param(cp, &a[i]);
        }
    }
    return ZG_OK;
}

static int zg_cp_ups_zone(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_zone_t *z = NULL;

    (void)cmd;
    (void)n;
    if (cp->ups->zone != NULL) {
        return zg_cp_duplicate(cp);
    }
    if (zg_cp_zone(cp, a[1].data, a[1].len, &a[1], a[2].data, a[2].len, &a[2],
                   ZG_ZONE_UPSTREAM, &z)
        != ZG_OK) {
        return ZG_ERROR;
    }
    z->init = zg_upstream_zone_init;
    z->conf = cp->ups;
    cp->ups->zone = z;
    return ZG_OK;
}

static int zg_cp_ups_keepalive(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    int v;

    (void)cmd;
    (void)n;
    if (cp->ups->keepalive != 0) {
        return zg_cp_duplicate(cp);
    }
    v = zg_cp_atoi(a[1].data, a[1].len);
    if (v <= 0) {
        return zg_cp_invalid(cp, &a[1]);
    }
    cp->ups->keepalive = v;
    return ZG_OK;
}

/* ----------------------------------------------------- settings setters */

#define ZG_FIELD(cp, cmd, type) ((type *)((char *)(cp)->s + (cmd)->offset))

static int zg_cp_set_msec(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_msec_t *f = ZG_FIELD(cp, cmd, zg_msec_t), v;

    (void)n;
    if (*f != ZG_UNSET_MSEC) {
        return zg_cp_duplicate(cp);
    }
    v = zg_conf_parse_time(a[1].data, a[1].len);
    if (v == ZG_UNSET_MSEC) {
        return zg_cp_invalid(cp, &a[1]);
    }
    *f = v;
    return ZG_OK;
}

static int zg_cp_set_size(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    int64_t *f = ZG_FIELD(cp, cmd, int64_t), v;

    (void)n;
    if (*f != ZG_UNSET_SIZE) {
        return zg_cp_duplicate(cp);
    }
    v = zg_conf_parse_size(a[1].data, a[1].len);
    if (v < 0) {
        return zg_cp_invalid(cp, &a[1]);
    }
    *f = v;
    return ZG_OK;
}

static int zg_cp_set_num(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    int *f = ZG_FIELD(cp, cmd, int), v;

    (void)n;
    if (*f != ZG_UNSET) {
        return zg_cp_duplicate(cp);
    }
    v = zg_cp_atoi(a[1].data, a[1].len);
    if (v < 0) {
        return zg_cp_invalid(cp, &a[1]);
    }
    *f = v;
    return ZG_OK;
}

static int zg_cp_set_flag(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    int *f = ZG_FIELD(cp, cmd, int);

    (void)n;
    if (*f != ZG_UNSET) {
        return zg_cp_duplicate(cp);
    }
    return zg_cp_flag(cp, &a[1], f);
}

static int zg_cp_set_status(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    int *f = ZG_FIELD(cp, cmd, int), v;

    (void)n;
    if (*f != ZG_UNSET) {
        return zg_cp_duplicate(cp);
    }
    v = zg_cp_atoi(a[1].data, a[1].len);
    if (v < 400 || v > 599) {
        return zg_cp_invalid(cp, &a[1]);
    }
    *f = v;
    return ZG_OK;
}

static int zg_cp_set_level(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    int *f = ZG_FIELD(cp, cmd, int), v;

    (void)n;
    if (*f != ZG_UNSET) {
        return zg_cp_duplicate(cp);
    }
    v = zg_log_level_parse(a[1].data, a[1].len);
    if (v != ZG_LOG_INFO && v != ZG_LOG_NOTICE && v != ZG_LOG_WARN && v != ZG_LOG_ERR) {
        return zg_cp_invalid(cp, &a[1]);
    }
    *f = v;
    return ZG_OK;
}

static int zg_cp_proxy_set_header(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_header_conf_t *h;

    (void)cmd;
    (void)n;
    if (a[1].len == 0) {
        return zg_cp_invalid(cp, &a[1]);
    }
    h = zg_cp_push(cp, cp->s->set_headers, cp->s->nset_headers);
    if (h == NULL) {
        return zg_cp_nomem(cp);
    }
    h->name.data = a[1].data;
    h->name.len = a[1].len;
    h->value = zg_cp_cv(cp, a[2].data, a[2].len);
    return h->value != NULL ? ZG_OK : ZG_ERROR;
}

static int zg_cp_next_upstream(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    static const struct {
        const char *name;
        int bit;
    } vals[] = { { "error", ZG_NEXT_ERROR },       { "timeout", ZG_NEXT_TIMEOUT },
                 { "http_502", ZG_NEXT_HTTP_502 }, { "http_503", ZG_NEXT_HTTP_503 },
                 { "http_504", ZG_NEXT_HTTP_504 }, { "off", ZG_NEXT_OFF } };
    int mask = 0;
    size_t k;

    (void)cmd;
    if (cp->s->proxy_next_upstream != ZG_UNSET) {
        return zg_cp_duplicate(cp);
    }
    for (int i = 1; i < n; i++) {
        for (k = 0; k < zg_nelems(vals); k++) {
            if (zg_cp_eq(&a[i], vals[k].name)) {
                break;
            }
        }
        if (k == zg_nelems(vals) || (vals[k].bit == ZG_NEXT_OFF && n > 2)) {
            return zg_cp_invalid(cp, &a[i]);
        }
        mask |= vals[k].bit;
    }
    cp->s->proxy_next_upstream = mask;
    return ZG_OK;
}

static int zg_cp_large_buffers(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    int num;
    int64_t size;

    (void)cmd;
    (void)n;
    if (cp->s->large_header_buffers != ZG_UNSET) {
        return zg_cp_duplicate(cp);
    }
    num = zg_cp_atoi(a[1].data, a[1].len);
    if (num <= 0) {
        return zg_cp_invalid(cp, &a[1]);
    }
    size = zg_conf_parse_size(a[2].data, a[2].len);
    if (size <= 0 || size > INT_MAX) {
        return zg_cp_invalid(cp, &a[2]);
    }
    cp->s->large_header_buffers = num;
    cp->s->large_header_size = size;
    return ZG_OK;
}

static int zg_cp_zone_ref(zg_cp_t *cp, int conn, int idx, const char *name, size_t len)
{
    zg_cp_zone_ref_t *r = zg_cp_push(cp, cp->refs, cp->nrefs);

    if (r == NULL || (r->name = zg_conf_strdup(cp->conf, name, len)) == NULL) {
        return zg_cp_nomem(cp);
    }
    r->s = cp->s;
    r->idx = idx;
    r->conn = conn;
    r->file = cp->cf->file;
    r->line = cp->line;
    return ZG_OK;
}

static int zg_cp_limit_req(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_limit_req_conf_t *lr;
    zg_str_t *zone = NULL;
    int v;

    (void)cmd;
    lr = zg_cp_push(cp, cp->s->limit_req, cp->s->nlimit_req);
    if (lr == NULL) {
        return zg_cp_nomem(cp);
    }
    for (int i = 1; i < n; i++) {
        if (zg_cp_prefix(&a[i], "zone=")) {
            zone = &a[i];
        } else if (zg_cp_prefix(&a[i], "burst=")) {
            v = zg_cp_atoi(a[i].data + 6, a[i].len - 6);
            if (v <= 0) {
                return zg_cp_err(cp, "invalid burst value \"%s\"", a[i].data);
            }
            lr->burst = (uint64_t)v * 1000;
        } else if (zg_cp_prefix(&a[i], "delay=")) {
            v = zg_cp_atoi(a[i].data + 6, a[i].len - 6);
            if (v <= 0) {
                return zg_cp_err(cp, "invalid delay value \"%s\"", a[i].data);
            }
            lr->delay = (uint64_t)v * 1000;
        } else if (zg_cp_eq(&a[i], "nodelay")) {
            lr->delay = ZG_LIMIT_REQ_NODELAY;
        } else {
            return zg_cp_bad_param(cp, &a[i]);
        }
    }
    if (zone == NULL || zone->len == 5) {
        return zg_cp_err(cp, "\"%s\" must have \"zone\" parameter", cp->name);
    }
    return zg_cp_zone_ref(cp, 0, cp->s->nlimit_req - 1, zone->data + 5, zone->len - 5);
}

static int zg_cp_limit_conn(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_limit_conn_conf_t *lc;
    int v;

    (void)cmd;
    (void)n;
    v = zg_cp_atoi(a[2].data, a[2].len);
    if (v <= 0 || v > 65535) {
        return zg_cp_err(cp, "invalid number of connections \"%s\"", a[2].data);
    }
    lc = zg_cp_push(cp, cp->s->limit_conn, cp->s->nlimit_conn);
    if (lc == NULL) {
        return zg_cp_nomem(cp);
    }
    lc->conn = (uint32_t)v;
    return zg_cp_zone_ref(cp, 1, cp->s->nlimit_conn - 1, a[1].data, a[1].len);
}

static int zg_cp_access_rule(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_access_rule_t *r, rule;
    char buf[64];
    const char *slash;
    size_t alen;
    int bits, maxbits;

    (void)cmd;
    (void)n;
    memset(&rule, 0, sizeof(rule));
    rule.deny = cp->name[0] == 'd';
    if (!zg_cp_eq(&a[1], "all")) {
        slash = memchr(a[1].data, '/', a[1].len);
        alen = slash != NULL ? (size_t)(slash - a[1].data) : a[1].len;
        if (alen == 0 || alen >= sizeof(buf)) {
            return zg_cp_bad_param(cp, &a[1]);
        }
        memcpy(buf, a[1].data, alen);
        buf[alen] = '\0';
        if (inet_pton(AF_INET, buf, rule.addr) == 1) {
            rule.family = AF_INET;
            maxbits = 32;
        } else if (inet_pton(AF_INET6, buf, rule.addr) == 1) {
            rule.family = AF_INET6;
            maxbits = 128;
        } else {
            return zg_cp_bad_param(cp, &a[1]);
        }
        bits = maxbits;
        if (slash != NULL) {
            bits = zg_cp_atoi(slash + 1, (size_t)(a[1].data + a[1].len - slash - 1));
            if (bits < 0 || bits > maxbits) {
                return zg_cp_bad_param(cp, &a[1]);
            }
        }
        for (int i = 0; i < maxbits / 8; i++) {
            int b = bits - i * 8;
            rule.mask[i] = b >= 8 ? 0xff : b <= 0 ? 0 : (unsigned char)(0xff << (8 - b));
            rule.addr[i] &= rule.mask[i];
        }
    }
    r = zg_cp_push(cp, cp->s->rules, cp->s->nrules);
    if (r == NULL) {
        return zg_cp_nomem(cp);
    }
    *r = rule;
    return ZG_OK;
}

static int zg_cp_access_log(zg_cp_t *cp, const zg_cp_cmd_t *cmd, zg_str_t *a, int n)
{
    zg_log_format_t *fmt;
    zg_access_log_t *l, **tail;
    char *path;

    (void)cmd;
    if (cp->s->access_log_set) {
        return zg_cp_duplicate(cp);
    }
    cp->s->access_log_set = 1;
    if (zg_cp_eq(&a[1], "off")) {
        if (n > 2) {
            return zg_cp_err(cp, "invalid number of arguments in \"access_log\" directive");
        }
        cp->s->access_log = NULL;
        return ZG_OK;
    }
    fmt = zg_cp_find_format(cp, n > 2 ? a[2].data : "combined");
    if (fmt == NULL) {
        return zg_cp_err(cp, "unknown log format \"%s\"", a[2].data);
    }
    path = zg_cp_path(cp, &a[1]);
    if (path == NULL) {
        return zg_cp_nomem(cp);
    }
    for (tail = &cp->conf->access_logs; *tail != NULL; tail = &(*tail)->next) {
        if ((*tail)->format == fmt && strcmp((*tail)->path, path) == 0) {
            cp->s->access_log = *tail;
            return ZG_OK;
        }
    }
    l = zg_conf_alloc(cp->conf, sizeof(*l));
    if (l == NULL) {
        return zg_cp_nomem(cp);
    }
    l->path = path;
    l->format = fmt;
    l->fd = -1;
    *tail = l;
    cp->s->access_log = l;
    return ZG_OK;
}

#define ZG_S(f) offsetof(zg_settings_t, f)

static const zg_cp_cmd_t zg_cp_cmds[] = {
    { "include", ZG_CTX_ANY, 0, 1, 1, zg_cp_include, 0 },
    { "worker_processes", ZG_CTX_MAIN, 0, 1, 1, zg_cp_worker_processes, 0 },
    { "worker_connections", ZG_CTX_MAIN | ZG_CTX_EVENTS, 0, 1, 1, zg_cp_worker_connections, 0 },
    { "worker_rlimit_nofile", ZG_CTX_MAIN, 0, 1, 1, zg_cp_worker_rlimit_nofile, 0 },
    { "pid", ZG_CTX_MAIN, 0, 1, 1, zg_cp_pid, 0 },
    { "error_log", ZG_CTX_MAIN, 0, 1, 2, zg_cp_error_log, 0 },
    { "daemon", ZG_CTX_MAIN, 0, 1, 1, zg_cp_daemon, 0 },
    { "events", ZG_CTX_MAIN, 1, 0, 0, zg_cp_events, 0 },
    { "http", ZG_CTX_MAIN, 1, 0, 0, zg_cp_http, 0 },

    { "server", ZG_CTX_HTTP, 1, 0, 0, zg_cp_server, 0 },
    { "upstream", ZG_CTX_HTTP, 1, 1, 1, zg_cp_upstream, 0 },
    { "limit_req_zone", ZG_CTX_HTTP, 0, 2, -1, zg_cp_limit_req_zone, 0 },
    { "limit_conn_zone", ZG_CTX_HTTP, 0, 2, -1, zg_cp_limit_conn_zone, 0 },
    { "log_format", ZG_CTX_HTTP, 0, 2, -1, zg_cp_log_format, 0 },

    { "listen", ZG_CTX_SRV, 0, 1, -1, zg_cp_listen, 0 },
    { "server_name", ZG_CTX_SRV, 0, 1, -1, zg_cp_server_name, 0 },
    { "location", ZG_CTX_SRV, 1, 1, 2, zg_cp_location, 0 },

    { "proxy_pass", ZG_CTX_LOC, 0, 1, 1, zg_cp_proxy_pass, 0 },
    { "return", ZG_CTX_LOC, 0, 1, 2, zg_cp_return, 0 },
    { "slab_stat", ZG_CTX_LOC, 0, 0, 0, zg_cp_slab_stat, 0 },
    { "metrics", ZG_CTX_LOC, 0, 0, 0, zg_cp_metrics, 0 },

    { "server", ZG_CTX_UPS, 0, 1, -1, zg_cp_ups_server, 0 },
    { "zone", ZG_CTX_UPS, 0, 2, 2, zg_cp_ups_zone, 0 },
    { "keepalive", ZG_CTX_UPS, 0, 1, 1, zg_cp_ups_keepalive, 0 },

    { "proxy_set_header", ZG_CTX_SETTINGS, 0, 2, 2, zg_cp_proxy_set_header, 0 },
    { "proxy_connect_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_msec,
      ZG_S(proxy_connect_timeout) },
    { "proxy_read_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_msec, ZG_S(proxy_read_timeout) },
    { "proxy_send_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_msec, ZG_S(proxy_send_timeout) },
    { "proxy_next_upstream", ZG_CTX_SETTINGS, 0, 1, -1, zg_cp_next_upstream, 0 },
    { "proxy_next_upstream_tries", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_num,
      ZG_S(proxy_next_upstream_tries) },
    { "client_header_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_msec,
      ZG_S(client_header_timeout) },
    { "client_body_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_msec,
      ZG_S(client_body_timeout) },
    { "send_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_msec,
      ZG_S(send_timeout) },
    { "keepalive_timeout", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_msec, ZG_S(keepalive_timeout) },
    { "client_max_body_size", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_size,
      ZG_S(client_max_body_size) },
    { "large_client_header_buffers", ZG_CTX_SETTINGS, 0, 2, 2, zg_cp_large_buffers, 0 },
    { "limit_req", ZG_CTX_SETTINGS, 0, 1, 3, zg_cp_limit_req, 0 },
    { "limit_req_status", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_status, ZG_S(limit_req_status) },
    { "limit_req_log_level", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_level,
      ZG_S(limit_req_log_level) },
    { "limit_req_dry_run", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_flag, ZG_S(limit_req_dry_run) },
    { "limit_req_headers", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_flag, ZG_S(limit_req_headers) },
    { "limit_conn", ZG_CTX_SETTINGS, 0, 2, 2, zg_cp_limit_conn, 0 },
    { "limit_conn_status", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_status,
      ZG_S(limit_conn_status) },
    { "limit_conn_log_level", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_level,
      ZG_S(limit_conn_log_level) },
    { "limit_conn_dry_run", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_set_flag, ZG_S(limit_conn_dry_run) },
    { "allow", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_access_rule, 0 },
    { "deny", ZG_CTX_SETTINGS, 0, 1, 1, zg_cp_access_rule, 0 },
    { "access_log", ZG_CTX_SETTINGS, 0, 1, 2, zg_cp_access_log, 0 },
    { NULL, 0, 0, 0, 0, NULL, 0 }
};

/* ------------------------------------------------------- after parsing */

static int zg_cp_resolve_refs(zg_cp_t *cp)
{
    for (int i = 0; i < cp->nrefs; i++) {
        zg_cp_zone_ref_t *r = &cp->refs[i];
        if (r->conn) {
            zg_limit_conn_zone_conf_t *z = NULL;
            for (int k = 0; k < cp->conf->nlimit_conn_zones; k++) {
                if (strcmp(cp->conf->limit_conn_zones[k]->zone->name, r->name) == 0) {
                    z = cp->conf->limit_conn_zones[k];
                }
            }
            if (z == NULL) {
                return zg_cp_err_at(cp, r->file, r->line, "unknown limit_conn_zone \"%s\" in \"limit_conn\" directive",
                                    r->name);
            }
            for (int k = 0; k < r->idx; k++) {
                if (r->s->limit_conn[k].zone == z) {
                    return zg_cp_err_at(cp, r->file, r->line,
                                        "\"limit_conn\" directive is duplicate");
                }
            }
            r->s->limit_conn[r->idx].zone = z;
        } else {
            zg_limit_req_zone_conf_t *z = NULL;
            for (int k = 0; k < cp->conf->nlimit_req_zones; k++) {
                if (strcmp(cp->conf->limit_req_zones[k]->zone->name, r->name) == 0) {
                    z = cp->conf->limit_req_zones[k];
                }
            }
            if (z == NULL) {
                return zg_cp_err_at(cp, r->file, r->line, "unknown limit_req_zone \"%s\" in \"limit_req\" directive",
                                    r->name);
            }
            for (int k = 0; k < r->idx; k++) {
                if (r->s->limit_req[k].zone == z) {
                    return zg_cp_err_at(cp, r->file, r->line,
                                        "\"limit_req\" directive is duplicate");
                }
            }
            r->s->limit_req[r->idx].zone = z;
        }
    }
    return ZG_OK;
}

static int zg_cp_resolve_proxies(zg_cp_t *cp)
{
    zg_upstream_conf_t *u;
    zg_upstream_server_t *s;
    zg_addr_t addr;
    int rc;

    for (int i = 0; i < cp->nproxies; i++) {
        zg_cp_proxy_t *pp = &cp->proxies[i];
        u = strchr(pp->host, ':') == NULL ? zg_cp_find_upstream(cp, pp->host, 0) : NULL;
        if (u == NULL) {
            rc = zg_conf_parse_addr(pp->host, strlen(pp->host), 80, &addr);
            if (rc == ZG_DECLINED) {
                return zg_cp_err_at(cp, pp->file, pp->line, "host not found in upstream \"%s\"",
                                    pp->host);
            }
            if (rc != ZG_OK) {
                return zg_cp_err_at(cp, pp->file, pp->line, "invalid host in \"%s\"", pp->url);
            }
            for (u = cp->conf->upstreams; u != NULL; u = u->next) {
                if (u->implicit && zg_addr_eq(&u->servers[0].addr, &addr)) {
                    break;
                }
            }
            if (u == NULL) {
                cp->cf = NULL;
                cp->line = pp->line;
                u = zg_cp_new_upstream(cp, pp->host);
                if (u == NULL || (s = zg_cp_push(cp, u->servers, u->nservers)) == NULL) {
                    return zg_cp_err_at(cp, pp->file, pp->line, "out of memory");
                }
                u->file = pp->file;
                u->implicit = 1;
                s->addr = addr;
                s->weight = 1;
                s->max_fails = 1;
                s->fail_timeout = 10000;
            }
        }
        pp->loc->upstream = u;
    }
    return ZG_OK;
}

#define ZG_MERGE(f, unset)                                                             \
    if (s->f == (unset))                                                               \
    s->f = p->f

static void zg_settings_merge(zg_settings_t *s, const zg_settings_t *p)
{
    if (s->nset_headers < 0) {
        s->set_headers = p->set_headers;
        s->nset_headers = p->nset_headers;
    }
    ZG_MERGE(proxy_connect_timeout, ZG_UNSET_MSEC);
    ZG_MERGE(proxy_read_timeout, ZG_UNSET_MSEC);
    ZG_MERGE(proxy_send_timeout, ZG_UNSET_MSEC);
    ZG_MERGE(proxy_next_upstream, ZG_UNSET);
    ZG_MERGE(proxy_next_upstream_tries, ZG_UNSET);
    ZG_MERGE(client_header_timeout, ZG_UNSET_MSEC);
    ZG_MERGE(client_body_timeout, ZG_UNSET_MSEC);
    ZG_MERGE(send_timeout, ZG_UNSET_MSEC);
    ZG_MERGE(keepalive_timeout, ZG_UNSET_MSEC);
    ZG_MERGE(client_max_body_size, ZG_UNSET_SIZE);
    if (s->large_header_buffers == ZG_UNSET) {
        s->large_header_buffers = p->large_header_buffers;
        s->large_header_size = p->large_header_size;
    }
    if (s->nlimit_req < 0) {
        s->limit_req = p->limit_req;
        s->nlimit_req = p->nlimit_req;
    }
    ZG_MERGE(limit_req_status, ZG_UNSET);
    ZG_MERGE(limit_req_log_level, ZG_UNSET);
    ZG_MERGE(limit_req_dry_run, ZG_UNSET);
    ZG_MERGE(limit_req_headers, ZG_UNSET);
    if (s->nlimit_conn < 0) {
        s->limit_conn = p->limit_conn;
        s->nlimit_conn = p->nlimit_conn;
    }
    ZG_MERGE(limit_conn_status, ZG_UNSET);
    ZG_MERGE(limit_conn_log_level, ZG_UNSET);
    ZG_MERGE(limit_conn_dry_run, ZG_UNSET);
    if (s->nrules < 0) {
        s->rules = p->rules;
        s->nrules = p->nrules;
    }
    if (!s->access_log_set) {
        s->access_log = p->access_log;
        s->access_log_set = 1;
    }
}

static void zg_settings_defaults(zg_settings_t *d)
{
    memset(d, 0, sizeof(*d));
    d->proxy_connect_timeout = 60000;
    d->proxy_read_timeout = 60000;
    d->proxy_send_timeout = 60000;
    d->proxy_next_upstream = ZG_NEXT_ERROR | ZG_NEXT_TIMEOUT;
    d->proxy_next_upstream_tries = 0;
    d->client_header_timeout = 60000;
    d->client_body_timeout = 60000;
    d->send_timeout = 60000;
    d->keepalive_timeout = 75000;
    d->client_max_body_size = 1024 * 1024;
    d->large_header_buffers = 4;
    d->large_header_size = 8192;
    d->limit_req_status = 503;
    d->limit_req_log_level = ZG_LOG_ERR;
    d->limit_conn_status = 503;
    d->limit_conn_log_level = ZG_LOG_ERR;
    /* access_log: off unless configured (nginx would write logs/access.log) */
    d->access_log = NULL;
    d->access_log_set = 1;
}

static int zg_cp_finish(zg_cp_t *cp)
{
    zg_conf_t *conf = cp->conf;
    zg_settings_t defaults;
    zg_cp_srv_t *ps;
    zg_server_conf_t *srv;
    zg_listen_t *ls;

    if (conf->worker_processes == ZG_UNSET) {
        conf->worker_processes = 1;
    }
    if (conf->worker_connections == ZG_UNSET) {
        conf->worker_connections = 10240;
    }
    if (conf->worker_rlimit_nofile == ZG_UNSET) {
        conf->worker_rlimit_nofile = 0;
    }
    if (conf->daemon == ZG_UNSET) {
        conf->daemon = 0;
    }
    if (conf->error_log_file == NULL) {
        conf->error_log_file = zg_conf_strdup(conf, "stderr", 6);
        conf->error_log_level = ZG_LOG_ERR;
        if (conf->error_log_file == NULL) {
            return zg_cp_err_at(cp, NULL, 0, "out of memory");
        }
    }
    if (zg_cp_resolve_refs(cp) != ZG_OK || zg_cp_resolve_proxies(cp) != ZG_OK) {
        return ZG_ERROR;
    }

    zg_settings_defaults(&defaults);
    zg_settings_merge(&conf->http, &defaults);

    if (cp->nsrvs > 0) {
        conf->servers = zg_conf_alloc(conf, (size_t)cp->nsrvs * sizeof(zg_server_conf_t));
        if (conf->servers == NULL) {
            return zg_cp_err_at(cp, NULL, 0, "out of memory");
        }
    }
    conf->nservers = cp->nsrvs;
    for (int i = 0; i < cp->nsrvs; i++) {
        ps = cp->srvs[i];
        srv = &conf->servers[i];
        zg_settings_merge(&ps->srv.s, &conf->http);
        *srv = ps->srv;
        if (ps->nnames == 0) {
            char **slot = zg_cp_push(cp, ps->names, ps->nnames);
            if (slot == NULL || (*slot = zg_conf_strdup(conf, "", 0)) == NULL) {
                return zg_cp_err_at(cp, NULL, 0, "out of memory");
            }
        }
        srv->names = ps->names;
        srv->nnames = ps->nnames;
        srv->nlocations = ps->nlocs;
        if (ps->nlocs > 0) {
            srv->locations = zg_conf_alloc(conf, (size_t)ps->nlocs * sizeof(zg_location_t));
            if (srv->locations == NULL) {
                return zg_cp_err_at(cp, NULL, 0, "out of memory");
            }
        }
        for (int k = 0; k < ps->nlocs; k++) {
            zg_settings_merge(&ps->locs[k]->s, &srv->s);
            srv->locations[k] = *ps->locs[k];
            srv->locations[k].server = srv;
        }
        if (ps->nlistens == 0) {
            zg_cp_listen_t *l = zg_cp_push(cp, ps->listens, ps->nlistens);
            unsigned char any[4] = { 0, 0, 0, 0 };
            if (l == NULL) {
                return zg_cp_err_at(cp, NULL, 0, "out of memory");
            }
            zg_addr_set(&l->addr, AF_INET, any, ZG_CONF_DEFAULT_PORT);
            l->file = srv->file;
            l->line = srv->line;
        }
        for (int k = 0; k < ps->nlistens; k++) {
            zg_cp_listen_t *pl = &ps->listens[k];
            zg_server_conf_t **slot;
            int j;
            for (j = 0; j < conf->nlistens; j++) {
                if (zg_addr_eq(&conf->listens[j].addr, &pl->addr)) {
                    break;
                }
            }
            if (j == conf->nlistens) {
                ls = zg_cp_push(cp, conf->listens, conf->nlistens);
                if (ls == NULL) {
                    return zg_cp_err_at(cp, NULL, 0, "out of memory");
                }
                ls->addr = pl->addr;
                ls->fd = -1;
            }
            ls = &conf->listens[j];
            if (pl->default_server) {
                if (ls->default_server != NULL) {
                    return zg_cp_err_at(cp, pl->file, pl->line,
                                        "a duplicate default server for %s", ls->addr.text);
                }
                ls->default_server = srv;
            }
            slot = zg_cp_push(cp, ls->servers, ls->nservers);
            if (slot == NULL) {
                return zg_cp_err_at(cp, NULL, 0, "out of memory");
            }
            *slot = srv;
        }
    }
    for (int j = 0; j < conf->nlistens; j++) {
        if (conf->listens[j].default_server == NULL) {
            conf->listens[j].default_server = conf->listens[j].servers[0];
        }
    }
    return ZG_OK;
}

static zg_conf_t *zg_conf_parse(zg_conf_t *conf, zg_cf_t *cf, char *err, size_t errlen)
{
    zg_cp_t cp;

    memset(&cp, 0, sizeof(cp));
    cp.conf = conf;
    cp.err = err;
    cp.errlen = errlen;
    cp.ctx = ZG_CTX_MAIN;
    cp.ups_tail = &conf->upstreams;
    conf->worker_processes = ZG_UNSET;
    conf->worker_connections = ZG_UNSET;
    conf->worker_rlimit_nofile = ZG_UNSET;
    conf->daemon = ZG_UNSET;
    zg_settings_init(&conf->http);
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (zg_cp_add_format(&cp, "combined", zg_log_combined, strlen(zg_log_combined)) != ZG_OK
        || zg_cp_block(&cp, cf, 0) != ZG_OK || zg_cp_finish(&cp) != ZG_OK) {
        zg_conf_free(conf);
        return NULL;
    }
    return conf;
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
    zg_conf_t *conf;
    zg_cp_t cp;
    zg_cf_t cf;
    char *abs;

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
    memset(&cp, 0, sizeof(cp));
    cp.conf = conf;
    cp.err = err;
    cp.errlen = errlen;
    if (zg_cp_read_file(&cp, conf->file, &cf) != ZG_OK) {
        zg_conf_free(conf);
        return NULL;
    }
    return zg_conf_parse(conf, &cf, err, errlen);
}

zg_conf_t *zg_conf_load_string(const char *name, const char *text, size_t len, char *err,
                               size_t errlen)
{
    zg_conf_t *conf;
    zg_cf_t cf;

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

/* ---------------------------------------------------------------- lookup */

zg_server_conf_t *zg_conf_find_server(const zg_listen_t *ls, const char *host, size_t len)
{
    size_t n = len;

    if (host == NULL) {
        n = 0;
    }
    /* a ":port" suffix is not part of the name */
    for (size_t i = n; i > 0; i--) {
        if (host[i - 1] == ':') {
            n = i - 1;
            break;
        }
        if (host[i - 1] < '0' || host[i - 1] > '9') {
            break;
        }
    }
    for (int i = 0; i < ls->nservers; i++) {
        zg_server_conf_t *srv = ls->servers[i];
        for (int k = 0; k < srv->nnames; k++) {
            if (strlen(srv->names[k]) == n && strncasecmp(srv->names[k], host, n) == 0) {
                return srv;
            }
        }
    }
    return ls->default_server;
}

zg_location_t *zg_conf_find_location(const zg_server_conf_t *srv, const char *path,
                                     size_t len)
{
    zg_location_t *best = NULL;

    for (int i = 0; i < srv->nlocations; i++) {
        zg_location_t *loc = &srv->locations[i];
        if (loc->exact && loc->path_len == len && memcmp(loc->path, path, len) == 0) {
            return loc;
        }
    }
    for (int i = 0; i < srv->nlocations; i++) {
        zg_location_t *loc = &srv->locations[i];
        if (!loc->exact && loc->path_len <= len && memcmp(loc->path, path, loc->path_len) == 0
            && (best == NULL || loc->path_len > best->path_len)) {
            best = loc;
        }
    }
    return best;
}
