/* main.c — command line: run, -t, -s SIGNAL, -v, -h. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zg_conf.h"
#include "zg_core_module.h"
#include "zg_log.h"
#include "zg_process.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: zonegate [-c FILE] [-t] [-s reload|stop|quit|reopen] [-v] [-h]\n"
               "  -c FILE   configuration file (default conf/zonegate.conf)\n"
               "  -t        test the configuration and exit (0 ok, 1 bad)\n"
               "  -s SIG    send a signal to the running master (pid file)\n"
               "  -v        print the version\n"
               "  -h        this help\n");
}

static int signal_master(zg_conf_t *conf, const char *name)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {{"reload", SIGHUP}, {"stop", SIGTERM}, {"quit", SIGQUIT}, {"reopen", SIGUSR1}};
    int sig = 0;
    for (size_t i = 0; i < zg_nelems(sigs); i++) {
        if (strcmp(name, sigs[i].name) == 0) {
            sig = sigs[i].sig;
        }
    }
    if (sig == 0) {
        fprintf(stderr, "zonegate: invalid option: \"-s %s\"\n", name);
        return 1;
    }
    const char *pid_file = zg_core_conf(conf)->pid_file;
    if (pid_file == NULL) {
        fprintf(stderr, "zonegate: [error] no \"pid\" file in the configuration\n");
        return 1;
    }
    FILE *f = fopen(pid_file, "r");
    if (f == NULL) {
        fprintf(stderr, "zonegate: [error] open() \"%s\" failed (%d: %s)\n", pid_file,
                errno, strerror(errno));
        return 1;
    }
    long pid = 0;
    int n = fscanf(f, "%ld", &pid);
    fclose(f);
    if (n != 1 || pid <= 0) {
        fprintf(stderr, "zonegate: [error] invalid PID number in \"%s\"\n", pid_file);
        return 1;
    }
    if (kill((pid_t)pid, sig) != 0) {
        fprintf(stderr, "zonegate: [error] kill(%ld, %d) failed (%d: %s)\n", pid, sig, errno,
                strerror(errno));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *file = "conf/zonegate.conf", *sig = NULL;
    int test = 0, opt;
    static char err[65536]; /* every error of the config, one a line */

    while ((opt = getopt(argc, argv, "c:ts:vh")) != -1) {
        switch (opt) {
        case 'c':
            file = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 's':
            sig = optarg;
            break;
        case 'v':
            printf("zonegate version: zonegate/" ZG_VERSION "\n");
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 1;
    }

    if (test) {
        zg_log_open("stderr", ZG_LOG_WARN); /* -t shows warnings too, as nginx -t */
    }
    zg_conf_t *conf = zg_conf_load(file, err, sizeof(err));
    if (conf == NULL) {
        for (char *line = err, *nl; line != NULL; line = nl) {
            nl = strchr(line, '\n');
            if (nl != NULL) {
                *nl++ = '\0';
            }
            fprintf(stderr, "zonegate: [emerg] %s\n", line);
        }
        if (test) {
            fprintf(stderr, "zonegate: configuration file %s test failed\n", file);
        }
        return 1;
    }
    if (test) {
        fprintf(stderr, "zonegate: the configuration file %s syntax is ok\n", file);
        fprintf(stderr, "zonegate: configuration file %s test is successful\n", file);
        zg_conf_free(conf);
        return 0;
    }
    if (sig) {
        int rc = signal_master(conf, sig);
        zg_conf_free(conf);
        return rc;
    }
    return zg_master_run(conf, file);
}
