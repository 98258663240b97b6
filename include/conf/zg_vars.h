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
typedef struct zg_var_ctx_s {
    const struct sockaddr *remote;   /* client address */
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
 * single digit, "$12" is $1 then "2"), ${name} form too.  An unknown variable is an error
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

#endif
