/* ws: websocket client connections (libwebsockets) on the daemon's libuv loop.
 */
#ifndef PARLEY_WS_H
#define PARLEY_WS_H

#include <stddef.h>
#include <uv.h>

/*
 * One struct ws_ctx holds the single lws client context for every
 * websocket connection of the process (Discord gateway, Slack Socket
 * Mode).  lws runs on the caller's loop through its libuv event-lib
 * plugin (package libwebsockets-evlib-uv); nothing here blocks: host
 * names are resolved with uv_getaddrinfo before lws connects.
 *
 * Ownership: a struct ws_conn belongs to the library.  It is valid from
 * ws_connect() until its `closed` callback returns; it is freed right
 * after, so the caller drops its pointer inside `closed`.  `closed` is
 * called exactly once per successful ws_connect(), always from the loop,
 * never from inside ws_connect() itself - also for failures to connect
 * (refused, DNS, TLS, handshake: code 1006 and a reason).  Reconnecting
 * is the caller's policy: call ws_connect() again.
 *
 * Teardown: ws_ctx_free() closes every connection without calling
 * `closed` and returns at once; lws finishes closing its handles while
 * the loop runs, so run the loop until it has no handles (uv_run DEFAULT)
 * before uv_loop_close().  Nothing of this module runs after that.
 */

#define WS_FRAME_MAX 4096        /* default cap of one outgoing frame */
#define WS_MSG_MAX (1024 * 1024) /* default cap of one incoming message */
#define WS_CLOSE_ABNORMAL 1006   /* no close frame was received */
#define WS_CLOSE_TOO_BIG 1009

struct ws_ctx;
struct ws_conn;

struct ws_conn_ops {
    void (*open)(struct ws_conn *c, void *arg);
    /* one complete message (fragments reassembled); buf is NUL-terminated */
    void (*text)(struct ws_conn *c, const char *buf, size_t len, void *arg);
    /* close code (1006 when none), reason never NULL */
    void (*closed)(struct ws_conn *c, int code, const char *reason, void *arg);
};

/* NULL (logged) if lws or its libuv plugin cannot start. */
struct ws_ctx *ws_ctx_new(uv_loop_t *loop);
void ws_ctx_free(struct ws_ctx *x);

/* url: ws://host[:port]/path or wss://...; NULL on a bad URL or OOM. */
struct ws_conn *ws_connect(struct ws_ctx *x, const char *url,
                           const struct ws_conn_ops *ops, void *arg);

/*
 * Queue one text frame, written when the socket is writable.  -1 if the
 * frame is over the conn's frame cap, the queue is full (WS_QUEUE_MAX
 * frames) or the conn is closing.
 */
#define WS_QUEUE_MAX 1024
int ws_send_text(struct ws_conn *c, const char *buf, size_t len);

/* Graceful close with a code (1000..4999); `closed` follows once. */
void ws_close(struct ws_conn *c, int code, const char *reason);

/*
 * ws_close, and no callback of c runs any more (not even `closed`): for
 * an owner that goes away before the loop turns again.  The library still
 * frees c once lws is done with it.
 */
void ws_abandon(struct ws_conn *c, int code, const char *reason);

/* Per-connection caps (defaults WS_FRAME_MAX and WS_MSG_MAX). */
void ws_set_frame_max(struct ws_conn *c, size_t max);
void ws_set_msg_max(struct ws_conn *c, size_t max);

/*
 * Keepalive (dead-socket detection, e.g. Slack Socket Mode): while open,
 * a ping goes out every interval_ms; if neither its pong nor any other
 * frame arrives within timeout_ms, the socket is dropped and reported
 * `closed` with 1006 "ping timeout".  0 turns it off (the default).  May
 * be called before the handshake is done.
 */
void ws_set_ping(struct ws_conn *c, int64_t interval_ms, int64_t timeout_ms);

/* Connected: the handshake is done and `closed` has not come yet. */
int ws_is_open(const struct ws_conn *c);

/*
 * Write a close frame (code, reason cut to 123 bytes) on an lws
 * connection, client or server, from its WRITEABLE callback: lws 4.1 on
 * libuv drops the frame lws_close_reason() would send (docs/io.md), so
 * the frame goes out through lws_write()'s internal close opcode, which
 * frames it (and masks it on a client).  The caller then waits for the
 * peer's echo (lws_set_timeout PENDING_TIMEOUT_CLOSE_ACK).  0, or -1 if
 * the write failed.  Shared with the test fake server.
 */
struct lws;
int ws_write_close(struct lws *wsi, int code, const char *reason);

/*
 * One step of lws 4.1's two-call context teardown on a foreign loop, for
 * a repeating reaper timer: the first lws_context_destroy() closes every
 * wsi and lws's uv handles; once their close callbacks have run (nothing
 * in the loop is closing) this makes the second call, which frees the
 * context and writes NULL to info.pcontext.  lws NULL: nothing.  Shared
 * with the test fake server.
 */
struct lws_context;
void ws_context_reap(uv_loop_t *loop, struct lws_context *lws);

#endif
