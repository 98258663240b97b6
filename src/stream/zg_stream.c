/* zg_stream.c — the stream core module: stream, server and listen; the listening
 * sockets on each worker's loop; a session's phases and its one finalize path. */
#include "zg_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_log.h"
#include "zg_proxy_protocol.h"
#include "zg_tls.h"
#include "zg_worker.h"

#define ZG_STREAM_BACKLOG 511 /* nginx's NGX_LISTEN_BACKLOG */

/* this worker's listeners and sessions (one worker per process) */
static uv_tcp_t *zg_stream_listeners;
static int zg_stream_nlisteners;
static zg_queue_t zg_stream_sessions;

/* ---------------------------------------------------------------- config */

static int zg_stream_block(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_stream_core_main_conf_t *scf = conf;
    int rc;

    (void)cmd;
    if (scf->seen) {
        return zg_conf_duplicate(cf);
    }
    scf->seen = 1;
    scf->stream_conf = zg_conf_create_loc_confs(cf);
    if (scf->stream_conf == NULL) {
        return zg_conf_nomem(cf);
    }
    rc = zg_conf_block(cf, ZG_CTX_STREAM, scf->stream_conf, NULL);
    if (rc != ZG_OK) {
        return rc;
    }
    /* the stream level is read whole before its servers inherit from it, as nginx */
    for (int i = 0; i < scf->nservers; i++) {
        zg_stream_server_t *srv = scf->servers[i];
        if (zg_conf_merge_loc_confs(cf, scf->stream_conf, srv->conf) != ZG_OK) {
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

static int zg_stream_server(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_stream_core_main_conf_t *scf = conf;
    zg_stream_server_t *srv, **slot;
    int nlistens = scf->nlistens, rc;

    (void)cmd;
    srv = zg_conf_alloc(cf->conf, sizeof(*srv));
    slot = zg_conf_push(cf->conf, scf->servers, scf->nservers);
    if (srv == NULL || slot == NULL || (srv->conf = zg_conf_create_loc_confs(cf)) == NULL) {
        return zg_conf_nomem(cf);
    }
    *slot = srv;
    srv->file = cf->file;
    srv->line = cf->line;
    rc = zg_conf_block(cf, ZG_CTX_STREAM_SRV, srv->conf, srv);
    if (rc != ZG_OK) {
        return rc;
    }
    if (scf->nlistens == nlistens) {
        return zg_conf_error(cf, "no \"listen\" is defined for server");
    }
    if (srv->handler == NULL) {
        return zg_conf_error(cf, "no handler for server");
    }
    return ZG_OK;
}

static int zg_stream_listen(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_stream_core_main_conf_t *scf = conf;
    zg_stream_listen_t *l;
    zg_str_t *a = cf->args;
    zg_addr_t addr;
    int rc, backlog = ZG_STREAM_BACKLOG, keepalive = 0, pp = 0, ssl = 0;

    (void)cmd;
    rc = zg_conf_parse_addr(a[1].data, a[1].len, 0, &addr);
    if (rc == ZG_DECLINED) {
        return zg_conf_error(cf, "host not found in \"%s\" of the \"listen\" directive",
                             a[1].data);
    }
    if (rc != ZG_OK) {
        return zg_conf_error(cf, "invalid address \"%s\" of the \"listen\" directive", a[1].data);
    }
    for (int i = 2; i < cf->nargs; i++) {
        if (zg_conf_prefix(&a[i], "backlog=")) {
            backlog = zg_conf_atoi(a[i].data + 8, a[i].len - 8);
            if (backlog <= 0) {
                return zg_conf_error(cf, "invalid backlog \"%s\"", a[i].data + 8);
            }
        } else if (zg_conf_eq(&a[i], "so_keepalive=on")) {
            keepalive = 1;
        } else if (zg_conf_eq(&a[i], "so_keepalive=off")) {
            keepalive = 0;
        } else if (zg_conf_eq(&a[i], "proxy_protocol")) {
            pp = 1;
        } else if (zg_conf_eq(&a[i], "ssl")) {
            ssl = 1;
        } else {
            return zg_conf_error(cf, "the invalid \"%s\" parameter", a[i].data);
        }
    }
    for (int i = 0; i < scf->nlistens; i++) {
        if (zg_addr_eq(&scf->listens[i].addr, &addr)) {
            return zg_conf_error(cf, "duplicate \"%s\" address and port pair", addr.text);
        }
    }
    l = zg_conf_push(cf->conf, scf->listens, scf->nlistens);
    if (l == NULL) {
        return zg_conf_nomem(cf);
    }
    l->addr = addr;
    l->server = cf->block;
    l->backlog = backlog;
    l->so_keepalive = keepalive ? 1 : 0;
    l->proxy_protocol = pp ? 1 : 0;
    l->ssl = ssl ? 1 : 0;
    l->fd = -1;
    l->file = cf->file;
    l->line = cf->line;
    return ZG_OK;
}

int zg_stream_set_handler(zg_cf_t *cf, zg_stream_handler_pt handler)
{
    zg_stream_server_t *srv = cf->block;

    if (srv->handler != NULL) {
        return zg_conf_duplicate(cf);
    }
    srv->handler = handler;
    return ZG_OK;
}

static void *zg_stream_create_main_conf(zg_conf_t *conf)
{
    return zg_conf_alloc(conf, sizeof(zg_stream_core_main_conf_t));
}

/* set_real_ip_from ADDR[/BITS]|unix: (ngx_stream_realip_module) */
static int zg_stream_real_ip_from(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_stream_core_conf_t *c = conf;
    zg_stream_cidr_t *r;
    zg_str_t *a = &cf->args[1];
    char host[64];
    const char *slash = memchr(a->data, '/', a->len);
    size_t hlen = slash ? (size_t)(slash - a->data) : a->len;
    int bits, max;

    (void)cmd;
    if (c->nreal_ip_from < 0) {
        c->nreal_ip_from = 0;
    }
    r = zg_conf_push(cf->conf, c->real_ip_from, c->nreal_ip_from);
    if (r == NULL) {
        return zg_conf_nomem(cf);
    }
    if (zg_conf_eq(a, "unix:")) {
        memset(r, 0, sizeof(*r));
        r->family = AF_UNIX; /* every unix socket client, as nginx */
        return ZG_OK;
    }
    if (hlen == 0 || hlen >= sizeof(host)) {
        return zg_conf_invalid(cf, a);
    }
    memcpy(host, a->data, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, r->addr) == 1) {
        r->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, r->addr) == 1) {
        r->family = AF_INET6;
        max = 128;
    } else {
        return zg_conf_error(cf, "invalid parameter \"%s\"", a->data);
    }
    bits = max;
    if (slash != NULL) {
        bits = zg_conf_atoi(slash + 1, a->len - hlen - 1);
        if (bits < 0 || bits > max) {
            return zg_conf_error(cf, "invalid parameter \"%s\"", a->data);
        }
    }
    for (int i = 0; i < max / 8; i++) {
        int b = bits - i * 8;
        r->mask[i] = (unsigned char)(b >= 8 ? 0xff : b <= 0 ? 0 : (0xff << (8 - b)) & 0xff);
        if ((r->addr[i] & ~r->mask[i]) != 0) {
            /* nginx: "low address bits of ... are meaningless"; it masks them */
            r->addr[i] &= r->mask[i];
        }
    }
    return ZG_OK;
}

static int zg_stream_trusted(const zg_stream_core_conf_t *c, const struct sockaddr *sa)
{
    const unsigned char *a;
    int family = sa->sa_family, n;

    if (family == AF_INET) {
        a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        n = 4;
    } else if (family == AF_INET6) {
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        n = 16;
    } else if (family == AF_UNIX) {
        a = NULL;
        n = 0; /* "unix:" matches every unix client */
    } else {
        return 0;
    }
    for (int i = 0; i < c->nreal_ip_from; i++) {
        const zg_stream_cidr_t *r = &c->real_ip_from[i];
        int k;
        if (r->family != family) {
            continue;
        }
        for (k = 0; k < n && (a[k] & r->mask[k]) == r->addr[k]; k++) {
        }
        if (k == n) {
            return 1;
        }
    }
    return 0;
}

static void *zg_stream_create_conf(zg_conf_t *conf)
{
    zg_stream_core_conf_t *c = zg_conf_alloc(conf, sizeof(*c));

    if (c != NULL) {
        c->proxy_protocol_timeout = ZG_UNSET_MSEC;
        c->nreal_ip_from = -1;
    }
    return c;
}

static int zg_stream_merge_conf(zg_cf_t *cf, void *parent, void *child)
{
    zg_stream_core_conf_t *p = parent, *c = child;

    (void)cf;
    ZG_CONF_MERGE(c, p, proxy_protocol_timeout, ZG_UNSET_MSEC);
    if (c->nreal_ip_from < 0) {
        c->real_ip_from = p->real_ip_from;
        c->nreal_ip_from = p->nreal_ip_from < 0 ? 0 : p->nreal_ip_from;
    }
    if (c->proxy_protocol_timeout == ZG_UNSET_MSEC) {
        c->proxy_protocol_timeout = 30000;
    }
    return ZG_OK;
}

/* ---------------------------------------------------------------- sessions */

const char *zg_stream_addr_text(zg_stream_session_t *s, char *buf, size_t len)
{
    return zg_var_client(&s->vars, buf, len);
}

void zg_stream_ref(zg_stream_session_t *s)
{
    s->refs++;
}

void zg_stream_unref(zg_stream_session_t *s)
{
    zg_worker_t *w = s->w;

    if (--s->refs > 0) {
        return;
    }
    zg_queue_remove(&s->link);
    for (int i = 0; i < ZG_MAX_MODULES; i++) {
        free(s->ctx[i]);
    }
    free(s->pp_buf);
    free(s->pp_timer);
    zg_tls_free(s->tls);
    free(s);
    w->nconns--;
    if (w->quitting && w->nconns == 0) {
        uv_stop(w->loop);
    }
}

static void zg_stream_client_closed(uv_handle_t *h)
{
    zg_stream_unref(h->data);
}

static void zg_stream_pp_timer_closed(uv_handle_t *h)
{
    zg_stream_unref(h->data);
}

static void zg_stream_pp_done(zg_stream_session_t *s)
{
    if (s->pp_timer != NULL && !uv_is_closing((uv_handle_t *)s->pp_timer)) {
        uv_close((uv_handle_t *)s->pp_timer, zg_stream_pp_timer_closed);
    }
}

void zg_stream_finalize(zg_stream_session_t *s, int status)
{
    if (s->finalized) {
        return;
    }
    s->finalized = 1;
    zg_stream_pp_done(s);
    s->status = status;
    s->vars.status = status;
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->stream_release != NULL) {
            zg_modules[i]->stream_release(s);
        }
    }
    for (int i = 0; zg_modules[i] != NULL; i++) {
        if (zg_modules[i]->stream_log != NULL) {
            zg_modules[i]->stream_log(s);
        }
    }
    uv_close((uv_handle_t *)&s->tcp, zg_stream_client_closed);
}

/* runs the phase handlers from where the session stands, then the content handler */
static void zg_stream_run(zg_stream_session_t *s)
{
    int rc;

    while (s->phase < ZG_STREAM_PHASE_LAST) {
        int i = s->mod++;
        const zg_module_t *m = zg_modules[i];
        if (m == NULL) {
            s->phase++;
            s->mod = 0;
            continue;
        }
        if (m->stream_handler == NULL || m->stream_phase != s->phase) {
            continue;
        }
        rc = m->stream_handler(s);
        if (rc == ZG_AGAIN || rc == ZG_DONE || s->finalized) {
            return;
        }
        if (rc != ZG_DECLINED && rc != ZG_OK) {
            zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
            return;
        }
    }
    s->srv->handler(s);
}

void zg_stream_resume(zg_stream_session_t *s)
{
    if (!s->finalized) {
        zg_stream_run(s);
    }
}

/* ---------------------------------------------------------------- PROXY header */

static void zg_stream_pp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    zg_stream_session_t *s = h->data;

    (void)hint;
    *buf = uv_buf_init((char *)s->pp_buf + s->pp_len, (unsigned)(ZG_PP_MAX - s->pp_len));
}

static void zg_stream_pp_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    zg_stream_session_t *s = h->data;
    char addr[64], shown[2 * ZG_PP_V1_MAX + 1];
    zg_pp_t pp;
    int rc;
    size_t k = 0;

    (void)buf;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        zg_log_error(ZG_LOG_INFO, 0, "client closed connection while reading PROXY protocol, "
                     "client: %s", zg_stream_addr_text(s, addr, sizeof(addr)));
        zg_stream_finalize(s, ZG_STREAM_BAD_REQUEST);
        return;
    }
    s->pp_len += (size_t)nread;
    rc = zg_pp_parse(s->pp_buf, s->pp_len, &pp);
    if (rc == ZG_AGAIN && s->pp_len < ZG_PP_MAX) {
        return;
    }
    uv_read_stop(h);
    if (rc <= 0) {
        /* the start of what came, printable bytes as they are */
        for (size_t i = 0; i < s->pp_len && i < ZG_PP_V1_MAX && k + 4 < sizeof(shown); i++) {
            unsigned char c = s->pp_buf[i];
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
                shown[k++] = (char)c;
            } else {
                k += (size_t)snprintf(shown + k, sizeof(shown) - k, "\\x%02X", c);
            }
        }
        shown[k] = '\0';
        zg_log_error(ZG_LOG_ERR, 0, "broken header: \"%s\" while reading PROXY protocol, "
                     "client: %s", shown, zg_stream_addr_text(s, addr, sizeof(addr)));
        zg_stream_finalize(s, ZG_STREAM_BAD_REQUEST);
        return;
    }
    if (!pp.local) {
        snprintf(s->pp_addr, sizeof(s->pp_addr), "%s", pp.src_text);
        s->vars.proxy_protocol_addr.data = s->pp_addr;
        s->vars.proxy_protocol_addr.len = strlen(s->pp_addr);
        /* set_real_ip_from: a trusted balancer's header names the client (when
         * what it sent is an address) */
        if ((pp.src.ss_family == AF_INET || pp.src.ss_family == AF_INET6)
            && zg_stream_trusted(zg_stream_conf(s, zg_stream_core_module),
                                 (struct sockaddr *)&s->peer)) {
            memcpy(&s->peer, &pp.src, sizeof(pp.src));
        }
    }
    s->preread = s->pp_buf + rc;
    s->preread_len = s->pp_len - (size_t)rc;
    zg_stream_pp_done(s);
    zg_stream_run(s);
}

static void zg_stream_pp_timeout(uv_timer_t *t)
{
    zg_stream_session_t *s = t->data;
    char addr[64];

    zg_log_error(ZG_LOG_INFO, 0, "client timed out while reading PROXY protocol, client: %s",
                 zg_stream_addr_text(s, addr, sizeof(addr)));
    zg_stream_finalize(s, ZG_STREAM_BAD_REQUEST);
}

static void zg_stream_pp_start(zg_stream_session_t *s)
{
    zg_stream_core_conf_t *c = zg_stream_conf(s, zg_stream_core_module);

    s->pp_buf = malloc(ZG_PP_MAX);
    s->pp_timer = malloc(sizeof(uv_timer_t));
    if (s->pp_buf == NULL || s->pp_timer == NULL) {
        free(s->pp_timer);
        s->pp_timer = NULL;
        zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }
    uv_timer_init(s->loop, s->pp_timer);
    s->pp_timer->data = s;
    zg_stream_ref(s);
    uv_timer_start(s->pp_timer, zg_stream_pp_timeout, c->proxy_protocol_timeout, 0);
    if (uv_read_start((uv_stream_t *)&s->tcp, zg_stream_pp_alloc, zg_stream_pp_read) != 0) {
        zg_stream_finalize(s, ZG_STREAM_INTERNAL_SERVER_ERROR);
    }
}

static void zg_stream_on_connection(uv_stream_t *server, int status)
{
    zg_worker_t *w = server->loop->data;
    zg_stream_listen_t *ls = server->data;
    zg_stream_session_t *s;
    int len, rc;

    if (status < 0) {
        zg_log_error(ZG_LOG_ERR, 0, "accept() failed (%s)", uv_strerror(status));
        return;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        zg_log_error(ZG_LOG_CRIT, 0, "no memory for a stream session");
        return;
    }
    uv_tcp_init(server->loop, &s->tcp);
    s->tcp.data = s;
    s->w = w;
    s->loop = server->loop;
    s->ls = ls;
    s->srv = ls->server;
    s->refs = 1;
    zg_queue_insert_tail(&zg_stream_sessions, &s->link);
    w->nconns++;
    rc = uv_accept(server, (uv_stream_t *)&s->tcp);
    if (rc != 0) {
        if (rc != UV_EAGAIN) {
            zg_log_error(ZG_LOG_ERR, 0, "accept() failed (%s)", uv_strerror(rc));
        }
        s->finalized = 1;
        uv_close((uv_handle_t *)&s->tcp, zg_stream_client_closed);
        return;
    }
    len = sizeof(s->peer);
    uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&s->peer, &len);
    len = sizeof(s->local);
    uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&s->local, &len);
    uv_tcp_nodelay(&s->tcp, 1);
    s->serial = ++w->serial;
    s->start = zg_time_msec();
    s->status = ZG_STREAM_OK;
    s->vars.remote = (struct sockaddr *)&s->peer;
    s->vars.local = (struct sockaddr *)&s->local;
    s->vars.local_fd = -1;
    s->vars.start_msec = s->start;
    s->vars.start_time = time(NULL);
    s->vars.connection = s->serial;
    s->vars.connection_requests = 1;
    s->phase = ZG_STREAM_PHASE_NONE + 1;
    s->mod = 0;
    if (ls->proxy_protocol) {
        zg_stream_pp_start(s);
        return;
    }
    zg_stream_run(s);
}

/* ---------------------------------------------------------------- worker */

static int zg_stream_init_worker(zg_worker_t *w)
{
    zg_stream_core_main_conf_t *scf = zg_stream_core_main_conf(w->conf);

    zg_queue_init(&zg_stream_sessions);
    zg_stream_nlisteners = 0;
    if (scf->nlistens == 0) {
        return ZG_OK;
    }
    zg_stream_listeners = calloc((size_t)scf->nlistens, sizeof(uv_tcp_t));
    if (zg_stream_listeners == NULL) {
        return ZG_ERROR;
    }
    for (int i = 0; i < scf->nlistens; i++) {
        uv_tcp_t *t = &zg_stream_listeners[i];
        uv_tcp_init(w->loop, t);
        t->data = &scf->listens[i];
        zg_stream_nlisteners++;
        if (uv_tcp_open(t, scf->listens[i].fd) != 0
            || uv_listen((uv_stream_t *)t, scf->listens[i].backlog, zg_stream_on_connection)
                   != 0) {
            zg_log_error(ZG_LOG_EMERG, 0, "cannot listen on %s", scf->listens[i].addr.text);
            return ZG_ERROR;
        }
    }
    return ZG_OK;
}

/* graceful stop: no new sessions; open ones go on until they end */
static void zg_stream_quit_worker(zg_worker_t *w)
{
    int n = 0;

    (void)w;
    if (zg_stream_sessions.next != NULL) {
        for (zg_queue_t *q = zg_queue_head(&zg_stream_sessions);
             q != zg_queue_sentinel(&zg_stream_sessions); q = zg_queue_next(q)) {
            n++;
        }
    }
    if (zg_stream_nlisteners > 0) {
        zg_log_error(ZG_LOG_NOTICE, 0, "stream: gracefully shutting down, %d sessions open", n);
    }
    for (int i = 0; i < zg_stream_nlisteners; i++) {
        if (!uv_is_closing((uv_handle_t *)&zg_stream_listeners[i])) {
            uv_close((uv_handle_t *)&zg_stream_listeners[i], NULL);
        }
    }
}

/* fast stop: every session gives back what it holds */
static void zg_stream_exit_worker(zg_worker_t *w)
{
    zg_queue_t *q;

    (void)w;
    if (zg_stream_sessions.next == NULL) {
        return;
    }
    q = zg_queue_head(&zg_stream_sessions);
    while (q != zg_queue_sentinel(&zg_stream_sessions)) {
        zg_stream_session_t *s = zg_queue_data(q, zg_stream_session_t, link);
        q = zg_queue_next(q);
        zg_stream_finalize(s, ZG_STREAM_OK);
    }
}

static const zg_command_t zg_stream_commands[] = {
    { "stream", ZG_CTX_MAIN, 1, 0, 0, zg_stream_block, ZG_MAIN_CONF, 0, NULL },
    { "server", ZG_CTX_STREAM, 1, 0, 0, zg_stream_server, ZG_MAIN_CONF, 0, NULL },
    { "listen", ZG_CTX_STREAM_SRV, 0, 1, -1, zg_stream_listen, ZG_MAIN_CONF, 0, NULL },
    { "set_real_ip_from", ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_stream_real_ip_from, ZG_LOC_CONF,
      0, NULL },
    { "proxy_protocol_timeout", ZG_CTX_STREAM_SETTINGS, 0, 1, 1, zg_conf_set_msec, ZG_LOC_CONF,
      offsetof(zg_stream_core_conf_t, proxy_protocol_timeout), NULL },
    ZG_NULL_COMMAND
};

zg_module_t zg_stream_core_module = {
    .name = "stream_core",
    .commands = zg_stream_commands,
    .create_main_conf = zg_stream_create_main_conf,
    .create_loc_conf = zg_stream_create_conf,
    .merge_loc_conf = zg_stream_merge_conf,
    .init_worker = zg_stream_init_worker,
    .quit_worker = zg_stream_quit_worker,
    .exit_worker = zg_stream_exit_worker,
};
