/* test_conf.c — the config parser: every directive, merge, lookups, error texts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zg_access.h"
#include "zg_access_log.h"
#include "zg_conf.h"
#include "zg_core_module.h"
#include "zg_http_core.h"
#include "zg_limit_conn.h"
#include "zg_limit_req.h"
#include "zg_log.h"
#include "zg_proxy.h"
#include "zg_rewrite.h"
#include "zg_upstream.h"
#include "zg_vars.h"

/* each module's conf of a level (the per-module confs of http, a server or a location) */
#define CORE(c) zg_http_core_loc_conf(c)
#define PROXY(c) zg_proxy_loc_conf(c)
#define LREQ(c) zg_limit_req_loc_conf(c)
#define LCONN(c) zg_limit_conn_loc_conf(c)
#define ACC(c) zg_access_loc_conf(c)
#define ALOG(c) zg_access_log_conf(c)
#define RW(c) zg_rewrite_loc_conf(c)
/* main confs */
#define HC(conf) zg_http_core_main_conf(conf)
#define HTTP(conf) (HC(conf)->http_conf)
#define UPS(conf) zg_upstream_main_conf(conf)
#define LRM(conf) zg_limit_req_main_conf(conf)
#define LCM(conf) zg_limit_conn_main_conf(conf)
#define ALM(conf) zg_access_log_main_conf(conf)

/* what answers a location */
enum { ZG_HANDLER_NONE, ZG_HANDLER_PROXY, ZG_HANDLER_RETURN, ZG_HANDLER_OTHER };

static int handler_of(const zg_location_t *l)
{
    if (RW(l->loc_conf)->list.n != 0) {
        return ZG_HANDLER_RETURN;
    }
    if (CORE(l->loc_conf)->handler == NULL) {
        return ZG_HANDLER_NONE;
    }
    return PROXY(l->loc_conf)->upstream != NULL ? ZG_HANDLER_PROXY : ZG_HANDLER_OTHER;
}

static char tmpdir[256];

static void write_file(const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/zg_test_conf.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    zg_conf_no_resolve = 1;
    return 0;
}

static int teardown_dir(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static zg_conf_t *load(const char *text)
{
    char err[512];
    zg_conf_t *conf = zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err));

    if (conf == NULL) {
        fail_msg("unexpected error: %s", err);
    }
    return conf;
}

static zg_location_t *loc_by_path(zg_server_conf_t *srv, const char *path, int exact)
{
    for (int i = 0; i < srv->nlocations; i++) {
        if (strcmp(srv->locations[i].path, path) == 0
            && srv->locations[i].exact == (unsigned)exact) {
            return &srv->locations[i];
        }
    }
    fail_msg("no location %s", path);
    return NULL;
}

/* 1 if the system resolves "localhost" to 127.0.0.1 (a bare debootstrap root has no
 * /etc/hosts, and then name resolution is not what these tests are about) */
static int localhost_resolves(void)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int ok = getaddrinfo("localhost", NULL, &hints, &res) == 0;
    if (res != NULL) {
        freeaddrinfo(res);
    }
    if (!ok) {
        fprintf(stderr, "note: \"localhost\" does not resolve here; name lookups not tested\n");
    }
    return ok;
}

static const char *cv_text(const zg_cv_t *cv)
{
    static char buf[256];
    zg_str_t s;

    assert_non_null(cv);
    assert_true(zg_cv_is_const(cv));
    s = zg_cv_const(cv);
    snprintf(buf, sizeof(buf), "%.*s", (int)s.len, s.data);
    return buf;
}

static const char full_conf[] =
    "# zonegate test config\n"
    "worker_processes 2;\n"
    "worker_rlimit_nofile 4096;\n"
    "pid run/zonegate.pid;\n"
    "error_log logs/error.log warn;\n"
    "daemon off;\n"
    "events { worker_connections 512; }\n"
    "http {\n"
    "    log_format main '$remote_addr \"$request\" '\n"
    "                    '$status';\n"
    "    access_log logs/access.log main;\n"
    "    proxy_set_header X-Http one;\n"
    "    proxy_connect_timeout 5s;\n"
    "    proxy_read_timeout 500ms;\n"
    "    proxy_send_timeout 2m;\n"
    "    proxy_next_upstream error timeout http_502 http_503 http_504;\n"
    "    proxy_next_upstream_tries 3;\n"
    "    client_header_timeout 1h;\n"
    "    client_body_timeout 1d;\n"
    "    keepalive_timeout 0;\n"
    "    client_max_body_size 10m;\n"
    "    large_client_header_buffers 8 16k;\n"
    "    limit_req_zone $binary_remote_addr zone=perip:10m rate=10r/s "
    "sync=redis://127.0.0.1:6379/2 sync_interval=250ms;\n"
    "    limit_req_zone $uri zone=slow:1m rate=30r/m;\n"
    "    limit_conn_zone $binary_remote_addr zone=conns:1m;\n"
    "    limit_req zone=perip burst=5 nodelay;\n"
    "    limit_req_status 429;\n"
    "    limit_req_log_level warn;\n"
    "    limit_req_dry_run on;\n"
    "    limit_req_headers on;\n"
    "    limit_conn conns 10;\n"
    "    limit_conn_status 429;\n"
    "    limit_conn_log_level notice;\n"
    "    limit_conn_dry_run on;\n"
    "    allow 10.1.2.3/8;\n"
    "    deny all;\n"
    "    upstream backend {\n"
    "        zone backend 64k;\n"
    "        server 127.0.0.1:9001 weight=3 max_fails=2 fail_timeout=5s max_conns=100;\n"
    "        server 127.0.0.1:9002 backup;\n"
    "        server localhost:9003 down;\n"
    "        keepalive 16;\n"
    "    }\n"
    "    server {\n"
    "        listen 127.0.0.1:8080;\n"
    "        server_name example.com WWW.Example.org;\n"
    "        limit_req zone=slow burst=2 delay=1;\n"
    "        keepalive_timeout 10s;\n"
    "        location / { proxy_pass http://backend; }\n"
    "        location /api/ {\n"
    "            proxy_pass http://backend/v1/;\n"
    "            limit_req zone=later;\n"
    "            proxy_read_timeout 3s;\n"
    "            allow ::1;\n"
    "            allow 2001:db8:ffff::1/32;\n"
    "            deny 192.168.1.77/24;\n"
    "            access_log off;\n"
    "        }\n"
    "        location = /api/ { return 204; }\n"
    "        location = /slab_stat { slab_stat; }\n"
    "        location = /metrics { metrics; }\n"
    "        location /direct { proxy_pass http://127.0.0.1:9100; }\n"
    "        location /direct2 { proxy_pass http://127.0.0.1:9100/x; }\n"
    "        location /redir { return https://example.com/; }\n"
    "        location /text { return 403 \"forbidden\\n\"; }\n"
    "    }\n"
    "    server {\n"
    "        listen 127.0.0.1:8080 default_server;\n"
    "        server_name other.test;\n"
    "    }\n"
    "    server {\n"
    "        listen 8081 reuseport;\n"
    "        include inc/server.conf;\n"
    "    }\n"
    "    server {\n"
    "    }\n"
    "    limit_req_zone $uri zone=later:1m rate=1r/s;\n"
    "}\n";

static void test_full(void **state)
{
    char err[512], path[512];
    zg_conf_t *conf;
    void **h;
    zg_server_conf_t *s0, *s1, *s2, *s3;
    zg_location_t *l;
    zg_upstream_conf_t *u, *imp;
    zg_zone_t *z;

    (void)state;
    snprintf(path, sizeof(path), "%s/inc", tmpdir);
    mkdir(path, 0700);
    write_file("inc/server.conf", "server_name inc.test;\nlocation /inc { return 200 inc; }\n");
    if (localhost_resolves()) {
        write_file("zonegate.conf", full_conf);
    } else {
        /* a bare root without /etc/hosts: keep the test, not the name */
        char *text = strdup(full_conf), *at = strstr(text, "localhost:9003");
        assert_non_null(at);
        memcpy(at, "127.0.0.1:9003", 14);
        write_file("zonegate.conf", text);
        free(text);
    }
    snprintf(path, sizeof(path), "%s/zonegate.conf", tmpdir);
    conf = zg_conf_load(path, err, sizeof(err));
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    assert_string_equal(conf->prefix, tmpdir);

    /* main */
    assert_int_equal(zg_core_conf(conf)->worker_processes, 2);
    assert_int_equal(zg_core_conf(conf)->worker_rlimit_nofile, 4096);
    assert_int_equal(zg_core_conf(conf)->worker_connections, 512);
    assert_int_equal(zg_core_conf(conf)->daemon, 0);
    snprintf(path, sizeof(path), "%s/run/zonegate.pid", tmpdir);
    assert_string_equal(zg_core_conf(conf)->pid_file, path);
    snprintf(path, sizeof(path), "%s/logs/error.log", tmpdir);
    assert_string_equal(zg_core_conf(conf)->error_log_file, path);
    assert_int_equal(zg_core_conf(conf)->error_log_level, ZG_LOG_WARN);

    /* http level */
    h = HTTP(conf);
    assert_int_equal(PROXY(h)->nset_headers, 1);
    assert_int_equal(PROXY(h)->set_headers[0].name.len, 6);
    assert_memory_equal(PROXY(h)->set_headers[0].name.data, "X-Http", 6);
    assert_string_equal(cv_text(PROXY(h)->set_headers[0].value), "one");
    assert_int_equal(PROXY(h)->connect_timeout, 5000);
    assert_int_equal(PROXY(h)->read_timeout, 500);
    assert_int_equal(PROXY(h)->send_timeout, 120000);
    assert_int_equal(PROXY(h)->next_upstream, ZG_NEXT_ERROR | ZG_NEXT_TIMEOUT | ZG_NEXT_HTTP_502
                                                 | ZG_NEXT_HTTP_503 | ZG_NEXT_HTTP_504);
    assert_int_equal(PROXY(h)->next_upstream_tries, 3);
    assert_int_equal(CORE(h)->client_header_timeout, 3600000);
    assert_int_equal(CORE(h)->client_body_timeout, 86400000);
    assert_int_equal(CORE(h)->keepalive_timeout, 0);
    assert_int_equal(CORE(h)->client_max_body_size, 10 * 1024 * 1024);
    assert_int_equal(CORE(h)->large_header_buffers, 8);
    assert_int_equal(CORE(h)->large_header_size, 16384);
    assert_int_equal(LREQ(h)->status, 429);
    assert_int_equal(LREQ(h)->log_level, ZG_LOG_WARN);
    assert_int_equal(LREQ(h)->dry_run, 1);
    assert_int_equal(LREQ(h)->headers, 1);
    assert_int_equal(LCONN(h)->status, 429);
    assert_int_equal(LCONN(h)->log_level, ZG_LOG_NOTICE);
    assert_int_equal(LCONN(h)->dry_run, 1);
    assert_int_equal(LREQ(h)->nlimits, 1);
    assert_string_equal(LREQ(h)->limits[0].zone->zone->name, "perip");
    assert_true(LREQ(h)->limits[0].burst == 5000);
    assert_true(LREQ(h)->limits[0].delay == ZG_LIMIT_REQ_NODELAY);
    assert_int_equal(LCONN(h)->nlimits, 1);
    assert_string_equal(LCONN(h)->limits[0].zone->zone->name, "conns");
    assert_int_equal(LCONN(h)->limits[0].conn, 10);
    assert_int_equal(ACC(h)->nrules, 2);
    assert_int_equal(ACC(h)->rules[0].family, AF_INET);
    assert_int_equal(ACC(h)->rules[0].deny, 0);
    assert_memory_equal(ACC(h)->rules[0].addr, "\x0a\x00\x00\x00", 4);
    assert_memory_equal(ACC(h)->rules[0].mask, "\xff\x00\x00\x00", 4);
    assert_int_equal(ACC(h)->rules[1].family, 0);
    assert_int_equal(ACC(h)->rules[1].deny, 1);

    /* access logs: one, shared, not opened */
    assert_non_null(ALOG(h)->log);
    snprintf(path, sizeof(path), "%s/logs/access.log", tmpdir);
    assert_string_equal(ALOG(h)->log->path, path);
    assert_string_equal(ALOG(h)->log->format->name, "main");
    assert_int_equal(ALOG(h)->log->fd, -1);
    assert_ptr_equal(ALM(conf)->logs, ALOG(h)->log);
    assert_null(ALM(conf)->logs->next);
    assert_string_equal(ALM(conf)->formats->name, "combined");
    assert_string_equal(ALM(conf)->formats->next->name, "main");
    assert_null(ALM(conf)->formats->next->next);

    /* limit_req zones: r/s and r/m, sync, key text, zone wiring */
    assert_int_equal(LRM(conf)->nzones, 3);
    assert_string_equal(LRM(conf)->zones[0]->zone->name, "perip");
    assert_true(LRM(conf)->zones[0]->rate == 10000);
    assert_string_equal(LRM(conf)->zones[0]->rate_text, "10r/s");
    assert_string_equal(LRM(conf)->zones[0]->key_text, "$binary_remote_addr");
    assert_non_null(LRM(conf)->zones[0]->key);
    assert_int_equal(LRM(conf)->zones[0]->sync.mode, ZG_SYNC_REDIS);
    assert_string_equal(LRM(conf)->zones[0]->sync.url, "redis://127.0.0.1:6379/2");
    assert_string_equal(LRM(conf)->zones[0]->sync.host, "127.0.0.1");
    assert_int_equal(LRM(conf)->zones[0]->sync.port, 6379);
    assert_int_equal(LRM(conf)->zones[0]->sync.db, 2);
    assert_int_equal(LRM(conf)->zones[0]->sync.interval, 250);
    assert_true(LRM(conf)->zones[1]->rate == 500);
    assert_int_equal(LRM(conf)->zones[1]->sync.mode, ZG_SYNC_NONE);
    assert_int_equal(LRM(conf)->zones[1]->sync.interval, 100);
    assert_true(LRM(conf)->zones[2]->rate == 1000);
    assert_int_equal(LCM(conf)->nzones, 1);
    assert_string_equal(LCM(conf)->zones[0]->key_text, "$binary_remote_addr");

    z = conf->zones.head;
    assert_string_equal(z->name, "perip");
    assert_ptr_equal(z->kind, ZG_ZONE_LIMIT_REQ);
    assert_int_equal(z->size, 10 * 1024 * 1024);
    assert_ptr_equal(z->init, zg_limit_req_zone_init);
    assert_ptr_equal(z->conf, LRM(conf)->zones[0]);
    z = z->next;
    assert_string_equal(z->name, "slow");
    z = z->next;
    assert_string_equal(z->name, "conns");
    assert_ptr_equal(z->kind, ZG_ZONE_LIMIT_CONN);
    assert_ptr_equal(z->init, zg_limit_conn_zone_init);
    assert_ptr_equal(z->conf, LCM(conf)->zones[0]);
    z = z->next;
    assert_string_equal(z->name, "backend");
    assert_ptr_equal(z->kind, ZG_ZONE_UPSTREAM);
    assert_int_equal(z->size, 64 * 1024);
    assert_ptr_equal(z->init, zg_upstream_zone_init);
    z = z->next;
    assert_string_equal(z->name, "later");
    assert_null(z->next);

    /* upstream */
    u = UPS(conf)->upstreams;
    assert_string_equal(u->name, "backend");
    assert_int_equal(u->implicit, 0);
    assert_ptr_equal(conf->zones.head->next->next->next->conf, u);
    assert_ptr_equal(u->zone, conf->zones.head->next->next->next);
    assert_int_equal(u->keepalive, 16);
    assert_int_equal(u->nservers, 3);
    assert_string_equal(u->servers[0].addr.text, "127.0.0.1:9001");
    assert_int_equal(u->servers[0].weight, 3);
    assert_int_equal(u->servers[0].max_fails, 2);
    assert_int_equal(u->servers[0].fail_timeout, 5000);
    assert_int_equal(u->servers[0].max_conns, 100);
    assert_int_equal(u->servers[0].backup, 0);
    assert_int_equal(u->servers[1].weight, 1);
    assert_int_equal(u->servers[1].max_fails, 1);
    assert_int_equal(u->servers[1].fail_timeout, 10000);
    assert_int_equal(u->servers[1].backup, 1);
    assert_string_equal(u->servers[2].addr.text, "127.0.0.1:9003");
    assert_int_equal(u->servers[2].down, 1);
    imp = u->next;
    assert_non_null(imp);
    assert_int_equal(imp->implicit, 1);
    assert_int_equal(imp->nservers, 1);
    assert_string_equal(imp->servers[0].addr.text, "127.0.0.1:9100");
    assert_null(imp->next); /* /direct and /direct2 share it */

    /* servers */
    assert_int_equal(HC(conf)->nservers, 4);
    s0 = &HC(conf)->servers[0];
    s1 = &HC(conf)->servers[1];
    s2 = &HC(conf)->servers[2];
    s3 = &HC(conf)->servers[3];
    assert_int_equal(s0->nnames, 2);
    assert_string_equal(s0->names[1], "www.example.org");
    assert_int_equal(s3->nnames, 1);
    assert_string_equal(s3->names[0], "");
    /* server: list overrides, scalar set, rest inherited */
    assert_int_equal(LREQ(s0->loc_conf)->nlimits, 1);
    assert_string_equal(LREQ(s0->loc_conf)->limits[0].zone->zone->name, "slow");
    assert_true(LREQ(s0->loc_conf)->limits[0].burst == 2000);
    assert_true(LREQ(s0->loc_conf)->limits[0].delay == 1000);
    assert_int_equal(CORE(s0->loc_conf)->keepalive_timeout, 10000);
    assert_int_equal(LREQ(s0->loc_conf)->status, 429);
    assert_int_equal(LCONN(s0->loc_conf)->nlimits, 1);
    assert_ptr_equal(ALOG(s0->loc_conf)->log, ALOG(h)->log);

    /* location inherits from its server */
    l = loc_by_path(s0, "/", 0);
    assert_ptr_equal(l->server, s0);
    assert_int_equal(handler_of(l), ZG_HANDLER_PROXY);
    assert_ptr_equal(PROXY(l->loc_conf)->upstream, u);
    assert_null(PROXY(l->loc_conf)->uri);
    assert_int_equal(LREQ(l->loc_conf)->nlimits, 1);
    assert_string_equal(LREQ(l->loc_conf)->limits[0].zone->zone->name, "slow");
    assert_int_equal(CORE(l->loc_conf)->keepalive_timeout, 10000);
    assert_int_equal(PROXY(l->loc_conf)->read_timeout, 500);
    assert_int_equal(ACC(l->loc_conf)->nrules, 2);
    assert_int_equal(PROXY(l->loc_conf)->nset_headers, 1);
    assert_int_equal(CORE(l->loc_conf)->large_header_size, 16384);
    assert_ptr_equal(ALOG(l->loc_conf)->log, ALOG(h)->log);

    l = loc_by_path(s0, "/api/", 0);
    assert_int_equal(handler_of(l), ZG_HANDLER_PROXY);
    assert_ptr_equal(PROXY(l->loc_conf)->upstream, u);
    assert_int_equal(PROXY(l->loc_conf)->uri_len, 4);
    assert_memory_equal(PROXY(l->loc_conf)->uri, "/v1/", 4);
    assert_int_equal(LREQ(l->loc_conf)->nlimits, 1);
    assert_string_equal(LREQ(l->loc_conf)->limits[0].zone->zone->name, "later");
    assert_true(LREQ(l->loc_conf)->limits[0].burst == 0);
    assert_true(LREQ(l->loc_conf)->limits[0].delay == 0);
    assert_int_equal(PROXY(l->loc_conf)->read_timeout, 3000);
    assert_null(ALOG(l->loc_conf)->log);
    assert_int_equal(ACC(l->loc_conf)->nrules, 3);
    assert_int_equal(ACC(l->loc_conf)->rules[0].family, AF_INET6);
    assert_memory_equal(ACC(l->loc_conf)->rules[0].mask,
                        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 16);
    assert_int_equal(ACC(l->loc_conf)->rules[1].family, AF_INET6);
    assert_memory_equal(ACC(l->loc_conf)->rules[1].addr, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    assert_memory_equal(ACC(l->loc_conf)->rules[1].mask, "\xff\xff\xff\xff\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    assert_int_equal(ACC(l->loc_conf)->rules[2].deny, 1);
    assert_memory_equal(ACC(l->loc_conf)->rules[2].addr, "\xc0\xa8\x01\x00", 4);
    assert_memory_equal(ACC(l->loc_conf)->rules[2].mask, "\xff\xff\xff\x00", 4);

    l = loc_by_path(s0, "/api/", 1);
    assert_int_equal(handler_of(l), ZG_HANDLER_RETURN);
    assert_int_equal(RW(l->loc_conf)->list.codes[0].code, 204);
    assert_null(RW(l->loc_conf)->list.codes[0].value);
    assert_int_equal(handler_of(loc_by_path(s0, "/slab_stat", 1)), ZG_HANDLER_OTHER);
    assert_int_equal(handler_of(loc_by_path(s0, "/metrics", 1)), ZG_HANDLER_OTHER);
    assert_ptr_not_equal(CORE(loc_by_path(s0, "/slab_stat", 1)->loc_conf)->handler,
                         CORE(loc_by_path(s0, "/metrics", 1)->loc_conf)->handler);
    l = loc_by_path(s0, "/direct", 0);
    assert_ptr_equal(PROXY(l->loc_conf)->upstream, imp);
    assert_null(PROXY(l->loc_conf)->uri);
    l = loc_by_path(s0, "/direct2", 0);
    assert_ptr_equal(PROXY(l->loc_conf)->upstream, imp);
    assert_int_equal(PROXY(l->loc_conf)->uri_len, 2);
    l = loc_by_path(s0, "/redir", 0);
    assert_int_equal(RW(l->loc_conf)->list.codes[0].code, 302);
    assert_string_equal(cv_text(RW(l->loc_conf)->list.codes[0].value), "https://example.com/");
    l = loc_by_path(s0, "/text", 0);
    assert_int_equal(RW(l->loc_conf)->list.codes[0].code, 403);
    assert_string_equal(cv_text(RW(l->loc_conf)->list.codes[0].value), "forbidden\n");

    /* included file, relative to the main file's directory */
    assert_string_equal(s2->names[0], "inc.test");
    l = loc_by_path(s2, "/inc", 0);
    snprintf(path, sizeof(path), "%s/inc/server.conf", tmpdir);
    assert_string_equal(l->file, path);
    assert_int_equal(l->line, 2);
    assert_int_equal(LREQ(l->loc_conf)->nlimits, 1); /* from http */
    assert_string_equal(LREQ(l->loc_conf)->limits[0].zone->zone->name, "perip");

    /* listens: grouping, default_server, implicit *:80 */
    assert_int_equal(HC(conf)->nlistens, 3);
    assert_string_equal(HC(conf)->listens[0].addr.text, "127.0.0.1:8080");
    assert_int_equal(HC(conf)->listens[0].nservers, 2);
    assert_ptr_equal(HC(conf)->listens[0].servers[0], s0);
    assert_ptr_equal(HC(conf)->listens[0].servers[1], s1);
    assert_ptr_equal(HC(conf)->listens[0].default_server, s1);
    assert_int_equal(HC(conf)->listens[0].nfds, 0); /* the master opens them */
    assert_string_equal(HC(conf)->listens[1].addr.text, "0.0.0.0:8081");
    assert_ptr_equal(HC(conf)->listens[1].default_server, s2);
    assert_string_equal(HC(conf)->listens[2].addr.text, "0.0.0.0:80");
    assert_ptr_equal(HC(conf)->listens[2].default_server, s3);

    /* find_server */
    assert_ptr_equal(zg_http_find_server(&HC(conf)->listens[0], "EXAMPLE.com", 11, NULL), s0);
    assert_ptr_equal(zg_http_find_server(&HC(conf)->listens[0], "www.example.org", 15, NULL), s0);
    assert_ptr_equal(zg_http_find_server(&HC(conf)->listens[0], "other.test:8080", 15, NULL), s1);
    assert_ptr_equal(zg_http_find_server(&HC(conf)->listens[0], "example.co", 10, NULL), s1);
    assert_ptr_equal(zg_http_find_server(&HC(conf)->listens[0], "", 0, NULL), s1);
    assert_ptr_equal(zg_http_find_server(&HC(conf)->listens[1], "example.com", 11, NULL), s2);

    /* find_location: exact first, then longest prefix */
    assert_int_equal(zg_http_find_location(s0, "/api/", 5, NULL)->exact, 1);
    l = zg_http_find_location(s0, "/api/x", 6, NULL);
    assert_int_equal(l->exact, 0);
    assert_string_equal(l->path, "/api/");
    assert_string_equal(zg_http_find_location(s0, "/direct2/a", 10, NULL)->path, "/direct2");
    assert_string_equal(zg_http_find_location(s0, "/directory", 10, NULL)->path, "/direct");
    assert_string_equal(zg_http_find_location(s0, "/slab_stat/x", 12, NULL)->path, "/");
    {
        /* "/api/" proxies: "/api" is redirected to it, as nginx (auto_redirect) */
        int redirect;
        l = zg_http_core_find_location(s0, "/api", 4, NULL, &redirect);
        assert_int_equal(redirect, 1);
        assert_string_equal(l->path, "/api/");
    }
    assert_null(zg_http_find_location(s3, "/", 1, NULL));
    assert_null(zg_http_find_location(s2, "/", 1, NULL));

    zg_conf_free(conf);
}

static void test_defaults(void **state)
{
    zg_conf_t *conf;
    zg_location_t *l;

    (void)state;
    conf = load("http { server { location / { return 200; } } }");
    assert_int_equal(zg_core_conf(conf)->worker_processes, 1);
    assert_int_equal(zg_core_conf(conf)->worker_connections, 10240);
    assert_int_equal(zg_core_conf(conf)->worker_rlimit_nofile, 0);
    assert_null(zg_core_conf(conf)->pid_file);
    assert_string_equal(zg_core_conf(conf)->error_log_file, "stderr");
    assert_int_equal(zg_core_conf(conf)->error_log_level, ZG_LOG_ERR);
    assert_int_equal(zg_core_conf(conf)->daemon, 0);
    assert_string_equal(conf->file, "/x/z.conf");
    assert_string_equal(conf->prefix, "/x");
    l = &HC(conf)->servers[0].locations[0];
    assert_int_equal(PROXY(l->loc_conf)->nset_headers, 0);
    assert_int_equal(PROXY(l->loc_conf)->connect_timeout, 60000);
    assert_int_equal(PROXY(l->loc_conf)->read_timeout, 60000);
    assert_int_equal(PROXY(l->loc_conf)->send_timeout, 60000);
    assert_int_equal(PROXY(l->loc_conf)->next_upstream, ZG_NEXT_ERROR | ZG_NEXT_TIMEOUT);
    assert_int_equal(PROXY(l->loc_conf)->next_upstream_tries, 0);
    assert_int_equal(CORE(l->loc_conf)->client_header_timeout, 60000);
    assert_int_equal(CORE(l->loc_conf)->client_body_timeout, 60000);
    assert_int_equal(CORE(l->loc_conf)->keepalive_timeout, 75000);
    assert_int_equal(CORE(l->loc_conf)->client_max_body_size, 1024 * 1024);
    assert_int_equal(CORE(l->loc_conf)->large_header_buffers, 4);
    assert_int_equal(CORE(l->loc_conf)->large_header_size, 8192);
    assert_int_equal(CORE(l->loc_conf)->max_headers, 128);
    assert_int_equal(CORE(l->loc_conf)->merge_slashes, 1);
    assert_int_equal(CORE(l->loc_conf)->underscores_in_headers, 0);
    assert_int_equal(CORE(l->loc_conf)->ignore_invalid_headers, 1);
    assert_int_equal(LREQ(l->loc_conf)->nlimits, 0);
    assert_int_equal(LREQ(l->loc_conf)->status, 503);
    assert_int_equal(LREQ(l->loc_conf)->log_level, ZG_LOG_ERR);
    assert_int_equal(LREQ(l->loc_conf)->dry_run, 0);
    assert_int_equal(LREQ(l->loc_conf)->headers, 0);
    assert_int_equal(LCONN(l->loc_conf)->nlimits, 0);
    assert_int_equal(LCONN(l->loc_conf)->status, 503);
    assert_int_equal(LCONN(l->loc_conf)->log_level, ZG_LOG_ERR);
    assert_int_equal(LCONN(l->loc_conf)->dry_run, 0);
    assert_int_equal(ACC(l->loc_conf)->nrules, 0);
    assert_null(ALOG(l->loc_conf)->log);
    assert_int_equal(ALOG(l->loc_conf)->set, 1);
    assert_int_equal(RW(l->loc_conf)->list.codes[0].code, 200);
    assert_null(ALM(conf)->logs);
    assert_int_equal(HC(conf)->nlistens, 1);
    assert_string_equal(HC(conf)->listens[0].addr.text, "0.0.0.0:80");
    zg_conf_free(conf);

    /* no http block at all is a valid (empty) configuration */
    conf = load("worker_processes auto;\n");
    assert_true(zg_core_conf(conf)->worker_processes >= 1 && zg_core_conf(conf)->worker_processes <= ZG_MAX_WORKERS / 2);
    assert_int_equal(HC(conf)->nservers, 0);
    zg_conf_free(conf);
}

/* the head-parsing options: http, then server */
static void test_header_options(void **state)
{
    zg_conf_t *conf;

    (void)state;
    conf = load("http { merge_slashes off; client_max_headers 20;\n"
                " server { listen 81; location / { return 200; } }\n"
                " server { listen 82; merge_slashes on; underscores_in_headers on;\n"
                "   ignore_invalid_headers off; client_max_headers 7;\n"
                "   location / { return 200; } } }");
    assert_int_equal(CORE(HC(conf)->servers[0].locations[0].loc_conf)->merge_slashes, 0);
    assert_int_equal(CORE(HC(conf)->servers[0].locations[0].loc_conf)->max_headers, 20);
    assert_int_equal(CORE(HC(conf)->servers[0].loc_conf)->underscores_in_headers, 0);
    assert_int_equal(CORE(HC(conf)->servers[1].loc_conf)->merge_slashes, 1);
    assert_int_equal(CORE(HC(conf)->servers[1].loc_conf)->underscores_in_headers, 1);
    assert_int_equal(CORE(HC(conf)->servers[1].loc_conf)->ignore_invalid_headers, 0);
    assert_int_equal(CORE(HC(conf)->servers[1].locations[0].loc_conf)->max_headers, 7);
    zg_conf_free(conf);
}

static void test_inherit_access_log_and_lists(void **state)
{
    zg_conf_t *conf;
    zg_server_conf_t *s;

    (void)state;
    conf = load("http {\n"
                "  access_log /var/log/a.log;\n"
                "  server {\n"
                "    access_log /var/log/a.log;\n"
                "    proxy_set_header A a;\n"
                "    deny 1.2.3.4;\n"
                "    location /a { access_log /var/log/b.log combined; proxy_set_header B b; }\n"
                "    location /b { }\n"
                "  }\n"
                "}\n");
    s = &HC(conf)->servers[0];
    assert_non_null(ALOG(HTTP(conf))->log);
    assert_string_equal(ALOG(HTTP(conf))->log->format->name, "combined");
    /* same path and format: one shared log */
    assert_ptr_equal(ALOG(s->loc_conf)->log, ALOG(HTTP(conf))->log);
    assert_string_equal(ALOG(s->locations[0].loc_conf)->log->path, "/var/log/b.log");
    assert_ptr_equal(ALOG(s->locations[1].loc_conf)->log, ALOG(HTTP(conf))->log);
    assert_non_null(ALM(conf)->logs->next);
    assert_null(ALM(conf)->logs->next->next);
    /* lists: a level with its own list does not add the parent's */
    assert_int_equal(PROXY(s->locations[0].loc_conf)->nset_headers, 1);
    assert_memory_equal(PROXY(s->locations[0].loc_conf)->set_headers[0].name.data, "B", 1);
    assert_int_equal(PROXY(s->locations[1].loc_conf)->nset_headers, 1);
    assert_memory_equal(PROXY(s->locations[1].loc_conf)->set_headers[0].name.data, "A", 1);
    assert_int_equal(ACC(s->locations[1].loc_conf)->nrules, 1);
    assert_int_equal(ACC(HTTP(conf))->nrules, 0);
    assert_int_equal(PROXY(HTTP(conf))->nset_headers, 0);
    zg_conf_free(conf);
}

static void test_tokenizer(void **state)
{
    zg_conf_t *conf;
    zg_location_t *l;
    char err[256];
    const char *text;

    (void)state;
    conf = load("# comment ; { }\n"
                "http { server { server_name a#b 'q\\'s' \"\"; # trailing\n"
                "  location = /e {return 200 \"a\\\"b\\\\c\\n'd\\x\";}\n"
                "  location /s { return 200 'it\\'s'; }\n"
                "  location /m { return 200 \"multi\n"
                "line\"; }\n"
                "  location /v { return 200 ${uri}x; }\n"
                "}}");
    assert_int_equal(HC(conf)->servers[0].nnames, 3);
    assert_string_equal(HC(conf)->servers[0].names[0], "a#b");
    assert_string_equal(HC(conf)->servers[0].names[1], "q's");
    assert_string_equal(HC(conf)->servers[0].names[2], "");
    l = &HC(conf)->servers[0].locations[0];
    assert_string_equal(cv_text(RW(l->loc_conf)->list.codes[0].value), "a\"b\\c\n'd\\x");
    assert_int_equal(l->line, 3);
    assert_string_equal(cv_text(RW(HC(conf)->servers[0].locations[1].loc_conf)->list.codes[0].value), "it's");
    assert_int_equal(HC(conf)->servers[0].locations[3].line, 7);
    assert_false(zg_cv_is_const(RW(HC(conf)->servers[0].locations[3].loc_conf)->list.codes[0].value));
    /* an empty Host matches server_name "" */
    assert_ptr_equal(zg_http_find_server(&HC(conf)->listens[0], "", 0, NULL), &HC(conf)->servers[0]);
    zg_conf_free(conf);

    /* lines are counted inside multi-line strings */
    text = "http {\n  log_format x 'a\nb\nc';\n  bogus;\n}\n";
    assert_null(zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err)));
    assert_string_equal(err, "unknown directive \"bogus\" in /x/z.conf:5");
}

static void test_values(void **state)
{
    zg_addr_t a;

    (void)state;
    assert_int_equal(zg_conf_parse_size("10", 2), 10);
    assert_int_equal(zg_conf_parse_size("10k", 3), 10240);
    assert_int_equal(zg_conf_parse_size("10K", 3), 10240);
    assert_int_equal(zg_conf_parse_size("2m", 2), 2 * 1024 * 1024);
    assert_int_equal(zg_conf_parse_size("1G", 2), 1024 * 1024 * 1024);
    assert_int_equal(zg_conf_parse_size("", 0), -1);
    assert_int_equal(zg_conf_parse_size("k", 1), -1);
    assert_int_equal(zg_conf_parse_size("1x", 2), -1);
    assert_int_equal(zg_conf_parse_size("-1", 2), -1);
    assert_int_equal(zg_conf_parse_size("99999999999999999999g", 21), -1);
    assert_int_equal(zg_conf_parse_time("500ms", 5), 500);
    assert_int_equal(zg_conf_parse_time("10s", 3), 10000);
    assert_int_equal(zg_conf_parse_time("30", 2), 30000);
    assert_int_equal(zg_conf_parse_time("1m", 2), 60000);
    assert_int_equal(zg_conf_parse_time("2h", 2), 7200000);
    assert_int_equal(zg_conf_parse_time("1d", 2), 86400000);
    assert_int_equal(zg_conf_parse_time("1m30s", 5), 90000);
    assert_true(zg_conf_parse_time("", 0) == ZG_UNSET_MSEC);
    assert_true(zg_conf_parse_time("abc", 3) == ZG_UNSET_MSEC);
    assert_true(zg_conf_parse_time("10x", 3) == ZG_UNSET_MSEC);
    assert_true(zg_conf_parse_time("5 s", 3) == ZG_UNSET_MSEC);
    assert_true(zg_conf_parse_time("99999999999999d", 15) == ZG_UNSET_MSEC);

    assert_int_equal(zg_conf_parse_addr("8080", 4, 80, &a), ZG_OK);
    assert_string_equal(a.text, "0.0.0.0:8080");
    assert_int_equal(a.socklen, sizeof(struct sockaddr_in));
    assert_int_equal(zg_conf_parse_addr("[::1]:81", 8, 80, &a), ZG_OK);
    assert_string_equal(a.text, "[::1]:81");
    assert_int_equal(a.sa.ss_family, AF_INET6);
    if (localhost_resolves()) {
        assert_int_equal(zg_conf_parse_addr("localhost:80", 12, 0, &a), ZG_OK);
        assert_string_equal(a.text, "127.0.0.1:80");
    }
    assert_int_equal(zg_conf_parse_addr("10.0.0.1", 8, 80, &a), ZG_OK);
    assert_string_equal(a.text, "10.0.0.1:80");
    assert_int_equal(zg_conf_parse_addr("*:81", 4, 80, &a), ZG_OK);
    assert_string_equal(a.text, "0.0.0.0:81");
    assert_int_equal(zg_conf_parse_addr("10.0.0.1", 8, 0, &a), ZG_ERROR);
    assert_int_equal(zg_conf_parse_addr("10.0.0.1:0", 10, 80, &a), ZG_ERROR);
    assert_int_equal(zg_conf_parse_addr("10.0.0.1:65536", 14, 80, &a), ZG_ERROR);
    assert_int_equal(zg_conf_parse_addr("::1", 3, 80, &a), ZG_ERROR);
    assert_int_equal(zg_conf_parse_addr("[::1", 4, 80, &a), ZG_ERROR);
    assert_int_equal(zg_conf_parse_addr("no.such.host.invalid:80", 23, 80, &a), ZG_DECLINED);

    /* unix:PATH, no port; equal by path */
    zg_addr_t b;
    assert_int_equal(zg_conf_parse_addr("unix:/run/app.sock", 18, 80, &a), ZG_OK);
    assert_int_equal(a.sa.ss_family, AF_UNIX);
    assert_string_equal(a.text, "unix:/run/app.sock");
    assert_int_equal(a.socklen, offsetof(struct sockaddr_un, sun_path) + 14);
    assert_int_equal(zg_conf_parse_addr("unix:/run/app.sock", 18, 0, &b), ZG_OK);
    assert_true(zg_addr_eq(&a, &b));
    assert_int_equal(zg_conf_parse_addr("unix:/run/b.sock", 16, 0, &b), ZG_OK);
    assert_false(zg_addr_eq(&a, &b));
    assert_int_equal(zg_conf_parse_addr("unix:", 5, 80, &a), ZG_ERROR);
    char longp[140] = "unix:/";
    memset(longp + 6, 'x', 120);
    assert_int_equal(zg_conf_parse_addr(longp, 126, 80, &a), ZG_ERROR);
}

static void test_rate_and_burst(void **state)
{
    zg_conf_t *conf;
    void **s;

    (void)state;
    conf = load("http {\n"
                "  limit_req_zone $uri zone=a:32k rate=1r/m;\n"
                "  limit_req_zone $uri zone=b:32k rate=7r/s;\n"
                "  limit_req_zone $uri zone=c:32k rate=60r/m;\n"
                "  limit_req zone=a;\n"
                "  limit_req zone=b burst=10 delay=4;\n"
                "  limit_req zone=c nodelay burst=1;\n"
                "}\n");
    assert_true(LRM(conf)->zones[0]->rate == 16); /* 1000 / 60, as nginx */
    assert_true(LRM(conf)->zones[1]->rate == 7000);
    assert_true(LRM(conf)->zones[2]->rate == 1000);
    s = HTTP(conf);
    assert_int_equal(LREQ(s)->nlimits, 3);
    assert_true(LREQ(s)->limits[0].burst == 0 && LREQ(s)->limits[0].delay == 0);
    assert_true(LREQ(s)->limits[1].burst == 10000 && LREQ(s)->limits[1].delay == 4000);
    assert_true(LREQ(s)->limits[2].burst == 1000);
    assert_true(LREQ(s)->limits[2].delay == ZG_LIMIT_REQ_NODELAY);
    zg_conf_free(conf);
}

static void test_include_errors(void **state)
{
    char err[512], path[512], want[1024];
    zg_conf_t *conf;
    const char *text;

    (void)state;
    write_file("bad.conf", "# ok\nfoo;\n");
    write_file("loop.conf", "include loop.conf;\n");
    write_file("ups.conf", "upstream u { server 10.0.0.1:1; }\n");
    snprintf(path, sizeof(path), "%s/main.conf", tmpdir);

    text = "http {\n include bad.conf;\n}\n";
    assert_null(zg_conf_load_string(path, text, strlen(text), err, sizeof(err)));
    snprintf(want, sizeof(want), "unknown directive \"foo\" in %s/bad.conf:2", tmpdir);
    assert_string_equal(err, want);

    text = "include loop.conf;\n";
    assert_null(zg_conf_load_string(path, text, strlen(text), err, sizeof(err)));
    snprintf(want, sizeof(want),
             "too deep include nesting (more than 16) in \"include\" directive in %s/loop.conf:1",
             tmpdir);
    assert_string_equal(err, want);

    text = "http {\n include missing.conf;\n}\n";
    assert_null(zg_conf_load_string(path, text, strlen(text), err, sizeof(err)));
    snprintf(want, sizeof(want),
             "open() \"%s/missing.conf\" failed (2: No such file or directory) in %s:2", tmpdir,
             path);
    assert_string_equal(err, want);

    /* an included upstream, used before the include */
    text = "http {\n server { location / { proxy_pass http://u; } }\n include ups.conf;\n}\n";
    conf = zg_conf_load_string(path, text, strlen(text), err, sizeof(err));
    assert_non_null(conf);
    assert_ptr_equal(PROXY(HC(conf)->servers[0].locations[0].loc_conf)->upstream, UPS(conf)->upstreams);
    assert_int_equal(UPS(conf)->upstreams->implicit, 0);
    zg_conf_free(conf);

    text = "include /dev/null;\n";
    assert_null(zg_conf_load_string(path, text, strlen(text), err, sizeof(err)));
    snprintf(want, sizeof(want),
             "\"/dev/null\" is not a regular file of at most 16M in %s:1", path);
    assert_string_equal(err, want);

    snprintf(path, sizeof(path), "%s/nope.conf", tmpdir);
    assert_null(zg_conf_load(path, err, sizeof(err)));
    snprintf(want, sizeof(want), "open() \"%s\" failed (2: No such file or directory)", path);
    assert_string_equal(err, want);
}

/* include GLOB: the files in sorted order; no match is fine; a missing file is not */
static void test_include_glob(void **state)
{
    char path[512], err[1024], want[1024];
    const char *text;
    zg_conf_t *conf;

    (void)state;
    snprintf(path, sizeof(path), "%s/conf.d", tmpdir);
    mkdir(path, 0755);
    /* written out of order: the names decide */
    write_file("conf.d/20-b.conf", "server { listen 127.0.0.1:8002; server_name b; }\n");
    write_file("conf.d/10-a.conf", "server { listen 127.0.0.1:8001; server_name a; }\n");
    write_file("conf.d/30-c.conf", "server { listen 127.0.0.1:8003; server_name c; }\n");
    write_file("conf.d/README", "not a config\n");
    snprintf(path, sizeof(path), "%s/main.conf", tmpdir);

    text = "http {\n include conf.d/*.conf;\n include none.d/*.conf;\n}\n";
    conf = zg_conf_load_string(path, text, strlen(text), err, sizeof(err));
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    assert_int_equal(HC(conf)->nservers, 3);
    assert_string_equal(HC(conf)->servers[0].names[0], "a");
    assert_string_equal(HC(conf)->servers[1].names[0], "b");
    assert_string_equal(HC(conf)->servers[2].names[0], "c");
    zg_conf_free(conf);

    /* ? and [] are globs too; an error names the included file and its line */
    write_file("conf.d/40-d.conf", "server { bogus_directive; }\n");
    text = "http {\n include conf.d/[34]0-?.conf;\n}\n";
    assert_null(zg_conf_load_string(path, text, strlen(text), err, sizeof(err)));
    snprintf(want, sizeof(want), "unknown directive \"bogus_directive\" in %s/conf.d/40-d.conf:1",
             tmpdir);
    assert_string_equal(err, want);
}

/* every error of a config, a line each, in file order, and the block of a failed
 * block directive skipped */
static void test_all_errors(void **state)
{
    char path[300], err[8192], want[8192];
    const char *text;

    (void)state;
    write_file("e1.conf", "server {\n listen 127.0.0.1:8001;\n sub_filter a b;\n}\n");
    write_file("e2.conf", "server {\n listen 127.0.0.1:8002;\n location / { oops }\n");
    snprintf(path, sizeof(path), "%s/main.conf", tmpdir);
    text = "worker_processes abc;\n"
           "http {\n"
           " limit_req_zone $binary_remote_addr zone=a:1m rate=1r/x;\n"
           " include e1.conf;\n"
           " include e2.conf;\n"
           " server {\n"
           "  fastcgi_pass 127.0.0.1:9000;\n"
           "  location = /a { location /b { nope; } }\n"
           "  bogus_block ($x) { return 403; }\n"
           "  location / { proxy_pass http://127.0.0.1:1; bogus 1 2; }\n"
           " }\n"
           "}\n"
           "unknown_here;\n";
    assert_null(zg_conf_load_string(path, text, strlen(text), err, sizeof(err)));
    snprintf(want, sizeof(want),
             "invalid value \"abc\" in \"worker_processes\" directive in %s:1\n"
             "invalid rate \"rate=1r/x\" in \"limit_req_zone\" directive in %s:3\n"
             "directive \"sub_filter\" belongs to nginx's sub module, which zonegate does not "
             "implement in %s/e1.conf:3\n"
             "unexpected \"}\" in %s/e2.conf:3\n"
             "directive \"fastcgi_pass\" belongs to nginx's fastcgi module, which zonegate does "
             "not implement in %s:7\n"
             "location \"/b\" cannot be inside the exact location \"/a\" in %s:8\n"
             "unknown directive \"bogus_block\" in %s:9\n"
             "unknown directive \"bogus\" in %s:10\n"
             "unknown directive \"unknown_here\" in %s:13",
             path, path, tmpdir, tmpdir, path, path, path, path, path);
    if (strcmp(err, want) != 0) {
        fail_msg("got\n%s\nwant\n%s", err, want);
    }
}

static void test_nginx_modules(void **state)
{
    static const struct {
        const char *directive, *module;
    } cases[] = {
        { "fastcgi_pass", "fastcgi module" },  { "uwsgi_param", "uwsgi module" },
        { "ssl_early_data", "ssl module" },    { "http3", "http3 module" },
        { "sub_filter_types", "sub module" },       { "proxy_store", "proxy module's cache" },
        { "proxy_cache_convert_head", "proxy module's cache" }, { "sub_filter", "sub module" },
        { "mirror", "mirror module" },         { "split_clients", "split_clients module" },
        { "access_by_lua_block", "third-party lua module (OpenResty)" },
        { "userid_name", "userid module" },    { "slice", "slice module" },
    };
    char text[256], err[512], want[512];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "http {\n %s x;\n}\n", cases[i].directive);
        assert_null(zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err)));
        snprintf(want, sizeof(want),
                 "directive \"%s\" belongs to nginx's %s, which zonegate does not implement "
                 "in /x/z.conf:2", cases[i].directive, cases[i].module);
        assert_string_equal(err, want);
    }
    /* not nginx's either */
    assert_null(zg_conf_nginx_module("fastcgi", 7));
    assert_null(zg_conf_nginx_module("proxy_pass_x", 12));
    /* a block of a refused directive is skipped as a whole */
    strcpy(text, "http {\n split_clients $a $b { 50% x; * y; }\n server { nope; }\n}\n");
    assert_null(zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err)));
    assert_non_null(strstr(err, "split_clients module, which zonegate does not implement in /x/z.conf:2\n"
                                "unknown directive \"nope\" in /x/z.conf:3"));
}

static const struct {
    const char *text;
    const char *err;
} bad_confs[] = {
    { "foo;", "unknown directive \"foo\" in /x/z.conf:1" },
    { "http {\n  server {\n    listen;\n  }\n}\n",
      "invalid number of arguments in \"listen\" directive in /x/z.conf:3" },
    { "daemon;", "invalid number of arguments in \"daemon\" directive in /x/z.conf:1" },
    { "http {\n server {\n  location / { proxy_pass a b; }\n }\n}",
      "invalid number of arguments in \"proxy_pass\" directive in /x/z.conf:3" },
    { "worker_processes abc;",
      "invalid value \"abc\" in \"worker_processes\" directive in /x/z.conf:1" },
    { "worker_processes 0;", "invalid value \"0\" in \"worker_processes\" directive in /x/z.conf:1" },
    { "events {\n worker_connections -5;\n}",
      "invalid value \"-5\" in \"worker_connections\" directive in /x/z.conf:2" },
    { "http {\n\n limit_req_status abc;\n}",
      "invalid value \"abc\" in \"limit_req_status\" directive in /x/z.conf:3" },
    { "http {\n limit_req_status 200;\n}",
      "invalid value \"200\" in \"limit_req_status\" directive in /x/z.conf:2" },
    { "http {\n limit_conn_status 600;\n}",
      "invalid value \"600\" in \"limit_conn_status\" directive in /x/z.conf:2" },
    { "http {\n limit_req_log_level debug;\n}",
      "invalid value \"debug\" in \"limit_req_log_level\" directive in /x/z.conf:2" },
    { "http {\n client_max_body_size 10q;\n}",
      "invalid value \"10q\" in \"client_max_body_size\" directive in /x/z.conf:2" },
    { "http {\n proxy_read_timeout 5x;\n}",
      "invalid value \"5x\" in \"proxy_read_timeout\" directive in /x/z.conf:2" },
    { "http {\n proxy_next_upstream error http_501;\n}",
      "invalid value \"http_501\" in \"proxy_next_upstream\" directive in /x/z.conf:2" },
    { "http {\n proxy_http_version 2.0;\n}",
      "invalid value \"2.0\" in \"proxy_http_version\" directive in /x/z.conf:2" },
    { "http {\n proxy_redirect off;\n proxy_redirect / /x/;\n}",
      "\"proxy_redirect off\" cannot be used with other rules in /x/z.conf:3" },
    { "http {\n proxy_redirect ~^(/a /b;\n}",
      "pcre2_compile() failed: missing closing parenthesis in \"^(/a\" in /x/z.conf:2" },
    { "http {\n large_client_header_buffers 4 0;\n}",
      "invalid value \"0\" in \"large_client_header_buffers\" directive in /x/z.conf:2" },
    { "http {\n client_max_headers 0;\n}",
      "invalid value \"0\" in \"client_max_headers\" directive in /x/z.conf:2" },
    { "http {\n merge_slashes maybe;\n}",
      "invalid value \"maybe\" in \"merge_slashes\" directive, it must be \"on\" or \"off\" in /x/z.conf:2" },
    { "http {\n server {\n location / {\n merge_slashes off;\n }\n }\n}",
      "\"merge_slashes\" directive is not allowed here in /x/z.conf:4" },
    { "http {\n server {\n location / {\n underscores_in_headers on;\n }\n }\n}",
      "\"underscores_in_headers\" directive is not allowed here in /x/z.conf:4" },
    { "daemon maybe;",
      "invalid value \"maybe\" in \"daemon\" directive, it must be \"on\" or \"off\" in /x/z.conf:1" },
    { "daemon on;\ndaemon off;", "\"daemon\" directive is duplicate in /x/z.conf:2" },
    { "http {\n keepalive_timeout 1s;\n keepalive_timeout 2s;\n}",
      "\"keepalive_timeout\" directive is duplicate in /x/z.conf:3" },
    { "http {}\nhttp {}", "\"http\" directive is duplicate in /x/z.conf:2" },
    { "error_log /e.log loud;", "invalid value \"loud\" in \"error_log\" directive in /x/z.conf:1" },
    /* zones */
    { "http {\n limit_req_zone $uri zone=a:1x rate=1r/s;\n}",
      "invalid zone size \"zone=a:1x\" in \"limit_req_zone\" directive in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri zone=a rate=1r/s;\n}",
      "invalid zone size \"zone=a\" in \"limit_req_zone\" directive in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri zone=a:0 rate=1r/s;\n}",
      "zone \"zone=a:0\" is too small in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri zone=a:16k rate=1r/s;\n}",
      "zone \"zone=a:16k\" is too small in /x/z.conf:2" },
    { "http {\n limit_conn_zone $uri zone=a:1g;\n}",
      "invalid zone size \"zone=a:1g\" in \"limit_conn_zone\" directive in /x/z.conf:2" },
    { "http {\n upstream u { zone z 1G; server 10.0.0.1; }\n}",
      "invalid zone size \"1G\" in \"zone\" directive in /x/z.conf:2" },
    { "http {\n upstream u { zone z 8k; server 10.0.0.1; }\n}",
      "zone \"z\" is too small in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri zone=a:1m rate=abc;\n}",
      "invalid rate \"rate=abc\" in \"limit_req_zone\" directive in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri zone=a:1m rate=0r/s;\n}",
      "invalid rate \"rate=0r/s\" in \"limit_req_zone\" directive in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri zone=a:1m rate=5r/h;\n}",
      "invalid rate \"rate=5r/h\" in \"limit_req_zone\" directive in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri rate=1r/s;\n}",
      "invalid number of arguments in \"limit_req_zone\" directive in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri zone=a:1m;\n}",
      "invalid number of arguments in \"limit_req_zone\" directive in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri zone=a:1m rate=1r/s foo=bar;\n}",
      "invalid parameter \"foo=bar\" in \"limit_req_zone\" directive in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri zone=a:1m rate=1r/s;\n limit_req_zone $uri zone=a:2m rate=1r/s;\n}",
      "the size 2097152 of shared memory zone \"a\" conflicts with already declared size 1048576 in /x/z.conf:3" },
    { "http {\n limit_req_zone $uri zone=a:1m rate=1r/s;\n limit_req_zone $uri zone=a:1m rate=1r/s;\n}",
      "duplicate zone \"a\" in /x/z.conf:3" },
    { "http {\n limit_req_zone $uri zone=a:1m rate=1r/s;\n limit_conn_zone $uri zone=a:1m;\n}",
      "the shared memory zone \"a\" is already declared for a different use in /x/z.conf:3" },
    { "http {\n upstream u { zone z 0; server 10.0.0.1; }\n}",
      "zone \"z\" is too small in /x/z.conf:2" },
    { "http {\n upstream u { zone z; server 10.0.0.1; }\n}",
      "invalid number of arguments in \"zone\" directive in /x/z.conf:2" },
    /* sync URLs */
    { "http {\n limit_req_zone $uri zone=a:1m sync=http://h:1;\n}",
      "invalid sync URL \"http://h:1\" in \"limit_req_zone\" directive: redis://, "
      "redis-sentinel:// or redis-cluster:// expected in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri zone=a:1m sync=redis://h;\n}",
      "invalid sync URL \"redis://h\" in \"limit_req_zone\" directive: HOST:PORT expected in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri zone=a:1m sync=redis://h:0;\n}",
      "invalid sync URL \"redis://h:0\" in \"limit_req_zone\" directive: HOST:PORT expected in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri zone=a:1m sync=redis://h:6379/x;\n}",
      "invalid sync URL \"redis://h:6379/x\" in \"limit_req_zone\" directive: bad database number in /x/z.conf:2" },
    { "http {\n limit_req_zone $uri zone=a:1m sync=redis://:6379;\n}",
      "invalid sync URL \"redis://:6379\" in \"limit_req_zone\" directive: HOST:PORT expected in /x/z.conf:2" },
    { "http {\n limit_conn_zone $uri zone=c:1m sync=redis://h;\n}",
      "invalid sync URL \"redis://h\" in \"limit_conn_zone\" directive: HOST:PORT expected "
      "in /x/z.conf:2" },
    { "http {\n limit_conn_zone $uri zone=c:1m sync_interval=0;\n}",
      "invalid parameter \"sync_interval=0\" in \"limit_conn_zone\" directive in /x/z.conf:2" },
    /* zone references, resolved at the end */
    { "http {\n server {\n  location / {\n   limit_req zone=nope;\n  }\n }\n}",
      "unknown limit_req_zone \"nope\" in \"limit_req\" directive in /x/z.conf:4" },
    { "http {\n server {\n  limit_conn nope 1;\n }\n}",
      "unknown limit_conn_zone \"nope\" in \"limit_conn\" directive in /x/z.conf:3" },
    { "http {\n limit_req_zone $uri zone=a:1m rate=1r/s;\n limit_req zone=a;\n limit_req zone=a burst=2;\n}",
      "\"limit_req\" directive is duplicate in /x/z.conf:4" },
    { "http {\n limit_req zone=a burst=x;\n}", "invalid burst value \"burst=x\" in /x/z.conf:2" },
    { "http {\n limit_req zone=a burst=0;\n}", "invalid burst value \"burst=0\" in /x/z.conf:2" },
    { "http {\n limit_req zone=a delay=-1;\n}", "invalid delay value \"delay=-1\" in /x/z.conf:2" },
    { "http {\n limit_req burst=1;\n}",
      "\"limit_req\" must have \"zone\" parameter in /x/z.conf:2" },
    { "http {\n limit_req zone=a slow;\n}",
      "invalid parameter \"slow\" in \"limit_req\" directive in /x/z.conf:2" },
    { "http {\n limit_conn a 0;\n}", "invalid number of connections \"0\" in /x/z.conf:2" },
    /* blocks and tokens */
    { "http {\n server {\n", "unexpected end of file, expecting \"}\" in /x/z.conf:3" },
    { "worker_processes 1", "unexpected end of file, expecting \";\" or \"}\" in /x/z.conf:1" },
    { "pid \"abc", "unexpected end of file, expecting \";\" or \"}\" in /x/z.conf:1" },
    { "}\n", "unexpected \"}\" in /x/z.conf:1" },
    { "http {\n}\n}\n", "unexpected \"}\" in /x/z.conf:3" },
    { "http {\n daemon }\n", "unexpected \"}\" in /x/z.conf:2" },
    { ";", "unexpected \";\" in /x/z.conf:1" },
    { "pid \"a\"b;", "unexpected \"b\" in /x/z.conf:1" },
    { "events;", "directive \"events\" has no opening \"{\" in /x/z.conf:1" },
    { "daemon on {}", "directive \"daemon\" is not terminated by \";\" in /x/z.conf:1" },
    /* contexts */
    { "http {\n proxy_pass http://x;\n}", "\"proxy_pass\" directive is not allowed here in /x/z.conf:2" },
    { "http {\n return 200;\n}",
      "\"return\" directive is not allowed here in /x/z.conf:2" },
    { "http {\n server {\n  if ($a) { proxy_pass http://a:1; }\n }\n}",
      "\"proxy_pass\" directive is not allowed here in /x/z.conf:3" },
    { "http {\n server {\n  if (-f /x) { return 403; }\n }\n}",
      "file tests (\"-f\") in \"if\" are not supported by zonegate in /x/z.conf:3" },
    { "http {\n server {\n  if ($uri ~ \"(\") { return 403; }\n }\n}",
      "pcre2_compile() failed: missing closing parenthesis in \"(\" in /x/z.conf:3" },
    { "http {\n server {\n  if ($uri =) { return 403; }\n }\n}",
      "invalid condition \"=\" in /x/z.conf:3" },
    { "http {\n server {\n  set $uri x;\n }\n}",
      "the \"uri\" variable is built in and cannot be set in /x/z.conf:3" },
    { "http {\n server {\n  rewrite ^ /x foo;\n }\n}",
      "invalid parameter \"foo\" in /x/z.conf:3" },
    { "http {\n server {\n  location / { return 200 $undefined_here; }\n }\n}",
      "unknown \"undefined_here\" variable in /x/z.conf:3" },
    { "listen 80;", "\"listen\" directive is not allowed here in /x/z.conf:1" },
    { "events {\n error_log /e.log;\n}", "\"error_log\" directive is not allowed here in /x/z.conf:2" },
    { "http {\n error_log /e.log;\n error_log /f.log;\n}", "\"error_log\" directive is duplicate in /x/z.conf:3" },
    { "http {\n server { location / { error_log /e.log loud; } }\n}", "invalid value \"loud\" in \"error_log\" directive in /x/z.conf:2" },
    { "events {\n daemon on;\n}", "\"daemon\" directive is not allowed here in /x/z.conf:2" },
    { "http {\n upstream u {\n  listen 80;\n }\n}",
      "\"listen\" directive is not allowed here in /x/z.conf:3" },
    { "http {\n server {\n  listen 443 ssl;\n }\n}",
      "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive in /x/z.conf:3" },
    { "http {\n server {\n  listen 80 default_server quic;\n }\n}",
      "parameter \"quic\" of the \"listen\" directive belongs to nginx's http3 module, which "
      "zonegate does not implement in /x/z.conf:3" },
    { "http {\n server {\n  listen 80 so_keepalive=on;\n }\n}",
      "parameter \"so_keepalive=on\" of the \"listen\" directive belongs to nginx's socket "
      "options of listen, which zonegate does not implement in /x/z.conf:3" },
    { "http {\n server {\n  listen 80 backlog=x;\n }\n}",
      "invalid backlog \"x\" in /x/z.conf:3" },
    { "http {\n server {\n  listen 80 nonsense;\n }\n}",
      "invalid parameter \"nonsense\" in \"listen\" directive in /x/z.conf:3" },
    { "http {\n server_tokens on;\n server_tokens off;\n}",
      "\"server_tokens\" directive is duplicate in /x/z.conf:3" },
    { "http {\n server_tokens maybe;\n}",
      "invalid value \"maybe\" in \"server_tokens\" directive in /x/z.conf:2" },
    /* a ")" after a quoted word is a word of its own (nginx's `if ($a = "b")`) */
    { "http {\n server {\n  location / { return 200 \"a\")bc; }\n }\n}",
      "invalid number of arguments in \"return\" directive in /x/z.conf:3" },
    { "http {\n server {\n  location / { return 200 \"a\"x; }\n }\n}",
      "unexpected \"x\" in /x/z.conf:3" },
    /* locations */
    { "http {\n server {\n  location /x { }\n  location /x { }\n }\n}",
      "duplicate location \"/x\" in /x/z.conf:4" },
    { "http {\n server {\n  location = /x { }\n  location =/x { }\n }\n}",
      "duplicate location \"/x\" in /x/z.conf:4" },
    { "http {\n server {\n  location ~ ^(foo { }\n }\n}",
      "pcre2_compile() failed: missing closing parenthesis in \"^(foo\" in /x/z.conf:3" },
    { "http {\n server {\n  location = /x { location /x/y { } }\n }\n}",
      "location \"/x/y\" cannot be inside the exact location \"/x\" in /x/z.conf:3" },
    { "http {\n server {\n  location /x { location /y { } }\n }\n}",
      "location \"/y\" is outside location \"/x\" in /x/z.conf:3" },
    { "http {\n server {\n  location /x { location @y { } }\n }\n}",
      "named location \"@y\" can be on the server level only in /x/z.conf:3" },
    { "http {\n server {\n  location @x { location /y { } }\n }\n}",
      "location \"/y\" cannot be inside the named location \"@x\" in /x/z.conf:3" },
    { "http {\n server {\n  location /x { }\n  location ^~ /x { }\n }\n}",
      "duplicate location \"/x\" in /x/z.conf:4" },
    { "http {\n server {\n  location / { internal; internal; }\n }\n}",
      "\"internal\" directive is duplicate in /x/z.conf:3" },
    { "http {\n server {\n  internal;\n }\n}",
      "\"internal\" directive is not allowed here in /x/z.conf:3" },
    { "http {\n server {\n  server_name a.*.b;\n }\n}",
      "invalid server name or wildcard \"a.*.b\" in /x/z.conf:3" },
    { "http {\n server {\n  server_name *.a.*;\n }\n}",
      "invalid server name or wildcard \"*.a.*\" in /x/z.conf:3" },
    { "http {\n server {\n  server_name ~;\n }\n}",
      "empty regex in server name \"~\" in /x/z.conf:3" },
    { "http {\n server {\n  server_name \"~^(a\";\n }\n}",
      "pcre2_compile() failed: missing closing parenthesis in \"^(a\" in /x/z.conf:3" },
    { "http {\n server {\n  location / { return abc; }\n }\n}",
      "invalid return code \"abc\" in /x/z.conf:3" },
    { "http {\n server {\n  location / { proxy_pass http://a:1; proxy_pass http://a:1; }\n }\n}",
      "\"proxy_pass\" directive is duplicate in /x/z.conf:3" },
    { "http {\n server {\n  location / { proxy_pass https://a; }\n }\n}",
      "invalid URL prefix in \"https://a\" in /x/z.conf:3" },
    { "http {\n server {\n  location / {\n\n   proxy_pass http://nosuchhost.invalid/x;\n  }\n }\n}",
      "host not found in upstream \"nosuchhost.invalid\" in /x/z.conf:5" },
    /* upstreams */
    { "http {\n upstream u {\n }\n}", "no servers are inside upstream in /x/z.conf:2" },
    { "http {\n upstream u { server 10.0.0.1; }\n upstream u { server 10.0.0.1; }\n}",
      "duplicate upstream \"u\" in /x/z.conf:3" },
    { "http {\n upstream u {\n  server nosuchhost.invalid:80;\n }\n}",
      "host not found in upstream \"nosuchhost.invalid:80\" in /x/z.conf:3" },
    { "http {\n upstream u {\n  server 10.0.0.1 weight=0;\n }\n}",
      "invalid parameter \"weight=0\" in \"server\" directive in /x/z.conf:3" },
    { "http {\n upstream u {\n  server 10.0.0.1 fail_timeout=x;\n }\n}",
      "invalid parameter \"fail_timeout=x\" in \"server\" directive in /x/z.conf:3" },
    /* listen, server */
    { "http {\n server {\n  listen 70000;\n }\n}",
      "invalid address \"70000\" of the \"listen\" directive in /x/z.conf:3" },
    { "http {\n server {\n  listen 80 proxy_protocol;\n }\n}",
      "parameter \"proxy_protocol\" of the \"listen\" directive belongs to nginx's PROXY "
      "protocol support, which zonegate does not implement in /x/z.conf:3" },
    { "http {\n server {\n  listen 80;\n  listen 0.0.0.0:80;\n }\n}",
      "a duplicate listen 0.0.0.0:80 in /x/z.conf:4" },
    { "http {\n server { listen 80 default_server; }\n server {\n  listen 80 default_server;\n }\n}",
      "a duplicate default server for 0.0.0.0:80 in /x/z.conf:4" },
    /* access */
    { "http {\n allow 10.0.0.0/33;\n}",
      "invalid parameter \"10.0.0.0/33\" in \"allow\" directive in /x/z.conf:2" },
    { "http {\n deny example.com;\n}",
      "invalid parameter \"example.com\" in \"deny\" directive in /x/z.conf:2" },
    /* logs */
    { "http {\n log_format combined '$uri';\n}",
      "duplicate \"log_format\" name \"combined\" in /x/z.conf:2" },
    { "http {\n access_log /a.log nope;\n}", "unknown log format \"nope\" in /x/z.conf:2" },
    { "http {\n access_log /a.log;\n access_log /b.log;\n}",
      "\"access_log\" directive is duplicate in /x/z.conf:3" },
};

static void test_bad_configs(void **state)
{
    char err[512];
    zg_conf_t *conf;

    (void)state;
    for (size_t i = 0; i < sizeof(bad_confs) / sizeof(bad_confs[0]); i++) {
        err[0] = '\0';
        conf = zg_conf_load_string("/x/z.conf", bad_confs[i].text, strlen(bad_confs[i].text),
                                   err, sizeof(err));
        if (conf != NULL) {
            fail_msg("config %zu loaded: %s", i, bad_confs[i].text);
        }
        /* the first error (the ones it causes may follow, a line each) */
        if (strncmp(err, bad_confs[i].err, strlen(bad_confs[i].err)) != 0
            || (err[strlen(bad_confs[i].err)] != '\0' && err[strlen(bad_confs[i].err)] != '\n')) {
            fail_msg("config %zu:\n  got  %s\n  want %s", i, err, bad_confs[i].err);
        }
    }
}

/* messages made by other modules keep our "in FILE:LINE" */
static void test_foreign_errors(void **state)
{
    char err[512];
    const char *text;

    (void)state;
    text = "http {\n limit_req_zone $uri zone=a:8k rate=1r/s;\n}";
    assert_null(zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err)));
    assert_non_null(strstr(err, "too small"));
    assert_non_null(strstr(err, " in /x/z.conf:2"));

    text = "http {\n\n limit_conn_zone $no_such_variable zone=a:1m;\n}";
    assert_null(zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err)));
    assert_non_null(strstr(err, "no_such_variable"));
    assert_non_null(strstr(err, " in /x/z.conf:3"));

    /* a NUL byte inside a token */
    assert_null(zg_conf_load_string("/x/z.conf", "pid a\0b;", 8, err, sizeof(err)));
    assert_string_equal(err, "unexpected NUL byte in /x/z.conf:1");
}

/* user USER [GROUP] and worker_sandbox: names resolved at load, errors name the line */
static void test_user_and_sandbox(void **state)
{
    char err[512];
    zg_conf_t *conf;
    const char *text;

    (void)state;
    conf = load("worker_processes 1;\n");
    assert_null(zg_core_conf(conf)->user);
    assert_int_equal(zg_core_conf(conf)->worker_sandbox, 1);
    zg_conf_free(conf);

    conf = load("user root;\nworker_sandbox off;\n");
    assert_string_equal(zg_core_conf(conf)->user, "root");
    assert_null(zg_core_conf(conf)->group);
    assert_int_equal(zg_core_conf(conf)->user_uid, 0);
    assert_int_equal(zg_core_conf(conf)->user_gid, 0);
    assert_int_equal(zg_core_conf(conf)->worker_sandbox, 0);
    zg_conf_free(conf);

    conf = load("user root root;\n");
    assert_string_equal(zg_core_conf(conf)->group, "root");
    zg_conf_free(conf);

    text = "worker_processes 1;\nuser zg-no-such-user;\n";
    assert_null(zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err)));
    assert_string_equal(err, "unknown user \"zg-no-such-user\" in \"user\" directive "
                             "(getpwnam() failed) in /x/z.conf:2");
    text = "user root zg-no-such-group;\n";
    assert_null(zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err)));
    assert_string_equal(err, "unknown group \"zg-no-such-group\" in \"user\" directive "
                             "(getgrnam() failed) in /x/z.conf:1");
    text = "user root;\nuser root;\n";
    assert_null(zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err)));
    assert_string_equal(err, "\"user\" directive is duplicate in /x/z.conf:2");
    text = "user a b c;\n";
    assert_null(zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err)));
    assert_non_null(strstr(err, "/x/z.conf:1"));
    text = "http {\n user root;\n}\n";
    assert_null(zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err)));
    assert_non_null(strstr(err, "/x/z.conf:2"));
    text = "worker_sandbox maybe;\n";
    assert_null(zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err)));
    assert_non_null(strstr(err, "\"worker_sandbox\" directive"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_header_options),
        cmocka_unit_test(test_inherit_access_log_and_lists),
        cmocka_unit_test(test_tokenizer),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_rate_and_burst),
        cmocka_unit_test(test_include_errors),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_user_and_sandbox),
        cmocka_unit_test(test_foreign_errors),
        cmocka_unit_test(test_include_glob),
        cmocka_unit_test(test_all_errors),
        cmocka_unit_test(test_nginx_modules),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
