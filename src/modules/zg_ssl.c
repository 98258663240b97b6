/* zg_ssl.c — the ssl module: directives, one SSL_CTX per server (see zg_ssl.h). */
#include "zg_ssl.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "zg_admin.h"
#include "zg_http_core.h"
#include "zg_log.h"
#include "zg_queue.h"
#include "zg_rbtree.h"
#include "zg_shmtx.h"
#include "zg_slab.h"
#include "zg_regex.h"
#include "zg_request.h"
#include "zg_ssl_stream.h"
#include "zg_stream.h"
#include "zg_worker.h"

#define ZG_SSL_PROTO_TLSv1 0x01
#define ZG_SSL_PROTO_TLSv1_1 0x02
#define ZG_SSL_PROTO_TLSv1_2 0x04
#define ZG_SSL_PROTO_TLSv1_3 0x08
#define ZG_SSL_PROTO_SSLv3 0x10
#define ZG_SSL_PROTO_SSLv2 0x20

#define ZG_SSL_VERIFY_OFF 0
#define ZG_SSL_VERIFY_ON 1
#define ZG_SSL_VERIFY_OPTIONAL 2
#define ZG_SSL_VERIFY_OPTIONAL_NO_CA 3

/* session ticket keys: the first encrypts, the others still decrypt */
#define ZG_SSL_TICKET_KEYS 4
typedef struct {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
    size_t size;           /* 16 (AES-128, a 48-byte file) or 32 (AES-256) */
} zg_ssl_ticket_key_t;

typedef struct {
    zg_ssl_ticket_key_t keys[ZG_SSL_TICKET_KEYS];
    int n;
    time_t made;           /* the zone's: when keys[0] was made */
    uint64_t rotations;    /* the zone's: keys made by ssl_session_ticket_rotate */
} zg_ssl_ticket_keys_t;

/* a file named by a directive, and where the directive is */
typedef struct {
    char *path;
    const char *file;
    int line;
} zg_ssl_file_t;

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
    int session_tickets;   /* on */
    int cache_set;         /* ssl_session_cache was given */
    int cache_builtin;     /* -1 off (strict), 0 none, or the builtin size (sessions) */
    zg_zone_t *cache_zone; /* shared:NAME:SIZE */
    char *client_certificate;
    const char *cc_file;   /* where ssl_client_certificate is */
    int cc_line;
    int verify_client;     /* ZG_SSL_VERIFY_* */
    int verify_depth;      /* 1 */
    zg_ssl_ticket_keys_t *ticket_keys; /* ssl_session_ticket_key files; NULL = the zone's */
    int stapling;          /* off */
    int stapling_verify;   /* off */
    char *stapling_file;
    const char *stapling_at; /* where ssl_stapling is */
    int stapling_line;
    unsigned char *ocsp;   /* the stapling file's response (DER), read at load */
    size_t ocsp_len;
    zg_msec_t handshake_timeout; /* stream: 60s */
    zg_msec_t ticket_rotate; /* ssl_session_ticket_rotate; unset = never */
    const char *rotate_file; /* where ssl_session_ticket_rotate is */
    int rotate_line;
    int reject_handshake;  /* ssl_reject_handshake: off */
    int64_t buffer_size;   /* ssl_buffer_size: the largest record sent; 16k */
    unsigned char *alpn;   /* stream ssl_alpn: the protocols, in ALPN's wire format */
    size_t alpn_len;
    char *ecdh_curve;      /* NULL or "auto": OpenSSL's default groups */
    char *dhparam;         /* ssl_dhparam FILE (PEM DH parameters) */
    const char *dh_file;   /* where ssl_dhparam is */
    int dh_line;
    zg_ssl_file_t trusted; /* ssl_trusted_certificate: CAs that verify, not announced */
    zg_ssl_file_t crl;     /* ssl_crl: revoked certificates (PEM CRLs) */
    char **conf_commands;  /* ssl_conf_command NAME VALUE: name, value, name, ... */
    int nconf_commands;    /* strings in conf_commands; -1 = unset */
    const char *cmd_file;  /* where the first ssl_conf_command is */
    int cmd_line;
    char **passwords;      /* ssl_password_file's lines, tried in order */
    int npasswords;        /* -1 = unset */
    SSL_CTX *ctx;          /* server level: built by init_main_conf */
} zg_ssl_conf_t;

typedef struct {
    int verify;            /* some server checks client certificates */
    zg_zone_t *ticket_zone; /* the shared ticket keys, if a server uses them */
    zg_msec_t rotate;      /* ssl_session_ticket_rotate: the shortest given; 0 = never */
} zg_ssl_main_conf_t;

static void *zg_ssl_create_main_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_ssl_main_conf_t));
}

/* the SSL_CTXs are freed with their configuration */
static void zg_ssl_ctx_free(void *ctx)
{
    SSL_CTX_free(ctx);
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
    sc->session_tickets = ZG_UNSET;
    sc->verify_client = ZG_UNSET;
    sc->verify_depth = ZG_UNSET;
    sc->stapling = ZG_UNSET;
    sc->stapling_verify = ZG_UNSET;
    sc->handshake_timeout = ZG_UNSET_MSEC;
    sc->ticket_rotate = ZG_UNSET_MSEC;
    sc->npasswords = -1;
    sc->nconf_commands = -1;
    sc->reject_handshake = ZG_UNSET;
    sc->buffer_size = ZG_UNSET_SIZE;
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
    ZG_CONF_MERGE(c, p, session_tickets, ZG_UNSET);
    ZG_CONF_MERGE(c, p, verify_client, ZG_UNSET);
    ZG_CONF_MERGE(c, p, verify_depth, ZG_UNSET);
    ZG_CONF_MERGE(c, p, ticket_keys, NULL);
    if (c->stapling == ZG_UNSET) {
        c->stapling = p->stapling;
        c->stapling_at = p->stapling_at;
        c->stapling_line = p->stapling_line;
    }
    ZG_CONF_MERGE(c, p, stapling_verify, ZG_UNSET);
    ZG_CONF_MERGE(c, p, handshake_timeout, ZG_UNSET_MSEC);
    if (c->ticket_rotate == ZG_UNSET_MSEC) {
        c->ticket_rotate = p->ticket_rotate;
        c->rotate_file = p->rotate_file;
        c->rotate_line = p->rotate_line;
    }
    ZG_CONF_MERGE(c, p, reject_handshake, ZG_UNSET);
    ZG_CONF_MERGE(c, p, buffer_size, ZG_UNSET_SIZE);
    if (c->alpn == NULL) {
        c->alpn = p->alpn;
        c->alpn_len = p->alpn_len;
    }
    ZG_CONF_MERGE(c, p, ecdh_curve, NULL);
    if (c->dhparam == NULL) {
        c->dhparam = p->dhparam;
        c->dh_file = p->dh_file;
        c->dh_line = p->dh_line;
    }
    if (c->trusted.path == NULL) {
        c->trusted = p->trusted;
    }
    if (c->crl.path == NULL) {
        c->crl = p->crl;
    }
    if (c->nconf_commands < 0) {
        c->conf_commands = p->conf_commands;
        c->nconf_commands = p->nconf_commands;
        c->cmd_file = p->cmd_file;
        c->cmd_line = p->cmd_line;
    }
    if (c->npasswords < 0) {
        c->passwords = p->passwords;
        c->npasswords = p->npasswords;
    }
    ZG_CONF_MERGE(c, p, stapling_file, NULL);
    if (c->client_certificate == NULL) {
        c->client_certificate = p->client_certificate;
        c->cc_file = p->cc_file;
        c->cc_line = p->cc_line;
    }
    if (!c->cache_set) {
        c->cache_set = p->cache_set;
        c->cache_builtin = p->cache_builtin;
        c->cache_zone = p->cache_zone;
    }
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

/* ssl_ecdh_curve CURVE[:CURVE...] | auto */
static int zg_ssl_ecdh_curve(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    (void)cmd;
    if (sc->ecdh_curve != NULL) {
        return zg_conf_duplicate(cf);
    }
    sc->ecdh_curve = zg_conf_strdup(cf->conf, cf->args[1].data, cf->args[1].len);
    return sc->ecdh_curve == NULL ? zg_conf_nomem(cf) : ZG_OK;
}

/* ssl_dhparam FILE: read when the SSL_CTX is made (a bad file names this line) */
static int zg_ssl_dhparam(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    (void)cmd;
    if (sc->dhparam != NULL) {
        return zg_conf_duplicate(cf);
    }
    if ((sc->dhparam = zg_conf_path(cf, &cf->args[1])) == NULL) {
        return zg_conf_nomem(cf);
    }
    sc->dh_file = cf->file;
    sc->dh_line = cf->line;
    return ZG_OK;
}

/* ssl_password_file FILE: one pass phrase a line, read now (the master can read it;
 * the workers cannot) */
static int zg_ssl_password_file(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    char buf[8192];
    (void)cmd;
    if (sc->npasswords >= 0) {
        return zg_conf_duplicate(cf);
    }
    char *path = zg_conf_path(cf, &cf->args[1]);
    if (path == NULL) {
        return zg_conf_nomem(cf);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return zg_conf_error(cf, "cannot open \"%s\" of the \"ssl_password_file\" directive "
                             "(%s)", path, strerror(errno));
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0 || n == (ssize_t)sizeof(buf)) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return zg_conf_error(cf, "cannot read \"%s\" of the \"ssl_password_file\" "
                             "directive (%s)", path, n < 0 ? strerror(errno) : "too large");
    }
    sc->npasswords = 0;
    for (char *line = buf, *end = buf + n; line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *stop = nl ? nl : end;
        size_t len = (size_t)(stop - line);
        if (len > 0 && line[len - 1] == '\r') {
            len--;
        }
        if (len > 0) {
            char **pw = zg_conf_push(cf->conf, sc->passwords, sc->npasswords);
            if (pw == NULL || (*pw = zg_conf_strdup(cf->conf, line, len)) == NULL) {
                OPENSSL_cleanse(buf, sizeof(buf));
                return zg_conf_nomem(cf);
            }
        }
        line = stop + 1;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    if (sc->npasswords == 0) {
        return zg_conf_error(cf, "\"%s\" of the \"ssl_password_file\" directive has no "
                             "password", path);
    }
    return ZG_OK;
}

/* the pass phrase OpenSSL asks for: the one being tried, never a prompt */
static int zg_ssl_password_cb(char *buf, int size, int rwflag, void *u)
{
    const char *pw = u;
    (void)rwflag;
    if (pw == NULL) {
        return 0;
    }
    size_t n = strlen(pw);
    if (n > (size_t)size) {
        return 0;
    }
    memcpy(buf, pw, n);
    return (int)n;
}

/* the private key of file, trying each password in order (as nginx): NULL after
 * OpenSSL's error */
static EVP_PKEY *zg_ssl_load_key(const char *file, char **passwords, int npasswords)
{
    BIO *b = BIO_new_file(file, "r");
    EVP_PKEY *pkey = NULL;
    if (b == NULL) {
        return NULL;
    }
    for (int i = 0; pkey == NULL && i < (npasswords > 0 ? npasswords : 1); i++) {
        if (i > 0) {
            (void)BIO_reset(b);
            ERR_clear_error();
        }
        pkey = PEM_read_bio_PrivateKey(b, NULL, zg_ssl_password_cb,
                                       npasswords > 0 ? passwords[i] : NULL);
    }
    BIO_free(b);
    return pkey;
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

/* ------------------------------------------------- shared session cache */

#define ZG_SSL_MAX_SESSION 4096     /* a session's DER, at most (nginx's limit) */
#define ZG_SSL_BUILTIN_DEFAULT 20480

typedef struct {
    zg_rbtree_node_t node;          /* key: hash of the session id */
    zg_queue_t queue;               /* LRU: most recently stored at the head */
    time_t expire;
    unsigned char id_len;
    unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    uint32_t len;
    unsigned char der[];            /* the session, i2d_SSL_SESSION */
} zg_ssl_sess_sh_t;

typedef struct {
    zg_rbtree_t rbtree;
    zg_rbtree_node_t sentinel;
    zg_queue_t queue;
    uint64_t hits, misses, stores, evictions, expired, fails;
    uint64_t sessions;
} zg_ssl_cache_sh_t;

typedef struct {
    const unsigned char *id;
    size_t len;
} zg_ssl_id_t;

static int zg_ssl_ctx_zone_index = -1; /* SSL_CTX ex_data: the zg_zone_t of its cache */

static int zg_ssl_cache_init(zg_zone_t *zone, void *old_data)
{
    zg_ssl_cache_sh_t *sh = old_data;
    if (sh == NULL) {
        sh = zg_slab_calloc(zone->pool, sizeof(*sh));
        if (sh == NULL) {
            zg_log_error(ZG_LOG_EMERG, 0, "ssl_session_cache \"%s\": no memory for the zone root",
                         zone->name);
            return ZG_ERROR;
        }
        zg_rbtree_init(&sh->rbtree, &sh->sentinel, NULL);
        zg_queue_init(&sh->queue);
    }
    zone->data = sh;
    zone->pool->data = sh;
    return ZG_OK;
}

const zg_zone_kind_t zg_ssl_cache_zone_kind = { "ssl_session_cache", zg_ssl_cache_init };

static int zg_ssl_sess_cmp(const zg_rbtree_node_t *n, const void *arg)
{
    const zg_ssl_sess_sh_t *s = zg_data_of(n, zg_ssl_sess_sh_t, node);
    const zg_ssl_id_t *k = arg;
    return zg_rbtree_key_cmp(s->id, s->id_len, k->id, k->len);
}

static void zg_ssl_sess_delete_locked(zg_zone_t *zone, zg_ssl_cache_sh_t *sh,
                                      zg_ssl_sess_sh_t *s)
{
    zg_queue_remove(&s->queue);
    zg_rbtree_delete(&sh->rbtree, &s->node);
    zg_slab_free_locked(zone->pool, s);
    sh->sessions--;
}

/* drops expired sessions from the tail (at most n; all when n is 0) */
static void zg_ssl_cache_expire_locked(zg_zone_t *zone, zg_ssl_cache_sh_t *sh, time_t now,
                                       int n)
{
    while (!zg_queue_empty(&sh->queue)) {
        zg_ssl_sess_sh_t *s = zg_queue_data(zg_queue_last(&sh->queue), zg_ssl_sess_sh_t, queue);
        if (s->expire > now) {
            return;
        }
        zg_ssl_sess_delete_locked(zone, sh, s);
        sh->expired++;
        if (n > 0 && --n == 0) {
            return;
        }
    }
}

static zg_zone_t *zg_ssl_zone_of(SSL *ssl)
{
    return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), zg_ssl_ctx_zone_index);
}

/* OpenSSL made a new session: store it (a full cache evicts the oldest) */
static int zg_ssl_new_session(SSL *ssl, SSL_SESSION *sess)
{
    unsigned char buf[ZG_SSL_MAX_SESSION], *p = buf;
    zg_zone_t *zone = zg_ssl_zone_of(ssl);
    zg_ssl_cache_sh_t *sh = zone ? zone->data : NULL;
    unsigned int id_len = 0;
    const unsigned char *id = SSL_SESSION_get_id(sess, &id_len);
    int len = i2d_SSL_SESSION(sess, NULL);

    if (sh == NULL || len <= 0 || len > ZG_SSL_MAX_SESSION || id_len == 0
        || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH) {
        return 0;
    }
    i2d_SSL_SESSION(sess, &p);
    time_t now = time(NULL);
    zg_ssl_id_t k = { id, id_len };
    uint32_t hash = zg_hash32(id, id_len);

    zg_shmtx_lock(&zone->pool->mutex);
    zg_ssl_cache_expire_locked(zone, sh, now, 1);
    zg_ssl_sess_sh_t *s = zg_slab_alloc_locked(zone->pool, sizeof(*s) + (size_t)len);
    while (s == NULL && !zg_queue_empty(&sh->queue)) {
        /* full: the least recently stored session goes */
        zg_ssl_sess_sh_t *old = zg_queue_data(zg_queue_last(&sh->queue), zg_ssl_sess_sh_t, queue);
        zg_ssl_sess_delete_locked(zone, sh, old);
        sh->evictions++;
        s = zg_slab_alloc_locked(zone->pool, sizeof(*s) + (size_t)len);
    }
    if (s == NULL) {
        sh->fails++;
        zg_shmtx_unlock(&zone->pool->mutex);
        return 0;
    }
    zg_rbtree_node_t *dup = zg_rbtree_lookup(&sh->rbtree, hash, zg_ssl_sess_cmp, &k);
    if (dup != NULL) {
        zg_ssl_sess_delete_locked(zone, sh, zg_data_of(dup, zg_ssl_sess_sh_t, node));
    }
    memcpy(s->id, id, id_len);
    s->id_len = (unsigned char)id_len;
    s->len = (uint32_t)len;
    memcpy(s->der, buf, (size_t)len);
    s->expire = (time_t)SSL_SESSION_get_time(sess) + (time_t)SSL_SESSION_get_timeout(sess);
    s->node.key = hash;
    zg_rbtree_insert_keyed(&sh->rbtree, &s->node, zg_ssl_sess_cmp, &k);
    zg_queue_insert_head(&sh->queue, &s->queue);
    sh->sessions++;
    sh->stores++;
    zg_shmtx_unlock(&zone->pool->mutex);
    return 0; /* no reference kept on sess */
}

static SSL_SESSION *zg_ssl_get_session(SSL *ssl, const unsigned char *id, int len, int *copy)
{
    unsigned char buf[ZG_SSL_MAX_SESSION];
    const unsigned char *p = buf;
    zg_zone_t *zone = zg_ssl_zone_of(ssl);
    zg_ssl_cache_sh_t *sh = zone ? zone->data : NULL;
    SSL_SESSION *sess = NULL;
    size_t n = 0;

    *copy = 0;
    if (sh == NULL || len <= 0 || len > SSL_MAX_SSL_SESSION_ID_LENGTH) {
        return NULL;
    }
    zg_ssl_id_t k = { id, (size_t)len };
    zg_shmtx_lock(&zone->pool->mutex);
    zg_rbtree_node_t *node =
        zg_rbtree_lookup(&sh->rbtree, zg_hash32(id, (size_t)len), zg_ssl_sess_cmp, &k);
    if (node != NULL) {
        zg_ssl_sess_sh_t *s = zg_data_of(node, zg_ssl_sess_sh_t, node);
        if (s->expire > time(NULL)) {
            n = s->len;
            memcpy(buf, s->der, n);
        } else {
            zg_ssl_sess_delete_locked(zone, sh, s);
            sh->expired++;
        }
    }
    if (n == 0) {
        sh->misses++;
    } else {
        sh->hits++;
    }
    zg_shmtx_unlock(&zone->pool->mutex);
    if (n > 0) {
        sess = d2i_SSL_SESSION(NULL, &p, (long)n);
        ERR_clear_error();
    }
    return sess;
}

static void zg_ssl_remove_session(SSL_CTX *ctx, SSL_SESSION *sess)
{
    zg_zone_t *zone = SSL_CTX_get_ex_data(ctx, zg_ssl_ctx_zone_index);
    zg_ssl_cache_sh_t *sh = zone ? zone->data : NULL;
    unsigned int len = 0;
    const unsigned char *id = SSL_SESSION_get_id(sess, &len);
    if (sh == NULL || len == 0) {
        return;
    }
    zg_ssl_id_t k = { id, len };
    zg_shmtx_lock(&zone->pool->mutex);
    zg_rbtree_node_t *node = zg_rbtree_lookup(&sh->rbtree, zg_hash32(id, len), zg_ssl_sess_cmp, &k);
    if (node != NULL) {
        zg_ssl_sess_delete_locked(zone, sh, zg_data_of(node, zg_ssl_sess_sh_t, node));
    }
    zg_shmtx_unlock(&zone->pool->mutex);
}

static void zg_ssl_ticket_metrics(zg_buf_t *b, const zg_conf_t *conf);

static void zg_ssl_metrics(zg_buf_t *b, const zg_conf_t *conf)
{
    zg_ssl_ticket_metrics(b, conf);
    static const char *types[] = { "hits", "misses", "stores", "evictions", "expired",
                                   "store_failures" };
    zg_zone_t *z;
    if (zg_admin_zones_of(conf, &zg_ssl_cache_zone_kind) == 0) {
        return;
    }
    zg_admin_family(b, "zonegate_ssl_session_cache_total", "counter",
                    "TLS session cache lookups (hits, misses), stores, evictions of the "
                    "oldest session when full, expired sessions, stores that failed.");
    for (z = conf->zones.head; z != NULL; z = z->next) {
        if (z->pool == NULL || z->kind != &zg_ssl_cache_zone_kind || z->data == NULL) {
            continue;
        }
        zg_ssl_cache_sh_t *sh = z->data;
        uint64_t v[6];
        zg_shmtx_lock(&z->pool->mutex);
        v[0] = sh->hits;
        v[1] = sh->misses;
        v[2] = sh->stores;
        v[3] = sh->evictions;
        v[4] = sh->expired;
        v[5] = sh->fails;
        zg_shmtx_unlock(&z->pool->mutex);
        for (int i = 0; i < 6; i++) {
            zg_admin_sample(b, "zonegate_ssl_session_cache_total", v[i], "zone", z->name,
                            "type", types[i], NULL);
        }
    }
    zg_admin_family(b, "zonegate_ssl_sessions", "gauge", "TLS sessions held by the cache.");
    for (z = conf->zones.head; z != NULL; z = z->next) {
        if (z->pool == NULL || z->kind != &zg_ssl_cache_zone_kind || z->data == NULL) {
            continue;
        }
        zg_ssl_cache_sh_t *sh = z->data;
        zg_shmtx_lock(&z->pool->mutex);
        uint64_t n = sh->sessions;
        zg_shmtx_unlock(&z->pool->mutex);
        zg_admin_sample(b, "zonegate_ssl_sessions", n, "zone", z->name, NULL);
    }
}

/* ssl_session_cache off | none | [builtin[:SIZE]] [shared:NAME:SIZE] */
static int zg_ssl_session_cache(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    (void)cmd;
    if (sc->cache_set) {
        return zg_conf_duplicate(cf);
    }
    sc->cache_set = 1;
    sc->cache_builtin = 0;
    for (int i = 1; i < cf->nargs; i++) {
        zg_str_t *v = &cf->args[i];
        if (zg_conf_eq(v, "off") || zg_conf_eq(v, "none")) {
            if (cf->nargs != 2) {
                return zg_conf_invalid(cf, v);
            }
            sc->cache_builtin = zg_conf_eq(v, "off") ? -1 : 0;
        } else if (zg_conf_eq(v, "builtin")) {
            sc->cache_builtin = ZG_SSL_BUILTIN_DEFAULT;
        } else if (zg_conf_prefix(v, "builtin:")) {
            int n = zg_conf_atoi(v->data + 8, v->len - 8);
            if (n <= 0) {
                return zg_conf_invalid(cf, v);
            }
            sc->cache_builtin = n;
        } else if (zg_conf_prefix(v, "shared:")) {
            const char *name = v->data + 7;
            const char *colon = memchr(name, ':', v->len - 7);
            if (colon == NULL || colon == name) {
                return zg_conf_invalid(cf, v);
            }
            size_t nlen = (size_t)(colon - name);
            size_t slen = v->len - 7 - nlen - 1;
            if (zg_conf_zone(cf, name, nlen, v, colon + 1, slen, v, &zg_ssl_cache_zone_kind,
                             &sc->cache_zone) != ZG_OK) {
                return ZG_ERROR;
            }
        } else {
            return zg_conf_invalid(cf, v);
        }
    }
    return ZG_OK;
}

/* ------------------------------------------------------- ticket keys */

#define ZG_SSL_TICKET_ZONE "ssl_session_ticket_keys"
#define ZG_SSL_TICKET_ZONE_SIZE (ZG_ZONE_MIN_PAGES * 4096)

static int zg_ssl_ctx_keys_index = -1; /* SSL_CTX ex_data: zg_ssl_ticket_keys_t * */
static int zg_ssl_ctx_kzone_index = -1; /* SSL_CTX ex_data: the ticket keys' zone */

/* a new zone gets fresh random keys (in the master, before fork); a zone kept over a
 * reload keeps its keys, so tickets issued before the reload still resume */
static int zg_ssl_ticket_zone_init(zg_zone_t *zone, void *old_data)
{
    zg_ssl_ticket_keys_t *k = old_data;
    if (k == NULL) {
        k = zg_slab_calloc(zone->pool, sizeof(*k));
        if (k == NULL) {
            zg_log_error(ZG_LOG_EMERG, 0, "\"%s\": no memory for the ticket keys", zone->name);
            return ZG_ERROR;
        }
        if (RAND_bytes(k->keys[0].name, 16) != 1 || RAND_bytes(k->keys[0].hmac, 32) != 1
            || RAND_bytes(k->keys[0].aes, 32) != 1) {
            zg_log_error(ZG_LOG_EMERG, 0, "RAND_bytes() failed for the ticket keys");
            return ZG_ERROR;
        }
        k->keys[0].size = 32;
        k->n = 1;
        k->made = time(NULL);
    }
    zone->data = k;
    zone->pool->data = k;
    return ZG_OK;
}

const zg_zone_kind_t zg_ssl_ticket_zone_kind = { "ssl_session_ticket_keys",
                                                 zg_ssl_ticket_zone_init };

static void zg_ssl_ticket_metrics(zg_buf_t *b, const zg_conf_t *conf)
{
    for (zg_zone_t *z = conf->zones.head; z != NULL; z = z->next) {
        if (z->pool == NULL || z->kind != &zg_ssl_ticket_zone_kind || z->data == NULL) {
            continue;
        }
        zg_ssl_ticket_keys_t *k = z->data;
        zg_shmtx_lock(&z->pool->mutex);
        uint64_t n = k->rotations;
        zg_shmtx_unlock(&z->pool->mutex);
        zg_admin_family(b, "zonegate_ssl_ticket_key_rotations_total", "counter",
                        "New TLS session ticket keys made by ssl_session_ticket_rotate.");
        zg_admin_sample(b, "zonegate_ssl_ticket_key_rotations_total", n, NULL);
    }
}

/* as nginx's ngx_ssl_ticket_key_callback: 1 = ticket made or accepted, 2 = accepted
 * with an older key (a new ticket is sent), 0 = unknown key (full handshake) */
static int zg_ssl_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
                            EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    const zg_ssl_ticket_keys_t *keys = SSL_CTX_get_ex_data(ctx, zg_ssl_ctx_keys_index);
    zg_ssl_ticket_keys_t copy;
    if (keys == NULL) {
        /* the zone's keys change when the master rotates them: a copy, under its lock */
        zg_zone_t *zone = SSL_CTX_get_ex_data(ctx, zg_ssl_ctx_kzone_index);
        if (zone != NULL && zone->data != NULL) {
            zg_shmtx_lock(&zone->pool->mutex);
            memcpy(&copy, zone->data, sizeof(copy));
            zg_shmtx_unlock(&zone->pool->mutex);
            keys = &copy;
        }
    }
    if (keys == NULL || keys->n == 0) {
        return -1;
    }
    const zg_ssl_ticket_key_t *k = NULL;
    int i = 0;
    if (enc == 1) {
        k = &keys->keys[0];
        if (RAND_bytes(iv, 16) != 1) {
            return -1;
        }
        memcpy(name, k->name, 16);
    } else {
        for (i = 0; i < keys->n; i++) {
            if (memcmp(name, keys->keys[i].name, 16) == 0) {
                k = &keys->keys[i];
                break;
            }
        }
        if (k == NULL) {
            return 0;
        }
    }
    const EVP_CIPHER *cipher = k->size == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, k->size);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(hctx, params) != 1) {
        return -1;
    }
    int rc = enc == 1 ? EVP_EncryptInit_ex(ectx, cipher, NULL, k->aes, iv)
                      : EVP_DecryptInit_ex(ectx, cipher, NULL, k->aes, iv);
    if (rc != 1) {
        return -1;
    }
    int rc2 = enc == 1 ? 1 : (i == 0 ? 1 : 2);
    OPENSSL_cleanse(&copy, sizeof(copy));
    return rc2;
}

/* master, about once a second: a new encryption key when the period is over; the
 * previous keys still decrypt until ZG_SSL_TICKET_KEYS - 1 newer ones were made */
static void zg_ssl_tick(zg_conf_t *conf)
{
    zg_ssl_main_conf_t *smcf = zg_main_conf_of(conf, zg_ssl_module);
    zg_ssl_ticket_key_t k;

    if (smcf == NULL || smcf->rotate == 0 || smcf->ticket_zone == NULL
        || smcf->ticket_zone->data == NULL) {
        return;
    }
    zg_zone_t *zone = smcf->ticket_zone;
    zg_ssl_ticket_keys_t *keys = zone->data;
    time_t now = time(NULL);
    zg_shmtx_lock(&zone->pool->mutex);
    time_t made = keys->made;
    zg_shmtx_unlock(&zone->pool->mutex);
    if ((zg_msec_t)(now - made) * 1000 < smcf->rotate) {
        return;
    }
    if (RAND_bytes(k.name, 16) != 1 || RAND_bytes(k.hmac, 32) != 1
        || RAND_bytes(k.aes, 32) != 1) {
        zg_log_error(ZG_LOG_ALERT, 0, "RAND_bytes() failed for a new ticket key");
        return;
    }
    k.size = 32;
    zg_shmtx_lock(&zone->pool->mutex);
    memmove(&keys->keys[1], &keys->keys[0], sizeof(k) * (ZG_SSL_TICKET_KEYS - 1));
    keys->keys[0] = k;
    if (keys->n < ZG_SSL_TICKET_KEYS) {
        keys->n++;
    }
    keys->made = now;
    keys->rotations++;
    zg_shmtx_unlock(&zone->pool->mutex);
    OPENSSL_cleanse(&k, sizeof(k));
}

/* ssl_session_ticket_key FILE: 48 or 80 bytes (nginx's format), read now */
static int zg_ssl_ticket_key(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    unsigned char buf[81];
    (void)cmd;
    char *path = zg_conf_path(cf, &cf->args[1]);
    if (path == NULL) {
        return zg_conf_nomem(cf);
    }
    if (sc->ticket_keys == NULL
        && (sc->ticket_keys = zg_conf_alloc(cf->conf, sizeof(*sc->ticket_keys))) == NULL) {
        return zg_conf_nomem(cf);
    }
    if (sc->ticket_keys->n == ZG_SSL_TICKET_KEYS) {
        return zg_conf_error(cf, "too many \"ssl_session_ticket_key\" directives (at most %d)",
                             ZG_SSL_TICKET_KEYS);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return zg_conf_error(cf, "cannot read \"%s\" of the \"ssl_session_ticket_key\" "
                             "directive (%s)", path, strerror(errno));
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n != 48 && n != 80) {
        return zg_conf_error(cf, "\"%s\" of the \"ssl_session_ticket_key\" directive must be "
                             "48 or 80 bytes", path);
    }
    zg_ssl_ticket_key_t *k = &sc->ticket_keys->keys[sc->ticket_keys->n++];
    k->size = n == 48 ? 16 : 32;
    memcpy(k->name, buf, 16);
    memcpy(k->hmac, buf + 16, k->size);
    memcpy(k->aes, buf + 16 + k->size, k->size);
    OPENSSL_cleanse(buf, sizeof(buf));
    return ZG_OK;
}

/* ssl_session_ticket_rotate TIME (at least 1s) */
static int zg_ssl_ticket_rotate(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    (void)cmd;
    if (sc->ticket_rotate != ZG_UNSET_MSEC) {
        return zg_conf_duplicate(cf);
    }
    sc->rotate_file = cf->file;
    sc->rotate_line = cf->line;
    sc->ticket_rotate = zg_conf_parse_time(cf->args[1].data, cf->args[1].len);
    if (sc->ticket_rotate == ZG_UNSET_MSEC || sc->ticket_rotate < 1000) {
        return zg_conf_error(cf, "invalid value \"%s\" of \"ssl_session_ticket_rotate\": "
                             "at least 1s", cf->args[1].data);
    }
    return ZG_OK;
}

/* ------------------------------------------------------------ stapling */

static int zg_ssl_stapling(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    (void)cmd;
    if (sc->stapling != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    sc->stapling_at = cf->file;
    sc->stapling_line = cf->line;
    return zg_conf_flag(cf, &cf->args[1], &sc->stapling);
}

static int zg_ssl_stapling_file(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    unsigned char *buf;
    (void)cmd;
    if (sc->stapling_file != NULL) {
        return zg_conf_duplicate(cf);
    }
    if ((sc->stapling_file = zg_conf_path(cf, &cf->args[1])) == NULL) {
        return zg_conf_nomem(cf);
    }
    BIO *b = BIO_new_file(sc->stapling_file, "rb");
    if (b == NULL) {
        ERR_clear_error();
        return zg_conf_error(cf, "cannot read \"%s\" of the \"ssl_stapling_file\" directive (%s)",
                             sc->stapling_file, strerror(errno));
    }
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE_bio(b, NULL);
    BIO_free(b);
    if (resp == NULL) {
        ERR_clear_error();
        return zg_conf_error(cf, "\"%s\" of the \"ssl_stapling_file\" directive is not a DER "
                             "OCSP response", sc->stapling_file);
    }
    int len = i2d_OCSP_RESPONSE(resp, NULL);
    buf = len > 0 ? zg_conf_alloc(cf->conf, (size_t)len) : NULL;
    if (buf == NULL) {
        OCSP_RESPONSE_free(resp);
        return zg_conf_nomem(cf);
    }
    unsigned char *w = buf;
    i2d_OCSP_RESPONSE(resp, &w);
    OCSP_RESPONSE_free(resp);
    sc->ocsp = buf;
    sc->ocsp_len = (size_t)len;
    return ZG_OK;
}

/* the client asked for the certificate status: the stapling file's response */
static int zg_ssl_status_cb(SSL *ssl, void *arg)
{
    zg_ssl_conf_t *sc = arg;
    if (sc == NULL || sc->ocsp == NULL) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    unsigned char *copy = OPENSSL_malloc(sc->ocsp_len);
    if (copy == NULL) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    memcpy(copy, sc->ocsp, sc->ocsp_len);
    SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)sc->ocsp_len);
    return SSL_TLSEXT_ERR_OK;
}

/* SNI: the server named picks its certificate (the Host header still picks the
 * server that answers, as nginx); an unknown name keeps the default server's */
static int zg_ssl_servername(SSL *ssl, int *ad, void *arg)
{
    zg_conn_t *c = SSL_get_app_data(ssl);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    zg_regex_caps_t caps;
    (void)arg;
    if (c == NULL) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    caps.n = 0;
    caps.re = NULL;
    zg_server_conf_t *srv = name ? zg_http_find_server(c->ls, name, strlen(name), &caps)
                                 : c->ls->default_server;
    zg_ssl_conf_t *sc = srv ? zg_conf_module(srv->loc_conf, zg_ssl_module) : NULL;
    if (sc != NULL && sc->reject_handshake == 1) {
        /* ssl_reject_handshake on: no certificate is shown for this name (or none) */
        *ad = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (name == NULL) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    if (sc != NULL && sc->ctx != NULL && sc->ctx != SSL_get_SSL_CTX(ssl)) {
        SSL_set_SSL_CTX(ssl, sc->ctx);
        /* what SSL_set_SSL_CTX does not carry over, as nginx: client certificate
         * checks, the options (protocols, cipher preference) */
        SSL_set_verify(ssl, SSL_CTX_get_verify_mode(sc->ctx),
                       SSL_CTX_get_verify_callback(sc->ctx));
        SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(sc->ctx));
        SSL_clear_options(ssl, SSL_get_options(ssl) & ~SSL_CTX_get_options(sc->ctx));
        SSL_set_options(ssl, SSL_CTX_get_options(sc->ctx));
    }
    return SSL_TLSEXT_ERR_OK;
}

/* the chain is checked by OpenSSL; the answer (400) is the request's, as nginx */
static int zg_ssl_verify_cb(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

static int zg_ssl_verify_client(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    static const char *names[] = { "off", "on", "optional", "optional_no_ca" };
    zg_ssl_conf_t *sc = conf;
    (void)cmd;
    if (sc->verify_client != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    for (int i = 0; i < 4; i++) {
        if (zg_conf_eq(&cf->args[1], names[i])) {
            sc->verify_client = i;
            return ZG_OK;
        }
    }
    return zg_conf_invalid(cf, &cf->args[1]);
}

static int zg_ssl_client_certificate(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    (void)cmd;
    if (sc->client_certificate != NULL) {
        return zg_conf_duplicate(cf);
    }
    if ((sc->client_certificate = zg_conf_path(cf, &cf->args[1])) == NULL) {
        return zg_conf_nomem(cf);
    }
    sc->cc_file = cf->file;
    sc->cc_line = cf->line;
    return ZG_OK;
}

/* ssl_conf_command NAME VALUE (OpenSSL's SSL_CONF_cmd), applied last, as nginx */
static int zg_ssl_conf_command(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    (void)cmd;
    if (sc->nconf_commands < 0) {
        sc->nconf_commands = 0;
        sc->cmd_file = cf->file;
        sc->cmd_line = cf->line;
    }
    for (int i = 1; i <= 2; i++) {
        char **v = zg_conf_push(cf->conf, sc->conf_commands, sc->nconf_commands);
        if (v == NULL
            || (*v = zg_conf_strdup(cf->conf, cf->args[i].data, cf->args[i].len)) == NULL) {
            return zg_conf_nomem(cf);
        }
    }
    return ZG_OK;
}

/* ssl_trusted_certificate FILE, ssl_crl FILE: read when the SSL_CTX is made */
static int zg_ssl_set_file(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_file_t *f = (zg_ssl_file_t *)((char *)conf + cmd->offset);
    if (f->path != NULL) {
        return zg_conf_duplicate(cf);
    }
    if ((f->path = zg_conf_path(cf, &cf->args[1])) == NULL) {
        return zg_conf_nomem(cf);
    }
    f->file = cf->file;
    f->line = cf->line;
    return ZG_OK;
}

static int zg_ssl_ca_error(long rc)
{
    return rc == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
           || rc == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
           || rc == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
           || rc == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
           || rc == X509_V_ERR_CERT_UNTRUSTED
           || rc == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
}

/* nginx's 400 pages for a client certificate that is bad or missing */
static int zg_ssl_reject(zg_request_t *r, const char *why)
{
    char body[512];
    int n = snprintf(body, sizeof(body),
                     "<html>\r\n<head><title>400 %s</title></head>\r\n<body>\r\n"
                     "<center><h1>400 Bad Request</h1></center>\r\n"
                     "<center>%s</center>\r\n<hr><center>zonegate</center>\r\n"
                     "</body>\r\n</html>\r\n", why, why);
    r->keepalive = 0;
    zg_request_respond(r, 400, NULL, "text/html", body, (size_t)n);
    return ZG_DONE;
}

/* ssl_verify_client: checked before any other phase handler, as nginx does when
 * the request is read */
static int zg_ssl_handler(zg_request_t *r)
{
    zg_ssl_conf_t *sc = zg_conf_module(r->loc_conf, zg_ssl_module);
    if (r->c->tls == NULL || sc->verify_client <= ZG_SSL_VERIFY_OFF) {
        return ZG_DECLINED;
    }
    SSL *ssl = zg_tls_ssl(r->c->tls);
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (cert == NULL) {
        if (sc->verify_client == ZG_SSL_VERIFY_ON) {
            zg_log_error(ZG_LOG_INFO, 0, "client sent no required SSL certificate while "
                         "reading client request headers, client: %s",
                         zg_conn_addr_text(r->c));
            return zg_ssl_reject(r, "No required SSL certificate was sent");
        }
        return ZG_DECLINED;
    }
    X509_free(cert);
    long rc = SSL_get_verify_result(ssl);
    if (rc != X509_V_OK
        && (sc->verify_client != ZG_SSL_VERIFY_OPTIONAL_NO_CA || !zg_ssl_ca_error(rc))) {
        zg_log_error(ZG_LOG_INFO, 0, "client SSL certificate verify error: (%ld:%s) while "
                     "reading client request headers, client: %s", rc,
                     X509_verify_cert_error_string(rc), zg_conn_addr_text(r->c));
        return zg_ssl_reject(r, "The SSL certificate error");
    }
    return ZG_DECLINED;
}

/* the client certificate check costs plain requests nothing unless a server of this
 * worker's configuration asks for certificates (the request core reads the handler
 * when it builds its phase list, at the first request of the worker) */
static int zg_ssl_init_worker(zg_worker_t *w)
{
    zg_ssl_main_conf_t *smcf = zg_main_conf_of(w->conf, zg_ssl_module);
    zg_ssl_module.handler = smcf != NULL && smcf->verify ? zg_ssl_handler : NULL;
    return ZG_OK;
}

typedef struct {
    const char *file;
    int line;
} zg_ssl_where_t;

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

/* ssl_buffer_size SIZE: 512 to 16k (the TLS record's payload limits) */
static int zg_ssl_buffer_size(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    (void)cmd;
    if (sc->buffer_size != ZG_UNSET_SIZE) {
        return zg_conf_duplicate(cf);
    }
    sc->buffer_size = zg_conf_parse_size(cf->args[1].data, cf->args[1].len);
    if (sc->buffer_size < 512 || sc->buffer_size > 16384) {
        return zg_conf_error(cf, "invalid value \"%s\" of \"ssl_buffer_size\": 512 to 16k",
                             cf->args[1].data);
    }
    return ZG_OK;
}

/* stream ssl_alpn PROTO...: the first of the server's list the client offers; none
 * offered in common is a fatal alert, as nginx */
static int zg_ssl_alpn_set(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_ssl_conf_t *sc = conf;
    size_t len = 0;
    (void)cmd;
    if (sc->alpn != NULL) {
        return zg_conf_duplicate(cf);
    }
    for (int i = 1; i < cf->nargs; i++) {
        if (cf->args[i].len == 0 || cf->args[i].len > 255) {
            return zg_conf_invalid(cf, &cf->args[i]);
        }
        len += 1 + cf->args[i].len;
    }
    if ((sc->alpn = zg_conf_alloc(cf->conf, len)) == NULL) {
        return zg_conf_nomem(cf);
    }
    for (int i = 1; i < cf->nargs; i++) {
        sc->alpn[sc->alpn_len++] = (unsigned char)cf->args[i].len;
        memcpy(sc->alpn + sc->alpn_len, cf->args[i].data, cf->args[i].len);
        sc->alpn_len += cf->args[i].len;
    }
    return ZG_OK;
}

static int zg_ssl_stream_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                              const unsigned char *in, unsigned int inlen, void *arg)
{
    zg_ssl_conf_t *sc = arg;
    (void)ssl;
    if (SSL_select_next_proto((unsigned char **)out, outlen, sc->alpn,
                              (unsigned int)sc->alpn_len, in, inlen)
        != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* the SSL_CTX of a server with certificates (http: with SNI and ALPN); NULL after
 * the error */
static SSL_CTX *zg_ssl_ctx_new(zg_cf_t *cf, const zg_ssl_where_t *srv, zg_ssl_conf_t *sc,
                               int http)
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
    if (sc->buffer_size != ZG_UNSET_SIZE) {
        /* ssl_buffer_size: nginx writes records of at most its buffer's size */
        SSL_CTX_set_max_send_fragment(ctx, (long)sc->buffer_size);
    }
    SSL_CTX_set_read_ahead(ctx, 1);
    const char *ciphers = sc->ciphers ? sc->ciphers : "HIGH:!aNULL:!MD5";
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        zg_conf_error_at(cf, srv->file, srv->line,
                         "SSL_CTX_set_cipher_list(\"%s\") failed%s", ciphers,
                         zg_ssl_reason(why, sizeof(why)));
        goto err;
    }
    if (sc->ecdh_curve != NULL && strcmp(sc->ecdh_curve, "auto") != 0
        && SSL_CTX_set1_groups_list(ctx, sc->ecdh_curve) != 1) {
        zg_conf_error_at(cf, srv->file, srv->line,
                         "SSL_CTX_set1_curves_list(\"%s\") failed%s", sc->ecdh_curve,
                         zg_ssl_reason(why, sizeof(why)));
        goto err;
    }
    if (sc->dhparam != NULL) {
        BIO *b = BIO_new_file(sc->dhparam, "r");
        EVP_PKEY *dh = b ? PEM_read_bio_Parameters(b, NULL) : NULL;
        BIO_free(b);
        if (dh == NULL || EVP_PKEY_get_base_id(dh) != EVP_PKEY_DH
            || SSL_CTX_set0_tmp_dh_pkey(ctx, dh) != 1) {
            EVP_PKEY_free(dh);
            zg_conf_error_at(cf, sc->dh_file, sc->dh_line,
                             "cannot load DH parameters \"%s\" of the \"ssl_dhparam\" "
                             "directive%s", sc->dhparam, zg_ssl_reason(why, sizeof(why)));
            goto err;
        }
    }
    SSL_CTX_set_timeout(ctx, (long)((sc->session_timeout == ZG_UNSET_MSEC
                                         ? 300000 : sc->session_timeout) / 1000));
    /* sessions: the shared cache (a zone every worker sees) and/or OpenSSL's own
     * per-process one; tickets, whose keys the workers inherit from this context */
    static const unsigned char sid_ctx[] = "zonegate";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (sc->cache_zone != NULL) {
        long mode = SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_AUTO_CLEAR;
        if (sc->cache_builtin <= 0) {
            mode |= SSL_SESS_CACHE_NO_INTERNAL;
        } else {
            SSL_CTX_sess_set_cache_size(ctx, sc->cache_builtin);
        }
        SSL_CTX_set_session_cache_mode(ctx, mode);
        SSL_CTX_set_ex_data(ctx, zg_ssl_ctx_zone_index, sc->cache_zone);
        SSL_CTX_sess_set_new_cb(ctx, zg_ssl_new_session);
        SSL_CTX_sess_set_get_cb(ctx, zg_ssl_get_session);
        SSL_CTX_sess_set_remove_cb(ctx, zg_ssl_remove_session);
    } else if (sc->cache_builtin > 0) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, sc->cache_builtin);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (sc->ticket_rotate != ZG_UNSET_MSEC && (sc->session_tickets == 0 || sc->ticket_keys)) {
        zg_log_error(ZG_LOG_WARN, 0,
                     "\"ssl_session_ticket_rotate\" has no effect %s in %s:%d",
                     sc->session_tickets == 0 ? "with \"ssl_session_tickets off\""
                                              : "on \"ssl_session_ticket_key\" files",
                     sc->rotate_file, sc->rotate_line);
    }
    if (sc->session_tickets == 0) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    } else {
        /* the keys of ssl_session_ticket_key, else of the shared zone: the same in
         * every worker and kept over reloads */
        if (sc->ticket_keys != NULL) {
            SSL_CTX_set_ex_data(ctx, zg_ssl_ctx_keys_index, sc->ticket_keys);
        } else {
            char zerr[256];
            zg_zone_t *kz = zg_zone_declare(&cf->conf->zones, ZG_SSL_TICKET_ZONE,
                                            &zg_ssl_ticket_zone_kind, ZG_SSL_TICKET_ZONE_SIZE,
                                            zerr, sizeof(zerr));
            if (kz == NULL) {
                zg_conf_error_at(cf, srv->file, srv->line, "%s", zerr);
                goto err;
            }
            SSL_CTX_set_ex_data(ctx, zg_ssl_ctx_kzone_index, kz);
            zg_ssl_main_conf_t *smcf = zg_main_conf_of(cf->conf, zg_ssl_module);
            smcf->ticket_zone = kz;
            if (sc->ticket_rotate != ZG_UNSET_MSEC && sc->ticket_rotate > 0
                && (smcf->rotate == 0 || sc->ticket_rotate < smcf->rotate)) {
                smcf->rotate = sc->ticket_rotate;
            }
        }
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, zg_ssl_ticket_cb);
    }
    if (http) {
        SSL_CTX_set_tlsext_servername_callback(ctx, zg_ssl_servername);
        SSL_CTX_set_alpn_select_cb(ctx, zg_ssl_alpn, NULL);
    } else if (sc->alpn != NULL) {
        SSL_CTX_set_alpn_select_cb(ctx, zg_ssl_stream_alpn, sc);
    }

    if (sc->stapling == 1) {
        if (sc->ocsp != NULL) {
            SSL_CTX_set_tlsext_status_cb(ctx, zg_ssl_status_cb);
            SSL_CTX_set_tlsext_status_arg(ctx, sc);
        } else {
            zg_log_error(ZG_LOG_WARN, 0,
                         "\"ssl_stapling\" is on but no \"ssl_stapling_file\" is given: "
                         "zonegate queries no OCSP responder, nothing is stapled in %s:%d",
                         sc->stapling_at, sc->stapling_line);
        }
        if (sc->stapling_verify == 1) {
            zg_log_error(ZG_LOG_WARN, 0,
                         "\"ssl_stapling_verify\" is accepted but the stapling file's "
                         "response is stapled as it is, not verified, in %s:%d",
                         sc->stapling_at, sc->stapling_line);
        }
    }
    if (sc->verify_client > ZG_SSL_VERIFY_OFF) {
        if (sc->client_certificate == NULL && sc->trusted.path == NULL
            && sc->verify_client != ZG_SSL_VERIFY_OPTIONAL_NO_CA) {
            zg_conf_error_at(cf, srv->file, srv->line,
                             "no ssl_client_certificate for ssl_verify_client");
            goto err;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, zg_ssl_verify_cb);
        SSL_CTX_set_verify_depth(ctx, sc->verify_depth == ZG_UNSET ? 1 : sc->verify_depth);
    }
    if (sc->client_certificate != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(sc->client_certificate);
        if (SSL_CTX_load_verify_locations(ctx, sc->client_certificate, NULL) != 1
            || names == NULL) {
            if (names != NULL) {
                sk_X509_NAME_pop_free(names, X509_NAME_free);
            }
            zg_conf_error_at(cf, sc->cc_file, sc->cc_line,
                             "cannot load client certificates \"%s\" of the "
                             "\"ssl_client_certificate\" directive%s",
                             sc->client_certificate, zg_ssl_reason(why, sizeof(why)));
            goto err;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    if (sc->trusted.path != NULL
        && SSL_CTX_load_verify_locations(ctx, sc->trusted.path, NULL) != 1) {
        zg_conf_error_at(cf, sc->trusted.file, sc->trusted.line,
                         "cannot load trusted certificates \"%s\" of the "
                         "\"ssl_trusted_certificate\" directive%s", sc->trusted.path,
                         zg_ssl_reason(why, sizeof(why)));
        goto err;
    }
    if (sc->crl.path != NULL) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP *lookup = store ? X509_STORE_add_lookup(store, X509_LOOKUP_file()) : NULL;
        if (lookup == NULL
            || X509_load_crl_file(lookup, sc->crl.path, X509_FILETYPE_PEM) <= 0) {
            zg_conf_error_at(cf, sc->crl.file, sc->crl.line,
                             "cannot load CRL \"%s\" of the \"ssl_crl\" directive%s",
                             sc->crl.path, zg_ssl_reason(why, sizeof(why)));
            goto err;
        }
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
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
        EVP_PKEY *pkey = zg_ssl_load_key(sc->keys[i], sc->passwords, sc->npasswords);
        int used = pkey != NULL && SSL_CTX_use_PrivateKey(ctx, pkey) == 1;
        EVP_PKEY_free(pkey);
        if (!used) {
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
    if (sc->nconf_commands > 0) {
        SSL_CONF_CTX *cctx = SSL_CONF_CTX_new();
        if (cctx == NULL) {
            zg_conf_error_at(cf, srv->file, srv->line, "SSL_CONF_CTX_new() failed");
            goto err;
        }
        SSL_CONF_CTX_set_flags(cctx, SSL_CONF_FLAG_FILE | SSL_CONF_FLAG_SERVER
                                         | SSL_CONF_FLAG_CERTIFICATE
                                         | SSL_CONF_FLAG_SHOW_ERRORS);
        SSL_CONF_CTX_set_ssl_ctx(cctx, ctx);
        for (int i = 0; i + 1 < sc->nconf_commands; i += 2) {
            if (SSL_CONF_cmd(cctx, sc->conf_commands[i], sc->conf_commands[i + 1]) <= 0) {
                zg_conf_error_at(cf, sc->cmd_file, sc->cmd_line,
                                 "SSL_CONF_cmd(\"%s\", \"%s\") failed%s",
                                 sc->conf_commands[i], sc->conf_commands[i + 1],
                                 zg_ssl_reason(why, sizeof(why)));
                SSL_CONF_CTX_free(cctx);
                goto err;
            }
        }
        int fin = SSL_CONF_CTX_finish(cctx);
        SSL_CONF_CTX_free(cctx);
        if (fin != 1) {
            zg_conf_error_at(cf, sc->cmd_file, sc->cmd_line, "SSL_CONF_CTX_finish() failed%s",
                             zg_ssl_reason(why, sizeof(why)));
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

/* the stream servers with certificates get their SSL_CTX (no SNI: a stream server
 * has one), their `listen ... ssl` addresses take it */
static int zg_ssl_init_stream(zg_cf_t *cf)
{
    zg_stream_core_main_conf_t *scf = zg_stream_core_main_conf(cf->conf);

    if (scf == NULL) {
        return ZG_OK;
    }
    for (int i = 0; i < scf->nservers; i++) {
        zg_stream_server_t *srv = scf->servers[i];
        zg_ssl_conf_t *sc = zg_conf_module(srv->conf, zg_ssl_module);
        zg_ssl_where_t at = { srv->file, srv->line };
        if (sc->npairs == 0 && sc->nkeys == 0) {
            continue;
        }
        if ((sc->ctx = zg_ssl_ctx_new(cf, &at, sc, 0)) == NULL) {
            return ZG_ERROR;
        }
        if (zg_conf_keep(cf->conf, sc->ctx, zg_ssl_ctx_free) != ZG_OK) {
            SSL_CTX_free(sc->ctx);
            sc->ctx = NULL;
            return zg_conf_nomem(cf);
        }
    }
    for (int j = 0; j < scf->nlistens; j++) {
        zg_stream_listen_t *ls = &scf->listens[j];
        if (!ls->ssl) {
            continue;
        }
        zg_ssl_conf_t *sc = zg_conf_module(ls->server->conf, zg_ssl_module);
        if (sc->ctx == NULL) {
            return zg_conf_error_at(cf, ls->file, ls->line,
                                    "no \"ssl_certificate\" is defined for the \"listen "
                                    "... ssl\" directive");
        }
        ls->ssl_ctx = sc->ctx;
    }
    return ZG_OK;
}

void zg_ssl_stream_conf(void **srv_conf, zg_msec_t *timeout, int *verify)
{
    zg_ssl_conf_t *sc = zg_conf_module(srv_conf, zg_ssl_module);

    *timeout = sc->handshake_timeout == ZG_UNSET_MSEC ? 60000 : sc->handshake_timeout;
    *verify = sc->verify_client == ZG_UNSET ? ZG_SSL_VERIFY_OFF : sc->verify_client;
}

/* as nginx's ngx_stream_ssl_handler */
const char *zg_ssl_verify_fails(void *ssl, int verify, char *buf, size_t len)
{
    if (verify <= ZG_SSL_VERIFY_OFF) {
        return NULL;
    }
    long rc = SSL_get_verify_result(ssl);
    if (rc != X509_V_OK && (verify != ZG_SSL_VERIFY_OPTIONAL_NO_CA || !zg_ssl_ca_error(rc))) {
        snprintf(buf, len, "client SSL certificate verify error: (%ld:%s)", rc,
                 X509_verify_cert_error_string(rc));
        return buf;
    }
    if (verify == ZG_SSL_VERIFY_ON) {
        X509 *cert = SSL_get1_peer_certificate(ssl);
        if (cert == NULL) {
            return "client sent no required SSL certificate";
        }
        X509_free(cert);
    }
    return NULL;
}

static int zg_ssl_init_main_conf(zg_cf_t *cf, void *conf)
{
    zg_ssl_main_conf_t *smcf = conf;
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(cf->conf);

    if (zg_ssl_ctx_zone_index == -1) {
        zg_ssl_ctx_zone_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
        zg_ssl_ctx_keys_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
        zg_ssl_ctx_kzone_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    }

    for (int i = 0; i < cmcf->nservers; i++) {
        zg_server_conf_t *srv = &cmcf->servers[i];
        zg_ssl_conf_t *sc = zg_conf_module(srv->loc_conf, zg_ssl_module);
        zg_ssl_where_t at = { srv->file, srv->line };
        if (sc->npairs == 0 && sc->nkeys == 0 && sc->reject_handshake != 1) {
            continue;
        }
        if ((sc->ctx = zg_ssl_ctx_new(cf, &at, sc, 1)) == NULL) {
            return ZG_ERROR;
        }
        if (sc->verify_client > ZG_SSL_VERIFY_OFF) {
            smcf->verify = 1;
        }
        if (zg_conf_keep(cf->conf, sc->ctx, zg_ssl_ctx_free) != ZG_OK) {
            SSL_CTX_free(sc->ctx);
            sc->ctx = NULL;
            return zg_conf_nomem(cf);
        }
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
    if (zg_ssl_init_stream(cf) != ZG_OK) {
        return ZG_ERROR;
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

#define ZG_SSL_HTTP_CTX (ZG_CTX_HTTP | ZG_CTX_SRV)
#define ZG_SSL_CTX (ZG_CTX_HTTP | ZG_CTX_SRV | ZG_CTX_STREAM_SETTINGS)

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
    { "ssl_session_cache", ZG_SSL_CTX, 0, 1, 2, zg_ssl_session_cache, ZG_LOC_CONF, 0, NULL },
    { "ssl_session_tickets", ZG_SSL_CTX, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      offsetof(zg_ssl_conf_t, session_tickets), NULL },
    { "ssl_client_certificate", ZG_SSL_CTX, 0, 1, 1, zg_ssl_client_certificate, ZG_LOC_CONF,
      0, NULL },
    { "ssl_conf_command", ZG_SSL_CTX, 0, 2, 2, zg_ssl_conf_command, ZG_LOC_CONF, 0, NULL },
    { "ssl_trusted_certificate", ZG_SSL_CTX, 0, 1, 1, zg_ssl_set_file, ZG_LOC_CONF,
      offsetof(zg_ssl_conf_t, trusted), NULL },
    { "ssl_crl", ZG_SSL_CTX, 0, 1, 1, zg_ssl_set_file, ZG_LOC_CONF,
      offsetof(zg_ssl_conf_t, crl), NULL },
    { "ssl_verify_client", ZG_SSL_CTX, 0, 1, 1, zg_ssl_verify_client, ZG_LOC_CONF, 0, NULL },
    { "ssl_verify_depth", ZG_SSL_CTX, 0, 1, 1, zg_conf_set_count, ZG_LOC_CONF,
      offsetof(zg_ssl_conf_t, verify_depth), NULL },
    { "ssl_session_ticket_key", ZG_SSL_CTX, 0, 1, 1, zg_ssl_ticket_key, ZG_LOC_CONF, 0,
      NULL },
    { "ssl_stapling", ZG_SSL_HTTP_CTX, 0, 1, 1, zg_ssl_stapling, ZG_LOC_CONF, 0, NULL },
    { "ssl_stapling_file", ZG_SSL_HTTP_CTX, 0, 1, 1, zg_ssl_stapling_file, ZG_LOC_CONF, 0, NULL },
    { "ssl_stapling_verify", ZG_SSL_HTTP_CTX, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      offsetof(zg_ssl_conf_t, stapling_verify), NULL },
    { "ssl_ecdh_curve", ZG_SSL_CTX, 0, 1, 1, zg_ssl_ecdh_curve, ZG_LOC_CONF, 0, NULL },
    { "ssl_dhparam", ZG_SSL_CTX, 0, 1, 1, zg_ssl_dhparam, ZG_LOC_CONF, 0, NULL },
    { "ssl_password_file", ZG_SSL_CTX, 0, 1, 1, zg_ssl_password_file, ZG_LOC_CONF, 0, NULL },
    { "ssl_session_ticket_rotate", ZG_SSL_CTX, 0, 1, 1, zg_ssl_ticket_rotate, ZG_LOC_CONF, 0,
      NULL },
    { "ssl_buffer_size", ZG_SSL_HTTP_CTX, 0, 1, 1, zg_ssl_buffer_size, ZG_LOC_CONF, 0, NULL },
    { "ssl_alpn", ZG_CTX_STREAM_SETTINGS, 0, 1, -1, zg_ssl_alpn_set, ZG_LOC_CONF, 0, NULL },
    { "ssl_handshake_timeout", ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      offsetof(zg_ssl_conf_t, handshake_timeout), NULL },
    { "ssl_reject_handshake", ZG_SSL_HTTP_CTX, 0, 1, 1, zg_conf_set_flag, ZG_LOC_CONF,
      offsetof(zg_ssl_conf_t, reject_handshake), NULL },
    { "http2", ZG_SSL_HTTP_CTX, 0, 1, 1, zg_ssl_http2, ZG_LOC_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_ssl_module = {
    .name = "ssl",
    .commands = zg_ssl_commands,
    .create_main_conf = zg_ssl_create_main_conf,
    .init_main_conf = zg_ssl_init_main_conf,
    .create_loc_conf = zg_ssl_create_loc_conf,
    .merge_loc_conf = zg_ssl_merge_loc_conf,
    .metrics = zg_ssl_metrics,
    .tick = zg_ssl_tick,
    .init_worker = zg_ssl_init_worker,
    .phase = ZG_PHASE_REWRITE,
    .handler = zg_ssl_handler,      /* or NULL: zg_ssl_init_worker */
    .stream_phase = ZG_STREAM_PHASE_SSL,
    .stream_handler = zg_ssl_stream_handler, /* zg_ssl_stream.c */
    .stream_release = zg_ssl_stream_release,
};
