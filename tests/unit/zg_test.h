/* zg_test.h — fixtures shared by the limiter unit tests (include after cmocka.h). */
#ifndef ZG_TEST_H
#define ZG_TEST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "zg_vars.h"

/* the request every limiter call is made for; set_ip() picks its client address */
static struct sockaddr_in client;
static zg_var_ctx_t ctx;

static inline void set_ip(uint32_t ip)
{
    memset(&client, 0, sizeof(client));
    client.sin_family = AF_INET;
    client.sin_addr.s_addr = htonl(ip);
    client.sin_port = htons(40000);
    ctx.remote = (const struct sockaddr *)&client;
}

/* a whole (small) file, NUL-terminated, in a static buffer */
static inline char *read_file(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    size_t n;

    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

#endif
