/* test_proxy_protocol.c — the PROXY protocol parser and writer: v1 and v2 headers
 * whole, cut short at every byte (ZG_AGAIN, never a wrong answer), malformed ones,
 * and what the writer makes parsing back to the same addresses.  What is accepted
 * and what is refused is what nginx 1.22's stream module does with the same bytes
 * (checked against /usr/sbin/nginx with libnginx-mod-stream). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "zg_proxy_protocol.h"

static const unsigned char sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

static size_t v2_tcp4(unsigned char *b, const char *src, const char *dst, int sp, int dp,
                      size_t tlv)
{
    memcpy(b, sig, 12);
    b[12] = 0x21;
    b[13] = 0x11;
    b[14] = (unsigned char)((12 + tlv) >> 8);
    b[15] = (unsigned char)((12 + tlv) & 0xff);
    inet_pton(AF_INET, src, b + 16);
    inet_pton(AF_INET, dst, b + 20);
    b[24] = (unsigned char)(sp >> 8);
    b[25] = (unsigned char)sp;
    b[26] = (unsigned char)(dp >> 8);
    b[27] = (unsigned char)dp;
    memset(b + 28, 0xAB, tlv);
    return 28 + tlv;
}

/* every proper prefix of a good header needs more bytes */
static void check_prefixes(const unsigned char *b, size_t n)
{
    zg_pp_t pp;

    for (size_t k = 0; k < n; k++) {
        assert_int_equal(zg_pp_parse(b, k, &pp), ZG_AGAIN);
    }
}

static void test_v1(void **state)
{
    const char *h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nDATA";
    zg_pp_t pp;
    int n;

    (void)state;
    n = zg_pp_parse((const unsigned char *)h, strlen(h), &pp);
    assert_int_equal(n, (int)strlen(h) - 4);
    assert_int_equal(pp.version, 1);
    assert_int_equal(pp.local, 0);
    assert_string_equal(pp.src_text, "192.0.2.7");
    assert_int_equal(pp.src_port, 56324);
    check_prefixes((const unsigned char *)h, (size_t)n);

    h = "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
    assert_int_equal(zg_pp_parse((const unsigned char *)h, strlen(h), &pp), (int)strlen(h));
    assert_string_equal(pp.src_text, "2001:db8::1");

    /* as nginx: leading zeros, an address of the other family, or text of an
     * address's bytes that is none (kept as $proxy_protocol_addr, no address) */
    h = "PROXY TCP4 ::1 1.2.3.4 0056 443\r\n";
    assert_int_equal(zg_pp_parse((const unsigned char *)h, strlen(h), &pp), (int)strlen(h));
    assert_int_equal(pp.src.ss_family, AF_INET6);
    assert_int_equal(pp.src_port, 56);
    h = "PROXY TCP4 1.2.3.456 1.2.3.4 1 2\r\n";
    assert_int_equal(zg_pp_parse((const unsigned char *)h, strlen(h), &pp), (int)strlen(h));
    assert_int_equal(pp.src.ss_family, AF_UNSPEC);
    assert_string_equal(pp.src_text, "1.2.3.456");

    h = "PROXY UNKNOWN whatever follows\r\n";
    assert_int_equal(zg_pp_parse((const unsigned char *)h, strlen(h), &pp), (int)strlen(h));
    assert_int_equal(pp.local, 1);
}

static void test_v1_bad(void **state)
{
    static const char *bad[] = {
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\n",      /* no CR */
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 65536\r\n",  /* port */
        "PROXY TCP4 192.0.2.7 198.51.100.1 -1 443\r\n",
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",        /* a field missing */
        "PROXY TCP4 192.0.2.x 198.51.100.1 1 2\r\n",          /* not an address's bytes */
        "PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3\r\n",        /* one too many */
        "PROXY TCP4 192.0.2.7  198.51.100.1 1 2\r\n",         /* two spaces */
        "PROXY TCP4 192.0.2.7 198.51.100.1 1 2 \r\n",         /* trailing space */
        "PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
        "PROXY\r\n",
        "proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
        "GET / HTTP/1.1\r\n",
        "\r\n\r\nX",                                        /* not the v2 signature */
    };
    char longline[200];
    zg_pp_t pp;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(zg_pp_parse((const unsigned char *)bad[i], strlen(bad[i]), &pp),
                         ZG_ERROR);
    }
    /* no line end within 107 bytes */
    memset(longline, 'A', sizeof(longline));
    memcpy(longline, "PROXY ", 6);
    assert_int_equal(zg_pp_parse((const unsigned char *)longline, 106, &pp), ZG_AGAIN);
    assert_int_equal(zg_pp_parse((const unsigned char *)longline, 107, &pp), ZG_ERROR);
    assert_int_equal(zg_pp_parse((const unsigned char *)longline, sizeof(longline), &pp),
                     ZG_ERROR);
}

static void test_v2(void **state)
{
    unsigned char b[600];
    zg_pp_t pp;
    size_t n = v2_tcp4(b, "203.0.113.9", "127.0.0.1", 4000, 80, 0);

    (void)state;
    assert_int_equal(zg_pp_parse(b, n, &pp), (int)n);
    assert_int_equal(pp.version, 2);
    assert_string_equal(pp.src_text, "203.0.113.9");
    assert_int_equal(pp.src_port, 4000);
    check_prefixes(b, n);

    /* TLVs are skipped with the length */
    n = v2_tcp4(b, "203.0.113.9", "127.0.0.1", 4000, 80, 500);
    assert_int_equal(zg_pp_parse(b, n + 3, &pp), (int)n);
    check_prefixes(b, n);

    /* LOCAL: no addresses */
    n = v2_tcp4(b, "203.0.113.9", "127.0.0.1", 4000, 80, 0);
    b[12] = 0x20;
    assert_int_equal(zg_pp_parse(b, n, &pp), (int)n);
    assert_int_equal(pp.local, 1);
}

static void test_v2_bad(void **state)
{
    unsigned char b[64];
    zg_pp_t pp;
    size_t n;

    (void)state;
    n = v2_tcp4(b, "1.2.3.4", "1.2.3.4", 1, 2, 0);
    b[12] = 0x31; /* version 3 */
    assert_int_equal(zg_pp_parse(b, n, &pp), ZG_ERROR);
    n = v2_tcp4(b, "1.2.3.4", "1.2.3.4", 1, 2, 0);
    b[15] = 4; /* too short for TCP over IPv4 */
    assert_int_equal(zg_pp_parse(b, 20, &pp), ZG_ERROR);
    /* as nginx: another command, a datagram transport or a unix family is a header
     * without addresses */
    n = v2_tcp4(b, "1.2.3.4", "1.2.3.4", 1, 2, 0);
    b[12] = 0x22;
    assert_int_equal(zg_pp_parse(b, n, &pp), (int)n);
    assert_int_equal(pp.local, 1);
    n = v2_tcp4(b, "1.2.3.4", "1.2.3.4", 1, 2, 0);
    b[13] = 0x12;
    assert_int_equal(zg_pp_parse(b, n, &pp), (int)n);
    assert_int_equal(pp.local, 1);
    n = v2_tcp4(b, "1.2.3.4", "1.2.3.4", 1, 2, 0);
    b[13] = 0x31;
    assert_int_equal(zg_pp_parse(b, n, &pp), (int)n);
    assert_int_equal(pp.local, 1);
    n = v2_tcp4(b, "1.2.3.4", "1.2.3.4", 1, 2, 0);
    b[14] = 0xff; /* longer than ZG_PP_MAX */
    assert_int_equal(zg_pp_parse(b, n, &pp), ZG_ERROR);
    b[3] = 0x0B; /* not the signature, not "PROXY " */
    assert_int_equal(zg_pp_parse(b, n, &pp), ZG_ERROR);
}

static void test_write_parses_back(void **state)
{
    struct sockaddr_in s4 = { 0 }, d4 = { 0 };
    struct sockaddr_in6 s6 = { 0 }, d6 = { 0 };
    unsigned char b[128];
    zg_pp_t pp;
    size_t n;

    (void)state;
    s4.sin_family = d4.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.1", &s4.sin_addr);
    inet_pton(AF_INET, "192.0.2.2", &d4.sin_addr);
    s4.sin_port = htons(1111);
    d4.sin_port = htons(2222);
    n = zg_pp_write(1, (struct sockaddr *)&s4, (struct sockaddr *)&d4, b, sizeof(b));
    assert_int_equal(n, strlen("PROXY TCP4 192.0.2.1 192.0.2.2 1111 2222\r\n"));
    assert_memory_equal(b, "PROXY TCP4 192.0.2.1 192.0.2.2 1111 2222\r\n", n);
    for (int v = 1; v <= 2; v++) {
        n = zg_pp_write(v, (struct sockaddr *)&s4, (struct sockaddr *)&d4, b, sizeof(b));
        assert_int_equal(zg_pp_parse(b, n, &pp), (int)n);
        assert_string_equal(pp.src_text, "192.0.2.1");
        assert_int_equal(pp.src_port, 1111);
    }
    s6.sin6_family = d6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::7", &s6.sin6_addr);
    inet_pton(AF_INET6, "::1", &d6.sin6_addr);
    s6.sin6_port = htons(7);
    for (int v = 1; v <= 2; v++) {
        n = zg_pp_write(v, (struct sockaddr *)&s6, (struct sockaddr *)&d6, b, sizeof(b));
        assert_int_equal(zg_pp_parse(b, n, &pp), (int)n);
        assert_string_equal(pp.src_text, "2001:db8::7");
    }
    /* mixed families: UNKNOWN / UNSPEC */
    n = zg_pp_write(1, (struct sockaddr *)&s4, (struct sockaddr *)&d6, b, sizeof(b));
    assert_memory_equal(b, "PROXY UNKNOWN\r\n", n);
    n = zg_pp_write(2, (struct sockaddr *)&s4, (struct sockaddr *)&d6, b, sizeof(b));
    assert_int_equal(zg_pp_parse(b, n, &pp), (int)n);
    assert_int_equal(pp.local, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1),
        cmocka_unit_test(test_v1_bad),
        cmocka_unit_test(test_v2),
        cmocka_unit_test(test_v2_bad),
        cmocka_unit_test(test_write_parses_back),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
