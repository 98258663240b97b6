/* zg_zone.h — named shared-memory regions.
 *
 * The master declares zones while it reads the config, maps them all
 * before forking (so a pointer into a zone is valid in every worker), and on
 * reload takes over the mapping of every zone whose name, kind and size did
 * not change.  A mapping starts with a zg_slab_pool_t (its mutex is the zone's
 * lock); the owning module keeps its root in pool->data. */
#ifndef ZG_ZONE_H
#define ZG_ZONE_H

#include "zg_core.h"
#include "zg_slab.h"

#define ZG_ZONE_MIN_PAGES 8

typedef struct zg_zone_s zg_zone_t;

/* Called once the zone is mapped; old_data is pool->data of a reused zone,
 * else NULL.  Sets zone->data (or zone->pool->data) to its root.
 * Returns ZG_OK or ZG_ERROR. */
typedef int (*zg_zone_init_pt)(zg_zone_t *zone, void *old_data);

/* What a zone is used for: each module that keeps state in zones defines one
 * (its name shows in errors, /metrics and the API; the same kind, name and size
 * lets a reload keep a zone). */
typedef struct {
    const char *name;           /* "limit_req" */
    zg_zone_init_pt init;       /* copied to every zone of the kind */
} zg_zone_kind_t;

struct zg_zone_s {
    char name[64];
    const zg_zone_kind_t *kind;
    size_t size;                /* bytes, a page multiple; 0 = not known yet */
    void *addr;                 /* the mapping, NULL until mapped */
    zg_slab_pool_t *pool;       /* == addr */
    zg_zone_init_pt init;
    void *conf;                 /* owning module's config */
    void *data;                 /* module's root in the zone, = pool->data */
    int reused;                 /* mapping taken over from the previous list */
    zg_shmtx_watch_t watch;     /* the master's watchdog state for the zone lock */
    zg_zone_t *next;
};

/* owns its zones (malloc'ed); not the mappings */
typedef struct {
    zg_zone_t *head;
} zg_zone_list_t;

/* Adds a zone, or returns the existing zone of that name.  size is rounded
 * up to a page multiple; 0 means "given by another declaration".  Errors
 * (NULL, message in err): bad name, size below ZG_ZONE_MIN_PAGES pages,
 * another kind or another non-zero size than an earlier declaration, no memory. */
zg_zone_t *zg_zone_declare(zg_zone_list_t *l, const char *name, const zg_zone_kind_t *kind,
                           size_t size, char *err, size_t errlen);

/* The zone of that name, NULL if none. */
zg_zone_t *zg_zone_find(zg_zone_list_t *l, const char *name);

/* Maps every zone of l: a zone of old (may be NULL) with the same name,
 * kind and size and a mapping is taken over (reused = 1, pool not
 * reinitialised); any other gets a fresh MAP_SHARED|MAP_ANONYMOUS mapping
 * and zg_slab_init.  Then calls zone->init(zone, reused ? old pool->data :
 * NULL) and sets zone->data = pool->data.  Never unmaps anything of old.
 * Returns ZG_OK, or ZG_ERROR with a message in err (a zone without size, mmap
 * failure, init failure); then every fresh mapping of l is unmapped again
 * and no zone of l holds a mapping. */
int zg_zone_map_all(zg_zone_list_t *l, zg_zone_list_t *old, char *err, size_t errlen);

/* Unmaps the zones of old whose mapping no zone of now (may be NULL) took
 * over, and forgets all mappings of old. */
void zg_zone_unmap_unused(zg_zone_list_t *old, zg_zone_list_t *now);

/* Unmaps every zone of l. */
void zg_zone_unmap_all(zg_zone_list_t *l);

/* Frees the zone structs of l (not their mappings); l is empty afterwards. */
void zg_zone_list_free(zg_zone_list_t *l);

/* For the master after reaping `dead`: releases every zone lock it held
 * (zg_shmtx_recover). */
void zg_zone_recover_locks(zg_zone_list_t *l, pid_t dead);

#endif
