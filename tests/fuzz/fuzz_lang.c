/* fuzz_lang.c — libFuzzer: request header bytes through the variables and modules of
 * the config language that read them: $cookie_NAME, $proxy_add_x_forwarded_for, map
 * (exact, hostnames, regexes with captures), geo (with proxy_recursive, reading
 * X-Forwarded-For), real_ip's address search, and a rewrite's URI/args split.  The
 * input is "Name: value" lines; the first line's value is also the URI.  Invariants:
 *   - $proxy_add_x_forwarded_for ends with the client address;
 *   - real_ip finds an IPv4 or IPv6 address, or nothing;
 *   - a variable read twice in a request gives the same value (it is cached). */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zg_conf.h"
#include "zg_http_core.h"
#include "zg_realip.h"
#include "zg_rewrite.h"
#include "zg_vars.h"

static const char fz_conf_text[] =
    "http {\n"
    "  set_real_ip_from 10.0.0.0/8; set_real_ip_from ::1; real_ip_recursive on;\n"
    "  real_ip_header X-Forwarded-For;\n"
    "  map $http_host $m { hostnames; default d; *.example.com w; www.ex.* p;\n"
    "    ~^(?<sub>[a-z]+)\\.(\\d+)$ r-$sub-$2; a.b e; }\n"
    "  geo $g { default 0; proxy 10.0.0.0/8; proxy_recursive; 192.168.0.0/16 1;\n"
    "    2001:db8::/32 6; }\n"
    "  geo $http_x_ip $r { ranges; default n; 1.0.0.0-1.255.255.255 one; }\n"
    "  server { listen 127.0.0.1:1; }\n"
    "}\n";

static const char fz_value[] =
    "$cookie_a|$cookie_sid|$proxy_add_x_forwarded_for|$m|$g|$r|$1|$http_cookie|$http_x_forwarded_for";

static zg_conf_t *fz_conf;
static zg_cv_t *fz_cv;

static void fz_init(void)
{
    char err[512];

    zg_conf_no_resolve = 1;
    fz_conf = zg_conf_load_string("fuzz.conf", fz_conf_text, sizeof(fz_conf_text) - 1, err,
                                  sizeof(err));
    if (fz_conf == NULL) {
        abort();
    }
    fz_cv = zg_cv_compile_vars(zg_conf_vars(fz_conf), fz_value, sizeof(fz_value) - 1, NULL, 0,
                               err, sizeof(err));
    if (fz_cv == NULL) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zg_str_t names[32], values[32];
    size_t n = 0, i = 0;
    const char *p = (const char *)data, *end = p + size;
    static char buf1[4096], buf2[4096];
    struct sockaddr_in sin;
    struct sockaddr_storage ss;
    zg_regex_caps_t caps;
    zg_var_ctx_t ctx;
    size_t l1, l2;

    if (fz_conf == NULL) {
        fz_init();
    }
    while (p < end && n < 32) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon != NULL) {
            names[n].data = p;
            names[n].len = (size_t)(colon - p);
            values[n].data = colon + 1 < le && colon[1] == ' ' ? colon + 2 : colon + 1;
            values[n].len = (size_t)(le - values[n].data);
            n++;
        }
        p = nl ? nl + 1 : end;
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, size && (data[0] & 1) ? "10.1.2.3" : "127.0.0.1", &sin.sin_addr);
    memset(&ctx, 0, sizeof(ctx));
    memset(&caps, 0, sizeof(caps));
    ctx.remote = (const struct sockaddr *)&sin;
    ctx.hdr_names = names;
    ctx.hdr_values = values;
    ctx.nhdrs = n;
    ctx.vars = zg_conf_vars(fz_conf);
    ctx.caps = &caps;
    ctx.local_fd = -1;
    if (n > 0) {
        ctx.uri = values[0];
    }

    l1 = zg_cv_eval(fz_cv, &ctx, 0, buf1, sizeof(buf1));
    l2 = zg_cv_eval(fz_cv, &ctx, 0, buf2, sizeof(buf2));
    if (l1 != l2 || memcmp(buf1, buf2, l1 < sizeof(buf1) ? l1 : sizeof(buf1)) != 0) {
        abort();
    }
    {
        static const char xff[] = "$proxy_add_x_forwarded_for";
        char err[64], out[8192];
        zg_cv_t *cv = zg_cv_compile(xff, sizeof(xff) - 1, err, sizeof(err));
        size_t k = zg_cv_eval(cv, &ctx, 0, out, sizeof(out));
        const char *addr = (data[0] & 1) ? "10.1.2.3" : "127.0.0.1";
        size_t al = strlen(addr);
        if (k < sizeof(out) && (k < al || memcmp(out + k - al, addr, al) != 0)) {
            abort();
        }
        zg_cv_free(cv);
    }
    zg_var_ctx_free(&ctx);

    {
        const zg_realip_loc_conf_t *rl = zg_conf_module(
            zg_http_core_main_conf(fz_conf)->servers[0].loc_conf, zg_realip_module);
        if (zg_realip_find(rl, (const struct sockaddr *)&sin, values, n, &ss) == ZG_OK
            && ss.ss_family != AF_INET && ss.ss_family != AF_INET6) {
            abort();
        }
    }
    for (i = 0; i < n; i++) {
        zg_str_t uri, args;
        int join;
        zg_rewrite_split(&values[i], &names[i], &uri, &args, &join);
        if (uri.len > values[i].len || (join && (args.len == 0 || names[i].len == 0))) {
            abort();
        }
    }
    return 0;
}
