/* zg_proxy_protocol.h — the PROXY protocol header (HAProxy's proxy-protocol.txt),
 * versions 1 (text) and 2 (binary): parsed from untrusted bytes, and written. */
#ifndef ZG_PROXY_PROTOCOL_H
#define ZG_PROXY_PROTOCOL_H

#include <stddef.h>
#include <sys/socket.h>

#include "zg_core.h"

#define ZG_PP_V1_MAX 107   /* the longest v1 line, CRLF included */
#define ZG_PP_MAX 4096     /* the longest header accepted (v2 with its TLVs) */

/* What is accepted is what nginx 1.22 accepts (checked against it): v1 address
 * fields of hex digits, '.' and ':' whatever TCP4/TCP6 says, ports 0-65535; v2 with
 * any command but PROXY, any transport but STREAM or any family but INET/INET6 as a
 * header without addresses. */
typedef struct {
    int version;                   /* 1 or 2 */
    int local;                     /* v1 UNKNOWN, v2 LOCAL, UNSPEC...: no addresses */
    struct sockaddr_storage src;   /* the client, as the sender saw it; AF_UNSPEC when
                                      v1's text is not an address */
    struct sockaddr_storage dst;
    char src_text[ZG_PP_V1_MAX];   /* "192.0.2.1" ($proxy_protocol_addr), v1: as sent */
    int src_port;
} zg_pp_t;

/* Parses the header at the start of buf[0..len).  Returns the header's length in
 * bytes (> 0; out filled), ZG_AGAIN when buf is a valid start that needs more bytes,
 * or ZG_ERROR for anything malformed (out->src_text then holds nothing useful).
 * Never reads past len.  A header longer than ZG_PP_MAX is an error. */
int zg_pp_parse(const unsigned char *buf, size_t len, zg_pp_t *out);

/* Writes a v1 header for src -> dst ("PROXY TCP4 a b p q\r\n", "PROXY UNKNOWN\r\n"
 * for other families) or a v2 one into buf (at least ZG_PP_V1_MAX bytes for v1, 52
 * for v2); returns its length. */
size_t zg_pp_write(int version, const struct sockaddr *src, const struct sockaddr *dst,
                   unsigned char *buf, size_t len);

#endif
