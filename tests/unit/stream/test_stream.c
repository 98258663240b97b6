/* test_stream.c — the stream core's configuration: the stream block, its servers and
 * listen addresses with their parameters, the settings a server inherits from the
 * stream level, set_real_ip_from, and the errors nginx gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "zg_conf.h"
#include "zg_stream.h"
#include "zg_stream_proxy.h"
#include "zg_upstream.h"

static char err[512];

static zg_conf_t *load(const char *text)
{
    zg_conf_no_resolve = 1;
    err[0] = '\0';
    return zg_conf_load_string("/x/s.conf", text, strlen(text), err, sizeof(err));
}

static void test_listen_and_servers(void **state)
{
    zg_conf_t *c = load("stream {\n"
                        "  server { listen 127.0.0.1:7001 backlog=64 so_keepalive=on;\n"
                        "           listen 7002 proxy_protocol; proxy_pass 127.0.0.1:9; }\n"
                        "  server { listen [::1]:7003; proxy_pass 127.0.0.1:9; }\n"
                        "}\n");
    zg_stream_core_main_conf_t *scf;

    (void)state;
    assert_non_null(c);
    scf = zg_stream_core_main_conf(c);
    assert_int_equal(scf->nservers, 2);
    assert_int_equal(scf->nlistens, 3);
    assert_string_equal(scf->listens[0].addr.text, "127.0.0.1:7001");
    assert_int_equal(scf->listens[0].backlog, 64);
    assert_true(scf->listens[0].so_keepalive);
    assert_false(scf->listens[0].proxy_protocol);
    assert_string_equal(scf->listens[1].addr.text, "0.0.0.0:7002");
    assert_int_equal(scf->listens[1].backlog, 511);
    assert_true(scf->listens[1].proxy_protocol);
    assert_ptr_equal(scf->listens[0].server, scf->listens[1].server);
    assert_ptr_equal(scf->listens[2].server, scf->servers[1]);
    assert_int_equal(scf->listens[2].fd, -1);
    zg_conf_free(c);
}

static void test_inherited_settings(void **state)
{
    zg_conf_t *c = load("stream {\n"
                        "  server { listen 7001; proxy_pass 127.0.0.1:9; }\n"
                        "  proxy_protocol_timeout 5s;\n" /* after the server: still its */
                        "  set_real_ip_from 10.1.2.3/8;\n"
                        "  server { listen 7002; proxy_pass 127.0.0.1:9;\n"
                        "           proxy_protocol_timeout 1s; set_real_ip_from ::1; }\n"
                        "}\n");
    zg_stream_core_main_conf_t *scf;
    zg_stream_core_conf_t *a, *b;

    (void)state;
    assert_non_null(c);
    scf = zg_stream_core_main_conf(c);
    a = zg_conf_module(scf->servers[0]->conf, zg_stream_core_module);
    b = zg_conf_module(scf->servers[1]->conf, zg_stream_core_module);
    assert_int_equal(a->proxy_protocol_timeout, 5000);
    assert_int_equal(b->proxy_protocol_timeout, 1000);
    assert_int_equal(a->nreal_ip_from, 1);
    assert_int_equal(a->real_ip_from[0].family, AF_INET);
    /* the low bits a mask leaves out are dropped */
    assert_int_equal(a->real_ip_from[0].addr[0], 10);
    assert_int_equal(a->real_ip_from[0].addr[1], 0);
    assert_int_equal(a->real_ip_from[0].mask[0], 0xff);
    assert_int_equal(a->real_ip_from[0].mask[1], 0);
    assert_int_equal(b->nreal_ip_from, 1);
    assert_int_equal(b->real_ip_from[0].family, AF_INET6);
    zg_conf_free(c);
}

static void test_proxy_settings(void **state)
{
    zg_conf_t *c = load("stream {\n"
                        "  proxy_timeout 30s; proxy_protocol on;\n"
                        "  upstream db { zone db 64k; server 127.0.0.1:5432; server 127.0.0.1:5433 backup; }\n"
                        "  server { listen 7001; proxy_pass db; proxy_next_upstream off;\n"
                        "           proxy_next_upstream_tries 2; proxy_download_rate 1m; }\n"
                        "  server { listen 7002; proxy_pass 127.0.0.1:6379; proxy_protocol v2;\n"
                        "           proxy_half_close on; proxy_connect_timeout 3s;\n"
                        "           proxy_splice off; }\n"
                        "}\n"
                        "http { upstream db { server 127.0.0.1:80; } }\n");
    zg_stream_core_main_conf_t *scf;
    zg_stream_proxy_conf_t *a, *b;

    (void)state;
    assert_non_null(c);
    scf = zg_stream_core_main_conf(c);
    a = zg_conf_module(scf->servers[0]->conf, zg_stream_proxy_module);
    b = zg_conf_module(scf->servers[1]->conf, zg_stream_proxy_module);
    /* defaults, as nginx's */
    assert_int_equal(a->connect_timeout, 60000);
    assert_int_equal(b->connect_timeout, 3000);
    assert_int_equal(a->timeout, 30000);
    assert_int_equal(a->next_upstream, 0);
    assert_int_equal(b->next_upstream, 1);
    assert_int_equal(a->next_upstream_tries, 2);
    assert_int_equal(b->next_upstream_tries, 0);
    assert_int_equal(a->next_upstream_timeout, 0);
    assert_int_equal(a->half_close, 0);
    assert_int_equal(b->half_close, 1);
    assert_int_equal(a->proxy_protocol, 1);
    assert_int_equal(b->proxy_protocol, 2);
    assert_int_equal(a->download_rate, 1024 * 1024);
    assert_int_equal(a->upload_rate, 0);
    assert_int_equal(a->splice, 1); /* proxy_splice on by default */
    assert_int_equal(b->splice, 0);
    /* the stream block's upstream, not the http one of the same name */
    assert_non_null(a->upstream);
    assert_true(a->upstream->stream);
    assert_int_equal(a->upstream->nservers, 2);
    assert_ptr_equal(a->upstream, zg_upstream_find_in(c, "db", 0, 1));
    assert_ptr_not_equal(a->upstream, zg_upstream_find_in(c, "db", 0, 0));
    assert_true(b->upstream->implicit && b->upstream->stream);
    zg_conf_free(c);
}

static void test_errors(void **state)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        { "stream { server { listen 1; proxy_pass a; proxy_pass b; } }",
          "\"proxy_pass\" directive is duplicate in /x/s.conf:1" },
        { "stream { server { listen 1 backlog=0; proxy_pass 127.0.0.1:1; } }",
          "invalid backlog \"0\" in /x/s.conf:1" },
        { "stream { server { listen 1; proxy_pass 127.0.0.1:1;\nproxy_protocol maybe; } }",
          "invalid value \"maybe\" in \"proxy_protocol\" directive" },
        { "stream { server { listen 1; proxy_pass 127.0.0.1:1;\nset_real_ip_from 1.2.3.4/33; } }",
          "invalid parameter \"1.2.3.4/33\" in /x/s.conf:2" },
        { "stream { server { listen 1; proxy_pass 127.0.0.1:1; limit_conn nope 1; } }",
          "unknown limit_conn_zone \"nope\"" },
        { "stream { server { listen 1; proxy_pass 127.0.0.1:1; limit_conn_status 429; } }",
          "\"limit_conn_status\" directive is not allowed here in /x/s.conf:1" },
        { "stream { server { listen 1; proxy_pass 127.0.0.1:1;\naccess_log /tmp/x; } }",
          "invalid number of arguments in \"access_log\" directive in /x/s.conf:2" },
        { "stream { log_format combined '$status';\n server { listen 1; proxy_pass 127.0.0.1:1;\n"
          "access_log /tmp/x main; } }",
          "unknown log format \"main\" in /x/s.conf:3" },
        { "server { }", "\"server\" directive is not allowed here in /x/s.conf:1" },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_null(load(cases[i].text));
        if (strstr(err, cases[i].msg) == NULL) {
            fail_msg("case %zu: \"%s\" not in \"%s\"", i, cases[i].msg, err);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_and_servers),
        cmocka_unit_test(test_inherited_settings),
        cmocka_unit_test(test_proxy_settings),
        cmocka_unit_test(test_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
