/* zg_ssl.c — the ssl module: directives, one SSL_CTX per server (see zg_ssl.h). */
#include "zg_ssl.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>

#include "zg_http_core.h"
#include "zg_log.h"
#include "zg_regex.h"
#include "zg_worker.h"

#define ZG_SSL_PROTO_TLSv1 0x01
#define ZG_SSL_PROTO_TLSv1_1 0x02
#define ZG_SSL_PROTO_TLSv1_2 0x04
#define ZG_SSL_PROTO_TLSv1_3 0x08
#define ZG_SSL_PROTO_SSLv3 0x10
#define ZG_SSL_PROTO_SSLv2 0x20

typedef struct {
    char *cert;
    char *key;
    const char *file;      /* of ssl_certificate */
    int line;
    const char *key_file;  /* of ssl_certificate_key */
    int key_line;
} zg_ssl_pair_t;

typedef struct {
    zg_ssl_pair_t *pairs;  /* ssl_certificate, in order */
    int npairs;
    char **keys;           /* ssl_certificate_key, in order */
    const char **key_files;
    int *key_lines;
    int nkeys;
    int protocols;         /* ZG_SSL_PROTO_*; ZG_UNSET = TLSv1.2 TLSv1.3 */
    char *ciphers;         /* NULL = HIGH:!aNULL:!MD5 */
    int prefer_server_ciphers;
    zg_msec_t session_timeout;
    SSL_CTX *ctx;          /* server level: built by init_main_conf */
} zg_ssl_conf_t;

typedef struct {
    SSL_CTX **ctxs;        /* freed with the configuration */
    int nctxs;
} zg_ssl_main_conf_t;

static void *zg_ssl_create_main_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_ssl_main_conf_t));
}

static void *zg_ssl_create_loc_conf(zg_conf_t *conf)
{
    zg_ssl_conf_t *sc = zg_conf_alloc(conf, sizeof(*sc));
    if (sc == NULL) {
        return NULL;
    }
    sc->protocols = ZG_UNSET;
    sc->prefer_server_ciphers = ZG_UNSET;
    sc->session_timeout = ZG_UNSET_MSEC;
    return sc;
}

static int zg_ssl_merge_loc_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_ssl_conf_t *p = parent, *c = child;
    (void)cf;
    if (c->npairs == 0 && c->nkeys == 0) {
        c->pairs = p->pairs;
        c->npairs = p->npairs;
        c->keys = p->keys;
        c->key_files = p->key_files;
        c->key_lines = p->key_lines;
        c->nkeys = p->nkeys;
    }
    ZG_CONF_MERGE(c, p, protocols, ZG_UNSET);
    ZG_CONF_MERGE(c, p, ciphers, NULL);
    ZG_CONF_MERGE(c, p, prefer_server_ciphers, ZG_UNSET);
    ZG_CONF_MERGE(c, p, session_timeout, ZG_UNSET_MSEC);
    return ZG_OK;
}

static int zg_ssl_certificate(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    (void)cmd;
    zg_ssl_pair_t *pair = zg_conf_push(cf->conf, sc->pairs, sc->npairs);
    if (pair == NULL || (pair->cert = zg_conf_path(cf, &cf->args[1])) == NULL) {
        return zg_conf_nomem(cf);
    }
    pair->file = cf->file;
    pair->line = cf->line;
    return ZG_OK;
}

static int zg_ssl_certificate_key(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    int n = sc->nkeys;
    (void)cmd;
    char **k = zg_conf_push(cf->conf, sc->keys, sc->nkeys);
    int m = n;
    const char **f = zg_conf_push(cf->conf, sc->key_files, n);
    int *l = zg_conf_push(cf->conf, sc->key_lines, m);
    if (k == NULL || f == NULL || l == NULL || (*k = zg_conf_path(cf, &cf->args[1])) == NULL) {
        return zg_conf_nomem(cf);
    }
    *f = cf->file;
    *l = cf->line;
    return ZG_OK;
}

static int zg_ssl_protocols(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    static const struct {
        const char *name;
        int bit;
    } names[] = {
        {"SSLv2", ZG_SSL_PROTO_SSLv2},     {"SSLv3", ZG_SSL_PROTO_SSLv3},
        {"TLSv1", ZG_SSL_PROTO_TLSv1},     {"TLSv1.1", ZG_SSL_PROTO_TLSv1_1},
        {"TLSv1.2", ZG_SSL_PROTO_TLSv1_2}, {"TLSv1.3", ZG_SSL_PROTO_TLSv1_3},
    };
    zg_ssl_conf_t *sc = conf;
    (void)cmd;
    if (sc->protocols != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    sc->protocols = 0;
    for (int i = 1; i < cf->nargs; i++) {
        size_t k;
        for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            if (zg_conf_eq(&cf->args[i], names[k].name)) {
                sc->protocols |= names[k].bit;
                break;
            }
        }
        if (k == sizeof(names) / sizeof(names[0])) {
            return zg_conf_invalid(cf, &cf->args[i]);
        }
    }
    return ZG_OK;
}

static int zg_ssl_ciphers(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    (void)cmd;
    if (sc->ciphers != NULL) {
        return zg_conf_duplicate(cf);
    }
    sc->ciphers = zg_conf_strdup(cf->conf, cf->args[1].data, cf->args[1].len);
    return sc->ciphers == NULL ? zg_conf_nomem(cf) : ZG_OK;
}

/* "REASON" of the last OpenSSL error, or "" */
static const char *zg_ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    buf[0] = '\0';
    if (e != 0) {
        strcpy(buf, " (SSL: ");
        ERR_error_string_n(e, buf + 7, len - 9);
        strcat(buf, ")");
    }
    ERR_clear_error();
    return buf;
}

/* SNI: the server named picks its certificate (the Host header still picks the
 * server that answers, as nginx); an unknown name keeps the default server's */
static int zg_ssl_servername(SSL *ssl, int *ad, void *arg)
{
    zg_conn_t *c = SSL_get_app_data(ssl);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    zg_regex_caps_t caps;
    (void)ad;
    (void)arg;
    if (c == NULL || name == NULL) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    caps.n = 0;
    caps.re = NULL;
    zg_server_conf_t *srv = zg_http_find_server(c->ls, name, strlen(name), &caps);
    zg_ssl_conf_t *sc = srv ? zg_conf_module(srv->loc_conf, zg_ssl_module) : NULL;
    if (sc != NULL && sc->ctx != NULL && sc->ctx != SSL_get_SSL_CTX(ssl)) {
        SSL_set_SSL_CTX(ssl, sc->ctx);
        /* the options of the server named (protocols, cipher preference) */
        SSL_clear_options(ssl, SSL_get_options(ssl) & ~SSL_CTX_get_options(sc->ctx));
        SSL_set_options(ssl, SSL_CTX_get_options(sc->ctx));
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN: http/1.1 when the client offers it (HTTP/2 is not served) */
static int zg_ssl_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char http11[] = "\x08http/1.1";
    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, http11, sizeof(http11) - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* the SSL_CTX of a server with certificates; NULL after the error */
static SSL_CTX *zg_ssl_ctx_new(zg_cf_t *cf, zg_server_conf_t *srv, zg_ssl_conf_t *sc)
{
    char why[300];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        zg_conf_error_at(cf, srv->file, srv->line, "SSL_CTX_new() failed%s",
                         zg_ssl_reason(why, sizeof(why)));
        return NULL;
    }
    int protocols = sc->protocols == ZG_UNSET ? ZG_SSL_PROTO_TLSv1_2 | ZG_SSL_PROTO_TLSv1_3
                                              : sc->protocols;
    uint64_t opts = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_COMPRESSION |
                    SSL_OP_NO_RENEGOTIATION | SSL_OP_SINGLE_DH_USE | SSL_OP_SINGLE_ECDH_USE;
    if (!(protocols & ZG_SSL_PROTO_TLSv1)) {
        opts |= SSL_OP_NO_TLSv1;
    }
    if (!(protocols & ZG_SSL_PROTO_TLSv1_1)) {
        opts |= SSL_OP_NO_TLSv1_1;
    }
    if (!(protocols & ZG_SSL_PROTO_TLSv1_2)) {
        opts |= SSL_OP_NO_TLSv1_2;
    }
    if (!(protocols & ZG_SSL_PROTO_TLSv1_3)) {
        opts |= SSL_OP_NO_TLSv1_3;
    }
    if (sc->prefer_server_ciphers == 1) {
        opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    }
    SSL_CTX_set_options(ctx, opts);
    SSL_CTX_set_min_proto_version(ctx, 0);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
    SSL_CTX_set_read_ahead(ctx, 1);
    const char *ciphers = sc->ciphers ? sc->ciphers : "HIGH:!aNULL:!MD5";
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        zg_conf_error_at(cf, srv->file, srv->line,
                         "SSL_CTX_set_cipher_list(\"%s\") failed%s", ciphers,
                         zg_ssl_reason(why, sizeof(why)));
        goto err;
    }
    SSL_CTX_set_timeout(ctx, (long)((sc->session_timeout == ZG_UNSET_MSEC
                                         ? 300000 : sc->session_timeout) / 1000));
    /* no server side cache yet: sessions resume through tickets, whose keys the
     * workers inherit from this context */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    static const unsigned char sid_ctx[] = "zonegate";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_tlsext_servername_callback(ctx, zg_ssl_servername);
    SSL_CTX_set_alpn_select_cb(ctx, zg_ssl_alpn, NULL);

    for (int i = 0; i < sc->npairs; i++) {
        zg_ssl_pair_t *p = &sc->pairs[i];
        if (i >= sc->nkeys) {
            zg_conf_error_at(cf, p->file, p->line,
                             "no \"ssl_certificate_key\" is defined for certificate \"%s\"",
                             p->cert);
            goto err;
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, p->cert) != 1) {
            zg_conf_error_at(cf, p->file, p->line,
                             "cannot load certificate \"%s\" of the \"ssl_certificate\" "
                             "directive%s", p->cert, zg_ssl_reason(why, sizeof(why)));
            goto err;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, sc->keys[i], SSL_FILETYPE_PEM) != 1) {
            zg_conf_error_at(cf, sc->key_files[i], sc->key_lines[i],
                             "cannot load certificate key \"%s\" of the "
                             "\"ssl_certificate_key\" directive%s",
                             sc->keys[i], zg_ssl_reason(why, sizeof(why)));
            goto err;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            zg_conf_error_at(cf, sc->key_files[i], sc->key_lines[i],
                             "the key \"%s\" of the \"ssl_certificate_key\" directive does "
                             "not match the certificate \"%s\"%s",
                             sc->keys[i], p->cert, zg_ssl_reason(why, sizeof(why)));
            goto err;
        }
    }
    if (sc->nkeys > sc->npairs) {
        zg_conf_error_at(cf, sc->key_files[sc->npairs], sc->key_lines[sc->npairs],
                         "no \"ssl_certificate\" is defined for key \"%s\"",
                         sc->keys[sc->npairs]);
        goto err;
    }
    return ctx;
err:
    SSL_CTX_free(ctx);
    return NULL;
}

static int zg_ssl_init_main_conf(zg_cf_t *cf, void *conf)
{
    zg_ssl_main_conf_t *smcf = conf;
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(cf->conf);

    for (int i = 0; i < cmcf->nservers; i++) {
        zg_server_conf_t *srv = &cmcf->servers[i];
        zg_ssl_conf_t *sc = zg_conf_module(srv->loc_conf, zg_ssl_module);
        if (sc->npairs == 0 && sc->nkeys == 0) {
            continue;
        }
        SSL_CTX **slot = zg_conf_push(cf->conf, smcf->ctxs, smcf->nctxs);
        if (slot == NULL) {
            return zg_conf_nomem(cf);
        }
        *slot = NULL;
        if ((sc->ctx = zg_ssl_ctx_new(cf, srv, sc)) == NULL) {
            smcf->nctxs--;
            return ZG_ERROR;
        }
        *slot = sc->ctx;
    }
    for (int j = 0; j < cmcf->nlistens; j++) {
        zg_listen_t *ls = &cmcf->listens[j];
        if (!ls->ssl) {
            continue;
        }
        zg_ssl_conf_t *sc = zg_conf_module(ls->default_server->loc_conf, zg_ssl_module);
        if (sc->ctx == NULL) {
            return zg_conf_error_at(cf, ls->file, ls->line,
                                    "no \"ssl_certificate\" is defined for the \"listen "
                                    "... ssl\" directive");
        }
        ls->ssl_ctx = sc->ctx;
    }
    for (int j = 0; j < cmcf->nlistens; j++) {
        zg_listen_t *ls = &cmcf->listens[j];
        if (ls->http2) {
            zg_log_error(ZG_LOG_WARN, 0,
                         "the \"http2\" parameter of the \"listen\" directive is accepted "
                         "but HTTP/2 is not served: ALPN offers http/1.1 only, clients use "
                         "HTTP/1.1 in %s:%d", ls->file, ls->line);
        }
    }
    return ZG_OK;
}

static void zg_ssl_exit_master(zg_conf_t *conf)
{
    zg_ssl_main_conf_t *smcf = zg_main_conf_of(conf, zg_ssl_module);
    for (int i = 0; smcf != NULL && i < smcf->nctxs; i++) {
        SSL_CTX_free(smcf->ctxs[i]);
    }
    if (smcf != NULL) {
        smcf->nctxs = 0;
    }
}

/* `http2 on` (nginx 1.25's spelling): accepted, with the same warning as
 * `listen ... http2` */
static int zg_ssl_http2(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    int on = 0;
    (void)cmd;
    (void)conf;
    if (zg_conf_flag(cf, &cf->args[1], &on) != ZG_OK) {
        return ZG_ERROR;
    }
    if (on) {
        zg_log_error(ZG_LOG_WARN, 0,
                     "\"http2 on\" is accepted but HTTP/2 is not served: ALPN offers "
                     "http/1.1 only, clients use HTTP/1.1 in %s:%d", cf->file, cf->line);
    }
    return ZG_OK;
}

#define ZG_SSL_CTX (ZG_CTX_HTTP | ZG_CTX_SRV)

static const zg_command_t zg_ssl_commands[] = {
    { "ssl_certificate", ZG_SSL_CTX, 0, 1, 1, zg_ssl_certificate, ZG_LOC_CONF, 0, NULL },
    { "ssl_certificate_key", ZG_SSL_CTX, 0, 1, 1, zg_ssl_certificate_key, ZG_LOC_CONF, 0,
      NULL },
    { "ssl_protocols", ZG_SSL_CTX, 0, 1, -1, zg_ssl_protocols, ZG_LOC_CONF, 0, NULL },
    { "ssl_ciphers", ZG_SSL_CTX, 0, 1, 1, zg_ssl_ciphers, ZG_LOC_CONF, 0, NULL },
    { "ssl_prefer_server_ciphers", ZG_SSL_CTX, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      offsetof(zg_ssl_conf_t, prefer_server_ciphers), NULL },
    { "ssl_session_timeout", ZG_SSL_CTX, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      offsetof(zg_ssl_conf_t, session_timeout), NULL },
    { "http2", ZG_SSL_CTX, 0, 1, 1, zg_ssl_http2, ZG_LOC_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_ssl_module = {
    .name = "ssl",
    .commands = zg_ssl_commands,
    .create_main_conf = zg_ssl_create_main_conf,
    .init_main_conf = zg_ssl_init_main_conf,
    .create_loc_conf = zg_ssl_create_loc_conf,
    .merge_loc_conf = zg_ssl_merge_loc_conf,
    .exit_master = zg_ssl_exit_master,
};
