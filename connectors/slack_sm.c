/* slack_sm: the Socket Mode connection state machine (pure; docs/slack.md). */
#include "connectors/slack_sm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const slack_sm_state_names[SLACK_SM_STATE_COUNT] = {
    [SLACK_SM_IDLE] = "idle",           [SLACK_SM_AUTH] = "auth",
    [SLACK_SM_OPENING] = "opening",     [SLACK_SM_CONNECTING] = "connecting",
    [SLACK_SM_CONNECTED] = "connected", [SLACK_SM_REFRESHING] = "refreshing",
    [SLACK_SM_BACKOFF] = "backoff",     [SLACK_SM_STOPPED] = "stopped",
};

struct slack_sm {
    struct slack_sm_config cfg;
    enum slack_sm_state state;
    unsigned cur;  /* the connection in use (or being opened) */
    unsigned next; /* REFRESHING: its replacement, 0 until the url came */
    unsigned last_id;
    int opening; /* REFRESHING: apps.connections.open in flight */
    int authed;
    int attempts;
    int64_t hello_deadline; /* CONNECTING: cur's; REFRESHING: next's */
    int64_t retry_at;       /* BACKOFF, or REFRESHING's next open */
    char reason[SLACK_SM_REASON_MAX];
};

struct emit {
    struct slack_sm_action *out;
    size_t max, n;
};

static void
emit(struct emit *e, enum slack_sm_action_kind kind, unsigned conn, int code,
     const char *url, const char *env, const char *reason)
{
    struct slack_sm_action *a;

    if (e->n >= e->max)
        return;
    a = &e->out[e->n++];
    a->kind = kind;
    a->conn = conn;
    a->code = code;
    a->url = url;
    a->envelope_id = env;
    a->reason = reason;
}

struct slack_sm *
slack_sm_new(const struct slack_sm_config *cfg)
{
    struct slack_sm *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    if (cfg)
        m->cfg = *cfg;
    if (m->cfg.backoff_min_ms <= 0)
        m->cfg.backoff_min_ms = 1000;
    if (m->cfg.backoff_max_ms < m->cfg.backoff_min_ms)
        m->cfg.backoff_max_ms =
            m->cfg.backoff_min_ms > 60000 ? m->cfg.backoff_min_ms : 60000;
    if (m->cfg.hello_timeout_ms <= 0)
        m->cfg.hello_timeout_ms = 10000;
    snprintf(m->reason, sizeof(m->reason), "starting");
    return m;
}

void
slack_sm_free(struct slack_sm *m)
{
    free(m);
}

/* Equal jitter: never zero (no hot loop), never over the cap. */
static int64_t
backoff_delay(const struct slack_sm *m, uint32_t rnd)
{
    int64_t w = m->cfg.backoff_min_ms;

    for (int i = 1; i < m->attempts && w < m->cfg.backoff_max_ms; i++)
        w *= 2;
    if (w > m->cfg.backoff_max_ms)
        w = m->cfg.backoff_max_ms;
    return w / 2 + (int64_t)(rnd % (uint32_t)(w / 2 + 1));
}

static int64_t
retry_time(struct slack_sm *m, const struct slack_sm_input *in)
{
    int64_t d;

    m->attempts++;
    d = backoff_delay(m, in->rnd);
    if (in->retry_after_ms > d)
        d = in->retry_after_ms;
    return in->now_ms + d;
}

static void
set_reason(struct slack_sm *m, const char *what, const char *why)
{
    snprintf(m->reason, sizeof(m->reason), "%s%s%s", what,
             why && why[0] ? ": " : "", why ? why : "");
}

static void
go_backoff(struct slack_sm *m, const struct slack_sm_input *in)
{
    m->retry_at = retry_time(m, in);
    m->state = SLACK_SM_BACKOFF;
}

/* Closes whatever is open and stops; FATAL unless it was asked for. */
static void
go_stopped(struct slack_sm *m, struct emit *e, int fatal)
{
    if (m->cur)
        emit(e, SLACK_SM_ACT_CLOSE, m->cur, 1000, NULL, NULL,
             fatal ? "stopped" : "shutting down");
    if (m->next)
        emit(e, SLACK_SM_ACT_CLOSE, m->next, 1000, NULL, NULL,
             fatal ? "stopped" : "shutting down");
    m->cur = m->next = 0;
    m->opening = 0;
    m->retry_at = m->hello_deadline = 0;
    m->state = SLACK_SM_STOPPED;
    emit(e, fatal ? SLACK_SM_ACT_FATAL : SLACK_SM_ACT_DOWN, 0, 0, NULL, NULL,
         m->reason);
}

static void
on_fail(struct slack_sm *m, const struct slack_sm_input *in, struct emit *e,
        const char *what)
{
    set_reason(m, what, in->why);
    if (in->fatal) {
        go_stopped(m, e, 1);
        return;
    }
    if (m->state == SLACK_SM_REFRESHING) {
        /* the old socket still works: try again for a replacement later */
        m->opening = 0;
        m->retry_at = retry_time(m, in);
        return;
    }
    go_backoff(m, in);
}

static void
on_closed(struct slack_sm *m, const struct slack_sm_input *in, struct emit *e)
{
    char why[64];

    snprintf(why, sizeof(why), "%d %.50s", in->code, in->why ? in->why : "");
    if (in->conn != 0 && in->conn == m->next) {
        m->next = 0;
        m->hello_deadline = 0;
        m->retry_at = retry_time(m, in);
        return;
    }
    if (in->conn == 0 || in->conn != m->cur)
        return; /* one we closed already */
    m->cur = 0;
    set_reason(m, "socket closed", why);
    switch (m->state) {
    case SLACK_SM_REFRESHING:
        emit(e, SLACK_SM_ACT_DOWN, 0, 0, NULL, NULL, m->reason);
        if (m->next) {
            m->cur = m->next; /* its hello deadline carries over */
            m->next = 0;
            m->state = SLACK_SM_CONNECTING;
        } else if (m->opening) {
            m->opening = 0;
            m->state = SLACK_SM_OPENING;
        } else {
            m->state = SLACK_SM_BACKOFF; /* retry_at already set */
            if (m->retry_at == 0)
                m->retry_at = retry_time(m, in);
        }
        break;
    case SLACK_SM_CONNECTED:
        emit(e, SLACK_SM_ACT_DOWN, 0, 0, NULL, NULL, m->reason);
        go_backoff(m, in);
        break;
    case SLACK_SM_CONNECTING:
        m->hello_deadline = 0;
        go_backoff(m, in);
        break;
    default:
        break;
    }
}

static void
on_tick(struct slack_sm *m, const struct slack_sm_input *in, struct emit *e)
{
    int64_t now = in->now_ms;

    switch (m->state) {
    case SLACK_SM_CONNECTING:
        if (m->hello_deadline && now >= m->hello_deadline) {
            emit(e, SLACK_SM_ACT_CLOSE, m->cur, 1000, NULL, NULL, "no hello");
            m->cur = 0;
            m->hello_deadline = 0;
            set_reason(m, "no hello from Slack", NULL);
            go_backoff(m, in);
        }
        break;
    case SLACK_SM_REFRESHING:
        if (m->next && m->hello_deadline && now >= m->hello_deadline) {
            emit(e, SLACK_SM_ACT_CLOSE, m->next, 1000, NULL, NULL, "no hello");
            m->next = 0;
            m->hello_deadline = 0;
            m->retry_at = retry_time(m, in);
        } else if (!m->next && !m->opening && m->retry_at &&
                   now >= m->retry_at) {
            m->retry_at = 0;
            m->opening = 1;
            emit(e, SLACK_SM_ACT_OPEN, 0, 0, NULL, NULL, NULL);
        }
        break;
    case SLACK_SM_BACKOFF:
        if (now >= m->retry_at) {
            m->retry_at = 0;
            if (m->authed) {
                m->state = SLACK_SM_OPENING;
                emit(e, SLACK_SM_ACT_OPEN, 0, 0, NULL, NULL, NULL);
            } else {
                m->state = SLACK_SM_AUTH;
                emit(e, SLACK_SM_ACT_AUTH, 0, 0, NULL, NULL, NULL);
            }
        }
        break;
    default:
        break;
    }
}

size_t
slack_sm_feed(struct slack_sm *m, const struct slack_sm_input *in,
              struct slack_sm_action *out, size_t max)
{
    struct emit e = {out, max, 0};

    if (m->state == SLACK_SM_STOPPED)
        return 0;
    switch (in->kind) {
    case SLACK_SM_IN_START:
        if (m->state == SLACK_SM_IDLE) {
            m->state = SLACK_SM_AUTH;
            emit(&e, SLACK_SM_ACT_AUTH, 0, 0, NULL, NULL, NULL);
        }
        break;
    case SLACK_SM_IN_STOP:
        set_reason(m, "stopped", NULL);
        go_stopped(m, &e, 0);
        break;
    case SLACK_SM_IN_AUTH_OK:
        if (m->state == SLACK_SM_AUTH) {
            m->authed = 1;
            m->state = SLACK_SM_OPENING;
            emit(&e, SLACK_SM_ACT_OPEN, 0, 0, NULL, NULL, NULL);
        }
        break;
    case SLACK_SM_IN_AUTH_FAIL:
        if (m->state == SLACK_SM_AUTH)
            on_fail(m, in, &e, "auth.test");
        break;
    case SLACK_SM_IN_OPEN_OK:
        if (m->state == SLACK_SM_OPENING) {
            m->cur = ++m->last_id;
            m->hello_deadline = in->now_ms + m->cfg.hello_timeout_ms;
            m->state = SLACK_SM_CONNECTING;
            emit(&e, SLACK_SM_ACT_CONNECT, m->cur, 0, in->url, NULL, NULL);
        } else if (m->state == SLACK_SM_REFRESHING && m->opening) {
            m->opening = 0;
            m->next = ++m->last_id;
            m->hello_deadline = in->now_ms + m->cfg.hello_timeout_ms;
            emit(&e, SLACK_SM_ACT_CONNECT, m->next, 0, in->url, NULL, NULL);
        }
        break;
    case SLACK_SM_IN_OPEN_FAIL:
        if (m->state == SLACK_SM_OPENING ||
            (m->state == SLACK_SM_REFRESHING && m->opening))
            on_fail(m, in, &e, "apps.connections.open");
        break;
    case SLACK_SM_IN_WS_OPEN:
        break; /* connected only after hello */
    case SLACK_SM_IN_WS_CLOSED:
        on_closed(m, in, &e);
        break;
    case SLACK_SM_IN_HELLO:
        if (m->state == SLACK_SM_CONNECTING && in->conn == m->cur) {
            m->state = SLACK_SM_CONNECTED;
            m->hello_deadline = 0;
            m->attempts = 0;
            m->reason[0] = '\0';
            emit(&e, SLACK_SM_ACT_UP, m->cur, 0, NULL, NULL, NULL);
        } else if (m->state == SLACK_SM_REFRESHING && in->conn &&
                   in->conn == m->next) {
            /* the new one works: only now does the old one go */
            emit(&e, SLACK_SM_ACT_CLOSE, m->cur, 1000, NULL, NULL, "refreshed");
            m->cur = m->next;
            m->next = 0;
            m->hello_deadline = m->retry_at = 0;
            m->attempts = 0;
            m->state = SLACK_SM_CONNECTED;
        }
        break;
    case SLACK_SM_IN_DISCONNECT:
        if (in->reason == SLACK_DISC_LINK_DISABLED) {
            set_reason(m, "link_disabled",
                       "Socket Mode was turned off for this app");
            go_stopped(m, &e, 1);
        } else if (m->state == SLACK_SM_CONNECTED && in->conn == m->cur) {
            m->state = SLACK_SM_REFRESHING;
            m->opening = 1;
            m->retry_at = 0;
            emit(&e, SLACK_SM_ACT_OPEN, 0, 0, NULL, NULL, NULL);
        }
        break;
    case SLACK_SM_IN_ENVELOPE:
        if (m->state != SLACK_SM_IDLE)
            emit(&e, SLACK_SM_ACT_ACCEPT, in->conn, 0, NULL, in->envelope_id,
                 NULL);
        break;
    case SLACK_SM_IN_ACCEPTED:
        if (in->ok)
            emit(&e, SLACK_SM_ACT_ACK, in->conn, 0, NULL, in->envelope_id,
                 NULL);
        break;
    case SLACK_SM_IN_TICK:
        on_tick(m, in, &e);
        break;
    }
    return e.n;
}

int64_t
slack_sm_wake(const struct slack_sm *m)
{
    switch (m->state) {
    case SLACK_SM_CONNECTING:
        return m->hello_deadline;
    case SLACK_SM_REFRESHING:
        if (m->next)
            return m->hello_deadline;
        return m->opening ? 0 : m->retry_at;
    case SLACK_SM_BACKOFF:
        return m->retry_at;
    default:
        return 0;
    }
}

enum slack_sm_state
slack_sm_state(const struct slack_sm *m)
{
    return m->state;
}

unsigned
slack_sm_current(const struct slack_sm *m)
{
    return m->cur;
}

unsigned
slack_sm_pending(const struct slack_sm *m)
{
    return m->next;
}

const char *
slack_sm_reason(const struct slack_sm *m)
{
    return m->reason;
}

int
slack_sm_attempts(const struct slack_sm *m)
{
    return m->attempts;
}

const char *
slack_sm_action_name(enum slack_sm_action_kind k)
{
    static const char *const names[] = {
        [SLACK_SM_ACT_AUTH] = "auth",       [SLACK_SM_ACT_OPEN] = "open",
        [SLACK_SM_ACT_CONNECT] = "connect", [SLACK_SM_ACT_CLOSE] = "close",
        [SLACK_SM_ACT_ACCEPT] = "accept",   [SLACK_SM_ACT_ACK] = "ack",
        [SLACK_SM_ACT_UP] = "up",           [SLACK_SM_ACT_DOWN] = "down",
        [SLACK_SM_ACT_FATAL] = "fatal",
    };

    if ((unsigned)k >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[k];
}
