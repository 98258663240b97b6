/* test_geo.c — geo: networks (most specific wins), ranges, delete. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "zg_geo.h"

static const char *find(const zg_geo_t *geo, const char *ip)
{
    static char buf[64];
    unsigned char a[16];
    int fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
    zg_str_t v;

    assert_int_equal(inet_pton(fam, ip, a), 1);
    v = zg_geo_find(geo, fam, a);
    if (v.len) {
        memcpy(buf, v.data, v.len);
    }
    buf[v.len] = '\0';
    return buf;
}

static void add(zg_geo_t *geo, zg_geo_entry_t *e, const char *cidr, const char *value)
{
    assert_int_equal(zg_geo_parse_cidr(cidr, strlen(cidr), e), ZG_OK);
    e->value = (zg_str_t){ strlen(value), value };
    geo->nentries++;
}

static void test_cidr(void **state)
{
    zg_geo_entry_t e[5];
    zg_geo_t geo;

    (void)state;
    memset(&geo, 0, sizeof(geo));
    geo.entries = e;
    geo.deflt = (zg_str_t)zg_string("def");
    add(&geo, &e[0], "10.1.0.0/16", "b");
    add(&geo, &e[1], "10.0.0.0/8", "a");
    add(&geo, &e[2], "10.1.2.3", "c");
    add(&geo, &e[3], "2001:db8::/32", "six");
    add(&geo, &e[4], "10.1.2.99/24", "masked"); /* the host bits are dropped */
    assert_string_equal(find(&geo, "10.9.9.9"), "a");
    assert_string_equal(find(&geo, "10.1.9.9"), "b");
    assert_string_equal(find(&geo, "10.1.2.3"), "c");
    assert_string_equal(find(&geo, "10.1.2.4"), "masked");
    assert_string_equal(find(&geo, "11.0.0.1"), "def");
    assert_string_equal(find(&geo, "2001:db8::1"), "six");
    assert_string_equal(find(&geo, "::1"), "def");
    assert_int_equal(zg_geo_parse_cidr("10.0.0.0/33", 11, &e[0]), ZG_ERROR);
    assert_int_equal(zg_geo_parse_cidr("x", 1, &e[0]), ZG_ERROR);
}

static void test_ranges(void **state)
{
    zg_geo_entry_t e[2];
    zg_geo_t geo;

    (void)state;
    memset(&geo, 0, sizeof(geo));
    memset(e, 0, sizeof(e));
    geo.entries = e;
    geo.ranges = 1;
    geo.nentries = 2;
    e[0].family = e[1].family = AF_INET;
    inet_pton(AF_INET, "10.0.0.0", e[0].lo);
    inet_pton(AF_INET, "10.0.0.255", e[0].hi);
    e[0].value = (zg_str_t)zg_string("low");
    inet_pton(AF_INET, "10.0.0.128", e[1].lo);
    inet_pton(AF_INET, "10.0.0.200", e[1].hi);
    e[1].value = (zg_str_t)zg_string("mid");
    assert_string_equal(find(&geo, "10.0.0.5"), "low");
    assert_string_equal(find(&geo, "10.0.0.150"), "mid"); /* the later range wins */
    assert_string_equal(find(&geo, "10.0.0.201"), "low");
    assert_string_equal(find(&geo, "10.0.1.0"), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_ranges),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
