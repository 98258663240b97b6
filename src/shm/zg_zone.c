/* zg_zone.c — named shared regions: declare, map, reuse on reload, unmap. */
#include "zg_zone.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "zg_log.h"

static void zg_zone_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void zg_zone_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

zg_zone_t *zg_zone_find(zg_zone_list_t *l, const char *name)
{
    zg_zone_t *z;

    for (z = l->head; z != NULL; z = z->next) {
        if (strcmp(z->name, name) == 0) {
            return z;
        }
    }
    return NULL;
}

zg_zone_t *zg_zone_declare(zg_zone_list_t *l, const char *name, const zg_zone_kind_t *kind,
                           size_t size,
                           char *err, size_t errlen)
{
    zg_zone_t *z, **tail;
    size_t len;

    len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len >= sizeof(z->name)) {
        zg_zone_err(err, errlen, "invalid zone name \"%s\"", name != NULL ? name : "");
        return NULL;
    }
    if (size != 0) {
        if (size > SIZE_MAX - ZG_SLAB_PAGE_SIZE) {
            zg_zone_err(err, errlen, "zone \"%s\" is too big", name);
            return NULL;
        }
        size = zg_align(size, ZG_SLAB_PAGE_SIZE);
        if (size < ZG_ZONE_MIN_PAGES * ZG_SLAB_PAGE_SIZE) {
            zg_zone_err(err, errlen, "zone \"%s\" is too small: %zu bytes, the minimum is %d",
                        name, size, ZG_ZONE_MIN_PAGES * ZG_SLAB_PAGE_SIZE);
            return NULL;
        }
    }

    z = zg_zone_find(l, name);
    if (z != NULL) {
        if (z->kind != kind) {
            zg_zone_err(err, errlen, "zone \"%s\" is already declared for %s", name,
                        z->kind != NULL ? z->kind->name : "unknown");
            return NULL;
        }
        if (size != 0 && z->size != 0 && z->size != size) {
            zg_zone_err(err, errlen, "zone \"%s\" is already declared with size %zu", name,
                        z->size);
            return NULL;
        }
        if (z->size == 0) {
            z->size = size;
        }
        return z;
    }

    z = calloc(1, sizeof(zg_zone_t));
    if (z == NULL) {
        zg_zone_err(err, errlen, "zone \"%s\": out of memory", name);
        return NULL;
    }
    memcpy(z->name, name, len + 1);
    z->kind = kind;
    z->init = kind != NULL ? kind->init : NULL;
    z->size = size;
    for (tail = &l->head; *tail != NULL; tail = &(*tail)->next) {
        /* void */
    }
    *tail = z;
    return z;
}

/* the zone of old whose mapping z may take over */
static zg_zone_t *zg_zone_reusable(zg_zone_list_t *old, zg_zone_t *z)
{
    zg_zone_t *o;

    if (old == NULL) {
        return NULL;
    }
    o = zg_zone_find(old, z->name);
    if (o == NULL || o->addr == NULL || o->pool == NULL || o->kind != z->kind
        || o->size != z->size) {
        return NULL;
    }
    return o;
}

/* 1 if some zone of l maps addr */
static int zg_zone_maps(zg_zone_list_t *l, void *addr)
{
    zg_zone_t *z;

    if (l == NULL) {
        return 0;
    }
    for (z = l->head; z != NULL; z = z->next) {
        if (z->addr == addr) {
            return 1;
        }
    }
    return 0;
}

static void zg_zone_forget(zg_zone_t *z)
{
    z->addr = NULL;
    z->pool = NULL;
    z->data = NULL;
    z->reused = 0;
}

int zg_zone_map_all(zg_zone_list_t *l, zg_zone_list_t *old, char *err, size_t errlen)
{
    zg_zone_t *z, *o;
    void *addr, *old_data;

    for (z = l->head; z != NULL; z = z->next) {
        zg_zone_forget(z);
    }

    for (z = l->head; z != NULL; z = z->next) {
        if (z->size == 0) {
            zg_zone_err(err, errlen, "zone \"%s\" has no size", z->name);
            goto failed;
        }
        o = zg_zone_reusable(old, z);
        if (o != NULL) {
            z->addr = o->addr;
            z->pool = o->pool;
            z->reused = 1;
            continue;
        }
        addr = mmap(NULL, z->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (addr == MAP_FAILED) {
            zg_zone_err(err, errlen, "mmap(%zu) for zone \"%s\" failed: %s", z->size, z->name,
                        strerror(errno));
            goto failed;
        }
        z->addr = addr;
        z->pool = zg_slab_init(addr, z->size);
        if (z->pool == NULL) {
            zg_zone_err(err, errlen, "zone \"%s\": cannot lay a slab pool over %zu bytes",
                        z->name, z->size);
            goto failed;
        }
    }

    for (z = l->head; z != NULL; z = z->next) {
        old_data = z->reused ? z->pool->data : NULL;
        z->data = NULL;
        if (z->init != NULL && z->init(z, old_data) != ZG_OK) {
            zg_zone_err(err, errlen, "zone \"%s\": initialisation failed", z->name);
            goto failed;
        }
        if (z->data != NULL) {
            z->pool->data = z->data;
        } else {
            z->data = z->pool->data;
        }
    }
    return ZG_OK;

failed:
    for (z = l->head; z != NULL; z = z->next) {
        if (z->addr != NULL && !z->reused) {
            munmap(z->addr, z->size);
        }
        zg_zone_forget(z);
    }
    return ZG_ERROR;
}

void zg_zone_unmap_unused(zg_zone_list_t *old, zg_zone_list_t *now)
{
    zg_zone_t *z;

    for (z = old->head; z != NULL; z = z->next) {
        if (z->addr != NULL && !zg_zone_maps(now, z->addr)) {
            munmap(z->addr, z->size);
        }
        zg_zone_forget(z);
    }
}

void zg_zone_unmap_all(zg_zone_list_t *l)
{
    zg_zone_unmap_unused(l, NULL);
}

void zg_zone_list_free(zg_zone_list_t *l)
{
    zg_zone_t *z, *next;

    for (z = l->head; z != NULL; z = next) {
        next = z->next;
        free(z);
    }
    l->head = NULL;
}

void zg_zone_recover_locks(zg_zone_list_t *l, pid_t dead)
{
    zg_zone_t *z;

    for (z = l->head; z != NULL; z = z->next) {
        if (z->pool != NULL && zg_shmtx_recover(&z->pool->mutex, dead)) {
#ifdef ZG_DEBUG
            /* the dead holder may have left the pool half-updated */
            zg_shmtx_lock(&z->pool->mutex);
            if (zg_slab_validate(z->pool) != ZG_OK) {
                zg_log_error(ZG_LOG_ALERT, 0, "zone \"%s\": the slab pool is inconsistent "
                             "after its lock was recovered from pid %d", z->name, (int)dead);
            }
            zg_shmtx_unlock(&z->pool->mutex);
#endif
        }
    }
}
