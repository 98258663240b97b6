/* zg_sync.c — cluster-wide limit_req and limit_conn through Redis (hiredis on the
 * worker's libuv loop): one Redis, a master found through Sentinel, or a Redis Cluster,
 * with AUTH.
 *
 * Redis holds, per synced key, the fleet's leaky bucket: a hash zg:{ZONE}:KEY
 * with e (excess, thousandths of a request) and t (ms of Redis' clock when e
 * was stored), draining at the zone's rate.  A batch is one EVALSHA over up to
 * ZG_SYNC_BATCH keys of one zone (one hash slot thanks to the {ZONE} tag): for
 * each key the script drains e to now, adds the requests this host admitted
 * since its last push (x 1000) and answers the new e.  The host then sets the
 * key's local bucket to e + what it admitted meanwhile (zg_limit_req_sync_apply),
 * so every host sees the fleet's traffic within one interval and its own at once.
 * Since each push adds only this host's own admissions once, no host id is needed
 * and nothing is counted twice.  limit_conn zones push leases instead (see
 * zg_sync_conn_script).
 *
 * A link is one connection (AUTH, SELECT, SCRIPT LOAD queued at connect).  With
 * Sentinel the link first asks a sentinel for the master and stays subscribed to
 * +switch-master there; with a Cluster every master has a link and each zone uses
 * the master of its hash tag's slot, from a slot map kept by zg_sync_cluster_t. */
#include "zg_sync.h"
#include "zg_sync_api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libuv.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zg_admin.h"
#include "zg_buf.h"
#include "zg_keyval.h"
#include "zg_limit_conn.h"
#include "zg_limit_req.h"
#include "zg_log.h"
#include "zg_proc.h"
#include "zg_worker.h"

/* KEYS = the keys; ARGV[1] = rate (thousandths of a request per second),
 * ARGV[2] = the sync interval (ms), ARGV[2 + i] = requests admitted for KEYS[i]
 * since this host's last push.  The pushed requests arrived over the interval,
 * not all now: they are added before the drain since the key's last update (a
 * new key counts as updated one interval ago), else a fast zone (rate x interval
 * above its burst) would be charged requests that have long drained.  Answers
 * the fleet's excess of every key (thousandths) after the push; a key without
 * a push (d = 0) is only read. */
static const char zg_sync_script[] =
    "local rate = tonumber(ARGV[1])\n"
    "local span = tonumber(ARGV[2])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local out = {}\n"
    "for i = 1, #KEYS do\n"
    "  local d = tonumber(ARGV[i + 2])\n"
    "  local v = redis.call('HMGET', KEYS[i], 'e', 't')\n"
    "  local e = (tonumber(v[1]) or 0) + d * 1000\n"
    "  local last = tonumber(v[2]) or (now - span)\n"
    "  if now > last then\n"
    "    e = e - rate * (now - last) / 1000\n"
    "    if e < 0 then e = 0 end\n"
    "  end\n"
    "  if d > 0 then\n"
    "    redis.call('HSET', KEYS[i], 'e', e, 't', now)\n"
    "    redis.call('PEXPIRE', KEYS[i], math.floor(e * 1000 / rate) + 60000)\n"
    "  end\n"
    "  out[i] = math.floor(e)\n"
    "end\n"
    "return out\n";

/* limit_conn leases.  KEYS = the keys, a hash each: field = host, value =
 * "COUNT:EXPIRY" (ms of Redis' clock); ARGV[1] = this host, ARGV[2] = the lease
 * TTL (ms), ARGV[2 + i] = this host's count of KEYS[i] (0 drops its lease).
 * Expired leases (a host that died or lost Redis) are deleted on the way; the hash
 * expires with its last lease.  Answers the sum of the other hosts' live leases. */
static const char zg_sync_conn_script[] =
    "local host = ARGV[1]\n"
    "local ttl = tonumber(ARGV[2])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local out = {}\n"
    "for i = 1, #KEYS do\n"
    "  local c = tonumber(ARGV[i + 2])\n"
    "  if c > 0 then\n"
    "    redis.call('HSET', KEYS[i], host, c .. ':' .. (now + ttl))\n"
    "  else\n"
    "    redis.call('HDEL', KEYS[i], host)\n"
    "  end\n"
    "  local v = redis.call('HGETALL', KEYS[i])\n"
    "  local sum, last = 0, 0\n"
    "  for j = 1, #v, 2 do\n"
    "    local n, x = string.match(v[j + 1], '^(%d+):(%d+)$')\n"
    "    n = tonumber(n) or 0\n"
    "    x = tonumber(x) or 0\n"
    "    if x <= now then\n"
    "      redis.call('HDEL', KEYS[i], v[j])\n"
    "    else\n"
    "      if v[j] ~= host then sum = sum + n end\n"
    "      if x > last then last = x end\n"
    "    end\n"
    "  end\n"
    "  if last > 0 then redis.call('PEXPIREAT', KEYS[i], last) end\n"
    "  out[i] = sum\n"
    "end\n"
    "return out\n";

/* keyval zones.  KEYS = the zone's hash (key -> value), its log (sorted set: key ->
 * the stamp of its last write, deletes included), its tombstones (sorted set: key
 * -> the stamp of its delete) and a meta hash (last stamp, trim floor); one hash
 * tag, so one slot.  ARGV[1] = the stamp this host has read up to, ARGV[2] = most
 * changes to answer, ARGV[3] = the zone's timeout (ms, 0 = none), then triples
 * OP KEY VALUE: 's' set, 'd' delete, 'c' clear.  Each write is stamped with Redis'
 * clock in microseconds, kept strictly increasing, so the last write to reach Redis
 * wins.  Tombstones older than an hour (and entries older than timeout + an hour)
 * are trimmed; a host whose stamp is older than the trim floor is told to reset.
 * Answers [stamp read up to, reset, entries in the hash, KEY, VALUE or nil, ...]:
 * the changes after ARGV[1], oldest first; nil = deleted or expired. */
static const char zg_sync_kv_script[] =
    "local kv, log, dead, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
    "local cursor = tonumber(ARGV[1])\n"
    "local max = tonumber(ARGV[2])\n"
    "local ttl = tonumber(ARGV[3]) * 1000\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local last = tonumber(redis.call('HGET', meta, 'last')) or 0\n"
    "local floor = tonumber(redis.call('HGET', meta, 'floor')) or 0\n"
    "local function stamp()\n"
    "  if now <= last then now = last + 1 end\n"
    "  last = now\n"
    "  return now\n"
    "end\n"
    "local i = 4\n"
    "while i + 2 <= #ARGV do\n"
    "  local op, k = ARGV[i], ARGV[i + 1]\n"
    "  if op == 's' then\n"
    "    redis.call('HSET', kv, k, ARGV[i + 2])\n"
    "    redis.call('ZADD', log, stamp(), k)\n"
    "    redis.call('ZREM', dead, k)\n"
    "  elseif op == 'd' then\n"
    "    local s = stamp()\n"
    "    redis.call('HDEL', kv, k)\n"
    "    redis.call('ZADD', log, s, k)\n"
    "    redis.call('ZADD', dead, s, k)\n"
    "  elseif op == 'c' then\n"
    "    local s = stamp()\n"
    "    for _, m in ipairs(redis.call('HKEYS', kv)) do\n"
    "      redis.call('ZADD', log, s, m)\n"
    "      redis.call('ZADD', dead, s, m)\n"
    "    end\n"
    "    redis.call('DEL', kv)\n"
    "  end\n"
    "  i = i + 3\n"
    "end\n"
    "if last > 0 then redis.call('HSET', meta, 'last', last) end\n"
    "local keep = 3600000000\n"
    "local old = redis.call('ZRANGEBYSCORE', dead, '-inf', now - keep, 'WITHSCORES', 'LIMIT', 0, 256)\n"
    "if ttl > 0 then\n"
    "  local o2 = redis.call('ZRANGEBYSCORE', log, '-inf', now - keep - ttl, 'WITHSCORES', 'LIMIT', 0, 256)\n"
    "  for j = 1, #o2 do old[#old + 1] = o2[j] end\n"
    "end\n"
    "for j = 1, #old, 2 do\n"
    "  redis.call('ZREM', log, old[j])\n"
    "  redis.call('ZREM', dead, old[j])\n"
    "  redis.call('HDEL', kv, old[j])\n"
    "  local s = tonumber(old[j + 1])\n"
    "  if s > floor then floor = s end\n"
    "end\n"
    "if #old > 0 then redis.call('HSET', meta, 'floor', floor) end\n"
    "local reset = 0\n"
    "if cursor > 0 and cursor < floor then\n"
    "  reset = 1\n"
    "  cursor = 0\n"
    "end\n"
    "local ch = redis.call('ZRANGEBYSCORE', log, string.format('(%.0f', cursor), '+inf', 'WITHSCORES', 'LIMIT', 0, max)\n"
    "local out = {cursor, reset, redis.call('HLEN', kv)}\n"
    "for j = 1, #ch, 2 do\n"
    "  local s = tonumber(ch[j + 1])\n"
    "  local v = redis.call('HGET', kv, ch[j])\n"
    "  if ttl > 0 and s < now - ttl then v = false end\n"
    "  out[#out + 1] = ch[j]\n"
    "  out[#out + 1] = v\n"
    "  out[1] = s\n"
    "end\n"
    "return out\n";

enum { ZG_SYNC_KIND_REQ = 0, ZG_SYNC_KIND_CONN, ZG_SYNC_KIND_KV, ZG_SYNC_KINDS };

static const struct {
    const char *directive;
    const char *script;
    size_t len;
} zg_sync_kinds[ZG_SYNC_KINDS] = {
    { "limit_req_zone", zg_sync_script, sizeof(zg_sync_script) - 1 },
    { "limit_conn_zone", zg_sync_conn_script, sizeof(zg_sync_conn_script) - 1 },
    { "keyval_zone", zg_sync_kv_script, sizeof(zg_sync_kv_script) - 1 },
};

enum { ZG_LINK_DOWN = 0, ZG_LINK_RESOLVING, ZG_LINK_CONNECTING, ZG_LINK_UP };

typedef struct zg_sync_batch_s zg_sync_batch_t;
typedef struct zg_sync_cluster_s zg_sync_cluster_t;

typedef struct {
    const zg_sync_conf_t *sc; /* the first zone's: every zone on the link has the same */
    redisAsyncContext *ac;
    redisAsyncContext *sac;   /* sentinel: the one asked, then subscribed to +switch-master */
    int state;
    zg_msec_t since;      /* resolving / connecting started */
    zg_msec_t next_try;
    zg_msec_t backoff;
    uv_getaddrinfo_t gai;
    int gai_busy;
    char sha[ZG_SYNC_KINDS][48]; /* per script, "" until SCRIPT LOAD answers */
    char ip[INET6_ADDRSTRLEN]; /* the node connected to (sentinel: the master) */
    int port;
    int sentinel;         /* the sentinel to ask next */
    zg_sync_cluster_t *cluster; /* a cluster's master node (at ip:port), or NULL */
} zg_sync_link_t;

#define ZG_SYNC_CLUSTER_NODES 64  /* masters one cluster may have */
#define ZG_SYNC_SLOTS 16384

/* A Redis Cluster: its slot map, from CLUSTER SLOTS on a connection of its own,
 * and one link per master (in the pool of links).  A zone's keys share one hash
 * tag, so one slot: each zone talks to the master of its slot. */
struct zg_sync_cluster_s {
    const zg_sync_conf_t *sc;
    zg_sync_link_t *nodes[ZG_SYNC_CLUSTER_NODES];
    int nnodes;
    int16_t *slot;        /* ZG_SYNC_SLOTS entries: index into nodes, -1 = unknown */
    redisAsyncContext *ac; /* asking CLUSTER SLOTS */
    char asked[INET6_ADDRSTRLEN]; /* the address asked ("" in a reply means it) */
    int have_map;
    int refresh;          /* ask again: MOVED, a master lost */
    zg_msec_t since, next_try, backoff;
    unsigned next;        /* the seed or known master to ask next */
};

typedef struct {
    int kind;                 /* ZG_SYNC_KIND_* */
    const zg_sync_conf_t *sc;
    uint64_t rate;            /* limit_req: the zone's rate */
    zg_msec_t ttl;            /* limit_conn: the lease TTL; keyval: the zone's timeout */
    zg_zone_t *zone;
    zg_sync_link_t *link;     /* cluster: the master of its slot, NULL while unknown */
    zg_sync_cluster_t *cluster;
    unsigned slot;            /* cluster: the slot of its hash tag */
    zg_sync_stats_t *st;
    zg_msec_t due;
    zg_sync_batch_t *inflight;
    char prefix[96];      /* "zg:{NAME}:" (limit_req), "zgc:{NAME}:" (limit_conn),
                             "zgk:{NAME}:" (keyval) */
    size_t prefix_len;
} zg_sync_zone_t;

struct zg_sync_batch_s {
    zg_sync_zone_t *z;
    int kind;
    zg_sync_link_t *link;  /* sent on */
    redisAsyncContext *ac;
    zg_msec_t taken;      /* the keys were taken off the dirty list */
    zg_msec_t sent;
    int n;
    int retried;          /* resent with EVAL after NOSCRIPT */
    int redirected;       /* resent after MOVED or ASK */
    int more;             /* keyval: the journal held more than the batch */
    zg_buf_t text;        /* keys, then the numbers */
    size_t *off;          /* argv as offsets into buf */
    size_t *argvlen;
    uint32_t *admitted;
    const char **argv;
    int argc;
};

static struct {
    uv_loop_t *loop;
    uv_timer_t timer;
    zg_sync_zone_t *zones;
    int nzones;
    zg_sync_link_t *links;    /* the pool: a link per Redis, then cluster masters */
    int nlinks;               /* in use */
    int maxlinks;
    zg_sync_cluster_t *clusters;
    int nclusters;
    int running;
    int stopping;
    int gai_pending;
} zg_sync;

static void zg_sync_connect(zg_sync_link_t *link, zg_msec_t now);

/* wall clock, for /metrics' last successful sync (vDSO: no system call) */
static uint64_t zg_sync_unix_msec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- zone state (shared: logged once per outage, whichever worker syncs) ---- */

static void zg_sync_zone_down(zg_sync_zone_t *z, const char *why)
{
    int prev;

    __atomic_add_fetch(&z->st->errors, 1, __ATOMIC_RELAXED);
    prev = __atomic_exchange_n(&z->st->up, ZG_SYNC_DOWN, __ATOMIC_RELAXED);
    if (prev != ZG_SYNC_DOWN) {
        zg_log_error(ZG_LOG_ERR, 0,
                     "%s \"%s\": sync with %s is down (%s); limits are per host "
                     "until it returns",
                     zg_sync_kinds[z->kind].directive, z->zone->name, z->sc->url, why);
    }
}

static void zg_sync_zone_up(zg_sync_zone_t *z)
{
    int prev = __atomic_exchange_n(&z->st->up, ZG_SYNC_UP, __ATOMIC_RELAXED);

    if (prev == ZG_SYNC_DOWN) {
        zg_log_error(ZG_LOG_NOTICE, 0, "%s \"%s\": sync with %s is restored",
                     zg_sync_kinds[z->kind].directive, z->zone->name, z->sc->url);
    } else if (prev == ZG_SYNC_UNKNOWN) {
        zg_log_error(ZG_LOG_INFO, 0, "%s \"%s\": sync with %s is up",
                     zg_sync_kinds[z->kind].directive, z->zone->name, z->sc->url);
    }
}

/* ---- link ---- */

static void zg_sync_link_forget_scripts(zg_sync_link_t *link)
{
    int k;

    for (k = 0; k < ZG_SYNC_KINDS; k++) {
        link->sha[k][0] = '\0';
    }
}

/* The link failed: every zone on it is down, retry after the backoff.  free_it:
 * also free the context (not when hiredis is already tearing it down). */
static void zg_sync_link_down(zg_sync_link_t *link, const char *why, int free_it)
{
    redisAsyncContext *ac = link->ac;
    zg_msec_t now = zg_time_msec();
    int i;

    link->ac = NULL;
    link->state = ZG_LINK_DOWN;
    zg_sync_link_forget_scripts(link);
    link->next_try = now + link->backoff;
    link->backoff = zg_min(link->backoff * 2, (zg_msec_t)ZG_SYNC_BACKOFF_MAX);
    if (link->cluster != NULL) {
        link->cluster->refresh = 1; /* a master lost: a replica may take its slots */
    }
    for (i = 0; i < zg_sync.nzones; i++) {
        if (zg_sync.zones[i].link == link) {
            zg_sync_zone_down(&zg_sync.zones[i], why);
        }
    }
    if (free_it && ac != NULL) {
        redisAsyncFree(ac); /* batches in flight are answered NULL: dropped */
    }
}

static void zg_sync_on_connect(const redisAsyncContext *ac, int status)
{
    zg_sync_link_t *link = ac->data;
    char why[160];

    if (zg_sync.stopping || link == NULL || link->ac != ac) {
        return;
    }
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        snprintf(why, sizeof(why), "connect: %s", ac->errstr[0] ? ac->errstr : "failed");
        zg_sync_link_down(link, why, 0);
        return;
    }
    link->state = ZG_LINK_UP;
}

static void zg_sync_on_disconnect(const redisAsyncContext *ac, int status)
{
    zg_sync_link_t *link = ac->data;
    char why[160];

    (void)status;
    if (zg_sync.stopping || link == NULL || link->ac != ac) {
        return;
    }
    snprintf(why, sizeof(why), "%s", ac->errstr[0] ? ac->errstr : "connection closed");
    zg_sync_link_down(link, why, 0);
}

/* SELECT and SCRIPT LOAD answers */
static void zg_sync_on_setup_kind(redisAsyncContext *ac, redisReply *reply,
                                  zg_sync_link_t *link, int kind)
{
    char why[160];
    int i;

    if (zg_sync.stopping || link->ac != ac) {
        return;
    }
    if (reply == NULL) {
        zg_sync_link_down(link, ac->errstr[0] ? ac->errstr : "connection lost", 0);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "%s", reply->str);
        zg_sync_link_down(link, why, 1);
        return;
    }
    if (kind >= 0 && reply->type == REDIS_REPLY_STRING && reply->len < sizeof(link->sha[0])) {
        /* SCRIPT LOAD: the link answers, its zones of that kind are up */
        memcpy(link->sha[kind], reply->str, reply->len);
        link->sha[kind][reply->len] = '\0';
        link->backoff = ZG_SYNC_BACKOFF_MIN;
        for (i = 0; i < zg_sync.nzones; i++) {
            if (zg_sync.zones[i].link == link && zg_sync.zones[i].kind == kind) {
                zg_sync_zone_up(&zg_sync.zones[i]);
            }
        }
    }
}

/* AUTH and SELECT answers */
static void zg_sync_on_setup(redisAsyncContext *ac, void *r, void *data)
{
    zg_sync_on_setup_kind(ac, r, data, -1);
}

/* SCRIPT LOAD answers */
static void zg_sync_on_load_req(redisAsyncContext *ac, void *r, void *data)
{
    zg_sync_on_setup_kind(ac, r, data, ZG_SYNC_KIND_REQ);
}

static void zg_sync_on_load_conn(redisAsyncContext *ac, void *r, void *data)
{
    zg_sync_on_setup_kind(ac, r, data, ZG_SYNC_KIND_CONN);
}

static void zg_sync_on_load_kv(redisAsyncContext *ac, void *r, void *data)
{
    zg_sync_on_setup_kind(ac, r, data, ZG_SYNC_KIND_KV);
}

static void zg_sync_script_load(zg_sync_link_t *link, int kind)
{
    static redisCallbackFn *const on_load[ZG_SYNC_KINDS] = {
        zg_sync_on_load_req, zg_sync_on_load_conn, zg_sync_on_load_kv
    };
    const char *argv[3] = { "SCRIPT", "LOAD", zg_sync_kinds[kind].script };
    size_t argvlen[3] = { 6, 4, zg_sync_kinds[kind].len };

    redisAsyncCommandArgv(link->ac, on_load[kind], link, 3, argv, argvlen);
}

static void zg_sync_script_load_all(zg_sync_link_t *link)
{
    int k;

    for (k = 0; k < ZG_SYNC_KINDS; k++) {
        zg_sync_script_load(link, k);
    }
}

/* the AUTH answer: a refusal names AUTH (the zones log it once, as any outage) */
static void zg_sync_on_auth(redisAsyncContext *ac, void *r, void *data)
{
    zg_sync_link_t *link = data;
    redisReply *reply = r;
    char why[200];

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !zg_sync.stopping &&
        link->ac == ac) {
        snprintf(why, sizeof(why), "AUTH%s%s refused: %s", link->sc->user != NULL ? " as " : "",
                 link->sc->user != NULL ? link->sc->user : "", reply->str);
        zg_sync_link_down(link, why, 1);
        return;
    }
    zg_sync_on_setup(ac, r, data);
}

/* connects to an address (no resolver involved) and queues AUTH, SELECT and
 * SCRIPT LOAD: Redis answers them in order, so nothing else waits for AUTH */
static void zg_sync_open(zg_sync_link_t *link, const char *ip, int port)
{
    const zg_sync_conf_t *sc = link->sc;
    const char *argv[3];
    size_t argvlen[3];
    redisAsyncContext *ac;
    char why[160];
    int argc = 0;

    if (ip != link->ip) {
        snprintf(link->ip, sizeof(link->ip), "%s", ip);
    }
    link->port = port;
    ac = redisAsyncConnect(ip, port);
    if (ac == NULL || ac->err) {
        snprintf(why, sizeof(why), "connect: %s", ac != NULL ? ac->errstr : "no memory");
        if (ac != NULL) {
            redisAsyncFree(ac);
        }
        zg_sync_link_down(link, why, 0);
        return;
    }
    ac->data = link;
    if (redisLibuvAttach(ac, zg_sync.loop) != REDIS_OK) {
        redisAsyncFree(ac);
        zg_sync_link_down(link, "cannot attach to the event loop", 0);
        return;
    }
    link->ac = ac;
    link->state = ZG_LINK_CONNECTING;
    link->since = zg_time_msec();
    redisAsyncSetConnectCallback(ac, zg_sync_on_connect);
    redisAsyncSetDisconnectCallback(ac, zg_sync_on_disconnect);
    if (sc->password != NULL) {
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;
        if (sc->user != NULL) {
            argv[argc] = sc->user;
            argvlen[argc++] = strlen(sc->user);
        }
        argv[argc] = sc->password;
        argvlen[argc++] = strlen(sc->password);
        redisAsyncCommandArgv(ac, zg_sync_on_auth, link, argc, argv, argvlen);
    }
    if (sc->db != 0) {
        redisAsyncCommand(ac, zg_sync_on_setup, link, "SELECT %d", sc->db);
    }
    zg_sync_script_load_all(link);
}

static void zg_sync_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    zg_sync_link_t *link = req->data;
    char ip[INET6_ADDRSTRLEN] = "", why[320];

    link->gai_busy = 0;
    zg_sync.gai_pending--;
    if (zg_sync.stopping) {
        if (res != NULL) {
            uv_freeaddrinfo(res);
        }
        if (zg_sync.gai_pending == 0) {
            free(zg_sync.links);
            zg_sync.links = NULL;
        }
        return;
    }
    if (status < 0 || res == NULL) {
        snprintf(why, sizeof(why), "cannot resolve \"%s\": %s", link->sc->host,
                 uv_strerror(status));
        if (res != NULL) {
            uv_freeaddrinfo(res);
        }
        zg_sync_link_down(link, why, 0);
        return;
    }
    if (res->ai_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)(const void *)res->ai_addr, ip, sizeof(ip));
    } else {
        uv_ip4_name((const struct sockaddr_in *)(const void *)res->ai_addr, ip, sizeof(ip));
    }
    uv_freeaddrinfo(res);
    zg_sync_open(link, ip, link->sc->port);
}

/* ---- sentinel ---- */

static void zg_sync_addr_ip(const zg_addr_t *a, char *ip, size_t len, int *port)
{
    const struct sockaddr *sa = (const struct sockaddr *)&a->sa;

    if (sa->sa_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)(const void *)sa, ip, len);
        *port = ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    } else {
        uv_ip4_name((const struct sockaddr_in *)(const void *)sa, ip, len);
        *port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    }
}

/* the sentinel asked did not tell: the next one is asked after the backoff.
 * free_it: also free its context (not when hiredis is tearing it down). */
static void zg_sync_sentinel_failed(zg_sync_link_t *link, const char *what, int free_it)
{
    redisAsyncContext *sac = link->sac;
    char why[256];

    link->sac = NULL;
    snprintf(why, sizeof(why), "sentinel %s: %s", link->sc->nodes[link->sentinel].text, what);
    link->sentinel = (link->sentinel + 1) % link->sc->nnodes;
    if (free_it && sac != NULL) {
        redisAsyncFree(sac);
    }
    zg_sync_link_down(link, why, 1);
}

/* SENTINEL get-master-addr-by-name: [ip, port] or nil */
static void zg_sync_on_master_addr(redisAsyncContext *sac, void *r, void *data)
{
    zg_sync_link_t *link = data;
    redisReply *reply = r;
    char why[160];
    int port;

    if (zg_sync.stopping || link->sac != sac) {
        return;
    }
    if (reply == NULL) {
        zg_sync_sentinel_failed(link, sac->errstr[0] ? sac->errstr : "connection lost", 0);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "%s", reply->str);
        zg_sync_sentinel_failed(link, why, 1);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING ||
        reply->element[0]->len >= sizeof(link->ip)) {
        zg_sync_sentinel_failed(link, "does not know the master", 1);
        return;
    }
    port = zg_conf_atoi(reply->element[1]->str, reply->element[1]->len);
    if (port < 1 || port > 65535) {
        zg_sync_sentinel_failed(link, "bad master port", 1);
        return;
    }
    zg_sync_open(link, reply->element[0]->str, port);
}

/* +switch-master "NAME OLDIP OLDPORT NEWIP NEWPORT": reconnect to the new master
 * at once; the zones stay up (batches in flight are dropped) */
static void zg_sync_on_switch(redisAsyncContext *sac, void *r, void *data)
{
    zg_sync_link_t *link = data;
    redisReply *reply = r, *m;
    char name[256], oip[64], nip[64];
    redisAsyncContext *ac;
    int oport, nport;

    if (zg_sync.stopping || link->sac != sac || reply == NULL ||
        reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        return;
    }
    m = reply->element[2];
    if (m->type != REDIS_REPLY_STRING ||
        sscanf(m->str, "%255s %63s %d %63s %d", name, oip, &oport, nip, &nport) != 5 ||
        strcmp(name, link->sc->master) != 0 || nport < 1 || nport > 65535) {
        return;
    }
    if (strcmp(nip, link->ip) == 0 && nport == link->port && link->state != ZG_LINK_DOWN) {
        return;
    }
    zg_log_error(ZG_LOG_NOTICE, 0, "sync with %s: the master is now %s:%d", link->sc->url, nip,
                 nport);
    ac = link->ac;
    link->ac = NULL;
    zg_sync_link_forget_scripts(link);
    link->backoff = ZG_SYNC_BACKOFF_MIN;
    if (ac != NULL) {
        redisAsyncFree(ac);
    }
    zg_sync_open(link, nip, nport);
}

static void zg_sync_on_sentinel_gone(const redisAsyncContext *sac, int status)
{
    zg_sync_link_t *link = sac->data;

    (void)status;
    if (link != NULL && link->sac == sac) {
        link->sac = NULL;
        if (link->state == ZG_LINK_RESOLVING) {
            zg_sync_sentinel_failed(link, "connection closed", 0);
        }
    }
}

/* asks the next sentinel for the master, and stays subscribed to its switches */
static void zg_sync_sentinel_ask(zg_sync_link_t *link)
{
    const char *argv[3] = { "SENTINEL", "get-master-addr-by-name", link->sc->master };
    size_t argvlen[3] = { 8, 23, strlen(link->sc->master) };
    redisAsyncContext *sac = link->sac;
    char ip[INET6_ADDRSTRLEN];
    int port;

    link->sac = NULL;
    if (sac != NULL) {
        redisAsyncFree(sac);
    }
    zg_sync_addr_ip(&link->sc->nodes[link->sentinel], ip, sizeof(ip), &port);
    sac = redisAsyncConnect(ip, port);
    if (sac == NULL || sac->err) {
        if (sac != NULL) {
            redisAsyncFree(sac);
        }
        zg_sync_sentinel_failed(link, "cannot connect", 0);
        return;
    }
    sac->data = link;
    if (redisLibuvAttach(sac, zg_sync.loop) != REDIS_OK) {
        redisAsyncFree(sac);
        zg_sync_sentinel_failed(link, "cannot attach to the event loop", 0);
        return;
    }
    link->sac = sac;
    redisAsyncSetDisconnectCallback(sac, zg_sync_on_sentinel_gone);
    redisAsyncCommandArgv(sac, zg_sync_on_master_addr, link, 3, argv, argvlen);
    redisAsyncCommand(sac, zg_sync_on_switch, link, "SUBSCRIBE +switch-master");
}

static void zg_sync_connect(zg_sync_link_t *link, zg_msec_t now)
{
    const char *host = link->sc->host;
    struct addrinfo hints;
    unsigned char tmp[16];
    char why[320];
    int rc;

    link->state = ZG_LINK_RESOLVING;
    link->since = now;
    if (link->sc->mode == ZG_SYNC_SENTINEL) {
        zg_sync_sentinel_ask(link);
        return;
    }
    if (link->cluster != NULL) {
        zg_sync_open(link, link->ip, link->port);
        return;
    }
    if (uv_inet_pton(AF_INET, host, tmp) == 0 || uv_inet_pton(AF_INET6, host, tmp) == 0) {
        zg_sync_open(link, host, link->sc->port);
        return;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    link->gai.data = link;
    rc = uv_getaddrinfo(zg_sync.loop, &link->gai, zg_sync_on_resolved, host, NULL, &hints);
    if (rc != 0) {
        snprintf(why, sizeof(why), "cannot resolve \"%s\": %s", host, uv_strerror(rc));
        zg_sync_link_down(link, why, 0);
        return;
    }
    link->gai_busy = 1;
    zg_sync.gai_pending++;
}

/* ---- cluster ---- */

/* the link of the master at ip:port, added to the pool if new; NULL when full */
static zg_sync_link_t *zg_sync_cluster_node(zg_sync_cluster_t *c, const char *ip, int port)
{
    zg_sync_link_t *link;
    int i;

    for (i = 0; i < c->nnodes; i++) {
        if (c->nodes[i]->port == port && strcmp(c->nodes[i]->ip, ip) == 0) {
            return c->nodes[i];
        }
    }
    if (c->nnodes == ZG_SYNC_CLUSTER_NODES || zg_sync.nlinks == zg_sync.maxlinks ||
        strlen(ip) >= sizeof(link->ip)) {
        return NULL;
    }
    link = &zg_sync.links[zg_sync.nlinks++];
    link->sc = c->sc;
    link->cluster = c;
    link->backoff = ZG_SYNC_BACKOFF_MIN;
    snprintf(link->ip, sizeof(link->ip), "%s", ip);
    link->port = port;
    c->nodes[c->nnodes++] = link;
    return link;
}

/* every zone of c talks to the master of its slot */
static void zg_sync_cluster_route(zg_sync_cluster_t *c)
{
    zg_sync_zone_t *z;
    int i, k;

    for (i = 0; i < zg_sync.nzones; i++) {
        z = &zg_sync.zones[i];
        if (z->cluster == c) {
            k = c->slot[z->slot];
            z->link = k >= 0 ? c->nodes[k] : NULL;
        }
    }
}

/* CLUSTER SLOTS failed: without a map the zones are down; with one, it stays */
static void zg_sync_cluster_failed(zg_sync_cluster_t *c, const char *why, int free_it)
{
    redisAsyncContext *ac = c->ac;
    char msg[256];
    int i;

    c->ac = NULL;
    c->next_try = zg_time_msec() + c->backoff;
    c->backoff = zg_min(c->backoff * 2, (zg_msec_t)ZG_SYNC_BACKOFF_MAX);
    if (!c->have_map) {
        snprintf(msg, sizeof(msg), "CLUSTER SLOTS from %s: %s", c->asked, why);
        for (i = 0; i < zg_sync.nzones; i++) {
            if (zg_sync.zones[i].cluster == c) {
                zg_sync_zone_down(&zg_sync.zones[i], msg);
            }
        }
    }
    if (free_it && ac != NULL) {
        redisAsyncFree(ac);
    }
}

/* CLUSTER SLOTS: [[start, end, [ip, port, ...] (the master), replicas...], ...] */
static void zg_sync_on_slots(redisAsyncContext *ac, void *r, void *data)
{
    zg_sync_cluster_t *c = data;
    redisReply *reply = r, *e, *m;
    zg_sync_link_t *node;
    char ip[INET6_ADDRSTRLEN];
    long long from, to, j;
    size_t i;
    int k;

    if (zg_sync.stopping || c->ac != ac) {
        return;
    }
    if (reply == NULL) {
        zg_sync_cluster_failed(c, ac->errstr[0] ? ac->errstr : "connection lost", 0);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        zg_sync_cluster_failed(c, reply->str, 1);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        zg_sync_cluster_failed(c, "unexpected reply", 1);
        return;
    }
    for (j = 0; j < ZG_SYNC_SLOTS; j++) {
        c->slot[j] = -1;
    }
    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2) {
            continue;
        }
        m = e->element[2];
        if (m->element[0]->type != REDIS_REPLY_STRING ||
            m->element[1]->type != REDIS_REPLY_INTEGER ||
            m->element[0]->len >= sizeof(ip) || m->element[1]->integer < 1 ||
            m->element[1]->integer > 65535) {
            continue;
        }
        /* "" (or "?"): the node asked */
        snprintf(ip, sizeof(ip), "%s",
                 m->element[0]->len > 1 ? m->element[0]->str : c->asked);
        node = zg_sync_cluster_node(c, ip, (int)m->element[1]->integer);
        if (node == NULL) {
            continue;
        }
        for (k = 0; k < c->nnodes && c->nodes[k] != node; k++) {
        }
        from = zg_max(e->element[0]->integer, 0);
        to = zg_min(e->element[1]->integer, ZG_SYNC_SLOTS - 1);
        for (j = from; j <= to; j++) {
            c->slot[j] = (int16_t)k;
        }
    }
    c->have_map = 1;
    c->refresh = 0;
    c->backoff = ZG_SYNC_BACKOFF_MIN;
    c->ac = NULL;
    redisAsyncFree(ac);
    zg_sync_cluster_route(c);
}

/* asks a seed, or a master already known, for the slot map */
static void zg_sync_cluster_ask(zg_sync_cluster_t *c, zg_msec_t now)
{
    const zg_sync_conf_t *sc = c->sc;
    unsigned n = (unsigned)(sc->nnodes + c->nnodes), i = c->next++ % n;
    const char *argv[3];
    size_t argvlen[3];
    redisAsyncContext *ac;
    int port, argc = 0;

    if (i < (unsigned)sc->nnodes) {
        zg_sync_addr_ip(&sc->nodes[i], c->asked, sizeof(c->asked), &port);
    } else {
        snprintf(c->asked, sizeof(c->asked), "%s", c->nodes[i - sc->nnodes]->ip);
        port = c->nodes[i - sc->nnodes]->port;
    }
    c->since = now;
    ac = redisAsyncConnect(c->asked, port);
    if (ac == NULL || ac->err) {
        if (ac != NULL) {
            redisAsyncFree(ac);
        }
        zg_sync_cluster_failed(c, "cannot connect", 0);
        return;
    }
    ac->data = c;
    if (redisLibuvAttach(ac, zg_sync.loop) != REDIS_OK) {
        redisAsyncFree(ac);
        zg_sync_cluster_failed(c, "cannot attach to the event loop", 0);
        return;
    }
    c->ac = ac;
    if (sc->password != NULL) {
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;
        if (sc->user != NULL) {
            argv[argc] = sc->user;
            argvlen[argc++] = strlen(sc->user);
        }
        argv[argc] = sc->password;
        argvlen[argc++] = strlen(sc->password);
        redisAsyncCommandArgv(ac, NULL, NULL, argc, argv, argvlen);
    }
    redisAsyncCommand(ac, zg_sync_on_slots, c, "CLUSTER SLOTS");
}

static int zg_sync_batch_send(zg_sync_batch_t *b, zg_sync_link_t *link);
static void zg_sync_batch_free(zg_sync_batch_t *b);

/* A batch answered "MOVED SLOT IP:PORT" (the slot has a new master: the map is
 * refreshed, the zone moves now), "ASK SLOT IP:PORT" (the slot is migrating: this
 * batch goes there after ASKING) or "TRYAGAIN" (its keys are split by a migration
 * in progress).  The batch is resent once when the target is connected, else
 * dropped: a limit_req batch's admissions then never reach the fleet (counted
 * locally only, never twice); limit_conn counts are pushed whole every interval.
 * ZG_OK: handled (the batch is resent or freed), ZG_DECLINED: another error. */
static int zg_sync_cluster_redirect(zg_sync_batch_t *b, const char *err)
{
    zg_sync_zone_t *z = b->z;
    zg_sync_cluster_t *c = b->link->cluster;
    zg_sync_link_t *to = NULL;
    char addr[80], *colon;
    int ask, slot, port;

    if (strncmp(err, "TRYAGAIN", 8) == 0) {
        __atomic_add_fetch(&z->st->redirects, 1, __ATOMIC_RELAXED);
        zg_sync_batch_free(b);
        return ZG_OK;
    }
    ask = strncmp(err, "ASK ", 4) == 0;
    if (!ask && strncmp(err, "MOVED ", 6) != 0) {
        return ZG_DECLINED;
    }
    if (sscanf(err + (ask ? 4 : 6), "%d %79s", &slot, addr) != 2 || slot < 0 ||
        slot >= ZG_SYNC_SLOTS || (colon = strrchr(addr, ':')) == NULL) {
        return ZG_DECLINED;
    }
    *colon = '\0';
    port = atoi(colon + 1);
    if (port >= 1 && port <= 65535) {
        to = zg_sync_cluster_node(c, addr[0] == '[' ? addr + 1 : addr, port);
    }
    __atomic_add_fetch(&z->st->redirects, 1, __ATOMIC_RELAXED);
    if (!ask) {
        c->refresh = 1;
        if (to != NULL) {
            int k;

            for (k = 0; k < c->nnodes && c->nodes[k] != to; k++) {
            }
            c->slot[slot] = (int16_t)k;
            zg_sync_cluster_route(c);
        }
    }
    if (to != NULL && to->state == ZG_LINK_UP && to->sha[b->kind][0] != '\0' &&
        !b->redirected) {
        b->redirected = 1;
        if (ask) {
            redisAsyncCommand(to->ac, NULL, NULL, "ASKING");
        }
        if (zg_sync_batch_send(b, to) == ZG_OK) {
            z->inflight = b;
            return ZG_OK;
        }
    }
    zg_sync_batch_free(b);
    return ZG_OK;
}

/* ---- batches ---- */

static void zg_sync_batch_free(zg_sync_batch_t *b)
{
    zg_buf_free(&b->text);
    free(b->off);
    free(b->argvlen);
    free(b->admitted);
    free(b->argv);
    free(b);
}

/* one more argv entry: bytes in buf from off to len */
static void zg_sync_batch_arg(zg_sync_batch_t *b, size_t off)
{
    b->off[b->argc] = off;
    b->argvlen[b->argc] = b->text.len - off;
    b->argc++;
}

static int zg_sync_batch_num(zg_sync_batch_t *b, uint64_t v)
{
    size_t off = b->text.len;

    if (zg_buf_num(&b->text, v) != ZG_OK) {
        return ZG_ERROR;
    }
    zg_sync_batch_arg(b, off);
    return ZG_OK;
}

static int zg_sync_batch_str(zg_sync_batch_t *b, const char *v)
{
    size_t off = b->text.len;

    if (zg_buf_append(&b->text, v, strlen(v)) != ZG_OK) {
        return ZG_ERROR;
    }
    zg_sync_batch_arg(b, off);
    return ZG_OK;
}

/* zg_limit_req_sync_take's and zg_limit_conn_sync_take's callback, under the zone
 * lock: copies the key and its number (admitted requests, or the count held) */
static int zg_sync_batch_key(void *arg, const unsigned char *key, size_t len, uint32_t admitted)
{
    zg_sync_batch_t *b = arg;
    size_t off = b->text.len;

    if (zg_buf_append(&b->text, b->z->prefix, b->z->prefix_len) != ZG_OK ||
        zg_buf_append(&b->text, key, len) != ZG_OK) {
        b->text.len = off;
        return ZG_ERROR;
    }
    b->admitted[b->n++] = admitted;
    zg_sync_batch_arg(b, off);
    return ZG_OK;
}

static void zg_sync_on_batch(redisAsyncContext *ac, void *r, void *data);

/* argv[0..3) = EVALSHA sha numkeys (or EVAL script numkeys), then the keys, two
 * arguments of the zone (limit_req: rate and interval; limit_conn: host and lease
 * TTL) and the counts; sends it */
static int zg_sync_batch_send(zg_sync_batch_t *b, zg_sync_link_t *link)
{
    redisAsyncContext *ac = link->ac;
    int i;

    if (link->sha[b->kind][0] != '\0' && !b->retried) {
        b->argv[0] = "EVALSHA";
        b->argv[1] = link->sha[b->kind];
        b->argvlen[1] = strlen(link->sha[b->kind]);
    } else {
        b->argv[0] = "EVAL";
        b->argv[1] = zg_sync_kinds[b->kind].script;
        b->argvlen[1] = zg_sync_kinds[b->kind].len;
    }
    b->argvlen[0] = strlen(b->argv[0]);
    for (i = 2; i < b->argc; i++) {
        b->argv[i] = b->text.data + b->off[i];
    }
    b->ac = ac;
    b->link = link;
    b->sent = zg_time_msec();
    if (redisAsyncCommandArgv(ac, zg_sync_on_batch, b, b->argc, b->argv, b->argvlen) !=
        REDIS_OK) {
        return ZG_ERROR;
    }
    return ZG_OK;
}

/* a keyval batch's answer: its writes are stamped (out of the journal), the
 * fleet's changes since this host's stamp are applied */
static void zg_sync_kv_answer(zg_sync_batch_t *b, redisReply *reply)
{
    zg_sync_zone_t *z = b->z;
    redisReply *k, *v;
    zg_msec_t now;
    size_t i, changes;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || reply->elements % 2 == 0 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER ||
        reply->element[2]->type != REDIS_REPLY_INTEGER) {
        zg_sync_zone_down(z, "unexpected reply");
        return;
    }
    zg_keyval_sync_ack(z->zone, b->n);
    if (reply->element[1]->integer != 0) {
        zg_keyval_sync_reset(z->zone);
    }
    now = zg_time_msec();
    changes = (reply->elements - 3) / 2;
    for (i = 3; i + 1 < reply->elements; i += 2) {
        k = reply->element[i];
        v = reply->element[i + 1];
        if (k->type != REDIS_REPLY_STRING) {
            continue;
        }
        if (v->type == REDIS_REPLY_STRING) {
            zg_keyval_sync_apply(z->zone, k->str, k->len, v->str, v->len, now);
        } else {
            zg_keyval_sync_apply(z->zone, k->str, k->len, NULL, 0, now);
        }
    }
    zg_keyval_sync_seen(z->zone, (uint64_t)zg_max(reply->element[0]->integer, 0LL),
                        (uint64_t)zg_max(reply->element[2]->integer, 0LL));
    if (b->more || changes >= ZG_SYNC_BATCH) {
        __atomic_add_fetch(&z->st->overflows, 1, __ATOMIC_RELAXED);
    }
    __atomic_add_fetch(&z->st->batches, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&z->st->keys, (uint64_t)b->n + changes, __ATOMIC_RELAXED);
    __atomic_store_n(&z->st->last_ok, zg_sync_unix_msec(), __ATOMIC_RELAXED);
    zg_sync_zone_up(z);
}

static void zg_sync_on_batch(redisAsyncContext *ac, void *r, void *data)
{
    zg_sync_batch_t *b = data;
    zg_sync_zone_t *z = b->z;
    zg_sync_link_t *link = b->link;
    redisReply *reply = r, *e;
    zg_msec_t now;
    char why[160];
    size_t i;

    z->inflight = NULL;
    if (zg_sync.stopping) {
        zg_sync_batch_free(b);
        return;
    }
    if (reply == NULL) {
        /* hiredis is tearing the link down */
        if (link->ac == ac) {
            zg_sync_link_down(link, ac->errstr[0] ? ac->errstr : "connection lost", 0);
        }
        zg_sync_batch_free(b);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strncmp(reply->str, "NOSCRIPT", 8) == 0 && !b->retried && link->ac == ac) {
            /* Redis restarted or flushed its scripts: EVAL loads it again */
            zg_sync_link_forget_scripts(link);
            b->retried = 1;
            if (zg_sync_batch_send(b, link) == ZG_OK) {
                z->inflight = b;
                zg_sync_script_load_all(link);
                return;
            }
        }
        if (link->cluster != NULL && zg_sync_cluster_redirect(b, reply->str) == ZG_OK) {
            return;
        }
        snprintf(why, sizeof(why), "%s", reply->str);
        zg_sync_batch_free(b);
        if (link->ac == ac && (strncmp(why, "READONLY", 8) == 0 ||
                               strncmp(why, "NOAUTH", 6) == 0)) {
            /* a demoted master, or a restarted Redis: connect (and ask) again */
            zg_sync_link_down(link, why, 1);
            return;
        }
        zg_sync_zone_down(z, why);
        return;
    }
    if (b->kind == ZG_SYNC_KIND_KV) {
        zg_sync_kv_answer(b, reply);
        zg_sync_batch_free(b);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != (size_t)b->n) {
        zg_sync_zone_down(z, "unexpected reply");
        zg_sync_batch_free(b);
        return;
    }
    now = zg_time_msec();
    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];
        if (e->type != REDIS_REPLY_INTEGER || e->integer < 0) {
            continue;
        }
        if (b->kind == ZG_SYNC_KIND_CONN) {
            zg_limit_conn_sync_apply(
                z->zone, (const unsigned char *)b->text.data + b->off[3 + i] + z->prefix_len,
                b->argvlen[3 + i] - z->prefix_len,
                (uint32_t)zg_min(e->integer, (long long)UINT32_MAX));
            continue;
        }
        zg_limit_req_sync_apply(z->zone,
                                (const unsigned char *)b->text.data + b->off[3 + i] + z->prefix_len,
                                b->argvlen[3 + i] - z->prefix_len, (uint64_t)e->integer,
                                b->taken, now);
    }
    __atomic_add_fetch(&z->st->batches, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&z->st->keys, (uint64_t)b->n, __ATOMIC_RELAXED);
    __atomic_store_n(&z->st->last_ok, zg_sync_unix_msec(), __ATOMIC_RELAXED);
    zg_sync_zone_up(z);
    zg_sync_batch_free(b);
}

/* zg_keyval_sync_peek's callback, under the zone lock: OP KEY VALUE */
static int zg_sync_batch_op(void *arg, int op, const char *key, size_t klen, const char *val,
                            size_t vlen)
{
    zg_sync_batch_t *b = arg;
    size_t off = b->text.len;
    char o = (char)op;

    if (zg_buf_append(&b->text, &o, 1) != ZG_OK) {
        return ZG_ERROR;
    }
    zg_sync_batch_arg(b, off);
    off = b->text.len;
    if (zg_buf_append(&b->text, key, klen) != ZG_OK) {
        b->argc--;
        return ZG_ERROR;
    }
    zg_sync_batch_arg(b, off);
    off = b->text.len;
    if (zg_buf_append(&b->text, val, vlen) != ZG_OK) {
        b->argc -= 2;
        return ZG_ERROR;
    }
    zg_sync_batch_arg(b, off);
    b->n++;
    return ZG_OK;
}

/* a keyval zone sends every interval, writes or not: the answer holds the other
 * hosts' writes.  argv: EVALSHA sha 4 HASH LOG DEAD META stamp max timeout, then
 * the journal's oldest writes as OP KEY VALUE */
static void zg_sync_kv_push(zg_sync_zone_t *z)
{
    static const char *const sfx[4] = { "kv", "log", "dead", "meta" };
    zg_sync_batch_t *b;
    int i, max = 10 + 3 * ZG_SYNC_BATCH;
    size_t off;

    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return;
    }
    b->z = z;
    b->kind = z->kind;
    b->off = malloc((size_t)max * sizeof(size_t));
    b->argvlen = malloc((size_t)max * sizeof(size_t));
    b->argv = malloc((size_t)max * sizeof(char *));
    if (b->off == NULL || b->argvlen == NULL || b->argv == NULL) {
        goto fail;
    }
    b->argc = 2;
    b->taken = zg_time_msec();
    if (zg_sync_batch_num(b, 4) != ZG_OK) {
        goto fail;
    }
    for (i = 0; i < 4; i++) {
        off = b->text.len;
        if (zg_buf_append(&b->text, z->prefix, z->prefix_len) != ZG_OK ||
            zg_buf_append(&b->text, sfx[i], strlen(sfx[i])) != ZG_OK) {
            goto fail;
        }
        zg_sync_batch_arg(b, off);
    }
    if (zg_sync_batch_num(b, zg_keyval_sync_cursor(z->zone)) != ZG_OK ||
        zg_sync_batch_num(b, ZG_SYNC_BATCH) != ZG_OK || zg_sync_batch_num(b, z->ttl) != ZG_OK) {
        goto fail;
    }
    zg_keyval_sync_peek(z->zone, ZG_SYNC_BATCH, zg_sync_batch_op, b, &b->more);
    if (zg_sync_batch_send(b, z->link) != ZG_OK) {
        goto fail;
    }
    z->inflight = b;
    return;
fail:
    zg_sync_batch_free(b);
}

/* takes up to ZG_SYNC_BATCH dirty keys of z and sends them */
static void zg_sync_zone_push(zg_sync_zone_t *z)
{
    zg_sync_batch_t *b;
    int i, n, max = 5 + 2 * ZG_SYNC_BATCH;

    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return;
    }
    b->z = z;
    b->kind = z->kind;
    b->off = malloc((size_t)max * sizeof(size_t));
    b->argvlen = malloc((size_t)max * sizeof(size_t));
    b->argv = malloc((size_t)max * sizeof(char *));
    b->admitted = malloc(ZG_SYNC_BATCH * sizeof(uint32_t));
    if (b->off == NULL || b->argvlen == NULL || b->argv == NULL || b->admitted == NULL) {
        goto fail;
    }
    b->argc = 3;  /* command, script, numkeys: filled below */
    b->taken = zg_time_msec();
    n = z->kind == ZG_SYNC_KIND_CONN
            ? zg_limit_conn_sync_take(z->zone, ZG_SYNC_BATCH, zg_sync_batch_key, b)
            : zg_limit_req_sync_take(z->zone, ZG_SYNC_BATCH, zg_sync_batch_key, b);
    if (n == 0) {
        zg_sync_batch_free(b);
        return;
    }
    if (n == ZG_SYNC_BATCH) {
        __atomic_add_fetch(&z->st->overflows, 1, __ATOMIC_RELAXED);
    }
    /* numkeys goes at argv[2]: keys are at 3 .. 3 + n */
    {
        size_t off = b->text.len;

        if (zg_buf_num(&b->text, (uint64_t)b->n) != ZG_OK) {
            goto fail;
        }
        b->off[2] = off;
        b->argvlen[2] = b->text.len - off;
    }
    if (z->kind == ZG_SYNC_KIND_CONN
            ? zg_sync_batch_str(b, zg_limit_conn_sync_host(z->zone)) != ZG_OK ||
              zg_sync_batch_num(b, z->ttl) != ZG_OK
            : zg_sync_batch_num(b, z->rate) != ZG_OK ||
              zg_sync_batch_num(b, z->sc->interval) != ZG_OK) {
        goto fail;
    }
    for (i = 0; i < b->n; i++) {
        if (zg_sync_batch_num(b, b->admitted[i]) != ZG_OK) {
            goto fail;
        }
    }
    if (zg_sync_batch_send(b, z->link) != ZG_OK) {
        goto fail;
    }
    z->inflight = b;
    return;
fail:
    zg_sync_batch_free(b);
}

/* ---- the timer ---- */

/* One worker per host syncs a zone: the first to claim it, until it exits (a
 * respawned or next-generation worker takes over once the owner is gone). */
static int zg_sync_own(zg_sync_zone_t *z)
{
    int me = (int)getpid();
    int o = __atomic_load_n(&z->st->owner, __ATOMIC_ACQUIRE);

    if (o == me) {
        return 1;
    }
    if (o != 0 && (kill((pid_t)o, 0) == 0 || errno != ESRCH)) {
        return 0;
    }
    return __atomic_compare_exchange_n(&z->st->owner, &o, me, 0, __ATOMIC_ACQ_REL,
                                       __ATOMIC_ACQUIRE);
}

static void zg_sync_tick(uv_timer_t *t)
{
    zg_msec_t now = zg_time_msec();
    zg_sync_link_t *link;
    zg_sync_zone_t *z;
    int i, j, wanted;

    (void)t;
    for (i = 0; i < zg_sync.nclusters; i++) {
        zg_sync_cluster_t *c = &zg_sync.clusters[i];

        for (j = 0, wanted = 0; j < zg_sync.nzones; j++) {
            if (zg_sync.zones[j].cluster == c && zg_sync_own(&zg_sync.zones[j])) {
                wanted = 1;
            }
        }
        if (!wanted) {
            continue;
        }
        if (c->ac == NULL && (!c->have_map || c->refresh) && now >= c->next_try) {
            zg_sync_cluster_ask(c, now);
        } else if (c->ac != NULL && now - c->since > ZG_SYNC_TIMEOUT) {
            zg_sync_cluster_failed(c, "timed out", 1);
        }
    }
    for (i = 0; i < zg_sync.nlinks; i++) {
        link = &zg_sync.links[i];
        for (j = 0, wanted = 0; j < zg_sync.nzones; j++) {
            if (zg_sync.zones[j].link == link && zg_sync_own(&zg_sync.zones[j])) {
                wanted = 1;
            }
        }
        if (!wanted) {
            if (link->cluster != NULL && link->ac != NULL) {
                /* a master no zone needs any more (the map changed) */
                redisAsyncContext *ac = link->ac;

                link->ac = NULL;
                link->state = ZG_LINK_DOWN;
                zg_sync_link_forget_scripts(link);
                redisAsyncFree(ac);
            }
            continue;
        }
        if (link->state == ZG_LINK_DOWN && now >= link->next_try) {
            zg_sync_connect(link, now);
        } else if (link->state == ZG_LINK_CONNECTING && now - link->since > ZG_SYNC_TIMEOUT) {
            zg_sync_link_down(link, "connect timed out", 1);
        } else if (link->state == ZG_LINK_RESOLVING && link->sac != NULL &&
                   now - link->since > ZG_SYNC_TIMEOUT) {
            zg_sync_sentinel_failed(link, "timed out", 1);
        }
    }
    for (i = 0; i < zg_sync.nzones; i++) {
        z = &zg_sync.zones[i];
        if (z->inflight != NULL && now - z->inflight->sent > ZG_SYNC_TIMEOUT + z->sc->interval) {
            /* Redis does not answer: drop the link (the batch is answered NULL) */
            zg_sync_link_down(z->inflight->link, "timed out", 1);
        }
        if (now < z->due || !zg_sync_own(z)) {
            continue;
        }
        z->due = now + z->sc->interval;
        if (z->link == NULL || z->link->state != ZG_LINK_UP) {
            if (z->kind == ZG_SYNC_KIND_KV) {
                continue; /* the journal waits (bounded) for Redis to return */
            }
            if (z->kind == ZG_SYNC_KIND_CONN) {
                /* per-host limits: forget the other hosts' leases */
                zg_limit_conn_sync_local(z->zone);
                continue;
            }
            /* what was admitted meanwhile is charged locally only: forget it, so
             * that the fleet is not charged late for it */
            zg_limit_req_sync_take(z->zone, 4 * ZG_SYNC_BATCH, NULL, NULL);
            continue;
        }
        if (z->inflight == NULL) {
            if (z->kind == ZG_SYNC_KIND_KV) {
                zg_sync_kv_push(z);
            } else {
                zg_sync_zone_push(z);
            }
        }
    }
}

/* two zones share a link when they sync with the same Redis as the same user */
static int zg_sync_conf_same(const zg_sync_conf_t *a, const zg_sync_conf_t *b)
{
    if (a->mode != b->mode || strcmp(a->url, b->url) != 0) {
        return 0;
    }
    if (a->password == NULL || b->password == NULL) {
        return a->password == b->password;
    }
    return strcmp(a->password, b->password) == 0;
}

/* one synced zone; ZG_ERROR: no memory */
static int zg_sync_add_zone(int kind, zg_zone_t *zone, const zg_sync_conf_t *sc,
                            zg_sync_stats_t *st, uint64_t rate)
{
    zg_sync_cluster_t *c;
    zg_sync_zone_t *z;
    int j;

    z = &zg_sync.zones[zg_sync.nzones++];
    z->kind = kind;
    z->sc = sc;
    z->rate = rate;
    /* a lease outlives a few missed pushes, never a dead host by more than this */
    z->ttl = zg_max(ZG_SYNC_LEASE_INTERVALS * sc->interval, (zg_msec_t)ZG_SYNC_LEASE_MIN);
    z->zone = zone;
    z->st = st;
    if (kind == ZG_SYNC_KIND_KV) {
        z->ttl = (zg_msec_t)rate; /* the zone's timeout */
    }
    z->prefix_len = (size_t)snprintf(z->prefix, sizeof(z->prefix),
                                     kind == ZG_SYNC_KIND_CONN ? "zgc:{%s}:"
                                     : kind == ZG_SYNC_KIND_KV ? "zgk:{%s}:"
                                                               : "zg:{%s}:",
                                     zone->name);
    if (sc->mode == ZG_SYNC_CLUSTER) {
        /* one slot map per distinct cluster; the masters' links come with it */
        for (j = 0; j < zg_sync.nclusters; j++) {
            if (zg_sync_conf_same(zg_sync.clusters[j].sc, sc)) {
                break;
            }
        }
        c = &zg_sync.clusters[j];
        if (j == zg_sync.nclusters) {
            c->sc = sc;
            c->backoff = ZG_SYNC_BACKOFF_MIN;
            c->slot = malloc(ZG_SYNC_SLOTS * sizeof(int16_t));
            if (c->slot == NULL) {
                return ZG_ERROR;
            }
            zg_sync.nclusters++;
        }
        z->cluster = c;
        z->slot = zg_sync_key_slot(z->prefix, z->prefix_len);
        return ZG_OK;
    }
    /* one link per distinct Redis */
    for (j = 0; j < zg_sync.nlinks; j++) {
        if (zg_sync_conf_same(zg_sync.links[j].sc, sc)) {
            break;
        }
    }
    if (j == zg_sync.nlinks) {
        zg_sync.links[j].sc = sc;
        zg_sync.links[j].backoff = ZG_SYNC_BACKOFF_MIN;
        zg_sync.nlinks++;
    }
    z->link = &zg_sync.links[j];
    return ZG_OK;
}

int zg_sync_start(uv_loop_t *loop, zg_conf_t *conf)
{
    zg_limit_req_main_conf_t *lmcf = zg_limit_req_main_conf(conf);
    zg_limit_conn_main_conf_t *cmcf = zg_limit_conn_main_conf(conf);
    zg_limit_req_zone_conf_t *zc;
    zg_keyval_main_conf_t *kmcf = zg_keyval_main_conf(conf);
    zg_limit_conn_zone_conf_t *cc;
    zg_keyval_zone_conf_t *kc;
    zg_msec_t tick = 0;
    int i, n = 0, ncz = 0;

    if (zg_sync.running) {
        return ZG_OK;
    }
    for (i = 0; i < lmcf->nzones; i++) {
        zc = lmcf->zones[i];
        if (zc->sync.mode != ZG_SYNC_NONE && zc->zone != NULL &&
            zg_limit_req_sync_shared(zc->zone) != NULL) {
            n++;
            ncz += zc->sync.mode == ZG_SYNC_CLUSTER;
        }
    }
    for (i = 0; i < cmcf->nzones; i++) {
        cc = cmcf->zones[i];
        if (cc->sync.mode != ZG_SYNC_NONE && cc->zone != NULL &&
            zg_limit_conn_sync_shared(cc->zone) != NULL) {
            n++;
            ncz += cc->sync.mode == ZG_SYNC_CLUSTER;
        }
    }
    for (i = 0; kmcf != NULL && i < kmcf->nzones; i++) {
        kc = kmcf->zones[i];
        if (kc->sync.mode != ZG_SYNC_NONE && kc->zone != NULL &&
            zg_keyval_sync_shared(kc->zone) != NULL) {
            n++;
            ncz += kc->sync.mode == ZG_SYNC_CLUSTER;
        }
    }
    if (n == 0) {
        return ZG_DECLINED;
    }
    zg_sync.maxlinks = n + ncz * ZG_SYNC_CLUSTER_NODES;
    zg_sync.zones = calloc((size_t)n, sizeof(zg_sync_zone_t));
    zg_sync.links = calloc((size_t)zg_sync.maxlinks, sizeof(zg_sync_link_t));
    zg_sync.clusters = calloc((size_t)ncz + 1, sizeof(zg_sync_cluster_t));
    if (zg_sync.zones == NULL || zg_sync.links == NULL || zg_sync.clusters == NULL) {
        goto nomem;
    }
    zg_sync.loop = loop;
    for (i = 0; i < lmcf->nzones; i++) {
        zc = lmcf->zones[i];
        if (zc->sync.mode == ZG_SYNC_NONE || zc->zone == NULL ||
            zg_limit_req_sync_shared(zc->zone) == NULL) {
            continue;
        }
        if (zg_sync_add_zone(ZG_SYNC_KIND_REQ, zc->zone, &zc->sync,
                             zg_limit_req_sync_shared(zc->zone), zc->rate) != ZG_OK) {
            goto nomem;
        }
        tick = tick == 0 ? zc->sync.interval : zg_min(tick, zc->sync.interval);
    }
    for (i = 0; i < cmcf->nzones; i++) {
        cc = cmcf->zones[i];
        if (cc->sync.mode == ZG_SYNC_NONE || cc->zone == NULL ||
            zg_limit_conn_sync_shared(cc->zone) == NULL) {
            continue;
        }
        if (zg_sync_add_zone(ZG_SYNC_KIND_CONN, cc->zone, &cc->sync,
                             zg_limit_conn_sync_shared(cc->zone), 0) != ZG_OK) {
            goto nomem;
        }
        tick = tick == 0 ? cc->sync.interval : zg_min(tick, cc->sync.interval);
    }
    for (i = 0; kmcf != NULL && i < kmcf->nzones; i++) {
        kc = kmcf->zones[i];
        if (kc->sync.mode == ZG_SYNC_NONE || kc->zone == NULL ||
            zg_keyval_sync_shared(kc->zone) == NULL) {
            continue;
        }
        if (zg_sync_add_zone(ZG_SYNC_KIND_KV, kc->zone, &kc->sync,
                             zg_keyval_sync_shared(kc->zone), kc->timeout) != ZG_OK) {
            goto nomem;
        }
        tick = tick == 0 ? kc->sync.interval : zg_min(tick, kc->sync.interval);
    }
    zg_sync.running = 1;
    zg_sync.stopping = 0;
    uv_timer_init(loop, &zg_sync.timer);
    uv_timer_start(&zg_sync.timer, zg_sync_tick, tick, tick);
    zg_sync_tick(&zg_sync.timer);
    return ZG_OK;
nomem:
    for (i = 0; zg_sync.clusters != NULL && i < zg_sync.nclusters; i++) {
        free(zg_sync.clusters[i].slot);
    }
    free(zg_sync.zones);
    free(zg_sync.links);
    free(zg_sync.clusters);
    zg_sync.zones = NULL;
    zg_sync.links = NULL;
    zg_sync.clusters = NULL;
    zg_sync.nzones = zg_sync.nlinks = zg_sync.nclusters = 0;
    zg_log_error(ZG_LOG_ALERT, 0, "limit_req sync: no memory");
    return ZG_ERROR;
}

void zg_sync_stop(void)
{
    redisAsyncContext *ac;
    int i;

    if (!zg_sync.running) {
        return;
    }
    zg_sync.running = 0;
    zg_sync.stopping = 1;
    uv_timer_stop(&zg_sync.timer);
    uv_close((uv_handle_t *)&zg_sync.timer, NULL);
    for (i = 0; i < zg_sync.nlinks; i++) {
        ac = zg_sync.links[i].ac;
        zg_sync.links[i].ac = NULL;
        if (ac != NULL) {
            redisAsyncFree(ac); /* batches answered NULL and freed; poll handle closed */
        }
        ac = zg_sync.links[i].sac;
        zg_sync.links[i].sac = NULL;
        if (ac != NULL) {
            redisAsyncFree(ac);
        }
    }
    for (i = 0; i < zg_sync.nclusters; i++) {
        ac = zg_sync.clusters[i].ac;
        zg_sync.clusters[i].ac = NULL;
        if (ac != NULL) {
            redisAsyncFree(ac);
        }
        free(zg_sync.clusters[i].slot);
    }
    free(zg_sync.clusters);
    zg_sync.clusters = NULL;
    zg_sync.nclusters = 0;
    for (i = 0; i < zg_sync.maxlinks && zg_sync.links != NULL; i++) {
        if (zg_sync.links[i].gai_busy) {
            uv_cancel((uv_req_t *)&zg_sync.links[i].gai);
        }
    }
    for (i = 0; i < zg_sync.nzones; i++) {
        int me = (int)getpid();
        __atomic_compare_exchange_n(&zg_sync.zones[i].st->owner, &me, 0, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE);
    }
    free(zg_sync.zones);
    zg_sync.zones = NULL;
    zg_sync.nzones = 0;
    zg_sync.nlinks = 0;
    if (zg_sync.gai_pending == 0) {
        free(zg_sync.links);
        zg_sync.links = NULL;
    }
}

/* CRC16-CCITT (XMODEM), as Redis Cluster uses it */
static uint16_t zg_sync_crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;
    size_t i;
    int j;

    for (i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (j = 0; j < 8; j++) {
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

unsigned zg_sync_key_slot(const char *key, size_t len)
{
    const char *o = memchr(key, '{', len), *c;

    if (o != NULL) {
        c = memchr(o + 1, '}', (size_t)(key + len - o - 1));
        if (c != NULL && c > o + 1) {
            key = o + 1;
            len = (size_t)(c - o - 1);
        }
    }
    return zg_sync_crc16(key, len) & 16383;
}

/* ---------------------------------------------------------------- module */

/* a zone's sync counters: ZG_DECLINED unless it is a limit_req or limit_conn zone
 * configured with sync=...; *conn: it is a limit_conn zone */
static int zg_sync_zone_stats(zg_zone_t *z, zg_sync_stats_t *out, int *conn)
{
    const zg_sync_stats_t *st;

    *conn = 0;
    if (z->pool == NULL || z->conf == NULL) {
        return ZG_DECLINED;
    }
    if (z->kind == ZG_ZONE_KEYVAL) {
        if (((const zg_keyval_zone_conf_t *)z->conf)->sync.mode == ZG_SYNC_NONE ||
            (st = zg_keyval_sync_shared(z)) == NULL) {
            return ZG_DECLINED;
        }
        *conn = 2;
        zg_sync_stats_load(st, out);
        return ZG_OK;
    }
    if (z->kind == ZG_ZONE_LIMIT_REQ) {
        if (((const zg_limit_req_zone_conf_t *)z->conf)->sync.mode == ZG_SYNC_NONE) {
            return ZG_DECLINED;
        }
        return zg_limit_req_sync_stats(z, out);
    }
    if (z->kind != ZG_ZONE_LIMIT_CONN ||
        ((const zg_limit_conn_zone_conf_t *)z->conf)->sync.mode == ZG_SYNC_NONE ||
        (st = zg_limit_conn_sync_shared(z)) == NULL) {
        return ZG_DECLINED;
    }
    *conn = 1;
    zg_sync_stats_load(st, out);
    return ZG_OK;
}

/* only the zones created with sync=... */
static void zg_sync_metrics(zg_buf_t *b, const zg_conf_t *conf)
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
        { "zonegate_sync_redirects_total", "counter",
          "Cluster batches answered MOVED, ASK or TRYAGAIN (followed or retried)." },
        { "zonegate_sync_budget_full_total", "counter",
          "Intervals that used the whole key budget (more keys waited)." },
        { "zonegate_sync_last_success_seconds", "gauge",
          "Unix time of the last batch Redis answered (0: none yet)." },
        { "zonegate_sync_fleet_current", "gauge",
          "limit_conn: requests held fleet-wide for this zone's keys as this host sees "
          "them (its own plus the other hosts' live leases); keyval: entries in Redis." },
    };
    zg_sync_stats_t st;
    zg_zone_t *z;
    uint64_t v;
    size_t f;
    int conn;

    if (zg_admin_zones_of(conf, ZG_ZONE_LIMIT_REQ) == 0 &&
        zg_admin_zones_of(conf, ZG_ZONE_LIMIT_CONN) == 0 &&
        zg_admin_zones_of(conf, ZG_ZONE_KEYVAL) == 0) {
        return;
    }
    for (f = 0; f < zg_nelems(fam); f++) {
        int header = 0;

        for (z = conf->zones.head; z != NULL; z = z->next) {
            if (zg_sync_zone_stats(z, &st, &conn) != ZG_OK || (f == 8 && !conn)) {
                continue;
            }
            if (!header) {
                zg_admin_family(b, fam[f].name, fam[f].type, fam[f].help);
                header = 1;
            }
            v = f == 0 ? (uint64_t)(st.up == ZG_SYNC_UP) : f == 1 ? st.batches
                : f == 2 ? st.keys : f == 3 ? st.errors : f == 4 ? st.dropped
                : f == 5 ? st.redirects : f == 6 ? st.overflows
                : f == 7 ? st.last_ok / 1000
                : conn == 2 ? zg_keyval_sync_fleet(z) : zg_limit_conn_sync_fleet(z);
            zg_admin_sample(b, fam[f].name, v, "zone", z->name, NULL);
        }
    }
}

json_t *zg_sync_api_json(const zg_conf_t *conf)
{
    static const char *const kinds[] = { "limit_req", "limit_conn", "keyval" };
    static const char *const states[] = { "unknown", "up", "down" };
    const zg_sync_conf_t *sc;
    zg_limit_conn_stats_t cs;
    zg_limit_req_stats_t rs;
    zg_keyval_stats_t ks;
    zg_sync_stats_t st;
    json_t *o = json_object(), *e;
    zg_zone_t *z;
    int conn;

    for (z = conf->zones.head; o != NULL && z != NULL; z = z->next) {
        if (zg_sync_zone_stats(z, &st, &conn) != ZG_OK) {
            continue;
        }
        if (conn == 2) {
            sc = &((const zg_keyval_zone_conf_t *)z->conf)->sync;
            zg_keyval_stats(z, &ks);
            e = json_pack("{s:I,s:I}", "local", (json_int_t)ks.entries, "fleet",
                          (json_int_t)zg_keyval_sync_fleet(z));
        } else if (conn == 1) {
            sc = &((const zg_limit_conn_zone_conf_t *)z->conf)->sync;
            zg_limit_conn_stats(z, &cs);
            e = json_pack("{s:I,s:I}", "local", (json_int_t)cs.current, "fleet",
                          (json_int_t)zg_limit_conn_sync_fleet(z));
        } else {
            sc = &((const zg_limit_req_zone_conf_t *)z->conf)->sync;
            zg_limit_req_stats(z, &rs);
            e = json_pack("{s:I}", "local", (json_int_t)rs.entries);
        }
        if (e == NULL) {
            continue;
        }
        json_object_set_new(e, "kind", json_string(kinds[conn]));
        json_object_set_new(e, "url", json_string(sc->url));
        json_object_set_new(e, "interval_ms", json_integer((json_int_t)sc->interval));
        json_object_set_new(e, "state",
                            json_string(states[st.up >= 0 && st.up <= 2 ? st.up : 0]));
        json_object_set_new(e, "last_success_ms", json_integer((json_int_t)st.last_ok));
        json_object_set_new(e, "batches", json_integer((json_int_t)st.batches));
        json_object_set_new(e, "keys", json_integer((json_int_t)st.keys));
        json_object_set_new(e, "errors", json_integer((json_int_t)st.errors));
        json_object_set_new(e, "dropped", json_integer((json_int_t)st.dropped));
        json_object_set_new(e, "redirects", json_integer((json_int_t)st.redirects));
        json_object_set_new(e, "budget_full", json_integer((json_int_t)st.overflows));
        json_object_set_new(o, z->name, e);
    }
    return o;
}

/* the first worker of a generation runs the sync for every worker */
static int zg_sync_init_worker(zg_worker_t *w)
{
    if (zg_worker_first) {
        zg_sync_start(w->loop, w->conf);
    }
    return ZG_OK;
}

static void zg_sync_exit_worker(zg_worker_t *w)
{
    (void)w;
    zg_sync_stop();
}

zg_module_t zg_sync_module = {
    .name = "sync",
    .init_worker = zg_sync_init_worker,
    .exit_worker = zg_sync_exit_worker,
    .metrics = zg_sync_metrics,
};
