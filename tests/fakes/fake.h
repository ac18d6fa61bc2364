/* fake: scripted HTTP + websocket servers on 127.0.0.1 for integration tests.
 */
#ifndef PARLEY_FAKE_H
#define PARLEY_FAKE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/*
 * One struct fake is one lws server context listening on 127.0.0.1:port,
 * serving HTTP/1.1 and websockets on the same port, driven by the caller's
 * libuv loop.  Nothing here blocks: delays are uv timers.
 *
 * Lifetime: fake_free() starts an asynchronous teardown; the memory is
 * released while the loop runs, so after freeing every fake (and every
 * other handle) run uv_run(loop, UV_RUN_DEFAULT) once more before
 * uv_loop_close().  No callback of a fake runs after fake_free().
 *
 * Limits: request bodies over fake_set_body_max() (1 MiB by default) get
 * 413; incoming websocket messages over 1 MiB close the socket with 1009;
 * the request log keeps the first FAKE_LOG_MAX requests.
 */

#define FAKE_LOG_MAX 200000
#define FAKE_BODY_MAX_DEFAULT (1024 * 1024)
#define FAKE_WS_MSG_MAX (1024 * 1024)

struct fake;
struct fake_ws;

/* port 0 = ephemeral; binds 127.0.0.1 only.  NULL on failure (logged). */
struct fake *fake_new(uv_loop_t *loop, int port);
/*
 * The same over TLS (https and wss on the port): cert_file is the PEM
 * certificate (chain) to present, key_file its private key.  NULL
 * cert_file = plain, as fake_new().  The test certificates are in
 * tests/fakes/certs (README there): fake_cert_path() names one of them.
 * One TLS lws context per process at most (ws_ctx or TLS fake): lws 4.1.6
 * leaks the others' client SSL_CTX (docs/fakes.md).
 */
struct fake *fake_new_tls(uv_loop_t *loop, int port, const char *cert_file,
                          const char *key_file);
/* "$PARLEY_SRCDIR/tests/fakes/certs/NAME" ("." without the variable) in
 * buf; returns buf. */
const char *fake_cert_path(char *buf, size_t len, const char *name);
/*
 * SSL_CERT_FILE and SSL_CERT_DIR are read when a client is made (as
 * parleyd's are at start): fake_tls_env points them at test certificates
 * (names as for fake_cert_path) for the next one, NULL leaving a variable
 * as the test found it; fake_tls_env_restore puts both back.  Zero e first.
 */
struct fake_tls_env {
    char *file, *dir;
    int saved;
};
void fake_tls_env(struct fake_tls_env *e, const char *file, const char *dir);
void fake_tls_env_restore(struct fake_tls_env *e);
int fake_port(const struct fake *f);
void fake_free(struct fake *f);

/* Monotonic clock in ms, the same one that stamps fake_request.t_ms. */
int64_t fake_now_ms(void);
/* The same clock in microseconds (fake_request.t_us). */
int64_t fake_now_us(void);

struct fake_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* with the query ("/a/b?x=1"), as decoded by lws */
    const char *body;   /* NUL-terminated copy, NULL when empty */
    size_t body_len;    /* bytes received (capped by the body limit) */
    int64_t t_ms;       /* arrival, fake_now_ms() clock */
    int64_t t_us;       /* the same instant, fake_now_us() (benchmarks) */
};

/*
 * Header of a logged or in-flight request; name is case-insensitive, with
 * or without the trailing ':'.  NULL if absent.  lws 4.1 cannot enumerate
 * unknown headers, so besides every header lws knows (authorization,
 * content-type, user-agent, ...) only the names in a built-in list
 * (x-api-key, anthropic-version, x-slack-signature, ...) and those added
 * with fake_capture_header() are recorded.
 */
const char *fake_request_header(const struct fake_request *r, const char *name);
int fake_capture_header(struct fake *f, const char *name);

enum fake_fault {
    FAKE_FAULT_NONE,
    FAKE_FAULT_CLOSE,   /* drop the connection, no reply */
    FAKE_FAULT_HANG,    /* never reply (until the client gives up) */
    FAKE_FAULT_PARTIAL, /* headers + half the body, then close */
};

struct fake_response {
    int status;               /* 0 = 200 */
    const char *content_type; /* NULL = "application/json" */
    const char *body;         /* NULL = empty */
    size_t body_len;          /* 0 with a body = strlen(body) */
    const char *headers;      /* extra "Name: value\r\n" lines or NULL */
    int delay_ms;             /* added to fake_set_latency() */
    enum fake_fault fault;
    /*
     * A streamed body (SSE): npieces > 0 sends body with
     * Transfer-Encoding: chunked as npieces HTTP chunks of pieces[i]
     * bytes (summing to body_len; empty pieces are skipped), the first
     * after delay_ms, then piece_delay_ms apart.  cut_after > 0 drops the
     * connection once that many pieces are out, without the last chunk.
     * on_piece, when set, runs after each piece is handed to the socket
     * (index from 0), e.g. to time its arrival at a client.  pieces is
     * copied; fake_alloc() gives a handler storage for it.
     */
    const size_t *pieces;
    size_t npieces;
    int piece_delay_ms;
    size_t cut_after;
    void (*on_piece)(size_t index, void *arg);
    void *piece_arg;
};

/*
 * A handler fills *resp; the strings are copied after it returns, so they
 * may be static, owned by arg, or made with fake_printf().  A non-zero
 * return answers 500.  Routes match by method (NULL = any) and the
 * longest path prefix; ties go to the first registered.
 */
int fake_route(struct fake *f, const char *method, const char *path_prefix,
               int (*fn)(struct fake *f, const struct fake_request *req,
                         struct fake_response *resp, void *arg),
               void *arg);

/*
 * Queued one-shot replies, FIFO, consumed before any route's handler: the
 * first queued entry whose method and prefix match answers the request.
 * Lets a test say "503, 503, then 200".
 */
int fake_script(struct fake *f, const char *method, const char *path_prefix,
                const struct fake_response *resp);
size_t fake_script_pending(const struct fake *f);

/* Added to every reply's delay_ms. */
void fake_set_latency(struct fake *f, int delay_ms);
void fake_set_body_max(struct fake *f, size_t max);

/*
 * printf into storage that lives until the current handler's reply has
 * been copied: for building bodies inside a handler.  NULL on overflow.
 */
const char *fake_printf(struct fake *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like fake_printf: n bytes (zeroed) that live until the current
 * handler's reply has been copied; NULL when out of memory. */
void *fake_alloc(struct fake *f, size_t n);

/* JSON string escaping (no quotes added); returns the length it needs. */
size_t fake_json_escape(char *dst, size_t cap, const char *src, size_t len);

/* Request log (every request, matched or not), in arrival order. */
size_t fake_log_count(const struct fake *f, const char *path_prefix);
size_t fake_log_size(const struct fake *f);
const struct fake_request *fake_log_get(const struct fake *f, size_t i);
void fake_log_clear(struct fake *f);
/* Requests accepted but not answered yet (delayed, hanging, reading). */
size_t fake_inflight(const struct fake *f);

/* Websockets on the same port.  A fake_ws is valid until `closed` returns. */
struct fake_ws_ops {
    void (*open)(struct fake_ws *c, void *arg);
    void (*text)(struct fake_ws *c, const char *buf, size_t len, void *arg);
    void (*closed)(struct fake_ws *c, void *arg);
};

/* Exact path match (the query is ignored); others are refused. */
int fake_ws_route(struct fake *f, const char *path,
                  const struct fake_ws_ops *ops, void *arg);
/* Queued, written when writable; -1 once closing. */
int fake_ws_send(struct fake_ws *c, const char *text, size_t len);
/* The same message as nfrags frames (FIN only on the last). */
int fake_ws_send_fragmented(struct fake_ws *c, const char *text, size_t len,
                            size_t nfrags);
/*
 * A ping frame from the server side (payload "ping"), queued in order with
 * the text messages; -1 once closing.  The peer's pongs are counted by
 * fake_ws_pongs().
 */
int fake_ws_ping(struct fake_ws *c);
size_t fake_ws_pongs(const struct fake_ws *c);
/* Close frame with code (and reason up to 123 bytes). */
void fake_ws_close(struct fake_ws *c, int code, const char *reason);
/* TCP drop, no close frame (1006 for the peer). */
void fake_ws_drop(struct fake_ws *c);
/* Code of the close frame the client sent (0 if none): for `closed`. */
int fake_ws_peer_code(const struct fake_ws *c);
struct fake *fake_ws_fake(const struct fake_ws *c);
/* Live websocket connections, and the same actions on all of them. */
size_t fake_ws_count(const struct fake *f);
void fake_ws_close_all(struct fake *f, int code, const char *reason);
void fake_ws_drop_all(struct fake *f);

#endif
