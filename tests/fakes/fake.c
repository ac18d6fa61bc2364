/* fake: scripted HTTP + websocket servers on 127.0.0.1 for integration tests.
 */
#include "tests/fakes/fake.h"

#include <ctype.h>
#include <errno.h>
#include <libwebsockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "core/ws.h"

#define FAKE_CHUNK 16384 /* body bytes per write */
#define FAKE_HDR_VALUE_MAX 8192
#define FAKE_PATH_MAX 8192
#define FAKE_TEARDOWN_TICKS 5000 /* 1 ms each: give up waiting for lws */

enum fake_kind { KIND_HTTP = 1, KIND_WS };

struct fake_hdr {
    char *name; /* lower case, no ':' */
    char *value;
};

/* A request as logged; req first so a fake_request * leads back here. */
struct fake_logent {
    struct fake_request req;
    char method[16];
    char *path;
    char *body;
    struct fake_hdr *hdrs;
    size_t nhdrs;
};

struct fake_resp {
    int status;
    char *content_type;
    char *body;
    size_t body_len;
    char *headers;
    int delay_ms;
    enum fake_fault fault;
    size_t *pieces; /* streamed body: see fake_response */
    size_t npieces, piece_i;
    int piece_delay_ms;
    size_t cut_after;
    void (*on_piece)(size_t index, void *arg);
    void *piece_arg;
};

struct fake_route_ent {
    char *method; /* NULL = any */
    char *prefix;
    size_t plen;
    int (*fn)(struct fake *f, const struct fake_request *req,
              struct fake_response *resp, void *arg);
    void *arg;
};

struct fake_script_ent {
    struct fake_script_ent *next;
    char *method;
    char *prefix;
    struct fake_resp resp;
};

struct fake_ws_route_ent {
    char *path;
    struct fake_ws_ops ops;
    void *arg;
};

struct fake_scratch {
    struct fake_scratch *next;
    char s[];
};

enum http_state {
    HTTP_READING, /* waiting for the request body */
    HTTP_WAITING, /* reply decided, delay timer running */
    HTTP_READY,   /* writable requested: write the reply */
    HTTP_HANG,    /* never reply */
};

/* One HTTP transaction; the wsi's opaque user data while it lasts. */
struct fake_http {
    enum fake_kind kind;
    struct fake *f;
    struct lws *wsi; /* NULL once detached */
    struct fake_http *prev, *next;
    uv_timer_t timer;
    struct fake_logent *req;
    int req_logged; /* req is owned by the log */
    size_t body_cap;
    int too_large;
    enum http_state state;
    struct fake_resp resp;
    int headers_sent;
    size_t sent;
};

struct fake_wsframe {
    struct fake_wsframe *next;
    size_t len;
    int flags;           /* lws_write_protocol */
    unsigned char buf[]; /* LWS_PRE + len */
};

struct fake_ws {
    enum fake_kind kind;
    struct fake *f;
    struct lws *wsi;
    struct fake_ws *prev, *next;
    const struct fake_ws_route_ent *route;
    struct fake_wsframe *qhead, *qtail;
    char *rx;
    size_t rx_len;
    int rx_over;
    int close_code; /* > 0: close requested */
    int close_sent;
    int peer_code; /* from the peer's close frame, 0 if none */
    size_t pongs;  /* pong frames received */
    char close_reason[124];
    int dropped;
};

struct fake {
    uv_loop_t *loop;
    struct lws_context *ctx; /* lws writes NULL here when destroyed */
    int port;
    int freeing;
    uv_timer_t reaper;
    int reaper_ticks;
    int latency_ms;
    size_t body_max;
    struct fake_route_ent *routes;
    size_t nroutes;
    struct fake_script_ent *script_head, *script_tail;
    struct fake_ws_route_ent *ws_routes;
    size_t nws_routes;
    struct fake_logent **log;
    size_t nlog, caplog;
    char **capture;
    size_t ncapture;
    struct fake_http *http;
    size_t nhttp;
    struct fake_ws *ws;
    size_t nws;
    struct fake_scratch *scratch;
};

static const char *const default_capture[] = {
    "x-api-key",         "anthropic-version",
    "x-slack-signature", "x-slack-request-timestamp",
    "x-request-id",      "x-test",
    "x-should-retry",    "x-audit-log-reason",
    "idempotency-key",   "openai-organization",
    "retry-after",
};

static char *
xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char *
xmemdup(const char *s, size_t len)
{
    char *p = malloc(len + 1);

    if (p == NULL)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

int64_t
fake_now_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000u);
}

int64_t
fake_now_us(void)
{
    return (int64_t)(uv_hrtime() / 1000u);
}

/* ---- small helpers ---------------------------------------------------- */

size_t
fake_json_escape(char *dst, size_t cap, const char *src, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)src[i];
        char tmp[8];
        const char *e = tmp;
        size_t elen;

        switch (ch) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        default:
            if (ch < 0x20)
                snprintf(tmp, sizeof(tmp), "\\u%04x", ch);
            else {
                tmp[0] = (char)ch;
                tmp[1] = '\0';
            }
        }
        elen = strlen(e);
        if (n + elen < cap)
            memcpy(dst + n, e, elen);
        n += elen;
    }
    if (cap)
        dst[n < cap ? n : cap - 1] = '\0';
    return n;
}

const char *
fake_printf(struct fake *f, const char *fmt, ...)
{
    struct fake_scratch *s;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || n > 64 * 1024 * 1024)
        return NULL;
    s = malloc(sizeof(*s) + (size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s->s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->next = f->scratch;
    f->scratch = s;
    return s->s;
}

void *
fake_alloc(struct fake *f, size_t n)
{
    struct fake_scratch *s;

    if (n > 64 * 1024 * 1024)
        return NULL;
    s = calloc(1, sizeof(*s) + n + 1);
    if (s == NULL)
        return NULL;
    s->next = f->scratch;
    f->scratch = s;
    return s->s;
}

static void
scratch_release(struct fake *f)
{
    while (f->scratch) {
        struct fake_scratch *s = f->scratch;
        f->scratch = s->next;
        free(s);
    }
}

static void
resp_release(struct fake_resp *r)
{
    free(r->content_type);
    free(r->body);
    free(r->headers);
    free(r->pieces);
    memset(r, 0, sizeof(*r));
}

static int
resp_copy(struct fake_resp *dst, const struct fake_response *src)
{
    int rc = -1;
    size_t blen = src->body_len;

    memset(dst, 0, sizeof(*dst));
    dst->status = src->status ? src->status : 200;
    dst->delay_ms = src->delay_ms > 0 ? src->delay_ms : 0;
    dst->fault = src->fault;
    if (src->body && blen == 0)
        blen = strlen(src->body);
    dst->content_type =
        xstrdup(src->content_type ? src->content_type : "application/json");
    if (dst->content_type == NULL)
        goto out;
    if (src->body) {
        dst->body = xmemdup(src->body, blen);
        if (dst->body == NULL)
            goto out;
        dst->body_len = blen;
    }
    if (src->headers && (dst->headers = strdup(src->headers)) == NULL)
        goto out;
    if (src->npieces > 0 && src->pieces != NULL) {
        dst->pieces = malloc(src->npieces * sizeof(*dst->pieces));
        if (dst->pieces == NULL)
            goto out;
        memcpy(dst->pieces, src->pieces, src->npieces * sizeof(*dst->pieces));
        dst->npieces = src->npieces;
        dst->piece_delay_ms = src->piece_delay_ms > 0 ? src->piece_delay_ms : 0;
        dst->cut_after = src->cut_after;
        dst->on_piece = src->on_piece;
        dst->piece_arg = src->piece_arg;
    }
    rc = 0;
out:
    if (rc)
        resp_release(dst);
    return rc;
}

static void
logent_free(struct fake_logent *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->nhdrs; i++) {
        free(e->hdrs[i].name);
        free(e->hdrs[i].value);
    }
    free(e->hdrs);
    free(e->path);
    free(e->body);
    free(e);
}

static int
logent_add_hdr(struct fake_logent *e, const char *name, size_t nlen,
               const char *value)
{
    struct fake_hdr *h;

    h = realloc(e->hdrs, (e->nhdrs + 1) * sizeof(*h));
    if (h == NULL)
        return -1;
    e->hdrs = h;
    h[e->nhdrs].name = xmemdup(name, nlen);
    h[e->nhdrs].value = strdup(value);
    if (h[e->nhdrs].name == NULL || h[e->nhdrs].value == NULL) {
        free(h[e->nhdrs].name);
        free(h[e->nhdrs].value);
        return -1;
    }
    for (char *p = h[e->nhdrs].name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    e->nhdrs++;
    return 0;
}

const char *
fake_request_header(const struct fake_request *r, const char *name)
{
    const struct fake_logent *e = (const struct fake_logent *)r;
    size_t nlen;

    if (r == NULL || name == NULL)
        return NULL;
    nlen = strlen(name);
    if (nlen && name[nlen - 1] == ':')
        nlen--;
    for (size_t i = 0; i < e->nhdrs; i++)
        if (strlen(e->hdrs[i].name) == nlen &&
            strncasecmp(e->hdrs[i].name, name, nlen) == 0)
            return e->hdrs[i].value;
    return NULL;
}

int
fake_capture_header(struct fake *f, const char *name)
{
    char **c;
    char *n;
    size_t len = strlen(name);

    if (len && name[len - 1] == ':')
        len--;
    if (len == 0 || len > 100)
        return -1;
    n = xmemdup(name, len);
    if (n == NULL)
        return -1;
    for (char *p = n; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    c = realloc(f->capture, (f->ncapture + 1) * sizeof(*c));
    if (c == NULL) {
        free(n);
        return -1;
    }
    f->capture = c;
    f->capture[f->ncapture++] = n;
    return 0;
}

/* ---- request capture -------------------------------------------------- */

static const char *
method_name(int m)
{
    switch (m) {
    case LWSHUMETH_GET:
        return "GET";
    case LWSHUMETH_POST:
        return "POST";
    case LWSHUMETH_OPTIONS:
        return "OPTIONS";
    case LWSHUMETH_PUT:
        return "PUT";
    case LWSHUMETH_PATCH:
        return "PATCH";
    case LWSHUMETH_DELETE:
        return "DELETE";
    case LWSHUMETH_CONNECT:
        return "CONNECT";
    case LWSHUMETH_HEAD:
        return "HEAD";
    default:
        return "?";
    }
}

static int
capture_headers(struct fake *f, struct lws *wsi, struct fake_logent *e)
{
    char v[FAKE_HDR_VALUE_MAX];

    for (int t = 0; t < (int)WSI_TOKEN_COUNT; t++) {
        const char *name =
            (const char *)lws_token_to_string((enum lws_token_indexes)t);
        size_t nlen;

        if (name == NULL || name[0] == ':' || name[0] == '\0')
            continue;
        nlen = strlen(name);
        if (name[nlen - 1] != ':')
            continue; /* "get ", "post ": the request line */
        if (lws_hdr_total_length(wsi, (enum lws_token_indexes)t) <= 0)
            continue;
        if (lws_hdr_copy(wsi, v, FAKE_HDR_VALUE_MAX,
                         (enum lws_token_indexes)t) < 0)
            continue;
        if (logent_add_hdr(e, name, nlen - 1, v))
            return -1;
    }
    for (size_t i = 0; i < f->ncapture; i++) {
        char n[128];
        int nl = snprintf(n, sizeof(n), "%s:", f->capture[i]);

        if (lws_hdr_custom_length(wsi, n, nl) <= 0)
            continue;
        if (lws_hdr_custom_copy(wsi, v, FAKE_HDR_VALUE_MAX, n, nl) < 0)
            continue;
        if (logent_add_hdr(e, f->capture[i], strlen(f->capture[i]), v))
            return -1;
    }
    return 0;
}

/* path + "?" + the query fragments lws split on '&'; built in a scratch
 * buffer, kept at its exact size (the log holds one per request) */
static char *
capture_path(struct lws *wsi, const char *uri, int uri_len)
{
    char p[FAKE_PATH_MAX];
    size_t n;

    n = (size_t)uri_len < FAKE_PATH_MAX - 1 ? (size_t)uri_len
                                            : FAKE_PATH_MAX - 1;
    memcpy(p, uri, n);
    p[n] = '\0';
    for (int i = 0; n < FAKE_PATH_MAX - 2; i++) {
        int fl = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);

        if (fl <= 0)
            break;
        p[n++] = i ? '&' : '?';
        if (lws_hdr_copy_fragment(wsi, p + n, (int)(FAKE_PATH_MAX - n),
                                  WSI_TOKEN_HTTP_URI_ARGS, i) < 0) {
            p[--n] = '\0';
            break;
        }
        n += strlen(p + n);
    }
    return xmemdup(p, n);
}

/* ---- HTTP transactions ------------------------------------------------ */

static void
http_timer_closed(uv_handle_t *h)
{
    struct fake_http *x = h->data;

    resp_release(&x->resp);
    if (!x->req_logged)
        logent_free(x->req);
    free(x);
}

/* End the transaction's life: unlink, forget the wsi, free asynchronously. */
static void
http_detach(struct fake_http *x)
{
    struct fake *f = x->f;

    if (x->wsi)
        lws_set_opaque_user_data(x->wsi, NULL);
    x->wsi = NULL;
    if (x->prev)
        x->prev->next = x->next;
    else
        f->http = x->next;
    if (x->next)
        x->next->prev = x->prev;
    f->nhttp--;
    uv_timer_stop(&x->timer);
    uv_close((uv_handle_t *)&x->timer, http_timer_closed);
}

static void
http_timer_fired(uv_timer_t *t)
{
    struct fake_http *x = t->data;

    if (x->wsi == NULL)
        return;
    x->state = HTTP_READY;
    lws_callback_on_writable(x->wsi);
}

static const struct fake_route_ent *
route_find(const struct fake *f, const struct fake_request *r)
{
    const struct fake_route_ent *best = NULL;

    for (size_t i = 0; i < f->nroutes; i++) {
        const struct fake_route_ent *e = &f->routes[i];

        if (e->method && strcasecmp(e->method, r->method) != 0)
            continue;
        if (strncmp(r->path, e->prefix, e->plen) != 0)
            continue;
        if (best == NULL || e->plen > best->plen)
            best = e;
    }
    return best;
}

static int
script_take(struct fake *f, const struct fake_request *r, struct fake_resp *out)
{
    struct fake_script_ent *prev = NULL;

    for (struct fake_script_ent *s = f->script_head; s; s = s->next) {
        if ((s->method == NULL || strcasecmp(s->method, r->method) == 0) &&
            strncmp(r->path, s->prefix, strlen(s->prefix)) == 0) {
            if (prev)
                prev->next = s->next;
            else
                f->script_head = s->next;
            if (f->script_tail == s)
                f->script_tail = prev;
            *out = s->resp;
            free(s->method);
            free(s->prefix);
            free(s);
            return 1;
        }
        prev = s;
    }
    return 0;
}

static int
resp_error(struct fake_resp *out, int status, const char *json)
{
    struct fake_response r = {.status = status, .body = json};

    return resp_copy(out, &r);
}

/*
 * The request is complete: log it, decide the reply, arm the delay.
 * Returns 1 when the reply is due now and is a plain one: the caller,
 * still in lws's callback for this request, writes it at once
 * (http_write) rather than after a poll round trip for writability.
 */
static int http_write(struct fake_http *x);

static int
http_dispatch(struct fake_http *x)
{
    struct fake *f = x->f;
    const struct fake_request *r = &x->req->req;
    const struct fake_route_ent *route;
    int delay;

    if (f->nlog < FAKE_LOG_MAX) {
        if (f->nlog == f->caplog) {
            size_t cap = f->caplog ? f->caplog * 2 : 64;
            struct fake_logent **l = realloc(f->log, cap * sizeof(*l));

            if (l == NULL)
                return -1;
            f->log = l;
            f->caplog = cap;
        }
        f->log[f->nlog++] = x->req;
        x->req_logged = 1;
    }

    if (x->too_large) {
        if (resp_error(&x->resp, 413,
                       "{\"ok\":false,\"error\":\"request body too large\"}"))
            return -1;
    } else if (script_take(f, r, &x->resp)) {
        /* scripted reply taken over */
    } else if ((route = route_find(f, r)) != NULL) {
        struct fake_response out;

        memset(&out, 0, sizeof(out));
        if (route->fn(f, r, &out, route->arg) != 0) {
            scratch_release(f);
            if (resp_error(&x->resp, 500,
                           "{\"ok\":false,\"error\":\"handler failed\"}"))
                return -1;
        } else {
            int rc = resp_copy(&x->resp, &out);

            scratch_release(f);
            if (rc)
                return -1;
        }
    } else {
        size_t cap = strlen(r->path) * 6 + 64;
        char *js = malloc(cap);
        int rc, n;

        if (js == NULL)
            return -1;
        n = snprintf(js, cap,
                     "{\"ok\":false,\"error\":\"not found\","
                     "\"path\":\"");
        fake_json_escape(js + n, cap - (size_t)n, r->path, strlen(r->path));
        strcat(js, "\"}");
        rc = resp_error(&x->resp, 404, js);
        free(js);
        if (rc)
            return -1;
    }

    /* lws may have a pending timeout (body, keepalive): ours decides */
    lws_set_timeout(x->wsi, NO_PENDING_TIMEOUT, 0);
    if (x->resp.fault == FAKE_FAULT_HANG) {
        x->state = HTTP_HANG;
        return 0;
    }
    delay = x->resp.delay_ms + f->latency_ms;
    if (delay > 0) {
        x->state = HTTP_WAITING;
        uv_timer_start(&x->timer, http_timer_fired, (uint64_t)delay, 0);
        return 0;
    }
    x->state = HTTP_READY;
    if (x->resp.npieces == 0)
        return 1;
    lws_callback_on_writable(x->wsi);
    return 0;
}

static int
http_begin(struct fake *f, struct lws *wsi)
{
    struct fake_http *x;
    char *uri = NULL;
    int uri_len = 0, m;
    char cl[32];
    int rc = -1;

    x = calloc(1, sizeof(*x));
    if (x == NULL)
        return -1;
    x->kind = KIND_HTTP;
    x->f = f;
    x->wsi = wsi;
    uv_timer_init(f->loop, &x->timer);
    x->timer.data = x;
    x->next = f->http;
    if (f->http)
        f->http->prev = x;
    f->http = x;
    f->nhttp++;
    lws_set_opaque_user_data(wsi, x);

    x->req = calloc(1, sizeof(*x->req));
    if (x->req == NULL)
        goto out;
    x->req->req.t_us = fake_now_us();
    x->req->req.t_ms = x->req->req.t_us / 1000;
    m = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
    snprintf(x->req->method, sizeof(x->req->method), "%s", method_name(m));
    x->req->req.method = x->req->method;
    x->req->path = capture_path(wsi, uri ? uri : "/", uri ? uri_len : 1);
    if (x->req->path == NULL)
        goto out;
    x->req->req.path = x->req->path;
    if (capture_headers(f, wsi, x->req))
        goto out;

    if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
        strtoull(cl, NULL, 10) > 0) {
        unsigned long long want = strtoull(cl, NULL, 10);

        if (want > f->body_max)
            x->too_large = 1; /* read and discard it, then answer 413 */
        else if ((x->req->body = malloc((size_t)want + 1)) != NULL)
            x->body_cap = (size_t)want + 1; /* the log keeps it: exact size */
        x->state = HTTP_READING;
        rc = 0;
        goto out;
    }
    if ((rc = http_dispatch(x)) > 0)
        return http_write(x); /* on failure lws closes: CLOSED_HTTP detaches */
out:
    if (rc)
        http_detach(x);
    return rc;
}

static int
http_body(struct fake_http *x, const char *in, size_t len)
{
    struct fake_logent *e = x->req;

    if (x->too_large)
        return 0;
    if (e->req.body_len + len > x->f->body_max) {
        x->too_large = 1;
        return 0;
    }
    if (e->req.body_len + len + 1 > x->body_cap) {
        size_t cap = x->body_cap ? x->body_cap : 4096;
        char *b;

        while (cap < e->req.body_len + len + 1)
            cap *= 2;
        b = realloc(e->body, cap);
        if (b == NULL)
            return -1;
        e->body = b;
        x->body_cap = cap;
    }
    memcpy(e->body + e->req.body_len, in, len);
    e->req.body_len += len;
    e->body[e->req.body_len] = '\0';
    e->req.body = e->body;
    return 0;
}

/* Append the caller's extra header lines; lws wants "name:" */
static int
http_extra_headers(struct lws *wsi, const char *lines, unsigned char **p,
                   unsigned char *end)
{
    const char *s = lines;

    while (s && *s) {
        const char *eol = strstr(s, "\r\n"), *colon, *v;
        size_t llen = eol ? (size_t)(eol - s) : strlen(s);
        char name[256];
        size_t nlen;

        colon = memchr(s, ':', llen);
        if (colon && (nlen = (size_t)(colon - s)) > 0 &&
            nlen < sizeof(name) - 1) {
            memcpy(name, s, nlen);
            name[nlen] = ':';
            name[nlen + 1] = '\0';
            v = colon + 1;
            while (v < s + llen && *v == ' ')
                v++;
            if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                            (const unsigned char *)v,
                                            (int)(s + llen - v), p, end))
                return -1;
        }
        s += llen;
        if (eol)
            s += 2;
    }
    return 0;
}

/* The headers of a streamed reply: chunked, no Content-Length. */
static int
http_stream_headers(struct fake_http *x)
{
    struct lws *wsi = x->wsi;
    size_t cap =
        LWS_PRE + 2048 + (x->resp.headers ? 2 * strlen(x->resp.headers) : 0);
    unsigned char *buf = malloc(cap), *start, *p, *end;
    int rc = -1;

    if (buf == NULL)
        return -1;
    start = p = buf + LWS_PRE;
    end = buf + cap - 1;
    if (lws_add_http_common_headers(wsi, (unsigned int)x->resp.status,
                                    x->resp.content_type,
                                    LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
        lws_add_http_header_by_name(
            wsi, (const unsigned char *)"transfer-encoding:",
            (const unsigned char *)"chunked", 7, &p, end) ||
        http_extra_headers(wsi, x->resp.headers, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        goto out;
    x->headers_sent = 1;
    rc = 0;
out:
    free(buf);
    return rc;
}

/*
 * One step of a streamed reply: the headers, one piece as one chunk, or
 * the end (the last chunk, or a cut).  0 to go on, -1 to close.
 */
static int
http_stream_write(struct fake_http *x)
{
    struct lws *wsi = x->wsi;
    struct fake_resp *r = &x->resp;
    unsigned char *buf = NULL;
    size_t n, off, i;
    int rc = -1, last;

    if (!x->headers_sent) {
        if (http_stream_headers(x) != 0)
            return -1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (r->cut_after > 0 && r->piece_i >= r->cut_after)
        return -1; /* the pieces before are out: drop the connection */
    if (r->piece_i >= r->npieces) {
        static const char fin[] = "0\r\n\r\n";

        buf = malloc(LWS_PRE + sizeof(fin));
        if (buf == NULL)
            return -1;
        memcpy(buf + LWS_PRE, fin, sizeof(fin) - 1);
        if (lws_write(wsi, buf + LWS_PRE, sizeof(fin) - 1,
                      LWS_WRITE_HTTP_FINAL) < (int)sizeof(fin) - 1)
            goto out;
        free(buf);
        http_detach(x);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    i = r->piece_i++;
    n = r->pieces[i];
    if (n > r->body_len - x->sent)
        n = r->body_len - x->sent;
    if (n > 0) {
        buf = malloc(LWS_PRE + n + 32);
        if (buf == NULL)
            return -1;
        off = (size_t)snprintf((char *)buf + LWS_PRE, 24, "%zx\r\n", n);
        memcpy(buf + LWS_PRE + off, r->body + x->sent, n);
        memcpy(buf + LWS_PRE + off + n, "\r\n", 2);
        if (lws_write(wsi, buf + LWS_PRE, off + n + 2, LWS_WRITE_HTTP) <
            (int)(off + n + 2))
            goto out;
        x->sent += n;
        if (r->on_piece != NULL)
            r->on_piece(i, r->piece_arg);
    }
    last = r->piece_i >= r->npieces ||
           (r->cut_after > 0 && r->piece_i >= r->cut_after);
    if (!last && r->piece_delay_ms > 0) {
        x->state = HTTP_WAITING;
        uv_timer_start(&x->timer, http_timer_fired, (uint64_t)r->piece_delay_ms,
                       0);
    } else {
        lws_callback_on_writable(wsi);
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

static int
http_write(struct fake_http *x)
{
    struct lws *wsi = x->wsi;
    size_t limit = x->resp.body_len;
    unsigned char *buf = NULL;
    int rc = -1;

    if (x->state != HTTP_READY)
        return 0;
    if (x->resp.npieces > 0 && x->resp.fault == FAKE_FAULT_NONE)
        return http_stream_write(x);
    if (x->resp.fault == FAKE_FAULT_CLOSE)
        goto out; /* no reply at all */
    if (x->resp.fault == FAKE_FAULT_PARTIAL)
        limit = x->resp.body_len / 2;

    if (!x->headers_sent) {
        size_t cap = LWS_PRE + 2048 +
                     (x->resp.headers ? 2 * strlen(x->resp.headers) : 0);
        unsigned char *start, *p, *end;

        buf = malloc(cap);
        if (buf == NULL)
            goto out;
        start = p = buf + LWS_PRE;
        end = buf + cap - 1;
        if (lws_add_http_common_headers(
                wsi, (unsigned int)x->resp.status, x->resp.content_type,
                (lws_filepos_t)x->resp.body_len, &p, end))
            goto out;
        if (http_extra_headers(wsi, x->resp.headers, &p, end))
            goto out;
        if (lws_finalize_write_http_header(wsi, start, &p, end))
            goto out;
        x->headers_sent = 1;
        free(buf);
        buf = NULL;
        /* HTTP/1.1: the body may follow in this same callback unless the
         * socket is full (one poll round trip less per reply) */
        if (x->resp.body_len > 0 && lws_send_pipe_choked(wsi)) {
            lws_callback_on_writable(wsi);
            rc = 0;
            goto out;
        }
    }
    if (x->sent < limit) {
        size_t n = limit - x->sent;
        int final;

        if (n > FAKE_CHUNK)
            n = FAKE_CHUNK;
        final = x->sent + n == x->resp.body_len;
        buf = malloc(LWS_PRE + n);
        if (buf == NULL)
            goto out;
        memcpy(buf + LWS_PRE, x->resp.body + x->sent, n);
        if (lws_write(wsi, buf + LWS_PRE, n,
                      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
            goto out;
        x->sent += n;
        if (!final) {
            lws_callback_on_writable(wsi);
            rc = 0;
            goto out;
        }
    } else if (x->resp.fault == FAKE_FAULT_PARTIAL && x->resp.body_len > 0) {
        goto out; /* half the body is out: cut the connection */
    }

    /* reply complete */
    {
        int close_after = x->too_large;

        http_detach(x);
        if (close_after || lws_http_transaction_completed(wsi))
            goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

/* ---- websockets ------------------------------------------------------- */

static const struct fake_ws_route_ent *
ws_route_find(const struct fake *f, struct lws *wsi)
{
    char path[1024];
    int n = lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);

    if (n <= 0)
        return NULL;
    for (size_t i = 0; i < f->nws_routes; i++)
        if (strcmp(f->ws_routes[i].path, path) == 0)
            return &f->ws_routes[i];
    return NULL;
}

static void
ws_unlink_free(struct fake_ws *c)
{
    struct fake *f = c->f;

    if (c->prev)
        c->prev->next = c->next;
    else
        f->ws = c->next;
    if (c->next)
        c->next->prev = c->prev;
    f->nws--;
    while (c->qhead) {
        struct fake_wsframe *q = c->qhead;
        c->qhead = q->next;
        free(q);
    }
    free(c->rx);
    free(c);
}

static int
ws_queue(struct fake_ws *c, const char *text, size_t len, int flags)
{
    struct fake_wsframe *q;

    q = malloc(sizeof(*q) + LWS_PRE + len);
    if (q == NULL)
        return -1;
    q->next = NULL;
    q->len = len;
    q->flags = flags;
    if (len)
        memcpy(q->buf + LWS_PRE, text, len);
    if (c->qtail)
        c->qtail->next = q;
    else
        c->qhead = q;
    c->qtail = q;
    lws_callback_on_writable(c->wsi);
    return 0;
}

int
fake_ws_send(struct fake_ws *c, const char *text, size_t len)
{
    if (c == NULL || c->close_code || c->dropped || c->wsi == NULL)
        return -1;
    return ws_queue(c, text, len, LWS_WRITE_TEXT);
}

int
fake_ws_send_fragmented(struct fake_ws *c, const char *text, size_t len,
                        size_t nfrags)
{
    size_t step, off = 0;

    if (c == NULL || c->close_code || c->dropped || c->wsi == NULL ||
        nfrags == 0)
        return -1;
    step = (len + nfrags - 1) / nfrags;
    for (size_t i = 0; i < nfrags; i++) {
        size_t n = off + step <= len ? step : len - off;
        int flags = i == 0 ? LWS_WRITE_TEXT : LWS_WRITE_CONTINUATION;

        if (i + 1 < nfrags)
            flags |= LWS_WRITE_NO_FIN;
        if (ws_queue(c, text + off, n, flags))
            return -1;
        off += n;
    }
    return 0;
}

/* A payload, not an empty ping: with an empty one no pong was ever
 * reported here (lws 4.1 on both ends). */
int
fake_ws_ping(struct fake_ws *c)
{
    if (c == NULL || c->close_code || c->dropped || c->wsi == NULL)
        return -1;
    return ws_queue(c, "ping", 4, LWS_WRITE_PING);
}

size_t
fake_ws_pongs(const struct fake_ws *c)
{
    return c ? c->pongs : 0;
}

void
fake_ws_close(struct fake_ws *c, int code, const char *reason)
{
    if (c == NULL || c->close_code || c->dropped || c->wsi == NULL)
        return;
    c->close_code = code > 0 ? code : 1000;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s",
             reason ? reason : "");
    lws_callback_on_writable(c->wsi);
}

void
fake_ws_drop(struct fake_ws *c)
{
    if (c == NULL || c->dropped || c->wsi == NULL)
        return;
    c->dropped = 1;
    /*
     * Shut the TCP connection down under lws: the peer reads EOF with no
     * close frame (1006), and lws here sees the hangup and cleans up.
     */
    shutdown(lws_get_socket_fd(c->wsi), SHUT_RDWR);
    lws_callback_on_writable(c->wsi);
}

int
fake_ws_peer_code(const struct fake_ws *c)
{
    return c ? c->peer_code : 0;
}

struct fake *
fake_ws_fake(const struct fake_ws *c)
{
    return c ? c->f : NULL;
}

size_t
fake_ws_count(const struct fake *f)
{
    return f ? f->nws : 0;
}

void
fake_ws_close_all(struct fake *f, int code, const char *reason)
{
    for (struct fake_ws *c = f->ws; c; c = c->next)
        fake_ws_close(c, code, reason);
}

void
fake_ws_drop_all(struct fake *f)
{
    for (struct fake_ws *c = f->ws; c; c = c->next)
        fake_ws_drop(c);
}

static int
ws_established(struct fake *f, struct lws *wsi)
{
    const struct fake_ws_route_ent *route = ws_route_find(f, wsi);
    struct fake_ws *c;

    if (route == NULL)
        return -1;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    c->kind = KIND_WS;
    c->f = f;
    c->wsi = wsi;
    c->route = route;
    c->next = f->ws;
    if (f->ws)
        f->ws->prev = c;
    f->ws = c;
    f->nws++;
    lws_set_opaque_user_data(wsi, c);
    if (route->ops.open)
        route->ops.open(c, route->arg);
    return 0;
}

static int
ws_receive(struct fake_ws *c, const char *in, size_t len)
{
    struct lws *wsi = c->wsi;

    if (c->rx_over)
        return 0; /* discard the rest until the close is out */
    if (c->rx_len + len > FAKE_WS_MSG_MAX) {
        c->rx_over = 1;
        if (!c->close_code) {
            c->close_code = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
            snprintf(c->close_reason, sizeof(c->close_reason),
                     "message too big");
        }
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
        if (!c->f->freeing && c->route->ops.text)
            c->route->ops.text(c, c->rx ? c->rx : "", n, c->route->arg);
    }
    return 0;
}

/*
 * Write the close frame ourselves (ws_write_close: lws 4.1 on libuv drops
 * the one lws_close_reason() would send).  The peer's echo then ends the
 * connection (PEER_INITIATED_CLOSE).
 */
static int
ws_send_close(struct lws *wsi, int code, const char *reason)
{
    if (ws_write_close(wsi, code, reason) != 0)
        return -1;
    lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, 3);
    return 0;
}

static int
ws_writable(struct fake_ws *c)
{
    struct fake_wsframe *q;

    if (c->dropped)
        return -1;
    if (c->close_sent)
        return 0;
    if (c->close_code) {
        c->close_sent = 1;
        return ws_send_close(c->wsi, c->close_code, c->close_reason);
    }
    q = c->qhead;
    if (q == NULL)
        return 0;
    if (lws_write(c->wsi, q->buf + LWS_PRE, q->len,
                  (enum lws_write_protocol)q->flags) < (int)q->len)
        return -1;
    c->qhead = q->next;
    if (c->qhead == NULL)
        c->qtail = NULL;
    free(q);
    if (c->qhead)
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* ---- the lws callback ------------------------------------------------- */

static int
fake_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
        size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    struct fake *f = ctx ? lws_context_user(ctx) : NULL;
    void *o = lws_get_opaque_user_data(wsi);
    struct fake_http *x = o && *(enum fake_kind *)o == KIND_HTTP ? o : NULL;
    struct fake_ws *c = o && *(enum fake_kind *)o == KIND_WS ? o : NULL;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (f == NULL || f->freeing)
            return -1;
        if (x) /* a previous transaction never finished */
            http_detach(x);
        return http_begin(f, wsi) ? -1 : 0;
    case LWS_CALLBACK_HTTP_BODY:
        if (len == 0) /* nothing to copy (and memcpy wants a real pointer) */
            return 0;
        return x && http_body(x, in, len) == 0 ? 0 : -1;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        /*
         * lws 4.1 reports completion for Content-Length: 0 too, which
         * http_begin() has dispatched already (and may have answered and
         * detached): only a request still reading its body goes on.
         */
        if (x == NULL || x->state != HTTP_READING)
            return 0;
        switch (http_dispatch(x)) {
        case 0:
            return 0;
        case 1:
            return http_write(x);
        default:
            http_detach(x);
            return -1;
        }
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return x ? http_write(x) : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (x)
            http_detach(x);
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return f && !f->freeing && ws_route_find(f, wsi) ? 0 : 1;
    case LWS_CALLBACK_ESTABLISHED:
        if (x) /* the upgrade request's transaction object */
            http_detach(x);
        return f && !f->freeing ? ws_established(f, wsi) : -1;
    case LWS_CALLBACK_RECEIVE:
        return c ? ws_receive(c, in, len) : -1;
    case LWS_CALLBACK_RECEIVE_PONG:
        if (c)
            c->pongs++;
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c ? ws_writable(c) : 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && len >= 2)
            c->peer_code = ((const unsigned char *)in)[0] << 8 |
                           ((const unsigned char *)in)[1];
        /* the echo of our close: done; else lws echoes theirs */
        return c && c->close_sent ? -1 : 0;
    case LWS_CALLBACK_CLOSED:
        if (c) {
            lws_set_opaque_user_data(wsi, NULL);
            c->wsi = NULL;
            if (!c->f->freeing && c->route->ops.closed)
                c->route->ops.closed(c, c->route->arg);
            ws_unlink_free(c);
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (x)
            http_detach(x);
        if (c) {
            lws_set_opaque_user_data(wsi, NULL);
            c->wsi = NULL;
            ws_unlink_free(c);
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols fake_protocols[] = {
    {"fake", fake_cb, 0, 16384, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- lifecycle -------------------------------------------------------- */

static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max &&
        rl.rlim_cur < 65536) {
        rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/*
 * A failed lws_create_context() on a foreign loop leaves uv close
 * callbacks pointing at the freed context (lws 4.1): find a taken port
 * before lws does.
 */
static int
port_free(int port)
{
    struct sockaddr_in sa;
    int fd, one = 1, rc;

    if (port == 0)
        return 1;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    return rc == 0;
}

static void
lws_log_stderr(int level, const char *line)
{
    fprintf(stderr, "fake: lws %s: %s", level == LLL_ERR ? "error" : "warn",
            line);
}

struct fake *
fake_new(uv_loop_t *loop, int port)
{
    return fake_new_tls(loop, port, NULL, NULL);
}

const char *
fake_cert_path(char *buf, size_t len, const char *name)
{
    const char *src = getenv("PARLEY_SRCDIR");

    snprintf(buf, len, "%s/tests/fakes/certs/%s", src ? src : ".", name);
    return buf;
}

static void
tls_env_put(const char *name, const char *saved, const char *cert)
{
    char path[PATH_MAX];

    if (cert)
        setenv(name, fake_cert_path(path, sizeof(path), cert), 1);
    else if (saved)
        setenv(name, saved, 1);
    else
        unsetenv(name);
}

void
fake_tls_env(struct fake_tls_env *e, const char *file, const char *dir)
{
    if (!e->saved) {
        const char *f = getenv("SSL_CERT_FILE"), *d = getenv("SSL_CERT_DIR");

        e->file = f ? strdup(f) : NULL;
        e->dir = d ? strdup(d) : NULL;
        e->saved = 1;
    }
    tls_env_put("SSL_CERT_FILE", e->file, file);
    tls_env_put("SSL_CERT_DIR", e->dir, dir);
}

void
fake_tls_env_restore(struct fake_tls_env *e)
{
    fake_tls_env(e, NULL, NULL);
    free(e->file);
    free(e->dir);
    memset(e, 0, sizeof(*e));
}

struct fake *
fake_new_tls(uv_loop_t *loop, int port, const char *cert_file,
             const char *key_file)
{
    struct lws_context_creation_info info;
    struct fake *f;
    struct lws_vhost *vh;
    void *loops[1];
    struct fake *ret = NULL;

    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->loop = loop;
    f->body_max = FAKE_BODY_MAX_DEFAULT;
    uv_timer_init(loop, &f->reaper);
    f->reaper.data = f;
    for (size_t i = 0; i < sizeof(default_capture) / sizeof(*default_capture);
         i++)
        if (fake_capture_header(f, default_capture[i]))
            goto out;

    if (port < 0 || port > 65535 || !port_free(port)) {
        fprintf(stderr, "fake: port %d is not available\n", port);
        goto out;
    }
    raise_nofile(); /* before lws sizes its fd table from the limit */
    if (getenv("FAKE_LWS_DEBUG") == NULL)
        lws_set_log_level(LLL_ERR, lws_log_stderr);
    else
        lws_set_log_level(atoi(getenv("FAKE_LWS_DEBUG")), NULL);

    memset(&info, 0, sizeof(info));
    loops[0] = loop;
    info.foreign_loops = loops;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.port = port;
    info.iface = "127.0.0.1";
    info.vhost_name = "fake";
    info.protocols = fake_protocols;
    info.user = f;
    info.pcontext = &f->ctx;
    info.max_http_header_pool = 4096; /* 1000s of requests held at once */
    info.max_http_header_data = 8192;
    info.keepalive_timeout = 30;
    info.timeout_secs = 30;
    if (cert_file) {
        /* TLS on the whole port; lws offers ALPN h2 and http/1.1 */
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cert_file;
        info.ssl_private_key_filepath = key_file;
    }
    f->ctx = lws_create_context(&info);
    if (f->ctx == NULL) {
        fprintf(stderr,
                "fake: cannot listen on 127.0.0.1:%d (is "
                "libwebsockets-evlib-uv installed?)\n",
                port);
        goto out;
    }
    vh = lws_get_vhost_by_name(f->ctx, "fake");
    f->port = vh ? lws_get_vhost_listen_port(vh) : port;
    if (f->port <= 0) {
        fprintf(stderr, "fake: no listening port\n");
        goto out;
    }
    ret = f;
    f = NULL;
out:
    fake_free(f);
    return ret;
}

int
fake_port(const struct fake *f)
{
    return f ? f->port : -1;
}

static void
fake_release(uv_handle_t *h)
{
    struct fake *f = h->data;

    while (f->http)
        http_detach(f->http); /* timers close on the next loop turn */
    for (size_t i = 0; i < f->nlog; i++)
        logent_free(f->log[i]);
    free(f->log);
    for (size_t i = 0; i < f->nroutes; i++) {
        free(f->routes[i].method);
        free(f->routes[i].prefix);
    }
    free(f->routes);
    while (f->script_head) {
        struct fake_script_ent *s = f->script_head;
        f->script_head = s->next;
        free(s->method);
        free(s->prefix);
        resp_release(&s->resp);
        free(s);
    }
    for (size_t i = 0; i < f->nws_routes; i++)
        free(f->ws_routes[i].path);
    free(f->ws_routes);
    for (size_t i = 0; i < f->ncapture; i++)
        free(f->capture[i]);
    free(f->capture);
    scratch_release(f);
    free(f);
}

/*
 * lws 4.1 on a foreign loop destroys a context in two calls: the first
 * closes every wsi and lws's own uv handles; the second, once those close
 * callbacks have run, frees the vhosts and the context and writes NULL
 * to f->ctx (info.pcontext).  Nothing in the loop closing means lws's
 * close callbacks are done.  After that no lws callback can touch us.
 */
static void
reaper_tick(uv_timer_t *t)
{
    struct fake *f = t->data;

    ws_context_reap(f->loop, f->ctx);
    if (f->ctx && ++f->reaper_ticks < FAKE_TEARDOWN_TICKS)
        return;
    if (f->ctx) {
        fprintf(stderr, "fake: lws context still alive, leaking it\n");
        uv_timer_stop(t);
        return;
    }
    while (f->ws)
        ws_unlink_free(f->ws);
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, fake_release);
}

void
fake_free(struct fake *f)
{
    if (f == NULL || f->freeing)
        return;
    f->freeing = 1;
    while (f->http)
        http_detach(f->http);
    if (f->ctx)
        lws_context_destroy(f->ctx);
    uv_timer_start(&f->reaper, reaper_tick, 0, 1);
}

/* ---- configuration ---------------------------------------------------- */

int
fake_route(struct fake *f, const char *method, const char *path_prefix,
           int (*fn)(struct fake *f, const struct fake_request *req,
                     struct fake_response *resp, void *arg),
           void *arg)
{
    struct fake_route_ent *r;

    if (f == NULL || path_prefix == NULL || fn == NULL)
        return -1;
    r = realloc(f->routes, (f->nroutes + 1) * sizeof(*r));
    if (r == NULL)
        return -1;
    f->routes = r;
    r = &f->routes[f->nroutes];
    memset(r, 0, sizeof(*r));
    r->method = xstrdup(method);
    r->prefix = strdup(path_prefix);
    if ((method && r->method == NULL) || r->prefix == NULL) {
        free(r->method);
        free(r->prefix);
        return -1;
    }
    r->plen = strlen(path_prefix);
    r->fn = fn;
    r->arg = arg;
    f->nroutes++;
    return 0;
}

int
fake_script(struct fake *f, const char *method, const char *path_prefix,
            const struct fake_response *resp)
{
    struct fake_script_ent *s;

    if (f == NULL || path_prefix == NULL || resp == NULL)
        return -1;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    s->method = xstrdup(method);
    s->prefix = strdup(path_prefix);
    if ((method && s->method == NULL) || s->prefix == NULL ||
        resp_copy(&s->resp, resp)) {
        free(s->method);
        free(s->prefix);
        free(s);
        return -1;
    }
    if (f->script_tail)
        f->script_tail->next = s;
    else
        f->script_head = s;
    f->script_tail = s;
    return 0;
}

size_t
fake_script_pending(const struct fake *f)
{
    size_t n = 0;

    for (const struct fake_script_ent *s = f ? f->script_head : NULL; s;
         s = s->next)
        n++;
    return n;
}

void
fake_set_latency(struct fake *f, int delay_ms)
{
    f->latency_ms = delay_ms > 0 ? delay_ms : 0;
}

void
fake_set_body_max(struct fake *f, size_t max)
{
    f->body_max = max;
}

int
fake_ws_route(struct fake *f, const char *path, const struct fake_ws_ops *ops,
              void *arg)
{
    struct fake_ws_route_ent *r;

    if (f == NULL || path == NULL || ops == NULL || f->ws)
        return -1; /* routes are fixed before the first client */
    r = realloc(f->ws_routes, (f->nws_routes + 1) * sizeof(*r));
    if (r == NULL)
        return -1;
    f->ws_routes = r;
    r = &f->ws_routes[f->nws_routes];
    r->path = strdup(path);
    if (r->path == NULL)
        return -1;
    r->ops = *ops;
    r->arg = arg;
    f->nws_routes++;
    return 0;
}

/* ---- the log ---------------------------------------------------------- */

size_t
fake_log_count(const struct fake *f, const char *path_prefix)
{
    size_t n = 0, plen = path_prefix ? strlen(path_prefix) : 0;

    for (size_t i = 0; f && i < f->nlog; i++)
        if (strncmp(f->log[i]->path, path_prefix ? path_prefix : "", plen) == 0)
            n++;
    return n;
}

size_t
fake_log_size(const struct fake *f)
{
    return f ? f->nlog : 0;
}

const struct fake_request *
fake_log_get(const struct fake *f, size_t i)
{
    return f && i < f->nlog ? &f->log[i]->req : NULL;
}

void
fake_log_clear(struct fake *f)
{
    for (size_t i = 0; i < f->nlog; i++) {
        struct fake_logent *e = f->log[i];
        int inflight = 0;

        for (struct fake_http *x = f->http; x; x = x->next)
            if (x->req == e) {
                x->req_logged = 0; /* the transaction frees it */
                inflight = 1;
            }
        if (!inflight)
            logent_free(e);
    }
    f->nlog = 0;
}

size_t
fake_inflight(const struct fake *f)
{
    return f ? f->nhttp : 0;
}
