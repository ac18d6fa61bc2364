/* http: libcurl's multi-socket API driven by libuv polls and one timer. */
#include "http.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#ifndef PARLEY_VERSION
#define PARLEY_VERSION "0"
#endif

/* fds kept out of libcurl's reach: SQLite, websockets, resolver pipes, logs */
#define HTTP_FD_RESERVE_MIN 256

/*
 * libcurl's receive buffer (CURLOPT_BUFFERSIZE), allocated per transfer
 * for its whole life: 16 KiB by default, i.e. more than half of a
 * transfer's heap while thousands of LLM calls wait on their replies.
 * Replies are small and bodies grow in our own capped buffer, so a small
 * buffer only costs more recv calls on the rare large download.
 */
#ifndef HTTP_RECV_BUFFER
#define HTTP_RECV_BUFFER 1024L
#endif

/*
 * Easy handles of finished requests kept for the next ones (reset, not
 * freed): curl_easy_init and curl_easy_cleanup are a good part of
 * libcurl's cost per request.  Each idle one holds a few KiB.
 */
#ifndef HTTP_EASY_IDLE_MAX
#define HTTP_EASY_IDLE_MAX 128
#endif

/* first allocation of a body without Content-Length, and of headers */
#define HTTP_BODY_INITIAL 1024
#define HTTP_HEADERS_INITIAL 512

enum http_req_state {
    REQ_ACTIVE,      /* in flight; done will be called */
    REQ_DISPATCHING, /* done is running */
    REQ_CANCELLED,   /* done will never be called; waiting to be reaped */
};

/*
 * One socket libcurl asked us to watch, or opened through us.  A socket
 * of ours (owned: http_open_socket made it, http_close_socket closes it)
 * keeps its poll handle for the connection's whole life: a request on a
 * reused connection then asks for the events the handle already watches,
 * and costs no epoll_ctl.  Others (the resolver's) are dropped as soon as
 * libcurl stops watching them, since they may close without telling us.
 */
struct http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct http *h;
    int want;  /* UV_ events libcurl asked for; 0 after CURL_POLL_REMOVE */
    int armed; /* UV_ events the poll handle is started with */
    int owned;
};

struct http_hdr {
    const char *name;
    const char *value;
};

struct http_req {
    struct http *h;
    CURL *easy;
    enum http_req_state state;
    int added;     /* in the multi handle (else waiting in h->reqs to be) */
    int too_large; /* a cap tripped: the write/header callback said stop */
    int stopped;   /* on_data asked to stop */
    int oom;
    int finished; /* libcurl completed it: the handle may be reused */
    http_done_fn done;
    void *arg;
    int (*on_data)(const char *buf, size_t len, void *arg);
    size_t max_response;
    size_t total; /* body bytes seen, accumulated or streamed */
    char *body;   /* accumulated body, NUL-terminated, cap body_cap + 1 */
    size_t body_len, body_cap;
    char *hbuf; /* raw header lines of the last response */
    size_t hlen, hcap;
    struct http_hdr *hdrs; /* parsed from hbuf on completion */
    size_t nhdrs;
    struct curl_slist *headers; /* request headers; curl reads them */
    char *send_body;            /* our copy; curl reads it (POSTFIELDS) */
    size_t send_len;
    uint64_t started_ms;
    char errbuf[CURL_ERROR_SIZE];
    struct http_req *prev, *next; /* h->reqs */
};

struct http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer; /* its close callback frees the struct */
    struct http_req *reqs;
    struct http_sock **byfd; /* the socket watched per fd number */
    size_t nbyfd;
    CURL *idle[HTTP_EASY_IDLE_MAX]; /* easy handles to reuse */
    size_t nidle;
    size_t in_flight;
    int in_curl;     /* inside curl_multi_socket_action: no multi calls */
    int dispatching; /* inside done callbacks */
    int dying;  /* http_free was called: tear down at the next safe point */
    int settle; /* requests to add or to reap once out of libcurl */
    struct http_stats stats;
    /* $SSL_CERT_FILE and $SSL_CERT_DIR at http_new, NULL when unset or
     * empty: CURLOPT_CAINFO and CURLOPT_CAPATH, as OpenSSL (and so lws)
     * reads them; else libcurl's compiled-in bundle */
    char *ca_file, *ca_dir;
};

const char *
http_error_name(enum http_error e)
{
    switch (e) {
    case HTTP_OK:
        return "ok";
    case HTTP_ERR_NETWORK:
        return "network";
    case HTTP_ERR_TIMEOUT:
        return "timeout";
    case HTTP_ERR_TOO_LARGE:
        return "too_large";
    case HTTP_ERR_CANCELLED:
        return "cancelled";
    case HTTP_ERR_INTERNAL:
        return "internal";
    case HTTP_ERR_TLS:
        return "tls";
    }
    return "?";
}

static void
http_list_add(struct http_req **head, struct http_req *r)
{
    r->prev = NULL;
    r->next = *head;
    if (*head)
        (*head)->prev = r;
    *head = r;
}

static void
http_list_del(struct http_req **head, struct http_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* Frees a request that is no longer (or never was) dispatched. */
static void
http_req_free(struct http_req *r)
{
    if (r == NULL)
        return;
    if (r->easy) {
        /* removing also drops its pending CURLMSG_DONE, if any */
        if (r->added)
            curl_multi_remove_handle(r->h->multi, r->easy);
        if (r->finished && r->h && !r->h->dying &&
            r->h->nidle < HTTP_EASY_IDLE_MAX) {
            curl_easy_reset(r->easy);
            r->h->idle[r->h->nidle++] = r->easy;
        } else {
            curl_easy_cleanup(r->easy);
        }
    }
    if (r->h)
        http_list_del(&r->h->reqs, r);
    curl_slist_free_all(r->headers);
    free(r->send_body);
    free(r->body);
    free(r->hbuf);
    free(r->hdrs);
    free(r);
}

/* ---- socket and timer plumbing ---------------------------------------- */

static void http_after(struct http *h);

static void
http_sock_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static struct http_sock *
http_sock_find(const struct http *h, curl_socket_t fd)
{
    if (fd < 0 || (size_t)fd >= h->nbyfd)
        return NULL;
    return h->byfd[fd];
}

static void
http_sock_close(struct http_sock *s)
{
    struct http *h = s->h;

    if (http_sock_find(h, s->fd) == s)
        h->byfd[s->fd] = NULL;
    /* uv_close stops the poll now: the fd number may be reused by libcurl
     * for a new socket before the close callback runs. */
    uv_close((uv_handle_t *)&s->poll, http_sock_closed);
}

/* A watcher for fd, registered in h->byfd; NULL on failure (logged). */
static struct http_sock *
http_sock_new(struct http *h, curl_socket_t fd, int owned)
{
    struct http_sock *s = NULL, **p;
    size_t n;
    int rc;

    if (fd < 0)
        return NULL;
    if ((size_t)fd >= h->nbyfd) {
        n = h->nbyfd ? h->nbyfd : 64;
        while (n <= (size_t)fd)
            n *= 2;
        if ((p = realloc(h->byfd, n * sizeof(*p))) == NULL)
            goto oom;
        memset(p + h->nbyfd, 0, (n - h->nbyfd) * sizeof(*p));
        h->byfd = p;
        h->nbyfd = n;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL)
        goto oom;
    rc = uv_poll_init_socket(h->loop, &s->poll, fd);
    if (rc < 0) {
        log_error("http uv_poll_init fd=%d error=%s", (int)fd, uv_strerror(rc));
        free(s);
        return NULL;
    }
    s->poll.data = s;
    s->fd = fd;
    s->h = h;
    s->owned = owned;
    if (h->byfd[fd] != NULL) /* cannot happen: its close would have run */
        http_sock_close(h->byfd[fd]);
    h->byfd[fd] = s;
    return s;
oom:
    log_error("http out of memory fd=%d", (int)fd);
    return NULL;
}

/*
 * Makes the poll handle watch events.  uv_poll_start drops the kernel's
 * registration and makes a new one (two epoll_ctl), so an unchanged set
 * is left alone.
 */
static void http_on_poll(uv_poll_t *poll, int status, int events);

static void
http_sock_arm(struct http_sock *s, int events)
{
    int rc = 0;

    if (events == s->armed)
        return;
    if (events == 0)
        rc = uv_poll_stop(&s->poll);
    else
        rc = uv_poll_start(&s->poll, events, http_on_poll);
    if (rc < 0) {
        log_error("http uv_poll_start fd=%d error=%s", (int)s->fd,
                  uv_strerror(rc));
        s->armed = 0;
        return;
    }
    s->armed = events;
}

static void
http_action(struct http *h, curl_socket_t fd, int flags)
{
    int running = 0;
    CURLMcode mc;

    h->in_curl++;
    mc = curl_multi_socket_action(h->multi, fd, flags, &running);
    h->in_curl--;
    if (mc != CURLM_OK)
        log_warnx("http socket_action failed fd=%d error=%s", (int)fd,
                  curl_multi_strerror(mc));
    http_after(h);
}

static void
http_on_poll(uv_poll_t *poll, int status, int events)
{
    struct http_sock *s = poll->data;
    int flags = 0;

    /* status < 0 (UV_EBADF on POLLERR, e.g. a failed connect): libuv has
     * stopped this watcher; libcurl reads the socket error and normally
     * drops the socket.  If it did not, its timeout still ends the
     * transfer, which is better than spinning on a socket in error. */
    if (status < 0)
        s->armed = 0;
    /* an idle pooled connection turned readable (the server closed it, or
     * sent something unasked): stop watching; libcurl's check before
     * reusing the connection finds out which */
    if (s->want == 0) {
        http_sock_arm(s, 0);
        return;
    }
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    http_action(s->h, s->fd, flags);
}

static void
http_on_timer(uv_timer_t *timer)
{
    http_action(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: libcurl says which events it wants on fd. */
static int
http_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
                 void *socketp)
{
    struct http *h = userp;
    struct http_sock *s = socketp;
    int events = 0;

    (void)easy;
    if (s == NULL)
        s = http_sock_find(h, fd);
    if (what == CURL_POLL_REMOVE) {
        /* libcurl forgets socketp itself after this call */
        if (s == NULL)
            return 0;
        s->want = 0;
        if (!s->owned)
            http_sock_close(s);
        else if (s->armed & UV_WRITABLE)
            http_sock_arm(s, 0); /* writable at once: would only wake us */
        /* else an idle connection keeps its read watch (http_on_poll) */
        return 0;
    }
    if (s == NULL && (s = http_sock_new(h, fd, 0)) == NULL)
        return 0; /* the transfer will time out; -1 kills the multi */
    if (socketp == NULL)
        curl_multi_assign(h->multi, fd, s);
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    s->want = events;
    http_sock_arm(s, events);
    return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: the connection's socket, watched from now
 * until http_close_socket. */
static curl_socket_t
http_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct http *h = clientp;
    curl_socket_t fd;

    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    if (http_sock_new(h, fd, 1) == NULL) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: the watcher goes before the fd number can
 * be reused. */
static int
http_close_socket(void *clientp, curl_socket_t fd)
{
    struct http_sock *s = http_sock_find(clientp, fd);

    if (s != NULL)
        http_sock_close(s);
    return close(fd);
}

/* CURLMOPT_TIMERFUNCTION: one non-repeating timer; -1 deletes it.  Never
 * calls libcurl from here: the timer fires from the loop. */
static int
http_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct http *h = userp;

    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, http_on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- per-request callbacks (run inside libcurl) ----------------------- */

/* The first body buffer: the whole body when Content-Length announces it
 * (one allocation, no copies), else a small start that doubles. */
static size_t
http_body_initial(const struct http_req *r)
{
    curl_off_t cl = -1;

    if (curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) ==
            CURLE_OK &&
        cl > 0 && (uint64_t)cl <= r->max_response)
        return (size_t)cl;
    return HTTP_BODY_INITIAL;
}

static size_t
http_on_body(char *ptr, size_t size, size_t nmemb, void *userp)
{
    struct http_req *r = userp;
    size_t n = size * nmemb, cap;
    char *p;

    if (r->state != REQ_ACTIVE)
        return 0; /* cancelled from a callback: stop reading now */
    if (n > r->max_response - r->total) {
        r->too_large = 1;
        return 0;
    }
    r->total += n;
    if (r->on_data) {
        if (r->on_data(ptr, n, r->arg) != 0) {
            r->stopped = 1;
            return 0;
        }
        return r->state == REQ_ACTIVE ? n : 0;
    }
    if (n > r->body_cap - r->body_len) {
        cap = r->body_cap ? r->body_cap : http_body_initial(r);
        while (cap - r->body_len < n)
            cap *= 2;
        if (cap > r->max_response)
            cap = r->max_response; /* total <= max_response holds */
        p = realloc(r->body, cap + 1);
        if (p == NULL) {
            r->oom = 1;
            return 0;
        }
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, ptr, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

/*
 * Once the response has begun and every byte of the request went out,
 * libcurl reads neither the body nor the header list again (it resends a
 * request only when a reused connection died before any reply, and we
 * follow no redirects): they go now rather than when the reply is
 * complete, which for an LLM call is seconds later, and a prompt with its
 * history can be the largest part of a request in flight.
 */
static void
http_release_sent(struct http_req *r)
{
    curl_off_t up = -1;

    if (r->send_body == NULL && r->headers == NULL)
        return;
    if (r->send_body != NULL &&
        (curl_easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &up) != CURLE_OK ||
         up < 0 || (uint64_t)up < r->send_len))
        return;
    free(r->send_body);
    r->send_body = NULL;
    curl_slist_free_all(r->headers);
    r->headers = NULL;
}

static size_t
http_on_header(char *ptr, size_t size, size_t nmemb, void *userp)
{
    struct http_req *r = userp;
    size_t n = size * nmemb, cap;
    char *p;

    if (r->state != REQ_ACTIVE)
        return 0;
    if (r->hlen == 0)
        http_release_sent(r);
    /* a new status line starts a new response (after 100 Continue or a
     * proxy's CONNECT): only the final one's headers are kept */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        r->hlen = 0;
    if (n > HTTP_HEADERS_MAX - r->hlen) {
        r->too_large = 1;
        return 0;
    }
    if (n + 1 > r->hcap - r->hlen) {
        cap = r->hcap ? r->hcap : HTTP_HEADERS_INITIAL;
        while (cap - r->hlen < n + 1)
            cap *= 2;
        p = realloc(r->hbuf, cap);
        if (p == NULL) {
            r->oom = 1;
            return 0;
        }
        r->hbuf = p;
        r->hcap = cap;
    }
    memcpy(r->hbuf + r->hlen, ptr, n);
    r->hlen += n;
    r->hbuf[r->hlen] = '\0';
    return n;
}

/* ---- completion ------------------------------------------------------- */

static char *
http_trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
                       end[-1] == '\n'))
        end--;
    *end = '\0';
    return s;
}

/* Splits hbuf in place into name/value pairs; skips status and blank
 * lines.  A failure only loses the headers, not the response. */
static void
http_parse_headers(struct http_req *r)
{
    char *line, *eol, *colon, *end;
    size_t lines = 0, i;

    if (r->hbuf == NULL)
        return;
    for (i = 0; i < r->hlen; i++)
        lines += r->hbuf[i] == '\n';
    r->hdrs = calloc(lines + 1, sizeof(*r->hdrs));
    if (r->hdrs == NULL)
        return;
    end = r->hbuf + r->hlen;
    for (line = r->hbuf; line < end; line = eol + 1) {
        eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            eol = end;
        colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL || colon == line ||
            (eol - line >= 5 && memcmp(line, "HTTP/", 5) == 0))
            continue; /* status line, blank line, obsolete folding */
        *colon = '\0';
        r->hdrs[r->nhdrs].name = http_trim(line, colon);
        r->hdrs[r->nhdrs].value = http_trim(colon + 1, eol);
        r->nhdrs++;
        if (eol == end)
            break;
    }
}

static enum http_error
http_classify(const struct http_req *r, CURLcode cc)
{
    if (r->too_large)
        return HTTP_ERR_TOO_LARGE;
    if (r->stopped)
        return HTTP_ERR_CANCELLED;
    if (r->oom)
        return HTTP_ERR_INTERNAL;
    switch (cc) {
    case CURLE_OK:
        return HTTP_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTP_ERR_TIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return HTTP_ERR_TOO_LARGE;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_FAILED_INIT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_UNKNOWN_OPTION:
        return HTTP_ERR_INTERNAL;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CERTPROBLEM:
        return HTTP_ERR_TLS;
    default:
        return HTTP_ERR_NETWORK;
    }
}

/*
 * A failed TLS handshake or certificate check: logged here with libcurl's
 * text, since callers log only the class (`network`), which a wrong CA or
 * name would share with a refused connection.  The peer's address, never
 * the URL (it may hold a token).
 */
static void
http_log_tls(const struct http_req *r, CURLcode cc, const char *text)
{
    const char *ip = NULL;

    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CERTPROBLEM:
        break;
    default:
        return;
    }
    if (curl_easy_getinfo(r->easy, CURLINFO_PRIMARY_IP, &ip) != CURLE_OK ||
        ip == NULL)
        ip = "?";
    log_warnx("http TLS failure ip=%s: %s", ip, text);
}

static void
http_complete(struct http *h, struct http_req *r, CURLcode cc)
{
    struct http_response resp;
    long status = 0, connects = 0;

    curl_multi_remove_handle(h->multi, r->easy);
    r->added = 0;
    r->finished = 1;
    if (r->state != REQ_ACTIVE) { /* cancelled while libcurl finished it */
        http_req_free(r);
        return;
    }
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &connects) ==
            CURLE_OK &&
        connects > 0)
        h->stats.connects += (uint64_t)connects;
    http_parse_headers(r);

    memset(&resp, 0, sizeof(resp));
    resp.error = http_classify(r, cc);
    resp.status = status;
    resp.body = r->body ? r->body : "";
    resp.body_len = r->body_len;
    resp.elapsed_ms = (int64_t)(uv_now(h->loop) - r->started_ms);
    resp.req = r;
    if (resp.error == HTTP_OK)
        resp.error_text = "";
    else if (r->too_large)
        resp.error_text = "response over its size cap";
    else if (r->stopped)
        resp.error_text = "stopped by the data callback";
    else if (r->errbuf[0])
        resp.error_text = r->errbuf;
    else
        resp.error_text = curl_easy_strerror(cc);
    if (resp.error == HTTP_ERR_NETWORK || resp.error == HTTP_ERR_TLS)
        http_log_tls(r, cc, resp.error_text);

    h->in_flight--;
    h->stats.completed++;
    if (resp.error != HTTP_OK)
        h->stats.failed++;
    log_debug("http done status=%ld class=%s elapsed_ms=%lld", status,
              http_error_name(resp.error), (long long)resp.elapsed_ms);
    r->state = REQ_DISPATCHING;
    r->done(&resp, r->arg);
    http_req_free(r);
}

static void
http_struct_free(struct http *h)
{
    free(h->ca_file);
    free(h->ca_dir);
    free(h);
}

/* Releases everything: requests (without callbacks), connections, polls;
 * the struct itself goes in the timer's close callback. */
static void
http_timer_closed(uv_handle_t *handle)
{
    http_struct_free(handle->data);
}

static void
http_teardown(struct http *h)
{
    size_t i;

    while (h->reqs)
        http_req_free(h->reqs);
    /* closes cached connections; may call the socket callback to remove */
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    while (h->nidle > 0)
        curl_easy_cleanup(h->idle[--h->nidle]);
    for (i = 0; i < h->nbyfd; i++)
        if (h->byfd[i] != NULL)
            http_sock_close(h->byfd[i]);
    free(h->byfd);
    h->byfd = NULL;
    h->nbyfd = 0;
    uv_close((uv_handle_t *)&h->timer, http_timer_closed);
}

/*
 * Reaps requests cancelled from inside libcurl and adds those sent from
 * inside it.  A failed add completes the request (HTTP_ERR_INTERNAL); its
 * callback may change the list, so the scan then starts over.
 */
static void
http_settle(struct http *h)
{
    struct http_req *r, *next;

    h->settle = 0;
    for (r = h->reqs; r; r = next) {
        next = r->next;
        if (r->state == REQ_CANCELLED) {
            http_req_free(r);
        } else if (!r->added && r->state == REQ_ACTIVE) {
            if (curl_multi_add_handle(h->multi, r->easy) == CURLM_OK) {
                r->added = 1;
            } else {
                log_warnx("http curl_multi_add_handle failed");
                h->settle = 1; /* rescan: done may have changed the list */
                http_complete(h, r, CURLE_FAILED_INIT);
                return;
            }
        }
    }
}

/*
 * The safe point after each libcurl call from the loop: finish a deferred
 * http_free, add requests sent from inside libcurl, reap requests
 * cancelled from inside libcurl, then deliver completions.
 */
static void
http_after(struct http *h)
{
    CURLMsg *msg;
    void *priv;
    int left;

    if (h->in_curl || h->dispatching)
        return;
    if (h->dying) {
        http_teardown(h);
        return;
    }
    h->dispatching++;
    while (h->settle && !h->dying)
        http_settle(h);
    while (!h->dying && (msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        if (priv)
            http_complete(h, priv, msg->data.result);
    }
    h->dispatching--;
    if (h->dying)
        http_teardown(h);
}

/* ---- public API ------------------------------------------------------- */

static long
http_max_connections(void)
{
    struct rlimit rl;
    rlim_t n, reserve;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0; /* unlimited */
    n = rl.rlim_cur;
    reserve = n / 4 > HTTP_FD_RESERVE_MIN ? n / 4 : HTTP_FD_RESERVE_MIN;
    if (n <= reserve + 64)
        return 64;
    if (n - reserve > LONG_MAX)
        return 0;
    return (long)(n - reserve);
}

/*
 * The CA trust an operator gives through the environment, read the way
 * OpenSSL reads it (lws's SSL_CTX_set_default_verify_paths does), so that
 * https and wss trust the same CAs: SSL_CERT_FILE replaces the CA bundle,
 * SSL_CERT_DIR the hashed CA folder; each is optional.  Debian's libcurl
 * does not look at them by itself.  *dst stays NULL when unset or empty.
 */
static int
http_ca_env(const char *name, char **dst)
{
    const char *v = getenv(name);

    if (v == NULL || *v == '\0')
        return 0;
    *dst = strdup(v);
    if (*dst == NULL)
        return -1;
    if (access(v, R_OK) != 0)
        log_warnx("http %s=%s is not readable: https requests will fail", name,
                  v);
    else
        log_info("http trusting the CAs of %s=%s", name, v);
    return 0;
}

struct http *
http_new(uv_loop_t *loop)
{
    struct http *h = NULL, *ret = NULL;
    int timer_ok = 0;
    CURLMcode mc = CURLM_OK;

    if (loop == NULL)
        goto out;
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        log_error("http out of memory");
        goto out;
    }
    h->loop = loop;
    if (uv_timer_init(loop, &h->timer) < 0)
        goto out;
    h->timer.data = h;
    timer_ok = 1;
    if (http_ca_env("SSL_CERT_FILE", &h->ca_file) ||
        http_ca_env("SSL_CERT_DIR", &h->ca_dir)) {
        log_error("http out of memory");
        goto out;
    }
    h->multi = curl_multi_init();
    if (h->multi == NULL) {
        log_error("http curl_multi_init failed");
        goto out;
    }
    mc |=
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, http_curl_socket);
    mc |= curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    mc |= curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, http_curl_timer);
    mc |= curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    mc |= curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS,
                            (long)HTTP_IDLE_CONNECTIONS_MAX);
    /* no per-host cap: thousands of LLM calls go to one host */
    mc |= curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    mc |= curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                            http_max_connections());
    if (mc != CURLM_OK) {
        log_error("http curl_multi_setopt failed");
        goto out;
    }
    ret = h;
    h = NULL;
out:
    if (h) {
        if (h->multi)
            curl_multi_cleanup(h->multi);
        if (timer_ok)
            uv_close((uv_handle_t *)&h->timer, http_timer_closed);
        else
            http_struct_free(h);
    }
    return ret;
}

void
http_free(struct http *h)
{
    struct http_req *r;

    if (h == NULL || h->dying)
        return;
    h->dying = 1;
    for (r = h->reqs; r; r = r->next) {
        if (r->state == REQ_ACTIVE) {
            r->state = REQ_CANCELLED;
            h->stats.cancelled++;
        }
    }
    h->in_flight = 0;
    if (h->in_curl || h->dispatching)
        return; /* http_after finishes it when the callback returns */
    http_teardown(h);
}

/* A method is a short token of capitals: nothing to inject. */
static int
http_method_ok(const char *m)
{
    size_t i;

    for (i = 0; m[i]; i++)
        if (m[i] < 'A' || m[i] > 'Z' || i >= 16)
            return 0;
    return i > 0;
}

static int
http_header_ok(const char *s)
{
    return strchr(s, '\r') == NULL && strchr(s, '\n') == NULL &&
           strchr(s, ':') != NULL;
}

static int
http_setup(struct http_req *r, const struct http_request *rq)
{
    CURL *e = r->easy;
    const char *method;
    int64_t timeout, connect_timeout;
    int has_expect = 0;
    CURLcode cc = CURLE_OK;
    struct curl_slist *l;
    size_t i;
    int rc = -1;

    method = rq->method ? rq->method : rq->body ? "POST" : "GET";
    if (!http_method_ok(method)) {
        log_warnx("http bad method");
        goto out;
    }
    timeout = rq->timeout_ms > 0 ? rq->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
    if (timeout > LONG_MAX)
        timeout = LONG_MAX;
    connect_timeout = rq->connect_timeout_ms > 0
                          ? rq->connect_timeout_ms
                          : HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
    if (connect_timeout > timeout)
        connect_timeout = timeout;

    for (i = 0; rq->headers && rq->headers[i]; i++) {
        if (!http_header_ok(rq->headers[i])) {
            log_warnx("http bad request header");
            goto out;
        }
        if (strncasecmp(rq->headers[i], "expect:", 7) == 0)
            has_expect = 1;
        l = curl_slist_append(r->headers, rq->headers[i]);
        if (l == NULL)
            goto out;
        r->headers = l;
    }
    /* no 100-continue round trip before large bodies: our peers are APIs */
    if (!has_expect) {
        l = curl_slist_append(r->headers, "Expect:");
        if (l == NULL)
            goto out;
        r->headers = l;
    }

    cc |= curl_easy_setopt(e, CURLOPT_URL, rq->url);
    cc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    cc |= curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    cc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    /* the loop owns signals; libcurl must not touch SIGALRM/SIGPIPE */
    cc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* cancelling during DNS must not join the resolver thread: that would
     * block the loop for as long as getaddrinfo takes */
    cc |= curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
    cc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    cc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout);
    cc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    cc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 60L);
    cc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 30L);
    cc |= curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* all built in */
    cc |= curl_easy_setopt(e, CURLOPT_USERAGENT, "parley/" PARLEY_VERSION);
    cc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    cc |= curl_easy_setopt(e, CURLOPT_BUFFERSIZE, HTTP_RECV_BUFFER);
    cc |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                           (curl_off_t)r->max_response);
    cc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_on_body);
    cc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    cc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_on_header);
    cc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    cc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, http_open_socket);
    cc |= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r->h);
    cc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, http_close_socket);
    cc |= curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, r->h);
    /* never off: CURLOPT_SSL_VERIFYPEER and VERIFYHOST keep their defaults */
    if (r->h->ca_file)
        cc |= curl_easy_setopt(e, CURLOPT_CAINFO, r->h->ca_file);
    if (r->h->ca_dir)
        cc |= curl_easy_setopt(e, CURLOPT_CAPATH, r->h->ca_dir);
    /* over TLS, wait for a connection that may multiplex (HTTP/2) rather
     * than open one per request; plain http is HTTP/1.1 here, where
     * waiting would only serialise the first burst */
    if (strncasecmp(rq->url, "https://", 8) == 0)
        cc |= curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);

    if (strcmp(method, "HEAD") == 0) {
        cc |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (rq->body || strcmp(method, "POST") == 0 ||
               strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) {
        r->send_body = malloc(rq->body_len + 1);
        if (r->send_body == NULL)
            goto out;
        if (rq->body_len)
            memcpy(r->send_body, rq->body, rq->body_len);
        r->send_body[rq->body_len] = '\0';
        r->send_len = rq->body_len;
        cc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                               (curl_off_t)rq->body_len);
        cc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->send_body);
        if (strcmp(method, "POST") != 0)
            cc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        cc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (cc != CURLE_OK) {
        log_warnx("http curl_easy_setopt failed");
        goto out;
    }
    rc = 0;
out:
    return rc;
}

struct http_req *
http_send(struct http *h, const struct http_request *rq, http_done_fn done,
          void *arg)
{
    struct http_req *r = NULL, *ret = NULL;

    if (h == NULL || rq == NULL || rq->url == NULL || done == NULL ||
        h->dying || (rq->body == NULL && rq->body_len > 0)) {
        log_warnx("http_send bad arguments");
        goto out;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto out;
    r->h = h;
    http_list_add(&h->reqs, r);
    r->done = done;
    r->arg = arg;
    r->on_data = rq->on_data;
    r->max_response =
        rq->max_response ? rq->max_response : HTTP_DEFAULT_MAX_RESPONSE;
    if (r->max_response > SIZE_MAX / 4)
        r->max_response = SIZE_MAX / 4; /* buffer arithmetic cannot wrap */
    r->started_ms = uv_now(h->loop);
    r->easy = h->nidle > 0 ? h->idle[--h->nidle] : curl_easy_init();
    if (r->easy == NULL || http_setup(r, rq) < 0)
        goto out;
    if (h->in_curl) {
        h->settle = 1; /* libcurl refuses new handles from its callbacks */
    } else {
        if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
            log_warnx("http curl_multi_add_handle failed");
            goto out;
        }
        r->added = 1;
    }
    h->in_flight++;
    h->stats.sent++;
    ret = r;
    r = NULL;
out:
    http_req_free(r);
    return ret;
}

void
http_cancel(struct http_req *r)
{
    struct http *h;

    if (r == NULL || r->state != REQ_ACTIVE)
        return;
    h = r->h;
    r->state = REQ_CANCELLED;
    h->in_flight--;
    h->stats.cancelled++;
    if (h->in_curl) {
        h->settle = 1; /* removed at the next safe point */
        return;
    }
    http_req_free(r);
}

const char *
http_response_header(const struct http_response *resp, const char *name)
{
    const struct http_req *r;
    size_t i;

    if (resp == NULL || resp->req == NULL || name == NULL)
        return NULL;
    r = resp->req;
    for (i = r->nhdrs; i > 0; i--)
        if (strcasecmp(r->hdrs[i - 1].name, name) == 0)
            return r->hdrs[i - 1].value;
    return NULL;
}

size_t
http_in_flight(const struct http *h)
{
    return h ? h->in_flight : 0;
}

void
http_stats_get(const struct http *h, struct http_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    if (h)
        *out = h->stats;
}
