/* zg_vars.h — variables and "complex values": text with $variables, compiled once
 * at config time and evaluated per request against a zg_var_ctx_t. */
#ifndef ZG_VARS_H
#define ZG_VARS_H

#include <sys/socket.h>
#include <time.h>

#include "zg_core.h"
#include "zg_regex.h"

/* $limit_req_status / $limit_conn_status values (0 = not set: empty) */
enum {
    ZG_LIMIT_NONE = 0,
    ZG_LIMIT_PASSED,
    ZG_LIMIT_DELAYED,
    ZG_LIMIT_REJECTED,
    ZG_LIMIT_DELAYED_DRY_RUN,
    ZG_LIMIT_REJECTED_DRY_RUN,
};

/* What variables read.  The request owns the memory every field points to. */
typedef struct zg_vars_s zg_vars_t;           /* a configuration's named variables */
typedef struct zg_var_state_s zg_var_state_t; /* a request's variable values */

typedef struct zg_var_ctx_s {
    const struct sockaddr *remote;   /* client address (after real_ip) */
    const struct sockaddr *realip;   /* the connection's peer, when real_ip changed
                                        remote; NULL: remote is the peer */
    const struct sockaddr *local;    /* the listening address ($server_addr, _port) */
    int local_fd;                    /* the connection's socket, for a wildcard
                                        listen's real address; -1 = none */
    zg_str_t method;                 /* "GET" */
    zg_str_t uri;                    /* the normalised path, without "?args" */
    zg_str_t args;                   /* after '?', without it */
    zg_str_t request_uri;            /* the target as received ("/a/../x?y#f");
                                        data NULL: taken from request_line */
    zg_str_t request_line;           /* "GET /x?y HTTP/1.1" */
    zg_str_t host;                   /* Host header without port, lowercased; may be empty */
    zg_str_t server_name;            /* the server's first name */
    zg_str_t protocol;               /* "HTTP/1.1" */
    const zg_str_t *hdr_names;       /* request headers, as received */
    const zg_str_t *hdr_values;
    size_t nhdrs;
    /* for logs */
    int status;
    uint64_t bytes_sent;             /* whole response */
    uint64_t body_bytes_sent;        /* response body */
    uint64_t request_length;
    zg_msec_t start_msec;            /* zg_time_msec() at request start */
    time_t start_time;               /* wall clock at request start */
    zg_str_t upstream_addr;          /* "127.0.0.1:9000, 127.0.0.1:9001" */
    zg_str_t upstream_status;        /* "502, 200" */
    zg_str_t upstream_response_time; /* "0.012" */
    int limit_req_status;            /* ZG_LIMIT_* */
    int limit_conn_status;
    void *ssl;                       /* the connection's SSL *; NULL = plain */
    const zg_regex_caps_t *caps;     /* $1..$9: the last regex match; may be NULL */
    uint64_t connection;             /* connection serial number */
    uint64_t connection_requests;
    /* response headers: as the upstream sent them ($upstream_http_NAME) and as sent
     * to the client ($sent_http_NAME) */
    const zg_str_t *up_names, *up_values;
    size_t nup;
    const zg_str_t *sent_names, *sent_values;
    size_t nsent;
    /* the named variables (map, geo, set, captures): NULL = none */
    const zg_vars_t *vars;
    zg_var_state_t *st;              /* values of this request; NULL until one is read */
    /* stream sessions */
    uint64_t bytes_received;         /* from the client */
    zg_str_t upstream_bytes_sent;    /* "0, 1234": per attempt */
    zg_str_t upstream_bytes_received;
    zg_str_t upstream_connect_time;  /* "-, 0.001" */
    zg_str_t proxy_protocol_addr;    /* the client address a PROXY header gave */
} zg_var_ctx_t;

typedef struct zg_cv_s zg_cv_t;

/* The client address as $remote_addr prints it, written into buf (at least 64
 * bytes); returns buf, "unix:", or "-" when there is none. */
const char *zg_var_client(const zg_var_ctx_t *ctx, char *buf, size_t len);

/* Compiles text such as "$binary_remote_addr:$uri".  Known variables:
 * $binary_remote_addr $remote_addr $remote_port $http_NAME $arg_NAME $uri
 * $request_uri $args $host $server_name $request_method $request $status
 * $server_protocol $body_bytes_sent $bytes_sent $request_length $request_time
 * $time_local $time_iso8601 $msec $upstream_addr $upstream_status
 * $upstream_response_time $limit_req_status $limit_conn_status $connection
 * $connection_requests $remote_user, $1..$9 (captures of the last regex match: a
 * single digit, "$12" is $1 then "2"), for stream sessions $server_port
 * $bytes_received $session_time $upstream_bytes_sent $upstream_bytes_received
 * $upstream_connect_time $proxy_protocol_addr; ${name} form too.  An unknown variable is an error
 * (NULL, message in err).  The result is malloc'd: free with zg_cv_free. */
zg_cv_t *zg_cv_compile(const char *text, size_t len, char *err, size_t errlen);
void zg_cv_free(zg_cv_t *cv);

/* 1 if the value has no variables (its text is then zg_cv_const) */
int zg_cv_is_const(const zg_cv_t *cv);
zg_str_t zg_cv_const(const zg_cv_t *cv);

/* Writes the value into buf (snprintf semantics: returns the full length, writes
 * at most len bytes, no NUL).  $binary_remote_addr is 4 or 16 raw bytes.  With
 * escape != 0 bytes outside printable ASCII, '"' and '\' in variable values are
 * written as \xXX (nginx's access-log escaping). */
/* The user and password of an "Authorization: Basic ..." request header, decoded
 * into buf as nginx's ngx_http_auth_basic_user does it: ZG_OK, or ZG_DECLINED when
 * there is no such header, it does not decode, it has no ':' or an empty user, or
 * it does not fit in len.  user and passwd point into buf. */
int zg_var_basic_auth(const zg_var_ctx_t *ctx, char *buf, size_t len, zg_str_t *user,
                      zg_str_t *passwd);

size_t zg_cv_eval(const zg_cv_t *cv, const zg_var_ctx_t *ctx, int escape, char *buf,
                  size_t len);

/* ---- named variables: defined by modules (map, geo, set, regex captures) ----
 *
 * A configuration owns one zg_vars_t.  A value that names a variable that is not
 * built in refers to it by index; a module defines it (before or after the use, as
 * nginx), and zg_vars_undefined finds the uses nothing defined.  A request reads a
 * named variable lazily, at most once (unless ZG_VAR_NOCACHE): its value is kept in
 * the request's zg_var_state_t, allocated on the first read, so a request that reads
 * no named variable pays nothing. */

/* the getter of a named variable: *out (data may point into memory from
 * zg_var_alloc, the config, or the request); ZG_OK, or ZG_DECLINED = not found
 * (empty).  ctx->st is set. */
typedef int (*zg_var_get_pt)(zg_var_ctx_t *ctx, const void *data, zg_str_t *out);

#define ZG_VAR_NOCACHE 0x01    /* read again on every use (map volatile) */
#define ZG_VAR_CHANGEABLE 0x02 /* `set` may assign it; defining it twice is fine */

zg_vars_t *zg_vars_new(void);
void zg_vars_free(zg_vars_t *vs);
/* the index of NAME, added as a use if it is new; -1 = no memory.  file:line is
 * where it is used first (for zg_vars_undefined). */
int zg_vars_index(zg_vars_t *vs, const char *name, size_t len, const char *file, int line);
/* Defines NAME: ZG_OK, ZG_DECLINED when it is defined already (and neither
 * definition is CHANGEABLE), ZG_ERROR = no memory.  The index in *index if not NULL. */
int zg_vars_define(zg_vars_t *vs, const char *name, size_t len, zg_var_get_pt get,
                   const void *data, int flags, int *index);
/* 1 when some value uses $sent_http_NAME or $upstream_http_NAME: only then does the
 * proxy keep the response headers for them */
int zg_vars_resp_headers(const zg_vars_t *vs);
/* 1 when some value of the config uses $upstream_addr, $upstream_status or
 * $upstream_response_time: only then does the proxy record them */
int zg_vars_upstream(const zg_vars_t *vs);
/* the named captures of re ("(?<name>...)") become variables: the capture of the
 * request's last regex match.  ZG_OK, ZG_DECLINED (a name is taken by another kind
 * of variable), ZG_ERROR (no memory). */
int zg_vars_define_captures(zg_vars_t *vs, const zg_regex_t *re);
/* 1 when NAME is a built-in variable */
int zg_var_builtin(const char *name, size_t len);
/* the first variable used but never defined: its name, and where it is used first;
 * NULL = none */
const char *zg_vars_undefined(const zg_vars_t *vs, const char **file, int *line);

/* as zg_cv_compile; a name that is not built in is looked up (or added as a use)
 * in vs, which may be NULL */
zg_cv_t *zg_cv_compile_vars(zg_vars_t *vs, const char *text, size_t len, const char *file,
                            int line, char *err, size_t errlen);
/* the single variable a value is ("$name" alone): its index in vs, or -1 */
int zg_cv_var_index(const zg_cv_t *cv);

/* value of the named variable index for the request (cached); ZG_OK or ZG_DECLINED
 * (not found, or no memory: empty) */
int zg_var_get(zg_var_ctx_t *ctx, int index, zg_str_t *out);
/* assigns it (`set`): the bytes are copied into request memory; ZG_ERROR = no memory */
int zg_var_set(zg_var_ctx_t *ctx, int index, const char *p, size_t len);
/* request memory, freed by zg_var_ctx_free; NULL = no memory */
void *zg_var_alloc(zg_var_ctx_t *ctx, size_t len);
/* evaluates cv into request memory */
int zg_cv_eval_str(const zg_cv_t *cv, zg_var_ctx_t *ctx, zg_str_t *out);
/* frees what the request's variables hold; ctx->st is NULL after (a request that read
 * no named variable has nothing to free: an inline test) */
void zg_var_ctx_free_state(zg_var_ctx_t *ctx);
static inline void zg_var_ctx_free(zg_var_ctx_t *ctx)
{
    if (ctx->st != NULL) {
        zg_var_ctx_free_state(ctx);
    }
}

#endif
