/* test_admin.c — /slab_stat blocks and /metrics text, checked by a strict
 * Prometheus text-format (0.0.4) checker and for known values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_admin.h"
#include "zg_limit_conn.h"
#include "zg_limit_req.h"
#include "zg_log.h"
#include "zg_upstream.h"

#define ZSIZE (64 * 1024)

/* ---- a strict checker for the exposition format ---- */

#define MAX_FAMILIES 256
#define MAX_SERIES 8192

typedef struct {
    char fam[MAX_FAMILIES][128];
    int nfam;
    char **series;
    int nseries;
    char err[256];
} check_t;

static int is_name(const char *s, size_t n, int colon)
{
    size_t i;

    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || (colon && s[0] == ':'))) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || (colon && s[i] == ':'))) {
            return 0;
        }
    }
    return 1;
}

static int bad(check_t *c, int line, const char *why)
{
    snprintf(c->err, sizeof(c->err), "line %d: %s", line, why);
    return -1;
}

/* one sample line of family fam; returns 0 or -1 */
static int check_sample(check_t *c, int ln, const char *l, size_t len, const char *fam)
{
    const char *p = l, *end = l + len, *s;
    char names[16][64], *num_end, *series;
    int nnames = 0, i;

    while (p < end && (isalnum((unsigned char)*p) || *p == '_' || *p == ':')) {
        p++;
    }
    if (!is_name(l, (size_t)(p - l), 1)) {
        return bad(c, ln, "bad metric name");
    }
    if ((size_t)(p - l) != strlen(fam) || memcmp(l, fam, strlen(fam)) != 0) {
        return bad(c, ln, "sample outside its family");
    }
    if (p < end && *p == '{') {
        p++;
        for (;;) {
            s = p;
            while (p < end && (isalnum((unsigned char)*p) || *p == '_')) {
                p++;
            }
            if (!is_name(s, (size_t)(p - s), 0) || p - s >= 64) {
                return bad(c, ln, "bad label name");
            }
            for (i = 0; i < nnames; i++) {
                if (strlen(names[i]) == (size_t)(p - s) && memcmp(names[i], s, p - s) == 0) {
                    return bad(c, ln, "repeated label");
                }
            }
            if (nnames == 16) {
                return bad(c, ln, "too many labels");
            }
            memcpy(names[nnames], s, p - s);
            names[nnames++][p - s] = '\0';
            if (p + 1 >= end || p[0] != '=' || p[1] != '"') {
                return bad(c, ln, "expected =\"");
            }
            p += 2;
            while (p < end && *p != '"') {
                if (*p == '\\') {
                    if (p + 1 >= end || (p[1] != '\\' && p[1] != '"' && p[1] != 'n')) {
                        return bad(c, ln, "bad escape");
                    }
                    p++;
                }
                p++;
            }
            if (p >= end) {
                return bad(c, ln, "unterminated label value");
            }
            p++;
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            return bad(c, ln, "expected , or }");
        }
    }
    if (p >= end || *p != ' ') {
        return bad(c, ln, "expected one space before the value");
    }
    series = strndup(l, (size_t)(p - l));
    assert_non_null(series);
    for (i = 0; i < c->nseries; i++) {
        if (strcmp(c->series[i], series) == 0) {
            free(series);
            return bad(c, ln, "repeated series");
        }
    }
    assert_true(c->nseries < MAX_SERIES);
    c->series[c->nseries++] = series;
    p++;
    if (p >= end) {
        return bad(c, ln, "no value");
    }
    {
        char v[64];

        if ((size_t)(end - p) >= sizeof(v)) {
            return bad(c, ln, "value too long");
        }
        memcpy(v, p, end - p);
        v[end - p] = '\0';
        strtod(v, &num_end);
        if (num_end == v || *num_end != '\0') {
            return bad(c, ln, "bad value (or a timestamp)");
        }
    }
    return 0;
}

/* 0 if text is valid: every family announced once by # HELP then # TYPE
 * (counter or gauge) before its samples, counters named *_total */
static int check_exposition(check_t *c, const char *text, size_t len)
{
    const char *l = text, *nl, *end = text + len;
    char fam[128] = "", type[16] = "";
    int ln = 0, i, typed = 0;

    memset(c, 0, sizeof(*c));
    c->series = calloc(MAX_SERIES, sizeof(char *));
    assert_non_null(c->series);
    if (len == 0 || text[len - 1] != '\n') {
        return bad(c, 0, "text must end with a newline");
    }
    if (strlen(text) != len) {
        return bad(c, 0, "NUL inside the text");
    }
    for (; l < end; l = nl + 1) {
        size_t n;

        nl = memchr(l, '\n', end - l);
        n = (size_t)(nl - l);
        ln++;
        if (n == 0) {
            return bad(c, ln, "empty line");
        }
        if (n > 7 && memcmp(l, "# HELP ", 7) == 0) {
            const char *s = l + 7, *sp = memchr(s, ' ', nl - s);

            if (sp == NULL || sp + 1 >= nl) {
                return bad(c, ln, "HELP without text");
            }
            if (!is_name(s, (size_t)(sp - s), 1) || (size_t)(sp - s) >= sizeof(fam)) {
                return bad(c, ln, "bad family name");
            }
            for (i = 0; i < c->nfam; i++) {
                if (strlen(c->fam[i]) == (size_t)(sp - s) && memcmp(c->fam[i], s, sp - s) == 0) {
                    return bad(c, ln, "family repeated");
                }
            }
            assert_true(c->nfam < MAX_FAMILIES);
            memcpy(fam, s, sp - s);
            fam[sp - s] = '\0';
            strcpy(c->fam[c->nfam++], fam);
            typed = 0;
            continue;
        }
        if (n > 7 && memcmp(l, "# TYPE ", 7) == 0) {
            const char *s = l + 7, *sp = memchr(s, ' ', nl - s);

            if (fam[0] == '\0' || typed) {
                return bad(c, ln, "TYPE not right after its HELP");
            }
            if (sp == NULL || (size_t)(sp - s) != strlen(fam) || memcmp(s, fam, sp - s) != 0) {
                return bad(c, ln, "TYPE of another family");
            }
            if ((size_t)(nl - sp - 1) >= sizeof(type)) {
                return bad(c, ln, "bad type");
            }
            memcpy(type, sp + 1, nl - sp - 1);
            type[nl - sp - 1] = '\0';
            if (strcmp(type, "counter") != 0 && strcmp(type, "gauge") != 0) {
                return bad(c, ln, "type is neither counter nor gauge");
            }
            if (strcmp(type, "counter") == 0
                && (strlen(fam) < 6 || strcmp(fam + strlen(fam) - 6, "_total") != 0))
            {
                return bad(c, ln, "counter not named *_total");
            }
            typed = 1;
            continue;
        }
        if (l[0] == '#') {
            return bad(c, ln, "stray comment");
        }
        if (!typed) {
            return bad(c, ln, "sample before HELP and TYPE");
        }
        if (check_sample(c, ln, l, n, fam) != 0) {
            return -1;
        }
    }
    return 0;
}

static void check_free(check_t *c)
{
    int i;

    for (i = 0; i < c->nseries; i++) {
        free(c->series[i]);
    }
    free(c->series);
}

static void assert_valid(const char *text, size_t len)
{
    check_t c;

    if (check_exposition(&c, text, len) != 0) {
        fail_msg("invalid exposition text: %s", c.err);
    }
    check_free(&c);
}

static void assert_invalid(const char *text)
{
    check_t c;

    assert_int_equal(check_exposition(&c, text, strlen(text)), -1);
    check_free(&c);
}

/* the value of one series (name and labels exactly as rendered); -1 if absent */
static double value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *p = text;

    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ') {
            return strtod(p + n + 1, NULL);
        }
        p += n;
    }
    return -1;
}

static void test_checker(void **state)
{
    (void)state;
    assert_valid("# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\\\"\\\\\\n\"} 1\n",
                 strlen("# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\\\"\\\\\\n\"} 1\n"));
    assert_invalid("a_total 1\n");                                         /* no HELP */
    assert_invalid("# HELP a x\na 1\n");                                   /* no TYPE */
    assert_invalid("# HELP a x\n# TYPE a counter\na 1\n");                 /* _total */
    assert_invalid("# HELP a x\n# TYPE a gauge\na 1\n# HELP a x\n# TYPE a gauge\n");
    assert_invalid("# HELP a x\n# TYPE a gauge\nb 1\n");                   /* other name */
    assert_invalid("# HELP 1a x\n# TYPE 1a gauge\n1a 1\n");                /* bad name */
    assert_invalid("# HELP a x\n# TYPE a gauge\na{l=\"x\"y\"} 1\n");       /* bad quote */
    assert_invalid("# HELP a x\n# TYPE a gauge\na{l=\"\\t\"} 1\n");        /* bad escape */
    assert_invalid("# HELP a x\n# TYPE a gauge\na{l=\"1\"} 1\na{l=\"1\"} 2\n");
    assert_invalid("# HELP a x\n# TYPE a gauge\na{l=\"1\",l=\"2\"} 1\n");
    assert_invalid("# HELP a x\n# TYPE a gauge\na 1 123\n");               /* timestamp */
    assert_invalid("# HELP a x\n# TYPE a gauge\na 1");                     /* newline */
    assert_invalid("# HELP a x\n# TYPE a summary\na 1\n");
}

/* ---- a configuration built by hand ---- */

typedef struct {
    zg_conf_t conf;
    zg_limit_req_zone_conf_t lrz;
    zg_limit_req_conf_t lr;
    zg_limit_conn_zone_conf_t lcz;
    zg_limit_conn_conf_t lc;
    zg_upstream_conf_t ups[2];
    zg_upstream_server_t servers[4];
    zg_upstream_server_t *many;
    zg_upstream_main_conf_t umcf;
} fx_t;

static void server(zg_upstream_server_t *s, int port, int weight)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&s->addr.sa;

    memset(s, 0, sizeof(*s));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->addr.socklen = sizeof(*sin);
    snprintf(s->addr.text, sizeof(s->addr.text), "127.0.0.1:%d", port);
    s->weight = weight;
    s->max_fails = 1;
    s->fail_timeout = 10000;
}

static zg_zone_t *declare(fx_t *f, const char *name, const zg_zone_kind_t *kind, void *conf,
                          zg_zone_init_pt init)
{
    char err[256];
    zg_zone_t *z = zg_zone_declare(&f->conf.zones, name, kind, ZSIZE, err, sizeof(err));

    if (z == NULL) {
        fail_msg("zg_zone_declare: %s", err);
    }
    z->conf = conf;
    z->init = init;
    return z;
}

/* zones "req_one", "conn_one", "ups" in that order; upstreams "backend" (zone,
 * 3 servers, one backup) and "we\"ird\\name\n" (no zone, 1 down server) */
static fx_t *fx_new(void)
{
    fx_t *f = calloc(1, sizeof(*f));
    char err[256];

    assert_non_null(f);
    f->lrz.key_text = "$remote_addr";
    f->lrz.key = zg_cv_compile(f->lrz.key_text, strlen(f->lrz.key_text), err, sizeof(err));
    assert_non_null(f->lrz.key);
    f->lrz.rate = 1000; /* 1r/s */
    f->lrz.rate_text = "1r/s";
    f->lrz.zone = declare(f, "req_one", ZG_ZONE_LIMIT_REQ, &f->lrz, zg_limit_req_zone_init);
    f->lr.zone = &f->lrz;
    f->lr.burst = 0;
    f->lr.delay = ZG_LIMIT_REQ_NODELAY;

    f->lcz.key_text = "$remote_addr";
    f->lcz.key = zg_cv_compile(f->lcz.key_text, strlen(f->lcz.key_text), err, sizeof(err));
    assert_non_null(f->lcz.key);
    f->lcz.zone = declare(f, "conn_one", ZG_ZONE_LIMIT_CONN, &f->lcz,
                          zg_limit_conn_zone_init);
    f->lc.zone = &f->lcz;
    f->lc.conn = 1;

    snprintf(f->ups[0].name, sizeof(f->ups[0].name), "backend");
    server(&f->servers[0], 8001, 5);
    server(&f->servers[1], 8002, 1);
    server(&f->servers[2], 8003, 1);
    f->servers[2].backup = 1;
    f->ups[0].servers = f->servers;
    f->ups[0].nservers = 3;
    f->ups[0].zone = declare(f, "ups", ZG_ZONE_UPSTREAM, &f->ups[0], zg_upstream_zone_init);
    f->ups[0].next = &f->ups[1];

    snprintf(f->ups[1].name, sizeof(f->ups[1].name), "we\"ird\\name\n");
    server(&f->servers[3], 9001, 1);
    f->servers[3].down = 1;
    f->ups[1].servers = &f->servers[3];
    f->ups[1].nservers = 1;
    f->umcf.upstreams = &f->ups[0];
    zg_modules_init();
    f->conf.main_conf[zg_upstream_module.index] = &f->umcf;

    if (zg_zone_map_all(&f->conf.zones, NULL, err, sizeof(err)) != ZG_OK) {
        fail_msg("zg_zone_map_all: %s", err);
    }
    assert_int_equal(zg_upstream_init(&f->ups[0]), ZG_OK);
    assert_int_equal(zg_upstream_init(&f->ups[1]), ZG_OK);
    return f;
}

static void fx_free(fx_t *f)
{
    zg_upstream_cleanup(&f->ups[0]);
    zg_upstream_cleanup(&f->ups[1]);
    zg_zone_unmap_all(&f->conf.zones);
    zg_zone_list_free(&f->conf.zones);
    zg_cv_free(f->lrz.key);
    zg_cv_free(f->lcz.key);
    free(f->many);
    free(f);
}

static zg_var_ctx_t ctx_for(struct sockaddr_in *sin, const char *ip)
{
    zg_var_ctx_t ctx;

    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &sin->sin_addr);
    memset(&ctx, 0, sizeof(ctx));
    ctx.remote = (struct sockaddr *)sin;
    return ctx;
}

static int count(const char *text, const char *what)
{
    int n = 0;

    for (; (text = strstr(text, what)) != NULL; text += strlen(what)) {
        n++;
    }
    return n;
}

static void test_slab_stat(void **state)
{
    fx_t *f = fx_new();
    char *out, expect[16384];
    const char *a, *b, *c;
    size_t len, off = 0;
    zg_zone_t *z;

    (void)state;
    /* known allocations: one 100-byte (128 slot) and one 5000-byte (pages) */
    assert_non_null(zg_slab_alloc(f->lrz.zone->pool, 100));
    assert_non_null(zg_slab_alloc(f->lrz.zone->pool, 5000));

    out = zg_admin_slab_stat(&f->conf, &len);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);

    a = strstr(out, "* shared memory: req_one\n");
    b = strstr(out, "* shared memory: conn_one\n");
    c = strstr(out, "* shared memory: ups\n");
    assert_ptr_equal(a, out);
    assert_true(a < b && b < c);
    assert_int_equal(count(out, "* shared memory: "), 3);
    assert_int_equal(count(out, "\ntotal:"), 3);
    assert_int_equal(count(out, "slot:"), 3 * ZG_SLAB_NSLOTS);
    /* every block: name line, then the totals line */
    assert_non_null(strstr(out, "* shared memory: req_one\ntotal:          64(KB) free:"));
    {
        zg_slab_stat_t *st = &f->lrz.zone->pool->stats[4];
        char line[256];

        snprintf(line, sizeof(line),
                 "slot:         128(Bytes) total:%12d used:%12d reqs:%12d fails:%12d\n",
                 (int)st->total, (int)st->used, (int)st->reqs, (int)st->fails);
        assert_non_null(strstr(out, line));
        assert_true(st->used >= 1 && st->total == 32);
    }

    /* exactly the renderer's blocks, back to back */
    for (z = f->conf.zones.head; z != NULL; z = z->next) {
        off += zg_slab_stat_render(z->pool, z->name, expect + off, sizeof(expect) - off);
    }
    assert_true(off < sizeof(expect));
    assert_int_equal(len, off);
    assert_string_equal(out, expect);
    free(out);

    /* no zones: an empty text, not NULL */
    {
        zg_conf_t empty;

        memset(&empty, 0, sizeof(empty));
        out = zg_admin_slab_stat(&empty, &len);
        assert_non_null(out);
        assert_int_equal(len, 0);
        free(out);
    }
    fx_free(f);
}

static void test_metrics_values(void **state)
{
    fx_t *f = fx_new();
    struct sockaddr_in sin;
    zg_var_ctx_t ctx = ctx_for(&sin, "10.0.0.1");
    zg_limit_req_result_t res;
    zg_limit_conn_hold_t holds[1], holds2[1];
    zg_upstream_pick_t pk;
    zg_msec_t now = zg_time_msec();
    int nholds, nholds2, st, i;
    char *out;
    size_t len;

    (void)state;
    /* limit_req: pass, reject, dry-run reject */
    assert_int_equal(zg_limit_req_check(&f->lr, 1, 0, ZG_LOG_INFO, &ctx, now, &res), ZG_OK);
    assert_int_equal(zg_limit_req_check(&f->lr, 1, 0, ZG_LOG_INFO, &ctx, now, &res), ZG_BUSY);
    assert_int_equal(zg_limit_req_check(&f->lr, 1, 1, ZG_LOG_INFO, &ctx, now, &res), ZG_OK);
    assert_int_equal(res.status, ZG_LIMIT_REJECTED_DRY_RUN);

    /* limit_conn: one held, one refused */
    assert_int_equal(zg_limit_conn_acquire(&f->lc, 1, 0, ZG_LOG_INFO, &ctx, holds, &nholds,
                                           &st), ZG_OK);
    assert_int_equal(zg_limit_conn_acquire(&f->lc, 1, 0, ZG_LOG_INFO, &ctx, holds2, &nholds2,
                                           &st), ZG_BUSY);

    /* upstream: 7 picks on 5:1 primaries, the first fails; one left active */
    for (i = 0; i < 7; i++) {
        zg_upstream_pick_init(&pk);
        assert_int_equal(zg_upstream_get(&f->ups[0], &pk, now), ZG_OK);
        zg_upstream_free(&f->ups[0], &pk, i == 0, now);
    }
    zg_upstream_pick_init(&pk);
    assert_int_equal(zg_upstream_get(&f->ups[0], &pk, now), ZG_OK);
    assert_int_equal(pk.peer, 1);

    /* process counters */
    assert_int_equal(zg_proc_stats_init(), ZG_OK);
    assert_int_equal(zg_proc_stats_init(), ZG_OK);
    memset(zg_proc_stats, 0, sizeof(*zg_proc_stats));
    /* two worker slots: 30 + 12 requests, totals are their sums */
    zg_proc_worker_start(0, 0, 1000);
    zg_proc_worker_start(5, 1, 1005);
    zg_worker_slot = 0;
    for (i = 0; i < 30; i++) {
        zg_proc_count_request(200);
    }
    zg_proc_count_connection();
    zg_worker_slot = 5;
    for (i = 0; i < 12; i++) {
        zg_proc_count_request(i < 10 ? 204 : 502);
    }
    zg_proc_count_connection();
    zg_proc_count_connection();
    zg_worker_slot = 0;
    zg_proc_worker_gone(5);
    __atomic_add_fetch(&zg_proc_stats->reloads, 3, __ATOMIC_RELAXED);

    out = zg_admin_metrics(&f->conf, &len);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    assert_valid(out, len);

#define V(s) value_of(out, s)
    assert_true(V("zonegate_limit_req_requests_total{zone=\"req_one\",result=\"passed\"}") == 1);
    assert_true(V("zonegate_limit_req_requests_total{zone=\"req_one\",result=\"rejected\"}") == 1);
    assert_true(V("zonegate_limit_req_requests_total{zone=\"req_one\",result=\"delayed\"}") == 0);
    assert_true(V("zonegate_limit_req_requests_total{zone=\"req_one\",result=\"rejected_dry_run\"}")
                == 1);
    assert_true(V("zonegate_limit_req_requests_total{zone=\"req_one\",result=\"delayed_dry_run\"}")
                == 0);
    assert_true(V("zonegate_limit_req_entries{zone=\"req_one\"}") == 1);
    assert_true(V("zonegate_limit_req_evictions_total{zone=\"req_one\"}") == 0);

    assert_true(V("zonegate_limit_conn_requests_total{zone=\"conn_one\",result=\"passed\"}") == 1);
    assert_true(V("zonegate_limit_conn_requests_total{zone=\"conn_one\",result=\"rejected\"}")
                == 1);
    assert_true(V("zonegate_limit_conn_current{zone=\"conn_one\"}") == 1);
    assert_true(V("zonegate_limit_conn_entries{zone=\"conn_one\"}") == 1);

    /* a a(fail) ... : 5:1 over 7 picks with a's weight cut by its failure */
    assert_true(V("zonegate_upstream_peer_requests_total{upstream=\"backend\",peer=\"127.0.0.1:8001\"}")
                + V("zonegate_upstream_peer_requests_total{upstream=\"backend\",peer=\"127.0.0.1:8002\"}")
                == 8);
    assert_true(V("zonegate_upstream_peer_requests_total{upstream=\"backend\",peer=\"127.0.0.1:8003\"}")
                == 0);
    assert_true(V("zonegate_upstream_peer_failures_total{upstream=\"backend\",peer=\"127.0.0.1:8001\"}")
                == 1);
    assert_true(V("zonegate_upstream_peer_active{upstream=\"backend\",peer=\"127.0.0.1:8002\"}") == 1);
    assert_true(V("zonegate_upstream_peer_active{upstream=\"backend\",peer=\"127.0.0.1:8001\"}") == 0);
    assert_true(V("zonegate_upstream_peer_state{upstream=\"backend\",peer=\"127.0.0.1:8001\",state=\"unavailable\"}")
                == 1);
    assert_true(V("zonegate_upstream_peer_state{upstream=\"backend\",peer=\"127.0.0.1:8001\",state=\"up\"}")
                == 0);
    assert_true(V("zonegate_upstream_peer_state{upstream=\"backend\",peer=\"127.0.0.1:8002\",state=\"up\"}")
                == 1);
    assert_true(V("zonegate_upstream_peer_state{upstream=\"backend\",peer=\"127.0.0.1:8003\",state=\"backup\"}")
                == 1);
    /* the escaped upstream name; its server is down */
    assert_true(V("zonegate_upstream_peer_state{upstream=\"we\\\"ird\\\\name\\n\",peer=\"127.0.0.1:9001\",state=\"down\"}")
                == 1);
    assert_true(V("zonegate_upstream_peer_requests_total{upstream=\"we\\\"ird\\\\name\\n\",peer=\"127.0.0.1:9001\"}")
                == 0);

    assert_true(V("zonegate_zone_bytes{zone=\"ups\",kind=\"upstream\",type=\"total\"}") == ZSIZE);
    assert_true(V("zonegate_zone_bytes{zone=\"req_one\",kind=\"limit_req\",type=\"used\"}")
                + V("zonegate_zone_bytes{zone=\"req_one\",kind=\"limit_req\",type=\"free\"}")
                == ZSIZE);
    assert_true(V("zonegate_zone_bytes{zone=\"req_one\",kind=\"limit_req\",type=\"free\"}")
                == (double)f->lrz.zone->pool->pages_free * ZG_SLAB_PAGE_SIZE);
    assert_true(V("zonegate_zone_alloc_failures_total{zone=\"conn_one\"}") == 0);
    assert_true(V("zonegate_slab_slots{zone=\"ups\",slot=\"2048\",type=\"used\"}") >= 0);
    assert_true(V("zonegate_slab_requests_total{zone=\"ups\",slot=\"8\"}") >= 0);
    assert_true(V("zonegate_slab_alloc_failures_total{zone=\"ups\",slot=\"2048\"}") == 0);

    assert_true(V("zonegate_requests_total") == 42);
    assert_true(V("zonegate_worker_requests_total{worker=\"0\"}") == 30);
    assert_true(V("zonegate_worker_requests_total{worker=\"5\"}") == 12);
    assert_true(V("zonegate_worker_connections_total{worker=\"0\"}") == 1);
    assert_true(V("zonegate_worker_connections_total{worker=\"5\"}") == 2);
    /* a slot never used is not shown; a slot whose worker is gone keeps its counters */
    assert_null(strstr(out, "worker=\"1\""));
    assert_true(V("zonegate_worker_pid{worker=\"0\",index=\"0\"}") == 1000);
    assert_null(strstr(out, "zonegate_worker_pid{worker=\"5\""));
    assert_true(V("zonegate_reloads_total") == 3);
    assert_true(V("zonegate_worker_restarts_total") == 0);
    assert_true(V("zonegate_connections_total") == 3);
    assert_true(V("zonegate_responses_total{code=\"2xx\"}") == 40);
    assert_true(V("zonegate_responses_total{code=\"5xx\"}") == 2);
    assert_true(V("zonegate_responses_total{code=\"1xx\"}") == 0);
    free(out);

    /* live: after more picks the same call shows them */
    zg_upstream_free(&f->ups[0], &pk, 0, now);
    for (i = 0; i < 10; i++) {
        zg_upstream_pick_init(&pk);
        assert_int_equal(zg_upstream_get(&f->ups[0], &pk, now), ZG_OK);
        zg_upstream_free(&f->ups[0], &pk, 0, now);
    }
    zg_limit_conn_release(holds, nholds);
    out = zg_admin_metrics(&f->conf, &len);
    assert_non_null(out);
    assert_valid(out, len);
    assert_true(V("zonegate_upstream_peer_requests_total{upstream=\"backend\",peer=\"127.0.0.1:8001\"}")
                + V("zonegate_upstream_peer_requests_total{upstream=\"backend\",peer=\"127.0.0.1:8002\"}")
                == 18);
    assert_true(V("zonegate_upstream_peer_active{upstream=\"backend\",peer=\"127.0.0.1:8002\"}") == 0);
    assert_true(V("zonegate_limit_conn_current{zone=\"conn_one\"}") == 0);
#undef V
    free(out);
    fx_free(f);
}

static void test_metrics_slab_values(void **state)
{
    fx_t *f = fx_new();
    zg_slab_pool_t *pool = f->lcz.zone->pool;
    zg_slab_stat_t before;
    char *out;
    size_t len;
    int n = 0;

    (void)state;
    before = pool->stats[4]; /* 128-byte slots */
    assert_non_null(zg_slab_alloc(pool, 100));
    assert_non_null(zg_slab_alloc(pool, 120));
    while (zg_slab_alloc(pool, 2000) != NULL) {
        n++;
    }
    assert_true(n > 0);

    out = zg_admin_metrics(&f->conf, &len);
    assert_non_null(out);
    assert_valid(out, len);
    assert_true(value_of(out, "zonegate_slab_requests_total{zone=\"conn_one\",slot=\"128\"}")
                == before.reqs + 2);
    assert_true(value_of(out, "zonegate_slab_slots{zone=\"conn_one\",slot=\"128\",type=\"used\"}")
                == before.used + 2);
    assert_true(value_of(out, "zonegate_slab_slots{zone=\"conn_one\",slot=\"128\",type=\"total\"}")
                == 32);
    assert_true(value_of(out, "zonegate_slab_alloc_failures_total{zone=\"conn_one\",slot=\"2048\"}")
                == 1);
    assert_true(value_of(out, "zonegate_zone_alloc_failures_total{zone=\"conn_one\"}") == 1);
    assert_true(value_of(out, "zonegate_zone_bytes{zone=\"conn_one\",kind=\"limit_conn\",type=\"free\"}")
                == 0);
    free(out);
    fx_free(f);
}

/* far more text than any first buffer: 256 peers, odd characters in names */
static void test_metrics_large(void **state)
{
    fx_t *f = fx_new();
    char *out, series[256];
    size_t len;
    int i;

    (void)state;
    f->many = calloc(ZG_MAX_PEERS, sizeof(*f->many));
    assert_non_null(f->many);
    for (i = 0; i < ZG_MAX_PEERS; i++) {
        server(&f->many[i], 10000 + i, 1 + i % 3);
    }
    /* the same address twice: told apart in the label */
    snprintf(f->many[1].addr.text, sizeof(f->many[1].addr.text), "127.0.0.1:10000");
    zg_upstream_cleanup(&f->ups[1]);
    f->ups[1].servers = f->many;
    f->ups[1].nservers = ZG_MAX_PEERS;
    assert_int_equal(zg_upstream_init(&f->ups[1]), ZG_OK);
    for (i = 0; i < 1000; i++) {
        zg_upstream_pick_t pk;

        zg_upstream_pick_init(&pk);
        assert_int_equal(zg_upstream_get(&f->ups[1], &pk, zg_time_msec()), ZG_OK);
        zg_upstream_free(&f->ups[1], &pk, 0, zg_time_msec());
    }

    out = zg_admin_metrics(&f->conf, &len);
    assert_non_null(out);
    assert_true(len > 100000);
    assert_valid(out, len);
    snprintf(series, sizeof(series),
             "zonegate_upstream_peer_requests_total{upstream=\"we\\\"ird\\\\name\\n\","
             "peer=\"127.0.0.1:10000#2\"}");
    assert_true(value_of(out, series) >= 0);
    {
        double sum = 0;

        for (i = 0; i < ZG_MAX_PEERS; i++) {
            snprintf(series, sizeof(series),
                     "zonegate_upstream_peer_requests_total{upstream=\"we\\\"ird\\\\name\\n\","
                     "peer=\"127.0.0.1:%d%s\"}", i == 1 ? 10000 : 10000 + i, i == 1 ? "#2" : "");
            assert_true(value_of(out, series) >= 0);
            sum += value_of(out, series);
        }
        assert_true(sum == 1000);
    }
    free(out);
    fx_free(f);
}

/* the same through the config parser: zones wired by zg_conf_load_string */
static void test_from_config(void **state)
{
    static const char text[] =
        "http {\n"
        "  limit_req_zone $binary_remote_addr zone=one:64k rate=1r/s;\n"
        "  limit_conn_zone $binary_remote_addr zone=two:64k;\n"
        "  upstream app {\n"
        "    zone ups 64k;\n"
        "    server 127.0.0.1:8081 weight=3;\n"
        "    server 127.0.0.1:8082;\n"
        "  }\n"
        "  server {\n"
        "    listen 127.0.0.1:8080;\n"
        "    location / { limit_req zone=one; limit_conn two 1; proxy_pass http://app; }\n"
        "  }\n"
        "}\n";
    char err[256], *out;
    zg_conf_t *conf;
    zg_upstream_conf_t *u;
    zg_upstream_pick_t pk;
    size_t len;
    int i;

    (void)state;
    conf = zg_conf_load_string("test.conf", text, strlen(text), err, sizeof(err));
    if (conf == NULL) {
        fail_msg("zg_conf_load_string: %s", err);
    }
    if (zg_zone_map_all(&conf->zones, NULL, err, sizeof(err)) != ZG_OK) {
        fail_msg("zg_zone_map_all: %s", err);
    }
    for (u = zg_upstream_main_conf(conf)->upstreams; u != NULL && strcmp(u->name, "app") != 0; u = u->next) {
    }
    assert_non_null(u);
    assert_int_equal(zg_upstream_init(u), ZG_OK);
    for (i = 0; i < 400; i++) {
        zg_upstream_pick_init(&pk);
        assert_int_equal(zg_upstream_get(u, &pk, zg_time_msec()), ZG_OK);
        zg_upstream_free(u, &pk, 0, zg_time_msec());
    }

    out = zg_admin_metrics(conf, &len);
    assert_non_null(out);
    assert_valid(out, len);
    assert_true(value_of(out, "zonegate_upstream_peer_requests_total{upstream=\"app\","
                              "peer=\"127.0.0.1:8081\"}") == 300);
    assert_true(value_of(out, "zonegate_upstream_peer_requests_total{upstream=\"app\","
                              "peer=\"127.0.0.1:8082\"}") == 100);
    assert_true(value_of(out, "zonegate_zone_bytes{zone=\"one\",kind=\"limit_req\","
                              "type=\"total\"}") == ZSIZE);
    assert_true(value_of(out, "zonegate_limit_conn_requests_total{zone=\"two\","
                              "result=\"passed\"}") == 0);
    free(out);

    out = zg_admin_slab_stat(conf, &len);
    assert_non_null(out);
    assert_ptr_equal(strstr(out, "* shared memory: one\n"), out);
    assert_true(strstr(out, "* shared memory: two\n") < strstr(out, "* shared memory: ups\n"));
    free(out);

    zg_upstream_cleanup(u);
    zg_zone_unmap_all(&conf->zones);
    zg_conf_free(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker),
        cmocka_unit_test(test_slab_stat),
        cmocka_unit_test(test_metrics_values),
        cmocka_unit_test(test_metrics_slab_values),
        cmocka_unit_test(test_metrics_large),
        cmocka_unit_test(test_from_config),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
