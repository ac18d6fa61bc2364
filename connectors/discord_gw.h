/* discord_gw: the Discord gateway session as a pure state machine. */
#ifndef PARLEY_DISCORD_GW_H
#define PARLEY_DISCORD_GW_H

#include <stddef.h>
#include <stdint.h>

#include "connectors/discord_codec.h"

/*
 * Fed inputs (the /gateway/bot answer, socket events, decoded frames,
 * timer ticks, our stop) with the time (monotonic ms) and a uniform random
 * draw in [0, 1); returns actions for the glue (connectors/discord.c) to
 * perform in order.  It never reads a clock, a socket or the database.
 * docs/discord.md has the transitions; in short:
 *
 *   IDLE ─start→ GATEWAY (fetch /gateway/bot) ─→ CONNECTING ─open→ HELLO
 *   ─hello→ IDENTIFYING | RESUMING ─READY/RESUMED→ READY
 *   any connected state ─close, op 7, op 9, zombie→ CLOSING → WAITING →
 *   CONNECTING (resume url for a resume, gateway url for an identify)
 *   fatal close codes → STOPPED;  stop → STOPPING → STOPPED
 *
 * Resume after op 7, op 9 true, resumable closes (4000, 4001, 4002, 4003,
 * 4005, 4008), 1006 and any other non-fatal code while a session exists;
 * a new identify after op 9 false, 4007 and 4009, 1–5 s later.  Fatal:
 * 4004 and 4010–4014.  Our own closes use DISCORD_GW_CLOSE_RESUMABLE
 * (4000): any code but 1000/1001 keeps the session resumable, on a
 * reconnect and on our shutdown alike.
 */

#define DISCORD_GW_CLOSE_RESUMABLE 4000
#define DISCORD_GW_ACTIONS_MAX 12
#define DISCORD_GW_SEND_LIMIT 120        /* gateway sends ... */
#define DISCORD_GW_SEND_WINDOW 60000     /* ... per 60 s */
#define DISCORD_GW_HELLO_TIMEOUT 30000   /* open → HELLO */
#define DISCORD_GW_BACKOFF_MAX 60000     /* reconnect / fetch backoff cap */
#define DISCORD_GW_IDENTIFY_SPACING 5000 /* max_concurrency per 5 s */

enum discord_gw_state {
    DGW_STATE_IDLE = 0,
    DGW_STATE_GATEWAY,     /* GET /gateway/bot in flight */
    DGW_STATE_WAITING,     /* a timer before fetching or connecting */
    DGW_STATE_CONNECTING,  /* ws_connect issued */
    DGW_STATE_HELLO,       /* open, waiting for HELLO */
    DGW_STATE_IDENTIFYING, /* IDENTIFY sent (or held by the send budget) */
    DGW_STATE_RESUMING,    /* RESUME sent (or held) */
    DGW_STATE_READY,       /* READY or RESUMED: dispatches flow */
    DGW_STATE_CLOSING,     /* we closed; `closed` will say when */
    DGW_STATE_STOPPING,    /* our shutdown: closing resumably */
    DGW_STATE_STOPPED,     /* shut down or fatal: no more actions */
    DGW_STATE_COUNT
};

enum discord_gw_timer {
    DGW_TIMER_HEARTBEAT = 0, /* heartbeats; the HELLO timeout before HELLO */
    DGW_TIMER_RECONNECT,     /* backoff / identify waits while unconnected */
    DGW_TIMER_SEND,          /* an IDENTIFY/RESUME held by the send budget */
    DGW_TIMER_COUNT
};

enum discord_gw_input_kind {
    DGW_IN_START = 0,
    DGW_IN_GATEWAY,      /* /gateway/bot answered: .gateway */
    DGW_IN_GATEWAY_FAIL, /* /gateway/bot failed (not an auth failure) */
    DGW_IN_OPEN,         /* the websocket is open */
    DGW_IN_CLOSED,       /* the websocket closed: .code (1006 = no frame) */
    DGW_IN_FRAME,        /* a decoded frame: .frame */
    DGW_IN_TIMER,        /* .timer fired */
    DGW_IN_RESYNC,       /* an event could not be made durable: resume */
    DGW_IN_STOP,         /* our shutdown */
};

struct discord_gw_input {
    enum discord_gw_input_kind kind;
    const struct discord_gateway_bot *gateway;
    const struct discord_frame *frame;
    enum discord_gw_timer timer;
    int code;
};

enum discord_gw_action_kind {
    DGW_ACT_FETCH_GATEWAY =
        0,           /* GET /gateway/bot, then DGW_IN_GATEWAY[_FAIL] */
    DGW_ACT_CONNECT, /* ws_connect(url + "?v=10&encoding=json") */
    DGW_ACT_SEND,    /* encode and send frame op (1, 2 or 6) */
    DGW_ACT_CLOSE,   /* ws_close(code) */
    DGW_ACT_ARM,     /* timer at at_ms (monotonic), why for logs */
    DGW_ACT_DISARM,  /* timer */
    DGW_ACT_UP,      /* READY or RESUMED: the connector is up */
    DGW_ACT_DOWN,    /* the session is not flowing: why */
    DGW_ACT_SAVE,    /* persist the session (or its absence) */
    DGW_ACT_FATAL,   /* never reconnect: why, for the admin */
};

struct discord_gw_action {
    enum discord_gw_action_kind kind;
    enum discord_gw_timer timer;
    int64_t at_ms;
    int op;          /* SEND */
    int64_t seq;     /* SEND heartbeat / resume: the sequence (-1 = null) */
    int code;        /* CLOSE */
    const char *url; /* CONNECT: points into the machine */
    const char *why; /* static */
};

struct discord_gw_actions {
    struct discord_gw_action v[DISCORD_GW_ACTIONS_MAX];
    size_t n;
};

/* The persisted session: a restart inside the resume window resumes. */
struct discord_gw_session {
    char session_id[DISCORD_SESSION_MAX];
    char resume_url[DISCORD_URL_MAX];
    int64_t seq; /* -1 = none */
    /* our user id from READY: RESUMED does not repeat it, and mentions,
     * replies and our own reactions are judged against it */
    char self_id[DISCORD_SNOWFLAKE_MAX];
};

struct discord_gw;

/* send_limit / send_window_ms: the gateway send budget (0 = defaults). */
struct discord_gw *discord_gw_new(int send_limit, int64_t send_window_ms);
void discord_gw_free(struct discord_gw *g);

/* A saved session to resume (before DGW_IN_START); "" session_id = none. */
void discord_gw_restore(struct discord_gw *g,
                        const struct discord_gw_session *s);
void discord_gw_session(const struct discord_gw *g,
                        struct discord_gw_session *out);

/* One input → actions (out->n reset first).  rnd in [0, 1). */
void discord_gw_feed(struct discord_gw *g, const struct discord_gw_input *in,
                     int64_t now_ms, double rnd,
                     struct discord_gw_actions *out);

enum discord_gw_state discord_gw_state(const struct discord_gw *g);
const char *discord_gw_state_name(enum discord_gw_state s);
const char *discord_gw_action_name(enum discord_gw_action_kind k);
/* Our user id from READY ("" before). */
const char *discord_gw_self_id(const struct discord_gw *g);
int64_t discord_gw_seq(const struct discord_gw *g);

struct discord_gw_stats {
    uint64_t heartbeats, acks, identifies, resumes, zombies, reconnects, sends;
    int64_t interval_ms;
    int64_t latency_ms; /* last heartbeat → ACK, -1 unknown */
};
void discord_gw_stats(const struct discord_gw *g, struct discord_gw_stats *s);

#endif
