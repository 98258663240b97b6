/* zg_conf_nginx.c — the directives of nginx's modules that zonegate does not
 * implement, and the module each belongs to: an nginx config being ported gets
 * "directive "fastcgi_pass" belongs to nginx's fastcgi module, which zonegate does
 * not implement" instead of "unknown directive".  The one place that lists them;
 * a directive a zonegate module implements is found before this table is read. */
#include "zg_conf.h"

#include <string.h>

typedef struct {
    const char *name;   /* a directive; "prefix*" for every directive so named */
    const char *module; /* as the message names it */
} zg_conf_nginx_t;

static const zg_conf_nginx_t zg_conf_nginx[] = {
    /* other upstream protocols */
    { "fastcgi_*", "fastcgi module" },
    { "uwsgi_*", "uwsgi module" },
    { "scgi_*", "scgi module" },
    { "grpc_*", "grpc module" },
    { "memcached_*", "memcached module" },
    /* TLS and newer HTTP versions */
    { "ssl", "ssl module" },
    { "ssl_*", "ssl module" },
    { "proxy_ssl*", "proxy module's TLS to upstreams" },
    { "http2", "http2 module" },
    { "http2_*", "http2 module" },
    { "http3", "http3 module" },
    { "http3_*", "http3 module" },
    { "quic_*", "http3 module" },
    /* response filters */
    { "sub_filter", "sub module" },
    { "sub_filter_*", "sub module" },
    { "ssi", "ssi module" },
    { "ssi_*", "ssi module" },
    { "addition_types", "addition module" },
    { "add_before_body", "addition module" },
    { "add_after_body", "addition module" },
    { "charset_map", "charset module's conversion" },
    { "override_charset", "charset module's conversion" },
    { "source_charset", "charset module's conversion" },
    { "image_filter*", "image_filter module" },
    { "xslt_*", "xslt module" },
    { "more_set_headers", "third-party headers-more module" },
    { "more_clear_headers", "third-party headers-more module" },
    /* caching and buffering of the proxy */
    { "proxy_cache_*", "proxy module's cache" }, /* those zg_cache.c does not implement */
    { "proxy_store", "proxy module's cache" },
    { "proxy_store_access", "proxy module's cache" },
    /* static files */
    { "autoindex", "autoindex module" },
    { "autoindex_*", "autoindex module" },
    { "sendfile_max_chunk", "static file serving (sendfile)" },
    { "aio", "static file serving" },
    { "directio", "static file serving" },
    { "dav_*", "dav module" },
    { "create_full_put_path", "dav module" },
    { "flv", "flv module" },
    { "mp4", "mp4 module" },
    { "mp4_*", "mp4 module" },
    { "random_index", "random_index module" },
    { "empty_gif", "empty_gif module" },
    /* request routing and identification */
    { "mirror", "mirror module" },
    { "mirror_request_body", "mirror module" },
    { "slice", "slice module" },
    { "split_clients", "split_clients module" },
    { "userid", "userid module" },
    { "userid_*", "userid module" },
    { "auth_jwt*", "auth_jwt module (NGINX Plus)" },
    { "secure_link", "secure_link module" },
    { "secure_link_*", "secure_link module" },
    { "valid_referers", "referer module" },
    { "referer_hash_*", "referer module" },
    { "ancient_browser*", "browser module" },
    { "modern_browser*", "browser module" },
    { "geoip_*", "geoip module" },
    { "geoip2", "third-party geoip2 module" },
    { "stub_status", "stub_status module" },
    { "limit_except", "core module's limit_except" },
    { "resolver", "core module's resolver" },
    { "resolver_timeout", "core module's resolver" },
    /* scripting */
    { "perl*", "perl module" },
    { "js_*", "njs module" },
    { "*_by_lua*", "third-party lua module (OpenResty)" },
    { "lua_*", "third-party lua module (OpenResty)" },
    /* other protocols and process tuning */
    { "mail", "mail module" },
    { "load_module", "dynamic modules" },
    { "env", "core module's env" },
    { "thread_pool", "core module's thread pools" },
    { "worker_priority", "core module's process tuning" },
    { "client_body_in_*", "core module's request body buffering" },
    { "keepalive_disable", "core module's keepalive_disable" },
    { "reset_timedout_connection", "core module's reset_timedout_connection" },
    { "lingering_*", "core module's lingering close" },
    { "log_subrequest", "core module's log_subrequest" },
    { "open_log_file_cache", "log module's open_log_file_cache" },
};

const char *zg_conf_nginx_module(const char *name, size_t len)
{
    for (size_t i = 0; i < zg_nelems(zg_conf_nginx); i++) {
        const char *p = zg_conf_nginx[i].name, *star = strchr(p, '*');
        size_t n = strlen(p);

        if (star == NULL) {
            if (n == len && memcmp(p, name, len) == 0) {
                return zg_conf_nginx[i].module;
            }
        } else if (star == p) {
            /* "*_by_lua*": contains the middle part */
            const char *mid = p + 1;
            size_t mlen = n - 2;
            for (size_t k = 0; k + mlen <= len; k++) {
                if (memcmp(name + k, mid, mlen) == 0) {
                    return zg_conf_nginx[i].module;
                }
            }
        } else if (len >= (size_t)(star - p) && memcmp(p, name, (size_t)(star - p)) == 0) {
            return zg_conf_nginx[i].module;
        }
    }
    return NULL;
}
