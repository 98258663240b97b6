/* zg_admin.c — /slab_stat and /metrics, and the shared process counters. */
#include "zg_admin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zg_limit_conn.h"
#include "zg_limit_req.h"
#include "zg_log.h"
#include "zg_upstream.h"

zg_proc_stats_sh_t *zg_proc_stats;

/* a growable text buffer; after a failed allocation every append is a no-op */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    int failed;
} zg_admin_buf_t;

int zg_proc_stats_init(void)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t size = page > 0 ? (size_t)page : 4096;
    void *p;

    if (zg_proc_stats != NULL) {
        return ZG_OK;
    }
    size = zg_align(sizeof(zg_proc_stats_sh_t), size);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        zg_log_error(ZG_LOG_EMERG, errno, "mmap(%zu) for the process counters failed",
                     size);
        return ZG_ERROR;
    }
    zg_proc_stats = p;
    return ZG_OK;
}

static int zg_admin_reserve(zg_admin_buf_t *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->failed) {
        return ZG_ERROR;
    }
    if (b->len + n + 1 <= b->cap) {
        return ZG_OK;
    }
    cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = 1;
        return ZG_ERROR;
    }
    b->data = p;
    b->cap = cap;
    return ZG_OK;
}

static void zg_admin_append(zg_admin_buf_t *b, const char *s, size_t n)
{
    if (zg_admin_reserve(b, n) != ZG_OK) {
        return;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void zg_admin_printf(zg_admin_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void zg_admin_printf(zg_admin_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || zg_admin_reserve(b, (size_t)n) != ZG_OK) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* hands the text to the caller: NULL on allocation failure */
static char *zg_admin_finish(zg_admin_buf_t *b, size_t *len)
{
    if (zg_admin_reserve(b, 0) != ZG_OK) {
        free(b->data);
        *len = 0;
        return NULL;
    }
    b->data[b->len] = '\0';
    *len = b->len;
    return b->data;
}

char *zg_admin_slab_stat(const zg_conf_t *conf, size_t *len)
{
    zg_admin_buf_t b = { NULL, 0, 0, 0 };
    zg_zone_t *z;
    size_t want, got;

    for (z = conf->zones.head; z != NULL; z = z->next) {
        if (z->pool == NULL) {
            continue;
        }
        want = zg_slab_stat_render(z->pool, z->name, NULL, 0);
        for (;;) {
            if (zg_admin_reserve(&b, want) != ZG_OK) {
                break;
            }
            /* the zone may have changed between the two renderings */
            got = zg_slab_stat_render(z->pool, z->name, b.data + b.len, b.cap - b.len);
            if (got < b.cap - b.len) {
                b.len += got;
                break;
            }
            want = got;
        }
    }
    return zg_admin_finish(&b, len);
}

/* ---- Prometheus text format 0.0.4 ---- */

static void zg_admin_family(zg_admin_buf_t *b, const char *name, const char *type,
                            const char *help)
{
    zg_admin_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* a label value with \ " and newline escaped */
static void zg_admin_label_value(zg_admin_buf_t *b, const char *v)
{
    const char *p, *start = v;

    for (p = v; *p; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;

        if (esc != NULL) {
            zg_admin_append(b, start, (size_t)(p - start));
            zg_admin_append(b, esc, 2);
            start = p + 1;
        }
    }
    zg_admin_append(b, start, (size_t)(p - start));
}

/* name{k1="v1",k2="v2"} value — the labels as (key, value) pairs ending with NULL */
static void zg_admin_sample(zg_admin_buf_t *b, const char *name, uint64_t value, ...)
{
    const char *k, *v;
    va_list ap;
    int first = 1;

    zg_admin_append(b, name, strlen(name));
    va_start(ap, value);
    while ((k = va_arg(ap, const char *)) != NULL) {
        v = va_arg(ap, const char *);
        zg_admin_printf(b, "%s%s=\"", first ? "{" : ",", k);
        zg_admin_label_value(b, v);
        zg_admin_append(b, "\"", 1);
        first = 0;
    }
    va_end(ap);
    zg_admin_printf(b, "%s %" PRIu64 "\n", first ? "" : "}", value);
}

static int zg_admin_zones_of(const zg_conf_t *conf, int kind)
{
    zg_zone_t *z;
    int n = 0;

    for (z = conf->zones.head; z != NULL; z = z->next) {
        if (z->pool != NULL && (kind == 0 || z->kind == kind)) {
            n++;
        }
    }
    return n;
}

static void zg_admin_metrics_limit_req(zg_admin_buf_t *b, const zg_conf_t *conf)
{
    static const char *results[] = { "passed", "delayed", "rejected", "delayed_dry_run",
                                     "rejected_dry_run" };
    zg_limit_req_stats_t *st;
    zg_zone_t *z;
    uint64_t v[5];
    int i, j, n = zg_admin_zones_of(conf, ZG_ZONE_LIMIT_REQ);

    st = calloc(n ? n : 1, sizeof(*st));
    if (st == NULL) {
        b->failed = 1;
        return;
    }
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_LIMIT_REQ) {
            zg_limit_req_stats(z, &st[i++]);
        }
    }

    zg_admin_family(b, "zonegate_limit_req_requests_total", "counter",
                    "Requests checked by limit_req, by zone and outcome.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool == NULL || z->kind != ZG_ZONE_LIMIT_REQ) {
            continue;
        }
        v[0] = st[i].passed;
        v[1] = st[i].delayed;
        v[2] = st[i].rejected;
        v[3] = st[i].delayed_dry_run;
        v[4] = st[i].rejected_dry_run;
        for (j = 0; j < 5; j++) {
            zg_admin_sample(b, "zonegate_limit_req_requests_total", v[j], "zone", z->name,
                            "result", results[j], NULL);
        }
        i++;
    }

    zg_admin_family(b, "zonegate_limit_req_entries", "gauge",
                    "Keys held in the limit_req zone now.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_LIMIT_REQ) {
            zg_admin_sample(b, "zonegate_limit_req_entries", st[i++].entries, "zone", z->name,
                            NULL);
        }
    }

    zg_admin_family(b, "zonegate_limit_req_evictions_total", "counter",
                    "Keys dropped from the limit_req zone to make room.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_LIMIT_REQ) {
            zg_admin_sample(b, "zonegate_limit_req_evictions_total", st[i++].evicted, "zone",
                            z->name, NULL);
        }
    }

    free(st);
}

static void zg_admin_metrics_limit_conn(zg_admin_buf_t *b, const zg_conf_t *conf)
{
    static const char *results[] = { "passed", "rejected", "rejected_dry_run" };
    zg_limit_conn_stats_t *st;
    zg_zone_t *z;
    uint64_t v[3];
    int i, j, n = zg_admin_zones_of(conf, ZG_ZONE_LIMIT_CONN);

    st = calloc(n ? n : 1, sizeof(*st));
    if (st == NULL) {
        b->failed = 1;
        return;
    }
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_LIMIT_CONN) {
            zg_limit_conn_stats(z, &st[i++]);
        }
    }

    zg_admin_family(b, "zonegate_limit_conn_requests_total", "counter",
                    "Requests checked by limit_conn, by zone and outcome.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool == NULL || z->kind != ZG_ZONE_LIMIT_CONN) {
            continue;
        }
        v[0] = st[i].passed;
        v[1] = st[i].rejected;
        v[2] = st[i].rejected_dry_run;
        for (j = 0; j < 3; j++) {
            zg_admin_sample(b, "zonegate_limit_conn_requests_total", v[j], "zone", z->name,
                            "result", results[j], NULL);
        }
        i++;
    }

    zg_admin_family(b, "zonegate_limit_conn_current", "gauge",
                    "Requests holding a limit_conn slot now, all keys.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_LIMIT_CONN) {
            zg_admin_sample(b, "zonegate_limit_conn_current", st[i++].current, "zone", z->name,
                            NULL);
        }
    }

    zg_admin_family(b, "zonegate_limit_conn_entries", "gauge",
                    "Keys held in the limit_conn zone now.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool != NULL && z->kind == ZG_ZONE_LIMIT_CONN) {
            zg_admin_sample(b, "zonegate_limit_conn_entries", st[i++].entries, "zone", z->name,
                            NULL);
        }
    }

    free(st);
}

typedef struct {
    zg_slab_stat_t stats[ZG_SLAB_NSLOTS];
    size_t pages_free;
    uint64_t page_fails;
} zg_admin_pool_snap_t;

static const char *zg_admin_kind(int kind)
{
    switch (kind) {
    case ZG_ZONE_LIMIT_REQ:
        return "limit_req";
    case ZG_ZONE_LIMIT_CONN:
        return "limit_conn";
    case ZG_ZONE_UPSTREAM:
        return "upstream";
    default:
        return "other";
    }
}

/* zone_bytes: total = the zone's size, free = its free pages, used = the rest
 * (so the pool header and page descriptors count as used) */
static void zg_admin_metrics_zones(zg_admin_buf_t *b, const zg_conf_t *conf)
{
    zg_admin_pool_snap_t *sn;
    zg_zone_t *z;
    uint64_t sum, total, fr;
    char slot[24];
    int i, s, n = zg_admin_zones_of(conf, 0);

    sn = calloc(n ? n : 1, sizeof(*sn));
    if (sn == NULL) {
        b->failed = 1;
        return;
    }
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool == NULL) {
            continue;
        }
        zg_shmtx_lock(&z->pool->mutex);
        memcpy(sn[i].stats, z->pool->stats, sizeof(sn[i].stats));
        sn[i].pages_free = z->pool->pages_free;
        sn[i].page_fails = z->pool->page_fails;
        zg_shmtx_unlock(&z->pool->mutex);
        i++;
    }

    zg_admin_family(b, "zonegate_zone_bytes", "gauge",
                    "Shared memory zone size, bytes used and free (free pages).");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool == NULL) {
            continue;
        }
        total = z->size;
        fr = (uint64_t)sn[i].pages_free * ZG_SLAB_PAGE_SIZE;
        zg_admin_sample(b, "zonegate_zone_bytes", total, "zone", z->name, "kind",
                        zg_admin_kind(z->kind), "type", "total", NULL);
        zg_admin_sample(b, "zonegate_zone_bytes", total > fr ? total - fr : 0, "zone",
                        z->name, "kind", zg_admin_kind(z->kind), "type", "used", NULL);
        zg_admin_sample(b, "zonegate_zone_bytes", fr, "zone", z->name, "kind",
                        zg_admin_kind(z->kind), "type", "free", NULL);
        i++;
    }

    zg_admin_family(b, "zonegate_zone_alloc_failures_total", "counter",
                    "Allocations refused by the zone's slab pool (all slot sizes and pages).");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool == NULL) {
            continue;
        }
        for (s = 0, sum = sn[i].page_fails; s < ZG_SLAB_NSLOTS; s++) {
            sum += sn[i].stats[s].fails;
        }
        zg_admin_sample(b, "zonegate_zone_alloc_failures_total", sum, "zone", z->name, NULL);
        i++;
    }

    zg_admin_family(b, "zonegate_slab_slots", "gauge",
                    "Slab slots of each size: in pages given to that size, and handed out.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool == NULL) {
            continue;
        }
        for (s = 0; s < ZG_SLAB_NSLOTS; s++) {
            snprintf(slot, sizeof(slot), "%u", 1u << (s + ZG_SLAB_MIN_SHIFT));
            zg_admin_sample(b, "zonegate_slab_slots", sn[i].stats[s].total, "zone", z->name,
                            "slot", slot, "type", "total", NULL);
            zg_admin_sample(b, "zonegate_slab_slots", sn[i].stats[s].used, "zone", z->name,
                            "slot", slot, "type", "used", NULL);
        }
        i++;
    }

    zg_admin_family(b, "zonegate_slab_alloc_failures_total", "counter",
                    "Slab allocations of each slot size that failed.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool == NULL) {
            continue;
        }
        for (s = 0; s < ZG_SLAB_NSLOTS; s++) {
            snprintf(slot, sizeof(slot), "%u", 1u << (s + ZG_SLAB_MIN_SHIFT));
            zg_admin_sample(b, "zonegate_slab_alloc_failures_total", sn[i].stats[s].fails,
                            "zone", z->name, "slot", slot, NULL);
        }
        i++;
    }

    zg_admin_family(b, "zonegate_slab_requests_total", "counter",
                    "Slab allocations requested of each slot size.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool == NULL) {
            continue;
        }
        for (s = 0; s < ZG_SLAB_NSLOTS; s++) {
            snprintf(slot, sizeof(slot), "%u", 1u << (s + ZG_SLAB_MIN_SHIFT));
            zg_admin_sample(b, "zonegate_slab_requests_total", sn[i].stats[s].reqs, "zone",
                            z->name, "slot", slot, NULL);
        }
        i++;
    }

    free(sn);
}

typedef struct {
    zg_upstream_conf_t *u;
    int i;
    char peer[80];
    zg_upstream_peer_stats_t st;
} zg_admin_peer_snap_t;

/* the peer label: its address, "#2", "#3" ... on repeats within the upstream */
static void zg_admin_peer_label(zg_upstream_conf_t *u, int i, char *buf, size_t len)
{
    int j, k = 1;

    for (j = 0; j < i; j++) {
        if (strcmp(u->servers[j].addr.text, u->servers[i].addr.text) == 0) {
            k++;
        }
    }
    if (k == 1) {
        snprintf(buf, len, "%s", u->servers[i].addr.text);
    } else {
        snprintf(buf, len, "%s#%d", u->servers[i].addr.text, k);
    }
}

/* peer_state: one series per state, exactly one of them 1: "down" (configured
 * down), "unavailable" (max_fails reached within fail_timeout), "backup" (a
 * usable backup server), "up" (a usable primary) */
static void zg_admin_metrics_upstreams(zg_admin_buf_t *b, const zg_conf_t *conf)
{
    static const char *states[] = { "up", "down", "unavailable", "backup" };
    zg_admin_peer_snap_t *ps;
    zg_upstream_conf_t *u;
    zg_msec_t now = zg_time_msec();
    int i, n = 0, np = 0, s, cur;

    for (u = conf->upstreams; u != NULL; u = u->next) {
        n += u->nservers > 0 ? u->nservers : 0;
    }
    ps = calloc(n ? n : 1, sizeof(*ps));
    if (ps == NULL) {
        b->failed = 1;
        return;
    }
    for (u = conf->upstreams; u != NULL; u = u->next) {
        for (i = 0; i < u->nservers; i++) {
            if (zg_upstream_peer_stats(u, i, &ps[np].st, now) != ZG_OK) {
                continue;
            }
            ps[np].u = u;
            ps[np].i = i;
            zg_admin_peer_label(u, i, ps[np].peer, sizeof(ps[np].peer));
            np++;
        }
    }

    zg_admin_family(b, "zonegate_upstream_peer_requests_total", "counter",
                    "Requests sent to the upstream peer (every pick).");
    for (i = 0; i < np; i++) {
        zg_admin_sample(b, "zonegate_upstream_peer_requests_total", ps[i].st.requests,
                        "upstream", ps[i].u->name, "peer", ps[i].peer, NULL);
    }

    zg_admin_family(b, "zonegate_upstream_peer_failures_total", "counter",
                    "Requests to the upstream peer that failed.");
    for (i = 0; i < np; i++) {
        zg_admin_sample(b, "zonegate_upstream_peer_failures_total", ps[i].st.fails,
                        "upstream", ps[i].u->name, "peer", ps[i].peer, NULL);
    }

    zg_admin_family(b, "zonegate_upstream_peer_active", "gauge",
                    "Requests using the upstream peer now.");
    for (i = 0; i < np; i++) {
        zg_admin_sample(b, "zonegate_upstream_peer_active", ps[i].st.active, "upstream",
                        ps[i].u->name, "peer", ps[i].peer, NULL);
    }

    zg_admin_family(b, "zonegate_upstream_peer_state", "gauge",
                    "State of the upstream peer: the series of its current state is 1.");
    for (i = 0; i < np; i++) {
        cur = ps[i].st.down ? 1 : ps[i].st.unavailable ? 2 : ps[i].st.backup ? 3 : 0;
        for (s = 0; s < 4; s++) {
            zg_admin_sample(b, "zonegate_upstream_peer_state", s == cur, "upstream",
                            ps[i].u->name, "peer", ps[i].peer, "state", states[s], NULL);
        }
    }

    free(ps);
}

static uint64_t zg_admin_load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void zg_admin_metrics_process(zg_admin_buf_t *b, const zg_conf_t *conf)
{
    static const char *codes[] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
    zg_proc_stats_sh_t zero, *ps = zg_proc_stats;
    int i;

    (void)conf;
    if (ps == NULL) {
        memset(&zero, 0, sizeof(zero));
        ps = &zero;
    }

    zg_admin_family(b, "zonegate_worker_restarts_total", "counter",
                    "Workers respawned after they died.");
    zg_admin_sample(b, "zonegate_worker_restarts_total", zg_admin_load(&ps->worker_restarts),
                    NULL);
    zg_admin_family(b, "zonegate_reloads_total", "counter", "Successful reloads.");
    zg_admin_sample(b, "zonegate_reloads_total", zg_admin_load(&ps->reloads), NULL);
    zg_admin_family(b, "zonegate_reload_failures_total", "counter", "Failed reloads.");
    zg_admin_sample(b, "zonegate_reload_failures_total", zg_admin_load(&ps->reload_failures),
                    NULL);
    zg_admin_family(b, "zonegate_connections_total", "counter",
                    "Client connections accepted, all workers.");
    zg_admin_sample(b, "zonegate_connections_total", zg_admin_load(&ps->connections), NULL);
    zg_admin_family(b, "zonegate_accept_errors_total", "counter", "Failed accept() calls.");
    zg_admin_sample(b, "zonegate_accept_errors_total", zg_admin_load(&ps->accept_errors),
                    NULL);
    zg_admin_family(b, "zonegate_requests_total", "counter",
                    "Requests finalized, all workers.");
    zg_admin_sample(b, "zonegate_requests_total", zg_admin_load(&ps->requests), NULL);
    zg_admin_family(b, "zonegate_responses_total", "counter",
                    "Responses by status class.");
    for (i = 1; i <= 5; i++) {
        zg_admin_sample(b, "zonegate_responses_total", zg_admin_load(&ps->responses[i]),
                        "code", codes[i], NULL);
    }
    zg_admin_sample(b, "zonegate_responses_total", zg_admin_load(&ps->responses[0]), "code",
                    codes[0], NULL);
}

/* cluster sync (issue 8): only the zones created with sync=... */
static void zg_admin_metrics_sync(zg_admin_buf_t *b, const zg_conf_t *conf)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        { "zonegate_sync_up", "gauge", "1 when the zone's last exchange with Redis succeeded." },
        { "zonegate_sync_batches_total", "counter", "Batches answered by Redis." },
        { "zonegate_sync_keys_total", "counter", "Keys reconciled with Redis." },
        { "zonegate_sync_errors_total", "counter",
          "Failed connects, failed or timed-out batches, error replies." },
        { "zonegate_sync_dropped_total", "counter",
          "Dirty keys forgotten unsynced while Redis was unreachable." },
    };
    zg_limit_req_sync_stats_t st;
    zg_zone_t *z;
    uint64_t v;
    size_t f;

    if (zg_admin_zones_of(conf, ZG_ZONE_LIMIT_REQ) == 0) {
        return;
    }
    for (f = 0; f < zg_nelems(fam); f++) {
        int header = 0;

        for (z = conf->zones.head; z != NULL; z = z->next) {
            if (z->pool == NULL || z->kind != ZG_ZONE_LIMIT_REQ || z->conf == NULL ||
                ((const zg_limit_req_zone_conf_t *)z->conf)->sync_url == NULL ||
                zg_limit_req_sync_stats(z, &st) != ZG_OK) {
                continue;
            }
            if (!header) {
                zg_admin_family(b, fam[f].name, fam[f].type, fam[f].help);
                header = 1;
            }
            v = f == 0 ? (uint64_t)(st.up == ZG_SYNC_UP) : f == 1 ? st.batches
                : f == 2 ? st.keys : f == 3 ? st.errors : st.dropped;
            zg_admin_sample(b, fam[f].name, v, "zone", z->name, NULL);
        }
    }
}

/* Each group renders whole families (HELP, TYPE, then every sample), reading
 * its counters when called.  The cluster-sync counters (issue 8) go in a group
 * of their own: add zg_admin_metrics_sync() to this table. */
static void (*const zg_admin_metric_groups[])(zg_admin_buf_t *b, const zg_conf_t *conf) = {
    zg_admin_metrics_limit_req,
    zg_admin_metrics_limit_conn,
    zg_admin_metrics_zones,
    zg_admin_metrics_upstreams,
    zg_admin_metrics_process,
    zg_admin_metrics_sync,
};

char *zg_admin_metrics(const zg_conf_t *conf, size_t *len)
{
    zg_admin_buf_t b = { NULL, 0, 0, 0 };
    size_t i;

    for (i = 0; i < zg_nelems(zg_admin_metric_groups); i++) {
        zg_admin_metric_groups[i](&b, conf);
    }
    return zg_admin_finish(&b, len);
}
