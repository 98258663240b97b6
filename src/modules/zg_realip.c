/* zg_realip.c — set_real_ip_from, real_ip_header, real_ip_recursive, as nginx's
 * realip module: for a connection from a trusted address, $remote_addr (and with it
 * $binary_remote_addr, the limits' keys, allow/deny, geo) becomes the address the
 * header names; $realip_remote_addr keeps the connection's.  It runs first, before
 * the server rewrite (http and server settings), and again after the location is
 * found (its settings) unless the address changed already. */
#include "zg_realip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "zg_request.h"
#include "zg_vars.h"

typedef struct {
    unsigned done : 1;
} zg_realip_ctx_t;

static int zg_realip_parse(const char *s, size_t len, int *family, unsigned char *out)
{
    char buf[64];

    if (len == 0 || len >= sizeof(buf)) {
        return ZG_ERROR;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, 16);
    if (inet_pton(AF_INET, buf, out) == 1) {
        *family = AF_INET;
        return ZG_OK;
    }
    if (inet_pton(AF_INET6, buf, out) == 1) {
        *family = AF_INET6;
        return ZG_OK;
    }
    return ZG_ERROR;
}

static int zg_realip_trusted(const zg_realip_loc_conf_t *rlcf, int family,
                             const unsigned char *a)
{
    int n = family == AF_INET ? 4 : 16;

    for (int i = 0; i < rlcf->nfrom; i++) {
        const zg_realip_from_t *f = &rlcf->from[i];
        int bits = f->bits, k;
        if (f->family != family) {
            continue;
        }
        for (k = 0; k < n && bits > 0; k++, bits -= 8) {
            unsigned char mask = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));
            if ((a[k] & mask) != f->addr[k]) {
                break;
            }
        }
        if (k == n || bits <= 0) {
            return 1;
        }
    }
    return 0;
}

static int zg_realip_peer(const struct sockaddr *sa, int *family, unsigned char *a)
{
    memset(a, 0, 16);
    if (sa != NULL && sa->sa_family == AF_INET) {
        *family = AF_INET;
        memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return ZG_OK;
    }
    if (sa != NULL && sa->sa_family == AF_INET6) {
        *family = AF_INET6;
        memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return ZG_OK;
    }
    if (sa != NULL && sa->sa_family == AF_UNIX) {
        *family = AF_UNIX; /* matched by "unix:" only (bits 0) */
        return ZG_OK;
    }
    return ZG_ERROR;
}

int zg_realip_find(const zg_realip_loc_conf_t *rlcf, const struct sockaddr *peer,
                   const zg_str_t *values, size_t nvalues, struct sockaddr_storage *out)
{
    unsigned char a[16];
    int family, found = 0;

    if (zg_realip_peer(peer, &family, a) != ZG_OK || !zg_realip_trusted(rlcf, family, a)) {
        return ZG_DECLINED;
    }
    /* from the last header line back, and in each from the last address back */
    for (size_t i = nvalues; i-- > 0;) {
        const zg_str_t *v = &values[i];
        size_t end = v->len;
        while (end > 0) {
            size_t start = end, s, e;
            while (start > 0 && v->data[start - 1] != ',') {
                start--;
            }
            for (s = start; s < end && (v->data[s] == ' ' || v->data[s] == '\t'); s++) {
            }
            for (e = end; e > s && (v->data[e - 1] == ' ' || v->data[e - 1] == '\t'); e--) {
            }
            end = start > 0 ? start - 1 : 0;
            if (e == s) {
                continue;
            }
            unsigned char t[16];
            int tf;
            if (zg_realip_parse(v->data + s, e - s, &tf, t) != ZG_OK) {
                goto done; /* as nginx: an invalid address ends the search */
            }
            family = tf;
            memcpy(a, t, 16);
            found = 1;
            if (!rlcf->recursive || !zg_realip_trusted(rlcf, family, a)) {
                goto done;
            }
        }
    }
done:
    if (!found) {
        return ZG_DECLINED;
    }
    memset(out, 0, sizeof(*out));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, a, 4);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, a, 16);
    }
    return ZG_OK;
}

static int zg_realip_handler(zg_request_t *r)
{
    const zg_realip_loc_conf_t *rlcf = zg_request_conf(r, zg_realip_module);
    zg_realip_ctx_t *x = zg_request_ctx(r, zg_realip_module);
    struct sockaddr_storage *ss = zg_request_scratch(r, zg_realip_module);
    zg_var_ctx_t *vc = &r->ctx;
    zg_str_t values[16];
    size_t n = 0;

    if (rlcf->nfrom == 0 || x->done) {
        return ZG_DECLINED;
    }
    for (size_t i = 0; i < vc->nhdrs && n < zg_nelems(values); i++) {
        const zg_str_t *h = &vc->hdr_names[i];
        size_t k;
        if (h->len != rlcf->header.len) {
            continue;
        }
        for (k = 0; k < h->len; k++) {
            unsigned char c = (unsigned char)h->data[k];
            c = c == '-' ? '_' : (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
            if (c != (unsigned char)rlcf->header.data[k]) {
                break;
            }
        }
        if (k == h->len) {
            values[n++] = vc->hdr_values[i];
        }
    }
    if (n == 0 || zg_realip_find(rlcf, vc->remote, values, n, ss) != ZG_OK) {
        return ZG_DECLINED;
    }
    /* as nginx: once the address changed, never again for this request */
    x->done = 1;
    vc->realip = vc->remote;
    vc->remote = (const struct sockaddr *)ss;
    return ZG_DECLINED;
}

static int zg_realip_from(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_realip_loc_conf_t *rlcf = conf;
    zg_str_t *v = &cf->args[1];
    const char *slash = memchr(v->data, '/', v->len);
    size_t alen = slash ? (size_t)(slash - v->data) : v->len;
    zg_realip_from_t *f;
    int family, bits;
    unsigned char a[16];

    (void)cmd;
    if (zg_conf_eq(v, "unix:")) {
        /* every unix socket client (listen unix:PATH), as nginx */
        if ((f = zg_conf_push(cf->conf, rlcf->from, rlcf->nfrom)) == NULL) {
            return zg_conf_nomem(cf);
        }
        memset(f, 0, sizeof(*f));
        f->family = AF_UNIX;
        return ZG_OK;
    }
    if (zg_realip_parse(v->data, alen, &family, a) != ZG_OK) {
        return zg_conf_error(cf, "host not found in set_real_ip_from \"%s\"", v->data);
    }
    bits = family == AF_INET ? 32 : 128;
    if (slash != NULL) {
        int b = zg_conf_atoi(slash + 1, v->len - alen - 1);
        if (b < 0 || b > bits) {
            return zg_conf_error(cf, "invalid mask \"%s\" in \"set_real_ip_from\"", v->data);
        }
        bits = b;
    }
    for (int k = 0, left = bits; k < 16; k++, left -= 8) {
        a[k] &= left >= 8 ? 0xff : left <= 0 ? 0 : (unsigned char)(0xff << (8 - left));
    }
    if ((f = zg_conf_push(cf->conf, rlcf->from, rlcf->nfrom)) == NULL) {
        return zg_conf_nomem(cf);
    }
    f->family = family;
    f->bits = bits;
    memcpy(f->addr, a, 16);
    return ZG_OK;
}

static int zg_realip_header(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_realip_loc_conf_t *rlcf = conf;
    zg_str_t *v = &cf->args[1];
    char *p;

    (void)cmd;
    if (rlcf->header.data != NULL) {
        return zg_conf_duplicate(cf);
    }
    if (zg_conf_eq(v, "proxy_protocol")) {
        return zg_conf_error(cf, "\"real_ip_header proxy_protocol\" is not supported: zonegate's "
                                 "http listeners do not read the PROXY protocol");
    }
    if ((p = zg_conf_strdup(cf->conf, v->data, v->len)) == NULL) {
        return zg_conf_nomem(cf);
    }
    for (size_t i = 0; i < v->len; i++) {
        unsigned char c = (unsigned char)p[i];
        p[i] = (char)(c == '-' ? '_' : (c >= 'A' && c <= 'Z') ? (c | 0x20) : c);
    }
    rlcf->header.data = p;
    rlcf->header.len = v->len;
    return ZG_OK;
}

static void *zg_realip_create_conf(zg_conf_t *conf)
{
    zg_realip_loc_conf_t *rlcf = zg_conf_alloc(conf, sizeof(*rlcf));

    if (rlcf != NULL) {
        rlcf->recursive = ZG_UNSET;
    }
    return rlcf;
}

static int zg_realip_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_realip_loc_conf_t *prev = parent, *conf = child;

    (void)cf;
    if (conf->from == NULL) {
        conf->from = prev->from;
        conf->nfrom = prev->nfrom;
    }
    if (conf->header.data == NULL) {
        conf->header = prev->header;
    }
    if (conf->header.data == NULL) {
        conf->header.data = "x_real_ip";
        conf->header.len = 9;
    }
    ZG_CONF_MERGE(conf, prev, recursive, ZG_UNSET);
    if (conf->recursive == ZG_UNSET) {
        conf->recursive = 0;
    }
    return ZG_OK;
}

static const zg_command_t zg_realip_commands[] = {
    { "set_real_ip_from", ZG_CTX_SETTINGS, 0, 1, 1, zg_realip_from, ZG_LOC_CONF, 0, NULL },
    { "real_ip_header", ZG_CTX_SETTINGS, 0, 1, 1, zg_realip_header, ZG_LOC_CONF, 0, NULL },
    { "real_ip_recursive", ZG_CTX_SETTINGS, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      offsetof(zg_realip_loc_conf_t, recursive), NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_realip_module = {
    .name = "realip",
    .commands = zg_realip_commands,
    .create_loc_conf = zg_realip_create_conf,
    .merge_loc_conf = zg_realip_merge_conf,
    .phase = ZG_PHASE_REWRITE,
    .handler = zg_realip_handler,
    .ctx_size = sizeof(zg_realip_ctx_t),
    .scratch_size = sizeof(struct sockaddr_storage),
};
