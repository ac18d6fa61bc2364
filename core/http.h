/* http: many concurrent HTTP requests on one libuv loop (libcurl multi). */
#ifndef PARLEY_HTTP_H
#define PARLEY_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/*
 * One struct http drives every HTTP request of the process on the loop
 * thread: libcurl's multi-socket API, one uv_poll_t per socket and one
 * uv_timer_t.  No call here blocks.  Idle connections are kept and reused
 * (HTTP/1.1 keep-alive, HTTP/2 multiplexing over TLS).
 *
 * Not thread-safe: every function must be called on the loop's thread.
 * curl_global_init(CURL_GLOBAL_DEFAULT) is the program's job (bot/main),
 * before the first http_new and while only one thread exists;
 * curl_global_cleanup after the last http_free's handles have closed.
 *
 * Limits (see docs/io.md):
 *   - no limit on concurrent requests of its own; total connections are
 *     capped below RLIMIT_NOFILE so a flood queues inside libcurl instead of
 *     failing with EMFILE; callers bound concurrency (pacer, queues);
 *   - response body capped per request (max_response, default 8 MiB),
 *     response headers capped at HTTP_HEADERS_MAX bytes;
 *   - redirects are not followed; only http:// and https:// are allowed;
 *   - memory: ~11 KB of libcurl state per request in flight over its own
 *     HTTP/1.1 connection (5.4 KB of it the easy handle; the receive
 *     buffer is set to 1 KiB), ~0.6 KB of ours, plus the response body,
 *     allocated once from Content-Length when known.  The copy of the
 *     request body and the header list are freed as soon as the response
 *     begins with the whole request sent, not when it completes.
 */
struct http;
struct http_req;

/*
 * Transport outcome, a class callers branch on (STYLE point 6).  HTTP_OK
 * means a complete response arrived, whatever its status: 4xx/5xx are in
 * http_response.status, for the caller's retry policy to read.
 */
enum http_error {
    HTTP_OK = 0,
    HTTP_ERR_NETWORK,   /* resolve, connect, handshake, reset, bad reply */
    HTTP_ERR_TIMEOUT,   /* rq.timeout_ms or the connect timeout ran out */
    HTTP_ERR_TOO_LARGE, /* body over max_response or headers too big */
    HTTP_ERR_CANCELLED, /* on_data returned nonzero: the caller stopped it */
    HTTP_ERR_INTERNAL,  /* bad URL or method, out of memory, libcurl misuse */
    /* the peer's certificate was refused (untrusted CA, another name,
     * expired) or our CA file is unreadable: configuration, not weather */
    HTTP_ERR_TLS,
};

/*
 * Idle connections kept for reuse after their transfers end (libcurl's
 * CURLMOPT_MAXCONNECTS; its default, 4 x handles ever added, grows without
 * bound after a burst).  Each idle one holds ~7 KB of heap and an fd for
 * as long as it stays (measured: 1024 kept after a burst = 7 MB of RSS).
 * 512 covers the connectors' capped sends (Telegram: 256 + 32) and a good
 * part of an HTTP/1.1 burst: with 256, bench_e2e a (10,000 answers, LLM
 * 0 ms, pacing off) churned connections and took ~350 us of CPU per
 * message instead of ~275.  Over HTTP/2 one connection carries ~100.
 */
#define HTTP_IDLE_CONNECTIONS_MAX 512

/* Total bytes of response headers accepted before HTTP_ERR_TOO_LARGE. */
#define HTTP_HEADERS_MAX (64 * 1024)
#define HTTP_DEFAULT_MAX_RESPONSE (8u * 1024 * 1024)
#define HTTP_DEFAULT_TIMEOUT_MS 60000
#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000

/*
 * A request.  http_send copies everything it needs, so all of it may live
 * on the caller's stack.  Zero/NULL fields take the defaults.
 */
struct http_request {
    /* "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"; NULL = GET, or POST
     * when there is a body. */
    const char *method;
    const char *url;
    /* NULL-terminated array of "Name: value"; NULL for none.  "Name:"
     * removes a header libcurl would add (e.g. "Expect:"). */
    const char *const *headers;
    const char *body; /* bytes, need not be NUL-terminated */
    size_t body_len;
    int64_t timeout_ms;         /* whole request, queueing included; 0 = 60 s */
    int64_t connect_timeout_ms; /* 0 = min(10 s, timeout_ms) */
    size_t max_response;        /* body bytes; 0 = 8 MiB */
    /*
     * Optional streaming sink (SSE).  When set, body bytes are handed over
     * as they arrive, in arbitrary chunks, and not accumulated (the
     * response's body is then empty); max_response still bounds the total.
     * It runs inside libcurl: it may call http_cancel/http_free (the
     * effect is deferred to a safe point) and http_send.  Return 0 to go
     * on, nonzero to stop: done then gets HTTP_ERR_CANCELLED.
     */
    int (*on_data)(const char *buf, size_t len, void *arg);
};

/* What done receives; valid only during the callback. */
struct http_response {
    enum http_error error;
    long status;            /* HTTP status; 0 if no response line came */
    const char *body;       /* always NUL-terminated, never NULL */
    size_t body_len;        /* without the terminating NUL */
    const char *error_text; /* "" when error == HTTP_OK; for logs only */
    int64_t elapsed_ms;     /* from http_send to completion */
    const struct http_req *req;
};

typedef void (*http_done_fn)(const struct http_response *r, void *arg);

/* NULL on failure (logged).  The loop must outlive the returned handle. */
struct http *http_new(uv_loop_t *loop);

/*
 * Cancels every request in flight WITHOUT calling their done callbacks
 * (their owners are being torn down too), closes all connections, and
 * closes the uv handles.  The memory is released by the handles' close
 * callbacks, so run the loop (uv_run) once more before uv_loop_close.
 * Safe to call from inside a done or on_data callback (the teardown is
 * then finished when that callback returns).  NULL is a no-op.
 */
void http_free(struct http *h);

/*
 * Starts a request.  done is called exactly once, later, from the loop
 * (never from inside http_send), unless the request is cancelled first.
 * Returns a handle for http_cancel, valid until done returns; NULL on
 * invalid arguments or out of memory (logged; done is not called).  May be
 * called from inside callbacks.
 */
struct http_req *http_send(struct http *h, const struct http_request *rq,
                           http_done_fn done, void *arg);

/*
 * Aborts a request: after this returns its done callback is never called.
 * Calling it on a request whose done callback is running is a no-op.
 * NULL is a no-op.
 */
void http_cancel(struct http_req *r);

/*
 * The last value of response header `name` (case-insensitive), trimmed;
 * NULL if absent.  Only the final response's headers count (not those of a
 * 100-continue or a proxy CONNECT).
 */
const char *http_response_header(const struct http_response *r,
                                 const char *name);

/* Requests sent and not yet completed or cancelled. */
size_t http_in_flight(const struct http *h);

/* Counters since http_new, for /metrics and tests. */
struct http_stats {
    uint64_t sent;      /* accepted by http_send */
    uint64_t completed; /* done called, any class */
    uint64_t failed;    /* done called with error != HTTP_OK */
    uint64_t cancelled; /* http_cancel or http_free before done */
    uint64_t connects;  /* new connections opened; sent - connects ~ reuse */
};
void http_stats_get(const struct http *h, struct http_stats *out);

const char *http_error_name(enum http_error e);

#endif
