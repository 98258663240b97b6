/* bench/upstream.c — a tiny, fast HTTP/1.1 upstream for the benchmarks.
 *
 * One libuv loop, one listening port per process.  Every request head (up to the
 * blank line) is answered with a fixed 200 "ok"; connections stay open (keep-alive),
 * pipelined requests are answered in one write.  Request bodies are not supported:
 * the benchmark sends only GETs.  It exists so that every proxy is measured against
 * the same upstream, one that costs far less per request than any of them.
 *
 *   cc -O2 -o upstream bench/upstream.c -luv
 *   ./upstream PORT            (listens on 127.0.0.1:PORT until killed)
 *   ./upstream PORT FILE       (answers with FILE's bytes as application/json: the
 *                               gzip benchmark's 10 KB JSON)
 * SIGUSR1 prints the connections accepted so far ("accepts N") on stderr: the
 * upstream connection churn of a proxy (bench/churn.py).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char resp_ok[] = "HTTP/1.1 200 OK\r\n"
                              "Content-Type: text/plain\r\n"
                              "Content-Length: 2\r\n"
                              "\r\n"
                              "ok";
static const char *resp = resp_ok;
static size_t RESP_LEN = sizeof(resp_ok) - 1;

/* the answer with FILE's bytes as its body */
static void load_body(const char *file)
{
    FILE *f = fopen(file, "rb");
    static char buf[1 << 20];
    size_t n;
    char *r;

    if (f == NULL) {
        perror(file);
        exit(1);
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    r = malloc(n + 128);
    if (r == NULL) {
        abort();
    }
    int h = snprintf(r, 128, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\n\r\n", n);
    memcpy(r + h, buf, n);
    resp = r;
    RESP_LEN = (size_t)h + n;
}

typedef struct {
    uv_tcp_t tcp;
    unsigned state; /* bytes of "\r\n\r\n" matched so far, carried across reads */
    char buf[65536];
} conn_t;

typedef struct {
    uv_write_t req;
    uv_buf_t b;
} wreq_t;

static void on_close(uv_handle_t *h)
{
    free(h->data);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    conn_t *c = h->data;
    (void)hint;
    b->base = c->buf;
    b->len = sizeof(c->buf);
}

static void on_write(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    uv_handle_t *h = (uv_handle_t *)req->handle;
    free(w->b.base);
    free(w);
    if (status < 0 && !uv_is_closing(h)) {
        uv_close(h, on_close);
    }
}

static void reply(conn_t *c, size_t n)
{
    static char *many;
    static size_t many_n;
    uv_buf_t b;
    int rc;

    if (n > many_n) {
        char *p = realloc(many, n * RESP_LEN);
        if (p == NULL) {
            abort();
        }
        for (size_t i = many_n; i < n; i++) {
            memcpy(p + i * RESP_LEN, resp, RESP_LEN);
        }
        many = p;
        many_n = n;
    }
    b = uv_buf_init(many, (unsigned)(n * RESP_LEN));
    rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (rc == (int)b.len) {
        return;
    }
    if (rc < 0 && rc != UV_EAGAIN) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    if (rc < 0) {
        rc = 0;
    }
    wreq_t *w = malloc(sizeof(*w));
    if (w == NULL) {
        abort();
    }
    w->b.len = b.len - (size_t)rc;
    w->b.base = malloc(w->b.len);
    if (w->b.base == NULL) {
        abort();
    }
    memcpy(w->b.base, b.base + rc, w->b.len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->b, 1, on_write) != 0) {
        free(w->b.base);
        free(w);
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    conn_t *c = s->data;
    size_t heads = 0;
    static const char end[] = "\r\n\r\n";

    if (nread < 0) {
        if (!uv_is_closing((uv_handle_t *)s)) {
            uv_close((uv_handle_t *)s, on_close);
        }
        return;
    }
    for (ssize_t i = 0; i < nread; i++) {
        char ch = b->base[i];
        if (ch == end[c->state]) {
            if (++c->state == 4) {
                heads++;
                c->state = 0;
            }
        } else {
            c->state = ch == '\r' ? 1 : 0;
        }
    }
    if (heads > 0) {
        reply(c, heads);
    }
}

static unsigned long long accepts;

static void on_usr1(uv_signal_t *h, int sig)
{
    (void)h;
    (void)sig;
    fprintf(stderr, "accepts %llu\n", accepts);
    fflush(stderr);
}

static void on_conn(uv_stream_t *server, int status)
{
    conn_t *c;

    if (status < 0) {
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        abort();
    }
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    accepts++;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in sa;
    int rc;

    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s PORT [FILE]\n", argv[0]);
        return 2;
    }
    if (argc == 3) {
        load_body(argv[2]);
    }
    static uv_signal_t usr1;
    uv_signal_init(loop, &usr1);
    uv_signal_start(&usr1, on_usr1, SIGUSR1);
    uv_unref((uv_handle_t *)&usr1);
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &sa);
    uv_tcp_init(loop, &server);
    if ((rc = uv_tcp_bind(&server, (const struct sockaddr *)&sa, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&server, 1024, on_conn)) != 0) {
        fprintf(stderr, "upstream: 127.0.0.1:%s: %s\n", argv[1], uv_strerror(rc));
        return 1;
    }
    return uv_run(loop, UV_RUN_DEFAULT);
}
