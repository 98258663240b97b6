/* zg_admin.c — the admin module: `slab_stat` and `metrics` content handlers.
 * /metrics renders every module's families (zg_module_t.metrics, in the order of
 * zg_modules.c), then the zones' memory and the process counters. */
#include "zg_admin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zg_http_core.h"
#include "zg_log.h"
#include "zg_proc.h"
#include "zg_request.h"

char *zg_admin_slab_stat(const zg_conf_t *conf, size_t *len)
{
    zg_buf_t b = ZG_BUF_INIT;
    zg_zone_t *z;
    size_t want, got;

    for (z = conf->zones.head; z != NULL; z = z->next) {
        if (z->pool == NULL) {
            continue;
        }
        want = zg_slab_stat_render(z->pool, z->name, NULL, 0);
        for (;;) {
            if (zg_buf_reserve(&b, want) != ZG_OK) {
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
    return zg_buf_detach(&b, len);
}

/* ---- Prometheus text format 0.0.4 ---- */

void zg_admin_family(zg_buf_t *b, const char *name, const char *type,
                            const char *help)
{
    zg_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* a label value with \ " and newline escaped */
static void zg_admin_label_value(zg_buf_t *b, const char *v)
{
    const char *p, *start = v;

    for (p = v; *p; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;

        if (esc != NULL) {
            zg_buf_append(b, start, (size_t)(p - start));
            zg_buf_append(b, esc, 2);
            start = p + 1;
        }
    }
    zg_buf_append(b, start, (size_t)(p - start));
}

/* name{k1="v1",k2="v2"} value — the labels as (key, value) pairs ending with NULL */
void zg_admin_sample(zg_buf_t *b, const char *name, uint64_t value, ...)
{
    const char *k, *v;
    va_list ap;
    int first = 1;

    zg_buf_append(b, name, strlen(name));
    va_start(ap, value);
    while ((k = va_arg(ap, const char *)) != NULL) {
        v = va_arg(ap, const char *);
        zg_buf_printf(b, "%s%s=\"", first ? "{" : ",", k);
        zg_admin_label_value(b, v);
        zg_buf_append(b, "\"", 1);
        first = 0;
    }
    va_end(ap);
    zg_buf_printf(b, "%s %" PRIu64 "\n", first ? "" : "}", value);
}

int zg_admin_zones_of(const zg_conf_t *conf, const zg_zone_kind_t *kind)
{
    zg_zone_t *z;
    int n = 0;

    for (z = conf->zones.head; z != NULL; z = z->next) {
        if (z->pool != NULL && (kind == NULL || z->kind == kind)) {
            n++;
        }
    }
    return n;
}

typedef struct {
    zg_slab_stat_t stats[ZG_SLAB_NSLOTS];
    size_t pages_free;
    uint64_t page_fails;
    uint64_t lock_waits, lock_wait_ns, lock_spins;
} zg_admin_pool_snap_t;


/* zone_bytes: total = the zone's size, free = its free pages, used = the rest
 * (so the pool header and page descriptors count as used) */
static void zg_admin_metrics_zones(zg_buf_t *b, const zg_conf_t *conf)
{
    zg_admin_pool_snap_t *sn;
    zg_zone_t *z;
    uint64_t sum, total, fr;
    char slot[24];
    int i, s, n = zg_admin_zones_of(conf, NULL);

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
        /* before our own acquisition could have counted */
        sn[i].lock_waits = __atomic_load_n(&z->pool->mutex.contended, __ATOMIC_RELAXED);
        sn[i].lock_wait_ns = __atomic_load_n(&z->pool->mutex.wait_ns, __ATOMIC_RELAXED);
        sn[i].lock_spins = __atomic_load_n(&z->pool->mutex.spins, __ATOMIC_RELAXED);
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
                        z->kind->name, "type", "total", NULL);
        zg_admin_sample(b, "zonegate_zone_bytes", total > fr ? total - fr : 0, "zone",
                        z->name, "kind", z->kind->name, "type", "used", NULL);
        zg_admin_sample(b, "zonegate_zone_bytes", fr, "zone", z->name, "kind",
                        z->kind->name, "type", "free", NULL);
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

    zg_admin_family(b, "zonegate_zone_lock_waits_total", "counter",
                    "Acquisitions of the zone's lock that found it held and waited.");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool == NULL) {
            continue;
        }
        zg_admin_sample(b, "zonegate_zone_lock_waits_total", sn[i].lock_waits, "zone", z->name,
                        NULL);
        i++;
    }
    zg_admin_family(b, "zonegate_zone_lock_spins_total", "counter",
                    "Spin rounds of those waits (0 when the process may run on one CPU only).");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool == NULL) {
            continue;
        }
        zg_admin_sample(b, "zonegate_zone_lock_spins_total", sn[i].lock_spins, "zone", z->name,
                        NULL);
        i++;
    }
    zg_admin_family(b, "zonegate_zone_lock_wait_seconds_total", "counter",
                    "Time spent waiting for the zone's lock (spinning or asleep).");
    for (z = conf->zones.head, i = 0; z != NULL; z = z->next) {
        if (z->pool == NULL) {
            continue;
        }
        zg_buf_printf(b, "zonegate_zone_lock_wait_seconds_total{zone=\"");
        zg_admin_label_value(b, z->name);
        zg_buf_printf(b, "\"} %" PRIu64 ".%09" PRIu64 "\n", sn[i].lock_wait_ns / 1000000000u,
                      sn[i].lock_wait_ns % 1000000000u);
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

static uint64_t zg_admin_load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void zg_admin_metrics_process(zg_buf_t *b, const zg_conf_t *conf)
{
    static const char *codes[] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
    static zg_proc_stats_sh_t zero;
    zg_proc_stats_sh_t *ps = zg_proc_stats != NULL ? zg_proc_stats : &zero;
    uint64_t conns = 0, reqs = 0, resp[6] = { 0 }, upc = 0, upns = 0;
    char slot[16], index[16];
    int i, k;

    (void)conf;
    for (i = 0; i < ZG_PROC_SLOTS; i++) {
        zg_proc_worker_sh_t *w = &ps->workers[i];
        conns += zg_admin_load(&w->connections);
        reqs += zg_admin_load(&w->requests);
        upc += zg_admin_load(&w->upstream_connects);
        upns += zg_admin_load(&w->upstream_connect_ns);
        for (k = 0; k < 6; k++) {
            resp[k] += zg_admin_load(&w->responses[k]);
        }
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
    zg_admin_sample(b, "zonegate_connections_total", conns, NULL);
    zg_admin_family(b, "zonegate_accept_errors_total", "counter", "Failed accept() calls.");
    zg_admin_sample(b, "zonegate_accept_errors_total", zg_admin_load(&ps->accept_errors),
                    NULL);
    zg_admin_family(b, "zonegate_requests_total", "counter",
                    "Requests finalized, all workers.");
    zg_admin_sample(b, "zonegate_requests_total", reqs, NULL);
    zg_admin_family(b, "zonegate_responses_total", "counter",
                    "Responses by status class.");
    for (i = 1; i <= 5; i++) {
        zg_admin_sample(b, "zonegate_responses_total", resp[i], "code", codes[i], NULL);
    }
    zg_admin_sample(b, "zonegate_responses_total", resp[0], "code", codes[0], NULL);

    zg_admin_family(b, "zonegate_upstream_connects_total", "counter",
                    "New upstream connections (those not taken from a keepalive pool).");
    zg_admin_sample(b, "zonegate_upstream_connects_total", upc, NULL);
    zg_admin_family(b, "zonegate_upstream_connect_seconds_total", "counter",
                    "Time from connect() until upstream connections were established.");
    zg_buf_printf(b, "zonegate_upstream_connect_seconds_total %" PRIu64 ".%09" PRIu64 "\n",
                  upns / 1000000000u, upns % 1000000000u);

    /* the balance: per worker slot (slots are reused by respawned and reloaded
     * workers; the counters of a slot add up over the workers it had) */
    zg_admin_family(b, "zonegate_worker_connections_total", "counter",
                    "Client connections accepted, by worker slot.");
    for (i = 0; i < ZG_PROC_SLOTS; i++) {
        if (ps->used[i]) {
            snprintf(slot, sizeof(slot), "%d", i);
            zg_admin_sample(b, "zonegate_worker_connections_total",
                            zg_admin_load(&ps->workers[i].connections), "worker", slot, NULL);
        }
    }
    zg_admin_family(b, "zonegate_worker_requests_total", "counter",
                    "Requests finalized, by worker slot.");
    for (i = 0; i < ZG_PROC_SLOTS; i++) {
        if (ps->used[i]) {
            snprintf(slot, sizeof(slot), "%d", i);
            zg_admin_sample(b, "zonegate_worker_requests_total",
                            zg_admin_load(&ps->workers[i].requests), "worker", slot, NULL);
        }
    }
    zg_admin_family(b, "zonegate_worker_pid", "gauge",
                    "The running worker of each slot, its pid; index: its listening sockets.");
    for (i = 0; i < ZG_PROC_SLOTS; i++) {
        int32_t pid = __atomic_load_n(&ps->pid[i], __ATOMIC_ACQUIRE);
        if (pid > 0) {
            snprintf(slot, sizeof(slot), "%d", i);
            snprintf(index, sizeof(index), "%d", (int)ps->index[i]);
            zg_admin_sample(b, "zonegate_worker_pid", (uint64_t)pid, "worker", slot, "index",
                            index, NULL);
        }
    }
}

char *zg_admin_metrics(const zg_conf_t *conf, size_t *len)
{
    zg_buf_t b = ZG_BUF_INIT;

    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->metrics != NULL) {
            zg_modules[i]->metrics(&b, conf);
        }
    }
    zg_admin_metrics_zones(&b, conf);
    zg_admin_metrics_process(&b, conf);
    return zg_buf_detach(&b, len);
}

static int zg_admin_respond(zg_request_t *r, char *text, size_t len, const char *ctype)
{
    if (text == NULL) {
        zg_request_respond(r, 500, NULL, NULL, NULL, 0);
        return ZG_DONE;
    }
    zg_request_respond(r, 200, NULL, ctype, text, len);
    free(text);
    return ZG_DONE;
}

static int zg_admin_slab_stat_handler(zg_request_t *r)
{
    size_t len = 0;
    char *text = zg_admin_slab_stat(r->c->w->conf, &len);

    return zg_admin_respond(r, text, len, "text/plain");
}

static int zg_admin_metrics_handler(zg_request_t *r)
{
    size_t len = 0;
    char *text = zg_admin_metrics(r->c->w->conf, &len);

    return zg_admin_respond(r, text, len, ZG_ADMIN_METRICS_CONTENT_TYPE);
}

static int zg_admin_set_handler(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    (void)conf;
    return zg_http_core_set_handler(cf, (zg_phase_handler_pt)cmd->post);
}

static const zg_command_t zg_admin_commands[] = {
    { "slab_stat", ZG_CTX_LOC, 0, 0, 0, zg_admin_set_handler, ZG_LOC_CONF, 0,
      (const void *)zg_admin_slab_stat_handler },
    { "metrics", ZG_CTX_LOC, 0, 0, 0, zg_admin_set_handler, ZG_LOC_CONF, 0,
      (const void *)zg_admin_metrics_handler },
    ZG_NULL_COMMAND
};

zg_module_t zg_admin_module = {
    .name = "admin",
    .commands = zg_admin_commands,
};
