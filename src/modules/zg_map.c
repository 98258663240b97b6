/* zg_map.c — nginx's map: `map $source $target { ... }` defines $target, computed
 * from $source when a request first reads it (and kept for the request unless
 * `volatile`).  Strings match ignoring case; with `hostnames`, "*.example.com",
 * ".example.com" and "www.example.*" too; then the regexes (~, ~*) in order; else
 * the default ("" unless set). */
#include "zg_map.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "zg_log.h"
#include "zg_vars.h"

static int zg_map_cmp(const void *a, const void *b)
{
    const zg_map_entry_t *x = a, *y = b;
    size_t n = zg_min(x->key.len, y->key.len);
    int c = memcmp(x->key.data, y->key.data, n);

    if (c != 0) {
        return c;
    }
    return x->key.len < y->key.len ? -1 : x->key.len > y->key.len;
}

static void zg_map_lower(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 'A' && p[i] <= 'Z') {
            p[i] = (char)(p[i] | 0x20);
        }
    }
}

static const zg_map_entry_t *zg_map_exact(const zg_map_entry_t *e, int n, const char *k,
                                          size_t len)
{
    zg_map_entry_t key;

    if (n == 0) {
        return NULL;
    }
    key.key.data = k;
    key.key.len = len;
    return bsearch(&key, e, (size_t)n, sizeof(*e), zg_map_cmp);
}

/* "*.example.com" / ".example.com" (suffix) and "www.example.*" (prefix) */
static const zg_map_entry_t *zg_map_wildcard(const zg_map_t *map, const char *k, size_t len)
{
    const zg_map_entry_t *best = NULL;
    size_t best_len = 0;

    for (int i = 0; i < map->nwild; i++) {
        const zg_map_entry_t *e = &map->wild[i];
        const zg_str_t *w = &e->key;
        if (w->data[0] == '*' || w->data[0] == '.') {
            /* "*.x.com": a subdomain of x.com; ".x.com": x.com or a subdomain */
            const char *suf = w->data[0] == '*' ? w->data + 1 : w->data; /* ".x.com" */
            size_t sl = w->data[0] == '*' ? w->len - 1 : w->len;
            int ok = (len > sl && memcmp(k + len - sl, suf, sl) == 0)
                     || (w->data[0] == '.' && len == sl - 1 && memcmp(k, suf + 1, sl - 1) == 0);
            if (ok && sl > best_len) {
                best = e;
                best_len = sl;
            }
        }
    }
    if (best != NULL) {
        return best;
    }
    for (int i = 0; i < map->nwild; i++) {
        const zg_map_entry_t *e = &map->wild[i];
        const zg_str_t *w = &e->key;
        if (w->data[w->len - 1] == '*' && len > w->len - 1
            && memcmp(k, w->data, w->len - 1) == 0 && w->len - 1 > best_len) {
            best = e;
            best_len = w->len - 1;
        }
    }
    return best;
}

int zg_map_find(const zg_map_t *map, zg_var_ctx_t *ctx, const zg_str_t *src,
                const zg_cv_t **value)
{
    const zg_map_entry_t *e = NULL;
    char stack[256], *low = stack;
    size_t len = src->len;
    int rc;

    if (map->hostnames && len > 0 && src->data[len - 1] == '.') {
        len--;
    }
    if (map->nexact || map->nwild) {
        if (len > sizeof(stack)) {
            low = zg_var_alloc(ctx, len);
            if (low == NULL) {
                return ZG_ERROR;
            }
        }
        memcpy(low, src->data, len);
        zg_map_lower(low, len);
        e = zg_map_exact(map->exact, map->nexact, low, len);
        if (e == NULL && map->nwild) {
            e = zg_map_wildcard(map, low, len);
        }
    }
    for (int i = 0; e == NULL && i < map->nregex; i++) {
        rc = zg_regex_exec(map->regex[i].re, src->data, src->len,
                           (zg_regex_caps_t *)ctx->caps);
        if (rc == ZG_OK) {
            e = &map->regex[i];
        } else if (rc == ZG_ERROR) {
            zg_log(ZG_LOG_ERR, "regex \"%s\" failed in map",
                   zg_regex_pattern(map->regex[i].re));
        }
    }
    *value = e != NULL ? e->value : map->deflt;
    return e != NULL ? ZG_OK : ZG_DECLINED;
}

static int zg_map_get(zg_var_ctx_t *ctx, const void *data, zg_str_t *out)
{
    const zg_map_t *map = data;
    const zg_cv_t *value;
    zg_str_t src;

    if (zg_cv_eval_str(map->source, ctx, &src) != ZG_OK) {
        return ZG_DECLINED;
    }
    /* the source lives in request memory: captures of a regex entry point into it */
    zg_map_find(map, ctx, &src, &value);
    if (value == NULL) {
        out->data = "";
        out->len = 0;
        return ZG_OK;
    }
    return zg_cv_eval_str(value, ctx, out) == ZG_OK ? ZG_OK : ZG_DECLINED;
}

static void zg_map_regex_free(void *p)
{
    zg_regex_free(p);
}

static int zg_map_entry(zg_cf_t *cf, void *data)
{
    zg_map_t *map = data;
    zg_str_t *a = cf->args, key;
    zg_map_entry_t *e;
    zg_cv_t *value;
    char err[512];

    if (cf->nargs == 1 && zg_conf_eq(&a[0], "hostnames")) {
        map->hostnames = 1;
        return ZG_OK;
    }
    if (cf->nargs == 1 && zg_conf_eq(&a[0], "volatile")) {
        map->volatile_ = 1;
        return ZG_OK;
    }
    if (cf->nargs != 2) {
        return zg_conf_error(cf, "invalid number of the map parameters");
    }
    if ((value = zg_conf_cv(cf, a[1].data, a[1].len)) == NULL) {
        return ZG_ERROR;
    }
    if (zg_conf_eq(&a[0], "default")) {
        if (map->deflt != NULL) {
            return zg_conf_error(cf, "duplicate default map parameter");
        }
        map->deflt = value;
        return ZG_OK;
    }
    key = a[0];
    if (key.len > 1 && key.data[0] == '~') {
        int flags = 0;
        key.data++;
        key.len--;
        if (key.data[0] == '*') {
            flags = ZG_REGEX_CASELESS;
            key.data++;
            key.len--;
        }
        e = zg_conf_push(cf->conf, map->regex, map->nregex);
        if (e == NULL) {
            return zg_conf_nomem(cf);
        }
        e->value = value;
        e->key = key;
        e->re = zg_regex_compile(key.data, key.len, flags, err, sizeof(err));
        if (e->re == NULL) {
            map->nregex--;
            return zg_conf_error(cf, "%s", err);
        }
        if (zg_conf_keep(cf->conf, e->re, zg_map_regex_free) != ZG_OK) {
            zg_regex_free(e->re);
            return zg_conf_nomem(cf);
        }
        /* named captures become variables, as nginx */
        if (zg_vars_define_captures(zg_conf_vars(cf->conf), e->re) != ZG_OK) {
            return zg_conf_error(cf, "a named capture of \"%s\" is another variable",
                                 a[0].data);
        }
        return ZG_OK;
    }
    if (key.len > 0 && key.data[0] == '\\') {
        key.data++; /* "\default", "\~x": the literal string */
        key.len--;
    }
    char *low = zg_conf_strdup(cf->conf, key.data, key.len);
    if (low == NULL) {
        return zg_conf_nomem(cf);
    }
    zg_map_lower(low, key.len);
    key.data = low;
    if (map->hostnames && key.len > 0 && key.data[key.len - 1] == '.' ) {
        key.len--;
    }
    if (map->hostnames && key.len > 1
        && (key.data[0] == '*' || key.data[0] == '.' || key.data[key.len - 1] == '*')) {
        e = zg_conf_push(cf->conf, map->wild, map->nwild);
    } else {
        for (int i = 0; i < map->nexact; i++) {
            if (map->exact[i].key.len == key.len
                && memcmp(map->exact[i].key.data, key.data, key.len) == 0) {
                return zg_conf_error(cf, "conflicting parameter \"%s\"", a[0].data);
            }
        }
        e = zg_conf_push(cf->conf, map->exact, map->nexact);
    }
    if (e == NULL) {
        return zg_conf_nomem(cf);
    }
    e->key = key;
    e->value = value;
    e->re = NULL;
    return ZG_OK;
}

/* map $source $target { ... } */
static int zg_map_block(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_str_t *a = cf->args, target = a[2];
    zg_vars_t *vs = zg_conf_vars(cf->conf);
    zg_map_t *map;
    int rc;

    (void)cmd;
    (void)conf;
    map = zg_conf_alloc(cf->conf, sizeof(*map));
    if (map == NULL || vs == NULL) {
        return zg_conf_nomem(cf);
    }
    if ((map->source = zg_conf_cv(cf, a[1].data, a[1].len)) == NULL) {
        return ZG_ERROR;
    }
    if (target.len < 2 || target.data[0] != '$') {
        return zg_conf_error(cf, "invalid variable name \"%s\"", target.data);
    }
    target.data++;
    target.len--;
    if (zg_var_builtin(target.data, target.len)) {
        return zg_conf_error(cf, "the \"%s\" variable is built in", target.data);
    }
    if (zg_conf_block_raw(cf, zg_map_entry, map) != ZG_OK) {
        return ZG_ERROR;
    }
    if (map->nexact > 1) {
        qsort(map->exact, (size_t)map->nexact, sizeof(map->exact[0]), zg_map_cmp);
    }
    rc = zg_vars_define(vs, target.data, target.len, zg_map_get, map,
                        map->volatile_ ? ZG_VAR_NOCACHE : 0, NULL);
    if (rc == ZG_ERROR) {
        return zg_conf_nomem(cf);
    }
    if (rc == ZG_DECLINED) {
        return zg_conf_error(cf, "the duplicate \"%s\" variable", target.data);
    }
    return ZG_OK;
}

static const zg_command_t zg_map_commands[] = {
    { "map", ZG_CTX_HTTP, 1, 2, 2, zg_map_block, ZG_MAIN_CONF, 0, NULL },
    /* nginx's hash tuning: zonegate's maps need none (documented no-op) */
    { "map_hash_max_size", ZG_CTX_HTTP, 0, 1, 1, zg_conf_set_noop_size, ZG_MAIN_CONF, 0,
      NULL },
    { "map_hash_bucket_size", ZG_CTX_HTTP, 0, 1, 1, zg_conf_set_noop_size, ZG_MAIN_CONF, 0,
      NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_map_module = {
    .name = "map",
    .commands = zg_map_commands,
};
