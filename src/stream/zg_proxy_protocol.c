/* zg_proxy_protocol.c — PROXY protocol v1 and v2 headers: a strict parser of
 * untrusted bytes (every length checked before it is used) and a writer. */
#include "zg_proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const unsigned char zg_pp_v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* a decimal port, 0-65535; as nginx reads it (ngx_atoi), leading zeros are fine */
static int zg_pp_port(const char *s, size_t len)
{
    int v = 0;

    if (len == 0) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
        if (v > 65535) {
            return -1;
        }
    }
    return v;
}

/* an address field as nginx checks it: hex digits, '.' and ':' only */
static int zg_pp_addr_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c != ':' && c != '.' && !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'f')
            && !(c >= 'A' && c <= 'F')) {
            return 0;
        }
    }
    return 1;
}

/* out gets the address if it is one (of either family, as nginx does not hold the
 * header to its TCP4/TCP6 word); else its family stays AF_UNSPEC */
static void zg_pp_addr(const char *s, size_t len, int port, struct sockaddr_storage *out)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)out;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
    char tmp[64];

    memset(out, 0, sizeof(*out));
    if (len >= sizeof(tmp)) {
        return;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (inet_pton(AF_INET, tmp, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, tmp, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
    }
}

static void zg_pp_text(zg_pp_t *out)
{
    const void *a;

    if (out->src.ss_family == AF_INET) {
        a = &((struct sockaddr_in *)&out->src)->sin_addr;
        out->src_port = ntohs(((struct sockaddr_in *)&out->src)->sin_port);
    } else {
        a = &((struct sockaddr_in6 *)&out->src)->sin6_addr;
        out->src_port = ntohs(((struct sockaddr_in6 *)&out->src)->sin6_port);
    }
    if (inet_ntop(out->src.ss_family, a, out->src_text, sizeof(out->src_text)) == NULL) {
        out->src_text[0] = '\0';
    }
}

/* "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n" */
static int zg_pp_v1(const unsigned char *buf, size_t len, zg_pp_t *out)
{
    const char *p = (const char *)buf, *end, *f[6];
    size_t fl[6], n, i;
    int sport, dport, k = 0;

    /* the line ends within the first 107 bytes */
    for (n = 0; n < len && n < ZG_PP_V1_MAX; n++) {
        if (buf[n] == '\n') {
            break;
        }
    }
    if (n == len || n == ZG_PP_V1_MAX) {
        return n == ZG_PP_V1_MAX ? ZG_ERROR : ZG_AGAIN;
    }
    if (n < 1 || buf[n - 1] != '\r') {
        return ZG_ERROR;
    }
    end = p + n - 1; /* at the CR */
    /* fields separated by single spaces */
    for (const char *q = p; q <= end && k < 6;) {
        const char *s = q;
        while (q < end && *q != ' ') {
            q++;
        }
        f[k] = s;
        fl[k] = (size_t)(q - s);
        k++;
        if (q == end) {
            break;
        }
        q++; /* the space */
        if (q == end) {
            return ZG_ERROR; /* a trailing space */
        }
    }
    memset(out, 0, sizeof(*out));
    out->version = 1;
    if (k < 2 || fl[0] != 5 || memcmp(f[0], "PROXY", 5) != 0) {
        return ZG_ERROR;
    }
    if (fl[1] == 7 && memcmp(f[1], "UNKNOWN", 7) == 0) {
        out->local = 1; /* anything may follow up to the CRLF */
        return (int)n + 1;
    }
    if (k != 6 || (f[5] + fl[5]) != end) {
        return ZG_ERROR;
    }
    for (i = 0; i < 6; i++) {
        if (fl[i] == 0) {
            return ZG_ERROR;
        }
    }
    if (fl[1] != 4 || (memcmp(f[1], "TCP4", 4) != 0 && memcmp(f[1], "TCP6", 4) != 0)) {
        return ZG_ERROR;
    }
    sport = zg_pp_port(f[4], fl[4]);
    dport = zg_pp_port(f[5], fl[5]);
    if (sport < 0 || dport < 0 || !zg_pp_addr_chars(f[2], fl[2])
        || !zg_pp_addr_chars(f[3], fl[3])) {
        return ZG_ERROR;
    }
    zg_pp_addr(f[2], fl[2], sport, &out->src);
    zg_pp_addr(f[3], fl[3], dport, &out->dst);
    /* $proxy_protocol_addr is the text as sent, as nginx keeps it */
    memcpy(out->src_text, f[2], fl[2]);
    out->src_text[fl[2]] = '\0';
    out->src_port = sport;
    return (int)n + 1;
}

static int zg_pp_v2(const unsigned char *buf, size_t len, zg_pp_t *out)
{
    size_t hlen;
    int cmd, fam;

    if (len < 16) {
        return ZG_AGAIN;
    }
    memset(out, 0, sizeof(*out));
    out->version = 2;
    if ((buf[12] & 0xF0) != 0x20) {
        return ZG_ERROR; /* version 2 only */
    }
    cmd = buf[12] & 0x0F;
    fam = buf[13];
    hlen = 16 + (((size_t)buf[14] << 8) | buf[15]);
    if (hlen > ZG_PP_MAX) {
        return ZG_ERROR;
    }
    if (len < hlen) {
        return ZG_AGAIN;
    }
    if (cmd != 1 || (fam & 0x0F) != 1) {
        /* LOCAL (the sender's own connection) or another command, or not a stream
         * transport: no client address, as nginx takes it */
        out->local = 1;
        return (int)hlen;
    }
    switch (fam) {
    case 0x11: { /* TCP over IPv4 */
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
        if (hlen < 16 + 12) {
            return ZG_ERROR;
        }
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, buf + 16, 4);
        memcpy(&d->sin_addr, buf + 20, 4);
        memcpy(&s->sin_port, buf + 24, 2);
        memcpy(&d->sin_port, buf + 26, 2);
        break;
    }
    case 0x21: { /* TCP over IPv6 */
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
        if (hlen < 16 + 36) {
            return ZG_ERROR;
        }
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, buf + 16, 16);
        memcpy(&d->sin6_addr, buf + 32, 16);
        memcpy(&s->sin6_port, buf + 48, 2);
        memcpy(&d->sin6_port, buf + 50, 2);
        break;
    }
    default: /* UNSPEC, unix sockets: no address, as v1's UNKNOWN */
        out->local = 1;
        return (int)hlen;
    }
    zg_pp_text(out);
    return (int)hlen;
}

int zg_pp_parse(const unsigned char *buf, size_t len, zg_pp_t *out)
{
    size_t n = len < sizeof(zg_pp_v2_sig) ? len : sizeof(zg_pp_v2_sig);

    if (len == 0) {
        return ZG_AGAIN;
    }
    if (memcmp(buf, zg_pp_v2_sig, n) == 0) {
        return n < sizeof(zg_pp_v2_sig) ? ZG_AGAIN : zg_pp_v2(buf, len, out);
    }
    n = len < 6 ? len : 6;
    if (memcmp(buf, "PROXY ", n) != 0) {
        return ZG_ERROR;
    }
    return zg_pp_v1(buf, len, out);
}

size_t zg_pp_write(int version, const struct sockaddr *src, const struct sockaddr *dst,
                   unsigned char *buf, size_t len)
{
    char a[64], b[64];
    int n;

    if (src == NULL || dst == NULL || src->sa_family != dst->sa_family
        || (src->sa_family != AF_INET && src->sa_family != AF_INET6)) {
        if (version == 2) {
            if (len < 16) {
                return 0;
            }
            memcpy(buf, zg_pp_v2_sig, 12);
            buf[12] = 0x21;
            buf[13] = 0x00;
            buf[14] = buf[15] = 0;
            return 16;
        }
        n = snprintf((char *)buf, len, "PROXY UNKNOWN\r\n");
        return n > 0 && (size_t)n < len ? (size_t)n : 0;
    }
    if (src->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)src;
        const struct sockaddr_in *d = (const struct sockaddr_in *)dst;
        if (version == 2) {
            if (len < 28) {
                return 0;
            }
            memcpy(buf, zg_pp_v2_sig, 12);
            buf[12] = 0x21;
            buf[13] = 0x11;
            buf[14] = 0;
            buf[15] = 12;
            memcpy(buf + 16, &s->sin_addr, 4);
            memcpy(buf + 20, &d->sin_addr, 4);
            memcpy(buf + 24, &s->sin_port, 2);
            memcpy(buf + 26, &d->sin_port, 2);
            return 28;
        }
        inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
        inet_ntop(AF_INET, &d->sin_addr, b, sizeof(b));
        n = snprintf((char *)buf, len, "PROXY TCP4 %s %s %u %u\r\n", a, b,
                     ntohs(s->sin_port), ntohs(d->sin_port));
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)src;
        const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)dst;
        if (version == 2) {
            if (len < 52) {
                return 0;
            }
            memcpy(buf, zg_pp_v2_sig, 12);
            buf[12] = 0x21;
            buf[13] = 0x21;
            buf[14] = 0;
            buf[15] = 36;
            memcpy(buf + 16, &s->sin6_addr, 16);
            memcpy(buf + 32, &d->sin6_addr, 16);
            memcpy(buf + 48, &s->sin6_port, 2);
            memcpy(buf + 50, &d->sin6_port, 2);
            return 52;
        }
        inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
        inet_ntop(AF_INET6, &d->sin6_addr, b, sizeof(b));
        n = snprintf((char *)buf, len, "PROXY TCP6 %s %s %u %u\r\n", a, b,
                     ntohs(s->sin6_port), ntohs(d->sin6_port));
    }
    return n > 0 && (size_t)n < len ? (size_t)n : 0;
}
