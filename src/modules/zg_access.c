/* zg_access.c — allow / deny rules (first match wins), checked in the access
 * phase, after the limits, as nginx's access phase follows preaccess. */
#include "zg_access.h"

#include "zg_log.h"
#include "zg_stream.h"

#include <arpa/inet.h>
#include <string.h>

#include "zg_request.h"

static int zg_access_rule(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_access_loc_conf_t *alcf = conf;
    zg_access_rule_t *r, rule;
    zg_str_t *a = cf->args;
    char buf[64];
    const char *slash;
    size_t alen;
    int bits, maxbits;

    (void)cmd;
    memset(&rule, 0, sizeof(rule));
    rule.deny = cf->name[0] == 'd';
    if (zg_conf_eq(&a[1], "unix:")) {
        rule.family = AF_UNIX; /* every unix socket client, as nginx */
    } else if (!zg_conf_eq(&a[1], "all")) {
        slash = memchr(a[1].data, '/', a[1].len);
        alen = slash != NULL ? (size_t)(slash - a[1].data) : a[1].len;
        if (alen == 0 || alen >= sizeof(buf)) {
            return zg_conf_bad_param(cf, &a[1]);
        }
        memcpy(buf, a[1].data, alen);
        buf[alen] = '\0';
        if (inet_pton(AF_INET, buf, rule.addr) == 1) {
            rule.family = AF_INET;
            maxbits = 32;
        } else if (inet_pton(AF_INET6, buf, rule.addr) == 1) {
            rule.family = AF_INET6;
            maxbits = 128;
        } else {
            return zg_conf_bad_param(cf, &a[1]);
        }
        bits = maxbits;
        if (slash != NULL) {
            bits = zg_conf_atoi(slash + 1, (size_t)(a[1].data + a[1].len - slash - 1));
            if (bits < 0 || bits > maxbits) {
                return zg_conf_bad_param(cf, &a[1]);
            }
        }
        for (int i = 0; i < maxbits / 8; i++) {
            int b = bits - i * 8;
            rule.mask[i] = b >= 8 ? 0xff : b <= 0 ? 0 : (unsigned char)(0xff << (8 - b));
            rule.addr[i] &= rule.mask[i];
        }
    }
    r = zg_conf_push(cf->conf, alcf->rules, alcf->nrules);
    if (r == NULL) {
        return zg_conf_nomem(cf);
    }
    *r = rule;
    return ZG_OK;
}

static void *zg_access_create_conf(zg_conf_t *conf)
{
    zg_access_loc_conf_t *alcf = zg_conf_alloc(conf, sizeof(*alcf));

    if (alcf != NULL) {
        alcf->nrules = -1;
    }
    return alcf;
}

static int zg_access_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_access_loc_conf_t *p = parent, *c = child;

    (void)cf;
    if (c->nrules < 0) {
        c->rules = p->rules;
        c->nrules = p->nrules < 0 ? 0 : p->nrules;
    }
    return ZG_OK;
}

/* first match wins: ZG_OK (allow), 403 (deny), ZG_DECLINED (no rule matched) */
static int zg_access_check(const zg_access_loc_conf_t *alcf, const struct sockaddr *sa)
{
    const unsigned char *a = NULL;
    size_t alen = 0;
    int family = sa->sa_family;

    if (family == AF_INET) {
        a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        alen = 4;
    } else if (family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        a = s6->sin6_addr.s6_addr;
        alen = 16;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            family = AF_INET;
            a += 12;
            alen = 4;
        }
    }
    for (int i = 0; i < alcf->nrules; i++) {
        const zg_access_rule_t *rule = &alcf->rules[i];
        if (rule->family != 0) {
            if (rule->family != family || (a == NULL && family != AF_UNIX)) {
                continue;
            }
            size_t k;
            for (k = 0; k < alen; k++) {
                if ((a[k] & rule->mask[k]) != rule->addr[k]) {
                    break;
                }
            }
            if (k < alen) {
                continue;
            }
        }
        return rule->deny ? 403 : ZG_OK;
    }
    return ZG_DECLINED;
}

/* access phase: the request core answers a 403 (or combines it, satisfy any) */
static int zg_access_handler(zg_request_t *r)
{
    zg_access_loc_conf_t *alcf = zg_access_loc_conf(r->loc_conf);

    if (alcf->nrules == 0) {
        return ZG_DECLINED;
    }
    return zg_access_check(alcf, r->ctx.remote);
}

/* stream access phase: a denied session is closed (status 403) */
static int zg_access_stream_handler(zg_stream_session_t *s)
{
    zg_access_loc_conf_t *alcf = zg_stream_conf(s, zg_access_module);
    char addr[64];

    if (alcf->nrules == 0 || zg_access_check(alcf, s->vars.remote) != 403) {
        return ZG_DECLINED;
    }
    zg_log_error(ZG_LOG_ERR, 0, "access forbidden by rule, client: %s, server: %s",
                 zg_stream_addr_text(s, addr, sizeof(addr)), s->ls->addr.text);
    zg_stream_finalize(s, ZG_STREAM_FORBIDDEN);
    return ZG_DONE;
}

static const zg_command_t zg_access_commands[] = {
    { "allow", ZG_CTX_SETTINGS | ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_access_rule, ZG_LOC_CONF,
      0, NULL },
    { "deny", ZG_CTX_SETTINGS | ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_access_rule, ZG_LOC_CONF,
      0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_access_module = {
    .name = "access",
    .commands = zg_access_commands,
    .create_loc_conf = zg_access_create_conf,
    .merge_loc_conf = zg_access_merge_conf,
    .phase = ZG_PHASE_ACCESS,
    .handler = zg_access_handler,
    .stream_phase = ZG_STREAM_PHASE_ACCESS,
    .stream_handler = zg_access_stream_handler,
};
