/* zg_auth_basic.h — HTTP Basic authentication, as nginx's ngx_http_auth_basic_module:
 *   auth_basic STRING|off;  auth_basic_user_file FILE;  (http, server, location)
 * Unlike nginx, the user file is read when the configuration is loaded (in the
 * master, before fork; again on reload), never at request time: workers run
 * unprivileged in a sandbox that cannot open files.  A file that cannot be read is
 * a configuration error.  Hashes are checked with crypt(3) ($2y$/$2b$ bcrypt, $5$,
 * $6$, $1$ and whatever else libxcrypt knows) or here ({PLAIN}, {SHA}, {SSHA},
 * $apr1$). */
#ifndef ZG_AUTH_BASIC_H
#define ZG_AUTH_BASIC_H

#include "zg_conf.h"
#include "zg_vars.h"

/* one line of a user file */
typedef struct {
    char *user;
    size_t user_len;
    char *hash;          /* NUL-terminated */
    size_t hash_len;
    int line;
} zg_auth_basic_user_t;

/* a parsed user file, shared by every level that names the same path */
typedef struct zg_auth_basic_file_s zg_auth_basic_file_t;
struct zg_auth_basic_file_s {
    char *path;
    zg_auth_basic_user_t *users; /* sorted by name; the first line of a name wins */
    int nusers;
    zg_auth_basic_file_t *next;
};

/* per level; NULL = unset (inherits), as nginx merges realm and file apart */
typedef struct {
    zg_cv_t *realm;              /* "off" disables */
    zg_auth_basic_file_t *file;
} zg_auth_basic_conf_t;

typedef struct {
    zg_auth_basic_file_t *files; /* read at load, shared by path */
} zg_auth_basic_main_conf_t;

extern zg_module_t zg_auth_basic_module;

#define zg_auth_basic_loc_conf(confs)                                                  \
    ((zg_auth_basic_conf_t *)zg_conf_module(confs, zg_auth_basic_module))

/* "WWW-Authenticate: Basic realm=\"...\"\r\n" fits in this */
#define ZG_AUTH_BASIC_HEADER_MAX 1100

/* Reads and parses PATH, or returns the one already read for conf (list is the
 * config's list of files).  NULL on error, with a message in err: the caller adds
 * where the directive is.  Memory comes from the config's arena. */
zg_auth_basic_file_t *zg_auth_basic_file_load(struct zg_conf_s *conf,
                                              zg_auth_basic_file_t **list, const char *path,
                                              char *err, size_t errlen);
/* Parses a user file held in memory (tests). */
zg_auth_basic_file_t *zg_auth_basic_file_parse(struct zg_conf_s *conf, const char *path,
                                               const char *text, size_t len, char *err,
                                               size_t errlen);
const zg_auth_basic_user_t *zg_auth_basic_find(const zg_auth_basic_file_t *f, const char *user,
                                               size_t len);

void zg_auth_basic_merge(zg_auth_basic_conf_t *conf, const zg_auth_basic_conf_t *prev);

/* Checks password against a stored hash: ZG_OK (match), ZG_DECLINED (mismatch),
 * ZG_ERROR (the hash is of no scheme this build knows). */
int zg_auth_basic_verify(const char *password, size_t len, const char *hash);

/* The access check of one request.  ZG_DECLINED: no authentication here (no realm,
 * no file, or "off"); ZG_OK: a user of the file with the right password; 401 (no or
 * bad credentials, unknown user, wrong password, a stored hash that cannot be
 * checked): the header to send is in www (ZG_AUTH_BASIC_HEADER_MAX bytes,
 * NUL-terminated).  Failures are logged as nginx logs them. */
int zg_auth_basic_check(const zg_auth_basic_conf_t *conf, const zg_var_ctx_t *ctx,
                        char *www);

/* Verified (user, stored hash, password) triples this worker remembers, so a slow
 * hash (bcrypt) is not computed again for each request of a keep-alive client;
 * 0 turns the cache off (tests). */
extern int zg_auth_basic_cache_on;

#endif
