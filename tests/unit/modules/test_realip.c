/* test_realip.c — the client address from X-Forwarded-For-like values, recursion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "zg_conf.h"
#include "zg_http_core.h"
#include "zg_realip.h"

static zg_conf_t *conf;

static const zg_realip_loc_conf_t *load(int recursive)
{
    char text[512], err[256];

    snprintf(text, sizeof(text),
             "http { set_real_ip_from 10.0.0.0/8; set_real_ip_from 127.0.0.1;\n"
             " set_real_ip_from 2001:db8::/32; real_ip_recursive %s;\n"
             " server { listen 127.0.0.1:1; } }\n", recursive ? "on" : "off");
    zg_conf_free(conf);
    conf = zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err));
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    return zg_conf_module(zg_http_core_main_conf(conf)->servers[0].loc_conf, zg_realip_module);
}

static const char *find(const zg_realip_loc_conf_t *rl, const char *peer, const char *v1,
                        const char *v2)
{
    static char out[64];
    struct sockaddr_in sin;
    struct sockaddr_storage ss;
    zg_str_t v[2] = { { strlen(v1), v1 }, { v2 ? strlen(v2) : 0, v2 } };

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, peer, &sin.sin_addr);
    if (zg_realip_find(rl, (struct sockaddr *)&sin, v, v2 ? 2 : 1, &ss) != ZG_OK) {
        return "-";
    }
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, sizeof(out));
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, sizeof(out));
    }
    return out;
}

static void test_find(void **state)
{
    const zg_realip_loc_conf_t *rl;

    (void)state;
    rl = load(0);
    assert_string_equal(find(rl, "127.0.0.1", "1.2.3.4", NULL), "1.2.3.4");
    assert_string_equal(find(rl, "127.0.0.2", "1.2.3.4", NULL), "-"); /* untrusted peer */
    assert_string_equal(find(rl, "10.9.9.9", "1.2.3.4, 10.1.1.1", NULL), "10.1.1.1");
    assert_string_equal(find(rl, "10.9.9.9", "x", NULL), "-");
    assert_string_equal(find(rl, "10.9.9.9", "1.1.1.1", "2.2.2.2"), "2.2.2.2");
    rl = load(1);
    assert_string_equal(find(rl, "10.9.9.9", "1.2.3.4, 10.1.1.1", NULL), "1.2.3.4");
    assert_string_equal(find(rl, "10.9.9.9", "1.2.3.4 , 10.1.1.1,127.0.0.1", NULL), "1.2.3.4");
    /* all trusted: the first one */
    assert_string_equal(find(rl, "10.9.9.9", "10.3.3.3, 10.1.1.1", NULL), "10.3.3.3");
    /* across header lines, the last line first */
    assert_string_equal(find(rl, "10.9.9.9", "5.5.5.5", "10.1.1.1"), "5.5.5.5");
    assert_string_equal(find(rl, "10.9.9.9", "2001:db8::5, 2001:db9::1", NULL), "2001:db9::1");
    assert_string_equal(find(rl, "10.9.9.9", "garbage, 10.1.1.1", NULL), "10.1.1.1");
    zg_conf_free(conf);
    conf = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
    };

    zg_conf_no_resolve = 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
