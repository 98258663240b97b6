/* zg_auth_basic.c — HTTP Basic authentication against an htpasswd file read at
 * config load (see zg_auth_basic.h for how this differs from nginx). */
#include "zg_auth_basic.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "zg_conf.h"
#include "zg_log.h"
#include "zg_request.h"

#define ZG_AUTH_BASIC_MAX_FILE (16 * 1024 * 1024)
#define ZG_AUTH_CACHE_SIZE 64 /* verified triples remembered per worker */

int zg_auth_basic_cache_on = 1;

/* the cache's key is drawn when a user file is read (in the master, before fork):
 * a sandboxed worker makes no getrandom(2) call; without a key there is no cache */
static unsigned char zg_auth_cache_key[32];
static int zg_auth_cache_ready;
static unsigned char zg_auth_cache[ZG_AUTH_CACHE_SIZE][32];

/* ------------------------------------------------------------ user file */

static int zg_auth_basic_cmp(const void *a, const void *b)
{
    const zg_auth_basic_user_t *x = a, *y = b;
    size_t n = zg_min(x->user_len, y->user_len);
    int c = memcmp(x->user, y->user, n);

    if (c != 0) {
        return c;
    }
    if (x->user_len != y->user_len) {
        return x->user_len < y->user_len ? -1 : 1;
    }
    return x->line - y->line;
}

static int zg_auth_basic_known(const char *hash)
{
    if (strncmp(hash, "{PLAIN}", 7) == 0 || strncmp(hash, "{SHA}", 5) == 0
        || strncmp(hash, "{SSHA}", 6) == 0 || strncmp(hash, "$apr1$", 6) == 0) {
        return 1;
    }
    /* the prefixes crypt(3) knows (not a trial hash: bcrypt would slow the load) */
    return crypt_checksalt(hash) != CRYPT_SALT_INVALID;
}

zg_auth_basic_file_t *zg_auth_basic_file_parse(zg_conf_t *conf, const char *path,
                                               const char *text, size_t len, char *err,
                                               size_t errlen)
{
    zg_auth_basic_file_t *f;
    const char *p = text, *end = text + len, *eol, *colon, *h;
    int line = 0, n = 0, cap = 0, k;

    if (!zg_auth_cache_ready
        && getrandom(zg_auth_cache_key, sizeof(zg_auth_cache_key), GRND_NONBLOCK)
               == (ssize_t)sizeof(zg_auth_cache_key)) {
        zg_auth_cache_ready = 1;
    }
    f = zg_conf_alloc(conf, sizeof(*f));
    if (f == NULL || (f->path = zg_conf_strdup(conf, path, strlen(path))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* as nginx reads it: "user:hash" with the hash ending at CR, LF or ':';
     * a line starting with '#' or CR is skipped, and so is one without ':' */
    for (; p < end; p = eol + 1) {
        line++;
        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL) {
            eol = end;
        }
        if (p == eol || *p == '#' || *p == '\r') {
            continue;
        }
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL) {
            zg_log(ZG_LOG_WARN, "no ':' in line %d of \"%s\": ignored", line, path);
            continue;
        }
        for (h = colon + 1; h < eol && *h != '\r' && *h != ':'; h++) {
        }
        if (n == cap) {
            zg_auth_basic_user_t *nu;
            cap = cap ? cap * 2 : 16;
            nu = zg_conf_alloc(conf, (size_t)cap * sizeof(*nu));
            if (nu == NULL) {
                snprintf(err, errlen, "out of memory");
                return NULL;
            }
            if (n) {
                memcpy(nu, f->users, (size_t)n * sizeof(*nu));
            }
            f->users = nu;
        }
        zg_auth_basic_user_t *u = &f->users[n++];
        u->user_len = (size_t)(colon - p);
        u->hash_len = (size_t)(h - colon - 1);
        u->user = zg_conf_strdup(conf, p, u->user_len);
        u->hash = zg_conf_strdup(conf, colon + 1, u->hash_len);
        u->line = line;
        if (u->user == NULL || u->hash == NULL) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        if (!zg_auth_basic_known(u->hash)) {
            zg_log(ZG_LOG_ERR,
                   "user \"%s\" in line %d of \"%s\" has a password hash of an unknown "
                   "scheme: the user cannot log in",
                   u->user, line, path);
        }
    }
    if (n > 1) {
        qsort(f->users, (size_t)n, sizeof(*f->users), zg_auth_basic_cmp);
        /* the first line of a name wins, as nginx reads the file top down */
        k = 1;
        for (int i = 1; i < n; i++) {
            zg_auth_basic_user_t *prev = &f->users[k - 1], *cur = &f->users[i];
            if (cur->user_len == prev->user_len
                && memcmp(cur->user, prev->user, cur->user_len) == 0) {
                continue;
            }
            f->users[k++] = *cur;
        }
        n = k;
    }
    f->nusers = n;
    return f;
}

zg_auth_basic_file_t *zg_auth_basic_file_load(zg_conf_t *conf, zg_auth_basic_file_t **list,
                                              const char *path, char *err, size_t errlen)
{
    zg_auth_basic_file_t *f;
    struct stat st;
    char *text;
    size_t got = 0;
    ssize_t r;
    int fd;

    for (f = *list; f != NULL; f = f->next) {
        if (strcmp(f->path, path) == 0) {
            return f;
        }
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "open() \"%s\" failed (%d: %s)", path, errno, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > ZG_AUTH_BASIC_MAX_FILE) {
        snprintf(err, errlen, "\"%s\" is not a regular file of at most 16m", path);
        close(fd);
        return NULL;
    }
    text = malloc((size_t)st.st_size + 1);
    if (text == NULL) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return NULL;
    }
    while (got < (size_t)st.st_size) {
        r = read(fd, text + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            snprintf(err, errlen, "read() \"%s\" failed (%d: %s)", path, errno,
                     strerror(errno));
            free(text);
            close(fd);
            return NULL;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    f = zg_auth_basic_file_parse(conf, path, text, got, err, errlen);
    /* the file held passwords' hashes: do not leave them in freed heap */
    OPENSSL_cleanse(text, got);
    free(text);
    if (f != NULL) {
        f->next = *list;
        *list = f;
    }
    return f;
}

const zg_auth_basic_user_t *zg_auth_basic_find(const zg_auth_basic_file_t *f, const char *user,
                                               size_t len)
{
    int lo = 0, hi = f->nusers - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const zg_auth_basic_user_t *u = &f->users[mid];
        size_t n = zg_min(u->user_len, len);
        int c = memcmp(user, u->user, n);
        if (c == 0 && u->user_len != len) {
            c = len < u->user_len ? -1 : 1;
        }
        if (c == 0) {
            return u;
        }
        if (c < 0) {
            hi = mid - 1;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

void zg_auth_basic_merge(zg_auth_basic_conf_t *conf, const zg_auth_basic_conf_t *prev)
{
    if (conf->realm == NULL) {
        conf->realm = prev->realm;
    }
    if (conf->file == NULL) {
        conf->file = prev->file;
    }
}

/* ---------------------------------------------------------------- hashes */

static const char zg_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t zg_auth_b64_encode(char *dst, const unsigned char *src, size_t n)
{
    char *d = dst;
    size_t i;

    for (i = 0; i + 2 < n; i += 3) {
        *d++ = zg_b64[src[i] >> 2];
        *d++ = zg_b64[(src[i] & 3) << 4 | src[i + 1] >> 4];
        *d++ = zg_b64[(src[i + 1] & 15) << 2 | src[i + 2] >> 6];
        *d++ = zg_b64[src[i + 2] & 63];
    }
    if (n - i == 1) {
        *d++ = zg_b64[src[i] >> 2];
        *d++ = zg_b64[(src[i] & 3) << 4];
        *d++ = '=';
        *d++ = '=';
    } else if (n - i == 2) {
        *d++ = zg_b64[src[i] >> 2];
        *d++ = zg_b64[(src[i] & 3) << 4 | src[i + 1] >> 4];
        *d++ = zg_b64[(src[i + 1] & 15) << 2];
        *d++ = '=';
    }
    return (size_t)(d - dst);
}

/* -1 on a byte outside the alphabet; stops at '=' */
static long zg_auth_b64_decode(unsigned char *dst, const char *src, size_t n)
{
    uint32_t acc = 0;
    size_t i, k, out = 0;

    for (k = 0; k < n && src[k] != '='; k++) {
        if (strchr(zg_b64, src[k]) == NULL || src[k] == '\0') {
            return -1;
        }
    }
    if (k % 4 == 1) {
        return -1;
    }
    for (i = 0; i < k; i++) {
        acc = acc << 6 | (uint32_t)(strchr(zg_b64, src[i]) - zg_b64);
        if (i % 4 == 3) {
            dst[out++] = (unsigned char)(acc >> 16);
            dst[out++] = (unsigned char)(acc >> 8);
            dst[out++] = (unsigned char)acc;
            acc = 0;
        }
    }
    if (k % 4 == 2) {
        dst[out++] = (unsigned char)(acc >> 4);
    } else if (k % 4 == 3) {
        dst[out++] = (unsigned char)(acc >> 10);
        dst[out++] = (unsigned char)(acc >> 2);
    }
    return (long)out;
}

static int zg_auth_digest(const EVP_MD *md, const void *a, size_t alen, const void *b,
                          size_t blen, unsigned char *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, md, NULL) == 1
             && EVP_DigestUpdate(ctx, a, alen) == 1
             && (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1)
             && EVP_DigestFinal_ex(ctx, out, NULL) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? ZG_OK : ZG_ERROR;
}

/* equal lengths and bytes, in time that depends on the lengths only */
static int zg_auth_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

static void zg_auth_to64(char **p, unsigned long v, int n)
{
    static const char itoa64[] =
        "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    while (n-- > 0) {
        *(*p)++ = itoa64[v & 0x3f];
        v >>= 6;
    }
}

/* MD5-crypt with the "$apr1$" magic (Apache's variant; libxcrypt has only "$1$").
 * setting is "$apr1$SALT[$...]"; out gets "$apr1$SALT$HASH" (at least 40 bytes). */
static int zg_auth_apr1(const char *pw, size_t pwlen, const char *setting, char *out)
{
    static const char magic[] = "$apr1$";
    const size_t mlen = sizeof(magic) - 1;
    const char *salt = setting + mlen, *e;
    unsigned char fin[16];
    EVP_MD_CTX *ctx = NULL, *alt = NULL;
    size_t slen, i;
    int rc = ZG_ERROR;
    char *p;

    for (e = salt; *e && *e != '$' && e < salt + 8; e++) {
    }
    slen = (size_t)(e - salt);
    ctx = EVP_MD_CTX_new();
    alt = EVP_MD_CTX_new();
    if (ctx == NULL || alt == NULL) {
        goto done;
    }
    if (!EVP_DigestInit_ex(alt, EVP_md5(), NULL) || !EVP_DigestUpdate(alt, pw, pwlen)
        || !EVP_DigestUpdate(alt, salt, slen) || !EVP_DigestUpdate(alt, pw, pwlen)
        || !EVP_DigestFinal_ex(alt, fin, NULL)) {
        goto done;
    }
    if (!EVP_DigestInit_ex(ctx, EVP_md5(), NULL) || !EVP_DigestUpdate(ctx, pw, pwlen)
        || !EVP_DigestUpdate(ctx, magic, mlen) || !EVP_DigestUpdate(ctx, salt, slen)) {
        goto done;
    }
    for (i = pwlen; i > 0; i -= zg_min(i, 16)) {
        EVP_DigestUpdate(ctx, fin, zg_min(i, 16));
    }
    memset(fin, 0, sizeof(fin));
    for (i = pwlen; i; i >>= 1) {
        EVP_DigestUpdate(ctx, (i & 1) ? (const void *)fin : (const void *)pw, 1);
    }
    if (!EVP_DigestFinal_ex(ctx, fin, NULL)) {
        goto done;
    }
    for (i = 0; i < 1000; i++) {
        if (!EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
            goto done;
        }
        if (i & 1) {
            EVP_DigestUpdate(ctx, pw, pwlen);
        } else {
            EVP_DigestUpdate(ctx, fin, 16);
        }
        if (i % 3) {
            EVP_DigestUpdate(ctx, salt, slen);
        }
        if (i % 7) {
            EVP_DigestUpdate(ctx, pw, pwlen);
        }
        if (i & 1) {
            EVP_DigestUpdate(ctx, fin, 16);
        } else {
            EVP_DigestUpdate(ctx, pw, pwlen);
        }
        if (!EVP_DigestFinal_ex(ctx, fin, NULL)) {
            goto done;
        }
    }
    p = out;
    memcpy(p, magic, mlen);
    p += mlen;
    memcpy(p, salt, slen);
    p += slen;
    *p++ = '$';
    zg_auth_to64(&p, (unsigned long)fin[0] << 16 | (unsigned long)fin[6] << 8 | fin[12], 4);
    zg_auth_to64(&p, (unsigned long)fin[1] << 16 | (unsigned long)fin[7] << 8 | fin[13], 4);
    zg_auth_to64(&p, (unsigned long)fin[2] << 16 | (unsigned long)fin[8] << 8 | fin[14], 4);
    zg_auth_to64(&p, (unsigned long)fin[3] << 16 | (unsigned long)fin[9] << 8 | fin[15], 4);
    zg_auth_to64(&p, (unsigned long)fin[4] << 16 | (unsigned long)fin[10] << 8 | fin[5], 4);
    zg_auth_to64(&p, fin[11], 2);
    *p = '\0';
    rc = ZG_OK;
done:
    OPENSSL_cleanse(fin, sizeof(fin));
    EVP_MD_CTX_free(ctx);
    EVP_MD_CTX_free(alt);
    return rc;
}

int zg_auth_basic_verify(const char *pw, size_t pwlen, const char *hash)
{
    size_t hlen = strlen(hash);
    unsigned char md[EVP_MAX_MD_SIZE], raw[256];
    char enc[64];
    int rc;

    if (strncmp(hash, "{PLAIN}", 7) == 0) {
        return zg_auth_eq(pw, pwlen, hash + 7, hlen - 7) ? ZG_OK : ZG_DECLINED;
    }
    if (strncmp(hash, "{SHA}", 5) == 0) {
        /* "{SHA}" base64(sha1(password)), compared as text as nginx does */
        if (zg_auth_digest(EVP_sha1(), pw, pwlen, NULL, 0, md) != ZG_OK) {
            return ZG_ERROR;
        }
        size_t n = zg_auth_b64_encode(enc, md, 20);
        return zg_auth_eq(enc, n, hash + 5, hlen - 5) ? ZG_OK : ZG_DECLINED;
    }
    if (strncmp(hash, "{SSHA}", 6) == 0) {
        /* base64(sha1(password salt) salt) */
        long n = hlen - 6 <= sizeof(raw) / 3 * 4 ? zg_auth_b64_decode(raw, hash + 6, hlen - 6)
                                                 : -1;
        if (n < 20) {
            return ZG_DECLINED;
        }
        if (zg_auth_digest(EVP_sha1(), pw, pwlen, raw + 20, (size_t)n - 20, md) != ZG_OK) {
            return ZG_ERROR;
        }
        return CRYPTO_memcmp(md, raw, 20) == 0 ? ZG_OK : ZG_DECLINED;
    }
    if (strncmp(hash, "$apr1$", 6) == 0) {
        char out[64];
        if (zg_auth_apr1(pw, pwlen, hash, out) != ZG_OK) {
            return ZG_ERROR;
        }
        rc = zg_auth_eq(out, strlen(out), hash, hlen) ? ZG_OK : ZG_DECLINED;
        OPENSSL_cleanse(out, sizeof(out));
        return rc;
    }

    /* crypt(3) wants a NUL-terminated key: a password with a NUL cannot match */
    if (memchr(pw, '\0', pwlen) != NULL || pwlen >= 1024) {
        return ZG_DECLINED;
    }
    static struct crypt_data cd; /* 32 KiB; workers are single-threaded */
    char key[1024];
    memcpy(key, pw, pwlen);
    key[pwlen] = '\0';
    const char *out = crypt_rn(key, hash, &cd, sizeof(cd));
    OPENSSL_cleanse(key, pwlen);
    if (out == NULL || out[0] == '*') {
        return ZG_ERROR;
    }
    rc = zg_auth_eq(out, strlen(out), hash, hlen) ? ZG_OK : ZG_DECLINED;
    OPENSSL_cleanse(&cd, sizeof(cd));
    return rc;
}

/* ------------------------------------------------ verification cache */


/* a keyed digest of (user, stored hash, password): equal only for the same triple;
 * the key is random per start of the master, so the table is no offline-guessing aid */
static int zg_auth_cache_digest(const zg_auth_basic_user_t *u, const char *pw, size_t pwlen,
                                unsigned char *out)
{
    EVP_MD_CTX *ctx;
    int ok;

    if (!zg_auth_cache_ready) {
        return ZG_ERROR;
    }
    ctx = EVP_MD_CTX_new();
    ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
         && EVP_DigestUpdate(ctx, zg_auth_cache_key, sizeof(zg_auth_cache_key)) == 1
         && EVP_DigestUpdate(ctx, u->user, u->user_len + 1) == 1
         && EVP_DigestUpdate(ctx, u->hash, u->hash_len + 1) == 1
         && EVP_DigestUpdate(ctx, pw, pwlen) == 1
         && EVP_DigestFinal_ex(ctx, out, NULL) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? ZG_OK : ZG_ERROR;
}

/* only for the slow schemes: the others cost less than the digest */
static int zg_auth_cacheable(const char *hash)
{
    return hash[0] == '$';
}

/* ------------------------------------------------------------- the check */

static void zg_auth_basic_realm(char *www, const char *realm, size_t len)
{
    static const char pre[] = "WWW-Authenticate: Basic realm=\"";
    char *p = www;
    size_t i;

    memcpy(p, pre, sizeof(pre) - 1);
    p += sizeof(pre) - 1;
    /* as nginx: the realm is written as it is; control bytes could end the header */
    for (i = 0; i < len && p < www + ZG_AUTH_BASIC_HEADER_MAX - 4; i++) {
        unsigned char c = (unsigned char)realm[i];
        if (c >= 0x20 && c != 0x7f) {
            *p++ = (char)c;
        }
    }
    memcpy(p, "\"\r\n", 4);
}

int zg_auth_basic_check(const zg_auth_basic_conf_t *conf, const zg_var_ctx_t *ctx, char *www)
{
    char realm[1024], buf[4096], client[64];
    zg_str_t user, pw;
    const zg_auth_basic_user_t *u;
    unsigned char digest[32], *slot = NULL;
    size_t rlen;
    int rc;

    if (conf->realm == NULL || conf->file == NULL) {
        return ZG_DECLINED;
    }
    rlen = zg_cv_eval(conf->realm, ctx, 0, realm, sizeof(realm));
    rlen = zg_min(rlen, sizeof(realm));
    if (rlen == 3 && memcmp(realm, "off", 3) == 0) {
        return ZG_DECLINED;
    }
    zg_auth_basic_realm(www, realm, rlen);

    if (zg_var_basic_auth(ctx, buf, sizeof(buf), &user, &pw) != ZG_OK) {
        zg_log(ZG_LOG_INFO, "no user/password was provided for basic authentication, client: %s",
               zg_var_client(ctx, client, sizeof(client)));
        return 401;
    }
    u = zg_auth_basic_find(conf->file, user.data, user.len);
    if (u == NULL) {
        zg_log(ZG_LOG_ERR, "user \"%.*s\" was not found in \"%s\", client: %s",
               (int)zg_min(user.len, 256), user.data, conf->file->path,
               zg_var_client(ctx, client, sizeof(client)));
        OPENSSL_cleanse((char *)pw.data, pw.len);
        return 401;
    }
    if (zg_auth_basic_cache_on && zg_auth_cacheable(u->hash)
        && zg_auth_cache_digest(u, pw.data, pw.len, digest) == ZG_OK) {
        slot = zg_auth_cache[(digest[0] | (unsigned)digest[1] << 8) % ZG_AUTH_CACHE_SIZE];
        if (CRYPTO_memcmp(slot, digest, sizeof(digest)) == 0) {
            OPENSSL_cleanse((char *)pw.data, pw.len);
            return ZG_OK;
        }
    }
    rc = zg_auth_basic_verify(pw.data, pw.len, u->hash);
    OPENSSL_cleanse((char *)pw.data, pw.len);
    if (rc == ZG_OK) {
        if (slot != NULL) {
            memcpy(slot, digest, sizeof(digest));
        }
        return ZG_OK;
    }
    if (rc == ZG_ERROR) {
        /* nginx compares crypt(3)'s failure token ("*0") and finds a mismatch: 401 */
        zg_log(ZG_LOG_ERR, "user \"%.*s\": the password hash in line %d of \"%s\" cannot "
               "be checked, client: %s", (int)zg_min(user.len, 256), user.data, u->line,
               conf->file->path, zg_var_client(ctx, client, sizeof(client)));
        return 401;
    }
    zg_log(ZG_LOG_ERR, "user \"%.*s\": password mismatch, client: %s",
           (int)zg_min(user.len, 256), user.data, zg_var_client(ctx, client, sizeof(client)));
    return 401;
}

/* ---------------------------------------------------------------- module */

/* per request: a 401 is being answered with the header in zg_auth_basic_www */
typedef struct {
    unsigned unauthorized : 1;
} zg_auth_basic_ctx_t;

/* the header of the 401 being answered: the access phase answers it at once, and a
 * worker answers one request at a time */
static char zg_auth_basic_www[ZG_AUTH_BASIC_HEADER_MAX];

static int zg_auth_basic_directive(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_auth_basic_conf_t *abcf = conf;

    (void)cmd;
    if (abcf->realm != NULL) {
        return zg_conf_duplicate(cf);
    }
    abcf->realm = zg_conf_cv(cf, cf->args[1].data, cf->args[1].len);
    return abcf->realm != NULL ? ZG_OK : ZG_ERROR;
}

/* the file is read now, not per request */
static int zg_auth_basic_user_file(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_auth_basic_main_conf_t *amcf = zg_main_conf_of(cf->conf, zg_auth_basic_module);
    zg_auth_basic_conf_t *abcf = conf;
    zg_str_t *a = cf->args;
    char err[512], *path;

    (void)cmd;
    if (abcf->file != NULL) {
        return zg_conf_duplicate(cf);
    }
    if (memchr(a[1].data, '$', a[1].len) != NULL) {
        return zg_conf_error(cf, "variables are not supported in \"%s\" directive: the file "
                             "is read when the configuration is loaded", cf->name);
    }
    path = zg_conf_path(cf, &a[1]);
    if (path == NULL) {
        return zg_conf_nomem(cf);
    }
    err[0] = '\0';
    abcf->file = zg_auth_basic_file_load(cf->conf, &amcf->files, path, err, sizeof(err));
    if (abcf->file == NULL) {
        return zg_conf_error(cf, "%s in \"%s\" directive", err, cf->name);
    }
    return ZG_OK;
}

static void *zg_auth_basic_create_main_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_auth_basic_main_conf_t));
}

static void *zg_auth_basic_create_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_auth_basic_conf_t));
}

static int zg_auth_basic_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    (void)cf;
    zg_auth_basic_merge(child, parent);
    return ZG_OK;
}

/* access phase: ZG_DECLINED (no authentication here), ZG_OK, or 401 */
static int zg_auth_basic_handler(zg_request_t *r)
{
    zg_auth_basic_conf_t *abcf = zg_auth_basic_loc_conf(r->loc_conf);
    int rc;

    if (abcf->realm == NULL || abcf->file == NULL) {
        return ZG_DECLINED;
    }
    rc = zg_auth_basic_check(abcf, &r->ctx, zg_auth_basic_www);
    if (rc == 401) {
        ((zg_auth_basic_ctx_t *)zg_request_ctx(r, zg_auth_basic_module))->unauthorized = 1;
        r->want_headers = 1;
    }
    return rc;
}

static size_t zg_auth_basic_headers(zg_request_t *r, char *buf, size_t len, int rejected)
{
    zg_auth_basic_ctx_t *x = zg_request_ctx(r, zg_auth_basic_module);
    size_t n;

    (void)rejected;
    if (!x->unauthorized) {
        return 0;
    }
    n = strlen(zg_auth_basic_www);
    if (n >= len) {
        return 0;
    }
    memcpy(buf, zg_auth_basic_www, n);
    return n;
}

static const zg_command_t zg_auth_basic_commands[] = {
    { "auth_basic", ZG_CTX_SETTINGS, 0, 1, 1, zg_auth_basic_directive, ZG_LOC_CONF, 0, NULL },
    { "auth_basic_user_file", ZG_CTX_SETTINGS, 0, 1, 1, zg_auth_basic_user_file, ZG_LOC_CONF,
      0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_auth_basic_module = {
    .name = "auth_basic",
    .commands = zg_auth_basic_commands,
    .create_main_conf = zg_auth_basic_create_main_conf,
    .create_loc_conf = zg_auth_basic_create_conf,
    .merge_loc_conf = zg_auth_basic_merge_conf,
    .phase = ZG_PHASE_ACCESS,
    .handler = zg_auth_basic_handler,
    .headers = zg_auth_basic_headers,
    .ctx_size = sizeof(zg_auth_basic_ctx_t),
};
