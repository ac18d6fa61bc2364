/* fake_client: a tiny raw HTTP/1.1 client on a uv loop, for testing the fakes.
 */
#include "tests/fakes/fake_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct fake_call {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    uv_timer_t timer;
    char *req;
    size_t req_len;
    char *buf;
    size_t len, cap;
    int64_t start;
    int closing, handles;
    struct fake_call_result res;
    void (*done)(const struct fake_call_result *r, void *arg);
    void *arg;
};

static void
call_handle_closed(uv_handle_t *h)
{
    struct fake_call *c = h->data;

    if (--c->handles == 0) {
        free(c->req);
        free(c->buf);
        free(c);
    }
}

static void
call_finish(struct fake_call *c, int error, int timed_out)
{
    char *sp, *hdr_end;

    if (c->closing)
        return;
    c->closing = 1;
    c->res.error = error;
    c->res.timed_out = timed_out;
    c->res.content_length = -1;
    c->res.elapsed_ms = (int64_t)(uv_hrtime() / 1000000u) - c->start;
    c->res.raw = c->buf ? c->buf : "";
    c->res.raw_len = c->len;
    if (c->len >= 12 && strncmp(c->buf, "HTTP/1.", 7) == 0 &&
        (sp = strchr(c->buf, ' ')) != NULL)
        c->res.status = atoi(sp + 1);
    if (c->buf && (hdr_end = strstr(c->buf, "\r\n\r\n")) != NULL) {
        char v[32];

        c->res.body = hdr_end + 4;
        c->res.body_len = c->len - (size_t)(hdr_end + 4 - c->buf);
        if (fake_call_header(&c->res, "content-length", v, sizeof(v)))
            c->res.content_length = atol(v);
    }
    c->done(&c->res, c->arg);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, call_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, call_handle_closed);
}

const char *
fake_call_header(const struct fake_call_result *r, const char *name, char *buf,
                 size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = r->raw, *end;

    if (p == NULL)
        return NULL;
    end = r->body ? r->body : r->raw + r->raw_len;
    while (p < end && (p = strstr(p, "\r\n")) != NULL && p < end) {
        p += 2;
        if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1, *e = strstr(v, "\r\n");
            size_t n;

            while (*v == ' ')
                v++;
            n = e ? (size_t)(e - v) : strlen(v);
            if (n >= cap)
                n = cap - 1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return buf;
        }
    }
    return NULL;
}

static void
call_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct fake_call *c = h->data;

    (void)hint;
    if (c->cap - c->len < 65536 + 1 && c->cap < FAKE_CALL_MAX) {
        size_t cap = c->cap ? c->cap * 2 : 131072;
        char *nb = realloc(c->buf, cap);

        if (nb) {
            c->buf = nb;
            c->cap = cap;
        }
    }
    if (c->buf == NULL || c->cap - c->len < 2) {
        b->base = NULL;
        b->len = 0;
        return;
    }
    b->base = c->buf + c->len;
    b->len = c->cap - c->len - 1;
}

static void
call_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct fake_call *c = s->data;

    (void)b;
    if (n > 0) {
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
        return;
    }
    if (n == UV_EOF || n == UV_ECONNRESET)
        call_finish(c, 0, 0);
    else if (n < 0)
        call_finish(c, (int)n, 0);
}

static void
call_written(uv_write_t *w, int status)
{
    struct fake_call *c = w->data;

    if (status < 0 && status != UV_EPIPE && status != UV_ECONNRESET)
        call_finish(c, status, 0);
}

static void
call_connected(uv_connect_t *req, int status)
{
    struct fake_call *c = req->data;
    uv_buf_t b = uv_buf_init(c->req, (unsigned)c->req_len);

    if (status < 0) {
        call_finish(c, status, 0);
        return;
    }
    c->wr.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, call_alloc, call_read);
    uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, call_written);
}

static void
call_timeout(uv_timer_t *t)
{
    call_finish(t->data, 0, 1);
}

int
fake_call(uv_loop_t *loop, int port, const char *method, const char *path,
          const char *headers, const char *body, size_t body_len,
          int timeout_ms,
          void (*done)(const struct fake_call_result *r, void *arg), void *arg)
{
    struct fake_call *c;
    struct sockaddr_in sa;
    int n;
    size_t cap;

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    cap = strlen(method) + strlen(path) + (headers ? strlen(headers) : 0) +
          body_len + 256;
    c->req = malloc(cap);
    if (c->req == NULL) {
        free(c);
        return -1;
    }
    n = snprintf(c->req, cap,
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 "Connection: close\r\n%s",
                 method, path, port, headers ? headers : "");
    if (body)
        n += snprintf(c->req + n, cap - (size_t)n, "Content-Length: %zu\r\n",
                      body_len);
    n += snprintf(c->req + n, cap - (size_t)n, "\r\n");
    if (body && body_len)
        memcpy(c->req + n, body, body_len);
    c->req_len = (size_t)n + (body ? body_len : 0);
    c->done = done;
    c->arg = arg;
    c->start = (int64_t)(uv_hrtime() / 1000000u);
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    c->handles = 2;
    c->tcp.data = c->timer.data = c->conn.data = c;
    uv_timer_start(&c->timer, call_timeout, (uint64_t)timeout_ms, 0);
    uv_ip4_addr("127.0.0.1", port, &sa);
    n = uv_tcp_connect(&c->conn, &c->tcp, (const struct sockaddr *)&sa,
                       call_connected);
    if (n < 0)
        call_finish(c, n, 0);
    return 0;
}
