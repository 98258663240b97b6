/* test_http_core.c — finding a request's server (server_name priority) and location
 * (nginx's matching order, nested, named and internal locations). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "zg_conf.h"
#include "zg_http_core.h"

static zg_conf_t *load(const char *text)
{
    char err[512];
    zg_conf_t *conf;

    zg_conf_no_resolve = 1;
    conf = zg_conf_load_string("/x/z.conf", text, strlen(text), err, sizeof(err));
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    return conf;
}

/* which location answers uri, as "= /x", "^~ /x", "~ re", "~* re", "/x", or "none" */
static const char *where(const zg_server_conf_t *srv, const char *uri, zg_regex_caps_t *caps)
{
    static char buf[256];
    const zg_location_t *loc = zg_http_find_location(srv, uri, strlen(uri), caps);

    if (loc == NULL) {
        return "none";
    }
    snprintf(buf, sizeof(buf), "%s%s",
             loc->exact     ? "= "
             : loc->noregex ? "^~ "
             : loc->regex   ? (strcmp(zg_regex_pattern(loc->regex), loc->path) == 0 ? "~ " : "?")
                            : "",
             loc->path);
    return buf;
}

static const char order_conf[] =
    "http {\n"
    " server {\n"
    "  location = / { }\n"
    "  location / { }\n"
    "  location /documents/ { }\n"
    "  location ^~ /images/ { }\n"
    "  location ~* \\.(gif|jpg|jpeg)$ { }\n"
    "  location ~ ^/documents/(\\w+)\\.pdf$ { }\n"
    "  location /api/ {\n"
    "   location ~ ^/api/v(\\d)/ { }\n"
    "   location /api/admin/ { internal; location /api/admin/x { } }\n"
    "  }\n"
    "  location ~ ^/api/o { }\n"
    "  location ^~ /static/ { location ~ \\.css$ { } }\n"
    "  location @fallback { }\n"
    " }\n"
    "}\n";

/* the example of nginx's documentation, and more */
static void test_location_order(void **state)
{
    zg_conf_t *conf = load(order_conf);
    zg_server_conf_t *s = &zg_http_core_main_conf(conf)->servers[0];
    zg_regex_caps_t caps;

    (void)state;
    memset(&caps, 0, sizeof(caps));
    assert_string_equal(where(s, "/", NULL), "= /");
    assert_string_equal(where(s, "/index.html", NULL), "/");
    assert_string_equal(where(s, "/documents/document.html", NULL), "/documents/");
    /* ^~ stops the regexes */
    assert_string_equal(where(s, "/images/1.gif", NULL), "^~ /images/");
    /* a regex beats a longer prefix without ^~ */
    assert_string_equal(where(s, "/documents/1.jpg", NULL), "~ \\.(gif|jpg|jpeg)$");
    assert_string_equal(where(s, "/x/1.JPG", NULL), "~ \\.(gif|jpg|jpeg)$");
    /* ~ is case-sensitive, ~* not */
    assert_string_equal(where(s, "/documents/A.PDF", NULL), "/documents/");
    /* regexes in config order: the first that matches wins */
    assert_string_equal(where(s, "/documents/a.pdf", &caps), "~ ^/documents/(\\w+)\\.pdf$");
    assert_int_equal(zg_regex_cap(&caps, 1).len, 1);
    assert_memory_equal(zg_regex_cap(&caps, 1).data, "a", 1);
    /* nested: the nested regex first, then the nested prefix, then the outer regex */
    assert_string_equal(where(s, "/api/v2/users", &caps), "~ ^/api/v(\\d)/");
    assert_memory_equal(zg_regex_cap(&caps, 1).data, "2", 1);
    assert_string_equal(where(s, "/api/admin/x/y", NULL), "/api/admin/x");
    assert_string_equal(where(s, "/api/admin/", NULL), "/api/admin/");
    assert_string_equal(where(s, "/api/other", NULL), "~ ^/api/o");
    /* a nested prefix does not stop the outer regexes */
    assert_string_equal(where(s, "/api/admin/o", NULL), "/api/admin/");
    assert_string_equal(where(s, "/api/o/admin/x", NULL), "~ ^/api/o");
    /* nested regexes run under a ^~ location */
    assert_string_equal(where(s, "/static/a.css", NULL), "~ \\.css$");
    assert_string_equal(where(s, "/static/a.gif", NULL), "^~ /static/");
    /* named locations are not matched by URI */
    assert_string_equal(where(s, "@fallback", NULL), "none");
    zg_conf_free(conf);
}

static void test_named_internal(void **state)
{
    zg_conf_t *conf = load(order_conf);
    zg_server_conf_t *s = &zg_http_core_main_conf(conf)->servers[0];
    zg_location_t *loc;

    (void)state;
    loc = zg_http_core_find_named(s, "@fallback", 9);
    assert_non_null(loc);
    assert_true(loc->named);
    assert_ptr_equal(zg_http_core_find_named(s, "fallback", 8), loc);
    assert_null(zg_http_core_find_named(s, "@fall", 5));
    assert_null(zg_http_core_find_named(s, "@other", 6));
    /* internal is inherited by nested locations */
    loc = zg_http_find_location(s, "/api/admin/x", 12, NULL);
    assert_int_equal(zg_http_core_loc_conf(loc->loc_conf)->internal, 1);
    assert_ptr_equal(loc->parent, zg_http_find_location(s, "/api/admin/", 11, NULL));
    loc = zg_http_find_location(s, "/api/", 5, NULL);
    assert_int_equal(zg_http_core_loc_conf(loc->loc_conf)->internal, 0);
    zg_conf_free(conf);
}

/* nginx's auto redirect: a proxied "/x/" answers "/x" with a 301, unless "/x" exists */
static void test_auto_redirect(void **state)
{
    zg_conf_t *conf = load("http {\n server {\n"
                           "  location / { }\n"
                           "  location /a/ { proxy_pass http://127.0.0.1:1; }\n"
                           "  location /b/ { return 200; }\n"
                           "  location /c { }\n"
                           "  location /c/ { proxy_pass http://127.0.0.1:1; }\n"
                           "  location ~ ^/a$ { }\n"
                           " }\n}\n");
    zg_server_conf_t *s = &zg_http_core_main_conf(conf)->servers[0];
    zg_location_t *loc;
    int redirect;

    (void)state;
    loc = zg_http_core_find_location(s, "/a", 2, NULL, &redirect);
    assert_int_equal(redirect, 1); /* before any regex */
    assert_string_equal(loc->path, "/a/");
    loc = zg_http_core_find_location(s, "/a/", 3, NULL, &redirect);
    assert_int_equal(redirect, 0);
    assert_string_equal(loc->path, "/a/");
    loc = zg_http_core_find_location(s, "/b", 2, NULL, &redirect);
    assert_int_equal(redirect, 0); /* not a proxy */
    assert_string_equal(loc->path, "/");
    loc = zg_http_core_find_location(s, "/c", 2, NULL, &redirect);
    assert_int_equal(redirect, 0); /* "/c" exists */
    assert_string_equal(loc->path, "/c");
    zg_conf_free(conf);
}

static const char names_conf[] =
    "http {\n"
    " server { listen 127.0.0.1:8000; server_name first; }\n"
    " server { listen 127.0.0.1:8000; server_name example.com www.example.com; }\n"
    " server { listen 127.0.0.1:8000; server_name *.example.com; }\n"
    " server { listen 127.0.0.1:8000; server_name *.a.example.com; }\n"
    " server { listen 127.0.0.1:8000; server_name www.example.*; }\n"
    " server { listen 127.0.0.1:8000; server_name www.*; }\n"
    " server { listen 127.0.0.1:8000; server_name .example.org; }\n"
    " server { listen 127.0.0.1:8000; server_name ~^(www\\.)?(?<d>.+)\\.net$; }\n"
    " server { listen 127.0.0.1:8000; server_name ~^.*\\.net$ \"\"; }\n"
    " server { listen 127.0.0.1:8000 default_server; server_name dflt; }\n"
    "}\n";

static int srv_of(zg_conf_t *conf, const char *host, zg_regex_caps_t *caps)
{
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(conf);
    zg_server_conf_t *s = zg_http_find_server(&cmcf->listens[0], host, strlen(host), caps);

    return (int)(s - cmcf->servers);
}

static void test_server_name_priority(void **state)
{
    zg_conf_t *conf = load(names_conf);
    zg_regex_caps_t caps;
    zg_str_t d;

    (void)state;
    memset(&caps, 0, sizeof(caps));
    /* exact first, even over wildcards that match */
    assert_int_equal(srv_of(conf, "www.example.com", NULL), 1);
    assert_int_equal(srv_of(conf, "EXAMPLE.com:8000", NULL), 1);
    /* the longest leading wildcard */
    assert_int_equal(srv_of(conf, "x.example.com", NULL), 2);
    assert_int_equal(srv_of(conf, "x.y.example.com", NULL), 2);
    assert_int_equal(srv_of(conf, "x.a.example.com", NULL), 3);
    assert_int_equal(srv_of(conf, "a.example.com", NULL), 2);
    /* leading before trailing, the longest trailing next */
    assert_int_equal(srv_of(conf, "www.example.org", NULL), 6);
    assert_int_equal(srv_of(conf, "www.example.net", NULL), 4);
    assert_int_equal(srv_of(conf, "www.other.de", NULL), 5);
    /* .example.org: the name itself and its subdomains */
    assert_int_equal(srv_of(conf, "example.org", NULL), 6);
    assert_int_equal(srv_of(conf, "b.example.org", NULL), 6);
    assert_int_equal(srv_of(conf, "xexample.org", NULL), 9);
    /* regexes last, the first in config order, with captures */
    assert_int_equal(srv_of(conf, "www.site.net", NULL), 5); /* www.* first */
    assert_int_equal(srv_of(conf, "site.net", &caps), 7);
    assert_null(zg_regex_cap(&caps, 1).data);
    d = zg_regex_cap_named(&caps, "d", 1);
    assert_int_equal(d.len, 4);
    assert_memory_equal(d.data, "site", 4);
    /* no Host: the server named "" */
    assert_int_equal(srv_of(conf, "", NULL), 8);
    /* no match: the default server */
    assert_int_equal(srv_of(conf, "nothing.de", NULL), 9);
    assert_int_equal(srv_of(conf, "example", NULL), 9);
    zg_conf_free(conf);
}

static void test_listen_tuning_accepted(void **state)
{
    zg_conf_t *conf = load("http {\n server {\n"
                           "  listen 127.0.0.1:8000 default_server reuseport backlog=511 deferred;\n"
                           "  listen [::1]:8000 ipv6only=on bind;\n"
                           " }\n}\n");

    (void)state;
    assert_int_equal(zg_http_core_main_conf(conf)->nlistens, 2);
    zg_conf_free(conf);
}

static void test_default_server_first(void **state)
{
    zg_conf_t *conf = load("http {\n"
                           " server { listen 127.0.0.1:8000; server_name a; }\n"
                           " server { listen 127.0.0.1:8000; server_name ~^b; }\n"
                           "}\n");

    (void)state;
    assert_int_equal(srv_of(conf, "zzz", NULL), 0);
    assert_int_equal(srv_of(conf, "bbb", NULL), 1);
    zg_conf_free(conf);
    /* a single server with a regex still runs it, for its captures */
    conf = load("http {\n server { listen 127.0.0.1:8000; server_name ~^(x)y$; }\n}\n");
    {
        zg_regex_caps_t caps;
        memset(&caps, 0, sizeof(caps));
        assert_int_equal(srv_of(conf, "xy", &caps), 0);
        assert_int_equal(zg_regex_cap(&caps, 1).len, 1);
        assert_int_equal(srv_of(conf, "other", NULL), 0);
    }
    zg_conf_free(conf);
}

/* error_log at http, server and location level: inherited until a level sets its own */
static void test_error_log_levels(void **state)
{
    zg_conf_t *conf = load("error_log /var/log/main.log;\n"
                           "http {\n"
                           " server { listen 127.0.0.1:8000; location / { } }\n"
                           " server { listen 127.0.0.1:8001; error_log stderr info;\n"
                           "  location / { } location /e { error_log logs/e.log warn; } }\n"
                           " server { listen 127.0.0.1:8002; location /f { error_log /var/log/e.log warn; }\n"
                           "  location /g { error_log /var/log/e.log warn; } }\n"
                           "}\n");
    zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(conf);
    const zg_log_target_t *t;
    int n = 0;

    (void)state;
    assert_null(zg_http_core_loc_conf(cmcf->servers[0].locations[0].loc_conf)->error_log);
    t = zg_http_core_loc_conf(cmcf->servers[1].locations[0].loc_conf)->error_log;
    assert_non_null(t);
    assert_string_equal(t->path, "stderr");
    assert_int_equal(t->level, ZG_LOG_INFO);
    assert_int_equal(t->fd, 2);
    t = zg_http_core_loc_conf(cmcf->servers[1].locations[1].loc_conf)->error_log;
    assert_string_equal(t->path, "/x/logs/e.log");
    assert_int_equal(t->level, ZG_LOG_WARN);
    assert_int_equal(t->fd, -1); /* opened by the master, not by loading */
    /* the same file and level: one log */
    assert_ptr_equal(zg_http_core_loc_conf(cmcf->servers[2].locations[0].loc_conf)->error_log,
                     zg_http_core_loc_conf(cmcf->servers[2].locations[1].loc_conf)->error_log);
    for (t = cmcf->error_logs; t != NULL; t = t->next) {
        n++;
    }
    assert_int_equal(n, 3);
    zg_conf_free(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_location_order),
        cmocka_unit_test(test_named_internal),
        cmocka_unit_test(test_auto_redirect),
        cmocka_unit_test(test_server_name_priority),
        cmocka_unit_test(test_default_server_first),
        cmocka_unit_test(test_listen_tuning_accepted),
        cmocka_unit_test(test_error_log_levels),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
