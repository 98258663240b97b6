/* fuzz_conf.c — libFuzzer: any bytes through the config parser, then free
 * (ASan/LSan catch overflows and leaks).  Host names are never looked up. */
#include <stddef.h>
#include <stdint.h>

#include "zg_conf.h"
#include "zg_http_core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    zg_conf_t *conf;

    zg_conf_no_resolve = 1;
    /* a directory that does not exist: relative includes fail fast */
    conf = zg_conf_load_string("/nonexistent/fuzz.conf", (const char *)data, size, err,
                               sizeof(err));
    if (conf != NULL) {
        zg_http_core_main_conf_t *cmcf = zg_http_core_main_conf(conf);
        for (int i = 0; i < cmcf->nlistens; i++) {
            zg_server_conf_t *srv = zg_http_find_server(&cmcf->listens[i], "a", 1, NULL);
            if (srv != NULL) {
                (void)zg_http_find_location(srv, "/a/b", 4, NULL);
            }
        }
        zg_conf_free(conf);
    }
    return 0;
}
