/* test_httpd: the metrics HTTP server on a real loop — keep-alive, errors,
 * slow clients, the connection cap, teardown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bot/httpd.h"
#include "tests/t.h"

#define TIMEOUT_MS 300 /* the server's slow-client timeout in this test */
#define BIG (1024 * 1024)

struct client {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t w;
    const char *name;
    char *send;
    size_t sendlen;
    char *resp;
    size_t rlen, rcap;
    int eof, closed;
    uint64_t t0, t_eof; /* ms */
};

static uv_loop_t loop;
static int port, pending;

static uint64_t
now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void
on_big(void *arg, struct httpd_response *r)
{
    (void)arg;
    r->body = malloc(BIG);
    memset(r->body, 'b', BIG);
    r->len = BIG;
    r->status = 200;
}

static void
on_hello(void *arg, struct httpd_response *r)
{
    (void)arg;
    r->body = strdup("hello\n");
    r->len = 6;
    r->status = 200;
}

static void
client_closed(uv_handle_t *h)
{
    struct client *c = h->data;

    c->closed = 1;
    pending--;
}

static void
client_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    struct client *c = h->data;

    (void)sz;
    if (c->rcap - c->rlen < 65536) {
        c->rcap = c->rcap * 2 + 65536;
        c->resp = realloc(c->resp, c->rcap + 1);
    }
    *b = uv_buf_init(c->resp + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void
client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct client *c = s->data;

    (void)b;
    if (n > 0) {
        c->rlen += (size_t)n;
        c->resp[c->rlen] = '\0';
        return;
    }
    if (n < 0) {
        c->eof = 1;
        c->t_eof = now_ms();
        uv_close((uv_handle_t *)&c->tcp, client_closed);
    }
}

static void
client_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status;
}

static void
client_connected(uv_connect_t *req, int status)
{
    struct client *c = req->data;
    uv_buf_t b;

    if (status < 0) {
        fprintf(stderr, "%s: connect: %s\n", c->name, uv_strerror(status));
        uv_close((uv_handle_t *)&c->tcp, client_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read);
    if (c->sendlen > 0) {
        b = uv_buf_init(c->send, (unsigned)c->sendlen);
        uv_write(&c->w, (uv_stream_t *)&c->tcp, &b, 1, client_written);
    }
}

static void
client_start(struct client *c, const char *name, const char *data, size_t len)
{
    struct sockaddr_in a;

    memset(c, 0, sizeof(*c));
    c->name = name;
    c->send = malloc(len + 1);
    memcpy(c->send, data, len);
    c->sendlen = len;
    c->t0 = now_ms();
    uv_ip4_addr("127.0.0.1", port, &a);
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c->conn.data = c;
    pending++;
    uv_tcp_connect(&c->conn, &c->tcp, (struct sockaddr *)&a, client_connected);
}

static void
client_release(struct client *c)
{
    free(c->send);
    free(c->resp);
}

static void
on_watchdog(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "watchdog: %d clients still open\n", pending);
    uv_stop(&loop);
}

/* Runs the loop until every client has seen EOF, at most 10 s. */
static void
run_clients(void)
{
    uv_timer_t wd;

    uv_timer_init(&loop, &wd);
    uv_timer_start(&wd, on_watchdog, 10000, 0);
    while (pending > 0 && uv_is_active((uv_handle_t *)&wd))
        uv_run(&loop, UV_RUN_ONCE);
    T_EQ_INT(pending, 0);
    uv_close((uv_handle_t *)&wd, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static int
count(const char *hay, const char *needle)
{
    int n = 0;

    if (hay == NULL)
        return 0;
    while ((hay = strstr(hay, needle)) != NULL) {
        n++;
        hay++;
    }
    return n;
}

static void
test_requests(void)
{
    static char huge[HTTPD_HEAD_MAX + 2000];
    struct client c[9];
    size_t n, i;

    client_start(&c[0], "close", "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n",
                 39);
    {
        static const char p[] = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
                                "HEAD /x HTTP/1.1\r\n\r\n"
                                "GET /nope?q=1 HTTP/1.1\r\n\r\n"
                                "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n";
        client_start(&c[1], "pipelined", p, sizeof(p) - 1);
    }
    client_start(&c[2], "post",
                 "POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 41);
    n = (size_t)snprintf(huge, sizeof(huge), "GET /x HTTP/1.1\r\n");
    while (n < HTTPD_HEAD_MAX + 500)
        n += (size_t)snprintf(huge + n, sizeof(huge) - n, "X-Pad: %0500d\r\n",
                              0);
    client_start(&c[3], "431", huge, n);
    client_start(&c[4], "slow", "GET /x HTTP/1.1\r\nHost:", 22);
    client_start(&c[5], "idle", "", 0);
    client_start(&c[6], "big", "GET /big HTTP/1.0\r\n\r\n", 21);
    client_start(&c[7], "garbage", "\x16\x03\x01\x02\x00\x01\r\n\r\n", 10);
    client_start(&c[8], "http2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    run_clients();

    T_CONTAINS(c[0].resp, "HTTP/1.1 200 OK\r\n");
    T_CONTAINS(c[0].resp, "Connection: close\r\n");
    T_CONTAINS(c[0].resp, "Content-Length: 6\r\n");
    T_CONTAINS(c[0].resp, "\r\n\r\nhello\n");
    T_OK(c[0].eof);

    T_EQ_INT(count(c[1].resp, "HTTP/1.1 "), 4);
    T_EQ_INT(count(c[1].resp, "hello\n"), 2); /* not for HEAD */
    T_CONTAINS(c[1].resp, "HTTP/1.1 404 Not Found\r\n");
    T_CONTAINS(c[1].resp, "Connection: keep-alive\r\n");
    T_OK(c[1].eof && c[1].t_eof - c[1].t0 < TIMEOUT_MS);

    T_CONTAINS(c[2].resp, "HTTP/1.1 405 Method Not Allowed\r\n");
    T_CONTAINS(c[2].resp, "Allow: GET, HEAD\r\n");
    T_CONTAINS(c[2].resp, "Connection: close\r\n");

    T_CONTAINS(c[3].resp, "HTTP/1.1 431 Request Header Fields Too Large\r\n");
    T_EQ_INT(count(c[3].resp, "HTTP/1.1 "), 1);

    T_CONTAINS(c[4].resp, "HTTP/1.1 408 Request Timeout\r\n");
    T_OKF(c[4].t_eof - c[4].t0 >= TIMEOUT_MS - 20, "slow closed after %llu ms",
          (unsigned long long)(c[4].t_eof - c[4].t0));

    T_EQ_INT(c[5].rlen, 0); /* idle: closed without a word */
    T_OKF(c[5].t_eof - c[5].t0 >= TIMEOUT_MS - 20 &&
              c[5].t_eof - c[5].t0 < 5000,
          "idle closed after %llu ms",
          (unsigned long long)(c[5].t_eof - c[5].t0));

    T_CONTAINS(c[6].resp, "Content-Length: 1048576\r\n");
    T_CONTAINS(c[6].resp, "Connection: close\r\n"); /* HTTP/1.0 */
    {
        const char *body = c[6].resp ? strstr(c[6].resp, "\r\n\r\n") : NULL;

        T_OK(body != NULL &&
             c[6].rlen - (size_t)(body + 4 - c[6].resp) == (size_t)BIG);
    }
    T_CONTAINS(c[7].resp, "HTTP/1.1 400 Bad Request\r\n");
    T_CONTAINS(c[8].resp, " 505 HTTP Version Not Supported\r\n");
    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        client_release(&c[i]);
}

/* Past HTTPD_CONNS_MAX, new connections are closed at once. */
static void
test_cap(void)
{
    enum { N = HTTPD_CONNS_MAX + 6 };
    static struct client c[N];
    int i, fast = 0;

    for (i = 0; i < N; i++)
        client_start(&c[i], "cap", "", 0);
    run_clients();
    for (i = 0; i < N; i++) {
        if (c[i].t_eof - c[i].t0 < TIMEOUT_MS / 2)
            fast++;
        if (getenv("V"))
            printf("%d: %llu ms\n", i,
                   (unsigned long long)(c[i].t_eof - c[i].t0));
        client_release(&c[i]);
    }
    T_OKF(fast >= N - HTTPD_CONNS_MAX, "%d closed at once", fast);
    T_OKF(fast <= N - HTTPD_CONNS_MAX + 2, "%d closed at once", fast);
}

/* httpd_free with a connection mid-request: everything closes. */
static void
test_free(struct httpd *h)
{
    struct client c;
    int i;

    client_start(&c, "free", "GET /x HTTP/1.1\r\n", 17);
    for (i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    httpd_free(h);
    run_clients();
    T_OK(c.eof);
    client_release(&c);
}

int
main(void)
{
    struct httpd *h, *h2;
    char err[256];

    uv_loop_init(&loop);
    h = httpd_new(&loop, "127.0.0.1", 0, err, sizeof(err));
    T_OKF(h != NULL, "%s", err);
    if (h == NULL)
        return t_done();
    port = httpd_port(h);
    T_OK(port > 0);
    httpd_set_timeout(h, TIMEOUT_MS);
    T_EQ_INT(httpd_route(h, "/x", on_hello, NULL), 0);
    T_EQ_INT(httpd_route(h, "/big", on_big, NULL), 0);

    /* the same port twice: a clear error */
    h2 = httpd_new(&loop, "127.0.0.1", port, err, sizeof(err));
    T_OK(h2 == NULL);
    T_CONTAINS(err, "address already in use");
    h2 = httpd_new(&loop, "no-such-host.invalid", 1, err, sizeof(err));
    T_OK(h2 == NULL);
    T_CONTAINS(err, "cannot resolve");
    /* IPv6 loopback, where the kernel has it */
    h2 = httpd_new(&loop, "::1", 0, err, sizeof(err));
    if (h2 != NULL)
        httpd_free(h2);
    else
        printf("no IPv6 loopback here: %s\n", err);

    test_requests();
    test_cap();
    test_free(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    return t_done();
}
