/* zg_core_module.c — main context directives (worker_processes, pid, error_log,
 * daemon, worker_rlimit_nofile) and the events block. */
#include "zg_core_module.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "zg_log.h"

static int zg_core_worker_processes(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_core_conf_t *cc = conf;
    zg_str_t *a = cf->args;
    int v;

    (void)cmd;
    if (cc->worker_processes != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    if (zg_conf_eq(&a[1], "auto")) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        v = (int)zg_max(1, zg_min(c, ZG_MAX_WORKERS / 2));
    } else {
        v = zg_conf_atoi(a[1].data, a[1].len);
        if (v < 1 || v > ZG_MAX_WORKERS / 2) {
            return zg_conf_invalid(cf, &a[1]);
        }
    }
    cc->worker_processes = v;
    return ZG_OK;
}

static int zg_core_daemon(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_core_conf_t *cc = conf;

    (void)cmd;
    if (cc->daemon != ZG_UNSET) {
        return zg_conf_duplicate(cf);
    }
    return zg_conf_flag(cf, &cf->args[1], &cc->daemon);
}

/* user USER [GROUP]: both must exist (also under -t, also when not root) */
static int zg_core_user(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_core_conf_t *cc = conf;
    zg_str_t *a = cf->args;
    struct passwd *pw;
    struct group *gr;

    (void)cmd;
    if (cc->user != NULL) {
        return zg_conf_duplicate(cf);
    }
    errno = 0;
    pw = getpwnam(a[1].data);
    if (pw == NULL) {
        return zg_conf_error(cf, "unknown user \"%s\" in \"%s\" directive (getpwnam() failed)",
                             a[1].data, cf->name);
    }
    cc->user_uid = pw->pw_uid;
    cc->user_gid = pw->pw_gid;
    if (cf->nargs == 3) {
        errno = 0;
        gr = getgrnam(a[2].data);
        if (gr == NULL) {
            return zg_conf_error(cf,
                                 "unknown group \"%s\" in \"%s\" directive (getgrnam() failed)",
                                 a[2].data, cf->name);
        }
        cc->user_gid = gr->gr_gid;
        cc->group = zg_conf_strdup(cf->conf, a[2].data, a[2].len);
        if (cc->group == NULL) {
            return zg_conf_nomem(cf);
        }
    }
    cc->user = zg_conf_strdup(cf->conf, a[1].data, a[1].len);
    return cc->user != NULL ? ZG_OK : zg_conf_nomem(cf);
}

static int zg_core_pid(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_core_conf_t *cc = conf;

    (void)cmd;
    if (cc->pid_file != NULL) {
        return zg_conf_duplicate(cf);
    }
    cc->pid_file = zg_conf_path(cf, &cf->args[1]);
    return cc->pid_file != NULL ? ZG_OK : zg_conf_nomem(cf);
}

static int zg_core_error_log(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_core_conf_t *cc = conf;
    zg_str_t *a = cf->args;
    int level = ZG_LOG_ERR;

    (void)cmd;
    if (cc->error_log_file != NULL) {
        return zg_conf_duplicate(cf);
    }
    if (cf->nargs > 2) {
        level = zg_log_level_parse(a[2].data, a[2].len);
        if (level < 0) {
            return zg_conf_invalid(cf, &a[2]);
        }
    }
    if (zg_conf_eq(&a[1], "stderr")) {
        cc->error_log_file = zg_conf_strdup(cf->conf, "stderr", 6);
    } else {
        cc->error_log_file = zg_conf_path(cf, &a[1]);
    }
    if (cc->error_log_file == NULL) {
        return zg_conf_nomem(cf);
    }
    cc->error_log_level = level;
    return ZG_OK;
}

static int zg_core_events(zg_cf_t *cf, const zg_command_t *cmd, void *conf)
{
    zg_core_conf_t *cc = conf;

    (void)cmd;
    if (cc->events_seen) {
        return zg_conf_duplicate(cf);
    }
    cc->events_seen = 1;
    return zg_conf_block(cf, ZG_CTX_EVENTS, NULL, NULL);
}

static void *zg_core_create_conf(zg_conf_t *conf)
{
    zg_core_conf_t *cc = zg_conf_alloc(conf, sizeof(*cc));

    if (cc == NULL) {
        return NULL;
    }
    cc->worker_processes = ZG_UNSET;
    cc->worker_connections = ZG_UNSET;
    cc->worker_rlimit_nofile = ZG_UNSET;
    cc->daemon = ZG_UNSET;
    cc->worker_sandbox = ZG_UNSET;
    return cc;
}

static int zg_core_init_conf(zg_cf_t *cf, void *conf)
{
    zg_core_conf_t *cc = conf;

    if (cc->worker_processes == ZG_UNSET) {
        cc->worker_processes = 1;
    }
    if (cc->worker_connections == ZG_UNSET) {
        cc->worker_connections = 10240;
    }
    if (cc->worker_rlimit_nofile == ZG_UNSET) {
        cc->worker_rlimit_nofile = 0;
    }
    if (cc->daemon == ZG_UNSET) {
        cc->daemon = 0;
    }
    if (cc->worker_sandbox == ZG_UNSET) {
        cc->worker_sandbox = 1;
    }
    if (cc->error_log_file == NULL) {
        cc->error_log_file = zg_conf_strdup(cf->conf, "stderr", 6);
        cc->error_log_level = ZG_LOG_ERR;
        if (cc->error_log_file == NULL) {
            return zg_conf_nomem(cf);
        }
    }
    return ZG_OK;
}

#define ZG_CORE(f) offsetof(zg_core_conf_t, f)

static const char *const zg_core_use_methods[] = {"epoll", NULL};

static const zg_command_t zg_core_commands[] = {
    { "worker_processes", ZG_CTX_MAIN, 0, 1, 1, zg_core_worker_processes, ZG_MAIN_CONF, 0,
      NULL },
    { "worker_connections", ZG_CTX_MAIN | ZG_CTX_EVENTS, 0, 1, 1, zg_conf_set_count,
      ZG_MAIN_CONF, ZG_CORE(worker_connections), NULL },
    { "worker_rlimit_nofile", ZG_CTX_MAIN, 0, 1, 1, zg_conf_set_count, ZG_MAIN_CONF,
      ZG_CORE(worker_rlimit_nofile), NULL },
    { "pid", ZG_CTX_MAIN, 0, 1, 1, zg_core_pid, ZG_MAIN_CONF, 0, NULL },
    { "error_log", ZG_CTX_MAIN, 0, 1, 2, zg_core_error_log, ZG_MAIN_CONF, 0, NULL },
    { "daemon", ZG_CTX_MAIN, 0, 1, 1, zg_core_daemon, ZG_MAIN_CONF, 0, NULL },
    { "user", ZG_CTX_MAIN, 0, 1, 2, zg_core_user, ZG_MAIN_CONF, 0, NULL },
    { "worker_sandbox", ZG_CTX_MAIN, 0, 1, 1, zg_conf_set_flag, ZG_MAIN_CONF,
      ZG_CORE(worker_sandbox), NULL },
    { "events", ZG_CTX_MAIN, 1, 0, 0, zg_core_events, ZG_MAIN_CONF, 0, NULL },
    /* libuv runs on epoll: the only method nginx would pick here as well */
    { "use", ZG_CTX_EVENTS, 0, 1, 1, zg_conf_set_noop_word, ZG_MAIN_CONF, 0,
      zg_core_use_methods },
    ZG_NULL_COMMAND
};

zg_module_t zg_core_module = {
    .name = "core",
    .commands = zg_core_commands,
    .create_main_conf = zg_core_create_conf,
    .init_main_conf = zg_core_init_conf,
};
