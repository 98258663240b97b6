/* zg_modules.c — the one list of every module, in the order their directives are
 * looked up, their hooks run, and, within a phase, their phase handlers run.
 * Adding a module is its file plus one line here. */
#include "zg_access.h"
#include "zg_access_log.h"
#include "zg_admin.h"
#include "zg_api.h"
#include "zg_auth_basic.h"
#include "zg_auth_request.h"
#include "zg_charset.h"
#include "zg_cache.h"
#include "zg_core_module.h"
#include "zg_dashboard.h"
#include "zg_error_page.h"
#include "zg_geo.h"
#include "zg_gunzip.h"
#include "zg_gzip.h"
#include "zg_headers.h"
#include "zg_http_core.h"
#include "zg_keyval.h"
#include "zg_limit_conn.h"
#include "zg_limit_rate.h"
#include "zg_limit_req.h"
#include "zg_map.h"
#include "zg_proc_tune.h"
#include "zg_proxy.h"
#include "zg_proxy_shape.h"
#include "zg_proxy_buffer.h"
#include "zg_realip.h"
#include "zg_rewrite.h"
#include "zg_stream.h"
#include "zg_stream_proxy.h"
#include "zg_stream_status.h"
#include "zg_ssl.h"
#include "zg_static.h"
#include "zg_sync.h"
#include "zg_upstream.h"

zg_module_t *const zg_modules[] = {
    &zg_core_module,       /* main, events: processes, pid, error_log */
    &zg_http_core_module,  /* http, server, listen, location, client timeouts */
    &zg_proc_tune_module,  /* worker_cpu_affinity, worker_shutdown_timeout, ... */
    &zg_ssl_module,        /* ssl_certificate, ...: the SSL_CTX of each server; the
                              client certificate check, before any other handler */
    &zg_realip_module,     /* real_ip: the client address, first thing (rewrite phases) */
    &zg_map_module,        /* map: variables from variables */
    &zg_geo_module,        /* geo: variables from the client address */
    &zg_keyval_module,     /* keyval zones and their variables */
    &zg_cache_module,      /* proxy_cache: wraps proxy_pass's content handler; its filter
                              sees the upstream's head and body before add_header, gzip */
    &zg_headers_module,    /* add_header (its rewrite-phase handler runs before return) */
    &zg_stream_status_module, /* stream status_zone: first, to count every session */
    &zg_limit_req_module,  /* preaccess: limit_req (before limit_conn, as nginx) */
    &zg_limit_conn_module, /* preaccess: limit_conn */
    &zg_limit_rate_module, /* preaccess, after the limits: limit_rate's send budget */
    &zg_access_module,     /* access: allow, deny */
    &zg_auth_basic_module, /* access: auth_basic, after allow/deny */
    &zg_auth_request_module, /* access: auth_request, after auth_basic (nginx's order) */
    &zg_error_page_module, /* error_page: status pages become internal redirects */
    &zg_upstream_module,   /* upstream blocks, peers */
    &zg_proxy_module,      /* content: proxy_pass */
    &zg_proxy_shape_module, /* the proxy's request and answer: headers, redirects */
    &zg_proxy_buffer_module, /* proxy_buffering, proxy_request_buffering: the proxy's
                              buffers and temp files */
    &zg_admin_module,      /* content: slab_stat, metrics */
    &zg_api_module,        /* content: api */
    &zg_dashboard_module,  /* content: dashboard (a page over the api) */
    &zg_gunzip_module,     /* response filter: gunzip (before gzip, as nginx) */
    &zg_charset_module,    /* header filter: charset (after expires and gunzip, before
                              gzip: nginx's order) */
    &zg_gzip_module,       /* response filter: gzip */
    &zg_static_module,     /* content: root, alias, index, try_files, types (where no
                              other handler is set; after http_core, which merges the
                              levels it walks) */
    &zg_access_log_module, /* log: log_format, access_log */
    &zg_sync_module,       /* limit_req across hosts through Redis */
    &zg_stream_core_module,  /* stream, its servers and listen; the session phases */
    &zg_stream_proxy_module, /* stream content: proxy_pass, relay */
    &zg_rewrite_module,    /* rewrite phases (after real_ip, add_header): return, rewrite,
                              set, if, break; last, so that the `if` blocks of locations
                              merge after every other module resolved its references */
    NULL
};
