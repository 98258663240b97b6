/* zg_stream_status.c — status_zone in stream servers: one shared zone holds a slot
 * of counters per status zone name; sessions add to their server's slot with
 * atomic adds (no lock on the session path), the API and /metrics read them. */
#include "zg_stream_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_admin.h"
#include "zg_log.h"
#include "zg_proc.h"
#include "zg_slab.h"
#include "zg_stream.h"
#include "zg_worker.h"

#define ZG_STREAM_STATUS_MAGIC 0x7a677373u
#define ZG_STREAM_STATUS_SIZE (128 * 1024)

/* one status zone's counters in shared memory */
typedef struct {
    char name[64];
    uint64_t processing[ZG_PROC_SLOTS]; /* per worker slot: the master zeroes a dead one's */
    uint64_t connections;
    uint64_t sessions[3];
    uint64_t total;
    uint64_t received;
    uint64_t sent;
} zg_stream_status_slot_sh_t;

typedef struct {
    uint32_t magic;
    int n;                        /* slots in use (names of this and earlier configs) */
    zg_stream_status_slot_sh_t slot[ZG_STREAM_STATUS_MAX];
} zg_stream_status_sh_t;

typedef struct {
    char **names;                 /* configured status zones, in order of appearance */
    int nnames;
    zg_zone_t *zone;
    zg_stream_status_slot_sh_t **slots; /* names[i]'s slot, set when the zone is mapped */
} zg_stream_status_main_conf_t;

typedef struct {
    int index;                    /* into names; -1 = no status_zone */
} zg_stream_status_conf_t;

#define zg_stream_status_main_conf(conf)                                               \
    ((zg_stream_status_main_conf_t *)zg_main_conf_of(conf, zg_stream_status_module))

/* a session counted as processing (set by the phase handler) */
#define zg_ss_counted(s) ((s)->ctx[zg_stream_status_module.index] != NULL)

static int zg_stream_status_zone_init(zg_zone_t *zone, void *old_data)
{
    zg_stream_status_main_conf_t *mcf = zone->conf;
    zg_stream_status_sh_t *sh = old_data;
    zg_slab_pool_t *pool = zone->pool;

    if (mcf == NULL) {
        return ZG_ERROR;
    }
    if (sh == NULL || sh->magic != ZG_STREAM_STATUS_MAGIC) {
        sh = zg_slab_calloc(pool, sizeof(*sh));
        if (sh == NULL) {
            zg_log_error(ZG_LOG_EMERG, 0, "zone \"%s\": no memory for the status zones",
                         zone->name);
            return ZG_ERROR;
        }
        sh->magic = ZG_STREAM_STATUS_MAGIC;
    }
    /* a reload keeps the counters of every name it keeps */
    for (int i = 0; i < mcf->nnames; i++) {
        int k;
        for (k = 0; k < sh->n && strcmp(sh->slot[k].name, mcf->names[i]) != 0; k++) {
        }
        if (k == sh->n) {
            if (sh->n == ZG_STREAM_STATUS_MAX) {
                zg_log_error(ZG_LOG_EMERG, 0, "more than %d stream status zones since start",
                             ZG_STREAM_STATUS_MAX);
                return ZG_ERROR;
            }
            memset(&sh->slot[k], 0, sizeof(sh->slot[k]));
            snprintf(sh->slot[k].name, sizeof(sh->slot[k].name), "%s", mcf->names[i]);
            sh->n++;
        }
        mcf->slots[i] = &sh->slot[k];
    }
    pool->data = sh;
    zone->data = sh;
    return ZG_OK;
}

const zg_zone_kind_t zg_stream_status_zone_kind = { "stream_status",
                                                    zg_stream_status_zone_init };

/* ---------------------------------------------------------------- sessions */

static zg_stream_status_slot_sh_t *zg_ss_slot(zg_stream_session_t *s)
{
    zg_stream_status_conf_t *c = zg_stream_conf(s, zg_stream_status_module);
    zg_stream_status_main_conf_t *mcf;

    if (c->index < 0) {
        return NULL;
    }
    mcf = zg_stream_status_main_conf(s->w->conf);
    return mcf->slots != NULL ? mcf->slots[c->index] : NULL;
}

#define zg_ss_add(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define zg_ss_load(p) __atomic_load_n((p), __ATOMIC_RELAXED)

/* the first preaccess handler: the session is accepted and processing */
static int zg_stream_status_handler(zg_stream_session_t *s)
{
    zg_stream_status_slot_sh_t *z = zg_ss_slot(s);

    if (z == NULL) {
        return ZG_DECLINED;
    }
    /* a byte marks the session as counted (ctx holds malloc'd memory only) */
    s->ctx[zg_stream_status_module.index] = malloc(1);
    if (s->ctx[zg_stream_status_module.index] == NULL) {
        return ZG_DECLINED;
    }
    zg_ss_add(&z->connections, 1);
    zg_ss_add(&z->processing[zg_worker_slot], 1);
    return ZG_DECLINED;
}

static void zg_stream_status_log(zg_stream_session_t *s)
{
    zg_stream_status_slot_sh_t *z = zg_ss_slot(s);
    int st = s->status;

    if (z == NULL) {
        return;
    }
    if (zg_ss_counted(s)) {
        zg_ss_add(&z->processing[zg_worker_slot], (uint64_t)-1);
    } else {
        zg_ss_add(&z->connections, 1); /* ended before the phases (a PROXY header) */
    }
    if (st >= 200 && st < 300) {
        zg_ss_add(&z->sessions[0], 1);
    } else if (st >= 400 && st < 500) {
        zg_ss_add(&z->sessions[1], 1);
    } else if (st >= 500 && st < 600) {
        zg_ss_add(&z->sessions[2], 1);
    }
    zg_ss_add(&z->total, 1);
    zg_ss_add(&z->received, s->bytes_received);
    zg_ss_add(&z->sent, s->bytes_sent);
}

/* ---------------------------------------------------------------- readers */

int zg_stream_status_count(const zg_conf_t *conf)
{
    zg_stream_status_main_conf_t *mcf = zg_stream_status_main_conf(conf);

    return mcf != NULL && mcf->zone != NULL && mcf->zone->data != NULL ? mcf->nnames : 0;
}

int zg_stream_status_get(const zg_conf_t *conf, int i, zg_stream_status_t *out)
{
    zg_stream_status_main_conf_t *mcf = zg_stream_status_main_conf(conf);
    zg_stream_status_slot_sh_t *z;

    if (i < 0 || i >= zg_stream_status_count(conf) || mcf->slots[i] == NULL) {
        return ZG_ERROR;
    }
    z = mcf->slots[i];
    out->name = mcf->names[i];
    out->processing = 0;
    for (int k = 0; k < ZG_PROC_SLOTS; k++) {
        out->processing += zg_ss_load(&z->processing[k]);
    }
    out->connections = zg_ss_load(&z->connections);
    for (int k = 0; k < 3; k++) {
        out->sessions[k] = zg_ss_load(&z->sessions[k]);
    }
    out->total = zg_ss_load(&z->total);
    out->received = zg_ss_load(&z->received);
    out->sent = zg_ss_load(&z->sent);
    return ZG_OK;
}

int zg_stream_status_find(const zg_conf_t *conf, const char *name)
{
    zg_stream_status_main_conf_t *mcf = zg_stream_status_main_conf(conf);

    for (int i = 0; i < zg_stream_status_count(conf); i++) {
        if (strcmp(mcf->names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

/* master: a dead worker's sessions are no longer processing */
static void zg_stream_status_worker_gone(zg_conf_t *conf, int slot)
{
    zg_stream_status_main_conf_t *mcf = zg_stream_status_main_conf(conf);

    for (int i = 0; i < zg_stream_status_count(conf); i++) {
        if (mcf->slots[i] != NULL && slot >= 0 && slot < ZG_PROC_SLOTS) {
            __atomic_store_n(&mcf->slots[i]->processing[slot], 0, __ATOMIC_RELAXED);
        }
    }
}

static void zg_stream_status_metrics(zg_buf_t *b, const zg_conf_t *conf)
{
    static const char *classes[] = { "2xx", "4xx", "5xx" };
    int n = zg_stream_status_count(conf);
    zg_stream_status_t st;

    if (n == 0) {
        return;
    }
    zg_admin_family(b, "zonegate_stream_server_zone_processing", "gauge",
                    "Stream sessions of the status zone open now.");
    for (int i = 0; i < n; i++) {
        if (zg_stream_status_get(conf, i, &st) == ZG_OK) {
            zg_admin_sample(b, "zonegate_stream_server_zone_processing", st.processing, "zone",
                            st.name, NULL);
        }
    }
    zg_admin_family(b, "zonegate_stream_server_zone_connections_total", "counter",
                    "Client connections accepted by the status zone's servers.");
    for (int i = 0; i < n; i++) {
        if (zg_stream_status_get(conf, i, &st) == ZG_OK) {
            zg_admin_sample(b, "zonegate_stream_server_zone_connections_total",
                            st.connections, "zone", st.name, NULL);
        }
    }
    zg_admin_family(b, "zonegate_stream_server_zone_sessions_total", "counter",
                    "Stream sessions ended, by the class of their $status.");
    for (int i = 0; i < n; i++) {
        if (zg_stream_status_get(conf, i, &st) == ZG_OK) {
            for (int k = 0; k < 3; k++) {
                zg_admin_sample(b, "zonegate_stream_server_zone_sessions_total",
                                st.sessions[k], "zone", st.name, "status", classes[k], NULL);
            }
        }
    }
    zg_admin_family(b, "zonegate_stream_server_zone_bytes_total", "counter",
                    "Bytes received from and sent to the clients of ended sessions.");
    for (int i = 0; i < n; i++) {
        if (zg_stream_status_get(conf, i, &st) == ZG_OK) {
            zg_admin_sample(b, "zonegate_stream_server_zone_bytes_total", st.received, "zone",
                            st.name, "direction", "received", NULL);
            zg_admin_sample(b, "zonegate_stream_server_zone_bytes_total", st.sent, "zone",
                            st.name, "direction", "sent", NULL);
        }
    }
}

/* ---------------------------------------------------------------- config */

/* status_zone NAME (a stream server) */
static int zg_stream_status_zone(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_stream_status_main_conf_t *mcf = zg_stream_status_main_conf(cf->conf);
    zg_stream_status_conf_t *c = conf;
    zg_str_t *v = &cf->args[1];
    char **slot, zerr[256];
    int i;

    (void)cmd;
    if (c->index >= 0) {
        return zg_conf_duplicate(cf);
    }
    if (v->len == 0 || v->len >= 64) {
        return zg_conf_invalid(cf, v);
    }
    for (i = 0; i < mcf->nnames && strcmp(mcf->names[i], v->data) != 0; i++) {
    }
    if (i == mcf->nnames) {
        if (mcf->nnames == ZG_STREAM_STATUS_MAX) {
            return zg_conf_error(cf, "too many status zones (at most %d)",
                                 ZG_STREAM_STATUS_MAX);
        }
        slot = zg_conf_push(cf->conf, mcf->names, mcf->nnames);
        if (slot == NULL || (*slot = zg_conf_strdup(cf->conf, v->data, v->len)) == NULL) {
            return zg_conf_nomem(cf);
        }
    }
    if (mcf->zone == NULL) {
        mcf->zone = zg_zone_declare(&cf->conf->zones, ZG_STREAM_STATUS_ZONE,
                                    &zg_stream_status_zone_kind, ZG_STREAM_STATUS_SIZE, zerr,
                                    sizeof(zerr));
        if (mcf->zone == NULL) {
            return zg_conf_error(cf, "%s", zerr);
        }
        mcf->zone->conf = mcf;
    }
    c->index = i;
    return ZG_OK;
}

static void *zg_stream_status_create_main_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_stream_status_main_conf_t));
}

static int zg_stream_status_init_main_conf(zg_cf_t *cf, void *conf)
{
    zg_stream_status_main_conf_t *mcf = conf;

    if (mcf->nnames > 0) {
        mcf->slots = zg_conf_alloc(cf->conf, (size_t)mcf->nnames * sizeof(*mcf->slots));
        if (mcf->slots == NULL) {
            return zg_conf_nomem(cf);
        }
    }
    return ZG_OK;
}

static void *zg_stream_status_create_conf(zg_conf_t *conf)
{
    zg_stream_status_conf_t *c = zg_conf_alloc(conf, sizeof(*c));

    if (c != NULL) {
        c->index = -1;
    }
    return c;
}

static const zg_command_t zg_stream_status_commands[] = {
    { "status_zone", ZG_CTX_STREAM_SRV, 0, 1, 1, zg_stream_status_zone, ZG_LOC_CONF, 0, NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_stream_status_module = {
    .name = "stream_status",
    .commands = zg_stream_status_commands,
    .create_main_conf = zg_stream_status_create_main_conf,
    .init_main_conf = zg_stream_status_init_main_conf,
    .create_loc_conf = zg_stream_status_create_conf,
    .stream_phase = ZG_STREAM_PHASE_PREACCESS,
    .stream_handler = zg_stream_status_handler,
    .stream_log = zg_stream_status_log,
    .worker_gone = zg_stream_status_worker_gone,
    .metrics = zg_stream_status_metrics,
};
