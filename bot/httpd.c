/* httpd: a minimal HTTP/1.1 server on the loop, for /metrics and /healthz. */
#include "bot/httpd.h"

#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

#define HTTPD_ROUTES_MAX 8
#define HTTPD_LINGER_MS 2000 /* reading out a refused client before close */
#define HTTPD_BACKLOG 128

struct httpd_route {
    char path[64];
    void (*fn)(void *arg, struct httpd_response *r);
    void *arg;
};

enum conn_state {
    CONN_READING = 0, /* waiting for (the rest of) a request head */
    CONN_WRITING,     /* a reply is being written; reading paused */
    CONN_LINGER,      /* reply sent, FIN sent: discard input until EOF */
    CONN_CLOSING,
};

struct httpd_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    struct httpd *h;
    struct httpd_conn *prev, *next;
    enum conn_state state;
    int close_after; /* the reply being written ends the connection */
    int nhandles;    /* handles not yet closed */
    char *out;
    size_t len;
    char buf[HTTPD_HEAD_MAX];
};

struct httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct httpd_conn *conns;
    size_t nconns; /* in the list: served now */
    size_t nalive; /* not yet freed (closing ones included) */
    int freeing;
    int listener_open;
    int cap_warned; /* once per flood, not once per connection */
    int port;
    uint64_t timeout_ms;
    struct httpd_route routes[HTTPD_ROUTES_MAX];
    size_t nroutes;
};

const char *
httpd_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

/* --- the parser (pure) --- */

static int
is_tchar(int c)
{
    return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Does the comma separated header value contain token (any case)? */
static int
has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token), i = 0;

    while (i < n) {
        size_t s, e;

        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        s = i;
        while (i < n && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
            return 1;
    }
    return 0;
}

static int
parse_fail(struct httpd_request *req, int status)
{
    req->status = status;
    return -1;
}

static int
parse_request_line(const char *p, size_t n, struct httpd_request *req,
                   int *minor)
{
    const char *sp1, *sp2, *target, *q;
    size_t ml, tl;

    sp1 = memchr(p, ' ', n);
    if (sp1 == NULL)
        return parse_fail(req, 400);
    ml = (size_t)(sp1 - p);
    if (ml == 0 || ml >= sizeof(req->method))
        return parse_fail(req, ml == 0 ? 400 : 405);
    for (q = p; q < sp1; q++)
        if (!is_tchar((unsigned char)*q))
            return parse_fail(req, 400);
    memcpy(req->method, p, ml);
    req->method[ml] = '\0';
    target = sp1 + 1;
    sp2 = memchr(target, ' ', n - (size_t)(target - p));
    if (sp2 == NULL)
        return parse_fail(req, 400);
    tl = (size_t)(sp2 - target);
    if (n - (size_t)(sp2 + 1 - p) != 8 || memcmp(sp2 + 1, "HTTP/", 5) != 0 ||
        !isdigit((unsigned char)sp2[6]) || sp2[7] != '.' ||
        !isdigit((unsigned char)sp2[8]))
        return parse_fail(req, 400);
    if (sp2[6] != '1')
        return parse_fail(req, 505);
    *minor = sp2[8] - '0';
    if (tl == 0 || target[0] != '/')
        return parse_fail(req, 400);
    for (q = target; q < sp2; q++)
        if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f)
            return parse_fail(req, 400);
    q = memchr(target, '?', tl);
    if (q != NULL)
        tl = (size_t)(q - target);
    memcpy(req->path, target, tl);
    req->path[tl] = '\0';
    if (strcmp(req->method, "GET") == 0)
        req->head = 0;
    else if (strcmp(req->method, "HEAD") == 0)
        req->head = 1;
    else
        return parse_fail(req, 405);
    return 0;
}

int
httpd_parse(const char *buf, size_t len, struct httpd_request *req)
{
    const char *p = buf, *end = buf + len, *nl;
    int minor = 1, conn_close = 0, conn_keep = 0, nheaders = 0;
    size_t n;

    memset(req, 0, sizeof(*req));
    /* tolerate the empty lines some clients send between requests */
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) {
        if ((size_t)(end - p) >= HTTPD_LINE_MAX)
            return parse_fail(req, 414);
        if (len >= HTTPD_HEAD_MAX)
            return parse_fail(req, 431);
        return 0;
    }
    n = (size_t)(nl - p);
    if (n >= HTTPD_LINE_MAX)
        return parse_fail(req, 414);
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (parse_request_line(p, n, req, &minor) == -1)
        return -1;
    p = nl + 1;
    for (;;) {
        const char *colon, *v;
        size_t vl;

        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
            if (len >= HTTPD_HEAD_MAX)
                return parse_fail(req, 431);
            return 0;
        }
        n = (size_t)(nl - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break; /* the blank line ending the head */
        if (++nheaders > HTTPD_HEADERS_MAX)
            return parse_fail(req, 431);
        colon = memchr(p, ':', n);
        if (colon == NULL || colon == p)
            return parse_fail(req, 400);
        for (v = p; v < colon; v++)
            if (!is_tchar((unsigned char)*v))
                return parse_fail(req, 400); /* also "Name :" */
        v = colon + 1;
        vl = n - (size_t)(v - p);
        if ((colon - p == 10 && strncasecmp(p, "Connection", 10) == 0)) {
            conn_close |= has_token(v, vl, "close");
            conn_keep |= has_token(v, vl, "keep-alive");
        } else if (colon - p == 17 &&
                   strncasecmp(p, "Transfer-Encoding", 17) == 0) {
            return parse_fail(req, 400); /* no request bodies here */
        } else if (colon - p == 14 &&
                   strncasecmp(p, "Content-Length", 14) == 0) {
            while (vl > 0 && (*v == ' ' || *v == '\t'))
                v++, vl--;
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl != 1 || *v != '0')
                return parse_fail(req, 400);
        }
        p = nl + 1;
    }
    req->keep_alive = minor >= 1 ? !conn_close : conn_keep && !conn_close;
    return (int)(nl + 1 - buf);
}

/* --- /healthz (pure) --- */

struct out {
    char *buf;
    size_t len, pos;
};

static void
out_str(struct out *o, const char *s)
{
    size_t n = strlen(s);

    if (o->pos < o->len) {
        size_t room = o->len - o->pos - 1;

        memcpy(o->buf + o->pos, s, n < room ? n : room);
    }
    o->pos += n;
}

/* A JSON string of a platform name: anything but [a-z0-9_-] is dropped. */
static void
out_name(struct out *o, const char *s)
{
    char one[2] = {0, 0};

    out_str(o, "\"");
    for (; *s != '\0'; s++) {
        if (isalnum((unsigned char)*s) || *s == '_' || *s == '-') {
            one[0] = *s;
            out_str(o, one);
        }
    }
    out_str(o, "\"");
}

size_t
httpd_health_json(int db_ok, const struct httpd_health_item *items, size_t n,
                  char *buf, size_t len, int *status)
{
    struct out o = {buf, len, 0};
    int ok = db_ok;
    size_t i;

    for (i = 0; i < n; i++)
        ok = ok && items[i].up;
    out_str(&o, ok ? "{\"status\":\"ok\"" : "{\"status\":\"fail\"");
    out_str(&o, db_ok ? ",\"database\":\"ok\"" : ",\"database\":\"fail\"");
    out_str(&o, ",\"connectors\":{");
    for (i = 0; i < n; i++) {
        if (i > 0)
            out_str(&o, ",");
        out_name(&o, items[i].name);
        out_str(&o, items[i].up ? ":\"up\"" : ":\"down\"");
    }
    out_str(&o, "}}\n");
    if (len > 0)
        buf[o.pos < len ? o.pos : len - 1] = '\0';
    *status = ok ? 200 : 503;
    return o.pos;
}

/* --- the server (glue) --- */

static void conn_process(struct httpd_conn *c);
static void conn_reply(struct httpd_conn *c, int head, struct httpd_response *r,
                       int close);

static void
httpd_maybe_done(struct httpd *h)
{
    if (h->freeing && !h->listener_open && h->nalive == 0)
        free(h);
}

static void
conn_on_close(uv_handle_t *hd)
{
    struct httpd_conn *c = hd->data;
    struct httpd *h = c->h;

    if (--c->nhandles > 0)
        return;
    free(c->out);
    free(c);
    h->nalive--;
    httpd_maybe_done(h);
}

static void
conn_close(struct httpd_conn *c)
{
    struct httpd *h = c->h;

    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    h->nconns--;
    /* conn_on_close frees c only after both callbacks; unlinked first so
     * httpd_maybe_done() sees the list empty as soon as it is */
    c->prev = c->next = NULL;
    c->nhandles = 2;
    uv_close((uv_handle_t *)&c->timer, conn_on_close);
    uv_close((uv_handle_t *)&c->tcp, conn_on_close);
}

static void
conn_on_timeout(uv_timer_t *t)
{
    struct httpd_conn *c = t->data;
    size_t i = 0;

    if (c->state == CONN_READING) {
        /* only blank lines so far count as idle */
        while (i < c->len && (c->buf[i] == '\r' || c->buf[i] == '\n'))
            i++;
        if (i < c->len) {
            struct httpd_response r = {408, NULL, NULL, 0};

            conn_reply(c, 0, &r, 1);
            return;
        }
    }
    conn_close(c);
}

static void
conn_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *b)
{
    struct httpd_conn *c = hd->data;
    static char sink[4096]; /* CONN_LINGER: input is read and dropped */

    (void)suggested;
    if (c->state == CONN_LINGER) {
        *b = uv_buf_init(sink, sizeof(sink));
        return;
    }
    *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void
conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct httpd_conn *c = s->data;

    (void)b;
    if (nread < 0) {
        conn_close(c); /* EOF or error: nothing more to say */
        return;
    }
    if (c->state != CONN_READING)
        return; /* CONN_LINGER: discarded */
    c->len += (size_t)nread;
    conn_process(c);
}

static void
conn_on_shutdown(uv_shutdown_t *r, int status)
{
    struct httpd_conn *c = r->data;

    /* on success, EOF from the client or the linger timer closes */
    if (status < 0 && c->state != CONN_CLOSING)
        conn_close(c);
}

static void
conn_on_write(uv_write_t *w, int status)
{
    struct httpd_conn *c = w->data;

    free(c->out);
    c->out = NULL;
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->close_after) {
        /*
         * Lingering close: FIN after the reply, then read out whatever the
         * client still sends, so a close() with unread input does not
         * turn into a RST that destroys the reply in flight.
         */
        c->state = CONN_LINGER;
        c->sreq.data = c;
        if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, conn_on_shutdown) !=
            0) {
            conn_close(c);
            return;
        }
        uv_timer_start(&c->timer, conn_on_timeout, HTTPD_LINGER_MS, 0);
        uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read);
        return;
    }
    c->state = CONN_READING;
    uv_timer_start(&c->timer, conn_on_timeout, c->h->timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read) != 0) {
        conn_close(c);
        return;
    }
    conn_process(c); /* a pipelined request may be buffered already */
}

/* Takes r->body.  head: HEAD request (no body).  close: end afterwards. */
static void
conn_reply(struct httpd_conn *c, int head, struct httpd_response *r, int close)
{
    char hdr[512];
    const char *ct =
        r->content_type ? r->content_type : "text/plain; charset=utf-8";
    const char *reason;
    int status = r->status ? r->status : 500, n;
    uv_buf_t b;

    reason = httpd_reason(status);
    if (r->body == NULL && status != 200) {
        /* errors carry their reason as the body */
        char msg[64];

        snprintf(msg, sizeof(msg), "%d %s\n", status, reason);
        r->body = strdup(msg);
        r->len = r->body ? strlen(r->body) : 0;
    }
    n = snprintf(hdr, sizeof(hdr),
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Type: %s\r\n"
                 "Content-Length: %zu\r\n"
                 "Cache-Control: no-store\r\n"
                 "%s"
                 "Connection: %s\r\n\r\n",
                 status, reason, ct, r->len,
                 status == 405 ? "Allow: GET, HEAD\r\n" : "",
                 close ? "close" : "keep-alive");
    c->out = malloc((size_t)n + (head ? 0 : r->len));
    if (c->out == NULL) {
        free(r->body);
        conn_close(c);
        return;
    }
    memcpy(c->out, hdr, (size_t)n);
    if (!head && r->len > 0)
        memcpy(c->out + n, r->body, r->len);
    b = uv_buf_init(c->out, (unsigned)((size_t)n + (head ? 0 : r->len)));
    free(r->body);
    r->body = NULL;
    c->close_after = close;
    c->state = CONN_WRITING;
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* a client that does not read its reply is a slow client too */
    uv_timer_start(&c->timer, conn_on_timeout, c->h->timeout_ms, 0);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_on_write) != 0) {
        free(c->out);
        c->out = NULL;
        conn_close(c);
    }
}

static void
conn_process(struct httpd_conn *c)
{
    struct httpd *h = c->h;
    struct httpd_request req;
    struct httpd_response r;
    size_t i;
    int used;

    if (c->state != CONN_READING || c->len == 0)
        return;
    used = httpd_parse(c->buf, c->len, &req);
    if (used == 0)
        return; /* wait for more; the timer bounds the wait */
    memset(&r, 0, sizeof(r));
    if (used < 0) {
        r.status = req.status;
        log_debug("httpd: refused status=%d", req.status);
        conn_reply(c, 0, &r, 1);
        return;
    }
    memmove(c->buf, c->buf + used, c->len - (size_t)used);
    c->len -= (size_t)used;
    for (i = 0; i < h->nroutes; i++)
        if (strcmp(h->routes[i].path, req.path) == 0)
            break;
    if (i == h->nroutes) {
        r.status = 404;
    } else {
        h->routes[i].fn(h->routes[i].arg, &r);
        if (r.status == 0)
            r.status = 500;
    }
    conn_reply(c, req.head, &r, !req.keep_alive);
}

static void
httpd_on_connection(uv_stream_t *server, int status)
{
    struct httpd *h = server->data;
    struct httpd_conn *c;

    if (status < 0) {
        log_warnx("httpd: accept failed: %s", uv_strerror(status));
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->h = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->prev = NULL;
    c->next = h->conns;
    if (h->conns != NULL)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    h->nalive++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (h->nconns > HTTPD_CONNS_MAX) {
        if (!h->cap_warned)
            log_warnx("httpd: over %d connections, closing new ones",
                      HTTPD_CONNS_MAX);
        h->cap_warned = 1;
        conn_close(c);
        return;
    }
    if (h->nconns < HTTPD_CONNS_MAX / 2)
        h->cap_warned = 0;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->timer, conn_on_timeout, h->timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read) != 0)
        conn_close(c);
}

static int
httpd_resolve(const char *host, int port, struct sockaddr_storage *ss)
{
    struct addrinfo hints, *res = NULL;
    int rc = -1;

    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        goto out;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    rc = 0;
out:
    if (res != NULL)
        freeaddrinfo(res);
    return rc;
}

static void
httpd_on_listener_close(uv_handle_t *hd)
{
    struct httpd *h = hd->data;

    h->listener_open = 0;
    httpd_maybe_done(h);
}

struct httpd *
httpd_new(uv_loop_t *loop, const char *host, int port, char *err, size_t errlen)
{
    struct httpd *h = calloc(1, sizeof(*h));
    struct sockaddr_storage ss;
    struct sockaddr_storage bound;
    int r, blen = (int)sizeof(bound);
    const char *fmt = strchr(host, ':') ? "[%s]:%d: %s" : "%s:%d: %s";

    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->loop = loop;
    h->timeout_ms = HTTPD_TIMEOUT_MS;
    memset(&ss, 0, sizeof(ss));
    if (httpd_resolve(host, port, &ss) == -1) {
        snprintf(err, errlen, fmt, host, port, "cannot resolve the host");
        free(h);
        return NULL;
    }
    uv_tcp_init(loop, &h->listener);
    h->listener.data = h;
    h->listener_open = 1;
    r = uv_tcp_bind(&h->listener, (struct sockaddr *)&ss,
                    ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&h->listener, HTTPD_BACKLOG,
                      httpd_on_connection);
    if (r == 0)
        r = uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &blen);
    if (r != 0) {
        snprintf(err, errlen, fmt, host, port, uv_strerror(r));
        h->freeing = 1;
        uv_close((uv_handle_t *)&h->listener, httpd_on_listener_close);
        return NULL;
    }
    h->port = ntohs(bound.ss_family == AF_INET
                        ? ((struct sockaddr_in *)&bound)->sin_port
                        : ((struct sockaddr_in6 *)&bound)->sin6_port);
    return h;
}

void
httpd_free(struct httpd *h)
{
    if (h == NULL || h->freeing)
        return;
    h->freeing = 1;
    while (h->conns != NULL)
        conn_close(h->conns);
    uv_close((uv_handle_t *)&h->listener, httpd_on_listener_close);
}

int
httpd_route(struct httpd *h, const char *path,
            void (*fn)(void *arg, struct httpd_response *r), void *arg)
{
    struct httpd_route *rt;

    if (h->nroutes >= HTTPD_ROUTES_MAX ||
        strlen(path) >= sizeof(h->routes[0].path))
        return -1;
    rt = &h->routes[h->nroutes++];
    snprintf(rt->path, sizeof(rt->path), "%s", path);
    rt->fn = fn;
    rt->arg = arg;
    return 0;
}

int
httpd_port(const struct httpd *h)
{
    return h->port;
}

void
httpd_set_timeout(struct httpd *h, uint64_t ms)
{
    h->timeout_ms = ms;
}
