/* fuzz_uri.c — libFuzzer: any bytes as a request target through zg_http_parse_uri,
 * merge_slashes on and off (the first byte picks).  Invariants, as nginx's
 * normaliser has them:
 *   - the output is never longer than the input (one byte more for "?..."),
 *   - it starts with '/' and has no "." or ".." segment: it never climbs above '/',
 *   - normalising it again changes nothing (when it has no '%', '?' or '#', which
 *     only a decoded %25, %3F or %23 leaves: those are path bytes the second time
 *     would read differently),
 *   - the fast-path test never skips a target the normaliser would change,
 *   - escaping the output and normalising that gives the output back. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zg_http.h"

static int fz_has_dot_segment(const char *p, size_t n)
{
    size_t s = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '/') {
            size_t len = i - s;

            if ((len == 1 && p[s] == '.') || (len == 2 && p[s] == '.' && p[s + 1] == '.')) {
                return 1;
            }
            s = i + 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zg_http_uri_t u, v;
    int merge;
    char *in, *out, *again, *esc;
    size_t n, elen;

    if (size == 0) {
        return 0;
    }
    merge = !(data[0] & 1);
    n = size - 1;
    in = malloc(n + 1);
    out = malloc(n + 1);
    if (in == NULL || out == NULL) {
        abort();
    }
    memcpy(in, data + 1, n);

    if (zg_http_parse_uri(in, n, merge, out, &u) != ZG_OK) {
        goto done;
    }
    if (u.path_len > (n ? n : 1) || u.path_len == 0 || out[0] != '/') {
        abort();
    }
    if (fz_has_dot_segment(out, u.path_len)) {
        abort();
    }
    if (u.has_args && (u.args_off > n || u.args_off + u.args_len > n ||
                       (u.args_off && in[u.args_off - 1] != '?'))) {
        abort();
    }
    if (merge && memmem(out, u.path_len, "//", 2) != NULL) {
        abort();
    }
    /* the fast path: the path must be the bytes before '?' */
    if (n && in[0] == '/' && !zg_http_uri_complex(in, n)) {
        const char *q = memchr(in, '?', n);
        size_t plen = q ? (size_t)(q - in) : n;

        if (plen != u.path_len || memcmp(in, out, plen) != 0) {
            abort();
        }
    }
    /* idempotent */
    if (memchr(out, '%', u.path_len) == NULL && memchr(out, '?', u.path_len) == NULL &&
        memchr(out, '#', u.path_len) == NULL) {
        again = malloc(u.path_len + 1);
        if (again == NULL) {
            abort();
        }
        if (zg_http_parse_uri(out, u.path_len, merge, again, &v) != ZG_OK ||
            v.path_len != u.path_len || memcmp(again, out, u.path_len) != 0) {
            abort();
        }
        free(again);
    }
    /* what proxy_pass with a URI part sends is read back as the same path */
    elen = zg_http_escape_uri(NULL, out, u.path_len);
    esc = malloc(elen + 1);
    again = malloc(elen + 1);
    if (esc == NULL || again == NULL) {
        abort();
    }
    zg_http_escape_uri(esc, out, u.path_len);
    if (memchr(out, 0, u.path_len) == NULL &&
        (zg_http_parse_uri(esc, elen, merge, again, &v) != ZG_OK || v.path_len != u.path_len ||
         memcmp(again, out, u.path_len) != 0)) {
        abort();
    }
    free(esc);
    free(again);

done:
    free(in);
    free(out);
    return 0;
}
