/* ws: websocket client connections (libwebsockets) on the daemon's libuv loop.
 */
#include "core/ws.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"

#define WS_URL_MAX 2048
#define WS_TEARDOWN_TICKS 5000 /* 1 ms each: give up waiting for lws */
#define WS_PLUGIN LWS_INSTALL_LIBDIR "/libwebsockets-evlib_uv.so"

enum ws_state {
    WS_RESOLVING, /* uv_getaddrinfo running */
    WS_CONNECTING,
    WS_OPEN,
    WS_DONE, /* `closed` scheduled or delivered */
};

static const char *const ws_state_names[] = {"resolving", "connecting", "open",
                                             "done"};

struct ws_frame {
    struct ws_frame *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
};

struct ws_conn {
    struct ws_ctx *x;
    struct ws_conn *prev, *next;
    struct ws_conn_ops ops;
    void *arg;
    struct lws *wsi; /* NULL when lws has no connection for us */
    enum ws_state state;
    int tls, port;
    char host[256];
    char path[WS_URL_MAX];
    uv_getaddrinfo_t gai;
    int gai_active;
    /* delivers `closed` on a fresh loop turn; while open, the ping tick */
    uv_timer_t timer;
    struct ws_frame *qhead, *qtail;
    size_t qlen;
    char *rx;
    size_t rx_len;
    size_t frame_max, msg_max;
    int close_code; /* local (ws_close, 1009) or the peer's */
    int close_sent;
    char close_reason[124];
    int64_t ping_interval, ping_timeout; /* ms, 0 = no keepalive */
    uint64_t ping_sent, last_rx;         /* uv_now() of the loop */
    int ping_due, ping_outstanding;
};

struct ws_ctx {
    uv_loop_t *loop;
    struct lws_context *lws; /* lws writes NULL here once destroyed */
    struct ws_conn *conns;
    int freeing;
    uv_timer_t reaper;
    int reaper_ticks;
};

/* ---- connection bookkeeping ------------------------------------------- */

static void
conn_queue_clear(struct ws_conn *c)
{
    while (c->qhead) {
        struct ws_frame *f = c->qhead;
        c->qhead = f->next;
        free(f);
    }
    c->qtail = NULL;
    c->qlen = 0;
}

static void
conn_timer_closed(uv_handle_t *h)
{
    struct ws_conn *c = h->data;

    conn_queue_clear(c);
    free(c->rx);
    free(c);
}

static void
conn_unlink_free(struct ws_conn *c)
{
    struct ws_ctx *x = c->x;

    if (c->prev)
        c->prev->next = c->next;
    else
        x->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_timer_closed);
}

static void
conn_report(uv_timer_t *t)
{
    struct ws_conn *c = t->data;

    if (c->ops.closed && !c->x->freeing)
        c->ops.closed(c, c->close_code, c->close_reason, c->arg);
    conn_unlink_free(c);
}

/* The connection is over: detach from lws and report on the next turn. */
static void
conn_finish(struct ws_conn *c, int code, const char *reason)
{
    if (c->state == WS_DONE)
        return;
    log_info("ws: closed host=%s state=%s code=%d reason=\"%s\"", c->host,
             ws_state_names[c->state], code, reason);
    c->state = WS_DONE;
    if (c->wsi)
        lws_set_opaque_user_data(c->wsi, NULL);
    c->wsi = NULL;
    c->close_code = code;
    if (reason != c->close_reason)
        snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
    conn_queue_clear(c);
    uv_timer_start(&c->timer, conn_report, 0, 0);
}

/* ---- lws callback ----------------------------------------------------- */

static int
conn_receive(struct ws_conn *c, const char *in, size_t len)
{
    struct lws *wsi = c->wsi;

    c->last_rx = uv_now(c->x->loop);
    c->ping_outstanding = 0; /* any frame proves the peer alive */
    if (c->close_code)
        return 0; /* closing: discard the rest */
    if (c->rx_len + len > c->msg_max) {
        log_warnx("ws: message over the cap host=%s max=%zu", c->host,
                  c->msg_max);
        c->close_code = WS_CLOSE_TOO_BIG;
        snprintf(c->close_reason, sizeof(c->close_reason), "message too big");
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (len) {
        char *b = realloc(c->rx, c->rx_len + len + 1);

        if (b == NULL)
            return -1;
        c->rx = b;
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
        c->rx[c->rx_len] = '\0';
    }
    if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        size_t n = c->rx_len;

        c->rx_len = 0;
        if (c->ops.text)
            c->ops.text(c, c->rx ? c->rx : "", n, c->arg);
        /* the caller may have closed us inside text() */
        if (c->wsi == NULL)
            return -1;
    }
    return 0;
}

/*
 * lws 4.1 with libuv drops the close frame when a callback returns -1
 * after lws_close_reason() (its close path re-enters and kills the
 * socket), so callers write it with this instead.
 */
int
ws_write_close(struct lws *wsi, int code, const char *reason)
{
    unsigned char buf[LWS_PRE + 125];
    size_t rlen = strlen(reason);

    if (rlen > 123)
        rlen = 123;
    buf[LWS_PRE] = (unsigned char)(code >> 8);
    buf[LWS_PRE + 1] = (unsigned char)(code & 0xff);
    memcpy(buf + LWS_PRE + 2, reason, rlen);
    /* opcode 4 is lws's internal LWS_WRITE_CLOSE */
    if (lws_write(wsi, buf + LWS_PRE, 2 + rlen, (enum lws_write_protocol)4) <
        (int)(2 + rlen))
        return -1;
    return 0;
}

/*
 * Write the close frame ourselves (ws_write_close: lws 4.1 on libuv drops
 * the one lws_close_reason() would send).  The server's echo then ends
 * the connection; a timeout covers a peer that never echoes.
 */
static int
conn_send_close(struct ws_conn *c)
{
    c->close_sent = 1;
    if (ws_write_close(c->wsi, c->close_code, c->close_reason) != 0)
        return -1;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_ACK, 5);
    return 0;
}

static int
conn_writable(struct ws_conn *c)
{
    struct ws_frame *f;

    if (c->close_sent)
        return 0;
    if (c->close_code)
        return conn_send_close(c);
    if (c->ping_due) {
        unsigned char buf[LWS_PRE + 8];

        memcpy(buf + LWS_PRE, "parley", 6);
        c->ping_due = 0;
        if (lws_write(c->wsi, buf + LWS_PRE, 6, LWS_WRITE_PING) < 6) {
            log_warnx("ws: ping write failed host=%s", c->host);
            return -1;
        }
        if (c->qhead)
            lws_callback_on_writable(c->wsi);
        return 0;
    }
    f = c->qhead;
    if (f == NULL)
        return 0;
    if (lws_write(c->wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT) <
        (int)f->len) {
        log_warnx("ws: write failed host=%s", c->host);
        return -1;
    }
    c->qhead = f->next;
    if (c->qhead == NULL)
        c->qtail = NULL;
    c->qlen--;
    free(f);
    if (c->qhead)
        lws_callback_on_writable(c->wsi);
    return 0;
}

static int
conn_peer_close(struct ws_conn *c, const unsigned char *in, size_t len)
{
    if (c->close_sent)
        return -1; /* the echo of our close: done, report our code */
    if (c->close_code)
        return 0; /* ours is not out yet: lws echoes theirs, we report ours */
    if (len >= 2) {
        size_t rlen = len - 2;

        c->close_code = (in[0] << 8) | in[1];
        if (rlen >= sizeof(c->close_reason))
            rlen = sizeof(c->close_reason) - 1;
        memcpy(c->close_reason, in + 2, rlen);
        c->close_reason[rlen] = '\0';
    } else {
        c->close_code = 1005; /* RFC 6455: close frame without a code */
        snprintf(c->close_reason, sizeof(c->close_reason), "no status");
    }
    c->close_sent = 1; /* lws echoes it: nothing more from us */
    return 0;
}

/*
 * The keepalive tick (c->timer while open).  A ping is due every
 * interval; one unanswered for timeout (no pong, no frame at all) means
 * the peer or the path is dead: drop the socket without a close
 * handshake (it would wait for the same dead peer) and report 1006.
 */
static void
ping_tick(uv_timer_t *t)
{
    struct ws_conn *c = t->data;
    uint64_t now = uv_now(c->x->loop);
    struct lws *wsi = c->wsi;

    if (c->state != WS_OPEN || wsi == NULL || c->ping_interval <= 0)
        return;
    if (c->ping_outstanding &&
        now - c->ping_sent >= (uint64_t)c->ping_timeout) {
        log_warnx("ws: no pong host=%s timeout_ms=%" PRId64, c->host,
                  c->ping_timeout);
        conn_finish(c, WS_CLOSE_ABNORMAL, "ping timeout");
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        return;
    }
    if (!c->ping_outstanding &&
        now - c->last_rx >= (uint64_t)c->ping_interval &&
        now - c->ping_sent >= (uint64_t)c->ping_interval && !c->close_code) {
        c->ping_due = 1;
        c->ping_outstanding = 1;
        c->ping_sent = now;
        lws_callback_on_writable(wsi);
    }
}

static void
ping_arm(struct ws_conn *c)
{
    int64_t step;

    if (c->state != WS_OPEN)
        return;
    if (c->ping_interval <= 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    step = (c->ping_interval < c->ping_timeout ? c->ping_interval
                                               : c->ping_timeout) /
           4;
    if (step < 5)
        step = 5;
    c->last_rx = c->ping_sent = uv_now(c->x->loop);
    c->ping_outstanding = 0;
    uv_timer_start(&c->timer, ping_tick, (uint64_t)step, (uint64_t)step);
}

static int
ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
      size_t len)
{
    struct ws_conn *c = lws_get_opaque_user_data(wsi);

    if (c && c->state != WS_DONE)
        c->wsi = wsi;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            char why[160];

            snprintf(why, sizeof(why), "connect: %s",
                     in ? (const char *)in : "failed");
            if (c->close_code) /* ws_close() while connecting */
                conn_finish(c, c->close_code, c->close_reason);
            else
                conn_finish(c, WS_CLOSE_ABNORMAL, why);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (c == NULL)
            return -1;
        c->state = WS_OPEN;
        log_info("ws: open host=%s port=%d", c->host, c->port);
        if (c->close_code || c->qhead)
            lws_callback_on_writable(wsi);
        ping_arm(c);
        if (c->ops.open)
            c->ops.open(c, c->arg);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return c ? conn_receive(c, in, len) : -1;
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        if (c) {
            c->last_rx = uv_now(c->x->loop);
            c->ping_outstanding = 0;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return c ? conn_writable(c) : -1;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return c ? conn_peer_close(c, in, len) : 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c) {
            if (c->close_code)
                conn_finish(c, c->close_code, c->close_reason);
            else
                conn_finish(c, WS_CLOSE_ABNORMAL, "connection lost");
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c)
            conn_finish(c, c->close_code ? c->close_code : WS_CLOSE_ABNORMAL,
                        c->close_code ? c->close_reason : "connection lost");
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols ws_protocols[] = {
    {"parley-ws", ws_cb, 0, 16384, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- connecting ------------------------------------------------------- */

static void
conn_start_lws(struct ws_conn *c, const char *address)
{
    struct lws_client_connect_info i;
    struct lws *wsi;

    memset(&i, 0, sizeof(i));
    i.context = c->x->lws;
    i.address = address;
    i.port = c->port;
    i.path = c->path;
    i.host = c->host;
    i.origin = c->host;
    i.ssl_connection = c->tls ? LCCSCF_USE_SSL : 0;
    i.protocol = NULL; /* no Sec-WebSocket-Protocol */
    i.local_protocol_name = "parley-ws";
    i.ietf_version_or_minus_one = -1;
    i.opaque_user_data = c;
    c->state = WS_CONNECTING;
    log_debug("ws: connect host=%s address=%s port=%d tls=%d", c->host, address,
              c->port, c->tls);
    /*
     * lws may report a failure from inside this call (conn_finish defers
     * the report).  No i.pwsi: lws could write it after we freed c.
     */
    wsi = lws_client_connect_via_info(&i);
    if (wsi == NULL)
        conn_finish(c, WS_CLOSE_ABNORMAL, "connect: failed");
    else if (c->state != WS_DONE)
        c->wsi = wsi;
}

static void
conn_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct ws_conn *c = req->data;
    char addr[INET6_ADDRSTRLEN] = "";

    c->gai_active = 0;
    if (c->x->freeing || c->state == WS_DONE)
        goto out;
    if (status < 0 || res == NULL) {
        char why[160];

        snprintf(why, sizeof(why), "dns: %.100s: %s", c->host,
                 uv_strerror(status));
        conn_finish(c, WS_CLOSE_ABNORMAL, why);
        goto out;
    }
    if (res->ai_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)(void *)res->ai_addr, addr,
                    sizeof(addr));
    else
        uv_ip4_name((struct sockaddr_in *)(void *)res->ai_addr, addr,
                    sizeof(addr));
    conn_start_lws(c, addr);
out:
    uv_freeaddrinfo(res);
}

/* ws[s]://host[:port][/path]; IPv6 literals in brackets. */
static int
url_parse(struct ws_conn *c, const char *url)
{
    const char *p, *h, *hend, *slash;
    size_t hlen;

    if (strncasecmp(url, "ws://", 5) == 0) {
        p = url + 5;
        c->port = 80;
    } else if (strncasecmp(url, "wss://", 6) == 0) {
        p = url + 6;
        c->tls = 1;
        c->port = 443;
    } else
        return -1;
    slash = strchr(p, '/');
    if (slash == NULL)
        slash = p + strlen(p);
    h = p;
    if (*h == '[') {
        h++;
        hend = memchr(h, ']', (size_t)(slash - h));
        if (hend == NULL)
            return -1;
        p = hend + 1;
    } else {
        hend = memchr(h, ':', (size_t)(slash - h));
        if (hend == NULL)
            hend = slash;
        p = hend;
    }
    hlen = (size_t)(hend - h);
    if (hlen == 0 || hlen >= sizeof(c->host))
        return -1;
    memcpy(c->host, h, hlen);
    c->host[hlen] = '\0';
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);

        if (end != slash || port <= 0 || port > 65535)
            return -1;
        c->port = (int)port;
    } else if (p != slash)
        return -1;
    if (snprintf(c->path, sizeof(c->path), "%s", *slash ? slash : "/") >=
        (int)sizeof(c->path))
        return -1;
    return 0;
}

struct ws_conn *
ws_connect(struct ws_ctx *x, const char *url, const struct ws_conn_ops *ops,
           void *arg)
{
    struct addrinfo hints;
    struct ws_conn *c = NULL, *ret = NULL;
    int rc;

    if (x == NULL || x->freeing || url == NULL || ops == NULL)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto out;
    if (url_parse(c, url)) {
        log_warnx("ws: bad url \"%.80s\"", url);
        goto out;
    }
    c->x = x;
    c->ops = *ops;
    c->arg = arg;
    c->frame_max = WS_FRAME_MAX;
    c->msg_max = WS_MSG_MAX;
    c->state = WS_RESOLVING;
    uv_timer_init(x->loop, &c->timer);
    c->timer.data = c;
    c->gai.data = c;
    c->next = x->conns;
    if (x->conns)
        x->conns->prev = c;
    x->conns = c;
    ret = c;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET; /* Debian's lws 4.1.6 is built IPV6-off */
    hints.ai_socktype = SOCK_STREAM;
    rc = uv_getaddrinfo(x->loop, &c->gai, conn_resolved, c->host, NULL, &hints);
    if (rc < 0) {
        char why[160];

        snprintf(why, sizeof(why), "dns: %s", uv_strerror(rc));
        conn_finish(c, WS_CLOSE_ABNORMAL, why);
    } else
        c->gai_active = 1;
    c = NULL;
out:
    free(c);
    return ret;
}

int
ws_send_text(struct ws_conn *c, const char *buf, size_t len)
{
    struct ws_frame *f;

    if (c == NULL || c->state == WS_DONE || c->close_code)
        return -1;
    if (len > c->frame_max) {
        log_warnx("ws: frame over the cap host=%s len=%zu max=%zu", c->host,
                  len, c->frame_max);
        return -1;
    }
    if (c->qlen >= WS_QUEUE_MAX) {
        log_warnx("ws: send queue full host=%s", c->host);
        return -1;
    }
    f = malloc(sizeof(*f) + LWS_PRE + len);
    if (f == NULL)
        return -1;
    f->next = NULL;
    f->len = len;
    memcpy(f->buf + LWS_PRE, buf, len);
    if (c->qtail)
        c->qtail->next = f;
    else
        c->qhead = f;
    c->qtail = f;
    c->qlen++;
    if (c->state == WS_OPEN && c->wsi)
        lws_callback_on_writable(c->wsi);
    return 0;
}

void
ws_close(struct ws_conn *c, int code, const char *reason)
{
    if (c == NULL || c->state == WS_DONE || c->close_code)
        return;
    if (code < 1000 || code > 4999 || code == 1005 || code == 1006)
        code = 1000;
    c->close_code = code;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s",
             reason ? reason : "");
    switch (c->state) {
    case WS_RESOLVING:
        uv_cancel((uv_req_t *)&c->gai); /* conn_resolved sees WS_DONE */
        conn_finish(c, c->close_code, c->close_reason);
        break;
    case WS_CONNECTING:
        if (c->wsi)
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND,
                            LWS_TO_KILL_ASYNC);
        else
            conn_finish(c, c->close_code, c->close_reason);
        break;
    case WS_OPEN:
        lws_callback_on_writable(c->wsi);
        break;
    case WS_DONE:
        break;
    }
}

void
ws_abandon(struct ws_conn *c, int code, const char *reason)
{
    if (c == NULL)
        return;
    ws_close(c, code, reason);
    memset(&c->ops, 0, sizeof(c->ops));
    c->arg = NULL;
}

void
ws_set_frame_max(struct ws_conn *c, size_t max)
{
    if (c)
        c->frame_max = max;
}

void
ws_set_msg_max(struct ws_conn *c, size_t max)
{
    if (c)
        c->msg_max = max;
}

void
ws_set_ping(struct ws_conn *c, int64_t interval_ms, int64_t timeout_ms)
{
    if (c == NULL || c->state == WS_DONE)
        return;
    c->ping_interval = interval_ms > 0 ? interval_ms : 0;
    c->ping_timeout = timeout_ms > 0 ? timeout_ms : interval_ms;
    ping_arm(c);
}

int
ws_is_open(const struct ws_conn *c)
{
    return c && c->state == WS_OPEN && !c->close_code;
}

/* ---- the context ------------------------------------------------------ */

static void
ws_lws_log(int level, const char *line)
{
    size_t n = strlen(line);

    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (level == LLL_ERR)
        log_error("ws: lws: %.*s", (int)n, line);
    else
        log_warnx("ws: lws: %.*s", (int)n, line);
}

struct ws_ctx *
ws_ctx_new(uv_loop_t *loop)
{
    struct lws_context_creation_info info;
    struct ws_ctx *x, *ret = NULL;
    void *loops[1];

    x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    x->loop = loop;
    uv_timer_init(loop, &x->reaper);
    x->reaper.data = x;

    lws_set_log_level(LLL_ERR | LLL_WARN, ws_lws_log);
    memset(&info, 0, sizeof(info));
    loops[0] = loop;
    info.foreign_loops = loops;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_LIBUV |
                   LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                   LWS_SERVER_OPTION_DISABLE_IPV6;
    /*
     * CA trust: lws (Debian's 4.1.6, LWS_SSL_CLIENT_USE_OS_CA_CERTS) calls
     * SSL_CTX_set_default_verify_paths() while making this context, so
     * OpenSSL's defaults hold and SSL_CERT_FILE / SSL_CERT_DIR override
     * them, as they do for core/http.c.  Verification and the hostname
     * check are lws's defaults: never LCCSCF_ALLOW_* (test_ws checks).
     */
    info.protocols = ws_protocols;
    info.user = x;
    info.pcontext = &x->lws;
    info.timeout_secs = 20; /* handshake and close-ack timeouts */
    info.connect_timeout_secs = 20;
    x->lws = lws_create_context(&info);
    if (x->lws == NULL) {
        if (access(WS_PLUGIN, R_OK) != 0)
            log_error("ws: the libwebsockets libuv plugin %s is missing: "
                      "install the package libwebsockets-evlib-uv",
                      WS_PLUGIN);
        else
            log_error("ws: cannot create the libwebsockets client context");
        goto out;
    }
    ret = x;
    x = NULL;
out:
    ws_ctx_free(x);
    return ret;
}

static void
ws_ctx_release(uv_handle_t *h)
{
    free(h->data);
}

static void
ws_count_closing(uv_handle_t *h, void *arg)
{
    if (uv_is_closing(h))
        ++*(int *)arg;
}

void
ws_context_reap(uv_loop_t *loop, struct lws_context *lws)
{
    int closing = 0;

    if (lws == NULL)
        return;
    uv_walk(loop, ws_count_closing, &closing);
    if (!closing)
        lws_context_destroy(lws);
}

/*
 * lws 4.1 on a foreign loop destroys a context in two calls: the first
 * (ws_ctx_free) closes every wsi and lws's own uv handles; the second,
 * once those close callbacks have run (nothing in the loop is closing),
 * frees the vhosts and the context and writes NULL to x->lws
 * (info.pcontext).  getaddrinfo requests must come back too.  Only then
 * is our memory out of every callback's reach.
 */
static void
ws_reaper_tick(uv_timer_t *t)
{
    struct ws_ctx *x = t->data;
    int gai = 0;

    for (struct ws_conn *c = x->conns; c; c = c->next)
        gai |= c->gai_active;
    ws_context_reap(x->loop, x->lws);
    if ((x->lws || gai) && ++x->reaper_ticks < WS_TEARDOWN_TICKS)
        return;
    if (x->lws || gai) {
        log_error("ws: lws context did not finish closing; leaking it");
        uv_timer_stop(t);
        return;
    }
    while (x->conns)
        conn_unlink_free(x->conns);
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, ws_ctx_release);
}

void
ws_ctx_free(struct ws_ctx *x)
{
    if (x == NULL || x->freeing)
        return;
    x->freeing = 1;
    for (struct ws_conn *c = x->conns; c; c = c->next) {
        if (c->gai_active)
            uv_cancel((uv_req_t *)&c->gai);
        if (c->wsi)
            lws_set_opaque_user_data(c->wsi, NULL);
        c->wsi = NULL;
        c->state = WS_DONE;
        uv_timer_stop(&c->timer);
    }
    if (x->lws)
        lws_context_destroy(x->lws);
    uv_timer_start(&x->reaper, ws_reaper_tick, 0, 1);
}
