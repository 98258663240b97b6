/* zg_conf.h — the config core: nginx syntax in, each module's conf structs out.
 *
 * A module (zg_module_t) owns a command table (zg_command_t: directive name,
 * contexts, argument count, setter, offset) and the create/merge hooks of its conf
 * structs.  The core tokenizes, finds each directive in the tables of the modules
 * listed in zg_modules.c, calls its setter, merges the http -> server -> location
 * levels and reports errors as "message in FILE:LINE".  It knows no module.
 * Everything hangs off one zg_conf_t and is freed with it. */
#ifndef ZG_CONF_H
#define ZG_CONF_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "zg_buf.h"
#include "zg_core.h"
#include "zg_proc.h"
#include "zg_vars.h"
#include "zg_zone.h"

#define ZG_MAX_WORKERS ZG_PROC_SLOTS /* worker slots, both generations during a reload */
#define ZG_MAX_MODULES 64

typedef struct zg_cv_s zg_cv_t; /* compiled "text with $variables" (zg_vars.h) */

typedef struct {
    struct sockaddr_storage sa;
    socklen_t socklen;
    char text[120]; /* "127.0.0.1:8080", "[::1]:80", "unix:/run/app.sock" */
} zg_addr_t;

#define ZG_UNSET -1
#define ZG_UNSET_MSEC ((zg_msec_t)-1)
#define ZG_UNSET_SIZE ((int64_t)-1)

typedef struct zg_conf_s {
    char *file;
    char *prefix;         /* directory of the main file: relative paths resolve here */
    void *main_conf[ZG_MAX_MODULES]; /* each module's main conf, by zg_module_t.index */
    zg_zone_list_t zones;
    void *arena;          /* private: allocations of this config */
} zg_conf_t;

/* contexts: where a directive may appear */
#define ZG_CTX_MAIN 0x01
#define ZG_CTX_EVENTS 0x02
#define ZG_CTX_HTTP 0x04
#define ZG_CTX_SRV 0x08
#define ZG_CTX_LOC 0x10
#define ZG_CTX_UPS 0x20
#define ZG_CTX_STREAM 0x100     /* stream { } */
#define ZG_CTX_STREAM_SRV 0x200 /* stream { server { } } */
#define ZG_CTX_SETTINGS (ZG_CTX_HTTP | ZG_CTX_SRV | ZG_CTX_LOC)
#define ZG_CTX_ANY 0x3f
#define ZG_CTX_IF 0x40   /* an `if` block (server or location): rewrite directives */
#define ZG_CTX_LIF 0x80  /* an `if` block in a location: add_header, error_page, proxy_pass */
#define ZG_CTX_STREAM_SETTINGS (ZG_CTX_STREAM | ZG_CTX_STREAM_SRV)

/* which of its module's structs a command's setter gets */
#define ZG_MAIN_CONF 0 /* the module's main conf */
#define ZG_LOC_CONF 1  /* the module's conf of the http, server or location level */

typedef struct zg_cf_s zg_cf_t;
typedef struct zg_command_s zg_command_t;
typedef struct zg_module_s zg_module_t;

typedef int (*zg_conf_set_pt)(zg_cf_t *cf, const zg_command_t *cmd, void *conf);

struct zg_command_s {
    const char *name;
    int ctx;             /* ZG_CTX_* where it is allowed */
    int block;           /* `name args { ... }` */
    int min, max;        /* arguments after the name; max -1 = any */
    zg_conf_set_pt set;
    int conf;            /* ZG_MAIN_CONF or ZG_LOC_CONF */
    size_t offset;       /* of the field, for the generic setters */
    const void *post;    /* setter specific (zg_conf_enum_t table, ...) */
};

#define ZG_NULL_COMMAND { NULL, 0, 0, 0, 0, NULL, 0, 0, NULL }

typedef struct zg_request_s zg_request_t; /* http/zg_request.h */
typedef struct zg_worker_s zg_worker_t;   /* http/zg_worker.h */
typedef struct zg_stream_session_s zg_stream_session_t; /* stream/zg_stream.h */
typedef struct zg_resp_s zg_resp_t;       /* http/zg_response.h */

/* stream session phases, run in this order by the stream core (zg_stream.c) before
 * the server's content handler (proxy_pass) */
enum {
    ZG_STREAM_PHASE_NONE = 0,
    ZG_STREAM_PHASE_PREACCESS, /* limit_req, limit_conn on connections */
    ZG_STREAM_PHASE_ACCESS,    /* allow/deny */
    ZG_STREAM_PHASE_SSL,       /* the TLS handshake (listen ... ssl), after the limits */
    ZG_STREAM_PHASE_LAST
};

/* as zg_phase_handler_pt, for a stream session (ZG_AGAIN: zg_stream_resume later) */
typedef int (*zg_stream_handler_pt)(zg_stream_session_t *s);

/* request phases, run in this order by the request core (zg_request.c) */
enum {
    ZG_PHASE_NONE = 0,
    ZG_PHASE_REWRITE,    /* return, rewrite, set, if: run twice, for the server (before
                            the location is found: r->located is 0) and then for the
                            location */
    ZG_PHASE_PREACCESS,  /* limit_req, limit_conn */
    ZG_PHASE_ACCESS,     /* allow/deny */
    ZG_PHASE_LAST
};

/* a phase handler returns ZG_DECLINED (go on), ZG_DONE (the request was answered),
 * or ZG_AGAIN (it suspended the request: zg_request_sleep) */
typedef int (*zg_phase_handler_pt)(zg_request_t *r);

struct zg_module_s {
    const char *name;
    const zg_command_t *commands;            /* ends with ZG_NULL_COMMAND; may be NULL */

    /* config: every hook may be NULL */
    void *(*create_main_conf)(zg_conf_t *conf);
    int (*init_main_conf)(zg_cf_t *cf, void *conf); /* after parsing: defaults, references */
    void *(*create_loc_conf)(zg_conf_t *conf);      /* http, server, location level */
    int (*merge_loc_conf)(zg_cf_t *cf, void *parent, void *child);

    /* processes */
    int (*init_master)(zg_conf_t *conf);      /* master, before the workers start */
    void (*exit_master)(zg_conf_t *conf);     /* the configuration is retired */
    void (*reopen)(zg_conf_t *conf);          /* USR1, in the master */
    /* the i-th descriptor it keeps open for conf (its log files), NULL past the last:
     * the master hands them to the workers after a reopen */
    int *(*file)(zg_conf_t *conf, int i);
    int (*init_worker)(zg_worker_t *w);       /* in a worker, its loop created */
    void (*quit_worker)(zg_worker_t *w);      /* graceful stop begins (QUIT) */
    void (*exit_worker)(zg_worker_t *w);      /* the worker's loop has stopped */
    void (*worker_gone)(zg_conf_t *conf, int slot); /* master: a worker died */
    void (*tick)(zg_conf_t *conf);            /* master, about once a second */

    /* requests */
    int phase;                                /* ZG_PHASE_* of handler */
    zg_phase_handler_pt handler;
    void (*release)(zg_request_t *r);         /* give back what the request holds */
    void (*log)(zg_request_t *r);             /* once, when the request is finalized */
    /* extra response header lines for the request (limit_req_headers) */
    size_t (*headers)(zg_request_t *r, char *buf, size_t len, int rejected);
    /* a status page (>= 300) is due from a phase handler: ZG_DONE if the module
     * answered instead (error_page: an internal redirect), else ZG_DECLINED */
    int (*error_page)(zg_request_t *r, int status);
    /* response filters (http/zg_response.h): filter_on says whether the module
     * filters the responses of a location (its merged conf); header_filter may
     * change a head (ZG_OK, ZG_ERROR) and turn body_filter on for the request */
    int (*filter_on)(void **loc_conf);
    int (*header_filter)(zg_request_t *r, zg_resp_t *h);
    void (*body_filter)(zg_request_t *r, const char *p, size_t n, int last);
    size_t ctx_size;                          /* per-request state, zeroed per request */
    size_t scratch_size;                      /* per-request memory, not zeroed */

    /* stream sessions: a phase handler, what a session holds, its log line */
    int stream_phase;                         /* ZG_STREAM_PHASE_* of stream_handler */
    zg_stream_handler_pt stream_handler;
    void (*stream_release)(zg_stream_session_t *s); /* once, when the session ends */
    void (*stream_log)(zg_stream_session_t *s);     /* once, after every release */

    /* /metrics: whole families of the module's counters */
    void (*metrics)(zg_buf_t *b, const zg_conf_t *conf);

    /* set by zg_modules_init */
    int index;
    size_t ctx_offset;           /* in the request's zeroed module state */
    size_t scratch_offset;       /* in the scratch memory behind the request */
    int filter_slot;             /* bit of its body filter in a request's mask; -1 none */
};

/* zg_modules.c: every module, in order (NULL-terminated) */
extern zg_module_t *const zg_modules[];
/* numbers the modules and places their per-request state; called by zg_conf_load*
 * (idempotent) */
void zg_modules_init(void);
/* the k-th (from 0) descriptor the modules keep open for conf (zg_module_t.file), NULL
 * past the last */
int *zg_modules_file(zg_conf_t *conf, int k);
/* bytes of the modules' per-request state: zeroed, then not zeroed */
extern size_t zg_modules_ctx_size, zg_modules_scratch_size;

/* the parse state, as nginx's ngx_conf_t */
struct zg_cf_s {
    zg_conf_t *conf;
    zg_str_t *args;      /* the directive being handled: args[0] is its name */
    int nargs;
    const char *name;    /* args[0].data */
    const char *file;    /* where it is; NULL after parsing */
    int line;
    int ctx;             /* ZG_CTX_* of the block being read */
    void **loc_conf;     /* per-module confs of the current http/server/location level */
    void *block;         /* the enclosing block's own struct (server, location, upstream) */
    /* private */
    void *priv;
};

/* a module's conf of a level / the main conf */
#define zg_conf_module(confs, m) ((confs)[(m).index])
#define zg_main_conf_of(conf, m) ((conf)->main_conf[(m).index])

/* Reads FILE (and its includes) into a new configuration.  On error returns
 * NULL and writes one line to err, naming file, line and directive:
 *   unknown directive "foo" in /etc/zonegate.conf:12
 * Zones are declared (zg_zone_declare) but not mapped; no file or socket is opened. */
zg_conf_t *zg_conf_load(const char *file, char *err, size_t errlen);

/* Parses a configuration held in memory (tests, fuzzing); name is the "file" in errors. */
zg_conf_t *zg_conf_load_string(const char *name, const char *text, size_t len, char *err,
                               size_t errlen);

void zg_conf_free(zg_conf_t *conf);

/* allocation from the config's arena (zeroed; freed with the config) */
void *zg_conf_alloc(zg_conf_t *conf, size_t size);
char *zg_conf_strdup(zg_conf_t *conf, const char *s, size_t len);

/* p is freed with free_fn when the config is freed; ZG_ERROR = no memory (p is
 * then not kept) */
int zg_conf_keep(zg_conf_t *conf, void *p, void (*free_fn)(void *p));

/* grows arr (of *n elements) so one more fits, counts it; NULL if no memory */
void *zg_conf_grow(zg_conf_t *conf, void *arr, int *n, size_t size);
#define zg_conf_push(conf, arr, n)                                                     \
    (((arr) = zg_conf_grow((conf), (arr), &(n), sizeof(*(arr)))) == NULL ? NULL        \
                                                                           : &(arr)[(n) - 1])

/* Reads a block's directives with ctx, loc_conf and block set for it. */
int zg_conf_block(zg_cf_t *cf, int ctx, void **loc_conf, void *block);
/* Reads a block whose lines are entries, not directives (map, geo): handler gets
 * each `args;` line in cf->args (`include FILE;` is read in place). */
typedef int (*zg_conf_raw_pt)(zg_cf_t *cf, void *data);
int zg_conf_block_raw(zg_cf_t *cf, zg_conf_raw_pt handler, void *data);
/* New per-module confs for a level (create_loc_conf of every module); NULL = no memory */
void **zg_conf_create_loc_confs(zg_cf_t *cf);
/* merges every module's conf of a level with its parent's */
int zg_conf_merge_loc_confs(zg_cf_t *cf, void **parent, void **child);

/* errors: always return ZG_ERROR.  zg_conf_error appends " in FILE:LINE" of the
 * directive being handled, zg_conf_error_at that of file:line (none if file is NULL). */
int zg_conf_error(zg_cf_t *cf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int zg_conf_error_at(zg_cf_t *cf, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int zg_conf_nomem(zg_cf_t *cf);
/* `set $NAME` and its kind (auth_request_set): defines the changeable variable named
 * by arg ("$NAME") with get, its index in *index: ZG_OK, else the error is reported */
int zg_conf_settable_var(zg_cf_t *cf, const zg_str_t *arg, zg_var_get_pt get, int *index);
int zg_conf_invalid(zg_cf_t *cf, const zg_str_t *v);   /* invalid value "V" in "D" directive */
int zg_conf_duplicate(zg_cf_t *cf);                    /* "D" directive is duplicate */
int zg_conf_bad_param(zg_cf_t *cf, const zg_str_t *v); /* invalid parameter "V" in "D" ... */

/* values */
int zg_conf_prefix(const zg_str_t *v, const char *p);
int zg_conf_eq(const zg_str_t *v, const char *p);
/* non-negative decimal up to INT_MAX; -1 on error */
int zg_conf_atoi(const char *s, size_t len);
/* "on" / "off" into *out; an error naming the directive otherwise */
int zg_conf_flag(zg_cf_t *cf, const zg_str_t *v, int *out);
/* PATH made absolute against the main file's directory; NULL = no memory */
char *zg_conf_path(zg_cf_t *cf, const zg_str_t *v);
/* compiles text with $variables; freed with the config; NULL after an error.  A
 * variable that is not built in must be defined by some module (map, geo, set, a
 * named capture) anywhere in the config, else loading fails naming its first use. */
zg_cv_t *zg_conf_cv(zg_cf_t *cf, const char *text, size_t len);
/* the config's named variables (zg_vars.h); NULL = no memory */
struct zg_vars_s *zg_conf_vars(zg_conf_t *conf);
/* declares a zone NAME of SIZE for kind (a zone kind's name), with the errors
 * nginx gives: invalid name or size, zero size, another kind, duplicate */
int zg_conf_zone(zg_cf_t *cf, const char *name, size_t nlen, const zg_str_t *name_arg,
                 const char *size_text, size_t size_len, const zg_str_t *size_arg,
                 const zg_zone_kind_t *kind, zg_zone_t **out);
/* "zone=NAME:SIZE" */
int zg_conf_zone_param(zg_cf_t *cf, const zg_str_t *v, const zg_zone_kind_t *kind,
                       zg_zone_t **out);

/* A directive that names a zone which may be declared later in the file (limit_req
 * zone=NAME): the module keeps the reference and resolves it once the file is read. */
typedef struct {
    const char *name;    /* the zone's name */
    const char *directive;
    const char *file;
    int line;
    void *level;         /* the module's conf of the level the directive is in */
    int idx;             /* which of the level's entries */
} zg_conf_zone_ref_t;

/* records a reference by the directive being handled; ZG_OK or ZG_ERROR (no memory) */
int zg_conf_zone_ref_add(zg_cf_t *cf, zg_conf_zone_ref_t **refs, int *nrefs,
                         const char *name, size_t len, void *level, int idx);
/* the conf of the zone a reference names, if it is of kind; else NULL after the
 * error: unknown KIND_zone "NAME" in "DIRECTIVE" directive in FILE:LINE */
void *zg_conf_zone_ref_conf(zg_cf_t *cf, const zg_conf_zone_ref_t *r,
                            const zg_zone_kind_t *kind);

/* generic setters: the field at cmd->offset of conf; each rejects a second setting */
int zg_conf_set_msec(zg_cf_t *cf, const zg_command_t *cmd, void *conf);   /* zg_msec_t */
int zg_conf_set_size(zg_cf_t *cf, const zg_command_t *cmd, void *conf);   /* int64_t */
int zg_conf_set_num(zg_cf_t *cf, const zg_command_t *cmd, void *conf);    /* int >= 0 */
int zg_conf_set_count(zg_cf_t *cf, const zg_command_t *cmd, void *conf);  /* int >= 1 */
int zg_conf_set_flag(zg_cf_t *cf, const zg_command_t *cmd, void *conf);   /* int on/off */
int zg_conf_set_status(zg_cf_t *cf, const zg_command_t *cmd, void *conf); /* int 400-599 */
int zg_conf_set_level(zg_cf_t *cf, const zg_command_t *cmd, void *conf);  /* log level */
/* nginx tuning directives that mean nothing for zonegate: the value is checked (a
 * flag; a size; one of the NULL-ended strings in cmd->post) and dropped */
int zg_conf_set_noop_flag(zg_cf_t *cf, const zg_command_t *cmd, void *conf);
int zg_conf_set_noop_size(zg_cf_t *cf, const zg_command_t *cmd, void *conf);
int zg_conf_set_noop_word(zg_cf_t *cf, const zg_command_t *cmd, void *conf);

#define ZG_CONF_MERGE(c, p, f, unset)                                                  \
    do {                                                                               \
        if ((c)->f == (unset)) {                                                       \
            (c)->f = (p)->f;                                                           \
        }                                                                              \
    } while (0)

/* "10k" -> 10240, "1m" ...; -1 on error */
int64_t zg_conf_parse_size(const char *s, size_t len);
/* "500ms" "10s" "1m" "2h" "1d", bare number = seconds; ZG_UNSET_MSEC on error */
zg_msec_t zg_conf_parse_time(const char *s, size_t len);
/* "127.0.0.1:8080", "localhost:80", "[::1]:81", "8080" (= 0.0.0.0:8080 for listen),
 * "*:80", "unix:/path" (AF_UNIX, no port); a name takes its first IPv4 address, else its first IPv6 one.  Without a
 * port, default_port (< 1 = a port is required).  ZG_OK, ZG_DECLINED (host not
 * found) or ZG_ERROR (bad syntax or port). */
int zg_conf_parse_addr(const char *s, size_t len, int default_port, zg_addr_t *out);
int zg_addr_eq(const zg_addr_t *a, const zg_addr_t *b);
int zg_addr_set(zg_addr_t *out, int family, const void *ip, int port);

/* the nginx module (as a phrase: "fastcgi module") that directive name belongs to,
 * for a directive no zonegate module implements; NULL = not one of nginx's */
const char *zg_conf_nginx_module(const char *name, size_t len);

/* tests and fuzzing: when set, names other than "localhost" are not looked up
 * (they are "host not found") */
extern int zg_conf_no_resolve;

#endif
