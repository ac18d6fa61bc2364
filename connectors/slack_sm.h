/* slack_sm: the Socket Mode connection state machine (pure; docs/slack.md). */
#ifndef PARLEY_SLACK_SM_H
#define PARLEY_SLACK_SM_H

#include <stddef.h>
#include <stdint.h>

#include "connectors/slack_codec.h"

/*
 * Pure (STYLE 8): fed inputs (Web API results, socket events, decoded
 * frames, timer ticks), each with now_ms and a random draw, it returns
 * actions for the glue (connectors/slack.c) to perform.  It never reads a
 * clock.  After every feed the glue arms one timer at slack_sm_wake().
 *
 *   IDLE ─start─▶ AUTH ─ok─▶ OPENING ─url─▶ CONNECTING ─hello─▶ CONNECTED
 *                   │           │               │ close / no hello  │
 *                   └─ transient failure ─▶ BACKOFF ◀───────────────┘ close
 *   CONNECTED ─disconnect warning | refresh_requested | other─▶ REFRESHING:
 *     a NEW url and connection while the old one keeps working; its hello
 *     closes the old one (→ CONNECTED).  Both deliver envelopes meanwhile.
 *   link_disabled, a fatal auth error (auth.test or apps.connections.open)
 *     ─▶ STOPPED with a reason (action FATAL): no reconnect loop.
 *
 * Connections are named by ids the machine hands out (CONNECT.conn); the
 * glue maps them to sockets and reports their events with the same id.
 * Every reconnect asks apps.connections.open for a fresh (single-use)
 * URL.  Backoff: attempt n waits w/2 + rnd % (w/2 + 1) ms with
 * w = min(backoff_max, backoff_min * 2^(n-1)), and never less than a
 * server's retry_after; a hello resets n.
 *
 * Envelopes: every envelope, from any connection, becomes ACCEPT (the
 * glue hands its event to core_accept and feeds ACCEPTED with the
 * result); only an ACCEPTED with ok = 1 becomes ACK.  So an envelope is
 * acknowledged only once durable, and one that is not gets redelivered.
 */

enum slack_sm_state {
    SLACK_SM_IDLE = 0,
    SLACK_SM_AUTH,       /* auth.test in flight */
    SLACK_SM_OPENING,    /* apps.connections.open in flight */
    SLACK_SM_CONNECTING, /* socket opening, waiting for hello */
    SLACK_SM_CONNECTED,
    SLACK_SM_REFRESHING, /* connected, a replacement on its way */
    SLACK_SM_BACKOFF,    /* waiting to retry auth or open */
    SLACK_SM_STOPPED,
    SLACK_SM_STATE_COUNT,
};

extern const char *const slack_sm_state_names[SLACK_SM_STATE_COUNT];

enum slack_sm_input_kind {
    SLACK_SM_IN_START = 0,
    SLACK_SM_IN_STOP,      /* shutdown: close everything */
    SLACK_SM_IN_AUTH_OK,   /* auth.test ok */
    SLACK_SM_IN_AUTH_FAIL, /* fatal or transient, retry_after_ms */
    SLACK_SM_IN_OPEN_OK,   /* apps.connections.open: url */
    SLACK_SM_IN_OPEN_FAIL,
    SLACK_SM_IN_WS_OPEN,    /* conn: handshake done */
    SLACK_SM_IN_WS_CLOSED,  /* conn: gone (code, why) */
    SLACK_SM_IN_HELLO,      /* conn */
    SLACK_SM_IN_DISCONNECT, /* conn, reason */
    SLACK_SM_IN_ENVELOPE,   /* conn, envelope_id */
    SLACK_SM_IN_ACCEPTED,   /* conn, envelope_id, ok */
    SLACK_SM_IN_TICK,       /* the timer fired */
};

struct slack_sm_input {
    enum slack_sm_input_kind kind;
    int64_t now_ms;
    uint32_t rnd; /* a uniform random draw (backoff jitter) */
    unsigned conn;
    int fatal;              /* *_FAIL: an auth error: stop for good */
    int64_t retry_after_ms; /* *_FAIL: the server's wait (0 = none) */
    int code;               /* WS_CLOSED */
    enum slack_disconnect reason;
    int ok;                  /* ACCEPTED: core_accept returned 0 */
    const char *url;         /* OPEN_OK */
    const char *envelope_id; /* ENVELOPE, ACCEPTED */
    const char *why;         /* *_FAIL, WS_CLOSED: for the stop reason */
};

enum slack_sm_action_kind {
    SLACK_SM_ACT_AUTH = 0, /* call auth.test */
    SLACK_SM_ACT_OPEN,     /* call apps.connections.open */
    SLACK_SM_ACT_CONNECT,  /* open a socket to url, named conn */
    SLACK_SM_ACT_CLOSE,    /* close conn (code, reason) */
    SLACK_SM_ACT_ACCEPT,   /* hand the envelope to core, feed ACCEPTED */
    SLACK_SM_ACT_ACK,      /* send {"envelope_id"} on conn */
    SLACK_SM_ACT_UP,       /* a connection said hello: /healthz 200 */
    SLACK_SM_ACT_DOWN,     /* no live connection (reason) */
    SLACK_SM_ACT_FATAL,    /* stopped for good (reason): report, exit 2 */
};

/* Strings borrow from the input (url, envelope_id) or the machine
 * (reason): valid until the next feed. */
struct slack_sm_action {
    enum slack_sm_action_kind kind;
    unsigned conn;
    int code;
    const char *url;
    const char *envelope_id;
    const char *reason;
};

struct slack_sm_config {
    int64_t backoff_min_ms;   /* 1000 */
    int64_t backoff_max_ms;   /* 60000 */
    int64_t hello_timeout_ms; /* 10000: socket open, no hello → dead */
};

#define SLACK_SM_ACTIONS_MAX 8
#define SLACK_SM_REASON_MAX 160

struct slack_sm;

/* cfg NULL or zero fields = the defaults above. */
struct slack_sm *slack_sm_new(const struct slack_sm_config *cfg);
void slack_sm_free(struct slack_sm *m);

/* One transition: returns the number of actions written to out (at most
 * max, SLACK_SM_ACTIONS_MAX is always enough). */
size_t slack_sm_feed(struct slack_sm *m, const struct slack_sm_input *in,
                     struct slack_sm_action *out, size_t max);

/* When to feed TICK next (monotonic ms), 0 = no timer needed. */
int64_t slack_sm_wake(const struct slack_sm *m);

enum slack_sm_state slack_sm_state(const struct slack_sm *m);
/* The live connection (0 = none) and the replacement being opened. */
unsigned slack_sm_current(const struct slack_sm *m);
unsigned slack_sm_pending(const struct slack_sm *m);
/* Why it is down or stopped ("" when connected). */
const char *slack_sm_reason(const struct slack_sm *m);
/* Reconnect attempts since the last hello. */
int slack_sm_attempts(const struct slack_sm *m);

const char *slack_sm_action_name(enum slack_sm_action_kind k);

#endif
