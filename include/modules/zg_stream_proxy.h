/* zg_stream_proxy.h — the stream proxy module (nginx's ngx_stream_proxy_module):
 * proxy_pass to a stream upstream, connect with fail-over to the next peer, then
 * relay bytes both ways with back-pressure, half-close and an inactivity timeout. */
#ifndef ZG_STREAM_PROXY_H
#define ZG_STREAM_PROXY_H

#include "zg_conf.h"
#include "zg_upstream.h"

/* a direction stops reading while this many bytes wait to be written the other way */
#define ZG_STREAM_PROXY_HIGH (256 * 1024)
#define ZG_STREAM_PROXY_CHUNK (64 * 1024) /* one read */

typedef struct {
    zg_upstream_conf_t *upstream;         /* resolved after parsing */
    zg_str_t pass;                        /* proxy_pass NAME|ADDR; data NULL = none */
    const char *pass_file;
    int pass_line;
    zg_msec_t connect_timeout;            /* 60s */
    zg_msec_t timeout;                    /* proxy_timeout 10m */
    int next_upstream;                    /* on */
    int next_upstream_tries;              /* 0 = every peer */
    zg_msec_t next_upstream_timeout;      /* 0 = no limit */
    int half_close;                       /* proxy_half_close off */
    int proxy_protocol;                   /* 0 off, 1 (on) v1 header, 2 v2 header */
    int64_t upload_rate;                  /* proxy_upload_rate, bytes/s from the client; 0 */
    int64_t download_rate;                /* proxy_download_rate, bytes/s to the client; 0 */
    int splice;                           /* proxy_splice on: relay with splice(2) */
} zg_stream_proxy_conf_t;

extern zg_module_t zg_stream_proxy_module;

#endif
