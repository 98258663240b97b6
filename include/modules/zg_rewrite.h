/* zg_rewrite.h — nginx's rewrite module: `return`, `rewrite`, `set`, `if`, `break`,
 * run in the server rewrite phase (the server's directives, before the location is
 * found) and the location rewrite phase (the location's); before any limit. */
#ifndef ZG_REWRITE_H
#define ZG_REWRITE_H

#include "zg_conf.h"
#include "zg_regex.h"

typedef struct zg_rw_code_s zg_rw_code_t;

/* a list of rewrite directives, run in order */
typedef struct {
    zg_rw_code_t *codes;
    int n;
} zg_rw_list_t;

enum { ZG_RW_RETURN = 1, ZG_RW_SET, ZG_RW_IF, ZG_RW_REWRITE, ZG_RW_BREAK };

/* if conditions */
enum { ZG_RW_IF_TRUE = 1, ZG_RW_IF_EQ, ZG_RW_IF_NE, ZG_RW_IF_RE, ZG_RW_IF_NRE };

/* rewrite flags */
enum { ZG_RW_FLAG_NONE = 0, ZG_RW_FLAG_LAST, ZG_RW_FLAG_BREAK, ZG_RW_FLAG_REDIRECT,
       ZG_RW_FLAG_PERMANENT };

struct zg_rw_code_s {
    int op;                /* ZG_RW_* */
    int code;              /* return: status (444 closes); rewrite: ZG_RW_FLAG_* */
    zg_cv_t *value;        /* return text, set value, rewrite replacement, if right side */
    int var;               /* set: the variable's index */
    int cond;              /* if: ZG_RW_IF_* */
    zg_cv_t *left;         /* if: the variable tested */
    zg_regex_t *re;        /* if ~, rewrite */
    zg_rw_list_t *body;    /* if: the block */
    void **confs;          /* if in a location: the block's own settings (add_header,
                              error_page, proxy_pass), in force once it matched */
    unsigned redirect : 1; /* rewrite: the replacement is an absolute URL */
};

typedef struct {
    zg_rw_list_t list;     /* of this level only: never inherited */
    zg_str_t default_type; /* `default_type`: of `return CODE TEXT`; "text/plain" */
    int log;               /* rewrite_log: regex matches and results at notice; off */
    zg_rw_list_t *cur;     /* private: where the directive being read goes */
} zg_rewrite_loc_conf_t;

/* an `if` block of a location, merged with its location once the config is read */
typedef struct {
    void **confs;
    void **parent;
} zg_rw_if_conf_t;

typedef struct {
    zg_rw_if_conf_t *ifs;
    int nifs;
} zg_rewrite_main_conf_t;

extern zg_module_t zg_rewrite_module;

#define zg_rewrite_loc_conf(confs)                                                     \
    ((zg_rewrite_loc_conf_t *)zg_conf_module(confs, zg_rewrite_module))

/* pure helpers (unit tests): the URI and args a rewrite's result gives, as nginx:
 * "/new?a=1" sets args "a=1" and appends the old args after "&", a result ending
 * in '?' drops them.  The strings point into result or old_args. */
void zg_rewrite_split(const zg_str_t *result, const zg_str_t *old_args, zg_str_t *uri,
                      zg_str_t *args, int *join);

#endif
