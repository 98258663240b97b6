/* zg_vars.c — variables and complex values ("text with $variables"). */
#include "zg_vars.h"

#include "zg_buf.h"
#include "zg_regex.h"

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/un.h>
#include <unistd.h>

#define ZG_VAR_TMP 128 /* a value built in place: an address, "unix:" and a socket path */

enum {
    ZG_VAR_LITERAL = 0,
    ZG_VAR_BINARY_REMOTE_ADDR,
    ZG_VAR_REMOTE_ADDR,
    ZG_VAR_REMOTE_PORT,
    ZG_VAR_HTTP,
    ZG_VAR_ARG,
    ZG_VAR_URI,
    ZG_VAR_REQUEST_URI,
    ZG_VAR_ARGS,
    ZG_VAR_HOST,
    ZG_VAR_SERVER_NAME,
    ZG_VAR_REQUEST_METHOD,
    ZG_VAR_REQUEST,
    ZG_VAR_STATUS,
    ZG_VAR_SERVER_PROTOCOL,
    ZG_VAR_BODY_BYTES_SENT,
    ZG_VAR_BYTES_SENT,
    ZG_VAR_REQUEST_LENGTH,
    ZG_VAR_REQUEST_TIME,
    ZG_VAR_TIME_LOCAL,
    ZG_VAR_TIME_ISO8601,
    ZG_VAR_MSEC,
    ZG_VAR_UPSTREAM_ADDR,
    ZG_VAR_UPSTREAM_STATUS,
    ZG_VAR_UPSTREAM_RESPONSE_TIME,
    ZG_VAR_LIMIT_REQ_STATUS,
    ZG_VAR_LIMIT_CONN_STATUS,
    ZG_VAR_CONNECTION,
    ZG_VAR_CONNECTION_REQUESTS,
    ZG_VAR_REMOTE_USER,
    ZG_VAR_PROXY_ADD_XFF,
    ZG_VAR_SCHEME,
    ZG_VAR_HTTPS,            /* the TLS connection's: "on" or "" */
    ZG_VAR_REQUEST_ID,
    ZG_VAR_SERVER_PORT,
    ZG_VAR_SERVER_ADDR,
    ZG_VAR_HOSTNAME,
    ZG_VAR_PID,
    ZG_VAR_VERSION,
    ZG_VAR_REALIP_REMOTE_ADDR,
    ZG_VAR_REALIP_REMOTE_PORT,
    ZG_VAR_COOKIE,
    ZG_VAR_SENT_HTTP,
    ZG_VAR_UPSTREAM_HTTP,
    ZG_VAR_IS_ARGS,
    ZG_VAR_CONTENT_TYPE,
    ZG_VAR_CONTENT_LENGTH,
    ZG_VAR_NAMED,          /* a named variable: part->len is its index */
    ZG_VAR_BYTES_RECEIVED,
    ZG_VAR_UPSTREAM_BYTES_SENT,
    ZG_VAR_UPSTREAM_BYTES_RECEIVED,
    ZG_VAR_UPSTREAM_CONNECT_TIME,
    ZG_VAR_PROXY_PROTOCOL_ADDR,
    ZG_VAR_CAPTURE,          /* $1..$9: the last regex match's captures */
    ZG_VAR_SSL_PROTOCOL,
    ZG_VAR_SSL_CIPHER,
    ZG_VAR_SSL_SESSION_ID,
    ZG_VAR_SSL_SESSION_REUSED,
    ZG_VAR_SSL_SERVER_NAME,
    ZG_VAR_SSL_CLIENT_VERIFY,
    ZG_VAR_SSL_CLIENT_S_DN,
    ZG_VAR_SSL_CLIENT_I_DN,
    ZG_VAR_SSL_CLIENT_FINGERPRINT,
    ZG_VAR_SSL_CLIENT_SERIAL,
    ZG_VAR_SSL_ALPN_PROTOCOL,
    ZG_VAR_SSL_CURVE,
    ZG_VAR_SSL_CLIENT_V_START,
    ZG_VAR_SSL_CLIENT_V_END,
    ZG_VAR_SSL_CLIENT_V_REMAIN,
};

typedef struct {
    const char *name;
    unsigned char id;
} zg_var_name_t;

static const zg_var_name_t zg_var_names[] = {
    { "binary_remote_addr", ZG_VAR_BINARY_REMOTE_ADDR },
    { "remote_addr", ZG_VAR_REMOTE_ADDR },
    { "remote_port", ZG_VAR_REMOTE_PORT },
    { "uri", ZG_VAR_URI },
    { "request_uri", ZG_VAR_REQUEST_URI },
    { "args", ZG_VAR_ARGS },
    { "host", ZG_VAR_HOST },
    { "server_name", ZG_VAR_SERVER_NAME },
    { "request_method", ZG_VAR_REQUEST_METHOD },
    { "request", ZG_VAR_REQUEST },
    { "status", ZG_VAR_STATUS },
    { "server_protocol", ZG_VAR_SERVER_PROTOCOL },
    { "body_bytes_sent", ZG_VAR_BODY_BYTES_SENT },
    { "bytes_sent", ZG_VAR_BYTES_SENT },
    { "request_length", ZG_VAR_REQUEST_LENGTH },
    { "request_time", ZG_VAR_REQUEST_TIME },
    { "time_local", ZG_VAR_TIME_LOCAL },
    { "time_iso8601", ZG_VAR_TIME_ISO8601 },
    { "msec", ZG_VAR_MSEC },
    { "upstream_addr", ZG_VAR_UPSTREAM_ADDR },
    { "upstream_status", ZG_VAR_UPSTREAM_STATUS },
    { "upstream_response_time", ZG_VAR_UPSTREAM_RESPONSE_TIME },
    { "limit_req_status", ZG_VAR_LIMIT_REQ_STATUS },
    { "limit_conn_status", ZG_VAR_LIMIT_CONN_STATUS },
    { "connection", ZG_VAR_CONNECTION },
    { "connection_requests", ZG_VAR_CONNECTION_REQUESTS },
    { "remote_user", ZG_VAR_REMOTE_USER },
    { "proxy_add_x_forwarded_for", ZG_VAR_PROXY_ADD_XFF },
    { "scheme", ZG_VAR_SCHEME },
    { "https", ZG_VAR_HTTPS },
    { "request_id", ZG_VAR_REQUEST_ID },
    { "server_port", ZG_VAR_SERVER_PORT },
    { "server_addr", ZG_VAR_SERVER_ADDR },
    { "hostname", ZG_VAR_HOSTNAME },
    { "pid", ZG_VAR_PID },
    { "nginx_version", ZG_VAR_VERSION },
    { "zonegate_version", ZG_VAR_VERSION },
    { "realip_remote_addr", ZG_VAR_REALIP_REMOTE_ADDR },
    { "realip_remote_port", ZG_VAR_REALIP_REMOTE_PORT },
    { "document_uri", ZG_VAR_URI },
    { "query_string", ZG_VAR_ARGS },
    { "is_args", ZG_VAR_IS_ARGS },
    { "content_type", ZG_VAR_CONTENT_TYPE },
    { "content_length", ZG_VAR_CONTENT_LENGTH },
    { "bytes_received", ZG_VAR_BYTES_RECEIVED },
    { "session_time", ZG_VAR_REQUEST_TIME },
    { "upstream_bytes_sent", ZG_VAR_UPSTREAM_BYTES_SENT },
    { "upstream_bytes_received", ZG_VAR_UPSTREAM_BYTES_RECEIVED },
    { "upstream_connect_time", ZG_VAR_UPSTREAM_CONNECT_TIME },
    { "proxy_protocol_addr", ZG_VAR_PROXY_PROTOCOL_ADDR },
    { "ssl_protocol", ZG_VAR_SSL_PROTOCOL },
    { "ssl_cipher", ZG_VAR_SSL_CIPHER },
    { "ssl_session_id", ZG_VAR_SSL_SESSION_ID },
    { "ssl_session_reused", ZG_VAR_SSL_SESSION_REUSED },
    { "ssl_server_name", ZG_VAR_SSL_SERVER_NAME },
    { "ssl_client_verify", ZG_VAR_SSL_CLIENT_VERIFY },
    { "ssl_client_s_dn", ZG_VAR_SSL_CLIENT_S_DN },
    { "ssl_client_i_dn", ZG_VAR_SSL_CLIENT_I_DN },
    { "ssl_client_fingerprint", ZG_VAR_SSL_CLIENT_FINGERPRINT },
    { "ssl_client_serial", ZG_VAR_SSL_CLIENT_SERIAL },
    { "ssl_alpn_protocol", ZG_VAR_SSL_ALPN_PROTOCOL },
    { "ssl_curve", ZG_VAR_SSL_CURVE },
    { "ssl_client_v_start", ZG_VAR_SSL_CLIENT_V_START },
    { "ssl_client_v_end", ZG_VAR_SSL_CLIENT_V_END },
    { "ssl_client_v_remain", ZG_VAR_SSL_CLIENT_V_REMAIN },
};

/* variables named by a prefix, longest first where one prefix starts another */
static const struct {
    const char *prefix;
    unsigned char id;
} zg_var_prefixes[] = {
    { "http_", ZG_VAR_HTTP },
    { "arg_", ZG_VAR_ARG },
    { "cookie_", ZG_VAR_COOKIE },
    { "sent_http_", ZG_VAR_SENT_HTTP },
    { "upstream_http_", ZG_VAR_UPSTREAM_HTTP },
};

/* ---- named variables ---- */

typedef struct {
    char *name;
    size_t len;
    zg_var_get_pt get;       /* NULL: used, not (yet) defined */
    const void *data;
    int flags;
    const char *file;        /* first use */
    int line;
} zg_var_def_t;

struct zg_vars_s {
    zg_var_def_t *defs;
    int n, cap;
    int resp_headers;        /* $sent_http_ or $upstream_http_ is used */
    int upstream_vars;       /* $upstream_addr, _status or _response_time is used */
};

typedef struct {
    zg_str_t v;
    unsigned char valid;     /* v holds the value */
    unsigned char found;     /* ... and it is not "not found" */
    unsigned char busy;      /* being computed: a loop reads empty */
} zg_var_val_t;

typedef struct zg_var_mem_s zg_var_mem_t;
struct zg_var_mem_s {
    zg_var_mem_t *next;
    size_t used, size;
    max_align_t data[];
};

struct zg_var_state_s {
    zg_var_val_t *vals;      /* one per named variable of ctx->vars */
    int nvals;
    zg_var_mem_t *mem;
    char request_id[32];
};

/* a literal run (off/len into text) or a variable (off/len: $http_/$arg_ name) */
typedef struct {
    unsigned char type;
    uint32_t off;
    uint32_t len;
} zg_cv_part_t;

struct zg_cv_s {
    uint32_t nparts;
    uint32_t nvars;
    char *text;             /* literal runs and lowercased names, back to back */
    size_t text_len;
    zg_cv_part_t parts[];   /* then the text */
};

typedef struct {
    char *buf;
    size_t len;
    size_t pos;
} zg_cv_out_t;

static const char zg_hex[] = "0123456789ABCDEF";

static const char *zg_limit_status_names[] = {
    "", "PASSED", "DELAYED", "REJECTED", "DELAYED_DRY_RUN", "REJECTED_DRY_RUN",
};

static int zg_var_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

static unsigned char zg_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* header-name byte as $http_NAME sees it: lowercase, '-' is '_' */
static unsigned char zg_hdr_char(unsigned char c)
{
    return c == '-' ? '_' : zg_lower(c);
}

static int zg_var_lookup(const char *name, size_t len, unsigned char *id, size_t *skip)
{
    size_t i, n;
    char low[64];

    if (len >= sizeof(low)) {
        return ZG_DECLINED;
    }
    for (i = 0; i < len; i++) {
        low[i] = (char)zg_lower((unsigned char)name[i]);
    }

    if (len == 1 && low[0] >= '1' && low[0] <= '9') {
        *id = ZG_VAR_CAPTURE;
        *skip = 0;
        return ZG_OK;
    }
    for (i = 0; i < zg_nelems(zg_var_prefixes); i++) {
        n = strlen(zg_var_prefixes[i].prefix);
        if (len > n && memcmp(low, zg_var_prefixes[i].prefix, n) == 0) {
            *id = zg_var_prefixes[i].id;
            *skip = n;
            return ZG_OK;
        }
    }

    for (i = 0; i < zg_nelems(zg_var_names); i++) {
        n = strlen(zg_var_names[i].name);
        if (n == len && memcmp(zg_var_names[i].name, low, len) == 0) {
            *id = zg_var_names[i].id;
            *skip = 0;
            return ZG_OK;
        }
    }
    return ZG_DECLINED;
}

/* Returns a compiled value for text, or NULL with a message in err (unknown
 * variable, bad name, missing '}', no memory). */
zg_cv_t *zg_cv_compile(const char *text, size_t len, char *err, size_t errlen)
{
    return zg_cv_compile_vars(NULL, text, len, NULL, 0, err, errlen);
}

zg_cv_t *zg_cv_compile_vars(zg_vars_t *vs, const char *text, size_t len, const char *file,
                            int line, char *err, size_t errlen)
{
    int index;
    size_t i, start, nlen, skip, nparts, tlen, k;
    const char *name;
    unsigned char id;
    zg_cv_part_t *part;
    zg_cv_t *cv;
    int brace, pass;
    char *t;

    if (errlen) {
        err[0] = '\0';
    }
    if (len > UINT32_MAX / 2) {
        if (errlen) {
            snprintf(err, errlen, "value is too long");
        }
        return NULL;
    }

    /* pass 0 counts parts, pass 1 fills them in; errors surface in pass 0 */
    cv = NULL;
    nparts = 0;
    for (pass = 0; pass < 2; pass++) {
        nparts = 0;
        tlen = 0;
        part = NULL;
        t = cv ? cv->text : NULL;

        for (i = 0; i < len;) {
            if (text[i] != '$') {
                start = i;
                while (i < len && text[i] != '$') {
                    i++;
                }
                if (pass == 0) {
                    nparts++;
                    tlen += i - start;
                    continue;
                }
                part = &cv->parts[nparts++];
                part->type = ZG_VAR_LITERAL;
                part->off = (uint32_t)tlen;
                part->len = (uint32_t)(i - start);
                memcpy(t + tlen, text + start, i - start);
                tlen += i - start;
                continue;
            }

            i++;
            brace = (i < len && text[i] == '{');
            if (brace) {
                i++;
            }
            start = i;
            if (i < len && text[i] >= '0' && text[i] <= '9') {
                i++; /* $12 is $1 then "2", as nginx */
            } else {
                while (i < len && zg_var_name_char((unsigned char)text[i])) {
                    i++;
                }
            }
            name = text + start;
            nlen = i - start;

            if (brace) {
                if (i >= len || text[i] != '}') {
                    if (errlen) {
                        snprintf(err, errlen,
                                 "the closing bracket in \"%.*s\" variable is missing",
                                 (int)zg_min(nlen, 64), name);
                    }
                    goto failed;
                }
                i++;
            }
            if (nlen == 0) {
                if (errlen) {
                    snprintf(err, errlen, "invalid variable name in \"%.*s\"",
                             (int)zg_min(len, 128), text);
                }
                goto failed;
            }
            index = -1;
            if (vs != NULL && zg_var_lookup(name, nlen, &id, &skip) == ZG_OK
                && (id == ZG_VAR_SENT_HTTP || id == ZG_VAR_UPSTREAM_HTTP)) {
                vs->resp_headers = 1;
            }
            if (vs != NULL && zg_var_lookup(name, nlen, &id, &skip) == ZG_OK
                && (id == ZG_VAR_UPSTREAM_ADDR || id == ZG_VAR_UPSTREAM_STATUS
                    || id == ZG_VAR_UPSTREAM_RESPONSE_TIME)) {
                vs->upstream_vars = 1;
            }
            if (zg_var_lookup(name, nlen, &id, &skip) != ZG_OK && vs != NULL) {
                index = zg_vars_index(vs, name, nlen, file, line);
                if (index < 0) {
                    if (errlen) {
                        snprintf(err, errlen, "out of memory");
                    }
                    goto failed;
                }
                id = ZG_VAR_NAMED;
                skip = nlen;
            } else if (zg_var_lookup(name, nlen, &id, &skip) != ZG_OK) {
                if (errlen) {
                    snprintf(err, errlen, "unknown \"%.*s\" variable",
                             (int)zg_min(nlen, 128), name);
                }
                goto failed;
            }

            if (pass == 0) {
                nparts++;
                tlen += nlen - skip;
                continue;
            }
            part = &cv->parts[nparts++];
            part->type = id;
            part->off = (uint32_t)tlen;
            part->len = id == ZG_VAR_NAMED ? (uint32_t)index : (uint32_t)(nlen - skip);
            for (k = skip; k < nlen; k++) {
                t[tlen++] = (char)zg_lower((unsigned char)name[k]);
            }
        }

        if (pass == 0) {
            cv = malloc(sizeof(zg_cv_t) + nparts * sizeof(zg_cv_part_t) + len + 1);
            if (cv == NULL) {
                if (errlen) {
                    snprintf(err, errlen, "out of memory");
                }
                return NULL;
            }
            cv->text = (char *)&cv->parts[nparts];
        }
    }

    cv->nparts = (uint32_t)nparts;
    cv->nvars = 0;
    for (i = 0; i < nparts; i++) {
        if (cv->parts[i].type != ZG_VAR_LITERAL) {
            cv->nvars++;
        }
    }
    cv->text_len = tlen;
    cv->text[tlen] = '\0';
    return cv;

failed:
    free(cv);
    return NULL;
}

/* Frees a value from zg_cv_compile; NULL is fine. */
void zg_cv_free(zg_cv_t *cv)
{
    free(cv);
}

/* 1 if cv has no variables. */
int zg_cv_is_const(const zg_cv_t *cv)
{
    return cv->nvars == 0;
}

/* The text of a constant value (NUL-terminated); empty if cv has variables. */
zg_str_t zg_cv_const(const zg_cv_t *cv)
{
    zg_str_t s = { 0, "" };

    if (cv->nvars == 0) {
        s.len = cv->text_len;
        s.data = cv->text;
    }
    return s;
}

/* the index of the one named variable cv is, or -1 */
int zg_cv_var_index(const zg_cv_t *cv)
{
    if (cv->nparts == 1 && cv->parts[0].type == ZG_VAR_NAMED) {
        return (int)cv->parts[0].len;
    }
    return -1;
}

/* ---- the registry of named variables ---- */

zg_vars_t *zg_vars_new(void)
{
    return calloc(1, sizeof(zg_vars_t));
}

void zg_vars_free(zg_vars_t *vs)
{
    if (vs == NULL) {
        return;
    }
    for (int i = 0; i < vs->n; i++) {
        free(vs->defs[i].name);
    }
    free(vs->defs);
    free(vs);
}

static int zg_vars_find(const zg_vars_t *vs, const char *name, size_t len)
{
    for (int i = 0; i < vs->n; i++) {
        if (vs->defs[i].len == len && strncasecmp(vs->defs[i].name, name, len) == 0) {
            return i;
        }
    }
    return -1;
}

int zg_vars_index(zg_vars_t *vs, const char *name, size_t len, const char *file, int line)
{
    zg_var_def_t *d;
    int i = zg_vars_find(vs, name, len);

    if (i >= 0) {
        return i;
    }
    if (vs->n == vs->cap) {
        int cap = vs->cap ? vs->cap * 2 : 16;
        d = realloc(vs->defs, (size_t)cap * sizeof(*d));
        if (d == NULL) {
            return -1;
        }
        vs->defs = d;
        vs->cap = cap;
    }
    d = &vs->defs[vs->n];
    memset(d, 0, sizeof(*d));
    d->name = malloc(len + 1);
    if (d->name == NULL) {
        return -1;
    }
    for (size_t k = 0; k < len; k++) {
        d->name[k] = (char)zg_lower((unsigned char)name[k]);
    }
    d->name[len] = '\0';
    d->len = len;
    d->file = file;
    d->line = line;
    return vs->n++;
}

int zg_vars_define(zg_vars_t *vs, const char *name, size_t len, zg_var_get_pt get,
                   const void *data, int flags, int *index)
{
    int i = zg_vars_index(vs, name, len, NULL, 0);
    zg_var_def_t *d;

    if (i < 0) {
        return ZG_ERROR;
    }
    d = &vs->defs[i];
    if (index != NULL) {
        *index = i;
    }
    if (d->get != NULL) {
        if ((d->flags & ZG_VAR_CHANGEABLE) && (flags & ZG_VAR_CHANGEABLE)) {
            return ZG_OK;
        }
        return ZG_DECLINED;
    }
    d->get = get;
    d->data = data;
    d->flags = flags;
    return ZG_OK;
}

static int zg_var_capture_get(zg_var_ctx_t *ctx, const void *data, zg_str_t *out)
{
    const char *name = data;

    *out = zg_regex_cap_named(ctx->caps, name, strlen(name));
    return out->data != NULL ? ZG_OK : ZG_DECLINED;
}

int zg_vars_define_captures(zg_vars_t *vs, const zg_regex_t *re)
{
    zg_str_t name;
    int group;

    for (int i = 0; zg_regex_named(re, i, &name, &group) == ZG_OK; i++) {
        int rc = zg_vars_define(vs, name.data, name.len, zg_var_capture_get, name.data,
                                ZG_VAR_NOCACHE | ZG_VAR_CHANGEABLE, NULL);
        if (rc != ZG_OK) {
            return rc;
        }
    }
    return ZG_OK;
}

int zg_vars_upstream(const zg_vars_t *vs)
{
    return vs != NULL && vs->upstream_vars;
}

int zg_vars_resp_headers(const zg_vars_t *vs)
{
    return vs != NULL && vs->resp_headers;
}

int zg_var_builtin(const char *name, size_t len)
{
    unsigned char id;
    size_t skip;

    return zg_var_lookup(name, len, &id, &skip) == ZG_OK;
}

const char *zg_vars_undefined(const zg_vars_t *vs, const char **file, int *line)
{
    for (int i = 0; vs != NULL && i < vs->n; i++) {
        if (vs->defs[i].get == NULL) {
            *file = vs->defs[i].file;
            *line = vs->defs[i].line;
            return vs->defs[i].name;
        }
    }
    return NULL;
}

/* ---- a request's values ---- */

static zg_var_state_t *zg_var_state(zg_var_ctx_t *ctx)
{
    zg_var_state_t *st = ctx->st;
    int n = ctx->vars != NULL ? ctx->vars->n : 0;

    if (st != NULL) {
        return st;
    }
    st = calloc(1, sizeof(*st) + (size_t)n * sizeof(zg_var_val_t));
    if (st == NULL) {
        return NULL;
    }
    st->vals = (zg_var_val_t *)(st + 1);
    st->nvals = n;
    ctx->st = st;
    return st;
}

void *zg_var_alloc(zg_var_ctx_t *ctx, size_t len)
{
    zg_var_state_t *st = zg_var_state(ctx);
    zg_var_mem_t *m;
    size_t size;
    void *p;

    if (st == NULL) {
        return NULL;
    }
    len = (len + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    m = st->mem;
    if (m == NULL || m->size - m->used < len) {
        size = len > 4000 ? len : 4000;
        m = malloc(sizeof(*m) + size);
        if (m == NULL) {
            return NULL;
        }
        m->size = size;
        m->used = 0;
        m->next = st->mem;
        st->mem = m;
    }
    p = (char *)m->data + m->used;
    m->used += len;
    return p;
}

void zg_var_ctx_free_state(zg_var_ctx_t *ctx)
{
    zg_var_state_t *st = ctx->st;
    zg_var_mem_t *m, *next;

    if (st == NULL) {
        return;
    }
    for (m = st->mem; m != NULL; m = next) {
        next = m->next;
        free(m);
    }
    free(st);
    ctx->st = NULL;
}

int zg_var_get(zg_var_ctx_t *ctx, int index, zg_str_t *out)
{
    zg_var_state_t *st = zg_var_state(ctx);
    const zg_var_def_t *d;
    zg_var_val_t *val;
    int rc;

    out->data = "";
    out->len = 0;
    if (st == NULL || index < 0 || index >= st->nvals) {
        return ZG_DECLINED;
    }
    d = &ctx->vars->defs[index];
    val = &st->vals[index];
    if (val->valid && (!(d->flags & ZG_VAR_NOCACHE) || (d->flags & ZG_VAR_CHANGEABLE))) {
        *out = val->v;
        return val->found ? ZG_OK : ZG_DECLINED;
    }
    if (val->busy || d->get == NULL) {
        return ZG_DECLINED;
    }
    val->busy = 1;
    rc = d->get(ctx, d->data, out);
    st = ctx->st;
    val = &st->vals[index];
    val->busy = 0;
    if (rc != ZG_OK) {
        out->data = "";
        out->len = 0;
    }
    val->v = *out;
    val->valid = 1;
    val->found = rc == ZG_OK;
    return rc == ZG_OK ? ZG_OK : ZG_DECLINED;
}

int zg_var_set(zg_var_ctx_t *ctx, int index, const char *p, size_t len)
{
    zg_var_state_t *st = zg_var_state(ctx);
    char *copy;

    if (st == NULL || index < 0 || index >= st->nvals) {
        return ZG_ERROR;
    }
    copy = zg_var_alloc(ctx, len + 1);
    if (copy == NULL) {
        return ZG_ERROR;
    }
    if (len) {
        memcpy(copy, p, len);
    }
    copy[len] = '\0';
    st = ctx->st;
    st->vals[index].v.data = copy;
    st->vals[index].v.len = len;
    st->vals[index].valid = 1;
    st->vals[index].found = 1;
    return ZG_OK;
}

int zg_cv_eval_str(const zg_cv_t *cv, zg_var_ctx_t *ctx, zg_str_t *out)
{
    char stack[512], *p;
    size_t n;

    if (cv->nvars == 0) {
        out->data = cv->text;
        out->len = cv->text_len;
        return ZG_OK;
    }
    n = zg_cv_eval(cv, ctx, 0, stack, sizeof(stack));
    p = zg_var_alloc(ctx, n + 1);
    if (p == NULL) {
        out->data = "";
        out->len = 0;
        return ZG_ERROR;
    }
    if (n <= sizeof(stack)) {
        memcpy(p, stack, n);
    } else {
        zg_cv_eval(cv, ctx, 0, p, n);
    }
    p[n] = '\0';
    out->data = p;
    out->len = n;
    return ZG_OK;
}

static void zg_cv_put(zg_cv_out_t *o, const char *p, size_t n)
{
    if (o->pos < o->len && n) {
        memcpy(o->buf + o->pos, p, zg_min(n, o->len - o->pos));
    }
    o->pos += n;
}

static void zg_cv_put_escaped(zg_cv_out_t *o, const char *p, size_t n)
{
    const unsigned char *s, *end;
    char esc[4];
    unsigned char c;

    if (n == 0) {
        return;
    }
    s = (const unsigned char *)p;
    end = s + n;

    while (s < end) {
        const unsigned char *run = s;

        while (s < end && *s >= 0x20 && *s <= 0x7e && *s != '"' && *s != '\\') {
            s++;
        }
        if (s != run) {
            zg_cv_put(o, (const char *)run, (size_t)(s - run));
        }
        if (s == end) {
            break;
        }
        c = *s++;
        esc[0] = '\\';
        esc[1] = 'x';
        esc[2] = zg_hex[c >> 4];
        esc[3] = zg_hex[c & 0xf];
        zg_cv_put(o, esc, 4);
    }
}

static int zg_remote_port(const struct sockaddr *sa)
{
    if (sa == NULL) {
        return 0;
    }
    if (sa->sa_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    }
    if (sa->sa_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    }
    return 0;
}

static zg_str_t zg_var_header_in(const zg_str_t *names, const zg_str_t *values, size_t n,
                                 const char *name, size_t len)
{
    zg_str_t v = { 0, NULL };
    size_t i, k;
    const zg_str_t *h;

    for (i = 0; i < n; i++) {
        h = &names[i];
        if (h->len != len) {
            continue;
        }
        for (k = 0; k < len; k++) {
            if (zg_hdr_char((unsigned char)h->data[k]) != (unsigned char)name[k]) {
                break;
            }
        }
        if (k == len) {
            return values[i];
        }
    }
    return v;
}

static zg_str_t zg_var_header(const zg_var_ctx_t *ctx, const char *name, size_t len)
{
    return zg_var_header_in(ctx->hdr_names, ctx->hdr_values, ctx->nhdrs, name, len);
}

/* $http_x_forwarded_for and $http_cookie: every such header line, joined with ", "
 * and "; " as nginx 1.22 does (the other $http_NAME are the first line) */
static zg_str_t zg_var_multi(zg_var_ctx_t *ctx, const char *name, size_t len)
{
    const char *sep = len == 6 ? "; " : ", ";
    zg_str_t first = { 0, NULL }, v;
    size_t n = 0, total = 0, k;
    char *p;

    for (size_t i = 0; i < ctx->nhdrs; i++) {
        const zg_str_t *h = &ctx->hdr_names[i];
        if (h->len != len) {
            continue;
        }
        for (k = 0; k < len && zg_hdr_char((unsigned char)h->data[k]) == (unsigned char)name[k];
             k++) {
        }
        if (k == len) {
            if (n++ == 0) {
                first = ctx->hdr_values[i];
            }
            total += ctx->hdr_values[i].len + 2;
        }
    }
    if (n < 2 || (p = zg_var_alloc(ctx, total)) == NULL) {
        return first;
    }
    v.data = p;
    v.len = 0;
    for (size_t i = 0; i < ctx->nhdrs; i++) {
        const zg_str_t *h = &ctx->hdr_names[i];
        if (h->len != len) {
            continue;
        }
        for (k = 0; k < len && zg_hdr_char((unsigned char)h->data[k]) == (unsigned char)name[k];
             k++) {
        }
        if (k == len) {
            if (v.len) {
                memcpy(p + v.len, sep, 2);
                v.len += 2;
            }
            memcpy(p + v.len, ctx->hdr_values[i].data, ctx->hdr_values[i].len);
            v.len += ctx->hdr_values[i].len;
        }
    }
    return v;
}

/* as nginx's ngx_http_parse_multi_header_lines on Cookie: "NAME=" at the start of a
 * cookie (after ';' and spaces), the name compared case-insensitively */
static zg_str_t zg_var_cookie(const zg_var_ctx_t *ctx, const char *name, size_t len)
{
    zg_str_t v = { 0, NULL };
    const char *p, *end, *q;

    for (size_t i = 0; i < ctx->nhdrs; i++) {
        if (ctx->hdr_names[i].len != 6 || strncasecmp(ctx->hdr_names[i].data, "cookie", 6)) {
            continue;
        }
        p = ctx->hdr_values[i].data;
        end = p + ctx->hdr_values[i].len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ';' || *p == ',')) {
                p++;
            }
            if ((size_t)(end - p) > len && p[len] == '=' && strncasecmp(p, name, len) == 0) {
                p += len + 1;
                for (q = p; q < end && *q != ';' && *q != ','; q++) {
                }
                v.data = p;
                v.len = (size_t)(q - p);
                return v;
            }
            while (p < end && *p != ';' && *p != ',') {
                p++;
            }
        }
    }
    return v;
}

static size_t zg_var_addr_text(const struct sockaddr *sa, char *tmp)
{
    if (sa && sa->sa_family == AF_INET) {
        if (inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, tmp, 64)) {
            return strlen(tmp);
        }
    } else if (sa && sa->sa_family == AF_INET6) {
        if (inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, tmp, 64)) {
            return strlen(tmp);
        }
    } else if (sa && sa->sa_family == AF_UNIX) {
        memcpy(tmp, "unix:", 5);
        return 5;
    }
    return 0;
}

/* the listening address, or for a wildcard listen the socket's own address */
static const struct sockaddr *zg_var_local(const zg_var_ctx_t *ctx,
                                           struct sockaddr_storage *ss)
{
    const struct sockaddr *sa = ctx->local;
    socklen_t sl = sizeof(*ss);
    int wild = 0;

    if (sa == NULL) {
        return NULL;
    }
    if (sa->sa_family == AF_INET) {
        wild = ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    } else if (sa->sa_family == AF_INET6) {
        wild = IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    }
    if (wild && ctx->local_fd >= 0
        && getsockname(ctx->local_fd, (struct sockaddr *)ss, &sl) == 0) {
        return (const struct sockaddr *)ss;
    }
    return sa;
}

/* $proxy_add_x_forwarded_for: the X-Forwarded-For headers, ", ", $remote_addr */
static zg_str_t zg_var_xff(zg_var_ctx_t *ctx, char *tmp)
{
    zg_str_t v = { 0, tmp };
    size_t total = 0, n, alen;
    char addr[64], *p;

    alen = zg_var_addr_text(ctx->remote, addr);
    for (size_t i = 0; i < ctx->nhdrs; i++) {
        if (ctx->hdr_names[i].len == 15
            && strncasecmp(ctx->hdr_names[i].data, "x-forwarded-for", 15) == 0) {
            total += ctx->hdr_values[i].len + 2;
        }
    }
    if (total == 0) {
        memcpy(tmp, addr, alen);
        v.len = alen;
        return v;
    }
    p = zg_var_alloc(ctx, total + alen);
    if (p == NULL) {
        return v;
    }
    n = 0;
    for (size_t i = 0; i < ctx->nhdrs; i++) {
        if (ctx->hdr_names[i].len == 15
            && strncasecmp(ctx->hdr_names[i].data, "x-forwarded-for", 15) == 0) {
            memcpy(p + n, ctx->hdr_values[i].data, ctx->hdr_values[i].len);
            n += ctx->hdr_values[i].len;
            p[n++] = ',';
            p[n++] = ' ';
        }
    }
    memcpy(p + n, addr, alen);
    v.data = p;
    v.len = n + alen;
    return v;
}

/* as nginx's ngx_http_arg: "name=" at the start or after '&', case-insensitive */
static zg_str_t zg_var_arg(const zg_var_ctx_t *ctx, const char *name, size_t len)
{
    zg_str_t v = { 0, NULL };
    const char *p, *end, *q;
    size_t k;

    if (ctx->args.len <= len) {
        return v;
    }
    p = ctx->args.data;
    end = p + ctx->args.len;
    while (p + len < end) {
        for (k = 0; k < len; k++) {
            if (zg_lower((unsigned char)p[k]) != (unsigned char)name[k]) {
                break;
            }
        }
        if (k == len && p[len] == '=') {
            p += len + 1;
            for (q = p; q < end && *q != '&'; q++) {
            }
            v.data = p;
            v.len = (size_t)(q - p);
            return v;
        }
        q = memchr(p, '&', (size_t)(end - p));
        if (q == NULL) {
            break;
        }
        p = q + 1;
    }
    return v;
}

/* "uri?args" as received, taken from the request line when it holds it */
static zg_str_t zg_var_request_uri(const zg_var_ctx_t *ctx)
{
    zg_str_t v = { 0, NULL };
    const char *p = ctx->request_line.data, *end;
    size_t m = ctx->method.len, n = ctx->request_line.len;

    if (n <= m + 1 || memcmp(p, ctx->method.data, m) != 0 || p[m] != ' ') {
        return v;
    }
    p += m + 1;
    end = ctx->request_line.data + n;
    if (ctx->protocol.len && (size_t)(end - p) > ctx->protocol.len + 1 &&
        memcmp(end - ctx->protocol.len, ctx->protocol.data, ctx->protocol.len) == 0 &&
        end[-(ptrdiff_t)ctx->protocol.len - 1] == ' ')
    {
        end -= ctx->protocol.len + 1;
    }
    v.data = p;
    v.len = (size_t)(end - p);
    return v;
}

static size_t zg_fmt_time_local(char *p, time_t t)
{
    static const char *months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    long off;

    localtime_r(&t, &tm);
    off = tm.tm_gmtoff / 60;
    return (size_t)snprintf(p, 64, "%02d/%s/%d:%02d:%02d:%02d %c%02ld%02ld", tm.tm_mday,
                            months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                            tm.tm_sec, off < 0 ? '-' : '+', labs(off) / 60,
                            labs(off) % 60);
}

static size_t zg_fmt_time_iso8601(char *p, time_t t)
{
    struct tm tm;
    long off;

    localtime_r(&t, &tm);
    off = tm.tm_gmtoff / 60;
    return (size_t)snprintf(p, 64, "%d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                            tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+', labs(off) / 60,
                            labs(off) % 60);
}

/* formatted local times are cached per second: logs ask for them on every line */
typedef struct {
    time_t t;
    size_t len;
    char text[64];
} zg_time_cache_t;

static _Thread_local zg_time_cache_t zg_cache_local = { (time_t)-1, 0, "" };
static _Thread_local zg_time_cache_t zg_cache_iso = { (time_t)-1, 0, "" };

static zg_str_t zg_var_time(zg_time_cache_t *c, time_t t, size_t (*fmt)(char *, time_t))
{
    zg_str_t v;

    if (c->t != t || c->len == 0) {
        c->len = fmt(c->text, t);
        c->t = t;
    }
    v.data = c->text;
    v.len = c->len;
    return v;
}

static size_t zg_fmt_msec(char *p, uint64_t ms)
{
    size_t n = zg_fmt_u64(p, ms / 1000);

    p[n] = '.';
    p[n + 1] = (char)('0' + ms % 1000 / 100);
    p[n + 2] = (char)('0' + ms % 100 / 10);
    p[n + 3] = (char)('0' + ms % 10);
    return n + 4;
}

/* The value of one variable; tmp (64 bytes) holds values built on the fly. */
/* an RFC 2253 distinguished name, as nginx's $ssl_client_s_dn */
static zg_str_t zg_var_dn(X509_NAME *name, char *buf, size_t len)
{
    zg_str_t v = { 0, buf };
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL || name == NULL) {
        BIO_free(b);
        return v;
    }
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(b, buf, (int)len);
        v.len = n > 0 ? (size_t)n : 0;
    }
    BIO_free(b);
    return v;
}

/* the TLS connection's variables ("" on a plain one) */
static zg_str_t zg_var_ssl(int type, SSL *ssl)
{
    /* workers are single-threaded; the value is copied out before the next one */
    static char sbuf[4096];
    static const char hex[] = "0123456789ABCDEF";
    zg_str_t v = { 0, sbuf };
    const char *p = NULL;
    X509 *cert;

    if (ssl == NULL) {
        return v;
    }
    switch (type) {
    case ZG_VAR_HTTPS:
        p = "on";
        break;
    case ZG_VAR_SSL_PROTOCOL:
        p = SSL_get_version(ssl);
        break;
    case ZG_VAR_SSL_CIPHER:
        p = SSL_get_cipher_name(ssl);
        break;
    case ZG_VAR_SSL_SESSION_REUSED:
        p = SSL_session_reused(ssl) ? "r" : ".";
        break;
    case ZG_VAR_SSL_SERVER_NAME:
        p = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        break;
    case ZG_VAR_SSL_SESSION_ID: {
        unsigned int n = 0;
        SSL_SESSION *sess = SSL_get0_session(ssl);
        const unsigned char *id = sess ? SSL_SESSION_get_id(sess, &n) : NULL;
        for (unsigned int i = 0; id != NULL && i < n && v.len + 2 < sizeof(sbuf); i++) {
            /* lowercase, as nginx's ngx_hex_dump */
            sbuf[v.len++] = (char)(hex[id[i] >> 4] | 0x20);
            sbuf[v.len++] = (char)(hex[id[i] & 15] | 0x20);
        }
        return v;
    }
    case ZG_VAR_SSL_CLIENT_VERIFY:
        cert = SSL_get1_peer_certificate(ssl);
        if (cert == NULL) {
            p = "NONE";
        } else {
            long rc = SSL_get_verify_result(ssl);
            X509_free(cert);
            if (rc == X509_V_OK) {
                p = "SUCCESS";
            } else {
                v.len = (size_t)snprintf(sbuf, sizeof(sbuf), "FAILED:%s",
                                         X509_verify_cert_error_string(rc));
                v.len = zg_min(v.len, sizeof(sbuf) - 1);
                return v;
            }
        }
        break;
    case ZG_VAR_SSL_ALPN_PROTOCOL: {
        const unsigned char *a = NULL;
        unsigned int n = 0;
        SSL_get0_alpn_selected(ssl, &a, &n);
        v.data = (const char *)a;
        v.len = a ? n : 0;
        if (a == NULL) {
            v.data = sbuf;
        }
        return v;
    }
    case ZG_VAR_SSL_CURVE: {
        /* as nginx: the group's short name, or 0x.... for one OpenSSL has no name for */
        int nid = SSL_get_negotiated_group(ssl);
        if (nid == NID_undef || nid == 0) {
            return v;
        }
        if ((nid & TLSEXT_nid_unknown) == 0 && OBJ_nid2sn(nid) != NULL) {
            p = OBJ_nid2sn(nid);
            break;
        }
        v.len = (size_t)snprintf(sbuf, sizeof(sbuf), "0x%04x", nid & 0xffff);
        return v;
    }
    case ZG_VAR_SSL_CLIENT_S_DN:
    case ZG_VAR_SSL_CLIENT_I_DN:
    case ZG_VAR_SSL_CLIENT_FINGERPRINT:
    case ZG_VAR_SSL_CLIENT_SERIAL:
    case ZG_VAR_SSL_CLIENT_V_START:
    case ZG_VAR_SSL_CLIENT_V_END:
    case ZG_VAR_SSL_CLIENT_V_REMAIN:
        cert = SSL_get1_peer_certificate(ssl);
        if (cert == NULL) {
            return v;
        }
        if (type == ZG_VAR_SSL_CLIENT_V_START || type == ZG_VAR_SSL_CLIENT_V_END) {
            /* ASN1_TIME_print's "Dec  3 06:00:00 2026 GMT", as nginx */
            BIO *b = BIO_new(BIO_s_mem());
            if (b != NULL && ASN1_TIME_print(b, type == ZG_VAR_SSL_CLIENT_V_START
                                                    ? X509_get0_notBefore(cert)
                                                    : X509_get0_notAfter(cert)) == 1) {
                int n = BIO_read(b, sbuf, (int)sizeof(sbuf) - 1);
                v.len = n > 0 ? (size_t)n : 0;
            }
            BIO_free(b);
        } else if (type == ZG_VAR_SSL_CLIENT_V_REMAIN) {
            /* whole days left; "0" under one day, as nginx */
            int days = 0, secs = 0;
            if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)) == 1) {
                long long left = (long long)days * 86400 + secs;
                v.len = (size_t)snprintf(sbuf, sizeof(sbuf), "%lld",
                                         left < 86400 ? 0 : left / 86400);
            }
        } else if (type == ZG_VAR_SSL_CLIENT_S_DN) {
            v = zg_var_dn(X509_get_subject_name(cert), sbuf, sizeof(sbuf));
        } else if (type == ZG_VAR_SSL_CLIENT_I_DN) {
            v = zg_var_dn(X509_get_issuer_name(cert), sbuf, sizeof(sbuf));
        } else if (type == ZG_VAR_SSL_CLIENT_FINGERPRINT) {
            unsigned char md[EVP_MAX_MD_SIZE];
            unsigned int n = 0;
            if (X509_digest(cert, EVP_sha1(), md, &n) == 1) {
                for (unsigned int i = 0; i < n; i++) {
                    sbuf[v.len++] = (char)(hex[md[i] >> 4] | 0x20);
                    sbuf[v.len++] = (char)(hex[md[i] & 15] | 0x20);
                }
            }
        } else {
            BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
            char *h = bn ? BN_bn2hex(bn) : NULL;
            if (h != NULL) {
                v.len = zg_min(strlen(h), sizeof(sbuf) - 1);
                memcpy(sbuf, h, v.len);
                OPENSSL_free(h);
            }
            BN_free(bn);
        }
        X509_free(cert);
        return v;
    }
    if (p != NULL) {
        v.data = p;
        v.len = strlen(p);
    }
    return v;
}

static zg_str_t zg_var_value(const zg_cv_t *cv, const zg_cv_part_t *part,
                             const zg_var_ctx_t *ctx, char *tmp)
{
    zg_str_t v = { 0, tmp };
    const struct sockaddr *sa = ctx->remote;
    struct timespec ts;
    zg_msec_t now;
    uint64_t n;
    int port, st;

    switch (part->type) {

    case ZG_VAR_BINARY_REMOTE_ADDR:
        if (sa && sa->sa_family == AF_INET) {
            v.data = (const char *)&((const struct sockaddr_in *)sa)->sin_addr;
            v.len = 4;
        } else if (sa && sa->sa_family == AF_INET6) {
            v.data = (const char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
            v.len = 16;
        } else if (sa && sa->sa_family == AF_UNIX) {
            /* as nginx: every unix client is "unix:", one key */
            v.data = "unix:";
            v.len = 5;
        }
        return v;

    case ZG_VAR_REMOTE_ADDR:
        v.len = zg_var_addr_text(sa, tmp);
        return v;

    case ZG_VAR_REMOTE_PORT:
        port = zg_remote_port(sa);
        if (port > 0) {
            v.len = zg_fmt_u64(tmp, (uint64_t)port);
        }
        return v;

    case ZG_VAR_HTTP:
        if ((part->len == 15 && memcmp(cv->text + part->off, "x_forwarded_for", 15) == 0)
            || (part->len == 6 && memcmp(cv->text + part->off, "cookie", 6) == 0)) {
            return zg_var_multi((zg_var_ctx_t *)ctx, cv->text + part->off, part->len);
        }
        return zg_var_header(ctx, cv->text + part->off, part->len);

    case ZG_VAR_ARG:
        return zg_var_arg(ctx, cv->text + part->off, part->len);

    case ZG_VAR_URI:
        return ctx->uri;

    case ZG_VAR_HTTPS:
    case ZG_VAR_SSL_PROTOCOL:
    case ZG_VAR_SSL_CIPHER:
    case ZG_VAR_SSL_SESSION_ID:
    case ZG_VAR_SSL_SESSION_REUSED:
    case ZG_VAR_SSL_SERVER_NAME:
    case ZG_VAR_SSL_CLIENT_VERIFY:
    case ZG_VAR_SSL_CLIENT_S_DN:
    case ZG_VAR_SSL_CLIENT_I_DN:
    case ZG_VAR_SSL_CLIENT_FINGERPRINT:
    case ZG_VAR_SSL_CLIENT_SERIAL:
    case ZG_VAR_SSL_ALPN_PROTOCOL:
    case ZG_VAR_SSL_CURVE:
    case ZG_VAR_SSL_CLIENT_V_START:
    case ZG_VAR_SSL_CLIENT_V_END:
    case ZG_VAR_SSL_CLIENT_V_REMAIN:
        return zg_var_ssl(part->type, ctx->ssl);

    case ZG_VAR_CAPTURE:
        v = zg_regex_cap(ctx->caps, cv->text[part->off] - '0');
        if (v.data == NULL) {
            v.data = tmp;
        }
        return v;

    case ZG_VAR_REQUEST_URI:
        if (ctx->request_uri.data) {
            return ctx->request_uri;
        }
        return zg_var_request_uri(ctx); /* empty: the caller joins uri and args */

    case ZG_VAR_ARGS:
        return ctx->args;

    case ZG_VAR_HOST:
        return ctx->host.len ? ctx->host : ctx->server_name;

    case ZG_VAR_SERVER_NAME:
        return ctx->server_name;

    case ZG_VAR_REQUEST_METHOD:
        return ctx->method;

    case ZG_VAR_REQUEST:
        return ctx->request_line;

    case ZG_VAR_STATUS:
        st = ctx->status;
        if (st < 0 || st > 999) {
            st = 0;
        }
        tmp[0] = (char)('0' + st / 100);
        tmp[1] = (char)('0' + st / 10 % 10);
        tmp[2] = (char)('0' + st % 10);
        v.len = 3;
        return v;

    case ZG_VAR_SERVER_PROTOCOL:
        return ctx->protocol;

    case ZG_VAR_BODY_BYTES_SENT:
        v.len = zg_fmt_u64(tmp, ctx->body_bytes_sent);
        return v;

    case ZG_VAR_BYTES_SENT:
        v.len = zg_fmt_u64(tmp, ctx->bytes_sent);
        return v;

    case ZG_VAR_REQUEST_LENGTH:
        v.len = zg_fmt_u64(tmp, ctx->request_length);
        return v;

    case ZG_VAR_REQUEST_TIME:
        now = zg_time_msec();
        n = now > ctx->start_msec ? now - ctx->start_msec : 0;
        v.len = zg_fmt_msec(tmp, n);
        return v;

    case ZG_VAR_TIME_LOCAL:
        return zg_var_time(&zg_cache_local, ctx->start_time, zg_fmt_time_local);

    case ZG_VAR_TIME_ISO8601:
        return zg_var_time(&zg_cache_iso, ctx->start_time, zg_fmt_time_iso8601);

    case ZG_VAR_MSEC:
        clock_gettime(CLOCK_REALTIME, &ts);
        v.len = zg_fmt_msec(tmp, (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
        return v;

    case ZG_VAR_UPSTREAM_ADDR:
        return ctx->upstream_addr;

    case ZG_VAR_UPSTREAM_STATUS:
        return ctx->upstream_status;

    case ZG_VAR_UPSTREAM_RESPONSE_TIME:
        return ctx->upstream_response_time;

    case ZG_VAR_LIMIT_REQ_STATUS:
    case ZG_VAR_LIMIT_CONN_STATUS:
        st = part->type == ZG_VAR_LIMIT_REQ_STATUS ? ctx->limit_req_status
                                                   : ctx->limit_conn_status;
        if (st > ZG_LIMIT_NONE && st <= ZG_LIMIT_REJECTED_DRY_RUN) {
            v.data = zg_limit_status_names[st];
            v.len = strlen(v.data);
        }
        return v;

    case ZG_VAR_CONNECTION:
        v.len = zg_fmt_u64(tmp, ctx->connection);
        return v;

    case ZG_VAR_CONNECTION_REQUESTS:
        v.len = zg_fmt_u64(tmp, ctx->connection_requests);
        return v;

    case ZG_VAR_PROXY_ADD_XFF:
        return zg_var_xff((zg_var_ctx_t *)ctx, tmp);

    case ZG_VAR_SCHEME:
        v.data = ctx->ssl != NULL ? "https" : "http";
        v.len = strlen(v.data);
        return v;

    case ZG_VAR_REQUEST_ID: {
        zg_var_state_t *st = zg_var_state((zg_var_ctx_t *)ctx);
        unsigned char rnd[16];
        if (st == NULL) {
            return v;
        }
        if (st->request_id[0] == '\0') {
            if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
                return v;
            }
            for (int i = 0; i < 16; i++) {
                st->request_id[2 * i] = "0123456789abcdef"[rnd[i] >> 4];
                st->request_id[2 * i + 1] = "0123456789abcdef"[rnd[i] & 0xf];
            }
        }
        v.data = st->request_id;
        v.len = 32;
        return v;
    }

    case ZG_VAR_SERVER_PORT:
    case ZG_VAR_SERVER_ADDR: {
        struct sockaddr_storage ss;
        const struct sockaddr *la = zg_var_local(ctx, &ss);
        if (part->type == ZG_VAR_SERVER_ADDR && la != NULL && la->sa_family == AF_UNIX) {
            /* as nginx: "unix:" and the listening socket's path */
            const char *path = ((const struct sockaddr_un *)(const void *)la)->sun_path;
            size_t n = strnlen(path, sizeof(((struct sockaddr_un *)0)->sun_path));
            n = zg_min(n, ZG_VAR_TMP - 5);
            memcpy(tmp, "unix:", 5);
            memcpy(tmp + 5, path, n);
            v.len = 5 + n;
        } else if (part->type == ZG_VAR_SERVER_ADDR) {
            v.len = zg_var_addr_text(la, tmp);
        } else if ((port = zg_remote_port(la)) > 0) {
            v.len = zg_fmt_u64(tmp, (uint64_t)port);
        }
        return v;
    }

    case ZG_VAR_HOSTNAME: {
        static char host[64];
        static size_t hlen;
        if (hlen == 0) {
            if (gethostname(host, sizeof(host) - 1) != 0) {
                host[0] = '\0';
            }
            host[sizeof(host) - 1] = '\0';
            hlen = strlen(host);
        }
        v.data = host;
        v.len = hlen;
        return v;
    }

    case ZG_VAR_PID:
        v.len = zg_fmt_u64(tmp, (uint64_t)getpid());
        return v;

    case ZG_VAR_VERSION:
        v.data = ZG_VERSION;
        v.len = sizeof(ZG_VERSION) - 1;
        return v;

    case ZG_VAR_REALIP_REMOTE_ADDR:
        v.len = zg_var_addr_text(ctx->realip ? ctx->realip : sa, tmp);
        return v;

    case ZG_VAR_REALIP_REMOTE_PORT:
        port = zg_remote_port(ctx->realip ? ctx->realip : sa);
        if (port > 0) {
            v.len = zg_fmt_u64(tmp, (uint64_t)port);
        }
        return v;

    case ZG_VAR_BYTES_RECEIVED:
        v.len = zg_fmt_u64(tmp, ctx->bytes_received);
        return v;

    case ZG_VAR_UPSTREAM_BYTES_SENT:
        return ctx->upstream_bytes_sent;

    case ZG_VAR_UPSTREAM_BYTES_RECEIVED:
        return ctx->upstream_bytes_received;

    case ZG_VAR_UPSTREAM_CONNECT_TIME:
        return ctx->upstream_connect_time;

    case ZG_VAR_PROXY_PROTOCOL_ADDR:
        return ctx->proxy_protocol_addr;

    case ZG_VAR_COOKIE:
        return zg_var_cookie(ctx, cv->text + part->off, part->len);

    case ZG_VAR_SENT_HTTP:
        return zg_var_header_in(ctx->sent_names, ctx->sent_values, ctx->nsent,
                                cv->text + part->off, part->len);

    case ZG_VAR_UPSTREAM_HTTP:
        return zg_var_header_in(ctx->up_names, ctx->up_values, ctx->nup,
                                cv->text + part->off, part->len);

    case ZG_VAR_IS_ARGS:
        if (ctx->args.len) {
            v.data = "?";
            v.len = 1;
        }
        return v;

    case ZG_VAR_CONTENT_TYPE:
        return zg_var_header(ctx, "content_type", 12);

    case ZG_VAR_CONTENT_LENGTH:
        return zg_var_header(ctx, "content_length", 14);

    case ZG_VAR_NAMED:
        zg_var_get((zg_var_ctx_t *)ctx, (int)part->len, &v);
        return v;

    case ZG_VAR_REMOTE_USER: {
        /* workers are single-threaded; the value is copied out before the next one */
        static char ubuf[4096];
        zg_str_t user, passwd;
        if (zg_var_basic_auth(ctx, ubuf, sizeof(ubuf), &user, &passwd) == ZG_OK) {
            v = user;
        }
        return v;
    }
    }

    return v;
}

/* base64 digit value, 64 for a byte outside the alphabet */
static unsigned char zg_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return (unsigned char)(c - 'A');
    }
    if (c >= 'a' && c <= 'z') {
        return (unsigned char)(c - 'a' + 26);
    }
    if (c >= '0' && c <= '9') {
        return (unsigned char)(c - '0' + 52);
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return 64;
}

int zg_var_basic_auth(const zg_var_ctx_t *ctx, char *buf, size_t len, zg_str_t *user,
                      zg_str_t *passwd)
{
    static const char name[] = "authorization";
    zg_str_t h = zg_var_header(ctx, name, sizeof(name) - 1);
    const unsigned char *p = (const unsigned char *)h.data;
    size_t n = h.len, i, k, out = 0;
    uint32_t acc = 0;

    if (n < 6 || strncasecmp(h.data, "Basic ", 6) != 0) {
        return ZG_DECLINED;
    }
    p += 6;
    n -= 6;
    while (n && *p == ' ') {
        p++;
        n--;
    }
    /* as ngx_decode_base64: up to the first '=', every byte in the alphabet */
    for (k = 0; k < n && p[k] != '='; k++) {
        if (zg_b64_value(p[k]) == 64) {
            return ZG_DECLINED;
        }
    }
    if (k == 0 || k % 4 == 1 || k / 4 * 3 + 2 > len) {
        return ZG_DECLINED;
    }
    for (i = 0; i < k; i++) {
        acc = acc << 6 | zg_b64_value(p[i]);
        if (i % 4 == 3) {
            buf[out++] = (char)(acc >> 16);
            buf[out++] = (char)(acc >> 8);
            buf[out++] = (char)acc;
            acc = 0;
        }
    }
    if (k % 4 == 2) {
        buf[out++] = (char)(acc >> 4);
    } else if (k % 4 == 3) {
        buf[out++] = (char)(acc >> 10);
        buf[out++] = (char)(acc >> 2);
    }
    char *colon = memchr(buf, ':', out);
    if (colon == NULL || colon == buf) {
        return ZG_DECLINED;
    }
    user->data = buf;
    user->len = (size_t)(colon - buf);
    passwd->data = colon + 1;
    passwd->len = out - user->len - 1;
    return ZG_OK;
}

/* Writes cv for ctx into buf: snprintf semantics without the NUL; with escape,
 * variable bytes outside 0x20..0x7e, '"' and '\' become \xXX and an empty
 * variable value is written as "-", as in nginx's access log. */
size_t zg_cv_eval(const zg_cv_t *cv, const zg_var_ctx_t *ctx, int escape, char *buf,
                  size_t len)
{
    const zg_cv_part_t *part, *end;
    zg_cv_out_t o;
    zg_str_t v;
    char tmp[ZG_VAR_TMP];

    part = cv->parts;

    if (cv->nparts == 1 && part->type == ZG_VAR_BINARY_REMOTE_ADDR && !escape) {
        v = zg_var_value(cv, part, ctx, tmp);
        if (v.len && len) {
            memcpy(buf, v.data, zg_min(v.len, len));
        }
        return v.len;
    }

    o.buf = buf;
    o.len = len;
    o.pos = 0;

    for (end = part + cv->nparts; part < end; part++) {

        if (part->type == ZG_VAR_LITERAL) {
            zg_cv_put(&o, cv->text + part->off, part->len);
            continue;
        }

        v = zg_var_value(cv, part, ctx, tmp);

        if (v.len == 0 && part->type == ZG_VAR_REQUEST_URI) {
            if (escape) {
                zg_cv_put_escaped(&o, ctx->uri.data, ctx->uri.len);
            } else {
                zg_cv_put(&o, ctx->uri.data, ctx->uri.len);
            }
            if (ctx->args.len) {
                zg_cv_put(&o, "?", 1);
                if (escape) {
                    zg_cv_put_escaped(&o, ctx->args.data, ctx->args.len);
                } else {
                    zg_cv_put(&o, ctx->args.data, ctx->args.len);
                }
            } else if (escape && ctx->uri.len == 0) {
                zg_cv_put(&o, "-", 1);
            }
            continue;
        }

        if (!escape) {
            zg_cv_put(&o, v.data, v.len);
        } else if (v.len == 0) {
            zg_cv_put(&o, "-", 1);
        } else {
            zg_cv_put_escaped(&o, v.data, v.len);
        }
    }
    return o.pos;
}

const char *zg_var_client(const zg_var_ctx_t *ctx, char *buf, size_t len)
{
    const struct sockaddr *sa = ctx != NULL ? ctx->remote : NULL;

    if (sa == NULL) {
        return "-";
    }
    switch (sa->sa_family) {
    case AF_INET:
        if (inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                      (socklen_t)len) != NULL) {
            return buf;
        }
        break;
    case AF_INET6:
        if (inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                      (socklen_t)len) != NULL) {
            return buf;
        }
        break;
    case AF_UNIX:
        return "unix:";
    }
    return "-";
}
