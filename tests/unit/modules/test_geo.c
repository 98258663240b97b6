/* test_geo.c — geo: networks (most specific wins), ranges, delete. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_conf.h"
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

/* the radix tree answers as the scan of the entries does, for every address */
static void test_tree_same_as_scan(void **state)
{
    static const char *nets[] = { "0.0.0.0/1", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.3",
                                  "10.1.2.0/24", "192.168.0.0/16", "192.168.7.0/24",
                                  "2001:db8::/32", "2001:db8:1::/48", "::/0", "127.0.0.1/32" };
    zg_geo_entry_t e[zg_nelems(nets)];
    zg_geo_t scan, tree;
    char vals[zg_nelems(nets)][4];
    unsigned int seed = 12345;

    (void)state;
    memset(&scan, 0, sizeof(scan));
    scan.entries = e;
    scan.deflt = (zg_str_t)zg_string("def");
    for (size_t i = 0; i < zg_nelems(nets); i++) {
        snprintf(vals[i], sizeof(vals[i]), "%zu", i);
        add(&scan, &e[i], nets[i], vals[i]);
    }
    tree = scan;
    assert_int_equal(zg_geo_build(&tree), ZG_OK);
    assert_non_null(tree.nodes);
    for (int k = 0; k < 20000; k++) {
        unsigned char a[16];
        char ip[64], want[64];
        int fam = k % 2 ? AF_INET6 : AF_INET;
        for (int j = 0; j < 16; j++) {
            seed = seed * 1103515245 + 12345;
            a[j] = (unsigned char)(seed >> 16);
        }
        if (k % 4 == 0) {
            a[0] = 10, a[1] = (unsigned char)(k % 3), a[2] = (unsigned char)(k % 5);
        } else if (k % 4 == 1) {
            a[0] = 0x20, a[1] = 0x01, a[2] = 0x0d, a[3] = 0xb8, a[4] = 0, a[5] = (unsigned char)(k % 3);
        }
        inet_ntop(fam, a, ip, sizeof(ip));
        strcpy(want, find(&scan, ip));
        assert_string_equal(find(&tree, ip), want);
    }
    free(tree.nodes);
}

static void test_conf_errors(void **state)
{
    static const struct {
        const char *text, *err;
    } bad[] = {
        { "http { geo $g { default 0; ranges; } }",
          "the \"ranges\" directive must be the first directive inside \"geo\" block in "
          "/x/z.conf:1" },
        { "http { geo $g { 10.0.0.0/33 a; } }", "invalid network \"10.0.0.0/33\" in /x/z.conf:1" },
        { "http { geo $g { ranges; 10.0.0.9-10.0.0.1 a; } }",
          "invalid range \"10.0.0.9-10.0.0.1\" in /x/z.conf:1" },
        { "http { geo $g { a b c; } }", "invalid number of the geo parameters in /x/z.conf:1" },
        { "http { geo $remote_addr { } }", "the \"remote_addr\" variable is built in in /x/z.conf:1" },
    };
    char err[256];

    (void)state;
    for (size_t i = 0; i < zg_nelems(bad); i++) {
        assert_null(zg_conf_load_string("/x/z.conf", bad[i].text, strlen(bad[i].text), err,
                                        sizeof(err)));
        assert_string_equal(err, bad[i].err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_tree_same_as_scan),
        cmocka_unit_test(test_conf_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
